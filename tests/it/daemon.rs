//! The real daemon binary, driven as ops would: first start on empty data, jobs firing every
//! few seconds, /metrics checked by promtool, reports and run history, the API with and
//! without the token, hot reload of a valid then an invalid edit, a job killed by its timeout,
//! a crash leaving a run interrupted, and SIGTERM cancelling a running job.

use crate::common;
use crate::common::{free_port, http, wait_for};
use bankml::vocab::time::parse_iso;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command};

const TOKEN: &str = "test-token-1234";

fn config(port: u16) -> String {
    format!(
        "data:\n  raw_dir: data/raw\n  reports_dir: reports\n  history: data/history.sqlite\n  jobs_dir: jobs\n\
         models:\n  dir: data/models\n  boosting:\n    rounds: 60\n    threads: 1\n\
         daemon:\n  listen: 127.0.0.1:{port}\n  api_token_env: BANKML_TEST_TOKEN\n  shutdown_grace: 2s\n  \
         reload_poll: 1s\n  bootstrap_clients: 1500\n  bootstrap_seed: 7\n  http: {{header_timeout: 1s}}\n"
    )
}

const BENCHMARK: &str = "job: benchmark\nschedule: \"*/3 * * * * *\"\ntimezone: Europe/Madrid\ntimeout: 5m\noverlap: skip\ncatch_up: none\n";
const VALIDATION: &str =
    "job: validation\nschedule: \"0 0 3 * * MON\"\ntimezone: UTC\ntimeout: 10m\nparams:\n  folds: 3\n";
const SLOW: &str = "job: retrain\nschedule: \"0 0 4 1 * *\"\ntimezone: UTC\ntimeout: 1s\nretries: {count: 0}\n";
const LONG: &str = "job: retrain\nschedule: \"0 0 4 1 * *\"\ntimezone: UTC\ntimeout: 1h\n";
/// The business job, every arm compared however small (the demo bank here has 1,500 clients,
/// so the shipped floor of 100 would publish no rate for Grafana's panels to show).
const BUSINESS: &str = "job: business\nschedule: \"0 0 6 2 * *\"\ntimezone: UTC\nparams:\n  min_clients: 1\n";
/// A daily job (by name) that last succeeded three days ago and fires once a year: late.
const LATE: &str = "job: scoring\nschedule: \"0 0 5 1 1 *\"\ntimezone: UTC\ntimeout: 5m\ncatch_up: none\n";

