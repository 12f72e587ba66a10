//! Campaigns the synthetic bank runs on its own lists, with planted effects, so that every
//! business figure bankml reports can be checked against what was planted.
//!
//! In each month after the first exported one, the bank runs two campaigns on the previous
//! snapshot S (`retention-S`, `offer-S`) and exports what it did as that month's `contacts`
//! table. Each listed client's arm is [`ArmShares::arm_of`] — the hash bankml's own lists use.
//!
//! - **Retention** — the [`RETENTION_LIST_SHARE`] of current clients most at risk (by what a
//!   model sees: engagement, recent complaints, products, tenure, age) are listed, leaving out
//!   those already closing their accounts (they have told the bank). Each has a
//!   hidden reason: service (40 %), price (35 %) or relocation (25 %). A call, within the first
//!   week, saves a client who then decides to leave before the horizon with probability
//!   [`save_probability`]: 0.6 for service, 0.4 for price, never for relocation; the
//!   challenger's calls add the plan's margin to the first two. A saved client stays at least
//!   until the horizon has passed. The control is not called. A listed client is not listed
//!   again until the horizon has passed (so one campaign's control is never called by the next).
//! - **Offers** — [`OFFER_LIST_SHARE`] of current clients, drawn at random, are each offered
//!   one product: the one they fit best (champion and challenger) or the most popular one they
//!   do not hold (baseline). A contacted client clicks with probability
//!   `0.04 + 0.5 × fit` (the offered product's share of the client's adoption weights; the
//!   challenger adds the plan's margin) and, having clicked, opens it within 14 days with
//!   probability `0.2 + 0.5 × fit`. The control is offered nothing; its recorded offer is the
//!   champion's, so its conversions are the product opened anyway.
//!
//! The truth written beside the data: per campaign and arm, the clients, the contacted, the
//! expected click-through rate (the mean of the click probabilities drawn from) and the
//! clients whose outcome the campaign changed — retained who would have left within the
//! horizon, or opened the offer because of it. A figure's effect against the control is
//! that count over the arm's clients.

use super::catalog::PRODUCTS;
use super::rng::{Rng, hashed_unit};
use super::{ACTIVITY_MONTHS, DAYS_PER_YEAR, Simulation};
use crate::data::campaign::{Arm, ArmShares, CampaignId, CampaignKind};
use crate::data::date::{Date, date_column};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Share of current clients on the retention list.
pub const RETENTION_LIST_SHARE: f64 = 0.05;
/// Share of current clients offered a product.
pub const OFFER_LIST_SHARE: f64 = 0.10;
/// Days after the snapshot within which a retained client must not have left; equal to the
/// default `features.churn_horizon_days`.
pub const HORIZON_DAYS: i32 = 90;
/// The arms' shares of every list.
pub const SHARES: ArmShares = ArmShares {
    control: 0.10,
    challenger: 0.30,
    baseline: 0.20,
};

/// Is the challenger truly better than the champion, or truly the same (an A/A test)?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Challenger {
    /// Saves 0.35 more of the responsive leavers; 0.04 more clicks.
    Better,
    /// Treats exactly as the champion does.
    Equal,
}

impl Challenger {
    fn save_margin(self) -> f64 {
        match self {
            Challenger::Better => 0.35,
            Challenger::Equal => 0.0,
        }
    }

    fn click_margin(self) -> f64 {
        match self {
            Challenger::Better => 0.04,
            Challenger::Equal => 0.0,
        }
    }
}

/// Why a listed client would leave (hidden from the data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Service,
    Price,
    Relocation,
}

fn reason_of(seed: u64, client: i64) -> Reason {
    match hashed_unit(seed, client as u64, 0x5EA5_0000) {
        u if u < 0.40 => Reason::Service,
        u if u < 0.75 => Reason::Price,
        _ => Reason::Relocation,
    }
}

/// The chance a call saves a client who then decides to leave.
pub fn save_probability(reason_index: usize, arm: Arm, challenger: Challenger) -> f64 {
    let base = [0.6, 0.4, 0.0][reason_index.min(2)];
    match arm {
        Arm::Challenger if base > 0.0 => base + challenger.save_margin(),
        Arm::Control => 0.0,
        _ => base,
    }
}

