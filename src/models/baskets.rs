//! What each client holds, as item indices: every basket ascending and without repeats, all of
//! them one after another in one vector. A million clients' baskets are then two allocations
//! instead of a million, read in order by fitting and evaluation; and two clients holding the
//! same products have equal slices, whatever order the export listed their holdings in, so
//! evaluation ranks each distinct basket once (a million clients hold ~70k distinct ones).

/// Every client's basket, by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baskets {
    /// Basket `p` is `items[starts[p]..starts[p + 1]]`; `starts` has one more entry than there
    /// are baskets.
    starts: Vec<usize>,
    items: Vec<usize>,
}

impl Baskets {
    /// Baskets of `clients` positions from `(position, item)` pairs in any order, repeats
    /// allowed (a product held twice is in the basket once). Positions past `clients` are a
    /// caller's bug and are left out.
    pub fn from_pairs(clients: usize, pairs: impl Iterator<Item = (usize, usize)> + Clone) -> Baskets {
        let (mut starts, mut items) =
            crate::data::grouping::group_by_key(pairs, clients, |(p, _)| *p, |(_, item)| item);
        // Each basket sorted and its repeats dropped, compacted in place.
        let mut written = 0;
        for p in 0..clients {
            let (begin, end) = (starts[p], starts[p + 1]);
            items[begin..end].sort_unstable();
            starts[p] = written;
            for at in begin..end {
                if at == begin || items[at] != items[at - 1] {
                    items[written] = items[at];
                    written += 1;
                }
            }
        }
        starts[clients] = written;
        items.truncate(written);
        Baskets { starts, items }
    }

    /// No baskets yet, room for `baskets` holding `items` in all, for [`Baskets::push_basket`].
    pub fn with_capacity(baskets: usize, items: usize) -> Baskets {
        let mut starts = Vec::with_capacity(baskets + 1);
        starts.push(0);
        Baskets {
            starts,
            items: Vec::with_capacity(items),
        }
    }

    /// Adds the next position's basket from its items in any order, repeats allowed: sorted
    /// and without repeats where it is written, as [`Baskets::from_pairs`] makes them.
    pub fn push_basket(&mut self, items: impl IntoIterator<Item = usize>) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let begin = self.items.len();
        self.items.extend(items);
        self.items[begin..].sort_unstable();
        let mut written = begin;
        for at in begin..self.items.len() {
            if at == begin || self.items[at] != self.items[written - 1] {
                self.items[written] = self.items[at];
                written += 1;
            }
        }
        self.items.truncate(written);
        self.starts.push(written);
    }

    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Basket `position` (empty past the end).
    pub fn get(&self, position: usize) -> &[usize] {
        match (self.starts.get(position), self.starts.get(position + 1)) {
            (Some(&begin), Some(&end)) => &self.items[begin..end],
            _ => &[],
        }
    }

    /// Whether basket `position` holds `item`.
    pub fn holds(&self, position: usize, item: usize) -> bool {
        self.get(position).binary_search(&item).is_ok()
    }

    /// The baskets in position order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        self.starts.windows(2).map(|w| &self.items[w[0]..w[1]])
    }
}

impl From<Vec<Vec<usize>>> for Baskets {
    fn from(lists: Vec<Vec<usize>>) -> Baskets {
        let clients = lists.len();
        let pairs = lists
            .iter()
            .enumerate()
            .flat_map(|(p, list)| list.iter().map(move |i| (p, *i)));
        Baskets::from_pairs(clients, pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_in_any_order_make_sorted_baskets_without_repeats() {
        let pairs = [(2, 7), (0, 3), (2, 1), (0, 3), (0, 1), (2, 7), (5, 0)];
        let baskets = Baskets::from_pairs(4, pairs.iter().copied());
        let got: Vec<&[usize]> = baskets.iter().collect();
        assert_eq!(
            got,
            vec![&[1, 3][..], &[], &[1, 7], &[]],
            "position 5 is past the 4 clients"
        );
        assert_eq!(baskets.len(), 4);
        assert_eq!(baskets.get(2), &[1, 7]);
        assert_eq!(baskets.get(9), &[] as &[usize]);
        assert!(baskets.holds(0, 3) && !baskets.holds(0, 2) && !baskets.holds(1, 3));
        let reversed = Baskets::from_pairs(4, pairs.iter().rev().copied());
        assert_eq!(baskets, reversed, "the holdings' order does not matter");
    }

    #[test]
    fn baskets_pushed_one_by_one_equal_their_pairs() {
        let lists = [vec![4, 2, 4, 4], vec![], vec![0], vec![9, 1, 9, 1, 5]];
        let mut pushed = Baskets::with_capacity(lists.len(), 0);
        for list in &lists {
            pushed.push_basket(list.iter().copied());
        }
        assert_eq!(pushed, Baskets::from(lists.to_vec()));
        assert_eq!(pushed.get(3), &[1, 5, 9]);
        let mut from_default = Baskets::default();
        from_default.push_basket([3, 3]);
        assert_eq!(from_default, Baskets::from(vec![vec![3]]));
    }

    #[test]
    fn lists_convert_as_their_pairs_do() {
        let baskets = Baskets::from(vec![vec![4, 2, 4], vec![], vec![0]]);
        assert_eq!(baskets.iter().collect::<Vec<_>>(), vec![&[2, 4][..], &[], &[0]]);
        assert!(Baskets::from(Vec::new()).is_empty());
    }
}
