//! Timestamps as bankml writes them everywhere (history, alerts, reports, model metadata):
//! RFC 3339 in UTC with milliseconds, `2026-06-01T02:30:00.000Z`.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now_iso() -> String {
    iso(Utc::now())
}

/// Any RFC 3339 time (with any offset), as UTC.
pub fn parse_iso(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Seconds since the Unix epoch, with milliseconds (Prometheus timestamps).
pub fn unix_seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

/// `#[serde(serialize_with = "…")]` for an optional time: written as [`iso`] text.
pub fn serialize_optional<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => serializer.serialize_some(&iso(*t)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_offsets() {
        let t = parse_iso("2026-03-29T03:00:00+02:00").unwrap();
        assert_eq!(iso(t), "2026-03-29T01:00:00.000Z");
        assert_eq!(parse_iso(&iso(t)), Some(t));
        assert_eq!(unix_seconds(parse_iso("1970-01-01T00:00:01.500Z").unwrap()), 1.5);
        assert_eq!(parse_iso("yesterday"), None);
        assert!(parse_iso(&now_iso()).is_some());
    }
}
