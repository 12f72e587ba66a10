//! `bankml bench business`: the business job as a statistician would check it. Many banks
//! are generated with planted campaign effects (one per seed), each measured by the business
//! job as it runs, and the figures scored against what was planted:
//! - **coverage**: the share of 95 % intervals (arm differences, click-through rates) that
//!   contain the planted value — 95 % if the intervals are honest. The planted value is the
//!   treatment's expected effect over the whole list; beside it, coverage of the effect each
//!   arm realized on its own clients, which moves with that arm's draw of who would have left
//!   (so it is covered less often where both arms are treated);
//! - **false positives** (`--challenger equal`, an A/A test): the share of banks whose first
//!   complete campaign declares the challenger different from the champion — 5 % before the
//!   correction, at most 5 % after it;
//! - **power** (`--challenger better`): the share that declares the truly better challenger
//!   better.
//!
//! One campaign per kind and bank enters the rates, so they are shares of independent trials.

use super::progress;
use bankml::config::EngineConfig;
use bankml::data::campaign::Arm;
use bankml::data::format::FileFormat;
use bankml::data::synth::campaigns::Challenger;
use bankml::data::synth::{BankSpec, write_bank};
use bankml::jobs::{Context, business};
use bankml::metrics::proportions::{Count, wilson};
use bankml::report::campaigns::{BusinessSummary, Outcome};
use bankml::report::summary::JobSummary;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct BusinessBench {
    pub clients: usize,
    pub months: usize,
    pub seeds: usize,
    pub first_seed: u64,
    pub challenger: Challenger,
    pub dir: Option<PathBuf>,
}

/// Counts of trials and successes, shown as a share with its 95 % interval.
#[derive(Default)]
struct Tally {
    hits: u64,
    trials: u64,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.trials += 1;
        self.hits += u64::from(hit);
    }

    fn show(&self) -> String {
        let count = Count::new(self.hits, self.trials);
        match (count.rate(), wilson(count, 0.05)) {
            (Ok(rate), Ok(interval)) => format!(
                "{:5.1} %  [{:.1}, {:.1}]  ({} of {})",
                100.0 * rate,
                100.0 * interval.low,
                100.0 * interval.high,
                self.hits,
                self.trials
            ),
            _ => "–".to_string(),
        }
    }
}

pub fn run(bench: BusinessBench, config: &EngineConfig) -> anyhow::Result<()> {
    let temporary = match &bench.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let root: PathBuf = bench
        .dir
        .clone()
        .unwrap_or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default());
    std::fs::create_dir_all(&root)?;
    let mut coverage: BTreeMap<String, (Tally, Tally)> = BTreeMap::new();
    let mut declared: BTreeMap<String, (Tally, Tally)> = BTreeMap::new();
    let (mut generating, mut measuring) = (0.0, 0.0);
    let bar = progress::bar(bench.seeds as u64, "banks");
    for k in 0..bench.seeds {
        let seed = bench.first_seed + k as u64;
        let raw = root.join(format!("seed-{seed}")).join("raw");
        let started = Instant::now();
        let spec = BankSpec {
            clients: bench.clients,
            months: bench.months,
            seed,
            campaigns: Some(bench.challenger),
            ..BankSpec::default()
        };
        let written = write_bank(spec, FileFormat::Parquet, &raw, |_| {})?;
        generating += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let summary = measure(&raw, config)?;
        measuring += started.elapsed().as_secs_f64();
        score(&summary, &written.truth.campaigns, &mut coverage, &mut declared);
        std::fs::remove_dir_all(raw.parent().unwrap_or(&raw))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "{} banks of {} clients, {} months, challenger {}: generating {:.1} s, business job {:.2} s a bank (mean)",
        bench.seeds,
        bench.clients,
        bench.months,
        match bench.challenger {
            Challenger::Equal => "equal (A/A)",
            Challenger::Better => "better",
        },
        generating / bench.seeds.max(1) as f64,
        measuring / bench.seeds.max(1) as f64
    );
    println!("\ninterval coverage: 95 % intervals containing the planted value, every complete campaign");
    println!(
        "  {:<48} {:<36} the arms' realized effect",
        "", "the expected effect (over the list)"
    );
    for (name, (expected, realized)) in &coverage {
        println!(
            "  {name:<48} {:<36} {}",
            expected.show(),
            if realized.trials > 0 {
                realized.show()
            } else {
                "–".into()
            }
        );
    }
    let what = match bench.challenger {
        Challenger::Equal => "false positives (A/A: arms truly equal)",
        Challenger::Better => "power (the challenger truly better)",
    };
    println!("\nchallenger declared different from the champion, {what}; first complete campaign of each bank:");
    println!("  {:<48} {:<36} after Holm", "", "p < 0.05");
    for (name, (raw, adjusted)) in &declared {
        println!("  {name:<48} {:<36} {}", raw.show(), adjusted.show());
    }
    Ok(())
}

fn measure(raw: &Path, config: &EngineConfig) -> anyhow::Result<BusinessSummary> {
    let mut config = config.clone();
    config.data.raw_dir = raw.to_path_buf();
    let ctx = Context::new(&config);
    let outcome = business::run(&ctx)?;
    match JobSummary::read("business", &outcome.summary)? {
        JobSummary::Business(summary) => Ok(*summary),
        _ => anyhow::bail!("the business job wrote another job's summary"),
    }
}

fn score(
    summary: &BusinessSummary,
    truth: &[bankml::data::synth::campaigns::CampaignTruth],
    coverage: &mut BTreeMap<String, (Tally, Tally)>,
    declared: &mut BTreeMap<String, (Tally, Tally)>,
) {
    let mut first_of_kind = std::collections::BTreeSet::new();
    for campaign in summary.campaigns.iter().filter(|c| c.matured) {
        let Some(planted) = truth.iter().find(|t| t.campaign == campaign.campaign) else {
            continue;
        };
        let kind = campaign.campaign.kind.as_str();
        // (expected, realized) value of an arm's outcome as a comparison sees it.
        let arm_truth = |arm: Arm, outcome: Outcome| -> Option<(f64, Option<f64>)> {
            let t = planted.arms.get(&arm)?;
            match outcome {
                Outcome::ClickThrough => t.expected_click_through.map(|v| (v, None)),
                _ => Some((t.expected_effect, Some(t.realized_effect()))),
            }
        };
        for arm in &campaign.arms {
            if let (Some(rate), Some(expected)) = (
                arm.click_through,
                planted.arms.get(&arm.arm).and_then(|t| t.expected_click_through),
            ) {
                coverage
                    .entry(format!("{kind} {} click-through", arm.arm))
                    .or_default()
                    .0
                    .add(rate.interval.contains(expected));
            }
        }
        let first = first_of_kind.insert(kind);
        for comparison in &campaign.comparisons {
            let Some(figures) = comparison.figures else { continue };
            if let (Some(a), Some(b)) = (
                arm_truth(comparison.a, comparison.outcome),
                arm_truth(comparison.b, comparison.outcome),
            ) {
                let entry = coverage.entry(format!("{kind} {}", comparison.name())).or_default();
                entry.0.add(figures.difference_interval.contains(a.0 - b.0));
                if let (Some(x), Some(y)) = (a.1, b.1) {
                    entry.1.add(figures.difference_interval.contains(x - y));
                }
            }
            if first && comparison.a == Arm::Challenger && comparison.b == Arm::Champion {
                let entry = declared.entry(format!("{kind} {}", comparison.name())).or_default();
                entry.0.add(figures.p_value < summary.settings.alpha);
                entry.1.add(comparison.significant);
            }
        }
    }
}
