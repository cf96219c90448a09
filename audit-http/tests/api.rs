//! `GET /api/v2/audit`, the export, health and access control, over a real server on
//! 127.0.0.1, against SQLite and (when `AUDIT_TEST_POSTGRES_URL` is set) Postgres.

mod common;

use std::time::Duration;

use audit_core::query::Filter;
use audit_core::store::export::Format;
use common::{Fixture, SECRET, dataset};

fn usernames(reply: &common::Reply) -> Vec<String> {
    reply.json()["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["user"]["username"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn orgs(reply: &common::Reply) -> Vec<serde_json::Value> {
    reply.json()["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["organization_id"].clone())
        .collect()
}

on_every_store! {
    lists_newest_first_with_coders_keys_a_capped_count_and_a_cursor => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let reply = server.get("/api/v2/audit", Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), "no-store");
        let json = reply.json();
        assert_eq!(json["count"], 6);
        assert_eq!(json["count_capped"], false);
        assert_eq!(json["next_cursor"], serde_json::Value::Null);
        assert_eq!(usernames(&reply), ["carol", "root", "alice", "bob", "alice", "alice"]);
        let first = &json["audit_logs"][0];
        for key in [
            "id", "request_id", "time", "organization_id", "ip", "user_agent", "resource_type",
            "resource_id", "resource_target", "resource_icon", "action", "diff", "status_code",
            "additional_fields", "description", "user", "seq",
        ] {
            assert!(first.get(key).is_some(), "missing {key}: {first}");
        }
        assert_eq!(first["description"], "carol deleted workspace old");
        assert_eq!(first["user"]["email"], "carol@example.com");
        assert_eq!(first["diff"]["agent_token"], serde_json::json!({"secret": true}));
        assert!(!reply.body.contains(SECRET));
        // Positions are the commit order: the newest event has the highest.
        let seqs: Vec<u64> = json["audit_logs"].as_array().unwrap().iter().map(|l| l["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [6, 5, 4, 3, 2, 1]);
    };

    pages_with_after_and_with_a_bounded_offset => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let token = Some(f.tokens.owner.as_str());
        let mut seen = Vec::new();
        let mut path = "/api/v2/audit?limit=4".to_owned();
        loop {
            let reply = server.get(&path, token).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            seen.extend(usernames(&reply));
            match reply.json()["next_cursor"].as_str() {
                Some(next) => path = format!("/api/v2/audit?limit=4&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen, ["carol", "root", "alice", "bob", "alice", "alice"]);

        let reply = server.get("/api/v2/audit?limit=2&offset=3", token).await;
        assert_eq!(usernames(&reply), ["bob", "alice"]);
        let reply = server.get("/api/v2/audit?offset=6", token).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["audit_logs"], serde_json::json!([]));
        assert_eq!(reply.json()["count"], 6);

        let reply = server.get("/api/v2/audit?offset=10001", token).await;
        assert_eq!(reply.status, 400);
        assert!(reply.message().contains("`offset`") && reply.message().contains("`after`"), "{}", reply.body);
        let cursor = "18b2a47d6e0.0188b2a47d6e7c2a9f4b3a1d2e5f6a7b";
        let reply = server.get(&format!("/api/v2/audit?offset=1&after={cursor}"), token).await;
        assert_eq!(reply.status, 400);
        assert!(reply.message().contains("`offset`"));
    };

    filters_narrow_and_username_me_is_the_caller => |f: Fixture| async move {
        f.append(&dataset());
        f.append(&[common::workspace_event("root", "create", Some("org-2"), "mine")]);
        let server = f.start().await;
        let token = Some(f.tokens.owner.as_str());
        let reply = server.get("/api/v2/audit?q=username%3Ame", token).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(usernames(&reply), ["root", "root"]);
        let reply = server.get("/api/v2/audit?q=resource_type:workspace+action:write", token).await;
        assert_eq!(usernames(&reply), ["alice", "bob"]);
        assert_eq!(reply.json()["count"], 2);
    };

    bad_parameters_are_400s_that_name_them => |f: Fixture| async move {
        let server = f.start().await;
        let token = Some(f.tokens.owner.as_str());
        let reply = server.get("/api/v2/audit?q=resource_type:workspaces+usrname:bob", token).await;
        assert_eq!(reply.status, 400);
        let json = reply.json();
        assert_eq!(json["message"], "Invalid audit search query.");
        let fields: Vec<&str> = json["validations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["usrname", "resource_type"]);
        for (path, name) in [
            ("/api/v2/audit?limit=1001", "limit"),
            ("/api/v2/audit?limit=abc", "limit"),
            ("/api/v2/audit?offset=-1", "offset"),
            ("/api/v2/audit?after=garbage", "after"),
            ("/api/v2/audit?q=a&q=b", "q"),
            ("/api/v2/audit/export?format=xml", "format"),
            ("/api/v2/audit/stream?after=x", "after"),
            ("/api/v2/audit/watch?after=-3", "after"),
        ] {
            let reply = server.get(path, token).await;
            assert_eq!(reply.status, 400, "{path}: {}", reply.body);
            assert!(reply.message().contains(&format!("`{name}`")), "{path}: {}", reply.body);
        }
        let reply = server
            .get_with("/api/v2/audit/stream", &[("authorization", &format!("Bearer {}", f.tokens.owner)), ("last-event-id", "x1")])
            .await;
        assert_eq!(reply.status, 400);
        assert!(reply.message().contains("`Last-Event-ID`"));
    };

    unauthenticated_callers_get_401_and_learn_nothing => |f: Fixture| async move {
        f.append(&dataset());
        let revoked = f.tokens.file.create("gone", "owner", &[]).unwrap();
        assert!(f.tokens.file.revoke(&revoked.id).unwrap());
        let server = f.start().await;
        let mut bodies = Vec::new();
        for headers in [
            vec![],
            vec![("authorization", "Bearer nonsense".to_owned())],
            vec![("authorization", format!("Bearer {}", revoked.token()))],
            vec![("authorization", format!("Basic {}", f.tokens.owner))],
            vec![("coder-session-token", "audit_0000000000000000_00".to_owned())],
        ] {
            for path in ["/api/v2/audit", "/api/v2/audit/export", "/api/v2/audit/stream", "/api/v2/audit/watch", "/api/v2/audit?limit=99999"] {
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let reply = server.get_with(path, &headers).await;
                assert_eq!(reply.status, 401, "{path} {headers:?}");
                assert!(reply.header("www-authenticate").starts_with("Bearer"));
                bodies.push(reply.body);
            }
        }
        bodies.dedup();
        assert_eq!(bodies.len(), 1, "every 401 says the same: {bodies:?}");
        assert!(!bodies[0].contains(SECRET) && !bodies[0].contains("revoked") && !bodies[0].contains("unknown"));
        assert!(f.recorded_reads().is_empty(), "no principal, nothing recorded");
    };

    coder_session_token_and_cookie_are_accepted => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let reply = server.get_with("/api/v2/audit", &[("coder-session-token", &f.tokens.owner)]).await;
        assert_eq!(reply.status, 200);
        let cookie = format!("audit_session={}", f.tokens.auditor);
        let reply = server.get_with("/api/v2/audit", &[("cookie", &cookie)]).await;
        assert_eq!(reply.status, 200);
    };

    members_get_403_and_the_attempt_is_recorded => |f: Fixture| async move {
        let server = f.start().await;
        for path in ["/api/v2/audit", "/api/v2/audit/export?format=csv", "/api/v2/audit/stream", "/api/v2/audit/watch"] {
            let reply = server.get(path, Some(&f.tokens.member)).await;
            assert_eq!(reply.status, 403, "{path}");
            assert!(reply.message().contains("owner"), "{}", reply.body);
        }
        let reads = f.recorded_reads();
        assert_eq!(reads.len(), 4);
        assert!(reads.iter().all(|e| e.actor.username == "mel" && e.status_code == 403 && e.resource_type == "audit_log"));
        assert_eq!(reads[1].action, "export");
    };

    reads_and_exports_are_recorded_by_the_reader => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let reply = server
            .get_with("/api/v2/audit?q=action:write", &[
                ("authorization", &format!("Bearer {}", f.tokens.auditor)),
                ("user-agent", "curl/8.5"),
            ])
            .await;
        assert_eq!(reply.status, 200);
        let reply = server.get("/api/v2/audit/export?format=csv&q=username:alice", Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 200);
        let reads = f.recorded_reads();
        assert_eq!(reads.len(), 2, "{reads:?}");
        assert_eq!((reads[0].action.as_str(), reads[0].actor.username.as_str()), ("read", "audra"));
        assert_eq!(reads[0].additional_fields["query"], "action:write");
        assert_eq!(reads[0].user_agent.as_deref(), Some("curl/8.5"));
        assert_eq!(reads[0].ip.map(|ip| ip.to_string()).as_deref(), Some("127.0.0.1"));
        assert_eq!(reads[0].description(), "audra read audit log");
        assert_eq!((reads[1].action.as_str(), reads[1].actor.username.as_str()), ("export", "root"));
        assert_eq!(reads[1].additional_fields["format"], "csv");
    };

    an_organization_auditor_sees_only_its_organization_everywhere => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let olga = f.tokens.org1.as_str();
        // List and count.
        let reply = server.get("/api/v2/audit", Some(olga)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(usernames(&reply), ["carol", "alice", "alice"]);
        assert!(orgs(&reply).iter().all(|o| o == "org-1"));
        assert_eq!(reply.json()["count"], 3);
        // A client filter narrows, never widens: bob's org-2 event stays out of reach.
        let reply = server.get("/api/v2/audit?q=username:bob", Some(olga)).await;
        assert_eq!(reply.json()["audit_logs"], serde_json::json!([]));
        assert_eq!(reply.json()["count"], 0);
        let reply = server.get("/api/v2/audit?q=username:alice", Some(olga)).await;
        assert_eq!(usernames(&reply), ["alice", "alice"], "alice's site-wide login is not shown");
        // Paging by offset stays inside the scope.
        let reply = server.get("/api/v2/audit?limit=1&offset=1", Some(olga)).await;
        assert_eq!(usernames(&reply), ["alice"]);
        assert_eq!(orgs(&reply), [serde_json::json!("org-1")]);
        // Export.
        let reply = server.get("/api/v2/audit/export?format=jsonl", Some(olga)).await;
        let lines: Vec<serde_json::Value> = reply.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l["organization_id"] == "org-1"));
        // The site-wide auditor sees everything.
        let reply = server.get("/api/v2/audit", Some(&f.tokens.auditor)).await;
        assert_eq!(reply.json()["count"], 6);
    };

    exports_are_attachments_in_the_clis_formats => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let reply = server.get("/api/v2/audit/export?format=csv&q=resource_type:workspace", Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), "text/csv; charset=utf-8");
        let disposition = reply.header("content-disposition");
        assert!(disposition.starts_with("attachment; filename=\"audit-log-") && disposition.ends_with(".csv\""), "{disposition}");
        // Exactly what audit-core's export writes for the same filter: the CLI's CSV.
        let mut store = f.store();
        let filter = Filter::parse("resource_type:workspace").unwrap();
        let expected = common::blocking(move || {
            let mut out = Vec::new();
            audit_core::store::export::export(&mut *store, &filter, Format::Csv, &mut out, &mut |_| {}).unwrap();
            out
        });
        assert_eq!(reply.body, String::from_utf8(expected).unwrap());
        assert_eq!(reply.body.lines().count(), 1 + 4, "a header and four rows");
        assert!(reply.body.contains("\"'=cmd|"), "formula-safe: {}", reply.body);
        assert!(!reply.body.contains(SECRET));

        let reply = server.get("/api/v2/audit/export", Some(&f.tokens.owner)).await;
        assert_eq!(reply.header("content-type"), "application/x-ndjson");
        assert_eq!(reply.body.lines().count(), 6);
        assert!(!reply.body.contains(SECRET));
        // An empty result is still a valid CSV file: the header alone.
        let reply = server.get("/api/v2/audit/export?format=csv&q=username:nobody", Some(&f.tokens.owner)).await;
        assert_eq!(reply.body.lines().count(), 1);
    };

    a_vocabulary_from_the_store_follows_what_it_records => |f: Fixture| async move {
        f.append(&dataset());
        let api = f.builder().vocabulary_from_store(vec![audit_core::query::BUILD_REASON]).build().unwrap();
        let server = f.start_with(api).await;
        let token = Some(f.tokens.owner.as_str());
        // `api_key` is no Rust type here, but the store has recorded it.
        let reply = server.get("/api/v2/audit?q=resource_type:api_key+action:login", token).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(usernames(&reply), ["root", "alice"]);
        assert_eq!(server.get("/api/v2/audit?q=build_reason:autostart", token).await.status, 200);
        let reply = server.get("/api/v2/audit?q=resource_type:vm", token).await;
        assert_eq!(reply.status, 400);
        // A resource type recorded after the server started is known on the next query.
        f.append(&[audit_core::AuditEvent::builder("start").resource_type("vm").build()]);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let reply = server.get("/api/v2/audit?q=resource_type:vm", token).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["count"], 1);
        // Reads of the log itself are always a known resource.
        let reply = server.get("/api/v2/audit?q=resource_type:audit_log+action:export", token).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    };

    a_capped_count_stays_capped_until_a_purge => |f: Fixture| async move {
        let old: Vec<_> = (0..10_050)
            .map(|i| {
                let mut e = common::login(&format!("u{}", i % 7));
                e.time = "2020-01-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()
                    + chrono::Duration::seconds(i);
                e
            })
            .collect();
        for chunk in old.chunks(2000) {
            f.append(chunk);
        }
        f.append(&dataset());
        let server = f.start().await;
        let token = Some(f.tokens.owner.as_str());
        for _ in 0..2 {
            let json = server.get("/api/v2/audit?limit=1", token).await.json();
            assert_eq!((json["count"].as_u64(), json["count_capped"].as_bool()), (Some(10_000), Some(true)));
        }
        let purged = common::blocking(|| {
            f.store_writer(|s| {
                s.purge(
                    &audit_core::store::PurgeOptions::older_than("2021-01-01T00:00:00Z".parse().unwrap()),
                    None,
                    &mut |_| {},
                )
            })
        })
        .unwrap();
        assert_eq!(purged.events, 10_050);
        // Once the server has seen the purge, the count is exact again.
        let mut exact = None;
        for _ in 0..100 {
            let json = server.get("/api/v2/audit?limit=1", token).await.json();
            if json["count_capped"] == false {
                exact = json["count"].as_u64();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The six events and the reads recorded are not counted: reads go to a memory backend.
        assert_eq!(exact, Some(6));
    };

    health_answers_once_the_store_does => |f: Fixture| async move {
        let server = f.start().await;
        let reply = server.get("/healthz", None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["status"], "ok");
    };

    bounds_on_query_strings_and_bodies => |f: Fixture| async move {
        let server = f.start().await;
        let long = format!("/api/v2/audit?q={}", "a".repeat(9000));
        let reply = server.get(&long, Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 414);
        assert!(reply.message().contains("query string"));
        let reply = server.get("/api/v2/audit?q=".to_owned().as_str(), Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 200);
        let q = format!("/api/v2/audit?q={}", "a".repeat(5000));
        let reply = server.get(&q, Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 400);
        assert!(reply.message().contains("`q`"));
        let reply = server
            .get_with("/api/v2/audit", &[("authorization", &format!("Bearer {}", f.tokens.owner)), ("content-length", "10000000")])
            .await;
        assert_eq!(reply.status, 413);
    };

    hostile_filters_never_break_the_server => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let token = Some(f.tokens.owner.as_str());
        for q in [
            "%00", "%22", "%22%22%22", "resource_id:%22a%5C%22", "%E2%80%AE", "username:%00%0A%0D",
            "date_from:9999-99-99", "request_id:%27%3B+DROP+TABLE+audit_logs%3B--", "%FF%FE",
            "resource_target:%22%3Cscript%3Ealert(1)%3C%2Fscript%3E%22", "a:b:c", ":::", "%3A",
        ] {
            let reply = server.get(&format!("/api/v2/audit?q={q}"), token).await;
            assert!(reply.status == 200 || reply.status == 400, "{q}: {} {}", reply.status, reply.body);
            let _ = reply.json();
        }
        let reply = server.get("/healthz", None).await;
        assert_eq!(reply.status, 200, "still serving");
        let reply = server.get("/api/v2/audit", token).await;
        assert_eq!(reply.json()["count"], 6, "the log is intact");
    };
}

