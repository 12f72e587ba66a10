//! XGBoost's trees laid out for prediction: each tree a complete binary tree in one array,
//! walked a level at a time by eight rows at once.
//!
//! XGBoost's own predictor follows child pointers a row at a time, with a branch per node and
//! a check for a missing value; for 870 k clients × 200 trees of depth 6 that was ~6 µs a row
//! on one core, most of the daily benchmark's prediction. Here a tree of depth `d` is padded to
//! `2^d − 1` splits (a leaf above the last level becomes splits that always go left, to a copy
//! of the leaf), so a row takes exactly `d` steps of `child = 2·node + 1 + right` with no
//! branch, eight rows' walks interleaved. Values are compared as order-preserving integer keys
//! ([`key`]), each row's keys stored twice so a missing value goes its node's default way
//! without a test. The arithmetic is XGBoost's — the base margin, each tree's leaf added in f32
//! in tree order, then the objective's f32 transform — so predictions are bit for bit
//! XGBoost's; [`Forest::compile`] refuses any model it cannot promise that for, and the booster
//! checks a compiled forest against XGBoost on probe rows before using it
//! (`boosted::TrainedBooster::from_json`).

use serde::Deserialize;
use serde_json::value::RawValue;

/// Deepest tree laid out (2^12 − 1 split nodes); deeper models stay on XGBoost's predictor.
const MAX_DEPTH: usize = 12;
/// Rows taken through every tree before the next: their keys (64 × 2 × features × 4 bytes,
/// 28 KB for 54 features) and one tree's splits stay in L1 while the trees go by.
const BLOCK: usize = 64;
/// Rows a tree walks at once, their slots in registers: eight independent chains of loads
/// hide each step's latency.
const LANES: usize = 8;
/// Rows per task on rayon's threads (and fewer than this are predicted on the caller's).
const TASK: usize = 4096;

/// Why a model cannot be laid out here (it is then predicted by XGBoost).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(String);

fn unsupported(why: impl Into<String>) -> Unsupported {
    Unsupported(why.into())
}

/// What the objective does to a row's margin.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transform {
    /// `binary:logistic`: XGBoost's f32 sigmoid.
    Sigmoid,
    /// `reg:squarederror`: the margin itself.
    Identity,
}

/// One split, compared as order-preserving integer keys (see [`key`]).
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Which of the row's keys to read: the feature's index, plus the number of features when a
    /// missing value goes left (that copy of the keys holds 0 for a missing value, the first
    /// copy `u32::MAX`).
    column: u32,
    /// The threshold's key: a row goes right when its key is at least this.
    threshold: u32,
}

impl Node {
    /// A padding split every row leaves to the left: no key reaches `u32::MAX` in the copy
    /// where a missing value is 0 (the largest, +∞, is `0xFF80_0000`).
    fn left(features: usize) -> Node {
        Node {
            column: features as u32,
            threshold: u32::MAX,
        }
    }
}

/// An f32's place in the order of f32s as a u32: `a < b ⇔ key(a) < key(b)` and `a == b ⇔
/// key(a) == key(b)` for any two non-NaN values (−0 is taken as +0, which it equals), so
/// XGBoost's `!(value < threshold)` is `key(value) >= key(threshold)` without a float compare.
fn key(value: f32) -> u32 {
    let bits = if value == 0.0 { 0 } else { value.to_bits() };
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// One tree of depth `depth`: `2^depth − 1` splits, then `2^depth` leaves, breadth first.
#[derive(Debug)]
struct Tree {
    depth: usize,
    /// Offset of the tree's first split in [`Forest::nodes`], and of its first leaf in
    /// [`Forest::leaves`].
    nodes: usize,
    leaves: usize,
}

/// A model's trees ready to predict, bit for bit as XGBoost would.
#[derive(Debug)]
pub struct Forest {
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    leaves: Vec<f32>,
    /// The margin every row starts from (XGBoost's base score through the objective's link).
    base_margin: f32,
    transform: Transform,
    features: usize,
}

#[derive(Deserialize)]
struct ModelFile<'a> {
    #[serde(borrow)]
    learner: Learner<'a>,
}

