//! Reference statistics: the per-feature summary a model keeps from its training data, so the
//! daily drift check compares fresh data against it without reading the training set again.
//!
//! PSI and Jensen–Shannon from these are exact (same decile edges, same shares). KS and
//! Wasserstein use a sketch of [`SKETCH_POINTS`] evenly spaced reference quantiles in place
//! of the full sample: the KS statistic is then off by at most 1/(SKETCH_POINTS − 1).
//!
//! Each reference also keeps the PSI of every reference month against the whole reference
//! (`monthly_psi`): how much the feature moves by itself from month to month. The drift
//! threshold is learned from it, NannyML's way — mean + k·σ of those PSIs — with the fixed PSI
//! threshold as a floor, so a feature that naturally wanders is not an alarm every day and a
//! steady one is watched closely.

use super::drift::{self, CategoricalDrift, NumericDrift};
use super::sort::sorted;
use super::{MetricError, Result, check_finite};
use std::collections::BTreeMap;

pub const SKETCH_POINTS: usize = 1001;

/// How far past the reference's [min, max] a value must lie to count as out of range, as a
/// share of that span. A feature with few distinct values (an agency's score repeated over
/// its clients, a manager's tenure that ages a month each month) sets a new extreme by a
/// hair most months; a data-quality break (a unit ×100, a sentinel 9999) lands far outside.
pub const RANGE_MARGIN: f64 = 0.1;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureReference {
    Numeric {
        count: usize,
        bin_edges: Vec<f64>,
        bin_shares: Vec<f64>,
        /// Evenly spaced quantiles; the first and last are the reference's min and max.
        sketch: Vec<f64>,
        /// Rows without a value (missing or not finite).
        #[serde(default)]
        missing: u64,
        /// PSI of each reference month against the other reference months, oldest first.
        #[serde(default)]
        monthly_psi: Vec<f64>,
        /// Share of each reference month's values outside the other months' range.
        #[serde(default)]
        monthly_outside: Vec<f64>,
    },
    Categorical {
        count: u64,
        counts: BTreeMap<String, u64>,
        #[serde(default)]
        missing: u64,
        #[serde(default)]
        monthly_psi: Vec<f64>,
        /// Share of each reference month's values in categories the other months lack.
        #[serde(default)]
        monthly_outside: Vec<f64>,
    },
}

/// Mean and population σ (as NannyML) of the monthly figures; `None` below two months: a
/// single month shows no variability to learn from.
fn mean_and_std(values: &[f64]) -> Option<(f64, f64)> {
    (values.len() >= 2).then(|| super::mean_and_population_std(values))
}

/// How a feature's drift threshold is learned from its reference months.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LearnedThreshold {
    /// mean + k·σ of the monthly PSIs, or the floor when larger (or when there are fewer
    /// than two months to learn from).
    pub threshold: f64,
    pub monthly_mean: Option<f64>,
    pub monthly_std: Option<f64>,
    pub months: usize,
}

