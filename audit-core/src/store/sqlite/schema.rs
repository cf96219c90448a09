//! Opening an SQLite store: as a writer (create, switch to WAL, migrate) or as a reader
//! (read-only, never a write of any kind), and the numbered migrations.
//!
//! Writers may open a new file at the same time from several processes: migrations run in
//! one `BEGIN IMMEDIATE` transaction that re-reads the schema version once it holds the write
//! lock, so the first writer migrates and the others find nothing left to do.

use std::path::Path;
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use super::layout;

use crate::store::StoreError;
use crate::store::columns::{self, COLUMN_LIST};
use crate::store::sql::{Dialect, IndexedKey};

/// How long a connection waits for another one's lock before giving up.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A schema migration: SQL, or a step that reads the store first.
enum Migration {
    Sql(&'static str),
    Step(fn(&Transaction<'_>) -> Result<(), StoreError>),
}

/// Numbered schema migrations; the store's version (`PRAGMA user_version`) is how many ran.
const MIGRATIONS: &[Migration] = &[
    // 1: the log and an index for every filter key, each ending in (time, id) so that
    // filtered pages come straight off the index in keyset order. (Stores created before
    // indexed keys were declared by the application also have `audit_logs_build_reason`.)
    Migration::Sql(
        "CREATE TABLE audit_logs (
        id BLOB PRIMARY KEY NOT NULL,
        time INTEGER NOT NULL,
        actor_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        email TEXT NOT NULL COLLATE NOCASE,
        organization_id TEXT,
        ip TEXT,
        user_agent TEXT,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        resource_target TEXT NOT NULL,
        resource_icon TEXT NOT NULL,
        action TEXT NOT NULL,
        diff TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        additional_fields TEXT NOT NULL,
        request_id TEXT
    ) WITHOUT ROWID;
    CREATE INDEX audit_logs_time ON audit_logs (time, id);
    CREATE INDEX audit_logs_resource_type ON audit_logs (resource_type, time, id);
    CREATE INDEX audit_logs_resource_type_action ON audit_logs (resource_type, action, time, id);
    CREATE INDEX audit_logs_action ON audit_logs (action, time, id);
    CREATE INDEX audit_logs_username ON audit_logs (username, time, id);
    CREATE INDEX audit_logs_email ON audit_logs (email, time, id);
    CREATE INDEX audit_logs_resource_id ON audit_logs (resource_id, time, id);
    CREATE INDEX audit_logs_resource_target ON audit_logs (resource_target, time, id);
    CREATE INDEX audit_logs_request_id ON audit_logs (request_id);
    CREATE TABLE audit_recorded_actions (
        resource_type TEXT NOT NULL,
        action TEXT NOT NULL,
        PRIMARY KEY (resource_type, action)
    ) WITHOUT ROWID;",
    ),
    // 2: the log position. Existing events are numbered in (time, id) order; the head row
    // holds the highest position assigned and how far the log is purged.
    Migration::Sql(
        "ALTER TABLE audit_logs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE audit_logs SET seq = numbered.n
        FROM (SELECT id, row_number() OVER (ORDER BY time, id) AS n FROM audit_logs) AS numbered
        WHERE audit_logs.id = numbered.id;
    CREATE UNIQUE INDEX audit_logs_seq ON audit_logs (seq);
    CREATE TABLE audit_log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        purged_through INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO audit_log_head (id, seq) SELECT 1, COUNT(*) FROM audit_logs;",
    ),
    // 3: the table keyed by log position, with key indexes per bucket of positions (see
    // `layout`), rebuilt from version 2's (instantly, for a new store).
    Migration::Step(layout::migrate_to_v3),
    // 4: the hash chain. Each event's chain hash, the head's and the last purged event's
    // (both 32 zero bytes until set), and the checkpoints `audit checkpoint` takes; then the
    // events already stored are chained (see `chain_existing`).
    Migration::Step(chain_v4),
    // 5: buckets listed in time order through an index, and each bucket's key summary, so a
    // read of a rare key seeks only the buckets that may hold it (see `summary`).
    Migration::Step(layout::migrate_to_v5),
];

/// The SQL of migration 4.
const HASH_CHAIN: &str = "ALTER TABLE audit_logs ADD COLUMN hash BLOB NOT NULL DEFAULT X'';
    ALTER TABLE audit_log_head ADD COLUMN hash BLOB NOT NULL
        DEFAULT X'0000000000000000000000000000000000000000000000000000000000000000';
    ALTER TABLE audit_log_head ADD COLUMN purged_hash BLOB NOT NULL
        DEFAULT X'0000000000000000000000000000000000000000000000000000000000000000';
    CREATE TABLE audit_checkpoints (
        id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        time INTEGER NOT NULL,
        note TEXT NOT NULL
    );";

/// Migration 4: adds the hash chain's columns and table, and chains the stored events.
fn chain_v4(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(HASH_CHAIN)?;
    chain_existing(tx)
}

/// The schema version this build writes and reads.
pub(super) const VERSION: usize = MIGRATIONS.len();

/// Opens `path` to write: creates the file (and its directory), switches it to WAL, and
/// migrates it, refusing a file that is not an audit store or is newer than this build.
pub(super) fn open_writer(
    path: &Path,
    keys: &[IndexedKey],
    memory: Memory,
) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let conn = Connection::open(path)?;
    prepare_writer(&conn, keys, memory)?;
    Ok(conn)
}

/// Readies a writer's connection (a file or in memory).
pub(super) fn prepare_writer(
    conn: &Connection,
    keys: &[IndexedKey],
    memory: Memory,
) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Refuse before changing anything, even the journal mode.
    let found = inspect(conn)?;
    found.check_writable()?;
    memory.apply(conn)?;
    if found.version == 0 {
        // Takes effect only while the file is still empty (a new store).
        conn.pragma_update(None, "page_size", NEW_STORE_PAGE_SIZE)?;
    }
    enable_wal(conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if found.version == VERSION && missing_indexes(conn, keys)?.is_empty() {
        return Ok(());
    }
    migrate(conn, keys)
}

/// The page size of new stores (see `layout`).
const NEW_STORE_PAGE_SIZE: i64 = 8192;

/// How much memory a connection may use for the database's pages (see `Options`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Memory {
    pub page_cache_bytes: usize,
    pub mmap_bytes: u64,
}

