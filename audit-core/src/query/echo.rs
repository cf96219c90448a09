//! Quoting user input back in error messages so that it cannot disturb a terminal.
//!
//! A query error repeats what the user typed (`"usrname" is not a valid query key`), and the
//! CLI and the HTTP API print it. Input can carry terminal escapes (ESC), line breaks
//! (`\n`, U+2028, U+2029), bidirectional overrides (U+202E) that reorder the text around
//! them, and invisible characters (U+200B, U+FEFF, U+3164) that hide or forge text. Every
//! piece of user text in a [`Validation`](super::Validation) goes through this module:
//!
//! * [`quoted`] for a `detail`: in double quotes, with `"` and `\` backslash-escaped;
//! * [`bare`] for a `field`: the same escapes, without the quotes;
//!
//! both cut to [`MAX_ECHO`] characters (then `…`), so a huge query cannot make a huge error.
//! A character that is escaped is written as Rust writes it: `\n`, `\r`, `\t`, or `\u{…}`
//! with its hexadecimal code point.

use std::fmt::Write as _;

/// The longest piece of user input quoted back in an error, in characters.
const MAX_ECHO: usize = 64;

/// `s` in double quotes, escaped and cut to [`MAX_ECHO`] characters, for an error detail.
pub(super) fn quoted(s: &str) -> String {
    let (head, cut) = head(s);
    let mut out = String::with_capacity(head.len() + 2);
    out.push('"');
    escape_into(head, &mut out);
    out.push('"');
    if cut {
        out.push('…');
    }
    out
}

/// `s` escaped and cut to [`MAX_ECHO`] characters, without quotes: for an error's `field`.
pub(crate) fn bare(s: &str) -> String {
    let (head, cut) = head(s);
    let mut out = String::with_capacity(head.len());
    escape_into(head, &mut out);
    if cut {
        out.push('…');
    }
    out
}

/// A list of names for an error detail (`a, b, c`), each escaped like [`bare`], at most
/// `MAX_LISTED` of them, then how many more there are.
pub(super) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const MAX_LISTED: usize = 50;
    let mut out = String::new();
    let mut more = 0usize;
    for (i, name) in names.into_iter().enumerate() {
        if i >= MAX_LISTED {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&bare(name));
    }
    if more > 0 {
        let _ = write!(out, " and {more} more");
    }
    out
}

/// The first [`MAX_ECHO`] characters of `s`, and whether anything was cut.
fn head(s: &str) -> (&str, bool) {
    match s.char_indices().nth(MAX_ECHO) {
        None => (s, false),
        Some((cut, _)) => (&s[..cut], true),
    }
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hides_or_breaks(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Characters that could break a line, drive a terminal, reorder text or not show at all:
/// everything Rust's `{:?}` escapes (controls, format characters such as bidirectional
/// overrides and zero-width characters, line and paragraph separators, combining marks,
/// unassigned code points), every white space but the plain space, and the letters that
/// render as blanks (the Hangul fillers and the blank Braille pattern).
fn hides_or_breaks(c: char) -> bool {
    (c != '\'' && c.escape_debug().nth(1).is_some())
        || (c.is_whitespace() && c != ' ')
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(quoted("usrname"), r#""usrname""#);
        assert_eq!(bare("café ☕ 例え"), "café ☕ 例え");
        assert_eq!(quoted(r#"a"b\c'd"#), r#""a\"b\\c'd""#);
        assert_eq!(quoted(""), r#""""#);
    }

    #[test]
    fn every_hiding_or_line_breaking_character_is_escaped() {
        let hostile = "a\nb\rc\td\u{0}e\u{1b}[31mf\u{7f}g\u{85}h\u{2028}i\u{2029}j\u{202e}k\
                       \u{200b}l\u{feff}m\u{2066}n\u{3164}o\u{a0}p\u{3000}q\u{e0001}r";
        assert_eq!(
            bare(hostile),
            r"a\nb\rc\td\u{0}e\u{1b}[31mf\u{7f}g\u{85}h\u{2028}i\u{2029}j\u{202e}k\u{200b}l\u{feff}m\u{2066}n\u{3164}o\u{a0}p\u{3000}q\u{e0001}r"
        );
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let escaped = bare(&c.to_string());
            if c.is_control() || c.is_whitespace() && c != ' ' {
                assert!(escaped.starts_with('\\'), "{:x} → {escaped}", u32::from(c));
            }
        }
    }

    #[test]
    fn echoes_are_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let q = quoted(&long);
        assert!(q.ends_with("\"…"), "{q}");
        assert_eq!(q.chars().filter(|&c| c == 'é').count(), MAX_ECHO);
        let b = bare(&long);
        assert_eq!(b.chars().count(), MAX_ECHO + 1);
        assert_eq!(bare(&"é".repeat(MAX_ECHO)), "é".repeat(MAX_ECHO));
    }

    #[test]
    fn lists_are_escaped_and_capped() {
        assert_eq!(list(["a", "b\u{1b}"]), r"a, b\u{1b}");
        let many: Vec<String> = (0..60).map(|i| format!("t{i}")).collect();
        let text = list(many.iter().map(String::as_str));
        assert!(text.starts_with("t0, t1,"), "{text}");
        assert!(text.ends_with("t49 and 10 more"), "{text}");
    }
}
