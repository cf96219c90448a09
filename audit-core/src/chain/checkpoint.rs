//! Checkpoints: the head of the log, signed (<https://c2sp.org/tlog-checkpoint>).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};

use super::hash::{ChainHash, ChainHead};
use super::keys::{SigningKey, VerifierKey};
use super::note::{self, NoteError};
use crate::query::echo::bare as shown;

/// The extension line that carries the checkpoint's time.
const TIME_PREFIX: &str = "time ";

/// A checkpoint: a log's head at a time.
///
/// A checkpoint is a [signed note](super::note) whose text is:
///
/// ```text
/// <origin>                        the log's name; also the signing key's name
/// <size>                          the head's log position (events ever appended), decimal
/// <root hash>                     the chain hash at that position, standard base64
/// time <RFC 3339 UTC time>        when the checkpoint was taken (an extension line)
///
/// — <origin> <base64(key id ‖ Ed25519 signature)>
/// ```
///
/// The format is C2SP's; the root hash is this log's chain hash at `size`
/// ([`ChainHash`]) rather than an RFC 6962 Merkle tree root, so tools
/// that read C2SP checkpoints can check the signature, but proving that one checkpoint
/// extends another is done by `audit verify`, which recomputes the chain between them.
///
/// A checkpoint of an unchanged head is still worth taking: like CloudTrail's empty digest
/// files, it asserts that nothing was appended in the meantime.
///
/// ```
/// use audit_core::chain::{Checkpoint, ChainHead, SigningKey};
///
/// let key = SigningKey::generate("audit.example.com/audit").unwrap();
/// let time = "2024-05-01T12:00:00Z".parse().unwrap();
/// let checkpoint = Checkpoint::new(key.name(), ChainHead::GENESIS, time);
/// let note = checkpoint.sign(&key).unwrap();
/// assert!(note.starts_with("audit.example.com/audit\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2024-05-01T12:00:00Z\n\n— audit.example.com/audit "));
/// assert_eq!(Checkpoint::open(&note, &[key.verifier()]).unwrap(), checkpoint);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name, e.g. `audit.example.com/audit`.
    pub origin: String,
    /// The head: `seq` is the checkpoint's size, `hash` its root hash.
    pub head: ChainHead,
    /// When it was taken (the `time` extension line), if the checkpoint says.
    pub time: Option<DateTime<Utc>>,
    /// Other extension lines, kept as they are.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint of `head` for the log `origin`, taken at `time`.
    pub fn new(origin: impl Into<String>, head: ChainHead, time: DateTime<Utc>) -> Self {
        Checkpoint {
            origin: origin.into(),
            head,
            time: Some(time),
            extensions: Vec::new(),
        }
    }

    /// The note text that is signed.
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.head.seq,
            STANDARD.encode(self.head.hash.as_bytes())
        );
        if let Some(time) = self.time {
            text.push_str(TIME_PREFIX);
            text.push_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            text.push('\n');
        }
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The signed checkpoint. `key` must be named as the origin.
    pub fn sign(&self, key: &SigningKey) -> Result<String, CheckpointError> {
        if key.name() != self.origin {
            return Err(CheckpointError::WrongKey {
                origin: shown(&self.origin),
                key: key.name().to_owned(),
            });
        }
        // Round-trip through the parser so that no checkpoint is signed that could not be read.
        let text = self.text();
        parse_text(&text)?;
        Ok(note::sign(&text, &[key])?)
    }

    /// Checks a signed checkpoint against the public keys and reads it. The checkpoint must
    /// be signed by a key named as its origin.
    pub fn open(signed: &str, keys: &[VerifierKey]) -> Result<Self, CheckpointError> {
        let opened = note::open(signed, keys)?;
        let checkpoint = parse_text(&opened.text)?;
        if !opened.verified_by.contains(&checkpoint.origin) {
            return Err(CheckpointError::WrongKey {
                origin: shown(&checkpoint.origin),
                key: opened.verified_by.join(", "),
            });
        }
        Ok(checkpoint)
    }
}

/// Reads a checkpoint's note text (already verified).
fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
    let malformed = |why: String| CheckpointError::Malformed(why);
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| malformed("the text does not end with a newline".into()))?;
    let mut lines = body.split('\n');
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(malformed(
            "it needs three lines: origin, size and root hash".into(),
        ));
    };
    if origin.is_empty() {
        return Err(malformed("the origin line is empty".into()));
    }
    let size_ok = size == "0"
        || (!size.is_empty() && !size.starts_with('0') && size.bytes().all(|b| b.is_ascii_digit()));
    let seq = size
        .parse::<u64>()
        .ok()
        .filter(|_| size_ok)
        .ok_or_else(|| {
            malformed(format!(
                "the size line `{}` is not a decimal number without leading zeros",
                shown(size)
            ))
        })?;
    let hash = root_hash(root)?;
    let mut checkpoint = Checkpoint {
        origin: origin.to_owned(),
        head: ChainHead { seq, hash },
        time: None,
        extensions: Vec::new(),
    };
    for line in lines {
        if line.is_empty() {
            return Err(malformed("an extension line is empty".into()));
        }
        match line.strip_prefix(TIME_PREFIX) {
            Some(time) => {
                if checkpoint.time.is_some() {
                    return Err(malformed("it has two time lines".into()));
                }
                let time = DateTime::parse_from_rfc3339(time).map_err(|_| {
                    malformed(format!(
                        "the time line `{}` is not an RFC 3339 time",
                        shown(line)
                    ))
                })?;
                checkpoint.time = Some(time.with_timezone(&Utc));
            }
            None => checkpoint.extensions.push(line.to_owned()),
        }
    }
    Ok(checkpoint)
}

