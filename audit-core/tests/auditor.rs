//! The auditor: request guards, background events, routing, overflow policies, stats.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use audit_core::backends::{JsonLinesBackend, Match, MemoryBackend, SharedBuffer, TextBackend};
use audit_core::{
    Actor, AuditEvent, Auditor, Backend, BackendError, Fields, Overflow, RecordError,
    RequestContext, RetryPolicy, Route, Router, action,
};
use common::{
    FailingBackend, FlakyBackend, Gate, GateBackend, PickyBackend, Workspace, event, workspace,
};
use serde_json::json;
use uuid::Uuid;

fn ctx() -> RequestContext {
    RequestContext::new(Actor::new("u-1", "alice", "alice@example.com"))
        .ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
        .user_agent("curl/8.5.0")
        .request_id(Uuid::from_u128(42))
        .organization_id("org-1")
}

fn memory_auditor() -> (Auditor, MemoryBackend) {
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder().backend(memory.clone()).build().unwrap();
    (auditor, memory)
}

#[test]
fn a_guard_records_once_on_drop_with_the_request_context() {
    let (auditor, memory) = memory_auditor();
    let old = workspace();
    {
        let mut audit = auditor.request::<Workspace>(&ctx(), action::WRITE);
        audit.set_old(old.clone());
        audit.set_new(Workspace {
            ttl: Some(60),
            ..old.clone()
        });
        audit.set_status(200).set_field("reason", "user request");
    }
    auditor.flush();
    let events = memory.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.actor, Actor::new("u-1", "alice", "alice@example.com"));
    assert_eq!(e.ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(e.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(e.request_id, Some(Uuid::from_u128(42)));
    assert_eq!(e.organization_id.as_deref(), Some("org-1"));
    assert_eq!(e.resource_type, "workspace");
    assert_eq!(e.resource_target, "linux-container");
    assert_eq!(e.status_code, 200);
    assert_eq!(e.additional_fields["reason"], json!("user request"));
    assert_eq!(
        serde_json::to_value(&e.diff).unwrap(),
        json!({"ttl": {"old": null, "new": 60, "secret": false}})
    );
    assert!(
        memory.contains(
            Match::action("write")
                .resource_type("workspace")
                .username("alice")
                .changed("ttl")
                .succeeded()
        )
    );
}

#[test]
fn commit_records_exactly_once_and_cancel_records_nothing() {
    let (auditor, memory) = memory_auditor();
    let mut audit = auditor.request::<Workspace>(&ctx(), action::CREATE);
    audit.set_new(workspace()).set_status(201);
    audit.commit().unwrap(); // consumes the guard: its drop records nothing more

    let mut cancelled = auditor.request::<Workspace>(&ctx(), action::DELETE);
    cancelled.set_old(workspace()).set_status(200);
    cancelled.cancel();

    auditor.flush();
    assert_eq!(memory.len(), 1);
    assert!(memory.contains(Match::action("create").status(201)));
    assert!(!memory.contains(Match::action("delete")));
}

#[test]
fn failed_requests_are_recorded_without_a_diff() {
    let (auditor, memory) = memory_auditor();
    let mut audit = auditor.request::<Workspace>(&ctx(), action::WRITE);
    audit.set_old(workspace());
    audit.set_new(Workspace {
        name: "x".into(),
        ..workspace()
    });
    audit.set_status(403);
    drop(audit);
    auditor.flush();
    let e = memory.last().unwrap();
    assert_eq!(e.status_code, 403);
    assert!(e.diff.is_empty());
    assert_eq!(
        e.description(),
        "alice unsuccessfully attempted to update workspace x"
    );
}

#[test]
fn a_guard_dropped_without_a_status_records_a_failure() {
    fn handler(auditor: &Auditor) -> Result<(), &'static str> {
        let mut audit = auditor.request::<Workspace>(&ctx(), action::WRITE);
        audit.set_old(workspace());
        Err("database unavailable")?; // early return: the status is never set
        audit.set_status(200);
        Ok(())
    }
    let (auditor, memory) = memory_auditor();
    assert!(handler(&auditor).is_err());
    auditor.flush();
    assert!(memory.contains(Match::action("write").status(500).failed()));
}

