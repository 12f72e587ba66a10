//! The scheduling loop under tokio's paused time: a simulated year across DST changes in
//! several zones, slow jobs under each overlap policy, retries with backoff and timeouts, and a
//! restart after downtime — no missed and no duplicate firings.

use bankml::config::jobs::{CatchUp, Job, JobKind, Overlap};
use bankml::engine::clock::TokioClock;
use bankml::engine::history::{RunHistory, RunRecord, RunState};
use bankml::engine::runner::{AttemptReport, Executor, Shared};
use bankml::engine::scheduler::{Command, Scheduler, Settings};
use bankml::telemetry::Telemetry;
use bankml::vocab::schedule::Schedule;
use bankml::vocab::time::parse_iso;
use chrono::{DateTime, Duration as Span, Offset, Timelike, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Sleeps each job's configured duration (paused time makes that instant), or stops when told;
/// a job named `bad-input…` then refuses its input, as a run given a bad export does.
struct Sleeper {
    durations: HashMap<String, Duration>,
}

impl Executor for Sleeper {
    async fn execute(&self, job: Job, _run_id: i64, cancel: CancellationToken) -> AttemptReport {
        let duration = self.durations.get(&job.name).copied().unwrap_or(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(duration) => if job.name.starts_with("bad-input") {
                AttemptReport::refused_input("exit code 2 (bad input): holdings.csv, line 7: duplicate")
            } else {
                AttemptReport {
                    state: RunState::Succeeded, error: None, report: None, observations: Vec::new(), bad_input: false,
                }
            },
            _ = cancel.cancelled() => AttemptReport::cancelled(),
        }
    }
}

fn job(name: &str, cron: &str, zone: &str) -> Job {
    Job {
        name: name.into(),
        path: format!("jobs/{name}.yaml").into(),
        kind: JobKind::Benchmark,
        schedule: Schedule::parse(cron, zone).unwrap(),
        timeout: Duration::from_secs(6 * 3600),
        retries: 0,
        backoff: Duration::from_secs(60),
        overlap: Overlap::Skip,
        catch_up: CatchUp::Latest,
        enabled: true,
        params: Default::default(),
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    parse_iso(text).unwrap()
}

struct Run {
    telemetry: Arc<Telemetry>,
}

/// Runs the scheduler from `start` for `span` of simulated time.
async fn simulate(
    history: Arc<RunHistory>,
    start: DateTime<Utc>,
    span: Duration,
    jobs: Vec<Job>,
    durations: &[(&str, Duration)],
) -> Run {
    let telemetry = Arc::new(Telemetry::new());
    let shared = Arc::new(Shared {
        executor: Sleeper {
            durations: durations.iter().map(|(n, d)| (n.to_string(), *d)).collect(),
        },
        history,
        clock: Arc::new(TokioClock::new(start)),
        telemetry: telemetry.clone(),
        observer: None,
    });
    let shutdown = CancellationToken::new();
    let (_commands, receiver) = mpsc::channel::<Command>(4);
    let settings = Settings {
        max_sleep: Duration::from_secs(3600),
        late_after: Duration::from_secs(120),
    };
    let scheduler = Scheduler::new(shared, settings, shutdown.clone());
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(span).await;
        stopper.cancel();
    });
    scheduler.run(jobs, receiver).await;
    Run { telemetry }
}

fn runs_of(history: &RunHistory, job: &str) -> Vec<RunRecord> {
    let mut runs = history.list(Some(job), 1_000_000).unwrap();
    runs.reverse();
    runs
}

fn scheduled(runs: &[RunRecord]) -> Vec<DateTime<Utc>> {
    runs.iter().filter_map(|r| r.scheduled_at.as_deref().map(utc)).collect()
}

fn assert_distinct(times: &[DateTime<Utc>], what: &str) {
    let set: BTreeSet<_> = times.iter().collect();
    assert_eq!(set.len(), times.len(), "{what}: a firing was recorded twice");
}

const DAY: u64 = 86_400;

