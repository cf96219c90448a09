//! [`Filter`]: a parsed query, its getters for the stores, in-memory matching, and its
//! query-string and JSON forms; [`UserMatch`], the value of `username:`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use uuid::Uuid;

use super::error::QueryError;
use super::key::{DayEdge, Key, Value, day_after};
use super::lex;
use super::vocabulary::Vocabulary;
use crate::AuditEvent;

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
    /// The built-in terms, each under its key (so in [`Key::ALL`] order).
    terms: BTreeMap<Key, Value>,
    /// The application-defined terms, by key.
    additional: BTreeMap<String, String>,
    /// The reader's scope: `None` for every event, else only events of these organizations
    /// (never a site-wide event). Not a term of the query: the server sets it.
    organizations: Option<BTreeSet<String>>,
}

impl Filter {
    /// Parses `query` against [`Vocabulary::registered`]: the built-in keys, and the resource
    /// types and actions of every registered `#[derive(Auditable)]` resource. Application
    /// keys (such as [`BUILD_REASON`](super::BUILD_REASON)) need a vocabulary that has them.
    ///
    /// # Errors
    ///
    /// A [`QueryError`] listing every problem of the query.
    pub fn parse(query: &str) -> Result<Filter, QueryError> {
        static REGISTERED: OnceLock<Vocabulary> = OnceLock::new();
        REGISTERED.get_or_init(Vocabulary::registered).parse(query)
    }

    /// Whether no term is set (the filter matches every event).
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Sets the built-in term `key`. `value` is of the key's kind: [`Key::check`] and the
    /// `with_*` methods make it so.
    pub(super) fn set(&mut self, key: Key, value: Value) {
        debug_assert_eq!(key.kind(), value.kind(), "{key}");
        self.terms.insert(key, value);
    }

