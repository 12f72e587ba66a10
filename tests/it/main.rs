//! bankml's integration tests: one test binary (so polars and XGBoost are linked once, not
//! once per file), one module per area. Each drives the `bankml` binary, the daemon over HTTP
//! or the library as a user would, with real peers where users have them.

mod alerts;
mod arrows;
mod business;
mod common;
mod corpus;
mod crash;
mod daemon;
mod disk;
mod distributed;
mod evaluate;
mod features;
mod generate;
mod ingest_errors;
mod install;
mod jobs;
mod metrics_reference;
mod models;
mod prometheus;
mod scenarios;
mod scheduler;
mod serving;
mod validate_config;
