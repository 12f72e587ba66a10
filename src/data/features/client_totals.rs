//! Per-client totals of a snapshot's holdings and activity, added up in one pass over each
//! table's rows into arrays indexed by the client's row in a table of clients (the features'
//! kept clients, in `cli` order: nothing is gathered or joined afterwards).
//!
//! Why not polars' `group_by`: with a million clients of two or three rows each, polars
//! aggregates client by client (a closure call per client per total), which took 2.1 s for the
//! holdings' 21 totals and 0.9 s for the activity's 10 at 1M clients — more than half of
//! building a snapshot's features. A pass over the rows per table takes a small fraction of
//! that. The totals are the same values bit for bit (the tests compare both on generated
//! snapshots): counts are exact, and balances are added with polars' own Kahan summation, in
//! the table's row order, a lone row's balance taken as it is — what polars' `sum` over a
//! group does.
//!
//! Rows of a client missing from that table are left out (a join of the totals to it would
//! drop them anyway); validation refuses rows of unknown clients, as it refuses repeated
//! clients and products, on which a `group_by` and a join would differ.
//!
//! One input gives other bits than polars did: a Parquet export whose metadata declares `cli`
//! sorted made polars sum each client's slice of rows without Kahan's compensation; these
//! totals are Kahan sums whatever the file's metadata says.

use super::{CLOSING_HORIZON_DAYS, CREDIT_CATEGORIES, DEPOSIT_CATEGORIES};
use crate::data::client_rows::ClientRows;
use crate::data::products::holding_categories;
use crate::data::snapshot::Snapshot;
use crate::data::synth::catalog::CATEGORIES;
use crate::data::values::optional_values;
use polars::prelude::*;
use polars_utils::kahan_sum::KahanSum;

/// Per-client totals: columns of one value per row of the table of clients they were added up
/// for, in its order — a client without rows has zero counts and sums and no largest value,
/// what a left join of polars' `group_by` and a `fill_null(0)` of its counts and sums give.
pub(super) struct Totals {
    pub(super) columns: Vec<Column>,
    /// Counted rows per client.
    #[cfg(test)]
    rows: Vec<u32>,
}

impl Totals {
    fn new(columns: Vec<Column>, rows: Vec<u32>) -> Totals {
        #[cfg(not(test))]
        let _ = rows;
        Totals {
            columns,
            #[cfg(test)]
            rows,
        }
    }
}

#[cfg(test)]
impl Totals {
    /// As polars' `group_by("cli")` gives them: `cli` and the columns, one row per client
    /// with counted rows.
    pub(super) fn frame(&self, clients: &ClientIds) -> PolarsResult<DataFrame> {
        let with_rows: Vec<IdxSize> = (0..self.rows.len())
            .filter(|client| self.rows[*client] > 0)
            .map(|client| client as IdxSize)
            .collect();
        let mut all = vec![Column::new("cli".into(), &clients.ids)];
        all.extend(self.columns.iter().cloned());
        DataFrame::new_infer_height(all)?.take(&IdxCa::from_vec("rows".into(), with_rows))
    }
}

/// Per-client float sums as polars' `sum` over a group gives them: Kahan sums in row order;
/// a client's lone row gives its value unchanged (so −0 stays −0), a missing value adds
/// nothing and a lone missing one gives 0.
struct FloatSums {
    sums: Vec<KahanSum<f64>>,
    first: Vec<f64>,
}

impl FloatSums {
    fn new(clients: usize) -> FloatSums {
        FloatSums {
            sums: vec![KahanSum::default(); clients],
            first: vec![0.0; clients],
        }
    }

    /// Adds the client's next row; `first` when it is the client's first counted row.
    fn add(&mut self, client: usize, first: bool, value: Option<f64>) {
        if first {
            self.first[client] = value.unwrap_or(0.0);
        }
        if let Some(value) = value {
            self.sums[client] += value;
        }
    }

