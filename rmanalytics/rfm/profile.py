"""Segment profiles and the migration matrix of segments between two snapshot dates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError
from rmanalytics.keys import positions, strictly_increasing, take


def segment_profile(customers: pd.DataFrame, *, by: str = "segment", value_col: str = "value",
                    order: list[str] | None = None) -> pd.DataFrame:
    """One row per group of ``by``: customers, share, value and its share, mean R/F/M.

    Parameters
    ----------
    customers : one row per customer with ``by``, recency_days, frequency, monetary, r_score,
        f_score, m_score and optionally ``value_col`` (currency), n_products (product
        penetration) and wallet_share_proxy.
    order : order of the groups (others follow alphabetically).

    Returns
    -------
    DataFrame indexed by ``by``: customers, customer_share, value, value_share, mean_recency_days,
    mean_frequency, mean_monetary, mean_r_score, mean_f_score, mean_m_score and, when present,
    product_penetration (mean n_products) and wallet_share_proxy (mean).
    """
    need = [by, "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]
    missing = [c for c in need if c not in customers.columns]
    if missing:
        raise DataError(f"segment_profile: input lacks column(s) {missing}")
    g = customers.groupby(by, dropna=False)
    out = pd.DataFrame({"customers": g.size()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    if value_col in customers.columns:
        out["value"] = g[value_col].sum()
        total = out["value"].sum()
        out["value_share"] = out["value"] / total if total else np.nan
    for src, name in (("recency_days", "mean_recency_days"), ("frequency", "mean_frequency"),
                      ("monetary", "mean_monetary"), ("r_score", "mean_r_score"), ("f_score", "mean_f_score"),
                      ("m_score", "mean_m_score")):
        out[name] = g[src].mean()
    if "n_products" in customers.columns:
        out["product_penetration"] = g["n_products"].mean()
    if "wallet_share_proxy" in customers.columns:
        out["wallet_share_proxy"] = g["wallet_share_proxy"].mean()
    if order is not None:
        keys = [k for k in order if k in out.index] + sorted(k for k in out.index if k not in order)
        out = out.loc[keys]
    out.index.name = by
    return out


def migration_matrix(before: pd.DataFrame, after: pd.DataFrame, *, by: str = "segment",
                     order: list[str] | None = None, normalize: bool = False,
                     absent: str = "(absent)") -> pd.DataFrame:
    """Customers moving from each segment at the first snapshot (rows) to each at the second (columns).

    Customers present in only one snapshot appear in the ``absent`` row / column (new customers
    in the row ``(absent)``), so the matrix accounts for every customer. ``normalize=True`` gives
    row shares (each row sums to 1).
    """
    for name, frame in (("before", before), ("after", after)):
        missing = [c for c in ("customer_id", by) if c not in frame.columns]
        if missing:
            raise DataError(f"migration_matrix: {name} lacks column(s) {missing}")
        # sorted ids (the snapshots' order) are unique without hashing them
        if not strictly_increasing(frame["customer_id"].to_numpy()) and frame["customer_id"].duplicated().any():
            raise DataError(f"migration_matrix: {name} has duplicate customer_id")
    pairs = _segment_pairs(before, after, by)
    pairs = pairs.fillna({f"{by}_before": absent, f"{by}_after": absent})
    tab = pd.crosstab(pairs[f"{by}_before"], pairs[f"{by}_after"])
    keys = list(order or [])
    seen = sorted(set(tab.index) | set(tab.columns), key=lambda k: (k == absent, k))
    keys = [k for k in keys if k in seen] + [k for k in seen if k not in keys]
    tab = tab.reindex(index=keys, columns=keys, fill_value=0).astype("int64")
    tab.index.name, tab.columns.name = f"{by}_before", f"{by}_after"
    if normalize:
        tab = tab.div(tab.sum(axis=1).replace(0, np.nan), axis=0)
    return tab


def _segment_pairs(before: pd.DataFrame, after: pd.DataFrame, by: str) -> pd.DataFrame:
    """``by`` at both snapshots for every customer in either (NaN where absent): the columns
    ``<by>_before``, ``<by>_after`` of the outer merge on customer_id (the rows in another order,
    which the counts do not see). Ids of both frames sorted (the snapshots' order): the customers
    present in both are found by a linear merge (:func:`rmanalytics.keys.positions`), not a hash
    join of string ids."""
    b_ids, a_ids = before["customer_id"].to_numpy(), after["customer_id"].to_numpy()
    plain = all(isinstance(f[by].dtype, np.dtype) for f in (before, after))
    if not (plain and b_ids.dtype == a_ids.dtype and strictly_increasing(b_ids) and strictly_increasing(a_ids)):
        m = before[["customer_id", by]].merge(after[["customer_id", by]], on="customer_id", how="outer",
                                             suffixes=("_before", "_after"))
        return m[[f"{by}_before", f"{by}_after"]]
    pos = positions(a_ids, b_ids)  # the row in before of each customer of after, -1: new
    b_seg, a_seg = before[by], after[by]
    only_before = np.ones(len(b_ids), dtype=bool)
    only_before[pos[pos >= 0]] = False
    return pd.DataFrame({
        f"{by}_before": pd.concat([take(b_seg, pos), b_seg[only_before]], ignore_index=True),
        f"{by}_after": pd.concat([a_seg, take(a_seg, np.full(int(only_before.sum()), -1))], ignore_index=True)})
