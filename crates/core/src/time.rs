//! Event time. Switchboard keeps every instant as whole milliseconds since the Unix epoch (UTC),
//! an `i64`: cheap to compare and to store in both SQLite and PostgreSQL. At the edges (JSON)
//! instants are RFC 3339 strings in UTC.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type TimestampMs = i64;

/// Parses an RFC 3339 timestamp (any offset) into epoch milliseconds.
///
/// Errors: `None` when the text is not RFC 3339 (e.g. `2024-01-01 10:00:00`, missing offset).
pub fn parse_rfc3339(s: &str) -> Option<TimestampMs> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// Formats epoch milliseconds as RFC 3339 in UTC with millisecond precision when needed
/// (`1999-08-01T00:10:10Z`, `2026-11-20T10:00:00.250Z`).
pub fn format_rfc3339(ms: TimestampMs) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ms.to_string(),
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
    }
}
