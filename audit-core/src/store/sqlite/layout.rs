//! The layout of the SQLite log (schema version 3), built so that appends keep their rate as
//! the log grows, and the migration that rebuilds an older store into it.
//!
//! What an append costs is, above all, the pages it dirties: every page a transaction
//! changes is written whole to the write-ahead log at commit. An index whose new entries land
//! all over it (a random key such as a request id, or a key with thousands of values, each
//! growing at its own place) dirties a page per new entry once it outgrows the page cache, and
//! a batch of a thousand events then writes thousands of pages. So:
//!
//! * the table is keyed by the log position (`seq INTEGER PRIMARY KEY`, SQLite's rowid):
//!   rows are appended at its end, a follower reads a range of it, and a purge deletes a
//!   prefix. A unique index on `(time, id)`, what identifies an event in every store (and
//!   orders pages), serves pages by time and finds a retried event; it grows at its end too;
//! * every filter key is indexed per **bucket** of 1,024 consecutive positions ([`BUCKET_BITS`]):
//!   `(seq >> 10, key, …)`. An append only touches the newest bucket's stretch of each such
//!   index, a few pages, whatever the key. A lookup seeks the key in each bucket; the reads
//!   in [`super::read`] walk the buckets newest first and stop as soon as the page is
//!   complete, with the time span of each bucket ([`BUCKETS_TABLE`]) telling when no older
//!   bucket can hold a newer event;
//! * fewer key indexes, since every index costs an append about as much as any other:
//!   `(resource_type, action)` serves a type, a type and an action, and an action alone (over
//!   the types recorded with it); `username` serves usernames, and emails over the usernames
//!   recorded with them (`audit_recorded_actors`); resource ids, targets and request ids
//!   (16-byte blobs; events without one are left out) have one each, as has each declared
//!   additional key.
//!
//! Schema 5 adds two things reads rely on: indexes that list the buckets by their newest and
//! by their oldest event (a page that is full after a bucket or two lists only those), and a
//! key summary of each bucket ([`super::summary`]), so that a rare key seeks only the
//! buckets that may hold it.
//!
//! A bucket's time span is what lets a page stop early: appends far out of time order (old
//! events backfilled while new ones arrive) widen the spans of the buckets they land in, and
//! keyed pages then read more buckets. Pages of time-only filters go through `(time, id)` and
//! do not depend on it.
//!
//! New stores use 8 KiB pages (fewer B-tree levels for the same rows); a migrated store keeps
//! its page size.

use rusqlite::Transaction;

use crate::store::StoreError;
use crate::store::sql::IndexedKey;

/// How many bits of a log position the bucket of its key index entries drops: a bucket holds
/// 1,024 consecutive positions.
pub(super) const BUCKET_BITS: u32 = 10;

/// A row's bucket, as the key indexes spell it (and queries must, for SQLite to use them).
pub(super) const BUCKET: &str = "seq >> 10";

/// The time span of each bucket's events: `(bucket, min_time, max_time)`.
pub(super) const BUCKETS_TABLE: &str = "audit_log_buckets";

/// A built-in key index: its name, the columns after the bucket, and which rows it holds
/// (a `WHERE` clause, or none for every row).
pub(super) struct KeyIndex {
    pub name: &'static str,
    pub columns: &'static str,
    pub rows: &'static str,
}

impl KeyIndex {
    /// `CREATE INDEX …` for this index.
    fn create_sql(&self) -> String {
        format!(
            "CREATE INDEX {} ON audit_logs ({BUCKET}, {}){};\n",
            self.name, self.columns, self.rows
        )
    }
}

/// The built-in key indexes.
///
/// Those of the keys with few values (types and actions, usernames) end with `time`, so a
/// count of a frequent key within dates reads the index alone. Those of random keys
/// (resource ids and targets, request ids) hold the bucket, the key and the position only:
/// their matches are few, a read settles its page on `(time, id)` from the row anyway, and a
/// `time` column (schemas 3 and 4) made every entry larger and the pages an append dirties in
/// them more (without it, the append ran 6 % faster in paired runs).
pub(super) const KEY_INDEXES: &[KeyIndex] = &[
    KeyIndex {
        name: "audit_logs_resource_type_action",
        columns: "resource_type, action, time",
        rows: "",
    },
    KeyIndex {
        name: "audit_logs_username",
        columns: "username, time",
        rows: "",
    },
    KeyIndex {
        name: "audit_logs_resource_id",
        columns: "resource_id",
        rows: "",
    },
    KeyIndex {
        name: "audit_logs_resource_target",
        columns: "resource_target",
        rows: "",
    },
    KeyIndex {
        name: "audit_logs_request_id",
        columns: "request_id",
        rows: " WHERE request_id IS NOT NULL",
    },
];

/// The log table, created empty under `name`.
fn create_table(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            seq INTEGER PRIMARY KEY,
            id BLOB NOT NULL,
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
            request_id BLOB
        );"
    )
}

