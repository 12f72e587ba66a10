//! Does the list's order find the clients a campaign moves? The Qini curve, its coefficient,
//! and uplift at k, from an outcome, a score and who was treated (contacted) or held out.
//!
//! Definitions are scikit-uplift's (`sklift.metrics.qini_curve`, `qini_auc_score`,
//! `uplift_at_k(strategy="overall")`), down to its order among tied scores: a stable sort by
//! score, then reversed. `tests/fixtures/make_business.py` runs scikit-uplift on shared
//! cases; the tests replay them.

use super::{MetricError, Result, check_finite};

/// Highest score first; among equal scores, the later row first (scikit-uplift's reversed
/// stable sort).
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].partial_cmp(&scores[*b]).unwrap_or(std::cmp::Ordering::Equal));
    order.reverse();
    order
}

fn check(outcome: &[bool], scores: &[f64], treated: &[bool]) -> Result<()> {
    for (name, len) in [("scores", scores.len()), ("treated", treated.len())] {
        if len != outcome.len() {
            return Err(MetricError::LengthMismatch {
                left: "outcomes",
                left_len: outcome.len(),
                right: name,
                right_len: len,
            });
        }
    }
    if outcome.is_empty() {
        return Err(MetricError::Empty);
    }
    check_finite("scores", scores)?;
    if !treated.iter().any(|t| *t) {
        return Err(MetricError::EmptyGroup("the treated"));
    }
    if treated.iter().all(|t| *t) {
        return Err(MetricError::EmptyGroup("the control"));
    }
    Ok(())
}

/// Points of the Qini curve: after the top `x` clients, the treated's successes minus the
/// control's scaled to the treated's size. One point per distinct score, from (0, 0).
pub fn qini_curve(outcome: &[bool], scores: &[f64], treated: &[bool]) -> Result<(Vec<f64>, Vec<f64>)> {
    check(outcome, scores, treated)?;
    Ok(curve(outcome, scores, treated))
}

fn curve(outcome: &[bool], scores: &[f64], treated: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let order = descending(scores);
    let (mut xs, mut ys) = (vec![0.0], vec![0.0]);
    let (mut n_treated, mut y_treated, mut y_control) = (0.0, 0.0, 0.0);
    for (position, &i) in order.iter().enumerate() {
        if treated[i] {
            n_treated += 1.0;
            y_treated += f64::from(u8::from(outcome[i]));
        } else {
            y_control += f64::from(u8::from(outcome[i]));
        }
        let last_of_its_score = order.get(position + 1).is_none_or(|next| scores[*next] != scores[i]);
        if last_of_its_score {
            let n_all = (position + 1) as f64;
            let n_control = n_all - n_treated;
            let scaled = if n_control != 0.0 {
                y_control * (n_treated / n_control)
            } else {
                0.0
            };
            xs.push(n_all);
            ys.push(y_treated - scaled);
        }
    }
    (xs, ys)
}

/// The trapezoid area under a curve whose x only grows or only shrinks (scikit-learn's `auc`).
fn area(xs: &[f64], ys: &[f64]) -> Result<f64> {
    let steps: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    let direction = if steps.iter().all(|d| *d >= 0.0) {
        1.0
    } else if steps.iter().all(|d| *d <= 0.0) {
        -1.0
    } else {
        return Err(MetricError::NotMonotone);
    };
    let sum: f64 = steps
        .iter()
        .zip(ys.windows(2))
        .map(|(dx, y)| dx * (y[0] + y[1]) / 2.0)
        .sum();
    Ok(direction * sum)
}

/// The Qini coefficient: the area between the curve and the random diagonal, as a share of
/// the same area under the best possible order. With `negative_effect`, the best order puts
/// the control's successes last (a campaign can harm), as scikit-uplift's default.
pub fn qini_coefficient(outcome: &[bool], scores: &[f64], treated: &[bool], negative_effect: bool) -> Result<f64> {
    check(outcome, scores, treated)?;
    let (xs, ys) = curve(outcome, scores, treated);
    let (best_x, best_y) = if negative_effect {
        let best: Vec<f64> = outcome
            .iter()
            .zip(treated)
            .map(|(y, t)| match (y, t) {
                (true, true) => 1.0,
                (true, false) => -1.0,
                _ => 0.0,
            })
            .collect();
        curve(outcome, &best, treated)
    } else {
        let n = outcome.len() as f64;
        let (mut n_t, mut y_t, mut n_c, mut y_c) = (0.0, 0.0, 0.0, 0.0);
        for (y, t) in outcome.iter().zip(treated) {
            let y = f64::from(u8::from(*y));
            if *t {
                n_t += 1.0;
                y_t += y;
            } else {
                n_c += 1.0;
                y_c += y;
            }
        }
        let gain = y_t - n_t * y_c / n_c;
        (vec![0.0, gain, n], vec![0.0, gain, gain])
    };
    let (end_x, end_y) = (best_x[best_x.len() - 1], best_y[best_y.len() - 1]);
    let diagonal = area(&[0.0, end_x], &[0.0, end_y])?;
    Ok((area(&xs, &ys)? - diagonal) / (area(&best_x, &best_y)? - diagonal))
}

/// Among the `k` best-scored clients, the treated's success rate minus the control's.
pub fn uplift_at_k(outcome: &[bool], scores: &[f64], treated: &[bool], k: usize) -> Result<f64> {
    check(outcome, scores, treated)?;
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    let (mut n_t, mut y_t, mut n_c, mut y_c) = (0u64, 0u64, 0u64, 0u64);
    for &i in descending(scores).iter().take(k) {
        if treated[i] {
            n_t += 1;
            y_t += u64::from(outcome[i]);
        } else {
            n_c += 1;
            y_c += u64::from(outcome[i]);
        }
    }
    if n_t == 0 {
        return Err(MetricError::EmptyGroup("the treated"));
    }
    if n_c == 0 {
        return Err(MetricError::EmptyGroup("the control"));
    }
    Ok(y_t as f64 / n_t as f64 - y_c as f64 / n_c as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_order_scores_one_and_its_reverse_less_than_zero() {
        // Treated successes first, control successes last, in tie groups as the best order
        // is scored: the best order there is.
        let outcome = [true, true, false, false, false, false, true, true];
        let treated = [true, true, true, false, true, false, false, false];
        let best = [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
        let q = qini_coefficient(&outcome, &best, &treated, true).unwrap();
        assert!((q - 1.0).abs() < 1e-12, "{q}");
        let worst: Vec<f64> = best.iter().map(|s| -s).collect();
        assert!(qini_coefficient(&outcome, &worst, &treated, true).unwrap() < 0.0);
    }

    #[test]
    fn groups_must_both_exist() {
        let r = uplift_at_k(&[true, false], &[0.2, 0.1], &[true, true], 1);
        assert_eq!(r, Err(MetricError::EmptyGroup("the control")));
        let r = uplift_at_k(&[true, false, true], &[0.3, 0.2, 0.1], &[true, false, true], 1);
        assert_eq!(
            r,
            Err(MetricError::EmptyGroup("the control")),
            "the top 1 has no control client"
        );
    }
}
