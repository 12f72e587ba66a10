//! Training rows read month by month from the feature store, spooled to a scratch file, and
//! handed to XGBoost from there, so a bank's training rows are never in memory together.
//!
//! Why: at 10,000,000 clients a year of churn rows is 44.8 M rows × 54 inputs, 9.7 GiB of
//! f32 before XGBoost has seen one; with the month being read and XGBoost's own pages the
//! kernel killed training at 23 GiB. XGBoost asks for the rows in batches, three times over
//! (their shape, the sketch, the bins). One pass over the months ([`TrainingMonths::gather`])
//! writes the fitted rows' inputs in row order to a file and keeps what is small (targets,
//! the watched rows, the hash); [`SpooledBatches`] then reads the file back
//! [`ROWS_PER_BATCH`] rows at a time — exactly the batches the in-memory path hands out, so
//! both train one model, byte for byte. Reading the file back (mostly from the page cache)
//! costs far less than building every month's inputs from the store on each pass.

use super::boosted::{self, BoostError, Matrix};
use super::design::Design;
use super::quantile::{Batch, ROWS_PER_BATCH, RowBatches};
use super::tabular::{Months, TabularSpec, TrainError, target_values};
use crate::data::date::Date;
use polars::prelude::*;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Which training rows early stopping watches instead of fitting: a seeded seventh (the
/// first of 7 shuffled folds), one flag per row in month order. Rows are fitted and watched
/// in ascending order, so either set can be read month by month.
pub struct Watched(Vec<bool>);

impl Watched {
    pub fn new(rows: usize, seed: u64) -> Watched {
        let mut watched = vec![false; rows];
        for i in boosted::folds(rows, 7, seed).swap_remove(0) {
            watched[i] = true;
        }
        Watched(watched)
    }

    pub fn is_watched(&self, row: usize) -> bool {
        self.0[row]
    }

    /// The fitted rows, ascending.
    pub fn fit_rows(&self) -> Vec<usize> {
        (0..self.0.len()).filter(|i| !self.0[*i]).collect()
    }

    /// The watched rows, ascending.
    pub fn watch_rows(&self) -> Vec<usize> {
        (0..self.0.len()).filter(|i| self.0[*i]).collect()
    }
}

/// FNV-1a, fed in pieces: over f32 values' bits (little-endian), the training data's hash.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= *byte as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn floats(&mut self, values: &[f32]) {
        for v in values {
            self.bytes(&v.to_bits().to_le_bytes());
        }
    }

    pub fn finish(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The training months as the spooled path reads them: which months, how many labelled
/// rows each had when the design was counted, the design turning them into inputs.
pub struct TrainingMonths<'a> {
    pub spec: &'a TabularSpec,
    pub months: &'a dyn Months,
    pub dates: &'a [Date],
    pub heights: &'a [usize],
    pub design: &'a Design,
}

impl TrainingMonths<'_> {
    /// `dates[m]`'s labelled rows as the design's inputs and their targets. The month must
    /// have as many rows as when the design's categories were counted: the store changing
    /// under a training would otherwise train on rows the design and the watched share were
    /// never drawn from.
    fn read(&self, m: usize) -> Result<(Matrix, Vec<f32>), TrainError> {
        let date = self.dates[m];
        let (x, y) = labelled_inputs(self.months, self.spec, self.design, date)?;
        if y.len() != self.heights[m] {
            return Err(TrainError::File {
                path: format!("the features of {date}"),
                message: format!(
                    "{} labelled rows now, {} when training began: they changed during the training",
                    y.len(),
                    self.heights[m]
                ),
            });
        }
        Ok((x, y))
    }

    /// One pass over the months: every row's target, the watched rows' inputs and targets,
    /// the hash of every row's inputs then targets (the in-memory path's [`Fnv`] over the
    /// same values), and the fitted rows' inputs spooled to a file in a scratch folder made
    /// in `scratch`.
    pub fn gather(&self, watched: &Watched, scratch: &Path) -> Result<Gathered, TrainError> {
        let names = self.design.names();
        let cols = names.len();
        let total: usize = self.heights.iter().sum();
        let mut labels = Vec::with_capacity(total);
        let mut watch = Vec::new();
        let mut watch_labels = Vec::new();
        let mut hash = Fnv::default();
        let dir = crate::fsutil::staging_dir(scratch).map_err(|e| TrainError::File {
            path: scratch.display().to_string(),
            message: e.to_string(),
        })?;
        let path = dir.path().join("fitted-rows.f32");
        let failed = |e: std::io::Error| TrainError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut spool = BufWriter::with_capacity(1 << 22, std::fs::File::create(&path).map_err(failed)?);
        let mut row_bytes = Vec::with_capacity(cols * 4);
        let mut fitted = 0;
        for m in 0..self.dates.len() {
            let (x, y) = self.read(m)?;
            hash.floats(&x.values);
            for (r, label) in y.iter().enumerate() {
                if watched.is_watched(labels.len() + r) {
                    watch.extend_from_slice(x.row(r));
                    watch_labels.push(*label);
                } else {
                    row_bytes.clear();
                    row_bytes.extend(x.row(r).iter().flat_map(|v| v.to_le_bytes()));
                    spool.write_all(&row_bytes).map_err(failed)?;
                    fitted += 1;
                }
            }
            labels.extend(y);
        }
        spool.flush().map_err(failed)?;
        drop(spool);
        hash.floats(&labels);
        Ok(Gathered {
            labels,
            watch: Matrix {
                values: watch,
                rows: watch_labels.len(),
                names,
            },
            watch_labels,
            hash: hash.finish(),
            fitted: SpooledRows {
                path,
                rows: fitted,
                cols,
                _dir: dir,
            },
        })
    }
}

