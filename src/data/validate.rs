//! Checks across rows and tables once every cell has its type: missing required values,
//! duplicate keys, references to unknown clients/managers/agencies/products, and values
//! that cannot be (negative balances, scores outside 0–100, closing before opening).

use crate::data::client_rows::ClientRows;
use crate::data::grouping::group_by_key;
use crate::data::problem::{Origin, Problems};
use crate::data::schema::{REFERENCES, Table};
use crate::data::source::LoadedTable;
use crate::data::values::optional_values;
use polars::prelude::*;
use std::collections::BTreeMap;

/// Each row's key hashed, one column at a time (reading a many-chunk Parquet column in
/// order, never at random): `None` for a key type bankml does not check, and a row with a
/// missing key part left out (it is reported as a missing required value).
fn key_hashes(frame: &DataFrame, key: &[&str]) -> Option<Vec<(u64, u32)>> {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::with_seed(0);
    let mut hashes = vec![0u64; frame.height()];
    let mut complete = vec![true; frame.height()];
    let mut mix = |row: usize, value: Option<u64>| match value {
        Some(value) => hashes[row] = state.hash_one((hashes[row], value)),
        None => complete[row] = false,
    };
    for name in key {
        let column = frame.column(name).ok()?;
        match column.dtype() {
            DataType::Int64 => optional_values(column.i64().ok()?)
                .enumerate()
                .for_each(|(row, v)| mix(row, v.map(|v| v as u64))),
            DataType::Date => optional_values(column.date().ok()?.physical())
                .enumerate()
                .for_each(|(row, v)| mix(row, v.map(|v| v as u32 as u64))),
            DataType::String => column
                .str()
                .ok()?
                .iter()
                .enumerate()
                .for_each(|(row, v)| mix(row, v.map(|text| state.hash_one(text)))),
            _ => return None,
        }
    }
    Some(
        hashes
            .into_iter()
            .zip(complete)
            .enumerate()
            .filter(|(_, (_, complete))| *complete)
            .map(|(row, (hash, _))| (hash, row as u32))
            .collect(),
    )
}

/// Whether rows `a` and `b` hold the same key (asked only of rows whose keys hash alike).
fn same_key(frame: &DataFrame, key: &[&str], a: usize, b: usize) -> bool {
    key.iter().all(|name| {
        frame
            .column(name)
            .is_ok_and(|c| matches!((c.get(a), c.get(b)), (Ok(x), Ok(y)) if x == y))
    })
}

/// The value at `row`, as the user wrote it (only called for the few rows reported).
fn shown(frame: &DataFrame, column: &str, row: usize) -> String {
    match frame.column(column).and_then(|c| c.get(row)) {
        Ok(AnyValue::String(s)) => s.to_string(),
        Ok(AnyValue::Date(days)) => crate::data::date::Date(days).to_string(),
        Ok(value) => value.to_string(),
        Err(_) => String::new(),
    }
}

/// Runs every check; tables that failed to load are skipped (their problems are already listed).
///
/// Each table's own checks and each reference are independent, and the kinds of their problems
/// name their file and column, so none shares a kind (and its "… and N more" count) with
/// another: they run on every core and their problems are listed in the order one after
/// another would give.
pub fn validate(tables: &BTreeMap<Table, LoadedTable>, problems: &mut Problems) {
    use rayon::prelude::*;
    let loaded: Vec<&LoadedTable> = tables.values().collect();
    let own: Vec<Problems> = loaded
        .par_iter()
        .map(|loaded| {
            let mut found = Problems::default();
            check_required(loaded, &mut found);
            check_unique(loaded, &mut found);
            check_values(loaded, &mut found);
            found
        })
        .collect();
    let referenced: Vec<Problems> = REFERENCES
        .par_iter()
        .filter_map(|reference| {
            let (from, to) = (tables.get(&reference.from)?, tables.get(&reference.to)?);
            let mut found = Problems::default();
            check_reference(from, reference.column, to, reference.to_column, &mut found);
            Some(found)
        })
        .collect();
    for found in own.into_iter().chain(referenced) {
        problems.extend(found);
    }
}

