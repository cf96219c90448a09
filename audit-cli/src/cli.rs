//! The command line: global options, one subcommand each, and typed values. Every value is
//! parsed by clap, so a bad one is a usage error (exit 2) naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use audit_core::query::AdditionalKey;
use audit_core::store::export::Format;
use audit_core::store::{Cursor, MAX_PAGE_SIZE};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::time::{parse_cutoff, parse_interval};

#[derive(Parser)]
#[command(
    name = "audit",
    version,
    about = "Query, export, purge and watch an audit log"
)]
pub struct Cli {
    /// The store: sqlite://path/to/audit.db or postgres://user@host/database.
    #[arg(
        long,
        global = true,
        env = "AUDIT_STORE_URL",
        default_value = "sqlite://audit.db"
    )]
    pub store: String,
    /// Your username, what `username:me` stands for.
    #[arg(long, global = true, env = "AUDIT_ME")]
    pub me: Option<String>,
    /// Application-defined filter keys (fields of additional_fields) to accept, besides build_reason.
    #[arg(long = "key", global = true, value_name = "KEY")]
    pub keys: Vec<AdditionalKey>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Shows one page of matching events, newest first.
    Query(QueryArgs),
    /// Writes every matching event as CSV or JSON lines, streamed.
    Export(ExportArgs),
    /// Deletes events older than a cut-off, in small batches.
    Purge(PurgeArgs),
    /// Shows rows and disk usage.
    Stats(StatsArgs),
    /// Follows new matching events as they are stored.
    Tail(TailArgs),
    /// Serves the log over HTTP (the Coder-compatible API and live streams) to token holders.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Creates, lists and revokes the API tokens of `audit serve`.
    #[cfg(feature = "serve")]
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Args)]
pub struct QueryArgs {
    /// The filter, e.g. 'resource_type:workspace action:delete username:me date_from:2024-01-01'.
    #[arg(default_value = "")]
    pub filter: String,
    /// Events per page (1 to 1000).
    #[arg(long, default_value_t = 25, value_parser = page_size)]
    pub limit: usize,
    /// Continue after this cursor (printed at the end of the previous page).
    #[arg(long, value_parser = cursor)]
    pub cursor: Option<Cursor>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also count the matches (capped at 10,000).
    #[arg(long)]
    pub count: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(default_value = "")]
    pub filter: String,
    /// The output format.
    #[arg(long, value_enum, ignore_case = true, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Output file (default: standard output). Written beside it first, then renamed.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Start a CSV file with a UTF-8 byte order mark, for spreadsheets that guess encodings.
    #[arg(long)]
    pub bom: bool,
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values, one row per event, for spreadsheets.
    Csv,
    /// One JSON object per line.
    #[value(alias = "json-lines", alias = "ndjson")]
    Jsonl,
}

impl From<ExportFormat> for Format {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Csv => Format::Csv,
            ExportFormat::Jsonl => Format::JsonLines,
        }
    }
}

#[derive(Args)]
pub struct PurgeArgs {
    /// An age such as 365d, 12w, 48h, or a date (YYYY-MM-DD, UTC) or RFC 3339 instant.
    #[arg(long, value_parser = parse_cutoff)]
    pub older_than: DateTime<Utc>,
    /// Archive purged events to this file first (.csv for CSV, anything else JSON lines).
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Only report how many events would be purged.
    #[arg(long)]
    pub dry_run: bool,
    /// Rows per batch (and per transaction).
    #[arg(long, default_value_t = 5000, value_parser = batch_size)]
    pub batch_size: usize,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TailArgs {
    #[arg(default_value = "")]
    pub filter: String,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Start with the newest N existing events.
    #[arg(long, default_value_t = 0)]
    pub last: usize,
    /// Resume after this log position (an event's `seq`, as `--json` prints it) instead of at
    /// the newest event.
    #[arg(long, conflicts_with = "last")]
    pub after: Option<u64>,
    /// Poll interval, e.g. 1s or 500ms.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Stop after this many events (for scripts and tests).
    #[arg(long)]
    pub max_events: Option<u64>,
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub struct ServeArgs {
    /// The token file (`audit token create` writes it); the log is never served without one.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// The address to listen on (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Served behind a reverse proxy that terminates TLS: trust its X-Forwarded-Proto and
    /// X-Forwarded-Host (the viewer's session cookie is then Secure when it says https).
    #[arg(long)]
    pub behind_proxy: bool,
}

/// `audit token …`.
#[cfg(feature = "serve")]
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints it, alone, on standard output (the file keeps only a hash).
    Create(TokenCreateArgs),
    /// Lists the tokens of a file: ids, users, roles, organizations (never the tokens).
    List(TokenListArgs),
    /// Revokes a token by its id (a running `audit serve` stops accepting it within a second).
    Revoke(TokenRevokeArgs),
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub struct TokenCreateArgs {
    /// The token file (created 0600 if missing).
    #[arg(long)]
    pub tokens: PathBuf,
    /// The user the token signs in as (what `username:me` stands for).
    #[arg(long)]
    pub user: String,
    /// What the token may read.
    #[arg(long, value_enum)]
    pub role: Role,
    /// An organization the role applies to (repeatable); none: site-wide.
    #[arg(long = "org", value_name = "ID")]
    pub orgs: Vec<String>,
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub struct TokenListArgs {
    /// The token file.
    #[arg(long)]
    pub tokens: PathBuf,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub struct TokenRevokeArgs {
    /// The token file.
    #[arg(long)]
    pub tokens: PathBuf,
    /// The token's id, as `audit token list` shows it.
    pub id: String,
}

/// The roles a token can carry.
#[cfg(feature = "serve")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Reads every event.
    Owner,
    /// Reads the events of its organizations (every event without --org).
    Auditor,
    /// Reads nothing (403): a signed-in user without an audit role.
    Member,
}

#[cfg(feature = "serve")]
impl Role {
    /// The role's name in the token file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => audit_http::OWNER,
            Role::Auditor => audit_http::AUDITOR,
            Role::Member => "member",
        }
    }
}

fn cursor(s: &str) -> Result<Cursor, audit_core::store::StoreError> {
    s.parse()
}

fn page_size(s: &str) -> Result<usize, OutOfRange> {
    in_range(s, 1, MAX_PAGE_SIZE)
}

fn batch_size(s: &str) -> Result<usize, OutOfRange> {
    in_range(s, 1, 1_000_000)
}

/// A value that is no whole number from `min` to `max`.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange {
    min: usize,
    max: usize,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "use a whole number from {} to {}", self.min, self.max)
    }
}

impl std::error::Error for OutOfRange {}

/// A whole number from `min` to `max`.
fn in_range(s: &str, min: usize, max: usize) -> Result<usize, OutOfRange> {
    match s.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(OutOfRange { min, max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ranges() {
        assert_eq!(page_size("1"), Ok(1));
        assert_eq!(page_size("1000"), Ok(1000));
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert!(page_size(bad).is_err(), "{bad}");
        }
    }
}
