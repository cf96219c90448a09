//! What the SQL stores share for reading: the translation of a [`Filter`] (and a position)
//! into a parameterised `WHERE` clause, the reads built on it, and the indexes of declared
//! keys.
//!
//! Every value travels as a bind parameter; the SQL text holds only column names, operators
//! and placeholders. The SQLite and Postgres stores differ only in placeholder syntax and
//! JSON access.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::columns::COLUMN_LIST;
use super::storable::storable_str;
use super::{Count, Cursor, Page, PageRequest, StoreError, StoredEvent};
use crate::query::{Filter, UserMatch};

/// Which events a read walks through, in which order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan<'a> {
    /// Newest first by `(time, id)`: a page, after the previous page's cursor if any.
    Page(Option<&'a Cursor>),
    /// Oldest first by `(time, id)`, after a cursor: the page just newer than it, read from
    /// its oldest end.
    NewerPage(&'a Cursor),
    /// By position, after `after`, oldest first.
    After(u64),
    /// By position, newest first.
    Latest,
}

impl Scan<'_> {
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            Scan::Page(_) => "time DESC, id DESC",
            Scan::NewerPage(_) => "time ASC, id ASC",
            Scan::After(_) => "seq ASC",
            Scan::Latest => "seq DESC",
        }
    }
}

/// The two queries each SQL store runs for reading; pages, follower reads and counts are
/// built on them the same way for every store.
pub(crate) trait SqlRead {
    /// The store's SQL flavour.
    const DIALECT: Dialect;

    /// Runs a `SELECT` of [`COLUMNS`] and reads its rows.
    fn query_events(&mut self, sql: &str, params: &[Param])
    -> Result<Vec<StoredEvent>, StoreError>;

    /// Runs a `SELECT COUNT(*)` and reads its one number.
    fn query_count(&mut self, sql: &str, params: &[Param]) -> Result<i64, StoreError>;

    /// At most `limit` events `filter` selects, in the order of `scan` ([`select`] unless
    /// the store reads some filters its own way).
    fn select(
        &mut self,
        filter: &Filter,
        scan: Scan<'_>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>
    where
        Self: Sized,
    {
        select(self, filter, scan, limit)
    }

    /// How many events `filter` selects, counting at most `cap + 1` ([`count`] unless the
    /// store counts some filters its own way).
    fn count_capped(&mut self, filter: &Filter, cap: u64) -> Result<Count, StoreError>
    where
        Self: Sized,
    {
        count(self, filter, cap)
    }
}

/// At most `limit` events `filter` selects, in the order of `scan`.
pub(crate) fn select<S: SqlRead>(
    store: &mut S,
    filter: &Filter,
    scan: Scan<'_>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let w = Where::build(S::DIALECT, filter, scan)?;
    let sql = format!(
        "SELECT {} FROM audit_logs WHERE {} ORDER BY {} LIMIT {limit}",
        *COLUMN_LIST,
        w.sql,
        scan.order_by()
    );
    store.query_events(&sql, &w.params)
}

/// How many events `filter` selects, counting at most `cap + 1` rows.
pub(crate) fn count<S: SqlRead>(
    store: &mut S,
    filter: &Filter,
    cap: u64,
) -> Result<Count, StoreError> {
    let w = Where::build(S::DIALECT, filter, Scan::Page(None))?;
    let cap = count_cap(cap);
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM audit_logs WHERE {} LIMIT {}) t",
        w.sql,
        cap + 1
    );
    let n = store.query_count(&sql, &w.params)?;
    Ok(capped(n, cap))
}

/// A count cap as a database integer (room left for the one extra row counted).
pub(crate) fn count_cap(cap: u64) -> i64 {
    i64::try_from(cap).unwrap_or(i64::MAX - 1).min(i64::MAX - 1)
}

/// `n` rows counted with a cap of `cap` (and one more row allowed, to tell "more").
pub(crate) fn capped(n: i64, cap: i64) -> Count {
    if n > cap {
        Count::AtLeast(cap as u64)
    } else {
        Count::Exact(n.max(0) as u64)
    }
}

/// One page; one extra row tells whether another page exists, without counting.
pub(crate) fn page(
    store: &mut impl SqlRead,
    filter: &Filter,
    request: &PageRequest,
) -> Result<Page, StoreError> {
    let limit = request.checked_limit()?;
    let mut events = store.select(filter, Scan::Page(request.cursor.as_ref()), limit + 1)?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| Cursor::of(e))
    } else {
        None
    };
    Ok(Page { events, next })
}

