//! Alerts end to end with real peers: an SMTP server that is not ours (aiosmtpd), a local HTTP
//! receiver standing in for Slack (checking the Block Kit payload, down for a while, then
//! rate-limiting with Retry-After), a generic webhook, and a real Alertmanager. The daemon is
//! killed with notifications pending and restarted: every alert still arrives, exactly once.
//! Also: resolved notices, silences over the API, the HTML report in headless Chromium, the
//! runs index, the Grafana dashboard's queries and the Prometheus rules.

use crate::common;
use crate::common::{free_port, http, ready, wait_for};
use bankml::vocab::time::parse_iso;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "alerts-token-SENTINEL-51c9";
/// The secret part of the Slack webhook URL: like the token, it must never reach a file.
const SLACK_SECRET: &str = "SENTINEL-slack-7f3a";

/// How the Slack stand-in (and the webhook beside it) answers: 0 = 503 (down), 1 = Slack gets
/// one 429 with Retry-After: 1, then 200; 2 = 200.
struct Receiver {
    mode: Arc<AtomicU8>,
    /// (path, body, status answered)
    received: Arc<Mutex<Vec<(String, Value, u16)>>>,
}

/// The Slack stand-in and the webhook: a small axum server on `port`, in its own thread.
fn start_receiver(port: u16) -> Receiver {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let mode = Arc::new(AtomicU8::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (m, r) = (mode.clone(), received.clone());
    let answer = move |uri: Uri, body: axum::body::Bytes| {
        let (m, r) = (m.clone(), r.clone());
        async move {
            let path = uri.path().to_string();
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut headers = HeaderMap::new();
            let status = match m.load(Ordering::SeqCst) {
                0 => StatusCode::SERVICE_UNAVAILABLE,
                1 if !path.starts_with("/slack") => StatusCode::OK,
                1 => {
                    m.store(2, Ordering::SeqCst);
                    headers.insert("retry-after", "1".parse().unwrap());
                    StatusCode::TOO_MANY_REQUESTS
                }
                _ => StatusCode::OK,
            };
            r.lock().unwrap().push((path, value, status.as_u16()));
            (status, headers, "ok")
        }
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(answer);
            axum::serve(listener, app).await.unwrap();
        });
    });
    Receiver { mode, received }
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_smtp(port: u16, maildir: &Path) -> Peer {
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with aiosmtpd (pip install aiosmtpd; scripts/setup.sh --tests installs it)");
    wait_for(30, "the SMTP server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Peer(child)
}

fn start_alertmanager(port: u16, dir: &Path) -> Peer {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let binary = ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("Alertmanager (Debian package prometheus-alertmanager; scripts/setup.sh --tests installs it)");
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}");
    wait_for(30, "Alertmanager", || {
        (std::net::TcpStream::connect(&address).is_ok() && http(&address, "GET", "/-/ready", None, None).0 == 200)
            .then_some(())
    });
    Peer(child)
}

fn config(port: u16, slack: u16, smtp: u16, alertmanager: u16) -> String {
    format!(
        "data:\n  raw_dir: data/raw\n  reports_dir: reports\n  history: data/history.sqlite\n  jobs_dir: jobs\n  alerts_dir: alerts\n\
         models:\n  dir: data/models\n  boosting:\n    rounds: 60\n    threads: 1\n\
         daemon:\n  listen: 127.0.0.1:{port}\n  api_token_env: BANKML_TEST_TOKEN\n  shutdown_grace: 2s\n  reload_poll: 1s\n  bootstrap_clients: 1500\n\
         alerting:\n  report_base_url: http://127.0.0.1:{port}\n  max_backoff: 2s\n  alertmanager_resend: 1s\n  receivers:\n\
         \x20   slack: {{type: slack, webhook_url_env: BANKML_TEST_SLACK}}\n\
         \x20   hook: {{type: webhook, url: \"http://127.0.0.1:{slack}/hook\"}}\n\
         \x20   email: {{type: email, host: 127.0.0.1, port: {smtp}, security: none, from: bankml@example.com, to: [risk@example.com]}}\n\
         \x20   alertmanager: {{type: alertmanager, url: \"http://127.0.0.1:{alertmanager}\"}}\n"
    )
}

