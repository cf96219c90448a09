//! Read commands (`query`, `stats`, `export`, `tail`, `verify`) never create, migrate or otherwise
//! change what they read: on a file that is not an audit store, or one of another schema
//! version, they fail clearly and leave it byte for byte as it was. A store in a directory
//! the reader cannot write can be read, and a Postgres role with only `SELECT` can query.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use audit_core::store::Store;
use audit_core::store::sqlite::SqliteStore;
use audit_core::{Actor, AuditEvent};

const READ_COMMANDS: &[&[&str]] = &[
    &["query"],
    &["stats"],
    &["export", "--format", "jsonl"],
    &["tail", "--max-events", "1", "--interval", "10ms"],
    &["verify"],
];

fn audit(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_audit"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("AUDIT_ME")
        .output()
        .expect("the audit binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("audit-cli-ro-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` events from 2020, old enough for any purge.
fn events(n: usize) -> Vec<AuditEvent> {
    let start = chrono::DateTime::from_timestamp(1_577_836_800, 0).unwrap();
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::builder("create")
                .actor(Actor::new("1", "alice", "a@x"))
                .resource_type("workspace")
                .resource_target(format!("ws-{i}"))
                .build();
            e.time = start + chrono::Duration::hours(i as i64);
            e
        })
        .collect()
}

/// The files of a database (the file and its journals): which exist, and their bytes.
fn files(path: &Path) -> Vec<Option<Vec<u8>>> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::read(PathBuf::from(name)).ok()
        })
        .collect()
}

fn set_version(path: &Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE").unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

#[test]
fn read_commands_leave_what_they_cannot_read_untouched() {
    let dir = temp_dir("untouched");
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let older = dir.join("older.db");
    SqliteStore::open(&older)
        .unwrap()
        .append(&events(2))
        .unwrap();
    set_version(&older, 1);
    let newer = dir.join("newer.db");
    SqliteStore::open(&newer)
        .unwrap()
        .append(&events(2))
        .unwrap();
    set_version(&newer, 42);
    for (path, says) in [
        (&empty, "not an audit store"),
        (&foreign, "not an audit store"),
        (&older, "open it once with a writer"),
        (&newer, "upgrade"),
    ] {
        let before = files(path);
        for args in READ_COMMANDS {
            let out = audit(&format!("sqlite://{}", path.display()), args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?} on {}: {stderr}",
                path.display()
            );
            assert!(
                stderr.contains(says),
                "{args:?} on {}: {stderr}",
                path.display()
            );
            assert!(files(path) == before, "{args:?} changed {}", path.display());
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[path = "../../audit-core/tests/store_support/unprivileged.rs"]
mod unprivileged;

#[test]
fn a_store_in_a_read_only_directory_can_be_queried() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("read-only-dir");
    let path = dir.join("audit.db");
    SqliteStore::open(&path)
        .unwrap()
        .append(&events(3))
        .unwrap();
    let before = files(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let url = format!("sqlite://{}", path.display());
    // As root, run as an unprivileged user: root ignores permissions.
    let scratch = temp_dir("read-only-dir-scratch");
    let run = |args: &[&str]| {
        unprivileged::command(Path::new(env!("CARGO_BIN_EXE_audit")), &scratch)
            .args(["--store", &url])
            .args(args)
            .env_remove("AUDIT_ME")
            .output()
    };
    let outputs: Vec<_> = [&["query", "--json"][..], &["stats", "--json"]]
        .into_iter()
        .map(|args| (args, run(args)))
        .collect();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (args, out) in outputs {
        match out {
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                if args[0] == "query" {
                    assert_eq!(stdout.lines().count(), 3, "{stdout}");
                } else {
                    assert!(stdout.contains("\"rows\": 3"), "{stdout}");
                }
            }
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("note: skipped reading as an unprivileged user: setpriv failed: {e}");
            }
            Err(e) => panic!("setpriv failed: {e}"),
        }
    }
    assert!(files(&path) == before, "reading changed the store");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&scratch).ok();
}

#[test]
fn a_select_only_postgres_role_can_query() {
    let Ok(url) = std::env::var("AUDIT_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AUDIT_TEST_POSTGRES_URL"
        );
        eprintln!("note: skipping the Postgres CLI check: AUDIT_TEST_POSTGRES_URL is not set");
        return;
    };
    // The CLI reads the `public` schema; this is the only test that uses it.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let reset = "DROP TABLE IF EXISTS public.audit_logs, public.audit_recorded_actions, \
                 public.audit_log_head, public.audit_migrations, public.audit_checkpoints CASCADE";
    admin.batch_execute(reset).unwrap();
    let store = audit_core::store::open(&url).unwrap();
    let mut store: Box<dyn Store> = store;
    store.append(&events(4)).unwrap();
    drop(store);
    let role = "audit_cli_test_reader";
    let _ = admin.batch_execute(&format!("DROP OWNED BY {role} CASCADE; DROP ROLE {role}"));
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN;
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
        ))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let reader = format!("{url}{sep}user={role}");
    let out = audit(&reader, &["query", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let stats = audit(&reader, &["stats", "--json"]);
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    // Verifying reads only, in a read-only transaction.
    let verify = audit(&reader, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("events verified: 4 of 4"));
    // Writing is refused by the server, and the message says why.
    let purge = audit(&reader, &["purge", "--older-than", "1d"]);
    assert_eq!(purge.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&purge.stderr);
    assert!(stderr.contains("permission denied"), "{stderr}");
    admin
        .batch_execute(&format!("DROP OWNED BY {role} CASCADE; DROP ROLE {role}"))
        .unwrap();
    admin.batch_execute(reset).unwrap();
}
