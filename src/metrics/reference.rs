//! Reference statistics: the per-feature summary a model keeps from its training data, so the
//! daily drift check compares fresh data against it without reading the training set again.
//!
//! PSI and Jensen–Shannon from these are exact (same decile edges, same shares). KS and
//! Wasserstein use a sketch of [`SKETCH_POINTS`] evenly spaced reference quantiles in place
//! of the full sample: the KS statistic is then off by at most 1/(SKETCH_POINTS − 1).

use super::drift::{self, CategoricalDrift, NumericDrift};
use super::sort::sorted;
use super::{MetricError, Result, check_finite};
use std::collections::BTreeMap;

pub const SKETCH_POINTS: usize = 1001;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureReference {
    Numeric {
        count: usize,
        bin_edges: Vec<f64>,
        bin_shares: Vec<f64>,
        sketch: Vec<f64>,
    },
    Categorical {
        count: u64,
        counts: BTreeMap<String, u64>,
    },
}

impl FeatureReference {
    pub fn numeric(values: &[f64]) -> Result<FeatureReference> {
        if values.is_empty() {
            return Err(MetricError::Empty);
        }
        check_finite("reference value", values)?;
        let values = sorted(values);
        let bin_edges = drift::decile_edges(&values);
        let bin_shares = drift::bin_shares(&values, &bin_edges);
        let sketch = if values.len() <= SKETCH_POINTS {
            values.clone()
        } else {
            (0..SKETCH_POINTS)
                .map(|i| drift::quantile_sorted(&values, i as f64 / (SKETCH_POINTS - 1) as f64))
                .collect()
        };
        Ok(FeatureReference::Numeric {
            count: values.len(),
            bin_edges,
            bin_shares,
            sketch,
        })
    }

    pub fn categorical<S: AsRef<str>>(values: &[S]) -> Result<FeatureReference> {
        if values.is_empty() {
            return Err(MetricError::Empty);
        }
        let mut counts = BTreeMap::new();
        for v in values {
            *counts.entry(v.as_ref().to_string()).or_insert(0u64) += 1;
        }
        Ok(FeatureReference::Categorical {
            count: values.len() as u64,
            counts,
        })
    }

    /// Drift of a numeric `current` sample against this reference.
    pub fn numeric_drift(&self, current: &[f64]) -> Result<NumericDrift> {
        let FeatureReference::Numeric {
            count,
            bin_edges,
            bin_shares,
            sketch,
        } = self
        else {
            return Err(MetricError::Empty);
        };
        if current.is_empty() {
            return Err(MetricError::Empty);
        }
        check_finite("current value", current)?;
        let current = sorted(current);
        let current_shares = drift::bin_shares(&current, bin_edges);
        let ks = drift::ks_statistic(sketch, &current);
        let (n, m) = (*count as f64, current.len() as f64);
        Ok(NumericDrift {
            psi: drift::psi(bin_shares, &current_shares),
            jensen_shannon: drift::jensen_shannon(bin_shares, &current_shares),
            ks_statistic: ks,
            ks_pvalue: drift::kolmogorov_sf(ks * (n * m / (n + m)).sqrt()),
            wasserstein: drift::wasserstein(sketch, &current),
            bin_edges: bin_edges.clone(),
            reference_shares: bin_shares.clone(),
            current_shares,
        })
    }

    /// Drift of categorical `current` values against this reference.
    pub fn categorical_drift<S: AsRef<str>>(&self, current: &[S]) -> Result<CategoricalDrift> {
        let FeatureReference::Categorical { counts, .. } = self else {
            return Err(MetricError::Empty);
        };
        let mut current_counts = BTreeMap::new();
        for v in current {
            *current_counts.entry(v.as_ref().to_string()).or_insert(0u64) += 1;
        }
        drift::categorical_counts(counts, &current_counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_statistics_reproduce_full_sample_drift() {
        let reference: Vec<f64> = (0..20_000).map(|i| ((i * 7919) % 10_007) as f64 / 100.0).collect();
        let current: Vec<f64> = (0..5_000).map(|i| ((i * 104_729) % 10_007) as f64 / 90.0).collect();
        let full = drift::numeric(&reference, &current).unwrap();
        let stored = FeatureReference::numeric(&reference).unwrap();
        let json = serde_json::to_string(&stored).unwrap();
        let restored: FeatureReference = serde_json::from_str(&json).unwrap();
        let from_stats = restored.numeric_drift(&current).unwrap();
        assert_eq!(from_stats.psi, full.psi, "PSI is exact from the stored bins");
        assert_eq!(from_stats.jensen_shannon, full.jensen_shannon);
        assert!((from_stats.ks_statistic - full.ks_statistic).abs() <= 1.0 / (SKETCH_POINTS - 1) as f64);
        assert!((from_stats.wasserstein - full.wasserstein).abs() <= 0.01 * full.wasserstein.max(1.0));
    }

    #[test]
    fn categorical_reference_matches_direct_computation() {
        let reference = ["a", "a", "b", "c", "c", "c"];
        let current = ["a", "b", "b", "d"];
        let stored = FeatureReference::categorical(&reference).unwrap();
        assert_eq!(
            stored.categorical_drift(&current).unwrap(),
            drift::categorical(&reference, &current).unwrap()
        );
    }
}
