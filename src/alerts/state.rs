//! The alert state machine, as a pure function: one series' remembered state, one run's
//! reading of it, the rule and the time in; the next state and what (if anything) to tell out.
//! No I/O, so every transition is a unit test; evaluation (in `mod.rs`) reads, steps and writes
//! inside one SQLite transaction.
//!
//! ```text
//!            breach (for_runs reached)                  no breach
//! inactive ───────────────────────────▶ firing ──────────────────────▶ inactive (+ Resolved)
//!     │ breach (for_runs not reached)     ▲  │ breach, repeat_interval passed: Reminder
//!     ▼                                   │  └──────────────────────────────────────────┐
//!  pending ───────────────────────────────┘ breach (for_runs reached)                   │
//!     │ no breach: back to inactive, nothing told                              (stays firing)
//! ```

use super::rules::{CompareTo, Rule};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where one alert series stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Not breaching (or never seen).
    #[default]
    Inactive,
    /// Breaching, but for fewer consecutive runs than the rule's `for`.
    Pending,
    /// Breaching long enough: told.
    Firing,
}

impl Phase {
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Inactive => "inactive",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(text: &str) -> Result<Phase, String> {
        [Phase::Inactive, Phase::Pending, Phase::Firing]
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| format!("unknown alert state \"{text}\""))
    }
}

/// One alert series' remembered state (a row of `alert_state`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertState {
    pub rule: String,
    /// The series' labels, `key=value,…` in key order.
    pub labels: String,
    pub state: Phase,
    /// Consecutive breaching runs.
    pub breaches: u32,
    /// The figure the condition last compared (the value, or its relative change).
    pub value: Option<f64>,
    /// The observation's own last value (what `compare_to: previous_run` compares with).
    pub last_value: Option<f64>,
    #[serde(serialize_with = "crate::vocab::time::serialize_optional")]
    pub active_since: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::vocab::time::serialize_optional")]
    pub last_notified: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::vocab::time::serialize_optional")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub severity: Option<String>,
    pub summary: Option<String>,
}

impl AlertState {
    /// A series never seen before.
    pub fn new(rule: &str, labels: &str) -> AlertState {
        AlertState {
            rule: rule.to_string(),
            labels: labels.to_string(),
            state: Phase::Inactive,
            breaches: 0,
            value: None,
            last_value: None,
            active_since: None,
            last_notified: None,
            resolved_at: None,
            severity: None,
            summary: None,
        }
    }
}

/// What a step tells people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    /// The series started firing.
    Firing,
    /// Still firing after `repeat_interval` since the last notice.
    Reminder,
    /// It stopped breaching (and the rule sends resolutions).
    Resolved,
}

/// One run's reading of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The observation's value.
    pub value: f64,
    /// Whether the rule's notices are silenced now (the state still moves).
    pub silenced: bool,
}

/// The figure the rule's condition compares: the value, or its relative change since the
/// series' previous value (none on the first run, or after a zero).
pub fn compared(rule: &Rule, previous: &AlertState, value: f64) -> Option<f64> {
    match rule.compare_to {
        CompareTo::Value => Some(value),
        CompareTo::PreviousRun => previous
            .last_value
            .filter(|p| *p != 0.0 && p.is_finite())
            .map(|p| (value - p) / p.abs()),
    }
}

