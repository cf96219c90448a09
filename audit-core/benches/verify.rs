//! Verifying a chained log of 1,000,000 events against the floor it cannot beat: SHA-256 over
//! the same bytes (the previous hash and each event's canonical bytes, computed beforehand).
//! The difference is the canonical encoding and the verifier's bookkeeping.
//!
//! Run with `cargo bench -p audit-core --features chain --bench verify`.
//! `AUDIT_BENCH_EVENTS=100000` for a quicker run.
//!
//! The events are typical writes (actor, ip, user agent, request and organization ids, a diff
//! with two tracked changes and a secret one, two additional fields; about 480 canonical
//! bytes). To keep memory in bounds, 65,536 distinct events are built and the log reuses them
//! in turn; each position still gets its own chain hash.

use std::hint::black_box;

use audit_core::chain::{ChainHash, ChainHasher, ChainHead, Start, Verifier};
use audit_core::{Actor, AuditEvent, Diff};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const POOL: usize = 65_536;

fn events() -> u64 {
    std::env::var("AUDIT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn event(i: usize) -> AuditEvent {
    let diff: Diff = serde_json::from_value(json!({
        "name": {"old": format!("linux-container-{i}"), "new": format!("linux-container-{}", i + 1), "secret": false},
        "ttl": {"old": null, "new": 3600, "secret": false},
        "agent_token": {"secret": true},
    }))
    .unwrap();
    AuditEvent::builder("write")
        .id_and_time(Uuid::now_v7(), chrono::Utc::now())
        .actor(Actor::new(
            "988ae133-5b73-41e3-a55e-e1e9d3ef0b66",
            "alice",
            "alice@example.com",
        ))
        .ip("10.0.0.7".parse().unwrap())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
        .request_id(Uuid::now_v7())
        .organization_id("00000000-0000-0000-0000-000000000000")
        .resource_type("workspace")
        .resource_id(format!("ca5647e0-ef50-4202-a246-{i:012}"))
        .resource_target(format!("linux-container-{i}"))
        .resource_icon("/icon/workspace.svg")
        .diff(diff)
        .field("build_reason", "initiator")
        .field("attempt", i)
        .build()
}

struct Log {
    pool: Vec<AuditEvent>,
    /// The canonical bytes of each pool event (at its first position), for the baseline.
    bytes: Vec<Vec<u8>>,
    /// The stored hash of each position 1..=n.
    hashes: Vec<ChainHash>,
}

fn build(n: u64) -> Log {
    let pool: Vec<AuditEvent> = (0..POOL).map(event).collect();
    let bytes = pool
        .iter()
        .enumerate()
        .map(|(i, e)| audit_core::canonical::event::canonical_bytes(i as u64 + 1, e))
        .collect();
    let mut hasher = ChainHasher::new();
    let mut head = ChainHead::GENESIS;
    let hashes = (0..n as usize)
        .map(|i| {
            head = hasher.next(&head, &pool[i % POOL]).unwrap();
            head.hash
        })
        .collect();
    Log {
        pool,
        bytes,
        hashes,
    }
}

fn verify(log: &Log) -> u64 {
    let mut v = Verifier::new();
    v.begin(Start::Genesis);
    for (i, hash) in log.hashes.iter().enumerate() {
        v.event(i as u64 + 1, *hash, &log.pool[i % POOL]);
    }
    let report = v.finish();
    assert!(report.is_intact());
    report.events_verified
}

/// SHA-256 of (previous hash ‖ precomputed bytes) for every position, compared with the
/// stored hash: the hashing work of verification with nothing else.
fn sha256_only(log: &Log) -> u64 {
    let mut prev = [0u8; 32];
    let mut matched = 0;
    for (i, hash) in log.hashes.iter().enumerate() {
        let mut sha = Sha256::new();
        sha.update(prev);
        sha.update(&log.bytes[i % POOL]);
        let digest: [u8; 32] = sha.finalize().into();
        matched += u64::from(digest == *hash.as_bytes());
        prev = *hash.as_bytes();
    }
    black_box(matched);
    log.hashes.len() as u64
}

fn bench(c: &mut Criterion) {
    let n = events();
    let log = build(n);
    let mean = log.bytes.iter().map(Vec::len).sum::<usize>() / log.bytes.len();
    eprintln!("{n} events, {mean} canonical bytes per event on average");
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.bench_function("verifier", |b| b.iter(|| black_box(verify(&log))));
    group.bench_function("sha256_only", |b| b.iter(|| black_box(sha256_only(&log))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
