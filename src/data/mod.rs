//! Bank data: the synthetic bank, reading exports, validation, cleaning and features.
//! Knows no model.

pub mod clean;
pub mod date;
pub mod features;
pub mod format;
pub mod history;
pub mod problem;
pub mod schema;
pub mod snapshot;
pub mod source;
pub mod synth;
pub mod validate;
