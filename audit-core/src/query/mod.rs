//! The audit-log filter language: `resource_type:workspace action:delete username:me
//! date_from:2024-01-01`.
//!
//! [`Filter::parse`] turns a query string into a [`Filter`], checking resource types and
//! actions against the registered `#[derive(Auditable)]` resources ([`Vocabulary::parse`]
//! checks against another [`Vocabulary`]); [`Filter::matches`] evaluates it against an
//! [`AuditEvent`](crate::AuditEvent) in memory, and its getters let a store translate the same
//! filter to SQL. A rejected query gives a [`QueryError`] listing every problem at once.
//!
//! The pieces: `lex` splits a query into terms, `parse` checks them against a [`Vocabulary`]
//! and builds the [`Filter`]; [`Key`] decides everything about a built-in key; `echo` quotes
//! user text back in errors so that it cannot disturb a terminal.
//!
//! # Grammar
//!
//! Space-separated `key:value` terms (the syntax of Coder's audit search). Keys are
//! case-insensitive; values keep their case. Double quotes group a value that has spaces or
//! colons (`resource_target:"my ws"`, `resource_id:"a:b"`); inside quotes `\"` and `\\`
//! escape. A word without a key is a `resource_type`. Each key may be given once; the empty
//! query matches everything.
//!
//! | key | value | selects |
//! | --- | --- | --- |
//! | `resource_type` | a registered resource type | events on resources of this type (a bare word means the same) |
//! | `resource_id` | any text | events on the resource with this id |
//! | `resource_target` | any text | events on the resource with this name |
//! | `action` | an action of a registered resource (of resource_type, if given) | events of this action |
//! | `username` | a username, or me for yourself | events by this user, ignoring ASCII case |
//! | `email` | any text | events by the user with this email, ignoring ASCII case |
//! | `date_from` | a date, YYYY-MM-DD | events at or after the first instant of this day (UTC) |
//! | `date_to` | a date, YYYY-MM-DD | events up to the last instant of this day (UTC) |
//! | `request_id` | a UUID | events recorded in this request |
//! | `organization_id` | an organization id | events in this organization (never a site-wide event) |
//!
//! These are the built-in [`Key`]s (the table is checked against them). An application adds
//! its own keys, matched against `additional_fields[key]`, to a [`Vocabulary`] as
//! [`AdditionalKey`]s: for example [`BUILD_REASON`], Coder's `build_reason` of workspace
//! builds. `username:me` is the caller ([`UserMatch`]).
//!
//! ```
//! use audit_core::Auditable;
//! use audit_core::query::{Filter, UserMatch};
//!
//! #[derive(Auditable)]
//! #[audit(resource = "workspace", actions(create, write, delete))]
//! struct Workspace {
//!     #[audit(track, id)] id: u64,
//! }
//!
//! let filter = Filter::parse("workspace action:delete username:me date_to:2024-01-31")?;
//! assert_eq!(filter.resource_type(), Some("workspace"));
//! assert_eq!(filter.username(), Some(&UserMatch::Me));
//! assert_eq!(
//!     serde_json::to_string(&filter).unwrap(),
//!     r#"{"resource_type":"workspace","action":"delete","username":"me","date_to":"2024-01-31T23:59:59.999999Z"}"#,
//! );
//! assert_eq!(
//!     filter.to_query_string(),
//!     "resource_type:workspace action:delete username:me date_to:2024-01-31",
//! );
//!
//! let err = Filter::parse("resource_type:workspaces usrname:bob").unwrap_err();
//! let fields: Vec<_> = err.validations().iter().map(|v| v.field.as_str()).collect();
//! assert_eq!(fields, ["usrname", "resource_type"]);
//! assert!(err.validations()[0].detail.contains(r#"Did you mean "username"?"#));
//! # Ok::<(), audit_core::query::QueryError>(())
//! ```

mod additional_key;
pub(crate) mod echo;
mod error;
mod filter;
mod key;
mod lex;
mod parse;
mod vocabulary;

pub use additional_key::{AdditionalKey, BUILD_REASON, BUILD_REASONS, KeyError};
pub use error::{QueryError, Validation};
pub use filter::{Filter, UserMatch};
pub use key::Key;
pub use parse::MAX_VALIDATIONS;
pub use vocabulary::Vocabulary;
