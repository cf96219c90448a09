//! [`StoreUrl`]: where a store is, parsed once, opened to write or to read.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{Store, StoreError};

/// The location of a store: `sqlite://path/to/audit.db` (or a bare path) or
/// `postgres://user@host/db` (also `postgresql://`).
///
/// [`open`](Self::open) is for writers: it creates the store if needed and migrates its
/// schema. [`open_read_only`](Self::open_read_only) is for readers: it never creates,
/// migrates or otherwise changes anything, and fails on a location that is not an audit
/// store or whose schema does not match this build.
///
/// ```
/// use audit_core::store::StoreUrl;
///
/// let url: StoreUrl = "sqlite:///var/lib/audit.db".parse()?;
/// assert_eq!(url, StoreUrl::Sqlite("/var/lib/audit.db".into()));
/// assert_eq!("audit.db".parse::<StoreUrl>()?, StoreUrl::Sqlite("audit.db".into()));
/// assert!(matches!("postgresql://me@db/audit".parse()?, StoreUrl::Postgres(_)));
/// // A password never shows in the URL's text.
/// let pg: StoreUrl = "postgres://me:hunter2@db/audit".parse()?;
/// assert_eq!(pg.to_string(), "postgres://me:***@db/audit");
///
/// let err = "mysql://localhost/audit".parse::<StoreUrl>().unwrap_err();
/// assert!(err.to_string().contains("sqlite://"));
/// # Ok::<(), audit_core::store::StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A Postgres connection URL, as given.
    Postgres(String),
}

const SUPPORTED: &str =
    "use sqlite://path/to/audit.db (or a bare path) or postgres://user@host/database";

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        let path = match url.strip_prefix("sqlite://") {
            Some(path) => path,
            None if url.contains("://") => {
                let scheme = url.split("://").next().unwrap_or_default();
                return Err(StoreError::Unsupported(format!(
                    "unsupported store URL scheme `{}://`: {SUPPORTED}",
                    scheme.chars().take(40).collect::<String>()
                )));
            }
            None => url,
        };
        if path.is_empty() {
            return Err(StoreError::Unsupported(format!(
                "the store URL names no file: {SUPPORTED}"
            )));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db?password=secret` → `postgres://user:***@host/db?password=***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((key, _)) if key == "password" => format!("{key}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl StoreUrl {
    /// Opens the store to write: creates it if needed and applies pending migrations.
    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        match self {
            StoreUrl::Sqlite(path) => backend::sqlite(path, false),
            StoreUrl::Postgres(url) => backend::postgres(url, false),
        }
    }

    /// Opens the store to read: never creates, migrates or changes it. Fails clearly on a
    /// location that is not an audit store, or whose schema is older ("open it once with a
    /// writer") or newer ("upgrade") than this build's. Writes through it are refused.
    pub fn open_read_only(&self) -> Result<Box<dyn Store>, StoreError> {
        match self {
            StoreUrl::Sqlite(path) => backend::sqlite(path, true),
            StoreUrl::Postgres(url) => backend::postgres(url, true),
        }
    }
}

mod backend {
    use super::*;

    #[cfg(feature = "sqlite")]
    pub(super) fn sqlite(
        path: &std::path::Path,
        read_only: bool,
    ) -> Result<Box<dyn Store>, StoreError> {
        use crate::store::sqlite::SqliteStore;
        Ok(Box::new(if read_only {
            SqliteStore::open_read_only(path)?
        } else {
            SqliteStore::open(path)?
        }))
    }

    #[cfg(not(feature = "sqlite"))]
    pub(super) fn sqlite(_: &std::path::Path, _: bool) -> Result<Box<dyn Store>, StoreError> {
        Err(StoreError::Unsupported(
            "this build has no SQLite support: enable the `sqlite` feature of audit-core".into(),
        ))
    }

    #[cfg(feature = "postgres")]
    pub(super) fn postgres(url: &str, read_only: bool) -> Result<Box<dyn Store>, StoreError> {
        use crate::store::postgres::{Options, PostgresStore};
        let options = Options::default();
        Ok(Box::new(if read_only {
            PostgresStore::connect_read_only(url, options)?
        } else {
            PostgresStore::connect(url, options)?
        }))
    }

    #[cfg(not(feature = "postgres"))]
    pub(super) fn postgres(_: &str, _: bool) -> Result<Box<dyn Store>, StoreError> {
        Err(StoreError::Unsupported(
            "this build has no Postgres support: enable the `postgres` feature of audit-core"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_parse_and_bad_ones_say_what_is_supported() {
        assert_eq!(
            "sqlite://a/b.db".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite("a/b.db".into())
        );
        for bad in ["sqlite://", "", "mysql://x/y", "http://evil"] {
            let err = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(
                err.contains("sqlite://path") && err.contains("postgres://"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            ("postgres://u:p@h/d", "postgres://u:***@h/d"),
            (
                "postgres://u:p:q@h:5432/d?x=1",
                "postgres://u:***@h:5432/d?x=1",
            ),
            ("postgres://u@h/d", "postgres://u@h/d"),
            (
                "postgres://h/d?password=x&a=b",
                "postgres://h/d?password=***&a=b",
            ),
        ] {
            assert_eq!(StoreUrl::Postgres(url.into()).to_string(), shown);
        }
    }
}
