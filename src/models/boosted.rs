//! Gradient-boosted trees through XGBoost — the one place the library is touched.
//!
//! Parameters go to XGBoost as the same name/value pairs Python's `xgb.train(params, …)`
//! takes, so a configuration means the same thing in both. Models are saved in XGBoost's own
//! JSON, so a model trained by the bank's data scientists in Python loads here and ours there.

use super::collective::{Peers, Solo};
use super::forest::Forest;
use super::progress::{TrainingProgress, TrainingStep};
use super::quantile::{Prediction, RawBooster, RowBatches, XgbMatrix};
pub use crate::config::models::BoostParams;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use xgb::{Booster, DMatrix};

/// The environment XGBoost's OpenMP (libgomp) must find when a process starts, so that its idle
/// workers sleep instead of spinning at every barrier. libgomp reads it when it is loaded,
/// before `main`: it is given to child processes, and `bankml` restarts itself with it
/// (`src/main.rs`), never set from inside. Measured on `train --model churn` at 1M: user CPU
/// 189–191 s spinning against 146–159 s sleeping (21 % of the samples were workers waiting),
/// the same wall time and the same `model.json` byte for byte.
pub const OPENMP_SLEEPS_WHEN_IDLE: (&str, &str) = ("OMP_WAIT_POLICY", "passive");

#[derive(Debug, thiserror::Error)]
pub enum BoostError {
    #[error("XGBoost: {0}")]
    Xgboost(String),
    #[error("the training set is empty")]
    Empty,
    #[error("{0}")]
    Shape(String),
    /// A batch of training rows could not be read while XGBoost asked for it.
    #[error("reading the training rows: {0}")]
    Rows(String),
}

impl From<xgb::XGBError> for BoostError {
    fn from(e: xgb::XGBError) -> Self {
        BoostError::Xgboost(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, BoostError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// `binary:logistic`; early stopping watches AUC (log loss would fight a
    /// `scale_pos_weight`, which moves probabilities on purpose).
    Binary,
    /// `reg:squarederror`; early stopping watches RMSE.
    Regression,
}

impl Task {
    /// The validation metric early stopping watches, and whether higher is better.
    pub fn stopping_metric(self) -> (&'static str, bool) {
        match self {
            Task::Binary => ("auc", true),
            Task::Regression => ("rmse", false),
        }
    }
}

/// A dense row-major matrix of features, NaN for missing.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub values: Vec<f32>,
    pub rows: usize,
    pub names: Vec<String>,
}

impl Matrix {
    pub fn cols(&self) -> usize {
        self.names.len()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.cols()..(i + 1) * self.cols()]
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> Matrix {
        let mut values = Vec::with_capacity(indices.len() * self.cols());
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Matrix {
            values,
            rows: indices.len(),
            names: self.names.clone(),
        }
    }

    fn dmatrix(&self, labels: Option<&[f32]>, weights: Option<&[f32]>) -> Result<DMatrix> {
        if self.rows == 0 {
            return Err(BoostError::Empty);
        }
        let mut d = DMatrix::from_dense(&self.values, self.rows)?;
        if let Some(labels) = labels {
            d.set_labels(labels)?;
        }
        if let Some(weights) = weights {
            d.set_weights(weights)?;
        }
        Ok(d)
    }
}

pub struct TrainedBooster {
    booster: RawBooster,
    /// The same trees laid out for fast prediction, built and checked against XGBoost the
    /// first time rows enough are predicted (`None` inside: XGBoost predicts).
    forest: std::sync::OnceLock<Option<Forest>>,
    /// Threads XGBoost uses to build a matrix for contributions.
    threads: usize,
    pub best_rounds: u32,
    pub names: Vec<String>,
    /// The stopping metric on the validation set per round (empty without one).
    pub validation_curve: Vec<f64>,
}

// SAFETY: an XGBoost booster handle has no thread affinity: it may be used from any thread, one
// at a time. `TrainedBooster` is not `Sync`, so shared use still needs a lock (the API server
// keeps its models behind one); moving it to another thread (loading models on a blocking
// thread, then serving from the runtime) is all this allows.
unsafe impl Send for TrainedBooster {}

/// Labels and optional weights of one split.
pub struct Split<'a> {
    pub matrix: &'a Matrix,
    /// The rows of `matrix` in the split, in this order; `None`: every row.
    pub rows: Option<&'a [usize]>,
    /// One per row of the split.
    pub labels: &'a [f32],
}

