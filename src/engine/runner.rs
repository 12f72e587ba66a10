//! One run of a job: attempts with a timeout each, retries with exponential backoff, every
//! attempt recorded in the run history and in the metrics.

use super::clock::Clock;
use super::history::{RunHistory, RunState, Trigger};
use crate::config::jobs::Job;
use crate::telemetry::Telemetry;
use crate::vocab::Observation;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub state: RunState,
    pub error: Option<String>,
    pub report: Option<PathBuf>,
    pub observations: Vec<Observation>,
    /// The attempt refused its input (a bad export, a config problem: exit code 2). Retrying
    /// would fail the same way and only delay the alert; a person has to fix the input.
    pub bad_input: bool,
}

impl AttemptReport {
    pub fn failed(error: impl Into<String>) -> AttemptReport {
        AttemptReport {
            state: RunState::Failed,
            error: Some(error.into()),
            report: None,
            observations: Vec::new(),
            bad_input: false,
        }
    }

    /// A failed attempt that refused its input.
    pub fn refused_input(error: impl Into<String>) -> AttemptReport {
        AttemptReport {
            bad_input: true,
            ..AttemptReport::failed(error)
        }
    }

    pub fn cancelled() -> AttemptReport {
        AttemptReport {
            state: RunState::Cancelled,
            error: Some("cancelled".into()),
            report: None,
            observations: Vec::new(),
            bad_input: false,
        }
    }
}

/// Runs one attempt of a job. When `cancel` fires (timeout, shutdown, replacement) the attempt
/// must stop promptly and report `Cancelled`.
pub trait Executor: Send + Sync + 'static {
    fn execute(&self, job: Job, run_id: i64, cancel: CancellationToken) -> impl Future<Output = AttemptReport> + Send;
}

/// Told the outcome of every run (after its last attempt): the daemon evaluates alert rules here.
pub trait RunObserver: Send + Sync + 'static {
    fn finished(&self, job: &Job, run_id: i64, report: &AttemptReport);
}

/// What the runner needs around the executor.
pub struct Shared<E> {
    pub executor: E,
    pub history: Arc<RunHistory>,
    pub clock: Arc<dyn Clock>,
    pub telemetry: Arc<Telemetry>,
    pub observer: Option<Arc<dyn RunObserver>>,
}

fn unix(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

/// Wait before retry `attempt + 1`: the job's backoff, doubled for each earlier retry.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20))
}

/// Runs `job` with its retries until an attempt succeeds, the retries are spent, or `stop`
/// fires (shutdown or replacement). Returns the last attempt's state.
/// `recorded` hears the first attempt's run id as soon as it is recorded (an API trigger
/// answers with it, for the caller to poll).
pub async fn run<E: Executor>(
    shared: &Shared<E>,
    job: &Job,
    trigger: Trigger,
    scheduled_at: Option<DateTime<Utc>>,
    stop: &CancellationToken,
    recorded: Option<tokio::sync::oneshot::Sender<i64>>,
) -> RunState {
    // One runner per job across processes: the daemon and `bankml run` in a terminal.
    let now = shared.clock.now();
    match shared.history.lock_job(&job.name, now) {
        Ok(Ok(())) => {}
        Ok(Err(holder)) => {
            let reason = format!("already running in another process: {holder}");
            tracing::warn!(job = %job.name, %reason, "run skipped");
            match shared
                .history
                .skipped(&job.name, trigger, scheduled_at.unwrap_or(now), now, &reason)
            {
                Ok(id) => {
                    if let Some(recorded) = recorded {
                        let _ = recorded.send(id);
                    }
                }
                Err(e) => tracing::error!(job = %job.name, error = %e, "cannot record the skipped run"),
            }
            shared.telemetry.job_skipped(&job.name);
            return RunState::Skipped;
        }
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "cannot take the job's lock; not running it");
            return RunState::Failed;
        }
    }
    let state = attempts(shared, job, trigger, scheduled_at, stop, recorded).await;
    if let Err(e) = shared.history.unlock_job(&job.name) {
        tracing::error!(job = %job.name, error = %e, "cannot release the job's lock");
    }
    state
}

