//! What a training reports as it goes. A large bank's churn model boosts for most of an hour
//! (10M clients: 47 minutes), so `bankml train` shows a bar of the rounds, and a scheduled
//! retraining says in its log where it is.

/// One step of a training, in the order they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingStep {
    /// The kept months' features are read from the store: the drift reference's window,
    /// then the training and holdout months (`months` counts every kept month).
    Reading { months: usize },
    /// XGBoost's matrix is built from them (binned, or paged out to disk).
    Matrix { rows: usize },
    /// `done` of at most `of` boosting rounds (early stopping may end them sooner).
    Boosting { done: u32, of: u32 },
    /// The holdout, the calibrator, the drift reference and the registry.
    Finishing,
}

/// Told of each [`TrainingStep`]; called from the training's own thread.
pub trait TrainingProgress: std::fmt::Debug {
    fn step(&self, step: TrainingStep);
}

/// The default: each step in the log (`-v`), the rounds at debug level (`-vv`).
#[derive(Debug)]
pub struct Logged;

impl TrainingProgress for Logged {
    fn step(&self, step: TrainingStep) {
        match step {
            TrainingStep::Boosting { done, of } => tracing::debug!(done, of, "boosting rounds"),
            other => tracing::info!(step = ?other, "training"),
        }
    }
}
