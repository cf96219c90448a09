//! Translates a [`Filter`] (and a keyset position) into a parameterised SQL `WHERE` clause.
//!
//! Every value travels as a bind parameter; the SQL text holds only column names, operators
//! and placeholders. Shared by the SQLite and Postgres stores, which differ only in
//! placeholder syntax and JSON access.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Count, Cursor, Page, PageRequest, StoreError};
use crate::AuditEvent;
use crate::query::{Filter, UserMatch};

/// The one query each SQL store implements; pages, tails and the newest position are built
/// on it the same way for every store.
pub(crate) trait KeysetSelect {
    /// At most `limit` events `filter` selects: newest first, or, past a cursor on the
    /// [`Side::Newer`] side, oldest first.
    fn select(
        &mut self,
        filter: &Filter,
        cursor: Option<(&Cursor, Side)>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

/// One page; one extra row tells whether another page exists, without counting.
pub(crate) fn page(
    store: &mut impl KeysetSelect,
    filter: &Filter,
    request: &PageRequest,
) -> Result<Page, StoreError> {
    let limit = request.checked_limit()?;
    let cursor = request.cursor.as_ref().map(|c| (c, Side::Older));
    let mut events = store.select(filter, cursor, limit + 1)?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(Cursor::of)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// Events after `after` (or the newest `limit`), oldest first.
pub(crate) fn newer(
    store: &mut impl KeysetSelect,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<AuditEvent>, StoreError> {
    let limit = PageRequest::first(limit).checked_limit()?;
    match after {
        Some(cursor) => store.select(filter, Some((cursor, Side::Newer)), limit),
        None => {
            let mut newest = store.select(filter, None, limit)?;
            newest.reverse();
            Ok(newest)
        }
    }
}

/// The position of the newest event.
pub(crate) fn newest(store: &mut impl KeysetSelect) -> Result<Option<Cursor>, StoreError> {
    Ok(store
        .select(&Filter::default(), None, 1)?
        .first()
        .map(Cursor::of))
}

/// `SELECT COUNT(*)` over at most `cap + 1` rows, and how to read its result.
pub(crate) fn capped_count_sql(where_sql: &str, cap: u64) -> (String, i64) {
    let cap = i64::try_from(cap).unwrap_or(i64::MAX - 1).min(i64::MAX - 1);
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM audit_logs WHERE {where_sql} LIMIT {}) t",
        cap + 1
    );
    (sql, cap)
}

/// The count a capped query returned.
pub(crate) fn capped(n: i64, cap: i64) -> Count {
    if n > cap {
        Count::AtLeast(cap as u64)
    } else {
        Count::Exact(n.max(0) as u64)
    }
}

/// `ORDER BY` for a side of the cursor.
pub(crate) fn order_by(cursor: Option<(&Cursor, Side)>) -> &'static str {
    match cursor.map(|(_, side)| side) {
        Some(Side::Newer) => "time ASC, id ASC",
        _ => "time DESC, id DESC",
    }
}

/// The SQL flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

/// A bind parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Time(DateTime<Utc>),
    /// An event id (the keyset tiebreaker).
    Id(Uuid),
    /// A request id.
    Uuid(Uuid),
    /// A number inside `additional_fields` (SQLite).
    Int(i64),
    /// A number inside `additional_fields` (SQLite).
    Real(f64),
}

/// Which side of a cursor to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Older than the cursor (the next page, newest first).
    Older,
    /// Newer than the cursor (tailing, oldest first).
    Newer,
}

