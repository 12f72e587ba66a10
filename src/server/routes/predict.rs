//! The prediction API: one client's churn, one manager's or agency's score, a client's
//! products, everyone ranked, and the headline figures — from the champions and the latest
//! snapshot (see `serving`).

use crate::server::extract::{ApiPath, ApiQuery};
use crate::server::seed::{self, Request};
use crate::server::serving::{ChurnPrediction, ScorePrediction};
use crate::server::{ApiError, ApiResult, Shared, parse_body, query_number, with_serving};
use crate::vocab::ModelKind;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One client, by id (a current client of the latest snapshot) or by feature values. The
/// seed system's flat form is accepted too: `{"cli": 12345, "sex": "F", "age": 45, …}`, its
/// field names read as ours (`cli` → `client_id`, `age` → `age_years`,
/// `client_seniority_days` → `tenure_months`, …; `/docs` lists them).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // The body's documented shape; `seed::read` reads it.
pub struct ChurnRequest {
    client_id: Option<i64>,
    /// Feature values by name (`ChurnFeatures` lists them); missing ones count as unknown.
    #[schema(value_type = Option<Object>)]
    features: Option<Map<String, Value>>,
}

/// A manager by id, or by feature values; the seed's flat form (`{"ges": "G001",
/// "total_clients": 45}`) is read as ours.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // The body's documented shape; `seed::read` reads it.
pub struct ManagerRequest {
    manager_id: Option<String>,
    /// Feature values by name (`ManagerFeatures` lists them).
    #[schema(value_type = Option<Object>)]
    features: Option<Map<String, Value>>,
}

/// An agency by id, or by feature values; the seed's flat form (`{"age": "AG01", …}`) is read
/// as ours.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // The body's documented shape; `seed::read` reads it.
pub struct AgencyRequest {
    agency_id: Option<String>,
    /// Feature values by name (`AgencyFeatures` lists them).
    #[schema(value_type = Option<Object>)]
    features: Option<Map<String, Value>>,
}

/// Churn probability, risk level, reasons and recommended actions of one client.
#[utoipa::path(post, path = "/api/v1/predict/churn", tag = "predictions", request_body = ChurnRequest,
    responses((status = 200, description = "prediction", body = ChurnPrediction),
              (status = 404, description = "unknown client", body = crate::server::error::ErrorBody),
              (status = 422, description = "invalid JSON or field", body = crate::server::error::ErrorBody),
              (status = 503, description = "no churn model yet", body = crate::server::error::ErrorBody)))]
pub async fn churn(State(state): State<Shared>, body: Bytes) -> ApiResult {
    let request = seed::read(ModelKind::Churn, parse_body(&body)?)?;
    with_serving(&state, |serving| match request {
        Request::ById(id) => {
            let id = id
                .as_i64()
                .ok_or_else(|| ApiError::invalid("client_id", format!("expected a whole number, got {id}")))?;
            Ok(serving.churn_of(id)?)
        }
        Request::ByFeatures { id, features, field } => {
            let (features, known) = over_known(serving, ModelKind::Churn, id.as_ref(), features);
            let mut prediction = serving.churn_of_features(&features, field)?;
            prediction.client_id = id.and_then(|id| id.as_i64());
            prediction.base = known;
            Ok(prediction)
        }
    })
    .await
}

/// An id as the request sent it, as text (`"G001"`, or `12345` written as a number).
fn id_text(id: &Value) -> String {
    id.as_str().map(str::to_string).unwrap_or_else(|| id.to_string())
}

/// The seed's flat form with an id and values: the values over that client's (manager's,
/// agency's) own features when the latest snapshot holds it — a what-if about that one, not
/// about an unknown whose id is echoed — else the values alone. The second part says which.
fn over_known(
    serving: &crate::server::serving::Serving,
    model: ModelKind,
    id: Option<&Value>,
    given: Map<String, Value>,
) -> (Map<String, Value>, crate::server::serving::Base) {
    use crate::server::serving::Base;
    let id = id.map(id_text);
    match id.as_deref().and_then(|id| serving.features_of(model, id)) {
        Some(mut known) => {
            known.extend(given);
            (known, Base::Known)
        }
        None if id.is_some() => (given, Base::UnknownId),
        None => (given, Base::GivenOnly),
    }
}

async fn scores(state: &Shared, model: ModelKind, body: &Bytes) -> ApiResult {
    let request = seed::read(model, parse_body(body)?)?;
    let (id_field, _) = seed::id_fields(model);
    with_serving(state, |serving| {
        let prediction: ScorePrediction = match request {
            Request::ById(id) => serving.score_of(model, &id_text(&id))?,
            Request::ByFeatures { id, features, field } => {
                let (features, known) = over_known(serving, model, id.as_ref(), features);
                ScorePrediction {
                    id: id.as_ref().map(id_text),
                    base: known,
                    ..serving.score_of_features(model, &features, field)?
                }
            }
        };
        let mut value = serde_json::to_value(&prediction).map_err(ApiError::internal)?;
        if let Some(map) = value.as_object_mut() {
            let id = map.remove("id").unwrap_or(Value::Null);
            map.insert(id_field.to_string(), id);
        }
        Ok(value)
    })
    .await
}

