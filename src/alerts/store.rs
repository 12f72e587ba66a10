//! Alert state, silences and the notification outbox, in the daemon's SQLite file. Every
//! notification is written here before any attempt to send it, and marked sent only when the
//! receiver accepted it, so nothing is lost across receiver outages or daemon restarts.

pub use super::state::AlertState;
use super::state::Phase;
use crate::vocab::time::{iso, parse_iso};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("alert store {path}: {source}{}", crate::fsutil::disk_hint(path))]
pub struct StoreError {
    path: String,
    source: rusqlite::Error,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_state (
    rule          TEXT NOT NULL,
    labels        TEXT NOT NULL,
    state         TEXT NOT NULL,
    breaches      INTEGER NOT NULL,
    value         REAL,
    last_value    REAL,
    active_since  TEXT,
    last_notified TEXT,
    resolved_at   TEXT,
    severity      TEXT,
    summary       TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (rule, labels)
);
CREATE TABLE IF NOT EXISTS silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    rule       TEXT NOT NULL,
    until      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    comment    TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    status          TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
";

/// Series stored before the run's label became `bankml_job` (it was `job`, which Prometheus
/// renames) take the new name, so an alert firing across the upgrade stays one series and
/// resolves, instead of staying firing under a key no run updates again. A no-op once done.
fn rename_job_label(connection: &Connection) -> rusqlite::Result<()> {
    use crate::vocab::catalogue::JOB_LABEL;
    let old: Vec<(String, String)> = {
        let mut statement = connection
            .prepare("SELECT rule, labels FROM alert_state WHERE labels LIKE 'job=%' OR labels LIKE '%,job=%'")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (rule, labels) in old {
        let renamed: std::collections::BTreeMap<String, String> = labels
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (if k == "job" { JOB_LABEL } else { k }.to_string(), v.to_string()))
            .collect();
        let key = crate::vocab::text::join_labels(&renamed, ",");
        connection.execute(
            "UPDATE OR IGNORE alert_state SET labels = ?3 WHERE rule = ?1 AND labels = ?2",
            params![rule, labels, key],
        )?;
        // Already there under the new name (a newer run): the newer one stays.
        connection.execute(
            "DELETE FROM alert_state WHERE rule = ?1 AND labels = ?2",
            params![rule, labels],
        )?;
    }
    Ok(())
}

/// `alert_state.told`: what a firing series last told, kept for Alertmanager's re-send.
fn add_told_column(connection: &Connection) -> rusqlite::Result<()> {
    let has: bool = connection
        .prepare("SELECT 1 FROM pragma_table_info('alert_state') WHERE name = 'told'")?
        .exists([])?;
    if !has {
        connection.execute_batch("ALTER TABLE alert_state ADD COLUMN told TEXT")?;
    }
    Ok(())
}

/// The last notice a firing series told, and the receivers its rule names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Told {
    pub receivers: Vec<String>,
    pub notice: super::Notice,
}