#[test]
fn deletes_name_the_old_snapshot_and_guards_without_snapshots_still_record() {
    let (auditor, memory) = memory_auditor();
    let mut audit = auditor.request::<Workspace>(&ctx(), action::DELETE);
    audit.set_old(workspace()).set_status(204);
    drop(audit);
    let mut audit = auditor.request::<Workspace>(&ctx(), "archive");
    audit.set_status(200);
    drop(audit);
    auditor.flush();

    let deleted = &memory.find(Match::action("delete"))[0];
    assert_eq!(deleted.resource_id, workspace().id.to_string());
    assert_eq!(deleted.resource_target, "linux-container");
    assert_eq!(
        serde_json::to_value(&deleted.diff).unwrap()["name"],
        json!({"old": "linux-container", "secret": false})
    );
    let bare = &memory.find(Match::action("archive"))[0];
    assert_eq!(bare.resource_type, "workspace");
    assert_eq!(bare.resource_id, "");
    assert!(bare.diff.is_empty());
}

#[test]
fn background_events_for_system_actors() {
    let (auditor, memory) = memory_auditor();
    let ws = workspace();
    auditor
        .background(
            action::AUTO_START,
            Actor::system("autostart"),
            None,
            Some(&ws),
            200,
            [("build_reason", "autostart")],
        )
        .unwrap();
    auditor
        .background::<Workspace, String, serde_json::Value>(
            action::STOP,
            Actor::system("autostop"),
            Some(&ws),
            None,
            500,
            Fields::new(),
        )
        .unwrap();
    auditor.flush();
    let started = &memory.find(Match::action("auto_start"))[0];
    assert_eq!(started.actor.username, "autostart");
    assert_eq!(started.request_id, None);
    assert_eq!(started.ip, None);
    assert_eq!(
        started.additional_fields["build_reason"],
        json!("autostart")
    );
    assert!(started.diff.contains("name"));
    assert_eq!(
        started.description(),
        "autostart automatically started workspace linux-container"
    );
    let stopped = &memory.find(Match::action("stop"))[0];
    assert!(stopped.diff.is_empty(), "failed: no diff");
}

#[test]
fn routing_sends_each_event_to_the_backends_of_its_decision() {
    let store = MemoryBackend::new().named("store");
    let export = MemoryBackend::new().named("export");
    let router = Router::new(|e: &AuditEvent| match e.action.as_str() {
        "login" => Route::Export,
        "view" => Route::Drop,
        "write" => Route::Store,
        _ => Route::StoreAndExport,
    });
    let auditor = Auditor::builder()
        .backend(store.clone().with_filter(router.stores()))
        .backend(export.clone().with_filter(router.exports()))
        .build()
        .unwrap();
    for a in ["login", "view", "write", "delete"] {
        auditor.record(event(a)).unwrap();
    }
    auditor.flush();
    let actions = |m: &MemoryBackend| m.events().into_iter().map(|e| e.action).collect::<Vec<_>>();
    assert_eq!(actions(&store), ["write", "delete"]);
    assert_eq!(actions(&export), ["login", "delete"]);
    let stats = auditor.stats();
    assert_eq!(stats.recorded, 4);
    assert_eq!(stats.filtered, 1);
    assert_eq!(stats.backend("store").unwrap().accepted, 2);
    assert_eq!(stats.backend("export").unwrap().written, 2);
}

#[test]
fn the_default_filter_stores_and_exports_everything() {
    let store = MemoryBackend::new().named("store");
    let out = SharedBuffer::new();
    let auditor = Auditor::builder()
        .backend(store.clone())
        .backend(JsonLinesBackend::new(out.clone()))
        .build()
        .unwrap();
    auditor.record(event("login")).unwrap();
    auditor.flush();
    assert_eq!(store.len(), 1);
    assert_eq!(out.contents().lines().count(), 1);
}

