//! A seeded simulation of a retail bank, month by month, written as the bank's monthly exports.
//!
//! The planted signal (documented in `data/README.md`):
//! - **churn**: each month a client decides to leave with a probability that rises with low
//!   engagement, recent complaints, few products, short tenure and youth, and falls with a
//!   skilled manager. A leaver's engagement drops at once and every product closes within
//!   5–80 days, so "closes every product within 90 days" is learnable from activity, product
//!   mix, tenure and complaints.
//! - **adoption**: new products are drawn with weights from popularity × age fit × segment fit ×
//!   co-holding affinity (see `catalog::BUNDLES`), so held products predict the next one.
//! - **performance**: a manager's monthly score follows sales against objective, products per
//!   client, the portfolio's churn and the manager's skill; an agency's follows its managers,
//!   its churn and its own quality.
//! - **drift**: new clients get younger month by month; a digital wallet (month 2) and a green
//!   mortgage (month 6) launch and spread. With `sharp_drift`, the last month adds an app outage
//!   (logins −45 %), a transaction surge (+35 %), doubled complaints and a wave of young clients.

pub mod campaigns;
pub mod catalog;
pub mod rng;
pub mod scenario;

use crate::data::date::{Date, date_column};
use crate::data::format::{FileFormat, WriteError, write_frame};
use crate::data::schema::Table;
use crate::fsutil::{self, FsError};
use catalog::{Balance, CATEGORIES, INCOME_BANDS, PRODUCTS, REGIONS, SEGMENTS};
use polars::prelude::*;
use rng::{Rng, sigmoid};
use scenario::{EventKind, GroundTruth, Scenario};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct BankSpec {
    pub clients: usize,
    pub months: usize,
    pub managers: usize,
    pub agencies: usize,
    pub seed: u64,
    /// The date of the last snapshot (a month end).
    pub last_snapshot: Date,
    pub sharp_drift: bool,
    /// Events planted on top (`generate --scenario`), and whether the gradual drift runs.
    pub scenario: Scenario,
    /// Run retention and offer campaigns each month, with this challenger (`generate
    /// --campaigns`); none by default.
    pub campaigns: Option<campaigns::Challenger>,
}

impl Default for BankSpec {
    fn default() -> Self {
        BankSpec {
            clients: 20_000,
            months: 12,
            managers: 100,
            agencies: 20,
            seed: 42,
            last_snapshot: Date::from_ymd(2025, 12, 31).unwrap_or(Date(20_453)),
            sharp_drift: false,
            scenario: Scenario::default(),
            campaigns: None,
        }
    }
}

/// One month's export: the six tables as of `date`.
pub struct Snapshot {
    pub date: Date,
    pub tables: Vec<(Table, DataFrame)>,
}

/// The planted concept drifts of a month: how strongly who leaves follows the hidden trait,
/// and the clients each is limited to (one region or one segment), if any.
#[derive(Debug, Clone, Default)]
struct ConceptDrift {
    events: Vec<(f64, Option<ConceptScope>)>,
}

#[derive(Debug, Clone, Copy)]
enum ConceptScope {
    /// An index into [`catalog::REGIONS`].
    Region(usize),
    /// An index into [`catalog::SEGMENTS`].
    Segment(u8),
}

impl ConceptDrift {
    fn add(&mut self, event: &scenario::Event) {
        let value = event.value.as_deref();
        let position = |values: &[&str]| values.iter().position(|v| Some(*v) == value);
        let only = match event.column.as_deref() {
            Some("clients.region") => position(&catalog::REGIONS).map(ConceptScope::Region),
            Some("clients.segment") => position(&catalog::SEGMENTS).map(|i| ConceptScope::Segment(i as u8)),
            _ => None,
        };
        self.events.push((event.by, only));
    }

    /// The strength for a client of `region` (its agency's) and `segment` (indexes into the
    /// catalog's lists): the strongest event that reaches them.
    fn strength_for(&self, region: usize, segment: u8) -> f64 {
        self.events
            .iter()
            .filter(|(_, only)| match only {
                None => true,
                Some(ConceptScope::Region(r)) => *r == region,
                Some(ConceptScope::Segment(s)) => *s == segment,
            })
            .map(|(strength, _)| *strength)
            .fold(0.0, f64::max)
    }
}

struct Agency {
    code: String,
    region: usize,
    quality: f64,
    weight: f64,
}

struct Manager {
    code: String,
    agency: usize,
    hired_on: i32,
    skill: f64,
    objective: i64,
}

struct Client {
    id: i64,
    sex: u8,
    birth: i32,
    segment: u8,
    income: u8,
    agency: u16,
    manager: u16,
    since: i32,
    /// Date the client left (last product closed); may lie after the current snapshot.
    closed_on: Option<i32>,
    base_engagement: f64,
    engagement: f64,
    held: u64,
    missing_sex: bool,
    missing_birth: bool,
    missing_income: bool,
}

struct Holding {
    client: u32,
    product: u8,
    opened: i32,
    closed: Option<i32>,
    balance: f64,
}

/// Activity per client and month: logins, transactions, complaints.
type Activity = [u16; 3];

pub struct Simulation {
    spec: BankSpec,
    rng: Rng,
    affinity: Vec<[f64; PRODUCTS.len()]>,
    agencies: Vec<Agency>,
    managers: Vec<Manager>,
    clients: Vec<Client>,
    holdings: Vec<Holding>,
    /// The last [`ACTIVITY_MONTHS`] months of activity, `activity[client * ACTIVITY_MONTHS +
    /// month % ACTIVITY_MONTHS]`; `None` before arrival or after leaving. Nothing reads older
    /// months (the export and the complaints of the churn draw look back three), so memory
    /// does not grow with the months simulated.
    activity: Vec<Option<Activity>>,
    /// The next month to simulate, counting the burn-in.
    month: usize,
    /// The end of the first simulated month (of the burn-in, when there is one).
    first_month_end: Date,
    /// Clients still to arrive in each month (a bank with the gradual drift).
    arrivals: Vec<usize>,
    /// Months simulated before the first export (a steady bank; 0 otherwise).
    burn_in: usize,
    /// Clients arriving next month in a steady bank: as many as decided to leave this month.
    replacements: usize,
    /// The campaigns the bank runs, when it runs any.
    campaigns: Option<campaigns::Campaigns>,
}

