//! `bankml daemon`: wires the scheduler, the run history, the metrics, the HTTP server, hot
//! reload (file polling, SIGHUP, API) and signals together. On a first start without data it
//! generates the demo bank, trains the first champions and runs a first benchmark.

use crate::alerts::deliver::Deliverer;
use crate::alerts::rules::{Rule, load_rules};
use crate::alerts::store::AlertStore;
use crate::alerts::{Alerting, RunFacts};
use crate::config::EngineConfig;
use crate::config::jobs::{Job, JobKind, load_jobs};
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::history::RunState;
use crate::engine::history::{HistoryError, RunHistory, Trigger};
use crate::engine::process::ProcessExecutor;
use crate::engine::runner::{self, Shared};
use crate::engine::runner::{AttemptReport, RunObserver};
use crate::engine::scheduler::{Command, Scheduler, Settings};
use crate::jobs::Observation;
use crate::models::registry::Registry;
use crate::server::{self, AppState, Reloader};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid job or rule files:\n  {}", .0.join("\n  "))]
    Jobs(Vec<String>),
    #[error(transparent)]
    Alerts(#[from] crate::alerts::store::StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("cannot find the bankml binary to run jobs with: {0}")]
    Program(std::io::Error),
    #[error("first start: {0}")]
    Bootstrap(String),
}

pub struct DaemonOptions {
    pub config_path: PathBuf,
    /// Overrides `daemon.listen`.
    pub listen: Option<String>,
}

/// The job files and the alert rules, re-read on change; a bad edit keeps the running ones.
struct JobFiles {
    dir: PathBuf,
    rules: PathBuf,
    receivers: Vec<String>,
    commands: mpsc::Sender<Command>,
    telemetry: Arc<Telemetry>,
    alerting: Arc<Alerting>,
    /// The jobs in force (for the lateness check).
    current: Mutex<Vec<Job>>,
    seen: Mutex<u64>,
}

/// A hash of the files' names and contents: changes when any is edited, added or removed.
fn fingerprint(dirs: &[&Path]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for dir in dirs {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            path.hash(&mut hasher);
            std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Jobs and rules, every problem of both.
fn load_all(jobs_dir: &Path, rules: &Path, receivers: &[String]) -> Result<(Vec<Job>, Vec<Rule>), Vec<String>> {
    let jobs = load_jobs(jobs_dir);
    let rules = load_rules(rules, receivers);
    match (jobs, rules) {
        (Ok(j), Ok(r)) => Ok((j, r)),
        (j, r) => Err(j
            .err()
            .unwrap_or_default()
            .into_iter()
            .chain(r.err().unwrap_or_default())
            .collect()),
    }
}

fn unix_now() -> f64 {
    SystemClock.now().timestamp_millis() as f64 / 1000.0
}

impl Reloader for JobFiles {
    fn reload(&self) -> Result<usize, Vec<String>> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = self.fingerprint();
        match load_all(&self.dir, &self.rules, &self.receivers) {
            Ok((jobs, rules)) => {
                let count = jobs.len();
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = jobs.clone();
                if self.commands.blocking_send(Command::Replace(jobs)).is_err() {
                    return Err(vec!["the scheduler is not running".into()]);
                }
                let rule_count = rules.len();
                self.alerting.set_rules(rules);
                self.telemetry.reload(true, unix_now());
                tracing::info!(jobs = count, rules = rule_count, "job files and alert rules reloaded");
                Ok(count)
            }
            Err(errors) => {
                self.telemetry.reload(false, unix_now());
                for error in &errors {
                    tracing::error!(problem = %error, "job files not reloaded; the running schedule stays");
                }
                Err(errors)
            }
        }
    }
}

impl JobFiles {
    fn fingerprint(&self) -> u64 {
        let alerts_dir = self.rules.parent().unwrap_or(Path::new("."));
        fingerprint(&[&self.dir, alerts_dir])
    }

    fn changed(&self) -> bool {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) != self.fingerprint()
    }
}

/// After each run: its observations (and `job_failed`) through the alert rules, then the
/// reports' index page.
pub struct AlertObserver {
    alerting: Arc<Alerting>,
    base_url: String,
    config: Arc<EngineConfig>,
    history: Arc<RunHistory>,
}

impl AlertObserver {
    pub fn new(alerting: Arc<Alerting>, config: Arc<EngineConfig>, history: Arc<RunHistory>) -> AlertObserver {
        AlertObserver {
            alerting,
            base_url: config.alerting.report_base_url.clone(),
            config,
            history,
        }
    }
}

/// The rules and the alert store, for a run outside the daemon (`bankml run`).
pub fn alerting_for(config: &EngineConfig, telemetry: Arc<Telemetry>) -> Result<Arc<Alerting>, DaemonError> {
    let receivers: Vec<String> = config.alerting.receivers.keys().cloned().collect();
    let rules = load_rules(&config.data.alerts_dir.join("rules.yaml"), &receivers).map_err(DaemonError::Jobs)?;
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
        .filter(|a| a.state == "firing")
        .map(|a| (a.rule, a.summary.unwrap_or_default()))
        .collect();
    crate::report::index::write(&config.data.reports_dir, &runs, &alerts, &firing).map_err(|e| e.to_string())
}