/// The data-quality figures of a current sample against its reference.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    pub missing_share: f64,
    pub reference_missing_share: f64,
    /// Numeric: the share of values outside the reference's [min, max]; categorical: the share
    /// of values in categories the reference never saw.
    pub outside_share: f64,
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
            missing: 0,
            monthly_psi: Vec::new(),
            monthly_outside: Vec::new(),
        })
    }

    /// The reference of a window of months: pooled statistics, the missing count over `rows`,
    /// and for each month (`months`, oldest first) its PSI and out-of-range share against the
    /// *other* months — leave-one-out, so with three months a month is not judged against a
    /// pool that is a third itself (which would make the variability look smaller than what
    /// a new month meets).
    pub fn numeric_window(months: &[Vec<f64>], rows: usize) -> Result<FeatureReference> {
        Self::window(months, rows, FeatureReference::numeric, |rest, month| {
            let psi = rest.numeric_drift(month).ok()?.psi;
            Some((psi, rest.numeric_quality(month, month.len()).outside_share))
        })
    }

    /// [`numeric_window`](Self::numeric_window) for categories.
    pub fn categorical_window<S: AsRef<str>>(months: &[Vec<S>], rows: usize) -> Result<FeatureReference> {
        let months: Vec<Vec<&str>> = months.iter().map(|m| m.iter().map(AsRef::as_ref).collect()).collect();
        Self::window(&months, rows, FeatureReference::categorical, |rest, month| {
            let psi = rest.categorical_drift(month).ok()?.psi;
            Some((psi, rest.categorical_quality(month, month.len(), "").outside_share))
        })
    }

    /// The pooled reference built by `build`, with each month's `(psi, outside share)` from
    /// `measure` against the reference of the other months.
    fn window<T: Copy>(
        months: &[Vec<T>],
        rows: usize,
        build: impl Fn(&[T]) -> Result<FeatureReference>,
        measure: impl Fn(&FeatureReference, &[T]) -> Option<(f64, f64)>,
    ) -> Result<FeatureReference> {
        let pooled: Vec<T> = months.iter().flatten().copied().collect();
        let mut reference = build(&pooled)?;
        let (mut psis, mut outside) = (Vec::new(), Vec::new());
        for (m, month) in months.iter().enumerate() {
            let others: Vec<T> = months
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != m)
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            if let Some((psi, share)) = build(&others).ok().and_then(|rest| measure(&rest, month)) {
                psis.push(psi);
                outside.push(share);
            }
        }
        let (missing, monthly_psi, monthly_outside) = match &mut reference {
            FeatureReference::Numeric {
                missing,
                monthly_psi,
                monthly_outside,
                ..
            }
            | FeatureReference::Categorical {
                missing,
                monthly_psi,
                monthly_outside,
                ..
            } => (missing, monthly_psi, monthly_outside),
        };
        *missing = rows.saturating_sub(pooled.len()) as u64;
        *monthly_psi = psis;
        *monthly_outside = outside;
        Ok(reference)
    }

    /// Each reference month's PSI and outside share against the other months.
    fn monthly(&self) -> (&[f64], &[f64]) {
        match self {
            FeatureReference::Numeric {
                monthly_psi,
                monthly_outside,
                ..
            }
            | FeatureReference::Categorical {
                monthly_psi,
                monthly_outside,
                ..
            } => (monthly_psi, monthly_outside),
        }
    }

    /// The out-of-range (numeric) or unseen-category (categorical) share above which a month
    /// is unusual: mean + `k`·σ of the reference months' own shares, never below `floor`.
    pub fn learned_outside_limit(&self, floor: f64, k: f64) -> f64 {
        mean_and_std(self.monthly().1).map_or(floor, |(mean, std)| (mean + k * std).max(floor))
    }

    /// The drift threshold learned from the reference months: mean + `k`·σ of their PSIs
    /// (population σ, as NannyML), never below `floor`.
    pub fn learned_threshold(&self, floor: f64, k: f64) -> LearnedThreshold {
        let monthly = self.monthly().0;
        let spread = mean_and_std(monthly);
        LearnedThreshold {
            threshold: spread.map_or(floor, |(mean, std)| (mean + k * std).max(floor)),
            monthly_mean: spread.map(|(mean, _)| mean),
            monthly_std: spread.map(|(_, std)| std),
            months: monthly.len(),
        }
    }

    /// Missing and out-of-reference shares of a current column: `values` are its present
    /// values, `rows` its length.
    pub fn numeric_quality(&self, values: &[f64], rows: usize) -> Quality {
        let (low, high, reference_missing) = match self {
            FeatureReference::Numeric {
                sketch, missing, count, ..
            } => (
                sketch.first().copied().unwrap_or(f64::NEG_INFINITY),
                sketch.last().copied().unwrap_or(f64::INFINITY),
                *missing as f64 / (*missing as f64 + *count as f64).max(1.0),
            ),
            FeatureReference::Categorical { .. } => (f64::NEG_INFINITY, f64::INFINITY, 0.0),
        };
        let margin = if high > low { RANGE_MARGIN * (high - low) } else { 0.0 };
        let (low, high) = (low - margin, high + margin);
        let outside = values.iter().filter(|v| **v < low || **v > high).count();
        Quality {
            missing_share: rows.saturating_sub(values.len()) as f64 / rows.max(1) as f64,
            reference_missing_share: reference_missing,
            outside_share: outside as f64 / values.len().max(1) as f64,
        }
    }

    /// [`numeric_quality`](Self::numeric_quality) for categories: unseen categories count as
    /// outside; the category `missing_marker` (what cleaning fills a missing value with), as
    /// missing, on both sides.
    pub fn categorical_quality<S: AsRef<str>>(&self, values: &[S], rows: usize, missing_marker: &str) -> Quality {
        self.categorical_quality_of(
            &CategoryCounts::of(values.iter().map(AsRef::as_ref)),
            rows,
            missing_marker,
        )
    }

    /// [`categorical_quality`](Self::categorical_quality) from the values' counts.
    pub fn categorical_quality_of(&self, current: &CategoryCounts, rows: usize, missing_marker: &str) -> Quality {
        let present = current.total as usize;
        let (unseen, reference_missing) = match self {
            FeatureReference::Categorical {
                counts, missing, count, ..
            } => (
                current
                    .counts
                    .iter()
                    .filter(|(category, _)| !counts.contains_key(**category))
                    .map(|(_, n)| *n)
                    .sum::<u64>() as usize,
                (*missing + counts.get(missing_marker).copied().unwrap_or(0)) as f64
                    / (*missing as f64 + *count as f64).max(1.0),
            ),
            FeatureReference::Numeric { .. } => (0, 0.0),
        };
        let marked = current.counts.get(missing_marker).copied().unwrap_or(0) as usize;
        Quality {
            missing_share: (rows.saturating_sub(present) + marked) as f64 / rows.max(1) as f64,
            reference_missing_share: reference_missing,
            outside_share: unseen as f64 / present.max(1) as f64,
        }
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
            missing: 0,
            monthly_psi: Vec::new(),
            monthly_outside: Vec::new(),
        })
    }

    /// Drift of a numeric `current` sample against this reference.
    pub fn numeric_drift(&self, current: &[f64]) -> Result<NumericDrift> {
        let FeatureReference::Numeric {
            count,
            bin_edges,
            bin_shares,
            sketch,
            ..
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
        self.categorical_drift_of(&CategoryCounts::of(current.iter().map(AsRef::as_ref)))
    }

    /// [`categorical_drift`](Self::categorical_drift) from the values' counts.
    pub fn categorical_drift_of(&self, current: &CategoryCounts) -> Result<CategoricalDrift> {
        let FeatureReference::Categorical { counts, .. } = self else {
            return Err(MetricError::Empty);
        };
        let current_counts: BTreeMap<String, u64> = current.counts.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        drift::categorical_counts(counts, &current_counts)
    }
}

