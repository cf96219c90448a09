//! The Postgres store, for deployments where many service replicas write one log (feature
//! `postgres`).
//!
//! Diffs and additional fields are `jsonb`, addresses `inet`, ids `uuid`. Batches arrive with
//! binary `COPY` in one transaction. With [`Partitioning::Monthly`] the table is
//! range-partitioned by month, partitions are created as events arrive, and a purge drops
//! whole partitions instead of deleting their rows. Migrations are numbered and applied on
//! connect under an advisory lock, so replicas starting together migrate once.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Row};
use uuid::Uuid;

use super::sql::{self, Dialect, KeysetSelect, Param, Side, Where};
use super::{
    ArchiveFn, Count, Cursor, Page, PageRequest, PurgeOptions, PurgeReport, StorageStats, Store,
    StoreError, recorded_pairs,
};
use crate::query::Filter;
use crate::{Actor, AuditEvent};

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
    /// The schema holding the tables (created if missing): a lowercase identifier.
    pub schema: String,
    /// The table layout, for a new table.
    pub partitioning: Partitioning,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            schema: "public".into(),
            partitioning: Partitioning::None,
        }
    }
}

const COLUMNS: &str = "id, time, actor_id, username, email, organization_id, ip, user_agent, \
    resource_type, resource_id, resource_target, resource_icon, action, diff, status_code, \
    additional_fields, request_id";

const COLUMN_TYPES: &[Type] = &[
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

/// Migration 1; `{partition}` is empty or `PARTITION BY RANGE (time)`.
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
    );
    CREATE INDEX audit_logs_build_reason ON audit_logs ((additional_fields ->> 'build_reason'), time, id);";

/// A Postgres-backed [`Store`].
pub struct PostgresStore {
    client: Client,
    partitioned: bool,
    /// Month partitions known to exist, as (year, month).
    partitions: BTreeSet<(i32, u32)>,
}

impl PostgresStore {
    /// Connects, creates the schema if needed and applies pending migrations.
    pub fn connect(url: &str, options: Options) -> Result<Self, StoreError> {
        let schema = &options.schema;
        let valid_schema = schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_schema {
            return Err(StoreError::InvalidRequest(format!(
                "invalid schema name `{schema}`: use a lowercase identifier such as `audit`"
            )));
        }
        let mut client = Client::connect(url, NoTls)
            .map_err(|e| StoreError::Database(format!("cannot connect to Postgres: {e}")))?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
            ))
            .map_err(db)?;
        let mut store = PostgresStore {
            client,
            partitioned: false,
            partitions: BTreeSet::new(),
        };
        store.migrate(options.partitioning)?;
        store.partitioned = store
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'audit_logs'::regclass)",
                &[],
            )
            .map_err(db)?
            .get(0);
        Ok(store)
    }

    /// Whether the table is range-partitioned by month.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    fn migrate(&mut self, partitioning: Partitioning) -> Result<(), StoreError> {
        let partition = match partitioning {
            Partitioning::None => "",
            Partitioning::Monthly => "PARTITION BY RANGE (time)",
        };
        let migrations = [CREATE_TABLE.replace("{partition}", partition)];
        let mut tx = self.client.transaction().map_err(db)?;
        // One migrator at a time across every replica.
        tx.execute("SELECT pg_advisory_xact_lock(7301001)", &[])
            .map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS audit_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(db)?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM audit_migrations",
                &[],
            )
            .map_err(db)?
            .get(0);
        let current = usize::try_from(current).unwrap_or(0);
        if current > migrations.len() {
            return Err(StoreError::Unsupported(format!(
                "the audit schema is version {current}, newer than this build knows ({}): upgrade audit-core",
                migrations.len()
            )));
        }
        for (i, sql) in migrations.iter().enumerate().skip(current) {
            tx.batch_execute(sql).map_err(db)?;
            tx.execute(
                "INSERT INTO audit_migrations (version) VALUES ($1)",
                &[&((i + 1) as i32)],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Creates the month partitions `events` need (idempotent, safe with concurrent writers).
    fn ensure_partitions(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let months: BTreeSet<(i32, u32)> = events
            .iter()
            .map(|e| (e.time.year(), e.time.month()))
            .collect();
        for (year, month) in months.difference(&self.partitions.clone()) {
            let (from, to) = month_bounds(*year, *month).ok_or_else(|| {
                StoreError::InvalidRequest(format!("event time out of range: {year}-{month}"))
            })?;
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF audit_logs FOR VALUES FROM ('{from}') TO ('{to}')",
                partition_name(*year, *month)
            );
            if let Err(e) = self.client.batch_execute(&sql) {
                // Another replica may have created it between our check and our CREATE.
                let exists: bool = self
                    .client
                    .query_one(
                        "SELECT to_regclass($1) IS NOT NULL",
                        &[&partition_name(*year, *month)],
                    )
                    .map_err(db)?
                    .get(0);
                if !exists {
                    return Err(db(e));
                }
            }
            self.partitions.insert((*year, *month));
        }
        Ok(())
    }

    /// Month partitions that exist, oldest first.
    fn existing_partitions(&mut self) -> Result<Vec<(i32, u32)>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'audit_logs'::regclass ORDER BY c.relname",
                &[],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .filter_map(|r| parse_partition_name(r.get::<_, &str>(0)))
            .collect())
    }

    fn purge_rows(
        &mut self,
        cutoff: DateTime<Utc>,
        batch: i64,
        archive: &mut Option<&mut ArchiveFn<'_>>,
        report: &mut PurgeReport,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        loop {
            let mut tx = self.client.transaction().map_err(db)?;
            let deleted = if let Some(archive) = archive.as_deref_mut() {
                let rows = tx
                    .query(
                        &format!("SELECT {COLUMNS} FROM audit_logs WHERE time < $1 ORDER BY time, id LIMIT $2"),
                        &[&cutoff, &batch],
                    )
                    .map_err(db)?;
                let events = rows.iter().map(read_row).collect::<Result<Vec<_>, _>>()?;
                if events.is_empty() {
                    break;
                }
                archive(&events)?;
                let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
                let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.time).collect();
                tx.execute(
                    "DELETE FROM audit_logs WHERE (time, id) IN (SELECT * FROM unnest($1::timestamptz[], $2::uuid[]))",
                    &[&times, &ids],
                )
                .map_err(db)?
            } else {
                tx.execute(
                    "DELETE FROM audit_logs WHERE (time, id) IN \
                     (SELECT time, id FROM audit_logs WHERE time < $1 ORDER BY time, id LIMIT $2)",
                    &[&cutoff, &batch],
                )
                .map_err(db)?
            };
            tx.commit().map_err(db)?;
            if deleted == 0 {
                break;
            }
            report.events += deleted;
            report.batches += 1;
            progress(report.events);
        }
        Ok(())
    }
}

