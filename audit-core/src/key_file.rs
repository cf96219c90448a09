//! Files that hold keys: created new (never overwriting one), private ones readable by their
//! owner only, and refused when others can read them, as ssh refuses an unprotected key.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Whether the file holds a private key (mode 0600, checked on read) or a public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Private,
    /// Public key files exist for checkpoints only.
    #[cfg_attr(not(feature = "chain"), allow(dead_code))]
    Public,
}

/// Creates `path` and writes `text` and a newline to it. Refuses to replace a file.
pub(crate) fn write_new(path: &Path, access: Access, text: &str) -> Result<(), KeyFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::Private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(path.to_owned())
        } else {
            KeyFileError::io(path, e)
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyFileError::io(path, e))
}

/// Reads a key file as UTF-8 text, wiped when dropped. A private key file must not be
/// accessible by other users (see [`check_private`]).
pub(crate) fn read(path: &Path, access: Access) -> Result<Zeroizing<String>, KeyFileError> {
    if access == Access::Private {
        check_private(path)?;
    }
    let bytes = std::fs::read(path).map_err(|e| KeyFileError::io(path, e))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(KeyFileError::NotText(path.to_owned()))
        }
    }
}

/// Refuses a private key file that users other than its owner can access (on Unix).
pub(crate) fn check_private(path: &Path) -> Result<(), KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| KeyFileError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Unprotected {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Why a key file could not be read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// A private key file that users other than its owner can access.
    Unprotected {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file to write exists already.
    Exists(PathBuf),
    /// The file is not UTF-8 text.
    NotText(PathBuf),
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl KeyFileError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        KeyFileError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Unprotected { path, mode } => write!(
                f,
                "key file {} is accessible by other users (mode {mode:o}): run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
            KeyFileError::Exists(path) => write!(
                f,
                "{} exists already: a key file is never overwritten; choose another path or remove it first",
                path.display()
            ),
            KeyFileError::NotText(path) => {
                write!(
                    f,
                    "{} is not a key file: it is not UTF-8 text",
                    path.display()
                )
            }
            KeyFileError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_private_new_and_checked() {
        let dir = std::env::temp_dir().join(format!("audit-key-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let private = dir.join("k");
        write_new(&private, Access::Private, "secret").unwrap();
        assert!(matches!(
            write_new(&private, Access::Private, "other"),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(
            read(&private, Access::Private).unwrap().as_str(),
            "secret\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = read(&private, Access::Private).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
            // A public key file may be readable by all.
            assert!(read(&private, Access::Public).is_ok());
        }
        std::fs::write(dir.join("bin"), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read(&dir.join("bin"), Access::Public),
            Err(KeyFileError::NotText(_))
        ));
        let err = read(&dir.join("missing"), Access::Public).unwrap_err();
        assert!(std::error::Error::source(&err).is_some());
        // A directory that does not exist, or /dev/full, fail with the path in the message.
        let err = write_new(&dir.join("no/such/dir"), Access::Public, "x").unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
