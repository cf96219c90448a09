//! The CSV row of an event, for spreadsheets: one row per event, times in UTC (RFC 3339), the
//! diff as one readable cell ([`diff_summary`](super::diff_summary)) plus the raw JSON.
//!
//! Quoting is the `csv` crate's (RFC 4180, `\r\n` between rows). A cell that a spreadsheet
//! would run as a formula is *defused* with a leading `'` ([`defuse_formula`]), and every cell
//! holding a `'` is quoted, so a defused cell reads `"'=…"`. An optional UTF-8 byte order mark
//! ([`CsvWriter::with_bom`]) makes spreadsheets that guess the encoding read the file as UTF-8.

use std::borrow::Cow;
use std::io::{self, Write};

use chrono::SecondsFormat;

use crate::AuditEvent;

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

/// Writes events as CSV rows, after a header row.
///
/// ```
/// use audit_core::format::CsvWriter;
///
/// let event = audit_core::AuditEvent::builder("login").resource_target("=1+1").build();
/// let mut csv = CsvWriter::new(Vec::new());
/// csv.write(&event).unwrap();
/// let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
/// assert!(text.starts_with("id,time,actor_id,"));
/// assert!(text.contains(r#","'=1+1","#));
/// ```
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: ::csv::Writer<W>,
    header_due: bool,
    bom: bool,
}

impl<W: Write> CsvWriter<W> {
    /// A writer into `out`; the header row is written before the first event (or by
    /// [`start`](Self::start)).
    pub fn new(out: W) -> Self {
        let out = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            // Quote every cell that holds a `'`: a defused formula is then written `"'=…"`.
            .comment(Some(b'\''))
            .from_writer(out);
        CsvWriter {
            out,
            header_due: true,
            bom: false,
        }
    }

    /// Starts the output with a UTF-8 byte order mark, for spreadsheets (default: none). The
    /// mark is written with the header, so not when appending without one.
    pub fn with_bom(mut self, bom: bool) -> Self {
        self.bom = bom;
        self
    }

    /// Writes no header row: for appending to a file that already has one.
    pub fn without_header(mut self) -> Self {
        self.header_due = false;
        self
    }

    /// Writes the byte order mark and the header now, if they are still due, so that an
    /// output with no event is still a valid CSV file.
    pub fn start(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.header_due) {
            // The mark is the first bytes of the file: the start of the first header cell.
            let first = if self.bom { "\u{FEFF}id" } else { "id" };
            let header = std::iter::once(first).chain(CSV_COLUMNS[1..].iter().copied());
            self.out.write_record(header)?;
        }
        Ok(())
    }

    /// Writes one event as a row.
    pub fn write(&mut self, event: &AuditEvent) -> io::Result<()> {
        self.start()?;
        for cell in cells(event) {
            self.out.write_field(defuse_formula(&cell).as_bytes())?;
        }
        // An empty record ends the row of fields written above.
        self.out.write_record(None::<&[u8]>)?;
        Ok(())
    }

    /// Flushes the buffered rows into the inner writer, and flushes it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The inner writer, e.g. to sync a file (call [`flush`](Self::flush) first: rows are
    /// buffered).
    pub fn get_ref(&self) -> &W {
        self.out.get_ref()
    }

    /// Writes what is due, flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.start()?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Prefixes with `'` a cell that a spreadsheet would run as a formula, so it shows as text.
///
/// A cell is a formula when its first character other than white space (spaces, tabs,
/// newlines, carriage returns, …) is `=`, `+`, `-` or `@` (or their full-width forms), or
/// when it starts with a tab or a carriage return.
///
/// ```
/// use audit_core::format::defuse_formula;
/// assert_eq!(defuse_formula("=SUM(A1:A9)"), "'=SUM(A1:A9)");
/// assert_eq!(defuse_formula("  =1+1"), "'  =1+1");
/// assert_eq!(defuse_formula("\n@cmd"), "'\n@cmd");
/// assert_eq!(defuse_formula("a=b"), "a=b");
/// ```
pub fn defuse_formula(cell: &str) -> Cow<'_, str> {
    let starts_formula = cell
        .trim_start()
        .starts_with(['=', '+', '-', '@', '＝', '＋', '－', '＠']);
    if starts_formula || cell.starts_with(['\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn cells(e: &AuditEvent) -> [String; 18] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
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
        super::diff_summary(&e.diff),
        serde_json::to_string(&e.diff).unwrap_or_default(),
        serde_json::to_string(&e.additional_fields).unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cell: &str) -> String {
        let mut w = ::csv::WriterBuilder::new()
            .comment(Some(b'\''))
            .from_writer(Vec::new());
        w.write_record([defuse_formula(cell).as_ref()]).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn formulas_are_neutralised_and_quotes_escaped() {
        assert_eq!(row("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"\n");
        assert_eq!(row("+1"), "\"'+1\"\n");
        assert_eq!(row("-2"), "\"'-2\"\n");
        assert_eq!(row("@SUM(A1)"), "\"'@SUM(A1)\"\n");
        assert_eq!(row("plain"), "plain\n");
        assert_eq!(row("a,b"), "\"a,b\"\n");
        assert_eq!(row("line\nbreak"), "\"line\nbreak\"\n");
        assert_eq!(row("a=b"), "a=b\n");
    }

    #[test]
    fn formulas_behind_leading_white_space_are_neutralised() {
        for cell in [
            " =1+1",
            "   +1",
            "\t-2",
            "\n@SUM(A1)",
            "\r=1",
            "\r\n=cmd|' /C calc'!A0",
            "\u{a0}=1",
            "\u{3000}=1",
            "＝1+1",
            "\t",
            "\rplain",
        ] {
            let defused = defuse_formula(cell);
            assert_eq!(defused, format!("'{cell}"), "{cell:?}");
        }
        for cell in ["", " ", "plain", "a=b", "1-2", "x@y", " x = 1"] {
            assert_eq!(defuse_formula(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn the_header_comes_once_with_an_optional_bom() {
        let e = AuditEvent::builder("login").build();
        let mut plain = CsvWriter::new(Vec::new());
        plain.write(&e).unwrap();
        plain.write(&e).unwrap();
        let plain = String::from_utf8(plain.into_inner().unwrap()).unwrap();
        assert!(plain.starts_with("id,time,"));
        assert_eq!(plain.matches("id,time,").count(), 1);
        assert_eq!(plain.matches("\r\n").count(), 3);

        let bom = CsvWriter::new(Vec::new())
            .with_bom(true)
            .into_inner()
            .unwrap();
        assert!(bom.starts_with("\u{FEFF}id,time,".as_bytes()));

        let mut appended = CsvWriter::new(Vec::new()).with_bom(true).without_header();
        appended.write(&e).unwrap();
        let appended = appended.into_inner().unwrap();
        assert!(!appended.starts_with("\u{FEFF}".as_bytes()) && !appended.starts_with(b"id,"));
    }
}
