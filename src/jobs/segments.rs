//! The benchmark's figures by group: churn's and the recommender's metrics by region, client
//! segment and agency, managers' and agencies' by region — rows permitting — with the headline
//! one (ROC AUC, RMSE, precision at k) and its standard error, tested one-sided against the
//! same group's figure at its baseline ([`crate::metrics::groups`], [`crate::jobs::group_baseline`]):
//! a group is flagged when its share of the whole's figure got worse, with Benjamini–Hochberg
//! across a model's groups; and each metric's spread across regions (the seed's "performance
//! variance consistent across regions").

use crate::metrics::classification::{self, Ranked};
use crate::metrics::groups::{self, Better, GroupEstimate};
use crate::metrics::proportions::Correction;
use crate::metrics::ranking::{self, RankingMetrics, UserAccuracy};
use crate::metrics::regression;
use crate::report::summary::{BenchmarkSummary, RegionSpread, SegmentBaseline, SegmentFigure};
use crate::vocab::ModelKind;
use crate::vocab::Observation;
use crate::vocab::catalogue::{self as obs, Label};
use std::collections::BTreeMap;

/// The default of the benchmark's `group_min_clients`: a churn group needs this many clients
/// (and [`MIN_CLASS`] of each class), a recommender group this many clients who opened
/// something, to be measured.
pub const MIN_CLIENTS: usize = 200;
const MIN_CLASS: usize = 20;
/// A group of managers or agencies needs this many to be measured.
const MIN_ENTITIES: usize = 5;
/// ... and this many, now and at its baseline, to be tested. An RMSE's standard error comes
/// from the spread of the squared errors, which on a few dozen entities is too skewed for the
/// normal approximation: on a steady bank, a region's 15 managers had an adjusted p of 0.019.
/// Smaller groups are shown, not tested.
pub const MIN_TESTED_ENTITIES: usize = 30;
/// The default of the benchmark's `group_fdr`: the false-discovery rate of the groups flagged
/// worse on one run. Measured by `bench monitor` on a steady bank (20,000 and 100,000 clients,
/// twelve monthly runs each), the lowest adjusted p-value of a tested group before any planted
/// event was 0.18: the test is conservative (it leaves out that a group is part of the whole).
pub const FDR: f64 = 0.05;

/// A way to group rows (region, segment, agency): each row's group as a number into the
/// group names, sorted. Numbers, not a `String` per row: at 10M clients three dimensions were
/// 30M small strings made and dropped.
#[derive(Debug)]
pub struct Dimension<'a> {
    pub name: &'a str,
    /// The groups' names, ascending (the order the figures come out in).
    groups: Vec<String>,
    /// Each row's index into `groups`, or [`NO_GROUP`].
    rows: Vec<u32>,
}

/// A row without a value for the dimension: left out.
const NO_GROUP: u32 = u32::MAX;

