//! Line-oriented backends: JSON lines and human-readable text, to a file or any writer, with
//! exact counting (see [`LinesBackend`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Stdout, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::AuditEvent;
use crate::backend::{Backend, BackendError};
use crate::format;

/// Writes each event as one line of JSON (the contract's keys, [`format::json_line`]) to `W`.
pub type JsonLinesBackend<W> = LinesBackend<W, JsonLines>;

/// Writes each event as one human-readable line ([`format::text_line`]) to `W`, in the style
/// of Coder's service logs.
pub type TextBackend<W> = LinesBackend<W, TextLines>;

/// How a [`LinesBackend`] renders events: [`JsonLines`] or [`TextLines`].
pub trait LineFormat: Send + 'static {
    /// The backend's default name in stats.
    const NAME: &'static str;
    /// Appends one event as one line, with its `\n`, to `out`. The line holds no other `\n`.
    fn write_line(event: &AuditEvent, out: &mut Vec<u8>);
}

/// One JSON object per line.
#[derive(Debug)]
pub struct JsonLines;

impl LineFormat for JsonLines {
    const NAME: &'static str = "json_lines";
    fn write_line(event: &AuditEvent, out: &mut Vec<u8>) {
        format::write_json_line(event, out);
    }
}

/// One human-readable line per event.
#[derive(Debug)]
pub struct TextLines;

impl LineFormat for TextLines {
    const NAME: &'static str = "text";
    fn write_line(event: &AuditEvent, out: &mut Vec<u8>) {
        // Writing to a Vec never fails.
        let _ = writeln!(out, "{}", format::Text::new(event));
    }
}

/// When the events of a batch count as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once the batch was written and the writer flushed: the operating system has the bytes
    /// (the default). A crash of the process loses nothing written; a crash of the machine
    /// may lose the last moments.
    #[default]
    Flush,
    /// Once the file was also synced to its disk (`fsync`) after each batch. Only for files
    /// ([`LinesBackend::append_to_file`]).
    Sync,
}

/// A backend that writes one line per event to `W`, in the format `F`. Use it through
/// [`JsonLinesBackend`] and [`TextBackend`].
///
/// Counting is exact: an event counts as written only once its whole line was accepted by
/// the writer and flushed as the backend's [`Durability`] says. A write that fails part-way
/// through a batch reports the events whose lines did not get through
/// ([`BackendError::rejected`]), and never leaves a partial line in front of the next record:
/// in a file it is cut off again; in a stream (a pipe, a socket) it cannot be taken back, so
/// the next batch starts with a newline and the error says a partial line remains.
#[derive(Debug)]
pub struct LinesBackend<W, F> {
    writer: W,
    /// A second handle to the file `writer` writes to, to sync it and cut off a torn line.
    file: Option<File>,
    durability: Durability,
    /// The rendered batch, and where each event's line ends in it.
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// A failed write left a partial line that could not be removed: the next batch first
    /// ends it.
    torn: bool,
    name: String,
    format: std::marker::PhantomData<F>,
}

