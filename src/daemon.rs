//! `bankml daemon`: wires the scheduler, the run history, the metrics, the HTTP server, hot
//! reload (file polling, SIGHUP, API) and signals together. On a first start without data it
//! generates the demo bank, trains the first champions and runs a first benchmark.

use crate::config::EngineConfig;
use crate::config::jobs::{Job, JobKind, load_jobs};
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::history::{HistoryError, RunHistory, Trigger};
use crate::engine::process::ProcessExecutor;
use crate::engine::runner::{self, Shared};
use crate::engine::scheduler::{Command, Scheduler, Settings};
use crate::models::registry::{MODELS, Registry};
use crate::server::{self, AppState, Reloader};
use crate::telemetry::Telemetry;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid job files:\n  {}", .0.join("\n  "))]
    Jobs(Vec<String>),
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

/// Job files of the jobs folder, re-read on change; a bad edit keeps the running jobs.
struct JobFiles {
    dir: PathBuf,
    commands: mpsc::Sender<Command>,
    telemetry: Arc<Telemetry>,
    seen: Mutex<u64>,
}

/// A hash of the job files' names and contents: changes when any file is edited, added or removed.
fn fingerprint(dir: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    for path in paths {
        path.hash(&mut hasher);
        std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

fn unix_now() -> f64 {
    SystemClock.now().timestamp_millis() as f64 / 1000.0
}

impl Reloader for JobFiles {
    fn reload(&self) -> Result<usize, Vec<String>> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = fingerprint(&self.dir);
        match load_jobs(&self.dir) {
            Ok(jobs) => {
                let count = jobs.len();
                if self.commands.blocking_send(Command::Replace(jobs)).is_err() {
                    return Err(vec!["the scheduler is not running".into()]);
                }
                self.telemetry.reload(true, unix_now());
                tracing::info!(jobs = count, "job files reloaded");
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
    fn changed(&self) -> bool {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) != fingerprint(&self.dir)
    }
}

pub async fn run(config: EngineConfig, options: DaemonOptions) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let jobs = load_jobs(&config.data.jobs_dir).map_err(DaemonError::Jobs)?;
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
    });
    let (commands, receiver) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let job_files = Arc::new(JobFiles {
        dir: config.data.jobs_dir.clone(),
        commands: commands.clone(),
        telemetry: telemetry.clone(),
        seen: Mutex::new(fingerprint(&config.data.jobs_dir)),
    });

    let address = options.listen.unwrap_or_else(|| config.daemon.listen.clone());
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| DaemonError::Listen {
            address: address.clone(),
            source,
        })?;
    tracing::info!(%address, "listening");
    let state = Arc::new(AppState::new(
        config.clone(),
        telemetry.clone(),
        history.clone(),
        commands.clone(),
        token,
        ready.clone(),
        job_files.clone(),
    ));
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
    let missing = MODELS
        .iter()
        .any(|m| registry.aliases(m).map_or(true, |a| a.champion.is_none()));
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
