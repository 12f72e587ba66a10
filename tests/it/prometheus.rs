//! A real Prometheus server (Debian `prometheus`) run on the shipped scrape configuration and
//! rules, scraping a daemon under test: what ops engineers will run, not a parser of our text.

use crate::common::{Running, free_port, http, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/prometheus");

pub struct Prometheus {
    _process: Running,
    pub address: String,
}

/// Starts Prometheus in `dir` on `config/prometheus/prometheus.yml` and its rules, with the
/// daemon at `daemon` as the target and 1 s intervals instead of 30 s; waits until it is ready.
pub fn start(dir: &Path, daemon: &str) -> Prometheus {
    let folder = dir.join("prometheus");
    std::fs::create_dir_all(&folder).unwrap();
    let shipped = std::fs::read_to_string(Path::new(SHIPPED).join("prometheus.yml")).unwrap();
    let config = shipped
        .replace("scrape_interval: 30s", "scrape_interval: 1s\n  scrape_timeout: 1s")
        .replace("evaluation_interval: 30s", "evaluation_interval: 1s")
        .replace("127.0.0.1:8001", daemon);
    assert_ne!(config, shipped, "the shipped scrape configuration changed shape");
    std::fs::write(folder.join("prometheus.yml"), config).unwrap();
    std::fs::copy(
        Path::new(SHIPPED).join("bankml-rules.yaml"),
        folder.join("bankml-rules.yaml"),
    )
    .unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(folder.join("prometheus.log")).unwrap();
    let process = Command::new("prometheus")
        .arg(format!("--config.file={}", folder.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", folder.join("tsdb").display()))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus (Debian package prometheus; scripts/setup.sh --tests installs it)");
    let process = Running(process);
    wait_for(60, "Prometheus ready", || {
        (std::net::TcpStream::connect(&address).is_ok() && http(&address, "GET", "/-/ready", None, None).0 == 200)
            .then_some(())
    });
    Prometheus {
        _process: process,
        address,
    }
}

impl Prometheus {
    pub fn log(&self, dir: &Path) -> PathBuf {
        dir.join("prometheus/prometheus.log")
    }

    /// `GET /api/v1/<path>`'s `data`, asserting Prometheus answered `success`.
    pub fn api(&self, path: &str) -> Value {
        let (status, body) = http(&self.address, "GET", &format!("/api/v1/{path}"), None, None);
        let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        assert!(
            status == 200 && answer["status"] == "success",
            "{path}: {status} {body}"
        );
        answer["data"].clone()
    }

    /// The alert `name` for the bankml job `job` in `state` (pending, firing), if there is one.
    pub fn alert(&self, name: &str, job: &str, state: &str) -> Option<Value> {
        let alerts = self.api("alerts")["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .into_iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["bankml_job"] == job && a["state"] == state)
    }

    /// An instant query's result vector.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let encoded: String = url_encode(expr);
        self.api(&format!("query?query={encoded}"))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The shipped Grafana dashboard.
pub fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/grafana/bankml.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every query of the shipped Grafana dashboard (panel title, expression), its variables set
/// to "all".
pub fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard = dashboard();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title}: a target without a query"));
            out.push((title, expr.replace("$job", ".*").replace("$model", ".*")));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = annotation["expr"].as_str() {
            let name = annotation["name"].as_str().unwrap_or("?");
            out.push((format!("annotation {name}"), expr.to_string()));
        }
    }
    out
}

/// The shipped dashboard's layout holds: unique panel ids, no two panels on the same cells,
/// every link and variable it uses defined.
#[test]
fn the_dashboard_panels_do_not_overlap_and_their_links_resolve() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut cells = std::collections::BTreeMap::new();
    for panel in panels {
        let id = panel["id"].as_u64().unwrap();
        assert!(ids.insert(id), "panel id {id} twice");
        let g = &panel["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "panel {id} is wider than the grid");
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), id) {
                    panic!("panels {other} and {id} overlap at ({cx}, {cy})");
                }
            }
        }
    }
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let text = dashboard.to_string();
    for used in text.split("${").skip(1).map(|rest| &rest[..rest.find('}').unwrap()]) {
        assert!(variables.contains(&used), "${{{used}}} is used but not defined");
    }
    for (_, expr) in dashboard_queries() {
        assert!(!expr.contains("$__"), "{expr}");
    }
}

/// Both alert paths speak one scheme: each Prometheus alert has the name and severity of
/// bankml's rule for the same problem, or is one only Prometheus can raise.
#[test]
fn prometheus_alerts_take_the_names_and_severities_of_bankmls_rules() {
    const PROMETHEUS_ONLY: [&str; 3] = ["daemon_down", "config_reload_failed", "notifications_stuck"];
    let root = env!("CARGO_MANIFEST_DIR");
    let receivers = ["slack".to_string(), "email".to_string()];
    let ours = bankml::alerts::rules::load_rules(Path::new(&format!("{root}/alerts/rules.yaml")), &receivers).unwrap();
    let text = std::fs::read_to_string(format!("{root}/config/prometheus/bankml-rules.yaml")).unwrap();
    let file: Value = serde_saphyr::from_str(&text).unwrap();
    let mut seen = 0;
    for group in file["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            let severity = rule["labels"]["severity"].as_str().unwrap();
            seen += 1;
            if PROMETHEUS_ONLY.contains(&name) {
                continue;
            }
            let twin = ours
                .iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("{name}: no bankml rule of that name"));
            assert_eq!(twin.severity.name(), severity, "{name}");
            let expr = rule["expr"].as_str().unwrap();
            assert!(
                expr.starts_with("max without (instance, job"),
                "{name}: the scrape's labels stay: {expr}"
            );
        }
    }
    assert_eq!(seen, 17);
}
