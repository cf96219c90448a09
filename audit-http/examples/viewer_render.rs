//! The web viewer's first page at N stored events, the figures of BENCHMARKS.md:
//!
//! 1. Server time: `GET /audit` (the first page, 50 entries, as HTML) from one client, one
//!    request at a time, p50 and p99 — next to `GET /api/v2/audit?limit=50` (the same page
//!    as the API's JSON, the alternative a script-rendered page would fetch) and the store's
//!    own `page` call for it.
//! 2. Page weight: the bytes of the first page's HTML, script and style sheet.
//! 3. Browser time: headless Chromium opening `/audit` — first with an empty cache, then
//!    again with the script and style sheet cached — from the navigation's start to the
//!    response's first and last byte, DOMContentLoaded, load, and the first contentful paint.
//!
//! ```text
//! cargo run --release -p audit-http --example viewer_render -- \
//!     [--store sqlite://target/load/audit.db] [--events 1000000] [--requests 200] [--loads 10]
//! ```
//!
//! The server runs in a child process, as `audit serve` runs it. Every loop is bounded by a
//! count.

#[path = "../tests/common/browser.rs"]
#[allow(dead_code)]
mod browser;
mod common;

use std::time::{Duration, Instant};

use audit_core::query::Filter;
use audit_core::store::PageRequest;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use common::{
    connect, flag, flags_or_serve, owner_token, percentile, request, seeded, start_server,
};

struct Options {
    store: String,
    events: u64,
    requests: usize,
    loads: usize,
}

fn main() {
    let Some(f) = flags_or_serve(&["--store", "--events", "--requests", "--loads"]) else {
        return;
    };
    run(&Options {
        store: flag(&f, "--store", "sqlite://target/load/audit.db".to_owned()),
        events: flag(&f, "--events", 1_000_000),
        requests: flag(&f, "--requests", 200),
        loads: flag(&f, "--loads", 10),
    });
}

