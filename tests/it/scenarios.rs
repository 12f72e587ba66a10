//! Scenarios and backfill as a user runs them: `generate --scenario` plants what the file says
//! (and only that) and writes the truth beside the data; a bad file is refused with its place;
//! `backfill` replays jobs as of past snapshots through the runner, the history and the alert
//! rules, each run at its snapshot's date, with gaps recorded, and a planted break is alerted
//! on, naming its feature, in the run of the snapshot it first appears in.

use crate::common::*;
use polars::prelude::*;
use std::path::Path;

const EVENTS: &str = "\
name: test-events
description: breaks for the tests
events:
  - {kind: shift, month: 3, column: activity.logins, by: -0.5}
  - {kind: missing, month: 4, until: 5, column: clients.income_band, by: 0.8}
  - {kind: rename, month: 5, column: clients.region, from: North, to: NORTH}
  - {kind: rows, month: 6, table: activity, by: 0.5}
";

fn generate(dir: &Path, out: &str, scenario: Option<&Path>) -> String {
    let mut args = vec![
        "generate",
        "--clients",
        "2000",
        "--months",
        "6",
        "--format",
        "parquet",
        "--out",
        out,
    ];
    let text;
    if let Some(path) = scenario {
        text = path.to_str().unwrap().to_string();
        args.extend(["--scenario", text.as_str()]);
    }
    ok(dir, &args)
}

fn table(dir: &Path, out: &str, date: &str, name: &str) -> DataFrame {
    read_parquet(&dir.join(out).join(date).join(format!("{name}.parquet")))
}

#[test]
fn a_scenario_plants_its_events_from_their_month_and_writes_the_truth() {
    let scratch = scratch();
    let dir = scratch.path();
    let file = dir.join("events.yaml");
    std::fs::write(&file, EVENTS).unwrap();
    generate(dir, "plain", None);
    let printed = generate(dir, "planted", Some(&file));
    assert!(
        printed.contains("scenario test-events: 4 event(s) planted"),
        "{printed}"
    );

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("planted/scenario.json")).unwrap()).unwrap();
    let planted = truth["planted"].as_array().unwrap();
    assert_eq!(planted.len(), 4);
    assert_eq!(planted[1]["kind"], "missing");
    assert_eq!(
        planted[1]["first_snapshot"], "2025-10-31",
        "month 4 of 6 ending 2025-12-31"
    );
    assert_eq!(planted[1]["last_snapshot"], "2025-11-30");
    assert_eq!(planted[1]["names"][0], "income_band");
    assert_eq!(planted[3]["family"], "data_quality");

    // Before the first event the two banks are the same bank, byte for byte.
    for month in ["2025-07-31", "2025-08-31"] {
        for name in ["clients", "holdings", "activity", "managers"] {
            let path = |root: &str| dir.join(root).join(month).join(format!("{name}.parquet"));
            assert_eq!(
                std::fs::read(path("plain")).unwrap(),
                std::fs::read(path("planted")).unwrap(),
                "{month} {name} differs before any event"
            );
        }
    }
    // Month 3: logins halve (the simulated rate), the rest of the activity does not.
    let mean = |root: &str, date: &str, column: &str| -> f64 {
        let activity = table(dir, root, date, "activity");
        let month_start = activity.column("month").unwrap().cast(&DataType::Int32).unwrap();
        let newest = month_start.i32().unwrap().max().unwrap();
        let keep = month_start.i32().unwrap().equal(newest);
        let values = activity.filter(&keep).unwrap();
        column_f64(&values, column).iter().sum::<f64>() / values.height() as f64
    };
    let ratio = mean("planted", "2025-09-30", "logins") / mean("plain", "2025-09-30", "logins");
    assert!((ratio - 0.5).abs() < 0.08, "logins ratio {ratio}");
    let ratio = mean("planted", "2025-09-30", "transactions") / mean("plain", "2025-09-30", "transactions");
    assert!((ratio - 1.0).abs() < 0.05, "transactions moved too: {ratio}");
    // Months 4–5: income band mostly missing; month 6: back to its usual few.
    let missing = |date: &str| {
        let clients = table(dir, "planted", date, "clients");
        clients.column("income_band").unwrap().null_count() as f64 / clients.height() as f64
    };
    assert!(
        missing("2025-10-31") > 0.75 && missing("2025-11-30") > 0.75,
        "{}",
        missing("2025-10-31")
    );
    assert!(missing("2025-12-31") < 0.02, "{}", missing("2025-12-31"));
    // Month 5 on: no North, only NORTH.
    let regions = |date: &str| column_str(&table(dir, "planted", date, "clients"), "region").join(",");
    assert!(regions("2025-10-31").contains("North"));
    assert!(!regions("2025-11-30").contains("North,") && regions("2025-11-30").contains("NORTH"));
    // Month 6: half the activity rows.
    let rows = |root: &str| table(dir, root, "2025-12-31", "activity").height() as f64;
    let kept = rows("planted") / rows("plain");
    assert!((kept - 0.5).abs() < 0.05, "kept {kept} of the activity rows");
}

