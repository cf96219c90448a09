//! Who may read the log, and which part of it.
//!
//! The router never decides who someone is: it asks the application's [`Authorizer`], which
//! turns a request's head into a [`Principal`] (or rejects it). From the principal's roles
//! the router derives a [`Scope`]:
//!
//! | roles | scope |
//! | --- | --- |
//! | `owner` | every event |
//! | `auditor` with no organizations | every event |
//! | `auditor` with organizations | the events of those organizations; never a site-wide event (one with no organization) |
//! | anything else | none: 403 |
//!
//! The scope is applied inside the store's filter on every path (list, count, export,
//! stream, watch), so a client's own query can only narrow it.
//!
//! ```
//! use audit_http::{Principal, Scope};
//!
//! let owner = Principal::new("root").role("owner");
//! assert_eq!(owner.scope(), Some(Scope::All));
//!
//! let org_auditor = Principal::new("ann").role("auditor").organization("org-2").organization("org-1");
//! assert_eq!(org_auditor.scope(), Some(Scope::Organizations(vec!["org-1".into(), "org-2".into()])));
//!
//! assert_eq!(Principal::new("bob").role("member").scope(), None);
//! ```
//!
//! An application whose authentication is asynchronous (a database lookup, a call to an
//! identity provider) runs it in its own middleware in front of the router and leaves the
//! result in the request's extensions; its `Authorizer` then reads it from
//! [`Parts::extensions`](axum::http::request::Parts::extensions):
//!
//! ```
//! use audit_http::{Authorizer, Principal, Rejection};
//! use axum::http::request::Parts;
//!
//! #[derive(Clone)]
//! struct SignedInUser { name: String, is_admin: bool }
//!
//! struct FromExtensions;
//!
//! impl Authorizer for FromExtensions {
//!     fn authorize(&self, parts: &Parts) -> Result<Principal, Rejection> {
//!         let user = parts.extensions.get::<SignedInUser>().ok_or(Rejection::Unauthenticated)?;
//!         let role = if user.is_admin { "owner" } else { "member" };
//!         Ok(Principal::new(user.name.clone()).role(role))
//!     }
//! }
//! ```

use axum::http::request::Parts;

use audit_core::query::Filter;
use audit_core::{Actor, AuditEvent};

/// The role that reads every event.
pub const OWNER: &str = "owner";
/// The role that reads the events of its organizations (all events if it has none).
pub const AUDITOR: &str = "auditor";

/// Decides who is making a request. Implemented by the application (or use
/// [`TokenAuthorizer`](crate::tokens::TokenAuthorizer), the token file of `audit serve`).
///
/// It runs on the async runtime for every request: keep it quick and non-blocking.
pub trait Authorizer: Send + Sync + 'static {
    /// The principal behind the request, or why there is none.
    ///
    /// # Errors
    /// [`Rejection::Unauthenticated`] (401) when the request carries no credential, or one
    /// that is malformed, unknown, expired or revoked — the client is told the same thing in
    /// every case; [`Rejection::Forbidden`] (403) when the caller is known but may not read
    /// the log at all.
    fn authorize(&self, parts: &Parts) -> Result<Principal, Rejection>;
}

impl<F> Authorizer for F
where
    F: Fn(&Parts) -> Result<Principal, Rejection> + Send + Sync + 'static,
{
    fn authorize(&self, parts: &Parts) -> Result<Principal, Rejection> {
        self(parts)
    }
}

/// Why an [`Authorizer`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No valid credential: 401.
    Unauthenticated,
    /// A valid credential that may not read the log: 403.
    Forbidden,
}

/// Who is reading the log: a user with roles, and the organizations those roles apply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id, recorded as the actor of the reads they make (defaults to the username).
    pub user_id: String,
    /// The username; what `username:me` stands for.
    pub username: String,
    /// The user's email, recorded as part of the actor of their reads (may be empty).
    pub email: String,
    /// Role names, e.g. `owner`, `auditor`.
    pub roles: Vec<String>,
    /// The organizations the roles apply to; empty means site-wide.
    pub organizations: Vec<String>,
}

