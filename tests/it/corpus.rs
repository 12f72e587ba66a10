//! The hostile corpus: generated mutations of every input a user hands bankml — bank exports,
//! `evaluate`'s files, the config, job, rule and scenario YAML, HTTP requests — each fed to the
//! reader that takes it. Whatever comes in: no panic, and a refusal names its place (file and
//! line, or the field); what is accepted holds no value that could poison a feature.
//!
//! Cases are drawn by proptest from a fixed seed, so a failure replays; `PROPTEST_CASES` sets
//! how many per reader (default below), `BANKML_CORPUS_SEED` (0–255) draws another corpus.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::Path;

/// Cases per reader unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 150;

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = std::env::var("BANKML_CORPUS_SEED")
        .ok()
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(7);
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]))
}

/// Values that break naive readers: huge, tiny, not numbers, not text, quotes, separators.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e308".to_string()),
        Just("-1e308".to_string()),
        Just("1e309".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("NaN".to_string()),
        Just(String::new()),
        Just("   ".to_string()),
        Just("abc".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-0".to_string()),
        Just("4.9e-324".to_string()),
        Just("0x10".to_string()),
        Just("1,5".to_string()),
        Just("\"".to_string()),
        Just("\"a\"\"b\"".to_string()),
        Just("2025-13-45".to_string()),
        Just("1900-01-01".to_string()),
        Just("9999-12-31".to_string()),
        Just("-1".to_string()),
        Just("true".to_string()),
        Just("~".to_string()),
        Just("é\u{0}\u{1b}[31m".to_string()),
        "[ -~]{0,12}",
        (-1e12f64..1e12).prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
    ]
}