#[test]
fn a_failing_or_panicking_backend_never_stops_the_others_and_is_counted() {
    struct Panicking;
    impl Backend for Panicking {
        fn name(&self) -> &str {
            "panicking"
        }
        fn write_batch(&mut self, _: &[AuditEvent]) -> Result<(), BackendError> {
            panic!("bug in a backend");
        }
    }
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder()
        .backend(FailingBackend)
        .backend(Panicking)
        .backend(memory.clone())
        .max_batch(4)
        .build()
        .unwrap();
    for _ in 0..10 {
        auditor.record(event("write")).unwrap();
    }
    auditor.flush();
    assert_eq!(memory.len(), 10);
    let stats = auditor.stats();
    let failing = stats.backend("failing").unwrap();
    assert_eq!(
        (failing.accepted, failing.written, failing.failed),
        (10, 0, 10)
    );
    assert_eq!(failing.last_error.as_deref(), Some("database is on fire"));
    let panicking = stats.backend("panicking").unwrap();
    assert_eq!((panicking.accepted, panicking.failed), (10, 10));
    let ok = stats.backend("memory").unwrap();
    assert_eq!(
        (ok.accepted, ok.written, ok.failed, ok.dropped, ok.queued),
        (10, 10, 0, 0, 0)
    );
    // still working after the panics
    auditor.record(event("delete")).unwrap();
    auditor.flush();
    assert_eq!(auditor.stats().backend("panicking").unwrap().failed, 11);
}

#[test]
fn fail_closed_refuses_events_when_a_queue_is_full_and_queues_them_nowhere() {
    let gate = Gate::default();
    let gated = GateBackend::new(&gate);
    let written = gated.written.clone();
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder()
        .backend(gated)
        .backend(memory.clone())
        .queue_capacity(2)
        .max_batch(1)
        .overflow(Overflow::FailClosed)
        .build()
        .unwrap();
    auditor.record(event("a")).unwrap();
    gate.wait_entered(); // the worker holds "a"; the queue is empty
    // let the healthy backend keep up, so only the gated one fills
    assert!(memory.wait_for(1, Duration::from_secs(5)));
    auditor.record(event("b")).unwrap();
    assert!(memory.wait_for(2, Duration::from_secs(5)));
    auditor.record(event("c")).unwrap();
    assert!(memory.wait_for(3, Duration::from_secs(5)));
    let err = auditor.record(event("d")).unwrap_err();
    assert_eq!(
        err,
        RecordError::QueueFull {
            backend: "gated".into()
        }
    );
    assert_eq!(err.to_string(), "audit queue of backend `gated` is full");
    gate.open();
    auditor.flush();
    let actions: Vec<_> = written
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.action.clone())
        .collect();
    assert_eq!(actions, ["a", "b", "c"]);
    assert!(
        !memory.contains(Match::action("d")),
        "all or nothing across backends"
    );
    let stats = auditor.stats();
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.backend("memory").unwrap().accepted, 3);
}

#[test]
fn a_fail_closed_guard_reports_the_error_on_commit() {
    let gate = Gate::default();
    let auditor = Auditor::builder()
        .backend(GateBackend::new(&gate))
        .queue_capacity(1)
        .overflow(Overflow::FailClosed)
        .build()
        .unwrap();
    auditor.record(event("a")).unwrap();
    gate.wait_entered();
    auditor.record(event("b")).unwrap();
    let mut audit = auditor.request::<Workspace>(&ctx(), action::WRITE);
    audit.set_status(200);
    assert!(matches!(audit.commit(), Err(RecordError::QueueFull { .. })));
    gate.open();
}

