//! Reads one snapshot folder of bank exports — each table as `.xlsx`, `.csv` or `.parquet`,
//! whichever is there — into frames with our column names and types.
//!
//! Every cell that does not fit its column's type becomes a [`Problem`] naming the file,
//! sheet, row and column; nothing is guessed and nothing panics.

use crate::config::{ExtraColumns, IngestConfig};
use crate::data::date::{Date, date_column};
use crate::data::format::FileFormat;
use crate::data::problem::{Origin, Problems};
use crate::data::schema::{ColumnSpec, Kind, Table};
use calamine::{Data, Reader};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// A table as read: canonical columns in schema order, and where each row came from.
pub struct LoadedTable {
    pub table: Table,
    pub frame: DataFrame,
    pub origin: Origin,
    /// Columns with cells that did not fit their type (left empty, already reported).
    pub rejected: Vec<&'static str>,
}

/// Finds the one file holding `table` in `dir`.
pub fn locate(dir: &Path, table: Table, problems: &mut Problems) -> Option<(PathBuf, FileFormat)> {
    let found: Vec<(PathBuf, FileFormat)> = FileFormat::ALL
        .into_iter()
        .map(|f| (dir.join(format!("{}.{}", table.name(), f.extension())), f))
        .filter(|(p, _)| p.is_file())
        .collect();
    match found.len() {
        1 => found.into_iter().next(),
        0 => {
            problems.error(
                "missing table",
                dir.display().to_string(),
                format!("no {0}.xlsx, {0}.csv or {0}.parquet", table.name()),
            );
            None
        }
        _ => {
            let names: Vec<String> = found.iter().map(|(p, _)| p.display().to_string()).collect();
            problems.error(
                "ambiguous table",
                dir.display().to_string(),
                format!(
                    "{} is there more than once ({}); keep one",
                    table.name(),
                    names.join(", ")
                ),
            );
            None
        }
    }
}

/// The file holding optional `table` in `dir`, `None` (and no problem) when there is none.
pub fn locate_optional(dir: &Path, table: Table, problems: &mut Problems) -> Option<(PathBuf, FileFormat)> {
    let present = FileFormat::ALL
        .into_iter()
        .any(|f| dir.join(format!("{}.{}", table.name(), f.extension())).is_file());
    if present { locate(dir, table, problems) } else { None }
}

