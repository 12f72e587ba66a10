//! `/`: what ops looks at each morning — the bank's headline figures, every job (last and next
//! run), the models (champion, challenger, last promotion), the alerts firing and silenced,
//! drift per feature over the last benchmark runs, and the run history linked to each report.
//! And `/reports/`: the report index the jobs write, served.

use super::{Section, count, error_notice, notice, number, percent, query_value, when};
use crate::alerts::state::{AlertState, Phase};
use crate::alerts::store::Silence;
use crate::engine::scheduler::JobStatus;
use crate::models::registry::Registry;
use crate::report::svg::escape;
use crate::server::{ApiError, Shared, blocking, from_serving};
use crate::vocab::ModelKind;
use crate::vocab::run::RunRecord;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Benchmark runs shown in the drift table, newest last.
const DRIFT_RUNS: usize = 8;
/// Features shown in the drift table: those closest to (or past) their threshold.
const DRIFT_FEATURES: usize = 15;
/// Runs shown in the history table.
const RECENT_RUNS: usize = 25;
/// Retraining runs searched for the last promotion.
const RETRAIN_RUNS: usize = 24;

pub async fn page(State(state): State<Shared>) -> Response {
    let jobs = crate::server::routes::jobs::describe(&state).await;
    let summary = from_serving(&state, |s| Ok(s.summary())).await;
    let shared = state.clone();
    let statuses = jobs.as_ref().map(Clone::clone).unwrap_or_default();
    let facts = match blocking(move || Facts::gather(&shared, &statuses)).await {
        Ok(facts) => facts,
        Err(e) => {
            return super::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Overview",
                Section::Overview,
                &error_notice(&e),
            );
        }
    };
    let mut body = String::from("<h1>Overview</h1>");
    body.push_str(&headline(&summary));
    body.push_str(&jobs_section(&jobs, &facts));
    body.push_str(&alerts_section(&facts));
    body.push_str(&models_section(&facts));
    body.push_str(&drift_section(&facts));
    body.push_str(&campaigns_section(&facts));
    body.push_str(&runs_section(&facts));
    super::page(StatusCode::OK, "Overview", Section::Overview, &body)
}

/// A model's versions and aliases, and the newest promotion the retraining made.
struct ModelFacts {
    kind: ModelKind,
    versions: Vec<u32>,
    champion: Option<u32>,
    challenger: Option<u32>,
    trained_at: Option<String>,
    promoted: Option<(String, i64, String)>,
}

/// One feature's PSI over the drift runs, with its threshold at the newest.
struct DriftRow {
    model: String,
    feature: String,
    psi: Vec<Option<f64>>,
    threshold: Option<f64>,
}

/// What the overview shows besides the scheduler's answer, read from the history, the alert
/// store, the registry and the runs' reports.
struct Facts {
    last_runs: BTreeMap<String, RunRecord>,
    recent: Vec<RunRecord>,
    alerts: Vec<AlertState>,
    silences: Vec<Silence>,
    models: Vec<ModelFacts>,
    /// Column headers (run id, date) of the drift table, oldest first.
    drift_runs: Vec<(i64, String)>,
    drift: Vec<DriftRow>,
    /// The newest business run's report: its job, run id and campaigns.
    campaigns: Option<(String, i64, crate::report::campaigns::BusinessSummary)>,
    problems: Vec<String>,
}

