//! The only way the server touches the store: a bounded pool of reader connections, each
//! call run on tokio's blocking pool, with a deadline.
//!
//! Stores are synchronous. Every call here takes a permit (at most `max_connections` calls
//! run at once; a caller that waits longer than the deadline gets a 503), takes an idle
//! connection or opens one, and runs on `spawn_blocking`, so no store call ever blocks the
//! async runtime. The permit travels into the blocking task: a call stuck in the database
//! keeps its permit until it returns, so a hung store shrinks the pool instead of piling
//! up threads. A connection that failed with a database error is dropped and reopened on
//! next use, so a restarted database heals without a restart of the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use audit_core::query::{AdditionalKey, Filter};
use audit_core::store::export::Format;
use audit_core::store::{
    Count, Cursor, LogSpan, Page, PageRequest, Store, StoreError, StoreUrl, StoredEvent,
};

use crate::error::{ApiError, log_error};

/// Opens one reader connection.
pub(crate) type OpenFn = dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync;

/// Where the server's reader connections come from: a store URL, or a function that opens
/// one connection.
///
/// ```
/// use audit_http::Readers;
///
/// let readers = Readers::url("sqlite://target/audit-demo/audit.db".parse()?).max_connections(4);
/// # let _ = readers;
/// # Ok::<(), audit_core::store::StoreError>(())
/// ```
pub struct Readers {
    pub(crate) open: Box<OpenFn>,
    pub(crate) max_connections: usize,
    pub(crate) listen: Option<String>,
}

impl Readers {
    /// Readers of the store at `url`, opened read-only: serving never creates, migrates or
    /// changes a store. For Postgres, the server also `LISTEN`s for appends.
    pub fn url(url: StoreUrl) -> Self {
        let listen = match &url {
            StoreUrl::Postgres(postgres) => Some(postgres.clone()),
            StoreUrl::Sqlite(_) => None,
        };
        Readers {
            open: Box::new(move || url.open_read_only()),
            max_connections: DEFAULT_CONNECTIONS,
            listen,
        }
    }

    /// Readers opened by `open`, one connection per call. Each must see every committed
    /// append (for SQLite: a connection to the same file, not an in-memory database).
    pub fn open_with(
        open: impl Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync + 'static,
    ) -> Self {
        Readers {
            open: Box::new(open),
            max_connections: DEFAULT_CONNECTIONS,
            listen: None,
        }
    }

    /// At most `n` store calls at once (default 8).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Also wake streams on Postgres `NOTIFY audit_events` (as [`Readers::url`] does for a
    /// Postgres URL), listening on a connection to `url`.
    pub fn listen_postgres(mut self, url: impl Into<String>) -> Self {
        self.listen = Some(url.into());
        self
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("max_connections", &self.max_connections)
            .field("listen", &self.listen.is_some())
            .finish_non_exhaustive()
    }
}

/// Reader connections when not configured.
const DEFAULT_CONNECTIONS: usize = 8;

/// How many events one read of a stream takes from the store at most.
pub(crate) const FOLLOW_BATCH: usize = 100;

/// Readers of one store.
#[derive(Clone)]
pub(crate) struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    open: Box<OpenFn>,
    idle: Mutex<Vec<Box<dyn Store>>>,
    permits: Arc<Semaphore>,
    deadline: Duration,
}

/// Why a store call failed, as the client will hear it.
#[derive(Debug)]
pub(crate) enum LogError {
    /// Every reader is busy, or the store did not answer in time: 503.
    Busy(String),
    /// The store failed.
    Store(StoreError),
    /// The blocking task panicked: 500.
    Panicked,
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Busy(m) => ApiError::unavailable(m),
            LogError::Panicked => {
                log_error("a store call panicked");
                ApiError::internal(
                    "The audit store failed unexpectedly; the error is logged on the server.",
                )
            }
            LogError::Store(StoreError::InvalidRequest(m)) => {
                ApiError::new(axum::http::StatusCode::BAD_REQUEST, m)
            }
            LogError::Store(e @ (StoreError::Corrupt(_) | StoreError::Unsupported(_))) => {
                log_error(&format!("audit store: {e}"));
                ApiError::internal(
                    "The audit store cannot be read by this server; the error is logged on the server.",
                )
            }
            LogError::Store(e) => {
                log_error(&format!("audit store: {e}"));
                ApiError::unavailable(
                    "The audit store is unavailable; try again later. The error is logged on the server.",
                )
            }
        }
    }
}

