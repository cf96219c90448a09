//! The generated section of a hand-written Markdown file: the text between two marker
//! comments, replaced whole so the tables are never edited by hand.

use std::fmt;

/// The comment that starts the generated section of a Markdown file.
pub const BEGIN_MARKER: &str = "<!-- audit-tracking:begin (generated, do not edit) -->";
/// The comment that ends the generated section of a Markdown file.
pub const END_MARKER: &str = "<!-- audit-tracking:end -->";

/// Why a generated section could not be placed in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionError {
    /// The begin marker is not in the document.
    MissingBegin,
    /// The end marker is not after the begin marker.
    MissingEnd,
    /// A marker appears more than once.
    Repeated(&'static str),
}

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SectionError::MissingBegin => write!(
                f,
                "the begin marker is missing: add a line `{BEGIN_MARKER}` where the generated tables go, \
                 and `{END_MARKER}` after it"
            ),
            SectionError::MissingEnd => write!(
                f,
                "the end marker is missing: add a line `{END_MARKER}` after `{BEGIN_MARKER}`"
            ),
            SectionError::Repeated(marker) => write!(
                f,
                "the marker `{marker}` appears more than once: keep one generated section per file"
            ),
        }
    }
}

impl std::error::Error for SectionError {}

/// Replaces what lies between [`BEGIN_MARKER`] and [`END_MARKER`] in `document` with
/// `generated`, keeping everything else byte for byte.
///
/// ```
/// use audit_core::docs::{replace_section, BEGIN_MARKER, END_MARKER};
///
/// let doc = format!("# Audit\n\n{BEGIN_MARKER}\nold\n{END_MARKER}\n\nFooter\n");
/// let new = replace_section(&doc, "new table\n").unwrap();
/// assert_eq!(new, format!("# Audit\n\n{BEGIN_MARKER}\n\nnew table\n\n{END_MARKER}\n\nFooter\n"));
/// assert_eq!(replace_section(&new, "new table\n").unwrap(), new); // idempotent
/// assert!(replace_section("# no markers", "x").is_err());
/// ```
pub fn replace_section(document: &str, generated: &str) -> Result<String, SectionError> {
    let begin = document
        .find(BEGIN_MARKER)
        .ok_or(SectionError::MissingBegin)?;
    if document[begin + BEGIN_MARKER.len()..].contains(BEGIN_MARKER) {
        return Err(SectionError::Repeated(BEGIN_MARKER));
    }
    let body_start = begin + BEGIN_MARKER.len();
    let end = document[body_start..]
        .find(END_MARKER)
        .map(|i| body_start + i)
        .ok_or(SectionError::MissingEnd)?;
    if document[end + END_MARKER.len()..].contains(END_MARKER)
        || document[..begin].contains(END_MARKER)
    {
        return Err(SectionError::Repeated(END_MARKER));
    }
    let mut out = String::with_capacity(document.len() + generated.len());
    out.push_str(&document[..body_start]);
    out.push_str("\n\n");
    out.push_str(generated.trim_end_matches('\n'));
    out.push_str("\n\n");
    out.push_str(&document[end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_problems_are_reported() {
        assert_eq!(replace_section("text", ""), Err(SectionError::MissingBegin));
        assert_eq!(
            replace_section(BEGIN_MARKER, ""),
            Err(SectionError::MissingEnd)
        );
        let twice = format!("{BEGIN_MARKER}{END_MARKER}{BEGIN_MARKER}{END_MARKER}");
        assert_eq!(
            replace_section(&twice, ""),
            Err(SectionError::Repeated(BEGIN_MARKER))
        );
        let end_first = format!("{END_MARKER}{BEGIN_MARKER}{END_MARKER}");
        assert_eq!(
            replace_section(&end_first, ""),
            Err(SectionError::Repeated(END_MARKER))
        );
        assert!(SectionError::MissingEnd.to_string().contains(END_MARKER));
    }
}
