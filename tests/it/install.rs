//! The shippable layout: `scripts/install.sh` puts the binary and XGBoost's library under one
//! prefix that still works once moved elsewhere, and the systemd unit under `deploy/` passes
//! `systemd-analyze verify` against it.

use crate::common;
use std::path::Path;
use std::process::Command;

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("BANKML_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?}:\n{text}");
    text
}

#[test]
fn the_installed_prefix_runs_once_moved_and_the_systemd_unit_verifies() {
    let mut steps = common::Steps::new("install");
    let scratch = common::scratch();
    let dir = scratch.path();
    let root = env!("CARGO_MANIFEST_DIR");
    steps.next("install.sh into a prefix, then move it");
    let first = dir.join("first");
    run(
        &format!("{root}/scripts/install.sh"),
        &[
            "--binary",
            env!("CARGO_BIN_EXE_bankml"),
            "--prefix",
            first.to_str().unwrap(),
        ],
        dir,
    );
    let prefix = dir.join("moved");
    std::fs::rename(&first, &prefix).unwrap();
    let binary = prefix.join("bin/bankml");
    let dynamic = run("readelf", &["-d", binary.to_str().unwrap()], dir);
    let runpath: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("RUNPATH") || l.contains("RPATH"))
        .collect();
    assert_eq!(runpath.len(), 1, "{dynamic}");
    assert!(runpath[0].contains("[$ORIGIN/../lib]"), "only $ORIGIN: {}", runpath[0]);
    let sections = run("readelf", &["-S", binary.to_str().unwrap()], dir);
    assert!(!sections.contains(".debug_info"), "the installed binary is stripped");
    assert!(sections.contains(".gnu_debuglink"), "and points at its debug info");
    assert!(prefix.join("lib/debug/bankml.debug").exists());
    let libraries = run("ldd", &[binary.to_str().unwrap()], dir);
    let xgboost = libraries.lines().find(|l| l.contains("libxgboost")).unwrap();
    assert!(
        xgboost.contains(&prefix.join("bin/../lib/libxgboost.so.3").display().to_string()),
        "{xgboost}"
    );

    steps.next("a project from the shipped files trains with the moved binary");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    for entry in std::fs::read_dir(prefix.join("share/bankml")).unwrap() {
        let entry = entry.unwrap();
        run(
            "cp",
            &["-R", entry.path().to_str().unwrap(), project.to_str().unwrap()],
            dir,
        );
    }
    let bankml = binary.to_str().unwrap();
    run(bankml, &["validate-config"], &project);
    run(bankml, &["generate", "--clients", "300", "--months", "8"], &project);
    let trained = run(bankml, &["train"], &project);
    assert!(trained.contains("churn"), "{trained}");

    steps.next("the systemd unit verifies against the installed binary");
    let unit = std::fs::read_to_string(format!("{root}/deploy/bankml.service"))
        .unwrap()
        .replace("/opt/bankml", prefix.to_str().unwrap())
        .replace("/var/lib/bankml", project.to_str().unwrap());
    let path = dir.join("bankml.service");
    std::fs::write(&path, unit).unwrap();
    run("systemd-analyze", &["verify", path.to_str().unwrap()], dir);
}