/// A `WHERE` clause (without the keyword; `TRUE`-like when empty) and its parameters.
#[derive(Debug, Default)]
pub(crate) struct Where {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Where {
    pub(crate) fn build(
        dialect: Dialect,
        filter: &Filter,
        cursor: Option<(&Cursor, Side)>,
    ) -> Result<Self, StoreError> {
        let mut w = Builder {
            dialect,
            terms: Vec::new(),
            params: Vec::new(),
        };
        let columns = [
            ("resource_type", filter.resource_type()),
            ("resource_id", filter.resource_id()),
            ("resource_target", filter.resource_target()),
            ("action", filter.action()),
        ];
        for (column, value) in columns {
            if let Some(value) = value {
                let p = w.param(Param::Text(value.to_owned()));
                w.terms.push(format!("{column} = {p}"));
            }
        }
        if let Some(email) = filter.email() {
            let p = w.param(Param::Text(email.to_owned()));
            w.terms.push(w.case_insensitive_eq("email", &p));
        }
        match filter.username() {
            Some(UserMatch::Username(name)) => {
                let p = w.param(Param::Text(name.clone()));
                w.terms.push(w.case_insensitive_eq("username", &p));
            }
            Some(UserMatch::Me) => {
                return Err(StoreError::InvalidRequest(
                    "`username:me` needs the caller's username: resolve it with Filter::resolve_me (the CLI's --me)".into(),
                ));
            }
            None => {}
        }
        // A date bound on the side the cursor reads towards is implied by the cursor when the
        // cursor lies inside it ((time, id) < (t, …) gives time <= t), and is then left out:
        // with two upper (or two lower) bounds on `time`, SQLite ranges the index scan on the
        // plain one and filters the keyset row by row, so page 100 would scan the 99 pages
        // before it. The rows selected are the same either way.
        let cursor_time = |side: Side| cursor.filter(|(_, s)| *s == side).map(|(c, _)| c.time());
        if let Some(from) = filter.date_from()
            && cursor_time(Side::Newer).is_none_or(|t| t < from)
        {
            let p = w.param(Param::Time(from));
            w.terms.push(format!("time >= {p}"));
        }
        // `date_to` covers its whole day: before the next day's first instant.
        match (filter.date_to_exclusive(), filter.date_to()) {
            (Some(end), _) if cursor_time(Side::Older).is_none_or(|t| t >= end) => {
                let p = w.param(Param::Time(end));
                w.terms.push(format!("time < {p}"));
            }
            (None, Some(last)) if cursor_time(Side::Older).is_none_or(|t| t > last) => {
                let p = w.param(Param::Time(last));
                w.terms.push(format!("time <= {p}"));
            }
            _ => {}
        }
        if let Some(request_id) = filter.request_id() {
            let p = w.param(Param::Uuid(request_id));
            w.terms.push(format!("request_id = {p}"));
        }
        for (key, value) in filter.additional_terms() {
            let term = w.additional_term(key, value);
            w.terms.push(term);
        }
        if let Some((cursor, side)) = cursor {
            let t = w.param(Param::Time(cursor.time()));
            let id = w.param(Param::Id(cursor.id()));
            let op = if side == Side::Older { "<" } else { ">" };
            w.terms.push(format!("(time, id) {op} ({t}, {id})"));
        }
        let sql = if w.terms.is_empty() {
            "1 = 1".to_owned()
        } else {
            w.terms.join(" AND ")
        };
        Ok(Where {
            sql,
            params: w.params,
        })
    }
}

struct Builder {
    dialect: Dialect,
    terms: Vec<String>,
    params: Vec<Param>,
}

impl Builder {
    /// `additional_fields[key]` equals `value`, where numbers and booleans compare by their
    /// JSON text, as `Filter::matches` does. Keys that are plain identifiers (all registered
    /// keys, such as `build_reason`) are written into the SQL as a JSON path literal so that
    /// expression indexes apply; any other key is a parameter. Values are always parameters.
    fn additional_term(&mut self, key: &str, value: &str) -> String {
        let plain_key = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match self.dialect {
            Dialect::Postgres => {
                let k = if plain_key {
                    format!("'{key}'")
                } else {
                    self.param(Param::Text(key.to_owned()))
                };
                let v = self.param(Param::Text(value.to_owned()));
                format!("additional_fields ->> {k} = {v}")
            }
            Dialect::Sqlite => {
                let path = if plain_key {
                    format!("'$.\"{key}\"'")
                } else {
                    self.param(Param::Text(json_path(key)))
                };
                let v = self.param(Param::Text(value.to_owned()));
                let extract = format!("json_extract(additional_fields, {path})");
                if value == "true" || value == "false" {
                    format!("({extract} = {v} OR json_type(additional_fields, {path}) = {v})")
                } else if let Some(number) = number_param(value) {
                    let n = self.param(number);
                    format!("{extract} IN ({v}, {n})")
                } else {
                    format!("{extract} = {v}")
                }
            }
        }
    }

