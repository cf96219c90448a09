//! Compile-time classified audit logging.
//!
//! `#[derive(Auditable)]` forces every field of a domain struct to be classified as
//! `track`, `ignore` or `secret`, and generates a static tracking table ([`ResourceSchema`])
//! and the diff code. [`diff()`] turns two snapshots into a [`Diff`] in which secret values never
//! appear; [`docs`] renders the "what is tracked" tables from the schemas.
//!
//! ```
//! use audit_core::Auditable;
//!
//! #[derive(Auditable, Clone)]
//! #[audit(resource = "workspace", actions(create, write, delete))]
//! pub struct Workspace {
//!     #[audit(track, id)]     pub id: u64,
//!     #[audit(track, target)] pub name: String,
//!     #[audit(track)]         pub ttl: Option<i64>,
//!     #[audit(ignore, reason = "bumped on every request")] pub last_used_at: u64,
//!     #[audit(secret)]        pub agent_token: String,
//! }
//!
//! let before = Workspace { id: 1, name: "dev".into(), ttl: None, last_used_at: 0, agent_token: "t1".into() };
//! let after = Workspace { ttl: Some(3600), last_used_at: 9, agent_token: "t2".into(), ..before.clone() };
//!
//! let diff = audit_core::diff(Some(&before), Some(&after));
//! assert_eq!(
//!     serde_json::to_string(&diff).unwrap(),
//!     r#"{"agent_token":{"secret":true},"ttl":{"old":null,"new":3600,"secret":false}}"#,
//! );
//! assert_eq!(Workspace::schema().resource_type, "workspace");
//! assert_eq!(after.resource_target(), "dev");
//! ```

// Lets the derive's `::audit_core::…` paths work inside this crate's own tests and doctests.
extern crate self as audit_core;

pub mod action;
mod auditor;
mod backend;
pub mod backends;
#[cfg(any(feature = "chain", feature = "fingerprint"))]
pub mod canonical;
pub mod chain;
mod diff;
pub mod docs;
mod event;
#[cfg(feature = "fingerprint")]
pub mod fingerprint;
pub mod format;
#[cfg(any(feature = "chain", feature = "fingerprint"))]
pub mod key_file;
pub mod query;
mod registry;
mod request;
mod route;
mod schema;
pub mod store;

pub use audit_derive::Auditable;
pub use auditor::{
    Auditor, AuditorBuilder, AuditorStats, BackendStats, Overflow, RecordError, RetryPolicy,
};
pub use backend::{Backend, BackendError, EventFilter, Filtered};
#[cfg(feature = "fingerprint")]
pub use diff::diff_fingerprinted;
pub use diff::{Change, Diff, diff};
pub use event::{
    Actor, AuditEvent, EventBuilder, Fields, MAX_USER_AGENT_LEN, TRUNCATED_MARK,
    truncate_user_agent,
};
pub use registry::{resource, resources};
pub use request::{RequestAudit, RequestContext};
pub use route::{Route, Router};
pub use schema::{FieldClass, FieldSchema, ResourceSchema};

/// A type whose changes are audited. Derive it: `#[derive(Auditable)]`.
///
/// The derive's attributes are documented on the [`Auditable`](derive@Auditable) macro.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Auditable`",
    label = "`{Self}` is not auditable",
    note = "add `#[derive(Auditable)]` to `{Self}`, or classify this field with `track`, `ignore` or `secret` instead of `flatten`"
)]
pub trait Auditable {
    /// The static tracking table of this type.
    fn schema() -> &'static ResourceSchema {
        Self::__SCHEMA
    }

    /// The value of the `#[audit(id)]` field as text, or `""` if there is none.
    fn resource_id(&self) -> String {
        String::new()
    }

    /// The value of the `#[audit(target)]` field as text, or `""` if there is none.
    fn resource_target(&self) -> String {
        String::new()
    }

    /// The tracking table; also read at compile time to inline this type's fields into a
    /// type that embeds it with `#[audit(flatten)]`.
    #[doc(hidden)]
    const __SCHEMA: &'static ResourceSchema;

    /// Compares `old` and `new` field by field into `out`; generated. On create and delete
    /// both arguments are the one snapshot that exists, and `out` knows which side it is.
    #[doc(hidden)]
    fn __audit_diff(old: &Self, new: &Self, out: &mut diff::DiffBuilder<'_>);
}

/// Items used by the code `#[derive(Auditable)]` generates, and nothing else. Not public API.
///
/// The generated code brings this module into scope once (`use audit_core::__private as
/// __audit;`) and names everything through it, so each item here is one short path.
#[doc(hidden)]
pub mod __private {
    pub use crate::__register_resource as register;
    pub use crate::Auditable;
    pub use crate::diff::DiffBuilder;
    pub use crate::registry::RESOURCES;
    pub use crate::schema::{
        FieldSchema, NO_SCHEMA, ResourceSchema, concat_fields, fields_len, first_duplicate_name,
        ignore, resource, secret, track,
    };
    pub use linkme;
    pub use serde::Serialize;
    pub use std::string::{String, ToString};
}

/// The README's examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
