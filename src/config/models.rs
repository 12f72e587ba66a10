//! The parameter structs the models take by reference (`config/bankml.yaml` → `models.*`).
//! They live in `config`, the room below `models`, so reading the configuration never
//! reaches up into model code.

use serde::{Deserialize, Serialize};

/// Tree-boosting settings (`config/bankml.yaml` → `models.boosting`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoostParams {
    pub tree_method: String,
    pub max_depth: u32,
    pub learning_rate: f64,
    pub rounds: u32,
    pub subsample: f64,
    pub colsample_bytree: f64,
    pub min_child_weight: f64,
    pub reg_lambda: f64,
    /// Stop when the validation loss has not improved for this many rounds (0: never).
    pub early_stopping_rounds: u32,
    /// XGBoost threads; 0 means one per core. Set explicitly: libgomp's spin-waiting slows
    /// training many times over when another process holds a core.
    pub threads: usize,
    pub seed: u64,
    /// How the training data reach XGBoost.
    pub matrix: TrainingMatrix,
}

/// How training hands its data to XGBoost (`models.boosting.matrix`). Every kind trains the
/// same model (tested byte for byte); they differ in memory and time. With either quantile
/// kind, a model trained on whole months (churn) never holds its training rows: they are read
/// a month at a time from the feature store, spooled to a scratch file under
/// `data/processed/` and fed to XGBoost from there (`src/models/streamed.rs`), unless the
/// cross-validation at training needs them in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TrainingMatrix {
    /// XGBoost's `DMatrix`: its own copy of every value (8 bytes each).
    Dense,
    /// A `QuantileDMatrix` fed in batches: only the quantised bins of the training rows are
    /// kept; the validation rows stay a `DMatrix`. Measured side by side at 1,000,000 clients:
    /// the same model, the same wall, peak memory 26 % lower than dense. Used with
    /// `tree_method: hist`; other tree methods train on the dense matrix.
    Quantile,
    /// The same quantised bins, kept in pages on disk (XGBoost's external memory, in a scratch
    /// folder under `data/processed/` removed afterwards). At 1,000,000 clients: 2.6 GiB peak
    /// against 5.4 GiB in memory, 10 % more wall. Needs `tree_method: hist`.
    ExternalMemory,
    /// External memory when the training rows hold more than [`EXTERNAL_MEMORY_FROM`] values,
    /// the in-memory quantile matrix below (where the pages' disk round trip is not worth it).
    #[default]
    Auto,
}

/// Training values (rows × columns) from which `auto` keeps XGBoost's bins on disk: about a
/// quarter of a million clients' year of churn features.
pub const EXTERNAL_MEMORY_FROM: usize = 1 << 26;

impl TrainingMatrix {
    /// The kind used for `values` training values.
    pub fn resolve(self, values: usize) -> TrainingMatrix {
        match self {
            TrainingMatrix::Auto if values > EXTERNAL_MEMORY_FROM => TrainingMatrix::ExternalMemory,
            TrainingMatrix::Auto => TrainingMatrix::Quantile,
            other => other,
        }
    }
}

impl Default for BoostParams {
    fn default() -> Self {
        BoostParams {
            tree_method: "hist".into(),
            max_depth: 6,
            learning_rate: 0.1,
            rounds: 200,
            subsample: 0.8,
            colsample_bytree: 1.0,
            min_child_weight: 1.0,
            reg_lambda: 1.0,
            early_stopping_rounds: 20,
            threads: 0,
            seed: 42,
            matrix: TrainingMatrix::default(),
        }
    }
}

impl BoostParams {
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    #[default]
    Balanced,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnConfig {
    /// A probability at or above this counts as predicted churn.
    pub threshold: f64,
    /// Risk levels, cut on the calibrated churn rate (the chance of leaving within the churn
    /// horizon): Low below `medium_risk`, High from `high_risk`, Medium between. A version
    /// trained without a calibrator has them cut on its class-weighted scores.
    pub medium_risk: f64,
    pub high_risk: f64,
    pub class_weight: ClassWeight,
    /// How many SHAP reasons (pushing towards churn) become actions.
    pub reasons: usize,
    /// Exact TreeSHAP for the reasons in bulk scoring; by default XGBoost's approximate
    /// contributions, ~20× faster with the same leading reasons in most cases.
    pub exact_reasons: bool,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            threshold: 0.5,
            medium_risk: 0.1,
            high_risk: 0.3,
            class_weight: ClassWeight::Balanced,
            reasons: 3,
            exact_reasons: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Popularity,
    SvdKnn,
    Cooccurrence,
    Ease,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Popularity, Method::SvdKnn, Method::Cooccurrence, Method::Ease];

    pub fn name(self) -> &'static str {
        match self {
            Method::Popularity => "popularity",
            Method::SvdKnn => "svd_knn",
            Method::Cooccurrence => "cooccurrence",
            Method::Ease => "ease",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommenderConfig {
    /// `auto`: the candidate with the best measured Precision@k on the temporal holdout.
    pub method: Option<Method>,
    pub k: usize,
    pub svd_components: usize,
    pub knn_neighbours: usize,
    /// EASE's L2 penalty.
    pub ease_lambda: f64,
    /// Months after the cut-off whose openings are the held-out truth.
    pub holdout_months: i32,
    /// Months of openings before the cut-off that define popularity.
    pub popularity_months: i32,
}

impl Default for RecommenderConfig {
    fn default() -> Self {
        RecommenderConfig {
            method: None,
            k: 5,
            svd_components: 30,
            knn_neighbours: 10,
            ease_lambda: 50.0,
            holdout_months: 3,
            popularity_months: 6,
        }
    }
}

#[cfg(test)]
mod matrix_tests {
    use super::*;

    #[test]
    fn auto_keeps_large_trainings_on_disk_and_small_ones_in_memory() {
        let auto = BoostParams::default().matrix;
        assert_eq!(
            auto,
            TrainingMatrix::Auto,
            "what an engine config without the key trains with"
        );
        assert_eq!(auto.resolve(EXTERNAL_MEMORY_FROM), TrainingMatrix::Quantile);
        assert_eq!(auto.resolve(EXTERNAL_MEMORY_FROM + 1), TrainingMatrix::ExternalMemory);
        // A million clients' churn training: 5.2 M rows × 62 columns.
        assert_eq!(auto.resolve(5_230_571 * 62), TrainingMatrix::ExternalMemory);
        for chosen in [
            TrainingMatrix::Dense,
            TrainingMatrix::Quantile,
            TrainingMatrix::ExternalMemory,
        ] {
            assert_eq!(chosen.resolve(usize::MAX), chosen);
        }
        let parsed: TrainingMatrix = serde_json::from_str("\"external_memory\"").unwrap();
        assert_eq!(parsed, TrainingMatrix::ExternalMemory);
    }
}