/// A store for failure cases: `count` sleeps for `slow_count`; `page` fails with a database
/// error while `fail_pages` is above zero.
struct Flaky {
    slow_count: Duration,
    fail_pages: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

mod flaky {
    use super::*;
    use audit_core::AuditEvent;
    use audit_core::store::{
        ArchiveFn, Count, LogSpan, Page, PageRequest, PurgeOptions, PurgeReport, StorageStats,
        Store, StoreError, StoredEvent,
    };
    use std::sync::atomic::Ordering;

    impl Store for Flaky {
        fn append(&mut self, _: &[AuditEvent]) -> Result<(), StoreError> {
            Ok(())
        }
        fn page(&mut self, _: &Filter, _: &PageRequest) -> Result<Page, StoreError> {
            let failing = self
                .fail_pages
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                return Err(StoreError::Database {
                    context: "Postgres at db.internal:5432/audit: cannot read".into(),
                    source: Box::new(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "connection reset by peer",
                    )),
                });
            }
            Ok(Page {
                events: vec![],
                next: None,
            })
        }
        fn count(&mut self, _: &Filter, _: u64) -> Result<Count, StoreError> {
            std::thread::sleep(self.slow_count);
            Ok(Count::Exact(0))
        }
        fn newer(
            &mut self,
            _: &Filter,
            _: Option<u64>,
            _: usize,
        ) -> Result<Vec<StoredEvent>, StoreError> {
            Ok(vec![])
        }
        fn head(&mut self) -> Result<LogSpan, StoreError> {
            Ok(LogSpan { first: 1, head: 0 })
        }
        fn purge(
            &mut self,
            _: &PurgeOptions,
            _: Option<&mut ArchiveFn<'_>>,
            _: &mut dyn FnMut(u64),
        ) -> Result<PurgeReport, StoreError> {
            Ok(PurgeReport::default())
        }
        fn stats(&mut self) -> Result<StorageStats, StoreError> {
            Ok(StorageStats::default())
        }
        fn recorded_actions(&mut self) -> Result<Vec<(String, String)>, StoreError> {
            Ok(vec![])
        }
    }
}

