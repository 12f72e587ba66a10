//! `bankml evaluate`: metrics for any model's predictions, read from CSV or Parquet, printed
//! as one JSON document whose keys are the reference's metric names.

use super::UserError;
use bankml::data::table::{Sample, drift_sample, label_column, number_column, read_table, text_column};
use bankml::fsutil;
use bankml::metrics::drift::{self, DriftPolicy};
use bankml::metrics::{classification, ranking, regression};
use clap::{Args, Subcommand};
use polars::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    #[command(subcommand)]
    pub what: Evaluation,
    /// Write the JSON here (atomically) instead of printing it.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
}

/// One row per prediction: the truth and the model's output side by side.
#[derive(Args, Debug)]
pub struct PredictionFile {
    /// CSV or Parquet file with one row per prediction.
    #[arg(long)]
    data: PathBuf,
    /// Column with the truth (classification: 0/1 or true/false).
    #[arg(long)]
    target: String,
    /// Column with the model's output (classification: probability of class 1).
    #[arg(long)]
    prediction: String,
}

#[derive(Subcommand, Debug)]
pub enum Evaluation {
    /// Binary classifier: ROC AUC, Gini, KS, average precision, log loss, Brier, and precision,
    /// recall, F1, accuracy, false-positive rate and confusion counts at the threshold.
    Classification {
        #[command(flatten)]
        file: PredictionFile,
        /// A score at or above this is a positive prediction.
        #[arg(long, default_value_t = 0.5)]
        threshold: f64,
    },
    /// Regression: RMSE, MAE, R², share within ±15 %, Spearman, top-10 overlap.
    Regression {
        #[command(flatten)]
        file: PredictionFile,
    },
    /// Recommendations: precision, recall, NDCG, hit rate and MAP at k; catalog coverage and
    /// intra-list diversity when a catalog and item features are given.
    Ranking {
        /// Long format: user,item,rank (rank 1 is the first recommendation).
        #[arg(long)]
        recommendations: PathBuf,
        /// Long format: user,item (what each user really took).
        #[arg(long)]
        relevant: PathBuf,
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// One column `item`: the catalog, for coverage.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// `item,f1,f2,…`: item vectors, for intra-list diversity.
        #[arg(long)]
        item_features: Option<PathBuf>,
    },
    /// Drift of every shared column (or --columns) between two samples: PSI, KS, Wasserstein,
    /// Jensen–Shannon for numbers; PSI, Jensen–Shannon, chi-square for text.
    Drift {
        #[arg(long)]
        reference: PathBuf,
        #[arg(long)]
        current: PathBuf,
        /// Comma-separated columns (default: every column in both files).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// A column drifts when its PSI exceeds this.
        #[arg(long, default_value_t = 0.2)]
        psi_threshold: f64,
        /// The dataset drifts when at least this share of columns drift.
        #[arg(long, default_value_t = 0.5)]
        drift_share: f64,
    },
}

fn user(message: String) -> anyhow::Error {
    UserError(message).into()
}

pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let document = match args.what {
        Evaluation::Classification {
            file:
                PredictionFile {
                    data,
                    target,
                    prediction,
                },
            threshold,
        } => {
            let frame = read_table(&data)?;
            let labels = label_column(&frame, &target, &data)?;
            let scores = number_column(&frame, &prediction, &data)?;
            // Probabilities are cut within 0–1; a threshold outside it classifies every row alike.
            let probabilities = scores.iter().all(|s| (0.0..=1.0).contains(s));
            if !threshold.is_finite() || (probabilities && !(0.0..=1.0).contains(&threshold)) {
                return Err(user(format!(
                    "--threshold {threshold}: the scores in {} are probabilities (0–1), so the threshold must be within 0–1",
                    data.display()
                )));
            }
            let metrics = classification::evaluate(&labels, &scores, threshold)
                .map_err(|e| user(format!("{}: {e}", data.display())))?;
            serde_json::to_value(metrics)?
        }
        Evaluation::Regression {
            file:
                PredictionFile {
                    data,
                    target,
                    prediction,
                },
        } => {
            let frame = read_table(&data)?;
            let truth = number_column(&frame, &target, &data)?;
            let predicted = number_column(&frame, &prediction, &data)?;
            serde_json::to_value(
                regression::evaluate(&truth, &predicted).map_err(|e| user(format!("{}: {e}", data.display())))?,
            )?
        }
        Evaluation::Ranking {
            recommendations,
            relevant,
            k,
            catalog,
            item_features,
        } => evaluate_ranking(
            &recommendations,
            &relevant,
            k,
            catalog.as_deref(),
            item_features.as_deref(),
        )?,
        Evaluation::Drift {
            reference,
            current,
            columns,
            psi_threshold,
            drift_share,
        } => {
            if !(0.0..=1.0).contains(&drift_share) || psi_threshold < 0.0 {
                return Err(user(
                    "--drift-share must be within 0–1 and --psi-threshold at least 0".into(),
                ));
            }
            evaluate_drift(
                &reference,
                &current,
                columns,
                DriftPolicy {
                    sigmas: 0.0,
                    noise_alpha: 0.0,
                    psi_threshold,
                    drift_share,
                },
            )?
        }
    };
    let text = serde_json::to_string_pretty(&document)?;
    match args.out {
        Some(path) => fsutil::write_bytes_atomic(&path, format!("{text}\n").as_bytes())?,
        None => println!("{text}"),
    }
    Ok(())
}

fn evaluate_ranking(
    recommendations: &Path,
    relevant: &Path,
    k: usize,
    catalog: Option<&Path>,
    item_features: Option<&Path>,
) -> anyhow::Result<Value> {
    if k == 0 {
        return Err(user("--k must be at least 1".into()));
    }
    let recs = read_table(recommendations)?;
    let users = text_column(&recs, "user", recommendations)?;
    let items = text_column(&recs, "item", recommendations)?;
    let ranks = number_column(&recs, "rank", recommendations)?;
    if let Some((row, rank)) = ranks
        .iter()
        .enumerate()
        .find(|(_, r)| !(r.fract() == 0.0 && **r >= 1.0))
    {
        return Err(user(format!(
            "{}, line {}, column rank: {rank} is not a rank (whole numbers from 1, the first recommendation)",
            recommendations.display(),
            row + 2
        )));
    }
    let mut lists: HashMap<String, Vec<(f64, String)>> = HashMap::new();
    for ((user, item), rank) in users.into_iter().zip(items).zip(ranks) {
        lists.entry(user).or_default().push((rank, item));
    }
    let recommended: HashMap<String, Vec<String>> = lists
        .into_iter()
        .map(|(user, mut list)| {
            list.sort_by(|a, b| a.0.total_cmp(&b.0));
            (user, list.into_iter().map(|(_, item)| item).collect())
        })
        .collect();
    let truth = read_table(relevant)?;
    let mut wanted: HashMap<String, HashSet<String>> = HashMap::new();
    for (user, item) in text_column(&truth, "user", relevant)?
        .into_iter()
        .zip(text_column(&truth, "item", relevant)?)
    {
        wanted.entry(user).or_default().insert(item);
    }
    let context = |e: bankml::metrics::MetricError| user(format!("{}: {e}", recommendations.display()));
    let mut document = serde_json::to_value(ranking::accuracy(&recommended, &wanted, k).map_err(context)?)?;
    if let Some(path) = catalog {
        let frame = read_table(path)?;
        let items: HashSet<String> = text_column(&frame, "item", path)?.into_iter().collect();
        document["coverage"] = json!(ranking::coverage(&recommended, &items, k).map_err(context)?);
    }
    if let Some(path) = item_features {
        let frame = read_table(path)?;
        let ids = text_column(&frame, "item", path)?;
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .filter(|n| n != "item")
            .collect();
        if names.is_empty() {
            return Err(user(format!("{}: no feature columns beside \"item\"", path.display())));
        }
        let columns: Vec<Vec<f64>> = names
            .iter()
            .map(|n| number_column(&frame, n, path))
            .collect::<Result<_, _>>()?;
        let vectors: HashMap<String, Vec<f64>> = ids
            .into_iter()
            .enumerate()
            .map(|(row, id)| (id, columns.iter().map(|c| c[row]).collect()))
            .collect();
        document["intra_list_diversity"] =
            json!(ranking::intra_list_diversity(&recommended, &vectors, k).map_err(context)?);
    }
    Ok(document)
}

