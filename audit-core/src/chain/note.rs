//! Signed notes (<https://c2sp.org/signed-note>): a text and one or more signature lines.
//!
//! ```text
//! <text: one or more lines, each ending in a newline>
//! <blank line>
//! — <key name> <base64(4-byte key id ‖ Ed25519 signature of the text)>
//! ```
//!
//! The text is everything up to and including the newline before the last blank line. A
//! note must be UTF-8 without control characters other than newline. When opening a note,
//! signatures by keys the verifier does not know are ignored (key rotation, cosigners); a
//! signature by a known key that does not verify rejects the note; a note with no verified
//! signature is rejected. This follows the reference implementation, Go's
//! `golang.org/x/mod/sumdb/note`, and reproduces its signatures byte for byte.
//!
//! ```
//! use audit_core::chain::{SigningKey, note};
//!
//! let key = SigningKey::generate("example.com/log").unwrap();
//! let signed = note::sign("hello\n", &[&key]).unwrap();
//! let opened = note::open(&signed, &[key.verifier()]).unwrap();
//! assert_eq!(opened.text, "hello\n");
//! assert_eq!(opened.verified_by, ["example.com/log"]);
//!
//! let forged = signed.replace("hello", "howdy");
//! assert!(note::open(&forged, &[key.verifier()]).is_err());
//! ```

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::keys::{SigningKey, VerifierKey, is_valid_key_name};
use crate::query::echo::bare as shown;

/// The longest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// The most signature lines accepted (the specification asks verifiers to accept 16).
pub const MAX_SIGNATURES: usize = 100;

const SIGNATURE_PREFIX: &str = "— ";

/// A note whose signatures were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The names of the keys whose signatures verified.
    pub verified_by: Vec<String>,
}

/// Signs `text` (which must end in a newline and hold no control characters other than
/// newlines) with each key.
pub fn sign(text: &str, keys: &[&SigningKey]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the text must end with a newline".into(),
        ));
    }
    check_characters(text)?;
    if keys.is_empty() {
        return Err(NoteError::Malformed("a note needs a signing key".into()));
    }
    let mut out = String::with_capacity(text.len() + 1 + keys.len() * 110);
    out.push_str(text);
    out.push('\n');
    for key in keys {
        let mut signature = Vec::with_capacity(68);
        signature.extend_from_slice(&key.key_id().to_be_bytes());
        signature.extend_from_slice(&key.sign(text.as_bytes()));
        out.push_str(SIGNATURE_PREFIX);
        out.push_str(key.name());
        out.push(' ');
        out.push_str(&STANDARD.encode(signature));
        out.push('\n');
    }
    Ok(out)
}

/// Checks `note`'s signatures against `keys` and returns its text.
pub fn open(note: &str, keys: &[VerifierKey]) -> Result<OpenedNote, NoteError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::Malformed(format!(
            "it is {} bytes long; the limit is {MAX_NOTE_LEN}",
            note.len()
        )));
    }
    check_characters(note)?;
    let split = note.rfind("\n\n").ok_or_else(|| {
        NoteError::Malformed(
            "there is no blank line between the text and the signature lines".into(),
        )
    })?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the signature lines must follow the blank line, each ending with a newline".into(),
        ));
    }
    let mut verified_by = Vec::new();
    let mut seen = HashSet::new();
    let mut unknown = Vec::new();
    for (i, line) in signatures.lines().enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(NoteError::Malformed(format!(
                "it has more than {MAX_SIGNATURES} signature lines"
            )));
        }
        let bad_line = || {
            NoteError::Malformed(format!(
                "signature line {} is not `— <key name> <base64 signature>`: `{}`",
                i + 1,
                shown(line)
            ))
        };
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(bad_line)?;
        let (name, encoded) = rest.split_once(' ').ok_or_else(bad_line)?;
        if !is_valid_key_name(name) || encoded.is_empty() {
            return Err(bad_line());
        }
        let raw = STANDARD.decode(encoded).map_err(|_| bad_line())?;
        if raw.len() < 5 {
            return Err(bad_line());
        }
        let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut known = keys
            .iter()
            .filter(|k| k.name() == name && k.key_id() == key_id);
        let Some(key) = known.next() else {
            unknown.push(format!("{name}+{key_id:08x}"));
            continue;
        };
        if known.any(|other| other != key) {
            return Err(NoteError::AmbiguousKey(format!("{name}+{key_id:08x}")));
        }
        if !seen.insert((name, key_id)) {
            continue;
        }
        if !key.verify(text.as_bytes(), &raw[4..]) {
            return Err(NoteError::BadSignature(format!("{name}+{key_id:08x}")));
        }
        verified_by.push(name.to_owned());
    }
    if verified_by.is_empty() {
        return Err(NoteError::NotSignedByAKnownKey {
            signed_by: unknown,
            known: keys
                .iter()
                .map(|k| format!("{}+{:08x}", k.name(), k.key_id()))
                .collect(),
        });
    }
    Ok(OpenedNote {
        text: text.to_owned(),
        verified_by,
    })
}