impl KeysetSelect for PostgresStore {
    fn select(
        &mut self,
        filter: &Filter,
        cursor: Option<(&Cursor, Side)>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let w = Where::build(Dialect::Postgres, filter, cursor)?;
        let order = sql::order_by(cursor);
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_logs WHERE {} ORDER BY {order} LIMIT {limit}",
            w.sql
        );
        let params = to_params(&w.params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let rows = self.client.query(&sql, &refs).map_err(db)?;
        rows.iter().map(read_row).collect()
    }
}

impl Store for PostgresStore {
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.partitioned {
            self.ensure_partitions(events)?;
        }
        let mut tx = self.client.transaction().map_err(db)?;
        let sink = tx
            .copy_in(&format!("COPY audit_logs ({COLUMNS}) FROM STDIN BINARY"))
            .map_err(db)?;
        let mut writer = BinaryCopyInWriter::new(sink, COLUMN_TYPES);
        for e in events {
            let diff =
                serde_json::to_value(&e.diff).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let additional = serde_json::Value::Object(e.additional_fields.clone());
            let status = i32::from(e.status_code);
            writer
                .write(&[
                    &e.id,
                    &e.time,
                    &e.actor.id,
                    &e.actor.username,
                    &e.actor.email,
                    &e.organization_id,
                    &e.ip,
                    &e.user_agent,
                    &e.resource_type,
                    &e.resource_id,
                    &e.resource_target,
                    &e.resource_icon,
                    &e.action,
                    &diff,
                    &status,
                    &additional,
                    &e.request_id,
                ])
                .map_err(db)?;
        }
        writer.finish().map_err(db)?;
        let pairs = recorded_pairs(events);
        let (types, actions): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
        tx.execute(
            "INSERT INTO audit_recorded_actions (resource_type, action) \
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&types, &actions],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn recorded_actions(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT resource_type, action FROM audit_recorded_actions ORDER BY 1, 2",
                &[],
            )
            .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn page(&mut self, filter: &Filter, request: &PageRequest) -> Result<Page, StoreError> {
        sql::page(self, filter, request)
    }

