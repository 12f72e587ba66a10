//! The words every room shares, at the bottom of the crate: which models exist
//! ([`ModelKind`]), which figures jobs publish ([`catalogue`]), what a run returns
//! ([`RunOutcome`] with its [`Observation`]s), and the time, duration and number helpers.
//!
//! Imports nothing of ours, so every room may use it without an arrow pointing up.

pub mod catalogue;
pub mod condition;
pub mod duration;
pub mod model;
pub mod outcome;
pub mod run;
pub mod schedule;
pub mod text;
pub mod time;

pub use catalogue::{Label, ObservationSpec};
pub use model::ModelKind;
pub use outcome::{Observation, RunOutcome, Started};
