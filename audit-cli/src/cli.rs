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
pub(crate) struct Cli {
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
pub(crate) enum Command {
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
    /// Checks that the log is intact: recomputes its hash chain and checks checkpoints and
    /// archives. Exits 0 when intact, 1 naming the first event that is not.
    Verify(VerifyArgs),
    /// Signs a checkpoint of the log's head (after checking the chain since the last one),
    /// records it in the store and writes it out.
    Checkpoint(CheckpointArgs),
    /// Makes a key pair for signing checkpoints, or with --fingerprint a key for secret
    /// fingerprints. Needs no store.
    Keygen(KeygenArgs),
    /// Prints the fingerprint of a candidate secret value read from standard input (never
    /// from the command line), to compare with the fingerprints in the log. Needs no store.
    Fingerprint(FingerprintArgs),
    /// Serves the log over HTTP (the Coder-compatible API and live streams) to token holders.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Creates, lists and revokes the API tokens of `audit serve`.
    #[cfg(feature = "serve")]
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Args)]
pub(crate) struct QueryArgs {
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
pub(crate) struct ExportArgs {
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
pub(crate) struct PurgeArgs {
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
pub(crate) struct StatsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct TailArgs {
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
pub(crate) struct ServeArgs {
    /// The token file (`audit token create` writes it); the log is never served without one.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// The address to listen on (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A public key file the store's checkpoints are checked with when an owner verifies the
    /// log (GET /api/v2/audit/verify); repeat for older keys.
    #[arg(long = "public-key", value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,
    /// Verify the log's hash chain this often (e.g. 10m; the first at start), checking the
    /// stored checkpoints with the --public-key keys: owners see the outcome in the viewer
    /// ("integrity: verified up to #N at T"), and a log found not intact is reported on
    /// standard error.
    #[arg(long, value_parser = parse_interval)]
    pub verify_every: Option<Duration>,
    /// Sign a checkpoint of the log's head this often (e.g. 1h), even when nothing was
    /// appended, and record it in the store; needs --signing-key.
    #[arg(long, value_parser = parse_interval, requires = "signing_key")]
    pub checkpoint_every: Option<Duration>,
    /// The private key file periodic checkpoints are signed with.
    #[arg(long, value_name = "FILE", requires = "checkpoint_every")]
    pub signing_key: Option<PathBuf>,
    /// Also write each periodic checkpoint to a new file in this directory (keep it where the
    /// database's writers cannot reach it).
    #[arg(long, value_name = "DIR", requires = "checkpoint_every")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Served behind a reverse proxy that terminates TLS: trust its X-Forwarded-Proto and
    /// X-Forwarded-Host (the viewer's session cookie is then Secure when it says https).
    #[arg(long)]
    pub behind_proxy: bool,
}

/// `audit token …`.
#[cfg(feature = "serve")]
#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Creates a token and prints it, alone, on standard output (the file keeps only a hash).
    Create(TokenCreateArgs),
    /// Lists the tokens of a file: ids, users, roles, organizations (never the tokens).
    List(TokenListArgs),
    /// Revokes a token by its id (a running `audit serve` stops accepting it within a second).
    Revoke(TokenRevokeArgs),
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub(crate) struct TokenCreateArgs {
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
pub(crate) struct TokenListArgs {
    /// The token file.
    #[arg(long)]
    pub tokens: PathBuf,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
#[derive(Args)]
pub(crate) struct TokenRevokeArgs {
    /// The token file.
    #[arg(long)]
    pub tokens: PathBuf,
    /// The token's id, as `audit token list` shows it.
    pub id: String,
}

/// The roles a token can carry.
#[cfg(feature = "serve")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Owner => audit_http::OWNER,
            Role::Auditor => audit_http::AUDITOR,
            Role::Member => "member",
        }
    }
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// A public key file (`audit keygen` writes NAME.pub); repeat for older keys.
    #[arg(long = "public-key", value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,
    /// A signed checkpoint file kept outside the store; repeat for several.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
    /// A JSON-lines archive or export to check too, joined to the log; oldest first.
    #[arg(long = "archive", value_name = "FILE")]
    pub archives: Vec<PathBuf>,
    /// Check the archives (and checkpoints) on their own, without opening the store: for an
    /// archive kept after its database is gone.
    #[arg(long)]
    pub without_store: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct CheckpointArgs {
    /// The private key file (`audit keygen` writes NAME.key).
    #[arg(long, value_name = "FILE")]
    pub signing_key: PathBuf,
    /// Where to write the signed checkpoint: a new file, a directory (a file named after the
    /// position and time is made in it), or - for standard output (the default).
    #[arg(long, value_name = "FILE|DIR|-")]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// The key's name, which is the log's name in its checkpoints, such as
    /// audit.example.com/audit (default: HOSTNAME/audit).
    #[arg(long, conflicts_with = "fingerprint")]
    pub name: Option<String>,
    /// Where to write: PREFIX.key (private, mode 0600) and PREFIX.pub (default
    /// audit-checkpoint); with --fingerprint, the key file (default audit-fingerprint.key).
    #[arg(long, value_name = "PREFIX|FILE")]
    pub out: Option<PathBuf>,
    /// Make a key for secret fingerprints (HMAC-SHA256) instead of a checkpoint key pair.
    #[arg(long)]
    pub fingerprint: bool,
    /// The fingerprint key's id, part of every fingerprint it makes (change it when rotating).
    #[arg(long, default_value = "k1", requires = "fingerprint")]
    pub key_id: String,
}

#[derive(Args)]
pub(crate) struct FingerprintArgs {
    /// The fingerprint key file (current key first, then old keys).
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// The resource type, e.g. workspace.
    #[arg(long)]
    pub resource: String,
    /// The secret field's audit name, e.g. agent_token.
    #[arg(long)]
    pub field: String,
    /// Read the value as JSON (for a secret that is not a string, e.g. 1234 or {"user": "x"}).
    #[arg(long)]
    pub json: bool,
    /// Instead of printing fingerprints, check this one: exit 0 if the value matches it, 1
    /// if not.
    #[arg(long, value_name = "FINGERPRINT")]
    pub check: Option<audit_core::fingerprint::Fingerprint>,
    /// A value given on the command line, which is refused (without repeating it): it would
    /// show in `ps` and in shell histories.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub refused: Vec<std::ffi::OsString>,
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
pub(crate) struct OutOfRange {
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
