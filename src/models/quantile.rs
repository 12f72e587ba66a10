//! XGBoost's quantile matrix and a raw booster trained on it — the calls the `xgb` crate does
//! not wrap, over `xgboost_lib-sys`'s bindings, wrapped here once with safe types.
//!
//! Why: a `DMatrix` built from a dense array copies every value into XGBoost's own sparse
//! pages (8 bytes an entry, twice our f32 matrix) before `hist` quantises them. A
//! `QuantileDMatrix` is fed our matrix in batches through a callback and keeps only the
//! quantised bins (a byte an entry), so training holds one copy of the data instead of three.
//! The default (`models.boosting.matrix: quantile`, with `hist`). The validation set stays an ordinary
//! `DMatrix`: the booster predicts on it every round, and from a quantised matrix that made
//! training ~25 % slower (measured: 4.92 s against 4.18 s dense, 400k × 40, 60 rounds).
//! The trained model is saved to XGBoost's JSON and loaded back into an `xgb::Booster`, so
//! prediction, SHAP and saving stay on the crate.

use super::boosted::{BoostError, Matrix, Result};
use std::ffi::{CStr, CString, c_int};
use xgboost_lib_sys as sys;

/// Rows handed to XGBoost per callback: the sketch merges batches, so fewer, larger batches
/// keep its cuts closest to the single-matrix ones; a quarter million rows of ~100 features
/// is ~100 MB of our own matrix, referenced, not copied.
pub const ROWS_PER_BATCH: usize = 262_144;

/// XGBoost's message for the last call that failed on this thread, without the C++ stack
/// trace it appends (`Stack trace:` and `[bt]` lines), which says nothing to a user.
pub(super) fn last_error() -> String {
    // SAFETY: XGBGetLastError returns a thread-local, NUL-terminated message (never null).
    let text = unsafe { CStr::from_ptr(sys::XGBGetLastError()) }.to_string_lossy();
    text.lines()
        .take_while(|line| !line.trim_start().starts_with("Stack trace") && !line.trim_start().starts_with("[bt]"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

fn check(code: c_int) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(BoostError::Xgboost(last_error()))
    }
}

fn c_string(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| BoostError::Shape(format!("a NUL byte in {text:?}")))
}

/// numpy's `__array_interface__` (version 3) for `rows` × `cols` f32 values, row-major: a
/// borrowed, read-only pointer XGBoost reads from.
fn array_interface(values: &[f32], rows: usize, cols: usize) -> Result<CString> {
    c_string(&format!(
        "{{\"data\": [{}, true], \"shape\": [{rows}, {cols}], \"typestr\": \"<f4\", \"version\": 3}}",
        values.as_ptr() as usize
    ))
}

/// What a prediction gives per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// The model's output (a probability for a binary objective).
    Value,
    /// TreeSHAP contributions: one per feature, then the bias.
    Contributions,
    /// Saabas's per-path contributions (XGBoost's `approx_contribs`), much faster.
    ApproximateContributions,
}

/// A prediction's configuration; `in_place` adds the missing value (NaN), which in-place
/// prediction reads from it rather than from a matrix.
fn prediction_config(kind: Prediction, in_place: bool) -> Result<CString> {
    let code = match kind {
        Prediction::Value => 0,
        Prediction::Contributions => 2,
        Prediction::ApproximateContributions => 3,
    };
    let missing = if in_place { ", \"missing\": NaN" } else { "" };
    c_string(&format!(
        "{{\"type\": {code}, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false{missing}}}"
    ))
}

/// Runs one `XGBoosterPredictFrom*` call, given its three outputs (shape, dimensions,
/// values), and copies what it returned: XGBoost reuses the buffer at the next call.
fn prediction(call: impl FnOnce(*mut *const u64, *mut u64, *mut *const f32) -> c_int) -> Result<Vec<f32>> {
    let mut shape: *const u64 = std::ptr::null();
    let mut dims: u64 = 0;
    let mut out: *const f32 = std::ptr::null();
    check(call(&mut shape, &mut dims, &mut out))?;
    if shape.is_null() || out.is_null() {
        return Err(BoostError::Xgboost("XGBoost returned no prediction".into()));
    }
    // SAFETY: a successful call left `shape` holding `dims` extents.
    let extents = unsafe { std::slice::from_raw_parts(shape, dims as usize) };
    let len: u64 = extents.iter().product();
    // SAFETY: and `out` holding their product of values.
    Ok(unsafe { std::slice::from_raw_parts(out, len as usize) }.to_vec())
}

