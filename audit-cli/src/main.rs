//! `audit`: read and maintain an audit log store from the command line.
//!
//! ```text
//! audit query 'resource_type:workspace action:delete' [--limit N] [--cursor C] [--json]
//! audit export 'username:alice' --format csv|jsonl [-o FILE]
//! audit purge --older-than 365d [--archive FILE] [--dry-run]
//! audit stats [--json]
//! audit tail 'action:login'
//! ```
//!
//! The store is `--store URL` (or `AUDIT_STORE_URL`): `sqlite://path` (the default,
//! `sqlite://audit.db`) or `postgres://user@host/db`.

mod duration;
mod progress;
#[cfg(feature = "serve")]
mod serve;

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use audit_core::query::{AdditionalKey, BUILD_REASON, Filter};
use audit_core::store::export::{EventWriter, Format};
use audit_core::store::{Count, Cursor, PageRequest, PurgeOptions, Store, StoreError};
use audit_core::{AuditEvent, Change};
use clap::{Parser, Subcommand};

use crate::progress::Progress;

#[derive(Parser)]
#[command(
    name = "audit",
    version,
    about = "Query, export, purge and watch an audit log"
)]
struct Cli {
    /// The store: sqlite://path/to/audit.db or postgres://user@host/database.
    #[arg(
        long,
        global = true,
        env = "AUDIT_STORE_URL",
        default_value = "sqlite://audit.db"
    )]
    store: String,
    /// Your username, what `username:me` stands for.
    #[arg(long, global = true, env = "AUDIT_ME")]
    me: Option<String>,
    /// Application-defined filter keys (fields of additional_fields) to accept, besides build_reason.
    #[arg(long = "key", global = true, value_name = "KEY")]
    keys: Vec<AdditionalKey>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows one page of matching events, newest first.
    Query {
        /// The filter, e.g. 'resource_type:workspace action:delete username:me date_from:2024-01-01'.
        #[arg(default_value = "")]
        filter: String,
        /// Events per page (1 to 1000).
        #[arg(long, default_value_t = 25)]
        limit: usize,
        /// Continue after this cursor (printed at the end of the previous page).
        #[arg(long)]
        cursor: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Also count the matches (capped at 10,000).
        #[arg(long)]
        count: bool,
    },
    /// Writes every matching event as CSV or JSON lines, streamed.
    Export {
        #[arg(default_value = "")]
        filter: String,
        /// csv or jsonl.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Deletes events older than a cut-off, in small batches.
    Purge {
        /// An age such as 365d, 12w, 48h, or a date (YYYY-MM-DD, UTC).
        #[arg(long)]
        older_than: String,
        /// Archive purged events to this file first (.csv for CSV, anything else JSON lines).
        #[arg(long)]
        archive: Option<PathBuf>,
        /// Only report how many events would be purged.
        #[arg(long)]
        dry_run: bool,
        /// Rows per batch (and per transaction).
        #[arg(long, default_value_t = 5000)]
        batch_size: usize,
    },
    /// Shows rows and disk usage.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Follows new matching events as they are stored.
    Tail {
        #[arg(default_value = "")]
        filter: String,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Start with the newest N existing events.
        #[arg(long, default_value_t = 0)]
        last: usize,
        /// Resume after this cursor (as printed by `query`) instead of at the newest event.
        #[arg(long, conflicts_with = "last")]
        after: Option<String>,
        /// Poll interval, e.g. 1s or 500ms.
        #[arg(long, default_value = "1s")]
        interval: String,
        /// Stop after this many events (for scripts and tests).
        #[arg(long)]
        max_events: Option<u64>,
    },
    /// Serves the log over HTTP (the Coder-compatible API and live streams) to token holders.
    #[cfg(feature = "serve")]
    Serve {
        /// The token file (`audit token create` writes it); required.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Creates, lists and revokes the API tokens of `audit serve`.
    #[cfg(feature = "serve")]
    Token {
        #[command(subcommand)]
        command: serve::TokenCommand,
    },
}

/// A failure, with the exit code it maps to.
enum Failure {
    /// Bad input (filter, flags): exit 2.
    Usage(String),
    /// The store or the output failed: exit 1.
    Runtime(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidRequest(m) | StoreError::Unsupported(m) => Failure::Usage(m),
            other => Failure::Runtime(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Runtime(format!("write failed: {e}"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    #[cfg(feature = "serve")]
    let cli = match cli.command {
        Command::Token { command } => return serve::token(command),
        command => Cli { command, ..cli },
    };
    // Every command reads an existing log: a mistyped path must not create an empty one.
    let sqlite_path = cli.store.strip_prefix("sqlite://").unwrap_or(&cli.store);
    let is_sqlite = !cli.store.contains("://") || cli.store.starts_with("sqlite://");
    if is_sqlite && !std::path::Path::new(sqlite_path).is_file() {
        return Err(Failure::Usage(format!(
            "no SQLite audit store at `{sqlite_path}`: check --store (or AUDIT_STORE_URL); \
             `cargo run -p audit-examples` writes one to target/audit-demo/audit.db"
        )));
    }
    #[cfg(feature = "serve")]
    if let Command::Serve { tokens, listen } = &cli.command {
        let keys = std::iter::once(BUILD_REASON).chain(cli.keys).collect();
        return serve::serve(&cli.store, keys, tokens.as_deref(), listen);
    }
    let mut store = audit_core::store::open(&cli.store)?;
    // Coder's build_reason is accepted without --key; a --key build_reason accepts any value.
    let keys: Vec<AdditionalKey> = std::iter::once(BUILD_REASON).chain(cli.keys).collect();
    let parse = |store: &mut dyn Store, q: &str| parse_filter(store, q, &keys, cli.me.as_deref());
    let stdout = std::io::stdout();
    match cli.command {
        Command::Query {
            filter,
            limit,
            cursor,
            json,
            count,
        } => {
            let filter = parse(&mut *store, &filter)?;
            let cursor = cursor.map(|c| c.parse::<Cursor>()).transpose()?;
            let page = store.page(&filter, &PageRequest { limit, cursor })?;
            let mut out = stdout.lock();
            for event in &page.events {
                print_event(&mut out, event, json)?;
            }
            if !json {
                if page.events.is_empty() {
                    writeln!(out, "no matching events")?;
                }
                if count {
                    writeln!(out, "matches: {}", store.count(&filter, 10_000)?)?;
                }
                match &page.next {
                    Some(next) => writeln!(out, "next page: --cursor {next}")?,
                    None if !page.events.is_empty() => writeln!(out, "(end of results)")?,
                    None => {}
                }
            }
        }
        Command::Export {
            filter,
            format,
            output,
        } => {
            let filter = parse(&mut *store, &filter)?;
            let format: Format = format.parse().map_err(Failure::Usage)?;
            // The total is counted only when a progress bar will show it.
            let total = if Progress::visible() {
                match store.count(&filter, u64::MAX - 1)? {
                    Count::Exact(n) | Count::AtLeast(n) => Some(n),
                }
            } else {
                None
            };
            let mut progress = Progress::new("exported", total);
            let sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(File::create(path).map_err(|e| {
                    Failure::Runtime(format!("cannot create {}: {e}", path.display()))
                })?),
                None => Box::new(stdout.lock()),
            };
            let mut out = BufWriter::new(sink);
            let n = audit_core::store::export::export(
                &mut *store,
                &filter,
                format,
                &mut out,
                &mut |n| progress.update(n),
            )?;
            out.flush()?;
            progress.finish(n);
            if let Some(path) = output {
                eprintln!("exported {n} events to {}", path.display());
            }
        }
        Command::Purge {
            older_than,
            archive,
            dry_run,
            batch_size,
        } => {
            let cutoff =
                duration::cutoff(&older_than, chrono::Utc::now()).map_err(Failure::Usage)?;
            let options = PurgeOptions {
                older_than: cutoff,
                batch_size,
                dry_run,
            };
            let cutoff_text = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if dry_run {
                let report = store.purge(&options, None, &mut |_| {})?;
                println!(
                    "would purge {} events older than {cutoff_text}",
                    report.events
                );
                return Ok(());
            }
            let expected = if Progress::visible() {
                let dry_run = PurgeOptions {
                    dry_run: true,
                    ..options.clone()
                };
                Some(store.purge(&dry_run, None, &mut |_| {})?.events)
            } else {
                None
            };
            let mut progress = Progress::new("purged", expected);
            let report = match &archive {
                Some(path) => {
                    let format = if path
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
                    {
                        Format::Csv
                    } else {
                        Format::JsonLines
                    };
                    let file = File::options()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| {
                            Failure::Runtime(format!("cannot open archive {}: {e}", path.display()))
                        })?;
                    let mut writer = EventWriter::new(BufWriter::new(file), format);
                    // Each batch is written and synced before its rows are deleted.
                    let mut archive = |events: &[AuditEvent]| -> Result<(), StoreError> {
                        for event in events {
                            writer.write(event)?;
                        }
                        writer.flush()?;
                        writer.get_mut().get_ref().sync_data()?;
                        Ok(())
                    };
                    store.purge(&options, Some(&mut archive), &mut |n| progress.update(n))?
                }
                None => store.purge(&options, None, &mut |n| progress.update(n))?,
            };
            progress.finish(report.events);
            println!(
                "purged {} events older than {cutoff_text} in {} batches{}{}",
                report.events,
                report.batches,
                if report.partitions_dropped > 0 {
                    format!(" and {} dropped partitions", report.partitions_dropped)
                } else {
                    String::new()
                },
                archive
                    .map(|p| format!("; archived to {}", p.display()))
                    .unwrap_or_default()
            );
        }
        Command::Stats { json } => {
            let stats = store.stats()?;
            if json {
                let text = serde_json::to_string_pretty(&stats)
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
                println!("{text}");
            } else {
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into())
                };
                println!("rows          {}", Count::Exact(stats.rows));
                println!("table size    {}", human_bytes(stats.table_bytes));
                println!("indexes size  {}", human_bytes(stats.index_bytes));
                println!("total size    {}", human_bytes(stats.total_bytes));
                println!("oldest event  {}", time(stats.oldest));
                println!("newest event  {}", time(stats.newest));
                if !stats.partitions.is_empty() {
                    println!("partitions    {}", stats.partitions.join(", "));
                }
            }
        }
        Command::Tail {
            filter,
            json,
            last,
            after,
            interval,
            max_events,
        } => {
            let filter = parse(&mut *store, &filter)?;
            let interval = duration::interval(&interval).map_err(Failure::Usage)?;
            let after = after.map(|c| c.parse::<Cursor>()).transpose()?;
            let options = TailOptions {
                json,
                last,
                after,
                interval,
                max_events,
            };
            tail(&mut *store, &filter, &options)?;
        }
        #[cfg(feature = "serve")]
        Command::Serve { .. } | Command::Token { .. } => unreachable!("dispatched above"),
    }
    Ok(())
}

/// Parses a filter against the store's vocabulary; every problem is listed.
fn parse_filter(
    store: &mut dyn Store,
    query: &str,
    keys: &[AdditionalKey],
    me: Option<&str>,
) -> Result<Filter, Failure> {
    let vocabulary = audit_core::store::vocabulary(store, keys)?;
    let filter = vocabulary
        .parse(query)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    match (filter.username(), me) {
        (Some(audit_core::query::UserMatch::Me), Some(me)) => Ok(filter.resolve_me(me)),
        (Some(audit_core::query::UserMatch::Me), None) => Err(Failure::Usage(
            "`username:me` needs to know who you are: pass --me USERNAME or set AUDIT_ME".into(),
        )),
        _ => Ok(filter),
    }
}

#[derive(Clone, Copy)]
struct TailOptions {
    json: bool,
    last: usize,
    after: Option<Cursor>,
    interval: Duration,
    max_events: Option<u64>,
}

fn tail(store: &mut dyn Store, filter: &Filter, options: &TailOptions) -> Result<(), Failure> {
    let TailOptions {
        json,
        last,
        after,
        interval,
        max_events,
    } = *options;
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    let mut cursor = if after.is_some() {
        after
    } else if last > 0 {
        let events = store.newer(filter, None, last.min(audit_core::store::MAX_PAGE_SIZE))?;
        for event in &events {
            print_event(&mut out, event, json)?;
            seen += 1;
        }
        events.last().map(Cursor::of).or(store.newest()?)
    } else {
        store.newest()?
    };
    out.flush()?;
    if std::io::stderr().is_terminal() {
        eprintln!("following new events (Ctrl-C to stop)…");
    }
    loop {
        if max_events.is_some_and(|max| seen >= max) {
            return Ok(());
        }
        let events = store.newer(filter, cursor.as_ref(), audit_core::store::MAX_PAGE_SIZE)?;
        for event in &events {
            print_event(&mut out, event, json)?;
            seen += 1;
            cursor = Some(Cursor::of(event));
            if max_events.is_some_and(|max| seen >= max) {
                break;
            }
        }
        out.flush()?;
        if events.len() < audit_core::store::MAX_PAGE_SIZE {
            std::thread::sleep(interval);
        }
    }
}

/// One event: a JSON line, or a readable line for a terminal.
fn print_event(out: &mut impl Write, e: &AuditEvent, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, e)?;
        return writeln!(out);
    }
    let changes: Vec<String> = e
        .diff
        .iter()
        .map(|(name, change)| match change {
            Change::Tracked { old, new } => format!(
                "{name}: {} → {}",
                old.as_ref().map_or("∅".to_string(), |v| v.to_string()),
                new.as_ref().map_or("∅".to_string(), |v| v.to_string())
            ),
            Change::Secret => format!("{name}: (secret changed)"),
            Change::Unserializable { .. } => format!("{name}: (changed)"),
        })
        .collect();
    let line = format!(
        "{}  {:<12} {:<8} {:<16} {:<20} {}{}",
        e.time.format("%Y-%m-%d %H:%M:%S%.3f"),
        one_line(&e.actor.username),
        one_line(&e.action),
        one_line(&e.resource_type),
        one_line(&e.resource_target),
        e.status_code,
        if changes.is_empty() {
            String::new()
        } else {
            format!("  {}", one_line(&changes.join("; ")))
        }
    );
    writeln!(out, "{line}")
}

/// Control characters cannot break the line-based output.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
