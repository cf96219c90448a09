//! `GET /audit?q=&after=&before=`: one page of the log, newest first, grouped by day.
//!
//! A page costs one keyset query and one capped count, run together, at any depth: the first
//! page, an Older page (`after`: the page's last entry) and a Newer page (`before`: its first
//! entry) alike; the count is remembered once it reaches the cap. A rejected query is shown
//! with every problem beside the filter box while the results of the previous query (the
//! form's `shown` field) stay. The quick filter form writes its values into the query and
//! redirects to that query's page. Every page view is recorded as a read of the log, like an
//! API read.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::Utc;

use audit_core::query::Filter;
use audit_core::store::{Count, Cursor, Page, PageRequest, StoredEvent};

use super::entry::{self, EntryView};
use super::html::{self, Badge, Chrome, DayGroup, Integrity, ListPage, Problem};
use super::links::{self, Links};
use super::quick::{self, QuickForm, QuickView};
use super::session;
use super::{LIVE_PATH, SignIn, VIEWER_PATH};
use crate::api::{Access, AuditApi, READ, Reader};
use crate::auth::OWNER;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::raw_q;

/// How many usernames of the page the user field offers.
const OFFERED_USERS: usize = 20;

/// `GET /audit`.
pub(crate) async fn list(State(api): State<AuditApi>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let q = raw_q(parts.uri.query());
    let access = Access {
        action: READ,
        endpoint: VIEWER_PATH,
        q: &q,
        format: None,
    };
    let reader = match api.reader(&parts, &access).await {
        Ok(reader) => reader,
        Err(e) => return refused(&api, &parts, &q, e),
    };
    match show(&api, &parts, &reader).await {
        Ok(response) => response,
        Err(e) => failed(&api, Some(&reader), e),
    }
}

/// What a caller who may not read gets: the sign-in page (401), or a page that says why.
fn refused(api: &AuditApi, parts: &Parts, q: &str, e: ApiError) -> Response {
    let viewer = api.viewer();
    let token_form = viewer.sign_in == SignIn::Token;
    match e.status() {
        StatusCode::UNAUTHORIZED => {
            let stale = token_form && session::has_session_cookie(parts);
            let problem = stale.then(|| {
                "Your session has ended (its token may have been revoked). Sign in again."
                    .to_owned()
            });
            let mut response = session::sign_in_page(
                api,
                StatusCode::UNAUTHORIZED,
                q,
                problem,
                !stale && cross_site_navigation(parts),
            );
            if stale {
                response.headers_mut().insert(
                    SET_COOKIE,
                    session::ended_cookie(session::is_tls(parts, viewer.transport)),
                );
            }
            response
        }
        StatusCode::FORBIDDEN => html::message(
            StatusCode::FORBIDDEN,
            Chrome::new(None, token_form),
            "You may not read the audit log",
            "You are signed in, but reading the audit log needs the owner role, or the auditor role (of an organization).",
        ),
        _ => failed(api, None, e),
    }
}

/// A page that says why the log could not be shown.
fn failed(api: &AuditApi, reader: Option<&Reader>, e: ApiError) -> Response {
    let heading = if e.status() == StatusCode::BAD_REQUEST {
        "This link is not valid"
    } else {
        "The audit log cannot be read right now"
    };
    html::message(e.status(), chrome(api, reader), heading, e.message())
}

/// Whether a navigation arrived from another site: a `SameSite=Strict` session cookie is not
/// sent then, so the sign-in page reloads itself once, as a same-site request that carries it.
fn cross_site_navigation(parts: &Parts) -> bool {
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header("sec-fetch-site") == Some("cross-site") && header("sec-fetch-mode") == Some("navigate")
}

fn chrome(api: &AuditApi, reader: Option<&Reader>) -> Chrome {
    let badge = reader.map(|r| {
        let p = &r.principal;
        let mut role = p.roles.join(", ");
        if !p.organizations.is_empty() {
            role.push_str(" of ");
            role.push_str(&p.organizations.join(", "));
        }
        Badge {
            name: p.username.clone(),
            role,
        }
    });
    Chrome::new(badge, api.viewer().sign_in == SignIn::Token)
}

