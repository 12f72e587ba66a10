//! The design matrix: which feature columns a model reads and how text becomes numbers.
//! Fitted on the training frame and stored with the model, so scoring builds exactly the
//! columns training saw (an unseen category is all zeros, a missing number is NaN).

use super::boosted::Matrix;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// At most this many categories per text column become indicator columns (most frequent first).
pub const MAX_CATEGORIES: usize = 30;

/// Numeric columns read and written per walk over the matrix ([`Design::matrix`]): sixteen
/// columns' f32 copies (56 MB at a million rows) for a sixteenth of the walks.
const COLUMNS_PER_PASS: usize = 16;

/// A row whose text is none of the design's categories (or missing): all its indicators 0.
const NO_CATEGORY: u32 = u32::MAX;

/// A numeric column as f32, NaN where missing (through f64, as it always was: an integer
/// above 2^24 rounds once to f64 and then to f32, and training saw the same numbers).
fn numeric_column(frame: &DataFrame, name: &str) -> Result<Vec<f32>, DesignError> {
    let column = frame.column(name).map_err(|_| DesignError::Missing(name.to_string()))?;
    let failed = |e: PolarsError| DesignError::Column {
        column: name.to_string(),
        message: e.to_string(),
    };
    let cast = column.cast(&DataType::Float64).map_err(failed)?;
    let values = cast.f64().map_err(failed)?;
    // A chunk's values converted in one pass (vectorised), then its nulls set to NaN.
    let mut out = Vec::with_capacity(values.len());
    for array in values.downcast_iter() {
        let start = out.len();
        out.extend(array.values().iter().map(|v| *v as f32));
        if let Some(validity) = array.validity().filter(|bits| bits.unset_bits() > 0) {
            for (value, valid) in out[start..].iter_mut().zip(validity.iter()) {
                if !valid {
                    *value = f32::NAN;
                }
            }
        }
    }
    Ok(out)
}

