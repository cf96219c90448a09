//! The Postgres store beyond the conformance suite: a SELECT-only role reads and no reader
//! runs DDL, writers migrate older stores, a killed connection is replaced without losing or
//! doubling events, errors carry the server's message, SQLSTATE and address, a value
//! Postgres cannot index is rejected alone, whole partitions are purged.
//!
//! Needs `AUDIT_TEST_POSTGRES_URL` (skipped with a note without it, outside CI).
#![cfg(feature = "postgres")]

#[macro_use]
mod store_support;

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};

use audit_core::query::Filter;
use audit_core::store::postgres::{Options, Partitioning, PostgresStore};
use audit_core::store::{LogSpan, PageRequest, PurgeOptions, Store, StoreError, StoredEvent};
use chrono::{Duration, TimeZone, Utc};
use store_support::previous::PostgresPrevious;
use store_support::{admin, base_time, drop_schema, events, postgres_url, with_param};

fn options(schema: &str) -> Options {
    Options {
        schema: schema.into(),
        ..Options::default()
    }
}

fn writer(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::connect(url, options(schema)).unwrap_or_else(|e| panic!("{e}"))
}

fn unsupported(result: Result<PostgresStore, StoreError>) -> String {
    match result {
        Err(StoreError::Unsupported(message)) => message,
        Err(other) => panic!("expected Unsupported, got {other}"),
        Ok(_) => panic!("expected Unsupported, got a store"),
    }
}

fn schema_exists(url: &str, schema: &str) -> bool {
    admin(url)
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_select_only_role_reads_and_readers_run_no_ddl() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_select_only";
    drop_schema(&url, schema);
    writer(&url, schema)
        .append(&events(1, 7, base_time()))
        .unwrap();
    let role = "audit_pg_test_reader";
    let mut admin = admin(&url);
    admin
        .batch_execute(&format!(
            "DROP OWNED BY {role} CASCADE;
             DROP ROLE IF EXISTS {role};"
        ))
        .or_else(|_| admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}")))
        .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN;
             GRANT USAGE ON SCHEMA {schema} TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};"
        ))
        .unwrap();
    let reader_url = with_param(&url, "user", role);
    let mut reader = PostgresStore::connect_read_only(&reader_url, options(schema))
        .unwrap_or_else(|e| panic!("a SELECT-only role cannot open the store: {e}"));
    assert_eq!(reader.head().unwrap(), LogSpan { first: 1, head: 7 });
    assert_eq!(
        reader
            .page(&Filter::default(), &PageRequest::first(100))
            .unwrap()
            .events
            .len(),
        7
    );
    assert_eq!(
        reader.newer(&Filter::default(), Some(5), 10).unwrap().len(),
        2
    );
    assert_eq!(reader.stats().unwrap().rows, 7);
    assert!(!reader.recorded_actions().unwrap().is_empty());
    // The same role may open the store as a writer (it is up to date: no DDL needed), but
    // cannot write, and says so.
    let err = PostgresStore::connect(&reader_url, options(schema))
        .unwrap_or_else(|e| panic!("{e}"))
        .append(&events(2, 1, base_time()))
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    assert_eq!(err.sqlstate(), Some("42501"));
    // A reader on a schema without a store creates nothing.
    let missing = "audit_pg_no_such_schema";
    drop_schema(&url, missing);
    let message = unsupported(PostgresStore::connect_read_only(&url, options(missing)));
    assert!(
        message.contains("no audit store in schema `audit_pg_no_such_schema`"),
        "{message}"
    );
    assert!(!schema_exists(&url, missing), "a reader created the schema");
    drop(reader);
    admin
        .batch_execute(&format!("DROP OWNED BY {role} CASCADE; DROP ROLE {role};"))
        .unwrap();
    drop_schema(&url, schema);
}

