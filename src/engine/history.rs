//! Run history in SQLite (`data/history.sqlite`): one row per attempt of every job run —
//! scheduled, caught up, triggered over the API or run by hand. WAL mode, so `bankml runs`
//! reads while the daemon writes.

pub use crate::vocab::run::{RunRecord, RunState, Trigger};
use crate::vocab::time::{iso, parse_iso};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("run history {path}: {source}{}", crate::fsutil::disk_hint(path))]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("run history: {0}")]
    Busy(String),
}

/// Opens the daemon's SQLite file (creating its folder), set up as every reader and writer of
/// it needs: WAL, so `bankml runs` reads while the daemon writes, and a busy timeout.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    }
    let connection = Connection::open(path)?;
    configure(&connection)?;
    Ok(connection)
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")
}

pub struct RunHistory {
    path: String,
    connection: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    scheduled_at TEXT,
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    attempt      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    report_path  TEXT,
    seconds      REAL
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, id);
CREATE TABLE IF NOT EXISTS job_locks (
    job   TEXT PRIMARY KEY,
    pid   INTEGER NOT NULL,
    since TEXT NOT NULL
);
";

/// Another process running a job now (the daemon, or `bankml run` in a terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command line (`bankml daemon`), as /proc tells it.
    pub command: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let command = if self.command.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.command)
        };
        write!(f, "pid {}{command} since {}", self.pid, self.since)
    }
}

impl RunHistory {
    /// Opens (creating when needed) the history at `path`.
    pub fn open(path: &Path) -> Result<RunHistory, HistoryError> {
        let name = path.display().to_string();
        let connection = connect(path).map_err(|source| HistoryError::Sqlite {
            path: name.clone(),
            source,
        })?;
        RunHistory::prepare(name, connection)
    }

    /// A history that lives in memory only (tests).
    pub fn in_memory() -> Result<RunHistory, HistoryError> {
        let connection = Connection::open_in_memory().map_err(|source| HistoryError::Sqlite {
            path: ":memory:".into(),
            source,
        })?;
        RunHistory::prepare(":memory:".into(), connection)
    }

