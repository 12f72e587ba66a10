//! Prediction and feature files of any model, read for `bankml evaluate`: a CSV or Parquet
//! table by extension, and its columns as numbers, 0/1 labels, ids or drift samples — every
//! bad value named by file, line (CSV) or row (Parquet) and column.

use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Bad input: the message names the file, the line or row and the column.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

/// A CSV or Parquet file, by extension.
pub fn read_table(path: &Path) -> Result<DataFrame, TableError> {
    if !path.is_file() {
        return Err(TableError::Invalid(format!("{}: no such file", path.display())));
    }
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let frame = match extension.as_deref() {
        // Every column as text: a bad cell is then found by the column reader, which names
        // its line (polars, inferring types, names a byte offset or advises an option).
        Some("csv") => read_csv_text(path).map_err(|e| match csv_problem(path) {
            Some(place) => TableError::Invalid(format!("{}, {place}", path.display())),
            None => TableError::Invalid(format!("{}: cannot read: {e}", path.display())),
        }),
        Some("parquet") => std::fs::File::open(path)
            .map_err(PolarsError::from)
            .and_then(|f| ParquetReader::new(f).finish())
            .map_err(|e| TableError::Invalid(format!("{}: cannot read: {e}", path.display()))),
        _ => {
            return Err(TableError::Invalid(format!(
                "{}: expected a .csv or .parquet file",
                path.display()
            )));
        }
    };
    let frame = frame?;
    if frame.height() == 0 {
        return Err(TableError::Invalid(format!(
            "{}: no rows (only a header)",
            path.display()
        )));
    }
    Ok(typed(frame)?)
}

/// Text columns whose every cell is a number become numbers (whole ones integers; true/false
/// booleans); a
/// column with one bad cell stays text, for the column reader to name that cell's line.
fn typed(frame: DataFrame) -> PolarsResult<DataFrame> {
    let columns = frame
        .columns()
        .iter()
        .map(|column| {
            if column.dtype() != &DataType::String {
                return Ok(column.clone());
            }
            // Whole numbers stay whole (ids read back as 100002, not 100002.0).
            for dtype in [DataType::Int64, DataType::Float64] {
                let numbers = column.cast(&dtype)?;
                if numbers.null_count() == column.null_count() {
                    return Ok(numbers);
                }
            }
            let text = column.str()?;
            let boolean = text
                .iter()
                .flatten()
                .all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"));
            if boolean {
                let values: BooleanChunked = text.iter().map(|v| v.map(|v| v.eq_ignore_ascii_case("true"))).collect();
                return Ok(values.with_name(column.name().clone()).into_column());
            }
            Ok(column.clone())
        })
        .collect::<PolarsResult<Vec<Column>>>()?;
    DataFrame::new_infer_height(columns)
}

/// A CSV file with a header, every column read as text: types are decided afterwards, by
/// readers that can name the line of a cell that does not fit (bank exports, `evaluate`).
pub fn read_csv_text(path: &Path) -> PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
}

/// Where a CSV file polars refused goes wrong, when it is text that is not UTF-8 or a line
/// with more or fewer fields than the header: "line 7: 3 fields where the header has 2".
pub fn csv_problem(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if let Some(problem) = crate::fsutil::utf8_problem(&bytes) {
        return Some(problem);
    }
    let text = std::str::from_utf8(&bytes).ok()?;
    let fields = |line: &str| {
        let mut quoted = false;
        1 + line
            .chars()
            .filter(|c| {
                if *c == '"' {
                    quoted = !quoted;
                }
                *c == ',' && !quoted
            })
            .count()
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next()?;
    let expected = fields(header);
    lines
        .filter(|(_, line)| !line.trim().is_empty())
        .find(|(_, line)| fields(line) != expected)
        .map(|(i, line)| {
            format!(
                "line {}: {} fields where the header has {expected}",
                i + 1,
                fields(line)
            )
        })
}

pub fn column<'a>(frame: &'a DataFrame, name: &str, path: &Path) -> Result<&'a Column, TableError> {
    frame.column(name).map_err(|_| {
        let names: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
        TableError::Invalid(format!(
            "{}: no column \"{name}\" (columns: {})",
            path.display(),
            names.join(", ")
        ))
    })
}

/// 1-based data row for messages (CSV: the header is line 1, so data row r is line r + 1).
pub fn row_name(path: &Path, index: usize) -> String {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        format!("line {}", index + 2)
    } else {
        format!("row {}", index + 1)
    }
}

