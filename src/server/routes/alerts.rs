//! Alert states and silences.

use crate::server::{ApiError, ApiResult, Shared, authorize, blocking, parse_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

/// Alerts pending, firing or resolved in the last day, and the active silences.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", responses((status = 200, description = "alerts and silences")))]
pub async fn list(State(state): State<Shared>) -> ApiResult {
    let store = state.alerting.store.clone();
    let (alerts, silences) = blocking(move || {
        let now = chrono::Utc::now();
        (store.list(now), store.silences(now))
    })
    .await?;
    Ok(axum::Json(json!({ "alerts": alerts?, "silences": silences? })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    rule: String,
    /// How long: `30m`, `2h`, `1d`.
    #[serde(rename = "for")]
    duration: String,
    comment: Option<String>,
}

/// Silence a rule for a while (its state is still tracked; nothing is sent).
#[utoipa::path(post, path = "/api/v1/alerts/silences", tag = "alerts", security(("bearer" = [])), request_body = SilenceRequest,
    responses((status = 201, description = "silenced"),
              (status = 401, description = "missing or wrong token", body = crate::server::error::ErrorBody),
              (status = 422, description = "invalid field", body = crate::server::error::ErrorBody)))]
pub async fn silence(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> ApiResult {
    authorize(&state, &headers)?;
    let request: SilenceRequest = parse_body(&body)?;
    if let Some(why) = crate::alerts::unknown_rule(&request.rule, &state.alerting.rule_names()) {
        return Err(ApiError::invalid("rule", why));
    }
    let duration =
        crate::vocab::duration::parse(&request.duration).map_err(|e| ApiError::invalid("for", e.to_string()))?;
    let now = chrono::Utc::now();
    let until = now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(1));
    let id = state
        .alerting
        .store
        .silence(&request.rule, until, now, request.comment.as_deref())?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "rule": request.rule, "until": crate::vocab::time::iso(until) })),
    )
        .into_response())
}
