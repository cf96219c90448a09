//! The event model: building from snapshots, descriptions, and its output formats.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use audit_core::{Actor, AuditEvent, Auditable, action, format};
use audit_core::{MAX_USER_AGENT_LEN, TRUNCATED_MARK};
use common::{Workspace, fixed_id, fixed_time, workspace};
use serde_json::json;
use uuid::Uuid;

fn alice() -> Actor {
    Actor::new(
        "6c405053-27e3-484a-9ad7-bcb64e7bfde6",
        "alice",
        "alice@example.com",
    )
}

/// A write event with every field set, at a fixed id and time.
fn sample() -> AuditEvent {
    let old = workspace();
    let new = Workspace {
        ttl: Some(3600),
        last_used_at: 2,
        agent_token: "token-2".into(),
        ..old.clone()
    };
    AuditEvent::builder(action::WRITE)
        .id_and_time(fixed_id(), fixed_time())
        .actor(alice())
        .organization_id("00000000-0000-0000-0000-000000000000")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)))
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
        .request_id(Uuid::parse_str("bb791ac3-f6ee-4da8-8ec2-f54e87013e93").unwrap())
        .resource(Some(&old), Some(&new))
        .field("build_reason", "initiator")
        .field("build_number", "9")
        .status(200)
        .build()
}

#[test]
fn json_rendering() {
    insta::assert_json_snapshot!("event_json", sample());
    let line = format::json_line(&sample());
    assert!(!line.contains('\n'));
    let back: AuditEvent = serde_json::from_str(&line).unwrap();
    assert_eq!(back, sample(), "the JSON form round-trips");
}

#[test]
fn text_rendering() {
    insta::assert_snapshot!("event_text", format::text_line(&sample()));
    let mut failed = sample();
    failed.status_code = 403;
    failed.diff = Default::default();
    failed.ip = None;
    failed.user_agent = None;
    failed.request_id = None;
    insta::assert_snapshot!("event_text_failed", format::text_line(&failed));
}

#[test]
fn json_keys_are_the_contract() {
    let value = serde_json::to_value(sample()).unwrap();
    let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
    let mut want = [
        "id",
        "time",
        "actor",
        "organization_id",
        "ip",
        "user_agent",
        "resource_type",
        "resource_id",
        "resource_target",
        "resource_icon",
        "action",
        "diff",
        "status_code",
        "additional_fields",
        "request_id",
    ];
    want.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, want);
    assert_eq!(
        value["actor"],
        json!({"id": alice().id, "username": "alice", "email": "alice@example.com"})
    );
    assert_eq!(value["time"], json!(common::FIXED_TIME));
}

#[test]
fn create_write_delete_take_id_and_target_from_the_right_snapshot() {
    let old = workspace();
    let renamed = Workspace {
        name: "renamed".into(),
        ..old.clone()
    };

    let created = AuditEvent::builder(action::CREATE)
        .resource(None, Some(&old))
        .build();
    assert_eq!(created.resource_type, "workspace");
    assert_eq!(created.resource_icon, "/icon/workspace.svg");
    assert_eq!(created.resource_id, old.id.to_string());
    assert_eq!(created.resource_target, "linux-container");
    assert!(created.diff.contains("name") && created.diff.contains("agent_token"));

    let written = AuditEvent::builder(action::WRITE)
        .resource(Some(&old), Some(&renamed))
        .build();
    assert_eq!(written.resource_target, "renamed", "write: the new name");
    assert_eq!(
        serde_json::to_value(&written.diff).unwrap(),
        json!({"name": {"old": "linux-container", "new": "renamed", "secret": false}})
    );

    let deleted = AuditEvent::builder(action::DELETE)
        .resource(Some(&old), None)
        .build();
    assert_eq!(deleted.resource_target, "linux-container");
    assert_eq!(deleted.resource_id, old.id.to_string());
    // a delete given both snapshots still names the resource as it was
    let deleted = AuditEvent::builder(action::DELETE)
        .resource(Some(&old), Some(&renamed))
        .build();
    assert_eq!(deleted.resource_target, "linux-container");

    let neither = AuditEvent::builder(action::WRITE)
        .resource::<Workspace>(None, None)
        .build();
    assert_eq!(neither.resource_type, Workspace::schema().resource_type);
    assert_eq!(neither.resource_id, "");
    assert!(neither.diff.is_empty());
}

#[test]
fn built_events_get_fresh_time_ordered_ids() {
    let a = AuditEvent::builder("login").build();
    let b = AuditEvent::builder("login").build();
    assert_eq!(a.id.get_version_num(), 7);
    assert!(a.id < b.id && a.time <= b.time);
    assert!((chrono::Utc::now() - a.time).num_seconds().abs() < 5);
    assert_eq!(a.status_code, 200);
}

#[test]
fn descriptions_follow_coder() {
    let e = sample();
    assert_eq!(e.description(), "alice updated workspace linux-container");
    let failed = AuditEvent {
        status_code: 500,
        ..sample()
    };
    assert_eq!(
        failed.description(),
        "alice unsuccessfully attempted to update workspace linux-container"
    );
    let login = AuditEvent::builder(action::LOGIN)
        .actor(alice())
        .resource_type("api_key")
        .build();
    assert_eq!(login.description(), "alice logged in");
    assert_eq!(action::past_tense("frobnicate"), "frobnicated");
}

