//! The Postgres schema: numbered migrations, applied by writers under an advisory lock so
//! replicas starting together migrate once; the check a reader makes instead (no DDL at all);
//! and the month partitions.

use chrono::{DateTime, NaiveDate, Utc};

use super::Partitioning;
use super::connection::Connection;
use crate::store::StoreError;
use crate::store::columns::{self, COLUMN_LIST};
use crate::store::sql::{Dialect, IndexedKey};

/// Migration 1; `{partition}` is empty or `PARTITION BY RANGE (time)`. (Stores created
/// before indexed keys were declared by the application also have `audit_logs_build_reason`.)
const CREATE_TABLE: &str = "CREATE TABLE audit_logs (
        id uuid NOT NULL,
        time timestamptz NOT NULL,
        actor_id text NOT NULL,
        username text NOT NULL,
        email text NOT NULL,
        organization_id text,
        ip inet,
        user_agent text,
        resource_type text NOT NULL,
        resource_id text NOT NULL,
        resource_target text NOT NULL,
        resource_icon text NOT NULL,
        action text NOT NULL,
        diff jsonb NOT NULL,
        status_code integer NOT NULL,
        additional_fields jsonb NOT NULL,
        request_id uuid,
        PRIMARY KEY (time, id)
    ) {partition};
    CREATE INDEX audit_logs_resource_type ON audit_logs (resource_type, time, id);
    CREATE INDEX audit_logs_resource_type_action ON audit_logs (resource_type, action, time, id);
    CREATE INDEX audit_logs_action ON audit_logs (action, time, id);
    CREATE INDEX audit_logs_username ON audit_logs (lower(username), time, id);
    CREATE INDEX audit_logs_email ON audit_logs (lower(email), time, id);
    CREATE INDEX audit_logs_resource_id ON audit_logs (resource_id, time, id);
    CREATE INDEX audit_logs_resource_target ON audit_logs (resource_target, time, id);
    CREATE INDEX audit_logs_request_id ON audit_logs (request_id);
    CREATE TABLE audit_recorded_actions (
        resource_type text NOT NULL,
        action text NOT NULL,
        PRIMARY KEY (resource_type, action)
    );";

/// Migration 2: the log position. Existing events are numbered in (time, id) order. The
/// index is not unique: on a partitioned table a unique index must include the partition key;
/// positions are unique because appenders hold the head row's lock. The head row holds the
/// highest position assigned and how far the log is purged.
const LOG_POSITION: &str = "ALTER TABLE audit_logs ADD COLUMN seq bigint;
    UPDATE audit_logs SET seq = numbered.n
        FROM (SELECT time, id, row_number() OVER (ORDER BY time, id) AS n FROM audit_logs) AS numbered
        WHERE audit_logs.time = numbered.time AND audit_logs.id = numbered.id;
    ALTER TABLE audit_logs ALTER COLUMN seq SET NOT NULL;
    CREATE INDEX audit_logs_seq ON audit_logs (seq);
    CREATE TABLE audit_log_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        purged_through bigint NOT NULL DEFAULT 0
    );
    INSERT INTO audit_log_head (id, seq) SELECT 1, COUNT(*) FROM audit_logs;";

/// Migration 3: the hash chain. Each event's chain hash, the head's and the last purged
/// event's (both 32 zero bytes until set), and the checkpoints `audit checkpoint` takes. The
/// hashes of existing events are computed in Rust before the column becomes `NOT NULL` (see
/// [`chain_existing`]).
const HASH_CHAIN: &str = "ALTER TABLE audit_logs ADD COLUMN hash bytea;
    ALTER TABLE audit_log_head
        ADD COLUMN hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
        ADD COLUMN purged_hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex');
    CREATE TABLE audit_checkpoints (
        id bigserial PRIMARY KEY,
        seq bigint NOT NULL,
        hash bytea NOT NULL,
        time timestamptz NOT NULL,
        note text NOT NULL
    );";

