//! When a job fires: a cron expression (5 or 6 fields, `@daily` and friends) read in an IANA
//! time zone, computed by croner, which handles daylight-saving changes the way people expect:
//! a 02:30 job runs once on the spring-forward day (at the first real instant after the gap)
//! and once on the fall-back day (not in both folds).
//!
//! All times in and out are UTC instants, so the loop that uses this takes any clock.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("\"{expression}\" is not a cron schedule: {message}")]
    Cron { expression: String, message: String },
    #[error("\"{0}\" is not an IANA time zone (e.g. Europe/Madrid, UTC)")]
    TimeZone(String),
    #[error("\"{expression}\" never fires after {after}")]
    NeverFires { expression: String, after: DateTime<Utc> },
}

pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    Cron::from_str(expression).map_err(|e| ScheduleError::Cron {
        expression: expression.to_string(),
        message: e.to_string(),
    })
}

pub fn parse_zone(timezone: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(timezone).map_err(|_| ScheduleError::TimeZone(timezone.to_string()))
}

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
    pub expression: String,
}

impl Schedule {
    pub fn parse(expression: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        Ok(Schedule {
            cron: parse_cron(expression)?,
            zone: parse_zone(timezone)?,
            expression: expression.to_string(),
        })
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ScheduleError::NeverFires {
                expression: self.expression.clone(),
                after,
            })
    }

    /// Every fire time in (`from`, `to`], oldest first — what a daemon that was down missed.
    pub fn fires_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from;
        while let Ok(next) = self.next_after(cursor) {
            if next > to {
                break;
            }
            out.push(next);
            cursor = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, TimeZone, Timelike};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap()
    }

    /// A daily 02:30 job over a whole year in zones with DST: exactly one firing per local day,
    /// at 02:30 local except on the spring-forward day (03:00, the first instant after the gap).
    #[test]
    fn a_simulated_year_fires_once_per_day_across_dst() {
        for zone in ["Europe/Madrid", "America/New_York", "Australia/Sydney", "UTC"] {
            let schedule = Schedule::parse("30 2 * * *", zone).unwrap();
            let fires = schedule.fires_between(utc(2025, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0));
            let tz = schedule.zone();
            let mut days: Vec<(i32, u32)> = fires
                .iter()
                .map(|f| (f.with_timezone(&tz).year(), f.with_timezone(&tz).ordinal()))
                .collect();
            let total = days.len();
            days.dedup();
            assert_eq!(days.len(), total, "{zone}: a day fired twice");
            assert!((364..=365).contains(&total), "{zone}: {total} firings in a year");
            let odd: Vec<String> = fires
                .iter()
                .map(|f| f.with_timezone(&tz))
                .filter(|l| (l.hour(), l.minute()) != (2, 30))
                .map(|l| l.to_rfc3339())
                .collect();
            let expected_gaps = if zone == "UTC" { 0 } else { 1 };
            assert_eq!(odd.len(), expected_gaps, "{zone}: off-time firings {odd:?}");
            assert!(
                fires.windows(2).all(|w| w[1] - w[0] >= Duration::hours(23)),
                "{zone}: two firings too close"
            );
        }
    }

    /// Hourly: every real hour once, so the fall-back day has 25 firings and spring-forward 23.
    #[test]
    fn hourly_jobs_follow_real_hours() {
        let schedule = Schedule::parse("0 * * * *", "Europe/Madrid").unwrap();
        let fires = schedule.fires_between(utc(2025, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0));
        assert_eq!(fires.len(), 8760, "one per real hour of 2025");
        assert!(fires.windows(2).all(|w| w[1] - w[0] == Duration::hours(1)));
    }

    #[test]
    fn six_fields_and_aliases_parse_and_bad_input_is_named() {
        let every_ten_seconds = Schedule::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            every_ten_seconds.next_after(utc(2025, 3, 1, 0, 0)).unwrap(),
            utc(2025, 3, 1, 0, 0) + Duration::seconds(10)
        );
        let daily = Schedule::parse("@daily", "UTC").unwrap();
        assert_eq!(daily.next_after(utc(2025, 3, 1, 10, 0)).unwrap(), utc(2025, 3, 2, 0, 0));
        assert!(matches!(
            Schedule::parse("61 * * * *", "UTC"),
            Err(ScheduleError::Cron { .. })
        ));
        assert_eq!(
            Schedule::parse("0 2 * * *", "Mars/Olympus").unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn a_restart_catches_up_what_it_missed_and_nothing_else() {
        let schedule = Schedule::parse("0 2 * * *", "Europe/Madrid").unwrap();
        // Down from the 3rd at noon to the 6th at noon: the 4th, 5th and 6th were missed.
        let missed = schedule.fires_between(utc(2025, 6, 3, 10, 0), utc(2025, 6, 6, 10, 0));
        assert_eq!(
            missed,
            vec![utc(2025, 6, 4, 0, 0), utc(2025, 6, 5, 0, 0), utc(2025, 6, 6, 0, 0)]
        );
    }
}
