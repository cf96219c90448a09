//! One conformance suite, run against every store: SQLite always (feature `sqlite`), Postgres
//! when `AUDIT_TEST_POSTGRES_URL` is set (CI sets it and fails if Postgres is unreachable;
//! without it a plain `cargo test` skips those cases and says why).
//!
//! The central check is parity: for many filters, the events a store returns (all pages,
//! through cursors) are exactly those `Filter::matches` selects in memory, in the same order.
#![cfg(any(feature = "sqlite", feature = "postgres"))]

#[macro_use]
mod store_support;

use std::net::IpAddr;

use audit_core::query::{AdditionalKey, BUILD_REASON, Filter, Vocabulary};
use audit_core::store::export::{self, Format};
use audit_core::store::{
    Count, Cursor, LogSpan, PageRequest, PurgeOptions, Store, StoreError, StoredEvent,
};
use audit_core::{Actor, AuditEvent, Auditable, Diff};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

#[derive(Auditable, Clone)]
#[audit(resource = "workspace", actions(create, write, delete))]
struct Workspace {
    #[audit(track, id)]
    id: u32,
    #[audit(track, target)]
    name: String,
    #[audit(secret)]
    agent_token: String,
}

/// Registered so that the filter language knows the resource type.
#[allow(dead_code)]
#[derive(Auditable)]
#[audit(resource = "workspace_build", actions(start, stop))]
struct WorkspaceBuild {
    #[audit(track, id)]
    id: u32,
}

/// Registered so that the filter language knows the resource type.
#[allow(dead_code)]
#[derive(Auditable)]
#[audit(resource = "user", actions(create, write, delete, login))]
struct User {
    #[audit(track, id)]
    id: u32,
}

const SECRET: &str = "SECRET-MARKER-7f3a";
const USERS: &[(&str, &str)] = &[
    ("alice", "Alice@Example.com"),
    ("bob", "bob@example.com"),
    ("Carol", "carol@example.org"),
];

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).single().unwrap()
}

/// A deterministic, varied log: several resources, actions, users, days, and ties in time.
fn dataset(n: usize) -> Vec<AuditEvent> {
    let old = Workspace {
        id: 1,
        name: "dev".into(),
        agent_token: SECRET.into(),
    };
    let new = Workspace {
        id: 1,
        name: "prod".into(),
        agent_token: format!("{SECRET}-2"),
    };
    let diff = audit_core::diff(Some(&old), Some(&new));
    (0..n)
        .map(|i| {
            let (username, email) = USERS[i % USERS.len()];
            let (resource_type, action) = match i % 5 {
                0 => ("workspace", "create"),
                1 => ("workspace", "write"),
                2 => ("workspace_build", "start"),
                3 => ("user", "login"),
                _ => ("workspace", "delete"),
            };
            // Every third event shares its time with the previous one: the id breaks ties.
            let step = (i - i % 3) as i64;
            let time = base_time() + Duration::minutes(step * 37);
            let mut additional = serde_json::Map::new();
            if resource_type == "workspace_build" {
                let reason = ["initiator", "autostart", "autostop"][i % 3];
                additional.insert("build_reason".into(), json!(reason));
                additional.insert("build_number".into(), json!(i));
            }
            AuditEvent {
                id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128),
                time,
                actor: Actor {
                    id: format!("u-{username}"),
                    username: username.into(),
                    email: email.into(),
                },
                organization_id: Some("org-1".into()),
                ip: Some(IpAddr::from([10, 0, 0, (i % 250) as u8])),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
                resource_type: resource_type.into(),
                resource_id: format!("{}", i % 7),
                resource_target: format!("ws-{}", i % 4),
                resource_icon: String::new(),
                action: action.into(),
                diff: if action == "write" {
                    diff.clone()
                } else {
                    Diff::default()
                },
                status_code: if i % 11 == 0 { 403 } else { 200 },
                additional_fields: additional,
                request_id: Some(Uuid::from_u128(0xaaaa_0000 + (i % 13) as u128)),
            }
        })
        .collect()
}

/// Newest first, ties broken by id: the order every store must return.
fn expected(events: &[AuditEvent], filter: &Filter) -> Vec<Uuid> {
    let mut selected: Vec<&AuditEvent> =
        events.iter().filter(|e| filter.matches(e, None)).collect();
    selected.sort_by_key(|e| std::cmp::Reverse((e.time, e.id)));
    selected.iter().map(|e| e.id).collect()
}

fn all_pages(store: &mut dyn Store, filter: &Filter, limit: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let page = store.page(filter, &request).expect("page");
        assert!(page.events.len() <= limit);
        ids.extend(page.events.iter().map(|e| e.id));
        match page.next {
            Some(next) => request = PageRequest::after(limit, next),
            None => return ids,
        }
    }
}

