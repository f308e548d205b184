"""Who serves a customer on a given day, from the ``assignments`` contract table.

One rule, used by the service rules (suitability, contact compliance) and the customer-level KPIs:
the *primary* RM on a day is the assignment covering that day (``[start_date, end_date)``) with
the largest share, ties to the smallest ``rm_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmanalytics.keys import non_decreasing, positions


def primary_rm_at(assignments: pd.DataFrame, keys: pd.DataFrame, date_col: str) -> pd.Series:
    """The primary RM of ``keys.customer_id`` on the day of ``keys[date_col]`` (a timestamp's time
    of day is ignored); NaN when no assignment covers it. Returns a Series aligned with ``keys``.

    When ``assignments`` come sorted by customer_id (as the contract tables are written) with
    datetime columns, each key's assignments are found by :func:`rmanalytics.keys.positions` (a
    linear merge for sorted keys, no hashing of 10M string ids) and only customers with several
    covering assignments are ranked; otherwise by a merge. Both give the same RM."""
    day = pd.to_datetime(keys[date_col]).dt.normalize().to_numpy()
    ids, a_ids = keys["customer_id"].to_numpy(), assignments["customer_id"].to_numpy()
    dated = all(isinstance(t, np.dtype) and t.kind == "M" for t in assignments[["start_date", "end_date"]].dtypes)
    if not (dated and len(a_ids) and ids.dtype == a_ids.dtype and non_decreasing(a_ids)):
        return _primary_rm_by_merge(assignments, keys, day)
    # the assignments of each key: the run of its customer_id in the sorted table
    starts = np.flatnonzero(np.r_[True, a_ids[1:] != a_ids[:-1]])
    counts = np.diff(np.r_[starts, len(a_ids)])
    run = positions(ids, a_ids[starts])  # -1: the customer has no assignment
    n = np.where(run >= 0, counts[run], 0)  # candidate assignments per key
    row = np.repeat(np.arange(len(ids)), n)  # the key of each candidate ...
    cand = np.repeat(starts[run], n) + np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)  # ... its row
    start = assignments["start_date"].to_numpy()[cand]
    end = assignments["end_date"].to_numpy()[cand]
    d = day[row]
    cover = (start <= d) & (np.isnat(end) | (end > d))
    row, cand = row[cover], cand[cover]
    rm = assignments["rm_id"].to_numpy()
    out = np.full(len(keys), np.nan, dtype=object)
    several = np.bincount(row, minlength=len(ids)) > 1
    one = ~several[row]
    out[row[one]] = rm[cand[one]]
    if several.any():  # rank: largest share first, then smallest rm_id (NaN last in both)
        row, cand = row[~one], cand[~one]
        codes, uniq = pd.factorize(rm[cand], sort=True)
        codes = np.where(codes < 0, len(uniq), codes)
        order = np.lexsort((codes, -assignments["share"].to_numpy(dtype="float64")[cand], row))
        first = order[np.r_[True, row[order][1:] != row[order][:-1]]]
        out[row[first]] = rm[cand[first]]
    return pd.Series(out, index=keys.index)


def _primary_rm_by_merge(assignments: pd.DataFrame, keys: pd.DataFrame, day: np.ndarray) -> pd.Series:
    """:func:`primary_rm_at` by merging the keys with the assignments (any order, any dtypes)."""
    k = pd.DataFrame({"customer_id": keys["customer_id"].to_numpy(), "_day": day, "_row": np.arange(len(keys))})
    m = k.merge(assignments[["customer_id", "rm_id", "start_date", "end_date", "share"]], on="customer_id")
    start, end = pd.to_datetime(m["start_date"]), pd.to_datetime(m["end_date"])  # dates given as text too
    m = m[(start <= m["_day"]) & (end.isna() | (end > m["_day"]))]
    m = m.sort_values(["_row", "share", "rm_id"], ascending=[True, False, True], kind="mergesort").drop_duplicates("_row")
    out = np.full(len(keys), np.nan, dtype=object)
    out[m["_row"].to_numpy()] = m["rm_id"].to_numpy()
    return pd.Series(out, index=keys.index)
