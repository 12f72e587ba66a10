//! The evaluating jobs as `bankml run JOB` runs them in the foreground: the retraining promotes
//! a clearly better challenger (and says why), keeps the champion against an equal one, the
//! validation tests champion against challenger, and every run lands in the history.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

// One stump: what a real forest must beat clearly (DeLong at 5 %) on a 3,000-client holdout.
const WEAK: &str =
    "models:\n  boosting:\n    rounds: 1\n    max_depth: 1\n    early_stopping_rounds: 0\n    threads: 1\n";
const STRONG: &str = "models:\n  boosting:\n    rounds: 80\n    threads: 1\n";

fn observation(report: &Value, name: &str, model: &str) -> f64 {
    report["outcome"]["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name && o["labels"]["model"] == model)
        .unwrap_or_else(|| panic!("{name}{{model={model}}} not observed"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn retraining_promotes_only_a_better_challenger_and_validation_compares_them() {
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("jobs/monthly-retrain.yaml"),
        "job: retrain\nschedule: \"0 4 1 * *\"\nparams:\n  models: [churn, manager]\n  min_improvement: 0.005\n  alpha: 0.05\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("jobs/weekly-validation.yaml"),
        "job: validation\nschedule: \"0 3 * * MON\"\nparams:\n  models: [churn, manager]\n  folds: 3\n",
    )
    .unwrap();
    let config = dir.join("config/bankml.yaml");
    let config_arg = config.to_str().unwrap();
    ok(
        dir,
        // Ten months: churn trains on months 1–4 (5 and 6 share the holdout's 90-day outcome
        // window and are purged) and is judged on month 7.
        &["generate", "--clients", "3000", "--months", "10", "--format", "parquet"],
    );
    std::fs::write(&config, WEAK).unwrap();
    ok(dir, &["--config", config_arg, "train", "--model", "churn"]);
    ok(dir, &["--config", config_arg, "train", "--model", "manager"]);

    // A stump forest against a real one: promoted, with the figures and the test in the reason.
    std::fs::write(&config, STRONG).unwrap();
    let printed = ok(dir, &["--config", config_arg, "run", "monthly-retrain"]);
    let first = printed_report(dir, &printed);
    let churn = &first["outcome"]["summary"]["churn"];
    assert_eq!(churn["promoted"], true, "{churn}");
    assert!(churn["reason"].as_str().unwrap().contains("p = "), "{churn}");
    assert_eq!(churn["comparison"]["test"], "DeLong");
    let (a, b) = (
        churn["comparison"]["champion"].as_f64().unwrap(),
        churn["comparison"]["challenger"].as_f64().unwrap(),
    );
    assert!(b > a * 1.005, "challenger AUC {b} vs champion {a}");
    assert_eq!(observation(&first, "retrain_promoted", "churn"), 1.0);
    let manager = &first["outcome"]["summary"]["manager"];
    assert_eq!(manager["comparison"]["test"], "paired bootstrap");
    assert_eq!(manager["promoted"], true, "{manager}");
    assert_eq!(first["models"]["churn"], 2, "the new champion");

    // The same recipe on the same data: an equal challenger, so the champion stays.
    let printed = ok(dir, &["--config", config_arg, "run", "monthly-retrain"]);
    let second = printed_report(dir, &printed);
    let churn = &second["outcome"]["summary"]["churn"];
    assert_eq!(churn["promoted"], false, "{churn}");
    assert!(
        churn["reason"].as_str().unwrap().starts_with("kept champion v2"),
        "{churn}"
    );
    assert_eq!(observation(&second, "retrain_promoted", "churn"), 0.0);
    assert_eq!(second["models"]["churn"], 2);

    // Validation: cross-validation of the champion, and champion v2 against challenger v3 —
    // the same model, so no difference and nothing significant.
    let printed = ok(dir, &["--config", config_arg, "run", "weekly-validation"]);
    let validation = printed_report(dir, &printed);
    let churn = &validation["outcome"]["summary"]["churn"];
    assert_eq!(churn["challenger"]["version"], 3);
    assert_eq!(observation(&validation, "challenger_difference", "churn"), 0.0);
    assert_eq!(observation(&validation, "challenger_p_value", "churn"), 1.0);
    let cv_auc = churn["cross_validation"]["roc_auc"]["mean"].as_f64().unwrap();
    assert!(cv_auc > 0.7 && cv_auc < 1.0, "{cv_auc}");
    let manager_rmse = observation(&validation, "cv_metric_mean", "manager");
    assert!(manager_rmse > 0.0 && manager_rmse < 30.0, "{manager_rmse}");

    // A second validation compares with the first.
    let printed = ok(dir, &["--config", config_arg, "run", "weekly-validation"]);
    let again = printed_report(dir, &printed);
    assert_eq!(
        observation(&again, "cv_metric_change", "churn"),
        0.0,
        "same data, same folds"
    );

    // Every run is in the history, triggered by hand.
    let listed = ok(dir, &["--config", config_arg, "runs", "--json"]);
    let runs = json_array(&listed);
    assert_eq!(runs.len(), 4);
    assert!(
        runs.iter()
            .all(|r| r["trigger"] == "manual" && r["status"] == "succeeded")
    );

    let refused = bad_input(dir, &["--config", config_arg, "run", "no-such-job"]);
    assert!(refused.contains("monthly-retrain, weekly-validation"), "{refused}");

    // `bankml runs | head -1`: the reader has gone before the listing is written. The
    // listing ends as `ls` would (SIGPIPE), not with a panic's backtrace and exit code 101.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_bankml"))
        .args(["--config", config_arg, "runs"])
        .current_dir(dir)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&piped.stderr);
    assert!(!said.contains("panicked"), "{said}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(piped.status.signal(), Some(libc::SIGPIPE), "{:?}: {said}", piped.status);
}

/// Realized performance per prediction cohort: the predictions the scoring job stored for a
/// snapshot are scored once its outcome is known. With the champion unchanged they are the
/// champion's own predictions on that snapshot, so their AUC is the benchmark's realized AUC;
/// and the estimate their calibrated rates give is the CBPE estimate the benchmark published
/// for that snapshot when it was the latest.
#[test]
fn stored_predictions_are_scored_once_their_outcome_is_known() {
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    for job in ["daily-benchmark", "daily-scoring"] {
        let shipped =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("jobs/{job}.yaml"))).unwrap();
        // A bank of 3,000 clients has no region with 200 clients who opened a product; every one has 10.
        let shipped = shipped.replace("group_min_clients: 200", "group_min_clients: 10");
        std::fs::write(dir.join(format!("jobs/{job}.yaml")), shipped).unwrap();
    }
    let config = dir.join("config/bankml.yaml");
    std::fs::write(&config, "models:\n  boosting:\n    rounds: 30\n    threads: 1\n").unwrap();
    let config = config.to_str().unwrap();
    let generate = [
        "--config",
        config,
        "generate",
        "--clients",
        "3000",
        "--months",
        "10",
        "--format",
        "parquet",
        "--last-snapshot",
        "2025-12-31",
    ];
    ok(dir, &generate);
    let train_churn_on = |snapshot: &str| {
        let train = ["--config", config, "train", "--model", "churn", "--snapshot", snapshot];
        ok(dir, &train)
    };
    train_churn_on("2025-09-30");
    ok(dir, &["--config", config, "train", "--model", "recommender"]);
    // September as the bank lived it: scored, and benchmarked (its outcome still unknown).
    let backfill = [
        "--config",
        config,
        "backfill",
        "--from",
        "2025-09-30",
        "--to",
        "2025-09-30",
        "--jobs",
        "daily-scoring,daily-benchmark",
    ];
    ok(dir, &backfill);
    // The scoring report: clients per risk level and the retention list, riskiest first.
    let scoring_line = latest_report_line(dir, "daily-scoring");
    let scoring = printed_report(dir, &scoring_line);
    let listed = scoring["outcome"]["summary"]["clients"]["top_at_risk"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed.len(), 10);
    let rates: Vec<f64> = listed.iter().map(|c| c["churn_rate"].as_f64().unwrap()).collect();
    assert!(rates.windows(2).all(|w| w[0] >= w[1]), "{rates:?}");
    let scored = read_parquet(&dir.join("data/scores/2025-09-30/clients.parquet"));
    let highest = column_f64(&scored, "churn_rate").into_iter().fold(f64::MIN, f64::max);
    assert_eq!(rates[0], highest, "the list starts with the riskiest client");
    let html_path = dir
        .join(scoring_line.trim_start_matches("report: "))
        .with_file_name("report.html");
    let html = std::fs::read_to_string(html_path).unwrap();
    assert!(
        html.contains("id=\"risk-levels\"") && html.contains("Most likely to leave"),
        "{html}"
    );
    assert!(
        html.contains(&listed[0]["client_id"].to_string()),
        "the riskiest client is listed"
    );

    let september = printed_report(dir, &latest_report_line(dir, "daily-benchmark"));
    assert_eq!(september["outcome"]["summary"]["snapshot"], "2025-09-30");
    let estimated_then = observation(&september, "churn_estimated_auc", "churn");
    // December: September's 90 days have passed. Its features kept first (as the daily
    // scoring would), so the benchmark reads only what it needs of December's exports.
    ok(dir, &["--config", config, "features"]);
    let printed = ok(dir, &["--config", config, "run", "daily-benchmark"]);
    let december = printed_report(dir, &printed);
    // Every table's rows counted as exported, the ones it did not read again included.
    let counted = &december["outcome"]["summary"]["table_rows"]["rows"];
    for table in ["clients", "holdings", "catalog", "managers", "agencies", "activity"] {
        let exported = read_parquet(&dir.join(format!("data/raw/2025-12-31/{table}.parquet"))).height();
        assert_eq!(counted[table].as_u64(), Some(exported as u64), "{table}: {counted}");
    }
    let churn = &december["outcome"]["summary"]["churn"];
    assert_eq!(churn["evaluated_snapshot"], "2025-09-30", "{churn}");
    let cohort = december["outcome"]["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "churn_realized_auc")
        .unwrap_or_else(|| panic!("no churn_realized_auc in {december}"));
    assert_eq!(cohort["labels"]["cohort"], "2025-09-30");
    assert_eq!(cohort["labels"]["version"], "1");
    let realized = cohort["value"].as_f64().unwrap();
    let benchmark_auc = observation(&december, "churn_auc", "churn");
    assert!(
        (realized - benchmark_auc).abs() < 1e-12,
        "stored predictions {realized} vs the champion today {benchmark_auc}"
    );
    let error = december["outcome"]["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "churn_cohort_estimate_error")
        .and_then(|o| o["value"].as_f64())
        .unwrap();
    assert!(
        (realized + error - estimated_then).abs() < 1e-9,
        "the stored rates' estimate {} vs September's CBPE {estimated_then}",
        realized + error
    );
    // By group: the client segments large enough (10 clients here, 20 of each outcome) are measured
    // on the matured snapshot and published one series per group. September's benchmark, the
    // version's first, measured June: its figures became the groups' baselines, untested, and
    // were kept with the version. December's are tested against them.
    let first = september["outcome"]["summary"]["segments"].as_array().unwrap();
    let first_churn: Vec<&Value> = first.iter().filter(|f| f["model"] == "churn").collect();
    assert!(!first_churn.is_empty(), "{first:?}");
    let kept: Value =
        serde_json::from_slice(&std::fs::read(dir.join("data/models/churn/1/groups.json")).unwrap()).unwrap();
    let kept = kept["groups"].as_array().unwrap();
    // A group measured first in December (it grew past 20 of each outcome) got its baseline then.
    assert!(kept.len() >= first_churn.len(), "{kept:?}");
    for later in &kept[first_churn.len()..] {
        assert_eq!(later["at"]["snapshot"], "2025-09-30", "{later}");
    }
    for (figure, kept) in first_churn.iter().zip(kept) {
        assert!(figure["baseline"].is_null(), "{figure}");
        assert_eq!(
            (
                figure["p_value"].as_f64(),
                figure["worse"].as_bool(),
                figure["tested"].as_bool()
            ),
            (Some(1.0), Some(false), Some(false)),
            "{figure}"
        );
        assert_eq!(kept["segment"], figure["segment"]);
        assert_eq!(kept["at"]["snapshot"], "2025-06-30", "{kept}");
        for measured in ["rows", "value", "overall", "standard_error"] {
            assert_eq!(kept["at"][measured], figure[measured], "{measured}: {kept} {figure}");
        }
    }
    let segments = december["outcome"]["summary"]["segments"].as_array().unwrap();
    let churn_groups: Vec<&Value> = segments.iter().filter(|f| f["model"] == "churn").collect();
    assert!(churn_groups.iter().any(|f| f["dimension"] == "segment"), "{segments:?}");
    for figure in &churn_groups {
        assert!(figure["rows"].as_u64().unwrap() >= 10, "{figure}");
        assert_eq!(figure["overall"].as_f64().unwrap(), benchmark_auc, "{figure}");
        assert!(figure["standard_error"].as_f64().unwrap() > 0.0, "{figure}");
        let Some(then) = first_churn
            .iter()
            .find(|f| f["dimension"] == figure["dimension"] && f["segment"] == figure["segment"])
        else {
            assert!(figure["baseline"].is_null(), "a group first measured now: {figure}");
            continue;
        };
        assert_eq!(figure["baseline"]["value"], then["value"], "{figure}");
        assert_eq!(figure["tested"], true, "{figure}");
        let adjusted = figure["adjusted_p_value"].as_f64().unwrap();
        assert!(adjusted >= figure["p_value"].as_f64().unwrap() - 1e-15, "{figure}");
        assert_eq!(figure["worse"].as_bool().unwrap(), adjusted < 0.05, "{figure}");
    }
    let published: Vec<&Value> = december["outcome"]["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "segment_metric")
        .collect();
    let headline = published.iter().filter(|o| {
        matches!(
            o["labels"]["metric"].as_str(),
            Some("roc_auc" | "rmse" | "precision_at_k")
        )
    });
    assert_eq!(headline.count(), segments.len());
    // The recommender by group too: precision at k of the clients who opened something, each
    // group's figures the mean of its clients' (so the groups of one dimension weighted by
    // their clients give back the overall figure).
    let recommender = &december["outcome"]["summary"]["recommender"]["metrics"];
    let overall = recommender["precision_at_k"].as_f64().unwrap();
    let by_region: Vec<&Value> = segments
        .iter()
        .filter(|f| f["model"] == "recommender" && f["dimension"] == "region")
        .collect();
    assert!(by_region.len() >= 2, "{recommender} {segments:?}");
    let mut weighted = 0.0;
    for figure in &by_region {
        assert_eq!(figure["metric"], "precision_at_k");
        assert_eq!(figure["overall"].as_f64().unwrap(), overall, "{figure}");
        assert!(figure["rows"].as_u64().unwrap() >= 10, "{figure}");
        assert!(figure["other"]["ndcg_at_k"].is_number(), "{figure}");
        weighted += figure["value"].as_f64().unwrap() * figure["rows"].as_f64().unwrap();
    }
    let measured: u64 = by_region.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    // Every region of this bank has 10 such clients, so all of them are measured.
    assert_eq!(measured, recommender["users"].as_u64().unwrap());
    assert!(
        (weighted / measured as f64 - overall).abs() < 1e-12,
        "{weighted} {overall}"
    );
    // The other metrics of each churn group beside its AUC (shown, not tested).
    for figure in &churn_groups {
        let other = &figure["other"];
        for metric in ["average_precision", "precision", "recall", "positive_rate"] {
            assert!(other[metric].is_number(), "{metric} missing: {figure}");
        }
        let rate = other["positive_rate"].as_f64().unwrap();
        assert!(rate * figure["rows"].as_f64().unwrap() >= 20.0 - 1e-9, "{figure}");
    }
    assert_eq!(churn["cohort"]["rows"].as_u64().unwrap() as f64, {
        let clients = read_parquet(&dir.join("data/scores/2025-09-30/clients.parquet"));
        clients.height() as f64
    });

    // Nothing kept: the benchmark builds both snapshots' features itself — December's first,
    // then September's beside only the holders and dates of December's holdings, December's
    // clients, holdings and catalog read again — and measures the same figures as from the
    // kept features.
    std::fs::remove_dir_all(dir.join("data/processed")).unwrap();
    let rebuilt = printed_report(dir, &ok(dir, &["--config", config, "run", "daily-benchmark"]));
    for section in ["churn", "manager", "agency", "recommender", "region_spread"] {
        let (cold, kept) = (
            &rebuilt["outcome"]["summary"][section],
            &december["outcome"]["summary"][section],
        );
        assert_eq!(cold, kept, "{section}");
    }
    // The same figures by group. A group December measured first is now tested against
    // December's own figure: the same data, so its share of the whole is what it was (p = ½).
    // (The adjusted p-values may move: more groups are tested.)
    let rebuilt_segments = rebuilt["outcome"]["summary"]["segments"].as_array().unwrap();
    assert_eq!(rebuilt_segments.len(), segments.len());
    let mut first_measured_in_december = 0;
    for (cold, kept) in rebuilt_segments.iter().zip(segments) {
        for measured in [
            "model",
            "dimension",
            "segment",
            "rows",
            "value",
            "overall",
            "standard_error",
            "other",
        ] {
            assert_eq!(cold[measured], kept[measured], "{measured}: {cold} {kept}");
        }
        if kept["baseline"].is_null() {
            first_measured_in_december += 1;
            // Churn is measured on the matured snapshot, the recommender on the latest.
            let measured_on = if cold["model"] == "churn" {
                "2025-09-30"
            } else {
                "2025-12-31"
            };
            assert_eq!(cold["baseline"]["snapshot"], measured_on, "{cold}");
            assert_eq!(cold["baseline"]["value"], kept["value"], "{cold}");
            assert_eq!(cold["p_value"].as_f64(), Some(0.5), "{cold}");
        } else {
            assert_eq!(
                (&cold["baseline"], &cold["p_value"]),
                (&kept["baseline"], &kept["p_value"])
            );
        }
    }
    assert!(first_measured_in_december > 0, "the p = ½ case was met");
    for measured in ["churn", "recommender", "segments"] {
        assert!(
            !december["outcome"]["summary"][measured].is_null(),
            "{measured} measured"
        );
    }
    assert!(dir.join("data/processed/2025-09-30/clients.parquet").is_file());
    assert!(dir.join("data/processed/2025-12-31/clients.parquet").is_file());

    // A new champion: September's cohort was still scored by version 1, so its realized
    // figures no longer come from the benchmark's own ranking (version 2 predicts September
    // now) but from the stored file joined to the outcome — and are the same numbers.
    train_churn_on("2025-10-31");
    ok(dir, &["--config", config, "models", "promote", "churn", "2"]);
    let promoted = printed_report(dir, &ok(dir, &["--config", config, "run", "daily-benchmark"]));
    let cohort = &promoted["outcome"]["summary"]["churn"]["cohort"];
    assert_eq!(cohort["version"], 1, "{cohort}");
    assert_eq!(cohort["realized_auc"].as_f64(), Some(realized), "{cohort}");
    assert_eq!(cohort, &december["outcome"]["summary"]["churn"]["cohort"]);
    assert_ne!(
        observation(&promoted, "churn_auc", "churn"),
        benchmark_auc,
        "version 2 measured on September"
    );
}

/// `report: PATH` for the newest report of `job`, as `bankml run` prints it.
fn latest_report_line(dir: &Path, job: &str) -> String {
    let newest = std::fs::read_dir(dir.join("reports").join(job))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    format!("report: reports/{job}/{newest}/report.json")
}

/// One runner per job across processes: `bankml run` refuses while another live process (the
/// daemon) holds the job, names it, records the refusal, and with `--wait` runs once it is gone.
#[test]
fn a_job_held_by_another_process_is_refused_by_name_or_waited_for() {
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::write(dir.join("config/bankml.yaml"), "daemon:\n  bootstrap_clients: 0\n").unwrap();
    std::fs::write(
        dir.join("jobs/daily-benchmark.yaml"),
        "job: benchmark\nschedule: \"0 0 2 * * *\"\ntimezone: UTC\nretries: {count: 0}\n",
    )
    .unwrap();
    let history = dir.join("data/history.sqlite");
    drop(bankml::engine::history::RunHistory::open(&history).unwrap());
    let mut holder = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    bankml::engine::history::connect(&history)
        .unwrap()
        .execute(
            "INSERT INTO job_locks (job, pid, since) VALUES ('daily-benchmark', ?1, '2026-12-05T02:00:00Z')",
            [holder.id()],
        )
        .unwrap();
    let output = bankml(dir, &["run", "daily-benchmark"]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "already running in another process: pid {} (sleep 60)",
            holder.id()
        )) && said.contains("--wait"),
        "{said}"
    );
    let runs = ok(dir, &["runs", "--job", "daily-benchmark", "--json"]);
    assert!(
        runs.contains("\"skipped\"") && runs.contains("already running"),
        "{runs}"
    );

    let waiting = std::process::Command::new(env!("CARGO_BIN_EXE_bankml"))
        .args(["run", "daily-benchmark", "--wait"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let finished = waiting.wait_with_output().unwrap();
    let said = text(&finished);
    assert!(said.contains("waiting for daily-benchmark"), "{said}");
    // It ran (and failed: this project has no data), rather than being refused again.
    assert!(!said.contains("not run:"), "{said}");
    let runs = ok(dir, &["runs", "--job", "daily-benchmark", "--json"]);
    assert!(runs.contains("\"failed\""), "{runs}");
}

/// A manager the export gives no score for (the column is optional) is scored and left out of
/// the metrics, as training leaves it out — the whole benchmark used to fail on it ("target at
/// position 0 is NaN") and lose the churn, drift and recommender figures with it.
#[test]
fn a_manager_without_a_score_is_left_out_of_the_metrics_not_the_run() {
    use polars::prelude::*;
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    // Shipped, but without its retries: a failure fails the test at once, not in 15 minutes.
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/daily-benchmark.yaml")).unwrap();
    assert!(shipped.contains("retries: {count: 2, backoff: 5m}"));
    let once = shipped.replace("retries: {count: 2, backoff: 5m}", "retries: {count: 0}");
    std::fs::write(dir.join("jobs/daily-benchmark.yaml"), once).unwrap();
    let config = dir.join("config/bankml.yaml");
    std::fs::write(&config, "models:\n  boosting:\n    rounds: 20\n    threads: 1\n").unwrap();
    let config = config.to_str().unwrap();
    ok(
        dir,
        &["generate", "--clients", "1200", "--months", "5", "--format", "parquet"],
    );
    ok(dir, &["--config", config, "train", "--model", "manager"]);
    let latest = std::fs::read_dir(dir.join("data/raw"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .max()
        .unwrap();
    let path = latest.join("managers.parquet");
    let mut managers = read_parquet(&path);
    let count = managers.height();
    let blanked: Vec<Option<f64>> = column_f64(&managers, "performance_score")
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i != 3).then_some(v))
        .collect();
    managers
        .with_column(Column::new("performance_score".into(), blanked))
        .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut managers)
        .unwrap();

    let printed = ok(dir, &["--config", config, "run", "daily-benchmark"]);
    let report = printed_report(dir, &printed);
    let manager = &report["outcome"]["summary"]["manager"];
    assert_eq!(manager["without_score"], 1, "{manager}");
    assert_eq!(
        manager["actual_vs_predicted"].as_array().unwrap().len(),
        count - 1,
        "{manager}"
    );
    assert!(
        manager["metrics"]["rmse"].as_f64().is_some_and(f64::is_finite),
        "{manager}"
    );
}
