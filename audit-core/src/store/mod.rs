//! Durable storage of audit events: one [`Store`] trait, an embedded SQLite implementation
//! (feature `sqlite`) and a Postgres one for deployments that outgrow a machine (feature
//! `postgres`). Both pass the same conformance suite.
//!
//! Reading is built for a log that grows without bound:
//! * queries are the [`Filter`] language translated to parameterised SQL, served by indexes;
//! * results come newest first with the id as a unique tiebreaker, one [`Page`] at a time,
//!   with a [`Cursor`] (keyset pagination), so page 100 costs what page 1 costs;
//! * counts are capped ([`Count::AtLeast`]), so a page never waits for a full count;
//! * [`export`] streams any number of events in constant memory;
//! * [`Store::purge`] deletes by age in small batches, optionally archiving first.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::AuditEvent;
use crate::query::Filter;

pub mod export;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// The most events one page may hold.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Receives each batch of a purge before it is deleted (see [`Store::purge`]).
pub type ArchiveFn<'a> = dyn FnMut(&[AuditEvent]) -> Result<(), StoreError> + 'a;

/// An event store. Implementations are synchronous; run them on a blocking thread (the
/// auditor's backend workers do).
pub trait Store: Send {
    /// Appends a batch of events in one transaction: all are stored or none.
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// One page of the events `filter` selects, newest first. `filter` must not hold an
    /// unresolved `username:me` (see [`Filter::resolve_me`]).
    fn page(&mut self, filter: &Filter, request: &PageRequest) -> Result<Page, StoreError>;

