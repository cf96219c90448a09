//! Ed25519 key pairs for signing checkpoints, in the signed-note key formats.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::key_file::{self, Access, KeyFileError};

/// The signed-note signature type of Ed25519.
const ED25519: u8 = 0x01;

/// The key id of an Ed25519 key named `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut sha = Sha256::new();
    sha.update(name.as_bytes());
    sha.update([b'\n', ED25519]);
    sha.update(public_key);
    let digest = sha.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether `name` can name a key: not empty, at most 256 bytes, no spaces, no `+`, no
/// control characters.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(KeyError::InvalidName {
            name: crate::query::echo::bare(name),
        })
    }
}

/// A private key that signs checkpoints. Its `Debug` shows the name and key id only.
///
/// A key has a name (for checkpoints, the log's origin, e.g. `audit.example.com/audit`) and a
/// 32-bit key id, `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]` read big-endian (0x01 is
/// the Ed25519 signature type of <https://c2sp.org/signed-note>). The files hold one line
/// each, in the formats of Go's `golang.org/x/mod/sumdb/note`, so other tools read them:
///
/// ```text
/// private key file (mode 0600):  PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte seed)>
/// public key file (a "vkey"):    <name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte public key)>
/// ```
///
/// A public key file may list several keys, one per line (blank lines and lines starting
/// with `#` are skipped), so checkpoints signed before a key rotation still verify.
///
/// ```
/// use audit_core::chain::{SigningKey, VerifierKey};
///
/// let key = SigningKey::generate("audit.example.com/audit").unwrap();
/// let vkey: VerifierKey = key.verifier().to_string().parse().unwrap();
/// assert_eq!(vkey, key.verifier());
/// assert!(format!("{key:?}").contains("audit.example.com/audit")); // never the secret
/// ```
pub struct SigningKey {
    name: String,
    key_id: u32,
    secret: ed25519_compact::SecretKey,
    public: [u8; 32],
}

impl SigningKey {
    /// A new random key named `name` (for checkpoints: the log's origin).
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Self::from_seed(name, &seed)
    }

    /// The key whose Ed25519 seed is `seed`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        check_name(name)?;
        let pair = ed25519_compact::KeyPair::try_from_seed(ed25519_compact::Seed::new(*seed))
            .map_err(|_| KeyError::Malformed {
                what: "private key",
                why: "its seed is all zeros",
            })?;
        let public = *pair.pk;
        Ok(SigningKey {
            name: name.to_owned(),
            key_id: key_id(name, &public),
            secret: pair.sk,
            public,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching public key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            public: self.public,
        }
    }

    /// The private key file's text (one line, no newline).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(33));
        raw.push(ED25519);
        raw.extend_from_slice(&self.secret.seed()[..]);
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            Zeroizing::new(STANDARD.encode(&raw)).as_str()
        ))
    }

    /// Parses a private key file's text (surrounding whitespace is ignored). The error never
    /// quotes the text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let malformed = |why| KeyError::Malformed {
            what: "private key",
            why,
        };
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or(malformed(
            "it does not start with PRIVATE+KEY+ (a public key? pass the .key file `audit keygen` wrote)",
        ))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed(
                "it is not PRIVATE+KEY+<name>+<key id>+<base64 key>",
            ));
        };
        check_name(name)?;
        let stated = parse_key_id(id).ok_or(malformed("its key id is not 8 hex digits"))?;
        let raw = Zeroizing::new(
            STANDARD
                .decode(key)
                .map_err(|_| malformed("its key is not standard base64"))?,
        );
        let seed: Zeroizing<[u8; 32]> = match raw.split_first() {
            Some((&ED25519, seed)) => Zeroizing::new(
                seed.try_into()
                    .map_err(|_| malformed("its Ed25519 seed is not 32 bytes"))?,
            ),
            Some((&other, _)) => return Err(KeyError::UnsupportedAlgorithm(other)),
            None => return Err(malformed("its key is empty")),
        };
        let key = Self::from_seed(name, &seed)?;
        if key.key_id != stated {
            return Err(KeyError::WrongKeyId {
                name: name.to_owned(),
                stated,
                computed: key.key_id,
            });
        }
        Ok(key)
    }

    /// Reads a private key file. On Unix, refuses a file that users other than its owner
    /// can access, as ssh does (a file that holds no private key is refused as such first).
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let text = key_file::read(path, Access::Public).map_err(KeyError::File)?;
        let key = Self::parse(&text).map_err(|e| e.in_file(path))?;
        key_file::check_private(path).map_err(KeyError::File)?;
        Ok(key)
    }

    /// Writes the private key file, readable by its owner only (mode 0600 on Unix). Refuses
    /// to replace an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyError> {
        key_file::write_new(path, Access::Private, &self.to_text()).map_err(KeyError::File)
    }

    /// Signs `message` (deterministic Ed25519, RFC 8032).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        *self.secret.sign(message, None)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// A public key that verifies checkpoints. Displays as its one-line vkey text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    public: [u8; 32],
}