/// How a matrix is built: NaN is missing, on `threads` threads.
fn matrix_config(threads: usize) -> Result<CString> {
    c_string(&format!("{{\"missing\": NaN, \"nthread\": {threads}}}"))
}

/// Sets `field` (`label`, `weight`) of `handle` (a matrix or the proxy's current batch).
fn set_info(handle: sys::DMatrixHandle, field: &str, data: &[f32]) -> Result<()> {
    let field = c_string(field)?;
    // SAFETY: a live handle; XGBoost copies the values.
    check(unsafe { sys::XGDMatrixSetFloatInfo(handle, field.as_ptr(), data.as_ptr(), data.len() as u64) })
}

/// Labels or weights must have one value per row.
fn one_per_row(rows: usize, what: &str, data: Option<&[f32]>) -> Result<()> {
    match data {
        Some(data) if data.len() != rows => Err(BoostError::Shape(format!("{} {what} for {rows} rows", data.len()))),
        _ => Ok(()),
    }
}

/// Training rows handed to XGBoost batch by batch. XGBoost reads them several times while it
/// builds a quantile matrix (their shape, the sketch, the bins), and every pass must see the
/// same batches in the same order.
pub trait RowBatches {
    /// Columns of every batch.
    fn cols(&self) -> usize;
    /// Back to the first batch.
    fn restart(&mut self);
    /// The next batch, `None` after the last; an error stops the matrix being built.
    fn next_batch(&mut self) -> std::result::Result<Option<Batch<'_>>, String>;
}

/// One batch: `labels.len()` rows of [`RowBatches::cols`] values each, row-major, and their
/// weights when there are some. Borrowed until the next batch is asked for.
pub struct Batch<'a> {
    pub values: &'a [f32],
    pub labels: Option<&'a [f32]>,
    pub weights: Option<&'a [f32]>,
    pub rows: usize,
}

/// The rows of a matrix in memory (all, or `rows` in that order) with their labels and
/// weights, [`ROWS_PER_BATCH`] at a time.
struct MatrixBatches<'a> {
    matrix: &'a Matrix,
    /// The rows of `matrix` used, in this order (`None`: all): early stopping's watch rows
    /// stay out of the training matrix without a copy of the other 85 %.
    rows: Option<&'a [usize]>,
    /// The current batch's rows gathered from `rows` (XGBoost reads it until the next call).
    gathered: Vec<f32>,
    labels: Option<&'a [f32]>,
    weights: Option<&'a [f32]>,
    next_row: usize,
}

impl RowBatches for MatrixBatches<'_> {
    fn cols(&self) -> usize {
        self.matrix.cols()
    }

    fn restart(&mut self) {
        self.next_row = 0;
    }

    fn next_batch(&mut self) -> std::result::Result<Option<Batch<'_>>, String> {
        let cols = self.matrix.cols();
        let used = self.rows.map_or(self.matrix.rows, <[usize]>::len);
        if self.next_row >= used {
            return Ok(None);
        }
        let (start, end) = (self.next_row, (self.next_row + ROWS_PER_BATCH).min(used));
        self.next_row = end;
        let values: &[f32] = match self.rows {
            None => &self.matrix.values[start * cols..end * cols],
            Some(picked) => {
                self.gathered.clear();
                for &i in &picked[start..end] {
                    self.gathered.extend_from_slice(self.matrix.row(i));
                }
                &self.gathered
            }
        };
        Ok(Some(Batch {
            values,
            labels: self.labels.map(|l| &l[start..end]),
            weights: self.weights.map(|w| &w[start..end]),
            rows: end - start,
        }))
    }
}

