//! Tamper evidence: a hash chain over the stored events, signed checkpoints of its head, and
//! a verifier (feature `chain`; [`ChainHash`] and [`ChainHead`] exist without it, as stored
//! events carry them).
//!
//! Anyone who can write to the audit database can edit a diff, back-date an event or delete
//! a row. The chain makes every such edit visible:
//!
//! * **The chain** ([`ChainHash`], [`ChainHead`], [`ChainHasher`]): each stored event has a log position `seq` (1, 2, 3, … in
//!   commit order, no gaps) and a chain hash,
//!   `hash(seq) = SHA-256(hash(seq - 1) ‖ canonical bytes of the event)`, computed by the
//!   store under its writer lock in the transaction that inserts the event. The
//!   [canonical bytes](crate::canonical::event) cover every stored field and the position.
//! * **Checkpoints** ([`Checkpoint`]): the head (position and hash) at a time, signed with
//!   Ed25519 in the C2SP checkpoint format, kept where the database's writers cannot rewrite
//!   them (a file, a ticket, another system). A chain alone catches edits in the middle; only
//!   a checkpoint kept elsewhere catches a chain recomputed after an edit, or the newest rows
//!   deleted. Keys are [`SigningKey`] and [`VerifierKey`]; [`note`] is the signed-note format.
//! * **The verifier** ([`Verifier`], its [`VerifyReport`]): recomputes the chain, checks the checkpoints, names the
//!   first event that does not match, and lists what it could not check.

#[cfg(feature = "chain")]
mod checkpoint;
mod hash;
#[cfg(feature = "chain")]
mod hasher;
#[cfg(feature = "chain")]
mod keys;
#[cfg(feature = "chain")]
pub mod note;
#[cfg(feature = "chain")]
mod verify;

#[cfg(feature = "chain")]
pub use checkpoint::{Checkpoint, CheckpointError};
pub use hash::{ChainHash, ChainHead, HashParseError};
#[cfg(feature = "chain")]
pub use hasher::ChainHasher;
#[cfg(feature = "chain")]
pub use keys::{KeyError, SigningKey, VerifierKey, is_valid_key_name, key_id};
#[cfg(feature = "chain")]
pub use verify::{
    CheckpointCheck, CheckpointNotChecked, CheckpointOutcome, MAX_PROBLEMS, Problem, ProblemKind,
    Start, Unchecked, UncheckedReason, Verifier, VerifyReport,
};
