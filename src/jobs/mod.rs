//! Jobs: what the scheduler (and `bankml run`) runs. Each is `run(&Context) -> RunOutcome`:
//! a status, timings, the files written and a list of observations — one list that reports,
//! Prometheus and alert rules all read, so a figure is computed once.
//!
//! Knows nothing of HTTP or of the command line.

pub mod benchmark;
pub mod frames;
pub mod retrain;
pub mod score;
pub mod validation;

use crate::config::EngineConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a job runs against.
pub struct Context<'a> {
    pub config: &'a EngineConfig,
    /// Snapshot date (`YYYY-MM-DD`); `None`: the latest.
    pub snapshot: Option<String>,
    /// Also write CSV copies of tables.
    pub csv: bool,
    /// The job file's `params`.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The summary of this job's previous successful run (stability checks), if any.
    pub previous: Option<serde_json::Value>,
}

impl<'a> Context<'a> {
    pub fn new(config: &'a EngineConfig) -> Context<'a> {
        Context {
            config,
            snapshot: None,
            csv: false,
            params: BTreeMap::new(),
            previous: None,
        }
    }

    pub fn param_f64(&self, name: &str, default: f64) -> f64 {
        self.params
            .get(name)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(default)
    }

    pub fn param_usize(&self, name: &str, default: usize) -> usize {
        self.params
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .map_or(default, |v| v as usize)
    }

    /// `params.models`, or every model.
    pub fn models(&self) -> Vec<String> {
        match self.params.get("models").and_then(serde_json::Value::as_array) {
            Some(list) => list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            None => crate::models::registry::MODELS.iter().map(|m| m.to_string()).collect(),
        }
    }
}

/// Runs the job of `kind`.
pub fn run(kind: crate::config::jobs::JobKind, ctx: &Context) -> Result<RunOutcome, JobError> {
    use crate::config::jobs::JobKind;
    match kind {
        JobKind::Benchmark => benchmark::run(ctx),
        JobKind::Validation => validation::run(ctx),
        JobKind::Retrain => retrain::run(ctx),
        JobKind::Scoring => score::run(ctx),
    }
}

/// Prometheus HELP text of each observation name jobs publish.
pub fn describe(name: &str) -> &'static str {
    match name {
        "scored_clients" => "Clients scored by the last scoring run",
        "churn_risk_clients" => "Clients per churn risk level in the last scoring run",
        "churn_mean_probability" => "Mean churn probability of the scored clients",
        "recommendation_cold_start_clients" => "Clients holding nothing the recommender knows (popularity fallback)",
        "predicted_score_mean" => "Mean predicted performance score (0-100)",
        "champion_version" => "Version of the champion the run measured",
        "churn_auc" => "Churn ROC AUC on the latest snapshot whose outcome has matured",
        "churn_average_precision" => "Churn average precision (area under the precision-recall curve)",
        "churn_precision" => "Churn precision at the configured threshold",
        "churn_recall" => "Churn recall at the configured threshold",
        "churn_f1" => "Churn F1 at the configured threshold",
        "churn_log_loss" => "Churn log loss",
        "churn_brier" => "Churn Brier score",
        "churn_ks" => "Churn Kolmogorov-Smirnov separation of the two classes' scores",
        "churn_positive_rate" => "Share of clients who churned in the evaluated snapshot",
        "churn_auc_change" => "Relative change of churn AUC against the champion's own training holdout AUC",
        "performance_rmse" => "Root mean squared error of the performance score (0-100)",
        "performance_mae" => "Mean absolute error of the performance score (0-100)",
        "performance_r2" => "Coefficient of determination of the performance score",
        "performance_spearman" => "Spearman rank correlation of predicted and actual performance",
        "performance_rmse_change" => "Relative change of RMSE against the champion's training holdout RMSE",
        "recommender_precision_at_k" => "Recommender Precision@k on products opened since the cut-off",
        "recommender_recall_at_k" => "Recommender Recall@k",
        "recommender_ndcg_at_k" => "Recommender NDCG@k",
        "recommender_coverage" => "Share of the catalog the recommender proposes to anyone",
        "recommender_diversity" => "Mean intra-list category diversity of the recommendations",
        "recommender_precision_at_k_change" => "Relative change of Precision@k against the champion's training value",
        "feature_psi" => "Population stability index of a model feature against the champion's training data",
        "feature_ks" => "Kolmogorov-Smirnov statistic of a numeric model feature against training data",
        "drifted_features" => "Model features whose PSI exceeds the drift threshold",
        "drift_share" => "Share of a model's features that drifted",
        "dataset_drift" => "1 when the share of drifted features reaches the policy's share",
        "cv_metric_mean" => "Mean of a metric over the k folds of the weekly cross-validation",
        "cv_metric_std" => "Standard deviation of a metric over the folds",
        "cv_metric_change" => "Relative change of the cross-validated metric against the previous validation",
        "challenger_difference" => "Challenger minus champion on the same rows (AUC for churn, RMSE for regressors)",
        "challenger_p_value" => "p-value of the paired test (DeLong for AUC, paired bootstrap for RMSE)",
        "retrain_promoted" => "1 when the retraining promoted its challenger",
        "retrain_improvement" => "Relative improvement of the new challenger over the champion on the holdout",
        "retrain_p_value" => "p-value of the paired test behind the promotion decision",
        "retrain_challenger_version" => "Version the retraining registered",
        _ => "A figure measured by a bankml job",
    }
}

