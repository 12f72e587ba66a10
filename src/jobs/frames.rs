//! The data the evaluating jobs read: the latest snapshot (it labels the earlier ones) and the
//! features of any earlier snapshot, built on demand rather than the whole history at once.

use super::JobError;
use crate::allocator;
use crate::config::EngineConfig;
use crate::data::date::Date;
use crate::data::features::{self, Features};
use crate::data::schema::Table;
use crate::data::snapshot::{self, Snapshot};
use crate::data::store::{FeatureStore, FeatureTable};
use crate::models::tabular::{self, TabularModel};
use crate::vocab::ModelKind;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The latest snapshot's tables the evaluating jobs read after its features are kept: the
/// churn labels' holdings, the recommender's clients, holdings and catalog.
const READ_AGAIN: [Table; 3] = [Table::Clients, Table::Holdings, Table::Catalog];

pub struct Timeline<'a> {
    config: &'a EngineConfig,
    /// One store for the run: the latest snapshot's holdings are hashed once.
    store: FeatureStore<'a>,
    /// Every snapshot up to the latest, oldest first.
    pub dates: Vec<(Date, PathBuf)>,
    /// The latest snapshot: whole, or — when its kept features are fresh — only the clients,
    /// holdings and catalog the evaluating jobs read from it (churn labels, the recommender).
    pub latest: Snapshot,
    /// Whether `latest` holds every table.
    complete: bool,
    /// Rows per table of the latest exports, as read.
    pub raw_rows: BTreeMap<String, usize>,
}

