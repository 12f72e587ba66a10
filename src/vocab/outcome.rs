//! What a job returns: [`RunOutcome`] with its [`Observation`]s — one list that the report,
//! Prometheus and the alert rules all read, so a figure is computed once.

use super::catalogue::{Label, ObservationSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One measured figure, e.g. `churn_risk_clients{risk="High"} 1285`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Observation {
    /// An observation of a catalogued figure. The labels must be the spec's own (checked in
    /// debug builds and by the catalogue-completeness test over real runs).
    pub fn of(spec: &ObservationSpec, labels: &[(Label, &str)], value: f64) -> Observation {
        debug_assert!(
            labels.len() == spec.labels.len() && labels.iter().all(|(l, _)| spec.labels.contains(l)),
            "{} takes labels {:?}, got {:?}",
            spec.name,
            spec.labels,
            labels
        );
        Observation {
            name: spec.name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_string()))
                .collect(),
            value,
        }
    }
}

/// A job's successful run. (A failed run is an error, not an outcome: the runner records it.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub job: String,
    pub started_at: String,
    pub seconds: f64,
    /// Folders and files written.
    pub artifacts: Vec<PathBuf>,
    pub observations: Vec<Observation>,
    /// The job's own summary document (what it wrote as `summary.json`, if anything).
    pub summary: serde_json::Value,
}

/// When a job run began, wall clock (for the report) and monotonic (for its duration).
pub struct Started {
    at: String,
    instant: std::time::Instant,
}

impl Started {
    pub fn now() -> Started {
        Started {
            at: super::time::now_iso(),
            instant: std::time::Instant::now(),
        }
    }

    pub fn seconds(&self) -> f64 {
        self.instant.elapsed().as_secs_f64()
    }

    /// The outcome of a run that succeeded.
    pub fn succeeded(
        self,
        job: &str,
        artifacts: Vec<PathBuf>,
        observations: Vec<Observation>,
        summary: serde_json::Value,
    ) -> RunOutcome {
        RunOutcome {
            job: job.into(),
            seconds: self.seconds(),
            started_at: self.at,
            artifacts,
            observations,
            summary,
        }
    }
}
