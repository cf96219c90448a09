//! The [`Auditor`] and its builder; the guide to the pipeline is on [`Auditor`].

mod lane;
mod retry;
mod stats;
mod worker;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use self::lane::{Lane, LaneState};
pub use self::retry::RetryPolicy;
pub use self::stats::{AuditorStats, BackendStats};
use self::worker::Worker;
pub(crate) use self::worker::log_error;
use crate::backend::Backend;
use crate::event::EventBuilder;
use crate::{Actor, AuditEvent, Auditable};

/// What recording does when a backend's queue is full. See [Overflow](Auditor#overflow) in [`Auditor`]'s docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Wait for room: nothing is lost.
    #[default]
    Block,
    /// Refuse the event with [`RecordError::QueueFull`]: the caller can fail the request.
    FailClosed,
    /// Drop the event for the full backend and count it: the caller never waits.
    DropNewest,
}

/// Why an event was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The queue of this backend was full and the policy is [`Overflow::FailClosed`].
    QueueFull {
        /// The backend's name.
        backend: String,
    },
    /// The auditor was shut down.
    Closed,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::QueueFull { backend } => {
                write!(f, "audit queue of backend `{backend}` is full")
            }
            RecordError::Closed => f.write_str("the auditor is shut down"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Configures and starts an [`Auditor`]. Start with [`Auditor::builder`].
#[must_use = "call .build() to start the auditor"]
pub struct AuditorBuilder {
    backends: Vec<Box<dyn Backend>>,
    capacity: usize,
    max_batch: usize,
    overflow: Overflow,
    linger: Duration,
    retry: RetryPolicy,
    #[cfg(feature = "fingerprint")]
    fingerprint_key:
        Option<Result<crate::fingerprint::FingerprintKey, crate::fingerprint::FingerprintError>>,
}

impl fmt::Debug for AuditorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditorBuilder")
            .field(
                "backends",
                &self.backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
            .field("capacity", &self.capacity)
            .field("max_batch", &self.max_batch)
            .field("overflow", &self.overflow)
            .field("linger", &self.linger)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl AuditorBuilder {
    /// Fingerprints the values of secret fields that change (except those marked
    /// `#[audit(secret, no_fingerprint)]`) with HMAC-SHA256 under this key, so that events
    /// carry `{"secret": true, "fingerprint": {"old": "hmac-sha256:<key_id>:…", "new": …}}`
    /// (feature `fingerprint`; see [`crate::fingerprint`] for the format and the risks). The
    /// key is never stored or logged; keep it out of the database. Without a key, secret
    /// changes are `{"secret": true}` only. A key id that is not 1 to 32 letters, digits,
    /// `_`, `-` or `.`, or a key shorter than 32 bytes, makes [`build`](Self::build) fail.
    ///
    /// ```
    /// use audit_core::{Auditable, Auditor, action};
    /// use audit_core::backends::MemoryBackend;
    ///
    /// #[derive(Auditable)]
    /// struct ApiKey { #[audit(track, id)] id: u64, #[audit(secret)] hashed_secret: String }
    ///
    /// let memory = MemoryBackend::new();
    /// let auditor = Auditor::builder()
    ///     .backend(memory.clone())
    ///     .fingerprint_key("k1", &[42; 32])
    ///     .build()?;
    /// let key = ApiKey { id: 1, hashed_secret: "s3cr3t".into() };
    /// auditor.background(action::CREATE, audit_core::Actor::system("setup"), None, Some(&key), 201, [("x", 1)])?;
    /// auditor.flush();
    /// let diff = serde_json::to_value(&memory.events()[0].diff)?;
    /// assert!(diff["hashed_secret"]["fingerprint"]["new"].as_str().unwrap().starts_with("hmac-sha256:k1:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "fingerprint")]
    pub fn fingerprint_key(mut self, key_id: &str, key: &[u8]) -> Self {
        self.fingerprint_key = Some(crate::fingerprint::FingerprintKey::new(key_id, key));
        self
    }

    /// Adds a backend. It gets its own queue and worker thread, and takes the events its
    /// [filter](crate::Backend::with_filter) accepts (all, without one).
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.backends.push(Box::new(backend));
        self
    }

    /// Adds a boxed backend.
    pub fn boxed_backend(mut self, backend: Box<dyn Backend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// Sets how many events each backend's queue holds (default 8192, at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sets the largest batch given to [`Backend::write_batch`] (default 256, at least 1).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets how long a worker that just emptied its queue waits for more events before it
    /// writes them (default 1 ms). While a worker lingers, recording does not wake it (unless
    /// a full batch is waiting), so a steady stream of events costs the callers no system
    /// call and reaches the backend in batches; an event waits at most this long before its
    /// batch is written. After a quiet `linger`, the worker sleeps until the next event wakes
    /// it. `Duration::ZERO` wakes the worker for every event: lowest delivery latency,
    /// highest caller cost.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets what recording does when a queue is full (default [`Overflow::Block`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Sets how long a batch that failed with a [retryable](crate::BackendError::retryable)
    /// error is retried, and how often (default [`RetryPolicy::default`]: up to 30 s, with
    /// exponential backoff and jitter). [`RetryPolicy::none`] counts it as failed at once.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Starts one worker thread per backend.
    ///
    /// # Errors
    /// If the operating system cannot start a thread; workers already started are stopped.
    pub fn build(self) -> std::io::Result<Auditor> {
        #[cfg(feature = "fingerprint")]
        let fingerprint_key = self
            .fingerprint_key
            .transpose()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut lanes = Vec::with_capacity(self.backends.len());
        let mut workers = Vec::with_capacity(self.backends.len());
        let mut failed = None;
        for backend in self.backends {
            let wake_at = self.max_batch.min(self.capacity);
            let lane = Arc::new(Lane::new(backend.name(), backend.event_filter(), wake_at));
            let worker = Worker::new(
                Arc::clone(&lane),
                backend,
                self.max_batch,
                self.linger,
                self.retry,
            );
            let spawned = std::thread::Builder::new()
                .name(format!("audit-{}", lane.name))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => {
                    lane.set_worker_thread(handle.thread().id());
                    lanes.push(lane);
                    workers.push(handle);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let auditor = Auditor {
            inner: Arc::new(Inner {
                lanes,
                capacity: self.capacity,
                overflow: self.overflow,
                closed: AtomicBool::new(false),
                recorded: AtomicU64::new(0),
                filtered: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                workers: Mutex::new(workers),
                abandoned: AtomicBool::new(false),
                #[cfg(feature = "fingerprint")]
                fingerprint_key,
            }),
        };
        match failed {
            None => Ok(auditor),
            Some(e) => {
                auditor.shutdown();
                Err(e)
            }
        }
    }
}

/// Records audit events and delivers them to backends. Cheap to clone (an `Arc`); every
/// clone feeds the same pipeline.
///
/// The auditor: records events and delivers them to the backends in the background.
///
/// An [`Auditor`] owns the pipeline. Recording an event runs each backend's
/// [filter](crate::Backend::with_filter) on the caller's thread, then puts the event on a
/// bounded queue per backend that takes it; each backend has a worker thread that takes
/// events off its queue in batches and calls [`Backend::write_batch`]. A slow or failing
/// backend therefore never delays or stops the others. The caller's cost is building the
/// event and a mutex-protected push (the fast path); no async runtime is needed, and
/// recording never waits for I/O.
///
/// ```
/// use audit_core::{action, Actor, Auditable, Auditor, RequestContext};
/// use audit_core::backends::{Match, MemoryBackend};
///
/// #[derive(Auditable, Clone)]
/// #[audit(resource = "workspace", actions(create, write, delete))]
/// struct Workspace {
///     #[audit(track, id)] id: u64,
///     #[audit(track, target)] name: String,
///     #[audit(track)] ttl: Option<i64>,
/// }
///
/// let memory = MemoryBackend::new();
/// let auditor = Auditor::builder().backend(memory.clone()).build()?;
///
/// // In a request handler:
/// let ctx = RequestContext::new(Actor::new("u-1", "alice", "alice@example.com"));
/// let ws = Workspace { id: 1, name: "dev".into(), ttl: None };
/// {
///     let mut audit = auditor.request::<Workspace>(&ctx, action::WRITE);
///     audit.set_old(ws.clone());
///     let updated = Workspace { ttl: Some(3600), ..ws.clone() };
///     audit.set_new(updated);
///     audit.set_status(200);
/// } // recorded here, on drop (or call `audit.commit()`)
///
/// auditor.flush();
/// assert!(memory.contains(Match::action("write").resource_type("workspace").username("alice")));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Overflow
///
/// Each backend's queue holds at most [`AuditorBuilder::queue_capacity`] events. What
/// happens when it is full is the [`Overflow`] policy, chosen once for the auditor:
///
/// * [`Overflow::Block`] (default): the recording thread waits for room. Nothing is lost
///   while the process runs; a stuck backend eventually stalls the callers (in an async
///   handler, a stalled worker thread of the executor).
/// * [`Overflow::FailClosed`]: recording returns [`RecordError::QueueFull`] so the request
///   can fail instead of going unaudited (Vault's model). The event is then queued for no
///   backend at all (all-or-nothing across the backends that take it).
/// * [`Overflow::DropNewest`]: the event is dropped for the full backend only, counted in
///   [`BackendStats::dropped`], and recording succeeds (fail-open).
///
/// # Transient failures
///
/// A batch that fails with a [retryable](crate::BackendError::retryable) error (a dropped
/// connection, a locked database) is written again after a pause that grows exponentially,
/// with jitter, for at most [`RetryPolicy::max_elapsed`] (30 s by default; set it with
/// [`AuditorBuilder::retry`]). Only then is the batch counted as failed and reported. Each
/// new attempt counts in [`BackendStats::retries`]. A failure that names the events at fault
/// ([`rejected`](crate::BackendError::rejected)) is not retried: only those events count as
/// failed. While a backend retries, its queue fills up as it would behind a slow backend.
///
/// # In async code
///
/// Recording never waits for I/O: it filters the event and pushes it on the queues, which
/// takes well under a microsecond (see `BENCHMARKS.md`), so it is fine to call from an async
/// handler. The one case where it waits is a full queue under [`Overflow::Block`]: size the
/// queue for your bursts, or choose [`Overflow::DropNewest`] or [`Overflow::FailClosed`] if
/// an executor thread must never wait. No async runtime is needed: the workers are plain
/// threads. A [`RequestAudit`](crate::RequestAudit) guard is `Send` when `T` is, so it can be
/// held across `.await`.
///
/// # Guarantees, and what a crash loses
///
/// * Every event accepted for a backend ends up counted exactly once as `written` or
///   `failed` (a panicking backend counts as failed), in recording order per backend.
/// * [`Auditor::flush`] returns once every event accepted before the call is written (or
///   its failure counted) and the backends were flushed; [`Auditor::shutdown`] (also run when
///   the last clone of the auditor is dropped) does the same for every accepted event, then
///   stops the workers. Events recorded after shutdown are refused with
///   [`RecordError::Closed`]. A backend that never returns makes these wait forever;
///   [`Auditor::shutdown_timeout`] bounds the wait (for a deployment's grace period) and
///   says whether everything drained. A backend that is retrying stops retrying at that
///   deadline and counts its batch as failed.
/// * The queues live in memory: **events still queued when the process crashes or is
///   killed are lost**, as are events a backend buffered and had not flushed. Call
///   `shutdown()` (or `flush()`) before exiting, and choose a store backend that commits
///   each batch if a crash must not lose what was already written.
#[derive(Clone)]
pub struct Auditor {
    inner: Arc<Inner>,
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("overflow", &self.inner.overflow)
            .field("capacity", &self.inner.capacity)
            .field(
                "backends",
                &self.inner.lanes.iter().map(|l| &l.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

struct Inner {
    lanes: Vec<Arc<Lane>>,
    capacity: usize,
    overflow: Overflow,
    closed: AtomicBool,
    recorded: AtomicU64,
    filtered: AtomicU64,
    rejected: AtomicU64,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// A `shutdown_timeout` gave up on some worker.
    abandoned: AtomicBool,
    /// What secret values are fingerprinted with.
    #[cfg(feature = "fingerprint")]
    fingerprint_key: Option<crate::fingerprint::FingerprintKey>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // After a `shutdown_timeout` that gave up, do not wait for the stuck workers again.
        let deadline = self.abandoned.load(Ordering::Relaxed).then(Instant::now);
        shutdown(self, deadline);
    }
}

impl Auditor {
    /// Starts configuring an auditor.
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder {
            backends: Vec::new(),
            capacity: 8192,
            max_batch: 256,
            overflow: Overflow::Block,
            linger: Duration::from_millis(1),
            retry: RetryPolicy::default(),
            #[cfg(feature = "fingerprint")]
            fingerprint_key: None,
        }
    }

    /// What this auditor fingerprints secret values with, for the diffs it computes.
    pub(crate) fn fingerprinter(&self) -> crate::diff::Fingerprinter<'_> {
        #[cfg(feature = "fingerprint")]
        if let Some(key) = &self.inner.fingerprint_key {
            return crate::diff::Fingerprinter::with(key);
        }
        crate::diff::Fingerprinter::NONE
    }

    /// Records an event (after [`AuditEvent::normalize`]): queues it for every backend whose
    /// filter accepts it. Returns once it is queued, not written.
    ///
    /// # Errors
    /// [`RecordError::QueueFull`] under [`Overflow::FailClosed`] when a queue is full (the
    /// event is then queued nowhere), [`RecordError::Closed`] after shutdown.
    pub fn record(&self, mut event: AuditEvent) -> Result<(), RecordError> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            inner.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(RecordError::Closed);
        }
        event.normalize();
        inner.recorded.fetch_add(1, Ordering::Relaxed);
        let event = Arc::new(event);
        let (taken, result) = match inner.overflow {
            Overflow::Block | Overflow::DropNewest => {
                let mut taken = false;
                let mut result = Ok(());
                for lane in inner.lanes.iter().filter(|l| l.accepts(&event)) {
                    taken = true;
                    result = result.and(lane.push(&event, inner.capacity, inner.overflow));
                }
                (taken, result)
            }
            Overflow::FailClosed => {
                let states: Vec<(&Lane, MutexGuard<'_, LaneState>)> = inner
                    .lanes
                    .iter()
                    .filter(|l| l.accepts(&event))
                    .map(|l| (&**l, l.lock()))
                    .collect();
                (
                    !states.is_empty(),
                    push_all_or_none(states, &event, inner.capacity),
                )
            }
        };
        if !taken {
            inner.filtered.fetch_add(1, Ordering::Relaxed);
        }
        if result.is_err() {
            inner.rejected.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Records an event with no HTTP request behind it: a system actor (an autostart
    /// scheduler, a reaper) acting on a resource. `additional_fields` says which subsystem
    /// acted and why (pass `Fields::new()` for none).
    ///
    /// ```
    /// use audit_core::{action, Actor, Auditable, Auditor, Fields};
    /// use audit_core::backends::{Match, MemoryBackend};
    ///
    /// #[derive(Auditable)]
    /// #[audit(resource = "workspace_build", actions(start, stop))]
    /// struct WorkspaceBuild { #[audit(track, id)] id: u64, #[audit(track)] number: u32 }
    ///
    /// let memory = MemoryBackend::new();
    /// let auditor = Auditor::builder().backend(memory.clone()).build()?;
    /// let build = WorkspaceBuild { id: 9, number: 3 };
    /// auditor.background(
    ///     action::START, Actor::system("autostart"), None, Some(&build), 200,
    ///     [("build_reason", "autostart")],
    /// )?;
    /// auditor.flush();
    /// assert!(memory.contains(Match::action("start").username("autostart").field("build_reason", "autostart")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As for [`record`](Self::record).
    pub fn background<T: Auditable, K: Into<String>, V: Into<Value>>(
        &self,
        action: impl Into<String>,
        actor: Actor,
        old: Option<&T>,
        new: Option<&T>,
        status_code: u16,
        additional_fields: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), RecordError> {
        let mut builder = EventBuilder::new(action)
            .actor(actor)
            .status(status_code)
            .fields(additional_fields);
        builder.set_resource(old, new, status_code < 400, self.fingerprinter());
        self.record(builder.build())
    }

    /// Waits until every event accepted before this call is written (or its failure
    /// counted), and every backend was flushed ([`Backend::flush`]). A backend retrying a
    /// transient failure holds this up for at most its [`RetryPolicy::max_elapsed`].
    pub fn flush(&self) {
        for lane in &self.inner.lanes {
            lane.flush();
        }
    }

    /// Refuses new events, waits until every accepted event is written (or its failure
    /// counted), flushes the backends and stops their workers. Idempotent; also run when the
    /// last clone of the auditor is dropped.
    pub fn shutdown(&self) {
        shutdown(&self.inner, None);
    }

    /// Like [`shutdown`](Self::shutdown), but waits at most `timeout` (for a deployment's
    /// grace period). A backend retrying a batch gives up at that deadline and counts the
    /// batch as failed. Returns `false` if some backend had not drained and flushed by then:
    /// its worker is left running on its own and [`stats`](Self::stats) tells what was still
    /// queued; dropping the last auditor clone then no longer waits for it.
    pub fn shutdown_timeout(&self, timeout: Duration) -> bool {
        shutdown(&self.inner, Some(Instant::now() + timeout))
    }

    /// Counters of the pipeline and of each backend.
    pub fn stats(&self) -> AuditorStats {
        let inner = &*self.inner;
        AuditorStats {
            recorded: inner.recorded.load(Ordering::Relaxed),
            filtered: inner.filtered.load(Ordering::Relaxed),
            rejected: inner.rejected.load(Ordering::Relaxed),
            backends: inner.lanes.iter().map(|l| l.stats()).collect(),
        }
    }
}

/// Pushes `event` on every lane of `states` (all locked, in lane order, so no deadlock), or
/// on none if one is closing or full: [`Overflow::FailClosed`].
fn push_all_or_none(
    mut states: Vec<(&Lane, MutexGuard<'_, LaneState>)>,
    event: &Arc<AuditEvent>,
    capacity: usize,
) -> Result<(), RecordError> {
    if states.iter().any(|(_, s)| s.closing) {
        return Err(RecordError::Closed);
    }
    if let Some((lane, _)) = states.iter().find(|(_, s)| s.queue.len() >= capacity) {
        return Err(RecordError::QueueFull {
            backend: lane.name.clone(),
        });
    }
    for (lane, state) in &mut states {
        lane.push_locked(state, Arc::clone(event));
    }
    Ok(())
}

/// Closes the auditor and waits (until `deadline`, if any) for every worker to drain its
/// queue, flush and exit. Returns whether they all did.
fn shutdown(inner: &Inner, deadline: Option<Instant>) -> bool {
    inner.closed.store(true, Ordering::Release);
    for lane in &inner.lanes {
        lane.close(deadline);
    }
    let current = std::thread::current().id();
    for lane in &inner.lanes {
        // A backend that drops the last auditor clone from its own worker cannot wait for
        // itself.
        if lane.is_worker_thread(current) {
            continue;
        }
        if !lane.wait_exited(deadline) {
            inner.abandoned.store(true, Ordering::Relaxed);
            return false;
        }
    }
    let workers =
        std::mem::take(&mut *inner.workers.lock().unwrap_or_else(PoisonError::into_inner));
    for handle in workers {
        if handle.thread().id() != current {
            let _ = handle.join();
        }
    }
    true
}
