//! One entry of the log as the viewer shows it: the row (time, who did what to which
//! resource, how it ended) and its details (exact time, client, request, organization,
//! resource, additional fields, changes). Built from a stored event and the query the page
//! shows (for the links that filter by a part of the entry); rendered by the templates,
//! which escape every value.

use chrono::NaiveDate;

use audit_core::store::StoredEvent;

use super::changes::{self, ChangeRow};
use super::links::Links;
use super::user_agent;

/// A link: its text and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub text: String,
    pub href: String,
}

/// The row and details of one entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryView {
    /// The event id.
    pub id: String,
    /// The log position.
    pub seq: u64,
    /// The day (UTC) the entry is grouped under.
    pub day: NaiveDate,
    /// RFC 3339, UTC, microseconds: the `datetime` the script turns into local time.
    pub time_iso: String,
    /// `2024-03-01 12:00:00 UTC`: the row's tooltip.
    pub time_utc: String,
    /// `2024-03-01 12:00:00.123456 UTC`: the exact time in the details.
    pub time_exact: String,
    /// `12:00:00`: the row's time of day (UTC until the script shows local time).
    pub clock: String,
    /// The sprite symbol of the resource type.
    pub icon: &'static str,
    /// The resource type as words: `workspace build`.
    pub resource_words: String,
    /// The action.
    pub action: String,
    /// The status code.
    pub status: u16,
    /// `ok`, `warn` (4xx) or `error` (5xx): how the row is coloured.
    pub status_class: &'static str,
    /// The description, in parts.
    pub description: Description,
    /// The details panel.
    pub details: Details,
}

/// "bob deleted workspace dev", with the user and the target as links when the description
/// names them.
#[derive(Debug, Clone)]
pub(crate) struct Description {
    /// The user, linked, if the description starts with their name.
    pub user: Option<Link>,
    /// What is between the user and the target (" deleted workspace "), or the whole
    /// description when it does not name them.
    pub middle: String,
    /// The target, linked to the resource's history, if the description ends with it.
    pub target: Option<Link>,
}

/// What the details panel shows.
#[derive(Debug, Clone)]
pub(crate) struct Details {
    pub user: Option<Link>,
    pub email: String,
    pub user_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub client: Option<String>,
    pub request: Option<Link>,
    pub organization: Option<Link>,
    pub resource_type: Option<Link>,
    pub resource_id: String,
    pub resource_target: String,
    pub history: String,
    pub additional: Vec<(String, String)>,
    pub changes: Vec<ChangeRow>,
}

impl EntryView {
    /// The view of `stored`, with links built from the query `links` starts from.
    pub(crate) fn new(stored: &StoredEvent, links: &Links<'_>) -> EntryView {
        let event = &stored.event;
        let user = (!event.actor.username.is_empty()).then(|| Link {
            text: event.actor.username.clone(),
            href: links.user(&event.actor.username),
        });
        let history = links.history(event);
        let diff = serde_json::to_value(&event.diff).unwrap_or_default();
        let details = Details {
            user: user.clone(),
            email: event.actor.email.clone(),
            user_id: event.actor.id.clone(),
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent.as_deref().map(changes::cut),
            client: event.user_agent.as_deref().and_then(user_agent::describe),
            request: event.request_id.map(|id| Link {
                text: id.to_string(),
                href: links.request(id),
            }),
            organization: event.organization_id.as_ref().map(|org| Link {
                text: org.clone(),
                href: links.organization(org),
            }),
            resource_type: (!event.resource_type.is_empty()).then(|| Link {
                text: event.resource_type.clone(),
                href: links.resource_type(&event.resource_type),
            }),
            resource_id: event.resource_id.clone(),
            resource_target: event.resource_target.clone(),
            history: history.clone(),
            additional: event
                .additional_fields
                .iter()
                .map(|(k, v)| (k.clone(), changes::plain_text(v)))
                .collect(),
            changes: changes::rows(&diff),
        };
        EntryView {
            id: event.id.to_string(),
            seq: stored.seq,
            day: event.time.date_naive(),
            time_iso: event.time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            time_utc: event.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            time_exact: event.time.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string(),
            clock: event.time.format("%H:%M:%S").to_string(),
            icon: icon(&event.resource_icon, &event.resource_type),
            resource_words: event.resource_type.replace('_', " "),
            action: event.action.clone(),
            status: event.status_code,
            status_class: status_class(event.status_code),
            description: describe(stored, user, history),
            details,
        }
    }

    /// Whether the request failed (status 400 or more).
    pub(crate) fn failed(&self) -> bool {
        self.status >= 400
    }

    /// Whether the details have a changes table.
    pub(crate) fn has_changes(&self) -> bool {
        !self.details.changes.is_empty()
    }
}

fn describe(stored: &StoredEvent, user: Option<Link>, history: String) -> Description {
    let event = &stored.event;
    let text = event.description();
    let target = &event.resource_target;
    // The description is "{user} {what}[ {target}]"; anything it changed (a control
    // character made safe) leaves that part unlinked.
    let Some(rest) = user
        .as_ref()
        .and_then(|u| text.strip_prefix(u.text.as_str()))
    else {
        return Description {
            middle: text,
            user: None,
            target: None,
        };
    };
    let target = (!target.is_empty())
        .then(|| rest.strip_suffix(target.as_str()))
        .flatten()
        .map(|middle| {
            (
                middle.to_owned(),
                Link {
                    text: target.clone(),
                    href: history,
                },
            )
        });
    match target {
        Some((middle, target)) => Description {
            user,
            middle,
            target: Some(target),
        },
        None => Description {
            middle: rest.to_owned(),
            user,
            target: None,
        },
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        500.. => "error",
        400.. => "warn",
        _ => "ok",
    }
}

