//! Data drift between a reference sample (training data) and a current one, per feature:
//! PSI on reference-quantile bins, Jensen–Shannon distance, two-sample Kolmogorov–Smirnov
//! (statistic and asymptotic p-value), Wasserstein distance; for categories PSI, Jensen–Shannon
//! and Pearson's chi-square. Then a dataset-level verdict.

use super::sort::sorted;
use super::{MetricError, Result, check_finite};
use statrs::distribution::{ChiSquared, ContinuousCDF};
use std::collections::BTreeMap;

/// A share of 0 becomes this in PSI (the logarithm needs both sides positive).
pub const PSI_FLOOR: f64 = 0.0001;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NumericDrift {
    pub psi: f64,
    pub jensen_shannon: f64,
    pub ks_statistic: f64,
    pub ks_pvalue: f64,
    pub wasserstein: f64,
    pub bin_edges: Vec<f64>,
    pub reference_shares: Vec<f64>,
    pub current_shares: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CategoricalDrift {
    pub psi: f64,
    pub jensen_shannon: f64,
    pub chi2_statistic: f64,
    pub chi2_pvalue: f64,
    pub categories: Vec<String>,
    pub reference_shares: Vec<f64>,
    pub current_shares: Vec<f64>,
}

/// Quantile `q` of sorted values with numpy's default linear interpolation (including its
/// way of interpolating from the upper neighbour when the fraction is ≥ 0.5).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let lo = (below as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Bin edges: the distinct reference deciles (0.1 … 0.9).
pub fn decile_edges(sorted_reference: &[f64]) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..10)
        .map(|i| quantile_sorted(sorted_reference, i as f64 / 10.0))
        .collect();
    edges.dedup();
    edges
}

/// Shares of sorted values in the bins (−∞, e1], (e1, e2], …, (ek, +∞).
pub fn bin_shares(sorted_values: &[f64], edges: &[f64]) -> Vec<f64> {
    let n = sorted_values.len() as f64;
    let mut shares = Vec::with_capacity(edges.len() + 1);
    let mut start = 0;
    for edge in edges {
        let end = sorted_values.partition_point(|v| v <= edge);
        shares.push((end - start) as f64 / n);
        start = end;
    }
    shares.push((sorted_values.len() - start) as f64 / n);
    shares
}

/// Σ (c − r)·ln(c / r), shares of 0 replaced by [`PSI_FLOOR`].
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| {
            let (r, c) = (
                if *r == 0.0 { PSI_FLOOR } else { *r },
                if *c == 0.0 { PSI_FLOOR } else { *c },
            );
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Jensen–Shannon distance in base 2 (the square root of the divergence), as scipy's
/// `jensenshannon(p, q, base=2)`.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let rel_entr = |x: f64, y: f64| if x == 0.0 { 0.0 } else { x * (x / y).ln() };
    let (mut left, mut right) = (0.0, 0.0);
    for (a, b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    let divergence = (left + right) / std::f64::consts::LN_2;
    (divergence / 2.0).max(0.0).sqrt()
}

/// Two-sample Kolmogorov–Smirnov D from sorted samples.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

/// Survival function of the Kolmogorov distribution (scipy's `kstwobign.sf`), from the series
/// that converges fastest on each side of 1.
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        kolmogorov_sf_small(x)
    } else {
        kolmogorov_sf_large(x)
    }
}

/// 1 − √(2π)/x · Σ exp(−(2k−1)²π²/(8x²)): converges fast for small x.
fn kolmogorov_sf_small(x: f64) -> f64 {
    let factor = -std::f64::consts::PI.powi(2) / (8.0 * x * x);
    let cdf: f64 = (1..=50)
        .map(|k| (((2 * k - 1) as f64).powi(2) * factor).exp())
        .sum::<f64>()
        * (2.0 * std::f64::consts::PI).sqrt()
        / x;
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// 2 Σ (−1)^(k−1) exp(−2k²x²): converges fast for large x.
fn kolmogorov_sf_large(x: f64) -> f64 {
    let sum: f64 = (1..=100)
        .map(|k| {
            let term = (-2.0 * (k * k) as f64 * x * x).exp();
            if k % 2 == 1 { term } else { -term }
        })
        .sum();
    (2.0 * sum).clamp(0.0, 1.0)
}

/// 1-D earth mover's distance between sorted samples (scipy's `wasserstein_distance`).
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let mut x = a[0].min(b[0]);
    loop {
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let next = match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) => p.min(*q),
            (Some(p), None) => *p,
            (None, Some(q)) => *q,
            (None, None) => break,
        };
        total += (i as f64 / n - j as f64 / m).abs() * (next - x);
        x = next;
    }
    total
}

