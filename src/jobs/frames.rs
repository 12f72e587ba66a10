//! The data the evaluating jobs read: the latest snapshot (it labels the earlier ones) and the
//! features of any earlier snapshot, built on demand rather than the whole history at once.

use super::JobError;
use crate::config::EngineConfig;
use crate::data::date::Date;
use crate::data::features::{self, Features};
use crate::data::snapshot::{self, Snapshot};
use crate::models::tabular::{self, TabularModel};
use polars::prelude::*;
use std::path::PathBuf;

pub struct Timeline<'a> {
    config: &'a EngineConfig,
    /// Every snapshot up to the latest, oldest first.
    pub dates: Vec<(Date, PathBuf)>,
    pub latest: Snapshot,
}

impl<'a> Timeline<'a> {
    /// Snapshots up to `until` (default: all).
    pub fn load(config: &'a EngineConfig, until: Option<&str>) -> Result<Timeline<'a>, JobError> {
        let (date, dir) = snapshot::find_snapshot(&config.data.raw_dir, until)?;
        let mut dates = snapshot::list_snapshots(&config.data.raw_dir)?;
        dates.retain(|(d, _)| *d <= date);
        let latest = snapshot::load(&dir, date, config)?;
        Ok(Timeline { config, dates, latest })
    }

    /// Features of `date`, churn outcomes from the latest snapshot.
    pub fn features(&self, date: Date) -> Result<Features, JobError> {
        let horizon = self.config.features.churn_horizon_days;
        if date == self.latest.date {
            return Ok(features::build(&self.latest, None, horizon)?);
        }
        let dir = self
            .dates
            .iter()
            .find(|(d, _)| *d == date)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| JobError::Invalid(format!("no snapshot {date}")))?;
        let loaded = snapshot::load(&dir, date, self.config)?;
        Ok(features::build(&loaded, Some(&self.latest), horizon)?)
    }

    /// The newest snapshots whose churn outcome is known (up to `count`), newest first, with
    /// only their labelled clients kept.
    pub fn matured(&self, count: usize) -> Result<Vec<(Date, Features)>, JobError> {
        let mut out = Vec::new();
        for (date, _) in self.dates.iter().rev() {
            if out.len() >= count {
                break;
            }
            if *date == self.latest.date {
                continue; // its outcome lies in the future
            }
            let mut built = self.features(*date)?;
            built.clients = built
                .clients
                .lazy()
                .filter(col(tabular::CHURN.target).is_not_null())
                .collect()?;
            if built.clients.height() > 0 {
                out.push((*date, built));
            }
        }
        Ok(out)
    }
}

/// A model's predictions for every row of `frame`.
pub fn predict(model: &TabularModel, frame: &DataFrame) -> Result<Vec<f32>, JobError> {
    Ok(model.booster.predict(&model.design.matrix(frame)?)?)
}

/// The headline figure of a model's training holdout (what decay is measured against).
pub fn trained_headline(model: &TabularModel) -> Option<f64> {
    Some(model.meta.holdout.headline().1).filter(|v| v.is_finite())
}

/// Relative change `(now - before) / before`; `None` when `before` is 0 or missing.
pub fn relative_change(now: f64, before: Option<f64>) -> Option<f64> {
    before.filter(|b| *b != 0.0 && b.is_finite()).map(|b| (now - b) / b)
}

pub fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|v| *v as f64).collect()
}
