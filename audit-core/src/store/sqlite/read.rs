//! Reads of a filter on a key, served by the key's bucketed index (see [`super::layout`]).
//!
//! The index orders entries by bucket of positions first, so one query cannot return a
//! key's events newest first across buckets. A read walks the buckets instead, a chunk of
//! them per query (`seq >> 10 IN (…)`, one index seek per bucket), with chunks that double in
//! size: a key in every other event is answered from the newest bucket or two, a rare one in
//! a handful of queries over every bucket.
//!
//! * **Pages** (newest first by `(time, id)`) take buckets by their newest event, newest
//!   first, skipping those outside the filter's dates or after the cursor, and stop once the
//!   page is full and the next bucket holds nothing newer than its last event. Positions
//!   follow commit order, not event time, so a late event may sit in a newer bucket than
//!   older-timed ones: the buckets' time spans keep the page exact all the same.
//! * **Newer pages** (oldest first after a cursor: the page just newer than it) do the same
//!   the other way: buckets by their oldest event, oldest first.
//! * **Followers** (by position) take buckets in position order from where they are.
//! * **Counts** add up chunks until they pass the cap.
//!
//! Each read runs in one read transaction, so it sees one snapshot of the log.

use chrono::{DateTime, Utc};

use super::SqliteStore;
use super::layout::{BUCKET, BUCKETS_TABLE, bucket_of};
use crate::query::{Filter, UserMatch};
use crate::store::columns::COLUMN_LIST;
use crate::store::sql::{self, Dialect, IndexedKey, Param, Scan, SqlRead, Where};
use crate::store::{Count, StoreError, StoredEvent};

/// The index that serves a filter, and the term that lets it when the filter names a key the
/// index does not hold itself.
#[derive(Debug, PartialEq)]
struct Driver {
    index: String,
    term: Option<Term>,
}

#[derive(Debug, PartialEq)]
enum Term {
    /// An email, through the usernames recorded with it.
    Email(String),
    /// An action alone, through the resource types recorded with it.
    Action(String),
}

impl Driver {
    fn new(index: &str, term: Option<Term>) -> Self {
        Driver {
            index: index.to_owned(),
            term,
        }
    }

    /// The most selective key of `filter` that has an index, if any. `declared` are the
    /// additional keys indexed in this store.
    fn choose(filter: &Filter, declared: &[IndexedKey]) -> Option<Self> {
        if filter.request_id().is_some() {
            return Some(Self::new("audit_logs_request_id", None));
        }
        if filter.resource_id().is_some() {
            return Some(Self::new("audit_logs_resource_id", None));
        }
        if filter.resource_target().is_some() {
            return Some(Self::new("audit_logs_resource_target", None));
        }
        match (filter.username(), filter.email()) {
            (Some(UserMatch::Username(_)), _) => {
                return Some(Self::new("audit_logs_username", None));
            }
            (None, Some(email)) => {
                let term = Some(Term::Email(email.to_owned()));
                return Some(Self::new("audit_logs_username", term));
            }
            _ => {}
        }
        // A declared key's index serves the term only as a plain comparison of its JSON
        // value (a boolean is also compared with its JSON type, which no index holds).
        let declared_term = filter.additional_terms().find(|(key, value)| {
            !matches!(*value, "true" | "false") && declared.iter().any(|k| k.key() == *key)
        });
        if let Some((key, _)) = declared_term {
            return Some(Self::new(&format!("audit_logs_{key}"), None));
        }
        if filter.resource_type().is_some() {
            return Some(Self::new("audit_logs_resource_type_action", None));
        }
        let action = filter.action()?;
        let term = Some(Term::Action(action.to_owned()));
        Some(Self::new("audit_logs_resource_type_action", term))
    }
}

/// A query over a chunk of buckets, whose list is its last parameter.
struct ChunkQuery {
    /// Everything after `SELECT … FROM`: the table, index, and `WHERE`.
    from_where: String,
    params: Vec<Param>,
}

impl ChunkQuery {
    fn new(filter: &Filter, scan: Scan<'_>, driver: &Driver) -> Result<Self, StoreError> {
        let mut w = Where::build(Dialect::Sqlite, filter, scan)?;
        match &driver.term {
            Some(Term::Email(email)) => {
                w.and_with(Dialect::Sqlite, Param::Text(email.clone()), |p| {
                    format!(
                        "username IN (SELECT username FROM audit_recorded_actors WHERE email = {p})"
                    )
                })
            }
            Some(Term::Action(action)) => {
                w.and_with(Dialect::Sqlite, Param::Text(action.clone()), |p| {
                    format!(
                        "resource_type IN \
                         (SELECT resource_type FROM audit_recorded_actions WHERE action = {p})"
                    )
                })
            }
            None => {}
        }
        w.and_with(Dialect::Sqlite, Param::Text(String::new()), |p| {
            format!("{BUCKET} IN (SELECT value FROM json_each({p}))")
        });
        Ok(ChunkQuery {
            from_where: format!("audit_logs INDEXED BY \"{}\" WHERE {}", driver.index, w.sql),
            params: w.params,
        })
    }

