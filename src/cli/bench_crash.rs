//! `bankml bench crash`: kill -9 trials. Each trial starts one writing command (train,
//! promote, prune, score, features, the monthly retraining) on a generated bank, kills it with
//! SIGKILL at a random moment of its work, and then checks what a user would next rely on:
//! every artefact still readable (JSON, Parquet, CSV, reports, the history database, every
//! registered model version loads, every alias points at a version), and, once the next
//! command has started, no leftover of the killed writer (temporary files, staging folders, a
//! folder moved aside). Prints the counts; exits non-zero when any trial broke something.

use super::UserError;
use super::bench_monitor::bankml;
use bankml::config::EngineConfig;
use bankml::data::synth::rng::Rng;
use bankml::vocab::ModelKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct CrashBench {
    pub trials: usize,
    pub clients: usize,
    pub months: usize,
    pub seed: u64,
    pub dir: Option<PathBuf>,
}

/// The writing commands tried, in turn.
const OPERATIONS: [&str; 6] = ["train", "promote", "prune", "score", "features", "retrain"];

/// The arguments of one operation; `round` varies what promote picks.
fn arguments(operation: &str, round: usize, versions: &[u32]) -> Vec<String> {
    let words: Vec<&str> = match operation {
        "train" => vec!["train"],
        "prune" => vec!["models", "prune", "--keep", "1"],
        "score" => vec!["score"],
        "features" => vec!["features", "--all"],
        "retrain" => vec!["run", "monthly-retrain"],
        _ => vec!["models", "promote", "churn"],
    };
    let mut arguments: Vec<String> = words.into_iter().map(String::from).collect();
    if operation == "promote" {
        let version = versions.get(round % versions.len().max(1)).copied().unwrap_or(1);
        arguments.push(version.to_string());
    }
    arguments
}

pub fn run(bench: CrashBench, config: &EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    if bench.trials == 0 {
        return Err(UserError("--trials must be at least 1".into()).into());
    }
    let temp = tempfile::tempdir()?;
    let root = bench.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let (project, config_file) = super::bench_monitor::fresh_project(&root, "crash", config_path)?;
    std::fs::copy(
        config.data.jobs_dir.join("monthly-retrain.yaml"),
        project.join("jobs/monthly-retrain.yaml"),
    )
    .map_err(|e| {
        UserError(format!(
            "{}: {e} (run from a bankml project folder)",
            config.data.jobs_dir.join("monthly-retrain.yaml").display()
        ))
    })?;
    let project_config = EngineConfig::load(&config_file, true)?;
    let log = project.join("bench.log");
    let (clients, months) = (bench.clients.to_string(), bench.months.to_string());
    eprintln!("generating {clients} clients over {months} months, training, scoring");
    bankml(
        &project,
        &config_file,
        &[
            "generate",
            "--clients",
            &clients,
            "--months",
            &months,
            "--format",
            "parquet",
        ],
        &log,
    )?;
    for args in [&["train"][..], &["train"], &["score"], &["features", "--all"]] {
        bankml(&project, &config_file, args, &log)?;
    }
    // Each operation's own duration, uncontended: the trials kill within it.
    let mut durations = Vec::new();
    for (round, operation) in OPERATIONS.iter().enumerate() {
        let versions = versions(&project_config);
        let started = Instant::now();
        let args = arguments(operation, round, &versions);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bankml(&project, &config_file, &args, &log)?;
        durations.push(started.elapsed());
        eprintln!("{operation}: {:.2} s uncontended", started.elapsed().as_secs_f64());
    }
    // A killed `bankml run` leaves its job's worker to die of PDEATHSIG a moment later; as
    // their subreaper, this process can wait for it before the next command starts, as a user's
    // next start would come after it.
    // SAFETY: prctl on this process only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let mut rng = Rng::new(bench.seed);
    let mut tally = Tally::default();
    let progress = super::progress::bar(bench.trials as u64, "kill -9 trials");
    for trial in 0..bench.trials {
        let which = trial % OPERATIONS.len();
        let operation = OPERATIONS[which];
        // Anywhere from the process's start to just before its usual end.
        let delay = durations[which].mul_f64(0.95 * rng.uniform());
        let args = arguments(operation, trial / OPERATIONS.len(), &versions(&project_config));
        let killed = kill_after(&project, &config_file, &args, delay, &log)?;
        let broken = unreadable(&project_config);
        // The next command's start sweeps what the killed one left.
        bankml(&project, &config_file, &["models", "list"], &log)?;
        let left = walk(&project_config).leftovers;
        let broken_after = unreadable(&project_config);
        tally.add(operation, killed, &broken, &broken_after, &left);
        progress.inc(1);
    }
    progress.finish_and_clear();
    tally.print(bench.trials);
    if tally.unreadable + tally.left.len() > 0 {
        return Err(anyhow::anyhow!(
            "{} unreadable artefacts and {} leftovers after {} trials (project kept in {})",
            tally.unreadable,
            tally.left.len(),
            bench.trials,
            project.display()
        ));
    }
    Ok(())
}

