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
    // No scheduled job: what is measured is the API, not a benchmark running beside it.
    let (project, config) = super::bench_monitor::fresh_project(&root, "api", config_path)?;
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
        let ids = std::sync::Arc::new(ids);
        // A client's first ask computes its answer, later ones find it kept: told apart.
        let asked_before = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        // Two equal windows: the first fills the kept answers (bounded), the second shows
        // whether memory still grows once they are kept — a leak would.
        let mut resident = vec![before];
        for window in 1..=2 {
            let (timed, errors) = load(&http, &base, &ids, &asked_before, bench.concurrency, bench.seconds).await?;
            resident.push(bankml::fsutil::memory_bytes(&pid, "VmRSS").unwrap_or(0));
            print_window(window, &bench, &timed, errors);
        }
        let growth = |from: u64, to: u64| {
            if from > 0 {
                (to as f64 / from as f64 - 1.0) * 100.0
            } else {
                f64::NAN
            }
        };
        println!(
            "daemon RSS: {:.1} MiB before, {:.1} MiB after window 1 ({:+.1} %, answers being kept), \
             {:.1} MiB after window 2 ({:+.1} % over window 2)",
            resident[0] as f64 / MIB,
            resident[1] as f64 / MIB,
            growth(resident[0], resident[1]),
            resident[2] as f64 / MIB,
            growth(resident[1], resident[2]),
        );
        Ok(())
    })?;
    drop(daemon);
    Ok(())
}

type Seen = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i64>>>;

/// `concurrency` callers asking `POST /api/v1/predict/churn` for `seconds`: each latency (ms)
/// with whether it was the client's first ask, and the number of errors.
async fn load(
    http: &reqwest::Client,
    base: &str,
    ids: &std::sync::Arc<Vec<i64>>,
    asked_before: &Seen,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<(f64, bool)>, usize)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (http, ids, url) = (http.clone(), ids.clone(), format!("{base}/api/v1/predict/churn"));
            let asked_before = asked_before.clone();
            let start = worker * ids.len() / concurrency;
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
    Ok((timed, errors))
}

fn print_window(window: usize, bench: &ApiBench, timed: &[(f64, bool)], errors: usize) {
    let sorted = |keep: &dyn Fn(bool) -> bool| {
        let mut v: Vec<f64> = timed.iter().filter(|(_, f)| keep(*f)).map(|(l, _)| *l).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (latencies, first, again) = (sorted(&|_| true), sorted(&|f| f), sorted(&|f| !f));
    println!(
        "window {window}: clients {}, callers {}, {} s: {} answered, {} errors, {:.0} requests/s",
        super::thousands(bench.clients),
        bench.concurrency,
        bench.seconds,
        super::thousands(latencies.len()),
        errors,
        latencies.len() as f64 / bench.seconds as f64
    );
    for (what, sorted) in [
        ("all", &latencies),
        ("first ask of a client", &first),
        ("asked again", &again),
    ] {
        println!(
            "  latency ms, {what} ({}): p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            super::thousands(sorted.len()),
            percentile(sorted, 50.0),
            percentile(sorted, 90.0),
            percentile(sorted, 99.0),
            sorted.last().copied().unwrap_or(f64::NAN)
        );
    }
}

/// How far each caller steps through the client list between requests: a prime, so callers
/// starting at different places do not ask in lockstep.
const STRIDE: usize = 7;
