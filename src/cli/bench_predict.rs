//! `bankml bench predict`: every champion's predictions of the latest snapshot's features by
//! XGBoost's own predictor (from the design matrix, built first) and by the laid-out trees
//! (`models/forest.rs`, reading the design's columns a block of rows at a time), alternately
//! in one process: wall and CPU seconds of each pass from the frame, the ratio, and whether the
//! two agree bit for bit.

use bankml::config::EngineConfig;
use bankml::data::snapshot;
use bankml::data::store::FeatureStore;
use bankml::models::registry::Registry;
use bankml::models::tabular::TabularModel;
use bankml::vocab::ModelKind;
use std::path::Path;
use std::time::Instant;

/// This process's user + system CPU seconds so far (every thread).
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data that getrusage fills for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a zeroed rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Wall and CPU seconds of `work`, and what it returned.
fn timed<T>(work: impl FnOnce() -> T) -> (f64, f64, T) {
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let out = work();
    (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu, out)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(dir: &Path, repeats: usize, config: &EngineConfig) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; figures are only meaningful from a release build");
    }
    // The project's settings name its folders relative to it.
    std::env::set_current_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let registry = Registry::new(&config.models.dir);
    let (date, _) = snapshot::find_snapshot(&config.data.raw_dir, None)?;
    let store = FeatureStore::new(config);
    eprintln!("features of {date} (built and kept if missing) …");
    let features = match store.ensure(date, None, None)? {
        (_, Some(built)) => built,
        (_, None) => store.read_all(date)?,
    };
    println!(
        "{:<9} {:>9} {:>6} {:>9} {:>20} {:>20} {:>12} {:>9}",
        "model", "rows", "rounds", "features", "XGBoost wall/CPU s", "laid out wall/CPU s", "ratio w/CPU", "identical"
    );
    let mut all_identical = true;
    for kind in [ModelKind::Churn, ModelKind::Manager, ModelKind::Agency] {
        let model = match TabularModel::load(&registry, kind, None, config.models.boosting.thread_count()) {
            Ok(model) => model,
            Err(e) => {
                eprintln!("{kind}: skipped ({e})");
                continue;
            }
        };
        let frame = match kind {
            ModelKind::Churn => &features.clients,
            ModelKind::Manager => &features.managers,
            _ => &features.agencies,
        };
        if !model.booster.has_forest() {
            eprintln!("{kind}: predicted by XGBoost only (the model's trees are not laid out)");
            continue;
        }
        let (mut ours, mut theirs) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        let mut identical = true;
        let mut shape = (0, 0);
        for round in 1..=repeats.max(1) {
            eprintln!("{kind}: round {round} of {repeats} …");
            let (wall, cpu, xgboost) = timed(|| {
                let matrix = model.design.matrix(frame)?;
                anyhow::Ok((matrix.cols(), model.booster.predict_with_xgboost(&matrix)?))
            });
            theirs.0.push(wall);
            theirs.1.push(cpu);
            let (wall, cpu, laid_out) = timed(|| model.predict_frame(frame));
            ours.0.push(wall);
            ours.1.push(cpu);
            let ((cols, xgboost), laid_out) = (xgboost?, laid_out?);
            shape = (xgboost.len(), cols);
            identical &= xgboost.len() == laid_out.len()
                && xgboost.iter().zip(&laid_out).all(|(a, b)| a.to_bits() == b.to_bits());
        }
        let (ours, theirs) = ((median(ours.0), median(ours.1)), (median(theirs.0), median(theirs.1)));
        println!(
            "{:<9} {:>9} {:>6} {:>9} {:>20} {:>20} {:>12} {:>9}",
            kind.to_string(),
            shape.0,
            model.meta.best_rounds,
            shape.1,
            format!("{:.4} / {:.4}", theirs.0, theirs.1),
            format!("{:.4} / {:.4}", ours.0, ours.1),
            format!("{:.2} / {:.2}", ours.0 / theirs.0, ours.1 / theirs.1),
            if identical { "yes" } else { "NO" }
        );
        all_identical &= identical;
    }
    println!("(medians of {repeats} alternating rounds; ratio = laid out / XGBoost)");
    if !all_identical {
        anyhow::bail!("the laid-out trees predicted differently from XGBoost (see \"identical\")");
    }
    Ok(())
}