#[test]
fn a_control_bank_has_no_gradual_drift() {
    let scratch = scratch();
    let dir = scratch.path();
    let file = dir.join("control.yaml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/scenarios/control.yaml"),
        &file,
    )
    .unwrap();
    generate(dir, "plain", None);
    generate(dir, "control", Some(&file));
    let products = |root: &str| table(dir, root, "2025-07-31", "catalog").height();
    assert!(
        products("control") > products("plain"),
        "the steady bank has every product from the start ({} vs {})",
        products("control"),
        products("plain")
    );
    let truth = std::fs::read_to_string(dir.join("control/scenario.json")).unwrap();
    assert!(truth.contains("\"gradual_drift\": false"), "{truth}");
}

#[test]
fn a_bad_scenario_is_refused_with_its_place_and_the_choices() {
    let scratch = scratch();
    let dir = scratch.path();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "events:\n  - kind: drfit\n    month: 2\n  - kind: missing\n    month: 9\n    column: clients.incomeband\n    by: 0.5\n",
    )
    .unwrap();
    let printed = bad_input(
        dir,
        &[
            "generate",
            "--clients",
            "500",
            "--months",
            "6",
            "--scenario",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains("bad.yaml:2:11: unknown event kind \"drfit\""),
        "{printed}"
    );
    assert!(printed.contains("valid kinds: shift, scale, new_category"), "{printed}");
    assert!(
        printed.contains("bad.yaml:5:12: month 9 is not a month of this bank (1..=6"),
        "{printed}"
    );
    assert!(
        printed.contains("bad.yaml:6:13:") && printed.contains("did you mean \"clients.income_band\""),
        "{printed}"
    );
    assert!(
        !dir.join("data/raw").exists(),
        "nothing is written for a refused scenario"
    );
}

