//! The verifier: recomputes the chain over stored events and checks it against checkpoints
//! ([`Verifier`]).

use std::collections::BTreeMap;

use uuid::Uuid;

mod report;

pub use report::{
    CheckpointCheck, CheckpointNotChecked, CheckpointOutcome, Problem, ProblemKind, Unchecked,
    UncheckedReason, VerifyReport,
};

use super::checkpoint::Checkpoint;
use super::hash::{ChainHash, ChainHead};
use super::hasher::ChainHasher;
use crate::AuditEvent;

/// The most problems a report lists; [`VerifyReport::problems_total`] counts them all.
pub const MAX_PROBLEMS: usize = 100;

/// Where a segment of events starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the first position: the first event links to [`ChainHash::GENESIS`].
    Genesis,
    /// After the event at `head.seq`, whose hash is `head.hash`: a log whose events up to
    /// there were purged (the anchor the purge recorded).
    After(ChainHead),
    /// After an event that is not available: the first event's link cannot be checked (an
    /// archive that does not start at the first position, read on its own).
    Unknown,
}

/// The verifier: recomputes the chain over stored events and checks it against checkpoints.
///
/// Feed a [`Verifier`] the checkpoints and the store's head record first, then the events in
/// log order, in one or more segments (archives, then the live log), and call
/// [`finish`](Verifier::finish). It holds no event: memory stays constant whatever the size
/// of the log.
///
/// What it finds ([`ProblemKind`]), each naming the first event concerned:
/// * an event whose stored fields no longer match its chain hash (altered, back-dated, or an
///   inserted row given a made-up hash), or whose hash was replaced;
/// * a missing position (a deleted row), a repeated or backwards one (an inserted or
///   reordered row), a row that cannot be read;
/// * with checkpoints: a chain whose hash at a checkpoint's size is not the signed one (the
///   chain was rewritten from some point on: hiding that needs the signing key), and a log
///   that ends before a checkpoint's size (its newest rows were deleted);
/// * with the store's head record: a log that ends before it, or goes past it.
///
/// What it could not check is listed rather than passed over ([`UncheckedReason`]): events
/// purged before the first one available, positions between two segments that no segment
/// holds, events newer than the newest checkpoint, checkpoints older than the first event
/// available.
///
/// ```
/// use audit_core::chain::{ChainHasher, ChainHead, Checkpoint, SigningKey, Start, Verifier};
/// use audit_core::AuditEvent;
///
/// // A log of three events and a checkpoint of it.
/// let mut hasher = ChainHasher::new();
/// let mut head = ChainHead::GENESIS;
/// let mut log = Vec::new();
/// for action in ["create", "write", "delete"] {
///     let event = AuditEvent::builder(action).resource_type("workspace").build();
///     head = hasher.next(&head, &event).unwrap();
///     log.push((head, event));
/// }
/// let key = SigningKey::generate("example.com/audit").unwrap();
/// let checkpoint = Checkpoint::new(key.name(), head, chrono::Utc::now());
///
/// // Someone deletes the newest row.
/// log.pop();
///
/// let mut verifier = Verifier::new();
/// verifier.checkpoint(checkpoint, "checkpoint.txt");
/// verifier.begin(Start::Genesis);
/// for (at, event) in &log {
///     verifier.event(at.seq, at.hash, event);
/// }
/// let report = verifier.finish();
/// assert!(!report.is_intact());
/// assert_eq!(report.events_verified, 2);
/// assert!(report.problems[0].to_string().contains("#3 is missing"));
/// ```
#[derive(Debug)]
pub struct Verifier {
    hasher: ChainHasher,
    checkpoints: Vec<CheckpointCheck>,
    /// Unresolved checkpoints by size: indexes into `checkpoints`.
    pending: BTreeMap<u64, Vec<usize>>,
    head_record: Option<ChainHead>,
    /// The link point for the next event of the current segment; `None` when unknown.
    prev: Option<ChainHead>,
    /// The furthest position reached in an earlier segment, which a later segment that
    /// overlaps it must meet with the same hash.
    join: Option<ChainHead>,
    /// The furthest position reached so far.
    frontier: Option<ChainHead>,
    /// The first event not yet covered by a matching checkpoint.
    uncovered_from: Option<(u64, Uuid)>,
    /// The event right after the head record, if one was read.
    beyond_head: Option<(u64, Uuid)>,
    last_id: Option<Uuid>,
    started: bool,
    report: VerifyReport,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier with no checkpoints.
    pub fn new() -> Self {
        Verifier {
            hasher: ChainHasher::new(),
            checkpoints: Vec::new(),
            pending: BTreeMap::new(),
            head_record: None,
            prev: None,
            join: None,
            frontier: None,
            uncovered_from: None,
            beyond_head: None,
            last_id: None,
            started: false,
            report: VerifyReport::default(),
        }
    }

