//! Terminal-safe text: the one rule for characters that could break a line, move the cursor,
//! reorder what a reader sees, or hide text (see [`terminal_safe`]).

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must be escaped before it reaches a terminal or a line-based log (see
/// [`terminal_safe`]).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// `s` with every unsafe character escaped visibly; borrowed when nothing needed escaping.
///
/// A character is *unsafe* when it is
///
/// * a control character (C0, DEL, C1: newline, carriage return, tab, ESC, NEL, …),
/// * a line or paragraph separator (U+2028, U+2029),
/// * a bidirectional control: the embeddings and overrides U+202A–U+202E, the isolates
///   U+2066–U+2069, and the marks U+200E, U+200F, U+061C,
/// * a zero-width or other invisible format character (Unicode category `Cf`, such as
///   U+200B–U+200D, U+2060–U+2064, the BOM U+FEFF, the tag characters U+E0000–U+E007F,
///   the soft hyphen U+00AD), or an invisible filler (the Hangul fillers U+115F, U+1160,
///   U+3164, U+FFA0).
///
/// Each unsafe character is written visibly as an escape: `\n`, `\r`, `\t`, and `\uXXXX`
/// (or `\UXXXXXXXX` beyond U+FFFF) for the others. Everything else, including any other
/// non-ASCII text, is kept as it is.
///
/// ```
/// use audit_core::format::terminal_safe;
///
/// assert_eq!(terminal_safe("dev"), "dev");
/// assert_eq!(terminal_safe("a\nb\u{1b}[31m"), r"a\nb\u001b[31m");
/// assert_eq!(terminal_safe("exe.\u{202e}gpj"), r"exe.\u202egpj");
/// assert_eq!(terminal_safe("café ☕"), "café ☕");
/// ```
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Writing to a String never fails.
    let _ = write_terminal_safe(&mut out, s);
    Cow::Owned(out)
}

/// Writes `s` to `out` with every unsafe character escaped visibly.
pub fn write_terminal_safe(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    write_escaped(out, s, |_| None)
}

/// Writes `s` with every unsafe character escaped, and the characters `extra` gives an
/// escape for (such as `"` inside a quoted value) replaced by it.
pub(crate) fn write_escaped(
    out: &mut impl fmt::Write,
    s: &str,
    extra: impl Fn(char) -> Option<&'static str>,
) -> fmt::Result {
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let replacement = extra(c);
        if replacement.is_none() && !is_unsafe(c) {
            continue;
        }
        out.write_str(&s[run..i])?;
        run = i + c.len_utf8();
        match replacement {
            Some(r) => out.write_str(r)?,
            None => write_escape(out, c)?,
        }
    }
    out.write_str(&s[run..])
}

/// The visible form of one unsafe character.
fn write_escape(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if u32::from(c) <= 0xFFFF => write!(out, "\\u{:04x}", u32::from(c)),
        c => write!(out, "\\U{:08x}", u32::from(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_of_unsafe_character_is_escaped_visibly() {
        let cases = [
            ("line\nbreak", r"line\nbreak"),
            ("cr\rtab\t", r"cr\rtab\t"),
            ("nul\u{0}", r"nul\u0000"),
            ("esc\u{1b}[2J", r"esc\u001b[2J"),
            ("del\u{7f}", r"del\u007f"),
            ("nel\u{85}", r"nel\u0085"),
            ("ls\u{2028}ps\u{2029}", r"ls\u2028ps\u2029"),
            ("rlo\u{202e}lre\u{202a}", r"rlo\u202elre\u202a"),
            ("isolate\u{2066}\u{2069}", r"isolate\u2066\u2069"),
            ("mark\u{200f}\u{061c}", r"mark\u200f\u061c"),
            ("zw\u{200b}\u{200d}\u{2060}", r"zw\u200b\u200d\u2060"),
            ("bom\u{feff}", r"bom\ufeff"),
            ("soft\u{ad}hyphen", r"soft\u00adhyphen"),
            ("filler\u{3164}", r"filler\u3164"),
            ("tag\u{e0041}", r"tag\U000e0041"),
        ];
        for (raw, want) in cases {
            assert_eq!(terminal_safe(raw), want, "{raw:?}");
            assert!(!terminal_safe(raw).chars().any(is_unsafe));
        }
    }

    #[test]
    fn safe_text_is_borrowed_unchanged() {
        for s in [
            "",
            "alice",
            "my workspace",
            "café",
            "日本語",
            "emoji 🎉",
            r"back\slash",
        ] {
            assert!(
                matches!(terminal_safe(s), Cow::Borrowed(b) if b == s),
                "{s}"
            );
        }
    }
}
