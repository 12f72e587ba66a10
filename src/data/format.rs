//! File formats of bank exports and of what we write: reading a table's file into a frame is
//! `data::source`'s job; writing a frame, atomically, is this module's.

use crate::fsutil::{self, FsError};
use polars::prelude::*;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format as CellFormat, Workbook};
use std::fmt;
use std::path::{Path, PathBuf};

/// Excel's row limit per sheet, including the header row.
pub const XLSX_MAX_ROWS: usize = 1_048_576;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Xlsx,
    Csv,
    Parquet,
}

impl FileFormat {
    pub const ALL: [FileFormat; 3] = [FileFormat::Xlsx, FileFormat::Csv, FileFormat::Parquet];

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Xlsx => "xlsx",
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }

    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        FileFormat::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "{path}: {rows} rows do not fit in an Excel sheet (at most {max} rows); use --format csv or --format parquet"
    )]
    TooManyRowsForXlsx { path: PathBuf, rows: usize, max: usize },
    #[error("cannot write {path}: {message}")]
    Encode { path: PathBuf, message: String },
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Writes `frame` to `path` in `format`, atomically: readers see the old file or the new one.
pub fn write_frame(frame: &mut DataFrame, path: &Path, format: FileFormat) -> Result<(), WriteError> {
    if format == FileFormat::Xlsx && frame.height() + 1 > XLSX_MAX_ROWS {
        return Err(WriteError::TooManyRowsForXlsx {
            path: path.into(),
            rows: frame.height(),
            max: XLSX_MAX_ROWS - 1,
        });
    }
    // A full or read-only disk reaches us through the encoder as "Invalid thrift: transport
    // error": say what the disk says.
    let encode = |message: String| WriteError::Encode {
        path: path.into(),
        message: match fsutil::why_not_writable(path) {
            Some(why) => why,
            None => message,
        },
    };
    fsutil::write_atomic(path, |file| match format {
        FileFormat::Csv => CsvWriter::new(file)
            .include_header(true)
            .finish(frame)
            .map_err(|e| encode(e.to_string())),
        FileFormat::Parquet => ParquetWriter::new(file)
            .finish(frame)
            .map(|_| ())
            .map_err(|e| encode(e.to_string())),
        FileFormat::Xlsx => {
            let sheet = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
            let bytes = xlsx_bytes(frame, sheet).map_err(|e| encode(e.to_string()))?;
            std::io::Write::write_all(file, &bytes).map_err(|e| encode(e.to_string()))
        }
    })
}

/// One sheet named `sheet`, a header row, dates as real Excel dates. The document's creation
/// time is fixed so that the same frame always gives the same bytes.
fn xlsx_bytes(frame: &DataFrame, sheet_name: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut workbook = Workbook::new();
    let epoch = ExcelDateTime::from_ymd(2000, 1, 1)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&epoch).set_author("bankml"));
    let date_format = CellFormat::new().set_num_format("yyyy-mm-dd");
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name(sheet_name)?;
    let columns: Vec<Cells> = frame.columns().iter().map(Cells::of).collect::<Result<_, _>>()?;
    for (c, column) in frame.columns().iter().enumerate() {
        sheet.write_string(0, c as u16, column.name().as_str())?;
    }
    for row in 0..frame.height() {
        let r = row as u32 + 1;
        for (c, cells) in columns.iter().enumerate() {
            let c = c as u16;
            match cells {
                Cells::Int(ca) => {
                    if let Some(v) = ca.get(row) {
                        sheet.write_number(r, c, v as f64)?;
                    }
                }
                Cells::Float(ca) => {
                    if let Some(v) = ca.get(row) {
                        sheet.write_number(r, c, v)?;
                    }
                }
                Cells::Str(ca) => {
                    if let Some(v) = ca.get(row) {
                        sheet.write_string(r, c, v)?;
                    }
                }
                Cells::Date(ca) => {
                    if let Some(days) = ca.get(row) {
                        sheet.write_number_with_format(r, c, days as f64 + EXCEL_EPOCH_OFFSET, &date_format)?;
                    }
                }
            }
        }
    }
    Ok(workbook.save_to_buffer()?)
}

/// Excel's serial day number of 1970-01-01 (1900 date system).
pub const EXCEL_EPOCH_OFFSET: f64 = 25_569.0;

/// A column viewed as one contiguous typed array, for row-by-row writing.
enum Cells {
    Int(Int64Chunked),
    Float(Float64Chunked),
    Str(StringChunked),
    Date(Int32Chunked),
}

impl Cells {
    fn of(column: &Column) -> PolarsResult<Cells> {
        let series = column.as_materialized_series().rechunk();
        Ok(match series.dtype() {
            DataType::Date => Cells::Date(series.cast(&DataType::Int32)?.i32()?.clone()),
            DataType::String => Cells::Str(series.str()?.clone()),
            DataType::Float32 | DataType::Float64 => Cells::Float(series.cast(&DataType::Float64)?.f64()?.clone()),
            DataType::Boolean | DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                Cells::Int(series.cast(&DataType::Int64)?.i64()?.clone())
            }
            other if other.is_primitive_numeric() => Cells::Float(series.cast(&DataType::Float64)?.f64()?.clone()),
            _ => Cells::Str(series.cast(&DataType::String)?.str()?.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_beyond_a_sheet_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holdings.xlsx");
        let mut frame =
            DataFrame::new_infer_height(vec![Column::new("cli".into(), vec![1i64; XLSX_MAX_ROWS])]).unwrap();
        let error = write_frame(&mut frame, &path, FileFormat::Xlsx).unwrap_err();
        assert!(
            error.to_string().contains("1048576 rows do not fit in an Excel sheet"),
            "{error}"
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn xlsx_round_trips_through_calamine_with_real_dates() {
        use calamine::{Data, Reader};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.xlsx");
        let mut frame = DataFrame::new_infer_height(vec![
            Column::new("cli".into(), vec![Some(7i64), None]),
            crate::data::date::date_column("since", vec![Some(20_000), Some(0)]),
            Column::new("name".into(), vec![Some("a"), Some("b")]),
        ])
        .unwrap();
        write_frame(&mut frame, &path, FileFormat::Xlsx).unwrap();
        let mut book = calamine::open_workbook_auto(&path).unwrap();
        let range = book.worksheet_range("clients").unwrap();
        assert_eq!(range.get((1, 0)), Some(&Data::Float(7.0)));
        assert_eq!(range.get((2, 0)), Some(&Data::Empty));
        match range.get((2, 1)) {
            Some(Data::DateTime(dt)) => assert_eq!(dt.to_ymd_hms_milli().0, 1970),
            other => panic!("a date cell, got {other:?}"),
        }
    }
}
