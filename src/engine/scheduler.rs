//! The scheduling loop: computes each job's next firing (croner, in the job's time zone),
//! sleeps until the earliest, and applies the job's policies — overlap (skip, queue,
//! replace), catch-up after downtime, manual triggers and hot-reloaded job definitions.
//!
//! It reads time only through [`Clock`] and sleeps only through tokio, so tests drive a
//! simulated year under paused time.

use super::history::Trigger;
use super::runner::{self, Executor, Shared};
use crate::config::jobs::{CatchUp, Job, Overlap};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Firings waiting behind a running one (`overlap: queue`); beyond this they are skipped.
const MAX_QUEUED: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerError {
    UnknownJob,
    AlreadyRunning,
    /// The run history refused the run's record; the daemon log says why.
    NotRecorded,
}

/// A firing waiting to start: its trigger, its scheduled time, and (an API trigger) where to
/// send its run id once recorded.
type Firing = (Trigger, Option<DateTime<Utc>>, Option<oneshot::Sender<i64>>);

/// What the rest of the daemon asks of the loop.
pub enum Command {
    /// Run a job now (API).
    Trigger {
        job: String,
        /// The started run's id (for the caller to poll), or why it did not start.
        reply: oneshot::Sender<Result<i64, TriggerError>>,
    },
    /// New job definitions after a reload; running runs go on.
    Replace(Vec<Job>),
    /// Reply with the jobs, their next firing and whether they run (API).
    Describe(oneshot::Sender<Vec<JobStatus>>),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct JobStatus {
    pub name: String,
    pub kind: String,
    pub schedule: String,
    pub timezone: String,
    pub enabled: bool,
    pub running: bool,
    pub queued: usize,
    pub next_run: Option<String>,
}

/// Loop settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Longest sleep between looks at the clock (the wall clock may jump).
    pub max_sleep: Duration,
    /// A firing noticed later than this is treated as missed (the machine slept or hung).
    pub late_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_sleep: Duration::from_secs(30),
            late_after: Duration::from_secs(120),
        }
    }
}

struct Slot {
    job: Job,
    next: Option<DateTime<Utc>>,
    active: Option<CancellationToken>,
    queue: VecDeque<Firing>,
}

pub struct Scheduler<E: Executor> {
    shared: Arc<Shared<E>>,
    settings: Settings,
    slots: BTreeMap<String, Slot>,
    tasks: JoinSet<String>,
    shutdown: CancellationToken,
}

impl<E: Executor> Scheduler<E> {
    pub fn new(shared: Arc<Shared<E>>, settings: Settings, shutdown: CancellationToken) -> Scheduler<E> {
        Scheduler {
            shared,
            settings,
            slots: BTreeMap::new(),
            tasks: JoinSet::new(),
            shutdown,
        }
    }