impl<'a> Split<'a> {
    /// Every row of `matrix`.
    pub fn all(matrix: &'a Matrix, labels: &'a [f32]) -> Split<'a> {
        Split {
            matrix,
            rows: None,
            labels,
        }
    }

    /// Rows in the split.
    pub fn len(&self) -> usize {
        self.rows.map_or(self.matrix.rows, <[usize]>::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The split's rows as a matrix of their own: borrowed when it is every row.
    fn materialized(&self) -> std::borrow::Cow<'a, Matrix> {
        match self.rows {
            None => std::borrow::Cow::Borrowed(self.matrix),
            Some(rows) => std::borrow::Cow::Owned(self.matrix.take(rows)),
        }
    }
}

/// The XGBoost parameters of a training, as Python's `xgb.train(params, …)` takes them.
fn parameters(task: Task, params: &BoostParams, base_score: f64, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let objective = match task {
        Task::Binary => "binary:logistic",
        Task::Regression => "reg:squarederror",
    };
    let metric = task.stopping_metric().0;
    let pairs: Vec<(&str, String)> = vec![
        ("objective", objective.into()),
        ("eval_metric", metric.into()),
        ("tree_method", params.tree_method.clone()),
        ("max_depth", params.max_depth.to_string()),
        ("eta", params.learning_rate.to_string()),
        ("subsample", params.subsample.to_string()),
        ("colsample_bytree", params.colsample_bytree.to_string()),
        ("min_child_weight", params.min_child_weight.to_string()),
        ("lambda", params.reg_lambda.to_string()),
        ("nthread", params.thread_count().to_string()),
        ("seed", params.seed.to_string()),
        // Python's XGBoost fits the intercept from the labels; the binding would otherwise
        // always send 0.5. Set it the same way so both train the same model.
        ("base_score", base_score.to_string()),
        ("verbosity", "0".into()),
    ];
    pairs
        .iter()
        .chain(extra)
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect()
}

/// The intercept XGBoost would fit: the label mean (clamped inside (0, 1) for probabilities).
fn base_score(task: Task, labels: &[f32], weights: Option<&[f32]>) -> f64 {
    let (sum, total) = label_sums(labels, weights);
    base_score_of(task, sum, total)
}

/// The weighted sum of `labels` and the sum of weights (1 each without them): what the
/// intercept is the ratio of, summed by workers training together.
pub fn label_sums(labels: &[f32], weights: Option<&[f32]>) -> (f64, f64) {
    let (mut sum, mut total) = (0.0f64, 0.0f64);
    for (i, y) in labels.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i] as f64);
        sum += w * *y as f64;
        total += w;
    }
    (sum, total)
}

fn base_score_of(task: Task, sum: f64, total: f64) -> f64 {
    let mean = if total > 0.0 { sum / total } else { 0.5 };
    match task {
        Task::Binary => mean.clamp(1e-6, 1.0 - 1e-6),
        Task::Regression => mean,
    }
}

/// Trains on `train`, stopping early on `validation` when given. `weights` (per training row)
/// carry class balancing. `extra` are further XGBoost parameters (e.g. `scale_pos_weight`).
pub fn train(
    task: Task,
    params: &BoostParams,
    train: Split,
    validation: Option<Split>,
    weights: Option<&[f32]>,
    extra: &[(&str, String)],
) -> Result<TrainedBooster> {
    prepare(task, params, train, validation, weights, None)?.train(params, extra)
}

/// XGBoost's own copies of a training's rows, made: what [`prepare`] returns, so the caller
/// can let its matrix go before the boosting rounds (at a million clients, over a gigabyte).
pub struct Prepared {
    task: Task,
    matrices: Matrices,
    base_score: f64,
    names: Vec<String>,
    /// The validation rows' labels, for an evaluation over every worker's rows.
    watch_labels: Vec<f32>,
}

enum Matrices {
    Dense { train: DMatrix, valid: Option<DMatrix> },
    Quantile { train: XgbMatrix, valid: Option<XgbMatrix> },
}

/// Builds the matrices [`train`] boosts on, as `params.matrix` says; external memory keeps
/// its pages in a scratch folder made in `scratch` (default: the system's temporary folder).
pub fn prepare(
    task: Task,
    params: &BoostParams,
    train: Split,
    validation: Option<Split>,
    weights: Option<&[f32]>,
    scratch: Option<&std::path::Path>,
) -> Result<Prepared> {
    if train.is_empty() {
        return Err(BoostError::Empty);
    }
    if train.labels.len() != train.len() {
        return Err(BoostError::Shape(format!(
            "{} labels for {} rows",
            train.labels.len(),
            train.len()
        )));
    }
    let threads = params.thread_count();
    let kind = params.matrix.resolve(train.len() * train.matrix.cols());
    tracing::info!(matrix = ?kind, rows = train.len(), "training matrix");
    let matrices = if let Some(pages_in) = binned(params, train.len() * train.matrix.cols(), scratch) {
        Matrices::Quantile {
            train: XgbMatrix::quantile(
                train.matrix,
                train.rows,
                Some(train.labels),
                weights,
                threads,
                pages_in.as_deref(),
            )?,
            valid: dense_validation(validation.as_ref(), threads)?,
        }
    } else {
        Matrices::Dense {
            train: train.materialized().dmatrix(Some(train.labels), weights)?,
            valid: match &validation {
                Some(v) => Some(v.materialized().dmatrix(Some(v.labels), None)?),
                None => None,
            },
        }
    };
    Ok(Prepared {
        task,
        matrices,
        base_score: base_score(task, train.labels, weights),
        names: train.matrix.names.clone(),
        watch_labels: validation.map(|v| v.labels.to_vec()).unwrap_or_default(),
    })
}

