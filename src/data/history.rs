//! Features of every snapshot up to a date: what models train on, one row per entity per month.

use crate::config::EngineConfig;
use crate::data::date::Date;
use crate::data::features::{self, Features};
use crate::data::snapshot::{self, IngestError, Snapshot};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("features of {date}: {source}")]
    Features {
        date: Date,
        source: polars::prelude::PolarsError,
    },
}

/// Every snapshot's features, oldest first, and the latest snapshot itself (loaded once: it
/// labels the others, and the recommender trains on its holdings).
pub struct History {
    pub features: Vec<(Date, Features)>,
    pub latest: Snapshot,
}

/// Features of every snapshot up to `until` (default: all); churn outcomes come from the
/// latest snapshot up to `until`. `on_snapshot` is told each date as it is done.
pub fn build(
    config: &EngineConfig,
    until: Option<Date>,
    mut on_snapshot: impl FnMut(Date),
) -> Result<History, HistoryError> {
    let (latest_date, latest_dir) = snapshot::latest_until(&config.data.raw_dir, until)?;
    let mut all = snapshot::list_snapshots(&config.data.raw_dir)?;
    all.retain(|(d, _)| *d <= latest_date);
    let latest: Snapshot = snapshot::load(&latest_dir, latest_date, config)?;
    let horizon = config.features.churn_horizon_days;
    let mut out = Vec::with_capacity(all.len());
    for (date, dir) in &all {
        let built = if *date == latest_date {
            features::build(&latest, Some(&latest), horizon)
        } else {
            let loaded = snapshot::load(dir, *date, config)?;
            features::build(&loaded, Some(&latest), horizon)
        }
        .map_err(|source| HistoryError::Features { date: *date, source })?;
        on_snapshot(*date);
        out.push((*date, built));
    }
    Ok(History { features: out, latest })
}
