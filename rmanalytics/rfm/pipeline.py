"""The whole segmentation of one snapshot date in one call (used twice for the migration matrix)."""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from rmanalytics.rfm.lifecycle import activity_change, lifecycle_stages
from rmanalytics.rfm.scores import rfm_scores
from rmanalytics.rfm.segments import rfm_segments
from rmanalytics.rfm.summary import rfm_table
from rmanalytics.rfm.tiers import service_tiers
from rmanalytics.rfm.value import latest_balances, wallet_share_proxy

TAG_COLUMNS = ("customer_type", "risk_level", "industry", "scenario", "branch_id")


def segment_snapshot(
    transactions: Any,
    *,
    observation_end: Any,
    customers: pd.DataFrame | None = None,
    balances: Any = None,
    params: Any = None,
    engine: str | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """RFM table, scores, segment, lifecycle stage, value and service tier per customer.

    The customers are those with at least one transaction up to ``observation_end``.

    Parameters
    ----------
    transactions : contract transactions (frame or Parquet/CSV path).
    customers : contract customers (open_date for tenure; tags for tiers and the nine-grid).
    balances : contract balances (AUM, n_products of the latest snapshot = value).
    params : :class:`SegmentationParams` (default: its defaults).
    engine : "duckdb" or "spark": runs the RFM table, the activity windows and the latest
        balances (see :mod:`rmanalytics.engine`); with "spark", ``transactions`` and ``balances``
        may be Spark DataFrames or catalog table names.
    quiet : silence :class:`BinsCollapsedWarning`.

    Returns
    -------
    One row per customer: the :func:`rfm_table` columns (tenure_days: days since the first
    transaction), r/f/m/fm_score, rfm_cell, segment, relationship_days / relationship_hours (the
    lifecycle's tenure: days since open_date, else the first transaction), onboarding,
    activity_drop, recent/baseline_transactions, baseline_rate, lifecycle_stage, tags, aum, n_products, value
    (AUM, or monetary without balances), value_pct, wallet_share_proxy, tier. Data-quality
    findings of the RFM table in ``.attrs["findings"]``.
    """
    from rmanalytics.params.segmentation import SegmentationParams

    p = params or SegmentationParams()
    s = p.scores
    rfm = rfm_table(transactions, observation_end=observation_end, frequency=s.frequency, refunds=s.refunds,
                    engine=engine)
    end = observation_end
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        sc = rfm_scores(rfm, bins=s.bins, method=s.method, edges=s.edges)
    seg = rfm_segments(sc, p.segments.rules, default=p.segments.default)
    df = rfm.merge(seg, on="customer_id", how="left")
    start_dates = None
    if customers is not None and "open_date" in customers.columns:
        start_dates = customers.set_index("customer_id")["open_date"]
    lc = p.lifecycle
    act = activity_change(transactions, observation_end=end, recent_days=lc.recent_days,
                          baseline_days=lc.baseline_days, min_baseline_days=lc.min_baseline_days,
                          min_baseline_transactions=lc.min_baseline_transactions, start_dates=start_dates,
                          refunds=s.refunds, engine=engine)
    stages = lifecycle_stages(rfm, act, observation_end=end, customers=customers, params=lc)
    # the RFM table's tenure_days counts from the first transaction; the lifecycle's from opening
    stages = stages.rename(columns={"tenure_days": "relationship_days", "tenure_hours": "relationship_hours"})
    df = df.merge(stages, on="customer_id", how="left")
    if customers is not None:
        tags = [c for c in TAG_COLUMNS if c in customers.columns]
        df = df.merge(customers[["customer_id", *tags]], on="customer_id", how="left")
    if balances is not None:
        bal = latest_balances(balances, observation_end=end, engine=engine)
        keep = [c for c in ("aum", "deposits", "loans", "n_products") if c in bal.columns]
        df = df.merge(bal[["customer_id", *keep]], on="customer_id", how="left")
        df["value"] = df["aum"]
    else:
        df["value"] = df["monetary"]
    peers = [c for c in p.wallet.peer_columns if c in df.columns]
    if "aum" in df.columns:
        df["wallet_share_proxy"] = wallet_share_proxy(df, value_col="aum", peer_columns=peers,
                                                      quantile=p.wallet.quantile)
    df = service_tiers(df, params=p.tiers, value_col="value")
    df.attrs["findings"] = rfm.attrs.get("findings", [])
    df.attrs["edges"] = sc.attrs.get("edges", {})
    return df
