//! The embedded store: one SQLite file in WAL mode (feature `sqlite`, bundled SQLite).
//!
//! Times are stored as microseconds since the Unix epoch (UTC), event and request ids as
//! their 16 bytes, so `(time, id)` orders events exactly as the keyset cursor does. Usernames
//! and emails use `COLLATE NOCASE`. Log positions are assigned inside the appending
//! `BEGIN IMMEDIATE` transaction, which holds the file's one write lock until it commits; the
//! table is keyed by them, and its filter indexes are kept per bucket of positions so that an
//! append touches a few pages of each whatever the size of the log (see `layout`).
//!
//! [`SqliteStore::open`] is a writer's open: it creates the file, switches it to WAL and
//! applies pending migrations in one `BEGIN IMMEDIATE` transaction, so writers opening a new
//! file at once all succeed. A writer copies its write-ahead log into the file from a
//! background thread rather than in its appends (see `wal_checkpoint` and
//! [`Options::background_wal_checkpoints`]). [`SqliteStore::open_read_only`] is a reader's,
//! which never writes.

mod append;
mod layout;
mod read;
mod row;
mod schema;
mod summary;
mod wal_checkpoint;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params_from_iter};

use super::columns::{self, COLUMN_LIST};
use super::log::Head;
use super::purge::{self, PurgeSteps};
use super::sql::{self, Dialect, IndexedKey, Param, Scan, SqlRead};
use super::{
    ArchiveFn, ChainRow, ChainSpan, Count, Cursor, LogSpan, Page, PageRequest, PurgeOptions,
    PurgeReport, StorageStats, Store, StoreError, StoredCheckpoint, StoredEvent,
};
use crate::AuditEvent;
use crate::chain::ChainHead;
use crate::query::Filter;

pub use wal_checkpoint::WalCheckpointStats;

/// Options of a writer's open.
///
/// Memory: each connection caches up to [`page_cache_bytes`](Self::page_cache_bytes) of the
/// database's pages (default [`DEFAULT_PAGE_CACHE_BYTES`], 16 MiB) and maps up to
/// [`mmap_bytes`](Self::mmap_bytes) of the file (default 0: off). Readers
/// ([`SqliteStore::open_read_only`]) use the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Additional keys (`additional_fields` entries) the application filters by often, such
    /// as Coder's `build_reason`: each gets an expression index, created when missing.
    pub indexed_keys: Vec<String>,
    /// The most memory the connection's page cache takes, in bytes (SQLite's `cache_size`;
    /// at least one KiB is used). Appends need little of it (they touch the newest few pages
    /// of each index); reads of rare keys and large pages of results gain from more.
    pub page_cache_bytes: usize,
    /// How many bytes of the file SQLite reads through a memory map instead of `read` calls
    /// (SQLite's `mmap_size`; 0 turns it off). Mapped pages live in the operating system's
    /// page cache, shared with other processes reading the file, rather than in this
    /// process's heap.
    pub mmap_bytes: u64,
    /// Whether a background thread copies the write-ahead log into the database file (SQLite's
    /// WAL checkpoints, not the signed checkpoints of the hash chain), rather than the append
    /// whose commit passes 1,000 pages of log (SQLite's default). On by default: appends of
    /// a thousand events ran 1.4–1.5 times as fast (BENCHMARKS.md). The log stays bounded
    /// either way: a commit that finds it at 8,000 pages checkpoints itself. Turn it off where
    /// a writer must not start a thread. See [`SqliteStore::wal_checkpoint_stats`].
    pub background_wal_checkpoints: bool,
}

/// The default [`Options::page_cache_bytes`]: 16 MiB.
pub const DEFAULT_PAGE_CACHE_BYTES: usize = 16 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            indexed_keys: Vec::new(),
            page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES,
            mmap_bytes: 0,
            background_wal_checkpoints: true,
        }
    }
}

impl Options {
    fn memory(&self) -> schema::Memory {
        schema::Memory {
            page_cache_bytes: self.page_cache_bytes,
            mmap_bytes: self.mmap_bytes,
        }
    }
}

/// An SQLite-backed [`Store`].
pub struct SqliteStore {
    /// A writer's WAL checkpoints; dropped (its thread stopped) before the connection closes.
    checkpoints: wal_checkpoint::WalCheckpoints,
    conn: Connection,
    /// Where the store is, for error messages.
    location: String,
    read_only: bool,
    /// The additional keys indexed in this store, when it was opened.
    declared: Vec<IndexedKey>,
    /// Recorded pairs this connection knows are stored.
    recorded: append::Recorded,
}

