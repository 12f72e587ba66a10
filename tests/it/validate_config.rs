//! `bankml validate-config` on the shipped configuration and on broken job files.

use crate::common::*;
use std::path::Path;

fn copy_shipped_config(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::copy(root.join("config/bankml.yaml"), dir.join("config/bankml.yaml")).unwrap();
    for folder in ["jobs", "alerts"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for entry in std::fs::read_dir(root.join(folder)).unwrap().filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(entry.path(), dir.join(folder).join(entry.file_name())).unwrap();
            }
        }
    }
}

#[test]
fn the_shipped_configuration_is_valid() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    let printed = ok(dir.path(), &["validate-config"]);
    for job in [
        "daily-benchmark",
        "weekly-validation",
        "monthly-retrain",
        "daily-scoring",
    ] {
        assert!(
            printed.contains(&format!("jobs/{job}.yaml: ok")),
            "{job} missing:\n{printed}"
        );
    }
    // The shipped alert rules are read and checked against the observation catalogue too.
    let shipped = std::fs::read_to_string(dir.path().join("alerts/rules.yaml")).unwrap();
    let count = shipped
        .lines()
        .filter(|l| l.trim_start().starts_with("- name:"))
        .count();
    assert!(count >= 8, "{count} rules");
    assert!(
        printed.contains(&format!("alerts/rules.yaml: ok — {count} rule(s)")),
        "{printed}"
    );
}

#[test]
fn a_rule_on_an_unknown_observation_is_refused_with_its_place() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    let path = dir.path().join("alerts/rules.yaml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        shipped.replacen("observation: churn_auc\n", "observation: churn_aucc\n", 1),
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    let line = shipped
        .lines()
        .position(|l| l.trim() == "observation: churn_auc")
        .unwrap()
        + 1;
    assert!(
        printed.contains(&format!(
            "alerts/rules.yaml:{line}:18: observation: \"churn_aucc\" is not an observation bankml publishes (did you mean \"churn_auc\"?)"
        )),
        "{printed}"
    );
}

#[test]
fn three_mistakes_in_one_job_file_are_three_located_problems() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    std::fs::write(
        dir.path().join("jobs/daily-benchmark.yaml"),
        "job: benchmark\nschedule: \"0 25 * * *\"\ntimout: 20m\noverlap: skipp\n",
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    for expected in [
        "jobs/daily-benchmark.yaml:3:1: unknown key \"timout\" (did you mean \"timeout\"?)",
        "jobs/daily-benchmark.yaml:2:11: schedule: \"0 25 * * *\" is not a cron schedule",
        "jobs/daily-benchmark.yaml:4:10: overlap: unknown variant `skipp`",
    ] {
        assert!(printed.contains(expected), "{expected} missing:\n{printed}");
    }
    assert!(printed.contains("3 problem(s) in the configuration"), "{printed}");
}

#[test]
fn a_jobs_params_are_checked_against_its_kind_at_their_lines() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    std::fs::write(
        dir.path().join("jobs/daily-benchmark.yaml"),
        "job: benchmark\nschedule: \"0 0 2 * * *\"\nparams:\n  kk: 5\n  k: -3\n  folds: 4\n  drift_share: 1.5\n  models: [churn, nope]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("jobs/weekly-validation.yaml"),
        "job: validation\nschedule: \"0 0 3 * * MON\"\nparams: {folds: 1}\n",
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    for expected in [
        "jobs/daily-benchmark.yaml:4:7: params.kk: a benchmark job has no such parameter (did you mean k?)",
        "jobs/daily-benchmark.yaml:5:6: params.k: expected a whole number from 1, got -3",
        "jobs/daily-benchmark.yaml:6:10: params.folds: a benchmark job has no such parameter",
        "jobs/daily-benchmark.yaml:7:16: params.drift_share: expected a number from 0 to 1, got 1.5",
        "jobs/daily-benchmark.yaml:8:11: params.models: expected a list of models from churn, manager, agency, recommender",
        "jobs/weekly-validation.yaml:3:17: params.folds: expected a whole number from 2, got 1",
    ] {
        assert!(printed.contains(expected), "{expected} missing:\n{printed}");
    }
}

