//! Job files (`jobs/*.yaml`): what runs, when, and with which policies. Admins edit these;
//! every problem is reported with file:line:column, all of them at once.

use super::fields::Fields;
use crate::vocab::duration;
use crate::vocab::schedule::{self, Schedule};
use serde::Deserialize;
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
    /// Monthly: what the campaigns run on the lists did (business figures).
    Business,
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
    backoff: Option<String>,
}

/// The keys of a job file.
const KEYS: [&str; 9] = [
    "job", "schedule", "timezone", "timeout", "retries", "overlap", "catch_up", "enabled", "params",
];

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

/// Reads one job file; every problem in it is returned, each with its location.
pub fn load_job(path: &Path) -> Result<Job, Vec<String>> {
    let text = crate::fsutil::read_text(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    let mut fields = Fields::parse(&text, path)?;
    fields.refuse_unknown(&KEYS);
    let kind = fields.required::<JobKind>("job").map(|(k, _)| k);
    let zone = fields.get::<String>("timezone");
    let zone_name = zone.as_ref().map_or("UTC", |(z, _)| z.as_str()).to_string();
    // Both are checked, so a bad zone does not hide a bad expression.
    if let Some((_, place)) = &zone
        && let Err(e) = schedule::parse_zone(&zone_name)
    {
        fields.problem(place.clone(), format!("timezone: {e}"));
    }
    let schedule = match fields.required::<String>("schedule") {
        Some((expression, place)) => match schedule::parse_cron(&expression) {
            Err(e) => {
                fields.problem(place, format!("schedule: {e}"));
                None
            }
            Ok(_) => Schedule::parse(&expression, &zone_name).ok(),
        },
        None => None,
    };
    let duration = |fields: &mut Fields, field: &str, text: Option<(String, String)>, default: Duration| match text {
        None => default,
        Some((text, place)) => duration::parse(&text).unwrap_or_else(|e| {
            fields.problem(place, format!("{field}: {e}"));
            default
        }),
    };
    let timeout = fields.get::<String>("timeout");
    let timeout = duration(&mut fields, "timeout", timeout, DEFAULT_TIMEOUT);
    let (retries, backoff) = match fields.get::<RetriesFile>("retries") {
        None => (0, DEFAULT_BACKOFF),
        Some((r, place)) => (
            r.count,
            duration(
                &mut fields,
                "retries.backoff",
                r.backoff.map(|b| (b, place)),
                DEFAULT_BACKOFF,
            ),
        ),
    };
    let overlap = fields
        .get::<Overlap>("overlap")
        .map_or_else(Overlap::default, |(v, _)| v);
    let catch_up = fields
        .get::<CatchUp>("catch_up")
        .map_or_else(CatchUp::default, |(v, _)| v);
    let enabled = fields.get::<bool>("enabled").is_none_or(|(v, _)| v);
    let params = fields
        .get::<BTreeMap<String, serde_json::Value>>("params")
        .map_or_else(BTreeMap::new, |(v, _)| v);
    if let Some(kind) = kind {
        check_params(kind, &text, path, &mut fields);
    }
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("job").to_string();
    match (kind, schedule) {
        (Some(kind), Some(schedule)) if fields.problems.is_empty() => Ok(Job {
            name,
            path: path.to_path_buf(),
            kind,
            schedule,
            timeout,
            retries,
            backoff,
            overlap,
            catch_up,
            enabled,
            params,
        }),
        _ => Err(fields.problems),
    }
}

/// What a parameter of a job kind accepts.
#[derive(Debug, Clone, Copy)]
enum Accepts {
    /// A list of model names.
    Models,
    /// A whole number at least this.
    WholeFrom(u64),
    /// A number within (low, high), each end open or closed.
    Number { low: f64, high: f64, low_open: bool },
}

/// The parameters each job kind reads (jobs/README.md lists them with their defaults).
fn known_params(kind: JobKind) -> &'static [(&'static str, Accepts)] {
    use Accepts::*;
    match kind {
        JobKind::Benchmark => &[
            ("models", Models),
            ("k", WholeFrom(1)),
            (
                "psi_threshold",
                Number {
                    low: 0.0,
                    high: f64::INFINITY,
                    low_open: true,
                },
            ),
            (
                "drift_sigmas",
                Number {
                    low: 0.0,
                    high: f64::INFINITY,
                    low_open: false,
                },
            ),
            (
                "drift_share",
                Number {
                    low: 0.0,
                    high: 1.0,
                    low_open: false,
                },
            ),
            ("drift_min_rows", WholeFrom(1)),
            ("group_min_clients", WholeFrom(2)),
            (
                "group_fdr",
                Number {
                    low: 0.0,
                    high: 1.0,
                    low_open: true,
                },
            ),
            (
                "drift_noise_alpha",
                Number {
                    low: 0.0,
                    high: 1.0,
                    low_open: true,
                },
            ),
        ],
        JobKind::Validation => &[
            ("models", Models),
            ("folds", WholeFrom(2)),
            ("recent_snapshots", WholeFrom(1)),
            ("bootstrap_resamples", WholeFrom(100)),
        ],
        JobKind::Retrain => &[
            ("models", Models),
            (
                "min_improvement",
                Number {
                    low: 0.0,
                    high: 1.0,
                    low_open: false,
                },
            ),
            (
                "alpha",
                Number {
                    low: 0.0,
                    high: 1.0,
                    low_open: true,
                },
            ),
            ("bootstrap_resamples", WholeFrom(100)),
        ],
        JobKind::Scoring => &[],
        JobKind::Business => &[
            ("conversion_days", WholeFrom(1)),
            (
                "contact_cost",
                Number {
                    low: 0.0,
                    high: f64::INFINITY,
                    low_open: true,
                },
            ),
            (
                "client_value",
                Number {
                    low: 0.0,
                    high: f64::INFINITY,
                    low_open: false,
                },
            ),
            (
                "alpha",
                Number {
                    low: 0.0,
                    high: 1.0,
                    low_open: true,
                },
            ),
            ("min_clients", WholeFrom(1)),
        ],
    }
}

