//! `report.html`: one self-contained page per run — headline figures, the charts that explain
//! them (ROC, precision-recall, calibration, confusion matrix, predicted vs actual, feature
//! importance, drift histograms of the drifted features) and each headline figure's trend over
//! the job's past runs. No scripts, no fonts, no network.
//!
//! The page reads the run's summary back into [`JobSummary`]: every figure it shows is a field
//! a job filled, so a renamed field is a compile error here, not a silent "–".

use super::Report;
use super::summary::{
    BenchmarkSummary, ChurnBenchmark, DomainDrift, Drift, FeatureDrift, JobSummary, PerformanceBenchmark,
};
use super::svg::{self, Series, escape};
use crate::models::tabular::HoldoutMetrics;
use crate::vocab::text::format_value as number;
use crate::vocab::{ModelKind, Observation};
use std::fmt::Write;

/// Observations whose trend is charted when present: name, the label telling series apart,
/// and the label splitting charts (one unit per chart: cross-validated AUC and RMSE do not
/// share an axis).
const TRENDS: [(&str, &str, Option<&str>); 7] = [
    ("churn_auc", "model", None),
    ("performance_rmse", "model", None),
    ("recommender_precision_at_k", "model", None),
    ("cv_metric_mean", "model", Some("metric")),
    ("drift_share", "model", None),
    ("scored_clients", "", None),
    ("churn_mean_probability", "", None),
];

/// Today's churn performance, estimated before its labels: said plainly as an estimate, with
/// the snapshot it describes and a band of two standard errors.
fn estimated_section(out: &mut String, churn: &ChurnBenchmark) {
    use crate::report::summary::EstimatedChurn;
    match &churn.estimated {
        Some(EstimatedChurn::Estimated {
            snapshot,
            threshold,
            estimate,
        }) => {
            let band = |value: f64, error: f64| format!("{} ± {}", number(value), number(2.0 * error));
            let e = &estimate.sampling_errors;
            let _ = write!(
                out,
                "<h2>Churn: estimated on snapshot {}</h2><p class=\"meta\">Estimated without labels (CBPE: the \
                 champion's calibrated probabilities on {} clients; its outcome is known only 90 days later). Band: \
                 two standard errors.</p><table><tr><th>estimated</th><th>value</th></tr>\
                 <tr><td>ROC AUC</td><td>{}</td></tr><tr><td>precision at {}</td><td>{}</td></tr>\
                 <tr><td>recall at {}</td><td>{}</td></tr><tr><td>F1 at {}</td><td>{}</td></tr>\
                 <tr><td>expected churn rate</td><td>{}</td></tr></table>",
                escape(snapshot),
                estimate.rows,
                band(estimate.auc, e.auc),
                number(*threshold),
                band(estimate.at_threshold.precision, e.precision),
                number(*threshold),
                band(estimate.at_threshold.recall, e.recall),
                number(*threshold),
                band(estimate.at_threshold.f1, e.f1),
                number(estimate.expected_positive_rate)
            );
        }
        Some(EstimatedChurn::NotEstimated { note }) => {
            let _ = write!(out, "<p>Churn performance before labels: {}</p>", escape(note));
        }
        None => {}
    }
}

