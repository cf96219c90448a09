//! How the CLI shows events: the canonical JSON line, or one readable line for a terminal,
//! every name made terminal-safe.

use std::io::{self, Write};

use audit_core::AuditEvent;
use audit_core::format::{diff_summary, terminal_safe, write_json_line};

/// Writes one event: a JSON line, or a readable line.
pub(crate) fn print_event(out: &mut impl Write, e: &AuditEvent, json: bool) -> io::Result<()> {
    if json {
        let mut line = Vec::with_capacity(512);
        write_json_line(e, &mut line);
        return out.write_all(&line);
    }
    let changes = diff_summary(&e.diff);
    writeln!(
        out,
        "{}  {:<12} {:<8} {:<16} {:<20} {}{}{}",
        e.time.format("%Y-%m-%d %H:%M:%S%.3f"),
        terminal_safe(&e.actor.username),
        terminal_safe(&e.action),
        terminal_safe(&e.resource_type),
        terminal_safe(&e.resource_target),
        e.status_code,
        if changes.is_empty() { "" } else { "  " },
        terminal_safe(&changes),
    )
}

/// `1.5 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_lines_escape_every_unsafe_character() {
        let nasty = "a\nb\u{2028}c\u{2029}d\u{202e}e\u{200b}f\u{1b}[2Jg\u{2066}h";
        let e = AuditEvent::builder(nasty)
            .actor(audit_core::Actor::new("1", nasty, ""))
            .resource_type(nasty)
            .resource_target(nasty)
            .diff(
                serde_json::from_value(serde_json::json!({
                    "name": {"old": nasty, "new": "x", "secret": false},
                    "token": {"secret": true}
                }))
                .unwrap(),
            )
            .build();
        let mut out = Vec::new();
        print_event(&mut out, &e, false).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            !line.trim_end().chars().any(audit_core::format::is_unsafe),
            "{line:?}"
        );
        assert!(
            line.contains(r"a\nb\u2028c\u2029d\u202ee\u200bf\u001b[2Jg\u2066h"),
            "{line}"
        );
        assert!(line.contains("token: changed (secret)"), "{line}");
    }

    #[test]
    fn json_lines_are_the_canonical_line() {
        let e = AuditEvent::builder("login").build();
        let mut out = Vec::new();
        print_event(&mut out, &e, true).unwrap();
        assert_eq!(
            out,
            format!("{}\n", audit_core::format::json_line(&e)).into_bytes()
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
