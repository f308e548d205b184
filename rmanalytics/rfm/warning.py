"""Early warning (预警): customers to re-activate, as a per-RM worklist sorted by value at stake.

Signals (docs/domain.md §2; thresholds from :class:`WarningParams`):

- ``no_purchase:<family>``: the customer bought the product family (default ``wealth``) in the
  ``lookback_months`` before the silent period but not in the last ``silent_months`` calendar
  months (observation_end - silent_months months, observation_end] (default 3 months; seed 000);
- ``activity_drop``: activity down at least ``activity_drop`` (default 30%, seed 002) against the
  customer's own trailing baseline (:func:`rmanalytics.rfm.lifecycle.activity_change`).

A purchase is a transaction with amount > 0. Customers closed on or before observation_end are
not on the list. The RM is the customer's primary RM on observation_end (the assignment covering
that day with the highest share; ties: smallest rm_id); the value at stake is the AUM of the
latest balance snapshot on or before observation_end (0 without a snapshot, flagged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.assignments import primary_rm_at
from rmanalytics.engine import columns_of, run_sql
from rmanalytics.keys import isin_keys, left_join, sort_rows
from rmanalytics.rfm.summary import as_date, date_literal, transaction_inputs


def family_last_purchase_sql(window: str, families: list[str], end_literal: str) -> str:
    """SQL: the last purchase date (amount > 0) per customer and watched product family."""
    fam = ", ".join("'" + f.replace("'", "''") + "'" for f in families)
    return f"""
