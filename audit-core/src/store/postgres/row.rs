//! One event as a Postgres row: how each [`Field`] is encoded for a binary `COPY`, and
//! [`StoredEvent`] read back from a row (`TryFrom<&Row>`), both in the one column order of
//! [`Col`].

use bytes::BytesMut;
use postgres::Row;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, Json, ToSql, Type};

use crate::store::columns::{self, Col, Field};
use crate::store::log::Entry;
use crate::store::{ChainRow, StoreError, StoredEvent};
use crate::{Actor, AuditEvent};

/// The Postgres type of a column.
fn column_type(col: Col) -> Type {
    match col {
        Col::seq => Type::INT8,
        Col::hash => Type::BYTEA,
        Col::id | Col::request_id => Type::UUID,
        Col::time => Type::TIMESTAMPTZ,
        Col::ip => Type::INET,
        Col::diff | Col::additional_fields => Type::JSONB,
        Col::status_code => Type::INT4,
        Col::actor_id
        | Col::username
        | Col::email
        | Col::organization_id
        | Col::user_agent
        | Col::resource_type
        | Col::resource_id
        | Col::resource_target
        | Col::resource_icon
        | Col::action => Type::TEXT,
    }
}

/// The column types of a binary `COPY`, in [`Col::ALL`] order.
pub(super) fn column_types() -> Vec<Type> {
    Col::ALL.iter().map(|c| column_type(*c)).collect()
}

/// Writes one numbered event to a binary `COPY`.
pub(super) fn copy(
    writer: &mut BinaryCopyInWriter<'_>,
    entry: &Entry<'_>,
) -> Result<(), StoreError> {
    let fields: Vec<Field<'_>> = Field::row(entry).collect();
    let values: Vec<&(dyn ToSql + Sync)> = fields.iter().map(|f| f as _).collect();
    writer.write(&values)?;
    Ok(())
}

/// Each field as its own type encodes itself; diffs and additional fields as `jsonb`.
impl ToSql for Field<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        self.to_sql_checked(ty, out)
    }

    /// Any type: each value checks its own in [`ToSql::to_sql_checked`].
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        match self {
            Field::Seq(seq) => seq.to_sql_checked(ty, out),
            Field::Hash(hash) => hash.as_slice().to_sql_checked(ty, out),
            Field::Id(id) => id.to_sql_checked(ty, out),
            Field::Time(time) => time.to_sql_checked(ty, out),
            Field::Text(s) => s.to_sql_checked(ty, out),
            Field::MaybeText(s) => s.to_sql_checked(ty, out),
            Field::Ip(ip) => ip.to_sql_checked(ty, out),
            Field::Diff(diff) => Json(diff).to_sql_checked(ty, out),
            Field::Fields(fields) => Json(fields).to_sql_checked(ty, out),
            Field::Status(status) => status.to_sql_checked(ty, out),
            Field::RequestId(id) => id.to_sql_checked(ty, out),
        }
    }
}

type BoxedError = Box<dyn std::error::Error + Sync + Send>;

impl TryFrom<&Row> for StoredEvent {
    type Error = StoreError;

    /// A row that cannot be decoded is an error, never silently skipped.
    fn try_from(row: &Row) -> Result<Self, StoreError> {
        let (seq, event) = read_event(row)?;
        let hash: &[u8] = get(row, Col::hash)?;
        Ok(StoredEvent {
            seq,
            hash: crate::store::chain::event_hash(hash, &event, seq)?,
            event,
        })
    }
}

/// A row's position and event, without its chain hash.
pub(super) fn read_event(row: &Row) -> Result<(u64, AuditEvent), StoreError> {
    let diff: serde_json::Value = get(row, Col::diff)?;
    let additional: serde_json::Value = get(row, Col::additional_fields)?;
    let status: i32 = get(row, Col::status_code)?;
    let seq: i64 = get(row, Col::seq)?;
    let event = AuditEvent {
        id: get(row, Col::id)?,
        time: get(row, Col::time)?,
        actor: Actor {
            id: get(row, Col::actor_id)?,
            username: get(row, Col::username)?,
            email: get(row, Col::email)?,
        },
        organization_id: get(row, Col::organization_id)?,
        ip: get(row, Col::ip)?,
        user_agent: get(row, Col::user_agent)?,
        resource_type: get(row, Col::resource_type)?,
        resource_id: get(row, Col::resource_id)?,
        resource_target: get(row, Col::resource_target)?,
        resource_icon: get(row, Col::resource_icon)?,
        action: get(row, Col::action)?,
        diff: serde_json::from_value(diff)
            .map_err(|e| StoreError::Corrupt(format!("diff: {e}")))?,
        status_code: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("status code {status}")))?,
        additional_fields: match additional {
            serde_json::Value::Object(map) => map,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "additional fields are not an object: {other}"
                )));
            }
        },
        request_id: get(row, Col::request_id)?,
    };
    Ok((columns::seq_value(seq)?, event))
}

/// A row as verification reads it: the event, or what can be read of a row that is not one.
pub(super) fn read_chain_row(row: &Row) -> ChainRow {
    match StoredEvent::try_from(row) {
        Ok(event) => ChainRow::Event(Box::new(event)),
        Err(e) => ChainRow::Unreadable {
            seq: get::<i64>(row, Col::seq)
                .ok()
                .and_then(|s| u64::try_from(s).ok()),
            id: get(row, Col::id).ok(),
            hash: get::<&[u8]>(row, Col::hash)
                .ok()
                .and_then(|h| columns::hash_value(h).ok()),
            reason: e.to_string(),
        },
    }
}

/// A column's value; one of the wrong type is corruption.
fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, col: Col) -> Result<T, StoreError> {
    row.try_get(col.at())
        .map_err(|e| StoreError::Corrupt(format!("column {col:?}: {e}")))
}
