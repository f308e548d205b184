"""The whole segmentation of one snapshot date in one call, or of several dates sharing the scans (the migration matrix)."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.engine import resolve_engine, run_sql
from rmanalytics.io import SEGMENT_COLUMNS, read_segments
from rmanalytics.keys import left_join
from rmanalytics.rfm.lifecycle import activity_change, activity_frame, lifecycle_stages
from rmanalytics.rfm.scores import rfm_scores
from rmanalytics.rfm.segments import rfm_segments
from rmanalytics.rfm.summary import (EXACT_MONEY, as_date, date_literal, rfm_frame, rfm_table, scan_findings_many,
                                     transaction_inputs, window_sql)
from rmanalytics.rfm.tiers import NOT_TIERED, service_tiers
from rmanalytics.rfm.value import latest_balances, latest_balances_many, wallet_share_proxy
from rmanalytics.rules import Rule, as_rules

VALUE_COLUMNS = ("aum", "deposits", "loans", "n_products")
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
    start_dates = _start_dates(customers)
    act = activity_change(transactions, observation_end=end, recent_days=recent_days,
                          baseline_days=baseline_days, min_baseline_days=min_baseline_days,
                          min_baseline_transactions=min_baseline_transactions, start_dates=start_dates,
                          refunds=refunds, engine=engine)
    bal = None
    if balances is not None:
        bal = latest_balances(balances, observation_end=end, engine=engine, columns=VALUE_COLUMNS)
    return _assemble(rfm, act, bal, observation_end=end, customers=customers, balances=balances,
                     segment_rules=segment_rules, lifecycle_rules=lifecycle_rules, tier_rules=tier_rules,
                     score_bins=score_bins, score_method=score_method, score_edges=score_edges,
                     segment_default=segment_default, onboarding_hours=onboarding_hours,
                     lifecycle_default=lifecycle_default, tier_default=tier_default,
                     wallet_peer_columns=wallet_peer_columns, wallet_quantile=wallet_quantile, quiet=quiet)


def _start_dates(customers: pd.DataFrame | None) -> pd.Series | None:
    if customers is not None and "open_date" in customers.columns:
        return customers.set_index("customer_id")["open_date"]
    return None


def _assemble(rfm: pd.DataFrame, act: pd.DataFrame, bal: pd.DataFrame | None, *, observation_end: Any,
              customers: pd.DataFrame | None, balances: Any, segment_rules, lifecycle_rules, tier_rules,
              score_bins, score_method, score_edges, segment_default, onboarding_hours, lifecycle_default,
              tier_default, wallet_peer_columns, wallet_quantile, quiet) -> pd.DataFrame:
    """Scores, segments, stages, tags, value and tiers on the RFM table, the activity change and
    the latest balances (None without balances) of one snapshot."""
    end = observation_end
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        sc = rfm_scores(rfm, bins=score_bins, method=score_method, edges=score_edges)
    seg = rfm_segments(sc, segment_rules, default=segment_default)
    # the per-customer pieces are added column by column (ids aligned once) instead of merging a
    # frame that grows to ~40 columns four times: the same frame, a fraction of the copies
    df = left_join(rfm, seg)
    stages = lifecycle_stages(rfm, act, observation_end=end, rules=lifecycle_rules, default=lifecycle_default,
                              onboarding_hours=onboarding_hours, customers=customers)
    # the RFM table's tenure_days counts from the first transaction; the lifecycle's from opening
    stages = stages.rename(columns={"tenure_days": "relationship_days", "tenure_hours": "relationship_hours"})
    df = left_join(df, stages)
    if customers is not None:
        tags = [c for c in TAG_COLUMNS if c in customers.columns]
        df = left_join(df, customers[["customer_id", *tags]])
    if balances is not None:
        keep = [c for c in VALUE_COLUMNS if c in bal.columns]
        df = left_join(df, bal[["customer_id", *keep]])
        df["value"] = df["aum"]
    else:
        df["value"] = df["monetary"]
    peers = [c for c in wallet_peer_columns if c in df.columns]
    if "aum" in df.columns:
        df["wallet_share_proxy"] = wallet_share_proxy(df, value_col="aum", peer_columns=peers,
                                                      quantile=wallet_quantile)
    used = list(dict.fromkeys(c for r in as_rules(tier_rules) for c in r.when))
    if all(c in df.columns or c == "value_pct" for c in used) and "value_pct" not in df.columns:
        # the tier rules see only the columns they name (service_tiers copies its input)
        narrow = service_tiers(df[["customer_id", "value", *[c for c in used if c in df.columns and c != "value"]]],
                               rules=tier_rules, default=tier_default, value_col="value")
        df["value_pct"] = narrow["value_pct"].to_numpy()
        df["tier"] = narrow["tier"].to_numpy()
    else:  # a rule names a column the frame lacks: service_tiers raises its error
        df = service_tiers(df, rules=tier_rules, default=tier_default, value_col="value")
    if balances is None:
        df["tier"] = NOT_TIERED
    df.attrs["findings"] = rfm.attrs.get("findings", [])
    df.attrs["edges"] = sc.attrs.get("edges", {})
    return df


def snapshots_sql(window: str, ends: Sequence[dt.date], *, recent_days: int, baseline_days: int,
                  distinct_days: bool = False) -> str:
    """SQL of the RFM table and the activity windows at several observation ends in one scan of
    ``window`` (a SELECT of customer_id, date, amount up to the latest end): per customer and end
    ``k`` the columns of :func:`rmanalytics.rfm.summary.rfm_sql` and of
    :func:`rmanalytics.rfm.lifecycle.activity_sql` suffixed ``_k`` (NULL / 0 for a customer
    without transactions up to that end). Conditional aggregates compute exactly what the
    one-end queries compute (money is summed exactly, so the sums are the same bits)."""
    cols = []
    for k, e in enumerate(ends):
        el = date_literal(e)
        recent = e - dt.timedelta(days=recent_days)
        base = recent - dt.timedelta(days=baseline_days)
        rl, bl = date_literal(recent), date_literal(base)
        d = f"CASE WHEN date <= {el} THEN date END"
        days = f"COUNT(DISTINCT {d})" if distinct_days else "CAST(NULL AS BIGINT)"
        cols.append(f"""
       date_diff('day', MAX({d}), {el}) AS recency_days_{k},
       COUNT({d}) AS n_transactions_{k},
       {days} AS n_days_{k},
       CAST(SUM(CASE WHEN date <= {el} THEN CAST(amount AS {EXACT_MONEY}) END) AS DOUBLE) AS monetary_{k},
       MIN({d}) AS first_date_{k},
       MAX({d}) AS last_date_{k},
       date_diff('day', MIN({d}), {el}) AS tenure_days_{k},
       SUM(CASE WHEN date > {rl} AND date <= {el} THEN 1 ELSE 0 END) AS recent_transactions_{k},
       SUM(CASE WHEN date > {bl} AND date <= {rl} THEN 1 ELSE 0 END) AS baseline_transactions_{k}""")
    return f"""