/// The next state of a series after one run, and what to tell.
pub fn step(previous: &AlertState, reading: Reading, rule: &Rule, now: DateTime<Utc>) -> (AlertState, Option<Tell>) {
    let mut state = previous.clone();
    let compared = compared(rule, previous, reading.value);
    let breach = compared.is_some_and(|v| v.is_finite() && rule.op.holds(v, rule.threshold));
    state.last_value = Some(reading.value);
    state.value = Some(compared.unwrap_or(reading.value));
    state.severity = Some(rule.severity.name().into());
    let tell = if breach {
        state.breaches = state.breaches.saturating_add(1);
        if state.state == Phase::Inactive {
            state.state = Phase::Pending;
            state.active_since = Some(now);
            state.resolved_at = None;
        }
        match state.state {
            Phase::Firing => {
                let repeat = chrono::Duration::from_std(rule.repeat_interval).unwrap_or(chrono::Duration::MAX);
                let due = state.last_notified.is_none_or(|t| now - t >= repeat);
                due.then_some(Tell::Reminder)
            }
            _ if state.breaches >= rule.for_runs => {
                state.state = Phase::Firing;
                Some(Tell::Firing)
            }
            _ => None,
        }
    } else {
        let was_firing = state.state == Phase::Firing;
        if was_firing {
            state.resolved_at = Some(now);
        }
        state.state = Phase::Inactive;
        state.breaches = 0;
        (was_firing && rule.send_resolved).then_some(Tell::Resolved)
    };
    // A silenced notice is not told, and so does not count as the last one told.
    let tell = tell.filter(|_| !reading.silenced);
    if tell.is_some() {
        state.last_notified = Some(now);
    }
    (state, tell)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{Op, Severity};
    use std::time::Duration;

    fn rule(for_runs: u32) -> Rule {
        Rule {
            name: "auc_low".into(),
            observation: "churn_auc".into(),
            labels: Default::default(),
            job: None,
            op: Op::Less,
            threshold: 0.8,
            compare_to: CompareTo::Value,
            for_runs,
            severity: Severity::Critical,
            receivers: vec![],
            repeat_interval: Duration::from_secs(3600),
            send_resolved: true,
            summary: String::new(),
            description: String::new(),
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn read(value: f64) -> Reading {
        Reading { value, silenced: false }
    }

    fn series() -> AlertState {
        AlertState::new("auc_low", "bankml_job=b,model=churn")
    }

    #[test]
    fn inactive_stays_inactive_without_a_breach() {
        let (next, tell) = step(&series(), read(0.9), &rule(1), at(0));
        assert_eq!((next.state, tell, next.breaches), (Phase::Inactive, None, 0));
        assert_eq!((next.value, next.last_value), (Some(0.9), Some(0.9)));
        assert_eq!(next.severity.as_deref(), Some("critical"));
    }

    #[test]
    fn inactive_to_firing_at_once_when_for_is_one() {
        let (next, tell) = step(&series(), read(0.7), &rule(1), at(0));
        assert_eq!((next.state, tell), (Phase::Firing, Some(Tell::Firing)));
        assert_eq!((next.active_since, next.last_notified), (Some(at(0)), Some(at(0))));
    }

    #[test]
    fn inactive_to_pending_then_firing_when_for_is_reached() {
        let rule = rule(3);
        let (one, tell) = step(&series(), read(0.7), &rule, at(0));
        assert_eq!((one.state, tell, one.breaches), (Phase::Pending, None, 1));
        let (two, tell) = step(&one, read(0.7), &rule, at(10));
        assert_eq!((two.state, tell, two.breaches), (Phase::Pending, None, 2));
        let (three, tell) = step(&two, read(0.7), &rule, at(20));
        assert_eq!((three.state, tell), (Phase::Firing, Some(Tell::Firing)));
        assert_eq!(three.active_since, Some(at(0)), "active since the first breach");
    }

    #[test]
    fn pending_to_inactive_tells_nothing() {
        let rule = rule(2);
        let (pending, _) = step(&series(), read(0.7), &rule, at(0));
        let (next, tell) = step(&pending, read(0.9), &rule, at(10));
        assert_eq!((next.state, tell, next.breaches), (Phase::Inactive, None, 0));
        assert_eq!(next.resolved_at, None, "it never fired");
    }

    #[test]
    fn firing_is_deduplicated_then_reminded_after_the_repeat_interval() {
        let rule = rule(1);
        let (firing, _) = step(&series(), read(0.7), &rule, at(0));
        let (same, tell) = step(&firing, read(0.6), &rule, at(30));
        assert_eq!(
            (same.state, tell, same.last_notified),
            (Phase::Firing, None, Some(at(0)))
        );
        let (reminded, tell) = step(&same, read(0.6), &rule, at(60));
        assert_eq!((reminded.state, tell), (Phase::Firing, Some(Tell::Reminder)));
        assert_eq!(reminded.last_notified, Some(at(60)));
    }

    #[test]
    fn firing_to_inactive_resolves_once_unless_the_rule_keeps_quiet() {
        let mut rule = rule(1);
        let (firing, _) = step(&series(), read(0.7), &rule, at(0));
        let (resolved, tell) = step(&firing, read(0.85), &rule, at(10));
        assert_eq!((resolved.state, tell), (Phase::Inactive, Some(Tell::Resolved)));
        assert_eq!(resolved.resolved_at, Some(at(10)));
        let (again, tell) = step(&resolved, read(0.86), &rule, at(20));
        assert_eq!((again.state, tell), (Phase::Inactive, None));
        rule.send_resolved = false;
        let (quiet, tell) = step(&firing, read(0.85), &rule, at(10));
        assert_eq!((quiet.state, tell), (Phase::Inactive, None));
    }

    #[test]
    fn a_new_breach_after_resolution_starts_over() {
        let rule = rule(2);
        let (p, _) = step(&series(), read(0.7), &rule, at(0));
        let (f, _) = step(&p, read(0.7), &rule, at(1));
        let (r, _) = step(&f, read(0.9), &rule, at(2));
        let (again, tell) = step(&r, read(0.7), &rule, at(3));
        assert_eq!((again.state, tell, again.breaches), (Phase::Pending, None, 1));
        assert_eq!((again.active_since, again.resolved_at), (Some(at(3)), None));
    }

    #[test]
    fn silenced_series_move_but_tell_nothing() {
        let rule = rule(1);
        let silenced = Reading {
            value: 0.7,
            silenced: true,
        };
        let (firing, tell) = step(&series(), silenced, &rule, at(0));
        assert_eq!((firing.state, tell, firing.last_notified), (Phase::Firing, None, None));
        // Once the silence ends, the still-firing series is told as a reminder straight away.
        let (told, tell) = step(&firing, read(0.7), &rule, at(5));
        assert_eq!(tell, Some(Tell::Reminder));
        assert_eq!(told.last_notified, Some(at(5)));
    }

    #[test]
    fn relative_change_compares_with_the_previous_value() {
        let mut rule = rule(1);
        rule.compare_to = CompareTo::PreviousRun;
        rule.threshold = -0.05;
        let (first, tell) = step(&series(), read(0.90), &rule, at(0));
        assert_eq!((first.state, tell), (Phase::Inactive, None), "no previous value yet");
        let (second, tell) = step(&first, read(0.88), &rule, at(1));
        assert_eq!(tell, None, "down 2.2 %");
        let (third, tell) = step(&second, read(0.80), &rule, at(2));
        assert_eq!(tell, Some(Tell::Firing));
        assert!((third.value.unwrap() - (0.80 - 0.88) / 0.88).abs() < 1e-12);
        assert_eq!(third.last_value, Some(0.80));
        let mut zero = second.clone();
        zero.last_value = Some(0.0);
        assert_eq!(compared(&rule, &zero, 0.5), None, "no relative change from zero");
    }

    #[test]
    fn non_finite_figures_never_breach() {
        let (next, tell) = step(&series(), read(f64::NAN), &rule(1), at(0));
        assert_eq!((next.state, tell), (Phase::Inactive, None));
        assert_eq!("firing".parse::<Phase>(), Ok(Phase::Firing));
        assert!("fired".parse::<Phase>().is_err());
    }
}
