//! Training and loading the three tabular models — churn (classifier), manager and agency
//! performance (regressors) — on features across months, with a temporal holdout.

use super::boosted::{self, BoostError, BoostParams, Matrix, Split, Task, TrainedBooster};
use super::churn::{ChurnConfig, ClassWeight};
use super::collective::Peers;
use super::design::{Design, DesignCounts, DesignError};
use super::domain;
use super::progress::{TrainingProgress, TrainingStep};
use super::registry::{Registry, RegistryError};
use super::streamed;
use crate::data::date::Date;
use crate::fsutil;
use crate::metrics::calibration::Isotonic;
use crate::metrics::estimation::Calibration;
use crate::metrics::reference::FeatureReference;
use crate::metrics::{MetricError, classification, regression};
use crate::vocab::ModelKind;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{model}: no rows with a known {target} to train on{hint}")]
    NoTrainingRows {
        model: ModelKind,
        target: &'static str,
        hint: String,
    },
    #[error("{model}: every {target} in the training data is {value}; a classifier needs both outcomes")]
    SingleClass {
        model: ModelKind,
        target: &'static str,
        value: i64,
    },
    #[error(transparent)]
    Boost(#[from] BoostError),
    #[error(transparent)]
    Design(#[from] DesignError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error(transparent)]
    Recommender(#[from] super::recommender::RecommenderError),
    #[error("{0}")]
    Polars(#[from] PolarsError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Write(#[from] crate::data::format::WriteError),
    #[error(transparent)]
    Collective(#[from] super::collective::CollectiveError),
}

/// Which frame, target and id columns make a model.
#[derive(Debug, Clone, Copy)]
pub struct TabularSpec {
    pub model: ModelKind,
    pub task: Task,
    pub target: &'static str,
    /// Ids and the target: never features.
    pub exclude: &'static [&'static str],
}

pub const CHURN: TabularSpec = TabularSpec {
    model: ModelKind::Churn,
    task: Task::Binary,
    target: crate::data::features::CHURN_LABEL,
    exclude: &["snapshot", "cli", "ges", "age", crate::data::features::CHURN_LABEL],
};
pub const MANAGER: TabularSpec = TabularSpec {
    model: ModelKind::Manager,
    task: Task::Regression,
    target: "performance_score",
    exclude: &["snapshot", "ges", "age", "performance_score"],
};
/// The spec of a tabular model (`None` for the recommender).
pub fn spec_of(kind: ModelKind) -> Option<&'static TabularSpec> {
    match kind {
        ModelKind::Churn => Some(&CHURN),
        ModelKind::Manager => Some(&MANAGER),
        ModelKind::Agency => Some(&AGENCY),
        ModelKind::Recommender => None,
    }
}

pub const AGENCY: TabularSpec = TabularSpec {
    model: ModelKind::Agency,
    task: Task::Regression,
    target: "performance_score",
    exclude: &["snapshot", "age", "performance_score"],
};

/// What a training run produced, written as `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    pub model: ModelKind,
    pub version: u32,
    pub task: Task,
    pub target: String,
    pub created_at: String,
    pub parameters: BoostParams,
    pub extra_parameters: Vec<(String, String)>,
    pub features: Vec<String>,
    pub training_snapshots: Vec<String>,
    /// The snapshots the drift reference statistics come from: the most recent ones up to the
    /// training cut-off whose history is complete (see [`HISTORY_SNAPSHOTS`]), labelled or not —
    /// features need no outcome, and the latest months are the closest to what is monitored.
    #[serde(default)]
    pub reference_snapshots: Vec<String>,
    pub holdout_snapshot: String,
    /// Labelled snapshots left out of training because their outcome window overlaps the
    /// holdout's (churn: a client leaving in the holdout's 90 days is a churner in the months
    /// just before it too, with nearly the same features — training on those months would
    /// show the model the holdout's answers and inflate its AUC and its calibrator).
    #[serde(default)]
    pub purged_snapshots: Vec<String>,
    pub rows_train: usize,
    pub rows_holdout: usize,
    pub data_hash: String,
    pub best_rounds: u32,
    pub holdout: HoldoutMetrics,
    /// `None` when no cross-validation ran at training (churn's runs in the weekly validation).
    pub cross_validation: Option<CrossValidation>,
    pub importance: Vec<(String, f64)>,
    /// The whole run: matrices, boosting, holdout, cross-validation, statistics.
    pub training_seconds: f64,
    /// XGBoost's boosting alone (what Python's `xgb.train` time compares with).
    #[serde(default)]
    pub boosting_seconds: f64,
    pub library: String,
    /// How many workers trained it together (XGBoost's collective); 1 in one process.
    #[serde(default = "one_worker")]
    pub workers: usize,
}

fn one_worker() -> usize {
    1
}

pub const LIBRARY: &str = concat!("XGBoost 3.4.1 (xgb 3.4.0), bankml ", env!("CARGO_PKG_VERSION"));

/// A loaded model ready to score.
pub struct TabularModel {
    pub meta: ModelMeta,
    pub design: Design,
    pub booster: TrainedBooster,
    /// Churn's calibrator (`calibration.json`), learned on the version's holdout; absent for
    /// the regressions and for churn versions trained before calibration existed.
    pub calibration: Option<Calibration>,
}

impl TabularModel {
    /// The model's prediction for every row of `frame`: from its design's columns straight
    /// into the laid-out trees when it has them (no row-major matrix), else through a matrix
    /// and XGBoost — the same values either way.
    pub fn predict_frame(&self, frame: &DataFrame) -> Result<Vec<f32>, TrainError> {
        if self.booster.has_forest() {
            let columns = self.design.columns(frame)?;
            let write = |first, block: &mut [f32]| columns.write_rows(first, block);
            if let Some(predicted) = self.booster.predict_rows(columns.rows(), columns.cols(), write) {
                return Ok(predicted?);
            }
        }
        Ok(self.booster.predict(&self.design.matrix(frame)?)?)
    }

    /// Churn rates of `scores`: the calibrator's, or the scores themselves for a version
    /// without one (whose risk levels then cut the class-weighted scores, as they used to).
    pub fn churn_rates(&self, scores: &[f64]) -> Vec<f64> {
        match &self.calibration {
            Some(calibration) => calibration.isotonic.predict_all(scores),
            None => scores.to_vec(),
        }
    }
}

fn stack(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let lazy: Vec<LazyFrame> = frames.into_iter().map(|f| f.lazy()).collect();
    concat(lazy, UnionArgs::default())?.collect()
}

pub fn target_values(frame: &DataFrame, target: &str) -> PolarsResult<Vec<f32>> {
    let cast = frame.column(target)?.cast(&DataType::Float32)?;
    Ok(cast.f32()?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
}

/// The training data's hash when workers trained together: theirs, hashed in rank order.
fn data_hash_of_workers(hashes: &[Vec<u8>]) -> String {
    let mut hash = streamed::Fnv::default();
    for worker in hashes {
        hash.bytes(worker);
        hash.bytes(b"/");
    }
    hash.finish()
}

/// Every worker's values of each list, concatenated in rank order (alone: the lists).
fn all_workers<const N: usize>(peers: &dyn Peers, lists: [Vec<f32>; N]) -> Result<[Vec<f32>; N], TrainError> {
    if peers.world() == 1 {
        return Ok(lists);
    }
    let mut out: [Vec<f32>; N] = std::array::from_fn(|_| Vec::new());
    for (list, all) in lists.iter().zip(out.iter_mut()) {
        let bytes: Vec<u8> = list.iter().flat_map(|v| v.to_le_bytes()).collect();
        for theirs in peers.gather(&bytes)? {
            all.extend(
                theirs
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
    }
    Ok(out)
}

/// The drift reference and the domain classifier's samples, from the window's months: the
/// columns they describe, each feature's reference statistics, a seeded sample of each month.
type Reference = (
    Design,
    std::collections::BTreeMap<String, FeatureReference>,
    Vec<DataFrame>,
);

fn reference_from(
    spec: &TabularSpec,
    months: &dyn Months,
    window: &[Date],
    seed: u64,
) -> Result<Reference, TrainError> {
    // One month whole at a time: the newest gives the design, each its domain sample. Holding
    // the window's months together took three months of every feature at once (at 10M clients
    // more than this 24 GiB machine has).
    let mut columns = None;
    let mut samples = Vec::with_capacity(window.len());
    for (m, date) in window.iter().enumerate() {
        let frame = months.frame(*date, None)?;
        if m + 1 == window.len() {
            columns = Some(Design::fit(&frame, spec.exclude)?);
        }
        samples.push(sample_frame(
            &frame,
            domain::SAMPLE_ROWS_PER_MONTH,
            seed.wrapping_add(m as u64),
        )?);
        drop(frame);
        fsutil::release_freed_memory();
    }
    let columns = columns.ok_or_else(|| no_training_rows(spec))?;
    let references = reference_statistics(&columns, months, window)?;
    Ok((columns, references, samples))
}

/// FNV-1a over the training matrix and labels: the same data gives the same hash.
fn data_hash(matrix: &Matrix, labels: &[f32]) -> String {
    let mut hash = streamed::Fnv::default();
    hash.floats(&matrix.values);
    hash.floats(labels);
    hash.finish()
}

/// Flagging the High risk level as a decision: precision, recall and F1 of the clients flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HighRisk {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub clients: u64,
}

/// Metrics of predictions against truth, as the model's task measures them (the JSON shape
/// of `meta.json`'s `holdout`: the metrics' own fields, plus `high_risk` for a classifier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HoldoutMetrics {
    Binary {
        #[serde(flatten)]
        metrics: classification::BinaryMetrics,
        high_risk: HighRisk,
    },
    Regression(regression::RegressionMetrics),
}

impl HoldoutMetrics {
    /// The metric a model is judged by: AUC for churn, RMSE for the performance scores.
    pub fn headline(&self) -> (&'static str, f64) {
        match self {
            HoldoutMetrics::Binary { metrics, .. } => ("roc_auc", metrics.roc_auc),
            HoldoutMetrics::Regression(m) => ("rmse", m.rmse),
        }
    }

    /// The figures cross-validation averages, by their metric names.
    pub fn figures(&self) -> Vec<(&'static str, f64)> {
        match self {
            HoldoutMetrics::Binary { metrics: m, .. } => vec![
                ("roc_auc", m.roc_auc),
                ("average_precision", m.average_precision),
                ("precision", m.precision),
                ("recall", m.recall),
                ("f1", m.f1),
                ("log_loss", m.log_loss),
            ],
            HoldoutMetrics::Regression(m) => vec![
                ("rmse", m.rmse),
                ("mae", m.mae),
                ("r2", m.r2),
                ("spearman", m.spearman),
                ("within_15pct", m.within_15pct),
            ],
        }
    }

    pub fn binary(&self) -> Option<&classification::BinaryMetrics> {
        match self {
            HoldoutMetrics::Binary { metrics, .. } => Some(metrics),
            HoldoutMetrics::Regression(_) => None,
        }
    }

    pub fn regression(&self) -> Option<&regression::RegressionMetrics> {
        match self {
            HoldoutMetrics::Regression(m) => Some(m),
            HoldoutMetrics::Binary { .. } => None,
        }
    }
}

/// Mean and standard deviation of one metric over the folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

/// k-fold cross-validation: `{"folds": k, "<metric>": {"mean", "std"}, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    pub folds: usize,
    #[serde(flatten)]
    pub metrics: std::collections::BTreeMap<String, MeanStd>,
}

impl CrossValidation {
    pub fn get(&self, metric: &str) -> Option<MeanStd> {
        self.metrics.get(metric).copied()
    }
}

/// Metrics of predictions against truth, as the model's task measures them.
///
/// `high_risk` is a churn rate: the rows a classifier's calibrator (`calibrator`, or one
/// learned on these very rows, as training learns the stored one on its holdout) puts at or
/// above it.
pub fn holdout_metrics(
    spec: &TabularSpec,
    truth: &[f32],
    predicted: &[f32],
    churn: &ChurnConfig,
    calibrator: Option<&Isotonic>,
) -> Result<HoldoutMetrics, TrainError> {
    match spec.task {
        Task::Binary => {
            let labels: Vec<bool> = truth.iter().map(|v| *v >= 0.5).collect();
            let scores: Vec<f64> = predicted.iter().map(|v| *v as f64).collect();
            let metrics = classification::evaluate(&labels, &scores, churn.threshold)?;
            let rates = match calibrator {
                Some(calibrator) => calibrator.predict_all(&scores),
                None => {
                    let truth: Vec<f64> = labels.iter().map(|l| f64::from(u8::from(*l))).collect();
                    Isotonic::fit(&scores, &truth)?.predict_all(&scores)
                }
            };
            let high = classification::confusion(&labels, &rates, churn.high_risk);
            Ok(HoldoutMetrics::Binary {
                metrics,
                high_risk: HighRisk {
                    threshold: churn.high_risk,
                    precision: high.precision(),
                    recall: high.recall(),
                    f1: high.f1(),
                    clients: high.tp + high.fp,
                },
            })
        }
        Task::Regression => {
            let truth: Vec<f64> = truth.iter().map(|v| *v as f64).collect();
            let predicted: Vec<f64> = predicted.iter().map(|v| (*v as f64).clamp(0.0, 100.0)).collect();
            Ok(HoldoutMetrics::Regression(regression::evaluate(&truth, &predicted)?))
        }
    }
}

/// The churn calibrator and sampling components of a version (`metrics::estimation`).
pub const CALIBRATION_FILE: &str = "calibration.json";
/// The domain classifier's learned limit (`models::domain`) and its reference rows: a seeded
/// sample of each reference month, in the model's input columns.
pub const DOMAIN_FILE: &str = "domain.json";
pub const DOMAIN_SAMPLE_FILE: &str = "domain_sample.parquet";

/// Snapshots before this many earlier ones have features with incomplete windows (90-day
/// counts, three months of activity, churn in the last 90 days reach back before the data
/// start): they train, but never describe "normal" for drift.
pub const HISTORY_SNAPSHOTS: usize = 3;

/// How a training run is set up (`config/bankml.yaml` → `models`).
#[derive(Debug, Clone, Copy)]
pub struct TrainSettings<'a> {
    pub boosting: &'a BoostParams,
    pub churn: &'a ChurnConfig,
    /// k of the cross-validation at training; 0: none.
    pub cv_folds: usize,
    /// How many of the most recent complete snapshots the drift reference comes from.
    pub reference_snapshots: usize,
    /// The churn outcome's horizon: a binary model's training snapshots end this many days
    /// before its holdout, so no outcome window is shared (see [`ModelMeta::purged_snapshots`]).
    pub label_horizon_days: i32,
    /// Where XGBoost's external-memory pages go (a scratch folder inside, removed after).
    pub scratch: &'a Path,
    /// The workers training this model together ([`Solo`](super::collective::Solo) alone):
    /// each holds its own clients' rows; rank 0 writes the model.
    pub peers: &'a dyn Peers,
    /// Told of each step and boosting round (default: the log).
    pub progress: &'a dyn TrainingProgress,
}