/// From the first event of every page of `filter`, `page_newer` gives exactly the page before
/// it, newest first, and says whether an even newer page exists.
fn newer_pages_walk_back(store: &mut dyn Store, filter: &Filter, limit: usize, q: &str) {
    let mut pages: Vec<Vec<Uuid>> = Vec::new();
    let mut firsts: Vec<Cursor> = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let page = store.page(filter, &request).expect("page");
        firsts.extend(page.events.first().map(|e| Cursor::of(e)));
        pages.push(page.events.iter().map(|e| e.id).collect());
        match page.next {
            Some(next) => request = PageRequest::after(limit, next),
            None => break,
        }
    }
    for (i, cursor) in firsts.iter().enumerate() {
        let newer = store.page_newer(filter, cursor, limit).expect("newer page");
        let ids: Vec<Uuid> = newer.events.iter().map(|e| e.id).collect();
        let want: &[Uuid] = if i == 0 { &[] } else { &pages[i - 1] };
        assert_eq!(ids, want, "query `{q}`, limit {limit}, back from page {i}");
        assert_eq!(
            newer.next.is_some(),
            i > 1,
            "query `{q}`, limit {limit}, page {i}: is there a newer page"
        );
        if let Some(next) = newer.next {
            assert_eq!(Some(next), firsts.get(i - 1).copied());
        }
    }
}