impl Memory {
    /// Sets the connection's page cache and memory map (settings of the connection, not
    /// writes to the file).
    fn apply(self, conn: &Connection) -> Result<(), rusqlite::Error> {
        // A negative cache size is in KiB.
        let kib = i64::try_from(self.page_cache_bytes / 1024).unwrap_or(i64::MAX);
        conn.pragma_update(None, "cache_size", -kib.max(1))?;
        let mmap = i64::try_from(self.mmap_bytes).unwrap_or(i64::MAX);
        conn.pragma_update(None, "mmap_size", mmap)?;
        Ok(())
    }
}

/// Opens `path` to read. Nothing is created or written, the journal mode is left as it is,
/// and the file must be an audit store of this build's schema version.
pub(super) fn open_reader(path: &Path, memory: Memory) -> Result<Connection, StoreError> {
    let conn = open_reader_connection(path)?;
    memory.apply(&conn)?;
    Ok(conn)
}

fn open_reader_connection(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Unsupported(format!(
            "no SQLite audit store at {}: check the path (a writer, such as the application's \
             store backend, creates it)",
            path.display()
        )));
    }
    let has_wal = wal_file(path).exists();
    if !has_wal {
        // No `-wal` file: no writer is at work (a WAL writer keeps one), and the file alone is
        // the whole database. Check it without SQLite's WAL machinery, which would leave
        // `-wal` and `-shm` files beside a file this reader then refuses.
        let probe = open(immutable_uri(path))?;
        inspect(&probe)?.check_readable()?;
    }
    let conn = open(path)?;
    match inspect(&conn) {
        Ok(found) => {
            found.check_readable()?;
            Ok(conn)
        }
        // A WAL database whose directory this process cannot write: SQLite needs to create
        // the `-shm` file to share the log index. With no `-wal` file the file alone is the
        // whole database (checked above), and it is read as immutable.
        Err(e) if cannot_share_wal(&e) && !has_wal => open(immutable_uri(path)),
        Err(e) => Err(e.into()),
    }
}

/// A read-only connection to a path or an SQLite URI.
fn open(target: impl AsRef<Path>) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(target, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn cannot_share_wal(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
    )
}