#[test]
fn drop_newest_drops_for_the_full_backend_only_and_counts() {
    let gate = Gate::default();
    let gated = GateBackend::new(&gate);
    let written = gated.written.clone();
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder()
        .backend(gated)
        .backend(memory.clone())
        .queue_capacity(2)
        .overflow(Overflow::DropNewest)
        .build()
        .unwrap();
    auditor.record(event("a")).unwrap();
    gate.wait_entered();
    for (i, a) in ["b", "c", "d", "e"].into_iter().enumerate() {
        auditor.record(event(a)).unwrap(); // never an error, never waits
        // let the healthy backend keep up, so only the gated one is full
        assert!(memory.wait_for(i + 2, Duration::from_secs(5)));
    }
    gate.open();
    auditor.flush();
    assert_eq!(written.lock().unwrap().len(), 3);
    assert_eq!(memory.len(), 5);
    let stats = auditor.stats();
    let gated = stats.backend("gated").unwrap();
    assert_eq!((gated.accepted, gated.written, gated.dropped), (3, 3, 2));
    assert_eq!(stats.backend("memory").unwrap().dropped, 0);
}

#[test]
fn block_waits_for_room_and_loses_nothing() {
    let gate = Gate::default();
    let gated = GateBackend::new(&gate);
    let written = gated.written.clone();
    let auditor = Auditor::builder()
        .backend(gated)
        .queue_capacity(1)
        .build()
        .unwrap();
    auditor.record(event("a")).unwrap();
    gate.wait_entered();
    auditor.record(event("b")).unwrap(); // fills the queue
    let producer = {
        let auditor = auditor.clone();
        std::thread::spawn(move || auditor.record(event("c")))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!producer.is_finished(), "blocked while the queue is full");
    gate.open();
    producer.join().unwrap().unwrap();
    auditor.flush();
    assert_eq!(written.lock().unwrap().len(), 3);
}

#[test]
fn flush_flushes_backends_and_shutdown_drains_then_refuses() {
    let path = std::env::temp_dir().join(format!("audit-core-test-{}.jsonl", Uuid::now_v7()));
    let text = SharedBuffer::new();
    let auditor = Auditor::builder()
        .backend(JsonLinesBackend::append_to_file(&path).unwrap())
        .backend(TextBackend::new(text.clone()))
        .build()
        .unwrap();
    auditor.record(event("login")).unwrap();
    auditor.flush();
    // the file backend is buffered: only a flush makes the line visible
    let content = std::fs::read_to_string(&path).unwrap();
    assert_eq!(content.lines().count(), 1);
    let e: AuditEvent = serde_json::from_str(content.trim_end()).unwrap();
    assert_eq!(e.action, "login");

    for _ in 0..100 {
        auditor.record(event("logout")).unwrap();
    }
    auditor.shutdown();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 101);
    assert_eq!(text.contents().lines().count(), 101);
    assert_eq!(auditor.record(event("late")), Err(RecordError::Closed));
    auditor.shutdown(); // idempotent
    auditor.flush(); // and flush after shutdown returns
    let _ = std::fs::remove_file(&path);
}

#[test]
fn dropping_the_last_auditor_drains_the_queues() {
    let memory = MemoryBackend::new();
    let slow = common::SlowBackend {
        delay: Duration::from_millis(5),
        ..Default::default()
    };
    let seen = slow.seen.clone();
    let auditor = Auditor::builder()
        .backend(slow)
        .backend(memory.clone())
        .max_batch(10)
        .build()
        .unwrap();
    let clone = auditor.clone();
    for _ in 0..200 {
        clone.record(event("write")).unwrap();
    }
    drop(auditor);
    drop(clone);
    assert_eq!(seen.lock().unwrap().0, 200);
    assert_eq!(memory.len(), 200);
    assert!(seen.lock().unwrap().1 <= 10, "batches respect max_batch");
}

