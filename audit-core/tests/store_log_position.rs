//! Followers miss nothing: two processes and two connections in this one append interleaved
//! batches whose times are out of order across writers, while followers poll
//! `Store::newer` by log position. Every event is seen exactly once, in a log without gaps,
//! on SQLite (a file) and on Postgres; and the hash chain the writers built together verifies
//! (no fork: each append chained to the head the one before it left).
//!
//! The writer processes are this test binary run again, selected by `--exact
//! writer_process` and given their role in the environment.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

#[macro_use]
mod store_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use audit_core::AuditEvent;
use audit_core::query::Filter;
use audit_core::store::postgres::{Options, PostgresStore};
use audit_core::store::sqlite::SqliteStore;
use audit_core::store::{Store, StoreUrl};
use chrono::Duration as TimeDelta;
use store_support::{base_time, events, postgres_url, rerun, role, temp_dir};
use uuid::Uuid;

const BATCHES: usize = 40;
const BATCH: usize = 25;
/// Writer processes and writer threads.
const PROCESSES: u32 = 2;
const THREADS: u32 = 2;

/// Where the writers write: an SQLite file, or a Postgres URL and schema.
#[derive(Clone)]
enum Target {
    Sqlite(String),
    Postgres(String, String),
}

impl Target {
    fn writer(&self) -> Box<dyn Store> {
        match self {
            Target::Sqlite(path) => Box::new(SqliteStore::open(path).unwrap()),
            Target::Postgres(url, schema) => Box::new(
                PostgresStore::connect(url, options(schema)).unwrap_or_else(|e| panic!("{e}")),
            ),
        }
    }

    fn reader(&self) -> Box<dyn Store> {
        match self {
            Target::Sqlite(path) => StoreUrl::Sqlite(path.into()).open_read_only().unwrap(),
            Target::Postgres(url, schema) => Box::new(
                PostgresStore::connect_read_only(url, options(schema))
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        }
    }

    fn env(&self, command: &mut std::process::Command) {
        match self {
            Target::Sqlite(path) => command.env("AUDIT_STORE_TEST_SQLITE", path),
            Target::Postgres(url, schema) => command
                .env("AUDIT_STORE_TEST_POSTGRES", url)
                .env("AUDIT_STORE_TEST_SCHEMA", schema),
        };
    }

    fn from_env() -> Self {
        match std::env::var("AUDIT_STORE_TEST_SQLITE") {
            Ok(path) => Target::Sqlite(path),
            Err(_) => Target::Postgres(
                std::env::var("AUDIT_STORE_TEST_POSTGRES").unwrap(),
                std::env::var("AUDIT_STORE_TEST_SCHEMA").unwrap(),
            ),
        }
    }
}

fn options(schema: &str) -> Options {
    Options {
        schema: schema.into(),
        ..Options::default()
    }
}

/// Writer `source`'s batches. Times go backwards for even writers and forwards for odd ones,
/// from different starts, so batches committed later often hold older events.
fn batches(source: u32) -> Vec<Vec<AuditEvent>> {
    let mut all = events(source, BATCHES * BATCH, base_time());
    for (i, e) in all.iter_mut().enumerate() {
        let offset = TimeDelta::seconds(i as i64);
        e.time = if source.is_multiple_of(2) {
            base_time() + TimeDelta::days(30) - offset
        } else {
            base_time() + TimeDelta::days(i64::from(source)) + offset
        };
    }
    all.chunks(BATCH).map(<[AuditEvent]>::to_vec).collect()
}

fn write(target: &Target, source: u32) {
    let mut store = target.writer();
    for batch in batches(source) {
        store
            .append(&batch)
            .unwrap_or_else(|e| panic!("writer {source}: {e}"));
    }
}

/// A writer process: does nothing unless run with that role.
#[test]
fn writer_process() {
    if role().as_deref() != Some("writer") {
        return;
    }
    let source = std::env::var("AUDIT_STORE_TEST_SOURCE")
        .unwrap()
        .parse()
        .unwrap();
    write(&Target::from_env(), source);
}

fn follow(target: Target) {
    drop(target.writer()); // Created and migrated before anyone races.
    let total = (PROCESSES + THREADS) as u64 * (BATCHES * BATCH) as u64;
    let mut reader = target.reader();
    let writes = Filter::default().with_action("write");
    std::thread::scope(|scope| {
        let processes: Vec<_> = (0..PROCESSES)
            .map(|source| {
                let mut command = rerun("writer_process", "writer");
                target.env(&mut command);
                store_support::start_writer(command, source)
            })
            .collect();
        let threads: Vec<_> = (PROCESSES..PROCESSES + THREADS)
            .map(|source| {
                let target = target.clone();
                scope.spawn(move || write(&target, source))
            })
            .collect();

        // Two followers: every event, and only writes (which must also advance past the
        // events they skip, through the head).
        let (mut position, mut seen) = (0u64, HashSet::new());
        let (mut writes_position, mut writes_seen) = (0u64, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(120);
        for _ in 0..1_000_000 {
            assert!(
                Instant::now() < deadline,
                "followers saw {} of {total} events",
                seen.len()
            );
            let head = reader.head().unwrap().head;
            let events = reader
                .newer(&Filter::default(), Some(position), 100)
                .unwrap();
            for e in &events {
                assert_eq!(e.seq, position + 1, "a gap in the log");
                assert!(seen.insert(e.id), "{} seen twice", e.id);
                position = e.seq;
            }
            let matched = reader.newer(&writes, Some(writes_position), 100).unwrap();
            writes_seen.extend(matched.iter().map(|e| e.id));
            writes_position = match matched.last() {
                Some(last) if matched.len() == 100 => last.seq,
                last => last.map_or(head, |e| e.seq.max(head)),
            };
            if position == total && writes_position == total {
                break;
            }
            if events.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        store_support::wait_all(processes);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(position, total);
        let want: HashSet<Uuid> = (0..PROCESSES + THREADS)
            .flat_map(batches)
            .flatten()
            .map(|e| e.id)
            .collect();
        assert_eq!(seen, want);
        let want_writes: HashSet<Uuid> = (0..PROCESSES + THREADS)
            .flat_map(batches)
            .flatten()
            .filter(|e| e.action == "write")
            .map(|e| e.id)
            .collect();
        assert_eq!(
            writes_seen.len(),
            want_writes.len(),
            "a write seen twice or missed"
        );
        assert_eq!(writes_seen.into_iter().collect::<HashSet<_>>(), want_writes);
    });
    // The hash chain holds across every writer: no fork, no gap.
    let report = audit_core::store::verify::verify(&mut *reader, &Default::default()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events_verified, total);
    assert_eq!(report.head, reader.chain().unwrap().head);
}

#[test]
fn followers_see_every_event_once_on_sqlite() {
    if role().is_some() {
        return;
    }
    let dir = temp_dir("followers");
    follow(Target::Sqlite(dir.join("audit.db").display().to_string()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn followers_see_every_event_once_on_postgres() {
    if role().is_some() {
        return;
    }
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_followers";
    store_support::drop_schema(&url, schema);
    follow(Target::Postgres(url.clone(), schema.into()));
    store_support::drop_schema(&url, schema);
}
