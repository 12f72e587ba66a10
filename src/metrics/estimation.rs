//! Performance without labels: confidence-based performance estimation (CBPE, NannyML's
//! method). If calibrated probabilities are right, a client scored 0.3 is a churner three
//! times in ten, so the expected confusion matrix — and from it ROC AUC, precision, recall and
//! F1 — follows from the scores alone, today, before the 90-day outcome is known.
//!
//! Formulas and sampling errors follow NannyML (`performance_estimation/confidence_based/
//! metrics.py`, `sampling_error/binary_classification.py`); `tests/fixtures/make_cbpe.py`
//! runs NannyML on shared data and the tests replay its figures.

use super::{Result, check_finite, check_same_length};
use serde::{Deserialize, Serialize};

/// numpy's `round(x, 5)` (half to even), which NannyML applies to the expected counts.
fn round5(x: f64) -> f64 {
    (x * 1e5).round_ties_even() / 1e5
}

/// Expected ROC AUC: rows ranked by the model's own score, each counting its calibrated
/// probability as a positive and the rest as a negative; the area under that ROC curve.
pub fn estimated_auc(calibrated: &[f64], scores: &[f64]) -> Result<f64> {
    check_same_length("calibrated", calibrated.len(), "scores", scores.len())?;
    check_finite("calibrated probability", calibrated)?;
    check_finite("score", scores)?;
    estimated_auc_in_order(calibrated, &super::sort::argsort_floats(scores))
}

/// [`estimated_auc`] from the scores' ascending `order`
/// ([`argsort_floats`](super::sort::argsort_floats)), for a caller that has it already.
pub fn estimated_auc_in_order(calibrated: &[f64], order: &[usize]) -> Result<f64> {
    check_same_length("calibrated", calibrated.len(), "order", order.len())?;
    check_finite("calibrated probability", calibrated)?;
    // Descending by score (numpy's argsort reversed: ties in reverse index order).
    let order = order.iter().rev();
    let mut tps = Vec::with_capacity(calibrated.len() + 1);
    let mut fps = Vec::with_capacity(calibrated.len() + 1);
    tps.push(0.0);
    fps.push(0.0);
    let mut cumulative = 0.0;
    for (n, &i) in order.enumerate() {
        cumulative += calibrated[i];
        tps.push(round5(cumulative));
        fps.push(round5(1.0 + n as f64 - cumulative));
    }
    let (tp_total, fp_total) = (tps[tps.len() - 1], fps[fps.len() - 1]);
    if tp_total == 0.0 || fp_total == 0.0 {
        return Ok(f64::NAN);
    }
    let mut area = 0.0;
    for k in 1..tps.len() {
        let (x0, x1) = (fps[k - 1] / fp_total, fps[k] / fp_total);
        let (y0, y1) = (tps[k - 1] / tp_total, tps[k] / tp_total);
        area += (x1 - x0) * (y0 + y1) / 2.0;
    }
    Ok(area)
}

