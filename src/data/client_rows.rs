//! Client ids to their rows in the clients table, for readers of the tables that name
//! clients by id (holdings, activity): millions of lookups per snapshot.

/// Client id → its row in the clients table, looked up for every holding (millions). Banks
/// number clients from a sequence, so the ids usually span little more than their count: then
/// a dense table indexed by `id − min` (one memory read per holding, no hashing); otherwise,
/// or past `u32` rows, a hash map.
pub enum ClientRows {
    Dense { min: i64, rows: Vec<u32> },
    Hashed(foldhash::HashMap<i64, usize>),
}

impl ClientRows {
    /// Ids spanning at most this many times their count (plus a little) go in a dense table.
    const DENSE_SPAN_PER_CLIENT: u64 = 4;

    pub fn new(clients: &[i64]) -> ClientRows {
        let (Some(&min), Some(&max)) = (clients.iter().min(), clients.iter().max()) else {
            return ClientRows::Hashed(Default::default());
        };
        let span = max.abs_diff(min).saturating_add(1);
        let dense_limit = (clients.len() as u64)
            .saturating_mul(Self::DENSE_SPAN_PER_CLIENT)
            .saturating_add(1024);
        if span <= dense_limit && clients.len() < u32::MAX as usize {
            let mut rows = vec![u32::MAX; span as usize];
            // A repeated id keeps its last row, as the hash map's `collect` would.
            for (row, id) in clients.iter().enumerate() {
                rows[id.abs_diff(min) as usize] = row as u32;
            }
            ClientRows::Dense { min, rows }
        } else {
            ClientRows::Hashed(clients.iter().enumerate().map(|(i, c)| (*c, i)).collect())
        }
    }

    pub fn row(&self, id: i64) -> Option<usize> {
        match self {
            ClientRows::Dense { min, rows } => {
                let offset = id.checked_sub(*min)?;
                let row = *rows.get(usize::try_from(offset).ok()?)?;
                (row != u32::MAX).then_some(row as usize)
            }
            ClientRows::Hashed(rows) => rows.get(&id).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_rows_find_the_same_row_dense_or_hashed() {
        // Compact ids (a sequence with gaps) go dense, scattered ones hashed; both answer alike.
        let compact: Vec<i64> = vec![-3, 7, 0, 12, 5, 7];
        let scattered: Vec<i64> = vec![i64::MIN, 1 << 40, 5, i64::MAX];
        assert!(matches!(ClientRows::new(&compact), ClientRows::Dense { .. }));
        assert!(matches!(ClientRows::new(&scattered), ClientRows::Hashed(_)));
        for ids in [&compact, &scattered] {
            let dense_or_not = ClientRows::new(ids);
            let hashed: foldhash::HashMap<i64, usize> = ids.iter().enumerate().map(|(i, c)| (*c, i)).collect();
            for probe in ids.iter().copied().chain([-4, 1, 13, 6, i64::MIN + 1, i64::MAX - 1]) {
                assert_eq!(
                    dense_or_not.row(probe),
                    hashed.get(&probe).copied(),
                    "id {probe} in {ids:?}"
                );
            }
        }
        assert_eq!(
            ClientRows::new(&compact).row(7),
            Some(5),
            "a repeated id keeps its last row"
        );
        assert_eq!(ClientRows::new(&[]).row(0), None);
    }
}
