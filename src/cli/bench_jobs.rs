//! `bankml bench jobs`: each scheduled job as an admin runs it, measured in a child process
//! (wall, CPU, peak RSS), optionally side by side with another bankml binary.

use super::bench::{Cost, measure};
use std::path::{Path, PathBuf};

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs every job `repeats` times (alternating with `baseline`, a binary and the project it
/// runs on, when given) and prints the median and minimum of each figure.
pub fn run(dir: &Path, jobs: &[String], repeats: usize, baseline: Option<&(PathBuf, PathBuf)>) -> anyhow::Result<()> {
    let this = std::env::current_exe()?;
    let mut binaries = vec![("this build", this.as_path(), dir)];
    if let Some((other, other_dir)) = baseline {
        binaries.push(("baseline", other.as_path(), other_dir.as_path()));
    }
    let mut costs: Vec<Vec<Vec<Cost>>> = vec![vec![Vec::new(); jobs.len()]; binaries.len()];
    for round in 0..repeats.max(1) {
        for (j, job) in jobs.iter().enumerate() {
            for (b, (name, binary, dir)) in binaries.iter().enumerate() {
                eprintln!("round {}: {job} with {name} …", round + 1);
                let cost = measure(binary, &["run", job.as_str()], Some(dir))?;
                eprintln!(
                    "  {:.2} s wall, {:.2} s CPU, {:.2} GiB peak",
                    cost.wall,
                    cost.cpu,
                    gib(cost.peak)
                );
                costs[b][j].push(cost);
            }
        }
    }
    println!(
        "{:<20} {:<11} {:>16} {:>16} {:>14}",
        "job", "binary", "wall s (med/min)", "CPU s (med/min)", "peak GiB (max)"
    );
    let summary = |runs: &[Cost]| {
        let mut wall: Vec<f64> = runs.iter().map(|c| c.wall).collect();
        let mut cpu: Vec<f64> = runs.iter().map(|c| c.cpu).collect();
        let peak = runs.iter().map(|c| c.peak).max().unwrap_or(0);
        let (wall_min, cpu_min) = (
            wall.iter().copied().fold(f64::INFINITY, f64::min),
            cpu.iter().copied().fold(f64::INFINITY, f64::min),
        );
        (median(&mut wall), wall_min, median(&mut cpu), cpu_min, peak)
    };
    for (j, job) in jobs.iter().enumerate() {
        let mut rows = Vec::new();
        for (b, (name, _, _)) in binaries.iter().enumerate() {
            let (wall, wall_min, cpu, cpu_min, peak) = summary(&costs[b][j]);
            println!(
                "{job:<20} {name:<11} {:>16} {:>16} {:>14.2}",
                format!("{wall:.2} / {wall_min:.2}"),
                format!("{cpu:.2} / {cpu_min:.2}"),
                gib(peak)
            );
            rows.push((wall, cpu, peak));
        }
        if let [(wall, cpu, peak), (base_wall, base_cpu, base_peak)] = rows[..] {
            println!(
                "{job:<20} {:<11} {:>16} {:>16} {:>14}",
                "ratio",
                format!("{:.2}", wall / base_wall),
                format!("{:.2}", cpu / base_cpu),
                format!("{:.2}", peak as f64 / base_peak as f64)
            );
        }
    }
    Ok(())
}
