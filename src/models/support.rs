//! Support for managers and agencies predicted below their objective: the features of their
//! own score pulling it down most (SHAP contributions, negative), the support programme each
//! calls for, and the chance of meeting the objective next month.
//!
//! The chance reads the model's holdout error as normal around the prediction:
//! `P(score ≥ objective) = 1 − Φ((objective − predicted) / RMSE)`. A calibrated interval would
//! need the residuals' own shape; the holdout's RMSE is what every version keeps.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// What a bank's network management can offer, by the feature that pulls the score down.
/// Matched on the feature's name, most specific first; a feature that matches nothing calls
/// for a review with the regional lead.
const PROGRAMMES: [(&str, &str); 14] = [
    ("products_per_client", "Cross-sell programme: few products per client"),
    ("churn", "Retention coaching: clients leaving within 90 days"),
    ("churned_clients", "Retention coaching: clients leaving within 90 days"),
    ("closed_products", "Retention coaching: products closing"),
    (
        "objective_attainment",
        "Sales pipeline review: new products below objective",
    ),
    ("new_products", "Sales pipeline review: new products below objective"),
    ("mean_manager_tenure", "Mentoring for the agency's newer managers"),
    ("tenure_years", "Mentoring by a senior manager: new in the role"),
    ("complaints", "Service quality review: complaints in the portfolio"),
    ("mean_client_logins", "Digital adoption drive for the portfolio"),
    ("mean_manager_score", "Coaching for the agency's weakest managers"),
    ("clients_per_manager", "Workload review: clients per manager"),
    ("n_clients", "Workload review: portfolio size"),
    ("balance", "Savings and investment campaign for the portfolio"),
];

const REVIEW: &str = "Performance review with the regional lead";

pub fn programme_for(feature: &str) -> &'static str {
    PROGRAMMES
        .iter()
        .find(|(prefix, _)| feature.starts_with(prefix) || feature.contains(prefix))
        .map_or(REVIEW, |(_, programme)| programme)
}

/// One feature pulling a score down, in score points (negative).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Drag {
    pub feature: String,
    pub effect: f64,
}

/// A manager's or agency's standing against the objective.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Support {
    /// The score expected of every manager or agency (`models.performance_objective`).
    pub objective: f64,
    pub below_objective: bool,
    /// Chance the actual score reaches the objective, from the holdout's RMSE.
    pub meets_objective_probability: f64,
    /// Below the objective only: the features of this score pulling it down most.
    pub pulling_down: Vec<Drag>,
    /// Below the objective only: the distinct programmes they call for.
    pub support: Vec<String>,
}

/// `contributions`: one row of SHAP values (features, then the bias) in score points.
pub fn support(
    predicted: f64,
    contributions: &[f32],
    names: &[String],
    objective: f64,
    rmse: f64,
    count: usize,
) -> Support {
    let probability = if rmse > 0.0 && rmse.is_finite() {
        Normal::new(predicted, rmse).map_or(f64::from(u8::from(predicted >= objective)), |n| n.sf(objective))
    } else {
        f64::from(u8::from(predicted >= objective))
    };
    let below = predicted < objective;
    let mut pulling: Vec<(usize, f32)> = contributions
        .iter()
        .take(names.len())
        .copied()
        .enumerate()
        .filter(|(_, v)| *v < 0.0)
        .collect();
    pulling.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let pulling_down: Vec<Drag> = if below {
        pulling
            .iter()
            .take(count)
            .map(|(i, v)| Drag {
                feature: names[*i].clone(),
                effect: f64::from(*v),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut programmes: Vec<String> = Vec::new();
    for drag in &pulling_down {
        let programme = programme_for(&drag.feature);
        if !programmes.iter().any(|p| p == programme) {
            programmes.push(programme.to_string());
        }
    }
    Support {
        objective,
        below_objective: below,
        meets_objective_probability: probability,
        pulling_down,
        support: programmes,
    }
}

/// Drivers a manager's or agency's support names.
pub const DRIVERS: usize = 3;

/// Every row's support from one model's predictions and contributions (the holdout's RMSE
/// for the chance).
pub fn supports(
    model: &crate::models::tabular::TabularModel,
    predicted: &[f64],
    contributions: &[f32],
    objective: f64,
) -> Vec<Support> {
    let names = model.design.names();
    let rmse = model.meta.holdout.regression().map_or(f64::NAN, |m| m.rmse);
    predicted
        .iter()
        .zip(contributions.chunks(names.len() + 1))
        .map(|(p, row)| support(*p, row, &names, objective, rmse, DRIVERS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manager_below_objective_gets_the_programmes_of_what_pulls_the_score_down() {
        let names: Vec<String> = ["products_per_client", "churn_rate_90d", "tenure_years", "n_clients"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Products per client pulls hardest, then churn; tenure lifts; bias last.
        let shap = [-6.0, -2.5, 3.0, -0.5, 50.0];
        let low = support(44.0, &shap, &names, 60.0, 8.0, 2);
        assert!(low.below_objective);
        let pulled: Vec<&str> = low.pulling_down.iter().map(|d| d.feature.as_str()).collect();
        assert_eq!(pulled, ["products_per_client", "churn_rate_90d"]);
        assert_eq!(
            low.support,
            [
                "Cross-sell programme: few products per client",
                "Retention coaching: clients leaving within 90 days"
            ]
        );
        // Two RMSEs below: about a 2.3 % chance (scipy.stats.norm.sf(60, 44, 8) = 0.02275).
        let p = low.meets_objective_probability;
        assert!((p - 0.022750131948179195).abs() < 1e-9 * 0.0228, "{p}");
        let high = support(70.0, &shap, &names, 60.0, 8.0, 2);
        assert!(!high.below_objective && high.pulling_down.is_empty() && high.support.is_empty());
        let p = high.meets_objective_probability;
        assert!((p - 0.8943502263331446).abs() < 1e-9, "{p}");
        assert_eq!(programme_for("something_else"), REVIEW);
    }
}
