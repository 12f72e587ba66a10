//! Features kept per snapshot: built once from the raw exports, stored in
//! `data/processed/<date>/` with what they were built from, and read back column by column.
//!
//! A snapshot's features depend on its own exports, the ingest and cleaning settings and the
//! code that reads and builds them — and on nothing later. Those are recorded in
//! `manifest.json` (a BLAKE3 hash of each export file, of the settings, of the code); a
//! reader finding them equal reads the Parquet files instead of rebuilding, and a changed
//! export, setting or bankml build rebuilds that snapshot alone.
//!
//! The churn outcome is the exception: it is read off the *newest* snapshot's holdings, so it
//! changes when a month arrives. The stored `churn` column is the outcome as the newest
//! snapshot of the build (or of the last `bankml features`) saw it, and the manifest says
//! which; a reader with a newer snapshot recomputes the column from that snapshot's holdings
//! ([`attach_churn`]), which costs one group-by, not a rebuild.

use crate::config::EngineConfig;
use crate::data::clean::CleaningReport;
use crate::data::date::Date;
use crate::data::features::{self, CHURN_LABEL, Features};
use crate::data::problem::Problem;
use crate::data::snapshot::{self, IngestError, Snapshot};
use crate::fsutil::{self, FsError, StagedDir};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";

/// The three feature tables of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureTable {
    Clients,
    Managers,
    Agencies,
}

impl FeatureTable {
    pub const ALL: [FeatureTable; 3] = [FeatureTable::Clients, FeatureTable::Managers, FeatureTable::Agencies];

    pub fn file_stem(self) -> &'static str {
        match self {
            FeatureTable::Clients => "clients",
            FeatureTable::Managers => "managers",
            FeatureTable::Agencies => "agencies",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("features of {date}: {source}")]
    Features { date: Date, source: PolarsError },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Fs(#[from] FsError),
}

fn file_error(path: &Path) -> impl FnOnce(String) -> StoreError + '_ {
    move |message| StoreError::File {
        path: path.into(),
        message,
    }
}

/// One export file as it was when the features were built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub bytes: u64,
    pub blake3: String,
}

/// What a snapshot's features were built from; equal inputs mean equal features.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltFrom {
    /// Every file of `data/raw/<date>/`, by name.
    pub inputs: BTreeMap<String, InputFile>,
    /// The ingest and cleaning settings (column mapping, caps, age range).
    pub settings: String,
    /// The code that reads, validates, cleans and builds (see [`code_hash`]).
    pub code: String,
}

/// Whose holdings the stored `churn` column was read off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labeller {
    pub snapshot: String,
    /// The hash of that snapshot's holdings export.
    pub holdings: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub snapshot: String,
    pub bankml: String,
    pub built_from: BuiltFrom,
    /// `None` when no snapshot reached the horizon at the build (the column is empty).
    pub churn_labelled_by: Option<Labeller>,
    /// Rows per raw table, so readers need not load the exports to count them.
    pub raw_rows: BTreeMap<String, usize>,
    pub rows: BTreeMap<String, usize>,
    pub build_seconds: f64,
    pub cleaning: CleaningReport,
    pub warnings: Vec<Problem>,
}

/// A hash of the source of every module between the exports and the stored features: a
/// bankml build that reads or computes a feature differently never reads features an
/// older build stored.
pub fn code_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut hasher = blake3::Hasher::new();
        for source in [
            include_str!("features/mod.rs"),
            include_str!("features/client_totals.rs"),
            include_str!("client_rows.rs"),
            include_str!("values.rs"),
            include_str!("products.rs"),
            include_str!("grouping.rs"),
            include_str!("clean.rs"),
            include_str!("source.rs"),
            include_str!("table.rs"),
            include_str!("format.rs"),
            include_str!("schema.rs"),
            include_str!("validate.rs"),
            include_str!("snapshot.rs"),
            include_str!("store.rs"),
        ] {
            hasher.update(source.as_bytes());
        }
        hasher.finalize().to_hex()[..16].to_string()
    })
}

fn settings_hash(config: &EngineConfig) -> String {
    // serde_json objects are sorted maps: the same settings give the same text.
    let text = serde_json::json!({
        "ingest": serde_json::to_value(&config.ingest).unwrap_or_default(),
        "cleaning": serde_json::to_value(&config.cleaning).unwrap_or_default(),
    })
    .to_string();
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

fn hash_file(path: &Path) -> Result<InputFile, StoreError> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path).map_err(|e| file_error(path)(format!("cannot read: {e}")))?;
    let bytes = file
        .metadata()
        .map_err(|e| file_error(path)(format!("cannot read: {e}")))?
        .len();
    hasher
        .update_reader(file)
        .map_err(|e| file_error(path)(format!("cannot read: {e}")))?;
    Ok(InputFile {
        bytes,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// The kept features of every snapshot under `config.data.processed_dir`.
pub struct FeatureStore<'a> {
    config: &'a EngineConfig,
    /// The last snapshot's labeller, hashed once however many snapshots it labels.
    labeller: std::sync::Mutex<Option<Labeller>>,
}

/// Whether a call found the features kept or built them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Kept,
    Built,
}

