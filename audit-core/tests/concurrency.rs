//! 100k events from std threads (and from tokio tasks) through a slow and a failing backend:
//! every accepted event arrives (Block), and what does not arrive is exactly what was counted
//! as dropped (DropNewest).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_core::{AuditEvent, Auditor, Backend, BackendError, Overflow};
use common::FailingBackend;

const THREADS: usize = 8;
const TOTAL: usize = 100_000;

/// Sleeps per batch and checks that each producer's events arrive in order.
#[derive(Clone, Default)]
struct SlowOrdered {
    delay: Duration,
    /// producer → (events, last sequence number seen)
    seen: Arc<Mutex<HashMap<u64, (usize, i64)>>>,
}

impl Backend for SlowOrdered {
    fn name(&self) -> &str {
        "slow"
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        std::thread::sleep(self.delay);
        let mut seen = self.seen.lock().unwrap();
        for e in events {
            let producer = e.additional_fields["producer"].as_u64().unwrap();
            let seq = e.additional_fields["seq"].as_i64().unwrap();
            let entry = seen.entry(producer).or_insert((0, -1));
            assert!(
                seq > entry.1,
                "producer {producer}: {seq} after {}",
                entry.1
            );
            *entry = (entry.0 + 1, seq);
        }
        Ok(())
    }
}

fn arrived(slow: &SlowOrdered) -> u64 {
    slow.seen.lock().unwrap().values().map(|v| v.0 as u64).sum()
}

/// Records TOTAL / THREADS events for `producer`, numbered so that order can be checked;
/// returns how many `record` calls succeeded.
fn produce(auditor: &Auditor, producer: usize) -> u64 {
    let template = AuditEvent::builder("write")
        .resource_type("workspace")
        .resource_target("dev")
        .build();
    let mut ok = 0u64;
    for seq in 0..TOTAL / THREADS {
        let mut e = template.clone();
        (e.id, e.time) = AuditEvent::new_id();
        e.additional_fields
            .insert("producer".into(), producer.into());
        e.additional_fields.insert("seq".into(), seq.into());
        if auditor.record(e).is_ok() {
            ok += 1;
        }
    }
    ok
}

/// Records TOTAL events from THREADS std threads; returns how many calls succeeded.
fn hammer(auditor: &Auditor) -> u64 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|producer| s.spawn(move || produce(auditor, producer)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Records TOTAL events, half of the producers on std threads and half as tokio tasks on a
/// multi-thread runtime; returns how many calls succeeded.
fn hammer_threads_and_tasks(auditor: &Auditor) -> u64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..THREADS / 2)
        .map(|producer| {
            let auditor = auditor.clone();
            runtime.spawn(async move { produce(&auditor, producer) })
        })
        .collect();
    let from_threads: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (THREADS / 2..THREADS)
            .map(|producer| s.spawn(move || produce(auditor, producer)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let from_tasks: u64 = runtime.block_on(async {
        let mut sum = 0;
        for task in tasks {
            sum += task.await.unwrap();
        }
        sum
    });
    from_threads + from_tasks
}

#[test]
fn block_loses_nothing_under_load_with_slow_and_failing_backends() {
    block_loses_nothing(hammer);
}

#[test]
fn block_loses_nothing_with_producers_on_threads_and_tokio_tasks() {
    block_loses_nothing(hammer_threads_and_tasks);
}

fn block_loses_nothing(producers: fn(&Auditor) -> u64) {
    let started = Instant::now();
    let slow = SlowOrdered {
        delay: Duration::from_millis(1),
        ..Default::default()
    };
    let auditor = Auditor::builder()
        .backend(slow.clone())
        .backend(FailingBackend)
        .queue_capacity(1024)
        .max_batch(256)
        .overflow(Overflow::Block)
        .build()
        .unwrap();
    let accepted = producers(&auditor);
    auditor.flush();

    assert_eq!(accepted, TOTAL as u64);
    let stats = auditor.stats();
    assert_eq!(stats.recorded, TOTAL as u64);
    let s = stats.backend("slow").unwrap();
    assert_eq!(s.accepted, TOTAL as u64);
    assert_eq!(arrived(&slow), s.accepted, "every accepted event arrived");
    assert_eq!(
        (s.written, s.dropped, s.failed, s.queued),
        (TOTAL as u64, 0, 0, 0)
    );
    let f = stats.backend("failing").unwrap();
    assert_eq!(
        (f.accepted, f.failed, f.written, f.dropped),
        (TOTAL as u64, TOTAL as u64, 0, 0)
    );
    assert_eq!(slow.seen.lock().unwrap().len(), THREADS);
    auditor.shutdown();
    eprintln!("block: {:?}", started.elapsed());
}

#[test]
fn drop_newest_counts_exactly_what_it_drops() {
    drop_newest_counts_what_it_drops(hammer);
}

#[test]
fn drop_newest_counts_exactly_what_it_drops_with_producers_on_threads_and_tokio_tasks() {
    drop_newest_counts_what_it_drops(hammer_threads_and_tasks);
}

fn drop_newest_counts_what_it_drops(producers: fn(&Auditor) -> u64) {
    let started = Instant::now();
    let slow = SlowOrdered {
        delay: Duration::from_millis(2),
        ..Default::default()
    };
    let auditor = Auditor::builder()
        .backend(slow.clone())
        .backend(FailingBackend)
        .queue_capacity(64)
        .max_batch(32)
        .overflow(Overflow::DropNewest)
        .build()
        .unwrap();
    let accepted_attempts = producers(&auditor);
    auditor.flush();

    assert_eq!(
        accepted_attempts, TOTAL as u64,
        "fail-open: every call succeeds"
    );
    let stats = auditor.stats();
    let s = stats.backend("slow").unwrap();
    let arrived = arrived(&slow);
    assert!(s.dropped > 0, "the slow backend could not keep up");
    assert_eq!(s.dropped, accepted_attempts - arrived);
    assert_eq!(s.accepted, arrived);
    assert_eq!(s.written, arrived);
    let f = stats.backend("failing").unwrap();
    assert_eq!(f.accepted + f.dropped, TOTAL as u64);
    assert_eq!(f.failed, f.accepted);
    eprintln!(
        "drop_newest: {:?}, slow backend got {arrived}, dropped {}",
        started.elapsed(),
        s.dropped
    );
}

/// `flush` under load returns only once everything accepted before it is written or failed,
/// even while producers keep the queues busy.
#[test]
fn flush_under_load_covers_everything_accepted_before_it() {
    let slow = SlowOrdered {
        delay: Duration::from_micros(200),
        ..Default::default()
    };
    let auditor = Auditor::builder()
        .backend(slow.clone())
        .backend(FailingBackend)
        .queue_capacity(512)
        .max_batch(64)
        .build()
        .unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let flushes = std::thread::scope(|s| {
        let flusher = s.spawn(|| {
            let mut flushes = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let before = auditor.stats();
                auditor.flush();
                let after = auditor.stats();
                for (b, a) in before.backends.iter().zip(&after.backends) {
                    assert!(
                        a.written + a.failed >= b.accepted,
                        "{}: flushed with {} of {} done",
                        a.name,
                        a.written + a.failed,
                        b.accepted
                    );
                }
                flushes += 1;
            }
            flushes
        });
        hammer(&auditor);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        flusher.join().unwrap()
    });
    assert!(flushes > 1);
    auditor.shutdown();
    assert_eq!(arrived(&slow), TOTAL as u64);
}
