//! The files the CLI writes, written so that nothing it does destroys or tears the log:
//!
//! * [`StoreFiles`] refuses an output path that is the SQLite store, one of its journal files
//!   (`-wal`, `-shm`, `-journal`), or the same file under another name (a hard link or a
//!   symbolic link: files are compared by device and inode, not by name).
//! * [`AtomicFile`] writes an export next to its destination, syncs it and renames it into
//!   place, so a full disk or a crash never leaves a torn file behind.
//! * [`Archive`] collects a purge's events in `FILE.partial`, synced batch by batch before the
//!   store deletes them, and renames it to `FILE` at the end.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use audit_core::store::export::{EventWriter, Format};
use audit_core::store::{StoreError, StoredEvent};

use crate::error::Failure;

/// The journal files SQLite keeps next to a database.
const JOURNAL_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Which file an existing path names: device and inode.
#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    fs::canonicalize(path).ok()
}

/// Which directory entry `path` names, following symbolic links: the directory's identity
/// and the file name. Works for paths that do not exist yet.
fn entry_id(path: &Path) -> Option<(FileId, OsString)> {
    let mut path = path.to_path_buf();
    // Follow a chain of links by hand: the last one may point at a file that does not exist.
    for _ in 0..40 {
        match fs::read_link(&path) {
            Ok(target) => path = parent_of(&path).join(target),
            Err(_) => break,
        }
    }
    Some((file_id(&parent_of(&path))?, path.file_name()?.to_owned()))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The files of an SQLite store, which no output may overwrite.
#[derive(Debug, Default)]
pub(crate) struct StoreFiles {
    store: Option<PathBuf>,
    files: Vec<FileId>,
    entries: Vec<(FileId, OsString)>,
}

impl StoreFiles {
    /// The files of the SQLite store at `path`, or none (a Postgres store has no file here).
    pub(crate) fn of(path: Option<&Path>) -> Self {
        let mut files = StoreFiles::default();
        let Some(path) = path else {
            return files;
        };
        files.store = Some(path.to_path_buf());
        let mut bases = vec![path.to_path_buf()];
        if let Ok(real) = fs::canonicalize(path) {
            bases.push(real);
        }
        for base in &bases {
            for suffix in std::iter::once("").chain(JOURNAL_SUFFIXES) {
                let candidate = with_suffix(base, suffix);
                files.files.extend(file_id(&candidate));
                files.entries.extend(entry_id(&candidate));
            }
        }
        files
    }

    /// Refuses `output` if writing it could overwrite the store or its journals.
    pub(crate) fn check(&self, output: &Path, what: &str) -> Result<(), Failure> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let same_file = file_id(output).is_some_and(|id| self.files.contains(&id));
        let same_entry = entry_id(output).is_some_and(|e| self.entries.contains(&e));
        if same_file || same_entry {
            return Err(Failure::usage(format!(
                "refusing to write the {what} to `{}`: it is the audit store `{}` or one of its \
                 journal files (-wal, -shm, -journal); choose another path",
                output.display(),
                store.display()
            )));
        }
        Ok(())
    }
}

/// Syncs the directory holding `path`, so that a rename into it survives a crash.
fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(parent_of(path))?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// An output file written beside its destination and renamed into place once complete and
/// synced. Dropped without [`commit`](Self::commit), it leaves the destination untouched.
pub(crate) struct AtomicFile {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `path`.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // What `File::create` would give: the destination's mode if it exists, else
            // read-write for all as the umask allows.
            let mode = fs::metadata(path).map_or(0o666, |m| m.permissions().mode());
            builder.permissions(fs::Permissions::from_mode(mode));
        }
        let temp = builder.tempfile_in(parent_of(path))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temp,
        })
    }

    /// The file being written.
    pub(crate) fn file_mut(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Syncs the file, renames it to its destination and syncs the directory.
    pub(crate) fn commit(self) -> io::Result<()> {
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(&self.path)
    }
}

/// A purge's archive. Events go to `FILE.partial` (a copy of `FILE`'s content first, when
/// `FILE` exists), synced after each batch, before the store deletes that batch; at the end,
/// and after a failure, the partial file is renamed to `FILE`.
///
/// A partial file that is still there when a purge starts means an earlier purge was
/// interrupted (a crash, a kill) before it could rename it: it holds events already deleted
/// from the store, so the purge refuses to start until someone looks at it.
pub(crate) struct Archive {
    path: PathBuf,
    partial: PathBuf,
    writer: EventWriter<BufWriter<File>>,
    /// The length of the partial file when it last was synced: every line before it is whole.
    synced: u64,
    /// Events archived.
    pub events: u64,
}

