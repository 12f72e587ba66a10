//! File formats of bank exports and of what we write: reading a table's file into a frame is
//! `data::source`'s job; writing a frame, atomically, is this module's, and so is reading a
//! whole Parquet file safely.

use crate::fsutil::{self, FsError};
use polars::prelude::*;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format as CellFormat, Workbook};
use std::fmt;
use std::path::{Path, PathBuf};

/// A whole Parquet file as a frame; a damaged file is an error that names why, never a
/// crash (see [`decode_guarded`]).
pub fn read_parquet(path: &Path) -> Result<DataFrame, String> {
    let bytes = polars_buffer::Buffer::from(std::fs::read(path).map_err(|e| format!("cannot open: {e}"))?);
    match decode_guarded(|| plausible_pages(&bytes)) {
        Ok(Ok(())) => {}
        Ok(Err(why)) | Err(why) => return Err(format!("not a readable Parquet file: it is damaged ({why})")),
    }
    match decode_guarded(|| ParquetReader::new(std::io::Cursor::new(bytes)).finish()) {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(e)) => Err(format!("not a readable Parquet file: {e}")),
        Err(why) => Err(format!("not a readable Parquet file: it is damaged ({why})")),
    }
}

/// The largest page a bank export may hold, compressed or not: a page header claiming more
/// is damaged (polars would try to allocate what it claims, and abort when it cannot).
const MAX_PAGE_BYTES: usize = 1 << 30;

/// Walks every page header of a Parquet file (no page is decompressed or decoded) and refuses
/// counts no intact file has: a page with more values than its column chunk, a column chunk of
/// a flat column with more values than its row group has rows, a page larger than
/// [`MAX_PAGE_BYTES`]. polars trusts these numbers and reserves memory for them, and an
/// allocation of 2⁶¹ bytes aborts the process: a catch cannot save it, only this check.
fn plausible_pages(bytes: &polars_buffer::Buffer<u8>) -> Result<(), String> {
    use polars_parquet::parquet::page::CompressedPage;
    use polars_parquet::parquet::read::{get_page_iterator, read_metadata};
    let mut cursor = std::io::Cursor::new(bytes.clone());
    let metadata = read_metadata(&mut cursor).map_err(|e| e.to_string())?;
    for (group, row_group) in metadata.row_groups.iter().enumerate() {
        let rows = row_group.num_rows();
        for column in row_group.parquet_columns() {
            let name = &column.descriptor().path_in_schema.join(".");
            let values = usize::try_from(column.num_values())
                .map_err(|_| format!("column {name}: a negative count of values"))?;
            let flat = column.descriptor().descriptor.max_rep_level == 0;
            if flat && values > rows {
                return Err(format!(
                    "column {name}, row group {group}: {values} values in {rows} rows"
                ));
            }
            let pages = get_page_iterator(column, std::io::Cursor::new(bytes.clone()), Vec::new(), MAX_PAGE_BYTES)
                .map_err(|e| format!("column {name}: {e}"))?;
            for page in pages {
                let page = page.map_err(|e| format!("column {name}: {e}"))?;
                if let CompressedPage::Data(page) = page {
                    if page.num_values() > values {
                        return Err(format!(
                            "column {name}: a page of {} values in a column of {values}",
                            page.num_values()
                        ));
                    }
                    if page.uncompressed_size() > MAX_PAGE_BYTES {
                        return Err(format!("column {name}: a page of {} bytes", page.uncompressed_size()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs a third-party decoder over a file that may be damaged. polars' Parquet reader and
/// calamine panic on some damaged files (an `unwrap` in polars' metadata reader, an assertion
/// in its bitmaps, an overflow in calamine's cell references): the panic is caught and given
/// back as its message, for the caller to say the file is damaged.
pub fn decode_guarded<T>(decode: impl FnOnce() -> T) -> Result<T, String> {
    quiet_decoder_panics();
    DECODING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    DECODING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    result.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// Decodes in progress: while there are any, a panic raised inside a decoder is one
/// [`decode_guarded`] turns into an error, and is not printed as a crash.
static DECODING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Installs (once) a panic hook that stays quiet about a decoder's panics while one runs
/// (polars raises them in its worker threads, so the caller cannot silence them itself), and
/// prints every other panic as before.
fn quiet_decoder_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_decoder = info
                .location()
                .is_some_and(|l| l.file().contains("polars") || l.file().contains("calamine"));
            if in_decoder && DECODING.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                return;
            }
            previous(info);
        }));
    });
}

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
        // Snappy (kept features, scores, exports): what Parquet readers have read longest, and
        // the cheapest to write. At 1M clients, writing a snapshot's features took ~0.79 s with
        // zstd at level 1 (polars' default level, 3, ~4 % more of `bankml features`' CPU) and
        // ~0.64 s with Snappy (LZ4 ~0.66 s), the command ~5 % less CPU, for files 30 % larger
        // (34 → 44 MB a snapshot).
        FileFormat::Parquet => ParquetWriter::new(file)
            .with_compression(ParquetCompression::Snappy)
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
