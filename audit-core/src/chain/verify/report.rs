//! What a verification reports: [`VerifyReport`], the problems it names and the ranges it
//! could not check, and how each prints for people.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::chain::hash::{ChainHash, ChainHead};

/// What a verification found. `Display` prints a summary for people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events whose chain link was recomputed and matched.
    pub events_verified: u64,
    /// Rows read (events and unreadable rows).
    pub events_seen: u64,
    /// The first position read.
    pub first: Option<u64>,
    /// The head reached: the last position and its stored hash.
    pub head: ChainHead,
    /// Each checkpoint given, and what became of it.
    pub checkpoints: Vec<CheckpointCheck>,
    /// Checkpoints that could not be checked at all (signed by a key not given).
    pub checkpoints_not_checked: Vec<CheckpointNotChecked>,
    /// What is wrong, in the order found (at most [`MAX_PROBLEMS`](super::MAX_PROBLEMS)).
    pub problems: Vec<Problem>,
    /// How many problems were found in all.
    pub problems_total: u64,
    /// Ranges of positions that could not be checked, by position.
    pub unchecked: Vec<Unchecked>,
}

impl VerifyReport {
    /// No problem was found (some ranges may still be [unchecked](Self::unchecked)).
    pub fn is_intact(&self) -> bool {
        self.problems_total == 0
    }

    /// The first problem found.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = match self.first {
            Some(first) if self.events_seen > 0 => format!(" (#{first}..#{})", self.head.seq),
            _ => String::new(),
        };
        writeln!(
            f,
            "events verified: {} of {}{range}",
            self.events_verified, self.events_seen
        )?;
        writeln!(f, "head: #{} {}", self.head.seq, self.head.hash)?;
        let count = |o| self.checkpoints.iter().filter(|c| c.outcome == o).count();
        writeln!(
            f,
            "checkpoints: {} given, {} matched, {} failed, {} not checkable",
            self.checkpoints.len() + self.checkpoints_not_checked.len(),
            count(CheckpointOutcome::Matched),
            count(CheckpointOutcome::Failed),
            count(CheckpointOutcome::Unchecked) + self.checkpoints_not_checked.len()
        )?;
        for c in &self.checkpoints {
            if c.outcome == CheckpointOutcome::Unchecked {
                writeln!(
                    f,
                    "not checked: checkpoint {} at #{}: that position is not in the events read",
                    c.source, c.size
                )?;
            }
        }
        for c in &self.checkpoints_not_checked {
            writeln!(f, "not checked: checkpoint {}: {}", c.source, c.reason)?;
        }
        for u in &self.unchecked {
            writeln!(f, "not checked: {u}")?;
        }
        for p in &self.problems {
            writeln!(f, "INVALID: {p}")?;
        }
        if self.problems_total > self.problems.len() as u64 {
            writeln!(
                f,
                "INVALID: … and {} more problems",
                self.problems_total - self.problems.len() as u64
            )?;
        }
        if self.is_intact() {
            write!(f, "intact")
        } else {
            write!(f, "NOT INTACT")
        }
    }
}

/// A checkpoint that could not be checked, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointNotChecked {
    /// Where it came from.
    pub source: String,
    /// Why it could not be checked.
    pub reason: String,
}

/// One checkpoint and what the verification made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointCheck {
    /// Where it came from.
    pub source: String,
    /// Its origin line.
    pub origin: String,
    /// Its size (the head position it signs).
    pub size: u64,
    /// Its root hash.
    pub root: ChainHash,
    /// Its time, if it states one.
    pub time: Option<DateTime<Utc>>,
    /// What became of it.
    pub outcome: CheckpointOutcome,
}

/// What became of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointOutcome {
    /// The log's hash at its size is its root hash.
    Matched,
    /// The log's hash at its size differs, or the log ends before its size.
    Failed,
    /// Its position was not among the events read (purged, or between segments).
    Unchecked,
}

