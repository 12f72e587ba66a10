//! `bankml daemon`: the scheduler, the run history, the metrics, the HTTP server, hot reload
//! and signals, wired together. On a first start without data it generates the demo bank,
//! trains the first champions and runs a first benchmark.
//!
//! The shape is mini-redis's: [`run`] builds what the tasks share, then starts named tasks —
//! each a struct with its own `run(self)` — that all stop on one cancellation token:
//! [`HttpServer`], [`reload::SignalListener`], [`reload::ReloadWatcher`], the alert
//! [`Deliverer`], [`LatenessCheck`], and last the scheduler in the foreground.

mod first_start;
pub mod housekeeping;
mod reload;

use crate::alerts::Alerting;
use crate::alerts::deliver::Deliverer;
use crate::alerts::observer::{AlertObserver, check_lateness};
use crate::alerts::store::AlertStore;
use crate::config::EngineConfig;
use crate::config::jobs::Job;
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::history::{HistoryError, RunHistory};
use crate::engine::process::ProcessExecutor;
use crate::engine::runner::Shared;
use crate::engine::scheduler::{Scheduler, Settings};
use crate::server::{self, AppState};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use reload::{JobFiles, ReloadWatcher, SignalListener, load_all};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
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
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot find the bankml binary to run jobs with: {0}")]
    Program(std::io::Error),
    #[error("first start: {0}")]
    Bootstrap(String),
}

pub struct DaemonOptions {
    pub config_path: PathBuf,
    /// Overrides `daemon.listen`.
    pub listen: Option<SocketAddr>,
}

fn unix_now() -> f64 {
    crate::vocab::time::unix_seconds(SystemClock.now())
}

/// Starts `task` on the runtime under `name`; its end is logged with the name.
fn spawn<F>(name: &'static str, task: F) -> JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        task.await;
        tracing::debug!(task = name, "task stopped");
    })
}

/// Task: the HTTP server (metrics, health, API, console), until shutdown. Its own connection
/// loop rather than `axum::serve`, for the limits a slow or hostile client meets
/// (`daemon.http`): a header-read timeout (also closing idle kept-alive connections) and
/// caps on the request head's size and header count.
struct HttpServer {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
}

impl HttpServer {
    /// How long open connections get to finish after shutdown begins.
    const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

    async fn run(self) {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let limits = self.state.config.daemon.http;
        let app = server::router(self.state);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_header_size(limits.max_header_bytes)
            .max_headers(limits.max_headers);
        loop {
            let stream = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, breathe, go on.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection closed");
                }
            });
        }
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(Self::DRAIN) => tracing::debug!("connections still open at shutdown"),
        }
    }
}

/// Task: every 30 s, `job_late` for every job through the alert rules.
struct LatenessCheck {
    alerting: Arc<Alerting>,
    history: Arc<RunHistory>,
    files: Arc<JobFiles>,
    started: DateTime<Utc>,
    shutdown: CancellationToken,
}

impl LatenessCheck {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(30);

    async fn run(self) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Self::EVERY) => {}
            }
            let jobs = self.files.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let (alerting, history, started) = (self.alerting.clone(), self.history.clone(), self.started);
            let _ = tokio::task::spawn_blocking(move || {
                check_lateness(&alerting, &jobs, &history, started, SystemClock.now())
            })
            .await;
        }
    }
}

/// The API token from the environment variable the config names; `None` when unset or empty.
fn api_token(config: &EngineConfig) -> Option<String> {
    let token = std::env::var(&config.daemon.api_token_env)
        .ok()
        .filter(|t| !t.trim().is_empty());
    if token.is_none() {
        tracing::warn!(
            variable = %config.daemon.api_token_env,
            "no API token set: triggering and reloading over HTTP are refused"
        );
    }
    token
}