/// Whether `params` train `values` training values (rows × columns) on a quantile matrix,
/// and where its pages go: `Some(None)` in memory, `Some(Some(folder))` in external memory
/// under `scratch` (default: the system's temporary folder), `None` on a dense `DMatrix`.
pub fn binned(params: &BoostParams, values: usize, scratch: Option<&Path>) -> Option<Option<PathBuf>> {
    use crate::config::models::TrainingMatrix;
    match params.matrix.resolve(values) {
        _ if params.tree_method != "hist" => None,
        TrainingMatrix::Quantile => Some(None),
        TrainingMatrix::ExternalMemory => Some(Some(scratch.map_or_else(std::env::temp_dir, Path::to_path_buf))),
        TrainingMatrix::Dense | TrainingMatrix::Auto => None,
    }
}

/// The validation rows as a `DMatrix`: evaluated every round, they are kept dense, where
/// XGBoost predicts fastest.
fn dense_validation(validation: Option<&Split>, threads: usize) -> Result<Option<XgbMatrix>> {
    validation
        .map(|v| XgbMatrix::dense(&v.materialized(), Some(v.labels), threads))
        .transpose()
}

/// [`prepare`] for training rows read batch by batch as XGBoost asks for them, so they are
/// never in memory together (a bank beyond this machine's memory): `rows` rows of `names`,
/// whose labels sum to `label_sums` (see [`label_sums`]). Only a quantile matrix
/// (`tree_method: hist`, `matrix` not `dense`) can be built this way.
#[allow(clippy::too_many_arguments)]
pub fn prepare_streamed(
    task: Task,
    params: &BoostParams,
    batches: &mut dyn RowBatches,
    rows: usize,
    names: Vec<String>,
    label_sums: (f64, f64),
    validation: Option<Split>,
    scratch: Option<&Path>,
) -> Result<Prepared> {
    if rows == 0 {
        return Err(BoostError::Empty);
    }
    let kind = params.matrix.resolve(rows * names.len());
    tracing::info!(matrix = ?kind, rows, "training matrix, streamed");
    let Some(pages_in) = binned(params, rows * names.len(), scratch) else {
        return Err(BoostError::Shape(
            "streamed training rows need a quantile matrix (tree_method: hist, matrix not dense)".into(),
        ));
    };
    let threads = params.thread_count();
    let matrices = Matrices::Quantile {
        train: XgbMatrix::quantile_from(batches, threads, pages_in.as_deref())?,
        valid: dense_validation(validation.as_ref(), threads)?,
    };
    Ok(Prepared {
        task,
        matrices,
        base_score: base_score_of(task, label_sums.0, label_sums.1),
        names,
        watch_labels: validation.map(|v| v.labels.to_vec()).unwrap_or_default(),
    })
}

impl Prepared {
    /// Starts the boosting from the label mean of every worker's rows ([`label_sums`] summed),
    /// not this worker's alone: workers training together must boost from one intercept.
    pub fn start_from(&mut self, sum: f64, total: f64) {
        self.base_score = base_score_of(self.task, sum, total);
    }

    /// The boosting rounds, stopping early on the validation rows when there are some.
    pub fn train(self, params: &BoostParams, extra: &[(&str, String)]) -> Result<TrainedBooster> {
        self.train_together(params, extra, &Solo, &super::progress::Logged)
    }

    /// [`Prepared::train`] as one of `peers`, who boost one model together: XGBoost sums their
    /// histograms, and early stopping watches the metric over every worker's validation rows,
    /// computed exactly from their predictions (XGBoost's own distributed AUC averages the
    /// workers' AUCs, which on small shares stops far too early), so all stop at one round.
    pub fn train_together(
        self,
        params: &BoostParams,
        extra: &[(&str, String)],
        peers: &dyn Peers,
        progress: &dyn TrainingProgress,
    ) -> Result<TrainedBooster> {
        let Prepared {
            task,
            matrices,
            base_score,
            names,
            watch_labels,
        } = self;
        let parameters = parameters(task, params, base_score, extra);
        match matrices {
            Matrices::Dense { .. } if peers.world() > 1 => Err(BoostError::Shape(
                "workers training together need XGBoost's quantile matrices (models.boosting.matrix: quantile, tree_method: hist)".into(),
            )),
            Matrices::Dense { train, valid } => train_dense(task, params, &parameters, train, valid, names, progress),
            Matrices::Quantile { train, valid } => {
                let watch = Watch {
                    labels: &watch_labels,
                    peers,
                    progress,
                };
                train_quantile(task, params, &parameters, train, valid, names, watch)
            }
        }
    }
}

