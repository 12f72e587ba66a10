//! Typed engine settings from `config/bankml.yaml`. Unknown keys are errors; every error
//! names the file, line and column (serde-saphyr shows the offending line too).

pub mod fields;
pub mod jobs;
pub mod models;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A problem located in the file starts `line:column: `; others name only the file.
    #[error("{}", .problems.iter().map(|p| {
        let located = p.starts_with(|c: char| c.is_ascii_digit());
        format!("{}{}{p}", path.display(), if located { ":" } else { ": " })
    }).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, problems: Vec<String> },
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
    pub campaigns: CampaignsConfig,
}

/// The campaign lists the scoring job writes beside the scores, and how their clients are
/// split into arms (by a hash of client and campaign, so the same client lands in the same
/// arm wherever the split is made).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignsConfig {
    /// Write the lists (`data/scores/<date>/campaigns/`).
    pub lists: bool,
    /// Share of current clients on the retention list (the most likely to leave).
    pub retention_share: f64,
    /// Share of current clients on the offer list (those the recommender is surest of),
    /// each offered their first recommendation.
    pub offer_share: f64,
    /// Random share of each list held out as the uncontacted control.
    pub control_share: f64,
    /// Share of each list treated as a challenger would (0: no challenger being tried).
    pub challenger_share: f64,
    /// Share of the offer list offered the most popular product they lack instead.
    pub baseline_share: f64,
    /// Per product, the clients most likely to take it (`campaigns/targets.parquet`): the
    /// seed's "which clients to target for specific products". 0 writes none.
    pub targets_per_product: usize,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            lists: true,
            retention_share: 0.05,
            offer_share: 0.10,
            control_share: 0.10,
            challenger_share: 0.0,
            baseline_share: 0.20,
            targets_per_product: 1000,
        }
    }
}

impl CampaignsConfig {
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("retention_share", self.retention_share),
            ("offer_share", self.offer_share),
            ("control_share", self.control_share),
            ("challenger_share", self.challenger_share),
            ("baseline_share", self.baseline_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("campaigns.{name} must be between 0 and 1, got {value}"));
            }
        }
        let offer_arms = self.control_share + self.challenger_share + self.baseline_share;
        if offer_arms > 1.0 {
            problems.push(format!(
                "campaigns.control_share + challenger_share + baseline_share must not exceed 1, got {offer_arms}"
            ));
        }
        problems
    }
}

/// Where alerts go. Secrets (webhook URLs, SMTP passwords) are named by environment variable,
/// never written here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Links in notifications point here (`<base>/api/v1/reports/...`). Unset: the address the
    /// daemon listens on (`daemon.listen`, or `--listen`), so a moved port moves the links too.
    pub report_base_url: Option<String>,
    /// Receivers by name; rules name them.
    pub receivers: std::collections::BTreeMap<String, Receiver>,
    /// Longest wait between delivery attempts of one notification.
    #[serde(deserialize_with = "crate::vocab::duration::deserialize")]
    pub max_backoff: Duration,
    /// How often every firing alert is sent to Alertmanager again. Alertmanager forgets an
    /// alert at its `endsAt` (four of these intervals ahead) unless its client re-sends it.
    #[serde(deserialize_with = "crate::vocab::duration::deserialize")]
    pub alertmanager_resend: Duration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            report_base_url: None,
            receivers: Default::default(),
            max_backoff: Duration::from_secs(600),
            alertmanager_resend: Duration::from_secs(60),
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
    pub listen: SocketAddr,
    /// Name of the environment variable holding the API token (the token itself never
    /// appears in YAML). Unset or empty variable: the protected endpoints answer 401 to all.
    pub api_token_env: String,
    /// How long a running job gets to stop after SIGTERM (shutdown, timeout, replacement)
    /// before it is killed.
    #[serde(deserialize_with = "crate::vocab::duration::deserialize")]
    pub shutdown_grace: Duration,
    /// How often job and rule files are checked for changes (hot reload).
    #[serde(deserialize_with = "crate::vocab::duration::deserialize")]
    pub reload_poll: Duration,
    /// First start with no snapshots: generate a demo bank of this many clients (0 = never),
    /// train the first champions and run a first benchmark.
    pub bootstrap_clients: usize,
    pub bootstrap_seed: u64,
    /// What the HTTP server tolerates from a client.
    pub http: HttpLimits,
}

