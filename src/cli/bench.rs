//! `bankml bench`: figures for the stages users wait on, measured in this process on data
//! generated here. Prints; asserts nothing. Run it from a release build.

use super::thousands;
use bankml::config::EngineConfig;
use bankml::data::features;
use bankml::data::format::FileFormat;
use bankml::data::snapshot;
use bankml::data::synth::campaigns::Challenger;
use bankml::data::synth::{BankSpec, write_bank};
use bankml::fsutil::peak_rss_bytes;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Generate, ingest and features at each size (Parquet), plus the default xlsx demo.
    Data {
        /// Client counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
        clients: Vec<usize>,
        /// Monthly snapshots to generate per size.
        #[arg(long, default_value_t = 12)]
        months: usize,
        /// Skip the xlsx demo measurement.
        #[arg(long)]
        no_xlsx: bool,
        /// Work folder (default: a temporary folder, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// ROC AUC + average precision, the drift statistics of one feature, and `evaluate drift`
    /// end to end on a wide file.
    Metrics {
        /// Row counts for AUC and single-feature drift, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000_000usize, 10_000_000])]
        rows: Vec<usize>,
        /// Rows and columns of the `evaluate drift` files.
        #[arg(long, default_value_t = 1_000_000)]
        drift_rows: usize,
        #[arg(long, default_value_t = 50)]
        drift_columns: usize,
    },
    /// Train all four models and score every client, as the commands run, at each size.
    Models {
        #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 12)]
        months: usize,
    },
    /// Replay each scenario (data/scenarios/*.yaml): generate, train on the first half,
    /// backfill the second half with the shipped jobs and rules, and score the alerts against
    /// what was planted (false alarms, detections and their lag, the named feature).
    Monitor {
        /// Scenario files, comma-separated (default: every data/scenarios/*.yaml).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<PathBuf>,
        #[arg(long, default_value_t = 20_000)]
        clients: usize,
        /// Monthly snapshots: the first half trains the champions, the second is monitored.
        #[arg(long, default_value_t = 24)]
        months: usize,
        /// Jobs replayed at each snapshot (names in the jobs folder).
        #[arg(long, value_delimiter = ',', default_values_t = ["daily-scoring".to_string(), "daily-benchmark".to_string(), "monthly-retrain".to_string()])]
        jobs: Vec<String>,
        /// Work folder, kept afterwards (default: a temporary folder, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The prediction API under load: a daemon on a generated bank, CONCURRENCY callers
    /// asking for one client's churn with reasons for SECONDS; latency percentiles, errors,
    /// the daemon's memory before and after.
    Api {
        #[arg(long, default_value_t = 20_000)]
        clients: usize,
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Work folder, kept afterwards (default: a temporary folder, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// kill -9 trials: each writing command (train, promote, prune, score, features, the
    /// monthly retraining) killed at a random moment, then every artefact checked readable and
    /// no leftover allowed once the next command has started. Exits 1 if any trial broke one.
    Crash {
        #[arg(long, default_value_t = 200)]
        trials: usize,
        #[arg(long, default_value_t = 2_000)]
        clients: usize,
        #[arg(long, default_value_t = 8)]
        months: usize,
        /// Seed of the kill moments.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Work folder, kept afterwards (default: a temporary folder, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Each scheduled job run as an admin runs it (`bankml run JOB`) on a project: wall, CPU
    /// seconds and peak RSS, REPEATS times; with `--baseline`, another bankml binary runs the
    /// same commands alternately and the ratios are printed (the side-by-side measure).
    Jobs {
        /// A project folder with data and trained champions (e.g. made by `generate` + `train`).
        #[arg(long)]
        dir: PathBuf,
        /// Jobs to run, in this order, each time.
        #[arg(long, value_delimiter = ',', default_values_t = ["daily-scoring".to_string(), "daily-benchmark".to_string()])]
        jobs: Vec<String>,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Another bankml binary to compare with, run alternately on the same project.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// A copy of the project for the baseline to run on. Needed when the two builds read
        /// or build features differently: each keeps its own stored features instead of
        /// rebuilding the other's on every run.
        #[arg(long, requires = "baseline")]
        baseline_dir: Option<PathBuf>,
    },
    /// The business job scored against planted campaign effects over many generated banks:
    /// interval coverage, and the share of banks declaring the challenger different — false
    /// positives with `--challenger equal` (an A/A test), power with `better`.
    Business {
        /// Clients of each generated bank.
        #[arg(long, default_value_t = 100_000)]
        clients: usize,
        /// Monthly snapshots per bank (lists from the first to the one before last).
        #[arg(long, default_value_t = 5)]
        months: usize,
        /// Banks to generate, each with its own seed.
        #[arg(long, default_value_t = 200)]
        seeds: usize,
        /// Seed of the first bank; the others follow it.
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// `equal`: an A/A test (false positives); `better`: a truly better challenger (power).
        #[arg(long, value_enum, default_value_t = Challenger::Equal)]
        challenger: Challenger,
        /// Work folder (default: a temporary folder, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The churn model trained in one process, then by local workers through XGBoost's
    /// tracker (`train --workers N`), on a project: wall, CPU, peak RSS, holdout AUC, and
    /// whether a worker count trains the in-process model byte for byte. Adds versions to the
    /// project's registry.
    Distributed {
        /// A project folder with data (e.g. made by `generate`).
        #[arg(long)]
        dir: PathBuf,
        /// Worker counts, comma-separated; each is run twice (building its shares, then kept).
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
        workers: Vec<usize>,
        #[arg(long, default_value_t = 64)]
        buckets: usize,
    },
    /// Every champion's predictions of the latest snapshot's features by XGBoost's own
    /// predictor (design matrix, then prediction) and by bankml's laid-out trees (as the jobs
    /// predict), alternately in one process: wall and CPU seconds, the ratio, and whether
    /// they agree bit for bit (exit 1 if not). Builds the snapshot's features if not kept.
    Predict {
        /// A project folder with data and trained champions (e.g. made by `generate` + `train`).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// One stage in a fresh process, so its peak memory is its own (used by `bench data`).
    #[command(hide = true)]
    Stage {
        #[arg(long)]
        stage: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        clients: usize,
        #[arg(long, default_value_t = 12)]
        months: usize,
        #[arg(long, value_enum, default_value_t = FileFormat::Parquet)]
        format: FileFormat,
    },
}

struct Row {
    stage: String,
    clients: usize,
    rows: usize,
    seconds: f64,
    peak: Option<u64>,
}

/// Runs one stage here and prints `rows seconds peak_bytes` for the parent to read.
fn stage(
    name: &str,
    dir: &std::path::Path,
    clients: usize,
    months: usize,
    format: FileFormat,
    config: &EngineConfig,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let horizon = config.features.churn_horizon_days;
    let rows = match name {
        "generate" => {
            write_bank(
                BankSpec {
                    clients,
                    months,
                    ..BankSpec::default()
                },
                format,
                dir,
                |_| {},
            )?
            .total_rows
        }
        "ingest" => {
            let (date, folder) = snapshot::find_snapshot(dir, None)?;
            let loaded = snapshot::load(&folder, date, config)?;
            [
                &loaded.clients,
                &loaded.holdings,
                &loaded.catalog,
                &loaded.managers,
                &loaded.agencies,
                &loaded.activity,
            ]
            .iter()
            .map(|f| f.height())
            .sum()
        }
        "ingest+features" => {
            let (date, folder) = snapshot::find_snapshot(dir, None)?;
            let loaded = snapshot::load(&folder, date, config)?;
            let read = started.elapsed().as_secs_f64();
            let built = features::build(&loaded, None, horizon)?;
            eprintln!(
                "  (ingest {read:.2} s, features {:.2} s)",
                started.elapsed().as_secs_f64() - read
            );
            built.clients.height()
        }
        other => anyhow::bail!("unknown stage {other}"),
    };
    println!(
        "{rows} {} {}",
        started.elapsed().as_secs_f64(),
        peak_rss_bytes().unwrap_or(0)
    );
    Ok(())
}

/// Runs a stage in a child process (a fresh heap: its peak RSS is that stage's alone).
fn child(
    stage: &str,
    dir: &std::path::Path,
    clients: usize,
    months: usize,
    format: FileFormat,
    config_path: &std::path::Path,
) -> anyhow::Result<(usize, f64, u64)> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--config",
            &config_path.display().to_string(),
            "bench",
            "stage",
            "--stage",
            stage,
            "--dir",
        ])
        .arg(dir)
        .args([
            "--clients",
            &clients.to_string(),
            "--months",
            &months.to_string(),
            "--format",
            format.extension(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "bench stage {stage} failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace();
    let mut next = || {
        parts
            .next()
            .ok_or_else(|| anyhow::anyhow!("bench stage {stage} printed «{text}»"))
    };
    Ok((next()?.parse()?, next()?.parse()?, next()?.parse()?))
}

pub fn run(args: BenchArgs, config: &EngineConfig, config_path: &std::path::Path) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Data {
            clients,
            months,
            no_xlsx,
            dir,
        } => bench_data(&clients, months, !no_xlsx, dir, config_path),
        BenchWhat::Metrics {
            rows,
            drift_rows,
            drift_columns,
        } => bench_metrics(&rows, drift_rows, drift_columns),
        BenchWhat::Models { clients, months } => bench_models(&clients, months, config),
        BenchWhat::Api {
            clients,
            concurrency,
            seconds,
            dir,
        } => super::bench_api::run(
            super::bench_api::ApiBench {
                clients,
                concurrency,
                seconds,
                dir,
            },
            config_path,
        ),
        BenchWhat::Crash {
            trials,
            clients,
            months,
            seed,
            dir,
        } => super::bench_crash::run(
            super::bench_crash::CrashBench {
                trials,
                clients,
                months,
                seed,
                dir,
            },
            config,
            config_path,
        ),
        BenchWhat::Monitor {
            scenarios,
            clients,
            months,
            jobs,
            dir,
        } => super::bench_monitor::run(
            super::bench_monitor::MonitorBench {
                scenarios,
                clients,
                months,
                jobs,
                dir,
            },
            config,
            config_path,
        ),
        BenchWhat::Jobs {
            dir,
            jobs,
            repeats,
            baseline,
            baseline_dir,
        } => {
            let baseline = baseline.map(|binary| {
                let dir = baseline_dir.unwrap_or_else(|| dir.clone());
                (binary, dir)
            });
            super::bench_jobs::run(&dir, &jobs, repeats, baseline.as_ref())
        }
        BenchWhat::Predict { dir, repeats } => {
            let project = bankml::data::load_config(&dir.join("config/bankml.yaml"), false)?;
            super::bench_predict::run(&dir, repeats, &project)
        }
        BenchWhat::Distributed { dir, workers, buckets } => {
            let project = bankml::data::load_config(&dir.join("config/bankml.yaml"), false)?;
            super::bench_distributed::run(&dir, &workers, buckets, &project)
        }
        BenchWhat::Business {
            clients,
            months,
            seeds,
            first_seed,
            challenger,
            dir,
        } => super::bench_business::run(
            super::bench_business::BusinessBench {
                clients,
                months,
                seeds,
                first_seed,
                challenger,
                dir,
            },
            config,
        ),
        BenchWhat::Stage {
            stage: name,
            dir,
            clients,
            months,
            format,
        } => stage(&name, &dir, clients, months, format, config),
    }
}

fn bench_data(
    sizes: &[usize],
    months: usize,
    xlsx: bool,
    dir: Option<PathBuf>,
    config_path: &std::path::Path,
) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; figures are only meaningful from `cargo run --release -- bench`");
    }
    let temp = tempfile::tempdir()?;
    let root = dir.unwrap_or_else(|| temp.path().to_path_buf());
    let mut runs: Vec<(usize, FileFormat)> = sizes.iter().map(|&n| (n, FileFormat::Parquet)).collect();
    if xlsx {
        runs.push((BankSpec::default().clients, FileFormat::Xlsx));
    }
    let mut rows = Vec::new();
    for (clients, format) in runs {
        let out = root.join(format!("{clients}-{format}"));
        eprintln!("{format}, {} clients:", thousands(clients));
        for stage in ["generate", "ingest", "ingest+features"] {
            let (count, seconds, peak) = child(stage, &out, clients, months, format, config_path)?;
            let label = if stage == "generate" {
                format!("generate ({format}, {months} months)")
            } else {
                format!("{stage} ({format})")
            };
            rows.push(Row {
                stage: label,
                clients,
                rows: count,
                seconds,
                peak: (peak > 0).then_some(peak),
            });
        }
        std::fs::remove_dir_all(&out).ok();
    }
    println!(
        "{:<30} {:>10} {:>12} {:>9} {:>14} {:>10}",
        "stage", "clients", "rows", "seconds", "rows/s", "peak RSS"
    );
    for row in rows {
        let peak = row
            .peak
            .map(|b| format!("{:.0} MiB", b as f64 / 1_048_576.0))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{:<30} {:>10} {:>12} {:>9.2} {:>14} {:>10}",
            row.stage,
            thousands(row.clients),
            thousands(row.rows),
            row.seconds,
            thousands((row.rows as f64 / row.seconds.max(1e-9)) as usize),
            peak
        );
    }
    Ok(())
}

/// Best of three runs of `work`, in seconds.
fn best_of_three(mut work: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn bench_metrics(sizes: &[usize], drift_rows: usize, drift_columns: usize) -> anyhow::Result<()> {
    use bankml::data::synth::rng::{Rng, sigmoid};
    use bankml::metrics::{classification, drift};
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; figures are only meaningful from `cargo run --release -- bench`");
    }
    println!("{:<44} {:>12} {:>9} {:>16}", "measure", "rows", "seconds", "rows/s");
    let line = |what: &str, rows: usize, seconds: f64| {
        println!(
            "{what:<44} {:>12} {seconds:>9.3} {:>16}",
            thousands(rows),
            thousands((rows as f64 / seconds) as usize)
        );
    };
    for &n in sizes {
        let mut rng = Rng::new(n as u64);
        let labels: Vec<bool> = (0..n).map(|_| rng.bernoulli(0.1)).collect();
        let scores: Vec<f64> = labels
            .iter()
            .map(|l| sigmoid(rng.normal() + if *l { 1.5 } else { -1.0 }))
            .collect();
        let (mut auc, mut ap) = (0.0, 0.0);
        let seconds = best_of_three(|| {
            if let Ok(ranked) = classification::Ranked::new(&labels, &scores) {
                (auc, ap) = (ranked.roc_auc(), ranked.average_precision());
            }
        });
        line(&format!("ROC AUC {auc:.4} + average precision {ap:.4}"), n, seconds);
        let reference: Vec<f64> = (0..n).map(|_| rng.log_normal(10.0, 1.0)).collect();
        let current: Vec<f64> = (0..n).map(|_| rng.log_normal(10.1, 1.05)).collect();
        let mut psi = 0.0;
        let seconds = best_of_three(|| {
            if let Ok(d) = drift::numeric(&reference, &current) {
                psi = d.psi;
            }
        });
        line(
            &format!("PSI, KS, Wasserstein, JS of 1 feature (PSI {psi:.3})"),
            n,
            seconds,
        );
    }

    // `evaluate drift` end to end, as a user runs it, on Parquet and CSV files.
    let temp = tempfile::tempdir()?;
    let mut rng = Rng::new(7);
    let frame = |rng: &mut Rng, shift: f64| -> anyhow::Result<polars::prelude::DataFrame> {
        let mut columns = Vec::with_capacity(drift_columns);
        for c in 0..drift_columns {
            let name = format!("f{c:02}");
            let column = if c % 5 == 4 {
                let values: Vec<&str> = (0..drift_rows)
                    .map(|_| {
                        ["Youth", "Mass", "Affluent", "Private", "Business"]
                            [rng.weighted(&[1.0 + shift, 5.0, 2.0, 0.3, 1.0])]
                    })
                    .collect();
                polars::prelude::Column::new(name.into(), values)
            } else {
                let values: Vec<f64> = (0..drift_rows)
                    .map(|_| rng.normal() * (1.0 + c as f64 / 10.0) + shift * (c % 3) as f64)
                    .collect();
                polars::prelude::Column::new(name.into(), values)
            };
            columns.push(column);
        }
        Ok(polars::prelude::DataFrame::new_infer_height(columns)?)
    };
    for format in [FileFormat::Parquet, FileFormat::Csv] {
        let reference = temp.path().join(format!("reference.{format}"));
        let current = temp.path().join(format!("current.{format}"));
        bankml::data::format::write_frame(&mut frame(&mut rng, 0.0)?, &reference, format)?;
        bankml::data::format::write_frame(&mut frame(&mut rng, 0.3)?, &current, format)?;
        let out = temp.path().join("drift.json");
        let started = Instant::now();
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["evaluate", "drift", "--reference"])
            .arg(&reference)
            .arg("--current")
            .arg(&current)
            .arg("--out")
            .arg(&out)
            .status()?;
        anyhow::ensure!(status.success(), "evaluate drift failed");
        let seconds = started.elapsed().as_secs_f64();
        line(
            &format!("evaluate drift, {drift_columns} columns, {format} files"),
            drift_rows,
            seconds,
        );
    }
    Ok(())
}

