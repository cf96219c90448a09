//! The cost of the log position on append.
//!
//! `Store::append` now takes the appenders' lock (SQLite `BEGIN IMMEDIATE`, the Postgres head
//! row `FOR UPDATE`), looks up which events of the batch are already stored, numbers the rest,
//! inserts them with their position (one more column, one more index) and moves the head
//! (plus a `NOTIFY` on Postgres). It is compared with the append the stores had before log
//! positions, kept only for this comparison (and the tests that migrate a store written by
//! it; `tests/store_support/previous.rs`): the same inserts into the previous schema (no
//! `seq` column or index, no head row), in one transaction per batch.
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

use crate::dataset::Dataset;
use crate::previous::{PostgresPrevious, PreviousAppend, SqlitePrevious};
use crate::{Config, env_usize, ms, reset_schema, thousands};

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
            reset_schema(url, "audit_bench_previous");
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
