//! Training the churn model on several workers through XGBoost's collective, as a user runs
//! it: `bankml bucketize`, then `bankml train --model churn --workers N` (local processes and
//! a tracker), or the Kubernetes manifest; and what a failing worker does to the run.

use crate::common::*;
use std::collections::HashSet;
use std::path::Path;

/// A small bank with four months whose churn outcome is known, spread over 8 buckets.
fn bucketized_bank() -> tempfile::TempDir {
    let dir = scratch();
    ok(
        dir.path(),
        &["generate", "--clients", "3000", "--months", "7", "--format", "parquet"],
    );
    let printed = ok(dir.path(), &["bucketize", "--buckets", "8"]);
    assert!(printed.contains("7 snapshot(s) spread over 8 buckets"), "{printed}");
    assert!(!printed.contains("unchanged"), "{printed}");
    dir
}

/// Writes the export at `path` again, the same rows in other bytes: a changed export to
/// whoever hashes it.
fn rewrite_uncompressed(path: &Path) {
    let mut frame = read_parquet(path);
    let mut file = std::fs::File::create(path).unwrap();
    polars::prelude::ParquetWriter::new(&mut file)
        .with_compression(polars::prelude::ParquetCompression::Uncompressed)
        .finish(&mut frame)
        .unwrap();
}

fn meta(dir: &Path, version: u32) -> serde_json::Value {
    let path = dir.join(format!("data/models/churn/{version}/meta.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn model_bytes(dir: &Path, version: u32) -> Vec<u8> {
    std::fs::read(dir.join(format!("data/models/churn/{version}/model.json"))).unwrap()
}

fn versions(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("data/models/churn")).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .count()
    })
}

