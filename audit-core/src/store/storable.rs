//! Makes every string of an event storable in every store, the same way.
//!
//! Postgres refuses U+0000 (NUL) in `text` and `jsonb`, and a single NUL used to fail a
//! whole batch. Before storing, both stores replace each NUL with U+FFFD (the replacement
//! character) in every string of the event: the text fields, the diff's field names and
//! values, the additional fields' keys and values, at any depth. An event read back from
//! either store is therefore the same.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use audit_core::AuditEvent;
//! use audit_core::store::{Store, PageRequest, sqlite::SqliteStore};
//!
//! let mut store = SqliteStore::in_memory().unwrap();
//! store.append(&[AuditEvent::builder("login").resource_target("a\0b").build()]).unwrap();
//! let page = store.page(&Default::default(), &PageRequest::first(1)).unwrap();
//! assert_eq!(page.events[0].resource_target, "a\u{FFFD}b");
//! # }
//! ```

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::{AuditEvent, Change, Diff};

/// What NUL becomes.
pub(crate) const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `event` with every NUL replaced; borrowed (no copy) when it has none.
pub(crate) fn storable(event: &AuditEvent) -> Cow<'_, AuditEvent> {
    if !has_nul(event) {
        return Cow::Borrowed(event);
    }
    let mut e = event.clone();
    for s in [
        &mut e.actor.id,
        &mut e.actor.username,
        &mut e.actor.email,
        &mut e.resource_type,
        &mut e.resource_id,
        &mut e.resource_target,
        &mut e.resource_icon,
        &mut e.action,
    ] {
        replace_in(s);
    }
    for s in [&mut e.organization_id, &mut e.user_agent]
        .into_iter()
        .flatten()
    {
        replace_in(s);
    }
    e.additional_fields = storable_map(std::mem::take(&mut e.additional_fields));
    if diff_has_nul(&e.diff) {
        e.diff = storable_diff(&e.diff);
    }
    Cow::Owned(e)
}

/// `text` with every NUL replaced, for filter values (so a query finds what was stored).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn storable_str(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', &NUL_REPLACEMENT.to_string()))
    } else {
        Cow::Borrowed(text)
    }
}

fn replace_in(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', &NUL_REPLACEMENT.to_string());
    }
}

fn has_nul(e: &AuditEvent) -> bool {
    let strings = [
        e.actor.id.as_str(),
        &e.actor.username,
        &e.actor.email,
        &e.resource_type,
        &e.resource_id,
        &e.resource_target,
        &e.resource_icon,
        &e.action,
        e.organization_id.as_deref().unwrap_or(""),
        e.user_agent.as_deref().unwrap_or(""),
    ];
    strings.iter().any(|s| s.contains('\0'))
        || e.additional_fields
            .iter()
            .any(|(k, v)| k.contains('\0') || value_has_nul(v))
        || diff_has_nul(&e.diff)
}

fn diff_has_nul(diff: &Diff) -> bool {
    diff.iter().any(|(name, change)| {
        name.contains('\0')
            || match change {
                Change::Tracked { old, new } => [old, new].into_iter().flatten().any(value_has_nul),
                Change::Secret => false,
                Change::FingerprintedSecret { old, new } => {
                    [old, new].into_iter().flatten().any(|f| f.contains('\0'))
                }
                Change::Unserializable { error } => error.contains('\0'),
            }
    })
}

fn value_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(value_has_nul),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn storable_value(v: Value) -> Value {
    match v {
        Value::String(mut s) => {
            replace_in(&mut s);
            Value::String(s)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(storable_value).collect()),
        Value::Object(map) => Value::Object(storable_map(map)),
        other => other,
    }
}

fn storable_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(mut k, v)| {
            replace_in(&mut k);
            (k, storable_value(v))
        })
        .collect()
}

/// The diff rebuilt through its JSON form (its entries are private to the diff module),
/// which the same replacement applies to.
fn storable_diff(diff: &Diff) -> Diff {
    let json = serde_json::to_value(diff).unwrap_or_default();
    serde_json::from_value(storable_value(json)).unwrap_or_else(|_| diff.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_string_loses_its_nul_and_nothing_else_changes() {
        let mut diff_json = json!({"na\u{0}me": {"old": "a\u{0}", "new": ["x", {"k\u{0}": "v\u{0}"}], "secret": false}});
        let diff: Diff = serde_json::from_value(diff_json.take()).unwrap();
        let mut e = AuditEvent::builder("wr\0ite")
            .resource_type("work\0space")
            .resource_target("t\0")
            .build();
        e.actor.username = "\0alice".into();
        e.user_agent = Some("ua\0".into());
        e.additional_fields
            .insert("k\0".into(), json!({"n\0": ["\0", 1, true, null]}));
        e.diff = diff;
        let stored = storable(&e).into_owned();
        let text = serde_json::to_string(&stored).unwrap();
        assert!(!text.contains("\\u0000"), "{text}");
        assert_eq!(stored.action, "wr\u{FFFD}ite");
        assert_eq!(stored.actor.username, "\u{FFFD}alice");
        assert_eq!(stored.user_agent.as_deref(), Some("ua\u{FFFD}"));
        assert_eq!(
            stored.additional_fields["k\u{FFFD}"],
            json!({"n\u{FFFD}": ["\u{FFFD}", 1, true, null]})
        );
        assert_eq!(
            serde_json::to_value(&stored.diff).unwrap(),
            json!({"na\u{FFFD}me": {"old": "a\u{FFFD}", "new": ["x", {"k\u{FFFD}": "v\u{FFFD}"}], "secret": false}})
        );
        assert_eq!((stored.id, stored.time), (e.id, e.time));
    }

    #[test]
    fn events_without_nul_are_borrowed() {
        let e = AuditEvent::builder("login")
            .resource_target("plain")
            .build();
        assert!(matches!(storable(&e), Cow::Borrowed(_)));
        assert_eq!(storable_str("a\0b"), "a\u{FFFD}b");
    }
}
