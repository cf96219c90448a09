//! The Postgres store, for deployments where many service replicas write one log (feature
//! `postgres`).
//!
//! Diffs and additional fields are `jsonb`, addresses `inet`, ids `uuid`. Batches arrive with
//! binary `COPY` in one transaction, which first takes the row lock of the log's head row
//! (`audit_log_head`): appenders are serialised, so log positions are given out and become
//! visible in commit order. The transaction also sends `NOTIFY audit_events` with the new
//! head, for followers that `LISTEN`.
//!
//! With [`Partitioning::Monthly`] the table is range-partitioned by month, partitions are
//! created as events arrive, and a purge drops a whole partition when its events are exactly
//! the next stretch of the log to purge.
//!
//! A lost connection (a server restart, a proxy, `pg_terminate_backend`) is replaced, with
//! bounded backoff, and the operation tried again; an append is idempotent, so a batch that
//! had committed before the connection dropped is not stored twice.

mod connection;
mod purge;
mod row;
mod schema;

use std::collections::{BTreeSet, HashSet};

use chrono::Datelike;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::ToSql;
use uuid::Uuid;

use self::connection::{Connection, RECONNECT_DELAYS};
use self::schema::Month;
use super::columns::{self, COLUMN_LIST, HEAD_COLUMNS};
use super::log::{self, Head};
use super::sql::{self, Dialect, IndexedKey, Param, SqlRead};
use super::{
    ArchiveFn, ChainRow, ChainSpan, Count, Cursor, LogSpan, Page, PageRequest, PurgeOptions,
    PurgeReport, StorageStats, Store, StoreError, StoredCheckpoint, StoredEvent, recorded_pairs,
};
use crate::AuditEvent;
use crate::chain::ChainHead;
use crate::query::Filter;

/// How the table is laid out. Chosen when the table is first created; an existing table
/// keeps its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioning {
    /// One plain table.
    #[default]
    None,
    /// Range partitions by calendar month (UTC), named `audit_logs_pYYYY_MM`.
    Monthly,
}

/// Connection options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The schema holding the tables (a writer creates it if missing): a lowercase
    /// identifier.
    pub schema: String,
    /// The table layout, for a new table.
    pub partitioning: Partitioning,
    /// Additional keys (`additional_fields` entries) the application filters by often, such
    /// as Coder's `build_reason`: a writer creates an expression index for each, if missing.
    pub indexed_keys: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            schema: "public".into(),
            partitioning: Partitioning::None,
            indexed_keys: Vec::new(),
        }
    }
}

/// The channel an append notifies with the new head position.
pub const NOTIFY_CHANNEL: &str = "audit_events";

/// A Postgres-backed [`Store`].
pub struct PostgresStore {
    conn: Connection,
    read_only: bool,
    partitioned: bool,
    /// Month partitions known to exist.
    partitions: BTreeSet<Month>,
}

impl PostgresStore {
    /// Connects to write: creates the schema if needed and applies pending migrations.
    pub fn connect(url: &str, options: Options) -> Result<Self, StoreError> {
        let schema = checked_schema(&options.schema)?;
        let keys: Vec<IndexedKey> = options
            .indexed_keys
            .iter()
            .map(|k| IndexedKey::new(k))
            .collect::<Result<_, _>>()?;
        let mut conn = Connection::open(url, schema)?;
        let location = conn.location().to_owned();
        schema::migrate(&mut conn, schema, options.partitioning, &keys)
            .map_err(|e| e.context(format!("{location}: cannot create or migrate the store")))?;
        Self::ready(conn, false)
    }

    /// Connects to read. Runs no DDL and no `SET`: a role with only `USAGE` on the schema
    /// and `SELECT` on its tables can read. Fails on a schema without an audit store or
    /// with one of another schema version.
    pub fn connect_read_only(url: &str, options: Options) -> Result<Self, StoreError> {
        let schema = checked_schema(&options.schema)?;
        let mut conn = Connection::open(url, schema)?;
        let location = conn.location().to_owned();
        schema::check_readable(&mut conn, schema).map_err(|e| e.context(&location))?;
        Self::ready(conn, true)
    }