/// `date`'s rows whose target is known, as `design`'s inputs, and their targets: only the
/// columns the design reads are read.
pub fn labelled_inputs(
    months: &dyn Months,
    spec: &TabularSpec,
    design: &Design,
    date: Date,
) -> Result<(Matrix, Vec<f32>), TrainError> {
    let columns: Vec<&str> = design.inputs().chain([spec.target]).collect();
    let frame = months
        .frame(date, Some(&columns))?
        .lazy()
        .filter(col(spec.target).is_not_null())
        .collect()?;
    Ok((design.matrix(&frame)?, target_values(&frame, spec.target)?))
}

/// What one pass over the training months keeps: see [`TrainingMonths::gather`].
pub struct Gathered {
    pub labels: Vec<f32>,
    pub watch: Matrix,
    pub watch_labels: Vec<f32>,
    pub hash: String,
    pub fitted: SpooledRows,
}

/// The fitted rows' inputs in a scratch file, row-major little-endian f32, in row order;
/// the file and its folder are removed when this is dropped.
pub struct SpooledRows {
    path: PathBuf,
    rows: usize,
    cols: usize,
    _dir: tempfile::TempDir,
}

impl SpooledRows {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows with `labels` (one per row), for XGBoost.
    pub fn batches<'a>(&'a self, labels: &'a [f32]) -> Result<SpooledBatches<'a>, TrainError> {
        if labels.len() != self.rows {
            return Err(BoostError::Shape(format!("{} labels for {} rows", labels.len(), self.rows)).into());
        }
        let file = std::fs::File::open(&self.path).map_err(|e| TrainError::File {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(SpooledBatches {
            spooled: self,
            file,
            labels,
            next_row: 0,
            bytes: Vec::new(),
            values: Vec::new(),
        })
    }
}

/// [`SpooledRows`] read back [`ROWS_PER_BATCH`] at a time.
pub struct SpooledBatches<'a> {
    spooled: &'a SpooledRows,
    file: std::fs::File,
    labels: &'a [f32],
    next_row: usize,
    bytes: Vec<u8>,
    /// The batch handed out, kept until the next is asked for.
    values: Vec<f32>,
}

impl RowBatches for SpooledBatches<'_> {
    fn cols(&self) -> usize {
        self.spooled.cols
    }

    fn restart(&mut self) {
        self.next_row = 0;
    }

