//! The auditor: records events and delivers them to the backends in the background.
//!
//! An [`Auditor`] owns the pipeline. Recording an event runs the [`RouteFilter`] on the
//! caller's thread, then puts the event on a bounded queue per backend that takes it; each
//! backend has a worker thread that takes events off its queue in batches and calls
//! [`Backend::write_batch`]. A slow or failing backend therefore never delays or stops the
//! others. The caller's cost is building the event and a mutex-protected push (the fast
//! path); no async runtime is needed, and recording never waits for I/O.
//!
//! ```
//! use audit_core::{action, Actor, Auditable, Auditor, RequestContext};
//! use audit_core::backends::{Match, MemoryBackend};
//!
//! #[derive(Auditable, Clone)]
//! #[audit(resource = "workspace", actions(create, write, delete))]
//! struct Workspace {
//!     #[audit(track, id)] id: u64,
//!     #[audit(track, target)] name: String,
//!     #[audit(track)] ttl: Option<i64>,
//! }
//!
//! let memory = MemoryBackend::new();
//! let auditor = Auditor::builder().backend(memory.clone()).build()?;
//!
//! // In a request handler:
//! let ctx = RequestContext::new(Actor::new("u-1", "alice", "alice@example.com"));
//! let ws = Workspace { id: 1, name: "dev".into(), ttl: None };
//! {
//!     let mut audit = auditor.request::<Workspace>(&ctx, action::WRITE);
//!     audit.set_old(ws.clone());
//!     let updated = Workspace { ttl: Some(3600), ..ws.clone() };
//!     audit.set_new(updated);
//!     audit.set_status(200);
//! } // recorded here, on drop (or call `audit.commit()`)
//!
//! auditor.flush();
//! assert!(memory.contains(Match::action("write").resource_type("workspace").username("alice")));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Overflow
//!
//! Each backend's queue holds at most [`AuditorBuilder::queue_capacity`] events. What
//! happens when it is full is the [`Overflow`] policy, chosen once for the auditor:
//!
//! * [`Overflow::Block`] (default): the recording thread waits for room. Nothing is lost
//!   while the process runs; a stuck backend eventually stalls the callers (in an async
//!   handler, a stalled worker thread of the executor).
//! * [`Overflow::FailClosed`]: recording returns [`RecordError::QueueFull`] so the request
//!   can fail instead of going unaudited (Vault's model). The event is then queued for no
//!   backend at all (all-or-nothing across the backends that take it).
//! * [`Overflow::DropNewest`]: the event is dropped for the full backend only, counted in
//!   [`BackendStats::dropped`], and recording succeeds (fail-open).
//!
//! # In async code
//!
//! Recording never waits for I/O: it routes the event and pushes it on the queues, which
//! takes well under a microsecond (see `BENCHMARKS.md`), so it is fine to call from an async
//! handler. The one case where it waits is a full queue under [`Overflow::Block`]: size the
//! queue for your bursts, or choose [`Overflow::DropNewest`] or [`Overflow::FailClosed`] if
//! an executor thread must never wait. No async runtime is needed: the workers are plain
//! threads. A [`RequestAudit`] guard is `Send` when `T` is, so it can be held across `.await`.
//!
//! # Guarantees, and what a crash loses
//!
//! * Every event accepted for a backend ends up counted exactly once as `written` or
//!   `failed` (a panicking backend counts as failed), in recording order per backend.
//! * [`Auditor::flush`] returns once every event accepted before the call is written (or
//!   its failure counted) and the backends were flushed; [`Auditor::shutdown`] (also run when
//!   the last clone of the auditor is dropped) does the same for every accepted event, then
//!   stops the workers. Events recorded after shutdown are refused with
//!   [`RecordError::Closed`]. A backend that never returns makes these wait forever;
//!   [`Auditor::shutdown_timeout`] bounds the wait (for a deployment's grace period) and
//!   says whether everything drained.
//! * The queues live in memory: **events still queued when the process crashes or is
//!   killed are lost**, as are events a backend buffered and had not flushed. Call
//!   `shutdown()` (or `flush()`) before exiting, and choose a store backend that commits
//!   each batch if a crash must not lose what was already written.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::backend::{Backend, BackendError, Route, RouteAll, RouteFilter};
use crate::event::{EventBuilder, Fields};
use crate::{Actor, AuditEvent, Auditable};