impl<W: Write + Send + 'static, F: LineFormat> LinesBackend<W, F> {
    /// Writes to `writer`, flushing it after each batch; named `json_lines` or `text`.
    pub fn new(writer: W) -> Self {
        LinesBackend {
            writer,
            file: None,
            durability: Durability::Flush,
            buf: Vec::new(),
            ends: Vec::new(),
            torn: false,
            name: F::NAME.to_owned(),
            format: std::marker::PhantomData,
        }
    }

    /// Sets the name shown in stats.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The writer.
    pub fn into_inner(self) -> W {
        self.writer
    }

    /// The file's length, when writing to a file.
    fn file_len(&self) -> Option<u64> {
        self.file.as_ref()?.metadata().ok().map(|m| m.len())
    }

    /// Cuts the file back to `len` if it is `expected` bytes long, that is, if nobody else
    /// appended since this batch started. Returns whether it did.
    fn cut_file(&self, expected: u64, len: u64) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        file.metadata().is_ok_and(|m| m.len() == expected) && file.set_len(len).is_ok()
    }

    /// Makes the batch count: flush, and sync if asked.
    fn make_durable(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        match (&self.file, self.durability) {
            (Some(file), Durability::Sync) => file.sync_data(),
            _ => Ok(()),
        }
    }

    /// Handles a write that failed after `accepted` bytes of the batch: removes or ends the
    /// partial line, makes the complete lines count, and says which events failed.
    fn failed_write(
        &mut self,
        events: &[AuditEvent],
        start: Option<u64>,
        prefix: usize,
        accepted: usize,
        error: io::Error,
    ) -> BackendError {
        let complete = self.ends.iter().take_while(|&&end| end <= accepted).count();
        let line_start = match complete {
            0 => prefix.min(accepted),
            n => self.ends[n - 1],
        };
        let partial = accepted - line_start;
        let mut note = String::new();
        if partial > 0 || accepted < prefix {
            let cut = start.is_some_and(|start| {
                self.cut_file(start + accepted as u64, start + line_start as u64)
            });
            self.torn = !cut || accepted < prefix;
            note = if cut {
                format!("; the partial line ({partial} bytes) was cut off")
            } else {
                format!(
                    "; a partial line ({partial} bytes) remains, the next batch starts on a new line"
                )
            };
        } else {
            self.torn = false;
        }
        let written = if complete > 0 && self.make_durable().is_ok() {
            complete
        } else {
            0
        };
        let message = format!(
            "write failed after {written} of {} events{note}",
            events.len()
        );
        let kind = error.kind();
        let error = BackendError::with_source(message, error);
        let error = if written > 0 {
            error.rejected(events[written..].iter().map(|e| e.id).collect())
        } else {
            error
        };
        match kind {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock if written == 0 => {
                error.retryable()
            }
            _ => error,
        }
    }
}

impl<F: LineFormat> LinesBackend<Stdout, F> {
    /// Writes to stdout.
    pub fn stdout() -> Self {
        LinesBackend::new(io::stdout())
    }
}

impl<F: LineFormat> LinesBackend<File, F> {
    /// Appends to the file at `path`, creating it if needed. A failed write never leaves a
    /// partial line in the file (see [`LinesBackend`]).
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn append_to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let handle = file.try_clone()?;
        let mut backend = LinesBackend::new(file);
        backend.file = Some(handle);
        Ok(backend)
    }

    /// Sets when a batch counts as written (default [`Durability::Flush`]).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

impl<W: Write + Send + 'static, F: LineFormat> Backend for LinesBackend<W, F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.buf.clear();
        self.ends.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        let prefix = self.buf.len();
        for event in events {
            F::write_line(event, &mut self.buf);
            self.ends.push(self.buf.len());
        }
        let start = self.file_len();
        let (accepted, error) = write_counting(&mut self.writer, &self.buf);
        if let Some(error) = error {
            return Err(self.failed_write(events, start, prefix, accepted, error));
        }
        self.torn = false;
        if let Err(error) = self.make_durable() {
            // Nothing of the batch counts: take it back out of a file.
            if let Some(start) = start {
                let _ = self.cut_file(start + self.buf.len() as u64, start);
            }
            return Err(BackendError::with_source(
                format!("flush failed, {} events not written", events.len()),
                error,
            ));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(self.make_durable()?)
    }
}

/// Writes `buf`, counting the bytes the writer accepted before an error.
fn write_counting(writer: &mut impl Write, mut buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut accepted = 0;
    while !buf.is_empty() {
        match writer.write(buf) {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "the writer took no more bytes");
                return (accepted, Some(e));
            }
            Ok(n) => {
                accepted += n;
                buf = &buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (accepted, Some(e)),
        }
    }
    (accepted, None)
}

