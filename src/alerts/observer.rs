//! The alerts' wiring into the engine: after every run its observations (and `job_failed`)
//! go through the rules, then the reports' index page is rewritten; the lateness check; and
//! the rules and store for a run outside the daemon (`bankml run`).

use super::rules::load_rules;
use super::store::{AlertStore, StoreError};
use super::{Alerting, RunFacts};
use crate::alerts::deliver::Deliverer;
use crate::alerts::state::Phase;
use crate::config::EngineConfig;
use crate::config::jobs::Job;
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::history::{RunHistory, RunState};
use crate::engine::runner::{AttemptReport, RunObserver};
use crate::models::registry::Registry;
use crate::telemetry::Telemetry;
use crate::vocab::Observation;
use crate::vocab::catalogue::{JOB_FAILED, JOB_LATE};
use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("invalid alert rules:\n  {}", .0.join("\n  "))]
    Rules(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// After each run: its observations (and `job_failed`) through the alert rules, then the
/// reports' index page.
pub struct AlertObserver {
    alerting: Arc<Alerting>,
    base_url: String,
    config: Arc<EngineConfig>,
    history: Arc<RunHistory>,
    /// The time alerts are evaluated at; the system clock unless a backfill sets its own.
    clock: Arc<dyn Clock>,
}

impl AlertObserver {
    pub fn new(alerting: Arc<Alerting>, config: Arc<EngineConfig>, history: Arc<RunHistory>) -> AlertObserver {
        AlertObserver {
            alerting,
            base_url: config.report_base_url(),
            config,
            history,
            clock: Arc::new(SystemClock),
        }
    }

    /// Evaluates alerts at `clock`'s time (a backfill's runs happen at their snapshots' dates).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> AlertObserver {
        AlertObserver { clock, ..self }
    }
}

/// The rules and the alert store, for a run outside the daemon (`bankml run`).
pub fn alerting_for(config: &EngineConfig, telemetry: Arc<Telemetry>) -> Result<Arc<Alerting>, WiringError> {
    let receivers: Vec<String> = config.alerting.receivers.keys().cloned().collect();
    let rules = load_rules(&config.data.alerts_dir.join("rules.yaml"), &receivers).map_err(WiringError::Rules)?;
    let store = Arc::new(AlertStore::open(&config.data.history)?);
    Ok(Arc::new(Alerting::new(store, rules, telemetry)))
}

/// One delivery pass of the outbox (what `bankml run` does after its run; the daemon's loop
/// retries whatever is left).
pub async fn deliver_once(config: &EngineConfig, alerting: &Alerting) -> usize {
    Deliverer::for_config(config, alerting).deliver_due().await
}

/// `reports/index.html` from the run history and the alerts each run raised.
pub fn write_index(config: &EngineConfig, history: &RunHistory, store: &AlertStore) -> Result<(), String> {
    let runs = history.list(None, 500).map_err(|e| e.to_string())?;
    let alerts = store.alerts_by_run(5000).map_err(|e| e.to_string())?;
    let firing: Vec<(String, String)> = store
        .list(Utc::now())
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|a| a.state == Phase::Firing)
        .map(|a| (a.rule, a.summary.unwrap_or_default()))
        .collect();
    crate::report::index::write(&config.data.reports_dir, &runs, &alerts, &firing).map_err(|e| e.to_string())
}

impl RunObserver for AlertObserver {
    fn finished(&self, job: &Job, run_id: i64, report: &AttemptReport) {
        let mut observations = report.observations.clone();
        match report.state {
            RunState::Succeeded => observations.push(Observation::of(&JOB_FAILED, &[], 0.0)),
            RunState::Failed | RunState::TimedOut => observations.push(Observation::of(&JOB_FAILED, &[], 1.0)),
            _ => return,
        }
        let report_url = report.report.as_ref().map(|_| {
            format!(
                "{}/reports/{}/{run_id}/report.html",
                self.base_url.trim_end_matches('/'),
                job.name
            )
        });
        self.alerting.observe_at(
            &RunFacts {
                job: &job.name,
                run_id: Some(run_id),
                observations: &observations,
                models: Registry::new(&self.config.models.dir).champions(),
                report_url,
            },
            self.clock.now(),
        );
        if let Err(e) = write_index(&self.config, &self.history, &self.alerting.store) {
            tracing::warn!(error = %e, "reports/index.html not updated");
        }
    }
}