/// One snapshot's features, as kept or just built, with its manifest.
pub struct Stored {
    pub manifest: Manifest,
    pub origin: Origin,
}

impl<'a> FeatureStore<'a> {
    pub fn new(config: &'a EngineConfig) -> FeatureStore<'a> {
        FeatureStore {
            config,
            labeller: std::sync::Mutex::new(None),
        }
    }

    pub fn dir(&self, date: Date) -> PathBuf {
        self.config.data.processed_dir.join(date.to_string())
    }

    fn raw_dir(&self, date: Date) -> PathBuf {
        self.config.data.raw_dir.join(date.to_string())
    }

    /// What the features of `date` would be built from now.
    pub fn built_from(&self, date: Date) -> Result<BuiltFrom, StoreError> {
        let raw = self.raw_dir(date);
        let entries = std::fs::read_dir(&raw).map_err(|e| file_error(&raw)(format!("cannot list: {e}")))?;
        let mut inputs = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| file_error(&raw)(format!("cannot list: {e}")))?;
            let path = entry.path();
            if path.is_file() {
                inputs.insert(entry.file_name().to_string_lossy().into_owned(), hash_file(&path)?);
            }
        }
        Ok(BuiltFrom {
            inputs,
            settings: settings_hash(self.config),
            code: code_hash().to_string(),
        })
    }

    /// The manifest kept for `date`, if any and readable.
    pub fn manifest(&self, date: Date) -> Option<Manifest> {
        let text = std::fs::read_to_string(self.dir(date).join(MANIFEST)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether `table`'s export of `date` is still the file the kept features were built from
    /// (for a reader that validated it earlier in the same run and reads it again).
    pub fn export_unchanged(&self, date: Date, table: crate::data::schema::Table) -> Result<bool, StoreError> {
        let Some(manifest) = self.manifest(date) else {
            return Ok(false);
        };
        let mut ignored = crate::data::problem::Problems::default();
        let Some((path, _)) = crate::data::source::locate(&self.raw_dir(date), table, &mut ignored) else {
            return Ok(false);
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(manifest.built_from.inputs.get(&name) == Some(&hash_file(&path)?))
    }

    /// The kept manifest of `date` when its features are fresh (built from the exports, settings
    /// and code as they are now): then the exports passed validation as they are.
    pub fn fresh_manifest(&self, date: Date) -> Result<Option<Manifest>, StoreError> {
        let from = self.built_from(date)?;
        Ok(self.fresh(date, &from))
    }

    /// The kept manifest of `date` when it was built from exactly `from` and all its tables
    /// are there.
    fn fresh(&self, date: Date, from: &BuiltFrom) -> Option<Manifest> {
        let manifest = self.manifest(date).filter(|m| &m.built_from == from)?;
        let dir = self.dir(date);
        FeatureTable::ALL
            .iter()
            .all(|t| dir.join(format!("{}.parquet", t.file_stem())).is_file())
            .then_some(manifest)
    }

    /// Makes sure the features of `date` are kept, building them from the exports when they
    /// are missing or stale. `loaded` is the snapshot when the caller has it already; `later`
    /// labels churn (the newest snapshot).
    pub fn ensure(
        &self,
        date: Date,
        loaded: Option<&Snapshot>,
        later: Option<&Snapshot>,
    ) -> Result<(Stored, Option<Features>), StoreError> {
        let from = self.built_from(date)?;
        if let Some(manifest) = self.fresh(date, &from) {
            return Ok((
                Stored {
                    manifest,
                    origin: Origin::Kept,
                },
                None,
            ));
        }
        let owned;
        let snapshot = match loaded {
            Some(s) => s,
            None => {
                owned = snapshot::load(&self.raw_dir(date), date, self.config)?;
                &owned
            }
        };
        let (manifest, built) = self.build(snapshot, later, from)?;
        Ok((
            Stored {
                manifest,
                origin: Origin::Built,
            },
            Some(built),
        ))
    }

    /// Builds and keeps the features of `snapshot`, whatever is kept already.
    pub fn rebuild(&self, snapshot: &Snapshot, later: Option<&Snapshot>) -> Result<(Manifest, Features), StoreError> {
        let from = self.built_from(snapshot.date)?;
        self.build(snapshot, later, from)
    }

    fn build(
        &self,
        snapshot: &Snapshot,
        later: Option<&Snapshot>,
        from: BuiltFrom,
    ) -> Result<(Manifest, Features), StoreError> {
        let started = std::time::Instant::now();
        let date = snapshot.date;
        let horizon = self.config.features.churn_horizon_days;
        let mut built =
            features::build(snapshot, later, horizon).map_err(|source| StoreError::Features { date, source })?;
        let labeller = match later {
            Some(l) => self.labeller_for(date, l)?,
            None => None,
        };
        let raw_rows = [
            ("clients", &snapshot.clients),
            ("holdings", &snapshot.holdings),
            ("catalog", &snapshot.catalog),
            ("managers", &snapshot.managers),
            ("agencies", &snapshot.agencies),
            ("activity", &snapshot.activity),
        ]
        .into_iter()
        .map(|(n, f)| (n.to_string(), f.height()))
        .collect();
        let manifest = Manifest {
            snapshot: date.to_string(),
            bankml: env!("CARGO_PKG_VERSION").into(),
            built_from: from,
            churn_labelled_by: labeller,
            raw_rows,
            rows: FeatureTable::ALL
                .iter()
                .map(|t| (t.file_stem().to_string(), table_of(&built, *t).height()))
                .collect(),
            build_seconds: started.elapsed().as_secs_f64(),
            cleaning: snapshot.cleaning.clone(),
            warnings: snapshot.warnings.clone(),
        };
        self.write(date, &mut built, &manifest, false)?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "features: written");
        Ok((manifest, built))
    }

    /// Writes the three tables and the manifest as one folder swap: a reader sees the old
    /// folder or the new one. `csv` also writes CSV copies for people.
    pub fn write(&self, date: Date, built: &mut Features, manifest: &Manifest, csv: bool) -> Result<(), StoreError> {
        use crate::data::format::{FileFormat, write_frame};
        let out = self.dir(date);
        let staged = StagedDir::new(&out)?;
        for table in FeatureTable::ALL {
            let frame = table_of_mut(built, table);
            let stem = table.file_stem();
            let path = staged.path().join(format!("{stem}.parquet"));
            write_frame(frame, &path, FileFormat::Parquet).map_err(|e| file_error(&out)(e.to_string()))?;
            if csv {
                let path = staged.path().join(format!("{stem}.csv"));
                write_frame(frame, &path, FileFormat::Csv).map_err(|e| file_error(&out)(e.to_string()))?;
            }
        }
        let text = serde_json::to_string_pretty(manifest).map_err(|e| file_error(&out)(e.to_string()))?;
        fsutil::write_bytes_atomic(&staged.path().join(MANIFEST), text.as_bytes())?;
        staged.commit()?;
        Ok(())
    }

    /// Who labels with `later`'s holdings.
    pub fn labeller(&self, later: &Snapshot) -> Result<Labeller, StoreError> {
        let mut cached = self.labeller.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = cached.as_ref().filter(|l| l.snapshot == later.date.to_string()) {
            return Ok(known.clone());
        }
        let mut ignored = crate::data::problem::Problems::default();
        let (holdings, _) = crate::data::source::locate(&later.dir, crate::data::schema::Table::Holdings, &mut ignored)
            .ok_or_else(|| file_error(&later.dir)("no single holdings export".into()))?;
        let labeller = Labeller {
            snapshot: later.date.to_string(),
            holdings: hash_file(&holdings)?.blake3,
        };
        *cached = Some(labeller.clone());
        Ok(labeller)
    }

    /// `table` of `date` as kept, only `columns` read (all when `None`).
    pub fn read(&self, date: Date, table: FeatureTable, columns: Option<&[&str]>) -> Result<DataFrame, StoreError> {
        let path = self.dir(date).join(format!("{}.parquet", table.file_stem()));
        let source = PlRefPath::try_from_path(&path).map_err(|e| file_error(&path)(e.to_string()))?;
        let mut frame = LazyFrame::scan_parquet(source, ScanArgsParquet::default())
            .map_err(|e| file_error(&path)(e.to_string()))?;
        if let Some(columns) = columns {
            frame = frame.select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>());
        }
        frame.collect().map_err(|e| file_error(&path)(e.to_string()))
    }

    /// All three tables of `date` as kept.
    pub fn read_all(&self, date: Date) -> Result<Features, StoreError> {
        Ok(Features {
            clients: self.read(date, FeatureTable::Clients, None)?,
            managers: self.read(date, FeatureTable::Managers, None)?,
            agencies: self.read(date, FeatureTable::Agencies, None)?,
        })
    }

    /// The features of `date`, kept or built, with churn as `latest` (the newest snapshot,
    /// loaded) sees it. `loaded` is `date`'s whole snapshot when the caller has it (built from
    /// if need be; else read from disk).
    pub fn features(&self, date: Date, loaded: Option<&Snapshot>, latest: &Snapshot) -> Result<Features, StoreError> {
        let (stored, built) = self.ensure(date, loaded, Some(latest))?;
        let mut features = match built {
            Some(built) => return Ok(built),
            None => self.read_all(date)?,
        };
        features.clients = self.attach_churn(features.clients, date, &stored.manifest, latest)?;
        Ok(features)
    }

    /// The kept features of `date` with churn as `latest` sees it, rewritten on disk when that
    /// changed the column (what `bankml features` shows people).
    pub fn read_relabelled(
        &self,
        date: Date,
        mut manifest: Manifest,
        latest: &Snapshot,
    ) -> Result<(Manifest, Features), StoreError> {
        let kept = self.read_all(date)?;
        let labeller = self.labeller_for(date, latest)?;
        if labeller == manifest.churn_labelled_by {
            return Ok((manifest, kept));
        }
        let mut relabelled = Features {
            clients: self.attach_churn(kept.clients, date, &manifest, latest)?,
            ..kept
        };
        manifest.churn_labelled_by = labeller;
        self.write(date, &mut relabelled, &manifest, false)?;
        Ok((manifest, relabelled))
    }

    /// `clients` (a kept client table of `date`) with churn as `latest` sees it: the stored
    /// column when `latest` labelled it, otherwise recomputed from `latest`'s holdings.
    pub fn attach_churn(
        &self,
        clients: DataFrame,
        date: Date,
        manifest: &Manifest,
        latest: &Snapshot,
    ) -> Result<DataFrame, StoreError> {
        if manifest.churn_labelled_by == self.labeller_for(date, latest)? && clients.column(CHURN_LABEL).is_ok() {
            return Ok(clients);
        }
        let unlabelled = clients.drop(CHURN_LABEL).unwrap_or(clients);
        let horizon = self.config.features.churn_horizon_days;
        features::add_churn_label(unlabelled, date, Some(latest), horizon)
            .map_err(|source| StoreError::Features { date, source })
    }

    /// The kept clients of `date` with churn as `latest` sees it: every column, or only
    /// `columns` (plus `cli` and `churn`, which labelling needs).
    pub fn clients_as_of(
        &self,
        date: Date,
        manifest: &Manifest,
        latest: &Snapshot,
        columns: Option<&[&str]>,
    ) -> Result<DataFrame, StoreError> {
        let wanted: Option<Vec<&str>> = columns.map(|c| {
            let keys = ["cli", CHURN_LABEL];
            keys.into_iter()
                .chain(c.iter().copied().filter(|c| !keys.contains(c)))
                .collect()
        });
        let kept = self.read(date, FeatureTable::Clients, wanted.as_deref())?;
        self.attach_churn(kept, date, manifest, latest)
    }

    /// Who labels the churn of `date` when `later` is the newest snapshot: `later`, once it
    /// reaches the horizon; nobody before.
    fn labeller_for(&self, date: Date, later: &Snapshot) -> Result<Option<Labeller>, StoreError> {
        let horizon = self.config.features.churn_horizon_days;
        if features::reaches_horizon(date, later.date, horizon) {
            Ok(Some(self.labeller(later)?))
        } else {
            Ok(None)
        }
    }
}

