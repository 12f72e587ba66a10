//! Paired significance tests: is model B really better than model A on the same rows?
//! DeLong's test for two correlated ROC AUCs, and a paired bootstrap for any other metric.

use super::{MetricError, Result};
use statrs::distribution::{ContinuousCDF, Normal};

/// Two AUCs measured on the same rows and DeLong's test of their difference.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeLong {
    pub auc_a: f64,
    pub auc_b: f64,
    /// `auc_b - auc_a`.
    pub difference: f64,
    /// Standard error of the difference.
    pub std_error: f64,
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
}

/// Mid-ranks (1-based; ties share the mean of their ranks) of `values`.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end) as f64 / 2.0 + 1.0;
        for &i in &order[start..=end] {
            ranks[i] = rank;
        }
        start = end + 1;
    }
    ranks
}

/// DeLong's structural components of one score vector: per positive, the share of negatives it
/// outranks (ties count half); per negative, the share of positives that outrank it.
/// Computed from mid-ranks in O(n log n) (Sun & Xu, 2014).
fn placements(positives: &[f64], negatives: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (m, n) = (positives.len() as f64, negatives.len() as f64);
    let combined: Vec<f64> = positives.iter().chain(negatives).copied().collect();
    let all = midranks(&combined);
    let within_pos = midranks(positives);
    let within_neg = midranks(negatives);
    let v10 = (0..positives.len()).map(|i| (all[i] - within_pos[i]) / n).collect();
    let v01 = (0..negatives.len())
        .map(|j| 1.0 - (all[positives.len() + j] - within_neg[j]) / m)
        .collect();
    (v10, v01)
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / (n - 1.0)
}

fn check(labels: &[bool], scores: &[f64], what: &'static str) -> Result<()> {
    if labels.len() != scores.len() {
        return Err(MetricError::LengthMismatch {
            left: "labels",
            left_len: labels.len(),
            right: what,
            right_len: scores.len(),
        });
    }
    if let Some((index, value)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MetricError::NotFinite {
            what,
            index,
            value: *value,
        });
    }
    Ok(())
}

/// DeLong's test of `auc(scores_b) - auc(scores_a)` on the same labelled rows. Needs at least
/// two positives and two negatives (the variances divide by count − 1).
pub fn delong(labels: &[bool], scores_a: &[f64], scores_b: &[f64]) -> Result<DeLong> {
    if labels.is_empty() {
        return Err(MetricError::Empty);
    }
    check(labels, scores_a, "scores_a")?;
    check(labels, scores_b, "scores_b")?;
    let positives = labels.iter().filter(|l| **l).count();
    if positives < 2 || labels.len() - positives < 2 {
        return Err(MetricError::SingleClass(u8::from(positives >= 2), "DeLong's test"));
    }
    let split = |scores: &[f64]| -> (Vec<f64>, Vec<f64>) {
        let mut pos = Vec::with_capacity(positives);
        let mut neg = Vec::with_capacity(labels.len() - positives);
        for (label, score) in labels.iter().zip(scores) {
            if *label { pos.push(*score) } else { neg.push(*score) }
        }
        (pos, neg)
    };
    let (pos_a, neg_a) = split(scores_a);
    let (pos_b, neg_b) = split(scores_b);
    let (v10_a, v01_a) = placements(&pos_a, &neg_a);
    let (v10_b, v01_b) = placements(&pos_b, &neg_b);
    let auc_a = v10_a.iter().sum::<f64>() / v10_a.len() as f64;
    let auc_b = v10_b.iter().sum::<f64>() / v10_b.len() as f64;
    let (m, n) = (v10_a.len() as f64, v01_a.len() as f64);
    let variance = (covariance(&v10_a, &v10_a) + covariance(&v10_b, &v10_b) - 2.0 * covariance(&v10_a, &v10_b)) / m
        + (covariance(&v01_a, &v01_a) + covariance(&v01_b, &v01_b) - 2.0 * covariance(&v01_a, &v01_b)) / n;
    let difference = auc_b - auc_a;
    let std_error = variance.max(0.0).sqrt();
    // Identical rankings: no difference and no variance — nothing to reject.
    let (z, p_value) = if std_error <= 1e-15 {
        (0.0, 1.0)
    } else {
        let z = difference / std_error;
        (z, two_sided_p(z))
    };
    Ok(DeLong {
        auc_a,
        auc_b,
        difference,
        std_error,
        z,
        p_value,
    })
}

