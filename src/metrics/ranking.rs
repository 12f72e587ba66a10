//! Recommendation lists: accuracy at k over users with something relevant, and what the lists
//! look like as a whole (catalog coverage, intra-list diversity).

use super::{MetricError, Result};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RankingMetrics {
    pub users: usize,
    pub k: usize,
    pub precision_at_k: f64,
    pub recall_at_k: f64,
    pub ndcg_at_k: f64,
    pub hit_rate_at_k: f64,
    pub map_at_k: f64,
}

/// One user's accuracy at k: what [`accuracy`] averages, kept per user so the figures can also
/// be read by group (a region, a segment).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserAccuracy {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub hit: f64,
    pub average_precision: f64,
}

/// Each user with at least one relevant item, in the users' order, with their accuracy at
/// `k`; such a user without a list counts as zero hits. Only the first `k` recommendations
/// count.
pub fn by_user<'a, U: Eq + Hash + Ord, I: Eq + Hash, L: AsRef<[I]>, S: BuildHasher>(
    recommended: &HashMap<U, L, S>,
    relevant: &'a HashMap<U, HashSet<I>>,
    k: usize,
) -> Result<Vec<(&'a U, UserAccuracy)>> {
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    let mut ordered: Vec<(&U, &HashSet<I>)> = relevant.iter().filter(|(_, items)| !items.is_empty()).collect();
    ordered.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(ordered
        .into_iter()
        .map(|(user, wanted)| {
            let list = recommended.get(user).map(|l| top(l.as_ref(), k)).unwrap_or(&[]);
            let (mut hits, mut dcg, mut ap) = (0usize, 0.0, 0.0);
            for (position, item) in list.iter().enumerate() {
                if wanted.contains(item) {
                    hits += 1;
                    let rank = position + 1;
                    dcg += 1.0 / ((rank + 1) as f64).log2();
                    ap += hits as f64 / rank as f64;
                }
            }
            let ideal_hits = wanted.len().min(k);
            let ideal: f64 = (1..=ideal_hits).map(|rank| 1.0 / ((rank + 1) as f64).log2()).sum();
            let figures = UserAccuracy {
                precision: hits as f64 / k as f64,
                recall: hits as f64 / wanted.len() as f64,
                ndcg: dcg / ideal,
                hit: if hits > 0 { 1.0 } else { 0.0 },
                average_precision: ap / ideal_hits as f64,
            };
            (user, figures)
        })
        .collect())
}

/// Accuracy metrics averaged over users with at least one relevant item ([`by_user`]). Users
/// are summed in their order, so the same lists give the same figures to the last digit (a
/// map's own order changes from one process to the next).
pub fn accuracy<U: Eq + Hash + Ord, I: Eq + Hash, L: AsRef<[I]>, S: BuildHasher>(
    recommended: &HashMap<U, L, S>,
    relevant: &HashMap<U, HashSet<I>>,
    k: usize,
) -> Result<RankingMetrics> {
    summarize(&by_user(recommended, relevant, k)?, k)
}

/// The mean of per-user figures ([`by_user`]).
pub fn summarize<U>(users: &[(U, UserAccuracy)], k: usize) -> Result<RankingMetrics> {
    if users.is_empty() {
        return Err(MetricError::NoRelevantUsers);
    }
    let (mut precision, mut recall, mut ndcg, mut hit_rate, mut map) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (_, u) in users {
        precision += u.precision;
        recall += u.recall;
        ndcg += u.ndcg;
        hit_rate += u.hit;
        map += u.average_precision;
    }
    let n = users.len() as f64;
    Ok(RankingMetrics {
        users: users.len(),
        k,
        precision_at_k: precision / n,
        recall_at_k: recall / n,
        ndcg_at_k: ndcg / n,
        hit_rate_at_k: hit_rate / n,
        map_at_k: map / n,
    })
}

