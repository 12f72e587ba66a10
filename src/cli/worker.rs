use super::UserError;
use bankml::config::EngineConfig;
use bankml::jobs::distributed::{self, WorkerPlan};
use bankml::models::collective::{Tracker, TrackerAddress};
use bankml::vocab::ModelKind;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One worker of a distributed training run. `bankml train --workers N` starts these itself;
/// a cluster's launcher starts them with the variables it sets: Kubeflow's `DMLC_*`, a
/// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`, Slurm's `SLURM_PROCID` and `SLURM_NTASKS`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The model trained together.
    #[arg(long, value_enum, default_value_t = Together::Churn)]
    pub model: Together,
    /// This worker's rank, 0 to WORKERS-1 (default: DMLC_TASK_ID, JOB_COMPLETION_INDEX or SLURM_PROCID).
    #[arg(long)]
    pub rank: Option<usize>,
    /// How many workers train together (default: DMLC_NUM_WORKER or SLURM_NTASKS).
    #[arg(long)]
    pub workers: Option<usize>,
    /// The tracker, HOST:PORT (default: DMLC_TRACKER_URI and DMLC_TRACKER_PORT).
    #[arg(long)]
    pub tracker: Option<String>,
    /// Rank 0 starts the tracker itself, listening on the tracker's port on every interface
    /// (Kubernetes, Slurm: no process outside the workers).
    #[arg(long)]
    pub start_tracker: bool,
    /// The bucket layout (default: data/buckets beside data.raw_dir).
    #[arg(long)]
    pub buckets: Option<PathBuf>,
    /// This worker's own folder: its share of the snapshots and their features (default:
    /// data/workers/worker-RANK beside data.raw_dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// XGBoost threads of this worker (default: models.boosting.threads). Workers sharing a
    /// machine split its cores: libgomp's spin-waiting makes oversubscribed threads crawl.
    #[arg(long)]
    pub threads: Option<usize>,
    /// How long to wait for the other workers (joining, each exchange).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// The models workers train together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Together {
    Churn,
}

/// The first of `names` set in the environment, parsed.
fn from_env<T: std::str::FromStr>(names: &[&str]) -> Result<Option<T>, UserError> {
    for name in names {
        if let Ok(text) = std::env::var(name) {
            return text.trim().parse().map(Some).map_err(|_| {
                UserError(format!(
                    "{name}={text:?}: expected a whole number (a port for DMLC_TRACKER_PORT)"
                ))
            });
        }
    }
    Ok(None)
}

fn tracker_of(text: &str) -> Result<TrackerAddress, UserError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| UserError(format!("--tracker {text}: expected HOST:PORT")))?;
    let port = port
        .parse()
        .map_err(|_| UserError(format!("--tracker {text}: {port} is not a port")))?;
    Ok(TrackerAddress {
        host: host.into(),
        port,
    })
}

/// The tracker from `DMLC_TRACKER_URI` and `DMLC_TRACKER_PORT`. Some launchers put the port in
/// the URI too (`host:9091`); it is taken from there when the port variable is missing, and
/// refused when the two disagree (a worker would wait for a tracker that is not there).
fn tracker_from_env(uri: Option<String>, port: Option<u16>) -> Result<TrackerAddress, UserError> {
    let missing = |vars: &str| UserError(format!("no tracker: give --tracker or set {vars}"));
    let in_uri = uri.as_deref().and_then(|uri| tracker_of(uri).ok());
    match (uri, port, in_uri) {
        (Some(uri), Some(port), Some(given)) if given.port != port => Err(UserError(format!(
            "DMLC_TRACKER_URI={uri:?} names port {} but DMLC_TRACKER_PORT={port}",
            given.port
        ))),
        (Some(_), _, Some(given)) => Ok(given),
        (Some(host), Some(port), None) => Ok(TrackerAddress { host, port }),
        (Some(_), None, None) => Err(missing("DMLC_TRACKER_PORT (DMLC_TRACKER_URI is set)")),
        (None, Some(_), _) => Err(missing("DMLC_TRACKER_URI (DMLC_TRACKER_PORT is set)")),
        (None, None, _) => Err(missing("DMLC_TRACKER_URI and DMLC_TRACKER_PORT")),
    }
}