fn parse(q: &str) -> Filter {
    Vocabulary::default()
        .with_key(BUILD_REASON)
        .additional_key_any("build_number")
        .parse(q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn filters_select_what_matches_selects(store: &mut dyn Store) {
    let events = dataset(240);
    for chunk in events.chunks(50) {
        store.append(chunk).unwrap();
    }
    let queries = [
        "",
        "workspace",
        "resource_type:workspace action:delete",
        "resource_type:workspace_build build_reason:autostart",
        "build_number:7",
        "username:alice",
        "username:ALICE",
        "username:carol date_from:2024-03-02",
        "email:alice@example.com",
        "email:Alice@Example.com resource_type:user",
        "resource_id:3",
        "resource_target:ws-2 action:write",
        "date_from:2024-03-01 date_to:2024-03-01",
        "date_to:2024-03-02",
        "date_from:2024-03-03 date_to:2024-03-04",
        &format!("request_id:{}", Uuid::from_u128(0xaaaa_0005)),
        "username:nobody",
    ];
    for q in queries {
        let filter = parse(q);
        let want = expected(&events, &filter);
        for limit in [1, 7, 1000] {
            assert_eq!(
                all_pages(store, &filter, limit),
                want,
                "query `{q}`, page size {limit}"
            );
        }
    }
}

/// Paging back: from the first event of every page, `page_newer` gives exactly the page
/// before it, newest first, and says whether an even newer page exists; date bounds hold.
fn newer_pages_walk_back_to_the_first_page(store: &mut dyn Store) {
    let events = dataset(120);
    store.append(&events).unwrap();
    for q in [
        "",
        "resource_type:workspace",
        "username:alice date_from:2024-03-02",
        "date_from:2024-03-01 date_to:2024-03-02",
        "username:nobody",
    ] {
        let filter = parse(q);
        for limit in [1, 7, 1000] {
            newer_pages_walk_back(store, &filter, limit, q);
        }
    }
    let err = store
        .page_newer(&Filter::default(), &Cursor::of(&events[0]), 0)
        .unwrap_err();
    assert!(err.to_string().contains("page size"), "{err}");
}

/// A reader's organization scope (`Filter::with_organizations`) and the `organization_id`
/// key select in the store what `Filter::matches` selects: pages, counts and followers; a
/// site-wide event (no organization) never passes a scope.
fn organization_scopes_select_what_matches_selects(store: &mut dyn Store) {
    let mut events = dataset(90);
    for (i, e) in events.iter_mut().enumerate() {
        e.organization_id = match i % 3 {
            0 => Some("org-1".into()),
            1 => Some("org-2".into()),
            _ => None,
        };
    }
    for chunk in events.chunks(40) {
        store.append(chunk).unwrap();
    }
    let filters = [
        parse("organization_id:org-2"),
        parse("organization_id:org-3"),
        Filter::default().with_organizations(["org-1"]),
        parse("username:alice").with_organizations(["org-1", "org-2"]),
        parse("organization_id:org-2").with_organizations(["org-1"]),
        Filter::default().with_organizations(Vec::<String>::new()),
        Filter::default()
            .with_organizations(["org-1", "org-2"])
            .with_organizations(["org-2", "org-9"]),
    ];
    for filter in filters {
        let want = expected(&events, &filter);
        assert!(
            events
                .iter()
                .filter(|e| want.contains(&e.id))
                .all(|e| filter.organizations().is_none() || e.organization_id.is_some()),
            "{filter:?}"
        );
        for limit in [1, 7, 1000] {
            assert_eq!(
                all_pages(store, &filter, limit),
                want,
                "{filter:?}, page size {limit}"
            );
        }
        assert_eq!(
            store.count(&filter, 1000).unwrap(),
            Count::Exact(want.len() as u64),
            "{filter:?}"
        );
        let followed: Vec<Uuid> = store
            .newer(&filter, Some(0), 1000)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        let mut in_log_order = want.clone();
        in_log_order.sort_by_key(|id| events.iter().position(|e| e.id == *id));
        assert_eq!(followed, in_log_order, "{filter:?}");
    }
}

/// A log long enough to span several of the SQLite store's buckets of positions (1,024
/// each), appended out of time order (ties in time spread across the log), read back through
/// every kind of filter: pages in time order, counts, and followers in log order.
fn a_long_log_out_of_time_order_reads_like_matches(store: &mut dyn Store) {
    const N: usize = 4_500;
    let mut events = dataset(N);
    for (i, e) in events.iter_mut().enumerate() {
        // A permutation of the minutes, in pairs that share a time.
        e.time = base_time() + Duration::minutes(((i * 7919) % N / 2 * 2) as i64);
    }
    events[4321].resource_target = "rare-target".into();
    events[17].request_id = Some(Uuid::from_u128(0xbbbb));
    events[2222].actor.email = "Rare@Example.net".into();
    for chunk in events.chunks(100) {
        store.append(chunk).unwrap();
    }
    let queries = [
        "",
        "workspace",
        "resource_type:workspace",
        "resource_type:workspace action:delete",
        "action:login",
        "action:start",
        "resource_type:workspace_build build_reason:autostart",
        "username:carol",
        "username:CAROL date_from:2024-03-20 date_to:2024-03-24",
        "email:carol@example.org",
        "email:rare@example.NET",
        "email:bob@example.com resource_type:workspace action:write",
        "resource_id:3",
        "resource_target:rare-target",
        "resource_target:ws-2 action:write",
        "date_from:2024-03-02 date_to:2024-03-03",
        &format!("request_id:{}", Uuid::from_u128(0xbbbb)),
        &format!("request_id:{}", Uuid::from_u128(0xaaaa_0005)),
        "username:nobody",
        "action:stop",
        "email:nobody@example.com",
    ];
    for q in queries {
        let filter = parse(q);
        let want = expected(&events, &filter);
        for limit in [50, 333] {
            assert_eq!(
                all_pages(store, &filter, limit),
                want,
                "query `{q}`, page size {limit}"
            );
        }
        newer_pages_walk_back(store, &filter, 333, q);
        let n = want.len() as u64;
        assert_eq!(
            store.count(&filter, 10_000).unwrap(),
            Count::Exact(n),
            "{q}"
        );
        if n > 40 {
            assert_eq!(store.count(&filter, 40).unwrap(), Count::AtLeast(40), "{q}");
        }
        // Followers: log order, from the start, from inside the log, and the newest.
        let in_log_order: Vec<(u64, Uuid)> = (1..)
            .zip(&events)
            .filter(|(_, e)| filter.matches(e, None))
            .map(|(seq, e)| (seq, e.id))
            .collect();
        for after in [0, 1500, 4000] {
            let want: Vec<(u64, Uuid)> = in_log_order
                .iter()
                .filter(|(seq, _)| *seq > after)
                .take(100)
                .copied()
                .collect();
            let got: Vec<(u64, Uuid)> = store
                .newer(&filter, Some(after), 100)
                .unwrap()
                .iter()
                .map(|e| (e.seq, e.id))
                .collect();
            assert_eq!(got, want, "query `{q}` after {after}");
        }
        let newest: Vec<(u64, Uuid)> = store
            .newer(&filter, None, 100)
            .unwrap()
            .iter()
            .map(|e| (e.seq, e.id))
            .collect();
        let skip = in_log_order.len().saturating_sub(100);
        assert_eq!(newest, in_log_order[skip..], "query `{q}`, newest");
    }
}

fn date_to_includes_the_last_microsecond_of_its_day(store: &mut dyn Store) {
    let mut events = dataset(3);
    let day_end = Utc
        .with_ymd_and_hms(2024, 3, 5, 23, 59, 59)
        .single()
        .unwrap()
        + Duration::microseconds(999_999);
    events[0].time = day_end;
    events[1].time = day_end + Duration::microseconds(1);
    events[2].time = Utc.with_ymd_and_hms(2024, 3, 5, 0, 0, 0).single().unwrap();
    store.append(&events).unwrap();
    let ids = all_pages(store, &parse("date_from:2024-03-05 date_to:2024-03-05"), 10);
    assert_eq!(ids, [events[0].id, events[2].id]);
}

fn events_round_trip_exactly_and_secrets_never_reach_storage(store: &mut dyn Store) {
    let mut events = dataset(2);
    events[1].ip = Some("2001:db8::1".parse().unwrap());
    events[1].user_agent = Some("agent with \"quotes\", commas,\nnewlines and ünïcode ✓".into());
    events[1].resource_target = "=HYPERLINK(\"http://evil\")".into();
    events[1].request_id = None;
    events[1].organization_id = None;
    events[1]
        .additional_fields
        .insert("nested".into(), json!({"a": [1, 2, {"b": null}]}));
    let old = Workspace {
        id: 1,
        name: "a".into(),
        agent_token: SECRET.into(),
    };
    events[1].diff = audit_core::diff(Some(&old), None);
    store.append(&events).unwrap();
    let page = store
        .page(&Filter::default(), &PageRequest::first(10))
        .unwrap();
    let mut back: Vec<AuditEvent> = page.events.into_iter().map(|e| e.event).collect();
    back.sort_by_key(|e| e.id);
    assert_eq!(back, events);

    for format in [Format::Csv, Format::JsonLines] {
        let mut out = Vec::new();
        let n = export::export(store, &Filter::default(), format, &mut out, &mut |_| {}).unwrap();
        assert_eq!(n, 2);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(SECRET), "{format:?} export leaked a secret");
        if format == Format::Csv {
            assert!(text.starts_with("id,time,"));
            assert!(
                text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
                "{text}"
            );
            assert!(text.contains("agent_token: changed (secret)"));
            assert!(text.contains("2024-03-01T00:00:00.000000Z"));
        } else {
            assert_eq!(text.lines().count(), 2);
            for line in text.lines() {
                let e: AuditEvent = serde_json::from_str(line).unwrap();
                assert!(events.contains(&e));
            }
        }
    }
}

fn appends_are_idempotent_by_event_id(store: &mut dyn Store) {
    let events = dataset(8);
    store.append(&events[..5]).unwrap();
    // A retried batch that had committed, with new events and a repeat inside the batch:
    // what is stored is skipped and takes no log position.
    let retried: Vec<AuditEvent> = events[3..]
        .iter()
        .chain(&events[..2])
        .chain(&events[6..7])
        .cloned()
        .collect();
    store.append(&retried).unwrap();
    store.append(&events).unwrap();
    assert_eq!(
        store.count(&Filter::default(), 100).unwrap(),
        Count::Exact(8)
    );
    assert_eq!(store.head().unwrap(), LogSpan { first: 1, head: 8 });
    let logged: Vec<(u64, Uuid)> = store
        .newer(&Filter::default(), Some(0), 100)
        .unwrap()
        .iter()
        .map(|e| (e.seq, e.id))
        .collect();
    let want: Vec<(u64, Uuid)> = (1..).zip(events.iter().map(|e| e.id)).collect();
    assert_eq!(logged, want, "positions in first-commit order");
}

/// What identifies an event is its time and id, as in page cursors: an id stored with
/// another time is another event, in every store, and a repeat of both is skipped.
fn an_id_with_another_time_is_another_event(store: &mut dyn Store) {
    let original = dataset(1);
    store.append(&original).unwrap();
    let mut later = original.clone();
    later[0].time += Duration::seconds(1);
    // The same id at another time, twice in the batch, and the original again.
    let batch = [later[0].clone(), later[0].clone(), original[0].clone()];
    store.append(&batch).unwrap();
    assert_eq!(store.head().unwrap(), LogSpan { first: 1, head: 2 });
    let page = store
        .page(&Filter::default(), &PageRequest::first(10))
        .unwrap();
    let times: Vec<_> = page.events.iter().map(|e| (e.seq, e.time, e.id)).collect();
    assert_eq!(
        times,
        [
            (2, later[0].time, original[0].id),
            (1, original[0].time, original[0].id)
        ]
    );
}

fn counts_are_capped(store: &mut dyn Store) {
    assert!(store.recorded_actions().unwrap().is_empty());
    store.append(&dataset(60)).unwrap();
    let recorded = store.recorded_actions().unwrap();
    let pairs: Vec<(&str, &str)> = recorded
        .iter()
        .map(|(t, a)| (t.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("user", "login"),
            ("workspace", "create"),
            ("workspace", "delete"),
            ("workspace", "write"),
            ("workspace_build", "start")
        ]
    );
    let vocabulary =
        audit_core::store::vocabulary(store, &[AdditionalKey::any("build_number")]).unwrap();
    assert!(
        vocabulary
            .parse("resource_type:user action:login build_number:3")
            .is_ok()
    );
    assert!(
        vocabulary
            .parse("resource_type:user action:logout")
            .is_err()
    );
    assert_eq!(
        store.count(&Filter::default(), 1000).unwrap(),
        Count::Exact(60)
    );
    assert_eq!(
        store.count(&Filter::default(), 10).unwrap(),
        Count::AtLeast(10)
    );
    assert_eq!(
        store.count(&parse("username:bob"), 1000).unwrap(),
        Count::Exact(20)
    );
}

fn newer_follows_log_positions(store: &mut dyn Store) {
    let events = dataset(30);
    assert_eq!(store.head().unwrap(), LogSpan { first: 1, head: 0 });
    assert!(
        store
            .newer(&Filter::default(), None, 10)
            .unwrap()
            .is_empty()
    );
    store.append(&events[..20]).unwrap();
    let start = store.head().unwrap().head;
    assert_eq!(start, 20);
    assert!(
        store
            .newer(&Filter::default(), Some(start), 100)
            .unwrap()
            .is_empty()
    );
    // Later commits come after, whatever their times.
    let mut late = events[20..].to_vec();
    for (i, e) in late.iter_mut().enumerate() {
        e.time = base_time() - Duration::days(1 + i as i64);
    }
    store.append(&late).unwrap();
    let newer = store.newer(&Filter::default(), Some(start), 100).unwrap();
    assert_eq!(
        newer.iter().map(|e| (e.seq, e.id)).collect::<Vec<_>>(),
        (21..).zip(late.iter().map(|e| e.id)).collect::<Vec<_>>()
    );
    // At most `limit`, oldest first; with no position, the newest `limit`, still in order.
    let two = store.newer(&Filter::default(), Some(start), 2).unwrap();
    assert_eq!(two.iter().map(|e| e.seq).collect::<Vec<_>>(), [21, 22]);
    let last = store.newer(&Filter::default(), None, 3).unwrap();
    assert_eq!(last.iter().map(|e| e.seq).collect::<Vec<_>>(), [28, 29, 30]);
    let alice = store
        .newer(&parse("username:alice"), Some(start), 100)
        .unwrap();
    assert!(alice.iter().all(|e| e.actor.username == "alice") && !alice.is_empty());
    assert!(alice.windows(2).all(|w| w[0].seq < w[1].seq));
    // Pages carry the same positions.
    let page = store
        .page(&Filter::default(), &PageRequest::first(1000))
        .unwrap();
    let mut by_seq: Vec<(u64, Uuid)> = page.events.iter().map(|e| (e.seq, e.id)).collect();
    by_seq.sort();
    let all = store.newer(&Filter::default(), Some(0), 1000).unwrap();
    assert_eq!(
        by_seq,
        all.iter().map(|e| (e.seq, e.id)).collect::<Vec<_>>()
    );
    for limit in [0, audit_core::store::MAX_PAGE_SIZE + 1] {
        let bad = store.newer(&Filter::default(), Some(0), limit);
        assert!(matches!(bad, Err(StoreError::InvalidRequest(_))), "{limit}");
    }
    let bad = store.page(&Filter::default(), &PageRequest::first(0));
    assert!(matches!(bad, Err(StoreError::InvalidRequest(_))));
    let unresolved = store.page(&parse("username:me"), &PageRequest::first(5));
    assert!(matches!(unresolved, Err(StoreError::InvalidRequest(_))));
    let cursor = Cursor::of(&events[3]);
    assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
}

fn purge_deletes_old_events_in_batches_archiving_first(store: &mut dyn Store) {
    let events = dataset(90);
    store.append(&events).unwrap();
    let cutoff = base_time() + Duration::days(1);
    let old: Vec<Uuid> = events
        .iter()
        .filter(|e| e.time < cutoff)
        .map(|e| e.id)
        .collect();
    assert!(!old.is_empty() && old.len() < events.len());

    let mut options = PurgeOptions::older_than(cutoff);
    options.dry_run = true;
    let dry = store.purge(&options, None, &mut |_| {}).unwrap();
    assert_eq!(dry.events, old.len() as u64);
    assert_eq!(
        store.count(&Filter::default(), 1000).unwrap(),
        Count::Exact(90)
    );

    // An archive that fails stops the purge before anything of its batch is deleted.
    options.dry_run = false;
    options.batch_size = 7;
    let mut failing = |_: &[StoredEvent]| Err(StoreError::Io(std::io::Error::other("disk full")));
    assert!(
        store
            .purge(&options, Some(&mut failing), &mut |_| {})
            .is_err()
    );
    assert_eq!(
        store.count(&Filter::default(), 1000).unwrap(),
        Count::Exact(90)
    );

    let mut archived: Vec<Uuid> = Vec::new();
    let mut archive = |batch: &[StoredEvent]| {
        assert!(batch.len() <= 7);
        archived.extend(batch.iter().map(|e| e.id));
        Ok(())
    };
    let mut progress_calls = 0;
    let report = store
        .purge(&options, Some(&mut archive), &mut |_| progress_calls += 1)
        .unwrap();
    assert_eq!(report.events, old.len() as u64);
    assert!(report.batches + report.partitions_dropped >= 1);
    archived.sort();
    let mut want = old.clone();
    want.sort();
    assert_eq!(
        archived, want,
        "every purged event was archived, exactly once"
    );
    let left = all_pages(store, &Filter::default(), 1000);
    assert_eq!(left.len(), events.len() - old.len());
    assert!(left.iter().all(|id| !old.contains(id)));
    let stats = store.stats().unwrap();
    assert_eq!(stats.rows, left.len() as u64);
    assert!(stats.oldest.unwrap() >= cutoff);
    assert!(stats.total_bytes > 0);

    // Purging again finds nothing; purging without an archive works too.
    assert_eq!(store.purge(&options, None, &mut |_| {}).unwrap().events, 0);
    let everything = PurgeOptions::older_than(base_time() + Duration::days(365));
    assert_eq!(
        store.purge(&everything, None, &mut |_| {}).unwrap().events,
        left.len() as u64
    );
    assert_eq!(store.stats().unwrap().rows, 0);
}

/// Events `n` with times going backwards, for batches whose commit order is not time order.
fn backwards(events: &[AuditEvent], from: DateTime<Utc>) -> Vec<AuditEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| AuditEvent {
            time: from - Duration::minutes(i as i64),
            ..e.clone()
        })
        .collect()
}

