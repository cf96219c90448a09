//! The `tracing` backend: target `audit`, one field per event key, WARN for failures.
#![cfg(feature = "tracing")]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use audit_core::backends::TracingBackend;
use audit_core::{Actor, AuditEvent, Backend};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);
impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn events_become_tracing_events_with_target_audit() {
    let capture = Capture::default();
    let ok = AuditEvent::builder("login")
        .actor(Actor::new("u-1", "alice", "a@example.com"))
        .user_agent("curl/8")
        .field("method", "password")
        .build();
    let failed = AuditEvent::builder("delete")
        .resource_type("workspace")
        .resource_target("dev")
        .status(403)
        .build();
    tracing::subscriber::with_default(capture.clone(), || {
        TracingBackend::new()
            .write_batch(&[ok.clone(), failed])
            .unwrap();
    });
    let lines = capture.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert!(first.starts_with("INFO audit message=audit_log"), "{first}");
    for part in [
        format!(" id={}", ok.id),
        " username=\"alice\"".to_owned(),
        " user_id=\"u-1\"".to_owned(),
        " user_agent=\"curl/8\"".to_owned(),
        " action=\"login\"".to_owned(),
        " status_code=200".to_owned(),
        " diff={}".to_owned(),
        " additional_fields={\"method\":\"password\"}".to_owned(),
    ] {
        assert!(first.contains(&part), "{part} not in {first}");
    }
    assert!(
        !first.contains(" ip="),
        "missing values are left out: {first}"
    );
    assert!(lines[1].starts_with("WARN audit "), "{}", lines[1]);
    assert!(lines[1].contains(" resource_target=\"dev\""));
}
