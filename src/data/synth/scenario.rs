//! Scenarios: events planted at given months on top of the seeded bank, so the monitor can be
//! measured as a detector against a known truth. A scenario is a YAML file
//! (`data/scenarios/*.yaml`, format in `data/scenarios/README.md`); what it planted is written
//! beside the data as `scenario.json`.
//!
//! Every problem in a scenario file is reported at once with `file:line:column` and the valid
//! choices, like the job files.

use crate::config::place;
use crate::data::date::Date;
use crate::data::schema::Table;
use crate::vocab::text;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::path::Path;

/// What can be planted. Covariate drift (`shift`, `scale`, `new_category`, `share`) changes
/// the data as the world would; `concept` changes who churns, not what the data look like;
/// the data-quality breaks (`missing`, `unit`, `rename`, `rows`) change only what is exported;
/// `reshuffle` moves clients between managers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Shift,
    Scale,
    NewCategory,
    Share,
    Concept,
    Missing,
    Unit,
    Rename,
    Rows,
    Reshuffle,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Shift,
        EventKind::Scale,
        EventKind::NewCategory,
        EventKind::Share,
        EventKind::Concept,
        EventKind::Missing,
        EventKind::Unit,
        EventKind::Rename,
        EventKind::Rows,
        EventKind::Reshuffle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Shift => "shift",
            EventKind::Scale => "scale",
            EventKind::NewCategory => "new_category",
            EventKind::Share => "share",
            EventKind::Concept => "concept",
            EventKind::Missing => "missing",
            EventKind::Unit => "unit",
            EventKind::Rename => "rename",
            EventKind::Rows => "rows",
            EventKind::Reshuffle => "reshuffle",
        }
    }

    /// The family a detector is judged in.
    pub fn family(self) -> Family {
        match self {
            EventKind::Shift | EventKind::Scale | EventKind::NewCategory | EventKind::Share => Family::Covariate,
            EventKind::Concept => Family::Concept,
            EventKind::Missing | EventKind::Unit | EventKind::Rename | EventKind::Rows => Family::DataQuality,
            EventKind::Reshuffle => Family::Portfolio,
        }
    }

    /// The columns (`table.column`) or tables this kind can act on.
    fn targets(self) -> &'static [&'static str] {
        match self {
            EventKind::Shift => &NUMERIC_COLUMNS,
            EventKind::Scale => &["holdings.balance"],
            EventKind::Unit => &["holdings.balance"],
            EventKind::NewCategory | EventKind::Share | EventKind::Rename => &CATEGORY_COLUMNS,
            EventKind::Missing => &NULLABLE_COLUMNS,
            EventKind::Rows => &["activity", "holdings"],
            // Optional: a concept drift of one region's or one segment's clients.
            EventKind::Concept => &["clients.region", "clients.segment"],
            EventKind::Reshuffle => &[],
        }
    }

    /// Whether the kind may leave its column out (a concept drift of every client).
    fn column_optional(self) -> bool {
        self == EventKind::Concept
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Covariate,
    Concept,
    DataQuality,
    Portfolio,
}

pub const NUMERIC_COLUMNS: [&str; 4] = [
    "activity.logins",
    "activity.transactions",
    "activity.complaints",
    "holdings.balance",
];
pub const CATEGORY_COLUMNS: [&str; 4] = [
    "clients.segment",
    "clients.region",
    "clients.income_band",
    "clients.sex",
];
pub const NULLABLE_COLUMNS: [&str; 8] = [
    "clients.sex",
    "clients.birth_date",
    "clients.income_band",
    "clients.segment",
    "clients.region",
    "holdings.balance",
    "activity.logins",
    "activity.transactions",
];

