//! The HTTP side of the daemon (axum): `/metrics`, `/healthz`, `/readyz`, and `/api/v1/…` —
//! runs, reports, triggering and reloading (Bearer token), alerts, and the prediction API —
//! and the console for people (`/`, `/console/…`, `/docs`, `/reports/`).
//! Handlers live in `routes/`, one file per resource; every error comes from the one table
//! in `error.rs`; the OpenAPI document is derived from the handlers' annotations and types
//! (`openapi.rs`), with each model's accepted features added from its champion.

mod console;
pub mod error;
pub mod extract;
mod openapi;
pub mod routes;
pub mod seed;
pub mod serving;

use crate::config::EngineConfig;
use crate::engine::history::RunHistory;
use crate::engine::scheduler::Command;
use crate::telemetry::Telemetry;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
pub use error::{ApiError, ErrorCode};
use serving::{Serving, ServingKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::{Mutex, mpsc};

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

pub type Shared = Arc<AppState>;
pub type ApiResult<T = axum::response::Response> = Result<T, ApiError>;

pub fn router(state: Shared) -> Router {
    use routes::{alerts, campaigns, health, jobs, predict, reports};
    let limits = state.config.daemon.http;
    let gate = Gate {
        in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent_requests)),
        max_body_bytes: limits.max_body_bytes,
    };
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        // The seed system's name for it.
        .route("/health", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/openapi.json", get(health::openapi_document))
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/runs", get(jobs::runs))
        .route("/api/v1/reports/latest", get(jobs::latest_report))
        .route("/api/v1/jobs/{name}/run", post(jobs::trigger))
        .route("/api/v1/reload", post(jobs::reload))
        .route("/api/v1/predict/churn", post(predict::churn))
        .route("/api/v1/predict/manager-performance", post(predict::manager))
        .route("/api/v1/predict/agency-performance", post(predict::agency))
        .route("/api/v1/recommend/products/{client_id}", get(predict::recommend))
        .route(
            "/api/v1/recommend/clients/{product_id}",
            get(predict::clients_for_product),
        )
        .route("/api/v1/campaigns", get(campaigns::list))
        .route("/api/v1/campaigns/{id}", get(campaigns::one))
        .route("/api/v1/predict/all-managers", get(predict::all_managers))
        .route("/api/v1/predict/all-agencies", get(predict::all_agencies))
        .route("/api/v1/predict/all-clients-churn", get(predict::all_clients))
        .route("/api/v1/analytics/summary", get(predict::summary))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/silences", post(alerts::silence))
        .route("/reports/{job}/{run}/{file}", get(reports::file))
        .merge(console::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(gate, admit))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// What every request passes before its handler: at most `max_concurrent_requests` at once.
#[derive(Clone)]
struct Gate {
    in_flight: Arc<tokio::sync::Semaphore>,
    max_body_bytes: usize,
}

/// Paths a monitor must reach however busy the API is.
const ALWAYS_ADMITTED: [&str; 4] = ["/metrics", "/healthz", "/health", "/readyz"];

/// A body only as JSON (415 otherwise), and a place among the requests in flight (503 with
/// `Retry-After` when there is none: a client told to come back, not queued without end).
async fn admit(
    axum::extract::State(gate): axum::extract::State<Gate>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = request.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length over the limit is refused before reading; a chunked body over it
    // stops at the limit (DefaultBodyLimit).
    if length.is_some_and(|n| n > gate.max_body_bytes as u64) {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the body is larger than {} bytes (daemon.http.max_body_bytes)",
                gate.max_body_bytes
            ),
        )
        .into_response();
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|n| n > 0);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if has_body && !json {
        return ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with the header Content-Type: application/json",
        )
        .into_response();
    }
    if ALWAYS_ADMITTED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_permit) = gate.in_flight.clone().try_acquire_owned() else {
        let mut response =
            ApiError::new(ErrorCode::Overloaded, "too many requests in flight; retry in a second").into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// An unknown address: a page for a browser (it asks for HTML), the error table's JSON for
/// everyone else.
async fn not_found(uri: axum::http::Uri, headers: HeaderMap) -> axum::response::Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser && !uri.path().starts_with("/api/") {
        return console::not_found_page(uri.path());
    }
    ApiError::new(
        ErrorCode::NotFound,
        "no such endpoint (GET /api/v1/openapi.json lists them)",
    )
    .into_response()
}

