//! `audit verify` end to end: verifying a store of 1,000,000 events (read in one snapshot,
//! decoded, chained) against reading the same rows in the same snapshot without verifying
//! them (`Store::scan_chain` alone). The difference is what verification adds to reading.
//!
//! ```text
//! cargo bench -p audit-core --features sqlite,postgres --bench verify_store
//! ```
//!
//! Environment (optional): `AUDIT_BENCH_EVENTS` (default 1,000,000); `AUDIT_BENCH_STORES`
//! (`sqlite`, `postgres`, or both, the default when a Postgres URL is set);
//! `AUDIT_BENCH_POSTGRES_URL`, else `AUDIT_TEST_POSTGRES_URL`. The SQLite file is kept in
//! `target/` between runs (rebuilt if it holds another number of events); the Postgres schema
//! `bench_verify` too.

use std::hint::black_box;
use std::time::{Duration, Instant};

use audit_core::store::postgres::{Options, PostgresStore};
use audit_core::store::sqlite::SqliteStore;
use audit_core::store::verify::{VerifyOptions, verify};
use audit_core::store::{ChainRow, Store};
use audit_core::{Actor, AuditEvent, Diff};
use chrono::{Duration as TimeDelta, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

fn events_wanted() -> u64 {
    std::env::var("AUDIT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Event `i`: a typical write, like the `verify` bench's.
fn event(i: u64) -> AuditEvent {
    let diff: Diff = serde_json::from_value(json!({
        "name": {"old": format!("linux-container-{i}"), "new": format!("linux-container-{}", i + 1), "secret": false},
        "ttl": {"old": null, "new": 3600, "secret": false},
        "agent_token": {"secret": true},
    }))
    .unwrap();
    AuditEvent::builder("write")
        .id_and_time(
            Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(i)),
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(i as i64),
        )
        .actor(Actor::new(
            format!("u-{}", i % 97),
            "alice",
            "alice@example.com",
        ))
        .ip("10.0.0.7".parse().unwrap())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
        .request_id(Uuid::from_u128(u128::from(i) << 32))
        .organization_id("00000000-0000-0000-0000-000000000000")
        .resource_type("workspace")
        .resource_id(format!("ca5647e0-ef50-4202-a246-{i:012}"))
        .resource_target(format!("linux-container-{i}"))
        .resource_icon("/icon/workspace.svg")
        .diff(diff)
        .field("build_reason", "initiator")
        .build()
}

/// Fills `store` up to `n` events (from what it holds), in batches of 1,000.
fn fill(store: &mut dyn Store, n: u64) {
    let mut have = store.head().unwrap().head;
    let started = Instant::now();
    while have < n {
        let to = (have + 1000).min(n);
        let batch: Vec<AuditEvent> = (have + 1..=to).map(event).collect();
        store.append(&batch).unwrap();
        have = to;
    }
    eprintln!("filled to {n} events in {:.1?}", started.elapsed());
}

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn measure(name: &str, store: &mut dyn Store, n: u64) {
    let runs = 5;
    let scan = median(runs, || {
        let mut rows = 0u64;
        store
            .scan_chain(0, &mut |_, row| {
                rows += u64::from(matches!(row, ChainRow::Event(_)));
                black_box(&row);
            })
            .unwrap();
        assert_eq!(rows, n);
    });
    let verified = median(runs, || {
        let report = verify(store, &VerifyOptions::default()).unwrap();
        assert!(report.is_intact() && report.events_verified == n);
    });
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "| {name} | {:.2} s | {:.0} k/s | {:.2} s | {:.0} k/s | {:.2}× |",
        verified.as_secs_f64(),
        rate(verified) / 1e3,
        scan.as_secs_f64(),
        rate(scan) / 1e3,
        verified.as_secs_f64() / scan.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = events_wanted();
    let postgres_url = std::env::var("AUDIT_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("AUDIT_TEST_POSTGRES_URL"))
        .ok();
    let stores = std::env::var("AUDIT_BENCH_STORES").unwrap_or_else(|_| {
        if postgres_url.is_some() {
            "sqlite,postgres".into()
        } else {
            "sqlite".into()
        }
    });
    println!("| store | verify (median of 5) | rate | read only | rate | ratio |");
    println!("|---|---|---|---|---|---|");
    if stores.contains("sqlite") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-verify");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        let mut writer = SqliteStore::open(&path).unwrap();
        if writer.head().unwrap().head > n {
            drop(writer);
            std::fs::remove_file(&path).unwrap();
            writer = SqliteStore::open(&path).unwrap();
        }
        fill(&mut writer, n);
        drop(writer);
        let mut reader = SqliteStore::open_read_only(&path).unwrap();
        measure("SQLite", &mut reader, n);
    }
    if stores.contains("postgres") {
        let url = postgres_url.expect("AUDIT_BENCH_POSTGRES_URL or AUDIT_TEST_POSTGRES_URL");
        let options = Options {
            schema: "bench_verify".into(),
            ..Options::default()
        };
        let mut writer = PostgresStore::connect(&url, options.clone()).unwrap();
        fill(&mut writer, n);
        drop(writer);
        let mut reader = PostgresStore::connect_read_only(&url, options).unwrap();
        measure("Postgres", &mut reader, n);
    }
}
