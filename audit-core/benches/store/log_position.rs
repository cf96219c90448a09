//! The cost of the log position on append.
//!
//! `Store::append` now takes the appenders' lock (SQLite `BEGIN IMMEDIATE`, the Postgres head
//! row `FOR UPDATE`), looks up which events of the batch are already stored, numbers the rest,
//! inserts them with their position (one more column, one more index) and moves the head
//! (plus a `NOTIFY` on Postgres). It is compared with the append the stores had before log
//! positions, kept here only for this comparison: the same inserts into the previous schema
//! (no `seq` column or index, no head row), in one transaction per batch.
//!
//! Both write the same batches into tables that grow alike: each round appends one batch to
//! each, alternating which goes first, so drift in the machine's load hits both equally.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use audit_core::AuditEvent;
use audit_core::store::Store;
use audit_core::store::postgres::{Options, PostgresStore};
use audit_core::store::sqlite::SqliteStore;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use serde_json::Value;

use crate::{Config, Dataset, env_usize, ms, reset_schema, thousands};

/// The previous schema's log table (version 1 of both stores, without the optional index).
const SQLITE_PREVIOUS_SCHEMA: &str = "CREATE TABLE audit_logs (
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

const POSTGRES_PREVIOUS_SCHEMA: &str = "CREATE TABLE audit_logs (
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

const PREVIOUS_COLUMNS: &str = "id, time, actor_id, username, email, organization_id, ip, \
    user_agent, resource_type, resource_id, resource_target, resource_icon, action, diff, \
    status_code, additional_fields, request_id";

/// The previous append path of one store.
trait PreviousAppend {
    fn append(&mut self, events: &[AuditEvent]);
}

/// The SQLite store's append before log positions: a deferred transaction, one prepared
/// insert per event, the recorded actions, commit.
struct SqlitePrevious(rusqlite::Connection);

impl SqlitePrevious {
    fn create(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(SQLITE_PREVIOUS_SCHEMA).unwrap();
        SqlitePrevious(conn)
    }
}

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
struct PostgresPrevious(postgres::Client);

impl PostgresPrevious {
    fn create(url: &str, schema: &str) -> Self {
        reset_schema(url, schema);
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path TO {schema}; {POSTGRES_PREVIOUS_SCHEMA}"
            ))
            .unwrap();
        PostgresPrevious(client)
    }
}

impl PreviousAppend for PostgresPrevious {
    fn append(&mut self, events: &[AuditEvent]) {
        const TYPES: &[Type] = &[
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
        let mut tx = self.0.transaction().unwrap();
        let sink = tx
            .copy_in(&format!(
                "COPY audit_logs ({PREVIOUS_COLUMNS}) FROM STDIN BINARY"
            ))
            .unwrap();
        let mut writer = BinaryCopyInWriter::new(sink, TYPES);
        for e in events {
            let diff = serde_json::to_value(&e.diff).unwrap();
            let additional = Value::Object(e.additional_fields.clone());
            let status = i32::from(e.status_code);
            writer
                .write(&postgres_event_params!(e, &diff, &additional, &status))
                .unwrap();
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

/// Per-batch append times of both paths.
struct Timings {
    store: Vec<Duration>,
    previous: Vec<Duration>,
}

/// Appends `events` in batches of `batch` to both, one batch each per round, alternating
/// which goes first.
fn interleave(
    store: &mut dyn Store,
    previous: &mut dyn PreviousAppend,
    events: &[AuditEvent],
    batch: usize,
) -> Timings {
    let mut t = Timings {
        store: Vec::new(),
        previous: Vec::new(),
    };
    for (round, chunk) in events.chunks(batch).enumerate() {
        let mut time_store = || {
            let start = Instant::now();
            store.append(chunk).expect("append");
            start.elapsed()
        };
        if round % 2 == 0 {
            let s = time_store();
            let start = Instant::now();
            previous.append(chunk);
            t.previous.push(start.elapsed());
            t.store.push(s);
        } else {
            let start = Instant::now();
            previous.append(chunk);
            let p = start.elapsed();
            t.store.push(time_store());
            t.previous.push(p);
        }
    }
    t
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

struct Row {
    store: &'static str,
    batch: usize,
    events: usize,
    timings: Timings,
}

/// Runs the comparison on each store of the configuration; returns a Markdown section.
pub(crate) fn run(config: &Config, data: &Dataset, dir: &Path) -> String {
    let events = env_usize("AUDIT_BENCH_SEQ_EVENTS", 100_000).min(data.n);
    if events == 0 {
        return String::new();
    }
    // (batch size, events): large batches as the pipeline sends them under load, and small
    // ones, where the per-batch work of the log position weighs most.
    let sizes = [(1000, events), (10, (events / 20).max(10))];
    let mut rows = Vec::new();
    for (batch, n) in sizes {
        let events = data.batch(0..n);
        if config.stores.iter().any(|s| s == "sqlite") {
            eprintln!("log position, sqlite: {n} events in batches of {batch}");
            let _ = std::fs::remove_file(dir.join("seq.db"));
            let _ = std::fs::remove_file(dir.join("previous.db"));
            let mut store = SqliteStore::open(dir.join("seq.db")).expect("open");
            let mut previous = SqlitePrevious::create(&dir.join("previous.db"));
            let timings = interleave(&mut store, &mut previous, &events, batch);
            rows.push(Row {
                store: "SQLite",
                batch,
                events: n,
                timings,
            });
            for f in [
                "seq.db",
                "seq.db-wal",
                "seq.db-shm",
                "previous.db",
                "previous.db-wal",
                "previous.db-shm",
            ] {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
        if config.stores.iter().any(|s| s == "postgres") {
            eprintln!("log position, postgres: {n} events in batches of {batch}");
            let url = &config.postgres_url;
            reset_schema(url, "audit_bench_seq");
            let options = Options {
                schema: "audit_bench_seq".into(),
                ..Options::default()
            };
            let mut store = PostgresStore::connect(url, options).expect("connect");
            let mut previous = PostgresPrevious::create(url, "audit_bench_previous");
            let timings = interleave(&mut store, &mut previous, &events, batch);
            rows.push(Row {
                store: "Postgres",
                batch,
                events: n,
                timings,
            });
            drop((store, previous));
            reset_schema(url, "audit_bench_seq");
            reset_schema(url, "audit_bench_previous");
        }
    }
    let mut md = String::from(
        "#### The log position's cost on append (same batches into equally growing tables, interleaved)\n\n\
         | store | batch | events | `append` with log position | previous append | time ratio (median batch) | median batch, with / previous |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let total = |t: &[Duration]| t.iter().sum::<Duration>();
        let rate = |t: &[Duration]| row.events as f64 / total(t).as_secs_f64();
        let (with, before) = (median(&row.timings.store), median(&row.timings.previous));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} ev/s | {} ev/s | **{:.2}×** | {} ms / {} ms |",
            row.store,
            row.batch,
            thousands(row.events as f64),
            thousands(rate(&row.timings.store)),
            thousands(rate(&row.timings.previous)),
            with.as_secs_f64() / before.as_secs_f64(),
            ms(with),
            ms(before),
        );
    }
    md
}
