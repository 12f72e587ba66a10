//! The weekly validation: k-fold cross-validation of each champion's configuration on recent
//! data; champion against challenger on the same rows with a paired test (DeLong for churn
//! AUC, a paired bootstrap for the regressors' RMSE); stability against the previous week.

use super::frames::{self, Timeline};
use super::{Context, JobError, Observation, RunOutcome, Started, absent_if_untrained};
use crate::data::date::Date;
use crate::data::store::FeatureTable;
use crate::metrics::significance;
use crate::models::boosted::Task;
use crate::models::registry::Registry;
use crate::models::tabular::{self, AGENCY, CHURN, MANAGER, TabularModel, TabularSpec};
use crate::report::summary::{ChallengerTest, JobSummary, ModelValidation, PairedTest, Validated, ValidationSummary};
use crate::vocab::ModelKind;
use crate::vocab::catalogue::{self as obs, Label};
use polars::prelude::*;

pub fn run(ctx: &Context) -> Result<RunOutcome, JobError> {
    let config = ctx.config;
    let started = Started::now();
    let registry = Registry::new(&config.models.dir);
    let threads = config.models.boosting.thread_count();
    let folds = ctx.param_usize("folds", 5).max(2);
    let recent = ctx.param_usize("recent_snapshots", 3).max(1);
    let resamples = ctx.param_usize("bootstrap_resamples", 1000).max(100);
    let wanted = ctx.models()?;
    let timeline = Timeline::load(config, ctx.snapshot.as_deref())?;
    let mut observations = Vec::new();
    let mut summary = ValidationSummary {
        snapshot: timeline.latest.date.to_string(),
        folds,
        models: Default::default(),
    };
    // Last week's figures, for the stability check.
    let previous = match ctx.previous.as_ref().map(|p| JobSummary::read("validation", p)) {
        Some(Ok(JobSummary::Validation(previous))) => Some(*previous),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "last week's validation is not compared with");
            None
        }
        _ => None,
    };

    // Recent data: the last `recent` snapshots with a matured churn outcome for churn (read in
    // the loop, once the models say which columns they read), the last `recent` snapshots for
    // managers and agencies (their score is known at the snapshot).
    let mut recent_dates: Vec<Date> = timeline.dates.iter().rev().take(recent).map(|(d, _)| *d).collect();
    recent_dates.reverse();
    let mut entity_frames: Vec<(Date, DataFrame, DataFrame)> = Vec::new();
    if wanted.contains(&ModelKind::Manager) || wanted.contains(&ModelKind::Agency) {
        for date in &recent_dates {
            entity_frames.push((
                *date,
                timeline.table(*date, FeatureTable::Managers, None)?,
                timeline.table(*date, FeatureTable::Agencies, None)?,
            ));
        }
    }
    let mut validated = 0;
    for spec in [&CHURN, &MANAGER, &AGENCY] {
        if !wanted.contains(&spec.model) {
            continue;
        }
        let Some(champion) = absent_if_untrained(TabularModel::load(&registry, spec.model, None, threads))? else {
            continue;
        };
        let challenger = match registry
            .aliases(spec.model)
            .map_err(tabular::TrainError::from)?
            .challenger
        {
            Some(version) => Some((
                version,
                TabularModel::load(&registry, spec.model, Some(version), threads)?,
            )),
            None => None,
        };
        // Oldest first; the newest is where champion and challenger meet. Clients' months are
        // read one at a time, with only the columns the two models read, into one matrix: at
        // ten million clients three months of every feature are more than this machine has.
        // Each month's row count comes with it, so the matrix is allocated once at its size
        // (grown by doubling, it briefly held its old and new buffers: 11 GB at 10M).
        let months: Vec<(Date, Option<DataFrame>, usize)> = match spec.model {
            ModelKind::Churn => {
                // The newest `recent` matured months with labelled clients (their outcome alone
                // read to decide).
                let mut dates = Vec::new();
                for date in timeline.matured_dates() {
                    if dates.len() >= recent {
                        break;
                    }
                    let rows = timeline.labelled_clients(date, Some(&[]))?.height();
                    if rows > 0 {
                        dates.push((date, None, rows));
                    }
                }
                dates.reverse();
                dates
            }
            ModelKind::Manager => entity_frames
                .iter()
                .map(|(d, m, _)| (*d, Some(m.clone()), m.height()))
                .collect(),
            _ => entity_frames
                .iter()
                .map(|(d, _, a)| (*d, Some(a.clone()), a.height()))
                .collect(),
        };
        let Some(newest_date) = months.last().map(|(d, _, _)| *d) else {
            summary.models.insert(
                spec.model,
                ModelValidation::NoData {
                    note: "no recent labelled data".into(),
                },
            );
            continue;
        };
        validated += 1;
        let mut columns: Vec<&str> = champion.design.inputs().collect();
        if let Some((_, challenger)) = &challenger {
            columns.extend(challenger.design.inputs());
        }
        columns.sort_unstable();
        columns.dedup();
        let read = |date: Date, frame: &Option<DataFrame>| match frame {
            Some(frame) => Ok(frame.clone()),
            None => timeline.labelled_clients(date, Some(&columns)),
        };
        let names = champion.design.names();
        let expected: usize = months.iter().map(|(_, _, rows)| rows).sum();
        let mut x = crate::models::boosted::Matrix {
            values: Vec::with_capacity(expected * names.len()),
            rows: 0,
            names,
        };
        let mut y = Vec::with_capacity(expected);
        for (date, frame, _) in months.iter() {
            let frame = read(*date, frame)?;
            x.values.extend(champion.design.matrix(&frame)?.values);
            y.extend(tabular::target_values(&frame, spec.target)?);
        }
        x.rows = y.len();
        let rows = y.len();
        // The champion's own parameters, the run's folds; the rest (scratch folder for
        // XGBoost's pages, churn settings) as training has them.
        let settings = tabular::TrainSettings {
            boosting: &champion.meta.parameters,
            cv_folds: folds,
            ..tabular::TrainSettings::of(config, spec.model)
        };
        let cv = tabular::cross_validate(spec, &x, &y, settings, champion.meta.best_rounds)?;
        let key = headline(spec);
        let label = [(Label::Model, spec.model.as_str()), (Label::Metric, key)];
        let figure = cv
            .get(key)
            .ok_or_else(|| JobError::Invalid(format!("cross-validation gave no {key}")))?;
        observations.push(Observation::of(&obs::CV_METRIC_MEAN, &label, figure.mean));
        observations.push(Observation::of(&obs::CV_METRIC_STD, &label, figure.std));
        let previous_mean = previous
            .as_ref()
            .and_then(|p| match p.models.get(&spec.model) {
                Some(ModelValidation::Validated(v)) => v.cross_validation.get(key),
                _ => None,
            })
            .map(|f| f.mean);
        let change = frames::relative_change(figure.mean, previous_mean);
        if let Some(change) = change {
            observations.push(Observation::of(&obs::CV_METRIC_CHANGE, &label, change));
        }
        drop((x, y));
        let challenger = match &challenger {
            Some((version, challenger)) => {
                // The newest month read again rather than kept through the folds (at 10M, a
                // few GB the cross-validation can use).
                let newest = match months.last() {
                    Some((date, frame, _)) => read(*date, frame)?,
                    None => DataFrame::empty(),
                };
                let test = paired(
                    spec,
                    &champion,
                    challenger,
                    &newest,
                    resamples,
                    config.models.boosting.seed,
                )?;
                let label = [(Label::Model, spec.model.as_str())];
                observations.push(Observation::of(&obs::CHALLENGER_DIFFERENCE, &label, test.difference));
                observations.push(Observation::of(&obs::CHALLENGER_P_VALUE, &label, test.p_value));
                Some(ChallengerTest {
                    version: *version,
                    snapshot: newest_date.to_string(),
                    test,
                })
            }
            None => None,
        };
        summary.models.insert(
            spec.model,
            ModelValidation::Validated(Box::new(Validated {
                champion: champion.meta.version,
                snapshots: months.iter().map(|(d, _, _)| d.to_string()).collect(),
                rows,
                cross_validation: cv,
                previous_mean,
                change_from_previous: change,
                challenger,
            })),
        );
    }
    if validated == 0 {
        return Err(JobError::NoModels);
    }
    Ok(started.succeeded(
        "validation",
        Vec::new(),
        observations,
        JobSummary::Validation(Box::new(summary)).to_value(),
    ))
}

