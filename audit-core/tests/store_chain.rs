//! The hash chain through the real stores: an untouched log, a purged one and one appended to
//! after a purge verify; every way of tampering with the database directly (SQL, as someone
//! with write access would) is named at the first event concerned; checkpoints catch a
//! rewritten chain and a truncated head; stores made before the chain are chained when
//! migrated. On SQLite, Postgres, and monthly-partitioned Postgres.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

#[macro_use]
mod store_support;

use audit_core::chain::{
    ChainHash, ChainHasher, ChainHead, CheckpointOutcome, ProblemKind, SigningKey, UncheckedReason,
    VerifyReport,
};
use audit_core::query::Filter;
use audit_core::store::export::{EventWriter, Format};
use audit_core::store::postgres::{Options, Partitioning, PostgresStore};
use audit_core::store::sqlite::SqliteStore;
use audit_core::store::verify::{VerifyOptions, take_checkpoint, verify};
use audit_core::store::{PurgeOptions, Store, StoreUrl, StoredEvent};
use audit_core::{Actor, AuditEvent, Diff};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use store_support::{drop_schema, postgres_url, temp_dir};
use uuid::Uuid;

/// A store under test, and direct SQL access to it.
struct Db {
    name: String,
    target: Target,
}

enum Target {
    Sqlite(std::path::PathBuf),
    Postgres {
        url: String,
        schema: String,
        partitioning: Partitioning,
    },
}

impl Db {
    fn writer(&self) -> Box<dyn Store> {
        match &self.target {
            Target::Sqlite(path) => Box::new(SqliteStore::open(path).unwrap()),
            Target::Postgres {
                url,
                schema,
                partitioning,
            } => Box::new(
                PostgresStore::connect(url, options(schema, *partitioning))
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        }
    }

    fn reader(&self) -> Box<dyn Store> {
        match &self.target {
            Target::Sqlite(path) => StoreUrl::Sqlite(path.clone()).open_read_only().unwrap(),
            Target::Postgres { url, schema, .. } => Box::new(
                PostgresStore::connect_read_only(url, options(schema, Partitioning::None))
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        }
    }

    /// Runs SQL on the database, around the store.
    fn sql(&self, sql: &str) {
        match &self.target {
            Target::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Target::Postgres { url, schema, .. } => {
                let mut client = store_support::admin(url);
                client
                    .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// A byte string as an SQL literal.
    fn bytes(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self.target {
            Target::Sqlite(_) => format!("X'{hex}'"),
            Target::Postgres { .. } => format!("decode('{hex}', 'hex')"),
        }
    }

    /// SQL for "a day before `time`".
    fn day_earlier(&self) -> &'static str {
        match self.target {
            Target::Sqlite(_) => "time - 86400000000",
            Target::Postgres { .. } => "time - interval '1 day'",
        }
    }

    fn is_sqlite(&self) -> bool {
        matches!(self.target, Target::Sqlite(_))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        match &self.target {
            Target::Sqlite(path) => {
                let _ = std::fs::remove_dir_all(path.parent().unwrap());
            }
            Target::Postgres { url, schema, .. } => drop_schema(url, schema),
        }
    }
}

fn options(schema: &str, partitioning: Partitioning) -> Options {
    Options {
        schema: schema.into(),
        partitioning,
        ..Options::default()
    }
}

/// A fresh store of each kind (Postgres ones only when `AUDIT_TEST_POSTGRES_URL` is set).
fn stores(test: &str) -> Vec<Db> {
    let dir = temp_dir(&format!("chain-{test}"));
    let mut all = vec![Db {
        name: "sqlite".into(),
        target: Target::Sqlite(dir.join("audit.db")),
    }];
    if let Some(url) = postgres_url() {
        for (kind, partitioning) in [("pg", Partitioning::None), ("pgm", Partitioning::Monthly)] {
            let schema = format!("chain_{kind}_{test}");
            drop_schema(&url, &schema);
            all.push(Db {
                name: kind.into(),
                target: Target::Postgres {
                    url: url.clone(),
                    schema,
                    partitioning,
                },
            });
        }
    }
    all
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 10, 0, 0, 0).unwrap()
}

/// Event `i` of the test log: rich enough that every column holds something, with numbers
/// that `jsonb` rewrites (`1e16`, `2.50`) and a week apart, so twelve events span three months.
fn event(i: u64) -> AuditEvent {
    let diff: Diff = serde_json::from_value(json!({
        "name": {"old": format!("ws-{i}"), "new": format!("ws-{}", i + 1), "secret": false},
        "quota": {"old": 1e16, "new": 2.5, "secret": false},
        "token": {"secret": true},
    }))
    .unwrap();
    AuditEvent::builder(["create", "write", "delete"][i as usize % 3])
        .id_and_time(
            Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(i)),
            start() + Duration::days(7 * i as i64) + Duration::microseconds(123),
        )
        .actor(Actor::new(
            format!("u-{}", i % 3),
            "alice",
            "alice@example.com",
        ))
        .organization_id("org-1")
        .ip(if i.is_multiple_of(2) {
            "192.0.2.7".parse().unwrap()
        } else {
            "2001:db8::7".parse().unwrap()
        })
        .user_agent("Mozilla/5.0 ☃")
        .resource_type("workspace")
        .resource_id(format!("ws-{i}"))
        .resource_target(format!("dev-{i}"))
        .resource_icon("/icon/ws.svg")
        .diff(diff)
        .field("build_reason", "autostart")
        .field("attempt", i)
        .field("ratio", 0.1 * i as f64)
        .request_id(Uuid::from_u128(u128::from(i) << 64))
        .build()
}

/// Appends events `from..=to` in batches of four.
fn append(store: &mut dyn Store, from: u64, to: u64) {
    let events: Vec<AuditEvent> = (from..=to).map(event).collect();
    for batch in events.chunks(4) {
        store.append(batch).unwrap();
    }
}

fn verify_with(db: &Db, options: &VerifyOptions) -> VerifyReport {
    verify(&mut *db.reader(), options).unwrap()
}

fn verify_plain(db: &Db) -> VerifyReport {
    verify_with(db, &VerifyOptions::default())
}

fn key() -> SigningKey {
    SigningKey::from_seed("test.example/audit", &[7; 32]).unwrap()
}

fn with_checkpoints(notes: &[String]) -> VerifyOptions {
    VerifyOptions {
        keys: vec![key().verifier()],
        checkpoints: notes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("cp{i}"), n.clone()))
            .collect(),
        archives: Vec::new(),
    }
}

