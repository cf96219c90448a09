//! [`Vocabulary`]: what a query may name — resource types with their actions, and the
//! application's additional keys with their allowed values — and the checks of a value
//! against it.

use std::collections::{BTreeMap, BTreeSet};

use super::additional_key::{AdditionalKey, valid_name};
use super::echo;
use super::error::{QueryError, Validation};
use super::key::Key;
use super::{Filter, parse};
use crate::ResourceSchema;

/// What a query may name: the resource types with their actions, and the application-defined
/// keys (fields of an event's `additional_fields`) with their allowed values. The built-in
/// [`Key`]s are always there.
///
/// [`Filter::parse`] uses [`Vocabulary::registered()`]: every registered
/// `#[derive(Auditable)]` resource, no additional keys. Build your own to add keys, such as
/// the ready-made [`BUILD_REASON`](super::BUILD_REASON):
///
/// ```
/// use audit_core::query::{BUILD_REASON, Filter, Vocabulary};
///
/// let vocabulary = Vocabulary::new()
///     .resource("workspace_build", &["start", "stop"])
///     .with_key(BUILD_REASON)
///     .additional_key("region", &["eu", "us"])
///     .additional_key_any("workspace_owner");
///
/// let filter =
///     vocabulary.parse("workspace_build build_reason:autostart region:eu workspace_owner:Ann")?;
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
    /// [`Vocabulary::registered`].
    fn default() -> Self {
        Vocabulary::registered()
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

    /// Adds an application-defined key ([`AdditionalKey`]). Adding a key again replaces it.
    pub fn with_key(mut self, key: AdditionalKey) -> Self {
        let allowed = key
            .allowed()
            .map(|values| values.iter().map(|v| (*v).to_owned()).collect());
        self.additional.insert(key.name().to_owned(), allowed);
        self
    }

    /// Adds a key that matches the event's `additional_fields[key]`, accepting only `allowed`
    /// values (case-sensitive). ASCII upper case in `key` is folded. Adding a key again
    /// replaces it.
    ///
    /// # Panics
    ///
    /// If `key` is not a valid key name ([`AdditionalKey`] says which are): a programming
    /// error. A name from a user goes through [`AdditionalKey`]'s `FromStr`, which returns
    /// the [`KeyError`](super::KeyError) instead.
    pub fn additional_key(self, key: &str, allowed: &[&str]) -> Self {
        let allowed = allowed.iter().map(|a| (*a).to_owned()).collect();
        self.add(key, Some(allowed))
    }

    /// Like [`additional_key`](Self::additional_key), accepting any non-empty value.
    ///
    /// # Panics
    ///
    /// As [`additional_key`](Self::additional_key).
    pub fn additional_key_any(self, key: &str) -> Self {
        self.add(key, None)
    }

    fn add(mut self, key: &str, allowed: Option<BTreeSet<String>>) -> Self {
        match valid_name(key) {
            Ok(key) => {
                self.additional.insert(key, allowed);
                self
            }
            Err(e) => panic!("{e}"),
        }
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

    /// Every key a query may use: the built-in keys in [`Key::ALL`] order, then the
    /// additional keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        Key::ALL
            .iter()
            .map(|k| k.name())
            .chain(self.additional.keys().map(String::as_str))
    }

    /// The values the additional key `key` accepts, sorted; `None` if it accepts any
    /// non-empty value, or is not an additional key. For completion in query editors.
    ///
    /// ```
    /// use audit_core::query::{BUILD_REASON, Vocabulary};
    ///
    /// let v = Vocabulary::new().with_key(BUILD_REASON).additional_key_any("region");
    /// let reasons: Vec<&str> = v.allowed_values("build_reason").unwrap().collect();
    /// assert_eq!(reasons, ["autostart", "autostop", "dormancy", "initiator"]);
    /// assert!(v.allowed_values("region").is_none());
    /// ```
    pub fn allowed_values(&self, key: &str) -> Option<impl Iterator<Item = &str>> {
        self.additional
            .get(key)?
            .as_ref()
            .map(|values| values.iter().map(String::as_str))
    }

    /// Whether `key` (lower-case) is one of the additional keys.
    pub(super) fn has_additional(&self, key: &str) -> bool {
        self.additional.contains_key(key)
    }

    /// Parses a query and checks it against this vocabulary. Empty (or blank) matches
    /// everything. See the [module docs](super) for the grammar.
    ///
    /// # Errors
    ///
    /// A [`QueryError`] listing every problem of the query.
    pub fn parse(&self, query: &str) -> Result<Filter, QueryError> {
        parse::parse(self, query)
    }

    /// The detail of an unknown key's problem.
    pub(super) fn unknown_key(&self, key: &str) -> String {
        let mut detail = format!("{} is not a valid query key.", echo::quoted(key));
        push_suggestion(&mut detail, key, self.keys());
        detail.push_str(&format!(" Valid keys: {}.", echo::list(self.keys())));
        detail
    }

    /// Checks a `resource_type` value.
    pub(super) fn check_resource_type(&self, t: &str) -> Result<(), Validation> {
        let detail = if self.resources.contains_key(t) {
            return Ok(());
        } else if self.resources.is_empty() {
            format!(
                "Unknown resource type {}: no resource types are registered.",
                echo::quoted(t)
            )
        } else {
            let valid: Vec<_> = self.resource_types().collect();
            unknown_value("resource type", t, &valid)
        };
        Err(Validation::new(Key::ResourceType.name(), detail))
    }

    /// Checks an `action` value, against the actions of `resource_type` if it is given.
    pub(super) fn check_action(
        &self,
        resource_type: Option<&str>,
        action: &str,
    ) -> Result<(), Validation> {
        self.action_problem(resource_type, action)
            .map_or(Ok(()), |detail| {
                Err(Validation::new(Key::Action.name(), detail))
            })
    }

    /// What is wrong with `action`, if anything.
    fn action_problem(&self, resource_type: Option<&str>, action: &str) -> Option<String> {
        match resource_type {
            Some(t) => {
                if self.actions(t).any(|a| a == action) {
                    return None;
                }
                let mut d = format!(
                    "Resource type {} has no action {}.",
                    echo::quoted(t),
                    echo::quoted(action)
                );
                push_suggestion(&mut d, action, self.actions(t));
                d.push_str(&format!(" Its actions: {}.", echo::list(self.actions(t))));
                Some(d)
            }
            None => {
                let all: BTreeSet<&str> = self
                    .resources
                    .values()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if all.contains(action) {
                    None
                } else if all.is_empty() {
                    Some(format!(
                        "Unknown action {}: no resource types with actions are registered.",
                        echo::quoted(action)
                    ))
                } else {
                    Some(unknown_value("action", action, &Vec::from_iter(all)))
                }
            }
        }
    }

    /// Checks the value of the additional key `key` (known to this vocabulary).
    pub(super) fn check_additional(&self, key: &str, value: &str) -> Result<(), Validation> {
        match self.additional.get(key) {
            Some(Some(allowed)) if !allowed.contains(value) => Err(Validation::new(
                key,
                unknown_value(
                    &format!("{key} value"),
                    value,
                    &allowed.iter().map(String::as_str).collect::<Vec<_>>(),
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// `Unknown {what} "x". Did you mean "y"? Valid {what}s: a, b.`
fn unknown_value(what: &str, value: &str, valid: &[&str]) -> String {
    let mut detail = format!("Unknown {what} {}.", echo::quoted(value));
    push_suggestion(&mut detail, value, valid.iter().copied());
    detail.push_str(&format!(
        " Valid {what}s: {}.",
        echo::list(valid.iter().copied())
    ));
    detail
}

/// Appends ` Did you mean "y"?` if a candidate is close to `word` ([`audit_suggest::closest`]).
fn push_suggestion<'a>(
    detail: &mut String,
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) {
    if let Some(s) = audit_suggest::closest(word, candidates) {
        detail.push_str(&format!(" Did you mean {}?", echo::quoted(s)));
    }
}
