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
use crate::data::products;
use crate::data::snapshot::Snapshot;
use polars::prelude::*;

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
    Caps {
        balance: holding_balances(&snapshot.catalog, &snapshot.holdings)
            .map(|h| balance_caps(&h, q))
            .unwrap_or_default(),
        activity: activity_caps(&snapshot.activity, q),
    }
}

fn activity_caps(activity: &DataFrame, q: f64) -> std::collections::BTreeMap<String, i64> {
    COUNT_COLUMNS
        .iter()
        .filter_map(|c| Some((c.to_string(), count_cap(activity, c, q)?)))
        .collect()
}

pub fn clean(snapshot: &mut Snapshot, config: &CleaningConfig) -> CleaningReport {
    clean_with(snapshot, config, None)
}

/// [`clean`], capping at `given` caps instead of this snapshot's own (a worker's share).
///
/// The clients, holdings and activity are cleaned apart, side by side (no rule reads another
/// table's cleaned values); their changes are listed in the order of the rules above.
pub fn clean_with(snapshot: &mut Snapshot, config: &CleaningConfig, given: Option<&Caps>) -> CleaningReport {
    let Snapshot {
        date,
        clients,
        holdings,
        catalog,
        activity,
        ..
    } = snapshot;
    let q = config.cap_quantile;
    let (clients, (holdings, activity)) = rayon::join(
        || clean_clients(clients, *date, config),
        || {
            rayon::join(
                || clean_holdings(holdings, catalog, given.map(|c| &c.balance), q),
                || clean_activity(activity, given.map(|c| &c.activity), q),
            )
        },
    );
    let mut report = CleaningReport::default();
    for (column, rows) in CLIENT_TEXT_COLUMNS.into_iter().zip(clients.filled) {
        report.record("clients", column, "missing → \"Unknown\"".into(), rows);
    }
    report.record("holdings", "balance", "missing → 0".into(), holdings.filled);
    for (column, rows) in COUNT_COLUMNS.into_iter().zip(activity.filled) {
        report.record("activity", column, "missing → 0".into(), rows);
    }
    report.record(
        "clients",
        "birth_date",
        format!(
            "age outside {}–{} years → missing",
            config.min_age_years, config.max_age_years
        ),
        clients.implausible_births,
    );
    report.record(
        "holdings",
        "balance",
        format!("above the {q} quantile of its category → capped"),
        holdings.capped,
    );
    for (column, rows) in COUNT_COLUMNS.into_iter().zip(activity.capped) {
        report.record("activity", column, format!("above the {q} quantile → capped"), rows);
    }
    report
}

const CLIENT_TEXT_COLUMNS: [&str; 4] = ["sex", "segment", "region", "income_band"];

/// Rows changed in the clients table: text filled per column, birth dates blanked.
struct CleanedClients {
    filled: [usize; 4],
    implausible_births: usize,
}

fn clean_clients(clients: &mut DataFrame, date: crate::data::date::Date, config: &CleaningConfig) -> CleanedClients {
    let filled = CLIENT_TEXT_COLUMNS.map(|column| fill_text(clients, column, UNKNOWN));
    let implausible_births = blank_implausible_birth_dates(clients, date, config);
    CleanedClients {
        filled,
        implausible_births,
    }
}

/// Rows changed in the holdings: balances filled, balances capped.
struct CleanedHoldings {
    filled: usize,
    capped: usize,
}

fn clean_holdings(
    holdings: &mut DataFrame,
    catalog: &DataFrame,
    given: Option<&std::collections::BTreeMap<String, f64>>,
    q: f64,
) -> CleanedHoldings {
    let filled = fill_number(holdings, "balance");
    // Read once, after the fill: the caps and capping both need every row's category.
    let capped = holding_balances(catalog, holdings).map_or(0, |balances| {
        let caps = given.cloned().unwrap_or_else(|| balance_caps(&balances, q));
        apply_balance_caps(holdings, balances, &caps)
    });
    CleanedHoldings { filled, capped }
}

/// Rows changed in the activity per count column: filled, capped.
struct CleanedActivity {
    filled: [usize; 3],
    capped: [usize; 3],
}