/// Expected precision, recall and F1 of the predictions `predicted` (the model's class at its
/// threshold), from the calibrated probabilities.
pub fn estimated_confusion(predicted: &[bool], calibrated: &[f64]) -> Result<Estimated> {
    check_same_length("predicted", predicted.len(), "calibrated", calibrated.len())?;
    check_finite("calibrated probability", calibrated)?;
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (p, c) in predicted.iter().zip(calibrated) {
        if *p {
            tp += c;
            fp += 1.0 - c;
        } else {
            fn_ += c;
        }
    }
    let ratio = |a: f64, b: f64| if b != 0.0 { a / b } else { 0.0 };
    Ok(Estimated {
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(tp, tp + 0.5 * (fp + fn_)),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimated {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// What the sampling error of each estimate is built from, learned on the labelled reference:
/// NannyML's `(std, fraction)` per metric; the error of a chunk of `n` rows is
/// `std / sqrt(n · fraction)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingComponents {
    #[serde(with = "undefined_as_null")]
    pub auc: (f64, f64),
    #[serde(with = "undefined_as_null")]
    pub precision: (f64, f64),
    #[serde(with = "undefined_as_null")]
    pub recall: (f64, f64),
    #[serde(with = "undefined_as_null")]
    pub f1: (f64, f64),
}

/// A component a holdout cannot define (precision's spread when the model predicted no
/// churner: NaN) is written as JSON's `null` and read back as NaN, instead of a file that
/// serde_json writes but refuses to read.
mod undefined_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(pair: &(f64, f64), serializer: S) -> Result<S::Ok, S::Error> {
        let defined = |v: f64| v.is_finite().then_some(v);
        (defined(pair.0), defined(pair.1)).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(f64, f64), D::Error> {
        let (a, b) = <(Option<f64>, Option<f64>)>::deserialize(deserializer)?;
        Ok((a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)))
    }
}

fn population_std(values: &[f64]) -> f64 {
    super::mean_and_population_std(values).1
}

impl SamplingComponents {
    /// From the reference's labels, the model's scores and its predicted classes.
    pub fn fit(labels: &[bool], scores: &[f64], predicted: &[bool]) -> Result<SamplingComponents> {
        check_same_length("labels", labels.len(), "scores", scores.len())?;
        check_same_length("labels", labels.len(), "predicted", predicted.len())?;
        check_finite("score", scores)?;
        let n = labels.len() as f64;
        // AUC: the Mann–Whitney view, NannyML's way (flipped when positives are the majority).
        let positives = labels.iter().filter(|l| **l).count();
        let flip = positives as f64 / n > 0.5;
        let (truth, ranked): (Vec<bool>, Vec<f64>) = if flip {
            (
                labels.iter().map(|l| !l).collect(),
                scores.iter().map(|s| 1.0 - s).collect(),
            )
        } else {
            (labels.to_vec(), scores.to_vec())
        };
        let mut order: Vec<usize> = (0..ranked.len()).collect();
        order.sort_by(|&a, &b| ranked[a].total_cmp(&ranked[b]).then(a.cmp(&b)));
        // np.unique(y_true * rank)[1:]: the positives' ranks, without the smallest value (0).
        let mut positive_ranks: Vec<usize> = order
            .iter()
            .enumerate()
            .map(|(rank, &i)| if truth[i] { rank } else { 0 })
            .collect();
        positive_ranks.sort_unstable();
        positive_ranks.dedup();
        let n_pos = truth.iter().filter(|t| **t).count() as f64;
        let n_neg = n - n_pos;
        let ser: Vec<f64> = positive_ranks
            .iter()
            .skip(1)
            .enumerate()
            .map(|(i, index)| (*index as f64 - i as f64) / n_neg)
            .collect();
        let auc = (population_std(&ser), n_pos / n);

        let pairs = || labels.iter().zip(predicted);
        let tp = pairs().filter(|(t, p)| **t && **p).count();
        let fp = pairs().filter(|(t, p)| !**t && **p).count();
        let fn_ = pairs().filter(|(t, p)| **t && !**p).count();
        let ones_and_zeros = |ones: usize, zeros: usize| -> Vec<f64> {
            std::iter::repeat_n(1.0, ones)
                .chain(std::iter::repeat_n(0.0, zeros))
                .collect()
        };
        let precision = (population_std(&ones_and_zeros(tp, fp)), (tp + fp) as f64 / n);
        let recall = (population_std(&ones_and_zeros(tp, fn_)), positives as f64 / n);
        let all = tp + fp + fn_;
        let f1 = if all == 0 {
            (f64::NAN, 0.0)
        } else {
            let correcting = all as f64 / ((fn_ + fp) as f64 * 0.5 + tp as f64);
            let scaled: Vec<f64> = ones_and_zeros(tp, fp + fn_).iter().map(|v| v * correcting).collect();
            (population_std(&scaled), all as f64 / n)
        };
        Ok(SamplingComponents {
            auc,
            precision,
            recall,
            f1,
        })
    }

    /// The sampling error of an estimate over `rows` rows, per metric.
    pub fn errors(&self, rows: usize) -> SamplingErrors {
        let error = |(std, fraction): (f64, f64)| std / (rows as f64 * fraction).sqrt();
        SamplingErrors {
            auc: error(self.auc),
            precision: error(self.precision),
            recall: error(self.recall),
            f1: error(self.f1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingErrors {
    pub auc: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_confident_probabilities_estimate_the_realized_figures() {
        // Calibrated probabilities of exactly 0 or 1 are the labels: the estimate is the truth.
        let labels = [true, false, true, false, false, true];
        let scores = [0.9, 0.2, 0.6, 0.7, 0.1, 0.8];
        let calibrated: Vec<f64> = labels.iter().map(|l| f64::from(u8::from(*l))).collect();
        let estimated = estimated_auc(&calibrated, &scores).unwrap();
        // Realized AUC: positives 0.9, 0.6, 0.8 against negatives 0.2, 0.7, 0.1 → 8 of 9 pairs.
        assert!((estimated - 8.0 / 9.0).abs() < 1e-12, "{estimated}");
        let predicted: Vec<bool> = scores.iter().map(|s| *s >= 0.5).collect();
        let e = estimated_confusion(&predicted, &calibrated).unwrap();
        assert_eq!((e.precision, e.recall), (0.75, 1.0), "tp 3, fp 1, fn 0");
    }

    #[test]
    fn a_holdout_with_no_predicted_churner_writes_components_that_read_back() {
        let labels = [true, false, false, true, false];
        let scores = [0.2, 0.1, 0.3, 0.4, 0.1];
        let nobody = [false; 5];
        let components = SamplingComponents::fit(&labels, &scores, &nobody).unwrap();
        assert!(
            components.precision.0.is_nan(),
            "no predicted churner: precision's spread is undefined"
        );
        let json = serde_json::to_string(&components).unwrap();
        let read: SamplingComponents = serde_json::from_str(&json).unwrap();
        assert!(read.precision.0.is_nan());
        assert_eq!(read.auc, components.auc);
        assert_eq!(read.recall, components.recall);
    }
}

/// What a churn version keeps for estimating its performance without labels: its calibrator
/// and the sampling-error components, both learned on labelled rows its booster did not fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub isotonic: super::calibration::Isotonic,
    pub sampling: SamplingComponents,
    /// The labelled rows it was learned on.
    pub rows: usize,
}

impl Calibration {
    /// Learned on `labels`, the model's `scores` and its classes at `threshold`.
    pub fn fit(labels: &[bool], scores: &[f64], threshold: f64) -> Result<Calibration> {
        let truth: Vec<f64> = labels.iter().map(|l| f64::from(u8::from(*l))).collect();
        let predicted: Vec<bool> = scores.iter().map(|s| *s >= threshold).collect();
        Ok(Calibration {
            isotonic: super::calibration::Isotonic::fit(scores, &truth)?,
            sampling: SamplingComponents::fit(labels, scores, &predicted)?,
            rows: labels.len(),
        })
    }

    /// The estimated AUC, precision, recall and F1 of `scores` (unlabelled) at `threshold`,
    /// with their sampling errors.
    pub fn estimate(&self, scores: &[f64], threshold: f64) -> Result<Estimate> {
        let calibrated = self.isotonic.predict_all(scores);
        let predicted: Vec<bool> = scores.iter().map(|s| *s >= threshold).collect();
        Ok(Estimate {
            auc: estimated_auc(&calibrated, scores)?,
            at_threshold: estimated_confusion(&predicted, &calibrated)?,
            sampling_errors: self.sampling.errors(scores.len()),
            rows: scores.len(),
            expected_positive_rate: calibrated.iter().sum::<f64>() / calibrated.len().max(1) as f64,
        })
    }
}

/// Performance estimated without labels, for one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub auc: f64,
    pub at_threshold: Estimated,
    pub sampling_errors: SamplingErrors,
    pub rows: usize,
    /// The mean calibrated probability: the churn rate the model expects.
    pub expected_positive_rate: f64,
}