WITH t AS ({window})
SELECT customer_id,{','.join(cols)}
FROM t
GROUP BY customer_id
ORDER BY customer_id
"""


RFM_SQL_COLUMNS = ("customer_id", "recency_days", "n_transactions", "n_days", "monetary", "first_date", "last_date",
                   "tenure_days")


def segment_snapshots(
    transactions: Any,
    *,
    observation_ends: Sequence[Any],
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
) -> list[pd.DataFrame]:
    """:func:`segment_snapshot` at each of ``observation_ends`` (e.g. today and the migration
    matrix's "before"), sharing the scans: one findings scan and one aggregation of
    ``transactions`` for all dates (instead of two of each per date) and one pass over
    ``balances``. Each frame equals what :func:`segment_snapshot` gives for its date (same
    columns, dtypes, values and attrs). Arguments as there; ``quiet`` silences the
    :class:`BinsCollapsedWarning` of the first date, the later dates' are always silenced (they
    are comparisons). With ``engine="spark"`` the dates are computed one by one.
    """
    ends = [as_date(e, "observation_end") for e in observation_ends]
    if not ends:
        return []
    rest = dict(segment_rules=segment_rules, lifecycle_rules=lifecycle_rules, tier_rules=tier_rules,
                score_bins=score_bins, score_method=score_method, score_edges=score_edges,
                segment_default=segment_default, onboarding_hours=onboarding_hours,
                lifecycle_default=lifecycle_default, tier_default=tier_default,
                wallet_peer_columns=wallet_peer_columns, wallet_quantile=wallet_quantile)
    if frequency not in ("transactions", "days") or resolve_engine(engine, transactions) != "duckdb" or (
            balances is not None and resolve_engine(engine, balances) != "duckdb"):
        return [segment_snapshot(transactions, observation_end=e, customers=customers, balances=balances,
                                 frequency=frequency, refunds=refunds, recent_days=recent_days,
                                 baseline_days=baseline_days, min_baseline_days=min_baseline_days,
                                 min_baseline_transactions=min_baseline_transactions, engine=engine,
                                 quiet=quiet or k > 0, **rest) for k, e in enumerate(ends)]
    inputs, base = transaction_inputs(transactions, "customer_id", "date", "amount", engine=engine)
    findings = scan_findings_many(inputs, base, ends, refunds, engine=engine)
    wide = run_sql(snapshots_sql(window_sql(base, max(ends), refunds), ends, recent_days=recent_days,
                                 baseline_days=baseline_days, distinct_days=frequency == "days"),
                   inputs, engine=engine)
    bals = (latest_balances_many(balances, observation_ends=ends, engine=engine, columns=VALUE_COLUMNS)
            if balances is not None else [None] * len(ends))
    start_dates = _start_dates(customers)
    out = []
    for k, e in enumerate(ends):
        keep = (wide[f"n_transactions_{k}"] > 0).to_numpy()
        ids = wide["customer_id"].to_numpy()[keep]
        col = {c: wide.pop(f"{c}_{k}").to_numpy()[keep]  # pop: each end's columns are freed once used
               for c in (*RFM_SQL_COLUMNS[1:], "recent_transactions", "baseline_transactions")}
        one = pd.DataFrame({"customer_id": ids, **{c: col[c] for c in RFM_SQL_COLUMNS[1:]}})
        one["n_transactions"] = one["n_transactions"].astype("int64")
        rfm = rfm_frame(one, frequency, findings[k])
        act = pd.DataFrame({"customer_id": ids, "recent_transactions": col["recent_transactions"],
                            "baseline_transactions": col["baseline_transactions"], "first_date": col["first_date"]})
        del col
        recent_start = e - dt.timedelta(days=recent_days)
        act = activity_frame(act, recent_start=recent_start, recent_days=recent_days, baseline_days=baseline_days,
                             min_baseline_days=min_baseline_days,
                             min_baseline_transactions=min_baseline_transactions, start_dates=start_dates)
        out.append(_assemble(rfm, act, bals[k], observation_end=e, customers=customers, balances=balances,
                             quiet=quiet or k > 0, **rest))
        bals[k] = None
    return out


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