struct FlakyServer {
    server: common::Server,
    fixture: Fixture,
    fail_pages: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    opened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn flaky_server(
    case: &str,
    slow_count: Duration,
    deadline: Duration,
    connections: usize,
) -> FlakyServer {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    let fixture = common::blocking(|| Fixture::sqlite(case));
    let fail_pages = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(AtomicUsize::new(0));
    let (f, o) = (Arc::clone(&fail_pages), Arc::clone(&opened));
    let readers = audit_http::Readers::open_with(move || {
        o.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Box::new(Flaky {
            slow_count,
            fail_pages: Arc::clone(&f),
        }))
    })
    .max_connections(connections);
    let api = audit_http::AuditApi::builder(readers)
        .authorizer(fixture.tokens.file.authorizer().unwrap())
        .auditor(
            audit_core::Auditor::builder()
                .backend(fixture.reads.clone())
                .build()
                .unwrap(),
        )
        .store_deadline(deadline)
        .build()
        .unwrap();
    let server = fixture.start_with(api).await;
    FlakyServer {
        server,
        fixture,
        fail_pages,
        opened,
    }
}

/// A store that hangs answers 503 within the deadline instead of hanging the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_store_is_a_503_not_a_hang() {
    let s = flaky_server(
        "hung",
        Duration::from_secs(2),
        Duration::from_millis(200),
        2,
    )
    .await;
    let started = std::time::Instant::now();
    let reply = s
        .server
        .get("/api/v2/audit", Some(&s.fixture.tokens.owner))
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.message().contains("did not answer"), "{}", reply.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered before the store did"
    );
}

