//! The daily benchmark: every champion measured on fresh data — churn on the latest snapshot
//! whose outcome has matured, managers and agencies on the latest snapshot, the recommender
//! on the products opened since its cut-off — plus drift of every model feature against the
//! champion's reference statistics, and decay against the champion's own training figures.

use super::frames::{self, Timeline};
use super::group_baseline::Baselines;
use super::segments;
use super::{
    Context, JobError, Observation, RunOutcome, Started, absent_if_untrained, read_json_if_present, read_parquet,
};
use crate::data::features::INHERITED_FEATURES;
use crate::data::table::optional_texts;
use crate::metrics::drift::{self, DriftPolicy};
use crate::metrics::reference::{CategoryCounts, FeatureReference};
use crate::models::design::Design;
use crate::models::domain::{self, DomainReference};
use crate::models::recommender::{self, HoldingsIndex, Recommender, RecommenderMeta, SavedRecommender};
use crate::models::registry::Registry;
use crate::models::tabular::{self, AGENCY, MANAGER, ModelMeta, TabularModel};
use crate::report::summary::{
    BenchmarkSummary, ChurnBenchmark, CohortRealized, Curves, DomainDrift, Drift, EstimatedChurn, FeatureDrift,
    JobSummary, PerformanceBenchmark, RecommenderBenchmark, ScoringSummary, SegmentFigure, TableRows,
};
use crate::vocab::ModelKind;
use crate::vocab::catalogue::{self as obs, Label};
use polars::prelude::*;
use std::collections::BTreeMap;

