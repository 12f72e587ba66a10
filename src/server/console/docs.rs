//! `/docs`: the API reference, rendered on the server from the very OpenAPI document served at
//! `/api/v1/openapi.json` (derived from the handlers, with each champion's features added) —
//! every endpoint with its parameters, body and answers, every schema, the error codes. Our
//! own page rather than a vendored Swagger UI: no script to ship or keep patched, and it reads
//! without JavaScript.

use super::Section;
use crate::report::svg::escape;
use crate::server::{Shared, blocking};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::fmt::Write;

pub async fn page(State(state): State<Shared>) -> Response {
    let config = state.config.clone();
    let document = blocking(move || crate::server::openapi::document(&config))
        .await
        .unwrap_or_else(|_| crate::server::openapi::derived());
    super::page(StatusCode::OK, "API docs", Section::Docs, &render(&document))
}

/// The anchor of an operation: `post-api-v1-predict-churn`.
fn anchor(method: &str, path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{method}{}", slug.trim_end_matches('-'))
}

/// A schema's type for people, with `$ref`s as links to the schema below.
fn type_of(schema: &Value) -> String {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or(target);
        return format!("<a href=\"#schema-{0}\">{0}</a>", escape(name));
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[combinator].as_array() {
            return options.iter().map(type_of).collect::<Vec<_>>().join(" | ");
        }
    }
    let base = match &schema["type"] {
        Value::String(t) => escape(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .map(escape)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".into(),
    };
    if base.contains("array") && schema["items"].is_object() {
        return format!("{base} of {}", type_of(&schema["items"]));
    }
    base
}

fn text(value: &Value) -> String {
    escape(value.as_str().unwrap_or(""))
}

/// A description as the handlers' doc comments write it: `code` in backticks shown as code.
fn prose(value: &Value) -> String {
    text(value)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

pub fn render(doc: &Value) -> String {
    let mut out = format!(
        "<h1>{} API <span class=\"muted\">{}</span></h1><section><p>{}</p>\
         <p>The machine-readable document: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI {}). \
         Endpoints marked <b>token</b> need <code>Authorization: Bearer &lt;token&gt;</code>, the token being the \
         environment variable named by <code>daemon.api_token_env</code>. Errors answer \
         <code>{{\"error\": {{\"code\", \"message\", \"field\"}}}}</code> with a code from <a href=\"#errors\">the table</a>.</p>",
        text(&doc["info"]["title"]),
        text(&doc["info"]["version"]),
        text(&doc["info"]["description"]),
        text(&doc["openapi"])
    );
    // Contents, by tag.
    let mut operations: Vec<(String, String, String, &Value)> = Vec::new();
    for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in methods.as_object().into_iter().flatten() {
            let tag = operation["tags"][0].as_str().unwrap_or("other").to_string();
            operations.push((tag, path.clone(), method.clone(), operation));
        }
    }
    operations.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    out.push_str("<div class=\"scroll\"><table id=\"contents\"><tr><th>group</th><th>endpoint</th><th>what</th></tr>");
    for (tag, path, method, operation) in &operations {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"nowrap\"><span class=\"method {m}\">{m}</span><a href=\"#{}\">{}</a></td><td>{}</td></tr>",
            escape(tag),
            anchor(method, path),
            escape(path),
            prose(&operation["summary"]),
            m = escape(method)
        );
    }
    out.push_str("</table></div></section>");
    for (_, path, method, operation) in &operations {
        out.push_str(&render_operation(path, method, operation));
    }
    out.push_str(&render_schemas(&doc["components"]["schemas"]));
    out.push_str(&render_seed_aliases(&doc["components"]["x-seed-aliases"]));
    out.push_str(&render_errors(&doc["components"]["x-error-codes"]));
    out
}

fn render_operation(path: &str, method: &str, operation: &Value) -> String {
    let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut out = format!(
        "<section class=\"endpoint\" id=\"{}\"><h2><span class=\"method {m}\">{m}</span>{}{}</h2><p>{}</p>",
        anchor(method, path),
        escape(path),
        if secured {
            " <span class=\"warn\">token</span>"
        } else {
            ""
        },
        prose(&operation["summary"]),
        m = escape(method)
    );
    if let Some(description) = operation["description"].as_str().filter(|d| !d.is_empty()) {
        let _ = write!(out, "<p class=\"muted\">{}</p>", prose(&Value::from(description)));
    }
    if let Some(parameters) = operation["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "<div class=\"scroll\"><table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>meaning</th></tr>",
        );
        for p in parameters {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&p["name"]),
                text(&p["in"]),
                type_of(&p["schema"]),
                if p["required"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                prose(&p["description"])
            );
        }
        out.push_str("</table></div>");
    }
    if let Some(body) = operation["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.iter().next())
    {
        let _ = write!(
            out,
            "<p>Body (<code>{}</code>): {}</p>",
            escape(body.0),
            type_of(&body.1["schema"])
        );
    }
    out.push_str("<div class=\"scroll\"><table><tr><th>answer</th><th>meaning</th><th>body</th></tr>");
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let body = response["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| type_of(&c["schema"]))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{body}</td></tr>",
            escape(status),
            prose(&response["description"])
        );
    }
    out.push_str("</table></div></section>");
    out
}

