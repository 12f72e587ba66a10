//! Is one group of rows (a region, a segment, an agency) measurably worse than all of them?
//! For a classifier, the group's ROC AUC against the overall one with Hanley & McNeil's
//! standard error; for a regressor, the group's squared errors against the overall mean
//! squared error (a chi-square test of the group's error variance); for a recommender, the
//! group's mean per-user precision at k against the overall one (a z-test). One-sided: only "worse"
//! is a finding. The p-values go through Benjamini–Hochberg across the groups
//! ([`super::proportions::Correction`]), so alerting on many segments keeps false discoveries
//! at alpha.

use super::{MetricError, Result};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

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

/// One-sided p-value of "the group's AUC is below `overall`".
pub fn auc_below_p_value(auc: f64, positives: usize, negatives: usize, overall: f64) -> Result<f64> {
    let se = auc_standard_error(auc, positives, negatives)?;
    if se == 0.0 {
        return Ok(if auc < overall { 0.0 } else { 1.0 });
    }
    Ok(Normal::standard().cdf((auc - overall) / se))
}

/// One-sided p-value of "the group's errors are larger than `overall_mse`": under the overall
/// error variance, the group's sum of squared errors over it is chi-square with as many
/// degrees of freedom as rows.
pub fn mse_above_p_value(sum_squared_errors: f64, rows: usize, overall_mse: f64) -> Result<f64> {
    if rows == 0 {
        return Err(MetricError::Empty);
    }
    if overall_mse.is_nan() || overall_mse <= 0.0 {
        return Ok(1.0);
    }
    let chi = ChiSquared::new(rows as f64).map_err(|_| MetricError::Empty)?;
    Ok(chi.sf(sum_squared_errors / overall_mse))
}

/// One-sided p-value of "the group's mean of a per-user figure is below `overall`" (a
/// recommender's precision at k, say): the z-test of one mean with the group's own standard
/// deviation (`ddof = 1`), as statsmodels' `ztest(values, value=overall, alternative="smaller")`.
pub fn mean_below_p_value(values: &[f64], overall: f64) -> Result<f64> {
    if values.len() < 2 {
        return Err(MetricError::Empty);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let se = (variance / n).sqrt();
    if se == 0.0 {
        return Ok(if mean < overall { 0.0 } else { 1.0 });
    }
    Ok(Normal::standard().cdf((mean - overall) / se))
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

    #[test]
    fn only_worse_is_a_finding() {
        let worse = auc_below_p_value(0.70, 200, 800, 0.80).unwrap();
        let better = auc_below_p_value(0.90, 200, 800, 0.80).unwrap();
        assert!(worse < 0.001 && better > 0.999, "{worse} {better}");
        // Twice the overall error variance on 50 rows: clearly worse; the same variance: not.
        // scipy.stats.chi2.sf(100, 50) = 3.454931382984871e-05
        let worse = mse_above_p_value(2.0 * 50.0 * 9.0, 50, 9.0).unwrap();
        assert!((worse - 3.454931382984871e-05).abs() < 1e-9 * 3.5e-5, "{worse}");
        let same = mse_above_p_value(50.0 * 9.0, 50, 9.0).unwrap();
        assert!((0.3..0.7).contains(&same), "{same}");
    }
}