/// A numeric column with no missing values.
pub fn number_column(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<f64>, TableError> {
    let column = column(frame, name, path)?;
    if column.dtype() == &DataType::String {
        // Text as read from a CSV file: each cell parsed here, so a bad one is named by line.
        return column
            .str()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let place = || format!("{}, {}, column {name}", path.display(), row_name(path, i));
                match v.map(str::trim) {
                    None | Some("") => Err(TableError::Invalid(format!("{}: empty", place()))),
                    Some(text) => match text.parse::<f64>() {
                        Ok(v) if v.is_finite() => Ok(v),
                        Ok(v) => Err(TableError::Invalid(format!("{}: {v} is not a finite number", place()))),
                        Err(_) => Err(TableError::Invalid(format!("{}: \"{text}\" is not a number", place()))),
                    },
                }
            })
            .collect();
    }
    if !column.dtype().is_primitive_numeric() && column.dtype() != &DataType::Boolean {
        let example = column
            .as_materialized_series()
            .iter()
            .next()
            .map(|v| v.to_string())
            .unwrap_or_default();
        return Err(TableError::Invalid(format!(
            "{}: column \"{name}\" is {} (e.g. {example}), not numbers",
            path.display(),
            column.dtype()
        )));
    }
    let values = column.cast(&DataType::Float64)?;
    let values = values.f64()?;
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => out.push(v),
            Some(v) => {
                return Err(TableError::Invalid(format!(
                    "{}, {}, column {name}: {v} is not a finite number",
                    path.display(),
                    row_name(path, i)
                )));
            }
            None => {
                return Err(TableError::Invalid(format!(
                    "{}, {}, column {name}: empty",
                    path.display(),
                    row_name(path, i)
                )));
            }
        }
    }
    Ok(out)
}

/// A 0/1 (or true/false) column.
pub fn label_column(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<bool>, TableError> {
    let values = number_column(frame, name, path)?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match *v {
            0.0 => Ok(false),
            1.0 => Ok(true),
            other => Err(TableError::Invalid(format!(
                "{}, {}, column {name}: {other} is not a class (0 or 1)",
                path.display(),
                row_name(path, i)
            ))),
        })
        .collect()
}

/// A column as text (numbers written as they print), for ids.
pub fn text_column(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<String>, TableError> {
    let column = column(frame, name, path)?;
    let values = column.cast(&DataType::String)?;
    values
        .str()?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(str::to_string).ok_or_else(|| {
                TableError::Invalid(format!(
                    "{}, {}, column {name}: empty",
                    path.display(),
                    row_name(path, i)
                ))
            })
        })
        .collect()
}

/// One column's values for drift: numbers (NaN and empty dropped and counted) or counts per
/// text value.
pub enum Sample {
    Numbers(Vec<f64>, usize),
    Text(BTreeMap<String, u64>, usize),
}

impl Sample {
    pub fn is_empty(&self) -> bool {
        match self {
            Sample::Numbers(v, _) => v.is_empty(),
            Sample::Text(counts, _) => counts.is_empty(),
        }
    }
}

pub fn drift_sample(frame: &DataFrame, name: &str, path: &Path) -> Result<Sample, TableError> {
    let column = column(frame, name, path)?;
    let dtype = column.dtype();
    // Dates drift as their day numbers.
    let numbers = match dtype {
        DataType::Date => Some(column.cast(&DataType::Int32)?),
        d if d.is_primitive_numeric() => Some(column.clone()),
        _ => None,
    };
    if let Some(column) = numbers {
        let values = column.cast(&DataType::Float64)?;
        let values = values.f64()?;
        let mut out = Vec::with_capacity(values.len());
        let mut missing = 0;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) if v.is_finite() => out.push(v),
                Some(v) if v.is_infinite() => {
                    return Err(TableError::Invalid(format!(
                        "{}, {}, column {name}: {v} is not a finite number",
                        path.display(),
                        row_name(path, i)
                    )));
                }
                _ => missing += 1,
            }
        }
        Ok(Sample::Numbers(out, missing))
    } else {
        let values = column.cast(&DataType::String)?;
        let missing = values.null_count();
        // Counted on borrowed text: no string is copied per row.
        let mut counts: foldhash::HashMap<&str, u64> = foldhash::HashMap::default();
        for value in values.str()?.iter().flatten() {
            *counts.entry(value).or_insert(0) += 1;
        }
        Ok(Sample::Text(
            counts.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            missing,
        ))
    }
}
