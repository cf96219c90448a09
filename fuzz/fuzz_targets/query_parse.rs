//! Fuzzes `audit_core::query::Filter::parse`: it must never panic, a rejected query must say
//! why, and an accepted one must render back to a query that parses to the same filter.

#![no_main]

use audit_core::Auditable;
use audit_core::query::Filter;
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

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    match Filter::parse(&query) {
        Ok(filter) => {
            let rendered = filter.to_query_string();
            assert_eq!(
                Filter::parse(&rendered).as_ref(),
                Ok(&filter),
                "{rendered:?} does not parse back"
            );
            assert!(serde_json::to_string(&filter).is_ok());
            let _ = filter.resolve_me("me");
        }
        Err(err) => {
            assert!(!err.validations().is_empty());
            assert!(serde_json::to_string(&err).is_ok());
            let _ = err.to_string();
        }
    }
});
