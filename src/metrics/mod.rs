//! Pure numbers: regression, classification, ranking, drift, proportion and uplift metrics over
//! slices.
//! No I/O and no dataframe types; every undefined input is a [`MetricError`], never a NaN.
//!
//! Definitions follow `../shared/reference/README.md` and agree with scikit-learn and scipy
//! to 1e-9 (tests replay `metrics.json`).

pub mod calibration;
pub mod classification;
pub mod drift;
pub mod estimation;
pub mod groups;
pub mod proportions;
pub mod ranking;
pub mod reference;
pub mod regression;
pub mod significance;
pub mod sort;
pub mod uplift;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("no values to measure")]
    Empty,
    #[error("{left} has {left_len} values but {right} has {right_len}")]
    LengthMismatch {
        left: &'static str,
        left_len: usize,
        right: &'static str,
        right_len: usize,
    },
    #[error("{what} at position {index} is {value}, not a finite number")]
    NotFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("every label is {0}: {1} needs both classes")]
    SingleClass(u8, &'static str),
    #[error("{what} at position {index} is {value}, outside [0, 1]")]
    NotAProbability {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("k must be at least 1")]
    ZeroK,
    #[error("no user has a relevant item")]
    NoRelevantUsers,
    #[error("item {0} has no feature vector")]
    MissingVector(String),
    #[error("item vectors have different lengths ({0} and {1})")]
    VectorLength(usize, usize),
    #[error("threshold {0} is not a finite number")]
    BadThreshold(f64),
    #[error("{successes} successes out of {trials} trials")]
    MoreSuccessesThanTrials { successes: u64, trials: u64 },
    #[error("{0} group is empty: an uplift needs treated and control clients")]
    EmptyGroup(&'static str),
    #[error("the Qini curve is not monotone in its x values, so it has no area")]
    NotMonotone,
}

pub type Result<T> = std::result::Result<T, MetricError>;

/// Rejects NaN and infinities, naming the first offending position.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricError::NotFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Mean and population standard deviation (divided by n, as numpy's `std`); NaN for none.
pub(crate) fn mean_and_population_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, std)
}

pub(crate) fn check_same_length(left: &'static str, a: usize, right: &'static str, b: usize) -> Result<()> {
    if a != b {
        return Err(MetricError::LengthMismatch {
            left,
            left_len: a,
            right,
            right_len: b,
        });
    }
    if a == 0 {
        return Err(MetricError::Empty);
    }
    Ok(())
}

/// Average ranks (1-based), ties sharing the mean of their positions, as scipy's `rankdata`.
pub(crate) fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

pub(crate) fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}