/// Reads `table` from `path`; `None` when the file itself is unusable (the reason is in
/// `problems`). Cell-level problems are recorded and the cell left empty.
pub fn read_table(
    path: &Path,
    format: FileFormat,
    table: Table,
    config: &IngestConfig,
    problems: &mut Problems,
) -> Option<LoadedTable> {
    let mut origin = Origin::new(path, format);
    let raw = match format {
        FileFormat::Xlsx => super::format::decode_guarded(|| read_xlsx(path, table, &mut origin))
            .unwrap_or_else(|why| Err(format!("not a readable Excel file: it is damaged ({why})"))),
        FileFormat::Csv => read_csv(path),
        FileFormat::Parquet => read_parquet(path),
    };
    let raw = match raw {
        Ok(raw) => raw,
        Err(message) => {
            problems.error("unreadable file", origin.file(), message);
            return None;
        }
    };
    let headers: Vec<String> = raw.names.clone();
    let duplicates = duplicate_headers(&headers);
    if !duplicates.is_empty() {
        let place = match format {
            FileFormat::Csv => "line 1",
            FileFormat::Xlsx => "row 1",
            FileFormat::Parquet => "schema",
        };
        for (name, first, second) in duplicates {
            problems.error(
                "duplicate column",
                format!("{}, {place}", origin.file()),
                format!(
                    "column \"{name}\" is named twice (columns {} and {})",
                    first + 1,
                    second + 1
                ),
            );
        }
        return None;
    }
    let mapping = config.columns.get(table.name());
    let mut columns = Vec::with_capacity(table.columns().len());
    let mut missing = false;
    for spec in table.columns() {
        let source_name = mapping
            .and_then(|m| m.get(spec.name))
            .map(String::as_str)
            .unwrap_or(spec.name);
        match headers.iter().position(|h| h.trim() == source_name) {
            Some(position) => {
                origin.columns.insert(spec.name, (source_name.to_string(), position));
            }
            None => {
                missing = true;
                let mapped = if source_name == spec.name {
                    String::new()
                } else {
                    format!(" (mapped from {})", spec.name)
                };
                problems.error(
                    "missing column",
                    origin.file(),
                    format!(
                        "missing column \"{source_name}\"{mapped}; found: {}",
                        headers.join(", ")
                    ),
                );
            }
        }
    }
    let known: Vec<&str> = origin.columns.values().map(|(name, _)| name.as_str()).collect();
    for header in headers.iter().filter(|h| !known.contains(&h.trim())) {
        let message = format!("extra column \"{header}\" is not used");
        match config.extra_columns {
            ExtraColumns::Ignore => {}
            ExtraColumns::Warn => problems.warning("extra column", origin.file(), message),
            ExtraColumns::Error => problems.error("extra column", origin.file(), message),
        }
    }
    if missing {
        return None;
    }
    let mut rejected = Vec::new();
    for spec in table.columns() {
        let position = origin.columns[spec.name].1;
        let (column, failures) = match &raw.data {
            RawData::Cells(cells) => convert_cells(&cells[position], spec, &origin, problems),
            RawData::Frame(frame) => convert_series(
                frame.columns()[position].as_materialized_series(),
                spec,
                &origin,
                problems,
            ),
        };
        if failures > 0 {
            rejected.push(spec.name);
        }
        columns.push(column);
    }
    let frame = DataFrame::new(raw.height, columns).ok()?;
    Some(LoadedTable {
        table,
        frame,
        origin,
        rejected,
    })
}

enum RawData {
    /// xlsx: cells per column, header excluded.
    Cells(Vec<Vec<Data>>),
    /// csv (every column as text) and parquet (typed).
    Frame(DataFrame),
}

struct Raw {
    names: Vec<String>,
    height: usize,
    data: RawData,
}

fn read_xlsx(path: &Path, table: Table, origin: &mut Origin) -> Result<Raw, String> {
    let mut workbook = calamine::open_workbook_auto(path).map_err(|e| format!("not a readable workbook: {e}"))?;
    let sheets = workbook.sheet_names();
    let sheet = sheets
        .iter()
        .find(|s| s.eq_ignore_ascii_case(table.name()))
        .or_else(|| sheets.first())
        .cloned()
        .ok_or_else(|| "the workbook has no sheet".to_string())?;
    origin.sheet = Some(sheet.clone());
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| format!("sheet \"{sheet}\": {e}"))?;
    // A sheet starting below row 1 or right of column A is read from where its data starts;
    // positions reported to the user stay those of the file.
    let (start_row, start_col) = range.start().unwrap_or((0, 0));
    if start_row != 0 || start_col != 0 {
        return Err(format!(
            "the header must be in row 1 starting at column A; this sheet starts at {}{}",
            crate::data::problem::excel_column(start_col as usize),
            start_row + 1
        ));
    }
    let mut rows = range.rows();
    let names: Vec<String> = rows
        .next()
        .ok_or_else(|| "the sheet is empty (no header row)".to_string())?
        .iter()
        .map(|c| c.to_string())
        .collect();
    let height = range.height().saturating_sub(1);
    let mut cells: Vec<Vec<Data>> = (0..names.len()).map(|_| Vec::with_capacity(height)).collect();
    for row in rows {
        for (c, column) in cells.iter_mut().enumerate() {
            column.push(row.get(c).cloned().unwrap_or(Data::Empty));
        }
    }
    Ok(Raw {
        names,
        height,
        data: RawData::Cells(cells),
    })
}

