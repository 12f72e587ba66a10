//! A column's values read from its chunks' buffers. polars' own `iter` zips every value with
//! its validity bit through a chain of adapters, which costs more than the work done on
//! millions of rows (holdings indexed, design matrices built).

use polars::prelude::*;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
