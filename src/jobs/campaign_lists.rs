//! The campaign lists the scoring job writes beside the scores (`campaigns/retention.parquet`,
//! `campaigns/offer.parquet`): whom to call, whom to offer what, and each client's arm — the
//! hash of client and campaign the contacts table is checked against, so a bank's own tools,
//! bankml and the generator all split a list the same way.
//!
//! - **retention**: the `campaigns.retention_share` of scored clients most likely to leave
//!   (by calibrated churn rate, then score), with the reasons and actions scoring found;
//! - **offer**: the `campaigns.offer_share` of clients the recommender is surest of (by the
//!   score of their first recommendation; clients holding nothing, scored by popularity, are
//!   left out), each offered it — or, in the baseline arm, the
//!   most popular product they lack, what a bank without a recommender would offer;
//! - **targets**: per product, the `campaigns.targets_per_product` clients most likely to take
//!   it — those whose own list puts it highest, then by the recommender's score (scores are
//!   comparable only within a client: one holding nothing is scored by popularity counts);
//!   clients holding it left out — for a bank's own product campaigns, without arms.

use crate::config::CampaignsConfig;
use crate::data::campaign::{Arm, ArmShares, CampaignId, CampaignKind};
use crate::data::date::Date;
use polars::prelude::*;

/// The arms' shares; a challenger arm only while a challenger is there to treat it.
pub fn arm_shares(config: &CampaignsConfig, challenger: bool) -> ArmShares {
    ArmShares {
        control: config.control_share,
        challenger: if challenger { config.challenger_share } else { 0.0 },
        baseline: config.baseline_share,
    }
}

fn listed(total: usize, share: f64) -> usize {
    ((total as f64) * share).round() as usize
}

/// The retention list from scoring's churn frame (`cli`, `churn_probability`, optional
/// `churn_rate`, `reasons`, `actions`). With `challenger`, its share of the list is the
/// challenger arm (whose reasons and actions the caller then replaces with the challenger's).
pub fn retention(
    scored: &DataFrame,
    snapshot: Date,
    config: &CampaignsConfig,
    challenger: bool,
) -> PolarsResult<DataFrame> {
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
    let arms = arm_shares(config, challenger);
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
    /// The challenger recommender's first pick, for a client in the challenger arm.
    pub challenger_pick: Option<String>,
}

/// A recommender challenger tried on the offer list's challenger arm.
pub struct OfferChallenger {
    pub model: crate::models::recommender::SavedRecommender,
    pub version: u32,
    /// The champion's version, whose advice every other arm follows.
    pub champion: u32,
    pub campaign: CampaignId,
    pub shares: ArmShares,
}

impl OfferChallenger {
    /// The challenger's first pick for `client` (holding `held`, indices into `items`, the
    /// champion's products) when the client falls in the challenger arm.
    pub fn pick_for(&self, client: i64, held: &[usize], items: &[String]) -> Option<String> {
        if self.shares.arm_of(self.campaign, client) != Arm::Challenger {
            return None;
        }
        let own = &self.model.model.items;
        let theirs: Vec<usize> = held
            .iter()
            .filter_map(|i| items.get(*i))
            .filter_map(|name| own.iter().position(|o| o == name))
            .collect();
        let (first, _) = *self.model.model.recommend(&theirs, 1).first()?;
        own.get(first).cloned()
    }
}

/// The offer list from each scored client's first recommendation; with a `challenger`, its
/// arm is offered the challenger's pick, and `model_version` says whose advice each row follows.
pub fn offer(
    candidates: Vec<OfferCandidate>,
    snapshot: Date,
    config: &CampaignsConfig,
    challenger: Option<&OfferChallenger>,
) -> PolarsResult<DataFrame> {
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
    let arms = arm_shares(config, challenger.is_some());
    let arm: Vec<Arm> = candidates.iter().map(|c| arms.arm_of(campaign, c.client)).collect();
    let mut columns = vec![
        Column::new("campaign".into(), vec![campaign.to_string(); n]),
        Column::new("cli".into(), candidates.iter().map(|c| c.client).collect::<Vec<_>>()),
        Column::new("rank".into(), (1..=n as i64).collect::<Vec<_>>()),
        Column::new("arm".into(), arm.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        Column::new(
            "offer".into(),
            candidates
                .iter()
                .zip(&arm)
                .map(|(c, a)| match a {
                    Arm::Baseline => c.popular.as_str(),
                    Arm::Challenger => c.challenger_pick.as_deref().unwrap_or(c.first_pick.as_str()),
                    _ => c.first_pick.as_str(),
                })
                .collect::<Vec<_>>(),
        ),
        Column::new("score".into(), candidates.iter().map(|c| c.score).collect::<Vec<_>>()),
    ];
    if let Some(challenger) = challenger {
        columns.push(Column::new(
            "model_version".into(),
            arm.iter()
                .map(|a| {
                    i64::from(if *a == Arm::Challenger {
                        challenger.version
                    } else {
                        challenger.champion
                    })
                })
                .collect::<Vec<_>>(),
        ));
    }
    DataFrame::new_infer_height(columns)
}

/// The `per_product` best clients of each product, kept while the clients stream by: a
/// bounded heap per product, so memory is products × `per_product`, not products × clients.
pub struct Targets {
    per_product: usize,
    heaps: Vec<std::collections::BinaryHeap<std::cmp::Reverse<Target>>>,
}

/// A client's standing for a product; better is a higher place in the client's own list,
/// then a client the recommender knows (one holding nothing is scored by popularity counts,
/// which do not compare with other clients' scores), then a higher score, then the smaller
/// client id.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Target {
    rank: usize,
    cold: bool,
    score: f64,
    client: i64,
}