    fn finish(self, rows: &[u32]) -> Vec<f64> {
        self.sums
            .iter()
            .zip(self.first)
            .zip(rows)
            .map(|((sum, first), rows)| if *rows == 1 { first } else { sum.sum() })
            .collect()
    }
}

/// The larger of a running maximum and a value, a missing value leaving it as it is.
fn raise(largest: &mut Option<i32>, value: Option<i32>) {
    if let Some(value) = value {
        *largest = Some(largest.map_or(value, |l| l.max(value)));
    }
}

/// The ids of a table of clients (the clients table, a features table), and their rows for
/// lookups.
pub(super) struct ClientIds {
    ids: Vec<i64>,
    rows: ClientRows,
}

impl ClientIds {
    /// `frame`'s `cli` column.
    pub(super) fn of(frame: &DataFrame) -> PolarsResult<ClientIds> {
        // A missing id (validation refuses one) becomes −1 so rows stay aligned; rows naming
        // client −1 would total against it, and the join on `cli` then treats them as before.
        let ids: Vec<i64> = optional_values(frame.column("cli")?.i64()?)
            .map(|id| id.unwrap_or(-1))
            .collect();
        let rows = ClientRows::new(&ids);
        Ok(ClientIds { ids, rows })
    }
}

/// Per-client totals of the holdings opened by `day`: products ever held, active, opened and
/// closed lately, days since the last opening and closing, balances, active products per
/// category — polars' `group_by("cli")` of `holdings_at(day)`, as [`Totals`].
pub(super) fn holding_totals(snapshot: &Snapshot, day: i32, clients: &ClientIds) -> PolarsResult<Totals> {
    let holdings = &snapshot.holdings;
    // Each holding's category as its position in CATEGORIES (none: another category).
    let category = holding_categories(&snapshot.catalog, holdings, |name| {
        CATEGORIES.iter().position(|c| *c == name).map(|c| c as u8)
    })?;
    let among = |names: &[&str]| CATEGORIES.map(|c| names.contains(&c));
    let (deposit, credit) = (among(&DEPOSIT_CATEGORIES), among(&CREDIT_CATEGORIES));
    let month_start = crate::data::date::Date(day).month_start().0;
    let n = clients.ids.len();
    let mut rows = vec![0u32; n];
    let [mut active, mut closed_90d, mut opened_90d, mut opened_month] = std::array::from_fn(|_| vec![0i64; n]);
    let mut n_active: Vec<Vec<i64>> = vec![vec![0i64; n]; CATEGORIES.len()];
    let (mut last_opened, mut last_closed) = (vec![None; n], vec![None; n]);
    let [mut balance_total, mut balance_deposits, mut balance_credit] = std::array::from_fn(|_| FloatSums::new(n));
    let each_row = optional_values(holdings.column("cli")?.i64()?)
        .zip(optional_values(holdings.column("opened_on")?.date()?.physical()))
        .zip(optional_values(holdings.column("closed_on")?.date()?.physical()))
        .zip(optional_values(holdings.column("balance")?.f64()?))
        .zip(category);
    // One pass over the rows, each total kept as it goes: the exports list each client's
    // holdings together, so a client's totals stay in cache.
    for ((((id, opened), closed), balance), category) in each_row {
        let Some(client) = id.and_then(|id| clients.rows.row(id)) else {
            continue;
        };
        let Some(opened) = opened.filter(|o| *o <= day) else {
            continue;
        };
        rows[client] += 1;
        let first = rows[client] == 1;
        let is_active = closed.is_none_or(|c| c > day);
        active[client] += i64::from(is_active);
        closed_90d[client] += i64::from(closed.is_some_and(|c| c > day - 90));
        opened_90d[client] += i64::from(opened > day - 90);
        opened_month[client] += i64::from(opened >= month_start);
        raise(&mut last_opened[client], Some(opened));
        raise(&mut last_closed[client], closed);
        let active_in = |of: &[bool]| is_active && category.is_some_and(|c| of[usize::from(c)]);
        if let Some(c) = category.filter(|_| is_active) {
            n_active[usize::from(c)][client] += 1;
        }
        // A row left out of a balance adds 0.0, as `when(..).then(balance).otherwise(0.0).sum()` does.
        let only = |counts: bool| if counts { balance } else { Some(0.0) };
        balance_total.add(client, first, only(is_active));
        balance_deposits.add(client, first, only(active_in(&deposit)));
        balance_credit.add(client, first, only(active_in(&credit)));
    }
    let categories_active: Vec<i64> = (0..n)
        .map(|client| n_active.iter().filter(|counts| counts[client] > 0).count() as i64)
        .collect();
    let last_opening: Vec<Option<i32>> = last_opened
        .into_iter()
        .map(|last| last.map(|l: i32| day.wrapping_sub(l)))
        .collect();
    // Capped: an export holds closings only since its first month, so uncapped the largest
    // values grow with the history's length and drift by construction.
    let last_closing: Vec<Option<i32>> = last_closed
        .into_iter()
        .map(|last| last.map(|l: i32| day.wrapping_sub(l).min(CLOSING_HORIZON_DAYS)))
        .collect();
    let mut columns = vec![
        Column::new(
            "n_products_ever".into(),
            rows.iter().map(|r| i64::from(*r)).collect::<Vec<i64>>(),
        ),
        Column::new("n_products_active".into(), active),
        Column::new("n_products_closed_90d".into(), closed_90d),
        Column::new("n_products_opened_90d".into(), opened_90d),
        Column::new("n_products_opened_month".into(), opened_month),
        Column::new("days_since_last_opening".into(), last_opening),
        Column::new("days_since_last_closing".into(), last_closing),
        Column::new("balance_total".into(), balance_total.finish(&rows)),
        Column::new("balance_deposits".into(), balance_deposits.finish(&rows)),
        Column::new("balance_credit".into(), balance_credit.finish(&rows)),
    ];
    columns.extend(
        CATEGORIES
            .iter()
            .zip(n_active)
            .map(|(name, counts)| Column::new(format!("n_active_{name}").into(), counts)),
    );
    columns.push(Column::new("n_categories_active".into(), categories_active));
    Ok(Totals::new(columns, rows))
}

