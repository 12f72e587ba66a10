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
        let mut numeric: Option<Vec<String>> = None;
        let mut counts: Vec<(String, std::collections::HashMap<String, usize>)> = Vec::new();
        for frame in frames {
            let frame = frame?;
            if numeric.is_none() {
                let mut names = Vec::new();
                for column in frame.columns() {
                    let name = column.name().as_str();
                    if exclude.contains(&name) {
                        continue;
                    }
                    if column.dtype().is_primitive_numeric() {
                        names.push(name.to_string());
                    } else if column.dtype() == &DataType::String {
                        counts.push((name.to_string(), Default::default()));
                    }
                }
                numeric = Some(names);
            }
            for (name, seen) in counts.iter_mut() {
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
        }
        let categorical = counts
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
        Ok(Design {
            numeric: numeric.unwrap_or_default(),
            categorical,
        })
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
