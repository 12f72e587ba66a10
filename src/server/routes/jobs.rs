//! Jobs and their runs: the schedule, the history, the latest report, triggering and reloading.

use crate::engine::scheduler::Command;
use crate::server::extract::{ApiPath, ApiQuery};
use crate::server::{ApiError, ApiResult, ErrorCode, Shared, authorize, blocking, query_number};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// Jobs, their schedule and next run.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, description = "jobs"), (status = 503, description = "stopping", body = crate::server::error::ErrorBody)))]
pub async fn list(State(state): State<Shared>) -> ApiResult {
    let statuses = describe(&state).await?;
    Ok(axum::Json(json!({ "jobs": statuses })).into_response())
}

/// The scheduler's view of every job (its loop answers; it is gone while stopping).
pub async fn describe(state: &Shared) -> Result<Vec<crate::engine::scheduler::JobStatus>, ApiError> {
    let (tx, rx) = oneshot::channel();
    state
        .commands
        .send(Command::Describe(tx))
        .await
        .map_err(|_| ApiError::stopping())?;
    rx.await.map_err(|_| ApiError::stopping())
}

/// Run history, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "jobs",
    params(("job" = Option<String>, Query, description = "only this job"),
           ("last" = Option<usize>, Query, description = "how many (default 50, at most 10000)")),
    responses((status = 200, description = "runs"), (status = 422, description = "bad parameter", body = crate::server::error::ErrorBody)))]
pub async fn runs(State(state): State<Shared>, ApiQuery(query): ApiQuery<HashMap<String, String>>) -> ApiResult {
    let last = query_number(&query, "last", 50, 10_000)?;
    let job = query.get("job").cloned();
    let history = state.history.clone();
    let runs = blocking(move || history.list(job.as_deref(), last)).await??;
    Ok(axum::Json(json!({ "runs": runs })).into_response())
}

/// The report of a job's newest successful run.
#[utoipa::path(get, path = "/api/v1/reports/latest", tag = "jobs",
    params(("job" = String, Query, description = "job name, e.g. daily-benchmark")),
    responses((status = 200, description = "report"),
              (status = 404, description = "no report yet", body = crate::server::error::ErrorBody),
              (status = 422, description = "job missing", body = crate::server::error::ErrorBody)))]
pub async fn latest_report(
    State(state): State<Shared>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> ApiResult {
    let job = query
        .get("job")
        .cloned()
        .ok_or_else(|| ApiError::invalid("job", "the query parameter job is required (e.g. ?job=daily-benchmark)"))?;
    let history = state.history.clone();
    let name = job.clone();
    let path = blocking(move || history.latest_report(&name))
        .await??
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no successful run of {job} yet")))?;
    let report = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::new(ErrorCode::NotFound, format!("{}: {e}", path.display())))?;
    let value: Value =
        serde_json::from_slice(&report).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    Ok(axum::Json(json!({ "path": path, "report": value })).into_response())
}

/// Run a job now.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "jobs", security(("bearer" = [])),
    params(("name" = String, Path, description = "job name")),
    responses((status = 202, description = "started: `run_id` and the URL to poll for its status"),
              (status = 401, description = "missing or wrong token", body = crate::server::error::ErrorBody),
              (status = 404, description = "unknown job", body = crate::server::error::ErrorBody),
              (status = 409, description = "already running", body = crate::server::error::ErrorBody)))]
pub async fn trigger(State(state): State<Shared>, ApiPath(name): ApiPath<String>, headers: HeaderMap) -> ApiResult {
    authorize(&state, &headers)?;
    if !state.ready.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::Starting,
            "the daemon is still preparing its first models",
        ));
    }
    let (reply, rx) = oneshot::channel();
    state
        .commands
        .send(Command::Trigger {
            job: name.clone(),
            reply,
        })
        .await
        .map_err(|_| ApiError::stopping())?;
    let run_id = rx
        .await
        .map_err(|_| ApiError::stopping())?
        .map_err(|e| ApiError::trigger(e, &name))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "job": name, "status": "started", "run_id": run_id,
            "poll": format!("/api/v1/runs?job={name}&last=1"),
        })),
    )
        .into_response())
}

/// Reload job files and alert rules; an invalid edit is refused and the running ones stay.
#[utoipa::path(post, path = "/api/v1/reload", tag = "jobs", security(("bearer" = [])),
    responses((status = 200, description = "reloaded"),
              (status = 401, description = "missing or wrong token", body = crate::server::error::ErrorBody),
              (status = 422, description = "invalid files, each problem with file:line:column", body = crate::server::error::ErrorBody)))]
pub async fn reload(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    authorize(&state, &headers)?;
    let reloader = state.reloader.clone();
    match blocking(move || reloader.reload()).await? {
        Ok(jobs) => Ok(axum::Json(json!({ "status": "reloaded", "jobs": jobs })).into_response()),
        Err(problems) => Err(ApiError {
            problems,
            ..ApiError::new(ErrorCode::InvalidConfig, "the running configuration stays")
        }),
    }
}