fn rules(threshold: &str) -> String {
    format!(
        "defaults:\n  receivers: [slack, hook, email, alertmanager]\n  repeat_interval: 24h\nrules:\n\
         \x20 - name: churn_auc_watch\n    observation: churn_auc\n    labels: {{model: churn}}\n    condition: \"< {threshold}\"\n\
         \x20   severity: critical\n    summary: \"Churn AUC {{{{value}}}} below {{{{threshold}}}} (v{{{{version}}}})\"\n\
         \x20   description: \"Report: {{{{report_url}}}}\"\n"
    )
}

fn start_daemon(dir: &Path, log: &str, slack: u16) -> common::Running {
    common::start_daemon(
        dir,
        log,
        &[
            ("BANKML_TEST_TOKEN", TOKEN.to_string()),
            (
                "BANKML_TEST_SLACK",
                format!("http://127.0.0.1:{slack}/slack/T000/B000/{SLACK_SECRET}"),
            ),
        ],
    )
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Messages (`(rule, status)` of each alert) the Slack stand-in accepted with 200.
fn accepted(receiver: &Receiver, path: &str) -> Vec<(String, String, Value)> {
    receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, s)| p.starts_with(path) && *s == 200)
        .flat_map(|(_, body, _)| {
            let text = body["text"].as_str().unwrap_or("").to_string();
            let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
            if alerts.is_empty() {
                // Slack: the fallback text names the state and rule.
                let state = if text.contains("RESOLVED") {
                    "resolved"
                } else {
                    "firing"
                };
                vec![("churn_auc_watch".to_string(), state.to_string(), body.clone())]
            } else {
                alerts
                    .iter()
                    .map(|a| {
                        (
                            a["rule"].as_str().unwrap_or("").to_string(),
                            a["status"].as_str().unwrap_or("").to_string(),
                            body.clone(),
                        )
                    })
                    .collect()
            }
        })
        .collect()
}

