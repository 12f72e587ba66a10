//! Problems found in a bank export: each names where (file, sheet, row, column) and what.

use crate::data::format::FileFormat;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub severity: Severity,
    pub location: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}: {}", self.location, self.message)
    }
}

/// Where a table came from, so a frame's row `i` and column `name` can be named as the user
/// sees them in their file.
#[derive(Clone, Debug)]
pub struct Origin {
    pub path: PathBuf,
    pub format: FileFormat,
    pub sheet: Option<String>,
    /// canonical column → (name in the file, 0-based position in the file)
    pub columns: HashMap<&'static str, (String, usize)>,
}

impl Origin {
    pub fn new(path: &Path, format: FileFormat) -> Origin {
        Origin {
            path: path.to_path_buf(),
            format,
            sheet: None,
            columns: HashMap::new(),
        }
    }

    pub fn file(&self) -> String {
        match &self.sheet {
            Some(sheet) => format!("{}, sheet \"{sheet}\"", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// The cell holding frame row `row` (0-based, header excluded) of canonical `column`.
    pub fn cell(&self, row: usize, column: &str) -> String {
        let (name, position) = self
            .columns
            .get(column)
            .cloned()
            .unwrap_or_else(|| (column.to_string(), 0));
        let named = if name == column {
            format!("column {name}")
        } else {
            format!("column {name} ({column})")
        };
        match self.format {
            FileFormat::Xlsx => format!("{}, cell {}{} ({named})", self.file(), excel_column(position), row + 2),
            FileFormat::Csv => format!("{}, line {}, {named}", self.file(), row + 2),
            FileFormat::Parquet => format!("{}, row {}, {named}", self.file(), row + 1),
        }
    }

    /// A whole column (for problems such as a wrong stored type).
    pub fn column(&self, column: &str) -> String {
        let name = self
            .columns
            .get(column)
            .map(|(name, _)| name.as_str())
            .unwrap_or(column);
        format!("{}, column {name}", self.file())
    }

    /// The row as a whole (for problems that span columns, such as duplicate keys).
    pub fn row(&self, row: usize) -> String {
        match self.format {
            FileFormat::Xlsx => format!("{}, row {}", self.file(), row + 2),
            FileFormat::Csv => format!("{}, line {}", self.file(), row + 2),
            FileFormat::Parquet => format!("{}, row {}", self.file(), row + 1),
        }
    }
}

/// Excel's column letters for a 0-based position: 0 → A, 25 → Z, 26 → AA.
pub fn excel_column(mut position: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (position % 26) as u8);
        if position < 26 {
            break;
        }
        position = position / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// Collects problems, keeping the first few of each kind so a broken column of a million
/// rows yields a readable list, and counting the rest.
#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<Problem>,
    per_kind: HashMap<String, usize>,
    /// kind → (severity, location of the file, count beyond the listed ones)
    hidden: Vec<(String, Severity, String, usize)>,
}

pub const LISTED_PER_KIND: usize = 5;

impl Problems {
    pub fn push(&mut self, kind: &str, severity: Severity, location: String, message: String) {
        let seen = self.per_kind.entry(kind.to_string()).or_insert(0);
        *seen += 1;
        if *seen <= LISTED_PER_KIND {
            self.listed.push(Problem {
                severity,
                location,
                message,
            });
        } else if let Some(h) = self.hidden.iter_mut().find(|h| h.0 == kind) {
            h.3 += 1;
        } else {
            self.hidden.push((kind.to_string(), severity, location, 1));
        }
    }

    pub fn error(&mut self, kind: &str, location: String, message: String) {
        self.push(kind, Severity::Error, location, message);
    }

    pub fn warning(&mut self, kind: &str, location: String, message: String) {
        self.push(kind, Severity::Warning, location, message);
    }

    pub fn has_errors(&self) -> bool {
        self.listed.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// `other`'s problems after these. Kinds are counted on, so a kind pushed here afterwards
    /// is still cut short after [`LISTED_PER_KIND`]; two lists holding the same kind each keep
    /// their own listed ones.
    pub fn extend(&mut self, other: Problems) {
        self.listed.extend(other.listed);
        for (kind, seen) in other.per_kind {
            *self.per_kind.entry(kind).or_insert(0) += seen;
        }
        self.hidden.extend(other.hidden);
    }

    /// Every problem as a line, with "… and N more" lines for the kinds cut short.
    pub fn into_list(self) -> Vec<Problem> {
        let mut list = self.listed;
        for (kind, severity, location, count) in self.hidden {
            list.push(Problem {
                severity,
                location,
                message: format!("… and {count} more like the above ({kind})"),
            });
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_letters() {
        assert_eq!(excel_column(0), "A");
        assert_eq!(excel_column(3), "D");
        assert_eq!(excel_column(25), "Z");
        assert_eq!(excel_column(26), "AA");
        assert_eq!(excel_column(701), "ZZ");
        assert_eq!(excel_column(702), "AAA");
    }

    #[test]
    fn long_runs_are_cut_and_counted() {
        let mut problems = Problems::default();
        for i in 0..12 {
            problems.error("bad date", format!("f.csv, line {i}"), "not a date".into());
        }
        let list = problems.into_list();
        assert_eq!(list.len(), LISTED_PER_KIND + 1);
        assert!(list.last().unwrap().message.contains("7 more"));
    }
}
