//! The SQLite store's layout (schema versions 3 and 5): a store of version 2 migrates to it
//! with its events, positions, purge point, vocabulary and declared key indexes; reads walk
//! the buckets of positions in exact `(time, id)` order even where a tie in time spans two
//! buckets; new stores use 8 KiB pages; a store of version 4 gains the buckets' key summaries,
//! and rare keys read through them find every event `Filter::matches` selects, after the
//! migration, after appends large and small, and after a purge.
#![cfg(feature = "sqlite")]

#[macro_use]
mod store_support;

use audit_core::AuditEvent;
use audit_core::query::Filter;
use audit_core::store::sqlite::{Options, SqliteStore};
use audit_core::store::{Count, LogSpan, PageRequest, Store, StoreError};
use chrono::Duration;
use store_support::previous::{PreviousAppend, SqliteV2};
use store_support::{base_time, events, temp_dir};
use uuid::Uuid;

/// Events with every optional field set or not, several actors and request ids, appended
/// by the version 2 store in batches whose times go backwards.
fn varied(n: usize) -> Vec<AuditEvent> {
    let mut all = events(7, n, base_time());
    for (i, e) in all.iter_mut().enumerate() {
        e.time = base_time() + Duration::seconds(((n - i) * 13 % n) as i64);
        e.actor.username = ["dana", "Erin", "frank"][i % 3].into();
        e.actor.email = ["dana@example.com", "erin@example.com", "FRANK@example.com"][i % 3].into();
        e.request_id = (i % 4 != 0).then(|| Uuid::from_u128(0xfeed_0000 + i as u128));
        e.ip = (i % 5 == 0).then(|| "2001:db8::7".parse().unwrap());
        e.organization_id = (i % 2 == 0).then(|| "org-1".into());
        e.user_agent = (i % 3 == 0).then(|| "agent/1".into());
        if i % 6 == 0 {
            e.additional_fields.insert("plan".into(), "pro".into());
        }
    }
    all
}

fn index_sql(conn: &rusqlite::Connection, name: &str) -> Option<String> {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
        [name],
        |r| r.get(0),
    )
    .ok()
}