/// Each client's churn outcome from a later snapshot's holdings: 1 when the client held a
/// product at `day` and none at `horizon_day` — polars' `group_by("cli")` of `holdings_at`
/// in `add_churn_label`, as a `churn` column (0 for the clients without holdings then).
pub(super) fn churn_outcome(later: &Snapshot, day: i32, horizon_day: i32, clients: &ClientIds) -> PolarsResult<Totals> {
    let holdings = &later.holdings;
    let n = clients.ids.len();
    let (mut rows, mut held_then, mut held_after) = (vec![0u32; n], vec![0u32; n], vec![0u32; n]);
    let each_row = optional_values(holdings.column("cli")?.i64()?)
        .zip(optional_values(holdings.column("opened_on")?.date()?.physical()))
        .zip(optional_values(holdings.column("closed_on")?.date()?.physical()));
    for ((id, opened), closed) in each_row {
        let Some(client) = id.and_then(|id| clients.rows.row(id)) else {
            continue;
        };
        let Some(opened) = opened.filter(|o| *o <= later.date.0) else {
            continue;
        };
        rows[client] += 1;
        let held_at = |t: i32| u32::from(opened <= t && closed.is_none_or(|c| c > t));
        held_then[client] += held_at(day);
        held_after[client] += held_at(horizon_day);
    }
    let churned: Vec<i32> = held_then
        .into_iter()
        .zip(held_after)
        .map(|(then, after)| i32::from(then > 0 && after == 0))
        .collect();
    Ok(Totals::new(vec![Column::new(super::CHURN_LABEL.into(), churned)], rows))
}