    /// Usernames and emails match without regard to ASCII case, as `Filter::matches` does.
    /// SQLite declares these columns `COLLATE NOCASE`; Postgres indexes `lower(column)`.
    fn case_insensitive_eq(&self, column: &str, param: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{column} = {param}"),
            Dialect::Postgres => format!("lower({column}) = lower({param})"),
        }
    }

    fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }
}

/// `value` as a JSON number, if it is one (SQLite's `json_extract` returns numbers as such).
fn number_param(value: &str) -> Option<Param> {
    if let Ok(i) = value.parse::<i64>() {
        return Some(Param::Int(i));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Param::Real)
}

/// A SQLite JSON path selecting the top-level `key`, quoted so any key is safe.
fn json_path(key: &str) -> String {
    format!("$.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_only_ever_travel_as_parameters() {
        let filter = Filter::default()
            .with_resource_type("workspace")
            .with_username("x' OR '1'='1")
            .with_additional("build_reason", "auto'start");
        let w = Where::build(Dialect::Sqlite, &filter, None).unwrap();
        assert!(!w.sql.contains("x'") && !w.sql.contains("auto"));
        assert_eq!(w.params.len(), 3);
        assert!(
            w.sql.contains("'$.\"build_reason\"'"),
            "plain keys are index-friendly paths: {}",
            w.sql
        );
        let odd = Filter::default().with_additional("it's", "v");
        let w = Where::build(Dialect::Sqlite, &odd, None).unwrap();
        assert!(
            !w.sql.contains("it's"),
            "other keys are parameters: {}",
            w.sql
        );
        let pg = Where::build(Dialect::Postgres, &filter, None).unwrap();
        assert!(pg.sql.contains("$1") && pg.sql.contains("$3") && !pg.sql.contains('?'));
    }

    #[test]
    fn a_cursor_inside_the_date_range_replaces_the_bound_on_its_side() {
        use chrono::NaiveDate;
        let day = |m, d| NaiveDate::from_ymd_opt(2024, m, d).unwrap();
        let filter = Filter::default()
            .with_date_from(day(3, 1))
            .with_date_to(day(3, 20));
        let at = |m, d| {
            let time = day(m, d).and_hms_opt(12, 0, 0).unwrap().and_utc();
            format!("{:x}.{}", time.timestamp_micros(), Uuid::nil().simple())
                .parse::<Cursor>()
                .unwrap()
        };
        let terms = |cursor: Cursor, side| {
            Where::build(Dialect::Sqlite, &filter, Some((&cursor, side)))
                .unwrap()
                .sql
        };
        // Inside the range, the keyset is the only bound on the side it reads towards.
        assert_eq!(
            terms(at(3, 10), Side::Older),
            "time >= ?1 AND (time, id) < (?2, ?3)"
        );
        assert_eq!(
            terms(at(3, 10), Side::Newer),
            "time < ?1 AND (time, id) > (?2, ?3)"
        );
        // Outside it, both bounds stay.
        let both_older = "time >= ?1 AND time < ?2 AND (time, id) < (?3, ?4)";
        assert_eq!(terms(at(3, 25), Side::Older), both_older);
        let both_newer = "time >= ?1 AND time < ?2 AND (time, id) > (?3, ?4)";
        assert_eq!(terms(at(2, 25), Side::Newer), both_newer);
        // A cursor on the last day of the range is still inside it.
        assert_eq!(
            terms(at(3, 20), Side::Older),
            "time >= ?1 AND (time, id) < (?2, ?3)"
        );
    }

    #[test]
    fn unresolved_me_is_an_error_not_a_match_all() {
        let filter = Filter::default().with_username("me");
        let err = Where::build(Dialect::Sqlite, &filter, None).unwrap_err();
        assert!(err.to_string().contains("resolve_me"));
    }

    #[test]
    fn json_paths_quote_keys() {
        assert_eq!(json_path("build_reason"), "$.\"build_reason\"");
        assert_eq!(json_path("a\"b.c"), "$.\"a\\\"b.c\"");
    }
}
