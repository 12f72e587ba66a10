//! What each job's run reports, typed: the jobs build these, `report.json` holds them (as the
//! outcome's `summary`), and the HTML page reads them back into the same types — so a figure
//! the page shows is a field the job filled, checked by the compiler, not a key looked up in
//! JSON that a typo turns into a silent "–".

use crate::metrics::classification::CalibrationBin;
use crate::metrics::drift::{CategoricalDrift, DatasetVerdict, DriftPolicy, NumericDrift};
use crate::metrics::reference::{LearnedThreshold, Quality};
use crate::metrics::significance::{Bootstrap, DeLong};
use crate::models::recommender::{Candidate, RecommenderMetrics};
use crate::models::tabular::{CrossValidation, HoldoutMetrics};
use crate::vocab::ModelKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A job's summary, by the job kind that wrote it (boxed: the summaries differ widely in size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobSummary {
    Benchmark(Box<BenchmarkSummary>),
    Validation(Box<ValidationSummary>),
    Retrain(Box<RetrainSummary>),
    Scoring(Box<ScoringSummary>),
    Business(Box<super::campaigns::BusinessSummary>),
}

/// Why a stored summary could not be read back.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SummaryError {
    #[error("no summary type for job kind {0:?}")]
    UnknownKind(String),
    /// The JSON is not this kind's summary: written by another version of bankml, or damaged.
    #[error("the {kind} summary does not read back: {message}")]
    Invalid { kind: String, message: String },
}

impl JobSummary {
    /// The summary of a `kind` job (`benchmark`, `validation`, `retrain`, `scoring`) read
    /// from its JSON. An error says which field did not read, so a page or a job that needed
    /// it can say why instead of quietly showing nothing.
    pub fn read(kind: &str, value: &serde_json::Value) -> Result<JobSummary, SummaryError> {
        fn typed<T: serde::de::DeserializeOwned>(kind: &str, value: &serde_json::Value) -> Result<T, SummaryError> {
            serde_path_to_error::deserialize(value).map_err(|e| SummaryError::Invalid {
                kind: kind.to_string(),
                message: e.to_string(),
            })
        }
        Ok(match kind {
            "benchmark" => JobSummary::Benchmark(Box::new(typed(kind, value)?)),
            "validation" => JobSummary::Validation(Box::new(typed(kind, value)?)),
            "retrain" => JobSummary::Retrain(Box::new(typed(kind, value)?)),
            "scoring" => JobSummary::Scoring(Box::new(typed(kind, value)?)),
            "business" => JobSummary::Business(Box::new(typed(kind, value)?)),
            _ => return Err(SummaryError::UnknownKind(kind.to_string())),
        })
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The snapshot the run was as of.
    pub fn snapshot(&self) -> &str {
        match self {
            JobSummary::Benchmark(s) => &s.snapshot,
            JobSummary::Validation(s) => &s.snapshot,
            JobSummary::Retrain(s) => &s.snapshot,
            JobSummary::Scoring(s) => &s.snapshot,
            JobSummary::Business(s) => &s.snapshot,
        }
    }
}

// ---- the daily benchmark ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkSummary {
    pub snapshot: String,
    pub drift_policy: DriftPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnBenchmark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<PerformanceBenchmark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<PerformanceBenchmark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommender: Option<RecommenderBenchmark>,
    /// Rows per table of the snapshot, and of the snapshot before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_rows: Option<TableRows>,
    /// Each model's headline metric by region, segment and agency, rows permitting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentFigure>,
    /// The metric's spread across regions, per model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub region_spread: Vec<RegionSpread>,
}

/// A model's headline metric on one group of rows, and whether the group fell behind the rest
/// since its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentFigure {
    pub model: ModelKind,
    /// `region`, `segment` or `agency`.
    pub dimension: String,
    pub segment: String,
    pub rows: usize,
    /// `roc_auc` (churn), `precision_at_k` (the recommender) or `rmse` (managers, agencies).
    pub metric: String,
    pub value: f64,
    /// The same metric on every row.
    pub overall: f64,
    /// Of `value` (Hanley & McNeil's for an AUC, the clients' spread for precision at k, the
    /// delta method's for an RMSE); 0 in reports written before it was kept.
    #[serde(default)]
    pub standard_error: f64,
    /// The group's figures at the champion's first benchmark that measured it, which this
    /// run's are tested against; `None` on that first run (then it *is* the baseline), or
    /// while no figure of the group could be tested against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<SegmentBaseline>,
    /// Whether the figure was tested against its baseline: not without one, nor for fewer than
    /// 30 managers or agencies.
    #[serde(default)]
    pub tested: bool,
    /// One-sided: the group's share of the whole's figure is worse than at its baseline (1
    /// when not tested).
    pub p_value: f64,
    /// Benjamini–Hochberg over the model's groups.
    pub adjusted_p_value: f64,
    pub worse: bool,
    /// The model's other benchmark metrics on the group (shown, not tested): for churn
    /// average precision, precision, recall, F1, Brier, log loss, KS and the positive rate;
    /// for the recommender recall, NDCG, hit rate and MAP at k; for managers and agencies MAE
    /// and Spearman.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub other: std::collections::BTreeMap<String, f64>,
}