#[test]
fn readers_refuse_older_and_newer_stores_and_writers_migrate_older_ones() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_migrate";
    drop_schema(&url, schema);
    let mut previous = PostgresPrevious::create(&url, schema);
    previous
        .0
        .batch_execute(
            "CREATE INDEX audit_logs_build_reason \
             ON audit_logs ((additional_fields ->> 'build_reason'), time, id)",
        )
        .unwrap();
    let in_time_order = store_support::fill_out_of_time_order(&mut previous);
    drop(previous);

    let message = unsupported(PostgresStore::connect_read_only(&url, options(schema)));
    assert!(message.contains("open it once with a writer"), "{message}");
    store_support::assert_numbered_in_order(&mut writer(&url, schema), &in_time_order);
    let mut reader = PostgresStore::connect_read_only(&url, options(schema)).unwrap();
    assert_eq!(reader.head().unwrap().head, 8);
    let kept: i64 = admin(&url)
        .query_one(
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'audit_logs_build_reason'",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "the index an older store had stays");

    admin(&url)
        .batch_execute(&format!(
            "INSERT INTO {schema}.audit_migrations (version) VALUES (9)"
        ))
        .unwrap();
    for result in [
        PostgresStore::connect_read_only(&url, options(schema)),
        PostgresStore::connect(&url, options(schema)),
    ] {
        let message = result.err().unwrap().to_string();
        assert!(message.contains("upgrade"), "{message}");
    }
    drop_schema(&url, schema);
}

#[test]
fn declared_keys_get_an_index() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_keys";
    drop_schema(&url, schema);
    let mut with_keys = options(schema);
    with_keys.indexed_keys = vec!["plan".into()];
    drop(PostgresStore::connect(&url, with_keys.clone()).unwrap());
    store_support::filter_by_declared_key(&mut PostgresStore::connect(&url, with_keys).unwrap());
    let def: String = admin(&url)
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'audit_logs_plan'",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert!(
        def.contains("(additional_fields ->> 'plan'::text)"),
        "{def}"
    );
    drop_schema(&url, schema);
}

#[test]
fn errors_carry_the_server_message_sqlstate_and_address() {
    let Some(url) = postgres_url() else { return };
    let refused =
        PostgresStore::connect("postgres://postgres@127.0.0.1:1/audit", options("public"))
            .err()
            .unwrap();
    let text = refused.to_string();
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(refused.is_connection() && refused.is_retryable());

    let schema = "audit_pg_errors";
    drop_schema(&url, schema);
    let mut store = writer(&url, schema);
    admin(&url)
        .batch_execute(&format!("DROP TABLE {schema}.audit_logs CASCADE"))
        .unwrap();
    let err = store
        .page(&Filter::default(), &PageRequest::first(5))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(r#"relation "audit_logs" does not exist"#),
        "{text}"
    );
    assert!(text.contains("SQLSTATE 42P01"), "{text}");
    assert!(
        text.contains("127.0.0.1:5432") || text.contains("localhost"),
        "{text}"
    );
    assert_eq!(err.sqlstate(), Some("42P01"));
    let source = err.source().expect("the driver's error");
    let driver = source.downcast_ref::<postgres::Error>().unwrap();
    assert!(driver.as_db_error().is_some());
    assert!(!err.is_retryable());
    drop_schema(&url, schema);
}

#[test]
fn a_value_postgres_cannot_index_is_rejected_alone() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_too_big";
    drop_schema(&url, schema);
    let mut store = writer(&url, schema);
    let mut batch = events(1, 10, base_time());
    // Incompressible and longer than a B-tree index row may be (2704 bytes).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    batch[4].resource_target = (0..6000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    let err = store.append(&batch).unwrap_err();
    let StoreError::Rejected { stored, rejected } = &err else {
        panic!("{err}");
    };
    assert_eq!(*stored, 9);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, batch[4].id);
    assert_eq!(rejected[0].1.sqlstate(), Some("54000"), "{err}");
    assert_eq!(store.head().unwrap(), LogSpan { first: 1, head: 9 });
    drop_schema(&url, schema);
}

