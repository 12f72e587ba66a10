//! The business job on a generated bank that ran campaigns with planted effects: every arm
//! counted as planted, the intervals covering what the campaigns truly did, the decisions the
//! planted effects call for; and a contacts table with wrong rows refused row by row.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

/// `bankml generate` of a bank that ran campaigns, as Parquet.
fn generate_with_campaigns(dir: &Path, clients: &str, months: &str, challenger: &str) {
    ok(
        dir,
        &[
            "generate",
            "--clients",
            clients,
            "--months",
            months,
            "--format",
            "parquet",
            "--campaigns",
            challenger,
        ],
    );
}

/// A project with the shipped business job file (without its retry, so a failed run fails
/// the test at once instead of after the ten-minute backoff) and an empty config.
fn project(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/monthly-business.yaml")).unwrap();
    let retried = "retries: {count: 1, backoff: 10m}";
    assert!(
        shipped.contains(retried),
        "the shipped job's retries changed: update this test"
    );
    std::fs::write(
        dir.join("jobs/monthly-business.yaml"),
        shipped.replace(retried, "retries: {count: 0}"),
    )
    .unwrap();
    let config = dir.join("config/bankml.yaml");
    std::fs::write(&config, "{}\n").unwrap();
    config.to_str().unwrap().to_string()
}

fn rate(arm: &Value, outcome: &str) -> Option<(f64, f64, f64)> {
    let r = arm.get(outcome)?;
    Some((
        r["rate"].as_f64()?,
        r["interval"]["low"].as_f64()?,
        r["interval"]["high"].as_f64()?,
    ))
}

