//! Product recommendation from client × product holdings (implicit feedback).
//!
//! Candidates, all scoring a client's not-yet-held products from the products they hold:
//! - `popularity`: products most opened recently — also the cold-start answer for clients
//!   holding nothing;
//! - `svd_knn` (the seed system's): item embeddings from a truncated SVD (30 components) of
//!   the holdings matrix, each product scored by its similarity to the client's products among
//!   its nearest neighbours;
//! - `cooccurrence`: P(product | held product), summed over the client's products;
//! - `ease`: Steck's EASE, a closed-form item-item regression (for ~50 products it is cheap).
//!
//! Held products are never recommended. Evaluation is temporal: fit on holdings at a cut-off,
//! score against the products clients opened after it.

// Item-by-item loops over small dense matrices read best with explicit indices.
#![allow(clippy::needless_range_loop)]

pub use super::baskets::Baskets;
pub use super::holdings_index::{Holding, HoldingsIndex, Holdout, holdout, holdout_from};
pub use crate::config::models::{Method, RecommenderConfig};
use crate::metrics::ranking;
use crate::vocab::ModelKind;
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Clients' held products as item indices, and recent openings per item.
pub struct Interactions {
    pub items: Vec<String>,
    pub baskets: Baskets,
    pub recent_openings: Vec<f64>,
}

/// A fitted recommender: item-to-item weights (or none, for popularity) and the popularity
/// fallback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recommender {
    pub method: Method,
    pub items: Vec<String>,
    pub popularity: Vec<f64>,
    /// `weights[i][j]`: how much holding `i` recommends `j` (empty for popularity).
    pub weights: Vec<Vec<f64>>,
}

impl Recommender {
    pub fn fit(
        method: Method,
        data: &Interactions,
        config: &RecommenderConfig,
    ) -> Result<Recommender, RecommenderError> {
        let n = data.items.len();
        let weights = match method {
            Method::Popularity => Vec::new(),
            Method::Cooccurrence => cooccurrence(data, n),
            Method::Ease => ease(data, n, config.ease_lambda)?,
            Method::SvdKnn => svd_knn(data, n, config.svd_components, config.knn_neighbours),
        };
        Ok(Recommender {
            method,
            items: data.items.clone(),
            popularity: data.recent_openings.clone(),
            weights,
        })
    }

    /// Every item's score for a client holding `held` (held items included): popularity when
    /// the client holds nothing (cold start) or the method has no weights.
    pub fn scores(&self, held: &[usize]) -> Vec<f64> {
        let n = self.items.len();
        let mut scores = vec![0.0f64; n];
        if held.is_empty() || self.weights.is_empty() {
            scores.clone_from(&self.popularity);
        } else {
            for &i in held {
                for (j, w) in self.weights[i].iter().enumerate() {
                    scores[j] += w;
                }
            }
            // Ties (e.g. items no held product points to) break by popularity.
            let top = self.popularity.iter().cloned().fold(0.0, f64::max).max(1.0);
            for j in 0..n {
                scores[j] += 1e-6 * self.popularity[j] / top;
            }
        }
        scores
    }

    /// Top `k` (item index, score) for a client holding `held`, held items excluded.
    pub fn recommend(&self, held: &[usize], k: usize) -> Vec<(usize, f64)> {
        Self::top(&self.scores(held), held, k)
    }