#[test]
fn a_version_2_store_migrates_with_its_events_positions_and_keys() {
    let dir = temp_dir("layout-migrate");
    let path = dir.join("audit.db");
    let all = varied(2_600);
    let mut v2 = SqliteV2::create(&path);
    v2.0.execute_batch(
        "CREATE INDEX audit_logs_plan \
         ON audit_logs (json_extract(additional_fields, '$.\"plan\"'), time, id)",
    )
    .unwrap();
    for chunk in all.chunks(200) {
        v2.append(chunk);
    }
    // Purged through position 100, as version 2 purged: rows gone, the head row says so.
    v2.0.execute_batch(
        "DELETE FROM audit_logs WHERE seq <= 100; \
         UPDATE audit_log_head SET purged_through = 100 WHERE id = 1;",
    )
    .unwrap();
    drop(v2);

    // Readers refuse the older schema and change nothing.
    match SqliteStore::open_read_only(&path) {
        Err(StoreError::Unsupported(message)) => {
            assert!(message.contains("open it once with a writer"), "{message}")
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }

    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    assert_eq!(
        store.head().unwrap(),
        LogSpan {
            first: 101,
            head: 2_600
        }
    );
    // Every retained event, whole, at the position it had.
    let mut back = Vec::new();
    let mut after = 100;
    loop {
        let batch = store.newer(&Filter::default(), Some(after), 1000).unwrap();
        let Some(last) = batch.last() else { break };
        after = last.seq;
        back.extend(batch);
    }
    let want: Vec<(u64, AuditEvent)> = (101..).zip(all[100..].iter().cloned()).collect();
    let got: Vec<(u64, AuditEvent)> = back.into_iter().map(|e| (e.seq, e.event)).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "events or positions changed in the migration");

    // The layout's indexes, the declared key's in the new shape, and what reads rely on.
    let conn = rusqlite::Connection::open(&path).unwrap();
    for name in [
        "audit_logs_time",
        "audit_logs_resource_type_action",
        "audit_logs_username",
        "audit_logs_resource_id",
        "audit_logs_resource_target",
        "audit_logs_request_id",
    ] {
        assert!(index_sql(&conn, name).is_some(), "{name} is missing");
    }
    for gone in ["audit_logs_email", "audit_logs_action", "audit_logs_seq"] {
        assert_eq!(index_sql(&conn, gone), None, "{gone} is left over");
    }
    let plan = index_sql(&conn, "audit_logs_plan").expect("the declared key keeps its index");
    assert!(plan.contains("seq >> 10"), "{plan}");
    let buckets: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_log_buckets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(buckets, 3, "positions 101..=2600 span buckets 0, 1 and 2");

    // Filters on every kind of key read what `Filter::matches` selects.
    let retained = &all[100..];
    for filter in [
        Filter::default().with_username("erin"),
        Filter::default().with_email("frank@EXAMPLE.com"),
        Filter::default().with_action("write"),
        Filter::default().with_additional("plan", "pro"),
        Filter::default().with_request_id(Uuid::from_u128(0xfeed_0000 + 2_001)),
        Filter::default().with_resource_target("ws-7-2500"),
    ] {
        let mut want: Vec<&AuditEvent> = retained
            .iter()
            .filter(|e| filter.matches(e, None))
            .collect();
        want.sort_by_key(|e| std::cmp::Reverse((e.time, e.id)));
        let want: Vec<Uuid> = want.iter().map(|e| e.id).collect();
        let page = store.page(&filter, &PageRequest::first(1000)).unwrap();
        let got: Vec<Uuid> = page.events.iter().map(|e| e.id).collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "{filter:?}");
    }
    assert_eq!(
        store.recorded_actions().unwrap(),
        [
            ("workspace".to_owned(), "create".to_owned()),
            ("workspace".to_owned(), "delete".to_owned()),
            ("workspace".to_owned(), "write".to_owned()),
        ]
    );

    // Appends go on from the head; readers open the migrated store.
    store.append(&events(8, 3, base_time())).unwrap();
    assert_eq!(store.head().unwrap().head, 2_603);
    let mut reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.head().unwrap().head, 2_603);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_tie_in_time_across_buckets_is_ordered_by_id() {
    let mut store = SqliteStore::in_memory().unwrap();
    let tie = base_time() + Duration::days(1);
    // Positions 1..=1023 fill the first bucket; the last of them is at the tied time with the
    // highest id. Positions 1024 and 1025, in the next bucket, share that time.
    let mut first = events(1, 1023, base_time());
    first[1022].time = tie;
    first[1022].id = Uuid::from_u128(u128::MAX);
    let mut second = events(2, 2, base_time());
    for e in &mut second {
        e.time = tie;
    }
    store.append(&first).unwrap();
    store.append(&second).unwrap();
    let filter = Filter::default().with_resource_type("workspace");
    let page = store.page(&filter, &PageRequest::first(1)).unwrap();
    assert_eq!(page.events[0].id, first[1022].id);
    let mut ids = Vec::new();
    let mut request = PageRequest::first(1);
    for _ in 0..3 {
        let page = store.page(&filter, &request).unwrap();
        ids.extend(page.events.iter().map(|e| e.id));
        request = PageRequest::after(1, page.next.unwrap());
    }
    assert_eq!(ids, [first[1022].id, second[1].id, second[0].id]);
}

#[test]
fn new_stores_use_8_kib_pages() {
    let dir = temp_dir("layout-pages");
    let path = dir.join("audit.db");
    let options = Options {
        page_cache_bytes: 3 << 20,
        mmap_bytes: 1 << 20,
        ..Options::default()
    };
    let mut store = SqliteStore::open_with(&path, options).unwrap();
    store.append(&events(1, 10, base_time())).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 8192);
    std::fs::remove_dir_all(&dir).ok();
}