    /// Adds a checkpoint whose signature was verified, `source` saying where it came from (a
    /// file name, `database`). Add checkpoints before the events.
    pub fn checkpoint(&mut self, checkpoint: Checkpoint, source: impl Into<String>) -> &mut Self {
        let index = self.checkpoints.len();
        self.pending
            .entry(checkpoint.head.seq)
            .or_default()
            .push(index);
        self.checkpoints.push(CheckpointCheck {
            source: source.into(),
            origin: checkpoint.origin,
            size: checkpoint.head.seq,
            root: checkpoint.head.hash,
            time: checkpoint.time,
            outcome: CheckpointOutcome::Unchecked,
        });
        self
    }

    /// Records a checkpoint that could not be used because it cannot be checked here (signed
    /// by a key that was not given): listed, not a problem.
    pub fn checkpoint_not_checked(
        &mut self,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> &mut Self {
        self.report
            .checkpoints_not_checked
            .push(CheckpointNotChecked {
                source: source.into(),
                reason: reason.into(),
            });
        self
    }

    /// Records a checkpoint that is not valid (its signature does not verify, its text is not
    /// a checkpoint): a problem, since someone changed it.
    pub fn invalid_checkpoint(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        self.problem(
            None,
            None,
            ProblemKind::InvalidCheckpoint {
                source: source.into(),
                reason: reason.into(),
            },
        );
    }

    /// Records the head the store says it has (its head row), to compare with the last event.
    /// Give it before the events.
    pub fn head_record(&mut self, head: ChainHead) -> &mut Self {
        self.head_record = Some(head);
        self
    }

    /// Starts a segment: the live log (from [`Start::Genesis`] or after its purge anchor), or
    /// an archive. A segment that starts where an earlier one ended is joined to it; one that
    /// starts further on leaves the positions between them unchecked.
    pub fn begin(&mut self, start: Start) -> &mut Self {
        let first_segment = !self.started;
        self.started = true;
        if !first_segment {
            self.join = self.frontier;
        }
        let start_head = match start {
            Start::Genesis => Some(ChainHead::GENESIS),
            Start::After(head) => Some(head),
            Start::Unknown => None,
        };
        self.prev = start_head;
        let Some(start_head) = start_head else {
            return self;
        };
        let reached = self.frontier.map_or(0, |f| f.seq);
        if start_head.seq > reached {
            let reason = if first_segment {
                UncheckedReason::Purged
            } else {
                UncheckedReason::NotInAnySegment
            };
            self.unchecked(reached + 1, start_head.seq, reason);
        }
        self.reach(start_head, None);
        self
    }

    /// Feeds the event stored at position `seq` with chain hash `hash`. Events must come in
    /// log order within a segment.
    pub fn event(&mut self, seq: u64, hash: ChainHash, event: &AuditEvent) {
        if !self.started {
            self.begin(Start::Genesis);
        }
        self.report.events_seen += 1;
        self.report.first.get_or_insert(seq);
        let here = ChainHead { seq, hash };
        // A segment that starts after an unknown event still links to the end of the
        // segment before it, if it continues it.
        let link_from = self
            .prev
            .or_else(|| self.frontier.filter(|f| f.seq.checked_add(1) == Some(seq)));
        match link_from {
            Some(prev) if prev.seq.checked_add(1) == Some(seq) => {
                let computed = self.hasher.hash(&prev.hash, seq, event);
                if computed == hash {
                    self.report.events_verified += 1;
                } else {
                    self.problem(
                        Some(seq),
                        Some(event.id),
                        ProblemKind::HashMismatch {
                            stored: hash,
                            computed,
                        },
                    );
                }
            }
            Some(prev) if seq > prev.seq => {
                self.problem(
                    Some(seq),
                    Some(event.id),
                    ProblemKind::Missing {
                        from: prev.seq + 1,
                        to: seq - 1,
                    },
                );
            }
            Some(prev) => {
                self.problem(
                    Some(seq),
                    Some(event.id),
                    ProblemKind::OutOfOrder { after: prev.seq },
                );
                return;
            }
            None => self.unchecked(seq, seq, UncheckedReason::PredecessorUnknown),
        }
        // Link the next event to this one's stored hash: a changed event is reported alone,
        // and a replaced hash shows at the event after it.
        self.prev = Some(here);
        self.reach(here, Some(event.id));
    }

    /// Records a row that could not be read as an event, with what is known of it. The next
    /// event links to `hash` if it is known.
    pub fn unreadable(
        &mut self,
        seq: Option<u64>,
        id: Option<Uuid>,
        hash: Option<ChainHash>,
        reason: impl Into<String>,
    ) {
        if !self.started {
            self.begin(Start::Genesis);
        }
        self.report.events_seen += 1;
        self.problem(
            seq,
            id,
            ProblemKind::Unreadable {
                reason: reason.into(),
            },
        );
        match (seq, hash) {
            (Some(seq), Some(hash)) => {
                let here = ChainHead { seq, hash };
                self.prev = Some(here);
                self.reach(here, id);
            }
            _ => self.prev = None,
        }
    }

    /// Bookkeeping for a position reached with hash `head.hash`: the segment join, the
    /// checkpoints of that size, the head record and the frontier.
    fn reach(&mut self, head: ChainHead, id: Option<Uuid>) {
        if let Some(join) = self.join
            && join.seq == head.seq
        {
            self.join = None;
            if join.hash != head.hash {
                self.problem(
                    Some(head.seq),
                    id,
                    ProblemKind::SegmentsDisagree {
                        earlier: join.hash,
                        later: head.hash,
                    },
                );
            }
        }
        if let Some(id) = id {
            if self.uncovered_from.is_none() {
                self.uncovered_from = Some((head.seq, id));
            }
            if let Some(record) = self.head_record
                && record.seq.checked_add(1) == Some(head.seq)
            {
                self.beyond_head = Some((head.seq, id));
            }
            self.last_id = Some(id);
        }
        if let Some(indexes) = self.pending.remove(&head.seq) {
            for index in indexes {
                self.resolve_checkpoint(index, head);
            }
        }
        if self.frontier.is_none_or(|f| head.seq >= f.seq) {
            self.frontier = Some(head);
        }
    }

    fn resolve_checkpoint(&mut self, index: usize, head: ChainHead) {
        let check = &mut self.checkpoints[index];
        if check.root == head.hash {
            check.outcome = CheckpointOutcome::Matched;
            self.uncovered_from = None;
            return;
        }
        check.outcome = CheckpointOutcome::Failed;
        let (size, root, source) = (check.size, check.root, check.source.clone());
        let (seq, id) = match self.uncovered_from {
            Some((seq, id)) => (Some(seq), Some(id)),
            None => (Some(head.seq), self.last_id),
        };
        self.problem(
            seq,
            id,
            ProblemKind::Rewritten {
                size,
                checkpoint: root,
                log: head.hash,
                source,
            },
        );
    }

    fn problem(&mut self, seq: Option<u64>, id: Option<Uuid>, kind: ProblemKind) {
        self.report.problems_total += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(Problem { seq, id, kind });
        }
    }

