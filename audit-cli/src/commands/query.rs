//! `audit query`: one page of matching events, newest first.

use std::io::{BufWriter, Write};

use audit_core::store::PageRequest;

use super::Context;
use crate::cli::QueryArgs;
use crate::error::Failure;
use crate::output::print_event;

pub(super) fn run(cx: &mut Context, args: QueryArgs) -> Result<(), Failure> {
    let filter = cx.filter(&args.filter)?;
    let page = cx.store.page(
        &filter,
        &PageRequest {
            limit: args.limit,
            cursor: args.cursor,
        },
    )?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for event in &page.events {
        print_event(&mut out, event, args.json)?;
    }
    if !args.json {
        if page.events.is_empty() {
            writeln!(out, "no matching events")?;
        }
        if args.count {
            writeln!(out, "matches: {}", cx.store.count(&filter, 10_000)?)?;
        }
        match &page.next {
            Some(next) => writeln!(out, "next page: --cursor {next}")?,
            None if !page.events.is_empty() => writeln!(out, "(end of results)")?,
            None => {}
        }
    }
    out.flush()?;
    Ok(())
}
