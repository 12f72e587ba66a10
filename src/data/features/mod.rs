//! Features per client, manager and agency for one snapshot, computed with polars lazy
//! frames: one row per entity per snapshot, so models can train across months.
//!
//! Targets: `churn` for clients (every product they held at the snapshot closed within
//! the horizon; empty while the horizon has not passed in the data), `performance_score` for
//! managers and agencies (the bank's own monthly scorecard).

use crate::data::date::Date;
use crate::data::snapshot::Snapshot;
use crate::data::synth::catalog::CATEGORIES;
use crate::data::values::{looked_up, optional_values};
use polars::prelude::*;

mod client_totals;

/// The client target: 1 when every product held at the snapshot closed within the horizon.
pub const CHURN_LABEL: &str = "churn";

/// Mean days per month, for tenure in months.
const DAYS_PER_MONTH: f64 = 30.4375;

pub struct Features {
    pub clients: DataFrame,
    pub managers: DataFrame,
    pub agencies: DataFrame,
}

/// New products over the objective; empty where no objective is set (0 or missing), where a
/// division would give infinity for a model to learn from.
fn attainment() -> Expr {
    when(col("objective").gt(lit(0)))
        .then(col("new_products_month").cast(DataType::Float64) / col("objective").cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

const DEPOSIT_CATEGORIES: [&str; 4] = ["accounts", "savings", "investments", "pensions"];
const CREDIT_CATEGORIES: [&str; 4] = ["cards", "consumer_loans", "mortgages", "business"];

/// The horizon of `days_since_last_closing`: a closing longer ago reads as this many days.
/// Ninety days — the three months of history after which a snapshot counts as complete
/// (`models::tabular::HISTORY_SNAPSHOTS`) — so every complete snapshot has the same range.
pub const CLOSING_HORIZON_DAYS: i32 = 90;

/// Client features copied from the client's manager or agency: a few values shared by many
/// clients, recomputed every month. Their exact values name the month (this month's agency
/// scores are not last month's), so a classifier telling months apart learns the calendar from
/// them, not a change; the domain classifier leaves them out (PSI still watches them).
pub const INHERITED_FEATURES: [&str; 2] = ["manager_score", "agency_score"];

/// Client features at the snapshot date, for clients who are still clients then, in `cli`
/// order.
///
/// Assembled by row position, not joined: the kept clients' rows are gathered once, in `cli`
/// order, their totals added up straight into that order, the manager's and agency's scores
/// looked up by code. polars' left joins on `cli`, `ges` and `age` hashed
/// every client's keys (hashing the codes' text alone was ~16 % of `bankml features`' CPU
/// after reading) and its sort gathered every column again.
pub fn client_features(snapshot: &Snapshot) -> PolarsResult<DataFrame> {
    let day = snapshot.date.0;
    let months: [i32; 3] = std::array::from_fn(|k| snapshot.date.month_end_after(-(k as i32)).month_start().0);
    let clients = &snapshot.clients;
    let kept = clients
        .select([
            "cli",
            "ges",
            "age",
            "sex",
            "segment",
            "region",
            "income_band",
            "birth_date",
            "client_since",
        ])?
        .take(&kept_in_cli_order(clients, day)?)?;
    // Totals for the kept clients only, in their order: nothing to gather afterwards.
    let client_ids = client_totals::ClientIds::of(&kept)?;
    let (holdings, activity) = rayon::join(
        || client_totals::holding_totals(snapshot, day, &client_ids),
        || client_totals::activity_totals(snapshot, months, &client_ids),
    );
    let scores = [
        score_by_code(&kept, "ges", &snapshot.managers, "manager_score")?,
        score_by_code(&kept, "age", &snapshot.agencies, "agency_score")?,
    ];
    let mut columns = kept.into_columns();
    columns.extend(scores);
    columns.extend(holdings?.columns);
    columns.extend(activity?.columns);
    DataFrame::new_infer_height(columns)?
        .lazy()
        .select(client_columns(day))
        .collect()
}

/// The client features' columns, in order, from the clients' own columns and their totals.
fn client_columns(day: i32) -> Vec<Expr> {
    let d = lit(day);
    let mut selected = vec![
        lit(day).cast(DataType::Date).alias("snapshot"),
        col("cli"),
        col("ges"),
        col("age"),
        col("sex"),
        col("segment"),
        col("region"),
        col("income_band"),
        ((d.clone() - col("birth_date").cast(DataType::Int32)).cast(DataType::Float64) / lit(365.25))
            .alias("age_years"),
        ((d.clone() - col("client_since").cast(DataType::Int32)).cast(DataType::Float64) / lit(DAYS_PER_MONTH))
            .alias("tenure_months"),
    ];
    for name in [
        "n_products_ever",
        "n_products_active",
        "n_categories_active",
        "n_products_opened_90d",
        "n_products_opened_month",
        "n_products_closed_90d",
        "days_since_last_opening",
        "days_since_last_closing",
    ] {
        selected.push(col(name));
    }
    selected.extend(CATEGORIES.iter().map(|c| col(format!("n_active_{c}"))));
    selected.extend(["balance_total", "balance_deposits", "balance_credit"].map(col));
    for measure in ["logins", "transactions"] {
        let m = |k: usize| col(format!("{measure}_m{k}")).cast(DataType::Float64);
        selected.push(col(format!("{measure}_m0")));
        selected.push(((m(0) + m(1) + m(2)) / lit(3.0)).alias(format!("{measure}_avg_3m")));
        selected.push((m(0) - (m(1) + m(2)) / lit(2.0)).alias(format!("{measure}_trend")));
    }
    selected.extend(
        [
            "complaints_m0",
            "complaints_3m",
            "months_with_activity",
            "manager_score",
            "agency_score",
        ]
        .map(col),
    );

    selected
}

/// The rows of the clients who are clients at `day` (arrived by then, not gone), in `cli`
/// order — a missing id first, as polars sorts.
fn kept_in_cli_order(clients: &DataFrame, day: i32) -> PolarsResult<IdxCa> {
    let since = optional_values(clients.column("client_since")?.date()?.physical());
    let closed = optional_values(clients.column("closed_on")?.date()?.physical());
    let ids: Vec<Option<i64>> = optional_values(clients.column("cli")?.i64()?).collect();
    let mut kept: Vec<IdxSize> = since
        .zip(closed)
        .enumerate()
        .filter(|(_, (since, closed))| since.is_some_and(|s| s <= day) && closed.is_none_or(|c| c > day))
        .map(|(row, _)| row as IdxSize)
        .collect();
    // Exports usually list clients by id already.
    if !kept.is_sorted_by_key(|row| ids[*row as usize]) {
        kept.sort_by_key(|row| ids[*row as usize]);
    }
    Ok(IdxCa::from_vec("rows".into(), kept))
}

/// Each client's `name`: the `performance_score` of the entity (manager or agency) whose code
/// is the client's `key`; missing without a code or for a code `entities` does not list.
fn score_by_code(clients: &DataFrame, key: &str, entities: &DataFrame, name: &str) -> PolarsResult<Column> {
    let codes = entities.column(key)?.str()?;
    let scores = entities.column("performance_score")?.f64()?;
    // A listed code with no score is a listing too: its clients get no score.
    let listings = codes.iter().zip(scores.iter().map(Some));
    let found = looked_up(clients.column(key)?.str()?, listings);
    Ok(Float64Chunked::from_iter_options(name.into(), found.into_iter().map(Option::flatten)).into_column())
}

/// Adds `churn` from a later snapshot's holdings (which carry every closing up to its
/// date): 1 when the client held a product at the snapshot and none `horizon` days later.
/// Empty for every client when `later` does not reach the horizon yet.
pub fn add_churn_label(
    features: DataFrame,
    date: Date,
    later: Option<&Snapshot>,
    horizon: i32,
) -> PolarsResult<DataFrame> {
    let day = date.0;
    let horizon_day = day + horizon;
    let Some(later) = later.filter(|l| reaches_horizon(date, l.date, horizon)) else {
        return features
            .lazy()
            .with_column(lit(NULL).cast(DataType::Int32).alias(CHURN_LABEL))
            .collect();
    };
    let clients = client_totals::ClientIds::of(&features)?;
    let outcome = client_totals::churn_outcome(later, day, horizon_day, &clients)?;
    let mut features = features;
    for column in outcome.columns {
        features.with_column(column)?;
    }
    Ok(features)
}

/// Whether a snapshot dated `later` knows the churn outcome of one dated `date`.
pub fn reaches_horizon(date: Date, later: Date, horizon: i32) -> bool {
    later.0 >= date.0 + horizon
}

/// Portfolio features of one entity level (`ges` for managers, `age` for agencies), from the
/// client features, plus the clients who left in the last 90 days.
fn portfolio(clients: &DataFrame, snapshot: &Snapshot, key: &str) -> LazyFrame {
    let day = snapshot.date.0;
    let sum = |c: &str| col(c).sum();
    let mut aggs = vec![
        len().cast(DataType::Int64).alias("n_clients"),
        sum("n_products_active").alias("n_products_active"),
        sum("n_products_ever").alias("n_products_managed"),
        sum("n_products_opened_month").alias("new_products_month"),
        sum("n_products_opened_90d").alias("new_products_90d"),
        sum("n_products_closed_90d").alias("closed_products_90d"),
        sum("balance_total").alias("balance_total"),
        col("logins_m0")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_client_logins"),
        col("complaints_3m").sum().alias("complaints_3m"),
        col("tenure_months").mean().alias("mean_client_tenure_months"),
        col("age_years").mean().alias("mean_client_age"),
    ];
    if key == "ges" {
        aggs.push(col("age").n_unique().cast(DataType::Int64).alias("agencies_covered"));
    } else {
        aggs.push(
            col("ges")
                .n_unique()
                .cast(DataType::Int64)
                .alias("managers_with_clients"),
        );
    }
    let mix = [
        ("share_credit", &["consumer_loans", "mortgages"][..]),
        ("share_savings", &["savings", "investments", "pensions"][..]),
        ("share_insurance", &["insurance"][..]),
        ("share_cards", &["cards"][..]),
        ("share_digital", &["digital"][..]),
    ];
    for (name, categories) in mix {
        let total = categories
            .iter()
            .map(|c| col(format!("n_active_{c}")).sum())
            .reduce(|a, b| a + b)
            .unwrap_or(lit(0i64));
        aggs.push(total.alias(format!("{name}_count")));
    }
    let churned = snapshot
        .clients
        .clone()
        .lazy()
        .with_column(col("closed_on").cast(DataType::Int32).alias("closed"))
        .filter(col("closed").gt(lit(day - 90)).and(col("closed").lt_eq(lit(day))))
        .group_by([col(key)])
        .agg([len().cast(DataType::Int64).alias("churned_clients_90d")]);
    let active_products = col("n_products_active").cast(DataType::Float64);
    let mut derived = vec![
        (col("n_products_active").cast(DataType::Float64) / col("n_clients").cast(DataType::Float64))
            .alias("products_per_client"),
        (col("balance_total") / col("n_clients").cast(DataType::Float64)).alias("balance_per_client"),
        col("churned_clients_90d").fill_null(lit(0i64)),
        (col("churned_clients_90d").fill_null(lit(0i64)).cast(DataType::Float64)
            / (col("n_clients") + col("churned_clients_90d").fill_null(lit(0i64))).cast(DataType::Float64))
        .alias("churn_rate_90d"),
    ];
    for (name, _) in mix {
        derived.push(
            when(active_products.clone().gt(lit(0.0)))
                .then(col(format!("{name}_count")).cast(DataType::Float64) / active_products.clone())
                .otherwise(lit(0.0))
                .alias(name),
        );
    }
    clients
        .clone()
        .lazy()
        .group_by([col(key)])
        .agg(aggs)
        .join(
            churned,
            [col(key)],
            [col(key)],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .with_columns([col("n_clients").fill_null(lit(0i64))])
        .with_columns(derived)
}

const PORTFOLIO_COLUMNS: [&str; 20] = [
    "n_clients",
    "n_products_active",
    "n_products_managed",
    "products_per_client",
    "new_products_month",
    "new_products_90d",
    "closed_products_90d",
    "churned_clients_90d",
    "churn_rate_90d",
    "balance_total",
    "balance_per_client",
    "mean_client_logins",
    "complaints_3m",
    "mean_client_tenure_months",
    "mean_client_age",
    "share_credit",
    "share_savings",
    "share_insurance",
    "share_cards",
    "share_digital",
];

pub fn manager_features(clients: &DataFrame, snapshot: &Snapshot) -> PolarsResult<DataFrame> {
    let day = snapshot.date.0;
    let mut selected = vec![lit(day).cast(DataType::Date).alias("snapshot"), col("ges"), col("age")];
    selected.extend(PORTFOLIO_COLUMNS.iter().map(|c| col(*c)));
    selected.extend([
        col("agencies_covered").fill_null(lit(0i64)),
        col("objective"),
        attainment().alias("objective_attainment"),
        ((lit(day) - col("hired_on").cast(DataType::Int32)).cast(DataType::Float64) / lit(365.25))
            .alias("tenure_years"),
        col("performance_score"),
    ]);
    snapshot
        .managers
        .clone()
        .lazy()
        .join(
            portfolio(clients, snapshot, "ges"),
            [col("ges")],
            [col("ges")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns(zero_counts())
        .select(selected)
        .sort(["ges"], SortMultipleOptions::default())
        .collect()
}

pub fn agency_features(clients: &DataFrame, snapshot: &Snapshot) -> PolarsResult<DataFrame> {
    let day = snapshot.date.0;
    let staff = snapshot.managers.clone().lazy().group_by([col("age")]).agg([
        len().cast(DataType::Int64).alias("n_managers"),
        ((lit(day) - col("hired_on").cast(DataType::Int32)).cast(DataType::Float64) / lit(365.25))
            .mean()
            .alias("mean_manager_tenure_years"),
        col("objective").sum().alias("objective"),
        col("performance_score").mean().alias("mean_manager_score"),
    ]);
    let mut selected = vec![
        lit(day).cast(DataType::Date).alias("snapshot"),
        col("age"),
        col("region"),
    ];
    selected.extend(PORTFOLIO_COLUMNS.iter().map(|c| col(*c)));
    selected.extend([
        col("n_managers").fill_null(lit(0i64)),
        col("managers_with_clients").fill_null(lit(0i64)),
        (col("n_clients").cast(DataType::Float64) / col("n_managers").cast(DataType::Float64))
            .alias("clients_per_manager"),
        col("mean_manager_tenure_years"),
        attainment().alias("objective_attainment"),
        col("performance_score"),
    ]);
    snapshot
        .agencies
        .clone()
        .lazy()
        .join(
            portfolio(clients, snapshot, "age"),
            [col("age")],
            [col("age")],
            JoinArgs::new(JoinType::Left),
        )
        .join(staff, [col("age")], [col("age")], JoinArgs::new(JoinType::Left))
        .with_columns(zero_counts())
        .select(selected)
        .sort(["age"], SortMultipleOptions::default())
        .collect()
}

/// Entities without clients have zero counts, not missing ones.
fn zero_counts() -> Vec<Expr> {
    [
        "n_clients",
        "n_products_active",
        "n_products_managed",
        "new_products_month",
        "new_products_90d",
        "closed_products_90d",
        "churned_clients_90d",
        "complaints_3m",
    ]
    .into_iter()
    .map(|c| col(c).fill_null(lit(0i64)))
    .chain(
        [
            "churn_rate_90d",
            "balance_total",
            "share_credit",
            "share_savings",
            "share_insurance",
            "share_cards",
            "share_digital",
        ]
        .map(|c| col(c).fill_null(lit(0.0))),
    )
    .collect()
}

/// All three feature tables of a snapshot; `later` supplies the churn outcome when it
/// reaches `horizon` days past the snapshot.
pub fn build(snapshot: &Snapshot, later: Option<&Snapshot>, horizon: i32) -> PolarsResult<Features> {
    let started = std::time::Instant::now();
    let seconds = || started.elapsed().as_secs_f64();
    let clients = client_features(snapshot)?;
    tracing::debug!(seconds = seconds(), "features: clients");
    let managers = manager_features(&clients, snapshot)?;
    tracing::debug!(seconds = seconds(), "features: managers");
    let agencies = agency_features(&clients, snapshot)?;
    tracing::debug!(seconds = seconds(), "features: agencies");
    let clients = add_churn_label(clients, snapshot.date, later, horizon)?;
    tracing::debug!(seconds = seconds(), "features: churn labelled");
    Ok(Features {
        clients,
        managers,
        agencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::data::format::FileFormat;
    use crate::data::snapshot;
    use crate::data::synth::{BankSpec, write_bank};

    /// The joins `client_features` replaced, kept as the reference it must equal (the same
    /// expressions of the columns, after them).
    fn reference_client_features(snapshot: &Snapshot) -> PolarsResult<DataFrame> {
        let day = snapshot.date.0;
        let d = lit(day);
        let months: [i32; 3] = std::array::from_fn(|k| snapshot.date.month_end_after(-(k as i32)).month_start().0);
        let client_ids = client_totals::ClientIds::of(&snapshot.clients)?;
        let (per_client, per_client_activity) = rayon::join(
            || client_totals::holding_totals(snapshot, day, &client_ids).and_then(|t| t.frame(&client_ids)),
            || client_totals::activity_totals(snapshot, months, &client_ids).and_then(|t| t.frame(&client_ids)),
        );
        let (per_client, per_client_activity) = (per_client?.lazy(), per_client_activity?.lazy());

        let managers = snapshot
            .managers
            .clone()
            .lazy()
            .select([col("ges"), col("performance_score").alias("manager_score")]);
        let agencies = snapshot
            .agencies
            .clone()
            .lazy()
            .select([col("age"), col("performance_score").alias("agency_score")]);
        let left = || JoinArgs::new(JoinType::Left);
        let zero_filled: Vec<Expr> = [
            "n_products_ever",
            "n_products_active",
            "n_products_closed_90d",
            "n_products_opened_90d",
            "n_products_opened_month",
            "n_categories_active",
        ]
        .into_iter()
        .map(String::from)
        .chain(CATEGORIES.iter().map(|c| format!("n_active_{c}")))
        .chain(
            ["logins", "transactions"]
                .iter()
                .flat_map(|m| (0..3).map(move |k| format!("{m}_m{k}"))),
        )
        .chain(["complaints_3m", "complaints_m0", "months_with_activity"].map(String::from))
        .map(|name| col(name.as_str()).fill_null(lit(0i64)))
        .chain(["balance_total", "balance_deposits", "balance_credit"].map(|n| col(n).fill_null(lit(0.0))))
        .collect();

        snapshot
            .clients
            .clone()
            .lazy()
            .filter(
                col("client_since").cast(DataType::Int32).lt_eq(d.clone()).and(
                    col("closed_on")
                        .is_null()
                        .or(col("closed_on").cast(DataType::Int32).gt(d)),
                ),
            )
            .join(per_client, [col("cli")], [col("cli")], left())
            .join(per_client_activity, [col("cli")], [col("cli")], left())
            .join(managers, [col("ges")], [col("ges")], left())
            .join(agencies, [col("age")], [col("age")], left())
            .with_columns(zero_filled)
            .select(client_columns(day))
            .sort(["cli"], SortMultipleOptions::default())
            .collect()
    }

    /// The join `add_churn_label` replaced.
    fn reference_churn_label(features: DataFrame, later: &Snapshot, day: i32, horizon_day: i32) -> DataFrame {
        let ids = client_totals::ClientIds::of(&features).expect("ids");
        let outcome = client_totals::churn_outcome(later, day, horizon_day, &ids)
            .and_then(|t| t.frame(&ids))
            .expect("outcome");
        features
            .lazy()
            .join(
                outcome.lazy(),
                [col("cli")],
                [col("cli")],
                JoinArgs::new(JoinType::Left),
            )
            .with_column(col(CHURN_LABEL).fill_null(lit(0i32)))
            .collect()
            .expect("joined")
    }

    /// Same columns in the same order, same types, same values bit for bit.
    fn assert_same(ours: &DataFrame, reference: &DataFrame, what: &str) {
        assert_eq!(ours.get_column_names(), reference.get_column_names(), "{what}: columns");
        assert_eq!(ours.height(), reference.height(), "{what}: rows");
        for (a, b) in ours.columns().iter().zip(reference.columns()) {
            assert_same_column(a, b, what);
        }
    }

    /// Same type, same values bit for bit (floats by their bits: −0 is not 0).
    pub(super) fn assert_same_column(a: &Column, b: &Column, what: &str) {
        let name = a.name();
        assert_eq!(a.dtype(), b.dtype(), "{what}: {name}'s type");
        if let (Ok(a), Ok(b)) = (a.f64(), b.f64()) {
            let bits = |c: &Float64Chunked| c.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "{what}: {name}");
        } else {
            assert!(
                a.as_materialized_series().equals_missing(b.as_materialized_series()),
                "{what}: {name}"
            );
        }
    }

    /// Rows of `frame` in a scrambled order, some `ges` and `age` codes missing or unknown,
    /// some arrival dates missing, some leaving on the day or the day after: what an export may
    /// hold that the generator does not write.
    fn scrambled(clients: &DataFrame, day: i32) -> DataFrame {
        let rows = clients.height();
        let mut order: Vec<IdxSize> = (0..rows as IdxSize).collect();
        order.sort_by_key(|row| (*row as usize * 7919) % rows);
        let mut clients = clients.take(&IdxCa::from_vec("rows".into(), order)).expect("taken");
        for (key, unknown) in [("ges", "G999"), ("age", "AG99")] {
            let codes: Vec<Option<String>> = clients
                .column(key)
                .and_then(|c| c.str().cloned())
                .expect("codes")
                .iter()
                .enumerate()
                .map(|(row, code)| match row % 29 {
                    0 => None,
                    1 => Some(unknown.to_string()),
                    _ => code.map(String::from),
                })
                .collect();
            clients.with_column(Column::new(key.into(), codes)).expect("codes");
        }
        let since: Vec<Option<i32>> = optional_values(
            clients
                .column("client_since")
                .and_then(|c| c.date())
                .expect("since")
                .physical(),
        )
        .enumerate()
        .map(|(row, since)| since.filter(|_| row % 31 != 0))
        .collect();
        clients
            .with_column(crate::data::date::date_column("client_since", since))
            .expect("since");
        // Leaving on the day (gone) and the day after (still a client).
        let closed: Vec<Option<i32>> = optional_values(
            clients
                .column("closed_on")
                .and_then(|c| c.date())
                .expect("closed")
                .physical(),
        )
        .enumerate()
        .map(|(row, closed)| match row % 23 {
            0 => Some(day),
            1 => Some(day + 1),
            _ => closed,
        })
        .collect();
        clients
            .with_column(crate::data::date::date_column("closed_on", closed))
            .expect("closed");
        clients
    }

    #[test]
    fn client_features_equal_the_joins_they_replace() {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = EngineConfig::default();
        config.data.raw_dir = dir.path().join("raw");
        let spec = BankSpec {
            clients: 900,
            months: 5,
            ..BankSpec::default()
        };
        write_bank(spec, FileFormat::Parquet, &config.data.raw_dir, |_| {}).expect("bank");
        let dates: Vec<Date> = snapshot::list_snapshots(&config.data.raw_dir)
            .expect("dates")
            .into_iter()
            .map(|(date, _)| date)
            .collect();
        let load =
            |date: Date| snapshot::load(&config.data.raw_dir.join(date.to_string()), date, &config).expect("snapshot");
        let (first, last) = (load(dates[0]), load(dates[dates.len() - 1]));
        let mut exported = load(dates[1]);
        let mut scrambled_export = load(dates[1]);
        scrambled_export.clients = scrambled(&scrambled_export.clients, scrambled_export.date.0);
        exported.dir = scrambled_export.dir.clone();
        for (snapshot, what) in [
            (&first, "first"),
            (&exported, "as exported"),
            (&scrambled_export, "scrambled"),
        ] {
            let ours = client_features(snapshot).expect("ours");
            let reference = reference_client_features(snapshot).expect("reference");
            assert_same(&ours, &reference, what);
            assert!(ours.height() > 500, "{what}: {} clients", ours.height());
            let missing_scores = ours.column("manager_score").expect("scores").null_count();
            if what == "scrambled" {
                assert!(
                    missing_scores > 20,
                    "{missing_scores} clients without a manager's score"
                );
            }
            let day = snapshot.date.0;
            let labelled = add_churn_label(ours.clone(), snapshot.date, Some(&last), 60).expect("labelled");
            let churners = labelled
                .column(CHURN_LABEL)
                .and_then(|c| c.i32().cloned())
                .expect("churn")
                .sum();
            assert!(churners.is_some_and(|n| n > 0), "{what}: {churners:?} churners");
            assert_same(&labelled, &reference_churn_label(ours, &last, day, day + 60), what);
        }
    }
}
