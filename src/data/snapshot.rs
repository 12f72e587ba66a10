//! A snapshot: one folder `data/raw/<YYYY-MM-DD>/` of the bank's exports, loaded, validated
//! and cleaned. Loading either returns every table or every problem found — never half.

use crate::config::EngineConfig;
use crate::data::clean::{self, CleaningReport};
use crate::data::date::Date;
use crate::data::problem::{Problem, Problems, Severity};
use crate::data::schema::Table;
use crate::data::source::{self, LoadedTable};
use crate::data::validate;
use polars::prelude::{DataFrame, PolarsResult};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no snapshot folders (YYYY-MM-DD) in {0}; run `bankml generate` or copy the bank's exports there")]
    NoSnapshots(PathBuf),
    #[error("snapshot {date} not found in {dir} (available: {available})")]
    UnknownSnapshot {
        date: String,
        dir: PathBuf,
        available: String,
    },
    #[error("cannot list {path}: {source}")]
    List { path: PathBuf, source: std::io::Error },
    #[error("{} problem(s) in {}:\n{}", .problems.iter().filter(|p| p.severity == Severity::Error).count(), .dir.display(), list(.problems))]
    Invalid { dir: PathBuf, problems: Vec<Problem> },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// The six tables of one month, typed, validated and cleaned.
pub struct Snapshot {
    pub date: Date,
    pub dir: PathBuf,
    pub clients: DataFrame,
    pub holdings: DataFrame,
    pub catalog: DataFrame,
    pub managers: DataFrame,
    pub agencies: DataFrame,
    pub activity: DataFrame,
    pub warnings: Vec<Problem>,
    pub cleaning: CleaningReport,
}

#[cfg(test)]
impl Snapshot {
    /// A snapshot of hand-built tables, without managers or agencies: for tests of the
    /// readers of clients, holdings, catalog and activity.
    pub fn of_tables(
        date: Date,
        clients: DataFrame,
        holdings: DataFrame,
        catalog: DataFrame,
        activity: DataFrame,
    ) -> Snapshot {
        Snapshot {
            date,
            dir: "bank".into(),
            clients,
            holdings,
            catalog,
            managers: DataFrame::default(),
            agencies: DataFrame::default(),
            activity,
            warnings: Vec::new(),
            cleaning: CleaningReport::default(),
        }
    }
}

/// This reading's problems and those an earlier validation of the same bytes gave, once each.
fn merged(mut now: Vec<Problem>, earlier: Vec<Problem>) -> Vec<Problem> {
    for problem in earlier {
        if !now.contains(&problem) {
            now.push(problem);
        }
    }
    now
}

impl Snapshot {
    /// One table's frame (empty when this snapshot was read without it).
    pub fn table(&self, table: Table) -> &DataFrame {
        match table {
            Table::Clients => &self.clients,
            Table::Holdings => &self.holdings,
            Table::Catalog => &self.catalog,
            Table::Managers => &self.managers,
            Table::Agencies => &self.agencies,
            Table::Activity => &self.activity,
            Table::Contacts => &EMPTY,
        }
    }

    /// Lets go of every table but the holdings' holders and opening and closing dates — all
    /// that labelling churn reads — in place: the product ids and balances are most of the
    /// holdings' bytes. Read the tables again before anything else reads them.
    pub fn keep_label_inputs_only(&mut self) -> PolarsResult<()> {
        self.clients = DataFrame::default();
        self.managers = DataFrame::default();
        self.agencies = DataFrame::default();
        self.activity = DataFrame::default();
        self.catalog = DataFrame::default();
        self.holdings = self.holdings.select(LABEL_HOLDINGS_COLUMNS)?;
        Ok(())
    }

    /// The snapshot with only what labelling churn reads (see
    /// [`Snapshot::keep_label_inputs_only`]), for training, which reads nothing else of it.
    pub fn label_inputs_only(mut self) -> PolarsResult<Snapshot> {
        self.keep_label_inputs_only()?;
        Ok(self)
    }
}

/// The holdings' columns a later snapshot's churn label is counted from.
pub const LABEL_HOLDINGS_COLUMNS: [&str; 3] = ["cli", "opened_on", "closed_on"];

/// What a table a snapshot does not hold reads as.
static EMPTY: DataFrame = DataFrame::empty();

/// Snapshot folders under `raw_dir`, oldest first.
pub fn list_snapshots(raw_dir: &Path) -> Result<Vec<(Date, PathBuf)>, IngestError> {
    let entries = match std::fs::read_dir(raw_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(IngestError::NoSnapshots(raw_dir.into())),
        Err(source) => {
            return Err(IngestError::List {
                path: raw_dir.into(),
                source,
            });
        }
    };
    let mut found: Vec<(Date, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            (name.len() == 10).then(|| Date::parse(&name))?.map(|d| (d, e.path()))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(IngestError::NoSnapshots(raw_dir.into()));
    }
    Ok(found)
}

/// The latest snapshot on or before `until` (`None`: the latest of all).
pub fn latest_until(raw_dir: &Path, until: Option<Date>) -> Result<(Date, PathBuf), IngestError> {
    let all = list_snapshots(raw_dir)?;
    all.into_iter()
        .rev()
        .find(|(d, _)| until.is_none_or(|u| *d <= u))
        .ok_or_else(|| IngestError::NoSnapshots(raw_dir.into()))
}