#[test]
fn events_are_delivered_in_batches_in_order() {
    let slow = common::SlowBackend {
        delay: Duration::from_millis(20),
        ..Default::default()
    };
    let seen = slow.seen.clone();
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder()
        .backend(slow)
        .backend(memory.clone())
        .max_batch(64)
        .build()
        .unwrap();
    for i in 0..500 {
        auditor
            .record(AuditEvent::builder("write").field("i", i).build())
            .unwrap();
    }
    auditor.flush();
    let (count, largest) = *seen.lock().unwrap();
    assert_eq!(count, 500);
    assert!(
        largest > 1 && largest <= 64,
        "batched: largest batch {largest}"
    );
    let order: Vec<_> = memory
        .events()
        .iter()
        .map(|e| e.additional_fields["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order, (0..500).collect::<Vec<_>>());
}

#[test]
fn an_auditor_with_no_backend_accepts_and_filters() {
    let auditor = Auditor::builder().build().unwrap();
    auditor.record(event("login")).unwrap();
    auditor.flush();
    let stats = auditor.stats();
    assert_eq!((stats.recorded, stats.filtered), (1, 1));
    assert!(stats.backends.is_empty());
}

#[test]
fn recorded_events_are_normalized() {
    let (auditor, memory) = memory_auditor();
    let mut raw = event("login");
    raw.user_agent = Some("A".repeat(100_000));
    auditor.record(raw).unwrap();
    auditor.flush();
    let ua = memory.last().unwrap().user_agent.unwrap();
    assert!(ua.len() < 600 && ua.ends_with("[truncated]"));
}

#[test]
fn memory_backend_matchers() {
    let (auditor, memory) = memory_auditor();
    auditor
        .record(
            AuditEvent::builder("write")
                .actor(Actor::new("u-2", "bob", "bob@example.com"))
                .resource_type("template")
                .resource_id("t-1")
                .resource_target("base")
                .request_id(Uuid::from_u128(7))
                .field("k", 1)
                .build(),
        )
        .unwrap();
    assert!(memory.wait_for(1, Duration::from_secs(5)));
    let m = Match::action("write")
        .resource_type("template")
        .resource_id("t-1")
        .target("base")
        .username("bob")
        .actor_id("u-2")
        .request_id(Uuid::from_u128(7))
        .field("k", 1)
        .status(200)
        .succeeded();
    assert!(memory.contains(m.clone()));
    assert_eq!(memory.count(Match::any()), 1);
    assert!(!memory.contains(m.clone().field("k", 2)));
    assert!(!memory.contains(Match::action("write").username("alice")));
    assert!(!memory.contains(Match::any().changed("name")));
    assert!(!memory.contains(Match::any().failed()));
    memory.clear();
    assert!(memory.is_empty());
    assert!(!memory.wait_for(1, Duration::from_millis(10)));
}

#[test]
fn the_auditor_and_guards_can_cross_threads_and_awaits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Auditor>();
    send_sync::<MemoryBackend>();
    send::<audit_core::RequestAudit<Workspace>>();
    send_sync::<AuditEvent>();
}

#[test]
fn workers_pick_up_events_whether_lingering_sleeping_or_never_lingering() {
    for linger in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(30),
    ] {
        let memory = MemoryBackend::new();
        let auditor = Auditor::builder()
            .backend(memory.clone())
            .linger(linger)
            .build()
            .unwrap();
        // asleep: the first event wakes the worker
        auditor.record(event("a")).unwrap();
        assert!(memory.wait_for(1, Duration::from_secs(5)), "{linger:?}");
        // just worked, now lingering: picked up when the linger ends, no flush needed
        auditor.record(event("b")).unwrap();
        assert!(memory.wait_for(2, Duration::from_secs(5)), "{linger:?}");
        // quiet for longer than the linger: asleep again
        std::thread::sleep(linger * 3 + Duration::from_millis(5));
        auditor.record(event("c")).unwrap();
        assert!(memory.wait_for(3, Duration::from_secs(5)), "{linger:?}");
        // a burst of a full batch wakes a lingering worker early
        for _ in 0..1000 {
            auditor.record(event("d")).unwrap();
        }
        assert!(memory.wait_for(1003, Duration::from_secs(5)), "{linger:?}");
    }
}