impl<'a> Dimension<'a> {
    /// The dimension `name` with each row's value (none: left out).
    pub fn new<'v>(name: &'a str, values: impl IntoIterator<Item = Option<&'v str>>) -> Self {
        let mut seen: foldhash::HashMap<&'v str, u32> = foldhash::HashMap::default();
        let mut rows: Vec<u32> = values
            .into_iter()
            .map(|value| match value {
                Some(v) => {
                    let next = seen.len() as u32;
                    *seen.entry(v).or_insert(next)
                }
                None => NO_GROUP,
            })
            .collect();
        let mut named: Vec<(&str, u32)> = seen.into_iter().collect();
        named.sort_unstable();
        let mut renumber = vec![NO_GROUP; named.len()];
        for (position, (_, first_seen)) in named.iter().enumerate() {
            renumber[*first_seen as usize] = position as u32;
        }
        for row in &mut rows {
            if *row != NO_GROUP {
                *row = renumber[*row as usize];
            }
        }
        Dimension {
            name,
            groups: named.into_iter().map(|(v, _)| v.to_string()).collect(),
            rows,
        }
    }

    /// The dimension `name` from `column` of `frame` (any type, read as text).
    pub fn of_column(
        name: &'a str,
        frame: &polars::prelude::DataFrame,
        column: &str,
    ) -> polars::prelude::PolarsResult<Self> {
        let values = frame.column(column)?.cast(&polars::prelude::DataType::String)?;
        Ok(Dimension::new(name, values.str()?.iter()))
    }

    /// The group of row `row`, if it has one.
    fn group_of(&self, row: usize) -> Option<usize> {
        self.rows.get(row).filter(|g| **g != NO_GROUP).map(|g| *g as usize)
    }

    /// Each group's name with its rows, ascending by name.
    fn members(&self) -> impl Iterator<Item = (&str, Vec<usize>)> {
        let mut members = vec![Vec::new(); self.groups.len()];
        for (row, group) in self.rows.iter().enumerate() {
            if *group != NO_GROUP {
                members[*group as usize].push(row);
            }
        }
        self.groups.iter().map(String::as_str).zip(members)
    }

    /// Each group, ascending by name: its rows, and its scores by class in the scores'
    /// ascending order.
    fn ranked_members<'s>(&'s self, ranked: &RankedRows) -> Vec<Group<'s>> {
        let mut groups: Vec<Group> = self
            .members()
            .map(|(segment, rows)| Group {
                dimension: self.name,
                segment,
                rows,
                positives: Vec::new(),
                negatives: Vec::new(),
            })
            .collect();
        for (position, &row) in ranked.order.iter().enumerate() {
            if let Some(group) = self.group_of(row) {
                let (group, score) = (&mut groups[group], ranked.scores[position]);
                match ranked.labels[position] {
                    true => group.positives.push(score),
                    false => group.negatives.push(score),
                }
            }
        }
        groups
    }
}

/// Churn's AUC per group of each dimension (`(name, values per row)`), with its standard
/// error; its other metrics at `threshold` beside it. `order` is the scores' ascending order
/// ([`argsort_floats`](crate::metrics::sort::argsort_floats)): every group's ranking is read
/// off it, one walk per dimension instead of a sort per group.
pub fn churn(
    labels: &[bool],
    scores: &[f64],
    order: &[usize],
    threshold: f64,
    dimensions: &[Dimension],
    min_clients: usize,
) -> Vec<SegmentFigure> {
    let Ok(overall) = Ranked::from_order(labels, scores, order).map(|r| r.roc_auc()) else {
        return Vec::new();
    };
    use rayon::prelude::*;
    // Labels and scores gathered in the scores' order once; each dimension then reads its
    // groups off them in one pass.
    let (ranked_labels, ranked_scores): (Vec<bool>, Vec<f64>) = order.iter().map(|&i| (labels[i], scores[i])).unzip();
    let ranked = RankedRows {
        order,
        labels: &ranked_labels,
        scores: &ranked_scores,
    };
    let by_dimension: Vec<Vec<Group>> = dimensions
        .par_iter()
        .map(|dimension| dimension.ranked_members(&ranked))
        .collect();
    let groups: Vec<Group> = by_dimension.into_iter().flatten().collect();
    let whole = Whole {
        labels,
        scores,
        threshold,
        overall,
        min_clients,
    };
    // The figures on every core, kept in the dimensions' and groups' order.
    groups.into_par_iter().filter_map(|group| whole.group(group)).collect()
}

/// Every row's label and score in the scores' ascending order, with that order.
struct RankedRows<'a> {
    order: &'a [usize],
    labels: &'a [bool],
    scores: &'a [f64],
}

/// One group of a dimension: its rows, and its positives' and negatives' scores ascending.
struct Group<'a> {
    dimension: &'a str,
    segment: &'a str,
    rows: Vec<usize>,
    positives: Vec<f64>,
    negatives: Vec<f64>,
}

/// Every measured client of a churn model: what each group is compared with.
struct Whole<'a> {
    labels: &'a [bool],
    scores: &'a [f64],
    threshold: f64,
    /// The AUC of all of them.
    overall: f64,
    min_clients: usize,
}