/// Columns named twice in a header: (name, first position, second position), 0-based. The
/// CSV reader renames a repeat `name_duplicated_0`; other readers keep it as it is. Which of
/// two same-named columns a bank meant cannot be guessed, so neither is read.
fn duplicate_headers(headers: &[String]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (second, header) in headers.iter().enumerate() {
        let base = match header.rsplit_once("_duplicated_") {
            Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) => base,
            _ => header.as_str(),
        };
        if let Some(first) = headers[..second].iter().position(|h| h.trim() == base.trim()) {
            out.push((base.trim().to_string(), first, second));
        }
    }
    out
}

fn read_csv(path: &Path) -> Result<Raw, String> {
    // polars names no place for text that is not UTF-8 or a ragged row: find it.
    let frame = super::table::read_csv_text(path)
        .map_err(|e| super::table::csv_problem(path).unwrap_or_else(|| format!("not a readable CSV file: {e}")))?;
    Ok(raw_frame(frame))
}

fn read_parquet(path: &Path) -> Result<Raw, String> {
    super::format::read_parquet(path).map(raw_frame)
}

fn raw_frame(frame: DataFrame) -> Raw {
    Raw {
        names: frame.get_column_names().iter().map(|n| n.to_string()).collect(),
        height: frame.height(),
        data: RawData::Frame(frame),
    }
}

/// Builds a typed column from one text or typed value per row.
struct Builder<'a> {
    spec: &'a ColumnSpec,
    origin: &'a Origin,
    ints: Vec<Option<i64>>,
    floats: Vec<Option<f64>>,
    dates: Vec<Option<i32>>,
    strings: Vec<Option<String>>,
    rejected: usize,
}

impl<'a> Builder<'a> {
    fn new(spec: &'a ColumnSpec, origin: &'a Origin, capacity: usize) -> Self {
        let mut b = Builder {
            spec,
            origin,
            ints: vec![],
            floats: vec![],
            dates: vec![],
            strings: vec![],
            rejected: 0,
        };
        match spec.kind {
            Kind::Int => b.ints.reserve(capacity),
            Kind::Float => b.floats.reserve(capacity),
            Kind::Date => b.dates.reserve(capacity),
            Kind::Str => b.strings.reserve(capacity),
        }
        b
    }

    fn null(&mut self) {
        match self.spec.kind {
            Kind::Int => self.ints.push(None),
            Kind::Float => self.floats.push(None),
            Kind::Date => self.dates.push(None),
            Kind::Str => self.strings.push(None),
        }
    }

    fn reject(&mut self, row: usize, shown: &str, problems: &mut Problems) {
        let kind = format!(
            "{} {} not {}",
            self.origin.file(),
            self.spec.name,
            self.spec.kind.describe()
        );
        problems.error(
            &kind,
            self.origin.cell(row, self.spec.name),
            format!("\"{shown}\" is not {}", self.spec.kind.describe()),
        );
        self.rejected += 1;
        self.null();
    }

    fn text(&mut self, row: usize, text: &str, problems: &mut Problems) {
        let text = text.trim();
        if text.is_empty() {
            return self.null();
        }
        match self.spec.kind {
            Kind::Str => self.strings.push(Some(text.to_string())),
            Kind::Int => match parse_int(text) {
                Some(v) => self.ints.push(Some(v)),
                None => self.reject(row, text, problems),
            },
            Kind::Float => match text.parse::<f64>().ok().filter(|v| v.is_finite()) {
                Some(v) => self.floats.push(Some(v)),
                None => self.reject(row, text, problems),
            },
            Kind::Date => match Date::parse(text) {
                Some(d) => self.dates.push(Some(d.0)),
                None => self.reject(row, text, problems),
            },
        }
    }

    fn number(&mut self, row: usize, value: f64, problems: &mut Problems) {
        match self.spec.kind {
            Kind::Float => self.floats.push(Some(value)),
            Kind::Int if value.fract() == 0.0 && value.abs() < 9.0e15 => self.ints.push(Some(value as i64)),
            Kind::Str if value.fract() == 0.0 && value.abs() < 9.0e15 => {
                self.strings.push(Some((value as i64).to_string()))
            }
            Kind::Str => self.strings.push(Some(value.to_string())),
            _ => self.reject(row, &value.to_string(), problems),
        }
    }