/// The folder of snapshot `date` (`None`: the latest).
pub fn find_snapshot(raw_dir: &Path, date: Option<&str>) -> Result<(Date, PathBuf), IngestError> {
    let all = list_snapshots(raw_dir)?;
    match date {
        None => all
            .last()
            .cloned()
            .ok_or_else(|| IngestError::NoSnapshots(raw_dir.into())),
        Some(wanted) => all
            .iter()
            .find(|(d, _)| d.to_string() == wanted.trim())
            .cloned()
            .ok_or_else(|| IngestError::UnknownSnapshot {
                date: wanted.to_string(),
                dir: raw_dir.into(),
                available: all.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>().join(", "),
            }),
    }
}

/// Reads, validates and cleans the snapshot in `dir` dated `date`.
pub fn load(dir: &Path, date: Date, config: &EngineConfig) -> Result<Snapshot, IngestError> {
    load_tables(dir, date, config, None, &Table::ALL, Cleaning::Cleaned)
}

/// Every table of the snapshot in `dir`, validated but as exported (not cleaned): what
/// `bankml bucketize` spreads over buckets, with the caps the whole snapshot cleans at.
pub fn load_as_exported(dir: &Path, date: Date, config: &EngineConfig) -> Result<Snapshot, IngestError> {
    load_tables(dir, date, config, None, &Table::ALL, Cleaning::AsExported)
}

/// The cleaning caps a share of a bigger snapshot carries ([`clean::CAPS_FILE`]), if any.
fn given_caps(dir: &Path) -> Result<Option<clean::Caps>, IngestError> {
    let path = dir.join(clean::CAPS_FILE);
    let text = match crate::fsutil::read_text(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(caps_problem(&path, e.to_string())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| caps_problem(&path, e.to_string()))
}

fn caps_problem(path: &Path, message: String) -> IngestError {
    IngestError::Invalid {
        dir: path.parent().unwrap_or(Path::new(".")).into(),
        problems: vec![Problem {
            severity: Severity::Error,
            location: path.display().to_string(),
            message: format!("unreadable cleaning caps: {message}"),
        }],
    }
}

/// Whether a snapshot read again is cleaned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleaning {
    Cleaned,
    /// As exported: for readers of keys and dates only, which cleaning never changes.
    AsExported,
}

/// Only `wanted` of a snapshot whose exports passed validation byte for byte before under the
/// same settings and code (the feature store's manifest says so; `warnings` are those that
/// validation gave then), without the checks across tables; the other tables are left empty.
/// For readers that need a few tables, not the activity of every client.
pub fn tables_validated_before(
    dir: &Path,
    date: Date,
    config: &EngineConfig,
    warnings: Vec<Problem>,
    wanted: &[Table],
    cleaning: Cleaning,
) -> Result<Snapshot, IngestError> {
    load_tables(dir, date, config, Some(warnings), wanted, cleaning)
}

/// `wanted` tables of a snapshot (all of them unless validated before: validation crosses
/// tables).
fn load_tables(
    dir: &Path,
    date: Date,
    config: &EngineConfig,
    validated_before: Option<Vec<Problem>>,
    wanted: &[Table],
    cleaning: Cleaning,
) -> Result<Snapshot, IngestError> {
    let wanted = if validated_before.is_some() {
        wanted
    } else {
        &Table::ALL[..]
    };
    let started = std::time::Instant::now();
    let mut problems = Problems::default();
    // Tables are read side by side: Excel parsing is single-threaded per file.
    let results: Vec<(Problems, Option<LoadedTable>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .iter()
            .copied()
            .map(|table| {
                scope.spawn(move || {
                    let mut problems = Problems::default();
                    let loaded = source::locate(dir, table, &mut problems).and_then(|(path, format)| {
                        source::read_table(&path, format, table, &config.ingest, &mut problems)
                    });
                    (problems, loaded)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Problems::default(), None)))
            .collect()
    });
    let mut tables = BTreeMap::new();
    for (table_problems, loaded) in results {
        problems.extend(table_problems);
        if let Some(loaded) = loaded {
            tables.insert(loaded.table, loaded);
        }
    }
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "read {}", dir.display());
    let earlier_warnings = match validated_before {
        None => {
            validate::validate(&tables, &mut problems);
            tracing::info!(seconds = started.elapsed().as_secs_f64(), "validated");
            Vec::new()
        }
        Some(warnings) => warnings,
    };
    if problems.has_errors() || tables.len() != wanted.len() {
        return Err(IngestError::Invalid {
            dir: dir.into(),
            problems: problems.into_list(),
        });
    }
    let mut take = |t: Table| tables.remove(&t).map(|l| l.frame).unwrap_or_default();
    let mut snapshot = Snapshot {
        date,
        dir: dir.into(),
        clients: take(Table::Clients),
        holdings: take(Table::Holdings),
        catalog: take(Table::Catalog),
        managers: take(Table::Managers),
        agencies: take(Table::Agencies),
        activity: take(Table::Activity),
        warnings: merged(problems.into_list(), earlier_warnings),
        cleaning: CleaningReport::default(),
    };
    if cleaning == Cleaning::Cleaned {
        let caps = given_caps(dir)?;
        snapshot.cleaning = clean::clean_with(&mut snapshot, &config.cleaning, caps.as_ref());
        tracing::info!(seconds = started.elapsed().as_secs_f64(), "cleaned");
    }
    Ok(snapshot)
}
