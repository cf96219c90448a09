//! [`QueryError`]: every problem of a query string, reported at once.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

/// One problem with a query: which key is at fault and what is wrong.
///
/// `field` is the (lower-cased) key at fault, or `q` when the problem is the shape of a term
/// rather than one key's value (an unterminated quote, a stray `:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Validation {
    /// The key at fault (`resource_type`, `date_from`, …) or `q` for a malformed term.
    pub field: String,
    /// What is wrong and how to fix it, for humans.
    pub detail: String,
}

impl Validation {
    pub(crate) fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
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
///
/// ```
/// let err = audit_core::query::Filter::parse("date_from:yesterday colour:red").unwrap_err();
/// assert_eq!(err.validations().len(), 2);
/// assert_eq!(err.validations()[0].field, "colour");
/// assert_eq!(err.validations()[1].field, "date_from");
/// let json = serde_json::to_value(&err).unwrap();
/// assert_eq!(json["message"], "Invalid audit search query.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    validations: Vec<Validation>,
}

impl QueryError {
    /// The fixed message of every query error.
    pub const MESSAGE: &'static str = "Invalid audit search query.";

    /// Builds an error from its validations (never empty when made by the parser).
    pub fn new(validations: Vec<Validation>) -> Self {
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
        for (i, v) in self.validations.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { "; " })?;
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}