fn emails(maildir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
            for e in entries.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

#[test]
fn alerts_reach_every_receiver_exactly_once_across_outages_and_restarts() {
    let mut steps = common::Steps::new("alerts");
    let scratch = common::scratch();
    let dir = scratch.path();
    // aiosmtpd's Mailbox handler writes a Maildir: it needs its three folders.
    for sub in ["config", "jobs", "alerts", "maildir/tmp", "maildir/new", "maildir/cur"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let (port, slack_port, smtp_port, am_port) = (free_port(), free_port(), free_port(), free_port());
    let address = format!("127.0.0.1:{port}");
    let slack = start_receiver(slack_port);
    let _smtp = start_smtp(smtp_port, &dir.join("maildir"));
    let _alertmanager = start_alertmanager(am_port, dir);
    std::fs::write(
        dir.join("config/bankml.yaml"),
        config(port, slack_port, smtp_port, am_port),
    )
    .unwrap();
    std::fs::write(
        dir.join("jobs/daily-benchmark.yaml"),
        "job: benchmark\nschedule: \"*/3 * * * * *\"\ncatch_up: none\n",
    )
    .unwrap();
    std::fs::write(dir.join("alerts/rules.yaml"), rules("0.999")).unwrap();
    let check = common::ok(dir, &["--config", "config/bankml.yaml", "validate-config"]);
    assert!(check.contains("rules.yaml: ok — 1 rule(s)"), "{check}");

    steps.next("first alert while Slack is down");
    // The Slack stand-in and the webhook answer 503: the alert waits in the outbox.
    let mut daemon = start_daemon(dir, "daemon1.log", slack_port);
    let log1 = || std::fs::read_to_string(dir.join("daemon1.log")).unwrap_or_default();
    wait_for(300, "the first start", || {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("the daemon exited ({status}):\n{}", log1());
        }
        ready(&address).then_some(())
    });
    wait_for(60, "failed attempts at Slack", || {
        let (_, text) = http(&address, "GET", "/metrics", None, None);
        (metric(
            &text,
            "bankml_notifications_total{receiver=\"slack\",result=\"failed\"}",
        ) >= 2.0)
            .then_some(())
    });
    steps.next("email and Alertmanager delivered");
    // Email and Alertmanager were up: delivered once already.
    let mails = wait_for(30, "the email", || {
        let m = emails(&dir.join("maildir"));
        (!m.is_empty()).then_some(m)
    });
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: [FIRING: 1] bankml daily-benchmark") && mail.contains("churn_auc_watch"),
        "{mail}"
    );
    assert!(
        mail.contains("multipart/alternative") && mail.contains("text/plain") && mail.contains("text/html"),
        "{mail}"
    );
    assert!(
        !log1().contains(SLACK_SECRET),
        "the Slack webhook URL leaked into the log"
    );
    let am = format!("127.0.0.1:{am_port}");
    let (_, body) = http(&am, "GET", "/api/v2/alerts", None, None);
    let am_alerts: Value = serde_json::from_str(&body).unwrap();
    assert!(
        am_alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "churn_auc_watch"
                && a["labels"]["severity"] == "critical"
                && a["labels"]["model"] == "churn"),
        "{body}"
    );

    steps.next("Alertmanager keeps the alert past its first endsAt");
    // Alertmanager forgets an alert at its endsAt unless the client sends it again: bankml
    // re-sends every firing alert each `alertmanager_resend` (1 s here, endsAt 4 s ahead).
    let active_at_am = |name: &str| -> Option<Value> {
        let (_, body) = http(&am, "GET", "/api/v2/alerts?active=true", None, None);
        let alerts: Value = serde_json::from_str(&body).ok()?;
        alerts
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["status"]["state"] == "active")
            .cloned()
    };
    let first = active_at_am("churn_auc_watch").expect("active at Alertmanager");
    let first_end = parse_iso(first["endsAt"].as_str().unwrap()).unwrap();
    while chrono::Utc::now() < first_end + chrono::Duration::seconds(3) {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let later = active_at_am("churn_auc_watch").expect("still active past its first endsAt");
    assert!(
        parse_iso(later["endsAt"].as_str().unwrap()).unwrap() > first_end,
        "{first} then {later}"
    );

    steps.next("killed with notifications pending");
    // Killed with the Slack and webhook notifications pending...
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGKILL) };
    daemon.wait().unwrap();
    assert!(accepted(&slack, "/slack").is_empty());
    steps.next("restart: pending alerts delivered once");
    // ...the receivers come back (Slack first rate-limits once), the daemon restarts.
    slack.mode.store(1, Ordering::SeqCst);
    let mut daemon = start_daemon(dir, "daemon2.log", slack_port);
    wait_for(120, "the restart", || ready(&address).then_some(()));
    wait_for(60, "Slack and the webhook to get the pending alert", || {
        (accepted(&slack, "/slack").len() == 1 && accepted(&slack, "/hook").len() == 1).then_some(())
    });
    let received = slack.received.lock().unwrap().clone();
    assert!(
        received.iter().any(|(p, _, s)| p.starts_with("/slack") && *s == 429),
        "the 429 was tried"
    );
    steps.next("deduplicated over later runs");
    // Several benchmarks later: still exactly one firing message per receiver (deduplicated).
    let benchmarks = || {
        let printed = common::ok(
            dir,
            &[
                "--config",
                "config/bankml.yaml",
                "runs",
                "--job",
                "daily-benchmark",
                "--last",
                "1000",
                "--json",
            ],
        );
        common::json_array(&printed).len()
    };
    let before = benchmarks();
    wait_for(60, "more benchmarks", || (benchmarks() >= before + 2).then_some(()));
    assert_eq!(accepted(&slack, "/slack").len(), 1);
    assert_eq!(accepted(&slack, "/hook").len(), 1);
    assert_eq!(emails(&dir.join("maildir")).len(), 1);

    steps.next("the Slack payload");
    // The Slack payload: Block Kit with a header, fields and a link, and a text fallback.
    let slack_body = accepted(&slack, "/slack")[0].2.clone();
    let blocks = slack_body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("FIRING"));
    assert_eq!(blocks[1]["type"], "section");
    assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("churn_auc_watch"));
    assert_eq!(blocks[1]["fields"].as_array().unwrap().len(), 4);
    let link = blocks.last().unwrap()["elements"][0]["url"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/reports/daily-benchmark/")),
        "{link}"
    );
    assert!(slack_body["text"].as_str().unwrap().contains("Churn AUC"));
    std::fs::write(
        dir.join("slack-payload.json"),
        serde_json::to_string_pretty(&slack_body).unwrap(),
    )
    .unwrap();
    let hook = &accepted(&slack, "/hook")[0].2;
    assert_eq!(hook["receiver"], "hook");
    assert_eq!(hook["alerts"][0]["labels"]["model"], "churn");

    steps.next("the report in Chromium");
    // The linked report is served, and renders in a real browser with its charts.
    let path = link.trim_start_matches(&format!("http://127.0.0.1:{port}"));
    let (status, html) = http(&address, "GET", path, None, None);
    assert_eq!(status, 200);
    assert!(html.contains("<svg id=\"roc-curve\""));
    let report = dir.join(
        path.trim_start_matches("/reports/")
            .replace('/', std::path::MAIN_SEPARATOR_STR),
    );
    let report = dir.join("reports").join(report.strip_prefix(dir).unwrap());
    assert!(report.exists(), "{}", report.display());
    let dom = common::chromium(&["--dump-dom"], &format!("file://{}", report.display()), dir).dom;
    for id in [
        "roc-curve",
        "pr-curve",
        "calibration",
        "confusion-matrix",
        "importance-churn",
        "predicted-vs-actual-manager",
        "predicted-vs-actual-agency",
        "trend-churn_auc",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "chart {id} missing from the rendered page"
        );
    }
    assert!(dom.contains("<polyline"), "the curves have lines");
    // The figure the firing rule watches shows the rule, its condition and the breach.
    let figures = &dom[dom.find("id=\"figures\"").expect("a figures table")..];
    let watched = &figures[figures.find("churn_auc_watch").expect("the rule beside its figure")..];
    assert!(
        watched[..watched.find("</tr>").unwrap()].contains("class=\"breach\""),
        "{}",
        &watched[..watched.find("</tr>").unwrap()]
    );
    let png = dir.join("report.png");
    let screenshot = format!("--screenshot={}", png.display());
    common::chromium(
        &[&screenshot, "--window-size=1300,2400"],
        &format!("file://{}", report.display()),
        dir,
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot of {size} bytes");
    let index = std::fs::read_to_string(dir.join("reports/index.html")).unwrap();
    assert!(
        index.contains("churn_auc_watch (firing)") && index.contains("class=\"succeeded\""),
        "{index}"
    );

    steps.next("silences");
    // Silences over the API need the token; a silenced rule is tracked, not told.
    let silence = "{\"rule\": \"churn_auc_watch\", \"for\": \"2h\", \"comment\": \"known\"}";
    assert_eq!(
        http(&address, "POST", "/api/v1/alerts/silences", None, Some(silence)).0,
        401
    );
    assert_eq!(
        http(&address, "POST", "/api/v1/alerts/silences", Some(TOKEN), Some(silence)).0,
        201
    );
    // A misspelled rule would silence nothing: refused, with the rule meant.
    let typo = "{\"rule\": \"churn_auc_wach\", \"for\": \"2h\"}";
    let (status, body) = http(&address, "POST", "/api/v1/alerts/silences", Some(TOKEN), Some(typo));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("did you mean churn_auc_watch?"), "{body}");
    let refused = common::bad_input(
        dir,
        &[
            "--config",
            "config/bankml.yaml",
            "alerts",
            "silence",
            "churn_auc_wach",
            "--for",
            "1h",
        ],
    );
    assert!(
        refused.contains("no rule named churn_auc_wach (did you mean churn_auc_watch?)"),
        "{refused}"
    );
    let listed = common::ok(dir, &["--config", "config/bankml.yaml", "alerts", "list"]);
    assert!(!listed.contains("churn_auc_wach"), "{listed}");
    assert!(
        listed.contains("firing") && listed.contains("silenced  churn_auc_watch"),
        "{listed}"
    );

    steps.next("resolution while silenced");
    // The rule edited so the figure no longer breaches: resolved (silenced: not told)...
    std::fs::write(dir.join("alerts/rules.yaml"), rules("0.01")).unwrap();
    wait_for(60, "the alert to resolve", || {
        let (_, body) = http(&address, "GET", "/api/v1/alerts", None, None);
        let v: Value = serde_json::from_str(&body).ok()?;
        v["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["rule"] == "churn_auc_watch" && a["state"] == "inactive")
            .then_some(())
    });
    assert_eq!(accepted(&slack, "/slack").len(), 1, "silenced: nothing more sent");
    steps.next("resolution told to everyone");
    // ...and without the silence, a resolution is told to everyone. (A second rule name
    // avoids the silence.)
    std::fs::write(
        dir.join("alerts/rules.yaml"),
        rules("0.999").replace("churn_auc_watch", "churn_auc_guard"),
    )
    .unwrap();
    wait_for(60, "the new rule to fire", || {
        accepted(&slack, "/slack").len().eq(&2).then_some(())
    });
    wait_for(30, "the new rule at Alertmanager", || active_at_am("churn_auc_guard"));
    std::fs::write(
        dir.join("alerts/rules.yaml"),
        rules("0.01").replace("churn_auc_watch", "churn_auc_guard"),
    )
    .unwrap();
    wait_for(60, "the resolution", || {
        let slack_texts: Vec<String> = slack
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, s)| p.starts_with("/slack") && *s == 200)
            .map(|(_, b, _)| b["text"].as_str().unwrap_or("").to_string())
            .collect();
        slack_texts
            .iter()
            .any(|t| t.contains("RESOLVED") && t.contains("churn_auc_guard"))
            .then_some(())
    });
    wait_for(30, "the resolution email", || {
        emails(&dir.join("maildir"))
            .iter()
            .any(|m| m.contains("RESOLVED"))
            .then_some(())
    });

    // Alertmanager hears the resolution too, and stops showing the alert as active.
    wait_for(30, "Alertmanager to see it resolved", || {
        active_at_am("churn_auc_guard").is_none().then_some(())
    });

    steps.next("Grafana queries and Prometheus rules");
    // The Grafana dashboard asks only for metrics the daemon exposes; the rules pass promtool.
    let (_, metrics) = http(&address, "GET", "/metrics", None, None);
    let queries = crate::prometheus::dashboard_queries();
    for (panel, expr) in &queries {
        for name in metric_names(expr) {
            // A figure of a job this daemon does not run (scoring, retraining, a matured
            // cohort) is not exposed here; it must still be a catalogued observation.
            let exposed = metrics.lines().any(|l| {
                !l.starts_with('#') && (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            });
            let catalogued = name
                .strip_prefix("bankml_")
                .and_then(bankml::vocab::catalogue::find)
                .is_some();
            assert!(
                exposed || catalogued,
                "panel \"{panel}\" queries {name}, which /metrics does not expose and no job publishes"
            );
        }
    }
    assert!(queries.len() >= 15, "{}", queries.len());
    assert_eq!(
        crate::prometheus::dashboard()["templating"]["list"][0]["type"],
        "datasource"
    );
    let rules_check = Command::new("promtool")
        .args([
            "check",
            "rules",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/prometheus/bankml-rules.yaml"),
        ])
        .output()
        .expect("promtool");
    assert!(
        rules_check.status.success(),
        "{}",
        String::from_utf8_lossy(&rules_check.stdout)
    );

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());

    steps.next("no secret in any file written");
    // The API token and the Slack URL came from the environment: neither may reach a log,
    // report, the history or outbox (SQLite), an email or anything else under the project.
    let written = files_under(dir);
    for expected in [
        "data/history.sqlite",
        "reports/index.html",
        "daemon1.log",
        "daemon2.log",
    ] {
        assert!(
            written.iter().any(|f| f.ends_with(expected)),
            "{expected} is among the files read"
        );
    }
    let leaks: Vec<String> = written
        .into_iter()
        .filter(|f| !f.starts_with(dir.join("chromium-profile")))
        .filter_map(|f| {
            let bytes = std::fs::read(&f).ok()?;
            let leaked: Vec<&str> = [TOKEN, SLACK_SECRET]
                .into_iter()
                .filter(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
                .collect();
            (!leaked.is_empty()).then(|| format!("{}: {leaked:?}", f.display()))
        })
        .collect();
    assert!(leaks.is_empty(), "secrets written to files:\n{}", leaks.join("\n"));

    // For a person to look at: BANKML_TEST_ARTIFACTS=<folder> keeps the payload, the email
    // and the screenshot.
    if let Some(out) = std::env::var_os("BANKML_TEST_ARTIFACTS") {
        let out = std::path::PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(dir.join("slack-payload.json"), out.join("slack-payload.json")).unwrap();
        std::fs::copy(&png, out.join("report.png")).unwrap();
        std::fs::write(out.join("email.eml"), &mails[0]).unwrap();
        std::fs::copy(&report, out.join("report.html")).unwrap();
    }
}

/// `bankml_…` names in a PromQL expression (histogram series by their `_bucket` name).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("bankml_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // `bankml_job` is the run's label (in selectors and `by (…)`), not a metric.
        if tail[..end] != *bankml::vocab::catalogue::JOB_LABEL {
            out.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