fn render_schemas(schemas: &Value) -> String {
    let mut out = String::from("<section id=\"schemas\"><h2>Schemas</h2>");
    for (name, schema) in schemas.as_object().into_iter().flatten() {
        let _ = write!(out, "<h3 id=\"schema-{0}\">{0}</h3>", escape(name));
        if let Some(description) = schema["description"].as_str() {
            let _ = write!(out, "<p class=\"muted\">{}</p>", prose(&Value::from(description)));
        }
        let Some(properties) = schema["properties"].as_object() else {
            let _ = write!(out, "<p>{}</p>", type_of(schema));
            continue;
        };
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(
            "<div class=\"scroll\"><table class=\"schema\"><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>",
        );
        for (field, property) in properties {
            let mut meaning = prose(&property["description"]);
            if let Some(examples) = property["examples"].as_array().filter(|e| !e.is_empty()) {
                let values: Vec<String> = examples
                    .iter()
                    .map(|e| escape(e.as_str().unwrap_or(&e.to_string())))
                    .collect();
                let _ = write!(meaning, " One of: <code>{}</code>", values.join("</code>, <code>"));
            }
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{meaning}</td></tr>",
                escape(field),
                type_of(property),
                if required.contains(&field.as_str()) {
                    "yes"
                } else {
                    "no"
                }
            );
        }
        out.push_str("</table></div>");
    }
    out.push_str("</section>");
    out
}

/// The seed system's field names each prediction endpoint reads as ours.
fn render_seed_aliases(models: &Value) -> String {
    let mut out = String::from(
        "<section id=\"seed-aliases\"><h2>The seed system's requests</h2><p>The prediction endpoints also read the seed \
         system's flat bodies — <code>{\"ges\": \"G001\", \"total_clients\": 45}</code>, <code>{\"cli\": 12345, \
         \"sex\": \"F\", \"age\": 45}</code> — with its names read as ours. An id alone looks the client, manager \
         or agency up; with feature values the answer is predicted from them. Our own feature names may be used \
         at the top level too.</p><div class=\"scroll\"><table><tr><th>model</th><th>seed name</th><th>read as</th></tr>",
    );
    for model in models.as_array().into_iter().flatten() {
        let name = text(&model["model"]);
        let _ = write!(
            out,
            "<tr><td>{name}</td><td><code>{}</code></td><td><code>{}</code> (the id)</td></tr>",
            text(&model["id"]["seed"]),
            text(&model["id"]["ours"])
        );
        for alias in model["features"].as_array().into_iter().flatten() {
            let factor = alias["factor"].as_f64().unwrap_or(1.0);
            let unit = if factor == 1.0 {
                String::new()
            } else {
                format!(" × {factor:.6}")
            };
            let _ = write!(
                out,
                "<tr><td>{name}</td><td><code>{}</code></td><td><code>{}</code>{unit}</td></tr>",
                text(&alias["seed"]),
                text(&alias["ours"])
            );
        }
    }
    out.push_str("</table></div></section>");
    out
}

fn render_errors(codes: &Value) -> String {
    let mut out = String::from(
        "<section id=\"errors\"><h2>Error codes</h2><div class=\"scroll\"><table><tr><th>code</th><th>status</th><th>meaning</th></tr>",
    );
    for code in codes.as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            text(&code["code"]),
            code["status"],
            prose(&code["meaning"])
        );
    }
    out.push_str("</table></div></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_of_the_document_is_rendered_with_its_schemas_and_errors() {
        let doc = crate::server::openapi::document(&crate::config::EngineConfig::default());
        let html = render(&doc);
        let mut endpoints = 0;
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys() {
                endpoints += 1;
                assert!(
                    html.contains(&format!("id=\"{}\"", anchor(method, path))),
                    "{method} {path} has no section"
                );
            }
        }
        assert!(endpoints >= 20, "{endpoints} endpoints");
        assert!(html.contains("id=\"schema-ChurnPrediction\""));
        assert!(
            html.contains("<a href=\"#schema-ChurnPrediction\">ChurnPrediction</a>"),
            "responses link their schema"
        );
        assert!(html.contains("<code>invalid_request</code>"));
        assert!(html.contains("<td>manager</td><td><code>ges</code></td><td><code>manager_id</code> (the id)</td>"));
        assert!(html.contains("<code>client_seniority_days</code></td><td><code>tenure_months</code> × 0.032854"));
        assert_eq!(anchor("post", "/api/v1/jobs/{name}/run"), "post-api-v1-jobs--name--run");
        let tricky = serde_json::json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/X<"}]});
        assert_eq!(type_of(&tricky), "null | <a href=\"#schema-X&lt;\">X&lt;</a>");
        assert_eq!(
            prose(&Value::from("the `run_id` and <b>")),
            "the <code>run_id</code> and &lt;b&gt;"
        );
        let left: Vec<&str> = html
            .split('`')
            .skip(1)
            .map(|rest| &rest[..rest.len().min(60)])
            .collect();
        assert!(left.is_empty(), "backticks left as written: {left:?}");
    }
}
