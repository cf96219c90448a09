//! Durable storage of audit events: one [`Store`] trait, an embedded SQLite implementation
//! (feature `sqlite`) and a Postgres one for deployments that outgrow a machine (feature
//! `postgres`). Both pass the same conformance suite.
//!
//! Writing:
//! * every stored event gets a log position, [`StoredEvent::seq`], that increases in commit
//!   order with no gaps: a store assigns it inside the appending transaction, under a lock
//!   that serialises appenders, so positions become visible in order and a follower
//!   ([`Store::newer`]) that goes on from the last position it saw misses nothing. Live
//!   streams and the hash chain use it too;
//! * every stored event is chained: its [`StoredEvent::hash`] is `SHA-256(previous hash ‖
//!   canonical bytes)`, computed in the same transaction under the same lock, the head row
//!   keeps the newest hash and a purge the hash of the last event it removed (see
//!   [`crate::chain`]; [`verify`] checks a store, and takes signed checkpoints of it);
//! * appends are idempotent: a retried batch that had committed is not stored twice and
//!   consumes no positions. An event is identified by its time and id, as page cursors
//!   identify it (an id stored with another time is another event);
//! * every string is storable: U+0000 (NUL), which Postgres refuses in `text` and `jsonb`,
//!   becomes U+FFFD in every string of an event (text fields, diff names and values,
//!   additional field keys and values), in both stores alike;
//! * one bad event does not fail its batch: the others are stored and it is reported
//!   ([`StoreError::Rejected`]).
//!
//! Reading is built for a log that grows without bound:
//! * queries are the [`Filter`] language translated to parameterised SQL, served by indexes;
//! * results come newest first with the id as a unique tiebreaker, one [`Page`] at a time,
//!   with a [`Cursor`] (keyset pagination), so page 100 costs what page 1 costs;
//! * counts are capped ([`Count::AtLeast`]), so a page never waits for a full count;
//! * [`export`] streams any number of events in constant memory;
//! * [`Store::purge`] deletes a prefix of the log in small batches, optionally archiving
//!   first, so the retained log is always the contiguous span [`Store::head`] reports;
//! * [`Store::scan_chain`] reads the whole log in one snapshot for verification.
//!
//! Writers create and migrate; readers never write. [`StoreUrl::open`] (the store backend,
//! `audit purge`) creates a missing store and applies pending migrations;
//! [`StoreUrl::open_read_only`] (`audit query`, `export`, `stats`, `tail`, `verify`) opens without
//! changing anything and fails clearly on something that is not an audit store.

use chrono::{DateTime, Utc};

use crate::AuditEvent;
use crate::query::Filter;

mod batch;
mod chain;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod columns;
mod error;
pub mod export;
mod handle;
mod log;
mod page;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod purge;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod storable;
mod url;
#[cfg(feature = "chain")]
pub mod verify;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use chain::{ChainRow, StoredCheckpoint};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use columns::COLUMNS;
pub use error::StoreError;
pub use handle::{StoreGuard, StoreHandle};
pub use log::{ChainSpan, LogSpan, StoredEvent};
pub use page::{Count, Cursor, MAX_PAGE_SIZE, Page, PageRequest};
pub use url::StoreUrl;

/// Receives each batch of a purge before it is deleted (see [`Store::purge`]).
pub type ArchiveFn<'a> = dyn FnMut(&[StoredEvent]) -> Result<(), StoreError> + 'a;

/// An event store. Implementations are synchronous; run them on a blocking thread (the
/// auditor's backend workers do).
pub trait Store: Send {
    /// Appends a batch of events in one transaction, numbering them with log positions
    /// (after the store's head, in batch order).
    ///
    /// * Idempotent: events already stored (a retried batch that had committed) are skipped
    ///   and consume no position; so are repeats within the batch. An event is identified by
    ///   its time (to the microsecond) and id.
    /// * Every U+0000 (NUL) in any string of an event (text fields, diff names and values,
    ///   additional field keys and values) is stored as U+FFFD, in every store alike.
    /// * When the batch fails for a reason tied to some of its events (a value or a
    ///   constraint the database refuses), the others are stored and the error is
    ///   [`StoreError::Rejected`], naming the refused events. Any other error stores
    ///   nothing of the batch.
    /// * A store opened read-only refuses with [`StoreError::InvalidRequest`].
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// One page of the events `filter` selects, newest first. `filter` must not hold an
    /// unresolved `username:me` (see [`Filter::resolve_me`]).
    fn page(&mut self, filter: &Filter, request: &PageRequest) -> Result<Page, StoreError>;

