//! Query parameters of the API, parsed strictly: a bad or repeated value is a 400 that names
//! the parameter and says what would be accepted. Unknown parameters are ignored (Coder's
//! clients send their own).

use axum::http::HeaderMap;

use audit_core::store::Cursor;
use audit_core::store::export::Format;

use crate::error::ApiError;

/// Events per page when `limit` is missing or 0 (Coder's default).
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = audit_core::store::MAX_PAGE_SIZE;
/// The largest `offset`: beyond it, page with `after`.
pub const MAX_OFFSET: usize = 10_000;
/// The longest `q`, in bytes.
pub const MAX_Q_LEN: usize = 4096;
/// The longest query string (everything after `?`), in bytes; longer requests get 414.
pub const MAX_QUERY_STRING: usize = 8192;

/// The request's parameters, decoded.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a query string (`None`: no `?`). `known` are the parameters this endpoint
    /// reads; each may be given once.
    pub(crate) fn parse(query: Option<&str>, known: &[&str]) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !known.contains(&key.as_ref()) {
                continue;
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::bad_parameter(
                    &key,
                    "given more than once; give it once",
                ));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `q`, the filter (empty if missing).
    pub(crate) fn q(&self) -> Result<String, ApiError> {
        self.filter_text("q")
    }

    /// The filter in parameter `name` (empty if missing): at most [`MAX_Q_LEN`] bytes, no NUL.
    pub(crate) fn filter_text(&self, name: &str) -> Result<String, ApiError> {
        let q = self.get(name).unwrap_or("");
        if q.len() > MAX_Q_LEN {
            return Err(ApiError::bad_parameter(
                name,
                format!("{} bytes long; at most {MAX_Q_LEN} are allowed", q.len()),
            ));
        }
        // No stored value can hold NUL (Postgres text cannot), so no event could match; say
        // so instead of sending the database something it rejects.
        if q.contains('\0') {
            return Err(ApiError::bad_parameter(
                name,
                "contains a NUL character (%00), which no stored value can hold",
            ));
        }
        Ok(q.to_owned())
    }

    /// `limit`: 1 to [`MAX_LIMIT`]; missing or 0 means [`DEFAULT_LIMIT`].
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        let bad = || {
            ApiError::bad_parameter(
                "limit",
                format!(
                    "must be a whole number from 1 to {MAX_LIMIT} (0 or none: {DEFAULT_LIMIT})"
                ),
            )
        };
        match self.get("limit") {
            None | Some("") => Ok(DEFAULT_LIMIT),
            Some(text) => match text.parse::<usize>().map_err(|_| bad())? {
                0 => Ok(DEFAULT_LIMIT),
                n if n <= MAX_LIMIT => Ok(n),
                _ => Err(bad()),
            },
        }
    }

    /// `offset`: 0 to [`MAX_OFFSET`].
    pub(crate) fn offset(&self) -> Result<usize, ApiError> {
        let Some(text) = self.get("offset").filter(|t| !t.is_empty()) else {
            return Ok(0);
        };
        let offset = text.parse::<usize>().map_err(|_| {
            ApiError::bad_parameter("offset", "must be a whole number of events to skip")
        })?;
        if offset > MAX_OFFSET {
            return Err(ApiError::bad_parameter(
                "offset",
                format!(
                    "{offset} is beyond {MAX_OFFSET}; page further with `after`, passing the \
                     `next_cursor` of the previous page (it costs the same at any depth)"
                ),
            ));
        }
        Ok(offset)
    }

    /// `after` as a page cursor (the `next_cursor` of a previous page).
    pub(crate) fn page_cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.cursor("after")
    }

    /// The page cursor in parameter `name`.
    pub(crate) fn cursor(&self, name: &str) -> Result<Option<Cursor>, ApiError> {
        match self.get(name).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => text.parse::<Cursor>().map(Some).map_err(|_| {
                ApiError::bad_parameter(
                    name,
                    "not a cursor; pass the `next_cursor` of a previous page unchanged",
                )
            }),
        }
    }

    /// `after` as a log position (the `seq` of the last event seen).
    pub(crate) fn position(&self) -> Result<Option<u64>, ApiError> {
        match self.get("after").filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => parse_position(text).map(Some).ok_or_else(|| {
                ApiError::bad_parameter(
                    "after",
                    "must be a log position (the `seq` of the last event received), a whole number",
                )
            }),
        }
    }

    /// `format`: `csv` or `jsonl` (default `jsonl`).
    pub(crate) fn format(&self) -> Result<Format, ApiError> {
        match self.get("format").filter(|t| !t.is_empty()) {
            None => Ok(Format::JsonLines),
            Some(text) if text.len() <= 32 => text
                .parse::<Format>()
                .map_err(|_| ApiError::bad_parameter("format", "use csv or jsonl")),
            Some(_) => Err(ApiError::bad_parameter("format", "use csv or jsonl")),
        }
    }
}

