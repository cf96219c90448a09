//! Rules that span more than one attribute: every field classified, one `id`, unique names,
//! valid resource and audit names. Each violation is reported on the offending token.

use std::collections::HashMap;

use syn::LitStr;

use crate::ast::{Container, Field};
use crate::attr::Class;
use crate::ctxt::Ctxt;
use crate::symbol::*;

/// Checks the whole container, recording every problem.
pub(crate) fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_container(cx, cont);
    for field in &cont.fields {
        check_field(cx, cont, field);
    }
    check_unique_roles(cx, cont);
    check_unique_names(cx, cont);
}

fn check_container(cx: &Ctxt, cont: &Container<'_>) {
    if cont.attrs.embedded.is_some() {
        let resource_words = [
            (RESOURCE, cont.attrs.resource.as_ref().map(LitStr::span)),
            (ACTIONS, cont.attrs.actions_span),
            (ICON, cont.attrs.icon.as_ref().map(LitStr::span)),
        ];
        for (word, span) in resource_words {
            if let Some(span) = span {
                cx.error_at(
                    span,
                    format_args!("`{word}` describes a resource, but an `{EMBEDDED}` struct is only flattened into resources: remove `{word}` or `{EMBEDDED}`"),
                );
            }
        }
    }
    if let Some(resource) = &cont.attrs.resource {
        let value = resource.value();
        if value.is_empty() {
            cx.error_spanned_by(
                resource,
                "`resource` is empty: give the snake_case resource type, e.g. `resource = \"workspace\"`, \
                 or remove it to use the struct name in snake_case",
            );
        } else if !is_snake_case(&value) {
            cx.error_spanned_by(
                resource,
                format_args!(
                    "invalid `resource = {value:?}`: a resource type is snake_case \
                     (lowercase ASCII letters, digits and `_`, starting with a letter), e.g. `{}`",
                    crate::case::to_snake_case(&value.replace([' ', '-'], "_"))
                ),
            );
        }
    }
    let mut seen = Vec::new();
    for action in &cont.attrs.actions {
        let name = action.to_string();
        if !is_snake_case(&name) {
            cx.error_spanned_by(
                action,
                format_args!(
                    "invalid action `{name}`: actions are snake_case words such as `create` or `write`; try `{}`",
                    crate::case::to_snake_case(&name)
                ),
            );
        } else if seen.contains(&name) {
            cx.error_spanned_by(
                action,
                format_args!("duplicate action `{name}`: remove one"),
            );
        }
        seen.push(name);
    }
    if let Some(span) = cont.attrs.actions_span
        && cont.attrs.actions.is_empty()
    {
        cx.error_at(span, "`actions()` is empty: list the actions this resource is audited for, e.g. `actions(create, write, delete)`");
    }
    if let Some(icon) = &cont.attrs.icon
        && icon.value().trim().is_empty()
    {
        cx.error_spanned_by(
            icon,
            "`icon` is empty: give an icon name or URL, or remove it",
        );
    }
}