impl VerifierKey {
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let (Ok(signature), Ok(public)) = (
            ed25519_compact::Signature::from_slice(signature),
            ed25519_compact::PublicKey::from_slice(&self.public),
        ) else {
            return false;
        };
        public.verify(message, &signature).is_ok()
    }

    /// Reads a public key file: one key per line; blank lines and `#` comments are skipped.
    pub fn read_file(path: &Path) -> Result<Vec<Self>, KeyError> {
        let text = key_file::read(path, Access::Public).map_err(KeyError::File)?;
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.parse().map_err(|e: KeyError| e.in_file(path)))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Malformed {
                what: "public key",
                why: "the file holds no key",
            }
            .in_file(path));
        }
        Ok(keys)
    }

    /// Writes the public key file. Refuses to replace an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyError> {
        key_file::write_new(path, Access::Public, &self.to_string()).map_err(KeyError::File)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ED25519;
        raw[1..].copy_from_slice(&self.public);
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(raw)
        )
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    /// Parses `<name>+<key id>+<base64(0x01 ‖ public key)>`.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let malformed = |why| KeyError::Malformed {
            what: "public key",
            why,
        };
        let text = text.trim();
        if text.starts_with("PRIVATE+KEY+") {
            return Err(malformed(
                "this is a private key: pass the public key file `audit keygen` wrote next to it",
            ));
        }
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("it is not <name>+<key id>+<base64 key>"));
        };
        check_name(name)?;
        let stated = parse_key_id(id).ok_or(malformed("its key id is not 8 hex digits"))?;
        let raw = STANDARD
            .decode(key)
            .map_err(|_| malformed("its key is not standard base64"))?;
        let public: [u8; 32] = match raw.split_first() {
            Some((&ED25519, public)) => public
                .try_into()
                .map_err(|_| malformed("its Ed25519 key is not 32 bytes"))?,
            Some((&other, _)) => return Err(KeyError::UnsupportedAlgorithm(other)),
            None => return Err(malformed("its key is empty")),
        };
        let computed = key_id(name, &public);
        if computed != stated {
            return Err(KeyError::WrongKeyId {
                name: name.to_owned(),
                stated,
                computed,
            });
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            key_id: stated,
            public,
        })
    }
}