impl SqliteStore {
    /// Opens the database file at `path` to write: creates it (and its directory) if needed,
    /// enables WAL and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Options::default())
    }

    /// [`open`](Self::open) with options: the application's indexed keys, and memory.
    ///
    /// ```
    /// use audit_core::store::sqlite::{Options, SqliteStore};
    ///
    /// let dir = std::env::temp_dir().join(format!("audit-open-with-{}", std::process::id()));
    /// let options = Options {
    ///     indexed_keys: vec!["build_reason".into()],
    ///     page_cache_bytes: 64 << 20,
    ///     ..Options::default()
    /// };
    /// let store = SqliteStore::open_with(dir.join("audit.db"), options)?;
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), audit_core::store::StoreError>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let location = location(path);
        let keys = indexed_keys(&options)?;
        let mut conn =
            schema::open_writer(path, &keys, options.memory()).map_err(|e| e.context(&location))?;
        let checkpoints = if options.background_wal_checkpoints {
            wal_checkpoint::WalCheckpoints::background(&mut conn, path, &location)
                .map_err(|e| StoreError::from(e).context(&location))?
        } else {
            wal_checkpoint::WalCheckpoints::sqlites()
        };
        Self::with_connection(conn, checkpoints, location, false)
    }

    fn with_connection(
        conn: Connection,
        checkpoints: wal_checkpoint::WalCheckpoints,
        location: String,
        read_only: bool,
    ) -> Result<Self, StoreError> {
        let declared = layout::declared_keys(&conn).map_err(|e| e.context(&location))?;
        Ok(SqliteStore {
            checkpoints,
            conn,
            location,
            read_only,
            declared,
            recorded: append::Recorded::default(),
        })
    }

    /// Opens the audit store at `path` to read. Never creates, migrates or writes anything
    /// (not even the journal mode); a store in a directory this process cannot write can be
    /// read. Fails on a file that is not an audit store, or whose schema version is not this
    /// build's.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let location = location(path);
        let conn = schema::open_reader(path, Options::default().memory()).map_err(|e| match e {
            StoreError::Unsupported(message) => {
                StoreError::Unsupported(format!("{}: {message}", path.display()))
            }
            other => other.context(&location),
        })?;
        Self::with_connection(
            conn,
            wal_checkpoint::WalCheckpoints::sqlites(),
            location,
            true,
        )
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        schema::prepare_writer(&conn, &[], Options::default().memory())?;
        let checkpoints = wal_checkpoint::WalCheckpoints::sqlites();
        Self::with_connection(conn, checkpoints, "SQLite in memory".into(), false)
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// What this writer's WAL checkpoints did since it opened the store: how many ran in the
    /// background and in commits, and how many failed, with the last error (see
    /// [`Options::background_wal_checkpoints`]). All zero for a reader, a store in memory,
    /// or a writer that leaves WAL checkpoints to SQLite.
    ///
    /// ```
    /// use audit_core::store::sqlite::SqliteStore;
    ///
    /// let dir = std::env::temp_dir().join(format!("audit-wal-checkpoints-{}", std::process::id()));
    /// let store = SqliteStore::open(dir.join("audit.db"))?;
    /// let stats = store.wal_checkpoint_stats();
    /// assert_eq!((stats.failures, stats.last_failure), (0, None));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), audit_core::store::StoreError>(())
    /// ```
    pub fn wal_checkpoint_stats(&self) -> WalCheckpointStats {
        self.checkpoints.stats()
    }

    /// Whether this store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn writable(&self) -> Result<(), StoreError> {
        StoreError::check_writable(self.read_only, &self.location)
    }
}

impl PurgeSteps for SqliteStore {
    fn purge_target(&mut self, cutoff: DateTime<Utc>) -> Result<(Head, u64), StoreError> {
        // One read transaction: the head and the first event kept from one snapshot.
        let tx = self.conn.transaction()?;
        let head = append::head_row(&tx)?;
        let first_kept: Option<i64> = tx
            .query_row(
                "SELECT seq FROM audit_logs WHERE time >= ?1 ORDER BY seq LIMIT 1",
                [cutoff.timestamp_micros()],
                |r| r.get(0),
            )
            .optional()?;
        tx.commit()?;
        let target = match first_kept {
            Some(first) => columns::seq_value(first)?.saturating_sub(1),
            None => head.seq,
        };
        Ok((head, target))
    }

