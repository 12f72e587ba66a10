//! The seed system's prediction requests, accepted as they are: flat JSON objects with its own
//! field names (`{"ges": "G001", "total_clients": 45}`, `{"cli": 12345, "sex": "F", "age": 45}`)
//! beside bankml's own form (`{"manager_id": …}` or `{"features": {…}}`). The alias table is
//! the documentation: `/docs` and the README list it, and a name in neither table nor model is
//! refused by name.

use crate::server::ApiError;
use crate::vocab::ModelKind;
use serde_json::{Map, Value};

/// A seed field name and the feature it means, with the factor turning its unit into ours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alias {
    pub seed: &'static str,
    pub ours: &'static str,
    pub factor: f64,
}

const fn alias(seed: &'static str, ours: &'static str) -> Alias {
    Alias {
        seed,
        ours,
        factor: 1.0,
    }
}

/// Days per month, for the seed's seniority in days.
const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

const CHURN: &[Alias] = &[
    alias("age", "age_years"),
    Alias {
        seed: "client_seniority_days",
        ours: "tenure_months",
        factor: 1.0 / DAYS_PER_MONTH,
    },
    alias("nb_products", "n_products_active"),
    alias("total_balance", "balance_total"),
];

const ENTITY: &[Alias] = &[
    alias("total_clients", "n_clients"),
    alias("total_products", "n_products_active"),
    alias("total_balance", "balance_total"),
    alias("churn_rate", "churn_rate_90d"),
];

const AGENCY: &[Alias] = &[alias("total_managers", "n_managers")];

/// The feature aliases `model` accepts.
pub fn aliases(model: ModelKind) -> Vec<Alias> {
    match model {
        ModelKind::Churn => CHURN.to_vec(),
        ModelKind::Manager => ENTITY.to_vec(),
        ModelKind::Agency => ENTITY.iter().chain(AGENCY).copied().collect(),
        ModelKind::Recommender => Vec::new(),
    }
}

/// The id field of `model`'s requests: ours and the seed's.
pub fn id_fields(model: ModelKind) -> (&'static str, &'static str) {
    match model {
        ModelKind::Churn => ("client_id", "cli"),
        ModelKind::Manager => ("manager_id", "ges"),
        ModelKind::Agency | ModelKind::Recommender => ("agency_id", "age"),
    }
}

/// A prediction request, whichever form it came in.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Look the client, manager or agency up in the latest snapshot.
    ById(Value),
    /// Predict from these features (our names); `id` only echoes back.
    ByFeatures {
        id: Option<Value>,
        features: Map<String, Value>,
        /// Where the features sat in the request: `features` for ours, `` for the seed's.
        field: &'static str,
    },
}

/// Reads a request body of `model` in either form.
pub fn read(model: ModelKind, mut body: Map<String, Value>) -> Result<Request, ApiError> {
    let (ours, seed) = id_fields(model);
    let id = match (body.remove(ours), body.remove(seed)) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(seed, format!("give {ours} or {seed}, not both")));
        }
        (Some(id), None) | (None, Some(id)) => Some(id),
        (None, None) => None,
    };
    if let Some(features) = body.remove("features") {
        if let Some(extra) = body.keys().next() {
            return Err(ApiError::invalid(
                extra.as_str(),
                "give features inside \"features\" or at the top level (the seed's form), not both",
            ));
        }
        if id.is_some() {
            return Err(ApiError::invalid(ours, format!("give either {ours} or features")));
        }
        return match features {
            Value::Object(features) => Ok(Request::ByFeatures {
                id: None,
                features,
                field: "features",
            }),
            other => Err(ApiError::invalid(
                "features",
                format!("expected an object of feature values, got {other}"),
            )),
        };
    }
    if body.is_empty() {
        return match id {
            Some(id) => Ok(Request::ById(id)),
            None => Err(ApiError::invalid(ours, format!("give either {ours} or features"))),
        };
    }
    let table = aliases(model);
    let mut features = Map::new();
    for (name, value) in body {
        let (feature, value) = match table.iter().find(|a| a.seed == name) {
            Some(a) if a.factor != 1.0 => match value.as_f64() {
                Some(v) => (a.ours.to_string(), serde_json::json!(v * a.factor)),
                None if value.is_null() => (a.ours.to_string(), value),
                None => {
                    return Err(ApiError::invalid(
                        name.as_str(),
                        format!("expected a number, got {value}"),
                    ));
                }
            },
            Some(a) => (a.ours.to_string(), value),
            None => (name, value),
        };
        if features.insert(feature.clone(), value).is_some() {
            return Err(ApiError::invalid(
                feature.as_str(),
                format!("{feature} is given twice (under its own name and the seed's)"),
            ));
        }
    }
    Ok(Request::ByFeatures {
        id,
        features,
        field: "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_seeds_flat_requests_read_as_ours() {
        let read_churn = read(
            ModelKind::Churn,
            body(json!({"cli": 12345, "sex": "F", "age": 45, "client_seniority_days": 730.5})),
        )
        .unwrap();
        let Request::ByFeatures { id, features, field } = read_churn else {
            panic!("{read_churn:?}")
        };
        assert_eq!((id, field), (Some(json!(12345)), ""));
        assert_eq!(features["age_years"], json!(45));
        assert_eq!(features["sex"], json!("F"));
        assert!((features["tenure_months"].as_f64().unwrap() - 24.0).abs() < 1e-12);
        // On the agency model `age` is the agency, not a client's age.
        assert_eq!(
            read(ModelKind::Agency, body(json!({"age": "AG01"}))).unwrap(),
            Request::ById(json!("AG01"))
        );
        let Request::ByFeatures { features, .. } =
            read(ModelKind::Manager, body(json!({"ges": "G001", "total_clients": 45}))).unwrap()
        else {
            panic!()
        };
        assert_eq!(features, body(json!({"n_clients": 45})));
    }

    #[test]
    fn our_own_form_reads_as_before_and_mixtures_are_refused_by_field() {
        assert_eq!(
            read(ModelKind::Churn, body(json!({"client_id": 7}))).unwrap(),
            Request::ById(json!(7))
        );
        let refused = |model, value| read(model, body(value)).unwrap_err().field.unwrap_or_default();
        assert_eq!(refused(ModelKind::Churn, json!({"client_id": 7, "cli": 7})), "cli");
        assert_eq!(refused(ModelKind::Churn, json!({"features": {}, "age": 4})), "age");
        assert_eq!(
            refused(ModelKind::Churn, json!({"client_id": 7, "features": {"a": 1}})),
            "client_id"
        );
        assert_eq!(refused(ModelKind::Churn, json!({})), "client_id");
        assert_eq!(refused(ModelKind::Churn, json!({"features": 3})), "features");
        assert_eq!(
            refused(ModelKind::Churn, json!({"age": 40, "age_years": 41})),
            "age_years"
        );
        assert_eq!(
            refused(ModelKind::Churn, json!({"client_seniority_days": "long"})),
            "client_seniority_days"
        );
    }
}