    /// How many events `filter` selects, counting at most `cap` of them.
    fn count(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError>;

    /// Events newer than `after` (all of them if `None`), oldest first, at most `limit`:
    /// what `tail` polls for.
    fn newer(
        &mut self,
        filter: &Filter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The position of the newest stored event, to start tailing from "now".
    fn newest(&mut self) -> Result<Option<Cursor>, StoreError>;

    /// Deletes events older than `options.older_than`, in batches of `options.batch_size`
    /// rows, each batch in its own short transaction. Each batch is handed to `archive`
    /// (if given) before it is deleted; an archive error stops the purge with nothing of that
    /// batch deleted.
    fn purge(
        &mut self,
        options: &PurgeOptions,
        archive: Option<&mut ArchiveFn<'_>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PurgeReport, StoreError>;

    /// Rows and disk usage.
    fn stats(&mut self) -> Result<StorageStats, StoreError>;

    /// Every `(resource_type, action)` pair ever stored, sorted: what a tool without the
    /// application's types (the `audit` CLI) validates filters against.
    fn recorded_actions(&mut self) -> Result<Vec<(String, String)>, StoreError>;
}

/// The filter vocabulary of a store: the resource types and actions it has recorded, plus
/// the application's `additional_keys` (for example
/// [`query::BUILD_REASON`](crate::query::BUILD_REASON)).
pub fn vocabulary(
    store: &mut dyn Store,
    additional_keys: &[crate::query::AdditionalKey],
) -> Result<crate::query::Vocabulary, StoreError> {
    let recorded = store.recorded_actions()?;
    let vocabulary = recorded.iter().fold(
        crate::query::Vocabulary::new(),
        |v, (resource_type, action)| v.resource(resource_type, &[action.as_str()]),
    );
    Ok(additional_keys
        .iter()
        .cloned()
        .fold(vocabulary, |v, key| v.with_key(key)))
}

/// The distinct `(resource_type, action)` pairs of a batch.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn recorded_pairs(events: &[AuditEvent]) -> std::collections::BTreeSet<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.resource_type.as_str(), e.action.as_str()))
        .collect()
}

/// Opens the store a URL names: `sqlite://path/to/file.db` (also a bare path), or
/// `postgres://user@host/db`.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// let dir = std::env::temp_dir().join(format!("audit-open-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let url = format!("sqlite://{}", dir.join("audit.db").display());
/// let mut store = audit_core::store::open(&url).unwrap();
/// assert_eq!(store.stats().unwrap().rows, 0);
/// # }
/// let err = audit_core::store::open("mysql://localhost/audit").err().unwrap();
/// assert!(err.to_string().contains("sqlite://"));
/// ```
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return open_postgres(url);
    }
    let path = match url.strip_prefix("sqlite://") {
        Some(path) => path,
        None if url.contains("://") => {
            return Err(StoreError::Unsupported(format!(
                "unknown store URL `{url}`: use sqlite://path/to/audit.db or postgres://user@host/database"
            )));
        }
        None => url,
    };
    if path.is_empty() {
        return Err(StoreError::Unsupported(
            "empty SQLite path: use sqlite://path/to/audit.db".into(),
        ));
    }
    open_sqlite(path)
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<Box<dyn Store>, StoreError> {
    let options = postgres::Options::default();
    Ok(Box::new(postgres::PostgresStore::connect(url, options)?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_: &str) -> Result<Box<dyn Store>, StoreError> {
    Err(StoreError::Unsupported(
        "this build has no Postgres support: enable the `postgres` feature of audit-core".into(),
    ))
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &str) -> Result<Box<dyn Store>, StoreError> {
    Ok(Box::new(sqlite::SqliteStore::open(path)?))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(_: &str) -> Result<Box<dyn Store>, StoreError> {
    Err(StoreError::Unsupported(
        "this build has no SQLite support: enable the `sqlite` feature of audit-core".into(),
    ))
}

/// A [`Store`] as a backend of the [`Auditor`](crate::Auditor): each batch the pipeline
/// hands over is appended in one transaction. With Coder's store/export routing, give it a
/// [`Router::stores`](crate::Router::stores) filter.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use audit_core::{action, Actor, Auditor};
/// use audit_core::store::{sqlite::SqliteStore, StoreBackend, Store, PageRequest};
/// use audit_core::query::Filter;
///
/// let backend = StoreBackend::new(SqliteStore::in_memory().unwrap());
/// let store = backend.handle();
/// let auditor = Auditor::builder().backend(backend).build().unwrap();
/// auditor.record(audit_core::AuditEvent::builder(action::LOGIN).actor(Actor::new("1", "alice", "a@x")).resource_type("api_key").build()).unwrap();
/// auditor.flush();
/// let page = store.lock().unwrap().page(&Filter::default(), &PageRequest::first(10)).unwrap();
/// assert_eq!(page.events[0].actor.username, "alice");
/// # }
/// ```
pub struct StoreBackend {
    store: std::sync::Arc<std::sync::Mutex<Box<dyn Store>>>,
    name: String,
}

impl StoreBackend {
    /// Wraps a store; the backend is named `store`.
    pub fn new(store: impl Store + 'static) -> Self {
        Self::from_box(Box::new(store))
    }

    /// Wraps a boxed store, such as [`open`] returns.
    pub fn from_box(store: Box<dyn Store>) -> Self {
        StoreBackend {
            store: std::sync::Arc::new(std::sync::Mutex::new(store)),
            name: "store".into(),
        }
    }

    /// Renames the backend (for stats and error messages).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A handle to the same store, to read it while the auditor writes.
    pub fn handle(&self) -> std::sync::Arc<std::sync::Mutex<Box<dyn Store>>> {
        std::sync::Arc::clone(&self.store)
    }
}

impl crate::Backend for StoreBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), crate::BackendError> {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        store
            .append(events)
            .map_err(|e| crate::BackendError::new(e.to_string()))
    }
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Events per page, 1 to [`MAX_PAGE_SIZE`].
    pub limit: usize,
    /// Where the previous page ended; `None` for the first page.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The first page, `limit` events long.
    pub fn first(limit: usize) -> Self {
        PageRequest {
            limit,
            cursor: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: usize, cursor: Cursor) -> Self {
        PageRequest {
            limit,
            cursor: Some(cursor),
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn checked_limit(&self) -> Result<usize, StoreError> {
        if (1..=MAX_PAGE_SIZE).contains(&self.limit) {
            Ok(self.limit)
        } else {
            Err(StoreError::InvalidRequest(format!(
                "page size {} is out of range: use 1 to {MAX_PAGE_SIZE}",
                self.limit
            )))
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts, or `None` if this is the last page.
    pub next: Option<Cursor>,
}

/// A position in the log: the `(time, id)` of an event. Opaque text in URLs and CLIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    time_micros: i64,
    id: Uuid,
}

impl Cursor {
    /// The position of `event`.
    pub fn of(event: &AuditEvent) -> Self {
        Cursor {
            time_micros: event.time.timestamp_micros(),
            id: event.id,
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.time_micros).unwrap_or_default()
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.time_micros, self.id.simple())
    }
}

impl std::str::FromStr for Cursor {
    type Err = StoreError;

    /// ```
    /// use audit_core::store::Cursor;
    /// let err = "nonsense".parse::<Cursor>().unwrap_err();
    /// assert!(err.to_string().contains("invalid cursor"));
    /// ```
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let invalid = || {
            StoreError::InvalidRequest(format!(
                "invalid cursor `{}`: pass the `next` cursor of a previous page unchanged",
                s.chars().take(80).collect::<String>()
            ))
        };
        let (time, id) = s.split_once('.').ok_or_else(invalid)?;
        let time_micros = i64::from_str_radix(time, 16).map_err(|_| invalid())?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        DateTime::from_timestamp_micros(time_micros).ok_or_else(invalid)?;
        Ok(Cursor { time_micros, id })
    }
}

/// A count that stops at a cap, so counting never costs more than reading `cap` index rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The exact number.
    Exact(u64),
    /// At least this many (the cap was reached).
    AtLeast(u64),
}

impl fmt::Display for Count {
    /// `1,234` or `10,000+`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, plus) = match self {
            Count::Exact(n) => (*n, ""),
            Count::AtLeast(n) => (*n, "+"),
        };
        let digits = n.to_string();
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "{grouped}{plus}")
    }
}

