//! Reads of a filter on a key, served by the key's bucketed index (see [`super::layout`]).
//!
//! The index orders entries by bucket of positions first, so one query cannot return a
//! key's events newest first across buckets. A read walks the buckets instead, a chunk of
//! them per query (`seq >> 10 IN (…)`, one index seek per bucket), with chunks that double in
//! size: a key in every other event is answered from the newest bucket or two. Past the first
//! few buckets, a filter on a username, email, resource id, target or request id walks only
//! the buckets whose key summaries may hold it ([`super::summary`]), so a rare key costs a
//! pass over the summaries and a seek per bucket that holds it, not a seek per bucket.
//!
//! * **Pages** (newest first by `(time, id)`) take buckets by their newest event, newest
//!   first, skipping those outside the filter's dates or after the cursor, and stop once the
//!   page is full and the next bucket holds nothing newer than its last event. The chunks
//!   settle the page on `(time, id, seq)` alone; only its events are then read whole. Positions
//!   follow commit order, not event time, so a late event may sit in a newer bucket than
//!   older-timed ones: the buckets' time spans keep the page exact all the same.
//! * **Newer pages** (oldest first after a cursor: the page just newer than it) do the same
//!   the other way: buckets by their oldest event, oldest first.
//! * **Followers** (by position) take buckets in position order from where they are.
//! * **Counts** add up chunks until they pass the cap.
//!
//! Each read runs in one read transaction, so it sees one snapshot of the log.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::SqliteStore;
use super::layout::{BUCKET, BUCKETS_TABLE, bucket_of};
use super::summary::{self, Probes};
use crate::query::{Filter, UserMatch};
use crate::store::columns::COLUMN_LIST;
use crate::store::sql::{self, Dialect, IndexedKey, Param, Scan, SqlRead, Where};
use crate::store::{Count, StoreError, StoredEvent};
use rusqlite::{OptionalExtension, params_from_iter};

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
        if let Some(last) = self.params.last_mut() {
            *last = Param::Text(json_list(buckets));
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
    let columns = match scan {
        Scan::Page(_) | Scan::NewerPage(_) => "time, id, seq",
        Scan::After(_) | Scan::Latest => &COLUMN_LIST,
    };
    let sql = format!(
        "SELECT {columns} FROM {} ORDER BY {} LIMIT {limit}",
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
                let buckets = summarised(store, filter, head.seq, buckets)?;
                by_position(store, &sql, &mut query, &buckets, limit)?
            }
            Scan::Latest => {
                let head = super::append::head_row(&store.conn)?;
                let buckets: Vec<i64> = (bucket_of(head.purged_through + 1)..=bucket_of(head.seq))
                    .rev()
                    .collect();
                let buckets = summarised(store, filter, head.seq, buckets)?;
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
        let mut walk = BucketWalk::new(store, filter, Start::Newest(None))?;
        let mut counted = 0i64;
        while let Some(chunk) = walk.next_chunk(store)? {
            if chunk.buckets.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {} LIMIT {})",
                query.from_where,
                cap + 1 - counted
            );
            counted += store.query_count(&sql, query.with_buckets(&chunk.buckets))?;
            if counted > cap {
                break;
            }
        }
        Ok(Some(sql::capped(counted, cap)))
    })
}

/// A page by time from `start`'s end: chunks of the buckets that may hold events of
/// `filter` ([`BucketWalk`]: by their newest event, newest first, or by their oldest event,
/// oldest first), merged, until no bucket left can hold an event that comes before the
/// page's last in that order.
///
/// `sql` selects `(time, id, seq)` only: the order of the page is settled on those, and only
/// the events that make it are read whole, in one query at the end (a key spread thin over
/// the buckets would otherwise read and decode every match of every chunk).
fn by_time(
    store: &mut SqliteStore,
    filter: &Filter,
    sql: &str,
    query: &mut ChunkQuery,
    start: Start,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut walk = BucketWalk::new(store, filter, start)?;
    let newest_first = matches!(start, Start::Newest(_));
    // (time, id, seq) of the page so far, in the page's order.
    let mut keys: Vec<(i64, Vec<u8>, i64)> = Vec::new();
    while let Some(chunk) = walk.next_chunk(store)? {
        if let Some((last, _, _)) = keys.get(limit.saturating_sub(1)) {
            let edge = chunk.first_edge;
            if (newest_first && edge < *last) || (!newest_first && edge > *last) {
                break;
            }
        }
        if chunk.buckets.is_empty() {
            continue;
        }
        let params = query.with_buckets(&chunk.buckets);
        let mut stmt = store.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter().map(super::to_sql)), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        for row in rows {
            keys.push(row?);
        }
        if newest_first {
            keys.sort_unstable_by(|a, b| (&b.0, &b.1).cmp(&(&a.0, &a.1)));
        } else {
            keys.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        }
        keys.truncate(limit);
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // Already in the page's order: one lookup by position each (cheaper than a list the
    // query would first build an index of).
    let mut stmt = store.conn.prepare_cached(&format!(
        "SELECT {} FROM audit_logs WHERE seq = +?1",
        *COLUMN_LIST
    ))?;
    let mut events = Vec::with_capacity(keys.len());
    for (_, _, seq) in &keys {
        let event = stmt
            .query_row([seq], super::row::read)
            .optional()?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "event at #{seq} vanished inside a read transaction"
                ))
            })?;
        events.push(event?);
    }
    Ok(events)
}