fn clean_activity(
    activity: &mut DataFrame,
    given: Option<&std::collections::BTreeMap<String, i64>>,
    q: f64,
) -> CleanedActivity {
    let filled = COUNT_COLUMNS.map(|column| fill_number(activity, column));
    let caps = given.cloned().unwrap_or_else(|| activity_caps(activity, q));
    let capped = COUNT_COLUMNS.map(|column| {
        caps.get(column)
            .map_or(0, |cap| apply_count_cap(activity, column, *cap))
    });
    CleanedActivity { filled, capped }
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

fn blank_implausible_birth_dates(
    clients: &mut DataFrame,
    date: crate::data::date::Date,
    config: &CleaningConfig,
) -> usize {
    let Ok(births) = clients
        .column("birth_date")
        .and_then(|c| c.date().map(|d| d.physical().clone()))
    else {
        return 0;
    };
    let today = date.0 as f64;
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
        let _ = clients.with_column(crate::data::date::date_column("birth_date", cleaned));
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

/// Each holdings row's product category, from the catalog: the categories' names, and per row an
/// index into them (none: the product is not in the catalog). Indices, not a `String` per
/// row: at 10M clients the holdings are 31M rows.
fn holding_categories(catalog: &DataFrame, holdings: &DataFrame) -> Option<(Vec<String>, Vec<Option<u32>>)> {
    let mut names: Vec<String> = Vec::new();
    let rows = products::holding_categories(catalog, holdings, |category| {
        let index = match names.iter().position(|n| n == category) {
            Some(index) => index,
            None => {
                names.push(category.to_string());
                names.len() - 1
            }
        };
        Some(index as u32)
    })
    .ok()?;
    Some((names, rows))
}

/// The holdings' balances with each row's product category ([`holding_categories`]).
struct HoldingBalances {
    names: Vec<String>,
    categories: Vec<Option<u32>>,
    balances: Float64Chunked,
}

fn holding_balances(catalog: &DataFrame, holdings: &DataFrame) -> Option<HoldingBalances> {
    let (names, categories) = holding_categories(catalog, holdings)?;
    let balances = holdings.column("balance").and_then(|c| c.f64().cloned()).ok()?;
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
    frame: &mut DataFrame,
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
        let _ = frame.with_column(capped.with_name("balance".into()).into_column());
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

    /// Every rule once, on tables cleaned side by side: the changes are listed in the rules'
    /// order with their counts, worked out by hand below, and the values are the cleaned ones.
    #[test]
    fn every_rule_is_counted_in_order() {
        use crate::data::date::{Date, date_column};
        let date = Date::from_ymd(2025, 6, 30).expect("a date");
        let n = 1200;
        let text = |missing: &[usize]| -> Vec<Option<&str>> {
            (0..n).map(|i| (!missing.contains(&i)).then_some("x")).collect()
        };
        // Two births give ages of 10 and 120 years; the rest 40.
        let births: Vec<Option<i32>> = (0..n)
            .map(|i| {
                Some(date.0 - (365.25 * [40.0, 10.0, 120.0][usize::from(i == 7) + 2 * usize::from(i == 8)]) as i32)
            })
            .collect();
        let clients = DataFrame::new_infer_height(vec![
            Column::new("sex".into(), text(&[1, 2, 3])),
            Column::new("segment".into(), text(&[])),
            Column::new("region".into(), text(&[4])),
            Column::new("income_band".into(), text(&[5, 6])),
            date_column("birth_date", births),
        ])
        .expect("clients");
        // Balances 1..=1500 of one category, 1..=5 missing: the 0.999 nearest rank of the
        // 1,495 positive ones is 1,499, so only 1,500 is capped.
        let balances: Vec<Option<f64>> = (1..=1500).map(|b| (b > 5).then_some(f64::from(b))).collect();
        let holdings = DataFrame::new_infer_height(vec![
            Column::new("product_id".into(), vec!["P0"; 1500]),
            Column::new("balance".into(), balances),
        ])
        .expect("holdings");
        let catalog = DataFrame::new_infer_height(vec![
            Column::new("product_id".into(), ["P0"]),
            Column::new("category".into(), ["cards"]),
        ])
        .expect("catalog");
        // Logins 0..1200 with 10..=13 missing (→ 0): rank 1,198 of 1,200 is 1,198, so only
        // 1,199 is capped; transactions all 1 and complaints all 0 change nothing.
        let logins: Vec<Option<i64>> = (0..n as i64).map(|v| (!(10..=13).contains(&v)).then_some(v)).collect();
        let activity = DataFrame::new_infer_height(vec![
            Column::new("logins".into(), logins),
            Column::new("transactions".into(), vec![1i64; n]),
            Column::new("complaints".into(), vec![0i64; n]),
        ])
        .expect("activity");
        let mut snapshot = Snapshot::of_tables(date, clients, holdings, catalog, activity);
        let report = clean(&mut snapshot, &CleaningConfig::default());
        let listed: Vec<(&str, &str, usize)> = report
            .changes
            .iter()
            .map(|c| (c.table.as_str(), c.column.as_str(), c.rows))
            .collect();
        assert_eq!(
            listed,
            [
                ("clients", "sex", 3),
                ("clients", "region", 1),
                ("clients", "income_band", 2),
                ("holdings", "balance", 5),
                ("activity", "logins", 4),
                ("clients", "birth_date", 2),
                ("holdings", "balance", 1),
                ("activity", "logins", 1),
            ]
        );
        assert!(report.changes[6].rule.contains("0.999 quantile of its category"));
        let column = |frame: &DataFrame, name: &str| frame.column(name).expect("column").clone();
        assert_eq!(
            column(&snapshot.clients, "sex").str().expect("text").get(1),
            Some(UNKNOWN)
        );
        assert_eq!(column(&snapshot.clients, "birth_date").null_count(), 2);
        let balance = column(&snapshot.holdings, "balance");
        let balance = balance.f64().expect("numbers");
        assert_eq!(
            (balance.get(0), balance.get(1498), balance.get(1499)),
            (Some(0.0), Some(1499.0), Some(1499.0))
        );
        let logins = column(&snapshot.activity, "logins");
        let logins = logins.i64().expect("counts");
        assert_eq!(
            (logins.get(10), logins.get(1198), logins.get(1199)),
            (Some(0), Some(1198), Some(1198))
        );
    }

    #[test]
    fn nearest_rank_quantile() {
        let mut v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile_in_place(&mut v, 0.999), Some(999.0));
        assert_eq!(quantile_in_place(&mut v, 1.0), Some(1000.0));
        assert_eq!(quantile_in_place(&mut [], 0.5), None);
    }
}
