//! Killed writers: `bankml bench crash` kills each writing command with SIGKILL at random
//! moments and checks every artefact still reads and nothing is left over once the next
//! command starts; and a killed writer's leftovers go when any project command starts.

use crate::common::*;
use std::path::Path;

fn project() -> tempfile::TempDir {
    let scratch = scratch();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["config/bankml.yaml", "jobs/monthly-retrain.yaml"] {
        let to = scratch.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(file), to).unwrap();
    }
    scratch
}

/// The count printed after `label` ("unreadable artefacts: 0 …").
fn count_after(printed: &str, label: &str) -> usize {
    let line = printed
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no «{label}» in:\n{printed}"));
    line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no count in «{line}»"))
}

#[test]
fn killed_writers_leave_every_artefact_readable_and_nothing_behind() {
    let project = project();
    let printed = ok(
        project.path(),
        &[
            "bench",
            "crash",
            "--trials",
            "12",
            "--clients",
            "600",
            "--months",
            "6",
            "--seed",
            "3",
        ],
    );
    assert_eq!(count_after(&printed, "unreadable artefacts:"), 0, "{printed}");
    assert_eq!(count_after(&printed, "leftovers after the next start:"), 0, "{printed}");
    let killed: usize = printed
        .lines()
        .filter(|l| l.contains("killed before it finished"))
        .map(|l| count_after(l.split_once("killed ").unwrap().1, "before it finished"))
        .sum();
    assert!(killed >= 6, "most trials must land before the command ends:\n{printed}");
}

#[test]
fn a_dead_writers_leftovers_go_when_the_next_command_starts() {
    let project = project();
    let dir = project.path();
    // A pid no process can have (above Linux's pid_max): its writer is certainly gone.
    let dead = 2_000_000_000;
    let scores = dir.join("data/scores");
    let temp = scores.join(format!("2025-01-31/.bankml-{dead}-x.tmp"));
    let staging = dir.join(format!("data/models/churn/.staging-{dead}-7"));
    let aside = scores.join(format!(".old-{dead}-2025-02-28"));
    let live = scores.join(format!(".staging-{}-1", std::process::id()));
    for folder in [temp.parent().unwrap(), &staging, &aside, &live] {
        std::fs::create_dir_all(folder).unwrap();
    }
    std::fs::write(&temp, "half a parq").unwrap();
    std::fs::write(aside.join("clients.parquet"), "kept").unwrap();
    std::fs::create_dir_all(dir.join("data/raw")).unwrap();
    ok(dir, &["runs"]);
    assert!(!temp.exists() && !staging.exists(), "dead writer's leftovers stay");
    assert_eq!(
        std::fs::read_to_string(scores.join("2025-02-28/clients.parquet")).unwrap(),
        "kept",
        "the folder moved aside is put back"
    );
    assert!(live.exists(), "a live writer's staging folder was removed");
}
