//! Event time. Switchboard keeps every instant as whole milliseconds since the Unix epoch (UTC),
//! an `i64`: cheap to compare and to store in both SQLite and PostgreSQL. At the edges (JSON)
//! instants are RFC 3339 strings in UTC, within years 1970–9999 ([`MIN_TIMESTAMP_MS`] ..=
//! [`MAX_TIMESTAMP_MS`]): RFC 3339 has four-digit years, and no call happened before the epoch.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type TimestampMs = i64;

/// Earliest instant the API takes or emits: 1970-01-01T00:00:00Z.
pub const MIN_TIMESTAMP_MS: TimestampMs = 0;
/// Latest instant the API takes or emits: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP_MS: TimestampMs = 253_402_300_799_999;

/// Why a timestamp was refused by [`parse_rfc3339_checked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not RFC 3339 (e.g. `2024-01-01 10:00:00`, no offset).
    #[error("must be an RFC 3339 timestamp such as 2026-01-31T09:00:00Z")]
    Malformed,
    /// RFC 3339, but in UTC before 1970 or after 9999.
    #[error("must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z")]
    OutOfRange,
}

/// Parses an RFC 3339 timestamp (any offset) into epoch milliseconds, refusing instants whose
/// UTC year is outside 1970–9999 (`9999-12-31T23:00:00-02:00` is year 10000 in UTC).
///
/// Errors: [`TimeError`].
pub fn parse_rfc3339_checked(s: &str) -> Result<TimestampMs, TimeError> {
    let ms = DateTime::parse_from_rfc3339(s)
        .map_err(|_| TimeError::Malformed)?
        .with_timezone(&Utc)
        .timestamp_millis();
    if (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimeError::OutOfRange)
    }
}

/// [`parse_rfc3339_checked`] without the reason.
///
/// Errors: `None` when the text is not RFC 3339 or outside years 1970–9999.
pub fn parse_rfc3339(s: &str) -> Option<TimestampMs> {
    parse_rfc3339_checked(s).ok()
}

/// Formats epoch milliseconds as RFC 3339 in UTC with millisecond precision when needed
/// (`1999-08-01T00:10:10Z`, `2026-11-20T10:00:00.250Z`).
///
/// Always RFC 3339: an instant outside years 1970–9999 (which the API refuses on input, but a
/// database written by an older version may hold) is clamped to [`MIN_TIMESTAMP_MS`] or
/// [`MAX_TIMESTAMP_MS`] rather than printed as `+10000-…`.
pub fn format_rfc3339(ms: TimestampMs) -> String {
    let ms = ms.clamp(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS);
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        // Unreachable: the clamped range is within chrono's.
        None => String::from("1970-01-01T00:00:00Z"),
    }
}

/// Serde helpers for `Option<TimestampMs>` as an optional RFC 3339 string: `null`/absent is
/// `None`; serializing writes [`format_rfc3339`]; deserializing uses [`parse_rfc3339_checked`].
/// Use with `#[serde(default, with = "switchboard_core::time::rfc3339_opt")]`.
pub mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{format_rfc3339, parse_rfc3339_checked, TimestampMs};

    /// Writes `Some(ms)` as an RFC 3339 string, `None` as `null`.
    pub fn serialize<S: Serializer>(v: &Option<TimestampMs>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&format_rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` as `None` and a string as an RFC 3339 instant within years 1970–9999.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TimestampMs>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_rfc3339_checked(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Wall-clock now in epoch milliseconds.
pub fn now_ms() -> TimestampMs {
    Utc::now().timestamp_millis()
}

/// Converts a duration in milliseconds to seconds (`f64`), the unit of every duration in the API.
pub fn ms_to_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Converts a duration in whole seconds to milliseconds.
pub fn s_to_ms(s: u32) -> i64 {
    i64::from(s) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_utc() {
        let ms = parse_rfc3339("1999-08-01T00:10:10Z").unwrap();
        assert_eq!(ms, 933_466_210_000);
        assert_eq!(format_rfc3339(ms), "1999-08-01T00:10:10Z");
        assert_eq!(format_rfc3339(ms + 250), "1999-08-01T00:10:10.250Z");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        assert_eq!(
            parse_rfc3339("1999-08-01T02:10:10+02:00"),
            parse_rfc3339("1999-08-01T00:10:10Z")
        );
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert_eq!(parse_rfc3339("1999-08-01 00:10:10"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(
            parse_rfc3339_checked("yesterday"),
            Err(TimeError::Malformed)
        );
    }

    #[test]
    fn refuses_years_outside_1970_to_9999() {
        for bad in [
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            // 00:30 at +01:00 is 1969 in UTC.
            "1970-01-01T00:30:00+01:00",
            // 23:00 at -02:00 is year 10000 in UTC.
            "9999-12-31T23:00:00-02:00",
        ] {
            assert_eq!(
                parse_rfc3339_checked(bad),
                Err(TimeError::OutOfRange),
                "{bad}"
            );
        }
        // chrono refuses five-digit years as RFC 3339 outright.
        assert!(parse_rfc3339("10000-01-01T00:00:00Z").is_none());
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00Z"),
            Some(MIN_TIMESTAMP_MS)
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59.999Z"),
            Some(MAX_TIMESTAMP_MS)
        );
    }

    #[test]
    fn formats_only_rfc3339() {
        assert_eq!(format_rfc3339(MAX_TIMESTAMP_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339(MAX_TIMESTAMP_MS + 1),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(format_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(-1), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
        for ms in [0, 933_466_210_250, MAX_TIMESTAMP_MS] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
    }
}
