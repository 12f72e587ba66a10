//! A snapshot's holdings as indices, grouped by client: what the recommender fits on, scores
//! from and is measured with (baskets at a day, the temporal holdout, recent openings).
//!
//! Why grouped: every question asked of the holdings is asked client by client (what does
//! this client hold on this day, what did they open since). With each client's holdings side by
//! side, a basket is read from one short run of memory, made once and sorted where it is
//! built, and the holdout's truth comes from the same walk — where holdings in the table's
//! order meant two passes over millions of scattered rows and a sort of every basket
//! afterwards. At a million clients this took the holdout from 0.2 s to a few hundredths.

use super::baskets::Baskets;
use crate::data::client_rows::ClientRows;
use crate::data::date::Date;
use crate::data::grouping::group_by_key;
use crate::data::values::{optional_values, text_positions};
use polars::prelude::{DataFrame, PolarsResult};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// One holding of a client: the product (its catalog position), opened and closed (or
/// `i32::MAX`) as day numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holding {
    pub item: u32,
    pub opened: i32,
    pub closed: i32,
}

impl Holding {
    fn held_on(&self, day: i32) -> bool {
        self.opened <= day && self.closed > day
    }
}

/// Holdings and catalog of a snapshot, as indices: what fitting and scoring read.
pub struct HoldingsIndex {
    pub items: Vec<String>,
    pub names: Vec<String>,
    pub categories: Vec<String>,
    /// Client ids in the clients table's row order: a client's index is its row.
    pub clients: Vec<i64>,
    /// Per client: the day they became a client and left (or i32::MAX).
    pub tenure: Vec<(i32, i32)>,
    /// Client `c`'s holdings are `holdings[starts[c]..starts[c + 1]]`, in the table's order.
    starts: Vec<usize>,
    holdings: Vec<Holding>,
}

impl HoldingsIndex {
    /// Holdings indexed per task: a few slices per core at a million clients' 3 M holdings.
    const SLICE_ROWS: usize = 1 << 19;

    /// The snapshot's holdings of known clients and products (others are left out).
    pub fn new(snapshot: &crate::data::snapshot::Snapshot) -> PolarsResult<HoldingsIndex> {
        let text = |frame: &DataFrame, name: &str| -> PolarsResult<Vec<String>> {
            Ok(frame
                .column(name)?
                .str()?
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect())
        };
        let days = |frame: &DataFrame, name: &str| -> PolarsResult<Vec<i32>> {
            Ok(optional_values(frame.column(name)?.date()?.physical())
                .map(|v| v.unwrap_or(i32::MAX))
                .collect())
        };
        let items = text(&snapshot.catalog, "product_id")?;
        let names = text(&snapshot.catalog, "product_name")?;
        let categories = text(&snapshot.catalog, "category")?;
        let item_ids: Vec<&str> = items.iter().map(String::as_str).collect();
        let clients: Vec<i64> = optional_values(snapshot.clients.column("cli")?.i64()?)
            .map(|v| v.unwrap_or_default())
            .collect();
        let client_rows = ClientRows::new(&clients);
        let tenure = days(&snapshot.clients, "client_since")?
            .into_iter()
            .zip(days(&snapshot.clients, "closed_on")?)
            .collect();
        // Slices of the holdings (zero-copy) indexed on every core, then grouped in order.
        let holdings = &snapshot.holdings;
        let slices = holdings.height().div_ceil(Self::SLICE_ROWS);
        let slices = (0..slices)
            .into_par_iter()
            .map(|k| {
                let slice = holdings.slice((k * Self::SLICE_ROWS) as i64, Self::SLICE_ROWS);
                let products = slice.column("product_id")?.str()?;
                let holders = slice.column("cli")?.i64()?;
                let opened = days(&slice, "opened_on")?;
                let closed = days(&slice, "closed_on")?;
                let items = text_positions(products, &item_ids);
                let mut rows = Vec::with_capacity(slice.height());
                for (((holder, item), opened), closed) in optional_values(holders).zip(items).zip(opened).zip(closed) {
                    let client = holder.and_then(|h| client_rows.row(h));
                    if let (Some(client), Some(item)) = (client, item) {
                        rows.push((client as u32, Holding { item, opened, closed }));
                    }
                }
                Ok(rows)
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let (starts, holdings) = group_by_client(clients.len(), &slices);
        Ok(HoldingsIndex {
            items,
            names,
            categories,
            clients,
            tenure,
            starts,
            holdings,
        })
    }

    /// An index of hand-made holdings (`(client index, holding)` in any order), for tests.
    #[cfg(test)]
    pub fn of_rows(
        items: Vec<String>,
        categories: Vec<String>,
        clients: Vec<i64>,
        tenure: Vec<(i32, i32)>,
        rows: Vec<(u32, Holding)>,
    ) -> HoldingsIndex {
        let (starts, holdings) = group_by_client(clients.len(), &[rows]);
        HoldingsIndex {
            items,
            names: Vec::new(),
            categories,
            clients,
            tenure,
            starts,
            holdings,
        }
    }

    /// Client `client`'s holdings, in the table's order.
    pub fn holdings_of(&self, client: usize) -> &[Holding] {
        &self.holdings[self.starts[client]..self.starts[client + 1]]
    }

    /// Clients who are clients on `day` (index list).
    fn active_on(&self, day: i32) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&c| self.tenure[c].0 <= day && self.tenure[c].1 > day)
            .collect()
    }

