//! `report.html`: one self-contained page per run — headline figures, the charts that explain
//! them (ROC, precision-recall, calibration, confusion matrix, predicted vs actual, feature
//! importance, drift histograms of the drifted features) and each headline figure's trend over
//! the job's past runs. No scripts, no fonts, no network.

use super::Report;
use super::svg::{self, Series, escape};
use crate::vocab::ModelKind;
use crate::vocab::text::format_value as number;
use serde_json::Value;
use std::fmt::Write;

/// Observations whose trend is charted when present (name, label to tell series apart).
const TRENDS: [(&str, &str); 7] = [
    ("churn_auc", "model"),
    ("performance_rmse", "model"),
    ("recommender_precision_at_k", "model"),
    ("cv_metric_mean", "model"),
    ("drift_share", "model"),
    ("scored_clients", ""),
    ("churn_mean_probability", ""),
];

fn points(value: &Value) -> Vec<(f64, f64)> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn churn_section(out: &mut String, churn: &Value) {
    let curves = &churn["curves"];
    if curves.is_object() {
        out.push_str("<h2>Churn</h2><div class=\"charts\">");
        out.push_str(&svg::lines(
            "roc-curve",
            &format!(
                "ROC curve (AUC {})",
                number(churn["metrics"]["roc_auc"].as_f64().unwrap_or(f64::NAN))
            ),
            "false positive rate",
            "true positive rate",
            &[Series {
                name: "model",
                points: points(&curves["roc"]),
            }],
            Some(((0.0, 1.0), (0.0, 1.0))),
            true,
        ));
        out.push_str(&svg::lines(
            "pr-curve",
            &format!(
                "Precision-recall (AP {})",
                number(churn["metrics"]["average_precision"].as_f64().unwrap_or(f64::NAN))
            ),
            "recall",
            "precision",
            &[Series {
                name: "model",
                points: points(&curves["precision_recall"]),
            }],
            Some(((0.0, 1.0), (0.0, 1.0))),
            false,
        ));
        let calibration: Vec<(f64, f64)> = curves["calibration"]
            .as_array()
            .map(|bins| {
                bins.iter()
                    .filter_map(|b| Some((b["mean_predicted"].as_f64()?, b["observed_rate"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&svg::lines(
            "calibration",
            "Calibration",
            "mean predicted probability",
            "observed churn rate",
            &[Series {
                name: "model",
                points: calibration,
            }],
            Some(((0.0, 1.0), (0.0, 1.0))),
            true,
        ));
        let c = &churn["metrics"]["confusion"];
        let get = |k: &str| c[k].as_f64().unwrap_or(0.0);
        out.push_str(&svg::confusion(
            "confusion-matrix",
            get("tp"),
            get("fp"),
            get("tn"),
            get("fn"),
        ));
        out.push_str("</div>");
    }
    importance(out, ModelKind::Churn.as_str(), &churn["importance"]);
}

fn importance(out: &mut String, model: &str, value: &Value) {
    let items: Vec<(String, f64)> = value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_f64()?)))
                .take(10)
                .collect()
        })
        .unwrap_or_default();
    if !items.is_empty() {
        out.push_str("<div class=\"charts\">");
        out.push_str(&svg::ranking(
            &format!("importance-{model}"),
            &format!("Feature importance ({model}, gain)"),
            &items,
        ));
        out.push_str("</div>");
    }
}

