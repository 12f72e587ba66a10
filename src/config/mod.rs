//! Typed engine settings from `config/bankml.yaml`. Unknown keys are errors; every error
//! names the file, line and column (serde-saphyr shows the offending line too).

pub mod jobs;

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub data: DataConfig,
    pub ingest: IngestConfig,
    pub cleaning: CleaningConfig,
    pub features: FeatureConfig,
    pub models: ModelsConfig,
    pub daemon: DaemonConfig,
    pub alerting: AlertingConfig,
}

/// Where alerts go. Secrets (webhook URLs, SMTP passwords) are named by environment variable,
/// never written here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Links in notifications point here (`<base>/api/v1/reports/...`).
    pub report_base_url: String,
    /// Receivers by name; rules name them.
    pub receivers: std::collections::BTreeMap<String, Receiver>,
    /// Longest wait between delivery attempts of one notification.
    pub max_backoff: String,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            report_base_url: "http://127.0.0.1:8001".into(),
            receivers: Default::default(),
            max_backoff: "10m".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP, for a local relay.
    None,
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Receiver {
    /// A Slack incoming webhook; its URL is a secret, read from `webhook_url_env`.
    Slack { webhook_url_env: String },
    Email {
        host: String,
        #[serde(default = "smtp_port")]
        port: u16,
        #[serde(default)]
        security: SmtpSecurity,
        username_env: Option<String>,
        password_env: Option<String>,
        from: String,
        to: Vec<String>,
    },
    /// A generic JSON webhook: `url`, or `url_env` when the URL carries a secret.
    Webhook {
        url: Option<String>,
        url_env: Option<String>,
    },
    /// Prometheus Alertmanager's API (`<url>/api/v2/alerts`).
    Alertmanager { url: String },
}

fn smtp_port() -> u16 {
    587
}

/// `bankml daemon`: where it listens, how it authenticates, how it starts and stops.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// HTTP address for /metrics, health and the API.
    pub listen: String,
    /// Name of the environment variable holding the API token (the token itself never
    /// appears in YAML). Unset or empty variable: the protected endpoints answer 401 to all.
    pub api_token_env: String,
    /// How long a running job gets to stop after SIGTERM (shutdown, timeout, replacement)
    /// before it is killed.
    pub shutdown_grace: String,
    /// How often job and rule files are checked for changes (hot reload).
    pub reload_poll: String,
    /// First start with no snapshots: generate a demo bank of this many clients (0 = never),
    /// train the first champions and run a first benchmark.
    pub bootstrap_clients: usize,
    pub bootstrap_seed: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: "127.0.0.1:8001".into(),
            api_token_env: "BANKML_API_TOKEN".into(),
            shutdown_grace: "30s".into(),
            reload_poll: "2s".into(),
            bootstrap_clients: 20_000,
            bootstrap_seed: 42,
        }
    }
}

/// Model training settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// The model registry.
    pub dir: PathBuf,
    /// XGBoost settings shared by the churn, manager and agency models.
    pub boosting: crate::models::boosted::BoostParams,
    pub churn: crate::models::churn::ChurnConfig,
    pub recommender: crate::models::recommender::RecommenderConfig,
    /// k of the k-fold cross-validation reported at training (manager and agency models;
    /// churn's runs in the weekly validation). 0 turns it off.
    pub cv_folds: usize,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: "data/models".into(),
            boosting: Default::default(),
            churn: Default::default(),
            recommender: Default::default(),
            cv_folds: 5,
        }
    }
}

