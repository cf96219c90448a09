//! Line-oriented backends: JSON lines and human-readable text, to any writer.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::{Backend, BackendError, Route};
use crate::{AuditEvent, render};

/// Writes each event as one line of JSON (the contract's keys) to `W`. A batch is written
/// with one `write_all`.
pub type JsonLinesBackend<W> = LinesBackend<W, JsonLines>;

/// Writes each event as one human-readable line to `W`, in the style of Coder's service logs
/// (see [`render`](crate::render)).
pub type TextBackend<W> = LinesBackend<W, TextLines>;

/// How a [`LinesBackend`] renders events: [`JsonLines`] or [`TextLines`].
pub trait LineFormat: Send + 'static {
    /// The backend's default name in stats.
    const NAME: &'static str;
    /// Appends one line per event to `out`.
    fn render(events: &[AuditEvent], out: &mut Vec<u8>);
}

/// One JSON object per line.
#[derive(Debug)]
pub struct JsonLines;

impl LineFormat for JsonLines {
    const NAME: &'static str = "json_lines";
    fn render(events: &[AuditEvent], out: &mut Vec<u8>) {
        for event in events {
            render::write_json_line(event, out);
        }
    }
}

/// One human-readable line per event.
#[derive(Debug)]
pub struct TextLines;

impl LineFormat for TextLines {
    const NAME: &'static str = "text";
    fn render(events: &[AuditEvent], out: &mut Vec<u8>) {
        // The buffer only ever holds UTF-8 text, so it is lent to the renderer as a String.
        let mut text = String::from_utf8(std::mem::take(out)).unwrap_or_default();
        for event in events {
            render::write_text_line(event, &mut text);
        }
        *out = text.into_bytes();
    }
}

/// A backend that writes one line per event to `W`, in the format `F`. Use it through
/// [`JsonLinesBackend`] and [`TextBackend`].
#[derive(Debug)]
pub struct LinesBackend<W, F> {
    writer: W,
    buf: Vec<u8>,
    name: String,
    route: Route,
    format: std::marker::PhantomData<F>,
}

impl<W: Write + Send + 'static, F: LineFormat> LinesBackend<W, F> {
    /// Writes to `writer`; named `json_lines` or `text`, route [`Route::Export`].
    pub fn new(writer: W) -> Self {
        LinesBackend {
            writer,
            buf: Vec::new(),
            name: F::NAME.to_owned(),
            route: Route::Export,
            format: std::marker::PhantomData,
        }
    }

    /// Sets the name shown in stats.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets which events it takes.
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// The writer.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<F: LineFormat> LinesBackend<Stdout, F> {
    /// Writes to stdout.
    pub fn stdout() -> Self {
        LinesBackend::new(io::stdout())
    }
}

impl<F: LineFormat> LinesBackend<BufWriter<File>, F> {
    /// Appends to the file at `path`, creating it if needed.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn append_to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(LinesBackend::new(BufWriter::new(open_append(path)?)))
    }
}

impl<W: Write + Send + 'static, F: LineFormat> Backend for LinesBackend<W, F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&self) -> Route {
        self.route
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.buf.clear();
        F::render(events, &mut self.buf);
        self.writer.write_all(&self.buf)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(self.writer.flush()?)
    }
}

fn open_append(path: impl AsRef<Path>) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
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
