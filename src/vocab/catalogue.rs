//! The observation catalogue: every figure a job (or the daemon) publishes, with its help
//! text, unit and label names. Jobs build observations only from these specs; `/metrics` takes
//! its HELP text from here; alert rules are checked against it, so a rule on `churn_aucc` is
//! refused at load time instead of never firing.

use std::fmt;

/// A label an observation carries. `job` is added by the publishers (the run's job name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    Model,
    Feature,
    /// The cut-off of a ranking metric (`k="5"`).
    K,
    /// Churn risk level: Low, Medium, High.
    Risk,
    /// Which metric a cross-validation figure is of (`roc_auc`, `rmse`).
    Metric,
    /// A table of the bank's export (`clients`, `activity`).
    Table,
    /// The snapshot a set of stored predictions was made on, or whose scores chose a
    /// campaign's clients (`2025-03-31`): one new series a month, never a client.
    Cohort,
    /// The model version that made them.
    Version,
    /// A campaign's kind (`retention`, `offer`): the newest matured campaign of the kind.
    Campaign,
    /// A campaign arm (`champion`, `challenger`, `baseline`, `control`).
    Arm,
    /// Which arms on which outcome (`champion_vs_control:conversion`).
    Comparison,
    /// How rows are grouped: `region`, `segment`, `agency`.
    Dimension,
    /// One group of a dimension (`North`, `Affluent`, `AG07`).
    Segment,
}

impl Label {
    pub const fn as_str(self) -> &'static str {
        match self {
            Label::Model => "model",
            Label::Feature => "feature",
            Label::K => "k",
            Label::Risk => "risk",
            Label::Metric => "metric",
            Label::Table => "table",
            Label::Cohort => "cohort",
            Label::Version => "version",
            Label::Campaign => "campaign",
            Label::Arm => "arm",
            Label::Comparison => "comparison",
            Label::Dimension => "dimension",
            Label::Segment => "segment",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label every published series gets from its run, beside the observation's own.
/// Not `job`: Prometheus sets `job` to the scrape job's name and renames a target's own `job`
/// to `exported_job`, which left every per-job rule and panel matching nothing.
pub const JOB_LABEL: &str = "bankml_job";

/// What an observation's value measures, for people reading /metrics and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A share or a score between 0 and 1 (AUC, precision, PSI is not one of these).
    Ratio,
    /// A number of things (clients, features).
    Count,
    /// Points of a 0–100 performance score.
    Points,
    /// A model version number.
    Version,
    /// 0 or 1.
    Flag,
    /// A relative change: -0.05 is 5 % down.
    RelativeChange,
    /// A statistic without a unit (PSI, log loss, p-value, R²).
    Dimensionless,
}

impl Unit {
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Count => "count",
            Unit::Points => "points",
            Unit::Version => "version",
            Unit::Flag => "flag",
            Unit::RelativeChange => "relative change",
            Unit::Dimensionless => "dimensionless",
        }
    }
}

/// One catalogued observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservationSpec {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Unit,
    /// The labels every observation of this name carries, in this order.
    pub labels: &'static [Label],
}

impl ObservationSpec {
    /// Whether a rule may match on or template `label` for this observation.
    pub fn has_label(&self, label: &str) -> bool {
        label == JOB_LABEL || self.labels.iter().any(|l| l.as_str() == label)
    }

    /// `model, feature, job` — the names a rule may use.
    pub fn label_names(&self) -> Vec<&'static str> {
        self.labels.iter().map(|l| l.as_str()).chain([JOB_LABEL]).collect()
    }
}

macro_rules! catalogue {
    ($($ident:ident = $name:literal [$($label:ident),*] $unit:ident: $help:literal;)*) => {
        $(
            pub const $ident: ObservationSpec = ObservationSpec {
                name: $name,
                help: $help,
                unit: Unit::$unit,
                labels: &[$(Label::$label),*],
            };
        )*
        /// Every catalogued observation.
        pub const ALL: &[ObservationSpec] = &[$($ident),*];
    };
}