impl<'a> TrainSettings<'a> {
    /// How `config` trains `model` in one process: cross-validated at training unless it is
    /// churn (whose cross-validation runs in the weekly validation).
    pub fn of(config: &'a crate::config::EngineConfig, model: ModelKind) -> TrainSettings<'a> {
        TrainSettings {
            boosting: &config.models.boosting,
            churn: &config.models.churn,
            cv_folds: if model == ModelKind::Churn {
                0
            } else {
                config.models.cv_folds
            },
            reference_snapshots: config.models.reference_snapshots,
            label_horizon_days: config.features.churn_horizon_days,
            scratch: &config.data.processed_dir,
            peers: &super::collective::Solo,
            progress: &super::progress::Logged,
        }
    }
}

/// The drift reference window: the last `count` snapshots with complete history (from the
/// [`HISTORY_SNAPSHOTS`]th on), or the last `count` of all when none is complete (a short
/// history).
fn reference_window(snapshots: &[Date], count: usize) -> Vec<Date> {
    let pool = snapshots
        .get(HISTORY_SNAPSHOTS..)
        .filter(|p| !p.is_empty())
        .unwrap_or(snapshots);
    pool[pool.len().saturating_sub(count.max(1))..].to_vec()
}

fn no_training_rows(spec: &TabularSpec) -> TrainError {
    let hint = if spec.task == Task::Binary {
        " (churn is known only for snapshots at least 90 days before the latest one: generate more months)".into()
    } else {
        String::new()
    };
    TrainError::NoTrainingRows {
        model: spec.model,
        target: spec.target,
        hint,
    }
}

/// The snapshots a model learns from, one frame per month, handed out one at a time: a
/// million clients' year of features need not be in memory at once.
pub trait Months {
    /// The months, oldest first.
    fn dates(&self) -> Vec<Date>;
    /// Every row of `date`'s frame (labelled or not); only `columns` when given.
    fn frame(&self, date: Date, columns: Option<&[&str]>) -> Result<DataFrame, TrainError>;
    /// Only `columns` of `date`'s frame, none of them the target: what needs no label (the
    /// drift reference) need not wait for one to be attached.
    fn inputs(&self, date: Date, columns: &[&str]) -> Result<DataFrame, TrainError> {
        self.frame(date, Some(columns))
    }
}

/// Months already in memory (tests and callers that built them).
pub struct InMemory(pub Vec<(Date, DataFrame)>);

impl Months for InMemory {
    fn dates(&self) -> Vec<Date> {
        self.0.iter().map(|(d, _)| *d).collect()
    }

