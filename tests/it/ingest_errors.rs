//! Bad exports: every problem is named by file, row and column, the exit code is 2, and
//! nothing is written.

use crate::common::*;
use std::path::Path;

/// The hand-built bank with `edit` applied to one file's text.
fn bank_with(file: &str, edit: impl Fn(&str) -> String) -> Vec<(&'static str, String)> {
    let mut files = hand_built(false);
    let entry = files
        .iter_mut()
        .find(|(name, _)| *name == file)
        .expect("file of the hand-built bank");
    entry.1 = edit(&entry.1);
    files
}

fn rejected(files: &[(&str, String)]) -> String {
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", files);
    let printed = bad_input(dir.path(), &["features"]);
    assert_nothing_written(dir.path());
    printed
}

fn assert_nothing_written(dir: &Path) {
    let processed = dir.join("data/processed");
    let leftovers: Vec<_> = std::fs::read_dir(&processed)
        .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "nothing may be written on bad input, found {leftovers:?}"
    );
}

fn assert_says(printed: &str, expected: &str) {
    assert!(printed.contains(expected), "expected «{expected}» in:\n{printed}");
}

#[test]
fn missing_column_is_named_with_what_was_found() {
    let printed = rejected(&bank_with("clients.csv", |t| t.replacen("segment", "segmnt", 1)));
    assert_says(
        &printed,
        "data/raw/2025-03-31/clients.csv: missing column \"segment\"; found: cli, sex",
    );
}

#[test]
fn extra_column_warns_by_default_and_fails_when_configured() {
    let files = bank_with("clients.csv", |t| {
        t.lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{l},nickname\n")
                } else {
                    format!("{l},x\n")
                }
            })
            .collect()
    });
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", &files);
    let printed = ok(dir.path(), &["features"]);
    assert_says(
        &printed,
        "warning: data/raw/2025-03-31/clients.csv: extra column \"nickname\" is not used",
    );

    let strict = scratch();
    write_snapshot(strict.path(), "2025-03-31", &files);
    std::fs::write(strict.path().join("strict.yaml"), "ingest:\n  extra_columns: error\n").unwrap();
    let printed = bad_input(strict.path(), &["--config", "strict.yaml", "features"]);
    assert_says(
        &printed,
        "error: data/raw/2025-03-31/clients.csv: extra column \"nickname\" is not used",
    );
    assert_nothing_written(strict.path());
}

#[test]
fn wrong_type_names_line_and_column() {
    let printed = rejected(&bank_with("holdings.csv", |t| {
        t.replacen("4,P01,2018-06-01", "four,P01,2018-06-01", 1)
    }));
    assert_says(
        &printed,
        "data/raw/2025-03-31/holdings.csv, line 6, column cli: \"four\" is not a whole number",
    );
}

#[test]
fn unparsable_date_names_line_and_column() {
    let printed = rejected(&bank_with("clients.csv", |t| t.replacen("1985-03-31", "31/03/1985", 1)));
    assert_says(
        &printed,
        "clients.csv, line 2, column birth_date: \"31/03/1985\" is not a date (YYYY-MM-DD)",
    );
}

#[test]
fn duplicate_id_names_both_rows() {
    let printed = rejected(&bank_with("clients.csv", |t| {
        format!("{t}1,F,1985-03-31,Mass,AG01,G001,2020-03-31,Capital,40-70k,\n")
    }));
    assert_says(&printed, "clients.csv, line 6: duplicate cli=1 (first seen at line 2)");
}

#[test]
fn holdings_of_unknown_client_are_named() {
    let printed = rejected(&bank_with("holdings.csv", |t| format!("{t}99,P01,2024-01-01,,10\n")));
    assert_says(&printed, "holdings.csv, line 9, column cli: cli 99 is not in clients");
}

