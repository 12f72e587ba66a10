//! Isotonic calibration: a non-decreasing step-linear map from a model's scores to observed
//! rates, fitted on labelled rows — scikit-learn's `IsotonicRegression(increasing=True,
//! out_of_bounds="clip")`, step for step (ties merged by weighted mean, pool-adjacent-violators,
//! linear interpolation between the fitted points, clipped outside them), so a stored
//! calibrator reads as sklearn's would.
//!
//! The churn model's class-weighted scores rank well but overstate churn (a balanced
//! `scale_pos_weight` moves them towards 0.5); calibrated, they read as churn rates, which is
//! what performance estimation without labels (CBPE) needs.

use super::{Result, check_finite, check_same_length};
use serde::{Deserialize, Serialize};

/// numpy's `finfo(float64).resolution`: scores closer than this are one score to sklearn.
const TIE_RESOLUTION: f64 = 1e-15;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// Fitted points, ascending in `x`, `y` non-decreasing.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

impl Isotonic {
    /// Fits on `scores` and their outcomes `labels` (0/1 or any real target), unit weights.
    pub fn fit(scores: &[f64], labels: &[f64]) -> Result<Isotonic> {
        check_same_length("scores", scores.len(), "labels", labels.len())?;
        check_finite("score", scores)?;
        check_finite("label", labels)?;
        // np.lexsort((y, X)): by score, then by label.
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(labels[a].total_cmp(&labels[b])));
        // sklearn's _make_unique: equal scores become one point with their mean label.
        let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
        let mut current_x = scores[order[0]];
        let (mut sum_y, mut weight) = (0.0, 0.0);
        for &i in &order {
            if scores[i] - current_x >= TIE_RESOLUTION {
                x.push(current_x);
                w.push(weight);
                y.push(sum_y / weight);
                current_x = scores[i];
                weight = 1.0;
                sum_y = labels[i];
            } else {
                weight += 1.0;
                sum_y += labels[i];
            }
        }
        x.push(current_x);
        w.push(weight);
        y.push(sum_y / weight);
        pool_adjacent_violators(&mut y, &mut w);
        // Drop the inner points whose value equals both neighbours' (they change nothing).
        let keep: Vec<bool> = (0..y.len())
            .map(|i| i == 0 || i + 1 == y.len() || y[i] != y[i - 1] || y[i] != y[i + 1])
            .collect();
        let pick = |v: &[f64]| {
            v.iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| *v)
                .collect::<Vec<f64>>()
        };
        Ok(Isotonic {
            x: pick(&x),
            y: pick(&y),
        })
    }

    /// The calibrated value of `score`: linear between fitted points, clipped outside them.
    pub fn predict(&self, score: f64) -> f64 {
        let (Some(&first), Some(&last)) = (self.x.first(), self.x.last()) else {
            return f64::NAN;
        };
        let score = score.clamp(first, last);
        // np.interp: the last point with x ≤ score, then the line to the next.
        let j = self.x.partition_point(|v| *v <= score).saturating_sub(1);
        if j + 1 >= self.x.len() || self.x[j] == score {
            return self.y[j];
        }
        let slope = (self.y[j + 1] - self.y[j]) / (self.x[j + 1] - self.x[j]);
        slope * (score - self.x[j]) + self.y[j]
    }

    pub fn predict_all(&self, scores: &[f64]) -> Vec<f64> {
        scores.iter().map(|s| self.predict(*s)).collect()
    }
}

/// Weighted pool-adjacent-violators in place (sklearn's
/// `_inplace_contiguous_isotonic_regression`): the non-decreasing `y` closest in weighted
/// least squares.
fn pool_adjacent_violators(y: &mut [f64], w: &mut [f64]) {
    let n = y.len();
    let mut target: Vec<usize> = (0..n).collect();
    let mut i = 0;
    while i < n {
        let mut k = target[i] + 1;
        if k == n {
            break;
        }
        if y[i] < y[k] {
            i = k;
            continue;
        }
        let mut sum_wy = w[i] * y[i];
        let mut sum_w = w[i];
        loop {
            let previous = y[k];
            sum_wy += w[k] * y[k];
            sum_w += w[k];
            k = target[k] + 1;
            if k == n || previous < y[k] {
                y[i] = sum_wy / sum_w;
                w[i] = sum_w;
                target[i] = k - 1;
                target[k - 1] = i;
                if i > 0 {
                    i = target[i - 1];
                }
                break;
            }
        }
    }
    let mut i = 0;
    while i < n {
        let k = target[i] + 1;
        let value = y[i];
        for v in &mut y[i + 1..k] {
            *v = value;
        }
        i = k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricError;

    #[test]
    fn a_monotone_sample_is_kept_and_a_violation_is_pooled() {
        let fitted = Isotonic::fit(&[1.0, 2.0, 3.0, 4.0], &[0.0, 1.0, 0.0, 1.0]).unwrap();
        assert_eq!(fitted.x, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(fitted.y, [0.0, 0.5, 0.5, 1.0]);
        assert_eq!(fitted.predict(2.5), 0.5);
        assert_eq!(fitted.predict(3.5), 0.75, "linear between fitted points");
        assert_eq!(fitted.predict(-7.0), 0.0, "clipped below");
        assert_eq!(fitted.predict(9.0), 1.0, "clipped above");
        // Ties become one point with their mean label.
        let tied = Isotonic::fit(&[0.5, 0.5, 0.5, 0.9], &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(tied.x, [0.5, 0.9]);
        assert!((tied.y[0] - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(Isotonic::fit(&[], &[]).unwrap_err(), MetricError::Empty);
        assert!(Isotonic::fit(&[1.0], &[1.0, 0.0]).is_err());
        assert!(Isotonic::fit(&[f64::NAN], &[1.0]).is_err());
    }
}
