//! Binary classification: ranking quality (ROC AUC, Gini, KS, average precision), probability
//! quality (log loss, Brier, calibration) and decisions at a threshold (score ≥ threshold is
//! positive). Curves for reports come from the same walk over distinct scores.

use super::sort::sort_floats;
use super::{MetricError, Result, check_finite, check_same_length};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BinaryMetrics {
    pub rows: usize,
    pub positives: usize,
    pub threshold: f64,
    pub roc_auc: f64,
    pub gini: f64,
    pub ks: f64,
    pub average_precision: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
    pub false_positive_rate: f64,
    pub confusion: Confusion,
}

/// Scores split by class and sorted ascending: every ranking metric is a walk over them.
pub struct Ranked {
    positives: Vec<f64>,
    negatives: Vec<f64>,
}

/// One distinct score, high to low, with the counts at or above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub threshold: f64,
    pub tp: u64,
    pub fp: u64,
}

impl Ranked {
    pub fn new(labels: &[bool], scores: &[f64]) -> Result<Ranked> {
        check_same_length("labels", labels.len(), "scores", scores.len())?;
        check_finite("score", scores)?;
        let (mut positives, mut negatives) = by_class(labels, scores, 0..labels.len());
        both_classes(&positives, &negatives)?;
        // The two classes sort side by side: half the wall time on two cores.
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| sort_floats(&mut positives));
            sort_floats(&mut negatives);
            let _ = handle.join();
        });
        Ok(Ranked { positives, negatives })
    }

    /// [`Ranked::new`] without a sort, from the scores' ascending `order`
    /// ([`argsort_floats`](super::sort::argsort_floats) of `scores`), for a caller that ranks
    /// the same scores more than once (the churn figures by group walk the same order).
    pub fn from_order(labels: &[bool], scores: &[f64], order: &[usize]) -> Result<Ranked> {
        check_same_length("labels", labels.len(), "scores", scores.len())?;
        check_same_length("order", order.len(), "scores", scores.len())?;
        check_finite("score", scores)?;
        let (positives, negatives) = by_class(labels, scores, order.iter().copied());
        Ranked::from_sorted(positives, negatives)
    }

    /// The ranking of the positives' and the negatives' scores, each already ascending.
    pub fn from_sorted(positives: Vec<f64>, negatives: Vec<f64>) -> Result<Ranked> {
        debug_assert!(positives.is_sorted_by(|a, b| a.total_cmp(b).is_le()));
        debug_assert!(negatives.is_sorted_by(|a, b| a.total_cmp(b).is_le()));
        both_classes(&positives, &negatives)?;
        Ok(Ranked { positives, negatives })
    }

    pub fn n_pos(&self) -> u64 {
        self.positives.len() as u64
    }

    pub fn n_neg(&self) -> u64 {
        self.negatives.len() as u64
    }

    /// Distinct scores from the highest down, with cumulative true and false positives.
    pub fn walk(&self) -> impl Iterator<Item = CurvePoint> + '_ {
        let (mut i, mut j) = (self.positives.len(), self.negatives.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        std::iter::from_fn(move || {
            let top_p = (i > 0).then(|| self.positives[i - 1]);
            let top_n = (j > 0).then(|| self.negatives[j - 1]);
            let threshold = match (top_p, top_n) {
                (Some(p), Some(n)) => p.max(n),
                (Some(p), None) => p,
                (None, Some(n)) => n,
                (None, None) => return None,
            };
            while i > 0 && self.positives[i - 1] == threshold {
                i -= 1;
                tp += 1;
            }
            while j > 0 && self.negatives[j - 1] == threshold {
                j -= 1;
                fp += 1;
            }
            Some(CurvePoint { threshold, tp, fp })
        })
    }

    /// ROC AUC with tied scores counting one half (the trapezoid rule over the ROC curve,
    /// summed in integers).
    pub fn roc_auc(&self) -> f64 {
        let (mut area, mut last_tp, mut last_fp) = (0u128, 0u128, 0u128);
        for point in self.walk() {
            let (tp, fp) = (point.tp as u128, point.fp as u128);
            area += (fp - last_fp) * (tp + last_tp);
            (last_tp, last_fp) = (tp, fp);
        }
        area as f64 / (2.0 * self.n_pos() as f64 * self.n_neg() as f64)
    }

    /// Σ (Rₙ − Rₙ₋₁)·Pₙ over distinct scores, high to low.
    pub fn average_precision(&self) -> f64 {
        let p = self.n_pos() as f64;
        let (mut ap, mut last_recall) = (0.0, 0.0);
        for point in self.walk() {
            let recall = point.tp as f64 / p;
            let precision = point.tp as f64 / (point.tp + point.fp) as f64;
            ap += (recall - last_recall) * precision;
            last_recall = recall;
        }
        ap
    }

    /// The largest gap between the true- and false-positive rates.
    pub fn ks(&self) -> f64 {
        let (p, n) = (self.n_pos() as f64, self.n_neg() as f64);
        self.walk()
            .map(|pt| pt.tp as f64 / p - pt.fp as f64 / n)
            .fold(0.0, f64::max)
    }

    /// ROC curve points (false-positive rate, true-positive rate, threshold), from (0, 0),
    /// thinned to at most `max_points` for charts.
    pub fn roc_curve(&self, max_points: usize) -> Vec<(f64, f64, f64)> {
        let (p, n) = (self.n_pos() as f64, self.n_neg() as f64);
        let mut points = vec![(0.0, 0.0, f64::INFINITY)];
        points.extend(self.walk().map(|pt| (pt.fp as f64 / n, pt.tp as f64 / p, pt.threshold)));
        thin(points, max_points)
    }

    /// Precision-recall points (recall, precision, threshold), thinned for charts.
    pub fn pr_curve(&self, max_points: usize) -> Vec<(f64, f64, f64)> {
        let p = self.n_pos() as f64;
        let points = self
            .walk()
            .map(|pt| (pt.tp as f64 / p, pt.tp as f64 / (pt.tp + pt.fp) as f64, pt.threshold))
            .collect();
        thin(points, max_points)
    }
}

