//! `GET /api/v2/audit/verify`: is the log intact? For owners only, since the answer speaks
//! for the whole log. The store's hash chain is recomputed (with the checkpoints it keeps,
//! checked with the keys given to [`AuditApiBuilder::checkpoint_keys`](crate::AuditApiBuilder::checkpoint_keys)),
//! one verification at a time, and the request is recorded like every read of the log. The
//! answer is the report of `audit verify`:
//!
//! ```text
//! {"intact": true, "verified_at": "…", "report": {"events_verified": …, "head": {"seq": …, "hash": "…"},
//!  "checkpoints": […], "problems": [], "unchecked": […], …}}
//! ```
//!
//! The outcome of the latest verification is kept for the viewer's "integrity: verified up to
//! #N at T" line ([`AuditApi::last_verification`](crate::AuditApi::last_verification)).

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use audit_core::chain::{ChainHead, VerifyReport};

use crate::api::{Access, AuditApi};
use crate::auth::OWNER;
use crate::error::ApiError;
use crate::params::Params;

/// The verification endpoint.
pub const VERIFY_PATH: &str = "/api/v2/audit/verify";
/// The action of a verification of the log.
pub const VERIFY: &str = "verify";

/// The outcome of a verification of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// No problem was found.
    pub intact: bool,
    /// The head verified: the last position and its hash.
    pub head: ChainHead,
    /// Events whose chain link was recomputed and matched.
    pub events_verified: u64,
    /// When the verification ran.
    pub verified_at: DateTime<Utc>,
    /// The first problem found, as `audit verify` words it (naming the event by its id).
    pub first_problem: Option<String>,
}

impl Verification {
    pub(crate) fn of(report: &VerifyReport, verified_at: DateTime<Utc>) -> Self {
        Verification {
            intact: report.is_intact(),
            head: report.head,
            events_verified: report.events_verified,
            verified_at,
            first_problem: report.first_problem().map(ToString::to_string),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    intact: bool,
    verified_at: DateTime<Utc>,
    report: &'a VerifyReport,
}

/// `GET /api/v2/audit/verify`.
pub(crate) async fn verify(
    State(api): State<AuditApi>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let access = Access {
        action: VERIFY,
        endpoint: VERIFY_PATH,
        q: "",
        format: None,
    };
    let reader = api.reader(&parts, &access).await?;
    if !reader.principal.has_role(OWNER) {
        // Recorded as a refused attempt; the answer is 403 whether or not that works.
        let _ = api.record(&parts, &reader.principal, &access, 403).await;
        return Err(ApiError::forbidden());
    }
    Params::parse(parts.uri.query(), &[])?;
    let (report, verified_at) = api.verify_log().await?;
    api.record(&parts, &reader.principal, &access, 200).await?;
    let body = Body {
        intact: report.is_intact(),
        verified_at,
        report: &report,
    };
    let json = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("The report could not be encoded: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}
