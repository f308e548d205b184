"""Customer health score 0-100 (the seed's customer health dashboard, docs/domain.md §2, 002 §三(四)1).

Three groups, each the weighted mean of its components (every component is scaled to 0-100):

- **value**: ``aum`` (percentile rank of AUM in the book at ``as_of``), ``penetration``
  (100 x min(products held / ``penetration_cap``, 1)), ``clv`` (percentile rank of the CLV in
  the bank's income, when given);
- **behaviour**: ``activity_trend`` (100 x min(activity ratio / ``activity_ratio_cap``, 1), where
  the activity ratio is the transaction rate of the last ``recent_days`` over that of the
  ``baseline_days`` before; 1.0 = unchanged = 50 points with the default cap 2), ``logins``
  (100 x min(mean monthly logins over the last 3 months / ``logins_target``, 1)), ``recency``
  (100 x 0.5 ** (days since the last transaction, or since opening when none / ``recency_half_life_days``));
- **satisfaction**: ``complaints`` (100 x max(0, 1 - complaints in the last 365 days x
  ``complaint_penalty`` / 100)), ``nps`` (10 x mean NPS score 0-10 over the last 365 days).

Missing data are **dropped and re-weighted, never zero-filled**: a component whose input is missing
for a customer (no CLV, no digital_activity / feedback table, no NPS answer, no activity in either
window) does not count, and the weights of the components present are rescaled to sum to 1. The
health score is sum(group weight x component weight x points) / sum(those weights) over the
components present; ``n_components`` says how many counted. Group scores are computed the same way.

Percentile ranks make the value part relative to the book at ``as_of`` (0-100 across customers).
The weights and scalings are :class:`HealthConfig` parameters; the defaults are judgement, not a
seed figure — the validation (:func:`validate_health`) says how well they rank outcomes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rmanalytics.book.current import customer_columns
from rmanalytics.book.relationship import add_relationship
from rmanalytics.keys import left_join, map_keys

GROUPS: dict[str, tuple[str, ...]] = {
    "value": ("aum", "penetration", "clv"),
    "behaviour": ("activity_trend", "logins", "recency"),
    "satisfaction": ("complaints", "nps"),
}
COMPONENTS: tuple[str, ...] = tuple(c for cs in GROUPS.values() for c in cs)


class HealthConfig(BaseModel):
    """Weights and scalings of the health score (defaults documented in the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    group_weights: dict[str, float] = Field(
        default_factory=lambda: {"value": 0.4, "behaviour": 0.35, "satisfaction": 0.25},
        description="Weight of each group (value, behaviour, satisfaction); normalised to sum 1.")
    component_weights: dict[str, float] = Field(
        default_factory=lambda: {"aum": 0.5, "penetration": 0.25, "clv": 0.25, "activity_trend": 0.4,
                                 "logins": 0.3, "recency": 0.3, "complaints": 0.5, "nps": 0.5},
        description="Weight of each component within its group; normalised within the group.")
    penetration_cap: int = Field(5, gt=0, description="Products held that earn full penetration points.")
    activity_ratio_cap: float = Field(2.0, gt=0, description="Activity ratio (recent/baseline rate) earning 100.")
    recency_half_life_days: float = Field(90.0, gt=0, description="Days since the last transaction that halve recency points.")
    logins_target: float = Field(8.0, gt=0, description="Mean monthly logins earning full points.")
    complaint_penalty: float = Field(50.0, ge=0, le=100, description="Points lost per complaint in the last 365 days.")

    @model_validator(mode="after")
    def _check(self) -> "HealthConfig":
        bad = set(self.group_weights) - set(GROUPS)
        if bad:
            raise ValueError(f"unknown health groups {sorted(bad)}; groups: {list(GROUPS)}")
        bad = set(self.component_weights) - set(COMPONENTS)
        if bad:
            raise ValueError(f"unknown health components {sorted(bad)}; components: {list(COMPONENTS)}")
        if any(w < 0 for w in [*self.group_weights.values(), *self.component_weights.values()]):
            raise ValueError("health weights must be >= 0")
        if sum(self.group_weights.values()) <= 0:
            raise ValueError("health group weights must not all be 0")
        return self


def _pct_rank(s: pd.Series) -> pd.Series:
    """Percentile rank 0-100 (average ties); NaN stays NaN; one value alone gets 50."""
    r = s.rank(method="average", pct=True)
    n = s.notna().sum()
    if n <= 1:
        return r * 0 + 50.0
    return 100.0 * (r * n - 1) / (n - 1)


def health_components(features: pd.DataFrame, config: HealthConfig | None = None) -> pd.DataFrame:
    """Component points 0-100 (NaN = missing) from a features frame.

    ``features`` columns (per customer; missing columns make the component missing for everyone):
    ``aum`` (currency), ``n_products``, ``clv_income`` (currency), ``activity_ratio``,
    ``n_tx_recent``, ``n_tx_baseline``, ``recency_days`` (days), ``logins_per_month``,
    ``complaints_12m``, ``nps_mean`` (0-10).
    """
    cfg = config or HealthConfig()
    f = features
    nan = pd.Series(np.nan, index=f.index)
    col = lambda c: f[c].astype(float) if c in f.columns else nan  # noqa: E731
    out = pd.DataFrame(index=f.index)
    out["aum"] = _pct_rank(col("aum"))
    out["penetration"] = 100.0 * np.minimum(col("n_products") / cfg.penetration_cap, 1.0)
    out["clv"] = _pct_rank(col("clv_income"))
    ratio = col("activity_ratio")
    if "n_tx_recent" in f.columns and "n_tx_baseline" in f.columns:  # new activity without a baseline: top
        ratio = ratio.where(~((f["n_tx_baseline"] == 0) & (f["n_tx_recent"] > 0)), cfg.activity_ratio_cap)
    out["activity_trend"] = 100.0 * np.minimum(ratio / cfg.activity_ratio_cap, 1.0)
    out["logins"] = 100.0 * np.minimum(col("logins_per_month") / cfg.logins_target, 1.0)
    out["recency"] = 100.0 * np.power(0.5, col("recency_days").clip(lower=0) / cfg.recency_half_life_days)
    out["complaints"] = 100.0 * np.maximum(0.0, 1.0 - col("complaints_12m") * cfg.complaint_penalty / 100.0)
    out["nps"] = 10.0 * col("nps_mean").clip(0, 10)
    return out


def _weights(cfg: HealthConfig) -> dict[str, float]:
    """Effective weight per component: group weight x within-group share (before re-weighting)."""
    gsum = sum(cfg.group_weights.get(g, 0.0) for g in GROUPS)
    w = {}
    for g, comps in GROUPS.items():
        cw = {c: cfg.component_weights.get(c, 0.0) for c in comps}
        tot = sum(cw.values())
        for c in comps:
            w[c] = (cfg.group_weights.get(g, 0.0) / gsum) * (cw[c] / tot if tot > 0 else 0.0)
    return w


def health_score(features: pd.DataFrame, config: HealthConfig | None = None) -> pd.DataFrame:
    """Health score 0-100 per customer with group scores and components (see module docstring).

    Returns a frame indexed like ``features``: ``health`` (0-100, NaN only when no component has
    data), ``health_value``, ``health_behaviour``, ``health_satisfaction`` (group scores, NaN when
    the group has no data), ``n_components`` and ``hc_<component>`` (component points, NaN = missing,
    dropped and re-weighted). ``attrs["coverage"]``: share of customers with data per component.
    """
    cfg = config or HealthConfig()
    comp = health_components(features, cfg)
    w = _weights(cfg)
    W = np.array([w[c] for c in COMPONENTS])
    X = comp[list(COMPONENTS)].to_numpy(float)
    present = ~np.isnan(X) & (W > 0)
    num = np.where(present, X * W, 0.0).sum(axis=1)
    den = np.where(present, W, 0.0).sum(axis=1)
    out = pd.DataFrame(index=features.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["health"] = np.where(den > 0, num / den, np.nan)
        for g, comps in GROUPS.items():
            idx = [COMPONENTS.index(c) for c in comps]
            n = np.where(present[:, idx], X[:, idx] * W[idx], 0.0).sum(axis=1)
            d = np.where(present[:, idx], W[idx], 0.0).sum(axis=1)
            out[f"health_{g}"] = np.where(d > 0, n / d, np.nan)
    out["n_components"] = present.sum(axis=1).astype(int)
    for c in COMPONENTS:
        out[f"hc_{c}"] = comp[c]
    out.attrs["coverage"] = {c: float(comp[c].notna().mean()) for c in COMPONENTS}
    return out


# ----------------------------------------------------------------------------- features
def health_features(tables: dict[str, Any], as_of, *, current: pd.DataFrame | None = None,
                    clv: pd.DataFrame | None = None, recent_days: int = 90, baseline_days: int = 365,
                    engine: str = "duckdb") -> pd.DataFrame:
    """Per open customer at ``as_of``: the inputs of :func:`health_components`.

    ``current`` is :func:`rmanalytics.churn.current_state` at ``as_of`` (computed when None);
    ``clv`` a frame ``customer_id, clv_income`` (no CLV component without it). Optional tables in
    ``tables`` (frames or Parquet paths, aggregated in the engine) add logins (``digital_activity``),
    complaints and NPS (``feedback``) and product penetration from ``holdings`` (distinct products
    held at ``as_of``, replacing the balances' ``n_products``), with the holdings' next maturity and
    suitability breach (:func:`rmanalytics.book.relationship.relationship_features`).
    ``recency_days`` falls back to days since opening for customers who never transacted.
    """
    from rmanalytics.churn.frame import current_state

    as_of = pd.Timestamp(as_of).normalize()
    cur = current if current is not None else current_state(tables, as_of, recent_days=recent_days,
                                                             baseline_days=baseline_days, engine=engine)
    f = cur.copy()
    cust = customer_columns(tables, ["open_date"], engine)
    tenure = (as_of - map_keys(f["customer_id"], cust["open_date"])).dt.days.astype(float)  # sorted ids: linear
    f["recency_days"] = f["recency_days"].fillna(tenure)
    f = add_relationship(f, tables, as_of, engine=engine, read=("digital_activity", "feedback", "holdings"))
    if "n_products_holdings" in f.columns:
        f["n_products"] = f["n_products_holdings"]
    if clv is not None:
        f = left_join(f, clv[["customer_id", "clv_income"]])
    return f


# ----------------------------------------------------------------------------- validation
def _auc(score: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(score)
    if not ok.any() or y[ok].min() == y[ok].max():
        return float("nan")
    return float(roc_auc_score(y[ok], score[ok]))


def _concordance(score: np.ndarray, value: np.ndarray) -> float:
    from rmanalytics.concordance import concordance_index  # lifelines' value, vectorised

    ok = ~np.isnan(score) & ~np.isnan(value)
    if ok.sum() < 2:
        return float("nan")
    return float(concordance_index(value[ok], score[ok]))


def validate_health(tables: dict[str, Any], cutoff, end, *, config: HealthConfig | None = None,
                    recent_days: int = 90, baseline_days: int = 365, engine: str = "duckdb") -> pd.DataFrame:
    """How well today's health ranks the next period's churn and value: a time-based hold-out.

    Health is computed at ``cutoff`` from data up to ``cutoff`` only, for the customers open then
    (the CLV component is left out: it would need a model refitted at the cutoff). Outcomes over
    ``(cutoff, end]``: ``churned`` (closed in the period) and ``next_fee`` (the bank's fee income
    from the customer in the period, currency; closed customers count what they paid before closing).

    Returns one row per ranking rule — ``health``, each group score, and the baselines
    ``aum_rank`` (higher AUM = healthier), ``recency`` (more recent = healthier) and ``fee_12m``
    (last year's fees) — with ``churn_auc`` (AUC of *low* score for churn; 0.5 = no better than
    chance), ``value_concordance`` (Harrell's C of the score against next-period fees, 0.5 = chance),
    ``n_customers`` and ``n_churned``. ``attrs``: cutoff, end.
    """
    from rmanalytics.engine import columns_of, run_sql

    cfg = config or HealthConfig()
    cutoff, end = pd.Timestamp(cutoff).normalize(), pd.Timestamp(end).normalize()
    if cutoff >= end:
        raise ValueError(f"validate_health: cutoff {cutoff.date()} must be before end {end.date()}")
    f = health_features(tables, cutoff, recent_days=recent_days, baseline_days=baseline_days, engine=engine)
    h = health_score(f, cfg)
    cust = customer_columns(tables, ["close_date"], engine)
    close = map_keys(f["customer_id"], cust["close_date"])  # sorted ids: a linear merge, no hashing (10M: seconds)
    churned = (close.notna() & (close > cutoff) & (close <= end)).astype(int).to_numpy()
    fee_col = "fee" if "fee" in columns_of(tables["transactions"], engine) else "0.0"
    nxt = run_sql(f"""SELECT customer_id, SUM({fee_col}) AS next_fee FROM transactions
                      WHERE CAST(date AS DATE) > DATE '{cutoff.date()}' AND CAST(date AS DATE) <= DATE '{end.date()}'
                      GROUP BY customer_id ORDER BY customer_id""", {"transactions": tables["transactions"]}, engine=engine)
    next_fee = map_keys(f["customer_id"], nxt.set_index("customer_id")["next_fee"]).fillna(0.0).to_numpy(float)
    rules = {
        "health": h["health"],
        "health_value": h["health_value"],
        "health_behaviour": h["health_behaviour"],
        "health_satisfaction": h["health_satisfaction"],
        "aum_rank (baseline)": f["aum"].rank(pct=True),
        "recency (baseline)": -f["recency_days"],
        "fee_12m (baseline)": f["fee_12m"],
    }
    rows = []
    for name, s in rules.items():
        s = s.astype(float).to_numpy()
        rows.append({"ranking_rule": name, "churn_auc": _auc(-s, churned),
                     "value_concordance": _concordance(s, next_fee) if np.isfinite(s).any() else np.nan,
                     "n_customers": int(np.isfinite(s).sum()), "n_churned": int(churned[np.isfinite(s)].sum())})
    out = pd.DataFrame(rows)
    out.attrs.update(cutoff=cutoff.date().isoformat(), end=end.date().isoformat())
    return out