#[test]
fn shutdown_timeout_gives_up_on_a_stuck_backend_but_drains_the_others() {
    let gate = Gate::default();
    let memory = MemoryBackend::new();
    let auditor = Auditor::builder()
        .backend(GateBackend::new(&gate))
        .backend(memory.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        auditor.record(event("write")).unwrap();
    }
    gate.wait_entered();
    let started = std::time::Instant::now();
    assert!(!auditor.shutdown_timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(memory.len(), 3, "the healthy backend was drained");
    assert_eq!(auditor.record(event("late")), Err(RecordError::Closed));
    let stats = auditor.stats();
    assert!(stats.backend("gated").unwrap().written < 3);
    drop(auditor); // does not wait for the stuck worker again
    assert!(started.elapsed() < Duration::from_secs(5));
    gate.open();

    let (auditor, _) = memory_auditor();
    assert!(auditor.shutdown_timeout(Duration::from_secs(5)));
}

#[test]
fn each_backend_takes_what_its_own_filter_accepts_and_counts_the_rest() {
    let all = MemoryBackend::new().named("all");
    let failures = MemoryBackend::new().named("failures");
    let no_logins = MemoryBackend::new().named("no_logins");
    let auditor = Auditor::builder()
        .backend(all.clone())
        .backend(
            failures
                .clone()
                .with_filter(|e: &AuditEvent| e.is_failure()),
        )
        .backend(
            no_logins
                .clone()
                .with_filter(|e: &AuditEvent| e.action != "login"),
        )
        .build()
        .unwrap();
    auditor.record(event("login")).unwrap();
    auditor
        .record(AuditEvent::builder("delete").status(403).build())
        .unwrap();
    auditor.record(event("write")).unwrap();
    auditor.flush();
    assert_eq!((all.len(), failures.len(), no_logins.len()), (3, 1, 2));
    let stats = auditor.stats();
    assert_eq!(stats.filtered, 0, "every event went somewhere");
    let counts = |name: &str| {
        let b = stats.backend(name).unwrap();
        (b.accepted, b.filtered)
    };
    assert_eq!(counts("all"), (3, 0));
    assert_eq!(counts("failures"), (1, 2));
    assert_eq!(counts("no_logins"), (2, 1));
}

/// A quick policy for tests: pauses of about a millisecond.
fn quick_retries(max_elapsed: Duration) -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        ..RetryPolicy::new(max_elapsed)
    }
}

#[test]
fn a_retryable_failure_is_retried_until_the_batch_is_written() {
    let flaky = FlakyBackend {
        failures: 3,
        ..Default::default()
    };
    let (attempts, written) = (flaky.attempts.clone(), flaky.written.clone());
    let auditor = Auditor::builder()
        .backend(flaky)
        .max_batch(100)
        .retry(quick_retries(Duration::from_secs(30)))
        .build()
        .unwrap();
    for _ in 0..5 {
        auditor.record(event("write")).unwrap();
    }
    auditor.flush();
    let stats = auditor.stats();
    let flaky = stats.backend("flaky").unwrap();
    assert_eq!((flaky.written, flaky.failed), (5, 0), "{flaky:?}");
    assert_eq!(flaky.retries, 3);
    assert_eq!(flaky.last_error.as_deref(), Some("connection reset"));
    assert_eq!(written.lock().unwrap().len(), 5);
    assert!(*attempts.lock().unwrap() >= 4);
}

#[test]
fn a_batch_still_failing_when_the_retry_time_is_up_counts_as_failed() {
    let flaky = FlakyBackend {
        failures: usize::MAX,
        ..Default::default()
    };
    let attempts = flaky.attempts.clone();
    let auditor = Auditor::builder()
        .backend(flaky)
        .retry(quick_retries(Duration::from_millis(50)))
        .build()
        .unwrap();
    auditor.record(event("write")).unwrap();
    auditor.flush();
    let stats = auditor.stats();
    let flaky = stats.backend("flaky").unwrap();
    assert_eq!((flaky.written, flaky.failed, flaky.queued), (0, 1, 0));
    assert!(flaky.retries >= 1, "{flaky:?}");
    assert_eq!(*attempts.lock().unwrap() as u64, flaky.retries + 1);

    // Without retries, a retryable failure counts at once.
    let once = FlakyBackend {
        failures: usize::MAX,
        ..Default::default()
    };
    let attempts = once.attempts.clone();
    let auditor = Auditor::builder()
        .backend(once)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    auditor.record(event("write")).unwrap();
    auditor.flush();
    assert_eq!(auditor.stats().backend("flaky").unwrap().failed, 1);
    assert_eq!(*attempts.lock().unwrap(), 1);
}

