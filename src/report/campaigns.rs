//! The business job's figures, as reports, the API and the console read them: per campaign
//! and arm, rates with intervals; comparisons of arms with corrected p-values; retention's
//! money and list figures.

use crate::data::campaign::{Arm, CampaignId, CampaignKind};
use crate::data::date::Date;
use crate::metrics::proportions::{Comparison, Count, Interval, wilson};
use serde::{Deserialize, Serialize};

/// The job's settings (`params` of `jobs/monthly-business.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// An offer converts when its product is opened within this many days of the campaign's
    /// snapshot.
    pub conversion_days: i32,
    /// A retained client has not left within this many days (`features.churn_horizon_days`).
    pub horizon_days: i32,
    /// What one contact costs, and what keeping one client who would have left is worth, in
    /// the same currency (the return on retention).
    pub contact_cost: f64,
    pub client_value: f64,
    /// Level of the intervals (1 - alpha) and of the corrected tests.
    pub alpha: f64,
    /// Arms with fewer clients get their counts and rates, no comparison and no alert.
    pub min_clients: usize,
}

impl Settings {
    /// Days after the campaign's snapshot until its outcome is complete.
    pub fn window(&self, kind: CampaignKind) -> i32 {
        match kind {
            CampaignKind::Retention => self.horizon_days,
            CampaignKind::Offer => self.conversion_days,
        }
    }
}

/// A share with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub count: Count,
    pub rate: f64,
    pub interval: Interval,
}

impl Rate {
    pub fn of(count: Count, alpha: f64) -> Option<Rate> {
        Some(Rate {
            count,
            rate: count.rate().ok()?,
            interval: wilson(count, alpha).ok()?,
        })
    }
}

/// One arm's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmFigures {
    pub arm: Arm,
    pub clients: u64,
    pub contacted: u64,
    /// Clicks among the contacted whose click is recorded (offers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_through: Option<Rate>,
    /// Offer opened within the window, among all the arm's clients (offers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Rate>,
    /// Still a client at the horizon, among all the arm's clients (retention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained: Option<Rate>,
    /// Fewer clients than `min_clients`: shown, never compared or alerted on.
    pub too_few: bool,
}

/// Which outcome a comparison is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    ClickThrough,
    Conversion,
    Retained,
}

impl Outcome {
    pub fn of(self, arm: &ArmFigures) -> Option<Rate> {
        match self {
            Outcome::ClickThrough => arm.click_through,
            Outcome::Conversion => arm.conversion,
            Outcome::Retained => arm.retained,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::ClickThrough => "click_through",
            Outcome::Conversion => "conversion",
            Outcome::Retained => "retained",
        }
    }
}

/// Arm `a` against arm `b` on one outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmComparison {
    pub outcome: Outcome,
    pub a: Arm,
    pub b: Arm,
    /// `None` when either arm has too few clients.
    pub figures: Option<Comparison>,
    /// The p-value after Holm's correction over the campaign's comparisons.
    pub adjusted_p_value: Option<f64>,
    pub significant: bool,
    /// Why there are no figures (an arm under `min_clients`), when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_compared: Option<String>,
}

impl ArmComparison {
    /// `champion_vs_control:conversion`, the comparison's label.
    pub fn name(&self) -> String {
        format!("{}_vs_{}:{}", self.a, self.b, self.outcome.as_str())
    }
}

/// Retention's money and list figures (champion calls against the control).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetentionFigures {
    /// Of the clients who would have left (the control's rate), the share the champion's calls
    /// kept: `1 - left(champion) / left(control)`.
    pub prevention_rate: f64,
    /// Share of the list who would have left uncalled (the control's left share): the list's
    /// precision.
    pub list_precision: f64,
    /// Clients who would have stayed anyway that the list took, over every client who would
    /// have stayed: FP / (FP + TN), with the listed clients' counterfactual from the control.
    pub false_positive_rate: f64,
    /// (incremental retained × client value − contacts × cost) / (contacts × cost), with its
    /// interval from the difference's.
    pub roi: f64,
    pub roi_interval: Interval,
}

/// Does the list's order find the clients the campaign moves? The champion's clients against
/// the control, ordered by the score that built the list (scoring's `campaigns/` files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftFigures {
    /// Clients of the two arms with a score.
    pub rows: usize,
    /// Qini coefficient (scikit-uplift's `qini_auc_score`): 0 as good as a random order, 1
    /// the best order there is, below 0 worse than random.
    pub qini: f64,
    /// Among the top 30 % by score, the champion's outcome rate minus the control's.
    pub uplift_at_30: f64,
    /// The Qini curve, at most 51 points: the share of clients taken in the list's order, and
    /// the champion's successes beyond the control's (scaled to the champion's size) as a share
    /// of all clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<[f64; 2]>,
}

/// One campaign's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignFigures {
    pub campaign: CampaignId,
    /// The day its outcome is complete (snapshot + window).
    pub outcome_on: Date,
    /// Whether the newest snapshot reaches `outcome_on`; no figures before.
    pub matured: bool,
    pub arms: Vec<ArmFigures>,
    pub comparisons: Vec<ArmComparison>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionFigures>,
    /// When scoring's list with its scores is kept for the campaign's snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplift: Option<UpliftFigures>,
    /// Why figures a reader may look for are missing (e.g. retention's money with too small a
    /// control).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The business job's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessSummary {
    /// The newest snapshot: outcomes as of it.
    pub snapshot: String,
    pub settings: Settings,
    pub campaigns: Vec<CampaignFigures>,
    /// Contacts tables read.
    pub contacts_files: usize,
}

impl BusinessSummary {
    /// The newest campaign of `kind` whose outcome is complete: what the observations, the
    /// console and the alerts follow.
    pub fn newest_complete(&self, kind: CampaignKind) -> Option<&CampaignFigures> {
        self.campaigns
            .iter()
            .filter(|c| c.campaign.kind == kind && c.matured)
            .max_by_key(|c| c.campaign.snapshot)
    }
}
