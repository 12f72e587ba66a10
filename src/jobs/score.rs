//! Bulk scoring: every current client (churn probability, risk, reasons, actions, top-k
//! products), manager and agency of a snapshot, with the champions, into
//! `data/scores/<date>/` (Parquet, CSV on request, and `summary.json`), with the campaign
//! lists built on them (`campaigns/`).

use super::campaign_lists::{self, OfferCandidate};
use super::{Context, JobError, Observation, RunOutcome, Started, absent_if_untrained};
use crate::config::EngineConfig;
use crate::data::format::{FileFormat, write_frame};
use crate::data::snapshot::{self, Snapshot};
use crate::data::store::FeatureStore;
use crate::fsutil::{self, StagedDir};
use crate::models::churn::{Risk, reasons_and_actions};
use crate::models::recommender::{HoldingsIndex, Recommender, SavedRecommender};
use crate::models::registry::Registry;
use crate::models::support;
use crate::models::tabular::TabularModel;
use crate::report::summary::{
    AtRiskClient, ClientScores, EntityScores, EntitySupport, JobSummary, RankedEntity, RecommendationScores,
    ScoringSummary,
};
use crate::vocab::ModelKind;
use crate::vocab::catalogue::{self as obs, Label};
use polars::prelude::*;
use std::time::Instant;

/// Rows scored per batch: bounds the contributions matrix's memory on millions of clients.
const BATCH: usize = 50_000;

