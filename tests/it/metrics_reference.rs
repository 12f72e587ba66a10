//! Every case of the shared reference (scikit-learn / scipy values) reproduced by our metric
//! code: 1e-9 relative, p-values 1e-6 absolute or relative.

use crate::common::{floats, reference, strings};
use bankml::metrics::{classification, drift, ranking, regression};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The fixture is a copy of ../shared/reference/metrics.json (the project's shared folder,
/// beside the clone on every developer's machine and in CI): they must agree, and a missing
/// shared copy is a failure, not a pass.
#[test]
fn fixture_matches_the_shared_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/metrics.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} — the shared reference must sit beside the clone"));
    let shared: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        shared,
        reference(),
        "tests/fixtures/metrics.json is stale: copy {path} over it"
    );
}

fn close(case: &str, metric: &str, actual: f64, expected: &Value) {
    let expected = expected
        .as_f64()
        .unwrap_or_else(|| panic!("{case}: {metric} is not a number"));
    let tolerance = (1e-9 * expected.abs()).max(1e-12);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{case}: {metric} = {actual:.17}, reference {expected:.17}"
    );
}

fn close_pvalue(case: &str, metric: &str, actual: f64, expected: &Value) {
    let expected = expected.as_f64().unwrap();
    let tolerance = 1e-6f64.max(1e-6 * expected.abs());
    assert!(
        (actual - expected).abs() <= tolerance,
        "{case}: {metric} = {actual:e}, reference {expected:e}"
    );
}

#[test]
fn regression_cases() {
    let cases = reference()["regression"].as_array().unwrap().clone();
    assert!(!cases.is_empty());
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let m = regression::evaluate(&floats(&case["y_true"]), &floats(&case["y_pred"])).unwrap();
        close(name, "rmse", m.rmse, &case["rmse"]);
        close(name, "mae", m.mae, &case["mae"]);
        close(name, "r2", m.r2, &case["r2"]);
        close(name, "within_15pct", m.within_15pct, &case["within_15pct"]);
        close(name, "spearman", m.spearman, &case["spearman"]);
        close(name, "top10_overlap", m.top10_overlap, &case["top10_overlap"]);
    }
}

#[test]
fn classification_cases() {
    let cases = reference()["classification"].as_array().unwrap().clone();
    assert!(!cases.is_empty());
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let labels: Vec<bool> = case["y_true"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        let scores = floats(&case["y_score"]);
        let m = classification::evaluate(&labels, &scores, case["threshold"].as_f64().unwrap()).unwrap();
        for (metric, value) in [
            ("roc_auc", m.roc_auc),
            ("gini", m.gini),
            ("ks", m.ks),
            ("average_precision", m.average_precision),
            ("log_loss", m.log_loss),
            ("brier", m.brier),
            ("precision", m.precision),
            ("recall", m.recall),
            ("f1", m.f1),
            ("accuracy", m.accuracy),
            ("false_positive_rate", m.false_positive_rate),
        ] {
            close(name, metric, value, &case[metric]);
        }
        let confusion: classification::Confusion = serde_json::from_value(case["confusion"].clone()).unwrap();
        assert_eq!(m.confusion, confusion, "{name}: confusion");
    }
}

#[test]
fn ranking_cases() {
    let cases = reference()["ranking"].as_array().unwrap().clone();
    assert!(!cases.is_empty());
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let k = case["k"].as_u64().unwrap() as usize;
        let recommended: HashMap<String, Vec<String>> = case["recommended"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(u, items)| (u.clone(), strings(items)))
            .collect();
        let relevant: HashMap<String, HashSet<String>> = case["relevant"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(u, items)| (u.clone(), strings(items).into_iter().collect()))
            .collect();
        let catalog: HashSet<String> = strings(&case["catalog"]).into_iter().collect();
        let vectors: HashMap<String, Vec<f64>> = case["item_vectors"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(i, v)| (i.clone(), floats(v)))
            .collect();
        let m = ranking::accuracy(&recommended, &relevant, k).unwrap();
        close(name, "precision_at_k", m.precision_at_k, &case["precision_at_k"]);
        close(name, "recall_at_k", m.recall_at_k, &case["recall_at_k"]);
        close(name, "ndcg_at_k", m.ndcg_at_k, &case["ndcg_at_k"]);
        close(name, "hit_rate_at_k", m.hit_rate_at_k, &case["hit_rate_at_k"]);
        close(name, "map_at_k", m.map_at_k, &case["map_at_k"]);
        close(
            name,
            "coverage",
            ranking::coverage(&recommended, &catalog, k).unwrap(),
            &case["coverage"],
        );
        close(
            name,
            "intra_list_diversity",
            ranking::intra_list_diversity(&recommended, &vectors, k).unwrap(),
            &case["intra_list_diversity"],
        );
    }
}