/// What XGBoost's callbacks hold: the batches and the proxy each is handed through.
struct Feed<'a> {
    batches: &'a mut dyn RowBatches,
    proxy: sys::DMatrixHandle,
    /// An error met inside a callback (which can only say "stop"), reported after.
    failure: Option<String>,
}

impl Feed<'_> {
    /// Hands XGBoost the next batch through the proxy; `false` at the end or on failure.
    fn next(&mut self) -> bool {
        if self.failure.is_some() {
            return false;
        }
        let cols = self.batches.cols();
        let proxy = self.proxy;
        let set = match self.batches.next_batch() {
            Ok(None) => return false,
            Err(e) => Err(e),
            Ok(Some(batch)) => hand_over(proxy, cols, &batch).map_err(|e| e.to_string()),
        };
        match set {
            Ok(()) => true,
            Err(e) => {
                self.failure = Some(e);
                false
            }
        }
    }
}

/// Points the proxy at `batch` (`cols` values a row) and its labels and weights.
fn hand_over(proxy: sys::DMatrixHandle, cols: usize, batch: &Batch) -> Result<()> {
    if batch.values.len() != batch.rows * cols {
        return Err(BoostError::Shape(format!(
            "a batch of {} values for {} rows of {cols}",
            batch.values.len(),
            batch.rows
        )));
    }
    one_per_row(batch.rows, "labels", batch.labels)?;
    one_per_row(batch.rows, "weights", batch.weights)?;
    let interface = array_interface(batch.values, batch.rows, cols)?;
    // SAFETY: the proxy is alive for the iteration; the batch's values stay valid until
    // XGBoost asks for the next batch, which is as long as it reads them.
    check(unsafe { sys::XGProxyDMatrixSetDataDense(proxy, interface.as_ptr()) })?;
    for (field, data) in [("label", batch.labels), ("weight", batch.weights)] {
        if let Some(data) = data {
            set_info(proxy, field, data)?;
        }
    }
    Ok(())
}

unsafe extern "C" fn reset(handle: sys::DataIterHandle) {
    // SAFETY: `handle` is the `Feed` passed to XGQuantileDMatrixCreateFromCallback, alive
    // and not otherwise borrowed while XGBoost calls back.
    let feed = unsafe { &mut *(handle as *mut Feed) };
    feed.batches.restart();
}

unsafe extern "C" fn next(handle: sys::DataIterHandle) -> c_int {
    // SAFETY: as in `reset`.
    let feed = unsafe { &mut *(handle as *mut Feed) };
    c_int::from(feed.next())
}

/// A matrix owned by XGBoost: quantised from batches ([`XgbMatrix::quantile`]) or an
/// ordinary copy ([`XgbMatrix::dense`]).
pub struct XgbMatrix {
    handle: sys::DMatrixHandle,
    /// External memory's page files, deleted with the matrix.
    _cache: Option<tempfile::TempDir>,
}

impl Drop for XgbMatrix {
    fn drop(&mut self) {
        // SAFETY: the handle came from XGQuantileDMatrixCreateFromCallback or
        // XGDMatrixCreateFromDense and is freed once.
        unsafe { sys::XGDMatrixFree(self.handle) };
    }
}

impl XgbMatrix {
    /// `matrix` (its `rows`, all when `None`; with `labels` and `weights`, one per row used)
    /// quantised into XGBoost's bins (max_bin, 256), in memory; with `pages_in`, in page
    /// files of a scratch folder made there (XGBoost's external memory).
    pub fn quantile(
        matrix: &Matrix,
        rows: Option<&[usize]>,
        labels: Option<&[f32]>,
        weights: Option<&[f32]>,
        threads: usize,
        pages_in: Option<&std::path::Path>,
    ) -> Result<XgbMatrix> {
        let used = rows.map_or(matrix.rows, <[usize]>::len);
        if used == 0 {
            return Err(BoostError::Empty);
        }
        if let Some(beyond) = rows.and_then(|r| r.iter().find(|i| **i >= matrix.rows)) {
            return Err(BoostError::Shape(format!("row {beyond} of {} rows", matrix.rows)));
        }
        one_per_row(used, "labels", labels)?;
        one_per_row(used, "weights", weights)?;
        let mut batches = MatrixBatches {
            matrix,
            rows,
            gathered: Vec::new(),
            labels,
            weights,
            next_row: 0,
        };
        XgbMatrix::quantile_from(&mut batches, threads, pages_in)
    }

