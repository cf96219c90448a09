//! The stores as they were before log positions (schema version 1): their schema and their
//! append, without the `build_reason` index stores of that time also had; and the SQLite
//! store of schema version 2 (log positions in a table keyed by event id, an index per filter
//! key ending in `(time, id)`). Fixtures for the tests that migrate such stores, and for the
//! benchmarks that compare appends with them (which include this file).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use audit_core::AuditEvent;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use serde_json::Value;

/// SQLite, version 1 (`PRAGMA user_version = 1`).
pub(crate) const SQLITE_PREVIOUS_SCHEMA: &str = "CREATE TABLE audit_logs (
        id BLOB PRIMARY KEY NOT NULL, time INTEGER NOT NULL, actor_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE, email TEXT NOT NULL COLLATE NOCASE,
        organization_id TEXT, ip TEXT, user_agent TEXT, resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL, resource_target TEXT NOT NULL, resource_icon TEXT NOT NULL,
        action TEXT NOT NULL, diff TEXT NOT NULL, status_code INTEGER NOT NULL,
        additional_fields TEXT NOT NULL, request_id TEXT) WITHOUT ROWID;
    CREATE INDEX audit_logs_time ON audit_logs (time, id);
    CREATE INDEX audit_logs_resource_type ON audit_logs (resource_type, time, id);
    CREATE INDEX audit_logs_resource_type_action ON audit_logs (resource_type, action, time, id);
    CREATE INDEX audit_logs_action ON audit_logs (action, time, id);
    CREATE INDEX audit_logs_username ON audit_logs (username, time, id);
    CREATE INDEX audit_logs_email ON audit_logs (email, time, id);
    CREATE INDEX audit_logs_resource_id ON audit_logs (resource_id, time, id);
    CREATE INDEX audit_logs_resource_target ON audit_logs (resource_target, time, id);
    CREATE INDEX audit_logs_request_id ON audit_logs (request_id);
    CREATE TABLE audit_recorded_actions (resource_type TEXT NOT NULL, action TEXT NOT NULL,
        PRIMARY KEY (resource_type, action)) WITHOUT ROWID;";

/// Postgres, version 1 (`audit_migrations` holds version 1).
pub(crate) const POSTGRES_PREVIOUS_SCHEMA: &str = "CREATE TABLE audit_logs (
        id uuid NOT NULL, time timestamptz NOT NULL, actor_id text NOT NULL,
        username text NOT NULL, email text NOT NULL, organization_id text, ip inet,
        user_agent text, resource_type text NOT NULL, resource_id text NOT NULL,
        resource_target text NOT NULL, resource_icon text NOT NULL, action text NOT NULL,
        diff jsonb NOT NULL, status_code integer NOT NULL, additional_fields jsonb NOT NULL,
        request_id uuid, PRIMARY KEY (time, id));
    CREATE INDEX audit_logs_resource_type ON audit_logs (resource_type, time, id);
    CREATE INDEX audit_logs_resource_type_action ON audit_logs (resource_type, action, time, id);
    CREATE INDEX audit_logs_action ON audit_logs (action, time, id);
    CREATE INDEX audit_logs_username ON audit_logs (lower(username), time, id);
    CREATE INDEX audit_logs_email ON audit_logs (lower(email), time, id);
    CREATE INDEX audit_logs_resource_id ON audit_logs (resource_id, time, id);
    CREATE INDEX audit_logs_resource_target ON audit_logs (resource_target, time, id);
    CREATE INDEX audit_logs_request_id ON audit_logs (request_id);
    CREATE TABLE audit_recorded_actions (resource_type text NOT NULL, action text NOT NULL,
        PRIMARY KEY (resource_type, action));";

