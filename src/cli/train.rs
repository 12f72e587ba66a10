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
    /// Train the churn model on this many workers together (XGBoost's collective), each
    /// building the features of a share of the clients from the bucket layout (`bankml
    /// bucketize`). Without it, one process trains on everything.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// How the workers start: local processes, or a Kubernetes Job written as a manifest.
    #[arg(long, value_enum, default_value_t = Launcher::Processes, requires = "workers")]
    pub launcher: Launcher,
    /// The bucket layout the workers read (default: data/buckets beside data.raw_dir).
    #[arg(long, requires = "workers")]
    pub buckets: Option<std::path::PathBuf>,
    /// How long a worker waits for the others before the run fails.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, requires = "workers")]
    pub timeout: std::time::Duration,
    /// Kubernetes: the container image of the workers (bankml in it).
    #[arg(long, default_value = "bankml:latest")]
    pub image: String,
    /// Kubernetes: the ReadWriteMany volume claim holding the project (config, data/buckets,
    /// data/models), mounted in every worker's pod.
    #[arg(long, default_value = "bankml-project")]
    pub volume_claim: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Launcher {
    /// Worker processes on this machine, through a tracker in this process.
    Processes,
    /// Print a Kubernetes Indexed Job and headless Service that run the workers.
    Kubernetes,
}

pub fn run(args: TrainArgs, config: &EngineConfig, config_path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(workers) = args.workers {
        return train_together(&args, workers, config, config_path);
    }
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
    // Churn is labelled from the latest snapshot's holders and holding dates; the rest of it
    // (balances, product ids, every other table) is let go before training's matrices are built.
    let latest = latest.label_inputs_only()?;
    for spec in specs {
        let months = KeptMonths::new(config, spec.model, dates.clone(), &latest);
        let bar = progress::TrainingBar::new(spec.model.as_str());
        let export = args.export.as_ref().map(|d| d.join(spec.model.as_str()));
        if let Some(dir) = &export {
            std::fs::create_dir_all(dir)?;
        }
        let settings = tabular::TrainSettings {
            progress: &bar,
            ..tabular::TrainSettings::of(config, spec.model)
        };
        let meta = tabular::train(spec, &months, settings, &registry, export.as_deref())?;
        bar.finish();
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

/// `--workers N`: the churn model trained by N workers together.
fn train_together(
    args: &TrainArgs,
    workers: usize,
    config: &EngineConfig,
    config_path: &std::path::Path,
) -> anyhow::Result<()> {
    if args.model != ModelChoice::Churn {
        return Err(UserError(
            "--workers trains the churn model (--model churn); the manager and agency models have a row per manager or agency and train on one machine".into(),
        )
        .into());
    }
    if workers == 0 {
        return Err(UserError("--workers 0: at least one worker is needed".into()).into());
    }
    if args.snapshot.is_some() || args.export.is_some() {
        return Err(
            UserError("--snapshot and --export are for training in one process, not with --workers".into()).into(),
        );
    }
    if args.launcher == Launcher::Kubernetes {
        let manifest = bankml::jobs::kubernetes::manifest(&bankml::jobs::kubernetes::JobSpec {
            name: "bankml-train-churn".into(),
            image: args.image.clone(),
            workers,
            claim: args.volume_claim.clone(),
            timeout: args.timeout,
        });
        print!("{manifest}");
        return Ok(());
    }
    let config_path = std::path::absolute(config_path)?;
    let layout_dir = args
        .buckets
        .clone()
        .unwrap_or_else(|| super::bucketize::default_layout_dir(config));
    // Read here first: a missing or damaged layout is said before any worker starts.
    let layout = bankml::data::buckets::Layout::read(&layout_dir)?;
    if workers > layout.buckets {
        return Err(UserError(format!(
            "--workers {workers}: the layout in {} has {} buckets, fewer than workers (run `bankml bucketize --buckets` with more)",
            layout_dir.display(),
            layout.buckets
        ))
        .into());
    }
    // Buckets older than the exports would train on last month's bank: said, not trained.
    if config.data.raw_dir.is_dir() && !layout.sources.is_empty() {
        let stale = bankml::data::buckets::stale_snapshots(config, &layout)?;
        if !stale.is_empty() {
            return Err(UserError(format!(
                "the buckets in {} are older than the exports in {} ({}): run `bankml bucketize` first",
                layout_dir.display(),
                config.data.raw_dir.display(),
                stale.join(", ")
            ))
            .into());
        }
    }
    let exe = std::env::current_exe()?;
    // Workers on this machine share its cores, unless the settings fix the threads.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match config.models.boosting.threads {
        0 => (cores / workers).max(1),
        fixed => fixed,
    };
    let registry = Registry::new(&config.models.dir);
    let before = registry.versions(ModelKind::Churn)?.into_iter().max();
    let spinner = progress::spinner(&format!("training churn on {workers} workers"));
    let started = std::time::Instant::now();
    bankml::jobs::distributed::launch_processes(
        workers,
        args.timeout,
        |rank, tracker| {
            let mut command = std::process::Command::new(&exe);
            // Without a settings file this run uses the defaults, and so do its workers.
            if config_path.exists() {
                command.arg("--config").arg(&config_path);
            }
            command
                .arg("worker")
                .args([
                    "--model",
                    "churn",
                    "--rank",
                    &rank.to_string(),
                    "--workers",
                    &workers.to_string(),
                ])
                .arg("--tracker")
                .arg(format!("{}:{}", tracker.host, tracker.port))
                .arg("--buckets")
                .arg(&layout_dir)
                .arg("--timeout")
                .arg(humantime::format_duration(args.timeout).to_string())
                .args(["--threads", &threads.to_string()])
                .stdin(std::process::Stdio::null())
                // What a worker prints for whoever started it by hand; this run prints the summary.
                .stdout(std::process::Stdio::null());
            command
        },
        |rank, pid| tracing::info!(rank, pid, "worker started"),
    )?;
    spinner.finish_and_clear();
    let version = registry
        .versions(ModelKind::Churn)?
        .into_iter()
        .max()
        .filter(|v| Some(*v) != before)
        .ok_or_else(|| anyhow::anyhow!("the workers finished but wrote no churn model"))?;
    let path = registry.version_dir(ModelKind::Churn, version).join("meta.json");
    let meta: ModelMeta = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    print_summary(&meta, &registry)?;
    println!(
        "  trained by {workers} {} together in {:.1} s (buckets: {})",
        if workers == 1 { "worker" } else { "workers" },
        started.elapsed().as_secs_f64(),
        layout_dir.display()
    );
    Ok(())
}