    /// The parameters for a chunk of buckets.
    fn with_buckets(&mut self, buckets: &[i64]) -> &[Param] {
        let list = format!(
            "[{}]",
            buckets
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        if let Some(last) = self.params.last_mut() {
            *last = Param::Text(list);
        }
        &self.params
    }
}

/// Chunks of a list of buckets, one bucket first, each twice the one before.
struct Chunks {
    start: usize,
    size: usize,
    len: usize,
}

impl Chunks {
    fn over(len: usize) -> Self {
        Chunks {
            start: 0,
            size: 1,
            len,
        }
    }
}

impl Iterator for Chunks {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.start >= self.len {
            return None;
        }
        let range = self.start..(self.start + self.size).min(self.len);
        self.start = range.end;
        self.size *= 2;
        Some(range)
    }
}

/// A bucket and the time of its event nearest to where a read starts: its newest event for
/// reads newest first, its oldest for reads oldest first.
struct Bucket {
    bucket: i64,
    edge_time: i64,
}

/// At most `limit` events `filter` selects in the order of `scan`, read through a key index;
/// `None` when no key of the filter is indexed.
pub(super) fn select(
    store: &mut SqliteStore,
    filter: &Filter,
    scan: Scan<'_>,
    limit: usize,
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let Some(driver) = Driver::choose(filter, &store.declared) else {
        return Ok(None);
    };
    let mut query = ChunkQuery::new(filter, scan, &driver)?;
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {} LIMIT {limit}",
        *COLUMN_LIST,
        query.from_where,
        scan.order_by()
    );
    in_snapshot(store, |store| {
        let events = match scan {
            Scan::Page(cursor) => {
                let start = Start::Newest(cursor.map(|c| c.time()));
                by_time(store, filter, &sql, &mut query, start, limit)?
            }
            Scan::NewerPage(cursor) => {
                let start = Start::Oldest(cursor.time());
                by_time(store, filter, &sql, &mut query, start, limit)?
            }
            Scan::After(after) => {
                let head = super::append::head_row(&store.conn)?;
                let buckets: Vec<i64> =
                    (bucket_of(after.saturating_add(1))..=bucket_of(head.seq)).collect();
                by_position(store, &sql, &mut query, &buckets, limit)?
            }
            Scan::Latest => {
                let head = super::append::head_row(&store.conn)?;
                let buckets: Vec<i64> = (bucket_of(head.purged_through + 1)..=bucket_of(head.seq))
                    .rev()
                    .collect();
                by_position(store, &sql, &mut query, &buckets, limit)?
            }
        };
        Ok(Some(events))
    })
}

/// How many events `filter` selects, counting at most `cap + 1`, through a key index; `None`
/// when no key of the filter is indexed.
pub(super) fn count(
    store: &mut SqliteStore,
    filter: &Filter,
    cap: u64,
) -> Result<Option<Count>, StoreError> {
    let Some(driver) = Driver::choose(filter, &store.declared) else {
        return Ok(None);
    };
    let mut query = ChunkQuery::new(filter, Scan::Page(None), &driver)?;
    let cap = sql::count_cap(cap);
    in_snapshot(store, |store| {
        let buckets = buckets(store, filter, Start::Newest(None))?;
        let mut counted = 0i64;
        for chunk in Chunks::over(buckets.len()) {
            let list: Vec<i64> = buckets[chunk].iter().map(|b| b.bucket).collect();
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {} LIMIT {})",
                query.from_where,
                cap + 1 - counted
            );
            counted += store.query_count(&sql, query.with_buckets(&list))?;
            if counted > cap {
                break;
            }
        }
        Ok(Some(sql::capped(counted, cap)))
    })
}

/// A page by time from `start`'s end: chunks of the [buckets](buckets) that may hold events
/// of `filter` (by their newest event, newest first, or by their oldest event, oldest first),
/// merged, until no bucket left can hold an event that comes before the page's last in that
/// order.
fn by_time(
    store: &mut SqliteStore,
    filter: &Filter,
    sql: &str,
    query: &mut ChunkQuery,
    start: Start,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let buckets = buckets(store, filter, start)?;
    let newest_first = matches!(start, Start::Newest(_));
    let mut events: Vec<StoredEvent> = Vec::new();
    for chunk in Chunks::over(buckets.len()) {
        if let Some(last) = events.get(limit.saturating_sub(1)) {
            let (edge, last) = (buckets[chunk.start].edge_time, last.time.timestamp_micros());
            if (newest_first && edge < last) || (!newest_first && edge > last) {
                break;
            }
        }
        let list: Vec<i64> = buckets[chunk].iter().map(|b| b.bucket).collect();
        events.extend(store.query_events(sql, query.with_buckets(&list))?);
        if newest_first {
            events.sort_by_key(|e| std::cmp::Reverse((e.time, e.id)));
        } else {
            events.sort_by_key(|e| (e.time, e.id));
        }
        events.truncate(limit);
    }
    Ok(events)
}

