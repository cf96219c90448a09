//! A Coder-like deployment annotated end to end.
//!
//! [`resources`] holds the domain types of a cloud development environment platform (users,
//! workspaces, templates, keys, …), each classified field by field with
//! `#[derive(Auditable)]`. Their generated tracking tables are the committed
//! `docs/audit-tracking.md` (regenerate with `cargo run -p audit-examples --bin audit-docs`).

pub mod demo;
// The domain types are documented by their `#[audit(...)]` classification, field by field,
// and by the tracking tables generated from it (docs/audit-tracking.md); a doc comment on every
// field would repeat them.
#[allow(missing_docs)]
pub mod resources;
pub mod tracking_docs;
