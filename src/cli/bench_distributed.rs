//! `bankml bench distributed`: the churn model trained in one process and by 1, 2 … local
//! workers through XGBoost's tracker, on one project, side by side: wall, CPU, the largest
//! process's peak RSS, holdout AUC, and whether the model is the in-process one byte for byte.

use super::bench::{Cost, measure};
use bankml::config::EngineConfig;
use bankml::models::registry::Registry;
use bankml::vocab::ModelKind;
use std::path::Path;

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The newest churn version's holdout AUC and model bytes.
fn newest(registry: &Registry) -> anyhow::Result<(u32, f64, Vec<u8>)> {
    let version = registry
        .versions(ModelKind::Churn)?
        .into_iter()
        .max()
        .ok_or_else(|| anyhow::anyhow!("no churn model was written"))?;
    let dir = registry.version_dir(ModelKind::Churn, version);
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json"))?)?;
    let auc = meta["holdout"]["roc_auc"].as_f64().unwrap_or(f64::NAN);
    Ok((version, auc, std::fs::read(dir.join("model.json"))?))
}

pub fn run(dir: &Path, workers: &[usize], buckets: usize, config: &EngineConfig) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; figures are only meaningful from a release build");
    }
    let this = std::env::current_exe()?;
    let registry = Registry::new(dir.join(&config.models.dir));
    let buckets_text = buckets.to_string();
    eprintln!("bucketize --buckets {buckets} …");
    let bucketized = measure(&this, &["bucketize", "--buckets", &buckets_text], Some(dir))?;
    eprintln!("train --model churn (one process) …");
    let alone = measure(&this, &["train", "--model", "churn"], Some(dir))?;
    let (_, alone_auc, alone_model) = newest(&registry)?;
    let mut rows: Vec<(String, Cost, f64, bool)> = vec![("one process".into(), alone, alone_auc, true)];
    for &n in workers {
        let n_text = n.to_string();
        // The first run reads its buckets and builds its share's features; the second finds
        // them kept.
        for pass in ["first", "again"] {
            eprintln!("train --model churn --workers {n} ({pass}) …");
            let cost = measure(&this, &["train", "--model", "churn", "--workers", &n_text], Some(dir))?;
            let (_, auc, model) = newest(&registry)?;
            rows.push((format!("{n} worker(s), {pass}"), cost, auc, model == alone_model));
        }
    }
    println!(
        "bucketize ({buckets} buckets): {:.2} s wall, {:.2} s CPU, {:.2} GiB peak",
        bucketized.wall,
        bucketized.cpu,
        gib(bucketized.peak)
    );
    println!(
        "{:<22} {:>8} {:>8} {:>9} {:>9} {:>9} {:>12}",
        "train churn", "wall s", "CPU s", "peak GiB", "AUC", "ΔAUC", "= in-process"
    );
    for (name, cost, auc, same) in rows {
        println!(
            "{name:<22} {:>8.2} {:>8.2} {:>9.2} {:>9.5} {:>+9.5} {:>12}",
            cost.wall,
            cost.cpu,
            gib(cost.peak),
            auc,
            auc - alone_auc,
            if same { "yes" } else { "no" }
        );
    }
    println!("(peak: the largest single process; CPU: every process's)");
    Ok(())
}