#[tokio::test(start_paused = true)]
async fn a_simulated_year_fires_every_job_exactly_once_per_slot_across_dst() {
    let history = Arc::new(RunHistory::in_memory().unwrap());
    let start = utc("2026-01-01T00:00:00Z");
    let jobs = vec![
        job("madrid-daily", "30 2 * * *", "Europe/Madrid"),
        job("new-york-daily", "30 2 * * *", "America/New_York"),
        job("sydney-weekly", "0 3 * * MON", "Australia/Sydney"),
        job("hourly", "0 * * * *", "UTC"),
    ];
    let durations = [
        ("madrid-daily", Duration::from_secs(600)),
        ("new-york-daily", Duration::from_secs(20 * 60)),
        ("sydney-weekly", Duration::from_secs(3600)),
        ("hourly", Duration::from_secs(59 * 60)),
    ];
    let run = simulate(
        history.clone(),
        start,
        Duration::from_secs(365 * DAY + 1800),
        jobs,
        &durations,
    )
    .await;

    for (name, zone) in [
        ("madrid-daily", chrono_tz::Europe::Madrid),
        ("new-york-daily", chrono_tz::America::New_York),
    ] {
        let runs = runs_of(&history, name);
        let times = scheduled(&runs);
        assert_eq!(times.len(), 365, "{name}: one firing per day of 2026");
        assert_distinct(&times, name);
        assert!(
            runs.iter().all(|r| r.status == RunState::Succeeded),
            "{name}: every run succeeded"
        );
        let local_days: BTreeSet<_> = times.iter().map(|t| t.with_timezone(&zone).date_naive()).collect();
        assert_eq!(local_days.len(), 365, "{name}: one per local day");
        // 02:30 every day, except the spring-forward day, when 02:30 does not exist: 03:00.
        let odd: Vec<_> = times
            .iter()
            .map(|t| t.with_timezone(&zone))
            .filter(|t| (t.hour(), t.minute()) != (2, 30))
            .collect();
        assert_eq!(odd.len(), 1, "{name}: {odd:?}");
        assert_eq!((odd[0].hour(), odd[0].minute()), (3, 0));
        // Runs start when scheduled (paused time: to the millisecond).
        for r in &runs {
            assert_eq!(r.started_at, r.scheduled_at.clone().unwrap());
        }
    }
    // Fall-back day: 02:30 happens twice on the wall clock, the job runs once.
    let madrid = scheduled(&runs_of(&history, "madrid-daily"));
    let october_25 = madrid
        .iter()
        .filter(|t| t.with_timezone(&chrono_tz::Europe::Madrid).date_naive().to_string() == "2026-10-25")
        .count();
    assert_eq!(october_25, 1);
    // Winter and summer offsets both appear, so DST really was crossed.
    let offsets: BTreeSet<i32> = madrid
        .iter()
        .map(|t| {
            t.with_timezone(&chrono_tz::Europe::Madrid)
                .offset()
                .fix()
                .local_minus_utc()
        })
        .collect();
    assert_eq!(offsets, BTreeSet::from([3600, 7200]));

    let weekly = scheduled(&runs_of(&history, "sydney-weekly"));
    assert_eq!(weekly.len(), 52, "Mondays of 2026 (Sydney time) within the year");
    assert_distinct(&weekly, "weekly");
    assert!(weekly.windows(2).all(|w| (w[1] - w[0]).num_days() == 7
        || (w[1] - w[0]).num_hours() == 7 * 24 - 1
        || (w[1] - w[0]).num_hours() == 7 * 24 + 1));

    let hourly = scheduled(&runs_of(&history, "hourly"));
    assert_eq!(hourly.len(), 8760);
    assert!(
        hourly.windows(2).all(|w| w[1] - w[0] == Span::hours(1)),
        "hourly: exactly one hour apart"
    );
    let metrics = run.telemetry.render();
    assert!(
        metrics.contains("bankml_job_missed_firings_total{bankml_job=\"hourly\"} 0"),
        "{metrics}"
    );
    // The firing at the simulation's very end is cut off by the shutdown: cancelled, not lost.
    assert!(
        metrics.contains("bankml_job_runs_total{bankml_job=\"hourly\",status=\"succeeded\"} 8759"),
        "{metrics}"
    );
    assert!(metrics.contains("bankml_job_runs_total{bankml_job=\"hourly\",status=\"cancelled\"} 1"));
    assert!(metrics.contains("bankml_job_runs_total{bankml_job=\"hourly\",status=\"skipped\"} 0"));
}