    fn ready(mut conn: Connection, read_only: bool) -> Result<Self, StoreError> {
        let location = conn.location().to_owned();
        let partitioned = schema::is_partitioned(&mut conn).map_err(|e| e.context(&location))?;
        Ok(PostgresStore {
            conn,
            read_only,
            partitioned,
            partitions: BTreeSet::new(),
        })
    }

    /// Whether the table is range-partitioned by month.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Whether this store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn writable(&self) -> Result<(), StoreError> {
        StoreError::check_writable(self.read_only, self.conn.location())
    }

    /// Runs `op`; when the connection is lost, replaces it (with backoff, a bounded number
    /// of times) and runs `op` again. The error, if any, names the store's location.
    fn retrying<T>(
        &mut self,
        mut op: impl FnMut(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut delays = RECONNECT_DELAYS.iter();
        loop {
            let error = match op(self) {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !self.conn.is_lost(&error) {
                return Err(error.context(self.conn.location()));
            }
            let mut last = error;
            loop {
                let Some(delay) = delays.next() else {
                    return Err(last.context(format!(
                        "{} (gave up after {} reconnection attempts)",
                        self.conn.location(),
                        RECONNECT_DELAYS.len()
                    )));
                };
                std::thread::sleep(*delay);
                match self.conn.reconnect() {
                    Ok(()) => break,
                    Err(e) if e.is_connection() => last = e,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn head_row(&mut self) -> Result<Head, StoreError> {
        let statement = self.conn.prepare(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_log_head WHERE id = 1"
        ))?;
        let row = self.conn.client().query_one(&statement, &[])?;
        head_of(&row)
    }

    /// Creates the month partitions `events` need (idempotent, safe with concurrent writers).
    fn ensure_partitions(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let months: BTreeSet<Month> = events
            .iter()
            .map(|e| (e.time.year(), e.time.month()))
            .collect();
        for month in months.difference(&self.partitions.clone()) {
            // A month no partition can be made for is left out: its events find no
            // partition, and are rejected one by one.
            let Some(sql) = schema::create_partition_sql(*month) else {
                continue;
            };
            if let Err(e) = self.conn.client().batch_execute(&sql) {
                // Another replica may have created it between our check and our CREATE.
                let exists: bool = self
                    .conn
                    .client()
                    .query_one(
                        "SELECT to_regclass($1) IS NOT NULL",
                        &[&schema::partition_name(*month)],
                    )?
                    .get(0);
                if !exists {
                    return Err(e.into());
                }
            }
            self.partitions.insert(*month);
        }
        Ok(())
    }

    /// One transaction: under the head row's lock, skip what is stored, number and copy the
    /// rest, record the actions, move the head, notify.
    fn append_once(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if self.partitioned {
            self.ensure_partitions(events)?;
        }
        let lock = self.conn.prepare(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_log_head WHERE id = 1 FOR UPDATE"
        ))?;
        let stored = self.conn.prepare(
            "SELECT time, id FROM audit_logs \
             WHERE (time, id) IN (SELECT * FROM unnest($1::timestamptz[], $2::uuid[]))",
        )?;
        let copy = self.conn.prepare(&format!(
            "COPY audit_logs ({}) FROM STDIN BINARY",
            *COLUMN_LIST
        ))?;
        let finish = self.conn.prepare(
            "WITH recorded AS (
                 INSERT INTO audit_recorded_actions (resource_type, action)
                 SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING),
             head AS (UPDATE audit_log_head SET seq = $3, hash = $6 WHERE id = 1)
             SELECT pg_notify($4, $5)",
        )?;
        let mut tx = self.conn.client().transaction()?;
        let head = head_of(&tx.query_one(&lock, &[])?)?;
        let times: Vec<_> = events.iter().map(|e| e.time).collect();
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let already: HashSet<log::EventKey> = tx
            .query(&stored, &[&times, &ids])?
            .iter()
            .map(|r| log::EventKey::new(r.get(0), r.get(1)))
            .collect();
        let fresh = log::unstored(events, |e| already.contains(&log::EventKey::of(e)));
        if fresh.is_empty() {
            return Ok(());
        }
        let (entries, new_head) = log::number(head, fresh)?;
        let mut writer = BinaryCopyInWriter::new(tx.copy_in(&copy)?, &row::column_types());
        for entry in &entries {
            row::copy(&mut writer, entry)?;
        }
        writer.finish()?;
        let (types, actions): (Vec<&str>, Vec<&str>) =
            recorded_pairs(entries.iter().map(|e| &*e.event))
                .into_iter()
                .unzip();
        let head_seq = columns::seq_param(new_head.seq);
        tx.query(
            &finish,
            &[
                &types,
                &actions,
                &head_seq,
                &NOTIFY_CHANNEL,
                &new_head.seq.to_string(),
                &new_head.hash.as_bytes().as_slice(),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// An append, tried again once with fresh partition knowledge when a partition this
    /// store believed in is gone (another process's purge dropped it).
    fn append_batch(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        match self.retrying(|s| s.append_once(events)) {
            Err(e) if self.partitioned && e.sqlstate() == Some(NO_PARTITION) => {
                self.partitions.clear();
                self.retrying(|s| s.append_once(events))
            }
            other => other,
        }
    }

    fn storage_stats(&mut self) -> Result<StorageStats, StoreError> {
        let row = self
            .conn
            .client()
            .query_one("SELECT COUNT(*), MIN(time), MAX(time) FROM audit_logs", &[])?;
        let rows: i64 = row.get(0);
        // Coder's disk-usage query, summed over partitions when there are any.
        let relations = if self.partitioned {
            "SELECT relid FROM pg_partition_tree('audit_logs') WHERE isleaf"
        } else {
            "SELECT 'audit_logs'::regclass AS relid"
        };
        let sizes = self.conn.client().query_one(
            &format!(
                "SELECT COALESCE(SUM(pg_relation_size(relid)), 0)::bigint,
                        COALESCE(SUM(pg_indexes_size(relid)), 0)::bigint,
                        COALESCE(SUM(pg_total_relation_size(relid)), 0)::bigint
                 FROM ({relations}) r"
            ),
            &[],
        )?;
        let partitions = if self.partitioned {
            self.existing_partitions()?
                .into_iter()
                .map(schema::partition_name)
                .collect()
        } else {
            Vec::new()
        };
        Ok(StorageStats {
            rows: rows as u64,
            table_bytes: sizes.get::<_, i64>(0) as u64,
            index_bytes: sizes.get::<_, i64>(1) as u64,
            total_bytes: sizes.get::<_, i64>(2) as u64,
            oldest: row.get(1),
            newest: row.get(2),
            partitions,
        })
    }

    /// Month partitions that exist, oldest first.
    fn existing_partitions(&mut self) -> Result<Vec<Month>, StoreError> {
        let rows = self.conn.client().query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'audit_logs'::regclass ORDER BY c.relname",
            &[],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| schema::parse_partition_name(r.get::<_, &str>(0)))
            .collect())
    }
}

/// The head row, selected as [`HEAD_COLUMNS`].
fn head_of(row: &postgres::Row) -> Result<Head, StoreError> {
    columns::head(row.get(0), row.get(1), row.get(2), row.get(3))
}

/// `check_violation`: also what Postgres says when no partition takes a row.
const NO_PARTITION: &str = "23514";

fn checked_schema(schema: &str) -> Result<&str, StoreError> {
    let valid = schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(StoreError::InvalidRequest(format!(
            "invalid schema name `{schema}`: use a lowercase identifier of at most 63 characters, such as `audit`"
        )));
    }
    Ok(schema)
}

impl SqlRead for PostgresStore {
    const DIALECT: Dialect = Dialect::Postgres;

    fn query_events(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let params = to_params(params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        self.retrying(|s| {
            let statement = s.conn.prepare(sql)?;
            let rows = s.conn.client().query(&statement, &refs)?;
            rows.iter().map(StoredEvent::try_from).collect()
        })
    }

    fn query_count(&mut self, sql: &str, params: &[Param]) -> Result<i64, StoreError> {
        let params = to_params(params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        self.retrying(|s| Ok(s.conn.client().query_one(sql, &refs)?.get(0)))
    }
}

impl Store for PostgresStore {
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.writable()?;
        if events.is_empty() {
            return Ok(());
        }
        super::batch::append_isolating(events, &mut |chunk| self.append_batch(chunk))
    }

    fn recorded_actions(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.retrying(|s| {
            let rows = s.conn.client().query(
                "SELECT resource_type, action FROM audit_recorded_actions ORDER BY 1, 2",
                &[],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn page(&mut self, filter: &Filter, request: &PageRequest) -> Result<Page, StoreError> {
        sql::page(self, filter, request)
    }

    fn page_newer(
        &mut self,
        filter: &Filter,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<Page, StoreError> {
        sql::page_newer(self, filter, cursor, limit)
    }

    fn count(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        self.count_capped(filter, cap)
    }

    fn newer(
        &mut self,
        filter: &Filter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        sql::newer(self, filter, after, limit)
    }

    fn head(&mut self) -> Result<LogSpan, StoreError> {
        self.retrying(|s| s.head_row()).map(|h| h.span())
    }

    fn purge(
        &mut self,
        options: &PurgeOptions,
        archive: Option<&mut ArchiveFn<'_>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PurgeReport, StoreError> {
        if !options.dry_run {
            self.writable()?;
        }
        super::purge::purge(self, options, archive, progress)
    }

    fn stats(&mut self) -> Result<StorageStats, StoreError> {
        self.retrying(|s| s.storage_stats())
    }

    fn chain(&mut self) -> Result<ChainSpan, StoreError> {
        self.retrying(|s| s.head_row()).map(|h| h.chain())
    }

    fn scan_chain(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(&ChainSpan, ChainRow),
    ) -> Result<ChainSpan, StoreError> {
        // Not retried: rows already handed over cannot be taken back.
        self.scan(from, visit).map_err(|e| {
            let location = self.conn.location().to_owned();
            e.context(format!("{location}: cannot read the chain"))
        })
    }

    fn add_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        self.writable()?;
        let (seq, hash) = (
            columns::seq_param(checkpoint.head.seq),
            checkpoint.head.hash.as_bytes().as_slice(),
        );
        self.retrying(|s| {
            s.conn.client().execute(
                "INSERT INTO audit_checkpoints (seq, hash, time, note) VALUES ($1, $2, $3, $4)",
                &[&seq, &hash, &checkpoint.time, &checkpoint.note],
            )?;
            Ok(())
        })
    }

    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.retrying(|s| {
            let rows = s.conn.client().query(
                "SELECT seq, hash, time, note FROM audit_checkpoints ORDER BY id",
                &[],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(StoredCheckpoint {
                        head: ChainHead {
                            seq: columns::seq_value(r.get(0))?,
                            hash: columns::hash_value(r.get(1))?,
                        },
                        time: r.get(2),
                        note: r.get(3),
                    })
                })
                .collect()
        })
    }
}

impl PostgresStore {
    /// The chain span and every row from `from` on, in one `REPEATABLE READ READ ONLY`
    /// transaction (a snapshot), streamed through a portal a thousand rows at a time.
    fn scan(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(&ChainSpan, ChainRow),
    ) -> Result<ChainSpan, StoreError> {
        let select = self.conn.prepare(&format!(
            "SELECT {} FROM audit_logs WHERE seq >= $1 ORDER BY seq",
            *COLUMN_LIST
        ))?;
        let head = self.conn.prepare(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_log_head WHERE id = 1"
        ))?;
        let mut tx = self
            .conn
            .client()
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let span = head_of(&tx.query_one(&head, &[])?)?.chain();
        let from = columns::seq_param(from);
        let portal = tx.bind(&select, &[&from])?;
        loop {
            let rows = tx.query_portal(&portal, 1000)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                visit(&span, row::read_chain_row(row));
            }
        }
        tx.commit()?;
        Ok(span)
    }
}

fn to_params(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Text(s) => Box::new(s.clone()),
                Param::Time(t) => Box::new(*t),
                Param::Id(id) | Param::Uuid(id) => Box::new(*id),
                Param::Int(i) => Box::new(*i),
                Param::Real(f) => Box::new(*f),
                Param::Seq(seq) => Box::new(columns::seq_param(*seq)),
            }
        })
        .collect()
}
