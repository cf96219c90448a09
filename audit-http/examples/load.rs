//! Load check of the HTTP API, the figures of BENCHMARKS.md:
//!
//! 1. `GET /api/v2/audit` (first page, 100 events) at N stored events with C concurrent
//!    keep-alive clients: requests/s, p50, p99 — next to the store's own `page` call (the
//!    same first page, read directly: one thread for latency, C threads for throughput).
//! 2. S concurrent idle SSE streams: the server's memory per stream (its RSS before and
//!    after opening them), and the time from `append` (by this process, a second writer)
//!    to delivery on every stream, p50 and p99.
//!
//! ```text
//! cargo run --release -p audit-http --example load -- \
//!     [--store sqlite://target/load/audit.db] [--events 1000000] [--clients 16] \
//!     [--requests 16000] [--streams 1000] [--appends 100]
//! ```
//!
//! The server runs in a child process (this program, re-run with `serve`), as `audit serve`
//! runs it: reader pool, log watcher, token authorizer, and reads recorded into the store.
//! Every loop is bounded by a count.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_core::query::Filter;
use audit_core::store::PageRequest;
use audit_core::{Actor, AuditEvent};
use http_body_util::BodyExt;

use common::{
    connect, flag, flags_or_serve, get, owner_token, percentile, request, seeded, start_server,
};

struct Options {
    store: String,
    events: u64,
    clients: usize,
    requests: usize,
    streams: usize,
    appends: usize,
}

fn main() {
    let Some(f) = flags_or_serve(&[
        "--store",
        "--events",
        "--clients",
        "--requests",
        "--streams",
        "--appends",
    ]) else {
        return;
    };
    run(&Options {
        store: flag(&f, "--store", "sqlite://target/load/audit.db".to_owned()),
        events: flag(&f, "--events", 1_000_000),
        clients: flag(&f, "--clients", 16),
        requests: flag(&f, "--requests", 16_000),
        streams: flag(&f, "--streams", 1000),
        appends: flag(&f, "--appends", 100),
    });
}

