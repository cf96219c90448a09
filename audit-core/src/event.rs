//! The audit event ([`AuditEvent`]), its [`Actor`] and its builder.

use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Auditable, Diff, action};

/// The longest user agent kept, in bytes. Longer ones are cut on a character boundary and
/// end with [`TRUNCATED_MARK`]; an over-long user agent is never a reason to lose an event.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// Appended to a user agent that was cut to [`MAX_USER_AGENT_LEN`] bytes.
pub const TRUNCATED_MARK: &str = "…[truncated]";

/// Application-defined context of an event (a JSON object).
pub type Fields = Map<String, Value>;

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

impl Actor {
    /// A user.
    pub fn new(
        id: impl Into<String>,
        username: impl Into<String>,
        email: impl Into<String>,
    ) -> Self {
        Actor {
            id: id.into(),
            username: username.into(),
            email: email.into(),
        }
    }

    /// A system actor (a scheduler, a reaper, …): its name is both its id and its username.
    ///
    /// ```
    /// let a = audit_core::Actor::system("autostart");
    /// assert_eq!((a.id.as_str(), a.username.as_str(), a.email.as_str()), ("autostart", "autostart", ""));
    /// ```
    pub fn system(name: impl Into<String>) -> Self {
        let name = name.into();
        Actor {
            id: name.clone(),
            username: name,
            email: String::new(),
        }
    }
}

/// One audit log entry. Serializes with the snake_case keys of the contract.
///
/// The audit event: who did what to which resource, when, from where, and how it ended.
///
/// Build events with [`AuditEvent::builder`] (or let the [`Auditor`](crate::Auditor) build
/// them from a request). An event holds a [`Diff`], which never contains a secret field's
/// value, so an event can be serialized, logged and `Debug`-printed freely.
///
/// ```
/// use audit_core::{action, Actor, AuditEvent, Auditable};
///
/// #[derive(Auditable, Clone)]
/// #[audit(resource = "workspace", actions(create, write, delete))]
/// struct Workspace {
///     #[audit(track, id)] id: u64,
///     #[audit(track, target)] name: String,
///     #[audit(secret)] token: String,
/// }
///
/// let ws = Workspace { id: 7, name: "dev".into(), token: "t".into() };
/// let event = AuditEvent::builder(action::CREATE)
///     .actor(Actor::new("u-1", "alice", "alice@example.com"))
///     .resource(None, Some(&ws))
///     .status(201)
///     .build();
///
/// assert_eq!(event.resource_type, "workspace");
/// assert_eq!(event.resource_id, "7");
/// assert_eq!(event.resource_target, "dev");
/// assert!(event.diff.contains("token"));
/// assert_eq!(event.description(), "alice created workspace dev");
/// assert_eq!(event.id.get_version_num(), 7);
/// ```
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

impl AuditEvent {
    /// Starts building an event for `action` (see [`crate::action`] for the names).
    pub fn builder(action: impl Into<String>) -> EventBuilder {
        EventBuilder::new(action)
    }

    /// A new event id and its time: a UUID v7 whose timestamp is exactly `time`, and ids
    /// generated in one process are strictly increasing.
    ///
    /// ```
    /// let (a, t) = audit_core::AuditEvent::new_id();
    /// let (b, _) = audit_core::AuditEvent::new_id();
    /// assert!(a < b);
    /// let (secs, _) = a.get_timestamp().unwrap().to_unix();
    /// assert_eq!(secs as i64, t.timestamp());
    /// ```
    pub fn new_id() -> (Uuid, DateTime<Utc>) {
        static CONTEXT: LazyLock<Mutex<uuid::ContextV7>> =
            LazyLock::new(|| Mutex::new(uuid::ContextV7::new().with_additional_precision()));
        let now = Utc::now();
        let ts = uuid::Timestamp::from_unix(
            &*CONTEXT,
            u64::try_from(now.timestamp()).unwrap_or(0),
            now.timestamp_subsec_nanos(),
        );
        let (secs, nanos) = ts.to_unix();
        let time = i64::try_from(secs)
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, nanos))
            .unwrap_or(now);
        (Uuid::new_v7(ts), time)
    }

    /// Whether the action failed (`status_code >= 400`).
    pub fn is_failure(&self) -> bool {
        self.status_code >= 400
    }

    /// A one-line description, e.g. `"alice updated workspace dev"` or
    /// `"alice unsuccessfully attempted to delete workspace dev"`; see [`action::describe`].
    /// It is always one line, safe to print: a control, line-separator, bidirectional or
    /// invisible character in a name is escaped ([`terminal_safe`](crate::format::terminal_safe)).
    ///
    /// ```
    /// let e = audit_core::AuditEvent::builder("delete")
    ///     .actor(audit_core::Actor::new("1", "eve\n[info] alice", ""))
    ///     .resource_type("workspace")
    ///     .resource_target("dev\u{1b}[2J")
    ///     .build();
    /// assert_eq!(e.description(), r"eve\n[info] alice deleted workspace dev\u001b[2J");
    /// ```
    pub fn description(&self) -> String {
        action::describe(
            &self.actor.username,
            &self.action,
            &self.resource_type,
            &self.resource_target,
            self.status_code,
        )
    }

    /// Enforces the limits every recorded event obeys: the time is cut to microseconds, and
    /// the user agent to [`MAX_USER_AGENT_LEN`] bytes (see [`truncate_user_agent`]). The auditor calls this on
    /// every event it records; it is idempotent.
    pub fn normalize(&mut self) {
        // Stores keep microseconds (Postgres' precision): every output agrees on the time.
        self.time = chrono::SubsecRound::trunc_subsecs(self.time, 6);
        if let Some(ua) = &mut self.user_agent {
            truncate_user_agent(ua);
        }
    }
}