fn positions(store: &mut dyn Store, after: u64) -> Vec<(u64, Uuid)> {
    store
        .newer(&Filter::default(), Some(after), 1000)
        .unwrap()
        .iter()
        .map(|e| (e.seq, e.id))
        .collect()
}

fn log_positions_follow_commit_order_across_connections(h: &Harness) {
    let events = dataset(40);
    let mut first = h.writer();
    let mut second = h.writer();
    // Each batch is older than the one before: positions follow commits, not times.
    first
        .append(&backwards(&events[..10], base_time() + Duration::days(9)))
        .unwrap();
    second
        .append(&backwards(&events[10..20], base_time() + Duration::days(5)))
        .unwrap();
    first
        .append(&backwards(&events[20..30], base_time() + Duration::days(1)))
        .unwrap();
    let want: Vec<(u64, Uuid)> = (1..).zip(events[..30].iter().map(|e| e.id)).collect();
    assert_eq!(positions(&mut *second, 0), want);
    assert_eq!(
        second.newer(&Filter::default(), Some(25), 3).unwrap()[0].seq,
        26
    );
    // The head survives reopening; the next append goes on from it.
    drop((first, second));
    let mut reopened = h.writer();
    assert_eq!(reopened.head().unwrap(), LogSpan { first: 1, head: 30 });
    reopened.append(&events[30..]).unwrap();
    assert_eq!(h.reader().head().unwrap(), LogSpan { first: 1, head: 40 });
    let tail = positions(&mut *h.reader(), 28);
    assert_eq!(
        tail.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (29..=40).collect::<Vec<_>>()
    );
}

