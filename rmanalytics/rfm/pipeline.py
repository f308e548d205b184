"""The whole segmentation of one snapshot date in one call (used twice for the migration matrix)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rmanalytics.io import SEGMENT_COLUMNS, read_segments
from rmanalytics.rfm.lifecycle import activity_change, lifecycle_stages
from rmanalytics.rfm.scores import rfm_scores
from rmanalytics.rfm.segments import rfm_segments
from rmanalytics.rfm.summary import rfm_table
from rmanalytics.rfm.tiers import NOT_TIERED, service_tiers
from rmanalytics.rfm.value import latest_balances, wallet_share_proxy
from rmanalytics.rules import Rule

TAG_COLUMNS = ("customer_type", "risk_level", "industry", "scenario", "branch_id")
SEGMENT_SOURCES = ("file", "recomputed")


def segment_snapshot(
    transactions: Any,
    *,
    observation_end: Any,
    segment_rules: Sequence[Rule | Mapping[str, Any]],
    lifecycle_rules: Sequence[Rule | Mapping[str, Any]],
    tier_rules: Sequence[Rule | Mapping[str, Any]],
    customers: pd.DataFrame | None = None,
    balances: Any = None,
    score_bins: int = 5,
    score_method: str = "quantile",
    score_edges: Mapping[str, Sequence[float]] | None = None,
    frequency: str = "transactions",
    refunds: str = "include",
    segment_default: str = "other",
    recent_days: int = 90,
    baseline_days: int = 365,
    min_baseline_days: int = 90,
    min_baseline_transactions: int = 3,
    onboarding_hours: float = 72.0,
    lifecycle_default: str = "other",
    tier_default: str = "basic",
    wallet_peer_columns: Sequence[str] = ("customer_type", "risk_level"),
    wallet_quantile: float = 0.9,
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
    segment_rules, lifecycle_rules, tier_rules (and the ``*_default`` labels) : the rule sets of
        :func:`rfm_segments`, :func:`lifecycle_stages` and :func:`service_tiers`.
    score_bins, score_method, score_edges : :func:`rfm_scores`; ``frequency``, ``refunds`` : :func:`rfm_table`.
    recent_days, baseline_days, min_baseline_days, min_baseline_transactions : :func:`activity_change` (days).
    onboarding_hours : the lifecycle's onboarding flag (hours since opening).
    wallet_peer_columns, wallet_quantile : :func:`wallet_share_proxy`.
    The notebook maps its parameters onto these with
    :meth:`rmanalytics.params.SegmentationParams.snapshot_args`.
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
    (AUM, or monetary without balances), value_pct, wallet_share_proxy, tier. Service tiers are
    about AUM value: without ``balances`` no tier is assigned and ``tier`` is ``"not_tiered"`` for
    every customer (said, not guessed from purchases). Data-quality findings of the RFM table in
    ``.attrs["findings"]``.
    """
    rfm = rfm_table(transactions, observation_end=observation_end, frequency=frequency, refunds=refunds,
                    engine=engine)
    end = observation_end
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        sc = rfm_scores(rfm, bins=score_bins, method=score_method, edges=score_edges)
    seg = rfm_segments(sc, segment_rules, default=segment_default)
    df = rfm.merge(seg, on="customer_id", how="left")
    start_dates = None
    if customers is not None and "open_date" in customers.columns:
        start_dates = customers.set_index("customer_id")["open_date"]
    act = activity_change(transactions, observation_end=end, recent_days=recent_days,
                          baseline_days=baseline_days, min_baseline_days=min_baseline_days,
                          min_baseline_transactions=min_baseline_transactions, start_dates=start_dates,
                          refunds=refunds, engine=engine)
    stages = lifecycle_stages(rfm, act, observation_end=end, rules=lifecycle_rules, default=lifecycle_default,
                              onboarding_hours=onboarding_hours, customers=customers)
    # the RFM table's tenure_days counts from the first transaction; the lifecycle's from opening
    stages = stages.rename(columns={"tenure_days": "relationship_days", "tenure_hours": "relationship_hours"})
    df = df.merge(stages, on="customer_id", how="left")
    if customers is not None:
        tags = [c for c in TAG_COLUMNS if c in customers.columns]
        df = df.merge(customers[["customer_id", *tags]], on="customer_id", how="left")
    if balances is not None:
        bal = latest_balances(balances, observation_end=end, engine=engine,
                              columns=("aum", "deposits", "loans", "n_products"))
        keep = [c for c in ("aum", "deposits", "loans", "n_products") if c in bal.columns]
        df = df.merge(bal[["customer_id", *keep]], on="customer_id", how="left")
        df["value"] = df["aum"]
    else:
        df["value"] = df["monetary"]
    peers = [c for c in wallet_peer_columns if c in df.columns]
    if "aum" in df.columns:
        df["wallet_share_proxy"] = wallet_share_proxy(df, value_col="aum", peer_columns=peers,
                                                      quantile=wallet_quantile)
    df = service_tiers(df, rules=tier_rules, default=tier_default, value_col="value")
    if balances is None:
        df["tier"] = NOT_TIERED
    df.attrs["findings"] = rfm.attrs.get("findings", [])
    df.attrs["edges"] = sc.attrs.get("edges", {})
    return df


def current_segments(tables: dict[str, Any], *, segments_path: Any = None, observation_end: Any,
                     engine: str | None = None, **snapshot_args: Any) -> tuple[pd.DataFrame, str]:
    """Segment, lifecycle stage and service tier per customer at ``observation_end``, and their source.

    From ``segments_path`` (``restricted/tables/segments.parquet`` of a 01 run, read with
    :func:`rmanalytics.io.read_segments`) when given, else recomputed with :func:`segment_snapshot`
    on ``tables`` (transactions, customers, balances) at ``observation_end`` with ``snapshot_args``
    (the segmentation rules; the notebooks pass ``SegmentationParams().snapshot_args()``).
    Returns ``(frame with customer_id, segment, lifecycle_stage, tier; source)``, source in
    :data:`SEGMENT_SOURCES`.

    Segments at the observation end describe customers *after* the outcomes of a churn window, so
    the churn notebook does not use this function: see :func:`rmanalytics.churn.add_segments`.
    """
    seg = read_segments(segments_path)
    if seg is not None:
        return seg, "file"
    snap = segment_snapshot(tables["transactions"], observation_end=observation_end,
                            customers=tables.get("customers"), balances=tables.get("balances"),
                            engine=engine, quiet=True, **snapshot_args)
    return snap[list(SEGMENT_COLUMNS)], "recomputed"
