//! bankml: keeps a retail bank's machine-learning models honest.
//!
//! Rooms, from the top down (arrows point down, never up — `tests/it/arrows.rs` checks it):
//! `daemon` (wiring) → `server` (HTTP) and `engine` (schedule, runner, history) → `alerts`,
//! `jobs` → `report`, `models` → `data` → `config` → `metrics` (pure numbers), `fsutil`
//! (atomic writes) and `allocator` (when freed memory goes back to the kernel) → `vocab`
//! (model kinds, the observation catalogue, `RunOutcome`, time and duration helpers), which
//! every room may use and which uses nothing of ours.

pub mod alerts;
pub mod allocator;
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
pub mod vocab;
