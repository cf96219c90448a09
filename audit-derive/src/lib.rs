//! The `#[derive(Auditable)]` macro. Use it through `audit_core::Auditable`.
//!
//! The pipeline follows serde_derive and thiserror-impl: `attr` parses attributes (the words
//! are the constants of `symbol`) into a
//! typed model, `ast` checks the input's shape, `valid` checks cross-field rules, and
//! `expand` generates code. Every error of one derive is reported in one compile, each on
//! the offending token, next to a stub impl that prevents follow-on errors.

mod ast;
mod attr;
mod case;
mod ctxt;
mod expand;
mod symbol;
mod valid;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Derives `audit_core::Auditable` for a struct with named fields.
///
/// Every field must be classified with exactly one of:
///
/// | attribute | meaning | the field's type needs |
/// |---|---|---|
/// | `#[audit(track)]` | changes are recorded with old and new values | `PartialEq + Serialize` |
/// | `#[audit(ignore)]` | changes are never recorded | nothing |
/// | `#[audit(secret)]` | changes are recorded as "changed", never with a value; with an auditor's fingerprint key, with keyed fingerprints of the values | `PartialEq + Serialize` |
/// | `#[audit(secret, no_fingerprint)]` | a secret never fingerprinted (a PIN: a fingerprint of a guessable value gives it away) | `PartialEq` |
/// | `#[audit(flatten)]` | inline the fields of an embedded `Auditable` struct | `Auditable` |
///
/// In the same list a field may also take `reason = "…"` (why it is ignored or secret; a
/// tracked field takes no reason, and this is a compile error), `rename = "…"` (its audit
/// name; otherwise `#[serde(rename)]`, `#[serde(rename_all)]` or the Rust name), `id` (the
/// resource id) and `target` (the resource's human-readable name). A secret field can be
/// neither `id` nor `target`.
///
/// On the struct: `resource = "snake_name"` (default: the struct name in snake_case),
/// `actions(create, write, …)`, `icon = "…"`, `embedded` for a struct that is only flattened
/// into resources (such as shared timestamps; it is then not listed as a resource), and
/// `crate = "path"` when `audit_core` is re-exported under another name.
///
/// Every type but an `embedded` one is listed by `audit_core::resources()`, a generic type
/// once for all its instantiations. `flatten` needs a type that does not depend on the
/// struct's type or const parameters.
#[proc_macro_derive(Auditable, attributes(audit))]
pub fn derive_auditable(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
