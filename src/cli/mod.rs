//! Subcommands. Each module parses nothing itself: clap structs here, work in the library.

mod alerts;
mod backfill;
mod bench;
mod bench_api;
mod bench_business;
mod bench_crash;
mod bench_distributed;
mod bench_jobs;
mod bench_monitor;
mod bench_predict;
mod bucketize;
mod daemon;
mod evaluate;
mod features;
mod generate;
mod models;
mod progress;
mod run;
mod runs;
mod score;
mod train;
mod validate;
mod worker;

use bankml::config::ConfigError;
use bankml::data::snapshot::IngestError;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "bankml",
    version,
    about = "Keeps a retail bank's machine-learning models honest",
    long_about = "bankml ingests a bank's exports (Excel, CSV, Parquet), engineers client, manager and \
agency features, trains and scores four models, and measures models and data drift.\n\n`bankml daemon` runs \
the jobs in jobs/*.yaml on their schedules (benchmark, validation, retraining, scoring), serves /metrics and \
the API on 127.0.0.1:8001, writes reports and sends alerts; on a first start without data it generates a \
demo bank and trains the first models. `bankml run JOB` runs one job now."
)]
pub struct Cli {
    /// Engine settings (data folders, column mapping, cleaning).
    #[arg(long, global = true, default_value = "config/bankml.yaml", env = "BANKML_CONFIG")]
    pub config: PathBuf,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text for people, or one JSON object per line for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BANKML_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the scheduled jobs, the HTTP API and /metrics (first start: demo data, first models).
    Daemon(daemon::DaemonArgs),
    /// Run one job now in the foreground, as the daemon would (history, report, retries).
    Run(run::RunArgs),
    /// Run jobs as of each past snapshot in a date range, as the daemon would have.
    Backfill(backfill::BackfillArgs),
    /// The run history, newest first.
    Runs(runs::RunsArgs),
    /// Alerts firing, silences, the notification outbox.
    Alerts(alerts::AlertsArgs),
    /// Write a synthetic bank's monthly exports to data/raw/<YYYY-MM-DD>/.
    Generate(generate::GenerateArgs),
    /// Read a snapshot, validate and clean it, and write client/manager/agency features.
    Features(features::FeaturesArgs),
    /// Train the churn, manager and agency models on every snapshot's features.
    Train(train::TrainArgs),
    /// Spread every snapshot's exports over buckets of clients, for training on several
    /// workers (`bankml train --workers N`).
    Bucketize(bucketize::BucketizeArgs),
    /// One worker of a distributed training run (started by `train --workers` or a cluster).
    Worker(worker::WorkerArgs),
    /// Score every client, manager and agency of a snapshot with the champions.
    Score(score::ScoreArgs),
    /// The model registry: list, show, promote, rollback.
    Models(models::ModelsArgs),
    /// Metrics of any model's predictions (CSV or Parquet), as JSON.
    Evaluate(evaluate::EvaluateArgs),
    /// Check config/bankml.yaml and every jobs/*.yaml; list every problem, start nothing.
    ValidateConfig,
    /// Print speed and memory figures (run from a release build).
    Bench(bench::BenchArgs),
}

/// An error in what the user gave us (arguments, files, config): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