#[track_caller]
fn first(report: &VerifyReport) -> (Option<u64>, Option<Uuid>, ProblemKind) {
    let p = report
        .first_problem()
        .unwrap_or_else(|| panic!("no problem found:\n{report}"));
    (p.seq, p.id, p.kind.clone())
}

fn event_id(i: u64) -> Uuid {
    event(i).id
}

#[test]
fn untouched_purged_and_appended_logs_verify() {
    for db in stores("intact") {
        let mut writer = db.writer();
        append(&mut *writer, 1, 12);
        let report = verify_plain(&db);
        assert!(report.is_intact(), "{}: {report}", db.name);
        assert_eq!(report.events_verified, 12, "{}", db.name);
        assert_eq!(report.head.seq, 12);
        assert_eq!(report.head, writer.chain().unwrap().head);
        let (_, before_purge) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();

        // Purge the first two months, archiving them.
        let archive = temp_dir(&format!("chain-archive-{}", db.name)).join("archive.jsonl");
        let mut out = EventWriter::new(std::fs::File::create(&archive).unwrap(), Format::JsonLines);
        let mut write = |events: &[StoredEvent]| -> Result<(), audit_core::store::StoreError> {
            for e in events {
                out.write(e)?;
            }
            Ok(())
        };
        let cutoff = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        let purged = writer
            .purge(
                &PurgeOptions::older_than(cutoff),
                Some(&mut write),
                &mut |_| {},
            )
            .unwrap();
        out.finish().unwrap();
        assert!(purged.events >= 7, "{}: {purged:?}", db.name);
        let anchor = writer.chain().unwrap().anchor;
        assert_eq!(anchor.seq, purged.events);

        let report = verify_with(&db, &with_checkpoints(std::slice::from_ref(&before_purge)));
        assert!(report.is_intact(), "{}: {report}", db.name);
        assert_eq!(report.events_verified, 12 - purged.events);
        assert_eq!(report.unchecked[0].reason, UncheckedReason::Purged);
        assert_eq!(report.unchecked[0].to, anchor.seq);
        assert_eq!(report.checkpoints[0].outcome, CheckpointOutcome::Matched);

        // With the archive, nothing is left unchecked.
        let mut options = with_checkpoints(std::slice::from_ref(&before_purge));
        options.archives.push(archive.clone());
        let report = verify_with(&db, &options);
        assert!(report.is_intact(), "{}: {report}", db.name);
        assert!(report.unchecked.is_empty(), "{}: {report}", db.name);
        assert_eq!(report.events_verified, 12);

        // Appending after the purge continues the chain.
        append(&mut *writer, 13, 16);
        let (_, after) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        let report = verify_with(&db, &with_checkpoints(&[before_purge, after]));
        assert!(report.is_intact(), "{}: {report}", db.name);
        assert_eq!(report.head.seq, 16);
        assert!(
            report
                .checkpoints
                .iter()
                .all(|c| c.outcome == CheckpointOutcome::Matched),
            "{}: {report}",
            db.name
        );
        let _ = std::fs::remove_dir_all(archive.parent().unwrap());
    }
}

