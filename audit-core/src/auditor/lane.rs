//! One backend's lane: its filter, its bounded queue and counters, and the condition
//! variables that connect the recording threads, the backend's worker and the callers of
//! `flush` and `shutdown`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use super::{BackendStats, Overflow, RecordError};
use crate::AuditEvent;
use crate::backend::EventFilter;

/// One backend's queue, shared by the recording threads and its worker.
pub(super) struct Lane {
    pub(super) name: String,
    filter: Option<Arc<dyn EventFilter>>,
    /// Events the filter declined (counted outside the lock: declining takes no lock).
    declined: AtomicU64,
    /// Wake a lingering worker once this many events wait.
    wake_at: usize,
    worker_thread: OnceLock<ThreadId>,
    state: Mutex<LaneState>,
    /// The worker waits here for events, flush requests and shutdown.
    pub(super) wake_worker: Condvar,
    /// Producers wait here for room (`Block`).
    pub(super) space: Condvar,
    /// Flushers and shutdown wait here for progress.
    pub(super) progress: Condvar,
}

/// What the worker is doing, so that producers wake it only when needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum WorkerState {
    /// Working, or about to: no need to wake it.
    #[default]
    Busy,
    /// Waiting a little for more events; wake it for a full batch.
    Lingering,
    /// Waiting until woken.
    Sleeping,
}

#[derive(Default)]
pub(super) struct LaneState {
    pub(super) queue: VecDeque<Arc<AuditEvent>>,
    /// Events ever queued (accepted), and of those, how many the worker finished.
    pub(super) pushed: u64,
    pub(super) processed: u64,
    pub(super) written: u64,
    pub(super) failed: u64,
    pub(super) dropped: u64,
    pub(super) retries: u64,
    pub(super) flush_failures: u64,
    pub(super) last_error: Option<String>,
    /// Flush everything up to this count of processed events…
    pub(super) flush_wanted: u64,
    /// …the backend was flushed after this many were processed.
    pub(super) flushed: u64,
    pub(super) worker: WorkerState,
    pub(super) producers_waiting: usize,
    pub(super) closing: bool,
    /// When a `shutdown_timeout` must be done: a retrying worker gives up then.
    pub(super) shutdown_deadline: Option<Instant>,
    pub(super) exited: bool,
}

impl Lane {
    pub(super) fn new(name: &str, filter: Option<Arc<dyn EventFilter>>, wake_at: usize) -> Self {
        Lane {
            name: name.to_owned(),
            filter,
            declined: AtomicU64::new(0),
            wake_at,
            worker_thread: OnceLock::new(),
            state: Mutex::new(LaneState::default()),
            wake_worker: Condvar::new(),
            space: Condvar::new(),
            progress: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LaneState> {
        // The state stays consistent across a panic (counters only), so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on `condvar` (at most `timeout`, if given), ignoring poisoning as [`lock`] does.
    pub(super) fn wait<'a>(
        condvar: &Condvar,
        state: MutexGuard<'a, LaneState>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, LaneState> {
        match timeout {
            None => condvar.wait(state).unwrap_or_else(PoisonError::into_inner),
            Some(timeout) => {
                condvar
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        }
    }

    pub(super) fn set_worker_thread(&self, id: ThreadId) {
        let _ = self.worker_thread.set(id);
    }

    pub(super) fn is_worker_thread(&self, id: ThreadId) -> bool {
        self.worker_thread.get() == Some(&id)
    }

    /// Whether this lane's backend takes `event` (counting it if not).
    pub(super) fn accepts(&self, event: &AuditEvent) -> bool {
        match &self.filter {
            Some(filter) if !filter.accepts(event) => {
                self.declined.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    /// Queues `event`, or waits for room or drops it when the queue is full, as `overflow`
    /// says ([`Overflow::FailClosed`] goes through `push_locked` instead).
    pub(super) fn push(
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
            state = Lane::wait(&self.space, state, None);
            state.producers_waiting -= 1;
        }
        if state.closing {
            return Err(RecordError::Closed);
        }
        self.push_locked(&mut state, Arc::clone(event));
        Ok(())
    }

    pub(super) fn push_locked(&self, state: &mut LaneState, event: Arc<AuditEvent>) {
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

    /// Waits until everything queued before the call is processed and the backend flushed.
    pub(super) fn flush(&self) {
        let mut state = self.lock();
        let target = state.pushed;
        if state.flushed >= target || state.exited {
            return;
        }
        state.flush_wanted = state.flush_wanted.max(target);
        state.worker = WorkerState::Busy;
        self.wake_worker.notify_one();
        while state.flushed < target && !state.exited {
            state = Lane::wait(&self.progress, state, None);
        }
    }

    /// Refuses new events and tells the worker to drain and exit (giving up retries at
    /// `deadline`, if any).
    pub(super) fn close(&self, deadline: Option<Instant>) {
        let mut state = self.lock();
        state.closing = true;
        if let Some(deadline) = deadline {
            let earliest = state
                .shutdown_deadline
                .map_or(deadline, |d| d.min(deadline));
            state.shutdown_deadline = Some(earliest);
        }
        drop(state);
        self.wake_worker.notify_all();
        self.space.notify_all();
    }

    /// Waits until the worker exited (or `deadline` passed); returns whether it did.
    pub(super) fn wait_exited(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.lock();
        while !state.exited {
            let timeout = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    Some(left)
                }
            };
            state = Lane::wait(&self.progress, state, timeout);
        }
        true
    }

    pub(super) fn stats(&self) -> BackendStats {
        let s = self.lock();
        BackendStats {
            name: self.name.clone(),
            filtered: self.declined.load(Ordering::Relaxed),
            accepted: s.pushed,
            written: s.written,
            dropped: s.dropped,
            failed: s.failed,
            retries: s.retries,
            flush_failures: s.flush_failures,
            queued: s.pushed - s.processed,
            last_error: s.last_error.clone(),
        }
    }
}