    fn unchecked(&mut self, from: u64, to: u64, reason: UncheckedReason) {
        // Extend the previous range when this one continues it for the same reason.
        if let Some(last) = self.report.unchecked.last_mut()
            && last.reason == reason
            && last.to.checked_add(1) == Some(from)
        {
            last.to = to;
            return;
        }
        self.report.unchecked.push(Unchecked { from, to, reason });
    }

    /// Finishes: checks the head record and the checkpoints the events did not reach, and
    /// returns the report.
    pub fn finish(mut self) -> VerifyReport {
        if !self.started {
            self.begin(Start::Genesis);
        }
        let head = self.frontier.unwrap_or(ChainHead::GENESIS);
        if let Some(record) = self.head_record {
            if record.seq > head.seq {
                self.problem(
                    Some(head.seq.saturating_add(1)),
                    None,
                    ProblemKind::Truncated {
                        from: head.seq.saturating_add(1),
                        to: record.seq,
                        source: "the store's head record".into(),
                    },
                );
            } else if record.seq == head.seq && record.hash != head.hash {
                self.problem(
                    Some(head.seq),
                    self.last_id,
                    ProblemKind::HeadMismatch {
                        recorded: record.hash,
                    },
                );
            } else if let Some((seq, id)) = self.beyond_head {
                self.problem(
                    Some(seq),
                    Some(id),
                    ProblemKind::BeyondHead { head: record.seq },
                );
            }
        }
        // Checkpoints never reached: past the end (truncation) or in a range not available.
        let pending = std::mem::take(&mut self.pending);
        let mut truncated_to: Option<(u64, String)> = None;
        for (size, indexes) in pending {
            for index in indexes {
                let check = &mut self.checkpoints[index];
                if size > head.seq {
                    check.outcome = CheckpointOutcome::Failed;
                    if truncated_to.as_ref().is_none_or(|(to, _)| size > *to) {
                        truncated_to = Some((size, check.source.clone()));
                    }
                } else {
                    check.outcome = CheckpointOutcome::Unchecked;
                }
            }
        }
        if let Some((to, source)) = truncated_to {
            self.problem(
                Some(head.seq.saturating_add(1)),
                None,
                ProblemKind::Truncated {
                    from: head.seq.saturating_add(1),
                    to,
                    source,
                },
            );
        }
        let newest_matched = self
            .checkpoints
            .iter()
            .filter(|c| c.outcome == CheckpointOutcome::Matched)
            .map(|c| c.size)
            .max();
        let covered_to = newest_matched.unwrap_or(0);
        let first = self.report.first.unwrap_or(head.seq.saturating_add(1));
        if head.seq > covered_to && head.seq >= first {
            // The positions after the newest matching checkpoint, but those already listed
            // for another reason.
            let mut from = covered_to.max(first.saturating_sub(1)) + 1;
            let mut listed: Vec<(u64, u64)> = self
                .report
                .unchecked
                .iter()
                .map(|u| (u.from, u.to))
                .collect();
            listed.sort_unstable();
            for (a, b) in listed {
                if b < from {
                    continue;
                }
                if a > head.seq {
                    break;
                }
                if a > from {
                    self.unchecked(from, a - 1, UncheckedReason::NotSigned);
                }
                from = from.max(b.saturating_add(1));
            }
            if from <= head.seq {
                self.unchecked(from, head.seq, UncheckedReason::NotSigned);
            }
        }
        self.report.head = head;
        self.report.checkpoints = self.checkpoints;
        self.report.unchecked.sort_by_key(|u| (u.from, u.to));
        self.report
    }
}
