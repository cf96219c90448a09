//! `audit serve` and `audit token`: the HTTP API over the store, for holders of a token
//! from a token file.
//!
//! ```text
//! audit token create --tokens tokens.json --user alice --role auditor [--org ID]...   # prints the token
//! audit token list --tokens tokens.json [--json]
//! audit token revoke --tokens tokens.json ID
//! audit --store sqlite://audit.db serve --tokens tokens.json [--listen 127.0.0.1:8080]
//! ```
//!
//! `serve` never starts without a token file: the log is never served open by accident. It
//! records every read of the log (an `audit_log` `read` or `export` event, by the reader)
//! into the store it serves, and stops gracefully on SIGINT or SIGTERM: open streams end,
//! requests in flight finish, recorded reads are written.

use std::io::Write;
use std::path::{Path, PathBuf};

use audit_core::Auditor;
use audit_core::query::AdditionalKey;
use audit_core::store::StoreBackend;
use audit_http::tokens::{TokenError, TokenFile};
use audit_http::{AuditApi, Readers};
use clap::{Subcommand, ValueEnum};

use crate::Failure;

/// The roles a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Reads every event.
    Owner,
    /// Reads the events of its organizations (all events without --org).
    Auditor,
    /// Reads nothing (403): a signed-in user without an audit role.
    Member,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Owner => audit_http::OWNER,
            Role::Auditor => audit_http::AUDITOR,
            Role::Member => "member",
        }
    }
}

/// `audit token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints it, alone, on standard output (the file keeps only a hash).
    Create {
        /// The token file (created 0600 if missing).
        #[arg(long)]
        tokens: PathBuf,
        /// The user the token signs in as (what `username:me` stands for).
        #[arg(long)]
        user: String,
        /// What the token may read.
        #[arg(long, value_enum)]
        role: Role,
        /// An organization the role applies to (repeatable); none: site-wide.
        #[arg(long = "org", value_name = "ID")]
        orgs: Vec<String>,
    },
    /// Lists the tokens of a file (ids, users, roles; never the tokens).
    List {
        #[arg(long)]
        tokens: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a token by its id (a running `audit serve` stops accepting it within a second).
    Revoke {
        #[arg(long)]
        tokens: PathBuf,
        /// The token's id, as `list` shows it.
        id: String,
    },
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Io { .. } => Failure::Runtime(e.to_string()),
            _ => Failure::Usage(e.to_string()),
        }
    }
}

/// Runs an `audit token` command.
pub fn token(command: TokenCommand) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match command {
        TokenCommand::Create {
            tokens,
            user,
            role,
            orgs,
        } => {
            let file = TokenFile::new(&tokens);
            let created = file.create(&user, role.as_str(), &orgs)?;
            writeln!(out, "{}", created.token())?;
            eprintln!(
                "created token {} for {user} ({}) in {}; it is shown only this once",
                created.id,
                role.as_str(),
                tokens.display()
            );
        }
        TokenCommand::List { tokens, json } => {
            let listed = TokenFile::new(&tokens).list()?;
            for t in &listed {
                if json {
                    let line = serde_json::json!({
                        "id": t.id, "user": t.user, "role": t.role,
                        "organizations": t.organizations, "created_at": t.created_at,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    let orgs = if t.organizations.is_empty() {
                        "(all)".to_owned()
                    } else {
                        t.organizations.join(",")
                    };
                    writeln!(
                        out,
                        "{}  {:<16} {:<8} {:<24} {}",
                        t.id,
                        t.user.escape_debug(),
                        t.role,
                        orgs.escape_debug(),
                        t.created_at.format("%Y-%m-%d %H:%M:%SZ")
                    )?;
                }
            }
            if listed.is_empty() && !json {
                eprintln!("no tokens in {}", tokens.display());
            }
        }
        TokenCommand::Revoke { tokens, id } => {
            if !TokenFile::new(&tokens).revoke(&id)? {
                return Err(Failure::Usage(format!(
                    "no token with id `{}` in {}; `audit token list --tokens {}` shows the ids",
                    id.escape_debug(),
                    tokens.display(),
                    tokens.display()
                )));
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

/// Runs `audit serve` until SIGINT or SIGTERM.
pub fn serve(
    store_url: &str,
    keys: Vec<AdditionalKey>,
    tokens: Option<&Path>,
    listen: &str,
) -> Result<(), Failure> {
    let tokens = tokens.ok_or_else(|| {
        Failure::Usage(
            "audit serve needs --tokens FILE: the audit log is never served without \
             authentication. Create a token first: audit token create --tokens tokens.json \
             --user NAME --role owner"
                .into(),
        )
    })?;
    let authorizer = TokenFile::new(tokens).authorizer()?;
    // Reads are recorded into the store being served.
    let writer = audit_core::store::open(store_url)?;
    let auditor = Auditor::builder()
        .backend(StoreBackend::from_box(writer).named("store"))
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the auditor: {e}")))?;
    let api = AuditApi::builder(Readers::url(store_url))
        .authorizer(authorizer)
        .auditor(auditor.clone())
        .vocabulary_from_store(keys)
        .build()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the server's runtime: {e}")))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Failure::Usage(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        println!("Serving the audit log on http://{addr}/api/v2/audit (health: http://{addr}/healthz). Stop with Ctrl-C.");
        std::io::stdout().flush()?;
        audit_http::serve(listener, api, shutdown_signal())
            .await
            .map_err(|e| Failure::Runtime(format!("the server failed: {e}")))
    });
    // Write the reads recorded before the shutdown.
    auditor.shutdown();
    served?;
    eprintln!("audit serve: stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
