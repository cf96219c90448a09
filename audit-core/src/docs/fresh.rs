//! Keeping a committed document's generated section in step with the code: [`check_fresh`]
//! (read only, for CI), [`update`] (rewrites the section) and [`assert_fresh`] (for a test).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::{SectionError, line_diff, render_markdown, replace_section};
use crate::ResourceSchema;

/// Why a document could not be checked or updated, or why it is not fresh.
#[derive(Debug)]
pub enum DocsError {
    /// The document could not be read or written.
    Io {
        /// The document.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The document has no well-formed generated section.
    Section {
        /// The document.
        path: PathBuf,
        /// What is wrong with its markers.
        source: SectionError,
    },
    /// The document's generated section differs from what the schemas generate.
    Stale(Stale),
}

impl fmt::Display for DocsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DocsError::Section { path, source } => write!(f, "{}: {source}", path.display()),
            DocsError::Stale(stale) => stale.fmt(f),
        }
    }
}

impl std::error::Error for DocsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DocsError::Io { source, .. } => Some(source),
            DocsError::Section { source, .. } => Some(source),
            DocsError::Stale(_) => None,
        }
    }
}

/// A document whose generated section is out of date: what it holds and what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    path: PathBuf,
    current: String,
    expected: String,
}

impl Stale {
    /// The document.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole document as it should be.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// A unified diff from the document as it is to the document as it should be.
    pub fn diff(&self) -> String {
        let path = self.path.display();
        line_diff::unified(
            &self.current,
            &self.expected,
            &format!("{path} (committed)"),
            &format!("{path} (generated)"),
        )
    }
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is stale: its generated tracking tables differ from the code",
            self.path.display()
        )
    }
}

/// Checks that the generated section of the Markdown document at `path` (between
/// [`BEGIN_MARKER`](super::BEGIN_MARKER) and [`END_MARKER`](super::END_MARKER)) holds the
/// tracking tables of `schemas`, as [`render_markdown`] renders them. Only reads the file.
///
/// ```
/// use audit_core::Auditable;
/// use audit_core::docs::{self, BEGIN_MARKER, END_MARKER, DocsError};
///
/// #[derive(Auditable)]
/// struct ApiKey {
///     #[audit(track, id)] id: u64,
/// }
///
/// let path = std::env::temp_dir().join(format!("check-fresh-doctest-{}.md", std::process::id()));
/// std::fs::write(&path, format!("# Keys\n{BEGIN_MARKER}\n{END_MARKER}\n"))?;
/// let schemas = [ApiKey::schema()];
///
/// let Err(DocsError::Stale(stale)) = docs::check_fresh(&path, &schemas) else { panic!() };
/// assert!(stale.diff().contains("+### ApiKey"));
///
/// assert!(docs::update(&path, &schemas)?); // rewritten
/// docs::check_fresh(&path, &schemas)?;
/// assert!(!docs::update(&path, &schemas)?); // already fresh: not written again
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_fresh(path: impl AsRef<Path>, schemas: &[&ResourceSchema]) -> Result<(), DocsError> {
    let path = path.as_ref();
    let (current, expected) = current_and_expected(path, schemas)?;
    if current == expected {
        Ok(())
    } else {
        Err(DocsError::Stale(Stale {
            path: path.to_owned(),
            current,
            expected,
        }))
    }
}

