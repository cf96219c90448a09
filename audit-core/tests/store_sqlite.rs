//! The SQLite store beyond the conformance suite: readers never write, writers migrate (and
//! refuse what is not theirs), concurrent first opens, a store in a read-only directory,
//! declared key indexes.
#![cfg(feature = "sqlite")]

#[macro_use]
mod store_support;

use std::path::{Path, PathBuf};

use audit_core::query::Filter;
use audit_core::store::sqlite::{Options, SqliteStore};
use audit_core::store::{PageRequest, Store, StoreError, StoreUrl};
use store_support::previous::{PreviousAppend, SqlitePrevious};
use store_support::{assert_success, base_time, events, rerun, role, temp_dir};

/// Everything of a database: the file and its journals, as their lengths and hashes of
/// their bytes (no journal file: `None`).
fn snapshot(path: &Path) -> Vec<(PathBuf, Option<(usize, u64)>)> {
    use std::hash::{Hash, Hasher};
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            let digest = std::fs::read(&file).ok().map(|bytes| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut hasher);
                (bytes.len(), hasher.finish())
            });
            (file, digest)
        })
        .collect()
}

fn unsupported(result: Result<SqliteStore, StoreError>) -> String {
    match result {
        Err(StoreError::Unsupported(message)) => message,
        Err(other) => panic!("expected Unsupported, got {other:?}"),
        Ok(_) => panic!("expected Unsupported, got a store"),
    }
}

