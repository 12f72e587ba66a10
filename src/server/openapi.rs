//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, written by hand next to the
//! routes it describes (a test checks every route is in it).

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn query(name: &str, description: &str, schema: Value, required: bool) -> Value {
    json!({ "name": name, "in": "query", "required": required, "description": description, "schema": schema })
}

fn path(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

pub fn document() -> Value {
    let object = json!({ "type": "object" });
    let protected = json!([{ "bearer": [] }]);
    let features = json!({
        "type": "object",
        "description": "Feature values by name (see the model's design); missing ones count as unknown",
        "additionalProperties": true
    });
    let score = json!({ "$ref": "#/components/schemas/ScorePrediction" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bankml",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Runs, reports and predictions of a bank's models: churn, manager and agency performance, product recommendation."
        },
        "servers": [{ "url": "http://127.0.0.1:8001" }],
        "paths": {
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": {} } } } } },
            "/healthz": { "get": { "summary": "The process is alive", "responses": { "200": json_response("alive", object.clone()) } } },
            "/readyz": { "get": { "summary": "Ready: first preparation done and a champion model exists",
                "responses": { "200": json_response("ready", object.clone()), "503": json_response("not ready yet", object.clone()) } } },
            "/api/v1/openapi.json": { "get": { "summary": "This document", "responses": { "200": json_response("OpenAPI", object.clone()) } } },
            "/api/v1/jobs": { "get": { "summary": "Jobs, their schedule and next run", "responses": { "200": json_response("jobs", object.clone()) } } },
            "/api/v1/runs": { "get": {
                "summary": "Run history, newest first",
                "parameters": [
                    query("job", "only this job", json!({ "type": "string" }), false),
                    query("last", "how many (default 50)", json!({ "type": "integer", "minimum": 1, "maximum": 10000 }), false)
                ],
                "responses": { "200": json_response("runs", object.clone()), "422": error_response("bad parameter") } } },
            "/api/v1/reports/latest": { "get": {
                "summary": "The report of a job's newest successful run",
                "parameters": [query("job", "job name, e.g. daily-benchmark", json!({ "type": "string" }), true)],
                "responses": { "200": json_response("report", object.clone()), "404": error_response("no report yet"), "422": error_response("job missing") } } },
            "/api/v1/jobs/{name}/run": { "post": {
                "summary": "Run a job now", "security": protected.clone(),
                "parameters": [path("name", "job name", json!({ "type": "string" }))],
                "responses": { "202": json_response("started", object.clone()), "401": error_response("missing or wrong token"),
                               "404": error_response("unknown job"), "409": error_response("already running") } } },
            "/api/v1/reload": { "post": {
                "summary": "Reload job files; an invalid edit is refused and the running schedule stays", "security": protected.clone(),
                "responses": { "200": json_response("reloaded", object.clone()), "401": error_response("missing or wrong token"),
                               "422": json_response("invalid files, each problem with file:line:column", object.clone()) } } },
            "/api/v1/predict/churn": { "post": {
                "summary": "Churn probability, risk level, reasons and recommended actions of one client",
                "requestBody": body(json!({ "type": "object", "additionalProperties": false, "properties": {
                    "client_id": { "type": "integer", "description": "a current client of the latest snapshot" },
                    "features": features } })),
                "responses": { "200": json_response("prediction", json!({ "$ref": "#/components/schemas/ChurnPrediction" })),
                               "404": error_response("unknown client"), "422": error_response("invalid JSON or field"),
                               "503": error_response("no churn model yet") } } },
            "/api/v1/predict/manager-performance": { "post": {
                "summary": "Predicted performance score (0–100) of a manager",
                "requestBody": body(json!({ "type": "object", "additionalProperties": false, "properties": {
                    "manager_id": { "type": "string" }, "features": features } })),
                "responses": { "200": json_response("prediction", score.clone()), "404": error_response("unknown manager"),
                               "422": error_response("invalid JSON or field"), "503": error_response("no manager model yet") } } },
            "/api/v1/predict/agency-performance": { "post": {
                "summary": "Predicted performance score (0–100) of an agency",
                "requestBody": body(json!({ "type": "object", "additionalProperties": false, "properties": {
                    "agency_id": { "type": "string" }, "features": features } })),
                "responses": { "200": json_response("prediction", score), "404": error_response("unknown agency"),
                               "422": error_response("invalid JSON or field"), "503": error_response("no agency model yet") } } },
            "/api/v1/recommend/products/{client_id}": { "get": {
                "summary": "A client's top products (not ones they hold)",
                "parameters": [
                    path("client_id", "client id", json!({ "type": "integer" })),
                    query("n_recommendations", "how many (default: models.recommender.k)", json!({ "type": "integer", "minimum": 1, "maximum": 50 }), false)
                ],
                "responses": { "200": json_response("recommendations", object.clone()), "404": error_response("unknown client"),
                               "422": error_response("bad parameter") } } },
            "/api/v1/predict/all-managers": { "get": { "summary": "Every manager, best predicted first",
                "responses": { "200": json_response("managers", object.clone()) } } },
            "/api/v1/predict/all-agencies": { "get": { "summary": "Every agency, best predicted first",
                "responses": { "200": json_response("agencies", object.clone()) } } },
            "/api/v1/predict/all-clients-churn": { "get": {
                "summary": "Clients by churn probability, highest first, paginated",
                "parameters": [
                    query("page", "1-based (default 1)", json!({ "type": "integer", "minimum": 1 }), false),
                    query("page_size", "default 100", json!({ "type": "integer", "minimum": 1, "maximum": 1000 }), false),
                    query("risk", "only this level", json!({ "type": "string", "enum": ["Low", "Medium", "High"] }), false)
                ],
                "responses": { "200": json_response("a page of clients", object.clone()), "422": error_response("bad parameter") } } },
            "/api/v1/alerts": { "get": { "summary": "Alerts pending, firing or resolved in the last day, and active silences",
                "responses": { "200": json_response("alerts", object.clone()) } } },
            "/api/v1/alerts/silences": { "post": {
                "summary": "Silence a rule for a while (its state is still tracked)", "security": protected.clone(),
                "requestBody": body(json!({ "type": "object", "additionalProperties": false, "required": ["rule", "for"], "properties": {
                    "rule": { "type": "string" }, "for": { "type": "string", "description": "30m, 2h, 1d…" }, "comment": { "type": "string" } } })),
                "responses": { "201": json_response("silenced", object.clone()), "401": error_response("missing or wrong token"),
                               "422": error_response("invalid field") } } },
            "/reports/{job}/{run}/{file}": { "get": {
                "summary": "A run's report file: report.html, report.json, observations.csv",
                "parameters": [path("job", "job name", json!({ "type": "string" })), path("run", "run id", json!({ "type": "integer" })),
                               path("file", "file name", json!({ "type": "string" }))],
                "responses": { "200": { "description": "the file" }, "404": error_response("no such file") } } },
            "/api/v1/analytics/summary": { "get": { "summary": "Headline figures of the latest snapshot",
                "responses": { "200": json_response("summary", object) } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "The token in the environment variable named by daemon.api_token_env" } },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" },
                    "field": { "type": "string", "description": "the request field at fault" } } } } },
                "ChurnPrediction": { "type": "object", "properties": {
                    "client_id": { "type": ["integer", "null"] }, "churn_probability": { "type": "number" },
                    "risk_level": { "type": "string", "enum": ["Low", "Medium", "High"] },
                    "reasons": { "type": "array", "items": { "type": "string" } },
                    "recommended_actions": { "type": "array", "items": { "type": "string" } },
                    "model_version": { "type": "integer" } } },
                "ScorePrediction": { "type": "object", "properties": {
                    "predicted_score": { "type": "number" }, "actual_score": { "type": ["number", "null"] },
                    "model_version": { "type": "integer" } } }
            }
        }
    })
}
