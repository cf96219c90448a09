//! The token file of `audit serve`: API tokens for users with a role, kept as hashes.
//!
//! A token is `audit_<id>_<secret>`: a public 16-hex-digit id (what `audit token list` shows
//! and `audit token revoke` takes) and 256 random bits of secret. The file keeps, per token,
//! the id, the user, the role, the organizations and the SHA-256 of the whole token — never
//! the token. Tokens are random and long, so a plain SHA-256 is the right hash (a slow
//! password hash protects low-entropy secrets); the digests are compared in constant time.
//!
//! The file is JSON, created `0600`, replaced atomically on every change (write a temporary
//! file, sync, rename) under an advisory lock on `FILE.lock`, so two `audit token` commands
//! at once do not lose each other's change. A file that is writable by other users is
//! refused: whoever can write it can grant themselves the owner role.
//!
//! [`TokenAuthorizer`] serves the file: it accepts a token as `Authorization: Bearer …`,
//! Coder's `Coder-Session-Token: …` header or the viewer's session cookie
//! ([`SESSION_COOKIE`]), and notices a changed file within a second, so a revoked token
//! stops working without a restart.
//!
//! ```
//! use audit_http::tokens::TokenFile;
//! # let dir = std::env::temp_dir().join(format!("audit-tokens-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let file = TokenFile::new(dir.join("tokens.json"));
//! let created = file.create("alice", "auditor", &["org-1".to_owned()])?;
//! assert!(created.token().starts_with("audit_"));
//!
//! let listed = file.list()?;
//! assert_eq!((listed[0].user.as_str(), listed[0].role.as_str()), ("alice", "auditor"));
//! let on_disk = std::fs::read_to_string(file.path()).unwrap();
//! assert!(!on_disk.contains(created.token()));
//!
//! assert!(file.revoke(&created.id)?);
//! assert!(file.list()?.is_empty());
//! # Ok::<(), audit_http::tokens::TokenError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{Authorizer, Principal, Rejection};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "audit_";

/// Coder's session token header, accepted as well as `Authorization: Bearer`.
pub const CODER_SESSION_HEADER: &str = "coder-session-token";

/// The cookie a signed-in viewer session carries its token in.
pub const SESSION_COOKIE: &str = "audit_session";

/// The file format's version.
const VERSION: u32 = 1;

/// A token file bigger than this is not read (it would hold millions of tokens).
const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// The longest user name or organization id a token may carry.
const MAX_NAME_LEN: usize = 256;

/// How often, at most, the authorizer looks at the file for changes.
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A token file on disk.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

/// One token's record (without the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The public id (16 hex digits): what `list` shows and `revoke` takes.
    pub id: String,
    /// The user the token signs in as.
    pub user: String,
    /// The role, e.g. `owner`, `auditor`, `member`.
    pub role: String,
    /// The organizations the role applies to (empty: site-wide).
    #[serde(default)]
    pub organizations: Vec<String>,
    /// When the token was created.
    pub created_at: DateTime<Utc>,
    /// Hex SHA-256 of the whole token.
    sha256: String,
}

