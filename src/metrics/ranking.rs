//! Recommendation lists: accuracy at k over users with something relevant, and what the lists
//! look like as a whole (catalog coverage, intra-list diversity).

use super::{MetricError, Result};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

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

/// Accuracy metrics averaged over users with at least one relevant item; such a user without a
/// list counts as zero hits. Only the first `k` recommendations count.
pub fn accuracy<U: Eq + Hash, I: Eq + Hash>(
    recommended: &HashMap<U, Vec<I>>,
    relevant: &HashMap<U, HashSet<I>>,
    k: usize,
) -> Result<RankingMetrics> {
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    let (mut precision, mut recall, mut ndcg, mut hit_rate, mut map) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut users = 0usize;
    for (user, wanted) in relevant.iter().filter(|(_, items)| !items.is_empty()) {
        users += 1;
        let list = recommended.get(user).map(|l| &l[..l.len().min(k)]).unwrap_or(&[]);
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
        precision += hits as f64 / k as f64;
        recall += hits as f64 / wanted.len() as f64;
        ndcg += dcg / ideal;
        hit_rate += if hits > 0 { 1.0 } else { 0.0 };
        map += ap / ideal_hits as f64;
    }
    if users == 0 {
        return Err(MetricError::NoRelevantUsers);
    }
    let n = users as f64;
    Ok(RankingMetrics {
        users,
        k,
        precision_at_k: precision / n,
        recall_at_k: recall / n,
        ndcg_at_k: ndcg / n,
        hit_rate_at_k: hit_rate / n,
        map_at_k: map / n,
    })
}

/// Distinct catalog items in any user's top `k`, over the catalog's size.
pub fn coverage<U, I: Eq + Hash>(recommended: &HashMap<U, Vec<I>>, catalog: &HashSet<I>, k: usize) -> Result<f64> {
    if catalog.is_empty() {
        return Err(MetricError::Empty);
    }
    let shown: HashSet<&I> = recommended
        .values()
        .flat_map(|list| list.iter().take(k))
        .filter(|item| catalog.contains(*item))
        .collect();
    Ok(shown.len() as f64 / catalog.len() as f64)
}

/// Mean over users with at least two items (in their top `k`) of the mean pairwise cosine
/// distance between the items' vectors; a zero vector has cosine 0 with anything.
pub fn intra_list_diversity<U, I: Eq + Hash + ToString>(
    recommended: &HashMap<U, Vec<I>>,
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
    let (mut total, mut users) = (0.0, 0usize);
    for list in recommended.values() {
        let list = &list[..list.len().min(k)];
        if list.len() < 2 {
            continue;
        }
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
        total += sum / pairs as f64;
        users += 1;
    }
    if users == 0 {
        return Err(MetricError::Empty);
    }
    Ok(total / users as f64)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|y| y * y).sum::<f64>()).sqrt();
    if norm == 0.0 { 0.0 } else { dot / norm }
}