/// One planted event, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// First month it applies to (1 = the first snapshot).
    pub month: usize,
    /// Last month it applies to (inclusive); `None`: to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<usize>,
    /// `table.column`, or a table for `rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The size: a relative change for `shift` (-0.4 = 40 % lower), a spread factor for `scale`,
    /// a factor for `unit`, the share of rows kept for `rows`, a strength in (0, 1] for
    /// `concept`, the share of rows affected for `missing`, `new_category`, `share` and
    /// `reshuffle`.
    pub by: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Event {
    pub fn active(&self, month: usize) -> bool {
        month + 1 >= self.month && self.until.is_none_or(|u| month < u)
    }

    pub fn column_is(&self, column: &str) -> bool {
        self.column.as_deref() == Some(column)
    }
}

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The demo bank's documented gradual drift (younger arrivals, product launches); `false`
    /// makes a steady bank (the `control` scenario).
    pub gradual_drift: bool,
    pub events: Vec<Event>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            description: "the demo bank: gradual drift only".into(),
            gradual_drift: true,
            events: Vec::new(),
        }
    }
}

impl Scenario {
    pub fn active(&self, kind: EventKind, month: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.kind == kind && e.active(month))
    }
}

/// What `scenario.json` holds: the scenario, and each event's month as the snapshot date it
/// first appears in, with the words a detector should name for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub scenario: Scenario,
    pub seed: u64,
    pub clients: usize,
    pub snapshots: Vec<String>,
    pub planted: Vec<PlantedEvent>,
    /// Campaigns run on the bank's lists and what they truly did (`generate --campaigns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<super::campaigns::CampaignTruth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedEvent {
    pub kind: EventKind,
    pub family: Family,
    /// The first snapshot that carries it.
    pub first_snapshot: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Substrings of the feature or column names a detector should name (e.g. `logins` for
    /// `activity.logins`: `logins_m0`, `logins_avg_3m`, `mean_client_logins`, …).
    pub names: Vec<String>,
}

impl GroundTruth {
    pub fn new(scenario: &Scenario, seed: u64, clients: usize, snapshots: &[Date]) -> GroundTruth {
        let date = |m: usize| {
            snapshots
                .get(m.saturating_sub(1))
                .map(Date::to_string)
                .unwrap_or_default()
        };
        let planted = scenario
            .events
            .iter()
            .map(|e| PlantedEvent {
                kind: e.kind,
                family: e.kind.family(),
                first_snapshot: date(e.month),
                last_snapshot: e.until.map(date),
                column: e.column.clone(),
                names: names_for(e),
            })
            .collect();
        GroundTruth {
            scenario: scenario.clone(),
            seed,
            clients,
            snapshots: snapshots.iter().map(Date::to_string).collect(),
            planted,
            campaigns: Vec::new(),
        }
    }
}

/// What a detector names when it sees `event`.
fn names_for(event: &Event) -> Vec<String> {
    let column = event.column.as_deref().unwrap_or_default();
    let base = column.rsplit('.').next().unwrap_or(column);
    match (event.kind, column) {
        // A concept drift of one group's clients: named by the churn AUC, or by the figures of
        // that region or segment (`segment_performance_worse{segment=East}`).
        (EventKind::Concept, "") => vec!["churn_auc".into()],
        (EventKind::Concept, _) => vec!["churn_auc".into(), event.value.clone().unwrap_or_default()],
        // Every manager's portfolio changes: any figure of the manager model (or a client's
        // manager score) is about it.
        (EventKind::Reshuffle, _) => vec!["manager".into()],
        (_, "clients.birth_date") => vec!["age_years".into(), "birth_date".into()],
        (EventKind::Rows, "activity") => vec!["activity".into(), "months_with_activity".into()],
        (EventKind::Rows, table) => vec![table.into()],
        (EventKind::Shift, "activity.logins") => vec!["logins".into(), "share_digital".into()],
        _ => vec![base.into()],
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    gradual_drift: bool,
    #[serde(default)]
    events: Vec<EventFile>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    kind: Spanned<String>,
    month: Spanned<i64>,
    until: Option<Spanned<i64>>,
    column: Option<Spanned<String>>,
    table: Option<Spanned<String>>,
    by: Option<Spanned<f64>>,
    value: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    /// Free text for people; not used.
    #[allow(dead_code)]
    note: Option<String>,
}

/// The valid values of each category column, for `share`/`rename` `from` checks.
fn category_values(column: &str) -> &'static [&'static str] {
    use super::catalog::{INCOME_BANDS, REGIONS, SEGMENTS};
    match column {
        "clients.segment" => &SEGMENTS,
        "clients.region" => &REGIONS,
        "clients.income_band" => &INCOME_BANDS,
        "clients.sex" => &["F", "M"],
        _ => &[],
    }
}