fn wal_file(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// `file:/path?immutable=1`, percent-encoding what a URI reserves.
fn immutable_uri(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut uri = String::from("file:");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(byte as char)
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// What a database file holds, read without writing.
struct Found {
    version: usize,
    has_log: bool,
    other_tables: bool,
}

/// One statement, so one snapshot: another process's migration is seen whole or not at all.
fn inspect(conn: &Connection) -> Result<Found, rusqlite::Error> {
    let (version, has_log, other_tables): (i64, bool, bool) = conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version()), \
                COALESCE(MAX(name = 'audit_logs'), 0), \
                COALESCE(MAX(name NOT LIKE 'audit\\_%' ESCAPE '\\' \
                             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'), 0) \
         FROM sqlite_master WHERE type = 'table'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Found {
        version: usize::try_from(version).unwrap_or(usize::MAX),
        has_log,
        other_tables,
    })
}

impl Found {
    fn not_a_store(&self) -> bool {
        // A new store is empty; any other database without the log (or with a log table
        // but no version) is someone else's.
        (self.version > 0 && !self.has_log)
            || (self.version == 0 && (self.has_log || self.other_tables))
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.version > VERSION {
            return Err(newer(self.version));
        }
        if self.not_a_store() {
            return Err(StoreError::Unsupported(
                "this SQLite database is not an audit store (it holds other tables): \
                 refusing to add the audit tables to it; use a file of its own"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_readable(&self) -> Result<(), StoreError> {
        if self.version > VERSION {
            return Err(newer(self.version));
        }
        if self.version == 0 || self.not_a_store() {
            return Err(StoreError::Unsupported(
                "this SQLite database is not an audit store (it has no audit log): check the path"
                    .into(),
            ));
        }
        if self.version < VERSION {
            return Err(StoreError::Unsupported(format!(
                "this audit store's schema is version {}, older than this build's ({VERSION}): \
                 open it once with a writer (the application's store backend, or `audit purge`) \
                 to migrate it",
                self.version
            )));
        }
        Ok(())
    }
}

fn newer(version: usize) -> StoreError {
    StoreError::Unsupported(format!(
        "this audit store's schema is version {version}, newer than this build knows \
         ({VERSION}): upgrade audit-core (or the audit CLI)"
    ))
}

/// Switches to WAL (readers never block the writer). Switching needs a moment alone with
/// the file, which another connection may hold: `SQLITE_BUSY` is retried, boundedly.
fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
    let mut attempts = 0;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e)
                if attempts < 200
                    && matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Declared keys whose index does not exist yet.
fn missing_indexes<'k>(
    conn: &Connection,
    keys: &'k [IndexedKey],
) -> Result<Vec<&'k IndexedKey>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1")?;
    let mut missing = Vec::new();
    for key in keys {
        let name = key.index_name();
        let exists = stmt
            .query_row([name.trim_matches('"')], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            missing.push(key);
        }
    }
    Ok(missing)
}

/// Applies pending migrations and creates missing key indexes, in one `BEGIN IMMEDIATE`
/// transaction that re-reads the version once it holds the write lock.
fn migrate(conn: &Connection, keys: &[IndexedKey]) -> Result<(), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let found = inspect(&tx)?;
    found.check_writable()?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(found.version) {
        match migration {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::Step(step) => step(&tx)?,
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    for key in keys {
        tx.execute_batch(&key.create_sql(Dialect::Sqlite, Some(layout::BUCKET)))?;
    }
    tx.commit()?;
    Ok(())
}

/// Chains the events a store held before it had a hash chain, in log order, from the
/// purge anchor (whose hash is unknown for a store purged before: 32 zero bytes), and
/// records the head's hash. The chain vouches for these events from the migration on.
fn chain_existing(tx: &Connection) -> Result<(), StoreError> {
    const BATCH: i64 = 1000;
    let mut hasher = crate::chain::ChainHasher::new();
    let (mut last_seq, mut prev): (i64, crate::chain::ChainHash) = {
        let (purged, hash): (i64, Vec<u8>) = tx.query_row(
            "SELECT purged_through, purged_hash FROM audit_log_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        (purged, columns::hash_value(&hash)?)
    };
    let mut select = tx.prepare(&format!(
        "SELECT {} FROM audit_logs WHERE seq > ?1 ORDER BY seq LIMIT {BATCH}",
        *COLUMN_LIST
    ))?;
    let mut update = tx.prepare("UPDATE audit_logs SET hash = ?1 WHERE seq = ?2")?;
    loop {
        let events = select
            .query_map([last_seq], |row| Ok(super::row::read_event(row)))?
            .map(|r| r?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::store::chain::unchainable)?;
        let Some((last, _)) = events.last() else {
            break;
        };
        last_seq = columns::seq_param(*last);
        for (seq, event) in &events {
            prev = hasher.hash(&prev, *seq, event);
            update.execute(rusqlite::params![
                prev.as_bytes().as_slice(),
                columns::seq_param(*seq)
            ])?;
        }
    }
    tx.execute(
        "UPDATE audit_log_head SET hash = ?1 WHERE id = 1",
        [prev.as_bytes().as_slice()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_uris_escape_reserved_characters() {
        assert_eq!(
            immutable_uri(Path::new("/tmp/a b/c?d#e%.db")),
            "file:/tmp/a%20b/c%3Fd%23e%25.db?immutable=1"
        );
    }
}
