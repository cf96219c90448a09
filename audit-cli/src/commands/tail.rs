//! `audit tail`: prints the newest matching events, then follows new ones as they are stored.

use std::io::{IsTerminal, Write};

use audit_core::store::{Cursor, MAX_PAGE_SIZE};

use super::Context;
use crate::cli::TailArgs;
use crate::error::Failure;
use crate::output::print_event;

pub fn run(cx: &mut Context, args: TailArgs) -> Result<(), Failure> {
    let filter = cx.filter(&args.filter)?;
    let store = &mut *cx.store;
    let mut out = std::io::stdout().lock();
    let max = args.max_events.unwrap_or(u64::MAX);
    let mut seen = 0u64;
    let mut cursor = if args.after.is_some() {
        args.after
    } else if args.last > 0 {
        let events = store.newer(&filter, None, args.last.min(MAX_PAGE_SIZE))?;
        // The newest `last` events, but never more than `--max-events`.
        let shown = usize::try_from(max).unwrap_or(usize::MAX).min(events.len());
        for event in &events[..shown] {
            print_event(&mut out, event, args.json)?;
        }
        seen += shown as u64;
        events[..shown].last().map(Cursor::of).or(store.newest()?)
    } else {
        store.newest()?
    };
    out.flush()?;
    if std::io::stderr().is_terminal() {
        let _ = writeln!(std::io::stderr(), "following new events (Ctrl-C to stop)…");
    }
    while seen < max {
        let events = store.newer(&filter, cursor.as_ref(), MAX_PAGE_SIZE)?;
        for event in &events {
            print_event(&mut out, event, args.json)?;
            seen += 1;
            cursor = Some(Cursor::of(event));
            if seen >= max {
                break;
            }
        }
        out.flush()?;
        if events.len() < MAX_PAGE_SIZE && seen < max {
            std::thread::sleep(args.interval);
        }
    }
    out.flush()?;
    Ok(())
}
