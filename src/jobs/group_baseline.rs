//! Each group's baseline: its figures at the first benchmark of a champion version that
//! measured it, kept in the version's folder (`groups.json`, pruned with the version).
//!
//! Why the first benchmark and not the training holdout: the baseline is then measured exactly
//! the way every later run is — the same outcome window, the same holdout of recent openings
//! for the recommender, the same snapshot kind for managers — so a lasting difference between
//! groups cancels, and only a change is left to find. Training's holdout measures the
//! recommender another way (a cut-off inside the training holdings), and its groups would
//! differ from the benchmark's by that alone. A group first measured later (it grew past
//! `group_min_clients`, or is new) gets its baseline then.

use super::{read_json_if_present, segments};
use crate::models::registry::Registry;
use crate::report::summary::{SegmentBaseline, SegmentFigure};
use crate::vocab::ModelKind;
use serde::{Deserialize, Serialize};

/// The file in a version's folder.
pub const FILE: &str = "groups.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    groups: Vec<KeptGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeptGroup {
    dimension: String,
    segment: String,
    metric: String,
    /// How the figure was measured beyond its metric (the recommender's `k=5`): a baseline
    /// measured otherwise is another group's.
    #[serde(default)]
    measured_as: String,
    at: SegmentBaseline,
}

impl KeptGroup {
    fn is_of(&self, figure: &SegmentFigure, measured_as: &str) -> bool {
        self.dimension == figure.dimension
            && self.segment == figure.segment
            && self.metric == figure.metric
            && self.measured_as == measured_as
    }
}

/// Judges a model's figures against their groups' baselines, keeping the first measurement of
/// each group as its baseline.
pub struct Baselines<'a> {
    pub registry: &'a Registry,
    /// The false-discovery rate across a model's groups (`group_fdr`).
    pub fdr: f64,
}

impl<'a> Baselines<'a> {
    /// The baselines of `registry`'s versions, judged at the benchmark `ctx`'s `group_fdr`.
    pub fn of(ctx: &super::Context, registry: &'a Registry) -> Baselines<'a> {
        Baselines {
            registry,
            fdr: segments::fdr(ctx),
        }
    }

    /// `figures` of `model`'s `version`, measured on `snapshot` (and `measured_as`: see
    /// [`KeptGroup::measured_as`]), tested against the kept baselines; the groups without one
    /// get it from these figures when they can be tested against later.
    ///
    /// A baseline file that cannot be read or written costs the run its tests by group, not
    /// the rest of the benchmark (drift, the headline metrics, the estimate): it is logged,
    /// naming the file, and the figures are shown untested.
    pub fn judge(
        &self,
        model: ModelKind,
        version: u32,
        measured_as: &str,
        snapshot: &str,
        figures: Vec<SegmentFigure>,
    ) -> Vec<SegmentFigure> {
        let dir = self.registry.version_dir(model, version);
        let path = dir.join(FILE);
        let mut kept: Kept = match read_json_if_present(&path) {
            Ok(kept) => kept.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "the groups' baselines cannot be read: no group is tested this run");
                return segments::judged(figures, |_| None, self.fdr);
            }
        };
        let baseline_of = |figure: &SegmentFigure| {
            kept.groups
                .iter()
                .find(|g| g.is_of(figure, measured_as))
                .map(|g| g.at.clone())
        };
        let judged = segments::judged(figures, baseline_of, self.fdr);
        let known = kept.groups.len();
        for figure in judged
            .iter()
            .filter(|f| f.baseline.is_none() && segments::can_be_baseline(f))
        {
            kept.groups.push(KeptGroup {
                dimension: figure.dimension.clone(),
                segment: figure.segment.clone(),
                metric: figure.metric.clone(),
                measured_as: measured_as.to_string(),
                at: SegmentBaseline {
                    snapshot: snapshot.to_string(),
                    rows: figure.rows,
                    value: figure.value,
                    overall: figure.overall,
                    standard_error: figure.standard_error,
                },
            });
        }
        let added = kept.groups.len() - known;
        // A version pruned while this run measured it is not brought back as a folder
        // holding only this file.
        if added > 0 && dir.is_dir() {
            let written = serde_json::to_string_pretty(&kept)
                .map_err(|e| e.to_string())
                .and_then(|text| crate::fsutil::write_bytes_atomic(&path, text.as_bytes()).map_err(|e| e.to_string()));
            match written {
                Ok(()) => tracing::info!(
                    model = model.as_str(),
                    version,
                    groups = added,
                    "groups' baselines kept"
                ),
                Err(error) => tracing::warn!(path = %path.display(), %error, "the groups' baselines cannot be kept"),
            }
        }
        judged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::registry::RegistryError;

