//! [`StoreBackend`]: a [`Store`] as a backend of the [`Auditor`](crate::Auditor).

use crate::store::{Store, StoreError, StoreHandle};
use crate::{AuditEvent, Backend, BackendError};

/// A [`Store`] as a backend: each batch the pipeline hands over is appended in one
/// transaction. With Coder's store/export routing, give it a
/// [`Router::stores`](crate::Router::stores) filter.
///
/// Failures keep their cause ([`std::error::Error::source`] is the [`StoreError`]), and say
/// what the pipeline can do about them: a lost connection or a busy database is
/// [retryable](BackendError::is_retryable) (appends are idempotent by event id, so writing the
/// batch again stores nothing twice); events the store refused one by one are
/// [rejected](BackendError::rejected_events) while the rest of the batch is stored.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use audit_core::{action, Actor, Auditor};
/// use audit_core::backends::StoreBackend;
/// use audit_core::store::{sqlite::SqliteStore, Store, PageRequest};
/// use audit_core::query::Filter;
///
/// let backend = StoreBackend::new(SqliteStore::in_memory().unwrap());
/// let store = backend.handle();
/// let auditor = Auditor::builder().backend(backend).build().unwrap();
/// auditor.record(audit_core::AuditEvent::builder(action::LOGIN).actor(Actor::new("1", "alice", "a@x")).resource_type("api_key").build()).unwrap();
/// auditor.flush();
/// let page = store.lock().page(&Filter::default(), &PageRequest::first(10)).unwrap();
/// assert_eq!((page.events[0].seq, page.events[0].actor.username.as_str()), (1, "alice"));
/// # }
/// ```
pub struct StoreBackend {
    store: StoreHandle,
    name: String,
}

impl StoreBackend {
    /// Wraps a store; the backend is named `store`.
    pub fn new(store: impl Store + 'static) -> Self {
        Self::from_handle(StoreHandle::new(store))
    }

    /// Wraps a boxed store, such as [`StoreUrl::open`](crate::store::StoreUrl::open) returns.
    pub fn from_box(store: Box<dyn Store>) -> Self {
        Self::from_handle(StoreHandle::from_box(store))
    }

    /// Writes to a store shared through `handle`.
    pub fn from_handle(handle: StoreHandle) -> Self {
        StoreBackend {
            store: handle,
            name: "store".into(),
        }
    }

    /// Renames the backend (for stats and error messages).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A handle to the same store, to read it while the auditor writes.
    pub fn handle(&self) -> StoreHandle {
        self.store.clone()
    }
}

impl Backend for StoreBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.store
            .with(|store| store.append(events))
            .map_err(failure)
    }
}

/// A store's error as the pipeline needs it.
fn failure(error: StoreError) -> BackendError {
    match error {
        StoreError::Rejected { stored, rejected } => {
            let ids = rejected.iter().map(|(id, _)| *id).collect();
            let error = StoreError::Rejected { stored, rejected };
            BackendError::with_source("the store refused some events of the batch", error)
                .rejected(ids)
        }
        error if error.is_retryable() => {
            BackendError::with_source("the store cannot take the batch now", error).retryable()
        }
        error => BackendError::with_source("the store cannot take the batch", error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;
    use uuid::Uuid;

    #[test]
    fn rejections_name_their_events_and_keep_the_cause() {
        let id = Uuid::from_u128(9);
        let error = failure(StoreError::Rejected {
            stored: 3,
            rejected: vec![(id, StoreError::Corrupt("refused".into()))],
        });
        assert_eq!(error.rejected_events(), Some(&[id][..]));
        assert!(!error.is_retryable());
        let cause = error
            .source()
            .unwrap()
            .downcast_ref::<StoreError>()
            .unwrap();
        assert!(matches!(cause, StoreError::Rejected { stored: 3, .. }));
        assert!(
            error
                .to_string()
                .contains("1 event(s) of the batch rejected, 3 stored")
        );
    }

    #[test]
    fn other_failures_keep_their_cause_and_are_not_retried_blindly() {
        let error = failure(StoreError::InvalidRequest("opened read-only".into()));
        assert!(!error.is_retryable() && error.rejected_events().is_none());
        assert!(error.to_string().ends_with("opened read-only"), "{error}");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_busy_database_is_retryable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let error = failure(StoreError::from(busy));
        assert!(error.is_retryable(), "{error}");
    }
}
