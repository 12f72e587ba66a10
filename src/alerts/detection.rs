//! The monitor measured as a detector: the alerts a replay raised, scored against what the
//! scenario planted (`scenario.json`). An alert that names a planted event active at its
//! snapshot is a detection; one raised while an event is active but naming something else is
//! collateral; one raised with no planted event active is a false alarm.

use crate::data::synth::scenario::{GroundTruth, PlantedEvent};
use serde::Serialize;
use std::collections::BTreeMap;

/// A new alert (not a reminder) and the snapshot of the run that raised it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaisedAlert {
    pub snapshot: String,
    pub rule: String,
    pub labels: BTreeMap<String, String>,
}

impl RaisedAlert {
    /// `rule{label=value,…}`, for people.
    pub fn describe(&self) -> String {
        if self.labels.is_empty() {
            self.rule.clone()
        } else {
            format!(
                "{}{{{}}}",
                self.rule,
                crate::vocab::text::join_labels(&self.labels, ",")
            )
        }
    }

    fn names(&self, event: &PlantedEvent) -> bool {
        let words: Vec<&str> = std::iter::once(self.rule.as_str())
            .chain(
                self.labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != crate::vocab::catalogue::JOB_LABEL)
                    .map(|(_, v)| v.as_str()),
            )
            .collect();
        event
            .names
            .iter()
            .any(|name| words.iter().any(|w| w.contains(name.as_str())))
    }
}

/// What became of one planted event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventOutcome {
    pub event: PlantedEvent,
    /// The snapshot of the first alert naming it, at or after its start.
    pub detected_at: Option<String>,
    /// Runs (snapshots) from its first snapshot to that alert: 0 is the first run after it.
    pub lag_runs: Option<usize>,
    /// The alerts that named it.
    pub named_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    /// Snapshots replayed.
    pub snapshots: usize,
    pub raised: usize,
    pub detections: usize,
    pub collateral: Vec<RaisedAlert>,
    pub false_alarms: Vec<RaisedAlert>,
    pub events: Vec<EventOutcome>,
}

fn active(event: &PlantedEvent, snapshot: &str) -> bool {
    event.first_snapshot.as_str() <= snapshot && event.last_snapshot.as_deref().is_none_or(|last| snapshot <= last)
}

/// Scores `raised` (over the replayed `snapshots`, oldest first) against `truth`.
pub fn score(truth: &GroundTruth, snapshots: &[String], raised: &[RaisedAlert]) -> Scorecard {
    let mut card = Scorecard {
        snapshots: snapshots.len(),
        raised: raised.len(),
        detections: 0,
        collateral: Vec::new(),
        false_alarms: Vec::new(),
        events: truth
            .planted
            .iter()
            .map(|event| EventOutcome {
                event: event.clone(),
                detected_at: None,
                lag_runs: None,
                named_by: Vec::new(),
            })
            .collect(),
    };
    let position = |snapshot: &str| snapshots.iter().position(|s| s == snapshot);
    for alert in raised {
        let mut explained = false;
        let mut during = false;
        for outcome in card.events.iter_mut() {
            if !active(&outcome.event, &alert.snapshot) {
                continue;
            }
            during = true;
            if !alert.names(&outcome.event) {
                continue;
            }
            explained = true;
            outcome.named_by.push(alert.describe());
            if outcome.detected_at.is_none() {
                outcome.detected_at = Some(alert.snapshot.clone());
                outcome.lag_runs = position(&alert.snapshot)
                    .zip(position(&outcome.event.first_snapshot))
                    .map(|(at, start)| at.saturating_sub(start));
            }
        }
        if explained {
            card.detections += 1;
        } else if during {
            card.collateral.push(alert.clone());
        } else {
            card.false_alarms.push(alert.clone());
        }
    }
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::date::Date;
    use crate::data::synth::scenario::{Event, EventKind, Scenario};

    fn alert(snapshot: &str, rule: &str, feature: &str) -> RaisedAlert {
        RaisedAlert {
            snapshot: snapshot.into(),
            rule: rule.into(),
            labels: [("feature".to_string(), feature.to_string())].into(),
        }
    }

    #[test]
    fn alerts_are_detections_collateral_or_false_alarms() {
        let scenario = Scenario {
            events: vec![Event {
                kind: EventKind::Shift,
                month: 2,
                until: Some(3),
                column: Some("activity.logins".into()),
                by: -0.4,
                value: None,
                from: None,
                to: None,
            }],
            ..Scenario::default()
        };
        let dates: Vec<Date> = (1..=4)
            .map(|m| Date::from_ymd(2025, m, 1).unwrap().month_end_after(0))
            .collect();
        let truth = GroundTruth::new(&scenario, 1, 100, &dates);
        let snapshots: Vec<String> = truth.snapshots.clone();
        let raised = vec![
            alert(&snapshots[0], "feature_drift", "tenure_months"),
            alert(&snapshots[2], "feature_drift", "logins_avg_3m"),
            alert(&snapshots[2], "feature_drift", "balance_total"),
            alert(&snapshots[3], "feature_drift", "logins_m0"),
        ];
        let card = score(&truth, &snapshots, &raised);
        assert_eq!(card.false_alarms.len(), 2, "before and after the event: {card:?}");
        assert_eq!(
            card.collateral.len(),
            1,
            "balance_total during the event names something else"
        );
        assert_eq!(card.detections, 1);
        let outcome = &card.events[0];
        assert_eq!(outcome.detected_at.as_deref(), Some(snapshots[2].as_str()));
        assert_eq!(
            outcome.lag_runs,
            Some(1),
            "planted at the second snapshot, seen at the third"
        );
    }
}