/// A project in `dir` for backfilling the shipped daily benchmark: small fast models, a webhook
/// receiver nothing listens on (backfill holds its alerts anyway) and the alert `rules` given
/// (YAML list items).
fn backfill_project(dir: &Path, rules: &str) {
    for folder in ["jobs", "config", "alerts"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/daily-benchmark.yaml"),
        dir.join("jobs/daily-benchmark.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("config/bankml.yaml"),
        "models:\n  boosting:\n    rounds: 20\n    threads: 1\nalerting:\n  receivers:\n    hook: {type: webhook, url: http://127.0.0.1:9/never}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("alerts/rules.yaml"),
        format!("defaults:\n  receivers: [hook]\nrules:\n{rules}"),
    )
    .unwrap();
}

#[test]
fn backfill_replays_past_snapshots_and_alerts_on_a_planted_break_in_its_first_run() {
    let scratch = scratch();
    let dir = scratch.path();
    backfill_project(
        dir,
        "  - name: feature_missing\n    observation: feature_missing_share_change\n    condition: \"> 0.1\"\n    severity: warning\n    summary: \"{{labels.feature}} missing\"\n",
    );
    let file = dir.join("break.yaml");
    std::fs::write(
        &file,
        "events:\n  - {kind: missing, month: 8, until: 8, column: clients.income_band, by: 0.9}\n",
    )
    .unwrap();
    let config = dir.join("config/bankml.yaml");
    let config = config.to_str().unwrap();
    ok(
        dir,
        &[
            "--config",
            config,
            "generate",
            "--clients",
            "2000",
            "--months",
            "9",
            "--format",
            "parquet",
            "--last-snapshot",
            "2025-09-30",
            "--scenario",
            file.to_str().unwrap(),
        ],
    );
    ok(
        dir,
        &[
            "--config",
            config,
            "train",
            "--model",
            "churn",
            "--snapshot",
            "2025-06-30",
        ],
    );
    // A hole in the exports: July is missing.
    std::fs::remove_dir_all(dir.join("data/raw/2025-07-31")).unwrap();

    let printed = bad_input(
        dir,
        &[
            "--config",
            config,
            "backfill",
            "--from",
            "2026-01-31",
            "--to",
            "2026-03-31",
        ],
    );
    assert!(
        printed.contains("no snapshots between 2026-01-31 and 2026-03-31"),
        "{printed}"
    );

    let printed = ok(
        dir,
        &[
            "--config",
            config,
            "backfill",
            "--from",
            "2025-06-30",
            "--to",
            "2025-09-30",
            "--jobs",
            "daily-benchmark",
        ],
    );
    assert!(printed.contains("warning: no snapshot for 2025-07-31"), "{printed}");
    assert!(
        printed.contains(
            "backfilled 3 snapshot(s) 2025-06-30 … 2025-09-30 with daily-benchmark: 3 run(s), 0 failed, 1 skipped"
        ),
        "{printed}"
    );
    assert!(printed.contains("1 alert(s) raised (held, not delivered)"), "{printed}");

    let runs = json_array(&ok(dir, &["--config", config, "runs", "--json"]));
    let backfilled: Vec<&serde_json::Value> = runs.iter().filter(|r| r["trigger"] == "backfill").collect();
    assert_eq!(backfilled.len(), 4, "three runs and the gap: {runs:?}");
    let mut scheduled: Vec<&str> = backfilled.iter().map(|r| r["scheduled_at"].as_str().unwrap()).collect();
    scheduled.sort_unstable();
    assert_eq!(
        scheduled.iter().map(|s| &s[..10]).collect::<Vec<_>>(),
        ["2025-07-01", "2025-08-01", "2025-09-01", "2025-10-01"],
        "each run at the day after its snapshot"
    );
    let gap = backfilled.iter().find(|r| r["status"] == "skipped").unwrap();
    assert!(
        gap["error"].as_str().unwrap().contains("no snapshot for 2025-07-31"),
        "{gap}"
    );
    // Each run benchmarked its own snapshot, the day before it ran.
    let snapshot_of = |scheduled: &str| match &scheduled[..10] {
        "2025-07-01" => "2025-06-30",
        "2025-09-01" => "2025-08-31",
        "2025-10-01" => "2025-09-30",
        other => panic!("unexpected run at {other}"),
    };
    for run in backfilled.iter().filter(|r| r["status"] == "succeeded") {
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(run["report_path"].as_str().unwrap())).unwrap())
                .unwrap();
        let scheduled = run["scheduled_at"].as_str().unwrap();
        assert_eq!(
            report["outcome"]["summary"]["snapshot"],
            snapshot_of(scheduled),
            "{run}"
        );
    }
    // The break, named, raised by August's run and no other; held in the outbox, not sent.
    let store = bankml::alerts::store::AlertStore::open(&dir.join("data/history.sqlite")).unwrap();
    let raised: Vec<(i64, String)> = store
        .told_after(0)
        .unwrap()
        .into_iter()
        .filter(|(_, n)| n.status == bankml::alerts::Status::Firing && !n.reminder)
        .map(|(run, n)| (run.unwrap(), n.labels["feature"].clone()))
        .collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].1, "income_band");
    let august = backfilled.iter().find(|r| r["id"] == raised[0].0).unwrap();
    assert_eq!(snapshot_of(august["scheduled_at"].as_str().unwrap()), "2025-08-31");
    let entries = store.outbox(100).unwrap();
    assert!(
        !entries.is_empty() && entries.iter().all(|e| e.status == "held"),
        "{entries:?}"
    );
}

