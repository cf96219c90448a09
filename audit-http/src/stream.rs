//! The live streams: `GET /api/v2/audit/stream` (Server-Sent Events) and
//! `GET /api/v2/audit/watch` (WebSocket), both following the log with a
//! [`Follower`](crate::follow::Follower).
//!
//! # Server-Sent Events
//!
//! ```text
//! retry: 3000
//! id: 41                      ← only when starting at "now": the position the stream starts from
//!
//! id: 42
//! data: {"id":"…","seq":42,…}  ← one event: its log position and its AuditLog JSON, one line
//!
//! : keep-alive                ← every 15 s without events
//!
//! event: reset                ← the resume point was purged: reload the first page
//! data: {"message":"…","requested":7,"first":120,"head":130}
//!
//! id: 130                     ← where the stream continues from
//! ```
//!
//! Every `id:` is a real log position: an event's, or the position a stream starts or
//! restarts from. Control frames (`reset`, `interrupted`) never carry one, so a reconnect
//! with `Last-Event-ID` never skips an event. A client resumes with the `Last-Event-ID`
//! header (browsers send it by themselves) or `?after=SEQ`; the header wins. Responses carry
//! `X-Accel-Buffering: no` so nginx does not hold events back.
//!
//! # WebSocket
//!
//! One text message per event: its [`AuditLog`] JSON, `seq` included; resume with
//! `?after=SEQ`. The server pings every 15 s (see
//! [`AuditApiBuilder::keep_alive`](crate::AuditApiBuilder::keep_alive)). It closes with 1001 when shutting down, 4410
//! when the resume point was purged (reload, then reconnect without `after`), and 1011 when
//! the store failed (reconnect with `after`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use audit_core::store::StoredEvent;

use crate::api::{Access, AuditApi, READ};
use crate::error::ApiError;
use crate::follow::{Follower, Item};
use crate::params::{Params, last_event_id};
use crate::routes::{STREAM_PATH, WATCH_PATH, raw_q};
use crate::wire::AuditLog;

/// How long a disconnected EventSource waits before reconnecting.
const RETRY: Duration = Duration::from_secs(3);
/// The largest message a WebSocket client may send (they have nothing to say).
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// WebSocket close code: the resume point is gone (Kubernetes' 410 Gone, as a 4xxx code).
pub const CLOSE_RESET: u16 = 4410;

/// Authorizes, parses and positions a stream; records the read.
pub(crate) async fn follower(
    api: &AuditApi,
    parts: &Parts,
    endpoint: &'static str,
    resume_header: bool,
) -> Result<(Follower, Option<u64>), ApiError> {
    let q = raw_q(parts.uri.query());
    let access = Access {
        action: READ,
        endpoint,
        q: &q,
        format: None,
    };
    let reader = api.reader(parts, &access).await?;
    let params = Params::parse(parts.uri.query(), &["q", "after"])?;
    let q = params.q()?;
    let after = params.position()?;
    let header = if resume_header {
        last_event_id(&parts.headers)?
    } else {
        None
    };
    let resume = header.or(after);
    let filter = api.filter(&reader, &q).await?;
    let permit = api.stream_permit()?;
    let tips = api.tips().await?;
    let follower = Follower::start(
        api.log().clone(),
        filter,
        resume,
        tips,
        api.closing(),
        permit,
    )
    .await?;
    api.record(parts, &reader.principal, &access, 200).await?;
    Ok((follower, resume))
}

/// `GET /api/v2/audit/stream?q=&after=`.
pub(crate) async fn sse(
    State(api): State<AuditApi>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let (follower, resume) = follower(&api, &parts, STREAM_PATH, true).await?;
    Ok(sse_response(&api, follower, resume, |e| {
        AuditLog::new(e.seq, e).to_json_line()
    }))
}

/// The Server-Sent Events response of a positioned stream, each event's `data:` made by
/// `encode` (which must not produce a carriage return: SSE cannot carry one).
pub(crate) fn sse_response<E>(
    api: &AuditApi,
    follower: Follower,
    resume: Option<u64>,
    encode: E,
) -> Response
where
    E: FnMut(&StoredEvent) -> String + Send + 'static,
{
    let mut prelude = Event::default().retry(RETRY);
    if resume.is_none() {
        prelude = prelude.id(follower.position().to_string());
    }
    let state = SseState {
        follower,
        encode,
        queued: VecDeque::from([prelude]),
        done: false,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok::<_, Infallible>(event), state))
    });
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(api.keep_alive_interval())
                .text("keep-alive"),
        )
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct SseState<E> {
    follower: Follower,
    encode: E,
    queued: VecDeque<Event>,
    done: bool,
}

impl<E: FnMut(&StoredEvent) -> String> SseState<E> {
    async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.queued.pop_front() {
            return Some(event);
        }
        if self.done {
            return None;
        }
        match self.follower.next().await? {
            Item::Event(e) => Some(
                Event::default()
                    .id(e.seq.to_string())
                    .data((self.encode)(&e)),
            ),
            Item::Reset {
                requested,
                first,
                head,
            } => {
                let body = serde_json::json!({
                    "message": "The events after the requested position are no longer stored; \
                                reload the first page. The stream continues with new events.",
                    "requested": requested,
                    "first": first,
                    "head": head,
                });
                self.queued.push_back(Event::default().id(head.to_string()));
                Some(Event::default().event("reset").data(body.to_string()))
            }
            Item::Interrupted(message) => {
                self.done = true;
                let body = serde_json::json!({ "message": message });
                Some(Event::default().event("interrupted").data(body.to_string()))
            }
        }
    }
}

/// `GET /api/v2/audit/watch?q=&after=`.
pub(crate) async fn websocket(
    State(api): State<AuditApi>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    // Who is asking comes first: an unauthenticated caller learns nothing else.
    let (follower, _) = follower(&api, &parts, WATCH_PATH, false).await?;
    let keep_alive = api.keep_alive_interval();
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "This endpoint is a WebSocket: connect with a WebSocket client \
             (or read /api/v2/audit/stream as Server-Sent Events).",
        )
    })?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| watch(socket, follower, keep_alive)))
}

async fn watch(mut socket: WebSocket, mut follower: Follower, keep_alive: Duration) {
    let mut ping = tokio::time::interval(keep_alive);
    ping.tick().await;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; anything else is ignored.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
            }
            item = follower.next() => {
                let close = match item {
                    Some(Item::Event(e)) => {
                        let text = AuditLog::new(e.seq, &e).to_json_line();
                        if socket.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(Item::Reset { .. }) => (
                        CLOSE_RESET,
                        "reset: the resume point is no longer stored; reload, then reconnect without after".to_owned(),
                    ),
                    Some(Item::Interrupted(message)) => (1011, message),
                    None => (1001, "the server is shutting down".to_owned()),
                };
                let _ = socket.send(Message::Close(Some(close_frame(close.0, &close.1)))).await;
                return;
            }
        }
    }
}

/// A close frame; the reason is cut to the 123 bytes a close frame may carry.
fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_frame() {
        let long = "é".repeat(100);
        let frame = close_frame(1011, &long);
        assert!(frame.reason.len() <= 123);
        assert!(long.starts_with(frame.reason.as_str()));
    }
}