/// A JSON array of integers, for `json_each`.
fn json_list(values: &[i64]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
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

/// How many buckets a read walks before it narrows the rest to those whose key summaries may
/// hold the filter's keys: a frequent key fills its page from the first few, and reading
/// every summary would only slow it down.
const SUMMARISE_AFTER: usize = 7;

/// A chunk of buckets from a [`BucketWalk`].
struct Chunk {
    /// The time of the first listed bucket's event nearest to where the read starts (its
    /// newest for reads newest first, its oldest for reads oldest first), before any bucket
    /// was left out by the summaries.
    first_edge: i64,
    /// The buckets to read, in the walk's order.
    buckets: Vec<i64>,
}

/// The buckets that may hold events of `filter`'s dates (and within the bound of the read's
/// start), in the order of the read: by their newest event, newest first, or by their oldest,
/// oldest first. The first [`SUMMARISE_AFTER`] are listed a chunk at a time through the
/// time-ordered indexes of [`BUCKETS_TABLE`]; after them, when the filter has summarised keys,
/// only the buckets whose key summaries may hold them ([`summary`](super::summary)), in the
/// same order ([`Narrowed`]).
struct BucketWalk {
    lower: i64,
    upper: i64,
    newest_first: bool,
    /// The last bucket listed, as `(edge time, bucket)`: the next chunk starts after it.
    after: (i64, i64),
    /// The size of the next chunk: one bucket first, each chunk twice the one before (as
    /// [`Chunks`]).
    size: usize,
    listed: usize,
    exhausted: bool,
    probes: Probes,
    /// Once summarised: the candidate buckets.
    candidates: Option<Narrowed>,
}

/// How a walk lists the buckets its summaries leave.
enum Narrowed {
    /// A few: their time spans were looked up one by one; the rest, in the walk's order.
    Few(VecDeque<(i64, i64)>),
    /// Many (more than a fourth of all buckets): listed through the time-ordered index as
    /// before, less the others (listing a bucket costs about what a lookup does, and a key
    /// this frequent fills its page before the walk lists most of them).
    Many(HashSet<i64>),
}

impl BucketWalk {
    fn new(store: &SqliteStore, filter: &Filter, start: Start) -> Result<Self, StoreError> {
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
        let newest_first = matches!(start, Start::Newest(_));
        Ok(BucketWalk {
            lower,
            upper,
            newest_first,
            after: if newest_first {
                (i64::MAX, i64::MAX)
            } else {
                (i64::MIN, i64::MIN)
            },
            size: 1,
            listed: 0,
            exhausted: false,
            probes: Probes::of(&store.conn, filter)?,
            candidates: None,
        })
    }

    /// The next chunk of buckets (each twice as large as the one before, less those the
    /// summaries leave out); `None` once every bucket is listed.
    fn next_chunk(&mut self, store: &SqliteStore) -> Result<Option<Chunk>, StoreError> {
        let size = self.size;
        self.size *= 2;
        if self.candidates.is_none()
            && self.listed >= SUMMARISE_AFTER
            && !self.probes.is_empty()
            && !self.exhausted
        {
            self.candidates = Some(self.remaining_candidates(store)?);
        }
        let listed: Vec<(i64, i64)> = match &mut self.candidates {
            Some(Narrowed::Few(rest)) => rest.drain(..size.min(rest.len())).collect(),
            _ if self.exhausted => Vec::new(),
            _ => self.list(store, size)?,
        };
        let Some(&(first_edge, _)) = listed.first() else {
            self.exhausted = true;
            return Ok(None);
        };
        self.listed += listed.len();
        let mut buckets: Vec<i64> = listed.into_iter().map(|(_, bucket)| bucket).collect();
        if let Some(Narrowed::Many(candidates)) = &self.candidates {
            buckets.retain(|b| candidates.contains(b));
        }
        Ok(Some(Chunk {
            first_edge,
            buckets,
        }))
    }

    /// The next `size` buckets through the time-ordered index, as `(edge time, bucket)`.
    fn list(&mut self, store: &SqliteStore, size: usize) -> Result<Vec<(i64, i64)>, StoreError> {
        let (edge, order, keyset) = if self.newest_first {
            (
                "max_time",
                "max_time DESC, bucket DESC",
                "(max_time, bucket) < (+?3, +?4)",
            )
        } else {
            (
                "min_time",
                "min_time ASC, bucket ASC",
                "(min_time, bucket) > (+?3, +?4)",
            )
        };
        let mut stmt = store.conn.prepare_cached(&format!(
            "SELECT {edge}, bucket FROM {BUCKETS_TABLE} WHERE max_time >= +?1 \
             AND min_time <= +?2 AND {keyset} ORDER BY {order} LIMIT +?5"
        ))?;
        let params = rusqlite::params![
            self.lower,
            self.upper,
            self.after.0,
            self.after.1,
            size as i64
        ];
        let listed: Vec<(i64, i64)> = stmt
            .query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        if let Some(&last) = listed.last() {
            self.after = last;
        }
        self.exhausted = listed.len() < size;
        Ok(listed)
    }

    /// The buckets whose summaries may hold the filter's keys: a few, not listed yet, with
    /// their edge times in the walk's order, or many, to be picked out as they are listed.
    fn remaining_candidates(&self, store: &SqliteStore) -> Result<Narrowed, StoreError> {
        let head = super::append::head_row(&store.conn)?.seq;
        let (candidates, summaries) = summary::candidates(&store.conn, &self.probes, head)?;
        if candidates.len() * 4 > summaries {
            return Ok(Narrowed::Many(candidates));
        }
        let candidates: Vec<i64> = candidates.into_iter().collect();
        let list = json_list(&candidates);
        let edge = if self.newest_first {
            "max_time"
        } else {
            "min_time"
        };
        let mut stmt = store.conn.prepare_cached(&format!(
            "SELECT {edge}, bucket FROM {BUCKETS_TABLE} \
             WHERE bucket IN (SELECT value FROM json_each(+?1)) \
             AND max_time >= +?2 AND min_time <= +?3"
        ))?;
        let mut rest: Vec<(i64, i64)> = stmt
            .query_map(rusqlite::params![list, self.lower, self.upper], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<(i64, i64)>, _>>()?
            .into_iter()
            .filter(|&at| {
                if self.newest_first {
                    at < self.after
                } else {
                    at > self.after
                }
            })
            .collect();
        if self.newest_first {
            rest.sort_unstable_by(|a, b| b.cmp(a));
        } else {
            rest.sort_unstable();
        }
        Ok(Narrowed::Few(rest.into()))
    }
}

/// `buckets` (listed by position) less those whose key summaries cannot hold `filter`'s
/// keys, when there are more than a few.
fn summarised(
    store: &SqliteStore,
    filter: &Filter,
    head: u64,
    mut buckets: Vec<i64>,
) -> Result<Vec<i64>, StoreError> {
    if buckets.len() > SUMMARISE_AFTER {
        let probes = Probes::of(&store.conn, filter)?;
        if !probes.is_empty() {
            let (candidates, _) = summary::candidates(&store.conn, &probes, head)?;
            buckets.retain(|b| candidates.contains(b));
        }
    }
    Ok(buckets)
}

/// Runs `read` in one read transaction (unless one is open already).
fn in_snapshot<T>(
    store: &mut SqliteStore,
    read: impl FnOnce(&mut SqliteStore) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !store.conn.is_autocommit() {
        return read(store);
    }
    store.conn.prepare_cached("BEGIN")?.execute([])?;
    let result = read(store);
    // Nothing was written: ending the transaction either way only releases the snapshot.
    let ended = store
        .conn
        .prepare_cached("COMMIT")
        .and_then(|mut commit| commit.execute([]));
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
