//! The parser: from a query string to a checked [`Filter`], or every problem found.
//!
//! Two passes. The first reads the terms ([`lex`]) and sorts them by key, reporting malformed
//! terms, unknown keys, keys given twice and empty values in query order. The second checks
//! each value — built-in keys in [`Key::ALL`] order ([`Key::check`]), then additional keys
//! sorted — and then that `date_from` is not after `date_to`. Every problem is kept, up to
//! [`MAX_VALIDATIONS`].

use std::collections::BTreeMap;

use super::Filter;
use super::echo;
use super::error::{QueryError, Validation};
use super::key::Key;
use super::lex::{self, Element};
use super::vocabulary::Vocabulary;

/// At most this many problems are listed in a [`QueryError`]; past it, one last validation
/// (field `q`) says how many more were found.
pub const MAX_VALIDATIONS: usize = 100;

/// Parses `query` and checks it against `vocabulary` (see [`Vocabulary::parse`]).
pub(super) fn parse(vocabulary: &Vocabulary, query: &str) -> Result<Filter, QueryError> {
    let mut problems = Problems::default();
    let given = Given::read(vocabulary, query, &mut problems);

    let mut filter = Filter::default();
    for (key, value) in given.builtin {
        if value.is_empty() {
            continue; // already reported
        }
        match key.check(value, vocabulary, filter.resource_type()) {
            Ok(value) => filter.set(key, value),
            Err(problem) => problems.push(problem),
        }
    }
    for (key, value) in given.additional {
        if value.is_empty() {
            continue; // already reported
        }
        match vocabulary.check_additional(&key, &value) {
            Ok(()) => filter = filter.with_additional(key, value),
            Err(problem) => problems.push(problem),
        }
    }
    if let (Some(from), Some(to)) = (filter.date_from_day(), filter.date_to_day())
        && from > to
    {
        problems.push(Validation::new(
            Key::DateFrom.name(),
            format!("date_from ({from}) is after date_to ({to}); both dates are inclusive."),
        ));
    }
    problems.into_result(filter)
}

/// The raw value of each key given once, in key order.
#[derive(Default)]
struct Given {
    builtin: BTreeMap<Key, String>,
    additional: BTreeMap<String, String>,
}

/// Where a term's value goes.
enum Slot {
    Builtin(Key),
    Additional,
}

impl Given {
    /// Reads the terms of `query`, reporting the problems of their shape and keys.
    fn read(vocabulary: &Vocabulary, query: &str, problems: &mut Problems) -> Given {
        let mut given = Given::default();
        // Whether resource_type came from a bare word, to explain a duplicate.
        let mut bare_type = false;
        for raw in lex::split(query) {
            let (key, value, bare) = match lex::element(raw) {
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
                Ok(Element::Bare(word)) => (Key::ResourceType.name().to_owned(), word, true),
                Ok(Element::Term { key, value }) => (key, value, false),
            };
            let (slot, first) = if let Some(k) = Key::from_name(&key) {
                (Slot::Builtin(k), given.builtin.get(&k))
            } else if vocabulary.has_additional(&key) {
                (Slot::Additional, given.additional.get(&key))
            } else {
                problems.push(Validation::new(
                    echo::bare(&key),
                    vocabulary.unknown_key(&key),
                ));
                continue;
            };
            if let Some(first) = first {
                let mut detail = format!(
                    "Query key {} is given more than once ({} and {}); give it once.",
                    echo::quoted(&key),
                    echo::quoted(first),
                    echo::quoted(&value)
                );
                if bare || (matches!(slot, Slot::Builtin(Key::ResourceType)) && bare_type) {
                    detail.push_str(" A word without a key is a resource_type.");
                }
                problems.push(Validation::new(key, detail));
                continue;
            }
            if value.is_empty() {
                problems.push(Validation::new(
                    key.clone(),
                    format!(
                        "Query key {} has an empty value; give a value or drop the term.",
                        echo::quoted(&key)
                    ),
                ));
            }
            bare_type |= bare;
            match slot {
                Slot::Builtin(k) => given.builtin.insert(k, value),
                Slot::Additional => given.additional.insert(key, value),
            };
        }
        given
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