/// The parameters of an event's row as the SQLite store has always converted them, in the
/// column order of the previous schema (without `seq`), after any leading ones given.
macro_rules! sqlite_event_params {
    ($e:expr $(, $leading:expr)*) => {
        rusqlite::params![
            $($leading,)*
            $e.id.as_bytes().as_slice(),
            $e.time.timestamp_micros(),
            $e.actor.id,
            $e.actor.username,
            $e.actor.email,
            $e.organization_id,
            $e.ip.map(|ip| ip.to_string()),
            $e.user_agent,
            $e.resource_type,
            $e.resource_id,
            $e.resource_target,
            $e.resource_icon,
            $e.action,
            serde_json::to_string(&$e.diff).unwrap(),
            $e.status_code,
            serde_json::to_string(&$e.additional_fields).unwrap(),
            $e.request_id.map(|id| id.to_string()),
        ]
    };
}

/// The same for Postgres: `diff`, `additional` and `status` are the event's converted values.
macro_rules! postgres_event_params {
    ($e:expr, $diff:expr, $additional:expr, $status:expr $(, $leading:expr)*) => {
        [
            $($leading as &(dyn postgres::types::ToSql + Sync),)*
            &$e.id,
            &$e.time,
            &$e.actor.id,
            &$e.actor.username,
            &$e.actor.email,
            &$e.organization_id,
            &$e.ip,
            &$e.user_agent,
            &$e.resource_type,
            &$e.resource_id,
            &$e.resource_target,
            &$e.resource_icon,
            &$e.action,
            $diff,
            $status,
            $additional,
            &$e.request_id,
        ]
    };
}

const PREVIOUS_COLUMNS: &str = "id, time, actor_id, username, email, organization_id, ip, \
    user_agent, resource_type, resource_id, resource_target, resource_icon, action, diff, \
    status_code, additional_fields, request_id";

/// The previous append path of one store.
pub(crate) trait PreviousAppend {
    fn append(&mut self, events: &[AuditEvent]);
}

/// The SQLite store's append before log positions: a deferred transaction, one prepared
/// insert per event, the recorded actions, commit.
#[cfg(feature = "sqlite")]
pub(crate) struct SqlitePrevious(pub rusqlite::Connection);

#[cfg(feature = "sqlite")]
impl SqlitePrevious {
    /// A new store of version 1 at `path`.
    pub(crate) fn create(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(SQLITE_PREVIOUS_SCHEMA).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        SqlitePrevious(conn)
    }
}

#[cfg(feature = "sqlite")]
impl PreviousAppend for SqlitePrevious {
    fn append(&mut self, events: &[AuditEvent]) {
        let tx = self.0.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO audit_logs ({PREVIOUS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ))
                .unwrap();
            for e in events {
                stmt.execute(sqlite_event_params!(e)).unwrap();
            }
            let mut recorded = tx
                .prepare_cached("INSERT OR IGNORE INTO audit_recorded_actions (resource_type, action) VALUES (?1, ?2)")
                .unwrap();
            for (t, a) in pairs(events) {
                recorded.execute([t, a]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// The Postgres store's append before log positions: one transaction with a binary `COPY`
/// and the recorded actions.
pub(crate) struct PostgresPrevious(pub postgres::Client);

impl PostgresPrevious {
    /// A new store of version 1 in `schema`, which must not exist.
    pub(crate) fn create(url: &str, schema: &str) -> Self {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path TO {schema}; {POSTGRES_PREVIOUS_SCHEMA}
                 CREATE TABLE audit_migrations (version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO audit_migrations (version) VALUES (1);"
            ))
            .unwrap();
        PostgresPrevious(client)
    }
}

/// The Postgres types of the previous columns, in order.
pub(crate) const POSTGRES_EVENT_TYPES: &[Type] = &[
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INET,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::INT4,
    Type::JSONB,
    Type::UUID,
];

/// Writes `e` to a binary `COPY` of the previous columns ([`POSTGRES_EVENT_TYPES`]), after a
/// leading log position if given, converting each field as the Postgres store did.
pub(crate) fn copy_event(writer: &mut BinaryCopyInWriter<'_>, e: &AuditEvent, seq: Option<i64>) {
    let diff = serde_json::to_value(&e.diff).unwrap();
    let additional = Value::Object(e.additional_fields.clone());
    let status = i32::from(e.status_code);
    match seq {
        Some(seq) => writer.write(&postgres_event_params!(
            e,
            &diff,
            &additional,
            &status,
            &seq
        )),
        None => writer.write(&postgres_event_params!(e, &diff, &additional, &status)),
    }
    .unwrap();
}

impl PreviousAppend for PostgresPrevious {
    fn append(&mut self, events: &[AuditEvent]) {
        let mut tx = self.0.transaction().unwrap();
        let sink = tx
            .copy_in(&format!(
                "COPY audit_logs ({PREVIOUS_COLUMNS}) FROM STDIN BINARY"
            ))
            .unwrap();
        let mut writer = BinaryCopyInWriter::new(sink, POSTGRES_EVENT_TYPES);
        for e in events {
            copy_event(&mut writer, e, None);
        }
        writer.finish().unwrap();
        let (types, actions): (Vec<&str>, Vec<&str>) = pairs(events).into_iter().unzip();
        tx.execute(
            "INSERT INTO audit_recorded_actions (resource_type, action) \
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&types, &actions],
        )
        .unwrap();
        tx.commit().unwrap();
    }
}

fn pairs(events: &[AuditEvent]) -> std::collections::BTreeSet<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.resource_type.as_str(), e.action.as_str()))
        .collect()
}