/// What recording does when a backend's queue is full. See the [module docs](self).
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
    filter: Box<dyn RouteFilter>,
    capacity: usize,
    max_batch: usize,
    overflow: Overflow,
    linger: Duration,
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
            .finish_non_exhaustive()
    }
}

impl AuditorBuilder {
    /// Adds a backend. It gets its own queue and worker thread.
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.backends.push(Box::new(backend));
        self
    }

    /// Adds a boxed backend.
    pub fn boxed_backend(mut self, backend: Box<dyn Backend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// Sets the filter deciding each event's [`Route`] (default: [`RouteAll`], store and
    /// export everything).
    pub fn filter(mut self, filter: impl RouteFilter) -> Self {
        self.filter = Box::new(filter);
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

    /// Starts one worker thread per backend.
    ///
    /// # Errors
    /// If the operating system cannot start a thread; workers already started are stopped.
    pub fn build(self) -> std::io::Result<Auditor> {
        let mut lanes = Vec::with_capacity(self.backends.len());
        let mut workers = Vec::with_capacity(self.backends.len());
        let mut failed = None;
        for backend in self.backends {
            let wake_at = self.max_batch.min(self.capacity);
            let lane = Arc::new(Lane::new(backend.name(), backend.route(), wake_at));
            let worker = Worker {
                lane: Arc::clone(&lane),
                backend,
                max_batch: self.max_batch,
                linger: self.linger,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("audit-{}", lane.name))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => {
                    let _ = lane.worker_thread.set(handle.thread().id());
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
                filter: self.filter,
                capacity: self.capacity,
                overflow: self.overflow,
                closed: AtomicBool::new(false),
                recorded: AtomicU64::new(0),
                filtered: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                workers: Mutex::new(workers),
                abandoned: AtomicBool::new(false),
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
/// clone feeds the same pipeline. See the [module docs](self).
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
    filter: Box<dyn RouteFilter>,
    capacity: usize,
    overflow: Overflow,
    closed: AtomicBool,
    recorded: AtomicU64,
    filtered: AtomicU64,
    rejected: AtomicU64,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// A `shutdown_timeout` gave up on some worker.
    abandoned: AtomicBool,
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
            filter: Box::new(RouteAll),
            capacity: 8192,
            max_batch: 256,
            overflow: Overflow::Block,
            linger: Duration::from_millis(1),
        }
    }

    /// Records an event (after [`AuditEvent::normalize`]): routes it and queues it for every
    /// backend that takes it. Returns once it is queued, not written.
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
        let route = inner.filter.route(&event);
        let takes = |lane: &&Arc<Lane>| route.includes(lane.route);
        if !inner.lanes.iter().any(|l| takes(&l)) {
            inner.filtered.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let event = Arc::new(event);
        let result = match inner.overflow {
            Overflow::Block | Overflow::DropNewest => {
                let mut result = Ok(());
                for lane in inner.lanes.iter().filter(takes) {
                    let pushed = lane.push(&event, inner.capacity, inner.overflow);
                    result = result.and(pushed);
                }
                result
            }
            Overflow::FailClosed => {
                // Lock every target queue (always in the same order, so no deadlock), check
                // that all have room, then push to all: the event is queued everywhere or
                // nowhere.
                let mut states: Vec<(&Lane, MutexGuard<'_, LaneState>)> = inner
                    .lanes
                    .iter()
                    .filter(takes)
                    .map(|l| (&**l, l.lock()))
                    .collect();
                if states.iter().any(|(_, s)| s.closing) {
                    Err(RecordError::Closed)
                } else if let Some((lane, _)) =
                    states.iter().find(|(_, s)| s.queue.len() >= inner.capacity)
                {
                    Err(RecordError::QueueFull {
                        backend: lane.name.clone(),
                    })
                } else {
                    for (lane, state) in &mut states {
                        lane.push_locked(state, Arc::clone(&event));
                    }
                    Ok(())
                }
            }
        };
        if result.is_err() {
            inner.rejected.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Starts auditing one request on a resource of type `T`: the returned guard records one
    /// event when it is committed or dropped. See [`RequestAudit`].
    pub fn request<T: Auditable>(
        &self,
        ctx: &RequestContext,
        action: impl Into<String>,
    ) -> RequestAudit<T> {
        RequestAudit {
            auditor: self.clone(),
            ctx: ctx.clone(),
            action: action.into(),
            old: None,
            new: None,
            status: None,
            fields: Fields::new(),
            done: false,
        }
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
        builder.set_resource(old, new, status_code < 400);
        self.record(builder.build())
    }

    /// Waits until every event accepted before this call is written (or its failure
    /// counted), and every backend was flushed ([`Backend::flush`]).
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
    /// grace period). Returns `false` if some backend had not drained and flushed by then:
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

/// Closes the auditor and waits (until `deadline`, if any) for every worker to drain its
/// queue, flush and exit. Returns whether they all did.
fn shutdown(inner: &Inner, deadline: Option<Instant>) -> bool {
    inner.closed.store(true, Ordering::Release);
    for lane in &inner.lanes {
        let mut state = lane.lock();
        state.closing = true;
        drop(state);
        lane.wake_worker.notify_all();
        lane.space.notify_all();
    }
    let current = std::thread::current().id();
    for lane in &inner.lanes {
        // A backend that drops the last auditor clone from its own worker cannot wait for
        // itself.
        if lane.worker_thread.get() == Some(&current) {
            continue;
        }
        let mut state = lane.lock();
        while !state.exited {
            state = match deadline {
                None => lane
                    .progress
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        inner.abandoned.store(true, Ordering::Relaxed);
                        return false;
                    }
                    lane.progress
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
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

/// Counters of an auditor, from [`Auditor::stats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditorStats {
    /// Events handed to [`Auditor::record`] (and the guards and `background`) while open.
    pub recorded: u64,
    /// Events routed to no backend ([`Route::Drop`], or no backend of that kind).
    pub filtered: u64,
    /// Recordings refused with an error (queue full under `FailClosed`, or closed).
    pub rejected: u64,
    /// Per backend, in the order they were added.
    pub backends: Vec<BackendStats>,
}

impl AuditorStats {
    /// The counters of the backend with this name.
    pub fn backend(&self, name: &str) -> Option<&BackendStats> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// Counters of one backend. Once [`Auditor::flush`] returns,
/// `accepted == written + failed` for events recorded before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendStats {
    /// The backend's name.
    pub name: String,
    /// The events it takes.
    pub route: Route,
    /// Events queued for it.
    pub accepted: u64,
    /// Events it wrote.
    pub written: u64,
    /// Events not queued because its queue was full ([`Overflow::DropNewest`]).
    pub dropped: u64,
    /// Events whose batch failed to write.
    pub failed: u64,
    /// Failed [`Backend::flush`] calls.
    pub flush_failures: u64,
    /// Events queued and not yet written.
    pub queued: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// One backend's queue, shared by the recording threads and its worker.
struct Lane {
    name: String,
    route: Route,
    /// Wake a lingering worker once this many events wait.
    wake_at: usize,
    worker_thread: OnceLock<ThreadId>,
    state: Mutex<LaneState>,
    /// The worker waits here for events, flush requests and shutdown.
    wake_worker: Condvar,
    /// Producers wait here for room (`Block`).
    space: Condvar,
    /// Flushers wait here for progress.
    progress: Condvar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum WorkerState {
    /// Working, or about to: no need to wake it.
    #[default]
    Busy,
    /// Waiting a little for more events; wake it for a full batch.
    Lingering,
    /// Waiting until woken.
    Sleeping,
}

#[derive(Default)]
struct LaneState {
    queue: VecDeque<Arc<AuditEvent>>,
    /// Events ever queued (accepted), and of those, how many the worker finished.
    pushed: u64,
    processed: u64,
    written: u64,
    failed: u64,
    dropped: u64,
    flush_failures: u64,
    last_error: Option<String>,
    /// Flush everything up to this count of processed events…
    flush_wanted: u64,
    /// …the backend was flushed after this many were processed.
    flushed: u64,
    /// What the worker is doing, so producers wake it only when needed.
    worker: WorkerState,
    producers_waiting: usize,
    closing: bool,
    exited: bool,
}

impl Lane {
    fn new(name: &str, route: Route, wake_at: usize) -> Self {
        Lane {
            name: name.to_owned(),
            route,
            wake_at,
            worker_thread: OnceLock::new(),
            state: Mutex::new(LaneState::default()),
            wake_worker: Condvar::new(),
            space: Condvar::new(),
            progress: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // The state stays consistent across a panic (counters only), so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(
        &self,
        event: &Arc<AuditEvent>,
        capacity: usize,
        overflow: Overflow,
    ) -> Result<(), RecordError> {
        let mut state = self.lock();
        while state.queue.len() >= capacity && !state.closing {
            if overflow == Overflow::DropNewest {
                state.dropped += 1;
                return Ok(());
            }
            state.producers_waiting += 1;
            state = self
                .space
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.producers_waiting -= 1;
        }
        if state.closing {
            return Err(RecordError::Closed);
        }
        self.push_locked(&mut state, Arc::clone(event));
        Ok(())
    }

    fn push_locked(&self, state: &mut LaneState, event: Arc<AuditEvent>) {
        state.queue.push_back(event);
        state.pushed += 1;
        let wake = match state.worker {
            WorkerState::Busy => false,
            WorkerState::Lingering => state.queue.len() >= self.wake_at,
            WorkerState::Sleeping => true,
        };
        if wake {
            // Wake it once: it is busy until it next waits.
            state.worker = WorkerState::Busy;
            self.wake_worker.notify_one();
        }
    }

    fn flush(&self) {
        let mut state = self.lock();
        let target = state.pushed;
        if state.flushed >= target || state.exited {
            return;
        }
        state.flush_wanted = state.flush_wanted.max(target);
        state.worker = WorkerState::Busy;
        self.wake_worker.notify_one();
        while state.flushed < target && !state.exited {
            state = self
                .progress
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn stats(&self) -> BackendStats {
        let s = self.lock();
        BackendStats {
            name: self.name.clone(),
            route: self.route,
            accepted: s.pushed,
            written: s.written,
            dropped: s.dropped,
            failed: s.failed,
            flush_failures: s.flush_failures,
            queued: s.pushed - s.processed,
            last_error: s.last_error.clone(),
        }
    }
}

struct Worker {
    lane: Arc<Lane>,
    backend: Box<dyn Backend>,
    max_batch: usize,
    linger: Duration,
}

impl Worker {
    fn run(mut self) {
        let lane = Arc::clone(&self.lane);
        let mut taken: Vec<Arc<AuditEvent>> = Vec::with_capacity(self.max_batch);
        let mut batch: Vec<AuditEvent> = Vec::with_capacity(self.max_batch);
        let mut log = ErrorLog::default();
        let mut active = false;
        loop {
            let mut state = lane.lock();
            while state.queue.is_empty() && state.flush_wanted <= state.flushed && !state.closing {
                if active && !self.linger.is_zero() {
                    // Just worked: linger, so that callers need not wake us for each event.
                    state.worker = WorkerState::Lingering;
                    state = lane
                        .wake_worker
                        .wait_timeout(state, self.linger)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    active = false;
                } else {
                    state.worker = WorkerState::Sleeping;
                    state = lane
                        .wake_worker
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            state.worker = WorkerState::Busy;
            active = true;
            let n = state.queue.len().min(self.max_batch);
            taken.extend(state.queue.drain(..n));
            if n > 0 && state.producers_waiting > 0 {
                lane.space.notify_all();
            }
            drop(state);

            if n > 0 {
                // The last holder of each event takes it without a copy; other backends'
                // copies are made here, off the recording thread.
                batch.extend(
                    taken
                        .drain(..)
                        .map(|e| Arc::try_unwrap(e).unwrap_or_else(|e| (*e).clone())),
                );
                let result = catch_unwind(AssertUnwindSafe(|| self.backend.write_batch(&batch)))
                    .unwrap_or_else(|_| Err(BackendError::new("backend panicked")));
                batch.clear();
                let mut state = lane.lock();
                state.processed += n as u64;
                match result {
                    Ok(()) => state.written += n as u64,
                    Err(e) => {
                        state.failed += n as u64;
                        let message = e.to_string();
                        log.error(&lane.name, n, &message);
                        state.last_error = Some(message);
                    }
                }
            }

            let mut state = lane.lock();
            let finished = state.closing && state.queue.is_empty();
            if (state.flush_wanted > state.flushed && state.processed >= state.flush_wanted)
                || finished
            {
                let upto = state.processed;
                drop(state);
                let result = catch_unwind(AssertUnwindSafe(|| self.backend.flush()))
                    .unwrap_or_else(|_| Err(BackendError::new("backend panicked in flush")));
                state = lane.lock();
                if let Err(e) = result {
                    state.flush_failures += 1;
                    let message = format!("flush: {e}");
                    log.error(&lane.name, 0, &message);
                    state.last_error = Some(message);
                }
                state.flushed = state.flushed.max(upto);
                if finished {
                    state.exited = true;
                }
                lane.progress.notify_all();
                if finished {
                    lane.space.notify_all();
                    return;
                }
            }
        }
    }
}

/// Reports backend failures on stderr (or `tracing`), at most once a second per backend.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed_batches: u64,
    suppressed_events: u64,
}

impl ErrorLog {
    fn error(&mut self, backend: &str, events: usize, message: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed_batches += 1;
            self.suppressed_events += events as u64;
            return;
        }
        let (batches, more) = (self.suppressed_batches, self.suppressed_events);
        self.last = Some(now);
        self.suppressed_batches = 0;
        self.suppressed_events = 0;
        let suppressed = if batches > 0 {
            format!(" (and {batches} more failures, {more} events, in the last second)")
        } else {
            String::new()
        };
        log_error(&format!(
            "backend `{backend}` failed, {events} events not written: {message}{suppressed}"
        ));
    }
}

/// Reports a pipeline error: to `tracing` (target `audit_core::auditor`) with the `tracing`
/// feature, else to stderr.
fn log_error(message: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "audit_core::auditor", "{message}");
    #[cfg(not(feature = "tracing"))]
    eprintln!("audit: {message}");
}

/// Who is making a request and from where: the request-scoped part of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The authenticated user (a snapshot).
    pub actor: Actor,
    /// The client address.
    pub ip: Option<IpAddr>,
    /// The client user agent (cut to [`MAX_USER_AGENT_LEN`](crate::event::MAX_USER_AGENT_LEN) bytes when recorded).
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<Uuid>,
    /// The organization the request acts in.
    pub organization_id: Option<String>,
}

impl RequestContext {
    /// A context for `actor`, with nothing else set.
    pub fn new(actor: Actor) -> Self {
        RequestContext {
            actor,
            ..RequestContext::default()
        }
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user agent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, request_id: Uuid) -> Self {
        self.request_id = Some(request_id);
        self
    }

    /// Sets the organization.
    pub fn organization_id(mut self, organization_id: impl Into<String>) -> Self {
        self.organization_id = Some(organization_id.into());
        self
    }
}

/// Audits one request on a resource of type `T`, in the spirit of Coder's `InitRequest`.
///
/// Created by [`Auditor::request`]. The handler sets the snapshots it has
/// ([`set_old`](Self::set_old) before changing the resource, [`set_new`](Self::set_new)
/// after), the final [`status`](Self::set_status) and any [additional
/// fields](Self::set_field). The guard records exactly one event, on [`commit`](Self::commit)
/// or when dropped, unless [`cancel`](Self::cancel)ed:
///
/// * a failed request (status ≥ 400) is recorded without a diff;
/// * **a guard whose status was never set is recorded as 500**: it was dropped by an early
///   return or a panic, so the request did not succeed as far as the audit log can tell;
/// * the resource id and target come from the new snapshot, or from the old one for a
///   delete (or when there is no new one); with neither snapshot the event still records
///   the resource type from `T::schema()`.
#[must_use = "the guard records when dropped; bind it to a variable (`let mut audit = …`)"]
pub struct RequestAudit<T: Auditable> {
    auditor: Auditor,
    ctx: RequestContext,
    action: String,
    old: Option<T>,
    new: Option<T>,
    status: Option<u16>,
    fields: Fields,
    done: bool,
}

impl<T: Auditable> fmt::Debug for RequestAudit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The snapshots are not printed: they may hold secrets.
        f.debug_struct("RequestAudit")
            .field("resource_type", &T::schema().resource_type)
            .field("action", &self.action)
            .field("actor", &self.ctx.actor)
            .field("has_old", &self.old.is_some())
            .field("has_new", &self.new.is_some())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<T: Auditable> RequestAudit<T> {
    /// Sets the snapshot before the change.
    pub fn set_old(&mut self, old: T) -> &mut Self {
        self.old = Some(old);
        self
    }

    /// Sets the snapshot after the change.
    pub fn set_new(&mut self, new: T) -> &mut Self {
        self.new = Some(new);
        self
    }

    /// Sets how the request ended (an HTTP status code).
    pub fn set_status(&mut self, status_code: u16) -> &mut Self {
        self.status = Some(status_code);
        self
    }

    /// Changes the action (when the handler learns what it did, e.g. create vs. write).
    pub fn set_action(&mut self, action: impl Into<String>) -> &mut Self {
        self.action = action.into();
        self
    }

    /// Adds an additional field.
    pub fn set_field(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// The snapshot before the change, if set.
    pub fn old(&self) -> Option<&T> {
        self.old.as_ref()
    }

    /// The status set so far.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Records the event now.
    ///
    /// # Errors
    /// As for [`Auditor::record`]; with [`Overflow::FailClosed`], fail the request.
    pub fn commit(mut self) -> Result<(), RecordError> {
        self.record()
    }

    /// Records nothing.
    pub fn cancel(mut self) {
        self.done = true;
    }

    fn record(&mut self) -> Result<(), RecordError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let status = self.status.unwrap_or(500);
        let mut builder = EventBuilder::new(std::mem::take(&mut self.action))
            .context(std::mem::take(&mut self.ctx))
            .status(status)
            .fields(std::mem::take(&mut self.fields));
        builder.set_resource(self.old.as_ref(), self.new.as_ref(), status < 400);
        self.auditor.record(builder.build())
    }
}

impl<T: Auditable> Drop for RequestAudit<T> {
    fn drop(&mut self) {
        if let Err(e) = self.record() {
            log_error(&format!(
                "audit event on a {} not recorded: {e}",
                T::schema().resource_type
            ));
        }
    }
}