/// A group's figures when its baseline was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentBaseline {
    /// The snapshot that benchmark measured.
    pub snapshot: String,
    pub rows: usize,
    pub value: f64,
    pub overall: f64,
    pub standard_error: f64,
}

/// How much a model's metric varies across regions (the seed's "performance variance
/// consistent across regions").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionSpread {
    pub model: ModelKind,
    pub metric: String,
    pub regions: usize,
    /// Standard deviation of the regions' values.
    pub spread: f64,
    pub lowest: f64,
    pub highest: f64,
}

/// Rows per table of the benchmarked snapshot and of the previous snapshot a benchmark saw:
/// carried from run to run, so the daily runs of one snapshot all compare it with the one
/// before, not with themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRows {
    pub snapshot: String,
    pub rows: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<TableRows>>,
}

impl BenchmarkSummary {
    pub fn performance(&self, kind: ModelKind) -> Option<&PerformanceBenchmark> {
        match kind {
            ModelKind::Manager => self.manager.as_ref(),
            ModelKind::Agency => self.agency.as_ref(),
            _ => None,
        }
    }
}

/// The churn champion on the latest snapshot whose outcome has matured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnBenchmark {
    pub version: u32,
    pub importance: Vec<(String, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<HoldoutMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_auc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curves: Option<Curves>,
    /// Why nothing was evaluated (no snapshot has a matured outcome yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Performance on the benchmarked snapshot, estimated without labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated: Option<EstimatedChurn>,
    /// The predictions actually made on the evaluated snapshot (the scoring job's file), now
    /// that its outcome is known; `None` when that snapshot was never scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<CohortRealized>,
    pub drift: Drift,
}

/// What the churn predictions stored for one snapshot turned out to be worth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRealized {
    pub snapshot: String,
    /// The churn version that made them (the champion of that day).
    pub version: u32,
    /// Stored predictions with a known outcome.
    pub rows: usize,
    pub realized_auc: f64,
    /// What CBPE on the stored calibrated rates said of them before the outcome was known.
    pub estimated_auc: Option<f64>,
}

/// The churn champion's performance on a snapshot whose outcome is not known yet, estimated
/// from its calibrated probabilities (CBPE), or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EstimatedChurn {
    Estimated {
        snapshot: String,
        threshold: f64,
        estimate: crate::metrics::estimation::Estimate,
    },
    NotEstimated {
        note: String,
    },
}

/// ROC and precision-recall points `(x, y, threshold)` and the calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    #[serde(deserialize_with = "points_with_thresholds")]
    pub roc: Vec<(f64, f64, f64)>,
    #[serde(deserialize_with = "points_with_thresholds")]
    pub precision_recall: Vec<(f64, f64, f64)>,
    pub calibration: Vec<CalibrationBin>,
}

/// Curve points as JSON holds them: the first ROC point's threshold is +∞, which JSON writes
/// as `null`; it reads back as +∞ so the summary round-trips.
fn points_with_thresholds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<(f64, f64, f64)>, D::Error> {
    let points: Vec<(f64, f64, Option<f64>)> = Deserialize::deserialize(deserializer)?;
    Ok(points
        .into_iter()
        .map(|(x, y, threshold)| (x, y, threshold.unwrap_or(f64::INFINITY)))
        .collect())
}

/// A manager or agency champion on the latest snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceBenchmark {
    pub version: u32,
    pub evaluated_snapshot: String,
    pub metrics: HoldoutMetrics,
    pub trained_rmse: Option<f64>,
    /// `[actual, predicted]` per entity.
    pub actual_vs_predicted: Vec<[f64; 2]>,
    /// Entities the export gave no score for: left out of the metrics (scored, not measured).
    #[serde(default)]
    pub without_score: usize,
    pub importance: Vec<(String, f64)>,
    pub drift: Drift,
}