/// One way of tampering: SQL to run, and where verification must point.
struct Tamper {
    what: &'static str,
    sql: Box<dyn Fn(&Db) -> String>,
    seq: u64,
    id: Option<Uuid>,
}

fn tampers() -> Vec<Tamper> {
    let t = |what, seq, id, sql: Box<dyn Fn(&Db) -> String>| Tamper { what, sql, seq, id };
    vec![
        t(
            "a text field altered",
            5,
            Some(event_id(5)),
            Box::new(|_| "UPDATE audit_logs SET resource_target = 'prod' WHERE seq = 5".into()),
        ),
        t(
            "a diff altered",
            5,
            Some(event_id(5)),
            Box::new(|_| {
                r#"UPDATE audit_logs SET diff = '{"name":{"old":"a","new":"b","secret":false}}' WHERE seq = 5"#
                    .into()
            }),
        ),
        t(
            "an additional field altered",
            6,
            Some(event_id(6)),
            Box::new(|_| {
                r#"UPDATE audit_logs SET additional_fields = '{"build_reason":"initiator"}' WHERE seq = 6"#
                    .into()
            }),
        ),
        t(
            "back-dated",
            7,
            Some(event_id(7)),
            Box::new(|db| {
                format!(
                    "UPDATE audit_logs SET time = {} WHERE seq = 7",
                    db.day_earlier()
                )
            }),
        ),
        t(
            "the actor changed",
            3,
            Some(event_id(3)),
            Box::new(|_| "UPDATE audit_logs SET username = 'mallory' WHERE seq = 3".into()),
        ),
        t(
            "the status changed",
            9,
            Some(event_id(9)),
            Box::new(|_| "UPDATE audit_logs SET status_code = 403 WHERE seq = 9".into()),
        ),
        t(
            "a row deleted",
            6,
            Some(event_id(6)),
            Box::new(|_| "DELETE FROM audit_logs WHERE seq = 5".into()),
        ),
        t(
            "two rows reordered",
            4,
            Some(event_id(5)),
            Box::new(|_| {
                "UPDATE audit_logs SET seq = -1 WHERE seq = 4; \
                 UPDATE audit_logs SET seq = 4 WHERE seq = 5; \
                 UPDATE audit_logs SET seq = 5 WHERE seq = -1"
                    .into()
            }),
        ),
        t(
            "a hash replaced",
            5,
            Some(event_id(5)),
            Box::new(|db| {
                format!(
                    "UPDATE audit_logs SET hash = {} WHERE seq = 5",
                    db.bytes(&[0; 32])
                )
            }),
        ),
        t(
            "a row made unreadable",
            8,
            Some(event_id(8)),
            Box::new(|db| {
                if db.is_sqlite() {
                    "UPDATE audit_logs SET diff = 'not json' WHERE seq = 8".into()
                } else {
                    r#"UPDATE audit_logs SET diff = '"not a diff"' WHERE seq = 8"#.into()
                }
            }),
        ),
        t(
            "a row appended around the store",
            13,
            Some(Uuid::from_u128(4242)),
            Box::new(|db| {
                let cols = audit_core::store::COLUMNS.join(", ");
                let select: Vec<&str> = audit_core::store::COLUMNS
                    .iter()
                    .map(|c| match *c {
                        "seq" => "13",
                        "id" => "NEW_ID",
                        other => other,
                    })
                    .collect();
                let new_id = if db.is_sqlite() {
                    db.bytes(Uuid::from_u128(4242).as_bytes())
                } else {
                    format!("'{}'::uuid", Uuid::from_u128(4242))
                };
                format!(
                    "INSERT INTO audit_logs ({cols}) SELECT {} FROM audit_logs WHERE seq = 12",
                    select.join(", ").replace("NEW_ID", &new_id)
                )
            }),
        ),
    ]
}

