//! `GET /api/v2/audit/export?q=&format=csv|jsonl`: the whole filtered log as an attachment,
//! streamed in constant memory.
//!
//! The export runs on one reader connection on the blocking pool and writes through
//! audit-core's own export (the CLI's formats: formula-safe CSV, canonical JSON lines) into
//! a bounded channel of 64 KiB chunks that the response body drains. A client that reads
//! slowly slows the export down; one that goes away stops it. The store is asked once
//! before the response starts, so an unavailable store is a 503, not an empty file; a
//! failure after the first byte aborts the transfer (the client sees an incomplete body,
//! never a silently short file).

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use audit_core::store::export::Format;

use crate::api::{Access, AuditApi, EXPORT};
use crate::error::{ApiError, log_error};
use crate::log::LogError;
use crate::params::Params;
use crate::routes::{EXPORT_PATH, raw_q};

/// Bytes per chunk of the response body.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most.
const CHUNKS_IN_FLIGHT: usize = 4;

pub(crate) async fn export(
    State(api): State<AuditApi>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let q = raw_q(parts.uri.query());
    let params = Params::parse(parts.uri.query(), &["q", "format"]);
    let requested = params.as_ref().ok().and_then(|p| p.format().ok());
    let access = Access {
        action: EXPORT,
        endpoint: EXPORT_PATH,
        q: &q,
        format: requested.map(format_name),
    };
    let reader = api.reader(&parts, &access).await?;
    let params = params?;
    let q = params.q()?;
    let format = params.format()?;
    let filter = api.filter(&reader, &q).await?;

    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let failures = tx.clone();
    let (ready_tx, ready_rx) = oneshot::channel();
    let log = api.log().clone();
    let task = tokio::spawn(async move {
        let writer = Box::new(ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        });
        let result = log.export(&filter, format, writer, ready_tx).await;
        if let Err(e) = &result {
            if !matches!(e, LogError::Store(audit_core::store::StoreError::Io(io)) if io.kind() == io::ErrorKind::BrokenPipe)
            {
                log_error(&format!("an export of the audit log failed: {e:?}"));
            }
            // Abort the body: the client must not take a cut-short export for a whole one.
            let _ = failures
                .send(Err(io::Error::other("the export failed")))
                .await;
        }
        result
    });
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(LogError::Store(e).into()),
        Err(_) => {
            return Err(match task.await {
                Ok(Err(e)) => e.into(),
                _ => ApiError::internal("The export failed unexpectedly."),
            });
        }
    }
    // Recorded once the store has answered and before a byte is sent; if it cannot be
    // recorded, dropping the body's receiver stops the export.
    api.record(&parts, &reader.principal, &access, 200).await?;

    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::JsonLines => "application/x-ndjson",
    };
    let filename = format!(
        "audit-log-{}.{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        format_name(format)
    );
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let body = Body::from_stream(ReceiverStream(rx));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// The format as the `format` parameter names it.
fn format_name(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::JsonLines => "jsonl",
    }
}

/// Writes into the response body's channel in chunks; blocks (on the blocking pool) while
/// the client has not read the previous ones.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The channel as the body's stream.
struct ReceiverStream(mpsc::Receiver<io::Result<Bytes>>);

impl futures_core::Stream for ReceiverStream {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
