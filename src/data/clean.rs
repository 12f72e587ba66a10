//! Cleaning, after validation: the documented, counted changes we make to valid data.
//!
//! 1. Missing `sex`, `segment`, `region`, `income_band` → `"Unknown"` (a category of its own).
//! 2. Missing `balance` → 0; missing `logins`, `transactions`, `complaints` → 0.
//! 3. A `birth_date` giving an age outside `[min_age_years, max_age_years]` at the snapshot
//!    date → missing (features leave the age empty rather than invent one).
//! 4. Balances above the `cap_quantile` of their product category, and activity counts above
//!    that quantile of their column, are capped at it (winsorising). Only where at least
//!    [`MIN_VALUES_TO_CAP`] values exist, so a small bank's extremes are left alone.
//!
//! Every change is counted in the [`CleaningReport`], written beside the features.

use crate::config::CleaningConfig;
use crate::data::snapshot::Snapshot;
use polars::prelude::*;
use std::collections::HashMap;

pub const MIN_VALUES_TO_CAP: usize = 1000;

/// What a missing category becomes: data-quality checks count it as missing.
pub const UNKNOWN: &str = "Unknown";

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CleaningReport {
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub table: String,
    pub column: String,
    pub rule: String,
    pub rows: usize,
}

impl CleaningReport {
    fn record(&mut self, table: &'static str, column: &'static str, rule: String, rows: usize) {
        if rows > 0 {
            self.changes.push(Change {
                table: table.into(),
                column: column.into(),
                rule,
                rows,
            });
        }
    }
}

/// The winsorising caps of a snapshot: each product category's balance cap, each activity
/// column's count cap (only where enough values exist to cap at all).
///
/// Workers each holding a share of the clients clean with the caps of the whole snapshot,
/// which `bankml bucketize` computes and each worker's share carries as [`CAPS_FILE`]: capped
/// at their share's own quantiles, their features would not be the bank's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Caps {
    pub balance: std::collections::BTreeMap<String, f64>,
    pub activity: std::collections::BTreeMap<String, i64>,
}

/// The caps a snapshot folder carries, when it holds a share of a bigger snapshot.
pub const CAPS_FILE: &str = "cleaning_caps.json";

const COUNT_COLUMNS: [&str; 3] = ["logins", "transactions", "complaints"];

/// The caps of `snapshot` at quantile `q`, as exported or as cleaning sees it (the same:
/// missing counts count as the zeros they become, missing balances are never capped).
pub fn caps_of(snapshot: &Snapshot, q: f64) -> Caps {
    caps_with(snapshot, holding_balances(snapshot).as_ref(), q)
}

/// [`caps_of`] with the holdings' balances already read.
fn caps_with(snapshot: &Snapshot, holdings: Option<&HoldingBalances>, q: f64) -> Caps {
    Caps {
        balance: holdings.map(|h| balance_caps(h, q)).unwrap_or_default(),
        activity: COUNT_COLUMNS
            .iter()
            .filter_map(|c| Some((c.to_string(), count_cap(&snapshot.activity, c, q)?)))
            .collect(),
    }
}

pub fn clean(snapshot: &mut Snapshot, config: &CleaningConfig) -> CleaningReport {
    clean_with(snapshot, config, None)
}

