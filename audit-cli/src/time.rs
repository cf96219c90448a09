//! Typed values of the time flags: `--older-than` (an age or a date) and `--interval`.
//!
//! Ages and intervals are parsed by `humantime` (`365d`, `12w`, `48h`, `30m`, `500ms`,
//! `1h 30m`, …); dates by `chrono` (`YYYY-MM-DD`, midnight UTC, or an RFC 3339 instant).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

/// Why a time flag's value was refused.
#[derive(Debug)]
pub(crate) enum TimeError {
    /// Neither a date nor a duration.
    Invalid {
        value: String,
        source: humantime::DurationError,
    },
    /// An age that reaches before the earliest time this program can represent.
    TooFarBack(String),
    /// A zero interval.
    ZeroInterval,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Invalid { value, source } => write!(
                f,
                "`{}` is no age or date ({source}): use a number with a unit (ms, s, m, h, d, w), \
                 e.g. 365d, or a date YYYY-MM-DD",
                audit_core::format::terminal_safe(value)
            ),
            TimeError::TooFarBack(value) => write!(
                f,
                "`{}` reaches before the earliest representable time",
                audit_core::format::terminal_safe(value)
            ),
            TimeError::ZeroInterval => f.write_str("the interval must be positive, e.g. 1s"),
        }
    }
}

impl std::error::Error for TimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TimeError::Invalid { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `--older-than`: the instant `spec` names, as of now.
pub(crate) fn parse_cutoff(spec: &str) -> Result<DateTime<Utc>, TimeError> {
    cutoff(spec, Utc::now())
}

/// The instant `spec` names, relative to `now`: an age such as `365d`, or a date
/// (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 instant.
fn cutoff(spec: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    let spec = spec.trim();
    if let Ok(date) = NaiveDate::parse_from_str(spec, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(spec) {
        return Ok(instant.with_timezone(&Utc));
    }
    let age = age(spec)?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| TimeError::TooFarBack(spec.to_owned()))
}

fn age(spec: &str) -> Result<Duration, TimeError> {
    humantime::parse_duration(spec).map_err(|source| TimeError::Invalid {
        value: spec.to_owned(),
        source,
    })
}

/// `--interval`: a positive duration, e.g. `1s` or `500ms`.
pub(crate) fn parse_interval(spec: &str) -> Result<Duration, TimeError> {
    match age(spec.trim())? {
        d if d.is_zero() => Err(TimeError::ZeroInterval),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ages_and_dates() {
        let now = Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap();
        let days = |n| now - chrono::Duration::days(n);
        assert_eq!(cutoff("365d", now).unwrap(), days(365));
        assert_eq!(cutoff("2w", now).unwrap(), days(14));
        assert_eq!(cutoff("48h", now).unwrap(), days(2));
        assert_eq!(
            cutoff("2024-01-01", now).unwrap(),
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            cutoff("2024-01-01T10:00:00+02:00", now).unwrap(),
            Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap()
        );
        for bad in [
            "",
            "d",
            "ten days",
            "-5d",
            "5 parsecs",
            "2024-13-01",
            "99999999999999999999d",
        ] {
            assert!(cutoff(bad, now).is_err(), "{bad}");
        }
        let err = cutoff("ten days", now).unwrap_err();
        assert!(err.to_string().contains("365d"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        assert!(matches!(
            cutoff("100000000000d", now),
            Err(TimeError::TooFarBack(_))
        ));
    }

    #[test]
    fn intervals_are_positive_durations() {
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("1s").unwrap(), Duration::from_secs(1));
        assert!(matches!(parse_interval("0s"), Err(TimeError::ZeroInterval)));
        assert!(parse_interval("soon").is_err());
    }
}