/// Months of activity kept per client: the export's three-month activity table and the churn
/// draw's recent complaints.
const ACTIVITY_MONTHS: usize = 3;

/// Months a steady bank runs before its first export. The bank starts from drawn clients, not
/// from the mix its own dynamics settle on (products per client, tenure, who is left after the
/// churn selects the loyal); that mix settles over a loyal client's lifetime, so the bank runs
/// sixty years of replaced leavers first. Measured at 20,000 clients over 14 exports: five
/// years left products per client rising by 11 % and mean tenure by nine months over two
/// years; thirty years still left tenure (+1.1 %) and products ever held (+1.6 %) rising;
/// sixty years hold both within 0.4 %. A monitor alarming on the rises was right.
const STEADY_BURN_IN_MONTHS: usize = 720;

/// Days of departures a steady bank's exports keep before its first export: a year, more than
/// any feature's window, so the features see the history a real export would show, without the
/// clients the burn-in lost decades ago (and their products). Clients still with the bank keep
/// every product they ever held.
const STEADY_HISTORY_DAYS: i32 = 365;

/// A steady bank's managers stay ten years on average (each month one in 120 leaves and a new
/// hire takes the portfolio), so their tenures keep one distribution instead of all ageing.
const MANAGER_MEAN_TENURE_MONTHS: f64 = 120.0;

/// A steady bank's clients leave ever more often past seventy (the logit rises by this much per
/// year): without an end to a loyal client's life its tenure and age would grow for centuries,
/// and no burn-in would make the exports stationary.
const STEADY_OLD_AGE_EXIT: f64 = 0.2;
const STEADY_OLD_AGE: f64 = 70.0;

const DAYS_PER_YEAR: f64 = 365.25;

/// The ground truth written beside the snapshots.
pub const SCENARIO_FILE: &str = "scenario.json";

impl Simulation {
    pub fn new(spec: BankSpec) -> Simulation {
        let months = spec.months.max(1);
        let steady = !spec.scenario.gradual_drift;
        let burn_in = if steady { STEADY_BURN_IN_MONTHS } else { 0 };
        let first_month_end = spec.last_snapshot.month_end_after(-((burn_in + months) as i32 - 1));
        let mut rng = Rng::new(spec.seed);
        let mut setup = rng.fork(0);
        let agencies: Vec<Agency> = (0..spec.agencies.max(1))
            .map(|i| Agency {
                code: format!("AG{:02}", i + 1),
                region: if i == 0 {
                    0
                } else {
                    setup.below(REGIONS.len() as u64) as usize
                },
                quality: setup.normal(),
                weight: setup.log_normal(0.0, 0.45),
            })
            .collect();
        let start = first_month_end.month_start().0;
        let managers: Vec<Manager> = (0..spec.managers.max(1))
            .map(|i| Manager {
                code: format!("G{:03}", i + 1),
                agency: i % agencies.len(),
                hired_on: start
                    - if steady {
                        // Exponential, as the monthly turnover keeps it.
                        (-(1.0 - setup.uniform()).ln() * MANAGER_MEAN_TENURE_MONTHS * DAYS_PER_YEAR / 12.0) as i32
                    } else {
                        setup.range(200, 9000) as i32
                    },
                skill: setup.normal(),
                objective: 1,
            })
            .collect();
        // Arrivals: 85 % of the clients are there at the start; the rest come month by month
        // (three times as many in a sharply drifted last month). A steady bank starts with all
        // of them and replaces each month's leavers instead.
        let initial = if steady {
            spec.clients
        } else {
            (spec.clients as f64 * 0.85).round() as usize
        };
        let later = spec.clients - initial.min(spec.clients);
        let mut weights: Vec<f64> = vec![1.0; months];
        if spec.sharp_drift {
            weights[months - 1] = 3.0;
        }
        let total: f64 = weights.iter().sum();
        let mut arrivals: Vec<usize> = weights.iter().map(|w| (later as f64 * w / total) as usize).collect();
        let assigned: usize = arrivals.iter().sum();
        arrivals[0] += later - assigned;
        let mut sim = Simulation {
            affinity: catalog::affinity_matrix(),
            agencies,
            managers,
            clients: Vec::with_capacity(spec.clients),
            holdings: Vec::with_capacity(spec.clients * 4),
            activity: Vec::with_capacity(spec.clients * ACTIVITY_MONTHS),
            month: 0,
            first_month_end,
            arrivals,
            burn_in,
            replacements: 0,
            campaigns: spec.campaigns.map(campaigns::Campaigns::new),
            rng,
            spec: BankSpec { months, ..spec },
        };
        let mut open_rng = sim.rng.fork(1);
        for _ in 0..initial.min(sim.spec.clients) {
            sim.add_client(&mut setup, &mut open_rng, -1);
        }
        for m in 0..sim.managers.len() {
            let clients = sim.clients.iter().filter(|c| c.manager as usize == m).count();
            sim.managers[m].objective = ((clients as f64 * 0.035).round() as i64).max(1);
        }
        sim
    }

    /// Snapshots the simulation exports ([`step`](Self::step) calls).
    pub fn months(&self) -> usize {
        self.spec.months
    }

    /// A steady bank (no gradual drift): stationary by construction — burn-in, replaced
    /// leavers, old-age exits. Everything steady-only is gated on this one question.
    fn steady(&self) -> bool {
        !self.spec.scenario.gradual_drift
    }

    /// Months simulated in all, the burn-in included.
    fn simulated_months(&self) -> usize {
        self.burn_in + self.spec.months
    }

    /// The scenario's month index (0: the first export) of simulated `month`; `None` in the
    /// burn-in, where nothing is planted.
    fn scenario_month(&self, month: usize) -> Option<usize> {
        month.checked_sub(self.burn_in)
    }

