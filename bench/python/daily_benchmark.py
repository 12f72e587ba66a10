#!/usr/bin/env python3
"""bankml's daily benchmark (`bankml run daily-benchmark`, src/jobs/benchmark.rs), ported to
pandas + pyarrow + scikit-learn + xgboost + scipy + numpy, to measure what the same work costs
in Python.

    python bench/python/daily_benchmark.py --dir PROJECT [--check]

Stages, each timed (wall and CPU seconds):
  ingest       the latest snapshot's six tables and the matured snapshot's (the newest whose
               date + churn horizon <= the latest date), read with pyarrow, validated and
               cleaned as src/data/{source,validate,clean}.rs do
  features     client features of both snapshots, the matured one's churn label from the
               latest holdings, manager and agency features of the latest (src/data/features.rs)
  predict      the champions (data/models/<kind>/aliases.json) with xgboost from model.json, on
               the design matrix of design.json (src/models/design.rs); churn on the matured
               snapshot and on the latest (bankml predicts the latest for its CBPE estimate)
  metrics      churn: ROC AUC, average precision, KS, log loss, Brier, precision/recall/F1 at
               the threshold, the high-risk figures through the isotonic calibrator;
               managers/agencies: RMSE, MAE, R2, Spearman, within 15 %, top-10 overlap
  drift        per feature PSI (+ KS, Jensen-Shannon, Wasserstein; chi-square for categories)
               against the champion's reference.json, learned thresholds and the verdict
               (src/metrics/{drift,reference}.rs)
  recommender  the champion's method refitted at the holdout cut-off, evaluated on the products
               opened since (src/models/recommender.rs, src/metrics/ranking.rs)

The last line of stdout is one JSON object: {"stages": {...}, "cpu_seconds": {...},
"total_seconds": ..., "peak_rss_mib": ..., "figures": {...}, "check": {...}}.

--kept does what bankml does when its feature store is fresh: features read from
data/processed/<date>/, the scoring job's stored churn scores reused, the latest snapshot not
validated again (see README.md: which bankml run each mode compares with).

--check compares the figures with bankml's newest reports/daily-benchmark/<id>/report.json and
the features with bankml's feature store (data/processed/<date>/*.parquet); the comparison is
not part of the timed stages.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports: they are part of the cost

import argparse
import calendar
import hashlib
import json
import math
import resource
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sparse
import scipy.spatial.distance as distance
import scipy.special as special
import scipy.stats as stats
import xgboost as xgb
import yaml
from sklearn import metrics as skm

# ----------------------------------------------------------------------------------------------
# Dates: day numbers since 1970-01-01, as bankml (Arrow's date32) holds them.

EPOCH = date(1970, 1, 1).toordinal()


def to_days(d: date) -> int:
    return d.toordinal() - EPOCH


def from_days(n: int) -> date:
    return date.fromordinal(int(n) + EPOCH)


def month_start(n: int) -> int:
    return to_days(from_days(n).replace(day=1))


def month_end_after(n: int, months: int) -> int:
    d = from_days(n)
    year, month = divmod(d.year * 12 + d.month - 1 + months, 12)
    month += 1
    return to_days(date(year, month, calendar.monthrange(year, month)[1]))


def parse_date(text: str) -> int | None:
    try:
        return to_days(date.fromisoformat(text)) if len(text) == 10 else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------
# Settings: config/bankml.yaml over bankml's defaults, the job's params.

DEFAULTS = {
    "data": {
        "raw_dir": "data/raw",
        "processed_dir": "data/processed",
        "scores_dir": "data/scores",
        "jobs_dir": "jobs",
        "reports_dir": "reports",
    },
    "ingest": {"columns": {}, "extra_columns": "warn"},
    "cleaning": {"cap_quantile": 0.999, "min_age_years": 16.0, "max_age_years": 110.0},
    "features": {"churn_horizon_days": 90},
    "models": {
        "dir": "data/models",
        "churn": {"threshold": 0.5, "high_risk": 0.3},
        "recommender": {
            "method": None,
            "k": 5,
            "svd_components": 30,
            "knn_neighbours": 10,
            "ease_lambda": 50.0,
            "holdout_months": 3,
            "popularity_months": 6,
        },
    },
}


def merged(defaults: dict, given: dict | None) -> dict:
    out = dict(defaults)
    for key, value in (given or {}).items():
        out[key] = merged(defaults[key], value) if isinstance(defaults.get(key), dict) and isinstance(value, dict) else value
    return out


class Settings:
    def __init__(self, project: Path, config: Path | None, job: str):
        path = config or project / "config" / "bankml.yaml"
        given = yaml.safe_load(path.read_text()) if path.is_file() else {}
        self.config = merged(DEFAULTS, given)
        data = self.config["data"]
        self.raw_dir = project / data["raw_dir"]
        self.processed_dir = project / data["processed_dir"]
        self.scores_dir = project / data["scores_dir"]
        self.reports_dir = project / data["reports_dir"]
        self.models_dir = project / self.config["models"]["dir"]
        job_file = project / data["jobs_dir"] / f"{job}.yaml"
        self.params = (yaml.safe_load(job_file.read_text()) or {}).get("params") or {} if job_file.is_file() else {}
        self.horizon = int(self.config["features"]["churn_horizon_days"])
        self.cleaning = self.config["cleaning"]
        self.churn = self.config["models"]["churn"]
        self.recommender = self.config["models"]["recommender"]

    def param(self, name, default):
        value = self.params.get(name)
        return default if value is None or isinstance(value, bool) else value

    def wants(self, model: str) -> bool:
        return model in self.params.get("models", ["churn", "manager", "agency", "recommender"])


# ----------------------------------------------------------------------------------------------
# Ingest: src/data/schema.rs, source.rs, validate.rs, clean.rs.

SCHEMA = {
    "clients": [
        ("cli", "int", True), ("sex", "str", False), ("birth_date", "date", False), ("segment", "str", False),
        ("age", "str", True), ("ges", "str", True), ("client_since", "date", True), ("region", "str", False),
        ("income_band", "str", False), ("closed_on", "date", False),
    ],
    "holdings": [
        ("cli", "int", True), ("product_id", "str", True), ("opened_on", "date", True),
        ("closed_on", "date", False), ("balance", "float", False),
    ],
    "catalog": [("product_id", "str", True), ("product_name", "str", True), ("category", "str", True)],
    "managers": [
        ("ges", "str", True), ("age", "str", True), ("hired_on", "date", True),
        ("objective", "int", False), ("performance_score", "float", False),
    ],
    "agencies": [("age", "str", True), ("region", "str", False), ("performance_score", "float", False)],
    "activity": [
        ("cli", "int", True), ("month", "date", True), ("logins", "int", False),
        ("transactions", "int", False), ("complaints", "int", False),
    ],
}
KEYS = {
    "clients": ["cli"], "holdings": ["cli", "product_id", "opened_on"], "catalog": ["product_id"],
    "managers": ["ges"], "agencies": ["age"], "activity": ["cli", "month"],
}
REFERENCES = [
    ("holdings", "cli", "clients", "cli"), ("holdings", "product_id", "catalog", "product_id"),
    ("clients", "ges", "managers", "ges"), ("clients", "age", "agencies", "age"),
    ("managers", "age", "agencies", "age"), ("activity", "cli", "clients", "cli"),
]
UNKNOWN = "Unknown"
MIN_VALUES_TO_CAP = 1000


class Problems:
    def __init__(self):
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, what: str, rows: int = 1):
        if rows:
            self.errors.append(f"{what} ({rows} row(s))" if rows > 1 else what)

    def warning(self, what: str):
        self.warnings.append(what)


def convert_column(column: pa.ChunkedArray, kind: str, where: str, problems: Problems) -> pa.ChunkedArray:
    """The column as bankml types it (Int64, Float64, String, or a date as int32 day numbers);
    lossless widenings of a typed export, text parsed, cells that do not fit are errors."""
    t = column.type
    if kind == "str":
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return column.cast(pa.large_string())
        if pa.types.is_integer(t):
            return column.cast(pa.large_string())
    elif kind == "int":
        if pa.types.is_integer(t):
            return column.cast(pa.int64())
    elif kind == "float":
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return column.cast(pa.float64())
    elif kind == "date":
        if pa.types.is_date32(t):
            return column.cast(pa.int32())
        if pa.types.is_date64(t) or pa.types.is_timestamp(t):
            return column.cast(pa.date32()).cast(pa.int32())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        text = pc.utf8_trim_whitespace(column.cast(pa.large_string()))
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.large_string()), text)
        if kind == "date":
            parsed = pc.strptime(pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True)
            parsed = parsed.cast(pa.date32()).cast(pa.int32())
        else:
            values = pd.to_numeric(text.to_pandas(), errors="coerce")
            if kind == "int":
                values = values.where(np.floor(values) == values)
                parsed = pa.chunked_array([pa.array(values, type=pa.float64(), from_pandas=True)]).cast(pa.int64())
            else:
                parsed = pa.chunked_array([pa.array(values.where(np.isfinite(values)), type=pa.float64(), from_pandas=True)])
        bad = pc.sum(pc.and_(pc.is_valid(text), pc.is_null(parsed))).as_py() or 0
        problems.error(f"{where}: text that is not {kind}", bad)
        return parsed
    if kind == "int" and pa.types.is_floating(t):
        values = column.to_numpy()
        whole = np.isnan(values) | ((np.floor(values) == values) & (np.abs(values) < 9.0e15))
        problems.error(f"{where}: numbers that are not whole", int((~whole).sum()))
        return pa.chunked_array([pa.array(np.where(whole, values, np.nan), from_pandas=True)]).cast(pa.int64())
    problems.error(f"{where}: stored as {t}, expected {kind}")
    return pa.nulls(len(column), pa.float64())


def read_table(folder: Path, table: str, settings: Settings, problems: Problems) -> pd.DataFrame | None:
    path = folder / f"{table}.parquet"
    others = [folder / f"{table}.{ext}" for ext in ("xlsx", "csv") if (folder / f"{table}.{ext}").is_file()]
    if others:
        problems.error(f"{folder}: {table} as xlsx/csv is not supported by this port (parquet only)")
        return None
    if not path.is_file():
        problems.error(f"{folder}: no {table}.parquet")
        return None
    names = pq.read_schema(path).names
    if len(set(n.strip() for n in names)) != len(names):
        problems.error(f"{path}: a column is named twice")
        return None
    mapping = settings.config["ingest"]["columns"].get(table) or {}
    sources = {}
    for name, _, _ in SCHEMA[table]:
        wanted = mapping.get(name, name)
        found = [n for n in names if n.strip() == wanted]
        if not found:
            problems.error(f"{path}: missing column {wanted}")
        else:
            sources[name] = found[0]
    extra = [n for n in names if n.strip() not in {s.strip() for s in sources.values()}]
    policy = settings.config["ingest"]["extra_columns"]
    for name in extra:
        (problems.error if policy == "error" else problems.warning if policy == "warn" else (lambda _: None))(
            f"{path}: extra column {name} is not used"
        )
    if len(sources) != len(SCHEMA[table]):
        return None
    raw = pq.read_table(path, columns=list(sources.values()))
    columns = {
        name: convert_column(raw.column(sources[name]), kind, f"{path} {name}", problems)
        for name, kind, _ in SCHEMA[table]
    }
    frame = pa.table(columns).to_pandas()
    for name, kind, _ in SCHEMA[table]:
        if kind == "date":
            frame[name] = frame[name].astype("float64")  # day numbers, NaN for none
    return frame


def validate(tables: dict[str, pd.DataFrame], problems: Problems):
    """src/data/validate.rs: required values, unique keys, ranges, closing before opening,
    references across tables."""
    for table, frame in tables.items():
        for name, _, required in SCHEMA[table]:
            if required:
                problems.error(f"{table}: {name} is required but empty", int(frame[name].isna().sum()))
        key = KEYS[table]
        complete = frame[key].dropna()
        problems.error(f"{table}: duplicate {', '.join(key)}", int(complete.duplicated().sum()))
        ranges = {
            "holdings": [("balance", 0.0, 1e12)],
            "managers": [("performance_score", 0.0, 100.0), ("objective", 0.0, 1e9)],
            "agencies": [("performance_score", 0.0, 100.0)],
            "activity": [("logins", 0.0, 1e6), ("transactions", 0.0, 1e6), ("complaints", 0.0, 1e4)],
        }.get(table, [])
        for name, low, high in ranges:
            values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
            present = ~pd.isna(frame[name]).to_numpy()
            bad = present & (~np.isfinite(values) | (values < low) | (values > high))
            problems.error(f"{table}: {name} out of range [{low}, {high}]", int(bad.sum()))
        order = {"holdings": ("opened_on", "closed_on"), "clients": ("client_since", "closed_on")}.get(table)
        if order:
            start, end = frame[order[0]].to_numpy(), frame[order[1]].to_numpy()
            problems.error(f"{table}: {order[1]} before {order[0]}", int((end < start).sum()))
    for source, column, target, target_column in REFERENCES:
        if source in tables and target in tables:
            values = tables[source][column].dropna()
            unknown = ~values.isin(tables[target][target_column].dropna().unique())
            problems.error(f"{source}: {column} not in {target}", int(unknown.sum()))


def nearest_rank(values: np.ndarray, q: float) -> float:
    rank = min(max(math.ceil(q * len(values)), 1), len(values)) - 1
    return float(np.partition(values, rank)[rank])


def clean(tables: dict[str, pd.DataFrame], today: int, cleaning: dict) -> dict[str, int]:
    """src/data/clean.rs, in its order; returns the rows each rule changed."""
    report = {}
    clients, holdings, activity = tables["clients"], tables["holdings"], tables["activity"]
    for column in ["sex", "segment", "region", "income_band"]:
        report[f"clients.{column} missing"] = int(clients[column].isna().sum())
        clients[column] = clients[column].fillna(UNKNOWN)
    report["holdings.balance missing"] = int(holdings["balance"].isna().sum())
    holdings["balance"] = holdings["balance"].fillna(0.0)
    for column in ["logins", "transactions", "complaints"]:
        report[f"activity.{column} missing"] = int(activity[column].isna().sum())
        activity[column] = activity[column].fillna(0).astype("int64")
    age = (today - clients["birth_date"]) / 365.25
    implausible = clients["birth_date"].notna() & ~((age >= cleaning["min_age_years"]) & (age <= cleaning["max_age_years"]))
    report["clients.birth_date implausible"] = int(implausible.sum())
    clients.loc[implausible, "birth_date"] = np.nan
    q = cleaning["cap_quantile"]
    category = holdings["product_id"].map(tables["catalog"].set_index("product_id")["category"])
    balance = holdings["balance"].to_numpy(copy=True)
    capped = 0
    for name in category.dropna().unique():
        in_category = (category == name).to_numpy()
        positive = balance[in_category & (balance > 0)]
        if len(positive) >= MIN_VALUES_TO_CAP:
            cap = nearest_rank(positive, q)
            over = in_category & (balance > cap)
            capped += int(over.sum())
            balance[over] = cap
    holdings["balance"] = balance
    report["holdings.balance capped"] = capped
    for column in ["logins", "transactions", "complaints"]:
        values = activity[column].to_numpy()
        if len(values) >= MIN_VALUES_TO_CAP:
            cap = int(nearest_rank(values.astype("float64"), q))
            report[f"activity.{column} capped"] = int((values > cap).sum())
            activity[column] = np.minimum(values, cap)
    return report


def load_snapshot(settings: Settings, day: int, validated_before: bool = False) -> dict:
    """Read, validated (unless its exact exports passed before: `--kept`) and cleaned."""
    folder = settings.raw_dir / from_days(day).isoformat()
    problems = Problems()
    tables = {}
    for table in SCHEMA:
        frame = read_table(folder, table, settings, problems)
        if frame is not None:
            tables[table] = frame
    if not validated_before:
        validate(tables, problems)
    if problems.errors or len(tables) != len(SCHEMA):
        raise SystemExit(f"{folder}: {len(problems.errors)} problem(s):\n  " + "\n  ".join(problems.errors[:50]))
    cleaning = clean(tables, day, settings.cleaning)
    return {"date": day, "tables": tables, "warnings": problems.warnings, "cleaning": cleaning}


def list_snapshots(raw_dir: Path) -> list[int]:
    days = [parse_date(p.name) for p in raw_dir.iterdir() if p.is_dir()]
    found = sorted(d for d in days if d is not None)
    if not found:
        raise SystemExit(f"no snapshot folders (YYYY-MM-DD) in {raw_dir}")
    return found


# ----------------------------------------------------------------------------------------------
# Features: src/data/features.rs.

CATEGORIES = ["accounts", "savings", "cards", "consumer_loans", "mortgages", "insurance", "investments",
              "pensions", "digital", "business", "services"]
DEPOSIT = ["accounts", "savings", "investments", "pensions"]
CREDIT = ["cards", "consumer_loans", "mortgages", "business"]
DEPOSIT_CODES = [CATEGORIES.index(c) for c in DEPOSIT]
CREDIT_CODES = [CATEGORIES.index(c) for c in CREDIT]
DAYS_PER_MONTH = 30.4375
CLOSING_HORIZON_DAYS = 90
INHERITED_FEATURES = ["manager_score", "agency_score"]


def holdings_at(snapshot: dict, day: int) -> pd.DataFrame:
    """Holdings opened by `day`, with their category (as its index in CATEGORIES, -1 for
    another) and `active` at `day`."""
    h = snapshot["tables"]["holdings"]
    h = h[h["opened_on"].to_numpy() <= day]
    catalog = snapshot["tables"]["catalog"]
    codes = pd.Categorical(catalog["category"], categories=CATEGORIES).codes
    product = pd.Index(catalog["product_id"]).get_indexer(h["product_id"])
    closed = h["closed_on"].to_numpy()
    return pd.DataFrame({
        "cli": h["cli"].to_numpy(),
        "category": np.where(product >= 0, codes[product], -1),
        "opened": h["opened_on"].to_numpy(),
        "closed": closed,
        "balance": h["balance"].to_numpy(),
        "active": np.isnan(closed) | (closed > day),
    })


def client_features(snapshot: dict) -> pd.DataFrame:
    day = snapshot["date"]
    tables = snapshot["tables"]
    h = holdings_at(snapshot, day)
    active, category = h["active"].to_numpy(), h["category"].to_numpy()
    per_row = {
        "n_products_active": active,
        "n_products_closed_90d": h["closed"].to_numpy() > day - 90,
        "n_products_opened_90d": h["opened"].to_numpy() > day - 90,
        "n_products_opened_month": h["opened"].to_numpy() >= month_start(day),
        "balance_total": np.where(active, h["balance"].to_numpy(), 0.0),
        "balance_deposits": np.where(active & np.isin(category, DEPOSIT_CODES), h["balance"].to_numpy(), 0.0),
        "balance_credit": np.where(active & np.isin(category, CREDIT_CODES), h["balance"].to_numpy(), 0.0),
    }
    for code, c in enumerate(CATEGORIES):
        per_row[f"n_active_{c}"] = active & (category == code)
    # Indicators as integers: pandas sums booleans per group through float64 and a downcast check.
    rows = pd.DataFrame({name: v.astype("int8") if v.dtype == bool else v for name, v in per_row.items()})
    rows["cli"] = h["cli"].to_numpy()
    rows["opened"] = h["opened"].to_numpy()
    rows["closed"] = h["closed"].to_numpy()
    grouped = rows.groupby("cli", sort=False)
    per_client = grouped[list(per_row)].sum()
    per_client["n_products_ever"] = grouped.size()
    latest = grouped[["opened", "closed"]].max()
    per_client["days_since_last_opening"] = day - latest["opened"]
    per_client["days_since_last_closing"] = (day - latest["closed"]).clip(upper=CLOSING_HORIZON_DAYS)
    per_client["n_categories_active"] = (per_client[[f"n_active_{c}" for c in CATEGORIES]] > 0).sum(axis=1)

    activity = tables["activity"]
    months = [month_start(month_end_after(day, -k)) for k in range(3)]
    month = activity["month"].to_numpy()
    window = activity[(month >= months[2]) & (month <= months[0])]
    month = window["month"].to_numpy()
    act = {"cli": window["cli"].to_numpy()}
    for measure in ["logins", "transactions"]:
        values = window[measure].to_numpy()
        for k in range(3):
            act[f"{measure}_m{k}"] = np.where(month == months[k], values, 0)
    act["complaints_3m"] = window["complaints"].to_numpy()
    act["complaints_m0"] = np.where(month == months[0], window["complaints"].to_numpy(), 0)
    act = pd.DataFrame(act).groupby("cli", sort=False)
    per_client_activity = act.sum()
    per_client_activity["months_with_activity"] = act.size()

    clients = tables["clients"]
    since, closed_on = clients["client_since"].to_numpy(), clients["closed_on"].to_numpy()
    clients = clients[(since <= day) & (np.isnan(closed_on) | (closed_on > day))]
    out = clients[["cli", "ges", "age", "sex", "segment", "region", "income_band"]].copy()
    out.insert(0, "snapshot", from_days(day))
    # polars divides by a literal as a multiplication by its reciprocal (1 ulp from a true
    # division): the same here, or values on the reference's decile edges change bins.
    out["age_years"] = (day - clients["birth_date"]) * (1 / 365.25)
    out["tenure_months"] = (day - clients["client_since"]) * (1 / DAYS_PER_MONTH)
    out = out.join(per_client, on="cli").join(per_client_activity, on="cli")
    counts = (["n_products_ever", "n_products_active", "n_products_closed_90d", "n_products_opened_90d",
               "n_products_opened_month", "n_categories_active"] + [f"n_active_{c}" for c in CATEGORIES]
              + [f"{m}_m{k}" for m in ["logins", "transactions"] for k in range(3)]
              + ["complaints_3m", "complaints_m0", "months_with_activity"])
    out[counts] = out[counts].fillna(0).astype("int64")
    for name in ["balance_total", "balance_deposits", "balance_credit"]:
        out[name] = out[name].fillna(0.0)
    for measure in ["logins", "transactions"]:
        m = [out[f"{measure}_m{k}"].astype("float64") for k in range(3)]
        out[f"{measure}_avg_3m"] = (m[0] + m[1] + m[2]) * (1 / 3.0)
        out[f"{measure}_trend"] = m[0] - (m[1] + m[2]) * (1 / 2.0)
    out["manager_score"] = out["ges"].map(tables["managers"].set_index("ges")["performance_score"])
    out["agency_score"] = out["age"].map(tables["agencies"].set_index("age")["performance_score"])
    columns = (["snapshot", "cli", "ges", "age", "sex", "segment", "region", "income_band", "age_years",
                "tenure_months", "n_products_ever", "n_products_active", "n_categories_active",
                "n_products_opened_90d", "n_products_opened_month", "n_products_closed_90d",
                "days_since_last_opening", "days_since_last_closing"]
               + [f"n_active_{c}" for c in CATEGORIES] + ["balance_total", "balance_deposits", "balance_credit"]
               + [f"{m}_{s}" for m in ["logins", "transactions"] for s in ["m0", "avg_3m", "trend"]]
               + ["complaints_m0", "complaints_3m", "months_with_activity", "manager_score", "agency_score"])
    return out[columns].sort_values("cli").reset_index(drop=True)


def add_churn_label(features: pd.DataFrame, day: int, later: dict | None, horizon: int) -> pd.DataFrame:
    """`churn` = 1 when the client held a product at `day` and none `horizon` days later, as
    the later snapshot's holdings show; missing while that snapshot does not reach the horizon."""
    features = features.copy()
    if later is None or later["date"] < day + horizon:
        features["churn"] = pd.array([pd.NA] * len(features), dtype="Int32")
        return features
    h = holdings_at(later, later["date"])
    opened, closed = h["opened"].to_numpy(), h["closed"].to_numpy()

    def active_at(t):
        return (opened <= t) & (np.isnan(closed) | (closed > t))

    outcome = pd.DataFrame({
        "cli": h["cli"].to_numpy(),
        "then": active_at(day).astype("int64"),
        "after": active_at(day + horizon).astype("int64"),
    })
    outcome = outcome.groupby("cli", sort=False).sum()
    churn = ((outcome["then"] > 0) & (outcome["after"] == 0)).astype("int32")
    features["churn"] = features["cli"].map(churn).fillna(0).astype("int32")
    return features