pub fn run(ctx: &Context) -> Result<RunOutcome, JobError> {
    let config = ctx.config;
    let started = Started::now();
    let registry = Registry::new(&config.models.dir);
    let threads = config.models.boosting.thread_count();
    let defaults = DriftPolicy::default();
    let rules = DriftRules {
        policy: DriftPolicy {
            psi_threshold: ctx.param_f64("psi_threshold", defaults.psi_threshold),
            drift_share: ctx.param_f64("drift_share", defaults.drift_share),
            sigmas: ctx.param_f64("drift_sigmas", defaults.sigmas),
            noise_alpha: ctx.param_f64("drift_noise_alpha", defaults.noise_alpha),
        },
        min_rows: ctx.param_usize("drift_min_rows", 50),
    };
    let baselines = Baselines::of(ctx, &registry);
    let mut timeline = Timeline::load(config, ctx.snapshot.as_deref())?;
    tracing::info!(seconds = started.seconds(), "latest snapshot read");
    timeline.keep_latest_features()?;
    tracing::info!(seconds = started.seconds(), "its features kept");
    let churn_model = if ctx.wants(ModelKind::Churn)? {
        absent_if_untrained(TabularModel::load(&registry, ModelKind::Churn, None, threads))?
    } else {
        None
    };
    // The matured snapshot's features are built (when not kept) after the latest's were kept
    // and let go: one build's peak never stacks on the other's result — at 10M clients that
    // sum was 22.6 GiB of this 24 GiB machine.
    let matured = match &churn_model {
        Some(model) => matured_churn(config, &timeline, model)?,
        None => None,
    };
    tracing::info!(
        seconds = started.seconds(),
        "matured snapshot's outcome and scores read"
    );
    timeline.read_latest_tables()?;
    let current = timeline.features(timeline.latest.date)?;
    tracing::info!(seconds = started.seconds(), "latest features read");
    // Before the recommender starts: without stored scores this predicts every current client.
    let mut estimate_observations = Vec::new();
    let estimated = match &churn_model {
        Some(model) => Some(estimate_churn(
            config,
            model,
            &current.clients,
            timeline.latest.date,
            &mut estimate_observations,
        )?),
        None => None,
    };
    tracing::info!(seconds = started.seconds(), "churn estimated before labels");
    // The recommender reads only the latest holdings and clients: it is measured on a thread
    // of its own while the tabular models are (their stages leave the second core idle much of
    // the time), started once the features are built, the estimate predicted and the figures
    // by group measured, so that its index never adds to their peaks (without a matured
    // snapshot, after the tabular models). Its observations join the others in the order they
    // always had.
    std::thread::scope(|scope| {
        let start_recommender = || scope.spawn(|| measure_recommender(ctx, &registry, &timeline));
        // The churn champion's domain classifier (three small fits on one thread, ~0.2 s) needs
        // only today's features and the version's stored rows: it runs beside the matured
        // snapshot's figures instead of last. Its memory is a few thousand rows; the drift of
        // every feature, which sorts every column, still runs after the figures by group.
        let churn_domain = churn_model.as_ref().map(|model| {
            let (registry, clients, sigmas) = (&registry, &current.clients, rules.policy.sigmas);
            let model = ModelDescription::from(model);
            scope.spawn(move || {
                let mut observations = Vec::new();
                domain_check(registry, ModelKind::Churn, model, clients, sigmas, &mut observations)
                    .map(|domain| (domain, observations))
            })
        });
        let mut recommender = None;
        let mut observations = Vec::new();
        let mut summary = BenchmarkSummary {
            snapshot: timeline.latest.date.to_string(),
            drift_policy: rules.policy,
            churn: None,
            manager: None,
            agency: None,
            recommender: None,
            table_rows: None,
            segments: Vec::new(),
            region_spread: Vec::new(),
        };
        summary.table_rows = Some(table_rows(
            timeline.latest.date,
            &timeline.raw_rows,
            ctx.previous.as_ref(),
            &mut observations,
        ));

        let churn_label = [(Label::Model, ModelKind::Churn.as_str())];
        if let (Some(model), Some(churn_domain)) = (&churn_model, churn_domain) {
            observations.push(Observation::of(
                &obs::CHAMPION_VERSION,
                &churn_label,
                model.meta.version as f64,
            ));
            let mut section = ChurnBenchmark {
                version: model.meta.version,
                importance: model.meta.importance.iter().take(10).cloned().collect(),
                evaluated_snapshot: None,
                metrics: None,
                trained_auc: None,
                curves: None,
                note: None,
                estimated: None,
                cohort: None,
                drift: Drift::NotMeasured { note: String::new() },
            };
            observations.append(&mut estimate_observations);
            section.estimated = estimated;
            match matured {
                Some(MaturedChurn {
                    date,
                    clients,
                    predicted,
                    stored,
                }) => {
                    let truth = tabular::target_values(&clients, tabular::CHURN.target)?;
                    let calibrator = model.calibration.as_ref().map(|c| &c.isotonic);
                    let metrics = tabular::holdout_metrics(
                        &tabular::CHURN,
                        &truth,
                        &predicted,
                        &config.models.churn,
                        calibrator,
                    )?;
                    if let Some(m) = metrics.binary() {
                        for (spec, value) in [
                            (&obs::CHURN_AUC, m.roc_auc),
                            (&obs::CHURN_AVERAGE_PRECISION, m.average_precision),
                            (&obs::CHURN_PRECISION, m.precision),
                            (&obs::CHURN_RECALL, m.recall),
                            (&obs::CHURN_F1, m.f1),
                            (&obs::CHURN_LOG_LOSS, m.log_loss),
                            (&obs::CHURN_BRIER, m.brier),
                            (&obs::CHURN_KS, m.ks),
                            (&obs::CHURN_POSITIVE_RATE, m.positives as f64 / m.rows.max(1) as f64),
                        ] {
                            observations.push(Observation::of(spec, &churn_label, value));
                        }
                        let trained = frames::trained_headline(model);
                        if let Some(change) = frames::relative_change(m.roc_auc, trained) {
                            observations.push(Observation::of(&obs::CHURN_AUC_CHANGE, &churn_label, change));
                        }
                        section.trained_auc = trained;
                    }
                    tracing::info!(seconds = started.seconds(), "its metrics measured");
                    let labels: Vec<bool> = truth.iter().map(|t| *t >= 0.5).collect();
                    let scores = frames::to_f64(&predicted);
                    // One sort of the scores: the figures by group and the curves walk it.
                    let order = crate::metrics::sort::argsort_floats(&scores);
                    let grouping = timeline.labelled_clients(date, Some(&["region", "segment", "age"]))?;
                    tracing::debug!(seconds = started.seconds(), "segments: groups read");
                    if grouping
                        .column("cli")?
                        .as_materialized_series()
                        .equals(clients.column("cli")?.as_materialized_series())
                    {
                        let dimensions = [
                            segments::Dimension::of_column("region", &grouping, "region")?,
                            segments::Dimension::of_column("segment", &grouping, "segment")?,
                            segments::Dimension::of_column("agency", &grouping, "age")?,
                        ];
                        tracing::debug!(seconds = started.seconds(), "segments: groups numbered");
                        let figures = segments::churn(
                            &labels,
                            &scores,
                            &order,
                            config.models.churn.threshold,
                            &dimensions,
                            segments::min_clients(ctx),
                        );
                        tracing::debug!(seconds = started.seconds(), "segments: figures measured");
                        let figures =
                            baselines.judge(ModelKind::Churn, model.meta.version, "", &date.to_string(), figures);
                        segments::record(figures, &mut summary, &mut observations);
                    }
                    tracing::info!(seconds = started.seconds(), "its segments measured");
                    // After the figures by group, whose groups hold every client three times.
                    recommender = Some(start_recommender());
                    let ranked = stored.then_some(RankedScores {
                        version: model.meta.version,
                        labels: &labels,
                        scores: &scores,
                        order: &order,
                    });
                    section.cohort = realized_cohort(config, date, &clients, ranked, &mut observations)?;
                    section.evaluated_snapshot = Some(date.to_string());
                    section.metrics = Some(metrics);
                    section.curves = Some(curves(&labels, &scores, &order)?);
                }
                None => section.note = Some("no snapshot has a matured churn outcome yet".into()),
            }
            tracing::info!(seconds = started.seconds(), "churn measured on its matured snapshot");
            let domain = |observations: &mut Vec<Observation>| {
                let (domain, mut measured) = churn_domain
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                observations.append(&mut measured);
                Ok(domain)
            };
            section.drift = drift(
                &registry,
                ModelKind::Churn,
                model,
                &current.clients,
                rules,
                domain,
                &mut observations,
            )?;
            summary.churn = Some(section);
            tracing::info!(seconds = started.seconds(), "churn drift measured");
        }

        for (spec, frame) in [(&MANAGER, &current.managers), (&AGENCY, &current.agencies)] {
            if !ctx.wants(spec.model)? {
                continue;
            }
            let Some(model) = absent_if_untrained(TabularModel::load(&registry, spec.model, None, threads))? else {
                continue;
            };
            let label = [(Label::Model, spec.model.as_str())];
            observations.push(Observation::of(
                &obs::CHAMPION_VERSION,
                &label,
                model.meta.version as f64,
            ));
            // An entity the export gives no score for (the target column is optional) is left out
            // of the metrics, as training leaves it out; the others are still measured.
            let measured = frame.clone().lazy().filter(col(spec.target).is_not_null()).collect()?;
            let without_score = frame.height() - measured.height();
            if without_score > 0 {
                tracing::warn!(
                    model = spec.model.as_str(),
                    without_score,
                    "entities without {} left out of the metrics",
                    spec.target
                );
            }
            let truth = tabular::target_values(&measured, spec.target)?;
            let predicted = frames::predict(&model, &measured)?;
            let metrics = tabular::holdout_metrics(spec, &truth, &predicted, &config.models.churn, None)?;
            let trained = frames::trained_headline(&model);
            if let Some(m) = metrics.regression() {
                for (spec, value) in [
                    (&obs::PERFORMANCE_RMSE, m.rmse),
                    (&obs::PERFORMANCE_MAE, m.mae),
                    (&obs::PERFORMANCE_R2, m.r2),
                    (&obs::PERFORMANCE_SPEARMAN, m.spearman),
                ] {
                    observations.push(Observation::of(spec, &label, value));
                }
                if let Some(change) = frames::relative_change(m.rmse, trained) {
                    observations.push(Observation::of(&obs::PERFORMANCE_RMSE_CHANGE, &label, change));
                }
            }
            // By region: an agency's own, a manager's through their agency.
            let regions = match spec.model {
                ModelKind::Manager => {
                    let agencies = optional_texts(&current.agencies, "age")?;
                    let region_of: std::collections::HashMap<String, Option<String>> = agencies
                        .into_iter()
                        .zip(optional_texts(&current.agencies, "region")?)
                        .filter_map(|(a, r)| Some((a?, r)))
                        .collect();
                    optional_texts(&measured, "age")?
                        .into_iter()
                        .map(|a| a.and_then(|a| region_of.get(&a).cloned().flatten()))
                        .collect()
                }
                _ => optional_texts(&measured, "region")?,
            };
            let truth_f64: Vec<f64> = truth.iter().map(|t| f64::from(*t)).collect();
            let predicted_f64: Vec<f64> = predicted.iter().map(|p| f64::from(*p).clamp(0.0, 100.0)).collect();
            let regions = segments::Dimension::new("region", regions.iter().map(Option::as_deref));
            let figures = segments::performance(spec.model, &truth_f64, &predicted_f64, &[regions]);
            let figures = baselines.judge(
                spec.model,
                model.meta.version,
                "",
                &timeline.latest.date.to_string(),
                figures,
            );
            segments::record(figures, &mut summary, &mut observations);
            let pairs: Vec<[f64; 2]> = truth
                .iter()
                .zip(&predicted)
                .map(|(t, p)| [*t as f64, (*p as f64).clamp(0.0, 100.0)])
                .collect();
            let section = PerformanceBenchmark {
                version: model.meta.version,
                evaluated_snapshot: timeline.latest.date.to_string(),
                metrics,
                trained_rmse: trained,
                actual_vs_predicted: pairs,
                without_score,
                importance: model.meta.importance.iter().take(10).cloned().collect(),
                drift: drift(
                    &registry,
                    spec.model,
                    &model,
                    frame,
                    rules,
                    |observations| {
                        domain_check(
                            &registry,
                            spec.model,
                            (&model).into(),
                            frame,
                            rules.policy.sigmas,
                            observations,
                        )
                    },
                    &mut observations,
                )?,
            };
            match spec.model {
                ModelKind::Manager => summary.manager = Some(section),
                _ => summary.agency = Some(section),
            }
        }

        tracing::info!(seconds = started.seconds(), "managers and agencies measured");
        let measured = recommender
            .unwrap_or_else(start_recommender)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        if let Some(recommender) = measured {
            observations.extend(recommender.observations);
            segments::record(recommender.figures, &mut summary, &mut observations);
            summary.recommender = Some(recommender.section);
        }
        tracing::info!(seconds = started.seconds(), "recommender measured");
        let measured = [
            summary.churn.is_some(),
            summary.manager.is_some(),
            summary.agency.is_some(),
            summary.recommender.is_some(),
        ];
        if !measured.contains(&true) {
            return Err(JobError::NoModels);
        }
        Ok(started.succeeded(
            "benchmark",
            Vec::new(),
            observations,
            JobSummary::Benchmark(Box::new(summary)).to_value(),
        ))
    })
}

