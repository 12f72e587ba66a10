//! Items grouped by a small whole-number key with a counting sort: two passes and no
//! comparisons, where millions of rows are grouped by client, basket or hash bucket.

/// `items` grouped by `key(item)` (each below `keys`), each group keeping the items' order:
/// `value(item)` of each item, and `starts`, one longer than `keys` — group `g` is
/// `values[starts[g]..starts[g + 1]]`. Items whose key is `keys` or more are left out.
pub fn group_by_key<I, V: Copy + Default>(
    items: impl Iterator<Item = I> + Clone,
    keys: usize,
    key: impl Fn(&I) -> usize,
    value: impl Fn(I) -> V,
) -> (Vec<usize>, Vec<V>) {
    let mut starts = vec![0usize; keys + 1];
    for item in items.clone() {
        if let Some(count) = starts.get_mut(key(&item).saturating_add(1)) {
            *count += 1;
        }
    }
    for k in 0..keys {
        starts[k + 1] += starts[k];
    }
    let mut next = starts.clone();
    let mut values = vec![V::default(); starts[keys]];
    for item in items {
        let k = key(&item);
        if k < keys {
            values[next[k]] = value(item);
            next[k] += 1;
        }
    }
    (starts, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_the_items_order_and_leave_out_keys_past_the_end() {
        let items = [
            (2, 'a'),
            (0, 'b'),
            (2, 'c'),
            (5, 'x'),
            (0, 'd'),
            (3, 'e'),
            (usize::MAX, 'y'),
        ];
        let (starts, values) = group_by_key(items.iter(), 4, |(k, _)| *k, |(_, v)| *v);
        assert_eq!(starts, [0, 2, 2, 4, 5]);
        assert_eq!(values, ['b', 'd', 'a', 'c', 'e']);
        let (starts, values) = group_by_key(std::iter::empty::<usize>(), 0, |k| *k, |k| k);
        assert_eq!((starts, values), (vec![0], vec![]));
    }
}
