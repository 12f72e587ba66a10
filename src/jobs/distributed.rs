//! Training the churn model on several workers at once, through XGBoost's own collective.
//!
//! Each worker is a `bankml worker` process holding a share of the clients — the buckets of a
//! [`Layout`](crate::data::buckets::Layout) — from which it builds its own features with the
//! single-process code, then trains one model together with the others (histograms summed by
//! XGBoost's all-reduce). What must be the same on every worker is made so: the design's
//! categories (counts merged), the class balance and the intercept (sums), early stopping
//! (XGBoost's evaluation over all workers). The holdout figures and the calibrator come from
//! every worker's (prediction, outcome) pairs, so they are those of the whole bank. The drift
//! reference and the domain sample come from rank 0's clients, a random share of the bank's.
//!
//! Every step a worker can fail at alone (its buckets, its features) is agreed on before the
//! next, so all fail together with the failing worker named, instead of waiting on it; a
//! worker dying mid-training breaks the others' connections at once, and the launcher stops
//! the rest. Nothing is written to the registry but by rank 0, after the boosting succeeded.

use crate::config::EngineConfig;
use crate::data::buckets::{BucketError, LAYOUT_FILE, Layout, materialize_shard};
use crate::data::history;
use crate::jobs::frames::KeptMonths;
use crate::models::collective::{CollectiveError, Communicator, Peers, Tracker, TrackerAddress};
use crate::models::registry::Registry;
use crate::models::tabular::{self, ModelMeta, TrainError};
use crate::vocab::ModelKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DistributedError {
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Store(#[from] crate::data::store::StoreError),
    #[error(
        "{0} is trained on one machine; distributed training covers the churn model (the others have a row per manager or agency)"
    )]
    NotDistributed(ModelKind),
    #[error("cannot start worker {rank}: {source}")]
    Spawn { rank: usize, source: std::io::Error },
    #[error(
        "worker {rank} {status}; the other workers were stopped and no model was written (the workers' own messages are above)"
    )]
    WorkerFailed { rank: usize, status: String },
}

/// One worker's part in a run.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    pub rank: usize,
    pub workers: usize,
    pub tracker: TrackerAddress,
    /// The bucket layout every worker reads its share of.
    pub layout_dir: PathBuf,
    /// This worker's own folder: its share as snapshot folders, and their kept features.
    pub work_dir: PathBuf,
    /// What every worker must agree on: the hash of the settings file they were started with.
    pub settings_hash: String,
    /// How long a worker waits for the others (joining, each collective operation).
    pub timeout: Duration,
}

/// The settings of a worker's share: `config` with its snapshots and features in `work_dir`.
fn shard_config(config: &EngineConfig, work_dir: &Path) -> EngineConfig {
    let mut shard = config.clone();
    shard.data.raw_dir = work_dir.join("raw");
    shard.data.processed_dir = work_dir.join("processed");
    shard
}

/// A file's hash, or what reading it said.
fn hash_of(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => blake3::hash(&bytes).to_hex()[..16].to_string(),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Runs worker `plan.rank`'s part of training `model`: `Some(meta)` on rank 0 once the model
/// is in the registry, `None` on the others.
pub fn run_worker(
    config: &EngineConfig,
    model: ModelKind,
    plan: &WorkerPlan,
) -> Result<Option<ModelMeta>, DistributedError> {
    let Some(spec) = tabular::spec_of(model).filter(|_| model == ModelKind::Churn) else {
        return Err(DistributedError::NotDistributed(model));
    };
    let peers = Communicator::join(&plan.tracker, plan.rank, plan.workers, plan.timeout)?;
    tracing::info!(rank = plan.rank, workers = plan.workers, "joined the tracker");
    // Same code, same settings, same layout: a worker started from another version or file
    // would train a different model on its share.
    let identity = format!(
        "bankml {}, settings {}, layout {}",
        env!("CARGO_PKG_VERSION"),
        plan.settings_hash,
        hash_of(&plan.layout_dir.join(LAYOUT_FILE))
    );
    let all = peers.gather(identity.as_bytes())?;
    let differing: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(_, theirs)| *theirs != &all[0])
        .map(|(rank, theirs)| format!("worker {rank} runs {}", String::from_utf8_lossy(theirs)))
        .collect();
    if !differing.is_empty() {
        return Err(CollectiveError::Disagreement(format!(
            "the workers disagree: worker 0 runs {}, {}",
            String::from_utf8_lossy(&all[0]),
            differing.join(", ")
        ))
        .into());
    }
    let shard = shard_config(config, &plan.work_dir);
    let read = Layout::read(&plan.layout_dir)
        .and_then(|layout| materialize_shard(&plan.layout_dir, &layout, plan.rank, plan.workers, &shard.data.raw_dir));
    peers.agree("reading the buckets", read.map_err(|e: BucketError| e.to_string()))?;
    let kept = history::ensure(&shard, None, |date| tracing::info!(%date, "features kept"));
    peers.agree(
        "building the features",
        kept.as_ref().map(|_| ()).map_err(ToString::to_string),
    )?;
    let (dates, latest) = kept?;
    let latest = latest.label_inputs_only().map_err(TrainError::from)?;
    let months = KeptMonths::new(&shard, model, dates, &latest);
    // The shard's settings are the run's but for its folders (external memory's pages too).
    let settings = tabular::TrainSettings {
        peers: &peers,
        ..tabular::TrainSettings::of(&shard, model)
    };
    let registry = Registry::new(&config.models.dir);
    Ok(tabular::train_as_worker(spec, &months, settings, &registry, None)?)
}

