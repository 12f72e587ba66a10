//! Leftovers of killed writers (temporary files, staging folders, a folder moved aside
//! mid-swap) cleaned at start and after every run, each one logged.

use crate::config::EngineConfig;
use crate::config::jobs::Job;
use crate::engine::runner::{AttemptReport, RunObserver};
use crate::fsutil::{self, Swept};
use std::path::PathBuf;
use std::sync::Arc;

/// The folders bankml writes whole files and folders into.
pub fn roots(config: &EngineConfig) -> Vec<PathBuf> {
    vec![
        config.data.raw_dir.clone(),
        config.data.processed_dir.clone(),
        config.data.scores_dir.clone(),
        config.data.reports_dir.clone(),
        config.models.dir.clone(),
    ]
}

/// Sweeps the project's folders (see [`fsutil::sweep`]) and logs what it did.
pub fn sweep(config: &EngineConfig) -> Vec<Swept> {
    let roots = roots(config);
    let refs: Vec<&std::path::Path> = roots.iter().map(PathBuf::as_path).collect();
    let swept = fsutil::sweep(&refs);
    for item in &swept {
        match item {
            Swept::Removed(path) => tracing::info!(path = %path.display(), "removed a killed writer's leftover"),
            Swept::Restored(path) => {
                tracing::warn!(path = %path.display(), "put back a folder a killed writer had moved aside")
            }
        }
    }
    swept
}

/// A run observer that sweeps after every run, then tells the next observer.
pub struct Housekeeping {
    pub config: Arc<EngineConfig>,
    pub next: Option<Arc<dyn RunObserver>>,
}

impl RunObserver for Housekeeping {
    fn finished(&self, job: &Job, run_id: i64, report: &AttemptReport) {
        sweep(&self.config);
        if let Some(next) = &self.next {
            next.finished(job, run_id, report);
        }
    }
}