/// Reads the root hash line: standard base64 of exactly 32 bytes.
fn root_hash(line: &str) -> Result<ChainHash, CheckpointError> {
    let bad = |why: &str| {
        CheckpointError::Malformed(format!("the root hash line `{}` {why}", shown(line)))
    };
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| bad("is not standard base64"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(&format!("holds {} bytes, not 32", b.len())))?;
    Ok(ChainHash::from_bytes(bytes))
}

/// Why a checkpoint could not be signed or read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note is malformed or its signatures do not verify.
    Note(NoteError),
    /// The note's text is not a checkpoint.
    Malformed(String),
    /// The checkpoint's origin and the key's name differ.
    WrongKey {
        /// The checkpoint's origin (shortened, escaped).
        origin: String,
        /// The key name(s).
        key: String,
    },
}

impl From<NoteError> for CheckpointError {
    fn from(e: NoteError) -> Self {
        CheckpointError::Note(e)
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Note(e) => write!(f, "checkpoint: {e}"),
            CheckpointError::Malformed(why) => write!(f, "malformed checkpoint: {why}"),
            CheckpointError::WrongKey { origin, key } => write!(
                f,
                "the checkpoint is for the log `{origin}` but the key is `{key}`: a log's checkpoints are signed with a key named as the log"
            ),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Note(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64) -> ChainHead {
        ChainHead {
            seq,
            hash: ChainHash::from_bytes([seq as u8; 32]),
        }
    }

    #[test]
    fn signed_checkpoints_open_to_what_was_signed() {
        let key = SigningKey::generate("example.com/audit").unwrap();
        let time = "2024-05-01T12:00:00.123456Z".parse().unwrap();
        let mut cp = Checkpoint::new("example.com/audit", head(20852163), time);
        cp.extensions.push("note from ops".into());
        let signed = cp.sign(&key).unwrap();
        assert_eq!(Checkpoint::open(&signed, &[key.verifier()]).unwrap(), cp);
        assert!(signed.starts_with("example.com/audit\n20852163\n"));
        assert!(
            signed.contains(
                "\ntime 2024-05-01T12:00:00.123456Z\nnote from ops\n\n— example.com/audit "
            )
        );
    }

    #[test]
    fn a_checkpoint_must_be_signed_by_its_own_log() {
        let log = SigningKey::generate("a.example/audit").unwrap();
        let other = SigningKey::generate("b.example/audit").unwrap();
        let cp = Checkpoint::new("a.example/audit", head(1), Utc::now());
        assert!(matches!(
            cp.sign(&other),
            Err(CheckpointError::WrongKey { .. })
        ));
        // A note whose text names log A, signed by B's key.
        let forged = note::sign(&cp.text(), &[&other]).unwrap();
        let err = Checkpoint::open(&forged, &[log.verifier(), other.verifier()]).unwrap_err();
        assert!(err.to_string().contains("a.example/audit"), "{err}");
    }

    #[test]
    fn malformed_checkpoint_texts_are_refused_with_the_reason() {
        let key = SigningKey::generate("log").unwrap();
        let root = STANDARD.encode(ChainHash::GENESIS.as_bytes());
        let cases = [
            ("log\n1\n".to_owned(), "three lines"),
            (format!("\n1\n{root}\n"), "origin line is empty"),
            (format!("log\n01\n{root}\n"), "leading zeros"),
            (format!("log\n-1\n{root}\n"), "size line"),
            (format!("log\n99999999999999999999\n{root}\n"), "size line"),
            ("log\n1\nAAAA\n".to_owned(), "holds 3 bytes, not 32"),
            ("log\n1\nnot base64!\n".to_owned(), "is not standard base64"),
            (format!("log\n1\n{root}\ntime yesterday\n"), "RFC 3339"),
            (
                format!("log\n1\n{root}\ntime 2024-01-01T00:00:00Z\ntime 2024-01-01T00:00:00Z\n"),
                "two time lines",
            ),
        ];
        for (text, expected) in cases {
            let signed = note::sign(&text, &[&key]).unwrap();
            let err = Checkpoint::open(&signed, &[key.verifier()]).unwrap_err();
            assert!(err.to_string().contains(expected), "{text:?}: {err}");
        }
        // A note's text may hold an empty line; a checkpoint's may not.
        let text = format!("log\n1\n{root}\n\nx\n");
        let signed = note::sign(&text, &[&key]).unwrap();
        let err = Checkpoint::open(&signed, &[key.verifier()]).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn a_changed_size_or_root_breaks_the_signature() {
        let key = SigningKey::generate("log").unwrap();
        let signed = Checkpoint::new("log", head(5), Utc::now())
            .sign(&key)
            .unwrap();
        let truncated = signed.replacen("\n5\n", "\n4\n", 1);
        assert!(matches!(
            Checkpoint::open(&truncated, &[key.verifier()]),
            Err(CheckpointError::Note(NoteError::BadSignature(_)))
        ));
    }
}