/// What one child process cost: wall seconds, CPU seconds (user + system) and peak RSS.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub wall: f64,
    pub cpu: f64,
    pub peak: u64,
}

/// Runs `program ARGS` in `dir` as a child and measures it (CPU and peak RSS from `wait4`).
pub fn measure(program: &std::path::Path, args: &[&str], dir: Option<&std::path::Path>) -> anyhow::Result<Cost> {
    let started = Instant::now();
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let child = command.spawn().map_err(|e| {
        let place = dir.map(|d| format!(" in {}", d.display())).unwrap_or_default();
        anyhow::anyhow!("cannot start {}{place}: {e}", program.display())
    })?;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills; the pid is our own child's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    anyhow::ensure!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} {} failed",
        program.display(),
        args.join(" ")
    );
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Cost {
        wall: started.elapsed().as_secs_f64(),
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak: usage.ru_maxrss as u64 * 1024,
    })
}

/// Runs `bankml ARGS` as a child and returns its wall time and peak RSS.
fn timed_command(args: &[&str]) -> anyhow::Result<(f64, u64)> {
    let cost = measure(&std::env::current_exe()?, args, None)?;
    Ok((cost.wall, cost.peak))
}

fn bench_models(sizes: &[usize], months: usize, config: &EngineConfig) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; figures are only meaningful from `cargo run --release -- bench`");
    }
    let mut rows = Vec::new();
    for &clients in sizes {
        let temp = tempfile::tempdir()?;
        let root = temp.path();
        let settings = format!(
            "data:\n  raw_dir: {0}/raw\n  processed_dir: {0}/processed\nmodels:\n  dir: {0}/models\n",
            root.display()
        );
        let config_path = root.join("bankml.yaml");
        std::fs::write(&config_path, settings)?;
        let config_arg = config_path.display().to_string();
        let run = |args: &[&str]| -> anyhow::Result<(f64, u64)> {
            let mut all = vec!["--config", config_arg.as_str()];
            all.extend_from_slice(args);
            timed_command(&all)
        };
        eprintln!("{} clients: generating …", thousands(clients));
        let (clients_text, months_text) = (clients.to_string(), months.to_string());
        run(&[
            "generate",
            "--clients",
            &clients_text,
            "--months",
            &months_text,
            "--format",
            "parquet",
        ])?;
        for model in bankml::vocab::ModelKind::ALL {
            eprintln!("{} clients: training {model} …", thousands(clients));
            let (seconds, peak) = run(&["train", "--model", model.as_str()])?;
            let meta_path = root.join("models").join(model.as_str()).join("1/meta.json");
            let meta: serde_json::Value = std::fs::read_to_string(&meta_path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let boosting = meta["boosting_seconds"]
                .as_f64()
                .map(|s| format!(" (boosting {s:.1} s)"))
                .unwrap_or_default();
            rows.push((format!("train {model}{boosting}"), clients, seconds, peak));
        }
        eprintln!("{} clients: scoring …", thousands(clients));
        let (seconds, peak) = run(&["score"])?;
        rows.push((
            "score (churn + actions + top-5, managers, agencies)".to_string(),
            clients,
            seconds,
            peak,
        ));
        // One client's recommendations, in process, averaged.
        let engine = bankml::config::EngineConfig {
            models: bankml::config::ModelsConfig {
                dir: root.join("models"),
                ..config.models.clone()
            },
            ..config.clone()
        };
        let registry = bankml::models::registry::Registry::new(&engine.models.dir);
        let saved = bankml::models::recommender::SavedRecommender::load(&registry, None)?;
        let held = [0usize, 9, 35];
        let repeats = 10_000;
        let started = Instant::now();
        let mut sink = 0usize;
        for _ in 0..repeats {
            sink += saved.model.recommend(&held, 5).len();
        }
        let per_call = started.elapsed().as_secs_f64() / repeats as f64;
        rows.push((
            format!("one client's top-5 recommendations ({sink} items)"),
            clients,
            per_call,
            0,
        ));
    }
    println!("{:<58} {:>10} {:>11} {:>10}", "stage", "clients", "seconds", "peak RSS");
    for (stage, clients, seconds, peak) in rows {
        let peak = if peak > 0 {
            format!("{:.0} MiB", peak as f64 / 1_048_576.0)
        } else {
            "".into()
        };
        let seconds = if seconds < 0.01 {
            format!("{:.1} µs", seconds * 1e6)
        } else {
            format!("{seconds:.2}")
        };
        println!("{stage:<58} {:>10} {seconds:>11} {peak:>10}", thousands(clients));
    }
    Ok(())
}
