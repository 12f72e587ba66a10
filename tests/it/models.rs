//! The four models as a user runs them: generate → train → score, the registry's promote and
//! rollback, models that survive a save and a load, and bad inputs with clear errors.

use crate::common::*;
use std::collections::{HashMap, HashSet};

/// A small bank with four months whose churn outcome is known.
fn small_bank() -> tempfile::TempDir {
    let dir = scratch();
    ok(
        dir.path(),
        &["generate", "--clients", "3000", "--months", "7", "--format", "parquet"],
    );
    dir
}

#[test]
fn generate_train_score_end_to_end() {
    let dir = small_bank();
    let printed = ok(dir.path(), &["train"]);
    for model in [
        "recommender v1 (champion)",
        "churn v1 (champion)",
        "manager v1 (champion)",
        "agency v1 (champion)",
    ] {
        assert!(printed.contains(model), "{model} missing from:\n{printed}");
    }
    assert!(printed.contains("5-fold CV: RMSE"), "{printed}");
    for file in ["model.json", "meta.json", "design.json", "reference.json"] {
        assert!(dir.path().join("data/models/churn/1").join(file).is_file(), "{file}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/models/churn/1/meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["version"], 1);
    assert!(
        meta["holdout"]["roc_auc"].as_f64().unwrap() > 0.7,
        "churn AUC {}",
        meta["holdout"]["roc_auc"]
    );
    assert_eq!(meta["data_hash"].as_str().unwrap().len(), 16);

    let printed = ok(dir.path(), &["score"]);
    assert!(printed.contains("recommendations: top 5"), "{printed}");
    // Every champion is predicted by bankml's laid-out trees, XGBoost's values bit for bit.
    let benchmark = ok(dir.path(), &["bench", "predict", "--dir", ".", "--repeats", "1"]);
    let scored = read_parquet(&dir.path().join("data/scores/2025-12-31/clients.parquet")).height();
    for (model, rows) in [
        ("churn", scored..=scored),
        ("manager", 1..=scored),
        ("agency", 1..=scored),
    ] {
        let line = benchmark
            .lines()
            .find(|l| l.starts_with(model))
            .unwrap_or_else(|| panic!("no {model} line in:\n{benchmark}"));
        assert!(line.ends_with("yes"), "{line}");
        let predicted: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(rows.contains(&predicted), "{line}: {predicted} rows");
    }
    let out = dir.path().join("data/scores/2025-12-31");
    let clients = read_parquet(&out.join("clients.parquet"));
    let probabilities = clients.column("churn_probability").unwrap().f64().unwrap().clone();
    assert!(probabilities.into_no_null_iter().all(|p| (0.0..=1.0).contains(&p)));
    // The calibrated churn rate: a non-decreasing map of the score (the calibrator is isotonic),
    // reading as a rate — over today's clients it expects about the churn the holdout saw.
    let scores = column_f64(&clients, "churn_probability");
    let rates = column_f64(&clients, "churn_rate");
    let mut pairs: Vec<(f64, f64)> = scores.iter().copied().zip(rates.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    assert!(
        pairs.windows(2).all(|w| w[0].1 <= w[1].1),
        "the rate follows the score's order"
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let holdout = &meta["holdout"];
    let observed = holdout["positives"].as_f64().unwrap() / holdout["rows"].as_f64().unwrap();
    assert!(
        (0.5 * observed..2.0 * observed).contains(&mean(&rates)),
        "expected {} against the holdout's {observed}",
        mean(&rates)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let expected = summary["clients"]["expected_churn_rate"].as_f64().unwrap();
    assert!((expected - mean(&rates)).abs() < 1e-9, "{expected}");
    // Risk levels are cut on the churn rate (defaults: Medium from 10 %, High from 30 %), not
    // on the class-weighted score.
    let risks = column_str(&clients, "risk");
    for (rate, risk) in rates.iter().zip(&risks) {
        let expected = if *rate >= 0.3 {
            "High"
        } else if *rate >= 0.1 {
            "Medium"
        } else {
            "Low"
        };
        assert_eq!(*risk, expected, "churn rate {rate}");
    }
    let actions = column_str(&clients, "actions");
    let at_risk = risks.iter().filter(|r| **r != "Low").count();
    let at_risk_with_actions = risks
        .iter()
        .zip(&actions)
        .filter(|(r, a)| **r != "Low" && !a.is_empty())
        .count();
    assert!(
        at_risk > 0 && at_risk_with_actions == at_risk,
        "every Medium- and High-risk client gets actions ({at_risk_with_actions} of {at_risk})"
    );

    // Recommendations: five per client, never a product the client holds.
    let recs = read_parquet(&out.join("recommendations.parquet"));
    let holdings = read_parquet(&dir.path().join("data/raw/2025-12-31/holdings.parquet"));
    let mut held: HashMap<i64, HashSet<String>> = HashMap::new();
    let closed = holdings.column("closed_on").unwrap().is_null();
    for ((cli, product), open) in holdings
        .column("cli")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(holdings.column("product_id").unwrap().str().unwrap().iter().flatten())
        .zip(closed.iter().map(|v| v == Some(true)))
    {
        if open {
            held.entry(cli).or_default().insert(product.to_string());
        }
    }
    let mut per_client: HashMap<i64, usize> = HashMap::new();
    for (cli, product) in recs
        .column("cli")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(recs.column("product_id").unwrap().str().unwrap().iter().flatten())
    {
        assert!(
            !held.get(&cli).is_some_and(|h| h.contains(product)),
            "client {cli} already holds {product}"
        );
        *per_client.entry(cli).or_default() += 1;
    }
    assert_eq!(per_client.len(), clients.height());
    assert!(per_client.values().all(|n| *n == 5));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let by_risk = &summary["clients"]["by_risk"];
    let total: u64 = ["Low", "Medium", "High"]
        .iter()
        .map(|r| by_risk[*r].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, clients.height());
    assert_eq!(summary["managers"]["top"].as_array().unwrap().len(), 5);
    // Managers below the objective (60 by default): what pulls each one's score down, the
    // support it calls for, and everyone's chance of meeting it — a falling function of the
    // distance below it.
    let managers = read_parquet(&out.join("managers.parquet"));
    let predicted = column_f64(&managers, "predicted_score");
    let chance = column_f64(&managers, "meets_objective_probability");
    let below: Vec<bool> = managers
        .column("below_objective")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|b| b == Some(true))
        .collect();
    let support = column_str(&managers, "support");
    let pulling = column_str(&managers, "pulling_down");
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|a, b| predicted[*a].total_cmp(&predicted[*b]));
    assert!(
        order.windows(2).all(|w| chance[w[0]] <= chance[w[1]] + 1e-12),
        "more likely the higher the prediction"
    );
    for i in 0..predicted.len() {
        assert_eq!(below[i], predicted[i] < 60.0, "{}", predicted[i]);
        assert_eq!(
            below[i],
            chance[i] < 0.5,
            "below the objective is under even odds: {}",
            chance[i]
        );
        assert_eq!(below[i], !support[i].is_empty(), "support only below the objective");
        assert_eq!(!pulling[i].is_empty(), !support[i].is_empty());
    }
    let listed = summary["managers"]["needing_support"].as_array().unwrap();
    assert_eq!(
        summary["managers"]["below_objective"].as_u64().unwrap() as usize,
        below.iter().filter(|b| **b).count()
    );
    assert!(listed.len() <= 10 && listed.iter().all(|m| !m["support"].as_array().unwrap().is_empty()));

    // The same job from the library: its observations carry the same figures.
    let mut config = bankml::config::EngineConfig::default();
    config.data.raw_dir = dir.path().join("data/raw");
    config.data.scores_dir = dir.path().join("data/scores-again");
    config.models.dir = dir.path().join("data/models");
    let outcome = bankml::jobs::score::run(&bankml::jobs::Context::new(&config)).unwrap();
    let as_json: Vec<serde_json::Value> = outcome
        .observations
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    assert_catalogued(&as_json);
    let value = |name: &str, risk: Option<&str>| -> f64 {
        outcome
            .observations
            .iter()
            .find(|o| o.name == name && risk.is_none_or(|r| o.labels.get("risk").map(String::as_str) == Some(r)))
            .unwrap_or_else(|| panic!("no observation {name} {risk:?}"))
            .value
    };
    assert_eq!(value("scored_clients", None), clients.height() as f64);
    let by_risk: f64 = ["Low", "Medium", "High"]
        .iter()
        .map(|r| value("churn_risk_clients", Some(r)))
        .sum();
    assert_eq!(by_risk, clients.height() as f64);
    assert_eq!(value("churn_risk_clients", Some("High")), by_risk_high(&summary));
    assert!(
        dir.path()
            .join("data/scores-again/2025-12-31/clients.parquet")
            .is_file()
    );
}

fn by_risk_high(summary: &serde_json::Value) -> f64 {
    summary["clients"]["by_risk"]["High"].as_f64().unwrap()
}

#[test]
fn promote_and_rollback_move_the_champion() {
    let dir = small_bank();
    ok(dir.path(), &["train", "--model", "manager"]);
    let printed = ok(dir.path(), &["train", "--model", "manager"]);
    assert!(printed.contains("manager v2 (challenger)"), "{printed}");
    assert!(ok(dir.path(), &["models", "list"]).contains("champion: v1    challenger: v2"));
    ok(dir.path(), &["models", "promote", "manager", "2"]);
    assert!(ok(dir.path(), &["models", "show", "manager"]).contains("\"version\": 2"));
    let printed = ok(dir.path(), &["models", "rollback", "manager"]);
    assert!(printed.contains("rolled back to v1; v2 is now challenger"), "{printed}");
    let printed = bad_input(dir.path(), &["models", "promote", "manager", "9"]);
    assert!(
        printed.contains("manager has no version 9 (versions: 1, 2)"),
        "{printed}"
    );
    let printed = bad_input(dir.path(), &["models", "rollback", "manager"]);
    assert!(printed.contains("nothing to roll back to"), "{printed}");
    let printed = bad_input(dir.path(), &["models", "show", "fraud"]);
    assert!(
        printed.contains("invalid value 'fraud'")
            && printed.contains("[possible values: churn, manager, agency, recommender]"),
        "{printed}"
    );
}

#[test]
fn bad_training_inputs_are_clear_errors() {
    let dir = scratch();
    let printed = bad_input(dir.path(), &["train", "--model", "fraud"]);
    assert!(printed.contains("invalid value 'fraud'"), "{printed}");
    let printed = bad_input(dir.path(), &["score"]);
    assert!(printed.contains("is not a bankml project"), "{printed}");

    // Two months: no churn outcome is known yet.
    ok(
        dir.path(),
        &["generate", "--clients", "500", "--months", "2", "--format", "csv"],
    );
    let printed = bad_input(dir.path(), &["train", "--model", "churn"]);
    assert!(
        printed.contains("churn: no rows with a known churn to train on"),
        "{printed}"
    );
    assert!(!dir.path().join("data/models/churn/1").exists(), "nothing registered");
    let printed = bad_input(dir.path(), &["score"]);
    assert!(printed.contains("no trained models yet"), "{printed}");

    // Nobody churned: a classifier cannot learn.
    let single = scratch();
    let mut later = hand_built(true);
    for (name, contents) in later.iter_mut() {
        if *name == "holdings.csv" {
            *contents = contents.replace("2,P01,2024-12-31,2025-05-01,0", "2,P01,2024-12-31,,200");
        }
        if *name == "clients.csv" {
            *contents = contents.replace("Capital,<20k,2025-05-01", "Capital,<20k,");
        }
    }
    write_snapshot(single.path(), "2025-03-31", &hand_built(false));
    write_snapshot(single.path(), "2025-06-30", &later);
    let printed = bad_input(single.path(), &["train", "--model", "churn"]);
    assert!(printed.contains("every churn in the training data is 0"), "{printed}");
}

#[test]
fn a_saved_model_predicts_exactly_as_before() {
    use bankml::models::boosted::{self, BoostParams, Matrix, Split, Task, TrainedBooster};
    let rows = 2000;
    let mut values = Vec::with_capacity(rows * 3);
    let mut labels = Vec::with_capacity(rows);
    for i in 0..rows {
        let (a, b, c) = (
            (i % 17) as f32,
            ((i * 7) % 13) as f32,
            if i % 11 == 0 { f32::NAN } else { (i % 5) as f32 },
        );
        values.extend([a, b, c]);
        labels.push(if a + b > 14.0 { 1.0 } else { 0.0 });
    }
    let matrix = Matrix {
        values,
        rows,
        names: vec!["a".into(), "b".into(), "c".into()],
    };
    let params = BoostParams {
        rounds: 30,
        threads: 1,
        ..BoostParams::default()
    };
    let trained = boosted::train(Task::Binary, &params, Split::all(&matrix, &labels), None, None, &[]).unwrap();
    let before = trained.predict(&matrix).unwrap();
    let json = trained.to_json().unwrap();
    assert!(json.starts_with(b"{"), "XGBoost's JSON format");
    let loaded = TrainedBooster::from_json(&json, matrix.names.clone(), 1).unwrap();
    assert_eq!(
        loaded.predict(&matrix).unwrap(),
        before,
        "identical predictions after save and load"
    );
    // SHAP rows sum to the margin: logit of the probability.
    let shap = loaded.contributions(&matrix).unwrap();
    for (i, p) in before.iter().enumerate().take(50) {
        let margin: f32 = shap[i * 4..(i + 1) * 4].iter().sum();
        assert!(
            (margin - (p / (1.0 - p)).ln()).abs() < 1e-3,
            "row {i}: {margin} vs logit({p})"
        );
    }
    let importance = loaded.gain_importance().unwrap();
    assert!(importance.iter().any(|(name, _)| name == "a"), "{importance:?}");
    assert!(trained.gain_importance().unwrap()[0].1 > 0.0);
}

/// A model trained by Python's XGBoost (tests/fixtures/python_model.json, with the predictions
/// Python made for 20 rows; tests/fixtures/make_python_model.py regenerates both) loads here
/// and predicts the same.
#[test]
fn a_model_trained_in_python_predicts_the_same_here() {
    use bankml::models::boosted::{Matrix, TrainedBooster};
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/python_model_expected.json")).unwrap();
    let rows = expected["rows"].as_array().unwrap();
    let values: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().map_or(f32::NAN, |v| v as f32))
        })
        .collect();
    let names: Vec<String> = (0..4).map(|i| format!("f{i}")).collect();
    let matrix = Matrix {
        values,
        rows: rows.len(),
        names: names.clone(),
    };
    let model = TrainedBooster::from_json(include_bytes!("../fixtures/python_model.json"), names, 1).unwrap();
    assert!(model.has_forest(), "Python's model is laid out for prediction too");
    let predicted = model.predict(&matrix).unwrap();
    let laid_out = bankml::models::forest::Forest::compile(include_bytes!("../fixtures/python_model.json")).unwrap();
    assert_eq!(laid_out.predict(&matrix.values, 4, false).unwrap(), predicted);
    let theirs = expected["predictions"].as_array().unwrap();
    assert_eq!(theirs.len(), rows.len(), "one Python prediction per row");
    assert_eq!(predicted.len(), theirs.len(), "one prediction here per row");
    for (i, (ours, theirs)) in predicted.iter().zip(theirs).enumerate() {
        let theirs = theirs.as_f64().unwrap() as f32;
        assert!(
            (ours - theirs).abs() <= 1e-6,
            "row {i}: {ours} here, {theirs} in Python"
        );
    }
}