    /// The rows `batches` hands out, quantised into XGBoost's bins (max_bin, 256), in memory;
    /// with `pages_in`, in page files of a scratch folder made there (XGBoost's external
    /// memory). The rows need never be in memory together: a batch is read while XGBoost
    /// asks for it, and dropped at the next.
    pub fn quantile_from(
        batches: &mut dyn RowBatches,
        threads: usize,
        pages_in: Option<&std::path::Path>,
    ) -> Result<XgbMatrix> {
        let cache = match pages_in {
            Some(parent) => Some(
                crate::fsutil::staging_dir(parent).map_err(|e| BoostError::Xgboost(format!("external memory: {e}")))?,
            ),
            None => None,
        };
        let config = match &cache {
            None => matrix_config(threads)?,
            Some(dir) => {
                let prefix = serde_json::to_string(&dir.path().join("pages").display().to_string())
                    .map_err(|e| BoostError::Xgboost(e.to_string()))?;
                c_string(&format!(
                    "{{\"missing\": NaN, \"nthread\": {threads}, \"cache_prefix\": {prefix}}}"
                ))?
            }
        };
        // The proxy last: nothing that can fail comes between it and its free.
        let mut proxy: sys::DMatrixHandle = std::ptr::null_mut();
        // SAFETY: writes a new handle into `proxy`.
        check(unsafe { sys::XGProxyDMatrixCreate(&mut proxy) })?;
        let mut feed = Feed {
            batches,
            proxy,
            failure: None,
        };
        let mut out: sys::DMatrixHandle = std::ptr::null_mut();
        let iter = &mut feed as *mut Feed as sys::DataIterHandle;
        // The two constructors take the same arguments; external memory adds the cache.
        type Create = unsafe extern "C" fn(
            sys::DataIterHandle,
            sys::DMatrixHandle,
            sys::DataIterHandle,
            sys::DataIterResetCallback,
            sys::XGDMatrixCallbackNext,
            *const std::ffi::c_char,
            *mut sys::DMatrixHandle,
        ) -> c_int;
        let create: Create = match cache {
            None => sys::XGQuantileDMatrixCreateFromCallback,
            Some(_) => sys::XGExtMemQuantileDMatrixCreateFromCallback,
        };
        // SAFETY: `feed` lives across the call, which is the only time the callbacks run;
        // no reference matrix; `out` receives a new handle; the cache folder exists.
        let code = unsafe {
            create(
                iter,
                proxy,
                std::ptr::null_mut(),
                Some(reset),
                Some(next),
                config.as_ptr(),
                &mut out,
            )
        };
        let made = check(code);
        // SAFETY: the proxy is not used after this.
        unsafe { sys::XGDMatrixFree(proxy) };
        // A batch that could not be read is the cause of whatever XGBoost made of its end.
        if let Some(failure) = feed.failure {
            if made.is_ok() {
                // SAFETY: a handle XGBoost made, not kept.
                unsafe { sys::XGDMatrixFree(out) };
            }
            return Err(BoostError::Rows(failure));
        }
        made?;
        Ok(XgbMatrix {
            handle: out,
            _cache: cache,
        })
    }

    /// `matrix` as an ordinary XGBoost `DMatrix` (a copy of every value), for the validation
    /// rows: the booster evaluates them every round, and predicting from a quantised matrix
    /// made training ~25 % slower (4.92 s against 4.18 s, 400k × 40, 60 rounds).
    pub fn dense(matrix: &Matrix, labels: Option<&[f32]>, threads: usize) -> Result<XgbMatrix> {
        if matrix.rows == 0 {
            return Err(BoostError::Empty);
        }
        one_per_row(matrix.rows, "labels", labels)?;
        let interface = array_interface(&matrix.values, matrix.rows, matrix.cols())?;
        let config = matrix_config(threads)?;
        let mut out: sys::DMatrixHandle = std::ptr::null_mut();
        // SAFETY: the interface points at `matrix.values`, alive for the call; XGBoost copies.
        check(unsafe { sys::XGDMatrixCreateFromDense(interface.as_ptr(), config.as_ptr(), &mut out) })?;
        let built = XgbMatrix {
            handle: out,
            _cache: None,
        };
        if let Some(labels) = labels {
            set_info(built.handle, "label", labels)?;
        }
        Ok(built)
    }
}

