//! The hash chain in a store: the rows verification reads ([`ChainRow`]) and the checkpoints
//! a store keeps ([`StoredCheckpoint`]). [`verify`](super::verify) checks a store's chain
//! (with checkpoints and archives) without writing anything.
//!
//! Stores chain every event they append (see [`crate::chain`]); how the hashes are computed
//! and kept is the stores' business, under their writer lock. What is here reads.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreError, StoredEvent};
use crate::chain::ChainHead;

/// One row of the log as verification reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainRow {
    /// A row read as an event.
    Event(Box<StoredEvent>),
    /// A row that cannot be read as an event, with what could be read of it.
    Unreadable {
        /// Its position, if readable.
        seq: Option<u64>,
        /// Its event id, if readable.
        id: Option<Uuid>,
        /// Its chain hash, if readable.
        hash: Option<crate::chain::ChainHash>,
        /// What is wrong with it.
        reason: String,
    },
}

/// A signed checkpoint as a store keeps it: the head it signs, when it was taken, and its
/// signed note text (which alone is what counts: the other fields are for finding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The head the checkpoint signs.
    pub head: ChainHead,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// The signed note.
    pub note: String,
}

/// What a store without a hash chain answers.
pub(crate) fn unsupported() -> StoreError {
    StoreError::Unsupported(
        "this store keeps no hash chain: use the SQLite or Postgres store".into(),
    )
}

/// A row the chain migration cannot read: the store cannot be chained until it is mended.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn unchainable(e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(what) => StoreError::Corrupt(format!(
            "{what}: the events stored before the hash chain must all be readable to be \
             chained; repair or delete that row, then open the store with a writer again"
        )),
        other => other,
    }
}

/// A row's chain hash as stored; one that is not 32 bytes is corruption of that event.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn event_hash(
    bytes: &[u8],
    event: &crate::AuditEvent,
    seq: u64,
) -> Result<crate::chain::ChainHash, StoreError> {
    super::columns::hash_value(bytes).map_err(|_| {
        StoreError::Corrupt(format!(
            "chain hash of event {} at #{seq}: {} bytes, not 32",
            event.id,
            bytes.len()
        ))
    })
}
