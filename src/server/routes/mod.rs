//! The API's handlers, one module per resource.

pub mod alerts;
pub mod campaigns;
pub mod health;
pub mod jobs;
pub mod predict;
pub mod reports;
