//! Job files (`jobs/*.yaml`): what runs, when, and with which policies. Admins edit these;
//! every problem is reported with file:line:column, all of them at once.

use crate::config::place;
use crate::engine::schedule::{self, Schedule};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Daily: champions measured on the latest matured snapshot, drift, decay.
    Benchmark,
    /// Weekly: cross-validation, champion vs challenger.
    Validation,
    /// Monthly: train challengers, promote when better.
    Retrain,
    /// Daily: bulk predictions for the latest snapshot.
    Scoring,
}

/// What happens when a job is due while its previous run is still going (Kubernetes CronJob's
/// Forbid / Allow / Replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    #[default]
    Skip,
    Queue,
    Replace,
}

/// After downtime: run nothing missed, or the latest missed firing once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    None,
    #[default]
    Latest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetriesFile {
    #[serde(default)]
    count: u32,
    #[serde(default)]
    backoff: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    job: JobKind,
    schedule: Spanned<String>,
    timezone: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retries: Option<RetriesFile>,
    #[serde(default)]
    overlap: Overlap,
    #[serde(default)]
    catch_up: CatchUp,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
}

fn enabled_by_default() -> bool {
    true
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The file's name without `.yaml`.
    pub name: String,
    pub path: PathBuf,
    pub kind: JobKind,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub enabled: bool,
    pub params: BTreeMap<String, serde_json::Value>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(60);

/// `90s`, `30m`, `2h`, `1h30m`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(number.parse::<u64>().ok()?.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// Reads one job file; every problem in it is returned, each with its location.
pub fn load_job(path: &Path) -> Result<Job, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    let file: JobFile = crate::config::parse_yaml_listed(&text, path)?;
    let mut errors = Vec::new();
    let zone = file.timezone.as_ref().map_or("UTC", |z| z.value.as_str());
    // Both are checked, so a bad zone does not hide a bad expression.
    if let Err(e) = schedule::parse_zone(zone) {
        let place = file
            .timezone
            .as_ref()
            .map_or_else(|| path.display().to_string(), |z| place(path, z));
        errors.push(format!("{place}: timezone: {e}"));
    }
    if let Err(e) = schedule::parse_cron(&file.schedule.value) {
        errors.push(format!("{}: schedule: {e}", place(path, &file.schedule)));
    }
    let schedule = Schedule::parse(&file.schedule.value, zone).ok();
    let duration =
        |field: &str, value: &Option<Spanned<String>>, default: Duration, errors: &mut Vec<String>| match value {
            None => default,
            Some(v) => parse_duration(&v.value).unwrap_or_else(|| {
                errors.push(format!(
                    "{}: {field}: \"{}\" is not a duration (e.g. 90s, 30m, 2h, 1h30m)",
                    place(path, v),
                    v.value
                ));
                default
            }),
        };
    let timeout = duration("timeout", &file.timeout, DEFAULT_TIMEOUT, &mut errors);
    let (retries, backoff) = match &file.retries {
        None => (0, DEFAULT_BACKOFF),
        Some(r) => (
            r.count,
            duration("retries.backoff", &r.backoff, DEFAULT_BACKOFF, &mut errors),
        ),
    };
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("job").to_string();
    match schedule {
        Some(schedule) if errors.is_empty() => Ok(Job {
            name,
            path: path.to_path_buf(),
            kind: file.job,
            schedule,
            timeout,
            retries,
            backoff,
            overlap: file.overlap,
            catch_up: file.catch_up,
            enabled: file.enabled,
            params: file.params,
        }),
        _ => Err(errors),
    }
}

/// Every `*.yaml` in `dir`, sorted by name; all problems of all files at once.
pub fn load_jobs(dir: &Path) -> Result<Vec<Job>, Vec<String>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect(),
        Err(e) => return Err(vec![format!("{}: cannot list job files: {e}", dir.display())]),
    };
    paths.sort();
    let (mut jobs, mut errors) = (Vec::new(), Vec::new());
    for path in paths {
        match load_job(&path) {
            Ok(job) => jobs.push(job),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(jobs) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "10", "5x", "m", "0s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_good_job_file_loads_with_its_policies() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "daily-benchmark.yaml",
            "job: benchmark\nschedule: \"30 2 * * *\"\ntimezone: Europe/Madrid\ntimeout: 20m\nretries: {count: 2, backoff: 30s}\noverlap: queue\ncatch_up: none\nparams: {models: [churn], k: 5}\n",
        );
        let job = load_job(&path).unwrap();
        assert_eq!(
            (job.name.as_str(), job.kind, job.retries),
            ("daily-benchmark", JobKind::Benchmark, 2)
        );
        assert_eq!(
            (job.timeout, job.backoff),
            (Duration::from_secs(1200), Duration::from_secs(30))
        );
        assert_eq!(
            (job.overlap, job.catch_up, job.enabled),
            (Overlap::Queue, CatchUp::None, true)
        );
        assert_eq!(job.params["k"], 5);
    }

    #[test]
    fn every_problem_is_named_by_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.yaml",
            "job: benchmark\nschedule: \"61 2 * * *\"\ntimezone: Mars/Olympus\ntimeout: soon\n",
        );
        write(
            dir.path(),
            "b.yaml",
            "job: benchmark\nschedule: \"0 2 * * *\"\nschedul: typo\n",
        );
        let errors = load_jobs(dir.path()).unwrap_err();
        let all = errors.join("\n");
        assert!(
            all.contains("a.yaml:2:11: schedule: \"61 2 * * *\" is not a cron schedule"),
            "{all}"
        );
        assert!(
            all.contains("a.yaml:3:11: timezone: \"Mars/Olympus\" is not an IANA time zone"),
            "{all}"
        );
        assert!(
            all.contains("a.yaml:4:10: timeout: \"soon\" is not a duration"),
            "{all}"
        );
        assert!(all.contains("b.yaml") && all.contains("schedul"), "{all}");
    }
}