/// Every event `filter` selects, newest first, read a page of 50 at a time through cursors,
/// and its capped count; compared with what `Filter::matches` selects of `all`.
fn assert_reads_match(store: &mut SqliteStore, all: &[AuditEvent], filter: &Filter) {
    let mut want: Vec<&AuditEvent> = all.iter().filter(|e| filter.matches(e, None)).collect();
    want.sort_by_key(|e| std::cmp::Reverse((e.time, e.id)));
    let want: Vec<Uuid> = want.iter().map(|e| e.id).collect();
    let mut got = Vec::new();
    let mut request = PageRequest::first(50);
    loop {
        let page = store.page(filter, &request).unwrap();
        got.extend(page.events.iter().map(|e| e.id));
        match page.next {
            Some(next) => request = PageRequest::after(50, next),
            None => break,
        }
    }
    let first_difference = got.iter().zip(&want).position(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "{filter:?}: {} events read, {} selected, first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
    let count = store.count(filter, 100_000).unwrap();
    assert_eq!(count, Count::Exact(want.len() as u64), "{filter:?}");
}

/// Events over many buckets: three usernames spelled in several cases, one rare user (three
/// events, far apart), a target with a NUL, a request id on most events.
fn spread(source: u32, n: usize) -> Vec<AuditEvent> {
    let mut all = varied(n);
    for (i, e) in all.iter_mut().enumerate() {
        e.id = Uuid::from_u128((u128::from(source) << 64) | i as u128);
        e.request_id =
            (i % 4 != 0).then(|| Uuid::from_u128((u128::from(source) << 32) + i as u128));
        if i % 5_000 == 17 {
            e.actor.username = "Quinn".into();
            e.actor.email = "quinn@example.com".into();
        }
        if i == 9_999 {
            e.resource_target = "ws-\0-nul".into();
        }
    }
    all
}

#[test]
fn a_version_4_store_gains_key_summaries_and_rare_keys_read_the_same_events() {
    let dir = temp_dir("layout-summaries");
    let path = dir.join("audit.db");
    let mut all = spread(9, 12_000);
    {
        let mut store = SqliteStore::open(&path).unwrap();
        for chunk in all.chunks(1_000) {
            store.append(chunk).unwrap();
        }
    }
    // The store as schema 4 left it: no bucket order indexes, no summaries.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE audit_log_buckets DROP COLUMN keys; DROP TABLE audit_log_key_groups; \
         DROP INDEX audit_log_buckets_newest; \
         DROP INDEX audit_log_buckets_oldest; PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(conn);
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    let summaries: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM audit_log_buckets WHERE length(keys) = 4096",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(summaries, 12, "positions 1..=12000 span buckets 0 to 11");
    let groups: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM audit_log_key_groups", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        groups, 8,
        "one group (buckets 0 to 7) is whole: a row for each part"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (name, time) in [
        ("audit_logs_resource_id", false),
        ("audit_logs_resource_target", false),
        ("audit_logs_username", true),
    ] {
        let sql = index_sql(&conn, name).unwrap();
        assert_eq!(sql.contains(", time"), time, "{sql}");
    }
    drop(conn);

    let filters = |all: &[AuditEvent]| {
        vec![
            Filter::default().with_username("QUINN"),
            Filter::default().with_email("Quinn@Example.com"),
            Filter::default().with_email("nobody@example.com"),
            Filter::default().with_username("nobody"),
            Filter::default().with_resource_target("ws-\0-nul"),
            Filter::default().with_resource_target(&all[all.len() / 3].resource_target),
            Filter::default().with_request_id(Uuid::from_u128((9 << 32) + 4_001)),
            Filter::default()
                .with_username("erin")
                .with_request_id(Uuid::from_u128((9 << 32) + 4_001)),
            Filter::default().with_username("ERIN"),
            Filter::default().with_email("frank@EXAMPLE.com"),
        ]
    };
    // Summaries built by the migration.
    for filter in filters(&all) {
        assert_reads_match(&mut store, &all, &filter);
    }
    // Summaries built by appends, in small batches too.
    let more = spread(10, 9_000);
    for chunk in more.chunks(7) {
        store.append(chunk).unwrap();
    }
    all.extend(more);
    for filter in filters(&all) {
        assert_reads_match(&mut store, &all, &filter);
    }
    // A purge through the middle of a bucket (it deletes the longest run of positions whose
    // events are all older than the cut): what is left reads the same.
    let cut = all[5_500].time;
    store
        .purge(
            &audit_core::store::PurgeOptions::older_than(cut),
            None,
            &mut |_| {},
        )
        .unwrap();
    let first = store.head().unwrap().first;
    assert!(
        first > 1 && first % 1024 != 1,
        "purged through {}",
        first - 1
    );
    let kept: Vec<AuditEvent> = all.split_off(first as usize - 1);
    let mut reader = SqliteStore::open_read_only(&path).unwrap();
    for filter in filters(&kept) {
        assert_reads_match(&mut reader, &kept, &filter);
    }
    std::fs::remove_dir_all(&dir).ok();
}