/// Predicted performance score (0–100) of a manager.
#[utoipa::path(post, path = "/api/v1/predict/manager-performance", tag = "predictions", request_body = ManagerRequest,
    responses((status = 200, description = "prediction (`id` is `manager_id`)", body = ScorePrediction),
              (status = 404, description = "unknown manager", body = crate::server::error::ErrorBody),
              (status = 422, description = "invalid JSON or field", body = crate::server::error::ErrorBody),
              (status = 503, description = "no manager model yet", body = crate::server::error::ErrorBody)))]
pub async fn manager(State(state): State<Shared>, body: Bytes) -> ApiResult {
    scores(&state, ModelKind::Manager, &body).await
}

/// Predicted performance score (0–100) of an agency.
#[utoipa::path(post, path = "/api/v1/predict/agency-performance", tag = "predictions", request_body = AgencyRequest,
    responses((status = 200, description = "prediction (`id` is `agency_id`)", body = ScorePrediction),
              (status = 404, description = "unknown agency", body = crate::server::error::ErrorBody),
              (status = 422, description = "invalid JSON or field", body = crate::server::error::ErrorBody),
              (status = 503, description = "no agency model yet", body = crate::server::error::ErrorBody)))]
pub async fn agency(State(state): State<Shared>, body: Bytes) -> ApiResult {
    scores(&state, ModelKind::Agency, &body).await
}

/// A client's top products (never ones they hold).
#[utoipa::path(get, path = "/api/v1/recommend/products/{client_id}", tag = "predictions",
    params(("client_id" = i64, Path, description = "client id"),
           ("n_recommendations" = Option<usize>, Query, description = "how many (default: models.recommender.k, at most 50)")),
    responses((status = 200, description = "recommendations"),
              (status = 404, description = "unknown client", body = crate::server::error::ErrorBody),
              (status = 422, description = "bad parameter", body = crate::server::error::ErrorBody)))]
pub async fn recommend(
    State(state): State<Shared>,
    ApiPath(client_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
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

/// The clients most likely to take a product: whom to target with it.
#[utoipa::path(get, path = "/api/v1/recommend/clients/{product_id}", tag = "predictions",
    params(("product_id" = String, Path, description = "product id, e.g. P07"),
           ("n" = Option<usize>, Query, description = "how many (default 100, at most 10000)")),
    responses((status = 200, description = "clients, most likely first, with the product's rank in each one's own list"),
              (status = 404, description = "unknown product", body = crate::server::error::ErrorBody),
              (status = 422, description = "bad parameter", body = crate::server::error::ErrorBody)))]
pub async fn clients_for_product(
    State(state): State<Shared>,
    ApiPath(product_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> ApiResult {
    with_serving(&state, |serving| {
        let n = query_number(&query, "n", 100, 10_000)?;
        Ok(serving.clients_for(&product_id, n)?)
    })
    .await
}

/// Every manager, best predicted first.
#[utoipa::path(get, path = "/api/v1/predict/all-managers", tag = "predictions", responses((status = 200, description = "managers")))]
pub async fn all_managers(State(state): State<Shared>) -> ApiResult {
    with_serving(&state, |s| Ok(s.all_scores(ModelKind::Manager)?)).await
}

/// Every agency, best predicted first.
#[utoipa::path(get, path = "/api/v1/predict/all-agencies", tag = "predictions", responses((status = 200, description = "agencies")))]
pub async fn all_agencies(State(state): State<Shared>) -> ApiResult {
    with_serving(&state, |s| Ok(s.all_scores(ModelKind::Agency)?)).await
}

/// Clients by churn probability, highest first, paginated.
#[utoipa::path(get, path = "/api/v1/predict/all-clients-churn", tag = "predictions",
    params(("page" = Option<usize>, Query, description = "1-based (default 1)"),
           ("page_size" = Option<usize>, Query, description = "default 100, at most 1000"),
           ("risk" = Option<String>, Query, description = "only this level: Low, Medium or High")),
    responses((status = 200, description = "a page of clients"),
              (status = 422, description = "bad parameter", body = crate::server::error::ErrorBody)))]
pub async fn all_clients(State(state): State<Shared>, ApiQuery(query): ApiQuery<HashMap<String, String>>) -> ApiResult {
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

/// Headline figures of the latest snapshot.
#[utoipa::path(get, path = "/api/v1/analytics/summary", tag = "predictions", responses((status = 200, description = "summary")))]
pub async fn summary(State(state): State<Shared>) -> ApiResult {
    with_serving(&state, |s| Ok(s.summary())).await
}
