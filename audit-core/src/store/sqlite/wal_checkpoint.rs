//! WalCheckpoints off the append path: a writer's thread that copies the write-ahead log into
//! the database file, so that an append pays for writing its pages to the log once and not,
//! every thousand pages, for copying the whole log again and syncing both files.
//!
//! SQLite checkpoints in the committing call by default (`wal_autocheckpoint`, 1,000 pages):
//! the commit that passes the mark copies every page of the log into the file and syncs
//! both. On an append of a thousand events that was 28 % of its time. Here the writer's
//! connection only notes how many pages its log holds after each commit (a WAL hook, which
//! replaces SQLite's automatic checkpoint), and:
//!
//! * once the log holds [`BACKGROUND_AFTER_PAGES`] after an append or a purge step, a
//!   background thread, with its own
//!   connection to the file, runs a passive checkpoint (one that never waits for readers or
//!   writers), started the first time it is needed;
//! * if the log still reaches [`INLINE_AFTER_PAGES`] (the thread is behind, failing, or a
//!   reader holds an old snapshot), the append that passes it checkpoints itself, as SQLite
//!   would have: the log stays bounded whatever the thread does.
//!
//! A checkpoint moves pages already committed; it never decides what is stored. One that
//! fails loses nothing (the pages stay in the log, and the next one copies them): it is
//! counted in [`WalCheckpointStats`], with its error, and reported through `tracing` when that
//! feature is on. [`Options::background_wal_checkpoints`](super::Options) turns the thread off.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// Pages in the log after which the background thread checkpoints (SQLite's own automatic
/// checkpoint mark).
const BACKGROUND_AFTER_PAGES: i64 = 1_000;

/// Pages in the log after which the commit that passes them checkpoints itself (64 MiB of
/// 8 KiB pages).
const INLINE_AFTER_PAGES: i64 = 8 * BACKGROUND_AFTER_PAGES;

/// How long the thread's connection waits for a lock while it opens.
const OPEN_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// When checkpoints run, in pages of the log.
#[derive(Debug, Clone, Copy)]
struct Marks {
    background: i64,
    inline: i64,
}

impl Marks {
    const DEFAULT: Marks = Marks {
        background: BACKGROUND_AFTER_PAGES,
        inline: INLINE_AFTER_PAGES,
    };
}

/// What a writer's WAL checkpoints did since it opened the store
/// ([`SqliteStore::wal_checkpoint_stats`](super::SqliteStore::wal_checkpoint_stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalCheckpointStats {
    /// Checkpoints the background thread ran.
    pub background: u64,
    /// Checkpoints commits ran themselves, the log having reached 8,000 pages (the thread
    /// behind, failing, or a reader holding an old snapshot).
    pub inline: u64,
    /// Checkpoints that failed (nothing is lost: their pages stay in the log).
    pub failures: u64,
    /// The last failure's error.
    pub last_failure: Option<String>,
}

/// What the writer's connection, the thread and the store share.
#[derive(Debug, Default)]
struct Shared {
    /// Pages in the log after the writer's last commit.
    log_pages: AtomicI64,
    background: AtomicU64,
    inline: AtomicU64,
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// Whether the last checkpoint failed (so a run of failures is reported once).
    failing: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    /// Counts a checkpoint that ran, or one that failed; a busy one (another connection
    /// was checkpointing) is neither.
    fn outcome(&self, ran: &AtomicU64, result: rusqlite::Result<(i32, i32)>, location: &str) {
        match result {
            // SQLite's answer for a file it does not see in WAL mode.
            Ok((-1, _)) => self.fail(location, &"the connection does not see a WAL"),
            Ok(_) => {
                ran.fetch_add(1, Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed) {
                    #[cfg(feature = "tracing")]
                    tracing::info!(target: "audit_core::store::sqlite", "{location}: checkpoints work again");
                }
            }
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {}
            Err(e) => self.fail(location, &e),
        }
    }

    /// Counts a failure and keeps its error; reports the first of a run through `tracing`.
    fn fail(&self, location: &str, error: &dyn std::fmt::Display) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let message = format!("{location}: checkpoint failed (the log keeps its pages): {error}");
        let first_of_a_run = !self.failing.swap(true, Ordering::Relaxed);
        #[cfg(feature = "tracing")]
        if first_of_a_run {
            tracing::warn!(target: "audit_core::store::sqlite", "{message}");
        }
        #[cfg(not(feature = "tracing"))]
        let _ = first_of_a_run;
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(message);
        }
    }
}

