use super::{UserError, progress, thousands};
use anyhow::Context;
use bankml::config::EngineConfig;
use bankml::data::date::Date;
use bankml::data::format::{FileFormat, XLSX_MAX_ROWS, write_frame};
use bankml::data::synth::{BankSpec, Simulation};
use bankml::fsutil;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Clients at the last snapshot (85 % present from the start, the rest arrive monthly).
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
    /// Output folder (default: data.raw_dir from the config, data/raw).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: GenerateArgs, config: &EngineConfig) -> anyhow::Result<()> {
    let last = Date::parse(&args.last_snapshot)
        .ok_or_else(|| UserError(format!("--last-snapshot {}: expected a date YYYY-MM-DD", args.last_snapshot)))?;
    if last.month_end_after(0) != last {
        return Err(UserError(format!("--last-snapshot {last} is not a month end (try {})", last.month_end_after(0))).into());
    }
    if args.clients == 0 || args.months == 0 || args.managers == 0 || args.agencies == 0 {
        return Err(UserError("--clients, --months, --managers and --agencies must be at least 1".into()).into());
    }
    if args.managers < args.agencies {
        return Err(UserError(format!("--managers ({}) must be at least --agencies ({}): every agency needs a manager", args.managers, args.agencies)).into());
    }
    // Holdings run at about three per client, so refuse xlsx before simulating anything when
    // the clients alone or the expected holdings cannot fit a sheet.
    if args.format == FileFormat::Xlsx && args.clients.saturating_mul(4) >= XLSX_MAX_ROWS {
        return Err(UserError(format!(
            "{} clients need about {} holdings rows, more than an Excel sheet holds ({} rows); use --format csv or --format parquet",
            thousands(args.clients),
            thousands(args.clients * 4),
            thousands(XLSX_MAX_ROWS - 1)
        ))
        .into());
    }
    let out = args.out.clone().unwrap_or_else(|| config.data.raw_dir.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir_in(&out)
        .with_context(|| format!("cannot create a staging folder in {}", out.display()))?;

    let started = Instant::now();
    let spec = BankSpec {
        clients: args.clients,
        months: args.months,
        managers: args.managers,
        agencies: args.agencies,
        seed: args.seed,
        last_snapshot: last,
        sharp_drift: args.drift,
    };
    let mut simulation = Simulation::new(spec);
    let bar = progress::bar(args.months as u64, "generating snapshots");
    let mut written = Vec::new();
    let mut last_counts = Vec::new();
    for _ in 0..simulation.months() {
        let snapshot = simulation.step();
        let dir = staging.path().join(snapshot.date.to_string());
        last_counts.clear();
        for (table, mut frame) in snapshot.tables {
            let path = dir.join(format!("{}.{}", table.name(), args.format.extension()));
            write_frame(&mut frame, &path, args.format).map_err(|e| match e {
                bankml::data::format::WriteError::TooManyRowsForXlsx { .. } => anyhow::Error::new(UserError(e.to_string())),
                other => other.into(),
            })?;
            last_counts.push((table.name(), frame.height()));
        }
        written.push(snapshot.date);
        bar.inc(1);
    }
    bar.finish_and_clear();
    for date in &written {
        fsutil::replace_dir(&staging.path().join(date.to_string()), &out.join(date.to_string()))?;
    }
    let counts: Vec<String> = last_counts.iter().map(|(t, n)| format!("{} {t}", thousands(*n))).collect();
    println!(
        "wrote {} snapshots ({} … {}) as {} to {} in {:.1} s",
        written.len(),
        written.first().map(|d| d.to_string()).unwrap_or_default(),
        written.last().map(|d| d.to_string()).unwrap_or_default(),
        args.format,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    println!("last snapshot: {}", counts.join(", "));
    Ok(())
}