/// The icons the page's sprite has.
const ICONS: &[&str] = &[
    "workspace",
    "workspace_build",
    "template",
    "user",
    "group",
    "organization",
    "key",
    "license",
    "audit_log",
    "settings",
    "resource",
];

/// The sprite symbol for a resource: its declared icon if the sprite has it, else one chosen
/// by its type, else a generic one. A declared icon is a name, never loaded as a URL.
fn icon(declared: &str, resource_type: &str) -> &'static str {
    let by_name = |name: &str| ICONS.iter().copied().find(|i| *i == name);
    by_name(declared)
        .or_else(|| by_name(resource_type))
        .unwrap_or(match resource_type {
            t if t.contains("key") || t.contains("token") || t.contains("secret") => "key",
            t if t.contains("template") => "template",
            t if t.contains("workspace") => "workspace",
            t if t.contains("user") || t.contains("member") => "user",
            t if t.contains("group") || t.contains("role") => "group",
            t if t.contains("organization") => "organization",
            t if t.contains("settings") || t.contains("config") => "settings",
            _ => "resource",
        })
}

/// "Today", "Yesterday", else "Friday, 1 March 2024": a day heading, relative to `today`.
pub(crate) fn day_label(day: NaiveDate, today: NaiveDate) -> String {
    if day == today {
        "Today".to_owned()
    } else if today.pred_opt() == Some(day) {
        "Yesterday".to_owned()
    } else {
        day.format("%A, %-d %B %Y").to_string()
    }
}

#[cfg(test)]
impl Description {
    /// The description as one text.
    fn text(&self) -> String {
        let part = |l: &Option<Link>| l.as_ref().map(|l| l.text.clone()).unwrap_or_default();
        format!("{}{}{}", part(&self.user), self.middle, part(&self.target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_core::query::Filter;
    use audit_core::{Actor, AuditEvent};

    fn stored(event: AuditEvent) -> StoredEvent {
        StoredEvent {
            seq: 9,
            hash: audit_core::chain::ChainHash::GENESIS,
            event,
        }
    }

    #[test]
    fn the_description_links_user_and_target() {
        let base = Filter::default();
        let links = Links::new(&base);
        let e = stored(
            AuditEvent::builder("delete")
                .actor(Actor::new("u-1", "bob", "bob@example.com"))
                .resource_type("workspace")
                .resource_id("7")
                .resource_target("dev")
                .status(200)
                .build(),
        );
        let view = EntryView::new(&e, &links);
        let d = &view.description;
        assert_eq!(d.text(), "bob deleted workspace dev");
        assert_eq!(d.user.as_ref().unwrap().text, "bob");
        assert_eq!(d.middle, " deleted workspace ");
        assert_eq!(d.target.as_ref().unwrap().text, "dev");
        assert_eq!(view.icon, "workspace");
        assert_eq!(view.status_class, "ok");
    }

    #[test]
    fn descriptions_that_do_not_split_stay_whole() {
        let base = Filter::default();
        let links = Links::new(&base);
        // No actor: "someone …", nothing to link.
        let e = stored(
            AuditEvent::builder("login")
                .resource_type("api_key")
                .status(401)
                .build(),
        );
        let view = EntryView::new(&e, &links);
        assert!(view.description.user.is_none());
        assert_eq!(view.description.middle, view.description.text());
        assert_eq!(view.status_class, "warn");
        assert_eq!(view.icon, "key");
        // A control character in the target is made safe in the description: no split.
        let e = stored(
            AuditEvent::builder("write")
                .actor(Actor::new("u", "ann", ""))
                .resource_type("template")
                .resource_target("a\u{1b}[31mb")
                .build(),
        );
        let view = EntryView::new(&e, &links);
        assert!(view.description.target.is_none());
        assert_eq!(view.description.user.as_ref().unwrap().text, "ann");
        // A description that does not end with the target (a logout) still links the user.
        let e = stored(
            AuditEvent::builder("logout")
                .actor(Actor::new("u", "bob", ""))
                .resource_type("api_key")
                .resource_target("bob")
                .build(),
        );
        let view = EntryView::new(&e, &links);
        assert_eq!(view.description.text(), "bob logged out");
        assert_eq!(view.description.user.as_ref().unwrap().text, "bob");
        assert!(view.description.target.is_none());
    }

    #[test]
    fn day_labels() {
        let today = NaiveDate::from_ymd_opt(2024, 3, 4).unwrap();
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(day_label(today.pred_opt().unwrap(), today), "Yesterday");
        assert_eq!(
            day_label(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(), today),
            "Friday, 1 March 2024"
        );
    }

    #[test]
    fn icons_are_names_from_the_sprite() {
        assert_eq!(icon("workspace", "anything"), "workspace");
        assert_eq!(
            icon("/icon/docker.png", "workspace_build"),
            "workspace_build"
        );
        assert_eq!(icon("", "git_ssh_key"), "key");
        assert_eq!(icon("javascript:alert(1)", "widget"), "resource");
    }
}