fn check_characters(text: &str) -> Result<(), NoteError> {
    match text
        .char_indices()
        .find(|&(_, c)| (c as u32) < 0x20 && c != '\n')
    {
        Some((at, c)) => Err(NoteError::Malformed(format!(
            "it holds the control character {:?} at byte {at}; notes allow only newlines",
            c
        ))),
        None => Ok(()),
    }
}

/// Why a note could not be signed or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is not in the signed-note format.
    Malformed(String),
    /// A signature by a known key (`name+keyid`) does not verify: the text was changed.
    BadSignature(String),
    /// No signature is by one of the given keys.
    NotSignedByAKnownKey {
        /// The `name+keyid` of each signature found.
        signed_by: Vec<String>,
        /// The `name+keyid` of each key given.
        known: Vec<String>,
    },
    /// Two different keys given share a name and key id.
    AmbiguousKey(String),
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::Malformed(why) => write!(f, "malformed signed note: {why}"),
            NoteError::BadSignature(key) => write!(
                f,
                "the signature by {key} does not verify: the note was changed after it was signed"
            ),
            NoteError::NotSignedByAKnownKey { signed_by, known } => {
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.join(", ")
                    }
                };
                write!(
                    f,
                    "the note is not signed by any of the given public keys (signed by: {}; keys given: {}): pass the public key of the key that signed it",
                    list(signed_by),
                    list(known)
                )
            }
            NoteError::AmbiguousKey(key) => write!(
                f,
                "two different public keys are named {key}: keep one of them"
            ),
        }
    }
}

impl std::error::Error for NoteError {}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_byte_for_byte_as_the_reference_implementation() {
        let key = SigningKey::parse(GO_SKEY).unwrap();
        let signed = sign(GO_TEXT, &[&key]).unwrap();
        assert_eq!(signed, format!("{GO_TEXT}\n{GO_SIG}"));
        let opened = open(&signed, &[key.verifier()]).unwrap();
        assert_eq!(opened.text, GO_TEXT);
    }

    #[test]
    fn opens_the_c2sp_example() {
        let vkey: VerifierKey =
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
                .parse()
                .unwrap();
        let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let opened = open(note, &[vkey]).unwrap();
        assert_eq!(opened.text, "This is an example message.\n");
    }

    #[test]
    fn unknown_signatures_are_ignored_and_bad_known_ones_reject() {
        let ours = SigningKey::generate("log").unwrap();
        let theirs = SigningKey::generate("witness").unwrap();
        let both = sign("a\nb\n", &[&theirs, &ours]).unwrap();
        let opened = open(&both, &[ours.verifier()]).unwrap();
        assert_eq!(opened.verified_by, ["log"]);
        let err = open(&both, &[SigningKey::generate("x").unwrap().verifier()]).unwrap_err();
        assert!(matches!(err, NoteError::NotSignedByAKnownKey { .. }));
        assert!(err.to_string().contains("witness+"), "{err}");
        // Tampered text.
        let tampered = both.replacen("a\n", "c\n", 1);
        let err = open(&tampered, &[ours.verifier()]).unwrap_err();
        assert!(matches!(err, NoteError::BadSignature(_)), "{err}");
    }

    #[test]
    fn malformed_notes_are_refused_with_the_reason() {
        let key = SigningKey::generate("log").unwrap();
        let good = sign("text\n", &[&key]).unwrap();
        let v = [key.verifier()];
        let cases: &[(&str, &str)] = &[
            ("text\n— log AAAA\n", "no blank line"),
            ("text\n\n", "signature lines must follow"),
            (&good.replace("— ", "- "), "is not `— <key name>"),
            (good.trim_end(), "each ending with a newline"),
            (&good.replace("text", "te\u{1b}xt"), "control character"),
            (&good.replace(" log ", " lo+g "), "is not `— <key name>"),
            (
                &good.replace("\n— log ", "\n— log !"),
                "is not `— <key name>",
            ),
            ("t\n\n— log AAAA\n", "is not `— <key name>"),
        ];
        for (note, expected) in cases {
            let err = open(note, &v).unwrap_err();
            assert!(err.to_string().contains(expected), "{note:?}: {err}");
        }
        let huge = "x".repeat(MAX_NOTE_LEN + 1);
        assert!(open(&huge, &v).unwrap_err().to_string().contains("limit"));
        let many = format!("t\n\n{}", "— k AAAAAAA=\n".repeat(MAX_SIGNATURES + 1));
        assert!(
            open(&many, &v)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        assert!(sign("no newline", &[&key]).is_err());
        assert!(sign("bell\u{7}\n", &[&key]).is_err());
    }

    #[test]
    fn the_same_key_twice_is_ambiguous_only_if_the_keys_differ() {
        let key = SigningKey::generate("log").unwrap();
        let signed = sign("t\n", &[&key]).unwrap();
        assert!(open(&signed, &[key.verifier(), key.verifier()]).is_ok());
    }
}