fn parse_key_id(text: &str) -> Option<u32> {
    (text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
}

/// Why a key could not be made, read or written. Never quotes a private key.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// The key's text is not in the expected format.
    Malformed {
        /// `private key` or `public key`.
        what: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A key name that is empty, too long, or holds a space, a `+` or a control character.
    InvalidName {
        /// The name (shortened, control characters escaped).
        name: String,
    },
    /// The key id in the text does not belong to the key: the text was edited or mixed up.
    WrongKeyId {
        /// The key's name.
        name: String,
        /// The id the text states.
        stated: u32,
        /// The id of the key the text holds.
        computed: u32,
    },
    /// A signature type other than Ed25519 (0x01).
    UnsupportedAlgorithm(u8),
    /// The system's random number generator failed.
    Random(String),
    /// Reading or writing a key file failed.
    File(KeyFileError),
    /// A problem with the key in a file.
    InFile {
        /// The file.
        path: PathBuf,
        /// The problem.
        source: Box<KeyError>,
    },
}

impl KeyError {
    fn in_file(self, path: &Path) -> Self {
        match self {
            KeyError::File(_) | KeyError::InFile { .. } => self,
            other => KeyError::InFile {
                path: path.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed { what, why } => write!(f, "malformed {what}: {why}"),
            KeyError::InvalidName { name } => write!(
                f,
                "invalid key name `{name}`: use a non-empty name without spaces or `+`, such as audit.example.com/audit"
            ),
            KeyError::WrongKeyId {
                name,
                stated,
                computed,
            } => write!(
                f,
                "the key id {stated:08x} of key `{name}` does not match its key ({computed:08x}): the key text was altered; use the files `audit keygen` wrote, unchanged"
            ),
            KeyError::UnsupportedAlgorithm(alg) => write!(
                f,
                "unsupported signature type 0x{alg:02x}: only Ed25519 (0x01) keys are supported"
            ),
            KeyError::Random(e) => write!(f, "the system random number generator failed: {e}"),
            KeyError::File(e) => e.fmt(f),
            KeyError::InFile { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::File(e) => Some(e),
            KeyError::InFile { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example key of Go's golang.org/x/mod/sumdb/note, the reference implementation.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn reads_and_writes_the_reference_key_formats() {
        let key = SigningKey::parse(GO_SKEY).unwrap();
        assert_eq!(key.name(), "PeterNeumann");
        assert_eq!(key.key_id(), 0xc74f20a3);
        assert_eq!(key.to_text().as_str(), GO_SKEY);
        assert_eq!(key.verifier().to_string(), GO_VKEY);
        assert_eq!(GO_VKEY.parse::<VerifierKey>().unwrap(), key.verifier());
    }

    #[test]
    fn the_c2sp_example_key_parses() {
        let v: VerifierKey =
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
                .parse()
                .unwrap();
        assert_eq!(v.key_id(), 0x530d903a);
    }

    #[test]
    fn every_mangled_key_is_refused_and_never_echoed() {
        let bytes = GO_SKEY.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let Ok(text) = String::from_utf8(b) else {
                continue;
            };
            match SigningKey::parse(&text) {
                Ok(_) => panic!("accepted {text}"),
                Err(e) => assert!(!e.to_string().contains("AYEKFALV"), "{e}"),
            }
        }
        for cut in 1..GO_VKEY.len() {
            assert!(GO_VKEY[..cut].parse::<VerifierKey>().is_err(), "{cut}");
        }
        let err = GO_SKEY.parse::<VerifierKey>().unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        let other_alg = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert!(matches!(
            other_alg.parse::<VerifierKey>(),
            Err(KeyError::UnsupportedAlgorithm(_) | KeyError::WrongKeyId { .. })
        ));
    }

    #[test]
    fn names_with_spaces_pluses_or_controls_are_refused() {
        for bad in ["", "a b", "a+b", "a\nb", "a\u{2003}b", &"x".repeat(257)] {
            let err = SigningKey::generate(bad).unwrap_err();
            assert!(matches!(err, KeyError::InvalidName { .. }), "{bad:?}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn signatures_verify_with_the_matching_key_only() {
        let a = SigningKey::generate("log").unwrap();
        let b = SigningKey::generate("log").unwrap();
        let sig = a.sign(b"text\n");
        assert!(a.verifier().verify(b"text\n", &sig));
        assert!(!a.verifier().verify(b"text!\n", &sig));
        assert!(!b.verifier().verify(b"text\n", &sig));
        assert!(!a.verifier().verify(b"text\n", &sig[..63]));
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("audit-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::generate("log.example/audit").unwrap();
        let private = dir.join("checkpoint.key");
        let public = dir.join("checkpoint.pub");
        key.write_file(&private).unwrap();
        key.verifier().write_file(&public).unwrap();
        assert!(matches!(
            key.write_file(&private),
            Err(KeyError::File(KeyFileError::Exists(_)))
        ));
        let back = SigningKey::read_file(&private).unwrap();
        assert_eq!(back.verifier(), key.verifier());
        assert_eq!(VerifierKey::read_file(&public).unwrap(), [key.verifier()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SigningKey::read_file(&private).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        // Rotation: several keys, comments and blank lines.
        let rotated = dir.join("all.pub");
        let other = SigningKey::generate("log.example/audit").unwrap();
        std::fs::write(
            &rotated,
            format!("# old\n{}\n\n{}\n", key.verifier(), other.verifier()),
        )
        .unwrap();
        assert_eq!(VerifierKey::read_file(&rotated).unwrap().len(), 2);
        std::fs::write(&rotated, "# nothing\n").unwrap();
        let err = VerifierKey::read_file(&rotated).unwrap_err();
        assert!(err.to_string().contains("holds no key"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
