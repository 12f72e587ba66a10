//! Has one group of rows (a region, a segment, an agency) got worse *relative to the rest*
//! since its baseline?
//!
//! A lasting difference between groups — Mass clients get less apt lists than Private ones,
//! Capital's managers are harder to predict — is a property of the bank, known as soon as it
//! is measured. A monitor that tests each group against all rows calls it on every run: at a
//! million clients the shipped rule raised four such alerts on every daily benchmark of a
//! steady bank. So a group's figure is read as a ratio to the whole's (which takes out a
//! change every group shares: the headline rules watch that), and the ratio is tested
//! one-sided against the same group's ratio at its baseline, with both standard errors: a
//! z-test of two independent estimates. Only "worse" is a finding; the p-values go through
//! Benjamini–Hochberg across the model's groups ([`super::proportions::Correction`]).
//!
//! The standard errors: Hanley & McNeil's for an AUC, the sample's for a mean of per-user
//! figures, and the delta method's for an RMSE (from the squared errors' own spread, with no
//! assumption that errors are normal: the chi-square test this replaced assumed that, and on
//! a region's ~20 managers with heavy-tailed errors it flagged one in every few runs).

use super::{MetricError, Result};
use statrs::distribution::{ContinuousCDF, Normal};

/// Hanley & McNeil (1982)'s standard error of an AUC from `positives` and `negatives`.
pub fn auc_standard_error(auc: f64, positives: usize, negatives: usize) -> Result<f64> {
    if positives == 0 || negatives == 0 {
        return Err(MetricError::SingleClass(
            u8::from(positives == 0),
            "the AUC's standard error",
        ));
    }
    let (n1, n2) = (positives as f64, negatives as f64);
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    let variance = (auc * (1.0 - auc) + (n1 - 1.0) * (q1 - auc * auc) + (n2 - 1.0) * (q2 - auc * auc)) / (n1 * n2);
    Ok(variance.max(0.0).sqrt())
}

/// The mean of `values` and its standard error (the sample standard deviation, `ddof = 1`,
/// over √n): a recommender group's precision at k from its clients' own.
pub fn mean_with_standard_error(values: &[f64]) -> Result<(f64, f64)> {
    if values.len() < 2 {
        return Err(MetricError::Empty);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok((mean, (variance / n).sqrt()))
}

/// The RMSE of a group from its `squared_errors`, and its standard error by the delta method:
/// the mean squared error's standard error (the squared errors' sample spread over √n) over
/// twice the RMSE.
pub fn rmse_with_standard_error(squared_errors: &[f64]) -> Result<(f64, f64)> {
    let (mse, mse_error) = mean_with_standard_error(squared_errors)?;
    let rmse = mse.sqrt();
    Ok((rmse, if rmse > 0.0 { mse_error / (2.0 * rmse) } else { 0.0 }))
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// ROC AUC, precision at k.
    Higher,
    /// RMSE.
    Lower,
}

/// A group's figure beside all rows' at one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupEstimate {
    pub value: f64,
    /// The same metric on all rows.
    pub overall: f64,
    /// Of `value`.
    pub standard_error: f64,
}

impl GroupEstimate {
    /// Whether another estimate of the group can be compared with this one: it has a share
    /// of the whole and a spread to weigh a difference by.
    pub fn is_comparable(&self) -> bool {
        self.ratio().is_some() && self.standard_error.is_finite() && self.standard_error > 0.0
    }

    /// The figure as a share of the whole's, with its standard error; `None` when the
    /// whole's is zero or not a number.
    fn ratio(&self) -> Option<(f64, f64)> {
        (self.overall.is_finite() && self.overall != 0.0 && self.value.is_finite()).then(|| {
            (
                self.value / self.overall,
                self.standard_error.abs() / self.overall.abs(),
            )
        })
    }
}

