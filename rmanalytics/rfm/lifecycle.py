"""Lifecycle stages (新客培育期 / 成长爆发期 / 成熟稳定期 / 衰退预警期) from tenure and activity change.

Stages are assigned by the rules in :class:`rmanalytics.params.segmentation.LifecycleParams`
(first match wins). Defaults (docs/domain.md §1, seed 002): decline warning when activity is down
>= 30% against the customer's own trailing baseline; new for tenure <= 90 days (3 months);
growth 91-364 days; mature from 365 days (1 year). The first 72 hours after opening are flagged
(``onboarding``) as the new-customer contact window.

Activity change (:func:`activity_change`): transactions in the recent window
(observation_end - recent_days, observation_end] against the baseline window of
``baseline_days`` before it, scaled to the same length:
``activity_drop = 1 - recent / (baseline * recent_days / exposure_days)``, where exposure_days is
the part of the baseline window after the customer started (open_date, else first transaction).
It is NaN when exposure < min_baseline_days or the baseline has fewer than
min_baseline_transactions transactions (too little history to call a drop).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.engine import run_sql
from rmanalytics.keys import left_join, map_keys, sort_rows
from rmanalytics.rfm.summary import as_date, date_literal, scan_findings, transaction_inputs, window_sql
from rmanalytics.rules import Rule, apply_rules

STAGES = ("new", "growth", "mature", "decline_warning")

# label keys are namespaced ("stage:growth") because service tiers also have a "growth"


def activity_sql(window: str, recent_start: dt.date, baseline_start: dt.date) -> str:
    """SQL: per customer, transactions in the recent and baseline windows and the first date."""
    r = date_literal(recent_start)
    b = date_literal(baseline_start)
    return f"""
WITH t AS ({window})
SELECT customer_id,
       SUM(CASE WHEN date > {r} THEN 1 ELSE 0 END) AS recent_transactions,
       SUM(CASE WHEN date > {b} AND date <= {r} THEN 1 ELSE 0 END) AS baseline_transactions,
       MIN(date) AS first_date
FROM t
GROUP BY customer_id
"""


def activity_change(
    transactions: Any,
    *,
    observation_end: Any,
    recent_days: int = 90,
    baseline_days: int = 365,
    min_baseline_days: int = 90,
    min_baseline_transactions: int = 3,
    start_dates: pd.Series | None = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    refunds: str = "include",
    engine: str | None = None,
) -> pd.DataFrame:
    """Recent vs trailing-baseline activity per customer (see module docstring).

    Parameters
    ----------
    transactions : contract transactions: DataFrame or Parquet/CSV path; with ``engine="spark"``
        also a Spark DataFrame or catalog table name (the aggregation then runs in Spark).
    start_dates : optional Series customer_id -> start of the relationship (open_date); default
        the first transaction.
    engine : "duckdb" or "spark" (see :mod:`rmanalytics.engine`).

    Returns
    -------
    DataFrame: customer_id, recent_transactions, baseline_transactions, exposure_days,
    baseline_rate (transactions per recent_days), activity_drop (fraction, NaN if undefined).
    """
    end = as_date(observation_end, "observation_end")
    inputs, base = transaction_inputs(transactions, customer_col, date_col, amount_col, engine=engine)
    end, _ = scan_findings(inputs, base, end, refunds, engine=engine)
    recent_start = end - dt.timedelta(days=recent_days)
    baseline_start = recent_start - dt.timedelta(days=baseline_days)
    df = run_sql(activity_sql(window_sql(base, end, refunds), recent_start, baseline_start), inputs, engine=engine)
    return activity_frame(df, recent_start=recent_start, recent_days=recent_days, baseline_days=baseline_days,
                          min_baseline_days=min_baseline_days, min_baseline_transactions=min_baseline_transactions,
                          start_dates=start_dates)


def activity_frame(df: pd.DataFrame, *, recent_start: dt.date, recent_days: int, baseline_days: int,
                   min_baseline_days: int, min_baseline_transactions: int,
                   start_dates: pd.Series | None = None) -> pd.DataFrame:
    """The :func:`activity_change` result from the rows of :func:`activity_sql` (customer_id,
    recent_transactions, baseline_transactions, first_date)."""
    start = pd.to_datetime(df["first_date"])
    if start_dates is not None:
        given = pd.to_datetime(map_keys(df["customer_id"], start_dates))
        start = given.where(given.notna(), start)
    exposure = ((pd.Timestamp(recent_start) - start).dt.days).clip(lower=0, upper=baseline_days)
    df["recent_transactions"] = df["recent_transactions"].astype("int64")
    df["baseline_transactions"] = df["baseline_transactions"].astype("int64")
    df["exposure_days"] = exposure.astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = df["baseline_transactions"] * recent_days / df["exposure_days"].where(df["exposure_days"] > 0)
    ok = (df["exposure_days"] >= min_baseline_days) & (df["baseline_transactions"] >= min_baseline_transactions)
    df["baseline_rate"] = rate.where(ok)
    df["activity_drop"] = (1 - df["recent_transactions"] / df["baseline_rate"]).where(ok)
    df = sort_rows(df.drop(columns="first_date"), ["customer_id"]).reset_index(drop=True)
    return df


def lifecycle_stages(
    rfm: pd.DataFrame,
    activity: pd.DataFrame,
    *,
    observation_end: Any,
    rules: Sequence[Rule | Mapping[str, Any]],
    default: str = "other",
    onboarding_hours: float = 72.0,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Lifecycle stage per customer of ``rfm`` by the lifecycle ``rules`` (first match wins).

    Parameters
    ----------
    rfm : output of :func:`rfm_table` (customer_id, first_date).
    activity : output of :func:`activity_change`.
    rules : lifecycle rules (:mod:`rmanalytics.rules`) on tenure_days, tenure_hours, activity_drop,
        recent_transactions, baseline_transactions (the notebook default is ``LifecycleParams().rules``).
    default : stage of customers no rule matches.
    onboarding_hours : first-contact window after opening (hours) for the ``onboarding`` flag.
    customers : optional customers table; its ``open_date`` defines tenure (else first_date).

    Returns
    -------
    DataFrame: customer_id, tenure_days, tenure_hours, onboarding (within onboarding_hours of
    opening), activity_drop, recent_transactions, baseline_transactions, lifecycle_stage.
    """
    end = pd.Timestamp(as_date(observation_end, "observation_end"))
    out = rfm[["customer_id", "first_date"]].copy()
    start = pd.to_datetime(out["first_date"])
    if customers is not None and "open_date" in customers.columns:
        opened = pd.to_datetime(map_keys(out["customer_id"], customers.set_index("customer_id")["open_date"]))
        start = opened.where(opened.notna(), start)
    out["tenure_days"] = (end - start).dt.days
    out["tenure_hours"] = out["tenure_days"] * 24.0
    out["onboarding"] = out["tenure_hours"] < onboarding_hours
    out = left_join(out.drop(columns="first_date"), activity[
        ["customer_id", "activity_drop", "recent_transactions", "baseline_transactions", "baseline_rate"]])
    out["lifecycle_stage"] = apply_rules(out, rules, default=default).to_numpy()
    return out