/// Where data lives, relative to the working directory unless absolute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub raw_dir: PathBuf,
    pub processed_dir: PathBuf,
    pub scores_dir: PathBuf,
    /// One YAML file per scheduled job.
    pub jobs_dir: PathBuf,
    /// Alert rules (`rules.yaml`).
    pub alerts_dir: PathBuf,
    /// Run reports: `<job>/<run id>/report.json`.
    pub reports_dir: PathBuf,
    /// The run history (SQLite).
    pub history: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            raw_dir: "data/raw".into(),
            processed_dir: "data/processed".into(),
            scores_dir: "data/scores".into(),
            jobs_dir: "jobs".into(),
            alerts_dir: "alerts".into(),
            reports_dir: "reports".into(),
            history: "data/history.sqlite".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExtraColumns {
    Ignore,
    #[default]
    Warn,
    Error,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Per table, our column name → the name in the bank's export (e.g. `cli: client_id`).
    pub columns: HashMap<String, HashMap<String, String>>,
    /// What to do with columns we do not use.
    pub extra_columns: ExtraColumns,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleaningConfig {
    /// Balances and activity counts above this quantile (per product category for balances)
    /// are capped at it.
    pub cap_quantile: f64,
    /// A birth date giving an age outside this range is treated as missing.
    pub min_age_years: f64,
    pub max_age_years: f64,
}

impl Default for CleaningConfig {
    fn default() -> Self {
        CleaningConfig {
            cap_quantile: 0.999,
            min_age_years: 16.0,
            max_age_years: 110.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// A client churns when every product they hold closes within this many days.
    pub churn_horizon_days: i32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig { churn_horizon_days: 90 }
    }
}

impl DaemonConfig {
    pub fn grace(&self) -> std::time::Duration {
        jobs::parse_duration(&self.shutdown_grace).unwrap_or(std::time::Duration::from_secs(30))
    }

    pub fn poll(&self) -> std::time::Duration {
        jobs::parse_duration(&self.reload_poll).unwrap_or(std::time::Duration::from_secs(2))
    }
}

impl EngineConfig {
    /// Reads `path`; a missing file at the default location gives the defaults.
    pub fn load(path: &Path, must_exist: bool) -> Result<EngineConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(EngineConfig::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let config = parse_yaml::<EngineConfig>(&text, path)?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let c = &self.cleaning;
        if !(0.5..=1.0).contains(&c.cap_quantile) {
            errors.push(format!(
                "cleaning.cap_quantile must be between 0.5 and 1, got {}",
                c.cap_quantile
            ));
        }
        if c.min_age_years >= c.max_age_years {
            errors.push("cleaning.min_age_years must be below cleaning.max_age_years".to_string());
        }
        let b = &self.models.boosting;
        if b.rounds == 0 || b.max_depth == 0 {
            errors.push("models.boosting.rounds and max_depth must be at least 1".to_string());
        }
        if !(0.0..=1.0).contains(&b.subsample)
            || b.subsample == 0.0
            || !(0.0..=1.0).contains(&b.colsample_bytree)
            || b.colsample_bytree == 0.0
        {
            errors.push("models.boosting.subsample and colsample_bytree must be within (0, 1]".to_string());
        }
        if b.learning_rate <= 0.0 {
            errors.push("models.boosting.learning_rate must be positive".to_string());
        }
        let churn = &self.models.churn;
        if !(churn.medium_risk < churn.high_risk && churn.medium_risk > 0.0 && churn.high_risk <= 1.0) {
            errors.push("models.churn: need 0 < medium_risk < high_risk ≤ 1".to_string());
        }
        let r = &self.models.recommender;
        if r.k == 0 || r.holdout_months <= 0 || r.popularity_months <= 0 || r.svd_components == 0 {
            errors.push(
                "models.recommender: k, holdout_months, popularity_months and svd_components must be at least 1"
                    .to_string(),
            );
        }
        if self.models.cv_folds == 1 {
            errors.push("models.cv_folds must be 0 (off) or at least 2".to_string());
        }
        let d = &self.daemon;
        if d.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(format!(
                "daemon.listen: \"{}\" is not an address like 127.0.0.1:8001",
                d.listen
            ));
        }
        for (field, value) in [("shutdown_grace", &d.shutdown_grace), ("reload_poll", &d.reload_poll)] {
            if jobs::parse_duration(value).is_none() {
                errors.push(format!("daemon.{field}: \"{value}\" is not a duration (e.g. 30s, 2m)"));
            }
        }
        if d.api_token_env.is_empty() || !d.api_token_env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(format!(
                "daemon.api_token_env: \"{}\" is not an environment variable name",
                d.api_token_env
            ));
        }
        if jobs::parse_duration(&self.alerting.max_backoff).is_none() {
            errors.push(format!(
                "alerting.max_backoff: \"{}\" is not a duration",
                self.alerting.max_backoff
            ));
        }
        for (name, receiver) in &self.alerting.receivers {
            match receiver {
                Receiver::Email { from, to, .. } => {
                    if !from.contains('@') || to.is_empty() || to.iter().any(|t| !t.contains('@')) {
                        errors.push(format!(
                            "alerting.receivers.{name}: email needs a from address and at least one to address"
                        ));
                    }
                }
                Receiver::Webhook { url, url_env } => {
                    if url.is_some() == url_env.is_some() {
                        errors.push(format!("alerting.receivers.{name}: give either url or url_env"));
                    }
                }
                Receiver::Alertmanager { url } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        errors.push(format!(
                            "alerting.receivers.{name}: url must start with http:// or https://"
                        ));
                    }
                }
                Receiver::Slack { .. } => {}
            }
        }
        if self.features.churn_horizon_days <= 0 {
            errors.push("features.churn_horizon_days must be positive".to_string());
        }
        for (table, mapping) in &self.ingest.columns {
            match crate::data::schema::Table::from_name(table) {
                None => errors.push(format!("ingest.columns: unknown table \"{table}\"")),
                Some(t) => {
                    for ours in mapping.keys() {
                        if !t.columns().iter().any(|c| c.name == ours) {
                            let names: Vec<&str> = t.columns().iter().map(|c| c.name).collect();
                            errors.push(format!(
                                "ingest.columns.{table}: unknown column \"{ours}\" (known: {})",
                                names.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                path: path.into(),
                message: errors.join("; "),
            })
        }
    }
}

/// `file:line:column` of a value read from YAML, for messages that point at it.
pub fn place(path: &Path, spanned: &serde_saphyr::Spanned<String>) -> String {
    format!(
        "{}:{}:{}",
        path.display(),
        spanned.referenced.line(),
        spanned.referenced.column()
    )
}

/// Parses a file that reports its problems as a list (job files, alert rules): a YAML error
/// (it names its line and column) becomes the list's one entry.
pub fn parse_yaml_listed<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, Vec<String>> {
    serde_saphyr::from_str(text).map_err(|e| {
        vec![format!(
            "{}: {}",
            path.display(),
            e.to_string().trim_start_matches("error: ")
        )]
    })
}

pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_its_line() {
        let text = "data:\n  raw_dir: x\ncleaning:\n  cap_quantil: 0.99\n";
        let err = parse_yaml::<EngineConfig>(text, Path::new("bankml.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cap_quantil"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn mapping_must_name_known_columns() {
        let text = "ingest:\n  columns:\n    clients:\n      cli: client_id\n      clie: x\n";
        let config: EngineConfig = parse_yaml(text, Path::new("b.yaml")).unwrap();
        let err = config.check(Path::new("b.yaml")).unwrap_err().to_string();
        assert!(err.contains("unknown column \"clie\""), "{err}");
        assert!(!err.contains("\"cli\""), "{err}");
    }
}
