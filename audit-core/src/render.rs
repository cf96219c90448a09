//! The two line renderings of an [`AuditEvent`]: canonical JSON and human-readable text.
//!
//! * [`json_line`]: the event's JSON object (the contract's snake_case keys) on one line.
//!   JSON escaping keeps any newline or control character inside a value from breaking the
//!   line.
//! * [`text_line`]: a `key=value` line in the style of Coder's human-readable service logs:
//!
//! ```text
//! 2023-06-13 03:43:29.233 [info] audit_log ID=0188b2a4-… Time="2023-06-13T03:43:29.230422Z" UserID=u-1 Username=alice … Action=start Diff="{}" StatusCode=200 …
//! ```
//!
//!   The level is `[info]`, or `[warn]` for a failed action (status ≥ 400). A value is
//!   written bare when it is made only of ASCII letters, digits and `-_./@+`; otherwise it is
//!   quoted, with `"` and `\` backslash-escaped and every control, line-separator,
//!   bidirectional-override and zero-width character escaped (`\n`, `\r`, `\t`, `\u2028`, …),
//!   so no value can end the line, forge a second entry, or hide text. A missing value is
//!   `<nil>`; the diff and additional fields are compact JSON, quoted.
//!
//! ```
//! use audit_core::{AuditEvent, render};
//!
//! let event = AuditEvent::builder("login").user_agent("evil\nfake entry").build();
//! let text = render::text_line(&event);
//! assert_eq!(text.lines().count(), 1);
//! assert!(text.contains(r#"UserAgent="evil\nfake entry""#));
//!
//! let json = render::json_line(&event);
//! assert_eq!(json.lines().count(), 1);
//! assert!(json.contains(r#""user_agent":"evil\nfake entry""#));
//! ```

use std::fmt::{self, Display, Write as _};

use crate::AuditEvent;

/// The event as one line of JSON, without the trailing newline.
pub fn json_line(event: &AuditEvent) -> String {
    serde_json::to_string(event)
        .unwrap_or_else(|_| r#"{"error":"unserializable audit event"}"#.to_owned())
}

/// Appends the event as one line of JSON and a `\n` to `out`.
pub fn write_json_line(event: &AuditEvent, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, event).is_err() {
        // Unreachable for `AuditEvent` (string keys, finite values), but never lose the line.
        out.truncate(start);
        out.extend_from_slice(br#"{"error":"unserializable audit event"}"#);
    }
    out.push(b'\n');
}

/// The event as one human-readable line, without the trailing newline.
pub fn text_line(event: &AuditEvent) -> String {
    Text(event).to_string()
}

/// Appends the event as one human-readable line and a `\n` to `out`.
pub fn write_text_line(event: &AuditEvent, out: &mut String) {
    // Writing to a String never fails.
    let _ = writeln!(out, "{}", Text(event));
}

/// Displays an event as one human-readable line (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct Text<'a>(pub &'a AuditEvent);

impl Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        let level = if e.is_failure() { "warn" } else { "info" };
        write!(
            f,
            "{} [{level}] audit_log",
            e.time.format("%Y-%m-%d %H:%M:%S%.3f")
        )?;
        kv(f, "ID", &e.id)?;
        kv(
            f,
            "Time",
            &e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )?;
        kv_str(f, "UserID", &e.actor.id)?;
        kv_str(f, "Username", &e.actor.username)?;
        kv_str(f, "Email", &e.actor.email)?;
        kv_opt(f, "OrganizationID", e.organization_id.as_ref())?;
        kv_opt(f, "Ip", e.ip.as_ref())?;
        kv_opt(f, "UserAgent", e.user_agent.as_ref())?;
        kv_str(f, "ResourceType", &e.resource_type)?;
        kv_str(f, "ResourceID", &e.resource_id)?;
        kv_str(f, "ResourceTarget", &e.resource_target)?;
        kv_str(f, "Action", &e.action)?;
        kv(f, "Diff", &Json(&e.diff))?;
        kv(f, "StatusCode", &e.status_code)?;
        kv(f, "AdditionalFields", &Json(&e.additional_fields))?;
        kv_opt(f, "RequestID", e.request_id.as_ref())?;
        kv_str(f, "ResourceIcon", &e.resource_icon)
    }
}

/// Displays a value as compact JSON.
pub(crate) struct Json<'a, T>(pub(crate) &'a T);

impl<T: serde::Serialize> Display for Json<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

fn kv_str(f: &mut fmt::Formatter<'_>, key: &str, value: &str) -> fmt::Result {
    write!(f, " {key}=")?;
    write_str_value(f, value)
}

fn kv(f: &mut fmt::Formatter<'_>, key: &str, value: &dyn Display) -> fmt::Result {
    write!(f, " {key}=")?;
    write_value(f, value)
}

fn kv_opt<T: Display>(f: &mut fmt::Formatter<'_>, key: &str, value: Option<&T>) -> fmt::Result {
    match value {
        Some(v) => kv(f, key, v),
        None => write!(f, " {key}=<nil>"),
    }
}

/// Writes `value` bare if it is safe, else quoted and escaped. Formats into a small buffer
/// first to decide; most values (ids, numbers, names) are short.
fn write_value(f: &mut fmt::Formatter<'_>, value: &dyn Display) -> fmt::Result {
    let mut buf = String::new();
    write!(buf, "{value}")?;
    write_str_value(f, &buf)
}

/// Writes `s` as a text-form value: bare if every character is safe, else quoted.
///
/// ```
/// let mut out = String::new();
/// audit_core::render::write_str_value(&mut out, "a b\"c\u{2028}").unwrap();
/// assert_eq!(out, r#""a b\"c\u2028""#);
/// ```
pub fn write_str_value(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./@+".contains(&b));
    if bare {
        return out.write_str(s);
    }
    out.write_char('"')?;
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        if escape.is_none() && !needs_escape(c) {
            continue;
        }
        out.write_str(&s[run..i])?;
        run = i + c.len_utf8();
        match escape {
            Some(e) => out.write_str(e)?,
            None if u32::from(c) <= 0xFFFF => write!(out, "\\u{:04x}", u32::from(c))?,
            None => write!(out, "\\U{:08x}", u32::from(c))?,
        }
    }
    out.write_str(&s[run..])?;
    out.write_char('"')
}

/// Characters that could break or disguise a line: controls (C0, DEL, C1), line and
/// paragraph separators, bidirectional controls, zero-width characters and the BOM.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> String {
        let mut out = String::new();
        write_str_value(&mut out, s).unwrap();
        out
    }

    #[test]
    fn safe_values_are_bare_others_quoted() {
        assert_eq!(value("alice"), "alice");
        assert_eq!(value("a@example.com"), "a@example.com");
        assert_eq!(value("10.0.0.1"), "10.0.0.1");
        assert_eq!(value(""), r#""""#);
        assert_eq!(value("my workspace"), r#""my workspace""#);
        assert_eq!(value("::1"), r#""::1""#);
        assert_eq!(value("café"), r#""café""#);
        assert_eq!(value(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn every_line_breaking_or_hiding_character_is_escaped() {
        let nasty =
            "a\nb\rc\td\u{0}e\u{1b}[31mf\u{7f}g\u{85}h\u{2028}i\u{2029}j\u{202e}k\u{200b}l\u{feff}";
        let out = value(nasty);
        assert_eq!(
            out,
            r#""a\nb\rc\td\u0000e\u001b[31mf\u007fg\u0085h\u2028i\u2029j\u202ek\u200bl\ufeff""#
        );
        assert!(out.chars().all(|c| !c.is_control() && !needs_escape(c)));
    }
}