/// Checks one optional table (contacts): its own cells and keys, and its references to the
/// tables of `others` (the same folder's clients and catalog).
pub fn validate_optional(loaded: &LoadedTable, others: &BTreeMap<Table, LoadedTable>, problems: &mut Problems) {
    check_required(loaded, problems);
    check_unique(loaded, problems);
    check_values(loaded, problems);
    for reference in REFERENCES.iter().filter(|r| r.from == loaded.table) {
        if let Some(to) = others.get(&reference.to) {
            check_reference(loaded, reference.column, to, reference.to_column, problems);
        }
    }
}

fn check_required(loaded: &LoadedTable, problems: &mut Problems) {
    for spec in loaded
        .table
        .columns()
        .iter()
        .filter(|c| c.required && !loaded.rejected.contains(&c.name))
    {
        let Ok(column) = loaded.frame.column(spec.name) else {
            continue;
        };
        if column.null_count() == 0 {
            continue;
        }
        let kind = format!("{} {} missing", loaded.origin.file(), spec.name);
        let nulls = column.is_null();
        for (row, is_null) in nulls.iter().enumerate() {
            if is_null == Some(true) {
                problems.error(
                    &kind,
                    loaded.origin.cell(row, spec.name),
                    format!("{} is required but empty", spec.name),
                );
            }
        }
    }
}

/// Each row repeating an earlier row's key, with the first row of that key, by row: the
/// (hash, row) pairs sorted, then each run of equal hashes confirmed on the values (a run
/// holds a duplicate or, rarely, a collision). `None` for a key type bankml does not check.
fn duplicate_rows(frame: &DataFrame, key: &[&str]) -> Option<Vec<(usize, usize)>> {
    let hashes = sorted_by_hash(key_hashes(frame, key)?);
    let mut duplicates: Vec<(usize, usize)> = Vec::new();
    for run in hashes.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
        // Rows ascend within a run, so the first row found with the same key is its first.
        for (at, (_, row)) in run.iter().enumerate().skip(1) {
            let row = *row as usize;
            if let Some((_, first)) = run[..at]
                .iter()
                .find(|(_, earlier)| same_key(frame, key, *earlier as usize, row))
            {
                duplicates.push((row, *first as usize));
            }
        }
    }
    duplicates.sort_unstable();
    Some(duplicates)
}

/// `pairs` in ascending order, as a sort gives them. Key hashes are uniform, so the pairs are
/// scattered into buckets by their hash's top bits (a counting sort) and each bucket is
/// ordered on its own — at 3 M holdings a fraction of a comparison sort's work, which was a
/// tenth of building a snapshot's features. At most 2¹¹ buckets at first: at 10 M clients
/// (31 M holdings) scattering straight into ~16 pairs a bucket meant a million write streams
/// over 500 MB, a quarter of validation's time in cache and TLB misses; each bucket, now in
/// cache, is spread again by the next bits (`sort_bucket`). Equal hashes (repeated keys)
/// share a bucket, so many of them only make that bucket's sort longer.
fn sorted_by_hash(pairs: Vec<(u64, u32)>) -> Vec<(u64, u32)> {
    use rayon::prelude::*;
    const FIRST_BITS: u32 = 11;
    let bits = bucket_bits(pairs.len()).min(FIRST_BITS);
    let (starts, mut sorted) = group_by_key(
        pairs.iter().copied(),
        1 << bits,
        |(hash, _)| (hash >> (u64::BITS - bits)) as usize,
        |pair| pair,
    );
    drop(pairs);
    let mut buckets = Vec::with_capacity(starts.len() - 1);
    let mut rest = sorted.as_mut_slice();
    for bucket in starts.windows(2) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(bucket[1] - bucket[0]);
        buckets.push(head);
        rest = tail;
    }
    buckets.into_par_iter().for_each(|bucket| sort_bucket(bucket, bits));
    sorted
}