/// The `Last-Event-ID` header as a log position, if it is present and not empty.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_parameter(
            "Last-Event-ID",
            "must be the `id:` of an event this stream sent, a whole number",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_position(text).map(Some).ok_or_else(bad)
}

/// A log position: ASCII digits only (no sign, no spaces), fitting in a `u64`.
fn parse_position(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[&str] = &["q", "limit", "offset", "after"];

    fn list(query: &str) -> Params {
        Params::parse(Some(query), LIST).unwrap()
    }

    fn message(e: ApiError) -> String {
        e.message().to_owned()
    }

    #[test]
    fn defaults_and_decoding() {
        let p = list("");
        assert_eq!(p.q().unwrap(), "");
        assert_eq!(p.limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(p.offset().unwrap(), 0);
        assert_eq!(p.page_cursor().unwrap(), None);
        let p = list("q=resource_type%3Aworkspace+action:delete&limit=0&unknown=1&unknown=2");
        assert_eq!(p.q().unwrap(), "resource_type:workspace action:delete");
        assert_eq!(p.limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(list("limit=1000").limit().unwrap(), 1000);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, name) in [
            ("limit=1001", "limit"),
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("limit=1e3", "limit"),
            ("offset=-5", "offset"),
            ("offset=x", "offset"),
            ("after=nonsense", "after"),
        ] {
            let p = list(query);
            let err = p
                .limit()
                .and(p.offset())
                .and(p.page_cursor().map(|_| 0))
                .unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{query}");
            assert!(message(err).contains(&format!("`{name}`")), "{query}");
        }
    }

    #[test]
    fn offsets_beyond_the_bound_point_to_after() {
        assert_eq!(list("offset=10000").offset().unwrap(), 10_000);
        let m = message(list("offset=10001").offset().unwrap_err());
        assert!(m.contains("`after`") && m.contains("next_cursor"), "{m}");
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let err = Params::parse(Some("q=a&q=b"), LIST).unwrap_err();
        assert!(message(err).contains("`q`"));
    }

    #[test]
    fn nul_characters_are_refused() {
        assert!(message(list("q=username:a%00b").q().unwrap_err()).contains("NUL"));
    }

    #[test]
    fn long_filters_are_refused() {
        let long = format!("q={}", "a".repeat(MAX_Q_LEN + 1));
        assert!(message(list(&long).q().unwrap_err()).contains("`q`"));
    }

    #[test]
    fn positions_are_plain_numbers() {
        let stream = |q: &str| Params::parse(Some(q), &["q", "after"]).unwrap().position();
        assert_eq!(stream("after=42").unwrap(), Some(42));
        assert_eq!(stream("after=").unwrap(), None);
        for bad in [
            "after=-1",
            "after=+1",
            "after=1.0",
            "after=99999999999999999999",
            "after=%201",
        ] {
            assert!(
                message(stream(bad).unwrap_err()).contains("`after`"),
                "{bad}"
            );
        }
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", "17".parse().unwrap());
        assert_eq!(last_event_id(&headers).unwrap(), Some(17));
        headers.insert("last-event-id", "".parse().unwrap());
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", "abc".parse().unwrap());
        assert!(message(last_event_id(&headers).unwrap_err()).contains("`Last-Event-ID`"));
    }

    #[test]
    fn formats() {
        let export = |q: &str| Params::parse(Some(q), &["q", "format"]).unwrap().format();
        assert_eq!(export("").unwrap(), Format::JsonLines);
        assert_eq!(export("format=csv").unwrap(), Format::Csv);
        assert_eq!(export("format=jsonl").unwrap(), Format::JsonLines);
        assert!(message(export("format=xml").unwrap_err()).contains("`format`"));
    }
}