/// Each row's position among `categories` (the first equal one), [`NO_CATEGORY`] otherwise.
fn category_positions(frame: &DataFrame, name: &str, categories: &[String]) -> Result<Vec<u32>, DesignError> {
    let column = frame.column(name).map_err(|_| DesignError::Missing(name.to_string()))?;
    let texts = column.str().map_err(|e| DesignError::Column {
        column: name.to_string(),
        message: e.to_string(),
    })?;
    // At most MAX_CATEGORIES short names: comparing them in order beats hashing every row.
    let position = |text: &str| {
        categories
            .iter()
            .position(|c| c == text)
            .map_or(NO_CATEGORY, |k| k as u32)
    };
    Ok(texts.iter().map(|v| v.map_or(NO_CATEGORY, position)).collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Design {
    pub numeric: Vec<String>,
    /// Text column → its categories, each an indicator column `column=category`.
    pub categorical: Vec<(String, Vec<String>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DesignError {
    #[error("column {0} is missing from the features")]
    Missing(String),
    #[error("column {column}: {message}")]
    Column { column: String, message: String },
}

/// What a design is fitted from, before it is: the numeric columns and every category's count.
/// Workers training together each count their own rows and merge the counts, so they fit the
/// one design their rows together would.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DesignCounts {
    numeric: Option<Vec<String>>,
    categories: Vec<(String, std::collections::HashMap<String, usize>)>,
}

impl DesignCounts {
    /// Counts `frame`'s rows; its columns are taken from the first frame seen.
    pub fn observe(&mut self, frame: &DataFrame, exclude: &[&str]) -> Result<(), DesignError> {
        if self.numeric.is_none() {
            let mut names = Vec::new();
            for column in frame.columns() {
                let name = column.name().as_str();
                if exclude.contains(&name) {
                    continue;
                }
                if column.dtype().is_primitive_numeric() {
                    names.push(name.to_string());
                } else if column.dtype() == &DataType::String {
                    self.categories.push((name.to_string(), Default::default()));
                }
            }
            self.numeric = Some(names);
        }
        for (name, seen) in self.categories.iter_mut() {
            let column = frame.column(name).map_err(|_| DesignError::Missing(name.clone()))?;
            let values = column.str().map_err(|e| DesignError::Column {
                column: name.clone(),
                message: e.to_string(),
            })?;
            for v in values.iter().flatten() {
                match seen.get_mut(v) {
                    Some(n) => *n += 1,
                    None => {
                        seen.insert(v.to_string(), 1);
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds `other`'s counts (another worker's rows) to these.
    pub fn merge(&mut self, other: DesignCounts) {
        if self.numeric.is_none() {
            *self = other;
            return;
        }
        for (name, seen) in other.categories {
            if let Some((_, mine)) = self.categories.iter_mut().find(|(n, _)| *n == name) {
                for (category, n) in seen {
                    *mine.entry(category).or_default() += n;
                }
            }
        }
    }

    /// The design: each text column's [`MAX_CATEGORIES`] most frequent categories (ties by
    /// name), in name order.
    pub fn finish(self) -> Design {
        let categorical = self
            .categories
            .into_iter()
            .map(|(name, seen)| {
                let mut categories: Vec<(String, usize)> = seen.into_iter().collect();
                categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                categories.truncate(MAX_CATEGORIES);
                let mut names: Vec<String> = categories.into_iter().map(|(c, _)| c).collect();
                names.sort();
                (name, names)
            })
            .collect();
        Design {
            numeric: self.numeric.unwrap_or_default(),
            categorical,
        }
    }
}

impl Design {
    /// Every numeric and text column of `frame` but those in `exclude`.
    pub fn fit(frame: &DataFrame, exclude: &[&str]) -> Result<Design, DesignError> {
        Design::fit_all(std::iter::once(Ok(frame.clone())), exclude)
    }

    /// The design of the rows of all `frames` together (what [`Design::fit`] gives on their
    /// concatenation), seeing one frame at a time: columns from the first, category counts
    /// summed over all.
    pub fn fit_all<E: From<DesignError>>(
        frames: impl IntoIterator<Item = Result<DataFrame, E>>,
        exclude: &[&str],
    ) -> Result<Design, E> {
        let mut counts = DesignCounts::default();
        for frame in frames {
            counts.observe(&frame?, exclude)?;
        }
        Ok(counts.finish())
    }

    /// The same design without the input columns `left_out`.
    pub fn without(&self, left_out: &[&str]) -> Design {
        let keep = |name: &String| !left_out.contains(&name.as_str());
        Design {
            numeric: self.numeric.iter().filter(|n| keep(n)).cloned().collect(),
            categorical: self.categorical.iter().filter(|(n, _)| keep(n)).cloned().collect(),
        }
    }

    /// The feature columns it reads, as a frame (or a request) names them: each number, and
    /// each category once (`sex`, not the one-hot `sex=F`, `sex=M`).
    pub fn inputs(&self) -> impl Iterator<Item = &str> {
        self.numeric
            .iter()
            .map(String::as_str)
            .chain(self.categorical.iter().map(|(name, _)| name.as_str()))
    }

    pub fn names(&self) -> Vec<String> {
        self.numeric
            .iter()
            .cloned()
            .chain(
                self.categorical
                    .iter()
                    .flat_map(|(c, cats)| cats.iter().map(move |v| format!("{c}={v}"))),
            )
            .collect()
    }

    /// The row-major f32 matrix of `frame`'s rows: numbers as they are (NaN when missing),
    /// each category's indicator 1 where the row has it.
    ///
    /// Built a group of columns at a time: writing one column into a row-major matrix touches
    /// a cache line per row, so a column at a time walked the whole matrix once per column
    /// (54 walks of 190 MB for 870k clients, ~2 s). Each group's columns are first read into
    /// their own vectors, then written row by row, on every core.
    pub fn matrix(&self, frame: &DataFrame) -> Result<Matrix, DesignError> {
        use rayon::prelude::*;
        let names = self.names();
        let (rows, cols) = (frame.height(), names.len());
        let mut values = vec![0f32; rows * cols];
        if cols == 0 {
            return Ok(Matrix { values, rows, names });
        }
        for (group, columns) in self.numeric.chunks(COLUMNS_PER_PASS).enumerate() {
            let read: Vec<Vec<f32>> = columns
                .par_iter()
                .map(|name| numeric_column(frame, name))
                .collect::<Result<_, _>>()?;
            let first = group * COLUMNS_PER_PASS;
            values.par_chunks_mut(cols).enumerate().for_each(|(i, row)| {
                for (slot, column) in row[first..first + read.len()].iter_mut().zip(&read) {
                    *slot = column[i];
                }
            });
        }
        let categorical = self.categorical_columns(frame)?;
        values.par_chunks_mut(cols).enumerate().for_each(|(i, row)| {
            for (offset, positions) in &categorical {
                if positions[i] != NO_CATEGORY {
                    row[offset + positions[i] as usize] = 1.0;
                }
            }
        });
        Ok(Matrix { values, rows, names })
    }

    /// Each text column as where its indicators start and each row's category position
    /// ([`NO_CATEGORY`]: none of the design's), read on every core.
    fn categorical_columns(&self, frame: &DataFrame) -> Result<Vec<(usize, Vec<u32>)>, DesignError> {
        use rayon::prelude::*;
        let positions: Vec<Vec<u32>> = self
            .categorical
            .par_iter()
            .map(|(name, categories)| category_positions(frame, name, categories))
            .collect::<Result<_, _>>()?;
        let mut offset = self.numeric.len();
        let mut columns = Vec::with_capacity(positions.len());
        for ((_, categories), positions) in self.categorical.iter().zip(positions) {
            columns.push((offset, positions));
            offset += categories.len();
        }
        Ok(columns)
    }
}

/// A frame's design read column by column, for laid-out trees to take a block of rows at a
/// time ([`DesignColumns::write_rows`]) without the whole row-major matrix: for 870 k clients
/// that matrix is 190 MB written across every row once per group of columns.
pub struct DesignColumns {
    rows: usize,
    numeric: Vec<Vec<f32>>,
    /// Per text column: where its indicators start and each row's category position.
    categorical: Vec<(usize, Vec<u32>)>,
    cols: usize,
}

impl DesignColumns {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns a row has (the design's names).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows `first..first + block.len() / cols` into `block`, row-major: exactly the values
    /// [`Design::matrix`] puts in those rows.
    pub fn write_rows(&self, first: usize, block: &mut [f32]) {
        let rows = block.len() / self.cols.max(1);
        for (j, column) in self.numeric.iter().enumerate() {
            for (r, value) in column[first..first + rows].iter().enumerate() {
                block[r * self.cols + j] = *value;
            }
        }
        let categories_start = self.numeric.len();
        for (r, row) in block.chunks_exact_mut(self.cols).enumerate() {
            row[categories_start..].fill(0.0);
            for (offset, positions) in &self.categorical {
                let position = positions[first + r];
                if position != NO_CATEGORY {
                    row[offset + position as usize] = 1.0;
                }
            }
        }
    }
}

impl Design {
    /// `frame`'s design columns, each read once (on every core).
    pub fn columns(&self, frame: &DataFrame) -> Result<DesignColumns, DesignError> {
        use rayon::prelude::*;
        let numeric = self
            .numeric
            .par_iter()
            .map(|name| numeric_column(frame, name))
            .collect::<Result<_, _>>()?;
        Ok(DesignColumns {
            rows: frame.height(),
            numeric,
            categorical: self.categorical_columns(frame)?,
            cols: self.numeric.len() + self.categorical.iter().map(|(_, c)| c.len()).sum::<usize>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn differing(a: &[f32], b: &[f32]) -> usize {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).filter(|(a, b)| a.to_bits() != b.to_bits()).count()
    }

    /// The matrix as it was built before the column groups: one column at a time, straight
    /// from polars' iterators.
    fn one_column_at_a_time(design: &Design, frame: &DataFrame) -> Vec<f32> {
        let cols = design.names().len();
        let mut values = vec![0f32; frame.height() * cols];
        for (j, name) in design.numeric.iter().enumerate() {
            let cast = frame.column(name).unwrap().cast(&DataType::Float64).unwrap();
            for (i, v) in cast.f64().unwrap().iter().enumerate() {
                values[i * cols + j] = v.map_or(f32::NAN, |v| v as f32);
            }
        }
        let mut offset = design.numeric.len();
        for (name, categories) in &design.categorical {
            for (i, v) in frame.column(name).unwrap().str().unwrap().iter().enumerate() {
                if let Some(k) = v.and_then(|v| categories.iter().position(|c| c == v)) {
                    values[i * cols + offset + k] = 1.0;
                }
            }
            offset += categories.len();
        }
        values
    }

    #[test]
    fn the_matrix_holds_every_value_where_a_column_at_a_time_put_it() {
        // 37 numeric columns (three groups), integers past 2^24 and nulls, text with a
        // category the design does not know and a missing one; frames of several chunks.
        let rows = 1_000;
        let mut columns: Vec<Column> = (0..37)
            .map(|j| {
                let name = format!("n{j}");
                if j % 3 == 0 {
                    let v: Vec<Option<i64>> = (0..rows)
                        .map(|i| (i % 11 != 0).then_some((1i64 << 40) / (i as i64 + 1) + j))
                        .collect();
                    Column::new(name.into(), v)
                } else {
                    let v: Vec<Option<f64>> = (0..rows)
                        .map(|i| (i % 7 != 1).then_some((i as f64).sin() * 1e3 / (j as f64 + 1.0)))
                        .collect();
                    Column::new(name.into(), v)
                }
            })
            .collect();
        let texts: Vec<Option<&str>> = (0..rows)
            .map(|i| match i % 4 {
                0 => Some("Retail"),
                1 => Some("Private"),
                2 => Some("never seen"),
                _ => None,
            })
            .collect();
        columns.push(Column::new("segment".into(), texts));
        let regions: Vec<Option<&str>> = (0..rows).map(|i| [Some("North"), Some("South"), None][i % 3]).collect();
        columns.push(Column::new("region".into(), regions));
        let half = DataFrame::new(rows, columns).unwrap();
        let mut frame = half.clone();
        frame.vstack_mut(&half).unwrap();
        assert!(frame.first_col_n_chunks() > 1);
        let design = Design {
            numeric: (0..37).map(|j| format!("n{j}")).collect(),
            categorical: vec![
                ("segment".into(), vec!["Private".into(), "Retail".into()]),
                ("region".into(), vec!["South".into(), "North".into(), "South".into()]),
            ],
        };
        let built = design.matrix(&frame).unwrap();
        let expected = one_column_at_a_time(&design, &frame);
        assert_eq!((built.rows, built.names.len()), (2 * rows, 42));
        let differ = differing(&built.values, &expected);
        assert_eq!(differ, 0, "of {} values", expected.len());
        // Read by column and written a block of rows at a time (blocks of 64, and a last one
        // cut short): the same values.
        let columns = design.columns(&frame).unwrap();
        assert_eq!((columns.rows(), columns.cols()), (2 * rows, 42));
        let mut blocks = vec![f32::NAN; built.values.len()];
        for (b, block) in blocks.chunks_mut(64 * 42).enumerate() {
            columns.write_rows(b * 64, block);
        }
        assert_eq!(differing(&blocks, &built.values), 0);
        assert!(matches!(
            Design {
                numeric: vec!["absent".into()],
                categorical: Vec::new(),
            }
            .matrix(&frame),
            Err(DesignError::Missing(name)) if name == "absent"
        ));
    }
}