/// Keeps (or, resolved, clears) what a series told.
pub fn set_told(c: &Connection, rule: &str, labels: &str, told: Option<&Told>) -> rusqlite::Result<()> {
    let json = told.map(|t| serde_json::to_string(t).unwrap_or_default());
    c.execute(
        "UPDATE alert_state SET told = ?3 WHERE rule = ?1 AND labels = ?2",
        params![rule, labels, json],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Silence {
    pub id: i64,
    pub rule: String,
    pub until: String,
    pub created_at: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub receiver: String,
    pub payload: String,
    pub created_at: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub status: String,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

pub struct AlertStore {
    path: String,
    connection: Mutex<Connection>,
}

impl AlertStore {
    /// Opens the alert tables in the daemon's SQLite file (the run history's).
    pub fn open(path: &Path) -> Result<AlertStore, StoreError> {
        let name = path.display().to_string();
        let fail = |source| StoreError {
            path: name.clone(),
            source,
        };
        let connection = crate::engine::history::connect(path).map_err(fail)?;
        connection.execute_batch(SCHEMA).map_err(fail)?;
        rename_job_label(&connection).map_err(fail)?;
        add_told_column(&connection).map_err(fail)?;
        Ok(AlertStore {
            path: name,
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        f(&connection).map_err(|source| StoreError {
            path: self.path.clone(),
            source,
        })
    }

    /// What every series firing now last told. A rule silenced after it was told stays in:
    /// stopping the re-send would make Alertmanager tell its receivers "resolved".
    pub fn firing_told(&self) -> Result<Vec<Told>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT rule, told FROM alert_state WHERE state = ?1 AND told IS NOT NULL ORDER BY rule, labels",
            )?;
            let rows = statement.query_map(params![Phase::Firing.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (rule, told) = row?;
                match serde_json::from_str::<Told>(&told) {
                    Ok(told) => out.push(told),
                    Err(e) => tracing::warn!(rule = %rule, error = %e, "an unreadable told alert; not re-sent"),
                }
            }
            Ok(out)
        })
    }

    pub fn state(&self, rule: &str, labels: &str) -> Result<Option<AlertState>, StoreError> {
        self.with(|c| read_state(c, rule, labels))
    }

    /// Runs `f` inside one SQLite transaction: every state read and written and every
    /// notification queued by one evaluation commit together, or not at all.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let fail = |source| StoreError {
            path: self.path.clone(),
            source,
        };
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let value = f(&transaction).map_err(fail)?;
        transaction.commit().map_err(fail)?;
        Ok(value)
    }

    /// Alerts pending or firing, and those resolved in the last day.
    pub fn list(&self, now: DateTime<Utc>) -> Result<Vec<AlertState>, StoreError> {
        let day_ago = iso(now - chrono::Duration::days(1));
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT rule, labels, state, breaches, value, last_value, active_since, last_notified, resolved_at,
                        severity, summary FROM alert_state
                 WHERE state != 'inactive' OR (resolved_at IS NOT NULL AND resolved_at > ?1)
                 ORDER BY state DESC, rule, labels",
            )?;
            let rows = statement.query_map(params![day_ago], row_state)?;
            rows.collect()
        })
    }

    pub fn silence(
        &self,
        rule: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        comment: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO silences (rule, until, created_at, comment) VALUES (?1, ?2, ?3, ?4)",
                params![rule, iso(until), iso(now), comment],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT id, rule, until, created_at, comment FROM silences WHERE until > ?1 ORDER BY id")?;
            let rows = statement.query_map(params![iso(now)], |row| {
                Ok(Silence {
                    id: row.get(0)?,
                    rule: row.get(1)?,
                    until: row.get(2)?,
                    created_at: row.get(3)?,
                    comment: row.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Writes a notification for `receiver`, due now.
    pub fn enqueue(&self, receiver: &str, payload: &str, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.with(|c| enqueue(c, receiver, payload, now))
    }

    /// Notifications not yet delivered (due or not), oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_query("WHERE status = 'pending' ORDER BY id ASC", limit)
    }

    /// Every notification, newest first (`bankml alerts outbox`, the runs index).
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_query("ORDER BY id DESC", limit)
    }

    fn outbox_query(&self, filter_and_order: &str, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT id, receiver, payload, created_at, attempts, next_attempt_at, status, last_error, sent_at
                 FROM outbox {filter_and_order} LIMIT ?1"
            ))?;
            let rows = statement.query_map(params![limit as i64], |row| {
                Ok(OutboxEntry {
                    id: row.get(0)?,
                    receiver: row.get(1)?,
                    payload: row.get(2)?,
                    created_at: row.get(3)?,
                    attempts: row.get(4)?,
                    next_attempt_at: row.get(5)?,
                    status: row.get(6)?,
                    last_error: row.get(7)?,
                    sent_at: row.get(8)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The alerts told by the notifications queued after `after_id`, oldest first, once each
    /// (a notification goes to every receiver of its rule).
    pub fn told_after(&self, after_id: i64) -> Result<Vec<(Option<i64>, super::Notice)>, StoreError> {
        let entries = self.outbox_query(&format!("WHERE id > {after_id} ORDER BY id ASC"), i64::MAX as usize)?;
        let mut out: Vec<(Option<i64>, super::Notice)> = Vec::new();
        for entry in entries {
            let Ok(notification) = serde_json::from_str::<super::Notification>(&entry.payload) else {
                continue;
            };
            for notice in notification.alerts {
                let seen = out.iter().any(|(run, n)| {
                    *run == notification.run_id
                        && n.rule == notice.rule
                        && n.labels == notice.labels
                        && n.status == notice.status
                });
                if !seen {
                    out.push((notification.run_id, notice));
                }
            }
        }
        Ok(out)
    }

    /// The newest notification's id (0 when there is none).
    pub fn last_outbox_id(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |row| row.get(0)))
    }

    /// Marks the pending notifications queued after `after_id` as `held`: kept for the record
    /// (the runs index, `bankml alerts outbox`, `bankml bench monitor`) but never delivered. A
    /// backfill's alerts are about the past; nobody should be woken for them.
    pub fn hold_after(&self, after_id: i64, reason: &str) -> Result<usize, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET status = 'held', last_error = ?2 WHERE id > ?1 AND status = 'pending'",
                params![after_id, reason],
            )
        })
    }

    pub fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, iso(now)],
            )
            .map(|_| ())
        })
    }

    pub fn mark_failed(&self, id: i64, error: &str, next: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, iso(next)],
            )
            .map(|_| ())
        })
    }

    /// Per run, the alerts its notifications told (rule, firing|resolved), from the outbox.
    pub fn alerts_by_run(
        &self,
        limit: usize,
    ) -> Result<std::collections::BTreeMap<i64, Vec<(String, String)>>, StoreError> {
        let mut out: std::collections::BTreeMap<i64, Vec<(String, String)>> = Default::default();
        for entry in self.outbox(limit)? {
            let Ok(notification) = serde_json::from_str::<super::Notification>(&entry.payload) else {
                continue;
            };
            let Some(run) = notification.run_id else { continue };
            let list = out.entry(run).or_default();
            for alert in notification.alerts {
                let state = match alert.status {
                    super::Status::Firing => "firing",
                    super::Status::Resolved => "resolved",
                };
                let item = (alert.rule, state.to_string());
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        Ok(out)
    }

    /// How many notifications wait per receiver.
    pub fn pending_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT receiver, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY receiver")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }
}

/// One series' state, read inside a connection or transaction.
pub fn read_state(c: &Connection, rule: &str, labels: &str) -> rusqlite::Result<Option<AlertState>> {
    c.query_row(
        "SELECT rule, labels, state, breaches, value, last_value, active_since, last_notified, resolved_at,
                severity, summary FROM alert_state WHERE rule = ?1 AND labels = ?2",
        params![rule, labels],
        row_state,
    )
    .optional()
}

pub fn write_state(c: &Connection, s: &AlertState, now: DateTime<Utc>) -> rusqlite::Result<()> {
    let time = |t: Option<DateTime<Utc>>| t.map(iso);
    c.execute(
        "INSERT INTO alert_state (rule, labels, state, breaches, value, last_value, active_since, last_notified,
                                  resolved_at, severity, summary, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (rule, labels) DO UPDATE SET state = ?3, breaches = ?4, value = ?5, last_value = ?6,
             active_since = ?7, last_notified = ?8, resolved_at = ?9, severity = ?10, summary = ?11, updated_at = ?12",
        params![
            s.rule,
            s.labels,
            s.state.as_str(),
            s.breaches,
            s.value,
            s.last_value,
            time(s.active_since),
            time(s.last_notified),
            time(s.resolved_at),
            s.severity,
            s.summary,
            iso(now)
        ],
    )
    .map(|_| ())
}

/// The rules silenced at `now`.
pub fn silenced_rules(c: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Vec<String>> {
    let mut statement = c.prepare("SELECT DISTINCT rule FROM silences WHERE until > ?1")?;
    let rows = statement.query_map(params![iso(now)], |row| row.get(0))?;
    rows.collect()
}

pub fn enqueue(c: &Connection, receiver: &str, payload: &str, now: DateTime<Utc>) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO outbox (receiver, payload, created_at, next_attempt_at, status) VALUES (?1, ?2, ?3, ?3, 'pending')",
        params![receiver, payload, iso(now)],
    )?;
    Ok(c.last_insert_rowid())
}

