//! Models: boosted trees (one wrapper over XGBoost), churn, manager and agency performance,
//! the product recommender, and the versioned registry they live in.

pub mod baskets;
pub mod boosted;
pub mod churn;
pub mod collective;
pub mod design;
pub mod domain;
pub mod forest;
pub mod holdings_index;
pub mod progress;
pub mod quantile;
pub mod recommender;
pub mod registry;
pub mod streamed;
pub mod support;
pub mod tabular;