/// Runs `bankml ARGS`, and kills it with SIGKILL after `delay` unless it finished first.
/// `true` when it was killed.
fn kill_after(project: &Path, config: &Path, args: &[String], delay: Duration, log: &Path) -> anyhow::Result<bool> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .current_dir(project)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if child.try_wait()?.is_some() {
        return Ok(false);
    }
    child.kill()?;
    child.wait()?;
    // Its orphaned children (the job worker of `bankml run`) are ours now: wait for them.
    // SAFETY: waitpid on our own children; -1 (no child left) ends the loop.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
    Ok(true)
}

fn versions(config: &EngineConfig) -> Vec<u32> {
    bankml::models::registry::Registry::new(&config.models.dir)
        .versions(ModelKind::Churn)
        .unwrap_or_default()
}

/// Every artefact a reader would open that cannot be read, with why.
fn unreadable(config: &EngineConfig) -> Vec<String> {
    let mut broken = Vec::new();
    for path in walk(config).files {
        if let Err(why) = readable(&path) {
            broken.push(format!("{}: {why}", path.display()));
        }
    }
    let registry = bankml::models::registry::Registry::new(&config.models.dir);
    for model in ModelKind::ALL {
        let listed = match registry.versions(model) {
            Ok(listed) => listed,
            Err(e) => {
                broken.push(format!("{model}: {e}"));
                continue;
            }
        };
        match registry.aliases(model) {
            Ok(aliases) => {
                let named = aliases.champion.into_iter().chain(aliases.challenger);
                for version in named.filter(|v| !listed.contains(v)) {
                    broken.push(format!("{model}: an alias names v{version}, which is not there"));
                }
            }
            Err(e) => broken.push(format!("{model}: aliases: {e}")),
        }
        for version in listed {
            let loaded = match model {
                ModelKind::Recommender => {
                    bankml::models::recommender::SavedRecommender::load(&registry, Some(version)).map(|_| ())
                }
                _ => bankml::models::tabular::TabularModel::load(&registry, model, Some(version), 1).map(|_| ()),
            };
            if let Err(e) = loaded {
                broken.push(format!("{model} v{version}: {e}"));
            }
        }
    }
    let history = &config.data.history;
    if history.exists() {
        let check = rusqlite::Connection::open(history)
            .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
        match check {
            Ok(answer) if answer == "ok" => {}
            Ok(answer) => broken.push(format!("{}: {answer}", history.display())),
            Err(e) => broken.push(format!("{}: {e}", history.display())),
        }
    }
    broken
}