    /// Top `k` of `scores` (from [`scores`](Self::scores)), held items excluded.
    pub fn top(scores: &[f64], held: &[usize], k: usize) -> Vec<(usize, f64)> {
        let mut ranked: Vec<(usize, f64)> = (0..scores.len())
            .filter(|j| !held.contains(j))
            .map(|j| (j, scores[j]))
            .collect();
        // Higher score first, then the lower index: a total order, so picking the first k
        // before sorting them gives the full sort's first k.
        let order = |a: &(usize, f64), b: &(usize, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if k > 0 && k < ranked.len() {
            ranked.select_nth_unstable_by(k - 1, order);
        }
        ranked.truncate(k);
        ranked.sort_unstable_by(order);
        ranked
    }

    /// Where `item` stands in the client's own list (1: their first recommendation) and its
    /// score; `None` when they hold it. Scores are only comparable within one client (a
    /// client holding nothing is scored by popularity counts), so whom to target with a
    /// product is decided by this rank first.
    pub fn rank_of(&self, held: &[usize], item: usize) -> Option<(usize, f64)> {
        if held.contains(&item) {
            return None;
        }
        let scores = self.scores(held);
        let score = *scores.get(item)?;
        let ahead = (0..scores.len())
            .filter(|j| *j != item && !held.contains(j))
            .filter(|&j| scores[j] > score || (scores[j] == score && j < item))
            .count();
        Some((ahead + 1, score))
    }
}

fn gram(data: &Interactions, n: usize) -> Vec<Vec<f64>> {
    let mut g = vec![vec![0.0; n]; n];
    for basket in data.baskets.iter() {
        for &i in basket {
            for &j in basket {
                g[i][j] += 1.0;
            }
        }
    }
    g
}

fn cooccurrence(data: &Interactions, n: usize) -> Vec<Vec<f64>> {
    let g = gram(data, n);
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j || g[i][i] == 0.0 {
                        0.0
                    } else {
                        g[i][j] / g[i][i]
                    }
                })
                .collect()
        })
        .collect()
}

/// Why a recommender cannot be fitted or measured.
#[derive(Debug, thiserror::Error)]
pub enum RecommenderError {
    #[error("EASE: XᵀX + λI is not positive definite (λ = {lambda}); raise models.recommender.ease_lambda")]
    NotPositiveDefinite { lambda: f64 },
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
}

fn to_matrix(rows: &[Vec<f64>]) -> DMatrix<f64> {
    let n = rows.len();
    DMatrix::from_fn(n, n, |i, j| rows[i][j])
}

/// B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, with a zero diagonal. XᵀX + λI is symmetric
/// positive definite for λ > 0, so it is inverted through its Cholesky factor; a matrix that
/// is not (λ ≤ 0, or numbers gone wrong) is an error, never a silently skipped pivot.
fn ease(data: &Interactions, n: usize, lambda: f64) -> Result<Vec<Vec<f64>>, RecommenderError> {
    let mut g = to_matrix(&gram(data, n));
    for i in 0..n {
        g[(i, i)] += lambda;
    }
    let p = g
        .cholesky()
        .ok_or(RecommenderError::NotPositiveDefinite { lambda })?
        .inverse();
    Ok((0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { 0.0 } else { -p[(i, j)] / p[(j, j)] })
                .collect()
        })
        .collect())
}

/// Eigen-decomposition of a symmetric matrix: (values, vectors as columns), values descending.
fn symmetric_eigen(a: &[Vec<f64>]) -> (Vec<f64>, DMatrix<f64>) {
    let n = a.len();
    let eigen = nalgebra::SymmetricEigen::new(to_matrix(a));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| eigen.eigenvalues[y].total_cmp(&eigen.eigenvalues[x]));
    let values = order.iter().map(|&i| eigen.eigenvalues[i]).collect();
    let vectors = DMatrix::from_fn(n, n, |row, col| eigen.eigenvectors[(row, order[col])]);
    (values, vectors)
}

