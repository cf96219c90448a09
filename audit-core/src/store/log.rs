//! The log position: every stored event gets a `seq` that increases in commit order, with
//! no gaps (1, 2, 3, …).
//!
//! A store assigns positions inside its appending transaction, under a lock that serialises
//! appenders (SQLite's write transaction, a row lock on the Postgres head row): it reads the
//! [`Head`], drops the events already stored (appends are idempotent, see [`EventKey`]), and
//! numbers the rest with [`Numbering`], the one place positions are given out: all at once
//! ([`number`], when the store looked up which events are stored) or one at a time (when its
//! insert finds out). Since the lock is
//! held until commit, positions become visible in order: a reader never sees position `n + 1`
//! without `n`, so a follower that polls [`Store::newer`](super::Store::newer) with the last
//! position it saw misses nothing.
//!
//! The numbering also chains each event to the one before it: its [`ChainHash`] is
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
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn unstored(
    events: &[AuditEvent],
    mut stored: impl FnMut(&AuditEvent) -> bool,
) -> Vec<&AuditEvent> {
    distinct(events).filter(|e| !stored(e)).collect()
}

/// What identifies a stored event, in every store: its time (to the microsecond, as stored)
/// and its id. Two events with one id and different times are two events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EventKey {
    time_micros: i64,
    id: uuid::Uuid,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl EventKey {
    pub(crate) fn new(time: chrono::DateTime<chrono::Utc>, id: uuid::Uuid) -> Self {
        EventKey {
            time_micros: time.timestamp_micros(),
            id,
        }
    }

    pub(crate) fn of(event: &AuditEvent) -> Self {
        Self::new(event.time, event.id)
    }
}

/// The events of a batch, each once (by [`EventKey`]), in batch order.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn distinct(events: &[AuditEvent]) -> impl Iterator<Item = &AuditEvent> {
    let mut seen = HashSet::with_capacity(events.len());
    events.iter().filter(move |e| seen.insert(EventKey::of(e)))
}

/// Gives out the positions after a head one at a time, for a store that learns whether an
/// event is new only by inserting it: [`entry`](Self::entry) offers the next free position
/// and [`take`](Self::take) uses it up once the event is stored, so skipped events leave no
/// gap. Like [`number`], it is used under the appenders' lock, with the head read under it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct Numbering {
    head: Head,
    hasher: crate::chain::ChainHasher,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Numbering {
    pub(crate) fn after(head: Head) -> Self {
        Numbering {
            head,
            hasher: crate::chain::ChainHasher::new(),
        }
    }

    /// `event` in its storable form (every NUL replaced) at the next free position, chained
    /// to the head.
    pub(crate) fn entry<'a>(
        &mut self,
        event: &'a AuditEvent,
    ) -> Result<Entry<'a>, super::StoreError> {
        let event = super::storable::storable(event);
        let next = self
            .hasher
            .next(&self.head.chain().head, &event)
            .ok_or_else(|| {
                super::StoreError::Corrupt("the log position would pass 2^64 - 1".into())
            })?;
        Ok(Entry {
            seq: next.seq,
            hash: next.hash,
            event,
        })
    }

    /// Uses up the position of `entry`, which was stored: the head moves to it.
    pub(crate) fn take(&mut self, entry: &Entry<'_>) {
        debug_assert_eq!(entry.seq, self.head.seq + 1, "positions are taken in order");
        self.head.seq = entry.seq;
        self.head.hash = entry.hash;
    }

    /// The head after the positions taken.
    pub(crate) fn head(&self) -> Head {
        self.head
    }
}

/// Numbers and chains `fresh` after `head`, in order, in their storable form (every NUL
/// replaced, see [`Store::append`](super::Store::append)); returns the entries and the new
/// head. Call it under the appenders' lock, with the head read under that lock.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn number<'a>(
    head: Head,
    fresh: Vec<&'a AuditEvent>,
) -> Result<(Vec<Entry<'a>>, Head), super::StoreError> {
    let mut numbering = Numbering::after(head);
    let mut entries = Vec::with_capacity(fresh.len());
    for event in fresh {
        let entry = numbering.entry(event)?;
        numbering.take(&entry);
        entries.push(entry);
    }
    Ok((entries, numbering.head()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    /// An event with `id`, at the same time as every other: a repeat of its id is a repeat
    /// of the event.
    fn event(id: u128) -> AuditEvent {
        let mut e = AuditEvent::builder("login").build();
        e.id = Uuid::from_u128(id);
        e.time = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
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
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn positions_taken_one_at_a_time_leave_no_gap() {
        let batch = [event(1), event(2), event(1), event(3)];
        let head = Head {
            seq: 10,
            purged_through: 2,
            ..Head::default()
        };
        let mut numbering = Numbering::after(head);
        let mut stored = Vec::new();
        for e in distinct(&batch) {
            let entry = numbering.entry(e).unwrap();
            // Event 2 turns out to be stored already: its offered position and hash go to
            // the next.
            if e.id != Uuid::from_u128(2) {
                numbering.take(&entry);
                stored.push((entry.seq, e.id.as_u128(), entry.hash));
            }
        }
        let positions: Vec<(u64, u128)> = stored.iter().map(|(s, id, _)| (*s, *id)).collect();
        assert_eq!(positions, [(11, 1), (12, 3)]);
        // The hash at 12 links to the one at 11, not to the skipped event's.
        let mut hasher = crate::chain::ChainHasher::new();
        let at_11 = hasher.hash(&ChainHash::GENESIS, 11, &batch[0]);
        assert_eq!(stored[0].2, at_11);
        assert_eq!(stored[1].2, hasher.hash(&at_11, 12, &batch[3]));
        assert_eq!(
            numbering.head(),
            Head {
                seq: 12,
                hash: stored[1].2,
                purged_through: 2,
                purged_hash: ChainHash::GENESIS,
            }
        );
    }

    #[test]
    fn an_id_at_another_time_is_another_event() {
        let first = event(1);
        let mut later = first.clone();
        later.time += chrono::Duration::microseconds(1);
        let mut same_microsecond = first.clone();
        same_microsecond.time += chrono::Duration::nanoseconds(500);
        let batch = [first, later, same_microsecond];
        let kept: Vec<_> = distinct(&batch).map(|e| e.time).collect();
        assert_eq!(kept, [batch[0].time, batch[1].time]);
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