/// Whether one file reads whole as what its extension says.
fn readable(path: &Path) -> Result<(), String> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    match extension {
        "json" => {
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "parquet" => bankml::data::format::read_parquet(path).map(|_| ()),
        "csv" => bankml::data::table::read_csv_text(path)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "html" => {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            if text.trim_end().ends_with("</html>") {
                Ok(())
            } else {
                Err("cut short (no </html>)".into())
            }
        }
        _ => Ok(()),
    }
}

/// What is under the project's folders: the files a reader would open, and the leftovers of
/// killed writers (not looked into).
#[derive(Default)]
struct Walked {
    files: Vec<PathBuf>,
    leftovers: Vec<PathBuf>,
}

fn walk(config: &EngineConfig) -> Walked {
    let mut walked = Walked::default();
    let mut stack = bankml::daemon::housekeeping::roots(config);
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if is_leftover(&entry.file_name().to_string_lossy()) {
                walked.leftovers.push(path);
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                walked.files.push(path);
            }
        }
    }
    walked
}

fn is_leftover(name: &str) -> bool {
    bankml::fsutil::LEFTOVER_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[derive(Default)]
struct Tally {
    per_operation: std::collections::BTreeMap<&'static str, (usize, usize)>,
    unreadable: usize,
    /// Distinct leftovers seen after a next start (one left for good counts once).
    left: std::collections::BTreeSet<PathBuf>,
    examples: Vec<String>,
}

impl Tally {
    fn add(
        &mut self,
        operation: &'static str,
        killed: bool,
        broken: &[String],
        broken_after: &[String],
        left: &[PathBuf],
    ) {
        let entry = self.per_operation.entry(operation).or_default();
        if killed {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        self.unreadable += broken.len() + broken_after.len();
        self.left.extend(left.iter().cloned());
        for problem in broken.iter().chain(broken_after) {
            self.examples.push(format!("after a killed {operation}: {problem}"));
        }
        for path in left {
            self.examples
                .push(format!("after a killed {operation}, left: {}", path.display()));
        }
    }

    fn print(&self, trials: usize) {
        println!("{trials} kill -9 trials");
        for (operation, (killed, finished)) in &self.per_operation {
            println!("  {operation:<9} killed before it finished {killed:>4}, finished before the kill {finished:>4}");
        }
        println!(
            "unreadable artefacts: {} (right after the kill and after the next start)",
            self.unreadable
        );
        println!("leftovers after the next start: {}", self.left.len());
        for example in self.examples.iter().take(20) {
            println!("  {example}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cut_short_is_unreadable_and_a_whole_one_is_not() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let mut frame = df!("cli" => [1i64, 2, 3], "p" => [0.1, 0.2, 0.3]).unwrap();
        let parquet = dir.path().join("scores.parquet");
        ParquetWriter::new(std::fs::File::create(&parquet).unwrap())
            .finish(&mut frame)
            .unwrap();
        let json = dir.path().join("meta.json");
        std::fs::write(&json, r#"{"version": 3, "auc": 0.8}"#).unwrap();
        let html = dir.path().join("report.html");
        std::fs::write(&html, "<!doctype html><html><body>x</body></html>\n").unwrap();
        for path in [&parquet, &json, &html] {
            assert_eq!(readable(path), Ok(()), "{}", path.display());
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
            assert!(readable(path).is_err(), "{} cut in half reads", path.display());
        }
    }

    #[test]
    fn leftovers_are_found_at_any_depth_and_skipped_by_the_readability_walk() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("data/models/churn");
        std::fs::create_dir_all(deep.join(".staging-99999999-3")).unwrap();
        std::fs::write(deep.join(".bankml-99999999-x.tmp"), "{").unwrap();
        std::fs::write(deep.join("aliases.json"), "{}").unwrap();
        let mut config = EngineConfig::default();
        config.rebase(dir.path());
        let walked = walk(&config);
        assert_eq!(walked.leftovers.len(), 2);
        assert_eq!(walked.files, vec![deep.join("aliases.json")]);
    }
}