    fn next_batch(&mut self) -> Result<Option<Batch<'_>>, String> {
        let SpooledRows { path, rows, cols, .. } = self.spooled;
        if self.next_row >= *rows {
            return Ok(None);
        }
        let (start, end) = (self.next_row, (self.next_row + ROWS_PER_BATCH).min(*rows));
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        self.file
            .seek(std::io::SeekFrom::Start((start * cols * 4) as u64))
            .map_err(failed)?;
        self.bytes.resize((end - start) * cols * 4, 0);
        self.file.read_exact(&mut self.bytes).map_err(failed)?;
        self.values.clear();
        self.values.extend(
            self.bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        self.next_row = end;
        Ok(Some(Batch {
            values: &self.values,
            labels: Some(&self.labels[start..end]),
            weights: None,
            rows: end - start,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::models::TrainingMatrix;
    use crate::models::boosted::{BoostParams, Split, Task};
    use crate::models::design::DesignCounts;
    use crate::models::tabular::{CHURN, InMemory};

    /// Months of `rows` clients each: two numbers (one sometimes missing), a category, and a
    /// churn label known for all but every ninth client.
    fn bank(months: usize, rows: usize) -> InMemory {
        let mut rng = crate::data::synth::rng::Rng::new(7);
        InMemory(
            (0..months)
                .map(|m| {
                    let date = Date::parse(&format!("2025-{:02}-28", m + 1)).unwrap();
                    let (mut a, mut b, mut segment, mut churn) = (vec![], vec![], vec![], vec![]);
                    for i in 0..rows {
                        let (x, y) = (rng.normal(), rng.normal());
                        a.push(x);
                        b.push((!rng.bernoulli(0.1)).then_some(y));
                        segment.push(["retail", "premium", "private"][rng.below(3) as usize]);
                        let p = 1.0 / (1.0 + (-(1.2 * x - 0.8 * y)).exp());
                        churn.push((i % 9 != 4).then(|| i32::from(rng.bernoulli(p))));
                    }
                    let frame = df!("balance" => a, "tenure" => b, "segment" => segment, "churn" => churn).unwrap();
                    (date, frame)
                })
                .collect(),
        )
    }

    #[test]
    fn rows_streamed_month_by_month_train_the_in_memory_model_byte_for_byte() {
        // 4 months × 130,000 clients: ~390,000 fitted rows, two batches, both crossing months.
        let months = bank(4, 130_000);
        let dates = months.0.iter().map(|(d, _)| *d).collect::<Vec<_>>();
        let labelled: Vec<DataFrame> = dates
            .iter()
            .map(|d| {
                months
                    .frame(*d, None)
                    .unwrap()
                    .lazy()
                    .filter(col("churn").is_not_null())
                    .collect()
                    .unwrap()
            })
            .collect();
        let mut counts = DesignCounts::default();
        for frame in &labelled {
            counts.observe(frame, CHURN.exclude).unwrap();
        }
        let design = counts.finish();
        let heights: Vec<usize> = labelled.iter().map(DataFrame::height).collect();
        // In memory: every labelled row's inputs, month after month.
        let (mut values, mut y) = (Vec::new(), Vec::new());
        for frame in &labelled {
            values.extend(design.matrix(frame).unwrap().values);
            y.extend(target_values(frame, "churn").unwrap());
        }
        let x = Matrix {
            values,
            rows: y.len(),
            names: design.names(),
        };
        let watched = Watched::new(y.len(), 42);
        let (fit_rows, watch_rows) = (watched.fit_rows(), watched.watch_rows());
        assert!(fit_rows.len() > ROWS_PER_BATCH && fit_rows.len() < 2 * ROWS_PER_BATCH);
        let stream = || TrainingMonths {
            spec: &CHURN,
            months: &months,
            dates: &dates,
            heights: &heights,
            design: &design,
        };

        // One pass keeps what the in-memory path takes from its matrix.
        let scratch = tempfile::tempdir().unwrap();
        let gathered = stream().gather(&watched, scratch.path()).unwrap();
        assert_eq!(gathered.fitted.rows(), fit_rows.len());
        assert_eq!(gathered.labels, y);
        // Bit for bit: the inputs have missing values (NaN), which equal nothing.
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&gathered.watch.values), bits(&x.take(&watch_rows).values));
        assert_eq!(
            gathered.watch_labels,
            watch_rows.iter().map(|&i| y[i]).collect::<Vec<_>>()
        );
        let mut hash = Fnv::default();
        hash.floats(&x.values);
        hash.floats(&y);
        assert_eq!(gathered.hash, hash.finish());

        let y_fit: Vec<f32> = fit_rows.iter().map(|&i| y[i]).collect();
        for matrix in [TrainingMatrix::Quantile, TrainingMatrix::ExternalMemory] {
            let params = BoostParams {
                rounds: 6,
                early_stopping_rounds: 3,
                threads: 1,
                matrix,
                ..BoostParams::default()
            };
            let watch = || Some(Split::all(&gathered.watch, &gathered.watch_labels));
            let in_memory = boosted::prepare(
                Task::Binary,
                &params,
                Split {
                    matrix: &x,
                    rows: Some(&fit_rows),
                    labels: &y_fit,
                },
                watch(),
                None,
                Some(scratch.path()),
            )
            .unwrap()
            .train(&params, &[])
            .unwrap();
            let mut batches = gathered.fitted.batches(&y_fit).unwrap();
            let streamed = boosted::prepare_streamed(
                Task::Binary,
                &params,
                &mut batches,
                y_fit.len(),
                design.names(),
                boosted::label_sums(&y_fit, None),
                watch(),
                Some(scratch.path()),
            )
            .unwrap()
            .train(&params, &[])
            .unwrap();
            assert!(in_memory.best_rounds > 1, "{matrix:?}: it learned");
            assert!(
                in_memory.to_json().unwrap() == streamed.to_json().unwrap(),
                "{matrix:?}: the same trees"
            );
        }
        drop(gathered);
        assert_eq!(
            std::fs::read_dir(scratch.path()).unwrap().count(),
            0,
            "the spool removed"
        );
    }

    /// Two months of 1,000 clients: the months, their dates, the first month's design, and
    /// each month's labelled rows.
    fn small_bank() -> (InMemory, Vec<Date>, Design, Vec<usize>) {
        let months = bank(2, 1_000);
        let dates = months.0.iter().map(|(d, _)| *d).collect();
        let mut counts = DesignCounts::default();
        counts.observe(&months.0[0].1, CHURN.exclude).unwrap();
        let labelled = months
            .0
            .iter()
            .map(|(_, f)| f.column("churn").unwrap().len() - f.column("churn").unwrap().null_count())
            .collect();
        (months, dates, counts.finish(), labelled)
    }

    #[test]
    fn a_month_that_changed_under_the_training_stops_it_naming_the_month() {
        let (months, dates, design, labelled) = small_bank();
        // The second month had one row fewer when the design was counted.
        let heights = [labelled[0], labelled[1] - 1];
        let now = format!("{} labelled rows now, {}", labelled[1], labelled[1] - 1);
        let streamed = TrainingMonths {
            spec: &CHURN,
            months: &months,
            dates: &dates,
            heights: &heights,
            design: &design,
        };
        let watched = Watched::new(heights.iter().sum(), 1);
        let scratch = tempfile::tempdir().unwrap();
        let Err(e) = streamed.gather(&watched, scratch.path()) else {
            panic!("a changed month read");
        };
        assert!(
            e.to_string().contains("2025-02-28") && e.to_string().contains(&now),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "no spool left");
    }

    #[test]
    fn a_spool_cut_short_fails_the_matrix_naming_the_file() {
        let (months, dates, design, heights) = small_bank();
        let streamed = TrainingMonths {
            spec: &CHURN,
            months: &months,
            dates: &dates,
            heights: &heights,
            design: &design,
        };
        let watched = Watched::new(heights.iter().sum(), 1);
        let scratch = tempfile::tempdir().unwrap();
        let gathered = streamed.gather(&watched, scratch.path()).unwrap();
        let y_fit: Vec<f32> = (0..gathered.labels.len())
            .filter(|i| !watched.is_watched(*i))
            .map(|i| gathered.labels[i])
            .collect();
        // The disk lost the file's end.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&gathered.fitted.path)
            .unwrap();
        file.set_len(100).unwrap();
        let params = BoostParams {
            rounds: 2,
            threads: 1,
            matrix: TrainingMatrix::Quantile,
            ..BoostParams::default()
        };
        let mut batches = gathered.fitted.batches(&y_fit).unwrap();
        let refused = boosted::prepare_streamed(
            Task::Binary,
            &params,
            &mut batches,
            y_fit.len(),
            design.names(),
            boosted::label_sums(&y_fit, None),
            None,
            None,
        );
        let Err(e) = refused else {
            panic!("trained on a cut file");
        };
        assert!(
            matches!(e, boosted::BoostError::Rows(_)) && e.to_string().contains("fitted-rows.f32"),
            "{e}"
        );
    }
}