impl Principal {
    /// A user with no roles (who may read nothing until given one); the id is the username.
    pub fn new(username: impl Into<String>) -> Self {
        let username = username.into();
        Principal {
            user_id: username.clone(),
            username,
            email: String::new(),
            roles: Vec::new(),
            organizations: Vec::new(),
        }
    }

    /// Sets the user id.
    pub fn user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = id.into();
        self
    }

    /// Sets the email.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = email.into();
        self
    }

    /// Adds a role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Adds an organization.
    pub fn organization(mut self, id: impl Into<String>) -> Self {
        self.organizations.push(id.into());
        self
    }

    /// Whether the principal has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// What this principal may read, or `None` (403) if nothing.
    pub fn scope(&self) -> Option<Scope> {
        if self.has_role(OWNER) {
            return Some(Scope::All);
        }
        if !self.has_role(AUDITOR) {
            return None;
        }
        if self.organizations.is_empty() {
            return Some(Scope::All);
        }
        let mut orgs = self.organizations.clone();
        orgs.sort_unstable();
        orgs.dedup();
        Some(Scope::Organizations(orgs))
    }

    /// The principal as the actor of an audit event.
    pub fn actor(&self) -> Actor {
        Actor::new(&self.user_id, &self.username, &self.email)
    }
}

/// The part of the log a principal may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every event.
    All,
    /// The events of these organizations (sorted, without duplicates); never an event without
    /// an organization.
    Organizations(Vec<String>),
}

impl Scope {
    /// `filter` narrowed to this scope: the restriction the store applies in its query (and
    /// [`Filter::matches`] in memory), so a client's own terms can only narrow it further.
    pub fn restrict(&self, filter: Filter) -> Filter {
        match self {
            Scope::All => filter,
            Scope::Organizations(orgs) => filter.with_organizations(orgs.iter().cloned()),
        }
    }

    /// Whether an event is inside the scope.
    pub fn permits(&self, event: &AuditEvent) -> bool {
        self.restrict(Filter::default()).matches(event, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(org: Option<&str>) -> AuditEvent {
        let b = AuditEvent::builder("write");
        match org {
            Some(o) => b.organization_id(o).build(),
            None => b.build(),
        }
    }

    #[test]
    fn owners_see_everything_even_with_organizations() {
        let p = Principal::new("root").role("owner").organization("org-1");
        assert_eq!(p.scope(), Some(Scope::All));
        assert!(p.scope().unwrap().permits(&event(None)));
    }

    #[test]
    fn an_auditor_without_organizations_is_site_wide() {
        let p = Principal::new("a").role("auditor");
        assert_eq!(p.scope(), Some(Scope::All));
    }

    #[test]
    fn an_organization_auditor_sees_its_organizations_and_no_site_wide_event() {
        let scope = Principal::new("a")
            .role("auditor")
            .organization("org-1")
            .organization("org-1")
            .scope()
            .unwrap();
        assert_eq!(scope, Scope::Organizations(vec!["org-1".into()]));
        assert!(scope.permits(&event(Some("org-1"))));
        assert!(!scope.permits(&event(Some("org-2"))));
        assert!(!scope.permits(&event(None)));
        assert!(!scope.permits(&event(Some(""))));
    }

    #[test]
    fn other_roles_and_no_role_read_nothing() {
        assert_eq!(Principal::new("m").role("member").scope(), None);
        assert_eq!(Principal::new("m").scope(), None);
        // Role names are exact: no case folding, no prefixes.
        assert_eq!(Principal::new("m").role("Owner").scope(), None);
        assert_eq!(Principal::new("m").role("auditors").scope(), None);
    }

    #[test]
    fn the_actor_of_a_read_is_the_principal() {
        let p = Principal::new("ann")
            .user_id("u-9")
            .email("ann@example.com");
        assert_eq!(p.actor(), Actor::new("u-9", "ann", "ann@example.com"));
    }
}