impl TokenInfo {
    /// The principal this token signs in as.
    pub fn principal(&self) -> Principal {
        let mut p = Principal::new(&self.user).role(&self.role);
        p.organizations = self.organizations.clone();
        p
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FileContents {
    version: u32,
    tokens: Vec<TokenInfo>,
}

/// A freshly created token. Its `Debug` never shows the secret.
pub struct NewToken {
    /// The public id.
    pub id: String,
    token: String,
}

impl NewToken {
    /// The token itself: shown once, never stored.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why a token file operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenError {
    /// Reading or writing the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file exists but is not a token file (or is damaged).
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file is writable by other users.
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A user, role or organization given to `create` is not acceptable.
    BadInput(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TokenError::Invalid { path, detail } => write!(
                f,
                "{} is not a token file ({detail}); pass the file `audit token create --tokens` wrote",
                path.display()
            ),
            TokenError::Permissions { path, mode } => write!(
                f,
                "{} is writable by other users (mode {mode:o}): anyone who can write it can make \
                 themselves an owner; run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
            TokenError::BadInput(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl TokenFile {
    /// The token file at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenFile { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a token for `user` with `role` in `organizations`, creating the file (`0600`)
    /// if needed. Returns the token, which is not stored anywhere.
    ///
    /// # Errors
    /// An empty or over-long user, role or organization, or one with control characters;
    /// a file that cannot be written or is not a token file (it is never overwritten then).
    pub fn create(
        &self,
        user: &str,
        role: &str,
        organizations: &[String],
    ) -> Result<NewToken, TokenError> {
        check_name("user", user)?;
        check_name("role", role)?;
        if role.chars().any(char::is_whitespace) {
            return Err(TokenError::BadInput(format!(
                "role `{}` contains white space; use a role name such as owner, auditor or member",
                role.escape_debug()
            )));
        }
        for org in organizations {
            check_name("organization", org)?;
        }
        let _lock = self.lock()?;
        let mut contents = self.read()?.unwrap_or(FileContents {
            version: VERSION,
            tokens: Vec::new(),
        });
        let mut id_bytes = [0u8; 8];
        let mut secret = [0u8; 32];
        random(&mut id_bytes)?;
        random(&mut secret)?;
        let id = hex(&id_bytes);
        let token = format!("{TOKEN_PREFIX}{id}_{}", hex(&secret));
        let mut organizations = organizations.to_vec();
        organizations.sort_unstable();
        organizations.dedup();
        contents.tokens.push(TokenInfo {
            id: id.clone(),
            user: user.to_owned(),
            role: role.to_owned(),
            organizations,
            created_at: Utc::now(),
            sha256: hex(&Sha256::digest(token.as_bytes())),
        });
        self.write(&contents)?;
        Ok(NewToken { id, token })
    }

    /// Every token's record, oldest first; none if the file does not exist.
    ///
    /// # Errors
    /// The file cannot be read or is not a token file.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.read()?.map(|c| c.tokens).unwrap_or_default())
    }

    /// Revokes the token with this id; `false` if there is none.
    ///
    /// # Errors
    /// The file cannot be read or written, or is not a token file.
    pub fn revoke(&self, id: &str) -> Result<bool, TokenError> {
        let _lock = self.lock()?;
        let Some(mut contents) = self.read()? else {
            return Ok(false);
        };
        let before = contents.tokens.len();
        contents.tokens.retain(|t| t.id != id);
        if contents.tokens.len() == before {
            return Ok(false);
        }
        self.write(&contents)?;
        Ok(true)
    }

    /// An [`Authorizer`] that accepts this file's tokens, following changes to the file.
    ///
    /// # Errors
    /// The file does not exist, cannot be read, is not a token file, or is writable by
    /// other users: a server must not start with an authorizer that accepts nothing by
    /// mistake, or anything by mistake.
    pub fn authorizer(&self) -> Result<TokenAuthorizer, TokenError> {
        let (tokens, stamp) = self.load_for_serving()?;
        Ok(TokenAuthorizer {
            file: self.clone(),
            state: RwLock::new(Loaded {
                tokens,
                stamp,
                failed: false,
            }),
            started: Instant::now(),
            last_check_ms: AtomicU64::new(0),
        })
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn invalid(&self, detail: impl Into<String>) -> TokenError {
        TokenError::Invalid {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// The file's contents; `None` if it does not exist. An empty file holds no tokens.
    fn read(&self) -> Result<Option<FileContents>, TokenError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let meta = file.metadata().map_err(|e| self.io(e))?;
        if !meta.is_file() {
            return Err(self.invalid("not a regular file"));
        }
        check_permissions(&self.path, &meta)?;
        if meta.len() > MAX_FILE_LEN {
            return Err(self.invalid(format!("{} bytes is too large", meta.len())));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE_LEN), &mut text)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => self.invalid("not UTF-8 text"),
                _ => self.io(e),
            })?;
        if text.trim().is_empty() {
            return Ok(Some(FileContents {
                version: VERSION,
                tokens: Vec::new(),
            }));
        }
        let contents: FileContents =
            serde_json::from_str(&text).map_err(|e| self.invalid(e.to_string()))?;
        if contents.version != VERSION {
            return Err(self.invalid(format!(
                "version {} is not supported (this build reads version {VERSION})",
                contents.version
            )));
        }
        for t in &contents.tokens {
            let valid_hash =
                t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid_hash {
                return Err(self.invalid(format!("token {} has no valid sha256", t.id)));
            }
        }
        Ok(Some(contents))
    }

    /// Replaces the file atomically with `contents`, mode `0600`.
    fn write(&self, contents: &FileContents) -> Result<(), TokenError> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .ok_or_else(|| self.invalid("the path names no file"))?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let json = serde_json::to_vec_pretty(contents)
            .map_err(|e| self.invalid(format!("cannot encode: {e}")))?;
        let result = (|| {
            let mut file = private_file(&tmp, true)?;
            file.write_all(&json)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            // Make the rename durable.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|e| self.io(e))
    }

    /// Holds an exclusive advisory lock on `FILE.lock` while a change is made.
    fn lock(&self) -> Result<File, TokenError> {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let file = private_file(&lock_path, false).map_err(|e| TokenError::Io {
            path: lock_path.clone(),
            source: e,
        })?;
        file.lock().map_err(|e| TokenError::Io {
            path: lock_path,
            source: e,
        })?;
        Ok(file)
    }

    /// The tokens by id and the file's modification stamp, for serving.
    fn load_for_serving(&self) -> Result<(HashMap<String, TokenInfo>, Option<Stamp>), TokenError> {
        let stamp = Stamp::of(&self.path);
        let contents = self.read()?.ok_or_else(|| TokenError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no token file: create one with `audit token create --tokens FILE --user NAME --role owner`",
            ),
        })?;
        let tokens = contents
            .tokens
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        Ok((tokens, stamp))
    }
}

/// Opens `path` for writing with mode `0600` (Unix). `create_new` refuses an existing file.
fn private_file(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), TokenError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TokenError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path, _: &std::fs::Metadata) -> Result<(), TokenError> {
    Ok(())
}

fn check_name(what: &str, value: &str) -> Result<(), TokenError> {
    if value.trim().is_empty() {
        return Err(TokenError::BadInput(format!(
            "the {what} is empty; give a name"
        )));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(TokenError::BadInput(format!(
            "the {what} is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(TokenError::BadInput(format!(
            "the {what} `{}` contains control characters",
            value.escape_debug()
        )));
    }
    Ok(())
}

fn random(buf: &mut [u8]) -> Result<(), TokenError> {
    getrandom::fill(buf).map_err(|e| {
        TokenError::BadInput(format!("the system's random number generator failed: {e}"))
    })
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What identifies a version of the file: modification time and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }
}

/// Accepts the tokens of a [`TokenFile`]; see the [module docs](self).
#[derive(Debug)]
pub struct TokenAuthorizer {
    file: TokenFile,
    state: RwLock<Loaded>,
    started: Instant,
    /// Milliseconds since `started` of the last look at the file.
    last_check_ms: AtomicU64,
}

#[derive(Debug)]
struct Loaded {
    tokens: HashMap<String, TokenInfo>,
    stamp: Option<Stamp>,
    /// The file changed into something unreadable: accept no token until it is fixed.
    failed: bool,
}

impl TokenAuthorizer {
    /// The principal of a token, if it is valid.
    pub fn verify(&self, token: &str) -> Option<Principal> {
        self.reload_if_changed();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if state.failed {
            return None;
        }
        let digest = Sha256::digest(token.as_bytes());
        let entry = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(id, _)| state.tokens.get(id));
        // Compare against something in every case, so an unknown id costs what a wrong
        // secret costs.
        let expected = entry.and_then(|e| unhex32(&e.sha256)).unwrap_or([0xA5; 32]);
        let equal: bool = digest.as_slice().ct_eq(&expected).into();
        match entry {
            Some(e) if equal => Some(e.principal()),
            _ => None,
        }
    }

