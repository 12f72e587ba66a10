//! A column's values read from its chunks' buffers. polars' own `iter` zips every value with
//! its validity bit through a chain of adapters, which costs more than the work done on
//! millions of rows (holdings indexed, design matrices built, products looked up).

use polars::prelude::*;
use polars_arrow::array::{Array, View};

/// A numeric column's values in order, `None` for a null.
pub fn optional_values<T: PolarsNumericType>(column: &ChunkedArray<T>) -> impl Iterator<Item = Option<T::Native>> + '_ {
    column.downcast_iter().flat_map(|array| {
        let validity = array.validity().filter(|bits| bits.unset_bits() > 0);
        array
            .values()
            .iter()
            .enumerate()
            .map(move |(at, value)| match validity {
                Some(bits) if !bits.get_bit(at) => None,
                _ => Some(*value),
            })
    })
}

/// Each row's position in `keys` (`None` for a null or a value not among them; a repeated key
/// gives its last position). For looking up millions of rows among a few dozen keys (a
/// holding's product in the catalog): a short string (at most 12 bytes, such as `P10`) lives
/// whole inside its 16-byte view with zeroed padding — an invariant polars validates and its
/// own comparisons rely on — so it is found by the view's bits, without hashing or comparing
/// bytes; longer ones are looked up as text.
pub fn text_positions(column: &StringChunked, keys: &[&str]) -> Vec<Option<u32>> {
    let mut short: foldhash::HashMap<u128, u32> = foldhash::HashMap::default();
    let mut long: foldhash::HashMap<&str, u32> = foldhash::HashMap::default();
    for (position, key) in keys.iter().enumerate() {
        if key.len() <= View::MAX_INLINE_SIZE as usize {
            short.insert(View::new_inline(key.as_bytes()).as_u128(), position as u32);
        } else {
            long.insert(key, position as u32);
        }
    }
    let mut positions = Vec::with_capacity(column.len());
    for array in column.downcast_iter() {
        let validity = array.validity().filter(|bits| bits.unset_bits() > 0);
        positions.extend(array.views().iter().enumerate().map(|(at, view)| {
            if validity.is_some_and(|bits| !bits.get_bit(at)) {
                None
            } else if view.is_inline() {
                short.get(&view.as_u128()).copied()
            } else {
                long.get(array.value(at)).copied()
            }
        }));
    }
    positions
}

/// Each row's value in `listings` of (key, value) — a listing without a key or a value left
/// out, a key listed twice taking its last listing — or `None` for a null or a key no listing
/// has: a holding's category from the catalog, a client's manager's score.
pub fn looked_up<'a, T: Copy>(
    column: &StringChunked,
    listings: impl IntoIterator<Item = (Option<&'a str>, Option<T>)>,
) -> Vec<Option<T>> {
    let (keys, values): (Vec<&str>, Vec<T>) = listings
        .into_iter()
        .filter_map(|(key, value)| Some((key?, value?)))
        .unzip();
    text_positions(column, &keys)
        .into_iter()
        .map(|at| at.map(|at| values[at as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_positions_find_short_and_long_keys_as_a_map_of_text_would() {
        let keys = [
            "P1",
            "",
            "P10",
            "exactly12chr",
            "thirteen_char",
            "a much longer product id",
            "P1",
        ];
        let rows = [
            Some("P10"),
            None,
            Some("P1"),
            Some(""),
            Some("P100"),
            Some("exactly12chr"),
            Some("exactly12chX"),
            Some("thirteen_char"),
            Some("thirteen_chaR"),
            Some("a much longer product id"),
            Some("p1"),
        ];
        let mut column = StringChunked::new("id".into(), &rows[..6]);
        column.append(&StringChunked::new("id".into(), &rows[6..])).unwrap();
        assert!(column.chunks().len() > 1, "the case of several chunks");
        let by_text: foldhash::HashMap<&str, u32> = keys.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
        let expected: Vec<Option<u32>> = rows.iter().map(|r| r.and_then(|r| by_text.get(r).copied())).collect();
        assert_eq!(text_positions(&column, &keys), expected);
        assert_eq!(expected[2], Some(6), "a repeated key gives its last position");
        assert_eq!(
            expected.iter().flatten().count(),
            6,
            "short, empty, 12-byte and long keys all found"
        );
    }

    #[test]
    fn values_and_nulls_come_out_in_order_across_chunks() {
        let mut column = Int64Chunked::new("a".into(), &[Some(1), None, Some(3)]);
        column
            .append(&Int64Chunked::new("a".into(), &[Some(4), Some(5)]))
            .unwrap();
        column.append(&Int64Chunked::new("a".into(), &[None, Some(7)])).unwrap();
        assert!(column.chunks().len() > 1, "the case this is for");
        let read: Vec<Option<i64>> = optional_values(&column).collect();
        assert_eq!(read, column.iter().collect::<Vec<_>>());
        assert_eq!(read, vec![Some(1), None, Some(3), Some(4), Some(5), None, Some(7)]);
    }

    #[test]
    fn looked_up_values_skip_incomplete_listings_and_take_a_repeated_key_s_last() {
        let listings = [
            (Some("G1"), Some(10)),
            (None, Some(99)),
            (Some("G2"), None),
            (Some("G3"), Some(30)),
            (Some("G3"), Some(31)),
            (Some("a code longer than twelve"), Some(40)),
        ];
        let rows = StringChunked::from_iter_options(
            "ges".into(),
            [
                Some("G1"),
                None,
                Some("G2"),
                Some("G3"),
                Some("G9"),
                Some("a code longer than twelve"),
            ]
            .into_iter(),
        );
        assert_eq!(
            looked_up(&rows, listings),
            [Some(10), None, None, Some(31), None, Some(40)]
        );
    }
}