#[test]
fn one_worker_trains_the_in_process_model_and_two_train_one_model_together() {
    let dir = bucketized_bank();
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/buckets/layout.json")).unwrap()).unwrap();
    assert_eq!(layout["buckets"], 8);
    // Every client is in exactly one bucket: the buckets' rows add up to the export's.
    let clients = read_parquet(&dir.path().join("data/raw/2025-12-31/clients.parquet"));
    let counted: u64 = layout["snapshots"]["2025-12-31"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, clients.height());

    // Run again, only what changed is written again: here, the latest month's holdings.
    let latest = dir.path().join("data/buckets/2025-12-31/holdings/bucket-00000.parquet");
    let earlier = dir.path().join("data/buckets/2025-11-30/holdings/bucket-00000.parquet");
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (latest_before, earlier_before) = (stamp(&latest), stamp(&earlier));
    let holdings = dir.path().join("data/raw/2025-12-31/holdings.parquet");
    rewrite_uncompressed(&holdings);
    let printed = ok(dir.path(), &["bucketize", "--buckets", "8"]);
    assert!(printed.contains("6 unchanged since the last run, kept"), "{printed}");
    assert!(stamp(&latest) != latest_before && stamp(&earlier) == earlier_before);

    ok(dir.path(), &["train", "--model", "churn"]);
    let printed = ok(dir.path(), &["train", "--model", "churn", "--workers", "1"]);
    assert!(printed.contains("churn v2 (challenger)"), "{printed}");
    assert!(printed.contains("trained by 1 worker together"), "{printed}");
    // One worker through the tracker, from its share (all buckets) rebuilt from the layout:
    // the in-process model, bit for bit.
    assert!(
        model_bytes(dir.path(), 1) == model_bytes(dir.path(), 2),
        "one worker's model differs"
    );
    let (alone, one) = (meta(dir.path(), 1), meta(dir.path(), 2));
    assert_eq!(one["workers"], 1);
    for field in [
        "rows_train",
        "rows_holdout",
        "data_hash",
        "best_rounds",
        "holdout",
        "features",
    ] {
        assert_eq!(alone[field], one[field], "{field}");
    }
    for file in ["design.json", "calibration.json", "reference.json"] {
        let read = |v: u32| std::fs::read(dir.path().join(format!("data/models/churn/{v}/{file}"))).unwrap();
        assert!(read(1) == read(2), "{file} differs");
    }

    // Two workers, twice: one model, the same bytes each time, from the same rows.
    ok(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    ok(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    assert!(
        model_bytes(dir.path(), 3) == model_bytes(dir.path(), 4),
        "two workers' reruns differ"
    );
    let two = meta(dir.path(), 3);
    assert_eq!(two["workers"], 2);
    assert_eq!(two["rows_train"], alone["rows_train"], "every training row, once");
    assert_eq!(two["rows_holdout"], alone["rows_holdout"]);
    assert_eq!(
        two["features"], alone["features"],
        "one design from merged category counts"
    );
    // XGBoost summed the workers' gradients: the first tree's root holds the hessians of
    // every (subsampled) training row, as the in-process model's does — a worker training
    // alone on its half would hold about half.
    let root_hessian = |version: u32| -> f64 {
        let model: serde_json::Value = serde_json::from_slice(&model_bytes(dir.path(), version)).unwrap();
        model["learner"]["gradient_booster"]["model"]["trees"][0]["sum_hessian"][0]
            .as_f64()
            .unwrap()
    };
    let ratio = root_hessian(3) / root_hessian(1);
    assert!((0.9..1.1).contains(&ratio), "root hessian ratio {ratio}");
    assert!(model_bytes(dir.path(), 3) != model_bytes(dir.path(), 1));
    // Each worker's quantile sketch and cleaning caps see only its rows, so the model is not
    // the in-process one; on the whole holdout it is close. Compared at a fixed number of
    // rounds: early stopping on this bank's ~400 watched rows makes the rounds themselves
    // noise (1 to 76 across seeds, alone or not). At 3,000 clients (about 80 churners to
    // learn from) two models differ by up to ~0.06 AUC; the 0.002 is measured at
    // 1,000,000 clients by `bankml bench distributed`.
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/bankml.yaml"),
        "models:\n  boosting:\n    rounds: 40\n    early_stopping_rounds: 0\n",
    )
    .unwrap();
    ok(dir.path(), &["train", "--model", "churn"]);
    ok(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    let (alone, two) = (meta(dir.path(), 5), meta(dir.path(), 6));
    assert_eq!(
        (alone["best_rounds"].as_u64(), two["best_rounds"].as_u64()),
        (Some(40), Some(40))
    );
    let auc = |m: &serde_json::Value| m["holdout"]["roc_auc"].as_f64().unwrap();
    assert!(
        (auc(&two) - auc(&alone)).abs() < 0.06,
        "two workers' AUC {} against one's {}",
        auc(&two),
        auc(&alone)
    );
    // Each worker built the features of its own clients, and they are the bank's features
    // of those clients bit for bit (cleaned at the whole snapshot's caps, which the layout
    // carries), for every month.
    let mut shared = 0;
    for date in ["2025-06-30", "2025-09-30", "2025-12-31"] {
        let whole = read_parquet(&dir.path().join(format!("data/processed/{date}/clients.parquet")));
        for rank in 0..2 {
            let share = read_parquet(
                &dir.path()
                    .join(format!("data/workers/worker-{rank}/processed/{date}/clients.parquet")),
            );
            let mine: HashSet<i64> = column_i64(&share, "cli").into_iter().collect();
            let picked: Vec<bool> = column_i64(&whole, "cli").iter().map(|c| mine.contains(c)).collect();
            let mask: polars::prelude::BooleanChunked = picked.into_iter().map(Some).collect();
            let expected = whole.filter(&mask).unwrap();
            assert!(share.height() > 0 && share.height() < whole.height());
            assert!(
                expected.equals_missing(&share),
                "worker {rank}'s features of {date} differ"
            );
            shared += share.height();
        }
        assert_eq!(shared, whole.height(), "every client on one worker");
        shared = 0;
    }
}

#[test]
fn a_missing_bucket_fails_every_worker_naming_it_and_writes_no_model() {
    let dir = bucketized_bank();
    // Bucket 3 belongs to worker 1 of 2.
    std::fs::remove_file(dir.path().join("data/buckets/2025-09-30/holdings/bucket-00003.parquet")).unwrap();
    let output = bankml(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(
        printed.contains("reading the buckets failed on worker 1: bucket 3 of holdings for 2025-09-30 is missing"),
        "{printed}"
    );
    assert_eq!(versions(dir.path()), 0, "no model from part of the data");
    // What the message calls for puts it right: bucketize writes that snapshot again.
    let printed = ok(dir.path(), &["bucketize", "--buckets", "8"]);
    assert!(printed.contains("6 unchanged since the last run, kept"), "{printed}");
    assert!(
        dir.path()
            .join("data/buckets/2025-09-30/holdings/bucket-00003.parquet")
            .is_file()
    );
    std::fs::remove_file(dir.path().join("data/buckets/2025-09-30/holdings/bucket-00003.parquet")).unwrap();
    // More workers than buckets is refused before any starts.
    let printed = bad_input(dir.path(), &["train", "--model", "churn", "--workers", "9"]);
    assert!(printed.contains("has 8 buckets, fewer than workers"), "{printed}");
    // A layout whose bucket count does not match its row counts would drop clients: refused.
    let layout_path = dir.path().join("data/buckets/layout.json");
    let layout = std::fs::read_to_string(&layout_path).unwrap();
    std::fs::write(&layout_path, layout.replace("\"buckets\": 8", "\"buckets\": 7")).unwrap();
    let output = bankml(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("8 row counts where 7 are expected"),
        "{}",
        text(&output)
    );
    std::fs::write(&layout_path, &layout).unwrap();
    // Exports changed since `bucketize`: the buckets are refused as stale.
    let holdings = dir.path().join("data/raw/2025-12-31/holdings.parquet");
    rewrite_uncompressed(&holdings);
    let printed = bad_input(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    assert!(
        printed.contains("older than the exports") && printed.contains("2025-12-31 changed since"),
        "{printed}"
    );
    assert_eq!(versions(dir.path()), 0);
    // No layout at all: said, with what writes one.
    std::fs::remove_file(dir.path().join("data/buckets/layout.json")).unwrap();
    let output = bankml(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    assert!(text(&output).contains("bankml bucketize"), "{}", text(&output));
}

/// The process ids of the workers of rank `rank` running in `dir`, from /proc.
fn worker_pids(dir: &Path, rank: usize) -> Vec<i32> {
    let wanted = [
        "worker".to_string(),
        "--model".into(),
        "churn".into(),
        "--rank".into(),
        rank.to_string(),
    ];
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let here = std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir);
            here && args.windows(wanted.len()).any(|w| w == wanted)
        })
        .collect()
}

#[test]
fn a_killed_worker_fails_the_run_at_once_and_the_next_attempt_starts_afresh() {
    let dir = bucketized_bank();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_bankml"))
        .args(["train", "--model", "churn", "--workers", "2"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let victim = wait_for(60, "worker 1 to start", || worker_pids(dir.path(), 1).first().copied());
    // SAFETY: a plain signal to a process of this test's own run.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let output = run.wait_with_output().unwrap();
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("worker 1 was killed by signal 9"), "{printed}");
    assert!(
        printed.contains("the other workers were stopped and no model was written"),
        "{printed}"
    );
    assert!(worker_pids(dir.path(), 0).is_empty(), "worker 0 is left running");
    assert_eq!(versions(dir.path()), 0);
    // The retry is a whole new attempt, which nothing of the killed one gets in the way of.
    let printed = ok(dir.path(), &["train", "--model", "churn", "--workers", "2"]);
    assert!(printed.contains("churn v1 (champion)"), "{printed}");
}

#[test]
fn workers_started_with_different_settings_refuse_to_train_together() {
    let dir = bucketized_bank();
    let settings = "data:\n  raw_dir: data/raw\n";
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/bankml.yaml"), settings).unwrap();
    let other = dir.path().join("config/other.yaml");
    std::fs::write(&other, format!("{settings}# edited on one worker only\n")).unwrap();
    let port = free_port().to_string();
    let tracker = format!("127.0.0.1:{port}");
    let worker = |rank: &str, config: &Path| {
        let mut args = vec![
            "--config".to_string(),
            config.display().to_string(),
            "worker".into(),
            "--rank".into(),
            rank.into(),
            "--workers".into(),
            "2".into(),
            "--tracker".into(),
            tracker.clone(),
            "--timeout".into(),
            "60s".into(),
        ];
        if rank == "0" {
            args.push("--start-tracker".into());
        }
        std::process::Command::new(env!("CARGO_BIN_EXE_bankml"))
            .args(&args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = worker("0", &dir.path().join("config/bankml.yaml"));
    let second = worker("1", &other);
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        let printed = text(&output);
        assert!(!output.status.success(), "{printed}");
        assert!(printed.contains("the workers disagree"), "{printed}");
        assert!(printed.contains("worker 1 runs bankml"), "{printed}");
    }
    assert_eq!(versions(dir.path()), 0);
}

#[test]
fn a_worker_whose_tracker_cannot_be_reached_says_so() {
    let dir = bucketized_bank();
    let tracker = format!("127.0.0.1:{}", free_port());
    let printed = text(&bankml(
        dir.path(),
        &[
            "worker",
            "--rank",
            "1",
            "--workers",
            "2",
            "--tracker",
            &tracker,
            "--timeout",
            "1s",
        ],
    ));
    assert!(
        printed.contains(&format!("worker 1 of 2 cannot join the tracker at {tracker}")),
        "{printed}"
    );
    assert_eq!(versions(dir.path()), 0);
}

#[test]
fn the_kubernetes_launcher_writes_an_indexed_job_and_a_headless_service() {
    let dir = bucketized_bank();
    let printed = ok(
        dir.path(),
        &[
            "train",
            "--model",
            "churn",
            "--workers",
            "4",
            "--launcher",
            "kubernetes",
            "--image",
            "registry.example/bankml:0.1.0",
        ],
    );
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubernetes/train-churn.yaml");
    if std::env::var_os("BANKML_BLESS").is_some() {
        std::fs::write(&golden, &printed).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        printed, expected,
        "the manifest changed; BANKML_BLESS=1 rewrites the golden file"
    );
    // What a cluster needs of it, read back as YAML: the Job indexed, never retried by
    // Kubernetes, one pod per worker, each pointed at rank 0 through the headless Service.
    let documents: Vec<serde_json::Value> = printed
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect();
    let (service, job) = (&documents[0], &documents[1]);
    assert_eq!(service["kind"], "Service");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 4);
    assert_eq!(job["spec"]["parallelism"], 4);
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["subdomain"], service["metadata"]["name"]);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example/bankml:0.1.0");
    let env: std::collections::HashMap<&str, &str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(env["DMLC_NUM_WORKER"], "4");
    assert_eq!(env["DMLC_TRACKER_URI"], "bankml-train-churn-0.bankml-train-churn");
    assert!(
        container["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--start-tracker")
    );
}
