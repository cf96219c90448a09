//! The canonical bytes of a stored event: what the hash chain hashes.
//!
//! Every stored field of the event and its log position go in, in one fixed order, each with
//! its length or a presence byte, so any change to any field (or to the position) changes the
//! bytes, and no two different events share them. An event read back from SQLite or from
//! Postgres gives the bytes it was hashed with: times count microseconds (what both stores
//! keep), and the JSON parts (`diff` values, `additional_fields`) use the
//! [canonical value encoding](super::value), which ignores key order and number form.
//!
//! # Format, version 1
//!
//! ```text
//! "audit-event-v1" 0x00          the format tag (15 bytes)
//! seq                u64         the log position
//! id                 16 bytes    the UUID
//! time               i64         microseconds since 1970-01-01T00:00:00Z
//! actor.id           str
//! actor.username     str
//! actor.email        str
//! organization_id    opt str
//! ip                 0x00 | 0x04 4 bytes | 0x06 16 bytes
//! user_agent         opt str
//! resource_type      str
//! resource_id        str
//! resource_target    str
//! resource_icon      str
//! action             str
//! diff               u64 count, then per changed field in name order:
//!                      str name, then
//!                      'T' opt value(old) opt value(new)     a tracked change
//!                      'S'                                   a secret change
//!                      'F' opt str(old) opt str(new)         a fingerprinted secret change
//!                      'U' str error                         an unserializable change
//! status_code        u16
//! additional_fields  value (an object)
//! request_id         0x00 | 0x01 16 bytes
//!
//! str   = u64 byte length ‖ UTF-8 bytes
//! opt x = 0x00 (absent) | 0x01 ‖ x
//! value = the canonical value encoding
//! integers are big-endian
//! ```
//!
//! ```
//! use audit_core::{action, AuditEvent};
//! use audit_core::canonical::event::canonical_bytes;
//!
//! let event = AuditEvent::builder(action::LOGIN).resource_type("api_key").build();
//! let bytes = canonical_bytes(1, &event);
//! assert!(bytes.starts_with(b"audit-event-v1\0"));
//! assert_ne!(bytes, canonical_bytes(2, &event)); // the position is part of it
//! ```

use std::net::IpAddr;

use serde_json::Value;

use super::value::encode_json;
use crate::{AuditEvent, Change};

/// The tag every version-1 encoding starts with.
pub const FORMAT_TAG: &[u8; 15] = b"audit-event-v1\0";

/// The canonical bytes of the event stored at position `seq`.
pub fn canonical_bytes(seq: u64, event: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_canonical(seq, event, &mut out);
    out
}

