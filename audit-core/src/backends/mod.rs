//! The built-in backends.
//!
//! * [`JsonLinesBackend`]: one JSON object per line ([`render::json_line`](crate::render::json_line)) to any
//!   [`Write`](std::io::Write): stdout, a file, a `Vec<u8>`, a socket.
//! * [`TextBackend`]: one human-readable line per event ([`render::text_line`](crate::render::text_line)).
//! * [`MemoryBackend`]: keeps events in memory, for tests: `memory.contains(Match::action("write")…)`.
//! * `TracingBackend` (cargo feature `tracing`): one `tracing` event per audit event, target `audit`.
//! * [`StoreBackend`]: appends to a [`Store`](crate::store::Store) (SQLite, Postgres).
//!
//! All are exporters ([`Route::Export`](crate::Route::Export)) except [`MemoryBackend`], which
//! takes every event that is not dropped (change it with `with_route`), and [`StoreBackend`],
//! a store ([`Route::Store`](crate::Route::Store)).
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
    JsonLines, JsonLinesBackend, LineFormat, LinesBackend, SharedBuffer, TextBackend, TextLines,
};
pub use memory::{Match, MemoryBackend};
pub use store::StoreBackend;
#[cfg(feature = "tracing")]
pub use tracing::TracingBackend;
