use super::UserError;
use bankml::config::EngineConfig;
use bankml::models::registry::Registry;
use bankml::vocab::ModelKind;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: ModelsAction,
}

#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Every model's versions and which is champion and challenger.
    List,
    /// A version's metadata (default: the champion).
    Show {
        #[arg(value_enum)]
        model: ModelKind,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Make a version the champion (the old one is kept for rollback).
    Promote {
        #[arg(value_enum)]
        model: ModelKind,
        version: u32,
    },
    /// Return the champion to the one before it.
    Rollback {
        #[arg(value_enum)]
        model: ModelKind,
    },
    /// Remove old versions: all but the champion, the challenger, the previous champion and
    /// the newest others (models.keep_versions, 5).
    Prune {
        /// Versions kept besides those three (default: models.keep_versions).
        #[arg(long)]
        keep: Option<usize>,
        /// Say what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: ModelsArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let registry = Registry::new(&config.models.dir);
    match args.action {
        ModelsAction::List => {
            for model in ModelKind::ALL {
                let versions = registry.versions(model)?;
                let aliases = registry.aliases(model)?;
                let shown = |v: Option<u32>| v.map(|v| format!("v{v}")).unwrap_or_else(|| "–".into());
                println!(
                    "{model:<12} versions: {:<20} champion: {:<5} challenger: {}",
                    if versions.is_empty() {
                        "none".into()
                    } else {
                        versions.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(" ")
                    },
                    shown(aliases.champion),
                    shown(aliases.challenger)
                );
            }
        }
        ModelsAction::Prune { keep, dry_run } => {
            let keep = keep.unwrap_or(config.models.keep_versions);
            for model in ModelKind::ALL {
                let gone = if dry_run {
                    registry.prunable(model, keep)?
                } else {
                    registry.prune(model, keep)?
                };
                if !gone.is_empty() {
                    let list: Vec<String> = gone.iter().map(|v| format!("v{v}")).collect();
                    println!(
                        "{model:<12} {} {}",
                        if dry_run { "would remove" } else { "removed" },
                        list.join(" ")
                    );
                }
            }
        }
        ModelsAction::Show { model, version } => {
            let (_, dir) = registry.resolve(model, version).map_err(|e| UserError(e.to_string()))?;
            let path = dir.join("meta.json");
            println!(
                "{}",
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            );
        }
        ModelsAction::Promote { model, version } => {
            let aliases = registry.promote(model, version).map_err(|e| UserError(e.to_string()))?;
            println!(
                "{model}: v{version} is champion (previous champions: {:?})",
                aliases.previous_champions
            );
        }
        ModelsAction::Rollback { model } => {
            let aliases = registry.rollback(model).map_err(|e| UserError(e.to_string()))?;
            println!(
                "{model}: rolled back to v{}; v{} is now challenger",
                aliases.champion.unwrap_or_default(),
                aliases.challenger.unwrap_or_default()
            );
        }
    }
    Ok(())
}
