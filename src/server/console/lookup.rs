//! The analysts' pages: a client looked up (churn rate, risk, the client's own reasons and
//! actions, products to offer), managers and agencies ranked with what drives each score, and
//! a what-if form on the prediction models — each answered by the same serving state as the
//! JSON API.

use super::{Section, error_notice, number, page, percent, query_value};
use crate::report::svg::escape;
use crate::server::extract::ApiQuery;
use crate::server::serving::{ChurnPrediction, Driver, Serving};
use crate::server::{ApiError, Shared, from_serving};
use crate::vocab::ModelKind;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write;

/// At-risk clients listed under the lookup form.
const TOP_AT_RISK: usize = 25;

fn status_of(error: &ApiError) -> StatusCode {
    error.code.status()
}

/// `/console/clients[?id=N]`: the lookup form, the client if one is asked for, and the clients
/// most at risk.
pub async fn clients(State(state): State<Shared>, ApiQuery(query): ApiQuery<HashMap<String, String>>) -> Response {
    let id = query.get("id").map(|s| s.trim()).filter(|s| !s.is_empty());
    let mut body = format!(
        "<h1>Clients</h1><section><form method=\"get\" action=\"/console/clients\">\
         <label>Client id <input name=\"id\" inputmode=\"numeric\" value=\"{}\" required></label> \
         <button type=\"submit\">Look up</button></form></section>",
        escape(id.unwrap_or(""))
    );
    let mut status = StatusCode::OK;
    let asked: Option<i64> = match id.map(|text| (text, text.parse::<i64>())) {
        Some((text, Err(_))) => {
            let e = ApiError::invalid("id", format!("a client id is a whole number, got \"{text}\""));
            status = status_of(&e);
            body.push_str(&error_notice(&e));
            None
        }
        Some((_, Ok(id))) => Some(id),
        None => None,
    };
    // One look at the serving state answers both the client and the list.
    let answer = from_serving(&state, |s| {
        let client = asked.map(|id| {
            s.churn_of(id).map_err(ApiError::from).map(|churn| {
                let products = s.recommend(id, s.default_recommendations()).ok();
                client_section(&churn, products.as_ref())
            })
        });
        Ok((client, s.all_clients(1, TOP_AT_RISK, None)?))
    })
    .await;
    match answer {
        Ok((client, at_risk)) => {
            match client {
                Some(Ok(html)) => body.push_str(&html),
                Some(Err(e)) => {
                    status = status_of(&e);
                    body.push_str(&error_notice(&e));
                }
                None => {}
            }
            body.push_str(&at_risk_section(&at_risk));
        }
        Err(e) => {
            if asked.is_some() {
                status = status_of(&e);
            }
            body.push_str(&error_notice(&e));
        }
    }
    page(status, "Clients", Section::Clients, &body)
}

fn client_section(churn: &ChurnPrediction, products: Option<&Value>) -> String {
    let risk = churn.risk_level;
    let id = churn.client_id.map(|i| i.to_string()).unwrap_or_default();
    let mut out = format!(
        "<section id=\"client\"><h2>Client {id}</h2><div class=\"cards\">\
         <div class=\"card\">risk<b class=\"{risk}\" id=\"risk\">{risk}</b></div>\
         <div class=\"card\">churn rate within the horizon<b id=\"churn-rate\">{}</b></div>\
         <div class=\"card\">ranking score<b>{}</b></div>\
         <div class=\"card\">model<b>churn v{}</b></div></div>",
        percent(churn.churn_rate),
        number(Some(churn.churn_probability), 3),
        churn.model_version
    );
    if churn.reasons.is_empty() {
        out.push_str("<p class=\"muted\">Below the medium risk level: no reasons or actions are drawn.</p>");
    } else {
        out.push_str(
            "<h2>Why</h2><p class=\"muted\">The features pushing this client's risk up most (exact SHAP). \
             The daily scoring file uses the approximate method for speed: its order can differ.</p><ol id=\"reasons\">",
        );
        for reason in &churn.reasons {
            let _ = write!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ol><h2>What to do</h2><ul id=\"actions\">");
        for action in &churn.recommended_actions {
            let _ = write!(out, "<li>{}</li>", escape(action));
        }
        out.push_str("</ul>");
    }
    match products.and_then(|p| p["recommendations"].as_array()) {
        Some(list) if !list.is_empty() => {
            out.push_str(
                "<h2>Products to offer</h2><div class=\"scroll\"><table id=\"products\"><tr><th>#</th><th>product</th>\
                 <th>category</th><th class=\"num\">score</th></tr>",
            );
            for p in list {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{} <span class=\"muted\">{}</span></td><td>{}</td><td class=\"num\">{}</td></tr>",
                    p["rank"],
                    escape(p["product_name"].as_str().unwrap_or("")),
                    escape(p["product_id"].as_str().unwrap_or("")),
                    escape(p["category"].as_str().unwrap_or("")),
                    number(p["score"].as_f64(), 3)
                );
            }
            out.push_str("</table></div>");
        }
        _ => out.push_str("<p class=\"muted\">No product recommendation (no recommender champion yet).</p>"),
    }
    out.push_str("</section>");
    out
}