fn churn_section(out: &mut String, churn: &ChurnBenchmark) {
    estimated_section(out, churn);
    if let (Some(curves), Some(HoldoutMetrics::Binary { metrics, .. })) = (&churn.curves, &churn.metrics) {
        let xy = |points: &[(f64, f64, f64)]| points.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>();
        out.push_str("<h2>Churn</h2>");
        if let Some(snapshot) = &churn.evaluated_snapshot {
            let _ = write!(
                out,
                "<p class=\"meta\">Realized (labels known) on snapshot {}, the latest whose churn outcome has matured.</p>",
                escape(snapshot)
            );
        }
        if let Some(cohort) = &churn.cohort {
            let estimate = cohort.estimated_auc.map_or(String::new(), |e| {
                format!(
                    "; estimated {} from its calibrated rates before the outcome was known (off by {})",
                    number(e),
                    number(e - cohort.realized_auc)
                )
            });
            let _ = write!(
                out,
                "<p>The predictions churn v{} actually made on {} ({} clients, the scoring job's file): realized \
                 AUC <b>{}</b>{estimate}.</p>",
                cohort.version,
                escape(&cohort.snapshot),
                cohort.rows,
                number(cohort.realized_auc)
            );
        }
        out.push_str("<div class=\"charts\">");
        out.push_str(&svg::lines(
            "roc-curve",
            &format!("ROC curve (AUC {})", number(metrics.roc_auc)),
            svg::XAxis::Continuous("false positive rate"),
            "true positive rate",
            &[Series {
                name: "model",
                points: xy(&curves.roc),
            }],
            Some(((0.0, 1.0), (0.0, 1.0))),
            true,
        ));
        out.push_str(&svg::lines(
            "pr-curve",
            &format!("Precision-recall (AP {})", number(metrics.average_precision)),
            svg::XAxis::Continuous("recall"),
            "precision",
            &[Series {
                name: "model",
                points: xy(&curves.precision_recall),
            }],
            Some(((0.0, 1.0), (0.0, 1.0))),
            false,
        ));
        out.push_str(&svg::lines(
            "calibration",
            "Calibration",
            svg::XAxis::Continuous("mean predicted probability"),
            "observed churn rate",
            &[Series {
                name: "model",
                points: curves
                    .calibration
                    .iter()
                    .map(|b| (b.mean_predicted, b.observed_rate))
                    .collect(),
            }],
            Some(((0.0, 1.0), (0.0, 1.0))),
            true,
        ));
        let c = &metrics.confusion;
        out.push_str(&svg::confusion(
            "confusion-matrix",
            c.tp as f64,
            c.fp as f64,
            c.tn as f64,
            c.fn_ as f64,
        ));
        out.push_str("</div>");
    } else if let Some(note) = &churn.note {
        let _ = write!(out, "<h2>Churn</h2><p>{}</p>", escape(note));
    }
    importance(out, ModelKind::Churn, &churn.importance);
}

