//! The campaign lists the scoring job writes beside the scores (`campaigns/retention.parquet`,
//! `campaigns/offer.parquet`): whom to call, whom to offer what, and each client's arm — the
//! hash of client and campaign the contacts table is checked against, so a bank's own tools,
//! bankml and the generator all split a list the same way.
//!
//! - **retention**: the `campaigns.retention_share` of scored clients most likely to leave
//!   (by calibrated churn rate, then score), with the reasons and actions scoring found;
//! - **offer**: the `campaigns.offer_share` of clients the recommender is surest of (by the
//!   score of their first recommendation), each offered it — or, in the baseline arm, the
//!   most popular product they lack, what a bank without a recommender would offer.

use crate::config::CampaignsConfig;
use crate::data::campaign::{Arm, ArmShares, CampaignId, CampaignKind};
use crate::data::date::Date;
use polars::prelude::*;

fn shares(config: &CampaignsConfig) -> ArmShares {
    ArmShares {
        control: config.control_share,
        challenger: config.challenger_share,
        baseline: config.baseline_share,
    }
}

fn listed(total: usize, share: f64) -> usize {
    ((total as f64) * share).round() as usize
}

/// The retention list from scoring's churn frame (`cli`, `churn_probability`, optional
/// `churn_rate`, `reasons`, `actions`).
pub fn retention(scored: &DataFrame, snapshot: Date, config: &CampaignsConfig) -> PolarsResult<DataFrame> {
    let campaign = CampaignId {
        kind: CampaignKind::Retention,
        snapshot,
    };
    let ids = scored.column("cli")?.i64()?;
    let probability = scored.column("churn_probability")?.f64()?;
    let rate = match scored.column("churn_rate") {
        Ok(column) => column.f64()?.clone(),
        Err(_) => probability.clone(),
    };
    let value = |ca: &Float64Chunked, i: usize| ca.get(i).unwrap_or(f64::NEG_INFINITY);
    let mut order: Vec<usize> = (0..scored.height()).collect();
    let riskier_first = |a: &usize, b: &usize| {
        value(&rate, *b)
            .total_cmp(&value(&rate, *a))
            .then(value(probability, *b).total_cmp(&value(probability, *a)))
            .then(a.cmp(b))
    };
    let n = listed(order.len(), config.retention_share).min(order.len());
    if n > 0 && n < order.len() {
        order.select_nth_unstable_by(n - 1, riskier_first);
    }
    order.truncate(n);
    order.sort_by(riskier_first);
    let picked = IdxCa::from_vec("rows".into(), order.iter().map(|i| *i as IdxSize).collect());
    let mut list = scored
        .select(["cli", "churn_probability", "reasons", "actions"])?
        .take(&picked)?;
    if scored.column("churn_rate").is_ok() {
        list.with_column(scored.column("churn_rate")?.take(&picked)?)?;
    }
    let arms = shares(config);
    let arm: Vec<&str> = order
        .iter()
        .map(|i| arms.arm_of(campaign, ids.get(*i).unwrap_or_default()).as_str())
        .collect();
    list.insert_column(0, Column::new("campaign".into(), vec![campaign.to_string(); n]))?;
    list.insert_column(2, Column::new("rank".into(), (1..=n as i64).collect::<Vec<_>>()))?;
    list.insert_column(3, Column::new("arm".into(), arm))?;
    Ok(list)
}

/// One client of the offer list: their first recommendation and its score, and the most
/// popular product they lack.
pub struct OfferCandidate {
    pub client: i64,
    pub first_pick: String,
    pub score: f64,
    pub popular: String,
}

/// The offer list from each scored client's first recommendation.
pub fn offer(candidates: Vec<OfferCandidate>, snapshot: Date, config: &CampaignsConfig) -> PolarsResult<DataFrame> {
    let campaign = CampaignId {
        kind: CampaignKind::Offer,
        snapshot,
    };
    let mut candidates = candidates;
    let surest_first =
        |a: &OfferCandidate, b: &OfferCandidate| b.score.total_cmp(&a.score).then(a.client.cmp(&b.client));
    let n = listed(candidates.len(), config.offer_share).min(candidates.len());
    if n > 0 && n < candidates.len() {
        candidates.select_nth_unstable_by(n - 1, surest_first);
    }
    candidates.truncate(n);
    candidates.sort_by(surest_first);
    let arms = shares(config);
    let arm: Vec<Arm> = candidates.iter().map(|c| arms.arm_of(campaign, c.client)).collect();
    DataFrame::new_infer_height(vec![
        Column::new("campaign".into(), vec![campaign.to_string(); n]),
        Column::new("cli".into(), candidates.iter().map(|c| c.client).collect::<Vec<_>>()),
        Column::new("rank".into(), (1..=n as i64).collect::<Vec<_>>()),
        Column::new("arm".into(), arm.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        Column::new(
            "offer".into(),
            candidates
                .iter()
                .zip(&arm)
                .map(|(c, a)| {
                    if *a == Arm::Baseline {
                        c.popular.as_str()
                    } else {
                        c.first_pick.as_str()
                    }
                })
                .collect::<Vec<_>>(),
        ),
        Column::new("score".into(), candidates.iter().map(|c| c.score).collect::<Vec<_>>()),
    ])
}
