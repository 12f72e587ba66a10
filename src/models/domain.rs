//! The multivariate drift check: a domain classifier. A small gradient-boosted model tries to
//! tell rows of the champion's reference months from rows of today's snapshot; its
//! cross-validated (out-of-fold) ROC AUC is the figure. 0.5 means the two cannot be told apart;
//! the further above, the more today's data differ — in any feature or in how features go
//! together, which per-feature PSI cannot see (a re-banded income with unchanged ages, logins
//! that no longer follow balances). The features it splits on most name what moved.
//!
//! What "normal" looks like is learned as the per-feature thresholds are: each reference month
//! against the others (leave-one-out) gives one AUC, and the limit is mean + k·σ of those,
//! never below [`AUC_FLOOR`].

use super::boosted::{self, BoostError, BoostParams, Matrix, Split, Task};
use super::design::Design;
use crate::metrics::classification::Ranked;
use serde::{Deserialize, Serialize};

/// Reference rows kept per reference month (a seeded sample): enough for the classifier to see
/// a change a tenth of the clients make, small enough to train in well under a second.
pub const SAMPLE_ROWS_PER_MONTH: usize = 1000;

/// Below this many rows on either side the check is not run: a classifier on a hundred
/// managers separates noise.
pub const MIN_ROWS: usize = 500;

/// The smallest AUC limit, whatever the reference months show: with a thousand rows a side,
/// out-of-fold AUC on exchangeable rows has a standard error near 0.01, so 0.55 is about five
/// of them — and a change a tenth of the rows make clearly (AUC ≈ 0.55) is where it starts to
/// matter.
pub const AUC_FLOOR: f64 = 0.55;

const FOLDS: usize = 3;

/// Added to the model's seed for today's sample, so it is drawn apart from every reference
/// month's (month m uses seed + m): the same seed would pick the same positions, and with
/// clients sorted alike, mostly the same clients on both sides.
pub const CURRENT_SAMPLE_SALT: u64 = 1 << 32;

/// What the classifier found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Separability {
    /// Out-of-fold ROC AUC of reference (0) against current (1) rows.
    pub auc: f64,
    pub reference_rows: usize,
    pub current_rows: usize,
    /// The input columns the classifier split on most (total gain over the folds' trees, a
    /// category's indicator columns summed into their column), highest first, as shares.
    pub separating: Vec<(String, f64)>,
}

/// The limit learned from the reference months, stored with the model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainReference {
    /// Each reference month's AUC against the other months, oldest first.
    pub monthly_auc: Vec<f64>,
}

impl DomainReference {
    /// mean + `k`·σ of the monthly AUCs (population σ, as the feature thresholds), never below
    /// [`AUC_FLOOR`]; the floor alone with fewer than two months.
    pub fn limit(&self, k: f64) -> f64 {
        if self.monthly_auc.len() < 2 {
            return AUC_FLOOR;
        }
        let (mean, std) = crate::metrics::mean_and_population_std(&self.monthly_auc);
        (mean + k * std).max(AUC_FLOOR)
    }
}

/// One OpenMP thread per fit: on a few thousand rows and trees three deep, each boosting round
/// is a handful of short parallel regions, and handing those to a second thread cost more than
/// the work. Measured in the 1M daily benchmark: the three folds took 0.30–0.38 s on two
/// threads and 0.22 s on one, with the same AUC to the last digit.
const THREADS: usize = 1;

/// The classifier's settings: shallow trees and few rounds, so it finds real differences and
/// does not memorise rows (out-of-fold AUC then stays near 0.5 on exchangeable data).
fn params(seed: u64) -> BoostParams {
    BoostParams {
        max_depth: 3,
        learning_rate: 0.1,
        rounds: 60,
        subsample: 0.8,
        early_stopping_rounds: 0,
        threads: THREADS,
        seed,
        ..BoostParams::default()
    }
}

/// How well a classifier tells `reference` rows from `current` rows (the same columns), by
/// `FOLDS`-fold cross-validation.
pub fn separability(reference: &Matrix, current: &Matrix, seed: u64) -> Result<Separability, BoostError> {
    if reference.names != current.names {
        return Err(BoostError::Shape("reference and current columns differ".into()));
    }
    let all = stack([reference, current].into_iter());
    let rows = all.rows;
    let labels: Vec<f32> = (0..rows).map(|i| f32::from(u8::from(i >= reference.rows))).collect();
    let params = params(seed);
    let mut out_of_fold = vec![0f64; rows];
    let mut gain = vec![0f64; all.cols()];
    for test in boosted::folds(rows, FOLDS, seed) {
        let mut in_test = vec![false; rows];
        for &i in &test {
            in_test[i] = true;
        }
        let fit: Vec<usize> = (0..rows).filter(|i| !in_test[*i]).collect();
        let fit_labels: Vec<f32> = fit.iter().map(|&i| labels[i]).collect();
        let booster = boosted::train(
            Task::Binary,
            &params,
            Split {
                matrix: &all,
                rows: Some(&fit),
                labels: &fit_labels,
            },
            None,
            None,
            &[],
        )?;
        for (i, p) in test.iter().zip(booster.predict(&all.take(&test))?) {
            out_of_fold[*i] = p as f64;
        }
        for (slot, total) in gain.iter_mut().zip(booster.gain_totals()?) {
            *slot += total;
        }
    }
    let truth: Vec<bool> = labels.iter().map(|l| *l > 0.5).collect();
    let auc = Ranked::new(&truth, &out_of_fold)
        .map_err(|e| BoostError::Shape(e.to_string()))?
        .roc_auc();
    Ok(Separability {
        auc,
        reference_rows: reference.rows,
        current_rows: current.rows,
        separating: by_column(&all.names, &gain),
    })
}