/// One-sided p-value of "the group's figure, as a share of all rows', is worse `now` than
/// `then`" (a z-test of two independent estimates). 1 when either ratio is undefined or the
/// estimates have no spread to weigh the difference by: no evidence either way.
pub fn worse_since_p_value(now: &GroupEstimate, then: &GroupEstimate, better: Better) -> f64 {
    let (Some((now, now_error)), Some((then, then_error))) = (now.ratio(), then.ratio()) else {
        return 1.0;
    };
    // Positive: the group's share moved the bad way.
    let worsened = match better {
        Better::Higher => then - now,
        Better::Lower => now - then,
    };
    let error = now_error.hypot(then_error);
    if error == 0.0 || !error.is_finite() {
        return 1.0;
    }
    Normal::standard().sf(worsened / error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hanley & McNeil (1982), Radiology 143:29–36, the worked example: 51 diseased and 58
    /// healthy patients, an area of 0.893 with a standard error of 0.032.
    #[test]
    fn the_standard_error_is_hanley_and_mcneils() {
        let se = auc_standard_error(0.893, 51, 58).unwrap();
        assert!((se - 0.032).abs() < 0.0006, "{se}");
        assert!(
            auc_standard_error(0.893, 510, 580).unwrap() < se / 3.0,
            "ten times the rows"
        );
    }

    /// The delta method's standard error of an RMSE against the spread of RMSEs over many
    /// samples of heavier-tailed errors than normal ones (Laplace).
    #[test]
    fn the_rmse_standard_error_matches_its_spread_over_samples() {
        let mut state = 11u64;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut laplace = move || {
            let magnitude = -uniform().ln();
            if uniform() < 0.5 { -magnitude } else { magnitude }
        };
        let (mut rmses, mut errors) = (Vec::new(), Vec::new());
        for _ in 0..2_000 {
            let squared: Vec<f64> = (0..100).map(|_| laplace().powi(2)).collect();
            let (rmse, error) = rmse_with_standard_error(&squared).unwrap();
            rmses.push(rmse);
            errors.push(error);
        }
        let (_, spread) = mean_with_standard_error(&rmses).unwrap();
        let spread = spread * (rmses.len() as f64).sqrt();
        errors.sort_by(f64::total_cmp);
        let median = errors[errors.len() / 2];
        assert!((median / spread - 1.0).abs() < 0.15, "{median} against {spread}");
    }

    #[test]
    fn only_a_worse_share_than_before_is_a_finding() {
        let then = GroupEstimate {
            value: 0.80,
            overall: 0.85,
            standard_error: 0.01,
        };
        // The whole fell with the group: its share is the same, no finding.
        let shared = GroupEstimate {
            value: 0.75,
            overall: 0.80,
            standard_error: 0.01,
        };
        assert!(worse_since_p_value(&shared, &then, Better::Higher) > 0.4);
        let fell = GroupEstimate {
            overall: 0.85,
            ..shared
        };
        let p = worse_since_p_value(&fell, &then, Better::Higher);
        // z = (0.80/0.85 − 0.75/0.85) / (√2 · 0.01/0.85) = 5/√2:
        // scipy.stats.norm.sf(3.535533905932745) = 0.00020347600872247366
        assert!((p / 0.000_203_476_008_722_473_66 - 1.0).abs() < 1e-9, "{p}");
        assert!(
            worse_since_p_value(&then, &fell, Better::Higher) > 0.999,
            "better is no finding"
        );
        assert!(
            worse_since_p_value(&fell, &then, Better::Lower) > 0.999,
            "an RMSE that fell"
        );
        let undefined = GroupEstimate { overall: 0.0, ..fell };
        assert_eq!(worse_since_p_value(&undefined, &then, Better::Higher), 1.0);
        // An AUC of 1 twice (Hanley & McNeil's error is 0): no spread, no evidence.
        let perfect = GroupEstimate {
            value: 1.0,
            overall: 0.85,
            standard_error: 0.0,
        };
        let whole_rose = GroupEstimate {
            overall: 0.90,
            ..perfect
        };
        assert_eq!(worse_since_p_value(&whole_rose, &perfect, Better::Higher), 1.0);
    }
}
