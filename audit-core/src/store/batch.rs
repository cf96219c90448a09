//! One bad event must not fail its batch: when a batch fails for a reason tied to the values
//! of its events ([`StoreError::is_event_error`]), it is split in halves and each half is
//! appended on its own, down to single events, so that every good event is stored and each
//! bad one is reported with its own error ([`StoreError::Rejected`]).
//!
//! Any other error (a lost connection, a full disk) is returned as it is: the batch may be
//! retried whole, since appends are idempotent by event id.

use super::StoreError;
use crate::AuditEvent;

/// Appends `events` with `append` (one transaction per call), isolating the events at fault.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn append_isolating(
    events: &[AuditEvent],
    append: &mut dyn FnMut(&[AuditEvent]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    match append(events) {
        Ok(()) => Ok(()),
        Err(e) if e.is_event_error() => {
            let mut rejected = Vec::new();
            split(events, e, append, &mut rejected)?;
            Err(StoreError::Rejected {
                stored: events.len() - rejected.len(),
                rejected,
            })
        }
        Err(e) => Err(e),
    }
}

/// `events` failed with `error`, an event error: stores what it can of them.
fn split(
    events: &[AuditEvent],
    error: StoreError,
    append: &mut dyn FnMut(&[AuditEvent]) -> Result<(), StoreError>,
    rejected: &mut Vec<(uuid::Uuid, StoreError)>,
) -> Result<(), StoreError> {
    if let [event] = events {
        rejected.push((event.id, error));
        return Ok(());
    }
    let (left, right) = events.split_at(events.len() / 2);
    for half in [left, right] {
        match append(half) {
            Ok(()) => {}
            Err(e) if e.is_event_error() => split(half, e, append, rejected)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn events(n: u128) -> Vec<AuditEvent> {
        (0..n)
            .map(|i| {
                let mut e = AuditEvent::builder("login").build();
                e.id = Uuid::from_u128(i);
                e
            })
            .collect()
    }

    /// A store that refuses the events whose id is in `bad`, all or nothing per call.
    fn refusing(
        bad: &[u128],
        stored: &mut Vec<u128>,
        calls: &mut usize,
    ) -> impl FnMut(&[AuditEvent]) -> Result<(), StoreError> {
        move |batch: &[AuditEvent]| {
            *calls += 1;
            if batch.iter().any(|e| bad.contains(&e.id.as_u128())) {
                return Err(constraint_violation());
            }
            stored.extend(batch.iter().map(|e| e.id.as_u128()));
            Ok(())
        }
    }

    /// What SQLite says when a constraint refuses a row.
    fn constraint_violation() -> StoreError {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some("CHECK constraint failed".into()),
        )
        .into()
    }

    #[test]
    fn good_events_are_stored_and_bad_ones_reported() {
        let batch = events(100);
        let (mut stored, mut calls) = (Vec::new(), 0);
        let err = append_isolating(&batch, &mut refusing(&[3, 64, 65], &mut stored, &mut calls))
            .unwrap_err();
        let StoreError::Rejected {
            stored: n,
            rejected,
        } = err
        else {
            panic!("not a rejection: {err}");
        };
        let ids: Vec<u128> = rejected.iter().map(|(id, _)| id.as_u128()).collect();
        assert_eq!(ids, [3, 64, 65]);
        assert_eq!(n, 97);
        let want: Vec<u128> = (0..100).filter(|i| ![3, 64, 65].contains(i)).collect();
        assert_eq!(stored, want, "stored once each, in batch order");
        assert!(
            calls < 40,
            "a few bad events cost a few splits, not one call per event: {calls}"
        );
    }

    #[test]
    fn other_errors_are_returned_unsplit() {
        let batch = events(10);
        let mut calls = 0;
        let err = append_isolating(&batch, &mut |_| {
            calls += 1;
            Err(StoreError::InvalidRequest("read-only".into()))
        })
        .unwrap_err();
        assert!(matches!(err, StoreError::InvalidRequest(_)));
        assert_eq!(calls, 1);
    }
}
