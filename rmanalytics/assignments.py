"""Who serves a customer on a given day, from the ``assignments`` contract table.

One rule, used by the service rules (suitability, contact compliance) and the customer-level KPIs:
the *primary* RM on a day is the assignment covering that day (``[start_date, end_date)``) with
the largest share, ties to the smallest ``rm_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def primary_rm_at(assignments: pd.DataFrame, keys: pd.DataFrame, date_col: str) -> pd.Series:
    """The primary RM of ``keys.customer_id`` on the day of ``keys[date_col]`` (a timestamp's time
    of day is ignored); NaN when no assignment covers it. Returns a Series aligned with ``keys``."""
    k = pd.DataFrame({"customer_id": keys["customer_id"].to_numpy(),
                      "_day": pd.to_datetime(keys[date_col]).dt.normalize().to_numpy(), "_row": np.arange(len(keys))})
    m = k.merge(assignments[["customer_id", "rm_id", "start_date", "end_date", "share"]], on="customer_id")
    m = m[(m["start_date"] <= m["_day"]) & (m["end_date"].isna() | (m["end_date"] > m["_day"]))]
    m = m.sort_values(["_row", "share", "rm_id"], ascending=[True, False, True], kind="mergesort").drop_duplicates("_row")
    out = np.full(len(keys), np.nan, dtype=object)
    out[m["_row"].to_numpy()] = m["rm_id"].to_numpy()
    return pd.Series(out, index=keys.index)
