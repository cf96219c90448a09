//! `audit stats`: rows and disk usage.

use std::io::{BufWriter, Write};

use audit_core::store::Count;
use chrono::{DateTime, SecondsFormat, Utc};

use super::Context;
use crate::cli::StatsArgs;
use crate::error::Failure;
use crate::output::human_bytes;

pub(super) fn run(cx: &mut Context, args: StatsArgs) -> Result<(), Failure> {
    let stats = cx.store.stats()?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &stats).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "-".into())
        };
        writeln!(out, "rows          {}", Count::Exact(stats.rows))?;
        writeln!(out, "table size    {}", human_bytes(stats.table_bytes))?;
        writeln!(out, "indexes size  {}", human_bytes(stats.index_bytes))?;
        writeln!(out, "total size    {}", human_bytes(stats.total_bytes))?;
        writeln!(out, "oldest event  {}", time(stats.oldest))?;
        writeln!(out, "newest event  {}", time(stats.newest))?;
        if !stats.partitions.is_empty() {
            writeln!(out, "partitions    {}", stats.partitions.join(", "))?;
        }
    }
    out.flush()?;
    Ok(())
}