    fn prepare(path: String, connection: Connection) -> Result<RunHistory, HistoryError> {
        let setup = || -> rusqlite::Result<()> {
            configure(&connection)?;
            // Run records may lose their last moments to a power cut, not to a crash; the
            // alert outbox keeps SQLite's full sync on its own connection.
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            connection.execute_batch(SCHEMA)
        };
        setup().map_err(|source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Ok(RunHistory {
            path,
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, HistoryError> {
        // A panic while holding the lock cannot leave SQLite half-written: keep going.
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        f(&connection).map_err(|source| HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Records an attempt as running; returns its run id.
    pub fn start(
        &self,
        job: &str,
        trigger: Trigger,
        scheduled_at: Option<DateTime<Utc>>,
        attempt: u32,
        started_at: DateTime<Utc>,
    ) -> Result<i64, HistoryError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (job, trigger, scheduled_at, started_at, attempt, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    job,
                    trigger.name(),
                    scheduled_at.map(iso),
                    iso(started_at),
                    attempt,
                    RunState::Running.name()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn finish(
        &self,
        id: i64,
        status: RunState,
        ended_at: DateTime<Utc>,
        seconds: f64,
        error: Option<&str>,
        report_path: Option<&Path>,
    ) -> Result<(), HistoryError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?2, ended_at = ?3, seconds = ?4, error = ?5, report_path = ?6 WHERE id = ?1",
                params![
                    id,
                    status.name(),
                    iso(ended_at),
                    seconds,
                    error,
                    report_path.map(|p| p.display().to_string())
                ],
            )
            .map(|_| ())
        })
    }

    /// A firing that did not run (its previous run was still going, or the queue was full).
    pub fn skipped(
        &self,
        job: &str,
        trigger: Trigger,
        scheduled_at: DateTime<Utc>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<i64, HistoryError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (job, trigger, scheduled_at, started_at, ended_at, attempt, status, error, seconds)
                 VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, ?6, 0)",
                params![
                    job,
                    trigger.name(),
                    iso(scheduled_at),
                    iso(at),
                    RunState::Skipped.name(),
                    reason
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Takes `job`'s lock for this process, so one job never runs twice at once across
    /// processes (the daemon, `bankml run` in a terminal). A lock whose process is gone is
    /// taken over; one this process holds already is its own business (the scheduler's overlap
    /// policy). `Err(holder)` when a live other process holds it.
    pub fn lock_job(&self, job: &str, at: DateTime<Utc>) -> Result<Result<(), Holder>, HistoryError> {
        let ours = std::process::id();
        for _ in 0..3 {
            let held = self.lock_row(job)?;
            if let Some((pid, since)) = &held
                && *pid != ours
                && crate::fsutil::process_alive(*pid as i32)
            {
                return Ok(Err(Holder {
                    pid: *pid,
                    command: crate::fsutil::process_command(*pid),
                    since: since.clone(),
                }));
            }
            // Compare and swap: taken only if nobody took it since it was read.
            let expected = held.map_or(-1, |(pid, _)| i64::from(pid));
            let changed = self.with(|c| {
                c.execute(
                    "INSERT INTO job_locks (job, pid, since) VALUES (?1, ?2, ?3)
                     ON CONFLICT (job) DO UPDATE SET pid = excluded.pid, since = excluded.since
                     WHERE job_locks.pid = ?4",
                    params![job, ours, iso(at), expected],
                )
            })?;
            if changed == 1 {
                return Ok(Ok(()));
            }
        }
        Err(HistoryError::Busy(format!(
            "the lock of job {job} keeps changing hands"
        )))
    }

    /// `job`'s lock as stored: (pid, since), whoever holds it.
    fn lock_row(&self, job: &str) -> Result<Option<(u32, String)>, HistoryError> {
        self.with(|c| {
            c.query_row("SELECT pid, since FROM job_locks WHERE job = ?1", params![job], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
    }

    /// Releases `job`'s lock if this process holds it.
    pub fn unlock_job(&self, job: &str) -> Result<(), HistoryError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM job_locks WHERE job = ?1 AND pid = ?2",
                params![job, std::process::id()],
            )
        })?;
        Ok(())
    }

    /// Who holds `job`'s lock now, if a live other process does.
    pub fn job_holder(&self, job: &str) -> Result<Option<Holder>, HistoryError> {
        Ok(self
            .lock_row(job)?
            .filter(|(pid, _)| *pid != std::process::id() && crate::fsutil::process_alive(*pid as i32))
            .map(|(pid, since)| Holder {
                pid,
                command: crate::fsutil::process_command(pid),
                since,
            }))
    }

    /// Marks every run still `running` as interrupted (called at start-up: nothing runs yet).
    pub fn mark_interrupted(&self, at: DateTime<Utc>) -> Result<usize, HistoryError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?1, ended_at = ?2, error = 'the daemon stopped while this run was going'
                 WHERE status = ?3",
                params![RunState::Interrupted.name(), iso(at), RunState::Running.name()],
            )
        })
    }

    /// The newest runs first, optionally of one job.
    pub fn list(&self, job: Option<&str>, last: usize) -> Result<Vec<RunRecord>, HistoryError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, job, trigger, scheduled_at, started_at, ended_at, attempt, status, error, report_path, seconds
                 FROM runs WHERE (?1 IS NULL OR job = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![job, last as i64], |row| {
                Ok(RunRecord {
                    id: row.get(0)?,
                    job: row.get(1)?,
                    trigger: row.get(2)?,
                    scheduled_at: row.get(3)?,
                    started_at: row.get(4)?,
                    ended_at: row.get(5)?,
                    attempt: row.get(6)?,
                    status: RunState::parse(&row.get::<_, String>(7)?),
                    error: row.get(8)?,
                    report_path: row.get(9)?,
                    seconds: row.get(10)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The latest firing of `job` the daemon acted on (ran, queued or skipped): where catch-up
    /// after downtime starts counting from.
    pub fn last_firing(&self, job: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        self.latest_time(
            "SELECT MAX(scheduled_at) FROM runs WHERE job = ?1 AND trigger IN ('schedule', 'catch_up')",
            job,
        )
    }

    /// A query for one time of `job` (NULL when there is none).
    fn latest_time(&self, sql: &str, job: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        let text: Option<String> = self.with(|c| {
            c.query_row(sql, params![job], |row| row.get(0))
                .optional()
                .map(Option::flatten)
        })?;
        Ok(text.as_deref().and_then(parse_iso))
    }

    /// The report of `job`'s newest succeeded run.
    pub fn latest_report(&self, job: &str) -> Result<Option<PathBuf>, HistoryError> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT report_path FROM runs WHERE job = ?1 AND status = 'succeeded' AND report_path IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                params![job],
                |row| row.get(0),
            )
            .optional()
        })?;
        Ok(text.map(PathBuf::from))
    }

    /// When `job` last succeeded.
    pub fn last_success(&self, job: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        self.latest_time(
            "SELECT MAX(ended_at) FROM runs WHERE job = ?1 AND status = 'succeeded'",
            job,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_holds_a_job_and_a_dead_holders_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let history = RunHistory::open(&path).unwrap();
        let now = at("2026-03-02T03:00:00Z");
        assert_eq!(history.lock_job("daily-benchmark", now).unwrap(), Ok(()));
        assert_eq!(
            history.lock_job("daily-benchmark", now).unwrap(),
            Ok(()),
            "ours already"
        );
        assert_eq!(
            history.job_holder("daily-benchmark").unwrap(),
            None,
            "we do not wait for ourselves"
        );
        // Another live process holds weekly-validation.
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let raw = connect(&path).unwrap();
        raw.execute(
            "INSERT INTO job_locks (job, pid, since) VALUES ('weekly-validation', ?1, '2026-03-02T02:59:00Z')",
            params![other.id()],
        )
        .unwrap();
        let held = history.lock_job("weekly-validation", now).unwrap().unwrap_err();
        assert_eq!(held.pid, other.id());
        assert_eq!(held.command, "sleep 30");
        assert_eq!(
            held.to_string(),
            format!("pid {} (sleep 30) since 2026-03-02T02:59:00Z", other.id())
        );
        assert_eq!(history.job_holder("weekly-validation").unwrap(), Some(held));
        // It dies without releasing: the lock is free to take.
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(history.job_holder("weekly-validation").unwrap(), None);
        assert_eq!(history.lock_job("weekly-validation", now).unwrap(), Ok(()));
        history.unlock_job("weekly-validation").unwrap();
        history.unlock_job("daily-benchmark").unwrap();
        let left: i64 = raw
            .query_row("SELECT COUNT(*) FROM job_locks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_iso(text).unwrap()
    }

    #[test]
    fn runs_are_recorded_listed_and_interrupted_on_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let history = RunHistory::open(&path).unwrap();
        let t = at("2026-03-01T02:00:00Z");
        let first = history.start("daily", Trigger::Schedule, Some(t), 1, t).unwrap();
        history
            .finish(
                first,
                RunState::Succeeded,
                at("2026-03-01T02:00:05Z"),
                5.0,
                None,
                Some(Path::new("r/1")),
            )
            .unwrap();
        let t2 = at("2026-03-02T02:00:00Z");
        history.start("daily", Trigger::Schedule, Some(t2), 1, t2).unwrap();
        history
            .skipped("weekly", Trigger::Schedule, t2, t2, "still running")
            .unwrap();
        drop(history);

        // A new process (the daemon restarted after a crash) finds the second run cut off.
        let history = RunHistory::open(&path).unwrap();
        assert_eq!(history.mark_interrupted(at("2026-03-02T03:00:00Z")).unwrap(), 1);
        let runs = history.list(Some("daily"), 10).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].status, RunState::Interrupted);
        assert_eq!(runs[1].status, RunState::Succeeded);
        assert_eq!(runs[1].report_path.as_deref(), Some("r/1"));
        assert_eq!(history.list(None, 10).unwrap().len(), 3);
        assert_eq!(history.list(None, 1).unwrap()[0].job, "weekly");
        assert_eq!(history.last_firing("daily").unwrap(), Some(t2));
        assert_eq!(history.last_firing("other").unwrap(), None);
        assert_eq!(history.latest_report("daily").unwrap(), Some(PathBuf::from("r/1")));
        assert_eq!(history.last_success("daily").unwrap(), Some(at("2026-03-01T02:00:05Z")));
    }
}
