//! Regenerates the tracking tables in `docs/audit-tracking.md` from the example resources: a
//! thin command over `audit_core::docs::{update, check_fresh}`.
//!
//! `cargo run -p audit-examples --bin audit-docs` rewrites the generated section;
//! `… -- --check` leaves the file alone and exits 1 with a diff when it is stale.
//! An optional path argument names another file with the same markers. Exit status 2 means
//! the file could not be read, written or understood.

use std::path::PathBuf;
use std::process::ExitCode;

use audit_core::docs::{self, DocsError};
use audit_examples::tracking_docs;

fn main() -> ExitCode {
    let mut check = false;
    let mut path: Option<PathBuf> = None;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--check") => check = true,
            Some("-h" | "--help") => {
                println!(
                    "usage: audit-docs [--check] [PATH]\n\nRegenerates the audit tracking tables in PATH (default: docs/audit-tracking.md).\n--check  do not write; exit 1 and print a diff if PATH is stale"
                );
                return ExitCode::SUCCESS;
            }
            Some(flag) if flag.starts_with('-') => {
                eprintln!(
                    "audit-docs: unknown option `{flag}` (expected --check or a path; see --help)"
                );
                return ExitCode::from(2);
            }
            _ => path = Some(PathBuf::from(arg)),
        }
    }
    let path = path.unwrap_or_else(tracking_docs::default_path);
    let schemas = tracking_docs::schemas();
    let result = if check {
        docs::check_fresh(&path, &schemas).map(|()| false)
    } else {
        docs::update(&path, &schemas)
    };
    match result {
        Ok(false) => println!("{} is up to date", path.display()),
        Ok(true) => println!("updated {}", path.display()),
        Err(DocsError::Stale(stale)) => {
            eprint!("{}", stale.diff());
            eprintln!("audit-docs: {stale}: run `{}`", tracking_docs::REGENERATE);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("audit-docs: {e}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
