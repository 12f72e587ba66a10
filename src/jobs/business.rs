//! The monthly business job: what the campaigns run on the lists did. Per campaign and arm,
//! the click-through, conversion and retained shares with their intervals; the lift of the
//! champion over the control and over the popularity baseline and of the challenger over the
//! champion, each with an interval and a p-value, Holm-corrected across the campaign's
//! comparisons; for retention, the churn prevention rate, the list's false-positive rate and
//! the return on the calls.
//!
//! Outcomes come from the exports bankml already reads, as of the newest snapshot: a
//! retention client is retained when the clients table shows no `closed_on` within the churn
//! horizon after the campaign's snapshot; an offer converts when the offered product was
//! opened within `conversion_days` of it. A campaign whose window has not passed yet is listed
//! as waiting, with no figures.

use super::{Context, JobError, Observation, RunOutcome, Started};
use crate::data::campaign::{Arm, CampaignId, CampaignKind};
use crate::data::contacts::{self, Contact};
use crate::data::date::Date;
use crate::data::snapshot::{self, Snapshot};
use crate::metrics::proportions::{Correction, Count, Interval, compare};
use crate::report::campaigns::{
    ArmComparison, ArmFigures, BusinessSummary, CampaignFigures, Outcome, Rate, RetentionFigures, Settings,
    UpliftFigures,
};
use crate::report::summary::JobSummary;
use crate::vocab::catalogue::{self as obs, Label};
use std::collections::{BTreeMap, HashMap, HashSet};

fn settings(ctx: &Context) -> Settings {
    Settings {
        conversion_days: ctx.param_usize("conversion_days", 30) as i32,
        horizon_days: ctx.config.features.churn_horizon_days,
        contact_cost: ctx.param_f64("contact_cost", 15.0),
        client_value: ctx.param_f64("client_value", 1500.0),
        alpha: ctx.param_f64("alpha", 0.05),
        min_clients: ctx.param_usize("min_clients", 100),
    }
}

/// What the newest snapshot says happened.
struct Outcomes {
    /// Client → the day they left (absent: still a client).
    left_on: HashMap<i64, i32>,
    /// Client → product → the days it was opened.
    opened: HashMap<(i64, String), Vec<i32>>,
    /// Every client of the newest export with the day they arrived.
    since: HashMap<i64, i32>,
}

impl Outcomes {
    fn read(snapshot: &Snapshot) -> Result<Outcomes, JobError> {
        let clients = &snapshot.clients;
        let ids = clients.column("cli")?.i64()?;
        let closed = clients.column("closed_on")?.date()?.physical();
        let arrived = clients.column("client_since")?.date()?.physical();
        let mut left_on = HashMap::new();
        let mut since = HashMap::with_capacity(clients.height());
        for ((cli, closed), arrived) in ids.iter().zip(closed.iter()).zip(arrived.iter()) {
            let Some(cli) = cli else { continue };
            if let Some(day) = closed {
                left_on.insert(cli, day);
            }
            if let Some(day) = arrived {
                since.insert(cli, day);
            }
        }
        let holdings = &snapshot.holdings;
        let mut opened: HashMap<(i64, String), Vec<i32>> = HashMap::new();
        for ((cli, product), on) in holdings
            .column("cli")?
            .i64()?
            .iter()
            .zip(holdings.column("product_id")?.str()?.iter())
            .zip(holdings.column("opened_on")?.date()?.physical().iter())
        {
            if let (Some(cli), Some(product), Some(on)) = (cli, product, on) {
                opened.entry((cli, product.to_string())).or_default().push(on);
            }
        }
        Ok(Outcomes { left_on, opened, since })
    }

    fn left_within(&self, cli: i64, from: i32, to: i32) -> bool {
        self.left_on.get(&cli).is_some_and(|d| *d > from && *d <= to)
    }

    fn opened_within(&self, cli: i64, product: &str, from: i32, to: i32) -> bool {
        self.opened
            .get(&(cli, product.to_string()))
            .is_some_and(|days| days.iter().any(|d| *d > from && *d <= to))
    }
}

