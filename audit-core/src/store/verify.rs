//! Verifying a store's hash chain, and taking a checkpoint of it (feature `chain`): what
//! `audit verify` and `audit checkpoint` do.
//!
//! [`verify`] reads the archives given (JSON-lines purge archives or exports), then the live
//! log from its purge anchor, in one snapshot, through one [`Verifier`], with the
//! checkpoints given and those the store keeps. It never writes. Archives are joined to the
//! live log: an archive that ends where the log's anchor is must end with the anchor's hash.
//!
//! [`take_checkpoint`] verifies the chain from the newest checkpoint the same key signed
//! (the whole log the first time) and refuses to sign a head that does not extend it, so a
//! key never vouches for a log that was edited since its last checkpoint.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ChainRow, Store, StoreError, StoredCheckpoint, StoredEvent};
use crate::chain::note::NoteError;
use crate::chain::{
    Checkpoint, CheckpointError, SigningKey, Start, Verifier, VerifierKey, VerifyReport,
};

/// What to verify a store against, besides its own chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The public keys checkpoints are signed with. Without them, no checkpoint is checked.
    pub keys: Vec<VerifierKey>,
    /// Signed checkpoints kept outside the store: `(where it came from, its text)`.
    pub checkpoints: Vec<(String, String)>,
    /// JSON-lines archives (purge archives, exports), oldest first, read before the live log.
    pub archives: Vec<PathBuf>,
}

/// Verifies `store`'s chain with `options`. Never writes.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use audit_core::store::{Store, sqlite::SqliteStore, verify};
///
/// let mut store = SqliteStore::in_memory().unwrap();
/// store.append(&[audit_core::AuditEvent::builder("login").build()]).unwrap();
/// let report = verify::verify(&mut store, &verify::VerifyOptions::default()).unwrap();
/// assert!(report.is_intact());
/// assert_eq!(report.events_verified, 1);
/// # }
/// ```
pub fn verify(store: &mut dyn Store, options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let mut verifier = Verifier::new();
    add_checkpoints(store, options, &mut verifier)?;
    for archive in &options.archives {
        read_archive(archive, &mut verifier)?;
    }
    scan_live(store, 0, &mut verifier)?;
    Ok(verifier.finish())
}

/// Verifies archives on their own, without a store: for an archive kept after the database it
/// came from is gone, or checked somewhere else. The checkpoints of `options` are checked
/// against the archives; what lies beyond the last archive is listed as not checked. Never
/// writes.
pub fn verify_archives(options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let mut verifier = Verifier::new();
    add_given_checkpoints(options, &mut verifier);
    for archive in &options.archives {
        read_archive(archive, &mut verifier)?;
    }
    Ok(verifier.finish())
}

/// Signs a checkpoint of `store`'s head at `time` with `key` and records it in the store,
/// after verifying the chain from the newest checkpoint `key` signed. Returns the checkpoint
/// and its signed text.
pub fn take_checkpoint(
    store: &mut dyn Store,
    key: &SigningKey,
    time: DateTime<Utc>,
) -> Result<(Checkpoint, String), VerifyError> {
    let keys = [key.verifier()];
    let own: Vec<Checkpoint> = store
        .checkpoints()?
        .into_iter()
        .filter_map(|c| Checkpoint::open(&c.note, &keys).ok())
        .collect();
    let anchor = store.chain()?.anchor;
    // From the newest own checkpoint still in the log, or the whole log.
    let from = own
        .iter()
        .map(|c| c.head.seq)
        .filter(|seq| *seq > anchor.seq)
        .max()
        .unwrap_or(0);
    let mut verifier = Verifier::new();
    let options = VerifyOptions {
        keys: keys.to_vec(),
        ..VerifyOptions::default()
    };
    add_checkpoints(store, &options, &mut verifier)?;
    scan_live(store, from, &mut verifier)?;
    let report = verifier.finish();
    if !report.is_intact() {
        return Err(VerifyError::NotIntact(Box::new(report)));
    }
    let checkpoint = Checkpoint::new(key.name(), report.head, time);
    let note = checkpoint.sign(key).map_err(VerifyError::Checkpoint)?;
    store.add_checkpoint(&StoredCheckpoint {
        head: checkpoint.head,
        time,
        note: note.clone(),
    })?;
    Ok((checkpoint, note))
}

/// Adds the checkpoints given and those the store keeps to `verifier`.
/// The checkpoints kept outside the store, each checked or reported invalid.
fn add_given_checkpoints(options: &VerifyOptions, verifier: &mut Verifier) {
    for (source, note) in &options.checkpoints {
        match Checkpoint::open(note, &options.keys) {
            Ok(checkpoint) => {
                verifier.checkpoint(checkpoint, source.clone());
            }
            Err(e) => verifier.invalid_checkpoint(source.clone(), e.to_string()),
        }
    }
}