/// Bits of a hash that spread `pairs` pairs ~16 to a bucket.
fn bucket_bits(pairs: usize) -> u32 {
    const PAIRS_PER_BUCKET: usize = 16;
    (pairs / PAIRS_PER_BUCKET).max(2).ilog2()
}

/// One bucket of pairs whose hashes share their top `used` bits, in ascending order: a small
/// one sorted as it is, a larger one spread by the next bits, ~16 pairs a group, each sorted.
fn sort_bucket(bucket: &mut [(u64, u32)], used: u32) {
    const SMALL: usize = 64;
    if bucket.len() <= SMALL {
        bucket.sort_unstable();
        return;
    }
    let bits = bucket_bits(bucket.len()).min(16).min(u64::BITS - used);
    let (starts, spread) = group_by_key(
        bucket.iter().copied(),
        1 << bits,
        |(hash, _)| ((hash << used) >> (u64::BITS - bits)) as usize,
        |pair| pair,
    );
    bucket.copy_from_slice(&spread);
    for group in starts.windows(2) {
        bucket[group[0]..group[1]].sort_unstable();
    }
}

fn check_unique(loaded: &LoadedTable, problems: &mut Problems) {
    let key = loaded.table.key();
    let frame = &loaded.frame;
    let Some(duplicates) = duplicate_rows(frame, key) else {
        return;
    };
    let kind = format!("{} duplicate key", loaded.origin.file());
    for (row, first) in duplicates {
        let values: Vec<String> = key.iter().map(|k| format!("{k}={}", shown(frame, k, row))).collect();
        problems.error(
            &kind,
            loaded.origin.row(row),
            format!(
                "duplicate {} (first seen at {})",
                values.join(", "),
                row_label(&loaded.origin, first)
            ),
        );
    }
}

fn row_label(origin: &Origin, row: usize) -> String {
    origin.row(row).rsplit(", ").next().unwrap_or_default().to_string()
}

/// The largest values an export may hold, documented in data/README.md: beyond them a value is
/// a unit or export error, and bounded values keep every sum the features take finite (a
/// balance of 1e308 made a client's total `inf`).
const MAX_BALANCE: f64 = 1e12;
const MAX_OBJECTIVE: f64 = 1e9;
const MAX_MONTHLY_COUNT: f64 = 1e6;
const MAX_MONTHLY_COMPLAINTS: f64 = 1e4;

fn check_values(loaded: &LoadedTable, problems: &mut Problems) {
    let frame = &loaded.frame;
    let origin = &loaded.origin;
    let mut at_least = |column: &str, low: f64, high: f64, what: &str| {
        if let Ok(values) = frame.column(column).and_then(|c| c.cast(&DataType::Float64))
            && let Ok(ca) = values.f64()
        {
            report_out_of_range(ca, column, low, high, what, origin, problems);
        }
    };
    match loaded.table {
        Table::Holdings => at_least(
            "balance",
            0.0,
            MAX_BALANCE,
            "a balance is between 0 (loans are outstanding amounts) and 10^12 (larger is a unit or export error)",
        ),
        Table::Managers => {
            at_least(
                "performance_score",
                0.0,
                100.0,
                "a performance score is between 0 and 100",
            );
            at_least("objective", 0.0, MAX_OBJECTIVE, "an objective is between 0 and 10^9");
        }
        Table::Agencies => at_least(
            "performance_score",
            0.0,
            100.0,
            "a performance score is between 0 and 100",
        ),
        Table::Contacts => at_least("clicked", 0.0, 1.0, "clicked is 1 (clicked) or 0 (did not)"),
        Table::Activity => {
            for column in ["logins", "transactions"] {
                at_least(column, 0.0, MAX_MONTHLY_COUNT, "a month's count is between 0 and 10^6");
            }
            at_least(
                "complaints",
                0.0,
                MAX_MONTHLY_COMPLAINTS,
                "a month's complaints are between 0 and 10^4",
            );
        }
        _ => {}
    }
    let order = match loaded.table {
        Table::Holdings => Some(("opened_on", "closed_on")),
        Table::Clients => Some(("client_since", "closed_on")),
        _ => None,
    };
    if let Some((opened, closed)) = order
        && let (Ok(a), Ok(b)) = (
            frame.column(opened).and_then(|c| c.date()),
            frame.column(closed).and_then(|c| c.date()),
        )
    {
        let kind = format!("{} {closed} before {opened}", origin.file());
        for (row, (start, end)) in a.physical().iter().zip(b.physical().iter()).enumerate() {
            if let (Some(start), Some(end)) = (start, end)
                && end < start
            {
                problems.error(
                    &kind,
                    origin.cell(row, closed),
                    format!(
                        "{closed} {} is before {opened} {}",
                        crate::data::date::Date(end),
                        crate::data::date::Date(start)
                    ),
                );
            }
        }
    }
}