#[derive(Deserialize)]
struct Learner<'a> {
    learner_model_param: LearnerParam,
    objective: Objective,
    #[serde(borrow)]
    gradient_booster: GradientBooster<'a>,
}

#[derive(Deserialize)]
struct LearnerParam {
    base_score: String,
    num_class: String,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct Objective {
    name: String,
}

#[derive(Deserialize)]
struct GradientBooster<'a> {
    name: String,
    #[serde(borrow)]
    model: Option<GbTree<'a>>,
}

#[derive(Deserialize)]
struct GbTree<'a> {
    tree_info: Vec<i64>,
    #[serde(borrow)]
    trees: Vec<TreeFile<'a>>,
}

#[derive(Deserialize)]
struct TreeFile<'a> {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    /// Kept as text: thresholds and leaf values are f32, read exactly (serde's f32 goes
    /// through f64, which can round twice).
    #[serde(borrow)]
    split_conditions: &'a RawValue,
    default_left: Vec<u8>,
    #[serde(default)]
    split_type: Vec<u8>,
    #[serde(default)]
    categories_nodes: Vec<i64>,
}

/// `[1.5, -2E-3, …]` as f32, each number rounded once from its decimal text.
fn f32_array(raw: &RawValue) -> Result<Vec<f32>, Unsupported> {
    let text = raw.get().trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| unsupported("split_conditions is not an array"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<f32>()
                .map_err(|_| unsupported(format!("split condition {:?} is not a number", n.trim())))
        })
        .collect()
}

impl Forest {
    /// Lays out a model saved as XGBoost's JSON. Refuses (so XGBoost predicts) anything but
    /// one scalar `gbtree` of numeric splits under `binary:logistic` or `reg:squarederror`.
    pub fn compile(model_json: &[u8]) -> Result<Forest, Unsupported> {
        let file: ModelFile =
            serde_json::from_slice(model_json).map_err(|e| unsupported(format!("unreadable model: {e}")))?;
        let learner = file.learner;
        let transform = match learner.objective.name.as_str() {
            "binary:logistic" => Transform::Sigmoid,
            "reg:squarederror" => Transform::Identity,
            other => return Err(unsupported(format!("objective {other}"))),
        };
        let param = &learner.learner_model_param;
        if param.num_class != "0" || param.num_target.as_deref().is_some_and(|t| t != "1") {
            return Err(unsupported("more than one output"));
        }
        let features: usize = param
            .num_feature
            .parse()
            .map_err(|_| unsupported("num_feature is not a number"))?;
        if features == 0 || features >= (u32::MAX / 2) as usize {
            return Err(unsupported(format!("{features} features")));
        }
        let base_score = param
            .base_score
            .trim_matches(['[', ']'])
            .parse::<f32>()
            .map_err(|_| unsupported(format!("base_score {:?}", param.base_score)))?;
        let base_margin = match transform {
            // XGBoost's `LogisticRegression::ProbToMargin`: clamped, then `-logf(1/x − 1)`.
            Transform::Sigmoid => {
                let p = base_score.clamp(1e-6f32, 1.0f32 - 1e-6f32);
                -(1.0f32 / p - 1.0f32).ln()
            }
            Transform::Identity => base_score,
        };
        if learner.gradient_booster.name != "gbtree" {
            return Err(unsupported(format!("booster {}", learner.gradient_booster.name)));
        }
        let model = learner.gradient_booster.model.ok_or_else(|| unsupported("no trees"))?;
        if model.tree_info.iter().any(|&group| group != 0) || model.tree_info.len() != model.trees.len() {
            return Err(unsupported("trees of more than one output group"));
        }
        let mut forest = Forest {
            trees: Vec::with_capacity(model.trees.len()),
            nodes: Vec::new(),
            leaves: Vec::new(),
            base_margin,
            transform,
            features,
        };
        for (number, tree) in model.trees.iter().enumerate() {
            forest
                .lay_out(tree)
                .map_err(|Unsupported(why)| unsupported(format!("tree {number}: {why}")))?;
        }
        // What `walk`'s unchecked reads rely on: every split reads one of a row's 2 × features keys.
        if forest.nodes.iter().any(|n| n.column as usize >= 2 * forest.features) {
            return Err(unsupported("a split reads past a row's keys"));
        }
        Ok(forest)
    }

