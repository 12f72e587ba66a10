use super::{UserError, progress, thousands};
use bankml::config::EngineConfig;
use bankml::data::date::Date;
use bankml::data::history;
use bankml::models::registry::Registry;
use bankml::models::tabular::{self, ModelMeta, TabularSpec};
use bankml::vocab::ModelKind;
use clap::{Args, ValueEnum};
use polars::prelude::DataFrame;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelChoice {
    Churn,
    Manager,
    Agency,
    Recommender,
    All,
}

impl ModelChoice {
    fn kinds(self) -> Vec<ModelKind> {
        match self {
            ModelChoice::Churn => vec![ModelKind::Churn],
            ModelChoice::Manager => vec![ModelKind::Manager],
            ModelChoice::Agency => vec![ModelKind::Agency],
            ModelChoice::Recommender => vec![ModelKind::Recommender],
            ModelChoice::All => ModelKind::ALL.to_vec(),
        }
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Which model to train.
    #[arg(long, value_enum, default_value_t = ModelChoice::All)]
    pub model: ModelChoice,
    /// Train on snapshots up to this date (default: all).
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Also write each model's exact training matrices and XGBoost parameters to
    /// DIR/<model>/, to train the same model in Python (tests/fixtures/compare_xgboost.py).
    #[arg(long)]
    pub export: Option<std::path::PathBuf>,
}

pub fn run(args: TrainArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let until = match &args.snapshot {
        Some(text) => {
            Some(Date::parse(text).ok_or_else(|| UserError(format!("--snapshot {text}: expected YYYY-MM-DD")))?)
        }
        None => None,
    };
    let kinds = args.model.kinds();
    let specs: Vec<&TabularSpec> = kinds.iter().filter_map(|k| tabular::spec_of(*k)).collect();
    let recommender = kinds.contains(&ModelKind::Recommender);
    let registry = Registry::new(&config.models.dir);
    // The tabular models need every snapshot's features; the recommender only the latest
    // snapshot, which the history has loaded anyway.
    let (features, latest) = if specs.is_empty() {
        let (date, dir) = bankml::data::snapshot::latest_until(&config.data.raw_dir, until)?;
        (Vec::new(), bankml::data::snapshot::load(&dir, date, config)?)
    } else {
        let count = bankml::data::snapshot::list_snapshots(&config.data.raw_dir)?.len();
        let bar = progress::bar(count as u64, "features per snapshot");
        let history = history::build(config, until, |_| bar.inc(1))?;
        bar.finish_and_clear();
        (history.features, history.latest)
    };
    if recommender {
        let spinner = progress::spinner("training recommender");
        let meta = bankml::models::recommender::train_and_register(&latest, &config.models.recommender, &registry)?;
        spinner.finish_and_clear();
        print_recommender(&meta, &registry)?;
    }
    drop(latest);
    // Each model's frames are moved out of the history and handed over whole: training drops
    // them as it goes, instead of the whole history staying alive through every training.
    let (mut clients, mut managers, mut agencies) = (Vec::new(), Vec::new(), Vec::new());
    for (date, features) in features {
        clients.push((date, features.clients));
        managers.push((date, features.managers));
        agencies.push((date, features.agencies));
    }
    for spec in specs {
        let frames: Vec<(Date, DataFrame)> = match spec.model {
            ModelKind::Churn => std::mem::take(&mut clients),
            ModelKind::Manager => std::mem::take(&mut managers),
            _ => std::mem::take(&mut agencies),
        };
        let spinner = progress::spinner(&format!("training {}", spec.model));
        let cv = if spec.model == ModelKind::Churn {
            0
        } else {
            config.models.cv_folds
        };
        let export = args.export.as_ref().map(|d| d.join(spec.model.as_str()));
        if let Some(dir) = &export {
            std::fs::create_dir_all(dir)?;
        }
        let (boosting, churn) = (&config.models.boosting, &config.models.churn);
        let meta = tabular::train(spec, frames, boosting, churn, cv, &registry, export.as_deref())?;
        spinner.finish_and_clear();
        print_summary(&meta, &registry)?;
    }
    Ok(())
}

fn figure(value: &Value, key: &str) -> String {
    value[key]
        .as_f64()
        .map(|v| format!("{v:.4}"))
        .unwrap_or_else(|| "–".into())
}

fn print_summary(meta: &ModelMeta, registry: &Registry) -> anyhow::Result<()> {
    let aliases = registry.aliases(meta.model)?;
    let alias = if aliases.champion == Some(meta.version) {
        "champion"
    } else {
        "challenger"
    };
    println!(
        "{} v{} ({alias}): {} training rows from {} snapshot(s), holdout {} ({} rows), {} rounds, {:.1} s",
        meta.model,
        meta.version,
        thousands(meta.rows_train),
        meta.training_snapshots.len(),
        meta.holdout_snapshot,
        thousands(meta.rows_holdout),
        meta.best_rounds,
        meta.training_seconds
    );
    let h = &meta.holdout;
    if meta.model == ModelKind::Churn {
        println!(
            "  holdout: AUC {} · precision {} · recall {} · F1 {} at {} · High risk: precision {} recall {}",
            figure(h, "roc_auc"),
            figure(h, "precision"),
            figure(h, "recall"),
            figure(h, "f1"),
            h["threshold"],
            figure(&h["high_risk"], "precision"),
            figure(&h["high_risk"], "recall"),
        );
    } else {
        println!(
            "  holdout: RMSE {} · MAE {} · R² {} · Spearman {} · top-10 overlap {}",
            figure(h, "rmse"),
            figure(h, "mae"),
            figure(h, "r2"),
            figure(h, "spearman"),
            figure(h, "top10_overlap")
        );
        let cv = &meta.cross_validation;
        if cv.is_object() {
            println!(
                "  {}-fold CV: RMSE {} ± {} · MAE {} · R² {}",
                cv["folds"],
                figure(&cv["rmse"], "mean"),
                figure(&cv["rmse"], "std"),
                figure(&cv["mae"], "mean"),
                figure(&cv["r2"], "mean")
            );
        }
    }
    let top: Vec<String> = meta
        .importance
        .iter()
        .take(5)
        .map(|(name, gain)| format!("{name} ({gain:.1})"))
        .collect();
    println!("  top features by gain: {}", top.join(", "));
    Ok(())
}

fn print_recommender(meta: &bankml::models::recommender::RecommenderMeta, registry: &Registry) -> anyhow::Result<()> {
    let aliases = registry.aliases(ModelKind::Recommender)?;
    let alias = if aliases.champion == Some(meta.version) {
        "champion"
    } else {
        "challenger"
    };
    println!(
        "recommender v{} ({alias}): {} chosen by {}; holdout = products opened after {} by {} clients",
        meta.version,
        meta.method.name(),
        meta.chosen_by,
        meta.cutoff,
        thousands(meta.holdout_clients)
    );
    let k = meta.config.k;
    for candidate in &meta.candidates {
        let m = &candidate.metrics;
        println!(
            "  {:<13} Precision@{k} {} · Recall@{k} {} · NDCG@{k} {} · coverage {} · diversity {}",
            candidate.method.name(),
            figure(m, "precision_at_k"),
            figure(m, "recall_at_k"),
            figure(m, "ndcg_at_k"),
            figure(m, "coverage"),
            figure(m, "intra_list_diversity")
        );
    }
    Ok(())
}
