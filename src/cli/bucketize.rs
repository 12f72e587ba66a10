use super::{UserError, progress, thousands};
use bankml::config::EngineConfig;
use bankml::data::buckets;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BucketizeArgs {
    /// Buckets to spread the clients over (a client's bucket: splitmix64(cli) mod BUCKETS).
    /// Many more than workers, so any number of workers up to it gets an even share.
    #[arg(long, default_value_t = 64)]
    pub buckets: usize,
    /// Output folder (default: data/buckets beside data.raw_dir). Replaced snapshot by
    /// snapshot; layout.json is written last.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Where a project's bucket layout lives unless told: `data/buckets` beside `data/raw`.
pub fn default_layout_dir(config: &EngineConfig) -> PathBuf {
    config
        .data
        .raw_dir
        .parent()
        .map_or_else(|| PathBuf::from("buckets"), |p| p.join("buckets"))
}

pub fn run(args: BucketizeArgs, config: &EngineConfig) -> anyhow::Result<()> {
    if args.buckets == 0 {
        return Err(UserError("--buckets 0: at least one bucket is needed".into()).into());
    }
    let out = args.out.unwrap_or_else(|| default_layout_dir(config));
    let count = bankml::data::snapshot::list_snapshots(&config.data.raw_dir)?.len();
    let bar = progress::bar(count as u64, "bucketizing snapshots");
    let started = std::time::Instant::now();
    let mut kept = 0;
    let layout = buckets::bucketize(config, &out, args.buckets, |_, written| {
        kept += usize::from(!written);
        bar.inc(1)
    })?;
    bar.finish_and_clear();
    let clients: u64 = layout
        .snapshots
        .values()
        .last()
        .and_then(|tables| tables.get("clients"))
        .map_or(0, |counts| counts.iter().sum());
    println!(
        "{} snapshot(s) spread over {} buckets in {} ({} clients in the latest){}, {:.1} s",
        layout.snapshots.len(),
        layout.buckets,
        out.display(),
        thousands(clients as usize),
        match kept {
            0 => String::new(),
            n => format!("; {n} unchanged since the last run, kept"),
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