/// Runs the job: every campaign of every contacts table, measured as of the newest snapshot.
pub fn run(ctx: &Context) -> Result<RunOutcome, JobError> {
    let started = Started::now();
    let config = ctx.config;
    let settings = settings(ctx);
    let (newest, newest_dir) = snapshot::find_snapshot(&config.data.raw_dir, ctx.snapshot.as_deref())?;
    let snapshots: Vec<_> = snapshot::list_snapshots(&config.data.raw_dir)?
        .into_iter()
        .filter(|(d, _)| *d <= newest)
        .collect();
    let contacts = contacts::read_all(&snapshots, config)?;
    tracing::info!(seconds = started.seconds(), rows = contacts.rows.len(), "contacts read");
    let loaded = snapshot::load(&newest_dir, newest, config)?;
    let outcomes = Outcomes::read(&loaded)?;
    drop(loaded);
    let scores = list_scores(&contacts.rows, &config.data.scores_dir);
    let summary = measure(
        &contacts.rows,
        &outcomes,
        &scores,
        newest,
        settings,
        contacts.files.len(),
    );
    tracing::info!(
        seconds = started.seconds(),
        campaigns = summary.campaigns.len(),
        "campaigns measured"
    );
    let observations = observations(&summary);
    Ok(started.succeeded(
        "business",
        Vec::new(),
        observations,
        JobSummary::Business(Box::new(summary)).to_value(),
    ))
}

/// Client → the score that put them on the list, per campaign whose list scoring kept
/// (`data/scores/<date>/campaigns/<kind>.parquet`); a bank's own lists have none.
type ListScores = BTreeMap<CampaignId, HashMap<i64, f64>>;

fn list_scores(rows: &[Contact], scores_dir: &std::path::Path) -> ListScores {
    let campaigns: std::collections::BTreeSet<CampaignId> = rows.iter().map(|r| r.campaign).collect();
    let mut out = ListScores::new();
    for campaign in campaigns {
        let path = scores_dir
            .join(campaign.snapshot.to_string())
            .join("campaigns")
            .join(format!("{}.parquet", campaign.kind.as_str()));
        if !path.is_file() {
            continue;
        }
        let columns: &[&[&str]] = match campaign.kind {
            CampaignKind::Retention => &[&["cli", "churn_rate"], &["cli", "churn_probability"]],
            CampaignKind::Offer => &[&["cli", "score"]],
        };
        let read = columns.iter().find_map(|c| super::read_parquet_columns(&path, c).ok());
        let Some(frame) = read else {
            tracing::warn!(path = %path.display(), "a campaign list without its scores: no Qini for it");
            continue;
        };
        let (Ok(ids), Ok(values)) = (
            frame.column("cli").and_then(|c| c.i64().cloned()),
            frame.columns()[1].f64().cloned(),
        ) else {
            continue;
        };
        let map: HashMap<i64, f64> = ids
            .iter()
            .zip(values.iter())
            .filter_map(|(id, v)| Some((id?, v?)))
            .collect();
        out.insert(campaign, map);
    }
    out
}

fn measure(
    rows: &[Contact],
    outcomes: &Outcomes,
    scores: &ListScores,
    newest: Date,
    settings: Settings,
    files: usize,
) -> BusinessSummary {
    let mut by_campaign: BTreeMap<CampaignId, Vec<&Contact>> = BTreeMap::new();
    for row in rows {
        by_campaign.entry(row.campaign).or_default().push(row);
    }
    let mut campaigns: Vec<CampaignFigures> = by_campaign
        .into_iter()
        .map(|(campaign, rows)| {
            let mut figures = measure_campaign(campaign, &rows, outcomes, newest, settings);
            if figures.matured
                && let Some(scores) = scores.get(&campaign)
            {
                figures.uplift = uplift(&figures, &rows, outcomes, scores, settings);
            }
            figures
        })
        .collect();
    for figures in &mut campaigns {
        correct(figures, settings.alpha);
    }
    BusinessSummary {
        snapshot: newest.to_string(),
        settings,
        campaigns,
        contacts_files: files,
    }
}