/// Gains per design column folded into their input column (`segment=Student` → `segment`),
/// as shares of the total, highest first; columns never split on are left out.
fn by_column(names: &[String], gain: &[f64]) -> Vec<(String, f64)> {
    let total: f64 = gain.iter().sum();
    let mut folded: Vec<(String, f64)> = Vec::new();
    for (name, g) in names.iter().zip(gain) {
        let column = name.split('=').next().unwrap_or(name);
        match folded.iter_mut().find(|(c, _)| c == column) {
            Some(slot) => slot.1 += g,
            None => folded.push((column.to_string(), *g)),
        }
    }
    folded.retain(|(_, g)| *g > 0.0);
    if total > 0.0 {
        for slot in &mut folded {
            slot.1 /= total;
        }
    }
    folded.sort_by(|a, b| b.1.total_cmp(&a.1));
    folded
}

/// The columns the classifier reads: the model's, less those inherited from a manager or an
/// agency ([`crate::data::features::INHERITED_FEATURES`]), whose exact values name the month.
pub fn columns(design: &Design) -> Design {
    design.without(&crate::data::features::INHERITED_FEATURES)
}

/// A seeded sample of at most `n` row indices of `rows`, ascending.
pub fn sample_rows(rows: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut picked: Vec<usize> = boosted::folds(rows, 1, seed).concat();
    picked.truncate(n);
    picked.sort_unstable();
    picked
}

/// Each month of `months` (samples of the same columns, oldest first) against the others.
pub fn learn(months: &[Matrix], seed: u64) -> Result<DomainReference, BoostError> {
    let mut monthly_auc = Vec::new();
    if months.len() >= 2 {
        for (m, month) in months.iter().enumerate() {
            let others = stack(months.iter().enumerate().filter(|(k, _)| *k != m).map(|(_, x)| x));
            if others.rows < MIN_ROWS || month.rows < MIN_ROWS {
                continue;
            }
            monthly_auc.push(separability(&others, month, seed)?.auc);
        }
    }
    Ok(DomainReference { monthly_auc })
}

/// Rows of several matrices of the same columns, one under the other.
pub fn stack<'a>(parts: impl Iterator<Item = &'a Matrix>) -> Matrix {
    let mut out = Matrix {
        values: Vec::new(),
        rows: 0,
        names: Vec::new(),
    };
    for part in parts {
        if out.names.is_empty() {
            out.names = part.names.clone();
        }
        out.values.extend_from_slice(&part.values);
        out.rows += part.rows;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, shift: f32, seed: u64) -> Matrix {
        let mut rng = crate::data::synth::rng::Rng::new(seed);
        let mut values = Vec::with_capacity(rows * 3);
        for _ in 0..rows {
            let a = rng.normal() as f32;
            let b = rng.normal() as f32;
            // The third column follows the first; `shift` breaks that relation without moving
            // either column's own distribution much.
            let c = if shift > 0.0 { -a } else { a } + 0.1 * rng.normal() as f32;
            values.extend_from_slice(&[a, b, c]);
        }
        Matrix {
            values,
            rows,
            names: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn exchangeable_rows_cannot_be_told_apart_and_a_broken_relation_can() {
        let reference = matrix(1500, 0.0, 1);
        let same = separability(&reference, &matrix(1500, 0.0, 2), 7).unwrap();
        assert!((same.auc - 0.5).abs() < 0.04, "same distribution: {}", same.auc);
        // Each column alone keeps its distribution (a and -a are both standard normal), so
        // per-feature drift sees nothing; the pair no longer goes together.
        let broken = separability(&reference, &matrix(1500, 1.0, 3), 7).unwrap();
        assert!(broken.auc > 0.9, "relation broken: {}", broken.auc);
        let top: Vec<&str> = broken.separating.iter().take(2).map(|(c, _)| c.as_str()).collect();
        assert!(top.contains(&"a") && top.contains(&"c"), "{:?}", broken.separating);
        assert!(!top.contains(&"b"));
    }

    #[test]
    fn the_limit_is_mean_plus_k_sigma_with_a_floor() {
        let r = DomainReference {
            monthly_auc: vec![0.60, 0.62, 0.64],
        };
        let (mean, std) = crate::metrics::mean_and_population_std(&[0.60, 0.62, 0.64]);
        assert!((r.limit(3.0) - (mean + 3.0 * std)).abs() < 1e-12);
        let quiet = DomainReference {
            monthly_auc: vec![0.49, 0.50],
        };
        assert_eq!(quiet.limit(3.0), AUC_FLOOR);
        assert_eq!(DomainReference { monthly_auc: vec![] }.limit(3.0), AUC_FLOOR);
    }

    #[test]
    fn indicator_columns_fold_into_their_column() {
        let names: Vec<String> = ["age", "segment=A", "segment=B", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let folded = by_column(&names, &[1.0, 2.0, 1.0, 0.0]);
        assert_eq!(folded, vec![("segment".to_string(), 0.75), ("age".to_string(), 0.25)]);
    }
}
