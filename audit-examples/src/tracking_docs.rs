//! Keeps `docs/audit-tracking.md` in step with the example resources.

use std::path::{Path, PathBuf};

use audit_core::docs::{SectionError, replace_section};

/// Where the generated tracking tables are committed.
pub fn default_path() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .unwrap_or(manifest_dir)
        .join("docs/audit-tracking.md")
}

/// The tracking tables of every resource linked into this program.
pub fn render() -> String {
    let schemas: Vec<_> = audit_core::resources().collect();
    audit_core::docs::render_markdown(&schemas)
}

/// Why the docs file could not be checked or updated.
#[derive(Debug)]
pub enum DocsError {
    /// The file could not be read or written.
    Io(PathBuf, std::io::Error),
    /// The file has no well-formed generated section.
    Section(PathBuf, SectionError),
}

impl std::fmt::Display for DocsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocsError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            DocsError::Section(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for DocsError {}

/// The file's current text and the text it should have.
pub fn current_and_expected(path: &Path) -> Result<(String, String), DocsError> {
    let current = std::fs::read_to_string(path).map_err(|e| DocsError::Io(path.to_owned(), e))?;
    let expected =
        replace_section(&current, &render()).map_err(|e| DocsError::Section(path.to_owned(), e))?;
    Ok((current, expected))
}

/// A unified diff from `current` to `expected`, for a stale-docs message.
pub fn unified_diff(current: &str, expected: &str, path: &Path) -> String {
    similar::TextDiff::from_lines(current, expected)
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{} (committed)", path.display()),
            &format!("{} (generated)", path.display()),
        )
        .to_string()
}
