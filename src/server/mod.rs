//! The HTTP side of the daemon (axum): `/metrics`, `/healthz`, `/readyz`, and `/api/v1/…` —
//! runs, reports, triggering and reloading (Bearer token), and the prediction API.
//!
//! Errors are JSON `{"error": {"code", "message", "field"}}`: 401 without the token, 404 for
//! unknown ids or jobs, 409 when a job is already running, 422 for bad JSON or fields (the
//! field named), 503 while models or data are missing.

mod openapi;
pub mod serving;

use crate::config::EngineConfig;
use crate::engine::history::RunHistory;
use crate::engine::scheduler::{Command, TriggerError};
use crate::models::registry::Registry;
use crate::telemetry::Telemetry;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use serving::{Refusal, Serving, ServingKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Reloads job definitions; `Ok(number of jobs)` or every problem found.
pub trait Reloader: Send + Sync + 'static {
    fn reload(&self) -> Result<usize, Vec<String>>;
}

pub struct AppState {
    pub config: Arc<EngineConfig>,
    pub telemetry: Arc<Telemetry>,
    pub history: Arc<RunHistory>,
    pub commands: mpsc::Sender<Command>,
    /// The API token (from the environment variable named in the config); `None`: unset.
    pub token: Option<String>,
    /// Set once the first start's preparation (data, champions, first benchmark) is done.
    pub ready: Arc<AtomicBool>,
    pub reloader: Arc<dyn Reloader>,
    pub alerting: Arc<crate::alerts::Alerting>,
    /// Boosters are used one request at a time (they are not `Sync`); starts empty.
    pub serving: Mutex<Option<Serving>>,
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/reports/latest", get(latest_report))
        .route("/api/v1/jobs/{name}/run", post(trigger))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/predict/churn", post(predict_churn))
        .route("/api/v1/predict/manager-performance", post(predict_manager))
        .route("/api/v1/predict/agency-performance", post(predict_agency))
        .route("/api/v1/recommend/products/{client_id}", get(recommend))
        .route("/api/v1/predict/all-managers", get(all_managers))
        .route("/api/v1/predict/all-agencies", get(all_agencies))
        .route("/api/v1/predict/all-clients-churn", get(all_clients))
        .route("/api/v1/analytics/summary", get(summary))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/silences", post(silence))
        .route("/reports/{job}/{run}/{file}", get(report_file))
        .fallback(not_found)
        .with_state(state)
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_request",
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::NoModel(model) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                format!("no {model} champion yet: train one (bankml train) or wait for the retraining"),
            ),
            Refusal::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            Refusal::Invalid { field, message } => ApiError::invalid(field, message),
            Refusal::Internal(message) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint (GET /api/v1/openapi.json lists them)",
    )
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let Some(expected) = state.token.as_deref() else {
        return Err(unauthorized(&format!(
            "this endpoint needs a token, and none is configured: set the environment variable {} before starting the daemon",
            state.config.daemon.api_token_env
        )));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("missing header: Authorization: Bearer <token>"))?;
    if same(given.trim().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized("wrong token"))
    }
}

/// Parses a JSON body; a wrong or missing field is named (`features.age`, `client_id`).
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("", "the request needs a JSON body"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." { String::new() } else { path };
        let field = if field.is_empty() {
            // serde names a missing or unknown field only in its message: take it from there.
            let message = inner.to_string();
            message.split('`').nth(1).unwrap_or("").to_string()
        } else {
            field
        };
        ApiError::invalid(field, format!("invalid JSON: {inner}"))
    })
}

async fn metrics(State(state): State<Shared>) -> Response {
    let config = state.config.clone();
    let champions = tokio::task::spawn_blocking(move || champions(&config))
        .await
        .unwrap_or_default();
    state.telemetry.models(&champions);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.telemetry.render(),
    )
        .into_response()
}

/// (model, champion version, its training time) of every model with a champion.
fn champions(config: &EngineConfig) -> Vec<(String, u32, String)> {
    let registry = Registry::new(&config.models.dir);
    registry
        .champions()
        .into_iter()
        .filter_map(|(model, version)| {
            let version = version?;
            let meta: Value = std::fs::read(registry.version_dir(&model, version).join("meta.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let trained = meta["created_at"].as_str().unwrap_or("").to_string();
            Some((model, version, trained))
        })
        .collect()
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<Shared>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "starting", "reason": "preparing data and first models" })),
        )
            .into_response();
    }
    let config = state.config.clone();
    let champions = tokio::task::spawn_blocking(move || champions(&config))
        .await
        .unwrap_or_default();
    if champions.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "not_ready", "reason": "no champion model yet" })),
        )
            .into_response();
    }
    axum::Json(json!({ "status": "ready", "champions": champions.len() })).into_response()
}