/// An XGBoost booster: trained on [`XgbMatrix`]es, or read from a saved model to predict.
pub struct RawBooster {
    handle: sys::BoosterHandle,
}

impl Drop for RawBooster {
    fn drop(&mut self) {
        // SAFETY: the handle came from XGBoosterCreate or XGBoosterSlice and is freed once.
        unsafe { sys::XGBoosterFree(self.handle) };
    }
}

impl RawBooster {
    /// A booster caching `matrices` (the training one first).
    pub fn new(matrices: &[&XgbMatrix]) -> Result<RawBooster> {
        let handles: Vec<sys::DMatrixHandle> = matrices.iter().map(|m| m.handle).collect();
        let mut handle: sys::BoosterHandle = std::ptr::null_mut();
        // SAFETY: the handles are alive; XGBoost keeps its own references to them.
        check(unsafe { sys::XGBoosterCreate(handles.as_ptr(), handles.len() as u64, &mut handle) })?;
        Ok(RawBooster { handle })
    }

    pub fn set_param(&mut self, name: &str, value: &str) -> Result<()> {
        let (name, value) = (c_string(name)?, c_string(value)?);
        // SAFETY: valid handle and NUL-terminated strings.
        check(unsafe { sys::XGBoosterSetParam(self.handle, name.as_ptr(), value.as_ptr()) })
    }

    /// One boosting round on `train`.
    pub fn update(&mut self, round: u32, train: &XgbMatrix) -> Result<()> {
        // SAFETY: valid handles.
        check(unsafe { sys::XGBoosterUpdateOneIter(self.handle, round as c_int, train.handle) })
    }

    /// The value of `metric` on `matrix` after `round` (XGBoost's "[r]\tvalid-auc:0.87").
    pub fn evaluate(&self, round: u32, matrix: &XgbMatrix, metric: &str) -> Result<f64> {
        let mut handles = [matrix.handle];
        let name = c_string("valid")?;
        let mut names = [name.as_ptr()];
        let mut out: *const std::ffi::c_char = std::ptr::null();
        // SAFETY: one alive matrix and one name; XGBoost returns a thread-local string.
        check(unsafe {
            sys::XGBoosterEvalOneIter(
                self.handle,
                round as c_int,
                handles.as_mut_ptr(),
                names.as_mut_ptr(),
                1,
                &mut out,
            )
        })?;
        // SAFETY: `out` is NUL-terminated, valid until the next call on this thread.
        let text = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
        let key = format!("valid-{metric}:");
        text.split('\t')
            .find_map(|part| part.strip_prefix(&key))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .ok_or_else(|| BoostError::Xgboost(format!("no {metric} in XGBoost's evaluation \"{text}\"")))
    }

    /// Predictions for `matrix`'s rows with every tree so far (probabilities for a binary
    /// objective). A matrix the booster caches is predicted from XGBoost's cache: each call
    /// after a round adds only that round's trees.
    pub fn predict(&self, matrix: &XgbMatrix) -> Result<Vec<f32>> {
        self.predict_kind(matrix, Prediction::Value)
    }

    /// What `kind` asks of `matrix`'s rows: values, or per-feature contributions.
    pub fn predict_kind(&self, matrix: &XgbMatrix, kind: Prediction) -> Result<Vec<f32>> {
        let config = prediction_config(kind, false)?;
        // SAFETY: valid handles and outputs to fill.
        prediction(|shape, dims, out| unsafe {
            sys::XGBoosterPredictFromDMatrix(self.handle, matrix.handle, config.as_ptr(), shape, dims, out)
        })
    }