fn add_checkpoints(
    store: &mut dyn Store,
    options: &VerifyOptions,
    verifier: &mut Verifier,
) -> Result<(), VerifyError> {
    add_given_checkpoints(options, verifier);
    let stored = match store.checkpoints() {
        Ok(stored) => stored,
        Err(StoreError::Unsupported(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // Checkpoints that cannot be checked here are counted by reason, not listed one by one.
    let mut not_checked: Vec<(String, usize)> = Vec::new();
    for c in stored {
        let source = format!("store:{}", c.time.to_rfc3339());
        let reason = if options.keys.is_empty() {
            "no public key was given (pass --public-key)".to_owned()
        } else {
            match Checkpoint::open(&c.note, &options.keys) {
                Ok(checkpoint) => {
                    verifier.checkpoint(checkpoint, source);
                    continue;
                }
                Err(CheckpointError::Note(NoteError::NotSignedByAKnownKey {
                    signed_by, ..
                })) => {
                    format!("signed by a key not given ({})", signed_by.join(", "))
                }
                Err(e) => {
                    verifier.invalid_checkpoint(source, e.to_string());
                    continue;
                }
            }
        };
        match not_checked.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => not_checked.push((reason, 1)),
        }
    }
    for (reason, n) in not_checked {
        let plural = if n == 1 { "" } else { "s" };
        verifier.checkpoint_not_checked(format!("store ({n} checkpoint{plural})"), reason);
    }
    Ok(())
}

/// Feeds the live log from position `from` to `verifier`, as one segment.
fn scan_live(store: &mut dyn Store, from: u64, verifier: &mut Verifier) -> Result<(), VerifyError> {
    let mut started = false;
    let start = |verifier: &mut Verifier, span: &super::ChainSpan| {
        verifier.head_record(span.head);
        verifier.begin(if from > span.anchor.seq + 1 {
            Start::Unknown
        } else if span.anchor.seq == 0 {
            Start::Genesis
        } else {
            Start::After(span.anchor)
        });
    };
    let span = store.scan_chain(from, &mut |span, row| {
        if !started {
            started = true;
            start(verifier, span);
        }
        match row {
            ChainRow::Event(e) => verifier.event(e.seq, e.hash, &e.event),
            ChainRow::Unreadable {
                seq,
                id,
                hash,
                reason,
            } => verifier.unreadable(seq, id, hash, reason),
        }
    })?;
    if !started {
        start(verifier, &span);
    }
    Ok(())
}

/// Reads a JSON-lines archive into `verifier`, in log order: straight through when its lines
/// are in log order (a purge archive), otherwise through an index of positions (an export,
/// newest first).
fn read_archive(path: &Path, verifier: &mut Verifier) -> Result<(), VerifyError> {
    let io = |source| VerifyError::Archive {
        path: path.to_owned(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    // First pass: each line's position and offset.
    #[derive(Deserialize)]
    struct Position {
        seq: u64,
    }
    let mut index: Vec<(Option<u64>, u64, usize)> = Vec::new();
    let mut in_order = true;
    let mut last = 0u64;
    let mut offset = 0u64;
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let read = file.read_line(&mut line).map_err(io)?;
        if read == 0 {
            break;
        }
        if number == 1 && line.trim_start_matches('\u{feff}').starts_with("id,time,") {
            return Err(VerifyError::CsvArchive(path.to_owned()));
        }
        if !line.trim().is_empty() {
            let seq = serde_json::from_str::<Position>(&line).ok().map(|p| p.seq);
            if let Some(seq) = seq {
                in_order &= seq > last;
                last = seq;
            }
            index.push((seq, offset, number));
        }
        offset += read as u64;
    }
    if !in_order {
        // Lines without a position keep their place at the end.
        index.sort_by_key(|(seq, _, _)| seq.unwrap_or(u64::MAX));
    }
    let first = index.first().and_then(|(seq, _, _)| *seq);
    verifier.begin(if first == Some(1) {
        Start::Genesis
    } else {
        Start::Unknown
    });
    let source = path.display().to_string();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut at = 0u64;
    for (_, offset, number) in index {
        if offset != at {
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
        }
        line.clear();
        at = offset + file.read_line(&mut line).map_err(io)? as u64;
        match serde_json::from_str::<StoredEvent>(&line) {
            Ok(e) => verifier.event(e.seq, e.hash, &e.event),
            Err(e) => {
                let value: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                let field = |name: &str| value.as_ref().and_then(|v| v.get(name).cloned());
                verifier.unreadable(
                    field("seq").and_then(|v| v.as_u64()),
                    field("id").and_then(|v| serde_json::from_value(v).ok()),
                    field("hash").and_then(|v| serde_json::from_value(v).ok()),
                    format!("{source}, line {number}: not a stored event ({e})"),
                );
            }
        }
    }
    Ok(())
}

/// Why a store could not be verified (or a checkpoint taken). A verification that finds
/// problems is not an error: its report says so.
#[derive(Debug)]
#[non_exhaustive]
pub enum VerifyError {
    /// The store failed.
    Store(StoreError),
    /// An archive could not be read.
    Archive {
        /// The archive.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A CSV archive: it holds no positions or hashes.
    CsvArchive(PathBuf),
    /// `audit checkpoint` refused: the chain is not intact since the last checkpoint.
    NotIntact(Box<VerifyReport>),
    /// The checkpoint could not be signed.
    Checkpoint(CheckpointError),
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        VerifyError::Store(e)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Store(e) => e.fmt(f),
            VerifyError::Archive { path, .. } => {
                write!(f, "cannot read the archive {}", path.display())
            }
            VerifyError::CsvArchive(path) => write!(
                f,
                "{} is a CSV archive, which holds no log positions or hashes: verify a JSON-lines archive",
                path.display()
            ),
            VerifyError::NotIntact(report) => {
                let first = report
                    .first_problem()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                write!(
                    f,
                    "refusing to sign a checkpoint: the log is not intact since the last checkpoint: {first}"
                )
            }
            VerifyError::Checkpoint(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyError::Store(e) => Some(e),
            VerifyError::Archive { source, .. } => Some(source),
            VerifyError::Checkpoint(e) => Some(e),
            _ => None,
        }
    }
}
