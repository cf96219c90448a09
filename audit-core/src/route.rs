//! Coder's routing model on top of per-backend filters: [`Route`] and [`Router`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::AuditEvent;
use crate::backend::EventFilter;

/// Where one event goes: Coder's filter decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Record nowhere.
    Drop,
    /// Record in the stores only.
    Store,
    /// Send to the exporters only.
    Export,
    /// Both.
    StoreAndExport,
}

impl Route {
    /// Whether the event goes to the stores.
    pub const fn stores(self) -> bool {
        matches!(self, Route::Store | Route::StoreAndExport)
    }

    /// Whether the event goes to the exporters.
    pub const fn exports(self) -> bool {
        matches!(self, Route::Export | Route::StoreAndExport)
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

/// Decides the [`Route`] of each event, and gives the filters that send events to the stores
/// ([`stores`](Self::stores)) and to the exporters ([`exports`](Self::exports)). Cheap to
/// clone.
///
/// Coder's routing model, on top of per-backend filters: one decision per event ([`Route`])
/// says whether it is stored (the audit database the audit page queries), exported (service
/// logs, `tracing`, a SIEM), both or neither. A [`Router`] makes that decision and hands out
/// the filters for the two kinds of backend.
///
/// ```
/// use audit_core::{AuditEvent, Auditor, Backend, Route, Router};
/// use audit_core::backends::{JsonLinesBackend, MemoryBackend, SharedBuffer};
///
/// // Export login events but do not store them; store and export everything else.
/// let router = Router::new(|e: &AuditEvent| match e.action.as_str() {
///     "login" => Route::Export,
///     _ => Route::StoreAndExport,
/// });
/// let store = MemoryBackend::new().named("store"); // e.g. a `StoreBackend`
/// let log = SharedBuffer::new();
/// let auditor = Auditor::builder()
///     .backend(store.clone().with_filter(router.stores()))
///     .backend(JsonLinesBackend::new(log.clone()).with_filter(router.exports()))
///     .build()?;
/// auditor.record(AuditEvent::builder("login").build()).unwrap();
/// auditor.record(AuditEvent::builder("delete").build()).unwrap();
/// auditor.flush();
/// assert_eq!(store.len(), 1);
/// assert_eq!(log.contents().lines().count(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Router {
    decide: Arc<dyn Fn(&AuditEvent) -> Route + Send + Sync>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// A router deciding with `decide`. It runs once per event for each backend that carries
    /// one of its filters, on the recording thread: keep it cheap.
    pub fn new(decide: impl Fn(&AuditEvent) -> Route + Send + Sync + 'static) -> Self {
        Router {
            decide: Arc::new(decide),
        }
    }

    /// The decision for `event`.
    pub fn route(&self, event: &AuditEvent) -> Route {
        (self.decide)(event)
    }

    /// The filter for store backends: it accepts the events decided [`Route::Store`] or
    /// [`Route::StoreAndExport`].
    pub fn stores(&self) -> impl EventFilter + Clone {
        let router = self.clone();
        move |e: &AuditEvent| router.route(e).stores()
    }

    /// The filter for exporter backends: it accepts the events decided [`Route::Export`] or
    /// [`Route::StoreAndExport`].
    pub fn exports(&self) -> impl EventFilter + Clone {
        let router = self.clone();
        move |e: &AuditEvent| router.route(e).exports()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_say_where_an_event_goes() {
        use Route::*;
        let table = [
            (Drop, false, false),
            (Store, true, false),
            (Export, false, true),
            (StoreAndExport, true, true),
        ];
        for (route, stores, exports) in table {
            assert_eq!(
                (route.stores(), route.exports()),
                (stores, exports),
                "{route}"
            );
            let router = Router::new(move |_| route);
            let event = AuditEvent::builder("write").build();
            assert_eq!(router.stores().accepts(&event), stores);
            assert_eq!(router.exports().accepts(&event), exports);
        }
    }
}
