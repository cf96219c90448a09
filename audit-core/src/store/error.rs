//! [`StoreError`]: why a store operation failed, keeping the driver's error as its cause.
//!
//! A database failure is [`StoreError::Database`]: what the store was doing (its `context`,
//! e.g. `Postgres at 127.0.0.1:5432/audit: cannot append`) and the driver's error, boxed,
//! which [`Error::source`] returns. Its `Display` carries everything an operator needs to act
//! on: for Postgres the server's message and SQLSTATE (the driver's own text says only
//! `db error`), and for a connection failure the host and port, which the context names.

use std::error::Error;
use std::fmt;

use uuid::Uuid;

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error, or could not be reached.
    Database {
        /// What the store was doing, and where (`SQLite /var/lib/audit.db: cannot append`).
        context: String,
        /// The driver's error (`rusqlite::Error`, `postgres::Error`).
        source: Box<dyn Error + Send + Sync + 'static>,
    },
    /// The request cannot be served as asked (bad cursor, page size, unresolved `me`, a write
    /// to a store opened read-only, …).
    InvalidRequest(String),
    /// The build, the URL or the database at that location does not support this: an unknown
    /// scheme, a missing feature, a file that is not an audit store, a schema too old for a
    /// reader or too new for this build.
    Unsupported(String),
    /// A stored row could not be read back as an event: the database holds something this
    /// store did not write.
    Corrupt(String),
    /// Writing an export or archive failed.
    Io(std::io::Error),
    /// Some events of a batch were refused for reasons tied to each of them (a value the
    /// database cannot hold, a constraint); every other event of the batch was stored.
    Rejected {
        /// Events of the batch that are now stored (including any that already were).
        stored: usize,
        /// The refused events, by id, each with its own error.
        rejected: Vec<(Uuid, StoreError)>,
    },
}

impl StoreError {
    /// A database error with its context.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn database(
        context: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Self {
        StoreError::Database {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Puts `context` in front of a database error's context; other errors are unchanged.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn context(self, context: impl fmt::Display) -> Self {
        match self {
            StoreError::Database {
                context: inner,
                source,
            } => StoreError::Database {
                context: if inner.is_empty() {
                    context.to_string()
                } else {
                    format!("{context}: {inner}")
                },
                source,
            },
            other => other,
        }
    }

    /// Refuses a write to a store opened read-only (at `location`).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn check_writable(read_only: bool, location: &str) -> Result<(), StoreError> {
        if read_only {
            return Err(StoreError::InvalidRequest(format!(
                "{location} was opened read-only: open it with a writer to change it"
            )));
        }
        Ok(())
    }

    /// Whether the database could not be reached, or the connection was lost: the same
    /// operation may succeed once it is back.
    pub fn is_connection(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => driver::is_connection(source.as_ref()),
            _ => false,
        }
    }

    /// Whether the same operation may succeed if tried again later: a lost connection, a
    /// database busy with another writer, a lock or serialization conflict.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => {
                driver::is_connection(source.as_ref()) || driver::is_transient(source.as_ref())
            }
            _ => false,
        }
    }

    /// Whether the error is tied to the values of the events written (a value the database
    /// cannot hold or the driver cannot encode, a constraint): the same events fail again,
    /// while other events would not. A store then isolates the events at fault (see
    /// [`StoreError::Rejected`]).
    pub(crate) fn is_event_error(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => driver::is_data(source.as_ref()),
            _ => false,
        }
    }

    /// The Postgres SQLSTATE of a database error, e.g. `23505`.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::Database { source, .. } => driver::sqlstate(source.as_ref()),
            _ => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database { context, source } => {
                if !context.is_empty() {
                    write!(f, "{context}: ")?;
                }
                driver::describe(source.as_ref(), f)
            }
            StoreError::InvalidRequest(e) | StoreError::Unsupported(e) => f.write_str(e),
            StoreError::Corrupt(e) => write!(f, "stored event cannot be read: {e}"),
            StoreError::Io(e) => write!(f, "write failed: {e}"),
            StoreError::Rejected { stored, rejected } => {
                write!(
                    f,
                    "{} event(s) of the batch rejected, {stored} stored",
                    rejected.len()
                )?;
                for (id, error) in rejected.iter().take(3) {
                    write!(f, "; {id}: {error}")?;
                }
                if rejected.len() > 3 {
                    write!(f, "; and {} more", rejected.len() - 3)?;
                }
                Ok(())
            }
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StoreError::Database { source, .. } => Some(source.as_ref()),
            StoreError::Io(e) => Some(e),
            StoreError::Rejected { rejected, .. } => {
                rejected.first().map(|(_, e)| e as &(dyn Error + 'static))
            }
            StoreError::InvalidRequest(_) | StoreError::Unsupported(_) | StoreError::Corrupt(_) => {
                None
            }
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::database(String::new(), e)
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::database(String::new(), e)
    }
}

/// What each driver's errors mean, found by downcasting the boxed source.
mod driver {
    use std::error::Error;
    use std::fmt;