MIX = [
    ("share_credit", ["consumer_loans", "mortgages"]),
    ("share_savings", ["savings", "investments", "pensions"]),
    ("share_insurance", ["insurance"]),
    ("share_cards", ["cards"]),
    ("share_digital", ["digital"]),
]
PORTFOLIO_COLUMNS = [
    "n_clients", "n_products_active", "n_products_managed", "products_per_client", "new_products_month",
    "new_products_90d", "closed_products_90d", "churned_clients_90d", "churn_rate_90d", "balance_total",
    "balance_per_client", "mean_client_logins", "complaints_3m", "mean_client_tenure_months", "mean_client_age",
    "share_credit", "share_savings", "share_insurance", "share_cards", "share_digital",
]
ZERO_COUNTS = ["n_clients", "n_products_active", "n_products_managed", "new_products_month", "new_products_90d",
               "closed_products_90d", "churned_clients_90d", "complaints_3m"]
ZERO_FLOATS = ["churn_rate_90d", "balance_total"] + [name for name, _ in MIX]


def portfolio(clients: pd.DataFrame, snapshot: dict, key: str) -> pd.DataFrame:
    day = snapshot["date"]
    mix_counts = clients[[key]].copy()
    for name, categories in MIX:
        mix_counts[f"{name}_count"] = clients[[f"n_active_{c}" for c in categories]].sum(axis=1)
    g = clients.groupby(key, sort=False)
    out = pd.DataFrame({
        "n_clients": g.size(),
        "n_products_active": g["n_products_active"].sum(),
        "n_products_managed": g["n_products_ever"].sum(),
        "new_products_month": g["n_products_opened_month"].sum(),
        "new_products_90d": g["n_products_opened_90d"].sum(),
        "closed_products_90d": g["n_products_closed_90d"].sum(),
        "balance_total": g["balance_total"].sum(),
        "mean_client_logins": g["logins_m0"].mean(),
        "complaints_3m": g["complaints_3m"].sum(),
        "mean_client_tenure_months": g["tenure_months"].mean(),
        "mean_client_age": g["age_years"].mean(),
    })
    if key == "ges":
        out["agencies_covered"] = g["age"].nunique()
    else:
        out["managers_with_clients"] = g["ges"].nunique()
    out = out.join(mix_counts.groupby(key, sort=False).sum())
    every = snapshot["tables"]["clients"]
    closed = every["closed_on"].to_numpy()
    churned = every[(closed > day - 90) & (closed <= day)].groupby(key, sort=False).size()
    out = out.join(churned.rename("churned_clients_90d"), how="outer")
    out["n_clients"] = out["n_clients"].fillna(0)
    churned = out["churned_clients_90d"].fillna(0)
    active_products = out["n_products_active"].astype("float64")
    out["products_per_client"] = active_products / out["n_clients"]
    out["balance_per_client"] = out["balance_total"] / out["n_clients"]
    out["churned_clients_90d"] = churned
    out["churn_rate_90d"] = churned / (out["n_clients"] + churned)
    for name, _ in MIX:
        out[name] = np.where(active_products > 0, out[f"{name}_count"] / active_products, 0.0)
    return out


