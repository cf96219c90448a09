//! [`AuditApi`]: everything the routes share — the store's readers, the authorizer, the
//! auditor that records reads, the filter vocabulary, the log watcher — and the steps every
//! route takes: who is calling, what may they read, what did they ask for, and recording
//! that they read it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, watch};

use audit_core::chain::VerifierKey;
use audit_core::query::{AdditionalKey, Filter, Vocabulary};
use audit_core::store::Count;
use audit_core::{AuditEvent, Auditor};

use crate::auth::{Authorizer, Principal, Rejection, Scope};
use crate::error::ApiError;
use crate::log::{Log, Readers};
use crate::routes::COUNT_CAP;
use crate::verify::Verification;
use crate::viewer::Viewer;
use crate::watcher::{self, Tip, WatchOptions};

/// The resource type of the events that record reads of the log.
pub const AUDIT_LOG_RESOURCE: &str = "audit_log";
/// The action of a page or stream read of the log.
pub const READ: &str = audit_core::action::READ;
/// The action of an export of the log.
pub const EXPORT: &str = "export";

/// How long a store call may take before the request gets a 503.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// How often the log watcher reads the head when nothing wakes it.
const DEFAULT_POLL: Duration = Duration::from_millis(250);
/// The safety-net poll when Postgres notifications wake the watcher.
const LISTEN_POLL: Duration = Duration::from_secs(2);
/// How often an idle stream says it is alive (an SSE comment, a WebSocket ping).
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Open streams at most, server-wide.
const DEFAULT_MAX_STREAMS: usize = 10_000;
/// A store-derived vocabulary is reread at most this often (when a query does not parse).
const VOCABULARY_REFRESH: Duration = Duration::from_secs(1);

/// The shared state of the audit routes. Cheap to clone.
///
/// ```no_run
/// use audit_core::Auditor;
/// use audit_http::{AuditApi, Readers, tokens::TokenFile};
///
/// # async fn run(auditor: Auditor) -> Result<(), Box<dyn std::error::Error>> {
/// let api = AuditApi::builder(Readers::url("sqlite://audit.db".parse()?))
///     .authorizer(TokenFile::new("tokens.json").authorizer()?)
///     .auditor(auditor)
///     .build()?;
/// let app: axum::Router = audit_http::router(api);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuditApi {
    inner: Arc<Inner>,
}

struct Inner {
    log: Log,
    authorizer: Box<dyn Authorizer>,
    auditor: Auditor,
    vocabulary: VocabularySource,
    watch_options: WatchOptions,
    watcher: OnceCell<watch::Receiver<Tip>>,
    closing: watch::Sender<bool>,
    streams: Arc<Semaphore>,
    keep_alive: Duration,
    counts: CappedCounts,
    /// The public keys the store's checkpoints are checked with.
    checkpoint_keys: Vec<VerifierKey>,
    /// One verification of the log at a time.
    verifying: tokio::sync::Mutex<()>,
    /// The outcome of the latest verification.
    last_verification: Mutex<Option<Verification>>,
    viewer: Viewer,
}

/// The filters whose count reached the cap, with the log's first position when it did.
/// Appends only add events, so such a count stays capped until a purge moves the first
/// position: a busy log's first page (every filter that matches much) then costs no count.
#[derive(Default)]
struct CappedCounts(Mutex<HashMap<CountKey, u64>>);

/// A filter as a count cache key: its canonical query string and its scope.
type CountKey = (String, Option<BTreeSet<String>>);

/// At most this many filters are remembered; then the cache starts over.
const MAX_CACHED_COUNTS: usize = 1024;

enum VocabularySource {
    Fixed(Arc<Vocabulary>),
    FromStore {
        keys: Vec<AdditionalKey>,
        cached: Mutex<Option<(Arc<Vocabulary>, Instant)>>,
    },
}

/// Configures an [`AuditApi`]. Both an authorizer and an auditor are required: the log is
/// never served open by accident, and reading it is always audited.
#[must_use = "call .build()"]
pub struct AuditApiBuilder {
    readers: Readers,
    authorizer: Option<Box<dyn Authorizer>>,
    auditor: Option<Auditor>,
    vocabulary: VocabularySource,
    poll: Option<Duration>,
    deadline: Duration,
    max_streams: usize,
    keep_alive: Duration,
    checkpoint_keys: Vec<VerifierKey>,
    viewer: Viewer,
}

/// Why an [`AuditApi`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No [`AuditApiBuilder::authorizer`].
    NoAuthorizer,
    /// No [`AuditApiBuilder::auditor`].
    NoAuditor,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BuildError::NoAuthorizer => {
                "the audit log is never served without an authorizer: call .authorizer(…) \
                 (for `audit serve`, pass --tokens FILE)"
            }
            BuildError::NoAuditor => {
                "reads of the audit log are themselves audited: call .auditor(…) with the \
                 application's Auditor"
            }
        })
    }
}

