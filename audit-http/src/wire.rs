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

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use audit_core::{Actor, AuditEvent, Diff};

/// One audit log entry, as the API returns it. It borrows from the event it shows
/// ([`AuditLog::new`]); a client that reads the API deserializes an owned
/// `AuditLog<'static>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog<'a> {
    /// The event id (a UUID v7).
    pub id: Uuid,
    /// The request the event belongs to, if any.
    pub request_id: Option<Uuid>,
    /// When it happened (UTC, RFC 3339).
    pub time: DateTime<Utc>,
    /// The organization of the resource; `null` for a site-wide event.
    #[serde(borrow)]
    pub organization_id: Option<Cow<'a, str>>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    #[serde(borrow)]
    pub user_agent: Option<Cow<'a, str>>,
    /// The resource type, e.g. `workspace`.
    #[serde(borrow)]
    pub resource_type: Cow<'a, str>,
    /// The resource's id.
    #[serde(borrow)]
    pub resource_id: Cow<'a, str>,
    /// The resource's name.
    #[serde(borrow)]
    pub resource_target: Cow<'a, str>,
    /// The resource's icon.
    #[serde(borrow)]
    pub resource_icon: Cow<'a, str>,
    /// The action, e.g. `write`.
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    /// What changed; a secret field shows only `{"secret": true}`.
    pub diff: Cow<'a, Diff>,
    /// How it ended (HTTP-style).
    pub status_code: u16,
    /// Application-defined context.
    pub additional_fields: Cow<'a, serde_json::Map<String, serde_json::Value>>,
    /// One line for humans, e.g. `alice updated workspace dev`.
    pub description: String,
    /// Who did it, as recorded; `null` when the event has no actor.
    #[serde(borrow)]
    pub user: Option<User<'a>>,
    /// The event's log position: increases in commit order, with no gaps.
    pub seq: u64,
}

/// The actor of an [`AuditLog`], as recorded with the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User<'a> {
    /// The actor's id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The actor's username at event time.
    #[serde(borrow)]
    pub username: Cow<'a, str>,
    /// The actor's email at event time.
    #[serde(borrow)]
    pub email: Cow<'a, str>,
}

impl<'a> User<'a> {
    /// The recorded actor, or `None` if the event has none (every part empty).
    pub fn of(actor: &'a Actor) -> Option<User<'a>> {
        if actor.id.is_empty() && actor.username.is_empty() && actor.email.is_empty() {
            return None;
        }
        Some(User {
            id: Cow::Borrowed(&actor.id),
            username: Cow::Borrowed(&actor.username),
            email: Cow::Borrowed(&actor.email),
        })
    }
}

impl<'a> AuditLog<'a> {
    /// The entry for `event`, stored at log position `seq`, borrowing its parts.
    pub fn new(seq: u64, event: &'a AuditEvent) -> Self {
        AuditLog {
            id: event.id,
            request_id: event.request_id,
            time: event.time,
            organization_id: event.organization_id.as_deref().map(Cow::Borrowed),
            ip: event.ip,
            user_agent: event.user_agent.as_deref().map(Cow::Borrowed),
            resource_type: Cow::Borrowed(&event.resource_type),
            resource_id: Cow::Borrowed(&event.resource_id),
            resource_target: Cow::Borrowed(&event.resource_target),
            resource_icon: Cow::Borrowed(&event.resource_icon),
            action: Cow::Borrowed(&event.action),
            diff: Cow::Borrowed(&event.diff),
            status_code: event.status_code,
            additional_fields: Cow::Borrowed(&event.additional_fields),
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
pub struct AuditLogsResponse<'a> {
    /// One page, newest first.
    #[serde(borrow)]
    pub audit_logs: Vec<AuditLog<'a>>,
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
        let event = event();
        let log = AuditLog::new(3, &event);
        let line = log.to_json_line();
        assert_eq!(line.lines().count(), 1);
        assert_eq!(serde_json::from_str::<AuditLog<'_>>(&line).unwrap(), log);
    }
}
