//! The viewer's templates (in `audit-http/templates/viewer/`, compiled in and checked by
//! askama, which HTML-escapes every value) and the responses that carry them.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::changes::ChangeKind;
use super::entry::EntryView;
use super::quick::QuickView;
use super::{SIGN_IN_PATH, SIGN_OUT_PATH, VIEWER_PATH, assets};
use crate::error::log_error;
use crate::verify::Verification;

/// What every page has: its files, and who is signed in.
pub(crate) struct Chrome {
    pub script: &'static str,
    pub style: &'static str,
    /// The signed-in reader, if any.
    pub user: Option<Badge>,
    /// Whether the page offers a sign-out button (the token form's sessions).
    pub sign_out: bool,
}

impl Chrome {
    pub(crate) fn new(user: Option<Badge>, sign_out: bool) -> Chrome {
        Chrome {
            script: assets::script_url(),
            style: assets::style_url(),
            user,
            sign_out,
        }
    }

    /// Where the sign-out form posts.
    pub(crate) fn sign_out_path(&self) -> &'static str {
        SIGN_OUT_PATH
    }
}

/// The signed-in reader as the header shows them.
pub(crate) struct Badge {
    pub name: String,
    /// `owner`, `auditor of org-1, org-2`, …
    pub role: String,
}

/// One problem of a rejected query.
pub(crate) struct Problem {
    pub field: String,
    pub detail: String,
}

/// Entries of one day.
pub(crate) struct DayGroup {
    /// `2024-03-01`.
    pub key: String,
    /// "Today", "Friday, 1 March 2024".
    pub label: String,
    pub entries: Vec<EntryView>,
}

/// The log page.
#[derive(Template)]
#[template(path = "viewer/list.html")]
pub(crate) struct ListPage {
    pub chrome: Chrome,
    /// The filter box: the query as typed.
    pub q: String,
    /// The query whose results are shown (differs from `q` when `q` was rejected).
    pub shown: String,
    /// What was wrong with `q`.
    pub problems: Vec<Problem>,
    /// The message over the problems.
    pub problem_message: String,
    pub quick: QuickView,
    /// "Showing 50 of 10,000+ events".
    pub summary: String,
    pub groups: Vec<DayGroup>,
    /// What an empty page says.
    pub empty: String,
    pub newest: Option<String>,
    pub newer: Option<String>,
    pub older: Option<String>,
    pub export_csv: String,
    pub export_jsonl: String,
    /// The live stream's URL, when this page may go live.
    pub live: Option<String>,
    /// The keys of the filter language, for the help line.
    pub keys: Vec<String>,
    /// What the latest verification of the log found; owners only.
    pub integrity: Option<Integrity>,
}

/// The integrity line of an owner's page: "Integrity: verified up to #N at T".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Integrity {
    /// `ok` (intact), `bad` (a problem was found) or `unknown` (not verified yet): its style.
    pub state: &'static str,
    pub text: String,
}

impl Integrity {
    /// The line for the latest verification, if any ran since the server started.
    pub(crate) fn of(verification: Option<&Verification>) -> Integrity {
        let Some(v) = verification else {
            return Integrity {
                state: "unknown",
                text: "Integrity: not verified since the server started (an owner can run GET \
                       /api/v2/audit/verify, or audit verify)."
                    .to_owned(),
            };
        };
        let at = v.verified_at.format("%Y-%m-%d %H:%M:%S UTC");
        if v.intact {
            let text = if v.head.seq == 0 {
                format!("Integrity: verified at {at} (the log was empty).")
            } else {
                format!("Integrity: verified up to #{} at {at}.", v.head.seq)
            };
            return Integrity { state: "ok", text };
        }
        let problem = v.first_problem.as_deref().unwrap_or("a problem was found");
        Integrity {
            state: "bad",
            text: format!(
                "Integrity: NOT intact (verified at {at}, up to #{}): {problem}. Run audit verify \
                 for the whole report.",
                v.head.seq
            ),
        }
    }
}

impl ListPage {
    fn viewer_path(&self) -> &'static str {
        VIEWER_PATH
    }

    fn rejected(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// A row, alone: what the live stream sends.
#[derive(Template)]
#[template(path = "viewer/live_row.html")]
pub(crate) struct LiveRow<'a> {
    pub entry: &'a EntryView,
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "viewer/sign_in.html")]
pub(crate) struct SignInPage {
    pub chrome: Chrome,
    /// Show the token form (else: the application signs people in).
    pub token_form: bool,
    /// The application's sign-in page.
    pub link: Option<String>,
    /// The query to open after signing in.
    pub q: String,
    /// Why the last attempt failed, or why the session ended.
    pub problem: Option<String>,
    /// Reload at once: a link from another site arrived without the session cookie.
    pub refresh: bool,
}

impl SignInPage {
    fn sign_in_path(&self) -> &'static str {
        SIGN_IN_PATH
    }
}

/// A page that only says something (403, a store that does not answer).
#[derive(Template)]
#[template(path = "viewer/message.html")]
pub(crate) struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
}

impl MessagePage {
    fn viewer_path(&self) -> &'static str {
        VIEWER_PATH
    }
}

/// A rendered page with `status`.
pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            log_error(&format!("a viewer page could not be rendered: {e}"));
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered; the error is logged on the server.",
            )
                .into_response()
        }
    }
}

/// A 303 to `location` (a path of this site).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A message page.
pub(crate) fn message(
    status: StatusCode,
    chrome: Chrome,
    heading: impl Into<String>,
    message: impl Into<String>,
) -> Response {
    page(
        status,
        &MessagePage {
            chrome,
            heading: heading.into(),
            message: message.into(),
        },
    )
}

/// One row as HTML, for the live stream: escaped like every page, on one line (line breaks
/// written as character references, which parse to the same text), so each event is one
/// `data:` line.
pub(crate) fn live_row(entry: &EntryView) -> String {
    match (LiveRow { entry }).render() {
        Ok(html) => html.replace('\r', "&#13;").replace('\n', "&#10;"),
        Err(e) => {
            log_error(&format!("a live row could not be rendered: {e}"));
            String::new()
        }
    }
}