#[tokio::test(start_paused = true)]
async fn slow_jobs_follow_their_overlap_policy() {
    let history = Arc::new(RunHistory::in_memory().unwrap());
    let start = utc("2026-03-01T00:00:00Z");
    let mut skip = job("skip", "0 * * * *", "UTC");
    skip.overlap = Overlap::Skip;
    let mut queue = job("queue", "0 * * * *", "UTC");
    queue.overlap = Overlap::Queue;
    let mut replace = job("replace", "0 * * * *", "UTC");
    replace.overlap = Overlap::Replace;
    let ninety = Duration::from_secs(90 * 60);
    let durations = [
        ("skip", ninety),
        ("queue", Duration::from_secs(61 * 60)),
        ("replace", ninety),
    ];
    // 48 firings (01:00 day 1 … 00:00 day 3) and a little more.
    simulate(
        history.clone(),
        start,
        Duration::from_secs(2 * DAY + 600),
        vec![skip, queue, replace],
        &durations,
    )
    .await;

    // skip: every other firing runs (a run lasts 90 min), the others are recorded as skipped.
    let runs = runs_of(&history, "skip");
    assert_distinct(&scheduled(&runs), "skip");
    assert_eq!(runs.len(), 48);
    let by = |state| runs.iter().filter(|r| r.status == state).count();
    // The last run is still going when the simulation stops: cancelled by the shutdown.
    assert_eq!(
        (by(RunState::Succeeded), by(RunState::Cancelled), by(RunState::Skipped)),
        (23, 1, 24)
    );
    for pair in runs.windows(2) {
        assert_ne!(pair[0].status, pair[1].status, "runs and skips alternate");
    }

    // queue: every firing runs, one after the other, never two at once.
    let runs = runs_of(&history, "queue");
    let done: Vec<&RunRecord> = runs.iter().filter(|r| r.status == RunState::Succeeded).collect();
    assert!(runs.iter().all(|r| r.status != RunState::Skipped));
    assert_distinct(&scheduled(&runs), "queue");
    for pair in done.windows(2) {
        assert!(
            utc(&pair[1].started_at) >= utc(pair[0].ended_at.as_deref().unwrap()),
            "queued runs overlap"
        );
    }
    // 61-minute runs fall one minute further behind each hour: 47 of 48 have finished after 2 days.
    assert!(done.len() >= 45 && done.len() <= 48, "{}", done.len());
    for r in &done {
        let delay = utc(&r.started_at) - utc(r.scheduled_at.as_deref().unwrap());
        assert!(delay >= Span::zero() && delay < Span::hours(1));
    }

    // replace: each firing cancels the run still going and starts afresh.
    let runs = runs_of(&history, "replace");
    assert_distinct(&scheduled(&runs), "replace");
    assert_eq!(runs.len(), 48);
    let cancelled = runs.iter().filter(|r| r.status == RunState::Cancelled).count();
    assert!(cancelled >= 46, "{cancelled} of {}", runs.len());
    for pair in runs.windows(2) {
        let (first, second) = (pair[0].ended_at.as_deref().map(utc), utc(&pair[1].started_at));
        if let Some(end) = first {
            assert!(end <= second, "the replaced run ended before the next started");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_time_out_and_retry_with_doubling_backoff() {
    let history = Arc::new(RunHistory::in_memory().unwrap());
    let start = utc("2026-05-01T00:00:00Z");
    let mut slow = job("slow", "0 6 * * *", "UTC");
    slow.timeout = Duration::from_secs(3600);
    slow.retries = 2;
    slow.backoff = Duration::from_secs(300);
    simulate(
        history.clone(),
        start,
        Duration::from_secs(DAY / 2),
        vec![slow],
        &[("slow", Duration::from_secs(7200))],
    )
    .await;
    let runs = runs_of(&history, "slow");
    assert_eq!(runs.len(), 3, "one attempt and two retries");
    assert_eq!(runs.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(runs.iter().all(|r| r.status == RunState::TimedOut));
    assert!(runs[0].error.as_deref().unwrap().contains("timed out after 1h"));
    let starts: Vec<DateTime<Utc>> = runs.iter().map(|r| utc(&r.started_at)).collect();
    assert_eq!(starts[0], utc("2026-05-01T06:00:00Z"));
    assert_eq!(starts[1] - starts[0], Span::minutes(65), "1 h timeout + 5 min backoff");
    assert_eq!(
        starts[2] - starts[1],
        Span::minutes(70),
        "1 h timeout + 10 min (doubled) backoff"
    );
    assert!(runs.iter().all(|r| r.seconds == Some(3600.0)));
}

#[tokio::test(start_paused = true)]
async fn a_restart_catches_up_the_latest_missed_firing_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let daily = |name: &str, catch_up| {
        let mut j = job(name, "30 2 * * *", "Europe/Madrid");
        j.catch_up = catch_up;
        j
    };
    let jobs = || vec![daily("latest", CatchUp::Latest), daily("none", CatchUp::None)];
    let durations = [("latest", Duration::from_secs(600)), ("none", Duration::from_secs(600))];

    // Up from 1 March to 10 March 12:00 (across nothing special), then down for three days.
    let history = Arc::new(RunHistory::open(&path).unwrap());
    simulate(
        history,
        utc("2026-03-01T00:00:00Z"),
        Duration::from_secs(9 * DAY + 12 * 3600),
        jobs(),
        &durations,
    )
    .await;
    // Back on 13 March at 12:00 until the end of April (crossing the spring-forward day).
    let history = Arc::new(RunHistory::open(&path).unwrap());
    let run = simulate(
        history.clone(),
        utc("2026-03-13T12:00:00Z"),
        Duration::from_secs(48 * DAY + 12 * 3600),
        jobs(),
        &durations,
    )
    .await;

    let latest = runs_of(&history, "latest");
    let times = scheduled(&latest);
    assert_distinct(&times, "latest");
    // 1–10 March (10), the 13 March firing caught up once, 14 March – 30 April (48).
    assert_eq!(times.len(), 10 + 1 + 48);
    let catch_ups: Vec<&RunRecord> = latest.iter().filter(|r| r.trigger == "catch_up").collect();
    assert_eq!(catch_ups.len(), 1);
    assert_eq!(catch_ups[0].scheduled_at.as_deref(), Some("2026-03-13T01:30:00.000Z"));
    assert_eq!(
        catch_ups[0].started_at, "2026-03-13T12:00:00.000Z",
        "run at once on restart"
    );
    let missed = |day: &str| times.iter().any(|t| t.to_rfc3339().starts_with(day));
    assert!(
        !missed("2026-03-11") && !missed("2026-03-12"),
        "older missed firings are not run"
    );

    let none = scheduled(&runs_of(&history, "none"));
    assert_distinct(&none, "none");
    assert_eq!(none.len(), 10 + 48, "catch_up: none runs nothing missed");
    let metrics = run.telemetry.render();
    assert!(
        metrics.contains("bankml_job_missed_firings_total{bankml_job=\"latest\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bankml_job_missed_firings_total{bankml_job=\"none\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_that_refuses_its_input_is_not_retried() {
    let history = Arc::new(RunHistory::in_memory().unwrap());
    let mut refused = job("bad-input", "0 6 * * *", "UTC");
    refused.retries = 3;
    refused.backoff = Duration::from_secs(300);
    simulate(
        history.clone(),
        utc("2026-05-01T00:00:00Z"),
        Duration::from_secs(DAY / 2),
        vec![refused],
        &[("bad-input", Duration::from_secs(60))],
    )
    .await;
    let runs = runs_of(&history, "bad-input");
    assert_eq!(runs.len(), 1, "retried a run whose input was refused: {runs:?}");
    assert_eq!(runs[0].status, RunState::Failed);
}
