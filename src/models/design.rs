//! The design matrix: which feature columns a model reads and how text becomes numbers.
//! Fitted on the training frame and stored with the model, so scoring builds exactly the
//! columns training saw (an unseen category is all zeros, a missing number is NaN).

use super::boosted::Matrix;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// At most this many categories per text column become indicator columns (most frequent first).
pub const MAX_CATEGORIES: usize = 30;

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

    pub fn matrix(&self, frame: &DataFrame) -> Result<Matrix, DesignError> {
        let names = self.names();
        let (rows, cols) = (frame.height(), names.len());
        let mut values = vec![0f32; rows * cols];
        for (j, name) in self.numeric.iter().enumerate() {
            let column = frame.column(name).map_err(|_| DesignError::Missing(name.clone()))?;
            let cast = column.cast(&DataType::Float64).map_err(|e| DesignError::Column {
                column: name.clone(),
                message: e.to_string(),
            })?;
            let ca = cast.f64().map_err(|e| DesignError::Column {
                column: name.clone(),
                message: e.to_string(),
            })?;
            for (i, v) in ca.iter().enumerate() {
                values[i * cols + j] = v.map_or(f32::NAN, |v| v as f32);
            }
        }
        let mut offset = self.numeric.len();
        for (name, categories) in &self.categorical {
            let column = frame.column(name).map_err(|_| DesignError::Missing(name.clone()))?;
            let ca = column.str().map_err(|e| DesignError::Column {
                column: name.clone(),
                message: e.to_string(),
            })?;
            for (i, v) in ca.iter().enumerate() {
                if let Some(k) = v.and_then(|v| categories.iter().position(|c| c == v)) {
                    values[i * cols + offset + k] = 1.0;
                }
            }
            offset += categories.len();
        }
        Ok(Matrix { values, rows, names })
    }
}
