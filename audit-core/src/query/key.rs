//! [`Key`]: the built-in query keys, and everything a key decides — its name, its
//! description, how its value is checked, how it matches an event and how it is written back.
//!
//! Each property is a `match` on the key, so a new key does not compile until it has every
//! one of them. A [`Filter`](super::Filter) stores each term under its `Key`, so the keys a
//! filter holds, renders and serializes cannot drift apart from this list.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::UserMatch;
use super::echo;
use super::error::Validation;
use super::vocabulary::Vocabulary;
use crate::AuditEvent;

/// A built-in query key: one every [`Vocabulary`] knows, matched against a column of the
/// event. Application-defined keys are [`AdditionalKey`](super::AdditionalKey)s.
///
/// [`Key::ALL`] lists them in canonical order: the order a [`Filter`](super::Filter)
/// renders and serializes its terms, and the order the parser checks their values in.
///
/// ```
/// use audit_core::query::Key;
///
/// assert_eq!(Key::from_name("date_from"), Some(Key::DateFrom));
/// assert_eq!(Key::DateFrom.name(), "date_from");
/// let names: Vec<_> = Key::ALL.iter().map(|k| k.name()).collect();
/// assert_eq!(names[..2], ["resource_type", "resource_id"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Key {
    /// `resource_type:` — the event's resource type.
    ResourceType,
    /// `resource_id:` — the event's resource id.
    ResourceId,
    /// `resource_target:` — the event's resource target (its name).
    ResourceTarget,
    /// `action:` — the event's action.
    Action,
    /// `username:` — the actor's username, or `me`.
    Username,
    /// `email:` — the actor's email.
    Email,
    /// `date_from:` — the first day of events.
    DateFrom,
    /// `date_to:` — the last day of events.
    DateTo,
    /// `request_id:` — the request the event was recorded in.
    RequestId,
    /// `organization_id:` — the organization of the event's resource.
    OrganizationId,
}

impl Key {
    /// Every built-in key, in canonical order (the declaration order of the variants).
    pub const ALL: [Key; 10] = [
        Key::ResourceType,
        Key::ResourceId,
        Key::ResourceTarget,
        Key::Action,
        Key::Username,
        Key::Email,
        Key::DateFrom,
        Key::DateTo,
        Key::RequestId,
        Key::OrganizationId,
    ];