/// SQLite, version 2: version 1 and its migration to log positions.
pub(crate) const SQLITE_V2_MIGRATION: &str =
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
    INSERT INTO audit_log_head (id, seq) SELECT 1, COUNT(*) FROM audit_logs;";

/// The SQLite store of schema version 2 and its append: under `BEGIN IMMEDIATE`, a lookup of
/// each event's id, one prepared insert per new event numbered after the head, the recorded
/// actions, the head.
#[cfg(feature = "sqlite")]
pub(crate) struct SqliteV2(pub rusqlite::Connection);

#[cfg(feature = "sqlite")]
impl SqliteV2 {
    /// A new store of version 2 at `path`.
    pub(crate) fn create(path: &Path) -> Self {
        let SqlitePrevious(conn) = SqlitePrevious::create(path);
        conn.execute_batch(SQLITE_V2_MIGRATION).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        SqliteV2(conn)
    }
}

#[cfg(feature = "sqlite")]
impl PreviousAppend for SqliteV2 {
    fn append(&mut self, events: &[AuditEvent]) {
        use rusqlite::OptionalExtension;
        let tx = self
            .0
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let head: i64 = tx
            .query_row("SELECT seq FROM audit_log_head WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        let mut seq = head;
        {
            let mut stored = tx
                .prepare_cached("SELECT time FROM audit_logs WHERE id = ?1")
                .unwrap();
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO audit_logs (seq, {PREVIOUS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
                ))
                .unwrap();
            let mut seen = std::collections::HashSet::new();
            for e in events {
                let known = stored
                    .query_row([e.id.as_bytes().as_slice()], |r| r.get::<_, i64>(0))
                    .optional()
                    .unwrap();
                if !seen.insert(e.id) || known.is_some() {
                    continue;
                }
                seq += 1;
                insert.execute(sqlite_event_params!(e, seq)).unwrap();
            }
            let mut recorded = tx
                .prepare_cached("INSERT OR IGNORE INTO audit_recorded_actions (resource_type, action) VALUES (?1, ?2)")
                .unwrap();
            for (t, a) in pairs(events) {
                recorded.execute([t, a]).unwrap();
            }
        }
        tx.execute("UPDATE audit_log_head SET seq = ?1 WHERE id = 1", [seq])
            .unwrap();
        tx.commit().unwrap();
    }
}
