//! Gradient-boosted trees through XGBoost — the one place the library is touched.
//!
//! Parameters go to XGBoost as the same name/value pairs Python's `xgb.train(params, …)`
//! takes, so a configuration means the same thing in both. Models are saved in XGBoost's own
//! JSON, so a model trained by the bank's data scientists in Python loads here and ours there.

pub use crate::config::models::BoostParams;
use serde::{Deserialize, Serialize};
use xgb::{Booster, DMatrix};

#[derive(Debug, thiserror::Error)]
pub enum BoostError {
    #[error("XGBoost: {0}")]
    Xgboost(String),
    #[error("the training set is empty")]
    Empty,
    #[error("{0}")]
    Shape(String),
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
    booster: Booster,
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
    pub labels: &'a [f32],
}

fn set_params(
    booster: &mut Booster,
    task: Task,
    params: &BoostParams,
    base_score: f64,
    extra: &[(&str, String)],
) -> Result<()> {
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
    for (name, value) in pairs.iter().chain(extra) {
        booster.set_param(name, value)?;
    }
    Ok(())
}

/// The intercept XGBoost would fit: the label mean (clamped inside (0, 1) for probabilities).
fn base_score(task: Task, labels: &[f32], weights: Option<&[f32]>) -> f64 {
    let (mut sum, mut total) = (0.0f64, 0.0f64);
    for (i, y) in labels.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i] as f64);
        sum += w * *y as f64;
        total += w;
    }
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
    if train.matrix.rows == 0 {
        return Err(BoostError::Empty);
    }
    if train.labels.len() != train.matrix.rows {
        return Err(BoostError::Shape(format!(
            "{} labels for {} rows",
            train.labels.len(),
            train.matrix.rows
        )));
    }
    let dtrain = train.matrix.dmatrix(Some(train.labels), weights)?;
    let dvalid = match &validation {
        Some(v) => Some(v.matrix.dmatrix(Some(v.labels), None)?),
        None => None,
    };
    let cached: Vec<&DMatrix> = std::iter::once(&dtrain).chain(dvalid.as_ref()).collect();
    let mut booster = Booster::new_with_cached_dmats(&xgb::parameters::BoosterParameters::default(), &cached)?;
    set_params(
        &mut booster,
        task,
        params,
        base_score(task, train.labels, weights),
        extra,
    )?;
    let (metric, higher_is_better) = task.stopping_metric();
    let mut curve = Vec::new();
    let (mut best, mut best_round) = (f64::NEG_INFINITY, 0u32);
    for round in 0..params.rounds {
        booster.update(&dtrain, round as i32)?;
        if let Some(dvalid) = &dvalid {
            let scores = booster.evaluate(dvalid)?;
            let value = scores.get(metric).copied().unwrap_or(f32::NAN) as f64;
            curve.push(value);
            let goodness = if higher_is_better { value } else { -value };
            if goodness > best {
                (best, best_round) = (goodness, round);
            } else if params.early_stopping_rounds > 0 && round - best_round >= params.early_stopping_rounds {
                break;
            }
        }
    }
    let best_rounds = if dvalid.is_some() {
        best_round + 1
    } else {
        params.rounds
    };
    let booster = if dvalid.is_some() && (best_rounds as usize) < curve.len() {
        booster.slice(0, best_rounds as i32)?
    } else {
        booster
    };
    Ok(TrainedBooster {
        booster,
        best_rounds,
        names: train.matrix.names.clone(),
        validation_curve: curve,
    })
}

impl TrainedBooster {
    /// Probabilities (binary) or values (regression), one per row.
    pub fn predict(&self, matrix: &Matrix) -> Result<Vec<f32>> {
        if matrix.rows == 0 {
            return Ok(Vec::new());
        }
        Ok(self.booster.predict(&matrix.dmatrix(None, None)?)?)
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
        let kind = if approximate { 3 } else { 2 };
        let config =
            format!(r#"{{"type":{kind},"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false}}"#);
        Ok(self.booster.predict_matrix(&matrix.dmatrix(None, None)?, &config)?.0)
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
        for tree in self.booster.dump_model_vec(true)? {
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
        Ok(self.booster.save_buffer(false)?)
    }

    pub fn from_json(bytes: &[u8], names: Vec<String>, threads: usize) -> Result<TrainedBooster> {
        let mut booster = Booster::load_buffer(bytes)?;
        booster.set_param("nthread", &threads.max(1).to_string())?;
        Ok(TrainedBooster {
            booster,
            best_rounds: 0,
            names,
            validation_curve: Vec::new(),
        })
    }
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
