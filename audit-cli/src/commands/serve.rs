//! `audit serve`: the HTTP API and the web viewer over the store (audit-http), for holders
//! of a token from a token file (the viewer asks for one in its sign-in form).
//!
//! It never starts without a token file: the log is never served open by accident. It
//! records every read of the log (an `audit_log` `read` or `export` event, by the reader)
//! into the store it serves, prints the URL it serves on once it is listening, and stops
//! gracefully on SIGINT or SIGTERM: open streams end, requests in flight finish, recorded
//! reads are written.

use std::io::Write;

use audit_core::Auditor;
use audit_core::backends::StoreBackend;
use audit_core::query::AdditionalKey;
use audit_core::store::StoreUrl;
use audit_http::tokens::TokenFile;
use audit_http::{AuditApi, Readers, Transport, Viewer};

use crate::cli::ServeArgs;
use crate::error::Failure;

pub(super) fn run(
    store_url: &StoreUrl,
    keys: Vec<AdditionalKey>,
    args: ServeArgs,
) -> Result<(), Failure> {
    let tokens = args.tokens.ok_or_else(|| {
        Failure::usage(
            "audit serve needs --tokens FILE: the audit log is never served without \
             authentication. Create a token first: audit token create --tokens tokens.json \
             --user NAME --role owner",
        )
    })?;
    let authorizer = TokenFile::new(&tokens).authorizer()?;
    let mut checkpoint_keys = Vec::new();
    for path in &args.public_keys {
        checkpoint_keys
            .extend(audit_core::chain::VerifierKey::read_file(path).map_err(Failure::usage)?);
    }
    // Reads are recorded into the store being served.
    let writer = store_url.open()?;
    let auditor = Auditor::builder()
        .backend(StoreBackend::from_box(writer))
        .build()
        .map_err(|e| Failure::context("cannot start the auditor", e))?;
    let api = AuditApi::builder(Readers::url(store_url.clone()))
        .authorizer(authorizer)
        .auditor(auditor.clone())
        .vocabulary_from_store(keys)
        .checkpoint_keys(checkpoint_keys)
        .viewer(Viewer::token_sign_in().transport(if args.behind_proxy {
            Transport::Proxy
        } else {
            Transport::Direct
        }))
        .build()
        .map_err(Failure::usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::context("cannot start the server's runtime", e))?;
    let checkpoints = match (args.checkpoint_every, &args.signing_key) {
        (Some(every), Some(path)) => Some(Periodic {
            every,
            key: std::sync::Arc::new(
                audit_core::chain::SigningKey::read_file(path).map_err(Failure::usage)?,
            ),
            dir: args.checkpoint_dir.clone(),
            store: store_url.clone(),
        }),
        _ => None,
    };
    let served = runtime.block_on(async {
        if let Some(periodic) = checkpoints {
            tokio::spawn(periodic.run());
        }
        if let Some(every) = args.verify_every {
            tokio::spawn(verify_every(api.clone(), every));
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| Failure::context(format!("cannot listen on {}", args.listen), e))?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout().lock();
        // One write of both lines (not a line at a time): a reader that takes the first line
        // and closes the pipe does not make the second fail.
        let banner = format!(
            "Serving the audit log on http://{addr}/api/v2/audit (health: http://{addr}/healthz). Stop with Ctrl-C.\n\
             Read it in a browser: http://{addr}/audit (sign in with a token of the token file).\n"
        );
        out.write_all(banner.as_bytes())?;
        out.flush()?;
        drop(out);
        audit_http::serve(listener, api, shutdown_signal())
            .await
            .map_err(|e| Failure::context("the server failed", e))
    });
    // Write the reads recorded before the shutdown.
    auditor.shutdown();
    served?;
    eprintln!("audit serve: stopped");
    Ok(())
}

/// Periodic checkpoints: a checkpoint of the head every `every` (an unchanged head included,
/// as CloudTrail's empty digest files say that nothing was added), recorded in the store and,
/// with a directory, written there too. A failure is reported and the next one tried.
struct Periodic {
    every: std::time::Duration,
    key: std::sync::Arc<audit_core::chain::SigningKey>,
    dir: Option<std::path::PathBuf>,
    store: StoreUrl,
}

impl Periodic {
    async fn run(self) {
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (key, dir, store) = (
                std::sync::Arc::clone(&self.key),
                self.dir.clone(),
                self.store.clone(),
            );
            let taken = tokio::task::spawn_blocking(move || -> Result<String, Failure> {
                let mut store = store.open()?;
                let (checkpoint, note) = audit_core::store::verify::take_checkpoint(
                    &mut *store,
                    &key,
                    chrono::Utc::now(),
                )
                .map_err(Failure::runtime)?;
                if let Some(dir) = &dir {
                    super::checkpoint::write_in_dir(dir, &checkpoint, &note)?;
                }
                Ok(format!("#{} {}", checkpoint.head.seq, checkpoint.head.hash))
            })
            .await;
            match taken {
                Ok(Ok(_)) => {}
                Ok(Err(failure)) => {
                    eprint!("audit serve: periodic checkpoint failed: ");
                    failure.print();
                }
                Err(e) => eprintln!("audit serve: periodic checkpoint failed: {e}"),
            }
        }
    }
}

/// Periodic verification of the log, for the viewer's integrity line; a log found not intact
/// (or a verification that failed) is reported on standard error each time.
async fn verify_every(api: AuditApi, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if api.is_closing() {
            return;
        }
        match api.verify().await {
            Ok(v) if v.intact => {}
            Ok(v) => eprintln!(
                "audit serve: the log is NOT intact (verified up to #{}): {}",
                v.head.seq,
                v.first_problem.as_deref().unwrap_or("a problem was found")
            ),
            Err(e) => eprintln!("audit serve: periodic verification failed: {}", e.message()),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
