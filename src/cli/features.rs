use super::{progress, thousands};
use anyhow::Context;
use bankml::config::EngineConfig;
use bankml::data::date::Date;
use bankml::data::features::{self, CHURN_LABEL};
use bankml::data::snapshot;
use bankml::data::store::{FeatureStore, Manifest, Origin};
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
    /// Also write CSV copies beside the Parquet files (rebuilds them).
    #[arg(long)]
    pub csv: bool,
    /// Build again even when the kept features were built from the same exports, settings
    /// and bankml build.
    #[arg(long)]
    pub rebuild: bool,
}

/// Builds (or finds kept) the features of the chosen snapshots in data/processed/<date>/,
/// with churn as the newest snapshot sees it.
pub fn run(args: FeaturesArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let raw = &config.data.raw_dir;
    let all = snapshot::list_snapshots(raw)?;
    let chosen = if args.all {
        all.clone()
    } else {
        vec![snapshot::find_snapshot(raw, args.snapshot.as_deref())?]
    };
    let store = FeatureStore::new(config);
    // The latest snapshot carries every closing up to its date: it labels all earlier ones
    // whose horizon it reaches.
    let (latest_date, latest_dir) = all.last().cloned().context("no snapshots")?;
    let spinner = progress::spinner(&format!("reading {latest_date}"));
    let latest = snapshot::load(&latest_dir, latest_date, config)?;
    spinner.finish_and_clear();
    for (date, dir) in chosen {
        let started = Instant::now();
        let spinner = progress::spinner(&format!("features {date}"));
        let (manifest, built, origin) = if args.rebuild || args.csv {
            let own;
            let loaded = if date == latest_date {
                &latest
            } else {
                own = snapshot::load(&dir, date, config)?;
                &own
            };
            let (manifest, mut built) = store
                .rebuild(loaded, Some(&latest))
                .with_context(|| format!("features of {date}"))?;
            if args.csv {
                store.write(date, &mut built, &manifest, true)?;
            }
            (manifest, built, Origin::Built)
        } else {
            let given = (date == latest_date).then_some(&latest);
            let (stored, built) = store
                .ensure(date, given, Some(&latest))
                .with_context(|| format!("features of {date}"))?;
            let (manifest, built) = match built {
                Some(built) => (stored.manifest, built),
                // Kept: churn is brought up to the latest snapshot on disk too, so the files
                // people open say what the models are told.
                None => store.read_relabelled(date, stored.manifest, &latest)?,
            };
            (manifest, built, stored.origin)
        };
        spinner.finish_and_clear();
        print_summary(
            date,
            &manifest,
            &built,
            origin,
            &store.dir(date),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}

fn print_summary(
    date: Date,
    manifest: &Manifest,
    built: &features::Features,
    origin: Origin,
    out: &std::path::Path,
    seconds: f64,
) {
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
    let how = match origin {
        Origin::Built => "built",
        Origin::Kept => "kept (same exports, settings and build)",
    };
    println!(
        "{}: {} clients × {} columns, {} managers, {} agencies → {} ({how}, {:.2} s); {label_text}",
        date,
        thousands(built.clients.height()),
        built.clients.width(),
        built.managers.height(),
        built.agencies.height(),
        out.display(),
        seconds
    );
    for change in &manifest.cleaning.changes {
        println!(
            "  cleaned {}.{}: {} ({} rows)",
            change.table,
            change.column,
            change.rule,
            thousands(change.rows)
        );
    }
    for warning in &manifest.warnings {
        println!("  {warning}");
    }
}
