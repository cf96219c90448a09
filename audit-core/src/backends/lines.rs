//! Line-oriented backends: JSON lines and human-readable text, to any writer.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::{Backend, BackendError, Route};
use crate::{AuditEvent, render};

/// Writes each event as one line of JSON (the contract's keys) to `W`. A batch is written
/// with one `write_all`.
#[derive(Debug)]
pub struct JsonLinesBackend<W> {
    writer: W,
    buf: Vec<u8>,
    name: String,
    route: Route,
}

impl<W: Write + Send + 'static> JsonLinesBackend<W> {
    /// Writes to `writer`; named `json_lines`, route [`Route::Export`].
    pub fn new(writer: W) -> Self {
        JsonLinesBackend {
            writer,
            buf: Vec::new(),
            name: "json_lines".to_owned(),
            route: Route::Export,
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

impl JsonLinesBackend<Stdout> {
    /// Writes to stdout.
    pub fn stdout() -> Self {
        JsonLinesBackend::new(io::stdout())
    }
}

impl JsonLinesBackend<BufWriter<File>> {
    /// Appends to the file at `path`, creating it if needed.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn append_to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(JsonLinesBackend::new(BufWriter::new(open_append(path)?)))
    }
}

impl<W: Write + Send + 'static> Backend for JsonLinesBackend<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&self) -> Route {
        self.route
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.buf.clear();
        for event in events {
            render::write_json_line(event, &mut self.buf);
        }
        self.writer.write_all(&self.buf)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(self.writer.flush()?)
    }
}

/// Writes each event as one human-readable line to `W`, in the style of Coder's service logs
/// (see [`render`](crate::render)).
#[derive(Debug)]
pub struct TextBackend<W> {
    writer: W,
    buf: String,
    name: String,
    route: Route,
}

impl<W: Write + Send + 'static> TextBackend<W> {
    /// Writes to `writer`; named `text`, route [`Route::Export`].
    pub fn new(writer: W) -> Self {
        TextBackend {
            writer,
            buf: String::new(),
            name: "text".to_owned(),
            route: Route::Export,
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

impl TextBackend<Stdout> {
    /// Writes to stdout.
    pub fn stdout() -> Self {
        TextBackend::new(io::stdout())
    }
}

impl TextBackend<BufWriter<File>> {
    /// Appends to the file at `path`, creating it if needed.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn append_to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(TextBackend::new(BufWriter::new(open_append(path)?)))
    }
}

impl<W: Write + Send + 'static> Backend for TextBackend<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&self) -> Route {
        self.route
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), BackendError> {
        self.buf.clear();
        for event in events {
            render::write_text_line(event, &mut self.buf);
        }
        self.writer.write_all(self.buf.as_bytes())?;
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