/// The schema version this build writes and reads.
pub(super) const VERSION: usize = 3;

/// The migration that adds the hash chain, after which existing events are chained.
const CHAIN_MIGRATION: usize = 3;

/// Any number, as long as every replica uses the same one.
const MIGRATION_LOCK: i64 = 7_301_001;

/// Creates the schema if it is missing, applies pending migrations and creates missing key
/// indexes, all under one advisory lock.
pub(super) fn migrate(
    conn: &mut Connection,
    schema: &str,
    partitioning: Partitioning,
    keys: &[IndexedKey],
) -> Result<(), StoreError> {
    let client = conn.client();
    // `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege even when the schema exists.
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )?
        .get(0);
    if !exists {
        client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))?;
    }
    let partition = match partitioning {
        Partitioning::None => "",
        Partitioning::Monthly => "PARTITION BY RANGE (time)",
    };
    let migrations = [
        CREATE_TABLE.replace("{partition}", partition),
        LOG_POSITION.into(),
        HASH_CHAIN.into(),
    ];
    debug_assert_eq!(migrations.len(), VERSION);
    let mut tx = client.transaction()?;
    // One migrator at a time across every replica.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // DDL only where something is missing: a writer role without the CREATE privilege can
    // write to a store that is up to date.
    let tracked: bool = tx
        .query_one("SELECT to_regclass('audit_migrations') IS NOT NULL", &[])?
        .get(0);
    if !tracked {
        tx.batch_execute(
            "CREATE TABLE audit_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )?;
    }
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM audit_migrations",
            &[],
        )?
        .get(0);
    let current = usize::try_from(current).unwrap_or(0);
    if current > VERSION {
        return Err(newer(current));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current) {
        tx.batch_execute(sql)?;
        if i + 1 == CHAIN_MIGRATION {
            chain_existing(&mut tx)?;
        }
        tx.execute(
            "INSERT INTO audit_migrations (version) VALUES ($1)",
            &[&((i + 1) as i32)],
        )?;
    }
    for key in keys {
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&key.index_name()])?
            .get(0);
        if !exists {
            tx.batch_execute(&key.create_sql(Dialect::Postgres, None))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Chains the events a store held before it had a hash chain, in log order, from the
/// purge anchor (whose hash is unknown for a store purged before: 32 zero bytes), records the
/// head's hash, and makes the column `NOT NULL`. The chain vouches for these events from the
/// migration on.
fn chain_existing(tx: &mut postgres::Transaction<'_>) -> Result<(), StoreError> {
    const BATCH: i64 = 1000;
    let mut hasher = crate::chain::ChainHasher::new();
    let row = tx.query_one(
        "SELECT purged_through, purged_hash FROM audit_log_head WHERE id = 1",
        &[],
    )?;
    let mut last_seq: i64 = row.get(0);
    let mut prev = columns::hash_value(row.get(1))?;
    let select = tx.prepare(&format!(
        "SELECT {} FROM audit_logs WHERE seq > $1 ORDER BY seq LIMIT {BATCH}",
        *COLUMN_LIST
    ))?;
    let update = tx.prepare(
        "UPDATE audit_logs AS a SET hash = v.hash \
         FROM unnest($1::bigint[], $2::bytea[]) AS v(seq, hash) WHERE a.seq = v.seq",
    )?;
    loop {
        let rows = tx.query(&select, &[&last_seq])?;
        if rows.is_empty() {
            break;
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut hashes = Vec::with_capacity(rows.len());
        for row in &rows {
            let (seq, event) =
                super::row::read_event(row).map_err(crate::store::chain::unchainable)?;
            prev = hasher.hash(&prev, seq, &event);
            last_seq = columns::seq_param(seq);
            seqs.push(last_seq);
            hashes.push(prev.as_bytes().to_vec());
        }
        tx.execute(&update, &[&seqs, &hashes])?;
    }
    tx.execute(
        "UPDATE audit_log_head SET hash = $1 WHERE id = 1",
        &[&prev.as_bytes().as_slice()],
    )?;
    tx.batch_execute("ALTER TABLE audit_logs ALTER COLUMN hash SET NOT NULL")?;
    Ok(())
}

/// What a reader checks, reading only: the schema holds an audit store of this version.
pub(super) fn check_readable(conn: &mut Connection, schema: &str) -> Result<(), StoreError> {
    let row = conn.client().query_one(
        "SELECT to_regclass('audit_logs') IS NOT NULL, to_regclass('audit_migrations') IS NOT NULL",
        &[],
    )?;
    let (has_log, has_migrations): (bool, bool) = (row.get(0), row.get(1));
    if !has_log || !has_migrations {
        return Err(StoreError::Unsupported(format!(
            "{}: no audit store in schema `{schema}` (no audit_logs table): check the URL and \
             the schema (a writer, such as the application's store backend, creates it)",
            conn.location()
        )));
    }
    let version: i32 = conn
        .client()
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM audit_migrations",
            &[],
        )?
        .get(0);
    let version = usize::try_from(version).unwrap_or(0);
    if version > VERSION {
        return Err(newer(version));
    }
    if version < VERSION {
        return Err(StoreError::Unsupported(format!(
            "{}: the audit store's schema is version {version}, older than this build's \
             ({VERSION}): open it once with a writer (the application's store backend, or \
             `audit purge`) to migrate it",
            conn.location()
        )));
    }
    Ok(())
}

fn newer(version: usize) -> StoreError {
    StoreError::Unsupported(format!(
        "the audit store's schema is version {version}, newer than this build knows \
         ({VERSION}): upgrade audit-core (or the audit CLI)"
    ))
}

/// Whether the log table is range-partitioned.
pub(super) fn is_partitioned(conn: &mut Connection) -> Result<bool, StoreError> {
    Ok(conn
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'audit_logs'::regclass)",
            &[],
        )?
        .get(0))
}