impl Eq for Target {}

impl PartialOrd for Target {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Target {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then(other.cold.cmp(&self.cold))
            .then(self.score.total_cmp(&other.score))
            .then(other.client.cmp(&self.client))
    }
}

impl Targets {
    pub fn new(products: usize, per_product: usize) -> Targets {
        Targets {
            per_product,
            heaps: (0..products).map(|_| std::collections::BinaryHeap::new()).collect(),
        }
    }

    /// `client`'s place (`rank` in their own list) and score for product `item`; `cold`: the
    /// client holds nothing.
    pub fn offer(&mut self, item: usize, client: i64, rank: usize, cold: bool, score: f64) {
        if self.per_product == 0 || !score.is_finite() {
            return;
        }
        let Some(heap) = self.heaps.get_mut(item) else { return };
        let candidate = Target {
            rank,
            cold,
            score,
            client,
        };
        if heap.len() < self.per_product {
            heap.push(std::cmp::Reverse(candidate));
        } else if heap.peek().is_some_and(|worst| candidate > worst.0) {
            heap.pop();
            heap.push(std::cmp::Reverse(candidate));
        }
    }

    /// `product_id, cli, rank, rank_for_client, holds_nothing, score`, each product's best first.
    pub fn frame(self, items: &[String]) -> PolarsResult<DataFrame> {
        let (mut products, mut clients, mut ranks, mut scores) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut own, mut cold) = (Vec::new(), Vec::new());
        for (item, heap) in self.heaps.into_iter().enumerate() {
            let mut best: Vec<Target> = heap.into_iter().map(|r| r.0).collect();
            best.sort_by(|a, b| b.cmp(a));
            for (rank, target) in best.into_iter().enumerate() {
                products.push(items.get(item).cloned().unwrap_or_default());
                clients.push(target.client);
                ranks.push(rank as i64 + 1);
                own.push(target.rank as i64);
                cold.push(target.cold);
                scores.push(target.score);
            }
        }
        DataFrame::new_infer_height(vec![
            Column::new("product_id".into(), products),
            Column::new("cli".into(), clients),
            Column::new("rank".into(), ranks),
            Column::new("rank_for_client".into(), own),
            Column::new("holds_nothing".into(), cold),
            Column::new("score".into(), scores),
        ])
    }
}

/// The list with the challenger arm's `reasons` and `actions` replaced by the challenger's
/// (`treated`: `cli`, `reasons`, `actions` of those clients, from the challenger model), and a
/// `model_version` column: which version's advice each client is to be treated with (the
/// control's is the champion's, what it would have had).
pub fn treat_challenger_arm(
    list: DataFrame,
    treated: &DataFrame,
    champion: u32,
    challenger: u32,
) -> PolarsResult<DataFrame> {
    let ids = treated.column("cli")?.i64()?;
    let reasons = treated.column("reasons")?.str()?;
    let actions = treated.column("actions")?.str()?;
    let by_client: std::collections::HashMap<i64, (String, String)> = (0..treated.height())
        .filter_map(|i| {
            Some((
                ids.get(i)?,
                (
                    reasons.get(i).unwrap_or("").to_string(),
                    actions.get(i).unwrap_or("").to_string(),
                ),
            ))
        })
        .collect();
    let cli = list.column("cli")?.i64()?;
    let arm = list.column("arm")?.str()?;
    let (old_reasons, old_actions) = (list.column("reasons")?.str()?, list.column("actions")?.str()?);
    let mut new_reasons = Vec::with_capacity(list.height());
    let mut new_actions = Vec::with_capacity(list.height());
    let mut versions = Vec::with_capacity(list.height());
    for i in 0..list.height() {
        let theirs = (arm.get(i) == Some(Arm::Challenger.as_str()))
            .then(|| cli.get(i).and_then(|c| by_client.get(&c)))
            .flatten();
        match theirs {
            Some((r, a)) => {
                new_reasons.push(r.clone());
                new_actions.push(a.clone());
                versions.push(i64::from(challenger));
            }
            None => {
                new_reasons.push(old_reasons.get(i).unwrap_or("").to_string());
                new_actions.push(old_actions.get(i).unwrap_or("").to_string());
                versions.push(i64::from(champion));
            }
        }
    }
    let mut list = list;
    list.with_column(Column::new("reasons".into(), new_reasons))?;
    list.with_column(Column::new("actions".into(), new_actions))?;
    list.with_column(Column::new("model_version".into(), versions))?;
    Ok(list)
}
