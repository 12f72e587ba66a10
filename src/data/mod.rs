//! Bank data: the synthetic bank, reading exports, validation, cleaning and features.
//! Knows no model.

pub mod buckets;
pub mod campaign;
pub mod clean;
pub mod client_rows;
pub mod contacts;
pub mod date;
pub mod features;
pub mod format;
pub mod grouping;
pub mod history;
pub mod problem;
pub mod products;
pub mod schema;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod synth;
pub mod table;
pub mod validate;
pub mod values;

/// The engine configuration with the ingestion checks only `data` can make (the column
/// mapping names our tables and columns): what every command loads.
pub fn load_config(
    path: &std::path::Path,
    must_exist: bool,
) -> Result<crate::config::EngineConfig, crate::config::ConfigError> {
    let config = crate::config::EngineConfig::load(path, must_exist)?;
    crate::config::refuse(path, schema::check_mapping(&config.ingest))?;
    Ok(config)
}
