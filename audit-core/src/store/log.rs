//! The log position: every stored event gets a `seq` that increases in commit order, with
//! no gaps (1, 2, 3, …).
//!
//! A store assigns positions inside its appending transaction, under a lock that serialises
//! appenders (SQLite's write transaction, a row lock on the Postgres head row): it reads the
//! [`Head`], drops the events already stored (appends are idempotent by event id), and hands
//! the rest to [`number`], which is the one place positions are given out. Since the lock is
//! held until commit, positions become visible in order: a reader never sees position `n + 1`
//! without `n`, so a follower that polls [`Store::newer`](super::Store::newer) with the last
//! position it saw misses nothing.
//!
//! [`number`] also chains each event to the one before it: its [`ChainHash`] is
//! `SHA-256(previous hash ‖ canonical bytes)` (see [`crate::chain`]), computed on the event as
//! it is stored, and the head row keeps the newest hash, so hashing happens under the same lock
//! and in the same transaction as numbering.
//!
//! A purge removes a prefix of the log (see [`Store::purge`](super::Store::purge)): what is
//! retained is always the contiguous range [`LogSpan::first`]`..=`[`LogSpan::head`], and the
//! head row keeps the hash of the last purged event (the anchor the rest of the chain hangs
//! from).

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::AuditEvent;
use crate::chain::{ChainHash, ChainHead};

/// An event read from a store, with its log position and chain hash.
///
/// It dereferences to the [`AuditEvent`], and serializes as the event's JSON object with
/// `seq` and `hash` added (the form of JSON-lines exports and archives, which
/// `audit verify --archive` checks).
///
/// ```
/// use audit_core::AuditEvent;
/// use audit_core::chain::ChainHash;
/// use audit_core::store::StoredEvent;
///
/// let stored = StoredEvent {
///     seq: 7,
///     hash: ChainHash::GENESIS,
///     event: AuditEvent::builder("login").build(),
/// };
/// assert_eq!(stored.action, "login");
/// let json = serde_json::to_value(&stored).unwrap();
/// assert_eq!((json["seq"].as_u64(), json["action"].as_str()), (Some(7), Some("login")));
/// assert_eq!(json["hash"].as_str().map(str::len), Some(64));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The log position: increases in commit order, with no gaps.
    pub seq: u64,
    /// The chain hash: `SHA-256(previous event's hash ‖ canonical bytes of this event)`.
    pub hash: ChainHash,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl StoredEvent {
    /// Its position and hash.
    pub fn chain_head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

impl Deref for StoredEvent {
    type Target = AuditEvent;

    fn deref(&self) -> &AuditEvent {
        &self.event
    }
}

impl From<StoredEvent> for AuditEvent {
    fn from(stored: StoredEvent) -> Self {
        stored.event
    }
}

/// The positions a log holds: `first..=head` (empty when `first > head`).
///
/// A follower at position `after` has missed purged events when `first > after + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogSpan {
    /// The lowest retained position; `head + 1` when nothing is retained.
    pub first: u64,
    /// The highest position ever assigned; 0 for a new log. Purges do not lower it.
    pub head: u64,
}

impl LogSpan {
    /// Retained events.
    pub fn len(&self) -> u64 {
        (self.head + 1).saturating_sub(self.first)
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a log's hash chain stands: the anchor it hangs from and its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainSpan {
    /// The last purged event's position and hash ([`ChainHead::GENESIS`] if nothing was
    /// purged): the first retained event links to it.
    pub anchor: ChainHead,
    /// The newest event's position and hash, as the head row records them.
    pub head: ChainHead,
}

/// The head row of a log, read under the appenders' lock.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    /// The highest position assigned.
    pub seq: u64,
    /// Its chain hash.
    pub hash: ChainHash,
    /// Every position up to this one has been purged.
    pub purged_through: u64,
    /// The chain hash at `purged_through`.
    pub purged_hash: ChainHash,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl Head {
    pub(crate) fn span(&self) -> LogSpan {
        LogSpan {
            first: self.purged_through + 1,
            head: self.seq,
        }
    }

    pub(crate) fn chain(&self) -> ChainSpan {
        ChainSpan {
            anchor: ChainHead {
                seq: self.purged_through,
                hash: self.purged_hash,
            },
            head: ChainHead {
                seq: self.seq,
                hash: self.hash,
            },
        }
    }
}

/// An event ready to insert: its position, its chain hash and its storable form.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Entry<'a> {
    pub seq: u64,
    pub hash: ChainHash,
    pub event: Cow<'a, AuditEvent>,
}

