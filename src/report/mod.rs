//! Run reports: `reports/<job>/<run id>/report.json` (the run, its models and every
//! observation) and `observations.csv`. Written by the run itself, read by the daemon (metrics),
//! the API (`/api/v1/reports/latest`) and people.

pub mod campaigns;
pub mod html;
pub mod index;
pub mod summary;
pub mod svg;

use crate::fsutil;
use crate::vocab::condition::{CompareTo, Op};
use crate::vocab::{ModelKind, Observation, RunOutcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub run_id: i64,
    pub job: String,
    pub kind: String,
    /// Champion version of each model when the run ended.
    pub models: BTreeMap<ModelKind, Option<u32>>,
    pub outcome: RunOutcome,
}

pub fn run_dir(reports_dir: &Path, job: &str, run_id: i64) -> PathBuf {
    reports_dir.join(job).join(run_id.to_string())
}

/// A rule watching a figure, shown beside it in the report (its condition, and whether this
/// run's value breaches it). The caller builds these from the alert rules: the report knows
/// figures, not rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub rule: String,
    pub observation: String,
    /// The figure's labels must include these.
    pub labels: BTreeMap<String, String>,
    pub op: Op,
    pub threshold: f64,
    pub compare_to: CompareTo,
}

impl Check {
    pub fn watches(&self, o: &Observation) -> bool {
        o.name == self.observation && self.labels.iter().all(|(k, v)| o.labels.get(k) == Some(v))
    }

    /// Whether `value` breaches, `previous` being the same series' value in the run before;
    /// `None` where a change is compared and there is none (first run, or from zero) — as the
    /// alert evaluation decides it.
    pub fn breaches(&self, value: f64, previous: Option<f64>) -> Option<bool> {
        let compared = match self.compare_to {
            CompareTo::Value => value,
            CompareTo::PreviousRun => {
                let previous = previous.filter(|p| *p != 0.0 && p.is_finite())?;
                (value - previous) / previous.abs()
            }
        };
        Some(compared.is_finite() && self.op.holds(compared, self.threshold))
    }

    /// `< 0.8`, or `change since the previous run < -5 %`: the threshold as the rule file
    /// writes it.
    pub fn condition(&self) -> String {
        // Rounded to 10 decimals, so -0.05 × 100 reads -5, not -5.000000000000001.
        let plain = |x: f64| (x * 1e10).round() / 1e10;
        match self.compare_to {
            CompareTo::Value => format!("{} {}", self.op.symbol(), plain(self.threshold)),
            CompareTo::PreviousRun => format!(
                "change since the previous run {} {} %",
                self.op.symbol(),
                plain(self.threshold * 100.0)
            ),
        }
    }
}

/// Earlier reports of `job` (up to `count`, oldest first), read from `reports_dir`.
pub fn past(reports_dir: &Path, job: &str, before: i64, count: usize) -> Vec<Report> {
    let mut ids: Vec<i64> = std::fs::read_dir(reports_dir.join(job))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .filter(|id| *id < before)
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids.iter()
        .rev()
        .take(count)
        .rev()
        .filter_map(|id| read(&run_dir(reports_dir, job, *id).join("report.json")).ok())
        .collect()
}

/// Writes the report's files into `dir` (each atomically): report.json, observations.csv and
/// report.html (with the trend over `past` runs, and each figure's `checks`).
pub fn write_all(dir: &Path, report: &Report, past: &[Report], checks: &[Check]) -> Result<PathBuf, fsutil::FsError> {
    let path = write(dir, report)?;
    fsutil::write_bytes_atomic(&dir.join("report.html"), html::render(report, past, checks).as_bytes())?;
    Ok(path)
}

/// Writes report.json and observations.csv into `dir` (each atomically).
pub fn write(dir: &Path, report: &Report) -> Result<PathBuf, fsutil::FsError> {
    std::fs::create_dir_all(dir).map_err(fsutil::io_error("creating", dir))?;
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    let path = dir.join("report.json");
    fsutil::write_bytes_atomic(&path, json.as_bytes())?;
    fsutil::write_bytes_atomic(
        &dir.join("observations.csv"),
        observations_csv(&report.outcome.observations).as_bytes(),
    )?;
    Ok(path)
}

pub fn read(path: &Path) -> Result<Report, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `name,labels,value` — labels as `key=value;…`.
pub fn observations_csv(observations: &[Observation]) -> String {
    let mut out = String::from("name,labels,value\n");
    for o in observations {
        out.push_str(&format!(
            "{},{},{}\n",
            csv_field(&o.name),
            csv_field(&crate::vocab::text::join_labels(&o.labels, ";")),
            o.value
        ));
    }
    out
}