    /// Appends one tree, padded to a complete tree of its depth.
    fn lay_out(&mut self, tree: &TreeFile) -> Result<(), Unsupported> {
        let conditions = f32_array(tree.split_conditions)?;
        let n = tree.left_children.len();
        if [
            tree.right_children.len(),
            tree.split_indices.len(),
            conditions.len(),
            tree.default_left.len(),
        ]
        .iter()
        .any(|&len| len != n)
            || n == 0
        {
            return Err(unsupported("arrays of different lengths"));
        }
        if tree.split_type.iter().any(|&t| t != 0) || !tree.categories_nodes.is_empty() {
            return Err(unsupported("categorical splits"));
        }
        // Each node's depth, checking the children form a tree rooted at 0 (XGBoost's
        // predictor also takes the right child as the left one + 1).
        let child = |c: i64| usize::try_from(c).ok().filter(|&c| c < n);
        let mut depth_of = vec![usize::MAX; n];
        depth_of[0] = 0;
        let mut depth = 0;
        for node in 0..n {
            let d = depth_of[node];
            if d == usize::MAX {
                return Err(unsupported(format!("node {node} unreachable from the root")));
            }
            if tree.left_children[node] == -1 {
                continue;
            }
            let (Some(left), Some(right)) = (child(tree.left_children[node]), child(tree.right_children[node])) else {
                return Err(unsupported(format!("node {node} has a child out of range")));
            };
            if right != left + 1 || left <= node || depth_of[left] != usize::MAX {
                return Err(unsupported(format!(
                    "node {node}'s children are not laid out as XGBoost's"
                )));
            }
            let feature = usize::try_from(tree.split_indices[node]).unwrap_or(usize::MAX);
            if feature >= self.features {
                return Err(unsupported(format!("node {node} splits on feature {feature}")));
            }
            depth_of[left] = d + 1;
            depth_of[right] = d + 1;
            depth = depth.max(d + 1);
        }
        if depth > MAX_DEPTH {
            return Err(unsupported(format!("depth {depth} (at most {MAX_DEPTH} laid out)")));
        }
        let (node_base, leaf_base) = (self.nodes.len(), self.leaves.len());
        self.nodes
            .resize(node_base + (1 << depth) - 1, Node::left(self.features));
        self.leaves.resize(leaf_base + (1 << depth), 0.0);
        // Walk from the root, placing each XGBoost node at its slot of the complete tree.
        let mut stack = vec![(0usize, 0usize, 0usize)]; // (xgboost node, slot, level)
        while let Some((node, slot, level)) = stack.pop() {
            if tree.left_children[node] == -1 {
                // A leaf at `level` < depth: the padding splits go left, to the leftmost slot
                // below it, `depth - level` levels down.
                let mut below = slot;
                for _ in level..depth {
                    below = 2 * below + 1;
                }
                let leaf = below - ((1 << depth) - 1);
                self.leaves[leaf_base + leaf] = conditions[node];
                continue;
            }
            let threshold = conditions[node];
            if !threshold.is_finite() {
                return Err(unsupported(format!("node {node} splits at {threshold}")));
            }
            let mut column = tree.split_indices[node] as u32;
            if tree.default_left[node] != 0 {
                column += self.features as u32;
            }
            self.nodes[node_base + slot] = Node {
                column,
                threshold: key(threshold),
            };
            let left = tree.left_children[node] as usize;
            stack.push((left, 2 * slot + 1, level + 1));
            stack.push((left + 1, 2 * slot + 2, level + 1));
        }
        self.trees.push(Tree {
            depth,
            nodes: node_base,
            leaves: leaf_base,
        });
        Ok(())
    }

    /// Number of features a row must have (XGBoost's `num_feature`).
    pub fn features(&self) -> usize {
        self.features
    }

    /// The prediction of every row of `values` (row-major, `cols` values a row, the model's
    /// features first; NaN is missing): probabilities for `binary:logistic`, values for
    /// `reg:squarederror`. On rayon's threads when `parallel` and there are rows enough.
    pub fn predict(&self, values: &[f32], cols: usize, parallel: bool) -> Result<Vec<f32>, Unsupported> {
        if !values.len().is_multiple_of(cols) {
            return Err(unsupported(format!("{} values are not rows of {cols}", values.len())));
        }
        let rows = values.len().checked_div(cols).unwrap_or(0);
        self.predict_rows(rows, cols, parallel, |first, block| {
            block.copy_from_slice(&values[first * cols..first * cols + block.len()]);
        })
    }

