//! The synthetic bank: deterministic, sized as asked, refusing what Excel cannot hold, and
//! carrying the signal it documents.

use crate::common::*;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn same_seed_gives_byte_identical_files_in_every_format() {
    for format in ["xlsx", "csv", "parquet"] {
        let runs: Vec<BTreeMap<String, Vec<u8>>> = [("a", "7"), ("b", "7"), ("c", "8")]
            .iter()
            .map(|(name, seed)| {
                let dir = scratch();
                let out = dir.path().join(name);
                ok(
                    dir.path(),
                    &[
                        "generate",
                        "--clients",
                        "800",
                        "--months",
                        "3",
                        "--seed",
                        seed,
                        "--format",
                        format,
                        "--out",
                        out.to_str().unwrap(),
                    ],
                );
                let mut files = files_under(&out);
                assert!(
                    files.remove("scenario.json").is_some(),
                    "the ground truth is written beside the data"
                );
                files
            })
            .collect();
        assert_eq!(runs[0].len(), 18, "3 snapshots × 6 tables in {format}");
        assert!(runs[0].keys().all(|k| k.ends_with(format)), "{:?}", runs[0].keys());
        assert_eq!(runs[0], runs[1], "{format}: same seed, different bytes");
        assert_ne!(runs[0], runs[2], "{format}: another seed gave the same bank");
    }
}

#[test]
fn default_bank_has_the_documented_size() {
    let dir = scratch();
    let printed = ok(dir.path(), &["generate", "--format", "csv"]);
    assert!(
        printed.contains("wrote 12 snapshots (2025-01-31 … 2025-12-31)"),
        "{printed}"
    );
    let last = dir.path().join("data/raw/2025-12-31");
    let read = |name: &str| {
        CsvReadOptions::default()
            .try_into_reader_with_file_path(Some(last.join(name)))
            .unwrap()
            .finish()
            .unwrap()
    };
    let clients = read("clients.csv");
    let holdings = read("holdings.csv");
    let catalog = read("catalog.csv");
    assert_eq!(clients.height(), 20_000);
    assert!(holdings.height() >= 60_000, "{} holdings", holdings.height());
    assert!(catalog.height() >= 40);
    assert!(catalog.column("category").unwrap().n_unique().unwrap() >= 10);
    assert_eq!(read("managers.csv").height(), 100);
    assert_eq!(read("agencies.csv").height(), 20);
}

#[test]
fn xlsx_beyond_a_sheet_is_refused_before_anything_is_written() {
    let dir = scratch();
    let printed = bad_input(dir.path(), &["generate", "--clients", "1100000", "--format", "xlsx"]);
    assert!(
        printed.contains("1,100,000 clients do not fit in an Excel sheet (1,048,575 rows at most); use --format csv or --format parquet"),
        "{printed}"
    );
    let raw = dir.path().join("data/raw");
    assert!(
        !raw.exists() || std::fs::read_dir(&raw).unwrap().next().is_none(),
        "nothing may be written"
    );
}

fn mean(frame: &DataFrame, column: &str) -> f64 {
    let values = column_f64(frame, column);
    values.iter().sum::<f64>() / values.len() as f64
}

