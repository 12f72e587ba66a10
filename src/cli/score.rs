use super::{UserError, progress, thousands};
use anyhow::Context;
use bankml::config::EngineConfig;
use bankml::data::features;
use bankml::data::format::{FileFormat, write_frame};
use bankml::data::snapshot;
use bankml::fsutil::{self, StagedDir};
use bankml::models::churn::{Risk, reasons_and_actions};
use bankml::models::registry::{Registry, RegistryError};
use bankml::models::tabular::{TabularModel, TrainError};
use clap::Args;
use polars::prelude::*;
use serde_json::json;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Snapshot to score (default: the latest).
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Also write CSV copies.
    #[arg(long)]
    pub csv: bool,
}

/// The champion of `model`, or `None` when none has been trained yet.
fn champion(registry: &Registry, model: &str, threads: usize) -> anyhow::Result<Option<TabularModel>> {
    match TabularModel::load(registry, model, None, threads) {
        Ok(m) => Ok(Some(m)),
        Err(TrainError::Registry(RegistryError::NoAlias { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Rows scored per batch: bounds the SHAP matrix's memory on millions of clients.
const BATCH: usize = 50_000;

pub fn run(args: ScoreArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let registry = Registry::new(&config.models.dir);
    let threads = config.models.boosting.thread_count();
    let churn = champion(&registry, "churn", threads)?;
    let manager = champion(&registry, "manager", threads)?;
    let agency = champion(&registry, "agency", threads)?;
    let recommender = match bankml::models::recommender::SavedRecommender::load(&registry, None) {
        Ok(r) => Some(r),
        Err(TrainError::Registry(RegistryError::NoAlias { .. })) => None,
        Err(e) => return Err(e.into()),
    };
    if churn.is_none() && manager.is_none() && agency.is_none() && recommender.is_none() {
        return Err(UserError("no trained models yet: run `bankml train` first".into()).into());
    }
    let (date, dir) = snapshot::find_snapshot(&config.data.raw_dir, args.snapshot.as_deref())?;
    let spinner = progress::spinner(&format!("reading {date}"));
    let loaded = snapshot::load(&dir, date, config)?;
    let built = features::build(&loaded, None, config.features.churn_horizon_days)?;
    spinner.finish_and_clear();

    let out = config
        .data
        .raw_dir
        .parent()
        .unwrap_or(std::path::Path::new("data"))
        .join("scores")
        .join(date.to_string());
    let staged = StagedDir::new(&out)?;
    let mut summary = json!({ "snapshot": date.to_string() });

    if let Some(model) = &churn {
        let clients = &built.clients;
        let bar = progress::bar(clients.height() as u64, "scoring clients");
        let (mut probabilities, mut risks, mut reasons, mut actions) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let names = model.design.names();
        let churn_config = &config.models.churn;
        for start in (0..clients.height()).step_by(BATCH) {
            let batch = clients.slice(start as i64, BATCH);
            let x = model.design.matrix(&batch)?;
            let p = model.booster.predict(&x)?;
            // Reasons and actions are for clients at Medium or High risk: only their rows go
            // through the (costly) contributions.
            let at_risk: Vec<usize> = (0..p.len())
                .filter(|&i| p[i] as f64 >= churn_config.medium_risk)
                .collect();
            let shap = model
                .booster
                .contributions_of(&x.take(&at_risk), !churn_config.exact_reasons)?;
            let width = names.len() + 1;
            let mut next = 0;
            for (i, probability) in p.iter().enumerate() {
                let (why, what) = if next < at_risk.len() && at_risk[next] == i {
                    next += 1;
                    reasons_and_actions(&shap[(next - 1) * width..next * width], &names, churn_config.reasons)
                } else {
                    (Vec::new(), Vec::new())
                };
                probabilities.push(*probability as f64);
                risks.push(Risk::of(*probability as f64, churn_config).name());
                reasons.push(why.join("; "));
                actions.push(what.join("; "));
            }
            bar.inc(batch.height() as u64);
        }
        bar.finish_and_clear();
        let mut frame = DataFrame::new_infer_height(vec![
            clients.column("cli")?.clone(),
            clients.column("ges")?.clone(),
            clients.column("age")?.clone(),
            Column::new("churn_probability".into(), &probabilities),
            Column::new("risk".into(), &risks),
            Column::new("reasons".into(), &reasons),
            Column::new("actions".into(), &actions),
        ])?;
        write(&mut frame, &staged, "clients", args.csv)?;
        let count = |level: &str| risks.iter().filter(|r| **r == level).count();
        summary["clients"] = json!({
            "model_version": model.meta.version,
            "count": probabilities.len(),
            "by_risk": { "Low": count("Low"), "Medium": count("Medium"), "High": count("High") },
            "mean_churn_probability": probabilities.iter().sum::<f64>() / probabilities.len().max(1) as f64,
        });
    }
    if let Some(saved) = &recommender {
        let started = Instant::now();
        let k = config.models.recommender.k;
        let index = bankml::models::recommender::HoldingsIndex::new(&loaded)?;
        let (active, baskets) = index.baskets_at(date.0);
        // The saved model's item order may differ from this snapshot's catalog: map by id.
        let to_model: std::collections::HashMap<&str, usize> = saved
            .model
            .items
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let (mut ids, mut ranks, mut products, mut names, mut categories, mut scores) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut cold = 0usize;
        for (client, basket) in active.iter().zip(&baskets) {
            let held: Vec<usize> = basket
                .iter()
                .filter_map(|i| to_model.get(index.items[*i].as_str()).copied())
                .collect();
            cold += usize::from(held.is_empty());
            for (rank, (item, score)) in saved.model.recommend(&held, k).into_iter().enumerate() {
                ids.push(index.clients[*client]);
                ranks.push(rank as i64 + 1);
                products.push(saved.model.items[item].clone());
                names.push(saved.names.get(item).cloned().unwrap_or_default());
                categories.push(saved.categories.get(item).cloned().unwrap_or_default());
                scores.push(score);
            }
        }
        let mut frame = DataFrame::new_infer_height(vec![
            Column::new("cli".into(), ids),
            Column::new("rank".into(), ranks),
            Column::new("product_id".into(), products),
            Column::new("product_name".into(), names),
            Column::new("category".into(), categories),
            Column::new("score".into(), scores),
        ])?;
        write(&mut frame, &staged, "recommendations", args.csv)?;
        summary["recommendations"] = json!({
            "method": saved.model.method.name(),
            "clients": active.len(),
            "cold_start_clients": cold,
            "per_client": k,
            "seconds": started.elapsed().as_secs_f64(),
        });
    }
    for (model, frame, key, name) in [
        (&manager, &built.managers, "ges", "managers"),
        (&agency, &built.agencies, "age", "agencies"),
    ] {
        let Some(model) = model else { continue };
        let predicted: Vec<f64> = model
            .booster
            .predict(&model.design.matrix(frame)?)?
            .iter()
            .map(|v| (*v as f64).clamp(0.0, 100.0))
            .collect();
        let mut scored = DataFrame::new_infer_height(vec![
            frame.column(key)?.clone(),
            Column::new("predicted_score".into(), &predicted),
            frame.column("performance_score")?.clone(),
        ])?;
        write(&mut scored, &staged, name, args.csv)?;
        let ids: Vec<String> = frame
            .column(key)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect();
        let mut ranked: Vec<(String, f64)> = ids.into_iter().zip(predicted.iter().copied()).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let entry = |(id, score): &(String, f64)| json!({ key: id, "predicted_score": score });
        summary[name] = json!({
            "model_version": model.meta.version,
            "count": ranked.len(),
            "mean_predicted_score": predicted.iter().sum::<f64>() / predicted.len().max(1) as f64,
            "top": ranked.iter().take(5).map(entry).collect::<Vec<_>>(),
            "bottom": ranked.iter().rev().take(5).map(entry).collect::<Vec<_>>(),
        });
    }
    fsutil::write_bytes_atomic(
        &staged.path().join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    staged.commit().context("writing scores")?;
    println!(
        "{date}: scored in {:.2} s → {}",
        started.elapsed().as_secs_f64(),
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
            r["per_client"], r["clients"], r["cold_start_clients"], r["method"]
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
    Ok(())
}

fn write(frame: &mut DataFrame, staged: &StagedDir, name: &str, csv: bool) -> anyhow::Result<()> {
    write_frame(
        frame,
        &staged.path().join(format!("{name}.parquet")),
        FileFormat::Parquet,
    )?;
    if csv {
        write_frame(frame, &staged.path().join(format!("{name}.csv")), FileFormat::Csv)?;
    }
    Ok(())
}
