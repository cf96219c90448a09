//! [`StoreHandle`]: one store shared by its writer (the auditor's store backend) and readers
//! in the same process.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Store;

/// A cloneable handle to one store; each use takes the store for itself (one connection,
/// one operation at a time).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use audit_core::store::{StoreHandle, Store, sqlite::SqliteStore};
///
/// let handle = StoreHandle::new(SqliteStore::in_memory().unwrap());
/// let reader = handle.clone();
/// handle.lock().append(&[audit_core::AuditEvent::builder("login").build()]).unwrap();
/// assert_eq!(reader.with(|store| store.head()).unwrap().head, 1);
/// # }
/// ```
#[derive(Clone)]
pub struct StoreHandle {
    store: Arc<Mutex<Box<dyn Store>>>,
}

impl StoreHandle {
    /// Shares `store`.
    pub fn new(store: impl Store + 'static) -> Self {
        Self::from_box(Box::new(store))
    }

    /// Shares a boxed store, such as [`StoreUrl::open`](super::StoreUrl::open) returns.
    pub fn from_box(store: Box<dyn Store>) -> Self {
        StoreHandle {
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// Takes the store until the guard is dropped. A panic during an earlier use does not
    /// make it unusable: every store operation leaves it consistent or returns an error.
    pub fn lock(&self) -> StoreGuard<'_> {
        StoreGuard(self.store.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` with the store.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn Store) -> T) -> T {
        f(&mut *self.lock())
    }
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

/// The store, taken through a [`StoreHandle`].
pub struct StoreGuard<'a>(MutexGuard<'a, Box<dyn Store>>);

impl Deref for StoreGuard<'_> {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &**self.0
    }
}

impl DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut (dyn Store + 'static) {
        &mut **self.0
    }
}
