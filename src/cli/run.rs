//! `bankml run JOB`: one run of a job in the foreground, through the same runner as the daemon
//! (history, timeout, retries; the attempt itself a child process writing its report).

use super::UserError;
use bankml::config::EngineConfig;
use bankml::config::jobs::{JobKind, load_jobs};
use bankml::engine::clock::SystemClock;
use bankml::engine::history::{RunHistory, RunState, Trigger};
use bankml::engine::process::ProcessExecutor;
use bankml::engine::runner::{self, Shared};
use bankml::jobs::{self, Context};
use bankml::models::registry::Registry;
use bankml::report::{self, Report};
use clap::Args;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job: a file name in the jobs folder without `.yaml` (e.g. daily-benchmark).
    pub job: String,
    /// Internal (the daemon's attempts): run as attempt RUN_ID of the run history, in this
    /// process, without recording it.
    #[arg(long, hide = true)]
    pub run_id: Option<i64>,
    /// Internal: the job's kind, as the daemon last validated it.
    #[arg(long, hide = true, requires = "run_id")]
    pub kind: Option<String>,
    /// Internal: the job's params as JSON, as the daemon last validated them.
    #[arg(long, hide = true, requires = "run_id")]
    pub params: Option<String>,
    /// Internal: run as of this snapshot (`bankml backfill`).
    #[arg(long, hide = true, requires = "run_id")]
    pub snapshot: Option<String>,
    /// When another process (the daemon) is running this job, wait for it to finish and run
    /// then, instead of refusing.
    #[arg(long)]
    pub wait: bool,
}

impl RunArgs {
    /// Whether this run trains models: a child attempt (its `--kind` given) of the monthly
    /// retraining or the weekly validation.
    pub fn trains(&self) -> bool {
        self.kind
            .as_deref()
            .and_then(|text| parse_kind(text).ok())
            .is_some_and(|kind| matches!(kind, JobKind::Retrain | JobKind::Validation))
    }
}

/// A job kind as `--kind` gives it (the name the job files use).
fn parse_kind(text: &str) -> Result<JobKind, UserError> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| UserError(format!("--kind {text}: unknown job kind")))
}

pub fn run(args: RunArgs, config: &EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    match args.run_id {
        Some(id) => attempt(&args, id, config),
        None => foreground(&args.job, args.wait, config, config_path),
    }
}

fn foreground(name: &str, wait: bool, config: &EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    let jobs = load_jobs(&config.data.jobs_dir)
        .map_err(|errors| UserError(format!("invalid job files:\n  {}", errors.join("\n  "))))?;
    let job = jobs.iter().find(|j| j.name == name).ok_or_else(|| {
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        UserError(format!(
            "no job named {name} in {} (jobs: {})",
            config.data.jobs_dir.display(),
            names.join(", ")
        ))
    })?;
    let history = Arc::new(RunHistory::open(&config.data.history)?);
    let telemetry = Arc::new(bankml::telemetry::Telemetry::new());
    let alerting =
        bankml::alerts::observer::alerting_for(config, telemetry.clone()).map_err(|e| UserError(e.to_string()))?;
    let shared = Shared {
        executor: ProcessExecutor {
            forward_output: true,
            ..ProcessExecutor::new(std::env::current_exe()?, config_path.to_path_buf(), config)
        },
        history: history.clone(),
        clock: Arc::new(SystemClock),
        telemetry,
        observer: Some(Arc::new(bankml::alerts::observer::AlertObserver::new(
            alerting.clone(),
            Arc::new(config.clone()),
            history.clone(),
        ))),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let state = runtime.block_on(async {
        let stop = CancellationToken::new();
        let interrupt = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.cancel();
            }
        });
        if wait {
            let mut told = false;
            while let Ok(Some(holder)) = history.job_holder(name) {
                if !told {
                    eprintln!("waiting for {name}: already running in another process, {holder}");
                    told = true;
                }
                tokio::select! {
                    _ = stop.cancelled() => return RunState::Cancelled,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        }
        let state = runner::run(&shared, job, Trigger::Manual, None, &stop, None).await;
        bankml::alerts::observer::deliver_once(config, &alerting).await;
        state
    });
    let last = history.list(Some(name), 1)?.into_iter().next();
    if let Some(run) = &last {
        println!(
            "{name}: run {} {} in {:.1} s",
            run.id,
            run.status.name(),
            run.seconds.unwrap_or(0.0)
        );
        if let Some(path) = &run.report_path {
            println!("report: {path}");
        }
    }
    match state {
        RunState::Succeeded => Ok(()),
        RunState::Skipped => Err(anyhow::anyhow!(
            "{name} not run: {} (`bankml run {name} --wait` runs it once that run ends)",
            last.and_then(|r| r.error).unwrap_or_default()
        )),
        other => {
            let error = last.and_then(|r| r.error).unwrap_or_default();
            let message = format!("{name} {}: {error}", other.name());
            // Refused input exits 2 here too, as every command that reads exports does.
            if error.starts_with(bankml::engine::process::BAD_INPUT) {
                Err(UserError(message).into())
            } else {
                Err(anyhow::anyhow!(message))
            }
        }
    }
}

