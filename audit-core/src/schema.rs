//! The static tracking table of an [`Auditable`](crate::Auditable) type.
//!
//! `#[derive(Auditable)]` generates one [`ResourceSchema`] per type, in a `static`: which
//! fields exist (after flattening), how each is classified, and why. The docs generator, the
//! query validator and the registry all read these tables; nothing here is built at run time.

use serde::Serialize;

/// How a field takes part in auditing. Every field has exactly one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// Changes are recorded with their old and new values.
    Track,
    /// Changes are never recorded (bookkeeping fields such as `updated_at`).
    Ignore,
    /// Changes are recorded as "changed", never with a value.
    Secret,
}

impl FieldClass {
    /// The word used for this class in generated docs: `tracked`, `ignored` or `secret`.
    ///
    /// ```
    /// assert_eq!(audit_core::FieldClass::Track.label(), "tracked");
    /// ```
    pub const fn label(self) -> &'static str {
        match self {
            FieldClass::Track => "tracked",
            FieldClass::Ignore => "ignored",
            FieldClass::Secret => "secret",
        }
    }
}

impl std::fmt::Display for FieldClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One row of a tracking table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldSchema {
    /// The audit name: `#[audit(rename)]`, else the serde name, else the Rust name.
    pub name: &'static str,
    /// The field's Rust identifier (without `r#`).
    pub rust_name: &'static str,
    /// Tracked, ignored or secret.
    pub class: FieldClass,
    /// Why the field is ignored or secret, from `#[audit(reason = "…")]`.
    pub reason: Option<&'static str>,
    /// This field is the resource id (`#[audit(id)]`).
    pub is_id: bool,
    /// This field is the resource target, its human-readable name (`#[audit(target)]`).
    pub is_target: bool,
}

impl FieldSchema {
    /// A row with every part given, for this crate; the derive builds rows with [`track`],
    /// [`ignore`], [`secret`] and the `with_…`/`as_…` modifiers.
    pub(crate) const fn __new(
        name: &'static str,
        rust_name: &'static str,
        class: FieldClass,
        reason: Option<&'static str>,
        is_id: bool,
        is_target: bool,
    ) -> Self {
        FieldSchema {
            name,
            rust_name,
            class,
            reason,
            is_id,
            is_target,
        }
    }
}

/// The tracking table of one auditable resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResourceSchema {
    /// The Rust type name, e.g. `"Workspace"`.
    pub name: &'static str,
    /// The resource type used in events and filters, e.g. `"workspace"`.
    pub resource_type: &'static str,
    /// The actions this resource is audited for, as declared with `actions(…)`.
    pub actions: &'static [&'static str],
    /// An icon name or URL for UIs, from `icon = "…"`.
    pub icon: Option<&'static str>,
    /// Every field, flattened fields inlined, in declaration order.
    pub fields: &'static [FieldSchema],
}

impl ResourceSchema {
    /// A table with every part given, for this crate's tests; the derive builds tables with
    /// [`resource`].
    #[cfg(test)]
    pub(crate) const fn __new(
        name: &'static str,
        resource_type: &'static str,
        actions: &'static [&'static str],
        icon: Option<&'static str>,
        fields: &'static [FieldSchema],
    ) -> Self {
        ResourceSchema {
            name,
            resource_type,
            actions,
            icon,
            fields,
        }
    }

    /// The field with this audit name, if any.
    pub fn field(&self, name: &str) -> Option<&'static FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether `action` is one of the actions this resource declares.
    pub fn has_action(&self, action: &str) -> bool {
        self.actions.contains(&action)
    }
}

/// A tracking table as generated code builds it, with `""` for no icon (the derive refuses an
/// empty `icon`).
#[doc(hidden)]
pub const fn resource(
    name: &'static str,
    resource_type: &'static str,
    actions: &'static [&'static str],
    icon: &'static str,
    fields: &'static [FieldSchema],
) -> ResourceSchema {
    ResourceSchema {
        name,
        resource_type,
        actions,
        icon: if icon.is_empty() { None } else { Some(icon) },
        fields,
    }
}

/// The table of a type whose derive failed: only there so that the failed derive's stub impl
/// compiles.
#[doc(hidden)]
pub const NO_SCHEMA: &ResourceSchema = &resource("", "", &[], "", &[]);