impl RunObserver for AlertObserver {
    fn finished(&self, job: &Job, run_id: i64, report: &AttemptReport) {
        let mut observations = report.observations.clone();
        match report.state {
            RunState::Succeeded => observations.push(Observation::new("job_failed", &[], 0.0)),
            RunState::Failed | RunState::TimedOut => observations.push(Observation::new("job_failed", &[], 1.0)),
            _ => return,
        }
        let report_url = report.report.as_ref().map(|_| {
            format!(
                "{}/reports/{}/{run_id}/report.html",
                self.base_url.trim_end_matches('/'),
                job.name
            )
        });
        self.alerting.observe(&RunFacts {
            job: &job.name,
            run_id: Some(run_id),
            observations: &observations,
            models: Registry::new(&self.config.models.dir).champions(),
            report_url,
        });
        if let Err(e) = write_index(&self.config, &self.history, &self.alerting.store) {
            tracing::warn!(error = %e, "reports/index.html not updated");
        }
    }
}

/// `job_late{job}`: 1 when an enabled job has not succeeded within its schedule's period plus
/// its timeout (counted from its last success, or from the daemon's start).
fn check_lateness(alerting: &Alerting, jobs: &[Job], history: &RunHistory, started: DateTime<Utc>, now: DateTime<Utc>) {
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
            observations: &[Observation::new("job_late", &[], f64::from(u8::from(late)))],
            models: Default::default(),
            report_url: None,
        });
    }
}

pub async fn run(config: EngineConfig, options: DaemonOptions) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let receivers: Vec<String> = config.alerting.receivers.keys().cloned().collect();
    let rules_path = config.data.alerts_dir.join("rules.yaml");
    let (jobs, rules) = load_all(&config.data.jobs_dir, &rules_path, &receivers).map_err(DaemonError::Jobs)?;
    let started = SystemClock.now();
    let history = Arc::new(RunHistory::open(&config.data.history)?);
    let interrupted = history.mark_interrupted(SystemClock.now())?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "runs cut off by the previous stop are marked interrupted"
        );
    }
    let telemetry = Arc::new(Telemetry::new());
    telemetry.reload(true, unix_now());
    let store = Arc::new(AlertStore::open(&config.data.history)?);
    let alerting = Arc::new(Alerting::new(store.clone(), rules, telemetry.clone()));
    alerting.refresh_gauges();
    tracing::info!(
        rules = alerting.rule_count(),
        receivers = receivers.len(),
        "alert rules loaded"
    );
    let token = std::env::var(&config.daemon.api_token_env)
        .ok()
        .filter(|t| !t.trim().is_empty());
    if token.is_none() {
        tracing::warn!(
            variable = %config.daemon.api_token_env,
            "no API token set: triggering and reloading over HTTP are refused"
        );
    }
    let program = std::env::current_exe().map_err(DaemonError::Program)?;
    let shared = Arc::new(Shared {
        executor: ProcessExecutor {
            program: program.clone(),
            config_path: options.config_path.clone(),
            reports_dir: config.data.reports_dir.clone(),
            grace: config.daemon.grace(),
            threads: 0,
            forward_output: false,
        },
        history: history.clone(),
        clock: Arc::new(SystemClock),
        telemetry: telemetry.clone(),
        observer: Some(Arc::new(AlertObserver::new(
            alerting.clone(),
            config.clone(),
            history.clone(),
        ))),
    });
    let (commands, receiver) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let job_files = Arc::new(JobFiles {
        dir: config.data.jobs_dir.clone(),
        rules: rules_path.clone(),
        receivers: receivers.clone(),
        commands: commands.clone(),
        telemetry: telemetry.clone(),
        alerting: alerting.clone(),
        current: Mutex::new(jobs.clone()),
        seen: Mutex::new(0),
    });
    *job_files.seen.lock().unwrap_or_else(|p| p.into_inner()) = job_files.fingerprint();

    let address = options.listen.unwrap_or_else(|| config.daemon.listen.clone());
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| DaemonError::Listen {
            address: address.clone(),
            source,
        })?;
    tracing::info!(%address, "listening");
    let state = Arc::new(AppState {
        config: config.clone(),
        telemetry: telemetry.clone(),
        history: history.clone(),
        commands: commands.clone(),
        token,
        ready: ready.clone(),
        reloader: job_files.clone(),
        alerting: alerting.clone(),
        serving: Default::default(),
    });
    let server_stop = shutdown.clone();
    let server = tokio::spawn(async move {
        let app = server::router(state);
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    tokio::spawn(signals(shutdown.clone(), job_files.clone(), ready.clone()));
    tokio::spawn(watch(
        job_files.clone(),
        config.daemon.poll(),
        shutdown.clone(),
        ready.clone(),
    ));
    let delivery = tokio::spawn(Deliverer::for_config(&config, &alerting).run(shutdown.clone()));
    {
        let (alerting, history, files, stop) = (alerting.clone(), history.clone(), job_files.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                }
                let jobs = files.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let (alerting, history) = (alerting.clone(), history.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    check_lateness(&alerting, &jobs, &history, started, SystemClock.now())
                })
                .await;
            }
        });
    }

    let prepared = tokio::select! {
        result = prepare(&config, &options.config_path, &program, &shared, &jobs) => result,
        _ = shutdown.cancelled() => Ok(()),
    };
    if let Err(e) = prepared {
        // The daemon still serves metrics and runs the schedule: a later retraining may mend it.
        tracing::error!(error = %e, "first-start preparation failed");
    }
    ready.store(true, Ordering::SeqCst);
    if !shutdown.is_cancelled() {
        tracing::info!(jobs = jobs.len(), "scheduler started");
        let scheduler = Scheduler::new(shared.clone(), Settings::default(), shutdown.clone());
        scheduler.run(jobs, receiver).await;
    }
    let _ = server.await;
    let _ = delivery.await;
    tracing::info!("stopped");
    Ok(())
}

