//! Regression: error sizes (RMSE, MAE), explained variance (R²), the share within ±15 %, and
//! ranking agreement (Spearman, top-10 overlap) — for scores such as managers' 0–100.

use super::{Result, average_ranks, check_finite, check_same_length, pearson};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegressionMetrics {
    pub rows: usize,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    pub within_15pct: f64,
    pub spearman: f64,
    pub top10_overlap: f64,
}

pub fn evaluate(truth: &[f64], predicted: &[f64]) -> Result<RegressionMetrics> {
    check_same_length("targets", truth.len(), "predictions", predicted.len())?;
    check_finite("target", truth)?;
    check_finite("prediction", predicted)?;
    let n = truth.len() as f64;
    let (mut squared, mut absolute, mut within) = (0.0, 0.0, 0usize);
    for (t, p) in truth.iter().zip(predicted) {
        let error = p - t;
        squared += error * error;
        absolute += error.abs();
        within += usize::from(error.abs() <= 0.15 * t.abs());
    }
    Ok(RegressionMetrics {
        rows: truth.len(),
        rmse: (squared / n).sqrt(),
        mae: absolute / n,
        r2: r2(truth, squared),
        within_15pct: within as f64 / n,
        spearman: spearman(truth, predicted),
        top10_overlap: top_k_overlap(truth, predicted, 10),
    })
}

/// 1 − SS_res / SS_tot; a constant truth gives 1 when predicted exactly, else 0 (as
/// scikit-learn's `force_finite`).
fn r2(truth: &[f64], squared_error: f64) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let total: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    if total == 0.0 {
        return if squared_error == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - squared_error / total
}

/// Spearman's rho: Pearson correlation of average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Share of the top `k` by truth that are also in the top `k` by prediction (descending,
/// ties in input order); with fewer rows, out of that count.
pub fn top_k_overlap(truth: &[f64], predicted: &[f64], k: usize) -> f64 {
    let top = |values: &[f64]| -> Vec<usize> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        order.truncate(k);
        order
    };
    let (by_truth, by_prediction) = (top(truth), top(predicted));
    let shared = by_truth.iter().filter(|i| by_prediction.contains(i)).count();
    shared as f64 / by_truth.len().max(1) as f64
}