    fn purged_through(&mut self) -> Result<u64, StoreError> {
        Ok(append::head_row(&self.conn)?.purged_through)
    }

    fn events_between(&mut self, after: u64, through: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM audit_logs WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
            *COLUMN_LIST
        ))?;
        let rows = stmt.query_map(
            [columns::seq_param(after), columns::seq_param(through)],
            row::read,
        )?;
        rows.map(|r| r?).collect()
    }

    fn delete_through(&mut self, from: u64, through: u64) -> Result<Option<u64>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if append::head_row(&tx)?.purged_through != from {
            return Ok(None);
        }
        // The anchor: the hash of the last event purged, which the first one kept links to.
        let anchor: Option<Vec<u8>> = tx
            .query_row(
                "SELECT hash FROM audit_logs WHERE seq = ?1",
                [columns::seq_param(through)],
                |r| r.get(0),
            )
            .optional()?;
        let anchor = anchor.ok_or_else(|| purge::missing_anchor(through))?;
        let deleted = tx.execute(
            "DELETE FROM audit_logs WHERE seq <= ?1",
            [columns::seq_param(through)],
        )?;
        // Buckets left with no position to hold (their time spans may stay wider than what
        // the partly purged one holds: spans only ever need to cover its events).
        tx.execute(
            &format!("DELETE FROM {} WHERE bucket < ?1", layout::BUCKETS_TABLE),
            [layout::bucket_of(through.saturating_add(1))],
        )?;
        summary::purge_groups(&tx, layout::bucket_of(through.saturating_add(1)))?;
        tx.execute(
            "UPDATE audit_log_head SET purged_through = ?1, purged_hash = ?2 WHERE id = 1",
            rusqlite::params![columns::seq_param(through), anchor],
        )?;
        tx.commit()?;
        self.checkpoints.after_commit();
        Ok(Some(deleted as u64))
    }
}

fn location(path: &Path) -> String {
    format!("SQLite {}", PathBuf::from(path).display())
}

fn indexed_keys(options: &Options) -> Result<Vec<IndexedKey>, StoreError> {
    options
        .indexed_keys
        .iter()
        .map(|k| IndexedKey::new(k))
        .collect()
}

impl SqlRead for SqliteStore {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn query_events(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter().map(to_sql)), row::read)?;
        rows.map(|r| r?).collect()
    }

    fn query_count(&mut self, sql: &str, params: &[Param]) -> Result<i64, StoreError> {
        let params = params_from_iter(params.iter().map(to_sql));
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.query_row(params, |r| r.get(0))?)
    }

    fn select(
        &mut self,
        filter: &Filter,
        scan: Scan<'_>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        match read::select(self, filter, scan, limit)? {
            Some(events) => Ok(events),
            None => sql::select(self, filter, scan, limit),
        }
    }

    fn count_capped(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        match read::count(self, filter, cap)? {
            Some(count) => Ok(count),
            None => sql::count(self, filter, cap),
        }
    }
}