fn an_event_the_database_refuses_is_rejected_alone(h: &Harness) {
    let mut store = h.writer();
    let mut events = dataset(20);
    for i in [3, 17] {
        events[i].resource_target = "refused-target".into();
    }
    h.refuse_target("refused-target");
    for attempt in 0..2 {
        let err = store.append(&events).unwrap_err();
        let StoreError::Rejected { stored, rejected } = &err else {
            panic!("expected a rejection, got {err}");
        };
        assert_eq!(*stored, 18, "attempt {attempt}");
        let ids: Vec<Uuid> = rejected.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [events[3].id, events[17].id]);
        assert!(
            rejected
                .iter()
                .all(|(_, e)| matches!(e, StoreError::Database { .. })),
            "{err}"
        );
        // The good events are stored once, in batch order, with no gap in the log.
        let good: Vec<Uuid> = events
            .iter()
            .filter(|e| e.resource_target != "refused-target")
            .map(|e| e.id)
            .collect();
        assert_eq!(
            positions(&mut *store, 0),
            (1..).zip(good).collect::<Vec<_>>()
        );
        assert_eq!(store.head().unwrap().head, 18);
    }
}

fn nul_bytes_are_stored_as_replacement_characters(h: &Harness) {
    let mut store = h.writer();
    let mut events = dataset(3);
    let e = &mut events[1];
    e.actor.username = "ali\0ce".into();
    e.actor.email = "a\0@x".into();
    e.actor.id = "\0".into();
    e.organization_id = Some("org\0".into());
    e.user_agent = Some("agent\0/1".into());
    e.resource_type = "work\0space".into();
    e.resource_id = "id\0".into();
    e.resource_target = "tar\0get".into();
    e.resource_icon = "\0icon".into();
    e.action = "wr\0ite".into();
    e.additional_fields
        .insert("ke\0y".into(), json!({"in\0ner": ["v\0", 1]}));
    e.diff = serde_json::from_value(json!({
        "na\0me": {"old": "a\0", "new": {"k\0": "b\0"}, "secret": false},
        "tok\0en": {"secret": true},
    }))
    .unwrap();
    store.append(&events).unwrap();
    let swap = |s: &str| s.replace('\0', "\u{FFFD}");
    let mut want = events[1].clone();
    for s in [
        &mut want.actor.username,
        &mut want.actor.email,
        &mut want.actor.id,
        &mut want.resource_type,
        &mut want.resource_id,
        &mut want.resource_target,
        &mut want.resource_icon,
        &mut want.action,
    ] {
        *s = swap(s);
    }
    want.organization_id = Some("org\u{FFFD}".into());
    want.user_agent = Some("agent\u{FFFD}/1".into());
    want.additional_fields.remove("ke\0y");
    want.additional_fields.insert(
        "ke\u{FFFD}y".into(),
        json!({"in\u{FFFD}ner": ["v\u{FFFD}", 1]}),
    );
    want.diff = serde_json::from_value(json!({
        "na\u{FFFD}me": {"old": "a\u{FFFD}", "new": {"k\u{FFFD}": "b\u{FFFD}"}, "secret": false},
        "tok\u{FFFD}en": {"secret": true},
    }))
    .unwrap();
    let back = store.newer(&Filter::default(), Some(0), 10).unwrap();
    assert_eq!(back.len(), 3, "the whole batch is stored");
    assert_eq!(back[1].event, want);
    assert_eq!(back[0].event, events[0]);
    // A query with a NUL finds the event as stored.
    let found = all_pages(
        &mut *store,
        &Filter::default().with_resource_target("tar\0get"),
        10,
    );
    assert_eq!(found, [events[1].id]);
}

