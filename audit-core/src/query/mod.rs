//! The audit-log filter language: `resource_type:workspace action:delete username:me
//! date_from:2024-01-01`.
//!
//! [`Filter::parse`] turns a query string into a [`Filter`], checking resource types and
//! actions against the registered `#[derive(Auditable)]` resources; [`Filter::matches`]
//! evaluates it against an [`AuditEvent`] in memory, and its getters let a store translate the
//! same filter to SQL. A rejected query gives a [`QueryError`] listing every problem at once.
//!
//! # Grammar
//!
//! Space-separated `key:value` terms (Coder's syntax). Keys are case-insensitive; values keep
//! their case. Double quotes group a value that has spaces or colons
//! (`resource_target:"my ws"`, `resource_id:"a:b"`); inside quotes `\"` and `\\` escape. A
//! word without a key is a `resource_type`. Each key may be given once; the empty query
//! matches everything.
//!
//! | key | value | matches |
//! | --- | --- | --- |
//! | `resource_type` | a registered resource type | exactly |
//! | `resource_id` | any | exactly |
//! | `resource_target` | any | exactly |
//! | `action` | an action of a registered resource (of `resource_type`, if given) | exactly |
//! | `username` | a username, or `me` for the caller ([`UserMatch`]) | ignoring ASCII case |
//! | `email` | any | ignoring ASCII case |
//! | `date_from` | `YYYY-MM-DD` | events at or after the day's first instant (UTC) |
//! | `date_to` | `YYYY-MM-DD` | events on or before that day (UTC), to its last instant |
//! | `request_id` | a UUID | exactly |
//! | `build_reason` and other [`Vocabulary`] keys | a registered value | `additional_fields[key]` |
//!
//! ```
//! use audit_core::Auditable;
//! use audit_core::query::{Filter, UserMatch};
//!
//! #[derive(Auditable)]
//! #[audit(resource = "workspace", actions(create, write, delete))]
//! struct Workspace {
//!     #[audit(track, id)] id: u64,
//! }
//!
//! let filter = Filter::parse("workspace action:delete username:me date_to:2024-01-31")?;
//! assert_eq!(filter.resource_type(), Some("workspace"));
//! assert_eq!(filter.username(), Some(&UserMatch::Me));
//! assert_eq!(
//!     serde_json::to_string(&filter).unwrap(),
//!     r#"{"resource_type":"workspace","action":"delete","username":"me","date_to":"2024-01-31T23:59:59.999999Z"}"#,
//! );
//! assert_eq!(
//!     filter.to_query_string(),
//!     "resource_type:workspace action:delete username:me date_to:2024-01-31",
//! );
//!
//! let err = Filter::parse("resource_type:workspaces usrname:bob").unwrap_err();
//! let fields: Vec<_> = err.validations().iter().map(|v| v.field.as_str()).collect();
//! assert_eq!(fields, ["usrname", "resource_type"]);
//! assert!(err.validations()[0].detail.contains(r#"Did you mean "username"?"#));
//! # Ok::<(), audit_core::query::QueryError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use uuid::Uuid;

use crate::AuditEvent;

mod error;
mod lex;
mod vocabulary;

pub use error::{QueryError, Validation};
pub use vocabulary::{BUILD_REASONS, BUILTIN_KEYS, MAX_VALIDATIONS, Vocabulary};

/// Whose events `username:` selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserMatch {
    /// `username:me` — the caller, known only when the filter is evaluated
    /// ([`Filter::matches`]'s `me`, or [`Filter::resolve_me`]).
    Me,
    /// A username, as typed.
    Username(String),
}

impl UserMatch {
    /// The query value: `me`, or the username.
    pub fn as_str(&self) -> &str {
        match self {
            UserMatch::Me => "me",
            UserMatch::Username(name) => name,
        }
    }
}

impl From<&str> for UserMatch {
    /// `me` (in any ASCII case) is [`UserMatch::Me`]; anything else a username.
    fn from(value: &str) -> Self {
        if value.eq_ignore_ascii_case("me") {
            UserMatch::Me
        } else {
            UserMatch::Username(value.to_owned())
        }
    }
}

