//! `GET /audit/suggest`: what the filter box completes — the keys of the filter language,
//! the resource types and actions the vocabulary knows, the values of the application's
//! keys, date shortcuts, and the usernames of the newest entries the caller may read. Each
//! value comes with the term to insert, written by the filter language itself (so values
//! with spaces or quotes are quoted as the parser expects).
//!
//! Usernames come from one bounded keyset read — the newest [`RECENT`] entries in the
//! caller's scope — never from a scan of the log, and the read is recorded like any other.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::Serialize;

use audit_core::query::{Filter, Key, UserMatch};
use audit_core::store::PageRequest;

use super::SUGGEST_PATH;
use crate::api::{Access, AuditApi, READ};
use crate::error::ApiError;

/// How many of the newest entries usernames are taken from.
pub(crate) const RECENT: usize = 1000;
/// How many usernames are offered at most.
const MAX_USERNAMES: usize = 100;

#[derive(Serialize)]
struct Suggestions {
    keys: Vec<KeyHint>,
    values: BTreeMap<String, Vec<Value>>,
}

#[derive(Serialize)]
struct KeyHint {
    key: String,
    hint: String,
}

#[derive(Serialize)]
struct Value {
    value: String,
    /// The whole term, quoted as needed: `username:"a b"`.
    term: String,
    /// For actions: the resource types that have it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    of: Vec<String>,
}

fn value(value: &str, filter: Filter) -> Value {
    Value {
        value: value.to_owned(),
        term: filter.to_query_string(),
        of: Vec::new(),
    }
}

/// `GET /audit/suggest`.
pub(crate) async fn suggest(
    State(api): State<AuditApi>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let access = Access {
        action: READ,
        endpoint: SUGGEST_PATH,
        q: "",
        format: None,
    };
    let reader = api.reader(&parts, &access).await?;
    let vocabulary = api.vocabulary().await?;
    let recent = api
        .log()
        .page(
            &reader.scoped(&Filter::default()),
            PageRequest::first(RECENT),
        )
        .await?;
    api.record(&parts, &reader.principal, &access, 200).await?;

    let keys = vocabulary
        .keys()
        .map(|k| KeyHint {
            key: k.to_owned(),
            hint: Key::from_name(k)
                .map(|key| format!("{} — {}", key.value_hint(), key.description()))
                .unwrap_or_else(|| "an application field".to_owned()),
        })
        .collect();

    let mut values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let types: Vec<&str> = vocabulary.resource_types().collect();
    values.insert(
        "resource_type".into(),
        types
            .iter()
            .map(|t| value(t, Filter::default().with_resource_type(*t)))
            .collect(),
    );
    let mut actions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for t in &types {
        for a in vocabulary.actions(t) {
            actions.entry(a).or_default().push((*t).to_owned());
        }
    }
    values.insert(
        "action".into(),
        actions
            .into_iter()
            .map(|(a, of)| Value {
                of,
                ..value(a, Filter::default().with_action(a))
            })
            .collect(),
    );
    let mut usernames = vec![value("me", Filter::default().with_username(UserMatch::Me))];
    for event in &recent.events {
        let name = &event.actor.username;
        if usernames.len() > MAX_USERNAMES {
            break;
        }
        if !name.is_empty() && !usernames.iter().any(|v| &v.value == name) {
            let filter = Filter::default().with_username(UserMatch::Username(name.clone()));
            usernames.push(value(name, filter));
        }
    }
    values.insert("username".into(), usernames);
    let today = Utc::now().date_naive();
    let days: Vec<_> = [0, 1, 7, 30]
        .iter()
        .map(|back| today - Duration::days(*back))
        .collect();
    values.insert(
        "date_from".into(),
        days.iter()
            .map(|d| value(&d.to_string(), Filter::default().with_date_from(*d)))
            .collect(),
    );
    values.insert(
        "date_to".into(),
        days.iter()
            .map(|d| value(&d.to_string(), Filter::default().with_date_to(*d)))
            .collect(),
    );
    for key in vocabulary.keys() {
        if let Some(allowed) = vocabulary.allowed_values(key) {
            let list = allowed
                .map(|v| value(v, Filter::default().with_additional(key, v)))
                .collect();
            values.insert(key.to_owned(), list);
        }
    }
    let body = serde_json::to_vec(&Suggestions { keys, values })
        .map_err(|e| ApiError::internal(format!("The suggestions could not be encoded: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
