//! Streams stored events out as CSV or JSON lines, in constant memory, for export and for
//! archiving before a purge.
//!
//! CSV is for spreadsheets: one row per event, times in UTC (RFC 3339), the diff flattened to
//! one readable cell (`name: "dev" → "prod"; agent_token: changed (secret)`) plus the raw JSON,
//! and every cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR)
//! prefixed with `'`.

use std::io::Write;

use chrono::SecondsFormat;

use super::{PageRequest, Store, StoreError};
use crate::query::Filter;
use crate::{AuditEvent, Change};

/// Events per page while streaming.
const CHUNK: usize = 500;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line (the canonical event JSON).
    JsonLines,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "json-lines" | "ndjson" => Ok(Format::JsonLines),
            other => Err(format!("unknown export format `{other}`: use csv or jsonl")),
        }
    }
}

/// Writes events one by one in a [`Format`].
pub struct EventWriter<W: Write> {
    out: W,
    format: Format,
    header_written: bool,
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "time",
    "actor_id",
    "username",
    "email",
    "organization_id",
    "ip",
    "user_agent",
    "resource_type",
    "resource_id",
    "resource_target",
    "resource_icon",
    "action",
    "status_code",
    "request_id",
    "changes",
    "diff_json",
    "additional_fields",
];

impl<W: Write> EventWriter<W> {
    /// A writer of `format` into `out`.
    pub fn new(out: W, format: Format) -> Self {
        EventWriter {
            out,
            format,
            header_written: false,
        }
    }

    /// Writes the CSV header now (it is otherwise written before the first event), so an
    /// export of nothing is still a valid CSV file.
    pub fn start(&mut self) -> std::io::Result<()> {
        if self.format == Format::Csv && !self.header_written {
            self.header_written = true;
            write_csv_row(
                &mut self.out,
                CSV_COLUMNS.iter().map(|c| std::borrow::Cow::Borrowed(*c)),
            )?;
        }
        Ok(())
    }

    /// Writes one event.
    pub fn write(&mut self, event: &AuditEvent) -> std::io::Result<()> {
        match self.format {
            Format::JsonLines => {
                serde_json::to_writer(&mut self.out, event)?;
                self.out.write_all(b"\n")
            }
            Format::Csv => {
                self.start()?;
                write_csv_row(
                    &mut self.out,
                    csv_cells(event).into_iter().map(std::borrow::Cow::Owned),
                )
            }
        }
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// The inner writer (e.g. to sync a file).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.start()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Streams every event `filter` selects (newest first) into `out`; returns how many.
/// `progress` is called with the running total after each chunk.
pub fn export(
    store: &mut dyn Store,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    let mut writer = EventWriter::new(out, format);
    writer.start()?;
    let mut request = PageRequest::first(CHUNK);
    let mut total = 0u64;
    loop {
        let page = store.page(filter, &request)?;
        for event in &page.events {
            writer.write(event)?;
        }
        total += page.events.len() as u64;
        progress(total);
        match page.next {
            Some(next) => request.cursor = Some(next),
            None => break,
        }
    }
    writer.finish()?;
    Ok(total)
}

fn csv_cells(e: &AuditEvent) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        e.id.to_string(),
        e.time.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.actor.id.clone(),
        e.actor.username.clone(),
        e.actor.email.clone(),
        opt(&e.organization_id),
        e.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        opt(&e.user_agent),
        e.resource_type.clone(),
        e.resource_id.clone(),
        e.resource_target.clone(),
        e.resource_icon.clone(),
        e.action.clone(),
        e.status_code.to_string(),
        e.request_id.map(|id| id.to_string()).unwrap_or_default(),
        flatten_diff(e),
        serde_json::to_string(&e.diff).unwrap_or_default(),
        serde_json::to_string(&e.additional_fields).unwrap_or_default(),
    ]
}

/// `name: "dev" → "prod"; ttl: (none) → 3600; agent_token: changed (secret)`.
fn flatten_diff(e: &AuditEvent) -> String {
    let value = |v: &Option<serde_json::Value>| match v {
        Some(v) => v.to_string(),
        None => "(none)".to_owned(),
    };
    e.diff
        .iter()
        .map(|(name, change)| match change {
            Change::Tracked { old, new } => format!("{name}: {} → {}", value(old), value(new)),
            Change::Secret => format!("{name}: changed (secret)"),
            Change::Unserializable { error } => {
                format!("{name}: changed (unserializable: {error})")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn write_csv_row<'a>(
    out: &mut impl Write,
    cells: impl Iterator<Item = std::borrow::Cow<'a, str>>,
) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_csv_cell(&mut line, &cell);
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

/// Quotes a cell when needed, and neutralises spreadsheet formulas with a leading `'`.
fn push_csv_cell(line: &mut String, cell: &str) {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = formula || cell.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        line.push('"');
    }
    if formula {
        line.push('\'');
    }
    for ch in cell.chars() {
        if ch == '"' {
            line.push('"');
        }
        line.push(ch);
    }
    if needs_quotes {
        line.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = String::new();
        push_csv_cell(&mut out, s);
        out
    }

    #[test]
    fn formulas_are_neutralised_and_quotes_escaped() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "\"'+1\"");
        assert_eq!(cell("-2"), "\"'-2\"");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("a=b"), "a=b");
    }

    #[test]
    fn formats_parse_with_a_clear_error() {
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert_eq!("jsonl".parse::<Format>(), Ok(Format::JsonLines));
        assert!(
            "xml"
                .parse::<Format>()
                .unwrap_err()
                .contains("csv or jsonl")
        );
    }
}