impl From<String> for UserMatch {
    fn from(value: String) -> Self {
        if value.eq_ignore_ascii_case("me") {
            UserMatch::Me
        } else {
            UserMatch::Username(value)
        }
    }
}

impl fmt::Display for UserMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UserMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A parsed audit-log query: the terms that were set. All terms must hold (AND); the default
/// (empty) filter matches every event.
///
/// Build one with [`Filter::parse`] / [`Vocabulary::parse`] (validated), or with the `with_*`
/// methods (not validated, for code that already has typed values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    resource_type: Option<String>,
    resource_id: Option<String>,
    resource_target: Option<String>,
    action: Option<String>,
    username: Option<UserMatch>,
    email: Option<String>,
    date_from: Option<NaiveDate>,
    date_to: Option<NaiveDate>,
    request_id: Option<Uuid>,
    additional: BTreeMap<String, String>,
}

/// The last microsecond of a day, the instant `date_to` serializes as.
const LAST_MICROSECOND: NaiveTime = match NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

impl Filter {
    /// Parses `query` against the default [`Vocabulary`]: every registered resource, plus
    /// `build_reason` with Coder's [`BUILD_REASONS`].
    ///
    /// # Errors
    ///
    /// A [`QueryError`] listing every problem of the query.
    pub fn parse(query: &str) -> Result<Filter, QueryError> {
        static DEFAULT: OnceLock<Vocabulary> = OnceLock::new();
        DEFAULT.get_or_init(Vocabulary::default).parse(query)
    }

    /// Whether no term is set (the filter matches every event).
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// `resource_type:` — the event's resource type, exactly.
    pub fn resource_type(&self) -> Option<&str> {
        self.resource_type.as_deref()
    }

    /// `resource_id:` — the event's resource id, exactly.
    pub fn resource_id(&self) -> Option<&str> {
        self.resource_id.as_deref()
    }

    /// `resource_target:` — the event's resource target (its name), exactly.
    pub fn resource_target(&self) -> Option<&str> {
        self.resource_target.as_deref()
    }

    /// `action:` — the event's action, exactly.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// `username:` — the actor's username, compared ignoring ASCII case (SQL:
    /// `lower(username) = lower(?)`); [`UserMatch::Me`] is the caller.
    pub fn username(&self) -> Option<&UserMatch> {
        self.username.as_ref()
    }

    /// `email:` — the actor's email, compared ignoring ASCII case (SQL:
    /// `lower(email) = lower(?)`). Kept as typed.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// `date_from:` as its day.
    pub fn date_from_day(&self) -> Option<NaiveDate> {
        self.date_from
    }

    /// `date_to:` as its day.
    pub fn date_to_day(&self) -> Option<NaiveDate> {
        self.date_to
    }

    /// `date_from:` — events at or after this instant, the first of its day (UTC).
    pub fn date_from(&self) -> Option<DateTime<Utc>> {
        self.date_from.map(|d| d.and_time(NaiveTime::MIN).and_utc())
    }

    /// `date_to:` — the last microsecond of its day (UTC), e.g. `2024-01-31T23:59:59.999999Z`.
    ///
    /// Stores with finer than microsecond timestamps should compare with
    /// [`date_to_exclusive`](Self::date_to_exclusive) instead.
    pub fn date_to(&self) -> Option<DateTime<Utc>> {
        self.date_to.map(|d| d.and_time(LAST_MICROSECOND).and_utc())
    }

    /// The first instant after the `date_to:` day: events match if `time < date_to_exclusive`.
    /// `None` if `date_to` is unset, or is the last day chrono can represent.
    pub fn date_to_exclusive(&self) -> Option<DateTime<Utc>> {
        self.date_to
            .and_then(|d| d.succ_opt())
            .map(|d| d.and_time(NaiveTime::MIN).and_utc())
    }

