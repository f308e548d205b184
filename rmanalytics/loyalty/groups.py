"""Fitting and applying the loyalty models per customer group (e.g. retail vs corporate).

Retail and corporate customers buy and spend on very different scales; one pooled model would
describe neither. :func:`fit_models` fits one BG/NBD and one Gamma-Gamma per group;
:func:`apply_by_group` runs any per-customer function with each group's models and stacks the
results in the input order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmanalytics.loyalty.beta_geo import BetaGeoModel
from rmanalytics.loyalty.gamma_gamma import GammaGammaModel

ALL = "all"


@dataclass
class GroupModels:
    """The fitted models of one group."""

    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    n_customers: int


def _groups(summary: pd.DataFrame, by: str | None) -> dict[str, pd.DataFrame]:
    if by is None:
        return {ALL: summary}
    if by not in summary.columns:
        raise KeyError(f"summary has no column {by!r} to group by; columns: {list(summary.columns)}")
    if summary[by].isna().any():
        n = int(summary[by].isna().sum())
        raise ValueError(f"summary.{by}: rule 'not null' broken by {n} row(s)")
    return {str(k): g for k, g in summary.groupby(by, sort=True)}


def fit_models(summary: pd.DataFrame, *, by: str | None = None, penalizer: float = 0.0) -> dict[str, GroupModels]:
    """Fit BG/NBD (``frequency, recency, T``) and Gamma-Gamma (``frequency, monetary_value``, repeaters
    with ``monetary_value > 0``) per value of ``by`` (one group ``"all"`` when ``by`` is None).

    Repeat buyers whose mean repeat spend is <= 0 (refunds netting out a purchase) cannot enter
    the Gamma-Gamma fit: their number is kept in ``gamma_gamma.n_nonpositive_``.
    """
    out = {}
    for key, g in _groups(summary, by).items():
        bg = BetaGeoModel(penalizer).fit(g)
        rep = g[(g["frequency"] > 0)]
        ok = rep["monetary_value"] > 0
        gg = GammaGammaModel(penalizer).fit(rep[ok])
        gg.n_nonpositive_ = int((~ok).sum())
        out[key] = GroupModels(bg, gg, len(g))
    return out


def params_table(models: dict[str, GroupModels], truth: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """Estimates, SEs and 95% CIs of every group's parameters (``truth`` adds a column when given:
    ``{group: {param: value}}`` covering BG/NBD and Gamma-Gamma parameters)."""
    rows = []
    for key, m in models.items():
        for model_name, model in (("BG/NBD", m.bgnbd), ("Gamma-Gamma", m.gamma_gamma)):
            s = model.summary_.reset_index()
            s.insert(0, "model", model_name)
            s.insert(0, "group", key)
            rows.append(s)
    out = pd.concat(rows, ignore_index=True)
    if truth is not None:
        out["truth"] = [truth.get(g, {}).get(p, np.nan) for g, p in zip(out["group"], out["parameter"])]
    return out


def apply_by_group(models: dict[str, GroupModels], df: pd.DataFrame, by: str | None,
                   func: Callable[[GroupModels, pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """``func(models[group], rows of group)`` for each group, stacked back in the order of ``df``."""
    parts = []
    for key, g in _groups(df, by).items():
        if key not in models:
            raise KeyError(f"no fitted models for group {key!r}; fitted: {list(models)}")
        res = func(models[key], g)
        res.index = g.index
        if by is not None and by not in res.columns:
            res.insert(0, by, g[by].to_numpy())
        parts.append(res)
    return pd.concat(parts).loc[df.index]


def tracking_by_group(models: dict[str, GroupModels], cal_holdout: pd.DataFrame, transactions: pd.DataFrame,
                      by: str | None, **kwargs) -> pd.DataFrame:
    """:func:`rmanalytics.loyalty.tracking` per group (each with its own model and customers), summed.

    ``kwargs`` go to :func:`~rmanalytics.loyalty.tracking` (calibration_end, observation_end, ...).
    """
    from rmanalytics.loyalty.validation import tracking

    parts = []
    for key, g in _groups(cal_holdout, by).items():
        tx = transactions[transactions["customer_id"].isin(g["customer_id"])] if by is not None else transactions
        parts.append(tracking(models[key].bgnbd, g, tx, **kwargs).set_index(["date", "period"]))
    total = parts[0]
    for p in parts[1:]:
        total = total.add(p, fill_value=0.0)
    return total.reset_index()[["date", "actual", "predicted", "period"]]


def load_segments(segments_path: str | None, tables: dict, *, observation_end, engine: str | None = None,
                  lang: str = "en") -> tuple[pd.DataFrame, str]:
    """Segments, lifecycle stages and tiers per customer, and where they came from.

    ``segments_path``: ``restricted/tables/segments.parquet`` of a 01 run (columns customer_id, segment,
    lifecycle_stage, tier). Otherwise they are recomputed with
    :func:`rmanalytics.rfm.pipeline.segment_snapshot` at ``observation_end`` when that module is
    available, else every customer's ``customer_type`` stands in for all three.
    Returns ``(frame, source)`` with source one of ``"file"``, ``"recomputed"``, ``"customer_type"``.
    """
    cols = ["customer_id", "segment", "lifecycle_stage", "tier"]
    if segments_path is not None:
        seg = pd.read_parquet(segments_path)
        missing = [c for c in cols if c not in seg.columns]
        if missing:
            raise ValueError(f"{segments_path}: missing column(s) {missing}; expected {cols}")
        return seg[cols], "file"
    try:
        from rmanalytics.rfm.pipeline import segment_snapshot
    except ImportError:
        segment_snapshot = None
    if segment_snapshot is not None:
        seg = segment_snapshot(tables["transactions"], observation_end=observation_end,
                               customers=tables.get("customers"), balances=tables.get("balances"),
                               engine=engine, quiet=True)
        return seg[cols], "recomputed"
    cust = tables["customers"][["customer_id", "customer_type"]]
    return cust.assign(segment=cust["customer_type"], lifecycle_stage=cust["customer_type"],
                       tier=cust["customer_type"])[cols], "customer_type"