/// What a page shows: its entries, and where the pages around it start.
struct Shown {
    events: Vec<StoredEvent>,
    older: Option<Cursor>,
    newer: Option<Cursor>,
    first: bool,
}

/// The query a page shows, and what was wrong with the one typed.
struct Query {
    /// What the filter box holds.
    typed: String,
    /// The query whose results are shown.
    shown: String,
    /// `shown`, parsed as written.
    filter: Filter,
    problems: Vec<Problem>,
    problem_message: String,
}

/// The typed query, or — when it is rejected — its problems and the previous query
/// (`shown`), whose results stay. `Err(location)`: the quick filter form, applied to the
/// query, to redirect to.
async fn query(
    api: &AuditApi,
    params: &Params,
    now: chrono::DateTime<Utc>,
) -> Result<Result<Query, String>, ApiError> {
    let typed = params.q()?;
    let parsed = api.parse(&typed).await;
    let mut problems = Vec::new();
    let mut problem_message = String::new();
    if let (Some(form), Ok(base)) = (QuickForm::from_params(params), &parsed) {
        match form.apply(base.clone(), now) {
            Ok(filter) => return Ok(Err(links::filter_url(&filter))),
            Err(problem) => {
                problem_message = "The quick filters could not be applied.".to_owned();
                problems.push(Problem {
                    field: "quick filters".to_owned(),
                    detail: problem,
                });
            }
        }
    }
    let (shown, filter) = match parsed {
        Ok(filter) => (typed.clone(), filter),
        Err(e) => {
            let Some(rejected) = e.query_error() else {
                return Err(e);
            };
            problem_message = rejected.message().to_owned();
            problems.extend(rejected.validations().iter().map(|v| Problem {
                field: v.field.clone(),
                detail: v.detail.clone(),
            }));
            let previous = params.filter_text("shown")?;
            match api.parse(&previous).await {
                Ok(filter) => (previous, filter),
                Err(_) => (String::new(), Filter::default()),
            }
        }
    };
    Ok(Ok(Query {
        typed,
        shown,
        filter,
        problems,
        problem_message,
    }))
}

async fn show(api: &AuditApi, parts: &Parts, reader: &Reader) -> Result<Response, ApiError> {
    let mut known = vec!["q", "shown", "after", "before"];
    known.extend_from_slice(quick::PARAMS);
    let params = Params::parse(parts.uri.query(), &known)?;
    let now = Utc::now();
    let query = match query(api, &params, now).await? {
        Ok(query) => query,
        Err(location) => return Ok(html::see_other(&location)),
    };
    let after = params.cursor("after")?;
    let before = params.cursor("before")?;
    if after.is_some() && before.is_some() {
        return Err(ApiError::bad_parameter(
            "before",
            "give either `after` (older) or `before` (newer), not both",
        ));
    }
    let scoped = reader.scoped(&query.filter);
    // Where a live stream of this page continues: read before the page, so that nothing
    // committed in between is missed (an entry in both is shown once).
    let head = match after {
        None => api.tips().await.ok().map(|tips| tips.borrow().head),
        Some(_) => None,
    };
    let (page, count) = tokio::join!(
        fetch(api, &scoped, api.viewer().page_size, after, before),
        api.count(&scoped)
    );
    let (page, count) = (page?, count?);
    let access = Access {
        action: READ,
        endpoint: VIEWER_PATH,
        q: &query.shown,
        format: None,
    };
    api.record(parts, &reader.principal, &access, 200).await?;

    let vocabulary = api.vocabulary().await?;
    let links = Links::new(&query.filter);
    let entries: Vec<EntryView> = page
        .events
        .iter()
        .map(|e| EntryView::new(e, &links))
        .collect();
    let today = now.date_naive();
    let live_allowed = page.first && query.filter.date_to_day().is_none_or(|day| day >= today);
    let shown = &query.shown;
    let listing = ListPage {
        chrome: chrome(api, Some(reader)),
        quick: QuickView::new(&query.filter, &vocabulary, usernames(&page.events), now),
        summary: summary(entries.len(), count),
        empty: empty_message(shown, page.first).to_owned(),
        groups: group_by_day(entries, today),
        newest: (!page.first).then(|| links::page_url(shown, &[])),
        newer: page.newer.map(|c| links::newer_url(shown, &c)),
        older: page.older.map(|c| links::older_url(shown, &c)),
        export_csv: links::export_url(shown, "csv"),
        export_jsonl: links::export_url(shown, "jsonl"),
        live: head
            .filter(|_| live_allowed)
            .map(|head| live_url(shown, head)),
        keys: vocabulary.keys().map(str::to_owned).collect(),
        integrity: reader
            .principal
            .has_role(OWNER)
            .then(|| Integrity::of(api.last_verification().as_ref())),
        q: query.typed,
        shown: query.shown.clone(),
        problems: query.problems,
        problem_message: query.problem_message,
    };
    let status = if listing.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(html::page(status, &listing))
}