/// [`clean`], capping at `given` caps instead of this snapshot's own (a worker's share).
pub fn clean_with(snapshot: &mut Snapshot, config: &CleaningConfig, given: Option<&Caps>) -> CleaningReport {
    let mut report = CleaningReport::default();
    for column in ["sex", "segment", "region", "income_band"] {
        let rows = fill_text(&mut snapshot.clients, column, UNKNOWN);
        report.record("clients", column, "missing → \"Unknown\"".into(), rows);
    }
    let rows = fill_number(&mut snapshot.holdings, "balance");
    report.record("holdings", "balance", "missing → 0".into(), rows);
    for column in ["logins", "transactions", "complaints"] {
        let rows = fill_number(&mut snapshot.activity, column);
        report.record("activity", column, "missing → 0".into(), rows);
    }
    let rows = blank_implausible_birth_dates(snapshot, config);
    report.record(
        "clients",
        "birth_date",
        format!(
            "age outside {}–{} years → missing",
            config.min_age_years, config.max_age_years
        ),
        rows,
    );
    // Read once, after the fills above: the caps and capping both need every row's category.
    let holdings = holding_balances(snapshot);
    let caps = match given {
        Some(caps) => caps.clone(),
        None => caps_with(snapshot, holdings.as_ref(), config.cap_quantile),
    };
    let rows = holdings.map_or(0, |h| apply_balance_caps(snapshot, h, &caps.balance));
    report.record(
        "holdings",
        "balance",
        format!("above the {} quantile of its category → capped", config.cap_quantile),
        rows,
    );
    for column in COUNT_COLUMNS {
        let rows = caps
            .activity
            .get(column)
            .map_or(0, |cap| apply_count_cap(&mut snapshot.activity, column, *cap));
        report.record(
            "activity",
            column,
            format!("above the {} quantile → capped", config.cap_quantile),
            rows,
        );
    }
    report
}

fn fill_text(frame: &mut DataFrame, column: &str, value: &str) -> usize {
    let Ok(ca) = frame.column(column).and_then(|c| c.str().cloned()) else {
        return 0;
    };
    let missing = ca.null_count();
    if missing > 0 {
        let filled: StringChunked = ca.iter().map(|v| Some(v.unwrap_or(value))).collect();
        let _ = frame.with_column(filled.with_name(column.into()).into_column());
    }
    missing
}

fn fill_number(frame: &mut DataFrame, column: &str) -> usize {
    let Ok(series) = frame.column(column).map(|c| c.as_materialized_series().clone()) else {
        return 0;
    };
    let missing = series.null_count();
    if missing > 0
        && let Ok(filled) = series.fill_null(FillNullStrategy::Zero)
    {
        let _ = frame.with_column(filled.into_column());
    }
    missing
}

fn blank_implausible_birth_dates(snapshot: &mut Snapshot, config: &CleaningConfig) -> usize {
    let Ok(births) = snapshot
        .clients
        .column("birth_date")
        .and_then(|c| c.date().map(|d| d.physical().clone()))
    else {
        return 0;
    };
    let today = snapshot.date.0 as f64;
    let mut changed = 0;
    let cleaned: Vec<Option<i32>> = births
        .iter()
        .map(|b| {
            b.filter(|b| {
                let age = (today - *b as f64) / 365.25;
                let plausible = age >= config.min_age_years && age <= config.max_age_years;
                changed += usize::from(!plausible);
                plausible
            })
        })
        .collect();
    if changed > 0 {
        let _ = snapshot
            .clients
            .with_column(crate::data::date::date_column("birth_date", cleaned));
    }
    changed
}

/// The value at quantile `q` (nearest rank) of `values`, which it reorders.
fn quantile_in_place(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    let (_, v, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*v)
}

/// Each holdings row's product category in `snapshot`: the categories' names, and per row an
/// index into them (none: the product is not in the catalog). Indices, not a `String` per
/// row: at 10M clients the holdings are 31M rows.
fn holding_categories(snapshot: &Snapshot) -> Option<(Vec<String>, Vec<Option<u32>>)> {
    let ids = snapshot
        .catalog
        .column("product_id")
        .and_then(|c| c.str().cloned())
        .ok()?;
    let categories = snapshot
        .catalog
        .column("category")
        .and_then(|c| c.str().cloned())
        .ok()?;
    let mut names: Vec<String> = Vec::new();
    let mut category_of: HashMap<&str, u32> = HashMap::new();
    for (id, category) in ids.iter().zip(categories.iter()) {
        let (Some(id), Some(category)) = (id, category) else {
            continue;
        };
        let index = match names.iter().position(|n| n == category) {
            Some(index) => index,
            None => {
                names.push(category.to_string());
                names.len() - 1
            }
        };
        category_of.insert(id, index as u32);
    }
    let products = snapshot
        .holdings
        .column("product_id")
        .and_then(|c| c.str().cloned())
        .ok()?;
    let rows = products
        .iter()
        .map(|p| p.and_then(|p| category_of.get(p)).copied())
        .collect();
    Some((names, rows))
}

