use super::{progress, thousands};
use anyhow::Context;
use bankml::config::EngineConfig;
use bankml::data::features::{self, CHURN_LABEL};
use bankml::data::format::{FileFormat, write_frame};
use bankml::data::snapshot::{self, Snapshot};
use bankml::fsutil::{self, StagedDir};
use clap::Args;
use polars::prelude::ChunkAgg;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct FeaturesArgs {
    /// Snapshot date (a folder name under data/raw/); default: the latest.
    #[arg(long, conflicts_with = "all")]
    pub snapshot: Option<String>,
    /// Every snapshot, oldest first.
    #[arg(long)]
    pub all: bool,
    /// Also write CSV copies beside the Parquet files.
    #[arg(long)]
    pub csv: bool,
}

pub fn run(args: FeaturesArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let raw = &config.data.raw_dir;
    let all = snapshot::list_snapshots(raw)?;
    let chosen = if args.all {
        all.clone()
    } else {
        vec![snapshot::find_snapshot(raw, args.snapshot.as_deref())?]
    };
    let horizon = config.features.churn_horizon_days;
    // The latest snapshot carries every closing up to its date: it labels all earlier ones
    // whose horizon it reaches.
    let (latest_date, latest_dir) = all.last().cloned().context("no snapshots")?;
    let needs_latest = chosen
        .iter()
        .any(|(d, _)| d.0 + horizon <= latest_date.0 && *d != latest_date);
    let latest = if needs_latest {
        let spinner = progress::spinner(&format!("reading {latest_date} for churn outcomes"));
        let loaded = snapshot::load(&latest_dir, latest_date, config)?;
        spinner.finish_and_clear();
        Some(loaded)
    } else {
        None
    };
    for (date, dir) in chosen {
        let started = Instant::now();
        let spinner = progress::spinner(&format!("reading {date}"));
        let loaded = snapshot::load(&dir, date, config)?;
        spinner.set_message(format!("features {date}"));
        let later: Option<&Snapshot> = if date == latest_date {
            Some(&loaded)
        } else {
            latest.as_ref()
        };
        let mut built = anyhow::Context::with_context(features::build(&loaded, later, horizon), || {
            format!("features of {date}")
        })?;
        spinner.finish_and_clear();
        let out = config.data.processed_dir.join(date.to_string());
        let staged = StagedDir::new(&out)?;
        for (name, frame) in [
            ("clients", &mut built.clients),
            ("managers", &mut built.managers),
            ("agencies", &mut built.agencies),
        ] {
            write_frame(
                frame,
                &staged.path().join(format!("{name}.parquet")),
                FileFormat::Parquet,
            )?;
            if args.csv {
                write_frame(frame, &staged.path().join(format!("{name}.csv")), FileFormat::Csv)?;
            }
        }
        let report = serde_json::json!({
            "snapshot": date.to_string(),
            "source": dir.display().to_string(),
            "cleaning": loaded.cleaning,
            "warnings": loaded.warnings,
        });
        fsutil::write_bytes_atomic(
            &staged.path().join("cleaning.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        staged.commit()?;
        print_summary(&loaded, &built, &out, started.elapsed().as_secs_f64());
    }
    Ok(())
}

fn print_summary(loaded: &Snapshot, built: &features::Features, out: &std::path::Path, seconds: f64) {
    let labels = built.clients.column(CHURN_LABEL).ok();
    let label_text = match labels.and_then(|c| c.i32().ok().cloned()) {
        Some(ca) if ca.null_count() < ca.len() => {
            let known = ca.len() - ca.null_count();
            let positive = ca.sum().unwrap_or(0);
            format!(
                "churn known for {} clients, {:.2} % churned",
                thousands(known),
                100.0 * positive as f64 / known.max(1) as f64
            )
        }
        _ => "churn outcome not known yet (the horizon reaches past the latest snapshot)".to_string(),
    };
    println!(
        "{}: {} clients × {} columns, {} managers, {} agencies → {} ({:.2} s); {label_text}",
        loaded.date,
        thousands(built.clients.height()),
        built.clients.width(),
        built.managers.height(),
        built.agencies.height(),
        out.display(),
        seconds
    );
    for change in &loaded.cleaning.changes {
        println!(
            "  cleaned {}.{}: {} ({} rows)",
            change.table,
            change.column,
            change.rule,
            thousands(change.rows)
        );
    }
    for warning in &loaded.warnings {
        println!("  {warning}");
    }
}
