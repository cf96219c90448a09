//! The counters an [`Auditor`](super::Auditor) reports: for the pipeline, and per backend.

use serde::Serialize;

/// Counters of an auditor, from [`Auditor::stats`](super::Auditor::stats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditorStats {
    /// Events handed to [`Auditor::record`](super::Auditor::record) (and the guards and
    /// `background`) while open.
    pub recorded: u64,
    /// Events that no backend's filter accepted (or recorded with no backend at all).
    pub filtered: u64,
    /// Recordings refused with an error (queue full under `FailClosed`, or closed).
    pub rejected: u64,
    /// Per backend, in the order they were added.
    pub backends: Vec<BackendStats>,
}

impl AuditorStats {
    /// The counters of the backend with this name.
    pub fn backend(&self, name: &str) -> Option<&BackendStats> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// Counters of one backend. Once [`Auditor::flush`](super::Auditor::flush) returns,
/// `accepted == written + failed` for events recorded before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendStats {
    /// The backend's name.
    pub name: String,
    /// Events its filter declined.
    pub filtered: u64,
    /// Events queued for it.
    pub accepted: u64,
    /// Events it wrote.
    pub written: u64,
    /// Events not queued because its queue was full ([`Overflow::DropNewest`](super::Overflow::DropNewest)).
    pub dropped: u64,
    /// Events that failed to write: their whole batch failed (after any retries), or the
    /// backend named them as rejected.
    pub failed: u64,
    /// Batches written again after a retryable failure (one per new attempt).
    pub retries: u64,
    /// Failed [`Backend::flush`](crate::Backend::flush) calls.
    pub flush_failures: u64,
    /// Events queued and not yet written.
    pub queued: u64,
    /// The last error, if any (also of an attempt that a retry then recovered).
    pub last_error: Option<String>,
}
