//! `audit verify`: is this log intact? Recomputes the hash chain of the store (and of the
//! archives given), checks the checkpoints given and those the store keeps, and says which
//! ranges it could not check. Reads only.

use std::io::{BufWriter, Write};

use audit_core::chain::VerifierKey;
use audit_core::chain::VerifyReport;
use audit_core::format::terminal_safe;
use audit_core::store::verify::{VerifyError, VerifyOptions, verify, verify_archives};

use super::Context;
use crate::cli::VerifyArgs;
use crate::error::Failure;

/// The longest checkpoint file read.
const MAX_CHECKPOINT_FILE: u64 = 64 * 1024;

pub(super) fn run(cx: &mut Context, args: VerifyArgs) -> Result<(), Failure> {
    let json = args.json;
    let options = options(args)?;
    let report = verify(&mut *cx.store, &options).map_err(failure)?;
    print(&report, json)
}

/// `audit verify --without-store --archive FILE…`: the archives on their own.
pub(super) fn run_without_store(args: VerifyArgs) -> Result<(), Failure> {
    if args.archives.is_empty() {
        return Err(Failure::usage(
            "--without-store checks archives on their own: pass at least one --archive FILE",
        ));
    }
    let json = args.json;
    let options = options(args)?;
    let report = verify_archives(&options).map_err(failure)?;
    print(&report, json)
}

/// The keys, checkpoints and archives named on the command line, read and checked.
fn options(args: VerifyArgs) -> Result<VerifyOptions, Failure> {
    let mut keys = Vec::new();
    for path in &args.public_keys {
        keys.extend(VerifierKey::read_file(path).map_err(Failure::usage)?);
    }
    if !args.checkpoints.is_empty() && keys.is_empty() {
        return Err(Failure::usage(
            "--checkpoint needs --public-key: a checkpoint counts only once its signature is checked",
        ));
    }
    let mut checkpoints = Vec::new();
    for path in &args.checkpoints {
        checkpoints.push((path.display().to_string(), read_checkpoint(path)?));
    }
    for path in &args.archives {
        if !path.is_file() {
            return Err(Failure::usage(format!(
                "no archive at `{}`: pass a JSON-lines file written by `audit purge --archive` or `audit export`",
                path.display()
            )));
        }
    }
    Ok(VerifyOptions {
        keys,
        checkpoints,
        archives: args.archives,
    })
}

fn failure(e: VerifyError) -> Failure {
    match e {
        VerifyError::Store(e) => Failure::from(e),
        e @ (VerifyError::Archive { .. } | VerifyError::CsvArchive(_)) => Failure::usage(e),
        e => Failure::runtime(e),
    }
}

/// Prints the report (as JSON with `json`); fails, naming the first problem, unless intact.
fn print(report: &VerifyReport, json: bool) -> Result<(), Failure> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        for line in report.to_string().lines() {
            writeln!(out, "{}", terminal_safe(line))?;
        }
    }
    out.flush()?;
    match report.first_problem() {
        None => Ok(()),
        Some(first) => Err(Failure::runtime(format!("the log is not intact: {first}"))),
    }
}

/// A checkpoint file's text; a file too large to be one is refused before it is read whole.
fn read_checkpoint(path: &std::path::Path) -> Result<String, Failure> {
    let cannot = |e| {
        Failure::usage_context(
            format!("cannot read the checkpoint `{}`", path.display()),
            e,
        )
    };
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > MAX_CHECKPOINT_FILE {
        return Err(Failure::usage(format!(
            "`{}` is {len} bytes long: not a checkpoint (a checkpoint is a few hundred bytes)",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(cannot)
}
