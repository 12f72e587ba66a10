//! A run's report files, as the links in notifications point to them.

use crate::server::extract::ApiPath;
use crate::server::{ApiError, ApiResult, ErrorCode, Shared};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// A run's report file: `report.html`, `report.json`, `observations.csv`.
#[utoipa::path(get, path = "/reports/{job}/{run}/{file}", tag = "reports",
    params(("job" = String, Path, description = "job name"), ("run" = i64, Path, description = "run id"),
           ("file" = String, Path, description = "file name")),
    responses((status = 200, description = "the file"), (status = 404, description = "no such file", body = crate::server::error::ErrorBody)))]
pub async fn file(
    State(state): State<Shared>,
    ApiPath((job, run, file)): ApiPath<(String, String, String)>,
) -> ApiResult {
    let safe = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !s.starts_with('.')
    };
    let missing = || ApiError::new(ErrorCode::NotFound, format!("no report file {job}/{run}/{file}"));
    if !safe(&job) || !run.chars().all(|c| c.is_ascii_digit()) || !safe(&file) {
        return Err(ApiError::new(ErrorCode::NotFound, "no such report file"));
    }
    let path = state.config.data.reports_dir.join(&job).join(&run).join(&file);
    let bytes = tokio::fs::read(&path).await.map_err(|_| missing())?;
    let kind = match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}