/// Distinct catalog items in any user's top `k`, over the catalog's size.
pub fn coverage<U, I: Eq + Hash, L: AsRef<[I]>, S: BuildHasher>(
    recommended: &HashMap<U, L, S>,
    catalog: &HashSet<I>,
    k: usize,
) -> Result<f64> {
    // A million users share a few thousand lists: each distinct one is looked at once.
    let lists: foldhash::HashSet<&[I]> = recommended.values().map(|list| top(list.as_ref(), k)).collect();
    let lists: Vec<&[I]> = lists.into_iter().collect();
    coverage_of_lists(&lists, catalog, k)
}

/// [`coverage`] of the distinct lists users see (each at least once).
pub fn coverage_of_lists<I: Eq + Hash, L: AsRef<[I]>>(lists: &[L], catalog: &HashSet<I>, k: usize) -> Result<f64> {
    if catalog.is_empty() {
        return Err(MetricError::Empty);
    }
    let shown: HashSet<&I> = lists
        .iter()
        .flat_map(|list| top(list.as_ref(), k).iter())
        .filter(|item| catalog.contains(*item))
        .collect();
    Ok(shown.len() as f64 / catalog.len() as f64)
}

/// Mean over users with at least two items (in their top `k`) of the mean pairwise cosine
/// distance between the items' vectors; a zero vector has cosine 0 with anything. Summed in
/// the users' order, as [`accuracy`]; a list many users share is measured once.
pub fn intra_list_diversity<U: Ord, I: Eq + Hash + ToString, L: AsRef<[I]>, S: BuildHasher>(
    recommended: &HashMap<U, L, S>,
    vectors: &HashMap<I, Vec<f64>>,
    k: usize,
) -> Result<f64> {
    let mut ordered: Vec<(&U, &[I])> = recommended.iter().map(|(u, l)| (u, top(l.as_ref(), k))).collect();
    ordered.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let (lists, seen) = shared_by_key(ordered.iter().map(|(_, list)| *list), |list| list);
    shared_list_diversity(&lists, &seen, vectors, k)
}

