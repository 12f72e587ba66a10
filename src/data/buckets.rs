//! The bank's exports spread over buckets of clients, for workers training together: each
//! worker takes the buckets `b` with `b % workers == rank`, so a client's every snapshot and
//! outcome stay on one worker, and the buckets (many more than workers) spread the clients
//! evenly whatever the number of workers.
//!
//! ```text
//! <dir>/layout.json                          what is there (written last)
//! <dir>/<YYYY-MM-DD>/catalog.parquet         tables not keyed by client, whole
//! <dir>/<YYYY-MM-DD>/clients/bucket-00017.parquet
//! ```
//!
//! A client's bucket is `splitmix64(cli) mod buckets` ([`bucket_of`]): `bankml bucketize`
//! writes the layout from ordinary exports, or a bank's own ETL does (the function is a few
//! lines in any language). A worker reads its buckets into one ordinary snapshot folder of
//! its own ([`materialize_shard`]), checked against the row counts of `layout.json`, and from
//! there everything is the single-process path: validation, cleaning, the feature store.

use crate::config::EngineConfig;
use crate::data::clean::{self, Caps};
use crate::data::date::Date;
use crate::data::format::{FileFormat, WriteError, write_frame};
use crate::data::problem::{Problem, Problems};
use crate::data::schema::Table;
use crate::data::snapshot::{self, IngestError, list_snapshots};
use crate::data::source;
use crate::data::store::{BuiltFrom, FeatureStore, StoreError};
use crate::fsutil::{self, FsError, StagedDir};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const LAYOUT_FILE: &str = "layout.json";
/// What [`bucket_of`] computes, as `layout.json` names it.
pub const HASH: &str = "splitmix64(cli) mod buckets";

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{} problem(s) in {}:\n{}", .problems.len(), .dir.display(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { dir: PathBuf, problems: Vec<Problem> },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("bucket {bucket} of {table} for {date} is missing: {path} (`bankml bucketize` writes it again)")]
    MissingBucket {
        bucket: usize,
        table: &'static str,
        date: Date,
        path: PathBuf,
    },
    #[error("{path}: {found} rows where {} says {expected}", LAYOUT_FILE)]
    Rows { path: PathBuf, found: usize, expected: u64 },
    #[error("{0}")]
    Polars(#[from] PolarsError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// `layout.json`: the buckets, how clients are placed in them, and what each holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub buckets: usize,
    pub hash: String,
    /// Snapshot → table → rows in each bucket (tables keyed by client), or in the one file.
    pub snapshots: BTreeMap<Date, BTreeMap<String, Vec<u64>>>,
    /// Each snapshot's cleaning caps, computed on all of it, so that every worker caps its
    /// share as the whole snapshot would be capped. A layout written without them (another
    /// tool's) leaves each worker its share's own.
    #[serde(default)]
    pub caps: BTreeMap<Date, Caps>,
    /// What each snapshot's buckets were written from (its export files' hashes, the ingest
    /// and cleaning settings, the code): `bucketize` rewrites only the snapshots that changed.
    #[serde(default)]
    pub sources: BTreeMap<Date, BuiltFrom>,
}

/// The tables spread by client; the others (catalog, managers, agencies) go whole.
pub fn by_client(table: Table) -> bool {
    matches!(
        table,
        Table::Clients | Table::Holdings | Table::Activity | Table::Contacts
    )
}

/// The bucket of client `cli` among `buckets` (SplitMix64's finaliser of the id's bits, so
/// consecutive ids spread evenly).
pub fn bucket_of(cli: i64, buckets: usize) -> usize {
    let mut z = (cli as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % buckets as u64) as usize
}

/// A bucket's file in a snapshot's folder of the layout.
fn bucket_path(snapshot_dir: &Path, table: Table, bucket: usize) -> PathBuf {
    snapshot_dir
        .join(table.name())
        .join(format!("bucket-{bucket:05}.parquet"))
}

/// A whole table's file in a snapshot's folder of the layout.
fn whole_path(snapshot_dir: &Path, table: Table) -> PathBuf {
    snapshot_dir.join(format!("{}.parquet", table.name()))
}

fn layout_error(path: &Path) -> impl FnOnce(String) -> BucketError + '_ {
    move |message| BucketError::Layout {
        path: path.into(),
        message,
    }
}