#[test]
fn every_tamper_is_named_at_the_first_event_concerned() {
    for tamper in tampers() {
        for db in stores("tamper") {
            append(&mut *db.writer(), 1, 12);
            db.sql(&(tamper.sql)(&db));
            let report = verify_plain(&db);
            let (seq, id, kind) = first(&report);
            assert_eq!(
                (seq, id),
                (Some(tamper.seq), tamper.id),
                "{} on {}: {kind:?}\n{report}",
                tamper.what,
                db.name
            );
        }
    }
}

#[test]
fn a_duplicated_position_is_caught_where_the_store_allows_it() {
    // SQLite refuses a second row at a position; Postgres (whose positions are unique by
    // the head lock, not an index) takes it, and verification names that position.
    for db in stores("duplicate").into_iter().filter(|db| !db.is_sqlite()) {
        append(&mut *db.writer(), 1, 12);
        let cols = audit_core::store::COLUMNS.join(", ");
        let select = cols.replace(
            "id, time",
            "'00000000-0000-0000-0000-00000000abcd'::uuid, time + interval '1 second'",
        );
        db.sql(&format!(
            "INSERT INTO audit_logs ({cols}) SELECT {select} FROM audit_logs WHERE seq = 5"
        ));
        let (seq, _, kind) = first(&verify_plain(&db));
        assert_eq!(seq, Some(5), "{}: {kind:?}", db.name);
    }
}

#[test]
fn checkpoints_catch_a_truncated_head_and_a_rewritten_chain() {
    for db in stores("checkpoints") {
        let mut writer = db.writer();
        append(&mut *writer, 1, 12);
        let (_, at_12) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();

        // The newest rows deleted: the head row still says 12.
        db.sql("DELETE FROM audit_logs WHERE seq > 10");
        let (seq, id, kind) = first(&verify_plain(&db));
        assert_eq!((seq, id), (Some(11), None), "{}", db.name);
        assert!(matches!(
            kind,
            ProblemKind::Truncated {
                from: 11,
                to: 12,
                ..
            }
        ));

        // …and the head row moved back too: only the checkpoint knows.
        let hash_10 = writer
            .newer(&Filter::default(), Some(9), 1)
            .unwrap()
            .remove(0)
            .hash;
        db.sql(&format!(
            "UPDATE audit_log_head SET seq = 10, hash = {} WHERE id = 1",
            db.bytes(hash_10.as_bytes())
        ));
        assert!(verify_plain(&db).is_intact(), "{}", db.name);
        let report = verify_with(&db, &with_checkpoints(std::slice::from_ref(&at_12)));
        let (seq, _, kind) = first(&report);
        assert_eq!(seq, Some(11), "{}: {report}", db.name);
        assert!(
            matches!(kind, ProblemKind::Truncated { to: 12, .. }),
            "{kind:?}"
        );
        drop(writer);
    }
    for db in stores("rewrite") {
        let mut writer = db.writer();
        append(&mut *writer, 1, 6);
        let (_, at_6) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        append(&mut *writer, 7, 12);
        let (_, at_12) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        // Event 8 edited and every hash from there recomputed, the head row too.
        db.sql("UPDATE audit_logs SET resource_target = 'prod' WHERE seq = 8");
        let events = writer.newer(&Filter::default(), Some(0), 100).unwrap();
        let mut hasher = ChainHasher::new();
        let mut prev = events[6].hash;
        let mut sql = String::new();
        for e in &events[7..] {
            prev = hasher.hash(&prev, e.seq, &e.event);
            sql.push_str(&format!(
                "UPDATE audit_logs SET hash = {} WHERE seq = {};",
                db.bytes(prev.as_bytes()),
                e.seq
            ));
        }
        sql.push_str(&format!(
            "UPDATE audit_log_head SET hash = {} WHERE id = 1",
            db.bytes(prev.as_bytes())
        ));
        db.sql(&sql);
        // The chain alone holds together…
        let report = verify_plain(&db);
        assert!(report.is_intact(), "{}: {report}", db.name);
        // …but not with the checkpoints: the first event after the last good one is named.
        let report = verify_with(&db, &with_checkpoints(&[at_6, at_12]));
        let (seq, id, kind) = first(&report);
        assert_eq!(
            (seq, id),
            (Some(7), Some(event_id(7))),
            "{}: {report}",
            db.name
        );
        assert!(
            matches!(kind, ProblemKind::Rewritten { size: 12, .. }),
            "{kind:?}"
        );
        // The stored checkpoints say the same without files.
        let report = verify_with(
            &db,
            &VerifyOptions {
                keys: vec![key().verifier()],
                ..VerifyOptions::default()
            },
        );
        assert!(!report.is_intact(), "{}: {report}", db.name);
        // And a checkpoint is refused on a chain that no longer extends the last one.
        let refused = take_checkpoint(&mut *writer, &key(), Utc::now());
        assert!(refused.is_err(), "{}", db.name);
    }
}