/// One change to a text file, at positions scaled to its length.
#[derive(Debug, Clone)]
enum Mutation {
    /// The `cell`-th field of line `line` replaced.
    Cell {
        line: usize,
        cell: usize,
        value: String,
    },
    /// Raw bytes (UTF-8 or not) inserted at a byte offset.
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    /// The file cut at a byte offset.
    Truncate {
        at: usize,
    },
    DuplicateLine(usize),
    DeleteLine(usize),
    /// A line indented by `by` more spaces (YAML) or fewer.
    Indent {
        line: usize,
        by: i8,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = 0usize..10_000;
    prop_oneof![
        4 => (index.clone(), 0usize..12, hostile_value()).prop_map(|(line, cell, value)| Mutation::Cell { line, cell, value }),
        2 => (index.clone(), prop::collection::vec(prop_oneof![Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(0xff), Just(0xc3), Just(0), Just(b':'), Just(b'-'), Just(b'\t'), Just(b'{'), Just(b'#'), any::<u8>()], 1..6))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => index.clone().prop_map(|at| Mutation::Truncate { at }),
        1 => index.clone().prop_map(Mutation::DuplicateLine),
        1 => index.clone().prop_map(Mutation::DeleteLine),
        1 => (index, prop_oneof![Just(-2i8), Just(-1), Just(1), Just(2), Just(4)]).prop_map(|(line, by)| Mutation::Indent { line, by }),
    ]
}

/// `text` with `mutation` applied; `separator` splits a line into cells (',' for CSV, ':'
/// for YAML, where the cell after the key is its value).
fn apply(text: &str, mutation: &Mutation, separator: char) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let pick = |i: usize, n: usize| if n == 0 { 0 } else { i % n };
    match mutation {
        Mutation::Cell { line, cell, value } => {
            let n = lines.len();
            if n > 0 {
                let line = &mut lines[pick(*line, n)];
                let changed = if separator == ',' {
                    let mut cells: Vec<&str> = line.split(',').collect();
                    let at = pick(*cell, cells.len());
                    cells[at] = value;
                    Some(cells.join(","))
                } else {
                    line.split_once(':').map(|(key, _)| format!("{key}: {value}"))
                };
                if let Some(changed) = changed {
                    *line = changed;
                }
            }
        }
        Mutation::Insert { at, bytes } => {
            let mut out = text.as_bytes().to_vec();
            let at = pick(*at, out.len() + 1);
            out.splice(at..at, bytes.iter().copied());
            return out;
        }
        Mutation::Truncate { at } => {
            let bytes = text.as_bytes();
            return bytes[..pick(*at, bytes.len())].to_vec();
        }
        Mutation::DuplicateLine(i) => {
            if !lines.is_empty() {
                let i = pick(*i, lines.len());
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
        }
        Mutation::DeleteLine(i) => {
            if !lines.is_empty() {
                let i = pick(*i, lines.len());
                lines.remove(i);
            }
        }
        Mutation::Indent { line, by } => {
            if !lines.is_empty() {
                let i = pick(*line, lines.len());
                let l = &mut lines[i];
                if *by > 0 {
                    l.insert_str(0, &" ".repeat(*by as usize));
                } else {
                    let strip = l.chars().take_while(|c| *c == ' ').count().min((-by) as usize);
                    l.drain(..strip);
                }
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// A line number or line:column in a message: "line 7", "x.yaml:7:3".
fn names_a_line(message: &str) -> bool {
    let bytes = message.as_bytes();
    message.contains("line ")
        || bytes
            .windows(3)
            .any(|w| w[0] == b':' && w[1].is_ascii_digit() && (w[2] == b':' || w[2].is_ascii_digit()))
}

/// Problems that concern a whole table rather than one of its lines.
fn whole_table(message: &str) -> bool {
    [
        "missing column",
        "extra column",
        "no rows",
        "is named twice",
        "no data rows",
        "the file is empty",
    ]
    .iter()
    .any(|m| message.contains(m))
}

#[test]
fn bank_exports_any_mutation_is_refused_at_its_line_or_read_into_finite_features() {
    let base = hand_built(false);
    let config = bankml::config::EngineConfig::default();
    let date = bankml::data::date::Date::parse("2025-03-31").expect("date");
    let scratch = scratch();
    let refused = std::cell::Cell::new(0usize);
    let mut runner = runner();
    let outcome = runner.run(&(0..base.len(), mutation()), |(file, mutation)| {
        let dir = scratch.path().join("raw");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        for (i, (name, text)) in base.iter().enumerate() {
            let bytes = if i == file {
                apply(text, &mutation, ',')
            } else {
                text.clone().into_bytes()
            };
            std::fs::write(dir.join(name), bytes).expect("write");
        }
        match bankml::data::snapshot::load(&dir, date, &config) {
            Err(bankml::data::snapshot::IngestError::Invalid { problems, .. }) => {
                refused.set(refused.get() + 1);
                let errors: Vec<_> = problems
                    .iter()
                    .filter(|p| p.severity == bankml::data::problem::Severity::Error)
                    .collect();
                prop_assert!(!errors.is_empty());
                for problem in errors {
                    let shown = problem.to_string();
                    let file_named = base.iter().any(|(name, _)| problem.location.contains(name));
                    prop_assert!(file_named, "names no file: {shown}");
                    prop_assert!(names_a_line(&shown) || whole_table(&shown), "names no line: {shown}");
                }
            }
            Err(other) => prop_assert!(false, "not a list of located problems: {other}"),
            Ok(snapshot) => {
                let built = bankml::data::features::build(&snapshot, None, 90)
                    .map_err(|e| TestCaseError::fail(format!("features of an accepted snapshot: {e}")))?;
                for frame in [&built.clients, &built.managers, &built.agencies] {
                    for column in frame.columns().iter().filter(|c| c.dtype().is_primitive_numeric()) {
                        if let Ok(values) = column
                            .as_materialized_series()
                            .cast(&polars::prelude::DataType::Float64)
                        {
                            let values = values.f64().expect("f64");
                            let poisoned = values.iter().flatten().find(|v| !v.is_finite());
                            prop_assert!(poisoned.is_none(), "feature {} holds {poisoned:?}", column.name());
                        }
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    // The corpus must bite: most mutations are refused, some pass (a harmless value).
    assert!(refused.get() > 0, "no mutation was refused");
}

#[test]
fn evaluate_files_name_the_line_of_the_one_bad_cell() {
    let scratch = scratch();
    let path = scratch.path().join("predictions.csv");
    let mut runner = runner();
    let rows = 1usize..60;
    let bad = prop_oneof![
        Just("abc".to_string()),
        Just(String::new()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("NaN".to_string()),
        Just("1e309".to_string()),
        Just("2".to_string()),
        Just("0.5".to_string()),
        Just("\"x,y\"".to_string()),
    ];
    let outcome = runner.run(
        &(rows, any::<prop::sample::Index>(), any::<bool>(), bad, any::<u64>()),
        |(n, at, in_label, bad, seed)| {
            let bad_row = at.index(n);
            let mut text = String::from("client_id,label,score\n");
            for i in 0..n {
                let label = if (seed >> (i % 64)) & 1 == 1 { "1" } else { "0" };
                let score = format!("{:.3}", (i as f64 * 0.37 + seed as f64 * 1e-19).fract());
                let (label, score) = match (i == bad_row, in_label) {
                    (true, true) => (bad.as_str(), score.as_str()),
                    (true, false) => (label, bad.as_str()),
                    _ => (label, score.as_str()),
                };
                text.push_str(&format!("{i},{label},{score}\n"));
            }
            std::fs::write(&path, &text).expect("write");
            let read = bankml::data::table::read_table(&path).and_then(|frame| {
                let labels = bankml::data::table::label_column(&frame, "label", &path)?;
                let scores = bankml::data::table::number_column(&frame, "score", &path)?;
                Ok((labels, scores))
            });
            // A fine score ("2", "0.5" as a score) is a number; as a label only 0/1 is.
            let harmless = !in_label && (bad == "2" || bad == "0.5");
            match read {
                Ok(_) => prop_assert!(harmless, "accepted {bad:?} at line {}", bad_row + 2),
                Err(e) => {
                    let message = e.to_string();
                    prop_assert!(!harmless, "refused a good file: {message}");
                    let line = format!("line {}", bad_row + 2);
                    prop_assert!(
                        message.contains(&format!("{line},")) || message.contains(&format!("{line}:")),
                        "{bad:?} planted at {line}, told: {message}"
                    );
                }
            }
            Ok(())
        },
    );
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Every YAML file bankml reads, each mutated and read by its own loader: a refusal lists
/// problems that each name the file and a line.
#[test]
fn yaml_files_any_mutation_is_refused_with_file_and_line() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = scratch();
    let sources = [
        ("config/bankml.yaml", Kind::Config),
        ("jobs/daily-benchmark.yaml", Kind::Job),
        ("jobs/daily-scoring.yaml", Kind::Job),
        ("jobs/monthly-retrain.yaml", Kind::Job),
        ("jobs/weekly-validation.yaml", Kind::Job),
        ("alerts/rules.yaml", Kind::Rules),
        ("data/scenarios/covariate.yaml", Kind::Scenario),
    ];
    let texts: Vec<(String, Kind)> = sources
        .iter()
        .map(|(p, k)| (std::fs::read_to_string(repo.join(p)).expect("shipped YAML"), *k))
        .collect();
    let receivers: Vec<String> = bankml::config::EngineConfig::load(&repo.join("config/bankml.yaml"), true)
        .expect("shipped config")
        .alerting
        .receivers
        .keys()
        .cloned()
        .collect();
    let refused = std::cell::Cell::new(0usize);
    let mut runner = runner();
    let outcome = runner.run(&(0..texts.len(), mutation()), |(which, mutation)| {
        let (text, kind) = &texts[which];
        let name = Path::new(sources[which].0).file_name().expect("name");
        let folder = scratch.path().join(match kind {
            Kind::Config => "config",
            _ => "files",
        });
        std::fs::create_dir_all(&folder).expect("scratch");
        let path = folder.join(name);
        std::fs::write(&path, apply(text, &mutation, ':')).expect("write");
        let problems: Vec<String> = match kind {
            Kind::Config => match bankml::config::EngineConfig::load(&path, true) {
                Ok(_) => Vec::new(),
                Err(e @ bankml::config::ConfigError::Invalid { .. }) => {
                    e.to_string().lines().map(String::from).collect()
                }
                Err(other) => vec![other.to_string()],
            },
            Kind::Job => bankml::config::jobs::load_job(&path).err().unwrap_or_default(),
            Kind::Rules => bankml::alerts::rules::load_rules(&path, &receivers)
                .err()
                .unwrap_or_default(),
            Kind::Scenario => bankml::data::synth::scenario::load(&path, 24).err().unwrap_or_default(),
        };
        if !problems.is_empty() {
            refused.set(refused.get() + 1);
        }
        for problem in &problems {
            prop_assert!(
                problem.contains(&name.to_string_lossy().to_string()),
                "names no file: {problem}"
            );
            // A key that is not there has no line: the file is its place.
            let whole_file = problem.contains("missing key");
            prop_assert!(names_a_line(problem) || whole_file, "names no line: {problem}");
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    assert!(refused.get() > 0, "no mutation was refused");
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Config,
    Job,
    Rules,
    Scenario,
}

#[test]
fn apply_changes_what_it_says() {
    let text = "a,b\n1,2\n";
    assert_eq!(
        apply(
            text,
            &Mutation::Cell {
                line: 1,
                cell: 1,
                value: "x".into()
            },
            ','
        ),
        b"a,b\n1,x\n"
    );
    assert_eq!(
        apply(
            "k: 1\n",
            &Mutation::Cell {
                line: 0,
                cell: 0,
                value: "-3".into()
            },
            ':'
        ),
        b"k: -3\n"
    );
    assert_eq!(apply(text, &Mutation::Truncate { at: 5 }, ','), b"a,b\n1");
    assert_eq!(apply(text, &Mutation::DeleteLine(0), ','), b"1,2\n");
    assert_eq!(
        apply("k:\n  v: 1\n", &Mutation::Indent { line: 1, by: -2 }, ':'),
        b"k:\nv: 1\n"
    );
    assert!(names_a_line("x.yaml:7:3: bad") && names_a_line("f.csv, line 4, column a"));
    assert!(!names_a_line("f.csv: cannot read"));
}

/// Path segments for `{parameters}`: real ids, and what a path must never be tricked by.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("churn".to_string()),
        Just("1".to_string()),
        Just("100002".to_string()),
        Just("daily-benchmark".to_string()),
        Just("G001".to_string()),
        Just("P01".to_string()),
        Just("report.json".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2e%2e%2fconfig".to_string()),
        Just("%00".to_string()),
        Just("%FF%FE".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1e308".to_string()),
        Just("NaN".to_string()),
        Just("%20".to_string()),
        Just("a".repeat(3000)),
        "[a-zA-Z0-9._~-]{1,16}",
    ]
}

/// A JSON value of the kinds a body can hold, hostile numbers first.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(0.5)),
        Just(json!(100002)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        any::<i64>().prop_map(|v| json!(v)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |v| v.is_finite())
            .prop_map(|v| json!(v)),
        "[ -~]{0,20}".prop_map(Value::String),
        Just(json!("G001")),
        Just(json!("1h")),
        Just(json!("∞")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(body_key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys a body might carry: the API's own fields, the seed's aliases, features, nonsense.
fn body_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("client_id".to_string()),
        Just("cli".to_string()),
        Just("manager_id".to_string()),
        Just("ges".to_string()),
        Just("agency_id".to_string()),
        Just("age".to_string()),
        Just("features".to_string()),
        Just("n".to_string()),
        Just("rule".to_string()),
        Just("for".to_string()),
        Just("comment".to_string()),
        Just("matchers".to_string()),
        Just("n_products".to_string()),
        Just("total_balance".to_string()),
        Just("tenure_months".to_string()),
        "[a-z_]{1,12}",
    ]
}

/// One request: method, path with query, whether it carries the token, body and its type.
fn request(templates: Vec<String>) -> impl Strategy<Value = (String, String, bool, Option<(Vec<u8>, String)>)> {
    let method = prop_oneof![
        3 => Just("GET".to_string()),
        3 => Just("POST".to_string()),
        1 => Just("DELETE".to_string()),
        1 => Just("PUT".to_string()),
        1 => Just("PATCH".to_string()),
        1 => Just("OPTIONS".to_string()),
    ];
    let query_key = prop_oneof![
        Just("n"),
        Just("page"),
        Just("page_size"),
        Just("last"),
        Just("job"),
        Just("id"),
        Just("from"),
        Just("model"),
        Just("status"),
        Just("risk"),
        Just("cli"),
        Just("q"),
    ];
    let query = prop::collection::vec((query_key, segment()), 0..4);
    let body = prop_oneof![
        2 => Just(None),
        5 => json_value().prop_map(|v| Some((v.to_string().into_bytes(), "application/json".to_string()))),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Some((b, "application/json".to_string()))),
        1 => json_value().prop_map(|v| Some((v.to_string().into_bytes(), "text/plain".to_string()))),
    ];
    (
        prop::sample::select(templates),
        prop::collection::vec(segment(), 3),
        query,
        method,
        any::<bool>(),
        body,
    )
        .prop_map(|(template, segments, query, method, token, body)| {
            let mut path = String::new();
            let mut next = segments.iter();
            for part in template.split('/').filter(|p| !p.is_empty()) {
                path.push('/');
                if part.starts_with('{') {
                    path.push_str(next.next().map_or("x", String::as_str));
                } else {
                    path.push_str(part);
                }
            }
            if template.ends_with('/') || path.is_empty() {
                path.push('/');
            }
            if !query.is_empty() {
                let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                path = format!("{path}?{}", pairs.join("&"));
            }
            (method, path, token, body)
        })
}

/// The daemon on its demo bank, then requests of every shape: none answers 500 or hangs up,
/// every API refusal is `{"error": {"code", "message"}}` with a catalogued code, and the
/// daemon is still healthy afterwards.
#[test]
fn http_requests_of_any_shape_get_an_answer_never_a_crash() {
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    std::fs::write(
        dir.join("config/bankml.yaml"),
        format!(
            "models:\n  boosting:\n    rounds: 40\n    threads: 1\n\
             daemon:\n  listen: {address}\n  api_token_env: BANKML_CORPUS_TOKEN\n  shutdown_grace: 2s\n  \
             bootstrap_clients: 800\n  bootstrap_seed: 5\n"
        ),
    )
    .unwrap();
    let token = "corpus-token";
    let mut daemon = start_daemon(dir, "daemon.log", &[("BANKML_CORPUS_TOKEN", token.to_string())]);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for(300, "/readyz", || {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("the daemon exited ({status}):\n{}", log());
        }
        ready(&address).then_some(())
    });
    let (_, document) = http(&address, "GET", "/api/v1/openapi.json", None, None);
    let document: serde_json::Value = serde_json::from_str(&document).expect("the OpenAPI document");
    let mut templates: Vec<String> = document["paths"].as_object().expect("paths").keys().cloned().collect();
    templates.extend(
        [
            "/",
            "/docs",
            "/console/clients",
            "/console/managers",
            "/console/agencies",
            "/console/what-if",
            "/reports/",
            "/reports/{job}/{run}/{file}",
            "/nowhere/{x}",
        ]
        .map(String::from),
    );
    let codes: Vec<&str> = bankml::server::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answered = std::cell::Cell::new(0usize);
    let mut runner = runner();
    let outcome = runner.run(&request(templates), |(method, path, with_token, body)| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut call = client.request(method.clone(), format!("http://{address}{path}"));
        if with_token {
            call = call.bearer_auth(token);
        }
        if let Some((bytes, kind)) = &body {
            call = call
                .header(reqwest::header::CONTENT_TYPE, kind.as_str())
                .body(bytes.clone());
        }
        let response = call
            .send()
            .map_err(|e| TestCaseError::fail(format!("{method} {path}: no answer: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        answered.set(answered.get() + 1);
        let shown = || {
            format!(
                "{method} {path} → {status}: {}",
                text.chars().take(300).collect::<String>()
            )
        };
        prop_assert!(status < 500 || status == 503, "{}", shown());
        if path.starts_with("/api/") && status >= 400 {
            let answer: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", shown())))?;
            let code = answer["error"]["code"].as_str().unwrap_or_default();
            prop_assert!(codes.contains(&code), "uncatalogued code: {}", shown());
            prop_assert!(
                answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
                "no message: {}",
                shown()
            );
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}\ndaemon log:\n{}", log());
    }
    assert!(answered.get() > 0);
    assert!(matches!(daemon.try_wait(), Ok(None)), "the daemon died:\n{}", log());
    assert_eq!(http(&address, "GET", "/healthz", None, None).0, 200);
}

/// Binary exports (Excel, Parquet) with bytes flipped, zeroed or cut: refused naming the file,
/// never a panic inside calamine or polars' Parquet decoder.
#[test]
fn binary_exports_damaged_anywhere_are_refused_naming_the_file() {
    use bankml::data::format::FileFormat;
    let config = bankml::config::EngineConfig::default();
    let scratch = scratch();
    let mut bases = Vec::new();
    for format in [FileFormat::Xlsx, FileFormat::Parquet] {
        let out = scratch.path().join(format.extension());
        let spec = bankml::data::synth::BankSpec {
            clients: 60,
            months: 1,
            managers: 4,
            agencies: 2,
            ..Default::default()
        };
        bankml::data::synth::write_bank(spec, format, &out, |_| {}).expect("a small bank");
        let (date, dir) = bankml::data::snapshot::find_snapshot(&out, None).expect("its snapshot");
        let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("snapshot folder")
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        bases.push((date, files));
    }
    let damage = prop_oneof![
        (any::<prop::sample::Index>(), 1usize..8, any::<u8>()).prop_map(|(at, n, byte)| (0u8, at, n, byte)),
        (any::<prop::sample::Index>(), 1usize..200).prop_map(|(at, n)| (1u8, at, n, 0)),
        any::<prop::sample::Index>().prop_map(|at| (2u8, at, 0, 0)),
    ];
    let mut runner = runner();
    let outcome = runner.run(
        &(0..bases.len(), any::<prop::sample::Index>(), damage),
        |(which, file, (how, at, n, byte))| {
            let (date, files) = &bases[which];
            let dir = scratch.path().join("damaged");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch");
            let target = file.index(files.len());
            for (i, (name, bytes)) in files.iter().enumerate() {
                let mut bytes = bytes.clone();
                if i == target {
                    let at = at.index(bytes.len());
                    let end = (at + n).min(bytes.len());
                    match how {
                        0 => bytes[at..end].iter_mut().for_each(|b| *b ^= byte | 1),
                        1 => bytes[at..end].iter_mut().for_each(|b| *b = 0),
                        _ => bytes.truncate(at),
                    }
                }
                std::fs::write(dir.join(name), bytes).expect("write");
            }
            let damaged = &files[target].0;
            match bankml::data::snapshot::load(&dir, *date, &config) {
                Err(bankml::data::snapshot::IngestError::Invalid { problems, .. }) => {
                    // Damage that still decodes changes values: another table's check may
                    // catch it first, and then names the damaged file in its message.
                    let named = problems.iter().any(|p| {
                        p.severity == bankml::data::problem::Severity::Error && p.to_string().contains(damaged.as_str())
                    });
                    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    prop_assert!(named, "{damaged} damaged, told: {shown:?}");
                }
                Err(other) => prop_assert!(false, "not a list of located problems: {other}"),
                // Damage that lands in padding or an unused part of the file reads as before.
                Ok(_) => {}
            }
            Ok(())
        },
    );
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