/// The planted truth of one campaign arm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmTruth {
    /// Listed clients in the arm.
    pub clients: usize,
    /// Of them, contacted (0 for the control).
    pub contacted: usize,
    /// Offers: the click-through the arm's treatment has on the list — the mean, over every
    /// listed client, of the click probability this arm's offer would have had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_click_through: Option<f64>,
    /// The arm's planted effect on the list against not contacting: the mean, over every
    /// listed client (whatever arm they fell in), of the chance this arm's treatment changes
    /// their outcome — for retention, the save probability for their reason times whether
    /// they would have left within the horizon uncalled; for offers, the click probability
    /// times the opening probability of this arm's offer. What the arm's difference with the
    /// control estimates.
    pub expected_effect: f64,
    /// Clients of this arm whose outcome the campaign did change (saved within the horizon;
    /// opened the offer because of it): the realized effect, `caused / clients`, noisier
    /// than the expected one by the arm's own draw.
    pub caused: usize,
}

impl ArmTruth {
    /// The realized effect on the arm's own clients: `caused / clients`.
    pub fn realized_effect(&self) -> f64 {
        self.caused as f64 / self.clients.max(1) as f64
    }
}

/// The planted truth of one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignTruth {
    pub campaign: CampaignId,
    pub challenger: Challenger,
    pub arms: BTreeMap<Arm, ArmTruth>,
}

/// A retention client called and saved if they decide to leave before `until`.
#[derive(Clone, Copy)]
struct Protection {
    from: i32,
    until: i32,
    campaign: usize,
    arm: Arm,
    /// The client's place in the campaign's [`RetentionList`].
    member: usize,
    /// Whether the save has been counted (a client is saved once).
    counted: bool,
}

/// A retention list as the truth needs it at the end: who was on it, their arm and reason,
/// and for the saved, whether they would have left within the horizon uncalled.
struct RetentionList {
    campaign: usize,
    snapshot: i32,
    members: Vec<Member>,
}

struct Member {
    client: usize,
    reason: usize,
    /// `Some(would have left)` for a client a call saved; `None`: what happened is what would
    /// have happened uncalled.
    saved: Option<bool>,
}

/// What the simulation keeps about campaigns between months.
pub(super) struct Campaigns {
    challenger: Challenger,
    /// Per client (index), the retention call that protects them.
    protected: Vec<Option<Protection>>,
    /// Per client (index), the last day of the horizon of the retention list they were last
    /// on: no list takes them again before (a bank's cool-off, which also keeps one
    /// campaign's control from being called by the next).
    listed_until: Vec<i32>,
    pub(super) truth: Vec<CampaignTruth>,
    retention_lists: Vec<RetentionList>,
    /// The contacts of the month being simulated, for its export.
    rows: Vec<ContactRow>,
}

struct ContactRow {
    campaign: CampaignId,
    client: i64,
    arm: Arm,
    contacted_on: Option<i32>,
    offer: Option<usize>,
    clicked: Option<bool>,
}

impl Campaigns {
    pub(super) fn new(challenger: Challenger) -> Campaigns {
        Campaigns {
            challenger,
            protected: Vec::new(),
            listed_until: Vec::new(),
            truth: Vec::new(),
            retention_lists: Vec::new(),
            rows: Vec::new(),
        }
    }
}

impl Simulation {
    /// Runs this month's campaigns on the previous snapshot's state. Called at the start of
    /// `advance`, before the month's activity replaces the oldest kept month, with a stream of
    /// its own, so a bank without campaigns draws exactly what it drew before.
    pub(super) fn run_campaigns(&mut self, month: usize) {
        let Some(mut campaigns) = self.campaigns.take() else {
            return;
        };
        campaigns.rows.clear();
        if month > self.burn_in {
            let snapshot = self.month_end(month - 1);
            let mut rng = Rng::new(self.spec.seed ^ 0xCA4A_16E5 ^ (month as u64).wrapping_mul(0x9E37_79B9));
            self.retention_campaign(&mut campaigns, snapshot, &mut rng);
            self.offer_campaign(&mut campaigns, snapshot, month, &mut rng);
            campaigns.rows.sort_by_key(|row| (row.campaign, row.client));
        }
        self.campaigns = Some(campaigns);
    }

