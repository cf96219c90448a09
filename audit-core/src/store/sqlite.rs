//! The embedded store: one SQLite file in WAL mode (feature `sqlite`, bundled SQLite).
//!
//! Times are stored as microseconds since the Unix epoch (UTC), ids as their 16 bytes, so
//! `(time, id)` orders events exactly as the keyset cursor does. Usernames and emails use
//! `COLLATE NOCASE`. Schema changes are numbered migrations applied when the file is opened.

use std::path::Path;

use chrono::DateTime;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use uuid::Uuid;

use super::sql::{self, Dialect, KeysetSelect, Param, Side, Where};
use super::{
    ArchiveFn, Count, Cursor, Page, PageRequest, PurgeOptions, PurgeReport, StorageStats, Store,
    StoreError, recorded_pairs,
};
use crate::query::Filter;
use crate::{Actor, AuditEvent, Diff};

/// Numbered schema migrations; each runs once, in order, in its own transaction.
const MIGRATIONS: &[&str] = &[
    // 1: the log and an index for every filter key, each ending in (time, id) so that
    // filtered pages come straight off the index in keyset order.
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
    ) WITHOUT ROWID;
    CREATE INDEX audit_logs_build_reason
        ON audit_logs (json_extract(additional_fields, '$.\"build_reason\"'), time, id);",
];

const COLUMNS: &str = "id, time, actor_id, username, email, organization_id, ip, user_agent, \
    resource_type, resource_id, resource_target, resource_icon, action, diff, status_code, \
    additional_fields, request_id";

/// An SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, enables WAL and applies
    /// pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path).map_err(|e| {
            StoreError::Database(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        })?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let mut store = SqliteStore { conn };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let current = self.schema_version()?;
        if current > MIGRATIONS.len() {
            return Err(StoreError::Unsupported(format!(
                "the database schema is version {current}, newer than this build knows ({}): upgrade audit-core",
                MIGRATIONS.len()
            )));
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction().map_err(db)?;
            tx.execute_batch(migration).map_err(db)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(())
    }
}

impl KeysetSelect for SqliteStore {
    fn select(
        &mut self,
        filter: &Filter,
        cursor: Option<(&Cursor, Side)>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let w = Where::build(Dialect::Sqlite, filter, cursor)?;
        let order = sql::order_by(cursor);
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_logs WHERE {} ORDER BY {order} LIMIT {limit}",
            w.sql
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(db)?;
        let rows = stmt
            .query_map(params_from_iter(w.params.iter().map(to_sql)), read_row)
            .map_err(db)?;
        rows.map(|r| r.map_err(db).and_then(|r| r)).collect()
    }
}