/// The holdings' balances with each row's product category ([`holding_categories`]).
struct HoldingBalances {
    names: Vec<String>,
    categories: Vec<Option<u32>>,
    balances: Float64Chunked,
}

fn holding_balances(snapshot: &Snapshot) -> Option<HoldingBalances> {
    let (names, categories) = holding_categories(snapshot)?;
    let balances = snapshot
        .holdings
        .column("balance")
        .and_then(|c| c.f64().cloned())
        .ok()?;
    Some(HoldingBalances {
        names,
        categories,
        balances,
    })
}

/// Each category's balance cap: the `q` quantile of its positive balances.
fn balance_caps(holdings: &HoldingBalances, q: f64) -> std::collections::BTreeMap<String, f64> {
    let mut by_category: Vec<Vec<f64>> = vec![Vec::new(); holdings.names.len()];
    for (category, balance) in holdings.categories.iter().zip(holdings.balances.iter()) {
        if let (Some(c), Some(b)) = (category, balance)
            && b > 0.0
        {
            by_category[*c as usize].push(b);
        }
    }
    holdings
        .names
        .iter()
        .zip(by_category)
        .filter(|(_, v)| v.len() >= MIN_VALUES_TO_CAP)
        .filter_map(|(c, mut v)| Some((c.clone(), quantile_in_place(&mut v, q)?)))
        .collect()
}

fn apply_balance_caps(
    snapshot: &mut Snapshot,
    holdings: HoldingBalances,
    caps: &std::collections::BTreeMap<String, f64>,
) -> usize {
    let cap_of: Vec<Option<f64>> = holdings.names.iter().map(|n| caps.get(n).copied()).collect();
    let mut changed = 0;
    let capped: Float64Chunked = holdings
        .categories
        .iter()
        .zip(holdings.balances.iter())
        .map(|(c, b)| {
            let cap = c.and_then(|c| cap_of[c as usize]);
            match (b, cap) {
                (Some(b), Some(cap)) if b > cap => {
                    changed += 1;
                    Some(cap)
                }
                (b, _) => b,
            }
        })
        .collect();
    if changed > 0 {
        let _ = snapshot
            .holdings
            .with_column(capped.with_name("balance".into()).into_column());
    }
    changed
}

/// A count column's cap: the `q` quantile of its values, a missing one counting as 0.
fn count_cap(frame: &DataFrame, column: &str, q: f64) -> Option<i64> {
    let values = frame.column(column).and_then(|c| c.i64().cloned()).ok()?;
    let mut sorted: Vec<f64> = values.iter().map(|v| v.unwrap_or(0) as f64).collect();
    if sorted.len() < MIN_VALUES_TO_CAP {
        return None;
    }
    quantile_in_place(&mut sorted, q).map(|cap| cap as i64)
}

fn apply_count_cap(frame: &mut DataFrame, column: &str, cap: i64) -> usize {
    let Ok(values) = frame.column(column).and_then(|c| c.i64().cloned()) else {
        return 0;
    };
    let changed = values.iter().flatten().filter(|v| *v > cap).count();
    if changed > 0 {
        let capped: Int64Chunked = values.iter().map(|v| v.map(|v| v.min(cap))).collect();
        let _ = frame.with_column(capped.with_name(column.into()).into_column());
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantile() {
        let mut v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile_in_place(&mut v, 0.999), Some(999.0));
        assert_eq!(quantile_in_place(&mut v, 1.0), Some(1000.0));
        assert_eq!(quantile_in_place(&mut [], 0.5), None);
    }
}
