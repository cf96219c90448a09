//! Regenerates the tracking tables in `docs/audit-tracking.md` from the example resources.
//!
//! `cargo run -p audit-examples --bin audit-docs` rewrites the generated section;
//! `… -- --check` leaves the file alone and exits 1 with a diff when it is stale.
//! An optional path argument names another file with the same markers.

use std::path::PathBuf;
use std::process::ExitCode;

use audit_examples::tracking_docs;

fn main() -> ExitCode {
    let mut check = false;
    let mut path: Option<PathBuf> = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "usage: audit-docs [--check] [PATH]\n\nRegenerates the audit tracking tables in PATH (default: docs/audit-tracking.md).\n--check  do not write; exit 1 and print a diff if PATH is stale"
                );
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with('-') => {
                eprintln!(
                    "audit-docs: unknown option `{flag}` (expected --check or a path; see --help)"
                );
                return ExitCode::from(2);
            }
            other => path = Some(PathBuf::from(other)),
        }
    }
    let path = path.unwrap_or_else(tracking_docs::default_path);
    let (current, expected) = match tracking_docs::current_and_expected(&path) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("audit-docs: {e}");
            return ExitCode::from(2);
        }
    };
    if current == expected {
        println!("{} is up to date", path.display());
        return ExitCode::SUCCESS;
    }
    if check {
        eprint!(
            "{}",
            tracking_docs::unified_diff(&current, &expected, &path)
        );
        eprintln!(
            "audit-docs: {} is stale: run `cargo run -p audit-examples --bin audit-docs`",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&path, expected) {
        eprintln!("audit-docs: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    println!("updated {}", path.display());
    ExitCode::SUCCESS
}