    /// A booster read from a saved model (XGBoost's JSON), to predict with.
    pub fn load(model: &[u8]) -> Result<RawBooster> {
        let mut handle: sys::BoosterHandle = std::ptr::null_mut();
        // SAFETY: no matrices to cache; `handle` receives a new booster.
        check(unsafe { sys::XGBoosterCreate(std::ptr::null(), 0, &mut handle) })?;
        // Freed by its wrapper if the model cannot be read.
        let booster = RawBooster { handle };
        // SAFETY: valid handle; `model` is alive for the call and XGBoost copies what it reads.
        check(unsafe { sys::XGBoosterLoadModelFromBuffer(booster.handle, model.as_ptr().cast(), model.len() as u64) })?;
        Ok(booster)
    }

    /// Predictions for `matrix`'s rows read where they are (XGBoost's in-place prediction):
    /// the same trees and values as [`predict`](Self::predict) on a `DMatrix` of them, without
    /// copying every value into one first (for 870k clients × 54 features, 0.4 GB and ~15 % of
    /// the prediction's time).
    pub fn predict_in_place(&self, matrix: &Matrix) -> Result<Vec<f32>> {
        if matrix.rows == 0 {
            return Ok(Vec::new());
        }
        let interface = array_interface(&matrix.values, matrix.rows, matrix.cols())?;
        let config = prediction_config(Prediction::Value, true)?;
        // SAFETY: valid handle; the interface points at `matrix.values`, alive for the call; no
        // proxy matrix.
        let predicted = prediction(|shape, dims, out| unsafe {
            sys::XGBoosterPredictFromDense(
                self.handle,
                interface.as_ptr(),
                config.as_ptr(),
                std::ptr::null_mut(),
                shape,
                dims,
                out,
            )
        })?;
        if predicted.len() != matrix.rows {
            return Err(BoostError::Shape(format!(
                "{} predictions for {} rows",
                predicted.len(),
                matrix.rows
            )));
        }
        Ok(predicted)
    }

    /// Each tree as XGBoost's text dump (with gain and cover when `statistics`).
    pub fn dump(&self, statistics: bool) -> Result<Vec<String>> {
        let (feature_map, format) = (c_string("")?, c_string("text")?);
        let mut count: u64 = 0;
        let mut trees: *mut *const std::ffi::c_char = std::ptr::null_mut();
        // SAFETY: valid handle; XGBoost owns the returned strings until the next call.
        check(unsafe {
            sys::XGBoosterDumpModelEx(
                self.handle,
                feature_map.as_ptr(),
                c_int::from(statistics),
                format.as_ptr(),
                &mut count,
                &mut trees,
            )
        })?;
        if count == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: `trees` holds `count` NUL-terminated strings.
        let pointers = unsafe { std::slice::from_raw_parts(trees, count as usize) };
        // SAFETY: each pointer is a NUL-terminated string XGBoost still owns.
        Ok(pointers
            .iter()
            .map(|p| unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned())
            .collect())
    }

    /// The model as XGBoost's JSON, its first `rounds` rounds only when given.
    pub fn to_json(&self, rounds: Option<u32>) -> Result<Vec<u8>> {
        let sliced;
        let handle = match rounds {
            Some(rounds) => {
                let mut out: sys::BoosterHandle = std::ptr::null_mut();
                // SAFETY: valid handle; `out` receives a new booster, freed by its wrapper.
                check(unsafe { sys::XGBoosterSlice(self.handle, 0, rounds as c_int, 1, &mut out) })?;
                sliced = RawBooster { handle: out };
                sliced.handle
            }
            None => self.handle,
        };
        let config = c_string("{\"format\": \"json\"}")?;
        let (mut len, mut data): (u64, *const std::ffi::c_char) = (0, std::ptr::null());
        // SAFETY: valid handle; XGBoost owns the returned buffer until the next call.
        check(unsafe { sys::XGBoosterSaveModelToBuffer(handle, config.as_ptr(), &mut len, &mut data) })?;
        // SAFETY: `data` points at `len` bytes.
        Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len as usize) }.to_vec())
    }
}