/// Scores the snapshot with every champion and writes `data/scores/<date>/`.
pub fn run(ctx: &Context) -> Result<RunOutcome, JobError> {
    let config = ctx.config;
    let started = Started::now();
    let registry = Registry::new(&config.models.dir);
    let threads = config.models.boosting.thread_count();
    let churn = absent_if_untrained(TabularModel::load(&registry, ModelKind::Churn, None, threads))?;
    let manager = absent_if_untrained(TabularModel::load(&registry, ModelKind::Manager, None, threads))?;
    let agency = absent_if_untrained(TabularModel::load(&registry, ModelKind::Agency, None, threads))?;
    let recommender = absent_if_untrained(SavedRecommender::load(&registry, None))?;
    // A churn challenger being tried on live clients: it treats the retention list's
    // challenger arm (`campaigns.challenger_share`).
    let churn_challenger = match (
        &churn,
        config.campaigns.lists && config.campaigns.challenger_share > 0.0,
    ) {
        (Some(champion), true) => match registry
            .aliases(ModelKind::Churn)
            .map_err(|e| JobError::Invalid(e.to_string()))?
            .challenger
        {
            Some(v) if v != champion.meta.version => {
                Some(TabularModel::load(&registry, ModelKind::Churn, Some(v), threads)?)
            }
            _ => None,
        },
        _ => None,
    };
    if churn.is_none() && manager.is_none() && agency.is_none() && recommender.is_none() {
        return Err(JobError::NoModels);
    }
    let (date, dir) = snapshot::find_snapshot(&config.data.raw_dir, ctx.snapshot.as_deref())?;
    let loaded = snapshot::load(&dir, date, config)?;
    // Scoring usually meets a snapshot first: it builds and keeps its features for the
    // benchmark, validation and retraining that read them later.
    let store = FeatureStore::new(config);
    let built = match store.ensure(date, Some(&loaded), None)? {
        (_, Some(built)) => built,
        (_, None) => store.read_all(date)?,
    };
    tracing::info!(seconds = started.seconds(), "snapshot read and features ready");

    let out = config.data.scores_dir.join(date.to_string());
    let staged = StagedDir::new(&out)?;
    let mut summary = ScoringSummary {
        snapshot: date.to_string(),
        clients: None,
        recommendations: None,
        managers: None,
        agencies: None,
    };

    // A recommender challenger being tried on live clients: it picks the offer of the offer
    // list's challenger arm.
    let offer_challenger = match (
        &recommender,
        config.campaigns.lists && config.campaigns.challenger_share > 0.0,
    ) {
        (Some(_), true) => {
            let aliases = registry
                .aliases(ModelKind::Recommender)
                .map_err(|e| JobError::Invalid(e.to_string()))?;
            match (aliases.champion, aliases.challenger) {
                (Some(champion), Some(v)) if v != champion => Some(campaign_lists::OfferChallenger {
                    model: SavedRecommender::load(&registry, Some(v))?,
                    version: v,
                    champion,
                    campaign: crate::data::campaign::CampaignId {
                        kind: crate::data::campaign::CampaignKind::Offer,
                        snapshot: date,
                    },
                    shares: campaign_lists::arm_shares(&config.campaigns, true),
                }),
                _ => None,
            }
        }
        _ => None,
    };

    // Churn (XGBoost's threads) and recommendations (plain Rust) are independent: side by side.
    let (churn_result, recommendation_result) = std::thread::scope(|scope| {
        let recommendations = scope.spawn(|| {
            recommender.as_ref().map(|r| {
                recommend_all(
                    r,
                    &loaded,
                    config.models.recommender.k,
                    config.campaigns.targets_per_product,
                    offer_challenger.as_ref(),
                )
            })
        });
        let churn_scores = churn.as_ref().map(|model| score_churn(model, &built.clients, config));
        (
            churn_scores,
            recommendations
                .join()
                .unwrap_or_else(|_| Some(Err(JobError::WorkerPanicked))),
        )
    });
    let lists = config.campaigns.lists;
    if let Some(result) = churn_result {
        let (mut frame, value) = result?;
        write(&mut frame, &staged, "clients", ctx.csv)?;
        if lists {
            let list = campaign_lists::retention(&frame, date, &config.campaigns, churn_challenger.is_some())?;
            let mut list = match (&churn_challenger, &churn) {
                (Some(challenger), Some(champion)) => {
                    let arm = list.column("arm")?.str()?;
                    let wanted: std::collections::HashSet<i64> = list
                        .column("cli")?
                        .i64()?
                        .iter()
                        .zip(arm.iter())
                        .filter(|(_, a)| *a == Some("challenger"))
                        .filter_map(|(c, _)| c)
                        .collect();
                    let mask: BooleanChunked = built
                        .clients
                        .column("cli")?
                        .i64()?
                        .iter()
                        .map(|c| c.is_some_and(|c| wanted.contains(&c)))
                        .collect();
                    let rows = built.clients.filter(&mask)?;
                    let (treated, _) = score_churn(challenger, &rows, config)?;
                    campaign_lists::treat_challenger_arm(
                        list,
                        &treated,
                        champion.meta.version,
                        challenger.meta.version,
                    )?
                }
                _ => list,
            };
            write(&mut list, &staged, "campaigns/retention", ctx.csv)?;
        }
        summary.clients = Some(value);
    }
    if let Some(result) = recommendation_result {
        let (mut frame, value, candidates, targets) = result?;
        write(&mut frame, &staged, "recommendations", ctx.csv)?;
        if lists {
            let mut list = campaign_lists::offer(candidates, date, &config.campaigns, offer_challenger.as_ref())?;
            write(&mut list, &staged, "campaigns/offer", ctx.csv)?;
            if let Some((targets, items)) = targets {
                let mut list = targets.frame(&items)?;
                write(&mut list, &staged, "campaigns/targets", ctx.csv)?;
            }
        }
        summary.recommendations = Some(value);
    }
    tracing::info!(seconds = started.seconds(), "clients scored");
    for (model, frame, key, name) in [
        (&manager, &built.managers, "ges", "managers"),
        (&agency, &built.agencies, "age", "agencies"),
    ] {
        let Some(model) = model else { continue };
        let (mut scored, value) = score_entities(model, frame, key, config.models.performance_objective)?;
        write(&mut scored, &staged, name, ctx.csv)?;
        match name {
            "managers" => summary.managers = Some(value),
            _ => summary.agencies = Some(value),
        }
    }
    fsutil::write_bytes_atomic(
        &staged.path().join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes(),
    )?;
    staged.commit()?;
    let observations = observations(&summary);
    Ok(started.succeeded(
        "score",
        vec![out],
        observations,
        JobSummary::Scoring(Box::new(summary)).to_value(),
    ))
}

