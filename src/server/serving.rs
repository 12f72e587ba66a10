//! What the prediction API answers from: the champions and the latest snapshot's features,
//! loaded once and kept until a champion or the latest snapshot changes. Every client,
//! manager and agency is scored at load; a single client's reasons use exact TreeSHAP.
//! No HTTP here.

use crate::config::EngineConfig;
use crate::data::date::Date;
use crate::data::features;
use crate::data::schema::Table;
use crate::data::snapshot::{self, Snapshot};
use crate::data::store::{FeatureStore, FeatureTable};
use crate::jobs::{JobError, absent_if_untrained, frames};
use crate::models::churn::{Risk, reasons_and_actions};
use crate::models::recommender::{HoldingsIndex, SavedRecommender};
use crate::models::registry::Registry;
use crate::models::tabular::{AGENCY, MANAGER, TabularModel, TabularSpec};
use crate::vocab::ModelKind;
use polars::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// What identifies the data a `Serving` was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingKey {
    pub snapshot: Option<Date>,
    pub champions: std::collections::BTreeMap<ModelKind, Option<u32>>,
}

impl ServingKey {
    pub fn current(config: &EngineConfig) -> ServingKey {
        let registry = Registry::new(&config.models.dir);
        ServingKey {
            snapshot: snapshot::list_snapshots(&config.data.raw_dir)
                .ok()
                .and_then(|s| s.last().map(|(d, _)| *d)),
            champions: registry.champions(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChurnPrediction {
    pub client_id: Option<i64>,
    /// The class-weighted score: it ranks clients, it is not a rate.
    pub churn_probability: f64,
    /// The calibrated chance of leaving within the churn horizon (absent for a version
    /// trained without a calibrator); the risk level is cut on it.
    pub churn_rate: Option<f64>,
    pub risk_level: &'static str,
    pub reasons: Vec<String>,
    pub recommended_actions: Vec<String>,
    pub model_version: u32,
    /// Features the request left out (read as unknown); empty for a client looked up by id.
    pub missing_features: Vec<String>,
    /// What a prediction by values started from.
    #[serde(skip_serializing_if = "Base::is_lookup")]
    pub base: Base,
}

/// What a prediction by feature values started from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// Looked up by id: the snapshot's own values.
    #[default]
    Lookup,
    /// The given values alone; the others read as unknown.
    GivenOnly,
    /// The given values over the named client's (manager's, agency's) own.
    Known,
    /// An id the latest snapshot does not hold: the given values alone.
    UnknownId,
}

impl Base {
    pub fn is_lookup(&self) -> bool {
        *self == Base::Lookup
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScorePrediction {
    pub id: Option<String>,
    pub predicted_score: f64,
    pub actual_score: Option<f64>,
    pub model_version: u32,
    /// The features that moved this score most from the model's average, largest first.
    pub drivers: Vec<Driver>,
    /// Against `models.performance_objective`: the chance of meeting it, and below it what
    /// pulls the score down and the support it calls for.
    pub objective: crate::models::support::Support,
    /// Features the request left out (read as unknown); empty for an entity looked up by id.
    pub missing_features: Vec<String>,
    /// What a prediction by values started from.
    #[serde(skip_serializing_if = "Base::is_lookup")]
    pub base: Base,
}

/// A feature's share of one score: its SHAP contribution, in score points (positive raises
/// the score above the model's average, negative lowers it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Driver {
    pub feature: String,
    pub effect: f64,
}

/// One manager or agency in a ranking.
pub struct Ranked<'a> {
    pub rank: usize,
    pub id: &'a str,
    pub predicted_score: f64,
    pub actual_score: Option<f64>,
    pub drivers: &'a [Driver],
    pub objective: Option<&'a crate::models::support::Support>,
}

/// Drivers shown per manager or agency.
const DRIVERS: usize = 3;

/// The `DRIVERS` largest contributions (by size) of each row of `contributions` (one value
/// per feature, then the bias).
fn drivers(contributions: &[f32], names: &[String]) -> Vec<Vec<Driver>> {
    contributions
        .chunks(names.len() + 1)
        .map(|row| {
            let mut order: Vec<usize> = (0..names.len().min(row.len())).collect();
            order.sort_by(|a, b| row[*b].abs().total_cmp(&row[*a].abs()));
            order
                .into_iter()
                .take(DRIVERS)
                .filter(|i| row[*i] != 0.0)
                .map(|i| Driver {
                    feature: names[i].clone(),
                    effect: f64::from(row[i]),
                })
                .collect()
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    pub rank: usize,
    pub product_id: String,
    pub product_name: String,
    pub category: String,
    pub score: f64,
}

/// Why a request cannot be answered.
#[derive(Debug)]
pub enum Refusal {
    /// The model has no champion yet.
    NoModel(ModelKind),
    NotFound(String),
    /// A request field is wrong: its path and what is wrong.
    Invalid {
        field: String,
        message: String,
    },
    Internal(String),
}

struct Entities {
    model: TabularModel,
    ids: Vec<String>,
    predicted: Vec<f64>,
    actual: Vec<Option<f64>>,
    drivers: Vec<Vec<Driver>>,
    support: Vec<crate::models::support::Support>,
    position: HashMap<String, usize>,
    /// The feature rows (a few hundred managers or agencies), for what-if from a real one.
    features: DataFrame,
}

struct Clients {
    model: TabularModel,
    ids: Vec<i64>,
    position: foldhash::HashMap<i64, usize>,
    features: DataFrame,
    /// Every client's score: the scoring run's when it stored this champion's, else predicted
    /// at the first ask for all clients — one client's answer (its own prediction and
    /// reasons) never waits for a million after a champion change.
    scores: std::sync::OnceLock<Result<Scores, String>>,
}

/// Every current client's churn score, rate and rank.
struct Scores {
    probabilities: Vec<f64>,
    /// Calibrated churn rates (the scores themselves for a version without a calibrator).
    rates: Vec<f64>,
    /// Row indices by probability, highest first (sorted once, paged many times).
    by_risk: Vec<usize>,
}

impl Scores {
    fn of(model: &TabularModel, probabilities: Vec<f64>) -> Scores {
        let mut by_risk: Vec<usize> = (0..probabilities.len()).collect();
        by_risk.sort_by(|a, b| probabilities[*b].total_cmp(&probabilities[*a]));
        Scores {
            rates: model.churn_rates(&probabilities),
            by_risk,
            probabilities,
        }
    }
}

impl Clients {
    /// Every client's score, predicted now if nothing stored them.
    fn scores(&self) -> Result<&Scores, Refusal> {
        self.scores
            .get_or_init(|| {
                tracing::info!(clients = self.ids.len(), "predicting every client's churn score");
                let predicted = self.model.predict_frame(&self.features).map_err(|e| e.to_string())?;
                Ok(Scores::of(&self.model, frames::to_f64(&predicted)))
            })
            .as_ref()
            .map_err(|e| Refusal::Internal(e.clone()))
    }
}

struct Recommendations {
    saved: SavedRecommender,
    /// Client id → the products they hold, as the model's item indices.
    held: foldhash::HashMap<i64, Vec<usize>>,
}

pub struct Serving {
    pub key: ServingKey,
    churn_config: crate::models::churn::ChurnConfig,
    /// `models.performance_objective`: the score managers and agencies are held to.
    objective: f64,
    k_default: usize,
    clients: Option<Clients>,
    managers: Option<Entities>,
    agencies: Option<Entities>,
    recommender: Option<Recommendations>,
    /// Answers already given for a client of this snapshot (exact SHAP is the costly part):
    /// asked again, a client is answered from here. Bounded; emptied when full.
    answered: std::sync::Mutex<HashMap<i64, ChurnPrediction>>,
}

/// Clients whose answers are kept at once (~1.2 KiB each, so at most ~60 MiB).
const ANSWERS_KEPT: usize = 50_000;

fn floats(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let cast = frame.column(name)?.cast(&DataType::Float64)?;
    Ok(cast.f64()?.iter().collect())
}

/// What the product index (clients, holdings, catalog) is read from.
enum Products {
    /// Exports that passed validation before (their kept features are fresh): only the
    /// three tables are read again.
    ValidatedExports(Vec<crate::data::problem::Problem>),
    /// The snapshot as just loaded and validated.
    Loaded(Box<Snapshot>),
}

/// The latest snapshot's features when kept and fresh (`None`: the snapshot loaded and
/// validated, and its features built here — not kept: the scoring job keeps them), and where
/// the product index comes from.
fn locate(
    config: &EngineConfig,
    date: Date,
    dir: &std::path::Path,
) -> Result<(Option<features::Features>, Products), JobError> {
    let store = FeatureStore::new(config);
    match store.fresh_manifest(date)? {
        Some(kept) => Ok((None, Products::ValidatedExports(kept.warnings))),
        None => {
            let loaded = snapshot::load(dir, date, config)?;
            let built = features::build(&loaded, None, config.features.churn_horizon_days)?;
            Ok((Some(built), Products::Loaded(Box::new(loaded))))
        }
    }
}

/// The kept features of `date`, the clients' only in the columns `churn` reads.
fn kept_features(
    config: &EngineConfig,
    date: Date,
    churn: Option<&crate::models::design::Design>,
) -> Result<features::Features, JobError> {
    let store = FeatureStore::new(config);
    let mut columns: Vec<&str> = vec!["cli", "ges"];
    for name in churn.into_iter().flat_map(|design| design.inputs()) {
        if !columns.contains(&name) {
            columns.push(name);
        }
    }
    Ok(features::Features {
        clients: store.read(date, FeatureTable::Clients, Some(&columns))?,
        managers: store.read(date, FeatureTable::Managers, None)?,
        agencies: store.read(date, FeatureTable::Agencies, None)?,
    })
}

/// The churn features as the model reads them: numbers in f32, XGBoost's own precision, so
/// every prediction and SHAP value is unchanged — and a million clients' columns take half the
/// memory of f64.
fn as_the_model_reads(frame: DataFrame, design: &crate::models::design::Design) -> PolarsResult<DataFrame> {
    let numbers: Vec<Expr> = design
        .numeric
        .iter()
        .map(|name| col(name.as_str()).cast(DataType::Float32))
        .collect();
    frame.lazy().with_columns(numbers).collect()
}

/// Row `row` of a numeric column as a number; an f32 one as the shortest decimal that reads
/// back as the same f32 (45.32238, not 45.32238006591797), which a what-if form sends back.
fn number_at(column: &Column, row: usize) -> Option<f64> {
    if column.dtype() == &DataType::Float32 {
        let value = column.f32().ok()?.get(row)?;
        return value.to_string().parse().ok();
    }
    column.cast(&DataType::Float64).ok()?.f64().ok()?.get(row)
}

impl Recommendations {
    /// What every current client holds, as `saved`'s item indices.
    fn load(
        saved: SavedRecommender,
        products: Products,
        config: &EngineConfig,
        date: Date,
        dir: &std::path::Path,
    ) -> Result<Recommendations, JobError> {
        let snapshot = match products {
            Products::Loaded(loaded) => *loaded,
            Products::ValidatedExports(warnings) => snapshot::tables_validated_before(
                dir,
                date,
                config,
                warnings,
                &[Table::Clients, Table::Holdings, Table::Catalog],
                snapshot::Cleaning::AsExported,
            )?,
        };
        let index = HoldingsIndex::new(&snapshot)?;
        let held = saved.holdings_at(&index, snapshot.date.0).into_iter().collect();
        Ok(Recommendations { saved, held })
    }
}

impl Serving {
    /// Loads the champions and scores the latest snapshot: from its kept features (only the
    /// columns the champions read) and the scoring job's stored churn scores when they are
    /// the churn champion's, else built and predicted here.
    pub fn load(config: &EngineConfig) -> Result<Serving, JobError> {
        let started = std::time::Instant::now();
        let seconds = || started.elapsed().as_secs_f64();
        let key = ServingKey::current(config);
        let registry = Registry::new(&config.models.dir);
        let threads = config.models.boosting.thread_count();
        let (date, dir) = snapshot::find_snapshot(&config.data.raw_dir, None)?;
        let churn = absent_if_untrained(TabularModel::load(&registry, ModelKind::Churn, None, threads))?;
        let saved_recommender = absent_if_untrained(SavedRecommender::load(&registry, None))?;
        let (built, products) = locate(config, date, &dir)?;
        let objective = config.models.performance_objective;
        let dir = dir.as_path();
        let (clients, managers, agencies, recommender) = std::thread::scope(|scope| -> Result<_, JobError> {
            // The product index on a thread of its own, beside reading and scoring.
            let index = saved_recommender
                .map(|saved| scope.spawn(move || Recommendations::load(saved, products, config, date, dir)));
            let features::Features {
                clients: client_features,
                managers: manager_features,
                agencies: agency_features,
            } = match built {
                Some(built) => built,
                None => kept_features(config, date, churn.as_ref().map(|m| &m.design))?,
            };
            tracing::info!(seconds = seconds(), "serving: features read");
            let clients = match churn {
                None => None,
                Some(model) => {
                    let features = as_the_model_reads(client_features, &model.design)?;
                    let scores = std::sync::OnceLock::new();
                    match frames::stored_churn_scores(config, date, model.meta.version, &features)? {
                        Some(stored) => {
                            let _ = scores.set(Ok(Scores::of(&model, stored)));
                        }
                        None => tracing::info!("no stored churn scores of this champion for {date}"),
                    }
                    let ids: Vec<i64> = features.column("cli")?.i64()?.iter().map(|v| v.unwrap_or(-1)).collect();
                    Some(Clients {
                        position: ids.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
                        ids,
                        features,
                        model,
                        scores,
                    })
                }
            };
            let entities = |spec: &TabularSpec, frame: &DataFrame, key: &str| -> Result<Option<Entities>, JobError> {
                let Some(model) = absent_if_untrained(TabularModel::load(&registry, spec.model, None, threads))? else {
                    return Ok(None);
                };
                let x = model.design.matrix(frame)?;
                let predicted: Vec<f64> = model
                    .booster
                    .predict(&x)?
                    .iter()
                    .map(|p| (*p as f64).clamp(0.0, 100.0))
                    .collect();
                // A few hundred managers or agencies: their exact contributions cost little.
                let contributions = model.booster.contributions(&x)?;
                let drivers = drivers(&contributions, &model.design.names());
                let support = crate::models::support::supports(&model, &predicted, &contributions, objective);
                let ids: Vec<String> = crate::data::table::optional_texts(frame, key)?
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect();
                Ok(Some(Entities {
                    position: ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect(),
                    predicted,
                    actual: floats(frame, spec.target)?,
                    drivers,
                    support,
                    ids,
                    features: frame.clone(),
                    model,
                }))
            };
            tracing::info!(seconds = seconds(), "serving: clients scored");
            let managers = entities(&MANAGER, &manager_features, "ges")?;
            let agencies = entities(&AGENCY, &agency_features, "age")?;
            tracing::info!(seconds = seconds(), "serving: managers and agencies scored");
            let recommender = index
                .map(|handle| handle.join().map_err(|_| JobError::WorkerPanicked)?)
                .transpose()?;
            tracing::info!(seconds = seconds(), "serving: product index built");
            Ok((clients, managers, agencies, recommender))
        })?;
        // Loading read whole tables this state does not keep: give their memory back.
        crate::fsutil::release_freed_memory();
        tracing::info!(seconds = seconds(), %date, "serving state loaded");
        Ok(Serving {
            key,
            churn_config: config.models.churn.clone(),
            objective,
            k_default: config.models.recommender.k,
            clients,
            managers,
            agencies,
            recommender,
            answered: Default::default(),
        })
    }

    /// The features `model`'s champion reads (what a what-if form asks for); `None` without
    /// a champion.
    pub fn design(&self, model: ModelKind) -> Option<&crate::models::design::Design> {
        match model {
            ModelKind::Churn => self.clients.as_ref().map(|c| &c.model.design),
            ModelKind::Manager => self.managers.as_ref().map(|e| &e.model.design),
            ModelKind::Agency => self.agencies.as_ref().map(|e| &e.model.design),
            ModelKind::Recommender => None,
        }
    }

    /// The feature values of a current client (`model` churn), manager or agency, by the
    /// names a request uses; `None` for an id the latest snapshot does not hold.
    pub fn features_of(&self, model: ModelKind, id: &str) -> Option<Map<String, Value>> {
        let (tabular, frame, row) = match model {
            ModelKind::Churn => {
                let clients = self.clients.as_ref()?;
                let row = *clients.position.get(&id.trim().parse::<i64>().ok()?)?;
                (&clients.model, &clients.features, row)
            }
            ModelKind::Manager | ModelKind::Agency => {
                let entities = self.entities(model).ok()?;
                let row = *entities.position.get(id)?;
                (&entities.model, &entities.features, row)
            }
            ModelKind::Recommender => return None,
        };
        let design = &tabular.design;
        let mut out = Map::new();
        for name in &design.numeric {
            let value = frame.column(name).ok().and_then(|c| number_at(c, row));
            out.insert(name.clone(), value.map_or(Value::Null, |v| serde_json::json!(v)));
        }
        for (name, _) in &design.categorical {
            let value = frame
                .column(name)
                .ok()
                .and_then(|c| c.str().ok().and_then(|v| v.get(row).map(str::to_string)));
            out.insert(name.clone(), value.map_or(Value::Null, Value::String));
        }
        Some(out)
    }

    pub fn default_recommendations(&self) -> usize {
        self.k_default
    }

    fn clients(&self) -> Result<&Clients, Refusal> {
        self.clients.as_ref().ok_or(Refusal::NoModel(ModelKind::Churn))
    }

    /// One client of the latest snapshot, with exact SHAP reasons.
    pub fn churn_of(&self, client_id: i64) -> Result<ChurnPrediction, Refusal> {
        let clients = self.clients()?;
        let row = *clients
            .position
            .get(&client_id)
            .ok_or_else(|| Refusal::NotFound(format!("client {client_id} is not a current client")))?;
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answer) = answered.get(&client_id) {
            return Ok(answer.clone());
        }
        let frame = clients.features.slice(row as i64, 1);
        let answer = self.explain(&clients.model, &frame, Some(client_id), Vec::new())?;
        if answered.len() >= ANSWERS_KEPT {
            answered.clear();
        }
        answered.insert(client_id, answer.clone());
        Ok(answer)
    }

    /// A client described by feature values (missing ones are treated as unknown).
    /// `field`: where the features sat in the request (`features`, or `` at the top level).
    pub fn churn_of_features(&self, features: &Map<String, Value>, field: &str) -> Result<ChurnPrediction, Refusal> {
        let clients = self.clients()?;
        let frame = frame_from_features(&clients.model, features, field)?;
        self.explain(&clients.model, &frame, None, missing_features(&clients.model, features))
    }

    fn explain(
        &self,
        model: &TabularModel,
        frame: &DataFrame,
        id: Option<i64>,
        missing_features: Vec<String>,
    ) -> Result<ChurnPrediction, Refusal> {
        let internal = |e: &dyn std::fmt::Display| Refusal::Internal(e.to_string());
        let x = model.design.matrix(frame).map_err(|e| internal(&e))?;
        let p = model.booster.predict(&x).map_err(|e| internal(&e))?;
        let probability = p.first().copied().unwrap_or(f32::NAN) as f64;
        let rate = model.churn_rates(&[probability])[0];
        let risk = Risk::of(rate, &self.churn_config);
        let names = model.design.names();
        let (reasons, actions) = if rate >= self.churn_config.medium_risk {
            let shap = model.booster.contributions(&x).map_err(|e| internal(&e))?;
            reasons_and_actions(&shap, &names, self.churn_config.reasons)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(ChurnPrediction {
            client_id: id,
            churn_probability: probability,
            churn_rate: model.calibration.is_some().then_some(rate),
            risk_level: risk.name(),
            reasons,
            recommended_actions: actions,
            model_version: model.meta.version,
            missing_features,
            base: if id.is_some() { Base::Lookup } else { Base::GivenOnly },
        })
    }

    fn entities(&self, model: ModelKind) -> Result<&Entities, Refusal> {
        match model {
            ModelKind::Manager => self.managers.as_ref(),
            ModelKind::Agency => self.agencies.as_ref(),
            other => return Err(Refusal::Internal(format!("{other} does not score entities"))),
        }
        .ok_or(Refusal::NoModel(model))
    }

    /// `model`: manager or agency.
    pub fn score_of(&self, model: ModelKind, id: &str) -> Result<ScorePrediction, Refusal> {
        let entities = self.entities(model)?;
        let row = *entities
            .position
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("{model} {id} is not in the latest snapshot")))?;
        Ok(ScorePrediction {
            id: Some(id.to_string()),
            predicted_score: entities.predicted[row],
            actual_score: entities.actual[row],
            model_version: entities.model.meta.version,
            drivers: entities.drivers.get(row).cloned().unwrap_or_default(),
            objective: entities
                .support
                .get(row)
                .cloned()
                .ok_or_else(|| Refusal::Internal(format!("{model} {id}: no support computed")))?,
            missing_features: Vec::new(),
            base: Base::Lookup,
        })
    }

    pub fn score_of_features(
        &self,
        model: ModelKind,
        features: &Map<String, Value>,
        field: &str,
    ) -> Result<ScorePrediction, Refusal> {
        let entities = self.entities(model)?;
        let frame = frame_from_features(&entities.model, features, field)?;
        let x = entities
            .model
            .design
            .matrix(&frame)
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let internal = |e: &dyn std::fmt::Display| Refusal::Internal(e.to_string());
        let p = entities.model.booster.predict(&x).map_err(|e| internal(&e))?;
        let contributions = entities.model.booster.contributions(&x).map_err(|e| internal(&e))?;
        let predicted = (p.first().copied().unwrap_or(f32::NAN) as f64).clamp(0.0, 100.0);
        let objective = crate::models::support::supports(&entities.model, &[predicted], &contributions, self.objective)
            .pop()
            .ok_or_else(|| Refusal::Internal("no contributions for the features given".into()))?;
        Ok(ScorePrediction {
            id: None,
            objective,
            predicted_score: predicted,
            actual_score: None,
            model_version: entities.model.meta.version,
            drivers: drivers(&contributions, &entities.model.design.names())
                .pop()
                .unwrap_or_default(),
            missing_features: missing_features(&entities.model, features),
            base: Base::GivenOnly,
        })
    }

    /// Every manager or agency, best predicted first.
    pub fn all_scores(&self, model: ModelKind) -> Result<Value, Refusal> {
        let (version, ranked) = self.ranking(model)?;
        let items: Vec<Value> = ranked
            .iter()
            .map(|r| {
                json!({
                    "rank": r.rank, "id": r.id, "predicted_score": r.predicted_score,
                    "actual_score": r.actual_score, "drivers": r.drivers, "objective": r.objective,
                })
            })
            .collect();
        Ok(json!({ "model_version": version, "count": items.len(), "items": items }))
    }

    /// Every manager or agency, best predicted first, with the champion's version: what
    /// `all_scores` answers as JSON and the console shows as a table.
    pub fn ranking(&self, model: ModelKind) -> Result<(u32, Vec<Ranked<'_>>), Refusal> {
        let entities = self.entities(model)?;
        let mut order: Vec<usize> = (0..entities.ids.len()).collect();
        order.sort_by(|a, b| entities.predicted[*b].total_cmp(&entities.predicted[*a]));
        let ranked = order
            .iter()
            .enumerate()
            .map(|(rank, &i)| Ranked {
                rank: rank + 1,
                id: &entities.ids[i],
                predicted_score: entities.predicted[i],
                actual_score: entities.actual[i],
                drivers: entities.drivers.get(i).map_or(&[][..], Vec::as_slice),
                objective: entities.support.get(i),
            })
            .collect();
        Ok((entities.model.meta.version, ranked))
    }

    /// Clients by churn probability, highest first, one page at a time.
    pub fn all_clients(&self, page: usize, page_size: usize, risk: Option<&str>) -> Result<Value, Refusal> {
        let clients = self.clients()?;
        let scores = clients.scores()?;
        let managers = clients.features.column("ges").ok().and_then(|c| c.str().ok());
        let order: Vec<usize> = scores
            .by_risk
            .iter()
            .copied()
            .filter(|&i| risk.is_none_or(|r| Risk::of(scores.rates[i], &self.churn_config).name() == r))
            .collect();
        let total = order.len();
        let items: Vec<Value> = order
            .iter()
            .skip((page - 1).saturating_mul(page_size))
            .take(page_size)
            .map(|&i| {
                let rate = scores.rates[i];
                json!({
                    "client_id": clients.ids[i], "manager_id": managers.and_then(|m| m.get(i)),
                    "churn_probability": scores.probabilities[i],
                    "churn_rate": clients.model.calibration.is_some().then_some(rate),
                    "risk_level": Risk::of(rate, &self.churn_config).name(),
                })
            })
            .collect();
        Ok(json!({
            "model_version": clients.model.meta.version,
            "page": page, "page_size": page_size, "total": total,
            "pages": total.div_ceil(page_size.max(1)),
            "items": items,
        }))
    }

    /// A client's top `n` products (not ones they hold).
    pub fn recommend(&self, client_id: i64, n: usize) -> Result<Value, Refusal> {
        let r = self
            .recommender
            .as_ref()
            .ok_or(Refusal::NoModel(ModelKind::Recommender))?;
        let held = r
            .held
            .get(&client_id)
            .ok_or_else(|| Refusal::NotFound(format!("client {client_id} is not a current client")))?;
        let saved = &r.saved;
        let products: Vec<Product> = saved
            .model
            .recommend(held, n)
            .into_iter()
            .enumerate()
            .map(|(rank, (item, score))| Product {
                rank: rank + 1,
                product_id: saved.model.items.get(item).cloned().unwrap_or_default(),
                product_name: saved.names.get(item).cloned().unwrap_or_default(),
                category: saved.categories.get(item).cloned().unwrap_or_default(),
                score,
            })
            .collect();
        Ok(json!({
            "client_id": client_id,
            "method": saved.model.method.name(),
            "held_products": held.len(),
            "recommendations": products,
        }))
    }

    /// The `n` current clients most likely to take `product_id` (the seed's "which clients to
    /// target for a product"): those whose own list puts it highest, then by score, clients
    /// holding it left out; as `campaigns/targets.parquet` ranks them.
    pub fn clients_for(&self, product_id: &str, n: usize) -> Result<Value, Refusal> {
        let r = self
            .recommender
            .as_ref()
            .ok_or(Refusal::NoModel(ModelKind::Recommender))?;
        let model = &r.saved.model;
        let item = model.items.iter().position(|p| p == product_id).ok_or_else(|| {
            Refusal::NotFound(format!(
                "product {product_id} is not one the recommender knows ({})",
                model.items.join(", ")
            ))
        })?;
        // By the product's place in each client's own list, then the score, then the id:
        // scores compare only within a client (one holding nothing is scored by popularity).
        // (rank, holds nothing, score, client): a client holding nothing is scored by
        // popularity counts, so it comes after the known clients of the same rank.
        let mut scored: Vec<(usize, bool, f64, i64)> = r
            .held
            .iter()
            .filter_map(|(client, held)| {
                model
                    .rank_of(held, item)
                    .map(|(rank, s)| (rank, held.is_empty(), s, *client))
            })
            .collect();
        let better = |a: &(usize, bool, f64, i64), b: &(usize, bool, f64, i64)| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then(b.2.total_cmp(&a.2))
                .then(a.3.cmp(&b.3))
        };
        if scored.len() > n && n > 0 {
            scored.select_nth_unstable_by(n - 1, better);
            scored.truncate(n);
        }
        scored.sort_by(better);
        scored.truncate(n);
        let clients: Vec<Value> = scored
            .iter()
            .map(|(rank, cold, score, client)| {
                json!({ "client_id": client, "rank_for_client": rank, "holds_nothing": cold, "score": score })
            })
            .collect();
        Ok(json!({
            "product_id": product_id,
            "product_name": r.saved.names.get(item).cloned().unwrap_or_default(),
            "method": model.method.name(),
            "snapshot": self.key.snapshot.map(|d| d.to_string()),
            "candidates": r.held.values().filter(|held| !held.contains(&item)).count(),
            "clients": clients,
        }))
    }

    /// Headline figures of the latest snapshot.
    pub fn summary(&self) -> Value {
        let mut out = json!({ "snapshot": self.key.snapshot.map(|d| d.to_string()) });
        if let Some(c) = &self.clients
            && let Ok(scores) = c.scores()
        {
            let mut by_risk: HashMap<&str, usize> = HashMap::new();
            for rate in &scores.rates {
                *by_risk.entry(Risk::of(*rate, &self.churn_config).name()).or_insert(0) += 1;
            }
            let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
            out["clients"] = json!({
                "count": c.ids.len(),
                "mean_churn_probability": mean(&scores.probabilities),
                "expected_churn_rate": c.model.calibration.is_some().then(|| mean(&scores.rates)),
                "by_risk": by_risk,
                "model_version": c.model.meta.version,
            });
        }
        for (name, e) in [("managers", &self.managers), ("agencies", &self.agencies)] {
            if let Some(e) = e {
                let best = (0..e.ids.len()).max_by(|a, b| e.predicted[*a].total_cmp(&e.predicted[*b]));
                out[name] = json!({
                    "count": e.ids.len(),
                    "mean_predicted_score": e.predicted.iter().sum::<f64>() / e.predicted.len().max(1) as f64,
                    "best": best.map(|i| json!({ "id": e.ids[i], "predicted_score": e.predicted[i] })),
                    "model_version": e.model.meta.version,
                });
            }
        }
        if let Some(r) = &self.recommender {
            out[ModelKind::Recommender.as_str()] =
                json!({ "method": r.saved.model.method.name(), "clients": r.held.len() });
        }
        out
    }
}

/// The model's features `features` does not give, in the model's order.
fn missing_features(model: &TabularModel, features: &Map<String, Value>) -> Vec<String> {
    model
        .design
        .inputs()
        .filter(|name| features.get(*name).is_none_or(Value::is_null))
        .map(str::to_string)
        .collect()
}

/// A one-row frame from feature values given by name; every name must be one the model reads,
/// and every category one it knows (an unseen one would be read as none of them, silently).
fn frame_from_features(model: &TabularModel, features: &Map<String, Value>, field: &str) -> Result<DataFrame, Refusal> {
    let design = &model.design;
    let at = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    // With no feature given the model answers for an unknown client — a confident-looking
    // number about nobody.
    if features.is_empty() {
        return Err(Refusal::Invalid {
            field: field.to_string(),
            message: format!(
                "no feature given; this model reads {} (GET /api/v1/openapi.json lists them)",
                model.design.inputs().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    for name in features.keys() {
        let known = design.numeric.contains(name) || design.categorical.iter().any(|(c, _)| c == name);
        if !known {
            return Err(Refusal::Invalid {
                field: at(name),
                message: "not a feature of this model nor a seed system name for one (GET /docs lists both)".into(),
            });
        }
    }
    let mut columns = Vec::new();
    for name in &design.numeric {
        let value = match features.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().ok_or_else(|| Refusal::Invalid {
                field: at(name),
                message: format!("expected a number, got {v}"),
            })?),
        };
        // XGBoost reads 32-bit floats: beyond their range a value would arrive as infinity.
        if let Some(v) = value.filter(|v| v.abs() > f64::from(f32::MAX)) {
            return Err(Refusal::Invalid {
                field: at(name),
                message: format!("{v:e} is beyond the range the model reads (±3.4e38)"),
            });
        }
        columns.push(Column::new(name.as_str().into(), [value]));
    }
    for (name, categories) in &design.categorical {
        let value = match features.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if categories.contains(s) => Some(s.clone()),
            Some(Value::String(s)) => {
                return Err(Refusal::Invalid {
                    field: at(name),
                    message: format!(
                        "\"{s}\" is not a category the model knows; expected one of {}",
                        categories.join(", ")
                    ),
                });
            }
            Some(v) => {
                return Err(Refusal::Invalid {
                    field: at(name),
                    message: format!("expected text, got {v}"),
                });
            }
        };
        columns.push(Column::new(name.as_str().into(), [value]));
    }
    DataFrame::new_infer_height(columns).map_err(|e| Refusal::Internal(e.to_string()))
}