/// One attempt in this process: run the job, write its report.
fn attempt(args: &RunArgs, run_id: i64, config: &EngineConfig) -> anyhow::Result<()> {
    let kind: JobKind = match args.kind.as_deref() {
        Some(text) => parse_kind(text)?,
        None => {
            let jobs = load_jobs(&config.data.jobs_dir).map_err(|e| UserError(e.join("; ")))?;
            jobs.iter()
                .find(|j| j.name == args.job)
                .map(|j| j.kind)
                .ok_or_else(|| UserError(format!("no job named {}", args.job)))?
        }
    };
    let params: BTreeMap<String, serde_json::Value> = match &args.params {
        Some(text) => serde_json::from_str(text).map_err(|e| UserError(format!("--params: {e}")))?,
        None => BTreeMap::new(),
    };
    // The previous successful run's summary, for stability checks (weekly validation).
    let previous = RunHistory::open(&config.data.history)
        .ok()
        .and_then(|h| h.latest_report(&args.job).ok().flatten())
        .and_then(|path| report::read(&path).ok())
        .map(|r| r.outcome.summary);
    let context = Context {
        params,
        previous,
        snapshot: args.snapshot.clone(),
        ..Context::new(config)
    };
    let outcome = jobs::run(kind, &context)?;
    let registry = Registry::new(&config.models.dir);
    let models = registry.champions();
    let dir = report::run_dir(&config.data.reports_dir, &args.job, run_id);
    let past = report::past(&config.data.reports_dir, &args.job, run_id, 30);
    let checks = checks(config, &args.job);
    let path = report::write_all(
        &dir,
        &Report {
            run_id,
            job: args.job.clone(),
            kind: format!("{kind:?}").to_lowercase(),
            models,
            outcome,
        },
        &past,
        &checks,
    )?;
    eprintln!("report written: {}", path.display());
    Ok(())
}

/// The alert rules watching `job`'s figures, for the report to show beside them. The rules
/// were validated when the daemon loaded them; a file that does not load now shows none
/// (and says so) rather than failing the run.
fn checks(config: &EngineConfig, job: &str) -> Vec<report::Check> {
    let receivers: Vec<String> = config.alerting.receivers.keys().cloned().collect();
    let path = config.data.alerts_dir.join("rules.yaml");
    if !path.exists() {
        return Vec::new();
    }
    match bankml::alerts::rules::load_rules(&path, &receivers) {
        Ok(rules) => rules
            .into_iter()
            .filter(|r| r.job.as_deref().is_none_or(|j| j == job))
            .map(|r| report::Check {
                rule: r.name,
                observation: r.observation,
                labels: r.labels,
                op: r.op,
                threshold: r.threshold,
                compare_to: r.compare_to,
            })
            .collect(),
        Err(problems) => {
            eprintln!("the report shows no rule beside its figures: {}", problems.join("; "));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// What the process executor writes (`--kind` the kind's lower-case name) is what `trains`
    /// reads: the retraining and validation attempts train, the others and a foreground run not.
    #[test]
    fn retraining_and_validation_attempts_train() {
        let trains = |extra: &[&str]| {
            let args = [&["bankml", "run", "some-job"][..], extra].concat();
            match crate::cli::Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(crate::cli::Command::Run(run)) => run.trains(),
                other => panic!("not a run: {other:?}"),
            }
        };
        assert!(trains(&["--run-id", "1", "--kind", "retrain"]));
        assert!(trains(&["--run-id", "1", "--kind", "validation"]));
        assert!(!trains(&["--run-id", "1", "--kind", "benchmark"]));
        assert!(!trains(&["--run-id", "1", "--kind", "scoring"]));
        assert!(!trains(&[]));
    }
}
