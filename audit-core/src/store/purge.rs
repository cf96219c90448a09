//! Purging a prefix of the log, the same way for every SQL store: what a purge may reach,
//! then batches by position, each archived before its rows are deleted, each recording how
//! far the log is purged in the transaction that deletes it. A store may also drop a whole
//! stretch at once (a Postgres partition) when its rows are exactly the next positions.

use chrono::{DateTime, Utc};

use super::log::Head;
use super::{ArchiveFn, PurgeOptions, PurgeReport, StoreError, StoredEvent};

/// A stretch of the log that can go in one step (a partition).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct Stretch {
    /// What the store calls it (a partition's name).
    pub name: String,
    /// Its highest position: the log is purged through it once it is gone.
    pub last: u64,
    /// Its events.
    pub rows: u64,
}

/// The steps of a purge a store implements.
pub(crate) trait PurgeSteps {
    /// The head, and the last position a purge up to `cutoff` may reach: one before the
    /// first event at or after the cut-off, or the head when there is none.
    fn purge_target(&mut self, cutoff: DateTime<Utc>) -> Result<(Head, u64), StoreError>;

    /// How far the log is purged now.
    fn purged_through(&mut self) -> Result<u64, StoreError>;

    /// The events at positions `after + 1 ..= through`, in log order.
    fn events_between(&mut self, after: u64, through: u64) -> Result<Vec<StoredEvent>, StoreError>;

    /// Deletes the positions `from + 1 ..= through` and records the log purged through
    /// `through`, in one transaction; `None` (and nothing done) when another purge moved the
    /// log on from `from` meanwhile.
    fn delete_through(&mut self, from: u64, through: u64) -> Result<Option<u64>, StoreError>;

    /// A stretch starting at `from + 1`, ending at or before `target`, of events older than
    /// `cutoff`, that can go in one step.
    fn whole_stretch(
        &mut self,
        _from: u64,
        _target: u64,
        _cutoff: DateTime<Utc>,
    ) -> Result<Option<Stretch>, StoreError> {
        Ok(None)
    }

    /// Removes `stretch` and records the log purged through its last position, in one
    /// transaction; `false` (and nothing done) when another purge moved the log on from
    /// `from` meanwhile.
    fn drop_stretch(&mut self, _stretch: &Stretch, _from: u64) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The error of a purge that finds no event at the position it would purge through: the
/// log has a hole there, and the anchor of the chain (that event's hash) cannot be recorded.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn missing_anchor(seq: u64) -> StoreError {
    StoreError::Corrupt(format!(
        "no event at position {seq}, which the purge would end at: rows are missing from the \
         log (run `audit verify`); nothing was purged"
    ))
}

/// [`Store::purge`](super::Store::purge) on a store's steps.
pub(crate) fn purge(
    store: &mut dyn PurgeSteps,
    options: &PurgeOptions,
    mut archive: Option<&mut ArchiveFn<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Result<PurgeReport, StoreError> {
    let cutoff = options.older_than;
    let (head, target) = store.purge_target(cutoff)?;
    let mut report = PurgeReport {
        purged_through: head.purged_through,
        ..PurgeReport::default()
    };
    if options.dry_run {
        // The retained log is contiguous: the prefix holds exactly this many events.
        report.events = target.saturating_sub(head.purged_through);
        return Ok(report);
    }
    let batch = options.batch_size.clamp(1, 100_000) as u64;
    loop {
        let from = store.purged_through()?;
        report.purged_through = from;
        if from >= target {
            return Ok(report);
        }
        if let Some(stretch) = store.whole_stretch(from, target, cutoff)? {
            if let Some(archive) = archive.as_deref_mut() {
                let mut after = from;
                while after < stretch.last {
                    let through = stretch.last.min(after + batch);
                    archive(&store.events_between(after, through)?)?;
                    after = through;
                }
            }
            if store.drop_stretch(&stretch, from)? {
                report.events += stretch.rows;
                report.partitions_dropped += 1;
                progress(report.events);
            }
            continue;
        }
        let through = target.min(from + batch);
        if let Some(archive) = archive.as_deref_mut() {
            archive(&store.events_between(from, through)?)?;
        }
        if let Some(deleted) = store.delete_through(from, through)? {
            report.events += deleted;
            report.batches += 1;
            progress(report.events);
        }
    }
}