impl Archive {
    /// Starts archiving to `path`, as CSV if it ends in `.csv`, else as JSON lines.
    pub(crate) fn open(path: &Path, store: &StoreFiles) -> Result<Self, Failure> {
        let partial = with_suffix(path, ".partial");
        if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(Failure::usage(format!(
                "the archive `{}` is not a regular file: archive to a file",
                path.display()
            )));
        }
        store.check(path, "archive")?;
        store.check(&partial, "archive")?;
        let format = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            Format::Csv
        } else {
            Format::JsonLines
        };
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&partial)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Failure::usage(format!(
                    "`{p}` is left over from an interrupted purge: it holds the content of `{f}` \
                     and events that purge archived and may have deleted from the store (its \
                     last line may be cut off, and its last batch may still be in the store). \
                     Check it, keep what you need (for example `mv {p} {f}`), then purge again",
                    p = partial.display(),
                    f = path.display()
                )));
            }
            Err(e) => {
                return Err(Failure::context(
                    format!("cannot create `{}`", partial.display()),
                    e,
                ));
            }
        };
        let copied = copy_existing(path, &mut file).map_err(|e| {
            let _ = fs::remove_file(&partial);
            Failure::context(format!("cannot copy the archive `{}`", path.display()), e)
        })?;
        let mut writer = EventWriter::new(BufWriter::new(file), format);
        if copied > 0 {
            writer = writer.without_header();
        }
        Ok(Archive {
            path: path.to_path_buf(),
            partial,
            writer,
            synced: copied,
            events: 0,
        })
    }

    /// Appends a batch and syncs it to disk: only then may the store delete it.
    pub(crate) fn write_batch(&mut self, events: &[StoredEvent]) -> Result<(), StoreError> {
        for event in events {
            self.writer.write(event)?;
        }
        self.writer.flush()?;
        let file = self.writer.get_ref().get_ref();
        file.sync_data()?;
        self.synced = file.metadata()?.len();
        self.events += events.len() as u64;
        Ok(())
    }

    /// Finishes the archive: everything synced, renamed to its name.
    pub(crate) fn finish(self) -> Result<(), Failure> {
        let Archive {
            path,
            partial,
            writer,
            ..
        } = self;
        let done = writer
            .finish()
            .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all());
        let renamed =
            done.and_then(|()| fs::rename(&partial, &path).and_then(|()| sync_dir(&path)));
        renamed.map_err(|e| {
            Failure::context(
                format!(
                    "cannot finish the archive `{}`: the archived events are in `{}`",
                    path.display(),
                    partial.display()
                ),
                e,
            )
        })
    }

    /// After a failed purge: keeps every whole batch (cutting off what was written after the
    /// last sync) and renames the partial file to its name, so nothing archived is lost.
    pub(crate) fn abandon(self) -> Result<(), Failure> {
        let Archive {
            path,
            partial,
            writer,
            synced,
            ..
        } = self;
        // Let the writer go first (it may still flush what it buffered), then cut the file
        // back through a handle of its own.
        drop(writer);
        let kept = OpenOptions::new()
            .write(true)
            .open(&partial)
            .and_then(|file| file.set_len(synced).and_then(|()| file.sync_all()))
            .and_then(|()| fs::rename(&partial, &path))
            .and_then(|()| sync_dir(&path));
        kept.map_err(|e| {
            Failure::context(
                format!(
                    "the purge failed, and the archived events could not be moved from `{}` to `{}`",
                    partial.display(),
                    path.display()
                ),
                e,
            )
        })
    }
}

/// Copies `path` (if it exists) into the empty `partial`, and makes sure it ends a line, so
/// that a record appended next can never be glued to a cut-off last line. Returns the length
/// of the partial file, synced.
fn copy_existing(path: &Path, partial: &mut File) -> io::Result<u64> {
    let mut existing = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut len = io::copy(&mut existing, partial)?;
    if len > 0 {
        let mut last = [0u8];
        existing.seek(SeekFrom::End(-1))?;
        existing.read_exact(&mut last)?;
        if last[0] != b'\n' {
            partial.write_all(b"\n")?;
            len += 1;
        }
    }
    partial.sync_all()?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_core::AuditEvent;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("audit-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn events(n: usize) -> Vec<StoredEvent> {
        (1..=n as u64)
            .map(|seq| StoredEvent {
                seq,
                hash: audit_core::chain::ChainHash::GENESIS,
                event: AuditEvent::builder("delete").build(),
            })
            .collect()
    }

    #[test]
    fn a_failed_purge_keeps_every_synced_batch_and_nothing_after_it() {
        let dir = temp_dir("abandon");
        let path = dir.join("archive.jsonl");
        fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let mut archive = Archive::open(&path, &StoreFiles::default()).unwrap();
        archive.write_batch(&events(2)).unwrap();
        // A batch that was being written when the purge failed: never synced.
        archive.writer.write(&events(1)[0]).unwrap();
        archive.writer.flush().unwrap();
        archive.abandon().unwrap();
        let content = fs::read_to_string(&path).unwrap();
        assert_eq!(content.lines().count(), 3, "{content}");
        assert!(content.starts_with("{\"earlier\":1}\n"));
        assert!(content.ends_with('\n'));
        assert!(!dir.join("archive.jsonl.partial").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_finished_archive_replaces_its_file_with_old_and_new_content() {
        let dir = temp_dir("finish");
        let path = dir.join("archive.csv");
        let mut archive = Archive::open(&path, &StoreFiles::default()).unwrap();
        archive.write_batch(&events(2)).unwrap();
        archive.finish().unwrap();
        let mut archive = Archive::open(&path, &StoreFiles::default()).unwrap();
        archive.write_batch(&events(1)).unwrap();
        assert_eq!(archive.events, 1);
        archive.finish().unwrap();
        let content = fs::read_to_string(&path).unwrap();
        assert_eq!(content.lines().count(), 1 + 3, "{content}");
        assert_eq!(content.matches("id,time,").count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