/// How often each category occurs in a sample, counted once by borrowed text (not a `String`
/// per value): the categorical drift and quality figures both read it.
#[derive(Debug, Default)]
pub struct CategoryCounts<'a> {
    counts: foldhash::HashMap<&'a str, u64>,
    total: u64,
}

impl<'a> CategoryCounts<'a> {
    pub fn of(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counted = CategoryCounts::default();
        for value in values {
            *counted.counts.entry(value).or_insert(0) += 1;
            counted.total += 1;
        }
        counted
    }

    /// Values counted.
    pub fn total(&self) -> usize {
        self.total as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_float_reads_back_bit_for_bit() {
        // The edge seen coming back as 45.3223819301848 before float_roundtrip, then every
        // kind of f64 (random bit patterns: tiny, huge, subnormal).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut values = vec![45.322381930184804, 0.1 + 0.2, f64::MIN_POSITIVE, 5e-324, f64::MAX];
        while values.len() < 20_000 {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let v = f64::from_bits(z ^ (z >> 31));
            if v.is_finite() {
                values.push(v);
            }
        }
        let stored = FeatureReference::Numeric {
            count: values.len(),
            bin_edges: values.clone(),
            bin_shares: Vec::new(),
            sketch: Vec::new(),
            missing: 0,
            monthly_psi: Vec::new(),
            monthly_outside: Vec::new(),
        };
        let text = serde_json::to_vec(&stored).unwrap();
        let FeatureReference::Numeric { bin_edges, .. } = serde_json::from_slice(&text).unwrap() else {
            panic!("read back as another kind");
        };
        let differ = values
            .iter()
            .zip(&bin_edges)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{differ} of {} floats changed on the round trip",
            values.len()
        );
        // Read as a JSON value too (reports, the API), the same bits.
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let again: Vec<f64> = value["bin_edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(again.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

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
    fn the_learned_threshold_is_mean_plus_k_sigma_of_the_monthly_psi_with_a_floor() {
        // Three months that wander: each month's PSI against the pool, by hand below.
        let months: Vec<Vec<f64>> = (0..3)
            .map(|m| {
                (0..3000)
                    .map(|i| ((i * 7919) % 1000) as f64 / 10.0 + 30.0 * m as f64)
                    .collect()
            })
            .collect();
        let reference = FeatureReference::numeric_window(&months, 9100).unwrap();
        // Each month against the other two.
        let others = |m: usize| -> Vec<f64> { (0..3).filter(|k| *k != m).flat_map(|k| months[k].clone()).collect() };
        let by_hand: Vec<f64> = (0..3)
            .map(|m| drift::numeric(&others(m), &months[m]).unwrap().psi)
            .collect();
        let mean = by_hand.iter().sum::<f64>() / 3.0;
        let std = (by_hand.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let learned = reference.learned_threshold(0.0, 3.0);
        assert_eq!(learned.months, 3);
        assert!(
            (learned.threshold - (mean + 3.0 * std)).abs() < 1e-12,
            "{learned:?} vs {mean} {std}"
        );
        assert!(mean > 0.01, "the months differ, so their PSIs are not ~0: {by_hand:?}");
        assert_eq!(
            reference.learned_threshold(100.0, 3.0).threshold,
            100.0,
            "the floor holds"
        );
        let FeatureReference::Numeric { missing, .. } = &reference else {
            panic!()
        };
        assert_eq!(*missing, 100, "9100 rows, 9000 values");
        // Out of range, leave-one-out: the first month lies 17.1 % below the others' range
        // widened by its margin, the last 17.1 % above, the middle one inside.
        let limit = reference.learned_outside_limit(0.0, 3.0);
        let (mean, std) = crate::metrics::mean_and_population_std(&[0.171, 0.0, 0.171]);
        assert!((limit - (mean + 3.0 * std)).abs() < 1e-9, "{limit}");
        assert_eq!(reference.learned_outside_limit(0.5, 3.0), 0.5, "the floor holds");
        // A single month has no variability to learn from: the floor.
        let single = FeatureReference::numeric_window(&months[..1], 3000).unwrap();
        assert_eq!(single.learned_threshold(0.2, 3.0).threshold, 0.2);
    }

    #[test]
    fn quality_counts_missing_out_of_range_and_unseen_values() {
        let reference = FeatureReference::numeric_window(&[vec![1.0, 2.0, 3.0, 4.0]], 5).unwrap();
        let q = reference.numeric_quality(&[0.5, 2.0, 4.2, 9.0], 8);
        assert_eq!(q.missing_share, 0.5);
        assert_eq!(q.reference_missing_share, 0.2);
        assert_eq!(
            q.outside_share, 0.5,
            "0.5 and 9 lie outside [1, 4] widened by a tenth of its span; 4.2 does not"
        );
        let categories = FeatureReference::categorical_window(&[vec!["a", "b"]], 2).unwrap();
        let q = categories.categorical_quality(&["a", "c", "c", "b"], 4, "?");
        assert_eq!(q.outside_share, 0.5);
        assert_eq!(q.missing_share, 0.0);
        let filled = FeatureReference::categorical_window(&[vec!["a", "?", "b", "b"]], 4).unwrap();
        let q = filled.categorical_quality(&["?", "?", "a"], 4, "?");
        assert_eq!(
            (q.missing_share, q.reference_missing_share),
            (0.75, 0.25),
            "a null and two markers of 4"
        );
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
