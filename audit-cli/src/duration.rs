//! Parses `--older-than` ages (`365d`, `12w`, `48h`, `30m`) or dates, and poll intervals.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

/// The instant `spec` names, relative to `now`: an age such as `365d`, or a date
/// (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 instant.
pub fn cutoff(spec: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let spec = spec.trim();
    if let Ok(date) = NaiveDate::parse_from_str(spec, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("invalid date `{spec}`"));
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(spec) {
        return Ok(instant.with_timezone(&Utc));
    }
    let age = age(spec)?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| format!("`{spec}` reaches before the earliest representable time"))
}

/// A duration such as `365d`, `12w`, `48h`, `30m`, `45s` or `500ms`.
pub fn age(spec: &str) -> Result<Duration, String> {
    let err = || {
        format!(
            "invalid age `{spec}`: use a number with a unit (ms, s, m, h, d, w), e.g. 365d, or a date YYYY-MM-DD"
        )
    };
    let split = spec.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (number, unit) = spec.split_at(split);
    let n: u64 = number.parse().map_err(|_| err())?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(err()),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(err)
}

/// A poll interval: a positive age.
pub fn interval(spec: &str) -> Result<Duration, String> {
    match age(spec)? {
        d if d.is_zero() => Err("the interval must be positive, e.g. 1s".into()),
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
        assert_eq!(
            cutoff("365d", now).unwrap(),
            now - chrono::Duration::days(365)
        );
        assert_eq!(cutoff("2w", now).unwrap(), now - chrono::Duration::weeks(2));
        assert_eq!(
            cutoff("2024-01-01", now).unwrap(),
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            cutoff("2024-01-01T10:00:00+02:00", now).unwrap(),
            Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap()
        );
        for bad in ["", "d", "10y", "-5d", "1.5d", "99999999999999999999d"] {
            assert!(cutoff(bad, now).is_err(), "{bad}");
        }
        assert!(cutoff("10y", now).unwrap_err().contains("365d"));
        assert_eq!(interval("500ms").unwrap(), Duration::from_millis(500));
        assert!(interval("0s").is_err());
    }
}