/// Rewrites the generated section of the document at `path` with the tracking tables of
/// `schemas`, keeping the rest of the file byte for byte. Returns whether the file changed; a
/// fresh file is not written. The new text goes to a temporary file beside it that then
/// replaces it, so a failed write (a full disk) leaves the document as it was.
pub fn update(path: impl AsRef<Path>, schemas: &[&ResourceSchema]) -> Result<bool, DocsError> {
    let path = path.as_ref();
    let (current, expected) = current_and_expected(path, schemas)?;
    if current == expected {
        return Ok(false);
    }
    write_replacing(path, &expected).map_err(|source| DocsError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(true)
}

/// Panics, with a diff and the command that regenerates the document, unless the document
/// at `path` is fresh for `schemas` (see [`check_fresh`]). For a test that keeps committed
/// docs honest:
///
/// ```no_run
/// #[test]
/// fn tracking_docs_are_fresh() {
///     let schemas: Vec<_> = audit_core::resources().collect();
///     audit_core::docs::assert_fresh("docs/audit-tracking.md", &schemas, "cargo run --bin audit-docs");
/// }
/// ```
#[track_caller]
pub fn assert_fresh(path: impl AsRef<Path>, schemas: &[&ResourceSchema], regenerate: &str) {
    match check_fresh(path, schemas) {
        Ok(()) => {}
        Err(DocsError::Stale(stale)) => panic!(
            "{stale}; regenerate it with `{regenerate}`\n{}",
            stale.diff()
        ),
        Err(e) => panic!("cannot check the tracking docs: {e}"),
    }
}

/// The largest document read: a tracking-table page is far smaller, and a path that names
/// something else (a device, a database) is refused instead of read without end.
const MAX_DOCUMENT: u64 = 16 * 1024 * 1024;

fn current_and_expected(
    path: &Path,
    schemas: &[&ResourceSchema],
) -> Result<(String, String), DocsError> {
    let current = read_document(path).map_err(|source| DocsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let expected = replace_section(&current, &render_markdown(schemas)).map_err(|source| {
        DocsError::Section {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok((current, expected))
}

fn read_document(path: &Path) -> io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_DOCUMENT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_DOCUMENT {
        return Err(io::Error::other(format!(
            "larger than {MAX_DOCUMENT} bytes: not a tracking-table document"
        )));
    }
    Ok(text)
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`.
fn write_replacing(path: &Path, text: &str) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::docs::{BEGIN_MARKER, END_MARKER};
    use crate::{FieldClass, FieldSchema};

    const FIELDS: &[FieldSchema] = &[FieldSchema::__new(
        "token",
        "token",
        FieldClass::Secret,
        Some("grants access"),
        false,
        false,
    )];
    const KEY: ResourceSchema =
        ResourceSchema::__new("ApiKey", "api_key", &["create"], None, FIELDS);

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "audit-docs-fresh-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, text: &str) -> PathBuf {
            let path = self.0.join("tracking.md");
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn document(section: &str) -> String {
        format!("# Audit\n\nintro\n{BEGIN_MARKER}\n{section}\n{END_MARKER}\nfooter\n")
    }

    #[test]
    fn a_stale_document_is_reported_with_a_diff_and_left_alone() {
        let dir = TempDir::new();
        let path = dir.file(&document("| stale |"));
        let Err(DocsError::Stale(stale)) = check_fresh(&path, &[&KEY]) else {
            panic!("a stale document passed");
        };
        assert_eq!(stale.path(), path);
        let diff = stale.diff();
        assert!(diff.contains("-| stale |"), "{diff}");
        assert!(diff.contains("+### ApiKey"), "{diff}");
        assert!(
            diff.contains("+| `token` | secret | grants access |"),
            "{diff}"
        );
        assert!(diff.starts_with(&format!("--- {} (committed)\n", path.display())));
        assert!(stale.to_string().contains("is stale"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            document("| stale |")
        );
    }

    #[test]
    fn update_rewrites_only_the_section_and_then_the_document_is_fresh() {
        let dir = TempDir::new();
        let path = dir.file(&document("| stale |"));
        assert!(update(&path, &[&KEY]).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Audit\n\nintro\n") && text.ends_with("footer\n"));
        assert!(text.contains("### ApiKey"));
        check_fresh(&path, &[&KEY]).unwrap();
        assert!(
            !update(&path, &[&KEY]).unwrap(),
            "a fresh file is not rewritten"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn missing_markers_and_files_are_errors_that_keep_their_cause() {
        let dir = TempDir::new();
        let path = dir.file("# no markers here\n");
        let err = check_fresh(&path, &[&KEY]).unwrap_err();
        assert!(matches!(
            err,
            DocsError::Section {
                source: SectionError::MissingBegin,
                ..
            }
        ));
        assert!(err.to_string().contains("begin marker is missing"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        assert!(update(&path, &[&KEY]).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# no markers here\n"
        );

        let missing = dir.0.join("nope.md");
        let err = check_fresh(&missing, &[&KEY]).unwrap_err();
        assert!(
            matches!(&err, DocsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(err.to_string().contains("nope.md"));
        assert!(!missing.exists(), "checking never creates the file");
    }

    #[test]
    fn a_fresh_document_passes_and_assert_fresh_names_the_command() {
        let dir = TempDir::new();
        let path = dir.file(&document(""));
        update(&path, &[&KEY]).unwrap();
        assert_fresh(&path, &[&KEY], "cargo run --bin audit-docs");

        let stale = dir.file(&document("| stale |"));
        let panic = std::panic::catch_unwind(|| {
            assert_fresh(&stale, &[&KEY], "cargo run --bin audit-docs");
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("regenerate it with `cargo run --bin audit-docs`"),
            "{message}"
        );
        assert!(message.contains("-| stale |"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_a_document_is_refused_without_reading_it_all() {
        let dir = TempDir::new();
        let binary = dir.0.join("audit.db");
        std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
        let err = check_fresh(&binary, &[&KEY]).unwrap_err();
        assert!(
            matches!(&err, DocsError::Io { source, .. } if source.kind() == io::ErrorKind::InvalidData),
            "{err}"
        );
        // An endless device is read only up to the limit.
        if Path::new("/dev/zero").exists() {
            let err = check_fresh("/dev/zero", &[&KEY]).unwrap_err();
            assert!(err.to_string().contains("larger than"), "{err}");
        }
    }
}