fn start(dir: &Path, log: &str) -> common::Running {
    common::start_daemon(dir, log, &[("BANKML_TEST_TOKEN", TOKEN.to_string())])
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn runs(address: &str, job: &str) -> Vec<Value> {
    let (status, body) = http(address, "GET", &format!("/api/v1/runs?job={job}&last=1000"), None, None);
    assert_eq!(status, 200, "{body}");
    json(&body)["runs"].as_array().cloned().unwrap_or_default()
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Child processes still running `bankml run <job> --run-id <id>`.
fn attempt_alive(job: &str, run_id: i64) -> bool {
    let id = run_id.to_string();
    std::fs::read_dir("/proc").unwrap().filter_map(Result::ok).any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        args.windows(2).any(|w| w[0] == "run" && w[1] == job)
            && args.windows(2).any(|w| w[0] == "--run-id" && w[1] == id)
    })
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

fn promtool_check(text: &str, dir: &Path) {
    let path = dir.join("metrics.txt");
    std::fs::write(&path, text).unwrap();
    let output = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .expect("promtool (Debian package prometheus; scripts/setup.sh and .ci/run install it)");
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_daemon_runs_jobs_serves_metrics_and_the_api_reloads_and_stops_cleanly() {
    let mut steps = common::Steps::new("daemon");
    let scratch = common::scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    std::fs::write(dir.join("config/bankml.yaml"), config(port)).unwrap();
    std::fs::write(dir.join("jobs/daily-benchmark.yaml"), BENCHMARK).unwrap();
    std::fs::write(dir.join("jobs/weekly-validation.yaml"), VALIDATION).unwrap();
    std::fs::write(dir.join("jobs/slow-retrain.yaml"), SLOW).unwrap();
    std::fs::write(dir.join("jobs/long-retrain.yaml"), LONG).unwrap();
    std::fs::write(dir.join("jobs/daily-export.yaml"), LATE).unwrap();
    std::fs::write(dir.join("jobs/monthly-business.yaml"), BUSINESS).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    {
        use bankml::engine::history::{RunHistory, RunState, Trigger};
        let history = RunHistory::open(&dir.join("data/history.sqlite")).unwrap();
        let then = chrono::Utc::now() - chrono::Duration::days(3);
        let id = history.start("daily-export", Trigger::Manual, None, 1, then).unwrap();
        history.finish(id, RunState::Succeeded, then, 1.0, None, None).unwrap();
    }
    let mut daemon = start(dir, "daemon.log");
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();

    steps.next("first start on empty data");
    // First start on empty data: demo bank, first champions, first benchmark, then ready.
    wait_for(300, "/readyz", || {
        let ready = common::ready(&address);
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("the daemon exited ({status}):\n{}", log());
        }
        ready.then_some(())
    });
    assert_eq!(http(&address, "GET", "/healthz", None, None).0, 200);
    // The log says where it listens and that it is ready, in plain text (a file, not a tty).
    let started = log();
    assert!(started.contains("listening") && started.contains("ready"), "{started}");
    assert!(!started.contains('\u{1b}'), "colour codes in a log file");
    let first = runs(&address, "daily-benchmark");
    assert!(
        first
            .iter()
            .any(|r| r["trigger"] == "startup" && r["status"] == "succeeded"),
        "{first:?}"
    );

    steps.next("scheduled benchmarks and their reports");
    // The every-3-seconds benchmark fires on schedule, and each run leaves a report.
    let scheduled = wait_for(60, "two scheduled benchmarks", || {
        let done: Vec<Value> = runs(&address, "daily-benchmark")
            .into_iter()
            .filter(|r| r["trigger"] == "schedule" && r["status"] == "succeeded")
            .collect();
        (done.len() >= 2).then_some(done)
    });
    for run in &scheduled {
        let report = dir.join(run["report_path"].as_str().unwrap());
        assert!(report.exists(), "{}", report.display());
        // Every 3 seconds on the second: a whole multiple of 3 s, started at or after it.
        let at = parse_iso(run["scheduled_at"].as_str().unwrap()).expect("scheduled_at is an RFC 3339 time");
        assert_eq!((at.timestamp_subsec_millis(), at.timestamp() % 3), (0, 0), "{run}");
        let started = parse_iso(run["started_at"].as_str().unwrap()).unwrap();
        assert!(started >= at, "{run}");
    }
    let (status, body) = http(
        &address,
        "GET",
        "/api/v1/reports/latest?job=daily-benchmark",
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let report = json(&body);
    let observations = report["report"]["outcome"]["observations"].as_array().unwrap();
    common::assert_catalogued(observations);
    let auc = observations
        .iter()
        .find(|o| o["name"] == "churn_auc")
        .expect("churn AUC observed")["value"]
        .as_f64()
        .unwrap();
    assert!(auc > 0.6 && auc <= 1.0, "{auc}");
    assert!(observations.iter().any(|o| o["name"] == "feature_psi"));
    assert_eq!(
        http(&address, "GET", "/api/v1/reports/latest?job=nothing", None, None).0,
        404
    );
    assert_eq!(http(&address, "GET", "/api/v1/reports/latest", None, None).0, 422);

    steps.next("metrics equal the report and pass promtool");
    // /metrics: the same figure as the report, job health, valid for promtool.
    let (status, metrics) = http(&address, "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    promtool_check(&metrics, dir);
    let exposed = metric(
        &metrics,
        "bankml_churn_auc{bankml_job=\"daily-benchmark\",model=\"churn\"}",
    )
    .expect("churn AUC gauge");
    assert!((exposed - auc).abs() < 1e-9, "metrics {exposed} vs report {auc}");
    assert!(
        metric(
            &metrics,
            "bankml_job_runs_total{bankml_job=\"daily-benchmark\",status=\"succeeded\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert!(
        metric(
            &metrics,
            "bankml_job_last_success_timestamp_seconds{bankml_job=\"daily-benchmark\"}"
        )
        .unwrap()
            > 1.7e9
    );
    let next = metric(
        &metrics,
        "bankml_job_next_run_timestamp_seconds{bankml_job=\"daily-benchmark\"}",
    )
    .expect("next run gauge");
    let now = chrono::Utc::now().timestamp() as f64;
    assert_eq!(next % 3.0, 0.0, "the next firing is on a 3-second mark: {next}");
    assert!(next > now - 30.0 && next <= now + 3.0, "next {next}, now {now}");
    assert!(metrics.contains("bankml_model_info{model=\"churn\""));
    assert!(metrics.contains("bankml_build_info{version="));
    assert!(metrics.contains("bankml_feature_psi{bankml_job=\"daily-benchmark\",feature="));

    steps.next("triggering with and without the token");
    // Triggering needs the token.
    assert_eq!(
        http(&address, "POST", "/api/v1/jobs/weekly-validation/run", None, None).0,
        401
    );
    assert_eq!(
        http(
            &address,
            "POST",
            "/api/v1/jobs/weekly-validation/run",
            Some("wrong"),
            None
        )
        .0,
        401
    );
    assert_eq!(
        http(&address, "POST", "/api/v1/jobs/no-such-job/run", Some(TOKEN), None).0,
        404
    );
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/jobs/weekly-validation/run",
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 202, "{body}");
    let validation = wait_for(180, "the triggered validation", || {
        runs(&address, "weekly-validation")
            .into_iter()
            .find(|r| r["status"] != "running")
    });
    assert_eq!(validation["status"], "succeeded", "{validation}\n{}", log());
    assert_eq!(validation["trigger"], "api");

    steps.next("a real Prometheus scrapes the daemon");
    // The shipped scrape configuration and rules, on a real Prometheus: the daemon's own job
    // label must survive the scrape (Prometheus keeps `job` for itself).
    let prometheus = crate::prometheus::start(dir, &address);
    let prometheus_log = || std::fs::read_to_string(prometheus.log(dir)).unwrap_or_default();
    wait_for(60, "two scrapes of the daemon", || {
        let samples = prometheus.query("count_over_time(up{job=\"bankml\"}[1m])");
        let up = prometheus.query("up{job=\"bankml\"} == 1");
        let scraped = samples
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok());
        (!up.is_empty() && scraped.is_some_and(|n| n >= 2.0)).then_some(())
    });
    let succeeded = prometheus.query("bankml_job_runs_total{bankml_job=\"daily-benchmark\",status=\"succeeded\"}");
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    assert!(
        prometheus.query("count({exported_job!=\"\"})").is_empty(),
        "a label was renamed by the scrape"
    );

    steps.next("a job over its timeout");
    // A job over its timeout is stopped, and its process really goes.
    // The trigger answers with the run's id and where to poll it.
    let (status, body) = http(&address, "POST", "/api/v1/jobs/slow-retrain/run", Some(TOKEN), None);
    assert_eq!(status, 202, "{body}");
    let triggered = json(&body);
    assert_eq!(triggered["poll"], "/api/v1/runs?job=slow-retrain&last=1", "{triggered}");
    let slow = wait_for(60, "the slow job's timeout", || {
        runs(&address, "slow-retrain")
            .into_iter()
            .find(|r| r["status"] != "running")
    });
    assert_eq!(slow["status"], "timed_out", "{slow}");
    assert_eq!(
        slow["id"], triggered["run_id"],
        "the id the trigger answered is the run's"
    );
    assert!(slow["error"].as_str().unwrap().contains("timed out after 1s"));
    assert!(
        !attempt_alive("slow-retrain", slow["id"].as_i64().unwrap()),
        "the timed-out attempt still runs"
    );

    steps.next("Prometheus: every shipped rule evaluates, the failure and the lateness alert");
    let rules = wait_for(30, "every rule evaluated", || {
        let groups = prometheus.api("rules")["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let rules: Vec<Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules
            .iter()
            .all(|r| !r["lastEvaluation"].as_str().unwrap_or("0001").starts_with("0001"))
            .then_some(rules)
    });
    assert!(rules.len() >= 17, "{} rules loaded", rules.len());
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}\n{}", prometheus_log());
    }
    let failed = wait_for(30, "job_failed firing", || {
        prometheus.alert("job_failed", "slow-retrain", "firing")
    });
    // bankml's own job_failed carries exactly these labels: with both paths pointed at one
    // Alertmanager, the same failure is one alert.
    let labels: Vec<&String> = failed["labels"].as_object().unwrap().keys().collect();
    assert_eq!(labels, ["alertname", "bankml_job", "severity"], "{failed}");
    assert!(
        failed["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("slow-retrain failed or timed out"),
        "{failed}"
    );
    // `for: 10m`: pending is as far as a test goes; the expression matched the late job only.
    let late = wait_for(30, "job_late pending", || {
        prometheus.alert("job_late", "daily-export", "pending")
    });
    assert!(
        late["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("daily-export"),
        "{late}"
    );
    for state in ["pending", "firing"] {
        let benchmark = prometheus.alert("job_late", "daily-benchmark", state);
        assert!(benchmark.is_none(), "the benchmark ran seconds ago: {benchmark:?}");
    }

    steps.next("Prometheus: every dashboard query answers, with data where this daemon has it");
    // Series this daemon cannot have yet, and why; every other query must return data.
    const NOT_HERE: [(&str, &str); 7] = [
        (
            "bankml_churn_realized_auc",
            "needs a scored snapshot whose 90 days have passed (scenarios.rs backfills one)",
        ),
        ("bankml_churn_cohort_estimate_error", "the same"),
        ("bankml_alerts", "this daemon has no alert rules (alerts.rs has)"),
        ("bankml_notifications", "nor receivers (alerts.rs has)"),
        (
            "bankml_scored_clients",
            "no scoring job runs here (jobs.rs and scenarios.rs run them)",
        ),
        ("bankml_churn_risk_clients", "the same"),
        (
            "bankml_retrain_",
            "the retraining here times out by design (jobs.rs retrains)",
        ),
    ];
    let mut empty = Vec::new();
    for (panel, expr) in crate::prometheus::dashboard_queries() {
        let excused = NOT_HERE.iter().any(|(metric, _)| expr.contains(metric));
        if prometheus.query(&expr).is_empty() && !excused {
            empty.push(format!("{panel}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data:\n{}",
        empty.join("\n")
    );
    drop(prometheus);

    steps.next("the prediction API");
    // The prediction API.
    let (status, body) = http(
        &address,
        "GET",
        "/api/v1/predict/all-clients-churn?page=1&page_size=5",
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let page = json(&body);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let top = page["items"][0]["client_id"].as_i64().unwrap();
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some(&format!("{{\"client_id\": {top}}}")),
    );
    assert_eq!(status, 200, "{body}");
    let prediction = json(&body);
    assert_eq!(prediction["churn_probability"], page["items"][0]["churn_probability"]);
    assert_eq!(prediction["risk_level"], "High");
    assert!(
        !prediction["recommended_actions"].as_array().unwrap().is_empty(),
        "{prediction}"
    );
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"client_id\": \"abc\"}"),
    );
    assert_eq!(status, 422);
    assert_eq!(json(&body)["error"]["field"], "client_id");
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"features\": {\"no_such\": 1}}"),
    );
    assert_eq!(status, 422);
    assert_eq!(json(&body)["error"]["field"], "features.no_such");
    // A value XGBoost's 32-bit floats cannot hold is named, not a 500 from inside XGBoost.
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"features\": {\"tenure_months\": 1e300}}"),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(json(&body)["error"]["field"], "features.tenure_months");
    // No feature at all: refused, not a confident answer about nobody.
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"features\": {}}"),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(json(&body)["error"]["field"], "features");
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenure_months"),
        "{body}"
    );
    // Some features: answered, the others named as missing.
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"features\": {\"tenure_months\": 12, \"complaints_3m\": 2, \"sex\": \"F\"}}"),
    );
    assert_eq!(status, 200, "{body}");
    let missing: Vec<String> = json(&body)["missing_features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(missing.contains(&"age_years".to_string()), "{missing:?}");
    assert!(!missing.contains(&"tenure_months".to_string()), "{missing:?}");
    // Categories named as a request names them, not as the model's one-hot columns.
    assert!(
        missing.contains(&"segment".to_string()) && !missing.contains(&"sex".to_string()),
        "{missing:?}"
    );
    assert!(!missing.iter().any(|m| m.contains('=')), "{missing:?}");
    assert_eq!(
        prediction["missing_features"],
        serde_json::json!([]),
        "looked up by id: nothing missing"
    );
    assert_eq!(
        http(&address, "POST", "/api/v1/predict/churn", None, Some("{not json")).0,
        422
    );
    assert_eq!(
        http(
            &address,
            "POST",
            "/api/v1/predict/churn",
            None,
            Some("{\"client_id\": 1}")
        )
        .0,
        404
    );
    let (status, body) = http(
        &address,
        "GET",
        &format!("/api/v1/recommend/products/{top}?n_recommendations=3"),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let recommended = json(&body);
    assert_eq!(recommended["recommendations"].as_array().unwrap().len(), 3);
    // Whom to target with that client's first recommendation: most likely first, each with
    // the product's place in their own list; the asked-about client is a candidate too.
    let product = recommended["recommendations"][0]["product_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = http(
        &address,
        "GET",
        &format!("/api/v1/recommend/clients/{product}?n=25"),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let targets = json(&body);
    let clients = targets["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 25, "{body}");
    let scores: Vec<f64> = clients.iter().map(|c| c["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(
        clients.iter().all(|c| c["rank_for_client"].as_u64().unwrap() >= 1),
        "{body}"
    );
    assert!(targets["candidates"].as_u64().unwrap() >= 25, "{body}");
    let (status, body) = http(&address, "GET", "/api/v1/recommend/clients/P999", None, None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("P01"), "the known products are listed: {body}");
    assert_eq!(
        http(
            &address,
            "GET",
            &format!("/api/v1/recommend/clients/{product}?n=lots"),
            None,
            None
        )
        .0,
        422
    );
    // The demo bank ran campaigns; the first start measured them.
    let (status, body) = http(&address, "GET", "/api/v1/campaigns", None, None);
    assert_eq!(status, 200, "{body}");
    let campaigns = json(&body);
    let listed = campaigns["campaigns"].as_array().unwrap();
    let offer = listed
        .iter()
        .find(|c| c["kind"] == "offer" && c["matured"] == true)
        .unwrap_or_else(|| panic!("a complete offer campaign: {body}"));
    let (status, body) = http(&address, "GET", offer["url"].as_str().unwrap(), None, None);
    assert_eq!(status, 200, "{body}");
    let campaign = json(&body);
    assert_eq!(campaign["campaign"]["campaign"], offer["id"]);
    let arms = campaign["campaign"]["arms"].as_array().unwrap();
    assert!(
        arms.iter()
            .any(|a| a["arm"] == "champion" && a["conversion"]["interval"]["low"].is_number()),
        "{body}"
    );
    assert_eq!(
        http(&address, "GET", "/api/v1/campaigns/upsell-2025-01-31", None, None).0,
        422
    );
    let (status, body) = http(&address, "GET", "/api/v1/campaigns/offer-1999-01-31", None, None);
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains(offer["id"].as_str().unwrap()),
        "the known campaigns are listed: {body}"
    );
    let (status, body) = http(&address, "GET", "/api/v1/predict/all-managers", None, None);
    assert_eq!(status, 200);
    let managers = json(&body);
    let manager = managers["items"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/manager-performance",
        None,
        Some(&format!("{{\"manager_id\": \"{manager}\"}}")),
    );
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["predicted_score"], managers["items"][0]["predicted_score"]);
    // The best predicted manager: its chance against the objective, support only if below it.
    let objective = &answer["objective"];
    let chance = objective["meets_objective_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&chance), "{answer}");
    assert_eq!(
        objective["below_objective"].as_bool().unwrap(),
        !objective["support"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    let (status, body) = http(&address, "GET", "/api/v1/predict/all-agencies", None, None);
    assert_eq!(status, 200, "{body}");
    let agencies = json(&body);
    let agency = agencies["items"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/agency-performance",
        None,
        Some(&format!("{{\"agency_id\": \"{agency}\"}}")),
    );
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["agency_id"], agency.as_str());
    assert_eq!(answer["predicted_score"], agencies["items"][0]["predicted_score"]);
    let score = answer["predicted_score"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&score), "{score}");
    assert_eq!(
        http(
            &address,
            "POST",
            "/api/v1/predict/agency-performance",
            None,
            Some("{\"agency_id\": \"NOPE\"}")
        )
        .0,
        404
    );
    // The seed system's own requests: flat bodies with its field names.
    let post = |path: &str, body: String| {
        let (status, answer) = http(&address, "POST", path, None, Some(&body));
        assert_eq!(status, 200, "{path} {body}: {answer}");
        json(&answer)
    };
    let looked_up = post(
        "/api/v1/predict/manager-performance",
        format!("{{\"ges\": \"{manager}\"}}"),
    );
    assert_eq!(looked_up["predicted_score"], managers["items"][0]["predicted_score"]);
    let seeded = post(
        "/api/v1/predict/manager-performance",
        format!("{{\"ges\": \"{manager}\", \"total_clients\": 45}}"),
    );
    // An id with values: a what-if about that manager (its own features, n_clients replaced),
    // not an unknown one wearing its id.
    assert_eq!(seeded["manager_id"], manager.as_str());
    assert_eq!(seeded["base"], "known", "{seeded}");
    assert_eq!(seeded["missing_features"], serde_json::json!([]), "{seeded}");
    let stranger = post(
        "/api/v1/predict/manager-performance",
        "{\"ges\": \"G999\", \"total_clients\": 45}".to_string(),
    );
    assert_eq!(stranger["base"], "unknown_id", "{stranger}");
    let missing = stranger["missing_features"].as_array().unwrap();
    assert!(
        !missing.contains(&Value::from("n_clients")) && missing.contains(&Value::from("balance_total")),
        "total_clients is read as n_clients: {stranger}"
    );
    let by_seed = post(
        "/api/v1/predict/agency-performance",
        format!("{{\"age\": \"{agency}\"}}"),
    );
    assert_eq!(by_seed["predicted_score"], agencies["items"][0]["predicted_score"]);
    let client = post("/api/v1/predict/churn", format!("{{\"cli\": {top}}}"));
    assert_eq!(client["churn_probability"], prediction["churn_probability"]);
    let described = post(
        "/api/v1/predict/churn",
        format!("{{\"cli\": {top}, \"sex\": \"F\", \"age\": 45, \"client_seniority_days\": 800}}"),
    );
    assert_eq!(described["client_id"], top);
    assert_eq!(described["base"], "known", "{described}");
    assert_eq!(described["missing_features"], serde_json::json!([]), "{described}");
    let (status, body) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"cli\": 1, \"no_such\": 2}"),
    );
    assert_eq!(
        (status, json(&body)["error"]["field"].as_str()),
        (422, Some("no_such")),
        "{body}"
    );
    assert_eq!(http(&address, "GET", "/api/v1/analytics/summary", None, None).0, 200);
    let (status, body) = http(&address, "GET", "/api/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    let openapi = json(&body);
    for path in [
        "/api/v1/predict/churn",
        "/api/v1/predict/manager-performance",
        "/api/v1/predict/agency-performance",
        "/api/v1/recommend/products/{client_id}",
        "/api/v1/recommend/clients/{product_id}",
        "/api/v1/campaigns",
        "/api/v1/campaigns/{id}",
        "/api/v1/predict/all-clients-churn",
        "/api/v1/jobs/{name}/run",
        "/api/v1/reload",
        "/metrics",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }

    steps.next("the console and /docs in Chromium");
    // What a person opening the daemon sees, rendered by a real browser from this daemon's data.
    let page = |path: &str| {
        let rendered = common::chromium(&["--dump-dom"], &format!("http://{address}{path}"), dir);
        assert!(
            rendered.console_errors().is_empty(),
            "{path}: {:?}",
            rendered.console_errors()
        );
        assert!(
            rendered.dom.contains("</body>"),
            "{path} did not render:\n{}",
            rendered.log
        );
        rendered.dom
    };
    // The newest finished benchmark, asked before the page (one runs every 3 seconds).
    let benchmark_run = runs(&address, "daily-benchmark")
        .iter()
        .find(|r| r["status"] == "succeeded")
        .and_then(|r| r["id"].as_i64())
        .unwrap();
    let overview = page("/");
    for job in ["daily-benchmark", "weekly-validation", "slow-retrain"] {
        assert!(overview.contains(&format!("<b>{job}</b>")), "job {job} missing from /");
    }
    assert!(
        overview.contains("<tr class=\"model\"><td><b>churn</b></td><td>v1</td>"),
        "the churn champion"
    );
    assert!(
        overview.contains("class=\"drift\""),
        "drift per feature over the benchmark runs"
    );
    assert!(
        overview.contains(&format!("/reports/daily-benchmark/{benchmark_run}/report.html")),
        "the newest benchmark's report is linked"
    );
    assert!(
        overview.contains("<section id=\"campaigns\">") && overview.contains("class=\"campaign\""),
        "the newest campaigns, from the business run of the first start"
    );
    let client = page(&format!("/console/clients?id={top}"));
    assert!(
        client.contains("<b class=\"High\" id=\"risk\">High</b>"),
        "risk as the API says"
    );
    let first_reason = prediction["reasons"][0].as_str().unwrap();
    assert!(
        client.contains(&format!("<ol id=\"reasons\"><li>{first_reason}</li>")),
        "the client's own reasons"
    );
    assert!(client.contains("<table id=\"products\">"), "products to offer");
    let ranked = page("/console/managers");
    assert!(
        ranked.contains(&format!("<td>1</td><td><b>{manager}</b></td>")),
        "best manager first"
    );
    // Support where the API says a manager is below the objective (60).
    let needing: Vec<&Value> = managers["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["objective"]["below_objective"] == true)
        .collect();
    assert!(!needing.is_empty(), "the demo bank has managers predicted below 60");
    for m in &needing {
        let programme = m["objective"]["support"][0].as_str().unwrap();
        assert!(ranked.contains(programme), "{programme} shown for {}", m["id"]);
    }
    let driver = managers["items"][0]["drivers"][0]["feature"].as_str().unwrap();
    assert!(ranked.contains(driver), "drivers of each score");
    let what_if = page("/console/what-if?model=churn&tenure_months=12&complaints_3m=2&sex=F");
    let (_, answer) = http(
        &address,
        "POST",
        "/api/v1/predict/churn",
        None,
        Some("{\"features\": {\"tenure_months\": 12, \"complaints_3m\": 2, \"sex\": \"F\"}}"),
    );
    let risk = json(&answer)["risk_level"].as_str().unwrap().to_string();
    assert!(
        what_if.contains(&format!("<b class=\"{risk}\">{risk}</b>")),
        "the what-if form answers as the API"
    );
    // Starting from a real manager asks about that one: the ranking's own score comes back.
    let from = page(&format!("/console/what-if?model=manager&from={manager}"));
    let own = managers["items"][0]["predicted_score"].as_f64().unwrap();
    assert!(
        from.contains(&format!("predicted score<b>{own:.1}</b>")),
        "what-if from {manager} answers its ranking score {own:.1}"
    );
    let lost = page("/no/such/page");
    assert!(lost.contains("<h1>Not found</h1>"), "a browser gets a page, not JSON");
    let unseen = page("/console/what-if?model=churn&tenure_months=12&segment=Nobody");
    assert!(
        unseen.contains("not a category the model knows"),
        "an unseen category is refused"
    );
    let docs = page("/docs");
    for (path, methods) in openapi["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let slug: String = path
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let anchor = format!("{method}{}", slug.trim_end_matches('-'));
            assert!(
                docs.contains(&format!("id=\"{anchor}\"")),
                "/docs misses {method} {path}"
            );
        }
    }
    assert!(docs.contains("id=\"schema-ChurnFeatures\"") && docs.contains("<code>tenure_months</code>"));
    let index = page("/reports/");
    let link = format!("daily-benchmark/{benchmark_run}/report.html");
    assert!(index.contains(&link), "the index links each run");
    assert_eq!(http(&address, "GET", &format!("/reports/{link}"), None, None).0, 200);
    for (name, size) in [("console.png", "1300,2000"), ("console-phone.png", "390,844")] {
        let png = dir.join(name);
        let screenshot = format!("--screenshot={}", png.display());
        let window = format!("--window-size={size}");
        common::chromium(&[&screenshot, &window], &format!("http://{address}/"), dir);
        let bytes = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(bytes > 10_000, "{name}: {bytes} bytes");
        if let Ok(keep) = std::env::var("BANKML_KEEP_SCREENSHOTS") {
            std::fs::copy(&png, std::path::Path::new(&keep).join(name)).unwrap();
        }
    }

    steps.next("slow, idle and oversized clients");
    // A client that never finishes its headers, and one idle after its request, are closed
    // after daemon.http.header_timeout (1 s here); a head over max_header_bytes gets 431.
    {
        use std::io::{Read, Write};
        let closed_within = |stream: &mut std::net::TcpStream| {
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(8)))
                .unwrap();
            let started = std::time::Instant::now();
            let mut buffer = Vec::new();
            let read = stream.read_to_end(&mut buffer);
            (
                read.is_ok(),
                started.elapsed(),
                String::from_utf8_lossy(&buffer).to_string(),
            )
        };
        let mut slow = std::net::TcpStream::connect(&address).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let (closed, after, _) = closed_within(&mut slow);
        assert!(
            closed && after < std::time::Duration::from_secs(6),
            "a slow client held the connection for {after:?}"
        );
        let mut idle = std::net::TcpStream::connect(&address).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (closed, after, answered) = closed_within(&mut idle);
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        assert!(
            closed && after < std::time::Duration::from_secs(6),
            "an idle connection stayed open {after:?}"
        );
        let mut oversized = std::net::TcpStream::connect(&address).unwrap();
        let padding = "a".repeat(200 * 1024);
        let _ = oversized.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}\r\n\r\n").as_bytes());
        let (_, _, answered) = closed_within(&mut oversized);
        assert!(
            answered.starts_with("HTTP/1.1 431"),
            "a 200 KB header: {}",
            answered.lines().next().unwrap_or("nothing")
        );
    }
    let (status, body) = {
        let client = reqwest::blocking::Client::new();
        let response = client
            .post(format!("http://{address}/api/v1/predict/churn"))
            .header("content-type", "text/plain")
            .body("{\"client_id\": 1}")
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    assert_eq!(
        (status, json(&body)["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    steps.next("hot reload of a valid edit");
    // Hot reload: a valid edit takes effect without a restart...
    let schedule_of = |name: &str| -> String {
        let (_, body) = http(&address, "GET", "/api/v1/jobs", None, None);
        json(&body)["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .map(|j| j["schedule"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    std::fs::write(
        dir.join("jobs/daily-benchmark.yaml"),
        BENCHMARK.replace("*/3 * * * * *", "*/4 * * * * *"),
    )
    .unwrap();
    wait_for(30, "the valid edit", || {
        (schedule_of("daily-benchmark") == "*/4 * * * * *").then_some(())
    });
    steps.next("hot reload of an invalid edit");
    // ...an invalid one is refused with its place, counted, and the running schedule stays.
    std::fs::write(
        dir.join("jobs/daily-benchmark.yaml"),
        BENCHMARK.replace("*/3 * * * * *", "*/4 * * * 99 *"),
    )
    .unwrap();
    let metrics = wait_for(30, "the refused reload", || {
        let (_, text) = http(&address, "GET", "/metrics", None, None);
        metric(&text, "bankml_config_reloads_total{result=\"failure\"}")
            .filter(|v| *v >= 1.0)
            .map(|_| text)
    });
    assert!(metric(&metrics, "bankml_config_reloads_total{result=\"success\"}").unwrap() >= 2.0);
    assert!(
        log().contains("daily-benchmark.yaml:2:"),
        "the log names file:line:\n{}",
        log()
    );
    assert_eq!(schedule_of("daily-benchmark"), "*/4 * * * * *");
    let (status, body) = http(&address, "POST", "/api/v1/reload", Some(TOKEN), None);
    assert_eq!(status, 422);
    assert!(body.contains("daily-benchmark.yaml:2:"), "{body}");
    assert_eq!(http(&address, "POST", "/api/v1/reload", None, None).0, 401);
    let before = runs(&address, "daily-benchmark").len();
    wait_for(30, "benchmarks still running on the old schedule", || {
        (runs(&address, "daily-benchmark").len() > before).then_some(())
    });

    steps.next("a crash mid-run");
    // A crash mid-run: the attempt dies with the daemon and the next start marks it interrupted.
    assert_eq!(
        http(&address, "POST", "/api/v1/jobs/long-retrain/run", Some(TOKEN), None).0,
        202
    );
    let running = wait_for(30, "the long retraining to start", || {
        runs(&address, "long-retrain")
            .into_iter()
            .find(|r| r["status"] == "running")
    });
    signal(&daemon, libc::SIGKILL);
    daemon.wait().unwrap();
    let crashed = running["id"].as_i64().unwrap();
    wait_for(10, "the orphaned attempt to die", || {
        (!attempt_alive("long-retrain", crashed)).then_some(())
    });
    std::fs::write(dir.join("jobs/daily-benchmark.yaml"), BENCHMARK).unwrap();
    let mut daemon = start(dir, "daemon2.log");
    wait_for(120, "the restarted daemon", || {
        (std::net::TcpStream::connect(&address).is_ok() && http(&address, "GET", "/readyz", None, None).0 == 200)
            .then_some(())
    });
    let after = runs(&address, "long-retrain");
    let record = after.iter().find(|r| r["id"] == crashed).unwrap();
    assert_eq!(record["status"], "interrupted", "{record}");

    steps.next("SIGTERM with a job running");
    // SIGTERM with a job running: it is cancelled and recorded, and the daemon exits cleanly.
    assert_eq!(
        http(&address, "POST", "/api/v1/jobs/long-retrain/run", Some(TOKEN), None).0,
        202
    );
    let running = wait_for(30, "the long retraining to start again", || {
        runs(&address, "long-retrain")
            .into_iter()
            .find(|r| r["status"] == "running")
    });
    signal(&daemon, libc::SIGTERM);
    let status = wait_for(30, "the daemon to stop", || daemon.try_wait().unwrap());
    assert!(status.success(), "exit status {status}");
    let output = common::ok(
        dir,
        &[
            "--config",
            "config/bankml.yaml",
            "runs",
            "--job",
            "long-retrain",
            "--json",
        ],
    );
    let recorded = common::json_array(&output);
    let record = recorded.iter().find(|r| r["id"] == running["id"]).unwrap();
    assert_eq!(record["status"], "cancelled", "{record}");
    assert!(!attempt_alive("long-retrain", running["id"].as_i64().unwrap()));
    assert!(
        std::fs::read_to_string(dir.join("daemon2.log"))
            .unwrap()
            .contains("SIGTERM")
    );
}

#[test]
fn the_daemon_refuses_to_start_on_invalid_job_or_rule_files_naming_each_place() {
    let scratch = common::scratch();
    let dir = scratch.path();
    for sub in ["config", "jobs", "alerts"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("config/bankml.yaml"), config(free_port())).unwrap();
    std::fs::write(
        dir.join("jobs/daily-benchmark.yaml"),
        "job: benchmark\nschedule: \"0 2 * * *\"\ntimezone: Europe/Madird\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("alerts/rules.yaml"),
        "rules:\n  - name: x\n    observation: churn_auc\n    condition: \"below 0.8\"\n    severity: critical\n    summary: s\n",
    )
    .unwrap();
    let output = common::bad_input(dir, &["--config", "config/bankml.yaml", "daemon"]);
    assert!(output.contains("jobs/daily-benchmark.yaml:3:11: timezone"), "{output}");
    assert!(output.contains("alerts/rules.yaml:4:16: condition"), "{output}");
    assert!(!dir.join("data").exists(), "nothing was started or written");
}