/// The events of a batch to insert: those not `stored` yet (`stored` says whether an event
/// is), each once, in batch order.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn unstored(
    events: &[AuditEvent],
    mut stored: impl FnMut(&AuditEvent) -> bool,
) -> Vec<&AuditEvent> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .filter(|e| seen.insert(e.id) && !stored(e))
        .collect()
}

/// Numbers and chains `fresh` after `head`, in order, in their storable form (every NUL
/// replaced, see [`Store::append`](super::Store::append)); returns the entries and the new
/// head.
///
/// The one place positions and chain hashes are given out: call it under the appenders'
/// lock, with the head read under that lock.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn number<'a>(
    head: Head,
    fresh: Vec<&'a AuditEvent>,
) -> Result<(Vec<Entry<'a>>, Head), super::StoreError> {
    let mut hasher = crate::chain::ChainHasher::new();
    let mut chain = head.chain().head;
    let mut entries = Vec::with_capacity(fresh.len());
    for event in fresh {
        let event = super::storable::storable(event);
        chain = hasher.next(&chain, &event).ok_or_else(|| {
            super::StoreError::Corrupt("the log position would pass 2^64 - 1".into())
        })?;
        entries.push(Entry {
            seq: chain.seq,
            hash: chain.hash,
            event,
        });
    }
    let new_head = Head {
        seq: chain.seq,
        hash: chain.hash,
        ..head
    };
    Ok((entries, new_head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn event(id: u128) -> AuditEvent {
        let mut e = AuditEvent::builder("login").build();
        e.id = Uuid::from_u128(id);
        e
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn numbering_skips_stored_and_repeated_events_and_leaves_no_gap() {
        let batch = [event(1), event(2), event(1), event(3), event(4)];
        let fresh = unstored(&batch, |e| e.id == Uuid::from_u128(3));
        let head = Head {
            seq: 10,
            hash: ChainHash::from_bytes([7; 32]),
            purged_through: 4,
            purged_hash: ChainHash::from_bytes([3; 32]),
        };
        let (entries, new_head) = number(head, fresh).unwrap();
        let numbered: Vec<(u64, u128)> = entries
            .iter()
            .map(|e| (e.seq, e.event.id.as_u128()))
            .collect();
        assert_eq!(numbered, [(11, 1), (12, 2), (13, 4)]);
        // Each entry is chained to the one before it, the first to the head.
        let mut hasher = crate::chain::ChainHasher::new();
        let mut prev = head.hash;
        for entry in &entries {
            assert_eq!(entry.hash, hasher.hash(&prev, entry.seq, &entry.event));
            prev = entry.hash;
        }
        assert_eq!(
            new_head,
            Head {
                seq: 13,
                hash: entries[2].hash,
                ..head
            }
        );
        assert_eq!(new_head.chain().anchor.seq, 4);
        assert_eq!(new_head.span(), LogSpan { first: 5, head: 13 });
        assert_eq!(new_head.span().len(), 9);
    }

    #[test]
    fn an_empty_log_spans_nothing() {
        let span = Head::default().span();
        assert_eq!(span, LogSpan { first: 1, head: 0 });
        assert!(span.is_empty());
        let purged = Head {
            seq: 5,
            purged_through: 5,
            ..Head::default()
        };
        assert!(purged.span().is_empty() && purged.span().first == 6);
    }
}