#[test]
fn failed_events_are_built_without_a_diff() {
    let e = AuditEvent::builder(action::WRITE)
        .resource(
            Some(&workspace()),
            Some(&Workspace {
                ttl: Some(1),
                ..workspace()
            }),
        )
        .status(403)
        .build();
    assert!(e.diff.is_empty());
    assert_eq!(e.resource_target, "linux-container");
}

#[test]
fn over_long_user_agents_are_truncated_and_marked_not_rejected() {
    let long = format!("Mozilla/5.0 {}", "ü".repeat(1000));
    let e = AuditEvent::builder("login")
        .user_agent(long.clone())
        .build();
    let ua = e.user_agent.as_deref().unwrap();
    assert!(ua.ends_with(TRUNCATED_MARK));
    let kept = ua.strip_suffix(TRUNCATED_MARK).unwrap();
    assert!(kept.len() <= MAX_USER_AGENT_LEN && kept.len() >= MAX_USER_AGENT_LEN - 3);
    assert!(long.starts_with(kept));
    // and the renderings carry it
    assert!(format::json_line(&e).contains("[truncated]"));
    assert!(format::text_line(&e).contains("[truncated]"));

    // an event built by hand is normalized too
    let mut raw = e.clone();
    raw.user_agent = Some(long);
    raw.normalize();
    assert_eq!(raw.user_agent, e.user_agent);
}

/// Newlines and control characters anywhere (user agent, target, additional field, diff
/// value) cannot break either line-based output.
#[test]
fn no_value_can_break_a_line() {
    let nasty = "x\ny\r\nz\u{0}\u{1b}[2J\u{2028}\u{85}\"quoted\" \\ end\n2023-06-13 00:00:00.000 [info] audit_log ID=forged";
    let old = Workspace {
        name: nasty.into(),
        ..workspace()
    };
    let new = Workspace {
        name: format!("{nasty}!"),
        ..old.clone()
    };
    let e = AuditEvent::builder(nasty)
        .actor(Actor::new(nasty, nasty, nasty))
        .user_agent(nasty)
        .organization_id(nasty)
        .resource(Some(&old), Some(&new))
        .field(nasty, nasty)
        .field("nested", json!({ "k": nasty }))
        .build();
    assert_eq!(e.resource_target, format!("{nasty}!"));

    let text = format::text_line(&e);
    assert!(
        !text.contains(['\n', '\r', '\u{0}', '\u{1b}', '\u{2028}', '\u{85}']),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains(r#"Action="x\ny"#), "{text}");
    assert!(
        text.contains(r#"UserAgent="x\ny\r\nz\u0000\u001b[2J\u2028\u0085\"quoted\" \\ end\n2023"#)
    );
    let mut buf = String::new();
    format::write_text_line(&e, &mut buf);
    assert_eq!(buf.lines().count(), 1);
    assert!(buf.ends_with('\n'));

    // The description, documented as one line, is one line too.
    let description = e.description();
    assert_eq!(description.lines().count(), 1, "{description}");
    assert!(
        !description.contains(['\n', '\r', '\u{0}', '\u{1b}', '\u{2028}', '\u{85}']),
        "{description:?}"
    );
    assert!(
        description.starts_with(r"x\ny\r\nz\u0000\u001b[2J"),
        "{description}"
    );

    let json = format::json_line(&e);
    assert!(!json.contains(['\n', '\r', '\u{0}', '\u{1b}']), "{json}");
    let back: AuditEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back.user_agent.as_deref(), Some(nasty));
    assert_eq!(back.additional_fields[nasty], json!(nasty));
}

#[test]
fn text_values_are_bare_only_when_safe() {
    let e = AuditEvent::builder(action::START)
        .id_and_time(fixed_id(), fixed_time())
        .actor(Actor::system("autostart"))
        .resource_type("workspace_build")
        .resource_target("my workspace")
        .build();
    let text = format::text_line(&e);
    assert!(
        text.starts_with("2023-06-13 03:43:29.230 [info] audit_log ID=0188b2a4-"),
        "{text}"
    );
    assert!(text.contains(r#" Time="2023-06-13T03:43:29.230422Z" "#));
    assert!(text.contains(" Username=autostart Email=\"\" "));
    assert!(text.contains(" Ip=<nil> UserAgent=<nil> "));
    assert!(text.contains(r#" ResourceTarget="my workspace" "#));
    assert!(text.contains(r#" Diff="{}" StatusCode=200 AdditionalFields="{}" "#));
}

#[test]
fn a_request_context_fills_the_request_fields() {
    let ctx = audit_core::RequestContext::new(alice())
        .ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .user_agent("curl/8")
        .request_id(Uuid::from_u128(1))
        .organization_id("org");
    let e = AuditEvent::builder(action::LOGIN).context(ctx).build();
    assert_eq!(e.actor, alice());
    assert_eq!(e.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(e.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(e.request_id, Some(Uuid::from_u128(1)));
    assert_eq!(e.organization_id.as_deref(), Some("org"));
}