fn check_field(cx: &Ctxt, cont: &Container<'_>, field: &Field<'_>) {
    let attrs = &field.attrs;
    let name = &field.rust_name;
    if attrs.flatten.is_some() {
        if let Some(class) = &attrs.class {
            cx.error_at(
                class.span,
                format_args!(
                    "`{}` cannot be combined with `flatten`: a flattened field's own fields carry their classes; remove `{}`",
                    class.value.word(),
                    class.value.word()
                ),
            );
        }
        for (word, span) in [(ID, attrs.id), (TARGET, attrs.target)] {
            if let Some(span) = span {
                cx.error_at(span, format_args!("`{word}` cannot be combined with `{FLATTEN}`: put `{word}` on a field of the flattened struct"));
            }
        }
        if let Some(reason) = &attrs.reason {
            cx.error_spanned_by(reason, "`reason` cannot be combined with `flatten`: give reasons on the flattened struct's fields");
        }
        if let Some(rename) = &attrs.rename {
            cx.error_spanned_by(rename, "`rename` cannot be combined with `flatten`: a flattened field has no name of its own");
        }
        if let Some(span) = attrs.no_fingerprint {
            cx.error_at(span, format_args!("`{NO_FINGERPRINT}` cannot be combined with `{FLATTEN}`: put it on a secret field of the flattened struct"));
        }
        if field.mentions_generic_param(cont.generics) {
            cx.error_spanned_by(
                field.ty,
                "`flatten` needs a concrete type: a type that depends on a generic parameter has no tracking table at compile time",
            );
        }
        return;
    }
    let Some(class) = &attrs.class else {
        if attrs.had_error {
            return;
        }
        cx.error_spanned_by(
            field.ident,
            format_args!(
                "field `{name}` is not classified for auditing: add `#[audit(track)]`, \
                 `#[audit(ignore)]` or `#[audit(secret)]` (or `#[audit(flatten)]` for an embedded Auditable struct)"
            ),
        );
        return;
    };
    if let Some(reason) = &attrs.reason {
        if class.value == Class::Track {
            cx.error_spanned_by(
                reason,
                "`reason` explains why a field is ignored or secret; a tracked field needs none: remove it",
            );
        } else if reason.value().trim().is_empty() {
            cx.error_spanned_by(reason, "`reason` is empty: say why, or remove it");
        }
    }
    if let Some(span) = attrs.no_fingerprint
        && class.value != Class::Secret
    {
        cx.error_at(
            span,
            format_args!(
                "`{NO_FINGERPRINT}` applies to secret fields only, and this field is `{}`: remove it",
                class.value.word()
            ),
        );
    }
    if class.value == Class::Secret {
        for (word, span) in [(ID, attrs.id), (TARGET, attrs.target)] {
            if let Some(span) = span {
                cx.error_at(
                    span,
                    format_args!(
                        "a secret field cannot be the resource `{word}`: its value would appear in every event; \
                         mark another field `{word}`"
                    ),
                );
            }
        }
    }
    if let Some(rename) = &attrs.rename
        && let Err(problem) = check_audit_name(&rename.value())
    {
        cx.error_spanned_by(
            rename,
            format_args!("invalid `rename = {:?}`: {problem}", rename.value()),
        );
    }
}

/// `id` and `target` may each be on one field only.
fn check_unique_roles(cx: &Ctxt, cont: &Container<'_>) {
    for word in [ID, TARGET] {
        let mut first: Option<&str> = None;
        for field in &cont.fields {
            let span = if word == ID {
                field.attrs.id
            } else {
                field.attrs.target
            };
            let Some(span) = span else { continue };
            match first {
                Some(first) => cx.error_at(
                    span,
                    format_args!("`{word}` is already on field `{first}`: a resource has one {word}; remove one"),
                ),
                None => first = Some(&field.rust_name),
            }
        }
    }
}

/// Two fields may not share an audit name (e.g. after `rename`).
fn check_unique_names(cx: &Ctxt, cont: &Container<'_>) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for field in cont.fields.iter().filter(|f| f.attrs.flatten.is_none()) {
        let first = *seen.entry(&field.audit_name).or_insert(&field.rust_name);
        if first != field.rust_name {
            let at = match &field.attrs.rename {
                Some(rename) => rename.span(),
                None => field.ident.span(),
            };
            cx.error_at(
                at,
                format_args!(
                    "field `{}` has the audit name `{}`, already used by field `{first}`: give one a different `rename`",
                    field.rust_name, field.audit_name
                ),
            );
        }
    }
}

/// Audit names end up as JSON keys, CSV columns and Markdown cells: keep them plain.
fn check_audit_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("an audit name cannot be empty");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("audit names may contain only ASCII letters, digits, `_`, `-` and `.`");
    }
    Ok(())
}

fn is_snake_case(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
