use bankml::config::jobs;
use chrono::Utc;
use std::path::Path;

/// `bankml validate-config`: every configuration file checked, every problem listed, nothing
/// started. Exit code 2 when anything is wrong.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let config = match bankml::data::load_config(config_path, true) {
        Ok(config) => Some(config),
        Err(e) => {
            problems.push(e.to_string());
            // A value failing its check still names the folders and receivers to check the
            // rest against; only a config that does not parse leaves them unknown.
            bankml::config::EngineConfig::load_unchecked(config_path)
        }
    };
    let jobs_dir = config
        .as_ref()
        .map_or_else(|| "jobs".into(), |c| c.data.jobs_dir.clone());
    let loaded = jobs::load_jobs(&jobs_dir);
    if let Err(errors) = &loaded {
        problems.extend(errors.iter().cloned());
    }
    let rules_path = config
        .as_ref()
        .map_or_else(|| "alerts".into(), |c| c.data.alerts_dir.clone())
        .join("rules.yaml");
    let receivers: Vec<String> = config
        .as_ref()
        .map(|c| c.alerting.receivers.keys().cloned().collect())
        .unwrap_or_default();
    let rules = if config.is_some() {
        bankml::alerts::rules::load_rules(&rules_path, &receivers)
    } else {
        // Which receivers exist is unknown: checking the rules now would only list false
        // "receiver not defined" problems.
        Err(vec![format!(
            "{}: not checked until {} parses (the rules name its receivers)",
            rules_path.display(),
            config_path.display()
        )])
    };
    if let Err(errors) = &rules {
        problems.extend(errors.iter().cloned());
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        return Err(super::UserError(format!("{} problem(s) in the configuration", problems.len())).into());
    }
    println!("{}: ok", config_path.display());
    if let Ok(rules) = &rules
        && rules_path.exists()
    {
        println!("{}: ok — {} rule(s)", rules_path.display(), rules.len());
    }
    let now = Utc::now();
    for job in loaded.unwrap_or_default() {
        let next = job
            .schedule
            .next_after(now)
            .map(|t| t.with_timezone(&job.schedule.zone()).to_rfc3339())
            .unwrap_or_else(|e| e.to_string());
        println!(
            "{}: ok — {:?} \"{}\" ({}), next {next}{}",
            job.path.display(),
            job.kind,
            job.schedule.expression,
            job.schedule.zone(),
            if job.enabled { "" } else { " (disabled)" }
        );
    }
    Ok(())
}