/// Store calls run off the async runtime: with a single runtime thread, a slow store call
/// does not stop another request from being answered.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_store_call_does_not_block_the_runtime() {
    let s = flaky_server(
        "runtime",
        Duration::from_millis(1500),
        Duration::from_secs(10),
        2,
    )
    .await;
    let token = s.fixture.tokens.owner.clone();
    let slow = {
        let addr = s.server.addr;
        let token = token.clone();
        tokio::spawn(async move {
            common::get(addr, "/api/v2/audit", Some(&token))
                .await
                .status
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let reply = s.server.get("/healthz", None).await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "health waited for the slow call: {:?}",
        started.elapsed()
    );
    assert_eq!(slow.await.unwrap(), 200);
}

/// A connection that failed at the database level is dropped and a fresh one opened: a
/// restarted database heals without restarting the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_is_replaced() {
    use std::sync::atomic::Ordering;
    let s = flaky_server("broken", Duration::ZERO, Duration::from_secs(5), 1).await;
    let token = Some(s.fixture.tokens.owner.as_str());
    assert_eq!(s.server.get("/api/v2/audit", token).await.status, 200);
    let opened = s.opened.load(Ordering::SeqCst);
    s.fail_pages.store(1, Ordering::SeqCst);
    let reply = s.server.get("/api/v2/audit", token).await;
    assert_eq!(reply.status, 503);
    assert!(
        !reply.body.contains("connection reset") && !reply.body.contains("db.internal"),
        "no database detail leaks"
    );
    assert_eq!(s.server.get("/api/v2/audit", token).await.status, 200);
    assert!(
        s.opened.load(Ordering::SeqCst) > opened,
        "a new connection was opened"
    );
}