/// The multivariate check as a user meets it: a champion trained on a steady bank keeps its
/// reference rows and a limit learned from its reference months; the month before a planted
/// change stays under the limit, the month of it goes over, the shipped `domain_drift` rule
/// fires in that run, and the report names the column that moved.
#[test]
fn the_domain_classifier_stays_quiet_on_a_steady_month_and_names_a_planted_change() {
    let scratch = scratch();
    let dir = scratch.path();
    // The shipped rule, as shipped.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/rules.yaml")).unwrap();
    let rule = shipped
        .split("\n  - name: ")
        .find(|r| r.starts_with("domain_drift\n"))
        .expect("alerts/rules.yaml ships a domain_drift rule");
    backfill_project(dir, &format!("  - name: {rule}\n"));
    let file = dir.join("change.yaml");
    std::fs::write(
        &file,
        "gradual_drift: false\nevents:\n  - {kind: shift, month: 8, column: activity.transactions, by: -0.6}\n",
    )
    .unwrap();
    let config = dir.join("config/bankml.yaml");
    let config = config.to_str().unwrap();
    let generate = [
        "--config",
        config,
        "generate",
        "--clients",
        "2000",
        "--months",
        "8",
        "--format",
        "parquet",
        "--last-snapshot",
        "2025-08-31",
        "--scenario",
        file.to_str().unwrap(),
    ];
    ok(dir, &generate);
    let train = [
        "--config",
        config,
        "train",
        "--model",
        "churn",
        "--snapshot",
        "2025-06-30",
    ];
    ok(dir, &train);
    let version = dir.join("data/models/churn/1");
    assert!(version.join("domain_sample.parquet").is_file());
    let learned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(version.join("domain.json")).unwrap()).unwrap();
    let monthly = floats(&learned["monthly_auc"]);
    assert_eq!(
        monthly.len(),
        3,
        "reference months 4–6, each against the others: {learned}"
    );
    assert!(
        monthly.iter().all(|auc| (0.4..0.6).contains(auc)),
        "steady months cannot be told apart: {monthly:?}"
    );
    let sample = read_parquet(&version.join("domain_sample.parquet"));
    assert!(sample.column("cli").is_err(), "no client ids are kept with the model");
    assert_eq!(
        sample.height(),
        3000,
        "1,000 rows of each of the three reference months"
    );

    let backfill = [
        "--config",
        config,
        "backfill",
        "--from",
        "2025-07-31",
        "--to",
        "2025-08-31",
        "--jobs",
        "daily-benchmark",
    ];
    let printed = ok(dir, &backfill);
    assert!(printed.contains("1 alert(s) raised"), "{printed}");
    let runs = json_array(&ok(dir, &["--config", config, "runs", "--json"]));
    let mut by_snapshot = std::collections::BTreeMap::new();
    for run in &runs {
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(run["report_path"].as_str().unwrap())).unwrap())
                .unwrap();
        let figure = |name: &str| {
            report["outcome"]["observations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == name && o["labels"]["model"] == "churn")
                .and_then(|o| o["value"].as_f64())
                .unwrap_or_else(|| panic!("{name} missing from {}", run["report_path"]))
        };
        let snapshot = report["outcome"]["summary"]["snapshot"].as_str().unwrap().to_string();
        let html = std::fs::read_to_string(
            dir.join(run["report_path"].as_str().unwrap())
                .with_file_name("report.html"),
        )
        .unwrap();
        by_snapshot.insert(snapshot, (figure("domain_auc"), figure("domain_auc_limit"), html));
    }
    let (july, july_limit, _) = &by_snapshot["2025-07-31"];
    assert!(
        july < july_limit,
        "a steady month stays under its limit: {july} vs {july_limit}"
    );
    let (august, august_limit, html) = &by_snapshot["2025-08-31"];
    assert!(
        august > august_limit,
        "the planted month goes over: {august} vs {august_limit}"
    );
    let named = html
        .split("It splits most on ")
        .nth(1)
        .and_then(|rest| rest.split('(').next())
        .unwrap_or_default();
    assert!(
        named.starts_with("transactions"),
        "the moved column comes first: {named:?}"
    );
}