impl std::error::Error for BuildError {}

impl AuditApiBuilder {
    /// Who may read: see [`Authorizer`].
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.authorizer = Some(Box::new(authorizer));
        self
    }

    /// Where reads and exports of the log are recorded (as `read` / `export` events on the
    /// `audit_log` resource, by the reader).
    pub fn auditor(mut self, auditor: Auditor) -> Self {
        self.auditor = Some(auditor);
        self
    }

    /// The filter vocabulary (default: [`Vocabulary::default`], the application's registered
    /// resources). The `audit_log` resource with its `read` and `export` actions is always
    /// added.
    pub fn vocabulary(mut self, vocabulary: Vocabulary) -> Self {
        self.vocabulary = VocabularySource::Fixed(Arc::new(vocabulary));
        self
    }

    /// Takes the vocabulary from what the store has recorded (for a server without the
    /// application's types, such as `audit serve`), plus the application's `additional_keys`
    /// (for example [`BUILD_REASON`](audit_core::query::BUILD_REASON)).
    pub fn vocabulary_from_store(mut self, additional_keys: Vec<AdditionalKey>) -> Self {
        self.vocabulary = VocabularySource::FromStore {
            keys: additional_keys,
            cached: Mutex::new(None),
        };
        self
    }

    /// How often the log watcher reads the store's head (default 250 ms; 2 s when Postgres
    /// notifications wake it).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = Some(interval.max(Duration::from_millis(10)));
        self
    }

    /// How long a store call may take before the request is answered 503 (default 10 s).
    pub fn store_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many streams (SSE and WebSocket) may be open at once (default 10,000); one more
    /// is answered 503.
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    /// How often an idle stream sends a keep-alive (an SSE comment, a WebSocket ping;
    /// default 15 s), so that proxies do not close it.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval.max(Duration::from_millis(10));
        self
    }

    /// How the web viewer at `/audit` signs people in and how it is reached (default:
    /// [`Viewer::default`], the application's own sessions). `audit serve` uses
    /// [`Viewer::token_sign_in`].
    pub fn viewer(mut self, viewer: Viewer) -> Self {
        self.viewer = viewer;
        self
    }

    /// The API.
    ///
    /// The public keys the checkpoints the store keeps are checked with, when the log is
    /// verified (`GET /api/v2/audit/verify`). Without them, those checkpoints are listed as
    /// not checked.
    pub fn checkpoint_keys(mut self, keys: Vec<VerifierKey>) -> Self {
        self.checkpoint_keys = keys;
        self
    }

    /// # Errors
    /// No authorizer or no auditor.
    pub fn build(self) -> Result<AuditApi, BuildError> {
        let authorizer = self.authorizer.ok_or(BuildError::NoAuthorizer)?;
        let auditor = self.auditor.ok_or(BuildError::NoAuditor)?;
        let poll = self.poll.unwrap_or(if self.readers.listen.is_some() {
            LISTEN_POLL
        } else {
            DEFAULT_POLL
        });
        let log = Log::new(
            self.readers.open,
            self.readers.max_connections,
            self.deadline,
        );
        Ok(AuditApi {
            inner: Arc::new(Inner {
                log,
                authorizer,
                auditor,
                vocabulary: match self.vocabulary {
                    VocabularySource::Fixed(v) => {
                        VocabularySource::Fixed(Arc::new(with_audit_log((*v).clone())))
                    }
                    from_store => from_store,
                },
                watch_options: WatchOptions {
                    poll,
                    listen: self.readers.listen,
                },
                watcher: OnceCell::new(),
                closing: watch::channel(false).0,
                streams: Arc::new(Semaphore::new(self.max_streams)),
                keep_alive: self.keep_alive,
                counts: CappedCounts::default(),
                checkpoint_keys: self.checkpoint_keys,
                verifying: tokio::sync::Mutex::new(()),
                last_verification: Mutex::new(None),
                viewer: self.viewer,
            }),
        })
    }
}

/// A caller who may read the log, and what they may read.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pub principal: Principal,
    pub scope: Scope,
}

impl Reader {
    /// `filter` as this reader's store filter: `username:me` as them, narrowed to their scope.
    pub(crate) fn scoped(&self, filter: &Filter) -> Filter {
        self.scope
            .restrict(filter.resolve_me(&self.principal.username))
    }
}

