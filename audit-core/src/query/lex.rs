//! The lexer: splitting a query into terms, and quoting values back.
//!
//! Grammar (the syntax of Coder's audit search, made strict):
//!
//! ```text
//! query   = { space } [ element { space { space } element } ] { space }
//! element = word | key ":" value          (one ":" outside quotes, not first nor last)
//! word    = { plain | quoted }            (a bare word is a resource_type)
//! quoted  = '"' { any but '"' or '\' | '\"' | '\\' } '"'
//! ```
//!
//! Quotes group: they can appear anywhere in a key or value and are removed, so
//! `resource_target:"my ws"`, `resource_target:my" "ws` and `"resource_target":"my ws"` are
//! the same term, and `"a:b"` (a quoted colon) is the bare word `a:b`. `space` is any Unicode
//! white space. A backslash escapes `"` or `\` inside quotes only; elsewhere it is literal.

use super::echo::quoted as echo;
use super::error::Validation;

/// One piece of the query, between white space outside quotes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Element {
    /// `key:value`, quotes removed, key lower-cased (values keep their case).
    Term { key: String, value: String },
    /// A word with no `:` outside quotes, quotes removed.
    Bare(String),
}

/// Splits `query` into raw elements at white space outside quotes. An element whose quote is
/// never closed runs to the end of the query.
pub(super) fn split(query: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quoted = false;
    let mut chars = query.char_indices();
    while let Some((i, c)) = chars.next() {
        if quoted {
            match c {
                '"' => quoted = false,
                '\\' => {
                    chars.next();
                }
                _ => {}
            }
        } else if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(&query[s..i]);
            }
        } else {
            start.get_or_insert(i);
            if c == '"' {
                quoted = true;
            }
        }
    }
    if let Some(s) = start {
        out.push(&query[s..]);
    }
    out
}

/// Parses one raw element from [`split`].
pub(super) fn element(raw: &str) -> Result<Element, Validation> {
    let mut colons = Vec::new();
    let mut quoted = false;
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quoted, c) {
            (false, ':') => colons.push(i),
            (_, '"') => quoted = !quoted,
            (true, '\\') => {
                chars.next();
            }
            _ => {}
        }
    }
    if quoted {
        return Err(Validation::new(
            "q",
            format!(
                "Query element {} has an unterminated quote: close it with '\"'.",
                echo(raw)
            ),
        ));
    }
    if raw.starts_with(':') || raw.ends_with(':') {
        return Err(Validation::new(
            "q",
            format!(
                "Query element {} cannot start or end with ':'; write key:value.",
                echo(raw)
            ),
        ));
    }
    match colons[..] {
        [] => {
            let word = unquote(raw);
            if word.is_empty() {
                return Err(Validation::new(
                    "q",
                    format!("Query element {} is empty.", echo(raw)),
                ));
            }
            Ok(Element::Bare(word))
        }
        [at] => {
            let key = unquote(&raw[..at]).to_lowercase();
            if key.is_empty() {
                return Err(Validation::new(
                    "q",
                    format!("Query element {} has an empty key.", echo(raw)),
                ));
            }
            Ok(Element::Term {
                key,
                value: unquote(&raw[at + 1..]),
            })
        }
        _ => Err(Validation::new(
            "q",
            format!(
                "Query element {} can only contain one ':' outside quotes; quote a value that \
                 contains ':' (key:\"a:b\").",
                echo(raw)
            ),
        )),
    }
}

/// Removes grouping quotes and resolves `\"` and `\\` inside them. `s` has balanced quotes.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (_, '"') => quoted = !quoted,
            (true, '\\') => match chars.peek() {
                Some(&next @ ('"' | '\\')) => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

/// Writes `value` so that [`element`] reads it back unchanged: as is when it can be, else
/// in quotes with `"` and `\` escaped.
pub(super) fn quote(value: &str, out: &mut String) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == ':');
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(key: &str, value: &str) -> Element {
        Element::Term {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn splits_on_any_white_space_outside_quotes() {
        assert_eq!(split(""), Vec::<&str>::new());
        assert_eq!(split(" \t\n "), Vec::<&str>::new());
        assert_eq!(split("a  b\tc\u{3000}d"), ["a", "b", "c", "d"]);
        assert_eq!(split(r#"k:"a b" c"#), [r#"k:"a b""#, "c"]);
        assert_eq!(split(r#"k:"a \" b" c"#), [r#"k:"a \" b""#, "c"]);
        assert_eq!(split(r#"k:"open c"#), [r#"k:"open c"#]);
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(element(r#"k:"my ws""#), Ok(term("k", "my ws")));
        assert_eq!(element(r#""K":my" "ws"#), Ok(term("k", "my ws")));
        assert_eq!(element(r#"k:"a:b""#), Ok(term("k", "a:b")));
        assert_eq!(element(r#""a:b""#), Ok(Element::Bare("a:b".into())));
        assert_eq!(element(r#"k:"\"\\""#), Ok(term("k", r#""\"#)));
        assert_eq!(element(r"k:a\b"), Ok(term("k", r"a\b")));
        assert_eq!(element(r#"k:"a\b""#), Ok(term("k", r"a\b")));
        assert_eq!(element(r#"k:"""#), Ok(term("k", "")));
    }

    #[test]
    fn malformed_elements_are_rejected() {
        for bad in [
            ":a", "a:", ":", "a:b:c", "a::b", r#"k:"x"#, r#""""#, r#""":v"#,
        ] {
            let err = element(bad).unwrap_err();
            assert_eq!(err.field, "q", "{bad}");
        }
    }

    #[test]
    fn quoting_round_trips() {
        for v in [
            "x", "a b", "a:b", r#"a"b"#, r"a\b", r#"\""#, "", "é ü", "\u{3000}",
        ] {
            let mut s = String::from("k:");
            quote(v, &mut s);
            assert_eq!(split(&s), [s.as_str()], "{s}");
            assert_eq!(element(&s), Ok(term("k", v)), "{s}");
        }
    }
}