impl Facts {
    fn gather(state: &Shared, jobs: &[JobStatus]) -> Facts {
        let mut problems = Vec::new();
        let mut note = |what: &str, e: &dyn std::fmt::Display| problems.push(format!("{what}: {e}"));
        let mut last_runs = BTreeMap::new();
        for job in jobs {
            match state.history.list(Some(&job.name), 1) {
                Ok(mut runs) => {
                    if let Some(run) = runs.pop() {
                        last_runs.insert(job.name.clone(), run);
                    }
                }
                Err(e) => note("run history", &e),
            }
        }
        let recent = state.history.list(None, RECENT_RUNS).unwrap_or_else(|e| {
            note("run history", &e);
            Vec::new()
        });
        let now = chrono::Utc::now();
        let alerts = state.alerting.store.list(now).unwrap_or_else(|e| {
            note("alerts", &e);
            Vec::new()
        });
        let silences = state.alerting.store.silences(now).unwrap_or_else(|e| {
            note("silences", &e);
            Vec::new()
        });
        let of_kind = |kind: &str| -> Vec<&str> {
            jobs.iter()
                .filter(|j| j.kind == kind)
                .map(|j| j.name.as_str())
                .collect()
        };
        let promotions = promotions(state, &of_kind("retrain"));
        let models = ModelKind::ALL
            .into_iter()
            .map(|kind| model_facts(&state.config.models.dir, kind, promotions.get(&kind).cloned()))
            .collect();
        let (drift_runs, drift) = drift(state, &of_kind("benchmark"));
        let campaigns = of_kind("business")
            .into_iter()
            .flat_map(|job| {
                reports(state, job, 1)
                    .into_iter()
                    .map(move |(run, report)| (job, run, report))
            })
            .max_by_key(|(_, run, _)| run.id)
            .and_then(|(job, run, report)| {
                match crate::report::summary::JobSummary::read("business", &report.outcome.summary) {
                    Ok(crate::report::summary::JobSummary::Business(summary)) => {
                        Some((job.to_string(), run.id, *summary))
                    }
                    _ => None,
                }
            });
        Facts {
            campaigns,
            last_runs,
            recent,
            alerts,
            silences,
            models,
            drift_runs,
            drift,
            problems,
        }
    }
}

/// The reports of a job's newest runs that wrote one, newest first.
fn reports(state: &Shared, job: &str, last: usize) -> Vec<(RunRecord, crate::report::Report)> {
    state
        .history
        .list(Some(job), last)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|run| {
            let path = run.report_path.clone()?;
            let report = crate::report::read(std::path::Path::new(&path)).ok()?;
            Some((run, report))
        })
        .collect()
}

/// Per model, the newest retraining run that promoted its challenger: (date, run, job).
fn promotions(state: &Shared, retrain_jobs: &[&str]) -> BTreeMap<ModelKind, (String, i64, String)> {
    let mut out: BTreeMap<ModelKind, (String, i64, String)> = BTreeMap::new();
    for job in retrain_jobs {
        for (run, report) in reports(state, job, RETRAIN_RUNS) {
            for o in &report.outcome.observations {
                let model = o.labels.get("model").and_then(|m| m.parse::<ModelKind>().ok());
                if let Some(model) = model
                    && o.name == crate::vocab::catalogue::RETRAIN_PROMOTED.name
                    && o.value >= 1.0
                    && out.get(&model).is_none_or(|(_, id, _)| *id < run.id)
                {
                    let date = run.started_at.get(..10).unwrap_or(&run.started_at).to_string();
                    out.insert(model, (date, run.id, run.job.clone()));
                }
            }
        }
    }
    out
}

fn model_facts(dir: &std::path::Path, kind: ModelKind, promoted: Option<(String, i64, String)>) -> ModelFacts {
    let registry = Registry::new(dir);
    let aliases = registry.aliases(kind).unwrap_or_default();
    let trained_at = aliases.champion.and_then(|v| registry.created_at(kind, v));
    ModelFacts {
        kind,
        versions: registry.versions(kind).unwrap_or_default(),
        champion: aliases.champion,
        challenger: aliases.challenger,
        trained_at,
        promoted,
    }
}