impl AuditApi {
    /// Starts configuring the API over these readers.
    pub fn builder(readers: Readers) -> AuditApiBuilder {
        AuditApiBuilder {
            readers,
            authorizer: None,
            auditor: None,
            vocabulary: VocabularySource::Fixed(Arc::new(Vocabulary::default())),
            poll: None,
            deadline: DEFAULT_DEADLINE,
            max_streams: DEFAULT_MAX_STREAMS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            checkpoint_keys: Vec::new(),
            viewer: Viewer::default(),
        }
    }

    /// The outcome of the latest verification of the log (`GET /api/v2/audit/verify`), if
    /// one ran: what the viewer's "integrity: verified up to #N at T" line shows.
    pub fn last_verification(&self) -> Option<Verification> {
        self.inner
            .last_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Verifies the log now, on the server's behalf (one verification at a time), and keeps
    /// the outcome for the viewer's integrity line. `audit serve --verify-every` calls it; it
    /// is not recorded as a read of the log, since it shows no one any event. An owner's
    /// `GET /api/v2/audit/verify` does the same and is recorded.
    pub async fn verify(&self) -> Result<Verification, ApiError> {
        let (report, at) = self.verify_log().await?;
        Ok(Verification::of(&report, at))
    }

    /// Verifies the log (one verification at a time) and keeps the outcome.
    pub(crate) async fn verify_log(
        &self,
    ) -> Result<
        (
            audit_core::chain::VerifyReport,
            chrono::DateTime<chrono::Utc>,
        ),
        ApiError,
    > {
        let _one_at_a_time = self.inner.verifying.lock().await;
        let options = audit_core::store::verify::VerifyOptions {
            keys: self.inner.checkpoint_keys.clone(),
            ..Default::default()
        };
        let report = self.log().verify(options).await?;
        let at = chrono::Utc::now();
        *self
            .inner
            .last_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Verification::of(&report, at));
        Ok((report, at))
    }

    /// Ends every open stream (SSE streams end, WebSockets close with 1001 "going away") and
    /// refuses new ones: call it when the server starts shutting down, so that a graceful
    /// shutdown does not wait forever for streams that never end. [`serve`](crate::serve)
    /// does.
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Whether [`close_streams`](Self::close_streams) was called.
    pub fn is_closing(&self) -> bool {
        *self.inner.closing.borrow()
    }

    pub(crate) fn log(&self) -> &Log {
        &self.inner.log
    }

    pub(crate) fn viewer(&self) -> &Viewer {
        &self.inner.viewer
    }

