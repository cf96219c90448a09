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
//! A purge removes a prefix of the log (see [`Store::purge`](super::Store::purge)): what is
//! retained is always the contiguous range [`LogSpan::first`]`..=`[`LogSpan::head`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::AuditEvent;

/// An event read from a store, with its log position.
///
/// It dereferences to the [`AuditEvent`], and serializes as the event's JSON object with
/// `seq` added.
///
/// ```
/// use audit_core::AuditEvent;
/// use audit_core::store::StoredEvent;
///
/// let stored = StoredEvent { seq: 7, event: AuditEvent::builder("login").build() };
/// assert_eq!(stored.action, "login");
/// let json = serde_json::to_value(&stored).unwrap();
/// assert_eq!((json["seq"].as_u64(), json["action"].as_str()), (Some(7), Some("login")));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The log position: increases in commit order, with no gaps.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
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

/// The head row of a log, read under the appenders' lock.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    /// The highest position assigned.
    pub seq: u64,
    /// Every position up to this one has been purged.
    pub purged_through: u64,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl Head {
    pub(crate) fn span(&self) -> LogSpan {
        LogSpan {
            first: self.purged_through + 1,
            head: self.seq,
        }
    }
}

/// An event ready to insert: its position and its storable form.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Entry<'a> {
    pub seq: u64,
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
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Numbering {
    head: Head,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl Numbering {
    pub(crate) fn after(head: Head) -> Self {
        Numbering { head }
    }

    /// `event` in its storable form (every NUL replaced) at the next free position.
    pub(crate) fn entry<'a>(&self, event: &'a AuditEvent) -> Entry<'a> {
        Entry {
            seq: self.head.seq + 1,
            event: super::storable::storable(event),
        }
    }

    /// Uses up the position of `entry`, which was stored.
    pub(crate) fn take(&mut self, entry: &Entry<'_>) {
        debug_assert_eq!(entry.seq, self.head.seq + 1, "positions are taken in order");
        self.head.seq = entry.seq;
    }

    /// The head after the positions taken.
    pub(crate) fn head(&self) -> Head {
        self.head
    }
}

/// Numbers `fresh` after `head`, in order, in their storable form (every NUL replaced, see
/// [`Store::append`](super::Store::append)); returns the entries and the new head. Call it
/// under the appenders' lock, with the head read under that lock.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn number<'a>(head: Head, fresh: Vec<&'a AuditEvent>) -> (Vec<Entry<'a>>, Head) {
    let mut numbering = Numbering::after(head);
    let entries = fresh
        .into_iter()
        .map(|event| {
            let entry = numbering.entry(event);
            numbering.take(&entry);
            entry
        })
        .collect();
    (entries, numbering.head())
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
    fn numbering_skips_stored_and_repeated_events_and_leaves_no_gap() {
        let batch = [event(1), event(2), event(1), event(3), event(4)];
        let fresh = unstored(&batch, |e| e.id == Uuid::from_u128(3));
        let head = Head {
            seq: 10,
            purged_through: 4,
        };
        let (entries, new_head) = number(head, fresh);
        let numbered: Vec<(u64, u128)> = entries
            .iter()
            .map(|e| (e.seq, e.event.id.as_u128()))
            .collect();
        assert_eq!(numbered, [(11, 1), (12, 2), (13, 4)]);
        assert_eq!(
            new_head,
            Head {
                seq: 13,
                purged_through: 4
            }
        );
        assert_eq!(new_head.span(), LogSpan { first: 5, head: 13 });
        assert_eq!(new_head.span().len(), 9);
    }

    #[test]
    fn positions_taken_one_at_a_time_leave_no_gap() {
        let batch = [event(1), event(2), event(1), event(3)];
        let head = Head {
            seq: 10,
            purged_through: 2,
        };
        let mut numbering = Numbering::after(head);
        let mut stored = Vec::new();
        for e in distinct(&batch) {
            let entry = numbering.entry(e);
            // Event 2 turns out to be stored already: its offered position goes to the next.
            if e.id != Uuid::from_u128(2) {
                numbering.take(&entry);
                stored.push((entry.seq, e.id.as_u128()));
            }
        }
        assert_eq!(stored, [(11, 1), (12, 3)]);
        assert_eq!(
            numbering.head(),
            Head {
                seq: 12,
                purged_through: 2
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
        };
        assert!(purged.span().is_empty() && purged.span().first == 6);
    }
}