/// The scores of `rows` (in that order) split by label: positives, negatives.
fn by_class(labels: &[bool], scores: &[f64], rows: impl Iterator<Item = usize>) -> (Vec<f64>, Vec<f64>) {
    let n_pos = labels.iter().filter(|l| **l).count();
    let mut positives = Vec::with_capacity(n_pos);
    let mut negatives = Vec::with_capacity(labels.len() - n_pos);
    for i in rows {
        if labels[i] {
            positives.push(scores[i]);
        } else {
            negatives.push(scores[i]);
        }
    }
    (positives, negatives)
}

/// A ranking needs a score of each class.
fn both_classes(positives: &[f64], negatives: &[f64]) -> Result<()> {
    if positives.is_empty() {
        return Err(MetricError::SingleClass(0, "ROC AUC"));
    }
    if negatives.is_empty() {
        return Err(MetricError::SingleClass(1, "ROC AUC"));
    }
    Ok(())
}

/// Keeps the first and last points and evenly spaced ones between.
fn thin<T: Copy>(points: Vec<T>, max_points: usize) -> Vec<T> {
    if points.len() <= max_points.max(2) {
        return points;
    }
    let step = (points.len() - 1) as f64 / (max_points - 1) as f64;
    (0..max_points)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)])
        .collect()
}

/// Counts at `threshold`: a score at or above it is a positive prediction.
pub fn confusion(labels: &[bool], scores: &[f64], threshold: f64) -> Confusion {
    let mut c = Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    };
    for (label, score) in labels.iter().zip(scores) {
        match (*label, *score >= threshold) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (false, false) => c.tn += 1,
            (true, false) => c.fn_ += 1,
        }
    }
    c
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

impl Confusion {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_)
    }
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
}