fn two_sided_p(z: f64) -> f64 {
    // The standard normal always exists (mean 0, sd 1).
    let normal = Normal::standard();
    (2.0 * normal.sf(z.abs())).min(1.0)
}

/// A paired bootstrap of a metric difference: the rows are resampled together for both models.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bootstrap {
    /// The difference on all rows.
    pub difference: f64,
    /// 95 % percentile interval of the difference.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided: twice the share of resamples on the other side of zero.
    pub p_value: f64,
    pub resamples: usize,
}

/// SplitMix64: a tiny seeded generator, enough to draw bootstrap rows reproducibly.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z as u128 * n as u128) >> 64) as usize
    }
}

/// Paired bootstrap of `difference(rows)` over `rows` rows: `difference` measures model B minus
/// model A on the given row indices (repeats allowed).
pub fn paired_bootstrap(
    rows: usize,
    resamples: usize,
    seed: u64,
    difference: impl Fn(&[usize]) -> f64,
) -> Result<Bootstrap> {
    if rows == 0 || resamples == 0 {
        return Err(MetricError::Empty);
    }
    let all: Vec<usize> = (0..rows).collect();
    let observed = difference(&all);
    let mut rng = SplitMix(seed);
    let mut sample = vec![0usize; rows];
    let mut draws: Vec<f64> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in sample.iter_mut() {
            *slot = rng.below(rows);
        }
        let d = difference(&sample);
        if d.is_finite() {
            draws.push(d);
        }
    }
    if draws.is_empty() {
        return Err(MetricError::Empty);
    }
    super::sort::sort_floats(&mut draws);
    let below = draws.iter().filter(|d| **d <= 0.0).count() as f64 / draws.len() as f64;
    let above = draws.iter().filter(|d| **d >= 0.0).count() as f64 / draws.len() as f64;
    Ok(Bootstrap {
        difference: observed,
        ci_low: super::drift::quantile_sorted(&draws, 0.025),
        ci_high: super::drift::quantile_sorted(&draws, 0.975),
        p_value: (2.0 * below.min(above)).min(1.0),
        resamples: draws.len(),
    })
}