/// The attempts of one run, under the job's lock.
async fn attempts<E: Executor>(
    shared: &Shared<E>,
    job: &Job,
    trigger: Trigger,
    scheduled_at: Option<DateTime<Utc>>,
    stop: &CancellationToken,
    mut recorded: Option<tokio::sync::oneshot::Sender<i64>>,
) -> RunState {
    let mut state = RunState::Failed;
    let mut last: Option<(i64, AttemptReport)> = None;
    for attempt in 1..=job.retries.saturating_add(1) {
        let started = shared.clock.now();
        let id = match shared.history.start(&job.name, trigger, scheduled_at, attempt, started) {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(job = %job.name, error = %e, "cannot record the run; not running it");
                return RunState::Failed;
            }
        };
        tracing::info!(job = %job.name, run = id, attempt, trigger = trigger.name(), "run started");
        if let Some(recorded) = recorded.take() {
            let _ = recorded.send(id);
        }
        shared.telemetry.job_started(&job.name);
        let cancel = stop.child_token();
        let attempt_future = shared.executor.execute(job.clone(), id, cancel.clone());
        tokio::pin!(attempt_future);
        let report = tokio::select! {
            report = &mut attempt_future => report,
            _ = tokio::time::sleep(job.timeout) => {
                cancel.cancel();
                let mut report = attempt_future.await;
                if report.state != RunState::Succeeded {
                    report.state = RunState::TimedOut;
                    report.error = Some(format!("timed out after {}", humantime(job.timeout)));
                }
                report
            }
        };
        let ended = shared.clock.now();
        let seconds = (ended - started).num_milliseconds() as f64 / 1000.0;
        if let Err(e) = shared.history.finish(
            id,
            report.state,
            ended,
            seconds,
            report.error.as_deref(),
            report.report.as_deref(),
        ) {
            tracing::error!(job = %job.name, run = id, error = %e, "cannot record the run's end");
        }
        shared
            .telemetry
            .job_finished(&job.name, report.state.name(), seconds, unix(ended));
        if report.state == RunState::Succeeded {
            shared.telemetry.publish(&job.name, &report.observations);
        }
        match report.state {
            RunState::Succeeded => tracing::info!(job = %job.name, run = id, seconds, "run succeeded"),
            _ => tracing::warn!(
                job = %job.name, run = id, status = report.state.name(),
                error = report.error.as_deref().unwrap_or(""), "run did not succeed"
            ),
        }
        state = report.state;
        let bad_input = report.bad_input;
        last = Some((id, report));
        if matches!(state, RunState::Succeeded | RunState::Cancelled) || stop.is_cancelled() {
            break;
        }
        if bad_input && attempt <= job.retries {
            tracing::warn!(
                job = %job.name, run = id,
                "not retried: its input is wrong and would be refused again; fix it, then `bankml run {}`",
                job.name
            );
            break;
        }
        if attempt <= job.retries {
            let wait = backoff(job.backoff, attempt);
            tracing::info!(job = %job.name, retry_in = %humantime(wait), "retrying");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    if let (Some(observer), Some((id, report))) = (&shared.observer, &last) {
        observer.finished(job, *id, report);
    }
    state
}

/// `1h 30m 5s`.
pub fn humantime(duration: Duration) -> String {
    let s = duration.as_secs();
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() { "0s".into() } else { parts.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let base = Duration::from_secs(60);
        assert_eq!(backoff(base, 1), Duration::from_secs(60));
        assert_eq!(backoff(base, 2), Duration::from_secs(120));
        assert_eq!(backoff(base, 3), Duration::from_secs(240));
        assert_eq!(humantime(Duration::from_secs(5405)), "1h 30m 5s");
        assert_eq!(humantime(Duration::from_secs(0)), "0s");
    }
}
