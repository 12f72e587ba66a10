//! Features of every snapshot up to a date, kept in the feature store: what models train on,
//! one row per entity per month.

use crate::config::EngineConfig;
use crate::data::date::Date;
use crate::data::snapshot::{self, Snapshot};
use crate::data::store::{FeatureStore, StoreError};

/// Makes sure every snapshot up to `until` has its features kept (building those missing or
/// stale, one at a time), without holding them: the dates, oldest first, and the latest
/// snapshot (it labels the others). `on_snapshot` is told each date as it is done.
pub fn ensure(
    config: &EngineConfig,
    until: Option<Date>,
    mut on_snapshot: impl FnMut(Date),
) -> Result<(Vec<Date>, Snapshot), StoreError> {
    let (latest_date, latest_dir) = snapshot::latest_until(&config.data.raw_dir, until)?;
    let mut all = snapshot::list_snapshots(&config.data.raw_dir)?;
    all.retain(|(d, _)| *d <= latest_date);
    let latest: Snapshot = snapshot::load(&latest_dir, latest_date, config)?;
    let store = FeatureStore::new(config);
    for (date, _) in &all {
        let loaded = (*date == latest_date).then_some(&latest);
        store.ensure(*date, loaded, Some(&latest))?;
        on_snapshot(*date);
    }
    Ok((all.into_iter().map(|(d, _)| d).collect(), latest))
}