impl Whole<'_> {
    /// One group's AUC beside the whole's, with the other figures shown too; `None`
    /// when the group is too small or of one class.
    fn group(&self, group: Group) -> Option<SegmentFigure> {
        let Whole {
            labels,
            scores,
            threshold,
            overall,
            min_clients,
        } = *self;
        let Group {
            dimension,
            segment,
            rows,
            positives,
            negatives,
        } = group;
        if rows.len() < min_clients || positives.len() < MIN_CLASS || negatives.len() < MIN_CLASS {
            return None;
        }
        let (positives, negatives, ranked) = (
            positives.len(),
            negatives.len(),
            Ranked::from_sorted(positives, negatives).ok()?,
        );
        // In row order, as the other metrics' sums have always been taken.
        let l: Vec<bool> = rows.iter().map(|i| labels[*i]).collect();
        let s: Vec<f64> = rows.iter().map(|i| scores[*i]).collect();
        let auc = ranked.roc_auc();
        let standard_error = groups::auc_standard_error(auc, positives, negatives).ok()?;
        let mut f = figure(
            ModelKind::Churn,
            dimension,
            segment.to_string(),
            rows.len(),
            "roc_auc",
            GroupEstimate {
                value: auc,
                overall,
                standard_error,
            },
        );
        // The rest need probabilities (a churn model's scores are); shown, not tested.
        if let Ok(m) = classification::evaluate_ranked(&ranked, &l, &s, threshold) {
            f.other = finite(&[
                ("average_precision", m.average_precision),
                ("precision", m.precision),
                ("recall", m.recall),
                ("f1", m.f1),
                ("brier", m.brier),
                ("log_loss", m.log_loss),
                ("ks", m.ks),
                ("positive_rate", positives as f64 / rows.len() as f64),
            ]);
        }
        Some(f)
    }
}

/// A regressor's RMSE per group of each dimension, with its standard error.
pub fn performance(model: ModelKind, truth: &[f64], predicted: &[f64], dimensions: &[Dimension]) -> Vec<SegmentFigure> {
    let rows = truth.len().min(predicted.len());
    if rows == 0 {
        return Vec::new();
    }
    let squared: Vec<f64> = (0..rows).map(|i| (truth[i] - predicted[i]).powi(2)).collect();
    let overall_mse = squared.iter().sum::<f64>() / rows as f64;
    let mut figures = Vec::new();
    for dimension in dimensions {
        for (segment, members) in dimension.members() {
            let members: Vec<usize> = members.into_iter().filter(|i| *i < rows).collect();
            if members.len() < MIN_ENTITIES {
                continue;
            }
            let group_squared: Vec<f64> = members.iter().map(|i| squared[*i]).collect();
            let Ok((rmse, standard_error)) = groups::rmse_with_standard_error(&group_squared) else {
                continue;
            };
            let mut f = figure(
                model,
                dimension.name,
                segment.to_string(),
                members.len(),
                "rmse",
                GroupEstimate {
                    value: rmse,
                    overall: overall_mse.sqrt(),
                    standard_error,
                },
            );
            let t: Vec<f64> = members.iter().map(|i| truth[*i]).collect();
            let q: Vec<f64> = members.iter().map(|i| predicted[*i]).collect();
            if let Ok(m) = regression::evaluate(&t, &q) {
                f.other = finite(&[("mae", m.mae), ("spearman", m.spearman)]);
            }
            figures.push(f);
        }
    }
    figures
}

/// The recommender's precision at k per group of each dimension (`values` indexed by the
/// users' own index), with its standard error from the clients' spread; its recall, NDCG, hit
/// rate and MAP at k beside it.
pub fn recommender(
    users: &[(usize, UserAccuracy)],
    overall: &RankingMetrics,
    dimensions: &[Dimension],
    min_clients: usize,
) -> Vec<SegmentFigure> {
    let mut figures = Vec::new();
    for dimension in dimensions {
        let mut groups: Vec<Vec<(usize, UserAccuracy)>> = vec![Vec::new(); dimension.groups.len()];
        for (user, figures) in users {
            if let Some(group) = dimension.group_of(*user) {
                groups[group].push((*user, *figures));
            }
        }
        for (segment, members) in dimension.groups.iter().zip(groups) {
            if members.len() < min_clients {
                continue;
            }
            let Ok(m) = ranking::summarize(&members, overall.k) else {
                continue;
            };
            let precision: Vec<f64> = members.iter().map(|(_, u)| u.precision).collect();
            let Ok((_, standard_error)) = groups::mean_with_standard_error(&precision) else {
                continue;
            };
            let mut f = figure(
                ModelKind::Recommender,
                dimension.name,
                segment.clone(),
                members.len(),
                "precision_at_k",
                GroupEstimate {
                    value: m.precision_at_k,
                    overall: overall.precision_at_k,
                    standard_error,
                },
            );
            f.other = finite(&[
                ("recall_at_k", m.recall_at_k),
                ("ndcg_at_k", m.ndcg_at_k),
                ("hit_rate_at_k", m.hit_rate_at_k),
                ("map_at_k", m.map_at_k),
            ]);
            figures.push(f);
        }
    }
    figures
}

