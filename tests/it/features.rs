//! Feature values on a hand-built bank, checked against numbers worked out by hand.

use crate::common::*;
use polars::prelude::*;

fn row<'a>(frame: &'a DataFrame, key: &str, value: AnyValue<'a>) -> usize {
    let column = frame.column(key).unwrap();
    (0..frame.height())
        .find(|&i| column.get(i).unwrap() == value)
        .unwrap_or_else(|| panic!("no {key} = {value}"))
}

fn int(frame: &DataFrame, column: &str, row: usize) -> Option<i64> {
    let value = frame.column(column).unwrap().get(row).unwrap();
    match value {
        AnyValue::Null => None,
        other => Some(other.try_extract::<i64>().unwrap()),
    }
}

fn float(frame: &DataFrame, column: &str, row: usize) -> f64 {
    frame
        .column(column)
        .unwrap()
        .get(row)
        .unwrap()
        .try_extract::<f64>()
        .unwrap()
}

fn close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} ≠ {expected}"
    );
}

#[test]
fn client_manager_and_agency_features_match_hand_computed_values() {
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    write_snapshot(dir.path(), "2025-06-30", &hand_built(true));
    let printed = ok(dir.path(), &["features", "--snapshot", "2025-03-31"]);
    assert!(printed.contains("churn known for 3 clients"), "{printed}");

    let out = dir.path().join("data/processed/2025-03-31");
    let clients = read_parquet(&out.join("clients.parquet"));
    assert_eq!(clients.height(), 3, "client 3 left before the snapshot and has no row");

    let c1 = row(&clients, "cli", AnyValue::Int64(1));
    close(
        float(&clients, "age_years", c1),
        14_610.0 / 365.25,
        "age of client 1 (exactly 40 years)",
    );
    close(
        float(&clients, "tenure_months", c1),
        1_826.0 / 30.4375,
        "tenure of client 1",
    );
    assert_eq!(int(&clients, "n_products_ever", c1), Some(3));
    assert_eq!(int(&clients, "n_products_active", c1), Some(3));
    assert_eq!(int(&clients, "n_categories_active", c1), Some(3));
    assert_eq!(int(&clients, "n_products_opened_90d", c1), Some(1));
    assert_eq!(int(&clients, "n_products_opened_month", c1), Some(1));
    assert_eq!(int(&clients, "n_products_closed_90d", c1), Some(0));
    assert_eq!(int(&clients, "days_since_last_opening", c1), Some(21));
    assert_eq!(int(&clients, "days_since_last_closing", c1), None);
    assert_eq!(int(&clients, "n_active_mortgages", c1), Some(1));
    close(float(&clients, "balance_total", c1), 156_000.5, "balance of client 1");
    close(float(&clients, "balance_deposits", c1), 6_000.5, "deposits of client 1");
    close(float(&clients, "balance_credit", c1), 150_000.0, "credit of client 1");
    assert_eq!(int(&clients, "logins_m0", c1), Some(14));
    close(float(&clients, "logins_avg_3m", c1), 12.0, "logins average");
    close(
        float(&clients, "logins_trend", c1),
        3.0,
        "logins trend: 14 − (12 + 10) / 2",
    );
    close(float(&clients, "transactions_avg_3m", c1), 24.0, "transactions average");
    close(
        float(&clients, "transactions_trend", c1),
        9.0,
        "transactions trend: 30 − (22 + 20) / 2",
    );
    assert_eq!(int(&clients, "complaints_3m", c1), Some(1));
    close(float(&clients, "manager_score", c1), 70.0, "manager score");
    close(float(&clients, "agency_score", c1), 60.0, "agency score");
    assert_eq!(int(&clients, "churn", c1), Some(0));

    let c2 = row(&clients, "cli", AnyValue::Int64(2));
    assert_eq!(
        int(&clients, "n_products_opened_90d", c2),
        Some(0),
        "opened exactly 90 days before: not within"
    );
    assert_eq!(int(&clients, "days_since_last_opening", c2), Some(90));
    close(float(&clients, "logins_trend", c2), -3.0, "1 − (3 + 5) / 2");
    assert_eq!(int(&clients, "complaints_3m", c2), Some(3));
    assert_eq!(
        int(&clients, "churn", c2),
        Some(1),
        "client 2 closed every product on 2025-05-01"
    );

    let c4 = row(&clients, "cli", AnyValue::Int64(4));
    assert_eq!(int(&clients, "n_products_ever", c4), Some(2));
    assert_eq!(int(&clients, "n_products_active", c4), Some(1));
    assert_eq!(int(&clients, "n_products_closed_90d", c4), Some(1));
    assert_eq!(int(&clients, "days_since_last_closing", c4), Some(70));
    assert_eq!(int(&clients, "months_with_activity", c4), Some(1));
    close(
        float(&clients, "logins_avg_3m", c4),
        7.0 / 3.0,
        "one month of logins over three",
    );
    assert_eq!(int(&clients, "churn", c4), Some(0));
    ok(dir.path(), &["features", "--snapshot", "2025-06-30"]);
    let later = read_parquet(&dir.path().join("data/processed/2025-06-30/clients.parquet"));
    assert_eq!(
        int(
            &later,
            "days_since_last_closing",
            row(&later, "cli", AnyValue::Int64(4))
        ),
        Some(90),
        "client 4's closing, 161 days before 2025-06-30, reads as the 90-day horizon"
    );

    let managers = read_parquet(&out.join("managers.parquet"));
    let g1 = row(&managers, "ges", AnyValue::String("G001"));
    assert_eq!(int(&managers, "n_clients", g1), Some(2));
    assert_eq!(int(&managers, "n_products_active", g1), Some(4));
    close(
        float(&managers, "products_per_client", g1),
        2.0,
        "products per client of G001",
    );
    assert_eq!(int(&managers, "new_products_month", g1), Some(1));
    close(
        float(&managers, "objective_attainment", g1),
        0.5,
        "1 new product against an objective of 2",
    );
    close(float(&managers, "tenure_years", g1), 3_653.0 / 365.25, "tenure of G001");
    close(
        float(&managers, "share_credit", g1),
        0.25,
        "one mortgage among four products",
    );
    close(float(&managers, "churn_rate_90d", g1), 0.0, "G001 lost nobody");
    assert_eq!(int(&managers, "agencies_covered", g1), Some(1));
    let g2 = row(&managers, "ges", AnyValue::String("G002"));
    assert_eq!(int(&managers, "n_clients", g2), Some(1));
    assert_eq!(int(&managers, "churned_clients_90d", g2), Some(1));
    close(float(&managers, "churn_rate_90d", g2), 0.5, "one of two clients left");
    assert_eq!(int(&managers, "closed_products_90d", g2), Some(1));
    close(
        float(&managers, "performance_score", g2),
        50.0,
        "target carried through",
    );

    let agencies = read_parquet(&out.join("agencies.parquet"));
    let a1 = row(&agencies, "age", AnyValue::String("AG01"));
    assert_eq!(int(&agencies, "n_clients", a1), Some(2));
    assert_eq!(int(&agencies, "n_managers", a1), Some(1));
    close(
        float(&agencies, "clients_per_manager", a1),
        2.0,
        "clients per manager of AG01",
    );
    let a2 = row(&agencies, "age", AnyValue::String("AG02"));
    close(
        float(&agencies, "churn_rate_90d", a2),
        0.5,
        "AG02 lost one of two clients",
    );
    close(float(&agencies, "performance_score", a2), 40.0, "agency target");

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["snapshot"], "2025-03-31");
    assert_eq!(manifest["churn_labelled_by"]["snapshot"], "2025-06-30");
    assert_eq!(manifest["raw_rows"]["clients"], 4);
}

