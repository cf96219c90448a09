//! Generated "what is tracked" documentation, and keeping a committed copy of it fresh.
//!
//! [`render_markdown`] turns tracking tables into Markdown: one section per resource with its
//! actions and a table of every field, its class (tracked / ignored / secret) and the reason.
//! [`replace_section`] splices that text between two marker comments of a hand-written file,
//! so the tables are never edited by hand. [`check_fresh`] tells when a committed file is
//! stale (with a diff), [`update`] rewrites its generated section, and [`assert_fresh`] is
//! the one-line test that keeps it honest: call them on your own crate's docs with
//! `audit_core::resources()`.

mod fresh;
mod line_diff;
mod markdown;
mod section;

pub use fresh::{DocsError, Stale, assert_fresh, check_fresh, update};
pub use markdown::render_markdown;
pub use section::{BEGIN_MARKER, END_MARKER, SectionError, replace_section};
