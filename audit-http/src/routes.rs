//! The router: `GET /healthz` and the audit API, behind one guard (bounded query strings
//! and bodies, `nosniff`, no caching of audit data), and `GET /api/v2/audit`.
//!
//! The router composes sub-routers: [`api`] (`/api/v2/audit…`, including the verification
//! of [`crate::verify`]) and the web viewer (`/audit…`, [`crate::viewer`]), sharing the same
//! state, guard and authorizer.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;

use audit_core::query::Filter;
use audit_core::store::{Count, Cursor, MAX_PAGE_SIZE, Page, PageRequest};

use crate::api::{Access, AuditApi, READ};
use crate::error::ApiError;
use crate::log::{Log, LogError};
use crate::params::{MAX_QUERY_STRING, Params};
use crate::wire::{AuditLog, AuditLogsResponse};

/// The list endpoint.
pub const LIST_PATH: &str = "/api/v2/audit";
/// The export endpoint.
pub const EXPORT_PATH: &str = "/api/v2/audit/export";
/// The Server-Sent Events stream.
pub const STREAM_PATH: &str = "/api/v2/audit/stream";
/// The WebSocket stream.
pub const WATCH_PATH: &str = "/api/v2/audit/watch";
/// The health check.
pub const HEALTH_PATH: &str = "/healthz";

/// Counts stop here: `count_capped` says the log holds at least this many matches.
pub const COUNT_CAP: u64 = 10_000;

/// The largest request body accepted (the API reads none; the viewer's sign-in form is small).
pub const MAX_BODY: usize = 16 * 1024;

/// The audit routes, to mount in an application (`app.merge(audit_http::router(api))`) or
/// to serve alone ([`serve`](crate::serve)).
pub fn router<S>(api: AuditApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(HEALTH_PATH, get(health))
        .merge(self::api())
        .merge(crate::viewer::routes())
        .layer(from_fn(guard))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(api)
}

/// `/api/v2/audit…`.
fn api() -> Router<AuditApi> {
    Router::new()
        .route(LIST_PATH, get(list))
        .route(EXPORT_PATH, get(crate::export::export))
        .route(STREAM_PATH, get(crate::stream::sse))
        .route(WATCH_PATH, get(crate::stream::websocket))
        .route(crate::verify::VERIFY_PATH, get(crate::verify::verify))
}

/// Refuses over-long query strings (414) and marks every answer `nosniff` and, unless the
/// route said otherwise, not to be cached: audit data must not linger in shared caches.
async fn guard(request: Request, next: Next) -> Response {
    if request
        .uri()
        .query()
        .is_some_and(|q| q.len() > MAX_QUERY_STRING)
    {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("The query string is longer than {MAX_QUERY_STRING} bytes; shorten `q`."),
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `GET /healthz`: 200 once the store answers, 503 while it does not.
async fn health(State(api): State<AuditApi>) -> Response {
    match api.log().head().await {
        Ok(_) => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The raw `q` of a request, for the record of a refused read (never parsed or trusted).
pub(crate) fn raw_q(query: Option<&str>) -> String {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.chars().take(crate::params::MAX_Q_LEN).collect())
        .unwrap_or_default()
}

/// `GET /api/v2/audit?q=&limit=&offset=&after=`: one page, newest first, with a capped count.
async fn list(State(api): State<AuditApi>, request: Request) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let q = raw_q(parts.uri.query());
    let access = Access {
        action: READ,
        endpoint: LIST_PATH,
        q: &q,
        format: None,
    };
    let reader = api.reader(&parts, &access).await?;
    let params = Params::parse(parts.uri.query(), &["q", "limit", "offset", "after"])?;
    let q = params.q()?;
    let limit = params.limit()?;
    let offset = params.offset()?;
    let after = params.page_cursor()?;
    if offset > 0 && after.is_some() {
        return Err(ApiError::bad_parameter(
            "offset",
            "give either `offset` or `after`, not both",
        ));
    }
    let filter = api.filter(&reader, &q).await?;
    let log = api.log();
    let cursor = if offset > 0 {
        skip(log, &filter, offset).await?
    } else {
        Some(after)
    };
    let (page, count) = match cursor {
        // The offset is past the last match.
        None => (
            Page {
                events: Vec::new(),
                next: None,
            },
            api.count(&filter).await?,
        ),
        Some(cursor) => {
            let (page, count) = tokio::join!(
                log.page(&filter, PageRequest { limit, cursor }),
                api.count(&filter)
            );
            (page?, count?)
        }
    };
    api.record(&parts, &reader.principal, &access, 200).await?;
    let audit_logs = page
        .events
        .iter()
        .map(|e| AuditLog::new(e.seq, e))
        .collect();
    let (count, count_capped) = match count {
        Count::Exact(n) => (n, false),
        Count::AtLeast(n) => (n, true),
    };
    let body = AuditLogsResponse {
        audit_logs,
        count,
        count_capped,
        next_cursor: page.next.map(|c| c.to_string()),
    };
    // One buffer sized for the page up front (an event is about half a KiB of JSON), not a
    // buffer grown write by write.
    let mut json = Vec::with_capacity(1024 + 512 * body.audit_logs.len());
    serde_json::to_writer(&mut json, &body)
        .map_err(|e| ApiError::internal(format!("The page could not be encoded: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// Walks past the first `offset` matches; `None` if there are not that many. At most
/// `MAX_OFFSET / MAX_PAGE_SIZE` store reads of index entries, never a scan of the log.
async fn skip(
    log: &Log,
    filter: &Filter,
    mut offset: usize,
) -> Result<Option<Option<Cursor>>, LogError> {
    let mut cursor = None;
    while offset > 0 {
        let limit = offset.min(MAX_PAGE_SIZE);
        let page = log.page(filter, PageRequest { limit, cursor }).await?;
        if page.events.len() < limit {
            return Ok(None);
        }
        offset -= limit;
        cursor = page.events.last().map(|e| Cursor::of(e));
    }
    Ok(Some(cursor))
}
