//! A backend's worker thread: it takes a batch off the lane, writes it (retrying transient
//! failures), flushes the backend when a flush is due, and reports failures.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lane::{Lane, WorkerState};
use super::retry::RetryPolicy;
use crate::AuditEvent;
use crate::backend::{Backend, BackendError};

/// Whether the worker goes on after a flush check.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    Exit,
}

pub(super) struct Worker {
    lane: Arc<Lane>,
    backend: Box<dyn Backend>,
    max_batch: usize,
    linger: Duration,
    retry: RetryPolicy,
    /// The events taken off the queue, still shared with other lanes.
    taken: Vec<Arc<AuditEvent>>,
    /// The batch handed to the backend.
    batch: Vec<AuditEvent>,
    log: ErrorLog,
    /// The last loop did work: linger before sleeping.
    active: bool,
}

impl Worker {
    pub(super) fn new(
        lane: Arc<Lane>,
        backend: Box<dyn Backend>,
        max_batch: usize,
        linger: Duration,
        retry: RetryPolicy,
    ) -> Self {
        Worker {
            lane,
            backend,
            max_batch,
            linger,
            retry,
            taken: Vec::with_capacity(max_batch),
            batch: Vec::with_capacity(max_batch),
            log: ErrorLog::default(),
            active: false,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            if self.take_batch() {
                self.write();
            }
            if self.flush_if_due() == Next::Exit {
                return;
            }
        }
    }

    /// Waits until there are events, a flush request or a shutdown, then moves up to
    /// `max_batch` events into `self.batch`. Returns whether it took any.
    fn take_batch(&mut self) -> bool {
        let lane = &*self.lane;
        let mut state = lane.lock();
        while state.queue.is_empty() && state.flush_wanted <= state.flushed && !state.closing {
            if self.active && !self.linger.is_zero() {
                // Just worked: linger, so that callers need not wake us for each event.
                state.worker = WorkerState::Lingering;
                state = Lane::wait(&lane.wake_worker, state, Some(self.linger));
                self.active = false;
            } else {
                state.worker = WorkerState::Sleeping;
                state = Lane::wait(&lane.wake_worker, state, None);
            }
        }
        state.worker = WorkerState::Busy;
        self.active = true;
        let n = state.queue.len().min(self.max_batch);
        self.taken.extend(state.queue.drain(..n));
        if n > 0 && state.producers_waiting > 0 {
            lane.space.notify_all();
        }
        drop(state);
        // The last holder of each event takes it without a copy; other backends' copies are
        // made here, off the recording thread.
        self.batch.extend(
            self.taken
                .drain(..)
                .map(|e| Arc::try_unwrap(e).unwrap_or_else(|e| (*e).clone())),
        );
        n > 0
    }

    /// Writes `self.batch` (retrying as the policy says) and counts the outcome.
    fn write(&mut self) {
        let n = self.batch.len() as u64;
        let result = self.write_with_retries();
        let failed = match &result {
            Ok(()) => 0,
            Err(e) => match e.rejected_events() {
                Some(ids) => count_rejected(&self.batch, ids),
                None => n,
            },
        };
        self.batch.clear();
        let lane = &*self.lane;
        let mut state = lane.lock();
        state.processed += n;
        state.written += n - failed;
        state.failed += failed;
        if let Err(e) = result {
            let message = e.to_string();
            self.log.error(
                &lane.name,
                &format!("{failed} events not written: {message}"),
            );
            state.last_error = Some(message);
        }
    }

    /// Hands the batch to the backend until it succeeds, fails for good, or the retry budget
    /// (or a shutdown deadline) runs out.
    fn write_with_retries(&mut self) -> Result<(), BackendError> {
        let mut backoff = None;
        loop {
            let error = match self.attempt() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !error.is_retryable() || error.rejected_events().is_some() {
                return Err(error);
            }
            let backoff = backoff.get_or_insert_with(|| self.retry.start());
            let Some(delay) = backoff.next_delay() else {
                return Err(error);
            };
            let message = error.to_string();
            self.log.error(
                &self.lane.name,
                &format!(
                    "{} events not written yet, retrying in {delay:.1?}: {message}",
                    self.batch.len()
                ),
            );
            self.lane.lock().last_error = Some(message);
            if !self.pause(delay) {
                return Err(error);
            }
            self.lane.lock().retries += 1;
        }
    }

    /// One call of `write_batch`; a panic is a failure.
    fn attempt(&mut self) -> Result<(), BackendError> {
        let (backend, batch) = (&mut self.backend, &self.batch);
        catch_unwind(AssertUnwindSafe(|| backend.write_batch(batch)))
            .unwrap_or_else(|_| Err(BackendError::new("backend panicked")))
    }

    /// Waits `delay` before a retry; returns `false` (at once, or when it comes) if a
    /// shutdown deadline falls within it.
    fn pause(&self, delay: Duration) -> bool {
        let lane = &*self.lane;
        let until = Instant::now() + delay;
        let mut state = lane.lock();
        loop {
            let now = Instant::now();
            if state.shutdown_deadline.is_some_and(|d| d <= now) {
                return false;
            }
            if now >= until {
                return true;
            }
            let wake = state.shutdown_deadline.map_or(until, |d| d.min(until));
            state = Lane::wait(&lane.wake_worker, state, Some(wake - now));
        }
    }

    /// Flushes the backend when a flush was asked for and everything before it is processed,
    /// or when the lane is closing and drained; then tells the waiters.
    fn flush_if_due(&mut self) -> Next {
        let lane = &*self.lane;
        let state = lane.lock();
        let finished = state.closing && state.queue.is_empty();
        let wanted = state.flush_wanted > state.flushed && state.processed >= state.flush_wanted;
        if !wanted && !finished {
            return Next::Continue;
        }
        let upto = state.processed;
        drop(state);
        let backend = &mut self.backend;
        let result = catch_unwind(AssertUnwindSafe(|| backend.flush()))
            .unwrap_or_else(|_| Err(BackendError::new("backend panicked in flush")));
        let mut state = lane.lock();
        if let Err(e) = result {
            state.flush_failures += 1;
            let message = format!("flush: {e}");
            self.log.error(&lane.name, &message);
            state.last_error = Some(message);
        }
        state.flushed = state.flushed.max(upto);
        lane.progress.notify_all();
        if finished {
            state.exited = true;
            lane.space.notify_all();
            return Next::Exit;
        }
        Next::Continue
    }
}

/// How many events of `batch` the backend named as rejected.
fn count_rejected(batch: &[AuditEvent], ids: &[uuid::Uuid]) -> u64 {
    let ids: HashSet<&uuid::Uuid> = ids.iter().collect();
    batch.iter().filter(|e| ids.contains(&e.id)).count() as u64
}

/// Reports backend failures on stderr (or `tracing`), at most once a second per backend.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn error(&mut self, backend: &str, what: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        self.last = Some(now);
        let more = if suppressed > 0 {
            format!(" (and {suppressed} more reports in the last second)")
        } else {
            String::new()
        };
        log_error(&format!("backend `{backend}` failed, {what}{more}"));
    }
}

/// Reports a pipeline error: to `tracing` (target `audit_core::auditor`) with the `tracing`
/// feature, else to stderr.
pub(crate) fn log_error(message: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "audit_core::auditor", "{message}");
    #[cfg(not(feature = "tracing"))]
    {
        use std::io::Write as _;
        // A closed stderr must not turn a report into a panic.
        let _ = writeln!(std::io::stderr(), "audit: {message}");
    }
}