async fn openapi_document() -> Response {
    axum::Json(openapi::document()).into_response()
}

async fn jobs(State(state): State<Shared>) -> ApiResult {
    let (tx, rx) = oneshot::channel();
    if state.commands.send(Command::Describe(tx)).await.is_err() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the scheduler is not running",
        ));
    }
    let statuses = rx.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the scheduler is not running",
        )
    })?;
    ok(json!({ "jobs": statuses }))
}

fn query_number(query: &HashMap<String, String>, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                name,
                format!("expected a whole number from 1 to {max}, got \"{text}\""),
            )),
        },
    }
}

async fn runs(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> ApiResult {
    let last = query_number(&query, "last", 50, 10_000)?;
    let job = query.get("job").cloned();
    let history = state.history.clone();
    let runs = tokio::task::spawn_blocking(move || history.list(job.as_deref(), last))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "history", e.to_string()))?;
    ok(json!({ "runs": runs }))
}

async fn latest_report(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> ApiResult {
    let job = query
        .get("job")
        .cloned()
        .ok_or_else(|| ApiError::invalid("job", "the query parameter job is required (e.g. ?job=daily-benchmark)"))?;
    let history = state.history.clone();
    let name = job.clone();
    let path = tokio::task::spawn_blocking(move || history.latest_report(&name))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "history", e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no successful run of {job} yet"),
            )
        })?;
    let report = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{}: {e}", path.display())))?;
    let value: Value = serde_json::from_slice(&report).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{}: {e}", path.display()),
        )
    })?;
    ok(json!({ "path": path, "report": value }))
}

async fn trigger(State(state): State<Shared>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    authorize(&state, &headers)?;
    if !state.ready.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the daemon is still preparing its first models",
        ));
    }
    let (reply, rx) = oneshot::channel();
    let stopping = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the scheduler is not running",
        )
    };
    state
        .commands
        .send(Command::Trigger {
            job: name.clone(),
            reply,
        })
        .await
        .map_err(|_| stopping())?;
    match rx.await.map_err(|_| stopping())? {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({ "job": name, "status": "started" })),
        )
            .into_response()),
        Err(TriggerError::UnknownJob) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no job named {name} (GET /api/v1/jobs lists them)"),
        )),
        Err(TriggerError::AlreadyRunning) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_running",
            format!("{name} is running now"),
        )),
    }
}

async fn reload(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    authorize(&state, &headers)?;
    let reloader = state.reloader.clone();
    match tokio::task::spawn_blocking(move || reloader.reload()).await {
        Ok(Ok(jobs)) => ok(json!({ "status": "reloaded", "jobs": jobs })),
        Ok(Err(errors)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "error": { "code": "invalid_config", "message": "the running configuration stays", "problems": errors }
            })),
        )
            .into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )),
    }
}

