//! [`Vocabulary`]: what a query may name — resource types, actions, application keys — and
//! the parser that checks a query against it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use uuid::Uuid;

use super::error::{QueryError, Validation};
use super::lex::{self, Element};
use super::{Filter, UserMatch};
use crate::ResourceSchema;

/// Coder's workspace build reasons, the allowed values of `build_reason` in the default
/// [`Vocabulary`].
pub const BUILD_REASONS: &[&str] = &["initiator", "autostart", "autostop", "dormancy"];

/// At most this many problems are listed in a [`QueryError`]; past it, one last validation
/// (field `q`) says how many more were found.
pub const MAX_VALIDATIONS: usize = 100;

/// The keys every vocabulary knows, in the order a [`Filter`] renders and serializes them.
pub const BUILTIN_KEYS: &[&str] = &[
    "resource_type",
    "resource_id",
    "resource_target",
    "action",
    "username",
    "email",
    "date_from",
    "date_to",
    "request_id",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    ResourceType,
    ResourceId,
    ResourceTarget,
    Action,
    Username,
    Email,
    DateFrom,
    DateTo,
    RequestId,
}

impl Key {
    const ALL: [Key; 9] = [
        Key::ResourceType,
        Key::ResourceId,
        Key::ResourceTarget,
        Key::Action,
        Key::Username,
        Key::Email,
        Key::DateFrom,
        Key::DateTo,
        Key::RequestId,
    ];

    fn name(self) -> &'static str {
        BUILTIN_KEYS[self as usize]
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a query may name: the resource types with their actions, and the application-defined
/// keys (fields of an event's `additional_fields`) with their allowed values.
///
/// [`Filter::parse`] uses [`Vocabulary::default()`]: every registered `#[derive(Auditable)]`
/// resource plus `build_reason` with Coder's [`BUILD_REASONS`]. Build your own to add keys:
///
/// ```
/// use audit_core::query::{Filter, Vocabulary};
///
/// let vocabulary = Vocabulary::new()
///     .resource("workspace_build", &["start", "stop"])
///     .additional_key("build_reason", &["initiator", "autostart", "autostop"])
///     .additional_key_any("workspace_owner");
///
/// let filter = vocabulary.parse("workspace_build build_reason:autostart workspace_owner:Ann")?;
/// assert_eq!(filter.resource_type(), Some("workspace_build"));
/// assert_eq!(filter.additional("build_reason"), Some("autostart"));
/// assert_eq!(filter.additional("workspace_owner"), Some("Ann"));
///
/// let err = vocabulary.parse("build_reason:cron").unwrap_err();
/// assert_eq!(err.validations()[0].field, "build_reason");
/// # Ok::<(), audit_core::query::QueryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    /// resource type → its actions.
    resources: BTreeMap<String, BTreeSet<String>>,
    /// additional key → allowed values (`None`: any non-empty value).
    additional: BTreeMap<String, Option<BTreeSet<String>>>,
}

impl Default for Vocabulary {
    /// The registered resources ([`Vocabulary::registered`]) plus `build_reason` with
    /// [`BUILD_REASONS`].
    fn default() -> Self {
        Vocabulary::registered().additional_key("build_reason", BUILD_REASONS)
    }
}

impl Vocabulary {
    /// A vocabulary with no resource types and no additional keys: any `resource_type` or
    /// `action` is rejected.
    pub fn new() -> Self {
        Vocabulary {
            resources: BTreeMap::new(),
            additional: BTreeMap::new(),
        }
    }

    /// Every resource registered with `#[derive(Auditable)]` ([`crate::resources`]), no
    /// additional keys.
    pub fn registered() -> Self {
        Self::from_resources(crate::resources())
    }