    fn text(&self, key: Key) -> Option<&str> {
        match self.terms.get(&key)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    fn day(&self, key: Key) -> Option<NaiveDate> {
        match self.terms.get(&key)? {
            Value::Day(day, _) => Some(*day),
            _ => None,
        }
    }

    /// `resource_type:` — the event's resource type, exactly.
    pub fn resource_type(&self) -> Option<&str> {
        self.text(Key::ResourceType)
    }

    /// `resource_id:` — the event's resource id, exactly.
    pub fn resource_id(&self) -> Option<&str> {
        self.text(Key::ResourceId)
    }

    /// `resource_target:` — the event's resource target (its name), exactly.
    pub fn resource_target(&self) -> Option<&str> {
        self.text(Key::ResourceTarget)
    }

    /// `action:` — the event's action, exactly.
    pub fn action(&self) -> Option<&str> {
        self.text(Key::Action)
    }

    /// `username:` — the actor's username, compared ignoring ASCII case (SQL:
    /// `lower(username) = lower(?)`); [`UserMatch::Me`] is the caller.
    pub fn username(&self) -> Option<&UserMatch> {
        match self.terms.get(&Key::Username)? {
            Value::User(user) => Some(user),
            _ => None,
        }
    }

    /// `email:` — the actor's email, compared ignoring ASCII case (SQL:
    /// `lower(email) = lower(?)`). Kept as typed.
    pub fn email(&self) -> Option<&str> {
        self.text(Key::Email)
    }

    /// `date_from:` as its day.
    pub fn date_from_day(&self) -> Option<NaiveDate> {
        self.day(Key::DateFrom)
    }

    /// `date_to:` as its day.
    pub fn date_to_day(&self) -> Option<NaiveDate> {
        self.day(Key::DateTo)
    }

    /// `date_from:` — events at or after this instant, the first of its day (UTC).
    pub fn date_from(&self) -> Option<DateTime<Utc>> {
        self.date_from_day().map(|d| DayEdge::First.instant(d))
    }

    /// `date_to:` — the last microsecond of its day (UTC), e.g. `2024-01-31T23:59:59.999999Z`.
    ///
    /// Stores with finer than microsecond timestamps should compare with
    /// [`date_to_exclusive`](Self::date_to_exclusive) instead.
    pub fn date_to(&self) -> Option<DateTime<Utc>> {
        self.date_to_day().map(|d| DayEdge::Last.instant(d))
    }

    /// The first instant after the `date_to:` day: events match if `time < date_to_exclusive`.
    /// `None` if `date_to` is unset, or is the last day chrono can represent.
    pub fn date_to_exclusive(&self) -> Option<DateTime<Utc>> {
        self.date_to_day().and_then(day_after)
    }

    /// `request_id:` — the event's request id.
    pub fn request_id(&self) -> Option<Uuid> {
        match self.terms.get(&Key::RequestId)? {
            Value::Id(id) => Some(*id),
            _ => None,
        }
    }

    /// `organization_id:` — the organization of the event's resource, exactly. A site-wide
    /// event (no organization) never matches.
    pub fn organization_id(&self) -> Option<&str> {
        self.text(Key::OrganizationId)
    }

    /// The organizations this filter is restricted to ([`with_organizations`](Self::with_organizations)),
    /// or `None` when it is not restricted.
    pub fn organizations(&self) -> Option<&BTreeSet<String>> {
        self.organizations.as_ref()
    }

    /// Restricts the filter to events of `organizations`: a reader's scope, applied by the
    /// store's query. Site-wide events (no organization) are left out; an empty list selects
    /// nothing. A restriction only narrows: restricting again keeps the organizations in both.
    /// It is not a term of the query, so it is in neither the query string nor the JSON form.
    ///
    /// ```
    /// use audit_core::AuditEvent;
    /// use audit_core::query::Filter;
    ///
    /// let scoped = Filter::default().with_organizations(["org-1", "org-2"]);
    /// let org = |o: &str| AuditEvent::builder("write").organization_id(o).build();
    /// assert!(scoped.matches(&org("org-2"), None));
    /// assert!(!scoped.matches(&org("org-3"), None));
    /// assert!(!scoped.matches(&AuditEvent::builder("login").build(), None), "site-wide");
    ///
    /// let narrower = scoped.with_organizations(["org-2", "org-3"]);
    /// assert_eq!(narrower.organizations().unwrap().iter().collect::<Vec<_>>(), ["org-2"]);
    /// assert_eq!(narrower.to_query_string(), "");
    /// ```
    pub fn with_organizations<I, S>(mut self, organizations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let given: BTreeSet<String> = organizations.into_iter().map(Into::into).collect();
        self.organizations = Some(match self.organizations.take() {
            Some(current) => current.intersection(&given).cloned().collect(),
            None => given,
        });
        self
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

    /// Sets `resource_type` (not validated).
    pub fn with_resource_type(self, value: impl Into<String>) -> Self {
        self.with(Key::ResourceType, Value::Text(value.into()))
    }

    /// Sets `resource_id`.
    pub fn with_resource_id(self, value: impl Into<String>) -> Self {
        self.with(Key::ResourceId, Value::Text(value.into()))
    }

    /// Sets `resource_target`.
    pub fn with_resource_target(self, value: impl Into<String>) -> Self {
        self.with(Key::ResourceTarget, Value::Text(value.into()))
    }

    /// Sets `action` (not validated).
    pub fn with_action(self, value: impl Into<String>) -> Self {
        self.with(Key::Action, Value::Text(value.into()))
    }

    /// Sets `username`; `"me"` converts to [`UserMatch::Me`].
    pub fn with_username(self, value: impl Into<UserMatch>) -> Self {
        self.with(Key::Username, Value::User(value.into()))
    }

    /// Sets `email`.
    pub fn with_email(self, value: impl Into<String>) -> Self {
        self.with(Key::Email, Value::Text(value.into()))
    }

    /// Sets `date_from`.
    pub fn with_date_from(self, day: NaiveDate) -> Self {
        self.with(Key::DateFrom, Value::Day(day, DayEdge::First))
    }

    /// Sets `date_to`.
    pub fn with_date_to(self, day: NaiveDate) -> Self {
        self.with(Key::DateTo, Value::Day(day, DayEdge::Last))
    }

    /// Sets `request_id`.
    pub fn with_request_id(self, id: Uuid) -> Self {
        self.with(Key::RequestId, Value::Id(id))
    }

    /// Sets `organization_id`.
    pub fn with_organization_id(self, value: impl Into<String>) -> Self {
        self.with(Key::OrganizationId, Value::Text(value.into()))
    }

    /// Sets an application-defined term (not validated; `key` should be lower-case).
    pub fn with_additional(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.additional.insert(key.into(), value.into());
        self
    }

    fn with(mut self, key: Key, value: Value) -> Self {
        self.set(key, value);
        self
    }

    /// This filter without the term of `key` (a built-in key's name, or an application key);
    /// unchanged if it has no such term. With the `with_*` methods, what a query editor uses
    /// to change one term of a query and keep the others.
    ///
    /// ```
    /// use audit_core::query::Filter;
    ///
    /// let f = Filter::default().with_action("delete").with_username("bob").with_additional("build_reason", "autostart");
    /// assert_eq!(f.clone().without("action").without("build_reason").to_query_string(), "username:bob");
    /// assert_eq!(f.clone().without("email"), f);
    /// ```
    pub fn without(mut self, key: &str) -> Self {
        match Key::from_name(key) {
            Some(key) => {
                self.terms.remove(&key);
            }
            None => {
                self.additional.remove(key);
            }
        }
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
        match self.username() {
            Some(UserMatch::Me) => self
                .clone()
                .with_username(UserMatch::Username(username.into())),
            _ => self.clone(),
        }
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
        self.organizations.as_ref().is_none_or(|orgs| {
            event
                .organization_id
                .as_ref()
                .is_some_and(|org| orgs.contains(org))
        }) && self
            .terms
            .iter()
            .all(|(key, value)| key.matches(value, event, me))
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
        let terms = self.terms.iter().map(|(k, v)| (k.name(), v.query_text()));
        let additional = self.additional_terms().map(|(k, v)| (k, v.to_owned()));
        for (key, value) in terms.chain(additional) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(key);
            out.push(':');
            lex::quote(&value, &mut out);
        }
        out
    }
}

impl fmt::Display for Filter {
    /// The query string ([`Filter::to_query_string`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_query_string())
    }
}

impl Serialize for Filter {
    /// An object of the terms that were set, under their key names, in canonical order; dates
    /// as RFC 3339 UTC instants (`date_from` the first instant of its day, `date_to` the last
    /// microsecond).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.terms.len() + self.additional.len()))?;
        for (key, value) in &self.terms {
            map.serialize_entry(key.name(), &value.json_text())?;
        }
        for (key, value) in &self.additional {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
