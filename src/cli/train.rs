use super::{UserError, progress, thousands};
use bankml::config::EngineConfig;
use bankml::data::date::Date;
use bankml::data::history;
use bankml::jobs::frames::KeptMonths;
use bankml::models::registry::Registry;
use bankml::models::tabular::{self, HoldoutMetrics, MeanStd, ModelMeta, TabularSpec};
use bankml::vocab::ModelKind;
use clap::{Args, ValueEnum};

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
    // The tabular models need every snapshot's features, kept in the feature store (built
    // here if missing) and read one month at a time; the recommender only the latest snapshot.
    let (dates, latest) = if specs.is_empty() {
        let (date, dir) = bankml::data::snapshot::latest_until(&config.data.raw_dir, until)?;
        (Vec::new(), bankml::data::snapshot::load(&dir, date, config)?)
    } else {
        let count = bankml::data::snapshot::list_snapshots(&config.data.raw_dir)?.len();
        let bar = progress::bar(count as u64, "features per snapshot");
        let kept = history::ensure(config, until, |_| bar.inc(1))?;
        bar.finish_and_clear();
        kept
    };
    if recommender {
        let spinner = progress::spinner("training recommender");
        let meta = bankml::models::recommender::train_and_register(&latest, &config.models.recommender, &registry)?;
        spinner.finish_and_clear();
        print_recommender(&meta, &registry)?;
    }
    // Churn is labelled from the latest snapshot's holdings; the rest of it is let go.
    let latest = latest.holdings_only();
    for spec in specs {
        let months = KeptMonths::new(config, spec.model, dates.clone(), &latest);
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
        let settings = tabular::TrainSettings {
            boosting: &config.models.boosting,
            churn: &config.models.churn,
            cv_folds: cv,
            reference_snapshots: config.models.reference_snapshots,
            label_horizon_days: config.features.churn_horizon_days,
            scratch: &config.data.processed_dir,
        };
        let meta = tabular::train(spec, &months, settings, &registry, export.as_deref())?;
        spinner.finish_and_clear();
        print_summary(&meta, &registry)?;
    }
    Ok(())
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
    match &meta.holdout {
        HoldoutMetrics::Binary { metrics: h, high_risk } => println!(
            "  holdout: AUC {:.4} · precision {:.4} · recall {:.4} · F1 {:.4} at {} · High risk (churn rate ≥ {}): {} clients, precision {:.4} recall {:.4}",
            h.roc_auc,
            h.precision,
            h.recall,
            h.f1,
            h.threshold,
            high_risk.threshold,
            high_risk.clients,
            high_risk.precision,
            high_risk.recall,
        ),
        HoldoutMetrics::Regression(h) => {
            println!(
                "  holdout: RMSE {:.4} · MAE {:.4} · R² {:.4} · Spearman {:.4} · top-10 overlap {:.4}",
                h.rmse, h.mae, h.r2, h.spearman, h.top10_overlap
            );
            if let Some(cv) = &meta.cross_validation {
                let figure = |name: &str, f: fn(MeanStd) -> f64| {
                    cv.get(name).map_or_else(|| "–".to_string(), |m| format!("{:.4}", f(m)))
                };
                println!(
                    "  {}-fold CV: RMSE {} ± {} · MAE {} · R² {}",
                    cv.folds,
                    figure("rmse", |m| m.mean),
                    figure("rmse", |m| m.std),
                    figure("mae", |m| m.mean),
                    figure("r2", |m| m.mean)
                );
            }
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
        let a = &m.accuracy;
        println!(
            "  {:<13} Precision@{k} {:.4} · Recall@{k} {:.4} · NDCG@{k} {:.4} · coverage {:.4} · diversity {:.4}",
            candidate.method.name(),
            a.precision_at_k,
            a.recall_at_k,
            a.ndcg_at_k,
            m.coverage,
            m.intra_list_diversity
        );
    }
    Ok(())
}