/// The background thread, once started.
#[derive(Debug)]
struct Worker {
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

/// A writer's WAL checkpoints (see the module docs): the background thread's side, or none
/// when SQLite keeps its own.
#[derive(Debug)]
pub(super) struct WalCheckpoints(Option<Background>);

/// What a writer that checkpoints in the background keeps.
#[derive(Debug)]
struct Background {
    shared: Arc<Shared>,
    marks: Marks,
    /// The file the thread checkpoints.
    path: PathBuf,
    location: String,
    worker: Option<Worker>,
}

impl WalCheckpoints {
    /// Takes over the automatic checkpoints of `conn`, a writer's connection to `path`.
    pub(super) fn background(
        conn: &mut Connection,
        path: &Path,
        location: &str,
    ) -> Result<Self, rusqlite::Error> {
        Background::install(conn, path, location, Marks::DEFAULT).map(|b| Self(Some(b)))
    }

    /// Leaves checkpoints to SQLite (a reader, a store in memory, or the option off).
    pub(super) fn sqlites() -> Self {
        Self(None)
    }

    /// After an append or a purge step has committed: wakes the thread if the log is long
    /// enough.
    pub(super) fn after_commit(&mut self) {
        if let Some(background) = &mut self.0 {
            background.after_commit();
        }
    }

    /// What the checkpoints did so far.
    pub(super) fn stats(&self) -> WalCheckpointStats {
        self.0.as_ref().map(Background::stats).unwrap_or_default()
    }
}

impl Background {
    fn install(
        conn: &mut Connection,
        path: &Path,
        location: &str,
        marks: Marks,
    ) -> Result<Self, rusqlite::Error> {
        let shared = Arc::new(Shared::default());
        let (noted, at) = (Arc::clone(&shared), location.to_owned());
        conn.wal_hook(Some(move |wal: &mut Wal, pages| {
            let pages = i64::from(pages);
            noted.log_pages.store(pages, Ordering::Relaxed);
            if pages >= marks.inline {
                let result = wal.checkpoint_v2(CheckpointMode::PASSIVE);
                noted.outcome(&noted.inline, result, &at);
            }
            // An error here would fail a statement whose transaction has committed.
            Ok(())
        }))?;
        Ok(Background {
            shared,
            marks,
            path: path.to_path_buf(),
            location: location.to_owned(),
            worker: None,
        })
    }

    fn after_commit(&mut self) {
        if self.shared.log_pages.load(Ordering::Relaxed) >= self.marks.background {
            self.wake();
        }
    }

    fn stats(&self) -> WalCheckpointStats {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WalCheckpointStats {
            background: count(&self.shared.background),
            inline: count(&self.shared.inline),
            failures: count(&self.shared.failures),
            last_failure: self
                .shared
                .last_failure
                .lock()
                .ok()
                .and_then(|last| last.clone()),
        }
    }

    /// Asks the thread for a checkpoint, starting it the first time.
    fn wake(&mut self) {
        if let Some(worker) = &self.worker {
            match worker.wake.try_send(()) {
                // Full: a wake-up is pending already.
                Ok(()) | Err(TrySendError::Full(())) => return,
                Err(TrySendError::Disconnected(())) => {}
            }
        }
        // Not started, or gone (it ends only when stopped, so this is a panic): (re)start it.
        let (wake, woken) = sync_channel(1);
        let shared = Arc::clone(&self.shared);
        let (path, location) = (self.path.clone(), self.location.clone());
        let spawned = std::thread::Builder::new()
            .name("audit-sqlite-checkpoint".into())
            .spawn(move || run(&path, &location, &shared, &woken));
        match spawned {
            Ok(thread) => {
                let _ = wake.try_send(());
                self.worker = Some(Worker { wake, thread });
            }
            Err(e) => self.shared.fail(&self.location, &e),
        }
    }
}

impl Drop for Background {
    /// Stops the thread after the checkpoint it is running, if any.
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.shared.stop.store(true, Ordering::Relaxed);
            let _ = worker.wake.try_send(());
            let _ = worker.thread.join();
        }
    }
}

/// The thread: a passive checkpoint per wake-up, on its own connection (opened when first
/// needed, and again after it failed to open) until stopped.
fn run(path: &Path, location: &str, shared: &Shared, woken: &Receiver<()>) {
    let mut opened: Option<Connection> = None;
    while woken.recv().is_ok() && !shared.stop.load(Ordering::Relaxed) {
        let conn = match opened {
            Some(ref conn) => conn,
            None => match open(path) {
                Ok(conn) => opened.insert(conn),
                Err(e) => {
                    shared.fail(location, &e);
                    continue;
                }
            },
        };
        let result = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
        shared.outcome(&shared.background, result, location);
    }
}

