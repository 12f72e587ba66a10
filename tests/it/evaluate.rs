//! `bankml evaluate` driven as a user would: CSV and Parquet files in, JSON out, values equal
//! to the shared scikit-learn/scipy reference; bad files get exit code 2 and a clear message.

use crate::common::*;
use polars::prelude::*;
use serde_json::Value;
use std::path::Path;

fn case<'a>(reference: &'a Value, section: &str, name: &str) -> &'a Value {
    reference[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{section}/{name}"))
}

/// Writes `frame` as `name` (.csv or .parquet by its extension) into `dir`.
fn write(dir: &Path, name: &str, mut frame: DataFrame) -> String {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    if name.ends_with(".csv") {
        CsvWriter::new(file).finish(&mut frame).unwrap();
    } else {
        ParquetWriter::new(file).finish(&mut frame).unwrap();
    }
    path.display().to_string()
}

fn json_of(dir: &Path, args: &[&str]) -> Value {
    let output = bankml(dir, args);
    assert!(output.status.success(), "bankml {args:?}:\n{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&output)))
}

fn assert_close(what: &str, actual: &Value, expected: &Value, tolerance: f64) {
    let (a, e) = (
        actual
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: {actual} is not a number")),
        expected.as_f64().unwrap(),
    );
    assert!(
        (a - e).abs() <= (tolerance * e.abs()).max(1e-12),
        "{what}: {a} vs reference {e}"
    );
}

#[test]
fn classification_from_csv_and_parquet_matches_the_reference() {
    let reference = reference();
    let case = case(&reference, "classification", "imbalanced_churn_t03");
    let dir = scratch();
    for name in ["predictions.csv", "predictions.parquet"] {
        let labels: Vec<i64> = case["y_true"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let frame = df!("churned" => labels, "p_churn" => floats(&case["y_score"])).unwrap();
        let path = write(dir.path(), name, frame);
        let threshold = case["threshold"].to_string();
        let out = json_of(
            dir.path(),
            &[
                "evaluate",
                "classification",
                "--data",
                &path,
                "--target",
                "churned",
                "--prediction",
                "p_churn",
                "--threshold",
                &threshold,
            ],
        );
        for metric in [
            "roc_auc",
            "gini",
            "ks",
            "average_precision",
            "log_loss",
            "brier",
            "precision",
            "recall",
            "f1",
            "accuracy",
            "false_positive_rate",
        ] {
            assert_close(&format!("{name} {metric}"), &out[metric], &case[metric], 1e-9);
        }
        assert_eq!(out["confusion"], case["confusion"], "{name}");
    }
}

#[test]
fn regression_writes_to_out_file() {
    let reference = reference();
    let case = case(&reference, "regression", "scores_0_100");
    let dir = scratch();
    let path = write(
        dir.path(),
        "scores.parquet",
        df!("actual" => floats(&case["y_true"]), "predicted" => floats(&case["y_pred"])).unwrap(),
    );
    ok(
        dir.path(),
        &[
            "evaluate",
            "regression",
            "--data",
            &path,
            "--target",
            "actual",
            "--prediction",
            "predicted",
            "--out",
            "metrics.json",
        ],
    );
    let out: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap()).unwrap();
    for metric in ["rmse", "mae", "r2", "within_15pct", "spearman", "top10_overlap"] {
        assert_close(metric, &out[metric], &case[metric], 1e-9);
    }
}

#[test]
fn ranking_from_long_format_files_matches_the_reference() {
    let reference = reference();
    let case = case(&reference, "ranking", "random_k5");
    let dir = scratch();
    let (mut users, mut items, mut ranks) = (vec![], vec![], vec![]);
    for (user, list) in case["recommended"].as_object().unwrap() {
        for (rank, item) in strings(list).into_iter().enumerate().rev() {
            users.push(user.clone());
            items.push(item);
            ranks.push(rank as i64 + 1);
        }
    }
    let recs = write(
        dir.path(),
        "recs.csv",
        df!("user" => users, "item" => items, "rank" => ranks).unwrap(),
    );
    let (mut users, mut items) = (vec![], vec![]);
    for (user, list) in case["relevant"].as_object().unwrap() {
        for item in strings(list) {
            users.push(user.clone());
            items.push(item);
        }
    }
    let relevant = write(
        dir.path(),
        "relevant.parquet",
        df!("user" => users, "item" => items).unwrap(),
    );
    let catalog = write(
        dir.path(),
        "catalog.csv",
        df!("item" => strings(&case["catalog"])).unwrap(),
    );
    let vectors = case["item_vectors"].as_object().unwrap();
    let ids: Vec<String> = vectors.keys().cloned().collect();
    let width = vectors.values().next().unwrap().as_array().unwrap().len();
    let mut columns = vec![Column::new("item".into(), ids.clone())];
    for f in 0..width {
        columns.push(Column::new(
            format!("f{f}").into(),
            ids.iter()
                .map(|i| vectors[i][f].as_f64().unwrap())
                .collect::<Vec<f64>>(),
        ));
    }
    let features = write(dir.path(), "items.csv", DataFrame::new_infer_height(columns).unwrap());
    let k = case["k"].to_string();
    let out = json_of(
        dir.path(),
        &[
            "evaluate",
            "ranking",
            "--recommendations",
            &recs,
            "--relevant",
            &relevant,
            "--k",
            &k,
            "--catalog",
            &catalog,
            "--item-features",
            &features,
        ],
    );
    for metric in [
        "precision_at_k",
        "recall_at_k",
        "ndcg_at_k",
        "hit_rate_at_k",
        "map_at_k",
        "coverage",
        "intra_list_diversity",
    ] {
        assert_close(metric, &out[metric], &case[metric], 1e-9);
    }
}

#[test]
fn drift_of_numeric_and_text_columns_matches_the_reference() {
    let reference = reference();
    let numeric = reference["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mean_shift")
        .unwrap();
    let categorical = reference["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "categorical" && c["name"] == "tiny")
        .unwrap();
    let dir = scratch();
    let r = write(
        dir.path(),
        "reference.parquet",
        df!("income" => floats(&numeric["reference"])).unwrap(),
    );
    let c = write(
        dir.path(),
        "current.csv",
        df!("income" => floats(&numeric["current"])).unwrap(),
    );
    let out = json_of(dir.path(), &["evaluate", "drift", "--reference", &r, "--current", &c]);
    let column = &out["columns"]["income"];
    assert_eq!(column["kind"], "numeric");
    for metric in ["psi", "jensen_shannon", "ks_statistic", "wasserstein"] {
        assert_close(metric, &column[metric], &numeric[metric], 1e-9);
    }
    let p = (column["ks_pvalue"].as_f64().unwrap() - numeric["ks_pvalue"].as_f64().unwrap()).abs();
    assert!(p <= 1e-6, "ks_pvalue off by {p}");
    assert_eq!(out["dataset_drift"], Value::Bool(column["psi"].as_f64().unwrap() > 0.2));

    let r = write(
        dir.path(),
        "segments_ref.csv",
        df!("sex" => strings(&categorical["reference"])).unwrap(),
    );
    let c = write(
        dir.path(),
        "segments_cur.csv",
        df!("sex" => strings(&categorical["current"])).unwrap(),
    );
    let out = json_of(
        dir.path(),
        &[
            "evaluate",
            "drift",
            "--reference",
            &r,
            "--current",
            &c,
            "--columns",
            "sex",
        ],
    );
    let column = &out["columns"]["sex"];
    assert_eq!(column["kind"], "categorical");
    for metric in ["psi", "jensen_shannon", "chi2_statistic"] {
        assert_close(metric, &column[metric], &categorical[metric], 1e-9);
    }
    assert!((column["chi2_pvalue"].as_f64().unwrap() - categorical["chi2_pvalue"].as_f64().unwrap()).abs() <= 1e-6);
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let dir = scratch();
    let path = write(
        dir.path(),
        "p.csv",
        df!("y" => [0i64, 1, 1, 0], "p" => [0.1, 0.9, 0.8, 0.3], "name" => ["a", "b", "c", "d"]).unwrap(),
    );
    let labels = write(
        dir.path(),
        "labels.csv",
        df!("y" => [0i64, 1, 1, 2], "p" => [0.1, 0.9, 0.8, 0.3]).unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "evaluate",
                "classification",
                "--data",
                &path,
                "--target",
                "y",
                "--prediction",
                "score",
            ],
            "no column \"score\" (columns: y, p, name)",
        ),
        (
            vec![
                "evaluate",
                "classification",
                "--data",
                &labels,
                "--target",
                "y",
                "--prediction",
                "p",
            ],
            "labels.csv, line 5, column y: 2 is not a class (0 or 1)",
        ),
        (
            vec![
                "evaluate",
                "regression",
                "--data",
                &path,
                "--target",
                "y",
                "--prediction",
                "name",
            ],
            "p.csv, line 2, column name: \"a\" is not a number",
        ),
        (
            vec![
                "evaluate",
                "regression",
                "--data",
                "missing.csv",
                "--target",
                "y",
                "--prediction",
                "p",
            ],
            "missing.csv: no such file",
        ),
        (
            vec![
                "evaluate",
                "ranking",
                "--recommendations",
                &path,
                "--relevant",
                &path,
                "--k",
                "0",
            ],
            "--k must be at least 1",
        ),
    ];
    for (args, expected) in cases {
        let printed = bad_input(dir.path(), &args);
        assert!(
            printed.contains(expected),
            "{args:?}: expected «{expected}» in:\n{printed}"
        );
    }
    let single = write(
        dir.path(),
        "single.parquet",
        df!("y" => [1i64, 1, 1], "p" => [0.1, 0.9, 0.8]).unwrap(),
    );
    let printed = bad_input(
        dir.path(),
        &[
            "evaluate",
            "classification",
            "--data",
            &single,
            "--target",
            "y",
            "--prediction",
            "p",
        ],
    );
    assert!(
        printed.contains("every label is 1: ROC AUC needs both classes"),
        "{printed}"
    );
    // Accepted nonsense before: a threshold no probability reaches, a rank of -1, no rows.
    let printed = bad_input(
        dir.path(),
        &[
            "evaluate",
            "classification",
            "--data",
            &path,
            "--target",
            "y",
            "--prediction",
            "p",
            "--threshold",
            "2",
        ],
    );
    assert!(printed.contains("--threshold 2: the scores in"), "{printed}");
    std::fs::write(dir.path().join("recs.csv"), "user,item,rank\nu1,P1,1\nu1,P2,-1\n").unwrap();
    std::fs::write(dir.path().join("wanted.csv"), "user,item\nu1,P1\n").unwrap();
    let printed = bad_input(
        dir.path(),
        &[
            "evaluate",
            "ranking",
            "--recommendations",
            "recs.csv",
            "--relevant",
            "wanted.csv",
        ],
    );
    assert!(
        printed.contains("recs.csv, line 3, column rank: -1 is not a rank"),
        "{printed}"
    );
    std::fs::write(dir.path().join("empty.csv"), "y,p\n").unwrap();
    let printed = bad_input(
        dir.path(),
        &["evaluate", "drift", "--reference", &path, "--current", "empty.csv"],
    );
    assert!(printed.contains("empty.csv: no rows"), "{printed}");
    // Every bad cell by its line, also the last of a million rows; ragged rows, text that is
    // not UTF-8 and a file with only a header, each said plainly.
    let mut big = String::from("y,p\n");
    for i in 0..1_000_000 {
        big.push_str(if i % 2 == 0 { "0,0.25\n" } else { "1,0.75\n" });
    }
    big.push_str("1,0.7x\n");
    std::fs::write(dir.path().join("big.csv"), big).unwrap();
    std::fs::write(dir.path().join("ragged.csv"), "y,p\n0,0.1\n1,0.9,7\n").unwrap();
    std::fs::write(dir.path().join("latin1.csv"), b"y,p\n0,0.1\n1,0.9\xe9\n").unwrap();
    std::fs::write(dir.path().join("header.csv"), "y,p\n").unwrap();
    for (file, expected) in [
        ("big.csv", "big.csv, line 1000002, column p: \"0.7x\" is not a number"),
        ("ragged.csv", "ragged.csv, line 3: 3 fields where the header has 2"),
        (
            "latin1.csv",
            "latin1.csv, line 3, byte column 6: not UTF-8 text (byte 0xE9)",
        ),
        ("header.csv", "header.csv: no rows (only a header)"),
    ] {
        let printed = bad_input(
            dir.path(),
            &[
                "evaluate",
                "classification",
                "--data",
                file,
                "--target",
                "y",
                "--prediction",
                "p",
            ],
        );
        assert!(
            printed.contains(expected),
            "{file}: expected «{expected}» in:\n{printed}"
        );
    }
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let printed = bad_input(
        dir.path(),
        &[
            "evaluate",
            "regression",
            "--data",
            "notes.txt",
            "--target",
            "y",
            "--prediction",
            "p",
        ],
    );
    assert!(printed.contains("expected a .csv or .parquet file"), "{printed}");
    std::fs::write(dir.path().join("broken.parquet"), "not parquet").unwrap();
    let printed = bad_input(
        dir.path(),
        &[
            "evaluate",
            "regression",
            "--data",
            "broken.parquet",
            "--target",
            "y",
            "--prediction",
            "p",
        ],
    );
    assert!(
        printed.contains("broken.parquet: not a readable Parquet file"),
        "{printed}"
    );
}