fn train_dense(
    task: Task,
    params: &BoostParams,
    parameters: &[(String, String)],
    dtrain: DMatrix,
    dvalid: Option<DMatrix>,
    names: Vec<String>,
    progress: &dyn TrainingProgress,
) -> Result<TrainedBooster> {
    let cached: Vec<&DMatrix> = std::iter::once(&dtrain).chain(dvalid.as_ref()).collect();
    let mut booster = Booster::new_with_cached_dmats(&xgb::parameters::BoosterParameters::default(), &cached)?;
    for (name, value) in parameters {
        booster.set_param(name, value)?;
    }
    let metric = task.stopping_metric().0;
    let mut stopping = EarlyStopping::new(task, params.early_stopping_rounds);
    for round in 0..params.rounds {
        booster.update(&dtrain, round as i32)?;
        progress.step(TrainingStep::Boosting {
            done: round + 1,
            of: params.rounds,
        });
        if let Some(dvalid) = &dvalid {
            let scores = booster.evaluate(dvalid)?;
            let value = scores.get(metric).copied().unwrap_or(f32::NAN) as f64;
            if stopping.stop_after(round, value) {
                break;
            }
        }
    }
    let best_rounds = if dvalid.is_some() {
        stopping.best_round + 1
    } else {
        params.rounds
    };
    let curve = stopping.curve;
    let booster = if dvalid.is_some() && (best_rounds as usize) < curve.len() {
        booster.slice(0, best_rounds as i32)?
    } else {
        booster
    };
    // Read back as the raw booster every model is predicted with: the JSON a saved model is.
    let model = booster.save_buffer(false)?;
    drop((booster, dvalid, dtrain));
    let mut trained = TrainedBooster::from_json(&model, names, params.thread_count())?;
    trained.best_rounds = best_rounds;
    trained.validation_curve = curve;
    Ok(trained)
}

/// Round by round, the best on the validation metric so far, and when to stop.
struct EarlyStopping {
    higher_is_better: bool,
    patience: u32,
    curve: Vec<f64>,
    best: f64,
    best_round: u32,
}

impl EarlyStopping {
    fn new(task: Task, patience: u32) -> EarlyStopping {
        EarlyStopping {
            higher_is_better: task.stopping_metric().1,
            patience,
            curve: Vec::new(),
            best: f64::NEG_INFINITY,
            best_round: 0,
        }
    }

    /// Records round `round`'s value; `true` when training should stop.
    fn stop_after(&mut self, round: u32, value: f64) -> bool {
        self.curve.push(value);
        let goodness = if self.higher_is_better { value } else { -value };
        if goodness > self.best {
            (self.best, self.best_round) = (goodness, round);
            false
        } else {
            self.patience > 0 && round - self.best_round >= self.patience
        }
    }
}

/// Who watches the rounds: the workers early stopping's validation rows belong to, and who
/// is told of each round.
struct Watch<'a> {
    labels: &'a [f32],
    peers: &'a dyn Peers,
    progress: &'a dyn TrainingProgress,
}

impl Watch<'_> {
    /// The stopping metric after `round` over every worker's validation rows: XGBoost's own
    /// evaluation alone (what the single-process model always used), computed from the
    /// gathered predictions when workers train together.
    fn metric(&self, task: Task, booster: &super::quantile::RawBooster, round: u32, valid: &XgbMatrix) -> Result<f64> {
        let metric = task.stopping_metric().0;
        if self.peers.world() == 1 {
            return booster.evaluate(round, valid, metric);
        }
        let predicted = booster.predict(valid)?;
        let together = |e: super::collective::CollectiveError| BoostError::Xgboost(e.to_string());
        match task {
            Task::Binary => {
                let mut pairs: Vec<u8> = Vec::with_capacity(predicted.len() * 5);
                for (p, y) in predicted.iter().zip(self.labels) {
                    pairs.extend_from_slice(&p.to_le_bytes());
                    pairs.push(u8::from(*y >= 0.5));
                }
                let (mut labels, mut scores) = (Vec::new(), Vec::new());
                for theirs in self.peers.gather(&pairs).map_err(together)? {
                    for pair in theirs.chunks_exact(5) {
                        scores.push(f32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]) as f64);
                        labels.push(pair[4] == 1);
                    }
                }
                let ranked = crate::metrics::classification::Ranked::new(&labels, &scores)
                    .map_err(|e| BoostError::Shape(format!("the validation rows' AUC: {e}")))?;
                Ok(ranked.roc_auc())
            }
            Task::Regression => {
                let mut sums = [0.0f64, predicted.len() as f64];
                for (p, y) in predicted.iter().zip(self.labels) {
                    sums[0] += (*p as f64 - *y as f64).powi(2);
                }
                self.peers.sum(&mut sums).map_err(together)?;
                Ok((sums[0] / sums[1].max(1.0)).sqrt())
            }
        }
    }
}

