//! Fuzzes `audit_core::query::Filter::parse`, and `Vocabulary::parse` with the ready-made
//! `build_reason` key: neither may panic, a rejected query must say why in text that is safe to
//! print, and an accepted one must render back to a query that parses to the same filter. The
//! same bytes as a key name (`AdditionalKey::from_str`) must give a key or an error, never a
//! panic, and a key it gives must be usable in a query.

#![no_main]

use audit_core::Auditable;
use std::sync::OnceLock;

use audit_core::query::{AdditionalKey, BUILD_REASON, Filter, QueryError, Vocabulary};
use libfuzzer_sys::fuzz_target;

// Resource types for the parser to validate against.
#[derive(Auditable)]
#[audit(resource = "workspace", actions(create, write, delete))]
pub struct Workspace {
    #[audit(track, id)]
    pub id: u64,
}

#[derive(Auditable)]
#[audit(resource = "workspace_build", actions(start, stop))]
pub struct WorkspaceBuild {
    #[audit(track, id)]
    pub id: u64,
}

/// `parse` of `query` does not panic; what it accepts renders back, what it rejects is explained.
fn check(parse: impl Fn(&str) -> Result<Filter, QueryError>, query: &str) {
    match parse(query) {
        Ok(filter) => {
            let rendered = filter.to_query_string();
            assert_eq!(
                parse(&rendered).as_ref(),
                Ok(&filter),
                "{rendered:?} does not parse back"
            );
            assert!(serde_json::to_string(&filter).is_ok());
            let _ = filter.resolve_me("me");
        }
        Err(err) => check_error(&err),
    }
}

/// A rejected query has a reason, serializes, and prints one validation per line with no
/// control or invisible character from the query.
fn check_error(err: &QueryError) {
    assert!(!err.validations().is_empty());
    assert!(serde_json::to_string(err).is_ok());
    let text = err.to_string();
    assert_eq!(
        text.lines().count(),
        err.validations().len() + 1,
        "{text:?}"
    );
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || ('\u{2028}'..='\u{202e}').contains(&c)),
        "{text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    static WITH_BUILD_REASON: OnceLock<Vocabulary> = OnceLock::new();
    let query = String::from_utf8_lossy(data);
    check(Filter::parse, &query);
    let with_build_reason =
        WITH_BUILD_REASON.get_or_init(|| Vocabulary::registered().with_key(BUILD_REASON));
    check(|q| with_build_reason.parse(q), &query);
    if let Ok(key) = query.parse::<AdditionalKey>() {
        let vocabulary = Vocabulary::new().with_key(key.clone());
        let filter = vocabulary
            .parse(&format!("{key}:v"))
            .expect("a valid key is usable");
        assert_eq!(filter.additional(key.name()), Some("v"));
    }
});
