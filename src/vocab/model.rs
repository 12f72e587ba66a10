//! The four models bankml keeps. Their names appear in the registry's folders, in report
//! keys, in observation labels and on the command line — all through this one type.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Client churn within the horizon (XGBoost classifier).
    Churn,
    /// Manager performance score 0–100 (XGBoost regressor).
    Manager,
    /// Agency performance score 0–100 (XGBoost regressor).
    Agency,
    /// Product recommendation (popularity, SVD + KNN, co-occurrence or EASE).
    Recommender,
}

impl ModelKind {
    /// Every model, in the order reports and listings show them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Churn,
        ModelKind::Manager,
        ModelKind::Agency,
        ModelKind::Recommender,
    ];

    /// The on-disk and on-the-wire name (`data/models/<name>/`, `model="<name>"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ModelKind::Churn => "churn",
            ModelKind::Manager => "manager",
            ModelKind::Agency => "agency",
            ModelKind::Recommender => "recommender",
        }
    }

    /// The three models trained by gradient boosting on tabular features.
    pub const fn is_tabular(self) -> bool {
        !matches!(self, ModelKind::Recommender)
    }

    /// The known names, for messages: `churn, manager, agency, recommender`.
    pub fn names() -> String {
        ModelKind::ALL.map(ModelKind::as_str).join(", ")
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model \"{0}\" (known: churn, manager, agency, recommender)")]
pub struct UnknownModel(pub String);

impl FromStr for ModelKind {
    type Err = UnknownModel;

    fn from_str(text: &str) -> Result<ModelKind, UnknownModel> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| UnknownModel(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_serde_and_clap() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.as_str().parse::<ModelKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<ModelKind>(&json).unwrap(), kind);
            let value = <ModelKind as clap::ValueEnum>::to_possible_value(&kind).unwrap();
            assert_eq!(value.get_name(), kind.as_str());
        }
        let err = "churnn".parse::<ModelKind>().unwrap_err().to_string();
        assert!(err.contains("churnn") && err.contains("recommender"), "{err}");
        assert_eq!(ModelKind::names(), "churn, manager, agency, recommender");
    }
}