catalogue! {
    // Scoring.
    SCORED_CLIENTS = "scored_clients" [] Count: "Clients scored by the last scoring run";
    CHURN_RISK_CLIENTS = "churn_risk_clients" [Risk] Count: "Clients per churn risk level in the last scoring run";
    CHURN_MEAN_PROBABILITY = "churn_mean_probability" [] Ratio: "Mean churn probability of the scored clients";
    RECOMMENDATION_COLD_START_CLIENTS = "recommendation_cold_start_clients" [] Count:
        "Clients holding nothing the recommender knows (popularity fallback)";
    PREDICTED_SCORE_MEAN = "predicted_score_mean" [Model] Points: "Mean predicted performance score (0-100)";
    // Benchmark: churn.
    CHAMPION_VERSION = "champion_version" [Model] Version: "Version of the champion the run measured";
    CHURN_AUC = "churn_auc" [Model] Ratio: "Churn ROC AUC on the latest snapshot whose outcome has matured";
    CHURN_AVERAGE_PRECISION = "churn_average_precision" [Model] Ratio:
        "Churn average precision (area under the precision-recall curve)";
    CHURN_PRECISION = "churn_precision" [Model] Ratio: "Churn precision at the configured threshold";
    CHURN_RECALL = "churn_recall" [Model] Ratio: "Churn recall at the configured threshold";
    CHURN_F1 = "churn_f1" [Model] Ratio: "Churn F1 at the configured threshold";
    CHURN_LOG_LOSS = "churn_log_loss" [Model] Dimensionless: "Churn log loss";
    CHURN_BRIER = "churn_brier" [Model] Dimensionless: "Churn Brier score";
    CHURN_KS = "churn_ks" [Model] Ratio: "Churn Kolmogorov-Smirnov separation of the two classes' scores";
    CHURN_POSITIVE_RATE = "churn_positive_rate" [Model] Ratio: "Share of clients who churned in the evaluated snapshot";
    CHURN_AUC_CHANGE = "churn_auc_change" [Model] RelativeChange:
        "Relative change of churn AUC against the champion's own training holdout AUC";
    CHURN_ESTIMATED_AUC = "churn_estimated_auc" [Model] Ratio:
        "Churn ROC AUC estimated without labels (CBPE, calibrated probabilities) on the latest snapshot";
    CHURN_ESTIMATED_PRECISION = "churn_estimated_precision" [Model] Ratio:
        "Churn precision at the threshold, estimated without labels on the latest snapshot";
    CHURN_ESTIMATED_RECALL = "churn_estimated_recall" [Model] Ratio:
        "Churn recall at the threshold, estimated without labels on the latest snapshot";
    CHURN_ESTIMATED_F1 = "churn_estimated_f1" [Model] Ratio:
        "Churn F1 at the threshold, estimated without labels on the latest snapshot";
    CHURN_ESTIMATED_SAMPLING_ERROR = "churn_estimated_sampling_error" [Model, Metric] Ratio:
        "Sampling error (one standard error) of an estimated churn metric at the snapshot's size";
    CHURN_ESTIMATED_AUC_CHANGE = "churn_estimated_auc_change" [Model] RelativeChange:
        "Relative change of the estimated churn AUC against the champion's training holdout AUC";
    CHURN_EXPECTED_RATE = "churn_expected_rate" [Model] Ratio:
        "Mean calibrated churn probability of the latest snapshot: the churn rate the model expects";
    // Benchmark: managers and agencies.
    PERFORMANCE_RMSE = "performance_rmse" [Model] Points: "Root mean squared error of the performance score (0-100)";
    PERFORMANCE_MAE = "performance_mae" [Model] Points: "Mean absolute error of the performance score (0-100)";
    PERFORMANCE_R2 = "performance_r2" [Model] Dimensionless: "Coefficient of determination of the performance score";
    PERFORMANCE_SPEARMAN = "performance_spearman" [Model] Dimensionless:
        "Spearman rank correlation of predicted and actual performance";
    PERFORMANCE_RMSE_CHANGE = "performance_rmse_change" [Model] RelativeChange:
        "Relative change of RMSE against the champion's training holdout RMSE";
    // Benchmark: the recommender.
    RECOMMENDER_PRECISION_AT_K = "recommender_precision_at_k" [Model, K] Ratio:
        "Recommender Precision@k on products opened since the cut-off";
    RECOMMENDER_RECALL_AT_K = "recommender_recall_at_k" [Model, K] Ratio: "Recommender Recall@k";
    RECOMMENDER_NDCG_AT_K = "recommender_ndcg_at_k" [Model, K] Ratio: "Recommender NDCG@k";
    RECOMMENDER_COVERAGE = "recommender_coverage" [Model] Ratio: "Share of the catalog the recommender proposes to anyone";
    RECOMMENDER_DIVERSITY = "recommender_diversity" [Model] Ratio:
        "Mean intra-list category diversity of the recommendations";
    RECOMMENDER_PRECISION_AT_K_CHANGE = "recommender_precision_at_k_change" [Model] RelativeChange:
        "Relative change of Precision@k against the champion's training value";
    // Benchmark: drift.
    FEATURE_PSI = "feature_psi" [Model, Feature] Dimensionless:
        "Population stability index of a model feature against the champion's training data";
    FEATURE_KS = "feature_ks" [Model, Feature] Ratio:
        "Kolmogorov-Smirnov statistic of a numeric model feature against training data";
    FEATURE_PSI_THRESHOLD = "feature_psi_threshold" [Model, Feature] Dimensionless:
        "A feature's drift threshold: mean + k sigma of its PSI over the reference months, at least the fixed floor";
    FEATURE_DRIFT_RATIO = "feature_drift_ratio" [Model, Feature] Dimensionless:
        "A feature's PSI over its learned threshold: above 1 it drifted";
    DRIFTED_FEATURES = "drifted_features" [Model] Count: "Model features whose PSI exceeds their learned threshold";
    DRIFT_SHARE = "drift_share" [Model] Ratio: "Share of a model's features that drifted";
    DATASET_DRIFT = "dataset_drift" [Model] Flag: "1 when the share of drifted features reaches the policy's share";
    CHURN_REALIZED_AUC = "churn_realized_auc" [Model, Cohort, Version] Ratio:
        "ROC AUC of the churn predictions the scoring job stored for a snapshot, once its outcome is known";
    CHURN_COHORT_ESTIMATE_ERROR = "churn_cohort_estimate_error" [Model, Cohort, Version] Dimensionless:
        "The AUC the stored predictions' calibrated rates estimated (CBPE) minus the realized AUC";
    DOMAIN_AUC = "domain_auc" [Model] Ratio:
        "Cross-validated AUC of a classifier telling the reference months' rows from today's (0.5: indistinguishable)";
    DOMAIN_AUC_LIMIT = "domain_auc_limit" [Model] Ratio:
        "The domain AUC above which today's rows count as different, learned from the reference months";
    DOMAIN_DRIFT_RATIO = "domain_drift_ratio" [Model] Dimensionless:
        "Domain AUC's excess over 0.5 divided by its limit's: above 1 the data moved as a whole";
    // Benchmark: by region, segment and agency.
    SEGMENT_METRIC = "segment_metric" [Model, Metric, Dimension, Segment] Dimensionless:
        "A model's benchmark metric on one region, client segment or agency (the metric label names it)";
    SEGMENT_WORSE = "segment_worse" [Model, Metric, Dimension, Segment] Flag:
        "1 when the group's share of the whole's figure got worse than at its baseline (the champion's first benchmark of it), at the job's group_fdr (Benjamini-Hochberg across the model's groups)";
    REGION_SPREAD = "region_spread" [Model, Metric] Dimensionless:
        "Standard deviation of a model's headline metric across regions";
    // Benchmark: data quality.
    FEATURE_MISSING_SHARE = "feature_missing_share" [Model, Feature] Ratio: "Share of rows where a model feature is missing";
    FEATURE_MISSING_SHARE_CHANGE = "feature_missing_share_change" [Model, Feature] Dimensionless:
        "Missing share now minus the reference's (0.3 = 30 points more rows missing)";
    FEATURE_OUT_OF_RANGE_SHARE = "feature_out_of_range_share" [Model, Feature] Ratio:
        "Share of a numeric feature's values outside the reference's minimum and maximum";
    FEATURE_UNSEEN_SHARE = "feature_unseen_share" [Model, Feature] Ratio:
        "Share of a categorical feature's values in categories the reference never saw";
    FEATURE_OUT_OF_RANGE_RATIO = "feature_out_of_range_ratio" [Model, Feature] Dimensionless:
        "Out-of-range share over its learned limit (the reference months' own, mean + k sigma, at least 5 %): above 1 is unusual";
    FEATURE_UNSEEN_RATIO = "feature_unseen_ratio" [Model, Feature] Dimensionless:
        "Unseen-category share over its learned limit (the reference months' own, mean + k sigma, at least 1 %): above 1 is unusual";
    TABLE_ROWS = "table_rows" [Table] Count: "Rows of a table in the benchmarked snapshot";
    TABLE_ROWS_CHANGE = "table_rows_change" [Table] RelativeChange:
        "Relative change of a table's rows against the previous snapshot";
    // Validation.
    CV_METRIC_MEAN = "cv_metric_mean" [Model, Metric] Dimensionless:
        "Mean of a metric over the k folds of the weekly cross-validation";
    CV_METRIC_STD = "cv_metric_std" [Model, Metric] Dimensionless: "Standard deviation of a metric over the folds";
    CV_METRIC_CHANGE = "cv_metric_change" [Model, Metric] RelativeChange:
        "Relative change of the cross-validated metric against the previous validation";
    CHALLENGER_DIFFERENCE = "challenger_difference" [Model] Dimensionless:
        "Challenger minus champion on the same rows (AUC for churn, RMSE for regressors)";
    CHALLENGER_P_VALUE = "challenger_p_value" [Model] Dimensionless:
        "p-value of the paired test (DeLong for AUC, paired bootstrap for RMSE)";
    // Retraining.
    RETRAIN_PROMOTED = "retrain_promoted" [Model] Flag: "1 when the retraining promoted its challenger";
    RETRAIN_IMPROVEMENT = "retrain_improvement" [Model] RelativeChange:
        "Relative improvement of the new challenger over the champion on the holdout";
    RETRAIN_P_VALUE = "retrain_p_value" [Model] Dimensionless: "p-value of the paired test behind the promotion decision";
    RETRAIN_CHALLENGER_VERSION = "retrain_challenger_version" [Model] Version: "Version the retraining registered";
    // Business: the newest matured campaign of each kind.
    CAMPAIGN_CLIENTS = "campaign_clients" [Campaign, Cohort, Arm] Count: "Listed clients in a campaign arm";
    CAMPAIGN_CLICK_THROUGH_RATE = "campaign_click_through_rate" [Campaign, Cohort, Arm] Ratio:
        "Share of an arm's contacted clients who clicked the offer";
    CAMPAIGN_CONVERSION_RATE = "campaign_conversion_rate" [Campaign, Cohort, Arm] Ratio:
        "Share of an arm's clients who opened the offered product within the conversion window";
    CAMPAIGN_RETAINED_SHARE = "campaign_retained_share" [Campaign, Cohort, Arm] Ratio:
        "Share of a retention arm's clients still with the bank at the churn horizon";
    CAMPAIGN_DIFFERENCE = "campaign_difference" [Campaign, Cohort, Comparison] Dimensionless:
        "Outcome rate of the first arm minus the second's (0.03 = 3 points)";
    CAMPAIGN_LIFT = "campaign_lift" [Campaign, Cohort, Comparison] RelativeChange:
        "Relative lift of the first arm's outcome rate over the second's (0.2 = 20 % more)";
    CAMPAIGN_P_VALUE = "campaign_p_value" [Campaign, Cohort, Comparison] Dimensionless:
        "p-value of the two-proportion test, Holm-corrected over the campaign's comparisons";
    CAMPAIGN_SIGNIFICANT = "campaign_significant" [Campaign, Cohort, Comparison] Flag:
        "1 when the corrected p-value is below the job's alpha";
    CAMPAIGN_QINI = "campaign_qini" [Campaign, Cohort] Dimensionless:
        "Qini coefficient of the list's score order, champion against control (0 random, 1 best)";
    CHURN_PREVENTION_RATE = "churn_prevention_rate" [Cohort] Ratio:
        "Share of the would-be leavers (the control's rate) the champion's retention calls kept";
    RETENTION_FALSE_POSITIVE_RATE = "retention_false_positive_rate" [Cohort] Ratio:
        "Clients who would have stayed that the retention list took, over all who would have stayed";
    RETENTION_ROI = "retention_roi" [Cohort] Dimensionless:
        "Return on the retention calls: (incremental retained x client value - contacts x cost) / (contacts x cost)";
    // The daemon's own, about runs rather than models (evaluated by alert rules, not published).
    JOB_FAILED = "job_failed" [] Flag: "1 when the job's run failed or timed out after its retries";
    JOB_LATE = "job_late" [] Flag: "1 when the job has not succeeded within its schedule's period plus its timeout";
}

/// The spec of `name`, if catalogued.
pub fn find(name: &str) -> Option<&'static ObservationSpec> {
    ALL.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_valid_prometheus_names_with_help() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a name is catalogued twice");
        for spec in ALL {
            assert!(
                spec.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                spec.name
            );
            assert!(!spec.help.is_empty() && !spec.help.contains('\n'), "{}", spec.name);
            assert!(!spec.labels.iter().any(|l| l.as_str() == JOB_LABEL), "{}", spec.name);
        }
        assert_eq!(find("churn_auc"), Some(&CHURN_AUC));
        assert_eq!(find("churn_aucc"), None);
        assert!(FEATURE_PSI.has_label("feature") && FEATURE_PSI.has_label("bankml_job"));
        assert!(!CHURN_AUC.has_label("feature"));
        assert_eq!(FEATURE_PSI.label_names(), ["model", "feature", "bankml_job"]);
    }
}
