//! The example's tracking docs: `docs/audit-tracking.md` holds the tables of every resource
//! linked into the program, kept fresh with [`audit_core::docs`] (the `audit-docs` binary
//! and a test call it).

use std::path::{Path, PathBuf};

use audit_core::ResourceSchema;

/// The command that regenerates the committed tables.
pub const REGENERATE: &str = "cargo run -p audit-examples --bin audit-docs";

/// Where the generated tracking tables are committed.
pub fn default_path() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .unwrap_or(manifest_dir)
        .join("docs/audit-tracking.md")
}

/// The schemas of every resource linked into this program.
pub fn schemas() -> Vec<&'static ResourceSchema> {
    audit_core::resources().collect()
}

/// The tracking tables of every resource linked into this program.
pub fn render() -> String {
    audit_core::docs::render_markdown(&schemas())
}