/// `job_late{bankml_job}`: 1 when an enabled job has not succeeded within its schedule's period plus
/// its timeout (counted from its last success, or from the daemon's start).
pub fn check_lateness(
    alerting: &Alerting,
    jobs: &[Job],
    history: &RunHistory,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    for job in jobs.iter().filter(|j| j.enabled) {
        let (Ok(first), Ok(reference)) = (job.schedule.next_after(now), history.last_success(&job.name)) else {
            continue;
        };
        let Ok(second) = job.schedule.next_after(first) else {
            continue;
        };
        let period = second - first;
        let since = reference.map_or(started, |r| r.max(started));
        let allowed = period + chrono::Duration::from_std(job.timeout).unwrap_or(chrono::Duration::hours(1));
        let late = now - since > allowed;
        alerting.observe(&RunFacts {
            job: &job.name,
            run_id: None,
            observations: &[Observation::of(&JOB_LATE, &[], f64::from(u8::from(late)))],
            models: Default::default(),
            report_url: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{CompareTo, Op, Rule, Severity};
    use crate::config::jobs::JobKind;
    use crate::config::jobs::{CatchUp, Overlap};
    use crate::engine::history::Trigger;
    use crate::vocab::schedule::Schedule;
    use crate::vocab::time::parse_iso;

    fn hourly(name: &str) -> Job {
        Job {
            name: name.into(),
            path: "jobs/x.yaml".into(),
            kind: JobKind::Benchmark,
            schedule: Schedule::parse("0 * * * *", "UTC").unwrap(),
            timeout: std::time::Duration::from_secs(600),
            retries: 0,
            backoff: std::time::Duration::from_secs(60),
            overlap: Overlap::Skip,
            catch_up: CatchUp::Latest,
            enabled: true,
            params: Default::default(),
        }
    }

    #[test]
    fn a_job_without_a_success_for_longer_than_its_period_and_timeout_is_late() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let history = RunHistory::open(&path).unwrap();
        let store = Arc::new(AlertStore::open(&path).unwrap());
        let rule = Rule {
            name: "job_late".into(),
            observation: "job_late".into(),
            labels: Default::default(),
            job: None,
            op: Op::GreaterOrEqual,
            threshold: 1.0,
            compare_to: CompareTo::Value,
            for_runs: 1,
            severity: Severity::Warning,
            receivers: vec![],
            repeat_interval: std::time::Duration::from_secs(3600),
            send_resolved: true,
            summary: "{{job}} late".into(),
            description: String::new(),
        };
        let alerting = Alerting::new(store.clone(), vec![rule], Arc::new(Telemetry::new()));
        let started = parse_iso("2026-06-01T00:00:00Z").unwrap();
        // `fresh` succeeded 30 minutes ago; `stale` 2 hours ago (period 1 h + timeout 10 m).
        for (job, at) in [("fresh", "2026-06-01T09:30:00Z"), ("stale", "2026-06-01T08:00:00Z")] {
            let t = parse_iso(at).unwrap();
            let id = history.start(job, Trigger::Schedule, Some(t), 1, t).unwrap();
            history.finish(id, RunState::Succeeded, t, 1.0, None, None).unwrap();
        }
        let now = parse_iso("2026-06-01T10:00:00Z").unwrap();
        check_lateness(
            &alerting,
            &[hourly("fresh"), hourly("stale"), hourly("new")],
            &history,
            started,
            now,
        );
        let state = |job: &str| {
            store
                .state("job_late", &format!("bankml_job={job}"))
                .unwrap()
                .unwrap()
                .state
        };
        assert_eq!(state("stale"), Phase::Firing);
        assert_eq!(state("fresh"), Phase::Inactive);
        // Never succeeded, but counted from the daemon's start 10 h ago: late too.
        assert_eq!(state("new"), Phase::Firing);
        // A daemon started 20 minutes ago gives a new job its full period first.
        check_lateness(
            &alerting,
            &[hourly("newer")],
            &history,
            now - chrono::Duration::minutes(20),
            now,
        );
        assert_eq!(state("newer"), Phase::Inactive);
    }
}