fn purge_removes_a_prefix_and_keeps_the_log_contiguous(h: &Harness) {
    let mut store = h.writer();
    let day = |d: i64| base_time() + Duration::days(d);
    let events = dataset(30);
    let at = |range: std::ops::Range<usize>, d: i64| -> Vec<AuditEvent> {
        events[range]
            .iter()
            .enumerate()
            .map(|(i, e)| AuditEvent {
                time: day(d) + Duration::minutes(i as i64),
                ..e.clone()
            })
            .collect()
    };
    store.append(&at(0..10, 0)).unwrap(); // positions 1-10, day 0
    store.append(&at(10..20, 40)).unwrap(); // 11-20, day 40
    store.append(&at(20..22, 1)).unwrap(); // 21-22: late arrivals from day 1
    store.append(&at(22..30, 41)).unwrap(); // 23-30, day 41
    let cutoff = day(20);
    let mut options = PurgeOptions::older_than(cutoff);
    options.batch_size = 3;
    options.dry_run = true;
    // Only the prefix before the first event at or after the cut-off can go.
    assert_eq!(store.purge(&options, None, &mut |_| {}).unwrap().events, 10);
    options.dry_run = false;
    let mut archived = Vec::new();
    let mut archive = |batch: &[StoredEvent]| {
        archived.extend(batch.iter().map(|e| e.seq));
        Ok(())
    };
    let report = store
        .purge(&options, Some(&mut archive), &mut |_| {})
        .unwrap();
    assert_eq!((report.events, report.purged_through), (10, 10));
    assert_eq!(
        archived,
        (1..=10).collect::<Vec<_>>(),
        "archived in log order"
    );
    assert_eq!(
        store.head().unwrap(),
        LogSpan {
            first: 11,
            head: 30
        }
    );
    assert_eq!(
        h.reader().head().unwrap(),
        LogSpan {
            first: 11,
            head: 30
        }
    );
    let left = positions(&mut *store, 0);
    assert_eq!(
        left.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (11..=30).collect::<Vec<_>>(),
        "what remains is contiguous, late arrivals included"
    );
    // Once the events before them are old enough, the late arrivals go too.
    let later = PurgeOptions::older_than(day(41));
    let report = store.purge(&later, None, &mut |_| {}).unwrap();
    assert_eq!((report.events, report.purged_through), (12, 22));
    assert_eq!(
        store.head().unwrap(),
        LogSpan {
            first: 23,
            head: 30
        }
    );
    // Purging everything keeps the head: positions are never reused.
    let all = PurgeOptions::older_than(day(400));
    assert_eq!(store.purge(&all, None, &mut |_| {}).unwrap().events, 8);
    assert_eq!(
        store.head().unwrap(),
        LogSpan {
            first: 31,
            head: 30
        }
    );
    store.append(&dataset(31)[30..]).unwrap();
    assert_eq!(
        h.writer().head().unwrap(),
        LogSpan {
            first: 31,
            head: 31
        }
    );
}