/// The figures of a scoring run, for reports, metrics and alerts.
fn observations(summary: &ScoringSummary) -> Vec<Observation> {
    let mut out = Vec::new();
    if let Some(clients) = &summary.clients {
        out.push(Observation::of(&obs::SCORED_CLIENTS, &[], clients.count as f64));
        for risk in ["Low", "Medium", "High"] {
            out.push(Observation::of(
                &obs::CHURN_RISK_CLIENTS,
                &[(Label::Risk, risk)],
                clients.by_risk.get(risk).copied().unwrap_or(0) as f64,
            ));
        }
        out.push(Observation::of(
            &obs::CHURN_MEAN_PROBABILITY,
            &[],
            clients.mean_churn_probability,
        ));
    }
    if let Some(r) = &summary.recommendations {
        out.push(Observation::of(
            &obs::RECOMMENDATION_COLD_START_CLIENTS,
            &[],
            r.cold_start_clients as f64,
        ));
    }
    for (scores, model) in [
        (&summary.managers, ModelKind::Manager),
        (&summary.agencies, ModelKind::Agency),
    ] {
        if let Some(scores) = scores {
            out.push(Observation::of(
                &obs::PREDICTED_SCORE_MEAN,
                &[(Label::Model, model.as_str())],
                scores.mean_predicted_score,
            ));
        }
    }
    out
}