/// Whether `row`'s client had the outcome the campaign is after (retained, or converted).
fn succeeded(row: &Contact, kind: CampaignKind, outcomes: &Outcomes, start: i32, end: i32) -> bool {
    match kind {
        CampaignKind::Retention => !outcomes.left_within(row.cli, start, end),
        CampaignKind::Offer => row
            .offer
            .as_deref()
            .is_some_and(|p| outcomes.opened_within(row.cli, p, start, end)),
    }
}

/// Qini and uplift at 30 % of the champion against the control, in the list's score order.
fn uplift(
    figures: &CampaignFigures,
    rows: &[&Contact],
    outcomes: &Outcomes,
    scores: &HashMap<i64, f64>,
    settings: Settings,
) -> Option<UpliftFigures> {
    let (start, end) = (figures.campaign.snapshot.0, figures.outcome_on.0);
    let (mut outcome, mut score, mut treated) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows.iter().filter(|r| matches!(r.arm, Arm::Champion | Arm::Control)) {
        if let Some(s) = scores.get(&row.cli).filter(|s| s.is_finite()) {
            outcome.push(succeeded(row, figures.campaign.kind, outcomes, start, end));
            score.push(*s);
            treated.push(row.arm == Arm::Champion);
        }
    }
    let controls = treated.iter().filter(|t| !**t).count();
    if controls < settings.min_clients || treated.len() - controls < settings.min_clients {
        return None;
    }
    let top = (outcome.len() * 3 / 10).max(1);
    let (xs, ys) = crate::metrics::uplift::qini_curve(&outcome, &score, &treated).ok()?;
    let n = outcome.len() as f64;
    // At most 51 points, evenly spread over the clients taken, both ends kept.
    let step = (xs.len() / 50).max(1);
    let mut curve: Vec<[f64; 2]> = xs.iter().zip(&ys).step_by(step).map(|(x, y)| [x / n, y / n]).collect();
    if let (Some(x), Some(y)) = (xs.last(), ys.last())
        && curve.last().is_none_or(|p| p[0] < x / n)
    {
        curve.push([x / n, y / n]);
    }
    Some(UpliftFigures {
        curve,
        rows: outcome.len(),
        qini: crate::metrics::uplift::qini_coefficient(&outcome, &score, &treated, true).ok()?,
        uplift_at_30: crate::metrics::uplift::uplift_at_k(&outcome, &score, &treated, top).ok()?,
    })
}

/// Holm over one campaign's comparisons: the chance that any of the decisions it informs
/// (keep the champion? is the model worth more than popularity? than doing nothing?) rests on
/// a false "significant" stays at alpha. Campaigns are separate decisions, months apart.
fn correct(figures: &mut CampaignFigures, alpha: f64) {
    let made: Vec<(usize, f64)> = figures
        .comparisons
        .iter()
        .enumerate()
        .filter_map(|(k, comparison)| comparison.figures.map(|f| (k, f.p_value)))
        .collect();
    let p_values: Vec<f64> = made.iter().map(|(_, p)| *p).collect();
    if let Ok(adjusted) = Correction::Holm.adjust(&p_values) {
        for ((k, _), p) in made.into_iter().zip(adjusted) {
            let comparison = &mut figures.comparisons[k];
            comparison.adjusted_p_value = Some(p);
            comparison.significant = p < alpha;
        }
    }
}

