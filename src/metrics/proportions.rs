//! Shares and their comparisons, for campaigns: the interval of one rate (a click-through or
//! retained share), the difference and the ratio of two rates with their intervals, the
//! two-proportion z-test, and the corrections for making many comparisons at once.
//!
//! Methods are statsmodels' defaults, chosen because they stay honest where a campaign arm is
//! small or a rate is 0 or 1 (where Wald intervals collapse to a point): Wilson for one rate
//! (`proportion_confint(method="wilson")`), Newcombe's hybrid score interval for a difference
//! and the log interval with 0.5 added for a ratio (`confint_proportions_2indep`), the pooled
//! z-test (`proportions_ztest`), Holm and Benjamini–Hochberg (`multipletests`).
//! `tests/fixtures/make_business.py` runs statsmodels on shared cases; the tests replay them.

use super::{MetricError, Result};
use statrs::distribution::{ContinuousCDF, Normal};

/// Successes out of trials: clicks of the contacted, clients retained in an arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Count {
    pub successes: u64,
    pub trials: u64,
}

impl Count {
    pub fn new(successes: u64, trials: u64) -> Count {
        Count { successes, trials }
    }

    /// The share; undefined (an error) with no trials.
    pub fn rate(self) -> Result<f64> {
        if self.trials == 0 {
            return Err(MetricError::Empty);
        }
        Ok(self.successes as f64 / self.trials as f64)
    }

    fn checked(self) -> Result<(f64, f64)> {
        if self.successes > self.trials {
            return Err(MetricError::MoreSuccessesThanTrials {
                successes: self.successes,
                trials: self.trials,
            });
        }
        Ok((self.rate()?, self.trials as f64))
    }
}

/// A two-sided interval at level `1 - alpha`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The normal quantile leaving `alpha / 2` in each tail (1.96 at 5 %).
fn critical(alpha: f64) -> Result<f64> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(MetricError::NotAProbability {
            what: "alpha",
            index: 0,
            value: alpha,
        });
    }
    Ok(Normal::standard().inverse_cdf(1.0 - alpha / 2.0))
}

/// Wilson's score interval of one rate, clipped to [0, 1].
pub fn wilson(count: Count, alpha: f64) -> Result<Interval> {
    let (q, n) = count.checked()?;
    let z = critical(alpha)?;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (q + z2 / (2.0 * n)) / denominator;
    let half = z * (q * (1.0 - q) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Ok(Interval {
        low: (center - half).clamp(0.0, 1.0),
        high: (center + half).clamp(0.0, 1.0),
    })
}

/// Rate `a` against rate `b`: the difference and the ratio with their intervals, and the
/// pooled z-test of "no difference".
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    /// `rate(a) - rate(b)`.
    pub difference: f64,
    pub difference_interval: Interval,
    /// `rate(a) / rate(b)`; the relative lift is this minus one. `None` when `b` is 0 (any
    /// success is an infinite lift; the interval, with 0.5 added, still says how large).
    pub ratio: Option<f64>,
    pub ratio_interval: Interval,
    pub z: f64,
    /// Two-sided; 1 when both arms are all successes or all failures (no evidence either way).
    pub p_value: f64,
}