WITH t AS ({window})
SELECT customer_id, product_family, MAX(date) AS last_purchase
FROM t
WHERE amount > 0 AND product_family IN ({fam}) AND date <= {end_literal}
GROUP BY customer_id, product_family
"""


def silent_families(transactions: Any, *, observation_end: Any, families: list[str] | tuple[str, ...] = ("wealth",),
                    silent_months: int = 3, lookback_months: int = 12, customer_col: str = "customer_id",
                    date_col: str = "date", amount_col: str = "amount", engine: str | None = None) -> pd.DataFrame:
    """Customers with no purchase of a watched family in the last ``silent_months`` months who
    bought it in the ``lookback_months`` before that.

    ``engine``: "duckdb" or "spark" (with "spark", ``transactions`` may also be a Spark DataFrame
    or a catalog table name; the aggregation runs in Spark).

    Returns customer_id, product_family, last_purchase, months_silent (whole months between the
    last purchase and observation_end).
    """
    end = as_date(observation_end, "observation_end")
    inputs, base = transaction_inputs(transactions, customer_col, date_col, amount_col, extra=("product_family",),
                           engine=engine)
    df = run_sql(family_last_purchase_sql(base, list(families), date_literal(end)), inputs, engine=engine)
    silent_start = pd.Timestamp(end) - pd.DateOffset(months=silent_months)
    look_start = silent_start - pd.DateOffset(months=lookback_months)
    df["last_purchase"] = pd.to_datetime(df["last_purchase"])
    hit = df[(df["last_purchase"] <= silent_start) & (df["last_purchase"] > look_start)].copy()
    e = pd.Timestamp(end)
    lp = hit["last_purchase"]
    months = (e.year - lp.dt.year) * 12 + (e.month - lp.dt.month) - (e.day < lp.dt.day).astype(int)
    hit["months_silent"] = months.astype("int64")
    return sort_rows(hit, ["customer_id", "product_family"]).reset_index(drop=True)


def primary_rm(assignments: pd.DataFrame, *, on: Any) -> pd.DataFrame:
    """customer_id -> rm_id, share of the assignment covering day ``on`` with the highest share
    (ties: smallest rm_id). Intervals are [start_date, end_date)."""
    day = pd.Timestamp(as_date(on, "on"))
    a = assignments
    start = pd.to_datetime(a["start_date"])
    stop = pd.to_datetime(a["end_date"])
    cur = a[(start <= day) & (stop.isna() | (stop > day))]
    cur = sort_rows(cur, ["customer_id", "share", "rm_id"], [True, False, True])
    return cur.drop_duplicates("customer_id")[["customer_id", "rm_id", "share"]].reset_index(drop=True)


def _join_signals(sig: pd.DataFrame) -> pd.DataFrame:
    """One row per customer of ``sig`` (customer_id, reason, detail; sorted by customer and reason):
    the reasons and details joined by "; " in that order, and n_signals. A customer has at most one
    row per signal, so this joins a few columns of arrays instead of a Python call per customer."""
    if not len(sig):
        return (sig.groupby("customer_id", sort=True)
                .agg(reason=("reason", "; ".join), n_signals=("reason", "size"), detail=("detail", "; ".join))
                .reset_index())
    cid = sig["customer_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    counts = np.diff(np.r_[starts, len(cid)])
    cols = {}
    for c in ("reason", "detail"):
        v = sig[c].to_numpy(dtype=object)
        joined = v[starts].copy()
        for k in range(1, int(counts.max())):
            more = counts > k
            joined[more] = joined[more] + "; " + v[starts[more] + k]
        cols[c] = joined
    return pd.DataFrame({"customer_id": cid[starts], "reason": cols["reason"],
                         "n_signals": counts.astype("int64"), "detail": cols["detail"]})


def early_warnings(
    transactions: Any,
    *,
    observation_end: Any,
    activity: pd.DataFrame | None = None,
    assignments: pd.DataFrame | None = None,
    balances_latest: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    families: Sequence[str] = ("wealth",),
    silent_months: int = 3,
    lookback_months: int = 12,
    activity_drop: float = 0.30,
    engine: str | None = None,
) -> pd.DataFrame:
    """The early-warning worklist: one row per customer with at least one signal.

    Parameters
    ----------
    transactions : contract transactions (customer_id, date, amount, product_family; without
        ``product_family`` the no-purchase signal is left out).
    activity : output of :func:`activity_change` (for the activity-drop signal); None: skipped.
    assignments : contract assignments (for the primary RM); None: rm_id is NaN.
    balances_latest : output of :func:`latest_balances` (aum = value at stake).
    customers : contract customers (closed customers are left out).
    families, silent_months, lookback_months : the "no purchase of a watched product family"
        signal (see :func:`silent_families`).
    activity_drop : the activity-drop signal fires at ``activity_drop >=`` this fraction.
    engine : "duckdb" or "spark", for the product-family scan of ``transactions``.

    Returns
    -------
    DataFrame sorted by value_at_stake (descending, then rm_id, customer_id): rm_id, customer_id,
    reason (signal codes joined by "; "), n_signals, detail, value_at_stake (currency),
    has_balance, rank_in_rm (1 = highest value in the RM's list).
    """
    end = as_date(observation_end, "observation_end")
    # without product families (an optional contract column) the no-purchase signal is left out
    watch = list(families) if "product_family" in columns_of(transactions, engine) else []
    silent = silent_families(transactions, observation_end=end, families=watch,
                             silent_months=silent_months, lookback_months=lookback_months,
                             engine=engine) if watch else pd.DataFrame(columns=["customer_id", "product_family"])
    parts = []
    if len(silent):
        fam = silent["product_family"].astype(str).tolist()
        since = silent["last_purchase"].dt.strftime("%Y-%m-%d").tolist()
        parts.append(pd.DataFrame({
            "customer_id": silent["customer_id"].to_numpy(),
            "reason": [f"no_purchase:{f}" for f in fam],
            "detail": [f"no {f} purchase since {d} ({m} months)"
                       for f, d, m in zip(fam, since, silent["months_silent"].tolist())]}))
    if activity is not None:
        drop = activity[activity["activity_drop"] >= activity_drop]
        if len(drop):
            parts.append(pd.DataFrame({
                "customer_id": drop["customer_id"].to_numpy(),
                "reason": "activity_drop",
                "detail": [f"activity down {a:.0%} ({n} recent vs {b:.1f} baseline)" for a, n, b in zip(
                    drop["activity_drop"].tolist(), drop["recent_transactions"].tolist(),
                    drop["baseline_rate"].tolist())]}))
    sig = (pd.concat(parts, ignore_index=True) if parts
           else pd.DataFrame(columns=["customer_id", "reason", "detail"]))
    sig = sort_rows(sig, ["customer_id", "reason"])
    if customers is not None and "close_date" in customers.columns and len(sig):
        closed = customers.loc[pd.to_datetime(customers["close_date"]) <= pd.Timestamp(end), "customer_id"]
        sig = sig[~isin_keys(sig["customer_id"], closed)]  # sorted ids: a linear merge, no hashing
    out = _join_signals(sig)  # one row per customer, sorted by id: the lookups below merge linearly
    if assignments is not None:  # the rule of primary_rm, looked up for these customers only
        out["rm_id"] = primary_rm_at(assignments, out.assign(_day=pd.Timestamp(end)), "_day").to_numpy()
    else:
        out["rm_id"] = np.nan
    if balances_latest is not None:
        out = left_join(out, balances_latest[["customer_id", "aum"]])
    else:
        out["aum"] = np.nan
    out["has_balance"] = out["aum"].notna()
    out["value_at_stake"] = out["aum"].fillna(0.0).astype("float64")
    out = out.drop(columns="aum")
    out = sort_rows(out, ["value_at_stake", "rm_id", "customer_id"], [False, True, True]).reset_index(drop=True)
    out["rank_in_rm"] = out.groupby(out["rm_id"].fillna("(unassigned)")).cumcount() + 1
    return out[["rm_id", "customer_id", "reason", "n_signals", "detail", "value_at_stake", "has_balance",
                "rank_in_rm"]]


def top_warnings(worklist: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The first ``top_n`` customers of each RM's early-warning list (by value at stake, as ranked in
    ``rank_in_rm`` by :func:`early_warnings`; unassigned customers form one list), in the worklist's
    order. The list sized for people; the full worklist is for machines."""
    if top_n <= 0:
        raise ValueError(f"top_n must be positive, got {top_n}")
    return worklist[worklist["rank_in_rm"] <= top_n].reset_index(drop=True)


def warnings_per_rm(worklist: pd.DataFrame) -> pd.DataFrame:
    """Customers and value at stake (currency) per RM of an :func:`early_warnings` worklist, largest
    value first; customers without an RM are one row with ``rm_id`` NaN."""
    return (worklist.groupby("rm_id", dropna=False)
            .agg(customers=("customer_id", "size"), value_at_stake=("value_at_stake", "sum"))
            .sort_values("value_at_stake", ascending=False))