fn measure_campaign(
    campaign: CampaignId,
    rows: &[&Contact],
    outcomes: &Outcomes,
    newest: Date,
    settings: Settings,
) -> CampaignFigures {
    let start = campaign.snapshot.0;
    let end = start + settings.window(campaign.kind);
    let matured = newest.0 >= end;
    let mut figures = CampaignFigures {
        campaign,
        outcome_on: Date(end),
        matured,
        arms: Vec::new(),
        comparisons: Vec::new(),
        retention: None,
        uplift: None,
        notes: Vec::new(),
    };
    if !matured {
        return figures;
    }
    for &arm in campaign.kind.arms() {
        let members: Vec<&&Contact> = rows.iter().filter(|r| r.arm == arm).collect();
        if members.is_empty() {
            continue;
        }
        let clients = members.len() as u64;
        let contacted = members.iter().filter(|r| r.contacted_on.is_some()).count() as u64;
        let successes = |hit: &dyn Fn(&Contact) -> bool| members.iter().filter(|r| hit(r)).count() as u64;
        let mut arm_figures = ArmFigures {
            arm,
            clients,
            contacted,
            click_through: None,
            conversion: None,
            retained: None,
            too_few: (clients as usize) < settings.min_clients,
        };
        match campaign.kind {
            CampaignKind::Retention => {
                let kept = successes(&|r| succeeded(r, CampaignKind::Retention, outcomes, start, end));
                arm_figures.retained = Rate::of(Count::new(kept, clients), settings.alpha);
            }
            CampaignKind::Offer => {
                let recorded = members.iter().filter(|r| r.clicked.is_some()).count() as u64;
                let clicks = successes(&|r| r.clicked == Some(true));
                if recorded > 0 {
                    arm_figures.click_through = Rate::of(Count::new(clicks, recorded), settings.alpha);
                }
                let converted = successes(&|r| succeeded(r, CampaignKind::Offer, outcomes, start, end));
                arm_figures.conversion = Rate::of(Count::new(converted, clients), settings.alpha);
            }
        }
        figures.arms.push(arm_figures);
    }
    let pairs: &[(Outcome, Arm, Arm)] = match campaign.kind {
        CampaignKind::Retention => &[
            (Outcome::Retained, Arm::Champion, Arm::Control),
            (Outcome::Retained, Arm::Challenger, Arm::Control),
            (Outcome::Retained, Arm::Challenger, Arm::Champion),
        ],
        CampaignKind::Offer => &[
            (Outcome::Conversion, Arm::Champion, Arm::Control),
            (Outcome::Conversion, Arm::Champion, Arm::Baseline),
            (Outcome::Conversion, Arm::Challenger, Arm::Champion),
            (Outcome::ClickThrough, Arm::Champion, Arm::Baseline),
            (Outcome::ClickThrough, Arm::Challenger, Arm::Champion),
        ],
    };
    for &(outcome, a, b) in pairs {
        let (Some(arm_a), Some(arm_b)) = (
            figures.arms.iter().find(|f| f.arm == a),
            figures.arms.iter().find(|f| f.arm == b),
        ) else {
            continue;
        };
        let small: Vec<String> = [arm_a, arm_b]
            .iter()
            .filter(|arm| arm.too_few)
            .map(|arm| format!("{} has {} clients", arm.arm, arm.clients))
            .collect();
        let compared = match (outcome.of(arm_a), outcome.of(arm_b)) {
            (Some(x), Some(y)) if small.is_empty() => compare(x.count, y.count, settings.alpha).ok(),
            _ => None,
        };
        let not_compared = (!small.is_empty()).then(|| {
            format!(
                "too few contacts: {}, under min_clients {}",
                small.join(" and "),
                settings.min_clients
            )
        });
        figures.comparisons.push(ArmComparison {
            outcome,
            a,
            b,
            figures: compared,
            adjusted_p_value: None,
            significant: false,
            not_compared,
        });
    }
    if campaign.kind == CampaignKind::Retention {
        figures.retention = retention_figures(&figures, rows, outcomes, settings);
        if figures.retention.is_none() {
            let sizes: Vec<String> = [Arm::Champion, Arm::Control]
                .iter()
                .map(|a| {
                    let n = figures.arms.iter().find(|f| f.arm == *a).map_or(0, |f| f.clients);
                    format!("{a} {n}")
                })
                .collect();
            figures.notes.push(format!(
                "no prevention rate, false-positive rate or return: they need a champion and a control arm of at \
                 least min_clients ({}) each ({})",
                settings.min_clients,
                sizes.join(", ")
            ));
        }
    }
    figures
}

