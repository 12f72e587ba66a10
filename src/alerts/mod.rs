//! Alerts: rule evaluation over a run's observations → alert state (pending / firing /
//! resolved, deduplicated per rule and labels, reminders after `repeat_interval`, silences) →
//! one grouped notification per receiver, written to the outbox → delivered by `deliver`.

pub mod deliver;
pub mod detection;
pub mod observer;
pub mod rules;
pub mod state;
pub mod store;

use crate::vocab::text::{format_value, join_labels};
use crate::vocab::time::iso;
use crate::vocab::{ModelKind, Observation};
use chrono::{DateTime, Utc};
use rules::{CompareTo, Rule};
use serde::{Deserialize, Serialize};
use state::{AlertState, Phase, Reading, Tell};
use std::collections::BTreeMap;
use store::{AlertStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert as told to people: what, how bad, the figures, where to look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub rule: String,
    pub status: Status,
    /// A reminder of an alert still firing (after `repeat_interval`).
    pub reminder: bool,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub threshold: f64,
    pub condition: String,
    pub summary: String,
    pub description: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub report_url: Option<String>,
}

/// A notification: the alerts of one run for one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub job: String,
    pub run_id: Option<i64>,
    pub alerts: Vec<Notice>,
}

/// What the rules are evaluated against: one run's observations and context.
pub struct RunFacts<'a> {
    pub job: &'a str,
    pub run_id: Option<i64>,
    pub observations: &'a [Observation],
    /// Champion version per model, for templates.
    pub models: BTreeMap<ModelKind, Option<u32>>,
    pub report_url: Option<String>,
}

/// Fills `{{value}}`, `{{threshold}}`, `{{condition}}`, `{{rule}}`, `{{severity}}`, `{{job}}`,
/// `{{version}}` (the model label's champion), `{{report_url}}` and `{{labels.<name>}}`.
pub fn render(template: &str, rule: &Rule, labels: &BTreeMap<String, String>, value: f64, facts: &RunFacts) -> String {
    let version = labels
        .get("model")
        .and_then(|m| m.parse::<ModelKind>().ok())
        .and_then(|m| facts.models.get(&m).copied().flatten())
        .map_or_else(|| "–".to_string(), |v| v.to_string());
    let mut out = template
        .replace("{{value}}", &format_value(value))
        .replace("{{threshold}}", &format_value(rule.threshold))
        .replace("{{condition}}", &condition_text(rule))
        .replace("{{rule}}", &rule.name)
        .replace("{{severity}}", rule.severity.name())
        .replace("{{job}}", facts.job)
        .replace("{{version}}", &version)
        .replace("{{report_url}}", facts.report_url.as_deref().unwrap_or(""));
    for (key, v) in labels {
        out = out.replace(&format!("{{{{labels.{key}}}}}"), v);
    }
    out
}

fn condition_text(rule: &Rule) -> String {
    let what = match rule.compare_to {
        CompareTo::Value => rule.observation.clone(),
        CompareTo::PreviousRun => format!("change of {} since the previous run", rule.observation),
    };
    format!("{what} {} {}", rule.op.symbol(), format_value(rule.threshold))
}

/// Why `rule` cannot be silenced, when it is not one of `known` (a silence of a misspelled
/// rule would be accepted and silence nothing).
pub fn unknown_rule(rule: &str, known: &[String]) -> Option<String> {
    if known.iter().any(|k| k == rule) {
        return None;
    }
    let hint = crate::vocab::text::nearest(rule, known.iter().map(String::as_str))
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    Some(if known.is_empty() {
        format!("no rule named {rule}: no rules are loaded (alerts/rules.yaml)")
    } else {
        format!("no rule named {rule}{hint}; the rules: {}", known.join(", "))
    })
}

fn matches(rule: &Rule, job: &str, observation: &Observation) -> bool {
    observation.name == rule.observation
        && rule.job.as_deref().is_none_or(|j| j == job)
        && rule.labels.iter().all(|(k, v)| {
            // The run's label is the job's name (the series carry it in /metrics too).
            let value = match k.as_str() {
                crate::vocab::catalogue::JOB_LABEL => Some(job),
                _ => observation.labels.get(k).map(String::as_str),
            };
            value == Some(v.as_str())
        })
}

