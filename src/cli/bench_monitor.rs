//! `bankml bench monitor`: every shipped scenario replayed as a bank would live it — a
//! generated history whose first half trains the champions, then `bankml backfill` over the
//! second half with the shipped jobs and rules — and the alerts scored against what was
//! planted: false alarms, detections and their lag, whether the planted feature was named.
//!
//! Each scenario runs in its own folder, through the `bankml` binary itself, so what is
//! measured is what a user runs.

use super::UserError;
use bankml::alerts::Status;
use bankml::alerts::detection::{self, RaisedAlert, Scorecard};
use bankml::alerts::store::AlertStore;
use bankml::config::EngineConfig;
use bankml::data::synth::SCENARIO_FILE;
use bankml::data::synth::scenario::GroundTruth;
use bankml::engine::history::RunHistory;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct MonitorBench {
    pub scenarios: Vec<PathBuf>,
    pub clients: usize,
    pub months: usize,
    pub jobs: Vec<String>,
    pub dir: Option<PathBuf>,
}

/// A fresh project `root/name` for a bench (removed first if there): its `config/` holds a
/// copy of the config at `config_path`, its `jobs/` is empty. Returns (project, its config).
pub(super) fn fresh_project(root: &Path, name: &str, config_path: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let project = root.join(name);
    if project.exists() {
        std::fs::remove_dir_all(&project)?;
    }
    std::fs::create_dir_all(project.join("config"))?;
    std::fs::create_dir_all(project.join("jobs"))?;
    let config = project.join("config/bankml.yaml");
    std::fs::copy(std::fs::canonicalize(config_path)?, &config)?;
    Ok((project, config))
}

/// Runs `bankml ARGS` in `project`; its output goes to `log`.
pub(super) fn bankml(project: &Path, config: &Path, args: &[&str], log: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .current_dir(project)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "bankml {} failed in {} (log: {})",
            args.join(" "),
            project.display(),
            log.display()
        ))
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The shipped scenarios: `data/scenarios/*.yaml` beside the config's data folder.
fn shipped_scenarios() -> anyhow::Result<Vec<PathBuf>> {
    let dir = Path::new("data/scenarios");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            UserError(format!(
                "{}: {e} (run from the bankml folder, or pass --scenarios)",
                dir.display()
            ))
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    found.sort();
    Ok(found)
}

