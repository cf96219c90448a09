//! The JSON shapes of the API: [`AuditLog`] (Coder's audit log entry) and the list response.
//!
//! `AuditLog` has Coder's keys, so a client of Coder's `GET /api/v2/audit` reads it
//! unchanged, plus `seq`, the event's log position (what streams resume from). `user` is the
//! actor as recorded with the event (`{id, username, email}`), not the user as they are
//! today: renaming a user later does not rewrite history, and an organization auditor learns
//! nothing about users beyond what the log recorded.
//!
//! Compatibility note: Coder's Go SDK types `id`, `request_id`, `resource_id` and
//! `organization_id` as UUIDs. Here `id` and `request_id` are UUIDs too, but `resource_id`
//! and `organization_id` are whatever the application recorded (a numeric id renders as
//! `"7"`); a strict `codersdk` client needs the application to record UUIDs there.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use audit_core::{Actor, AuditEvent, Diff};

/// One audit log entry, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog {
    /// The event id (a UUID v7).
    pub id: Uuid,
    /// The request the event belongs to, if any.
    pub request_id: Option<Uuid>,
    /// When it happened (UTC, RFC 3339).
    pub time: DateTime<Utc>,
    /// The organization of the resource; `null` for a site-wide event.
    pub organization_id: Option<String>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The resource type, e.g. `workspace`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The resource's name.
    pub resource_target: String,
    /// The resource's icon.
    pub resource_icon: String,
    /// The action, e.g. `write`.
    pub action: String,
    /// What changed; a secret field shows only `{"secret": true}`.
    pub diff: Diff,
    /// How it ended (HTTP-style).
    pub status_code: u16,
    /// Application-defined context.
    pub additional_fields: serde_json::Map<String, serde_json::Value>,
    /// One line for humans, e.g. `alice updated workspace dev`.
    pub description: String,
    /// Who did it, as recorded; `null` when the event has no actor.
    pub user: Option<User>,
    /// The event's log position: increases in commit order, with no gaps.
    pub seq: u64,
}

/// The actor of an [`AuditLog`], as recorded with the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The actor's id.
    pub id: String,
    /// The actor's username at event time.
    pub username: String,
    /// The actor's email at event time.
    pub email: String,
}

impl User {
    /// The recorded actor, or `None` if the event has none (every part empty).
    pub fn of(actor: &Actor) -> Option<User> {
        if actor.id.is_empty() && actor.username.is_empty() && actor.email.is_empty() {
            return None;
        }
        Some(User {
            id: actor.id.clone(),
            username: actor.username.clone(),
            email: actor.email.clone(),
        })
    }
}

impl AuditLog {
    /// The entry for `event`, stored at log position `seq`.
    pub fn new(seq: u64, event: &AuditEvent) -> Self {
        AuditLog {
            id: event.id,
            request_id: event.request_id,
            time: event.time,
            organization_id: event.organization_id.clone(),
            ip: event.ip,
            user_agent: event.user_agent.clone(),
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
            resource_target: event.resource_target.clone(),
            resource_icon: event.resource_icon.clone(),
            action: event.action.clone(),
            diff: event.diff.clone(),
            status_code: event.status_code,
            additional_fields: event.additional_fields.clone(),
            description: event.description(),
            user: User::of(&event.actor),
            seq,
        }
    }

    /// The entry as one line of JSON (JSON escaping keeps any newline inside a value).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"error":"unserializable audit log"}"#.to_owned())
    }
}

/// The body of `GET /api/v2/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLogsResponse {
    /// One page, newest first.
    pub audit_logs: Vec<AuditLog>,
    /// How many events the query selects, counted up to a cap.
    pub count: u64,
    /// Whether `count` stopped at the cap (there are at least that many).
    pub count_capped: bool,
    /// Pass as `after` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent::builder("write")
            .actor(Actor::new("u-1", "alice", "alice@example.com"))
            .resource_type("workspace")
            .resource_id("7")
            .resource_target("dev")
            .organization_id("org-1")
            .user_agent("curl/8\nforged")
            .build()
    }

    #[test]
    fn keys_are_coders_plus_seq() {
        let json = serde_json::to_value(AuditLog::new(42, &event())).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "id",
            "request_id",
            "time",
            "organization_id",
            "ip",
            "user_agent",
            "resource_type",
            "resource_id",
            "resource_target",
            "resource_icon",
            "action",
            "diff",
            "status_code",
            "additional_fields",
            "description",
            "user",
            "seq",
        ];
        let mut keys = keys.clone();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(json["seq"], 42);
        assert_eq!(json["description"], "alice updated workspace dev");
        assert_eq!(
            json["user"],
            serde_json::json!({"id": "u-1", "username": "alice", "email": "alice@example.com"})
        );
    }

    #[test]
    fn no_actor_is_a_null_user_and_a_system_actor_is_a_user() {
        let anonymous = AuditEvent::builder("login").build();
        assert_eq!(AuditLog::new(1, &anonymous).user, None);
        let system = AuditEvent::builder("start")
            .actor(Actor::system("autostart"))
            .build();
        assert_eq!(
            AuditLog::new(1, &system).user.unwrap().username,
            "autostart"
        );
    }

    #[test]
    fn json_lines_stay_one_line_and_round_trip() {
        let log = AuditLog::new(3, &event());
        let line = log.to_json_line();
        assert_eq!(line.lines().count(), 1);
        assert_eq!(serde_json::from_str::<AuditLog>(&line).unwrap(), log);
    }
}