#[test]
fn features_are_kept_until_an_export_changes_and_churn_follows_the_newest_snapshot() {
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    let first = ok(dir.path(), &["features"]);
    assert!(first.contains("(built,"), "{first}");
    assert!(first.contains("churn outcome not known yet"), "{first}");
    let again = ok(dir.path(), &["features"]);
    assert!(again.contains("kept (same exports, settings and build)"), "{again}");

    // A later month arrives: the kept features are read, not rebuilt, and their churn column
    // is brought up to it, on disk too.
    write_snapshot(dir.path(), "2025-06-30", &hand_built(true));
    let relabelled = ok(dir.path(), &["features", "--snapshot", "2025-03-31"]);
    assert!(relabelled.contains("kept"), "{relabelled}");
    assert!(relabelled.contains("churn known for 3 clients"), "{relabelled}");
    let clients = read_parquet(&dir.path().join("data/processed/2025-03-31/clients.parquet"));
    let c2 = row(&clients, "cli", AnyValue::Int64(2));
    assert_eq!(
        int(&clients, "churn", c2),
        Some(1),
        "client 2 closed every product on 2025-05-01"
    );

    // The bank re-exports the month with one more login for client 1: rebuilt.
    let raw = dir.path().join("data/raw/2025-03-31/activity.csv");
    let text = std::fs::read_to_string(&raw).unwrap();
    let changed = text.replacen(",14,", ",15,", 1);
    assert_ne!(text, changed, "the hand-built activity has client 1's 14 logins");
    std::fs::write(&raw, changed).unwrap();
    let rebuilt = ok(dir.path(), &["features", "--snapshot", "2025-03-31"]);
    assert!(rebuilt.contains("(built,"), "{rebuilt}");
    let clients = read_parquet(&dir.path().join("data/processed/2025-03-31/clients.parquet"));
    let c1 = row(&clients, "cli", AnyValue::Int64(1));
    assert_eq!(int(&clients, "logins_m0", c1), Some(15));
    assert_eq!(int(&clients, "churn", c1), Some(0));
}