/// An endpoint asked with a method it does not take (axum adds the `Allow` header).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} does not take {method} (the Allow header lists what it takes)",
            uri.path()
        ),
    )
    .into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request carries the daemon's API token.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message);
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
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
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

/// A whole-number query parameter within `1..=max`, or `default` when absent.
pub fn query_number(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
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

/// Runs blocking work (SQLite, files) off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// Answers from the serving state of the current champions and latest snapshot, rebuilt when
/// they change.
pub async fn with_serving<T: serde::Serialize>(
    state: &AppState,
    answer: impl FnOnce(&Serving) -> Result<T, ApiError>,
) -> ApiResult {
    Ok(axum::Json(from_serving(state, answer).await?).into_response())
}

/// `answer` given the serving state (loaded, or reloaded if the champions or the latest
/// snapshot changed since), for callers that render it themselves (the console).
pub async fn from_serving<T>(
    state: &AppState,
    answer: impl FnOnce(&Serving) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let config = state.config.clone();
    let key = blocking(move || ServingKey::current(&config)).await?;
    let mut cached = state.serving.lock().await;
    if cached.as_ref().is_none_or(|s| s.key != key) {
        let config = state.config.clone();
        let loaded = blocking(move || Serving::load(&config)).await?.map_err(|e| {
            ApiError::new(
                ErrorCode::DataUnavailable,
                format!("cannot load models and the latest snapshot: {e}"),
            )
        })?;
        *cached = Some(loaded);
    }
    match cached.as_ref() {
        Some(serving) => answer(serving),
        None => Err(ApiError::new(ErrorCode::DataUnavailable, "no data")),
    }
}

use axum::response::IntoResponse;

#[cfg(test)]
mod tests {
    //! The router in process (`tower::ServiceExt::oneshot`): each error of the table comes
    //! back with its status and code, without starting a daemon.
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    struct NoReload;

    impl Reloader for NoReload {
        fn reload(&self) -> Result<usize, Vec<String>> {
            Err(vec!["jobs/x.yaml:1:1: nothing to reload here".into()])
        }
    }

    fn state(dir: &std::path::Path) -> Shared {
        state_with(dir, crate::config::HttpLimits::default())
    }

    fn state_with(dir: &std::path::Path, http: crate::config::HttpLimits) -> Shared {
        let mut config = EngineConfig::default();
        config.daemon.http = http;
        config.models.dir = dir.join("models");
        config.data.raw_dir = dir.join("raw");
        config.data.reports_dir = dir.join("reports");
        let history = Arc::new(RunHistory::open(&dir.join("history.sqlite")).unwrap());
        let store = Arc::new(crate::alerts::store::AlertStore::open(&dir.join("history.sqlite")).unwrap());
        let telemetry = Arc::new(Telemetry::new());
        // No scheduler reads the commands: its channel is closed.
        let (commands, _) = mpsc::channel(1);
        Arc::new(AppState {
            config: Arc::new(config),
            alerting: Arc::new(crate::alerts::Alerting::new(store, Vec::new(), telemetry.clone())),
            telemetry,
            history,
            commands,
            token: Some("secret".into()),
            ready: Arc::new(AtomicBool::new(true)),
            reloader: Arc::new(NoReload),
            serving: Default::default(),
        })
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn errors_come_from_the_table_with_their_status_and_code() {
        let dir = tempfile::tempdir().unwrap();
        let app = router(state(dir.path()));
        let (status, body) = call(&app, "GET", "/healthz", None, "").await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
        let (status, alias) = call(&app, "GET", "/health", None, "").await;
        assert_eq!(
            (status, alias),
            (StatusCode::OK, body),
            "the seed's /health answers as /healthz"
        );
        for (method, path, token, body, status, code) in [
            ("GET", "/no/such/page", None, "", 404, "not_found"),
            ("DELETE", "/api/v1/runs", None, "", 405, "method_not_allowed"),
            (
                "POST",
                "/api/v1/analytics/summary",
                None,
                "{}",
                405,
                "method_not_allowed",
            ),
            ("POST", "/api/v1/jobs/x/run", None, "", 401, "unauthorized"),
            ("POST", "/api/v1/jobs/x/run", Some("wrong"), "", 401, "unauthorized"),
            ("POST", "/api/v1/jobs/x/run", Some("secret"), "", 503, "stopping"),
            ("GET", "/api/v1/jobs", None, "", 503, "stopping"),
            ("POST", "/api/v1/reload", Some("secret"), "", 422, "invalid_config"),
            (
                "POST",
                "/api/v1/predict/churn",
                None,
                "{\"cli\": 1, \"client_id\": 1}",
                422,
                "invalid_request",
            ),
            ("POST", "/api/v1/predict/churn", None, "", 422, "invalid_request"),
            ("GET", "/api/v1/runs?last=0", None, "", 422, "invalid_request"),
            ("GET", "/api/v1/reports/latest?job=none", None, "", 404, "not_found"),
            ("GET", "/api/v1/predict/all-managers", None, "", 503, "data_unavailable"),
            ("GET", "/reports/x/1/..", None, "", 404, "not_found"),
            (
                "POST",
                "/api/v1/alerts/silences",
                Some("secret"),
                "{\"rule\": \"r\", \"for\": \"soon\"}",
                422,
                "invalid_request",
            ),
        ] {
            let (got, answer) = call(&app, method, path, token, body).await;
            assert_eq!(
                (got.as_u16(), answer["error"]["code"].as_str()),
                (status, Some(code)),
                "{method} {path}: {answer}"
            );
            let listed = ErrorCode::ALL.iter().find(|c| c.as_str() == code).unwrap();
            assert_eq!(listed.status().as_u16(), status, "{code} answers its table status");
        }
        let (_, answer) = call(
            &app,
            "POST",
            "/api/v1/predict/churn",
            None,
            "{\"cli\": 1, \"client_id\": 1}",
        )
        .await;
        assert_eq!(answer["error"]["field"], "cli", "{answer}");
        let (_, answer) = call(&app, "POST", "/api/v1/reload", Some("secret"), "").await;
        assert_eq!(
            answer["error"]["problems"][0],
            "jobs/x.yaml:1:1: nothing to reload here"
        );
        let (status, doc) = call(&app, "GET", "/api/v1/openapi.json", None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(doc["paths"]["/api/v1/predict/agency-performance"]["post"].is_object());
    }

    async fn raw(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn bodies_are_json_within_their_limit_and_a_crowd_is_told_when_to_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let limits = crate::config::HttpLimits {
            max_body_bytes: 64,
            ..Default::default()
        };
        let app = router(state_with(dir.path(), limits));
        let post = |kind: Option<&str>, body: &str| {
            let mut request = Request::builder()
                .method("POST")
                .uri("/api/v1/predict/churn")
                .header("content-length", body.len().to_string());
            if let Some(kind) = kind {
                request = request.header("content-type", kind);
            }
            request.body(Body::from(body.to_string())).unwrap()
        };
        for kind in [None, Some("text/plain")] {
            let (status, _, answer) = raw(&app, post(kind, "{\"client_id\": 1}")).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")),
                "{kind:?}"
            );
        }
        let big = format!("{{\"features\": {{\"pad\": \"{}\"}}}}", "x".repeat(100));
        let (status, _, answer) = raw(&app, post(Some("application/json"), &big)).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
        );
        let (status, _, answer) = raw(
            &app,
            post(
                Some("application/json; charset=utf-8"),
                "{\"cli\": 1, \"client_id\": 1}",
            ),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("cli")),
            "JSON passes the gate"
        );

        // No place left: the API says when to come back; health and metrics still answer.
        let full = router(state_with(
            dir.path(),
            crate::config::HttpLimits {
                max_concurrent_requests: 0,
                ..Default::default()
            },
        ));
        let get = |uri: &str| Request::builder().uri(uri).body(Body::empty()).unwrap();
        let (status, headers, answer) = raw(&full, get("/api/v1/runs")).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded"))
        );
        assert_eq!(headers["retry-after"], "1");
        for path in ["/healthz", "/metrics"] {
            assert_eq!(raw(&full, get(path)).await.0, StatusCode::OK, "{path}");
        }
    }
}