#[test]
fn drift_cases() {
    let cases = reference()["drift"].as_array().unwrap().clone();
    let mut kinds = HashSet::new();
    for case in &cases {
        let name = format!(
            "{} ({})",
            case["name"].as_str().unwrap(),
            case["kind"].as_str().unwrap()
        );
        let name = name.as_str();
        kinds.insert(case["kind"].as_str().unwrap().to_string());
        if case["kind"] == "numeric" {
            let d = drift::numeric(&floats(&case["reference"]), &floats(&case["current"])).unwrap();
            let edges = floats(&case["bin_edges"]);
            assert_eq!(
                d.bin_edges.len(),
                edges.len(),
                "{name}: bin edges {:?} vs {edges:?}",
                d.bin_edges
            );
            for (a, e) in d.bin_edges.iter().zip(&edges) {
                close(name, "bin_edges", *a, &Value::from(*e));
            }
            close(name, "psi", d.psi, &case["psi"]);
            close(name, "jensen_shannon", d.jensen_shannon, &case["jensen_shannon"]);
            close(name, "ks_statistic", d.ks_statistic, &case["ks_statistic"]);
            close_pvalue(name, "ks_pvalue", d.ks_pvalue, &case["ks_pvalue"]);
            close(name, "wasserstein", d.wasserstein, &case["wasserstein"]);
        } else {
            let d = drift::categorical(&strings(&case["reference"]), &strings(&case["current"])).unwrap();
            assert_eq!(d.categories, strings(&case["categories"]), "{name}: categories");
            close(name, "psi", d.psi, &case["psi"]);
            close(name, "jensen_shannon", d.jensen_shannon, &case["jensen_shannon"]);
            close(name, "chi2_statistic", d.chi2_statistic, &case["chi2_statistic"]);
            close_pvalue(name, "chi2_pvalue", d.chi2_pvalue, &case["chi2_pvalue"]);
        }
    }
    assert_eq!(kinds.len(), 2, "both numeric and categorical cases ran");
}

/// scikit-learn's `IsotonicRegression` and NannyML's CBPE on shared data
/// (`tests/fixtures/make_cbpe.py` regenerates `cbpe.json`): the calibrator's fitted points and
/// predictions to 1e-12, the estimates within 0.005 (the bar; they agree far closer),
/// the sampling errors to 1e-9.
#[test]
fn calibration_and_cbpe_match_scikit_learn_and_nannyml() {
    use bankml::metrics::calibration::Isotonic;
    use bankml::metrics::estimation::Calibration;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cbpe.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let threshold = fixture["threshold"].as_f64().unwrap();
    let ref_scores = floats(&fixture["reference"]["scores"]);
    let ref_labels: Vec<bool> = floats(&fixture["reference"]["labels"])
        .iter()
        .map(|v| *v == 1.0)
        .collect();
    let scores = floats(&fixture["analysis"]["scores"]);
    let truth: Vec<f64> = ref_labels.iter().map(|l| f64::from(u8::from(*l))).collect();

    let isotonic = Isotonic::fit(&ref_scores, &truth).unwrap();
    let expected_x = floats(&fixture["isotonic"]["x_thresholds"]);
    let expected_y = floats(&fixture["isotonic"]["y_thresholds"]);
    assert_eq!(isotonic.x, expected_x, "the fitted points' scores");
    assert_eq!(isotonic.y.len(), expected_y.len());
    for (a, b) in isotonic.y.iter().zip(&expected_y) {
        assert!((a - b).abs() < 1e-12, "fitted value {a} vs sklearn {b}");
    }
    for (i, (a, b)) in isotonic
        .predict_all(&scores)
        .iter()
        .zip(floats(&fixture["isotonic"]["analysis_calibrated"]))
        .enumerate()
    {
        assert!((a - b).abs() < 1e-12, "row {i}: calibrated {a} vs sklearn {b}");
    }

    let calibration = Calibration::fit(&ref_labels, &ref_scores, threshold).unwrap();
    let estimate = calibration.estimate(&scores, threshold).unwrap();
    let cbpe = &fixture["cbpe"];
    let figures = [
        ("roc_auc", estimate.auc, estimate.sampling_errors.auc),
        (
            "precision",
            estimate.at_threshold.precision,
            estimate.sampling_errors.precision,
        ),
        ("recall", estimate.at_threshold.recall, estimate.sampling_errors.recall),
        ("f1", estimate.at_threshold.f1, estimate.sampling_errors.f1),
    ];
    for (metric, value, error) in figures {
        let expected = cbpe[metric]["value"].as_f64().unwrap();
        assert!(
            (value - expected).abs() < 0.005,
            "{metric}: {value} vs NannyML {expected}"
        );
        assert!(
            (value - expected).abs() < 1e-9,
            "{metric}: {value} vs NannyML {expected} (same formula, same data)"
        );
        let expected_error = cbpe[metric]["sampling_error"].as_f64().unwrap();
        assert!(
            (error - expected_error).abs() < 1e-9 * expected_error.max(1.0),
            "{metric} sampling error: {error} vs NannyML {expected_error}"
        );
    }
    // The estimate is an estimate: it lands near, not on, what the labels then say.
    let realized = cbpe["roc_auc"]["realized"].as_f64().unwrap();
    assert!(
        (estimate.auc - realized).abs() < 0.02,
        "{} vs realized {realized}",
        estimate.auc
    );
}