/// Item embeddings V·Σ from the truncated SVD of the holdings matrix X (via XᵀX = VΣ²Vᵀ);
/// each item keeps its `neighbours` most cosine-similar items as weights.
fn svd_knn(data: &Interactions, n: usize, components: usize, neighbours: usize) -> Vec<Vec<f64>> {
    let (values, vectors) = symmetric_eigen(&gram(data, n));
    let k = components.min(n);
    let embedding: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..k).map(|c| vectors[(i, c)] * values[c].max(0.0).sqrt()).collect())
        .collect();
    let norm: Vec<f64> = embedding
        .iter()
        .map(|e| e.iter().map(|x| x * x).sum::<f64>().sqrt())
        .collect();
    let mut weights = vec![vec![0.0; n]; n];
    for i in 0..n {
        let mut similar: Vec<(usize, f64)> = (0..n)
            .filter(|&j| j != i && norm[i] > 0.0 && norm[j] > 0.0)
            .map(|j| {
                (
                    j,
                    embedding[i].iter().zip(&embedding[j]).map(|(a, b)| a * b).sum::<f64>() / (norm[i] * norm[j]),
                )
            })
            .collect();
        similar.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (j, s) in similar.into_iter().take(neighbours) {
            weights[i][j] = s.max(0.0);
        }
    }
    weights
}

/// Precision/recall/NDCG/MAP/hit rate at k, coverage and diversity of one fitted candidate on
/// `truth` (client index → products opened after the cut-off).
pub fn evaluate(
    model: &Recommender,
    baskets: &Baskets,
    truth: &HashMap<usize, HashSet<usize>>,
    categories: &[String],
    k: usize,
) -> Result<RecommenderMetrics, crate::metrics::MetricError> {
    evaluate_by_user(model, baskets, truth, categories, k).map(|(metrics, _)| metrics)
}

