//! Jobs: what the scheduler (and `bankml run`) runs. Each is `run(&Context) -> RunOutcome`:
//! a status, timings, the files written and a list of observations — one list that reports,
//! Prometheus and alert rules all read, so a figure is computed once.
//!
//! Knows nothing of HTTP or of the command line.

pub mod score;

use crate::config::EngineConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a job runs against.
pub struct Context<'a> {
    pub config: &'a EngineConfig,
    /// Snapshot date (`YYYY-MM-DD`); `None`: the latest.
    pub snapshot: Option<String>,
    /// Also write CSV copies of tables.
    pub csv: bool,
}

/// One measured figure, e.g. `churn_clients{risk="High"} 1285`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Observation {
    pub fn new(name: &str, labels: &[(&str, &str)], value: f64) -> Observation {
        Observation {
            name: name.to_string(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub job: String,
    pub status: RunStatus,
    pub started_at: String,
    pub seconds: f64,
    /// Folders and files written.
    pub artifacts: Vec<PathBuf>,
    pub observations: Vec<Observation>,
    /// The job's own summary document (what it wrote as `summary.json`, if anything).
    pub summary: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no trained models yet: run `bankml train` first")]
    NoModels,
    #[error(transparent)]
    Ingest(#[from] crate::data::snapshot::IngestError),
    #[error(transparent)]
    Model(#[from] crate::models::tabular::TrainError),
    #[error(transparent)]
    Files(#[from] crate::fsutil::FsError),
    #[error(transparent)]
    Write(#[from] crate::data::format::WriteError),
    #[error(transparent)]
    Boost(#[from] crate::models::boosted::BoostError),
    #[error(transparent)]
    Design(#[from] crate::models::design::DesignError),
    #[error("{0}")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("a scoring worker stopped unexpectedly")]
    WorkerPanicked,
}
