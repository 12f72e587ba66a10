//! The model registry: `data/models/<model>/<version>/` holds a model file, `meta.json` and
//! the reference statistics drift checks need; `data/models/<model>/aliases.json` names the
//! `champion` and `challenger` versions.
//!
//! A version folder is staged and renamed into place whole, and the alias file is replaced
//! atomically, so no reader ever sees a half-written version or an alias pointing at one.

use crate::fsutil::{self, FsError};
use crate::vocab::ModelKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{model} has no version {version} (versions: {available})")]
    UnknownVersion {
        model: ModelKind,
        version: u32,
        available: String,
    },
    #[error("{model} has no {alias} yet; train one with `bankml train --model {model}`")]
    NoAlias { model: ModelKind, alias: &'static str },
    #[error("{model}: nothing to roll back to (no earlier champion)")]
    NothingToRollBack { model: ModelKind },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Fs(#[from] FsError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aliases {
    pub champion: Option<u32>,
    pub challenger: Option<u32>,
    /// Earlier champions, oldest first: what `rollback` returns to.
    #[serde(default)]
    pub previous_champions: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    pub fn new(root: impl Into<PathBuf>) -> Registry {
        Registry { root: root.into() }
    }

    pub fn model_dir(&self, model: ModelKind) -> PathBuf {
        self.root.join(model.as_str())
    }

    pub fn version_dir(&self, model: ModelKind, version: u32) -> PathBuf {
        self.model_dir(model).join(version.to_string())
    }

    /// Versions present, ascending.
    pub fn versions(&self, model: ModelKind) -> Result<Vec<u32>, RegistryError> {
        let dir = self.model_dir(model);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                return Err(FsError::Io {
                    action: "cannot list",
                    path: dir,
                    source: e,
                }
                .into());
            }
        };
        let mut versions: Vec<u32> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    pub fn aliases(&self, model: ModelKind) -> Result<Aliases, RegistryError> {
        let path = self.model_dir(model).join("aliases.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| RegistryError::Corrupt {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Aliases::default()),
            Err(e) => Err(FsError::Io {
                action: "cannot read",
                path,
                source: e,
            }
            .into()),
        }
    }

    fn write_aliases(&self, model: ModelKind, aliases: &Aliases) -> Result<(), RegistryError> {
        let path = self.model_dir(model).join("aliases.json");
        let text = serde_json::to_string_pretty(aliases).map_err(|e| RegistryError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        fsutil::write_bytes_atomic(&path, text.as_bytes())?;
        Ok(())
    }

    /// Adds a version: `fill` writes its files into a staging folder, which is then renamed to
    /// the next version number. Returns the new version.
    pub fn add_version<E: From<RegistryError>>(
        &self,
        model: ModelKind,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<u32, E> {
        let dir = self.model_dir(model);
        let staging = fsutil::staging_dir(&dir).map_err(RegistryError::from)?;
        fill(staging.path())?;
        let staged = staging.keep();
        // The next free number; a concurrent writer taking it makes the rename fail, so retry.
        for _ in 0..100 {
            let version = self.versions(model)?.last().copied().unwrap_or(0) + 1;
            let target = self.version_dir(model, version);
            if target.exists() {
                continue;
            }
            match std::fs::rename(&staged, &target) {
                Ok(()) => return Ok(version),
                Err(_) if target.exists() => continue,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&staged);
                    return Err(RegistryError::from(FsError::Io {
                        action: "cannot rename into",
                        path: target,
                        source: e,
                    })
                    .into());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&staged);
        Err(RegistryError::Corrupt {
            path: dir,
            message: "could not claim a version number".into(),
        }
        .into())
    }

    fn check_version(&self, model: ModelKind, version: u32) -> Result<(), RegistryError> {
        let versions = self.versions(model)?;
        if versions.contains(&version) {
            return Ok(());
        }
        Err(RegistryError::UnknownVersion {
            model,
            version,
            available: if versions.is_empty() {
                "none".into()
            } else {
                versions.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Makes `version` the champion; the old champion is remembered for rollback.
    pub fn promote(&self, model: ModelKind, version: u32) -> Result<Aliases, RegistryError> {
        self.check_version(model, version)?;
        let mut aliases = self.aliases(model)?;
        if aliases.champion == Some(version) {
            return Ok(aliases);
        }
        if let Some(old) = aliases.champion {
            aliases.previous_champions.push(old);
        }
        aliases.champion = Some(version);
        if aliases.challenger == Some(version) {
            aliases.challenger = None;
        }
        self.write_aliases(model, &aliases)?;
        Ok(aliases)
    }

    pub fn set_challenger(&self, model: ModelKind, version: u32) -> Result<Aliases, RegistryError> {
        self.check_version(model, version)?;
        let mut aliases = self.aliases(model)?;
        aliases.challenger = Some(version);
        self.write_aliases(model, &aliases)?;
        Ok(aliases)
    }

    /// Returns the champion to the one before it; the rolled-back version becomes challenger.
    pub fn rollback(&self, model: ModelKind) -> Result<Aliases, RegistryError> {
        let mut aliases = self.aliases(model)?;
        let Some(previous) = aliases.previous_champions.pop() else {
            return Err(RegistryError::NothingToRollBack { model });
        };
        aliases.challenger = aliases.champion;
        aliases.champion = Some(previous);
        self.write_aliases(model, &aliases)?;
        Ok(aliases)
    }

    /// The versions a retention policy keeping `others` more would remove: all but the
    /// champion, the challenger, the previous champion (what `rollback` returns to) and the
    /// `others` newest of the rest.
    pub fn prunable(&self, model: ModelKind, others: usize) -> Result<Vec<u32>, RegistryError> {
        let aliases = self.aliases(model)?;
        let kept: Vec<u32> = [
            aliases.champion,
            aliases.challenger,
            aliases.previous_champions.last().copied(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let rest: Vec<u32> = self
            .versions(model)?
            .into_iter()
            .filter(|v| !kept.contains(v))
            .collect();
        Ok(rest[..rest.len().saturating_sub(others)].to_vec())
    }

    /// Removes what [`Registry::prunable`] names. Each version is first renamed out of the
    /// registry (a staging name the leftover sweep removes if this is killed), so no reader
    /// ever finds half a version; rollback then reaches back only as far as the previous
    /// champion kept.
    pub fn prune(&self, model: ModelKind, others: usize) -> Result<Vec<u32>, RegistryError> {
        let gone = self.prunable(model, others)?;
        if gone.is_empty() {
            return Ok(gone);
        }
        let mut aliases = self.aliases(model)?;
        aliases.previous_champions.retain(|v| !gone.contains(v));
        self.write_aliases(model, &aliases)?;
        for version in &gone {
            fsutil::discard_dir(&self.version_dir(model, *version))?;
        }
        Ok(gone)
    }

    /// When `version` was trained (its `meta.json`'s `created_at`), if it says.
    pub fn created_at(&self, model: ModelKind, version: u32) -> Option<String> {
        let bytes = std::fs::read(self.version_dir(model, version).join("meta.json")).ok()?;
        let meta: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(meta["created_at"].as_str()?.to_string())
    }

    /// Every model's champion version (`None`: no champion yet), for reports and alerts.
    pub fn champions(&self) -> std::collections::BTreeMap<ModelKind, Option<u32>> {
        ModelKind::ALL
            .into_iter()
            .map(|m| (m, self.aliases(m).ok().and_then(|a| a.champion)))
            .collect()
    }

    /// The folder of the champion (or of `version` when given).
    pub fn resolve(&self, model: ModelKind, version: Option<u32>) -> Result<(u32, PathBuf), RegistryError> {
        let version = match version {
            Some(v) => {
                self.check_version(model, v)?;
                v
            }
            None => self.aliases(model)?.champion.ok_or(RegistryError::NoAlias {
                model,
                alias: "champion",
            })?,
        };
        Ok((version, self.version_dir(model, version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path().join("models"));
        (dir, registry)
    }

    fn add(registry: &Registry, text: &str) -> u32 {
        registry
            .add_version::<RegistryError>(ModelKind::Churn, |dir| {
                std::fs::write(dir.join("model.json"), text).unwrap();
                Ok(())
            })
            .unwrap()
    }

    #[test]
    fn versions_count_up_and_aliases_move() {
        let (_dir, registry) = registry();
        assert_eq!(add(&registry, "a"), 1);
        assert_eq!(add(&registry, "b"), 2);
        assert!(matches!(
            registry.resolve(ModelKind::Churn, None),
            Err(RegistryError::NoAlias { .. })
        ));
        registry.promote(ModelKind::Churn, 1).unwrap();
        registry.promote(ModelKind::Churn, 2).unwrap();
        assert_eq!(registry.resolve(ModelKind::Churn, None).unwrap().0, 2);
        let aliases = registry.rollback(ModelKind::Churn).unwrap();
        assert_eq!((aliases.champion, aliases.challenger), (Some(1), Some(2)));
        assert!(matches!(
            registry.rollback(ModelKind::Churn),
            Err(RegistryError::NothingToRollBack { .. })
        ));
        assert!(matches!(
            registry.promote(ModelKind::Churn, 9),
            Err(RegistryError::UnknownVersion { version: 9, .. })
        ));
    }

    #[test]
    fn pruning_keeps_the_champion_challenger_previous_champion_and_the_newest_others() {
        let (_dir, registry) = registry();
        for i in 1..=9 {
            add(&registry, &i.to_string());
        }
        registry.promote(ModelKind::Churn, 2).unwrap();
        registry.promote(ModelKind::Churn, 3).unwrap();
        registry.promote(ModelKind::Churn, 5).unwrap(); // previous champions: 2, 3
        registry.set_challenger(ModelKind::Churn, 1).unwrap();
        assert_eq!(registry.prunable(ModelKind::Churn, 2).unwrap(), vec![2, 4, 6, 7]);
        assert_eq!(registry.prune(ModelKind::Churn, 2).unwrap(), vec![2, 4, 6, 7]);
        assert_eq!(registry.versions(ModelKind::Churn).unwrap(), vec![1, 3, 5, 8, 9]);
        let aliases = registry.aliases(ModelKind::Churn).unwrap();
        assert_eq!(
            aliases.previous_champions,
            vec![3],
            "rollback reaches only what is kept"
        );
        assert_eq!((aliases.champion, aliases.challenger), (Some(5), Some(1)));
        assert!(
            registry.prune(ModelKind::Churn, 2).unwrap().is_empty(),
            "nothing more to go"
        );
        assert_eq!(registry.rollback(ModelKind::Churn).unwrap().champion, Some(3));
        let leftovers: Vec<_> = std::fs::read_dir(registry.model_dir(ModelKind::Churn))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_write_leaves_no_version() {
        let (_dir, registry) = registry();
        let result = registry.add_version::<RegistryError>(ModelKind::Churn, |dir| {
            std::fs::write(dir.join("model.json"), "half").unwrap();
            Err(RegistryError::Corrupt {
                path: dir.into(),
                message: "disk full".into(),
            })
        });
        assert!(result.is_err());
        assert_eq!(registry.versions(ModelKind::Churn).unwrap(), Vec::<u32>::new());
        let leftovers: Vec<_> = std::fs::read_dir(registry.model_dir(ModelKind::Churn))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "the staging folder is removed");
    }

    /// The alias file is replaced by a rename, never rewritten in place: a promotion gives
    /// it a new inode (a reader holding the old one reads the old whole file), and leaves no
    /// temporary file behind. Deterministic, unlike the concurrent reader below.
    #[test]
    fn promotion_replaces_the_alias_file_by_rename() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, registry) = registry();
        for i in 0..2 {
            add(&registry, &i.to_string());
        }
        registry.promote(ModelKind::Churn, 1).unwrap();
        let path = registry.model_dir(ModelKind::Churn).join("aliases.json");
        let held = std::fs::File::open(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().ino();
        registry.promote(ModelKind::Churn, 2).unwrap();
        let after = std::fs::metadata(&path).unwrap().ino();
        assert_ne!(before, after, "written in place: a reader could see half a file");
        let old: Aliases = serde_json::from_reader(held).unwrap();
        assert_eq!(old.champion, Some(1), "the open handle still reads the whole old file");
        assert_eq!(registry.aliases(ModelKind::Churn).unwrap().champion, Some(2));
        let names: Vec<String> = std::fs::read_dir(registry.model_dir(ModelKind::Churn))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["1", "2", "aliases.json"], "no temporary file left");
    }

    #[test]
    fn readers_never_see_a_half_promoted_alias() {
        let (_dir, registry) = registry();
        for i in 0..5 {
            add(&registry, &i.to_string());
        }
        registry.promote(ModelKind::Churn, 1).unwrap();
        let path = registry.model_dir(ModelKind::Churn).join("aliases.json");
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                for _ in 0..2000 {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let aliases: Aliases = serde_json::from_str(&text).expect("always a whole alias file");
                    assert!(aliases.champion.is_some());
                }
            });
            for round in 0..200 {
                registry.promote(ModelKind::Churn, 1 + round % 5).unwrap();
            }
            reader.join().unwrap();
        });
    }
}