/// Drift of a model's features against its champion's reference, or why it was not measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Drift {
    Measured {
        verdict: DatasetVerdict,
        features: BTreeMap<String, FeatureDrift>,
        /// Each feature's threshold, learned from its reference months.
        #[serde(default)]
        thresholds: BTreeMap<String, LearnedThreshold>,
        /// Each feature's missing and out-of-reference shares.
        #[serde(default)]
        quality: BTreeMap<String, Quality>,
        /// The snapshots the champion's reference statistics come from.
        #[serde(default)]
        reference_snapshots: Vec<String>,
        /// The multivariate check: a classifier telling reference rows from today's.
        #[serde(default)]
        domain: Option<DomainDrift>,
    },
    NotMeasured {
        note: String,
    },
}

/// The domain classifier's verdict (`models::domain`), or why it was not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DomainDrift {
    Measured {
        separability: crate::models::domain::Separability,
        /// The AUC above which today's rows count as different: learned from the reference
        /// months (mean + k·σ of each month against the others), at least the floor.
        limit: f64,
        /// The reference months' own AUCs the limit was learned from.
        monthly_auc: Vec<f64>,
    },
    NotMeasured {
        note: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureDrift {
    Numeric(NumericDrift),
    Categorical(CategoricalDrift),
    /// A feature with no current values (all missing) cannot be compared.
    NoValues {
        note: String,
    },
}

impl FeatureDrift {
    pub fn psi(&self) -> Option<f64> {
        match self {
            FeatureDrift::Numeric(d) => Some(d.psi),
            FeatureDrift::Categorical(d) => Some(d.psi),
            FeatureDrift::NoValues { .. } => None,
        }
    }
}

/// The recommender on the products opened since its cut-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommenderBenchmark {
    pub version: u32,
    pub method: String,
    /// "as trained (…)" or "refit at cut-off".
    pub evaluated: String,
    pub cutoff: String,
    pub clients_with_openings: usize,
    pub metrics: RecommenderMetrics,
    pub trained_precision_at_k: Option<f64>,
}