/// Cuts `ua` to at most [`MAX_USER_AGENT_LEN`] bytes on a character boundary and appends
/// [`TRUNCATED_MARK`] if it was longer. Returns whether it was cut. A value that already ends
/// with the mark and fits is left alone, so truncating twice changes nothing.
///
/// ```
/// let mut ua = "é".repeat(300); // 600 bytes
/// assert!(audit_core::truncate_user_agent(&mut ua));
/// assert!(ua.ends_with("…[truncated]"));
/// assert_eq!(ua.len(), 512 + "…[truncated]".len());
/// ```
pub fn truncate_user_agent(ua: &mut String) -> bool {
    let limit = MAX_USER_AGENT_LEN;
    if ua.len() <= limit
        || (ua.len() <= limit + TRUNCATED_MARK.len() && ua.ends_with(TRUNCATED_MARK))
    {
        return false;
    }
    let cut = (0..=limit)
        .rev()
        .find(|&i| ua.is_char_boundary(i))
        .unwrap_or(0);
    ua.truncate(cut);
    ua.push_str(TRUNCATED_MARK);
    true
}

/// Builds an [`AuditEvent`]. Start with [`AuditEvent::builder`].
///
/// Unset parts default to: a fresh id and the current time, the default (empty) actor, no
/// ip/user agent/organization/request, an empty diff, status 200 and no additional fields.
/// Events with a status ≥ 400 are built without a diff: a failed action changed nothing.
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the event"]
pub struct EventBuilder {
    event: AuditEvent,
    id_set: bool,
}

impl EventBuilder {
    /// Starts an event for `action`.
    pub fn new(action: impl Into<String>) -> Self {
        EventBuilder {
            event: AuditEvent {
                id: Uuid::nil(),
                time: DateTime::<Utc>::UNIX_EPOCH,
                actor: Actor::default(),
                organization_id: None,
                ip: None,
                user_agent: None,
                resource_type: String::new(),
                resource_id: String::new(),
                resource_target: String::new(),
                resource_icon: String::new(),
                action: action.into(),
                diff: Diff::default(),
                status_code: 200,
                additional_fields: Map::new(),
                request_id: None,
            },
            id_set: false,
        }
    }

    /// Sets the resource from snapshots of an [`Auditable`] value and computes the diff:
    /// `(None, Some)` for create, `(Some, Some)` for write, `(Some, None)` for delete.
    ///
    /// The resource type and icon come from `T::schema()`. The id and target come from the
    /// new snapshot, or from the old one if there is no new one or the action is `delete`.
    /// With neither snapshot, only the type and icon are set.
    pub fn resource<T: Auditable>(mut self, old: Option<&T>, new: Option<&T>) -> Self {
        self.set_resource(old, new, true, crate::diff::Fingerprinter::NONE);
        self
    }

    /// The event being built, for the builder methods defined beside their types (such as
    /// [`context`](Self::context), beside [`RequestContext`](crate::RequestContext)).
    pub(crate) fn event_mut(&mut self) -> &mut AuditEvent {
        &mut self.event
    }

