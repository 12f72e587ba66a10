use super::{UserError, progress, thousands};
use bankml::config::EngineConfig;
use bankml::data::date::Date;
use bankml::data::format::{FileFormat, WriteError, XLSX_MAX_ROWS};
use bankml::data::synth::campaigns::Challenger;
use bankml::data::synth::scenario::{self, Scenario};
use bankml::data::synth::{BankSpec, GenerateError, write_bank};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Clients at the last snapshot (85 % present from the start, the rest arrive monthly; a
    /// steady `--scenario` keeps this many throughout, replacing each month's leavers).
    #[arg(long, default_value_t = 20_000)]
    pub clients: usize,
    /// Monthly snapshots to write.
    #[arg(long, default_value_t = 12)]
    pub months: usize,
    #[arg(long, default_value_t = 100)]
    pub managers: usize,
    #[arg(long, default_value_t = 20)]
    pub agencies: usize,
    /// Same seed, same arguments ⇒ byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// File format of the exports (the seed system wrote xlsx).
    #[arg(long, value_enum, default_value_t = FileFormat::Xlsx)]
    pub format: FileFormat,
    /// Date of the last snapshot; earlier ones are the month ends before it.
    #[arg(long, default_value = "2025-12-31")]
    pub last_snapshot: String,
    /// Plant a sharp drift in the last month (app outage, transaction surge, young arrivals).
    #[arg(long)]
    pub drift: bool,
    /// Plant the events of a scenario file (data/scenarios/*.yaml; format in
    /// data/scenarios/README.md). What was planted is written to OUT/scenario.json.
    #[arg(long, value_name = "FILE.yaml")]
    pub scenario: Option<PathBuf>,
    /// Run a retention and an offer campaign on each month's lists, with the challenger
    /// truly better than the champion or truly equal to it (an A/A test): each later snapshot
    /// gets a `contacts` table, and what the campaigns truly did is written to
    /// OUT/scenario.json (planted effects: data/README.md).
    #[arg(long, value_enum, value_name = "CHALLENGER")]
    pub campaigns: Option<Challenger>,
    /// Output folder (default: data.raw_dir from the config, data/raw).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: GenerateArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let last = Date::parse(&args.last_snapshot).ok_or_else(|| {
        UserError(format!(
            "--last-snapshot {}: expected a date YYYY-MM-DD",
            args.last_snapshot
        ))
    })?;
    if last.month_end_after(0) != last {
        return Err(UserError(format!(
            "--last-snapshot {last} is not a month end (try {})",
            last.month_end_after(0)
        ))
        .into());
    }
    if args.clients == 0 || args.months == 0 || args.managers == 0 || args.agencies == 0 {
        return Err(UserError("--clients, --months, --managers and --agencies must be at least 1".into()).into());
    }
    if args.managers < args.agencies {
        return Err(UserError(format!(
            "--managers ({}) must be at least --agencies ({}): every agency needs a manager",
            args.managers, args.agencies
        ))
        .into());
    }
    // The clients table alone must fit a sheet; the holdings and activity tables are checked
    // as they are written (into a staging folder, so a refusal leaves nothing behind).
    if args.format == FileFormat::Xlsx && args.clients >= XLSX_MAX_ROWS {
        return Err(UserError(format!(
            "{} clients do not fit in an Excel sheet ({} rows at most); use --format csv or --format parquet",
            thousands(args.clients),
            thousands(XLSX_MAX_ROWS - 1)
        ))
        .into());
    }
    let scenario = match &args.scenario {
        Some(path) => scenario::load(path, args.months).map_err(|problems| {
            UserError(format!(
                "invalid scenario {}:\n  {}",
                path.display(),
                problems.join("\n  ")
            ))
        })?,
        None => Scenario::default(),
    };
    let out = args.out.clone().unwrap_or_else(|| config.data.raw_dir.clone());
    let started = Instant::now();
    let spec = BankSpec {
        clients: args.clients,
        months: args.months,
        managers: args.managers,
        agencies: args.agencies,
        seed: args.seed,
        last_snapshot: last,
        sharp_drift: args.drift,
        scenario,
        campaigns: args.campaigns,
    };
    let bar = progress::bar(args.months as u64, "generating snapshots");
    let written = write_bank(spec, args.format, &out, |_| bar.inc(1)).map_err(|e| match e {
        GenerateError::Write(WriteError::TooManyRowsForXlsx { .. }) => anyhow::Error::new(UserError(e.to_string())),
        other => other.into(),
    })?;
    bar.finish_and_clear();
    let counts: Vec<String> = written
        .last_counts
        .iter()
        .map(|(t, n)| format!("{} {}", thousands(*n), t.name()))
        .collect();
    println!(
        "wrote {} snapshots ({} … {}) as {} to {} in {:.1} s",
        written.snapshots.len(),
        written.snapshots.first().map(|d| d.to_string()).unwrap_or_default(),
        written.snapshots.last().map(|d| d.to_string()).unwrap_or_default(),
        args.format,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    println!("last snapshot: {}", counts.join(", "));
    let truth = &written.truth;
    if !truth.planted.is_empty() || !truth.scenario.gradual_drift {
        println!(
            "scenario {}: {} event(s) planted{}; ground truth in {}",
            truth.scenario.name,
            truth.planted.len(),
            if truth.scenario.gradual_drift {
                ""
            } else {
                ", no gradual drift"
            },
            out.join(bankml::data::synth::SCENARIO_FILE).display()
        );
        for event in &truth.planted {
            println!(
                "  {} {} from {}",
                event.kind.name(),
                event.column.as_deref().unwrap_or(""),
                event.first_snapshot
            );
        }
    }
    Ok(())
}