#[test]
fn a_quiet_interval_still_gets_a_checkpoint() {
    // Like CloudTrail's empty digest files: a checkpoint of an unchanged head (or of an empty
    // log) asserts that nothing was appended since.
    for db in stores("quiet") {
        let mut writer = db.writer();
        let (empty, _) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        assert_eq!(empty.head, ChainHead::GENESIS);
        append(&mut *writer, 1, 3);
        let (first, a) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        let (second, b) = take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        assert_eq!(first.head, second.head);
        assert_ne!(a, b, "{}: each checkpoint has its own time", db.name);
        let report = verify_with(&db, &with_checkpoints(&[a, b]));
        assert!(report.is_intact(), "{}: {report}", db.name);
        // Two given, three stored (the empty log's included).
        assert_eq!(report.checkpoints.len(), 5, "{report}");
        assert!(
            report
                .checkpoints
                .iter()
                .all(|c| c.outcome == CheckpointOutcome::Matched),
            "{report}"
        );
    }
}

#[test]
fn stored_checkpoints_count_only_when_their_signature_holds() {
    for db in stores("stored_cp") {
        let mut writer = db.writer();
        append(&mut *writer, 1, 4);
        take_checkpoint(&mut *writer, &key(), Utc::now()).unwrap();
        let keyed = VerifyOptions {
            keys: vec![key().verifier()],
            ..VerifyOptions::default()
        };
        let report = verify_with(&db, &keyed);
        assert!(
            report.is_intact() && report.unchecked.is_empty(),
            "{report}"
        );
        // Without a key: said, not silently passed.
        let report = verify_plain(&db);
        assert_eq!(report.checkpoints_not_checked.len(), 1, "{report}");
        assert!(report.to_string().contains("pass --public-key"), "{report}");
        // A stored checkpoint edited to vouch for another head.
        let note = db.reader().checkpoints().unwrap().remove(0).note;
        let edited = note.replacen("\n4\n", "\n3\n", 1);
        assert_ne!(edited, note);
        db.sql(&format!("UPDATE audit_checkpoints SET note = '{edited}'"));
        let (_, _, kind) = first(&verify_with(&db, &keyed));
        assert!(
            matches!(kind, ProblemKind::InvalidCheckpoint { .. }),
            "{kind:?}"
        );
    }
}

