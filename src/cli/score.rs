use super::{UserError, progress, thousands};
use bankml::config::EngineConfig;
use bankml::jobs::{self, Context, JobError};
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Snapshot to score (default: the latest).
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Also write CSV copies.
    #[arg(long)]
    pub csv: bool,
}

pub fn run(args: ScoreArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let spinner = progress::spinner("scoring");
    let context = Context {
        snapshot: args.snapshot,
        csv: args.csv,
        ..Context::new(config)
    };
    let outcome = jobs::score::run(&context).map_err(|e| match e {
        JobError::NoModels => anyhow::Error::new(UserError(e.to_string())),
        other => other.into(),
    });
    spinner.finish_and_clear();
    let outcome = outcome?;
    let out = outcome.artifacts.first().cloned().unwrap_or_default();
    print_summary(&outcome.summary, outcome.seconds, &out);
    Ok(())
}

fn print_summary(summary: &Value, seconds: f64, out: &std::path::Path) {
    println!(
        "{}: scored in {seconds:.2} s → {}",
        summary["snapshot"].as_str().unwrap_or_default(),
        out.display()
    );
    if let Some(c) = summary.get("clients") {
        println!(
            "  clients: {} — High {}, Medium {}, Low {}",
            thousands(c["count"].as_u64().unwrap_or(0) as usize),
            c["by_risk"]["High"],
            c["by_risk"]["Medium"],
            c["by_risk"]["Low"]
        );
    }
    if let Some(r) = summary.get("recommendations") {
        println!(
            "  recommendations: top {} for {} clients ({} cold start, {})",
            r["per_client"],
            thousands(r["clients"].as_u64().unwrap_or(0) as usize),
            r["cold_start_clients"],
            r["method"].as_str().unwrap_or_default()
        );
    }
    for name in ["managers", "agencies"] {
        if let Some(s) = summary.get(name) {
            println!(
                "  {name}: {} scored, mean predicted score {:.1}",
                s["count"],
                s["mean_predicted_score"].as_f64().unwrap_or(0.0)
            );
        }
    }
}