/// Each distinct key once (in the order first met) made into a value by `make`, and for each
/// key met the index of its value: what many users share (their lists, their baskets' lists)
/// made and looked at once each.
pub fn shared_by_key<'k, K: Eq + Hash + ?Sized + 'k, V>(
    keys: impl IntoIterator<Item = &'k K>,
    make: impl FnMut(&'k K) -> V,
) -> (Vec<V>, Vec<usize>) {
    let (distinct, seen) = distinct_keys(keys);
    (distinct.into_iter().map(make).collect(), seen)
}

/// Each distinct key once, in the order first met, and for each key met the index of its
/// distinct one: [`shared_by_key`] before anything is made, for callers that make the values
/// on every core.
pub fn distinct_keys<'k, K: Eq + Hash + ?Sized + 'k>(
    keys: impl IntoIterator<Item = &'k K>,
) -> (Vec<&'k K>, Vec<usize>) {
    let mut index: foldhash::HashMap<&K, usize> = foldhash::HashMap::default();
    let mut distinct = Vec::new();
    let seen = keys
        .into_iter()
        .map(|key| {
            *index.entry(key).or_insert_with(|| {
                distinct.push(key);
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, seen)
}

/// [`intra_list_diversity`] of lists users share: `lists` each distinct list, `seen` the list
/// each user sees (by index, in the users' order). Each list is measured once and the users'
/// values summed in their order, so it is the map form's figure to the last digit, without a
/// map of every user (ten million at a large bank) to build and sort.
pub fn shared_list_diversity<I: Eq + Hash + ToString, L: AsRef<[I]>>(
    lists: &[L],
    seen: &[usize],
    vectors: &HashMap<I, Vec<f64>>,
    k: usize,
) -> Result<f64> {
    let mut dimension = None;
    for v in vectors.values() {
        match dimension {
            None => dimension = Some(v.len()),
            Some(d) if d != v.len() => return Err(MetricError::VectorLength(d, v.len())),
            _ => {}
        }
    }
    let mut measured: Vec<Option<Option<f64>>> = vec![None; lists.len()];
    let (mut total, mut users) = (0.0, 0usize);
    for &s in seen {
        let diversity = match measured[s] {
            Some(d) => d,
            None => {
                let list = top(lists[s].as_ref(), k);
                let d = if list.len() < 2 {
                    None
                } else {
                    Some(list_diversity(list, vectors)?)
                };
                measured[s] = Some(d);
                d
            }
        };
        if let Some(d) = diversity {
            total += d;
            users += 1;
        }
    }
    if users == 0 {
        return Err(MetricError::Empty);
    }
    Ok(total / users as f64)
}

/// The mean pairwise cosine distance of one list's items (two or more).
fn list_diversity<I: Eq + Hash + ToString>(list: &[I], vectors: &HashMap<I, Vec<f64>>) -> Result<f64> {
    let items: Vec<&Vec<f64>> = list
        .iter()
        .map(|item| {
            vectors
                .get(item)
                .ok_or_else(|| MetricError::MissingVector(item.to_string()))
        })
        .collect::<Result<_>>()?;
    let (mut sum, mut pairs) = (0.0, 0usize);
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            sum += 1.0 - cosine(items[i], items[j]);
            pairs += 1;
        }
    }
    Ok(sum / pairs as f64)
}

/// The first `k` of a list.
fn top<I>(list: &[I], k: usize) -> &[I] {
    &list[..list.len().min(k)]
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|y| y * y).sum::<f64>()).sqrt();
    if norm == 0.0 { 0.0 } else { dot / norm }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same lists in maps of different orders (each HashMap has its own) give the same
    /// figures to the last digit.
    #[test]
    fn figures_do_not_depend_on_a_map_s_order() {
        let lists: Vec<(u32, Vec<u32>, HashSet<u32>)> = (0..2_000u32)
            .map(|u| {
                let list: Vec<u32> = (0..5).map(|r| (u * 7 + r * 3) % 23).collect();
                let wanted: HashSet<u32> = (0..(u % 9 + 1)).map(|w| (u * 11 + w * 5) % 23).collect();
                (u, list, wanted)
            })
            .collect();
        let vectors: HashMap<u32, Vec<f64>> = (0..23u32)
            .map(|i| (i, vec![f64::from(i % 3), f64::from(i % 5) / 3.0, f64::from(i) / 7.0]))
            .collect();
        let figures = |reversed: bool| {
            let mut ordered: Vec<&(u32, Vec<u32>, HashSet<u32>)> = lists.iter().collect();
            if reversed {
                ordered.reverse();
            }
            let recommended: HashMap<u32, Vec<u32>> = ordered.iter().map(|(u, l, _)| (*u, l.clone())).collect();
            let relevant: HashMap<u32, HashSet<u32>> = ordered.iter().map(|(u, _, w)| (*u, w.clone())).collect();
            let a = accuracy(&recommended, &relevant, 5).unwrap();
            let d = intra_list_diversity(&recommended, &vectors, 5).unwrap();
            [a.precision_at_k, a.recall_at_k, a.ndcg_at_k, a.map_at_k, d].map(f64::to_bits)
        };
        let first = figures(false);
        for round in 0..10 {
            assert_eq!(figures(round % 2 == 1), first, "round {round}");
        }
        // Shared lists (each distinct list once, every user pointing at one) give the map's
        // figures: the users below share 23 lists, each user's top 5 of a longer one.
        let distinct: Vec<Vec<u32>> = (0..23u32)
            .map(|l| (0..7).map(|r| (l * 5 + r * 2) % 23).collect())
            .collect();
        let seen: Vec<usize> = (0..2_000usize).map(|u| (u * 13) % 23).collect();
        let recommended: HashMap<usize, Vec<u32>> = seen
            .iter()
            .enumerate()
            .map(|(u, s)| (u, distinct[*s].clone()))
            .collect();
        let catalog: HashSet<u32> = (0..30).collect();
        assert_eq!(
            shared_list_diversity(&distinct, &seen, &vectors, 5).unwrap().to_bits(),
            intra_list_diversity(&recommended, &vectors, 5).unwrap().to_bits()
        );
        assert_eq!(
            coverage_of_lists(&distinct, &catalog, 5).unwrap().to_bits(),
            coverage(&recommended, &catalog, 5).unwrap().to_bits()
        );
    }
}