/// Each feature's PSI over the newest benchmark runs, the features nearest their threshold
/// first.
fn drift(state: &Shared, benchmark_jobs: &[&str]) -> (Vec<(i64, String)>, Vec<DriftRow>) {
    use crate::vocab::catalogue::{FEATURE_PSI, FEATURE_PSI_THRESHOLD};
    let mut runs: Vec<(RunRecord, crate::report::Report)> = benchmark_jobs
        .iter()
        .flat_map(|job| reports(state, job, DRIFT_RUNS))
        .collect();
    runs.sort_by_key(|(run, _)| run.id);
    let runs: Vec<_> = runs.into_iter().rev().take(DRIFT_RUNS).rev().collect();
    let mut rows: BTreeMap<(String, String), DriftRow> = BTreeMap::new();
    for (column, (_, report)) in runs.iter().enumerate() {
        for o in &report.outcome.observations {
            let (Some(model), Some(feature)) = (o.labels.get("model"), o.labels.get("feature")) else {
                continue;
            };
            let row = || DriftRow {
                model: model.clone(),
                feature: feature.clone(),
                psi: vec![None; runs.len()],
                threshold: None,
            };
            if o.name == FEATURE_PSI.name {
                rows.entry((model.clone(), feature.clone())).or_insert_with(row).psi[column] = Some(o.value);
            } else if o.name == FEATURE_PSI_THRESHOLD.name && column + 1 == runs.len() {
                rows.entry((model.clone(), feature.clone()))
                    .or_insert_with(row)
                    .threshold = Some(o.value);
            }
        }
    }
    let closeness = |r: &DriftRow| match (r.psi.last().copied().flatten(), r.threshold) {
        (Some(psi), Some(threshold)) if threshold > 0.0 => psi / threshold,
        (Some(psi), _) => psi,
        _ => f64::NEG_INFINITY,
    };
    let mut rows: Vec<DriftRow> = rows.into_values().collect();
    rows.sort_by(|a, b| closeness(b).total_cmp(&closeness(a)));
    rows.truncate(DRIFT_FEATURES);
    let headers = runs
        .iter()
        .map(|(run, _)| {
            let when = run.scheduled_at.as_deref().unwrap_or(&run.started_at);
            (run.id, when.get(..10).unwrap_or(when).to_string())
        })
        .collect();
    (headers, rows)
}