pub fn exit_code(error: &anyhow::Error) -> u8 {
    use bankml::data::store::StoreError;
    use bankml::models::tabular::TrainError;
    let bad_data = |e: &IngestError| {
        matches!(
            e,
            IngestError::Invalid { .. } | IngestError::UnknownSnapshot { .. } | IngestError::NoSnapshots(_)
        )
    };
    let user = error.chain().any(|e| {
        e.is::<UserError>()
            || e.is::<ConfigError>()
            || e.downcast_ref::<IngestError>().is_some_and(bad_data)
            || matches!(e.downcast_ref::<bankml::data::table::TableError>(), Some(bankml::data::table::TableError::Invalid(_)))
            || matches!(e.downcast_ref::<StoreError>(), Some(StoreError::Ingest(i)) if bad_data(i))
            || matches!(e.downcast_ref::<bankml::jobs::JobError>(), Some(bankml::jobs::JobError::Store(StoreError::Ingest(i))) if bad_data(i))
            || matches!(e.downcast_ref::<bankml::jobs::JobError>(), Some(bankml::jobs::JobError::Ingest(i)) if bad_data(i))
            || matches!(
                e.downcast_ref::<TrainError>(),
                Some(TrainError::NoTrainingRows { .. } | TrainError::SingleClass { .. })
            )
    });
    if user { 2 } else { 1 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr. A daemon says what it does at its default level (listening, ready, each
/// run, reloads); a command only warns unless asked (`-v`). Colour only on a terminal, and
/// never with `NO_COLOR`: a log file or journal gets plain text.
pub fn init_logging(verbose: u8, daemon: bool, format: LogFormat) {
    use std::io::IsTerminal;
    let default = match (verbose, daemon) {
        (0, false) => "warn",
        (0, true) | (1, _) => "warn,bankml=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let explicit = std::env::args().any(|a| a == "--config" || a.starts_with("--config="))
        || std::env::var_os("BANKML_CONFIG").is_some();
    if matches!(cli.command, Command::ValidateConfig) {
        return validate::run(&cli.config);
    }
    let config = bankml::data::load_config(&cli.config, explicit)?;
    if reads_project_state(&cli.command) && !cli.config.exists() && !config.data.raw_dir.exists() {
        // Outside a project the defaults point at folders that are not there: "no alerts",
        // "no runs" would read as all-clear, and the command would create `data/` here.
        let here = std::env::current_dir().map_or_else(|_| ".".into(), |d| d.display().to_string());
        return Err(UserError(format!(
            "{here} is not a bankml project: neither {} nor {} is here. Run bankml from a project \
             folder, or point at one with --config PROJECT/config/bankml.yaml (or the environment \
             variable BANKML_CONFIG): its folders (data/, reports/, jobs/) are then read from \
             PROJECT. `bankml generate` writes a demo bank here to start one",
            cli.config.display(),
            config.data.raw_dir.display()
        ))
        .into());
    }
    if reads_project_state(&cli.command) && !matches!(cli.command, Command::Daemon(_)) {
        // What a killed command left (a temporary file, a staging folder, a folder moved
        // aside) goes before this one reads or writes beside it; the daemon sweeps itself.
        bankml::daemon::housekeeping::sweep(&config);
    }
    match cli.command {
        Command::Generate(args) => generate::run(args, &config),
        Command::Features(args) => features::run(args, &config),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Train(args) => train::run(args, &config, &cli.config),
        Command::Bucketize(args) => bucketize::run(args, &config),
        Command::Worker(args) => worker::run(args, &config, &cli.config),
        Command::ValidateConfig => validate::run(&cli.config),
        Command::Models(args) => models::run(args, &config),
        Command::Score(args) => score::run(args, &config),
        Command::Bench(args) => bench::run(args, &config, &cli.config),
        Command::Daemon(args) => daemon::run(args, config, &cli.config),
        Command::Run(args) => run::run(args, &config, &cli.config),
        Command::Runs(args) => runs::run(args, &config),
        Command::Backfill(args) => backfill::run(args, &config, &cli.config),
        Command::Alerts(args) => alerts::run(args, &config),
    }
}

/// Commands that read (or write) a project's data, models, history or alerts. `generate`
/// starts a project, `evaluate` reads only the files it is given, `bench` works in its own
/// folders.
fn reads_project_state(command: &Command) -> bool {
    !matches!(
        command,
        Command::Generate(_) | Command::Evaluate(_) | Command::Bench(_) | Command::ValidateConfig
    )
}

pub use bankml::vocab::text::thousands;