/// One measured figure, e.g. `churn_clients{risk="High"} 1285`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Observation {
    pub fn new(name: &str, labels: &[(&str, &str)], value: f64) -> Observation {
        Observation {
            name: name.to_string(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub job: String,
    pub status: RunStatus,
    pub started_at: String,
    pub seconds: f64,
    /// Folders and files written.
    pub artifacts: Vec<PathBuf>,
    pub observations: Vec<Observation>,
    /// The job's own summary document (what it wrote as `summary.json`, if anything).
    pub summary: serde_json::Value,
}

/// When a job run began, wall clock (for the report) and monotonic (for its duration).
pub struct Started {
    at: String,
    instant: std::time::Instant,
}

impl Started {
    pub fn now() -> Started {
        Started {
            at: crate::models::tabular::now_iso(),
            instant: std::time::Instant::now(),
        }
    }

    pub fn seconds(&self) -> f64 {
        self.instant.elapsed().as_secs_f64()
    }

    /// The outcome of a run that succeeded.
    pub fn succeeded(
        self,
        job: &str,
        artifacts: Vec<PathBuf>,
        observations: Vec<Observation>,
        summary: serde_json::Value,
    ) -> RunOutcome {
        RunOutcome {
            job: job.into(),
            status: RunStatus::Succeeded,
            seconds: self.seconds(),
            started_at: self.at,
            artifacts,
            observations,
            summary,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no trained models yet: run `bankml train` first")]
    NoModels,
    #[error(transparent)]
    Ingest(#[from] crate::data::snapshot::IngestError),
    #[error(transparent)]
    Model(#[from] crate::models::tabular::TrainError),
    #[error(transparent)]
    Files(#[from] crate::fsutil::FsError),
    #[error(transparent)]
    Write(#[from] crate::data::format::WriteError),
    #[error(transparent)]
    Boost(#[from] crate::models::boosted::BoostError),
    #[error(transparent)]
    Design(#[from] crate::models::design::DesignError),
    #[error("{0}")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("a scoring worker stopped unexpectedly")]
    WorkerPanicked,
    #[error(transparent)]
    History(#[from] crate::data::history::HistoryError),
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
    #[error("{0}")]
    Invalid(String),
}

/// `None` when the model has no champion (or `alias`) yet.
pub(crate) fn absent_if_untrained<T>(
    result: Result<T, crate::models::tabular::TrainError>,
) -> Result<Option<T>, JobError> {
    use crate::models::registry::RegistryError;
    use crate::models::tabular::TrainError;
    match result {
        Ok(m) => Ok(Some(m)),
        Err(TrainError::Registry(RegistryError::NoAlias { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