/// The churn champion's performance on the latest snapshot, before its labels exist: CBPE
/// from the calibrator stored with the version.
fn estimate_churn(
    config: &crate::config::EngineConfig,
    model: &TabularModel,
    clients: &DataFrame,
    date: crate::data::date::Date,
    observations: &mut Vec<Observation>,
) -> Result<EstimatedChurn, JobError> {
    let (snapshot, threshold) = (date.to_string(), config.models.churn.threshold);
    let Some(calibration) = &model.calibration else {
        return Ok(EstimatedChurn::NotEstimated {
            note: format!(
                "churn v{} was trained without a calibrator: retrain it to estimate performance before labels",
                model.meta.version
            ),
        });
    };
    if clients.height() == 0 {
        return Ok(EstimatedChurn::NotEstimated {
            note: "no clients to score".into(),
        });
    }
    let scores = match frames::stored_churn_scores(config, date, model.meta.version, clients)? {
        Some(stored) => stored,
        None => frames::to_f64(&frames::predict(model, clients)?),
    };
    let estimate = calibration.estimate(&scores, threshold)?;
    let label = [(Label::Model, ModelKind::Churn.as_str())];
    for (spec, value) in [
        (&obs::CHURN_ESTIMATED_AUC, estimate.auc),
        (&obs::CHURN_ESTIMATED_PRECISION, estimate.at_threshold.precision),
        (&obs::CHURN_ESTIMATED_RECALL, estimate.at_threshold.recall),
        (&obs::CHURN_ESTIMATED_F1, estimate.at_threshold.f1),
        (&obs::CHURN_EXPECTED_RATE, estimate.expected_positive_rate),
    ] {
        if value.is_finite() {
            observations.push(Observation::of(spec, &label, value));
        }
    }
    let errors = estimate.sampling_errors;
    for (metric, value) in [
        ("roc_auc", errors.auc),
        ("precision", errors.precision),
        ("recall", errors.recall),
        ("f1", errors.f1),
    ] {
        if value.is_finite() {
            let labels = [label[0], (Label::Metric, metric)];
            observations.push(Observation::of(&obs::CHURN_ESTIMATED_SAMPLING_ERROR, &labels, value));
        }
    }
    if let Some(change) =
        frames::relative_change(estimate.auc, frames::trained_headline(model)).filter(|c| c.is_finite())
    {
        observations.push(Observation::of(&obs::CHURN_ESTIMATED_AUC_CHANGE, &label, change));
    }
    Ok(EstimatedChurn::Estimated {
        snapshot,
        threshold,
        estimate,
    })
}