#[test]
fn reading_never_writes_to_what_it_reads() {
    let dir = temp_dir("read-only-opens");
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let older = dir.join("older.db");
    let mut previous = SqlitePrevious::create(&older);
    previous.append(&events(1, 3, base_time()));
    drop(previous);
    let newer = dir.join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let garbage = dir.join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database, just some text long enough",
    )
    .unwrap();
    let cases: [(&Path, &str); 5] = [
        (&empty, "not an audit store"),
        (&foreign, "not an audit store"),
        (&older, "open it once with a writer"),
        (&newer, "upgrade"),
        (&garbage, "not a database"),
    ];
    for (path, says) in cases {
        let before = snapshot(path);
        let message = match SqliteStore::open_read_only(path) {
            Ok(_) => panic!("{} opened as an audit store", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(message.contains(says), "{}: {message}", path.display());
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(snapshot(path), before, "{} was changed", path.display());
        // The same through a store URL, as the CLI opens it.
        let url = StoreUrl::Sqlite(path.to_owned());
        assert!(url.open_read_only().is_err());
        assert_eq!(snapshot(path), before, "{} was changed", path.display());
    }
    let missing = unsupported(SqliteStore::open_read_only(dir.join("missing.db")));
    assert!(missing.contains("no SQLite audit store"), "{missing}");
    assert!(!dir.join("missing.db").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn writers_refuse_what_is_not_theirs_without_touching_it() {
    let dir = temp_dir("writer-refuses");
    let foreign = dir.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    let newer = dir.join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;")
        .unwrap();
    for (path, says) in [(&foreign, "not an audit store"), (&newer, "upgrade")] {
        let before = snapshot(path);
        let message = SqliteStore::open(path).err().unwrap().to_string();
        assert!(message.contains(says), "{message}");
        assert_eq!(snapshot(path), before, "{} was changed", path.display());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_writer_migrates_an_older_store_numbering_its_events_in_time_order() {
    let dir = temp_dir("migrate");
    let path = dir.join("audit.db");
    let mut previous = SqlitePrevious::create(&path);
    previous
        .0
        .execute_batch(
            "CREATE INDEX audit_logs_build_reason \
             ON audit_logs (json_extract(additional_fields, '$.\"build_reason\"'), time, id)",
        )
        .unwrap();
    let in_time_order = store_support::fill_out_of_time_order(&mut previous);
    drop(previous);

    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    store_support::assert_numbered_in_order(&mut store, &in_time_order);
    // The index it had stays; readers now open it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let kept: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_logs_build_reason'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1);
    assert_eq!(
        SqliteStore::open_read_only(&path)
            .unwrap()
            .head()
            .unwrap()
            .head,
        8
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn declared_keys_get_an_index_the_filters_use() {
    let dir = temp_dir("indexed-keys");
    let path = dir.join("audit.db");
    let bad = Options {
        indexed_keys: vec!["plan".into(), "a key".into()],
        ..Options::default()
    };
    let err = SqliteStore::open_with(&path, bad).err().unwrap();
    assert!(matches!(err, StoreError::InvalidRequest(_)), "{err}");
    assert!(!path.exists(), "a bad option creates nothing");
    let options = Options {
        indexed_keys: vec!["plan".into(), "build_reason".into()],
        ..Options::default()
    };
    drop(SqliteStore::open_with(&path, options.clone()).unwrap());
    // Idempotent: opening again with the same keys is fine.
    store_support::filter_by_declared_key(&mut SqliteStore::open_with(&path, options).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    // Key indexes are kept per bucket of log positions; reads seek the key in each bucket.
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT id FROM audit_logs \
             WHERE seq >> 10 IN (0, 1) AND json_extract(additional_fields, '$.\"plan\"') = 'pro'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(
        plan.contains("audit_logs_plan (<expr>=? AND <expr>=?)"),
        "{plan}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Writers opening one new file at once, each appending a batch.
const FIRST_OPENS: usize = 6;

fn open_and_append(path: &Path, source: u32) {
    let mut store = SqliteStore::open(path).unwrap_or_else(|e| panic!("writer {source}: {e}"));
    store
        .append(&events(source, 5, base_time()))
        .unwrap_or_else(|e| panic!("writer {source}: {e}"));
}

#[test]
fn concurrent_first_opens_all_succeed() {
    if role().as_deref() == Some("first-open") {
        let path = std::env::var("AUDIT_STORE_TEST_PATH").unwrap();
        open_and_append(Path::new(&path), store_support::writer_source());
        return;
    }
    if role().is_some() {
        return;
    }
    let dir = temp_dir("first-opens");
    // Before writers migrated under `BEGIN IMMEDIATE`, most rounds failed ("table audit_logs
    // already exists", "database is locked"): a few rounds make a regression plain.
    for round in 0..3 {
        // Threads, each with its own connection.
        let threads = dir.join(format!("threads-{round}.db"));
        let barrier = std::sync::Barrier::new(FIRST_OPENS);
        std::thread::scope(|scope| {
            for source in 0..FIRST_OPENS as u32 {
                let (barrier, threads) = (&barrier, &threads);
                scope.spawn(move || {
                    barrier.wait();
                    open_and_append(threads, source);
                });
            }
        });
        let mut store = SqliteStore::open_read_only(&threads).unwrap();
        assert_eq!(store.head().unwrap().head, 5 * FIRST_OPENS as u64);
        // Processes, started together.
        let processes = dir.join(format!("processes-{round}.db"));
        let spawned: Vec<_> = (0..FIRST_OPENS as u32)
            .map(|source| {
                let mut command = rerun("concurrent_first_opens_all_succeed", "first-open");
                command.env("AUDIT_STORE_TEST_PATH", &processes);
                store_support::start_writer(command, source)
            })
            .collect();
        store_support::wait_all(spawned);
        let mut store = SqliteStore::open_read_only(&processes).unwrap();
        assert_eq!(store.head().unwrap().head, 5 * FIRST_OPENS as u64);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_store_in_a_read_only_directory_can_be_read() {
    use std::os::unix::fs::PermissionsExt;
    if role().as_deref() == Some("read-only-reader") {
        let path = std::env::var("AUDIT_STORE_TEST_PATH").unwrap();
        let mut store = SqliteStore::open_read_only(&path).unwrap();
        let page = store
            .page(&Filter::default(), &PageRequest::first(100))
            .unwrap();
        println!(
            "events={} head={}",
            page.events.len(),
            store.head().unwrap().head
        );
        return;
    }
    if role().is_some() {
        return;
    }
    let dir = temp_dir("read-only-dir");
    let path = dir.join("audit.db");
    SqliteStore::open(&path)
        .unwrap()
        .append(&events(1, 9, base_time()))
        .unwrap();
    let before = snapshot(&path);
    assert!(
        before[1].1.is_none(),
        "the writer's last close removed the -wal file"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    // As root, read as an unprivileged user: root ignores permissions.
    let scratch = temp_dir("read-only-dir-scratch");
    let mut reader =
        store_support::unprivileged::command(&std::env::current_exe().unwrap(), &scratch);
    let output = reader
        .args(
            rerun(
                "a_store_in_a_read_only_directory_can_be_read",
                "read-only-reader",
            )
            .get_args(),
        )
        .env(store_support::ROLE, "read-only-reader")
        .env("AUDIT_STORE_TEST_PATH", &path)
        .output();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    match output {
        Ok(out) => {
            assert_success("the read-only reader", &out);
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("events=9 head=9"),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("note: skipped reading as an unprivileged user: setpriv failed: {e}");
        }
        Err(e) => panic!("setpriv failed: {e}"),
    }
    assert_eq!(snapshot(&path), before, "reading changed the store");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&scratch).ok();
}
