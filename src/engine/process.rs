//! Runs each job attempt as a child process (`bankml run JOB --run-id N`): a crash or an
//! out-of-memory kill takes down the attempt, not the daemon; a timeout or shutdown can really
//! stop it (SIGTERM to its process group, SIGKILL after the grace period); and the memory a
//! training needed goes back to the system when it ends.

use super::history::RunState;
use super::runner::{AttemptReport, Executor};
use crate::config::jobs::Job;
use crate::models::boosted::OPENMP_SLEEPS_WHEN_IDLE;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub struct ProcessExecutor {
    /// The `bankml` binary (the daemon's own).
    pub program: PathBuf,
    pub config_path: PathBuf,
    pub reports_dir: PathBuf,
    pub grace: Duration,
    /// XGBoost threads per job (`OMP_THREAD_LIMIT`); 0 = leave it to the config.
    pub threads: usize,
    /// Let the child write to our stderr (`bankml run` in a terminal) instead of keeping its
    /// last lines as the error.
    pub forward_output: bool,
    /// Run the job as of this snapshot (`YYYY-MM-DD`) instead of the latest (a backfill).
    pub snapshot: Option<String>,
}

impl ProcessExecutor {
    /// Attempts of `program` (the `bankml` binary) with the engine config at `config_path`:
    /// output kept, threads left to the config, the latest snapshot.
    pub fn new(program: PathBuf, config_path: PathBuf, config: &crate::config::EngineConfig) -> ProcessExecutor {
        ProcessExecutor {
            program,
            config_path,
            reports_dir: config.data.reports_dir.clone(),
            grace: config.daemon.shutdown_grace,
            threads: 0,
            forward_output: false,
            snapshot: None,
        }
    }
}

/// The last lines of what the child wrote to stderr: the error it ended with.
/// How a run that refused its input (exit code 2) begins its error.
pub const BAD_INPUT: &str = "exit code 2 (bad input)";

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // The error and what follows it: "1 problem(s) in data/raw/…:" alone names no problem.
    let chosen = match lines.iter().position(|l| l.starts_with("error:")) {
        Some(first) => lines[first..].iter().map(|l| l.trim()).collect::<Vec<_>>(),
        None => lines[lines.len().saturating_sub(3)..].to_vec(),
    };
    let joined = chosen.join(" | ");
    joined.chars().take(2000).collect()
}

impl Executor for ProcessExecutor {
    async fn execute(&self, job: Job, run_id: i64, cancel: CancellationToken) -> AttemptReport {
        let params = serde_json::to_string(&job.params).unwrap_or_else(|_| "{}".into());
        let kind = format!("{:?}", job.kind).to_lowercase();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg("--config")
            .arg(&self.config_path)
            .args(["run", &job.name, "--run-id", &run_id.to_string(), "--kind", &kind])
            .args(["--params", &params])
            .env(OPENMP_SLEEPS_WHEN_IDLE.0, OPENMP_SLEEPS_WHEN_IDLE.1)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if self.forward_output {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .process_group(0)
            .kill_on_drop(true);
        if self.threads > 0 {
            command.env("OMP_THREAD_LIMIT", self.threads.to_string());
        }
        if let Some(snapshot) = &self.snapshot {
            command.args(["--snapshot", snapshot]);
        }
        // If the daemon itself dies (SIGKILL, OOM), its attempts die with it instead of running
        // on unrecorded; the next start marks them interrupted.
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return AttemptReport::failed(format!("cannot start {}: {e}", self.program.display())),
        };
        let mut stderr = child.stderr.take();
        let reader = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_string(&mut text).await;
            }
            text
        });
        let status = tokio::select! {
            status = child.wait() => status,
            _ = cancel.cancelled() => {
                terminate(&mut child, self.grace).await;
                return AttemptReport::cancelled();
            }
        };
        let stderr_text = reader.await.unwrap_or_default();
        // A foreground run's error went straight to the terminal, above this line.
        let said = |text: &str| match tail(text) {
            said if said.is_empty() && self.forward_output => "its error is printed above".to_string(),
            said => said,
        };
        let report_path = crate::report::run_dir(&self.reports_dir, &job.name, run_id).join("report.json");
        match status {
            Ok(status) if status.success() => match crate::report::read(&report_path) {
                Ok(report) => AttemptReport {
                    state: RunState::Succeeded,
                    error: None,
                    report: Some(report_path),
                    observations: report.outcome.observations,
                    bad_input: false,
                },
                Err(e) => AttemptReport::failed(format!("the run ended without a readable report: {e}")),
            },
            // Exit code 2: the run refused its input (bankml's exit code for bad input).
            Ok(status) if status.code() == Some(2) => {
                AttemptReport::refused_input(format!("{BAD_INPUT}: {}", said(&stderr_text)))
            }
            Ok(status) => AttemptReport::failed(match status.code() {
                Some(code) => format!("exit code {code}: {}", said(&stderr_text)),
                None => format!("killed by a signal ({status}): {}", said(&stderr_text)),
            }),
            Err(e) => AttemptReport::failed(format!("waiting for the run: {e}")),
        }
    }
}

/// SIGTERM to the child's process group, SIGKILL when it has not ended within `grace`.
async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        if let Some(pid) = child.id() {
            // SAFETY: as above.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        let _ = child.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn a_failed_run_s_error_keeps_the_problems_listed_under_it() {
        let stderr = "2026-01-01T00:00:00Z  WARN bankml: cleaned 3 rows\n\
                      error: 1 problem(s) in data/raw/2025-10-31:\n  \
                      error: data/raw/2025-10-31/holdings.parquet, row 7: duplicate cli=1\n";
        assert_eq!(
            tail(stderr),
            "error: 1 problem(s) in data/raw/2025-10-31: | error: data/raw/2025-10-31/holdings.parquet, row 7: duplicate cli=1"
        );
        assert_eq!(tail("a\nb\nc\nd\n"), "b | c | d", "no error line: the last three");
    }
}
