//! The `tracing` backend: target `audit`, one field per event key, WARN for failures.
#![cfg(feature = "tracing")]

mod common;

use audit_core::backends::TracingBackend;
use audit_core::{Actor, AuditEvent, Backend};
use common::TracingCapture;

#[test]
fn events_become_tracing_events_with_target_audit() {
    let capture = TracingCapture::default();
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
    let lines = capture.lines();
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