    /// `request_id:` — the event's request id.
    pub fn request_id(&self) -> Option<Uuid> {
        self.request_id
    }

    /// The value of an application-defined key (e.g. `build_reason`), matched against the
    /// event's `additional_fields[key]`.
    pub fn additional(&self, key: &str) -> Option<&str> {
        self.additional.get(key).map(String::as_str)
    }

    /// Every application-defined term, sorted by key.
    pub fn additional_terms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.additional
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `build_reason:`, the additional term of Coder's workspace builds.
    pub fn build_reason(&self) -> Option<&str> {
        self.additional("build_reason")
    }

    /// Sets `resource_type` (not validated).
    pub fn with_resource_type(mut self, value: impl Into<String>) -> Self {
        self.resource_type = Some(value.into());
        self
    }

    /// Sets `resource_id`.
    pub fn with_resource_id(mut self, value: impl Into<String>) -> Self {
        self.resource_id = Some(value.into());
        self
    }

    /// Sets `resource_target`.
    pub fn with_resource_target(mut self, value: impl Into<String>) -> Self {
        self.resource_target = Some(value.into());
        self
    }

    /// Sets `action` (not validated).
    pub fn with_action(mut self, value: impl Into<String>) -> Self {
        self.action = Some(value.into());
        self
    }

    /// Sets `username`; `"me"` converts to [`UserMatch::Me`].
    pub fn with_username(mut self, value: impl Into<UserMatch>) -> Self {
        self.username = Some(value.into());
        self
    }

    /// Sets `email`.
    pub fn with_email(mut self, value: impl Into<String>) -> Self {
        self.email = Some(value.into());
        self
    }

    /// Sets `date_from`.
    pub fn with_date_from(mut self, day: NaiveDate) -> Self {
        self.date_from = Some(day);
        self
    }

    /// Sets `date_to`.
    pub fn with_date_to(mut self, day: NaiveDate) -> Self {
        self.date_to = Some(day);
        self
    }

    /// Sets `request_id`.
    pub fn with_request_id(mut self, id: Uuid) -> Self {
        self.request_id = Some(id);
        self
    }

    /// Sets an application-defined term (not validated; `key` should be lower-case).
    pub fn with_additional(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.additional.insert(key.into(), value.into());
        self
    }

    /// This filter with `username:me` replaced by `username` (the caller's username).
    ///
    /// ```
    /// use audit_core::query::{Filter, UserMatch};
    ///
    /// let f = Filter::parse("username:me")?.resolve_me("alice");
    /// assert_eq!(f.username(), Some(&UserMatch::Username("alice".into())));
    /// # Ok::<(), audit_core::query::QueryError>(())
    /// ```
    pub fn resolve_me(&self, username: &str) -> Filter {
        let mut out = self.clone();
        if out.username == Some(UserMatch::Me) {
            out.username = Some(UserMatch::Username(username.to_owned()));
        }
        out
    }

