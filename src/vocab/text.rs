//! Text helpers shared by messages, notifications and reports.

use std::collections::BTreeMap;

/// A figure for people: whole numbers as such, others with four decimals (`0.8675`, `12`).
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// `key=value` pairs in key order joined by `separator`: one alert series' identity
/// (`","`), a CSV cell (`";"`), a message (`", "`).
pub fn join_labels(labels: &BTreeMap<String, String>, separator: &str) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The candidate closest to `word` by edit distance, when close enough to be a likely typo
/// (`churn_aucc` → `churn_auc`).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// ` (did you mean "x"?)` or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, candidates).map_or_else(String::new, |n| format!(" (did you mean \"{n}\"?)"))
}

/// `12345678` → `12,345,678`, for counts people read.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_labels_and_suggestions() {
        assert_eq!(format_value(12.0), "12");
        assert_eq!(format_value(0.867_54), "0.8675");
        assert_eq!(format_value(1.6989999999999998), "1.6990");
        let labels = BTreeMap::from([("model".to_string(), "churn".to_string()), ("job".into(), "b".into())]);
        assert_eq!(join_labels(&labels, ","), "job=b,model=churn");
        let names = ["churn_auc", "churn_f1", "feature_psi"];
        assert_eq!(nearest("churn_aucc", names), Some("churn_auc"));
        assert_eq!(nearest("featur_psi", names), Some("feature_psi"));
        assert_eq!(nearest("retrain_promoted", names), None);
        assert_eq!(did_you_mean("churn_aucc", names), " (did you mean \"churn_auc\"?)");
        assert_eq!(did_you_mean("zzz", names), "");
    }
}
