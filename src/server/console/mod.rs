//! The console: server-rendered pages for the people who open the daemon in a browser — ops
//! (jobs, models, alerts, runs, drift) at `/`, analysts (a client, the rankings, a what-if form)
//! under `/console/`, the API reference at `/docs` and the report index at `/reports/`.
//!
//! Plain HTML with one small inline stylesheet and no script: nothing is fetched, so a page
//! opens on a server without internet, behind a proxy, or on a phone. Every figure comes from
//! the same functions the JSON API answers with.

mod docs;
mod lookup;
mod overview;

use crate::report::svg::escape;
use crate::server::{ApiError, Shared};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(overview::page))
        .route("/console/clients", get(lookup::clients))
        .route("/console/managers", get(lookup::managers))
        .route("/console/agencies", get(lookup::agencies))
        .route("/console/what-if", get(lookup::what_if))
        .route("/docs", get(docs::page))
        .route("/reports/", get(overview::report_index))
        .route("/reports/index.html", get(overview::report_index))
        // The addresses people type for these pages.
        .route("/console", get(|| async { Redirect::permanent("/") }))
        .route("/console/", get(|| async { Redirect::permanent("/") }))
        .route("/reports", get(|| async { Redirect::permanent("/reports/") }))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
}

/// A missing page for a browser: the console's own page with its navigation, not JSON.
pub fn not_found_page(path: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        Section::Overview,
        &format!(
            "<h1>Not found</h1>{}",
            notice(&format!(
                "There is no page at {path}. The console starts at /, the API is described at /docs."
            ))
        ),
    )
}

/// The pages of the navigation bar, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Overview,
    Clients,
    Managers,
    Agencies,
    WhatIf,
    Docs,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Overview,
        Section::Clients,
        Section::Managers,
        Section::Agencies,
        Section::WhatIf,
        Section::Docs,
    ];

    fn link(self) -> (&'static str, &'static str) {
        match self {
            Section::Overview => ("/", "Overview"),
            Section::Clients => ("/console/clients", "Clients"),
            Section::Managers => ("/console/managers", "Managers"),
            Section::Agencies => ("/console/agencies", "Agencies"),
            Section::WhatIf => ("/console/what-if", "What-if"),
            Section::Docs => ("/docs", "API docs"),
        }
    }
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}\
header{background:#0b3d5c;color:#fff;padding:10px 16px;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center}\
nav{display:flex;flex-wrap:wrap;gap:4px 14px}header a{color:#fff;text-decoration:none;opacity:.85;white-space:nowrap}header a.here{opacity:1;border-bottom:2px solid #fff}\
header .brand{font-weight:700;font-size:18px;opacity:1;margin-right:8px}\
main{padding:16px;max-width:1240px}h1{font-size:22px;margin:4px 0 12px}h2{font-size:17px;margin:0 0 8px}\
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 16px;margin-bottom:16px}\
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px}\
td,th{border-bottom:1px solid #eceff2;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f5f7}\
.num{text-align:right;font-variant-numeric:tabular-nums}.nowrap{white-space:nowrap}\
.succeeded,.ok,.Low{color:#2e7d32}.failed,.timed_out,.interrupted,.firing,.bad,.High{color:#c62828;font-weight:600}\
.pending,.running,.warn,.Medium{color:#a15c00}.skipped,.cancelled,.muted{color:#6a737d}\
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #e1e4e8;border-radius:6px;padding:8px 12px;min-width:130px}\
.card b{display:block;font-size:20px}.notice{background:#fff8e1;border:1px solid #ffe08a;padding:8px 12px;border-radius:4px}\
form.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:8px;align-items:end}\
label{display:flex;flex-direction:column;font-size:12px;color:#4a5560;gap:2px}input,select,button{font-size:14px;padding:4px}\
code{background:#f0f2f4;padding:1px 4px;border-radius:3px}.method{font-weight:700;text-transform:uppercase;margin-right:6px}\
.get{color:#1f6feb}.post{color:#2e7d32}@media(max-width:640px){main{padding:8px}td,th{padding:3px 5px}.card{min-width:100px}.card b{font-size:17px}}";

/// A whole page: the navigation, `body`, and the status.
fn page(status: StatusCode, title: &str, here: Section, body: &str) -> Response {
    let nav: String = Section::ALL
        .iter()
        .map(|s| {
            let (href, name) = s.link();
            let class = if *s == here { " class=\"here\"" } else { "" };
            format!("<a href=\"{href}\"{class}>{name}</a>")
        })
        .chain([
            "<a href=\"/reports/\">Reports</a>".to_string(),
            "<a href=\"/metrics\">Metrics</a>".to_string(),
        ])
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — bankml</title><link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head><body>\
         <header><a class=\"brand\" href=\"/\">bankml</a><nav>{nav}</nav></header><main>{body}</main></body></html>",
        escape(title)
    );
    (status, Html(html)).into_response()
}

/// A notice in place of what could not be shown, with why.
fn notice(text: &str) -> String {
    format!("<p class=\"notice\">{}</p>", escape(text))
}

/// The error's message as a notice (`code: message`, and the field it names).
fn error_notice(error: &ApiError) -> String {
    let field = error
        .field
        .as_deref()
        .filter(|f| !f.is_empty() && !error.message.contains(f))
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    notice(&format!("{}{field}", error.message))
}

/// A value for a URL's query: letters, digits and `-_.~` as they are, the rest %-encoded.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A number for people: `digits` decimals, "–" for none or not finite.
fn number(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".into(),
    }
}

/// A stored timestamp (`2026-12-05T15:04:42.005Z`) for people: `2026-12-05 15:04:42 UTC`.
fn when(timestamp: &str) -> String {
    match (timestamp.get(..10), timestamp.get(11..19)) {
        (Some(day), Some(time)) if timestamp.ends_with('Z') => format!("{day} {time} UTC"),
        _ => timestamp.to_string(),
    }
}

/// A count for people: 17536 → 17,536.
fn count(n: u64) -> String {
    crate::vocab::text::thousands(n as usize)
}

/// A share as a percentage with one decimal.
fn percent(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{:.1} %", v * 100.0),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_numbers_read_for_people() {
        assert_eq!(query_value("M001"), "M001");
        assert_eq!(query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(number(Some(1.23456), 2), "1.23");
        assert_eq!(number(Some(f64::NAN), 2), "–");
        assert_eq!(number(None, 2), "–");
        assert_eq!(percent(Some(0.1234)), "12.3 %");
        assert_eq!(
            (count(17536), count(999), count(1_000_000)),
            ("17,536".into(), "999".into(), "1,000,000".into())
        );
        assert_eq!(when("2026-12-05T15:04:42.005Z"), "2026-12-05 15:04:42 UTC");
        assert_eq!(when("2026-12-07T03:00:00+01:00"), "2026-12-07T03:00:00+01:00");
    }
}
