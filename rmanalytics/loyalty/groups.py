"""Fitting and applying the loyalty models per customer group (e.g. retail vs corporate).

Retail and corporate customers buy and spend on very different scales; one pooled model would
describe neither. :func:`fit_models` fits one BG/NBD and one Gamma-Gamma per group;
:func:`apply_by_group` runs any per-customer function with each group's models and stacks the
results in the input order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, examples, rule_message
from rmanalytics.loyalty.beta_geo import BetaGeoModel
from rmanalytics.loyalty.gamma_gamma import GammaGammaModel

ALL = "all"


@dataclass
class GroupModels:
    """The fitted models of one group."""

    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    n_customers: int
    n_nonpositive: int = 0  # repeat buyers left out of the Gamma-Gamma fit: mean repeat spend <= 0


def _groups(summary: pd.DataFrame, by: str | None) -> dict[str, pd.DataFrame]:
    if by is None:
        return {ALL: summary}
    if by not in summary.columns:
        raise KeyError(f"summary has no column {by!r} to group by; columns: {list(summary.columns)}")
    if summary[by].isna().any():
        n = int(summary[by].isna().sum())
        raise DataError(rule_message(f"summary.{by}", "rule 'not null'", n, examples(summary.index[summary[by].isna()])))
    return {str(k): g for k, g in summary.groupby(by, sort=True)}


def customer_groups(frame: pd.DataFrame, customers: pd.DataFrame | None, by: str = "customer_type") -> pd.DataFrame:
    """``frame`` (one row per customer_id) with the model-group column ``by`` from ``customers``.

    Without a customers table every customer is in the one group ``"all"`` (one model is fitted
    for everybody; the notebook says so).
    """
    if customers is None:
        return frame.assign(**{by: ALL})
    return frame.merge(customers[["customer_id", by]], on="customer_id", how="left")


def fit_models(summary: pd.DataFrame, *, by: str | None = None, penalizer: float = 0.0,
               random_state: int | None = 0) -> dict[str, GroupModels]:
    """Fit BG/NBD (``frequency, recency, T``) and Gamma-Gamma (``frequency, monetary_value``, repeaters
    with ``monetary_value > 0``) per value of ``by`` (one group ``"all"`` when ``by`` is None).

    Repeat buyers whose mean repeat spend is <= 0 (refunds netting out a purchase) cannot enter
    the Gamma-Gamma fit: their number is kept in ``GroupModels.n_nonpositive``. ``random_state`` seeds
    the BG/NBD warm start on very large data (see :class:`~rmanalytics.loyalty.BetaGeoModel`).
    """
    out = {}
    for key, g in _groups(summary, by).items():
        bg = BetaGeoModel(penalizer, random_state=random_state).fit(g)
        rep = g[(g["frequency"] > 0)]
        ok = rep["monetary_value"] > 0
        gg = GammaGammaModel(penalizer).fit(rep[ok])
        out[key] = GroupModels(bg, gg, len(g), n_nonpositive=int((~ok).sum()))
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


def tracking_by_group(models: dict[str, GroupModels], cal_holdout: pd.DataFrame, transactions: Any,
                      by: str | None, **kwargs) -> pd.DataFrame:
    """:func:`rmanalytics.loyalty.tracking` per group (each with its own model and customers), summed.

    ``transactions``: a frame or a Parquet/CSV path (the engine selects each group's customers; the
    table never reaches pandas). ``kwargs`` go to :func:`~rmanalytics.loyalty.tracking`
    (calibration_end, observation_end, engine, ...).
    """
    from rmanalytics.loyalty.validation import tracking

    parts = []
    for key, g in _groups(cal_holdout, by).items():
        cohort = g[["customer_id"]] if by is not None else None
        parts.append(tracking(models[key].bgnbd, g, transactions, cohort=cohort, **kwargs).set_index(["date", "period"]))
    total = parts[0]
    for p in parts[1:]:
        total = total.add(p, fill_value=0.0)
    return total.reset_index()[["date", "actual", "predicted", "period"]]


def calibration_split(cal_holdout: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Per group: customers, repeat buyers (frequency > 0), mean frequency and mean ``T`` in the
    calibration period (model time units), and purchases in the hold-out period."""
    if by is None:
        by, cal_holdout = "group", cal_holdout.assign(group=ALL)
    _groups(cal_holdout, by)  # checks the column
    return cal_holdout.groupby(by).agg(customers=("frequency", "size"),
                                       repeat_buyers=("frequency", lambda f: (f > 0).sum()),
                                       mean_frequency=("frequency", "mean"), mean_T=("T", "mean"),
                                       holdout_purchases=("frequency_holdout", "sum"))


def spend_model_check(models: dict[str, GroupModels]) -> pd.DataFrame:
    """Per group, what the Gamma-Gamma model rests on: repeat buyers fitted, the correlation of
    frequency and mean spend (the model assumes about 0), the population mean spend (currency) and
    the repeat buyers left out because their mean spend is <= 0."""
    return pd.DataFrame({g: {"repeat_buyers": m.gamma_gamma.n_customers_,
                             "frequency_monetary_corr": m.gamma_gamma.frequency_monetary_corr_,
                             "population_mean_value": m.gamma_gamma.population_mean_value_,
                             "nonpositive_spend_excluded": m.n_nonpositive}
                         for g, m in models.items()}).T
