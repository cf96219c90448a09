//! Ingest as the log grows: `Store::append` against raw batched inserts of the same events
//! into a table with the three indexes a minimal log needs, in one run.
//!
//! The floor table has the store's columns (values converted as the SQLite store of schema 3
//! and the Postgres store convert them) and three keys: the log position (SQLite: the table's
//! `INTEGER PRIMARY KEY`; Postgres: the primary key), a unique index on the event id, and
//! `(time, id)`. Raw inserts are the plain way to fill it: SQLite, one prepared `INSERT` per
//! row inside one transaction per batch; Postgres, one binary `COPY` per batch in a
//! transaction. SQLite's floor connection uses SQLite's defaults (4 KiB pages, a 2 MiB page
//! cache) in WAL mode with `synchronous = NORMAL`, as the store's does.
//!
//! Every target gets the same batches in turn (round-robin, the order rotating each round),
//! so the tables grow alike and drift in the machine's load falls on all of them. Each
//! batch's time is recorded; rates are reported over stretches of the log (the first
//! 100,000 events, 400,000 onwards, the last 100,000).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use audit_core::AuditEvent;
use audit_core::store::Store;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

use crate::dataset::Dataset;
use crate::previous::{POSTGRES_EVENT_TYPES, PreviousAppend, copy_event};
use crate::{BATCH, reset_schema, thousands};

/// Appends one batch (and panics on an error).
type AppendFn<'a> = Box<dyn FnMut(&[AuditEvent]) + 'a>;

/// Something to append batches to.
pub(crate) struct Target<'a> {
    pub name: &'static str,
    pub append: AppendFn<'a>,
}

impl<'a> Target<'a> {
    pub(crate) fn store(name: &'static str, store: &'a mut dyn Store) -> Self {
        Target {
            name,
            append: Box::new(move |batch| store.append(batch).expect("append")),
        }
    }

    pub(crate) fn raw(name: &'static str, raw: &'a mut dyn PreviousAppend) -> Self {
        Target {
            name,
            append: Box::new(move |batch| raw.append(batch)),
        }
    }
}

/// Per-batch append times of each target, in target order.
pub(crate) struct Load {
    pub names: Vec<&'static str>,
    pub times: Vec<Vec<Duration>>,
}

/// Appends the data set to every target, a batch to each in turn.
pub(crate) fn interleave(targets: &mut [Target<'_>], data: &Dataset, label: &str) -> Load {
    let mut times: Vec<Vec<Duration>> = targets.iter().map(|_| Vec::new()).collect();
    let progress_every = (data.n / 10).max(BATCH);
    let mut start = 0;
    let mut round = 0;
    while start < data.n {
        let end = (start + BATCH).min(data.n);
        let batch = data.batch(start..end);
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let t = Instant::now();
            (targets[i].append)(&batch);
            times[i].push(t.elapsed());
        }
        if end.is_multiple_of(progress_every) {
            let rates: Vec<String> = targets
                .iter()
                .zip(&times)
                .map(|(t, times)| format!("{} {} ev/s", t.name, thousands(rate(times))))
                .collect();
            eprintln!("  {label}: {end} events; so far {}", rates.join(", "));
        }
        start = end;
        round += 1;
    }
    Load {
        names: targets.iter().map(|t| t.name).collect(),
        times,
    }
}

fn rate(times: &[Duration]) -> f64 {
    (times.len() * BATCH) as f64 / times.iter().sum::<Duration>().as_secs_f64()
}

impl Load {
    /// Batches `from..to` (in events) of every target.
    fn window(&self, from: usize, to: usize) -> Vec<f64> {
        self.times
            .iter()
            .map(|t| rate(&t[from / BATCH..(to / BATCH).min(t.len())]))
            .collect()
    }

    /// A Markdown table: each target's rate over stretches of the log, and its ratio to the
    /// first target (the floor).
    pub(crate) fn table(&self, store: &str, events: usize) -> String {
        let mut windows = if events > 100_000 {
            vec![("first 100k", 0, 100_000)]
        } else {
            vec![("all", 0, events)]
        };
        if events > 400_000 {
            windows.push(("400k onwards", 400_000, events));
        }
        if events > 100_000 {
            windows.push(("last 100k", events - 100_000, events));
        }
        let mut md = String::new();
        let header: Vec<String> = windows
            .iter()
            .map(|(name, ..)| format!("{name}: ev/s (ratio)"))
            .collect();
        let _ = writeln!(md, "| {store} | {} |", header.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(windows.len()));
        let rates: Vec<Vec<f64>> = windows
            .iter()
            .map(|(_, from, to)| self.window(*from, *to))
            .collect();
        for (i, name) in self.names.iter().enumerate() {
            let cells: Vec<String> = rates
                .iter()
                .map(|r| match i {
                    _ if self.names.len() == 1 => thousands(r[i]),
                    0 => format!("{} (1)", thousands(r[i])),
                    _ => format!("{} (**{:.2}×**)", thousands(r[i]), r[i] / r[0]),
                })
                .collect();
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        }
        md
    }
}

