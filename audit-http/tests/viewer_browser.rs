//! The web viewer in a real browser (headless Chromium over WebDriver), used as a person
//! would: sign in (and fail to), filter by typing and with the quick filters, open entries
//! by click and by keyboard, page, export, go live and see an entry another process appends
//! (also across a dropped stream), read hostile data as text, see only one's organization,
//! read it at 1400 and 400 pixels, and without JavaScript.
//!
//! Without Chromium these tests say why they skip; in CI (`CI` set) they fail instead.
//! `cargo test -p audit-http --test viewer_browser -- --ignored screenshots` rewrites the
//! screenshots in `docs/`.

mod common;

use std::time::Duration;

use audit_core::backends::MemoryBackend;
use audit_core::{Actor, AuditEvent, Auditor};
use audit_http::Viewer;
use chrono::{Duration as Days, Utc};
use serde_json::json;

use common::browser::{Browser, NARROW, Options, WIDE};
use common::{Fixture, SECRET, Server, blocking};

/// How long a page may take to show what a step expects.
const WAIT: Duration = Duration::from_secs(15);

/// The demo's day (an owner and a member at work), plus older days: what the screenshots
/// show.
fn showcase() -> Vec<AuditEvent> {
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder().backend(memory.clone()).build().unwrap();
    audit_examples::demo::run(&auditor).unwrap();
    auditor.shutdown();
    let mut events = Vec::new();
    let now = Utc::now();
    for (days, hour, user, action, kind, target, status) in [
        (3, 9, "carol", "create", "workspace", "data-pipeline", 201),
        (3, 11, "carol", "write", "template", "python-ml", 200),
        (2, 8, "dave", "login", "api_key", "", 401),
        (2, 8, "dave", "login", "api_key", "", 201),
        (2, 14, "alice", "delete", "user", "mallory", 200),
        (1, 10, "bob", "write", "workspace", "dev", 500),
    ] {
        let time = (now - Days::days(days))
            .date_naive()
            .and_hms_opt(hour, 12, 7)
            .unwrap()
            .and_utc();
        let mut e = AuditEvent::builder(action)
            .actor(Actor::new(format!("u-{user}"), user, format!("{user}@example.com")))
            .resource_type(kind)
            .resource_id(format!("{kind}-{target}"))
            .resource_target(target)
            .status(status)
            .ip([192, 168, 1, 20].into())
            .user_agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15")
            .organization_id("00000000-0000-0000-0000-000000000000")
            .build();
        e.time = time;
        events.push(e);
    }
    events.extend(memory.events());
    events
}

/// Signs in through the form with `token`.
async fn sign_in(browser: &Browser, server: &Server, token: &str) {
    browser.goto(&format!("http://{}/audit", server.addr)).await;
    let field = browser.find("input[name=token][type=password]").await;
    field.send_keys(token).await.unwrap();
    browser
        .find(".signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#q").await;
}

/// Opens the details of the first row whose text has `text`, by clicking it, and scrolls
/// it to the top.
async fn open_row(browser: &Browser, text: &str) {
    let found = browser
        .client
        .execute(
            "const s = [...document.querySelectorAll('#entries summary')].find(s => s.textContent.includes(arguments[0]));
             if (!s) return false;
             s.scrollIntoView({block: 'start'});
             window.scrollBy(0, -8);
             return true;",
            vec![json!(text)],
        )
        .await
        .unwrap();
    assert_eq!(found, json!(true), "no row with {text:?}");
    let rows = browser.find_all("#entries summary").await;
    for summary in rows {
        if summary.text().await.unwrap().contains(text) {
            summary.click().await.unwrap();
            return;
        }
    }
}

async fn png(browser: &Browser, name: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::write(&path, browser.screenshot().await).unwrap();
    println!("wrote {}", path.display());
}

/// Rewrites `docs/viewer-*.png`: the list and an entry's details, at 1400 and 400 pixels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rewrites the screenshots in docs/; run it after changing the page"]
async fn screenshots() {
    let fixture = blocking(|| Fixture::sqlite("screenshots"));
    fixture.append(&showcase());
    let server = fixture
        .start_with(
            fixture
                .builder()
                .viewer(Viewer::token_sign_in())
                .build()
                .unwrap(),
        )
        .await;
    let Some(mut browser) = Browser::start(Options::default()).await else {
        return;
    };
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    browser.resize(WIDE.0, 1100).await;
    png(&browser, "viewer-list-1400.png").await;
    open_row(&browser, "updated git ssh key").await;
    png(&browser, "viewer-details-1400.png").await;
    browser.resize(NARROW, 860).await;
    browser.goto(&format!("http://{}/audit", server.addr)).await;
    png(&browser, "viewer-list-400.png").await;
    open_row(&browser, "updated template").await;
    png(&browser, "viewer-details-400.png").await;
    browser.close().await;
    server.shutdown().await.unwrap();
}
