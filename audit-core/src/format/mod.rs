//! Every output format of an [`AuditEvent`], each written in one place: backends, exports,
//! the CLI and servers call these instead of formatting events themselves.
//!
//! * [`json_line`] / [`write_json_line`]: the event's JSON object (the contract's snake_case
//!   keys) on one line. JSON escaping keeps any newline or control character inside a value
//!   from breaking the line.
//! * [`text_line`] / [`write_text_line`] / [`Text`]: a `key=value` line in the style of Coder's
//!   human-readable service logs.
//! * [`CsvWriter`]: CSV rows for spreadsheets, with formula defusing ([`defuse_formula`]) and
//!   an optional byte order mark.
//! * [`diff_summary`]: a diff as one readable phrase, used by the CSV `changes` column and the
//!   CLI.
//! * [`terminal_safe`]: the one escaping rule for text shown on a terminal or in a line-based
//!   log (control, line-separator, bidirectional and invisible characters).
//!
//! ```
//! use audit_core::{AuditEvent, format};
//!
//! let event = AuditEvent::builder("login").user_agent("evil\nfake entry").build();
//! let text = format::text_line(&event);
//! assert_eq!(text.lines().count(), 1);
//! assert!(text.contains(r#"UserAgent="evil\nfake entry""#));
//!
//! let json = format::json_line(&event);
//! assert_eq!(json.lines().count(), 1);
//! assert!(json.contains(r#""user_agent":"evil\nfake entry""#));
//! ```

mod csv;
mod escape;
mod text;

use std::fmt::{self, Display};

pub use self::csv::{CSV_COLUMNS, CsvWriter, defuse_formula};
pub use self::escape::{is_unsafe, terminal_safe, write_terminal_safe};
pub use self::text::{Text, text_line, write_str_value, write_text_line};
use crate::{AuditEvent, Change, Diff};

/// Written instead of an event that cannot be serialized. Unreachable for `AuditEvent`
/// (string keys, finite values), but a line is never lost.
const UNSERIALIZABLE: &str = r#"{"error":"unserializable audit event"}"#;

/// The event as one line of JSON, without the trailing newline.
pub fn json_line(event: &AuditEvent) -> String {
    serde_json::to_string(event).unwrap_or_else(|_| UNSERIALIZABLE.to_owned())
}

/// Appends the event (an [`AuditEvent`], or a [`StoredEvent`](crate::store::StoredEvent)
/// with its position and chain hash) as one line of JSON and a `\n` to `out`.
pub fn write_json_line<E: serde::Serialize + ?Sized>(event: &E, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, event).is_err() {
        out.truncate(start);
        out.extend_from_slice(UNSERIALIZABLE.as_bytes());
    }
    out.push(b'\n');
}

/// A diff as one phrase, fields in name order:
/// `name: "dev" → "prod"; ttl: (none) → 3600; agent_token: changed (secret)`.
///
/// Values are compact JSON; a side that does not exist (old on create, new on delete) is
/// `(none)`. The phrase may hold any character a value holds: pass it through
/// [`terminal_safe`] before showing it on a terminal.
///
/// ```
/// let diff: audit_core::Diff = serde_json::from_str(
///     r#"{"name":{"old":"dev","new":"prod","secret":false},"token":{"secret":true}}"#,
/// ).unwrap();
/// assert_eq!(audit_core::format::diff_summary(&diff), r#"name: "dev" → "prod"; token: changed (secret)"#);
/// ```
pub fn diff_summary(diff: &Diff) -> String {
    let value = |v: &Option<serde_json::Value>| match v {
        Some(v) => v.to_string(),
        None => "(none)".to_owned(),
    };
    diff.iter()
        .map(|(name, change)| match change {
            Change::Tracked { old, new } => format!("{name}: {} → {}", value(old), value(new)),
            Change::Secret => format!("{name}: changed (secret)"),
            Change::FingerprintedSecret { .. } => {
                format!("{name}: changed (secret, fingerprinted)")
            }
            Change::Unserializable { error } => {
                format!("{name}: changed (unserializable: {error})")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Displays a value as compact JSON.
pub(crate) struct Json<'a, T>(pub(crate) &'a T);

impl<T: serde::Serialize> Display for Json<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}