/// Reads and validates `path` for a bank of `months` snapshots; every problem at once.
pub fn load(path: &Path, months: usize) -> Result<Scenario, Vec<String>> {
    let text = crate::fsutil::read_text(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    parse(&text, path, months)
}

pub fn parse(text: &str, path: &Path, months: usize) -> Result<Scenario, Vec<String>> {
    let file: ScenarioFile = crate::config::parse_yaml_listed(text, path)?;
    let mut problems = Vec::new();
    let mut events = Vec::new();
    for raw in &file.events {
        if let Some(event) = validate_event(raw, path, months, &mut problems) {
            events.push(event);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let name = file.name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(Scenario {
        name,
        description: file.description,
        gradual_drift: file.gradual_drift,
        events,
    })
}

fn validate_event(raw: &EventFile, path: &Path, months: usize, problems: &mut Vec<String>) -> Option<Event> {
    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
    let Some(kind) = EventKind::ALL.into_iter().find(|k| k.name() == raw.kind.value) else {
        problems.push(format!(
            "{}: unknown event kind \"{}\"{}; valid kinds: {}",
            place(path, &raw.kind),
            raw.kind.value,
            text::did_you_mean(&raw.kind.value, names.iter().copied()),
            names.join(", ")
        ));
        return None;
    };
    let before = problems.len();
    let month_in_range = |m: &Spanned<i64>, key: &str, problems: &mut Vec<String>| -> Option<usize> {
        if m.value >= 1 && m.value as usize <= months {
            Some(m.value as usize)
        } else {
            problems.push(format!(
                "{}: {key} {} is not a month of this bank (1..={months}: 1 is the first snapshot, {months} the last)",
                place(path, m),
                m.value
            ));
            None
        }
    };
    let month = month_in_range(&raw.month, "month", problems);
    let until = raw.until.as_ref().and_then(|u| month_in_range(u, "until", problems));
    if let (Some(m), Some(u), Some(spanned)) = (month, until, &raw.until)
        && u < m
    {
        problems.push(format!("{}: until {u} is before month {m}", place(path, spanned)));
    }
    // The column (or, for `rows`, the table) the kind acts on.
    let targets = kind.targets();
    let target = if kind == EventKind::Rows {
        raw.table.as_ref().or(raw.column.as_ref())
    } else {
        raw.column.as_ref()
    };
    let key = if kind == EventKind::Rows { "table" } else { "column" };
    let column = match (targets.is_empty(), target) {
        (true, Some(t)) => {
            problems.push(format!("{}: {} takes no {key}", place(path, t), kind.name()));
            None
        }
        (true, None) => None,
        (false, None) if kind.column_optional() => None,
        (false, None) => {
            problems.push(format!(
                "{}: {} needs a {key} (one of: {})",
                place(path, &raw.kind),
                kind.name(),
                targets.join(", ")
            ));
            None
        }
        (false, Some(t)) if targets.contains(&t.value.as_str()) => Some(t.value.clone()),
        (false, Some(t)) => {
            let known_table = kind == EventKind::Rows && Table::ALL.iter().any(|x| x.name() == t.value);
            let why = if known_table {
                " (this table cannot be thinned)"
            } else {
                ""
            };
            problems.push(format!(
                "{}: {} cannot act on {key} \"{}\"{why}{}; valid: {}",
                place(path, t),
                kind.name(),
                t.value,
                text::did_you_mean(&t.value, targets.iter().copied()),
                targets.join(", ")
            ));
            None
        }
    };
    // The size, with each kind's sensible range.
    let (default, low, high, meaning): (Option<f64>, f64, f64, &str) = match kind {
        EventKind::Shift => (None, -0.95, 10.0, "a relative change (-0.4 = 40 % lower)"),
        EventKind::Scale => (None, 0.05, 20.0, "a spread factor (2 = twice as spread)"),
        EventKind::Unit => (Some(100.0), 1e-6, 1e6, "a factor (100 = cents for euros)"),
        EventKind::Rows => (Some(0.5), 0.01, 0.99, "the share of rows kept"),
        EventKind::Concept => (Some(1.0), 0.01, 1.0, "a strength"),
        EventKind::Rename => (Some(1.0), 1.0, 1.0, "every row (rename takes no size)"),
        _ => (None, 0.001, 1.0, "a share of rows"),
    };
    let by = match (&raw.by, default) {
        (Some(b), _) if b.value.is_finite() && b.value >= low && b.value <= high && b.value != 0.0 => Some(b.value),
        (Some(b), _) => {
            problems.push(format!(
                "{}: by {} is out of range for {}: {meaning} in [{low}, {high}]",
                place(path, b),
                b.value,
                kind.name()
            ));
            None
        }
        (None, Some(d)) => Some(d),
        (None, None) => {
            problems.push(format!(
                "{}: {} needs `by`: {meaning} in [{low}, {high}]",
                place(path, &raw.kind),
                kind.name()
            ));
            None
        }
    };
    let text_of = |s: &Option<Spanned<String>>| s.as_ref().map(|v| v.value.clone());
    // Which of value/from/to each kind needs, and that `from` is a value the column has.
    let needs: &[&str] = match kind {
        EventKind::NewCategory => &["value"],
        // The region or segment whose clients it changes (a mistyped column is its own error).
        EventKind::Concept if target.is_some() => &["value"],
        EventKind::Share | EventKind::Rename => &["from", "to"],
        _ => &[],
    };
    for (name, field) in [("value", &raw.value), ("from", &raw.from), ("to", &raw.to)] {
        match (needs.contains(&name), field) {
            (false, Some(f)) if kind == EventKind::Concept && name == "value" => problems.push(format!(
                "{}: a concept's `value` needs a column, the group it changes: {}",
                place(path, f),
                kind.targets().join(" or ")
            )),
            // A mistyped column is reported already.
            (true, None) if kind == EventKind::Concept && column.is_none() => {}
            (true, None) if kind == EventKind::Concept => {
                let column = column.as_deref().unwrap_or_default();
                problems.push(format!(
                    "{}: concept needs `value`, the group of {column} it changes: one of {}",
                    place(path, &raw.kind),
                    category_values(column).join(", ")
                ))
            }
            (true, None) => problems.push(format!("{}: {} needs `{name}`", place(path, &raw.kind), kind.name())),
            (false, Some(f)) => problems.push(format!("{}: {} takes no `{name}`", place(path, f), kind.name())),
            _ => {}
        }
    }
    // `from` (share, rename) and a concept's `value` name a value the column has.
    let existing = [Some(&raw.from), (kind == EventKind::Concept).then_some(&raw.value)];
    if let Some(column) = &column {
        let values = category_values(column);
        for named in existing.into_iter().flatten().flatten() {
            if !values.contains(&named.value.as_str()) {
                problems.push(format!(
                    "{}: {column} has no value \"{}\"{}; its values: {}",
                    place(path, named),
                    named.value,
                    text::did_you_mean(&named.value, values.iter().copied()),
                    values.join(", ")
                ));
            }
        }
    }
    if let (EventKind::NewCategory, Some(column), Some(value)) = (kind, &column, &raw.value)
        && category_values(column).contains(&value.value.as_str())
    {
        problems.push(format!(
            "{}: \"{}\" is already a value of {column}: a new category must be new",
            place(path, value),
            value.value
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(Event {
        kind,
        month: month?,
        until,
        column,
        by: by?,
        value: text_of(&raw.value),
        from: text_of(&raw.from),
        to: text_of(&raw.to),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse(text, Path::new("s.yaml"), 12).unwrap_err()
    }

    fn valid(text: &str) -> Scenario {
        parse(text, Path::new("s.yaml"), 12).unwrap()
    }

    #[test]
    fn a_valid_scenario_reads_into_typed_events() {
        let s = valid(
            "name: x\nevents:\n  - {kind: shift, month: 9, column: activity.logins, by: -0.4}\n  - {kind: rows, month: 10, table: activity}\n",
        );
        assert_eq!(s.events.len(), 2);
        assert_eq!(s.events[0].kind, EventKind::Shift);
        assert_eq!(s.events[1].by, 0.5, "rows keeps half by default");
        assert!(s.events[0].active(8) && !s.events[0].active(7), "month 9 is index 8");
        assert!(s.gradual_drift);
    }

    #[test]
    fn a_concept_drift_may_be_limited_to_one_region_that_exists() {
        let s = valid(
            "events:\n  - {kind: concept, month: 9, column: clients.region, value: East}\n  - {kind: concept, month: 3}\n",
        );
        assert_eq!(s.events[0].value.as_deref(), Some("East"));
        assert_eq!(s.events[1].column, None, "every client");
        let truth = GroundTruth::new(&s, 1, 10, &[]);
        assert_eq!(truth.planted[0].names, ["churn_auc", "East"]);
        let found = problems("events:\n  - {kind: concept, month: 9, column: clients.region, value: Eats}\n");
        assert!(
            found[0].contains("s.yaml:2") && found[0].contains("\"Eats\"") && found[0].contains("East"),
            "{found:?}"
        );
        let found = problems("events:\n  - {kind: concept, month: 9, column: clients.region}\n");
        assert!(
            found[0].contains("concept needs `value`") && found[0].contains("Capital, North"),
            "{found:?}"
        );
        let found = problems("events:\n  - {kind: concept, month: 9, column: clients.regoin, value: East}\n");
        assert_eq!(found.len(), 1, "the column alone is wrong: {found:?}");
        assert!(
            found[0].contains("cannot act on column") && found[0].contains("clients.region"),
            "{found:?}"
        );
        let found = problems("events:\n  - {kind: concept, month: 9, value: East}\n");
        assert!(
            found[0].contains("needs a column") && found[0].contains("clients.region or clients.segment"),
            "{found:?}"
        );
    }

    #[test]
    fn unknown_kind_column_and_month_are_located_with_the_choices() {
        let found = problems(
            "events:\n  - kind: shfit\n    month: 3\n  - kind: shift\n    month: 14\n    column: activity.login\n    by: 0.3\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("s.yaml:2:11:") && found[0].contains("did you mean \"shift\""),
            "{}",
            found[0]
        );
        assert!(
            found[0].contains("new_category, share"),
            "lists the valid kinds: {}",
            found[0]
        );
        assert!(
            found[1].starts_with("s.yaml:5:12:") && found[1].contains("1..=12"),
            "{}",
            found[1]
        );
        assert!(
            found[2].starts_with("s.yaml:6:13:") && found[2].contains("did you mean \"activity.logins\""),
            "{}",
            found[2]
        );
    }

    #[test]
    fn sizes_and_category_values_are_checked() {
        let found = problems(
            "events:\n  - {kind: missing, month: 2, column: clients.income_band, by: 3}\n  - {kind: rename, month: 2, column: clients.segment, from: Masss, to: MASS}\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("out of range") && found[0].contains("[0.001, 1]"),
            "{}",
            found[0]
        );
        assert!(found[1].contains("its values: Youth, Mass"), "{}", found[1]);
    }
}