fn importance(out: &mut String, model: ModelKind, items: &[(String, f64)]) {
    let items: Vec<(String, f64)> = items.iter().take(10).cloned().collect();
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

/// One label per bin of `edges`' open-ended bins (−∞, e1], (e1, e2], …, (ek, +∞): k + 1 of them.
fn bin_labels(edges: &[f64]) -> Vec<String> {
    let short = |v: f64| number((v * 100.0).round() / 100.0);
    let Some((first, last)) = edges.first().zip(edges.last()) else {
        return vec!["all".into()];
    };
    let mut labels = vec![format!("≤ {}", short(*first))];
    labels.extend(edges.windows(2).map(|w| format!("{}–{}", short(w[0]), short(w[1]))));
    labels.push(format!("> {}", short(*last)));
    labels
}

/// PSI from which a feature counts as moving (the classic "moderate shift" band), though still
/// under its threshold: gradual drift, shown as such rather than as an alarm.
const MOVING_PSI: f64 = 0.1;

fn drift_section(out: &mut String, model: ModelKind, drift: &Drift, policy: &crate::metrics::drift::DriftPolicy) {
    let Drift::Measured {
        verdict,
        features,
        thresholds,
        quality,
        reference_snapshots,
        domain,
    } = drift
    else {
        if let Drift::NotMeasured { note } = drift {
            let _ = write!(out, "<p>Drift of the {model} model's features: {}</p>", escape(note));
        }
        return;
    };
    let threshold_of = |name: &str| thresholds.get(name).map_or(verdict.psi_threshold, |t| t.threshold);
    let mut ranked: Vec<(&String, &FeatureDrift, f64)> = features
        .iter()
        .filter_map(|(name, d)| d.psi().map(|psi| (name, d, psi)))
        .collect();
    ranked.sort_by(|a, b| (b.2 / threshold_of(b.0)).total_cmp(&(a.2 / threshold_of(a.0))));
    let window = if reference_snapshots.is_empty() {
        "its training snapshots".to_string()
    } else {
        format!("snapshots {}", escape(&reference_snapshots.join(", ")))
    };
    let _ = write!(
        out,
        "<p>Drift of the {model} model's features against the champion's reference ({window}): {} of {} drifted \
         (PSI above its learned threshold: mean + {}σ of the reference months' PSI, at least {}); dataset drift: <b>{}</b>.</p>",
        verdict.drifted_features,
        verdict.features,
        number(policy.sigmas),
        number(verdict.psi_threshold),
        if verdict.dataset_drift { "yes" } else { "no" }
    );
    domain_paragraph(out, model, domain.as_ref());
    let shown: Vec<&(&String, &FeatureDrift, f64)> = ranked
        .iter()
        .filter(|(name, _, psi)| *psi > threshold_of(name) || *psi >= MOVING_PSI)
        .collect();
    if !shown.is_empty() {
        out.push_str("<table><tr><th>feature</th><th>PSI</th><th>threshold</th><th>status</th></tr>");
        for (name, _, psi) in shown.iter().take(12) {
            let threshold = threshold_of(name);
            let status = if *psi > threshold {
                "drifted"
            } else {
                "moving (gradual drift, under its threshold)"
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
                escape(name),
                number(*psi),
                number(threshold)
            );
        }
        out.push_str("</table>");
    }
    quality_table(out, quality);
    if shown.is_empty() {
        return;
    }
    out.push_str("<div class=\"charts\">");
    for (name, d, psi) in shown.iter().take(6) {
        let (labels, reference, current) = match d {
            FeatureDrift::Numeric(n) => (bin_labels(&n.bin_edges), &n.reference_shares, &n.current_shares),
            FeatureDrift::Categorical(c) => (c.categories.clone(), &c.reference_shares, &c.current_shares),
            FeatureDrift::NoValues { .. } => continue,
        };
        let n = labels.len().min(reference.len()).min(current.len());
        out.push_str(&svg::bars(
            &format!(
                "drift-{model}-{}",
                name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
            &format!(
                "{name}: PSI {} (threshold {})",
                number(*psi),
                number(threshold_of(name))
            ),
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

/// The multivariate check, in one sentence: the AUC, its limit, and what separates most.
fn domain_paragraph(out: &mut String, model: ModelKind, domain: Option<&DomainDrift>) {
    match domain {
        Some(DomainDrift::Measured {
            separability,
            limit,
            monthly_auc,
        }) => {
            let verdict = if separability.auc > *limit {
                "<b>today's rows differ from the reference as a whole</b>"
            } else {
                "today's rows look like the reference"
            };
            let separating: Vec<String> = separability
                .separating
                .iter()
                .take(3)
                .map(|(c, share)| format!("{} ({:.0} %)", escape(c), share * 100.0))
                .collect();
            let _ = write!(
                out,
                "<p>Multivariate check ({model}): a classifier tells {} reference rows from {} of today's with \
                 cross-validated AUC {} (limit {}, learned from {} reference month(s)): {verdict}. \
                 It splits most on {}.</p>",
                separability.reference_rows,
                separability.current_rows,
                number(separability.auc),
                number(*limit),
                monthly_auc.len(),
                if separating.is_empty() {
                    "nothing".to_string()
                } else {
                    separating.join(", ")
                }
            );
        }
        Some(DomainDrift::NotMeasured { note }) => {
            let _ = write!(out, "<p>Multivariate check ({model}): {}</p>", escape(note));
        }
        None => {}
    }
}

/// Features whose data quality changed: more missing values, values outside the reference's
/// range, categories the reference never saw.
fn quality_table(out: &mut String, quality: &std::collections::BTreeMap<String, crate::metrics::reference::Quality>) {
    let notable: Vec<_> = quality
        .iter()
        .filter(|(_, q)| q.missing_share - q.reference_missing_share > 0.02 || q.outside_share > 0.01)
        .collect();
    if notable.is_empty() {
        return;
    }
    out.push_str(
        "<p>Data quality:</p><table><tr><th>feature</th><th>missing now</th><th>missing in reference</th>\
         <th>outside the reference (range or categories)</th></tr>",
    );
    for (name, q) in notable {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            percent(q.missing_share),
            percent(q.reference_missing_share),
            percent(q.outside_share)
        );
    }
    out.push_str("</table>");
}

fn percent(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn performance_section(
    out: &mut String,
    model: ModelKind,
    section: &PerformanceBenchmark,
    policy: &crate::metrics::drift::DriftPolicy,
) {
    let _ = write!(
        out,
        "<h2>{}</h2><p class=\"meta\">Realized on snapshot {}.</p>",
        escape(model.as_str()),
        escape(&section.evaluated_snapshot)
    );
    if section.without_score > 0 {
        let _ = write!(
            out,
            "<p>{} without a <code>performance_score</code> in the export: scored, left out of these figures.</p>",
            section.without_score
        );
    }
    let pairs: Vec<(f64, f64)> = section.actual_vs_predicted.iter().map(|p| (p[0], p[1])).collect();
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
    importance(out, model, &section.importance);
    drift_section(out, model, &section.drift, policy);
}

fn benchmark_sections(out: &mut String, summary: &BenchmarkSummary) {
    if let Some(churn) = &summary.churn {
        churn_section(out, churn);
        drift_section(out, ModelKind::Churn, &churn.drift, &summary.drift_policy);
    }
    for model in [ModelKind::Manager, ModelKind::Agency] {
        if let Some(section) = summary.performance(model) {
            performance_section(out, model, section, &summary.drift_policy);
        }
    }
    segments_section(out, summary);
}

/// Each model's headline metric by region, segment and agency: groups flagged worse than at
/// their baseline first, and the spread across regions.
fn segments_section(out: &mut String, summary: &BenchmarkSummary) {
    if summary.segments.is_empty() {
        return;
    }
    out.push_str(
        "<h2>By region, segment and agency</h2><p>Each model's metrics on every group with enough \
         rows (the benchmark's <code>group_min_clients</code>, 200 by default: clients with 20 of \
         each outcome for churn, clients who opened a product for the recommender; 5 managers \
         or agencies). The headline one (ROC AUC, precision at k, RMSE) is read as a share of \
         all rows' and tested against the same group's share at its baseline — the champion's \
         first benchmark that measured it — one-sided (worse only), with Benjamini–Hochberg \
         across the model's groups (the job's <code>group_fdr</code>); managers and agencies are \
         tested in groups of 30 or more. A group that was always weaker than the rest is no \
         finding; one that fell behind since is.</p>",
    );
    for spread in &summary.region_spread {
        let _ = write!(
            out,
            "<p><b>{}</b>: {} across {} regions from {} to {} (standard deviation {}).</p>",
            spread.model,
            escape(&spread.metric),
            spread.regions,
            number(spread.lowest),
            number(spread.highest),
            number(spread.spread)
        );
    }
    let mut figures: Vec<&crate::report::summary::SegmentFigure> = summary.segments.iter().collect();
    figures.sort_by(|a, b| {
        b.worse
            .cmp(&a.worse)
            .then(a.adjusted_p_value.total_cmp(&b.adjusted_p_value))
    });
    let rows: Vec<Vec<String>> = figures
        .iter()
        .map(|f| {
            vec![
                f.model.to_string(),
                format!("{} {}", f.dimension, f.segment),
                f.rows.to_string(),
                format!(
                    "{} = {} ± {} (all: {})",
                    f.metric,
                    number(f.value),
                    number(f.standard_error),
                    number(f.overall)
                ),
                f.baseline
                    .as_ref()
                    .map(|b| format!("{} (all: {}) on {}", number(b.value), number(b.overall), b.snapshot))
                    .unwrap_or_else(|| "none yet".into()),
                f.other
                    .iter()
                    .map(|(k, v)| format!("{k} {}", number(*v)))
                    .collect::<Vec<_>>()
                    .join(" · "),
                if f.tested {
                    format!("{:.3}", f.adjusted_p_value)
                } else {
                    "not tested".into()
                },
                if f.worse { "worse".into() } else { String::new() },
            ]
        })
        .collect();
    table(
        out,
        &[
            "model",
            "group",
            "rows",
            "tested metric",
            "baseline",
            "other metrics",
            "p (BH)",
            "",
        ],
        &rows,
    );
}

/// A rate as `24.5 % [23.1, 25.9]`.
fn rate_cell(rate: Option<crate::report::campaigns::Rate>) -> String {
    rate.map(|r| {
        format!(
            "{} [{:.1}, {:.1}]",
            percent(r.rate),
            100.0 * r.interval.low,
            100.0 * r.interval.high
        )
    })
    .unwrap_or_default()
}

/// Campaigns, newest first: each arm's shares with intervals, the arms compared (a forest plot
/// of the differences in points and a table with lifts and p-values), retention's money.
fn business_sections(out: &mut String, business: &crate::report::campaigns::BusinessSummary) {
    let settings = &business.settings;
    let _ = write!(
        out,
        "<h2>Campaigns</h2><p>Outcomes as of {}: offers convert within {} days of their list, retention          counts clients still with the bank {} days after it. Intervals are {:.0} %; p-values are          Holm-corrected over each campaign's comparisons. Arms under {} clients are shown with          \"too few contacts\" and not compared.</p>",
        escape(&business.snapshot),
        settings.conversion_days,
        settings.horizon_days,
        100.0 * (1.0 - settings.alpha),
        settings.min_clients
    );
    let waiting: Vec<String> = business
        .campaigns
        .iter()
        .filter(|c| !c.matured)
        .map(|c| format!("{} (complete on {})", c.campaign, c.outcome_on))
        .collect();
    if business.campaigns.is_empty() {
        out.push_str("<p>No contacts table in any snapshot yet: no campaign to measure.</p>");
    }
    if !waiting.is_empty() {
        let _ = write!(
            out,
            "<p class=\"meta\">Waiting for their outcome: {}.</p>",
            escape(&waiting.join(", "))
        );
    }
    let mut matured: Vec<_> = business.campaigns.iter().filter(|c| c.matured).collect();
    matured.sort_by(|a, b| {
        b.campaign
            .snapshot
            .cmp(&a.campaign.snapshot)
            .then(a.campaign.cmp(&b.campaign))
    });
    for campaign in matured {
        let _ = write!(out, "<h3>{}</h3>", escape(&campaign.campaign.to_string()));
        let rows: Vec<Vec<String>> = campaign
            .arms
            .iter()
            .map(|arm| {
                vec![
                    arm.arm.to_string(),
                    arm.clients.to_string(),
                    arm.contacted.to_string(),
                    rate_cell(arm.click_through),
                    rate_cell(arm.conversion),
                    rate_cell(arm.retained),
                    if arm.too_few {
                        "too few contacts".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        table(
            out,
            &[
                "arm",
                "clients",
                "contacted",
                "click-through",
                "conversion",
                "retained",
                "",
            ],
            &rows,
        );
        let compared: Vec<_> = campaign
            .comparisons
            .iter()
            .filter_map(|c| c.figures.map(|f| (c, f)))
            .collect();
        if !compared.is_empty() {
            let points: Vec<(String, f64, f64, f64)> = compared
                .iter()
                .map(|(c, f)| {
                    (
                        c.name(),
                        100.0 * f.difference,
                        100.0 * f.difference_interval.low,
                        100.0 * f.difference_interval.high,
                    )
                })
                .collect();
            let _ = write!(
                out,
                "<div class=\"charts\">{}</div>",
                svg::intervals(
                    &format!("differences-{}", campaign.campaign),
                    "Arm differences (points)",
                    &points,
                    0.0
                )
            );
        }
        let rows: Vec<Vec<String>> = campaign
            .comparisons
            .iter()
            .map(|c| match c.figures {
                Some(f) => vec![
                    c.name(),
                    format!(
                        "{:+.2} [{:+.2}, {:+.2}]",
                        100.0 * f.difference,
                        100.0 * f.difference_interval.low,
                        100.0 * f.difference_interval.high
                    ),
                    if let Some(ratio) = f.ratio {
                        format!(
                            "{:+.1} % [{:+.1}, {:+.1}]",
                            100.0 * (ratio - 1.0),
                            100.0 * (f.ratio_interval.low - 1.0),
                            100.0 * (f.ratio_interval.high - 1.0)
                        )
                    } else {
                        "–".into()
                    },
                    format!("{:.3}", f.p_value),
                    c.adjusted_p_value.map(|p| format!("{p:.3}")).unwrap_or_default(),
                    if c.significant { "yes".into() } else { "no".into() },
                ],
                None => vec![
                    c.name(),
                    "too few contacts".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            })
            .collect();
        table(
            out,
            &[
                "comparison",
                "difference (points)",
                "lift",
                "p",
                "p (Holm)",
                "significant",
            ],
            &rows,
        );
        for note in &campaign.notes {
            let _ = write!(out, "<p class=\"meta\">{}</p>", escape(note));
        }
        if let Some(uplift) = &campaign.uplift {
            if uplift.curve.len() > 1 {
                let end = uplift.curve[uplift.curve.len() - 1];
                let _ = write!(
                    out,
                    "<div class=\"charts\">{}</div>",
                    svg::lines(
                        &format!("qini-{}", campaign.campaign),
                        &format!("Qini curve (coefficient {:.3})", uplift.qini),
                        svg::XAxis::Continuous("share of the list taken, in its order"),
                        "incremental successes / clients",
                        &[
                            Series {
                                name: "the list's order",
                                points: uplift.curve.iter().map(|p| (p[0], p[1])).collect(),
                            },
                            Series {
                                name: "random order",
                                points: vec![(0.0, 0.0), (end[0], end[1])],
                            },
                        ],
                        None,
                        false,
                    )
                );
            }
            let _ = write!(
                out,
                "<p>In the order of the list's scores, champion against control over {} clients: Qini \
                 coefficient <b>{:.3}</b> (0: no better than a random order, 1: the best order), \
                 uplift in the top 30 % {:+.2} points.</p>",
                uplift.rows,
                uplift.qini,
                100.0 * uplift.uplift_at_30
            );
        }
        if let Some(money) = &campaign.retention {
            let _ = write!(
                out,
                "<p>Churn prevention rate <b>{}</b> (of those who would have left, the share the champion's calls kept);                  list precision {} (share of the list who would have left uncalled); false-positive rate {}                  (of all who would have stayed, the share the list took); return on the calls <b>{:.2}×</b>                  [{:.2}, {:.2}] at {} a call and {} a client kept.</p>",
                percent(money.prevention_rate),
                percent(money.list_precision),
                percent(money.false_positive_rate),
                money.roi,
                money.roi_interval.low,
                money.roi_interval.high,
                number(settings.contact_cost),
                number(settings.client_value)
            );
        }
    }
}

/// What a scoring run found: the clients per risk level, the retention list, the managers and
/// agencies predicted best and worst, and those needing support.
fn scoring_sections(out: &mut String, scoring: &crate::report::summary::ScoringSummary) {
    if let Some(clients) = &scoring.clients {
        let _ = write!(
            out,
            "<h2>Churn risk</h2><p>{} clients scored by churn v{}{}. Risk levels are cut on the \
             calibrated chance of leaving within the churn horizon.</p><div class=\"charts\">",
            clients.count,
            clients.model_version,
            clients
                .expected_churn_rate
                .map(|r| format!("; the calibrator expects {} of them to leave", percent(r)))
                .unwrap_or_default()
        );
        let levels = ["Low", "Medium", "High"];
        let counts: Vec<f64> = levels
            .iter()
            .map(|l| clients.by_risk.get(*l).copied().unwrap_or(0) as f64)
            .collect();
        out.push_str(&svg::bars(
            "risk-levels",
            "Clients per risk level",
            "clients",
            &levels.map(String::from),
            &[("clients", counts)],
        ));
        out.push_str("</div>");
        if !clients.top_at_risk.is_empty() {
            out.push_str("<h3>Most likely to leave</h3>");
            let rows: Vec<Vec<String>> = clients
                .top_at_risk
                .iter()
                .map(|c| {
                    vec![
                        c.client_id.to_string(),
                        c.manager_id.clone().unwrap_or_default(),
                        percent(c.churn_rate),
                        c.risk.clone(),
                        c.reasons.clone(),
                        c.actions.clone(),
                    ]
                })
                .collect();
            table(
                out,
                &["client", "manager", "churn rate", "risk", "reasons", "actions"],
                &rows,
            );
        }
    }
    for (title, entities) in [("Managers", &scoring.managers), ("Agencies", &scoring.agencies)] {
        let Some(entities) = entities else { continue };
        let _ = write!(
            out,
            "<h2>{title}</h2><p>{} scored by v{}, mean predicted score {}.</p>",
            entities.count,
            entities.model_version,
            number(entities.mean_predicted_score)
        );
        let rows: Vec<Vec<String>> = entities
            .top
            .iter()
            .map(|e| vec!["best".into(), e.id.clone(), number(e.predicted_score)])
            .chain(
                entities
                    .bottom
                    .iter()
                    .map(|e| vec!["worst".into(), e.id.clone(), number(e.predicted_score)]),
            )
            .collect();
        table(out, &["", "id", "predicted score"], &rows);
        if let Some(objective) = entities.objective {
            let _ = write!(
                out,
                "<p>{} of {} predicted below the objective of {}.</p>",
                entities.below_objective,
                entities.count,
                number(objective)
            );
            if !entities.needing_support.is_empty() {
                out.push_str("<h3>Support</h3>");
                let rows: Vec<Vec<String>> = entities
                    .needing_support
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.clone(),
                            number(e.predicted_score),
                            percent(e.meets_objective_probability),
                            e.pulling_down.join("; "),
                            e.support.join("; "),
                        ]
                    })
                    .collect();
                table(
                    out,
                    &[
                        "id",
                        "predicted",
                        "chance of meeting the objective",
                        "pulling the score down",
                        "support",
                    ],
                    &rows,
                );
            }
        }
    }
}

fn decisions(out: &mut String, summary: &JobSummary) {
    let JobSummary::Retrain(retrain) = summary else {
        return;
    };
    for model in [ModelKind::Churn, ModelKind::Manager, ModelKind::Agency] {
        if let Some(decision) = retrain.decision(model) {
            let _ = write!(out, "<p><b>{model}:</b> {}</p>", escape(&decision.reason));
        }
    }
    if let Some(decision) = &retrain.recommender {
        let _ = write!(
            out,
            "<p><b>{}:</b> {}</p>",
            ModelKind::Recommender,
            escape(&decision.reason)
        );
    }
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

/// The run's figures (drift per feature has its own section): what each is, its value, and
/// the rules watching it — their condition and whether this value breaches it.
fn figures(out: &mut String, report: &Report, previous: Option<&Report>, checks: &[super::Check]) {
    out.push_str(
        "<h2>Figures</h2><table id=\"figures\"><tr><th>figure</th><th>labels</th><th>value</th><th>watched by</th><th>result</th></tr>",
    );
    for o in report
        .outcome
        .observations
        .iter()
        .filter(|o| !o.labels.contains_key("feature"))
    {
        let help = crate::vocab::catalogue::find(&o.name).map_or("", |spec| spec.help);
        let previous_value = previous.and_then(|r| {
            r.outcome
                .observations
                .iter()
                .find(|p| p.name == o.name && p.labels == o.labels)
                .map(|p| p.value)
        });
        let watching: Vec<&super::Check> = checks.iter().filter(|c| c.watches(o)).collect();
        let rules: Vec<String> = watching
            .iter()
            .map(|c| {
                format!(
                    "{} <span class=\"meta\">({})</span>",
                    escape(&c.rule),
                    escape(&c.condition())
                )
            })
            .collect();
        let results: Vec<String> = watching
            .iter()
            .map(|c| match c.breaches(o.value, previous_value) {
                Some(true) => "<b class=\"breach\">breach</b>".to_string(),
                Some(false) => "<span class=\"pass\">pass</span>".to_string(),
                None => "<span class=\"meta\">no previous run</span>".to_string(),
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td title=\"{}\">{}<br><span class=\"meta\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(help),
            escape(&o.name),
            escape(help),
            escape(&crate::vocab::text::join_labels(&o.labels, ", ")),
            number(o.value),
            if rules.is_empty() {
                "<span class=\"meta\">no rule</span>".to_string()
            } else {
                rules.join("<br>")
            },
            results.join("<br>")
        );
    }
    out.push_str("</table>");
}

/// The page for `report`; `past` are earlier reports of the same job, oldest first.
pub fn render(report: &Report, past: &[Report], checks: &[super::Check]) -> String {
    let outcome = &report.outcome;
    let summary = JobSummary::read(&report.kind, &outcome.summary);
    if let Err(e) = &summary {
        tracing::warn!(run = report.run_id, error = %e, "the report page shows the figures only");
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>bankml — {job} run {id}</title><style>\
         body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0 16px}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}} th{{background:#f3f3f3}}\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}} .chart{{border:1px solid #ddd}} .meta{{color:#555}}\
         .breach{{color:#c62828}} .pass{{color:#2e7d32}}\
         </style></head><body><p class=\"meta\"><a href=\"../../index.html\">← every run</a></p><h1>{job} — run {id}</h1>",
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
        escape(summary.as_ref().map_or("–", JobSummary::snapshot)),
        escape(&models.join(", "))
    );

    figures(&mut out, report, past.last(), checks);

    match &summary {
        Ok(summary) => {
            match summary {
                JobSummary::Benchmark(benchmark) => benchmark_sections(&mut out, benchmark),
                JobSummary::Scoring(scoring) => scoring_sections(&mut out, scoring),
                JobSummary::Business(business) => business_sections(&mut out, business),
                _ => {}
            }
            decisions(&mut out, summary);
        }
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"meta\">The run's detailed sections are not shown: {}.</p>",
                escape(&e.to_string())
            );
        }
    }

    // Trends: each headline figure over the job's runs, this one last.
    let mut trend_charts = String::new();
    for (name, by, split) in TRENDS {
        let label = |o: &Observation, key: &str| o.labels.get(key).cloned().unwrap_or_default();
        let mut charts: Vec<String> = outcome
            .observations
            .iter()
            .filter(|o| o.name == name)
            .map(|o| split.map(|s| label(o, s)).unwrap_or_default())
            .collect();
        charts.sort();
        charts.dedup();
        for chart in charts {
            let in_chart = |o: &Observation| o.name == name && split.is_none_or(|s| label(o, s) == chart);
            let mut keys: Vec<String> = outcome
                .observations
                .iter()
                .filter(|o| in_chart(o))
                .map(|o| label(o, by))
                .collect();
            keys.sort();
            keys.dedup();
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
                                .find(|o| in_chart(o) && label(o, by) == *key)
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
            let (id, title, unit) = if chart.is_empty() {
                (format!("trend-{name}"), format!("{name} over runs"), name.to_string())
            } else {
                (
                    format!("trend-{name}-{chart}"),
                    format!("{name} ({chart}) over runs"),
                    chart.clone(),
                )
            };
            trend_charts.push_str(&svg::lines(
                &id,
                &title,
                svg::XAxis::Whole("run"),
                &unit,
                &named,
                None,
                false,
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::catalogue::CV_METRIC_MEAN;
    use crate::vocab::{Label, RunOutcome};

    fn validation(run_id: i64, auc: f64, rmse: f64) -> Report {
        Report {
            run_id,
            job: "weekly-validation".into(),
            kind: "validation".into(),
            models: Default::default(),
            outcome: RunOutcome {
                job: "validation".into(),
                started_at: "2026-06-01T00:00:00Z".into(),
                seconds: 1.0,
                artifacts: Vec::new(),
                observations: vec![
                    Observation::of(
                        &CV_METRIC_MEAN,
                        &[(Label::Model, "churn"), (Label::Metric, "roc_auc")],
                        auc,
                    ),
                    Observation::of(
                        &CV_METRIC_MEAN,
                        &[(Label::Model, "manager"), (Label::Metric, "rmse")],
                        rmse,
                    ),
                ],
                summary: serde_json::Value::Null,
            },
        }
    }

    #[test]
    fn a_trend_chart_holds_one_unit_cross_validated_auc_and_rmse_apart() {
        let html = render(
            &validation(3, 0.89, 7.6),
            &[validation(1, 0.88, 7.4), validation(2, 0.9, 7.5)],
            &[],
        );
        assert!(html.contains("id=\"trend-cv_metric_mean-roc_auc\""), "an AUC chart");
        assert!(html.contains("id=\"trend-cv_metric_mean-rmse\""), "an RMSE chart");
        assert!(!html.contains("id=\"trend-cv_metric_mean\""), "no chart mixing them");
    }

    #[test]
    fn each_figure_shows_the_rules_watching_it_and_whether_it_breaches() {
        use crate::vocab::condition::{CompareTo, Op};
        let watch = |rule: &str, model: &str, op, threshold, compare_to| super::super::Check {
            rule: rule.into(),
            observation: CV_METRIC_MEAN.name.into(),
            labels: [("model".to_string(), model.to_string())].into(),
            op,
            threshold,
            compare_to,
        };
        let checks = [
            watch("auc_floor", "churn", Op::Less, 0.895, CompareTo::Value),
            watch("rmse_jump", "manager", Op::Greater, 0.01, CompareTo::PreviousRun),
        ];
        let html = render(&validation(3, 0.89, 7.6), &[validation(2, 0.9, 7.5)], &checks);
        let figures = &html[html.find("id=\"figures\"").unwrap()..];
        let row = |metric: &str| {
            let start = figures.find(&format!("metric={metric}")).unwrap();
            &figures[start..start + figures[start..].find("</tr>").unwrap()]
        };
        assert!(
            row("roc_auc").contains("auc_floor <span class=\"meta\">(&lt; 0.895)</span>"),
            "{}",
            row("roc_auc")
        );
        assert!(row("roc_auc").contains("class=\"breach\""), "0.89 < 0.895");
        // 7.5 → 7.6 is +1.3 %, over the +1 % the rule allows.
        assert!(row("rmse").contains("rmse_jump") && row("rmse").contains("class=\"breach\""));
        let calm = render(&validation(3, 0.9, 7.5), &[validation(2, 0.9, 7.5)], &checks);
        assert_eq!(calm.matches("class=\"pass\"").count(), 2, "both pass");
        assert!(
            calm.contains("Mean of a metric over the cross-validation folds") || calm.contains(CV_METRIC_MEAN.help)
        );
    }
}
