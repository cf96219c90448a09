//! The [`Backend`] trait, its [`BackendError`] and per-backend filters; the guide to
//! filters and to writing a backend is on [`Backend`].

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::AuditEvent;

/// Decides which events a backend takes. Any `Fn(&AuditEvent) -> bool + Send + Sync` is one.
///
/// It runs on the recording thread, before the event is queued: keep it cheap.
pub trait EventFilter: Send + Sync + 'static {
    /// Whether the backend takes `event`.
    fn accepts(&self, event: &AuditEvent) -> bool;
}

impl<F> EventFilter for F
where
    F: Fn(&AuditEvent) -> bool + Send + Sync + 'static,
{
    fn accepts(&self, event: &AuditEvent) -> bool {
        self(event)
    }
}

/// A destination for audit events.
///
/// Where events go: the [`Backend`] trait, its [`BackendError`], and the per-backend
/// [`EventFilter`] that decides which events a backend takes.
///
/// Each backend gets its own filter, the way `tracing-subscriber`'s `Layer::with_filter` gives
/// each layer its own: [`Backend::with_filter`] wraps a backend so that it takes only the
/// events the filter accepts. A backend without a filter takes every event. The filter runs
/// on the recording thread, before the event is queued for the backend: keep it cheap.
///
/// ```
/// use audit_core::{AuditEvent, Auditor, Backend};
/// use audit_core::backends::MemoryBackend;
///
/// let everything = MemoryBackend::new();
/// let no_logins = MemoryBackend::new().named("no_logins");
/// let auditor = Auditor::builder()
///     .backend(everything.clone())
///     .backend(no_logins.clone().with_filter(|e: &AuditEvent| e.action != "login"))
///     .build()?;
/// auditor.record(AuditEvent::builder("login").build()).unwrap();
/// auditor.record(AuditEvent::builder("delete").build()).unwrap();
/// auditor.flush();
/// assert_eq!((everything.len(), no_logins.len()), (2, 1));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Coder's model, where one decision per event says "store", "export", both or neither, is
/// the [`Router`](crate::Router): its [`stores`](crate::Router::stores) and
/// [`exports`](crate::Router::exports) filters go on the store and the exporter backends.
///
/// # Writing a backend
///
/// A backend runs on its own worker thread, owned by the [`Auditor`](crate::Auditor): it
/// needs `Send` but not `Sync`, and `&mut self` methods may block (a database round trip).
/// It receives events in batches of up to [`AuditorBuilder::max_batch`](crate::AuditorBuilder::max_batch)
/// events, in the order they were recorded. A store should append a batch in one call
/// (one transaction, or one multi-row `INSERT`). An error fails the whole batch, unless it
/// names the events that failed ([`BackendError::rejected`]); a transient error
/// ([`BackendError::retryable`]) is retried with backoff (see
/// [`RetryPolicy`](crate::RetryPolicy)) before the auditor counts the batch as failed, logs
/// the error and goes on with the next batch.
///
/// ```
/// use audit_core::{AuditEvent, Backend, BackendError};
///
/// struct CountingStore { rows: usize }
///
/// impl Backend for CountingStore {
///     fn name(&self) -> &str { "counting_store" }
///     fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
///         self.rows += events.len(); // INSERT … VALUES (…), (…), … in one statement
///         Ok(())
///     }
/// }
/// ```
pub trait Backend: Send + 'static {
    /// A short name for stats and error messages, e.g. `json_lines` or `sqlite`.
    fn name(&self) -> &str;

    /// Writes a batch of events, in recording order. An error counts every event of the
    /// batch as failed, unless it names the failed ones ([`BackendError::rejected`]); a
    /// [retryable](BackendError::retryable) error makes the auditor write the same batch
    /// again after a pause.
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError>;

    /// Makes everything written so far durable or visible (flush a buffer, commit, fsync).
    /// Called by [`Auditor::flush`](crate::Auditor::flush) and at shutdown.
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Which events this backend takes; `None` (the default) takes every event. The auditor
    /// asks once, when it is built, and runs the filter on the recording thread. Set it with
    /// [`with_filter`](Self::with_filter).
    fn event_filter(&self) -> Option<Arc<dyn EventFilter>> {
        None
    }

    /// This backend, taking only the events `filter` accepts (and that its own filter, if it
    /// has one, accepts).
    fn with_filter(self, filter: impl EventFilter) -> Filtered<Self>
    where
        Self: Sized,
    {
        Filtered::new(self, filter)
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        (**self).write_batch(events)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        (**self).flush()
    }
    fn event_filter(&self) -> Option<Arc<dyn EventFilter>> {
        (**self).event_filter()
    }
}

/// A backend with a filter: made by [`Backend::with_filter`].
pub struct Filtered<B> {
    backend: B,
    filter: Arc<dyn EventFilter>,
}

impl<B: Backend> Filtered<B> {
    fn new(backend: B, filter: impl EventFilter) -> Self {
        let filter: Arc<dyn EventFilter> = match backend.event_filter() {
            Some(inner) => Arc::new(move |e: &AuditEvent| inner.accepts(e) && filter.accepts(e)),
            None => Arc::new(filter),
        };
        Filtered { backend, filter }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.backend
    }

    /// The wrapped backend, without this filter.
    pub fn into_inner(self) -> B {
        self.backend
    }
}

impl<B: Backend> fmt::Debug for Filtered<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filtered")
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Backend for Filtered<B> {
    fn name(&self) -> &str {
        self.backend.name()
    }
    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.backend.write_batch(events)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        self.backend.flush()
    }
    fn event_filter(&self) -> Option<Arc<dyn EventFilter>> {
        Some(Arc::clone(&self.filter))
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
    fn filters_stack_and_boxes_keep_them() {
        struct Null;
        impl Backend for Null {
            fn name(&self) -> &str {
                "null"
            }
            fn write_batch(&mut self, _: &[AuditEvent]) -> Result<(), BackendError> {
                Ok(())
            }
        }
        let event = |action: &str, status| AuditEvent::builder(action).status(status).build();
        assert!(Null.event_filter().is_none());
        let filtered = Null
            .with_filter(|e: &AuditEvent| e.action != "login")
            .with_filter(|e: &AuditEvent| e.status_code < 400);
        let boxed: Box<dyn Backend> = Box::new(filtered);
        let filter = boxed.event_filter().unwrap();
        assert!(filter.accepts(&event("write", 200)));
        assert!(!filter.accepts(&event("login", 200)));
        assert!(!filter.accepts(&event("write", 403)));
        assert_eq!(boxed.name(), "null");
    }

    #[test]
    fn errors_display_their_cause() {
        let e = BackendError::from(std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "I/O error: disk full");
        assert!(e.source().is_some());
    }
}
