//! `bankml backfill --from DATE --to DATE`: the jobs run as of each past snapshot, in order,
//! through the same runner, history, reports and alert rules as the daemon — each run's clock
//! at its snapshot's date — so a bank that installs bankml over two years of exports gets its
//! history, and a year of monitoring replays in minutes.

use super::{UserError, progress};
use bankml::alerts::observer::{AlertObserver, alerting_for, write_index};
use bankml::config::EngineConfig;
use bankml::config::jobs::{Job, JobKind, load_jobs};
use bankml::data::date::Date;
use bankml::data::snapshot::list_snapshots;
use bankml::engine::clock::{Clock, StartingAt};
use bankml::engine::history::{RunHistory, RunState, Trigger};
use bankml::engine::process::ProcessExecutor;
use bankml::engine::runner::{self, Shared};
use chrono::{TimeZone, Utc};
use clap::Args;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// First snapshot to run as of (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub from: String,
    /// Last snapshot to run as of (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub to: String,
    /// Jobs to run at each snapshot, comma-separated job names (default: every enabled job).
    /// Whatever the order given, a snapshot's jobs run as a day of the daemon would: scoring,
    /// benchmark, validation, then retraining. Failed attempts are not retried.
    #[arg(long, value_delimiter = ',')]
    pub jobs: Vec<String>,
    /// Deliver the alerts the backfill raises. By default they are recorded (runs index,
    /// `bankml alerts outbox`) but held: they are about the past.
    #[arg(long)]
    pub notify: bool,
}

/// The order of a day's jobs: data scored first, measured, validated, then retrained so the
/// next snapshot sees what the retraining promoted.
fn day_order(kind: JobKind) -> u8 {
    match kind {
        JobKind::Scoring => 0,
        JobKind::Benchmark => 1,
        JobKind::Validation => 2,
        JobKind::Retrain => 3,
        JobKind::Business => 4,
    }
}

fn parse_date(flag: &str, text: &str) -> Result<Date, UserError> {
    Date::parse(text).ok_or_else(|| UserError(format!("--{flag} {text}: expected a date YYYY-MM-DD")))
}