pub fn run(bench: MonitorBench, config: &EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; the timings are only meaningful from a release build");
    }
    if bench.months < 6 {
        return Err(UserError("--months must be at least 6 (half trains, half is monitored)".into()).into());
    }
    for dir in [&config.data.raw_dir, &config.models.dir, &config.data.history] {
        if dir.is_absolute() {
            return Err(UserError(format!(
                "{}: the bench copies the config into a folder of its own, so its data paths must be relative",
                dir.display()
            ))
            .into());
        }
    }
    let scenarios = if bench.scenarios.is_empty() {
        shipped_scenarios()?
    } else {
        bench.scenarios.clone()
    };
    let temp = tempfile::tempdir()?;
    let root = bench.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let config_path = std::fs::canonicalize(config_path)?;
    let (jobs_dir, alerts_dir) = (
        std::fs::canonicalize(&config.data.jobs_dir)?,
        std::fs::canonicalize(&config.data.alerts_dir)?,
    );
    let jobs = bench.jobs.join(",");
    let mut cards = Vec::new();
    for scenario in &scenarios {
        let scenario =
            std::fs::canonicalize(scenario).map_err(|e| UserError(format!("{}: {e}", scenario.display())))?;
        let name = scenario
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let project = root.join(&name);
        if project.exists() {
            std::fs::remove_dir_all(&project)?;
        }
        std::fs::create_dir_all(project.join("config"))?;
        let config_copy = project.join("config/bankml.yaml");
        std::fs::copy(&config_path, &config_copy)?;
        copy_dir(&jobs_dir, &project.join(&config.data.jobs_dir))?;
        copy_dir(&alerts_dir, &project.join(&config.data.alerts_dir))?;
        let log = project.join("bench.log");
        eprintln!("{name}: generating {} clients × {} months", bench.clients, bench.months);
        let clients = bench.clients.to_string();
        let months = bench.months.to_string();
        let scenario_text = scenario.display().to_string();
        let raw = config.data.raw_dir.display().to_string();
        bankml(
            &project,
            &config_copy,
            &[
                "generate",
                "--clients",
                &clients,
                "--months",
                &months,
                "--format",
                "parquet",
                "--scenario",
                &scenario_text,
                "--out",
                &raw,
            ],
            &log,
        )?;
        let truth: GroundTruth =
            serde_json::from_slice(&std::fs::read(project.join(&config.data.raw_dir).join(SCENARIO_FILE))?)?;
        let half = bench.months / 2;
        let (trained_at, monitored) = (&truth.snapshots[half - 1], &truth.snapshots[half..]);
        eprintln!("{name}: training the champions as of {trained_at}");
        bankml(&project, &config_copy, &["train", "--snapshot", trained_at], &log)?;
        eprintln!(
            "{name}: backfilling {} … {} with {jobs}",
            monitored[0],
            monitored[monitored.len() - 1]
        );
        let started = Instant::now();
        let first = &monitored[0];
        let last = &monitored[monitored.len() - 1];
        // A failed run is part of what is measured (it raises job_failed): keep going.
        let backfilled = bankml(
            &project,
            &config_copy,
            &["backfill", "--from", first, "--to", last, "--jobs", &jobs],
            &log,
        );
        let seconds = started.elapsed().as_secs_f64();
        if let Err(e) = &backfilled {
            eprintln!("{name}: {e}");
        }
        let raised = raised_alerts(&project.join(&config.data.history))?;
        let card = detection::score(&truth, monitored, &raised);
        print_card(&name, &truth, &card, seconds);
        let errors = estimate_errors(&project.join(&config.data.history), &project)?;
        if errors.is_empty() {
            println!("  estimated vs realized churn AUC: no snapshot has both yet");
        } else {
            for e in &errors {
                println!(
                    "  churn AUC of {}: estimated {:.4} ± {:.4} before its labels, realized {:.4} (error {:+.4}, {:+.1} bands)",
                    e.snapshot,
                    e.estimated,
                    e.band,
                    e.realized,
                    e.error(),
                    e.error() / e.band
                );
            }
        }
        let worst = errors.iter().map(|e| e.error().abs()).fold(f64::NAN, f64::max);
        let worst_bands = errors
            .iter()
            .map(|e| (e.error() / e.band).abs())
            .fold(f64::NAN, f64::max);
        cards.push((name, card, seconds, worst, worst_bands));
    }
    println!(
        "\nsummary ({} clients, {} monitored snapshots each):",
        bench.clients,
        bench.months - bench.months / 2
    );
    println!(
        "{:<16} {:>7} {:>12} {:>10} {:>10} {:>9} {:>10} {:>14} {:>10}",
        "scenario",
        "alerts",
        "false alarm",
        "collateral",
        "events",
        "detected",
        "backfill s",
        "max |AUC err|",
        "in bands"
    );
    for (name, card, seconds, worst, worst_bands) in &cards {
        let detected = card.events.iter().filter(|e| e.detected_at.is_some()).count();
        println!(
            "{:<16} {:>7} {:>12} {:>10} {:>10} {:>9} {:>10.1} {:>14.4} {:>10.1}",
            name,
            card.raised,
            card.false_alarms.len(),
            card.collateral.len(),
            card.events.len(),
            detected,
            seconds,
            worst,
            worst_bands
        );
    }
    Ok(())
}

/// A snapshot's churn AUC as CBPE estimated it before its labels and as realized after.
struct EstimateError {
    snapshot: String,
    estimated: f64,
    /// The estimate's own sampling error (CBPE's band): the realized figure of a cohort this
    /// size moves by about this much around the truth, so errors are read against it.
    band: f64,
    realized: f64,
}

impl EstimateError {
    fn error(&self) -> f64 {
        self.estimated - self.realized
    }
}

