//! The prediction API's serving state, loaded two ways: from the scoring run's kept features
//! and stored churn scores (what a daemon finds after the daily scoring), and built from the
//! exports when nothing is kept. Both must answer the same, to the last digit — and a what-if
//! over a client's own values (read back from the kept, f32 features) must be that client.

use crate::common::{
    column_f64, column_i64, free_port, http, ok, read_parquet, ready, scratch, start_daemon, wait_for,
};
use serde_json::Value;
use std::path::Path;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Every client's score, one client by id and by a what-if, one client's products.
type Answers = (Vec<(i64, f64)>, Value, Value, Value);

/// What the API answers about one client (by id, and by a what-if over its own values), every
/// client and one client's products, from a daemon started on `dir`; and whether every
/// client's score had been predicted when the first client's answer came.
fn answers(dir: &Path, port: u16, log: &str, client: i64, own_products: f64) -> (Answers, bool) {
    let daemon = start_daemon(dir, log, &[]);
    let address = format!("127.0.0.1:{port}");
    wait_for(60, "the daemon ready", || ready(&address).then_some(()));
    let ask = |body: String| {
        let (status, answer) = http(&address, "POST", "/api/v1/predict/churn", None, Some(&body));
        assert_eq!(status, 200, "{answer}");
        json(&answer)
    };
    let by_id = ask(format!("{{\"client_id\": {client}}}"));
    let all_predicted = std::fs::read_to_string(dir.join(log))
        .unwrap()
        .contains("predicting every client");
    let what_if = ask(format!(
        "{{\"client_id\": {client}, \"n_products_active\": {own_products}}}"
    ));
    let mut every: Vec<(i64, f64)> = Vec::new();
    for page in 1.. {
        let path = format!("/api/v1/predict/all-clients-churn?page={page}&page_size=1000");
        let (status, body) = http(&address, "GET", &path, None, None);
        assert_eq!(status, 200, "{body}");
        let items = json(&body)["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        every.extend(items.iter().map(|i| {
            (
                i["client_id"].as_i64().unwrap(),
                i["churn_probability"].as_f64().unwrap(),
            )
        }));
    }
    let (status, body) = http(
        &address,
        "GET",
        &format!("/api/v1/recommend/products/{client}?n=5"),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    drop(daemon);
    ((every, by_id, what_if, json(&body)), all_predicted)
}

#[test]
fn kept_features_and_stored_scores_serve_what_building_them_would() {
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("config/bankml.yaml"),
        format!(
            "models:\n  boosting:\n    rounds: 30\n    threads: 1\n\
             daemon:\n  listen: 127.0.0.1:{port}\n  bootstrap_clients: 0\n"
        ),
    )
    .unwrap();
    let config = dir.join("config/bankml.yaml");
    let config = config.to_str().unwrap();
    ok(
        dir,
        &["generate", "--clients", "1500", "--months", "5", "--format", "parquet"],
    );
    ok(dir, &["--config", config, "train", "--model", "churn"]);
    ok(dir, &["--config", config, "train", "--model", "recommender"]);
    ok(dir, &["--config", config, "score"]);
    let snapshot = std::fs::read_dir(dir.join("data/scores")).unwrap().count();
    assert_eq!(snapshot, 1, "one scored snapshot");
    let scores_dir = std::fs::read_dir(dir.join("data/scores"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let date = scores_dir.file_name().unwrap().to_str().unwrap().to_string();
    let stored = read_parquet(&scores_dir.join("clients.parquet"));
    let stored: std::collections::HashMap<i64, f64> = column_i64(&stored, "cli")
        .into_iter()
        .zip(column_f64(&stored, "churn_probability"))
        .collect();
    let kept = read_parquet(&dir.join(format!("data/processed/{date}/clients.parquet")));
    let (client, own_products) = (column_i64(&kept, "cli")[7], column_f64(&kept, "n_products_active")[7]);

    // Kept: the daemon reads the scoring run's features and scores, predicting nothing.
    let ((every, by_id, what_if, products), _) = answers(dir, port, "kept.log", client, own_products);
    let log = std::fs::read_to_string(dir.join("kept.log")).unwrap();
    assert!(log.contains("serving state loaded"), "{log}");
    assert!(!log.contains("predicting"), "the stored scores serve: {log}");
    assert_eq!(every.len(), stored.len());
    for (id, probability) in &every {
        assert_eq!(stored[id], *probability, "client {id}: the scoring run's own score");
    }
    assert!(every.windows(2).all(|w| w[0].1 >= w[1].1), "riskiest first");
    // A what-if that changes nothing (its own count over its own kept values) is the client.
    assert_eq!(what_if["base"], "known", "{what_if}");
    assert_eq!(
        what_if["churn_probability"], by_id["churn_probability"],
        "{what_if} vs {by_id}"
    );
    assert!(
        products["recommendations"].as_array().is_some_and(|r| !r.is_empty()),
        "{products}"
    );

    // Nothing kept (a new champion's scores are not stored yet either): the daemon validates
    // the exports, builds the features and predicts — a client at once, every client when
    // first asked for them — the same answers.
    std::fs::remove_dir_all(dir.join("data/processed")).unwrap();
    std::fs::remove_dir_all(dir.join("data/scores")).unwrap();
    let (built, all_predicted) = answers(dir, port, "built.log", client, own_products);
    assert!(!all_predicted, "one client's answer waited for every client's");
    let log = std::fs::read_to_string(dir.join("built.log")).unwrap();
    assert!(log.contains("predicting every client"), "{log}");
    assert_eq!(built.0, every);
    assert_eq!(built.1, by_id);
    assert_eq!(built.2, what_if);
    assert_eq!(built.3, products);
}