/// In position order: chunks of `buckets` (in the order of the scan) until `limit` events.
fn by_position(
    store: &mut SqliteStore,
    sql: &str,
    query: &mut ChunkQuery,
    buckets: &[i64],
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    for chunk in Chunks::over(buckets.len()) {
        events.extend(store.query_events(sql, query.with_buckets(&buckets[chunk]))?);
        if events.len() >= limit {
            events.truncate(limit);
            break;
        }
    }
    Ok(events)
}

/// Which end of the log a read starts from, and so which buckets come first.
#[derive(Clone, Copy)]
enum Start {
    /// Newest first, at or before a time (a page's cursor) if any.
    Newest(Option<DateTime<Utc>>),
    /// Oldest first, at or after a time (a newer page's cursor).
    Oldest(DateTime<Utc>),
}

/// The buckets that may hold events of `filter`'s dates (and within the bound of `start`),
/// in the order of `start`: by their newest event, newest first, or by their oldest event,
/// oldest first.
fn buckets(store: &SqliteStore, filter: &Filter, start: Start) -> Result<Vec<Bucket>, StoreError> {
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let (since, until) = match start {
        Start::Newest(until) => (None, until),
        Start::Oldest(since) => (Some(since), None),
    };
    let lower = [filter.date_from(), since]
        .into_iter()
        .flatten()
        .map(micros)
        .max()
        .unwrap_or(i64::MIN);
    let upper = [
        filter.date_to_exclusive().map(|t| micros(t) - 1),
        filter.date_to().map(micros),
        until.map(micros),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(i64::MAX);
    let (edge, order) = match start {
        Start::Newest(_) => ("max_time", "max_time DESC, bucket DESC"),
        Start::Oldest(_) => ("min_time", "min_time ASC, bucket ASC"),
    };
    let mut stmt = store.conn.prepare_cached(&format!(
        "SELECT bucket, {edge} FROM {BUCKETS_TABLE} WHERE max_time >= ?1 AND min_time <= ?2 \
         ORDER BY {order}"
    ))?;
    let rows = stmt.query_map([lower, upper], |r| {
        Ok(Bucket {
            bucket: r.get(0)?,
            edge_time: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Runs `read` in one read transaction (unless one is open already).
fn in_snapshot<T>(
    store: &mut SqliteStore,
    read: impl FnOnce(&mut SqliteStore) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !store.conn.is_autocommit() {
        return read(store);
    }
    store.conn.execute_batch("BEGIN")?;
    let result = read(store);
    // Nothing was written: ending the transaction either way only releases the snapshot.
    let ended = store.conn.execute_batch("COMMIT");
    let value = result?;
    ended?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_double_and_cover_everything_once() {
        let chunks: Vec<_> = Chunks::over(10).collect();
        assert_eq!(chunks, [0..1, 1..3, 3..7, 7..10]);
        assert_eq!(Chunks::over(0).count(), 0);
    }

    #[test]
    fn the_most_selective_indexed_key_drives_the_read() {
        let declared = [IndexedKey::new("build_reason").unwrap()];
        let index = |filter: Filter| Driver::choose(&filter, &declared).map(|d| d.index);
        let base = Filter::default()
            .with_resource_type("workspace")
            .with_action("start");
        assert_eq!(
            index(base.clone()).as_deref(),
            Some("audit_logs_resource_type_action")
        );
        assert_eq!(
            index(base.clone().with_additional("build_reason", "autostart")).as_deref(),
            Some("audit_logs_build_reason")
        );
        assert_eq!(
            index(base.clone().with_additional("build_reason", "true")).as_deref(),
            Some("audit_logs_resource_type_action"),
            "a boolean is not compared through the index"
        );
        assert_eq!(
            index(base.clone().with_username("dana")).as_deref(),
            Some("audit_logs_username")
        );
        assert_eq!(
            index(base.with_resource_target("ws-1")).as_deref(),
            Some("audit_logs_resource_target")
        );
        assert_eq!(index(Filter::default().with_additional("other", "x")), None);
        let by_email = Driver::choose(&Filter::default().with_email("a@x"), &declared);
        assert_eq!(
            by_email,
            Some(Driver::new(
                "audit_logs_username",
                Some(Term::Email("a@x".into()))
            ))
        );
        let by_action = Driver::choose(&Filter::default().with_action("login"), &declared);
        assert_eq!(
            by_action.and_then(|d| d.term),
            Some(Term::Action("login".into()))
        );
    }
}
