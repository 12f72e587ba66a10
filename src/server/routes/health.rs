//! `/metrics`, `/healthz`, `/readyz` and the OpenAPI document.

use crate::config::EngineConfig;
use crate::models::registry::Registry;
use crate::server::{Shared, blocking};
use crate::vocab::ModelKind;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::atomic::Ordering;

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Shared>) -> Response {
    let config = state.config.clone();
    let champions = blocking(move || champions(&config)).await.unwrap_or_default();
    state.telemetry.models(&champions);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.telemetry.render(),
    )
        .into_response()
}

/// (model, champion version, its training time) of every model with a champion.
fn champions(config: &EngineConfig) -> Vec<(ModelKind, u32, String)> {
    let registry = Registry::new(&config.models.dir);
    registry
        .champions()
        .into_iter()
        .filter_map(|(model, version)| {
            let version = version?;
            Some((model, version, registry.created_at(model, version).unwrap_or_default()))
        })
        .collect()
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Ready: the first preparation is done and a champion model exists.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready yet")))]
pub async fn readyz(State(state): State<Shared>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "starting", "reason": "preparing data and first models" })),
        )
            .into_response();
    }
    let config = state.config.clone();
    let champions = blocking(move || champions(&config)).await.unwrap_or_default();
    if champions.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "not_ready", "reason": "no champion model yet" })),
        )
            .into_response();
    }
    axum::Json(json!({ "status": "ready", "champions": champions.len() })).into_response()
}

/// This document, with each model's accepted features from its champion.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi_document(State(state): State<Shared>) -> Response {
    let config = state.config.clone();
    let document = blocking(move || crate::server::openapi::document(&config))
        .await
        .unwrap_or_else(|_| crate::server::openapi::document(&EngineConfig::default()));
    axum::Json(document).into_response()
}