    /// The page just newer than `cursor`: the `limit` events `filter` selects that come right
    /// before `cursor` in page order, newest first — what a "Newer" link shows when paging
    /// back towards the first page. `next` is the cursor to pass here again for the page
    /// newer still (the newest event of this page), `None` when this page holds the newest
    /// event `filter` selects. Costs what [`page`](Self::page) costs, at any depth.
    ///
    /// The default implementation refuses with [`StoreError::Unsupported`]; the SQL stores
    /// implement it.
    fn page_newer(
        &mut self,
        filter: &Filter,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let _ = (filter, cursor, limit);
        Err(StoreError::Unsupported(
            "this store cannot page towards newer events; start again from the first page".into(),
        ))
    }

    /// How many events `filter` selects, counting at most `cap` of them.
    fn count(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError>;

    /// What a follower polls for: the events `filter` selects whose position is after
    /// `after`, in log order, at most `limit` (1 to [`MAX_PAGE_SIZE`]). With `after` `None`,
    /// the newest `limit` matching events, still in log order (oldest first).
    ///
    /// Positions are visible in order, so following the last returned position misses
    /// nothing. When fewer than `limit` events come back, every matching event up to the
    /// head read by a [`head`](Self::head) call made before this one has been returned.
    fn newer(
        &mut self,
        filter: &Filter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The positions the log holds: the highest assigned (to start following from "now"),
    /// and the lowest retained (a follower at `after` has missed purged events when
    /// `first > after + 1`).
    fn head(&mut self) -> Result<LogSpan, StoreError>;

    /// Deletes events older than `options.older_than`, as a prefix of the log, so that what
    /// remains stays contiguous: every event up to the position before the first event at or
    /// after the cut-off. An event older than the cut-off that was stored after a newer one
    /// stays until a later purge reaches it.
    ///
    /// Works in batches of `options.batch_size` events, each in its own short transaction
    /// that also records how far the log is purged. Each batch is handed to `archive` (if
    /// given) before it is deleted; an archive error stops the purge with that batch kept.
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

    /// Where the hash chain stands: the purge anchor and the head, as the head row records
    /// them.
    fn chain(&mut self) -> Result<ChainSpan, StoreError> {
        Err(chain::unsupported())
    }

    /// Reads the log from position `from` on, in log order and in one consistent snapshot,
    /// for verification: hands each row to `visit` with the chain span of that snapshot, as
    /// an event or, when it cannot be read as one, as what could be read of it, and returns
    /// the span. Memory stays constant whatever the size of the log. Never writes.
    fn scan_chain(
        &mut self,
        _from: u64,
        _visit: &mut dyn FnMut(&ChainSpan, ChainRow),
    ) -> Result<ChainSpan, StoreError> {
        Err(chain::unsupported())
    }

    /// Records a signed checkpoint (`audit checkpoint` does, besides writing it out).
    fn add_checkpoint(&mut self, _checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        Err(chain::unsupported())
    }

    /// The checkpoints recorded, oldest first.
    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        Err(chain::unsupported())
    }
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
pub(crate) fn recorded_pairs<'a>(
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> std::collections::BTreeSet<(&'a str, &'a str)> {
    events
        .into_iter()
        .map(|e| (e.resource_type.as_str(), e.action.as_str()))
        .collect()
}

/// Opens the store a URL names to write (see [`StoreUrl`]): `sqlite://path/to/file.db`
/// (also a bare path), or `postgres://user@host/db`.
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
    url.parse::<StoreUrl>()?.open()
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
    /// Every log position up to this one is purged: the log now starts after it.
    pub purged_through: u64,
}

/// Rows and disk usage, like Coder's `pg_total_relation_size` report.
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