/// Per-client totals of the activity of the three months starting `months` (this month
/// first): logins and transactions per month, complaints, months with activity — polars'
/// `group_by("cli")` of the activity, as [`Totals`].
pub(super) fn activity_totals(snapshot: &Snapshot, months: [i32; 3], clients: &ClientIds) -> PolarsResult<Totals> {
    let activity = &snapshot.activity;
    let n = clients.ids.len();
    let mut rows = vec![0u32; n];
    let [mut logins, mut transactions]: [[Vec<i64>; 3]; 2] =
        std::array::from_fn(|_| std::array::from_fn(|_| vec![0i64; n]));
    let (mut complaints_3m, mut complaints_m0) = (vec![0i64; n], vec![0i64; n]);
    let measure = |name: &str| -> PolarsResult<_> { Ok(optional_values(activity.column(name)?.i64()?)) };
    let each_row = optional_values(activity.column("cli")?.i64()?)
        .zip(optional_values(activity.column("month")?.date()?.physical()))
        .zip(measure("logins")?)
        .zip(measure("transactions")?)
        .zip(measure("complaints")?);
    // A missing count adds nothing, as polars' integer `sum` over a group.
    let add = |sum: &mut i64, value: Option<i64>| *sum = sum.wrapping_add(value.unwrap_or(0));
    for ((((id, month), login), transaction), complaint) in each_row {
        let Some(client) = id.and_then(|id| clients.rows.row(id)) else {
            continue;
        };
        let Some(month) = month.filter(|m| *m >= months[2] && *m <= months[0]) else {
            continue;
        };
        rows[client] += 1;
        if let Some(k) = months.iter().position(|m| *m == month) {
            add(&mut logins[k][client], login);
            add(&mut transactions[k][client], transaction);
        }
        add(&mut complaints_3m[client], complaint);
        if month == months[0] {
            add(&mut complaints_m0[client], complaint);
        }
    }
    let mut columns = Vec::new();
    for (name, sums) in [("logins", logins), ("transactions", transactions)] {
        for (k, sums) in sums.into_iter().enumerate() {
            columns.push(Column::new(format!("{name}_m{k}").into(), sums));
        }
    }
    columns.extend([
        Column::new("complaints_3m".into(), complaints_3m),
        Column::new("complaints_m0".into(), complaints_m0),
        Column::new(
            "months_with_activity".into(),
            rows.iter().map(|r| i64::from(*r)).collect::<Vec<i64>>(),
        ),
    ]);
    Ok(Totals::new(columns, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::date::Date;
    use crate::data::synth::rng::Rng;

    /// Holdings with their category, opening/closing as day numbers and an `active` flag at `day`.
    fn holdings_at(snapshot: &Snapshot, day: i32) -> LazyFrame {
        let d = lit(day);
        snapshot
            .holdings
            .clone()
            .lazy()
            .join(
                snapshot
                    .catalog
                    .clone()
                    .lazy()
                    .select([col("product_id"), col("category")]),
                [col("product_id")],
                [col("product_id")],
                JoinArgs::new(JoinType::Left),
            )
            .with_columns([
                col("opened_on").cast(DataType::Int32).alias("opened"),
                col("closed_on").cast(DataType::Int32).alias("closed"),
            ])
            .filter(col("opened").lt_eq(d.clone()))
            .with_column(col("closed").is_null().or(col("closed").gt(d)).alias("active"))
    }

    fn count(condition: Expr) -> Expr {
        condition.cast(DataType::Int64).sum()
    }

    /// The polars expressions these totals replace, kept as the reference they must equal.
    fn reference_holdings(snapshot: &Snapshot, day: i32) -> PolarsResult<DataFrame> {
        let d = lit(day);
        let month_start = Date(day).month_start().0;
        let active = col("active");
        let since_closing = d.clone() - col("closed").max();
        let in_categories = |names: &[&str]| {
            names
                .iter()
                .map(|n| col("category").eq(lit(*n)))
                .reduce(|a, b| a.or(b))
                .unwrap_or(lit(false))
        };
        let balance_where = |when_: Expr| when(when_).then(col("balance")).otherwise(lit(0.0)).sum();
        let mut aggs = vec![
            len().cast(DataType::Int64).alias("n_products_ever"),
            count(active.clone()).alias("n_products_active"),
            count(col("closed").gt(lit(day - 90))).alias("n_products_closed_90d"),
            count(col("opened").gt(lit(day - 90))).alias("n_products_opened_90d"),
            count(col("opened").gt_eq(lit(month_start))).alias("n_products_opened_month"),
            (d.clone() - col("opened").max()).alias("days_since_last_opening"),
            when(since_closing.clone().gt(lit(CLOSING_HORIZON_DAYS)))
                .then(lit(CLOSING_HORIZON_DAYS))
                .otherwise(since_closing)
                .alias("days_since_last_closing"),
            balance_where(active.clone()).alias("balance_total"),
            balance_where(active.clone().and(in_categories(&DEPOSIT_CATEGORIES))).alias("balance_deposits"),
            balance_where(active.clone().and(in_categories(&CREDIT_CATEGORIES))).alias("balance_credit"),
        ];
        for category in CATEGORIES {
            aggs.push(
                count(active.clone().and(col("category").eq(lit(category)))).alias(format!("n_active_{category}")),
            );
        }
        holdings_at(snapshot, day)
            .group_by([col("cli")])
            .agg(aggs)
            .with_column(
                CATEGORIES
                    .iter()
                    .map(|c| col(format!("n_active_{c}")).gt(lit(0)).cast(DataType::Int64))
                    .reduce(|a, b| a + b)
                    .unwrap_or(lit(0i64))
                    .alias("n_categories_active"),
            )
            .collect()
    }

    fn reference_outcome(later: &Snapshot, day: i32, horizon_day: i32) -> PolarsResult<DataFrame> {
        let active_at = |t: i32| {
            count(
                col("opened")
                    .lt_eq(lit(t))
                    .and(col("closed").is_null().or(col("closed").gt(lit(t)))),
            )
        };
        holdings_at(later, later.date.0)
            .group_by([col("cli")])
            .agg([
                active_at(day).alias("held_then"),
                active_at(horizon_day).alias("held_after"),
            ])
            .select([
                col("cli"),
                col("held_then")
                    .gt(lit(0))
                    .and(col("held_after").eq(lit(0)))
                    .cast(DataType::Int32)
                    .alias(super::super::CHURN_LABEL),
            ])
            .collect()
    }

    fn reference_activity(snapshot: &Snapshot, months: [i32; 3]) -> PolarsResult<DataFrame> {
        let in_month = |k: usize| col("month_day").eq(lit(months[k]));
        let mut aggs = Vec::new();
        for measure in ["logins", "transactions"] {
            for k in 0..3 {
                aggs.push(
                    when(in_month(k))
                        .then(col(measure))
                        .otherwise(lit(0i64))
                        .sum()
                        .alias(format!("{measure}_m{k}")),
                );
            }
        }
        aggs.push(col("complaints").sum().alias("complaints_3m"));
        aggs.push(
            when(in_month(0))
                .then(col("complaints"))
                .otherwise(lit(0i64))
                .sum()
                .alias("complaints_m0"),
        );
        aggs.push(len().cast(DataType::Int64).alias("months_with_activity"));
        snapshot
            .activity
            .clone()
            .lazy()
            .with_column(col("month").cast(DataType::Int32).alias("month_day"))
            .filter(
                col("month_day")
                    .gt_eq(lit(months[2]))
                    .and(col("month_day").lt_eq(lit(months[0]))),
            )
            .group_by([col("cli")])
            .agg(aggs)
            .collect()
    }

    fn dates(name: &str, days: Vec<Option<i32>>) -> Column {
        crate::data::date::date_column(name, days)
    }

    /// A bank whose rows exercise every branch: clients with no, one and many holdings, rows
    /// of unknown clients and products, openings after the snapshot, closings before, after
    /// and missing, missing, negative-zero and wildly different balances (where Kahan
    /// summation and plain addition part), activity outside the three months, missing counts;
    /// the big tables in two chunks, as a Parquet file's row groups give them.
    fn bank(seed: u64) -> Snapshot {
        let mut rng = Rng::new(seed);
        let date = Date::from_ymd(2025, 6, 30).expect("a date");
        let day = date.0;
        // A thousand holders of three rows on average: many hold one, many several.
        let clients: Vec<i64> = (0..2000).map(|i| 1000 + 3 * i).collect();
        let products: Vec<String> = (0..CATEGORIES.len() + 2).map(|p| format!("P{p}")).collect();
        let mut categories: Vec<Option<String>> = CATEGORIES.iter().map(|c| Some(c.to_string())).collect();
        categories.extend([Some("other".to_string()), None]);
        let catalog = DataFrame::new_infer_height(vec![
            Column::new("product_id".into(), products.clone()),
            Column::new("category".into(), categories),
        ])
        .expect("catalog");
        let pick_client = |rng: &mut Rng| {
            if rng.bernoulli(0.02) {
                7 // in no clients table
            } else {
                clients[rng.below(clients.len() as u64 / 2) as usize * 2] // half the clients hold nothing
            }
        };
        let maybe_day = |rng: &mut Rng, p_missing: f64, low: i32, high: i32| {
            (!rng.bernoulli(p_missing)).then(|| rng.range(i64::from(low), i64::from(high)) as i32)
        };
        let half = |rows: usize, part: &mut dyn FnMut(usize) -> DataFrame| {
            let mut first = part(rows / 2);
            first.vstack_mut(&part(rows - rows / 2)).expect("same columns");
            first
        };
        let holdings = half(3000, &mut |rows| {
            let mut cli = Vec::new();
            let (mut product, mut opened, mut closed, mut balance) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rows {
                cli.push(pick_client(&mut rng));
                product.push(if rng.bernoulli(0.01) {
                    "P99".to_string()
                } else {
                    products[rng.below(products.len() as u64) as usize].clone()
                });
                opened.push(maybe_day(&mut rng, 0.01, day - 400, day + 40));
                closed.push(maybe_day(&mut rng, 0.6, day - 200, day + 40));
                balance.push(match rng.below(8) {
                    0 => None,
                    1 => Some(-0.0),
                    2 => Some(1e16 * rng.uniform()),
                    _ => Some(rng.log_normal(7.0, 2.0)),
                });
            }
            DataFrame::new_infer_height(vec![
                Column::new("cli".into(), cli),
                Column::new("product_id".into(), product),
                dates("opened_on", opened),
                dates("closed_on", closed),
                Column::new("balance".into(), balance),
            ])
            .expect("holdings")
        });
        let activity = half(2400, &mut |rows| {
            let mut cli = Vec::new();
            let mut month = Vec::new();
            let mut counts: [Vec<Option<i64>>; 3] = Default::default();
            for _ in 0..rows {
                cli.push(pick_client(&mut rng));
                let back = rng.range(-1, 4) as i32;
                month.push((!rng.bernoulli(0.01)).then(|| date.month_end_after(-back).month_start().0));
                for values in &mut counts {
                    values.push((!rng.bernoulli(0.05)).then(|| rng.range(0, 40)));
                }
            }
            let [logins, transactions, complaints] = counts;
            DataFrame::new_infer_height(vec![
                Column::new("cli".into(), cli),
                dates("month", month),
                Column::new("logins".into(), logins),
                Column::new("transactions".into(), transactions),
                Column::new("complaints".into(), complaints),
            ])
            .expect("activity")
        });
        let clients = DataFrame::new_infer_height(vec![Column::new("cli".into(), clients)]).expect("clients");
        Snapshot::of_tables(date, clients, holdings, catalog, activity)
    }

    /// Both frames' rows by client, every column the same type and the same bits.
    fn assert_same(ours: &DataFrame, reference: &DataFrame, what: &str) {
        // The reference also groups rows of clients missing from the clients table.
        let reference = reference
            .clone()
            .lazy()
            .filter(col("cli").neq(lit(7i64)))
            .sort(["cli"], Default::default())
            .collect()
            .expect("sorted");
        let ours = ours.sort(["cli"], Default::default()).expect("sorted");
        assert_eq!(ours.height(), reference.height(), "{what}: clients");
        assert!(ours.height() > 100, "{what}: {} clients only", ours.height());
        let mut names: Vec<&str> = reference.get_column_names().iter().map(|n| n.as_str()).collect();
        names.sort_unstable();
        let mut our_names: Vec<&str> = ours.get_column_names().iter().map(|n| n.as_str()).collect();
        our_names.sort_unstable();
        assert_eq!(our_names, names, "{what}: columns");
        for name in names {
            super::super::tests::assert_same_column(
                ours.column(name).expect("ours"),
                reference.column(name).expect("reference"),
                what,
            );
        }
    }

    #[test]
    fn totals_equal_polars_group_by_bit_for_bit() {
        for seed in 0..4 {
            let snapshot = bank(seed);
            let ids = ClientIds::of(&snapshot.clients).expect("ids");
            let day = snapshot.date.0;
            let ours = holding_totals(&snapshot, day, &ids)
                .and_then(|t| t.frame(&ids))
                .expect("totals");
            assert_same(
                &ours,
                &reference_holdings(&snapshot, day).expect("reference"),
                "holdings",
            );
            let months: [i32; 3] = std::array::from_fn(|k| snapshot.date.month_end_after(-(k as i32)).month_start().0);
            let ours = activity_totals(&snapshot, months, &ids)
                .and_then(|t| t.frame(&ids))
                .expect("totals");
            assert_same(
                &ours,
                &reference_activity(&snapshot, months).expect("reference"),
                "activity",
            );
            // The snapshot as the later one of a snapshot 60 days earlier, with a 45-day horizon.
            let ours = churn_outcome(&snapshot, day - 60, day - 15, &ids)
                .and_then(|t| t.frame(&ids))
                .expect("outcome");
            let reference = reference_outcome(&snapshot, day - 60, day - 15).expect("reference");
            assert_same(&ours, &reference, "churn outcome");
            let churners = ours
                .column("churn")
                .and_then(|c| c.i32().cloned())
                .expect("churn")
                .sum();
            assert!(
                churners.is_some_and(|n| n > 10),
                "{churners:?} churners: too few to tell"
            );
        }
    }

    #[test]
    fn balances_are_kahan_sums_in_row_order() {
        // 1e16 + 1 + 1 − 1e16: plain addition in row order loses both ones, Kahan keeps them.
        let mut snapshot = bank(0);
        let day = snapshot.date.0;
        let opened = Some(day - 10);
        snapshot.holdings = DataFrame::new_infer_height(vec![
            Column::new("cli".into(), vec![1000i64; 4]),
            Column::new("product_id".into(), vec!["P0"; 4]),
            dates("opened_on", vec![opened; 4]),
            dates("closed_on", vec![None; 4]),
            Column::new("balance".into(), vec![1e16, 1.0, 1.0, -1e16]),
        ])
        .expect("holdings");
        let ids = ClientIds::of(&snapshot.clients).expect("ids");
        let ours = holding_totals(&snapshot, day, &ids)
            .and_then(|t| t.frame(&ids))
            .expect("totals");
        let total = ours
            .column("balance_total")
            .and_then(|c| c.f64().cloned())
            .expect("total");
        assert_eq!(total.get(0), Some(2.0));
    }
}