fn at_risk_section(page: &Value) -> String {
    let mut out = format!(
        "<section id=\"at-risk\"><h2>Most at risk</h2><p class=\"muted\">The {TOP_AT_RISK} clients with the highest churn score \
         of {} (<a href=\"/api/v1/predict/all-clients-churn?page_size=1000\">all, as JSON</a>).</p>\
         <div class=\"scroll\"><table><tr><th>client</th><th>manager</th><th class=\"num\">churn rate</th><th>risk</th></tr>",
        page["total"]
    );
    for c in page["items"].as_array().into_iter().flatten() {
        let risk = c["risk_level"].as_str().unwrap_or("");
        let _ = write!(
            out,
            "<tr class=\"client\"><td><a href=\"/console/clients?id={id}\">{id}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"{risk}\">{risk}</td></tr>",
            escape(c["manager_id"].as_str().unwrap_or("–")),
            percent(c["churn_rate"].as_f64()),
            id = c["client_id"]
        );
    }
    out.push_str("</table></div></section>");
    out
}

pub async fn managers(State(state): State<Shared>) -> Response {
    ranking(&state, ModelKind::Manager, Section::Managers, "Managers").await
}

pub async fn agencies(State(state): State<Shared>) -> Response {
    ranking(&state, ModelKind::Agency, Section::Agencies, "Agencies").await
}