/// The thread's connection: read and write, never create (the writer made the file). It
/// reads the journal mode once, which is what tells a new connection that the file is in WAL
/// mode (until it has read the file, a checkpoint does nothing).
fn open(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open the file to checkpoint it: {e}"))?;
    conn.busy_timeout(OPEN_BUSY_TIMEOUT)
        .map_err(|e| format!("cannot set a busy timeout: {e}"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the journal mode: {e}"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("the journal mode is {mode}, not WAL"));
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Small marks, so a few transactions pass them.
    const SMALL: Marks = Marks {
        background: 8,
        inline: 32,
    };

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "audit-wal-checkpoint-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("log.db")
    }

    /// A writer's connection to a new WAL file with one table.
    fn writer(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("PRAGMA synchronous = NORMAL; CREATE TABLE t (x BLOB);")
            .unwrap();
        conn
    }

    /// Commits `rows` rows of 3,000 bytes (about a page each) in one transaction.
    fn commit(conn: &mut Connection, rows: usize) {
        let tx = conn.transaction().unwrap();
        for _ in 0..rows {
            tx.execute("INSERT INTO t VALUES (randomblob(3000))", [])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Waits (at most 20 seconds) until `done` holds.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_thread_copies_the_log_into_the_file_and_the_log_starts_over() {
        let path = scratch("background");
        let mut conn = writer(&path);
        let mut checkpoints = Background::install(&mut conn, &path, "test", SMALL).unwrap();
        let empty = std::fs::metadata(&path).unwrap().len();
        let mut committed = 0;
        for _ in 0..4 {
            commit(&mut conn, 5);
            committed += 5;
            checkpoints.after_commit();
        }
        wait_until("a background checkpoint", || {
            checkpoints.stats().background >= 1
        });
        assert!(
            std::fs::metadata(&path).unwrap().len() >= empty + 8 * 4096,
            "the file holds the checkpointed pages while the writer is open"
        );
        // Once a checkpoint has copied all of it, the next transaction writes the log from
        // its beginning: it never reaches the inline mark.
        for _ in 0..200 {
            commit(&mut conn, 1);
            committed += 1;
            checkpoints.after_commit();
            std::thread::sleep(Duration::from_millis(2));
            if checkpoints.shared.log_pages.load(Ordering::Relaxed) < SMALL.background {
                break;
            }
        }
        assert!(checkpoints.shared.log_pages.load(Ordering::Relaxed) < SMALL.background);
        let stats = checkpoints.stats();
        assert_eq!(
            (stats.inline, stats.failures, stats.last_failure),
            (0, 0, None)
        );
        drop(checkpoints);
        drop(conn);
        let reopened = Connection::open(&path).unwrap();
        assert_eq!(rows(&reopened), committed);
    }

    #[test]
    fn a_thread_that_cannot_open_the_file_is_counted_and_commits_bound_the_log() {
        let path = scratch("unopenable");
        let mut conn = writer(&path);
        let mut checkpoints = Background::install(&mut conn, &path, "test", SMALL).unwrap();
        // An operator deletes the file under a running writer: its connection keeps the
        // file open, but the thread cannot open it.
        std::fs::remove_file(&path).unwrap();
        for _ in 0..30 {
            commit(&mut conn, 5);
            checkpoints.after_commit();
            let pages = checkpoints.shared.log_pages.load(Ordering::Relaxed);
            assert!(pages < SMALL.inline + 10, "the log holds {pages} pages");
        }
        wait_until("the failure to be counted", || {
            checkpoints.stats().failures >= 1
        });
        let stats = checkpoints.stats();
        assert!(stats.inline >= 1, "{stats:?}");
        let failure = stats.last_failure.unwrap();
        assert!(
            failure.starts_with("test: checkpoint failed (the log keeps its pages): cannot open the file to checkpoint it"),
            "{failure}"
        );
        assert_eq!(rows(&conn), 150, "every committed row is there");
    }

    #[test]
    fn dropping_stops_the_thread() {
        let path = scratch("drop");
        let mut conn = writer(&path);
        let mut checkpoints = Background::install(&mut conn, &path, "test", SMALL).unwrap();
        commit(&mut conn, 10);
        checkpoints.after_commit();
        assert!(checkpoints.worker.is_some(), "the thread started");
        let shared = Arc::downgrade(&checkpoints.shared);
        drop(checkpoints);
        // The hook's share goes with the connection; the thread's went when it ended.
        drop(conn);
        assert!(
            shared.upgrade().is_none(),
            "the thread still holds its share"
        );
    }

    #[test]
    fn leaving_checkpoints_to_sqlite_starts_no_thread() {
        let path = scratch("sqlites");
        let mut conn = writer(&path);
        let mut checkpoints = WalCheckpoints::sqlites();
        commit(&mut conn, 1_200);
        checkpoints.after_commit();
        assert!(checkpoints.0.is_none(), "nothing to start a thread with");
        assert_eq!(checkpoints.stats(), WalCheckpointStats::default());
        assert!(
            std::fs::metadata(&path).unwrap().len() > 1_000 * 4096,
            "SQLite's own checkpoint copied the log"
        );
    }
}