#[test]
fn a_failure_that_names_its_events_fails_only_those_and_is_not_retried() {
    let picky = PickyBackend::default();
    let (attempts, written) = (picky.attempts.clone(), picky.written.clone());
    let auditor = Auditor::builder()
        .backend(picky)
        .max_batch(10)
        .retry(quick_retries(Duration::from_secs(30)))
        .build()
        .unwrap();
    for a in ["a", "bad", "b", "c", "bad", "d"] {
        auditor.record(event(a)).unwrap();
    }
    auditor.flush();
    let stats = auditor.stats();
    let picky = stats.backend("picky").unwrap();
    assert_eq!((picky.accepted, picky.written, picky.failed), (6, 4, 2));
    assert_eq!(picky.retries, 0);
    let actions: Vec<String> = written
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.action.clone())
        .collect();
    assert_eq!(actions, ["a", "b", "c", "d"]);
    assert!(*attempts.lock().unwrap() <= 6, "one attempt per batch");
}

#[test]
fn shutdown_with_a_timeout_is_bounded_while_a_backend_retries() {
    let flaky = FlakyBackend {
        failures: usize::MAX,
        ..Default::default()
    };
    let memory = MemoryBackend::new();
    // The default policy would retry for 30 s.
    let auditor = Auditor::builder()
        .backend(flaky)
        .backend(memory.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        auditor.record(event("write")).unwrap();
    }
    let started = std::time::Instant::now();
    auditor.shutdown_timeout(Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(memory.len(), 3);
    // The retrying worker gave up at the deadline and counted its events as failed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let flaky = loop {
        let stats = auditor.stats();
        let flaky = stats.backend("flaky").unwrap().clone();
        if flaky.failed == 3 || std::time::Instant::now() > deadline {
            break flaky;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        (flaky.written, flaky.failed, flaky.queued),
        (0, 3, 0),
        "{flaky:?}"
    );
    assert!(flaky.retries >= 1);
    drop(auditor);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Accepts `budget` bytes, then fails as a full disk does.
struct FillsUp {
    out: SharedBuffer,
    budget: usize,
}

impl std::io::Write for FillsUp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.budget == 0 {
            return Err(std::io::Error::other("no space left on device"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        self.out.write(&buf[..n])
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_json_lines_backend_counts_exactly_the_lines_that_got_through() {
    let out = SharedBuffer::new();
    let line = audit_core::format::json_line(&event("write")).len() + 1;
    let auditor = Auditor::builder()
        .backend(JsonLinesBackend::new(FillsUp {
            out: out.clone(),
            budget: 3 * line + line / 2,
        }))
        .max_batch(100)
        .build()
        .unwrap();
    for _ in 0..6 {
        auditor.record(event("write")).unwrap();
    }
    auditor.flush();
    let text = out.contents();
    let complete = text
        .lines()
        .filter(|l| serde_json::from_str::<AuditEvent>(l).is_ok())
        .count() as u64;
    let stats = auditor.stats();
    let json = stats.backend("json_lines").unwrap();
    assert_eq!(complete, 3, "{text}");
    assert_eq!(
        json.written, complete,
        "written counts the lines that got through"
    );
    assert_eq!(json.failed, 6 - complete);
}

#[test]
fn the_json_lines_backend_on_dev_full_counts_nothing_as_written() {
    let Ok(backend) = JsonLinesBackend::append_to_file("/dev/full") else {
        return; // no /dev/full on this system
    };
    let auditor = Auditor::builder().backend(backend).build().unwrap();
    for _ in 0..3 {
        auditor.record(event("write")).unwrap();
    }
    auditor.shutdown();
    let stats = auditor.stats();
    let json = stats.backend("json_lines").unwrap();
    assert_eq!((json.written, json.failed), (0, 3), "{json:?}");
}