fn row_state(row: &rusqlite::Row) -> rusqlite::Result<AlertState> {
    let phase: String = row.get(2)?;
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(row.get::<_, Option<String>>(i)?.as_deref().and_then(parse_iso))
    };
    Ok(AlertState {
        rule: row.get(0)?,
        labels: row.get(1)?,
        state: phase
            .parse::<Phase>()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into()))?,
        breaches: row.get(3)?,
        value: row.get(4)?,
        last_value: row.get(5)?,
        active_since: time(6)?,
        last_notified: time(7)?,
        resolved_at: time(8)?,
        severity: row.get(9)?,
        summary: row.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_stored_under_the_old_job_label_take_the_new_name_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let now = Utc::now();
        {
            let store = AlertStore::open(&path).unwrap();
            store
                .with(|c| write_state(c, &AlertState::new("drift", "feature=age,job=daily,model=churn"), now))
                .unwrap();
        }
        let store = AlertStore::open(&path).unwrap();
        assert!(
            store
                .state("drift", "feature=age,job=daily,model=churn")
                .unwrap()
                .is_none()
        );
        let renamed = store
            .state("drift", "bankml_job=daily,feature=age,model=churn")
            .unwrap();
        assert_eq!(
            renamed.map(|s| s.labels),
            Some("bankml_job=daily,feature=age,model=churn".to_string())
        );
    }
}