/// What a finished worker process said.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".into(),
    }
}

/// How likely a failed worker's end is the run's cause, lowest first: killed by a signal (the
/// kernel's OOM killer, an operator, a node going away); then aborted — XGBoost's collective
/// calls `std::terminate` in the workers whose peer vanished (`dmlc::Error`, "Broken pipe"),
/// so an abort is usually the consequence of another worker's end, seen in the same poll;
/// then an exit with a status (a worker's own error, or one that saw a peer fail).
fn cause_first(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGABRT) => 1,
        Some(_) => 0,
        None => 2,
    }
}

/// Runs `workers` local worker processes through a tracker in this process (`command` makes
/// worker `rank`'s, pointed at the tracker); as soon as one fails the others are killed and
/// the run fails, naming it. `on_started` is told each worker's process id.
pub fn launch_processes(
    workers: usize,
    timeout: Duration,
    command: impl Fn(usize, &TrackerAddress) -> Command,
    mut on_started: impl FnMut(usize, u32),
) -> Result<(), DistributedError> {
    let tracker = Tracker::start(workers, "127.0.0.1", 0, timeout)?;
    let address = tracker.address()?;
    let mut children: Vec<(usize, Child)> = Vec::with_capacity(workers);
    let stop_all = |children: &mut Vec<(usize, Child)>| {
        for (_, child) in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    };
    for rank in 0..workers {
        match command(rank, &address).spawn() {
            Ok(child) => {
                on_started(rank, child.id());
                children.push((rank, child));
            }
            Err(source) => {
                stop_all(&mut children);
                return Err(DistributedError::Spawn { rank, source });
            }
        }
    }
    let mut running: Vec<(usize, Child)> = children;
    while !running.is_empty() {
        // (rank, what happened, how likely the cause): see `cause_first`.
        let mut failed: Vec<(usize, String, u8)> = Vec::new();
        running.retain_mut(|(rank, child)| match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) if status.success() => false,
            Ok(Some(status)) => {
                failed.push((*rank, describe(status), cause_first(status)));
                false
            }
            Err(e) => {
                failed.push((*rank, format!("could not be waited for ({e})"), 2));
                false
            }
        });
        failed.sort_by_key(|(rank, _, cause)| (*cause, *rank));
        if let Some((rank, status, _)) = failed.into_iter().next() {
            stop_all(&mut running);
            // The tracker is freed, not waited for: its connections close with it.
            drop(tracker);
            return Err(DistributedError::WorkerFailed { rank, status });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracker.wait()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_killed_worker_is_named_before_the_peers_its_end_aborted() {
        // Wait statuses as the kernel gives them: a signal in the low bits, an exit code above.
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        let aborted = ExitStatus::from_raw(libc::SIGABRT);
        let exited = ExitStatus::from_raw(3 << 8);
        assert_eq!(describe(killed), "was killed by signal 9");
        assert_eq!(describe(exited), "exited with status 3");
        // Seen in one poll: rank 0 aborted by XGBoost (its peer vanished), rank 1 killed.
        let mut failed = [(0, aborted), (1, killed), (2, exited)];
        failed.sort_by_key(|(rank, status)| (cause_first(*status), *rank));
        assert_eq!(failed.map(|(rank, _)| rank), [1, 0, 2]);
    }
}
