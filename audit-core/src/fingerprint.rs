//! Secret fingerprints: a keyed hash of a secret value, so that "was it set to X?" can be
//! answered without the log holding X (feature `fingerprint`).
//!
//! ```text
//! HMAC-SHA256(key, "audit-secret-v1" 0x00 ‖ resource_type 0x00 ‖ field 0x00 ‖ encoding of the value)
//! printed as  hmac-sha256:<key id>:<base64url of the 32-byte MAC, no padding>
//! ```
//!
//! * The resource type and the field name are part of the input, so equal values in two
//!   fields (or two resource types) give unrelated fingerprints.
//! * The value goes in through the [canonical value encoding](crate::canonical::value),
//!   streamed straight into the HMAC state: no serialized copy of the secret is made (the
//!   only buffer, for sorting the entries of a map-like secret, is wiped), and a typed secret
//!   fingerprints as the JSON value it serializes to. A `String` secret is its text.
//! * The key id is part of the fingerprint. A [`Keyring`] holds the current key and old ones,
//!   so fingerprints made before a key rotation can still be checked; checks compare in
//!   constant time.
//! * The key never goes into the store, an export or a checkpoint: keep it in a file readable
//!   by the service only (or a secrets manager), not next to the database. Anyone with the key
//!   and the log can forge fingerprints and test guesses.
//!
//! # Dictionary attacks: opt low-entropy secrets out
//!
//! A fingerprint is a test for a guess: whoever has the key (an investigator, or anyone who
//! stole it) fingerprints a candidate and compares. For a random token, guessing is hopeless.
//! For a 4-digit PIN it is 10,000 HMACs, a few milliseconds: the fingerprint then *is* the
//! PIN. The same holds for short codes, security answers, booleans, enums and anything a
//! person picks from a small set. Vault's users met this with its audit-log HMACs
//! (hashicorp/vault#1763). Opt such fields out with `#[audit(secret, no_fingerprint)]`: the
//! diff then says only that the value changed. Equal fingerprints also show when a secret is
//! set back to an earlier value.
//!
//! ```
//! use audit_core::fingerprint::{Fingerprint, FingerprintKey, Keyring};
//!
//! let key = FingerprintKey::new("k1", &[7; 32]).unwrap();
//! let fp = key.fingerprint("workspace", "agent_token", "s3cr3t").unwrap();
//! assert!(fp.to_string().starts_with("hmac-sha256:k1:"));
//!
//! // Other fields or values give other fingerprints.
//! assert_ne!(fp, key.fingerprint("workspace", "owner_token", "s3cr3t").unwrap());
//!
//! // After a rotation, the old key still checks old fingerprints.
//! let keyring = Keyring::new(FingerprintKey::new("k2", &[8; 32]).unwrap())
//!     .with_old_key(key)
//!     .unwrap();
//! let stored: Fingerprint = fp.to_string().parse().unwrap();
//! assert!(keyring.matches(&stored, "workspace", "agent_token", "s3cr3t").unwrap());
//! assert!(!keyring.matches(&stored, "workspace", "agent_token", "guess").unwrap());
//! ```

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::canonical::value::{self, EncodeError, Sink};
use crate::key_file::{self, Access, KeyFileError};

/// The domain separation tag every fingerprint's input starts with.
pub const DOMAIN: &[u8] = b"audit-secret-v1\0";

/// The prefix of a printed fingerprint.
const FINGERPRINT_PREFIX: &str = "hmac-sha256:";

/// The prefix of a key line in a key file.
const KEY_PREFIX: &str = "hmac-sha256-key:";

type HmacSha256 = Hmac<Sha256>;

/// A key id: 1 to 32 ASCII letters, digits, `_`, `-` or `.`.
fn check_key_id(id: &str) -> Result<(), FingerprintError> {
    let valid = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(FingerprintError::InvalidKeyId(crate::query::echo::bare(id)))
    }
}

/// An HMAC key with its id. Its `Debug` shows the id only; the key bytes are wiped on drop.
#[derive(Clone)]
pub struct FingerprintKey {
    id: String,
    key: Zeroizing<Vec<u8>>,
}