/// Moves every series the run's observations touch through the state machine and queues the
/// notifications, grouped per receiver (silenced rules are tracked but not told) — all inside
/// one transaction, so a state never says "told" without its outbox entry, nor the reverse.
/// Returns the notifications queued.
pub fn evaluate_and_enqueue(
    store: &AlertStore,
    rules: &[Rule],
    facts: &RunFacts,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Notification>, StoreError> {
    store.transaction(|tx| {
        let silenced = store::silenced_rules(tx, now)?;
        let mut out: BTreeMap<String, Notification> = BTreeMap::new();
        for rule in rules {
            for observation in facts.observations.iter().filter(|o| matches(rule, facts.job, o)) {
                let mut labels = observation.labels.clone();
                labels.insert(crate::vocab::catalogue::JOB_LABEL.into(), facts.job.to_string());
                let key = join_labels(&labels, ",");
                let previous =
                    store::read_state(tx, &rule.name, &key)?.unwrap_or_else(|| AlertState::new(&rule.name, &key));
                let reading = Reading {
                    value: observation.value,
                    silenced: silenced.contains(&rule.name),
                };
                let (mut state, tell) = state::step(&previous, reading, rule, now);
                let shown = state.value.unwrap_or(observation.value);
                let summary = render(&rule.summary, rule, &labels, shown, facts);
                state.summary = Some(summary.clone());
                if reading.silenced && state.state != previous.state {
                    tracing::info!(rule = %rule.name, state = %state.state, "alert silenced: not sent");
                }
                let mut told = None;
                if let Some(tell) = tell {
                    let status = if tell == Tell::Resolved {
                        Status::Resolved
                    } else {
                        Status::Firing
                    };
                    let alert = Notice {
                        rule: rule.name.clone(),
                        status,
                        reminder: tell == Tell::Reminder,
                        severity: rule.severity.name().into(),
                        labels: labels.clone(),
                        value: shown,
                        threshold: rule.threshold,
                        condition: condition_text(rule),
                        summary,
                        description: render(&rule.description, rule, &labels, shown, facts),
                        starts_at: iso(state.active_since.unwrap_or(now)),
                        ends_at: state.resolved_at.filter(|_| status == Status::Resolved).map(iso),
                        report_url: facts.report_url.clone(),
                    };
                    told = Some((status == Status::Firing).then(|| store::Told {
                        receivers: rule.receivers.clone(),
                        notice: alert.clone(),
                    }));
                    for receiver in &rule.receivers {
                        out.entry(receiver.clone())
                            .or_insert_with(|| Notification {
                                job: facts.job.to_string(),
                                run_id: facts.run_id,
                                alerts: Vec::new(),
                            })
                            .alerts
                            .push(alert.clone());
                    }
                }
                store::write_state(tx, &state, now)?;
                // A tell sets (firing) or clears (resolved) what the series told: Alertmanager's re-send reads it.
                if let Some(told) = told {
                    store::set_told(tx, &rule.name, &key, told.as_ref())?;
                }
            }
        }
        for (receiver, notification) in &out {
            let payload = serde_json::to_string(notification).unwrap_or_default();
            store::enqueue(tx, receiver, &payload, now)?;
        }
        Ok(out)
    })
}

/// The daemon's alerting: current rules, the store, and a wake-up for the delivery loop.
pub struct Alerting {
    pub store: std::sync::Arc<AlertStore>,
    rules: std::sync::RwLock<Vec<Rule>>,
    pub telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Alerting {
    pub fn new(
        store: std::sync::Arc<AlertStore>,
        rules: Vec<Rule>,
        telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    ) -> Alerting {
        Alerting {
            store,
            rules: std::sync::RwLock::new(rules),
            telemetry,
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules;
        self.refresh_gauges();
    }

    /// The names of the rules now loaded.
    pub fn rule_names(&self) -> Vec<String> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        rules.iter().map(|r| r.name.clone()).collect()
    }

    pub fn rule_count(&self) -> usize {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Evaluates the rules on a run's facts, queues what must be told and wakes the delivery.
    pub fn observe(&self, facts: &RunFacts) {
        self.observe_at(facts, Utc::now());
    }

    /// [`observe`](Self::observe) as of `now` (a backfilled run's time is its snapshot's).
    pub fn observe_at(&self, facts: &RunFacts, now: DateTime<Utc>) {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner()).clone();
        match evaluate_and_enqueue(&self.store, &rules, facts, now) {
            Ok(queued) if queued.is_empty() => {}
            Ok(queued) => {
                tracing::info!(job = facts.job, notifications = queued.len(), "alerts queued");
                self.wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "evaluating alert rules"),
        }
        self.refresh_gauges();
    }

    /// `bankml_alerts{rule,severity,state}` from the store.
    pub fn refresh_gauges(&self) {
        let Ok(states) = self.store.list(Utc::now()) else {
            return;
        };
        let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        // Every rule's series exist at 0, so dashboards and rules see "nothing firing" as 0.
        for rule in self.rules.read().unwrap_or_else(|p| p.into_inner()).iter() {
            for state in ["pending", "firing"] {
                counts.insert(
                    (rule.name.clone(), rule.severity.name().to_string(), state.to_string()),
                    0,
                );
            }
        }
        for s in states.iter().filter(|s| s.state != Phase::Inactive) {
            *counts
                .entry((
                    s.rule.clone(),
                    s.severity.clone().unwrap_or_default(),
                    s.state.to_string(),
                ))
                .or_insert(0) += 1;
        }
        let flat: Vec<(String, String, String, i64)> =
            counts.into_iter().map(|((r, s, st), c)| (r, s, st, c)).collect();
        self.telemetry.alerts(&flat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::{Op, Severity};

    fn rule(name: &str, op: Op, threshold: f64, for_runs: u32) -> Rule {
        Rule {
            name: name.into(),
            observation: "churn_auc".into(),
            labels: BTreeMap::from([("model".to_string(), "churn".to_string())]),
            job: None,
            op,
            threshold,
            compare_to: CompareTo::Value,
            for_runs,
            severity: Severity::Critical,
            receivers: vec!["slack".into(), "email".into()],
            repeat_interval: std::time::Duration::from_secs(3600),
            send_resolved: true,
            summary: "AUC {{value}} below {{threshold}} (v{{version}}, {{labels.model}})".into(),
            description: "See {{report_url}}".into(),
        }
    }

    fn run(store: &AlertStore, rules: &[Rule], value: f64, minutes: i64) -> BTreeMap<String, Notification> {
        let observations = vec![Observation::of(
            &crate::vocab::catalogue::CHURN_AUC,
            &[(crate::vocab::Label::Model, "churn")],
            value,
        )];
        let facts = RunFacts {
            job: "daily-benchmark",
            run_id: Some(minutes),
            observations: &observations,
            models: BTreeMap::from([(ModelKind::Churn, Some(7))]),
            report_url: Some("http://x/report".into()),
        };
        let now = crate::vocab::time::parse_iso("2026-06-01T00:00:00Z").unwrap() + chrono::Duration::minutes(minutes);
        let queued = evaluate_and_enqueue(store, rules, &facts, now).unwrap();
        let outbox = store.outbox(1000).unwrap();
        for (receiver, notification) in &queued {
            let entry = outbox
                .iter()
                .find(|e| &e.receiver == receiver)
                .expect("queued in the outbox");
            assert_eq!(entry.payload, serde_json::to_string(notification).unwrap());
        }
        queued
    }

    fn store() -> (tempfile::TempDir, AlertStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = AlertStore::open(&dir.path().join("alerts.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn pending_then_firing_once_then_reminder_then_resolved() {
        let (_dir, store) = store();
        let rules = [rule("auc_low", Op::Less, 0.8, 2)];
        assert!(run(&store, &rules, 0.75, 0).is_empty(), "first breach: pending only");
        let state = store
            .state("auc_low", "bankml_job=daily-benchmark,model=churn")
            .unwrap()
            .unwrap();
        assert_eq!((state.state, state.breaches), (Phase::Pending, 1));
        let fired = run(&store, &rules, 0.74, 10);
        assert_eq!(fired.len(), 2, "one notification per receiver");
        let alert = &fired["slack"].alerts[0];
        assert_eq!((alert.status, alert.reminder), (Status::Firing, false));
        assert_eq!(alert.summary, "AUC 0.7400 below 0.8000 (v7, churn)");
        assert_eq!(alert.description, "See http://x/report");
        assert_eq!(alert.labels["bankml_job"], "daily-benchmark");
        assert!(run(&store, &rules, 0.73, 20).is_empty(), "deduplicated while firing");
        let reminder = run(&store, &rules, 0.72, 75);
        assert!(reminder["email"].alerts[0].reminder, "after the repeat interval");
        let resolved = run(&store, &rules, 0.85, 80);
        assert_eq!(resolved["slack"].alerts[0].status, Status::Resolved);
        assert!(resolved["slack"].alerts[0].ends_at.is_some());
        assert!(run(&store, &rules, 0.86, 90).is_empty(), "resolved once");
        assert!(
            run(&store, &rules, 0.70, 100).is_empty(),
            "a new breach starts pending again"
        );
    }

    #[test]
    fn silences_suppress_and_relative_change_compares_with_the_previous_run() {
        let (_dir, store) = store();
        let rules = [rule("auc_low", Op::Less, 0.8, 1)];
        let now = crate::vocab::time::parse_iso("2026-06-01T00:00:00Z").unwrap();
        store
            .silence("auc_low", now + chrono::Duration::hours(2), now, None)
            .unwrap();
        assert!(run(&store, &rules, 0.7, 0).is_empty(), "silenced");
        assert_eq!(
            store
                .state("auc_low", "bankml_job=daily-benchmark,model=churn")
                .unwrap()
                .unwrap()
                .state,
            Phase::Firing,
            "still tracked"
        );
        let mut drop = rule("auc_drop", Op::Less, -0.05, 1);
        drop.compare_to = CompareTo::PreviousRun;
        let rules = [drop];
        assert!(run(&store, &rules, 0.90, 130).is_empty(), "no previous run yet");
        assert!(run(&store, &rules, 0.88, 140).is_empty(), "down 2.2 %");
        let fired = run(&store, &rules, 0.80, 150);
        let alert = &fired["slack"].alerts[0];
        assert!((alert.value - (0.80 - 0.88) / 0.88).abs() < 1e-12, "{}", alert.value);
    }

    #[test]
    fn grouping_puts_one_runs_alerts_in_one_notification() {
        let (_dir, store) = store();
        let mut second = rule("auc_very_low", Op::Less, 0.7, 1);
        second.receivers = vec!["slack".into()];
        let rules = [rule("auc_low", Op::Less, 0.8, 1), second];
        let fired = run(&store, &rules, 0.6, 0);
        assert_eq!(fired["slack"].alerts.len(), 2);
        assert_eq!(fired["email"].alerts.len(), 1);
    }
}