pub fn run(args: BackfillArgs, config: &EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    let (from, to) = (parse_date("from", &args.from)?, parse_date("to", &args.to)?);
    if from > to {
        return Err(UserError(format!("--from {from} is after --to {to}")).into());
    }
    let all_jobs = load_jobs(&config.data.jobs_dir)
        .map_err(|errors| UserError(format!("invalid job files:\n  {}", errors.join("\n  "))))?;
    let mut jobs: Vec<Job> = if args.jobs.is_empty() {
        all_jobs.iter().filter(|j| j.enabled).cloned().collect()
    } else {
        let names: Vec<&str> = all_jobs.iter().map(|j| j.name.as_str()).collect();
        let mut chosen = Vec::new();
        for name in &args.jobs {
            let job = all_jobs.iter().find(|j| &j.name == name).ok_or_else(|| {
                UserError(format!(
                    "--jobs: no job named {name} in {}{} (jobs: {})",
                    config.data.jobs_dir.display(),
                    bankml::vocab::text::did_you_mean(name, names.iter().copied()),
                    names.join(", ")
                ))
            })?;
            chosen.push(job.clone());
        }
        chosen
    };
    if jobs.is_empty() {
        return Err(UserError(format!("no enabled jobs in {}", config.data.jobs_dir.display())).into());
    }
    jobs.sort_by_key(|j| day_order(j.kind));
    for job in jobs.iter_mut() {
        job.retries = 0;
    }

    let available = list_snapshots(&config.data.raw_dir)?;
    let snapshots: Vec<Date> = available
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| *d >= from && *d <= to)
        .collect();
    if snapshots.is_empty() {
        let dates: Vec<String> = available.iter().map(|(d, _)| d.to_string()).collect();
        return Err(UserError(format!(
            "no snapshots between {from} and {to} in {} (available: {})",
            config.data.raw_dir.display(),
            dates.join(", ")
        ))
        .into());
    }
    // Month ends with no snapshot between the first and the last: a clear skip, not a hole.
    let mut gaps = Vec::new();
    for pair in snapshots.windows(2) {
        let mut expected = pair[0].month_end_after(1);
        while expected < pair[1] {
            gaps.push(expected);
            expected = expected.month_end_after(1);
        }
    }

    let history = Arc::new(RunHistory::open(&config.data.history)?);
    let telemetry = Arc::new(bankml::telemetry::Telemetry::new());
    let alerting = alerting_for(config, telemetry.clone()).map_err(|e| UserError(e.to_string()))?;
    let first_notice = alerting.store.last_outbox_id()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bar = progress::bar((snapshots.len() * jobs.len()) as u64, "backfill");
    let stop = CancellationToken::new();
    let mut failed = Vec::new();
    let mut timeline: Vec<Date> = snapshots.iter().copied().chain(gaps.iter().copied()).collect();
    timeline.sort();
    for date in timeline {
        // A snapshot's data arrive the night after its month end; its jobs run from 02:00 UTC.
        let at = Utc
            .timestamp_opt(i64::from(date.0 + 1) * 86_400 + 2 * 3600, 0)
            .single()
            .unwrap_or_else(Utc::now);
        if gaps.contains(&date) {
            for job in &jobs {
                history.skipped(
                    &job.name,
                    Trigger::Backfill,
                    at,
                    at,
                    &format!("no snapshot for {date} in {}", config.data.raw_dir.display()),
                )?;
            }
            bar.suspend(|| eprintln!("warning: no snapshot for {date}: recorded as skipped"));
            continue;
        }
        let clock: Arc<dyn Clock> = Arc::new(StartingAt::new(at));
        let shared = Shared {
            executor: ProcessExecutor {
                snapshot: Some(date.to_string()),
                ..ProcessExecutor::new(std::env::current_exe()?, config_path.to_path_buf(), config)
            },
            history: history.clone(),
            clock: clock.clone(),
            telemetry: telemetry.clone(),
            observer: Some(Arc::new(
                AlertObserver::new(alerting.clone(), Arc::new(config.clone()), history.clone()).with_clock(clock),
            )),
        };
        for job in &jobs {
            bar.set_message(format!("{date} {}", job.name));
            let state = runtime.block_on(runner::run(&shared, job, Trigger::Backfill, Some(at), &stop, None));
            if state != RunState::Succeeded {
                let error = history
                    .list(Some(&job.name), 1)?
                    .into_iter()
                    .next()
                    .and_then(|r| r.error)
                    .unwrap_or_default();
                bar.suspend(|| eprintln!("{date} {}: {} {error}", job.name, state.name()));
                failed.push(format!("{date} {}", job.name));
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if !args.notify {
        alerting.store.hold_after(
            first_notice,
            "backfill: not delivered (bankml backfill --notify delivers)",
        )?;
    } else {
        runtime.block_on(bankml::alerts::observer::deliver_once(config, &alerting));
    }
    if let Err(e) = write_index(config, &history, &alerting.store) {
        tracing::warn!(error = %e, "reports/index.html not updated");
    }
    let raised = alerting
        .store
        .told_after(first_notice)?
        .into_iter()
        .filter(|(_, n)| n.status == bankml::alerts::Status::Firing && !n.reminder)
        .count();
    println!(
        "backfilled {} snapshot(s) {} … {} with {}: {} run(s), {} failed, {} skipped for gaps; {raised} alert(s) raised{}",
        snapshots.len(),
        snapshots.first().map(Date::to_string).unwrap_or_default(),
        snapshots.last().map(Date::to_string).unwrap_or_default(),
        jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>().join(", "),
        snapshots.len() * jobs.len(),
        failed.len(),
        gaps.len() * jobs.len(),
        if args.notify { "" } else { " (held, not delivered)" }
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} run(s) did not succeed: {}",
            failed.len(),
            failed.join(", ")
        ))
    }
}