impl Store for SqliteStore {
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.writable()?;
        if events.is_empty() {
            return Ok(());
        }
        let (conn, recorded) = (&mut self.conn, &mut self.recorded);
        let appended = super::batch::append_isolating(events, &mut |chunk| {
            append::append_once(conn, recorded, chunk)
        });
        self.checkpoints.after_commit();
        appended.map_err(|e| e.context(format!("{}: cannot append", self.location)))
    }

    fn recorded_actions(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT resource_type, action FROM audit_recorded_actions ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StoreError::from(e).context(&self.location))
    }

    fn page(&mut self, filter: &Filter, request: &PageRequest) -> Result<Page, StoreError> {
        sql::page(self, filter, request).map_err(|e| e.context(&self.location))
    }

    fn page_newer(
        &mut self,
        filter: &Filter,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<Page, StoreError> {
        sql::page_newer(self, filter, cursor, limit).map_err(|e| e.context(&self.location))
    }

    fn count(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError> {
        self.count_capped(filter, cap)
            .map_err(|e| e.context(&self.location))
    }

    fn newer(
        &mut self,
        filter: &Filter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        sql::newer(self, filter, after, limit).map_err(|e| e.context(&self.location))
    }

    fn head(&mut self) -> Result<LogSpan, StoreError> {
        append::head_row(&self.conn)
            .map(|h| h.span())
            .map_err(|e| e.context(&self.location))
    }

    fn purge(
        &mut self,
        options: &PurgeOptions,
        archive: Option<&mut ArchiveFn<'_>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PurgeReport, StoreError> {
        if !options.dry_run {
            self.writable()?;
        }
        let location = self.location.clone();
        purge::purge(self, options, archive, progress)
            .map_err(|e| e.context(format!("{location}: cannot purge")))
    }

    fn stats(&mut self) -> Result<StorageStats, StoreError> {
        self.storage_stats().map_err(|e| e.context(&self.location))
    }

    fn chain(&mut self) -> Result<ChainSpan, StoreError> {
        append::head_row(&self.conn)
            .map(|h| h.chain())
            .map_err(|e| e.context(&self.location))
    }

    fn scan_chain(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(&ChainSpan, ChainRow),
    ) -> Result<ChainSpan, StoreError> {
        let location = self.location.clone();
        self.scan(from, visit)
            .map_err(|e| e.context(format!("{location}: cannot read the chain")))
    }

    fn add_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        self.writable()?;
        self.conn
            .execute(
                "INSERT INTO audit_checkpoints (seq, hash, time, note) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    columns::seq_param(checkpoint.head.seq),
                    checkpoint.head.hash.as_bytes().as_slice(),
                    checkpoint.time.timestamp_micros(),
                    checkpoint.note
                ],
            )
            .map_err(|e| {
                StoreError::from(e)
                    .context(format!("{}: cannot record the checkpoint", self.location))
            })?;
        Ok(())
    }

    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, hash, time, note FROM audit_checkpoints ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (seq, hash, time, note) = row?;
            Ok(StoredCheckpoint {
                head: ChainHead {
                    seq: columns::seq_value(seq)?,
                    hash: columns::hash_value(&hash)?,
                },
                time: DateTime::from_timestamp_micros(time)
                    .ok_or_else(|| StoreError::Corrupt(format!("checkpoint time {time}")))?,
                note,
            })
        })
        .collect()
    }
}

impl SqliteStore {
    /// The chain span and every row from `from` on, in one read transaction (a snapshot, in
    /// WAL mode), streamed.
    fn scan(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(&ChainSpan, ChainRow),
    ) -> Result<ChainSpan, StoreError> {
        let tx = self.conn.transaction()?;
        let span = append::head_row(&tx)?.chain();
        {
            let mut stmt = tx.prepare(&format!(
                "SELECT {} FROM audit_logs WHERE seq >= ?1 ORDER BY seq",
                *COLUMN_LIST
            ))?;
            let mut rows = stmt.query([columns::seq_param(from)])?;
            while let Some(row) = rows.next()? {
                visit(&span, row::read_chain_row(row));
            }
        }
        tx.commit()?;
        Ok(span)
    }
}

impl SqliteStore {
    fn storage_stats(&mut self) -> Result<StorageStats, StoreError> {
        let (rows, oldest, newest): (i64, Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(time), MAX(time) FROM audit_logs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let page_count: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        // Per-object sizes come from the dbstat virtual table when SQLite has it.
        let sizes: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT COALESCE(SUM(CASE WHEN name = 'audit_logs' THEN pgsize END), 0), \
                        COALESCE(SUM(CASE WHEN name LIKE 'audit_logs_%' THEN pgsize END), 0) \
                 FROM dbstat",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .unwrap_or(None);
        let (table, index) = sizes.unwrap_or((0, 0));
        let as_time = |micros: Option<i64>| micros.and_then(DateTime::from_timestamp_micros);
        Ok(StorageStats {
            rows: rows as u64,
            table_bytes: table as u64,
            index_bytes: index as u64,
            total_bytes: (page_size * page_count) as u64,
            oldest: as_time(oldest),
            newest: as_time(newest),
            partitions: Vec::new(),
        })
    }
}

pub(super) fn to_sql(param: &Param) -> SqlValue {
    match param {
        Param::Text(s) => SqlValue::Text(s.clone()),
        Param::Time(t) => SqlValue::Integer(t.timestamp_micros()),
        Param::Id(id) => SqlValue::Blob(id.as_bytes().to_vec()),
        Param::Uuid(id) => SqlValue::Blob(id.as_bytes().to_vec()),
        Param::Int(i) => SqlValue::Integer(*i),
        Param::Real(f) => SqlValue::Real(*f),
        Param::Seq(seq) => SqlValue::Integer(columns::seq_param(*seq)),
    }
}