impl Layout {
    pub fn read(dir: &Path) -> Result<Layout, BucketError> {
        let path = dir.join(LAYOUT_FILE);
        let text = fsutil::read_text(&path).map_err(|e| {
            layout_error(&path)(format!(
                "{e} (write it with `bankml bucketize`, or point --buckets at a folder that has one)"
            ))
        })?;
        let layout: Layout = serde_json::from_str(&text).map_err(|e| layout_error(&path)(e.to_string()))?;
        if layout.buckets == 0 {
            return Err(layout_error(&path)("`buckets` is 0".into()));
        }
        for (date, tables) in &layout.snapshots {
            for (name, counts) in tables {
                let client_table = Table::from_name(name).is_some_and(by_client);
                let expected = if client_table { layout.buckets } else { 1 };
                if counts.len() != expected {
                    return Err(layout_error(&path)(format!(
                        "{date} {name}: {} row counts where {expected} are expected ({} buckets)",
                        counts.len(),
                        layout.buckets
                    )));
                }
            }
        }
        if layout.hash != HASH {
            return Err(layout_error(&path)(format!(
                "`hash` is {:?}; bankml places clients by {HASH:?}",
                layout.hash
            )));
        }
        Ok(layout)
    }

    /// The buckets of worker `rank` of `workers`.
    pub fn buckets_of(&self, rank: usize, workers: usize) -> Vec<usize> {
        (0..self.buckets).filter(|b| b % workers == rank).collect()
    }
}

/// Spreads every snapshot of `config.data.raw_dir` over `buckets` buckets in `out`, replacing
/// what was there; `on_snapshot` is told each date as it is done, and whether it was written
/// (`false`: its buckets were already written from the same exports and settings, and are
/// kept). Each snapshot is validated
/// whole first (a problem is said here, located, not by a worker later) and its cleaning caps
/// computed; each snapshot folder is written aside and renamed into place, `layout.json`
/// last: a reader sees a whole layout or the previous one.
pub fn bucketize(
    config: &EngineConfig,
    out: &Path,
    buckets: usize,
    mut on_snapshot: impl FnMut(Date, bool),
) -> Result<Layout, BucketError> {
    let raw_dir = &config.data.raw_dir;
    if buckets == 0 {
        return Err(layout_error(out)("at least one bucket is needed".into()));
    }
    let mut layout = Layout {
        buckets,
        hash: HASH.into(),
        snapshots: BTreeMap::new(),
        caps: BTreeMap::new(),
        sources: BTreeMap::new(),
    };
    let previous = Layout::read(out).ok().filter(|l| l.buckets == buckets);
    let store = FeatureStore::new(config);
    for (date, dir) in list_snapshots(raw_dir)? {
        let target = out.join(date.to_string());
        let from = store.built_from(date)?;
        let unchanged = previous.as_ref().and_then(|p| {
            let rows = p.snapshots.get(&date).filter(|rows| all_files_there(&target, rows))?;
            (p.sources.get(&date) == Some(&from)).then(|| (rows.clone(), p.caps.get(&date).cloned()))
        });
        if let Some((rows, caps)) = unchanged {
            layout.snapshots.insert(date, rows);
            if let Some(caps) = caps {
                layout.caps.insert(date, caps);
            }
            layout.sources.insert(date, from);
            on_snapshot(date, false);
            continue;
        }
        let staged = StagedDir::new(&target)?;
        let mut rows = BTreeMap::new();
        let mut exported = snapshot::load_as_exported(&dir, date, config)?;
        layout
            .caps
            .insert(date, clean::caps_of(&exported, config.cleaning.cap_quantile));
        let mut tables: Vec<(Table, DataFrame)> = vec![
            (Table::Clients, std::mem::take(&mut exported.clients)),
            (Table::Holdings, std::mem::take(&mut exported.holdings)),
            (Table::Catalog, std::mem::take(&mut exported.catalog)),
            (Table::Managers, std::mem::take(&mut exported.managers)),
            (Table::Agencies, std::mem::take(&mut exported.agencies)),
            (Table::Activity, std::mem::take(&mut exported.activity)),
        ];
        drop(exported);
        // The campaign outcomes, where the bank exported them (read by the business job).
        let mut problems = Problems::default();
        let contacts = source::locate_optional(&dir, Table::Contacts, &mut problems).and_then(|(path, format)| {
            source::read_table(&path, format, Table::Contacts, &config.ingest, &mut problems)
        });
        if problems.has_errors() {
            return Err(BucketError::Invalid {
                dir,
                problems: problems.into_list(),
            });
        }
        if let Some(contacts) = contacts {
            tables.push((Table::Contacts, contacts.frame));
        }
        for (table, mut frame) in tables {
            let counts = if by_client(table) {
                write_buckets(staged.path(), table, frame, buckets, &dir)?
            } else {
                let path = whole_path(staged.path(), table);
                write_frame(&mut frame, &path, FileFormat::Parquet)?;
                vec![frame.height() as u64]
            };
            rows.insert(table.name().to_string(), counts);
        }
        staged.commit()?;
        layout.snapshots.insert(date, rows);
        layout.sources.insert(date, from);
        on_snapshot(date, true);
    }
    let text = serde_json::to_string_pretty(&layout).map_err(|e| layout_error(out)(e.to_string()))?;
    fsutil::write_bytes_atomic(&out.join(LAYOUT_FILE), text.as_bytes())?;
    Ok(layout)
}

