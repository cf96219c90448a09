//! The demo: a short day on a Coder-like deployment, audited.
//!
//! Prints the human-readable audit lines, writes JSON lines and an SQLite store, and says
//! where: `cargo run -p audit-examples [-- --out DIR]` (default `target/audit-demo`).

use std::path::PathBuf;
use std::process::ExitCode;

use audit_core::Auditor;
use audit_core::backends::StoreBackend;
use audit_core::backends::{JsonLinesBackend, TextBackend};
use audit_core::store::sqlite::{Options, SqliteStore};

fn main() -> ExitCode {
    let mut out = PathBuf::from("target/audit-demo");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--out", Some(dir)) => out = PathBuf::from(dir),
            _ => {
                eprintln!("usage: audit-examples [--out DIR]   (default: target/audit-demo)");
                return ExitCode::from(2);
            }
        }
    }
    match run(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("audit-examples: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(out: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let jsonl = out.join("audit.jsonl");
    let db = out.join("audit.db");
    // Each run starts a fresh log.
    for stale in [
        &jsonl,
        &db,
        &out.join("audit.db-wal"),
        &out.join("audit.db-shm"),
    ] {
        if stale.exists() {
            std::fs::remove_file(stale)
                .map_err(|e| format!("cannot remove {}: {e}", stale.display()))?;
        }
    }
    // Coder's audit page filters workspace builds by `build_reason`: index it.
    let options = Options {
        indexed_keys: vec!["build_reason".into()],
        ..Options::default()
    };
    let store = StoreBackend::new(SqliteStore::open_with(&db, options).map_err(|e| e.to_string())?)
        .named("sqlite");
    let reader = store.handle();
    let auditor = Auditor::builder()
        .backend(TextBackend::stdout())
        .backend(
            JsonLinesBackend::append_to_file(&jsonl)
                .map_err(|e| format!("{}: {e}", jsonl.display()))?,
        )
        .backend(store)
        .build()
        .map_err(|e| format!("cannot start the auditor: {e}"))?;

    let recorded = audit_examples::demo::run(&auditor).map_err(|e| e.to_string())?;
    auditor.shutdown();

    let stats = auditor.stats();
    // Read back from the store, as an auditor's page would.
    let mut store = reader.lock();
    let page = store
        .newer(
            &audit_core::query::Filter::default(),
            Some(0),
            audit_core::store::MAX_PAGE_SIZE,
        )
        .map_err(|e| e.to_string())?;
    println!();
    println!("What the stored log says, oldest first:");
    for event in &page {
        println!("  {}", event.description());
    }
    println!();
    println!("{recorded} events recorded; per backend:");
    for backend in &stats.backends {
        println!(
            "  {:<12} written {:>3}  failed {}  dropped {}",
            backend.name, backend.written, backend.failed, backend.dropped
        );
    }
    println!();
    println!("JSON lines:   {}", jsonl.display());
    println!("SQLite store: {}", db.display());
    println!();
    println!("Query it with the audit CLI, for example:");
    println!(
        "  cargo run -p audit-cli -- --store sqlite://{} query 'resource_type:workspace'",
        db.display()
    );
    println!(
        "  cargo run -p audit-cli -- --store sqlite://{} query 'username:bob action:delete'",
        db.display()
    );
    println!(
        "  cargo run -p audit-cli -- --store sqlite://{} export 'build_reason:autostart' --format csv",
        db.display()
    );
    let dir = out.display();
    println!();
    println!(
        "Serve it over HTTP (Coder's /api/v2/audit, live streams, the web viewer), to the holder of a token:"
    );
    println!(
        "  cargo run -q -p audit-cli -- token create --tokens {dir}/tokens.json --user alice --role owner > {dir}/token"
    );
    println!(
        "  cargo run -q -p audit-cli -- --store sqlite://{} serve --tokens {dir}/tokens.json",
        db.display()
    );
    println!(
        "  curl -H \"Authorization: Bearer $(cat {dir}/token)\" 'http://127.0.0.1:8080/api/v2/audit?q=resource_type:workspace&limit=2'"
    );
    println!();
    println!(
        "Read it in a browser: open http://127.0.0.1:8080/audit and sign in with the token in {dir}/token."
    );
    let failed: u64 = stats.backends.iter().map(|b| b.failed + b.dropped).sum();
    if failed > 0 {
        return Err(format!(
            "{failed} events were not written; see the counters above"
        ));
    }
    Ok(())
}
