//! The Postgres steps of a purge (see [`purge`](crate::store::purge)): rows by position,
//! or, with monthly partitions, a whole partition at once when its rows are exactly the next
//! positions to purge, so the retained log stays contiguous after every step. Every step
//! survives a lost connection.

use chrono::{DateTime, Utc};

use super::{PostgresStore, head_of, schema};
use crate::store::columns::{self, COLUMN_LIST, HEAD_COLUMNS};
use crate::store::log::Head;
use crate::store::purge::missing_anchor;
use crate::store::purge::{PurgeSteps, Stretch};
use crate::store::{StoreError, StoredEvent};

impl PurgeSteps for PostgresStore {
    fn purge_target(&mut self, cutoff: DateTime<Utc>) -> Result<(Head, u64), StoreError> {
        self.retrying(|s| {
            let row = s.conn.client().query_one(
                &format!(
                    "SELECT {HEAD_COLUMNS}, \
                            (SELECT seq FROM audit_logs WHERE time >= $1 ORDER BY seq LIMIT 1) \
                     FROM audit_log_head WHERE id = 1"
                ),
                &[&cutoff],
            )?;
            let head = head_of(&row)?;
            let target = match row.get::<_, Option<i64>>(4) {
                Some(first_kept) => columns::seq_value(first_kept)?.saturating_sub(1),
                None => head.seq,
            };
            Ok((head, target))
        })
    }

    fn purged_through(&mut self) -> Result<u64, StoreError> {
        self.retrying(|s| s.head_row()).map(|h| h.purged_through)
    }

    fn events_between(&mut self, after: u64, through: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {} FROM audit_logs WHERE seq > $1 AND seq <= $2 ORDER BY seq",
            *COLUMN_LIST
        );
        self.retrying(|s| {
            let statement = s.conn.prepare(&sql)?;
            let rows = s.conn.client().query(
                &statement,
                &[&columns::seq_param(after), &columns::seq_param(through)],
            )?;
            rows.iter().map(StoredEvent::try_from).collect()
        })
    }

    fn delete_through(&mut self, from: u64, through: u64) -> Result<Option<u64>, StoreError> {
        let (from, through) = (columns::seq_param(from), columns::seq_param(through));
        self.retrying(|s| {
            let mut tx = s.conn.client().transaction()?;
            // The anchor: the hash of the last event purged, which the first one kept links to.
            let anchor: Vec<u8> = tx
                .query_opt("SELECT hash FROM audit_logs WHERE seq = $1", &[&through])?
                .ok_or_else(|| missing_anchor(through as u64))?
                .get(0);
            let deleted = tx.execute(
                "DELETE FROM audit_logs WHERE seq > $1 AND seq <= $2",
                &[&from, &through],
            )?;
            // The head row is locked only from here to the commit: appenders wait briefly.
            let moved = tx.execute(
                "UPDATE audit_log_head SET purged_through = $1, purged_hash = $3 \
                 WHERE id = 1 AND purged_through = $2",
                &[&through, &from, &anchor],
            )?;
            if moved == 0 {
                return Ok(None);
            }
            tx.commit()?;
            Ok(Some(deleted))
        })
    }

    /// The partition holding position `from + 1`, if its rows are exactly the positions
    /// `from + 1 ..= last` with `last <= target`, and its month ended by `cutoff`.
    fn whole_stretch(
        &mut self,
        from: u64,
        target: u64,
        cutoff: DateTime<Utc>,
    ) -> Result<Option<Stretch>, StoreError> {
        if !self.partitioned {
            return Ok(None);
        }
        let next = from + 1;
        self.retrying(|s| {
            let Some(row) = s.conn.client().query_opt(
                "SELECT tableoid::regclass::text FROM audit_logs WHERE seq = $1",
                &[&columns::seq_param(next)],
            )?
            else {
                return Ok(None);
            };
            let Some(month) = schema::parse_partition_name(row.get(0)) else {
                return Ok(None);
            };
            if schema::month_end(month).is_none_or(|end| end > cutoff) {
                return Ok(None);
            }
            let name = schema::partition_name(month);
            let row = s.conn.client().query_one(
                &format!("SELECT MIN(seq), MAX(seq), COUNT(*) FROM {name}"),
                &[],
            )?;
            let (first, last, rows): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let (first, last) = (columns::seq_value(first)?, columns::seq_value(last)?);
            let contiguous = first == next && last <= target && rows as u64 == last - first + 1;
            Ok(contiguous.then_some(Stretch {
                name,
                last,
                rows: rows as u64,
            }))
        })
    }

    fn drop_stretch(&mut self, stretch: &Stretch, from: u64) -> Result<bool, StoreError> {
        let (last, from) = (columns::seq_param(stretch.last), columns::seq_param(from));
        let dropped = self.retrying(|s| {
            let mut tx = s.conn.client().transaction()?;
            // The head row first: an appender holds it before it touches the log table, so
            // taking them in the same order cannot deadlock.
            let moved = tx.execute(
                "UPDATE audit_log_head SET purged_through = $1 WHERE id = 1 AND purged_through = $2",
                &[&last, &from],
            )?;
            if moved == 0 {
                return Ok(false);
            }
            // The anchor: the hash of the partition's last event.
            let anchor: Vec<u8> = tx
                .query_opt("SELECT hash FROM audit_logs WHERE seq = $1", &[&last])?
                .ok_or_else(|| missing_anchor(last as u64))?
                .get(0);
            tx.execute(
                "UPDATE audit_log_head SET purged_hash = $1 WHERE id = 1",
                &[&anchor],
            )?;
            tx.batch_execute(&format!("DROP TABLE {}", stretch.name))?;
            tx.commit()?;
            Ok(true)
        })?;
        if dropped && let Some(month) = schema::parse_partition_name(&stretch.name) {
            self.partitions.remove(&month);
        }
        Ok(dropped)
    }
}