/// The snapshots of `config.data.raw_dir` that `layout` does not hold as they are now
/// ("2025-12-31 changed", "2026-01-31 missing"), and those it holds that are gone from there.
pub fn stale_snapshots(config: &EngineConfig, layout: &Layout) -> Result<Vec<String>, BucketError> {
    let store = FeatureStore::new(config);
    let mut stale = Vec::new();
    let exported = list_snapshots(&config.data.raw_dir)?;
    for (date, _) in &exported {
        match layout.sources.get(date) {
            None => stale.push(format!("{date} not bucketized")),
            Some(from) if *from != store.built_from(*date)? => stale.push(format!("{date} changed since")),
            Some(_) => {}
        }
    }
    for date in layout.snapshots.keys() {
        if !exported.iter().any(|(d, _)| d == date) {
            stale.push(format!("{date} no longer exported"));
        }
    }
    Ok(stale)
}

/// Whether every file a snapshot's `rows` name is in its folder `dir` (a bucket deleted by
/// hand is written again).
fn all_files_there(dir: &Path, rows: &BTreeMap<String, Vec<u64>>) -> bool {
    Table::ALL
        .into_iter()
        .chain(Table::OPTIONAL)
        .all(|table| match rows.get(table.name()) {
            None => true,
            Some(counts) if by_client(table) => (0..counts.len()).all(|b| bucket_path(dir, table, b).is_file()),
            Some(_) => whole_path(dir, table).is_file(),
        })
}

/// Writes `frame`'s rows bucket by bucket (each bucket's rows in their order in the export);
/// the rows of each bucket.
fn write_buckets(
    dir: &Path,
    table: Table,
    frame: DataFrame,
    buckets: usize,
    export_dir: &Path,
) -> Result<Vec<u64>, BucketError> {
    let ids = frame.column("cli")?.cast(&DataType::Int64)?;
    let ids = ids.i64()?;
    let mut of_row = Vec::with_capacity(frame.height());
    for (row, id) in ids.iter().enumerate() {
        match id {
            Some(id) => of_row.push(bucket_of(id, buckets)),
            None => {
                return Err(BucketError::Invalid {
                    dir: export_dir.into(),
                    problems: vec![Problem {
                        severity: crate::data::problem::Severity::Error,
                        location: format!("{} of {}", crate::data::table::row_name(export_dir, row), table.name()),
                        message: "cli is empty: the row belongs to no client".into(),
                    }],
                });
            }
        }
    }
    let mut counts = vec![0u64; buckets];
    for b in &of_row {
        counts[*b] += 1;
    }
    // Rows ordered by bucket, in their own order within one: one gather, then slices.
    let mut order: Vec<IdxSize> = (0..frame.height() as IdxSize).collect();
    order.sort_by_key(|i| of_row[*i as usize]);
    let sorted = frame.take(&IdxCa::from_vec("idx".into(), order))?;
    let folder = dir.join(table.name());
    std::fs::create_dir_all(&folder).map_err(fsutil::io_error("cannot create folder", &folder))?;
    let mut start = 0i64;
    for (bucket, count) in counts.iter().enumerate() {
        let mut part = sorted.slice(start, *count as usize);
        start += *count as i64;
        let path = bucket_path(dir, table, bucket);
        write_frame(&mut part, &path, FileFormat::Parquet)?;
    }
    Ok(counts)
}

