//! `bankml alerts`: what is firing, silences, and the notification outbox.

use bankml::alerts::store::AlertStore;
use bankml::config::EngineConfig;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Alerts pending or firing, and those resolved in the last day; active silences.
    List,
    /// Stop notifications of a rule for a while (its state is still tracked).
    Silence {
        /// The rule's name in alerts/rules.yaml.
        rule: String,
        /// How long: 30m, 2h, 1d…
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// The newest notifications and whether they were delivered.
    Outbox {
        #[arg(long, default_value_t = 20)]
        last: usize,
    },
}

pub fn run(args: AlertsArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let store = AlertStore::open(&config.data.history)?;
    let now = chrono::Utc::now();
    match args.command {
        AlertsCommand::List => {
            let alerts = store.list(now)?;
            if alerts.is_empty() {
                println!("no alerts pending, firing or resolved in the last day");
            }
            for a in alerts {
                let state = if a.state == bankml::alerts::state::Phase::Inactive {
                    "resolved"
                } else {
                    a.state.as_str()
                };
                println!(
                    "{state:<9} {:<8} {:<28} {:<44} {}",
                    a.severity.as_deref().unwrap_or(""),
                    a.rule,
                    a.labels,
                    a.summary.as_deref().unwrap_or("")
                );
            }
            for s in store.silences(now)? {
                println!(
                    "silenced  {} until {}{}",
                    s.rule,
                    s.until,
                    s.comment.map(|c| format!(" ({c})")).unwrap_or_default()
                );
            }
        }
        AlertsCommand::Silence {
            rule,
            duration,
            comment,
        } => {
            let receivers: Vec<String> = config.alerting.receivers.keys().cloned().collect();
            let rules = bankml::alerts::rules::load_rules(&config.data.alerts_dir.join("rules.yaml"), &receivers)
                .map_err(|problems| super::UserError(problems.join("\n")))?;
            let known: Vec<String> = rules.into_iter().map(|r| r.name).collect();
            if let Some(why) = bankml::alerts::unknown_rule(&rule, &known) {
                return Err(super::UserError(why).into());
            }
            let length =
                bankml::vocab::duration::parse(&duration).map_err(|e| super::UserError(format!("--for {e}")))?;
            let until = now + chrono::Duration::from_std(length)?;
            store.silence(&rule, until, now, comment.as_deref())?;
            println!("{rule} silenced until {}", bankml::vocab::time::iso(until));
        }
        AlertsCommand::Outbox { last } => {
            for e in store.outbox(last)? {
                println!(
                    "{:>5} {:<12} {:<8} attempts {:<3} created {} {}",
                    e.id,
                    e.receiver,
                    e.status,
                    e.attempts,
                    e.created_at,
                    e.sent_at
                        .map(|t| format!("sent {t}"))
                        .or(e.last_error.map(|err| format!("last error: {err}")))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
