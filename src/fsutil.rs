//! Atomic writes: a file or a whole folder appears complete or not at all.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes through `fill` into a temporary file beside `path`, then renames it into place.
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic<E: From<FsError>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), E> {
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(io_error("cannot create folder", dir))?;
    let temp = tempfile::Builder::new()
        .prefix(".bankml-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io_error("cannot create a temporary file in", dir))?;
    let (file, temp_path) = temp.into_parts();
    let mut writer = BufWriter::new(file);
    fill(&mut writer)?;
    let file = writer.into_inner().map_err(|e| FsError::Io {
        action: "cannot write",
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_error("cannot flush", path))?;
    temp_path.persist(path).map_err(|e| FsError::Io {
        action: "cannot rename into",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_atomic(path, |w| w.write_all(bytes).map_err(io_error("cannot write", path)))
}

/// A hidden, world-readable temporary folder in `parent` (created if missing), removed when
/// dropped: where whole folders are written before being renamed into place.
pub fn staging_dir(parent: &Path) -> Result<tempfile::TempDir, FsError> {
    fs::create_dir_all(parent).map_err(io_error("cannot create folder", parent))?;
    tempfile::Builder::new()
        .prefix(".staging-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir_in(parent)
        .map_err(io_error("cannot create a staging folder in", parent))
}

/// A staging folder beside `target`: fill it, then `commit` swaps it in whole.
/// Dropped without `commit`, it is deleted.
pub struct StagedDir {
    staging: Option<tempfile::TempDir>,
    target: PathBuf,
}

impl StagedDir {
    pub fn new(target: &Path) -> Result<StagedDir, FsError> {
        let parent = parent_of(target);
        let staging = staging_dir(parent)?;
        Ok(StagedDir {
            staging: Some(staging),
            target: target.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        self.staging.as_ref().map(|s| s.path()).unwrap_or(&self.target)
    }

    /// Replaces `target` with the staged folder (see [`replace_dir`]).
    pub fn commit(mut self) -> Result<PathBuf, FsError> {
        let Some(staging) = self.staging.take() else {
            return Ok(self.target.clone());
        };
        let staged = staging.keep();
        let result = replace_dir(&staged, &self.target);
        if result.is_err() {
            let _ = fs::remove_dir_all(&staged);
        }
        result.map(|_| self.target.clone())
    }
}

/// Puts folder `from` at `target`: an existing `target` is moved aside, `from` renamed in,
/// then the old one removed; if the rename fails the old folder is put back.
pub fn replace_dir(from: &Path, target: &Path) -> Result<(), FsError> {
    let mut aside = None;
    if target.exists() {
        let name = format!(
            ".old-{}-{}",
            std::process::id(),
            target.file_name().and_then(|n| n.to_str()).unwrap_or("dir")
        );
        let old = parent_of(target).join(name);
        fs::rename(target, &old).map_err(io_error("cannot move aside", target))?;
        aside = Some(old);
    }
    if let Err(e) = fs::rename(from, target) {
        if let Some(old) = &aside {
            let _ = fs::rename(old, target);
        }
        return Err(FsError::Io {
            action: "cannot rename into",
            path: target.to_path_buf(),
            source: e,
        });
    }
    if let Some(old) = aside {
        fs::remove_dir_all(&old).map_err(io_error("cannot remove", &old))?;
    }
    Ok(())
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Peak resident memory of this process (VmHWM), in bytes; `None` off Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
