//! `audit`: read and maintain an audit log store from the command line.
//!
//! ```text
//! audit query 'resource_type:workspace action:delete' [--limit N] [--cursor C] [--json]
//! audit export 'username:alice' --format csv|jsonl [-o FILE] [--bom]
//! audit purge --older-than 365d [--archive FILE] [--dry-run]
//! audit stats [--json]
//! audit tail 'action:login'
//! audit token create --tokens tokens.json --user alice --role auditor [--org ID]...
//! audit serve --tokens tokens.json [--listen 127.0.0.1:8080]
//! ```
//!
//! The store is `--store URL` (or `AUDIT_STORE_URL`): `sqlite://path` (the default,
//! `sqlite://audit.db`) or `postgres://user@host/db`.
//!
//! Exit codes: 0 on success, 2 for bad input (a flag, a filter, a path), 1 when the store or
//! an output fails (quietly when standard output was closed, as by `audit query | head`).

mod cli;
mod commands;
mod error;
mod files;
mod output;
mod progress;
mod time;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match commands::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