impl Log {
    /// Readers opened with `open`: at most `max_connections` at once, each call abandoned
    /// (503) after `deadline`.
    pub(crate) fn new(open: Box<OpenFn>, max_connections: usize, deadline: Duration) -> Self {
        Log {
            inner: Arc::new(Inner {
                open,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max_connections.max(1))),
                deadline,
            }),
        }
    }

    /// Runs `f` on a reader connection, on the blocking pool, within the deadline.
    pub(crate) async fn with_store<T, F>(&self, f: F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(Some(self.inner.deadline), f).await
    }

    /// Runs `f` on a reader connection, on the blocking pool. Waiting for a connection always
    /// has the deadline; running `f` has it if `deadline` is given.
    async fn blocking<T, F>(&self, deadline: Option<Duration>, f: F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let wait = self.inner.deadline;
        let permit = tokio::time::timeout(wait, Arc::clone(&self.inner.permits).acquire_owned())
            .await
            .map_err(|_| busy(wait))?
            .map_err(|_| LogError::Busy("The server is shutting down.".into()))?;
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || inner.run(permit, f));
        let joined = match deadline {
            Some(d) => tokio::time::timeout(d, task).await.map_err(|_| busy(d))?,
            None => task.await,
        };
        joined
            .map_err(|_| LogError::Panicked)?
            .map_err(LogError::Store)
    }

    /// One page, newest first.
    pub(crate) async fn page(
        &self,
        filter: &Filter,
        request: PageRequest,
    ) -> Result<Page, LogError> {
        let filter = filter.clone();
        self.with_store(move |s| s.page(&filter, &request)).await
    }

    /// The page just newer than `cursor`, newest first.
    pub(crate) async fn page_newer(
        &self,
        filter: &Filter,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Page, LogError> {
        let filter = filter.clone();
        self.with_store(move |s| s.page_newer(&filter, &cursor, limit))
            .await
    }

    /// The capped count.
    pub(crate) async fn count(&self, filter: &Filter, cap: u64) -> Result<Count, LogError> {
        let filter = filter.clone();
        self.with_store(move |s| s.count(&filter, cap)).await
    }

    /// Events after log position `after` (the newest `limit` if `None`), oldest first.
    pub(crate) async fn newer(
        &self,
        filter: &Filter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let filter = filter.clone();
        self.with_store(move |s| s.newer(&filter, after, limit))
            .await
    }

    /// Every event after `after`, unfiltered, if there are at most `limit`: what the log
    /// watcher shares with every stream.
    pub(crate) async fn newer_all(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        self.newer(&Filter::default(), Some(after), limit).await
    }

    /// Verifies the log's hash chain (on the blocking pool, holding one connection, with no
    /// deadline: the whole log is read).
    pub(crate) async fn verify(
        &self,
        options: audit_core::store::verify::VerifyOptions,
    ) -> Result<audit_core::chain::VerifyReport, LogError> {
        use audit_core::store::verify::{VerifyError, verify};
        self.blocking(None, move |s| {
            verify(s, &options).map_err(|e| match e {
                VerifyError::Store(e) => e,
                // Only archives and checkpoint signing fail otherwise: neither happens here.
                other => StoreError::InvalidRequest(other.to_string()),
            })
        })
        .await
    }

    /// The retained span of log positions.
    pub(crate) async fn head(&self) -> Result<LogSpan, LogError> {
        self.with_store(|s| s.head()).await
    }

    /// The filter vocabulary the store has recorded, plus `additional_keys`.
    pub(crate) async fn vocabulary(
        &self,
        additional_keys: Vec<AdditionalKey>,
    ) -> Result<audit_core::query::Vocabulary, LogError> {
        self.with_store(move |s| audit_core::store::vocabulary(s, &additional_keys))
            .await
    }

    /// Writes every event `filter` selects, newest first, into `out` (on the blocking pool,
    /// holding one connection for the whole export). `ready` is told, before anything is
    /// written, whether the store answered; if it did not, nothing is exported.
    pub(crate) async fn export(
        &self,
        filter: &Filter,
        format: Format,
        out: Box<dyn std::io::Write + Send>,
        ready: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ) -> Result<u64, LogError> {
        let filter = filter.clone();
        // No deadline on the export itself: it runs as long as the client reads.
        self.blocking(None, move |s| {
            // The caller answers with this error; the export itself did nothing.
            if let Err(e) = s.head() {
                let _ = ready.send(Err(e));
                return Ok(0);
            }
            let _ = ready.send(Ok(()));
            let mut out = out;
            audit_core::store::export::export(s, &filter, format, &mut out, &mut |_| {})
        })
        .await
    }
}

impl Drop for Inner {
    /// Idle connections are closed on a thread of their own: closing a Postgres connection
    /// blocks, which must not happen on the async runtime (and panics there).
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return drop(idle);
        }
        let spawned = std::thread::Builder::new()
            .name("audit-http-close".into())
            .spawn(move || drop(idle));
        if let Err(e) = spawned {
            log_error(&format!("cannot close the store's idle connections: {e}"));
        }
    }
}

impl Inner {
    fn run<T>(
        &self,
        permit: OwnedSemaphorePermit,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _permit = permit;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut store = match idle {
            Some(s) => s,
            None => (self.open)()?,
        };
        let result = f(&mut *store);
        // A connection that failed at the database level may be broken: drop it and open a
        // fresh one next time.
        if !matches!(result, Err(StoreError::Database { .. })) {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(store);
        }
        result
    }
}

fn busy(deadline: Duration) -> LogError {
    LogError::Busy(format!(
        "The audit store did not answer within {} ms; try again later.",
        deadline.as_millis()
    ))
}