/// Probability, risk level, and — for Medium and High risk — reasons and actions per client.
fn score_churn(
    model: &TabularModel,
    clients: &DataFrame,
    config: &EngineConfig,
) -> Result<(DataFrame, ClientScores), JobError> {
    let churn_config = &config.models.churn;
    let names = model.design.names();
    let width = names.len() + 1;
    let (mut probabilities, mut rates, mut risks, mut reasons, mut actions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for start in (0..clients.height()).step_by(BATCH) {
        let batch = clients.slice(start as i64, BATCH);
        let x = model.design.matrix(&batch)?;
        let p: Vec<f64> = model.booster.predict(&x)?.iter().map(|p| *p as f64).collect();
        // The version's calibrator (learned on rows its booster did not fit) turns each score into the churn rate
        // of clients scored like it; risk levels are cut on that rate, the class-weighted
        // score stays as the ranking.
        let rate = model.churn_rates(&p);
        // Only the at-risk rows go through the (costly) contributions.
        let at_risk: Vec<usize> = (0..p.len()).filter(|&i| rate[i] >= churn_config.medium_risk).collect();
        let shap = model
            .booster
            .contributions_of(&x.take(&at_risk), !churn_config.exact_reasons)?;
        let mut next = 0;
        for (i, rate) in rate.iter().enumerate() {
            let (why, what) = if next < at_risk.len() && at_risk[next] == i {
                next += 1;
                reasons_and_actions(&shap[(next - 1) * width..next * width], &names, churn_config.reasons)
            } else {
                (Vec::new(), Vec::new())
            };
            risks.push(Risk::of(*rate, churn_config).name());
            reasons.push(why.join("; "));
            actions.push(what.join("; "));
        }
        probabilities.extend(p);
        rates.extend(rate);
    }
    let rates = model.calibration.is_some().then_some(rates);
    let mut columns = vec![
        clients.column("cli")?.clone(),
        clients.column("ges")?.clone(),
        clients.column("age")?.clone(),
        Column::new("churn_probability".into(), &probabilities),
    ];
    if let Some(rates) = &rates {
        columns.push(Column::new("churn_rate".into(), rates));
    }
    columns.extend([
        Column::new("risk".into(), &risks),
        Column::new("reasons".into(), &reasons),
        Column::new("actions".into(), &actions),
    ]);
    let frame = DataFrame::new_infer_height(columns)?;
    let top_at_risk = top_at_risk(clients, &probabilities, rates.as_deref(), &risks, &reasons, &actions)?;
    let count = |level: &str| risks.iter().filter(|r| **r == level).count();
    let value = ClientScores {
        model_version: model.meta.version,
        count: probabilities.len(),
        by_risk: ["Low", "Medium", "High"].map(|r| (r.to_string(), count(r))).into(),
        mean_churn_probability: probabilities.iter().sum::<f64>() / probabilities.len().max(1) as f64,
        expected_churn_rate: rates.map(|r| r.iter().sum::<f64>() / r.len().max(1) as f64),
        top_at_risk,
    };
    Ok((frame, value))
}

/// Clients on the report's retention list.
const TOP_AT_RISK: usize = 10;

/// The [`TOP_AT_RISK`] clients most likely to leave: by churn rate, then by score (the rate
/// is a step function of the score).
fn top_at_risk(
    clients: &DataFrame,
    probabilities: &[f64],
    rates: Option<&[f64]>,
    risks: &[&str],
    reasons: &[String],
    actions: &[String],
) -> Result<Vec<AtRiskClient>, JobError> {
    let rate = |i: usize| rates.map_or(probabilities[i], |r| r[i]);
    let riskier_first = |a: &usize, b: &usize| {
        rate(*b)
            .total_cmp(&rate(*a))
            .then(probabilities[*b].total_cmp(&probabilities[*a]))
            .then(a.cmp(b))
    };
    // The ten riskiest, without sorting every client (a bank scores millions).
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    if order.len() > TOP_AT_RISK {
        order.select_nth_unstable_by(TOP_AT_RISK - 1, riskier_first);
        order.truncate(TOP_AT_RISK);
    }
    order.sort_by(riskier_first);
    let ids = clients.column("cli")?.i64()?;
    let managers = clients.column("ges")?.str()?;
    Ok(order
        .into_iter()
        .take(TOP_AT_RISK)
        .map(|i| AtRiskClient {
            client_id: ids.get(i).unwrap_or(-1),
            manager_id: managers.get(i).map(str::to_string),
            churn_rate: rate(i),
            risk: risks[i].to_string(),
            reasons: reasons[i].clone(),
            actions: actions[i].clone(),
        })
        .collect())
}

/// Every current client's top `k` products (long format), from what they hold at the snapshot,
/// each client's first pick and most popular missing product (the offer list's input), and per
/// product the `per_product` clients most likely to take it.
type Recommended = (
    DataFrame,
    RecommendationScores,
    Vec<OfferCandidate>,
    Option<(campaign_lists::Targets, Vec<String>)>,
);

fn recommend_all(
    saved: &SavedRecommender,
    loaded: &Snapshot,
    k: usize,
    per_product: usize,
    challenger: Option<&campaign_lists::OfferChallenger>,
) -> Result<Recommended, JobError> {
    let started = Instant::now();
    let index = HoldingsIndex::new(loaded)?;
    let clients = saved.holdings_at(&index, loaded.date.0);
    let rows = clients.len() * k;
    let (mut ids, mut ranks, mut items, mut scores) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let mut cold = 0usize;
    let mut candidates = Vec::with_capacity(clients.len());
    let item_name = |i: usize| saved.model.items.get(i).cloned().unwrap_or_default();
    let products = saved.model.items.len();
    let mut targets = campaign_lists::Targets::new(products, per_product);
    for (client, held) in &clients {
        cold += usize::from(held.is_empty());
        // Every product's score once: the client's own list and each product's targets.
        let all = saved.model.scores(held);
        let ranked = Recommender::top(&all, held, products);
        if per_product > 0 {
            for (place, (item, score)) in ranked.iter().enumerate() {
                targets.offer(*item, *client, place + 1, held.is_empty(), *score);
            }
        }
        let picks: Vec<(usize, f64)> = ranked.into_iter().take(k).collect();
        let popular = (0..saved.model.items.len())
            .filter(|j| !held.contains(j))
            .max_by(|a, b| {
                saved.model.popularity[*a]
                    .total_cmp(&saved.model.popularity[*b])
                    .then(b.cmp(a))
            });
        // A client holding nothing gets popularity, not the recommender's judgement: its score
        // (a count) does not compare with the others', so it is no candidate for the offer list.
        if let (Some((first, score)), Some(popular), false) = (picks.first(), popular, held.is_empty()) {
            candidates.push(OfferCandidate {
                client: *client,
                first_pick: item_name(*first),
                score: *score,
                popular: item_name(popular),
                challenger_pick: challenger.and_then(|c| c.pick_for(*client, held, &saved.model.items)),
            });
        }
        for (rank, (item, score)) in picks.into_iter().enumerate() {
            ids.push(*client);
            ranks.push(rank as i64 + 1);
            items.push(item);
            scores.push(score);
        }
    }
    fn text<'a>(items: &[usize], values: &'a [String]) -> Vec<&'a str> {
        items
            .iter()
            .map(|i| values.get(*i).map(String::as_str).unwrap_or(""))
            .collect()
    }
    let frame = DataFrame::new_infer_height(vec![
        Column::new("cli".into(), ids),
        Column::new("rank".into(), ranks),
        Column::new("product_id".into(), text(&items, &saved.model.items)),
        Column::new("product_name".into(), text(&items, &saved.names)),
        Column::new("category".into(), text(&items, &saved.categories)),
        Column::new("score".into(), scores),
    ])?;
    let value = RecommendationScores {
        method: saved.model.method.name().into(),
        clients: clients.len(),
        cold_start_clients: cold,
        per_client: k,
        seconds: started.elapsed().as_secs_f64(),
    };
    let targets = (per_product > 0).then(|| (targets, saved.model.items.clone()));
    Ok((frame, value, candidates, targets))
}

