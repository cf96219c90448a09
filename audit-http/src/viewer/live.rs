//! `GET /audit/live?q=&after=`: the page's "Live" toggle. The API's Server-Sent Events
//! stream — the same follower, scope, `Last-Event-ID` resume and read record — with each
//! event sent as the row the page would render for it, so the page inserts server-rendered,
//! escaped HTML and no row is drawn by a second renderer in the browser.

use axum::extract::{Request, State};
use axum::response::Response;

use super::entry::EntryView;
use super::links::Links;
use super::{LIVE_PATH, html};
use crate::api::AuditApi;
use crate::error::ApiError;
use crate::routes::raw_q;
use crate::stream::{follower, sse_response};

/// `GET /audit/live`.
pub(crate) async fn live(
    State(api): State<AuditApi>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let (follower, resume) = follower(&api, &parts, LIVE_PATH, true).await?;
    // The query parsed as written (the follower holds it resolved and scoped): the rows' links
    // change one term of it.
    let base = api.parse(&raw_q(parts.uri.query())).await?;
    Ok(sse_response(&api, follower, resume, move |event| {
        html::live_row(&EntryView::new(event, &Links::new(&base)))
    }))
}