/// The metric a model is judged by: AUC for churn, RMSE for the performance scores.
pub fn headline(spec: &TabularSpec) -> &'static str {
    match spec.task {
        Task::Binary => "roc_auc",
        Task::Regression => "rmse",
    }
}

/// Champion (A) against challenger (B) on the same rows: DeLong's test of AUC for a classifier,
/// a paired bootstrap of RMSE for a regressor. `difference` is B − A.
pub fn paired(
    spec: &TabularSpec,
    champion: &TabularModel,
    challenger: &TabularModel,
    frame: &DataFrame,
    resamples: usize,
    seed: u64,
) -> Result<PairedTest, JobError> {
    let truth = frames::to_f64(&tabular::target_values(frame, spec.target)?);
    let a = frames::to_f64(&frames::predict(champion, frame)?);
    let b = frames::to_f64(&frames::predict(challenger, frame)?);
    Ok(match spec.task {
        Task::Binary => {
            let labels: Vec<bool> = truth.iter().map(|t| *t >= 0.5).collect();
            let test = significance::delong(&labels, &a, &b)?;
            PairedTest::delong(labels.len(), &test)
        }
        Task::Regression => {
            let clip = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x.clamp(0.0, 100.0)).collect() };
            let (a, b) = (clip(&a), clip(&b));
            let all: Vec<usize> = (0..truth.len()).collect();
            let test = significance::paired_bootstrap(truth.len(), resamples, seed, |rows| {
                significance::rmse_on(&truth, &b, rows) - significance::rmse_on(&truth, &a, rows)
            })?;
            PairedTest::bootstrap(
                truth.len(),
                significance::rmse_on(&truth, &a, &all),
                significance::rmse_on(&truth, &b, &all),
                &test,
            )
        }
    })
}
