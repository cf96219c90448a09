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

pub fn run(cx: &mut Context, args: ExportArgs) -> Result<(), Failure> {
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
    let n = match &args.output {
        None => {
            let out = BufWriter::new(std::io::stdout().lock());
            let writer = EventWriter::new(out, args.format.into()).with_bom(args.bom);
            let (n, mut out) = export_to(&mut *cx.store, &filter, writer, &mut on_chunk)?;
            out.flush()?;
            n
        }
        Some(path) if is_special(path) => {
            // A device or a pipe (`/dev/stdout`, a FIFO): written in place, never replaced.
            let cannot = |e| Failure::context(format!("cannot write `{}`", path.display()), e);
            let file = OpenOptions::new().write(true).open(path).map_err(cannot)?;
            let writer = EventWriter::new(BufWriter::new(file), args.format.into());
            let (n, out) = export_to(
                &mut *cx.store,
                &filter,
                writer.with_bom(args.bom),
                &mut on_chunk,
            )?;
            out.into_inner().map_err(|e| cannot(e.into_error()))?;
            n
        }
        Some(path) => {
            let cannot = |e| Failure::context(format!("cannot write `{}`", path.display()), e);
            let mut file = AtomicFile::create(path).map_err(cannot)?;
            let out = BufWriter::new(file.file_mut());
            let writer = EventWriter::new(out, args.format.into()).with_bom(args.bom);
            let (n, out) = export_to(&mut *cx.store, &filter, writer, &mut on_chunk)?;
            out.into_inner().map_err(|e| cannot(e.into_error()))?;
            file.commit().map_err(cannot)?;
            n
        }
    };
    progress.finish();
    if let Some(path) = &args.output {
        let _ = writeln!(
            std::io::stderr(),
            "exported {n} events to {}",
            path.display()
        );
    }
    Ok(())
}

/// Whether `path` exists and is not a regular file (a device, a pipe, a socket).
fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}