    fn count(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        let w = Where::build(Dialect::Postgres, filter, None)?;
        let (sql, cap) = sql::capped_count_sql(&w.sql, cap);
        let params = to_params(&w.params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let n: i64 = self.client.query_one(&sql, &refs).map_err(db)?.get(0);
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
        let cutoff = options.older_than;
        let mut report = PurgeReport::default();
        if options.dry_run {
            let n: i64 = self
                .client
                .query_one(
                    "SELECT COUNT(*) FROM audit_logs WHERE time < $1",
                    &[&cutoff],
                )
                .map_err(db)?
                .get(0);
            report.events = n as u64;
            return Ok(report);
        }
        let batch = options.batch_size.clamp(1, 100_000) as i64;
        if self.partitioned {
            // Whole months before the cut-off go at once: archive their rows, then drop.
            for (year, month) in self.existing_partitions()? {
                let Some((_, end)) = month_bounds(year, month) else {
                    continue;
                };
                if end.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) > Some(cutoff) {
                    continue;
                }
                let name = partition_name(year, month);
                let rows: i64 = self
                    .client
                    .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])
                    .map_err(db)?
                    .get(0);
                if let Some(archive) = archive.as_deref_mut() {
                    let mut last: Option<(DateTime<Utc>, Uuid)> = None;
                    loop {
                        let rows = match last {
                            None => self.client.query(
                                &format!("SELECT {COLUMNS} FROM {name} ORDER BY time, id LIMIT $1"),
                                &[&batch],
                            ),
                            Some((t, id)) => self.client.query(
                                &format!("SELECT {COLUMNS} FROM {name} WHERE (time, id) > ($1, $2) ORDER BY time, id LIMIT $3"),
                                &[&t, &id, &batch],
                            ),
                        }
                        .map_err(db)?;
                        let events = rows.iter().map(read_row).collect::<Result<Vec<_>, _>>()?;
                        let Some(tail) = events.last() else { break };
                        last = Some((tail.time, tail.id));
                        archive(&events)?;
                    }
                }
                self.client
                    .batch_execute(&format!("DROP TABLE {name}"))
                    .map_err(db)?;
                self.partitions.remove(&(year, month));
                report.events += rows as u64;
                report.partitions_dropped += 1;
                progress(report.events);
            }
        }
        self.purge_rows(cutoff, batch, &mut archive, &mut report, progress)?;
        Ok(report)
    }

    fn stats(&mut self) -> Result<StorageStats, StoreError> {
        let row = self
            .client
            .query_one("SELECT COUNT(*), MIN(time), MAX(time) FROM audit_logs", &[])
            .map_err(db)?;
        let rows: i64 = row.get(0);
        // The seed's disk-usage query, summed over partitions when there are any.
        let relations = if self.partitioned {
            "SELECT relid FROM pg_partition_tree('audit_logs') WHERE isleaf"
        } else {
            "SELECT 'audit_logs'::regclass AS relid"
        };
        let sizes = self
            .client
            .query_one(
                &format!(
                    "SELECT COALESCE(SUM(pg_relation_size(relid)), 0)::bigint,
                            COALESCE(SUM(pg_indexes_size(relid)), 0)::bigint,
                            COALESCE(SUM(pg_total_relation_size(relid)), 0)::bigint
                     FROM ({relations}) r"
                ),
                &[],
            )
            .map_err(db)?;
        let partitions = if self.partitioned {
            self.existing_partitions()?
                .into_iter()
                .map(|(y, m)| partition_name(y, m))
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
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::Database(e.to_string())
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
            }
        })
        .collect()
}

fn partition_name(year: i32, month: u32) -> String {
    format!("audit_logs_p{year:04}_{month:02}")
}

fn parse_partition_name(name: &str) -> Option<(i32, u32)> {
    let rest = name.strip_prefix("audit_logs_p")?;
    let (year, month) = rest.split_once('_')?;
    Some((year.parse().ok()?, month.parse().ok()?))
}

/// The first day of the month and of the next one.
fn month_bounds(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let from = NaiveDate::from_ymd_opt(year, month, 1)?;
    let to = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((from, to))
}

/// Reads one row; a row that cannot be decoded is an error, never silently skipped.
fn read_row(row: &Row) -> Result<AuditEvent, StoreError> {
    let corrupt = |e: postgres::Error| StoreError::Corrupt(e.to_string());
    let diff: serde_json::Value = row.try_get(13).map_err(corrupt)?;
    let additional: serde_json::Value = row.try_get(15).map_err(corrupt)?;
    let status: i32 = row.try_get(14).map_err(corrupt)?;
    Ok(AuditEvent {
        id: row.try_get(0).map_err(corrupt)?,
        time: row.try_get(1).map_err(corrupt)?,
        actor: Actor {
            id: row.try_get(2).map_err(corrupt)?,
            username: row.try_get(3).map_err(corrupt)?,
            email: row.try_get(4).map_err(corrupt)?,
        },
        organization_id: row.try_get(5).map_err(corrupt)?,
        ip: row.try_get(6).map_err(corrupt)?,
        user_agent: row.try_get(7).map_err(corrupt)?,
        resource_type: row.try_get(8).map_err(corrupt)?,
        resource_id: row.try_get(9).map_err(corrupt)?,
        resource_target: row.try_get(10).map_err(corrupt)?,
        resource_icon: row.try_get(11).map_err(corrupt)?,
        action: row.try_get(12).map_err(corrupt)?,
        diff: serde_json::from_value(diff)
            .map_err(|e| StoreError::Corrupt(format!("diff: {e}")))?,
        status_code: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("status code {status}")))?,
        additional_fields: match additional {
            serde_json::Value::Object(map) => map,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "additional fields are not an object: {other}"
                )));
            }
        },
        request_id: row.try_get(16).map_err(corrupt)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_and_months_roll_over() {
        assert_eq!(partition_name(2024, 3), "audit_logs_p2024_03");
        assert_eq!(parse_partition_name("audit_logs_p2024_03"), Some((2024, 3)));
        assert_eq!(parse_partition_name("audit_logs"), None);
        let (from, to) = month_bounds(2024, 12).unwrap();
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2024-12-01".into(), "2025-01-01".into())
        );
    }
}