    fn current_clients(&self, day: i32) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| {
                let c = &self.clients[i];
                c.since <= day && c.closed_on.is_none_or(|d| d > day)
            })
            .collect()
    }

    fn retention_campaign(&mut self, campaigns: &mut Campaigns, snapshot: Date, rng: &mut Rng) {
        let day = snapshot.0;
        let id = CampaignId {
            kind: CampaignKind::Retention,
            snapshot,
        };
        campaigns.listed_until.resize(self.clients.len(), i32::MIN);
        let mut risk: Vec<(f64, usize)> = self
            .current_clients(day)
            .into_iter()
            .filter(|&i| campaigns.listed_until[i] < day && self.clients[i].closed_on.is_none())
            .map(|i| (self.visible_risk(i, day), i))
            .collect();
        let listed = ((risk.len() as f64) * RETENTION_LIST_SHARE).round() as usize;
        risk.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        risk.truncate(listed);
        campaigns.protected.resize(self.clients.len(), None);
        let mut truth = CampaignTruth {
            campaign: id,
            challenger: campaigns.challenger,
            arms: BTreeMap::new(),
        };
        let index = campaigns.truth.len();
        let mut list = RetentionList {
            campaign: index,
            snapshot: day,
            members: Vec::with_capacity(risk.len()),
        };
        for (_, i) in risk {
            campaigns.listed_until[i] = day + HORIZON_DAYS;
            let client = self.clients[i].id;
            let arm = SHARES.arm_of(id, client);
            let reason = reason_of(self.spec.seed, client) as usize;
            list.members.push(Member {
                client: i,
                reason,
                saved: None,
            });
            let entry = truth.arms.entry(arm).or_default();
            entry.clients += 1;
            let contacted_on = (arm != Arm::Control).then(|| day + 1 + rng.below(7) as i32);
            if let Some(on) = contacted_on {
                entry.contacted += 1;
                if rng.bernoulli(save_probability(reason, arm, campaigns.challenger)) {
                    campaigns.protected[i] = Some(Protection {
                        from: on,
                        until: day + HORIZON_DAYS,
                        campaign: index,
                        arm,
                        member: list.members.len() - 1,
                        counted: false,
                    });
                }
            }
            campaigns.rows.push(ContactRow {
                campaign: id,
                client,
                arm,
                contacted_on,
                offer: None,
                clicked: None,
            });
        }
        campaigns.truth.push(truth);
        campaigns.retention_lists.push(list);
    }

    /// What a churn model could see of a client's risk at `day` (the simulation's own churn
    /// logit without its hidden terms): the retention list's order.
    fn visible_risk(&self, i: usize, day: i32) -> f64 {
        let c = &self.clients[i];
        let complaints: u32 = (0..ACTIVITY_MONTHS)
            .filter_map(|m| self.activity[i * ACTIVITY_MONTHS + m])
            .map(|a| a[2] as u32)
            .sum();
        let tenure = (day - c.since) as f64 / DAYS_PER_YEAR;
        -1.1 * c.engagement + 0.9 * complaints.min(3) as f64 - 0.35 * (c.held.count_ones() as f64).min(6.0)
            + if tenure < 2.0 { 0.9 } else { 0.0 }
            + if self.age_years(c, day) < 28.0 { 0.5 } else { 0.0 }
    }

    fn offer_campaign(&mut self, campaigns: &mut Campaigns, snapshot: Date, month: usize, rng: &mut Rng) {
        let day = snapshot.0;
        let id = CampaignId {
            kind: CampaignKind::Offer,
            snapshot,
        };
        let mut truth = CampaignTruth {
            campaign: id,
            challenger: campaigns.challenger,
            arms: BTreeMap::new(),
        };
        // Over every listed client: each treated arm's click probability and effect.
        let mut click_sum: BTreeMap<Arm, f64> = BTreeMap::new();
        let mut effect_sum: BTreeMap<Arm, f64> = BTreeMap::new();
        let mut listed = 0usize;
        for i in self.current_clients(day) {
            let client = self.clients[i].id;
            if self.clients[i].closed_on.is_some()
                || hashed_unit(self.spec.seed, client as u64, 0x0FFE_0000 ^ month as u64) >= OFFER_LIST_SHARE
            {
                continue;
            }
            let weights = self.product_weights(i, day, month as i32);
            let total: f64 = weights.iter().sum();
            if total <= 0.0 {
                continue;
            }
            let best_fit = argmax(&weights);
            let popular = argmax(
                &PRODUCTS
                    .iter()
                    .zip(&weights)
                    .map(|(p, w)| if *w > 0.0 { p.base } else { 0.0 })
                    .collect::<Vec<_>>(),
            );
            let arm = SHARES.arm_of(id, client);
            let challenger = campaigns.challenger;
            let chances = |arm: Arm| {
                let offer = if arm == Arm::Baseline { popular } else { best_fit };
                let fit = weights[offer] / total;
                let margin = if arm == Arm::Challenger {
                    challenger.click_margin()
                } else {
                    0.0
                };
                let click = (0.04 + 0.5 * fit + margin).min(0.95);
                (offer, click, 0.2 + 0.5 * fit)
            };
            listed += 1;
            for treated in [Arm::Champion, Arm::Challenger, Arm::Baseline] {
                let (_, click, open) = chances(treated);
                *click_sum.entry(treated).or_default() += click;
                *effect_sum.entry(treated).or_default() += click * open;
            }
            let (offer, p_click, p_open) = chances(if arm == Arm::Control { Arm::Champion } else { arm });
            let entry = truth.arms.entry(arm).or_default();
            entry.clients += 1;
            let mut row = ContactRow {
                campaign: id,
                client,
                arm,
                contacted_on: None,
                offer: Some(offer),
                clicked: None,
            };
            if arm != Arm::Control {
                let on = day + 1 + rng.below(7) as i32;
                entry.contacted += 1;
                let clicked = rng.bernoulli(p_click);
                if clicked && rng.bernoulli(p_open) {
                    let opened_on = on + rng.below(15) as i32;
                    self.open(rng, i, offer, opened_on);
                    entry.caused += 1;
                }
                row.contacted_on = Some(on);
                row.clicked = Some(clicked);
            }
            campaigns.rows.push(row);
        }
        for (arm, sum) in click_sum {
            if let Some(entry) = truth.arms.get_mut(&arm) {
                entry.expected_click_through = Some(sum / listed.max(1) as f64);
                entry.expected_effect = effect_sum.get(&arm).copied().unwrap_or(0.0) / listed.max(1) as f64;
            }
        }
        campaigns.truth.push(truth);
    }

    /// Whether a retention call saves client `i`, who decided on `day` to leave. The first
    /// save is counted in the truth when, uncalled, the client would have been gone within
    /// the horizon: every product closes 5–80 days after the decision, drawn here as the
    /// simulation would have drawn it.
    pub(super) fn saved_by_a_call(&mut self, i: usize, day: i32, rng: &mut Rng) -> bool {
        let products = self.clients[i].held.count_ones();
        let Some(campaigns) = self.campaigns.as_mut() else {
            return false;
        };
        let Some(Some(protection)) = campaigns.protected.get_mut(i) else {
            return false;
        };
        if day < protection.from || day > protection.until {
            return false;
        }
        if !protection.counted {
            protection.counted = true;
            let gone_by = (0..products)
                .map(|_| day + rng.range(5, 80) as i32)
                .max()
                .unwrap_or(day);
            let would_have_left = gone_by <= protection.until;
            let (campaign, arm, member) = (protection.campaign, protection.arm, protection.member);
            if would_have_left && let Some(entry) = campaigns.truth[campaign].arms.get_mut(&arm) {
                entry.caused += 1;
            }
            if let Some(list) = campaigns.retention_lists.iter_mut().find(|l| l.campaign == campaign)
                && let Some(m) = list.members.get_mut(member)
            {
                m.saved = Some(would_have_left);
            }
        }
        true
    }

    /// This month's contacts table, or `None` when no campaign ran.
    pub(super) fn contacts_frame(&self) -> Option<DataFrame> {
        let rows = &self.campaigns.as_ref()?.rows;
        if rows.is_empty() {
            return None;
        }
        DataFrame::new_infer_height(vec![
            Column::new(
                "campaign".into(),
                rows.iter().map(|r| r.campaign.to_string()).collect::<Vec<_>>(),
            ),
            Column::new("cli".into(), rows.iter().map(|r| r.client).collect::<Vec<_>>()),
            Column::new("arm".into(), rows.iter().map(|r| r.arm.as_str()).collect::<Vec<_>>()),
            date_column("contacted_on", rows.iter().map(|r| r.contacted_on)),
            Column::new(
                "offer".into(),
                rows.iter().map(|r| r.offer.map(|p| PRODUCTS[p].id)).collect::<Vec<_>>(),
            ),
            Column::new(
                "clicked".into(),
                rows.iter().map(|r| r.clicked.map(i64::from)).collect::<Vec<_>>(),
            ),
        ])
        .ok()
    }
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |best, (i, v)| if *v > best.1 { (i, *v) } else { best },
        )
        .0
}

impl Simulation {
    /// The truth with the retention lists' expected effects filled in: whether each listed
    /// client would have left within the horizon uncalled is known by now — what happened,
    /// or for the saved, the closing the call prevented.
    pub(super) fn retention_truth(&self) -> Option<Vec<CampaignTruth>> {
        let campaigns = self.campaigns.as_ref()?;
        let mut truth = campaigns.truth.clone();
        for list in &campaigns.retention_lists {
            let left = |m: &Member| {
                m.saved.unwrap_or_else(|| {
                    self.clients[m.client]
                        .closed_on
                        .is_some_and(|d| d > list.snapshot && d <= list.snapshot + HORIZON_DAYS)
                })
            };
            let n = list.members.len().max(1) as f64;
            for (arm, entry) in truth[list.campaign].arms.iter_mut() {
                let saved: f64 = list
                    .members
                    .iter()
                    .filter(|m| left(m))
                    .map(|m| save_probability(m.reason, *arm, campaigns.challenger))
                    .sum();
                entry.expected_effect = saved / n;
            }
        }
        Some(truth)
    }
}