/// The churn champion's predictions for its newest snapshot whose outcome has matured.
struct MaturedChurn {
    date: crate::data::date::Date,
    /// Client ids and their outcome, in the order of `predicted`.
    clients: DataFrame,
    predicted: Vec<f32>,
    /// Whether `predicted` are the scores the scoring job stored for `date`, row for row (by the
    /// same champion version): then the realized cohort is the same ranking.
    stored: bool,
}

/// The newest snapshot with a matured churn outcome: its labelled clients (ids and outcome
/// only) and the champion's predictions for them — those the scoring job stored when the same
/// version scored that snapshot, otherwise predicted now from the model's inputs.
fn matured_churn(
    config: &crate::config::EngineConfig,
    timeline: &Timeline,
    model: &TabularModel,
) -> Result<Option<MaturedChurn>, JobError> {
    let outcome = ["cli", tabular::CHURN.target];
    for date in timeline.matured_dates() {
        // Features built just now come back whole; kept ones give only the ids and outcome.
        let ids = timeline.labelled_clients(date, Some(&[]))?;
        if ids.height() == 0 {
            continue;
        }
        if let Some(stored) = frames::stored_churn_scores(config, date, model.meta.version, &ids)? {
            return Ok(Some(MaturedChurn {
                date,
                clients: ids.select(outcome)?,
                // Stored from the f32 predictions: the cast back is exact.
                predicted: stored.iter().map(|p| *p as f32).collect(),
                stored: true,
            }));
        }
        let inputs: Vec<&str> = model.design.inputs().collect();
        let clients = if inputs.iter().all(|input| ids.column(input).is_ok()) {
            ids
        } else {
            timeline.labelled_clients(date, Some(&inputs))?
        };
        let predicted = frames::predict(model, &clients)?;
        return Ok(Some(MaturedChurn {
            date,
            clients: clients.select(outcome)?,
            predicted,
            stored: false,
        }));
    }
    Ok(None)
}

/// The matured snapshot's outcomes and scores, already sorted, when they are the stored scores
/// of `version`: the realized cohort of that version is this ranking, not read and sorted again.
struct RankedScores<'a> {
    version: u32,
    labels: &'a [bool],
    scores: &'a [f64],
    order: &'a [usize],
}

