//! Serve an audit log over HTTP: Coder's `GET /api/v2/audit`, a streamed export, live
//! streams (Server-Sent Events and WebSocket) that survive reconnects, and access control
//! that the application decides.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v2/audit?q=&limit=&offset=&after=` | one page, newest first: `{"audit_logs": […], "count": N, "count_capped": bool, "next_cursor": …}` |
//! | `GET /api/v2/audit/export?q=&format=csv\|jsonl` | everything `q` selects, as an attachment, streamed |
//! | `GET /api/v2/audit/stream?q=&after=` | Server-Sent Events, in commit order, resumable with `Last-Event-ID` |
//! | `GET /api/v2/audit/watch?q=&after=` | the same over a WebSocket |
//! | `GET /api/v2/audit/verify` | owners only: is the log intact? the hash chain recomputed, with the stored checkpoints |
//! | `GET /healthz` | 200 once the store answers |
//! | `GET /audit?q=` | the web viewer: the log as a page ([`Viewer`]; sign-in, live rows, completion under `/audit/…`) |
//!
//! Mount [`router`] in an application (it keeps its own layers and routes), or run it
//! alone with [`serve`] (what `audit serve` does, with [`Viewer::token_sign_in`]). Who may read is the application's
//! decision, through an [`Authorizer`]; owners read everything, auditors their
//! organizations ([`Scope`]); the scope is part of every store query. Every read and export
//! of the log is itself recorded through the application's
//! [`Auditor`](audit_core::Auditor), by the reader.
//!
//! ```no_run
//! use audit_http::{AuditApi, Principal, Readers, Rejection};
//!
//! # fn app(auditor: audit_core::Auditor) -> Result<axum::Router, Box<dyn std::error::Error>> {
//! let api = AuditApi::builder(Readers::url("postgres://audit@db/audit".parse()?))
//!     // Who is calling is the application's decision: here, what its session layer found.
//!     .authorizer(|parts: &axum::http::request::Parts| {
//!         parts.extensions.get::<Principal>().cloned().ok_or(Rejection::Unauthenticated)
//!     })
//!     // Reads of the log are recorded through the application's own auditor.
//!     .auditor(auditor)
//!     .build()?;
//! let app = axum::Router::new().merge(audit_http::router(api));
//! # Ok(app) }
//! ```
//!
//! Store calls run on a bounded pool of reader connections on tokio's blocking pool, never
//! on the async runtime. One log watcher per server follows the store's head (polling;
//! Postgres `LISTEN` as the wake-up), so events appended by any process reach every stream.

mod api;
mod auth;
mod error;
mod export;
mod follow;
mod log;
mod params;
mod routes;
mod stream;
pub mod tokens;
mod verify;
mod viewer;
mod watcher;
mod wire;

use std::future::Future;
use std::net::SocketAddr;

pub use api::{AUDIT_LOG_RESOURCE, AuditApi, AuditApiBuilder, BuildError, EXPORT, READ};
pub use auth::{AUDITOR, Authorizer, OWNER, Principal, Rejection, Scope};
pub use error::ApiError;
pub use log::Readers;
pub use params::{DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_Q_LEN, MAX_QUERY_STRING};
pub use routes::{
    COUNT_CAP, EXPORT_PATH, HEALTH_PATH, LIST_PATH, MAX_BODY, STREAM_PATH, WATCH_PATH, router,
};
pub use stream::CLOSE_RESET;
pub use verify::{VERIFY, VERIFY_PATH, Verification};
pub use viewer::{
    CONTENT_SECURITY_POLICY, LIVE_PATH, SIGN_IN_PATH, SIGN_OUT_PATH, SUGGEST_PATH, SignIn,
    Transport, VIEWER_PATH, Viewer,
};
pub use wire::{AuditLog, AuditLogsResponse, User};

/// Serves [`router`] on `listener` until `shutdown` completes, then shuts down gracefully:
/// open streams end (SSE streams finish, WebSockets close with 1001), requests in flight
/// finish, and the future returns.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: AuditApi,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router::<()>(api.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            api.close_streams();
        })
        .await
}
