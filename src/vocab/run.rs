//! What a run was: its state, why it started, and its row in the run history — shared by
//! the engine that records runs and the reports and pages that list them.

use serde::Serialize;

/// Where a run stands. `Running` only while it runs: a run found `Running` at start-up was cut
/// off by a crash and becomes `Interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
    Interrupted,
}

impl RunState {
    pub const ALL: [RunState; 7] = [
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::TimedOut,
        RunState::Skipped,
        RunState::Cancelled,
        RunState::Interrupted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::TimedOut => "timed_out",
            RunState::Skipped => "skipped",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }

    /// The state stored as `text`; an unknown one reads as interrupted.
    pub fn parse(text: &str) -> RunState {
        RunState::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .unwrap_or(RunState::Interrupted)
    }
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its cron time came.
    Schedule,
    /// The latest firing missed while the daemon was down.
    CatchUp,
    /// `POST /api/v1/jobs/{name}/run`.
    Api,
    /// `bankml run JOB`.
    Manual,
    /// The daemon's first start: the first benchmark after preparing data and models.
    Startup,
    /// `bankml backfill`: a run as of a past snapshot.
    Backfill,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch_up",
            Trigger::Api => "api",
            Trigger::Manual => "manual",
            Trigger::Startup => "startup",
            Trigger::Backfill => "backfill",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub scheduled_at: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub attempt: u32,
    pub status: RunState,
    pub error: Option<String>,
    pub report_path: Option<String>,
    pub seconds: Option<f64>,
}