fn table_of(features: &Features, table: FeatureTable) -> &DataFrame {
    match table {
        FeatureTable::Clients => &features.clients,
        FeatureTable::Managers => &features.managers,
        FeatureTable::Agencies => &features.agencies,
    }
}

fn table_of_mut(features: &mut Features, table: FeatureTable) -> &mut DataFrame {
    match table {
        FeatureTable::Clients => &mut features.clients,
        FeatureTable::Managers => &mut features.managers,
        FeatureTable::Agencies => &mut features.agencies,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::format::FileFormat;
    use crate::data::synth::{BankSpec, write_bank};

    /// A generated bank of 600 clients over `months` Parquet snapshots, with its config.
    pub(crate) fn bank(months: usize) -> (tempfile::TempDir, EngineConfig) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::default();
        config.data.raw_dir = dir.path().join("raw");
        config.data.processed_dir = dir.path().join("processed");
        let spec = BankSpec {
            clients: 600,
            months,
            ..BankSpec::default()
        };
        write_bank(spec, FileFormat::Parquet, &config.data.raw_dir, |_| {}).unwrap();
        (dir, config)
    }

    fn load(config: &EngineConfig, date: Date) -> Snapshot {
        snapshot::load(&config.data.raw_dir.join(date.to_string()), date, config).unwrap()
    }

    #[test]
    fn kept_features_read_back_as_built_with_churn_from_the_newest_snapshot() {
        let (_dir, config) = bank(8);
        let dates: Vec<Date> = snapshot::list_snapshots(&config.data.raw_dir)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let (first, fourth, last) = (dates[0], dates[3], dates[dates.len() - 1]);
        let store = FeatureStore::new(&config);
        // Kept while the fourth month was the newest: the first month's churn is known, by
        // the fourth's holdings.
        let as_of_fourth = load(&config, fourth);
        let (stored, built) = store.ensure(first, None, Some(&as_of_fourth)).unwrap();
        assert_eq!(stored.origin, Origin::Built);
        assert!(built.is_some());
        let labelled_by = stored.manifest.churn_labelled_by.clone().unwrap();
        assert_eq!(labelled_by.snapshot, fourth.to_string());
        // Built again with no later month (as scoring does): churn unknown in the files.
        let (unlabelled, _) = store.rebuild(&load(&config, first), None).unwrap();
        assert!(unlabelled.churn_labelled_by.is_none());
        let stored_churn = store.read(first, FeatureTable::Clients, Some(&[CHURN_LABEL])).unwrap();
        assert_eq!(
            stored_churn.column(CHURN_LABEL).unwrap().null_count(),
            stored_churn.height()
        );
        // Read back with the newest month as the labeller: the same frames, column for column,
        // as building from the exports with that month — nothing rebuilt.
        let newest = load(&config, last);
        let (again, rebuilt) = store.ensure(first, None, Some(&newest)).unwrap();
        assert_eq!(again.origin, Origin::Kept);
        assert!(rebuilt.is_none());
        let kept = store.features(first, None, &newest).unwrap();
        let expected =
            features::build(&load(&config, first), Some(&newest), config.features.churn_horizon_days).unwrap();
        for (name, got, want) in [
            ("clients", &kept.clients, &expected.clients),
            ("managers", &kept.managers, &expected.managers),
            ("agencies", &kept.agencies, &expected.agencies),
        ] {
            assert!(got.height() > 0, "{name}");
            assert!(got.equals_missing(want), "{name}:\n{got:?}\nvs\n{want:?}");
        }
        // Only the asked columns are read.
        let two = store
            .read(first, FeatureTable::Clients, Some(&["cli", "age_years"]))
            .unwrap();
        let names: Vec<&str> = two.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["cli", "age_years"]);
    }

    #[test]
    fn a_changed_export_or_setting_rebuilds_that_snapshot_alone() {
        let (_dir, mut config) = bank(2);
        let dates: Vec<Date> = snapshot::list_snapshots(&config.data.raw_dir)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let (first, second) = (dates[0], dates[1]);
        {
            let store = FeatureStore::new(&config);
            for date in [first, second] {
                assert_eq!(store.ensure(date, None, None).unwrap().0.origin, Origin::Built);
                assert_eq!(store.ensure(date, None, None).unwrap().0.origin, Origin::Kept);
            }
            // The bank re-exports the first month's managers (one score changed).
            let raw = config.data.raw_dir.join(first.to_string());
            let mut managers = crate::data::format::read_parquet(&raw.join("managers.parquet")).unwrap();
            let scores = managers.column("performance_score").unwrap().f64().unwrap().clone();
            let changed: Float64Chunked = scores
                .iter()
                .enumerate()
                .map(|(i, v)| if i == 0 { v.map(|v| v + 1.0) } else { v })
                .collect();
            managers
                .with_column(changed.into_series().with_name("performance_score".into()).into())
                .unwrap();
            crate::data::format::write_frame(&mut managers, &raw.join("managers.parquet"), FileFormat::Parquet)
                .unwrap();
            assert_eq!(store.ensure(first, None, None).unwrap().0.origin, Origin::Built);
            assert_eq!(store.ensure(second, None, None).unwrap().0.origin, Origin::Kept);
        }
        // A cleaning setting read at ingest rebuilds every snapshot.
        config.cleaning.cap_quantile = 0.99;
        let store = FeatureStore::new(&config);
        for date in [first, second] {
            assert_eq!(store.ensure(date, None, None).unwrap().0.origin, Origin::Built);
        }
    }
}