    pub(crate) fn set_resource<T: Auditable>(
        &mut self,
        old: Option<&T>,
        new: Option<&T>,
        with_diff: bool,
        fingerprinter: crate::diff::Fingerprinter<'_>,
    ) {
        let schema = T::schema();
        let e = &mut self.event;
        e.resource_type = schema.resource_type.to_owned();
        e.resource_icon = schema.icon.unwrap_or_default().to_owned();
        let source = if e.action == action::DELETE {
            old.or(new)
        } else {
            new.or(old)
        };
        if let Some(s) = source {
            e.resource_id = s.resource_id();
            e.resource_target = s.resource_target();
        }
        e.diff = if with_diff {
            crate::diff::diff_with(old, new, fingerprinter)
        } else {
            Diff::default()
        };
    }

    /// Sets the resource type (e.g. for an event about no `Auditable` type).
    pub fn resource_type(mut self, resource_type: impl Into<String>) -> Self {
        self.event.resource_type = resource_type.into();
        self
    }

    /// Sets the resource id.
    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.event.resource_id = id.into();
        self
    }

    /// Sets the resource target (its human-readable name).
    pub fn resource_target(mut self, target: impl Into<String>) -> Self {
        self.event.resource_target = target.into();
        self
    }

    /// Sets the resource icon.
    pub fn resource_icon(mut self, icon: impl Into<String>) -> Self {
        self.event.resource_icon = icon.into();
        self
    }

    /// Sets the diff (replacing the one computed by [`resource`](Self::resource)).
    pub fn diff(mut self, diff: Diff) -> Self {
        self.event.diff = diff;
        self
    }

    /// Sets who did it.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.event.actor = actor;
        self
    }

    /// Sets the status code (default 200).
    pub fn status(mut self, status_code: u16) -> Self {
        self.event.status_code = status_code;
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.event.ip = Some(ip);
        self
    }

    /// Sets the client user agent (cut to [`MAX_USER_AGENT_LEN`] bytes).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.event.user_agent = Some(user_agent.into());
        self
    }

    /// Sets the organization.
    pub fn organization_id(mut self, organization_id: impl Into<String>) -> Self {
        self.event.organization_id = Some(organization_id.into());
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, request_id: Uuid) -> Self {
        self.event.request_id = Some(request_id);
        self
    }

    /// Adds one additional field (replacing one with the same key).
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.event
            .additional_fields
            .insert(key.into(), value.into());
        self
    }

    /// Adds additional fields (replacing those with the same keys).
    pub fn fields<K: Into<String>, V: Into<Value>>(
        mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.event
            .additional_fields
            .extend(fields.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets the id and time (for tests and imports; by default a fresh UUID v7 and now).
    pub fn id_and_time(mut self, id: Uuid, time: DateTime<Utc>) -> Self {
        self.event.id = id;
        self.event.time = time;
        self.id_set = true;
        self
    }

    /// The event, normalized (see [`AuditEvent::normalize`]).
    pub fn build(mut self) -> AuditEvent {
        if !self.id_set {
            (self.event.id, self.event.time) = AuditEvent::new_id();
        }
        if self.event.status_code >= 400 {
            self.event.diff = Diff::default();
        }
        self.event.normalize();
        self.event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_cut_on_a_char_boundary_and_marked_once() {
        let mut ua = format!("a{}", "€".repeat(400)); // 1 + 1200 bytes; 512 is inside a '€'
        assert!(truncate_user_agent(&mut ua));
        let kept = ua.strip_suffix(TRUNCATED_MARK).unwrap();
        assert_eq!(kept.len(), 511);
        assert!(!truncate_user_agent(&mut ua), "idempotent");
        let mut short = "curl/8.0".to_owned();
        assert!(!truncate_user_agent(&mut short));
        assert_eq!(short, "curl/8.0");
        let mut exact = "x".repeat(MAX_USER_AGENT_LEN);
        assert!(!truncate_user_agent(&mut exact));
    }

    #[test]
    fn ids_increase_and_carry_the_event_time() {
        let mut last = Uuid::nil();
        for _ in 0..1000 {
            let (id, time) = AuditEvent::new_id();
            assert!(id > last);
            last = id;
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            assert_eq!(secs as i64, time.timestamp());
            // v7 keeps milliseconds plus 12 bits of sub-millisecond precision
            assert_eq!(nanos / 1_000_000, time.timestamp_subsec_millis());
        }
    }

    #[test]
    fn failed_events_carry_no_diff_and_long_user_agents_are_kept() {
        let e = EventBuilder::new("write")
            .diff(serde_json::from_str(r#"{"a":{"old":1,"new":2,"secret":false}}"#).unwrap())
            .status(403)
            .user_agent("x".repeat(10_000))
            .build();
        assert!(e.diff.is_empty());
        assert!(e.user_agent.unwrap().ends_with(TRUNCATED_MARK));
    }
}