/// A month partition, as `(year, month)`.
pub(super) type Month = (i32, u32);

/// The years partitions are made for; an event outside them finds no partition and is
/// rejected on its own.
const PARTITION_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// `CREATE TABLE IF NOT EXISTS` for a month partition, or `None` outside [`PARTITION_YEARS`].
pub(super) fn create_partition_sql((year, month): Month) -> Option<String> {
    if !PARTITION_YEARS.contains(&year) {
        return None;
    }
    let (from, to) = month_bounds(year, month)?;
    Some(format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF audit_logs FOR VALUES FROM ('{from}') TO ('{to}')",
        partition_name((year, month))
    ))
}

pub(super) fn partition_name((year, month): Month) -> String {
    format!("audit_logs_p{year:04}_{month:02}")
}

pub(super) fn parse_partition_name(name: &str) -> Option<Month> {
    let rest = name.strip_prefix("audit_logs_p")?;
    let (year, month) = rest.split_once('_')?;
    Some((year.parse().ok()?, month.parse().ok()?))
}

/// The first day of the month and of the next one.
pub(super) fn month_bounds(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let from = NaiveDate::from_ymd_opt(year, month, 1)?;
    let to = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((from, to))
}

/// The first instant after the month.
pub(super) fn month_end(month: Month) -> Option<DateTime<Utc>> {
    let (_, to) = month_bounds(month.0, month.1)?;
    Some(to.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_and_months_roll_over() {
        assert_eq!(partition_name((2024, 3)), "audit_logs_p2024_03");
        assert_eq!(parse_partition_name("audit_logs_p2024_03"), Some((2024, 3)));
        assert_eq!(parse_partition_name("audit_logs"), None);
        let (from, to) = month_bounds(2024, 12).unwrap();
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2024-12-01".into(), "2025-01-01".into())
        );
        assert!(create_partition_sql((-100, 1)).is_none());
        assert!(create_partition_sql((10_000, 1)).is_none());
        assert!(
            create_partition_sql((1, 1))
                .unwrap()
                .contains("audit_logs_p0001_01")
        );
    }
}
