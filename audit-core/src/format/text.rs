//! The human-readable text line of an event (see [`Text`]).

use std::fmt::{self, Display, Write as _};

use super::Json;
use super::escape::write_escaped;
use crate::AuditEvent;

/// The event as one human-readable line, without the trailing newline.
pub fn text_line(event: &AuditEvent) -> String {
    Text::new(event).to_string()
}

/// Appends the event as one human-readable line and a `\n` to `out`.
pub fn write_text_line(event: &AuditEvent, out: &mut String) {
    // Writing to a String never fails.
    let _ = writeln!(out, "{}", Text::new(event));
}

/// The human-readable text line of an event, in the style of Coder's service logs:
///
/// ```text
/// 2023-06-13 03:43:29.233 [info] audit_log ID=0188b2a4-… Time="2023-06-13T03:43:29.230422Z" UserID=u-1 Username=alice … Action=start Diff="{}" StatusCode=200 …
/// ```
///
/// The level is `[info]`, or `[warn]` for a failed action (status ≥ 400). A value is written
/// bare when it is made only of ASCII letters, digits and `-_./@+`; otherwise it is quoted,
/// with `"` and `\` backslash-escaped and every unsafe character escaped by the
/// [terminal-safe rule](super::terminal_safe), so no value can end the line, forge a second entry, or
/// hide text. A missing value is `<nil>`; the diff and additional fields are compact JSON,
/// quoted.
///
/// ```
/// let event = audit_core::AuditEvent::builder("login").build();
/// let line = audit_core::format::Text::new(&event).to_string();
/// assert!(line.contains(" Action=login "));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Text<'a>(&'a AuditEvent);

impl<'a> Text<'a> {
    /// Displays `event`.
    pub fn new(event: &'a AuditEvent) -> Self {
        Text(event)
    }
}

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

/// Writes `s` as a text-line value: bare if every character is safe, else quoted.
///
/// ```
/// let mut out = String::new();
/// audit_core::format::write_str_value(&mut out, "a b\"c\u{2028}").unwrap();
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
    write_escaped(out, s, |c| match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        _ => None,
    })?;
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::escape::is_unsafe;

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
        assert!(out.chars().all(|c| !is_unsafe(c)));
    }
}