/// [`train`] on XGBoost's quantile matrices (`hist`): our f32 matrix goes in by batches and
/// only its quantised bins are kept, instead of XGBoost's copy of every value.
fn train_quantile(
    task: Task,
    params: &BoostParams,
    parameters: &[(String, String)],
    dtrain: XgbMatrix,
    dvalid: Option<XgbMatrix>,
    names: Vec<String>,
    watch: Watch,
) -> Result<TrainedBooster> {
    let cached: Vec<&XgbMatrix> = std::iter::once(&dtrain).chain(dvalid.as_ref()).collect();
    let mut booster = RawBooster::new(&cached)?;
    for (name, value) in parameters {
        booster.set_param(name, value)?;
    }
    let mut stopping = EarlyStopping::new(task, params.early_stopping_rounds);
    for round in 0..params.rounds {
        booster.update(round, &dtrain)?;
        watch.progress.step(TrainingStep::Boosting {
            done: round + 1,
            of: params.rounds,
        });
        if let Some(dvalid) = &dvalid
            && stopping.stop_after(round, watch.metric(task, &booster, round, dvalid)?)
        {
            break;
        }
    }
    let best_rounds = if dvalid.is_some() {
        stopping.best_round + 1
    } else {
        params.rounds
    };
    let sliced = dvalid.is_some() && (best_rounds as usize) < stopping.curve.len();
    let model = booster.to_json(sliced.then_some(best_rounds))?;
    // The matrices and the raw booster go before the model is loaded back.
    drop((booster, dvalid, dtrain));
    let mut trained = TrainedBooster::from_json(&model, names, params.thread_count())?;
    trained.best_rounds = best_rounds;
    trained.validation_curve = stopping.curve;
    Ok(trained)
}

impl TrainedBooster {
    /// Probabilities (binary) or values (regression), one per row: XGBoost's values, from
    /// the laid-out trees when the model has them and there are [`FOREST_MIN_ROWS`] rows or
    /// more (`forest.rs`; 3.7× less time and CPU for 870 k clients × 200 trees, `bankml bench
    /// predict`), else from XGBoost.
    pub fn predict(&self, matrix: &Matrix) -> Result<Vec<f32>> {
        if matrix.rows == 0 {
            return Ok(Vec::new());
        }
        match self.forest_for(matrix.rows) {
            Some(forest) if matrix.cols() == forest.features() => forest
                .predict(&matrix.values, matrix.cols(), self.threads > 1)
                .map_err(|e| BoostError::Shape(e.to_string())),
            // A matrix of another width gets XGBoost's own error.
            _ => self.booster.predict_in_place(matrix),
        }
    }

    /// [`predict`](Self::predict) by XGBoost's own predictor, whatever the model.
    pub fn predict_with_xgboost(&self, matrix: &Matrix) -> Result<Vec<f32>> {
        if matrix.rows == 0 {
            return Ok(Vec::new());
        }
        self.booster.predict_in_place(matrix)
    }

    /// Whether predictions come from the laid-out trees rather than XGBoost's predictor.
    pub fn has_forest(&self) -> bool {
        self.laid_out().is_some()
    }

    /// The laid-out trees, built and checked on first call (XGBoost's JSON of this booster,
    /// then [`checked_forest`]).
    fn laid_out(&self) -> Option<&Forest> {
        self.forest
            .get_or_init(|| {
                let json = self.booster.to_json(None).ok()?;
                checked_forest(&json, &self.booster)
            })
            .as_ref()
    }

    /// The laid-out trees for a prediction of `rows` rows: below [`FOREST_MIN_ROWS`] XGBoost
    /// predicts (a single client, a small fold: a booster used only so never builds one).
    fn forest_for(&self, rows: usize) -> Option<&Forest> {
        if rows < FOREST_MIN_ROWS {
            return None;
        }
        self.laid_out()
    }

