//! `audit purge`: deletes events older than a cut-off, in batches, archiving each batch
//! durably before it is deleted.

use std::io::{BufWriter, Write};

use audit_core::store::{PurgeOptions, StoredEvent};
use chrono::SecondsFormat;

use super::Context;
use crate::cli::PurgeArgs;
use crate::error::Failure;
use crate::files::Archive;
use crate::progress;

pub(super) fn run(cx: &mut Context, args: PurgeArgs) -> Result<(), Failure> {
    let options = PurgeOptions {
        older_than: args.older_than,
        batch_size: args.batch_size,
        dry_run: args.dry_run,
    };
    let cutoff = args.older_than.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.dry_run {
        let report = cx.store.purge(&options, None, &mut |_| {})?;
        writeln!(
            out,
            "would purge {} events older than {cutoff}",
            report.events
        )?;
        out.flush()?;
        return Ok(());
    }
    let progress = progress::line("purged");
    if !progress.is_hidden() {
        let dry_run = PurgeOptions {
            dry_run: true,
            ..options.clone()
        };
        let expected = cx.store.purge(&dry_run, None, &mut |_| {})?.events;
        progress::with_total(&progress, expected);
    }
    let mut on_batch = |n: u64| progress.set_position(n);
    let report = match &args.archive {
        None => cx.store.purge(&options, None, &mut on_batch)?,
        Some(path) => {
            let mut archive = Archive::open(path, &cx.files)?;
            let mut write = |events: &[StoredEvent]| archive.write_batch(events);
            let purged = cx.store.purge(&options, Some(&mut write), &mut on_batch);
            match purged {
                Ok(report) => {
                    archive.finish()?;
                    report
                }
                Err(e) => {
                    // Keep what was archived (its events are gone from the store), then report
                    // the purge's own failure.
                    if let Err(kept) = archive.abandon() {
                        kept.print();
                    }
                    return Err(e.into());
                }
            }
        }
    };
    progress.finish();
    write!(
        out,
        "purged {} events older than {cutoff} in {} batches",
        report.events, report.batches
    )?;
    if report.partitions_dropped > 0 {
        write!(out, " and {} dropped partitions", report.partitions_dropped)?;
    }
    if let Some(path) = &args.archive {
        let path = path.display().to_string();
        write!(
            out,
            "; archived to {}",
            audit_core::format::terminal_safe(&path)
        )?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