/// Answers from the serving state of the current champions and latest snapshot, rebuilt when
/// they change.
async fn with_serving<T: serde::Serialize>(
    state: &AppState,
    answer: impl FnOnce(&Serving) -> Result<T, ApiError>,
) -> ApiResult {
    let config = state.config.clone();
    let key = tokio::task::spawn_blocking(move || ServingKey::current(&config))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let mut cached = state.serving.lock().await;
    if cached.as_ref().is_none_or(|s| s.key != key) {
        let config = state.config.clone();
        let loaded = tokio::task::spawn_blocking(move || Serving::load(&config))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
            .map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "data_unavailable",
                    format!("cannot load models and the latest snapshot: {e}"),
                )
            })?;
        *cached = Some(loaded);
    }
    match cached.as_ref() {
        Some(serving) => ok(serde_json::to_value(answer(serving)?).unwrap_or_default()),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "data_unavailable",
            "no data",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChurnRequest {
    client_id: Option<i64>,
    features: Option<Map<String, Value>>,
}

async fn predict_churn(State(state): State<Shared>, body: Bytes) -> ApiResult {
    let request: ChurnRequest = parse_body(&body)?;
    with_serving(&state, |serving| match (request.client_id, &request.features) {
        (Some(id), None) => Ok(serving.churn_of(id)?),
        (None, Some(features)) => Ok(serving.churn_of_features(features)?),
        _ => Err(ApiError::invalid("client_id", "give either client_id or features")),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManagerRequest {
    manager_id: Option<String>,
    features: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyRequest {
    agency_id: Option<String>,
    features: Option<Map<String, Value>>,
}

async fn predict_scores(
    state: &AppState,
    model: &'static str,
    id_field: &str,
    id: Option<String>,
    features: Option<Map<String, Value>>,
) -> ApiResult {
    with_serving(state, |serving| {
        let prediction = match (id, &features) {
            (Some(id), None) => serving.score_of(model, &id)?,
            (None, Some(features)) => serving.score_of_features(model, features)?,
            _ => {
                return Err(ApiError::invalid(
                    id_field,
                    format!("give either {id_field} or features"),
                ));
            }
        };
        let mut value = serde_json::to_value(&prediction).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            let id = map.remove("id").unwrap_or(Value::Null);
            map.insert(id_field.to_string(), id);
        }
        Ok(value)
    })
    .await
}

async fn predict_manager(State(state): State<Shared>, body: Bytes) -> ApiResult {
    let request: ManagerRequest = parse_body(&body)?;
    predict_scores(&state, "manager", "manager_id", request.manager_id, request.features).await
}

async fn predict_agency(State(state): State<Shared>, body: Bytes) -> ApiResult {
    let request: AgencyRequest = parse_body(&body)?;
    predict_scores(&state, "agency", "agency_id", request.agency_id, request.features).await
}

async fn recommend(
    State(state): State<Shared>,
    Path(client_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let id: i64 = client_id
        .parse()
        .map_err(|_| ApiError::invalid("client_id", format!("expected a whole number, got \"{client_id}\"")))?;
    with_serving(&state, |serving| {
        let n = query_number(&query, "n_recommendations", serving.default_recommendations(), 50)?;
        Ok(serving.recommend(id, n)?)
    })
    .await
}

async fn all_managers(State(state): State<Shared>) -> ApiResult {
    with_serving(&state, |s| Ok(s.all_scores("manager")?)).await
}

async fn all_agencies(State(state): State<Shared>) -> ApiResult {
    with_serving(&state, |s| Ok(s.all_scores("agency")?)).await
}

async fn all_clients(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> ApiResult {
    let page = query_number(&query, "page", 1, usize::MAX / 2)?;
    let page_size = query_number(&query, "page_size", 100, 1000)?;
    let risk = match query.get("risk").map(String::as_str) {
        None => None,
        Some(r @ ("Low" | "Medium" | "High")) => Some(r),
        Some(other) => {
            return Err(ApiError::invalid(
                "risk",
                format!("expected Low, Medium or High, got \"{other}\""),
            ));
        }
    };
    with_serving(&state, |s| Ok(s.all_clients(page, page_size, risk)?)).await
}

async fn summary(State(state): State<Shared>) -> ApiResult {
    with_serving(&state, |s| Ok(s.summary())).await
}

async fn alerts(State(state): State<Shared>) -> ApiResult {
    let store = state.alerting.store.clone();
    let (alerts, silences) = tokio::task::spawn_blocking(move || {
        let now = chrono::Utc::now();
        (store.list(now), store.silences(now))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let failed =
        |e: crate::alerts::store::StoreError| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string());
    ok(json!({ "alerts": alerts.map_err(failed)?, "silences": silences.map_err(failed)? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    rule: String,
    #[serde(rename = "for")]
    duration: String,
    comment: Option<String>,
}

async fn silence(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> ApiResult {
    authorize(&state, &headers)?;
    let request: SilenceRequest = parse_body(&body)?;
    let duration = crate::config::jobs::parse_duration(&request.duration).ok_or_else(|| {
        ApiError::invalid(
            "for",
            format!("\"{}\" is not a duration (e.g. 2h, 30m)", request.duration),
        )
    })?;
    let now = chrono::Utc::now();
    let until = now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(1));
    let id = state
        .alerting
        .store
        .silence(&request.rule, until, now, request.comment.as_deref())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "rule": request.rule, "until": crate::engine::history::iso(until) })),
    )
        .into_response())
}

/// A run's report files (`report.html`, `report.json`, CSV tables), as the links in
/// notifications point to them.
async fn report_file(State(state): State<Shared>, Path((job, run, file)): Path<(String, String, String)>) -> ApiResult {
    let safe = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !s.starts_with('.')
    };
    if !safe(&job) || !run.chars().all(|c| c.is_ascii_digit()) || !safe(&file) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such report file"));
    }
    let path = state.config.data.reports_dir.join(&job).join(&run).join(&file);
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no report file {job}/{run}/{file}"),
        )
    })?;
    let kind = match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}