/// A store that cannot be opened is a 503 with a message, on every endpoint and on health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_a_503_with_a_message() {
    let f = common::blocking(|| Fixture::sqlite("unreachable"));
    let api = audit_http::AuditApi::builder(audit_http::Readers::url(
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"
            .parse()
            .unwrap(),
    ))
    .authorizer(f.tokens.file.authorizer().unwrap())
    .auditor(
        audit_core::Auditor::builder()
            .backend(f.reads.clone())
            .build()
            .unwrap(),
    )
    .build()
    .unwrap();
    let server = f.start_with(api).await;
    for path in [
        "/healthz",
        "/api/v2/audit",
        "/api/v2/audit/export",
        "/api/v2/audit/stream",
        "/api/v2/audit/watch",
    ] {
        let reply = server.get(path, Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.body);
        assert!(
            reply.message().contains("unavailable"),
            "{path}: {}",
            reply.body
        );
        assert!(
            !reply.body.contains("127.0.0.1:1"),
            "no database detail leaks: {}",
            reply.body
        );
    }
}

/// A file that is not an SQLite database: 503/500 with a message, never a panic or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_is_an_error_with_a_message() {
    let f = common::blocking(|| Fixture::sqlite("corrupt"));
    let path = f.dir.join("corrupt.db");
    std::fs::write(&path, vec![0x5Au8; 64 * 1024]).unwrap();
    let url = format!("sqlite://{}", path.display());
    let api = audit_http::AuditApi::builder(audit_http::Readers::url(url.parse().unwrap()))
        .authorizer(f.tokens.file.authorizer().unwrap())
        .auditor(
            audit_core::Auditor::builder()
                .backend(f.reads.clone())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let server = f.start_with(api).await;
    for path in ["/healthz", "/api/v2/audit", "/api/v2/audit/stream"] {
        let reply = server.get(path, Some(&f.tokens.owner)).await;
        assert!(
            reply.status == 503 || reply.status == 500,
            "{path}: {}",
            reply.body
        );
        assert!(!reply.message().is_empty());
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5Au8; 64 * 1024],
        "a reader never writes"
    );
}

#[test]
fn the_log_is_never_served_without_an_authorizer_or_an_auditor() {
    let readers = || audit_http::Readers::url("sqlite://unused.db".parse().unwrap());
    let err = audit_http::AuditApi::builder(readers())
        .auditor(audit_core::Auditor::builder().build().unwrap())
        .build()
        .err()
        .unwrap();
    assert_eq!(err, audit_http::BuildError::NoAuthorizer);
    assert!(err.to_string().contains("--tokens"));
    let err = audit_http::AuditApi::builder(readers())
        .authorizer(|_: &axum::http::request::Parts| Err(audit_http::Rejection::Unauthenticated))
        .build()
        .err()
        .unwrap();
    assert_eq!(err, audit_http::BuildError::NoAuditor);
}
