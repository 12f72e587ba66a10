//! Durations as admins write them in YAML and the API: `90s`, `30m`, `2h`, `1h30m`, `1d`
//! (humantime's grammar, which also takes `2h 30min`, `1week`). Zero is refused: every
//! duration bankml reads is a wait, a limit or a period.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{text}\" is not a duration (e.g. 90s, 30m, 2h, 1h30m, 1d){reason}")]
pub struct DurationError {
    pub text: String,
    reason: String,
}

pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason: &str| DurationError {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err(fail(": it must be longer than zero")),
        Ok(d) => Ok(d),
        Err(_) => Err(fail("")),
    }
}

/// `#[serde(deserialize_with = "…")]` for a `Duration` field written as text.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `2h`, `30m`, `1h30m`, `45s` — the shortest exact text of `d` (whole seconds).
pub fn format(d: Duration) -> String {
    let mut seconds = d.as_secs();
    if seconds == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_admins_write() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse(" 2h 30min "), Ok(Duration::from_secs(9000)));
        for bad in ["", "10", "5x", "m", "soon"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
        assert!(parse("0s").unwrap_err().to_string().contains("longer than zero"));
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(86_400 + 5)), "1d5s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
    }
}