fn readers_read_and_never_write(h: &Harness) {
    let mut writer = h.writer();
    writer.append(&dataset(12)).unwrap();
    let mut reader = h.reader();
    assert_eq!(reader.head().unwrap(), LogSpan { first: 1, head: 12 });
    assert_eq!(
        reader.count(&Filter::default(), 100).unwrap(),
        Count::Exact(12)
    );
    assert_eq!(all_pages(&mut *reader, &Filter::default(), 5).len(), 12);
    assert_eq!(reader.stats().unwrap().rows, 12);
    assert!(!reader.recorded_actions().unwrap().is_empty());
    let err = reader.append(&dataset(13)[12..]).unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidRequest(m) if m.contains("read-only")),
        "{err}"
    );
    let mut purge = PurgeOptions::older_than(base_time() + Duration::days(365));
    assert!(matches!(
        reader.purge(&purge, None, &mut |_| {}),
        Err(StoreError::InvalidRequest(_))
    ));
    purge.dry_run = true;
    assert_eq!(reader.purge(&purge, None, &mut |_| {}).unwrap().events, 12);
    // The reader sees what writers append later.
    writer.append(&dataset(14)[12..]).unwrap();
    assert_eq!(
        reader
            .newer(&Filter::default(), Some(12), 10)
            .unwrap()
            .len(),
        2
    );
}

/// One store under test: how to open it (again) to write and to read, and how to make its
/// database refuse some events.
pub struct Harness {
    writer: Box<dyn Fn() -> Box<dyn Store>>,
    reader: Box<dyn Fn() -> Box<dyn Store>>,
    refuse: Box<dyn Fn(&str)>,
    cleanup: Option<std::path::PathBuf>,
}

impl Harness {
    fn writer(&self) -> Box<dyn Store> {
        (self.writer)()
    }

    fn reader(&self) -> Box<dyn Store> {
        (self.reader)()
    }

