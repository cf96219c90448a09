//! [`QueryError`]: every problem of a query string, reported at once.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

/// One problem with a query: which key is at fault and what is wrong.
///
/// `field` is the (lower-cased) key at fault, or `q` when the problem is the shape of a term
/// rather than one key's value (an unterminated quote, a stray `:`). Both are safe to print
/// on a terminal: any user text in them has its control, line-breaking and invisible
/// characters escaped, and is cut to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Validation {
    /// The key at fault (`resource_type`, `date_from`, …) or `q` for a malformed term.
    pub field: String,
    /// What is wrong and how to fix it, for humans.
    pub detail: String,
}

impl Validation {
    pub(super) fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Validation {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

/// Why a query string was rejected: every problem found, in one error.
///
/// Serializes as
/// `{"message": "Invalid audit search query.", "validations": [{"field": …, "detail": …}]}`.
/// Displays as the message, then one `  field: detail` line per validation.
///
/// ```
/// let err = audit_core::query::Filter::parse("date_from:yesterday colour:red").unwrap_err();
/// assert_eq!(err.validations().len(), 2);
/// assert_eq!(err.validations()[0].field, "colour");
/// assert_eq!(err.validations()[1].field, "date_from");
/// let json = serde_json::to_value(&err).unwrap();
/// assert_eq!(json["message"], "Invalid audit search query.");
/// assert_eq!(err.to_string().lines().collect::<Vec<_>>(), [
///     "Invalid audit search query.",
///     r#"  colour: "colour" is not a valid query key. Valid keys: resource_type, resource_id, resource_target, action, username, email, date_from, date_to, request_id, organization_id."#,
///     r#"  date_from: Query key "date_from" must be a calendar date in the format YYYY-MM-DD (e.g. 2024-01-31), got "yesterday"."#,
/// ]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    validations: Vec<Validation>,
}

impl QueryError {
    /// The fixed message of every query error.
    pub const MESSAGE: &'static str = "Invalid audit search query.";

    /// Builds an error from its validations (never empty).
    pub(super) fn new(validations: Vec<Validation>) -> Self {
        QueryError { validations }
    }

    /// [`QueryError::MESSAGE`].
    pub fn message(&self) -> &'static str {
        Self::MESSAGE
    }

    /// Every problem found, syntax problems first in query order, then value problems (at
    /// most [`MAX_VALIDATIONS`](super::MAX_VALIDATIONS), plus one saying how many more).
    pub fn validations(&self) -> &[Validation] {
        &self.validations
    }
}

impl Serialize for QueryError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("QueryError", 2)?;
        s.serialize_field("message", Self::MESSAGE)?;
        s.serialize_field("validations", &self.validations)?;
        s.end()
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MESSAGE)?;
        for v in &self.validations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}
