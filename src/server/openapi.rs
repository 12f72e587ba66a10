//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, derived by utoipa from the
//! handlers' `#[utoipa::path]` annotations and the request and response types — so it cannot
//! drift from the code. At serve time each tabular model's accepted features (names, types,
//! categories) are added from its champion's design, and the error table is appended.

use crate::config::EngineConfig;
use crate::models::design::Design;
use crate::models::registry::Registry;
use crate::server::error::ErrorCode;
use crate::server::routes::{alerts, campaigns, health, jobs, predict, reports};
use crate::vocab::ModelKind;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bankml",
        description = "Runs, reports and predictions of a bank's models: churn, manager and agency performance, product recommendation."
    ),
    servers((url = "http://127.0.0.1:8001")),
    paths(
        health::metrics, health::healthz, health::readyz, health::openapi_document,
        jobs::list, jobs::runs, jobs::latest_report, jobs::trigger, jobs::reload,
        predict::churn, predict::manager, predict::agency, predict::recommend, predict::clients_for_product,
        campaigns::list, campaigns::one,
        predict::all_managers, predict::all_agencies, predict::all_clients, predict::summary,
        alerts::list, alerts::silence,
        reports::file,
    ),
    components(schemas(crate::server::error::ErrorBody, crate::server::error::ErrorDetail)),
    modifiers(&BearerToken),
)]
struct ApiDoc;

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token in the environment variable named by daemon.api_token_env",
                    ))
                    .build(),
            ),
        );
    }
}

/// The derived document, without the per-model features.
pub fn derived() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// The JSON schema of the features `design` accepts: numbers, and text from its categories.
pub fn feature_schema(kind: ModelKind, design: &Design) -> Value {
    let mut properties = Map::new();
    for name in &design.numeric {
        properties.insert(name.clone(), json!({ "type": ["number", "null"] }));
    }
    for (name, categories) in &design.categorical {
        properties.insert(
            name.clone(),
            json!({ "type": ["string", "null"], "description": "one of the categories the model knows (another is refused with 422)", "examples": categories }),
        );
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": format!("The features the {kind} champion reads; missing ones count as unknown."),
        "properties": properties,
    })
}

/// The served document: derived, plus each champion's features and the error table.
pub fn document(config: &EngineConfig) -> Value {
    let mut doc = derived();
    let registry = Registry::new(&config.models.dir);
    for kind in ModelKind::ALL.into_iter().filter(|k| k.is_tabular()) {
        let design: Option<Design> = registry
            .resolve(kind, None)
            .ok()
            .and_then(|(_, dir)| std::fs::read(dir.join("design.json")).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let name = format!("{}Features", capitalised(kind.as_str()));
        doc["components"]["schemas"][name.as_str()] = match design {
            Some(design) => feature_schema(kind, &design),
            None => {
                json!({ "type": "object", "description": format!("No {kind} champion yet: its features are listed once one is trained.") })
            }
        };
    }
    doc["components"]["x-seed-aliases"] = ModelKind::ALL
        .into_iter()
        .filter(|k| k.is_tabular())
        .map(|kind| {
            let (ours, seed) = crate::server::seed::id_fields(kind);
            let features: Vec<Value> = crate::server::seed::aliases(kind)
                .iter()
                .map(|a| json!({ "seed": a.seed, "ours": a.ours, "factor": a.factor }))
                .collect();
            json!({ "model": kind.as_str(), "id": { "seed": seed, "ours": ours }, "features": features })
        })
        .collect();
    doc["components"]["x-error-codes"] = ErrorCode::ALL
        .iter()
        .map(|code| {
            let (name, status, meaning) = code.describe();
            json!({ "code": name, "status": status.as_u16(), "meaning": meaning })
        })
        .collect();
    doc
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_its_errors_and_model_features() {
        let doc = derived();
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
            Some(true),
            "{}",
            doc["openapi"]
        );
        for (path, method) in [
            ("/metrics", "get"),
            ("/api/v1/predict/churn", "post"),
            ("/api/v1/jobs/{name}/run", "post"),
            ("/reports/{job}/{run}/{file}", "get"),
            ("/api/v1/alerts/silences", "post"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{path} {method}");
        }
        assert_eq!(
            doc["paths"]["/api/v1/predict/churn"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/ChurnPrediction"
        );
        assert!(doc["components"]["schemas"]["ChurnPrediction"]["properties"]["churn_probability"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        let design = Design {
            numeric: vec!["age_years".into()],
            categorical: vec![("segment".into(), vec!["Mass".into(), "Youth".into()])],
        };
        let schema = feature_schema(ModelKind::Churn, &design);
        assert_eq!(schema["properties"]["age_years"]["type"], json!(["number", "null"]));
        assert_eq!(schema["properties"]["segment"]["examples"], json!(["Mass", "Youth"]));
        let served = document(&EngineConfig::default());
        assert_eq!(
            served["components"]["x-error-codes"].as_array().map(Vec::len),
            Some(ErrorCode::ALL.len())
        );
        assert!(served["components"]["schemas"]["ChurnFeatures"].is_object());
    }
}
