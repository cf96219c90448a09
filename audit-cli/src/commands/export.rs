//! `audit export`: every matching event as CSV or JSON lines, streamed to stdout or to a
//! file that appears only once it is complete and synced.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use audit_core::store::Count;
use audit_core::store::export::{EventWriter, export_to};

use super::Context;
use crate::cli::ExportArgs;
use crate::error::Failure;
use crate::files::AtomicFile;
use crate::progress;

pub(super) fn run(cx: &mut Context, args: ExportArgs) -> Result<(), Failure> {
    let filter = cx.filter(&args.filter)?;
    if let Some(path) = &args.output {
        cx.files.check(path, "export")?;
    }
    let progress = progress::line("exported");
    // The total is counted only when the progress bar shows it.
    if !progress.is_hidden() {
        let (Count::Exact(total) | Count::AtLeast(total)) =
            cx.store.count(&filter, u64::MAX - 1)?;
        progress::with_total(&progress, total);
    }
    let mut on_chunk = |n: u64| progress.set_position(n);
    let mut export = |out: &mut dyn Write| {
        let writer = EventWriter::new(BufWriter::new(out), args.format.into()).with_bom(args.bom);
        let (n, out) = export_to(&mut *cx.store, &filter, writer, &mut on_chunk)?;
        out.into_inner().map_err(|e| e.into_error())?;
        Ok::<u64, Failure>(n)
    };
    let n = match &args.output {
        None => export(&mut std::io::stdout().lock())?,
        Some(path) => {
            let cannot = |e| Failure::context(format!("cannot write `{}`", path.display()), e);
            if is_special(path) {
                // A device or a pipe (`/dev/stdout`, a FIFO): written in place, never replaced.
                let mut file = OpenOptions::new().write(true).open(path).map_err(cannot)?;
                export(&mut file)?
            } else {
                let mut file = AtomicFile::create(path).map_err(cannot)?;
                let n = export(file.file_mut())?;
                file.commit().map_err(cannot)?;
                n
            }
        }
    };
    progress.finish();
    if let Some(path) = &args.output {
        let path = path.display().to_string();
        let _ = writeln!(
            std::io::stderr(),
            "exported {n} events to {}",
            audit_core::format::terminal_safe(&path)
        );
    }
    Ok(())
}

/// Whether `path` exists and is not a regular file (a device, a pipe, a socket).
fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}