fn evaluate_drift(
    reference: &Path,
    current: &Path,
    columns: Option<Vec<String>>,
    policy: DriftPolicy,
) -> anyhow::Result<Value> {
    let (reference_frame, current_frame) = (read_table(reference)?, read_table(current)?);
    for (path, frame) in [(reference, &reference_frame), (current, &current_frame)] {
        if frame.height() == 0 {
            return Err(user(format!(
                "{}: no rows (drift needs values on both sides)",
                path.display()
            )));
        }
    }
    let in_current: HashSet<String> = current_frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let explicit = columns.is_some();
    let names: Vec<String> = match columns {
        Some(names) => names,
        None => reference_frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .filter(|n| in_current.contains(n))
            .collect(),
    };
    if names.is_empty() {
        return Err(user(format!(
            "{} and {} share no column",
            reference.display(),
            current.display()
        )));
    }
    // Columns are independent: two workers share them.
    let results: Vec<anyhow::Result<Option<(String, Value, f64)>>> = std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(names.len());
        let chunks: Vec<&[String]> = names.chunks(names.len().div_ceil(workers)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (reference_frame, current_frame) = (&reference_frame, &current_frame);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|name| {
                            column_drift(
                                name,
                                reference_frame,
                                reference,
                                current_frame,
                                current,
                                policy,
                                explicit,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(anyhow::anyhow!("a drift worker panicked"))])
            })
            .collect()
    });
    let mut out = BTreeMap::new();
    let mut psis = Vec::new();
    for result in results {
        if let Some((name, value, psi)) = result? {
            psis.push(psi);
            out.insert(name, value);
        }
    }
    let skipped: Vec<&String> = names.iter().filter(|n| !out.contains_key(*n)).collect();
    let verdict = policy.verdict(&psis);
    Ok(json!({
        "reference": reference.display().to_string(),
        "current": current.display().to_string(),
        "columns": out,
        "skipped_empty_columns": skipped,
        "features": verdict.features,
        "drifted_features": verdict.drifted_features,
        "share_drifted": verdict.share_drifted,
        "drift_share": verdict.drift_share,
        "psi_threshold": verdict.psi_threshold,
        "dataset_drift": verdict.dataset_drift,
    }))
}

fn column_drift(
    name: &str,
    reference_frame: &DataFrame,
    reference: &Path,
    current_frame: &DataFrame,
    current: &Path,
    policy: DriftPolicy,
    explicit: bool,
) -> anyhow::Result<Option<(String, Value, f64)>> {
    let context = |e: bankml::metrics::MetricError| user(format!("column {name}: {e}"));
    let samples = (
        drift_sample(reference_frame, name, reference)?,
        drift_sample(current_frame, name, current)?,
    );
    // Without --columns, a column with no values on a side (e.g. a label not known yet) is
    // listed as skipped rather than failing the whole comparison.
    if !explicit && (samples.0.is_empty() || samples.1.is_empty()) {
        return Ok(None);
    }
    let (value, psi) = match samples {
        (Sample::Numbers(r, missing_r), Sample::Numbers(c, missing_c)) => {
            let d = drift::numeric(&r, &c).map_err(context)?;
            let psi = d.psi;
            let mut value = serde_json::to_value(d)?;
            value["kind"] = json!("numeric");
            value["missing_reference"] = json!(missing_r);
            value["missing_current"] = json!(missing_c);
            (value, psi)
        }
        (Sample::Text(r, missing_r), Sample::Text(c, missing_c)) => {
            let d = drift::categorical_counts(&r, &c).map_err(context)?;
            let psi = d.psi;
            let mut value = serde_json::to_value(d)?;
            value["kind"] = json!("categorical");
            value["missing_reference"] = json!(missing_r);
            value["missing_current"] = json!(missing_c);
            (value, psi)
        }
        _ => {
            return Err(user(format!(
                "column {name} is numbers in one file and text in the other ({} vs {})",
                reference.display(),
                current.display()
            )));
        }
    };
    let mut value = value;
    value["drifted"] = json!(policy.drifted(psi));
    Ok(Some((name.to_string(), value, psi)))
}