fn headline(summary: &Result<Value, ApiError>) -> String {
    let mut out = String::from("<section id=\"bank\"><h2>The bank today</h2>");
    match summary {
        Err(e) => out.push_str(&error_notice(e)),
        Ok(s) => {
            let clients = &s["clients"];
            let mut cards = vec![("snapshot", s["snapshot"].as_str().unwrap_or("–").to_string())];
            if clients.is_object() {
                cards.push(("current clients", count(clients["count"].as_u64().unwrap_or(0))));
                cards.push(("expected churn", percent(clients["expected_churn_rate"].as_f64())));
                for level in ["High", "Medium", "Low"] {
                    cards.push((level, count(clients["by_risk"][level].as_u64().unwrap_or(0))));
                }
            }
            for name in ["managers", "agencies"] {
                if let Some(count) = s[name]["count"].as_u64() {
                    cards.push((name, super::count(count)));
                }
            }
            out.push_str("<div class=\"cards\">");
            for (name, value) in cards {
                let label = if ["High", "Medium", "Low"].contains(&name) {
                    format!("{name} risk clients")
                } else {
                    name.to_string()
                };
                let _ = write!(
                    out,
                    "<div class=\"card\">{}<b>{}</b></div>",
                    escape(&label),
                    escape(&value)
                );
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</section>");
    out
}

/// Where the daemon serves a run's report.
fn report_href(job: &str, run: i64) -> String {
    format!("/reports/{}/{run}/report.html", query_value(job))
}

fn run_status(run: &RunRecord) -> String {
    let status = run.status.name();
    let report = match &run.report_path {
        Some(_) => format!(" <a href=\"{}\">report</a>", report_href(&run.job, run.id)),
        None => String::new(),
    };
    format!(
        "<span class=\"{status}\">{status}</span> {} <span class=\"muted\">({} s)</span>{report}",
        escape(&when(&run.started_at)),
        number(run.seconds, 1)
    )
}

fn jobs_section(jobs: &Result<Vec<JobStatus>, ApiError>, facts: &Facts) -> String {
    let mut out = String::from("<section id=\"jobs\"><h2>Jobs</h2>");
    let jobs = match jobs {
        Ok(jobs) => jobs,
        Err(e) => {
            out.push_str(&error_notice(e));
            out.push_str("</section>");
            return out;
        }
    };
    out.push_str(
        "<div class=\"scroll\"><table><tr><th>job</th><th>now</th><th>last run</th><th>next run</th>\
         <th>kind</th><th>schedule</th></tr>",
    );
    for job in jobs {
        let now = if job.running {
            "<span class=\"running\">running</span>".to_string()
        } else if !job.enabled {
            "<span class=\"muted\">disabled</span>".to_string()
        } else if job.queued > 0 {
            format!("{} queued", job.queued)
        } else {
            "idle".to_string()
        };
        let last = facts
            .last_runs
            .get(&job.name)
            .map(run_status)
            .unwrap_or_else(|| "<span class=\"muted\">never</span>".into());
        let _ = write!(
            out,
            // What ops looks for first (state, last and next run) before what rarely changes,
            // so a phone shows it without scrolling sideways.
            "<tr class=\"job\"><td><b>{}</b></td><td>{now}</td><td>{last}</td><td>{}</td><td>{}</td><td class=\"nowrap\"><code>{}</code> {}</td></tr>",
            escape(&job.name),
            escape(&job.next_run.as_deref().map(when).unwrap_or_else(|| "–".into())),
            escape(&job.kind),
            escape(&job.schedule),
            escape(&job.timezone)
        );
    }
    out.push_str("</table></div></section>");
    out
}

fn alerts_section(facts: &Facts) -> String {
    let mut out = String::from("<section id=\"alerts\"><h2>Alerts</h2>");
    let active: Vec<&AlertState> = facts.alerts.iter().filter(|a| a.state != Phase::Inactive).collect();
    if active.is_empty() {
        out.push_str("<p class=\"ok\">No alert is firing or pending.</p>");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table><tr><th>state</th><th>rule</th><th>labels</th><th>severity</th>\
             <th>since</th><th>value</th><th>summary</th></tr>",
        );
        for a in active {
            let state = a.state.as_str();
            let _ = write!(
                out,
                "<tr class=\"alert\"><td class=\"{state}\">{state}</td><td><b>{}</b></td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&a.rule),
                escape(&a.labels),
                escape(a.severity.as_deref().unwrap_or("")),
                a.active_since
                    .map(|t| when(&crate::vocab::time::iso(t)))
                    .unwrap_or_default(),
                number(a.value, 4),
                escape(a.summary.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</table></div>");
    }
    if facts.silences.is_empty() {
        out.push_str("<p class=\"muted\">No silence is active.</p>");
    } else {
        out.push_str("<h2>Silenced</h2><ul>");
        for s in &facts.silences {
            let _ = write!(
                out,
                "<li class=\"silence\"><b>{}</b> until {}{}</li>",
                escape(&s.rule),
                escape(&when(&s.until)),
                s.comment
                    .as_deref()
                    .map(|c| format!(" — {}", escape(c)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

fn models_section(facts: &Facts) -> String {
    let mut out = String::from(
        "<section id=\"models\"><h2>Models</h2><div class=\"scroll\"><table><tr><th>model</th><th>champion</th>\
         <th>trained</th><th>challenger</th><th>versions</th><th>last promotion</th></tr>",
    );
    let version = |v: Option<u32>| v.map(|v| format!("v{v}")).unwrap_or_else(|| "–".into());
    for m in &facts.models {
        let promoted = match &m.promoted {
            Some((date, run, job)) => format!(
                "{} (<a href=\"{}\">run {run}</a>)",
                escape(date),
                report_href(job, *run)
            ),
            None => "<span class=\"muted\">none recorded</span>".into(),
        };
        let _ = write!(
            out,
            "<tr class=\"model\"><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{promoted}</td></tr>",
            m.kind,
            version(m.champion),
            escape(&m.trained_at.as_deref().map(when).unwrap_or_else(|| "–".into())),
            version(m.challenger),
            m.versions.len()
        );
    }
    out.push_str("</table></div></section>");
    out
}

fn drift_section(facts: &Facts) -> String {
    let mut out = String::from(
        "<section id=\"drift\"><h2>Drift per feature</h2>\
         <p class=\"muted\">PSI of each feature against its model's reference, over the newest benchmark runs; \
         the features nearest their learned threshold first.</p>",
    );
    if facts.drift.is_empty() {
        out.push_str(&notice("No benchmark report with drift figures yet."));
        out.push_str("</section>");
        return out;
    }
    out.push_str("<div class=\"scroll\"><table><tr><th>model</th><th>feature</th>");
    for (id, date) in &facts.drift_runs {
        let _ = write!(
            out,
            "<th class=\"num\">{}<br><span class=\"muted\">run {id}</span></th>",
            escape(date)
        );
    }
    out.push_str("<th class=\"num\">threshold</th></tr>");
    for row in &facts.drift {
        let _ = write!(
            out,
            "<tr class=\"drift\"><td>{}</td><td>{}</td>",
            escape(&row.model),
            escape(&row.feature)
        );
        for psi in &row.psi {
            let class = match (psi, row.threshold) {
                (Some(p), Some(t)) if *p > t => "bad",
                (Some(p), Some(t)) if *p > t / 2.0 => "warn",
                _ => "",
            };
            let _ = write!(out, "<td class=\"num {class}\">{}</td>", number(*psi, 3));
        }
        let _ = write!(out, "<td class=\"num\">{}</td></tr>", number(row.threshold, 3));
    }
    out.push_str("</table></div></section>");
    out
}

/// The newest complete campaign of each kind: each arm's rates and the comparisons found
/// significant, linked to the report and the API.
fn campaigns_section(facts: &Facts) -> String {
    let Some((job, run, summary)) = &facts.campaigns else {
        return String::new();
    };
    let mut out = format!(
        "<section id=\"campaigns\"><h2>Campaigns</h2><p class=\"muted\">As of {}, from the newest \
         <a href=\"{}\">business report</a>; every campaign at <a href=\"/api/v1/campaigns\">/api/v1/campaigns</a>.</p>",
        escape(&summary.snapshot),
        report_href(job, *run)
    );
    let rate =
        |r: Option<crate::report::campaigns::Rate>| r.map(|r| format!("{:.1} %", 100.0 * r.rate)).unwrap_or_default();
    for kind in crate::data::campaign::CampaignKind::ALL {
        let Some(campaign) = summary.newest_complete(kind) else {
            continue;
        };
        let _ = write!(
            out,
            "<h3><a href=\"/api/v1/campaigns/{id}\">{id}</a></h3><div class=\"scroll\"><table class=\"campaign\">\
             <tr><th>arm</th><th class=\"num\">clients</th><th class=\"num\">click-through</th>\
             <th class=\"num\">conversion</th><th class=\"num\">retained</th><th></th></tr>",
            id = campaign.campaign
        );
        for arm in &campaign.arms {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td>{}</td></tr>",
                arm.arm,
                arm.clients,
                rate(arm.click_through),
                rate(arm.conversion),
                rate(arm.retained),
                if arm.too_few { "too few contacts" } else { "" }
            );
        }
        out.push_str("</table></div>");
        let significant: Vec<String> = campaign
            .comparisons
            .iter()
            .filter(|c| c.significant)
            .filter_map(|c| {
                c.figures
                    .map(|f| format!("{} {:+.1} points", c.name(), 100.0 * f.difference))
            })
            .collect();
        let _ = write!(
            out,
            "<p>Significant after Holm: {}.</p>",
            if significant.is_empty() {
                "none".to_string()
            } else {
                escape(&significant.join("; "))
            }
        );
    }
    out.push_str("</section>");
    out
}

fn runs_section(facts: &Facts) -> String {
    let mut out = String::from(
        "<section id=\"runs\"><h2>Recent runs</h2><p><a href=\"/reports/\">Every run</a></p>\
         <div class=\"scroll\"><table><tr><th>run</th><th>job</th><th>trigger</th><th>status</th><th>error</th></tr>",
    );
    for run in &facts.recent {
        let _ = write!(
            out,
            "<tr class=\"run\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            run.id,
            escape(&run.job),
            escape(&run.trigger),
            run_status(run),
            escape(run.error.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table></div>");
    for problem in &facts.problems {
        out.push_str(&notice(problem));
    }
    out.push_str("</section>");
    out
}

/// `/reports/`: the index the jobs keep (`reports/index.html`), whose links are relative to it.
pub async fn report_index(State(state): State<Shared>) -> Response {
    let path = state.config.data.reports_dir.join("index.html");
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response(),
        Err(_) => super::page(
            StatusCode::NOT_FOUND,
            "Reports",
            Section::Overview,
            &notice("No run has written a report yet: the index appears after the first run."),
        ),
    }
}