/// What to purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOptions {
    /// Events strictly older than this are purged.
    pub older_than: DateTime<Utc>,
    /// Rows per batch (and per transaction).
    pub batch_size: usize,
    /// Count what would be purged; delete nothing.
    pub dry_run: bool,
}

impl PurgeOptions {
    /// Purge events older than `older_than`, 5,000 rows per batch.
    pub fn older_than(older_than: DateTime<Utc>) -> Self {
        PurgeOptions {
            older_than,
            batch_size: 5_000,
            dry_run: false,
        }
    }
}

/// What a purge did (or, for a dry run, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PurgeReport {
    /// Events deleted (or that would be).
    pub events: u64,
    /// Batches (transactions) used.
    pub batches: u64,
    /// Whole partitions dropped (Postgres with partitioning).
    pub partitions_dropped: u64,
}

/// Rows and disk usage, like the seed's `pg_total_relation_size` report.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct StorageStats {
    /// Stored events.
    pub rows: u64,
    /// Bytes used by the table's rows.
    pub table_bytes: u64,
    /// Bytes used by its indexes.
    pub index_bytes: u64,
    /// Everything, including free pages and the write-ahead log where known.
    pub total_bytes: u64,
    /// The oldest event's time.
    pub oldest: Option<DateTime<Utc>>,
    /// The newest event's time.
    pub newest: Option<DateTime<Utc>>,
    /// Time-range partitions (Postgres with partitioning), oldest first.
    pub partitions: Vec<String>,
}

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    Database(String),
    /// The request cannot be served as asked (bad cursor, page size, unresolved `me`, …).
    InvalidRequest(String),
    /// The build or the URL does not support this store.
    Unsupported(String),
    /// A stored row could not be read back as an event.
    Corrupt(String),
    /// Writing an export or archive failed.
    Io(std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(e) => write!(f, "database error: {e}"),
            StoreError::InvalidRequest(e) | StoreError::Unsupported(e) => f.write_str(e),
            StoreError::Corrupt(e) => write!(f, "stored event cannot be read: {e}"),
            StoreError::Io(e) => write!(f, "write failed: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_as_text() {
        let cursor = Cursor {
            time_micros: 1_700_000_000_123_456,
            id: Uuid::from_u128(42),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        for bad in [
            "",
            ".",
            "zz.00000000000000000000000000000001",
            "1.not-a-uuid",
            "7fffffffffffffff.00000000000000000000000000000001",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_render_with_separators_and_a_plus_when_capped() {
        assert_eq!(Count::Exact(0).to_string(), "0");
        assert_eq!(Count::Exact(1234).to_string(), "1,234");
        assert_eq!(Count::AtLeast(10_000).to_string(), "10,000+");
        assert_eq!(Count::Exact(1_000_000).to_string(), "1,000,000");
    }

    #[test]
    fn page_sizes_are_checked() {
        assert!(PageRequest::first(0).checked_limit().is_err());
        assert!(
            PageRequest::first(MAX_PAGE_SIZE + 1)
                .checked_limit()
                .is_err()
        );
        assert_eq!(PageRequest::first(50).checked_limit().unwrap(), 50);
    }
}
