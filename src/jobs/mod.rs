//! Jobs: what the scheduler (and `bankml run`) runs. Each is `run(&Context) -> RunOutcome`:
//! a status, timings, the files written and a list of observations — one list that reports,
//! Prometheus and alert rules all read, so a figure is computed once.
//!
//! Knows nothing of HTTP or of the command line.

pub mod benchmark;
pub mod business;
pub mod campaign_lists;
pub mod distributed;
pub mod frames;
pub mod group_baseline;
pub mod kubernetes;
pub mod retrain;
pub mod score;
pub mod segments;
pub mod validation;

use crate::config::EngineConfig;
use crate::vocab::ModelKind;
pub use crate::vocab::{Observation, RunOutcome, Started};
use std::collections::BTreeMap;

/// What a job runs against.
pub struct Context<'a> {
    pub config: &'a EngineConfig,
    /// Snapshot date (`YYYY-MM-DD`); `None`: the latest.
    pub snapshot: Option<String>,
    /// Also write CSV copies of tables.
    pub csv: bool,
    /// The job file's `params`.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The summary of this job's previous successful run (stability checks), if any.
    pub previous: Option<serde_json::Value>,
}

impl<'a> Context<'a> {
    pub fn new(config: &'a EngineConfig) -> Context<'a> {
        Context {
            config,
            snapshot: None,
            csv: false,
            params: BTreeMap::new(),
            previous: None,
        }
    }

    pub fn param_f64(&self, name: &str, default: f64) -> f64 {
        self.params
            .get(name)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(default)
    }

    pub fn param_usize(&self, name: &str, default: usize) -> usize {
        self.params
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .map_or(default, |v| v as usize)
    }

    /// `params.models`, or every model.
    pub fn models(&self) -> Result<Vec<ModelKind>, JobError> {
        let Some(value) = self.params.get("models") else {
            return Ok(ModelKind::ALL.to_vec());
        };
        serde_json::from_value(value.clone())
            .map_err(|e| JobError::Invalid(format!("params.models: {e} (known: {})", ModelKind::names())))
    }

    /// Whether `params.models` (or its default, every model) includes `kind`.
    pub fn wants(&self, kind: ModelKind) -> Result<bool, JobError> {
        Ok(self.models()?.contains(&kind))
    }
}

/// Runs the job of `kind`.
pub fn run(kind: crate::config::jobs::JobKind, ctx: &Context) -> Result<RunOutcome, JobError> {
    use crate::config::jobs::JobKind;
    match kind {
        JobKind::Benchmark => benchmark::run(ctx),
        JobKind::Validation => validation::run(ctx),
        JobKind::Retrain => retrain::run(ctx),
        JobKind::Scoring => score::run(ctx),
        JobKind::Business => business::run(ctx),
    }
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
    #[error(transparent)]
    Store(#[from] crate::data::store::StoreError),
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
    #[error(transparent)]
    Recommender(#[from] crate::models::recommender::RecommenderError),
    #[error("{0}")]
    Invalid(String),
}

/// A JSON file bankml wrote earlier (a model version's `reference.json` or `calibration.json`,
/// a scoring run's `summary.json`); `None` when there is none.
pub(crate) fn read_json_if_present<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<Option<T>, JobError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JobError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(JobError::Invalid(format!("{}: {e}", path.display()))),
    }
}

/// A Parquet file bankml wrote earlier (a version's reference rows, a scoring run's clients).
pub(crate) fn read_parquet(path: &std::path::Path) -> Result<polars::prelude::DataFrame, JobError> {
    crate::data::format::read_parquet(path).map_err(|e| JobError::Invalid(format!("{}: {e}", path.display())))
}

/// Only `columns` of a Parquet file bankml wrote (projection: the other columns are not read).
pub(crate) fn read_parquet_columns(
    path: &std::path::Path,
    columns: &[&str],
) -> Result<polars::prelude::DataFrame, JobError> {
    use polars::prelude::*;
    let invalid = |e: PolarsError| JobError::Invalid(format!("{}: {e}", path.display()));
    let source = PlRefPath::try_from_path(path).map_err(invalid)?;
    LazyFrame::scan_parquet(source, ScanArgsParquet::default())
        .map_err(invalid)?
        .select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()
        .map_err(invalid)
}

/// `None` when the model has no champion (or `alias`) yet.
pub(crate) fn absent_if_untrained<T>(
    result: Result<T, crate::models::tabular::TrainError>,
) -> Result<Option<T>, JobError> {
    use crate::models::registry::RegistryError;
    use crate::models::tabular::TrainError;
    match result {
        Ok(m) => Ok(Some(m)),
        Err(TrainError::Registry(RegistryError::NoAlias { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
