//! An in-memory backend for tests, with a matcher to assert that an action was audited.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::AuditEvent;
use crate::backend::{Backend, BackendError};

/// Keeps every event it receives in memory. Clones share the same events: give one to the
/// [`Auditor`](crate::Auditor) and assert on another, like Coder's mock auditor.
///
/// ```
/// use audit_core::{AuditEvent, Auditor};
/// use audit_core::backends::{Match, MemoryBackend};
///
/// let memory = MemoryBackend::new();
/// let auditor = Auditor::builder().backend(memory.clone()).build()?;
/// auditor.record(AuditEvent::builder("delete").resource_type("template").status(403).build()).unwrap();
/// auditor.flush();
/// assert!(memory.contains(Match::action("delete").resource_type("template").status(403)));
/// assert!(!memory.contains(Match::action("delete").succeeded()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
    name: String,
}

struct Shared {
    events: Mutex<Vec<AuditEvent>>,
    arrived: Condvar,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("name", &self.name)
            .field("events", &*self.lock())
            .finish()
    }
}

impl MemoryBackend {
    /// An empty backend named `memory`.
    pub fn new() -> Self {
        MemoryBackend {
            shared: Arc::new(Shared {
                events: Mutex::new(Vec::new()),
                arrived: Condvar::new(),
            }),
            name: "memory".to_owned(),
        }
    }

    /// Sets the name shown in stats.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AuditEvent>> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of every event received, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.lock().clone()
    }

    /// The last event received.
    pub fn last(&self) -> Option<AuditEvent> {
        self.lock().last().cloned()
    }

    /// How many events were received.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// No event was received.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every event.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Whether some event matches.
    pub fn contains(&self, m: Match) -> bool {
        self.lock().iter().any(|e| m.matches(e))
    }

    /// The events that match, in order.
    pub fn find(&self, m: Match) -> Vec<AuditEvent> {
        self.lock()
            .iter()
            .filter(|e| m.matches(e))
            .cloned()
            .collect()
    }

    /// How many events match.
    pub fn count(&self, m: Match) -> usize {
        self.lock().iter().filter(|e| m.matches(e)).count()
    }

    /// Waits until at least `n` events were received, or `timeout` passed; returns whether
    /// they were. (Usually [`Auditor::flush`](crate::Auditor::flush) is simpler.)
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut events = self.lock();
        while events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            events = self
                .shared
                .arrived
                .wait_timeout(events, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.lock().extend_from_slice(events);
        self.shared.arrived.notify_all();
        Ok(())
    }
}

/// A pattern over events for [`MemoryBackend::contains`]. Every part that is set must match;
/// parts not set match anything.
///
/// Start with [`Match::action`] or [`Match::any`], then narrow:
///
/// ```
/// use audit_core::backends::Match;
/// let m = Match::action("write").resource_type("workspace").username("alice").changed("ttl");
/// # let _ = m;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct Match {
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    resource_target: Option<String>,
    username: Option<String>,
    actor_id: Option<String>,
    status: Option<u16>,
    failed: Option<bool>,
    request_id: Option<uuid::Uuid>,
    fields: Vec<(String, Value)>,
    changed: Vec<String>,
}

impl Match {
    /// Matches every event.
    pub fn any() -> Self {
        Match::default()
    }

    /// Matches events with this action.
    pub fn action(action: impl Into<String>) -> Self {
        Match {
            action: Some(action.into()),
            ..Match::default()
        }
    }

    /// …and this resource type.
    pub fn resource_type(mut self, resource_type: impl Into<String>) -> Self {
        self.resource_type = Some(resource_type.into());
        self
    }

    /// …and this resource id.
    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.resource_id = Some(id.into());
        self
    }

    /// …and this resource target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.resource_target = Some(target.into());
        self
    }

    /// …by the actor with this username.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// …by the actor with this id.
    pub fn actor_id(mut self, id: impl Into<String>) -> Self {
        self.actor_id = Some(id.into());
        self
    }

    /// …with exactly this status code.
    pub fn status(mut self, status_code: u16) -> Self {
        self.status = Some(status_code);
        self
    }

    /// …that succeeded (status < 400).
    pub fn succeeded(mut self) -> Self {
        self.failed = Some(false);
        self
    }

    /// …that failed (status ≥ 400).
    pub fn failed(mut self) -> Self {
        self.failed = Some(true);
        self
    }

    /// …in this request.
    pub fn request_id(mut self, id: uuid::Uuid) -> Self {
        self.request_id = Some(id);
        self
    }

    /// …with this additional field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// …whose diff records a change of this field.
    pub fn changed(mut self, field: impl Into<String>) -> Self {
        self.changed.push(field.into());
        self
    }

    /// Whether `event` matches.
    pub fn matches(&self, e: &AuditEvent) -> bool {
        fn is(want: &Option<String>, got: &str) -> bool {
            want.as_deref().is_none_or(|w| w == got)
        }
        is(&self.action, &e.action)
            && is(&self.resource_type, &e.resource_type)
            && is(&self.resource_id, &e.resource_id)
            && is(&self.resource_target, &e.resource_target)
            && is(&self.username, &e.actor.username)
            && is(&self.actor_id, &e.actor.id)
            && self.status.is_none_or(|s| s == e.status_code)
            && self.failed.is_none_or(|f| f == e.is_failure())
            && self.request_id.is_none_or(|r| Some(r) == e.request_id)
            && self
                .fields
                .iter()
                .all(|(k, v)| e.additional_fields.get(k) == Some(v))
            && self.changed.iter().all(|f| e.diff.contains(f))
    }
}