async fn signals(shutdown: CancellationToken, job_files: Arc<JobFiles>, ready: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot listen for signals");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading job files");
                if ready.load(Ordering::SeqCst) {
                    let files = job_files.clone();
                    let _ = tokio::task::spawn_blocking(move || files.reload()).await;
                }
            }
        }
    }
    shutdown.cancel();
}

/// Polls the job files: a change (edit, new file, removal) reloads them.
async fn watch(
    job_files: Arc<JobFiles>,
    every: std::time::Duration,
    shutdown: CancellationToken,
    ready: Arc<AtomicBool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if !ready.load(Ordering::SeqCst) {
            continue;
        }
        let files = job_files.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if files.changed() {
                tracing::info!("job files changed");
                let _ = files.reload();
            }
        })
        .await;
    }
}

/// Runs `bankml <args>` (the daemon's own binary) to the end.
async fn child(program: &Path, config_path: &Path, args: &[&str]) -> Result<(), DaemonError> {
    tracing::info!(command = %args.join(" "), "first start");
    let status = tokio::process::Command::new(program)
        .arg("--config")
        .arg(config_path)
        .args(args)
        .env("OMP_WAIT_POLICY", "passive")
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| DaemonError::Bootstrap(format!("bankml {}: {e}", args.join(" "))))?;
    if status.success() {
        Ok(())
    } else {
        Err(DaemonError::Bootstrap(format!(
            "bankml {} ended with {status}",
            args.join(" ")
        )))
    }
}

/// First start: data (generated when there is none), champions (trained when missing), and a
/// first benchmark when none has run yet.
async fn prepare(
    config: &EngineConfig,
    config_path: &Path,
    program: &Path,
    shared: &Shared<ProcessExecutor>,
    jobs: &[Job],
) -> Result<(), DaemonError> {
    let no_data = crate::data::snapshot::list_snapshots(&config.data.raw_dir).map_or(true, |s| s.is_empty());
    if no_data {
        if config.daemon.bootstrap_clients == 0 {
            return Err(DaemonError::Bootstrap(format!(
                "no snapshots in {} and daemon.bootstrap_clients is 0",
                config.data.raw_dir.display()
            )));
        }
        let clients = config.daemon.bootstrap_clients.to_string();
        let seed = config.daemon.bootstrap_seed.to_string();
        child(
            program,
            config_path,
            &["generate", "--clients", &clients, "--seed", &seed],
        )
        .await?;
    }
    let registry = Registry::new(&config.models.dir);
    let missing = registry.champions().values().any(Option::is_none);
    if missing {
        child(program, config_path, &["train"]).await?;
    }
    let benchmark = jobs.iter().find(|j| j.kind == JobKind::Benchmark);
    if let Some(job) = benchmark {
        let ran = shared.history.list(Some(&job.name), 1)?.len();
        if ran == 0 {
            runner::run(shared, job, Trigger::Startup, None, &CancellationToken::new()).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{CompareTo, Op, Severity};
    use crate::config::jobs::{CatchUp, Overlap};
    use crate::engine::history::{Trigger, parse_iso};
    use crate::engine::schedule::Schedule;

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
        let state = |job: &str| store.state("job_late", &format!("job={job}")).unwrap().unwrap().state;
        assert_eq!(state("stale"), "firing");
        assert_eq!(state("fresh"), "inactive");
        // Never succeeded, but counted from the daemon's start 10 h ago: late too.
        assert_eq!(state("new"), "firing");
        // A daemon started 20 minutes ago gives a new job its full period first.
        check_lateness(
            &alerting,
            &[hourly("newer")],
            &history,
            now - chrono::Duration::minutes(20),
            now,
        );
        assert_eq!(state("newer"), "inactive");
    }
}