/// The live stream of `q`'s first page, continuing after log position `head`.
fn live_url(q: &str, head: u64) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", q)
        .append_pair("after", &head.to_string())
        .finish();
    format!("{LIVE_PATH}?{query}")
}

/// The users of a page's entries, in order, each once: what the user field offers.
fn usernames(events: &[StoredEvent]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in events {
        let name = &e.actor.username;
        if !name.is_empty() && !names.contains(name) && names.len() < OFFERED_USERS {
            names.push(name.clone());
        }
    }
    names
}

/// What a page without entries says.
fn empty_message(shown: &str, first: bool) -> &'static str {
    match (shown.is_empty(), first) {
        (true, true) => "The log holds no events you may read yet.",
        (false, true) => "No events match this filter.",
        (_, false) => "No more events on this side.",
    }
}

/// One keyset read: the first page, the page older than `after`, or the page newer than
/// `before` (the first page once that reaches the newest entry).
async fn fetch(
    api: &AuditApi,
    filter: &Filter,
    limit: usize,
    after: Option<Cursor>,
    before: Option<Cursor>,
) -> Result<Shown, ApiError> {
    let log = api.log();
    if let Some(before) = before {
        let newer = log.page_newer(filter, before, limit).await?;
        if let Some(next) = newer.next {
            let older = newer.events.last().map(|e| Cursor::of(e));
            return Ok(Shown {
                events: newer.events,
                older,
                newer: Some(next),
                first: false,
            });
        }
    }
    let page: Page = log
        .page(
            filter,
            PageRequest {
                limit,
                cursor: after,
            },
        )
        .await?;
    let newer = after.map(|c| page.events.first().map_or(c, |e| Cursor::of(e)));
    Ok(Shown {
        first: after.is_none(),
        older: page.next,
        newer,
        events: page.events,
    })
}

/// "Showing 50 of 10,000+ events".
fn summary(shown: usize, count: Count) -> String {
    let (total, capped) = match count {
        Count::Exact(n) => (n, false),
        Count::AtLeast(n) => (n, true),
    };
    let total_text = format!("{}{}", thousands(total), if capped { "+" } else { "" });
    match (shown, total, capped) {
        (0, 0, false) => "No events".to_owned(),
        (1, 1, false) => "Showing 1 event".to_owned(),
        (n, t, false) if n as u64 == t => format!("Showing all {total_text} events"),
        (n, _, _) => format!("Showing {} of {total_text} events", thousands(n as u64)),
    }
}

/// `12345` → `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Entries (newest first) in groups of one UTC day each; the script regroups them by local
/// day.
fn group_by_day(entries: Vec<EntryView>, today: chrono::NaiveDate) -> Vec<DayGroup> {
    let mut groups: Vec<DayGroup> = Vec::new();
    for e in entries {
        match groups.last_mut() {
            Some(g) if g.key == e.day.to_string() => g.entries.push(e),
            _ => groups.push(DayGroup {
                key: e.day.to_string(),
                label: entry::day_label(e.day, today),
                entries: vec![e],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_like_coders() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3000), "3,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            summary(50, Count::AtLeast(10_000)),
            "Showing 50 of 10,000+ events"
        );
        assert_eq!(
            summary(50, Count::Exact(3000)),
            "Showing 50 of 3,000 events"
        );
        assert_eq!(summary(3, Count::Exact(3)), "Showing all 3 events");
        assert_eq!(summary(1, Count::Exact(1)), "Showing 1 event");
        assert_eq!(summary(0, Count::Exact(0)), "No events");
    }
}