impl FingerprintKey {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 32;

    /// A key from its bytes (at least [`MIN_LEN`](Self::MIN_LEN)).
    pub fn new(id: &str, key: &[u8]) -> Result<Self, FingerprintError> {
        check_key_id(id)?;
        if key.len() < Self::MIN_LEN {
            return Err(FingerprintError::KeyTooShort(key.len()));
        }
        Ok(FingerprintKey {
            id: id.to_owned(),
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// A new random 32-byte key.
    pub fn generate(id: &str) -> Result<Self, FingerprintError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key).map_err(|e| FingerprintError::Random(e.to_string()))?;
        Self::new(id, &*key)
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The fingerprint of `value`, a secret of field `field` of resource type
    /// `resource_type`.
    pub fn fingerprint<T: Serialize + ?Sized>(
        &self,
        resource_type: &str,
        field: &str,
        value: &T,
    ) -> Result<Fingerprint, FingerprintError> {
        let mac = self.mac(resource_type, field, value)?;
        Ok(Fingerprint {
            key_id: self.id.clone(),
            mac: mac.finalize().into_bytes().into(),
        })
    }

    /// The HMAC state after the whole input.
    fn mac<T: Serialize + ?Sized>(
        &self,
        resource_type: &str,
        field: &str,
        value: &T,
    ) -> Result<HmacSha256, FingerprintError> {
        for name in [resource_type, field] {
            if name.contains('\0') {
                return Err(FingerprintError::NulInName);
            }
        }
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .map_err(|_| FingerprintError::KeyTooShort(self.key.len()))?;
        mac.update(DOMAIN);
        mac.update(resource_type.as_bytes());
        mac.update(b"\0");
        mac.update(field.as_bytes());
        mac.update(b"\0");
        value::encode(value, MacSink(&mut mac)).map_err(FingerprintError::Encode)?;
        Ok(mac)
    }

    /// The key file line: `hmac-sha256-key:<id>:<base64url key>`.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_PREFIX}{}:{}",
            self.id,
            Zeroizing::new(URL_SAFE_NO_PAD.encode(&*self.key)).as_str()
        ))
    }

    /// Writes a new key file holding this key, readable by its owner only (mode 0600 on
    /// Unix). Refuses to replace an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), FingerprintError> {
        key_file::write_new(path, Access::Private, &self.to_text()).map_err(FingerprintError::File)
    }

    /// Parses a key file line. The error never quotes the key.
    pub fn parse(line: &str) -> Result<Self, FingerprintError> {
        let malformed = || {
            FingerprintError::MalformedKey(
                "a key line is hmac-sha256-key:<key id>:<base64url key>, as `audit keygen --fingerprint` writes it",
            )
        };
        let rest = line.trim().strip_prefix(KEY_PREFIX).ok_or_else(malformed)?;
        let (id, key) = rest.split_once(':').ok_or_else(malformed)?;
        check_key_id(id)?;
        let key = Zeroizing::new(URL_SAFE_NO_PAD.decode(key).map_err(|_| malformed())?);
        Self::new(id, &key)
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerprintKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Feeds encoded bytes into an HMAC.
struct MacSink<'a>(&'a mut HmacSha256);

impl Sink for MacSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The current key and the old ones kept for checking.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// The current key first.
    keys: Vec<FingerprintKey>,
}

impl Keyring {
    /// A keyring whose current key is `current`.
    pub fn new(current: FingerprintKey) -> Self {
        Keyring {
            keys: vec![current],
        }
    }

    /// Adds an old key, kept to check fingerprints made with it. Ids must be unique.
    pub fn with_old_key(mut self, key: FingerprintKey) -> Result<Self, FingerprintError> {
        if self.key(key.id()).is_some() {
            return Err(FingerprintError::DuplicateKeyId(key.id.clone()));
        }
        self.keys.push(key);
        Ok(self)
    }

    /// The key new fingerprints are made with.
    pub fn current(&self) -> &FingerprintKey {
        &self.keys[0]
    }

