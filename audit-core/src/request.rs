//! The request-scoped side of auditing: [`RequestContext`] and the [`RequestAudit`] guard.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;
use uuid::Uuid;

use crate::auditor::{Auditor, RecordError, log_error};
use crate::event::{EventBuilder, Fields};
use crate::{Actor, Auditable};

/// Who is making a request and from where: the request-scoped part of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The authenticated user (a snapshot).
    pub actor: Actor,
    /// The client address.
    pub ip: Option<IpAddr>,
    /// The client user agent (cut to [`MAX_USER_AGENT_LEN`](crate::event::MAX_USER_AGENT_LEN) bytes when recorded).
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<Uuid>,
    /// The organization the request acts in.
    pub organization_id: Option<String>,
}

impl RequestContext {
    /// A context for `actor`, with nothing else set.
    pub fn new(actor: Actor) -> Self {
        RequestContext {
            actor,
            ..RequestContext::default()
        }
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user agent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, request_id: Uuid) -> Self {
        self.request_id = Some(request_id);
        self
    }

    /// Sets the organization.
    pub fn organization_id(mut self, organization_id: impl Into<String>) -> Self {
        self.organization_id = Some(organization_id.into());
        self
    }
}

impl EventBuilder {
    /// Sets the actor, ip, user agent, request id and organization of a request.
    pub fn context(mut self, ctx: RequestContext) -> Self {
        let e = self.event_mut();
        e.actor = ctx.actor;
        e.ip = ctx.ip;
        e.user_agent = ctx.user_agent;
        e.request_id = ctx.request_id;
        e.organization_id = ctx.organization_id;
        self
    }
}

impl Auditor {
    /// Starts auditing one request on a resource of type `T`: the returned guard records one
    /// event when it is committed or dropped. See [`RequestAudit`].
    pub fn request<T: Auditable>(
        &self,
        ctx: &RequestContext,
        action: impl Into<String>,
    ) -> RequestAudit<T> {
        RequestAudit {
            auditor: self.clone(),
            ctx: ctx.clone(),
            action: action.into(),
            old: None,
            new: None,
            status: None,
            fields: Fields::new(),
            done: false,
        }
    }
}

/// Audits one request on a resource of type `T`, in the spirit of Coder's `InitRequest`.
///
/// Created by [`Auditor::request`]. The handler sets the snapshots it has
/// ([`set_old`](Self::set_old) before changing the resource, [`set_new`](Self::set_new)
/// after), the final [`status`](Self::set_status) and any [additional
/// fields](Self::set_field). The guard records exactly one event, on [`commit`](Self::commit)
/// or when dropped, unless [`cancel`](Self::cancel)ed:
///
/// * a failed request (status ≥ 400) is recorded without a diff;
/// * **a guard whose status was never set is recorded as 500**: it was dropped by an early
///   return or a panic, so the request did not succeed as far as the audit log can tell;
/// * the resource id and target come from the new snapshot, or from the old one for a
///   delete (or when there is no new one); with neither snapshot the event still records
///   the resource type from `T::schema()`.
///
/// The request-scoped side of auditing: who is asking and from where ([`RequestContext`]),
/// and the guard that audits one request on one resource ([`RequestAudit`]), in the spirit of
/// Coder's `InitRequest`.
///
/// ```
/// use audit_core::{action, Actor, Auditable, Auditor, RequestContext};
/// use audit_core::backends::{Match, MemoryBackend};
///
/// #[derive(Auditable, Clone)]
/// #[audit(resource = "template", actions(create, delete))]
/// struct Template { #[audit(track, id)] id: u64, #[audit(track, target)] name: String }
///
/// let memory = MemoryBackend::new();
/// let auditor = Auditor::builder().backend(memory.clone()).build()?;
/// let ctx = RequestContext::new(Actor::new("u-1", "alice", "alice@example.com"))
///     .user_agent("curl/8.5.0");
///
/// let mut audit = auditor.request::<Template>(&ctx, action::DELETE);
/// audit.set_old(Template { id: 3, name: "base".into() });
/// audit.set_status(403); // not allowed: recorded as a failure, without a diff
/// drop(audit);
///
/// auditor.flush();
/// assert!(memory.contains(Match::action("delete").target("base").failed()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "the guard records when dropped; bind it to a variable (`let mut audit = …`)"]
pub struct RequestAudit<T: Auditable> {
    auditor: Auditor,
    ctx: RequestContext,
    action: String,
    old: Option<T>,
    new: Option<T>,
    status: Option<u16>,
    fields: Fields,
    done: bool,
}

impl<T: Auditable> fmt::Debug for RequestAudit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The snapshots are not printed: they may hold secrets.
        f.debug_struct("RequestAudit")
            .field("resource_type", &T::schema().resource_type)
            .field("action", &self.action)
            .field("actor", &self.ctx.actor)
            .field("has_old", &self.old.is_some())
            .field("has_new", &self.new.is_some())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<T: Auditable> RequestAudit<T> {
    /// Sets the snapshot before the change.
    pub fn set_old(&mut self, old: T) -> &mut Self {
        self.old = Some(old);
        self
    }

    /// Sets the snapshot after the change.
    pub fn set_new(&mut self, new: T) -> &mut Self {
        self.new = Some(new);
        self
    }

    /// Sets how the request ended (an HTTP status code).
    pub fn set_status(&mut self, status_code: u16) -> &mut Self {
        self.status = Some(status_code);
        self
    }

    /// Changes the action (when the handler learns what it did, e.g. create vs. write).
    pub fn set_action(&mut self, action: impl Into<String>) -> &mut Self {
        self.action = action.into();
        self
    }

    /// Adds an additional field.
    pub fn set_field(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// The snapshot before the change, if set.
    pub fn old(&self) -> Option<&T> {
        self.old.as_ref()
    }

    /// The status set so far.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Records the event now.
    ///
    /// # Errors
    /// As for [`Auditor::record`]; with [`Overflow::FailClosed`](crate::Overflow::FailClosed),
    /// fail the request.
    pub fn commit(mut self) -> Result<(), RecordError> {
        self.record()
    }

    /// Records nothing.
    pub fn cancel(mut self) {
        self.done = true;
    }

    fn record(&mut self) -> Result<(), RecordError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let status = self.status.unwrap_or(500);
        let mut builder = EventBuilder::new(std::mem::take(&mut self.action))
            .context(std::mem::take(&mut self.ctx))
            .status(status)
            .fields(std::mem::take(&mut self.fields));
        builder.set_resource(
            self.old.as_ref(),
            self.new.as_ref(),
            status < 400,
            self.auditor.fingerprinter(),
        );
        self.auditor.record(builder.build())
    }
}

impl<T: Auditable> Drop for RequestAudit<T> {
    fn drop(&mut self) {
        if let Err(e) = self.record() {
            log_error(&format!(
                "audit event on a {} not recorded: {e}",
                T::schema().resource_type
            ));
        }
    }
}