    /// [`predict`](Self::predict) of `rows` rows that `write` puts in place a block at a time:
    /// `write(first, block)` fills `block` with rows `first..` (row-major, `cols` a row), so a
    /// caller holding columns never builds the whole row-major matrix.
    pub fn predict_rows(
        &self,
        rows: usize,
        cols: usize,
        parallel: bool,
        write: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Result<Vec<f32>, Unsupported> {
        use rayon::prelude::*;
        if cols < self.features {
            return Err(unsupported(format!(
                "rows of {cols} values for a model of {} features",
                self.features
            )));
        }
        let mut out = vec![0f32; rows];
        let task = |(task, out): (usize, &mut [f32])| {
            let (mut values, mut keys) = (vec![0f32; BLOCK * cols], vec![0u32; BLOCK * 2 * self.features]);
            for (b, out) in out.chunks_mut(BLOCK).enumerate() {
                let values = &mut values[..out.len() * cols];
                write(task * TASK + b * BLOCK, values);
                self.predict_block(values, cols, out, &mut keys);
            }
        };
        if parallel && rows > TASK {
            out.par_chunks_mut(TASK).enumerate().for_each(task);
        } else if rows > 0 {
            out.chunks_mut(TASK).enumerate().for_each(task);
        }
        Ok(out)
    }

    /// Up to [`BLOCK`] rows through every tree, in tree order, then the transform.
    fn predict_block(&self, block: &[f32], cols: usize, out: &mut [f32], keys: &mut [u32]) {
        let rows = out.len();
        let width = 2 * self.features;
        // Each row's keys twice: a missing value as u32::MAX (goes right at every split), then
        // as 0 (goes left); a split reads the copy of its default direction.
        let keys = &mut keys[..rows * width];
        for (row, keys) in block.chunks_exact(cols).zip(keys.chunks_exact_mut(width)) {
            let (right, left) = keys.split_at_mut(self.features);
            for ((&value, r), l) in row[..self.features].iter().zip(right).zip(left) {
                let (k, missing) = (key(value), value.is_nan());
                *r = if missing { u32::MAX } else { k };
                *l = if missing { 0 } else { k };
            }
        }
        let mut margin = [self.base_margin; BLOCK];
        for tree in &self.trees {
            for (keys, margin) in keys.chunks(LANES * width).zip(margin[..rows].chunks_mut(LANES)) {
                if let Ok(lanes) = <&mut [f32; LANES]>::try_from(&mut *margin) {
                    self.walk(tree, keys, width, lanes);
                } else {
                    for (keys, m) in keys.chunks_exact(width).zip(margin) {
                        self.walk(tree, keys, width, std::array::from_mut(m));
                    }
                }
            }
        }
        for (o, m) in out.iter_mut().zip(margin) {
            *o = match self.transform {
                Transform::Sigmoid => sigmoid(m),
                Transform::Identity => m,
            };
        }
    }

    /// `N` rows' keys (`width` each) down one tree, each leaf added to its row's margin.
    #[inline(always)]
    fn walk<const N: usize>(&self, tree: &Tree, keys: &[u32], width: usize, margin: &mut [f32; N]) {
        let keys: [&[u32]; N] = std::array::from_fn(|lane| &keys[lane * width..(lane + 1) * width]);
        let splits = (1usize << tree.depth) - 1;
        let nodes = &self.nodes[tree.nodes..tree.nodes + splits];
        let mut slot = [0usize; N];
        for _ in 0..tree.depth {
            for lane in 0..N {
                debug_assert!(slot[lane] < nodes.len());
                // SAFETY: after `l` < depth steps a slot is below 2^(l+1) − 1 ≤ 2^depth − 1 =
                // `nodes.len()` (each step maps s to 2s + 1 or 2s + 2).
                let node = unsafe { *nodes.get_unchecked(slot[lane]) };
                debug_assert!((node.column as usize) < width);
                // SAFETY: `lay_out` writes columns below 2 × features (a feature, plus
                // `features` for the missing-goes-left copy; padding uses `features`), and
                // every `keys[lane]` is `width` = 2 × features long.
                let value = unsafe { *keys[lane].get_unchecked(node.column as usize) };
                slot[lane] = 2 * slot[lane] + 1 + usize::from(value >= node.threshold);
            }
        }
        let leaves = &self.leaves[tree.leaves..tree.leaves + splits + 1];
        for lane in 0..N {
            margin[lane] += leaves[slot[lane] - splits];
        }
    }

    /// Rows (row-major, [`features`](Self::features) values each) to check a forest with
    /// against XGBoost before use: `random` rows drawn from the values where splits turn (per
    /// feature its thresholds, the float just below each, a missing value, ±∞ and ±0, mixed
    /// across features), then one row down to every reachable leaf of every tree (its path's
    /// features set at the edge of their interval, the others from a random row).
    pub fn probe_rows(&self, random: usize) -> Vec<f32> {
        let mut values = self.random_rows(random.max(1));
        let base_rows = values.len() / self.features;
        for tree in &self.trees {
            let nodes = &self.nodes[tree.nodes..tree.nodes + (1 << tree.depth) - 1];
            'leaves: for leaf in 0..1usize << tree.depth {
                // Per feature the interval [low, high) the path to `leaf` asks of it.
                let mut bounds: Vec<(f32, f32)> = Vec::new();
                let mut wanted: Vec<usize> = Vec::new();
                let mut slot = 0;
                for level in (0..tree.depth).rev() {
                    let right = (leaf >> level) & 1 == 1;
                    let node = nodes[slot];
                    match unkey(node.threshold) {
                        // Padding: every row goes left; the right side is never reached.
                        None if right => continue 'leaves,
                        None => {}
                        Some(threshold) => {
                            let feature = node.column as usize % self.features;
                            let at = match wanted.iter().position(|&f| f == feature) {
                                Some(at) => at,
                                None => {
                                    wanted.push(feature);
                                    bounds.push((f32::NEG_INFINITY, f32::INFINITY));
                                    bounds.len() - 1
                                }
                            };
                            let (low, high) = &mut bounds[at];
                            if right {
                                *low = low.max(threshold);
                            } else {
                                *high = high.min(threshold);
                            }
                        }
                    }
                    slot = 2 * slot + 1 + usize::from(right);
                }
                if bounds.iter().any(|(low, high)| low >= high) {
                    continue; // a path no value takes
                }
                let base = (leaf % base_rows) * self.features;
                let mut row = values[base..base + self.features].to_vec();
                for (&feature, &(low, high)) in wanted.iter().zip(&bounds) {
                    row[feature] = if low.is_finite() { low } else { high.next_down() };
                }
                values.extend(row);
            }
        }
        values
    }