    /// Makes the database refuse events whose target is `target`, as a constraint would.
    fn refuse_target(&self, target: &str) {
        (self.refuse)(target)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(dir) = &self.cleanup {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// Declares one `#[test]` per conformance case for a store.
macro_rules! conformance_suite {
    ($store:ident, $harness:expr) => {
        mod $store {
            use super::*;
            conformance_suite!(@store $harness;
                filters_select_what_matches_selects,
                newer_pages_walk_back_to_the_first_page,
                organization_scopes_select_what_matches_selects,
                a_long_log_out_of_time_order_reads_like_matches,
                date_to_includes_the_last_microsecond_of_its_day,
                events_round_trip_exactly_and_secrets_never_reach_storage,
                appends_are_idempotent_by_event_id,
                an_id_with_another_time_is_another_event,
                counts_are_capped,
                newer_follows_log_positions,
                purge_deletes_old_events_in_batches_archiving_first,
            );
            conformance_suite!(@harness $harness;
                log_positions_follow_commit_order_across_connections,
                an_event_the_database_refuses_is_rejected_alone,
                nul_bytes_are_stored_as_replacement_characters,
                purge_removes_a_prefix_and_keeps_the_log_contiguous,
                readers_read_and_never_write,
            );
        }
    };
    (@store $harness:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                let harness: fn(&str) -> Option<Harness> = $harness;
                if let Some(h) = harness(stringify!($case)) {
                    super::$case(&mut *h.writer());
                }
            }
        )*
    };
    (@harness $harness:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                let harness: fn(&str) -> Option<Harness> = $harness;
                if let Some(h) = harness(stringify!($case)) {
                    super::$case(&h);
                }
            }
        )*
    };
}

/// An SQLite file of its own per case.
#[cfg(feature = "sqlite")]
fn sqlite_harness(case: &str) -> Option<Harness> {
    use audit_core::store::sqlite::SqliteStore;
    let dir = std::env::temp_dir().join(format!("audit-conf-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("audit.db");
    let (w, r, f) = (path.clone(), path.clone(), path);
    Some(Harness {
        writer: Box::new(move || Box::new(SqliteStore::open(&w).expect("open SQLite"))),
        reader: Box::new(move || {
            Box::new(SqliteStore::open_read_only(&r).expect("open SQLite to read"))
        }),
        refuse: Box::new(move |target| {
            let conn = rusqlite::Connection::open(&f).unwrap();
            conn.execute_batch(&format!(
                "CREATE TRIGGER conformance_refuse BEFORE INSERT ON audit_logs \
                 WHEN NEW.resource_target = '{target}' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the conformance suite'); END;"
            ))
            .unwrap();
        }),
        cleanup: Some(dir),
    })
}

#[cfg(feature = "sqlite")]
conformance_suite!(sqlite, sqlite_harness);

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_file_keeps_events_and_schema_across_reopen() {
    use audit_core::store::sqlite::SqliteStore;
    let dir = std::env::temp_dir().join(format!("audit-sqlite-reopen-{}", std::process::id()));
    let path = dir.join("nested/audit.db");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let mut store = SqliteStore::open(&path).unwrap();
        store.append(&dataset(5)).unwrap();
        assert_eq!(store.schema_version().unwrap(), 5);
    }
    let mut store = audit_core::store::open(&format!("sqlite://{}", path.display())).unwrap();
    assert_eq!(store.stats().unwrap().rows, 5);
    assert_eq!(store.head().unwrap(), LogSpan { first: 1, head: 5 });
    std::fs::remove_dir_all(&dir).ok();
}

/// A fresh schema per test case on the Postgres named by `AUDIT_TEST_POSTGRES_URL`, or `None`
/// (with the reason printed) when it is unset outside CI. In CI an unset or unreachable
/// Postgres fails the test: those cases must never be skipped silently there.
#[cfg(feature = "postgres")]
fn postgres_harness(
    case: &str,
    partitioning: audit_core::store::postgres::Partitioning,
) -> Option<Harness> {
    use audit_core::store::postgres::{Options, Partitioning, PostgresStore};
    let url = store_support::postgres_url()?;
    let suffix = if partitioning == Partitioning::Monthly {
        "p"
    } else {
        "t"
    };
    // Postgres names are at most 63 bytes.
    let schema = format!("audit_conf_{suffix}_{}", &case[..case.len().min(48)]);
    store_support::drop_schema(&url, &schema);
    let options = Options {
        schema: schema.clone(),
        partitioning,
        ..Options::default()
    };
    let store = PostgresStore::connect(&url, options.clone()).expect("connect");
    assert_eq!(
        store.is_partitioned(),
        partitioning == Partitioning::Monthly
    );
    drop(store);
    let (w, r) = ((url.clone(), options.clone()), (url.clone(), options));
    Some(Harness {
        writer: Box::new(move || {
            Box::new(PostgresStore::connect(&w.0, w.1.clone()).expect("connect"))
        }),
        reader: Box::new(move || {
            Box::new(PostgresStore::connect_read_only(&r.0, r.1.clone()).expect("connect to read"))
        }),
        refuse: Box::new(move |target| {
            store_support::admin(&url)
                .batch_execute(&format!(
                    "ALTER TABLE {schema}.audit_logs ADD CONSTRAINT conformance_refuse \
                     CHECK (resource_target <> '{target}')"
                ))
                .unwrap();
        }),
        cleanup: None,
    })
}

#[cfg(feature = "postgres")]
conformance_suite!(postgres_plain, |case| postgres_harness(
    case,
    audit_core::store::postgres::Partitioning::None
));

#[cfg(feature = "postgres")]
conformance_suite!(postgres_partitioned, |case| postgres_harness(
    case,
    audit_core::store::postgres::Partitioning::Monthly
));
