//! The first start on an empty project: the demo bank generated when there is no data, the
//! champions trained when missing, and a first benchmark and business run when none has run — each step the
//! daemon's own binary as a child process, as a later scheduled job would be.

use super::DaemonError;
use crate::config::EngineConfig;
use crate::config::jobs::{Job, JobKind};
use crate::engine::history::Trigger;
use crate::engine::process::ProcessExecutor;
use crate::engine::runner::{self, Shared};
use crate::models::boosted::OPENMP_SLEEPS_WHEN_IDLE;
use crate::models::registry::Registry;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Runs `bankml <args>` (the daemon's own binary) to the end.
async fn child(program: &Path, config_path: &Path, args: &[&str]) -> Result<(), DaemonError> {
    tracing::info!(command = %args.join(" "), "first start");
    let status = tokio::process::Command::new(program)
        .arg("--config")
        .arg(config_path)
        .args(args)
        .env(OPENMP_SLEEPS_WHEN_IDLE.0, OPENMP_SLEEPS_WHEN_IDLE.1)
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
pub async fn prepare(
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
            // The demo bank ran campaigns on its lists, so the business job has something to measure.
            &[
                "generate",
                "--clients",
                &clients,
                "--seed",
                &seed,
                "--campaigns",
                "better",
            ],
        )
        .await?;
    }
    let registry = Registry::new(&config.models.dir);
    let missing = registry.champions().values().any(Option::is_none);
    if missing {
        child(program, config_path, &["train"]).await?;
    }
    // A first benchmark, and the monthly business figures (seconds), when none has run yet.
    for kind in [JobKind::Benchmark, JobKind::Business] {
        let Some(job) = jobs.iter().find(|j| j.kind == kind) else {
            continue;
        };
        let ran = shared.history.list(Some(&job.name), 1)?.len();
        if ran == 0 {
            runner::run(shared, job, Trigger::Startup, None, &CancellationToken::new(), None).await;
        }
    }
    Ok(())
}
