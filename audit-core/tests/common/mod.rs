//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use audit_core::{AuditEvent, Auditable, Backend, BackendError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Auditable, Clone, Debug, PartialEq)]
#[audit(
    resource = "workspace",
    actions(create, write, delete),
    icon = "/icon/workspace.svg"
)]
pub(crate) struct Workspace {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub ttl: Option<i64>,
    #[audit(ignore, reason = "bumped on every request")]
    pub last_used_at: u64,
    #[audit(secret)]
    pub agent_token: String,
}

pub(crate) fn workspace() -> Workspace {
    Workspace {
        id: Uuid::parse_str("ca5647e0-ef50-4202-a246-717e04447380").unwrap(),
        name: "linux-container".into(),
        ttl: None,
        last_used_at: 1,
        agent_token: "token-1".into(),
    }
}

pub(crate) const FIXED_ID: &str = "0188b2a4-7d6e-7c2a-9f4b-3a1d2e5f6a7b";
pub(crate) const FIXED_TIME: &str = "2023-06-13T03:43:29.230422Z";

pub(crate) fn fixed_id() -> Uuid {
    Uuid::parse_str(FIXED_ID).unwrap()
}

pub(crate) fn fixed_time() -> DateTime<Utc> {
    FIXED_TIME.parse().unwrap()
}

/// Fails every batch.
pub(crate) struct FailingBackend;

impl Backend for FailingBackend {
    fn name(&self) -> &str {
        "failing"
    }
    fn write_batch(&mut self, _: &[AuditEvent]) -> Result<(), BackendError> {
        Err(BackendError::new("database is on fire"))
    }
}

/// Fails its first `failures` attempts with a retryable error (a dropped connection), then
/// writes; counts every attempt.
#[derive(Clone, Default)]
pub(crate) struct FlakyBackend {
    pub failures: usize,
    pub attempts: Arc<Mutex<usize>>,
    pub written: Arc<Mutex<Vec<AuditEvent>>>,
}

impl Backend for FlakyBackend {
    fn name(&self) -> &str {
        "flaky"
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        let mut attempts = self.attempts.lock().unwrap();
        *attempts += 1;
        if *attempts <= self.failures {
            return Err(BackendError::new("connection reset").retryable());
        }
        self.written.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// Writes every event except those with action `bad`, which it names as rejected.
#[derive(Clone, Default)]
pub(crate) struct PickyBackend {
    pub attempts: Arc<Mutex<usize>>,
    pub written: Arc<Mutex<Vec<AuditEvent>>>,
}

impl Backend for PickyBackend {
    fn name(&self) -> &str {
        "picky"
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        *self.attempts.lock().unwrap() += 1;
        let (bad, good): (Vec<&AuditEvent>, Vec<&AuditEvent>) =
            events.iter().partition(|e| e.action == "bad");
        self.written
            .lock()
            .unwrap()
            .extend(good.into_iter().cloned());
        if bad.is_empty() {
            return Ok(());
        }
        // Retryable as well: a named rejection must still not be retried.
        Err(BackendError::new("NUL byte in a string")
            .retryable()
            .rejected(bad.iter().map(|e| e.id).collect()))
    }
}

/// Counts events, sleeping `delay` per batch; records the largest batch seen.
#[derive(Clone, Default)]
pub(crate) struct SlowBackend {
    pub delay: Duration,
    pub seen: Arc<Mutex<(usize, usize)>>, // (events, largest batch)
}

impl Backend for SlowBackend {
    fn name(&self) -> &str {
        "slow"
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        std::thread::sleep(self.delay);
        let mut seen = self.seen.lock().unwrap();
        seen.0 += events.len();
        seen.1 = seen.1.max(events.len());
        Ok(())
    }
}

/// Blocks in `write_batch` until opened: makes queues fill up deterministically.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    state: Arc<(Mutex<(bool, usize)>, Condvar)>, // (open, batches entered)
}

impl Gate {
    pub(crate) fn open(&self) {
        let (m, c) = &*self.state;
        m.lock().unwrap().0 = true;
        c.notify_all();
    }
    /// Waits until the worker is inside `write_batch` (holding its first batch).
    pub(crate) fn wait_entered(&self) {
        let (m, c) = &*self.state;
        let mut s = m.lock().unwrap();
        while s.1 == 0 {
            s = c.wait(s).unwrap();
        }
    }
}

pub(crate) struct GateBackend {
    pub gate: Gate,
    pub written: Arc<Mutex<Vec<AuditEvent>>>,
}

impl GateBackend {
    pub(crate) fn new(gate: &Gate) -> Self {
        GateBackend {
            gate: gate.clone(),
            written: Arc::default(),
        }
    }
}

impl Backend for GateBackend {
    fn name(&self) -> &str {
        "gated"
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        let (m, c) = &*self.gate.state;
        let mut s = m.lock().unwrap();
        s.1 += 1;
        c.notify_all();
        // Opens by itself after a while, so that a failing test fails instead of hanging in
        // the auditor's shutdown.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !s.0 && std::time::Instant::now() < deadline {
            s = c.wait_timeout(s, Duration::from_millis(100)).unwrap().0;
        }
        drop(s);
        self.written.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

pub(crate) fn event(action: &str) -> AuditEvent {
    AuditEvent::builder(action).resource_type("thing").build()
}

/// A `tracing` subscriber that keeps every event as one line: `LEVEL target field=value …`.
#[cfg(feature = "tracing")]
#[derive(Clone, Default)]
pub(crate) struct TracingCapture(Arc<Mutex<Vec<String>>>);

#[cfg(feature = "tracing")]
impl TracingCapture {
    /// The process-wide capture, installed once as the global default (the tracing backend
    /// emits from its worker thread, where a scoped default would not apply).
    pub(crate) fn global() -> TracingCapture {
        static CAPTURE: std::sync::OnceLock<TracingCapture> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = TracingCapture::default();
                tracing::subscriber::set_global_default(capture.clone()).unwrap();
                capture
            })
            .clone()
    }

    /// The captured events, one line each.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(feature = "tracing")]
struct FieldLine<'a>(&'a mut String);

#[cfg(feature = "tracing")]
impl tracing::field::Visit for FieldLine<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

#[cfg(feature = "tracing")]
impl tracing::Subscriber for TracingCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        let mut line = format!("{} {}", meta.level(), meta.target());
        event.record(&mut FieldLine(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
