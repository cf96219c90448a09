//! Where events go: the [`Backend`] trait, and the per-event [`Route`] decision.
//!
//! Routing follows Coder's model. A [`RouteFilter`] looks at each event and decides a
//! [`Route`]: drop it, store it, export it, or both. Each backend declares which kind it is
//! with [`Backend::route`] (a database is a store; a log shipper is an exporter) and receives
//! the events whose decision includes its kind. The default filter stores and exports
//! everything.
//!
//! ```
//! use audit_core::{AuditEvent, Route};
//!
//! // Export login events but do not store them.
//! let filter = |e: &AuditEvent| if e.action == "login" { Route::Export } else { Route::StoreAndExport };
//! # let _ = filter;
//! assert!(Route::StoreAndExport.includes(Route::Store));
//! assert!(!Route::Export.includes(Route::Store));
//! assert!(!Route::Drop.includes(Route::Export));
//! ```
//!
//! # Writing a backend
//!
//! A backend runs on its own worker thread, owned by the [`Auditor`](crate::Auditor): it
//! needs `Send` but not `Sync`, and `&mut self` methods may block (a database round trip).
//! It receives events in batches of up to [`AuditorBuilder::max_batch`](crate::AuditorBuilder::max_batch)
//! events, in the order they were recorded. A store should append a batch in one call
//! (one transaction, or one multi-row `INSERT`); an error fails the whole batch, and the
//! auditor counts every event of it as failed, logs the error and goes on with the next batch.
//!
//! ```
//! use audit_core::{AuditEvent, Backend, BackendError, Route};
//!
//! struct CountingStore { rows: usize }
//!
//! impl Backend for CountingStore {
//!     fn name(&self) -> &str { "counting_store" }
//!     fn route(&self) -> Route { Route::Store }
//!     fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
//!         self.rows += events.len(); // INSERT … VALUES (…), (…), … in one statement
//!         Ok(())
//!     }
//! }
//! ```

use std::error::Error;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::AuditEvent;

/// What happens to one event: Coder's filter decision.
///
/// As a filter's decision, it says where the event goes. As a backend's [`Backend::route`],
/// it says which events the backend takes: a `Store` backend takes events decided `Store` or
/// `StoreAndExport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Record nowhere.
    Drop,
    /// Record in the stores (the audit database the audit page queries).
    Store,
    /// Send to the exporters (service logs, `tracing`, a SIEM).
    Export,
    /// Both.
    StoreAndExport,
}

impl Route {
    const fn bits(self) -> u8 {
        match self {
            Route::Drop => 0,
            Route::Store => 1,
            Route::Export => 2,
            Route::StoreAndExport => 3,
        }
    }

    /// Whether this decision sends an event to a backend of kind `backend`.
    pub const fn includes(self, backend: Route) -> bool {
        self.bits() & backend.bits() != 0
    }

    /// `snake_case` name, e.g. `store_and_export`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Route::Drop => "drop",
            Route::Store => "store",
            Route::Export => "export",
            Route::StoreAndExport => "store_and_export",
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decides the [`Route`] of each event. Any `Fn(&AuditEvent) -> Route + Send + Sync` is one.
///
/// It runs on the recording thread, before the event is queued: keep it cheap.
pub trait RouteFilter: Send + Sync + 'static {
    /// Where `event` goes.
    fn route(&self, event: &AuditEvent) -> Route;
}

impl<F> RouteFilter for F
where
    F: Fn(&AuditEvent) -> Route + Send + Sync + 'static,
{
    fn route(&self, event: &AuditEvent) -> Route {
        self(event)
    }
}

/// The default filter: store and export everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteAll;

impl RouteFilter for RouteAll {
    fn route(&self, _: &AuditEvent) -> Route {
        Route::StoreAndExport
    }
}

/// A destination for audit events. See the [module docs](self) for how to write one.
pub trait Backend: Send + 'static {
    /// A short name for stats and error messages, e.g. `json_lines` or `sqlite`.
    fn name(&self) -> &str;

    /// Which events this backend takes (default: [`Route::Export`]).
    fn route(&self) -> Route {
        Route::Export
    }

    /// Writes a batch of events, in recording order. All-or-nothing as far as the auditor's
    /// counters go: an error counts every event of the batch as failed.
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError>;

    /// Makes everything written so far durable or visible (flush a buffer, commit, fsync).
    /// Called by [`Auditor::flush`](crate::Auditor::flush) and at shutdown.
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn route(&self) -> Route {
        (**self).route()
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        (**self).write_batch(events)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        (**self).flush()
    }
}

/// A backend's failure to write or flush.
#[derive(Debug)]
pub struct BackendError {
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
    retryable: bool,
    rejected: Option<Vec<uuid::Uuid>>,
}

impl BackendError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        BackendError {
            message: message.into(),
            source: None,
            retryable: false,
            rejected: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Self {
        BackendError {
            message: message.into(),
            source: Some(source.into()),
            retryable: false,
            rejected: None,
        }
    }

    /// Marks the failure as transient: writing the same batch again may succeed (a dropped
    /// connection, a locked database). The auditor retries such a batch with backoff, for a
    /// bounded time, before it counts the batch as failed.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Whether writing the same batch again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// Says that only these events of the batch failed (by event id): the backend wrote all
    /// the others. The auditor then counts only these as failed, and does not retry.
    pub fn rejected(mut self, ids: Vec<uuid::Uuid>) -> Self {
        self.rejected = Some(ids);
        self
    }

    /// The events of the batch that failed, when the backend wrote the others; `None` when
    /// the whole batch failed.
    pub fn rejected_events(&self) -> Option<&[uuid::Uuid]> {
        self.rejected.as_deref()
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError::with_source("I/O error", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_include_backend_kinds() {
        use Route::*;
        let table = [
            (Drop, [false, false, false]),
            (Store, [true, false, true]),
            (Export, [false, true, true]),
            (StoreAndExport, [true, true, true]),
        ];
        for (decision, want) in table {
            let got = [Store, Export, StoreAndExport].map(|kind| decision.includes(kind));
            assert_eq!(got, want, "{decision}");
            assert!(!decision.includes(Drop));
        }
    }

    #[test]
    fn errors_display_their_cause() {
        let e = BackendError::from(std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "I/O error: disk full");
        assert!(e.source().is_some());
    }
}
