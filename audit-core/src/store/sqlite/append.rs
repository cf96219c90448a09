//! One append, in one `BEGIN IMMEDIATE` transaction: each event of the batch is inserted at
//! the next free log position, with its chain hash, unless it is stored already, then the
//! time spans and key summaries of the buckets it touched, the recorded vocabularies and the
//! head row (position and hash) are brought up to date.
//!
//! An event is identified by its time and id, as in every store (and in page cursors). The
//! insert itself finds out whether it is stored (`ON CONFLICT (time, id) DO NOTHING` on the
//! unique `(time, id)` index, which the insert searches anyway), so a fresh event costs no
//! lookup; a position is taken only by an event that was inserted ([`Numbering`]).
//!
//! The recorded `(resource_type, action)` and `(email, username)` pairs are written only when
//! this connection has not seen them stored yet ([`Recorded`]), so a batch of known actors and
//! actions writes nothing there.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::layout::{BUCKETS_TABLE, bucket_of};
use super::row;
use crate::AuditEvent;
use crate::store::columns::{self, COLUMN_LIST, COLUMNS, HEAD_COLUMNS};
use crate::store::log::{self, Entry, Head, Numbering};
use crate::store::{StoreError, recorded_pairs};

/// Pairs this connection knows are stored, so it does not write them again. A cache: it is
/// emptied when it grows past [`Recorded::CAPACITY`] pairs of a kind.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    actions: HashSet<(String, String)>,
    actors: HashSet<(String, String)>,
}

impl Recorded {
    const CAPACITY: usize = 10_000;

    /// Remembers pairs once their transaction has committed.
    fn remember(&mut self, actions: Vec<(String, String)>, actors: Vec<(String, String)>) {
        for (set, new) in [(&mut self.actions, actions), (&mut self.actors, actors)] {
            if set.len() + new.len() > Self::CAPACITY {
                set.clear();
            }
            set.extend(new);
        }
    }
}

/// Appends `events` (a whole batch, or a part of one being isolated) in one transaction.
pub(super) fn append_once(
    conn: &mut Connection,
    recorded: &mut Recorded,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head = head_row(&tx)?;
    let before = head.seq;
    let mut numbering = Numbering::after(head);
    let mut inserted: Vec<Entry<'_>> = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(&insert_sql())?;
        for event in log::distinct(events) {
            let entry = numbering.entry(event)?;
            if row::insert(&mut insert, &entry)? {
                numbering.take(&entry);
                inserted.push(entry);
            }
        }
    }
    if inserted.is_empty() {
        return Ok(());
    }
    record_bucket_spans(&tx, &inserted)?;
    super::summary::record(&tx, &inserted, before, numbering.head().seq)?;
    let (actions, actors) = record_vocabulary(&tx, recorded, &inserted)?;
    let head = numbering.head();
    tx.execute(
        "UPDATE audit_log_head SET seq = ?1, hash = ?2 WHERE id = 1",
        rusqlite::params![
            columns::seq_param(head.seq),
            head.hash.as_bytes().as_slice()
        ],
    )?;
    tx.commit()?;
    recorded.remember(actions, actors);
    Ok(())
}

/// The head row, read under the write lock.
pub(super) fn head_row(conn: &Connection) -> Result<Head, StoreError> {
    let (seq, hash, purged_through, purged_hash): (i64, Vec<u8>, i64, Vec<u8>) = conn
        .prepare_cached(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_log_head WHERE id = 1"
        ))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    columns::head(seq, &hash, purged_through, &purged_hash)
}

/// `INSERT INTO audit_logs (…) VALUES (?1, …)`, skipping a stored event.
fn insert_sql() -> String {
    let placeholders: Vec<String> = (1..=COLUMNS.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO audit_logs ({}) VALUES ({}) ON CONFLICT (time, id) DO NOTHING",
        *COLUMN_LIST,
        placeholders.join(", ")
    )
}

/// Widens the time span of each bucket the inserted events fall in.
fn record_bucket_spans(tx: &Transaction<'_>, inserted: &[Entry<'_>]) -> Result<(), StoreError> {
    let mut spans: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for entry in inserted {
        let time = entry.event.time.timestamp_micros();
        spans
            .entry(bucket_of(entry.seq))
            .and_modify(|(min, max)| {
                *min = (*min).min(time);
                *max = (*max).max(time);
            })
            .or_insert((time, time));
    }
    let mut upsert = tx.prepare_cached(&format!(
        "INSERT INTO {BUCKETS_TABLE} (bucket, min_time, max_time) VALUES (?1, ?2, ?3) \
         ON CONFLICT (bucket) DO UPDATE SET min_time = min(min_time, excluded.min_time), \
         max_time = max(max_time, excluded.max_time)"
    ))?;
    for (bucket, (min, max)) in spans {
        upsert.execute([bucket, min, max])?;
    }
    Ok(())
}

/// Pairs, as owned strings.
type Pairs = Vec<(String, String)>;

/// Writes the `(resource_type, action)` and `(email, username)` pairs of the inserted events
/// that this connection has not seen stored; returns them, to remember after the commit.
fn record_vocabulary(
    tx: &Transaction<'_>,
    recorded: &Recorded,
    inserted: &[Entry<'_>],
) -> Result<(Pairs, Pairs), StoreError> {
    let owned = |(a, b): (&str, &str)| (a.to_owned(), b.to_owned());
    let actions: Pairs = recorded_pairs(inserted.iter().map(|e| &*e.event))
        .into_iter()
        .filter(|&(t, a)| !recorded.actions.contains(&(t.to_owned(), a.to_owned())))
        .map(owned)
        .collect();
    let actors: Pairs = inserted
        .iter()
        .map(|e| {
            (
                e.event.actor.email.as_str(),
                e.event.actor.username.as_str(),
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|&(m, u)| !recorded.actors.contains(&(m.to_owned(), u.to_owned())))
        .map(owned)
        .collect();
    for (table, columns, pairs) in [
        ("audit_recorded_actions", "resource_type, action", &actions),
        ("audit_recorded_actors", "email, username", &actors),
    ] {
        if pairs.is_empty() {
            continue;
        }
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {table} ({columns}) VALUES (?1, ?2)"
        ))?;
        for (a, b) in pairs {
            stmt.execute([a, b])?;
        }
    }
    Ok((actions, actors))
}