/// Entities the report lists as needing support.
const NEEDING_SUPPORT: usize = 10;

/// Predicted (0–100) against actual scores of managers or agencies, with the top and bottom
/// five, and for those below `objective` what pulls the score down and the support it calls
/// for (with every one's chance of meeting the objective).
fn score_entities(
    model: &TabularModel,
    frame: &DataFrame,
    key: &str,
    objective: f64,
) -> Result<(DataFrame, EntityScores), JobError> {
    let x = model.design.matrix(frame)?;
    let predicted: Vec<f64> = model
        .booster
        .predict(&x)?
        .iter()
        .map(|v| (*v as f64).clamp(0.0, 100.0))
        .collect();
    // Hundreds of managers or agencies: exact contributions cost little.
    let contributions = model.booster.contributions(&x)?;
    let supports = support::supports(model, &predicted, &contributions, objective);
    let drags: Vec<Vec<String>> = supports
        .iter()
        .map(|s| {
            s.pulling_down
                .iter()
                .map(|d| format!("{} ({:+.1})", d.feature, d.effect))
                .collect()
        })
        .collect();
    let scored = DataFrame::new_infer_height(vec![
        frame.column(key)?.clone(),
        Column::new("predicted_score".into(), &predicted),
        frame.column("performance_score")?.clone(),
        Column::new(
            "meets_objective_probability".into(),
            supports
                .iter()
                .map(|s| s.meets_objective_probability)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "below_objective".into(),
            supports.iter().map(|s| s.below_objective).collect::<Vec<_>>(),
        ),
        Column::new(
            "pulling_down".into(),
            drags.iter().map(|d| d.join("; ")).collect::<Vec<_>>(),
        ),
        Column::new(
            "support".into(),
            supports.iter().map(|s| s.support.join("; ")).collect::<Vec<_>>(),
        ),
    ])?;
    let ids: Vec<String> = frame
        .column(key)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    let mut ranked: Vec<(String, f64)> = ids.iter().cloned().zip(predicted.iter().copied()).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let entry = |(id, score): &(String, f64)| RankedEntity {
        id: id.clone(),
        predicted_score: *score,
    };
    let mut below: Vec<usize> = (0..supports.len()).filter(|i| supports[*i].below_objective).collect();
    below.sort_by(|a, b| {
        supports[*a]
            .meets_objective_probability
            .total_cmp(&supports[*b].meets_objective_probability)
            .then(ids[*a].cmp(&ids[*b]))
    });
    let value = EntityScores {
        model_version: model.meta.version,
        count: ranked.len(),
        mean_predicted_score: predicted.iter().sum::<f64>() / predicted.len().max(1) as f64,
        top: ranked.iter().take(5).map(entry).collect(),
        bottom: ranked.iter().rev().take(5).map(entry).collect(),
        objective: Some(objective),
        below_objective: below.len(),
        needing_support: below
            .iter()
            .take(NEEDING_SUPPORT)
            .map(|&i| EntitySupport {
                id: ids[i].clone(),
                predicted_score: predicted[i],
                meets_objective_probability: supports[i].meets_objective_probability,
                pulling_down: drags[i].clone(),
                support: supports[i].support.clone(),
            })
            .collect(),
    };
    Ok((scored, value))
}

fn write(frame: &mut DataFrame, staged: &StagedDir, name: &str, csv: bool) -> Result<(), JobError> {
    write_frame(
        frame,
        &staged.path().join(format!("{name}.parquet")),
        FileFormat::Parquet,
    )?;
    if csv {
        write_frame(frame, &staged.path().join(format!("{name}.csv")), FileFormat::Csv)?;
    }
    Ok(())
}
