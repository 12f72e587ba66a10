//! Checks across rows and tables once every cell has its type: missing required values,
//! duplicate keys, references to unknown clients/managers/agencies/products, and values
//! that cannot be (negative balances, scores outside 0–100, closing before opening).

use crate::data::problem::{Origin, Problems};
use crate::data::schema::{REFERENCES, Table};
use crate::data::source::LoadedTable;
use foldhash::HashMap;
use foldhash::HashMapExt;
use polars::prelude::*;
use std::collections::BTreeMap;

/// One key cell, typed, borrowed from the frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum KeyPart<'a> {
    Int(Option<i64>),
    Str(Option<&'a str>),
    Date(Option<i32>),
    Absent,
}

impl std::fmt::Display for KeyPart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPart::Int(Some(v)) => write!(f, "{v}"),
            KeyPart::Str(Some(v)) => write!(f, "{v}"),
            KeyPart::Date(Some(v)) => write!(f, "{}", crate::data::date::Date(*v)),
            _ => Ok(()),
        }
    }
}

/// A column as a random-access typed view.
enum View<'a> {
    Int(&'a Int64Chunked),
    Str(&'a StringChunked),
    Date(&'a Int32Chunked),
}

impl<'a> View<'a> {
    fn of(frame: &'a DataFrame, name: &str) -> Option<View<'a>> {
        let column = frame.column(name).ok()?;
        match column.dtype() {
            DataType::Int64 => column.i64().ok().map(View::Int),
            DataType::String => column.str().ok().map(View::Str),
            DataType::Date => column.date().ok().map(|d| View::Date(d.physical())),
            _ => None,
        }
    }

    fn part(&self, row: usize) -> KeyPart<'a> {
        match self {
            View::Int(ca) => KeyPart::Int(ca.get(row)),
            View::Str(ca) => KeyPart::Str(ca.get(row)),
            View::Date(ca) => KeyPart::Date(ca.get(row)),
        }
    }
}

/// Runs every check; tables that failed to load are skipped (their problems are already listed).
pub fn validate(tables: &BTreeMap<Table, LoadedTable>, problems: &mut Problems) {
    for loaded in tables.values() {
        check_required(loaded, problems);
        check_unique(loaded, problems);
        check_values(loaded, problems);
    }
    for reference in &REFERENCES {
        let (Some(from), Some(to)) = (tables.get(&reference.from), tables.get(&reference.to)) else { continue };
        check_reference(from, reference.column, to, reference.to_column, problems);
    }
}

fn check_required(loaded: &LoadedTable, problems: &mut Problems) {
    for spec in loaded.table.columns().iter().filter(|c| c.required && !loaded.rejected.contains(&c.name)) {
        let Ok(column) = loaded.frame.column(spec.name) else { continue };
        if column.null_count() == 0 {
            continue;
        }
        let kind = format!("{} {} missing", loaded.origin.file(), spec.name);
        let nulls = column.is_null();
        for (row, is_null) in nulls.iter().enumerate() {
            if is_null == Some(true) {
                problems.error(&kind, loaded.origin.cell(row, spec.name), format!("{} is required but empty", spec.name));
            }
        }
    }
}

fn check_unique(loaded: &LoadedTable, problems: &mut Problems) {
    let key = loaded.table.key();
    let views: Vec<View> = key.iter().filter_map(|k| View::of(&loaded.frame, k)).collect();
    if views.len() != key.len() {
        return;
    }
    let height = loaded.frame.height();
    let mut first_row: HashMap<[KeyPart; 3], usize> = HashMap::with_capacity(height);
    let kind = format!("{} duplicate key", loaded.origin.file());
    for row in 0..height {
        let mut parts = [KeyPart::Absent; 3];
        for (i, view) in views.iter().enumerate() {
            parts[i] = view.part(row);
        }
        if parts.iter().any(|p| matches!(p, KeyPart::Int(None) | KeyPart::Str(None) | KeyPart::Date(None))) {
            continue; // reported as a missing required value
        }
        if let Some(first) = first_row.insert(parts, row) {
            first_row.insert(parts, first);
            let shown: Vec<String> = key.iter().zip(parts.iter()).map(|(k, p)| format!("{k}={p}")).collect();
            problems.error(
                &kind,
                loaded.origin.row(row),
                format!("duplicate {} (first seen at {})", shown.join(", "), row_label(&loaded.origin, first)),
            );
        }
    }
}

fn row_label(origin: &Origin, row: usize) -> String {
    origin.row(row).rsplit(", ").next().unwrap_or_default().to_string()
}

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
        Table::Holdings => at_least("balance", 0.0, f64::INFINITY, "a balance cannot be negative (loans are outstanding amounts)"),
        Table::Managers => {
            at_least("performance_score", 0.0, 100.0, "a performance score is between 0 and 100");
            at_least("objective", 0.0, f64::INFINITY, "an objective cannot be negative");
        }
        Table::Agencies => at_least("performance_score", 0.0, 100.0, "a performance score is between 0 and 100"),
        Table::Activity => {
            for column in ["logins", "transactions", "complaints"] {
                at_least(column, 0.0, f64::INFINITY, "a count cannot be negative");
            }
        }
        _ => {}
    }
    let order = match loaded.table {
        Table::Holdings => Some(("opened_on", "closed_on")),
        Table::Clients => Some(("client_since", "closed_on")),
        _ => None,
    };
    if let Some((opened, closed)) = order
        && let (Some(View::Date(a)), Some(View::Date(b))) = (View::of(frame, opened), View::of(frame, closed))
    {
        let kind = format!("{} {closed} before {opened}", origin.file());
        for (row, (start, end)) in a.iter().zip(b.iter()).enumerate() {
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
        if let Some(v) = value
            && (v < low || v > high)
        {
            problems.error(&kind, origin.cell(row, column), format!("{column} is {v}: {what}"));
        }
    }
}

fn check_reference(from: &LoadedTable, column: &str, to: &LoadedTable, to_column: &str, problems: &mut Problems) {
    let (Some(source), Some(target)) = (View::of(&from.frame, column), View::of(&to.frame, to_column)) else {
        return;
    };
    let mut known: foldhash::HashSet<KeyPart> = foldhash::HashSet::default();
    known.reserve(to.frame.height());
    for row in 0..to.frame.height() {
        known.insert(target.part(row));
    }
    let kind = format!("{} unknown {column}", from.origin.file());
    let target_name = to.table.name();
    for row in 0..from.frame.height() {
        let part = source.part(row);
        if matches!(part, KeyPart::Int(None) | KeyPart::Str(None)) {
            continue;
        }
        if !known.contains(&part) {
            problems.error(
                &kind,
                from.origin.cell(row, column),
                format!("{column} {part} is not in {target_name} ({})", to.origin.path.display()),
            );
        }
    }
}
