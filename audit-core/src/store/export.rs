//! Streams stored events out as CSV or JSON lines, in constant memory, for export and for
//! archiving before a purge. The rows and lines themselves come from [`crate::format`].

use std::io::Write;

use super::{PageRequest, Store, StoreError, StoredEvent};
use crate::format::{CsvWriter, write_json_line};
use crate::query::Filter;

/// Events per page while streaming.
const CHUNK: usize = 500;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row ([`CsvWriter`]).
    Csv,
    /// One JSON object per line (the canonical event JSON).
    JsonLines,
}

impl Format {
    /// The format's usual name: `csv` or `jsonl`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`Format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl std::fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown export format `{}`: use csv or jsonl",
            crate::format::terminal_safe(&self.0)
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    /// `csv`, or `jsonl` (also `json-lines`, `ndjson`), in any case.
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "json-lines" | "ndjson" => Ok(Format::JsonLines),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// Writes events one by one in a [`Format`].
#[derive(Debug)]
pub struct EventWriter<W: Write> {
    inner: Inner<W>,
}

#[derive(Debug)]
enum Inner<W: Write> {
    Csv(Box<CsvWriter<W>>),
    JsonLines { out: W, line: Vec<u8> },
}

impl<W: Write> EventWriter<W> {
    /// A writer of `format` into `out`.
    pub fn new(out: W, format: Format) -> Self {
        let inner = match format {
            Format::Csv => Inner::Csv(Box::new(CsvWriter::new(out))),
            Format::JsonLines => Inner::JsonLines {
                out,
                line: Vec::new(),
            },
        };
        EventWriter { inner }
    }

    /// Starts a CSV output with a UTF-8 byte order mark, for spreadsheets (see
    /// [`CsvWriter::with_bom`]); no effect on JSON lines.
    pub fn with_bom(mut self, bom: bool) -> Self {
        if let Inner::Csv(csv) = self.inner {
            self.inner = Inner::Csv(Box::new(csv.with_bom(bom)));
        }
        self
    }

    /// Writes no CSV header: for appending to a file that already has one.
    pub fn without_header(mut self) -> Self {
        if let Inner::Csv(csv) = self.inner {
            self.inner = Inner::Csv(Box::new(csv.without_header()));
        }
        self
    }

    /// Writes the CSV header now (it is otherwise written before the first event), so an
    /// export of nothing is still a valid CSV file.
    pub fn start(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Inner::Csv(csv) => csv.start(),
            Inner::JsonLines { .. } => Ok(()),
        }
    }

    /// Writes one event: a JSON line carries its log position (`seq`) and chain hash
    /// (`hash`), so an exported or archived stretch of the log can be verified
    /// (`audit verify --archive`); a CSV row carries the event's columns.
    pub fn write(&mut self, event: &StoredEvent) -> std::io::Result<()> {
        match &mut self.inner {
            Inner::Csv(csv) => csv.write(event),
            Inner::JsonLines { out, line } => {
                line.clear();
                write_json_line(event, line);
                out.write_all(line)
            }
        }
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Inner::Csv(csv) => csv.flush(),
            Inner::JsonLines { out, .. } => out.flush(),
        }
    }

    /// The inner writer (e.g. to sync a file). Call [`flush`](Self::flush) first: CSV rows
    /// are buffered.
    pub fn get_ref(&self) -> &W {
        match &self.inner {
            Inner::Csv(csv) => csv.get_ref(),
            Inner::JsonLines { out, .. } => out,
        }
    }

    /// Writes what is due (a CSV header), flushes and returns the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        match self.inner {
            Inner::Csv(csv) => (*csv).into_inner(),
            Inner::JsonLines { mut out, .. } => {
                out.flush()?;
                Ok(out)
            }
        }
    }
}

/// Streams every event `filter` selects (newest first) into `out` as `format`; returns how
/// many. `progress` is called with the running total after each chunk.
pub fn export(
    store: &mut dyn Store,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    export_to(store, filter, EventWriter::new(out, format), progress).map(|(n, _)| n)
}

/// Streams every event `filter` selects (newest first) through `writer` (for options such as
/// [`EventWriter::with_bom`]); returns how many, and the inner writer, flushed.
pub fn export_to<W: Write>(
    store: &mut dyn Store,
    filter: &Filter,
    mut writer: EventWriter<W>,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, W), StoreError> {
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
    Ok((total, writer.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_with_a_clear_error() {
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert_eq!("jsonl".parse::<Format>(), Ok(Format::JsonLines));
        assert_eq!("NDJSON".parse::<Format>(), Ok(Format::JsonLines));
        let err = "xml\u{1b}[2J".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r"unknown export format `xml\u001b[2J`: use csv or jsonl"
        );
    }

    #[test]
    fn json_lines_are_the_canonical_line_with_position_and_hash_and_csv_the_csv_row() {
        let event = StoredEvent {
            seq: 42,
            hash: crate::chain::ChainHash::from_bytes([0xab; 32]),
            event: crate::AuditEvent::builder("login")
                .resource_target("-1")
                .build(),
        };
        let mut json = EventWriter::new(Vec::new(), Format::JsonLines);
        json.write(&event).unwrap();
        let json = String::from_utf8(json.finish().unwrap()).unwrap();
        let line = crate::format::json_line(&event);
        assert_eq!(
            json,
            format!(
                "{{\"seq\":42,\"hash\":\"{}\",{}\n",
                "ab".repeat(32),
                &line[1..]
            )
        );
        assert_eq!(serde_json::from_str::<StoredEvent>(&json).unwrap(), event);

        let mut csv = EventWriter::new(Vec::new(), Format::Csv).with_bom(true);
        csv.write(&event).unwrap();
        let csv = String::from_utf8(csv.finish().unwrap()).unwrap();
        assert!(csv.starts_with("\u{feff}id,time,"));
        assert!(csv.contains(",\"'-1\","), "{csv}");
    }
}