/// A group's figure as a share of the whole's, now against at its baseline, is statsmodels'
/// two-sample z-test (`usevar="unequal"`) of the clients' figures over the whole's
/// (`tests/fixtures/make_groups.py` regenerates `groups.json`): to 1e-9 relative.
#[test]
fn a_group_worse_than_at_its_baseline_is_statsmodels_z_test() {
    use bankml::metrics::groups::{Better, GroupEstimate, mean_with_standard_error, worse_since_p_value};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/groups.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    for (n, case) in cases.iter().enumerate() {
        let estimate = |values: &str, overall: &str| {
            let (value, standard_error) = mean_with_standard_error(&floats(&case[values])).unwrap();
            GroupEstimate {
                value,
                overall: case[overall].as_f64().unwrap(),
                standard_error,
            }
        };
        let better = match case["better"].as_str().unwrap() {
            "higher" => Better::Higher,
            _ => Better::Lower,
        };
        let p = worse_since_p_value(
            &estimate("now", "overall_now"),
            &estimate("then", "overall_then"),
            better,
        );
        let theirs = case["p_value"].as_f64().unwrap();
        assert!(
            (p - theirs).abs() <= 1e-9 * theirs,
            "case {n}: ours {p} vs statsmodels {theirs}"
        );
    }
    assert_eq!(cases.len(), 7, "every case replayed");
}

/// statsmodels' proportion intervals, z-tests and multiple-testing corrections, and
/// scikit-uplift's Qini coefficient and uplift@k on shared cases
/// (`tests/fixtures/make_business.py` regenerates `business.json`): all to 1e-9.
#[test]
fn business_figures_match_statsmodels_and_scikit_uplift() {
    use bankml::metrics::proportions::{Correction, Count, compare, wilson};
    use bankml::metrics::uplift::{qini_coefficient, uplift_at_k};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/business.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let alpha = fixture["alpha"].as_f64().unwrap();
    let near = |what: &str, ours: f64, theirs: &Value| {
        let theirs = theirs.as_f64().unwrap_or_else(|| panic!("{what}: not a number"));
        assert!(
            (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
            "{what}: ours {ours} vs reference {theirs}"
        );
    };
    let count = |pair: &Value| Count::new(pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap());

    let proportions = fixture["proportions"].as_array().unwrap();
    for case in proportions {
        let c = Count::new(case["successes"].as_u64().unwrap(), case["trials"].as_u64().unwrap());
        let interval = wilson(c, alpha).unwrap();
        near(&format!("wilson {c:?} low"), interval.low, &case["low"]);
        near(&format!("wilson {c:?} high"), interval.high, &case["high"]);
    }
    let comparisons = fixture["comparisons"].as_array().unwrap();
    for case in comparisons {
        let (a, b) = (count(&case["a"]), count(&case["b"]));
        let c = compare(a, b, alpha).unwrap();
        let what = format!("{a:?} vs {b:?}");
        near(
            &format!("{what} difference low"),
            c.difference_interval.low,
            &case["difference"][0],
        );
        near(
            &format!("{what} difference high"),
            c.difference_interval.high,
            &case["difference"][1],
        );
        near(&format!("{what} ratio low"), c.ratio_interval.low, &case["ratio"][0]);
        near(&format!("{what} ratio high"), c.ratio_interval.high, &case["ratio"][1]);
        near(&format!("{what} z"), c.z, &case["z"]);
        near(&format!("{what} p"), c.p_value, &case["p_value"]);
    }
    let corrections = &fixture["corrections"];
    let p_values = floats(&corrections["p_values"]);
    for (method, key) in [
        (Correction::Holm, "holm"),
        (Correction::BenjaminiHochberg, "benjamini_hochberg"),
    ] {
        let adjusted = method.adjust(&p_values).unwrap();
        for (i, (ours, theirs)) in adjusted.iter().zip(corrections[key].as_array().unwrap()).enumerate() {
            near(&format!("{key} p-value {i}"), *ours, theirs);
        }
    }
    let uplift = fixture["uplift"].as_array().unwrap();
    for (n, case) in uplift.iter().enumerate() {
        let flag = |key: &str| -> Vec<bool> { floats(&case[key]).iter().map(|v| *v == 1.0).collect() };
        let (outcome, treated, scores) = (flag("outcome"), flag("treated"), floats(&case["score"]));
        for (negative_effect, key) in [(true, "qini"), (false, "qini_no_negative")] {
            let q = qini_coefficient(&outcome, &scores, &treated, negative_effect).unwrap();
            near(&format!("case {n} {key}"), q, &case[key]);
        }
        for at in case["uplift_at_k"].as_array().unwrap() {
            let k = at["k"].as_u64().unwrap() as usize;
            let value = uplift_at_k(&outcome, &scores, &treated, k).unwrap();
            near(&format!("case {n} uplift@{k}"), value, &at["value"]);
        }
    }
    assert_eq!(
        (proportions.len(), comparisons.len(), uplift.len()),
        (8, 8, 4),
        "every case replayed"
    );
}