    pub(crate) fn keep_alive_interval(&self) -> Duration {
        self.inner.keep_alive
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// The caller, if they may read the log at all: 401 without a valid credential, 403
    /// without a reading role (that attempt is recorded as a failed read).
    pub(crate) async fn reader(
        &self,
        parts: &Parts,
        access: &Access<'_>,
    ) -> Result<Reader, ApiError> {
        let principal = match self.inner.authorizer.authorize(parts) {
            Ok(p) => p,
            Err(Rejection::Unauthenticated) => return Err(ApiError::unauthenticated()),
            Err(Rejection::Forbidden) => return Err(ApiError::forbidden()),
        };
        match principal.scope() {
            Some(scope) => Ok(Reader { principal, scope }),
            None => {
                // Record the refused attempt; the answer is 403 whether or not that works.
                let _ = self.record(parts, &principal, access, 403).await;
                Err(ApiError::forbidden())
            }
        }
    }

    /// The store filter for `q`: parsed against the vocabulary, `username:me` as the caller,
    /// narrowed to the caller's scope.
    pub(crate) async fn filter(&self, reader: &Reader, q: &str) -> Result<Filter, ApiError> {
        Ok(reader.scoped(&self.parse(q).await?))
    }

    /// `q` parsed against the vocabulary, as the caller wrote it (`username:me` unresolved,
    /// no scope): what links that change one term of a query start from.
    pub(crate) async fn parse(&self, q: &str) -> Result<Filter, ApiError> {
        match &self.inner.vocabulary {
            VocabularySource::Fixed(v) => v.parse(q).map_err(ApiError::query),
            VocabularySource::FromStore { cached, .. } => {
                let current = cached.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some((v, at)) = &current {
                    match v.parse(q) {
                        Ok(f) => return Ok(f),
                        Err(e) if at.elapsed() < VOCABULARY_REFRESH => {
                            return Err(ApiError::query(e));
                        }
                        // The store may have recorded new resource types since: reread it.
                        Err(_) => {}
                    }
                }
                self.reload_vocabulary()
                    .await?
                    .parse(q)
                    .map_err(ApiError::query)
            }
        }
    }

    /// The filter vocabulary: the application's, or what the store has recorded (read once,
    /// then reread when a query names something it does not know).
    pub(crate) async fn vocabulary(&self) -> Result<Arc<Vocabulary>, ApiError> {
        match &self.inner.vocabulary {
            VocabularySource::Fixed(v) => Ok(Arc::clone(v)),
            VocabularySource::FromStore { cached, .. } => {
                let current = cached.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match current {
                    Some((v, _)) => Ok(v),
                    None => self.reload_vocabulary().await,
                }
            }
        }
    }

    async fn reload_vocabulary(&self) -> Result<Arc<Vocabulary>, ApiError> {
        let (keys, cached) = match &self.inner.vocabulary {
            VocabularySource::Fixed(v) => return Ok(Arc::clone(v)),
            VocabularySource::FromStore { keys, cached } => (keys, cached),
        };
        let v = Arc::new(with_audit_log(self.log().vocabulary(keys.clone()).await?));
        *cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Arc::clone(&v), Instant::now()));
        Ok(v)
    }

    /// Records that `principal` read (or tried to read) the log. A read that cannot be
    /// recorded is refused (503): the log is never read unaudited.
    pub(crate) async fn record(
        &self,
        parts: &Parts,
        principal: &Principal,
        access: &Access<'_>,
        status: u16,
    ) -> Result<(), ApiError> {
        let mut event = AuditEvent::builder(access.action)
            .actor(principal.actor())
            .resource_type(AUDIT_LOG_RESOURCE)
            .status(status)
            .field("endpoint", access.endpoint)
            .field("query", access.q);
        if let Some(format) = access.format {
            event = event.field("format", format);
        }
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            event = event.ip(addr.ip());
        }
        if let Some(ua) = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        {
            event = event.user_agent(ua);
        }
        if let Some(id) = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::try_parse(v.trim()).ok())
        {
            event = event.request_id(id);
        }
        let event = event.build();
        let auditor = self.inner.auditor.clone();
        // `record` may block when the auditor's queue is full: never on the async runtime.
        let recorded = tokio::task::spawn_blocking(move || auditor.record(event)).await;
        match recorded {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                crate::error::log_error(&format!(
                    "a read of the audit log could not be audited: {e}"
                ));
                Err(ApiError::unavailable(
                    "This read of the audit log could not be audited, so it was refused; try again later.",
                ))
            }
            Err(_) => Err(ApiError::internal(
                "Recording this read failed unexpectedly.",
            )),
        }
    }

    /// How many events `filter` selects, up to [`COUNT_CAP`]: from the store, unless this
    /// filter's count was already capped and nothing was purged since.
    pub(crate) async fn count(&self, filter: &Filter) -> Result<Count, ApiError> {
        let first = match self.tips().await {
            Ok(tips) => Some(tips.borrow().first),
            Err(_) => None,
        };
        let key: CountKey = (filter.to_query_string(), filter.organizations().cloned());
        let counts = &self.inner.counts.0;
        if let Some(first) = first {
            let cached = counts.lock().unwrap_or_else(|e| e.into_inner()).get(&key) == Some(&first);
            if cached {
                return Ok(Count::AtLeast(COUNT_CAP));
            }
        }
        let count = self.log().count(filter, COUNT_CAP).await?;
        if let (Count::AtLeast(_), Some(first)) = (count, first) {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            if counts.len() >= MAX_CACHED_COUNTS {
                counts.clear();
            }
            counts.insert(key, first);
        }
        Ok(count)
    }

    /// A slot for one more stream, or 503.
    pub(crate) fn stream_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if self.is_closing() {
            return Err(ApiError::unavailable("The server is shutting down."));
        }
        Arc::clone(&self.inner.streams)
            .try_acquire_owned()
            .map_err(|_| ApiError::unavailable("Too many streams are open; try again later."))
    }

    /// The log watcher's tips, starting the watcher on first use.
    pub(crate) async fn tips(&self) -> Result<watch::Receiver<Tip>, ApiError> {
        let rx = self
            .inner
            .watcher
            .get_or_try_init(|| {
                watcher::start(
                    self.inner.log.clone(),
                    self.inner.watch_options.clone(),
                    self.closing(),
                )
            })
            .await?;
        Ok(rx.clone())
    }
}

/// What a request reads, for the record of it.
pub(crate) struct Access<'a> {
    pub action: &'static str,
    pub endpoint: &'static str,
    pub q: &'a str,
    pub format: Option<&'static str>,
}

/// `vocabulary` plus the resource type of reads of the log itself, so that
/// `resource_type:audit_log action:export` finds who exported it.
fn with_audit_log(vocabulary: Vocabulary) -> Vocabulary {
    vocabulary.resource(AUDIT_LOG_RESOURCE, &[READ, EXPORT, crate::verify::VERIFY])
}
