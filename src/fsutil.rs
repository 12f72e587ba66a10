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
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
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
    // The writer's pid in the name: a folder whose writer is gone is a leftover (`sweep`).
    let prefix = format!("{STAGING_PREFIX}{}-", std::process::id());
    tempfile::Builder::new()
        .prefix(&prefix)
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

/// Removes the folder `dir` so that no reader sees it half-deleted: renamed first to a
/// staging name of this process (gone from its place at once), then deleted; if this is
/// killed in between, the leftover sweep deletes the rest.
pub fn discard_dir(dir: &Path) -> Result<(), FsError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = parent_of(dir).join(format!("{STAGING_PREFIX}{}-discarded-{name}", std::process::id()));
    fs::rename(dir, &aside).map_err(io_error("cannot move aside", dir))?;
    fs::remove_dir_all(&aside).map_err(io_error("cannot remove", &aside))
}

/// Puts folder `from` at `target`: an existing `target` is moved aside, `from` renamed in,
/// then the old one removed; if the rename fails the old folder is put back.
pub fn replace_dir(from: &Path, target: &Path) -> Result<(), FsError> {
    let mut aside = None;
    if target.exists() {
        let name = format!(
            "{ASIDE_PREFIX}{}-{}",
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

/// Names of what a writer leaves while it works, each followed by the writer's pid and `-`:
/// a temporary file being written, a folder being filled, an old folder moved aside.
const TEMP_PREFIX: &str = ".bankml-";
const STAGING_PREFIX: &str = ".staging-";
const ASIDE_PREFIX: &str = ".old-";
/// How every leftover of a killed writer begins (what [`sweep`] looks for).
pub const LEFTOVER_PREFIXES: [&str; 3] = [TEMP_PREFIX, STAGING_PREFIX, ASIDE_PREFIX];
/// Without a pid in its name (written before names carried one), a leftover is one this old.
const STALE_UNNAMED: std::time::Duration = std::time::Duration::from_secs(3600);
/// How deep below each root leftovers are looked for (reports/<job>/<run>/file).
const SWEEP_DEPTH: usize = 3;

/// What [`sweep`] did with one leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    Removed(PathBuf),
    /// A folder moved aside by a writer killed before it put the new one in place: put back.
    Restored(PathBuf),
}

/// The pid a leftover's name carries (`.staging-4242-Xa3f`), if any.
fn writer_pid(name: &str, prefix: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Whether process `pid` exists (one we may not signal counts: it exists).
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 sends nothing; it only asks whether the process exists.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether the writer of `path` (named with `prefix`) is gone: its pid is dead, or the name
/// carries none and it was last touched over an hour ago. This process's own are never stale.
fn abandoned(path: &Path, name: &str, prefix: &str) -> bool {
    match writer_pid(name, prefix) {
        Some(pid) => pid != std::process::id() as i32 && !process_alive(pid),
        None => fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_UNNAMED),
    }
}

/// Removes what killed writers left under `roots` (temporary files, staging folders) and puts
/// back a folder moved aside by a writer killed mid-swap. Run at the daemon's start and after
/// each run; what is still being written by a live process is left alone.
pub fn sweep(roots: &[&Path]) -> Vec<Swept> {
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = roots.iter().map(|r| (r.to_path_buf(), 0)).collect();
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && name.starts_with(ASIDE_PREFIX) && abandoned(&path, &name, ASIDE_PREFIX) {
                let original = name
                    .strip_prefix(ASIDE_PREFIX)
                    .and_then(|rest| rest.split_once('-'))
                    .map(|(_, original)| dir.join(original));
                match original {
                    Some(original) if !original.exists() && fs::rename(&path, &original).is_ok() => {
                        out.push(Swept::Restored(original));
                    }
                    _ => {
                        if fs::remove_dir_all(&path).is_ok() {
                            out.push(Swept::Removed(path));
                        }
                    }
                }
            } else if is_dir && name.starts_with(STAGING_PREFIX) && abandoned(&path, &name, STAGING_PREFIX) {
                if fs::remove_dir_all(&path).is_ok() {
                    out.push(Swept::Removed(path));
                }
            } else if !is_dir
                && name.starts_with(TEMP_PREFIX)
                && name.ends_with(".tmp")
                && abandoned(&path, &name, TEMP_PREFIX)
            {
                if fs::remove_file(&path).is_ok() {
                    out.push(Swept::Removed(path));
                }
            } else if is_dir && depth + 1 < SWEEP_DEPTH && !name.starts_with('.') {
                stack.push((path, depth + 1));
            }
        }
    }
    out
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Hands memory freed by large drops back to the system. glibc keeps freed blocks in its
/// arenas (one per thread XGBoost and polars ran on); without this, the next phase of a
/// training grows the heap past what the last one freed, and the peak adds up phases.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory at the top of glibc's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Peak resident memory of this process (VmHWM), in bytes; `None` off Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    memory_bytes("self", "VmHWM")
}

