//! Client churn: probability per client, a risk level, and actions derived from the client's
//! own top SHAP reasons.
//!
//! Class imbalance (a few percent of clients churn) is handled with XGBoost's
//! `scale_pos_weight = negatives / positives` when `class_weight: balanced`: both classes weigh
//! the same in the loss, so the default 0.5 threshold balances recall against precision. The
//! probabilities are then not the churn rate itself: they rank clients. Risk levels are cut on
//! the calibrated churn rate (the version's isotonic calibrator, learned on labelled rows its
//! booster did not fit), so "High" means a chance of leaving a person can read, whatever the class weighting.

pub use crate::config::models::{ChurnConfig, ClassWeight};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn of(rate: f64, config: &ChurnConfig) -> Risk {
        if rate >= config.high_risk {
            Risk::High
        } else if rate >= config.medium_risk {
            Risk::Medium
        } else {
            Risk::Low
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Risk::Low => "Low",
            Risk::Medium => "Medium",
            Risk::High => "High",
        }
    }
}

/// What a relationship manager can do about one reason. Matched on the feature's name, most
/// specific first; a reason that matches nothing gives no action.
const PLAYBOOK: [(&str, &str); 12] = [
    ("complaints", "Senior manager follow-up on the recent complaint"),
    ("logins", "Digital onboarding call: get the client back into the app"),
    ("n_products_closed", "Retention offer on the recently closed product"),
    (
        "days_since_last_closing",
        "Retention offer on the recently closed product",
    ),
    (
        "transactions",
        "Review fees and usage: offer a package that fits how the client pays",
    ),
    (
        "n_products_active",
        "Offer a bundle: a second everyday product at a discount",
    ),
    (
        "n_categories_active",
        "Offer a bundle: a second everyday product at a discount",
    ),
    ("tenure_months", "Welcome-programme check-in for a recent client"),
    (
        "balance",
        "Savings review: propose a deposit or fund matched to the client's balance",
    ),
    (
        "days_since_last_opening",
        "Needs review: nothing new opened for a long time",
    ),
    ("manager_score", "Assign a senior relationship manager"),
    ("age_years", "Life-stage offer suited to the client's age"),
];

pub fn action_for(feature: &str) -> Option<&'static str> {
    PLAYBOOK
        .iter()
        .find(|(prefix, _)| feature.starts_with(prefix))
        .map(|(_, action)| *action)
}

/// The features pushing this client's risk up most (positive SHAP values), largest first,
/// and the distinct actions they call for.
pub fn reasons_and_actions(contributions: &[f32], names: &[String], count: usize) -> (Vec<String>, Vec<String>) {
    let mut pushing: Vec<(usize, f32)> = contributions
        .iter()
        .take(names.len())
        .copied()
        .enumerate()
        .filter(|(_, v)| *v > 0.0)
        .collect();
    pushing.sort_by(|a, b| b.1.total_cmp(&a.1));
    let reasons: Vec<String> = pushing.iter().take(count).map(|(i, _)| names[*i].clone()).collect();
    let mut actions: Vec<String> = Vec::new();
    for reason in &reasons {
        if let Some(action) = action_for(reason)
            && !actions.iter().any(|a| a == action)
        {
            actions.push(action.to_string());
        }
    }
    (reasons, actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_clients_own_reasons() {
        let names: Vec<String> = [
            "logins_m0",
            "complaints_3m",
            "tenure_months",
            "logins_trend",
            "age_years",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Complaints push hardest, then the two login features; the negative one is no reason.
        let shap = [0.4, 0.9, -0.5, 0.3, 0.01, 0.2];
        let (reasons, actions) = reasons_and_actions(&shap, &names, 3);
        assert_eq!(reasons, ["complaints_3m", "logins_m0", "logins_trend"]);
        assert_eq!(
            actions,
            [
                "Senior manager follow-up on the recent complaint",
                "Digital onboarding call: get the client back into the app"
            ]
        );
        // Another client, other reasons, other actions: not a fixed list.
        let (_, actions) = reasons_and_actions(&[-0.1, -0.2, 0.8, -0.1, 0.0, 0.0], &names, 3);
        assert_eq!(actions, ["Welcome-programme check-in for a recent client"]);
    }

    #[test]
    fn risk_levels_follow_the_configured_cuts() {
        let config = ChurnConfig::default();
        assert_eq!(Risk::of(0.099, &config), Risk::Low);
        assert_eq!(Risk::of(0.1, &config), Risk::Medium);
        assert_eq!(Risk::of(0.299, &config), Risk::Medium);
        assert_eq!(Risk::of(0.3, &config), Risk::High);
    }
}