/// Writes worker `rank` of `workers`'s share of the layout in `layout_dir` as ordinary
/// snapshot folders in `raw_dir` (one Parquet file per table), checking every bucket's rows
/// against the layout. Does nothing when `raw_dir` already holds this share of this layout.
pub fn materialize_shard(
    layout_dir: &Path,
    layout: &Layout,
    rank: usize,
    workers: usize,
    raw_dir: &Path,
) -> Result<(), BucketError> {
    if workers == 0 || rank >= workers {
        return Err(layout_error(layout_dir)(format!("worker {rank} of {workers}")));
    }
    if workers > layout.buckets {
        return Err(layout_error(&layout_dir.join(LAYOUT_FILE))(format!(
            "{workers} workers but only {} buckets: some workers would have no clients",
            layout.buckets
        )));
    }
    let mine = layout.buckets_of(rank, workers);
    let stamp = serde_json::json!({ "layout": layout, "rank": rank, "workers": workers }).to_string();
    let stamp_path = raw_dir.join("shard.json");
    if fsutil::read_text(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let staged = StagedDir::new(raw_dir)?;
    for (date, tables) in &layout.snapshots {
        let out = staged.path().join(date.to_string());
        std::fs::create_dir_all(&out).map_err(fsutil::io_error("cannot create folder", &out))?;
        if let Some(caps) = layout.caps.get(date) {
            let text = serde_json::to_string_pretty(caps).map_err(|e| layout_error(layout_dir)(e.to_string()))?;
            fsutil::write_bytes_atomic(&out.join(clean::CAPS_FILE), text.as_bytes())?;
        }
        for table in Table::ALL.into_iter().chain(Table::OPTIONAL) {
            let Some(counts) = tables.get(table.name()) else {
                continue;
            };
            let target = out.join(format!("{}.parquet", table.name()));
            if !by_client(table) {
                let from = whole_path(&layout_dir.join(date.to_string()), table);
                let mut frame = read_counted(&from, counts.first().copied().unwrap_or(0))?;
                write_frame(&mut frame, &target, FileFormat::Parquet)?;
                continue;
            }
            let mut parts = Vec::with_capacity(mine.len());
            for &bucket in &mine {
                let path = bucket_path(&layout_dir.join(date.to_string()), table, bucket);
                if !path.is_file() {
                    return Err(BucketError::MissingBucket {
                        bucket,
                        table: table.name(),
                        date: *date,
                        path,
                    });
                }
                let expected = counts.get(bucket).copied().unwrap_or(0);
                parts.push(read_counted(&path, expected)?.lazy());
            }
            let mut frame = concat(parts, UnionArgs::default())?.collect()?;
            write_frame(&mut frame, &target, FileFormat::Parquet)?;
        }
    }
    fsutil::write_bytes_atomic(&staged.path().join("shard.json"), stamp.as_bytes())?;
    staged.commit()?;
    Ok(())
}

/// The Parquet file at `path`, which must have `expected` rows.
fn read_counted(path: &Path, expected: u64) -> Result<DataFrame, BucketError> {
    let frame = crate::data::format::read_parquet(path).map_err(|message| BucketError::Layout {
        path: path.into(),
        message,
    })?;
    if frame.height() as u64 != expected {
        return Err(BucketError::Rows {
            path: path.into(),
            found: frame.height(),
            expected,
        });
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_spread_evenly_and_each_to_one_bucket() {
        let buckets = 64;
        let mut counts = vec![0usize; buckets];
        for cli in 1..=64_000i64 {
            let b = bucket_of(cli, buckets);
            assert_eq!(b, bucket_of(cli, buckets));
            counts[b] += 1;
        }
        // 1,000 expected per bucket; a binomial's spread is ~31.
        assert!(counts.iter().all(|n| (850..1150).contains(n)), "{counts:?}");
    }

    #[test]
    fn workers_take_every_bucket_once() {
        let layout = Layout {
            buckets: 10,
            hash: HASH.into(),
            snapshots: BTreeMap::new(),
            caps: BTreeMap::new(),
            sources: BTreeMap::new(),
        };
        let mut all: Vec<usize> = (0..3).flat_map(|r| layout.buckets_of(r, 3)).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