/// Limits that keep a slow, large or crowded client from holding the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// A client must send a request's headers within this time, and a kept-alive connection
    /// idle this long is closed.
    #[serde(deserialize_with = "crate::vocab::duration::deserialize")]
    pub header_timeout: Duration,
    /// Largest request head (request line and headers) accepted; more is answered 431.
    pub max_header_bytes: usize,
    /// Most headers in one request; more is answered 431.
    pub max_headers: usize,
    /// Largest request body; more is answered 413.
    pub max_body_bytes: usize,
    /// Requests handled at once (health and metrics apart); beyond, 503 with Retry-After.
    pub max_concurrent_requests: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
            max_concurrent_requests: 512,
        }
    }
}

impl HttpLimits {
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.header_timeout.is_zero() {
            problems.push("daemon.http.header_timeout must be longer than 0s".to_string());
        }
        // A browser's request head alone is ~1 KiB.
        if self.max_header_bytes < 1024 {
            problems.push(format!(
                "daemon.http.max_header_bytes must be at least 1024 (got {})",
                self.max_header_bytes
            ));
        }
        for (name, value) in [
            ("max_headers", self.max_headers),
            ("max_body_bytes", self.max_body_bytes),
            ("max_concurrent_requests", self.max_concurrent_requests),
        ] {
            if value == 0 {
                problems.push(format!("daemon.http.{name} must be at least 1"));
            }
        }
        problems
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            api_token_env: "BANKML_API_TOKEN".into(),
            shutdown_grace: Duration::from_secs(30),
            reload_poll: Duration::from_secs(2),
            bootstrap_clients: 30_000,
            bootstrap_seed: 42,
            http: HttpLimits::default(),
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
    pub boosting: models::BoostParams,
    pub churn: models::ChurnConfig,
    pub recommender: models::RecommenderConfig,
    /// k of the k-fold cross-validation reported at training (manager and agency models;
    /// churn's runs in the weekly validation). 0 turns it off.
    pub cv_folds: usize,
    /// The drift reference: statistics from this many of the champion's most recent training
    /// snapshots (with complete history), and its learned thresholds from their month-to-month
    /// variability.
    pub reference_snapshots: usize,
    /// Retention: versions kept besides the champion, the challenger and the previous
    /// champion; the retraining prunes the rest (`bankml models prune` by hand).
    pub keep_versions: usize,
    /// The performance score (0–100) expected of every manager and agency: below it, scoring
    /// and the API name what pulls the score down and the support it calls for.
    pub performance_objective: f64,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: "data/models".into(),
            boosting: Default::default(),
            churn: Default::default(),
            recommender: Default::default(),
            cv_folds: 5,
            reference_snapshots: 6,
            keep_versions: 5,
            performance_objective: 60.0,
        }
    }
}

/// The project a config at `path` belongs to, when that is not the working directory: a
/// config in a project's `config/` folder (`PROJECT/config/bankml.yaml`, as bankml ships it)
/// names folders relative to `PROJECT`, wherever bankml runs from. `None` when the project is
/// the working directory or the config sits elsewhere (`/etc/bankml/bankml.yaml`): its folders
/// stay relative to the working directory.
pub fn project_root(path: &Path) -> Option<PathBuf> {
    let folder = path.parent()?;
    if folder.file_name()? != "config" {
        return None;
    }
    let root = folder
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (root_real, here) = (std::fs::canonicalize(root).ok()?, std::env::current_dir().ok()?);
    let here = std::fs::canonicalize(here).ok()?;
    (root_real != here).then_some(root_real)
}

/// The config in `text` (read from `path`), its folders placed in the project holding it.
fn parse_in_project(text: &str, path: &Path) -> Result<EngineConfig, ConfigError> {
    let mut config = parse_yaml::<EngineConfig>(text, path)?;
    if let Some(root) = project_root(path) {
        config.rebase(&root);
    }
    Ok(config)
}

