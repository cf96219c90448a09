//! The events pipeline: what recording costs the caller, and how many events per second
//! reach a JSON-lines file through the auditor compared with writing the same lines
//! directly with serde_json.
//!
//! `cargo bench -p audit-core --bench pipeline`
//!
//! After the criterion groups, a plain timing loop prints the caller-side latency
//! distribution (median, p99, p99.9, max) of `Auditor::record`, measured one call at a time
//! with `Instant::now()` around each call.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use audit_core::backends::JsonLinesBackend;
use audit_core::{
    Actor, AuditEvent, Auditable, Auditor, Backend, BackendError, RequestContext, action,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};

#[derive(Auditable, Clone)]
#[audit(resource = "workspace", actions(create, write, delete))]
#[allow(dead_code)] // `last_used_at` is only there to be ignored by the diff
struct Workspace {
    #[audit(track, id)]
    id: u64,
    #[audit(track, target)]
    name: String,
    #[audit(track)]
    ttl: Option<i64>,
    #[audit(track)]
    autostart_schedule: Option<String>,
    #[audit(ignore, reason = "bumped on every request")]
    last_used_at: u64,
    #[audit(secret)]
    agent_token: String,
}

fn workspace() -> Workspace {
    Workspace {
        id: 42,
        name: "linux-container".into(),
        ttl: None,
        autostart_schedule: Some("CRON_TZ=UTC 30 9 * * 1-5".into()),
        last_used_at: 1,
        agent_token: "t1".into(),
    }
}

fn ctx() -> RequestContext {
    RequestContext::new(Actor::new(
        "6c405053-27e3-484a-9ad7-bcb64e7bfde6",
        "alice",
        "alice@example.com",
    ))
    .ip("10.0.0.7".parse().unwrap())
    .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
    .request_id(uuid::Uuid::now_v7())
    .organization_id("00000000-0000-0000-0000-000000000000")
}

/// A typical write event (two tracked changes and a secret one).
fn sample_event() -> AuditEvent {
    let old = workspace();
    let new = Workspace {
        ttl: Some(3600),
        name: "linux-container-2".into(),
        agent_token: "t2".into(),
        ..old.clone()
    };
    let c = ctx();
    AuditEvent::builder(action::WRITE)
        .actor(c.actor)
        .ip(c.ip.unwrap())
        .user_agent(c.user_agent.unwrap())
        .organization_id(c.organization_id.unwrap())
        .request_id(c.request_id.unwrap())
        .resource(Some(&old), Some(&new))
        .field("build_reason", "initiator")
        .build()
}

/// Discards events: isolates the caller side.
struct Null;
impl Backend for Null {
    fn name(&self) -> &str {
        "null"
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        black_box(events);
        Ok(())
    }
}

fn temp_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("audit-bench-{tag}-{}.jsonl", std::process::id()))
}

fn json_file_auditor(path: &PathBuf) -> Auditor {
    let _ = std::fs::remove_file(path);
    Auditor::builder()
        .backend(JsonLinesBackend::append_to_file(path).unwrap())
        .build()
        .unwrap()
}

fn caller_side(c: &mut Criterion) {
    let mut group = c.benchmark_group("caller_side");
    let auditor = Auditor::builder().backend(Null).build().unwrap();
    let event = sample_event();
    group.bench_function("record_prebuilt_event", |b| {
        b.iter_batched(
            || event.clone(),
            |e| auditor.record(e).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let (old, ctx) = (workspace(), ctx());
    let new = Workspace {
        ttl: Some(3600),
        ..old.clone()
    };
    group.bench_function("request_guard_write_with_diff", |b| {
        b.iter_batched(
            || (old.clone(), new.clone()),
            |(o, n)| {
                let mut audit = auditor.request::<Workspace>(&ctx, action::WRITE);
                audit.set_old(o).set_new(n).set_status(200);
                audit.commit().unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    auditor.shutdown();
}

const N: usize = 10_000;

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_lines_file");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let events: Vec<AuditEvent> = (0..N).map(|_| sample_event()).collect();

    let path = temp_file("pipeline");
    let auditor = json_file_auditor(&path);
    group.bench_function("auditor_record_then_flush", |b| {
        b.iter_batched(
            || events.clone(),
            |batch| {
                for e in batch {
                    auditor.record(e).unwrap();
                }
                auditor.flush();
            },
            BatchSize::PerIteration,
        )
    });
    auditor.shutdown();
    let _ = std::fs::remove_file(&path);

    let path = temp_file("direct");
    let mut file = BufWriter::new(File::create(&path).unwrap());
    group.bench_function("direct_serde_json_to_file", |b| {
        b.iter(|| {
            for e in &events {
                serde_json::to_writer(&mut file, e).unwrap();
                file.write_all(b"\n").unwrap();
            }
            file.flush().unwrap();
        })
    });
    drop(file);
    let _ = std::fs::remove_file(&path);
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Times each `record` call into a JSON-lines file pipeline; `pace` spaces the calls
/// (busy-wait) to model a steady request rate, `None` fires them back to back.
fn latency(label: &str, pace: Option<Duration>) {
    const CALLS: usize = 100_000;
    let path = temp_file("latency");
    let auditor = json_file_auditor(&path);
    let events: Vec<AuditEvent> = (0..CALLS).map(|_| sample_event()).collect();
    let mut times = Vec::with_capacity(CALLS);
    let start = Instant::now();
    for (i, e) in events.into_iter().enumerate() {
        if let Some(pace) = pace {
            while start.elapsed() < pace * i as u32 {
                std::hint::spin_loop();
            }
        }
        let t = Instant::now();
        auditor.record(e).unwrap();
        times.push(t.elapsed());
    }
    auditor.shutdown();
    let _ = std::fs::remove_file(&path);
    times.sort_unstable();
    println!(
        "latency {label:<34} median {:>8.2?}  p99 {:>8.2?}  p99.9 {:>8.2?}  max {:>8.2?}  ({CALLS} calls)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 0.999),
        times[CALLS - 1],
    );
}

criterion_group!(benches, caller_side, throughput);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only when benchmarking, not under `cargo test --benches` (which passes no --bench).
    if std::env::args().any(|a| a == "--bench") {
        latency("record, back to back", None);
        latency(
            "record, paced at 50k events/s",
            Some(Duration::from_micros(20)),
        );
    }
}
