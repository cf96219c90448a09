//! Reading the log a page at a time: [`PageRequest`], [`Page`], the keyset [`Cursor`], and
//! capped counts ([`Count`]).

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreError, StoredEvent};
use crate::AuditEvent;

/// The most events one page may hold.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Events per page, 1 to [`MAX_PAGE_SIZE`].
    pub limit: usize,
    /// Where the previous page ended; `None` for the first page.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The first page, `limit` events long.
    pub fn first(limit: usize) -> Self {
        PageRequest {
            limit,
            cursor: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: usize, cursor: Cursor) -> Self {
        PageRequest {
            limit,
            cursor: Some(cursor),
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn checked_limit(&self) -> Result<usize, StoreError> {
        if (1..=MAX_PAGE_SIZE).contains(&self.limit) {
            Ok(self.limit)
        } else {
            Err(StoreError::InvalidRequest(format!(
                "page size {} is out of range: use 1 to {MAX_PAGE_SIZE}",
                self.limit
            )))
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts, or `None` if this is the last page.
    pub next: Option<Cursor>,
}

/// Where a page ends: the `(time, id)` of its last event. Opaque text in URLs and CLIs.
///
/// Pages are ordered by time, as a person browses; followers use the log position
/// ([`StoredEvent::seq`]) instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    time_micros: i64,
    id: Uuid,
}

impl Cursor {
    /// The position of `event`.
    pub fn of(event: &AuditEvent) -> Self {
        Cursor {
            time_micros: event.time.timestamp_micros(),
            id: event.id,
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.time_micros).unwrap_or_default()
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.time_micros, self.id.simple())
    }
}

impl std::str::FromStr for Cursor {
    type Err = StoreError;

    /// ```
    /// use audit_core::store::Cursor;
    /// let err = "nonsense".parse::<Cursor>().unwrap_err();
    /// assert!(err.to_string().contains("invalid cursor"));
    /// ```
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let invalid = || {
            StoreError::InvalidRequest(format!(
                "invalid cursor `{}`: pass the `next` cursor of a previous page unchanged",
                s.chars().take(80).collect::<String>()
            ))
        };
        let (time, id) = s.split_once('.').ok_or_else(invalid)?;
        let time_micros = i64::from_str_radix(time, 16).map_err(|_| invalid())?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        DateTime::from_timestamp_micros(time_micros).ok_or_else(invalid)?;
        Ok(Cursor { time_micros, id })
    }
}

/// A count that stops at a cap, so counting never costs more than reading `cap` index rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The exact number.
    Exact(u64),
    /// At least this many (the cap was reached).
    AtLeast(u64),
}

impl fmt::Display for Count {
    /// `1,234` or `10,000+`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, plus) = match self {
            Count::Exact(n) => (*n, ""),
            Count::AtLeast(n) => (*n, "+"),
        };
        let digits = n.to_string();
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "{grouped}{plus}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_as_text() {
        let cursor = Cursor {
            time_micros: 1_700_000_000_123_456,
            id: Uuid::from_u128(42),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        for bad in [
            "",
            ".",
            "zz.00000000000000000000000000000001",
            "1.not-a-uuid",
            "7fffffffffffffff.00000000000000000000000000000001",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_render_with_separators_and_a_plus_when_capped() {
        assert_eq!(Count::Exact(0).to_string(), "0");
        assert_eq!(Count::Exact(1234).to_string(), "1,234");
        assert_eq!(Count::AtLeast(10_000).to_string(), "10,000+");
        assert_eq!(Count::Exact(1_000_000).to_string(), "1,000,000");
    }

    #[test]
    fn page_sizes_are_checked() {
        assert!(PageRequest::first(0).checked_limit().is_err());
        assert!(
            PageRequest::first(MAX_PAGE_SIZE + 1)
                .checked_limit()
                .is_err()
        );
        assert_eq!(PageRequest::first(50).checked_limit().unwrap(), 50);
    }
}
