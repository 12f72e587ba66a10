//! bankml: keeps a retail bank's machine-learning models honest.
//!
//! Rooms, in dependency order (arrows point down, never up): `data` (exports → features),
//! `metrics` (pure numbers, no I/O), `config` (typed YAML), `fsutil` (atomic writes).

pub mod alerts;
pub mod config;
pub mod daemon;
pub mod data;
pub mod engine;
pub mod fsutil;
pub mod jobs;
pub mod metrics;
pub mod models;
pub mod report;
pub mod server;
pub mod telemetry;