    /// The resource types and actions of these schemas. Schemas sharing a resource type have
    /// their actions merged.
    pub fn from_resources<'a>(schemas: impl IntoIterator<Item = &'a ResourceSchema>) -> Self {
        schemas
            .into_iter()
            .fold(Self::new(), |v, s| v.resource(s.resource_type, s.actions))
    }

    /// Adds a resource type with its actions (merged with those it already has).
    pub fn resource(mut self, resource_type: &str, actions: &[&str]) -> Self {
        self.resources
            .entry(resource_type.to_owned())
            .or_default()
            .extend(actions.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Adds an application-defined key that matches the event's `additional_fields[key]`,
    /// accepting only `allowed` values (case-sensitive). Adding a key again replaces it.
    ///
    /// # Panics
    ///
    /// If `key` (lower-cased) is empty, is a built-in key ([`BUILTIN_KEYS`]), or contains
    /// white space, `:` or `"` — a programming error, never caused by a query.
    pub fn additional_key(self, key: &str, allowed: &[&str]) -> Self {
        let allowed = allowed.iter().map(|a| (*a).to_owned()).collect();
        self.add_key(key, Some(allowed))
    }

    /// Like [`additional_key`](Self::additional_key), accepting any non-empty value.
    ///
    /// # Panics
    ///
    /// As [`additional_key`](Self::additional_key).
    pub fn additional_key_any(self, key: &str) -> Self {
        self.add_key(key, None)
    }

    fn add_key(mut self, key: &str, allowed: Option<BTreeSet<String>>) -> Self {
        let key = key.to_lowercase();
        assert!(
            !key.is_empty()
                && !key
                    .chars()
                    .any(|c| c.is_whitespace() || c == ':' || c == '"'),
            "additional query key {key:?} must be non-empty, without white space, ':' or '\"'"
        );
        assert!(
            Key::from_name(&key).is_none(),
            "additional query key {key:?} is a built-in key"
        );
        self.additional.insert(key, allowed);
        self
    }

    /// The known resource types, sorted.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }

    /// The actions of `resource_type`, sorted (none if it is unknown).
    pub fn actions(&self, resource_type: &str) -> impl Iterator<Item = &str> {
        self.resources
            .get(resource_type)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Every key a query may use: the built-in keys, then the additional keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        BUILTIN_KEYS
            .iter()
            .copied()
            .chain(self.additional.keys().map(String::as_str))
    }

    /// Parses a query and checks it against this vocabulary. Empty (or blank) matches
    /// everything. See the [module docs](super) for the grammar.
    ///
    /// # Errors
    ///
    /// A [`QueryError`] listing every problem of the query.
    pub fn parse(&self, query: &str) -> Result<Filter, QueryError> {
        let mut errors = Problems::default();
        let mut builtin: [Option<String>; 9] = Default::default();
        let mut additional = BTreeMap::new();
        // Whether resource_type came from a bare word, to explain a duplicate.
        let mut bare_type = false;

        for raw in lex::split(query) {
            let (key, value, bare) = match lex::element(raw) {
                Err(v) => {
                    errors.push(v);
                    continue;
                }
                Ok(Element::Bare(word)) => ("resource_type".to_owned(), word, true),
                Ok(Element::Term { key, value }) => (key, value, false),
            };
            let slot = if let Some(k) = Key::from_name(&key) {
                &mut builtin[k as usize]
            } else if self.additional.contains_key(&key) {
                additional.entry(key.clone()).or_insert(None)
            } else {
                errors.push(self.unknown_key(&key));
                continue;
            };
            if let Some(first) = slot {
                let mut detail = format!(
                    "Query key {key:?} is given more than once ({} and {}); give it once.",
                    lex::echo(first),
                    lex::echo(&value)
                );
                if bare || (key == "resource_type" && bare_type) {
                    detail.push_str(" A word without a key is a resource_type.");
                }
                errors.push(Validation::new(key, detail));
                continue;
            }
            if value.is_empty() {
                errors.push(Validation::new(
                    key.clone(),
                    format!("Query key {key:?} has an empty value; give a value or drop the term."),
                ));
            }
            bare_type |= bare;
            *slot = Some(value);
        }

        let mut filter = Filter::default();
        let [
            rtype,
            rid,
            rtarget,
            action,
            username,
            email,
            from,
            to,
            request,
        ] = builtin;
        let take = |v: Option<String>| v.filter(|s| !s.is_empty());

        if let Some(t) = take(rtype) {
            if self.resources.contains_key(&t) {
                filter.resource_type = Some(t);
            } else {
                errors.push(self.unknown_resource_type(&t));
            }
        }
        filter.resource_id = take(rid);
        filter.resource_target = take(rtarget);
        if let Some(a) = take(action) {
            match self.check_action(filter.resource_type.as_deref(), &a) {
                Ok(()) => filter.action = Some(a),
                Err(v) => errors.push(v),
            }
        }
        filter.username = take(username).map(UserMatch::from);
        filter.email = take(email);
        filter.date_from = take(from).and_then(|d| date("date_from", &d, &mut errors));
        filter.date_to = take(to).and_then(|d| date("date_to", &d, &mut errors));
        if let Some(id) = take(request) {
            match Uuid::parse_str(&id) {
                Ok(id) => filter.request_id = Some(id),
                Err(_) => errors.push(Validation::new(
                    "request_id",
                    format!(
                        "Query key \"request_id\" must be a UUID \
                         (e.g. bb791ac3-f6ee-4da8-8ec2-f54e87013e93), got {}.",
                        lex::echo(&id)
                    ),
                )),
            }
        }
        for (key, value) in additional {
            let Some(value) = take(value) else { continue };
            match self.additional.get(&key) {
                Some(Some(allowed)) if !allowed.contains(&value) => {
                    errors.push(Validation::new(
                        key.clone(),
                        unknown_value(
                            &format!("{key} value"),
                            &value,
                            &allowed.iter().map(String::as_str).collect::<Vec<_>>(),
                        ),
                    ));
                }
                _ => {
                    filter.additional.insert(key, value);
                }
            }
        }
        if let (Some(from), Some(to)) = (filter.date_from, filter.date_to)
            && from > to
        {
            errors.push(Validation::new(
                "date_from",
                format!("date_from ({from}) is after date_to ({to}); both dates are inclusive."),
            ));
        }

        errors.into_result(filter)
    }

    fn unknown_key(&self, key: &str) -> Validation {
        let mut detail = format!("{} is not a valid query key.", lex::echo(key));
        if let Some(s) = suggest(key, self.keys()) {
            detail.push_str(&format!(" Did you mean {s:?}?"));
        }
        let valid: Vec<_> = self.keys().collect();
        detail.push_str(&format!(" Valid keys: {}.", valid.join(", ")));
        Validation::new(lex::truncate(key), detail)
    }

    fn unknown_resource_type(&self, t: &str) -> Validation {
        let detail = if self.resources.is_empty() {
            format!(
                "Unknown resource type {}: no resource types are registered.",
                lex::echo(t)
            )
        } else {
            unknown_value(
                "resource type",
                t,
                &self.resource_types().collect::<Vec<_>>(),
            )
        };
        Validation::new("resource_type", detail)
    }

    fn check_action(&self, resource_type: Option<&str>, action: &str) -> Result<(), Validation> {
        let detail = match resource_type {
            Some(t) => {
                if self.actions(t).any(|a| a == action) {
                    return Ok(());
                }
                let valid: Vec<_> = self.actions(t).collect();
                let mut d = format!("Resource type {t:?} has no action {}.", lex::echo(action));
                if let Some(s) = suggest(action, valid.iter().copied()) {
                    d.push_str(&format!(" Did you mean {s:?}?"));
                }
                d.push_str(&format!(" Its actions: {}.", valid.join(", ")));
                d
            }
            None => {
                let all: BTreeSet<&str> = self
                    .resources
                    .values()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if all.contains(action) {
                    return Ok(());
                }
                if all.is_empty() {
                    format!(
                        "Unknown action {}: no resource types with actions are registered.",
                        lex::echo(action)
                    )
                } else {
                    unknown_value("action", action, &all.into_iter().collect::<Vec<_>>())
                }
            }
        };
        Err(Validation::new("action", detail))
    }
}

/// The problems found so far: the first [`MAX_VALIDATIONS`] in full, then only a count, so a
/// huge query of bad terms cannot make a huge error.
#[derive(Default)]
struct Problems {
    list: Vec<Validation>,
    more: usize,
}

impl Problems {
    fn push(&mut self, v: Validation) {
        if self.list.len() < MAX_VALIDATIONS {
            self.list.push(v);
        } else {
            self.more += 1;
        }
    }

    fn into_result(mut self, filter: Filter) -> Result<Filter, QueryError> {
        if self.list.is_empty() {
            return Ok(filter);
        }
        if self.more > 0 {
            self.list.push(Validation::new(
                "q",
                format!(
                    "{} more problems are not listed; fix the ones above first.",
                    self.more
                ),
            ));
        }
        Err(QueryError::new(self.list))
    }
}

/// `Unknown {what} "x". Did you mean "y"? Valid {what}s: a, b.`
fn unknown_value(what: &str, value: &str, valid: &[&str]) -> String {
    let mut detail = format!("Unknown {what} {}.", lex::echo(value));
    if let Some(s) = suggest(value, valid.iter().copied()) {
        detail.push_str(&format!(" Did you mean {s:?}?"));
    }
    detail.push_str(&format!(" Valid {what}s: {}.", valid.join(", ")));
    detail
}

/// Parses a strict `YYYY-MM-DD` date, reporting a problem under `field`.
fn date(field: &str, value: &str, errors: &mut Problems) -> Option<NaiveDate> {
    let parsed = parse_date(value);
    if parsed.is_none() {
        errors.push(Validation::new(
            field,
            format!(
                "Query key {field:?} must be a calendar date in the format YYYY-MM-DD \
                 (e.g. 2024-01-31), got {}.",
                lex::echo(value)
            ),
        ));
    }
    parsed
}

/// Exactly `YYYY-MM-DD` with ASCII digits, and a real calendar day.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
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

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    const MAX_LEN: usize = 64;
    let word: Vec<char> = word.to_lowercase().chars().collect();
    if word.is_empty() || word.len() > MAX_LEN {
        return None;
    }
    let limit = (word.len() / 3).clamp(1, 3);
    candidates
        .filter(|c| c.chars().count() <= MAX_LEN)
        .map(|c| (edit_distance(&word, &c.chars().collect::<Vec<_>>()), c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost 1.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn edit_distance_counts_typos() {
        let d = |a: &str, b: &str| {
            edit_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("username", "username"), 0);
        assert_eq!(d("usrname", "username"), 1);
        assert_eq!(d("actoin", "action"), 1);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(
            suggest("DATEFROM", BUILTIN_KEYS.iter().copied()),
            Some("date_from")
        );
        assert_eq!(suggest("colour", BUILTIN_KEYS.iter().copied()), None);
    }
}
