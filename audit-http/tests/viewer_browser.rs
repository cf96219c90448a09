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

use fantoccini::key::Key;

use common::browser::{Browser, NARROW, Options, WIDE};
use common::{Fixture, MARKUP, SECRET, Server, blocking, dataset, hostile};

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
    browser
        .sign_in(&format!("http://{}", server.addr), token)
        .await;
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
    for summary in browser.find_all("#entries summary").await {
        if summary.text().await.unwrap().contains(text) {
            summary.click().await.unwrap();
            return;
        }
    }
}

/// The descriptions of the page's rows, top to bottom.
async fn rows(browser: &Browser) -> Vec<String> {
    let texts = browser
        .eval("return [...document.querySelectorAll('#entries li.entry .desc')].map(d => d.textContent)")
        .await;
    serde_json::from_value(texts).unwrap()
}

/// The ids of the page's rows, top to bottom.
async fn row_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .eval("return [...document.querySelectorAll('#entries li.entry')].map(li => li.dataset.id)")
        .await;
    serde_json::from_value(ids).unwrap()
}

/// Replaces the filter box's text with `text` and presses Enter.
async fn search(browser: &Browser, text: &str) {
    let q = browser.find("#q").await;
    q.clear().await.unwrap();
    q.send_keys(text).await.unwrap();
    q.send_keys(&Key::Enter).await.unwrap();
}

/// Waits until the filter box (after a page load) holds `text`.
async fn wait_for_query(browser: &Browser, text: &str) {
    browser
        .wait_until(
            &format!("return document.readyState === 'complete' && document.querySelector('#q')?.value === {}", json!(text)),
            WAIT,
            &format!("the page of {text:?}"),
        )
        .await;
}

/// Presses the down arrow in the filter box until the first suggestion is selected, then
/// Enter.
async fn choose_first_suggestion(browser: &Browser) {
    let q = browser.find("#q").await;
    q.send_keys(&Key::Down).await.unwrap();
    browser
        .wait_until(
            "return document.querySelector('#q-list li')?.getAttribute('aria-selected') === 'true' && document.querySelector('#q').getAttribute('aria-activedescendant') === 'q-option-0'",
            WAIT,
            "the first suggestion is selected",
        )
        .await;
    q.send_keys(&Key::Enter).await.unwrap();
}

/// Fetches `href` from the page (with its cookies), returning status, disposition and body.
async fn fetch(browser: &Browser, href: &str) -> (u16, String, String) {
    let reply = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(async r => done([r.status, r.headers.get('content-disposition') || '', await r.text()]));",
            vec![json!(href)],
        )
        .await
        .unwrap();
    serde_json::from_value(reply).unwrap()
}

/// No message of the browser's console mentions the Content-Security-Policy.
async fn assert_no_policy_violations(browser: &Browser) {
    let console = browser.console().await;
    let violations: Vec<&String> = console
        .iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused"))
        .collect();
    assert!(violations.is_empty(), "{violations:?}");
}

/// Whether a script the data smuggled in ran, or opened an alert.
async fn assert_nothing_ran(browser: &Browser) {
    assert_eq!(
        browser.eval("return typeof window.__pwned").await,
        json!("undefined")
    );
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "an alert is open"
    );
}

/// Waits until the page says its live stream is open.
async fn wait_for_live(browser: &Browser) {
    browser
        .wait_until(
            "return document.querySelector('#live-status').textContent.includes('streaming')",
            WAIT,
            "the live stream opens",
        )
        .await;
}

/// Switches Live on and waits until the stream is open.
async fn go_live(browser: &Browser) {
    browser.find("#live").await.click().await.unwrap();
    wait_for_live(browser).await;
}

/// Appends workspaces named `names` to the store at `url` from a second process.
fn append_elsewhere(url: &str, names: &[&str]) {
    let names = names.join(",");
    let status = common::run_child(
        "append_from_another_process",
        &[
            ("AUDIT_VIEWER_APPEND_URL", url),
            ("AUDIT_VIEWER_APPEND_NAMES", &names),
        ],
    )
    .wait()
    .unwrap();
    assert!(status.success(), "the second process failed");
}