    /// The key as written in a query.
    pub const fn name(self) -> &'static str {
        match self {
            Key::ResourceType => "resource_type",
            Key::ResourceId => "resource_id",
            Key::ResourceTarget => "resource_target",
            Key::Action => "action",
            Key::Username => "username",
            Key::Email => "email",
            Key::DateFrom => "date_from",
            Key::DateTo => "date_to",
            Key::RequestId => "request_id",
            Key::OrganizationId => "organization_id",
        }
    }

    /// What a value of this key looks like, for completion and help.
    pub const fn value_hint(self) -> &'static str {
        match self {
            Key::ResourceType => "a registered resource type",
            Key::ResourceId | Key::ResourceTarget | Key::Email => "any text",
            Key::OrganizationId => "an organization id",
            Key::Action => "an action of a registered resource (of resource_type, if given)",
            Key::Username => "a username, or me for yourself",
            Key::DateFrom | Key::DateTo => "a date, YYYY-MM-DD",
            Key::RequestId => "a UUID",
        }
    }

    /// Which events the key selects, for completion and help.
    pub const fn description(self) -> &'static str {
        match self {
            Key::ResourceType => "events on resources of this type (a bare word means the same)",
            Key::ResourceId => "events on the resource with this id",
            Key::ResourceTarget => "events on the resource with this name",
            Key::Action => "events of this action",
            Key::Username => "events by this user, ignoring ASCII case",
            Key::Email => "events by the user with this email, ignoring ASCII case",
            Key::DateFrom => "events at or after the first instant of this day (UTC)",
            Key::DateTo => "events up to the last instant of this day (UTC)",
            Key::RequestId => "events recorded in this request",
            Key::OrganizationId => "events in this organization (never a site-wide event)",
        }
    }

    /// The built-in key named `name` (lower-case, as [`Key::name`] gives it).
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Checks a non-empty query value of this key and turns it into the term a
    /// [`Filter`](super::Filter) holds. `resource_type` is the filter's resource type so far
    /// (the parser checks keys in [`Key::ALL`] order, so it is known before `action`).
    pub(super) fn check(
        self,
        value: String,
        vocabulary: &Vocabulary,
        resource_type: Option<&str>,
    ) -> Result<Value, Validation> {
        match self {
            Key::ResourceType => vocabulary
                .check_resource_type(&value)
                .map(|()| Value::Text(value)),
            Key::Action => vocabulary
                .check_action(resource_type, &value)
                .map(|()| Value::Text(value)),
            Key::ResourceId | Key::ResourceTarget | Key::Email | Key::OrganizationId => {
                Ok(Value::Text(value))
            }
            Key::Username => Ok(Value::User(UserMatch::from(value))),
            Key::DateFrom => self.day(&value, DayEdge::First),
            Key::DateTo => self.day(&value, DayEdge::Last),
            Key::RequestId => Uuid::parse_str(&value).map(Value::Id).map_err(|_| {
                Validation::new(
                    self.name(),
                    format!(
                        "Query key \"request_id\" must be a UUID \
                         (e.g. bb791ac3-f6ee-4da8-8ec2-f54e87013e93), got {}.",
                        echo::quoted(&value)
                    ),
                )
            }),
        }
    }

    /// A date term of this key: `value` as a day, bounding events at `edge`.
    fn day(self, value: &str, edge: DayEdge) -> Result<Value, Validation> {
        match parse_date(value) {
            Some(day) => Ok(Value::Day(day, edge)),
            None => Err(Validation::new(
                self.name(),
                format!(
                    "Query key \"{}\" must be a calendar date in the format YYYY-MM-DD \
                     (e.g. 2024-01-31), got {}.",
                    self.name(),
                    echo::quoted(value)
                ),
            )),
        }
    }

    /// The kind of [`Value`] this key holds.
    pub(super) const fn kind(self) -> Kind {
        match self {
            Key::ResourceType
            | Key::ResourceId
            | Key::ResourceTarget
            | Key::Action
            | Key::Email
            | Key::OrganizationId => Kind::Text,
            Key::Username => Kind::User,
            Key::DateFrom | Key::DateTo => Kind::Day,
            Key::RequestId => Kind::Id,
        }
    }

    /// Whether `event` satisfies the term `value` of this key. `me` is the caller's username,
    /// for `username:me`.
    pub(super) fn matches(self, value: &Value, event: &AuditEvent, me: Option<&str>) -> bool {
        match (self, value) {
            (Key::ResourceType, Value::Text(t)) => *t == event.resource_type,
            (Key::ResourceId, Value::Text(t)) => *t == event.resource_id,
            (Key::ResourceTarget, Value::Text(t)) => *t == event.resource_target,
            (Key::Action, Value::Text(t)) => *t == event.action,
            (Key::Email, Value::Text(t)) => t.eq_ignore_ascii_case(&event.actor.email),
            (Key::Username, Value::User(UserMatch::Me)) => {
                me.is_some_and(|m| m.eq_ignore_ascii_case(&event.actor.username))
            }
            (Key::Username, Value::User(UserMatch::Username(u))) => {
                u.eq_ignore_ascii_case(&event.actor.username)
            }
            (Key::DateFrom | Key::DateTo, Value::Day(day, edge)) => edge.holds(*day, event.time),
            (Key::RequestId, Value::Id(id)) => event.request_id == Some(*id),
            (Key::OrganizationId, Value::Text(t)) => event.organization_id.as_deref() == Some(t),
            // Unreachable: `Filter::set` stores only values of the key's kind.
            _ => false,
        }
    }
}

impl fmt::Display for Key {
    /// [`Key::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of value a built-in key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    User,
    Day,
    Id,
}

