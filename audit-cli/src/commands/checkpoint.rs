//! `audit checkpoint`: signs the log's head, after checking that the chain extends the last
//! checkpoint the same key signed, records the checkpoint in the store and writes it out (to
//! standard output, a new file, or a new file in a directory): keep a copy where the
//! database's writers cannot reach it.

use std::io::Write;
use std::path::{Path, PathBuf};

use audit_core::chain::SigningKey;
use audit_core::format::terminal_safe;
use audit_core::store::verify::{VerifyError, take_checkpoint};
use chrono::Utc;

use super::Context;
use crate::cli::CheckpointArgs;
use crate::error::Failure;

pub(super) fn run(cx: &mut Context, args: CheckpointArgs) -> Result<(), Failure> {
    let key = SigningKey::read_file(&args.signing_key).map_err(Failure::usage)?;
    let out = Output::of(args.out.as_deref());
    if let Output::File(path) | Output::Dir(path) = &out {
        cx.files.check(path, "checkpoint")?;
    }
    if let Output::File(path) = &out
        && path.exists()
    {
        return Err(Failure::usage(format!(
            "`{}` exists already: a checkpoint file is never overwritten; name a new file or a directory",
            path.display()
        )));
    }
    let (checkpoint, note) =
        take_checkpoint(&mut *cx.store, &key, Utc::now()).map_err(|e| match e {
            VerifyError::Store(e) => Failure::from(e),
            other => Failure::runtime(other),
        })?;
    let written = match out {
        Output::Stdout => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(note.as_bytes())?;
            stdout.flush()?;
            None
        }
        Output::File(path) => Some(write_new(&path, &note)?),
        Output::Dir(dir) => Some(write_in_dir(&dir, &checkpoint, &note)?),
    };
    let mut message = format!(
        "checkpoint of #{} ({}) signed by {} and recorded in the store",
        checkpoint.head.seq,
        checkpoint.head.hash,
        key.name()
    );
    if let Some(path) = written {
        message.push_str(&format!("; written to {}", path.display()));
    }
    let _ = writeln!(std::io::stderr(), "{}", terminal_safe(&message));
    Ok(())
}

/// Where the checkpoint goes.
enum Output {
    Stdout,
    File(PathBuf),
    Dir(PathBuf),
}

impl Output {
    fn of(path: Option<&Path>) -> Self {
        match path {
            None => Output::Stdout,
            Some(p) if p.as_os_str() == "-" => Output::Stdout,
            Some(p) if p.is_dir() => Output::Dir(p.to_owned()),
            Some(p) => Output::File(p.to_owned()),
        }
    }
}

/// Writes the checkpoint to a new file in `dir`, named after its position and time:
/// `checkpoint-000000001234-20240501T120000.000000Z.txt`.
pub(super) fn write_in_dir(
    dir: &Path,
    checkpoint: &audit_core::chain::Checkpoint,
    note: &str,
) -> Result<PathBuf, Failure> {
    let time = checkpoint
        .time
        .unwrap_or_else(Utc::now)
        .format("%Y%m%dT%H%M%S%.6fZ");
    let name = format!("checkpoint-{:012}-{time}.txt", checkpoint.head.seq);
    write_new(&dir.join(name), note)
}

/// Creates `path` (never replacing a file), writes the checkpoint and syncs it.
fn write_new(path: &Path, note: &str) -> Result<PathBuf, Failure> {
    let cannot = |e| {
        Failure::context(
            format!(
                "cannot write the checkpoint to `{}` (it is recorded in the store)",
                path.display()
            ),
            e,
        )
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(cannot)?;
    file.write_all(note.as_bytes()).map_err(cannot)?;
    file.sync_all().map_err(cannot)?;
    Ok(path.to_owned())
}
