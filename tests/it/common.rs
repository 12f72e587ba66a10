//! Helpers for driving the `bankml` binary in a scratch folder, as a user would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bankml(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bankml"))
        .args(args)
        .current_dir(dir)
        .env_remove("BANKML_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("the bankml binary runs")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs and insists on success, returning everything printed.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let output = bankml(dir, args);
    assert!(output.status.success(), "bankml {args:?} failed:\n{}", text(&output));
    text(&output)
}

/// Runs and insists on exit code 2 (bad input), returning everything printed.
pub fn bad_input(dir: &Path, args: &[&str]) -> String {
    let output = bankml(dir, args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "bankml {args:?} should reject the input:\n{}",
        text(&output)
    );
    text(&output)
}

pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// Writes `files` (name, contents) into `dir/data/raw/<date>/`.
pub fn write_snapshot(dir: &Path, date: &str, files: &[(&str, String)]) -> PathBuf {
    let folder = dir.join("data/raw").join(date);
    std::fs::create_dir_all(&folder).unwrap();
    for (name, contents) in files {
        std::fs::write(folder.join(name), contents).unwrap();
    }
    folder
}

pub fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(file).finish().unwrap()
}

/// A small bank written by hand, with every figure of its features worked out in
/// `features.rs`. The snapshot is 2025-03-31; `later` gives the one of 2025-06-30.
pub fn hand_built(later: bool) -> Vec<(&'static str, String)> {
    let catalog = "product_id,product_name,category\nP01,Current account,accounts\nP05,Savings account,savings\nP19,Fixed-rate mortgage,mortgages\nP22,Home insurance,insurance\n";
    let agencies = "age,region,performance_score\nAG01,Capital,60.0\nAG02,North,40.0\n";
    let managers =
        "ges,age,hired_on,objective,performance_score\nG001,AG01,2015-03-31,2,70.0\nG002,AG02,2020-03-31,1,50.0\n";
    let client_2_closed = if later { "2025-05-01" } else { "" };
    let clients = format!(
        "cli,sex,birth_date,segment,age,ges,client_since,region,income_band,closed_on\n\
         1,F,1985-03-31,Mass,AG01,G001,2020-03-31,Capital,40-70k,\n\
         2,M,2000-01-15,Youth,AG01,G001,2024-12-31,Capital,<20k,{client_2_closed}\n\
         3,F,1960-06-30,Affluent,AG02,G002,2010-01-01,North,>120k,2025-02-15\n\
         4,M,1970-01-01,Mass,AG02,G002,2018-06-01,North,20-40k,\n"
    );
    let mut holdings = String::from(
        "cli,product_id,opened_on,closed_on,balance\n\
         1,P01,2020-03-31,,1000.50\n\
         1,P05,2021-01-01,,5000\n\
         1,P19,2025-03-10,,150000\n\
         3,P01,2010-01-01,2025-02-15,0\n\
         4,P01,2018-06-01,,300\n\
         4,P22,2019-01-01,2025-01-20,0\n",
    );
    if later {
        holdings.push_str("2,P01,2024-12-31,2025-05-01,0\n1,P22,2025-05-01,,0\n");
    } else {
        holdings.push_str("2,P01,2024-12-31,,200\n");
    }
    let activity = if later {
        "cli,month,logins,transactions,complaints\n1,2025-06-01,9,9,0\n4,2025-06-01,7,9,0\n".to_string()
    } else {
        "cli,month,logins,transactions,complaints\n\
         1,2025-01-01,10,20,0\n1,2025-02-01,12,22,0\n1,2025-03-01,14,30,1\n\
         2,2025-01-01,5,5,0\n2,2025-02-01,3,4,1\n2,2025-03-01,1,2,2\n\
         4,2025-03-01,7,9,0\n"
            .to_string()
    };
    vec![
        ("catalog.csv", catalog.to_string()),
        ("agencies.csv", agencies.to_string()),
        ("managers.csv", managers.to_string()),
        ("clients.csv", clients),
        ("holdings.csv", holdings),
        ("activity.csv", activity),
    ]
}

/// The shared scikit-learn/scipy reference values (a copy of ../shared/reference/metrics.json).
pub fn reference() -> serde_json::Value {
    serde_json::from_str(include_str!("../fixtures/metrics.json")).expect("the reference is JSON")
}

pub fn floats(value: &serde_json::Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A frame's column as floats (nulls skipped).
pub fn column_f64(frame: &polars::prelude::DataFrame, name: &str) -> Vec<f64> {
    use polars::prelude::*;
    let cast = frame.column(name).unwrap().cast(&DataType::Float64).unwrap();
    cast.f64().unwrap().iter().flatten().collect()
}

/// A frame's integer column (nulls skipped).
pub fn column_i64(frame: &polars::prelude::DataFrame, name: &str) -> Vec<i64> {
    frame
        .column(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .i64()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .into_no_null_iter()
        .collect()
}

/// A frame's text column (nulls skipped).
pub fn column_str<'a>(frame: &'a polars::prelude::DataFrame, name: &str) -> Vec<&'a str> {
    frame.column(name).unwrap().str().unwrap().iter().flatten().collect()
}