fn run(o: &Options) {
    let mut store = seeded(&o.store, o.events);
    let rows = store.stats().unwrap().rows;
    let (tokens, token) = owner_token("viewer-bench");

    let mut direct = Vec::with_capacity(o.requests);
    for _ in 0..o.requests {
        let t = Instant::now();
        store
            .page(&Filter::default(), &PageRequest::first(50))
            .unwrap();
        direct.push(t.elapsed());
    }
    drop(store);

    let mut server = start_server(&o.store, &tokens.path().display().to_string());
    let addr = server.addr.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("## {rows} stored events");
        // Warm the reader pool and the capped count, as a running server has them.
        for _ in 0..10 {
            fetch(&addr, "/audit", &token).await;
            fetch(&addr, "/api/v2/audit?limit=50", &token).await;
        }
        let (mut page, html) = timed(&addr, "/audit", &token, o.requests).await;
        let (mut api, _) = timed(&addr, "/api/v2/audit?limit=50", &token, o.requests).await;
        let rows_shown = html.matches(r#"<li class="entry "#).count();
        println!("## server time, first page ({rows_shown} entries), one request at a time");
        let line = |name: &str, samples: &mut Vec<Duration>| {
            println!(
                "{name}: p50 {:?}, p99 {:?}",
                percentile(samples, 50.0),
                percentile(samples, 99.0)
            );
        };
        line("GET /audit (HTML)", &mut page);
        // Deep pages cost what the first costs: an Older page far down, and the Newer page
        // back from it.
        let mut deep = html.clone();
        for _ in 0..20 {
            let older = attribute(&deep, "rel=\"next\" href=\"").replace("&#38;", "&");
            deep = fetch(&addr, &older, &token).await;
        }
        let older = attribute(&deep, "rel=\"next\" href=\"").replace("&#38;", "&");
        let newer = attribute(&deep, "rel=\"prev\" href=\"").replace("&#38;", "&");
        let (mut older_times, _) = timed(&addr, &older, &token, o.requests).await;
        let (mut newer_times, _) = timed(&addr, &newer, &token, o.requests).await;
        line("GET /audit, Older from page 21", &mut older_times);
        line("GET /audit, Newer from page 21", &mut newer_times);
        line("GET /api/v2/audit?limit=50 (JSON)", &mut api);
        line("store page(50), direct", &mut direct);
        println!(
            "ratio HTML / JSON: p50 ×{:.2}, p99 ×{:.2}",
            percentile(&mut page, 50.0).as_secs_f64() / percentile(&mut api, 50.0).as_secs_f64(),
            percentile(&mut page, 99.0).as_secs_f64() / percentile(&mut api, 99.0).as_secs_f64()
        );

        let script = attribute(&html, "<script src=\"");
        let style = attribute(&html, "<link rel=\"stylesheet\" href=\"");
        let js = fetch(&addr, &script, &token).await.len();
        let css = fetch(&addr, &style, &token).await.len();
        println!("## page weight of the first page");
        println!(
            "HTML {} B + script {js} B + style sheet {css} B = {} B",
            html.len(),
            html.len() + js + css
        );

        println!("## browser time, headless Chromium (ms from the navigation's start)");
        let Some(browser) = browser::Browser::start(browser::Options::default()).await else {
            return;
        };
        let base = format!("http://{addr}");
        // Sign in through the form, as a person does; the first page this opens is not timed.
        browser.sign_in(&base, &token).await;
        // An empty cache for the first timed load.
        browser.cdp("Network.enable", json!({})).await;
        browser.cdp("Network.clearBrowserCache", json!({})).await;
        let mut warm: Vec<Value> = Vec::new();
        for i in 0..=o.loads {
            browser.goto(&format!("{base}/healthz")).await;
            browser.goto(&format!("{base}/audit")).await;
            browser.find("#entries li.entry").await;
            let timing = timings(&browser).await;
            if i == 0 {
                println!("empty cache: {timing}");
            } else {
                warm.push(timing);
            }
        }
        let median = |key: &str| {
            let mut v: Vec<f64> = warm.iter().filter_map(|t| t[key].as_f64()).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let keys = [
            "responseStart",
            "responseEnd",
            "domContentLoaded",
            "firstContentfulPaint",
            "load",
        ];
        let medians: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| ((*k).to_owned(), json!(median(k))))
            .collect();
        println!(
            "cached script and style, median of {}: {}",
            o.loads,
            Value::Object(medians)
        );
        browser.close().await;
    });
    server.stop();
}

/// The page's navigation and paint timings, in ms since the navigation started.
async fn timings(browser: &browser::Browser) -> Value {
    browser
        .wait_until(
            "return performance.getEntriesByType('navigation')[0].loadEventEnd > 0 && performance.getEntriesByType('paint').some(p => p.name === 'first-contentful-paint')",
            Duration::from_secs(10),
            "the page loaded and painted",
        )
        .await;
    browser
        .eval(
            "const n = performance.getEntriesByType('navigation')[0];
             const fcp = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
             const r = (x) => Math.round(x * 10) / 10;
             return {responseStart: r(n.responseStart), responseEnd: r(n.responseEnd),
                     domContentLoaded: r(n.domContentLoadedEventEnd), firstContentfulPaint: r(fcp.startTime),
                     load: r(n.loadEventEnd), transferSize: n.transferSize};",
        )
        .await
}

/// The value of the attribute that starts right after `prefix`.
fn attribute(html: &str, prefix: &str) -> String {
    let start = html.find(prefix).expect(prefix) + prefix.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// GET `path` with the token; the body.
async fn fetch(addr: &str, path: &str, token: &str) -> String {
    let mut sender = connect(addr).await;
    let response = sender
        .send_request(request(addr, path, Some(token)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// `n` requests of `path` on one keep-alive connection, one at a time: their times (to the
/// last byte of the body) and the last body.
async fn timed(addr: &str, path: &str, token: &str, n: usize) -> (Vec<Duration>, String) {
    let mut sender = connect(addr).await;
    let mut samples = Vec::with_capacity(n);
    let mut last = Vec::new();
    for _ in 0..n {
        sender.ready().await.unwrap();
        let t = Instant::now();
        let response = sender
            .send_request(request(addr, path, Some(token)))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        last = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        samples.push(t.elapsed());
    }
    (samples, String::from_utf8(last).unwrap())
}
