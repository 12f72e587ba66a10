//! Campaigns: what the newest successful business run measured (`monthly-business`), one
//! campaign's arms, comparisons and intervals.

use crate::data::campaign::CampaignId;
use crate::report::campaigns::BusinessSummary;
use crate::report::summary::JobSummary;
use crate::server::extract::ApiPath;
use crate::server::routes::jobs::describe;
use crate::server::{ApiError, ApiResult, ErrorCode, Shared, blocking};
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// The summary of the newest successful run of a business job, and its report's path.
async fn latest(state: &Shared) -> Result<(BusinessSummary, String), ApiError> {
    let jobs = describe(state).await?;
    let names: Vec<String> = jobs
        .into_iter()
        .filter(|j| j.kind.eq_ignore_ascii_case("business"))
        .map(|j| j.name)
        .collect();
    let history = state.history.clone();
    let found = blocking(move || {
        let mut newest: Option<(String, std::path::PathBuf)> = None;
        for name in &names {
            if let Some(path) = history.latest_report(name)? {
                let run = history.list(Some(name), 1)?.first().map(|r| r.started_at.clone()).unwrap_or_default();
                if newest.as_ref().is_none_or(|(started, _)| run > *started) {
                    newest = Some((run, path));
                }
            }
        }
        Ok::<_, crate::engine::history::HistoryError>(newest.map(|(_, path)| path))
    })
    .await??
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "no successful business run yet: campaigns are measured by the monthly business job (jobs/monthly-business.yaml)",
        )
    })?;
    let bytes = tokio::fs::read(&found)
        .await
        .map_err(|e| ApiError::new(ErrorCode::NotFound, format!("{}: {e}", found.display())))?;
    let report: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(format!("{}: {e}", found.display())))?;
    match JobSummary::read("business", &report["outcome"]["summary"]) {
        Ok(JobSummary::Business(summary)) => Ok((*summary, found.display().to_string())),
        Ok(_) => Err(ApiError::internal("the business report holds another job's summary")),
        Err(e) => Err(ApiError::internal(format!("{}: {e}", found.display()))),
    }
}

/// Every campaign the newest business run measured or is waiting for, newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    responses((status = 200, description = "campaigns: arms and their sizes, whether the outcome is complete, the significant comparisons"),
              (status = 404, description = "no business run yet", body = crate::server::error::ErrorBody)))]
pub async fn list(State(state): State<Shared>) -> ApiResult {
    let (summary, report) = latest(&state).await?;
    let mut campaigns: Vec<Value> = summary
        .campaigns
        .iter()
        .map(|c| {
            json!({
                "id": c.campaign.to_string(),
                "kind": c.campaign.kind,
                "snapshot": c.campaign.snapshot,
                "matured": c.matured,
                "outcome_on": c.outcome_on,
                "arms": c.arms.iter().map(|a| json!({ "arm": a.arm, "clients": a.clients, "too_few": a.too_few })).collect::<Vec<_>>(),
                "significant": c.comparisons.iter().filter(|x| x.significant).map(|x| x.name()).collect::<Vec<_>>(),
                "url": format!("/api/v1/campaigns/{}", c.campaign),
            })
        })
        .collect();
    campaigns.reverse();
    Ok(axum::Json(json!({
        "snapshot": summary.snapshot,
        "settings": summary.settings,
        "report": report,
        "campaigns": campaigns,
    }))
    .into_response())
}

/// One campaign: each arm's shares with intervals, the arms compared (difference, lift, p-values
/// before and after Holm), retention's prevention rate, false-positive rate and return.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "campaign id, e.g. offer-2025-11-30")),
    responses((status = 200, description = "the campaign's figures"),
              (status = 404, description = "not measured by the newest business run", body = crate::server::error::ErrorBody),
              (status = 422, description = "not a campaign id", body = crate::server::error::ErrorBody)))]
pub async fn one(State(state): State<Shared>, ApiPath(id): ApiPath<String>) -> ApiResult {
    let wanted = CampaignId::parse(&id).ok_or_else(|| {
        ApiError::invalid(
            "id",
            format!("\"{id}\" is not a campaign id: retention-YYYY-MM-DD or offer-YYYY-MM-DD"),
        )
    })?;
    let (summary, report) = latest(&state).await?;
    let Some(campaign) = summary.campaigns.iter().find(|c| c.campaign == wanted) else {
        let known: Vec<String> = summary.campaigns.iter().map(|c| c.campaign.to_string()).collect();
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no campaign {wanted} in the contacts tables as of {} (known: {})",
                summary.snapshot,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    Ok(axum::Json(json!({
        "snapshot": summary.snapshot,
        "settings": summary.settings,
        "report": report,
        "campaign": campaign,
    }))
    .into_response())
}