/// One HTTP request to the daemon under test (reqwest, blocking): status and body.
pub fn http(address: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .expect("an HTTP client")
    });
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client.request(method, format!("http://{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let response = request.send().unwrap_or_else(|e| panic!("{path} on {address}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Names the step a long scenario is in, so a failure says where it happened:
/// `let mut steps = Steps::new("daemon"); steps.next("first start"); …`.
pub struct Steps {
    scenario: &'static str,
    current: &'static str,
    number: usize,
}

impl Steps {
    pub fn new(scenario: &'static str) -> Steps {
        Steps {
            scenario,
            current: "setting up",
            number: 0,
        }
    }

    pub fn next(&mut self, step: &'static str) {
        self.number += 1;
        self.current = step;
        eprintln!("[{}] step {}: {step}", self.scenario, self.number);
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[{}] FAILED in step {}: {}", self.scenario, self.number, self.current);
        }
    }
}

/// A port nothing listens on now.
/// Whether a daemon listens on `address` and says it is ready (`/readyz` 200).
pub fn ready(address: &str) -> bool {
    std::net::TcpStream::connect(address).is_ok() && http(address, "GET", "/readyz", None, None).0 == 200
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 250 ms until it gives a value or `seconds` pass.
pub fn wait_for<T>(seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// A child process (a daemon under test) killed when dropped, so a failing test does not
/// leave it running.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `bankml --config config/bankml.yaml -v daemon` in `dir` with `env`, its log in
/// `dir/<log>`.
pub fn start_daemon(dir: &Path, log: &str, env: &[(&str, String)]) -> Running {
    let log = std::fs::File::create(dir.join(log)).expect("a log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bankml"));
    command
        .args(["--config", "config/bankml.yaml", "-v", "daemon"])
        .current_dir(dir)
        .env_remove("BANKML_CONFIG")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    for (name, value) in env {
        command.env(name, value);
    }
    Running(command.spawn().expect("the daemon starts"))
}

/// The JSON array a command printed (`bankml runs --json`), ignoring what follows it.
pub fn json_array(printed: &str) -> Vec<serde_json::Value> {
    let end = printed.rfind(']').map_or(printed.len(), |i| i + 1);
    serde_json::from_str(&printed[..end]).unwrap_or_else(|e| panic!("not a JSON array ({e}): {printed}"))
}

/// Every observation of a report (its `outcome.observations`, as JSON) is in the catalogue,
/// with exactly the catalogue's labels. Returns how many were checked.
pub fn assert_catalogued(observations: &[serde_json::Value]) -> usize {
    assert!(!observations.is_empty(), "no observations");
    for o in observations {
        let name = o["name"].as_str().expect("an observation name");
        let spec = bankml::vocab::catalogue::find(name)
            .unwrap_or_else(|| panic!("{name} is emitted but not in the observation catalogue"));
        let mut labels: Vec<&str> = o["labels"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        labels.sort_unstable();
        let mut expected: Vec<&str> = spec.labels.iter().map(|l| l.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(labels, expected, "{name}: labels");
    }
    observations.len()
}

/// What headless Chromium made of a page: the DOM it rendered (with `--dump-dom`) and what it
/// logged, including the page's console messages.
pub struct Rendered {
    pub dom: String,
    pub log: String,
}

impl Rendered {
    /// The page's console messages and failed loads, as Chromium logs them.
    pub fn console_errors(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| l.contains("CONSOLE") || l.contains("Failed to load resource") || l.contains("Uncaught"))
            .collect()
    }
}

/// Renders `url` in headless Chromium (Debian package `chromium`), with `args` such as
/// `--dump-dom` or `--screenshot=…`.
pub fn chromium(args: &[&str], url: &str, dir: &Path) -> Rendered {
    let binary = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("Chromium (Debian package chromium; scripts/setup.sh --tests installs it)");
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join("chromium-profile").display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    Rendered {
        dom: String::from_utf8_lossy(&output.stdout).to_string(),
        log: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// The report of the run `bankml run` just printed (`report: PATH`), its observations checked
/// against the catalogue.
pub fn printed_report(dir: &Path, printed: &str) -> serde_json::Value {
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .unwrap_or_else(|| panic!("no report path in:\n{printed}"));
    let text = std::fs::read_to_string(dir.join(line.trim())).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_catalogued(report["outcome"]["observations"].as_array().unwrap());
    report
}
