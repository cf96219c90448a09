//! Properties of the hash chain through the real stores:
//!
//! * any event, whatever its strings (any Unicode, control characters, NUL), numbers (any
//!   float, the largest integers) and JSON shapes, is hashed when appended and verifies when
//!   read back, from SQLite (JSON text) and from Postgres (`jsonb`, which reorders keys and
//!   rewrites numbers): the canonical bytes do not depend on the store;
//! * any single-byte change to any stored field of an event is detected (or leaves the event
//!   exactly as it was, as `e` → `E` in a JSON exponent does).
#![cfg(all(feature = "sqlite", feature = "postgres"))]

#[macro_use]
mod store_support;

use std::net::IpAddr;

use audit_core::chain::VerifyReport;
use audit_core::query::Filter;
use audit_core::store::postgres::{Options, PostgresStore};
use audit_core::store::sqlite::SqliteStore;
use audit_core::store::verify::{VerifyOptions, verify};
use audit_core::store::{COLUMNS, Store, StoredEvent};
use audit_core::{Actor, AuditEvent, Diff};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};
use std::cell::RefCell;
use store_support::{drop_schema, postgres_url, temp_dir};
use uuid::Uuid;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.-]{0,12}",
        "\\PC{0,8}",
        "[\\x00-\\x1f\u{7f}\u{202e}\u{2028}é☃😀]{0,6}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(|f| Value::from(f.trunc())),
        (-1e3f64..1e3).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn change() -> impl Strategy<Value = Value> {
    prop_oneof![
        (json(), json())
            .prop_map(|(old, new)| serde_json::json!({"old": old, "new": new, "secret": false})),
        json().prop_map(|new| serde_json::json!({"new": new, "secret": false})),
        json().prop_map(|old| serde_json::json!({"old": old, "secret": false})),
        Just(serde_json::json!({"secret": true})),
        text().prop_map(|error| serde_json::json!({"secret": false, "error": error})),
    ]
}

prop_compose! {
    fn event()(
        id in any::<u128>(),
        // 1900 to 2500, in microseconds: what both stores keep.
        micros in -2_208_988_800_000_000i64..16_725_225_600_000_000,
        actor in (text(), text(), text()),
        organization_id in proptest::option::of(text()),
        ip in proptest::option::of(prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]),
        user_agent in proptest::option::of(text()),
        resource in (text(), text(), text(), text(), text()),
        diff in prop::collection::btree_map(text(), change(), 0..4),
        status_code in any::<u16>(),
        additional in prop::collection::btree_map(text(), json(), 0..4),
        request_id in proptest::option::of(any::<u128>()),
    ) -> AuditEvent {
        let diff: Diff = serde_json::from_value(Value::Object(diff.into_iter().collect())).unwrap();
        AuditEvent {
            id: Uuid::from_u128(id),
            time: DateTime::<Utc>::from_timestamp_micros(micros).unwrap(),
            actor: Actor { id: actor.0, username: actor.1, email: actor.2 },
            organization_id,
            ip,
            user_agent,
            resource_type: resource.0,
            resource_id: resource.1,
            resource_target: resource.2,
            resource_icon: resource.3,
            action: resource.4,
            diff,
            status_code,
            additional_fields: additional.into_iter().collect::<Map<_, _>>(),
            request_id: request_id.map(Uuid::from_u128),
        }
    }
}

fn check(store: &mut dyn Store) -> VerifyReport {
    verify(store, &VerifyOptions::default()).unwrap()
}

/// A store's name, a writer and a reader.
type Pair = (String, Box<dyn Store>, Box<dyn Store>);

/// A writer and a reader of one fresh store of each kind.
fn stores(test: &str) -> Vec<Pair> {
    let dir = temp_dir(&format!("chain-props-{test}"));
    let path = dir.join("audit.db");
    let mut all: Vec<Pair> = vec![(
        "sqlite".into(),
        Box::new(SqliteStore::open(&path).unwrap()),
        Box::new(SqliteStore::open_read_only(&path).unwrap()),
    )];
    if let Some(url) = postgres_url() {
        let schema = format!("chain_props_{test}");
        drop_schema(&url, &schema);
        let options = Options {
            schema,
            ..Options::default()
        };
        all.push((
            "postgres".into(),
            Box::new(PostgresStore::connect(&url, options.clone()).unwrap()),
            Box::new(PostgresStore::connect_read_only(&url, options).unwrap()),
        ));
    }
    all
}