def zero_counts(frame: pd.DataFrame):
    frame[ZERO_COUNTS] = frame[ZERO_COUNTS].fillna(0).astype("int64")
    frame[ZERO_FLOATS] = frame[ZERO_FLOATS].fillna(0.0)


def attainment(frame: pd.DataFrame) -> pd.Series:
    objective = frame["objective"].astype("float64")
    return (frame["new_products_month"] / objective).where(objective > 0)


def manager_features(clients: pd.DataFrame, snapshot: dict) -> pd.DataFrame:
    day = snapshot["date"]
    out = snapshot["tables"]["managers"].join(portfolio(clients, snapshot, "ges"), on="ges")
    zero_counts(out)
    out.insert(0, "snapshot", from_days(day))
    out["agencies_covered"] = out["agencies_covered"].fillna(0).astype("int64")
    out["objective_attainment"] = attainment(out)
    out["tenure_years"] = (day - out["hired_on"]) * (1 / 365.25)
    columns = (["snapshot", "ges", "age"] + PORTFOLIO_COLUMNS
               + ["agencies_covered", "objective", "objective_attainment", "tenure_years", "performance_score"])
    return out[columns].sort_values("ges").reset_index(drop=True)


def agency_features(clients: pd.DataFrame, snapshot: dict) -> pd.DataFrame:
    day = snapshot["date"]
    managers = snapshot["tables"]["managers"].assign(tenure=lambda m: (day - m["hired_on"]) * (1 / 365.25))
    g = managers.groupby("age", sort=False)
    staff = pd.DataFrame({
        "n_managers": g.size(),
        "mean_manager_tenure_years": g["tenure"].mean(),
        "objective": g["objective"].sum(min_count=0),
    })
    out = snapshot["tables"]["agencies"].join(portfolio(clients, snapshot, "age"), on="age").join(staff, on="age")
    zero_counts(out)
    out.insert(0, "snapshot", from_days(day))
    out["clients_per_manager"] = out["n_clients"] / out["n_managers"]
    out["n_managers"] = out["n_managers"].fillna(0).astype("int64")
    out["managers_with_clients"] = out["managers_with_clients"].fillna(0).astype("int64")
    out["objective_attainment"] = attainment(out)
    columns = (["snapshot", "age", "region"] + PORTFOLIO_COLUMNS
               + ["n_managers", "managers_with_clients", "clients_per_manager", "mean_manager_tenure_years",
                  "objective_attainment", "performance_score"])
    return out[columns].sort_values("age").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Models: the registry, the design matrix, XGBoost, the isotonic calibrator.