/// The job file's `params`, each checked against what its kind reads, at its own line: an
/// unknown key (a typo would otherwise be silently ignored) or an impossible value is refused.
fn check_params(kind: JobKind, text: &str, path: &Path, fields: &mut Fields) {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        params: BTreeMap<String, serde_saphyr::Spanned<serde_json::Value>>,
    }
    let Ok(file) = super::parse_yaml_listed::<Params>(text, path) else {
        return; // The file's own parse reports it.
    };
    let known = known_params(kind);
    let kind_name = format!("{kind:?}").to_lowercase();
    for (name, value) in &file.params {
        let place = fields.place(value);
        let Some((_, accepts)) = known.iter().find(|(k, _)| k == name) else {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            let hint = crate::vocab::text::nearest(name, names.iter().copied())
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            let list = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            fields.problem(
                place,
                format!("params.{name}: a {kind_name} job has no such parameter{hint}; it reads: {list}"),
            );
            continue;
        };
        let v = &value.value;
        let problem = match *accepts {
            Accepts::Models => serde_json::from_value::<Vec<crate::vocab::ModelKind>>(v.clone())
                .err()
                .map(|_| {
                    format!(
                        "expected a list of models from {}, got {v}",
                        crate::vocab::ModelKind::names()
                    )
                }),
            Accepts::WholeFrom(low) => match v.as_u64() {
                Some(n) if n >= low => None,
                _ => Some(format!("expected a whole number from {low}, got {v}")),
            },
            Accepts::Number { low, high, low_open } => match v.as_f64() {
                Some(x) if x.is_finite() && (x > low || (!low_open && x == low)) && x <= high => None,
                _ => {
                    let open = if low_open { "above" } else { "from" };
                    let upper = if high.is_finite() {
                        format!(" to {high}")
                    } else {
                        String::new()
                    };
                    Some(format!("expected a number {open} {low}{upper}, got {v}"))
                }
            },
        };
        if let Some(problem) = problem {
            fields.problem(place, format!("params.{name}: {problem}"));
        }
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

    #[test]
    fn three_mistakes_in_one_file_are_three_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "daily-benchmark.yaml",
            "job: benchmark\nschedule: \"0 25 * * *\"\ntimout: 20m\noverlap: skipp\n",
        );
        let errors = load_job(&path).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0].contains("daily-benchmark.yaml:3:1: unknown key \"timout\" (did you mean \"timeout\"?)"),
            "{errors:#?}"
        );
        assert!(
            errors[1].contains("daily-benchmark.yaml:2:11: schedule: \"0 25 * * *\""),
            "{errors:#?}"
        );
        assert!(
            errors[2].contains("daily-benchmark.yaml:4:10: overlap: unknown variant `skipp`"),
            "{errors:#?}"
        );
    }
}
