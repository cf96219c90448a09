//! [`ApiError`]: every failure the API answers with, as a status and a JSON body
//! `{"message": …}` (or, for a rejected query, the query language's own error JSON).
//!
//! Messages say what was wrong and how to fix it. They never say whether a credential
//! exists, and never carry a database's own error text (which may name hosts or tables):
//! that goes to the server's error log instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use audit_core::query::QueryError;

/// The one message of every 401, whatever was wrong with the credential.
pub(crate) const UNAUTHENTICATED: &str = "You must be signed in to read the audit log: send a valid token as `Authorization: Bearer TOKEN` or `Coder-Session-Token: TOKEN`.";

/// The message of every 403.
pub(crate) const FORBIDDEN: &str =
    "Reading the audit log needs the owner role, or the auditor role (of an organization).";

/// A failed request: its status and what to tell the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    body: Body,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Message(String),
    Query(QueryError),
}

#[derive(Serialize)]
struct MessageBody<'a> {
    message: &'a str,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Body::Message(message.into()),
        }
    }

    /// 400 for a bad query parameter or header; the message names it.
    pub fn bad_parameter(name: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid parameter `{name}`: {problem}"),
        )
    }

    /// 400 with the query language's error (`{"message": "Invalid audit search query.",
    /// "validations": […]}`).
    pub fn query(error: QueryError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: Body::Query(error),
        }
    }

    /// 401, the same for a missing, malformed, unknown or revoked credential.
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, UNAUTHENTICATED)
    }

    /// 403.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, FORBIDDEN)
    }

    /// 503 with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500 with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message (for a query error, its fixed message).
    pub fn message(&self) -> &str {
        match &self.body {
            Body::Message(m) => m,
            Body::Query(q) => q.message(),
        }
    }

    /// The query language's error, if this is a rejected query.
    pub(crate) fn query_error(&self) -> Option<&QueryError> {
        match &self.body {
            Body::Query(q) => Some(q),
            Body::Message(_) => None,
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        let json = match &self.body {
            Body::Message(message) => serde_json::to_string(&MessageBody { message }),
            Body::Query(error) => serde_json::to_string(error),
        };
        json.unwrap_or_else(|_| r#"{"message":"error"}"#.to_owned())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.to_json(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"audit\""),
            );
        }
        response
    }
}

/// Reports a server-side failure that the client only sees as a generic message: to
/// `tracing` (target `audit_http`) with the `tracing` feature, else to stderr.
pub(crate) fn log_error(message: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "audit_http", "{message}");
    #[cfg(not(feature = "tracing"))]
    eprintln!("audit-http: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_messages() {
        let e = ApiError::bad_parameter("limit", "must be a whole number from 1 to 1000");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let json: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"message": "Invalid parameter `limit`: must be a whole number from 1 to 1000"})
        );
    }

    #[test]
    fn query_errors_keep_the_query_language_shape() {
        let err = audit_core::query::Filter::parse("colour:red").unwrap_err();
        let json: serde_json::Value =
            serde_json::from_str(&ApiError::query(err).to_json()).unwrap();
        assert_eq!(json["message"], "Invalid audit search query.");
        assert_eq!(json["validations"][0]["field"], "colour");
    }

    #[test]
    fn unauthenticated_answers_say_how_to_authenticate_and_nothing_about_the_token() {
        let response = ApiError::unauthenticated().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert!(!UNAUTHENTICATED.contains("unknown") && !UNAUTHENTICATED.contains("revoked"));
    }
}
