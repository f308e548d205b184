"""Per-customer churn risk *today* and CLV in the bank's income, for the RM book.

- :func:`churn_risk_now`: a Cox model with the time-varying "RM left" covariate (as notebook 02)
  fitted on the survival frame; each open customer's P(churn within the horizon) is then predicted
  at its *current* tenure with *current* covariates (AUM, products, transactions of the last
  ``lookback_days``) and its *current* RM status (``rm_left`` = 1 once an RM with share >= 0.5 left
  while serving it, successor or not; 1 as well when it has no employed RM today). Applying the
  landmark-fitted model to today's covariates is the usual landmarking approximation.
- :func:`clv_income`: BG/NBD for purchase days and Gamma-Gamma on the **fees** per purchase day
  (``btyd_summary(amount_col="fee")``), per customer type, so the CLV is what the customer earns
  the bank (fee income, currency, discounted), not what it buys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


#: Customers scored at a time by :func:`churn_risk_now` (the design and contribution matrices of a
#: chunk: about 0.5 GB at a million rows; every row is scored on its own, so the chunk changes nothing).
SCORE_CHUNK_ROWS = 1_000_000


def churn_risk_now(tables: dict[str, Any], as_of, *, horizon_days: int = 180, lookback_days: int = 90,
                   covariates: tuple[str, ...] = ("customer_type", "risk_level", "log_aum", "n_products", "n_tx"),
                   time_grid: str = "week", current: pd.DataFrame | None = None, n_drivers: int = 3,
                   behaviour: bool = True, engine: str = "duckdb", model: Any = None,
                   fit_max_customers: int = 0, random_state: int = 0) -> pd.DataFrame:
    """P(churn within ``horizon_days``) per customer open at ``as_of`` (see module docstring).

    ``model``: a Cox :class:`~rmanalytics.churn.ChurnModel` fitted on these ``tables``, e.g.
    notebook 02's, with the covariates ``covariates`` + ``rm_left`` (+ the behaviour covariates;
    otherwise ValueError). It is used instead of a refit when it was fitted exactly as here, which
    its ``data_attrs_`` and settings show: the time-varying frame (start/stop columns) of
    ``survival_frame(tables, observation_end=as_of, lookback_days=lookback_days,
    time_grid=time_grid)`` (closure definition, the data's default window start), Cox with the
    fast solver, without penalty or strata; otherwise the model is refitted here (same result as with ``model=None``).
    ``attrs["model_reused"]`` tells which happened.

    ``fit_max_customers``, ``random_state``: the model is fitted on a random sample of at most this
    many customers (0: all; :func:`rmanalytics.churn.sample.sample_customers`), as notebook 02 does
    above a million customers; every customer is scored. A ``model`` given is reused only when it
    was drawn alike.

    ``current``: :func:`rmanalytics.churn.current_state` at ``as_of`` with ``recent_days =
    lookback_days`` (e.g. the worklist's); computed here when None or when its ``attrs`` show
    another day or window.

    With ``behaviour`` the monthly behaviour covariates (months since purchase, activity change,
    AUM trend; :func:`rmanalytics.churn.behaviour_covariates`) enter the model as in notebook 02 and
    are taken for today's month from data before it. Returns ``customer_id, p_churn, rm_left,
    risk_drivers`` (the covariates raising the customer's log-hazard most above the average
    customer, "name (xhazard ratio)").
    """
    from rmanalytics import churn
    from rmanalytics.book.current import customer_columns, rm_lost
    from rmanalytics.keys import left_join, map_keys

    as_of = pd.Timestamp(as_of).normalize()
    covs = list(covariates) + ["rm_left"] + (list(churn.BEHAVIOUR_COVARIATES) if behaviour else [])
    if model is not None and list(model.covariates_) != covs:
        raise ValueError(f"churn_risk_now: the model given has covariates {model.covariates_}, not {covs}")
    reused = model is not None and _fitted_as_here(model, tables, as_of, lookback_days=lookback_days,
                                                  time_grid=time_grid, engine=engine,
                                                  fit_max_customers=fit_max_customers, random_state=random_state)
    if not reused:
        frame = churn.survival_frame(tables, observation_end=as_of, lookback_days=lookback_days,
                                     time_grid=time_grid, engine=engine)
        if fit_max_customers:
            frame = churn.sample_customers(frame, fit_max_customers, random_state=random_state)
        monthly = churn.behaviour_covariates(tables, frame, engine=engine) if behaviour else None
        long = churn.time_varying_frame(frame, monthly=monthly, columns=list(covariates))  # what the fit uses
        del monthly, frame
        model = churn.ChurnModel("cox", covariates=covs, solver="fast").fit(
            long, "stop", "event", entry_col="start", id_col="customer_id")
        del long
    if not churn.state_fits(current, as_of, recent_days=lookback_days):  # another day or window: not used
        current = churn.current_state(tables, as_of, recent_days=lookback_days, engine=engine)
    cur = current
    cust = customer_columns(tables, ("customer_type", "risk_level", "industry", "scenario", "acquisition_channel",
                                      "branch_id", "open_date"), engine)
    now = left_join(cur[["customer_id"]].copy(), cust.reset_index())  # ids looked up once (sorted: linear)
    for c in ("industry", "scenario", "acquisition_channel"):
        if c in now.columns:
            now[c] = now[c].astype(object).where(now[c].notna(), "none")
    now["aum"] = cur["aum"].to_numpy(float)
    now["log_aum"] = np.log1p(now["aum"].clip(lower=0))
    now["n_products"] = cur["n_products"].to_numpy(int)
    now["n_tx"] = cur["n_tx_recent"].to_numpy(int)
    opened = now.pop("open_date")
    now["tenure"] = (as_of - opened).dt.days.astype(float)
    lost = rm_lost(now["customer_id"], tables["assignments"], tables["rms"], as_of, engine=engine)
    now["rm_left"] = map_keys(now["customer_id"], lost).fillna(0).astype(int)
    now.loc[cur["rm_id"].isna().to_numpy(), "rm_left"] = 1
    if behaviour:  # today's month, from data before it (as the model saw each month)
        probe = now[["customer_id"]].assign(open_date=opened,
                                            entry=now["tenure"], duration=now["tenure"] + 1)
        mon = churn.behaviour_covariates(tables, probe, engine=engine)
        mon = mon.sort_values("month_start").drop_duplicates("customer_id", keep="last")
        now = left_join(now, mon[["customer_id", *churn.BEHAVIOUR_COVARIATES]])
        for c in churn.BEHAVIOUR_COVARIATES:
            now[c] = now[c].fillna(0.0)
    missing = [c for c in covs if c not in now.columns]
    if missing:
        raise ValueError(f"churn_risk_now: covariates {missing} are not available for today's customers")
    p = np.empty(len(now))
    drivers = np.empty(len(now), dtype=object)
    for lo in range(0, len(now), SCORE_CHUNK_ROWS):  # each row on its own: chunks bound the design copies
        part = now.iloc[lo:lo + SCORE_CHUNK_ROWS]
        p[lo:lo + len(part)] = model.predict_churn_probability(part, horizon_days, tenure_col="tenure").to_numpy(float)
        contrib = model.risk_contributions(part)
        names = np.array([c.replace("[", "=").replace("]", "") for c in contrib.columns])
        vals = contrib.to_numpy().copy()
        X = model.design_.transform(part[model.covariates]).to_numpy(float)
        dummy = np.array(["=" in n for n in names])
        vals[:, dummy] = np.where(X[:, dummy] != 0, vals[:, dummy], 0.0)  # "customer_type=corporate" only if it is
        order = np.argsort(-vals, axis=1)[:, :n_drivers]
        drivers[lo:lo + len(part)] = _driver_text(names, vals, order)
        del contrib, vals, X, order
    out = pd.DataFrame({"customer_id": now["customer_id"].to_numpy(), "p_churn": p,
                        "rm_left": now["rm_left"].to_numpy(int), "risk_drivers": drivers})
    out.attrs.update(horizon_days=int(horizon_days), hr_rm_left=float(model.hazard_ratios_["rm_left"]),
                     model_reused=bool(reused))
    return out


def _driver_text(names: np.ndarray, vals: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per row, "name (xhazard ratio)" of the columns ``order[i]`` (by decreasing ``vals``) whose
    value is positive, joined by ", ": one formatting pass per driver rank, not per customer."""
    rows = np.arange(len(vals))
    out = np.full(len(vals), "", dtype=object)
    for r in range(order.shape[1]):
        c = order[:, r]
        v = vals[rows, c]
        pos = np.flatnonzero(v > 0)  # by decreasing value: positive ones come first in each row
        piece = np.array([f"{n} (x{e:.2f})" for n, e in zip(names[c[pos]].tolist(), np.exp(v[pos]).tolist())],
                         dtype=object)
        out[pos] = piece if r == 0 else out[pos] + ", " + piece
    return out


def _fitted_as_here(model: Any, tables: dict[str, Any], as_of: pd.Timestamp, *, lookback_days: int,
                    time_grid: str, engine: str, fit_max_customers: int = 0, random_state: int = 0) -> bool:
    """Whether ``model`` is the Cox fit :func:`churn_risk_now` would make (see its docstring)."""
    from rmanalytics.churn.sample import same_sample
    from rmanalytics.window import analysis_window

    a = getattr(model, "data_attrs_", None) or {}
    if not same_sample(a, fit_max_customers, random_state):
        return False
    if not (model.model == "cox" and model.solver == "fast" and not model.penalizer and not model.l1_ratio and not model.strata_
            and getattr(model, "weights_col_", None) is None
            and model.entry_col_ == "start" and model.duration_col_ == "stop"
            and a.get("definition") == "closure" and a.get("time_grid") == time_grid
            and a.get("lookback_days") == int(lookback_days)
            and a.get("observation_end") == as_of.date().isoformat() and "window_start" in a):
        return False
    return a["window_start"] == analysis_window(tables, as_of, None, engine=engine).start.date().isoformat()


def clv_income(tables: dict[str, Any], as_of, *, horizon_days: int = 365, discount_rate: float = 0.1,
               time_unit_days: int = 7, clv_time_unit: str = "month", penalizer: float = 0.0,
               engine: str = "duckdb") -> pd.DataFrame:
    """CLV in the bank's income per customer with transactions up to ``as_of`` (see module docstring).

    Returns ``customer_id, p_alive, expected_purchases, expected_fee`` (E[fee per purchase day],
    currency) and ``clv_income`` (discounted expected fee income over ``horizon_days``, currency).
    Customers without any transaction get no row (no CLV: the health score drops the component).
    """
    from rmanalytics import loyalty as L
    from rmanalytics.book.current import customer_columns
    from rmanalytics.engine import columns_of
    from rmanalytics.rfm import btyd_summary

    tx = tables["transactions"]  # a frame or a Parquet path (aggregated in the engine)
    if "fee" not in columns_of(tx, engine):
        raise ValueError("clv_income needs the transactions.fee column (the bank's income)")
    as_of = pd.Timestamp(as_of).normalize()
    summary = btyd_summary(tx, observation_end=as_of.date(), amount_col="fee", time_unit_days=time_unit_days,
                           refunds="include", engine=engine)
    ctype = customer_columns(tables, ["customer_type"], engine).reset_index()  # a frame or a Parquet path
    summary = summary.merge(ctype, on="customer_id", how="left")
    models = L.fit_models(summary, by="customer_type", penalizer=penalizer)
    clv = L.apply_by_group(models, summary, "customer_type", lambda m, g: L.customer_lifetime_value(
        m.bgnbd, m.gamma_gamma, g, horizon=horizon_days, discount_rate=discount_rate, time_unit=clv_time_unit,
        model_time_unit_days=time_unit_days))
    clv = clv.rename(columns={"clv": "clv_income", "expected_value": "expected_fee"})
    return clv[["customer_id", "p_alive", "expected_purchases", "expected_fee", "clv_income"]].reset_index(drop=True)
