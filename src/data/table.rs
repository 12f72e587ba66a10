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
        Some("parquet") => {
            super::format::read_parquet(path).map_err(|e| TableError::Invalid(format!("{}: {e}", path.display())))
        }
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

/// Where a CSV file polars refused goes wrong, when it is text that is not UTF-8, a record
/// with more or fewer fields than the header ("line 7: 3 fields where the header has 2"), or
/// a quote never closed, or nothing at all. Records are scanned as CSV reads them: a quoted field may span lines.
pub fn csv_problem(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if let Some(problem) = crate::fsutil::utf8_problem(&bytes) {
        return Some(problem);
    }
    let text = std::str::from_utf8(&bytes).ok()?;
    if text.trim().is_empty() {
        return Some("the file is empty (not even a header line)".into());
    }
    // A CSV record scanner (RFC 4180): a quoted field may span lines and holds "" for a quote.
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        /// A quote seen in a quoted field: it closes the field, or doubles (an escaped quote).
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut expected = None;
    let (mut line, mut record_line, mut quote_line) = (1usize, 1usize, 1usize);
    let (mut fields, mut blank) = (1usize, true);
    for c in text.chars().chain(std::iter::once('\n')) {
        match (&state, c) {
            (State::Quoted, '"') => state = State::QuoteInQuoted,
            (State::Quoted, '\n') => line += 1,
            (State::Quoted, _) => {}
            (State::QuoteInQuoted, '"') => state = State::Quoted,
            (State::FieldStart, '"') => {
                (state, quote_line, blank) = (State::Quoted, line, false);
            }
            (_, ',') => {
                (state, fields, blank) = (State::FieldStart, fields + 1, false);
            }
            (_, '\n') => {
                line += 1;
                if !blank {
                    match expected {
                        None => expected = Some(fields),
                        Some(header) if fields != header => {
                            return Some(format!(
                                "line {record_line}: {fields} fields where the header has {header}"
                            ));
                        }
                        Some(_) => {}
                    }
                }
                (state, fields, blank, record_line) = (State::FieldStart, 1, true, line);
            }
            (State::Unquoted, '"') => {
                return Some(format!(
                    "line {line}, field {fields}: a quote inside an unquoted field (quote the whole field, \
                     writing a quote in it as \"\")"
                ));
            }
            (State::QuoteInQuoted, '\r') => {}
            (State::QuoteInQuoted, _) => {
                return Some(format!(
                    "line {line}, field {fields}: text after the closing quote (a quote inside a quoted field is written \"\")"
                ));
            }
            (_, c) => {
                if !c.is_whitespace() {
                    blank = false;
                }
                if state == State::FieldStart && !c.is_whitespace() {
                    state = State::Unquoted;
                }
            }
        }
    }
    (state == State::Quoted).then(|| format!("line {quote_line}: a quote (\") opened here is never closed"))
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

/// A column's values as text, empty cells as `None` (numbers and dates cast to their text):
/// for grouping and keys of frames bankml built itself, where a missing column is a bug
/// rather than a user's file to blame.
pub fn optional_texts(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(frame
        .column(name)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, text).unwrap();
        csv_problem(&path)
    }

    #[test]
    fn a_bad_record_is_named_by_the_line_it_starts_on() {
        assert_eq!(problem("a,b\n1,2\n\n3,4\n"), None);
        assert_eq!(
            problem("a,b\n\"x\ny\",2\n3,4,5\n").as_deref(),
            Some("line 4: 3 fields where the header has 2")
        );
        assert_eq!(
            problem("a,b\n1,2\n3,\"4\n5,6\n").as_deref(),
            Some("line 3: a quote (\") opened here is never closed")
        );
        assert_eq!(
            problem("a,b\n1,\"2,\"\"x\"\"\"\n3").as_deref(),
            Some("line 3: 1 fields where the header has 2")
        );
        assert_eq!(
            problem("a,b\n1,2\n\"\"G1,3\n").as_deref(),
            Some("line 3, field 1: text after the closing quote (a quote inside a quoted field is written \"\")")
        );
        assert!(
            problem("a,b\nx\"y,2\n")
                .is_some_and(|p| p.starts_with("line 2, field 1: a quote inside an unquoted field"))
        );
        assert_eq!(
            problem("a,b\r\n\"1\"\r\n").as_deref(),
            Some("line 2: 1 fields where the header has 2")
        );
    }
}
