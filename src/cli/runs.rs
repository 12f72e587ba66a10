//! `bankml runs`: the run history, newest first.

use bankml::config::EngineConfig;
use bankml::engine::history::RunHistory;
use clap::Args;

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Only this job.
    #[arg(long)]
    pub job: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// As JSON (one array).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RunsArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let history = RunHistory::open(&config.data.history)?;
    let runs = history.list(args.job.as_deref(), args.last)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs recorded in {}", config.data.history.display());
        return Ok(());
    }
    println!(
        "{:>6}  {:<20} {:<9} {:<24} {:<24} {:>3}  {:<11} {:>8}  error / report",
        "run", "job", "trigger", "scheduled", "started", "try", "status", "seconds"
    );
    for r in runs {
        println!(
            "{:>6}  {:<20} {:<9} {:<24} {:<24} {:>3}  {:<11} {:>8}  {}",
            r.id,
            r.job,
            r.trigger,
            r.scheduled_at.as_deref().unwrap_or("–"),
            r.started_at,
            r.attempt,
            r.status.name(),
            r.seconds.map(|s| format!("{s:.1}")).unwrap_or_else(|| "–".into()),
            r.error.or(r.report_path).unwrap_or_default()
        );
    }
    Ok(())
}