/// The churn predictions the scoring job stored for `date` (`data/scores/<date>/`), scored
/// against the outcome now known in `clients` (the matured snapshot's labelled features): what
/// the champion of that day was actually worth, and how far the estimate made from its
/// calibrated rates was off. `None` when the snapshot was never scored. `ranked` are the
/// matured metrics' stored scores, used when the cohort was scored by their version.
fn realized_cohort(
    config: &crate::config::EngineConfig,
    date: crate::data::date::Date,
    clients: &DataFrame,
    ranked: Option<RankedScores<'_>>,
    observations: &mut Vec<Observation>,
) -> Result<Option<CohortRealized>, JobError> {
    let dir = config.data.scores_dir.join(date.to_string());
    let Some(scored) = read_json_if_present::<ScoringSummary>(&dir.join("summary.json"))? else {
        return Ok(None);
    };
    let Some(version) = scored.clients.map(|c| c.model_version) else {
        return Ok(None);
    };
    let path = dir.join("clients.parquet");
    // The same file's rows, in the same order: only its calibrated rates are still to read.
    // Anything unexpected (no rates: a version without a calibrator) takes the general way.
    if let Some(ranked) = ranked.filter(|r| r.version == version)
        && let Ok(frame) = super::read_parquet_columns(&path, &["churn_rate"])
        && let Some(rates) = frames::column_f64(&frame, "churn_rate")?
        && rates.len() == ranked.scores.len()
    {
        return cohort_figures(
            &path,
            (date, version),
            ranked.labels,
            ranked.scores,
            ranked.order,
            Some(&rates),
            observations,
        );
    }
    // Only the scores (the rate is there when the version has a calibrator): the file's
    // reasons and actions are most of its bytes.
    let stored = super::read_parquet_columns(&path, &["cli", "churn_probability", "churn_rate"])
        .or_else(|_| super::read_parquet_columns(&path, &["cli", "churn_probability"]))?;
    let outcome = clients.select(["cli", tabular::CHURN.target])?;
    let joined = stored
        .lazy()
        .join(
            outcome.lazy(),
            [col("cli")],
            [col("cli")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()?;
    let labels: Vec<bool> = tabular::target_values(&joined, tabular::CHURN.target)?
        .iter()
        .map(|v| *v >= 0.5)
        .collect();
    let Some(scores) = frames::column_f64(&joined, "churn_probability")? else {
        return Err(JobError::Invalid(format!(
            "{}: no churn_probability column",
            path.display()
        )));
    };
    let order = crate::metrics::sort::argsort_floats(&scores);
    let rates = frames::column_f64(&joined, "churn_rate")?;
    cohort_figures(
        &path,
        (date, version),
        &labels,
        &scores,
        &order,
        rates.as_deref(),
        observations,
    )
}

/// The realized AUC of a scored cohort (`path`, by `version`) and how far its estimate from
/// the calibrated `rates` was off, from its scores' ascending `order`.
fn cohort_figures(
    path: &std::path::Path,
    (date, version): (crate::data::date::Date, u32),
    labels: &[bool],
    scores: &[f64],
    order: &[usize],
    rates: Option<&[f64]>,
    observations: &mut Vec<Observation>,
) -> Result<Option<CohortRealized>, JobError> {
    use crate::metrics::classification::Ranked;
    let rows = labels.len();
    // A cohort of one class (a tiny bank, a month nobody left) has no AUC: nothing to report.
    if labels.iter().all(|l| *l) || labels.iter().all(|l| !*l) {
        return Ok(None);
    }
    // Any other refusal (a stored score that is not a number) is the file's fault: said.
    let realized = Ranked::from_order(labels, scores, order)
        .map_err(|e| JobError::Invalid(format!("{}: {e}", path.display())))?
        .roc_auc();
    let estimated = rates
        .and_then(|rates| crate::metrics::estimation::estimated_auc_in_order(rates, order).ok())
        .filter(|v| v.is_finite());
    let (cohort, version_text) = (date.to_string(), version.to_string());
    let labels = [
        (Label::Model, ModelKind::Churn.as_str()),
        (Label::Cohort, cohort.as_str()),
        (Label::Version, version_text.as_str()),
    ];
    observations.push(Observation::of(&obs::CHURN_REALIZED_AUC, &labels, realized));
    if let Some(estimated) = estimated {
        observations.push(Observation::of(
            &obs::CHURN_COHORT_ESTIMATE_ERROR,
            &labels,
            estimated - realized,
        ));
    }
    Ok(Some(CohortRealized {
        snapshot: cohort,
        version,
        rows,
        realized_auc: realized,
        estimated_auc: estimated,
    }))
}

/// ROC, precision-recall and calibration points for the report's charts, from the scores'
/// ascending `order`.
fn curves(labels: &[bool], scores: &[f64], order: &[usize]) -> Result<Curves, JobError> {
    use crate::metrics::classification::{Ranked, calibration};
    let ranked = Ranked::from_order(labels, scores, order)?;
    Ok(Curves {
        roc: ranked.roc_curve(101),
        precision_recall: ranked.pr_curve(101),
        calibration: calibration(labels, scores, 10)?,
    })
}

/// A feature copied from the client's manager or agency ([`INHERITED_FEATURES`]): twenty
/// agencies' scores spread over 100,000 clients are twenty numbers, so their PSI's sampling
/// noise is that of twenty values — judged as 100,000, every agency's monthly change was an
/// alarm.
fn inherited(feature: &str) -> bool {
    INHERITED_FEATURES.contains(&feature)
}

/// The smallest out-of-range share, and unseen-category share, that can count as unusual,
/// whatever the reference months show.
const OUT_OF_RANGE_FLOOR: f64 = 0.05;
const UNSEEN_FLOOR: f64 = 0.01;

/// Drift of every feature the champion has reference statistics for, against `frame`: PSI
/// and KS against each feature's learned threshold, and the data-quality figures (missing,
/// out-of-range and unseen shares).
fn drift(
    registry: &Registry,
    model_name: ModelKind,
    model: &TabularModel,
    frame: &DataFrame,
    rules: DriftRules,
    domain: impl FnOnce(&mut Vec<Observation>) -> Result<DomainDrift, JobError>,
    observations: &mut Vec<Observation>,
) -> Result<Drift, JobError> {
    let DriftRules { policy, min_rows } = rules;
    if frame.height() < min_rows {
        return Ok(Drift::NotMeasured {
            note: format!(
                "{} rows: too few for drift statistics (drift_min_rows: {min_rows})",
                frame.height()
            ),
        });
    }
    let path = registry
        .version_dir(model_name, model.meta.version)
        .join("reference.json");
    let Some(references) = read_json_if_present::<BTreeMap<String, FeatureReference>>(&path)? else {
        return Err(JobError::Invalid(format!(
            "{}: missing (every version is written with its reference statistics)",
            path.display()
        )));
    };
    let rows = frame.height();
    let mut features = BTreeMap::new();
    let mut thresholds = BTreeMap::new();
    let mut quality = BTreeMap::new();
    let mut judged = Vec::new();
    // The costly part (a cast and a sort of every value per feature) runs on every core; the
    // observations are then written in the references' order, as before.
    let compared: Vec<(&String, &FeatureReference, &Column)> = references
        .iter()
        .filter_map(|(name, reference)| frame.column(name).ok().map(|column| (name, reference, column)))
        .collect();
    let measured: Vec<FeatureMeasure> = {
        use rayon::prelude::*;
        compared
            .par_iter()
            .map(|(_, reference, column)| measure_feature(reference, column, rows))
            .collect::<Result<_, JobError>>()?
    };
    for ((name, reference, column), measure) in compared.into_iter().zip(measured) {
        let labels = [(Label::Model, model_name.as_str()), (Label::Feature, name.as_str())];
        let FeatureMeasure {
            result,
            figures,
            present,
            outside: (share_spec, ratio_spec, outside_floor),
        } = measure;
        let limit = reference.learned_outside_limit(outside_floor, policy.sigmas);
        observations.push(Observation::of(share_spec, &labels, figures.outside_share));
        observations.push(Observation::of(ratio_spec, &labels, figures.outside_share / limit));
        observations.push(Observation::of(
            &obs::FEATURE_MISSING_SHARE,
            &labels,
            figures.missing_share,
        ));
        observations.push(Observation::of(
            &obs::FEATURE_MISSING_SHARE_CHANGE,
            &labels,
            figures.missing_share - figures.reference_missing_share,
        ));
        quality.insert(name.clone(), figures);
        // A feature with no current values (all missing) cannot be compared: say so.
        let Ok((psi, ks, detail)) = result else {
            features.insert(
                name.clone(),
                FeatureDrift::NoValues {
                    note: "no current values".into(),
                },
            );
            continue;
        };
        let (bins, reference_rows) = match reference {
            FeatureReference::Numeric { bin_shares, count, .. } => (bin_shares.len(), *count),
            FeatureReference::Categorical { counts, count, .. } => (counts.len() + 1, *count as usize),
        };
        // An inherited feature rests on as many values as there are groups, on both sides (a
        // reference month holds the same managers or agencies as today).
        let (current_size, reference_size) = match &detail {
            FeatureDrift::Numeric(_) if inherited(name) => {
                let groups = column.n_unique()?;
                (groups, groups)
            }
            _ => (present, reference_rows),
        };
        let floor = policy.psi_threshold.max(drift::psi_noise_floor(
            bins,
            current_size,
            reference_size,
            policy.noise_alpha,
        ));
        let learned = reference.learned_threshold(floor, policy.sigmas);
        observations.push(Observation::of(&obs::FEATURE_PSI, &labels, psi));
        observations.push(Observation::of(&obs::FEATURE_PSI_THRESHOLD, &labels, learned.threshold));
        observations.push(Observation::of(
            &obs::FEATURE_DRIFT_RATIO,
            &labels,
            psi / learned.threshold.max(f64::MIN_POSITIVE),
        ));
        if let Some(ks) = ks {
            observations.push(Observation::of(&obs::FEATURE_KS, &labels, ks));
        }
        judged.push((psi, learned.threshold));
        thresholds.insert(name.clone(), learned);
        features.insert(name.clone(), detail);
    }
    let verdict = policy.verdict_with(&judged);
    let label = [(Label::Model, model_name.as_str())];
    observations.push(Observation::of(
        &obs::DRIFTED_FEATURES,
        &label,
        verdict.drifted_features as f64,
    ));
    observations.push(Observation::of(&obs::DRIFT_SHARE, &label, verdict.share_drifted));
    observations.push(Observation::of(
        &obs::DATASET_DRIFT,
        &label,
        f64::from(u8::from(verdict.dataset_drift)),
    ));
    tracing::debug!(model = model_name.as_str(), "drift: every feature measured");
    let domain = domain(observations)?;
    tracing::debug!(model = model_name.as_str(), "drift: domain classifier measured");
    Ok(Drift::Measured {
        verdict,
        features,
        thresholds,
        quality,
        reference_snapshots: model.meta.reference_snapshots.clone(),
        domain: Some(domain),
    })
}

/// How this run judges drift: the policy, and the fewest rows worth measuring.
#[derive(Clone, Copy)]
struct DriftRules {
    policy: DriftPolicy,
    /// Decile PSI on a handful of rows (20 agencies) is noise: such frames get no drift figures.
    min_rows: usize,
}

/// One feature's drift statistics and data-quality figures against its reference, before
/// they become observations.
struct FeatureMeasure {
    /// PSI, KS (numeric features) and the detail; an error when no current value is present.
    result: Result<(f64, Option<f64>, FeatureDrift), crate::metrics::MetricError>,
    figures: crate::metrics::reference::Quality,
    /// Rows with a value.
    present: usize,
    /// What lies outside the reference (unseen categories or values beyond its range): the
    /// share's and ratio's observations and the floor of its limit.
    outside: (&'static obs::ObservationSpec, &'static obs::ObservationSpec, f64),
}

fn measure_feature(reference: &FeatureReference, column: &Column, rows: usize) -> Result<FeatureMeasure, JobError> {
    Ok(match reference {
        FeatureReference::Categorical { .. } => {
            let counts = CategoryCounts::of(column.str()?.iter().flatten());
            FeatureMeasure {
                figures: reference.categorical_quality_of(&counts, rows, crate::data::clean::UNKNOWN),
                result: reference
                    .categorical_drift_of(&counts)
                    .map(|d| (d.psi, None, FeatureDrift::Categorical(d))),
                present: counts.total(),
                outside: (&obs::FEATURE_UNSEEN_SHARE, &obs::FEATURE_UNSEEN_RATIO, UNSEEN_FLOOR),
            }
        }
        _ => {
            let cast = column.cast(&DataType::Float64)?;
            let values: Vec<f64> = crate::data::values::optional_values(cast.f64()?)
                .flatten()
                .filter(|v| v.is_finite())
                .collect();
            FeatureMeasure {
                figures: reference.numeric_quality(&values, rows),
                result: reference
                    .numeric_drift(&values)
                    .map(|d| (d.psi, Some(d.ks_statistic), FeatureDrift::Numeric(d))),
                present: values.len(),
                outside: (
                    &obs::FEATURE_OUT_OF_RANGE_SHARE,
                    &obs::FEATURE_OUT_OF_RANGE_RATIO,
                    OUT_OF_RANGE_FLOOR,
                ),
            }
        }
    })
}

/// What the domain check reads of a champion: its stored facts and its design, never its
/// booster (which stays on the thread that loaded it), so the check can run on another.
#[derive(Clone, Copy)]
struct ModelDescription<'a> {
    meta: &'a ModelMeta,
    design: &'a Design,
}

impl<'a> From<&'a TabularModel> for ModelDescription<'a> {
    fn from(model: &'a TabularModel) -> Self {
        Self {
            meta: &model.meta,
            design: &model.design,
        }
    }
}

