"""Tables for relationship managers: P(alive) matrix, loyalty scores, CLV deciles, by-segment views."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def p_alive_matrix(model, *, max_frequency: int | None = None, T: float | None = None,
                   n_recency: int = 20, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """P(alive) for a customer of age ``T`` by frequency (rows) and recency (columns, model units).

    Defaults from ``summary``: ``T`` = its maximum T, ``max_frequency`` = its 99th percentile of
    frequency. Recency runs from 0 to T in ``n_recency`` steps. Cells with frequency 0 and
    recency > 0 are impossible and left NaN.
    """
    if T is None:
        T = float(summary["T"].max()) if summary is not None else 52.0
    if max_frequency is None:
        max_frequency = int(np.ceil(summary["frequency"].quantile(0.99))) if summary is not None else 20
        max_frequency = max(max_frequency, 1)
    freq = np.arange(0, max_frequency + 1)
    rec = np.linspace(0, T, n_recency + 1)
    F, R = np.meshgrid(freq, rec, indexing="ij")
    P = np.asarray(model.p_alive(F.ravel(), R.ravel(), np.full(F.size, T)), dtype=float).reshape(F.shape)
    P[(F == 0) & (R > 0)] = np.nan
    return pd.DataFrame(P, index=pd.Index(freq, name="frequency"), columns=pd.Index(np.round(rec, 2), name="recency"))


def loyalty_scores(model, summary: pd.DataFrame, *, horizon: float) -> pd.DataFrame:
    """Loyalty score per customer.

    ``expected_purchases`` = E[purchases in the next ``horizon`` model time units | history] (it
    combines how likely the customer is still active and how often they buy);
    ``loyalty_score`` = its percentile rank among the customers, 0-100 (ties share the mean rank).
    Also returns ``p_alive``.
    """
    f, r, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    keep = [c for c in ("customer_id",) if c in summary.columns]
    out = summary[keep].copy()
    out["p_alive"] = np.asarray(model.p_alive(f, r, T), dtype=float)
    out["expected_purchases"] = np.asarray(model.expected_purchases(horizon, f, r, T), dtype=float)
    out["loyalty_score"] = loyalty_score(out["expected_purchases"])
    return out


def loyalty_score(expected_purchases: pd.Series) -> pd.Series:
    """Percentile rank (0-100, ties share the mean rank) of expected future purchases."""
    return 100.0 * expected_purchases.rank(pct=True, method="average")


def clv_deciles(clv: pd.DataFrame, value_col: str = "clv") -> pd.DataFrame:
    """Customers ranked by CLV into deciles (1 = top 10%); customers, total, share and means per decile."""
    n = len(clv)
    rank = clv[value_col].rank(method="first", ascending=False)
    dec = np.ceil(rank / n * 10).clip(1, 10).astype(int)
    df = clv.assign(clv_decile=dec)
    aggs = {"customers": (value_col, "size"), "total_clv": (value_col, "sum"), "mean_clv": (value_col, "mean"),
            "min_clv": (value_col, "min")}
    if "p_alive" in df.columns:
        aggs["mean_p_alive"] = ("p_alive", "mean")
    out = df.groupby("clv_decile").agg(**aggs)
    total = out["total_clv"].sum()
    out["share"] = out["total_clv"] / total if total else np.nan
    out["cumulative_share"] = out["share"].cumsum()
    return out


def by_segment(values: pd.DataFrame, segments: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    """Loyalty and CLV by segment: customers, mean P(alive), mean loyalty score, total/mean CLV, CLV share.

    ``values`` has ``customer_id`` plus any of ``p_alive``, ``loyalty_score``, ``clv``;
    ``segments`` has ``customer_id`` and the ``by`` column(s). Customers of ``values`` without a
    segment row are reported under ``"(none)"``, never dropped.
    """
    by = [by] if isinstance(by, str) else list(by)
    seg = segments[["customer_id", *by]].drop_duplicates("customer_id")
    return _by_segment(values.merge(seg, on="customer_id", how="left"), by)


def by_segments(values: pd.DataFrame, segments: pd.DataFrame, columns: Sequence[str]) -> dict[str, pd.DataFrame]:
    """:func:`by_segment` for each of ``columns`` (e.g. segment, lifecycle_stage, tier), each
    equal to ``by_segment(values, segments, column)``, with one join of ``values`` to
    ``segments`` for all of them instead of one per column (a join of two per-customer tables
    is most of the work)."""
    cols = list(dict.fromkeys(columns))
    merged = values.merge(segments[["customer_id", *cols]].drop_duplicates("customer_id"), on="customer_id",
                          how="left")
    return {c: _by_segment(merged, [c]) for c in cols}


def _by_segment(merged: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The :func:`by_segment` table of ``values`` already left-joined to the ``by`` column(s)."""
    df = merged[[c for c in ("customer_id", "p_alive", "loyalty_score", "clv", *by) if c in merged.columns]].copy()
    for c in by:
        df[c] = df[c].astype(object).where(df[c].notna(), "(none)")
    aggs: dict = {"customers": ("customer_id", "size")}
    for col, name, fn in (("p_alive", "mean_p_alive", "mean"), ("loyalty_score", "mean_loyalty_score", "mean"),
                          ("clv", "total_clv", "sum"), ("clv", "mean_clv", "mean")):
        if col in df.columns:
            aggs[name] = (col, fn)
    out = df.groupby(by, dropna=False).agg(**aggs)
    if "total_clv" in out.columns:
        out["clv_share"] = out["total_clv"] / out["total_clv"].sum()
    return out.sort_values(out.columns[-1] if "clv_share" in out.columns else "customers", ascending=False)


def localize_index(df: pd.DataFrame, kind: str, lang: str = "en") -> pd.DataFrame:
    """Relabel the index (segment / stage / tier keys of notebook 01) in ``lang``.

    Keys are looked up as ``"<kind>:<key>"`` (the namespacing of :mod:`rmanalytics.rfm`); keys
    without a registered label are kept as they are.
    """
    from rmanalytics.labels import label

    out = df.copy()
    names = []
    for k in out.index:
        lab = label(f"{kind}:{k}", lang) if isinstance(k, str) else k
        names.append(k if lab == f"{kind}:{k}" else lab)
    out.index = pd.Index(names, name=df.index.name)
    return out