/// The settings file's hash (every worker must run with the same one); without a file, the
/// built-in defaults.
pub fn settings_hash(path: &Path) -> anyhow::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(blake3::hash(&bytes).to_hex()[..16].to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("the built-in defaults".into()),
        Err(e) => Err(UserError(format!("{}: {e}", path.display())).into()),
    }
}

/// A worker's folder unless told: `data/workers/worker-<rank>` beside `data/raw`.
pub fn default_work_dir(config: &EngineConfig, rank: usize) -> PathBuf {
    config
        .data
        .raw_dir
        .parent()
        .map_or_else(|| PathBuf::from("workers"), |p| p.join("workers"))
        .join(format!("worker-{rank}"))
}

pub fn run(args: WorkerArgs, config: &EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    let missing = |what: &str, vars: &str| UserError(format!("no {what}: give --{what} or set {vars}"));
    let rank = match args.rank {
        Some(rank) => rank,
        None => from_env(&["DMLC_TASK_ID", "JOB_COMPLETION_INDEX", "SLURM_PROCID"])?
            .ok_or_else(|| missing("rank", "DMLC_TASK_ID, JOB_COMPLETION_INDEX or SLURM_PROCID"))?,
    };
    let workers = match args.workers {
        Some(n) => n,
        None => from_env(&["DMLC_NUM_WORKER", "SLURM_NTASKS"])?
            .ok_or_else(|| missing("workers", "DMLC_NUM_WORKER or SLURM_NTASKS"))?,
    };
    if workers == 0 || rank >= workers {
        return Err(UserError(format!(
            "rank {rank} of {workers} workers: a rank runs from 0 to workers - 1"
        ))
        .into());
    }
    let tracker = match &args.tracker {
        Some(text) => tracker_of(text)?,
        None => tracker_from_env(from_env(&["DMLC_TRACKER_URI"])?, from_env(&["DMLC_TRACKER_PORT"])?)?,
    };
    let model = match args.model {
        Together::Churn => ModelKind::Churn,
    };
    // Rank 0 hosts the tracker where no launcher does; it runs on its own threads until the
    // workers are done.
    let hosted = if args.start_tracker && rank == 0 {
        Some(Tracker::start(workers, "0.0.0.0", tracker.port, args.timeout)?)
    } else {
        None
    };
    let plan = WorkerPlan {
        rank,
        workers,
        tracker,
        layout_dir: args
            .buckets
            .unwrap_or_else(|| super::bucketize::default_layout_dir(config)),
        work_dir: args.work_dir.unwrap_or_else(|| default_work_dir(config, rank)),
        settings_hash: settings_hash(config_path)?,
        timeout: args.timeout,
    };
    let mut config = config.clone();
    if let Some(threads) = args.threads {
        config.models.boosting.threads = threads;
    }
    let meta = distributed::run_worker(&config, model, &plan)?;
    if let Some(tracker) = hosted {
        tracker.wait()?;
    }
    if let Some(meta) = meta {
        println!(
            "{} v{} written by worker 0 of {workers} (holdout AUC {:.4})",
            meta.model,
            meta.version,
            meta.holdout.headline().1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracker_comes_from_dmlc_variables_with_or_without_the_port_in_the_uri() {
        let at = |uri: Option<&str>, port: Option<u16>| {
            tracker_from_env(uri.map(String::from), port).map(|t| format!("{}:{}", t.host, t.port))
        };
        assert_eq!(at(Some("tracker-0"), Some(9091)).unwrap(), "tracker-0:9091");
        assert_eq!(at(Some("10.0.0.5:9091"), None).unwrap(), "10.0.0.5:9091");
        assert_eq!(at(Some("10.0.0.5:9091"), Some(9091)).unwrap(), "10.0.0.5:9091");
        let disagree = at(Some("10.0.0.5:9091"), Some(9092)).unwrap_err().0;
        assert!(
            disagree.contains("port 9091") && disagree.contains("9092"),
            "{disagree}"
        );
        let no_port = at(Some("tracker-0"), None).unwrap_err().0;
        assert!(no_port.contains("DMLC_TRACKER_PORT"), "{no_port}");
        let no_host = at(None, Some(9091)).unwrap_err().0;
        assert!(no_host.contains("DMLC_TRACKER_URI"), "{no_host}");
    }
}