/// A clonable in-memory writer: give one clone to a backend and read the other.
///
/// ```
/// use std::io::Write;
/// let buf = audit_core::backends::SharedBuffer::new();
/// buf.clone().write_all(b"hello").unwrap();
/// assert_eq!(buf.contents(), "hello");
/// ```
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        SharedBuffer::default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `budget` bytes in total (in chunks of at most `chunk`), then fails as a full
    /// disk does.
    struct Leaky<W> {
        out: W,
        budget: usize,
        chunk: usize,
    }

    impl<W: Write> Write for Leaky<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            let n = buf.len().min(self.budget).min(self.chunk);
            self.budget -= n;
            self.out.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            self.out.flush()
        }
    }

    fn events(n: usize) -> Vec<AuditEvent> {
        (0..n)
            .map(|i| AuditEvent::builder("write").field("i", i).build())
            .collect()
    }

    fn line_len(e: &AuditEvent) -> usize {
        format::json_line(e).len() + 1
    }

    #[test]
    fn a_stream_failing_mid_batch_rejects_the_unwritten_events_and_ends_the_torn_line() {
        let out = SharedBuffer::new();
        let batch = events(4);
        let budget = line_len(&batch[0]) + line_len(&batch[1]) + 10;
        let mut backend = JsonLinesBackend::new(Leaky {
            out: out.clone(),
            budget,
            chunk: 7,
        });
        let err = backend.write_batch(&batch).unwrap_err();
        let rejected: Vec<_> = batch[2..].iter().map(|e| e.id).collect();
        assert_eq!(err.rejected_events(), Some(&rejected[..]));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("after 2 of 4 events"), "{err}");
        assert!(
            err.to_string().contains("partial line (10 bytes) remains"),
            "{err}"
        );

        // The writer recovers: the next batch starts on a new line.
        backend.writer.budget = usize::MAX;
        let more = events(2);
        backend.write_batch(&more).unwrap();
        let text = out.contents();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[2].len(), 10, "the torn fragment stands alone");
        for (line, event) in [lines[0], lines[1], lines[3], lines[4]]
            .iter()
            .zip([&batch[0], &batch[1], &more[0], &more[1]])
        {
            let back: AuditEvent = serde_json::from_str(line).unwrap();
            assert_eq!(back.id, event.id);
        }
    }

    #[test]
    fn a_file_failing_mid_batch_is_cut_back_to_its_last_complete_line() {
        let path = std::env::temp_dir().join(format!("audit-lines-{}.jsonl", uuid::Uuid::now_v7()));
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let file = OpenOptions::new().append(true).open(&path).unwrap();
        let batch = events(3);
        let mut backend = JsonLinesBackend::new(Leaky {
            out: file.try_clone().unwrap(),
            budget: line_len(&batch[0]) + 25,
            chunk: 16,
        });
        backend.file = Some(file);
        backend.durability = Durability::Sync;
        let err = backend.write_batch(&batch).unwrap_err();
        assert!(
            err.to_string()
                .contains("partial line (25 bytes) was cut off"),
            "{err}"
        );
        assert_eq!(err.rejected_events().map(<[_]>::len), Some(2));
        assert!(!backend.torn);
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            content,
            format!("{{\"earlier\":1}}\n{}\n", format::json_line(&batch[0]))
        );

        backend.writer.budget = usize::MAX;
        backend.write_batch(&batch[1..]).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            content.lines().count(),
            4,
            "no empty or glued line: {content}"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_stream_that_takes_nothing_fails_the_whole_batch() {
        let mut backend = JsonLinesBackend::new(Leaky {
            out: SharedBuffer::new(),
            budget: 0,
            chunk: 1,
        });
        let err = backend.write_batch(&events(3)).unwrap_err();
        assert_eq!(err.rejected_events(), None);
        assert!(err.to_string().contains("after 0 of 3 events"), "{err}");
        assert!(!backend.torn);
    }

    #[test]
    fn dev_full_counts_nothing_as_written() {
        let Ok(mut backend) = JsonLinesBackend::append_to_file("/dev/full") else {
            return; // not a Linux-like system
        };
        let err = backend.write_batch(&events(3)).unwrap_err();
        assert_eq!(err.rejected_events(), None);
        assert!(err.to_string().contains("after 0 of 3 events"), "{err}");
        let mut text = TextBackend::append_to_file("/dev/full")
            .unwrap()
            .with_durability(Durability::Sync);
        assert!(text.write_batch(&events(1)).is_err());
    }
}