#[test]
fn unknown_product_manager_and_agency_are_named() {
    let printed = rejected(&bank_with("clients.csv", |t| t.replacen("AG01,G001", "AG07,G042", 1)));
    assert_says(&printed, "clients.csv, line 2, column ges: ges G042 is not in managers");
    assert_says(&printed, "clients.csv, line 2, column age: age AG07 is not in agencies");
    let printed = rejected(&bank_with("holdings.csv", |t| t.replacen("P05", "P77", 1)));
    assert_says(
        &printed,
        "holdings.csv, line 3, column product_id: product_id P77 is not in catalog",
    );
}

#[test]
fn negative_balance_and_impossible_scores_are_rejected() {
    let printed = rejected(&bank_with("holdings.csv", |t| t.replacen("1000.50", "-1000.50", 1)));
    assert_says(
        &printed,
        "holdings.csv, line 2, column balance: balance is -1000.5: a balance is between 0",
    );
    // Values no export holds: rejected where they stand, before a sum can overflow.
    let printed = rejected(&bank_with("holdings.csv", |t| t.replacen("1000.50", "1e308", 1)));
    assert_says(
        &printed,
        "holdings.csv, line 2, column balance: balance is 1e308: a balance is between 0 (loans are outstanding amounts) and 10^12",
    );
    // NaN and infinity are refused at their cell (by the CSV reader here; a Parquet or Excel
    // float can hold them, and the range check refuses them there).
    for nonsense in ["NaN", "inf", "-inf"] {
        let printed = rejected(&bank_with("holdings.csv", |t| t.replacen("1000.50", nonsense, 1)));
        assert_says(&printed, "holdings.csv, line 2, column balance: ");
    }
    let printed = rejected(&bank_with("managers.csv", |t| t.replacen("70.0", "170.0", 1)));
    assert_says(
        &printed,
        "managers.csv, line 2, column performance_score: performance_score is 170: a performance score is between 0 and 100",
    );
}

#[test]
fn closing_before_opening_is_rejected() {
    let printed = rejected(&bank_with("holdings.csv", |t| {
        t.replacen("2019-01-01,2025-01-20", "2019-01-01,2018-01-20", 1)
    }));
    assert_says(
        &printed,
        "holdings.csv, line 7, column closed_on: closed_on 2018-01-20 is before opened_on 2019-01-01",
    );
}

#[test]
fn required_value_missing_is_named() {
    let printed = rejected(&bank_with("clients.csv", |t| {
        t.replacen("AG02,G002,2018-06-01", "AG02,,2018-06-01", 1)
    }));
    assert_says(&printed, "clients.csv, line 5, column ges: ges is required but empty");
}

#[test]
fn every_problem_is_reported_at_once() {
    let files = bank_with("holdings.csv", |t| {
        t.replacen("1000.50", "-1", 1).replacen("P05", "P77", 1)
    });
    let printed = rejected(&files);
    assert_says(&printed, "balance is -1");
    assert_says(&printed, "product_id P77 is not in catalog");
}

#[test]
fn missing_and_ambiguous_tables_are_named() {
    let mut files = hand_built(false);
    files.retain(|(name, _)| *name != "activity.csv");
    let printed = rejected(&files);
    assert_says(&printed, "no activity.xlsx, activity.csv or activity.parquet");

    let dir = scratch();
    let folder = write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    std::fs::copy(folder.join("agencies.csv"), folder.join("agencies.parquet")).unwrap();
    let printed = bad_input(dir.path(), &["features"]);
    assert_says(&printed, "agencies is there more than once");
}