fn report_out_of_range(
    values: &Float64Chunked,
    column: &str,
    low: f64,
    high: f64,
    what: &str,
    origin: &Origin,
    problems: &mut Problems,
) {
    let kind = format!("{} {column} out of range", origin.file());
    for (row, value) in values.iter().enumerate() {
        match value {
            Some(v) if !v.is_finite() => {
                problems.error(
                    &kind,
                    origin.cell(row, column),
                    format!("{column} is {v}: not a number bankml can use"),
                );
            }
            Some(v) if v < low || v > high => {
                // 1e308 as written, not as 309 digits.
                let shown = if v.abs() >= 1e15 {
                    format!("{v:e}")
                } else {
                    v.to_string()
                };
                problems.error(&kind, origin.cell(row, column), format!("{column} is {shown}: {what}"));
            }
            _ => {}
        }
    }
}

/// Rows of `from` whose `column` names no `to_column` of `to`: whole-number ids (clients)
/// looked up in a dense table where they are compact, text in a set. Reading gives every
/// column its schema type and every reference joins ids to ids or text to text; another pair
/// of types is not compared.
fn check_reference(from: &LoadedTable, column: &str, to: &LoadedTable, to_column: &str, problems: &mut Problems) {
    let (Ok(sources), Ok(targets)) = (from.frame.column(column), to.frame.column(to_column)) else {
        return;
    };
    let unknown: Vec<usize> = match (sources.i64(), targets.i64(), sources.str(), targets.str()) {
        (Ok(sources), Ok(targets), _, _) => {
            let ids: Vec<i64> = optional_values(targets).flatten().collect();
            let known = ClientRows::new(&ids);
            optional_values(sources)
                .enumerate()
                .filter(|(_, id)| id.is_some_and(|id| known.row(id).is_none()))
                .map(|(row, _)| row)
                .collect()
        }
        (_, _, Ok(sources), Ok(targets)) => {
            let known: foldhash::HashSet<&str> = targets.iter().flatten().collect();
            sources
                .iter()
                .enumerate()
                .filter(|(_, text)| text.is_some_and(|text| !known.contains(text)))
                .map(|(row, _)| row)
                .collect()
        }
        _ => return,
    };
    let kind = format!("{} unknown {column}", from.origin.file());
    let target_name = to.table.name();
    for row in unknown {
        problems.error(
            &kind,
            from.origin.cell(row, column),
            format!(
                "{column} {} is not in {target_name} ({})",
                shown(&from.frame, column, row),
                to.origin.path.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::format::FileFormat;

    #[test]
    fn pairs_sorted_by_hash_as_a_sort_orders_them() {
        let mut rng = crate::data::synth::rng::Rng::new(17);
        // Past 2¹¹ × 64 pairs the buckets are spread again.
        for rows in [0usize, 1, 2, 31, 5_000, 70_000, 300_000] {
            // Uniform hashes, a few repeated (duplicate keys) and a block of one hash.
            let mut pairs: Vec<(u64, u32)> = (0..rows as u32).map(|row| (rng.next_u64(), row)).collect();
            for row in (0..rows).step_by(7) {
                pairs[row].0 = pairs[row / 2].0;
            }
            for row in (0..rows).step_by(997) {
                pairs[row].0 = 42;
            }
            let mut expected = pairs.clone();
            expected.sort_unstable();
            assert_eq!(sorted_by_hash(pairs), expected, "{rows} rows");
        }
    }

    #[test]
    fn duplicate_keys_are_found_with_their_first_row() {
        // Small domains, so most keys repeat, some three times or more; 2 % of key parts
        // missing (those rows are not compared). Checked against comparing every pair.
        let mut rng = crate::data::synth::rng::Rng::new(7);
        let rows = 3000;
        let mut maybe = |value: i64| (!rng.bernoulli(0.02)).then_some(value);
        let cli: Vec<Option<i64>> = (0..rows).map(|i| maybe((i * 7919 % 60) as i64)).collect();
        let product: Vec<Option<String>> = (0..rows)
            .map(|i| maybe(i as i64 % 5).map(|p| format!("P{p}")))
            .collect();
        let opened: Vec<Option<i32>> = (0..rows)
            .map(|i| maybe((i * 31 % 11) as i64).map(|d| d as i32))
            .collect();
        let frame = DataFrame::new_infer_height(vec![
            Column::new("cli".into(), &cli),
            Column::new("product_id".into(), &product),
            crate::data::date::date_column("opened_on", opened.clone()),
        ])
        .expect("frame");
        let key = ["cli", "product_id", "opened_on"];
        let found = duplicate_rows(&frame, &key).expect("checked types");
        let complete = |row: usize| cli[row].is_some() && product[row].is_some() && opened[row].is_some();
        let same = |a: usize, b: usize| cli[a] == cli[b] && product[a] == product[b] && opened[a] == opened[b];
        let expected: Vec<(usize, usize)> = (0..rows)
            .filter(|row| complete(*row))
            .filter_map(|row| {
                (0..row)
                    .find(|first| complete(*first) && same(*first, row))
                    .map(|first| (row, first))
            })
            .collect();
        assert!(expected.len() > 1000, "{} repeats only", expected.len());
        assert_eq!(found, expected);
        // A key of a type bankml does not compare is not checked.
        let floats = DataFrame::new_infer_height(vec![Column::new("x".into(), &[1.0, 1.0])]).expect("frame");
        assert_eq!(duplicate_rows(&floats, &["x"]), None);
    }

    #[test]
    fn values_no_export_holds_are_refused_at_their_cell() {
        // A Parquet or Excel float can hold NaN and infinity; none is a balance.
        let values = Float64Chunked::from_slice("balance".into(), &[5.0, f64::NAN, f64::INFINITY, 2e12, -1.0, 1e12]);
        let origin = Origin::new(
            std::path::Path::new("data/raw/2025-03-31/holdings.parquet"),
            FileFormat::Parquet,
        );
        let mut problems = Problems::default();
        report_out_of_range(
            &values,
            "balance",
            0.0,
            MAX_BALANCE,
            "between 0 and 10^12",
            &origin,
            &mut problems,
        );
        let listed: Vec<String> = problems.into_list().iter().map(|p| p.to_string()).collect();
        assert_eq!(listed.len(), 4, "{listed:#?}");
        assert!(
            listed[0].contains("row 2") && listed[0].contains("balance is NaN: not a number"),
            "{}",
            listed[0]
        );
        assert!(listed[1].contains("balance is inf: not a number"), "{}", listed[1]);
        assert!(listed[2].contains("balance is 2000000000000: between"), "{}", listed[2]);
        assert!(listed[3].contains("balance is -1: between"), "{}", listed[3]);
    }
}