    /// The predictions of `rows` rows of `cols` values written a block at a time by `write`
    /// (see [`Forest::predict_rows`]); `None` when this model has no laid-out trees or rows
    /// of another width (the caller then builds a [`Matrix`] for XGBoost).
    pub fn predict_rows(
        &self,
        rows: usize,
        cols: usize,
        write: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Option<Result<Vec<f32>>> {
        let forest = self.laid_out().filter(|f| f.features() == cols)?;
        Some(
            forest
                .predict_rows(rows, cols, self.threads > 1, write)
                .map_err(|e| BoostError::Shape(e.to_string())),
        )
    }

    /// SHAP contributions: per row, one value per feature then the bias; a row sums to the
    /// margin (log-odds for binary).
    pub fn contributions(&self, matrix: &Matrix) -> Result<Vec<f32>> {
        self.contributions_of(matrix, false)
    }

    /// `approximate`: Saabas's per-path attribution (XGBoost's `approx_contribs`), much
    /// faster than exact TreeSHAP and close to it in which features come first.
    pub fn contributions_of(&self, matrix: &Matrix, approximate: bool) -> Result<Vec<f32>> {
        if matrix.rows == 0 {
            return Ok(Vec::new());
        }
        let kind = if approximate {
            Prediction::ApproximateContributions
        } else {
            Prediction::Contributions
        };
        self.booster
            .predict_kind(&XgbMatrix::dense(matrix, None, self.threads)?, kind)
    }

    /// Gain importance per feature (average gain of its splits, as Python's
    /// `get_score(importance_type="gain")`), highest first; unused features are left out.
    pub fn gain_importance(&self) -> Result<Vec<(String, f64)>> {
        let mut importance: Vec<(String, f64)> = self
            .split_gains()?
            .into_iter()
            .enumerate()
            .filter(|(_, (_, count))| *count > 0)
            .map(|(i, (total, count))| (self.names[i].clone(), total / count as f64))
            .collect();
        importance.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(importance)
    }

    /// Total gain of every feature's splits (`get_score(importance_type="total_gain")`), in
    /// column order: what a feature contributed over the whole model.
    pub fn gain_totals(&self) -> Result<Vec<f64>> {
        Ok(self.split_gains()?.into_iter().map(|(total, _)| total).collect())
    }

    /// Per column, the summed gain of its splits and their count, from the model's dump.
    fn split_gains(&self) -> Result<Vec<(f64, usize)>> {
        let mut totals = vec![(0.0f64, 0usize); self.names.len()];
        for tree in self.booster.dump(true)? {
            for line in tree.lines() {
                let Some(split) = line.split('[').nth(1).and_then(|rest| rest.split(['<', ']']).next()) else {
                    continue;
                };
                let Some(index) = split.strip_prefix('f').and_then(|i| i.parse::<usize>().ok()) else {
                    continue;
                };
                let gain = line
                    .split("gain=")
                    .nth(1)
                    .and_then(|g| g.split(',').next())
                    .and_then(|g| g.parse::<f64>().ok());
                if let (Some(gain), Some(slot)) = (gain, totals.get_mut(index)) {
                    slot.0 += gain;
                    slot.1 += 1;
                }
            }
        }
        Ok(totals)
    }

    /// XGBoost's JSON model format.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        self.booster.to_json(None)
    }

    pub fn from_json(bytes: &[u8], names: Vec<String>, threads: usize) -> Result<TrainedBooster> {
        let mut booster = RawBooster::load(bytes)?;
        booster.set_param("nthread", &threads.max(1).to_string())?;
        Ok(TrainedBooster {
            booster,
            forest: std::sync::OnceLock::new(),
            threads: threads.max(1),
            best_rounds: 0,
            names,
            validation_curve: Vec::new(),
        })
    }
}

/// Predictions of fewer rows stay on XGBoost: building and checking a forest (a probe row to
/// every leaf of every tree) costs more than predicting a few thousand rows with XGBoost.
const FOREST_MIN_ROWS: usize = 4096;

/// Random probe rows each forest must predict exactly as XGBoost before it is used (then
/// one row more for every leaf of every tree).
const PROBE_ROWS: usize = 512;

/// `model`'s trees laid out for prediction, if they can be and then predict XGBoost's own
/// values bit for bit on probe rows that reach every leaf (`Forest::probe_rows`): a model the
/// layout does not cover, or (a bug) one it would predict differently, stays on XGBoost.
fn checked_forest(model: &[u8], booster: &RawBooster) -> Option<Forest> {
    let forest = match Forest::compile(model) {
        Ok(forest) => forest,
        Err(why) => {
            tracing::debug!(%why, "model predicted by XGBoost's own predictor");
            return None;
        }
    };
    let values = forest.probe_rows(PROBE_ROWS);
    let probes = Matrix {
        rows: values.len() / forest.features(),
        values,
        names: (0..forest.features()).map(|i| format!("f{i}")).collect(),
    };
    let ours = forest.predict(&probes.values, forest.features(), false).ok()?;
    let theirs = match booster.predict_in_place(&probes) {
        Ok(theirs) => theirs,
        Err(e) => {
            tracing::warn!(error = %e, "XGBoost could not predict the probe rows; it predicts this model itself");
            return None;
        }
    };
    let agree = ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits());
    if !agree {
        tracing::warn!("the laid-out trees differ from XGBoost on probe rows; XGBoost predicts this model itself");
    }
    agree.then_some(forest)
}