/// For every snapshot both estimated (CBPE) and later realized by the daily benchmark's runs. Where the scoring job stored the snapshot's predictions,
/// both sides are of those very predictions (the benchmark's cohort figures); otherwise the
/// estimate made when the snapshot was the latest is paired with the realized AUC of the
/// champion at maturity — two models if the retraining promoted one in between.
fn estimate_errors(history: &Path, project: &Path) -> anyhow::Result<Vec<EstimateError>> {
    use bankml::report::summary::{EstimatedChurn, JobSummary};
    let runs = RunHistory::open(history)?.list(Some("daily-benchmark"), 1_000_000)?;
    let mut estimated = std::collections::BTreeMap::new();
    let mut realized = std::collections::BTreeMap::new();
    let mut cohorts = std::collections::BTreeMap::new();
    for run in runs {
        let Some(path) = run.report_path else { continue };
        let Ok(report) = bankml::report::read(&project.join(path)) else {
            continue;
        };
        let summary = match JobSummary::read("benchmark", &report.outcome.summary) {
            Ok(JobSummary::Benchmark(summary)) => summary,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("run {}: {e}", run.id);
                continue;
            }
        };
        let Some(churn) = summary.churn else { continue };
        if let Some(cohort) = &churn.cohort
            && let Some(estimate) = cohort.estimated_auc
        {
            cohorts.insert(cohort.snapshot.clone(), (estimate, cohort.realized_auc));
        }
        if let Some(EstimatedChurn::Estimated { snapshot, estimate, .. }) = churn.estimated {
            estimated.insert(snapshot, (estimate.auc, estimate.sampling_errors.auc));
        }
        if let (Some(snapshot), Some(metrics)) = (
            churn.evaluated_snapshot,
            churn.metrics.as_ref().and_then(|m| m.binary()),
        ) {
            realized.insert(snapshot, metrics.roc_auc);
        }
    }
    Ok(estimated
        .into_iter()
        .filter_map(|(snapshot, (e, band))| {
            let (estimated, realized) = cohorts
                .get(&snapshot)
                .copied()
                .or_else(|| realized.get(&snapshot).map(|r| (e, *r)))?;
            Some(EstimateError {
                snapshot,
                estimated,
                band,
                realized,
            })
        })
        .collect())
}

/// The new alerts (firing, not reminders) of every run in the history at `path`, each with
/// the snapshot its run was as of.
fn raised_alerts(path: &Path) -> anyhow::Result<Vec<RaisedAlert>> {
    let store = AlertStore::open(path)?;
    let history = RunHistory::open(path)?;
    let runs = history.list(None, 1_000_000)?;
    let mut out = Vec::new();
    for (run, notice) in store.told_after(0)? {
        if notice.status != Status::Firing || notice.reminder {
            continue;
        }
        // A backfilled run is scheduled at 02:00 the day after its snapshot.
        let snapshot = run
            .and_then(|id| runs.iter().find(|r| r.id == id))
            .and_then(|r| r.scheduled_at.as_deref())
            .and_then(|t| bankml::data::date::Date::parse(t.get(..10)?))
            .map(|d| bankml::data::date::Date(d.0 - 1).to_string())
            .unwrap_or_default();
        out.push(RaisedAlert {
            snapshot,
            rule: notice.rule,
            labels: notice.labels,
        });
    }
    Ok(out)
}

fn print_card(name: &str, truth: &GroundTruth, card: &Scorecard, seconds: f64) {
    println!(
        "\n== {name}: {}{}",
        truth.scenario.description,
        if truth.scenario.gradual_drift {
            ""
        } else {
            " (no gradual drift)"
        }
    );
    println!(
        "{} snapshots replayed in {seconds:.1} s; {} alerts raised: {} naming a planted event, {} during an event naming something else, {} with no planted cause (false alarms)",
        card.snapshots,
        card.raised,
        card.detections,
        card.collateral.len(),
        card.false_alarms.len()
    );
    for outcome in &card.events {
        let e = &outcome.event;
        let what = format!("{} {}", e.kind.name(), e.column.as_deref().unwrap_or(""))
            .trim()
            .to_string();
        match (&outcome.detected_at, outcome.lag_runs) {
            (Some(at), Some(lag)) => println!(
                "  planted {what} at {}: detected at {at} (after {lag} run(s)), named by {}",
                e.first_snapshot,
                outcome.named_by.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
            _ => println!("  planted {what} at {}: NOT detected", e.first_snapshot),
        }
    }
    for alert in card.false_alarms.iter().take(10) {
        println!("  false alarm at {}: {}", alert.snapshot, alert.describe());
    }
    if card.false_alarms.len() > 10 {
        println!("  … and {} more false alarms", card.false_alarms.len() - 10);
    }
    for alert in card.collateral.iter().take(5) {
        println!("  collateral at {}: {}", alert.snapshot, alert.describe());
    }
}
