//! The stored columns, declared once: their names and order ([`COLUMNS`]), their positions
//! ([`Col`]), and an event's value for each ([`Field`]), which every insert, select, row
//! reader and the benchmarks use.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use super::log::{Entry, Head};
use crate::chain::ChainHash;

/// Declares the stored columns once: their names in order ([`COLUMNS`]) and their positions
/// ([`Col`]), which inserts, selects and row readers all use.
macro_rules! columns {
    ($($name:ident),* $(,)?) => {
        /// The columns of the `audit_logs` table, in the order the stores insert, select and
        /// read them: for tools that query the table directly.
        pub const COLUMNS: &[&str] = &[$(stringify!($name)),*];

        /// A column's position in [`COLUMNS`].
        #[allow(non_camel_case_types, dead_code)]
        #[derive(Clone, Copy, Debug)]
        pub(crate) enum Col {
            $($name),*
        }

        impl Col {
            /// Every column, in [`COLUMNS`] order.
            pub(crate) const ALL: &[Col] = &[$(Col::$name),*];
        }
    };
}

columns!(
    seq,
    hash,
    id,
    time,
    actor_id,
    username,
    email,
    organization_id,
    ip,
    user_agent,
    resource_type,
    resource_id,
    resource_target,
    resource_icon,
    action,
    diff,
    status_code,
    additional_fields,
    request_id,
);

impl Col {
    pub(crate) const fn at(self) -> usize {
        self as usize
    }
}

/// One column's value of an event to insert, before the driver's encoding (see each store's
/// `ToSql` for `Field`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field<'a> {
    Seq(i64),
    Hash(&'a [u8; 32]),
    Id(Uuid),
    Time(DateTime<Utc>),
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Ip(Option<std::net::IpAddr>),
    Diff(&'a crate::Diff),
    Fields(&'a serde_json::Map<String, serde_json::Value>),
    Status(i32),
    RequestId(Option<Uuid>),
}

impl<'a> Field<'a> {
    /// The value of `col` for a numbered event.
    pub(crate) fn of(entry: &'a Entry<'_>, col: Col) -> Self {
        let e: &'a crate::AuditEvent = &entry.event;
        match col {
            Col::seq => Field::Seq(seq_param(entry.seq)),
            Col::hash => Field::Hash(entry.hash.as_bytes()),
            Col::id => Field::Id(e.id),
            Col::time => Field::Time(e.time),
            Col::actor_id => Field::Text(&e.actor.id),
            Col::username => Field::Text(&e.actor.username),
            Col::email => Field::Text(&e.actor.email),
            Col::organization_id => Field::MaybeText(e.organization_id.as_deref()),
            Col::ip => Field::Ip(e.ip),
            Col::user_agent => Field::MaybeText(e.user_agent.as_deref()),
            Col::resource_type => Field::Text(&e.resource_type),
            Col::resource_id => Field::Text(&e.resource_id),
            Col::resource_target => Field::Text(&e.resource_target),
            Col::resource_icon => Field::Text(&e.resource_icon),
            Col::action => Field::Text(&e.action),
            Col::diff => Field::Diff(&e.diff),
            Col::status_code => Field::Status(i32::from(e.status_code)),
            Col::additional_fields => Field::Fields(&e.additional_fields),
            Col::request_id => Field::RequestId(e.request_id),
        }
    }

    /// Every column's value, in [`COLUMNS`] order.
    pub(crate) fn row(entry: &'a Entry<'_>) -> impl ExactSizeIterator<Item = Self> + 'a {
        Col::ALL.iter().map(move |col| Field::of(entry, *col))
    }
}

/// `seq, id, time, …`: the column list for SQL text.
pub(crate) static COLUMN_LIST: LazyLock<String> = LazyLock::new(|| COLUMNS.join(", "));

/// A log position as a database integer.
pub(crate) fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A database integer as a log position; a negative one is corruption.
pub(crate) fn seq_value(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("log position {seq}")))
}

/// A stored chain hash; one that is not 32 bytes is corruption.
pub(crate) fn hash_value(bytes: &[u8]) -> Result<ChainHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(ChainHash::from_bytes)
        .map_err(|_| {
            StoreError::Corrupt(format!(
                "a chain hash of {} bytes (a chain hash has 32)",
                bytes.len()
            ))
        })
}

/// The head row's columns (`seq, hash, purged_through, purged_hash`, the order of
/// [`HEAD_COLUMNS`]) as a [`Head`].
pub(crate) fn head(
    seq: i64,
    hash: &[u8],
    purged_through: i64,
    purged_hash: &[u8],
) -> Result<Head, StoreError> {
    Ok(Head {
        seq: seq_value(seq)?,
        hash: hash_value(hash)?,
        purged_through: seq_value(purged_through)?,
        purged_hash: hash_value(purged_hash)?,
    })
}

/// The head row's columns, in the order [`head`] takes them.
pub(crate) const HEAD_COLUMNS: &str = "seq, hash, purged_through, purged_hash";