/// The multivariate check: the champion's stored reference rows against a sample of today's
/// as large, told apart by a classifier (`models::domain`); its AUC against the limit learned
/// from the reference months.
fn domain_check(
    registry: &Registry,
    model_name: ModelKind,
    model: ModelDescription<'_>,
    frame: &DataFrame,
    sigmas: f64,
    observations: &mut Vec<Observation>,
) -> Result<DomainDrift, JobError> {
    let dir = registry.version_dir(model_name, model.meta.version);
    let Some(learned) = read_json_if_present::<DomainReference>(&dir.join(tabular::DOMAIN_FILE))? else {
        return Ok(DomainDrift::NotMeasured {
            note: format!(
                "{model_name} v{} was trained without reference rows: retrain it for the multivariate check",
                model.meta.version
            ),
        });
    };
    let sample = read_parquet(&dir.join(tabular::DOMAIN_SAMPLE_FILE))?;
    let columns = domain::columns(model.design);
    let reference = columns.matrix(&sample)?;
    let seed = model.meta.parameters.seed;
    let current = columns.matrix(&tabular::sample_frame(
        frame,
        reference.rows,
        seed.wrapping_add(domain::CURRENT_SAMPLE_SALT),
    )?)?;
    if reference.rows.min(current.rows) < domain::MIN_ROWS {
        return Ok(DomainDrift::NotMeasured {
            note: format!(
                "{} reference and {} current rows: too few to tell apart (at least {} each)",
                reference.rows,
                current.rows,
                domain::MIN_ROWS
            ),
        });
    }
    let separability = domain::separability(&reference, &current, seed)?;
    let limit = learned.limit(sigmas);
    let label = [(Label::Model, model_name.as_str())];
    observations.push(Observation::of(&obs::DOMAIN_AUC, &label, separability.auc));
    observations.push(Observation::of(&obs::DOMAIN_AUC_LIMIT, &label, limit));
    observations.push(Observation::of(
        &obs::DOMAIN_DRIFT_RATIO,
        &label,
        (separability.auc - 0.5).max(0.0) / (limit - 0.5),
    ));
    Ok(DomainDrift::Measured {
        separability,
        limit,
        monthly_auc: learned.monthly_auc,
    })
}