/// Root mean squared error of `predicted` against `truth` on the given rows.
pub fn rmse_on(truth: &[f64], predicted: &[f64], rows: &[usize]) -> f64 {
    let sum: f64 = rows.iter().map(|&i| (truth[i] - predicted[i]).powi(2)).sum();
    (sum / rows.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DeLong's components straight from their definition: every positive against every negative.
    fn naive(labels: &[bool], a: &[f64], b: &[f64]) -> (f64, f64, f64) {
        let kernel = |x: f64, y: f64| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        };
        let pos: Vec<usize> = (0..labels.len()).filter(|&i| labels[i]).collect();
        let neg: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
        let comp = |s: &[f64]| {
            let v10: Vec<f64> = pos
                .iter()
                .map(|&i| neg.iter().map(|&j| kernel(s[i], s[j])).sum::<f64>() / neg.len() as f64)
                .collect();
            let v01: Vec<f64> = neg
                .iter()
                .map(|&j| pos.iter().map(|&i| kernel(s[i], s[j])).sum::<f64>() / pos.len() as f64)
                .collect();
            (v10, v01)
        };
        let ((a10, a01), (b10, b01)) = (comp(a), comp(b));
        let auc = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let var = (covariance(&a10, &a10) + covariance(&b10, &b10) - 2.0 * covariance(&a10, &b10)) / a10.len() as f64
            + (covariance(&a01, &a01) + covariance(&b01, &b01) - 2.0 * covariance(&a01, &b01)) / a01.len() as f64;
        (auc(&a10), auc(&b10), var)
    }

    fn data(n: usize, seed: u64) -> (Vec<bool>, Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix(seed);
        let mut labels = Vec::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let label = rng.below(3) == 0;
            let signal = if label { 1.0 } else { 0.0 };
            // Rounded to tenths so ties occur, as with real model scores.
            let noise_a = rng.below(1000) as f64 / 1000.0;
            let noise_b = rng.below(1000) as f64 / 1000.0;
            labels.push(label);
            a.push(((0.4 * signal + noise_a) * 10.0).round() / 10.0);
            b.push(((0.8 * signal + 0.5 * noise_a + 0.5 * noise_b) * 10.0).round() / 10.0);
        }
        (labels, a, b)
    }

    #[test]
    fn fast_delong_matches_the_pairwise_definition() {
        for seed in [1, 2, 3] {
            let (labels, a, b) = data(300, seed);
            let fast = delong(&labels, &a, &b).unwrap();
            let (auc_a, auc_b, variance) = naive(&labels, &a, &b);
            assert!((fast.auc_a - auc_a).abs() < 1e-12, "{} vs {auc_a}", fast.auc_a);
            assert!((fast.auc_b - auc_b).abs() < 1e-12);
            assert!((fast.std_error - variance.sqrt()).abs() < 1e-12);
            // The AUC agrees with the library's own ROC AUC too.
            let ranked = crate::metrics::classification::Ranked::new(&labels, &a).unwrap();
            assert!((ranked.roc_auc() - fast.auc_a).abs() < 1e-12);
        }
    }

    #[test]
    fn a_clearly_better_model_is_significant_and_the_same_model_is_not() {
        let (labels, a, b) = data(2000, 7);
        let test = delong(&labels, &a, &b).unwrap();
        assert!(test.difference > 0.1 && test.p_value < 1e-6, "{test:?}");
        let reversed = delong(&labels, &b, &a).unwrap();
        assert!((reversed.z + test.z).abs() < 1e-12);
        let same = delong(&labels, &a, &a).unwrap();
        assert_eq!((same.difference, same.z, same.p_value), (0.0, 0.0, 1.0));
    }

    #[test]
    fn delong_refuses_undefined_input() {
        assert!(matches!(delong(&[], &[], &[]), Err(MetricError::Empty)));
        assert!(matches!(
            delong(&[true, true, false], &[0.1, 0.2, 0.3], &[0.1, 0.2, 0.3]),
            Err(MetricError::SingleClass(..))
        ));
        assert!(matches!(
            delong(&[true, false], &[0.1], &[0.1, 0.2]),
            Err(MetricError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn paired_bootstrap_separates_real_and_null_differences() {
        let n = 400;
        let truth: Vec<f64> = (0..n).map(|i| (i % 50) as f64).collect();
        let mut rng = SplitMix(3);
        let good: Vec<f64> = truth.iter().map(|t| t + rng.below(100) as f64 / 50.0 - 1.0).collect();
        let poor: Vec<f64> = truth.iter().map(|t| t + rng.below(100) as f64 / 10.0 - 5.0).collect();
        let better = paired_bootstrap(n, 1000, 11, |rows| {
            rmse_on(&truth, &poor, rows) - rmse_on(&truth, &good, rows)
        })
        .unwrap();
        assert!(
            better.difference > 1.0 && better.ci_low > 0.0 && better.p_value < 0.01,
            "{better:?}"
        );
        let null = paired_bootstrap(n, 1000, 11, |rows| {
            rmse_on(&truth, &good, rows) - rmse_on(&truth, &good, rows)
        })
        .unwrap();
        assert_eq!(null.difference, 0.0);
        assert_eq!(null.p_value, 1.0);
        // Same seed, same answer.
        let again = paired_bootstrap(n, 1000, 11, |rows| {
            rmse_on(&truth, &poor, rows) - rmse_on(&truth, &good, rows)
        })
        .unwrap();
        assert_eq!(better, again);
    }
}