    type Source<'a> = &'a (dyn Error + Send + Sync + 'static);

    pub(super) fn describe(source: Source<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "postgres")]
        if let Some(e) = source.downcast_ref::<postgres::Error>() {
            return describe_postgres(e, f);
        }
        write!(f, "{source}")
    }

    /// `ERROR: relation "x" does not exist (SQLSTATE 42P01)`, with the server's detail and
    /// hint; for other failures the driver's text and its causes (`error connecting to
    /// server: Connection refused (os error 111)`).
    #[cfg(feature = "postgres")]
    fn describe_postgres(e: &postgres::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = e.as_db_error() {
            write!(
                f,
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            )?;
            if let Some(detail) = db.detail() {
                write!(f, "; detail: {detail}")?;
            }
            if let Some(hint) = db.hint() {
                write!(f, "; hint: {hint}")?;
            }
            return Ok(());
        }
        write!(f, "{e}")?;
        let mut cause = e.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }

    pub(super) fn sqlstate(source: Source<'_>) -> Option<&str> {
        #[cfg(feature = "postgres")]
        if let Some(e) = source.downcast_ref::<postgres::Error>() {
            return e.code().map(|c| c.code());
        }
        let _ = source;
        None
    }

    pub(super) fn is_connection(source: Source<'_>) -> bool {
        #[cfg(feature = "postgres")]
        if let Some(e) = source.downcast_ref::<postgres::Error>() {
            if e.is_closed() {
                return true;
            }
            return match e.code() {
                // connection_exception, admin/crash shutdown, cannot_connect_now.
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }
                // No server error: an I/O failure talking to (or connecting to) the server.
                None => e.source().is_some_and(|c| c.is::<std::io::Error>()),
            };
        }
        let _ = source;
        false
    }

    pub(super) fn is_transient(source: Source<'_>) -> bool {
        #[cfg(feature = "sqlite")]
        if let Some(e) = source.downcast_ref::<rusqlite::Error>() {
            use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
            return matches!(e.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked));
        }
        #[cfg(feature = "postgres")]
        if let Some(e) = source.downcast_ref::<postgres::Error>() {
            // serialization_failure, deadlock_detected, lock_not_available.
            return e
                .code()
                .is_some_and(|c| matches!(c.code(), "40001" | "40P01" | "55P03"));
        }
        let _ = source;
        false
    }

    pub(super) fn is_data(source: Source<'_>) -> bool {
        #[cfg(feature = "sqlite")]
        if let Some(e) = source.downcast_ref::<rusqlite::Error>() {
            use rusqlite::ErrorCode::{ConstraintViolation, TooBig, TypeMismatch};
            return matches!(
                e.sqlite_error_code(),
                Some(ConstraintViolation | TooBig | TypeMismatch)
            ) || matches!(e, rusqlite::Error::ToSqlConversionFailure(_));
        }
        #[cfg(feature = "postgres")]
        if let Some(e) = source.downcast_ref::<postgres::Error>() {
            return match e.code() {
                // data_exception, integrity_constraint_violation, program_limit_exceeded
                // (an index row too large for its index).
                Some(code) => {
                    let code = code.code();
                    code.starts_with("22") || code.starts_with("23") || code == "54000"
                }
                // A value the driver could not encode (`error serializing parameter 3`).
                None => e.to_string().starts_with("error serializing"),
            };
        }
        let _ = source;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_keep_their_cause_and_context() {
        let e = StoreError::database("", std::io::Error::other("disk on fire"))
            .context("SQLite /tmp/a.db")
            .context("cannot append");
        assert_eq!(
            e.to_string(),
            "cannot append: SQLite /tmp/a.db: disk on fire"
        );
        assert_eq!(e.source().unwrap().to_string(), "disk on fire");
        assert!(!e.is_connection() && !e.is_retryable() && !e.is_event_error());
    }

    #[test]
    fn rejections_name_the_events_and_count_the_rest() {
        let rejected = (0..5)
            .map(|i| (Uuid::from_u128(i), StoreError::Corrupt(format!("bad {i}"))))
            .collect();
        let e = StoreError::Rejected {
            stored: 7,
            rejected,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("5 event(s) of the batch rejected, 7 stored"),
            "{text}"
        );
        assert!(text.contains("00000000-0000-0000-0000-000000000002: stored event"));
        assert!(text.ends_with("and 2 more"), "{text}");
        assert!(e.source().unwrap().to_string().contains("bad 0"));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_errors_are_classified() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        let constraint: StoreError = conn
            .execute("INSERT INTO t VALUES (NULL)", [])
            .unwrap_err()
            .into();
        assert!(constraint.is_event_error() && !constraint.is_retryable());
        assert!(constraint.to_string().contains("NOT NULL"), "{constraint}");
        let syntax: StoreError = conn.execute("INSERT INTO", []).unwrap_err().into();
        assert!(!syntax.is_event_error());
    }
}