/// Appends the canonical bytes of the event stored at position `seq` to `out` (to reuse one
/// buffer across many events).
pub fn write_canonical(seq: u64, event: &AuditEvent, out: &mut Vec<u8>) {
    out.extend_from_slice(FORMAT_TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(event.id.as_bytes());
    out.extend_from_slice(&event.time.timestamp_micros().to_be_bytes());
    put_str(out, &event.actor.id);
    put_str(out, &event.actor.username);
    put_str(out, &event.actor.email);
    put_opt_str(out, event.organization_id.as_deref());
    match event.ip {
        None => out.push(0),
        Some(IpAddr::V4(ip)) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    put_opt_str(out, event.user_agent.as_deref());
    put_str(out, &event.resource_type);
    put_str(out, &event.resource_id);
    put_str(out, &event.resource_target);
    put_str(out, &event.resource_icon);
    put_str(out, &event.action);
    out.extend_from_slice(&(event.diff.len() as u64).to_be_bytes());
    for (name, change) in event.diff.iter() {
        put_str(out, name);
        match change {
            Change::Tracked { old, new } => {
                out.push(b'T');
                put_opt_value(out, old.as_ref());
                put_opt_value(out, new.as_ref());
            }
            Change::Secret => out.push(b'S'),
            Change::FingerprintedSecret { old, new } => {
                out.push(b'F');
                put_opt_str(out, old.as_deref());
                put_opt_str(out, new.as_deref());
            }
            Change::Unserializable { error } => {
                out.push(b'U');
                put_str(out, error);
            }
        }
    }
    out.extend_from_slice(&event.status_code.to_be_bytes());
    encode_json(&event.additional_fields, out);
    match event.request_id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_opt_value(out: &mut Vec<u8>, value: Option<&Value>) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            encode_json(value, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, Diff};
    use serde_json::json;
    use uuid::Uuid;

    fn event() -> AuditEvent {
        AuditEvent::builder("write")
            .id_and_time(
                Uuid::from_u128(0x0188b2a4_7d6e_7c2a_9f4b_3a1d2e5f6a7b),
                "2023-06-13T03:43:29.230422Z".parse().unwrap(),
            )
            .actor(Actor::new("u-1", "alice", "alice@example.com"))
            .organization_id("org")
            .ip("10.0.0.1".parse().unwrap())
            .user_agent("curl/8")
            .resource_type("workspace")
            .resource_id("ws-1")
            .resource_target("dev")
            .resource_icon("/icon.svg")
            .diff(
                serde_json::from_value::<Diff>(json!({
                    "name": {"old": "a", "new": "b", "secret": false},
                    "token": {"secret": true},
                    "odd": {"secret": false, "error": "cannot serialize"},
                }))
                .unwrap(),
            )
            .field("build_reason", "autostart")
            .request_id(Uuid::from_u128(7))
            .build()
    }

    /// Every field, changed alone, changes the bytes.
    #[test]
    fn every_field_counts() {
        let base = event();
        let b = canonical_bytes(5, &base);
        let mut variants: Vec<(&str, AuditEvent)> = Vec::new();
        let mut v = |name, f: &dyn Fn(&mut AuditEvent)| {
            let mut e = base.clone();
            f(&mut e);
            variants.push((name, e));
        };
        v("id", &|e| e.id = Uuid::from_u128(1));
        v("time", &|e| e.time += chrono::Duration::microseconds(1));
        v("actor.id", &|e| e.actor.id.push('x'));
        v("actor.username", &|e| e.actor.username = "Alice".into());
        v("actor.email", &|e| e.actor.email.clear());
        v("organization_id", &|e| e.organization_id = None);
        v("organization_id empty", &|e| {
            e.organization_id = Some(String::new())
        });
        v("ip", &|e| e.ip = Some("10.0.0.2".parse().unwrap()));
        v("ip none", &|e| e.ip = None);
        v("ip v6", &|e| {
            e.ip = Some("::ffff:10.0.0.1".parse().unwrap())
        });
        v("user_agent", &|e| e.user_agent = None);
        v("resource_type", &|e| e.resource_type = "workspaces".into());
        v("resource_id", &|e| e.resource_id = "ws-2".into());
        v("resource_target", &|e| e.resource_target = "de".into());
        v("resource_icon", &|e| e.resource_icon.clear());
        v("action", &|e| e.action = "delete".into());
        v("diff", &|e| e.diff = Diff::default());
        v("diff value", &|e| {
            e.diff = serde_json::from_value(json!({
                "name": {"old": "a", "new": "c", "secret": false},
                "token": {"secret": true},
                "odd": {"secret": false, "error": "cannot serialize"},
            }))
            .unwrap()
        });
        v("diff side", &|e| {
            e.diff = serde_json::from_value(json!({
                "name": {"old": "a", "secret": false},
                "token": {"secret": true},
                "odd": {"secret": false, "error": "cannot serialize"},
            }))
            .unwrap()
        });
        v("status_code", &|e| e.status_code = 201);
        v("additional_fields", &|e| {
            e.additional_fields.insert("x".into(), json!(1));
        });
        v("request_id", &|e| e.request_id = None);
        for (name, e) in &variants {
            assert_ne!(canonical_bytes(5, e), b, "{name}");
        }
        assert_ne!(canonical_bytes(6, &base), b, "seq");
    }

    /// Moving text from one field to the next never gives the same bytes.
    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = event();
        a.resource_id = "ab".into();
        a.resource_target = "c".into();
        let mut b = event();
        b.resource_id = "a".into();
        b.resource_target = "bc".into();
        assert_ne!(canonical_bytes(1, &a), canonical_bytes(1, &b));
        let mut c = event();
        c.organization_id = None;
        c.user_agent = Some(String::new());
        let mut d = event();
        d.organization_id = Some(String::new());
        d.user_agent = None;
        assert_ne!(canonical_bytes(1, &c), canonical_bytes(1, &d));
    }

    #[test]
    fn the_json_read_back_gives_the_same_bytes() {
        let e = event();
        let text = serde_json::to_string(&e).unwrap();
        let back: AuditEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_bytes(9, &back), canonical_bytes(9, &e));
    }

    #[test]
    fn version_one_is_fixed() {
        // A change to these bytes is a change of the stored format: it needs a new tag.
        let bytes = canonical_bytes(42, &event());
        insta::assert_snapshot!("event_v1", bytes.escape_ascii().to_string());
    }
}
