//! Renders tracking tables as Markdown: one section per resource with its actions and a
//! table of every field, its class (tracked / ignored / secret) and the reason.

use std::fmt::{self, Write as _};

use crate::{FieldClass, ResourceSchema};

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
}