    fn reload_if_changed(&self) {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= RELOAD_EVERY.as_millis() as u64;
        if !due
            || self
                .last_check_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let stamp = Stamp::of(self.file.path());
        let current = self.state.read().unwrap_or_else(|e| e.into_inner()).stamp;
        if stamp == current {
            return;
        }
        let loaded = self.file.load_for_serving();
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match loaded {
            Ok((tokens, stamp)) => {
                *state = Loaded {
                    tokens,
                    stamp,
                    failed: false,
                };
            }
            Err(e) => {
                crate::error::log_error(&format!(
                    "the token file changed and cannot be used, so no token is accepted until it is fixed: {e}"
                ));
                *state = Loaded {
                    tokens: HashMap::new(),
                    stamp,
                    failed: true,
                };
            }
        }
    }
}

impl Authorizer for TokenAuthorizer {
    fn authorize(&self, parts: &Parts) -> Result<Principal, Rejection> {
        let token = credential(parts).ok_or(Rejection::Unauthenticated)?;
        self.verify(token).ok_or(Rejection::Unauthenticated)
    }
}

/// The token a request carries: `Authorization: Bearer …`, `Coder-Session-Token: …` or the
/// [`SESSION_COOKIE`]. `None` if there is none, or if the request carries several different
/// ones (an ambiguous request is not guessed at).
pub fn credential(parts: &Parts) -> Option<&str> {
    let mut tokens: Vec<&str> = Vec::new();
    for value in parts.headers.get_all(AUTHORIZATION) {
        // Any other scheme (Basic, …) or a value that is not text is no credential.
        let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        tokens.push(token);
    }
    for value in parts.headers.get_all(CODER_SESSION_HEADER) {
        tokens.push(value.to_str().ok()?);
    }
    for value in parts.headers.get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        tokens.extend(value.split(';').filter_map(|pair| {
            let (name, token) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(token)
        }));
    }
    let mut distinct = tokens.into_iter().map(str::trim).filter(|t| !t.is_empty());
    let first = distinct.next()?;
    distinct.all(|t| t == first).then_some(first)
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "audit-http-tokens-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri("/api/v2/audit");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_file_is_private_and_holds_only_hashes() {
        let dir = temp_dir("private");
        let file = TokenFile::new(dir.join("tokens.json"));
        let a = file.create("alice", "owner", &[]).unwrap();
        let b = file.create("bob", "auditor", &["org-1".into()]).unwrap();
        assert_ne!(a.token(), b.token());
        assert_eq!(a.token().len(), TOKEN_PREFIX.len() + 16 + 1 + 64);
        let text = std::fs::read_to_string(file.path()).unwrap();
        for secret in [a.token(), b.token()] {
            let secret_part = secret.rsplit('_').next().unwrap();
            assert!(!text.contains(secret_part), "the secret is on disk");
        }
        assert!(!format!("{a:?}").contains(a.token()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let listed = file.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].organizations, ["org-1"]);
    }

    #[test]
    fn tokens_verify_until_revoked() {
        let dir = temp_dir("verify");
        let file = TokenFile::new(dir.join("tokens.json"));
        let t = file
            .create("ann", "auditor", &["org-2".into(), "org-1".into()])
            .unwrap();
        let other = file.create("bob", "owner", &[]).unwrap();
        let auth = file.authorizer().unwrap();
        let p = auth.verify(t.token()).unwrap();
        assert_eq!(p.username, "ann");
        assert_eq!(p.roles, ["auditor"]);
        assert_eq!(p.organizations, ["org-1", "org-2"]);

        // A wrong secret with a known id, an unknown id, garbage: all rejected.
        let mut wrong = t.token().to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(auth.verify(&wrong).is_none());
        assert!(
            auth.verify(&format!("audit_0000000000000000_{}", "0".repeat(64)))
                .is_none()
        );
        for garbage in [
            "",
            "audit_",
            "audit__",
            "Bearer",
            "\u{0}",
            &"x".repeat(100_000),
        ] {
            assert!(auth.verify(garbage).is_none(), "{garbage:?}");
        }

        assert!(file.revoke(&t.id).unwrap());
        assert!(!file.revoke(&t.id).unwrap());
        // Force the next look at the file.
        auth.last_check_ms.store(0, Ordering::Relaxed);
        std::thread::sleep(RELOAD_EVERY);
        assert!(auth.verify(t.token()).is_none(), "revoked");
        assert!(auth.verify(other.token()).is_some(), "others still work");
    }

    #[test]
    fn a_file_that_is_not_a_token_file_is_never_overwritten() {
        let dir = temp_dir("foreign");
        let path = dir.join("audit.db");
        std::fs::write(&path, b"SQLite format 3\0 binary").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let file = TokenFile::new(&path);
        let err = file.create("alice", "owner", &[]).unwrap_err();
        assert!(err.to_string().contains("is not a token file"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"SQLite format 3\0 binary");
        assert!(file.authorizer().is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("perm");
        let file = TokenFile::new(dir.join("tokens.json"));
        file.create("alice", "owner", &[]).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = file.authorizer().unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_missing_file_cannot_serve_and_bad_names_are_refused() {
        let dir = temp_dir("missing");
        let file = TokenFile::new(dir.join("none.json"));
        assert!(
            file.authorizer()
                .unwrap_err()
                .to_string()
                .contains("audit token create")
        );
        assert!(file.list().unwrap().is_empty());
        for (user, role) in [("", "owner"), ("a\nb", "owner"), ("a", ""), ("a", "own er")] {
            assert!(matches!(
                file.create(user, role, &[]),
                Err(TokenError::BadInput(_))
            ));
        }
        assert!(file.create("a", "owner", &["".into()]).is_err());
        assert!(!file.path().exists(), "nothing was written");
    }

    #[test]
    fn credentials_come_from_bearer_coder_header_or_cookie() {
        assert_eq!(
            credential(&parts(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            credential(&parts(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            credential(&parts(&[("coder-session-token", "abc")])),
            Some("abc")
        );
        assert_eq!(
            credential(&parts(&[("cookie", "theme=dark; audit_session=abc")])),
            Some("abc")
        );
        // The same token twice is fine; two different ones are refused.
        assert_eq!(
            credential(&parts(&[
                ("authorization", "Bearer abc"),
                ("coder-session-token", "abc")
            ])),
            Some("abc")
        );
        assert_eq!(
            credential(&parts(&[
                ("authorization", "Bearer abc"),
                ("coder-session-token", "xyz")
            ])),
            None
        );
        assert_eq!(credential(&parts(&[("authorization", "Basic YTpi")])), None);
        assert_eq!(credential(&parts(&[("authorization", "Bearer ")])), None);
        assert_eq!(credential(&parts(&[])), None);
    }

    #[test]
    fn a_damaged_file_stops_every_token_until_fixed() {
        let dir = temp_dir("damaged");
        let file = TokenFile::new(dir.join("tokens.json"));
        let t = file.create("alice", "owner", &[]).unwrap();
        let auth = file.authorizer().unwrap();
        assert!(auth.verify(t.token()).is_some());
        std::fs::write(file.path(), b"{ not json").unwrap();
        auth.last_check_ms.store(0, Ordering::Relaxed);
        std::thread::sleep(RELOAD_EVERY);
        assert!(auth.verify(t.token()).is_none());
    }
}