impl<'a> Timeline<'a> {
    /// Snapshots up to `until` (default: all).
    pub fn load(config: &'a EngineConfig, until: Option<&str>) -> Result<Timeline<'a>, JobError> {
        let (date, dir) = snapshot::find_snapshot(&config.data.raw_dir, until)?;
        let mut dates = snapshot::list_snapshots(&config.data.raw_dir)?;
        dates.retain(|(d, _)| *d <= date);
        let store = FeatureStore::new(config);
        // Exports whose features are kept fresh passed validation byte for byte: only the
        // tables read from the latest snapshot itself are read again (not the activity of every
        // client), and their row counts come from the manifest.
        let (latest, complete, raw_rows) = match store.fresh_manifest(date)? {
            Some(kept) => {
                let latest = snapshot::tables_validated_before(
                    &dir,
                    date,
                    config,
                    kept.warnings,
                    &READ_AGAIN,
                    snapshot::Cleaning::Cleaned,
                )?;
                (latest, false, kept.raw_rows)
            }
            None => {
                let latest = snapshot::load(&dir, date, config)?;
                let rows = Table::ALL
                    .iter()
                    .map(|t| (t.name().to_string(), latest.table(*t).height()))
                    .collect();
                (latest, true, rows)
            }
        };
        Ok(Timeline {
            config,
            store,
            dates,
            latest,
            complete,
            raw_rows,
        })
    }

    /// Builds and keeps the latest snapshot's features now if they are not kept (from the whole
    /// snapshot read), then lets go of the built frames and of every table but the holdings'
    /// holders and dates (what labelling the older snapshots reads): an older snapshot's build
    /// then runs beside those three columns only, and later steps read from the kept files just
    /// the columns they use. Call [`Timeline::read_latest_tables`] before reading the latest
    /// clients, holdings or catalog. The cold daily benchmark's peak with the whole latest
    /// snapshot held through the older build: 1.33 GiB at a million clients, 13.7 GiB at ten
    /// million; with its holdings and catalog held, 1.20 and 12.5 GiB; with the three columns
    /// only, 1.15–1.17 GiB at a million. What the build and the tables let go of is then
    /// handed back to the kernel ([`allocator::return_freed_memory`]): kept by the allocator,
    /// it was the floor the older build's own high-water mark rose from. With that and the
    /// same in [`Timeline::read_latest_tables`]: 0.99–1.03 GiB at a million, 9.8–10.1 GiB at
    /// ten million (from 11.8–12.6), for the pages zeroed again: +0.4 s of the cold run's
    /// 4.3 s at a million, +15 s of its 51 s at ten million (medians). A warm run does
    /// neither.
    pub fn keep_latest_features(&mut self) -> Result<(), JobError> {
        if self.complete {
            self.store
                .ensure(self.latest.date, Some(&self.latest), Some(&self.latest))?;
            self.latest.keep_label_inputs_only()?;
            self.complete = false;
            allocator::return_freed_memory();
        }
        Ok(())
    }

    /// The latest clients, holdings and catalog read again when
    /// [`Timeline::keep_latest_features`] let them go: the exports validated at the start of
    /// the run, unless one was replaced since (then the run fails rather than measure
    /// unvalidated rows).
    pub fn read_latest_tables(&mut self) -> Result<(), JobError> {
        if self.latest.clients.width() > 0 {
            return Ok(());
        }
        // What an older snapshot's build let go of goes back first: the rest of the run
        // (these tables, the latest features, drift beside the recommender) grows from what
        // is live, not from that build's high-water mark.
        allocator::return_freed_memory();
        let latest = &self.latest;
        for table in READ_AGAIN {
            if !self.store.export_unchanged(latest.date, table)? {
                return Err(JobError::Invalid(format!(
                    "{}: the {} export changed during this run; run it again",
                    latest.dir.display(),
                    table.name()
                )));
            }
        }
        let again = snapshot::tables_validated_before(
            &latest.dir,
            latest.date,
            self.config,
            latest.warnings.clone(),
            &READ_AGAIN,
            snapshot::Cleaning::Cleaned,
        )?;
        self.latest.clients = again.clients;
        self.latest.holdings = again.holdings;
        self.latest.catalog = again.catalog;
        Ok(())
    }

    /// Features of `date` (kept, or built and kept), churn outcomes from the latest snapshot.
    pub fn features(&self, date: Date) -> Result<Features, JobError> {
        if !self.dates.iter().any(|(d, _)| *d == date) {
            return Err(JobError::Invalid(format!("no snapshot {date}")));
        }
        Ok(self.store.features(date, self.loaded(date), &self.latest)?)
    }

    /// `date`'s whole snapshot when this timeline holds it, for building its features if they
    /// are not kept; `None` (read from disk then) for any other date, and for the latest when it
    /// was read only in part (its features were fresh then: were an export rewritten since,
    /// they are rebuilt from disk, never from a part).
    fn loaded(&self, date: Date) -> Option<&Snapshot> {
        (self.complete && date == self.latest.date).then_some(&self.latest)
    }

    /// The snapshots whose churn outcome the latest one knows, newest first.
    pub fn matured_dates(&self) -> Vec<Date> {
        let horizon = self.config.features.churn_horizon_days;
        self.dates
            .iter()
            .rev()
            .map(|(d, _)| *d)
            .filter(|d| features::reaches_horizon(*d, self.latest.date, horizon))
            .collect()
    }

    /// The clients of `date` with their churn outcome (rows without one dropped): every
    /// feature, or only `columns` (plus `cli` and `churn`) read from the kept features.
    pub fn labelled_clients(&self, date: Date, columns: Option<&[&str]>) -> Result<DataFrame, JobError> {
        let store = &self.store;
        let clients = match store.ensure(date, None, Some(&self.latest))? {
            (_, Some(built)) => built.clients,
            (stored, None) => store.clients_as_of(date, &stored.manifest, &self.latest, columns)?,
        };
        Ok(clients
            .lazy()
            .filter(col(tabular::CHURN.target).is_not_null())
            .collect()?)
    }

    /// One kept feature table of `date` (built and kept if missing), only `columns` when given.
    pub fn table(&self, date: Date, table: FeatureTable, columns: Option<&[&str]>) -> Result<DataFrame, JobError> {
        let store = &self.store;
        store.ensure(date, self.loaded(date), Some(&self.latest))?;
        Ok(store.read(date, table, columns)?)
    }
}

/// A model's predictions for every row of `frame`.
pub fn predict(model: &TabularModel, frame: &DataFrame) -> Result<Vec<f32>, JobError> {
    let started = std::time::Instant::now();
    let predicted = model.predict_frame(frame)?;
    tracing::debug!(
        rows = predicted.len(),
        seconds = started.elapsed().as_secs_f64(),
        "predicted"
    );
    Ok(predicted)
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

/// One feature table of every month, read from the feature store as training asks for it
/// (with churn as `latest` sees it), instead of a year of frames held in memory.
pub struct KeptMonths<'a> {
    store: FeatureStore<'a>,
    table: FeatureTable,
    dates: Vec<Date>,
    latest: &'a Snapshot,
}

impl<'a> KeptMonths<'a> {
    /// The months `model` learns from: clients for churn, managers or agencies.
    pub fn new(config: &'a EngineConfig, model: ModelKind, dates: Vec<Date>, latest: &'a Snapshot) -> Self {
        let table = match model {
            ModelKind::Manager => FeatureTable::Managers,
            ModelKind::Agency => FeatureTable::Agencies,
            _ => FeatureTable::Clients,
        };
        KeptMonths {
            store: FeatureStore::new(config),
            table,
            dates,
            latest,
        }
    }