    fn date(&mut self, row: usize, days: i32, problems: &mut Problems) {
        match self.spec.kind {
            Kind::Date => self.dates.push(Some(days)),
            _ => self.reject(row, &Date(days).to_string(), problems),
        }
    }

    /// The column, and how many cells were rejected.
    fn finish(self) -> (Column, usize) {
        let name = PlSmallStr::from_static(self.spec.name);
        let column = match self.spec.kind {
            Kind::Int => Column::new(name, self.ints),
            Kind::Float => Column::new(name, self.floats),
            Kind::Str => Column::new(name, self.strings),
            Kind::Date => date_column(self.spec.name, self.dates),
        };
        (column, self.rejected)
    }
}

/// Whole numbers, also written as `12.0` by spreadsheets.
fn parse_int(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        let v: f64 = text.parse().ok()?;
        (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
    })
}

fn convert_cells(cells: &[Data], spec: &ColumnSpec, origin: &Origin, problems: &mut Problems) -> (Column, usize) {
    let mut b = Builder::new(spec, origin, cells.len());
    for (row, cell) in cells.iter().enumerate() {
        match cell {
            Data::Empty => b.null(),
            Data::String(s) => b.text(row, s, problems),
            Data::Int(v) => b.number(row, *v as f64, problems),
            Data::Float(v) => b.number(row, *v, problems),
            Data::DateTime(dt) => {
                let (y, m, d, ..) = dt.to_ymd_hms_milli();
                match Date::from_ymd(y as i32, m as u32, d as u32) {
                    Some(date) if spec.kind == Kind::Date => b.date(row, date.0, problems),
                    _ => b.reject(row, &format!("{y:04}-{m:02}-{d:02}"), problems),
                }
            }
            Data::DateTimeIso(s) => b.text(row, s, problems),
            Data::Bool(v) => b.reject(row, &v.to_string(), problems),
            Data::DurationIso(s) => b.reject(row, s, problems),
            Data::Error(e) => b.reject(row, &format!("{e:?}"), problems),
        }
    }
    b.finish()
}

fn convert_series(series: &Series, spec: &ColumnSpec, origin: &Origin, problems: &mut Problems) -> (Column, usize) {
    let target = spec.kind.dtype();
    let dtype = series.dtype();
    let renamed = |s: Series| (s.with_name(PlSmallStr::from_static(spec.name)).into_column(), 0);
    if dtype == &target {
        return renamed(series.clone());
    }
    // Lossless widenings of a typed export (Int32 → Int64, integers → Float64, Datetime → Date).
    let widening = match spec.kind {
        Kind::Int => dtype.is_integer(),
        Kind::Float => dtype.is_primitive_numeric(),
        Kind::Date => matches!(dtype, DataType::Datetime(_, _)),
        Kind::Str => dtype.is_integer(),
    };
    if widening && let Ok(cast) = series.cast(&target) {
        return renamed(cast);
    }
    if let Ok(text) = series.str() {
        let mut b = Builder::new(spec, origin, text.len());
        for (row, value) in text.iter().enumerate() {
            match value {
                Some(v) => b.text(row, v, problems),
                None => b.null(),
            }
        }
        return b.finish();
    }
    if spec.kind == Kind::Int
        && dtype.is_float()
        && let Ok(values) = series.cast(&DataType::Float64)
        && let Ok(values) = values.f64()
    {
        let mut b = Builder::new(spec, origin, values.len());
        for (row, value) in values.iter().enumerate() {
            match value {
                Some(v) => b.number(row, v, problems),
                None => b.null(),
            }
        }
        return b.finish();
    }
    problems.error(
        &format!("{} {} type", origin.file(), spec.name),
        origin.column(spec.name),
        format!("stored as {dtype}, expected {}", spec.kind.describe()),
    );
    (
        Column::full_null(PlSmallStr::from_static(spec.name), series.len(), &target),
        series.len(),
    )
}