/// The `limit` events just newer than `cursor`, newest first; `next` is set when even newer
/// events exist (one extra row tells).
pub(crate) fn page_newer(
    store: &mut impl SqlRead,
    filter: &Filter,
    cursor: &Cursor,
    limit: usize,
) -> Result<Page, StoreError> {
    let limit = PageRequest::first(limit).checked_limit()?;
    let mut events = store.select(filter, Scan::NewerPage(cursor), limit + 1)?;
    let newer_still = events.len() > limit;
    events.truncate(limit);
    events.reverse();
    let next = if newer_still {
        events.first().map(|e| Cursor::of(e))
    } else {
        None
    };
    Ok(Page { events, next })
}

/// Events after position `after` (or the newest `limit`), in log order.
pub(crate) fn newer(
    store: &mut impl SqlRead,
    filter: &Filter,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let limit = PageRequest::first(limit).checked_limit()?;
    match after {
        Some(after) => store.select(filter, Scan::After(after), limit),
        None => {
            let mut newest = store.select(filter, Scan::Latest, limit)?;
            newest.reverse();
            Ok(newest)
        }
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
    /// A log position.
    Seq(u64),
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
        scan: Scan<'_>,
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
            ("organization_id", filter.organization_id()),
        ];
        for (column, value) in columns {
            if let Some(value) = value {
                let p = w.param(Param::Text(value.to_owned()));
                w.terms.push(format!("{column} = {p}"));
            }
        }
        // The reader's scope: only these organizations, never a site-wide event (whose
        // organization is NULL, which `IN` never matches).
        if let Some(orgs) = filter.organizations() {
            if orgs.is_empty() {
                w.terms.push("1 = 0".to_owned());
            } else {
                let params: Vec<String> = orgs
                    .iter()
                    .map(|org| w.param(Param::Text(org.clone())))
                    .collect();
                w.terms
                    .push(format!("organization_id IN ({})", params.join(", ")));
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
        // The upper date bound is implied by a page cursor that lies inside it ((time, id) <
        // (t, …) gives time <= t), and is then left out: with two upper bounds on `time`,
        // SQLite ranges the index scan on the plain one and filters the keyset row by row, so
        // page 100 would scan the 99 pages before it. The rows selected are the same.
        let cursor_time = match scan {
            Scan::Page(Some(cursor)) => Some(cursor.time()),
            _ => None,
        };
        // Likewise a newer page's cursor implies the lower date bound when it lies inside it
        // ((time, id) > (t, …) gives time >= t).
        let newer_than = match scan {
            Scan::NewerPage(cursor) => Some(cursor.time()),
            _ => None,
        };
        if let Some(from) = filter.date_from()
            && newer_than.is_none_or(|t| t < from)
        {
            let p = w.param(Param::Time(from));
            w.terms.push(format!("time >= {p}"));
        }
        // `date_to` covers its whole day: before the next day's first instant.
        match (filter.date_to_exclusive(), filter.date_to()) {
            (Some(end), _) if cursor_time.is_none_or(|t| t >= end) => {
                let p = w.param(Param::Time(end));
                w.terms.push(format!("time < {p}"));
            }
            (None, Some(last)) if cursor_time.is_none_or(|t| t > last) => {
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
        match scan {
            Scan::Page(Some(cursor)) => {
                let t = w.param(Param::Time(cursor.time()));
                let id = w.param(Param::Id(cursor.id()));
                w.terms.push(format!("(time, id) < ({t}, {id})"));
            }
            Scan::NewerPage(cursor) => {
                let t = w.param(Param::Time(cursor.time()));
                let id = w.param(Param::Id(cursor.id()));
                w.terms.push(format!("(time, id) > ({t}, {id})"));
            }
            Scan::After(after) => {
                let p = w.param(Param::Seq(after));
                w.terms.push(format!("seq > {p}"));
            }
            Scan::Page(None) | Scan::Latest => {}
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

impl Where {
    /// Adds `term`, built with the placeholder of `param`, to the clause.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn and_with(
        &mut self,
        dialect: Dialect,
        param: Param,
        term: impl FnOnce(&str) -> String,
    ) {
        let p = placeholder(dialect, &mut self.params, param);
        self.sql = format!("{} AND {}", self.sql, term(&p));
    }
}

/// Adds `param` to `params`, as a value is compared with what was stored (in which NUL became
/// U+FFFD), and returns its placeholder.
///
/// SQLite's is written `+?N`. Compared with an indexed column, a bare `?N` lets SQLite's
/// planner take note of the value bound to it, and then binding another value, or clearing
/// the bindings as every reuse of a cached statement does, makes SQLite prepare the statement
/// again: a quarter of a rare key's read went there. `+?N` is the same value in an
/// expression the planner does not look into; indexes serve it all the same.
fn placeholder(dialect: Dialect, params: &mut Vec<Param>, param: Param) -> String {
    let param = match param {
        Param::Text(text) if text.contains('\0') => Param::Text(storable_str(&text).into_owned()),
        other => other,
    };
    params.push(param);
    match dialect {
        Dialect::Sqlite => format!("+?{}", params.len()),
        Dialect::Postgres => format!("${}", params.len()),
    }
}

struct Builder {
    dialect: Dialect,
    terms: Vec<String>,
    params: Vec<Param>,
}

impl Builder {
    /// `additional_fields[key]` equals `value`, where numbers and booleans compare by their
    /// JSON text, as `Filter::matches` does. Keys that are plain identifiers are written into
    /// the SQL as the same literal an [`IndexedKey`]'s index uses, so that the index applies;
    /// any other key is a parameter. Values are always parameters.
    fn additional_term(&mut self, key: &str, value: &str) -> String {
        let plain_key = is_plain_key(key);
        match self.dialect {
            Dialect::Postgres => {
                let k = if plain_key {
                    IndexedKey::postgres_literal(key)
                } else {
                    self.param(Param::Text(key.to_owned()))
                };
                let v = self.param(Param::Text(value.to_owned()));
                format!("additional_fields ->> {k} = {v}")
            }
            Dialect::Sqlite => {
                let path = if plain_key {
                    IndexedKey::sqlite_literal(key)
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
        placeholder(self.dialect, &mut self.params, param)
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

/// Whether `key` is an identifier (`[A-Za-z_][A-Za-z0-9_]*`), safe to write into SQL text.
fn is_plain_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The indexes the stores create themselves; a declared key may not take one of their names.
const BUILT_IN_INDEXES: &[&str] = &[
    "time",
    "resource_type",
    "resource_type_action",
    "action",
    "username",
    "email",
    "resource_id",
    "resource_target",
    "request_id",
    "seq",
    "pkey",
];

/// An additional key a writer declares indexed: an expression index on
/// `additional_fields[key]` (ending in `(time, id)` on Postgres, after the bucket and ending
/// in `time` on SQLite, like the other filter indexes of each), named `audit_logs_<key>`,
/// created if missing when the store is opened to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexedKey(String);

impl IndexedKey {
    /// Checks `key`: an identifier of at most 40 characters that names no built-in index
    /// (nor a partition, `p<digits>_<digits>`).
    pub(crate) fn new(key: &str) -> Result<Self, StoreError> {
        let partition_like = key.strip_prefix('p').is_some_and(|rest| {
            rest.split('_').count() == 2 && rest.chars().all(|c| c.is_ascii_digit() || c == '_')
        });
        if !is_plain_key(key)
            || key.len() > 40
            || BUILT_IN_INDEXES.contains(&key.to_ascii_lowercase().as_str())
            || partition_like
        {
            return Err(StoreError::InvalidRequest(format!(
                "cannot index additional key `{}`: use letters, digits and `_` (at most 40, not \
                 starting with a digit), and not the name of a built-in key",
                key.chars().take(60).collect::<String>()
            )));
        }
        Ok(IndexedKey(key.to_owned()))
    }

    /// The index's name, quoted.
    pub(crate) fn index_name(&self) -> String {
        format!("\"audit_logs_{}\"", self.0)
    }

    /// The key.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn key(&self) -> &str {
        &self.0
    }

    /// `CREATE INDEX IF NOT EXISTS` for this key: on `(bucket, value, time)` when given the
    /// bucket expression of a store that buckets its key indexes, else on `(value, time, id)`.
    pub(crate) fn create_sql(&self, dialect: Dialect, bucket: Option<&str>) -> String {
        let expression = match dialect {
            Dialect::Sqlite => format!(
                "json_extract(additional_fields, {})",
                Self::sqlite_literal(&self.0)
            ),
            Dialect::Postgres => format!(
                "(additional_fields ->> {})",
                Self::postgres_literal(&self.0)
            ),
        };
        let columns = match bucket {
            Some(bucket) => format!("{bucket}, {expression}, time"),
            None => format!("{expression}, time, id"),
        };
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON audit_logs ({columns})",
            self.index_name()
        )
    }

    /// The JSON path literal of a plain key, as SQLite's index and queries spell it.
    fn sqlite_literal(key: &str) -> String {
        format!("'$.\"{key}\"'")
    }

    /// The key literal of a plain key, as Postgres's index and queries spell it.
    fn postgres_literal(key: &str) -> String {
        format!("'{key}'")
    }
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
        let w = Where::build(Dialect::Sqlite, &filter, Scan::Page(None)).unwrap();
        assert!(!w.sql.contains("x'") && !w.sql.contains("auto"));
        assert_eq!(w.params.len(), 3);
        assert!(
            w.sql.contains("'$.\"build_reason\"'"),
            "plain keys are index-friendly paths: {}",
            w.sql
        );
        let odd = Filter::default().with_additional("it's", "v");
        let w = Where::build(Dialect::Sqlite, &odd, Scan::Page(None)).unwrap();
        assert!(
            !w.sql.contains("it's"),
            "other keys are parameters: {}",
            w.sql
        );
        let pg = Where::build(Dialect::Postgres, &filter, Scan::Page(None)).unwrap();
        assert!(pg.sql.contains("$1") && pg.sql.contains("$3") && !pg.sql.contains('?'));
    }

    #[test]
    fn a_page_cursor_inside_the_date_range_replaces_the_upper_bound() {
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
        let terms = |cursor: Cursor| {
            Where::build(Dialect::Sqlite, &filter, Scan::Page(Some(&cursor)))
                .unwrap()
                .sql
        };
        // Inside the range, the keyset is the only upper bound.
        assert_eq!(terms(at(3, 10)), "time >= +?1 AND (time, id) < (+?2, +?3)");
        // Outside it, both bounds stay.
        assert_eq!(
            terms(at(3, 25)),
            "time >= +?1 AND time < +?2 AND (time, id) < (+?3, +?4)"
        );
        // A cursor on the last day of the range is still inside it.
        assert_eq!(terms(at(3, 20)), "time >= +?1 AND (time, id) < (+?2, +?3)");
        // Followers read by position, with both date bounds.
        let after = Where::build(Dialect::Postgres, &filter, Scan::After(7)).unwrap();
        assert_eq!(after.sql, "time >= $1 AND time < $2 AND seq > $3");
        assert_eq!(after.params[2], Param::Seq(7));
    }

    #[test]
    fn filter_values_are_compared_in_their_stored_form() {
        let filter = Filter::default().with_resource_type("a\0b");
        let w = Where::build(Dialect::Postgres, &filter, Scan::Latest).unwrap();
        assert_eq!(w.params, [Param::Text("a\u{FFFD}b".into())]);
    }

    #[test]
    fn indexed_keys_are_identifiers_that_take_no_built_in_name() {
        let key = IndexedKey::new("build_reason").unwrap();
        assert_eq!(
            key.create_sql(Dialect::Sqlite, Some("seq >> 10")),
            "CREATE INDEX IF NOT EXISTS \"audit_logs_build_reason\" ON audit_logs \
             (seq >> 10, json_extract(additional_fields, '$.\"build_reason\"'), time)"
        );
        assert_eq!(
            key.create_sql(Dialect::Postgres, None),
            "CREATE INDEX IF NOT EXISTS \"audit_logs_build_reason\" ON audit_logs \
             ((additional_fields ->> 'build_reason'), time, id)"
        );
        for bad in [
            "",
            "a b",
            "it's",
            "1st",
            "time",
            "Seq",
            "p2024_03",
            &"k".repeat(41),
        ] {
            let err = IndexedKey::new(bad).unwrap_err().to_string();
            assert!(err.contains("cannot index additional key"), "{bad}: {err}");
        }
        assert!(IndexedKey::new("plan_2").is_ok() && IndexedKey::new("price").is_ok());
    }

    #[test]
    fn unresolved_me_is_an_error_not_a_match_all() {
        let filter = Filter::default().with_username("me");
        let err = Where::build(Dialect::Sqlite, &filter, Scan::Page(None)).unwrap_err();
        assert!(err.to_string().contains("resolve_me"));
    }

    #[test]
    fn json_paths_quote_keys() {
        assert_eq!(json_path("build_reason"), "$.\"build_reason\"");
        assert_eq!(json_path("a\"b.c"), "$.\"a\\\"b.c\"");
    }
}