    /// Clients who are clients on `day` (index list) and what each holds then.
    pub fn baskets_at(&self, day: i32) -> (Vec<usize>, Baskets) {
        let active = self.active_on(day);
        let mut baskets = Baskets::with_capacity(active.len(), self.holdings.len());
        for &client in &active {
            baskets.push_basket(
                self.holdings_of(client)
                    .iter()
                    .filter(|h| h.held_on(day))
                    .map(|h| h.item as usize),
            );
        }
        (active, baskets)
    }

    /// Openings per item in (`from`, `to`].
    pub fn openings(&self, from: i32, to: i32) -> Vec<f64> {
        let mut counts = vec![0.0; self.items.len()];
        for holding in &self.holdings {
            if holding.opened > from && holding.opened <= to {
                counts[holding.item as usize] += 1.0;
            }
        }
        counts
    }
}

/// `slices` of `(client, holding)` rows (in the table's order) grouped by client: each
/// client's holdings keep their order.
fn group_by_client(clients: usize, slices: &[Vec<(u32, Holding)>]) -> (Vec<usize>, Vec<Holding>) {
    group_by_key(
        slices.iter().flatten(),
        clients,
        |(client, _)| *client as usize,
        |(_, holding)| *holding,
    )
}

/// The temporal holdout of a snapshot: what clients held at the cut-off `holdout_months`
/// before `today`, and the products each opened since (the truth).
pub struct Holdout {
    pub cutoff: Date,
    /// Client indices (into the index) active at the cut-off, and their baskets then.
    pub clients: Vec<usize>,
    pub baskets: Baskets,
    /// Position in `clients` → products opened after the cut-off.
    pub truth: HashMap<usize, HashSet<usize>>,
}

pub fn holdout(index: &HoldingsIndex, today: Date, months: i32) -> Holdout {
    holdout_from(index, today.month_end_after(-months), today)
}

