//! A YAML mapping read field by field, so one file's problems are all reported at once: an
//! unknown key (with the nearest known one), a value of the wrong type, and a value that
//! parses but makes no sense each become their own located problem, instead of serde stopping
//! at the first. (vector's `config/validation.rs` collects errors the same way.)

use crate::vocab::text;
use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

type Entries = HashMap<Spanned<String>, Spanned<serde_json::Value>>;

/// The top-level keys of one YAML document, each with where its value is.
pub struct Fields {
    path: PathBuf,
    /// In file order.
    entries: Vec<(Spanned<String>, Spanned<serde_json::Value>)>,
    /// Every problem found so far, `file:line:column: what`.
    pub problems: Vec<String>,
}

impl Fields {
    /// Parses `text`; a YAML syntax error (it names its own line and column), or a document
    /// that is not a mapping, is the one problem.
    pub fn parse(text: &str, path: &Path) -> Result<Fields, Vec<String>> {
        let entries: Entries = super::parse_yaml_listed(text, path)?;
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
        Ok(Fields {
            path: path.to_path_buf(),
            entries,
            problems: Vec::new(),
        })
    }

    /// `file:line:column` of a spanned value.
    pub fn place<T>(&self, spanned: &Spanned<T>) -> String {
        format!(
            "{}:{}:{}",
            self.path.display(),
            spanned.referenced.line(),
            spanned.referenced.column()
        )
    }

    /// Records a problem at `place`.
    pub fn problem(&mut self, place: String, message: impl std::fmt::Display) {
        self.problems.push(format!("{place}: {message}"));
    }

    /// Records a problem with no better place than the file.
    pub fn problem_in_file(&mut self, message: impl std::fmt::Display) {
        self.problems.push(format!("{}: {message}", self.path.display()));
    }

    /// The value of `key` as `T` with its place; a wrong type is recorded, giving `None`.
    pub fn get<T: DeserializeOwned>(&mut self, key: &str) -> Option<(T, String)> {
        let (_, value) = self.entries.iter().find(|(k, _)| k.value == key)?;
        let place = self.place(value);
        match serde_json::from_value::<T>(value.value.clone()) {
            Ok(v) => Some((v, place)),
            Err(e) => {
                self.problem(place, format!("{key}: {e}"));
                None
            }
        }
    }

    /// Like [`Fields::get`], recording a missing key as a problem too.
    pub fn required<T: DeserializeOwned>(&mut self, key: &str) -> Option<(T, String)> {
        let found = self.entries.iter().any(|(k, _)| k.value == key);
        if !found {
            self.problem_in_file(format!("missing key: {key}"));
            return None;
        }
        self.get(key)
    }

    /// Records every key not in `known`, naming the nearest known one.
    pub fn refuse_unknown(&mut self, known: &[&str]) {
        let unknown: Vec<(String, String)> = self
            .entries
            .iter()
            .filter(|(k, _)| !known.contains(&k.value.as_str()))
            .map(|(k, _)| (self.place(k), k.value.clone()))
            .collect();
        for (place, key) in unknown {
            self.problem(
                place,
                format!(
                    "unknown key \"{key}\"{} (known: {})",
                    text::did_you_mean(&key, known.iter().copied()),
                    known.join(", ")
                ),
            );
        }
    }
}