    fn frame(&self, date: Date, columns: Option<&[&str]>) -> Result<DataFrame, TrainError> {
        let frame = self
            .0
            .iter()
            .find(|(d, _)| *d == date)
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        Ok(match columns {
            Some(columns) => frame.select(columns.iter().copied())?,
            None => frame,
        })
    }
}

/// `date`'s rows whose target is known.
fn labelled(months: &dyn Months, spec: &TabularSpec, date: Date) -> Result<DataFrame, TrainError> {
    Ok(months
        .frame(date, None)?
        .lazy()
        .filter(col(spec.target).is_not_null())
        .collect()?)
}

/// The rows a model is fitted on.
enum TrainRows {
    /// Every labelled row of these months, in this order.
    Months(Vec<Date>),
    /// A single labelled month's seeded 80 %.
    Rows(DataFrame),
}

/// The rows a model is fitted and judged on.
struct TemporalSplit {
    train: TrainRows,
    /// The held-out rows when they are a share of the one labelled month; `None`: all of
    /// `holdout_date`'s, read when the model is to be judged (not held while it is trained).
    holdout: Option<DataFrame>,
    training_dates: Vec<Date>,
    holdout_date: Date,
    purged: Vec<Date>,
}

/// Training rows (the labelled snapshots before the last, less those within `purge_days` of
/// it) and holdout rows (the last); with a single labelled snapshot, a seeded 20 % of its rows
/// are held out instead. When purging would leave nothing to train on (a short history), no
/// snapshot is purged. Only the target column of each month is read to decide.
fn temporal_split(
    spec: &TabularSpec,
    months: &dyn Months,
    seed: u64,
    purge_days: i32,
    peers: &dyn Peers,
) -> Result<TemporalSplit, TrainError> {
    let dates = months.dates();
    let mut known = Vec::with_capacity(dates.len());
    for date in &dates {
        let target = months.frame(*date, Some(&[spec.target]))?;
        let column = target.column(spec.target)?;
        known.push((column.len() - column.null_count()) as u64);
    }
    // A month is labelled when any worker's clients are.
    peers.sum_counts(&mut known)?;
    let mut labelled_dates: Vec<Date> = dates
        .iter()
        .zip(&known)
        .filter(|(_, n)| **n > 0)
        .map(|(d, _)| *d)
        .collect();
    let Some(holdout_date) = labelled_dates.pop() else {
        return Err(no_training_rows(spec));
    };
    if labelled_dates.is_empty() {
        let frame = labelled(months, spec, holdout_date)?;
        let folds = boosted::folds(frame.height(), 5, seed);
        let take = |idx: &[usize]| -> PolarsResult<DataFrame> {
            let mut sorted = idx.to_vec();
            sorted.sort_unstable();
            let ca = IdxCa::from_vec("idx".into(), sorted.into_iter().map(|i| i as IdxSize).collect());
            frame.take(&ca)
        };
        let holdout = take(&folds[0])?;
        let rest: Vec<usize> = folds[1..].concat();
        return Ok(TemporalSplit {
            train: TrainRows::Rows(take(&rest)?),
            holdout: Some(holdout),
            training_dates: vec![holdout_date],
            holdout_date,
            purged: Vec::new(),
        });
    }
    let overlaps = |d: &Date| d.0 + purge_days.max(0) > holdout_date.0;
    let purged: Vec<Date> = if labelled_dates.iter().all(overlaps) {
        Vec::new()
    } else {
        labelled_dates.iter().copied().filter(overlaps).collect()
    };
    labelled_dates.retain(|d| !purged.contains(d));
    Ok(TemporalSplit {
        train: TrainRows::Months(labelled_dates.clone()),
        holdout: None,
        training_dates: labelled_dates,
        holdout_date,
        purged,
    })
}

/// The training rows, as training holds them.
enum TrainingData {
    /// Every row's inputs and targets, in memory.
    InMemory { x: Matrix, y: Vec<f32> },
    /// Read month by month whenever they are needed: these months, with this many labelled
    /// rows each.
    Streamed { dates: Vec<Date>, heights: Vec<usize> },
}

/// Where the training rows' inputs are once their targets are in hand: in memory, or the
/// fitted rows' spooled to a scratch file for XGBoost to read in batches.
enum Inputs {
    InMemory(Matrix),
    Spooled(streamed::SpooledRows),
}

/// The design fitted on the training rows, and the rows: in memory, or — when `stream` says
/// so of the training values (rows × inputs) and they are whole months — left in the store to
/// be read month by month. Months are read one at a time (categories first, then values), so
/// no concatenated frame ever exists: in memory, the f32 matrix is the only copy of the rows.
fn training_data(
    spec: &TabularSpec,
    months: &dyn Months,
    rows: &TrainRows,
    stream: impl Fn(usize) -> bool,
    peers: &dyn Peers,
) -> Result<(Design, TrainingData), TrainError> {
    match rows {
        TrainRows::Rows(frame) => {
            let mut counts = DesignCounts::default();
            counts.observe(frame, spec.exclude)?;
            let design = design_of_all(counts, peers)?;
            let x = design.matrix(frame)?;
            let y = target_values(frame, spec.target)?;
            Ok((design, TrainingData::InMemory { x, y }))
        }
        TrainRows::Months(dates) => {
            let mut heights = Vec::with_capacity(dates.len());
            let mut counts = DesignCounts::default();
            for date in dates {
                let frame = labelled(months, spec, *date)?;
                heights.push(frame.height());
                counts.observe(&frame, spec.exclude)?;
            }
            let design = design_of_all(counts, peers)?;
            let names = design.names();
            let total: usize = heights.iter().sum();
            if stream(total * names.len()) {
                let dates = dates.clone();
                return Ok((design, TrainingData::Streamed { dates, heights }));
            }
            let mut values = Vec::with_capacity(total * names.len());
            let mut y = Vec::with_capacity(total);
            for date in dates {
                let (x, targets) = streamed::labelled_inputs(months, spec, &design, *date)?;
                values.extend(x.values);
                y.extend(targets);
            }
            let x = Matrix {
                values,
                rows: y.len(),
                names,
            };
            Ok((design, TrainingData::InMemory { x, y }))
        }
    }
}

/// The design every worker's rows together give: each worker's counts, merged in rank order.
fn design_of_all(counts: DesignCounts, peers: &dyn Peers) -> Result<Design, TrainError> {
    if peers.world() == 1 {
        return Ok(counts.finish());
    }
    let json = |e: serde_json::Error| TrainError::File {
        path: "the design's category counts".into(),
        message: e.to_string(),
    };
    let mine = serde_json::to_vec(&counts).map_err(json)?;
    let mut merged = DesignCounts::default();
    for theirs in peers.gather(&mine)? {
        merged.merge(serde_json::from_slice(&theirs).map_err(json)?);
    }
    Ok(merged.finish())
}

fn class_balance(
    spec: &TabularSpec,
    labels: &[f32],
    churn: &ChurnConfig,
    peers: &dyn Peers,
) -> Result<Vec<(&'static str, String)>, TrainError> {
    if spec.task != Task::Binary {
        return Ok(vec![]);
    }
    let mut counts = [labels.iter().filter(|v| **v >= 0.5).count() as u64, labels.len() as u64];
    peers.sum_counts(&mut counts)?;
    let [positives, rows] = counts.map(|n| n as usize);
    if positives == 0 || positives == rows {
        return Err(TrainError::SingleClass {
            model: spec.model,
            target: spec.target,
            value: i64::from(positives > 0),
        });
    }
    Ok(match churn.class_weight {
        ClassWeight::Balanced => vec![(
            "scale_pos_weight",
            ((rows - positives) as f64 / positives as f64).to_string(),
        )],
        ClassWeight::None => vec![],
    })
}

/// Trains `spec`'s model on `months` and adds it to the registry as a new version: champion
/// if there is none yet, otherwise challenger.
pub fn train(
    spec: &TabularSpec,
    months: &dyn Months,
    settings: TrainSettings,
    registry: &Registry,
    export: Option<&Path>,
) -> Result<ModelMeta, TrainError> {
    train_as_worker(spec, months, settings, registry, export)?.ok_or_else(|| TrainError::File {
        path: registry.model_dir(spec.model).display().to_string(),
        message: format!(
            "worker {} of {} writes no model; rank 0 does",
            settings.peers.rank(),
            settings.peers.world()
        ),
    })
}

/// [`train`] as one of `settings.peers`: rank 0 adds the model to the registry and returns
/// its meta, the other workers `None` once their part of the boosting is done.
pub fn train_as_worker(
    spec: &TabularSpec,
    months: &dyn Months,
    settings: TrainSettings,
    registry: &Registry,
    export: Option<&Path>,
) -> Result<Option<ModelMeta>, TrainError> {
    let TrainSettings {
        boosting: params,
        churn,
        cv_folds,
        reference_snapshots,
        label_horizon_days,
        scratch,
        peers,
        progress,
    } = settings;
    let started = std::time::Instant::now();
    let dates = months.dates();
    progress.step(TrainingStep::Reading { months: dates.len() });
    let window = reference_window(&dates, reference_snapshots);
    // The reference comes first, from the window's frames as they are (every client of the
    // month, labelled or not); they are dropped before the training rows are read. Workers
    // training together take it from rank 0's clients, a random share of the bank's (clients
    // are spread by a hash of their id), as they take the domain sample.
    let reference = if peers.rank() == 0 {
        Some(reference_from(spec, months, &window, params.seed)?)
    } else {
        None
    };
    let purge_days = if spec.task == Task::Binary {
        label_horizon_days
    } else {
        0
    };
    let TemporalSplit {
        train: train_rows,
        holdout: holdout_frame,
        training_dates,
        holdout_date,
        purged,
    } = temporal_split(spec, months, params.seed, purge_days, peers)?;
    // Rows go to a quantile matrix month by month from the store, through a spool, unless
    // the cross-validation or the export need them in memory anyway.
    let stream = |values: usize| export.is_none() && cv_folds < 2 && boosted::binned(params, values, None).is_some();
    let (design, data) = training_data(spec, months, &train_rows, stream, peers)?;
    drop(train_rows);
    // Early stopping watches a seeded 15 % of the training rows; both sets in row order.
    let rows_all = match &data {
        TrainingData::InMemory { y, .. } => y.len(),
        TrainingData::Streamed { heights, .. } => heights.iter().sum(),
    };
    let watched = streamed::Watched::new(rows_all, params.seed);
    // Every row's targets, the watched rows (evaluated every round, so they get their own
    // dense matrix) and the data's hash; the inputs too when they are in memory.
    let (inputs, y, x_watch, y_watch, hash) = match data {
        TrainingData::InMemory { x, y } => {
            let watch_rows = watched.watch_rows();
            let y_watch: Vec<f32> = watch_rows.iter().map(|&i| y[i]).collect();
            let hash = data_hash(&x, &y);
            let x_watch = x.take(&watch_rows);
            (Inputs::InMemory(x), y, x_watch, y_watch, hash)
        }
        TrainingData::Streamed { dates, heights } => {
            let gathered = streamed::TrainingMonths {
                spec,
                months,
                dates: &dates,
                heights: &heights,
                design: &design,
            }
            .gather(&watched, scratch)?;
            let streamed::Gathered {
                labels,
                watch,
                watch_labels,
                hash,
                fitted,
            } = gathered;
            (Inputs::Spooled(fitted), labels, watch, watch_labels, hash)
        }
    };
    let extra = class_balance(spec, &y, churn, peers)?;
    let y_fit: Vec<f32> = y
        .iter()
        .enumerate()
        .filter(|(i, _)| !watched.is_watched(*i))
        .map(|(_, v)| *v)
        .collect();
    let (rows_train, hash) = match peers.world() {
        1 => (y.len(), hash),
        _ => {
            let mut rows = [y.len() as u64];
            peers.sum_counts(&mut rows)?;
            let hashes = peers.gather(hash.as_bytes())?;
            (rows[0] as usize, data_hash_of_workers(&hashes))
        }
    };
    let watch = (x_watch.rows > 0 && params.early_stopping_rounds > 0).then_some(Split::all(&x_watch, &y_watch));
    let boosting_started = std::time::Instant::now();
    progress.step(TrainingStep::Matrix { rows: y_fit.len() });
    // The fitted rows are read from `x` in place (no copy of 85 % of it), or from the spool.
    let mut prepared = match &inputs {
        Inputs::InMemory(x) => boosted::prepare(
            spec.task,
            params,
            Split {
                matrix: x,
                rows: Some(&watched.fit_rows()),
                labels: &y_fit,
            },
            watch,
            None,
            Some(scratch),
        )?,
        Inputs::Spooled(fitted) => {
            let mut batches = fitted.batches(&y_fit)?;
            boosted::prepare_streamed(
                spec.task,
                params,
                &mut batches,
                y_fit.len(),
                design.names(),
                boosted::label_sums(&y_fit, None),
                watch,
                Some(scratch),
            )?
        }
    };
    if peers.world() > 1 {
        let (sum, total) = boosted::label_sums(&y_fit, None);
        let mut sums = [sum, total];
        peers.sum(&mut sums)?;
        prepared.start_from(sums[0], sums[1]);
    }
    // XGBoost has its own copy of the rows now: the matrix is needed again only by
    // cross-validation and the export, and freed otherwise (at a million clients, over a
    // gigabyte) before the boosting rounds.
    let x_fit = match (export, &inputs) {
        (Some(_), Inputs::InMemory(x)) => Some(x.take(&watched.fit_rows())),
        _ => None,
    };
    // The spool goes too (its file, as big as the rows, is XGBoost's to forget now).
    let x = match inputs {
        Inputs::InMemory(x) if cv_folds >= 2 => Some(x),
        unneeded => {
            drop(unneeded);
            None
        }
    };
    fsutil::release_freed_memory();
    let booster = prepared.train_together(params, &extra, peers, progress)?;
    progress.step(TrainingStep::Finishing);
    fsutil::release_freed_memory();
    let boosting_seconds = boosting_started.elapsed().as_secs_f64();

    // The holdout month is read now, its inputs only, once the training rows are gone.
    let (x_holdout, y_holdout) = match &holdout_frame {
        Some(frame) => (design.matrix(frame)?, target_values(frame, spec.target)?),
        None => streamed::labelled_inputs(months, spec, &design, holdout_date)?,
    };
    drop(holdout_frame);
    if let (Some(dir), Some(x_fit)) = (export, &x_fit) {
        let splits: [(&str, &Matrix, &[f32]); 3] = [
            ("fit", x_fit, &y_fit),
            ("watch", &x_watch, &y_watch),
            ("holdout", &x_holdout, &y_holdout),
        ];
        export_split(dir, spec, params, &extra, &splits)?;
    }
    let predicted = booster.predict(&x_holdout)?;
    let watched = if spec.task == Task::Binary && x_watch.rows > 0 {
        booster.predict(&x_watch)?
    } else {
        Vec::new()
    };
    // Every worker's (prediction, outcome) pairs, so the holdout figures and the calibrator
    // are those of the whole bank; then rank 0 finishes alone.
    let [predicted, y_holdout, watched, y_watch] = all_workers(peers, [predicted, y_holdout, watched, y_watch])?;
    let rows_holdout = y_holdout.len();
    peers.leave()?;
    let importance = booster.gain_importance()?;
    let model_json = booster.to_json()?;
    let best_rounds = booster.best_rounds;
    drop(booster);
    let Some((columns, references, samples)) = reference else {
        // Another worker: its part is done.
        return Ok(None);
    };
    // What "normal" looks like to the domain classifier: each reference month's sample against
    // the others'.
    let domain_columns = domain::columns(&design);
    let sample_matrices: Vec<Matrix> = samples
        .iter()
        .map(|f| domain_columns.matrix(f))
        .collect::<Result<_, _>>()?;
    let domain_reference = domain::learn(&sample_matrices, params.seed)?;
    // Only the model's input columns are kept (no client ids), with the month each row is of.
    let kept: Vec<PlSmallStr> = std::iter::once("snapshot")
        .chain(columns.inputs())
        .filter(|c| samples.first().is_some_and(|f| f.column(c).is_ok()))
        .map(PlSmallStr::from)
        .collect();
    let mut domain_sample = stack(samples)?.select(kept)?;
    // Churn keeps a calibrator, to estimate its performance on snapshots whose outcome is not
    // known yet and to read its scores as churn rates. It learns on every labelled row the
    // booster did not fit: the holdout month and the early-stopping rows of the training
    // months. One month alone (a few hundred churners at 20,000 clients) left the
    // calibrator's steps noisy enough to bias the estimates by up to 0.02 AUC.
    let calibration = match spec.task {
        Task::Binary => {
            let labels: Vec<bool> = y_holdout.iter().chain(&y_watch).map(|v| *v >= 0.5).collect();
            let scores: Vec<f64> = predicted.iter().chain(&watched).map(|v| *v as f64).collect();
            Some(Calibration::fit(&labels, &scores, churn.threshold)?)
        }
        Task::Regression => None,
    };
    let holdout = holdout_metrics(
        spec,
        &y_holdout,
        &predicted,
        churn,
        calibration.as_ref().map(|c| &c.isotonic),
    )?;
    let cross_validation = match &x {
        Some(x) => Some(cross_validate(spec, x, &y, settings, best_rounds)?),
        None => None,
    };

    let meta = ModelMeta {
        model: spec.model,
        version: 0,
        task: spec.task,
        target: spec.target.into(),
        created_at: crate::vocab::time::now_iso(),
        parameters: params.clone(),
        extra_parameters: extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        features: design.names(),
        training_snapshots: training_dates.iter().map(Date::to_string).collect(),
        reference_snapshots: window.iter().map(Date::to_string).collect(),
        holdout_snapshot: holdout_date.to_string(),
        purged_snapshots: purged.iter().map(Date::to_string).collect(),
        rows_train,
        rows_holdout,
        data_hash: hash,
        best_rounds,
        holdout,
        cross_validation,
        importance,
        training_seconds: started.elapsed().as_secs_f64(),
        boosting_seconds,
        library: LIBRARY.into(),
        workers: peers.world(),
    };
    let version = registry.add_version::<TrainError>(spec.model, |dir| {
        write_json(&dir.join("design.json"), &design)?;
        write_json(&dir.join("reference.json"), &references)?;
        write_json(&dir.join(DOMAIN_FILE), &domain_reference)?;
        crate::data::format::write_frame(
            &mut domain_sample,
            &dir.join(DOMAIN_SAMPLE_FILE),
            crate::data::format::FileFormat::Parquet,
        )?;
        if let Some(calibration) = &calibration {
            write_json(&dir.join(CALIBRATION_FILE), calibration)?;
        }
        write_json(&dir.join("meta.json"), &meta)?;
        fsutil::write_bytes_atomic(&dir.join("model.json"), &model_json).map_err(|e| TrainError::File {
            path: dir.display().to_string(),
            message: e.to_string(),
        })
    })?;
    // The version number is known only once the folder is in place; record it in the meta.
    let meta = ModelMeta { version, ..meta };
    write_json(&registry.version_dir(spec.model, version).join("meta.json"), &meta)?;
    if registry.aliases(spec.model)?.champion.is_none() {
        registry.promote(spec.model, version)?;
    } else {
        registry.set_challenger(spec.model, version)?;
    }
    Ok(Some(meta))
}

/// Writes the exact matrices and XGBoost parameters of a training run, so the same model can be
/// trained in Python and compared (`tests/fixtures/compare_xgboost.py`).
fn export_split(
    dir: &Path,
    spec: &TabularSpec,
    params: &BoostParams,
    extra: &[(&str, String)],
    splits: &[(&str, &Matrix, &[f32])],
) -> Result<(), TrainError> {
    for (name, matrix, labels) in splits {
        let path = dir.join(format!("{name}.csv"));
        let mut text = String::new();
        text.push_str(
            &matrix
                .names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(","),
        );
        text.push_str(",label\n");
        for (i, label) in labels.iter().enumerate() {
            for v in matrix.row(i) {
                if v.is_nan() {
                    text.push_str("nan,");
                } else {
                    text.push_str(&format!("{v},"));
                }
            }
            text.push_str(&format!("{label}\n"));
        }
        fsutil::write_bytes_atomic(&path, text.as_bytes()).map_err(|e| TrainError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let (metric, maximize) = spec.task.stopping_metric();
    let fit_labels = splits.first().map(|s| s.2).unwrap_or(&[]);
    let settings = json!({
        "objective": if spec.task == Task::Binary { "binary:logistic" } else { "reg:squarederror" },
        "eval_metric": metric,
        "maximize": maximize,
        "tree_method": params.tree_method,
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "nthread": params.thread_count(),
        "seed": params.seed,
        "base_score": fit_labels.iter().map(|v| *v as f64).sum::<f64>() / fit_labels.len().max(1) as f64,
        "rounds": params.rounds,
        "early_stopping_rounds": params.early_stopping_rounds,
        "extra": extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
    });
    write_json(&dir.join("params.json"), &settings)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    fsutil::write_bytes_atomic(path, text.as_bytes()).map_err(|e| TrainError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// k-fold cross-validation (`settings.cv_folds`) with the chosen number of rounds: mean and
/// spread of each metric. A fold too large for memory keeps XGBoost's pages under
/// `settings.scratch`, as training does (at 10M clients a fold's pages took ~16 GB: the
/// system's temporary folder may be a small tmpfs).
pub fn cross_validate(
    spec: &TabularSpec,
    x: &Matrix,
    y: &[f32],
    settings: TrainSettings,
    rounds: u32,
) -> Result<CrossValidation, TrainError> {
    let TrainSettings {
        boosting: params,
        churn,
        cv_folds: k,
        scratch,
        ..
    } = settings;
    let folds = boosted::folds(x.rows, k, params.seed.wrapping_add(1));
    let fixed = BoostParams {
        rounds: rounds.max(1),
        early_stopping_rounds: 0,
        ..params.clone()
    };
    let mut per_fold: Vec<HoldoutMetrics> = Vec::new();
    for test in &folds {
        let train_rows: Vec<usize> = folds
            .iter()
            .filter(|f| !std::ptr::eq(*f, test))
            .flatten()
            .copied()
            .collect();
        let y_train: Vec<f32> = train_rows.iter().map(|&i| y[i]).collect();
        let y_test: Vec<f32> = test.iter().map(|&i| y[i]).collect();
        // Cross-validation runs in one process, on its own rows.
        let extra = class_balance(spec, &y_train, churn, &super::collective::Solo)?;
        let fold = Split {
            matrix: x,
            rows: Some(&train_rows),
            labels: &y_train,
        };
        let model = boosted::prepare(spec.task, &fixed, fold, None, None, Some(scratch))?.train(&fixed, &extra)?;
        let predicted = model.predict(&x.take(test))?;
        per_fold.push(holdout_metrics(spec, &y_test, &predicted, churn, None)?);
    }
    let mut metrics = std::collections::BTreeMap::new();
    let names: Vec<&'static str> = per_fold
        .first()
        .map(|m| m.figures().into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default();
    for (i, name) in names.into_iter().enumerate() {
        let values: Vec<f64> = per_fold.iter().map(|m| m.figures()[i].1).collect();
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len().max(1) as f64).sqrt();
        metrics.insert(name.to_string(), MeanStd { mean, std });
    }
    Ok(CrossValidation { folds: k, metrics })
}

/// Features whose window months are read together for their reference statistics: a few at
/// a time, so memory holds a few columns of the window, not every feature of three months.
const REFERENCE_COLUMNS_AT_ONCE: usize = 8;

/// Reference statistics of every column `columns` reads, over the `window` months of `months`
/// (oldest first), each with its per-month PSIs, for drift checks.
fn reference_statistics(
    columns: &Design,
    months: &dyn Months,
    window: &[Date],
) -> Result<std::collections::BTreeMap<String, FeatureReference>, TrainError> {
    let mut out = std::collections::BTreeMap::new();
    let inputs: Vec<&str> = columns.inputs().collect();
    for group in inputs.chunks(REFERENCE_COLUMNS_AT_ONCE) {
        let frames: Vec<DataFrame> = window
            .iter()
            .map(|d| months.inputs(*d, group))
            .collect::<Result<_, _>>()?;
        let rows: usize = frames.iter().map(DataFrame::height).sum();
        for name in group {
            let reference = if columns.numeric.iter().any(|n| n == name) {
                let mut values = Vec::with_capacity(frames.len());
                for month in &frames {
                    let cast = month.column(name)?.cast(&DataType::Float64)?;
                    values.push(
                        cast.f64()?
                            .iter()
                            .flatten()
                            .filter(|v| v.is_finite())
                            .collect::<Vec<f64>>(),
                    );
                }
                FeatureReference::numeric_window(&values, rows)
            } else {
                let mut values = Vec::with_capacity(frames.len());
                for month in &frames {
                    values.push(month.column(name)?.str()?.iter().flatten().collect::<Vec<&str>>());
                }
                FeatureReference::categorical_window(&values, rows)
            };
            if let Ok(reference) = reference {
                out.insert((*name).to_string(), reference);
            }
        }
    }
    Ok(out)
}

/// A seeded sample of at most `n` rows of `frame`, in their order.
pub fn sample_frame(frame: &DataFrame, n: usize, seed: u64) -> PolarsResult<DataFrame> {
    let picked = domain::sample_rows(frame.height(), n, seed);
    let ca = IdxCa::from_vec("idx".into(), picked.into_iter().map(|i| i as IdxSize).collect());
    frame.take(&ca)
}

impl TabularModel {
    /// The champion (or `version`) of `model` from the registry.
    pub fn load(
        registry: &Registry,
        model: ModelKind,
        version: Option<u32>,
        threads: usize,
    ) -> Result<TabularModel, TrainError> {
        let (_, dir) = registry.resolve(model, version)?;
        let path = |name: &str| dir.join(name).display().to_string();
        let failed = |name: &str, e: &dyn std::fmt::Display| TrainError::File {
            path: path(name),
            message: e.to_string(),
        };
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| failed(name, &e));
        let meta: ModelMeta = serde_json::from_slice(&read("meta.json")?).map_err(|e| failed("meta.json", &e))?;
        let design: Design = serde_json::from_slice(&read("design.json")?).map_err(|e| failed("design.json", &e))?;
        let booster = TrainedBooster::from_json(&read("model.json")?, design.names(), threads)?;
        // Optional: churn versions trained before calibration existed have none.
        let calibration = match std::fs::read(dir.join(CALIBRATION_FILE)) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| failed(CALIBRATION_FILE, &e))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(failed(CALIBRATION_FILE, &e)),
        };
        Ok(TabularModel {
            meta,
            design,
            booster,
            calibration,
        })
    }
}

#[cfg(test)]
mod metrics_shape_tests {
    use super::*;

    #[test]
    fn holdout_metrics_keep_their_json_shape_and_read_back_typed() {
        let truth = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
        let scores = [0.9f32, 0.2, 0.6, 0.4, 0.3, 0.1];
        let churn = ChurnConfig::default();
        let binary = holdout_metrics(&CHURN, &truth, &scores, &churn, None).unwrap();
        let json = serde_json::to_value(&binary).unwrap();
        assert_eq!(
            json["roc_auc"],
            json!(binary.binary().unwrap().roc_auc),
            "flat, as meta.json had it"
        );
        assert_eq!(json["high_risk"]["threshold"], json!(churn.high_risk));
        assert_eq!(json["confusion"]["fn"], json!(binary.binary().unwrap().confusion.fn_));
        let back: HoldoutMetrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, binary);
        assert_eq!(back.headline().0, "roc_auc");
        let regression = holdout_metrics(&MANAGER, &[50.0, 60.0, 70.0], &[52.0, 58.0, 75.0], &churn, None).unwrap();
        let back: HoldoutMetrics = serde_json::from_value(serde_json::to_value(&regression).unwrap()).unwrap();
        assert_eq!(back.headline(), ("rmse", regression.regression().unwrap().rmse));
        let cv = CrossValidation {
            folds: 3,
            metrics: [("rmse".to_string(), MeanStd { mean: 5.0, std: 0.5 })].into(),
        };
        let json = serde_json::to_value(&cv).unwrap();
        assert_eq!(json, json!({"folds": 3, "rmse": {"mean": 5.0, "std": 0.5}}));
        assert_eq!(serde_json::from_value::<CrossValidation>(json).unwrap(), cv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::collective::Solo;

    /// A fold too large for memory keeps XGBoost's pages where training keeps them (under
    /// `data/`), not in the system's temporary folder: a "folder" that is a file fails the
    /// cross-validation, naming it; a real one is used and left empty.
    #[test]
    fn cross_validation_keeps_xgboost_pages_in_the_training_scratch_folder() {
        let config = crate::config::EngineConfig::default();
        let dir = tempfile::tempdir().unwrap();
        let not_a_folder = dir.path().join("a-file");
        std::fs::write(&not_a_folder, "").unwrap();
        let params = BoostParams {
            rounds: 2,
            threads: 1,
            matrix: crate::config::models::TrainingMatrix::ExternalMemory,
            ..BoostParams::default()
        };
        let rows = 400;
        let x = Matrix {
            values: (0..rows * 2).map(|i| (i % 17) as f32).collect(),
            rows,
            names: vec!["a".into(), "b".into()],
        };
        let y: Vec<f32> = (0..rows).map(|i| f32::from(i % 3 == 0)).collect();
        let settings = |scratch| TrainSettings {
            boosting: &params,
            cv_folds: 2,
            scratch,
            ..TrainSettings::of(&config, ModelKind::Churn)
        };
        let refused = cross_validate(&CHURN, &x, &y, settings(&not_a_folder), 2).unwrap_err();
        assert!(
            refused.to_string().contains(&not_a_folder.display().to_string()),
            "{refused}"
        );
        let scratch = dir.path().join("scratch");
        let validated = cross_validate(&CHURN, &x, &y, settings(&scratch), 2).unwrap();
        assert_eq!(validated.folds, 2);
        assert!(validated.metrics["roc_auc"].mean > 0.0);
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "pages removed");
    }

    /// Month-end snapshots of 2025 (day numbers), each a frame of 10 rows with a churn label
    /// from `labelled` months on (`None`: the outcome is not known yet).
    fn months(count: usize, labelled: usize) -> Vec<(Date, DataFrame)> {
        (0..count)
            .map(|m| {
                let date = Date::parse(&format!("2025-{:02}-28", m + 1)).unwrap();
                let label: Vec<Option<i32>> = (0..10).map(|i| (m < labelled).then_some(i % 2)).collect();
                let frame = df!("x" => (0..10).map(|i| i as f64).collect::<Vec<_>>(), "churn" => label).unwrap();
                (date, frame)
            })
            .collect()
    }

    #[test]
    fn training_stops_a_horizon_before_the_holdout() {
        // Labelled Jan..Sep; holdout Sep 28. A 90-day horizon reaches back to Jun 30: Jul and
        // Aug share the holdout's outcome window and are purged; Jan..Jun train.
        let history = InMemory(months(12, 9));
        let split = temporal_split(&CHURN, &history, 1, 90, &Solo).unwrap();
        assert_eq!(split.holdout_date.to_string(), "2025-09-28");
        let names = |d: &[Date]| d.iter().map(Date::to_string).collect::<Vec<_>>();
        assert_eq!(names(&split.purged), ["2025-07-28", "2025-08-28"]);
        assert_eq!(split.training_dates.len(), 6);
        assert_eq!(split.training_dates.last().unwrap().to_string(), "2025-06-28");
        let Ok((_, TrainingData::InMemory { x, y })) = training_data(&CHURN, &history, &split.train, |_| false, &Solo)
        else {
            panic!("the rows in memory when not streamed");
        };
        assert_eq!((x.rows, y.len()), (60, 60));
        let Ok((_, TrainingData::Streamed { dates, heights })) =
            training_data(&CHURN, &history, &split.train, |_| true, &Solo)
        else {
            panic!("the rows left in the store when streamed");
        };
        assert_eq!((dates, heights), (split.training_dates.clone(), vec![10; 6]));
        // Without a horizon (the regressors) every earlier month trains.
        let split = temporal_split(&CHURN, &history, 1, 0, &Solo).unwrap();
        assert!(split.purged.is_empty());
        assert_eq!(split.training_dates.len(), 8);
        // When purging would leave nothing, nothing is purged.
        let split = temporal_split(&CHURN, &InMemory(months(4, 3)), 1, 90, &Solo).unwrap();
        assert!(split.purged.is_empty());
        assert_eq!(split.training_dates.len(), 2);
    }

    #[test]
    fn the_reference_window_is_the_latest_complete_snapshots_labelled_or_not() {
        let dates: Vec<Date> = months(12, 9).into_iter().map(|(d, _)| d).collect();
        let window = reference_window(&dates, 6);
        assert_eq!(window.first().unwrap().to_string(), "2025-07-28");
        assert_eq!(
            window.last().unwrap().to_string(),
            "2025-12-28",
            "the latest months, unlabelled"
        );
        // Short history: the first HISTORY_SNAPSHOTS are incomplete but all there is.
        assert_eq!(reference_window(&dates[..3], 6), dates[..3].to_vec());
        assert_eq!(reference_window(&dates[..5], 6), dates[3..5].to_vec());
    }

    #[test]
    fn the_reference_read_a_few_columns_at_a_time_is_the_one_of_whole_months() {
        // More features than one read takes, numbers and categories, each month different.
        let numbers = REFERENCE_COLUMNS_AT_ONCE + 3;
        let history = InMemory(
            (0..4)
                .map(|m| {
                    let date = Date::parse(&format!("2025-{:02}-28", m + 1)).unwrap();
                    let mut columns: Vec<Column> = (0..numbers)
                        .map(|f| {
                            let values: Vec<f64> = (0..50).map(|i| ((i * (f + 2) + m * 7) % 31) as f64).collect();
                            Column::new(format!("x{f}").into(), values)
                        })
                        .collect();
                    let regions: Vec<&str> = (0..50).map(|i| ["N", "S", "E"][(i + m) % 3]).collect();
                    columns.push(Column::new("region".into(), regions));
                    columns.push(Column::new("churn".into(), vec![0i32; 50]));
                    (date, DataFrame::new_infer_height(columns).unwrap())
                })
                .collect(),
        );
        let window: Vec<Date> = history.dates()[1..].to_vec();
        let (design, references, samples) = reference_from(&CHURN, &history, &window, 3).unwrap();
        assert_eq!(samples.len(), window.len());
        assert_eq!(references.len(), numbers + 1, "every input of the design");
        let whole: Vec<DataFrame> = window.iter().map(|d| history.frame(*d, None).unwrap()).collect();
        for name in design.inputs() {
            let expected = if name == "region" {
                let months: Vec<Vec<&str>> = whole
                    .iter()
                    .map(|f| f.column(name).unwrap().str().unwrap().iter().flatten().collect())
                    .collect();
                FeatureReference::categorical_window(&months, 150).unwrap()
            } else {
                let months: Vec<Vec<f64>> = whole
                    .iter()
                    .map(|f| f.column(name).unwrap().f64().unwrap().iter().flatten().collect())
                    .collect();
                FeatureReference::numeric_window(&months, 150).unwrap()
            };
            assert_eq!(references[name], expected, "{name}");
        }
    }
}
