//! Sorting many floats fast: an LSD radix sort over their bit patterns, skipping the passes
//! where every key shares the byte (probabilities share their top bytes). On 10 million
//! scores it is several times faster than a comparison sort.

/// Maps a float's bits to an unsigned key with the same order (negative numbers flipped).
#[inline]
fn key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

#[inline]
fn value(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

/// Sorts finite floats ascending (−0.0 before 0.0; callers compare with `==`, so they tie).
pub fn sort_floats(values: &mut [f64]) {
    if values.len() < 2048 {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = values.iter().map(|v| key(*v)).collect();
    let mut buffer = vec![0u64; keys.len()];
    let mut counts = [[0usize; 256]; 8];
    for k in &keys {
        for (byte, count) in counts.iter_mut().enumerate() {
            count[((k >> (byte * 8)) & 0xFF) as usize] += 1;
        }
    }
    let n = keys.len();
    for (byte, count) in counts.iter().enumerate() {
        if count.contains(&n) {
            continue; // every key has the same byte here
        }
        let mut offsets = [0usize; 256];
        let mut total = 0;
        for (offset, c) in offsets.iter_mut().zip(count.iter()) {
            *offset = total;
            total += c;
        }
        let shift = byte * 8;
        for &k in &keys {
            let slot = &mut offsets[((k >> shift) & 0xFF) as usize];
            buffer[*slot] = k;
            *slot += 1;
        }
        std::mem::swap(&mut keys, &mut buffer);
    }
    for (v, k) in values.iter_mut().zip(keys) {
        *v = value(k);
    }
}

/// A sorted copy.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut copy = values.to_vec();
    sort_floats(&mut copy);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_agrees_with_a_comparison_sort() {
        let mut state = 12345u64;
        let mut values: Vec<f64> = (0..50_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let x = (state >> 11) as f64 / (1u64 << 53) as f64;
                match i % 5 {
                    0 => x,
                    1 => -x * 1e6,
                    2 => (x * 10.0).floor(),
                    3 => x * 1e-300,
                    _ => -0.0,
                }
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_by(f64::total_cmp);
        sort_floats(&mut values);
        assert_eq!(
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