TARGETS = {"churn": "churn", "manager": "performance_score", "agency": "performance_score"}


def champion_dir(settings: Settings, model: str) -> tuple[int, Path] | None:
    aliases = settings.models_dir / model / "aliases.json"
    version = json.loads(aliases.read_text()).get("champion") if aliases.is_file() else None
    return None if version is None else (version, settings.models_dir / model / str(version))


class Tabular:
    def __init__(self, version: int, folder: Path):
        self.version = version
        self.folder = folder
        self.design = json.loads((folder / "design.json").read_text())
        self.booster = xgb.Booster(model_file=str(folder / "model.json"))
        calibration = folder / "calibration.json"
        self.isotonic = json.loads(calibration.read_text())["isotonic"] if calibration.is_file() else None

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Numeric columns in order (missing: NaN), then one indicator per stored category; f32."""
        blocks = [frame[self.design["numeric"]].to_numpy(dtype="float64", na_value=np.nan).astype("float32")]
        for column, categories in self.design["categorical"]:
            blocks.append(np.column_stack([(frame[column] == c).to_numpy() for c in categories]).astype("float32"))
        return np.hstack(blocks)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if len(frame) == 0:
            return np.zeros(0, dtype="float32")
        return self.booster.inplace_predict(self.matrix(frame), missing=np.nan)

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        x, y = np.asarray(self.isotonic["x"]), np.asarray(self.isotonic["y"])
        return np.interp(np.clip(scores, x[0], x[-1]), x, y)


def isotonic_fit(scores: np.ndarray, labels: np.ndarray):
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(out_of_bounds="clip").fit(scores, labels).predict


# ----------------------------------------------------------------------------------------------
# Metrics: src/metrics/classification.rs, regression.rs, src/models/tabular.rs holdout_metrics.


def binary_metrics(truth: np.ndarray, scores32: np.ndarray, threshold: float, high_risk: float, model: Tabular) -> dict:
    labels = truth >= 0.5
    scores = scores32.astype("float64")
    predicted = scores >= threshold
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(labels, predicted, labels=[False, True]).ravel())
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predicted, average="binary", zero_division=0.0
    )
    fpr, tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
    auc = skm.roc_auc_score(labels, scores)
    rates = model.calibrated(scores) if model.isotonic is not None else isotonic_fit(scores, labels.astype(float))(scores)
    flagged = rates >= high_risk
    high = skm.precision_recall_fscore_support(labels, flagged, average="binary", zero_division=0.0)
    return {
        "rows": int(len(labels)),
        "positives": int(labels.sum()),
        "threshold": threshold,
        "roc_auc": float(auc),
        "gini": float(2 * auc - 1),
        "ks": float(max(0.0, np.max(tpr - fpr))),
        "average_precision": float(skm.average_precision_score(labels, scores)),
        "log_loss": float(skm.log_loss(labels, scores, labels=[False, True])),
        "brier": float(skm.brier_score_loss(labels, scores)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "high_risk": {
            "threshold": high_risk,
            "precision": float(high[0]),
            "recall": float(high[1]),
            "f1": float(high[2]),
            "clients": int(flagged.sum()),
        },
    }


def regression_metrics(truth32: np.ndarray, predicted32: np.ndarray) -> dict:
    truth = truth32.astype("float64")
    predicted = np.clip(predicted32.astype("float64"), 0.0, 100.0)
    error = np.abs(predicted - truth)
    k = 10
    by_truth = np.argsort(-truth, kind="stable")[:k]
    by_prediction = np.argsort(-predicted, kind="stable")[:k]
    spearman = stats.spearmanr(truth, predicted).statistic
    return {
        "rows": int(len(truth)),
        "rmse": float(skm.root_mean_squared_error(truth, predicted)),
        "mae": float(skm.mean_absolute_error(truth, predicted)),
        "r2": float(skm.r2_score(truth, predicted)),
        "within_15pct": float(np.mean(error <= 0.15 * np.abs(truth))),
        "spearman": 0.0 if np.isnan(spearman) else float(spearman),
        "top10_overlap": len(set(by_truth) & set(by_prediction)) / max(len(by_truth), 1),
    }


# ----------------------------------------------------------------------------------------------
# Drift: src/metrics/drift.rs and reference.rs, the part of src/jobs/benchmark.rs `drift`.

PSI_FLOOR = 0.0001


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    r = np.where(reference == 0.0, PSI_FLOOR, reference)
    c = np.where(current == 0.0, PSI_FLOOR, current)
    return float(np.sum((c - r) * np.log(c / r)))


def noise_floor(bins: int, current: int, reference: int, alpha: float) -> float:
    if bins < 2 or current == 0 or reference == 0:
        return 0.0
    effective = current * reference / (current + reference)
    return float(stats.chi2.ppf(1.0 - alpha, bins - 1) / effective)


def learned_threshold(monthly_psi: list, floor: float, sigmas: float) -> float:
    if len(monthly_psi) < 2:
        return floor
    values = np.asarray(monthly_psi)
    return max(float(values.mean() + sigmas * values.std()), floor)


def numeric_drift(reference: dict, column: pd.Series) -> dict | None:
    values = column.to_numpy(dtype="float64", na_value=np.nan)
    current = np.sort(values[np.isfinite(values)])
    if len(current) == 0:
        return None
    edges = np.asarray(reference["bin_edges"], dtype="float64")
    ends = np.concatenate([[0], np.searchsorted(current, edges, side="right"), [len(current)]])
    shares = np.diff(ends) / len(current)
    sketch = np.asarray(reference["sketch"], dtype="float64")
    ks = stats.ks_2samp(sketch, current, method="asymp").statistic
    n, m = reference["count"], len(current)
    ref_shares = np.asarray(reference["bin_shares"], dtype="float64")
    return {
        "psi": psi(ref_shares, shares),
        "jensen_shannon": float(distance.jensenshannon(ref_shares, shares, base=2)),
        "ks_statistic": float(ks),
        "ks_pvalue": float(special.kolmogorov(ks * math.sqrt(n * m / (n + m)))),
        "wasserstein": float(stats.wasserstein_distance(sketch, current)),
        "present": m,
        "bins": len(ref_shares),
    }


def categorical_drift(reference: dict, column: pd.Series) -> dict | None:
    current = column.dropna().value_counts()
    if current.sum() == 0:
        return None
    ref = pd.Series(reference["counts"], dtype="float64")
    categories = sorted(set(ref.index) | set(current.index))
    r = ref.reindex(categories, fill_value=0.0).to_numpy()
    c = current.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    rs, cs = r / r.sum(), c / c.sum()
    if len(categories) > 1:
        chi2, pvalue, _, _ = stats.chi2_contingency(np.vstack([r, c]), correction=False)
    else:
        chi2, pvalue = 0.0, 1.0
    return {
        "psi": psi(rs, cs),
        "jensen_shannon": float(distance.jensenshannon(rs, cs, base=2)),
        "chi2_statistic": float(chi2),
        "chi2_pvalue": float(pvalue),
        "present": int(c.sum()),
        "bins": len(reference["counts"]) + 1,
    }


def drift(model_dir: Path, frame: pd.DataFrame, settings: Settings) -> dict:
    min_rows = int(settings.param("drift_min_rows", 50))
    if len(frame) < min_rows:
        return {"note": f"{len(frame)} rows: too few for drift statistics (drift_min_rows: {min_rows})"}
    policy = {
        "psi_threshold": float(settings.param("psi_threshold", 0.1)),
        "drift_share": float(settings.param("drift_share", 0.5)),
        "sigmas": float(settings.param("drift_sigmas", 3.0)),
        "noise_alpha": float(settings.param("drift_noise_alpha", 1e-4)),
    }
    references = json.loads((model_dir / "reference.json").read_text())
    features, judged = {}, []
    for name in sorted(references):
        if name not in frame.columns:
            continue
        reference = references[name]
        if reference["kind"] == "categorical":
            result = categorical_drift(reference, frame[name])
        else:
            result = numeric_drift(reference, frame[name])
        if result is None:
            features[name] = {"note": "no current values"}
            continue
        if reference["kind"] == "numeric" and name in INHERITED_FEATURES:
            sizes = (frame[name].nunique(dropna=False),) * 2
        else:
            sizes = (result.pop("present"), reference["count"])
        result.pop("present", None)
        floor = max(policy["psi_threshold"], noise_floor(result.pop("bins"), sizes[0], sizes[1], policy["noise_alpha"]))
        result["threshold"] = learned_threshold(reference.get("monthly_psi", []), floor, policy["sigmas"])
        judged.append((result["psi"], result["threshold"]))
        features[name] = result
    drifted = sum(p > t for p, t in judged)
    share = drifted / len(judged) if judged else 0.0
    return {
        "features": features,
        "verdict": {
            "features": len(judged),
            "drifted_features": drifted,
            "share_drifted": share,
            "dataset_drift": bool(judged) and share >= policy["drift_share"],
        },
    }


# ----------------------------------------------------------------------------------------------
# Recommender: src/models/recommender.rs (HoldingsIndex, holdout_from, interactions_at, fit,
# recommend, evaluate) and src/metrics/ranking.rs.


def fit_weights(method: str, gram: np.ndarray, config: dict) -> np.ndarray | None:
    n = len(gram)
    if method == "popularity":
        return None
    if method == "cooccurrence":
        diagonal = np.diag(gram)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = np.where(diagonal[:, None] > 0, gram / diagonal[:, None], 0.0)
        np.fill_diagonal(weights, 0.0)
        return weights
    if method == "ease":
        import scipy.linalg

        p = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram + config["ease_lambda"] * np.eye(n)), np.eye(n))
        weights = -p / np.diag(p)[None, :]
        np.fill_diagonal(weights, 0.0)
        return weights
    if method == "svd_knn":
        values, vectors = np.linalg.eigh(gram)
        order = np.argsort(-values, kind="stable")
        k = min(config["svd_components"], n)
        embedding = vectors[:, order[:k]] * np.sqrt(np.maximum(values[order[:k]], 0.0))
        norm = np.linalg.norm(embedding, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = (embedding @ embedding.T) / np.outer(norm, norm)
        usable = (norm[:, None] > 0) & (norm[None, :] > 0) & ~np.eye(n, dtype=bool)
        similarity = np.where(usable, similarity, -np.inf)
        weights = np.zeros((n, n))
        for i in range(n):
            candidates = np.flatnonzero(usable[i])
            best = candidates[np.argsort(-similarity[i, candidates], kind="stable")][: config["knn_neighbours"]]
            weights[i, best] = np.maximum(similarity[i, best], 0.0)
        return weights
    raise SystemExit(f"unknown recommender method {method}")


def binary(rows: np.ndarray, columns: np.ndarray, shape) -> sparse.csr_matrix:
    """1 where any (row, column) pair occurs."""
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=shape)
    matrix.data[:] = 1.0
    return matrix


def recommender(settings: Settings, snapshot: dict) -> dict | None:
    found = champion_dir(settings, "recommender")
    if found is None:
        return None
    version, folder = found
    saved = json.loads((folder / "model.json").read_text())["model"]
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    config = settings.recommender
    k = max(int(settings.param("k", config["k"])), 1)
    today = snapshot["date"]
    tables = snapshot["tables"]

    # HoldingsIndex: items in catalog order, clients in table order.
    catalog = tables["catalog"]
    items = catalog["product_id"].tolist()
    categories = catalog["category"].tolist()
    n_items = len(items)
    clients = tables["clients"]
    holdings = tables["holdings"]
    client_row = pd.Index(clients["cli"])
    position = client_row.get_indexer(holdings["cli"])
    item = pd.Index(items).get_indexer(holdings["product_id"])
    known = (position >= 0) & (item >= 0)
    position, item = position[known], item[known]
    opened = holdings["opened_on"].to_numpy()[known]
    closed = np.nan_to_num(holdings["closed_on"].to_numpy()[known], nan=np.inf)

    # The holdout: baskets at the cut-off, products opened since.
    cutoff = month_end_after(today, -int(config["holdout_months"]))
    since = clients["client_since"].to_numpy()
    left = np.nan_to_num(clients["closed_on"].to_numpy(), nan=np.inf)
    active = (since <= cutoff) & (left > cutoff)
    active_position = np.full(len(clients), -1)
    active_position[active] = np.arange(active.sum())
    n_active = int(active.sum())
    user = active_position[position]
    held = (opened <= cutoff) & (closed > cutoff) & (user >= 0)
    basket = binary(user[held], item[held], (n_active, n_items))
    new = (opened > cutoff) & (opened <= today) & (user >= 0)
    opened_since = binary(user[new], item[new], (n_active, n_items))
    truth = opened_since - opened_since.multiply(basket)  # what they did not hold at the cut-off
    truth.eliminate_zeros()

    # Fit at the cut-off (or the saved model when it never saw the window).
    trained_on = parse_date(meta.get("trained_on", "")) if meta else None
    unseen = trained_on is not None and trained_on <= cutoff
    if unseen and saved["items"] == items:
        weights = np.asarray(saved["weights"]) if saved["weights"] else None
        popularity = np.asarray(saved["popularity"], dtype="float64")
        evaluated = "as trained (window after its training date)"
    else:
        gram = (basket.T @ basket).toarray()
        weights = fit_weights(saved["method"], gram, config)
        popularity_from = month_end_after(cutoff, -int(config["popularity_months"]))
        recent = (opened > popularity_from) & (opened <= cutoff)
        popularity = np.bincount(item[recent], minlength=n_items).astype("float64")
        evaluated = "refit at cut-off"

    # Each distinct basket ranked once (as bankml does).
    if n_items <= 63:
        bits = np.left_shift(np.uint64(1), np.arange(n_items, dtype=np.uint64))
        coo = basket.tocoo()
        keys = np.zeros(n_active, dtype=np.uint64)
        np.bitwise_or.at(keys, coo.row, bits[coo.col])
        distinct, inverse = np.unique(keys, return_inverse=True)
        held_items = ((distinct[:, None] & bits[None, :]) > 0).astype("float64")
    else:
        distinct_rows, inverse = np.unique(basket.toarray().astype(np.uint8), axis=0, return_inverse=True)
        held_items = distinct_rows.astype("float64")
    inverse = inverse.ravel()
    empty = held_items.sum(axis=1) == 0
    if weights is None:
        scores = np.tile(popularity, (len(held_items), 1))
    else:
        top = max(max(popularity.max(initial=0.0), 0.0), 1.0)
        scores = held_items @ weights + 1e-6 * popularity / top
        scores[empty] = popularity
    scores[held_items > 0] = -np.inf
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    lists = np.where(np.take_along_axis(scores, ranked, axis=1) == -np.inf, -1, ranked)

    # Accuracy at k over clients who opened something (src/metrics/ranking.rs by_user).
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    wanted = truth[users].toarray() > 0
    user_lists = lists[inverse[users]]
    hits = np.where(user_lists >= 0, np.take_along_axis(wanted, np.maximum(user_lists, 0), axis=1), False)
    n_wanted = wanted.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal_hits = np.minimum(n_wanted, k)
    ideal = np.cumsum(discount)[ideal_hits - 1]
    cumulative_hits = np.cumsum(hits, axis=1)
    precision = hits.sum(axis=1) / k
    recall = hits.sum(axis=1) / n_wanted
    ndcg = (hits * discount).sum(axis=1) / ideal
    average_precision = (hits * cumulative_hits / np.arange(1, k + 1)).sum(axis=1) / ideal_hits

    # Coverage and intra-list diversity over every client's list.
    shown = np.unique(lists[lists >= 0])
    category_codes = pd.factorize(pd.Series(categories), sort=True)[0]
    lengths = (lists >= 0).sum(axis=1)
    codes = np.where(lists >= 0, category_codes[np.maximum(lists, 0)], -1)
    differing = np.zeros(len(lists))
    for a in range(k):
        for b in range(a + 1, k):
            differing += (codes[:, a] != codes[:, b]) & (codes[:, a] >= 0) & (codes[:, b] >= 0)
    pairs = lengths * (lengths - 1) / 2
    per_basket = np.where(pairs > 0, differing / np.maximum(pairs, 1), 0.0)
    clients_per_basket = np.bincount(inverse, minlength=len(lists))
    counted = clients_per_basket * (lengths >= 2)
    diversity = float((per_basket * counted).sum() / counted.sum()) if counted.sum() else 0.0
    return {
        "version": version,
        "method": saved["method"],
        "evaluated": evaluated,
        "cutoff": from_days(cutoff).isoformat(),
        "clients_with_openings": int(len(users)),
        "metrics": {
            "users": int(len(users)),
            "k": k,
            "precision_at_k": float(precision.mean()),
            "recall_at_k": float(recall.mean()),
            "ndcg_at_k": float(ndcg.mean()),
            "hit_rate_at_k": float((hits.sum(axis=1) > 0).mean()),
            "map_at_k": float(average_precision.mean()),
            "coverage": len(shown) / n_items,
            "intra_list_diversity": diversity,
        },
        "distinct_baskets": int(len(held_items)),
    }


# ----------------------------------------------------------------------------------------------
# The benchmark.


class Clock:
    def __init__(self):
        self.wall, self.cpu = {}, {}
        self.start = time.perf_counter()

    def stage(self, name):
        clock = self

        class Stage:
            def __enter__(self):
                self.wall, self.cpu = time.perf_counter(), time.process_time()
                print(f"{name} …", file=sys.stderr, flush=True)

            def __exit__(self, *exc):
                clock.wall[name] = clock.wall.get(name, 0.0) + time.perf_counter() - self.wall
                clock.cpu[name] = clock.cpu.get(name, 0.0) + time.process_time() - self.cpu
                print(f"  {name}: {clock.wall[name]:.2f} s wall, {clock.cpu[name]:.2f} s CPU", file=sys.stderr, flush=True)

        return Stage()


# ----------------------------------------------------------------------------------------------
# --kept: bankml's path when its feature store is fresh (src/jobs/frames.rs Timeline,
# src/data/store.rs): the latest snapshot read and cleaned without validation, features read
# from data/processed/<date>/, the churn scores the scoring job stored reused.


def kept_manifest(settings: Settings, day: int) -> dict | None:
    """The kept features of `day`, when present and built from exports of the sizes there now.
    bankml compares a BLAKE3 hash of every export; the files are hashed here too (blake2b, as
    the standard library has no BLAKE3), for the cost, and compared by size."""
    folder = settings.processed_dir / from_days(day).isoformat()
    if not (folder / "manifest.json").is_file() or not all(
        (folder / f"{t}.parquet").is_file() for t in ("clients", "managers", "agencies")
    ):
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    raw = settings.raw_dir / from_days(day).isoformat()
    sizes = {}
    for path in sorted(raw.iterdir()):
        if path.is_file():
            with path.open("rb") as f:
                hashlib.file_digest(f, "blake2b")
            sizes[path.name] = path.stat().st_size
    built = {name: entry["bytes"] for name, entry in manifest["built_from"]["inputs"].items()}
    return manifest if built == sizes else None


def read_kept(settings: Settings, day: int, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    path = settings.processed_dir / from_days(day).isoformat() / f"{table}.parquet"
    return pq.read_table(path, columns=columns).to_pandas()


def kept_labelled(settings: Settings, day: int, manifest: dict, latest: dict, columns: list[str] | None):
    """Kept clients of `day` with churn as the latest snapshot sees it (store.rs attach_churn)."""
    frame = read_kept(settings, day, "clients", columns)
    labeller = (manifest.get("churn_labelled_by") or {}).get("snapshot")
    if labeller != from_days(latest["date"]).isoformat():
        frame = add_churn_label(frame.drop(columns="churn", errors="ignore"), day, latest, settings.horizon)
    return frame[frame["churn"].notna()].reset_index(drop=True)


def stored_scores(settings: Settings, day: int, version: int, cli: np.ndarray) -> np.ndarray | None:
    """The churn scores the scoring job stored for `day` when `version` scored exactly these
    clients in this order (benchmark.rs stored_churn_scores)."""
    folder = settings.scores_dir / from_days(day).isoformat()
    if not (folder / "summary.json").is_file():
        return None
    scored = json.loads((folder / "summary.json").read_text()).get("clients") or {}
    if scored.get("model_version") != version or not (folder / "clients.parquet").is_file():
        return None
    stored = pq.read_table(folder / "clients.parquet", columns=["cli", "churn_probability"])
    if len(stored) != len(cli) or not np.array_equal(stored.column("cli").to_numpy(), cli):
        return None
    scores = stored.column("churn_probability").to_numpy(zero_copy_only=False).astype("float64")
    return scores if np.isfinite(scores).all() else None


# ----------------------------------------------------------------------------------------------
# The benchmark.


def run(settings: Settings, use_kept: bool) -> tuple[dict, dict]:
    clock = Clock()
    figures, kept = {}, {"from_store": use_kept}
    threshold = float(settings.churn["threshold"])
    high_risk = float(settings.churn["high_risk"])
    churn_found = champion_dir(settings, "churn") if settings.wants("churn") else None

    with clock.stage("ingest"):
        dates = list_snapshots(settings.raw_dir)
        manifest = kept_manifest(settings, dates[-1]) if use_kept else None
        latest = load_snapshot(settings, dates[-1], validated_before=manifest is not None)
        matured = [d for d in reversed(dates) if latest["date"] >= d + settings.horizon]
    figures["snapshot"] = from_days(latest["date"]).isoformat()
    figures["table_rows"] = {t: len(f) for t, f in latest["tables"].items()}

    with clock.stage("features"):
        if manifest is not None:
            current = read_kept(settings, latest["date"], "clients")
            managers = read_kept(settings, latest["date"], "managers")
            agencies = read_kept(settings, latest["date"], "agencies")
        else:
            current = client_features(latest)
            managers = manager_features(current, latest)
            agencies = agency_features(current, latest)
            current = add_churn_label(current, latest["date"], latest, settings.horizon)
    # The newest matured snapshot with clients (bankml walks back past one whose clients all left).
    older, labelled, matured_scores = None, None, None
    for day in matured if churn_found else []:
        with clock.stage("ingest"):
            old_manifest = kept_manifest(settings, day) if use_kept else None
            older = None if old_manifest is not None else load_snapshot(settings, day)
        with clock.stage("features"):
            if old_manifest is not None:
                labelled = kept_labelled(settings, day, old_manifest, latest, ["cli", "churn"])
                if len(labelled) > 0:
                    matured_scores = stored_scores(settings, day, churn_found[0], labelled["cli"].to_numpy())
                    if matured_scores is None:
                        labelled = kept_labelled(settings, day, old_manifest, latest, None)
            else:
                labelled = add_churn_label(client_features(older), day, latest, settings.horizon)
                labelled = labelled[labelled["churn"].notna()].reset_index(drop=True)
        if len(labelled) > 0:
            kept["matured"] = day
            break
    kept.update(current=current, managers=managers, agencies=agencies, labelled=labelled)

    models, predicted = {}, {}
    with clock.stage("predict"):
        for name, frame in [("churn", labelled), ("manager", managers), ("agency", agencies)]:
            found = champion_dir(settings, name) if settings.wants(name) else None
            if found is None or frame is None:
                continue
            models[name] = Tabular(*found)
            if name == "churn" and matured_scores is not None:
                predicted[name] = matured_scores.astype("float32")  # stored from the f32 scores: exact
            else:
                predicted[name] = models[name].predict(frame)
        if "churn" in models:
            # bankml scores the latest snapshot for its CBPE estimate (itself skipped here) unless
            # the scoring job stored these scores (then only with --kept, as bankml).
            latest_scores = stored_scores(settings, latest["date"], models["churn"].version, current["cli"].to_numpy()) if use_kept else None
            if latest_scores is None:
                latest_scores = models["churn"].predict(current).astype("float64")
            latest_rates = models["churn"].calibrated(latest_scores) if models["churn"].isotonic else None

    with clock.stage("metrics"):
        if "churn" in models:
            truth = labelled["churn"].to_numpy(dtype="float32")
            figures["churn"] = {
                "version": models["churn"].version,
                "evaluated_snapshot": from_days(kept["matured"]).isoformat(),
                "metrics": binary_metrics(truth, predicted["churn"], threshold, high_risk, models["churn"]),
                "latest": {
                    "rows": int(len(latest_scores)),
                    "mean_score": float(latest_scores.mean()),
                    "expected_positive_rate": float(latest_rates.mean()) if latest_rates is not None else None,
                },
            }
        for name, frame in [("manager", managers), ("agency", agencies)]:
            if name in models:
                truth = frame["performance_score"].to_numpy(dtype="float32", na_value=np.nan)
                figures[name] = {
                    "version": models[name].version,
                    "evaluated_snapshot": figures["snapshot"],
                    "metrics": regression_metrics(truth, predicted[name]),
                }

    with clock.stage("drift"):
        for name, frame in [("churn", current), ("manager", managers), ("agency", agencies)]:
            if name in models:
                figures[name]["drift"] = drift(models[name].folder, frame, settings)

    with clock.stage("recommender"):
        if settings.wants("recommender"):
            section = recommender(settings, latest)
            if section is not None:
                figures["recommender"] = section

    timing = {
        "stages": {k: round(v, 4) for k, v in clock.wall.items()},
        "cpu_seconds": {k: round(v, 4) for k, v in clock.cpu.items()},
        "import_seconds": round(clock.start - STARTED, 4),
        "total_seconds": round(time.perf_counter() - STARTED, 4),
        "total_cpu_seconds": round(time.process_time(), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    return {**timing, "figures": figures}, kept


# ----------------------------------------------------------------------------------------------
# --check: against bankml's newest benchmark report and its feature store.


def newest_report(settings: Settings) -> tuple[Path, dict] | None:
    folder = settings.reports_dir / "daily-benchmark"
    runs = sorted((int(p.name), p) for p in folder.iterdir() if p.name.isdigit() and (p / "report.json").is_file()) if folder.is_dir() else []
    if not runs:
        return None
    path = runs[-1][1] / "report.json"
    return path, json.loads(path.read_text())


def diff(a, b) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    if isinstance(a, bool) or isinstance(b, bool):
        return 0.0 if a == b else math.inf
    a, b = float(a), float(b)
    if math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b)


def compare_frames(ours: pd.DataFrame, theirs: pd.DataFrame, key: str) -> dict:
    out = {"rows": [len(ours), len(theirs)], "columns_only_ours": [c for c in ours.columns if c not in theirs.columns],
           "columns_only_bankml": [c for c in theirs.columns if c not in ours.columns]}
    if len(ours) != len(theirs) or not (ours[key].to_numpy() == theirs[key].to_numpy()).all():
        out["error"] = f"rows differ ({key})"
        return out
    worst_abs, worst_rel, mismatched, worst_col = 0.0, 0.0, 0, None
    for column in [c for c in ours.columns if c in theirs.columns and c not in ("snapshot",)]:
        a, b = ours[column], theirs[column]
        numeric = pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b)
        if numeric:
            x = a.to_numpy(dtype="float64", na_value=np.nan)
            y = b.to_numpy(dtype="float64", na_value=np.nan)
            missing = np.isnan(x) != np.isnan(y)
            mismatched += int(missing.sum())
            both = ~np.isnan(x) & ~np.isnan(y)
            if both.any():
                d = np.abs(x[both] - y[both])
                rel = d / np.maximum(np.abs(y[both]), 1.0)
                if d.max() > worst_abs:
                    worst_abs, worst_col = float(d.max()), column
                worst_rel = max(worst_rel, float(rel.max()))
        else:
            x = a.astype("object").where(a.notna(), None).to_numpy()
            y = b.astype("object").where(b.notna(), None).to_numpy()
            mismatched += int((x != y).sum())
    out.update(max_abs=worst_abs, max_rel=worst_rel, worst_column=worst_col, mismatched_cells=mismatched)
    return out


def check(settings: Settings, result: dict, kept: dict) -> dict:
    out = {}
    found = newest_report(settings)
    figures = result["figures"]
    if found is None:
        out["report"] = "no reports/daily-benchmark/<id>/report.json"
    else:
        path, report = found
        summary = report["outcome"]["summary"]
        out["report"] = str(path)
        if summary.get("snapshot") != figures["snapshot"]:
            out["warning"] = f"the report is of snapshot {summary.get('snapshot')}, ours {figures['snapshot']}"
        kinds: dict[str, float] = {}

        def note(kind, value):
            kinds[kind] = max(kinds.get(kind, 0.0), value)

        churn, theirs = figures.get("churn"), summary.get("churn")
        if churn and theirs and theirs.get("metrics"):
            if churn["version"] != theirs["version"]:
                out.setdefault("versions", {})["churn"] = [churn["version"], theirs["version"]]
            m, t = churn["metrics"], theirs["metrics"]
            note("churn_roc_auc", diff(m["roc_auc"], t["roc_auc"]))
            for name in ["average_precision", "log_loss", "brier", "ks", "gini", "accuracy", "false_positive_rate"]:
                note("churn_other_scores", diff(m[name], t[name]))
            for name in ["precision", "recall", "f1"]:
                note("churn_at_threshold", diff(m[name], t[name]))
            for name in ["rows", "positives"]:
                note("churn_counts", diff(m[name], t[name]))
            for name in ["tp", "fp", "tn", "fn"]:
                note("churn_counts", diff(m["confusion"][name], t["confusion"][name]))
            for name in ["precision", "recall", "f1", "clients"]:
                note("churn_high_risk", diff(m["high_risk"][name], t["high_risk"][name]))
            out["churn_evaluated"] = [churn["evaluated_snapshot"], theirs.get("evaluated_snapshot")]
        for model in ["manager", "agency"]:
            ours, theirs = figures.get(model), summary.get(model)
            if ours and theirs:
                note(f"{model}_rmse", diff(ours["metrics"]["rmse"], theirs["metrics"]["rmse"]))
                for name in ["mae", "r2", "spearman", "within_15pct", "top10_overlap", "rows"]:
                    note(f"{model}_other", diff(ours["metrics"][name], theirs["metrics"][name]))
        for model in ["churn", "manager", "agency"]:
            ours = (figures.get(model) or {}).get("drift") or {}
            theirs = ((summary.get(model) or {}).get("drift")) or {}
            if "features" not in ours or "features" not in theirs:
                if ("features" in ours) != ("features" in theirs):
                    note(f"{model}_drift_measured", math.inf)
                continue
            if set(ours["features"]) != set(theirs["features"]):
                note(f"{model}_drift_features", math.inf)
            for name, f in ours["features"].items():
                t = theirs["features"].get(name, {})
                if "psi" not in f or "psi" not in t:
                    note("drift_no_values", 0.0 if ("psi" in f) == ("psi" in t) else math.inf)
                    continue
                note("drift_psi", diff(f["psi"], t["psi"]))
                note("drift_jensen_shannon", diff(f["jensen_shannon"], t["jensen_shannon"]))
                if "ks_statistic" in f:
                    note("drift_ks", diff(f["ks_statistic"], t["ks_statistic"]))
                    note("drift_ks_pvalue", diff(f["ks_pvalue"], t["ks_pvalue"]))
                    rel = diff(f["wasserstein"], t["wasserstein"]) / max(abs(t["wasserstein"]), 1.0)
                    note("drift_wasserstein_rel", rel)
                else:
                    note("drift_chi2_pvalue", diff(f["chi2_pvalue"], t["chi2_pvalue"]))
                    rel = diff(f["chi2_statistic"], t["chi2_statistic"]) / max(abs(t["chi2_statistic"]), 1.0)
                    note("drift_chi2_rel", rel)
                note("drift_threshold", diff(f["threshold"], theirs["thresholds"][name]["threshold"]))
            for name in ["features", "drifted_features", "share_drifted", "dataset_drift"]:
                note("drift_verdict", diff(ours["verdict"][name], theirs["verdict"][name]))
        ours, theirs = figures.get("recommender"), summary.get("recommender")
        if ours and theirs:
            m, t = ours["metrics"], theirs["metrics"]
            note("recommender_precision_at_k", diff(m["precision_at_k"], t["precision_at_k"]))
            note("recommender_hits", diff(round(m["precision_at_k"] * m["k"] * m["users"]),
                                          round(t["precision_at_k"] * t["k"] * t["users"])))
            for name in ["recall_at_k", "ndcg_at_k", "hit_rate_at_k", "map_at_k", "coverage", "intra_list_diversity"]:
                note("recommender_other", diff(m[name], t[name]))
            note("recommender_users", diff(m["users"], t["users"]))
            if ours["cutoff"] != theirs["cutoff"] or ours["evaluated"] != theirs["evaluated"]:
                out["recommender_setup"] = [[ours["cutoff"], ours["evaluated"]], [theirs["cutoff"], theirs["evaluated"]]]
        out["max_abs_diff"] = kinds

    # The feature store: bankml's own features of the same snapshots.
    if kept["from_store"]:
        out["feature_store"] = "not compared: --kept read the features from it"
        return out
    store = {}
    for label, frame, day, table, key in [
        ("latest clients", kept["current"], None, "clients", "cli"),
        ("latest managers", kept["managers"], None, "managers", "ges"),
        ("latest agencies", kept["agencies"], None, "agencies", "age"),
        ("matured clients", kept["labelled"], kept.get("matured"), "clients", "cli"),
    ]:
        if frame is None:
            continue
        day = day if day is not None else parse_date(figures["snapshot"])
        folder = settings.processed_dir / from_days(day).isoformat()
        path = folder / f"{table}.parquet"
        if not path.is_file():
            store[label] = "not kept"
            continue
        theirs = pq.read_table(path).to_pandas()
        for column in theirs.columns:
            if pd.api.types.is_object_dtype(theirs[column]) and column == "snapshot":
                theirs[column] = theirs[column].astype("object")
        ours = frame
        manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
        labeller = (manifest.get("churn_labelled_by") or {}).get("snapshot")
        if "churn" in ours.columns and labeller != figures["snapshot"]:
            # Kept with the outcome as an older newest snapshot saw it (or none): not comparable.
            ours = ours.drop(columns="churn")
            theirs = theirs.drop(columns="churn", errors="ignore")
        if label == "matured clients" and len(theirs) != len(ours) and "churn" in theirs.columns:
            theirs = theirs[theirs["churn"].notna()].reset_index(drop=True)
        store[label] = compare_frames(ours, theirs, key)
        store[label]["labelled_by"] = labeller
    out["feature_store"] = store
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, type=Path, help="the bankml project")
    parser.add_argument("--config", type=Path, help="engine settings (default PROJECT/config/bankml.yaml)")
    parser.add_argument("--job", default="daily-benchmark", help="the job file whose params apply")
    parser.add_argument("--check", action="store_true", help="compare with bankml's newest report and feature store")
    parser.add_argument(
        "--kept",
        action="store_true",
        help="bankml's warm path: features from its store (data/processed), stored churn scores "
        "(data/scores) reused, the unchanged latest snapshot not validated again",
    )
    args = parser.parse_args()
    settings = Settings(args.dir, args.config, args.job)
    result, kept = run(settings, args.kept)
    result["mode"] = "kept" if args.kept else "from raw"
    if args.check:
        result["check"] = check(settings, result, kept)
        print(json.dumps(finite(result["check"]), indent=1, default=str), file=sys.stderr)
    for name, seconds in result["stages"].items():
        print(f"{name:<12} {seconds:8.3f} s wall {result['cpu_seconds'][name]:8.3f} s CPU")
    print(f"{'imports':<12} {result['import_seconds']:8.3f} s wall")
    print(f"{'total':<12} {result['total_seconds']:8.3f} s wall {result['total_cpu_seconds']:8.3f} s CPU, "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    print(json.dumps(finite(result), default=str))


def finite(value):
    """JSON without NaN/Infinity: a mismatch (inf) as the text "inf", NaN as null."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


if __name__ == "__main__":
    main()