    fn month_end(&self, month: usize) -> Date {
        self.first_month_end.month_end_after(month as i32)
    }

    fn age_years(&self, client: &Client, day: i32) -> f64 {
        (day - client.birth) as f64 / DAYS_PER_YEAR
    }

    /// A new client arriving in `month` (−1: before the first month), with first products.
    fn add_client(&mut self, rng: &mut Rng, open_rng: &mut Rng, month: i32) {
        let month_start = self.month_end(month.max(0) as usize).month_start().0;
        let since = if month < 0 {
            month_start - 1 - (rng.uniform().powf(1.6) * 25.0 * DAYS_PER_YEAR) as i32
        } else {
            month_start + rng.below(28) as i32
        };
        // Arrivals get younger over the months (gradual drift), and much younger in a
        // sharply drifted last month.
        let progress = if self.steady() {
            0.0
        } else {
            (month.max(0) as f64) / self.spec.months as f64
        };
        let sharp = self.spec.sharp_drift && month == self.simulated_months() as i32 - 1;
        let segment = if sharp && rng.bernoulli(0.6) {
            0
        } else {
            rng.weighted(&[0.10 + 0.08 * progress, 0.55, 0.20, 0.03, 0.10])
        };
        let age_at_join = if segment == 0 {
            18.0 + rng.uniform() * 8.0
        } else if month < 0 || self.steady() {
            // A steady bank's arrivals join at the ages its first clients joined at.
            (24.0 + (rng.normal() * 13.0 + 18.0).abs()).min(85.0)
        } else {
            (21.0 + (rng.normal() * 11.0 + 15.0 - 6.0 * progress).abs()).min(80.0)
        };
        let birth = since - (age_at_join * DAYS_PER_YEAR) as i32;
        let weights: Vec<f64> = self.agencies.iter().map(|a| a.weight).collect();
        let agency = rng.weighted(&weights);
        let staff: Vec<usize> = (0..self.managers.len())
            .filter(|&m| self.managers[m].agency == agency)
            .collect();
        let manager = if staff.is_empty() {
            0
        } else {
            staff[rng.below(staff.len() as u64) as usize]
        };
        let income_shift = match segment {
            0 => -1.2,
            2 => 1.2,
            3 => 2.3,
            4 => 0.8,
            _ => 0.0,
        };
        let income = ((1.6 + income_shift + 0.9 * rng.normal()).round().clamp(0.0, 4.0)) as u8;
        let base_engagement = 0.6 * rng.normal() + if segment == 2 || segment == 3 { 0.2 } else { 0.0 };
        let id = 100_001 + self.clients.len() as i64;
        self.activity.extend([None; ACTIVITY_MONTHS]);
        self.clients.push(Client {
            id,
            sex: rng.below(2) as u8,
            birth,
            segment: segment as u8,
            income,
            agency: agency as u16,
            manager: manager as u16,
            since,
            closed_on: None,
            base_engagement,
            engagement: base_engagement + 0.5 * rng.normal(),
            held: 0,
            missing_sex: rng.bernoulli(0.003),
            missing_birth: rng.bernoulli(0.002),
            missing_income: rng.bernoulli(0.004),
        });
        let index = self.clients.len() - 1;
        let first_products = if month < 0 {
            1 + open_rng.poisson(1.7 + 0.4 * income_shift.max(0.0))
        } else {
            1 + open_rng.poisson(0.6)
        };
        let window_end = if month < 0 {
            month_start - 1
        } else {
            self.month_end(month as usize).0
        };
        for _ in 0..first_products.min(8) {
            let opened = since + open_rng.below((window_end - since).max(1) as u64) as i32;
            self.open_product(open_rng, index, opened, month.max(0));
        }
    }

    /// How likely `client` is to take each product it does not hold on `day` (0 for held and
    /// unlaunched ones): popularity × segment fit × age fit × co-holding affinity.
    fn product_weights(&self, client: usize, day: i32, month: i32) -> [f64; PRODUCTS.len()] {
        let c = &self.clients[client];
        let age = self.age_years(c, day);
        let mut weights = [0.0f64; PRODUCTS.len()];
        for (j, p) in PRODUCTS.iter().enumerate() {
            if c.held & (1 << j) != 0 {
                continue;
            }
            let mut w = p.base * p.segment_fit[c.segment as usize];
            if let Some(launch) = p.launch_month {
                if self.steady() {
                    // A steady bank: every product long launched and fully spread.
                    w *= 3.0;
                } else if month < launch {
                    continue;
                } else {
                    w *= (1.0 + 0.25 * (month - launch) as f64).min(3.0);
                }
            }
            let z = (age - p.age_peak) / p.age_width;
            w *= (-0.5 * z * z).exp() + 0.08;
            let mut held = c.held;
            while held != 0 {
                let i = held.trailing_zeros() as usize;
                w *= self.affinity[i][j];
                held &= held - 1;
            }
            weights[j] = w;
        }
        weights
    }

    /// Opens a product drawn from the adoption weights; returns false when nothing fits.
    fn open_product(&mut self, rng: &mut Rng, client: usize, day: i32, month: i32) -> bool {
        let weights = self.product_weights(client, day, month);
        if weights.iter().all(|w| *w <= 0.0) {
            return false;
        }
        let product = rng.weighted(&weights);
        self.open(rng, client, product, day);
        true
    }

    /// Opens `product` for `client` on `day`, with a balance drawn as its kind's.
    fn open(&mut self, rng: &mut Rng, client: usize, product: usize, day: i32) {
        let c = &self.clients[client];
        let balance = match PRODUCTS[product].balance {
            Balance::None => 0.0,
            Balance::Deposit { mu, sigma } | Balance::Credit { mu, sigma } => {
                let wealth = 0.25 * (c.income as f64 - 2.0);
                let outlier = if rng.bernoulli(0.0004) { 40.0 } else { 1.0 };
                rng.log_normal(mu + wealth, sigma) * outlier
            }
        };
        self.clients[client].held |= 1 << product;
        self.holdings.push(Holding {
            client: client as u32,
            product: product as u8,
            opened: day,
            closed: None,
            balance,
        });
    }