/// Something wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The position concerned (for a missing range, its first position).
    pub seq: Option<u64>,
    /// The id of the event concerned, when there is one.
    pub id: Option<Uuid>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProblemKind {
    /// The event's stored fields and its predecessor's hash do not give its stored hash: the
    /// event (content, time or position) or its hash was changed.
    HashMismatch {
        /// The stored hash.
        stored: ChainHash,
        /// The hash its fields give.
        computed: ChainHash,
    },
    /// Positions `from..=to` are missing before this event: rows were deleted.
    Missing {
        /// First missing position.
        from: u64,
        /// Last missing position.
        to: u64,
    },
    /// The event's position does not follow the previous one's (`after`): a row was inserted
    /// or renumbered.
    OutOfOrder {
        /// The previous position.
        after: u64,
    },
    /// The row cannot be read as an event.
    Unreadable {
        /// Why.
        reason: String,
    },
    /// The log ends before position `to`, which a checkpoint or the head record vouches for:
    /// its newest rows were deleted.
    Truncated {
        /// First missing position.
        from: u64,
        /// The position vouched for.
        to: u64,
        /// What vouches for it.
        source: String,
    },
    /// The chain at a checkpoint's size is not the signed root: events from the named one
    /// up to that size were rewritten.
    Rewritten {
        /// The checkpoint's size.
        size: u64,
        /// Its root hash.
        checkpoint: ChainHash,
        /// The log's hash at that position.
        log: ChainHash,
        /// Where the checkpoint came from.
        source: String,
    },
    /// Two segments (an archive and the live log) hold different hashes at one position.
    SegmentsDisagree {
        /// The earlier segment's hash.
        earlier: ChainHash,
        /// The later segment's.
        later: ChainHash,
    },
    /// The store's head record holds another hash for the last event.
    HeadMismatch {
        /// The recorded hash.
        recorded: ChainHash,
    },
    /// Events exist after the store's head record (`head`): rows were appended around the
    /// store.
    BeyondHead {
        /// The recorded head position.
        head: u64,
    },
    /// A checkpoint that is not valid: its signature does not verify or its text is not a
    /// checkpoint.
    InvalidCheckpoint {
        /// Where it came from.
        source: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = match (self.id, self.seq) {
            (Some(id), Some(seq)) => format!("event {id} (#{seq})"),
            (Some(id), None) => format!("event {id}"),
            (None, Some(seq)) => format!("the row at #{seq}"),
            (None, None) => "a row".to_owned(),
        };
        match &self.kind {
            ProblemKind::HashMismatch { .. } => write!(
                f,
                "{event} does not match its chain hash: its fields (content, time or position) or its hash were changed, or the hash of the event before it was"
            ),
            ProblemKind::Missing { from, to } if from == to => {
                write!(f, "#{from} is missing before {event}: a row was deleted")
            }
            ProblemKind::Missing { from, to } => write!(
                f,
                "#{from}..#{to} are missing before {event}: rows were deleted"
            ),
            ProblemKind::OutOfOrder { after } => write!(
                f,
                "{event} comes after #{after}: a row was inserted or renumbered"
            ),
            ProblemKind::Unreadable { reason } => write!(f, "{event} cannot be read: {reason}"),
            ProblemKind::Truncated { from, to, source } if from == to => write!(
                f,
                "#{from} is missing at the end of the log, but {source} vouches for it: the newest row was deleted"
            ),
            ProblemKind::Truncated { from, to, source } => write!(
                f,
                "#{from}..#{to} are missing at the end of the log, but {source} vouches for them: the newest rows were deleted"
            ),
            ProblemKind::Rewritten {
                size,
                checkpoint,
                log,
                source,
            } => write!(
                f,
                "the log was rewritten from {event} on: at #{size} its hash is {log}, but checkpoint {source} signed {checkpoint}"
            ),
            ProblemKind::SegmentsDisagree { earlier, later } => write!(
                f,
                "{event}: the archive and the log disagree at this position ({earlier} vs {later})"
            ),
            ProblemKind::HeadMismatch { recorded } => write!(
                f,
                "{event} is the last event, but the store's head record holds another hash ({recorded})"
            ),
            ProblemKind::BeyondHead { head } => write!(
                f,
                "{event} lies after the store's head record (#{head}): rows were added around the store"
            ),
            ProblemKind::InvalidCheckpoint { source, reason } => {
                write!(f, "checkpoint {source} is not valid: {reason}")
            }
        }
    }
}

/// A range of positions that could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    /// First position.
    pub from: u64,
    /// Last position.
    pub to: u64,
    /// Why.
    pub reason: UncheckedReason,
}

/// Why a range could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UncheckedReason {
    /// Purged before the first event available; the purge archive can check them.
    Purged,
    /// Between two segments, in neither.
    NotInAnySegment,
    /// The event before is not available, so this event's hash is taken as given.
    PredecessorUnknown,
    /// Newer than the newest matching checkpoint (or no checkpoint was given): chained, but
    /// a rewrite or truncation of them would go unnoticed until a checkpoint covers them.
    NotSigned,
}

impl fmt::Display for Unchecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "#{}: ", self.from)?;
        } else {
            write!(f, "#{}..#{}: ", self.from, self.to)?;
        }
        f.write_str(match self.reason {
            UncheckedReason::Purged => {
                "purged before the first event in the log (pass the purge archives with --archive to check them)"
            }
            UncheckedReason::NotInAnySegment => "in none of the archives given",
            UncheckedReason::PredecessorUnknown => {
                "the event before is not available, so this hash is taken as given"
            }
            UncheckedReason::NotSigned => {
                "chained, but no matching checkpoint covers these yet: a rewrite or truncation of them would not be noticed (take a checkpoint)"
            }
        })
    }
}