#[test]
fn every_broken_file_is_named_with_line_and_column() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    std::fs::write(
        dir.path().join("jobs/nightly.yaml"),
        "job: scoring\nschedule: \"0 25 * * *\"\ntimezone: Europe/Madird\ntimeout: an hour\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("jobs/typo.yaml"),
        "job: scoring\nschedul: \"0 2 * * *\"\n",
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    assert!(
        printed.contains("jobs/nightly.yaml:2:11: schedule: \"0 25 * * *\" is not a cron schedule"),
        "{printed}"
    );
    assert!(
        printed.contains("jobs/nightly.yaml:3:11: timezone: \"Europe/Madird\" is not an IANA time zone"),
        "{printed}"
    );
    assert!(
        printed.contains("jobs/nightly.yaml:4:10: timeout: \"an hour\" is not a duration"),
        "{printed}"
    );
    assert!(
        printed.contains("jobs/typo.yaml:2:1: unknown key \"schedul\" (did you mean \"schedule\"?)"),
        "{printed}"
    );
    std::fs::write(
        dir.path().join("config/bankml.yaml"),
        "models:\n  churn:\n    high_risk: 2\n",
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    assert!(printed.contains("need 0 < medium_risk < high_risk ≤ 1"), "{printed}");
    assert!(
        printed.contains("jobs/typo.yaml"),
        "job problems are listed too:\n{printed}"
    );
}

#[test]
fn outside_a_project_commands_that_read_state_refuse_and_create_nothing() {
    // An on-call engineer in the wrong folder must not read "no alerts" as all-clear.
    let dir = scratch();
    for args in [
        &["alerts", "list"][..],
        &["runs"],
        &["models", "list"],
        &["alerts", "silence", "x", "--for", "1h"],
        &["train"],
    ] {
        let printed = bad_input(dir.path(), args);
        assert!(printed.contains("is not a bankml project"), "{args:?}: {printed}");
        assert!(
            printed.contains("--config PROJECT/config/bankml.yaml"),
            "{args:?} says how to reach one: {printed}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
    // Starting one is allowed, and then the project's commands run.
    ok(
        dir.path(),
        &["generate", "--clients", "300", "--months", "2", "--format", "csv"],
    );
    let runs = ok(dir.path(), &["runs"]);
    assert!(runs.contains("no runs"), "{runs}");
    // From anywhere, --config reaches the project: its folders are read from the project
    // holding config/, and nothing is created where bankml runs.
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/bankml.yaml"),
        "daemon:\n  bootstrap_clients: 0\n",
    )
    .unwrap();
    let elsewhere = scratch();
    let config = dir.path().join("config/bankml.yaml");
    let config = config.to_str().unwrap();
    let runs = ok(elsewhere.path(), &["--config", config, "runs"]);
    assert!(runs.contains("no runs"), "{runs}");
    let features = ok(elsewhere.path(), &["--config", config, "features", "--csv"]);
    assert!(
        features.contains(&dir.path().join("data").display().to_string()),
        "{features}"
    );
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?} where bankml ran");
}

#[test]
fn yaml_that_is_not_utf8_is_placed_by_line_and_byte() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/bankml.yaml"),
        b"daemon:\n  listen: 127.0.0.1:8001\n# r\xe9gion\n",
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    assert!(
        printed.contains("config/bankml.yaml") && printed.contains("line 3, byte column 4: not UTF-8 text (byte 0xE9)"),
        "{printed}"
    );
}

#[test]
fn a_wrong_value_is_at_its_line_and_does_not_cascade_into_the_rules() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    let shipped = std::fs::read_to_string(dir.path().join("config/bankml.yaml")).unwrap();
    std::fs::write(
        dir.path().join("config/bankml.yaml"),
        shipped.replace("cap_quantile: 0.999", "cap_quantile: 7"),
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    let line = shipped.lines().position(|l| l.contains("cap_quantile: 0.999")).unwrap() + 1;
    assert!(
        printed.contains(&format!(
            "config/bankml.yaml:{line}:3: cleaning.cap_quantile must be between 0.5 and 1, got 7"
        )),
        "{printed}"
    );
    assert!(
        !printed.contains("receiver"),
        "the rules' receivers are still known: {printed}"
    );
    assert!(printed.contains("1 problem(s)"), "{printed}");
    // A config that does not parse at all: the rules wait for it, rather than failing on
    // receivers nobody could know.
    std::fs::write(dir.path().join("config/bankml.yaml"), "daemon: [\n").unwrap();
    let printed = bad_input(dir.path(), &["validate-config"]);
    assert!(printed.contains("rules.yaml: not checked until"), "{printed}");
    assert!(!printed.contains("not defined"), "{printed}");
}