/// Compares two independent rates.
pub fn compare(a: Count, b: Count, alpha: f64) -> Result<Comparison> {
    let (p1, n1) = a.checked()?;
    let (p2, n2) = b.checked()?;
    let z_crit = critical(alpha)?;
    // Newcombe: each rate's Wilson interval, combined.
    let (w1, w2) = (wilson(a, alpha)?, wilson(b, alpha)?);
    let difference = p1 - p2;
    let below = ((p1 - w1.low).powi(2) + (w2.high - p2).powi(2)).sqrt();
    let above = ((p2 - w2.low).powi(2) + (w1.high - p1).powi(2)).sqrt();
    // The log of the ratio, with 0.5 added to every count so a zero count has an interval.
    let (c1, m1) = (a.successes as f64 + 0.5, n1 + 0.5);
    let (c2, m2) = (b.successes as f64 + 0.5, n2 + 0.5);
    let log_ratio = (c1 / m1 / (c2 / m2)).ln();
    let half = z_crit * (1.0 / c1 - 1.0 / m1 + 1.0 / c2 - 1.0 / m2).sqrt();
    // The pooled z-test.
    let pooled = (a.successes + b.successes) as f64 / (n1 + n2);
    let spread = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let (z, p_value) = if spread > 0.0 {
        let z = difference / spread;
        (z, (2.0 * Normal::standard().sf(z.abs())).min(1.0))
    } else {
        (0.0, 1.0)
    };
    Ok(Comparison {
        difference,
        difference_interval: Interval {
            low: difference - below,
            high: difference + above,
        },
        ratio: (p2 > 0.0).then(|| p1 / p2),
        ratio_interval: Interval {
            low: (log_ratio - half).exp(),
            high: (log_ratio + half).exp(),
        },
        z,
        p_value,
    })
}

/// How many comparisons a family controls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm's step-down: the chance of any false "significant" stays at alpha.
    Holm,
    /// Benjamini–Hochberg: the expected share of false discoveries stays at alpha (for many
    /// segments, where Holm would miss everything).
    BenjaminiHochberg,
}

impl Correction {
    /// Adjusted p-values, in the order given; compare each with alpha.
    pub fn adjust(self, p_values: &[f64]) -> Result<Vec<f64>> {
        for (index, p) in p_values.iter().enumerate() {
            if !(0.0..=1.0).contains(p) {
                return Err(MetricError::NotAProbability {
                    what: "p-value",
                    index,
                    value: *p,
                });
            }
        }
        let m = p_values.len();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|a, b| p_values[*a].total_cmp(&p_values[*b]));
        let mut adjusted = vec![0.0; m];
        match self {
            Correction::Holm => {
                let mut running = 0.0f64;
                for (rank, &i) in order.iter().enumerate() {
                    running = running.max(p_values[i] * (m - rank) as f64);
                    adjusted[i] = running.min(1.0);
                }
            }
            Correction::BenjaminiHochberg => {
                let mut running = f64::INFINITY;
                for (rank, &i) in order.iter().enumerate().rev() {
                    let factor = (rank + 1) as f64 / m as f64;
                    running = running.min(p_values[i] / factor);
                    adjusted[i] = running.min(1.0);
                }
            }
        }
        Ok(adjusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_zero_or_one_still_has_an_interval() {
        let none = wilson(Count::new(0, 40), 0.05).unwrap();
        assert!(none.low.abs() < 1e-12, "{none:?}");
        assert!(none.high > 0.05, "{none:?}");
        let all = wilson(Count::new(40, 40), 0.05).unwrap();
        assert!(all.low < 0.95 && all.high == 1.0, "{all:?}");
    }

    #[test]
    fn impossible_counts_are_refused() {
        assert!(matches!(
            compare(Count::new(5, 4), Count::new(1, 4), 0.05),
            Err(MetricError::MoreSuccessesThanTrials { .. })
        ));
        assert_eq!(wilson(Count::new(0, 0), 0.05), Err(MetricError::Empty));
        assert!(wilson(Count::new(1, 2), 0.0).is_err());
    }

    #[test]
    fn equal_arms_give_no_evidence() {
        let same = compare(Count::new(30, 100), Count::new(30, 100), 0.05).unwrap();
        assert_eq!(same.difference, 0.0);
        assert!((same.p_value - 1.0).abs() < 1e-12);
        assert!(same.difference_interval.contains(0.0) && same.ratio_interval.contains(1.0));
        let degenerate = compare(Count::new(0, 10), Count::new(0, 10), 0.05).unwrap();
        assert_eq!(degenerate.p_value, 1.0);
    }
}
