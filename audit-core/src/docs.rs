//! Generated "what is tracked" documentation.
//!
//! [`render_markdown`] turns tracking tables into Markdown: one section per resource with its
//! actions and a table of every field, its class (tracked / ignored / secret) and the reason.
//! [`replace_section`] splices that text between two marker comments of a hand-written file,
//! so the tables are never edited by hand and a check can tell when they are stale.

use std::fmt::{self, Write as _};

use crate::{FieldClass, ResourceSchema};

/// The comment that starts the generated section of a Markdown file.
pub const BEGIN_MARKER: &str = "<!-- audit-tracking:begin (generated, do not edit) -->";
/// The comment that ends the generated section of a Markdown file.
pub const END_MARKER: &str = "<!-- audit-tracking:end -->";

/// Renders the tracking tables of `schemas` as Markdown.
///
/// Resources are sorted by Rust name and fields by audit name, so the output depends only on
/// the set of schemas, not on their order; rendering twice gives the same text.
///
/// ```
/// use audit_core::Auditable;
///
/// #[derive(Auditable)]
/// #[audit(resource = "git_ssh_key", actions(create))]
/// struct GitSshKey {
///     #[audit(track, id)] user_id: u64,
///     #[audit(track)] public_key: String,
///     #[audit(secret, reason = "grants access to every repository")] private_key: String,
///     #[audit(ignore)] updated_at: u64,
/// }
///
/// let md = audit_core::docs::render_markdown(&[GitSshKey::schema()]);
/// assert!(md.contains("| `private_key` | secret | grants access to every repository |"));
/// assert!(md.contains("| `updated_at` | ignored |  |"));
/// ```
pub fn render_markdown(schemas: &[&ResourceSchema]) -> String {
    let mut sorted = schemas.to_vec();
    sorted.sort_by_key(|s| (s.name, s.resource_type));
    sorted.dedup_by(|a, b| a.name == b.name && a.resource_type == b.resource_type);
    let mut out = String::new();
    for (i, schema) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = write_resource(&mut out, schema);
    }
    out
}

fn write_resource(out: &mut String, schema: &ResourceSchema) -> fmt::Result {
    writeln!(out, "### {}\n", escape_cell(schema.name))?;
    write!(out, "Resource type: `{}`", schema.resource_type)?;
    if schema.actions.is_empty() {
        write!(out, " · Actions: none declared")?;
    } else {
        write!(out, " · Actions: {}", schema.actions.join(", "))?;
    }
    if let Some(icon) = schema.icon {
        write!(out, " · Icon: `{}`", escape_cell(icon))?;
    }
    writeln!(out, "\n")?;
    writeln!(out, "| Field | Class | Reason |")?;
    writeln!(out, "|---|---|---|")?;
    let mut fields = schema.fields.to_vec();
    fields.sort_by_key(|f| f.name);
    for field in fields {
        let mut class = field.class.label().to_owned();
        match (field.is_id, field.is_target) {
            (true, true) => class.push_str(" (id, target)"),
            (true, false) => class.push_str(" (id)"),
            (false, true) => class.push_str(" (target)"),
            (false, false) => {}
        }
        let reason = field.reason.map(escape_cell).unwrap_or_default();
        writeln!(out, "| `{}` | {class} | {reason} |", field.name)?;
    }
    let count = |class| schema.fields.iter().filter(|f| f.class == class).count();
    writeln!(
        out,
        "\n{} tracked, {} ignored, {} secret.",
        count(FieldClass::Track),
        count(FieldClass::Ignore),
        count(FieldClass::Secret)
    )
}

/// Makes text safe inside a Markdown table cell: one line, no column breaks.
fn escape_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '\r' | '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

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
    use crate::FieldSchema;

    const FIELDS: &[FieldSchema] = &[
        FieldSchema::__new("name", "name", FieldClass::Track, None, false, true),
        FieldSchema::__new("id", "id", FieldClass::Track, None, true, false),
        FieldSchema::__new(
            "token",
            "token",
            FieldClass::Secret,
            Some("a | b\nc"),
            false,
            false,
        ),
    ];
    const A: ResourceSchema =
        ResourceSchema::__new("Alpha", "alpha", &["create"], Some("a.svg"), FIELDS);
    const B: ResourceSchema = ResourceSchema::__new("Beta", "beta", &[], None, &[]);

    #[test]
    fn output_does_not_depend_on_input_order_and_is_deduplicated() {
        assert_eq!(render_markdown(&[&A, &B]), render_markdown(&[&B, &A, &B]));
        assert!(
            render_markdown(&[&B, &A]).find("### Alpha")
                < render_markdown(&[&B, &A]).find("### Beta")
        );
    }

    #[test]
    fn cells_cannot_break_the_table() {
        let md = render_markdown(&[&A]);
        assert!(md.contains("| `token` | secret | a \\| b c |"), "{md}");
        assert!(md.contains("| `id` | tracked (id) |"));
        assert!(md.contains("| `name` | tracked (target) |"));
        assert!(md.contains("Actions: create · Icon: `a.svg`"));
        assert!(md.contains("2 tracked, 0 ignored, 1 secret."));
    }

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