/// A memory figure of process `pid` (`self`, or a number) from /proc: `VmRSS` now, `VmHWM`
/// its peak; `None` off Linux or for a process that is gone.
pub fn memory_bytes(pid: &str, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A process's command line for people (`bankml daemon`), empty when it cannot be read.
pub fn process_command(pid: u32) -> String {
    let Ok(bytes) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return String::new();
    };
    let words: Vec<String> = bytes
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    // The program by its file name: `/opt/bankml/bin/bankml daemon` reads `bankml daemon`.
    let program = words.first().map(|p| {
        Path::new(p)
            .file_name()
            .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
    });
    program
        .into_iter()
        .chain(words.into_iter().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why nothing can be written at `path` now, as the file system says it: "no space left on
/// device" (the disk holding it is full) or "read-only file system". `None` when neither
/// holds, or the file system cannot be asked. Libraries that wrap their write errors (the
/// Parquet encoder says "transport error") lose this; it is asked again here.
pub fn why_not_writable(path: &Path) -> Option<String> {
    let mut folder = path;
    while !folder.exists() {
        folder = folder.parent().filter(|p| !p.as_os_str().is_empty())?;
    }
    let name = std::ffi::CString::new(folder.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all zeroes is a valid value to be overwritten.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs(3) fills `stats` for the NUL-terminated path it is given.
    if unsafe { libc::statvfs(name.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    if stats.f_flag & libc::ST_RDONLY != 0 {
        return Some(format!("read-only file system ({})", folder.display()));
    }
    // A block or less free for us: the next write fails.
    (stats.f_bavail <= 1).then(|| format!("no space left on device ({} is full)", folder.display()))
}

/// What the disk says when SQLite's own words ("xShmMap", "disk I/O error") would not:
/// ` — no space left on device (…)` or ` — read-only file system (…)`.
pub fn disk_hint(path: &str) -> String {
    why_not_writable(Path::new(path))
        .map(|why| format!(" — {why}"))
        .unwrap_or_default()
}

/// Where `bytes` stop being UTF-8 text: "line 3, byte column 7: not UTF-8 text (byte 0xE9)".
/// `None` when they are UTF-8.
pub fn utf8_problem(bytes: &[u8]) -> Option<String> {
    let error = std::str::from_utf8(bytes).err()?;
    let at = error.valid_up_to();
    let before = &bytes[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = at - before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
    let byte = bytes.get(at).copied().unwrap_or_default();
    Some(format!(
        "line {line}, byte column {column}: not UTF-8 text (byte 0x{byte:02X}); save the file as UTF-8"
    ))
}

/// A text file's contents; text that is not UTF-8 is an error naming its line and byte column.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = fs::read(path)?;
    match utf8_problem(&bytes) {
        None => Ok(String::from_utf8(bytes).unwrap_or_default()),
        Some(problem) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, problem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_killed_writers_leftovers_go_and_a_live_writers_stay() {
        let root = tempfile::tempdir().unwrap();
        let models = root.path().join("models/churn");
        fs::create_dir_all(&models).unwrap();
        let (dead, ours) = (dead_pid(), std::process::id());
        let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let gone = models.join(format!(".staging-{dead}-a1B2"));
        let working = models.join(format!(".staging-{}-c3D4", live.id()));
        let mine = models.join(format!(".staging-{ours}-e5F6"));
        for dir in [&gone, &working, &mine] {
            fs::create_dir_all(dir.join("inner")).unwrap();
        }
        let reports = root.path().join("reports/daily-benchmark/7");
        fs::create_dir_all(&reports).unwrap();
        let temp = reports.join(format!(".bankml-{dead}-x9.tmp"));
        fs::write(&temp, b"half").unwrap();
        // Killed between moving the old folder aside and renaming the new one in.
        let aside = root.path().join(format!("models/.old-{dead}-agency"));
        fs::create_dir_all(aside.join("3")).unwrap();
        // A name bankml does not write, and a young unnamed staging folder: untouched.
        let other = models.join(".staging-notes");
        fs::create_dir_all(&other).unwrap();

        let swept = sweep(&[&root.path().join("models"), &root.path().join("reports")]);
        live.kill().unwrap();
        live.wait().unwrap();
        assert!(swept.contains(&Swept::Removed(gone.clone())), "{swept:?}");
        assert!(swept.contains(&Swept::Removed(temp.clone())), "{swept:?}");
        assert!(
            swept.contains(&Swept::Restored(root.path().join("models/agency"))),
            "{swept:?}"
        );
        assert_eq!(swept.len(), 3, "{swept:?}");
        assert!(!gone.exists() && !temp.exists() && !aside.exists());
        assert!(root.path().join("models/agency/3").exists(), "the old folder is back");
        assert!(working.exists() && mine.exists() && other.exists());
    }

    #[test]
    fn text_that_is_not_utf8_is_placed_by_line_and_byte() {
        assert_eq!(utf8_problem("a,b\nna\u{ef}ve,1\n".as_bytes()), None);
        assert_eq!(
            utf8_problem(b"a,b\nna\xefve,1\n").as_deref(),
            Some("line 2, byte column 3: not UTF-8 text (byte 0xEF); save the file as UTF-8")
        );
        assert_eq!(
            utf8_problem(b"\xff").as_deref(),
            Some("line 1, byte column 1: not UTF-8 text (byte 0xFF); save the file as UTF-8")
        );
    }

    #[test]
    fn writers_name_their_leftovers_with_their_pid() {
        let root = tempfile::tempdir().unwrap();
        let staging = staging_dir(root.path()).unwrap();
        let name = staging.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            writer_pid(&name, STAGING_PREFIX),
            Some(std::process::id() as i32),
            "{name}"
        );
        assert_eq!(writer_pid(".staging-notes", STAGING_PREFIX), None);
    }
}