#[test]
fn campaign_figures_cover_what_the_generator_planted() {
    let scratch = scratch();
    let dir = scratch.path();
    let config = project(dir);
    generate_with_campaigns(dir, "40000", "7", "better");
    let printed = ok(dir, &["--config", &config, "run", "monthly-business"]);
    let report = printed_report(dir, &printed);
    let summary = &report["outcome"]["summary"];
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/raw/scenario.json")).unwrap()).unwrap();
    let planted = |id: &str| -> &Value {
        truth["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["campaign"] == id)
            .unwrap_or_else(|| panic!("{id} was not planted"))
    };
    let campaigns = summary["campaigns"].as_array().unwrap();
    // Six snapshots with a campaign after them each: 6 retention and 6 offer campaigns.
    assert_eq!(campaigns.len(), 12, "{summary}");

    let (mut covered, mut compared, mut ctr_covered, mut ctr_checked) = (0, 0, 0, 0);
    let mut matured = [0, 0];
    for campaign in campaigns {
        let id = campaign["campaign"].as_str().unwrap();
        let truth = planted(id);
        if campaign["matured"] == false {
            assert!(
                campaign["arms"].as_array().unwrap().is_empty(),
                "{id} shows figures before its outcome"
            );
            continue;
        }
        let retention = id.starts_with("retention");
        matured[usize::from(retention)] += 1;
        for arm in campaign["arms"].as_array().unwrap() {
            let name = arm["arm"].as_str().unwrap();
            let planted_arm = &truth["arms"][name];
            assert_eq!(arm["clients"], planted_arm["clients"], "{id} {name}: clients");
            assert_eq!(arm["contacted"], planted_arm["contacted"], "{id} {name}: contacted");
            assert_eq!(arm["too_few"], false, "{id} {name}");
            if let (Some((_, low, high)), Some(expected)) = (
                rate(arm, "click_through"),
                planted_arm["expected_click_through"].as_f64(),
            ) {
                ctr_checked += 1;
                ctr_covered += usize::from(low <= expected && expected <= high);
            }
        }
        for comparison in campaign["comparisons"].as_array().unwrap() {
            let (a, b) = (comparison["a"].as_str().unwrap(), comparison["b"].as_str().unwrap());
            let effect = |arm: &str| -> f64 {
                let t = &truth["arms"][arm];
                if comparison["outcome"] == "click_through" {
                    t["expected_click_through"].as_f64().unwrap()
                } else {
                    t["expected_effect"].as_f64().unwrap()
                }
            };
            let true_difference = effect(a) - effect(b);
            let figures = &comparison["figures"];
            let (low, high) = (
                figures["difference_interval"]["low"].as_f64().unwrap(),
                figures["difference_interval"]["high"].as_f64().unwrap(),
            );
            compared += 1;
            covered += usize::from(low <= true_difference && true_difference <= high);
            // Large planted effects are found: an offer converts far more than nothing.
            if !retention && a == "champion" && b == "control" && comparison["outcome"] == "conversion" {
                assert_eq!(comparison["significant"], true, "{id}: {comparison}");
            }
        }
        if retention {
            let money = &campaign["retention"];
            let roi = money["roi"].as_f64().unwrap();
            assert!(
                money["roi_interval"]["low"].as_f64().unwrap() <= roi
                    && roi <= money["roi_interval"]["high"].as_f64().unwrap(),
                "{money}"
            );
            let fpr = money["false_positive_rate"].as_f64().unwrap();
            assert!(fpr > 0.0 && fpr < 0.1, "a 5 % list takes few of those who stay: {fpr}");
        }
    }
    // Lists of 2025-06-30 … 2025-11-30, outcomes as of 2025-12-31: every offer's 30 days have
    // passed, retention's 90 days for the lists up to 2025-09-30.
    assert_eq!(matured, [6, 4], "offer and retention campaigns with a complete outcome");
    // 95 % intervals: a miss is expected one time in twenty; more than one in five is wrong.
    assert!(
        compared >= 30 && covered * 5 >= compared * 4,
        "{covered} of {compared} intervals cover the planted difference"
    );
    assert!(
        ctr_checked >= 15 && ctr_covered * 5 >= ctr_checked * 4,
        "{ctr_covered} of {ctr_checked} click-through intervals cover the planted rate"
    );
    let observations = report["outcome"]["observations"].as_array().unwrap();
    let observed = |name: &str| observations.iter().filter(|o| o["name"] == name).count();
    assert_eq!(
        observed("campaign_conversion_rate"),
        4,
        "one per offer arm of the newest matured campaign"
    );
    assert_eq!(observed("campaign_retained_share"), 3);
    assert_eq!(observed("retention_roi"), 1);
}

#[test]
fn a_contacts_table_with_wrong_rows_is_refused_row_by_row() {
    let scratch = scratch();
    let dir = scratch.path();
    let config = project(dir);
    generate_with_campaigns(dir, "2000", "3", "equal");
    // The last month's contacts as a bank's tools might have written them, wrong.
    let folder = dir.join("data/raw/2025-12-31");
    std::fs::remove_file(folder.join("contacts.parquet")).unwrap();
    let clients = read_parquet(&folder.join("clients.parquet"));
    let ids = clients.column("cli").unwrap().i64().unwrap();
    let (a, b, c, d) = (
        ids.get(0).unwrap(),
        ids.get(1).unwrap(),
        ids.get(2).unwrap(),
        ids.get(3).unwrap(),
    );
    let rows = [
        "campaign,cli,arm,contacted_on,offer,clicked".to_string(),
        format!("retention-2025-12-31,{a},champion,2025-12-02,,"), // line 2: its own month
        format!("retention-2025-11-30,{a},champion,2025-12-02,,"), // line 3: fine
        "offer-2025-11-30,99999999,champion,2025-12-03,P01,1".to_string(), // line 4: no such client
        format!("retention-2025-11-30,{b},treatment,2025-12-02,,"), // line 5: no such arm
        format!("offer-2025-11-30,{b},champion,2025-11-30,P01,0"), // line 6: before its list
        format!("retention-2025-11-30,{a},control,,,"),            // line 7: twice
        format!("offer-2025-11-30,{a},champion,2025-12-03,P01,3"), // line 8: clicked 3
        format!("retention-2025-11-30,{c},control,2025-12-02,,"),  // line 9: a contacted control
        format!("retention-2025-11-30,{d},champion,2025-12-02,P01,"), // line 10: an offer in retention
        format!("offer-2025-11-30,{d},challenger,02/12/2025,P01,1"), // line 11: not a date
    ];
    std::fs::write(folder.join("contacts.csv"), rows.join("\n") + "\n").unwrap();
    // Refused input: exit code 2, as from every command that reads exports.
    let printed = bad_input(dir, &["--config", &config, "run", "monthly-business"]);
    for expected in [
        "contacts.csv, line 2, column campaign: campaign \"retention-2025-12-31\" names snapshot 2025-12-31, which is not an earlier snapshot",
        "contacts.csv, line 4, column cli: cli 99999999 is not in clients",
        "contacts.csv, line 5, column arm: arm \"treatment\" is not one a retention campaign has",
        "contacts.csv, line 6, column contacted_on: contacted_on 2025-11-30 is not after offer-2025-11-30's snapshot",
        "contacts.csv, line 7: duplicate campaign=retention-2025-11-30",
        "contacts.csv, line 8, column clicked: clicked is 3",
        "contacts.csv, line 9, column contacted_on: a control client is held out, not contacted",
        "contacts.csv, line 10, column offer: retention-2025-11-30 is a retention campaign: offer must be empty",
        "contacts.csv, line 11, column contacted_on: \"02/12/2025\" is not a date",
    ] {
        assert!(printed.contains(expected), "missing «{expected}» in:\n{printed}");
    }
    assert!(
        !printed.contains("contacts.csv, line 3"),
        "a good row is not blamed:\n{printed}"
    );
    assert_eq!(
        printed.matches("contacts.csv, line 11").count(),
        1,
        "a cell that is not a date is said once, not again as missing:\n{printed}"
    );
    assert!(printed.contains("bad input"), "{printed}");
    // A month earlier, the same bank's own contacts: the table is optional and a fix is read.
    std::fs::remove_file(folder.join("contacts.csv")).unwrap();
    let printed = ok(dir, &["--config", &config, "run", "monthly-business"]);
    let report = printed_report(dir, &printed);
    let campaigns = report["outcome"]["summary"]["campaigns"].as_array().unwrap();
    assert_eq!(
        campaigns.len(),
        2,
        "the 2025-10-31 campaigns, from the 2025-11-30 folder"
    );
    // 2,000 clients: a retention list of ~85 has a control of ~9: shown, never compared.
    let retention = campaigns
        .iter()
        .find(|c| c["campaign"] == "retention-2025-10-31")
        .unwrap();
    assert_eq!(retention["matured"], false, "90 days have not passed");
    let offer = campaigns.iter().find(|c| c["campaign"] == "offer-2025-10-31").unwrap();
    let control = offer["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["arm"] == "control")
        .unwrap();
    assert_eq!(control["too_few"], true, "{control}");
    for comparison in offer["comparisons"].as_array().unwrap() {
        if comparison["a"] == "control" || comparison["b"] == "control" {
            assert!(comparison["figures"].is_null(), "{comparison}");
            let why = comparison["not_compared"].as_str().unwrap();
            assert!(
                why.starts_with("too few contacts:") && why.contains("control has"),
                "{why}"
            );
        }
    }
    assert!(
        !report["outcome"]["observations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["labels"]["arm"] == "control" && o["name"] != "campaign_clients"),
        "no figure of a too-small arm is published, so no alert can fire on it"
    );
}

/// The loop a bank runs: scoring writes the lists with their arms, the bank contacts them and
/// exports what it did, the business job measures it — the lists' arms are the ones the
/// contacts table is checked against.
#[test]
fn scoring_writes_the_lists_whose_contacts_the_business_job_measures() {
    use polars::prelude::*;
    let scratch = scratch();
    let dir = scratch.path();
    let config = project(dir);
    std::fs::write(
        dir.join("config/bankml.yaml"),
        "models:\n  boosting:\n    rounds: 20\n    threads: 1\n",
    )
    .unwrap();
    ok(
        dir,
        &["generate", "--clients", "3000", "--months", "4", "--format", "parquet"],
    );
    ok(dir, &["--config", &config, "train", "--model", "churn"]);
    ok(dir, &["--config", &config, "train", "--model", "recommender"]);
    ok(dir, &["--config", &config, "score", "--snapshot", "2025-11-30"]);
    let scores = dir.join("data/scores/2025-11-30");
    let clients = read_parquet(&scores.join("clients.parquet"));
    let retention = read_parquet(&scores.join("campaigns/retention.parquet"));
    let offer = read_parquet(&scores.join("campaigns/offer.parquet"));

    // Retention: the 5 % most likely to leave, riskiest first, split champion / control.
    assert_eq!(retention.height(), (clients.height() as f64 * 0.05).round() as usize);
    let listed_rates = column_f64(&retention, "churn_rate");
    assert!(listed_rates.windows(2).all(|w| w[0] >= w[1]), "riskiest first");
    let lowest_listed = listed_rates.last().copied().unwrap();
    let listed: std::collections::HashSet<i64> = column_i64(&retention, "cli").into_iter().collect();
    for (cli, rate) in column_i64(&clients, "cli")
        .into_iter()
        .zip(column_f64(&clients, "churn_rate"))
    {
        if !listed.contains(&cli) {
            assert!(
                rate <= lowest_listed,
                "client {cli} ({rate}) is riskier than the list's last"
            );
        }
    }
    assert_eq!(column_str(&retention, "campaign")[0], "retention-2025-11-30");
    let arms = |frame: &DataFrame| -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for arm in column_str(frame, "arm") {
            *counts.entry(arm.to_string()).or_insert(0) += 1;
        }
        counts
    };
    let retention_arms = arms(&retention);
    assert_eq!(
        retention_arms.keys().cloned().collect::<Vec<_>>(),
        ["champion", "control"],
        "no challenger is being tried (campaigns.challenger_share 0)"
    );
    // Offers: the 10 % the recommender is surest of — never a client holding nothing, whose
    // popularity-count score does not compare; the baseline arm offered the popular pick.
    let holding: std::collections::HashSet<i64> =
        column_i64(&read_parquet(&dir.join("data/raw/2025-11-30/holdings.parquet")), "cli")
            .into_iter()
            .collect();
    let offered: Vec<i64> = column_i64(&offer, "cli").into_iter().collect();
    assert!(
        offered.iter().all(|c| holding.contains(c)),
        "a client with no product on the offer list"
    );
    let offer_arms = arms(&offer);
    assert!(
        offer_arms.contains_key("baseline") && offer_arms.contains_key("control"),
        "{offer_arms:?}"
    );
    let offer_scores = column_f64(&offer, "score");
    assert!(offer_scores.windows(2).all(|w| w[0] >= w[1]), "surest first");

    // Per product, the clients most likely to take it — none already holding it.
    let targets = read_parquet(&scores.join("campaigns/targets.parquet"));
    let holdings = read_parquet(&dir.join("data/raw/2025-11-30/holdings.parquet"));
    let open: std::collections::HashSet<(i64, String)> = column_i64(&holdings, "cli")
        .into_iter()
        .zip(column_str(&holdings, "product_id"))
        .zip(
            holdings
                .column("closed_on")
                .unwrap()
                .is_null()
                .iter()
                .map(|v| v == Some(true)),
        )
        .filter(|(_, still_open)| *still_open)
        .map(|((cli, product), _)| (cli, product.to_string()))
        .collect();
    let (products, target_scores) = (column_str(&targets, "product_id"), column_f64(&targets, "score"));
    let cold: Vec<bool> = targets
        .column("holds_nothing")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|v| v == Some(true))
        .collect();
    let own_rank: Vec<i64> = column_i64(&targets, "rank_for_client");
    let target_clients: Vec<i64> = column_i64(&targets, "cli").into_iter().collect();
    let mut per_product: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for i in 0..targets.height() {
        *per_product.entry(products[i]).or_default() += 1;
        assert!(
            !open.contains(&(target_clients[i], products[i].to_string())),
            "{} holds {}",
            target_clients[i],
            products[i]
        );
        if i > 0 && products[i] == products[i - 1] {
            let key = |j: usize| (own_rank[j], cold[j]);
            assert!(
                key(i - 1) < key(i) || (key(i - 1) == key(i) && target_scores[i - 1] >= target_scores[i]),
                "highest in the client's own list first, known clients before those holding nothing, then by score, within {}",
                products[i]
            );
        }
    }
    assert!(
        per_product.len() > 20 && per_product.values().all(|n| *n <= 1000),
        "{per_product:?}"
    );

    // The bank calls and offers as listed in December and exports what it did.
    let mut rows = vec!["campaign,cli,arm,contacted_on,offer,clicked".to_string()];
    for (frame, offered) in [(&retention, false), (&offer, true)] {
        let campaign = column_str(frame, "campaign");
        let arm = column_str(frame, "arm");
        let offers: Vec<&str> = if offered {
            column_str(frame, "offer")
        } else {
            vec![""; frame.height()]
        };
        for (i, id) in column_i64(frame, "cli").into_iter().enumerate() {
            let control = arm[i] == "control";
            let (on, clicked) = match (control, offered) {
                (true, _) => ("", ""),
                (false, true) => ("2025-12-03", if i % 4 == 0 { "1" } else { "0" }),
                (false, false) => ("2025-12-03", ""),
            };
            rows.push(format!("{},{id},{},{on},{},{clicked}", campaign[i], arm[i], offers[i]));
        }
    }
    std::fs::write(dir.join("data/raw/2025-12-31/contacts.csv"), rows.join("\n") + "\n").unwrap();
    let printed = ok(dir, &["--config", &config, "run", "monthly-business"]);
    let report = printed_report(dir, &printed);
    let campaigns = report["outcome"]["summary"]["campaigns"].as_array().unwrap();
    let measured = campaigns.iter().find(|c| c["campaign"] == "offer-2025-11-30").unwrap();
    assert_eq!(measured["matured"], true, "30 days after 2025-11-30 is 2025-12-30");
    for arm in measured["arms"].as_array().unwrap() {
        let name = arm["arm"].as_str().unwrap();
        assert_eq!(arm["clients"].as_u64().unwrap() as usize, offer_arms[name], "{name}");
    }
    let waiting = campaigns
        .iter()
        .find(|c| c["campaign"] == "retention-2025-11-30")
        .unwrap();
    assert_eq!(waiting["matured"], false, "90 days have not passed");
}

/// While a churn or recommender challenger is tried on live clients
/// (`campaigns.challenger_share`), its share of the retention or offer list follows the
/// challenger's own advice — reasons and actions, or the product offered — and every row says
/// which version's advice it follows.
#[test]
fn challengers_treat_their_lists_challenger_arm() {
    let scratch = scratch();
    let dir = scratch.path();
    let config = project(dir);
    let settings = |rounds: u32| {
        format!("models:\n  boosting:\n    rounds: {rounds}\n    threads: 1\ncampaigns:\n  challenger_share: 0.3\n")
    };
    ok(
        dir,
        &["generate", "--clients", "3000", "--months", "4", "--format", "parquet"],
    );
    std::fs::write(dir.join("config/bankml.yaml"), settings(20)).unwrap();
    ok(dir, &["--config", &config, "train", "--model", "churn"]);
    ok(dir, &["--config", &config, "train", "--model", "recommender"]);
    std::fs::write(dir.join("config/bankml.yaml"), settings(10)).unwrap();
    ok(dir, &["--config", &config, "train", "--model", "churn"]);
    // The recommender challenger: popularity alone, so its picks differ from EASE's.
    std::fs::write(
        dir.join("config/bankml.yaml"),
        "models:\n  boosting:\n    rounds: 4\n    threads: 1\n  recommender:\n    method: popularity\n\
         campaigns:\n  challenger_share: 0.3\n",
    )
    .unwrap();
    ok(dir, &["--config", &config, "train", "--model", "recommender"]);
    ok(dir, &["--config", &config, "score"]);
    let offers = read_parquet(&dir.join("data/scores/2025-12-31/campaigns/offer.parquet"));
    let offer_arms = column_str(&offers, "arm");
    let offered = column_str(&offers, "offer");
    let offer_versions: Vec<i64> = column_i64(&offers, "model_version");
    assert!(offer_arms.contains(&"challenger"), "{offer_arms:?}");
    for i in 0..offers.height() {
        assert_eq!(offer_versions[i], if offer_arms[i] == "challenger" { 2 } else { 1 });
    }
    // Popularity offers the same few products to everyone: its arm's offers are fewer kinds.
    let kinds = |arm: &str| -> std::collections::BTreeSet<&str> {
        (0..offers.height())
            .filter(|i| offer_arms[*i] == arm)
            .map(|i| offered[i])
            .collect()
    };
    assert!(
        kinds("challenger").len() < kinds("champion").len(),
        "{:?} vs {:?}",
        kinds("challenger"),
        kinds("champion")
    );
    let list = read_parquet(&dir.join("data/scores/2025-12-31/campaigns/retention.parquet"));
    let arms = column_str(&list, "arm");
    let versions: Vec<i64> = column_i64(&list, "model_version");
    let actions = column_str(&list, "actions");
    assert!(arms.contains(&"challenger") && arms.contains(&"champion"), "{arms:?}");
    for i in 0..list.height() {
        let expected = if arms[i] == "challenger" { 2 } else { 1 };
        assert_eq!(versions[i], expected, "row {i} ({})", arms[i]);
    }
    assert!(
        (0..list.height()).any(|i| arms[i] == "challenger" && !actions[i].is_empty()),
        "the challenger's own actions for the clients it finds at risk"
    );
    // Without a challenger the same share is no arm at all: the control stays as it was.
    std::fs::write(
        dir.join("config/bankml.yaml"),
        "models:\n  boosting:\n    rounds: 4\n    threads: 1\ncampaigns:\n  challenger_share: 0.0\n",
    )
    .unwrap();
    ok(dir, &["--config", &config, "score"]);
    let again = read_parquet(&dir.join("data/scores/2025-12-31/campaigns/retention.parquet"));
    let control = |frame: &polars::prelude::DataFrame| -> Vec<i64> {
        let arm = column_str(frame, "arm");
        column_i64(frame, "cli")
            .into_iter()
            .zip(arm)
            .filter(|(_, a)| *a == "control")
            .map(|(c, _)| c)
            .collect()
    };
    assert_eq!(control(&again), control(&list));
    assert!(!column_str(&again, "arm").contains(&"challenger"));
}