// ---- the weekly validation ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSummary {
    pub snapshot: String,
    pub folds: usize,
    /// Per model (churn, manager, agency).
    #[serde(flatten)]
    pub models: BTreeMap<ModelKind, ModelValidation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelValidation {
    Validated(Box<Validated>),
    NoData { note: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validated {
    pub champion: u32,
    pub snapshots: Vec<String>,
    pub rows: usize,
    pub cross_validation: CrossValidation,
    pub previous_mean: Option<f64>,
    pub change_from_previous: Option<f64>,
    /// Champion against challenger on the newest snapshot, when there is a challenger.
    pub challenger: Option<ChallengerTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengerTest {
    pub version: u32,
    pub snapshot: String,
    pub test: PairedTest,
}

/// Champion (A) against challenger (B) on the same rows: DeLong for AUC, a paired bootstrap
/// for RMSE. `difference` is B − A.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    /// `DeLong` or `paired bootstrap`.
    pub test: String,
    pub metric: String,
    pub rows: usize,
    pub champion: f64,
    pub challenger: f64,
    pub difference: f64,
    pub p_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resamples: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
}

impl PairedTest {
    pub fn delong(rows: usize, test: &DeLong) -> PairedTest {
        PairedTest {
            test: "DeLong".into(),
            metric: "roc_auc".into(),
            rows,
            champion: test.auc_a,
            challenger: test.auc_b,
            difference: test.difference,
            p_value: test.p_value,
            z: Some(test.z),
            resamples: None,
            ci_low: None,
            ci_high: None,
        }
    }

    pub fn bootstrap(rows: usize, champion: f64, challenger: f64, test: &Bootstrap) -> PairedTest {
        PairedTest {
            test: "paired bootstrap".into(),
            metric: "rmse".into(),
            rows,
            champion,
            challenger,
            difference: test.difference,
            p_value: test.p_value,
            z: None,
            resamples: Some(test.resamples),
            ci_low: Some(test.ci_low),
            ci_high: Some(test.ci_high),
        }
    }
}

// ---- the monthly retraining ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainSummary {
    pub snapshot: String,
    pub min_improvement: f64,
    pub alpha: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<RetrainDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<RetrainDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<RetrainDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommender: Option<RecommenderDecision>,
}

impl RetrainSummary {
    pub fn decision_mut(&mut self, kind: ModelKind) -> Option<&mut Option<RetrainDecision>> {
        match kind {
            ModelKind::Churn => Some(&mut self.churn),
            ModelKind::Manager => Some(&mut self.manager),
            ModelKind::Agency => Some(&mut self.agency),
            ModelKind::Recommender => None,
        }
    }

    pub fn decision(&self, kind: ModelKind) -> Option<&RetrainDecision> {
        match kind {
            ModelKind::Churn => self.churn.as_ref(),
            ModelKind::Manager => self.manager.as_ref(),
            ModelKind::Agency => self.agency.as_ref(),
            ModelKind::Recommender => None,
        }
    }
}

/// A tabular challenger against its champion, and what was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainDecision {
    pub version: u32,
    pub promoted: bool,
    pub reason: String,
    pub holdout: HoldoutMetrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_before: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<PairedTest>,
    #[serde(default)]
    pub importance: Vec<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommenderDecision {
    pub version: u32,
    pub champion_before: Option<u32>,
    pub method: String,
    pub promoted: bool,
    pub reason: String,
    pub candidates: Vec<Candidate>,
}

// ---- the daily scoring (also `data/scores/<date>/summary.json`) ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringSummary {
    pub snapshot: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<RecommendationScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managers: Option<EntityScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agencies: Option<EntityScores>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientScores {
    pub model_version: u32,
    pub count: usize,
    /// Clients per risk level: `Low`, `Medium`, `High`.
    pub by_risk: BTreeMap<String, usize>,
    /// The mean of the model's class-weighted scores: a ranking, not a rate.
    pub mean_churn_probability: f64,
    /// The churn rate the champion's calibrator expects over these clients (the mean of
    /// `churn_rate`); `None` for a version trained without a calibrator.
    #[serde(default)]
    pub expected_churn_rate: Option<f64>,
    /// The clients most likely to leave (highest churn rate first), with why and what to do.
    #[serde(default)]
    pub top_at_risk: Vec<AtRiskClient>,
}

/// One client of a retention list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtRiskClient {
    pub client_id: i64,
    pub manager_id: Option<String>,
    /// The calibrated chance of leaving (the class-weighted score without a calibrator).
    pub churn_rate: f64,
    pub risk: String,
    pub reasons: String,
    pub actions: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendationScores {
    pub method: String,
    pub clients: usize,
    pub cold_start_clients: usize,
    pub per_client: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityScores {
    pub model_version: u32,
    pub count: usize,
    pub mean_predicted_score: f64,
    /// The five best and the five worst predicted.
    pub top: Vec<RankedEntity>,
    pub bottom: Vec<RankedEntity>,
    /// The score every manager or agency is held to (`models.performance_objective`).
    #[serde(default)]
    pub objective: Option<f64>,
    /// How many are predicted below it.
    #[serde(default)]
    pub below_objective: usize,
    /// The ten least likely to meet it among those below: what pulls each down and the
    /// support it calls for.
    #[serde(default)]
    pub needing_support: Vec<EntitySupport>,
}

/// A manager or agency predicted below the objective, and what would help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitySupport {
    pub id: String,
    pub predicted_score: f64,
    pub meets_objective_probability: f64,
    /// `feature (effect)` of the features pulling the score down most.
    pub pulling_down: Vec<String>,
    pub support: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedEntity {
    /// The manager (`ges`) or agency (`age`) code.
    pub id: String,
    pub predicted_score: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ROC curve starts at threshold +∞, which JSON writes as `null`: a summary must still
    /// read back — the HTML page reads it, and drew no churn charts when it did not.
    #[test]
    fn a_summary_with_an_infinite_threshold_reads_back() {
        let summary = JobSummary::Benchmark(Box::new(BenchmarkSummary {
            snapshot: "2025-12-31".into(),
            drift_policy: DriftPolicy::default(),
            churn: Some(ChurnBenchmark {
                version: 3,
                importance: vec![("age_years".into(), 1.5)],
                evaluated_snapshot: Some("2025-09-30".into()),
                metrics: None,
                trained_auc: None,
                curves: Some(Curves {
                    roc: vec![(0.0, 0.0, f64::INFINITY), (1.0, 1.0, 0.1)],
                    precision_recall: vec![(0.0, 1.0, 0.9)],
                    calibration: vec![],
                }),
                note: None,
                estimated: None,
                cohort: None,
                drift: Drift::NotMeasured {
                    note: "no reference".into(),
                },
            }),
            manager: None,
            agency: None,
            recommender: None,
            table_rows: None,
            segments: Vec::new(),
            region_spread: Vec::new(),
        }));
        let text = serde_json::to_string(&summary).unwrap();
        assert!(text.contains("null"), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(JobSummary::read("benchmark", &value), Ok(summary));

        // A damaged summary says where, instead of reading as nothing.
        let mut damaged = value.clone();
        damaged["churn"]["version"] = serde_json::json!("seven");
        let error = JobSummary::read("benchmark", &damaged).unwrap_err();
        assert!(
            matches!(&error, SummaryError::Invalid { message, .. } if message.contains("churn.version")),
            "{error}"
        );
        assert_eq!(
            JobSummary::read("nightly", &value),
            Err(SummaryError::UnknownKind("nightly".into()))
        );
    }
}