/// Rows per table of the latest snapshot, against the previous snapshot a benchmark saw (from
/// the previous run's summary), as `table_rows` and `table_rows_change`.
fn table_rows(
    date: crate::data::date::Date,
    rows: &BTreeMap<String, usize>,
    previous_run: Option<&serde_json::Value>,
    observations: &mut Vec<Observation>,
) -> TableRows {
    let rows = rows.clone();
    let snapshot = date.to_string();
    let before = previous_run
        .and_then(|v| {
            JobSummary::read("benchmark", v)
                .inspect_err(|e| tracing::warn!(error = %e, "table rows are not compared with the previous run"))
                .ok()
        })
        .and_then(|s| match s {
            JobSummary::Benchmark(b) => b.table_rows,
            _ => None,
        })
        .and_then(|t| {
            if t.snapshot == snapshot {
                t.previous.map(|p| *p)
            } else {
                Some(TableRows { previous: None, ..t })
            }
        })
        .filter(|t| t.snapshot < snapshot);
    for (table, n) in &rows {
        let label = [(Label::Table, table.as_str())];
        observations.push(Observation::of(&obs::TABLE_ROWS, &label, *n as f64));
        if let Some(change) = before
            .as_ref()
            .and_then(|b| b.rows.get(table))
            .and_then(|b| frames::relative_change(*n as f64, Some(*b as f64)))
        {
            observations.push(Observation::of(&obs::TABLE_ROWS_CHANGE, &label, change));
        }
    }
    TableRows {
        snapshot,
        rows,
        previous: before.map(Box::new),
    }
}

/// What the recommender's benchmark adds to the report.
struct RecommenderMeasured {
    section: RecommenderBenchmark,
    figures: Vec<SegmentFigure>,
    observations: Vec<Observation>,
}

/// The recommender's section, figures by group and observations, when it is wanted and has a
/// champion.
fn measure_recommender(
    ctx: &Context,
    registry: &Registry,
    timeline: &Timeline,
) -> Result<Option<RecommenderMeasured>, JobError> {
    if !ctx.wants(ModelKind::Recommender)? {
        return Ok(None);
    }
    let Some(saved) = absent_if_untrained(SavedRecommender::load(registry, None))? else {
        return Ok(None);
    };
    let mut observations = Vec::new();
    let (section, figures) = benchmark_recommender(ctx, registry, &saved, timeline, &mut observations)?;
    Ok(Some(RecommenderMeasured {
        section,
        figures,
        observations,
    }))
}