// ---------------------------------------------------------------------------------------------
// The floor tables
// ---------------------------------------------------------------------------------------------

/// The columns of the floor tables, in insert order.
const COLUMNS: &str = "seq, id, time, actor_id, username, email, organization_id, ip, \
    user_agent, resource_type, resource_id, resource_target, resource_icon, action, diff, \
    status_code, additional_fields, request_id";

/// SQLite: raw batched inserts into the three-index table.
pub(crate) struct SqliteFloor {
    conn: rusqlite::Connection,
    seq: i64,
}

impl SqliteFloor {
    pub(crate) fn create(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE audit_logs (
                seq INTEGER PRIMARY KEY, id BLOB NOT NULL, time INTEGER NOT NULL,
                actor_id TEXT NOT NULL, username TEXT NOT NULL COLLATE NOCASE,
                email TEXT NOT NULL COLLATE NOCASE, organization_id TEXT, ip TEXT,
                user_agent TEXT, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
                resource_target TEXT NOT NULL, resource_icon TEXT NOT NULL, action TEXT NOT NULL,
                diff TEXT NOT NULL, status_code INTEGER NOT NULL, additional_fields TEXT NOT NULL,
                request_id BLOB);
            CREATE UNIQUE INDEX floor_id ON audit_logs (id);
            CREATE INDEX floor_time ON audit_logs (time, id);",
        )
        .unwrap();
        SqliteFloor { conn, seq: 0 }
    }
}

impl PreviousAppend for SqliteFloor {
    fn append(&mut self, events: &[AuditEvent]) {
        let tx = self.conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO audit_logs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
                     ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
                ))
                .unwrap();
            for e in events {
                self.seq += 1;
                insert
                    .execute(rusqlite::params![
                        self.seq,
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
                        serde_json::to_string(&e.diff).unwrap(),
                        e.status_code,
                        serde_json::to_string(&e.additional_fields).unwrap(),
                        e.request_id.as_ref().map(|r| r.as_bytes().as_slice()),
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// Postgres: raw binary `COPY` per batch into the three-index table.
pub(crate) struct PostgresFloor {
    client: postgres::Client,
    seq: i64,
}

impl PostgresFloor {
    /// A new floor table in `schema`, which is dropped first.
    pub(crate) fn create(url: &str, schema: &str) -> Self {
        reset_schema(url, schema);
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path TO {schema};
                CREATE TABLE audit_logs (
                    seq bigint PRIMARY KEY, id uuid NOT NULL, time timestamptz NOT NULL,
                    actor_id text NOT NULL, username text NOT NULL, email text NOT NULL,
                    organization_id text, ip inet, user_agent text, resource_type text NOT NULL,
                    resource_id text NOT NULL, resource_target text NOT NULL,
                    resource_icon text NOT NULL, action text NOT NULL, diff jsonb NOT NULL,
                    status_code integer NOT NULL, additional_fields jsonb NOT NULL,
                    request_id uuid);
                CREATE UNIQUE INDEX floor_id ON audit_logs (id);
                CREATE INDEX floor_time ON audit_logs (time, id);"
            ))
            .unwrap();
        PostgresFloor { client, seq: 0 }
    }
}

impl PreviousAppend for PostgresFloor {
    fn append(&mut self, events: &[AuditEvent]) {
        let types: Vec<Type> = std::iter::once(Type::INT8)
            .chain(POSTGRES_EVENT_TYPES.iter().cloned())
            .collect();
        let mut tx = self.client.transaction().unwrap();
        let sink = tx
            .copy_in(&format!("COPY audit_logs ({COLUMNS}) FROM STDIN BINARY"))
            .unwrap();
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for e in events {
            self.seq += 1;
            copy_event(&mut writer, e, Some(self.seq));
        }
        writer.finish().unwrap();
        tx.commit().unwrap();
    }
}