    fn unreadable(&self, date: Date, e: crate::data::store::StoreError) -> tabular::TrainError {
        tabular::TrainError::File {
            path: self.store.dir(date).display().to_string(),
            message: e.to_string(),
        }
    }
}

impl tabular::Months for KeptMonths<'_> {
    fn dates(&self) -> Vec<Date> {
        self.dates.clone()
    }

    fn frame(&self, date: Date, columns: Option<&[&str]>) -> Result<DataFrame, tabular::TrainError> {
        let failed = |e| self.unreadable(date, e);
        if self.table != FeatureTable::Clients {
            return self.store.read(date, self.table, columns).map_err(failed);
        }
        let manifest = self.store.manifest(date).ok_or_else(|| tabular::TrainError::File {
            path: self
                .store
                .dir(date)
                .join(crate::data::store::MANIFEST)
                .display()
                .to_string(),
            message: "missing or unreadable".into(),
        })?;
        // Churn is attached by client: the id is read too, then left out if not asked for.
        let labelled = self
            .store
            .clients_as_of(date, &manifest, self.latest, columns)
            .map_err(failed)?;
        Ok(match columns {
            Some(columns) => labelled.select(columns.iter().copied())?,
            None => labelled,
        })
    }

    fn inputs(&self, date: Date, columns: &[&str]) -> Result<DataFrame, tabular::TrainError> {
        self.store
            .read(date, self.table, Some(columns))
            .map_err(|e| self.unreadable(date, e))
    }
}

/// The churn scores the scoring job stored for `date` when version `version` scored exactly
/// the clients of `clients`, in their order; `None` otherwise (never scored, scored by another
/// version, other clients).
pub fn stored_churn_scores(
    config: &EngineConfig,
    date: Date,
    version: u32,
    clients: &DataFrame,
) -> Result<Option<Vec<f64>>, JobError> {
    let dir = config.data.scores_dir.join(date.to_string());
    let Some(scored) =
        super::read_json_if_present::<crate::report::summary::ScoringSummary>(&dir.join("summary.json"))?
    else {
        return Ok(None);
    };
    if scored.clients.map(|c| c.model_version) != Some(version) {
        return Ok(None);
    }
    let path = dir.join("clients.parquet");
    let Ok(stored) = super::read_parquet_columns(&path, &["cli", "churn_probability"]) else {
        return Ok(None);
    };
    let same_clients = stored.height() == clients.height()
        && match (stored.column("cli"), clients.column("cli")) {
            (Ok(a), Ok(b)) => a.as_materialized_series().equals(b.as_materialized_series()),
            _ => false,
        };
    if !same_clients {
        return Ok(None);
    }
    // Read with the ids just above: the column is there.
    let Some(values) = column_f64(&stored, "churn_probability")? else {
        return Ok(None);
    };
    Ok(values.iter().all(|v| v.is_finite()).then_some(values))
}