/// All numeric statistics; both samples must be non-empty and finite.
pub fn numeric(reference: &[f64], current: &[f64]) -> Result<NumericDrift> {
    check_samples(reference, current)?;
    let (reference, current) = std::thread::scope(|scope| {
        let r = scope.spawn(|| sorted(reference));
        let c = sorted(current);
        (r.join().unwrap_or_default(), c)
    });
    Ok(numeric_sorted(&reference, &current))
}

/// [`numeric`] on samples already sorted ascending.
pub fn numeric_sorted(reference: &[f64], current: &[f64]) -> NumericDrift {
    let edges = decile_edges(reference);
    let reference_shares = bin_shares(reference, &edges);
    let current_shares = bin_shares(current, &edges);
    let ks = ks_statistic(reference, current);
    let (n, m) = (reference.len() as f64, current.len() as f64);
    NumericDrift {
        psi: psi(&reference_shares, &current_shares),
        jensen_shannon: jensen_shannon(&reference_shares, &current_shares),
        ks_statistic: ks,
        ks_pvalue: kolmogorov_sf(ks * (n * m / (n + m)).sqrt()),
        wasserstein: wasserstein(reference, current),
        bin_edges: edges,
        reference_shares,
        current_shares,
    }
}

fn check_samples(reference: &[f64], current: &[f64]) -> Result<()> {
    if reference.is_empty() || current.is_empty() {
        return Err(MetricError::Empty);
    }
    check_finite("reference value", reference)?;
    check_finite("current value", current)
}

/// Categorical drift from counts per category on each side.
pub fn categorical_counts(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<CategoricalDrift> {
    let categories: Vec<String> = reference
        .keys()
        .chain(current.keys())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let counts = |side: &BTreeMap<String, u64>| -> Vec<f64> {
        categories
            .iter()
            .map(|c| side.get(c).copied().unwrap_or(0) as f64)
            .collect()
    };
    let (r, c) = (counts(reference), counts(current));
    let (nr, nc): (f64, f64) = (r.iter().sum(), c.iter().sum());
    if nr == 0.0 || nc == 0.0 {
        return Err(MetricError::Empty);
    }
    let reference_shares: Vec<f64> = r.iter().map(|x| x / nr).collect();
    let current_shares: Vec<f64> = c.iter().map(|x| x / nc).collect();
    let total = nr + nc;
    let mut chi2 = 0.0;
    for (a, b) in r.iter().zip(&c) {
        let column = a + b;
        for (observed, row_total) in [(a, nr), (b, nc)] {
            let expected = row_total * column / total;
            chi2 += (observed - expected).powi(2) / expected;
        }
    }
    let dof = categories.len().saturating_sub(1);
    let chi2_pvalue = if dof == 0 {
        1.0
    } else {
        ChiSquared::new(dof as f64).map(|d| d.sf(chi2)).unwrap_or(f64::NAN)
    };
    Ok(CategoricalDrift {
        psi: psi(&reference_shares, &current_shares),
        jensen_shannon: jensen_shannon(&reference_shares, &current_shares),
        chi2_statistic: chi2,
        chi2_pvalue,
        categories,
        reference_shares,
        current_shares,
    })
}

/// Categorical drift from the raw values.
pub fn categorical<S: AsRef<str>>(reference: &[S], current: &[S]) -> Result<CategoricalDrift> {
    let count = |values: &[S]| {
        let mut counts = BTreeMap::new();
        for v in values {
            *counts.entry(v.as_ref().to_string()).or_insert(0u64) += 1;
        }
        counts
    };
    categorical_counts(&count(reference), &count(current))
}

/// The PSI that sampling noise alone stays under with probability 1 − `alpha`, comparing
/// `current` rows with `reference` rows over `bins` bins: PSI × n·m/(n+m) is close to χ² with
/// bins − 1 degrees of freedom when nothing changed. Tiny at a bank's client counts (a
/// million rows: ~1e-4), it matters where rows are few — 100 managers put the decile PSI of
/// an unchanged feature above 0.2 about one month in five.
pub fn psi_noise_floor(bins: usize, current: usize, reference: usize, alpha: f64) -> f64 {
    if bins < 2 || current == 0 || reference == 0 {
        return 0.0;
    }
    let effective = (current as f64 * reference as f64) / (current + reference) as f64;
    ChiSquared::new((bins - 1) as f64)
        .map(|d| d.inverse_cdf(1.0 - alpha) / effective)
        .unwrap_or(0.0)
}

/// How drift is judged: a feature drifts when its PSI exceeds its threshold — `psi_threshold`,
/// or, where the reference months show how much the feature wanders by itself, mean +
/// `sigmas`·σ of their PSIs when that is higher; the dataset drifts when at least
/// `drift_share` of its features do.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriftPolicy {
    pub psi_threshold: f64,
    pub drift_share: f64,
    #[serde(default = "default_sigmas")]
    pub sigmas: f64,
    /// A feature's threshold is also never below the PSI that sampling noise reaches with
    /// this probability ([`psi_noise_floor`]).
    #[serde(default = "default_noise_alpha")]
    pub noise_alpha: f64,
}

