//! The built-in backends.
//!
//! * [`JsonLinesBackend`]: one JSON object per line ([`format::json_line`](crate::format::json_line)) to any
//!   [`Write`](std::io::Write): stdout, a file, a `Vec<u8>`, a socket.
//! * [`TextBackend`]: one human-readable line per event ([`format::text_line`](crate::format::text_line)).
//! * [`MemoryBackend`]: keeps events in memory, for tests: `memory.contains(Match::action("write")…)`.
//! * `TracingBackend` (cargo feature `tracing`): one `tracing` event per audit event, target `audit`.
//! * [`StoreBackend`]: appends to a [`Store`](crate::store::Store) (SQLite, Postgres).
//!
//! Each takes every event; narrow one with [`Backend::with_filter`](crate::Backend::with_filter)
//! (or a [`Router`](crate::Router)'s filters).
//!
//! ```
//! use audit_core::{AuditEvent, Auditor};
//! use audit_core::backends::{JsonLinesBackend, SharedBuffer};
//!
//! let out = SharedBuffer::new();
//! let auditor = Auditor::builder().backend(JsonLinesBackend::new(out.clone())).build()?;
//! auditor.record(AuditEvent::builder("login").build()).unwrap();
//! auditor.shutdown();
//! assert!(out.contents().starts_with(r#"{"id":""#));
//! # Ok::<(), std::io::Error>(())
//! ```

mod lines;
mod memory;
mod store;
#[cfg(feature = "tracing")]
mod tracing;

pub use lines::{
    Durability, JsonLines, JsonLinesBackend, LineFormat, LinesBackend, SharedBuffer, TextBackend,
    TextLines,
};
pub use memory::{Match, MemoryBackend};
pub use store::StoreBackend;
#[cfg(feature = "tracing")]
pub use tracing::TracingBackend;