/// The finite ones of `metrics`, by name.
fn finite(metrics: &[(&str, f64)]) -> BTreeMap<String, f64> {
    metrics
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}

/// A group's figure, not tested yet.
fn figure(
    model: ModelKind,
    dimension: &str,
    segment: String,
    rows: usize,
    metric: &str,
    estimate: GroupEstimate,
) -> SegmentFigure {
    SegmentFigure {
        model,
        dimension: dimension.to_string(),
        segment,
        rows,
        metric: metric.to_string(),
        value: estimate.value,
        overall: estimate.overall,
        standard_error: estimate.standard_error,
        baseline: None,
        tested: false,
        p_value: 1.0,
        adjusted_p_value: 1.0,
        worse: false,
        other: BTreeMap::new(),
    }
}

/// Which way `model`'s tested metric improves.
pub fn better(model: ModelKind) -> Better {
    match model {
        ModelKind::Churn | ModelKind::Recommender => Better::Higher,
        ModelKind::Manager | ModelKind::Agency => Better::Lower,
    }
}

impl From<&SegmentFigure> for GroupEstimate {
    fn from(figure: &SegmentFigure) -> Self {
        GroupEstimate {
            value: figure.value,
            overall: figure.overall,
            standard_error: figure.standard_error,
        }
    }
}

impl From<&SegmentBaseline> for GroupEstimate {
    fn from(baseline: &SegmentBaseline) -> Self {
        GroupEstimate {
            value: baseline.value,
            overall: baseline.overall,
            standard_error: baseline.standard_error,
        }
    }
}

/// Whether a group of `rows` of `model` is large enough to test: any for churn and the
/// recommender (their groups' sizes are checked when measured), [`MIN_TESTED_ENTITIES`] for
/// managers and agencies.
fn enough_to_test(model: ModelKind, rows: usize) -> bool {
    match model {
        ModelKind::Manager | ModelKind::Agency => rows >= MIN_TESTED_ENTITIES,
        ModelKind::Churn | ModelKind::Recommender => true,
    }
}

/// Whether a figure can be a baseline: later figures of its group can be tested against it
/// (a share of the whole and a spread to weigh it by; enough managers or agencies). One that
/// cannot is not kept, so that the group's first figure that can becomes its baseline.
pub fn can_be_baseline(figure: &SegmentFigure) -> bool {
    GroupEstimate::from(figure).is_comparable() && enough_to_test(figure.model, figure.rows)
}

/// Each of one model's figures tested against its group's baseline (`baseline_of`), with
/// Benjamini–Hochberg at `fdr` across the figures tested. A figure without a baseline, or too
/// small a group of managers or agencies, keeps p = 1 and is not flagged.
pub fn judged(
    mut figures: Vec<SegmentFigure>,
    baseline_of: impl Fn(&SegmentFigure) -> Option<SegmentBaseline>,
    fdr: f64,
) -> Vec<SegmentFigure> {
    let mut tested = Vec::new();
    for (position, figure) in figures.iter_mut().enumerate() {
        let Some(baseline) = baseline_of(figure) else {
            continue;
        };
        if !enough_to_test(figure.model, figure.rows.min(baseline.rows)) {
            figure.baseline = Some(baseline);
            continue;
        }
        let (now, then) = (GroupEstimate::from(&*figure), GroupEstimate::from(&baseline));
        figure.p_value = groups::worse_since_p_value(&now, &then, better(figure.model));
        figure.baseline = Some(baseline);
        figure.tested = true;
        tested.push(position);
    }
    let p: Vec<f64> = tested.iter().map(|i| figures[*i].p_value.clamp(0.0, 1.0)).collect();
    if let Ok(adjusted) = Correction::BenjaminiHochberg.adjust(&p) {
        for (i, q) in tested.into_iter().zip(adjusted) {
            figures[i].adjusted_p_value = q;
            figures[i].worse = q < fdr;
        }
    }
    figures
}