fn default_noise_alpha() -> f64 {
    1e-4
}

fn default_sigmas() -> f64 {
    3.0
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy {
            // The conventional edge of a "moderate" shift. The floor under learned thresholds:
            // a feature that wanders by itself gets its own, higher one; at 0.2 a steady
            // feature could lose a fifth of one category to another unseen (measured: 60 % of
            // one income band re-banded gave PSI 0.18).
            psi_threshold: 0.1,
            drift_share: 0.5,
            sigmas: default_sigmas(),
            noise_alpha: default_noise_alpha(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatasetVerdict {
    pub features: usize,
    pub drifted_features: usize,
    pub share_drifted: f64,
    pub drift_share: f64,
    pub psi_threshold: f64,
    pub dataset_drift: bool,
}

impl DriftPolicy {
    pub fn drifted(&self, psi: f64) -> bool {
        psi > self.psi_threshold
    }

    pub fn verdict(&self, psis: &[f64]) -> DatasetVerdict {
        let pairs: Vec<(f64, f64)> = psis.iter().map(|p| (*p, self.psi_threshold)).collect();
        self.verdict_with(&pairs)
    }

    /// The verdict over `(psi, threshold)` pairs, each feature against its own threshold.
    pub fn verdict_with(&self, features: &[(f64, f64)]) -> DatasetVerdict {
        let psis: Vec<f64> = features.iter().map(|(p, _)| *p).collect();
        let drifted = features.iter().filter(|(p, t)| p > t).count();
        let share = if psis.is_empty() {
            0.0
        } else {
            drifted as f64 / psis.len() as f64
        };
        DatasetVerdict {
            features: psis.len(),
            drifted_features: drifted,
            share_drifted: share,
            drift_share: self.drift_share,
            psi_threshold: self.psi_threshold,
            dataset_drift: !psis.is_empty() && share >= self.drift_share,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_series_agree_where_both_converge() {
        for x in [0.6, 0.8, 0.95, 1.0, 1.05, 1.2, 1.5] {
            let (small, large) = (kolmogorov_sf_small(x), kolmogorov_sf_large(x));
            assert!((small - large).abs() < 1e-14, "x = {x}: {small} vs {large}");
        }
        assert!(
            (kolmogorov_sf(1.36) - 0.049_485_876_755_377_876).abs() < 1e-14,
            "the 5 % critical value"
        );
        assert_eq!(kolmogorov_sf(0.0), 1.0);
    }

    #[test]
    fn empty_or_non_finite_samples_are_errors() {
        assert_eq!(numeric(&[], &[1.0]).unwrap_err(), MetricError::Empty);
        assert!(matches!(
            numeric(&[1.0, f64::INFINITY], &[1.0]),
            Err(MetricError::NotFinite { index: 1, .. })
        ));
    }

    #[test]
    fn the_noise_floor_follows_the_chi_square_quantile_and_shrinks_with_rows() {
        // scipy.stats.chi2.ppf(1 - 1e-4, 9) = 33.7199...
        let floor = psi_noise_floor(10, 100, 300, 1e-4);
        assert!((floor * 75.0 - 33.719_9).abs() < 1e-3, "{floor}");
        assert!(psi_noise_floor(10, 1_000_000, 3_000_000, 1e-4) < 1e-4);
        assert_eq!(psi_noise_floor(1, 100, 100, 1e-4), 0.0);
    }

    #[test]
    fn verdict_counts_features_over_the_threshold() {
        let policy = DriftPolicy {
            psi_threshold: 0.2,
            ..DriftPolicy::default()
        };
        let v = policy.verdict(&[0.1, 0.25, 0.3, 0.05]);
        assert_eq!(v.drifted_features, 2);
        assert!(v.dataset_drift);
        assert!(!policy.verdict(&[0.1, 0.25, 0.05]).dataset_drift);
    }
}
