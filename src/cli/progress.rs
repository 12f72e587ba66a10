//! Progress bars on stderr; hidden when stderr is not a terminal (CI, pipes).

use bankml::models::progress::{Logged, TrainingProgress, TrainingStep};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// The look of every bar: `template` with `=>` for its filled part.
fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(bar_style("{spinner} {msg:24} [{bar:30}] {pos}/{len} {elapsed}"));
    bar.set_message(what.to_string());
    bar
}

pub fn spinner(what: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// `bankml train`'s view of one model's training: its step, then a bar of the boosting rounds
/// (a 10M bank's churn model boosts for most of an hour).
#[derive(Debug)]
pub struct TrainingBar {
    bar: ProgressBar,
    model: String,
}

impl TrainingBar {
    pub fn new(model: &str) -> TrainingBar {
        let bar = spinner(&format!("training {model}"));
        TrainingBar {
            bar,
            model: model.to_string(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl TrainingProgress for TrainingBar {
    fn step(&self, step: TrainingStep) {
        // The log too, for `-v` and when stderr is not a terminal (the bar is hidden then).
        Logged.step(step);
        let model = &self.model;
        match step {
            TrainingStep::Reading { months } => self
                .bar
                .set_message(format!("{model}: reading {months} months of features")),
            TrainingStep::Matrix { rows } => self
                .bar
                .set_message(format!("{model}: XGBoost's matrix of {} rows", super::thousands(rows))),
            TrainingStep::Boosting { done, of } => {
                if self.bar.length() != Some(u64::from(of)) {
                    self.bar.set_style(bar_style(
                        "{spinner} {msg} [{bar:30}] {pos}/{len} rounds {elapsed} (~{eta} left)",
                    ));
                    self.bar.set_length(u64::from(of));
                    self.bar.set_message(format!("{model}: boosting"));
                }
                self.bar.set_position(u64::from(done));
            }
            TrainingStep::Finishing => {
                // Early stopping may have ended the rounds well before the bar's end.
                self.bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                self.bar
                    .set_message(format!("{model}: holdout, calibration, drift reference"))
            }
        }
    }
}