fn retention_figures(
    figures: &CampaignFigures,
    rows: &[&Contact],
    outcomes: &Outcomes,
    settings: Settings,
) -> Option<RetentionFigures> {
    let arm = |a: Arm| figures.arms.iter().find(|f| f.arm == a).filter(|f| !f.too_few);
    let (champion, control) = (arm(Arm::Champion)?, arm(Arm::Control)?);
    let (kept, held_out) = (champion.retained?, control.retained?);
    let left_control = 1.0 - held_out.rate;
    let left_champion = 1.0 - kept.rate;
    let difference = compare(kept.count, held_out.count, settings.alpha).ok()?;
    // ROI is linear in the retained difference: value/cost per point, minus the outlay.
    let per_point = settings.client_value / settings.contact_cost;
    let (start, end) = (figures.campaign.snapshot.0, figures.outcome_on.0);
    // Who would have stayed anyway: the unlisted current clients who stayed, plus the list's
    // stayers as the control says.
    let listed: HashSet<i64> = rows.iter().map(|r| r.cli).collect();
    let unlisted_stayers = outcomes
        .since
        .iter()
        .filter(|(cli, since)| {
            **since <= start && !listed.contains(cli) && outcomes.left_on.get(cli).is_none_or(|d| *d > end)
        })
        .count() as f64;
    let list_stayers = listed.len() as f64 * held_out.rate;
    Some(RetentionFigures {
        prevention_rate: if left_control > 0.0 {
            1.0 - left_champion / left_control
        } else {
            0.0
        },
        list_precision: left_control,
        false_positive_rate: list_stayers / (list_stayers + unlisted_stayers).max(1.0),
        roi: difference.difference * per_point - 1.0,
        roi_interval: Interval {
            low: difference.difference_interval.low * per_point - 1.0,
            high: difference.difference_interval.high * per_point - 1.0,
        },
    })
}

