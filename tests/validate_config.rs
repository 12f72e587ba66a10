//! `bankml validate-config` on the shipped configuration and on broken job files.

mod common;

use common::*;
use std::path::Path;

fn copy_shipped_config(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::copy(root.join("config/bankml.yaml"), dir.join("config/bankml.yaml")).unwrap();
    for entry in std::fs::read_dir(root.join("jobs")).unwrap().filter_map(Result::ok) {
        std::fs::copy(entry.path(), dir.join("jobs").join(entry.file_name())).unwrap();
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
}

#[test]
fn every_broken_file_is_named_with_line_and_column() {
    let dir = scratch();
    copy_shipped_config(dir.path());
    std::fs::write(
        dir.path().join("jobs/nightly.yaml"),
        "job: scoring\nschedule: \"0 25 * * *\"\ntimezone: Europe/Madird\ntimeout: 1 hour\n",
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
        printed.contains("jobs/nightly.yaml:4:10: timeout: \"1 hour\" is not a duration"),
        "{printed}"
    );
    assert!(
        printed.contains("jobs/typo.yaml: line 2 column 1: unknown field `schedul`"),
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