/// The second process of [`append_elsewhere`]; does nothing when run as a test.
#[test]
fn append_from_another_process() {
    let (Ok(url), Ok(names)) = (
        std::env::var("AUDIT_VIEWER_APPEND_URL"),
        std::env::var("AUDIT_VIEWER_APPEND_NAMES"),
    ) else {
        return;
    };
    let events: Vec<AuditEvent> = names
        .split(',')
        .map(|name| common::workspace_event("dana", "create", Some("org-1"), name))
        .collect();
    let mut store = audit_core::store::open(&url).unwrap();
    store.append(&events).unwrap();
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
    // The owner's integrity line shows a verification (as with audit serve --verify-every).
    assert!(server.api.verify().await.unwrap().intact);
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

/// Ten events: the fixture's six and four template changes, newest last.
fn ten() -> Vec<AuditEvent> {
    let mut events = dataset();
    for i in 0..4 {
        events.push(
            AuditEvent::builder("write")
                .actor(Actor::new("id-erin", "erin", "erin@example.com"))
                .resource_type("template")
                .resource_id(format!("t{i}"))
                .resource_target(format!("tpl-{i}"))
                .organization_id("org-1")
                .build(),
        );
    }
    events
}

/// The server the browser tests read: token sign-in, four entries per page.
async fn start(fixture: &Fixture) -> Server {
    let api = fixture
        .builder()
        .viewer(Viewer::token_sign_in().page_size(4))
        .build()
        .unwrap();
    fixture.start_with(api).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_filters_opens_entries_pages_and_exports() {
    let fixture = blocking(|| Fixture::sqlite("browser-person"));
    fixture.append(&ten());
    let server = start(&fixture).await;
    let Some(browser) = Browser::start(Options::default()).await else {
        return;
    };
    let base = format!("http://{}", server.addr);

    // A wrong token is refused, saying only that.
    browser.goto(&format!("{base}/audit")).await;
    let field = browser.find("input[name=token]").await;
    assert_eq!(
        field.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    field
        .send_keys(&format!("audit_0000000000000000_{}", "0".repeat(64)))
        .await
        .unwrap();
    browser
        .find(".signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let problem = browser.text(".signin .problem").await;
    assert!(problem.contains("That token was not accepted"), "{problem}");
    assert!(browser.client.get_all_cookies().await.unwrap().is_empty());

    // The right one lands on the log, with a strict, script-proof session cookie.
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    assert_eq!(browser.url().await, format!("{base}/audit"));
    let cookie = browser
        .client
        .get_named_cookie("audit_session")
        .await
        .unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
    assert_eq!(browser.eval("return document.cookie").await, json!(""));
    assert_eq!(browser.text("#count").await, "Showing 4 of 10 events");
    assert_no_policy_violations(&browser).await;

    // Typing a query; the URL carries it.
    search(&browser, "username:alice").await;
    wait_for_query(&browser, "username:alice").await;
    assert!(browser.url().await.contains("q=username%3Aalice"));
    let found = rows(&browser).await;
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|r| r.starts_with("alice ")), "{found:?}");

    // Completion: a key, then one of its values, by keyboard.
    let q = browser.find("#q").await;
    q.clear().await.unwrap();
    q.send_keys("act").await.unwrap();
    browser
        .wait_until(
            "const l = document.querySelector('#q-list'); return !l.hidden && l.textContent.includes('action:')",
            WAIT,
            "the keys are offered",
        )
        .await;
    choose_first_suggestion(&browser).await;
    assert_eq!(q.prop("value").await.unwrap().as_deref(), Some("action:"));
    q.send_keys("dele").await.unwrap();
    browser
        .wait_until(
            "return document.querySelector('#q-list').textContent.includes('action:delete')",
            WAIT,
            "the actions are offered",
        )
        .await;
    choose_first_suggestion(&browser).await;
    assert_eq!(
        q.prop("value").await.unwrap().as_deref(),
        Some("action:delete ")
    );
    q.send_keys(&Key::Enter).await.unwrap();
    wait_for_query(&browser, "action:delete ").await;
    assert_eq!(rows(&browser).await, ["carol deleted workspace old"]);

    // A rejected query lists its problems beside the box; the results stay.
    search(&browser, "usrname:bob resource_type:wrkspace").await;
    let problems = browser.text("#q-problems").await;
    assert!(
        problems.contains("usrname") && problems.contains("Did you mean \"username\"?"),
        "{problems}"
    );
    assert!(problems.contains("resource_type"), "{problems}");
    assert_eq!(rows(&browser).await, ["carol deleted workspace old"]);
    assert_eq!(
        browser
            .find("#q")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("usrname:bob resource_type:wrkspace")
    );

    // Quick filters write into the query.
    browser.goto(&format!("{base}/audit")).await;
    browser
        .find("#qf-action")
        .await
        .select_by_value("create")
        .await
        .unwrap();
    wait_for_query(&browser, "action:create").await;
    assert_eq!(rows(&browser).await, ["alice created workspace dev"]);
    browser
        .find("#qf-range")
        .await
        .select_by_value("7d")
        .await
        .unwrap();
    let week = (Utc::now() - Days::days(7)).date_naive();
    wait_for_query(&browser, &format!("action:create date_from:{week}")).await;
    browser
        .find("#qf-range")
        .await
        .select_by_value("custom")
        .await
        .unwrap();
    let from = browser.find("#qf-from").await;
    assert!(
        from.is_displayed().await.unwrap(),
        "custom range shows its dates"
    );
    browser
        .eval("const to = document.querySelector('#qf-to'); to.value = '2099-12-31'; to.dispatchEvent(new Event('change'));")
        .await;
    wait_for_query(
        &browser,
        &format!("action:create date_from:{week} date_to:2099-12-31"),
    )
    .await;
    browser
        .find("#qf-range")
        .await
        .select_by_value("")
        .await
        .unwrap();
    wait_for_query(&browser, "action:create").await;
    let user = browser.find("#qf-user").await;
    user.send_keys("bob").await.unwrap();
    user.send_keys(&Key::Enter).await.unwrap();
    wait_for_query(&browser, "action:create username:bob").await;
    assert!(rows(&browser).await.is_empty());
    assert_eq!(
        browser.text("#entries .empty").await,
        "No events match this filter."
    );

    // Details: a click opens a row, Enter on a focused row toggles it.
    browser
        .goto(&format!("{base}/audit?q=username:alice"))
        .await;
    open_row(&browser, "alice updated workspace dev").await;
    let panel = browser.text("#entries details[open] .panel").await;
    assert!(panel.contains("What changed"), "{panel}");
    assert!(
        panel.contains("\"dev\"") && panel.contains("\"dev-2\""),
        "{panel}"
    );
    assert!(panel.contains("secret changed"), "{panel}");
    assert!(
        panel.contains("org-1") && panel.contains("Whole history of this resource"),
        "{panel}"
    );
    assert!(!browser.source().await.contains(SECRET));
    browser
        .eval("document.querySelectorAll('#entries summary')[2].focus()")
        .await;
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(focused.tag_name().await.unwrap(), "summary");
    focused.send_keys(&Key::Enter).await.unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('#entries details')[2].open",
            WAIT,
            "Enter opens a row",
        )
        .await;
    focused.send_keys(&Key::Enter).await.unwrap();
    browser
        .wait_until(
            "return !document.querySelectorAll('#entries details')[2].open",
            WAIT,
            "Enter closes it",
        )
        .await;
    // Clicking a user filters by them, keeping the query; a resource opens its history.
    browser
        .find("#entries details[open] .panel a[href*='resource_id']")
        .await
        .click()
        .await
        .unwrap();
    wait_for_query(&browser, "resource_type:workspace resource_id:7").await;
    assert_eq!(
        browser.text("#count").await,
        "Showing all 4 events",
        "every event of workspace 7"
    );

    // Paging: Older, Older, Newer, back, forward, Newer.
    browser.goto(&format!("{base}/audit")).await;
    let first = row_ids(&browser).await;
    assert_eq!(first.len(), 4);
    browser.find("a[rel=next]").await.click().await.unwrap();
    browser
        .wait_until(
            "return location.search.includes('after=')",
            WAIT,
            "an older page",
        )
        .await;
    let second = row_ids(&browser).await;
    assert_eq!(second.len(), 4);
    assert!(second.iter().all(|id| !first.contains(id)));
    browser.find("a[rel=next]").await.click().await.unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('#entries li.entry').length === 2",
            WAIT,
            "the last page",
        )
        .await;
    let third = row_ids(&browser).await;
    assert!(
        browser.find_all("a[rel=next]").await.is_empty(),
        "no page older than the last"
    );
    browser.find("a[rel=prev]").await.click().await.unwrap();
    browser
        .wait_until(
            "return location.search.includes('before=')",
            WAIT,
            "a newer page",
        )
        .await;
    assert_eq!(row_ids(&browser).await, second);
    browser.client.back().await.unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('#entries li.entry').length === 2",
            WAIT,
            "back",
        )
        .await;
    assert_eq!(row_ids(&browser).await, third);
    browser.client.forward().await.unwrap();
    browser
        .wait_until(
            "return location.search.includes('before=')",
            WAIT,
            "forward",
        )
        .await;
    assert_eq!(row_ids(&browser).await, second);
    browser.find("a[rel=prev]").await.click().await.unwrap();
    browser
        .wait_until(
            "return !!document.querySelector('#live:not([hidden])')",
            WAIT,
            "the first page",
        )
        .await;
    assert_eq!(row_ids(&browser).await, first);

    // Export exactly what the filter selects.
    browser
        .goto(&format!("{base}/audit?q=resource_type:template"))
        .await;
    let csv = browser
        .find("a[href*='format=csv']")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        csv,
        "/api/v2/audit/export?q=resource_type%3Atemplate&format=csv"
    );
    let (status, disposition, body) = fetch(&browser, &csv).await;
    assert_eq!(status, 200);
    assert!(
        disposition.starts_with("attachment; filename=\"audit-log-"),
        "{disposition}"
    );
    assert_eq!(
        body.lines().count(),
        5,
        "a header and four templates: {body}"
    );
    let jsonl = browser
        .find("a[href*='format=jsonl']")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, _, body) = fetch(&browser, &jsonl).await;
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 4);
    assert!(body.lines().all(
        |l| serde_json::from_str::<serde_json::Value>(l).unwrap()["resource_type"] == "template"
    ));

    // Sign out.
    browser
        .find(".who button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("input[name=token]").await;
    assert!(
        browser
            .client
            .get_named_cookie("audit_session")
            .await
            .is_err()
    );
    assert_no_policy_violations(&browser).await;
    browser.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_entries_from_another_process_appear_even_across_a_dropped_stream() {
    let fixture = blocking(|| Fixture::sqlite("browser-live"));
    fixture.append(&dataset());
    let url = fixture.sqlite_url.clone().unwrap();
    let server = start(&fixture).await;
    let addr = server.addr;
    let Some(browser) = Browser::start(Options::default()).await else {
        return;
    };
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    let live = browser.find("#live").await;
    assert_eq!(
        live.attr("aria-pressed").await.unwrap().as_deref(),
        Some("false")
    );
    live.click().await.unwrap();
    assert_eq!(
        live.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    wait_for_live(&browser).await;

    append_elsewhere(&url, &["live-one"]);
    browser
        .wait_until("return document.querySelector('#entries .desc').textContent === 'dana created workspace live-one'", WAIT, "the new entry at the top")
        .await;
    let status = browser.text("#live-status").await;
    assert!(status.contains("1 new entry"), "{status}");

    // The server goes away (a dropped stream), two entries are appended meanwhile, and the
    // server comes back: the page reconnects by itself and misses nothing.
    server.shutdown().await.unwrap();
    browser
        .wait_until(
            "return document.querySelector('#live').classList.contains('reconnecting')",
            WAIT,
            "the page notices",
        )
        .await;
    append_elsewhere(&url, &["live-two", "live-three"]);
    let server = Server::start_on(
        fixture
            .builder()
            .viewer(Viewer::token_sign_in().page_size(4))
            .build()
            .unwrap(),
        addr,
    )
    .await;
    browser
        .wait_until(
            "return [...document.querySelectorAll('#entries .desc')].slice(0, 3).map(d => d.textContent).join('|') === 'dana created workspace live-three|dana created workspace live-two|dana created workspace live-one'",
            Duration::from_secs(20),
            "the entries appended while the stream was down",
        )
        .await;
    let ids = row_ids(&browser).await;
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no entry twice");
    assert!(
        !browser
            .find("#live")
            .await
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("reconnecting")
    );

    // Switched off, nothing more arrives.
    browser.find("#live").await.click().await.unwrap();
    assert_eq!(
        browser
            .find("#live")
            .await
            .attr("aria-pressed")
            .await
            .unwrap()
            .as_deref(),
        Some("false")
    );
    append_elsewhere(&url, &["live-four"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!rows(&browser).await.iter().any(|r| r.contains("live-four")));
    // A page that is not the first has no live toggle.
    browser.find("a[rel=next]").await.click().await.unwrap();
    browser
        .wait_until(
            "return location.search.includes('after=')",
            WAIT,
            "an older page",
        )
        .await;
    assert!(browser.find_all("#live").await.is_empty());
    browser.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_data_shows_as_text_and_never_runs() {
    let fixture = blocking(|| Fixture::sqlite("browser-hostile"));
    fixture.append(&dataset());
    fixture.append(&hostile());
    let server = start(&fixture).await;
    let Some(browser) = Browser::start(Options::default()).await else {
        return;
    };
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    browser
        .goto(&format!(
            "http://{}/audit?q=resource_type:workspace",
            server.addr
        ))
        .await;
    go_live(&browser).await;
    // Live rows carry the same markup.
    fixture.append(&hostile());
    browser
        .wait_until(
            "return document.querySelectorAll('#entries li.entry.fresh').length === 3",
            WAIT,
            "the live rows",
        )
        .await;
    browser
        .eval("document.querySelectorAll('#entries details').forEach(d => d.open = true)")
        .await;
    let text = browser.eval("return document.body.innerText").await;
    let text = text.as_str().unwrap();
    for markup in MARKUP {
        assert!(text.contains(markup), "{markup} is not shown as text");
    }
    // Typed into the filter box and shown back, it is text too.
    search(
        &browser,
        &format!("username:\"{}\"", MARKUP[1].replace('"', "\\\"")),
    )
    .await;
    browser.find("#entries").await;
    assert_nothing_ran(&browser).await;
    assert_no_policy_violations(&browser).await;
    assert!(!browser.source().await.contains(SECRET));
    browser.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_auditor_sees_no_site_wide_entry() {
    let fixture = blocking(|| Fixture::sqlite("browser-org"));
    fixture.append(&dataset());
    let server = start(&fixture).await;
    let Some(browser) = Browser::start(Options::default()).await else {
        return;
    };
    sign_in(&browser, &server, &fixture.tokens.org1).await;
    let seen = rows(&browser).await;
    assert_eq!(
        seen,
        [
            "carol deleted workspace old",
            "alice updated workspace dev-2",
            "alice created workspace dev"
        ]
    );
    assert!(browser.text(".who").await.contains("auditor of org-1"));
    // Completion offers only the users of what the auditor may read.
    let q = browser.find("#q").await;
    q.send_keys("username:").await.unwrap();
    browser
        .wait_until(
            "return document.querySelector('#q-list').textContent.includes('username:carol')",
            WAIT,
            "users offered",
        )
        .await;
    let offered = browser.text("#q-list").await;
    assert!(
        !offered.contains("root") && !offered.contains("bob"),
        "{offered}"
    );
    // Asking for the site-wide logins shows nothing.
    search(&browser, "resource_type:api_key").await;
    wait_for_query(&browser, "resource_type:api_key").await;
    assert!(rows(&browser).await.is_empty());
    browser.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reads_at_1400_and_at_400_pixels() {
    let fixture = blocking(|| Fixture::sqlite("browser-widths"));
    let mut events = showcase();
    // A value with no place to break, and a long one with spaces.
    events.push(
        AuditEvent::builder("write")
            .actor(Actor::new(
                "u-x",
                "a-very-long-username-without-any-break-at-all",
                "",
            ))
            .resource_type("template")
            .resource_id("long")
            .resource_target("x".repeat(300))
            .field("note", "y".repeat(500))
            .build(),
    );
    fixture.append(&events);
    let server = start(&fixture).await;
    let Some(mut browser) = Browser::start(Options::default()).await else {
        return;
    };
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    for width in [WIDE.0, NARROW] {
        browser.resize(width, 900).await;
        browser.goto(&format!("http://{}/audit", server.addr)).await;
        browser
            .eval("document.querySelectorAll('#entries details').forEach(d => d.open = true)")
            .await;
        let overflow = browser
            .eval("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{width} px: {overflow} px of horizontal overflow"
        );
        // Every row's description and every control fits the width.
        let outside = browser
            .eval("return [...document.querySelectorAll('.desc, .tags, .panel, input, select, .button')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).length")
            .await;
        assert_eq!(
            outside,
            json!(0),
            "{width} px: elements past the right edge"
        );
        let readable = browser
            .eval("return parseFloat(getComputedStyle(document.querySelector('.desc')).fontSize)")
            .await;
        assert!(
            readable.as_f64().unwrap() >= 14.0,
            "{width} px: text too small"
        );
    }
    browser.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_list_filter_pages_and_details_work() {
    let fixture = blocking(|| Fixture::sqlite("browser-no-script"));
    fixture.append(&ten());
    let server = start(&fixture).await;
    let Some(browser) = Browser::start(Options { no_script: true }).await else {
        return;
    };
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    assert_eq!(
        browser
            .eval("return document.documentElement.className")
            .await,
        json!(""),
        "the script did not run"
    );
    assert_eq!(rows(&browser).await.len(), 4);
    // The filter is a plain form.
    search(&browser, "resource_type:template").await;
    browser
        .wait_until(
            "return location.search.includes('resource_type%3Atemplate')",
            WAIT,
            "the filter",
        )
        .await;
    assert_eq!(rows(&browser).await.len(), 4);
    // Quick filters are a form with an Apply button.
    browser
        .find("#qf-user")
        .await
        .send_keys("alice")
        .await
        .unwrap();
    browser.find("#quick-apply").await.click().await.unwrap();
    wait_for_query(&browser, "resource_type:template username:alice").await;
    assert!(rows(&browser).await.is_empty());
    // Pages are links; details are <details>.
    browser.goto(&format!("http://{}/audit", server.addr)).await;
    browser.find("a[rel=next]").await.click().await.unwrap();
    browser
        .wait_until(
            "return location.search.includes('after=')",
            WAIT,
            "an older page",
        )
        .await;
    assert_eq!(rows(&browser).await.len(), 4);
    browser
        .find("#entries summary")
        .await
        .click()
        .await
        .unwrap();
    assert!(
        browser
            .find("#entries details[open] .panel")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    // Times stay in UTC, grouped by UTC day, and say so on hover.
    let title = browser
        .find("#entries time.clock")
        .await
        .attr("title")
        .await
        .unwrap()
        .unwrap();
    assert!(title.ends_with(" UTC"), "{title}");
    browser.close().await;
    server.shutdown().await.unwrap();
}

/// A smoke run against a viewer that is already running, such as `audit serve` over the
/// demo's store: `AUDIT_VIEWER_URL=http://127.0.0.1:8080 AUDIT_VIEWER_TOKEN=$(cat
/// target/audit-demo/token) cargo test -p audit-http --test viewer_browser -- --ignored
/// a_running_viewer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a running viewer: AUDIT_VIEWER_URL and AUDIT_VIEWER_TOKEN"]
async fn a_running_viewer() {
    let (Ok(base), Ok(token)) = (
        std::env::var("AUDIT_VIEWER_URL"),
        std::env::var("AUDIT_VIEWER_TOKEN"),
    ) else {
        panic!("set AUDIT_VIEWER_URL and AUDIT_VIEWER_TOKEN");
    };
    let Some(browser) = Browser::start(Options::default()).await else {
        return;
    };
    browser.sign_in(&base, token.trim()).await;
    let all = rows(&browser).await;
    assert!(!all.is_empty(), "the log shows entries");
    println!(
        "{} entries on the first page; the newest: {:?}",
        all.len(),
        all[0]
    );
    // Every quick filter choice gives a page whose rows match it.
    let actions: Vec<String> = serde_json::from_value(
        browser
            .eval("return [...document.querySelectorAll('#qf-action option')].map(o => o.value).filter(v => v)")
            .await,
    )
    .unwrap();
    for action in actions.iter().take(3) {
        browser
            .find("#qf-action")
            .await
            .select_by_value(action)
            .await
            .unwrap();
        wait_for_query(&browser, &format!("action:{action}")).await;
        let tags = browser
            .eval("return [...document.querySelectorAll('#entries .tag.action')].map(t => t.textContent)")
            .await;
        let tags: Vec<String> = serde_json::from_value(tags).unwrap();
        assert!(tags.iter().all(|t| t == action), "{action}: {tags:?}");
        println!("action:{action}: {} entries", tags.len());
        browser
            .find("#qf-action")
            .await
            .select_by_value("")
            .await
            .unwrap();
        wait_for_query(&browser, "").await;
    }
    browser
        .eval("document.querySelector('#entries summary').click()")
        .await;
    let panel = browser.text("#entries details[open] .panel").await;
    println!("the newest entry's details:\n{panel}");
    let csv = browser
        .find("a[href*='format=csv']")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, _, body) = fetch(&browser, &csv).await;
    assert_eq!(status, 200);
    println!("CSV export: {} lines", body.lines().count());
    go_live(&browser).await;
    assert_no_policy_violations(&browser).await;
    browser.close().await;
}

/// The stream-open request the page's live toggle competes with: its status (a server that
/// allows one stream answers 503 while the page holds it).
async fn stream_status(server: &Server, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        server.get_with("/api/v2/audit/stream", &headers),
    );
    match reply.await {
        Ok(reply) => reply.status,
        // A 200 stream never ends by itself: reading it whole times out.
        Err(_) => 200,
    }
}

/// What an auditor reads off the page, in a time zone that is not UTC: entries grouped by
/// their local day, local times with UTC on hover, failures marked, an entry's address and
/// client, a user's and a request's events one click away, live entries only when they match
/// the query, no stream left open once the page is left, and "10,000+" once the count is
/// capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_local_days_failures_clients_requests_live_and_capped_counts() {
    let fixture = blocking(|| Fixture::sqlite("browser-reading"));
    let mut events = showcase();
    // 20:30 UTC two days ago: already the next day in Tokyo.
    let late = (Utc::now() - Days::days(2))
        .date_naive()
        .and_hms_opt(20, 30, 0)
        .unwrap()
        .and_utc();
    let mut night = AuditEvent::builder("write")
        .actor(Actor::new("u-erin", "erin", "erin@example.com"))
        .resource_type("template")
        .resource_id("template-night")
        .resource_target("night-shift")
        .build();
    night.time = late;
    events.push(night);
    fixture.append(&events);
    let api = fixture
        .builder()
        .viewer(Viewer::token_sign_in())
        .max_streams(1)
        // A stream whose client left is noticed at its next keep-alive at the latest.
        .keep_alive(Duration::from_secs(1))
        .build()
        .unwrap();
    let server = fixture.start_with(api).await;
    let Some(browser) = Browser::start(Options::default()).await else {
        return;
    };
    browser
        .cdp(
            "Emulation.setTimezoneOverride",
            json!({"timezoneId": "Asia/Tokyo"}),
        )
        .await;
    sign_in(&browser, &server, &fixture.tokens.owner).await;
    assert_eq!(
        browser
            .eval("return Intl.DateTimeFormat().resolvedOptions().timeZone")
            .await,
        json!("Asia/Tokyo")
    );

    // Every row sits under its local day; days run newest first and the first is today.
    let misplaced = browser
        .eval(
            "const key = d => d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');
             return [...document.querySelectorAll('#entries li.entry')]
               .filter(li => li.closest('section.day').dataset.day !== key(new Date(li.querySelector('time.clock').dateTime)))
               .map(li => li.textContent.trim().slice(0, 60));",
        )
        .await;
    assert_eq!(
        misplaced,
        json!([]),
        "rows under another day than their own"
    );
    let days: Vec<String> = serde_json::from_value(
        browser
            .eval("return [...document.querySelectorAll('#entries section.day')].map(s => s.dataset.day)")
            .await,
    )
    .unwrap();
    assert!(days.len() >= 4, "{days:?}");
    assert!(days.windows(2).all(|w| w[0] > w[1]), "{days:?}");
    assert_eq!(
        browser
            .eval("return document.querySelector('#entries section.day h2').textContent")
            .await,
        json!("Today")
    );
    let night_day = browser
        .eval("return [...document.querySelectorAll('#entries li.entry')].find(li => li.textContent.includes('night-shift')).closest('section.day').dataset.day")
        .await;
    let tokyo_day = (late + Days::days(1)).date_naive().to_string();
    assert_eq!(
        night_day,
        json!(tokyo_day),
        "20:30 UTC is the next day in Tokyo"
    );
    // Its clock reads Tokyo's 05:30, and UTC on hover.
    let clock = browser
        .eval("const li = [...document.querySelectorAll('#entries li.entry')].find(li => li.textContent.includes('night-shift')); const t = li.querySelector('time.clock'); return [t.textContent, t.title];")
        .await;
    let (text, title): (String, String) = serde_json::from_value(clock).unwrap();
    assert!(text.contains("05:30") || text.contains("5:30"), "{text}");
    assert!(title.contains("20:30") && title.ends_with("UTC"), "{title}");

    // A failed request stands out.
    let failed = browser
        .eval("return [...document.querySelectorAll('#entries li.entry')].filter(li => li.querySelector('.status').textContent.trim() === 'Failed 500').map(li => li.className)")
        .await;
    let failed: Vec<String> = serde_json::from_value(failed).unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].split(' ').any(|c| c == "error"), "{failed:?}");

    // An entry's details give its address and client.
    open_row(&browser, "data-pipeline").await;
    let panel = browser.text("#entries details[open] .panel").await;
    for expected in ["192.168.1.20", "Safari", "macOS", "Version/17.4"] {
        assert!(panel.contains(expected), "{expected:?} not in {panel}");
    }

    // A request's events are one click away.
    let request = browser
        .eval("const a = document.querySelector('#entries a[title=\"Every event of this request\"]'); a.closest('details').open = true; a.scrollIntoView({block: 'center'}); return a.textContent")
        .await;
    let request = request.as_str().unwrap().to_owned();
    browser
        .find("#entries a[title=\"Every event of this request\"]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_query(&browser, &format!("request_id:{request}")).await;
    let requests = browser
        .eval("return [...document.querySelectorAll('#entries a[title=\"Every event of this request\"]')].map(a => a.textContent)")
        .await;
    let requests: Vec<String> = serde_json::from_value(requests).unwrap();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| *r == request), "{requests:?}");

    // A user's events are one click away.
    browser.goto(&format!("http://{}/audit", server.addr)).await;
    let user = browser
        .eval("const a = [...document.querySelectorAll('#entries a.user')].find(a => a.textContent === 'carol'); a.scrollIntoView({block: 'center'}); return !!a")
        .await;
    assert_eq!(user, json!(true));
    for link in browser.find_all("#entries a.user").await {
        if link.text().await.unwrap() == "carol" {
            link.click().await.unwrap();
            break;
        }
    }
    wait_for_query(&browser, "username:carol").await;
    let descriptions = rows(&browser).await;
    assert_eq!(descriptions.len(), 2, "{descriptions:?}");
    assert!(
        descriptions.iter().all(|d| d.starts_with("carol ")),
        "{descriptions:?}"
    );

    // Live shows only what matches the query, and holds the server's one stream while on.
    go_live(&browser).await;
    assert_eq!(stream_status(&server, &fixture.tokens.owner).await, 503);
    let mut other = common::workspace_event("alice", "create", None, "not-carols");
    other.time = Utc::now();
    let mut carols = common::workspace_event("carol", "create", None, "carols-new");
    carols.time = Utc::now();
    fixture.append(&[other, carols]);
    browser
        .wait_until(
            "return document.querySelector('#entries .desc').textContent === 'carol created workspace carols-new'",
            WAIT,
            "carol's new entry at the top",
        )
        .await;
    assert!(!browser.source().await.contains("not-carols"));

    // Leaving the page ends its stream: the server's one stream is free again.
    browser.goto("about:blank").await;
    let deadline = std::time::Instant::now() + WAIT;
    let mut status = 503;
    while status != 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = stream_status(&server, &fixture.tokens.owner).await;
    }
    assert_eq!(
        status, 200,
        "the page's stream is still open after leaving it"
    );

    // Past 10,000 matching events the count says so, as Coder's does.
    let many: Vec<AuditEvent> = (0..10_001).map(|_| common::login("filler")).collect();
    fixture.append(&many);
    browser.goto(&format!("http://{}/audit", server.addr)).await;
    let count = browser.text("#count").await;
    assert!(count.contains("10,000+"), "{count}");
    assert_no_policy_violations(&browser).await;
    browser.close().await;
}
