//! Features of every snapshot up to a date: what models train on, one row per entity per month.

use crate::config::EngineConfig;
use crate::data::date::Date;
use crate::data::features::Features;
use crate::data::snapshot::{self, Snapshot};
use crate::data::store::{FeatureStore, StoreError};

/// Every snapshot's features, oldest first, and the latest snapshot itself (loaded once: it
/// labels the others, and the recommender trains on its holdings).
pub struct History {
    pub features: Vec<(Date, Features)>,
    pub latest: Snapshot,
}

/// Features of every snapshot up to `until` (default: all), read from the feature store or
/// built into it; churn outcomes come from the latest snapshot up to `until`. `on_snapshot`
/// is told each date as it is done.
pub fn build(
    config: &EngineConfig,
    until: Option<Date>,
    mut on_snapshot: impl FnMut(Date),
) -> Result<History, StoreError> {
    let (latest_date, latest_dir) = snapshot::latest_until(&config.data.raw_dir, until)?;
    let mut all = snapshot::list_snapshots(&config.data.raw_dir)?;
    all.retain(|(d, _)| *d <= latest_date);
    let latest: Snapshot = snapshot::load(&latest_dir, latest_date, config)?;
    let store = FeatureStore::new(config);
    let mut out = Vec::with_capacity(all.len());
    for (date, _) in &all {
        out.push((*date, store.features(*date, &latest)?));
        on_snapshot(*date);
    }
    Ok(History { features: out, latest })
}
