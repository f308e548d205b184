"""Retention worklist for relationship managers: whom to call first, why, and what is at stake."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pretty(name: str) -> str:
    return name.replace("[", "=").replace("]", "")


def retention_worklist(model, active: pd.DataFrame, horizon_days: float, *, value_col: str = "aum",
                       rm_col: str = "rm_id", id_col: str = "customer_id", top_n: int | None = 20,
                       n_drivers: int = 3, tenure_col: str | None = None,
                       current: pd.DataFrame | None = None) -> pd.DataFrame:
    """Ranked retention worklist per RM.

    For each active customer: ``p_churn`` = probability of churning within ``horizon_days`` given
    its tenure (from a fitted Cox :class:`ChurnModel`), ``value`` (``value_col``, e.g. AUM in
    currency), ``value_at_stake`` = p_churn * value, and ``risk_drivers``: the ``n_drivers``
    covariates that raise this customer's log-hazard most above the average customer
    ((x - mean) * coef > 0). Customers are ranked within each RM by value at stake
    (``rank`` 1 = first to contact); ``top_n`` per RM (None: all). Customer ids are the raw ids
    (masking happens where the table is exported: :meth:`rmanalytics.report.Recorder.table`).

    ``current`` (from :func:`rmanalytics.churn.frame.current_state` at the observation end) supplies
    each customer's *current* primary RM and *current* ``value_col``: without it the RM and value are
    those of the active frame, i.e. at each customer's landmark (possibly years old, and the RM may
    have left). Customers whose current RM list is empty are listed under ``"unassigned"``.
    """
    p = model.predict_churn_probability(active, horizon_days, tenure_col=tenure_col)
    if current is not None:
        miss = [c for c in (id_col, rm_col, value_col) if c not in current.columns]
        if miss:
            raise ValueError(f"retention_worklist: current state lacks column(s) {miss}")
        cur = current[[id_col, rm_col, value_col]].drop_duplicates(id_col).set_index(id_col)  # (its other columns: GBs at 10M)
        rm = active[id_col].map(cur[rm_col])
        value = active[id_col].map(cur[value_col]).astype(float)
    else:
        rm, value = active[rm_col], active[value_col].astype(float)
    out = pd.DataFrame({
        rm_col: rm.fillna("unassigned").to_numpy(),
        id_col: active[id_col].to_numpy(),
        "p_churn": p.to_numpy(),
        "value": value.to_numpy(float),
    })
    out["value_at_stake"] = out["p_churn"] * out["value"]
    out = out.sort_values([rm_col, "value_at_stake", "p_churn"], ascending=[True, False, False], kind="stable")
    out["rank"] = out.groupby(rm_col).cumcount() + 1
    if top_n is not None:
        out = out[out["rank"] <= top_n]
    # the drivers' text only for the listed customers (at 10M customers, text for all took minutes and GBs)
    contrib = model.risk_contributions(active.iloc[out.index.to_numpy()])
    cols = np.array([_pretty(c) for c in contrib.columns])
    vals = contrib.to_numpy()
    order = np.argsort(-vals, axis=1)[:, :n_drivers]
    out["risk_drivers"] = [", ".join(f"{cols[j]} (x{np.exp(vals[i, j]):.2f})" for j in order[i] if vals[i, j] > 0)
                           for i in range(len(out))]
    out = out[[rm_col, "rank", id_col, "p_churn", "value", "value_at_stake", "risk_drivers"]].reset_index(drop=True)
    return out