#[test]
fn whole_partitions_are_dropped_when_they_hold_the_next_positions() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_partition_purge";
    drop_schema(&url, schema);
    let mut store = PostgresStore::connect(
        &url,
        Options {
            schema: schema.into(),
            partitioning: Partitioning::Monthly,
            ..Options::default()
        },
    )
    .unwrap();
    let month = |m| Utc.with_ymd_and_hms(2024, m, 3, 0, 0, 0).single().unwrap();
    store.append(&events(1, 10, month(1))).unwrap(); // 1-10, January
    store.append(&events(2, 10, month(2))).unwrap(); // 11-20, February
    store
        .append(&events(3, 1, month(1) + Duration::days(1)))
        .unwrap(); // 21, late January
    store.append(&events(4, 9, month(3))).unwrap(); // 22-30, March
    let mut archived = Vec::new();
    let mut archive = |batch: &[StoredEvent]| {
        archived.extend(batch.iter().map(|e| e.seq));
        Ok(())
    };
    let mut options = PurgeOptions::older_than(month(4));
    options.batch_size = 4;
    let report = store
        .purge(&options, Some(&mut archive), &mut |_| {})
        .unwrap();
    // January holds 1-10 and 21: not the next stretch, so its rows go by position; then
    // February (11-20), what is left of January (21) and March (22-30) each go whole.
    assert_eq!(
        (report.events, report.batches, report.partitions_dropped),
        (30, 3, 3),
        "{report:?}"
    );
    assert_eq!(archived, (1..=30).collect::<Vec<_>>());
    assert_eq!(
        store.head().unwrap(),
        LogSpan {
            first: 31,
            head: 30
        }
    );
    let left = store.stats().unwrap().partitions;
    assert!(left.is_empty(), "{left:?}");
    // A writer that still believed in a dropped partition recreates it.
    store.append(&events(5, 2, month(2))).unwrap();
    assert_eq!(
        store.head().unwrap(),
        LogSpan {
            first: 31,
            head: 32
        }
    );
    drop_schema(&url, schema);
}

/// Kills every session of the store's connections (named by `application_name`).
fn kill(url: &str, application: &str) -> u64 {
    admin(url)
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .unwrap()
        .get::<_, i64>(0) as u64
}

#[test]
fn a_killed_connection_is_replaced_and_no_event_is_lost_or_doubled() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_killed";
    drop_schema(&url, schema);
    let application = "audit-test-killed-connection";
    let store_url = with_param(&url, "application_name", application);
    let mut store = writer(&store_url, schema);
    const BATCHES: u64 = 40;
    const BATCH: u64 = 250;
    let batches: Vec<_> = (0..BATCHES as u32)
        .map(|i| events(i, BATCH as usize, base_time()))
        .collect();

    // Between appends: the next append and the next read reconnect.
    store.append(&batches[0]).unwrap();
    assert_eq!(kill(&url, application), 1);
    store.append(&batches[1]).unwrap();
    assert_eq!(kill(&url, application), 1);
    assert_eq!(store.head().unwrap().head, 2 * BATCH);

    // During appends: a killer terminates the session every so often while the appender
    // goes on; every append must succeed.
    let done = AtomicBool::new(false);
    let kills = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut kills = 0;
            for _ in 0..40 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(60));
                kills += kill(&url, application);
            }
            kills
        });
        for batch in &batches[2..] {
            store
                .append(batch)
                .unwrap_or_else(|e| panic!("append failed: {e}"));
        }
        done.store(true, Ordering::Relaxed);
        killer.join().unwrap()
    });
    assert!(kills > 0, "the killer never found the store's session");
    eprintln!("the store's session was killed {kills} times during appends");
    // A batch whose commit was cut off is appended again: stored once.
    store.append(&batches[30]).unwrap();
    let head = store.head().unwrap();
    assert_eq!(
        head,
        LogSpan {
            first: 1,
            head: BATCHES * BATCH
        },
        "after {kills} kills"
    );
    let mut ids: Vec<_> = (0..BATCHES * BATCH / 1000)
        .flat_map(|i| {
            store
                .newer(&Filter::default(), Some(i * 1000), 1000)
                .unwrap()
        })
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len() as u64, BATCHES * BATCH);
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len() as u64,
        BATCHES * BATCH,
        "an event was stored twice"
    );
    drop_schema(&url, schema);
}

#[test]
fn an_append_notifies_listeners_of_the_new_head() {
    let Some(url) = postgres_url() else { return };
    let schema = "audit_pg_notify";
    drop_schema(&url, schema);
    let mut store = writer(&url, schema);
    let mut listener = admin(&url);
    listener
        .batch_execute(&format!(
            "LISTEN {}",
            audit_core::store::postgres::NOTIFY_CHANNEL
        ))
        .unwrap();
    // A head no other test's store reaches, since the channel is shared by the database.
    store.append(&events(1, 777, base_time())).unwrap();
    use postgres::fallible_iterator::FallibleIterator;
    let mut notifications = listener.notifications();
    let heard = notifications
        .timeout_iter(std::time::Duration::from_secs(10))
        .iterator()
        .take(1000)
        .map(|n| n.unwrap())
        .any(|n| n.channel() == "audit_events" && n.payload() == "777");
    assert!(heard, "no notification with the new head");
    drop_schema(&url, schema);
}
