//! The six tables of a bank export, with the seed system's column names and the types we hold
//! them in. Everything downstream (validation, cleaning, features) reads these names.

use polars::prelude::DataType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Str,
    Date,
}

impl Kind {
    pub fn dtype(self) -> DataType {
        match self {
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Str => DataType::String,
            Kind::Date => DataType::Date,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Int => "a whole number",
            Kind::Float => "a number",
            Kind::Str => "text",
            Kind::Date => "a date (YYYY-MM-DD)",
        }
    }
}

#[derive(Debug)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// A missing value here is an error, not something cleaning may fill.
    pub required: bool,
}

const fn col(name: &'static str, kind: Kind, required: bool) -> ColumnSpec {
    ColumnSpec { name, kind, required }
}

use Kind::*;

const CLIENTS: [ColumnSpec; 10] = [
    col("cli", Int, true),
    col("sex", Str, false),
    col("birth_date", Date, false),
    col("segment", Str, false),
    col("age", Str, true),
    col("ges", Str, true),
    col("client_since", Date, true),
    col("region", Str, false),
    col("income_band", Str, false),
    col("closed_on", Date, false),
];

const HOLDINGS: [ColumnSpec; 5] = [
    col("cli", Int, true),
    col("product_id", Str, true),
    col("opened_on", Date, true),
    col("closed_on", Date, false),
    col("balance", Float, false),
];

const CATALOG: [ColumnSpec; 3] = [
    col("product_id", Str, true),
    col("product_name", Str, true),
    col("category", Str, true),
];

const MANAGERS: [ColumnSpec; 5] = [
    col("ges", Str, true),
    col("age", Str, true),
    col("hired_on", Date, true),
    col("objective", Int, false),
    col("performance_score", Float, false),
];

const AGENCIES: [ColumnSpec; 3] = [
    col("age", Str, true),
    col("region", Str, false),
    col("performance_score", Float, false),
];

const ACTIVITY: [ColumnSpec; 5] = [
    col("cli", Int, true),
    col("month", Date, true),
    col("logins", Int, false),
    col("transactions", Int, false),
    col("complaints", Int, false),
];

const CONTACTS: [ColumnSpec; 6] = [
    col("campaign", Str, true),
    col("cli", Int, true),
    col("arm", Str, true),
    col("contacted_on", Date, false),
    col("offer", Str, false),
    col("clicked", Int, false),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Clients,
    Holdings,
    Catalog,
    Managers,
    Agencies,
    Activity,
    /// What the bank did with the campaign lists (optional; read by the business job only).
    Contacts,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Clients,
        Table::Holdings,
        Table::Catalog,
        Table::Managers,
        Table::Agencies,
        Table::Activity,
    ];

    /// Tables a snapshot may hold beside the six.
    pub const OPTIONAL: [Table; 1] = [Table::Contacts];

    pub fn name(self) -> &'static str {
        match self {
            Table::Contacts => "contacts",
            Table::Clients => "clients",
            Table::Holdings => "holdings",
            Table::Catalog => "catalog",
            Table::Managers => "managers",
            Table::Agencies => "agencies",
            Table::Activity => "activity",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().chain(Table::OPTIONAL).find(|t| t.name() == name)
    }

    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            Table::Clients => &CLIENTS,
            Table::Holdings => &HOLDINGS,
            Table::Catalog => &CATALOG,
            Table::Managers => &MANAGERS,
            Table::Agencies => &AGENCIES,
            Table::Activity => &ACTIVITY,
            Table::Contacts => &CONTACTS,
        }
    }

    /// Columns whose combination must be unique.
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Table::Clients => &["cli"],
            Table::Holdings => &["cli", "product_id", "opened_on"],
            Table::Catalog => &["product_id"],
            Table::Managers => &["ges"],
            Table::Agencies => &["age"],
            Table::Activity => &["cli", "month"],
            Table::Contacts => &["campaign", "cli"],
        }
    }
}

/// A foreign key: every non-empty value of `from.column` must be a key of `to`.
pub struct Reference {
    pub from: Table,
    pub column: &'static str,
    pub to: Table,
    pub to_column: &'static str,
}

pub const REFERENCES: [Reference; 8] = [
    Reference {
        from: Table::Contacts,
        column: "cli",
        to: Table::Clients,
        to_column: "cli",
    },
    Reference {
        from: Table::Contacts,
        column: "offer",
        to: Table::Catalog,
        to_column: "product_id",
    },
    Reference {
        from: Table::Holdings,
        column: "cli",
        to: Table::Clients,
        to_column: "cli",
    },
    Reference {
        from: Table::Holdings,
        column: "product_id",
        to: Table::Catalog,
        to_column: "product_id",
    },
    Reference {
        from: Table::Clients,
        column: "ges",
        to: Table::Managers,
        to_column: "ges",
    },
    Reference {
        from: Table::Clients,
        column: "age",
        to: Table::Agencies,
        to_column: "age",
    },
    Reference {
        from: Table::Managers,
        column: "age",
        to: Table::Agencies,
        to_column: "age",
    },
    Reference {
        from: Table::Activity,
        column: "cli",
        to: Table::Clients,
        to_column: "cli",
    },
];

/// Problems of `ingest.columns`: tables and columns of ours that do not exist.
pub fn check_mapping(ingest: &crate::config::IngestConfig) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, mapping) in &ingest.columns {
        match Table::from_name(table) {
            None => problems.push(format!("ingest.columns: unknown table \"{table}\"")),
            Some(t) => {
                for ours in mapping.keys() {
                    if !t.columns().iter().any(|c| c.name == ours) {
                        let names: Vec<&str> = t.columns().iter().map(|c| c.name).collect();
                        problems.push(format!(
                            "ingest.columns.{table}: unknown column \"{ours}\" (known: {})",
                            names.join(", ")
                        ));
                    }
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    #[test]
    fn mapping_must_name_known_columns() {
        let text = "ingest:\n  columns:\n    clients:\n      cli: client_id\n      clie: x\n";
        let config: crate::config::EngineConfig =
            crate::config::parse_yaml(text, std::path::Path::new("b.yaml")).unwrap();
        let problems = check_mapping(&config.ingest).join("\n");
        assert!(problems.contains("unknown column \"clie\""), "{problems}");
        assert!(!problems.contains("\"cli\""), "{problems}");
    }
}