    /// Every key, the current one first.
    pub fn keys(&self) -> &[FingerprintKey] {
        &self.keys
    }

    /// The key with this id.
    pub fn key(&self, id: &str) -> Option<&FingerprintKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Fingerprints with the current key.
    pub fn fingerprint<T: Serialize + ?Sized>(
        &self,
        resource_type: &str,
        field: &str,
        value: &T,
    ) -> Result<Fingerprint, FingerprintError> {
        self.current().fingerprint(resource_type, field, value)
    }

    /// Whether `fingerprint` is the fingerprint of `value` (with the key it names),
    /// compared in constant time. An id not in the keyring is an error, not a "no".
    pub fn matches<T: Serialize + ?Sized>(
        &self,
        fingerprint: &Fingerprint,
        resource_type: &str,
        field: &str,
        value: &T,
    ) -> Result<bool, FingerprintError> {
        let key = self
            .key(&fingerprint.key_id)
            .ok_or_else(|| FingerprintError::UnknownKey(fingerprint.key_id.clone()))?;
        let mac = key.mac(resource_type, field, value)?;
        Ok(mac.verify_slice(&fingerprint.mac).is_ok())
    }

    /// Parses a key file: one key line per key, the current key first; blank lines and
    /// lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, FingerprintError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let current = FingerprintKey::parse(
            lines
                .next()
                .ok_or(FingerprintError::MalformedKey("the key file holds no key"))?,
        )?;
        lines.try_fold(Keyring::new(current), |ring, line| {
            ring.with_old_key(FingerprintKey::parse(line)?)
        })
    }

    /// Reads a key file. On Unix, refuses a file that users other than its owner can
    /// access.
    pub fn read_file(path: &Path) -> Result<Self, FingerprintError> {
        let text = key_file::read(path, Access::Private).map_err(FingerprintError::File)?;
        Self::parse(&text)
    }
}