/// [`evaluate`], with each client's own accuracy (by position in `baskets`) for figures by
/// group.
pub fn evaluate_by_user(
    model: &Recommender,
    baskets: &Baskets,
    truth: &HashMap<usize, HashSet<usize>>,
    categories: &[String],
    k: usize,
) -> Result<(RecommenderMetrics, Vec<(usize, ranking::UserAccuracy)>), crate::metrics::MetricError> {
    // Many clients hold the very same basket (a million clients, a few dozen products): each
    // distinct one, in its order (the scores are summed in it), is ranked once, and each
    // client points at its basket's list by index, none copied and no map of every client.
    let (distinct, seen) = ranking::distinct_keys(baskets.iter());
    let lists: Vec<Vec<usize>> = distinct
        .par_iter()
        .map(|held| model.recommend(held, k).into_iter().map(|(j, _)| j).collect())
        .collect();
    tracing::debug!("recommender: lists ranked");
    // Accuracy looks only at the clients with something to find.
    let recommended: foldhash::HashMap<usize, &[usize]> = truth
        .keys()
        .filter_map(|c| seen.get(*c).map(|s| (*c, lists[*s].as_slice())))
        .collect();
    let users: Vec<(usize, ranking::UserAccuracy)> = ranking::by_user(&recommended, truth, k)?
        .into_iter()
        .map(|(c, u)| (*c, u))
        .collect();
    let accuracy = ranking::summarize(&users, k)?;
    let catalog: HashSet<usize> = (0..model.items.len()).collect();
    let coverage = ranking::coverage_of_lists(&lists, &catalog, k)?;
    tracing::debug!("recommender: accuracy and coverage measured");
    let distinct: Vec<String> = {
        let mut c = categories.to_vec();
        c.sort();
        c.dedup();
        c
    };
    let vectors: HashMap<usize, Vec<f64>> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (i, distinct.iter().map(|d| f64::from(u8::from(d == c))).collect()))
        .collect();
    let diversity = ranking::shared_list_diversity(&lists, &seen, &vectors, k).unwrap_or(0.0);
    Ok((
        RecommenderMetrics {
            accuracy,
            coverage,
            intra_list_diversity: diversity,
        },
        users,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Interactions {
        // Items 0 and 1 go together, as do 2 and 3; 4 is popular on its own.
        let mut baskets = Vec::new();
        for _ in 0..30 {
            baskets.push(vec![0, 1]);
            baskets.push(vec![2, 3]);
            baskets.push(vec![4]);
        }
        Interactions {
            items: (0..5).map(|i| format!("P{i}")).collect(),
            baskets: Baskets::from(baskets),
            recent_openings: vec![1.0, 1.0, 1.0, 1.0, 9.0],
        }
    }

    #[test]
    fn every_method_finds_the_partner_product_and_never_a_held_one() {
        let data = toy();
        for method in [Method::SvdKnn, Method::Cooccurrence, Method::Ease] {
            let model = Recommender::fit(
                method,
                &data,
                &RecommenderConfig {
                    svd_components: 3,
                    knn_neighbours: 2,
                    ease_lambda: 1.0,
                    ..Default::default()
                },
            )
            .unwrap();
            let top = model.recommend(&[0], 2);
            assert_eq!(top[0].0, 1, "{method:?}: holding 0 should bring 1 first, got {top:?}");
            assert!(
                top.iter().all(|(j, _)| *j != 0),
                "{method:?} recommended a held product"
            );
            assert_eq!(model.recommend(&[2], 1)[0].0, 3, "{method:?}");
        }
    }

    #[test]
    fn clients_holding_nothing_get_the_popular_products() {
        let data = toy();
        let model = Recommender::fit(Method::Ease, &data, &RecommenderConfig::default()).unwrap();
        assert_eq!(model.recommend(&[], 1)[0].0, 4);
        let popular = Recommender::fit(Method::Popularity, &data, &RecommenderConfig::default()).unwrap();
        assert_eq!(popular.recommend(&[4], 1)[0].0, 0, "held 4 excluded; ties by index");
    }

    #[test]
    fn eigen_decomposition_reconstructs_a_symmetric_matrix_in_descending_order() {
        let a = vec![vec![4.0, 1.0, 2.0], vec![1.0, 3.0, 0.5], vec![2.0, 0.5, 5.0]];
        let (values, vectors) = symmetric_eigen(&a);
        for i in 0..3 {
            for j in 0..3 {
                let rebuilt: f64 = (0..3).map(|c| vectors[(i, c)] * values[c] * vectors[(j, c)]).sum();
                assert!((rebuilt - a[i][j]).abs() < 1e-10, "({i},{j}): {rebuilt} vs {}", a[i][j]);
            }
        }
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn ease_inverts_exactly_and_refuses_a_matrix_that_is_not_positive_definite() {
        let data = toy();
        let lambda = 2.0;
        let b = ease(&data, 5, lambda).unwrap();
        let mut g = gram(&data, 5);
        for (i, row) in g.iter_mut().enumerate() {
            row[i] += lambda;
        }
        // (G + λI)(I − B) = diag(1/diag(P)): off its diagonal it vanishes.
        for i in 0..5 {
            for j in 0..5 {
                let value: f64 = (0..5).map(|k| g[i][k] * (f64::from(u8::from(k == j)) - b[k][j])).sum();
                if i != j {
                    assert!(value.abs() < 1e-9, "({i},{j}) {value}");
                }
            }
        }
        assert!(matches!(
            ease(&data, 5, -100.0),
            Err(RecommenderError::NotPositiveDefinite { .. })
        ));
        let err = Recommender::fit(
            Method::Ease,
            &data,
            &RecommenderConfig {
                ease_lambda: -100.0,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ease_lambda"), "{err}");
    }

    #[test]
    fn the_first_k_are_the_full_sorts_first_k_ties_included() {
        let mut rng = crate::data::synth::rng::Rng::new(7);
        for _ in 0..200 {
            // Few distinct scores, so ties are common and broken by index.
            let scores: Vec<f64> = (0..23).map(|_| (rng.normal() * 2.0).round()).collect();
            let held: Vec<usize> = (0..23).filter(|_| rng.normal() > 1.0).collect();
            let mut full: Vec<(usize, f64)> = (0..23).filter(|j| !held.contains(j)).map(|j| (j, scores[j])).collect();
            full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for k in [0, 1, 5, 22, 23, 40] {
                let expected: Vec<(usize, f64)> = full.iter().take(k).copied().collect();
                assert_eq!(
                    Recommender::top(&scores, &held, k),
                    expected,
                    "k {k}, scores {scores:?}"
                );
            }
        }
    }

    #[test]
    fn a_basket_is_the_same_whatever_order_the_holdings_came_in() {
        let index = |rows: Vec<(u32, u32)>| {
            let rows = rows
                .into_iter()
                .map(|(client, item)| {
                    let holding = Holding {
                        item,
                        opened: 1,
                        closed: i32::MAX,
                    };
                    (client, holding)
                })
                .collect();
            let items = (0..4).map(|i| format!("P{i}")).collect();
            HoldingsIndex::of_rows(items, vec!["a".into(); 4], vec![10, 20], vec![(0, i32::MAX); 2], rows)
        };
        let forward = index(vec![(0, 3), (0, 1), (1, 1), (1, 3)]);
        let (active, baskets) = forward.baskets_at(5);
        assert_eq!(active, vec![0, 1]);
        assert_eq!(
            baskets.iter().collect::<Vec<_>>(),
            vec![&[1, 3][..], &[1, 3]],
            "one basket for one set of products"
        );
    }
}

/// One candidate's measured figures on the temporal holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub method: Method,
    pub metrics: RecommenderMetrics,
}

/// Accuracy at k, and what the lists look like as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommenderMetrics {
    #[serde(flatten)]
    pub accuracy: ranking::RankingMetrics,
    pub coverage: f64,
    pub intra_list_diversity: f64,
}

/// The interactions a model fitted at the holdout's cut-off learns from.
pub fn interactions_at(index: &HoldingsIndex, holdout: &Holdout, config: &RecommenderConfig) -> Interactions {
    let popularity_from = holdout.cutoff.month_end_after(-config.popularity_months).0;
    Interactions {
        items: index.items.clone(),
        baskets: holdout.baskets.clone(),
        recent_openings: index.openings(popularity_from, holdout.cutoff.0),
    }
}

/// Fits every candidate at the cut-off `holdout_months` before `today`, measures each on the
/// products opened since, and returns them with the holdout's size.
pub fn compare(
    index: &HoldingsIndex,
    today: crate::data::date::Date,
    config: &RecommenderConfig,
) -> Result<(Vec<Candidate>, usize, crate::data::date::Date), RecommenderError> {
    let held_out = holdout(index, today, config.holdout_months);
    let data = interactions_at(index, &held_out, config);
    let candidates = Method::ALL
        .iter()
        .map(|&method| {
            let model = Recommender::fit(method, &data, config)?;
            Ok(Candidate {
                method,
                metrics: evaluate(&model, &data.baskets, &held_out.truth, &index.categories, config.k)?,
            })
        })
        .collect::<Result<Vec<_>, RecommenderError>>()?;
    Ok((candidates, held_out.truth.len(), held_out.cutoff))
}

/// The configured method, or the candidate with the best Precision@k.
pub fn choose(candidates: &[Candidate], config: &RecommenderConfig) -> Method {
    config.method.unwrap_or_else(|| {
        candidates
            .iter()
            .max_by(|a, b| {
                let p = |c: &Candidate| c.metrics.accuracy.precision_at_k;
                p(a).total_cmp(&p(b))
            })
            .map(|c| c.method)
            .unwrap_or(Method::Popularity)
    })
}

/// The chosen method fitted on everything up to `today`.
pub fn fit_final(
    index: &HoldingsIndex,
    today: crate::data::date::Date,
    method: Method,
    config: &RecommenderConfig,
) -> Result<Recommender, RecommenderError> {
    let (_, baskets) = index.baskets_at(today.0);
    let from = today.month_end_after(-config.popularity_months).0;
    let data = Interactions {
        items: index.items.clone(),
        baskets,
        recent_openings: index.openings(from, today.0),
    };
    Recommender::fit(method, &data, config)
}

/// What the registry keeps of a recommender: the fitted model and the catalog to name items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedRecommender {
    pub model: Recommender,
    pub names: Vec<String>,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecommenderMeta {
    pub model: ModelKind,
    pub version: u32,
    pub created_at: String,
    pub method: Method,
    pub chosen_by: String,
    pub config: RecommenderConfig,
    pub cutoff: String,
    pub trained_on: String,
    pub holdout_clients: usize,
    pub candidates: Vec<Candidate>,
    pub training_seconds: f64,
}

/// Compares the candidates, fits the chosen one on all holdings up to the snapshot, and adds
/// it to the registry (champion when there is none yet, else challenger).
pub fn train_and_register(
    snapshot: &crate::data::snapshot::Snapshot,
    config: &RecommenderConfig,
    registry: &super::registry::Registry,
) -> Result<RecommenderMeta, super::tabular::TrainError> {
    use super::tabular::TrainError;
    let started = std::time::Instant::now();
    let index = HoldingsIndex::new(snapshot)?;
    let (candidates, holdout_clients, cutoff) = compare(&index, snapshot.date, config)?;
    let method = choose(&candidates, config);
    let model = fit_final(&index, snapshot.date, method, config)?;
    let saved = SavedRecommender {
        model,
        names: index.names.clone(),
        categories: index.categories.clone(),
    };
    let mut meta = RecommenderMeta {
        model: ModelKind::Recommender,
        version: 0,
        created_at: crate::vocab::time::now_iso(),
        method,
        chosen_by: if config.method.is_some() {
            "configuration".into()
        } else {
            format!("best Precision@{} on the holdout", config.k)
        },
        config: config.clone(),
        cutoff: cutoff.to_string(),
        trained_on: snapshot.date.to_string(),
        holdout_clients,
        candidates,
        training_seconds: started.elapsed().as_secs_f64(),
    };
    let model_text = pretty(&saved);
    let version = registry.add_version::<TrainError>(ModelKind::Recommender, |dir| {
        crate::fsutil::write_bytes_atomic(&dir.join("model.json"), model_text.as_bytes()).map_err(|e| {
            TrainError::File {
                path: dir.display().to_string(),
                message: e.to_string(),
            }
        })
    })?;
    meta.version = version;
    let path = registry.version_dir(ModelKind::Recommender, version).join("meta.json");
    crate::fsutil::write_bytes_atomic(&path, pretty(&meta).as_bytes()).map_err(|e| TrainError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if registry.aliases(ModelKind::Recommender)?.champion.is_none() {
        registry.promote(ModelKind::Recommender, version)?;
    } else {
        registry.set_challenger(ModelKind::Recommender, version)?;
    }
    Ok(meta)
}

/// Pretty JSON of plain data (maps with string keys, numbers, strings): cannot fail.
fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

impl SavedRecommender {
    /// Every client of the snapshot on `day` (by id) with what they hold then, as this model's
    /// item positions: the saved model's catalog order may differ from the snapshot's, so items
    /// are matched by id (and ones it does not know are left out).
    pub fn holdings_at(&self, index: &HoldingsIndex, day: i32) -> Vec<(i64, Vec<usize>)> {
        // The index's item → the model's (products the model never saw: none).
        let model_item: Vec<Option<usize>> = index
            .items
            .iter()
            .map(|id| self.model.items.iter().position(|m| m == id))
            .collect();
        let (active, baskets) = index.baskets_at(day);
        active
            .iter()
            .zip(baskets.iter())
            .map(|(client, basket)| {
                let mut held: Vec<usize> = basket.iter().filter_map(|i| model_item[*i]).collect();
                held.sort_unstable();
                (index.clients[*client], held)
            })
            .collect()
    }

    pub fn load(
        registry: &super::registry::Registry,
        version: Option<u32>,
    ) -> Result<SavedRecommender, super::tabular::TrainError> {
        use super::tabular::TrainError;
        let (_, dir) = registry.resolve(ModelKind::Recommender, version)?;
        let path = dir.join("model.json");
        let bytes = std::fs::read(&path).map_err(|e| TrainError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}
