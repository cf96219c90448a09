//! An entry's changes as table rows: field, previous value, new value.
//!
//! Rows are read from the diff's JSON form — the form every store and export keeps — so the
//! viewer shows what the log holds and nothing else: `{"old": …, "new": …, "secret": false}`
//! for a tracked field (a side that did not exist is absent), `{"secret": true}` for a secret
//! one, optionally with keyed fingerprints of its values,
//! `{"secret": true, "fingerprint": {"old": "hmac-sha256:k1:…", "new": "…"}}`, and
//! `{"secret": false, "error": "…"}` for a value that could not be recorded. A secret row
//! never carries a value: only "secret changed" and, when present, short fingerprints, which
//! tell an auditor whether a secret went back to an earlier value without telling what it is.

use serde_json::Value;

/// The longest value shown in full; longer ones are cut (the export has them whole).
pub(crate) const MAX_VALUE_CHARS: usize = 2_000;

/// Characters of a fingerprint's digest shown in the table (the whole one is in its tooltip).
const FINGERPRINT_DIGITS: usize = 12;

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangeRow {
    /// The field's audit name.
    pub field: String,
    /// What kind of change it is.
    pub kind: ChangeKind,
}

/// How a field changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// A tracked field: each side as JSON text, `None` where the side did not exist (the
    /// previous value of a created resource, the new value of a deleted one).
    Tracked {
        old: Option<String>,
        new: Option<String>,
    },
    /// A secret field changed; fingerprints of its sides, if the log has them.
    Secret {
        old: Option<Fingerprint>,
        new: Option<Fingerprint>,
    },
    /// The value could not be recorded; why.
    Unrecorded(String),
}

/// A secret value's keyed fingerprint: a short form to compare at a glance, and the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// `k1:P9oMGy1OqX3c` — the key id and the first characters of the digest.
    pub short: String,
    /// The fingerprint as recorded.
    pub full: String,
}

/// The rows of a diff's JSON (an object of field → change), in the diff's order.
pub(crate) fn rows(diff: &Value) -> Vec<ChangeRow> {
    let Some(fields) = diff.as_object() else {
        return Vec::new();
    };
    fields
        .iter()
        .map(|(field, change)| ChangeRow {
            field: field.clone(),
            kind: kind(change),
        })
        .collect()
}

fn kind(change: &Value) -> ChangeKind {
    if change.get("secret").and_then(Value::as_bool) == Some(true) {
        let fingerprint = change.get("fingerprint");
        let side = |name: &str| {
            fingerprint
                .and_then(|f| f.get(name))
                .and_then(Value::as_str)
                .map(fingerprint_of)
        };
        return ChangeKind::Secret {
            old: side("old"),
            new: side("new"),
        };
    }
    if let Some(error) = change.get("error").and_then(Value::as_str) {
        return ChangeKind::Unrecorded(cut(error));
    }
    ChangeKind::Tracked {
        old: change.get("old").map(json_text),
        new: change.get("new").map(json_text),
    }
}

/// A fingerprint such as `hmac-sha256:k1:<43 base64url characters>` (see
/// `audit_core::fingerprint`), shortened to `k1:<12 characters>`.
/// Anything else is shown cut to the same length.
fn fingerprint_of(full: &str) -> Fingerprint {
    let mut parts = full.rsplitn(3, ':');
    let digest = parts.next().unwrap_or("");
    let key = parts.next();
    let short = match key {
        Some(key) if !key.is_empty() => format!("{}:{}", key, prefix(digest, FINGERPRINT_DIGITS)),
        _ => prefix(full, FINGERPRINT_DIGITS).to_owned(),
    };
    Fingerprint {
        short,
        full: cut(full),
    }
}

/// A value as JSON text: strings quoted (so `""`, `"null"` and `null` differ), the rest
/// compact; cut to [`MAX_VALUE_CHARS`].
pub(crate) fn json_text(value: &Value) -> String {
    cut(&value.to_string())
}

/// A value as plain text: strings without quotes, the rest as JSON; cut to
/// [`MAX_VALUE_CHARS`]. For additional fields, where the key says what the value is.
pub(crate) fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => cut(s),
        other => json_text(other),
    }
}

/// `text` cut to [`MAX_VALUE_CHARS`] characters, saying how much was left out.
pub(crate) fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_VALUE_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => {
            let left = text[end..].chars().count();
            format!("{}… ({left} more characters)", &text[..end])
        }
    }
}

fn prefix(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tracked_fields_show_both_sides_as_json() {
        let diff = json!({
            "name": {"old": "dev", "new": "prod", "secret": false},
            "ttl": {"old": null, "new": 3600, "secret": false},
            "tags": {"new": ["a", "b"], "secret": false},
        });
        assert_eq!(
            rows(&diff),
            [
                ChangeRow {
                    field: "name".into(),
                    kind: ChangeKind::Tracked {
                        old: Some("\"dev\"".into()),
                        new: Some("\"prod\"".into())
                    }
                },
                ChangeRow {
                    field: "tags".into(),
                    kind: ChangeKind::Tracked {
                        old: None,
                        new: Some("[\"a\",\"b\"]".into())
                    }
                },
                ChangeRow {
                    field: "ttl".into(),
                    kind: ChangeKind::Tracked {
                        old: Some("null".into()),
                        new: Some("3600".into())
                    }
                },
            ]
        );
    }

    #[test]
    fn secrets_show_no_value_and_fingerprints_when_present() {
        let plain = rows(&json!({"token": {"secret": true}}));
        assert_eq!(
            plain[0].kind,
            ChangeKind::Secret {
                old: None,
                new: None
            }
        );
        let old = format!("hmac-sha256:k1:{}", "ab".repeat(32));
        let new = format!("hmac-sha256:k1:{}", "cd".repeat(32));
        let fingerprinted =
            rows(&json!({"token": {"secret": true, "fingerprint": {"old": old, "new": new}}}));
        let ChangeKind::Secret {
            old: Some(o),
            new: Some(n),
        } = &fingerprinted[0].kind
        else {
            panic!("{fingerprinted:?}");
        };
        assert_eq!(o.short, "k1:abababababab");
        assert_eq!(n.short, "k1:cdcdcdcdcdcd");
        assert_eq!(o.full, old);
        // A create has only the new side.
        let created = rows(&json!({"token": {"secret": true, "fingerprint": {"new": new}}}));
        assert!(matches!(
            &created[0].kind,
            ChangeKind::Secret {
                old: None,
                new: Some(_)
            }
        ));
    }

    #[test]
    fn unrecorded_values_and_odd_shapes() {
        let r = rows(&json!({"blob": {"secret": false, "error": "key must be a string"}}));
        assert_eq!(
            r[0].kind,
            ChangeKind::Unrecorded("key must be a string".into())
        );
        assert!(rows(&json!(null)).is_empty());
        assert!(rows(&json!([1, 2])).is_empty());
    }

    #[test]
    fn long_values_are_cut_and_say_so() {
        let long = "x".repeat(MAX_VALUE_CHARS + 5);
        let text = plain_text(&json!(long));
        assert!(text.ends_with("… (5 more characters)"), "{text}");
        assert_eq!(cut("short"), "short");
        assert_eq!(plain_text(&json!("a<b")), "a<b");
        assert_eq!(json_text(&json!("a<b")), "\"a<b\"");
    }
}
