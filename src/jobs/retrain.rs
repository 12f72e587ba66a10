//! The monthly retraining: challengers trained on the latest data and measured against the
//! champion on the challenger's temporal holdout (rows neither model trained on). A challenger
//! is promoted only when it is better by `min_improvement` (relative) and the paired test says
//! so at `alpha`; otherwise the champion stays and the report says why.

use super::frames::{self, Timeline};
use super::validation::{headline, paired};
use super::{Context, JobError, Observation, RunOutcome, Started};
use crate::data::date::Date;
use crate::data::features::Features;
use crate::data::history;
use crate::models::boosted::Task;
use crate::models::recommender::{self, RecommenderMeta};
use crate::models::registry::Registry;
use crate::models::tabular::{self, AGENCY, CHURN, MANAGER, TabularModel, TrainError};
use crate::report::summary::{JobSummary, RecommenderDecision, RetrainDecision, RetrainSummary};
use crate::vocab::ModelKind;
use crate::vocab::catalogue::{self as obs, Label};
use polars::prelude::*;

pub fn run(ctx: &Context) -> Result<RunOutcome, JobError> {
    let config = ctx.config;
    let started = Started::now();
    let registry = Registry::new(&config.models.dir);
    let threads = config.models.boosting.thread_count();
    let margin = ctx.param_f64("min_improvement", 0.005);
    let alpha = ctx.param_f64("alpha", 0.05);
    let resamples = ctx.param_usize("bootstrap_resamples", 1000).max(100);
    let wanted = ctx.models()?;
    let until = match ctx.snapshot.as_deref() {
        Some(text) => {
            Some(Date::parse(text).ok_or_else(|| JobError::Invalid(format!("snapshot {text}: expected YYYY-MM-DD")))?)
        }
        None => None,
    };
    let (dates, latest) = history::ensure(config, until, |_| {})?;
    let mut observations = Vec::new();
    let mut summary = RetrainSummary {
        snapshot: latest.date.to_string(),
        min_improvement: margin,
        alpha,
        churn: None,
        manager: None,
        agency: None,
        recommender: None,
    };

    if wanted.contains(&ModelKind::Recommender) {
        summary.recommender = Some(retrain_recommender(&latest, ctx, &registry, margin, &mut observations)?);
    }
    // Churn is labelled from the latest snapshot's holders and holding dates; the rest of it
    // (balances, product ids, every other table) is let go before training's matrices are built.
    let latest = latest.label_inputs_only().map_err(TrainError::from)?;
    // Read only when a comparison needs it (after the memory-hungry churn training), then kept:
    // manager and agency share their holdout snapshot and its features.
    let mut timeline: Option<Timeline> = None;
    let mut holdout: Option<(Date, Features)> = None;
    for spec in [&CHURN, &MANAGER, &AGENCY] {
        if !wanted.contains(&spec.model) {
            continue;
        }
        let months = frames::KeptMonths::new(config, spec.model, dates.clone(), &latest);
        let before = registry.aliases(spec.model).map_err(TrainError::from)?.champion;
        let settings = tabular::TrainSettings::of(config, spec.model);
        let meta = tabular::train(spec, &months, settings, &registry, None)?;
        let label = [(Label::Model, spec.model.as_str())];
        observations.push(Observation::of(
            &obs::RETRAIN_CHALLENGER_VERSION,
            &label,
            meta.version as f64,
        ));
        let Some(champion_version) = before else {
            observations.push(Observation::of(&obs::RETRAIN_PROMOTED, &label, 1.0));
            if let Some(slot) = summary.decision_mut(spec.model) {
                *slot = Some(RetrainDecision {
                    version: meta.version,
                    promoted: true,
                    reason: "the first model: champion by default".into(),
                    holdout: meta.holdout,
                    champion_before: None,
                    holdout_snapshot: None,
                    comparison: None,
                    importance: Vec::new(),
                });
            }
            continue;
        };
        // Both models on the challenger's holdout: the newest labelled snapshot, unseen by both.
        let holdout_date = Date::parse(&meta.holdout_snapshot)
            .ok_or_else(|| JobError::Invalid(format!("holdout snapshot {}", meta.holdout_snapshot)))?;
        let features = match holdout.take() {
            Some((date, features)) if date == holdout_date => features,
            _ => {
                let loaded = match timeline {
                    Some(ref t) => t,
                    None => timeline.insert(Timeline::load(config, ctx.snapshot.as_deref())?),
                };
                loaded.features(holdout_date)?
            }
        };
        let frame = match spec.model {
            ModelKind::Churn => features
                .clients
                .clone()
                .lazy()
                .filter(col(spec.target).is_not_null())
                .collect()?,
            ModelKind::Manager => features.managers.clone(),
            _ => features.agencies.clone(),
        };
        holdout = Some((holdout_date, features));
        let champion = TabularModel::load(&registry, spec.model, Some(champion_version), threads)?;
        let challenger = TabularModel::load(&registry, spec.model, Some(meta.version), threads)?;
        let test = paired(
            spec,
            &champion,
            &challenger,
            &frame,
            resamples,
            config.models.boosting.seed,
        )?;
        let (a, b) = (test.champion, test.challenger);
        // Higher AUC is better; lower RMSE is better.
        let improvement = match spec.task {
            Task::Binary => frames::relative_change(b, Some(a)),
            Task::Regression => frames::relative_change(b, Some(a)).map(|c| -c),
        }
        .unwrap_or(0.0);
        let p = test.p_value;
        let metric = headline(spec);
        let promote = improvement >= margin && p < alpha;
        let reason = if promote {
            format!(
                "{metric} {b:.4} vs champion v{champion_version} {a:.4}: {:+.2} % (needs {:+.2} %), p = {p:.3} < {alpha}",
                improvement * 100.0,
                margin * 100.0
            )
        } else if improvement < margin {
            format!(
                "kept champion v{champion_version}: {metric} {b:.4} vs {a:.4} is {:+.2} %, below the required {:+.2} %",
                improvement * 100.0,
                margin * 100.0
            )
        } else {
            format!(
                "kept champion v{champion_version}: {metric} {b:.4} vs {a:.4} ({:+.2} %) is not significant (p = {p:.3} ≥ {alpha})",
                improvement * 100.0
            )
        };
        if promote {
            registry.promote(spec.model, meta.version).map_err(TrainError::from)?;
        }
        tracing::info!(model = %spec.model, promote, %reason, "retraining decision");
        observations.push(Observation::of(
            &obs::RETRAIN_PROMOTED,
            &label,
            f64::from(u8::from(promote)),
        ));
        observations.push(Observation::of(&obs::RETRAIN_IMPROVEMENT, &label, improvement));
        observations.push(Observation::of(&obs::RETRAIN_P_VALUE, &label, p));
        if let Some(slot) = summary.decision_mut(spec.model) {
            *slot = Some(RetrainDecision {
                version: meta.version,
                promoted: promote,
                reason,
                holdout: meta.holdout,
                champion_before: Some(champion_version),
                holdout_snapshot: Some(meta.holdout_snapshot),
                comparison: Some(test),
                importance: meta.importance.into_iter().take(10).collect(),
            });
        }
    }
    // Retention: old versions go once the decisions are made (champion, challenger and the
    // previous champion always stay).
    for model in ModelKind::ALL {
        match registry.prune(model, config.models.keep_versions) {
            Ok(gone) if !gone.is_empty() => tracing::info!(%model, ?gone, "old versions pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(%model, error = %e, "old versions not pruned"),
        }
    }
    Ok(started.succeeded(
        "retrain",
        Vec::new(),
        observations,
        JobSummary::Retrain(Box::new(summary)).to_value(),
    ))
}

/// The recommender's candidates are all measured on the same fresh holdout at training. The
/// champion's method refitted on newer data is a refresh of a proven recipe and replaces it;
/// a different method must beat the champion's method by the margin on that holdout. (No
/// paired test here: per-client hits are not kept.)
fn retrain_recommender(
    latest: &crate::data::snapshot::Snapshot,
    ctx: &Context,
    registry: &Registry,
    margin: f64,
    observations: &mut Vec<Observation>,
) -> Result<RecommenderDecision, JobError> {
    let config = &ctx.config.models.recommender;
    let before = registry
        .aliases(ModelKind::Recommender)
        .map_err(TrainError::from)?
        .champion;
    let old_method = before.and_then(|v| {
        std::fs::read(registry.version_dir(ModelKind::Recommender, v).join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<RecommenderMeta>(&b).ok())
            .map(|m| m.method)
    });
    let meta = recommender::train_and_register(latest, config, registry)?;
    let label = [(Label::Model, ModelKind::Recommender.as_str())];
    observations.push(Observation::of(
        &obs::RETRAIN_CHALLENGER_VERSION,
        &label,
        meta.version as f64,
    ));
    let precision = |method| {
        meta.candidates
            .iter()
            .find(|c| c.method == method)
            .map_or(0.0, |c| c.metrics.accuracy.precision_at_k)
    };
    let new = precision(meta.method);
    let (promote, improvement, reason) = match (before, old_method) {
        (None, _) => (true, 0.0, "the first model: champion by default".to_string()),
        (Some(_), Some(old)) if old == meta.method => (
            true,
            0.0,
            format!("same method ({}) refitted on newer data", meta.method.name()),
        ),
        (Some(v), old) => {
            let base = old.map(precision).unwrap_or(0.0);
            let improvement = frames::relative_change(new, Some(base)).unwrap_or(0.0);
            if improvement >= margin {
                (
                    true,
                    improvement,
                    format!(
                        "{} beats the champion's method on Precision@{}: {new:.4} vs {base:.4} ({:+.2} %)",
                        meta.method.name(),
                        config.k,
                        improvement * 100.0
                    ),
                )
            } else {
                (
                    false,
                    improvement,
                    format!(
                        "kept champion v{v}: Precision@{} {new:.4} vs {base:.4} ({:+.2} %) is below the margin",
                        config.k,
                        improvement * 100.0
                    ),
                )
            }
        }
    };
    if promote {
        registry
            .promote(ModelKind::Recommender, meta.version)
            .map_err(TrainError::from)?;
    }
    observations.push(Observation::of(
        &obs::RETRAIN_PROMOTED,
        &label,
        f64::from(u8::from(promote)),
    ));
    observations.push(Observation::of(&obs::RETRAIN_IMPROVEMENT, &label, improvement));
    Ok(RecommenderDecision {
        version: meta.version,
        champion_before: before,
        method: meta.method.name().into(),
        promoted: promote,
        reason,
        candidates: meta.candidates,
    })
}
