//! The audit event: who did what to which resource, when, from where, and how it ended.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Diff;

/// The user (or system actor) behind an event, as they were when the event happened.
///
/// A snapshot, not a reference: renaming a user later does not rewrite history.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's id (a user id, or the name of a system actor such as `autostart`).
    pub id: String,
    /// The actor's username at event time.
    pub username: String,
    /// The actor's email at event time.
    pub email: String,
}

/// One audit log entry. Serializes with the snake_case keys of the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A UUID v7: ids sort by time.
    pub id: Uuid,
    /// When it happened (UTC).
    pub time: DateTime<Utc>,
    /// Who did it.
    pub actor: Actor,
    /// The organization the resource belongs to, if any.
    pub organization_id: Option<String>,
    /// The client's address, if the event came from a request.
    pub ip: Option<IpAddr>,
    /// The client's user agent, if the event came from a request.
    pub user_agent: Option<String>,
    /// The resource type, e.g. `workspace`.
    pub resource_type: String,
    /// The resource's id, from its `#[audit(id)]` field.
    pub resource_id: String,
    /// The resource's human-readable name, from its `#[audit(target)]` field.
    pub resource_target: String,
    /// The resource's icon, from `#[audit(icon = "…")]`.
    pub resource_icon: String,
    /// What was done, a snake_case action name such as `write`.
    pub action: String,
    /// What changed.
    pub diff: Diff,
    /// How it ended: an HTTP-style status code (200 for success, ≥ 400 for failure).
    pub status_code: u16,
    /// Application-defined context, e.g. `{"build_reason": "autostart"}`.
    pub additional_fields: serde_json::Map<String, serde_json::Value>,
    /// The request this event belongs to, if any.
    pub request_id: Option<Uuid>,
}