fn drivers_text(drivers: &[Driver]) -> String {
    drivers
        .iter()
        .map(|d| {
            let class = if d.effect < 0.0 { "bad" } else { "ok" };
            format!("<span class=\"{class}\">{:+.1}</span> {}", d.effect, escape(&d.feature))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every manager or agency, best predicted first, with the features that moved its score.
async fn ranking(state: &Shared, model: ModelKind, here: Section, title: &str) -> Response {
    let table = from_serving(state, |s| {
        let (version, ranked) = s.ranking(model)?;
        let mut out = format!(
            "<section><p class=\"muted\">Predicted performance score (0–100) of each of the {} {}, from the {model} \
             champion v{version}; the drivers are the features that moved each score most from the model's average, in score points. \
             Below the objective, what pulls the score down and the support it calls for.</p>\
             <div class=\"scroll\"><table id=\"ranking\"><tr><th>#</th><th>id</th><th class=\"num\">predicted</th>\
             <th class=\"num\">actual</th><th>drivers</th><th class=\"num\">chance of the objective</th><th>support</th></tr>",
            ranked.len(),
            title.to_lowercase()
        );
        for r in &ranked {
            let _ = write!(
                out,
                "<tr class=\"entity\"><td>{}</td><td><b>{}</b></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"support\">{}</td></tr>",
                r.rank,
                escape(r.id),
                number(Some(r.predicted_score), 1),
                number(r.actual_score, 1),
                drivers_text(r.drivers),
                r.objective
                    .map(|o| format!("{:.0} %", 100.0 * o.meets_objective_probability))
                    .unwrap_or_default(),
                escape(&r.objective.map(|o| o.support.join("; ")).unwrap_or_default())
            );
        }
        out.push_str("</table></div></section>");
        Ok(out)
    })
    .await;
    let (status, body) = match table {
        Ok(table) => (StatusCode::OK, table),
        Err(e) => (status_of(&e), error_notice(&e)),
    };
    page(status, title, here, &format!("<h1>{title}</h1>{body}"))
}

/// `/console/what-if?model=churn&age_years=45&…`: a form with every feature the champion
/// reads and, once some are given, its answer.
pub async fn what_if(State(state): State<Shared>, ApiQuery(query): ApiQuery<HashMap<String, String>>) -> Response {
    let asked = query.get("model").map(String::as_str).unwrap_or("churn");
    let model = match asked.parse::<ModelKind>() {
        Ok(model) if model.is_tabular() => model,
        _ => {
            let e = ApiError::invalid("model", format!("expected churn, manager or agency, got \"{asked}\""));
            return page(status_of(&e), "What-if", Section::WhatIf, &error_notice(&e));
        }
    };
    let answer = from_serving(&state, |s| what_if_page(s, model, &query)).await;
    match answer {
        Ok((status, body)) => page(status, "What-if", Section::WhatIf, &body),
        Err(e) => page(status_of(&e), "What-if", Section::WhatIf, &error_notice(&e)),
    }
}

fn what_if_page(
    s: &Serving,
    model: ModelKind,
    query: &HashMap<String, String>,
) -> Result<(StatusCode, String), ApiError> {
    let design = s
        .design(model)
        .ok_or_else(|| ApiError::from(crate::server::serving::Refusal::NoModel(model)))?;
    // Start from a real client (manager, agency) when `from` names one: its own values, with
    // the form's over them.
    let from = query.get("from").map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut start_problem = None;
    let base: Map<String, Value> = match from {
        Some(id) => s.features_of(model, id).unwrap_or_else(|| {
            start_problem = Some(ApiError::new(
                crate::server::ErrorCode::NotFound,
                format!("no {model} {id} in the latest snapshot to start from"),
            ));
            Map::new()
        }),
        None => Map::new(),
    };
    let values: HashMap<String, String> = base
        .iter()
        .filter_map(|(name, v)| match v {
            Value::Number(n) => Some((name.clone(), n.to_string())),
            Value::String(t) => Some((name.clone(), t.clone())),
            _ => None,
        })
        .chain(
            query
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.clone(), v.trim().to_string())),
        )
        .collect();
    let given = |name: &str| values.get(name).map(String::as_str);
    let mut body = String::from("<h1>What-if</h1><section><p>");
    for kind in [ModelKind::Churn, ModelKind::Manager, ModelKind::Agency] {
        if kind == model {
            let _ = write!(body, "<b>{kind}</b> ");
        } else {
            let _ = write!(body, "<a href=\"/console/what-if?model={kind}\">{kind}</a> ");
        }
    }
    body.push_str(
        "</p><p class=\"muted\">Give the values you know, or start from a real one (its id below) and change some; \
         the values left empty count as unknown. The same answer comes from the prediction API with these features.</p>",
    );
    if let Some(e) = &start_problem {
        body.push_str(&error_notice(e));
    }
    // The answer first, when there is a question.
    let mut features = Map::new();
    let mut problem = None;
    for name in &design.numeric {
        if let Some(text) = given(name) {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    features.insert(name.clone(), serde_json::json!(v));
                }
                _ => {
                    problem = Some(ApiError::invalid(
                        name,
                        format!("{name}: expected a number, got \"{text}\""),
                    ))
                }
            }
        }
    }
    for (name, _) in &design.categorical {
        if let Some(text) = given(name) {
            features.insert(name.clone(), Value::String(text.to_string()));
        }
    }
    let mut status = StatusCode::OK;
    if let Some(e) = problem {
        status = status_of(&e);
        body.push_str(&error_notice(&e));
    } else if !features.is_empty() {
        let answered = match model {
            ModelKind::Churn => s.churn_of_features(&features, "").map(|c| {
                format!(
                    "<div class=\"cards\" id=\"answer\"><div class=\"card\">risk<b class=\"{r}\">{r}</b></div>\
                     <div class=\"card\">churn rate<b>{}</b></div></div>{}{}",
                    percent(c.churn_rate),
                    list("Why", &c.reasons),
                    list("What to do", &c.recommended_actions),
                    r = c.risk_level
                ) + &missing(&c.missing_features)
            }),
            _ => s.score_of_features(model, &features, "").map(|p| {
                format!(
                    "<div class=\"cards\" id=\"answer\"><div class=\"card\">predicted score<b>{}</b></div></div><p>Drivers: {}</p>",
                    number(Some(p.predicted_score), 1),
                    drivers_text(&p.drivers)
                ) + &missing(&p.missing_features)
            }),
        };
        let known = features.len();
        let total = design.numeric.len() + design.categorical.len();
        if known * 2 < total {
            let _ = write!(
                body,
                "<p class=\"notice\">Only {known} of the {total} features are given: the answer is about a {model} \
                 whose other values are unknown, not a typical one. Start from a real one to ask \
                 “what if this one changed”.</p>"
            );
        }
        match answered {
            Ok(html) => body.push_str(&html),
            Err(refusal) => {
                let e = ApiError::from(refusal);
                status = status_of(&e);
                body.push_str(&error_notice(&e));
            }
        }
    }
    let _ = write!(
        body,
        "</section><section><form class=\"fields\" method=\"get\" action=\"/console/what-if\"><input type=\"hidden\" name=\"model\" value=\"{model}\">\
         <label>start from ({model} id)<input name=\"from\" value=\"{}\"></label>",
        escape(from.unwrap_or(""))
    );
    for name in &design.numeric {
        let _ = write!(
            body,
            "<label>{n}<input name=\"{n}\" inputmode=\"decimal\" value=\"{}\"></label>",
            escape(given(name).unwrap_or("")),
            n = escape(name)
        );
    }
    for (name, categories) in &design.categorical {
        let _ = write!(
            body,
            "<label>{n}<select name=\"{n}\"><option value=\"\">unknown</option>",
            n = escape(name)
        );
        for c in categories {
            let selected = if given(name) == Some(c.as_str()) {
                " selected"
            } else {
                ""
            };
            let _ = write!(body, "<option{selected}>{}</option>", escape(c));
        }
        body.push_str("</select></label>");
    }
    let _ = write!(
        body,
        "<button type=\"submit\">Predict</button></form><p class=\"muted\">Link to this question: \
         <code>/console/what-if?model={model}{}</code></p></section>",
        features
            .iter()
            .map(|(k, v)| format!(
                "&amp;{}={}",
                query_value(k),
                query_value(v.to_string().trim_matches('"'))
            ))
            .collect::<String>()
    );
    Ok((status, body))
}

fn list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let items: String = items.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
    format!("<h2>{title}</h2><ul>{items}</ul>")
}

fn missing(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    format!(
        "<p class=\"muted\">Read as unknown ({}): {}</p>",
        names.len(),
        escape(&names.join(", "))
    )
}
