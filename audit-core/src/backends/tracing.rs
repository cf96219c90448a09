//! Audit events as `tracing` events (cargo feature `tracing`).

use tracing::Level;

use crate::AuditEvent;
use crate::backend::{Backend, BackendError};
use crate::format::Json;

/// Emits each audit event as a `tracing` event with target `audit`, message `audit_log`,
/// level INFO (WARN for a failed action, status ≥ 400) and one field per event key (`id`,
/// `time`, `user_id`, `username`, `email`, `organization_id`, `ip`, `user_agent`,
/// `resource_type`, `resource_id`, `resource_target`, `resource_icon`, `action`, `diff` and
/// `additional_fields` as JSON text, `status_code`, `request_id`). Missing values are left out.
///
/// A subscriber's filter can select these events with the target `audit`. The events are
/// emitted from the backend's worker thread, so use a global subscriber.
#[derive(Debug, Clone)]
pub struct TracingBackend {
    _private: (),
}

impl Default for TracingBackend {
    fn default() -> Self {
        TracingBackend::new()
    }
}

impl TracingBackend {
    /// A backend taking every event (narrow it with [`Backend::with_filter`]).
    pub fn new() -> Self {
        TracingBackend { _private: () }
    }

    /// Emits one event (what [`Backend::write_batch`] does for each).
    pub fn emit(event: &AuditEvent) {
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: "audit",
                    $level,
                    id = %event.id,
                    time = %event.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    user_id = event.actor.id.as_str(),
                    username = event.actor.username.as_str(),
                    email = event.actor.email.as_str(),
                    organization_id = event.organization_id.as_deref(),
                    ip = event.ip.map(tracing::field::display),
                    user_agent = event.user_agent.as_deref(),
                    resource_type = event.resource_type.as_str(),
                    resource_id = event.resource_id.as_str(),
                    resource_target = event.resource_target.as_str(),
                    resource_icon = event.resource_icon.as_str(),
                    action = event.action.as_str(),
                    diff = %Json(&event.diff),
                    status_code = event.status_code,
                    additional_fields = %Json(&event.additional_fields),
                    request_id = event.request_id.map(tracing::field::display),
                    "audit_log"
                )
            };
        }
        if event.is_failure() {
            emit!(Level::WARN);
        } else {
            emit!(Level::INFO);
        }
    }
}

impl Backend for TracingBackend {
    fn name(&self) -> &str {
        "tracing"
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        for event in events {
            TracingBackend::emit(event);
        }
        Ok(())
    }
}