/// Baskets at `cutoff` and products opened in (`cutoff`, `today`] that the client did not
/// hold at the cut-off.
pub fn holdout_from(index: &HoldingsIndex, cutoff: Date, today: Date) -> Holdout {
    let (clients, baskets) = index.baskets_at(cutoff.0);
    let mut truth: HashMap<usize, HashSet<usize>> = HashMap::new();
    for (position, &client) in clients.iter().enumerate() {
        for holding in index.holdings_of(client) {
            let item = holding.item as usize;
            if holding.opened > cutoff.0 && holding.opened <= today.0 && !baskets.holds(position, item) {
                truth.entry(position).or_default().insert(item);
            }
        }
    }
    Holdout {
        cutoff,
        clients,
        baskets,
        truth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::rng::Rng;

    /// Holdings with their client as plain rows, in a shuffled table order.
    fn random_rows(rng: &mut Rng, clients: u32, items: u32, rows: usize) -> Vec<(u32, Holding)> {
        (0..rows)
            .map(|_| {
                let opened = (rng.uniform() * 100.0) as i32;
                let closed = if rng.uniform() < 0.4 {
                    opened + (rng.uniform() * 60.0) as i32
                } else {
                    i32::MAX
                };
                let client = (rng.uniform() * f64::from(clients)) as u32;
                let item = (rng.uniform() * f64::from(items)) as u32;
                (client, Holding { item, opened, closed })
            })
            .collect()
    }

    #[test]
    fn baskets_holdout_and_openings_match_a_scan_of_every_row() {
        let mut rng = Rng::new(11);
        let (clients, items) = (300u32, 9u32);
        let rows = random_rows(&mut rng, clients, items, 2_000);
        let tenure: Vec<(i32, i32)> = (0..clients)
            .map(|_| {
                let since = (rng.uniform() * 80.0) as i32 - 20;
                let left = if rng.uniform() < 0.2 { since + 30 } else { i32::MAX };
                (since, left)
            })
            .collect();
        let index = HoldingsIndex::of_rows(
            (0..items).map(|i| format!("P{i}")).collect(),
            vec!["c".into(); items as usize],
            (0..i64::from(clients)).map(|c| c * 7).collect(),
            tenure.clone(),
            rows.clone(),
        );
        for (cutoff, today) in [(40, 70), (0, 100), (99, 99), (-5, 10)] {
            let held_out = holdout_from(&index, Date(cutoff), Date(today));
            let active: Vec<usize> = (0..clients as usize)
                .filter(|&c| tenure[c].0 <= cutoff && tenure[c].1 > cutoff)
                .collect();
            assert_eq!(held_out.clients, active, "cut-off {cutoff}");
            assert_eq!(held_out.baskets.len(), active.len());
            let mut expected_truth: HashMap<usize, HashSet<usize>> = HashMap::new();
            for (position, &client) in active.iter().enumerate() {
                let mine = rows.iter().filter(|(c, _)| *c as usize == client);
                let mut basket: Vec<usize> = mine
                    .clone()
                    .filter(|(_, h)| h.opened <= cutoff && h.closed > cutoff)
                    .map(|(_, h)| h.item as usize)
                    .collect();
                basket.sort_unstable();
                basket.dedup();
                assert_eq!(
                    held_out.baskets.get(position),
                    basket,
                    "client {client}, cut-off {cutoff}"
                );
                for (_, h) in mine.filter(|(_, h)| h.opened > cutoff && h.opened <= today) {
                    if !basket.contains(&(h.item as usize)) {
                        expected_truth.entry(position).or_default().insert(h.item as usize);
                    }
                }
            }
            assert_eq!(held_out.truth, expected_truth, "cut-off {cutoff}, today {today}");
            let mut openings = vec![0.0; items as usize];
            for (_, h) in rows.iter().filter(|(_, h)| h.opened > cutoff && h.opened <= today) {
                openings[h.item as usize] += 1.0;
            }
            assert_eq!(index.openings(cutoff, today), openings);
        }
        assert!(
            rows.iter().any(|(_, h)| h.closed != i32::MAX) && tenure.iter().any(|t| t.1 != i32::MAX),
            "closings and departures both tried"
        );
    }

    #[test]
    fn each_clients_holdings_keep_the_tables_order() {
        let mut rng = Rng::new(3);
        let rows = random_rows(&mut rng, 20, 5, 200);
        let halves = [rows[..77].to_vec(), rows[77..].to_vec()];
        let (starts, holdings) = group_by_client(20, &halves);
        for client in 0..20u32 {
            let expected: Vec<Holding> = rows.iter().filter(|(c, _)| *c == client).map(|(_, h)| *h).collect();
            let c = client as usize;
            assert_eq!(holdings[starts[c]..starts[c + 1]], expected);
        }
    }
}