#[test]
fn churn_is_empty_until_a_later_snapshot_reaches_the_horizon() {
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    let printed = ok(dir.path(), &["features"]);
    assert!(printed.contains("churn outcome not known yet"), "{printed}");
    let clients = read_parquet(&dir.path().join("data/processed/2025-03-31/clients.parquet"));
    assert_eq!(clients.column("churn").unwrap().null_count(), clients.height());
}

#[test]
fn column_mapping_reads_an_export_with_other_names() {
    let dir = scratch();
    let mut files = hand_built(false);
    for (name, contents) in files.iter_mut() {
        if *name == "clients.csv" || *name == "holdings.csv" || *name == "activity.csv" {
            *contents = contents.replacen("cli,", "client_id,", 1);
        }
    }
    write_snapshot(dir.path(), "2025-03-31", &files);
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let mapping = "ingest:\n  columns:\n    clients: {cli: client_id}\n    holdings: {cli: client_id}\n    activity: {cli: client_id}\n";
    std::fs::write(dir.path().join("config/bankml.yaml"), mapping).unwrap();
    ok(dir.path(), &["features"]);
    // The same export with our own names: every feature of every table arrives the same.
    let plain = scratch();
    write_snapshot(plain.path(), "2025-03-31", &hand_built(false));
    ok(plain.path(), &["features"]);
    for table in ["clients", "managers", "agencies"] {
        let file = format!("data/processed/2025-03-31/{table}.parquet");
        let mapped = read_parquet(&dir.path().join(&file));
        let expected = read_parquet(&plain.path().join(&file));
        assert!(mapped.height() > 0, "{table}");
        assert!(
            mapped.equals_missing(&expected),
            "{table}:\n{mapped:?}\nvs\n{expected:?}"
        );
    }
    let clients = read_parquet(&dir.path().join("data/processed/2025-03-31/clients.parquet"));
    // Mapped client ids joined the right holdings: client 1 holds 3 products, 2 and 4 one each.
    let mut active: Vec<(f64, f64)> = column_f64(&clients, "cli")
        .into_iter()
        .zip(column_f64(&clients, "n_products_active"))
        .collect();
    active.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(active, [(1.0, 3.0), (2.0, 1.0), (4.0, 1.0)]);
}