    /// Whether `event` satisfies every term. `me` is the caller's username, for
    /// `username:me`; without it, `username:me` matches nothing.
    ///
    /// ```
    /// use audit_core::query::Filter;
    /// # use audit_core::{AuditEvent, Actor, Diff};
    /// # let event = AuditEvent {
    /// #     id: uuid::Uuid::nil(), time: "2024-01-31T23:59:59.9999999Z".parse().unwrap(),
    /// #     actor: Actor { id: "1".into(), username: "Alice".into(), email: "a@x.io".into() },
    /// #     organization_id: None, ip: None, user_agent: None,
    /// #     resource_type: "workspace".into(), resource_id: "7".into(),
    /// #     resource_target: "dev".into(), resource_icon: String::new(), action: "delete".into(),
    /// #     diff: Diff::default(), status_code: 200, additional_fields: Default::default(),
    /// #     request_id: None,
    /// # };
    /// // `event`: Alice deleted a workspace at 2024-01-31T23:59:59.9999999Z.
    /// let f = Filter::default().with_username("me").with_date_to("2024-01-31".parse().unwrap());
    /// assert!(f.matches(&event, Some("alice")));
    /// assert!(!f.matches(&event, Some("bob")));
    /// assert!(!f.matches(&event, None));
    /// ```
    pub fn matches(&self, event: &AuditEvent, me: Option<&str>) -> bool {
        fn exact(term: Option<&str>, value: &str) -> bool {
            term.is_none_or(|t| t == value)
        }
        fn folded(term: Option<&str>, value: &str) -> bool {
            term.is_none_or(|t| t.eq_ignore_ascii_case(value))
        }
        let user = match &self.username {
            None => true,
            Some(UserMatch::Me) => {
                me.is_some_and(|m| m.eq_ignore_ascii_case(&event.actor.username))
            }
            Some(UserMatch::Username(u)) => u.eq_ignore_ascii_case(&event.actor.username),
        };
        user && exact(self.resource_type(), &event.resource_type)
            && exact(self.resource_id(), &event.resource_id)
            && exact(self.resource_target(), &event.resource_target)
            && exact(self.action(), &event.action)
            && folded(self.email(), &event.actor.email)
            && self.date_from().is_none_or(|from| event.time >= from)
            && (self.date_to.is_none()
                || self.date_to_exclusive().is_none_or(|end| event.time < end))
            && self
                .request_id
                .is_none_or(|id| event.request_id == Some(id))
            && self
                .additional
                .iter()
                .all(|(key, value)| match event.additional_fields.get(key) {
                    Some(serde_json::Value::String(s)) => s == value,
                    // Numbers and booleans compare by their JSON text (`build_number:7`).
                    Some(serde_json::Value::Number(n)) => n.to_string() == *value,
                    Some(serde_json::Value::Bool(b)) => value == if *b { "true" } else { "false" },
                    _ => false,
                })
    }

    /// The query string of this filter, in canonical order, values quoted where needed:
    /// [`Vocabulary::parse`] gives back an equal filter when every term is valid for it.
    ///
    /// ```
    /// use audit_core::query::Filter;
    ///
    /// let f = Filter::default().with_resource_target("my ws").with_email("A@x.io");
    /// assert_eq!(f.to_query_string(), r#"resource_target:"my ws" email:A@x.io"#);
    /// assert_eq!(Filter::parse(&f.to_query_string())?, f);
    /// # Ok::<(), audit_core::query::QueryError>(())
    /// ```
    pub fn to_query_string(&self) -> String {
        let mut out = String::new();
        for (key, value) in self.terms() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(key);
            out.push(':');
            lex::quote(&value, &mut out);
        }
        out
    }

    /// Every set term as (key, query value), in canonical order.
    fn terms(&self) -> impl Iterator<Item = (&str, String)> {
        let day = |d: &Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        [
            self.resource_type.clone(),
            self.resource_id.clone(),
            self.resource_target.clone(),
            self.action.clone(),
            self.username.as_ref().map(|u| u.as_str().to_owned()),
            self.email.clone(),
            day(&self.date_from),
            day(&self.date_to),
            self.request_id.map(|id| id.to_string()),
        ]
        .into_iter()
        .zip(BUILTIN_KEYS.iter().copied())
        .filter_map(|(v, k)| Some((k, v?)))
        .chain(self.additional.iter().map(|(k, v)| (k.as_str(), v.clone())))
    }
}

impl fmt::Display for Filter {
    /// The query string ([`Filter::to_query_string`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_query_string())
    }
}

impl Serialize for Filter {
    /// An object of the terms that were set, under their key names; dates as RFC 3339 UTC
    /// instants (`date_from` the first instant of its day, `date_to` the last microsecond).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let mut map = serializer.serialize_map(Some(self.terms().count()))?;
        for (key, value) in self.terms() {
            match key {
                "date_from" => map.serialize_entry(key, &self.date_from().map(rfc3339))?,
                "date_to" => map.serialize_entry(key, &self.date_to().map(rfc3339))?,
                _ => map.serialize_entry(key, &value)?,
            }
        }
        map.end()
    }
}
