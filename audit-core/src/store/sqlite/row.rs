//! One event as an SQLite row: how each [`Field`] is bound, and [`StoredEvent`] read back
//! from a row (`TryFrom<&Row>`), both in the one column order of [`Col`].

use chrono::DateTime;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{CachedStatement, Row, ToSql, params_from_iter};
use uuid::Uuid;

use crate::store::columns::{self, Col, Field};
use crate::store::log::Entry;
use crate::store::{ChainRow, StoreError, StoredEvent};
use crate::{Actor, AuditEvent};

/// Inserts one numbered event with `insert`, whose placeholders follow [`Col::ALL`]; returns
/// whether a row was inserted (an insert with a conflict clause may skip it).
pub(super) fn insert(
    insert: &mut CachedStatement<'_>,
    entry: &Entry<'_>,
) -> Result<bool, StoreError> {
    Ok(insert.execute(params_from_iter(Field::row(entry)))? == 1)
}

/// Times as microseconds since the epoch, event and request ids as their 16 bytes, addresses
/// as text, diffs and additional fields as JSON text.
impl ToSql for Field<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let text = |s: &str| ToSqlOutput::Owned(Value::Text(s.to_owned()));
        let json = |encoded: serde_json::Result<String>| {
            encoded
                .map(|s| ToSqlOutput::Owned(Value::Text(s)))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        Ok(match *self {
            Field::Seq(seq) => ToSqlOutput::from(seq),
            Field::Hash(hash) => ToSqlOutput::Borrowed(ValueRef::Blob(hash)),
            Field::Id(ref id) => ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes())),
            Field::Time(time) => ToSqlOutput::from(time.timestamp_micros()),
            Field::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Field::MaybeText(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Field::MaybeText(None) | Field::Ip(None) | Field::RequestId(None) => {
                ToSqlOutput::Owned(Value::Null)
            }
            Field::Ip(Some(ip)) => text(&ip.to_string()),
            Field::RequestId(Some(ref id)) => ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes())),
            Field::Diff(diff) => json(serde_json::to_string(diff))?,
            Field::Fields(fields) => json(serde_json::to_string(fields))?,
            Field::Status(status) => ToSqlOutput::from(status),
        })
    }
}

/// Reads one row for `query_map`: a driver error, or the event (a row that cannot be
/// decoded is an error, never silently skipped).
pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Result<StoredEvent, StoreError>> {
    Ok(StoredEvent::try_from(row))
}

impl TryFrom<&Row<'_>> for StoredEvent {
    type Error = StoreError;

    fn try_from(row: &Row<'_>) -> Result<Self, StoreError> {
        let (seq, event) = read_event(row)?;
        let hash: Vec<u8> = get(row, Col::hash)?;
        Ok(StoredEvent {
            seq,
            hash: crate::store::chain::event_hash(&hash, &event, seq)?,
            event,
        })
    }
}

/// A row's position and event, without its chain hash.
pub(super) fn read_event(row: &Row<'_>) -> Result<(u64, AuditEvent), StoreError> {
    let text = |col: Col| get::<String>(row, col);
    let id: Vec<u8> = get(row, Col::id)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("{what} of event {id:02x?}"));
    let seq: i64 = get(row, Col::seq)?;
    let time: i64 = get(row, Col::time)?;
    let ip: Option<String> = get(row, Col::ip)?;
    let status: i64 = get(row, Col::status_code)?;
    let request_id: Option<Vec<u8>> = get(row, Col::request_id)?;
    let event = AuditEvent {
        id: Uuid::from_slice(&id).map_err(|_| corrupt("id"))?,
        time: DateTime::from_timestamp_micros(time).ok_or_else(|| corrupt("time"))?,
        actor: Actor {
            id: text(Col::actor_id)?,
            username: text(Col::username)?,
            email: text(Col::email)?,
        },
        organization_id: get(row, Col::organization_id)?,
        ip: ip
            .map(|ip| ip.parse())
            .transpose()
            .map_err(|_| corrupt("ip"))?,
        user_agent: get(row, Col::user_agent)?,
        resource_type: text(Col::resource_type)?,
        resource_id: text(Col::resource_id)?,
        resource_target: text(Col::resource_target)?,
        resource_icon: text(Col::resource_icon)?,
        action: text(Col::action)?,
        diff: serde_json::from_str(&text(Col::diff)?).map_err(|_| corrupt("diff"))?,
        status_code: u16::try_from(status).map_err(|_| corrupt("status code"))?,
        additional_fields: serde_json::from_str(&text(Col::additional_fields)?)
            .map_err(|_| corrupt("additional fields"))?,
        request_id: request_id
            .map(|r| Uuid::from_slice(&r))
            .transpose()
            .map_err(|_| corrupt("request id"))?,
    };
    Ok((columns::seq_value(seq)?, event))
}

/// A row as verification reads it: the event, or what can be read of a row that is not one.
pub(super) fn read_chain_row(row: &Row<'_>) -> ChainRow {
    match StoredEvent::try_from(row) {
        Ok(event) => ChainRow::Event(Box::new(event)),
        Err(e) => ChainRow::Unreadable {
            seq: get::<i64>(row, Col::seq)
                .ok()
                .and_then(|s| u64::try_from(s).ok()),
            id: get::<Vec<u8>>(row, Col::id)
                .ok()
                .and_then(|id| Uuid::from_slice(&id).ok()),
            hash: get::<Vec<u8>>(row, Col::hash)
                .ok()
                .and_then(|h| columns::hash_value(&h).ok()),
            reason: e.to_string(),
        },
    }
}

/// A column's value; one of the wrong type is corruption.
fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, col: Col) -> Result<T, StoreError> {
    row.get(col.at())
        .map_err(|e| StoreError::Corrupt(format!("column {col:?}: {e}")))
}