/// Indices of `k` folds over `rows` rows, shuffled by `seed` (each row in one test fold).
pub fn folds(rows: usize, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = crate::data::synth::rng::Rng::new(seed);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut folds = vec![Vec::new(); k.max(1)];
    for (position, row) in order.into_iter().enumerate() {
        folds[position % k.max(1)].push(row);
    }
    folds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::models::TrainingMatrix;

    /// A seeded binary problem: 5 features, some missing, labels from a logistic of three.
    fn problem(rows: usize, seed: u64) -> (Matrix, Vec<f32>) {
        let mut rng = crate::data::synth::rng::Rng::new(seed);
        let mut values = Vec::with_capacity(rows * 5);
        let mut labels = Vec::with_capacity(rows);
        for _ in 0..rows {
            let x: Vec<f32> = (0..5).map(|_| rng.normal() as f32).collect();
            let logit = 1.5 * x[0] - 1.0 * x[1] + 0.5 * x[2] * x[3];
            labels.push(f32::from(rng.bernoulli(1.0 / (1.0 + (-logit as f64).exp()))));
            values.extend(
                x.iter()
                    .enumerate()
                    .map(|(j, v)| if j == 4 && rng.bernoulli(0.2) { f32::NAN } else { *v }),
            );
        }
        let names = (0..5).map(|j| format!("x{j}")).collect();
        (Matrix { values, rows, names }, labels)
    }

    #[test]
    fn a_forest_that_differs_from_xgboost_on_the_probes_is_not_used() {
        let (x, y) = problem(5_000, 11);
        let params = BoostParams {
            rounds: 10,
            threads: 1,
            ..BoostParams::default()
        };
        let model = train(Task::Binary, &params, Split::all(&x, &y), None, None, &[]).unwrap();
        let json = model.to_json().unwrap();
        assert!(checked_forest(&json, &model.booster).is_some());
        // The trees of this model with another base score, or one rarely reached leaf moved by
        // 0.25 (9 of the 5,000 rows reach it; random probes alone once missed it): a forest that would
        // predict differently from the booster is refused. (A one-ulp leaf change can vanish
        // in the f32 sum.)
        let mut edited: serde_json::Value = serde_json::from_slice(&json).unwrap();
        edited["learner"]["learner_model_param"]["base_score"] = "[3E-1]".into();
        assert!(checked_forest(edited.to_string().as_bytes(), &model.booster).is_none());
        let mut edited: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let tree = &mut edited["learner"]["gradient_booster"]["model"]["trees"][9];
        let leaf = (0..).find(|&n| tree["left_children"][n] == -1).unwrap();
        let value = tree["split_conditions"][leaf].as_f64().unwrap() as f32;
        tree["split_conditions"][leaf] = f64::from(value + 0.25).into();
        assert!(checked_forest(edited.to_string().as_bytes(), &model.booster).is_none());
    }

    #[test]
    fn predicting_in_place_gives_the_dmatrix_predictions_bit_for_bit() {
        // Missing values included: both paths must send them down the trees' default branch.
        let (x, y) = problem(20_000, 8);
        let params = BoostParams {
            rounds: 20,
            threads: 2,
            ..BoostParams::default()
        };
        let model = train(Task::Binary, &params, Split::all(&x, &y), None, None, &[]).unwrap();
        let in_place = model.predict(&x).unwrap();
        let through_dmatrix = model.booster.predict(&XgbMatrix::dense(&x, None, 2).unwrap()).unwrap();
        assert_eq!(in_place.len(), x.rows);
        let differ = in_place
            .iter()
            .zip(&through_dmatrix)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "of {} predictions", x.rows);
        assert!(
            in_place.iter().any(|p| *p != in_place[0]),
            "a model that predicts one value"
        );
        // The same model read back from its JSON predicts the same.
        let reloaded = TrainedBooster::from_json(&model.to_json().unwrap(), x.names.clone(), 1).unwrap();
        assert_eq!(reloaded.predict(&x).unwrap(), in_place);
        let empty = Matrix {
            values: Vec::new(),
            rows: 0,
            names: x.names.clone(),
        };
        assert!(model.predict(&empty).unwrap().is_empty());
    }

    #[test]
    fn training_on_some_rows_in_place_equals_training_on_their_copy() {
        // 600,000 rows: the picked ones span three of the quantile matrix's batches.
        let (x, y) = problem(600_000, 4);
        let picked: Vec<usize> = (0..x.rows).filter(|i| i % 7 != 3).rev().collect();
        let labels: Vec<f32> = picked.iter().map(|&i| y[i]).collect();
        let copy = x.take(&picked);
        for matrix in [TrainingMatrix::Quantile, TrainingMatrix::Dense] {
            let params = BoostParams {
                rounds: 5,
                threads: 1,
                matrix,
                ..BoostParams::default()
            };
            let model = |split: Split| {
                train(Task::Binary, &params, split, None, None, &[])
                    .unwrap()
                    .to_json()
                    .unwrap()
            };
            let in_place = model(Split {
                matrix: &x,
                rows: Some(&picked),
                labels: &labels,
            });
            assert!(in_place == model(Split::all(&copy, &labels)), "{matrix:?}");
        }
        // A row beyond the matrix is refused, not read.
        let beyond = [0, x.rows];
        let refused = crate::models::quantile::XgbMatrix::quantile(&x, Some(&beyond), Some(&[0.0, 0.0]), None, 1, None);
        assert!(matches!(refused, Err(BoostError::Shape(_))));
    }

    #[test]
    fn external_memory_trains_the_in_memory_quantile_model_and_cleans_up() {
        // Three batches of pages.
        let (x, y) = problem(600_000, 5);
        let (valid_x, valid_y) = problem(20_000, 6);
        let scratch = tempfile::tempdir().unwrap();
        let model = |matrix: TrainingMatrix| {
            let params = BoostParams {
                rounds: 8,
                early_stopping_rounds: 3,
                threads: 1,
                matrix,
                ..BoostParams::default()
            };
            let prepared = prepare(
                Task::Binary,
                &params,
                Split::all(&x, &y),
                Some(Split::all(&valid_x, &valid_y)),
                None,
                Some(scratch.path()),
            )
            .unwrap();
            if matrix == TrainingMatrix::ExternalMemory {
                let pages: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().collect();
                assert_eq!(pages.len(), 1, "one scratch folder while the matrix lives");
            }
            prepared.train(&params, &[]).unwrap().to_json().unwrap()
        };
        let in_memory = model(TrainingMatrix::Quantile);
        let external = model(TrainingMatrix::ExternalMemory);
        assert!(in_memory == external, "the same trees from pages on disk");
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "pages removed");
    }

    #[test]
    fn the_quantile_matrix_trains_the_dense_matrix_s_model() {
        let (train_x, train_y) = problem(20_000, 1);
        let (valid_x, valid_y) = problem(5_000, 2);
        let (test_x, test_y) = problem(5_000, 3);
        let weights: Vec<f32> = train_y.iter().map(|y| if *y > 0.5 { 2.0 } else { 1.0 }).collect();
        let trained = |matrix: TrainingMatrix| {
            let params = BoostParams {
                rounds: 60,
                early_stopping_rounds: 5,
                threads: 1,
                matrix,
                ..BoostParams::default()
            };
            let split = Split::all;
            train(
                Task::Binary,
                &params,
                split(&train_x, &train_y),
                Some(split(&valid_x, &valid_y)),
                Some(&weights),
                &[],
            )
            .unwrap()
        };
        let (dense, quantile) = (trained(TrainingMatrix::Dense), trained(TrainingMatrix::Quantile));
        let auc = |model: &TrainedBooster| {
            let scores: Vec<f64> = model.predict(&test_x).unwrap().iter().map(|p| f64::from(*p)).collect();
            let labels: Vec<bool> = test_y.iter().map(|y| *y > 0.5).collect();
            crate::metrics::classification::Ranked::new(&labels, &scores)
                .unwrap()
                .roc_auc()
        };
        assert!(auc(&dense) > 0.75, "the problem is learnable: {}", auc(&dense));
        assert!(
            (auc(&dense) - auc(&quantile)).abs() < 0.002,
            "{} vs {}",
            auc(&dense),
            auc(&quantile)
        );
        assert_eq!(quantile.validation_curve.len(), dense.validation_curve.len());
        assert_eq!(quantile.best_rounds, dense.best_rounds);
        // The kept rounds only: the model saved is the sliced one.
        let rounds = |model: &TrainedBooster| {
            let json: serde_json::Value = serde_json::from_slice(&model.to_json().unwrap()).unwrap();
            json["learner"]["gradient_booster"]["model"]["trees"]
                .as_array()
                .map_or(0, Vec::len)
        };
        assert_eq!(rounds(&quantile), quantile.best_rounds as usize);
        // A label count that does not match is refused, not read past.
        let short = &train_y[..10];
        let refused = train(
            Task::Binary,
            &BoostParams {
                matrix: TrainingMatrix::Quantile,
                ..BoostParams::default()
            },
            Split::all(&train_x, short),
            None,
            None,
            &[],
        );
        assert!(matches!(refused, Err(BoostError::Shape(_))));
    }
}