fn drift_section(out: &mut String, model: &str, drift: &Value) {
    let Some(features) = drift["features"].as_object() else {
        return;
    };
    let threshold = drift["verdict"]["psi_threshold"].as_f64().unwrap_or(0.2);
    let mut drifted: Vec<(&String, &Value)> = features
        .iter()
        .filter(|(_, d)| d["psi"].as_f64().is_some_and(|p| p > threshold))
        .collect();
    drifted.sort_by(|a, b| {
        b.1["psi"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a.1["psi"].as_f64().unwrap_or(0.0))
    });
    let verdict = &drift["verdict"];
    let _ = write!(
        out,
        "<p>Drift of the {model} model's features: {} of {} drifted (PSI &gt; {threshold}); dataset drift: <b>{}</b>.</p>",
        verdict["drifted_features"],
        verdict["features"],
        if verdict["dataset_drift"] == true { "yes" } else { "no" }
    );
    if drifted.is_empty() {
        return;
    }
    out.push_str("<div class=\"charts\">");
    for (name, d) in drifted.iter().take(6) {
        let labels: Vec<String> = match d["categories"].as_array() {
            Some(c) => c.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect(),
            None => {
                let edges: Vec<f64> = d["bin_edges"]
                    .as_array()
                    .map(|e| e.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                (0..edges.len().saturating_sub(1))
                    .map(|i| format!("{}", (edges[i] * 100.0).round() / 100.0))
                    .collect()
            }
        };
        let shares = |key: &str| -> Vec<f64> {
            d[key]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let (reference, current) = (shares("reference_shares"), shares("current_shares"));
        let n = labels.len().min(reference.len()).min(current.len());
        out.push_str(&svg::bars(
            &format!(
                "drift-{model}-{}",
                name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
            &format!("{name}: PSI {}", number(d["psi"].as_f64().unwrap_or(f64::NAN))),
            "share of rows",
            &labels[..n],
            &[
                ("training reference", reference[..n].to_vec()),
                ("current", current[..n].to_vec()),
            ],
        ));
    }
    out.push_str("</div>");
}

fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The page for `report`; `past` are earlier reports of the same job, oldest first.
pub fn render(report: &Report, past: &[Report]) -> String {
    let outcome = &report.outcome;
    let summary = &outcome.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bankml — {job} run {id}</title><style>\
         body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0 16px}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}} th{{background:#f3f3f3}}\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}} .chart{{border:1px solid #ddd}} .meta{{color:#555}}\
         </style></head><body><h1>{job} — run {id}</h1>",
        job = escape(&report.job),
        id = report.run_id
    );
    let models: Vec<String> = report
        .models
        .iter()
        .map(|(m, v)| format!("{m} v{}", v.map_or("–".into(), |v| v.to_string())))
        .collect();
    let _ = write!(
        out,
        "<p class=\"meta\">{} job · status <b>succeeded</b> · started {} · {:.1} s · snapshot {} · champions: {}</p>",
        escape(&report.kind),
        escape(&outcome.started_at),
        outcome.seconds,
        escape(summary["snapshot"].as_str().unwrap_or("–")),
        escape(&models.join(", "))
    );

    out.push_str("<h2>Figures</h2>");
    let rows: Vec<Vec<String>> = outcome
        .observations
        .iter()
        .filter(|o| !o.labels.contains_key("feature"))
        .map(|o| {
            vec![
                o.name.clone(),
                crate::vocab::text::join_labels(&o.labels, ", "),
                number(o.value),
            ]
        })
        .collect();
    table(&mut out, &["observation", "labels", "value"], &rows);

    let churn = &summary[ModelKind::Churn.as_str()];
    if churn.is_object() {
        churn_section(&mut out, churn);
        drift_section(&mut out, ModelKind::Churn.as_str(), &churn["drift"]);
    }
    for model in [ModelKind::Manager, ModelKind::Agency] {
        let section = &summary[model.as_str()];
        let model = model.as_str();
        if !section.is_object() {
            continue;
        }
        let pairs = points(&section["actual_vs_predicted"]);
        if !pairs.is_empty() || section["importance"].is_array() {
            let _ = write!(out, "<h2>{}</h2>", escape(model));
        }
        if !pairs.is_empty() {
            out.push_str("<div class=\"charts\">");
            out.push_str(&svg::scatter(
                &format!("predicted-vs-actual-{model}"),
                &format!("{model}: predicted vs actual score"),
                "actual score",
                "predicted score",
                &pairs,
            ));
            out.push_str("</div>");
        }
        importance(&mut out, model, &section["importance"]);
        drift_section(&mut out, model, &section["drift"]);
        if let Some(reason) = section["reason"].as_str() {
            let _ = write!(out, "<p><b>Decision:</b> {}</p>", escape(reason));
        }
    }
    for model in [ModelKind::Churn, ModelKind::Recommender] {
        if let Some(reason) = summary[model.as_str()]["reason"].as_str() {
            let _ = write!(out, "<p><b>{model}:</b> {}</p>", escape(reason));
        }
    }

    // Trends: each headline figure over the job's runs, this one last.
    let mut trend_charts = String::new();
    for (name, by) in TRENDS {
        let mut keys: Vec<String> = outcome
            .observations
            .iter()
            .filter(|o| o.name == name)
            .map(|o| o.labels.get(by).cloned().unwrap_or_default())
            .collect();
        keys.dedup();
        if keys.is_empty() {
            continue;
        }
        let series: Vec<(String, Vec<(f64, f64)>)> = keys
            .iter()
            .map(|key| {
                let pts = past
                    .iter()
                    .chain(std::iter::once(report))
                    .filter_map(|r| {
                        r.outcome
                            .observations
                            .iter()
                            .find(|o| o.name == name && o.labels.get(by).cloned().unwrap_or_default() == *key)
                            .map(|o| (r.run_id as f64, o.value))
                    })
                    .collect();
                (key.clone(), pts)
            })
            .collect();
        let named: Vec<Series> = series
            .iter()
            .map(|(k, p)| Series {
                name: if k.is_empty() { name } else { k.as_str() },
                points: p.clone(),
            })
            .collect();
        trend_charts.push_str(&svg::lines(
            &format!("trend-{name}"),
            &format!("{name} over runs"),
            "run",
            name,
            &named,
            None,
            false,
        ));
    }
    if !trend_charts.is_empty() {
        let _ = write!(
            out,
            "<h2>Trends</h2><p class=\"meta\">Over the last {} runs of this job.</p><div class=\"charts\">{trend_charts}</div>",
            past.len() + 1
        );
    }
    let psi: Vec<Vec<String>> = {
        let mut rows: Vec<&crate::vocab::Observation> = outcome
            .observations
            .iter()
            .filter(|o| o.name == "feature_psi")
            .collect();
        rows.sort_by(|a, b| b.value.total_cmp(&a.value));
        rows.iter()
            .take(25)
            .map(|o| {
                vec![
                    o.labels.get("model").cloned().unwrap_or_default(),
                    o.labels.get("feature").cloned().unwrap_or_default(),
                    number(o.value),
                ]
            })
            .collect()
    };
    if !psi.is_empty() {
        out.push_str("<h2>Feature drift (PSI, highest first)</h2>");
        table(&mut out, &["model", "feature", "PSI"], &psi);
    }
    out.push_str(
        "<p class=\"meta\">Tables: <a href=\"observations.csv\">observations.csv</a> · \
         <a href=\"report.json\">report.json</a></p></body></html>",
    );
    out
}
