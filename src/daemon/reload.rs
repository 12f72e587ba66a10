//! Hot reload of the job files and alert rules: polled for changes, and on SIGHUP or
//! `POST /api/v1/reload`. A valid edit takes effect at once; an invalid one is logged with every
//! problem's place, counted, and the running schedule and rules stay.

use super::unix_now;
use crate::alerts::Alerting;
use crate::alerts::rules::{Rule, load_rules};
use crate::config::jobs::{Job, load_jobs};
use crate::engine::scheduler::Command;
use crate::server::Reloader;
use crate::telemetry::Telemetry;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The job files and the alert rules, re-read on change; a bad edit keeps the running ones.
pub struct JobFiles {
    pub dir: PathBuf,
    pub rules: PathBuf,
    pub receivers: Vec<String>,
    pub commands: mpsc::Sender<Command>,
    pub telemetry: Arc<Telemetry>,
    pub alerting: Arc<Alerting>,
    /// The jobs in force (for the lateness check).
    pub current: Mutex<Vec<Job>>,
    pub seen: Mutex<u64>,
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
pub fn load_all(jobs_dir: &Path, rules: &Path, receivers: &[String]) -> Result<(Vec<Job>, Vec<Rule>), Vec<String>> {
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
    pub fn fingerprint(&self) -> u64 {
        let alerts_dir = self.rules.parent().unwrap_or(Path::new("."));
        fingerprint(&[&self.dir, alerts_dir])
    }

    fn changed(&self) -> bool {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) != self.fingerprint()
    }
}

/// Task: polls the job files every `every`; a change (edit, new file, removal) reloads them.
pub struct ReloadWatcher {
    pub files: Arc<JobFiles>,
    pub every: std::time::Duration,
    pub shutdown: CancellationToken,
    pub ready: Arc<AtomicBool>,
}

impl ReloadWatcher {
    pub async fn run(self) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            if !self.ready.load(Ordering::SeqCst) {
                continue;
            }
            let files = self.files.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if files.changed() {
                    tracing::info!("job files changed");
                    let _ = files.reload();
                }
            })
            .await;
        }
    }
}

/// Task: SIGTERM and SIGINT stop the daemon; SIGHUP reloads the job files.
pub struct SignalListener {
    pub files: Arc<JobFiles>,
    pub shutdown: CancellationToken,
    pub ready: Arc<AtomicBool>,
}

impl SignalListener {
    pub async fn run(self) {
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
                    if self.ready.load(Ordering::SeqCst) {
                        let files = self.files.clone();
                        let _ = tokio::task::spawn_blocking(move || files.reload()).await;
                    }
                }
            }
        }
        self.shutdown.cancel();
    }
}