    /// Runs one month (after the burn-in, the first time) and returns its export. Call
    /// `months()` times.
    pub fn step(&mut self) -> Snapshot {
        while self.month < self.burn_in {
            self.advance();
            if self.month.is_multiple_of(12) {
                self.forget_departed();
            }
        }
        let (month, sales, mut rng) = self.advance();
        let mut snapshot = self.export(month, &sales, &mut rng);
        if let Some(contacts) = self.contacts_frame() {
            snapshot.tables.push((Table::Contacts, contacts));
        }
        snapshot
    }

    /// What the campaigns planted so far (empty without campaigns).
    pub fn campaign_truth(&self) -> Vec<campaigns::CampaignTruth> {
        self.retention_truth().unwrap_or_default()
    }

    /// Drops the products of clients who left before the exports' history starts: no export
    /// shows them, and a steady bank's burn-in would otherwise carry decades of them through
    /// every month (closed products draw nothing from the generator, so the bank is the same).
    fn forget_departed(&mut self) {
        // Before the next month starts, too: a leaver's products still closing draw balances.
        let forgotten_before = self.history_from().min(self.month_end(self.month).month_start().0);
        let clients = &self.clients;
        self.holdings.retain(|h| {
            clients[h.client as usize]
                .closed_on
                .is_none_or(|d| d >= forgotten_before)
        });
    }

    /// The first day of departures the exports show: a year before a steady bank's first
    /// export (see [`STEADY_HISTORY_DAYS`]), all of them otherwise.
    fn history_from(&self) -> i32 {
        if self.steady() {
            self.month_end(self.burn_in).month_start().0 - STEADY_HISTORY_DAYS
        } else {
            i32::MIN
        }
    }

    /// Simulates the next month; returns it, the month's sales per manager and the month's
    /// generator, which the export goes on drawing from.
    fn advance(&mut self) -> (usize, Vec<i64>, Rng) {
        let month = self.month;
        let steady = self.steady();
        let end = self.month_end(month).0;
        let start = self.month_end(month).month_start().0;
        let sharp = self.spec.sharp_drift && month == self.simulated_months() - 1;
        let planted_month = self.scenario_month(month);
        // Campaigns run on the previous snapshot's state, before this month overwrites its
        // oldest month of activity; their draws come from streams of their own.
        self.run_campaigns(month);
        let mut campaign_rng = Rng::new(self.spec.seed ^ 0x5A7E_D000 ^ month as u64);
        let mut rng = self.rng.fork(100 + month as u64);
        let mut open_rng = rng.fork(7);
        let slot = month % ACTIVITY_MONTHS;
        for index in 0..self.clients.len() {
            self.activity[index * ACTIVITY_MONTHS + slot] = None;
        }
        let arriving = if steady {
            std::mem::take(&mut self.replacements)
        } else {
            self.arrivals[month]
        };
        for _ in 0..arriving {
            self.add_client(&mut rng.fork(11), &mut open_rng, month as i32);
        }
        if steady {
            let mut staff_rng = rng.fork(13);
            for manager in self.managers.iter_mut() {
                if staff_rng.bernoulli(1.0 / MANAGER_MEAN_TENURE_MONTHS) {
                    manager.hired_on = start + staff_rng.below(28) as i32;
                    manager.skill = staff_rng.normal();
                }
            }
        }
        if let Some(planted) = planted_month {
            self.reshuffle(planted);
        }
        let (rate, concept) = self.planted_rates(planted_month);

        // Holdings: balances move, some products close without the client leaving.
        let mut client_products: Vec<u8> = vec![0; self.clients.len()];
        for h in self.holdings.iter_mut() {
            if h.closed.is_some_and(|d| d <= end) || h.opened > end {
                continue;
            }
            let p = &PRODUCTS[h.product as usize];
            h.balance *= match p.balance {
                Balance::None => 1.0,
                Balance::Deposit { .. } => (0.004 + 0.03 * rng.normal()).exp(),
                Balance::Credit { .. } => (-0.012 + 0.01 * rng.normal()).exp(),
            };
            let leaving = self.clients[h.client as usize].closed_on.is_some();
            // A product opened this month stays open through it: closed and opened again the
            // same month, it could come back on the day it first opened — the same holding
            // twice, which ingestion rightly refuses (seen at 100,000 clients). The draw is
            // made all the same, so every other holding's fate is unchanged.
            if h.closed.is_none() && !leaving && rng.bernoulli(p.attrition) && h.opened < start {
                h.closed = Some((start + rng.below((end - start + 1) as u64) as i32).max(h.opened + 1));
                self.clients[h.client as usize].held &= !(1 << h.product);
            } else if h.closed.is_none() {
                client_products[h.client as usize] += 1;
            }
        }

        let mut sales = vec![0i64; self.managers.len()];
        // Day on which a client decided to leave this month; their products close in one pass
        // over the holdings below (a pass per leaver would be quadratic in a large bank).
        let mut decided: Vec<Option<i32>> = vec![None; self.clients.len()];
        for index in 0..self.clients.len() {
            let (manager, agency) = (
                self.clients[index].manager as usize,
                self.clients[index].agency as usize,
            );
            let c = &self.clients[index];
            if c.since > end || c.closed_on.is_some_and(|d| d < start) {
                continue;
            }
            let concept_here = concept.strength_for(self.agencies[agency].region, c.segment);
            let leaving = c.closed_on.is_some();
            let skill = self.managers[manager].skill;
            let quality = self.agencies[agency].quality;
            let age = self.age_years(c, end);
            let n_products = client_products[index] as f64;
            let mut engagement =
                0.75 * c.engagement + 0.25 * (c.base_engagement + 0.25 * skill + 0.15 * quality) + 0.35 * rng.normal();
            if leaving {
                engagement -= 1.2;
            }
            let digital = (0.9 - 0.025 * (age - 18.0)).max(-0.6);
            let mut logins = (1.8 + 0.7 * engagement + digital).exp();
            let mut transactions = (2.6 + 0.35 * engagement + 0.12 * n_products.min(6.0)).exp();
            let mut complaints = 0.03 + 0.10 * (-engagement).max(0.0) + if leaving { 0.45 } else { 0.0 };
            if sharp {
                logins *= 0.55;
                transactions *= 1.35;
                complaints *= 2.0;
            }
            logins *= rate[0];
            transactions *= rate[1];
            complaints *= rate[2];
            let activity = [
                rng.poisson(logins).min(u16::MAX as i64) as u16,
                rng.poisson(transactions).min(u16::MAX as i64) as u16,
                rng.poisson(complaints).min(u16::MAX as i64) as u16,
            ];
            self.activity[index * ACTIVITY_MONTHS + slot] = Some(activity);
            self.clients[index].engagement = engagement;
            if leaving {
                continue;
            }

            let recent_complaints: u32 = (month.saturating_sub(ACTIVITY_MONTHS - 1)..=month)
                .filter_map(|m| self.activity[index * ACTIVITY_MONTHS + m % ACTIVITY_MONTHS])
                .map(|a| a[2] as u32)
                .sum();
            let tenure = (end - self.clients[index].since) as f64 / DAYS_PER_YEAR;
            let logit = -4.4 - 1.1 * engagement + 0.9 * (recent_complaints.min(3) as f64) - 0.35 * n_products.min(6.0)
                + if tenure < 2.0 { 0.9 } else { 0.0 }
                + if age < 28.0 { 0.5 } else { 0.0 }
                - 0.25 * skill
                + if steady {
                    STEADY_OLD_AGE_EXIT * (age - STEADY_OLD_AGE).max(0.0)
                } else {
                    0.0
                };
            // Planted concept drift: who leaves follows a trait the data do not show, so the
            // old relationship (engagement, complaints, products) loses its hold.
            let logit = if concept_here > 0.0 {
                let hidden = rng::hashed_normal(self.spec.seed, self.clients[index].id as u64, 0xC0C0);
                (1.0 - concept_here) * logit + concept_here * (-5.0 + 1.6 * hidden)
            } else {
                logit
            };
            if rng.bernoulli(sigmoid(logit)) {
                let day = start + rng.below((end - start + 1) as u64) as i32;
                if self.saved_by_a_call(index, day, &mut campaign_rng) {
                    continue;
                }
                decided[index] = Some(day.max(self.clients[index].since));
                continue;
            }
            let open_p = sigmoid(
                -3.4 + 0.45 * engagement + 0.2 * skill + if self.clients[index].segment >= 2 { 0.35 } else { 0.0 },
            );
            if rng.bernoulli(open_p) {
                let day = start + rng.below((end - start + 1) as u64) as i32;
                if self.open_product(&mut open_rng, index, day, month as i32) {
                    sales[manager] += 1;
                }
            }
        }
        for h in self.holdings.iter_mut().filter(|h| h.closed.is_none()) {
            if let Some(day) = decided[h.client as usize] {
                let closed = (day + rng.range(5, 80) as i32).max(h.opened + 1);
                h.closed = Some(closed);
                let client = &mut self.clients[h.client as usize];
                client.closed_on = Some(client.closed_on.map_or(closed, |d| d.max(closed)));
            }
        }
        for (index, day) in decided.iter().enumerate() {
            if let (Some(day), client) = (day, &mut self.clients[index]) {
                client.closed_on.get_or_insert(*day);
            }
        }
        if steady {
            self.replacements = decided.iter().flatten().count();
        }
        self.month += 1;
        (month, sales, rng)
    }

