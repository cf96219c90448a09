//! `audit token create|list|revoke`: the API tokens of `audit serve`, in a token file that
//! keeps only a hash of each.

use std::io::{BufWriter, Write};

use audit_core::format::terminal_safe;
use audit_http::tokens::{TokenError, TokenFile};

use crate::cli::TokenCommand;
use crate::error::Failure;

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Io { .. } => Failure::runtime(e),
            _ => Failure::usage(e),
        }
    }
}

pub(super) fn run(command: TokenCommand) -> Result<(), Failure> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    match command {
        TokenCommand::Create(args) => {
            let file = TokenFile::new(&args.tokens);
            let created = file.create(&args.user, args.role.as_str(), &args.orgs)?;
            writeln!(out, "{}", created.token())?;
            eprintln!(
                "created token {} for {} ({}) in {}; it is shown only this once",
                created.id,
                terminal_safe(&args.user),
                args.role.as_str(),
                terminal_safe(&args.tokens.display().to_string())
            );
        }
        TokenCommand::List(args) => {
            let listed = TokenFile::new(&args.tokens).list()?;
            for t in &listed {
                if args.json {
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
                        terminal_safe(&t.user),
                        terminal_safe(&t.role),
                        terminal_safe(&orgs),
                        t.created_at.format("%Y-%m-%d %H:%M:%SZ")
                    )?;
                }
            }
            if listed.is_empty() && !args.json {
                eprintln!("no tokens in {}", args.tokens.display());
            }
        }
        TokenCommand::Revoke(args) => {
            if !TokenFile::new(&args.tokens).revoke(&args.id)? {
                return Err(Failure::usage(format!(
                    "no token with id `{}` in {}; `audit token list --tokens {}` shows the ids",
                    terminal_safe(&args.id),
                    args.tokens.display(),
                    args.tokens.display()
                )));
            }
            eprintln!("revoked token {}", terminal_safe(&args.id));
        }
    }
    out.flush()?;
    Ok(())
}