// Rows of generated tracking tables. The derive writes one short call per field, such as
// `track("name")` or `ignore("updated_at").with_reason("…")`: each is evaluated at compile time
// for every field of every derived type, and an argument costs as much as a call, so the
// common case takes a single one.

/// A tracked field's row, its audit name also its Rust name.
#[doc(hidden)]
pub const fn track(name: &'static str) -> FieldSchema {
    FieldSchema::row(name, FieldClass::Track)
}

/// An ignored field's row, its audit name also its Rust name.
#[doc(hidden)]
pub const fn ignore(name: &'static str) -> FieldSchema {
    FieldSchema::row(name, FieldClass::Ignore)
}

/// A secret field's row, its audit name also its Rust name.
#[doc(hidden)]
pub const fn secret(name: &'static str) -> FieldSchema {
    FieldSchema::row(name, FieldClass::Secret)
}

#[doc(hidden)]
impl FieldSchema {
    const fn row(name: &'static str, class: FieldClass) -> Self {
        FieldSchema {
            name,
            rust_name: name,
            class,
            reason: None,
            is_id: false,
            is_target: false,
        }
    }

    /// For a field whose audit name is not its Rust name.
    pub const fn with_rust_name(mut self, rust_name: &'static str) -> Self {
        self.rust_name = rust_name;
        self
    }

    pub const fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub const fn as_id(mut self) -> Self {
        self.is_id = true;
        self
    }

    pub const fn as_target(mut self) -> Self {
        self.is_target = true;
        self
    }
}

/// Concatenates field tables at compile time (used by generated code for `flatten`).
///
/// Panics during constant evaluation, so as a compile error, if `N` is not the total length.
#[doc(hidden)]
pub const fn concat_fields<const N: usize>(parts: &[&[FieldSchema]]) -> [FieldSchema; N] {
    const BLANK: FieldSchema = FieldSchema::__new("", "", FieldClass::Ignore, None, false, false);
    let mut out = [BLANK; N];
    let mut at = 0;
    let mut part = 0;
    while part < parts.len() {
        let fields = parts[part];
        let mut i = 0;
        while i < fields.len() {
            out[at] = fields[i];
            at += 1;
            i += 1;
        }
        part += 1;
    }
    assert!(at == N, "concat_fields: length mismatch");
    out
}

/// Total length of field tables (used by generated code for `flatten`).
#[doc(hidden)]
pub const fn fields_len(parts: &[&[FieldSchema]]) -> usize {
    let mut total = 0;
    let mut part = 0;
    while part < parts.len() {
        total += parts[part].len();
        part += 1;
    }
    total
}

/// The first audit name that appears twice in `fields`, if any (checked at compile time for
/// flattened types, whose names the derive cannot see).
#[doc(hidden)]
pub const fn first_duplicate_name(fields: &[FieldSchema]) -> Option<&'static str> {
    let mut i = 0;
    while i < fields.len() {
        let mut j = i + 1;
        while j < fields.len() {
            if str_eq(fields[i].name, fields[j].name) {
                return Some(fields[i].name);
            }
            j += 1;
        }
        i += 1;
    }
    None
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[FieldSchema] = &[FieldSchema::__new(
        "a",
        "a",
        FieldClass::Track,
        None,
        true,
        false,
    )];
    const B: &[FieldSchema] = &[
        FieldSchema::__new("b", "b", FieldClass::Secret, Some("key"), false, false),
        FieldSchema::__new("c", "c", FieldClass::Ignore, None, false, true),
    ];

    #[test]
    fn concatenation_keeps_order_and_rows() {
        const N: usize = fields_len(&[A, B]);
        const ALL: [FieldSchema; N] = concat_fields::<N>(&[A, B]);
        assert_eq!(N, 3);
        assert_eq!(ALL.map(|f| f.name), ["a", "b", "c"]);
        assert_eq!(ALL[1].reason, Some("key"));
    }

    #[test]
    fn duplicate_names_are_found() {
        assert_eq!(first_duplicate_name(B), None);
        assert_eq!(first_duplicate_name(&[A[0], B[0], A[0]]), Some("a"));
    }
}