/// Where data lives: relative to the project holding the config (see [`project_root`]), else
/// to the working directory, unless absolute.
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

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExtraColumns {
    Ignore,
    #[default]
    Warn,
    Error,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Per table, our column name → the name in the bank's export (e.g. `cli: client_id`).
    pub columns: HashMap<String, HashMap<String, String>>,
    /// What to do with columns we do not use.
    pub extra_columns: ExtraColumns,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

impl EngineConfig {
    /// Reads `path`; a missing file at the default location gives the defaults.
    pub fn load(path: &Path, must_exist: bool) -> Result<EngineConfig, ConfigError> {
        let text = match crate::fsutil::read_text(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(EngineConfig::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let config = parse_in_project(&text, path)?;
        if let Err(ConfigError::Invalid { path, problems }) = config.check(path) {
            // Each problem at the line of the key it names.
            let problems = problems.into_iter().map(|p| locate(&text, p)).collect();
            return Err(ConfigError::Invalid { path, problems });
        }
        Ok(config)
    }

    /// The config as written, without its semantic checks: what `validate-config` reads the
    /// folders and receivers from when a check fails, so one wrong value does not cascade into
    /// false problems elsewhere (rules naming receivers "not defined"). `None` when it does not
    /// parse.
    pub fn load_unchecked(path: &Path) -> Option<EngineConfig> {
        parse_in_project(&crate::fsutil::read_text(path).ok()?, path).ok()
    }

    /// Joins every relative folder the config names to `root`.
    pub fn rebase(&mut self, root: &Path) {
        let data = &mut self.data;
        for folder in [
            &mut data.raw_dir,
            &mut data.processed_dir,
            &mut data.scores_dir,
            &mut data.jobs_dir,
            &mut data.alerts_dir,
            &mut data.reports_dir,
            &mut data.history,
            &mut self.models.dir,
        ] {
            if folder.is_relative() {
                *folder = root.join(&*folder);
            }
        }
    }

    /// Every problem of every section (vector's shape: one function per section, all run).
    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let problems: Vec<String> = [
            self.cleaning.check(),
            self.models.check(),
            self.daemon.check(),
            self.alerting.check(),
            self.features.check(),
            self.campaigns.check(),
        ]
        .concat();
        refuse(path, problems)
    }
}

impl CleaningConfig {
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(0.5..=1.0).contains(&self.cap_quantile) {
            problems.push(format!(
                "cleaning.cap_quantile must be between 0.5 and 1, got {}",
                self.cap_quantile
            ));
        }
        if self.min_age_years >= self.max_age_years {
            problems.push("cleaning.min_age_years must be below cleaning.max_age_years".to_string());
        }
        problems
    }
}

impl ModelsConfig {
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let b = &self.boosting;
        if b.rounds == 0 || b.max_depth == 0 {
            problems.push("models.boosting.rounds and max_depth must be at least 1".to_string());
        }
        if !(0.0..=100.0).contains(&self.performance_objective) {
            problems.push(format!(
                "models.performance_objective must be a score between 0 and 100, got {}",
                self.performance_objective
            ));
        }
        let fraction = |v: f64| v > 0.0 && v <= 1.0;
        if !fraction(b.subsample) || !fraction(b.colsample_bytree) {
            problems.push("models.boosting.subsample and colsample_bytree must be within (0, 1]".to_string());
        }
        if b.learning_rate <= 0.0 {
            problems.push("models.boosting.learning_rate must be positive".to_string());
        }

        let churn = &self.churn;
        if !(churn.medium_risk < churn.high_risk && churn.medium_risk > 0.0 && churn.high_risk <= 1.0) {
            problems.push("models.churn: need 0 < medium_risk < high_risk ≤ 1".to_string());
        }
        let r = &self.recommender;
        if r.k == 0 || r.holdout_months <= 0 || r.popularity_months <= 0 || r.svd_components == 0 {
            problems.push(
                "models.recommender: k, holdout_months, popularity_months and svd_components must be at least 1"
                    .to_string(),
            );
        }
        if self.reference_snapshots == 0 {
            problems.push("models.reference_snapshots must be at least 1".to_string());
        }
        if self.cv_folds == 1 {
            problems.push("models.cv_folds must be 0 (off) or at least 2".to_string());
        }
        problems
    }
}

/// Whether `name` can be an environment variable's name (`BANKML_API_TOKEN`).
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Longer than this, a `*_env` value is no variable name anyone writes.
const MAX_ENV_NAME: usize = 128;

/// The problem with `value` in a `*_env` field (which names the environment variable holding a
/// secret), if any. The value itself is never repeated: written there by mistake, it may be
/// the secret (a webhook URL, a password) and this message goes to terminals and logs.
pub fn env_name_problem(field: &str, value: &str) -> Option<String> {
    if is_env_name(value) && value.len() <= MAX_ENV_NAME {
        return None;
    }
    let looks_like = if value.contains("://") {
        " (it looks like a URL)"
    } else if value.contains('/') || value.contains('@') || value.contains(char::is_whitespace) {
        " (it looks like a value)"
    } else {
        ""
    };
    Some(format!(
        "{field}: expects the name of an environment variable (letters, digits and _, not starting with a digit, \
         at most {MAX_ENV_NAME} characters), and what is written there is not one{looks_like}; put the secret in \
         the environment and its name here (the value is not repeated in this message, in case it is the secret)"
    ))
}