#[test]
fn stores_made_before_the_chain_are_chained_when_migrated() {
    let dir = temp_dir("chain-migrate");
    let path = dir.join("audit.db");
    let mut previous = store_support::previous::SqlitePrevious::create(&path);
    let in_time_order = store_support::fill_out_of_time_order(&mut previous);
    drop(previous);
    let mut store = SqliteStore::open(&path).unwrap();
    let report = verify(&mut store, &VerifyOptions::default()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events_verified, in_time_order.len() as u64);
    store.append(&[event(1)]).unwrap();
    assert!(
        verify(&mut store, &VerifyOptions::default())
            .unwrap()
            .is_intact()
    );
    std::fs::remove_dir_all(&dir).ok();

    let Some(url) = postgres_url() else { return };
    let schema = "chain_migrate";
    drop_schema(&url, schema);
    let mut previous = store_support::previous::PostgresPrevious::create(&url, schema);
    let in_time_order = store_support::fill_out_of_time_order(&mut previous);
    drop(previous);
    let mut store = PostgresStore::connect(&url, options(schema, Partitioning::None)).unwrap();
    let report = verify(&mut store, &VerifyOptions::default()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events_verified, in_time_order.len() as u64);
    drop_schema(&url, schema);
}

/// Turns a store back into one of the version before the chain (log positions, no chain;
/// for SQLite, none of what version 5 added either).
fn unchain(db: &Db) {
    let version = if db.is_sqlite() {
        "ALTER TABLE audit_log_buckets DROP COLUMN keys;
         DROP TABLE audit_log_key_groups;
         DROP INDEX audit_log_buckets_newest;
         DROP INDEX audit_log_buckets_oldest;
         PRAGMA user_version = 3"
    } else {
        "DELETE FROM audit_migrations WHERE version = 3"
    };
    db.sql(&format!(
        "ALTER TABLE audit_logs DROP COLUMN hash;
         ALTER TABLE audit_log_head DROP COLUMN hash;
         ALTER TABLE audit_log_head DROP COLUMN purged_hash;
         DROP TABLE audit_checkpoints;
         {version};"
    ));
}

#[test]
fn stores_with_positions_but_no_chain_are_chained_when_a_writer_opens_them() {
    for db in stores("unchained") {
        let mut writer = db.writer();
        append(&mut *writer, 1, 12);
        let cutoff = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
        let purged = writer
            .purge(&PurgeOptions::older_than(cutoff), None, &mut |_| {})
            .unwrap()
            .events;
        assert!(purged > 0);
        drop(writer);
        unchain(&db);
        // Readers refuse the older schema; a writer migrates it and chains what is left.
        let mut writer = db.writer();
        let span = writer.chain().unwrap();
        assert_eq!(span.anchor.seq, purged);
        let report = verify_plain(&db);
        assert!(report.is_intact(), "{}: {report}", db.name);
        assert_eq!(report.events_verified, 12 - purged, "{}", db.name);
        assert_eq!(report.unchecked[0].reason, UncheckedReason::Purged);
        assert_eq!(report.head, span.head);
        // Appends go on from the chained head.
        append(&mut *writer, 13, 14);
        assert!(verify_plain(&db).is_intact(), "{}", db.name);
    }
}

#[test]
fn verifying_never_writes() {
    for db in stores("read_only") {
        append(&mut *db.writer(), 1, 4);
        take_checkpoint(&mut *db.writer(), &key(), Utc::now()).unwrap();
        let before = db.reader().chain().unwrap();
        let checkpoints = db.reader().checkpoints().unwrap().len();
        let report = verify_with(
            &db,
            &VerifyOptions {
                keys: vec![key().verifier()],
                ..VerifyOptions::default()
            },
        );
        assert!(report.is_intact());
        assert_eq!(db.reader().chain().unwrap(), before);
        assert_eq!(db.reader().checkpoints().unwrap().len(), checkpoints);
        // A reader cannot record a checkpoint.
        assert!(take_checkpoint(&mut *db.reader(), &key(), Utc::now()).is_err());
    }
}

#[test]
fn the_head_record_and_the_chain_agree_after_every_append() {
    for db in stores("head") {
        let mut writer = db.writer();
        for i in 1..=5 {
            writer.append(&[event(i)]).unwrap();
            let span = writer.chain().unwrap();
            let last = writer
                .newer(&Filter::default(), Some(i - 1), 1)
                .unwrap()
                .remove(0);
            assert_eq!(
                span.head,
                ChainHead {
                    seq: i,
                    hash: last.hash
                }
            );
        }
        // A retried batch changes nothing.
        writer.append(&[event(3), event(4)]).unwrap();
        assert_eq!(writer.chain().unwrap().head.seq, 5);
        assert_ne!(writer.chain().unwrap().head.hash, ChainHash::GENESIS);
    }
}
