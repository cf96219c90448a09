//! `audit tail`: prints the newest matching events, then follows new ones as they are stored.

use std::io::{IsTerminal, Write};

use audit_core::store::MAX_PAGE_SIZE;

use super::Context;
use crate::cli::TailArgs;
use crate::error::Failure;
use crate::output::print_event;

pub(super) fn run(cx: &mut Context, args: TailArgs) -> Result<(), Failure> {
    let filter = cx.filter(&args.filter)?;
    let store = &mut *cx.store;
    let mut out = std::io::stdout().lock();
    let max = args.max_events.unwrap_or(u64::MAX);
    let mut seen = 0u64;
    // The log position followed: events are shown in commit order, none missed.
    let mut position = match args.after {
        Some(after) => after,
        None => {
            let mut position = store.head()?.head;
            if args.last > 0 {
                let events = store.newer(&filter, None, args.last.min(MAX_PAGE_SIZE))?;
                // The newest `last` events, but never more than `--max-events`.
                let shown = usize::try_from(max).unwrap_or(usize::MAX).min(events.len());
                for event in &events[..shown] {
                    print_event(&mut out, event, args.json)?;
                    position = position.max(event.seq);
                }
                seen += shown as u64;
            }
            position
        }
    };
    out.flush()?;
    if std::io::stderr().is_terminal() {
        let _ = writeln!(std::io::stderr(), "following new events (Ctrl-C to stop)…");
    }
    while seen < max {
        // Read before the query: every match up to it is in the answer when the answer is
        // not full, since positions are assigned at commit.
        let head = store.head()?.head;
        let events = store.newer(&filter, Some(position), MAX_PAGE_SIZE)?;
        for event in &events {
            print_event(&mut out, event, args.json)?;
            seen += 1;
            position = event.seq;
            if seen >= max {
                break;
            }
        }
        out.flush()?;
        if events.len() < MAX_PAGE_SIZE && seen < max {
            position = position.max(head);
            std::thread::sleep(args.interval);
        }
    }
    out.flush()?;
    Ok(())
}
