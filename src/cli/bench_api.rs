//! `bankml bench api`: the prediction API under load, as a bank's front ends would put it on
//! it — a daemon on a generated bank, many concurrent callers asking for one client's churn
//! with its reasons — and what it costs: latency percentiles, errors, the daemon's memory
//! before and after. The callers run in this process on the same cores as the daemon, so the
//! latencies include their share of the machine.

use super::UserError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct ApiBench {
    pub clients: usize,
    pub concurrency: usize,
    pub seconds: u64,
    pub dir: Option<PathBuf>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// The daemon started for the bench, stopped (SIGTERM) when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Quantile `p` (in percent) of sorted latencies, numpy's way; NaN for none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    bankml::metrics::drift::quantile_sorted(sorted, p / 100.0)
}

pub fn run(bench: ApiBench, config_path: &Path) -> anyhow::Result<()> {
    if bench.concurrency == 0 || bench.seconds == 0 {
        return Err(UserError("--concurrency and --seconds must be at least 1".into()).into());
    }
    let temp = tempfile::tempdir()?;
    let root = bench.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let project = root.join("api");
    if project.exists() {
        std::fs::remove_dir_all(&project)?;
    }
    std::fs::create_dir_all(project.join("config"))?;
    // No scheduled job: what is measured is the API, not a benchmark running beside it.
    std::fs::create_dir_all(project.join("jobs"))?;
    let config = project.join("config/bankml.yaml");
    std::fs::copy(std::fs::canonicalize(config_path)?, &config)?;
    let log = project.join("bench.log");
    let clients = bench.clients.to_string();
    eprintln!("generating {clients} clients and training the champions");
    super::bench_monitor::bankml(
        &project,
        &config,
        &[
            "generate",
            "--clients",
            &clients,
            "--months",
            "12",
            "--format",
            "parquet",
        ],
        &log,
    )?;
    super::bench_monitor::bankml(&project, &config, &["train"], &log)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let address = format!("127.0.0.1:{port}");
    let daemon_log = std::fs::File::create(project.join("daemon.log"))?;
    let daemon = Daemon(
        std::process::Command::new(std::env::current_exe()?)
            .current_dir(&project)
            .args(["--config", "config/bankml.yaml", "daemon", "--listen", &address])
            .env("NO_COLOR", "1")
            .stdout(daemon_log.try_clone()?)
            .stderr(daemon_log)
            .spawn()?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(bench.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = format!("http://{address}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if started.elapsed() > Duration::from_secs(300) {
                return Err(anyhow::anyhow!(
                    "the daemon was not ready in 5 minutes (log: {})",
                    project.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Every current client, most at risk first (their answers compute SHAP reasons).
        let mut ids: Vec<i64> = Vec::new();
        for page in 1.. {
            let answer: serde_json::Value = http
                .get(format!(
                    "{base}/api/v1/predict/all-clients-churn?page_size=1000&page={page}"
                ))
                .send()
                .await?
                .json()
                .await?;
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            ids.extend(items.iter().filter_map(|i| i["client_id"].as_i64()));
            if items.is_empty() || answer["pages"].as_u64().is_some_and(|p| page >= p) {
                break;
            }
        }
        if ids.is_empty() {
            return Err(anyhow::anyhow!("no client to ask about"));
        }
        let pid = daemon.0.id().to_string();
        let before = bankml::fsutil::memory_bytes(&pid, "VmRSS").unwrap_or(0);
        eprintln!(
            "{} callers for {} s on POST /api/v1/predict/churn ({} clients, rotating)",
            bench.concurrency,
            bench.seconds,
            ids.len()
        );
        let deadline = Instant::now() + Duration::from_secs(bench.seconds);
        let ids = std::sync::Arc::new(ids);
        // A client's first ask computes its answer, later ones find it kept: told apart.
        let asked_before = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let tasks: Vec<_> = (0..bench.concurrency)
            .map(|worker| {
                let (http, ids, url) = (http.clone(), ids.clone(), format!("{base}/api/v1/predict/churn"));
                let asked_before = asked_before.clone();
                let start = worker * ids.len() / bench.concurrency;
                tokio::spawn(async move {
                    let (mut latencies, mut errors, mut n) = (Vec::new(), 0usize, start);
                    while Instant::now() < deadline {
                        let id = ids[n % ids.len()];
                        n += STRIDE;
                        let first = asked_before.lock().map(|mut seen| seen.insert(id)).unwrap_or(false);
                        let asked = Instant::now();
                        let answer = http
                            .post(&url)
                            .json(&serde_json::json!({ "client_id": id }))
                            .send()
                            .await;
                        match answer {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                latencies.push((asked.elapsed().as_secs_f64() * 1000.0, first));
                            }
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut timed = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await?;
            timed.extend(l);
            errors += e;
        }
        let sorted = |keep: &dyn Fn(bool) -> bool| {
            let mut v: Vec<f64> = timed.iter().filter(|(_, f)| keep(*f)).map(|(l, _)| *l).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (latencies, first, again) = (sorted(&|_| true), sorted(&|f| f), sorted(&|f| !f));
        let after = bankml::fsutil::memory_bytes(&pid, "VmRSS").unwrap_or(0);
        let answered = latencies.len();
        println!(
            "clients {}, callers {}, {} s: {} answered, {} errors, {:.0} requests/s",
            super::thousands(bench.clients),
            bench.concurrency,
            bench.seconds,
            super::thousands(answered),
            errors,
            answered as f64 / bench.seconds as f64
        );
        for (what, sorted) in [
            ("all", &latencies),
            ("first ask of a client", &first),
            ("asked again", &again),
        ] {
            println!(
                "latency ms, {what} ({}): p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
                super::thousands(sorted.len()),
                percentile(sorted, 50.0),
                percentile(sorted, 90.0),
                percentile(sorted, 99.0),
                sorted.last().copied().unwrap_or(f64::NAN)
            );
        }
        println!(
            "daemon RSS: {:.1} MiB before, {:.1} MiB after ({:+.1} %)",
            before as f64 / MIB,
            after as f64 / MIB,
            if before > 0 {
                (after as f64 / before as f64 - 1.0) * 100.0
            } else {
                f64::NAN
            }
        );
        Ok(())
    })?;
    drop(daemon);
    Ok(())
}

/// How far each caller steps through the client list between requests: a prime, so callers
/// starting at different places do not ask in lockstep.
const STRIDE: usize = 7;