    fn figure(segment: &str, value: f64) -> SegmentFigure {
        SegmentFigure {
            model: ModelKind::Churn,
            dimension: "region".into(),
            segment: segment.into(),
            rows: 5_000,
            metric: "roc_auc".into(),
            value,
            overall: 0.88,
            standard_error: 0.01,
            baseline: None,
            tested: false,
            p_value: 1.0,
            adjusted_p_value: 1.0,
            worse: false,
            other: Default::default(),
        }
    }

    /// A registry with one churn version (its number).
    fn registry_with_a_version() -> (tempfile::TempDir, Registry, u32) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path());
        let version = registry
            .add_version::<RegistryError>(ModelKind::Churn, |_| Ok(()))
            .unwrap();
        (dir, registry, version)
    }

    fn baselines(registry: &Registry) -> Baselines<'_> {
        Baselines {
            registry,
            fdr: segments::FDR,
        }
    }

    /// The first run keeps its figures untested; the next is tested against them, and a group
    /// first measured then gets its own baseline; every kept float reads back bit for bit.
    #[test]
    fn the_first_measurement_of_a_group_is_its_baseline() {
        let (_dir, registry, version) = registry_with_a_version();
        let baselines = baselines(&registry);
        let first = baselines.judge(
            ModelKind::Churn,
            version,
            "",
            "2025-06-30",
            vec![figure("East", 0.1 + 0.77)],
        );
        assert!(first[0].baseline.is_none() && first[0].p_value == 1.0 && !first[0].worse);
        let later = baselines.judge(
            ModelKind::Churn,
            version,
            "",
            "2025-07-31",
            vec![figure("East", 0.80), figure("West", 0.88)],
        );
        let east = later[0].baseline.as_ref().unwrap();
        assert_eq!((east.snapshot.as_str(), east.value), ("2025-06-30", 0.1 + 0.77));
        assert!(
            later[0].worse,
            "0.87 → 0.80 of 0.88 with errors of 0.01: {:?}",
            later[0]
        );
        assert!(later[1].baseline.is_none(), "West is measured first now");
        let third = baselines.judge(ModelKind::Churn, version, "", "2025-08-31", vec![figure("West", 0.88)]);
        assert_eq!(third[0].baseline.as_ref().unwrap().snapshot, "2025-07-31");
        assert_eq!(third[0].p_value, 0.5);
        // Measured another way (the recommender's k), a group starts a baseline of its own.
        let other_k = baselines.judge(
            ModelKind::Churn,
            version,
            "k=10",
            "2025-08-31",
            vec![figure("West", 0.70)],
        );
        assert!(other_k[0].baseline.is_none() && !other_k[0].worse);
        // A figure that could never be tested against (no spread) is not kept as a baseline.
        let flat = SegmentFigure {
            standard_error: 0.0,
            ..figure("North", 0.88)
        };
        let untestable = baselines.judge(ModelKind::Churn, version, "", "2025-08-31", vec![flat.clone()]);
        assert!(untestable[0].baseline.is_none());
        let again = baselines.judge(ModelKind::Churn, version, "", "2025-09-30", vec![figure("North", 0.88)]);
        assert!(
            again[0].baseline.is_none(),
            "North's first testable figure is its baseline"
        );
    }

    /// A baseline file that cannot be read leaves the groups untested, and as it was; the rest
    /// of the benchmark goes on.
    #[test]
    fn an_unreadable_baseline_file_leaves_the_groups_untested() {
        let (_dir, registry, version) = registry_with_a_version();
        let path = registry.version_dir(ModelKind::Churn, version).join(FILE);
        std::fs::write(&path, "{\"groups\": [").unwrap();
        let baselines = baselines(&registry);
        let judged = baselines.judge(ModelKind::Churn, version, "", "2025-06-30", vec![figure("East", 0.50)]);
        assert!(judged[0].baseline.is_none() && judged[0].p_value == 1.0 && !judged[0].worse);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"groups\": [",
            "left as it was"
        );
    }

    /// A version pruned during the run does not come back as a folder holding only the file.
    #[test]
    fn a_pruned_version_gets_no_folder_back() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path());
        let baselines = baselines(&registry);
        baselines.judge(ModelKind::Churn, 7, "", "2025-06-30", vec![figure("East", 0.87)]);
        assert!(!registry.version_dir(ModelKind::Churn, 7).exists());
    }
}
