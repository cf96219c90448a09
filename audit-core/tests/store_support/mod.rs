//! What the store test files share: deterministic events, the test Postgres (or the reason
//! it is skipped), fresh directories and schemas, and re-running the test binary itself as a
//! second process (a writer, an unprivileged reader).
#![allow(dead_code)]

#[macro_use]
pub(crate) mod previous;
pub(crate) mod unprivileged;

use std::path::PathBuf;
use std::process::{Command, Output};

use audit_core::{Actor, AuditEvent};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// The environment variable that gives a re-run test binary its role.
pub(crate) const ROLE: &str = "AUDIT_STORE_TEST_ROLE";

pub(crate) fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).single().unwrap()
}

/// `n` events with ids unique to `source`, a minute apart from `start`.
pub(crate) fn events(source: u32, n: usize, start: DateTime<Utc>) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::builder(["create", "write", "delete"][i % 3])
                .actor(Actor::new(
                    format!("u{}", i % 4),
                    format!("user{}", i % 4),
                    "u@x",
                ))
                .resource_type("workspace")
                .resource_target(format!("ws-{source}-{i}"))
                .build();
            e.id = Uuid::from_u128((u128::from(source) << 64) | i as u128);
            e.time = start + Duration::minutes(i as i64);
            e
        })
        .collect()
}

/// A fresh directory for one test.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("audit-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Postgres named by `AUDIT_TEST_POSTGRES_URL`, or `None` (with the reason printed) when
/// it is unset outside CI. In CI an unset variable fails the test.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("AUDIT_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set AUDIT_TEST_POSTGRES_URL: the Postgres store tests cannot be skipped in CI"
            );
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: skipping the Postgres store tests: AUDIT_TEST_POSTGRES_URL is not set \
                     (e.g. AUDIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1/test)"
                );
            });
            None
        }
    }
}

/// A superuser connection to the test Postgres.
pub(crate) fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("Postgres at AUDIT_TEST_POSTGRES_URL is unreachable: {e}"))
}

/// Drops `schema` (and everything in it) so a test starts from nothing.
pub(crate) fn drop_schema(url: &str, schema: &str) {
    admin(url)
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
}

/// `url` with a query parameter added.
pub(crate) fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// This test binary, run again to execute only `test` (which acts on `role`).
pub(crate) fn rerun(test: &str, role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    command
}

/// The role this process was re-run with, if any.
pub(crate) fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Starts `command` as writer number `source` (in `AUDIT_STORE_TEST_SOURCE`), its output
/// captured.
pub(crate) fn start_writer(mut command: Command, source: u32) -> std::process::Child {
    command
        .env("AUDIT_STORE_TEST_SOURCE", source.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The writer number a re-run process was given.
pub(crate) fn writer_source() -> u32 {
    std::env::var("AUDIT_STORE_TEST_SOURCE")
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits for each child and asserts it succeeded.
pub(crate) fn wait_all(children: Vec<std::process::Child>) {
    for (i, child) in children.into_iter().enumerate() {
        assert_success(
            &format!("writer process {i}"),
            &child.wait_with_output().unwrap(),
        );
    }
}

/// Appends two events, one with `plan: pro`, and checks that a filter on `plan` (a key the
/// store was opened to index) finds that one.
pub(crate) fn filter_by_declared_key(store: &mut dyn audit_core::store::Store) {
    let mut e = events(1, 2, base_time());
    e[0].additional_fields.insert("plan".into(), "pro".into());
    store.append(&e).unwrap();
    let found = store
        .page(
            &audit_core::query::Filter::default().with_additional("plan", "pro"),
            &audit_core::store::PageRequest::first(10),
        )
        .unwrap();
    assert_eq!(found.events.len(), 1);
    assert_eq!(found.events[0].id, e[0].id);
}

/// Fills a store of the previous version out of time order (a newer batch first, then an
/// older one); returns its events in time order.
pub(crate) fn fill_out_of_time_order(
    previous: &mut dyn previous::PreviousAppend,
) -> Vec<AuditEvent> {
    let late = events(1, 4, base_time() + Duration::days(2));
    let early = events(2, 3, base_time());
    previous.append(&late);
    previous.append(&early);
    early.into_iter().chain(late).collect()
}

/// Asserts a migrated store numbered `in_time_order` 1, 2, 3, …, and numbers what is
/// appended next after them.
pub(crate) fn assert_numbered_in_order(
    store: &mut dyn audit_core::store::Store,
    in_time_order: &[AuditEvent],
) {
    let n = in_time_order.len() as u64;
    let span = store.head().unwrap();
    assert_eq!((span.first, span.head), (1, n));
    let numbered: Vec<(u64, Uuid)> = store
        .newer(&audit_core::query::Filter::default(), Some(0), 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.id))
        .collect();
    let want: Vec<(u64, Uuid)> = (1..).zip(in_time_order.iter().map(|e| e.id)).collect();
    assert_eq!(numbered, want);
    store.append(&events(3, 1, base_time())).unwrap();
    assert_eq!(store.head().unwrap().head, n + 1);
}

/// Asserts a child process succeeded, showing its output if not.
pub(crate) fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