impl Store for SqliteStore {
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO audit_logs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ))
                .map_err(db)?;
            for e in events {
                let diff = serde_json::to_string(&e.diff)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let additional = serde_json::to_string(&e.additional_fields)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                stmt.execute(rusqlite::params![
                    e.id.as_bytes().as_slice(),
                    e.time.timestamp_micros(),
                    e.actor.id,
                    e.actor.username,
                    e.actor.email,
                    e.organization_id,
                    e.ip.map(|ip| ip.to_string()),
                    e.user_agent,
                    e.resource_type,
                    e.resource_id,
                    e.resource_target,
                    e.resource_icon,
                    e.action,
                    diff,
                    e.status_code,
                    additional,
                    e.request_id.map(|id| id.to_string()),
                ])
                .map_err(db)?;
            }
            let mut recorded = tx
                .prepare_cached("INSERT OR IGNORE INTO audit_recorded_actions (resource_type, action) VALUES (?1, ?2)")
                .map_err(db)?;
            for (resource_type, action) in recorded_pairs(events) {
                recorded.execute([resource_type, action]).map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    fn recorded_actions(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT resource_type, action FROM audit_recorded_actions ORDER BY 1, 2",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn page(&mut self, filter: &Filter, request: &PageRequest) -> Result<Page, StoreError> {
        sql::page(self, filter, request)
    }

    fn count(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        let w = Where::build(Dialect::Sqlite, filter, None)?;
        let (sql, cap) = sql::capped_count_sql(&w.sql, cap);
        let params = params_from_iter(w.params.iter().map(to_sql));
        let n: i64 = self
            .conn
            .query_row(&sql, params, |r| r.get(0))
            .map_err(db)?;
        Ok(sql::capped(n, cap))
    }

    fn newer(
        &mut self,
        filter: &Filter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        sql::newer(self, filter, after, limit)
    }

    fn newest(&mut self) -> Result<Option<Cursor>, StoreError> {
        sql::newest(self)
    }

    fn purge(
        &mut self,
        options: &PurgeOptions,
        mut archive: Option<&mut ArchiveFn<'_>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PurgeReport, StoreError> {
        let cutoff = options.older_than.timestamp_micros();
        let mut report = PurgeReport::default();
        if options.dry_run {
            report.events = self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM audit_logs WHERE time < ?1",
                    [cutoff],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(db)? as u64;
            return Ok(report);
        }
        let batch = options.batch_size.clamp(1, 100_000);
        loop {
            let tx = self.conn.transaction().map_err(db)?;
            let deleted = if let Some(archive) = archive.as_deref_mut() {
                let events = {
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM audit_logs WHERE time < ?1 ORDER BY time, id LIMIT ?2"
                        ))
                        .map_err(db)?;
                    let rows = stmt
                        .query_map(rusqlite::params![cutoff, batch as i64], read_row)
                        .map_err(db)?;
                    rows.map(|r| r.map_err(db).and_then(|r| r))
                        .collect::<Result<Vec<_>, _>>()?
                };
                if events.is_empty() {
                    break;
                }
                archive(&events)?;
                let mut stmt = tx
                    .prepare_cached("DELETE FROM audit_logs WHERE id = ?1")
                    .map_err(db)?;
                for e in &events {
                    stmt.execute([e.id.as_bytes().as_slice()]).map_err(db)?;
                }
                events.len()
            } else {
                tx.execute(
                    "DELETE FROM audit_logs WHERE id IN \
                     (SELECT id FROM audit_logs WHERE time < ?1 ORDER BY time, id LIMIT ?2)",
                    rusqlite::params![cutoff, batch as i64],
                )
                .map_err(db)?
            };
            tx.commit().map_err(db)?;
            if deleted == 0 {
                break;
            }
            report.events += deleted as u64;
            report.batches += 1;
            progress(report.events);
        }
        Ok(report)
    }

    fn stats(&mut self) -> Result<StorageStats, StoreError> {
        let (rows, oldest, newest): (i64, Option<i64>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT COUNT(*), MIN(time), MAX(time) FROM audit_logs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(db)?;
        let page_size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(db)?;
        let page_count: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(db)?;
        // Per-object sizes come from the dbstat virtual table when SQLite has it.
        let sizes: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT COALESCE(SUM(CASE WHEN name = 'audit_logs' THEN pgsize END), 0), \
                        COALESCE(SUM(CASE WHEN name LIKE 'audit_logs_%' THEN pgsize END), 0) \
                 FROM dbstat",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .unwrap_or(None);
        let (table, index) = sizes.unwrap_or((0, 0));
        let as_time = |micros: Option<i64>| micros.and_then(DateTime::from_timestamp_micros);
        Ok(StorageStats {
            rows: rows as u64,
            table_bytes: table as u64,
            index_bytes: index as u64,
            total_bytes: (page_size * page_count) as u64,
            oldest: as_time(oldest),
            newest: as_time(newest),
            partitions: Vec::new(),
        })
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn to_sql(param: &Param) -> SqlValue {
    match param {
        Param::Text(s) => SqlValue::Text(s.clone()),
        Param::Time(t) => SqlValue::Integer(t.timestamp_micros()),
        Param::Id(id) => SqlValue::Blob(id.as_bytes().to_vec()),
        Param::Uuid(id) => SqlValue::Text(id.to_string()),
        Param::Int(i) => SqlValue::Integer(*i),
        Param::Real(f) => SqlValue::Real(*f),
    }
}

/// Reads one row; a row that cannot be decoded is an error, never silently skipped.
fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<AuditEvent, StoreError>> {
    let id: Vec<u8> = row.get(0)?;
    let time: i64 = row.get(1)?;
    let ip: Option<String> = row.get(6)?;
    let diff: String = row.get(13)?;
    let status: i64 = row.get(14)?;
    let additional: String = row.get(15)?;
    let request_id: Option<String> = row.get(16)?;
    let actor = Actor {
        id: row.get(2)?,
        username: row.get(3)?,
        email: row.get(4)?,
    };
    let (organization_id, user_agent): (Option<String>, Option<String>) =
        (row.get(5)?, row.get(7)?);
    let (resource_type, resource_id, resource_target, resource_icon, action): (
        String,
        String,
        String,
        String,
        String,
    ) = (
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
    );
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("{what} of event {id:?}"));
        Ok(AuditEvent {
            id: Uuid::from_slice(&id).map_err(|_| corrupt("id"))?,
            time: DateTime::from_timestamp_micros(time).ok_or_else(|| corrupt("time"))?,
            actor,
            organization_id,
            ip: ip
                .map(|ip| ip.parse())
                .transpose()
                .map_err(|_| corrupt("ip"))?,
            user_agent,
            resource_type,
            resource_id,
            resource_target,
            resource_icon,
            action,
            diff: serde_json::from_str::<Diff>(&diff).map_err(|_| corrupt("diff"))?,
            status_code: u16::try_from(status).map_err(|_| corrupt("status code"))?,
            additional_fields: serde_json::from_str(&additional)
                .map_err(|_| corrupt("additional fields"))?,
            request_id: request_id
                .map(|r| Uuid::try_parse(&r))
                .transpose()
                .map_err(|_| corrupt("request id"))?,
        })
    })())
}