fn run(o: &Options) {
    let mut store = seeded(&o.store, o.events);
    // The streams filter on `resource_type:load`: the store must have recorded it once for
    // the server's vocabulary (taken from the store) to know it.
    store
        .append(&[AuditEvent::builder("write").resource_type("load").build()])
        .unwrap();

    let (tokens, token) = owner_token("load");

    println!("## store page (direct), first page of 100");
    let direct = direct_pages(&o.store, o.clients, o.requests);

    let mut server = start_server(&o.store, &tokens.path().display().to_string());
    let addr = server.addr.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Streams first, on a fresh server, so their memory is measured alone.
    runtime.block_on(async {
        let _ = get(&addr, "/healthz", None).await;
        let before = rss_kib(server.child.id());
        let (streams, delivered) = open_streams(&addr, &token, o.streams).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(server.child.id());
        println!("## {} idle SSE streams", o.streams);
        println!(
            "server RSS {before} KiB → {after} KiB: {:.1} KiB per stream",
            (after.saturating_sub(before)) as f64 / o.streams as f64
        );
        let appended = Arc::new(Mutex::new(HashMap::new()));
        let mut writer = tokio::task::block_in_place(|| audit_core::store::open(&o.store).unwrap());
        for i in 0..o.appends {
            let event = AuditEvent::builder("write")
                .actor(Actor::new("u", "loader", "l@example.com"))
                .resource_type("load")
                .resource_id(format!("append-{i}"))
                .build();
            let started = Instant::now();
            appended.lock().unwrap().insert(event.id, started);
            tokio::task::block_in_place(|| writer.append(&[event]).unwrap());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let delivered = std::mem::take(&mut *delivered.lock().unwrap());
        let appended = appended.lock().unwrap();
        let mut latencies: Vec<Duration> = delivered
            .iter()
            .filter_map(|(id, at)| appended.get(id).map(|t0| at.saturating_duration_since(*t0)))
            .collect();
        let expected = o.appends * o.streams;
        println!(
            "append → delivery over {} deliveries (expected {expected}): p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            percentile(&mut latencies, 50.0),
            percentile(&mut latencies, 99.0),
            latencies.last().copied().unwrap_or_default(),
        );
        for s in streams {
            s.abort();
        }
        tokio::task::block_in_place(|| drop(writer));
    });

    runtime.block_on(async {
        println!("## GET /api/v2/audit first page, {} clients", o.clients);
        let (rps, mut latencies) = http_pages(&addr, &token, o.clients, o.requests).await;
        let p50 = percentile(&mut latencies, 50.0);
        let p99 = percentile(&mut latencies, 99.0);
        println!("{rps:.0} requests/s, p50 {p50:?}, p99 {p99:?}");
        println!(
            "ratio to the direct page call: p50 ×{:.1}, p99 ×{:.1}; throughput {:.2} of the direct calls/s",
            p50.as_secs_f64() / direct.p50.as_secs_f64(),
            p99.as_secs_f64() / direct.p99.as_secs_f64(),
            rps / direct.throughput
        );
    });
    server.stop();
}

struct Direct {
    p50: Duration,
    p99: Duration,
    throughput: f64,
}

/// The store's own first-page call: latency on one connection, throughput on `threads`.
fn direct_pages(url: &str, threads: usize, requests: usize) -> Direct {
    let mut store = audit_core::store::open(url).unwrap();
    let filter = Filter::default();
    for _ in 0..50 {
        store.page(&filter, &PageRequest::first(100)).unwrap();
    }
    let mut latencies = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = Instant::now();
        store.page(&filter, &PageRequest::first(100)).unwrap();
        latencies.push(t.elapsed());
    }
    let p50 = percentile(&mut latencies, 50.0);
    let p99 = percentile(&mut latencies, 99.0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut store = audit_core::store::open(url).unwrap();
                for _ in 0..requests / threads {
                    store
                        .page(&Filter::default(), &PageRequest::first(100))
                        .unwrap();
                }
            });
        }
    });
    let throughput = (requests / threads * threads) as f64 / started.elapsed().as_secs_f64();
    println!("1 thread: p50 {p50:?}, p99 {p99:?}; {threads} threads: {throughput:.0} calls/s");
    Direct {
        p50,
        p99,
        throughput,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `clients` keep-alive connections reading the first page, `requests` in all.
async fn http_pages(
    addr: &str,
    token: &str,
    clients: usize,
    requests: usize,
) -> (f64, Vec<Duration>) {
    // Warm up the reader pool.
    for _ in 0..20 {
        assert_eq!(get(addr, "/api/v2/audit", Some(token)).await, 200);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (addr, token) = (addr.to_owned(), token.to_owned());
        let n = requests / clients;
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&addr).await;
            let mut latencies = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let response = sender
                    .send_request(request(&addr, "/api/v2/audit", Some(&token)))
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                latencies.push(t.elapsed());
                assert!(body.len() > 1000);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    (rps, all)
}

type Deliveries = Arc<Mutex<Vec<(uuid::Uuid, Instant)>>>;

/// Opens `n` SSE streams and waits until each has sent its first frame; every event that
/// arrives later is noted with its arrival time.
async fn open_streams(
    addr: &str,
    token: &str,
    n: usize,
) -> (Vec<tokio::task::JoinHandle<()>>, Deliveries) {
    let delivered: Deliveries = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (addr, token, delivered, ready) = (
            addr.to_owned(),
            token.to_owned(),
            Arc::clone(&delivered),
            ready_tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&addr).await;
            let response = sender
                .send_request(request(
                    &addr,
                    "/api/v2/audit/stream?q=resource_type:load",
                    Some(&token),
                ))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            let mut buffer = String::new();
            let mut primed = false;
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let at = Instant::now();
                buffer.push_str(std::str::from_utf8(&data).unwrap());
                while let Some(end) = buffer.find("\n\n") {
                    let raw: String = buffer.drain(..end + 2).collect();
                    if !primed {
                        primed = true;
                        let _ = ready.send(()).await;
                    }
                    if let Some(json) = raw.lines().find_map(|l| l.strip_prefix("data: ")) {
                        let v: serde_json::Value = serde_json::from_str(json).unwrap();
                        let id = v["id"].as_str().unwrap().parse().unwrap();
                        delivered.lock().unwrap().push((id, at));
                    }
                }
            }
        }));
    }
    for _ in 0..n {
        ready_rx.recv().await.unwrap();
    }
    (tasks, delivered)
}
