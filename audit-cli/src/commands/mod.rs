//! One function per subcommand, and what they share: the open store, the filter parser and
//! the files the store keeps.

mod checkpoint;
mod export;
mod fingerprint;
mod keygen;
mod purge;
mod query;
#[cfg(feature = "serve")]
mod serve;
mod stats;
mod tail;
#[cfg(feature = "serve")]
mod token;
mod verify;

use audit_core::query::{AdditionalKey, BUILD_REASON, Filter, UserMatch};
use audit_core::store::{Store, StoreUrl};

use crate::cli::{Cli, Command};
use crate::error::Failure;
use crate::files::StoreFiles;

/// What every subcommand works with.
pub(crate) struct Context {
    pub store: Box<dyn Store>,
    /// The SQLite store's files, which no output may overwrite.
    pub files: StoreFiles,
    /// The filter keys the application added: `build_reason` (Coder's) and each `--key`.
    keys: Vec<AdditionalKey>,
    me: Option<String>,
}

impl Context {
    /// Parses a filter against the store's vocabulary; every problem is listed.
    pub(crate) fn filter(&mut self, query: &str) -> Result<Filter, Failure> {
        let vocabulary = audit_core::store::vocabulary(&mut *self.store, &self.keys)?;
        let filter = vocabulary.parse(query)?;
        match (filter.username(), self.me.as_deref()) {
            (Some(UserMatch::Me), Some(me)) => Ok(filter.resolve_me(me)),
            (Some(UserMatch::Me), None) => Err(Failure::usage(
                "`username:me` needs to know who you are: pass --me USERNAME or set AUDIT_ME",
            )),
            _ => Ok(filter),
        }
    }
}

/// Opens the store and runs the subcommand. Only a purge and a checkpoint write (and may
/// migrate an older store); every other command opens the store read-only and never changes
/// it. `keygen`, `fingerprint` and `token` need no store.
pub(crate) fn run(cli: Cli) -> Result<(), Failure> {
    // Keys and tokens live in their own files: no store is opened for them.
    let cli = match cli.command {
        #[cfg(feature = "serve")]
        Command::Token(command) => return token::run(command),
        Command::Keygen(args) => return keygen::run(args),
        Command::Fingerprint(args) => return fingerprint::run(args),
        Command::Verify(args) if args.without_store => return verify::run_without_store(args),
        command => Cli { command, ..cli },
    };
    let url: StoreUrl = cli.store.parse()?;
    let sqlite = match &url {
        StoreUrl::Sqlite(path) => Some(path.as_path()),
        _ => None,
    };
    // Every command works on an existing log: a mistyped path must not create an empty one.
    if let Some(path) = sqlite
        && !path.is_file()
    {
        return Err(Failure::usage(format!(
            "no SQLite audit store at `{}`: check --store (or AUDIT_STORE_URL); \
             `cargo run -p audit-examples` writes one to target/audit-demo/audit.db",
            path.display()
        )));
    }
    #[cfg(feature = "serve")]
    if let Command::Serve(args) = cli.command {
        let keys = std::iter::once(BUILD_REASON).chain(cli.keys).collect();
        return serve::run(&url, keys, args);
    }
    let writes = match &cli.command {
        Command::Purge(args) => !args.dry_run,
        Command::Checkpoint(_) => true,
        _ => false,
    };
    let store = if writes {
        url.open()?
    } else {
        url.open_read_only()?
    };
    let mut cx = Context {
        store,
        files: StoreFiles::of(sqlite),
        keys: std::iter::once(BUILD_REASON).chain(cli.keys).collect(),
        me: cli.me,
    };
    match cli.command {
        Command::Query(args) => query::run(&mut cx, args),
        Command::Export(args) => export::run(&mut cx, args),
        Command::Purge(args) => purge::run(&mut cx, args),
        Command::Stats(args) => stats::run(&mut cx, args),
        Command::Tail(args) => tail::run(&mut cx, args),
        Command::Verify(args) => verify::run(&mut cx, args),
        Command::Checkpoint(args) => checkpoint::run(&mut cx, args),
        Command::Keygen(_) | Command::Fingerprint(_) => unreachable!("run without a store, above"),
        #[cfg(feature = "serve")]
        Command::Serve(_) | Command::Token(_) => unreachable!("run without a store, above"),
    }
}
