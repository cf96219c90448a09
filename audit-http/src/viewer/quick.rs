//! The quick filters beside the filter box: action, resource type, user, and a date range
//! (the last 24 hours, 7 days, 30 days, or a custom range of two dates).
//!
//! They write into the query, which stays the single truth: the quick filter form is sent
//! with the query the page shows, the server sets or removes one term per control and
//! redirects to the page of the resulting query, and the controls are drawn from the query
//! they are shown with. The date control is "any time" (no date terms), a preset, or "custom
//! range", which takes the two date fields. The filter language has whole days (UTC), so
//! "the last 24 hours" starts at the beginning of the day 24 hours ago: a preset covers at
//! least its span.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use audit_core::query::{Filter, UserMatch, Vocabulary};

use crate::params::Params;

/// The date presets: parameter value, label, days back.
const PRESETS: &[(&str, &str, i64)] = &[
    ("24h", "Last 24 hours", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
];

/// The value of the range control for dates typed in the two date fields.
const CUSTOM: &str = "custom";

/// The quick filter form's parameters.
pub(crate) const PARAMS: &[&str] = &["action", "resource_type", "username", "range", "from", "to"];

/// The quick filter form as sent: each control's value, `None` when it was not sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct QuickForm {
    action: Option<String>,
    resource_type: Option<String>,
    username: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl QuickForm {
    /// The quick filter values in `params`, or `None` if the request has none (it is not the
    /// quick filter form).
    pub(crate) fn from_params(params: &Params) -> Option<QuickForm> {
        let get = |name: &str| params.get(name).map(|v| v.trim().to_owned());
        let form = QuickForm {
            action: get("action"),
            resource_type: get("resource_type"),
            username: get("username"),
            range: get("range"),
            from: get("from"),
            to: get("to"),
        };
        (form != QuickForm::default()).then_some(form)
    }

    /// `base` with each sent control's term set (or removed, for an empty value).
    ///
    /// # Errors
    /// A date field that is not a date (`YYYY-MM-DD`), or an unknown range: what to fix.
    pub(crate) fn apply(&self, base: Filter, now: DateTime<Utc>) -> Result<Filter, String> {
        let mut f = base;
        if let Some(action) = &self.action {
            f = set(f, "action", action, |f, v| f.with_action(v));
        }
        if let Some(resource_type) = &self.resource_type {
            f = set(f, "resource_type", resource_type, |f, v| {
                f.with_resource_type(v)
            });
        }
        if let Some(username) = &self.username {
            f = set(f, "username", username, |f, v| {
                f.with_username(UserMatch::from(v))
            });
        }
        match self.range.as_deref() {
            // The range control was not sent: leave the dates alone.
            None => {}
            // "Any time", unless the date fields were changed (without a script, typing
            // dates does not switch the range control to "custom range").
            Some("") if !self.dates_changed(&f) => f = f.without("date_from").without("date_to"),
            Some("" | CUSTOM) => {
                let from = self.from.as_deref().unwrap_or("");
                let to = self.to.as_deref().unwrap_or("");
                f = set_day(f, "date_from", from, Filter::with_date_from)?;
                f = set_day(f, "date_to", to, Filter::with_date_to)?;
            }
            Some(preset) => {
                let Some(day) = preset_day(preset, now) else {
                    return Err(format!(
                        "The date range {preset:?} is not one of: 24h, 7d, 30d, custom."
                    ));
                };
                f = f.without("date_to").with_date_from(day);
            }
        }
        Ok(f)
    }
}

impl QuickForm {
    /// Whether the date fields hold other dates than `filter` has.
    fn dates_changed(&self, filter: &Filter) -> bool {
        let text = |day: Option<NaiveDate>| day.map(|d| d.to_string()).unwrap_or_default();
        self.from.as_deref().unwrap_or("") != text(filter.date_from_day())
            || self.to.as_deref().unwrap_or("") != text(filter.date_to_day())
    }
}

fn set(f: Filter, key: &str, value: &str, with: impl FnOnce(Filter, &str) -> Filter) -> Filter {
    if value.is_empty() {
        f.without(key)
    } else {
        with(f.without(key), value)
    }
}

fn set_day(
    f: Filter,
    key: &str,
    value: &str,
    with: fn(Filter, NaiveDate) -> Filter,
) -> Result<Filter, String> {
    if value.is_empty() {
        return Ok(f.without(key));
    }
    let day = value.parse::<NaiveDate>().map_err(|_| {
        format!(
            "{} must be a date (YYYY-MM-DD), got {:?}.",
            if key == "date_from" { "From" } else { "To" },
            value.chars().take(40).collect::<String>()
        )
    })?;
    Ok(with(f, day))
}

/// The first day a preset covers.
fn preset_day(preset: &str, now: DateTime<Utc>) -> Option<NaiveDate> {
    let (_, _, days) = PRESETS.iter().find(|(value, _, _)| *value == preset)?;
    Some((now - Duration::days(*days)).date_naive())
}

/// One option of a `<select>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// What the quick filter controls show for a query.
#[derive(Debug, Clone)]
pub(crate) struct QuickView {
    pub actions: Vec<Choice>,
    pub resource_types: Vec<Choice>,
    /// The username term as typed (`me` included).
    pub username: String,
    /// Usernames to offer (those on the page).
    pub usernames: Vec<String>,
    pub ranges: Vec<Choice>,
    pub from: String,
    pub to: String,
}

impl QuickView {
    /// The controls for `filter` (as the user wrote it), offering what `vocabulary` knows
    /// and the users in `usernames`.
    pub(crate) fn new(
        filter: &Filter,
        vocabulary: &Vocabulary,
        usernames: Vec<String>,
        now: DateTime<Utc>,
    ) -> QuickView {
        let resource_type = filter.resource_type().unwrap_or("");
        let action = filter.action().unwrap_or("");
        // The actions of the chosen resource type, or of every type.
        let mut actions: Vec<&str> = if resource_type.is_empty() {
            vocabulary
                .resource_types()
                .flat_map(|t| vocabulary.actions(t))
                .collect()
        } else {
            vocabulary.actions(resource_type).collect()
        };
        actions.push(action);
        let types: Vec<&str> = vocabulary
            .resource_types()
            .chain(std::iter::once(resource_type))
            .collect();
        let from = filter.date_from_day();
        let to = filter.date_to_day();
        let preset = match (from, to) {
            (Some(from), None) => PRESETS
                .iter()
                .find(|(value, _, _)| preset_day(value, now) == Some(from))
                .map(|(value, _, _)| *value),
            _ => None,
        };
        let range = match (preset, from.or(to)) {
            (Some(p), _) => p,
            (None, Some(_)) => CUSTOM,
            (None, None) => "",
        };
        let mut ranges = vec![choice("", "Any time", range)];
        ranges.extend(PRESETS.iter().map(|(v, l, _)| choice(v, l, range)));
        ranges.push(choice(CUSTOM, "Custom range", range));
        QuickView {
            actions: choices("Any action", actions, action),
            resource_types: choices("Any resource", types, resource_type),
            username: filter
                .username()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            usernames,
            ranges,
            from: from.map(|d| d.to_string()).unwrap_or_default(),
            to: to.map(|d| d.to_string()).unwrap_or_default(),
        }
    }
}

fn choice(value: &str, label: &str, current: &str) -> Choice {
    Choice {
        value: value.to_owned(),
        label: label.to_owned(),
        selected: value == current,
    }
}

/// "Any …" and the sorted, distinct non-empty `values`, `current` selected.
fn choices(any: &str, mut values: Vec<&str>, current: &str) -> Vec<Choice> {
    values.retain(|v| !v.is_empty());
    values.sort_unstable();
    values.dedup();
    std::iter::once(choice("", any, current))
        .chain(
            values
                .into_iter()
                .map(|v| choice(v, &v.replace('_', " "), current)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 10, 15, 0, 0).unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> QuickForm {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        QuickForm::from_params(&Params::parse(Some(&query), PARAMS).unwrap()).unwrap()
    }

    #[test]
    fn controls_set_and_remove_terms_and_keep_the_others() {
        let base = Filter::default()
            .with_resource_id("7")
            .with_action("create")
            .with_date_to(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap());
        let f = form(&[("action", "delete"), ("username", "me"), ("range", "7d")])
            .apply(base.clone(), now())
            .unwrap();
        assert_eq!(
            f.to_query_string(),
            "resource_id:7 action:delete username:me date_from:2024-03-03"
        );
        let f = form(&[
            ("action", ""),
            ("range", "custom"),
            ("from", "2024-01-01"),
            ("to", ""),
        ])
        .apply(base.clone(), now())
        .unwrap();
        assert_eq!(f.to_query_string(), "resource_id:7 date_from:2024-01-01");
        // "Any time" drops both dates the fields show…
        let f = form(&[("range", ""), ("from", ""), ("to", "2024-01-31")])
            .apply(base.clone(), now())
            .unwrap();
        assert_eq!(f.to_query_string(), "resource_id:7 action:create");
        // …but dates typed into the fields count, as if "custom range" had been chosen.
        let f = form(&[("range", ""), ("from", "2024-01-01"), ("to", "2024-01-31")])
            .apply(base.clone(), now())
            .unwrap();
        assert_eq!(
            f.to_query_string(),
            "resource_id:7 action:create date_from:2024-01-01 date_to:2024-01-31"
        );
        // Without the range control, the dates stay.
        let f = form(&[("username", "ann")]).apply(base, now()).unwrap();
        assert_eq!(
            f.to_query_string(),
            "resource_id:7 action:create username:ann date_to:2024-01-31"
        );
    }

    #[test]
    fn bad_dates_and_ranges_say_what_to_fix() {
        let err = form(&[("range", "custom"), ("from", "yesterday")])
            .apply(Filter::default(), now())
            .unwrap_err();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        let err = form(&[("range", "1y")])
            .apply(Filter::default(), now())
            .unwrap_err();
        assert!(err.contains("24h, 7d, 30d"), "{err}");
        assert!(QuickForm::from_params(&Params::parse(Some("q=x"), PARAMS).unwrap()).is_none());
    }

    #[test]
    fn the_controls_mirror_the_query() {
        let vocabulary = Vocabulary::new()
            .resource("workspace", &["create", "delete"])
            .resource("template", &["write"]);
        let f = Filter::default()
            .with_resource_type("workspace")
            .with_action("delete")
            .with_date_from(NaiveDate::from_ymd_opt(2024, 3, 9).unwrap());
        let view = QuickView::new(&f, &vocabulary, vec![], now());
        let selected = |c: &[Choice]| c.iter().find(|c| c.selected).map(|c| c.value.clone());
        assert_eq!(selected(&view.actions).as_deref(), Some("delete"));
        let offered: Vec<_> = view.actions.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(offered, ["", "create", "delete"]);
        assert_eq!(selected(&view.resource_types).as_deref(), Some("workspace"));
        assert_eq!(selected(&view.ranges).as_deref(), Some("24h"));
        let custom = Filter::default().with_date_to(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
        let view = QuickView::new(&custom, &vocabulary, vec![], now());
        assert_eq!(selected(&view.ranges).as_deref(), Some("custom"));
        assert_eq!(view.to, "2024-03-01");
    }
}