    /// The planted covariate shifts of activity in a scenario month (factors on the logins',
    /// transactions' and complaints' rates) and the planted concept drift.
    fn planted_rates(&self, planted_month: Option<usize>) -> ([f64; 3], ConceptDrift) {
        let mut rate = [1.0f64; 3];
        let mut concept = ConceptDrift::default();
        let Some(month) = planted_month else {
            return (rate, concept);
        };
        for event in self.spec.scenario.active(EventKind::Shift, month) {
            for (k, column) in ["activity.logins", "activity.transactions", "activity.complaints"]
                .iter()
                .enumerate()
            {
                if event.column_is(column) {
                    rate[k] *= 1.0 + event.by;
                }
            }
        }
        for event in self.spec.scenario.active(EventKind::Concept, month) {
            concept.add(event);
        }
        (rate, concept)
    }

    /// The month's six tables, with the managers' and agencies' scores for the month.
    fn export(&self, month: usize, sales: &[i64], rng: &mut Rng) -> Snapshot {
        let date = self.month_end(month);
        let end = date.0;
        let planted_month = self.scenario_month(month);
        let visible = |d: Option<i32>| d.filter(|d| *d <= end);
        let history_from = self.history_from();
        let in_history = |closed: Option<i32>| closed.is_none_or(|d| d >= history_from);
        // A client still with the bank shows every product they ever held, however long ago it
        // closed, as a bank's full export does: cut at a fixed date, "never closed a product"
        // and "products ever held" would grow with the export's length and drift by construction.
        let is_client = |c: &Client| c.closed_on.is_none_or(|d| d > end);

        // Portfolio figures for the performance scores.
        let n_managers = self.managers.len();
        let mut active = vec![0f64; n_managers];
        let mut churned = vec![0f64; n_managers];
        for c in self.clients.iter().filter(|c| c.since <= end) {
            match c.closed_on {
                Some(d) if d <= end && d > end - 90 => churned[c.manager as usize] += 1.0,
                Some(d) if d <= end => {}
                _ => active[c.manager as usize] += 1.0,
            }
        }
        let mut products = vec![0f64; n_managers];
        for h in self
            .holdings
            .iter()
            .filter(|h| h.opened <= end && visible(h.closed).is_none())
        {
            products[self.clients[h.client as usize].manager as usize] += 1.0;
        }
        let manager_scores: Vec<f64> = (0..n_managers)
            .map(|m| {
                let attainment = sales[m] as f64 / self.managers[m].objective as f64;
                let per_client = products[m] / active[m].max(1.0);
                let churn_rate = churned[m] / (active[m] + churned[m]).max(1.0);
                let score = 30.0 + 28.0 * attainment.min(1.5) / 1.5 + 10.0 * (per_client - 2.5) - 120.0 * churn_rate
                    + 5.0 * self.managers[m].skill
                    + 3.0 * rng.normal();
                (score.clamp(0.0, 100.0) * 10.0).round() / 10.0
            })
            .collect();
        let agency_scores: Vec<f64> = (0..self.agencies.len())
            .map(|a| {
                let staff: Vec<usize> = (0..n_managers).filter(|&m| self.managers[m].agency == a).collect();
                let mean = staff.iter().map(|&m| manager_scores[m]).sum::<f64>() / staff.len().max(1) as f64;
                let (lost, kept) = staff
                    .iter()
                    .fold((0.0, 0.0), |(l, k), &m| (l + churned[m], k + active[m]));
                let score = 0.7 * mean + 15.0 + 5.0 * self.agencies[a].quality - 150.0 * lost / (lost + kept).max(1.0)
                    + 2.0 * rng.normal();
                (score.clamp(0.0, 100.0) * 10.0).round() / 10.0
            })
            .collect();

        let clients: Vec<&Client> = self
            .clients
            .iter()
            .filter(|c| c.since <= end && in_history(c.closed_on))
            .collect();
        let client_frame = df_or_empty(vec![
            Column::new("cli".into(), clients.iter().map(|c| c.id).collect::<Vec<i64>>()),
            Column::new(
                "sex".into(),
                clients
                    .iter()
                    .map(|c| (!c.missing_sex).then_some(["F", "M"][c.sex as usize]))
                    .collect::<Vec<_>>(),
            ),
            date_column(
                "birth_date",
                clients.iter().map(|c| (!c.missing_birth).then_some(c.birth)),
            ),
            Column::new(
                "segment".into(),
                clients.iter().map(|c| SEGMENTS[c.segment as usize]).collect::<Vec<_>>(),
            ),
            Column::new(
                "age".into(),
                clients
                    .iter()
                    .map(|c| self.agencies[c.agency as usize].code.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "ges".into(),
                clients
                    .iter()
                    .map(|c| self.managers[c.manager as usize].code.as_str())
                    .collect::<Vec<_>>(),
            ),
            date_column("client_since", clients.iter().map(|c| Some(c.since))),
            Column::new(
                "region".into(),
                clients
                    .iter()
                    .map(|c| REGIONS[self.agencies[c.agency as usize].region])
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "income_band".into(),
                clients
                    .iter()
                    .map(|c| (!c.missing_income).then_some(INCOME_BANDS[c.income as usize]))
                    .collect::<Vec<_>>(),
            ),
            date_column("closed_on", clients.iter().map(|c| visible(c.closed_on))),
        ]);

        let holdings: Vec<&Holding> = self
            .holdings
            .iter()
            .filter(|h| h.opened <= end && (in_history(h.closed) || is_client(&self.clients[h.client as usize])))
            .collect();
        let holding_frame = df_or_empty(vec![
            Column::new(
                "cli".into(),
                holdings
                    .iter()
                    .map(|h| self.clients[h.client as usize].id)
                    .collect::<Vec<i64>>(),
            ),
            Column::new(
                "product_id".into(),
                holdings
                    .iter()
                    .map(|h| PRODUCTS[h.product as usize].id)
                    .collect::<Vec<_>>(),
            ),
            date_column("opened_on", holdings.iter().map(|h| Some(h.opened))),
            date_column("closed_on", holdings.iter().map(|h| visible(h.closed))),
            Column::new(
                "balance".into(),
                holdings
                    .iter()
                    .map(|h| {
                        if visible(h.closed).is_some() {
                            0.0
                        } else {
                            (h.balance * 100.0).round() / 100.0
                        }
                    })
                    .collect::<Vec<f64>>(),
            ),
        ]);

        let launched: Vec<&catalog::Product> = PRODUCTS
            .iter()
            .filter(|p| self.steady() || p.launch_month.is_none_or(|m| m <= month as i32))
            .collect();
        let catalog_frame = df_or_empty(vec![
            Column::new("product_id".into(), launched.iter().map(|p| p.id).collect::<Vec<_>>()),
            Column::new(
                "product_name".into(),
                launched.iter().map(|p| p.name).collect::<Vec<_>>(),
            ),
            Column::new(
                "category".into(),
                launched.iter().map(|p| CATEGORIES[p.category]).collect::<Vec<_>>(),
            ),
        ]);

        let manager_frame = df_or_empty(vec![
            Column::new(
                "ges".into(),
                self.managers.iter().map(|m| m.code.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "age".into(),
                self.managers
                    .iter()
                    .map(|m| self.agencies[m.agency].code.as_str())
                    .collect::<Vec<_>>(),
            ),
            date_column("hired_on", self.managers.iter().map(|m| Some(m.hired_on))),
            Column::new(
                "objective".into(),
                self.managers.iter().map(|m| m.objective).collect::<Vec<i64>>(),
            ),
            Column::new("performance_score".into(), manager_scores),
        ]);
        let agency_frame = df_or_empty(vec![
            Column::new(
                "age".into(),
                self.agencies.iter().map(|a| a.code.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "region".into(),
                self.agencies.iter().map(|a| REGIONS[a.region]).collect::<Vec<_>>(),
            ),
            Column::new("performance_score".into(), agency_scores),
        ]);

        let mut ids = Vec::new();
        let mut month_days = Vec::new();
        let mut counts: [Vec<i64>; 3] = Default::default();
        for m in month.saturating_sub(ACTIVITY_MONTHS - 1)..=month {
            let first_day = self.month_end(m).month_start().0;
            for (index, c) in self.clients.iter().enumerate() {
                if let Some(a) = self.activity[index * ACTIVITY_MONTHS + m % ACTIVITY_MONTHS] {
                    ids.push(c.id);
                    month_days.push(Some(first_day));
                    for k in 0..3 {
                        counts[k].push(a[k] as i64);
                    }
                }
            }
        }
        let [logins, transactions, complaints] = counts;
        let activity_frame = df_or_empty(vec![
            Column::new("cli".into(), ids),
            date_column("month", month_days),
            Column::new("logins".into(), logins),
            Column::new("transactions".into(), transactions),
            Column::new("complaints".into(), complaints),
        ]);

        let mut tables = vec![
            (Table::Clients, client_frame),
            (Table::Holdings, holding_frame),
            (Table::Catalog, catalog_frame),
            (Table::Managers, manager_frame),
            (Table::Agencies, agency_frame),
            (Table::Activity, activity_frame),
        ];
        for (table, frame) in tables.iter_mut() {
            // Planting only rewrites columns the frame was built with: it cannot fail on them.
            if let Some(Ok(planted)) = planted_month.map(|m| self.plant_exports(m, *table, frame)) {
                *frame = planted;
            }
        }
        Snapshot { date, tables }
    }

    /// A planted reshuffle, in the month it happens: a share of the clients move to other
    /// managers (anywhere in the bank, so their agency changes too).
    fn reshuffle(&mut self, month: usize) {
        let seed = self.spec.seed;
        let moves: Vec<(usize, f64)> = self
            .spec
            .scenario
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EventKind::Reshuffle && e.month == month + 1)
            .map(|(i, e)| (i, e.by))
            .collect();
        let managers = self.managers.len() as u64;
        for (salt, share) in moves {
            for c in self.clients.iter_mut() {
                if rng::hashed_unit(seed, c.id as u64, salt as u64) < share {
                    let pick = (rng::hashed_unit(seed, c.id as u64, salt as u64 ^ 0xAB) * managers as f64) as usize;
                    let m = pick.min(self.managers.len() - 1);
                    c.manager = m as u16;
                    c.agency = self.managers[m].agency as u16;
                }
            }
        }
    }

    /// The planted changes to what is exported in `month` (data-quality breaks, category
    /// changes, balance shifts): rows are picked by a hash of the client, so the same clients
    /// are affected every month of an event.
    fn plant_exports(&self, month: usize, table: Table, frame: &DataFrame) -> PolarsResult<DataFrame> {
        let mut out = frame.clone();
        for (index, event) in self.spec.scenario.events.iter().enumerate() {
            if !event.active(month) {
                continue;
            }
            let target = event.column.as_deref().unwrap_or_default();
            let (event_table, column) = target.split_once('.').unwrap_or((target, ""));
            if event_table != table.name() || !out.get_column_names().iter().any(|c| c.as_str() == "cli") {
                continue;
            }
            let clients: Vec<i64> = out.column("cli")?.i64()?.into_no_null_iter().collect();
            let picked = |share: f64| -> Column {
                let mask: Vec<bool> = clients
                    .iter()
                    .map(|id| rng::hashed_unit(self.spec.seed, *id as u64, index as u64) < share)
                    .collect();
                Column::new("__picked".into(), mask)
            };
            let c = || col(column);
            let changed: Expr = match event.kind {
                EventKind::Rows => {
                    out = out
                        .lazy()
                        .with_column(picked(event.by).as_materialized_series().clone().lit())
                        .filter(col("__picked"))
                        .drop(by_name(["__picked"], true, false))
                        .collect()?;
                    continue;
                }
                EventKind::Missing => {
                    let dtype = out.column(column)?.dtype().clone();
                    when(col("__picked")).then(lit(NULL).cast(dtype)).otherwise(c())
                }
                EventKind::NewCategory => when(col("__picked"))
                    .then(lit(event.value.clone().unwrap_or_default()))
                    .otherwise(c()),
                EventKind::Share | EventKind::Rename => {
                    let (from, to) = (
                        event.from.clone().unwrap_or_default(),
                        event.to.clone().unwrap_or_default(),
                    );
                    let rows = c().eq(lit(from));
                    let rows = if event.kind == EventKind::Share {
                        rows.and(col("__picked"))
                    } else {
                        rows
                    };
                    when(rows).then(lit(to)).otherwise(c())
                }
                EventKind::Shift if column == "balance" => c() * lit(1.0 + event.by),
                EventKind::Unit => c() * lit(event.by),
                EventKind::Scale => {
                    let positive = c().gt(lit(0.0));
                    let median = c().filter(positive.clone()).median().over([col("product_id")])?;
                    when(positive)
                        .then(median.clone() * (c() / median).pow(lit(event.by)))
                        .otherwise(c())
                }
                _ => continue,
            };
            let share = match event.kind {
                EventKind::Missing | EventKind::NewCategory | EventKind::Share => event.by,
                _ => 0.0,
            };
            out.with_column(picked(share))?;
            out = out
                .lazy()
                .with_column(changed.alias(column))
                .drop(by_name(["__picked"], true, false))
                .collect()?;
        }
        Ok(out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// What [`write_bank`] wrote.
pub struct Written {
    pub snapshots: Vec<Date>,
    /// What was planted (`scenario.json` beside the snapshots).
    pub truth: GroundTruth,
    /// Rows per table in the last snapshot.
    pub last_counts: Vec<(Table, usize)>,
    /// Rows over every table and snapshot.
    pub total_rows: usize,
}

/// Simulates the bank and writes one folder per month under `out`. Everything is staged in
/// a hidden folder first, so a failure (e.g. an Excel sheet overflowing) leaves `out` as it was.
pub fn write_bank(
    spec: BankSpec,
    format: FileFormat,
    out: &Path,
    mut on_month: impl FnMut(Date),
) -> Result<Written, GenerateError> {
    let staging = fsutil::staging_dir(out)?;
    let (scenario, seed, clients) = (spec.scenario.clone(), spec.seed, spec.clients);
    let mut simulation = Simulation::new(spec);
    let mut written = Written {
        truth: GroundTruth::new(&scenario, seed, clients, &[]),
        snapshots: Vec::new(),
        last_counts: Vec::new(),
        total_rows: 0,
    };
    for _ in 0..simulation.months() {
        let snapshot = simulation.step();
        let dir: PathBuf = staging.path().join(snapshot.date.to_string());
        written.last_counts.clear();
        for (table, mut frame) in snapshot.tables {
            write_frame(
                &mut frame,
                &dir.join(format!("{}.{}", table.name(), format.extension())),
                format,
            )?;
            written.last_counts.push((table, frame.height()));
            written.total_rows += frame.height();
        }
        written.snapshots.push(snapshot.date);
        on_month(snapshot.date);
    }
    written.truth = GroundTruth::new(&scenario, seed, clients, &written.snapshots);
    written.truth.campaigns = simulation.campaign_truth();
    for date in &written.snapshots {
        fsutil::replace_dir(&staging.path().join(date.to_string()), &out.join(date.to_string()))?;
    }
    // The truth is written last: a reader that finds it finds the data it describes.
    let truth = serde_json::to_vec_pretty(&written.truth).unwrap_or_default();
    fsutil::write_bytes_atomic(&out.join(SCENARIO_FILE), &truth)?;
    Ok(written)
}

/// Columns built here always have equal lengths; an empty frame is the safe fallback.
fn df_or_empty(columns: Vec<Column>) -> DataFrame {
    DataFrame::new_infer_height(columns).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Active clients and products held per active client in each exported month.
    /// Per month: active clients, products they hold, products they ever held.
    fn profile(spec: BankSpec) -> Vec<(usize, f64, f64)> {
        let mut simulation = Simulation::new(spec);
        (0..simulation.months())
            .map(|_| {
                let snapshot = simulation.step();
                let table = |wanted: Table| {
                    let frame = snapshot.tables.iter().find(|(t, _)| *t == wanted).map(|(_, f)| f);
                    frame.cloned().unwrap_or_default()
                };
                let open = |frame: &DataFrame| {
                    let closed = frame.column("closed_on").unwrap().is_null();
                    frame.filter(&closed).unwrap()
                };
                let active = open(&table(Table::Clients));
                let clients: std::collections::HashSet<i64> = active
                    .column("cli")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .into_no_null_iter()
                    .collect();
                let of_active = |frame: &DataFrame| {
                    let held = frame.column("cli").unwrap().i64().unwrap().into_no_null_iter();
                    held.filter(|c| clients.contains(c)).count() as f64 / clients.len() as f64
                };
                let holdings = table(Table::Holdings);
                (clients.len(), of_active(&open(&holdings)), of_active(&holdings))
            })
            .collect()
    }

    fn spread(values: impl Iterator<Item = f64> + Clone) -> f64 {
        let max = values.clone().fold(f64::MIN, f64::max);
        let min = values.fold(f64::MAX, f64::min);
        (max - min) / min
    }

    #[test]
    fn only_a_leaver_closes_a_product_in_the_month_it_opened() {
        // Closed and reopened the same month, a product could come back on its first day: the
        // same (client, product, opened_on) twice, refused by ingestion (seen at 100k clients).
        let mut simulation = Simulation::new(BankSpec {
            clients: 3_000,
            months: 12,
            managers: 20,
            agencies: 5,
            ..BankSpec::default()
        });
        let mut last = None;
        for _ in 0..simulation.months() {
            last = Some(simulation.step());
        }
        let snapshot = last.unwrap();
        let table = |wanted: Table| {
            snapshot
                .tables
                .iter()
                .find(|(t, _)| *t == wanted)
                .map(|(_, f)| f.clone())
                .unwrap()
        };
        let days = |frame: &DataFrame, name: &str| -> Vec<Option<i32>> {
            let column = frame.column(name).unwrap().cast(&DataType::Int32).unwrap();
            column.i32().unwrap().iter().collect()
        };
        let ids = |frame: &DataFrame| -> Vec<i64> {
            frame
                .column("cli")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        let clients = table(Table::Clients);
        let leavers: std::collections::HashSet<i64> = ids(&clients)
            .into_iter()
            .zip(days(&clients, "closed_on"))
            .filter_map(|(id, closed)| closed.map(|_| id))
            .collect();
        let holdings = table(Table::Holdings);
        let month = |day: i32| Date(day).month_start().0;
        for ((id, opened), closed) in ids(&holdings)
            .into_iter()
            .zip(days(&holdings, "opened_on"))
            .zip(days(&holdings, "closed_on"))
        {
            if let (Some(opened), Some(closed)) = (opened, closed)
                && month(opened) == month(closed)
            {
                assert!(
                    leavers.contains(&id),
                    "client {id} closed a product it opened the same month"
                );
            }
        }
    }

    #[test]
    fn a_steady_bank_keeps_its_size_and_product_mix_month_after_month() {
        let steady = Scenario {
            gradual_drift: false,
            ..Scenario::default()
        };
        let spec = BankSpec {
            clients: 3_000,
            months: 12,
            managers: 20,
            agencies: 5,
            scenario: steady,
            ..BankSpec::default()
        };
        let months = profile(spec);
        let size = spread(months.iter().map(|m| m.0 as f64));
        let mix = spread(months.iter().map(|m| m.1));
        assert!(size < 0.03, "active clients moved {:.1} %: {months:?}", size * 100.0);
        assert!(mix < 0.03, "products per client moved {:.1} %: {months:?}", mix * 100.0);
        // An export cut at a fixed date shows more closed products every month (6.6 % more a
        // year): the history a client carries must not grow with the export's length.
        let ever = spread(months.iter().map(|m| m.2));
        assert!(
            ever < 0.03,
            "products ever held moved {:.1} %: {months:?}",
            ever * 100.0
        );
        // The clients asked for are the clients kept, not a fraction of them.
        assert!(months.iter().all(|m| m.0.abs_diff(3_000) < 150), "{months:?}");
    }
}