/// The indexes of `audit_logs`, and the tables beside it that reads rely on.
fn create_indexes_and_companions() -> String {
    let mut sql = String::from("CREATE UNIQUE INDEX audit_logs_time ON audit_logs (time, id);\n");
    for index in KEY_INDEXES {
        sql.push_str(&index.create_sql());
    }
    sql.push_str(&format!(
        "CREATE TABLE {BUCKETS_TABLE} (
            bucket INTEGER PRIMARY KEY,
            min_time INTEGER NOT NULL,
            max_time INTEGER NOT NULL
        );
        INSERT INTO {BUCKETS_TABLE} (bucket, min_time, max_time)
            SELECT {BUCKET}, MIN(time), MAX(time) FROM audit_logs GROUP BY 1;
        CREATE TABLE audit_recorded_actors (
            email TEXT NOT NULL COLLATE NOCASE,
            username TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (email, username)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO audit_recorded_actors (email, username)
            SELECT DISTINCT email, username FROM audit_logs;"
    ));
    sql
}

/// The columns of versions 2 and 3 alike, as the copy from one to the other reads them.
const COPIED_COLUMNS: &str = "seq, id, time, actor_id, username, email, organization_id, ip, \
    user_agent, resource_type, resource_id, resource_target, resource_icon, action, diff, \
    status_code, additional_fields";

/// Migration 3: rebuilds a version 2 store into this layout, in the migration's transaction.
/// Rows keep their positions and contents (request ids become their 16 bytes); the indexes
/// of declared keys are recreated in the new shape.
pub(super) fn migrate_to_v3(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let declared = declared_keys(tx)?;
    let unreadable: i64 = tx.query_row(
        "SELECT COUNT(*) FROM audit_logs WHERE request_id IS NOT NULL \
         AND length(unhex(replace(request_id, '-', ''))) IS NOT 16",
        [],
        |r| r.get(0),
    )?;
    if unreadable > 0 {
        return Err(StoreError::Corrupt(format!(
            "{unreadable} stored events have a request id that is not a UUID: the store cannot \
             be migrated to this build's layout; export it with the build that wrote it"
        )));
    }
    tx.execute_batch(&format!(
        "{}
        INSERT INTO audit_logs_v3 ({COPIED_COLUMNS}, request_id)
            SELECT {COPIED_COLUMNS}, unhex(replace(request_id, '-', ''))
            FROM audit_logs ORDER BY seq;
        DROP TABLE audit_logs;
        ALTER TABLE audit_logs_v3 RENAME TO audit_logs;
        {}",
        create_table("audit_logs_v3"),
        create_indexes_and_companions()
    ))?;
    for key in &declared {
        tx.execute_batch(&key.create_sql(crate::store::sql::Dialect::Sqlite, Some(BUCKET)))?;
    }
    Ok(())
}

/// The indexes that list buckets by their newest event, newest first, and by their oldest,
/// oldest first (so a read that stops after a bucket or two lists only those).
const BUCKET_ORDER_INDEXES: &str =
    "CREATE INDEX audit_log_buckets_newest ON audit_log_buckets (max_time, bucket, min_time);
    CREATE INDEX audit_log_buckets_oldest ON audit_log_buckets (min_time, bucket, max_time);";

/// The key indexes version 5 rebuilt without their `time` column.
const REBUILT_IN_V5: [&str; 2] = ["audit_logs_resource_id", "audit_logs_resource_target"];

/// Migration 5: the buckets' order indexes and key summaries ([`super::summary`]), built
/// from the stored events, and the resource id and target indexes rebuilt without their `time`
/// column.
pub(super) fn migrate_to_v5(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(BUCKET_ORDER_INDEXES)?;
    let changed = KEY_INDEXES
        .iter()
        .filter(|i| REBUILT_IN_V5.contains(&i.name));
    for index in changed {
        tx.execute_batch(&format!(
            "DROP INDEX IF EXISTS {};\n{}",
            index.name,
            index.create_sql()
        ))?;
    }
    super::summary::create_and_fill(tx)
}

/// The additional keys some writer declared: the indexes on `audit_logs` named
/// `audit_logs_<key>` that are not built in.
pub(super) fn declared_keys(conn: &rusqlite::Connection) -> Result<Vec<IndexedKey>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT substr(name, 12) FROM sqlite_master \
         WHERE type = 'index' AND tbl_name = 'audit_logs' AND name LIKE 'audit\\_logs\\_%' ESCAPE '\\' \
         ORDER BY name",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut keys = Vec::new();
    for name in names {
        if let Ok(key) = IndexedKey::new(&name?) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The bucket of a log position.
pub(super) fn bucket_of(seq: u64) -> i64 {
    (seq >> BUCKET_BITS) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_expression_drops_the_bucket_bits() {
        assert_eq!(BUCKET, format!("seq >> {BUCKET_BITS}"));
        assert_eq!((bucket_of(1023), bucket_of(1024)), (0, 1));
    }
}