#[test]
fn xlsx_cells_are_named_by_sheet_and_cell() {
    let dir = scratch();
    let folder = write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    std::fs::remove_file(folder.join("clients.csv")).unwrap();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("clients").unwrap();
    let rows = [
        [
            "cli",
            "sex",
            "birth_date",
            "segment",
            "age",
            "ges",
            "client_since",
            "region",
            "income_band",
            "closed_on",
        ],
        [
            "1",
            "F",
            "1985-03-31",
            "Mass",
            "AG01",
            "G001",
            "2020-03-31",
            "Capital",
            "40-70k",
            "",
        ],
        [
            "2",
            "M",
            "15.01.2000",
            "Youth",
            "AG01",
            "G001",
            "2024-12-31",
            "Capital",
            "<20k",
            "",
        ],
        [
            "3",
            "F",
            "1960-06-30",
            "Affluent",
            "AG02",
            "G002",
            "2010-01-01",
            "North",
            ">120k",
            "2025-02-15",
        ],
        [
            "4",
            "M",
            "1970-01-01",
            "Mass",
            "AG02",
            "G002",
            "2018-06-01",
            "North",
            "20-40k",
            "",
        ],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            if r > 0 && c == 0 {
                sheet.write_number(r as u32, 0, value.parse::<f64>().unwrap()).unwrap();
            } else if !value.is_empty() {
                sheet.write_string(r as u32, c as u16, *value).unwrap();
            }
        }
    }
    workbook.save(folder.join("clients.xlsx")).unwrap();
    let printed = bad_input(dir.path(), &["features"]);
    assert_says(
        &printed,
        "clients.xlsx, sheet \"clients\", cell C3 (column birth_date): \"15.01.2000\" is not a date",
    );
    assert_nothing_written(dir.path());
}

#[test]
fn unreadable_workbook_is_named() {
    let dir = scratch();
    let folder = write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    std::fs::remove_file(folder.join("catalog.csv")).unwrap();
    std::fs::write(folder.join("catalog.xlsx"), b"this is not a zip file").unwrap();
    let printed = bad_input(dir.path(), &["features"]);
    assert_says(&printed, "catalog.xlsx: not a readable workbook");
}

#[test]
fn parquet_values_of_the_wrong_type_are_named_by_row() {
    use polars::prelude::*;
    let dir = scratch();
    let folder = write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    std::fs::remove_file(folder.join("agencies.csv")).unwrap();
    let mut agencies = df!(
        "age" => ["AG01", "AG02"],
        "region" => ["Capital", "North"],
        "performance_score" => ["60.0", "high"],
    )
    .unwrap();
    let file = std::fs::File::create(folder.join("agencies.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut agencies).unwrap();
    let printed = bad_input(dir.path(), &["features"]);
    assert_says(
        &printed,
        "agencies.parquet, row 2, column performance_score: \"high\" is not a number",
    );
}

#[test]
fn bad_config_is_named_by_line() {
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    std::fs::write(
        dir.path().join("bad.yaml"),
        "data:\n  raw_dir: data/raw\ncleaning:\n  cap_quantile: lots\n",
    )
    .unwrap();
    let printed = bad_input(dir.path(), &["--config", "bad.yaml", "features"]);
    assert_says(&printed, "bad.yaml");
    assert_says(&printed, "line 4");
}

#[test]
fn unknown_snapshot_lists_the_available_ones() {
    let dir = scratch();
    write_snapshot(dir.path(), "2025-03-31", &hand_built(false));
    let printed = bad_input(dir.path(), &["features", "--snapshot", "2024-01-31"]);
    assert_says(
        &printed,
        "snapshot 2024-01-31 not found in data/raw (available: 2025-03-31)",
    );
}

#[test]
fn a_header_named_twice_is_refused() {
    let printed = rejected(&bank_with("clients.csv", |t| {
        t.lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{l},segment\n")
                } else {
                    format!("{l},Mass\n")
                }
            })
            .collect()
    }));
    assert_says(
        &printed,
        "data/raw/2025-03-31/clients.csv, line 1: column \"segment\" is named twice (columns 4 and 11)",
    );
}

#[test]
fn a_ragged_row_in_an_export_is_named_by_its_line() {
    let printed = rejected(&bank_with("clients.csv", |t| {
        t.lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 2 {
                    format!("{l},extra\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }));
    assert_says(&printed, "clients.csv: line 3: 11 fields where the header has 10");
}