/// `name` of `frame` as numbers (missing ones as NaN); `None` without such a column.
pub fn column_f64(frame: &DataFrame, name: &str) -> Result<Option<Vec<f64>>, JobError> {
    match frame.column(name) {
        Ok(c) => Ok(Some(
            c.cast(&DataType::Float64)?
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect(),
        )),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::format::FileFormat;
    use crate::data::synth::{BankSpec, write_bank};
    use crate::models::progress::{TrainingProgress, TrainingStep};
    use crate::models::registry::Registry;
    use crate::models::tabular::{InMemory, Months, TrainSettings};

    /// Every step a training told of.
    #[derive(Debug, Default)]
    struct Told(std::cell::RefCell<Vec<TrainingStep>>);

    impl TrainingProgress for Told {
        fn step(&self, step: TrainingStep) {
            self.0.borrow_mut().push(step);
        }
    }

    impl Told {
        /// Reading every month, the matrix of the fitted rows (the watched ones are not in it),
        /// rounds 1, 2, … up to early stopping's end, then the finish.
        fn were_in_order(&self, months: usize, rows_train: usize, best_rounds: u32, rounds: u32) {
            let steps = self.0.borrow();
            assert_eq!(steps.first(), Some(&TrainingStep::Reading { months }), "{steps:?}");
            let Some(TrainingStep::Matrix { rows }) = steps.get(1) else {
                panic!("the matrix second: {steps:?}");
            };
            assert!(*rows > 0 && *rows < rows_train, "{rows} of {rows_train}");
            assert_eq!(steps.last(), Some(&TrainingStep::Finishing));
            let boosted: Vec<TrainingStep> = steps[2..steps.len() - 1].to_vec();
            assert!(boosted.len() >= best_rounds as usize && best_rounds > 0, "{steps:?}");
            for (i, step) in boosted.iter().enumerate() {
                let done = i as u32 + 1;
                assert_eq!(*step, TrainingStep::Boosting { done, of: rounds });
            }
        }
    }

    #[test]
    fn the_latest_tables_read_again_are_those_of_the_whole_snapshot() {
        let (_dir, config) = crate::data::store::tests::bank(4);
        let (date, raw) = snapshot::find_snapshot(&config.data.raw_dir, None).unwrap();
        // Some regions and segments missing, so that cleaning changes the table.
        let path = raw.join("clients.parquet");
        let exported = crate::data::format::read_parquet(&path).unwrap();
        let every_seventh = (0..exported.height() as u32)
            .map(|i| i % 7 == 0)
            .collect::<BooleanChunked>();
        let mut gapped = exported
            .lazy()
            .with_columns(["region", "segment"].map(|c| {
                when(lit(Series::new("gap".into(), every_seventh.clone().into_series())))
                    .then(lit(NULL).cast(DataType::String))
                    .otherwise(col(c))
                    .alias(c)
            }))
            .collect()
            .unwrap();
        crate::data::format::write_frame(&mut gapped, &path, FileFormat::Parquet).unwrap();
        let whole = snapshot::load(&raw, date, &config).unwrap();
        assert!(
            whole
                .cleaning
                .changes
                .iter()
                .any(|c| c.column == "region" && c.rows > 0),
            "cleaning filled the gaps: {:?}",
            whole.cleaning
        );

        let mut timeline = Timeline::load(&config, None).unwrap();
        timeline.keep_latest_features().unwrap();
        assert_eq!(timeline.latest.clients.width(), 0);
        assert_eq!(timeline.latest.activity.width(), 0);
        assert_eq!(timeline.latest.catalog.width(), 0);
        let label_inputs = whole.holdings.select(snapshot::LABEL_HOLDINGS_COLUMNS).unwrap();
        assert!(timeline.latest.holdings.equals_missing(&label_inputs));
        assert!(FeatureStore::new(&config).fresh_manifest(date).unwrap().is_some());
        timeline.read_latest_tables().unwrap();
        assert!(timeline.latest.clients.equals_missing(&whole.clients));
        assert!(timeline.latest.holdings.equals_missing(&whole.holdings));
        assert!(timeline.latest.catalog.equals_missing(&whole.catalog));

        // An export replaced after it was validated is not read unvalidated.
        std::fs::remove_dir_all(&config.data.processed_dir).unwrap();
        let mut timeline = Timeline::load(&config, None).unwrap();
        timeline.keep_latest_features().unwrap();
        let mut shorter = whole.clients.head(Some(10));
        crate::data::format::write_frame(&mut shorter, &path, FileFormat::Parquet).unwrap();
        let refused = timeline.read_latest_tables().unwrap_err().to_string();
        assert!(refused.contains("clients export changed during this run"), "{refused}");
        assert!(refused.contains(&raw.display().to_string()), "{refused}");
    }

    #[test]
    fn training_from_kept_months_gives_the_model_trained_on_frames_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::default();
        config.data.raw_dir = dir.path().join("raw");
        config.data.processed_dir = dir.path().join("processed");
        config.models.boosting.rounds = 30;
        let spec = BankSpec {
            clients: 800,
            months: 8,
            ..BankSpec::default()
        };
        write_bank(spec, FileFormat::Parquet, &config.data.raw_dir, |_| {}).unwrap();
        let (dates, latest) = crate::data::history::ensure(&config, None, |_| {}).unwrap();
        let horizon = config.features.churn_horizon_days;
        // As training read its history before the feature store: every month built from its
        // exports, labelled by the latest one, all in memory at once.
        let mut clients = Vec::new();
        let mut managers = Vec::new();
        for date in &dates {
            let loaded = snapshot::load(&config.data.raw_dir.join(date.to_string()), *date, &config).unwrap();
            let built = features::build(&loaded, Some(&latest), horizon).unwrap();
            clients.push((*date, built.clients));
            managers.push((*date, built.managers));
        }
        let latest = latest.label_inputs_only().unwrap();
        // No cross-validation for either model: the comparison is of the fitted model.
        let settings = TrainSettings {
            cv_folds: 0,
            ..TrainSettings::of(&config, ModelKind::Churn)
        };
        for (spec, in_memory) in [(&tabular::CHURN, clients), (&tabular::MANAGER, managers)] {
            let kept = KeptMonths::new(&config, spec.model, dates.clone(), &latest);
            assert_eq!(kept.dates(), dates);
            let registries = [Registry::new(dir.path().join("a")), Registry::new(dir.path().join("b"))];
            let a = tabular::train(spec, &InMemory(in_memory), settings, &registries[0], None).unwrap();
            // Training from the store also says where it is, step by step and round by round.
            let told = Told::default();
            let told_settings = TrainSettings {
                progress: &told,
                ..settings
            };
            let b = tabular::train(spec, &kept, told_settings, &registries[1], None).unwrap();
            told.were_in_order(dates.len(), b.rows_train, b.best_rounds, settings.boosting.rounds);
            assert!(a.rows_train > 0);
            assert_eq!(
                (a.rows_train, &a.data_hash),
                (b.rows_train, &b.data_hash),
                "{}",
                spec.model
            );
            for file in ["model.json", "design.json", "reference.json"] {
                let read = |r: &Registry| std::fs::read(r.version_dir(spec.model, 1).join(file)).unwrap();
                assert!(
                    read(&registries[0]) == read(&registries[1]),
                    "{} {file} differs",
                    spec.model
                );
            }
        }
    }
}
