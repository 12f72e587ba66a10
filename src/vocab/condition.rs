//! A rule's condition on a figure: the comparison and what it compares. Shared by the alert
//! rules that evaluate it and the reports that show it beside each figure.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Less => value < threshold,
            Op::LessOrEqual => value <= threshold,
            Op::Greater => value > threshold,
            Op::GreaterOrEqual => value >= threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Less => "<",
            Op::LessOrEqual => "<=",
            Op::Greater => ">",
            Op::GreaterOrEqual => ">=",
        }
    }
}

/// What the condition compares: the observed value, or its relative change since the same
/// series' previous run (`-0.05` = down 5 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompareTo {
    #[default]
    Value,
    PreviousRun,
}