/// The newest matured campaign of each kind, as observations (one series per kind, arm and
/// comparison; the summary keeps every campaign).
fn observations(summary: &BusinessSummary) -> Vec<Observation> {
    let mut out = Vec::new();
    for kind in CampaignKind::ALL {
        let Some(latest) = summary.newest_complete(kind) else {
            continue;
        };
        let campaign = (Label::Campaign, kind.as_str());
        // Which month's campaign: its list's snapshot.
        let snapshot = latest.campaign.snapshot.to_string();
        let cohort = (Label::Cohort, snapshot.as_str());
        for arm in &latest.arms {
            let labels = [campaign, cohort, (Label::Arm, arm.arm.as_str())];
            out.push(Observation::of(&obs::CAMPAIGN_CLIENTS, &labels, arm.clients as f64));
            if arm.too_few {
                continue;
            }
            for (spec, rate) in [
                (&obs::CAMPAIGN_CLICK_THROUGH_RATE, arm.click_through),
                (&obs::CAMPAIGN_CONVERSION_RATE, arm.conversion),
                (&obs::CAMPAIGN_RETAINED_SHARE, arm.retained),
            ] {
                if let Some(rate) = rate {
                    out.push(Observation::of(spec, &labels, rate.rate));
                }
            }
        }
        for comparison in &latest.comparisons {
            let (Some(figures), Some(p)) = (comparison.figures, comparison.adjusted_p_value) else {
                continue;
            };
            let name = comparison.name();
            let labels = [campaign, cohort, (Label::Comparison, name.as_str())];
            out.push(Observation::of(&obs::CAMPAIGN_DIFFERENCE, &labels, figures.difference));
            if let Some(ratio) = figures.ratio {
                out.push(Observation::of(&obs::CAMPAIGN_LIFT, &labels, ratio - 1.0));
            }
            out.push(Observation::of(&obs::CAMPAIGN_P_VALUE, &labels, p));
            out.push(Observation::of(
                &obs::CAMPAIGN_SIGNIFICANT,
                &labels,
                f64::from(u8::from(comparison.significant)),
            ));
        }
        if let Some(uplift) = &latest.uplift {
            out.push(Observation::of(&obs::CAMPAIGN_QINI, &[campaign, cohort], uplift.qini));
        }
        if let Some(retention) = latest.retention {
            out.push(Observation::of(
                &obs::CHURN_PREVENTION_RATE,
                &[cohort],
                retention.prevention_rate,
            ));
            out.push(Observation::of(
                &obs::RETENTION_FALSE_POSITIVE_RATE,
                &[cohort],
                retention.false_positive_rate,
            ));
            out.push(Observation::of(&obs::RETENTION_ROI, &[cohort], retention.roi));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(campaign: CampaignId, cli: i64, arm: Arm, clicked: bool) -> Contact {
        Contact {
            campaign,
            cli,
            arm,
            contacted_on: (arm != Arm::Control).then_some(Date(campaign.snapshot.0 + 3)),
            offer: Some("P01".into()),
            clicked: (arm != Arm::Control).then_some(clicked),
        }
    }

    /// A control that converted no one (an infinite lift), an arm too small to compare, and a
    /// summary that reads back as written.
    #[test]
    fn rates_comparisons_and_a_zero_control_read_back() {
        let campaign = CampaignId::parse("offer-2025-01-31").unwrap();
        let start = campaign.snapshot.0;
        let mut rows = Vec::new();
        let mut opened = HashMap::new();
        for cli in 0..150 {
            rows.push(contact(campaign, cli, Arm::Champion, cli % 4 == 0));
            if cli % 5 == 0 {
                opened.insert((cli, "P01".to_string()), vec![start + 10]);
            }
        }
        for cli in 1000..1120 {
            rows.push(contact(campaign, cli, Arm::Control, false));
            // Opened, but after the 30-day window: not a conversion.
            opened.insert((cli, "P01".to_string()), vec![start + 45]);
        }
        for cli in 2000..2005 {
            rows.push(contact(campaign, cli, Arm::Challenger, true));
        }
        let outcomes = Outcomes {
            left_on: HashMap::new(),
            opened,
            since: HashMap::new(),
        };
        let settings = Settings {
            conversion_days: 30,
            horizon_days: 90,
            contact_cost: 15.0,
            client_value: 1500.0,
            alpha: 0.05,
            min_clients: 100,
        };
        let summary = measure(&rows, &outcomes, &ListScores::new(), Date(start + 60), settings, 1);
        let figures = &summary.campaigns[0];
        assert!(figures.matured);
        let arm = |a: Arm| figures.arms.iter().find(|f| f.arm == a).unwrap();
        let champion = arm(Arm::Champion);
        assert_eq!(champion.conversion.unwrap().count, Count::new(30, 150));
        assert_eq!(champion.click_through.unwrap().count, Count::new(38, 150));
        assert_eq!(arm(Arm::Control).conversion.unwrap().count, Count::new(0, 120));
        assert!(arm(Arm::Challenger).too_few);
        let versus_control = figures
            .comparisons
            .iter()
            .find(|c| c.a == Arm::Champion && c.b == Arm::Control)
            .unwrap();
        let compared = versus_control.figures.unwrap();
        assert_eq!(compared.ratio, None, "0 conversions in the control: no finite lift");
        assert!(compared.ratio_interval.low > 1.0 && versus_control.significant);
        let with_challenger = figures.comparisons.iter().filter(|c| c.a == Arm::Challenger);
        assert!(with_challenger.clone().count() > 0 && with_challenger.clone().all(|c| c.figures.is_none()));
        let value = JobSummary::Business(Box::new(summary.clone())).to_value();
        assert_eq!(
            JobSummary::read("business", &value),
            Ok(JobSummary::Business(Box::new(summary)))
        );
        // Before its window has passed, a campaign has no figures.
        let early = measure(&rows, &outcomes, &ListScores::new(), Date(start + 20), settings, 1);
        assert!(!early.campaigns[0].matured && early.campaigns[0].arms.is_empty());
    }
}