fn correlation(frame: &DataFrame, a: &str, b: &str) -> f64 {
    let (x, y) = (column_f64(frame, a), column_f64(frame, b));
    let (mx, my) = (
        x.iter().sum::<f64>() / x.len() as f64,
        y.iter().sum::<f64>() / y.len() as f64,
    );
    let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn stack(dir: &Path, name: &str) -> DataFrame {
    let mut frames = Vec::new();
    for entry in std::fs::read_dir(dir.join("data/processed"))
        .unwrap()
        .filter_map(Result::ok)
    {
        frames.push(read_parquet(&entry.path().join(name)).lazy());
    }
    concat(frames, UnionArgs::default()).unwrap().collect().unwrap()
}

#[test]
fn planted_signal_is_there() {
    let dir = scratch();
    ok(
        dir.path(),
        &["generate", "--clients", "6000", "--months", "8", "--format", "parquet"],
    );
    ok(dir.path(), &["features", "--all"]);

    // Churn: leavers log in less, complain more and hold fewer products.
    let clients = stack(dir.path(), "clients.parquet")
        .lazy()
        .filter(col("churn").is_not_null())
        .collect()
        .unwrap();
    let churned = clients
        .clone()
        .lazy()
        .filter(col("churn").eq(lit(1)))
        .collect()
        .unwrap();
    let stayed = clients
        .clone()
        .lazy()
        .filter(col("churn").eq(lit(0)))
        .collect()
        .unwrap();
    let rate = churned.height() as f64 / clients.height() as f64;
    assert!((0.01..0.12).contains(&rate), "90-day churn rate {rate}");
    let contrast = |column: &str| (mean(&churned, column), mean(&stayed, column));
    let (logins_churned, logins_stayed) = contrast("logins_avg_3m");
    assert!(
        logins_churned < 0.8 * logins_stayed,
        "logins {logins_churned} (churned) vs {logins_stayed}"
    );
    let (complaints_churned, complaints_stayed) = contrast("complaints_3m");
    assert!(
        complaints_churned > 2.0 * complaints_stayed,
        "complaints {complaints_churned} vs {complaints_stayed}"
    );
    let (products_churned, products_stayed) = contrast("n_products_active");
    assert!(
        products_churned < products_stayed,
        "products {products_churned} vs {products_stayed}"
    );
    assert!(mean(&churned, "tenure_months") < mean(&stayed, "tenure_months"));

    // Adoption: mortgage holders hold home insurance far more often than others.
    let holdings = read_parquet(&dir.path().join("data/raw/2025-12-31/holdings.parquet"));
    let holders = |product: &str| -> std::collections::HashSet<i64> {
        let ids = holdings
            .clone()
            .lazy()
            .filter(col("product_id").eq(lit(product)))
            .select([col("cli")])
            .collect()
            .unwrap();
        ids.column("cli").unwrap().i64().unwrap().into_no_null_iter().collect()
    };
    let mortgage: std::collections::HashSet<i64> = holders("P19").union(&holders("P20")).copied().collect();
    let insured = holders("P22");
    let all_clients = read_parquet(&dir.path().join("data/raw/2025-12-31/clients.parquet")).height();
    let with = mortgage.iter().filter(|c| insured.contains(c)).count() as f64 / mortgage.len() as f64;
    let without = (insured.len() - mortgage.iter().filter(|c| insured.contains(c)).count()) as f64
        / (all_clients - mortgage.len()) as f64;
    assert!(
        with > 3.0 * without,
        "home insurance: {with} with a mortgage vs {without} without"
    );

    // Performance: managers' scores follow their portfolio.
    let managers = stack(dir.path(), "managers.parquet");
    assert!(correlation(&managers, "performance_score", "objective_attainment") > 0.3);
    assert!(correlation(&managers, "performance_score", "churn_rate_90d") < -0.1);
    let agencies = stack(dir.path(), "agencies.parquet");
    assert!(correlation(&agencies, "performance_score", "churn_rate_90d") < 0.0);
}

#[test]
fn drift_flag_plants_a_sharp_change_in_the_last_month() {
    let logins = |drift: bool| -> (f64, f64) {
        let dir = scratch();
        let mut args = vec!["generate", "--clients", "3000", "--months", "3", "--format", "parquet"];
        if drift {
            args.push("--drift");
        }
        ok(dir.path(), &args);
        let activity = read_parquet(&dir.path().join("data/raw/2025-12-31/activity.parquet"));
        let by_month = |day: &str| {
            let month = activity
                .clone()
                .lazy()
                .filter(col("month").cast(DataType::String).eq(lit(day)))
                .collect()
                .unwrap();
            mean(&month, "logins")
        };
        (by_month("2025-11-01"), by_month("2025-12-01"))
    };
    let (before, last) = logins(true);
    assert!(last < 0.7 * before, "logins {before} → {last} with --drift");
    let (before, last) = logins(false);
    assert!(last > 0.85 * before, "logins {before} → {last} without --drift");
}