/// Drops a JSON value that held a secret, wiping its strings and object keys first. (Numbers
/// and booleans cannot be wiped: `serde_json` keeps them in plain fields.)
pub fn wipe_json(value: serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(mut s) => s.zeroize(),
        serde_json::Value::Array(items) => items.into_iter().for_each(wipe_json),
        serde_json::Value::Object(map) => {
            for (mut key, value) in map {
                key.zeroize();
                wipe_json(value);
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
}

/// A fingerprint: `hmac-sha256:<key id>:<base64url MAC>`. Serializes as that text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    key_id: String,
    mac: [u8; 32],
}

impl Fingerprint {
    /// The id of the key it was made with.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{FINGERPRINT_PREFIX}{}:{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(self.mac)
        )
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(text: &str) -> Result<Self, FingerprintError> {
        let malformed = || FingerprintError::MalformedFingerprint(crate::query::echo::bare(text));
        let rest = text
            .strip_prefix(FINGERPRINT_PREFIX)
            .ok_or_else(malformed)?;
        let (key_id, mac) = rest.split_once(':').ok_or_else(malformed)?;
        check_key_id(key_id)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| malformed())?;
        let mac: [u8; 32] = mac.try_into().map_err(|_| malformed())?;
        Ok(Fingerprint {
            key_id: key_id.to_owned(),
            mac,
        })
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a fingerprint could not be made or read. Never quotes a secret or a key.
#[derive(Debug)]
#[non_exhaustive]
pub enum FingerprintError {
    /// A key id that is not 1 to 32 letters, digits, `_`, `-` or `.`.
    InvalidKeyId(String),
    /// A key shorter than [`FingerprintKey::MIN_LEN`] bytes.
    KeyTooShort(usize),
    /// A key line that is not `hmac-sha256-key:<id>:<base64url key>`.
    MalformedKey(&'static str),
    /// Text that is not `hmac-sha256:<id>:<base64url MAC>`.
    MalformedFingerprint(String),
    /// A fingerprint made with a key the keyring does not hold.
    UnknownKey(String),
    /// Two keys with one id.
    DuplicateKeyId(String),
    /// A resource type or field name holding a NUL character (it would make the input
    /// ambiguous).
    NulInName,
    /// The secret's type has no JSON form.
    Encode(EncodeError),
    /// The system's random number generator failed.
    Random(String),
    /// Reading or writing a key file failed.
    File(KeyFileError),
}

impl fmt::Display for FingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FingerprintError::InvalidKeyId(id) => write!(
                f,
                "invalid fingerprint key id `{id}`: use 1 to 32 letters, digits, `_`, `-` or `.`, such as k1"
            ),
            FingerprintError::KeyTooShort(len) => write!(
                f,
                "a fingerprint key of {len} bytes is too short: use at least {} random bytes (`audit keygen --fingerprint` makes one)",
                FingerprintKey::MIN_LEN
            ),
            FingerprintError::MalformedKey(why) => write!(f, "malformed fingerprint key: {why}"),
            FingerprintError::MalformedFingerprint(text) => write!(
                f,
                "`{text}` is not a fingerprint: expected hmac-sha256:<key id>:<43 base64url characters>"
            ),
            FingerprintError::UnknownKey(id) => write!(
                f,
                "the fingerprint was made with key `{id}`, which is not in the key file: add the old key to check it"
            ),
            FingerprintError::DuplicateKeyId(id) => {
                write!(
                    f,
                    "two fingerprint keys have the id `{id}`: ids must be unique"
                )
            }
            FingerprintError::NulInName => {
                f.write_str("a resource type or field name holds a NUL character")
            }
            FingerprintError::Encode(e) => write!(f, "cannot fingerprint the value: {e}"),
            FingerprintError::Random(e) => {
                write!(f, "the system random number generator failed: {e}")
            }
            FingerprintError::File(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FingerprintError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FingerprintError::Encode(e) => Some(e),
            FingerprintError::File(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn key() -> FingerprintKey {
        FingerprintKey::new("k1", &[0x42; 32]).unwrap()
    }

    #[test]
    fn the_input_is_the_documented_hmac() {
        // Recompute by hand: HMAC over the domain, the names and the encoded string.
        let mut expected = <HmacSha256 as KeyInit>::new_from_slice(&[0x42; 32]).unwrap();
        expected.update(b"audit-secret-v1\0workspace\0agent_token\0s");
        expected.update(&6u64.to_be_bytes());
        expected.update(b"s3cr3t");
        let expected: [u8; 32] = expected.finalize().into_bytes().into();
        let fp = key()
            .fingerprint("workspace", "agent_token", "s3cr3t")
            .unwrap();
        assert_eq!(fp.mac, expected);
        assert_eq!(
            fp.to_string(),
            format!("hmac-sha256:k1:{}", URL_SAFE_NO_PAD.encode(expected))
        );
        assert_eq!(fp.to_string().len(), "hmac-sha256:k1:".len() + 43);
    }

    #[test]
    fn domain_separated_by_resource_type_and_field() {
        let k = key();
        let base = k.fingerprint("workspace", "token", "v").unwrap();
        assert_ne!(base, k.fingerprint("workspace", "token2", "v").unwrap());
        assert_ne!(base, k.fingerprint("template", "token", "v").unwrap());
        // The separator keeps "ab"+"c" apart from "a"+"bc".
        assert_ne!(
            k.fingerprint("ab", "c", "v").unwrap(),
            k.fingerprint("a", "bc", "v").unwrap()
        );
        assert!(matches!(
            k.fingerprint("a\0b", "c", "v"),
            Err(FingerprintError::NulInName)
        ));
    }

    #[test]
    fn typed_secrets_fingerprint_as_their_json() {
        #[derive(Serialize)]
        struct Credentials {
            user: &'static str,
            scopes: Vec<&'static str>,
        }
        let k = key();
        let typed = Credentials {
            user: "svc",
            scopes: vec!["read"],
        };
        let json = serde_json::json!({"scopes": ["read"], "user": "svc"});
        assert_eq!(
            k.fingerprint("r", "f", &typed).unwrap(),
            k.fingerprint("r", "f", &json).unwrap()
        );
        // Map order does not matter.
        let h: HashMap<_, _> = (0..20).map(|i| (i.to_string(), i)).collect();
        let b: BTreeMap<_, _> = h.clone().into_iter().collect();
        assert_eq!(
            k.fingerprint("r", "f", &h).unwrap(),
            k.fingerprint("r", "f", &b).unwrap()
        );
        // A string and a number differ even when they read alike.
        assert_ne!(
            k.fingerprint("r", "f", "1234").unwrap(),
            k.fingerprint("r", "f", &1234).unwrap()
        );
    }

    #[test]
    fn rotation_keeps_old_fingerprints_checkable() {
        let old = key();
        let fp = old.fingerprint("r", "f", "value").unwrap();
        let ring = Keyring::new(FingerprintKey::new("k2", &[1; 32]).unwrap())
            .with_old_key(old.clone())
            .unwrap();
        assert!(ring.matches(&fp, "r", "f", "value").unwrap());
        assert!(!ring.matches(&fp, "r", "f", "valuf").unwrap());
        assert!(!ring.matches(&fp, "r", "g", "value").unwrap());
        assert_eq!(ring.fingerprint("r", "f", "value").unwrap().key_id(), "k2");
        let alone = Keyring::new(FingerprintKey::new("k2", &[1; 32]).unwrap());
        let err = alone.matches(&fp, "r", "f", "value").unwrap_err();
        assert!(err.to_string().contains("`k1`"), "{err}");
        assert!(matches!(
            ring.with_old_key(old),
            Err(FingerprintError::DuplicateKeyId(_))
        ));
    }

    #[test]
    fn key_files_round_trip_and_never_echo_the_key() {
        let a = FingerprintKey::generate("k2").unwrap();
        let b = key();
        let text = format!("# current\n{}\n\n# old\n{}\n", *a.to_text(), *b.to_text());
        let ring = Keyring::parse(&text).unwrap();
        assert_eq!(ring.current().id(), "k2");
        assert_eq!(ring.keys().len(), 2);
        assert_eq!(
            ring.fingerprint("r", "f", "x").unwrap(),
            a.fingerprint("r", "f", "x").unwrap()
        );
        let short = format!("hmac-sha256-key:k1:{}", URL_SAFE_NO_PAD.encode([1u8; 16]));
        let err = Keyring::parse(&short).unwrap_err();
        assert!(err.to_string().contains("16 bytes is too short"), "{err}");
        let bad = "hmac-sha256-key:k1:QkJCQkJC!!";
        let err = Keyring::parse(bad).unwrap_err();
        assert!(!err.to_string().contains("QkJC"), "{err}");
        assert!(Keyring::parse("# nothing\n").is_err());
        let path = std::env::temp_dir().join(format!("audit-fp-key-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        b.write_file(&path).unwrap();
        let read = Keyring::read_file(&path).unwrap();
        assert_eq!(read.current().id(), "k1");
        assert!(matches!(
            b.write_file(&path),
            Err(FingerprintError::File(KeyFileError::Exists(_)))
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(format!("{a:?}").contains("k2") && !format!("{a:?}").contains(&*a.to_text()));
    }

    #[test]
    fn fingerprints_parse_back_and_reject_garbage() {
        let fp = key().fingerprint("r", "f", "x").unwrap();
        assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
        let json = serde_json::to_string(&fp).unwrap();
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), fp);
        for bad in [
            "",
            "hmac-sha256:k1",
            "hmac-sha256:k1:AAAA",
            "sha256:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "hmac-sha256:k 1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_key_ids_and_short_keys_are_refused() {
        for id in ["", "k:1", "k 1", &"k".repeat(33), "ключ"] {
            assert!(FingerprintKey::new(id, &[0; 32]).is_err(), "{id}");
        }
        assert!(matches!(
            FingerprintKey::new("k1", &[0; 31]),
            Err(FingerprintError::KeyTooShort(31))
        ));
    }
}