impl DaemonConfig {
    fn check(&self) -> Vec<String> {
        env_name_problem("daemon.api_token_env", &self.api_token_env)
            .into_iter()
            .chain(self.http.check())
            .collect()
    }
}

impl EngineConfig {
    /// Where links in notifications point: `alerting.report_base_url`, or the daemon's own
    /// address (a wildcard address such as 0.0.0.0 reads as 127.0.0.1: set the URL people use).
    pub fn report_base_url(&self) -> String {
        if let Some(url) = &self.alerting.report_base_url {
            return url.trim_end_matches('/').to_string();
        }
        let mut address = self.daemon.listen;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}")
    }
}

impl AlertingConfig {
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.report_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push("alerting.report_base_url: must start with http:// or https://".to_string());
        }
        for (name, receiver) in &self.receivers {
            match receiver {
                Receiver::Email { from, to, .. } => {
                    if !from.contains('@') || to.is_empty() || to.iter().any(|t| !t.contains('@')) {
                        problems.push(format!(
                            "alerting.receivers.{name}: email needs a from address and at least one to address"
                        ));
                    }
                }
                Receiver::Webhook { url, url_env } => {
                    if url.is_some() == url_env.is_some() {
                        problems.push(format!("alerting.receivers.{name}: give either url or url_env"));
                    }
                }
                Receiver::Alertmanager { url } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        problems.push(format!(
                            "alerting.receivers.{name}: url must start with http:// or https://"
                        ));
                    }
                }
                Receiver::Slack { webhook_url_env } => {
                    problems.extend(env_name_problem(
                        &format!("alerting.receivers.{name}.webhook_url_env"),
                        webhook_url_env,
                    ));
                }
            }
            let optional_names: Vec<(&str, &Option<String>)> = match receiver {
                Receiver::Email {
                    username_env,
                    password_env,
                    ..
                } => vec![("username_env", username_env), ("password_env", password_env)],
                Receiver::Webhook { url_env, .. } => vec![("url_env", url_env)],
                _ => Vec::new(),
            };
            for (field, value) in optional_names {
                if let Some(value) = value {
                    problems.extend(env_name_problem(&format!("alerting.receivers.{name}.{field}"), value));
                }
            }
        }
        problems
    }
}

impl FeatureConfig {
    fn check(&self) -> Vec<String> {
        if self.churn_horizon_days <= 0 {
            vec!["features.churn_horizon_days must be positive".to_string()]
        } else {
            Vec::new()
        }
    }
}

/// `problem`, which starts with the dotted key it is about (`cleaning.cap_quantile must …`),
/// prefixed with that key's `line:column` in `text` when the file writes it.
fn locate(text: &str, problem: String) -> String {
    let key: String = problem
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    match key_place(text, key.trim_end_matches('.')) {
        Some((line, column)) => format!("{line}:{column}: {problem}"),
        None => problem,
    }
}

/// Where the YAML `text` writes the dotted key `path` (`daemon.http.max_headers`): its line and
/// column, or its nearest written parent's when the key itself is not written (a default).
/// Block mappings by indentation, and a flow mapping (`slack: {type: slack, …}`) on one line.
fn key_place(text: &str, path: &str) -> Option<(usize, usize)> {
    let keys: Vec<&str> = path.split('.').filter(|k| !k.is_empty()).collect();
    let mut depth = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || depth >= keys.len() {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if parent_indent.is_some_and(|p| indent <= p) {
            break;
        }
        let key = keys[depth];
        let is_key = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'));
        if !is_key || (depth == 0 && indent > 0) {
            continue;
        }
        found = Some((number + 1, indent + 1));
        depth += 1;
        parent_indent = Some(indent);
        // The rest of the path inside a flow mapping on this same line.
        let mut from = indent + key.len();
        if !line[from..].contains('{') {
            continue;
        }
        while depth < keys.len() {
            let Some(at) = line[from..].find(&format!("{}:", keys[depth])) else {
                return found;
            };
            from += at;
            found = Some((number + 1, from + 1));
            depth += 1;
        }
    }
    found
}

/// `Ok` when there are no problems, else every one of them as [`ConfigError::Invalid`].
pub fn refuse(path: &Path, problems: Vec<String>) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            path: path.into(),
            problems,
        })
    }
}