    /// Runs until `shutdown` fires, then cancels running jobs and waits for them to record
    /// their end.
    pub async fn run(mut self, jobs: Vec<Job>, mut commands: mpsc::Receiver<Command>) {
        let now = self.shared.clock.now();
        for job in jobs {
            self.add(job, now, true);
        }
        loop {
            let now = self.shared.clock.now();
            self.fire_due(now);
            let sleep = self
                .slots
                .values()
                .filter_map(|s| s.next)
                .min()
                .map(|next| (next - now).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(self.settings.max_sleep)
                .min(self.settings.max_sleep);
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tokio::time::sleep(sleep) => {}
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match done {
                        Ok(name) => self.finished(&name),
                        Err(e) => tracing::error!(error = %e, "a run task stopped unexpectedly"),
                    }
                }
                Some(command) = commands.recv() => self.command(command),
            }
        }
        let running = self.tasks.len();
        if running > 0 {
            tracing::info!(running, "stopping: waiting for running jobs to stop");
        }
        // The runs' tokens are children of `shutdown`: they are already cancelled.
        while self.tasks.join_next().await.is_some() {}
        for slot in self.slots.values() {
            if !slot.queue.is_empty() {
                tracing::info!(job = %slot.job.name, queued = slot.queue.len(), "queued firings dropped at shutdown");
            }
        }
    }

    fn add(&mut self, job: Job, now: DateTime<Utc>, starting: bool) {
        self.shared.telemetry.job_known(&job.name);
        // The last success survives a restart: without it a job failing since before the
        // restart would have no age for the `job_late` alert to measure.
        match self.shared.history.last_success(&job.name) {
            Ok(Some(at)) => self.shared.telemetry.job_succeeded_at(&job.name, at.timestamp() as f64),
            Ok(None) => {}
            Err(e) => tracing::warn!(job = %job.name, error = %e, "cannot read the job's last success"),
        }
        let name = job.name.clone();
        let mut slot = Slot {
            next: None,
            active: None,
            queue: VecDeque::new(),
            job,
        };
        if starting && slot.job.enabled {
            self.catch_up(&mut slot, now);
        }
        slot.next = self.next_firing(&slot.job, now);
        self.slots.insert(name.clone(), slot);
        // A catch-up firing was queued before the slot existed: start it now.
        self.start_queued(&[name]);
    }

    /// After downtime: what was missed since the last firing the history knows.
    fn catch_up(&self, slot: &mut Slot, now: DateTime<Utc>) {
        let last = match self.shared.history.last_firing(&slot.job.name) {
            Ok(Some(last)) => last,
            Ok(None) => return, // a new job: nothing was missed
            Err(e) => {
                tracing::error!(job = %slot.job.name, error = %e, "cannot read the run history; no catch-up");
                return;
            }
        };
        let missed = slot.job.schedule.fires_between(last, now);
        let Some(latest) = missed.last().copied() else { return };
        let run_latest = slot.job.catch_up == CatchUp::Latest;
        let not_run = missed.len() - usize::from(run_latest);
        if not_run > 0 {
            self.shared.telemetry.job_missed(&slot.job.name, not_run as u64);
        }
        tracing::info!(
            job = %slot.job.name, missed = missed.len(), catch_up = run_latest,
            "firings missed while the daemon was down"
        );
        if run_latest {
            slot.queue.push_back((Trigger::CatchUp, Some(latest), None));
        }
    }

    fn next_firing(&self, job: &Job, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = if job.enabled {
            job.schedule.next_after(now).ok()
        } else {
            None
        };
        self.shared
            .telemetry
            .next_run(&job.name, next.map(|t| t.timestamp() as f64));
        next
    }

    fn fire_due(&mut self, now: DateTime<Utc>) {
        let late_after = chrono::Duration::from_std(self.settings.late_after).unwrap_or(chrono::Duration::MAX);
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in &names {
            let Some(slot) = self.slots.get_mut(name) else { continue };
            let mut due = Vec::new();
            while let Some(next) = slot.next.filter(|n| *n <= now) {
                due.push(next);
                slot.next = slot.job.schedule.next_after(next).ok();
            }
            let Some(latest) = due.last().copied() else { continue };
            self.shared
                .telemetry
                .next_run(name, slot.next.map(|t| t.timestamp() as f64));
            let on_time = now - latest <= late_after;
            let (fire, trigger) = match (on_time, slot.job.catch_up) {
                (true, _) => (true, Trigger::Schedule),
                (false, CatchUp::Latest) => (true, Trigger::CatchUp),
                (false, CatchUp::None) => (false, Trigger::Schedule),
            };
            let missed = due.len() - usize::from(fire);
            if missed > 0 {
                tracing::warn!(job = %name, missed, "firings missed (the clock jumped or the daemon was stalled)");
                self.shared.telemetry.job_missed(name, missed as u64);
            }
            if fire {
                self.fire(name, trigger, latest, now);
            }
        }
    }

    /// A firing came: start it, or apply the overlap policy.
    fn fire(&mut self, name: &str, trigger: Trigger, at: DateTime<Utc>, now: DateTime<Utc>) {
        let Some(slot) = self.slots.get_mut(name) else { return };
        let Some(active) = &slot.active else {
            slot.queue.push_back((trigger, Some(at), None));
            self.start_queued(&[name.to_string()]);
            return;
        };
        match slot.job.overlap {
            Overlap::Skip => self.skip(
                name,
                trigger,
                at,
                now,
                "the previous run was still going (overlap: skip)",
            ),
            Overlap::Queue if slot.queue.len() >= MAX_QUEUED => self.skip(
                name,
                trigger,
                at,
                now,
                "the queue of waiting firings is full (overlap: queue)",
            ),
            Overlap::Queue => slot.queue.push_back((trigger, Some(at), None)),
            Overlap::Replace => {
                tracing::info!(job = %name, "replacing the running run (overlap: replace)");
                active.cancel();
                slot.queue.clear();
                slot.queue.push_back((trigger, Some(at), None));
            }
        }
    }

    fn skip(&self, name: &str, trigger: Trigger, at: DateTime<Utc>, now: DateTime<Utc>, reason: &str) {
        tracing::warn!(job = %name, scheduled_at = %at, reason, "firing skipped");
        if let Err(e) = self.shared.history.skipped(name, trigger, at, now, reason) {
            tracing::error!(job = %name, error = %e, "cannot record a skipped firing");
        }
        self.shared.telemetry.job_skipped(name);
    }

    /// Starts the first queued firing of each named job that is idle.
    fn start_queued(&mut self, names: &[String]) {
        for name in names {
            let Some(slot) = self.slots.get_mut(name) else { continue };
            if slot.active.is_some() {
                continue;
            }
            let Some((trigger, at, started)) = slot.queue.pop_front() else {
                continue;
            };
            let stop = self.shutdown.child_token();
            slot.active = Some(stop.clone());
            let (shared, job) = (self.shared.clone(), slot.job.clone());
            self.tasks.spawn(async move {
                runner::run(&shared, &job, trigger, at, &stop, started).await;
                job.name
            });
        }
    }

    fn finished(&mut self, name: &str) {
        if let Some(slot) = self.slots.get_mut(name) {
            slot.active = None;
        }
        self.start_queued(&[name.to_string()]);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Trigger { job, reply } => {
                let (started, id) = oneshot::channel();
                let result = match self.slots.get_mut(&job) {
                    None => Err(TriggerError::UnknownJob),
                    Some(slot) if slot.active.is_some() => Err(TriggerError::AlreadyRunning),
                    Some(slot) => {
                        slot.queue.push_front((Trigger::Api, None, Some(started)));
                        Ok(())
                    }
                };
                match result {
                    Ok(()) => {
                        self.start_queued(&[job]);
                        // The id comes once the run is recorded, inside the run's own task.
                        tokio::spawn(async move {
                            let _ = reply.send(id.await.map_err(|_| TriggerError::NotRecorded));
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Replace(jobs) => self.replace(jobs),
            Command::Describe(reply) => {
                let statuses = self
                    .slots
                    .values()
                    .map(|s| JobStatus {
                        name: s.job.name.clone(),
                        kind: format!("{:?}", s.job.kind).to_lowercase(),
                        schedule: s.job.schedule.expression.clone(),
                        timezone: s.job.schedule.zone().name().to_string(),
                        enabled: s.job.enabled,
                        running: s.active.is_some(),
                        queued: s.queue.len(),
                        next_run: s.next.map(crate::vocab::time::iso),
                    })
                    .collect();
                let _ = reply.send(statuses);
            }
        }
    }

    /// A reload: changed jobs take their new definition (a running run finishes under the old
    /// one), new jobs start from now, removed jobs stop being scheduled.
    fn replace(&mut self, jobs: Vec<Job>) {
        let now = self.shared.clock.now();
        let keep: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
        let removed: Vec<String> = self.slots.keys().filter(|k| !keep.contains(k)).cloned().collect();
        for name in removed {
            if let Some(slot) = self.slots.remove(&name) {
                tracing::info!(job = %name, "job removed");
                self.shared.telemetry.next_run(&name, None);
                // A running run goes on; it is no longer followed by queued ones.
                drop(slot);
            }
        }
        for job in jobs {
            match self.slots.get_mut(&job.name) {
                Some(slot) => {
                    let timing_changed = slot.job.schedule.expression != job.schedule.expression
                        || slot.job.schedule.zone() != job.schedule.zone()
                        || slot.job.enabled != job.enabled;
                    slot.job = job;
                    if timing_changed {
                        tracing::info!(job = %slot.job.name, schedule = %slot.job.schedule.expression, "schedule changed");
                        let job = slot.job.clone();
                        let next = self.next_firing(&job, now);
                        if let Some(slot) = self.slots.get_mut(&job.name) {
                            slot.next = next;
                        }
                    }
                }
                None => {
                    tracing::info!(job = %job.name, "job added");
                    self.add(job, now, false);
                }
            }
        }
    }
}