#[test]
fn any_event_verifies_when_read_back_from_either_store() {
    let stores = stores("round_trip");
    for (name, writer, reader) in stores {
        let (writer, reader) = (RefCell::new(writer), RefCell::new(reader));
        let mut runner = TestRunner::new(Config {
            cases: 96,
            ..Config::default()
        });
        runner
            .run(&prop::collection::vec(event(), 1..4), |batch| {
                writer.borrow_mut().append(&batch).unwrap();
                let report = check(&mut **reader.borrow_mut());
                prop_assert!(report.is_intact(), "{}: {}\n{:?}", name, report, batch);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// One byte of a stored value changed: a text's, a blob's, or an integer's (as eight
/// little-endian bytes).
fn flip(value: &rusqlite::types::Value, at: usize, mask: u8) -> Option<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    let flip_in = |bytes: &mut Vec<u8>| {
        let at = at % bytes.len().max(1);
        bytes.get_mut(at).map(|b| *b ^= mask)
    };
    match value {
        V::Integer(i) => {
            let mut bytes = i.to_le_bytes().to_vec();
            flip_in(&mut bytes)?;
            Some(V::Integer(i64::from_le_bytes(bytes.try_into().ok()?)))
        }
        V::Text(s) => {
            let mut bytes = s.clone().into_bytes();
            flip_in(&mut bytes)?;
            // Invalid UTF-8 is stored too (as a blob): the row then cannot be read.
            Some(match String::from_utf8(bytes) {
                Ok(s) => V::Text(s),
                Err(e) => V::Blob(e.into_bytes()),
            })
        }
        V::Blob(b) => {
            let mut bytes = b.clone();
            flip_in(&mut bytes)?;
            Some(V::Blob(bytes))
        }
        V::Null | V::Real(_) => None,
    }
}

/// The event at `seq` as the store reads it now.
fn read_at(store: &mut dyn Store, seq: u64) -> Option<StoredEvent> {
    store
        .newer(&Filter::default(), Some(seq - 1), 1)
        .ok()?
        .into_iter()
        .next()
        .filter(|e| e.seq == seq)
}

#[test]
fn any_single_byte_change_to_any_stored_field_is_detected_on_sqlite() {
    let dir = temp_dir("chain-props-bytes");
    let path = dir.join("audit.db");
    let mut writer = SqliteStore::open(&path).unwrap();
    let reader = RefCell::new(SqliteStore::open_read_only(&path).unwrap());
    let mut seed = TestRunner::new(Config::default());
    let events: Vec<AuditEvent> = (0..8)
        .map(|_| event().new_tree(&mut seed).unwrap().current())
        .collect();
    writer.append(&events).unwrap();
    assert!(check(&mut *reader.borrow_mut()).is_intact());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    let cases = (1u64..=8, 0..COLUMNS.len(), any::<usize>(), 1u8..=255);
    let applied = std::cell::Cell::new(0u32);
    runner
        .run(&cases, |(seq, column, at, mask)| {
            let col = COLUMNS[column];
            let original: rusqlite::types::Value = conn
                .query_row(
                    &format!("SELECT {col} FROM audit_logs WHERE seq = ?1"),
                    [seq as i64],
                    |r| r.get(0),
                )
                .unwrap();
            let Some(changed) = flip(&original, at, mask) else {
                return Ok(()); // NULL: no byte to change
            };
            let mut reader = reader.borrow_mut();
            let before = read_at(&mut *reader, seq);
            let set = |v: &rusqlite::types::Value, where_seq: i64| {
                conn.execute(
                    &format!("UPDATE audit_logs SET {col} = ?1 WHERE seq = ?2"),
                    rusqlite::params![v, where_seq],
                )
            };
            if set(&changed, seq as i64).is_err() {
                return Ok(()); // refused by the database (a duplicate position)
            }
            applied.set(applied.get() + 1);
            let report = check(&mut *reader);
            let after = read_at(&mut *reader, seq);
            // Put it back (by the new position if the position itself was changed).
            let now_at = match (col, &changed) {
                ("seq", rusqlite::types::Value::Integer(i)) => *i,
                _ => seq as i64,
            };
            set(&original, now_at).unwrap();
            prop_assert!(
                !report.is_intact() || (after == before && col != "seq"),
                "{col} of #{seq} changed ({original:?} → byte {at} ^ {mask:#x}) and not detected:\n{report}"
            );
            prop_assert!(check(&mut *reader).is_intact());
            Ok(())
        })
        .unwrap();
    // Most changes reach the database (the rest hit a NULL or a duplicate position).
    assert!(
        applied.get() >= 250,
        "only {} changes applied",
        applied.get()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn any_single_byte_change_to_any_stored_field_is_detected_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let schema = "chain_props_bytes";
    drop_schema(&url, schema);
    let options = Options {
        schema: schema.into(),
        ..Options::default()
    };
    let mut writer = PostgresStore::connect(&url, options.clone()).unwrap();
    let reader = RefCell::new(PostgresStore::connect_read_only(&url, options).unwrap());
    let mut seed = TestRunner::new(Config::default());
    let events: Vec<AuditEvent> = (0..8)
        .map(|_| event().new_tree(&mut seed).unwrap().current())
        .collect();
    writer.append(&events).unwrap();
    assert!(check(&mut *reader.borrow_mut()).is_intact());
    let admin = RefCell::new(store_support::admin(&url));
    let mut admin_setup = admin.borrow_mut();
    admin_setup
        .batch_execute(&format!("SET search_path TO {schema}"))
        .unwrap();
    // Each column as text, changed, and cast back to its type (which the database may
    // refuse, as it refuses anything but valid UTF-8, JSON, addresses, …).
    let types: Vec<String> = COLUMNS
        .iter()
        .map(|c| {
            admin_setup
                .query_one(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                     WHERE attrelid = 'audit_logs'::regclass AND attname = $1",
                    &[c],
                )
                .unwrap()
                .get(0)
        })
        .collect();
    drop(admin_setup);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    // The byte is replaced by a printable ASCII one, so the text stays UTF-8 more often.
    let cases = (1i64..=8, 0..COLUMNS.len(), any::<usize>(), 0x20u8..0x7f);
    let applied = std::cell::Cell::new(0u32);
    runner
        .run(&cases, |(seq, column, at, replacement)| {
            let (col, ty) = (COLUMNS[column], &types[column]);
            let mut admin = admin.borrow_mut();
            let mut reader = reader.borrow_mut();
            let original: Option<String> = admin
                .query_one(
                    &format!("SELECT {col}::text FROM audit_logs WHERE seq = $1"),
                    &[&seq],
                )
                .unwrap()
                .get(0);
            let Some(original) = original else {
                return Ok(());
            };
            let mut bytes = original.clone().into_bytes();
            if bytes.is_empty() {
                return Ok(());
            }
            let i = at % bytes.len();
            if bytes[i] == replacement {
                return Ok(());
            }
            bytes[i] = replacement;
            let Ok(changed) = String::from_utf8(bytes) else {
                return Ok(());
            };
            let before = read_at(&mut *reader, seq as u64);
            // Positions are not unique to Postgres: the row is put back by its tuple id.
            let change = format!(
                "UPDATE audit_logs SET {col} = $1::text::{ty} WHERE seq = $2 RETURNING ctid::text"
            );
            let Ok(row) = admin.query_one(&change, &[&changed, &seq]) else {
                return Ok(());
            };
            let tuple: String = row.get(0);
            applied.set(applied.get() + 1);
            let report = check(&mut *reader);
            let after = read_at(&mut *reader, seq as u64);
            admin
                .execute(
                    &format!(
                        "UPDATE audit_logs SET {col} = $1::text::{ty} WHERE ctid = $2::text::tid"
                    ),
                    &[&original, &tuple],
                )
                .unwrap();
            prop_assert!(
                !report.is_intact() || (after == before && col != "seq"),
                "{col} of #{seq} changed ({original:?} → {changed:?}) and not detected:\n{report}"
            );
            prop_assert!(check(&mut *reader).is_intact());
            Ok(())
        })
        .unwrap();
    // Many changes reach the database; the rest are refused by it (invalid UTF-8, JSON,
    // addresses, times), as they would be for anyone.
    assert!(
        applied.get() >= 40,
        "only {} changes applied",
        applied.get()
    );
    drop_schema(&url, schema);
}