    /// `rows` rows of values where splits turn, mixed across features.
    fn random_rows(&self, rows: usize) -> Vec<f32> {
        let mut candidates: Vec<Vec<f32>> =
            vec![vec![f32::NAN, 0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY]; self.features];
        for tree in &self.trees {
            for node in &self.nodes[tree.nodes..tree.nodes + (1 << tree.depth) - 1] {
                let Some(threshold) = unkey(node.threshold) else {
                    continue; // padding
                };
                let feature = node.column as usize % self.features;
                candidates[feature].extend([threshold, threshold.next_down()]);
            }
        }
        let mut values = Vec::with_capacity(rows * self.features);
        // A fixed seed: the same probes for the same model every time.
        let mut rng = crate::data::synth::rng::Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..rows {
            for candidates in &candidates {
                values.push(candidates[rng.below(candidates.len() as u64) as usize]);
            }
        }
        values
    }
}

/// The f32 of a threshold's key (`None` for the padding's `u32::MAX`).
fn unkey(key: u32) -> Option<f32> {
    if key == u32::MAX {
        return None;
    }
    let bits = if key & 0x8000_0000 != 0 {
        key & 0x7FFF_FFFF
    } else {
        !key
    };
    Some(f32::from_bits(bits))
}

/// XGBoost's `common::Sigmoid(float)`: `1 / (expf(min(−x, 88.7)) + 1 + 1e-16)` in f32.
fn sigmoid(x: f32) -> f32 {
    // C++'s `std::min(-x, 88.7f)`: `-x` unless 88.7 is smaller (a NaN stays NaN).
    let e = if 88.7f32 < -x { 88.7f32 } else { -x }.exp();
    1.0f32 / (e + 1.0f32 + 1e-16f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::models::BoostParams;
    use crate::models::boosted::{Matrix, Split, Task, TrainedBooster, train};

    /// Seeded rows: 6 features (one a 0/1 indicator, one with 30 % missing, one with a few
    /// repeated values), a binary label and a regression target from them.
    fn rows(n: usize, seed: u64) -> (Matrix, Vec<f32>, Vec<f32>) {
        let mut rng = crate::data::synth::rng::Rng::new(seed);
        let (mut values, mut labels, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let x = [
                rng.normal() as f32,
                rng.normal() as f32 * 100.0,
                f32::from(rng.bernoulli(0.3)),
                if rng.bernoulli(0.3) {
                    f32::NAN
                } else {
                    rng.normal() as f32
                },
                (rng.below(5) as f32) / 3.0,
                rng.normal() as f32 * 1e-3,
            ];
            let logit = 1.2 * x[0] - 0.01 * x[1] + x[2] + if x[3].is_nan() { 0.8 } else { x[3] } + x[4];
            labels.push(f32::from(rng.bernoulli(1.0 / (1.0 + (-logit as f64).exp()))));
            targets.push(50.0 + 10.0 * logit + rng.normal() as f32);
            values.extend(x);
        }
        let names = (0..6).map(|j| format!("x{j}")).collect();
        (Matrix { values, rows: n, names }, labels, targets)
    }

    fn differing(a: &[f32], b: &[f32]) -> usize {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).filter(|(a, b)| a.to_bits() != b.to_bits()).count()
    }

    fn model(task: Task, x: &Matrix, y: &[f32], depth: u32) -> TrainedBooster {
        let params = BoostParams {
            rounds: 40,
            max_depth: depth,
            threads: 2,
            ..BoostParams::default()
        };
        train(task, &params, Split::all(x, y), None, None, &[]).unwrap()
    }

    #[test]
    fn the_laid_out_trees_predict_xgboosts_values_bit_for_bit() {
        let (x, labels, targets) = rows(30_000, 3);
        for (task, y) in [(Task::Binary, &labels), (Task::Regression, &targets)] {
            // Depth 7 on few distinct values: trees with leaves on several levels (padded).
            let booster = model(task, &x, y, 7);
            assert!(booster.has_forest(), "{task:?}: the forest was refused");
            let forest = Forest::compile(&booster.to_json().unwrap()).unwrap();
            assert!(
                forest.trees.iter().any(|t| t.depth == 7),
                "{task:?}: no tree reached depth 7"
            );
            let xgboost = booster.predict_with_xgboost(&x).unwrap();
            // Above one task: rayon's threads; and on the caller's thread.
            for parallel in [true, false] {
                let ours = forest.predict(&x.values, x.cols(), parallel).unwrap();
                assert_eq!(differing(&ours, &xgboost), 0, "{task:?}, parallel {parallel}");
            }
            assert_eq!(differing(&booster.predict(&x).unwrap(), &xgboost), 0, "{task:?}");
            assert!(
                xgboost.iter().any(|p| *p != xgboost[0]),
                "{task:?}: one value for every row"
            );
            // Values on every threshold, just below it, missing, ±0 and ±∞, a row to every
            // leaf; and rows of a few (a block's last lanes walk one at a time).
            let leaves: usize = forest.trees.iter().map(|t| 1 << t.depth).sum();
            for values in [forest.probe_rows(2_000), forest.random_rows(67), forest.random_rows(1)] {
                let n = values.len() / x.cols();
                let probes = Matrix {
                    values,
                    rows: n,
                    names: x.names.clone(),
                };
                assert!(n <= 67 || n > 2_000 + leaves / 4, "{task:?}: {n} probe rows");
                let ours = forest.predict(&probes.values, probes.cols(), true).unwrap();
                assert_eq!(
                    differing(&ours, &booster.predict_with_xgboost(&probes).unwrap()),
                    0,
                    "{task:?}, {n} probes"
                );
            }
        }
    }

    #[test]
    fn wider_rows_read_their_first_columns_and_narrower_are_refused() {
        let (x, labels, _) = rows(5_000, 4);
        let booster = model(Task::Binary, &x, &labels, 4);
        let forest = Forest::compile(&booster.to_json().unwrap()).unwrap();
        let wider: Vec<f32> = x
            .values
            .chunks(6)
            .flat_map(|row| row.iter().copied().chain([7.0]))
            .collect();
        assert_eq!(
            forest.predict(&wider, 7, true).unwrap(),
            forest.predict(&x.values, 6, true).unwrap()
        );
        assert!(forest.predict(&x.values[..10], 5, true).is_err());
        assert!(
            forest.predict(&x.values[..10], 6, true).is_err(),
            "10 values are not rows of 6"
        );
        assert!(forest.predict(&[], 6, true).unwrap().is_empty());
    }

    #[test]
    fn models_it_cannot_promise_are_left_to_xgboost() {
        let (x, labels, _) = rows(5_000, 5);
        let json: serde_json::Value =
            serde_json::from_slice(&model(Task::Binary, &x, &labels, 3).to_json().unwrap()).unwrap();
        assert!(Forest::compile(json.to_string().as_bytes()).is_ok());
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 6] = [
            ("objective", |m| {
                m["learner"]["objective"]["name"] = "binary:hinge".into()
            }),
            ("more than one output", |m| {
                m["learner"]["learner_model_param"]["num_class"] = "3".into()
            }),
            ("booster", |m| m["learner"]["gradient_booster"]["name"] = "dart".into()),
            ("categorical", |m| {
                m["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = 1.into()
            }),
            ("group", |m| {
                m["learner"]["gradient_booster"]["model"]["tree_info"][1] = 1.into()
            }),
            ("splits on feature 6", |m| {
                m["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = 6.into()
            }),
        ];
        for (expected, edit) in edits {
            let mut edited = json.clone();
            edit(&mut edited);
            let refused = Forest::compile(edited.to_string().as_bytes()).map(|_| ()).unwrap_err();
            assert!(refused.to_string().contains(expected), "{expected}: {refused}");
        }
    }

    #[test]
    fn keys_order_floats_as_their_comparisons_do() {
        let mut rng = crate::data::synth::rng::Rng::new(9);
        let mut values = vec![
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::MIN,
        ];
        values.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.0,
            1.0f32.next_down(),
            1.0f32.next_up(),
            -1.0,
        ]);
        values.extend(
            (0..300)
                .map(|_| f32::from_bits(rng.next_u64() as u32))
                .filter(|v| !v.is_nan()),
        );
        for &a in &values {
            for &b in &values {
                assert_eq!(key(a) >= key(b), a >= b, "{a:e} >= {b:e}");
            }
            assert_ne!(key(a), u32::MAX, "{a:e} takes the missing value's key");
            assert_eq!(
                unkey(key(a)).map(f32::to_bits),
                Some(if a == 0.0 { 0 } else { a.to_bits() })
            );
        }
    }

    #[test]
    fn thresholds_and_leaves_are_rounded_once_from_their_text() {
        // Just above the midpoint of 1 and 1 + 2^-23: rounded once it is 1 + 2^-23; through f64
        // (as serde reads an f32) it first becomes the midpoint exactly, then 1 by ties-to-even.
        let text = "1.00000005960464477550";
        assert_eq!(
            text.parse::<f64>().unwrap() as f32,
            1.0,
            "the case no longer rounds twice"
        );
        let raw = RawValue::from_string(format!("[{text}, -2.5E-3, 3.4028235E38]")).unwrap();
        assert_eq!(f32_array(&raw).unwrap(), [1.0f32.next_up(), -2.5e-3, f32::MAX]);
        assert!(f32_array(&RawValue::from_string("[1, \"x\"]".into()).unwrap()).is_err());
        assert!(
            f32_array(&RawValue::from_string("[]".into()).unwrap())
                .unwrap()
                .is_empty()
        );
    }
}