/// The spread of a model's metric across its measured regions (two or more).
pub fn region_spread(figures: &[SegmentFigure]) -> Option<RegionSpread> {
    let regions: Vec<&SegmentFigure> = figures.iter().filter(|f| f.dimension == "region").collect();
    if regions.len() < 2 {
        return None;
    }
    let values: Vec<f64> = regions.iter().map(|f| f.value).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Some(RegionSpread {
        model: regions[0].model,
        metric: regions[0].metric.clone(),
        regions: values.len(),
        spread: variance.sqrt(),
        lowest: values.iter().copied().fold(f64::INFINITY, f64::min),
        highest: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The benchmark's `group_min_clients`.
pub fn min_clients(ctx: &crate::jobs::Context) -> usize {
    ctx.param_usize("group_min_clients", MIN_CLIENTS)
}

/// The benchmark's `group_fdr`.
pub fn fdr(ctx: &crate::jobs::Context) -> f64 {
    ctx.param_f64("group_fdr", FDR)
}

/// One model's figures published: as observations, with their spread across regions, and into
/// the run's summary.
pub fn record(figures: Vec<SegmentFigure>, summary: &mut BenchmarkSummary, observations: &mut Vec<Observation>) {
    let spread = region_spread(&figures);
    observe(&figures, spread.as_ref(), observations);
    summary.segments.extend(figures);
    summary.region_spread.extend(spread);
}

/// The figures as observations.
fn observe(figures: &[SegmentFigure], spread: Option<&RegionSpread>, out: &mut Vec<Observation>) {
    for f in figures {
        let labels = [
            (Label::Model, f.model.as_str()),
            (Label::Metric, f.metric.as_str()),
            (Label::Dimension, f.dimension.as_str()),
            (Label::Segment, f.segment.as_str()),
        ];
        out.push(Observation::of(&obs::SEGMENT_METRIC, &labels, f.value));
        out.push(Observation::of(
            &obs::SEGMENT_WORSE,
            &labels,
            f64::from(u8::from(f.worse)),
        ));
    }
    if let Some(s) = spread {
        out.push(Observation::of(
            &obs::REGION_SPREAD,
            &[(Label::Model, s.model.as_str()), (Label::Metric, s.metric.as_str())],
            s.spread,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded uniform in [0, 1).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Churn scores of five regions with their figures.
    struct ChurnBank {
        figures: Vec<SegmentFigure>,
        labels: Vec<bool>,
        scores: Vec<f64>,
        regions: Vec<Option<&'static str>>,
    }

    /// Five regions of churn scores, `random` among them scored at random; drawn from `seed`.
    fn churn_figures(random: &[&str], seed: u64) -> ChurnBank {
        let mut uniform = uniform(seed);
        let (mut labels, mut scores, mut regions) = (Vec::new(), Vec::new(), Vec::new());
        for region in ["A", "B", "C", "D", "E"] {
            for _ in 0..2_000 {
                let label = uniform() < 0.2;
                let signal = if random.contains(&region) {
                    0.0
                } else {
                    0.8 * f64::from(u8::from(label))
                };
                labels.push(label);
                scores.push(signal + uniform());
                regions.push(Some(region));
            }
        }
        let order = crate::metrics::sort::argsort_floats(&scores);
        let dimension = Dimension::new("region", regions.iter().copied());
        let figures = churn(&labels, &scores, &order, 0.5, &[dimension], MIN_CLIENTS);
        ChurnBank {
            figures,
            labels,
            scores,
            regions,
        }
    }

    /// `figures` as the baselines of their groups.
    fn baselines(figures: &[SegmentFigure]) -> impl Fn(&SegmentFigure) -> Option<SegmentBaseline> + '_ {
        |figure| {
            figures
                .iter()
                .find(|f| f.dimension == figure.dimension && f.segment == figure.segment)
                .map(|f| SegmentBaseline {
                    snapshot: "2025-01-31".into(),
                    rows: f.rows,
                    value: f.value,
                    overall: f.overall,
                    standard_error: f.standard_error,
                })
        }
    }

    fn flagged(figures: &[SegmentFigure]) -> Vec<&str> {
        figures.iter().filter(|f| f.worse).map(|f| f.segment.as_str()).collect()
    }

    /// A region that was scored like the others at its baseline and is scored at random now:
    /// that one is flagged, the others not, and the spread across regions says so.
    #[test]
    fn a_region_that_got_worse_is_flagged() {
        let then = churn_figures(&[], 3).figures;
        let ChurnBank {
            figures: now,
            labels,
            scores,
            regions,
        } = churn_figures(&["E"], 7);
        assert_eq!(now.len(), 5);
        // Each group's AUC, read off the whole's order, is that of its own rows sorted apart.
        for figure in &now {
            let rows: Vec<usize> = (0..labels.len())
                .filter(|i| regions[*i] == Some(figure.segment.as_str()))
                .collect();
            let l: Vec<bool> = rows.iter().map(|i| labels[*i]).collect();
            let s: Vec<f64> = rows.iter().map(|i| scores[*i]).collect();
            assert_eq!(
                figure.value,
                Ranked::new(&l, &s).unwrap().roc_auc(),
                "{}",
                figure.segment
            );
            assert_eq!(figure.rows, rows.len());
            assert!(
                figure.standard_error > 0.0 && figure.standard_error < 0.02,
                "{figure:?}"
            );
        }
        let judged = judged(now.clone(), baselines(&then), FDR);
        assert_eq!(flagged(&judged), ["E"]);
        assert!(judged.iter().all(|f| f.baseline.is_some() && f.tested));
        let spread = region_spread(&judged).unwrap();
        assert!(spread.lowest < 0.6 && spread.highest > 0.85, "{spread:?}");
        // Without baselines (the version's first benchmark) nothing is tested.
        let first = judged_without_baselines(now);
        assert!(
            first
                .iter()
                .all(|f| !f.worse && !f.tested && f.p_value == 1.0 && f.baseline.is_none())
        );
    }

    fn judged_without_baselines(figures: Vec<SegmentFigure>) -> Vec<SegmentFigure> {
        judged(figures, |_| None, FDR)
    }

    /// A region scored at random at its baseline too: a lasting difference, known since, is no
    /// finding — however far below the whole it is.
    #[test]
    fn a_lasting_difference_is_not_flagged() {
        let then = churn_figures(&["E"], 3).figures;
        let now = churn_figures(&["E"], 7).figures;
        let e = now.iter().find(|f| f.segment == "E").unwrap();
        assert!(e.value < e.overall - 0.1, "{e:?}");
        let judged = judged(now, baselines(&then), FDR);
        assert!(flagged(&judged).is_empty(), "{judged:?}");
    }

    /// Recommendations for clients of region "E" hit half as often as at the baseline: that
    /// region alone is flagged, and each group's figure is the mean of its clients'.
    #[test]
    fn a_region_with_worse_recommendations_is_flagged() {
        let measure = |worse: Option<&str>| {
            let mut users = Vec::new();
            let mut regions = Vec::new();
            for (r, region) in ["A", "B", "C", "D", "E"].into_iter().enumerate() {
                for i in 0..1_000 {
                    let hits = if Some(region) == worse {
                        [0, 1, 0, 0][i % 4]
                    } else {
                        [0, 1, 1, 0][i % 4]
                    };
                    let precision = f64::from(hits) / 5.0;
                    let figures = UserAccuracy {
                        precision,
                        recall: f64::from(hits),
                        ndcg: f64::from(hits),
                        hit: f64::from(hits),
                        average_precision: f64::from(hits),
                    };
                    users.push((r * 1_000 + i, figures));
                    regions.push(Some(region));
                }
            }
            let overall = ranking::summarize(&users, 5).unwrap();
            let figures = recommender(&users, &overall, &[Dimension::new("region", regions)], MIN_CLIENTS);
            (figures, users, overall)
        };
        let (then, ..) = measure(None);
        let (now, users, overall) = measure(Some("E"));
        let judged = judged(now, baselines(&then), FDR);
        assert_eq!(flagged(&judged), ["E"]);
        assert!((judged[4].value - 0.05).abs() < 1e-12 && (judged[0].value - 0.1).abs() < 1e-12);
        let nowhere = Dimension::new("region", vec![None; 5_000]);
        assert!(recommender(&users, &overall, &[nowhere], MIN_CLIENTS).is_empty());
    }

    /// Managers' errors in one region twice as large as at the baseline: flagged; the same
    /// errors as at the baseline, in a region that always was harder: not.
    #[test]
    fn a_region_whose_errors_grew_is_flagged() {
        let measure = |scale_of: &dyn Fn(&str) -> f64, seed: u64| {
            let mut uniform = uniform(seed);
            let (mut truth, mut predicted, mut regions) = (Vec::new(), Vec::new(), Vec::new());
            for region in ["Capital", "East", "North", "South", "West"] {
                for _ in 0..60 {
                    let t = 100.0 * uniform();
                    truth.push(t);
                    predicted.push(t + scale_of(region) * (uniform() - 0.5));
                    regions.push(Some(region));
                }
            }
            performance(
                ModelKind::Manager,
                &truth,
                &predicted,
                &[Dimension::new("region", regions)],
            )
        };
        let capital_harder = |r: &str| if r == "Capital" { 20.0 } else { 10.0 };
        // The same draws: Capital's lasting difference cancels exactly (p = ½ everywhere).
        let then = measure(&capital_harder, 1);
        let steady = judged(measure(&capital_harder, 1), baselines(&then), FDR);
        assert!(steady.iter().all(|f| f.p_value == 0.5 && !f.worse), "{steady:?}");
        let west_grew = |r: &str| match r {
            "Capital" => 20.0,
            "West" => 20.0,
            _ => 10.0,
        };
        // The same draws but West's errors twice as large.
        let grown = judged(measure(&west_grew, 1), baselines(&then), FDR);
        assert_eq!(flagged(&grown), ["West"]);
        // The same change on 20 managers a region: shown, not tested.
        let few = |scale_of: &dyn Fn(&str) -> f64, seed: u64| {
            let figures = measure(scale_of, seed);
            figures
                .into_iter()
                .map(|f| SegmentFigure { rows: 20, ..f })
                .collect::<Vec<_>>()
        };
        let then = few(&capital_harder, 1);
        let untested = judged(few(&west_grew, 1), baselines(&then), FDR);
        assert!(
            untested
                .iter()
                .all(|f| !f.tested && f.p_value == 1.0 && !f.worse && f.baseline.is_some()),
            "{untested:?}"
        );
    }

    /// Groups come out ascending by name whatever order rows name them in; rows without a
    /// value belong to none.
    #[test]
    fn a_dimension_numbers_its_groups_by_name() {
        let dimension = Dimension::new("region", [Some("S"), None, Some("N"), Some("S"), Some("E")]);
        let members: Vec<(&str, Vec<usize>)> = dimension.members().collect();
        assert_eq!(members, [("E", vec![4]), ("N", vec![2]), ("S", vec![0, 3])]);
        assert_eq!(dimension.group_of(1), None);
        assert_eq!(dimension.group_of(3), Some(2));
        assert_eq!(dimension.group_of(9), None);
    }

    #[test]
    fn small_groups_are_not_measured() {
        let truth = [50.0, 60.0, 70.0, 55.0];
        let predicted = [52.0, 58.0, 71.0, 50.0];
        let regions = Dimension::new("region", ["N", "N", "S", "S"].map(Some));
        assert!(performance(ModelKind::Agency, &truth, &predicted, &[regions]).is_empty());
    }
}