pub async fn run(mut config: EngineConfig, options: DaemonOptions) -> Result<(), DaemonError> {
    // `--listen` moves the daemon, and with it the links in its notifications.
    if let Some(listen) = options.listen {
        config.daemon.listen = listen;
    }
    let config = Arc::new(config);
    let receivers: Vec<String> = config.alerting.receivers.keys().cloned().collect();
    let rules_path = config.data.alerts_dir.join("rules.yaml");
    let (jobs, rules) = load_all(&config.data.jobs_dir, &rules_path, &receivers).map_err(DaemonError::Jobs)?;
    let started = SystemClock.now();
    let history = Arc::new(RunHistory::open(&config.data.history)?);
    let interrupted = history.mark_interrupted(started)?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "runs cut off by the previous stop are marked interrupted"
        );
    }
    // Nothing runs yet: whatever a killed run left half-written goes now.
    housekeeping::sweep(&config);
    let telemetry = Arc::new(Telemetry::new());
    telemetry.reload(true, unix_now());
    let store = Arc::new(AlertStore::open(&config.data.history)?);
    let alerting = Arc::new(Alerting::new(store, rules, telemetry.clone()));
    alerting.refresh_gauges();
    tracing::info!(
        rules = alerting.rule_count(),
        receivers = receivers.len(),
        "alert rules loaded"
    );
    let program = std::env::current_exe().map_err(DaemonError::Program)?;
    let shared = Arc::new(Shared {
        executor: ProcessExecutor::new(program.clone(), options.config_path.clone(), &config),
        history: history.clone(),
        clock: Arc::new(SystemClock),
        telemetry: telemetry.clone(),
        observer: Some(Arc::new(housekeeping::Housekeeping {
            config: config.clone(),
            next: Some(Arc::new(AlertObserver::new(
                alerting.clone(),
                config.clone(),
                history.clone(),
            ))),
        })),
    });
    let (commands, scheduler_commands) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let files = Arc::new(JobFiles {
        dir: config.data.jobs_dir.clone(),
        rules: rules_path,
        receivers,
        commands: commands.clone(),
        telemetry: telemetry.clone(),
        alerting: alerting.clone(),
        current: Mutex::new(jobs.clone()),
        seen: Mutex::new(0),
    });
    *files.seen.lock().unwrap_or_else(|p| p.into_inner()) = files.fingerprint();

    let address = config.daemon.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| DaemonError::Listen { address, source })?;
    tracing::info!(%address, "listening");
    let state = Arc::new(AppState {
        config: config.clone(),
        telemetry: telemetry.clone(),
        history: history.clone(),
        commands,
        token: api_token(&config),
        ready: ready.clone(),
        reloader: files.clone(),
        alerting: alerting.clone(),
        serving: Default::default(),
    });
    let http = spawn(
        "http",
        HttpServer {
            listener,
            state,
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    spawn(
        "signals",
        SignalListener {
            files: files.clone(),
            shutdown: shutdown.clone(),
            ready: ready.clone(),
        }
        .run(),
    );
    spawn(
        "reload",
        ReloadWatcher {
            files: files.clone(),
            every: config.daemon.reload_poll,
            shutdown: shutdown.clone(),
            ready: ready.clone(),
        }
        .run(),
    );
    let delivery = spawn(
        "delivery",
        Deliverer::for_config(&config, &alerting).run(shutdown.clone()),
    );
    spawn(
        "lateness",
        LatenessCheck {
            alerting,
            history,
            files,
            started,
            shutdown: shutdown.clone(),
        }
        .run(),
    );

    let prepared = tokio::select! {
        result = first_start::prepare(&config, &options.config_path, &program, &shared, &jobs) => result,
        _ = shutdown.cancelled() => Ok(()),
    };
    if let Err(e) = prepared {
        // The daemon still serves metrics and runs the schedule: a later retraining may mend it.
        tracing::error!(error = %e, "first-start preparation failed");
    }
    tracing::info!(%address, "ready");
    ready.store(true, Ordering::SeqCst);
    run_scheduler(shared, jobs, scheduler_commands, &shutdown).await;
    let _ = http.await;
    let _ = delivery.await;
    tracing::info!("stopped");
    Ok(())
}

/// The scheduler in the foreground, until shutdown.
async fn run_scheduler(
    shared: Arc<Shared<ProcessExecutor>>,
    jobs: Vec<Job>,
    commands: mpsc::Receiver<crate::engine::scheduler::Command>,
    shutdown: &CancellationToken,
) {
    if shutdown.is_cancelled() {
        return;
    }
    tracing::info!(jobs = jobs.len(), "scheduler started");
    Scheduler::new(shared, Settings::default(), shutdown.clone())
        .run(jobs, commands)
        .await;
}