/// The value of a built-in term, as a [`Filter`](super::Filter) holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// Text compared with a column (exactly, or ignoring ASCII case: the key decides).
    Text(String),
    /// `username:`.
    User(UserMatch),
    /// A whole UTC day, and which edge of it bounds the events.
    Day(NaiveDate, DayEdge),
    /// `request_id:`.
    Id(Uuid),
}

impl Value {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Value::Text(_) => Kind::Text,
            Value::User(_) => Kind::User,
            Value::Day(..) => Kind::Day,
            Value::Id(_) => Kind::Id,
        }
    }

    /// The value as written in a query.
    pub(super) fn query_text(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::User(u) => u.as_str().to_owned(),
            Value::Day(day, _) => day.format("%Y-%m-%d").to_string(),
            Value::Id(id) => id.to_string(),
        }
    }

    /// The value as serialized: the query text, except that a day is the RFC 3339 UTC instant
    /// of its edge (`2024-01-31T23:59:59.999999Z` for the last).
    pub(super) fn json_text(&self) -> String {
        match self {
            Value::Day(day, edge) => edge
                .instant(*day)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            other => other.query_text(),
        }
    }
}

/// Which edge of a day a date term bounds events at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DayEdge {
    /// `date_from`: events at or after the day's first instant.
    First,
    /// `date_to`: events up to the day's last instant (inclusive).
    Last,
}

/// The last microsecond of a day, the instant `date_to` serializes as.
const LAST_MICROSECOND: NaiveTime = match NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

impl DayEdge {
    /// The instant this edge of `day` stands for: its first instant, or its last microsecond.
    pub(super) fn instant(self, day: NaiveDate) -> DateTime<Utc> {
        match self {
            DayEdge::First => day.and_time(NaiveTime::MIN).and_utc(),
            DayEdge::Last => day.and_time(LAST_MICROSECOND).and_utc(),
        }
    }

    /// Whether `time` is on the events' side of this edge of `day`. The last edge compares
    /// against the next day's first instant, so times finer than a microsecond are kept.
    fn holds(self, day: NaiveDate, time: DateTime<Utc>) -> bool {
        match self {
            DayEdge::First => time >= self.instant(day),
            DayEdge::Last => day_after(day).is_none_or(|end| time < end),
        }
    }
}

/// The first instant after `day`, `None` on the last day chrono can represent.
pub(super) fn day_after(day: NaiveDate) -> Option<DateTime<Utc>> {
    day.succ_opt().map(|d| d.and_time(NaiveTime::MIN).and_utc())
}

/// Exactly `YYYY-MM-DD` with ASCII digits, and a real calendar day.
pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_key_once_in_declaration_order() {
        for (i, key) in Key::ALL.into_iter().enumerate() {
            assert_eq!(key as usize, i, "{key}");
            assert_eq!(Key::from_name(key.name()), Some(key));
        }
        // The variant after the last one in ALL would be number ALL.len(): a variant added
        // to the enum but not to ALL fails the check above or this one.
        assert_eq!(Key::OrganizationId as usize + 1, Key::ALL.len());
        assert_eq!(Key::from_name("Resource_Type"), None);
        assert_eq!(Key::from_name("build_reason"), None);
    }

    #[test]
    fn the_module_docs_list_every_key() {
        let docs = include_str!("mod.rs");
        for key in Key::ALL {
            assert!(
                docs.contains(&format!(
                    "//! | `{}` | {} | {} |",
                    key.name(),
                    key.value_hint(),
                    key.description()
                )),
                "the table in query/mod.rs has no row for {key} with its value hint and \
                 description"
            );
        }
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("2024-01-31"),
            NaiveDate::from_ymd_opt(2024, 1, 31)
        );
        assert_eq!(
            parse_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        for bad in [
            "2023-02-29",
            "2024-1-31",
            "2024-01-3",
            "24-01-31",
            "2024/01/31",
            "2024-13-01",
            "2024-00-10",
            "+202-01-31",
            "2024-01-31T00:00:00Z",
            "٢٠٢٤-٠١-٣١",
            "",
            "é",
            "2024-01-3é",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