/// `file:line:column` of a value read from YAML, for messages that point at it.
pub fn place<T>(path: &Path, spanned: &serde_saphyr::Spanned<T>) -> String {
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
    fn notification_links_follow_the_daemon_unless_a_url_is_set() {
        let config: EngineConfig = parse_yaml("daemon:\n  listen: 127.0.0.1:18001\n", Path::new("b.yaml")).unwrap();
        assert_eq!(config.report_base_url(), "http://127.0.0.1:18001");
        let wildcard: EngineConfig = parse_yaml("daemon:\n  listen: 0.0.0.0:9000\n", Path::new("b.yaml")).unwrap();
        assert_eq!(wildcard.report_base_url(), "http://127.0.0.1:9000");
        let set: EngineConfig = parse_yaml(
            "daemon:\n  listen: 0.0.0.0:9000\nalerting:\n  report_base_url: https://bankml.example.com/\n",
            Path::new("b.yaml"),
        )
        .unwrap();
        assert_eq!(set.report_base_url(), "https://bankml.example.com");
        let bad: EngineConfig = parse_yaml(
            "alerting:\n  report_base_url: bankml.example.com\n",
            Path::new("b.yaml"),
        )
        .unwrap();
        let err = bad.check(Path::new("b.yaml")).unwrap_err().to_string();
        assert!(err.contains("report_base_url: must start with http"), "{err}");
    }

    #[test]
    fn every_section_reports_its_problems_and_types_are_checked_where_they_are() {
        let text = "cleaning:\n  cap_quantile: 7\nmodels:\n  cv_folds: 1\nfeatures:\n  churn_horizon_days: 0\n";
        let config: EngineConfig = parse_yaml(text, Path::new("b.yaml")).unwrap();
        let err = config.check(Path::new("b.yaml")).unwrap_err().to_string();
        assert_eq!(err.lines().count(), 3, "{err}");
        assert!(err.lines().all(|l| l.starts_with("b.yaml: ")), "{err}");
        // Loaded from a file, each problem is at the line of the key it names.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bankml.yaml");
        std::fs::write(
            &file,
            format!("{text}alerting:\n  receivers:\n    slack: {{type: slack, webhook_url_env: \"a b\"}}\n"),
        )
        .unwrap();
        let err = EngineConfig::load(&file, true).unwrap_err().to_string();
        let shown = file.display().to_string();
        for expected in [
            format!("{shown}:2:3: cleaning.cap_quantile"),
            format!("{shown}:4:3: models.cv_folds"),
            format!("{shown}:6:3: features.churn_horizon_days"),
            format!("{shown}:9:26: alerting.receivers.slack.webhook_url_env"),
        ] {
            assert!(err.contains(&expected), "{expected} missing:\n{err}");
        }
        for (text, line) in [
            ("daemon:\n  listen: \"localhost:port\"\n", "line 2"),
            ("daemon:\n  shutdown_grace: soon\n", "line 2"),
            ("alerting:\n  max_backoff: 0s\n", "line 2"),
        ] {
            let err = parse_yaml::<EngineConfig>(text, Path::new("b.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(line), "{text}: {err}");
        }
        let config: EngineConfig = parse_yaml(
            "daemon:\n  shutdown_grace: 1m30s\n  listen: 0.0.0.0:9000\n",
            Path::new("b.yaml"),
        )
        .unwrap();
        assert_eq!(config.daemon.shutdown_grace, Duration::from_secs(90));
        assert_eq!(config.daemon.listen.port(), 9000);
    }

    #[test]
    fn a_secret_written_where_its_variable_name_belongs_is_refused_without_being_repeated() {
        let text = "daemon:\n  api_token_env: hunter2 hunter2\nalerting:\n  receivers:\n    slack: {type: slack, webhook_url_env: \"https://hooks.slack.com/services/T0/B0/XyZSeCrEt\"}\n    \
                    mail: {type: email, host: h, from: a@b.c, to: [d@e.f], password_env: \"pa55/word\"}\n    \
                    hook: {type: webhook, url_env: BANKML_HOOK}\n";
        let config: EngineConfig = parse_yaml(text, Path::new("b.yaml")).unwrap();
        let err = config.check(Path::new("b.yaml")).unwrap_err().to_string();
        for secret in ["hunter2", "XyZSeCrEt", "hooks.slack.com", "pa55"] {
            assert!(!err.contains(secret), "the value is repeated: {err}");
        }
        for field in [
            "daemon.api_token_env",
            "alerting.receivers.slack.webhook_url_env: expects the name of an environment variable",
            "alerting.receivers.mail.password_env",
        ] {
            assert!(err.contains(field), "{field} not named: {err}");
        }
        assert!(err.contains("(it looks like a URL)"), "{err}");
        assert!(!err.contains("receivers.hook"), "a variable name passes: {err}");
        assert!(env_name_problem("x", &"A".repeat(129)).is_some());
        assert!(env_name_problem("x", "BANKML_SLACK_WEBHOOK_URL").is_none());
    }
}