fn check_probabilities(scores: &[f64]) -> Result<()> {
    match scores.iter().position(|s| !(0.0..=1.0).contains(s)) {
        Some(index) => Err(MetricError::NotAProbability {
            what: "score",
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

/// Mean negative log-likelihood, probabilities clipped to [ε, 1 − ε] (ε = f64 machine
/// epsilon, as scikit-learn).
pub fn log_loss(labels: &[bool], scores: &[f64]) -> Result<f64> {
    check_same_length("labels", labels.len(), "scores", scores.len())?;
    check_finite("score", scores)?;
    check_probabilities(scores)?;
    let eps = f64::EPSILON;
    let total: f64 = labels
        .iter()
        .zip(scores)
        .map(|(label, p)| {
            let p = p.clamp(eps, 1.0 - eps);
            if *label { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Ok(total / labels.len() as f64)
}

pub fn brier(labels: &[bool], scores: &[f64]) -> Result<f64> {
    check_same_length("labels", labels.len(), "scores", scores.len())?;
    check_finite("score", scores)?;
    let total: f64 = labels
        .iter()
        .zip(scores)
        .map(|(l, p)| (p - if *l { 1.0 } else { 0.0 }).powi(2))
        .sum();
    Ok(total / labels.len() as f64)
}

/// Every metric of this module at `threshold`.
pub fn evaluate(labels: &[bool], scores: &[f64], threshold: f64) -> Result<BinaryMetrics> {
    if !threshold.is_finite() {
        return Err(MetricError::BadThreshold(threshold));
    }
    evaluate_ranked(&Ranked::new(labels, scores)?, labels, scores, threshold)
}

/// [`evaluate`] with the scores already ranked (`ranked` made from these `labels` and
/// `scores`): a caller that needs the ranking for more sorts once.
pub fn evaluate_ranked(ranked: &Ranked, labels: &[bool], scores: &[f64], threshold: f64) -> Result<BinaryMetrics> {
    if !threshold.is_finite() {
        return Err(MetricError::BadThreshold(threshold));
    }
    let roc_auc = ranked.roc_auc();
    let c = confusion(labels, scores, threshold);
    Ok(BinaryMetrics {
        rows: labels.len(),
        positives: ranked.n_pos() as usize,
        threshold,
        roc_auc,
        gini: 2.0 * roc_auc - 1.0,
        ks: ranked.ks(),
        average_precision: ranked.average_precision(),
        log_loss: log_loss(labels, scores)?,
        brier: brier(labels, scores)?,
        precision: c.precision(),
        recall: c.recall(),
        f1: c.f1(),
        accuracy: c.accuracy(),
        false_positive_rate: c.false_positive_rate(),
        confusion: c,
    })
}

/// One bin of a calibration table: scores in [low, high).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationBin {
    pub low: f64,
    pub high: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Predicted against observed positive rate in `bins` equal-width score bins over [0, 1]
/// (the last bin includes 1). Empty bins are left out.
pub fn calibration(labels: &[bool], scores: &[f64], bins: usize) -> Result<Vec<CalibrationBin>> {
    check_same_length("labels", labels.len(), "scores", scores.len())?;
    check_probabilities(scores)?;
    let bins = bins.max(1);
    let mut sums = vec![(0u64, 0.0f64, 0u64); bins];
    for (label, score) in labels.iter().zip(scores) {
        let b = ((score * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += score;
        sums[b].2 += u64::from(*label);
    }
    Ok(sums
        .into_iter()
        .enumerate()
        .filter(|(_, (count, _, _))| *count > 0)
        .map(|(b, (count, sum, positives))| CalibrationBin {
            low: b as f64 / bins as f64,
            high: (b + 1) as f64 / bins as f64,
            count,
            mean_predicted: sum / count as f64,
            observed_rate: positives as f64 / count as f64,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_inputs_are_errors() {
        assert_eq!(
            evaluate(&[true, true], &[0.1, 0.2], 0.5).unwrap_err(),
            MetricError::SingleClass(1, "ROC AUC")
        );
        assert_eq!(evaluate(&[], &[], 0.5).unwrap_err(), MetricError::Empty);
        assert!(matches!(
            evaluate(&[true], &[0.1, 0.2], 0.5),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            evaluate(&[true, false], &[f64::NAN, 0.2], 0.5),
            Err(MetricError::NotFinite { index: 0, .. })
        ));
        assert!(matches!(
            evaluate(&[true, false], &[1.5, 0.2], 0.5),
            Err(MetricError::NotAProbability { index: 0, .. })
        ));
    }

    #[test]
    fn a_ranking_from_the_order_is_the_sorted_one() {
        let mut state = 7u64;
        let (labels, scores): (Vec<bool>, Vec<f64>) = (0..20_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let x = (state >> 11) as f64 / (1u64 << 53) as f64;
                // Coarse scores (many ties) leaning towards the positives.
                (
                    x < 0.3 + 0.4 * ((i % 7) as f64 / 7.0),
                    ((x + (i % 7) as f64) * 20.0).floor() / 160.0,
                )
            })
            .unzip();
        let sorted = Ranked::new(&labels, &scores).unwrap();
        let order = super::super::sort::argsort_floats(&scores);
        let ordered = Ranked::from_order(&labels, &scores, &order).unwrap();
        assert_eq!(sorted.positives, ordered.positives);
        assert_eq!(sorted.negatives, ordered.negatives);
        assert!(sorted.roc_auc() > 0.0 && sorted.roc_auc() < 1.0);
        assert_eq!(
            Ranked::from_order(&[true, true], &[0.1, 0.2], &[0, 1]).err(),
            Some(MetricError::SingleClass(1, "ROC AUC"))
        );
    }

    #[test]
    fn curves_start_and_end_where_they_should() {
        let labels = [true, false, true, false, true];
        let scores = [0.9, 0.8, 0.7, 0.2, 0.1];
        let ranked = Ranked::new(&labels, &scores).unwrap();
        let roc = ranked.roc_curve(100);
        assert_eq!((roc[0].0, roc[0].1), (0.0, 0.0));
        assert_eq!((roc.last().unwrap().0, roc.last().unwrap().1), (1.0, 1.0));
        assert_eq!(ranked.roc_curve(3).len(), 3);
        let calibration = calibration(&labels, &scores, 10).unwrap();
        assert_eq!(calibration.iter().map(|b| b.count).sum::<u64>(), 5);
    }
}