/// The recommender on the products opened in the last `holdout_months`. A champion trained
/// before that window is measured as it is (truly unseen data); one trained later has seen the
/// window, so its method is refitted at the window's cut-off and measured instead — said in the
/// report as `evaluated: "refit at cut-off"`.
fn benchmark_recommender(
    ctx: &Context,
    registry: &Registry,
    saved: &SavedRecommender,
    timeline: &Timeline,
    observations: &mut Vec<Observation>,
) -> Result<(RecommenderBenchmark, Vec<SegmentFigure>), JobError> {
    let config = &ctx.config.models.recommender;
    let k = ctx.param_usize("k", config.k).max(1);
    let (version, dir) = registry
        .resolve(ModelKind::Recommender, None)
        .map_err(crate::models::tabular::TrainError::from)?;
    let meta: Option<RecommenderMeta> = std::fs::read(dir.join("meta.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let started = std::time::Instant::now();
    let seconds = || started.elapsed().as_secs_f64();
    let index = HoldingsIndex::new(&timeline.latest)?;
    tracing::debug!(seconds = seconds(), "recommender: holdings indexed");
    let held_out = recommender::holdout(&index, timeline.latest.date, config.holdout_months);
    tracing::debug!(seconds = seconds(), "recommender: holdout cut");
    let trained_on = meta
        .as_ref()
        .and_then(|m| crate::data::date::Date::parse(&m.trained_on));
    let unseen = trained_on.is_some_and(|t| t <= held_out.cutoff);
    let refit;
    let model: &Recommender = if unseen && saved.model.items == index.items {
        &saved.model
    } else {
        let data = recommender::interactions_at(&index, &held_out, config);
        refit = Recommender::fit(saved.model.method, &data, config)?;
        &refit
    };
    tracing::debug!(seconds = seconds(), "recommender: fitted");
    let (metrics, users) =
        recommender::evaluate_by_user(model, &held_out.baskets, &held_out.truth, &index.categories, k)?;
    tracing::debug!(seconds = seconds(), "recommender: evaluated");
    let figures = segments::recommender(
        &users,
        &metrics.accuracy,
        &holdout_groups(timeline, &held_out, &users)?,
        segments::min_clients(ctx),
    );
    let figures = Baselines::of(ctx, registry).judge(
        ModelKind::Recommender,
        version,
        &format!("k={k}"),
        &timeline.latest.date.to_string(),
        figures,
    );
    tracing::debug!(seconds = seconds(), "recommender: measured by group");
    let k_text = k.to_string();
    let model_label = [(Label::Model, ModelKind::Recommender.as_str())];
    let label = [model_label[0], (Label::K, k_text.as_str())];
    observations.push(Observation::of(&obs::CHAMPION_VERSION, &model_label, version as f64));
    for (spec, value) in [
        (&obs::RECOMMENDER_PRECISION_AT_K, metrics.accuracy.precision_at_k),
        (&obs::RECOMMENDER_RECALL_AT_K, metrics.accuracy.recall_at_k),
        (&obs::RECOMMENDER_NDCG_AT_K, metrics.accuracy.ndcg_at_k),
    ] {
        observations.push(Observation::of(spec, &label, value));
    }
    for (spec, value) in [
        (&obs::RECOMMENDER_COVERAGE, metrics.coverage),
        (&obs::RECOMMENDER_DIVERSITY, metrics.intra_list_diversity),
    ] {
        observations.push(Observation::of(spec, &model_label, value));
    }
    let trained = meta.as_ref().and_then(|m| {
        m.candidates
            .iter()
            .find(|c| c.method == m.method)
            .map(|c| c.metrics.accuracy.precision_at_k)
    });
    let precision = metrics.accuracy.precision_at_k;
    if k == config.k
        && let Some(change) = frames::relative_change(precision, trained)
    {
        observations.push(Observation::of(
            &obs::RECOMMENDER_PRECISION_AT_K_CHANGE,
            &model_label,
            change,
        ));
    }
    let section = RecommenderBenchmark {
        version,
        method: saved.model.method.name().into(),
        evaluated: if unseen {
            "as trained (window after its training date)"
        } else {
            "refit at cut-off"
        }
        .into(),
        cutoff: held_out.cutoff.to_string(),
        clients_with_openings: held_out.truth.len(),
        metrics,
        trained_precision_at_k: trained,
    };
    Ok((section, figures))
}

/// Region, segment and agency of each measured client of the recommender's holdout (by
/// position; the others, who opened nothing, have none), as the latest clients table has them.
fn holdout_groups(
    timeline: &Timeline,
    held_out: &recommender::Holdout,
    users: &[(usize, crate::metrics::ranking::UserAccuracy)],
) -> Result<[segments::Dimension<'static>; 3], JobError> {
    // The holdout's clients are indices into the product index, built from this table: rows.
    let clients = &timeline.latest.clients;
    let by_position = |name: &'static str, column: &str| -> Result<segments::Dimension<'static>, JobError> {
        let column = clients.column(column)?.cast(&DataType::String)?;
        let values = column.str()?;
        let mut at = vec![None; held_out.clients.len()];
        for (position, _) in users {
            at[*position] = values.get(held_out.clients[*position]);
        }
        Ok(segments::Dimension::new(name, at))
    };
    Ok([
        by_position("region", "region")?,
        by_position("segment", "segment")?,
        by_position("agency", "age")?,
    ])
}
