"""Customer value: the latest balance snapshot (AUM, products) and a wallet-share proxy.

Wallet share (钱包份额) is the customer's assets at this bank as a share of the customer's total
assets, which the bank does not observe. The proxy follows the peer-quantile idea of wallet
estimation (Perlich, Rosset et al. 2007, "High-quantile modeling for customer wallet
estimation"): the potential wallet of a customer is a high quantile (default 90%) of AUM among
peers (same customer_type and risk_level by default), and

    wallet_share_proxy = min(1, aum / peer_quantile_aum)   (NaN when the peer quantile is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.engine import columns_of, run_sql
from rmanalytics.errors import DataError
from rmanalytics.keys import sort_rows, strictly_increasing
from rmanalytics.rfm.summary import as_date, date_literal


def latest_balances_sql(end_literal: str, columns: Sequence[str] | None = None) -> str:
    """SQL: each customer's last balance snapshot on or before the end date (all columns, or
    customer_id, snapshot_date and ``columns``).

    ``balances`` is scanned twice (the last date per customer, then the rows on it) rather than
    through a CTE used twice, which DuckDB would materialise: the whole table in memory.
    """
    pick = "b.*" if columns is None else ", ".join(
        f'b."{c}" AS "{c}"' for c in dict.fromkeys(["customer_id", "snapshot_date", *columns]))
    return f"""
WITH last AS (
    SELECT customer_id, MAX(CAST(snapshot_date AS DATE)) AS snapshot_date FROM balances
    WHERE CAST(snapshot_date AS DATE) <= {end_literal} GROUP BY customer_id
)
SELECT {pick} FROM balances b JOIN last l
  ON b.customer_id = l.customer_id AND CAST(b.snapshot_date AS DATE) = l.snapshot_date
ORDER BY b.customer_id
"""


def latest_balances(balances: Any, *, observation_end: Any, engine: str | None = None,
                    columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Each customer's latest snapshot on or before ``observation_end`` (AUM etc. in currency).

    ``balances``: contract balances as a DataFrame or Parquet/CSV path; with ``engine="spark"``
    also a Spark DataFrame or catalog table name (the aggregation then runs in Spark).
    ``columns``: only these columns besides customer_id and snapshot_date (default: all); the
    ones the table lacks are left out. A smaller result is a smaller pandas frame (about a
    tenth of a GB per column at 1M customers).

    A customer with several rows on that date is an error (the key is customer_id, snapshot_date).
    """
    end = as_date(observation_end, "observation_end")
    if columns is not None:
        present = set(columns_of(balances, engine))
        columns = [c for c in columns if c in present]
    df = run_sql(latest_balances_sql(date_literal(end), columns), {"balances": balances}, engine=engine)
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"])
    return _one_per_customer(df)


def _one_per_customer(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (one end's latest snapshots) sorted by customer_id with a fresh index; a customer
    with two rows is a DataError. The engine returns the rows sorted by customer_id: then the
    check is one pass of neighbour comparisons (:func:`rmanalytics.keys.strictly_increasing`)
    and the sort keeps the order, instead of hashing every id."""
    if strictly_increasing(df["customer_id"].to_numpy()):
        return df.reset_index(drop=True)
    dup = df["customer_id"].duplicated(keep=False)
    if dup.any():
        raise DataError(f"balances: {int(dup.sum())} rows share (customer_id, snapshot_date), "
                         f"e.g. {df.loc[dup, 'customer_id'].head(5).tolist()}")
    return sort_rows(df, ["customer_id"]).reset_index(drop=True)



def latest_balances_many_sql(end_literals: Sequence[str], columns: Sequence[str]) -> str:
    """SQL: each customer's last balance snapshot on or before each of several end dates, in one
    pass: customer_id, snapshot_date, ``columns`` and ``at_<k>`` (the row is the last snapshot on
    or before end ``k``; a row can be the last one for several ends)."""
    day = "CAST(snapshot_date AS DATE)"
    last = ", ".join(f"MAX(CASE WHEN {day} <= {e} THEN {day} END) AS d_{k}" for k, e in enumerate(end_literals))
    pick = ", ".join(f'b."{c}" AS "{c}"' for c in dict.fromkeys(["customer_id", "snapshot_date", *columns]))
    at = ", ".join(f"COALESCE(CAST(b.snapshot_date AS DATE) = l.d_{k}, FALSE) AS at_{k}"
                   for k in range(len(end_literals)))
    hit = " OR ".join(f"CAST(b.snapshot_date AS DATE) = l.d_{k}" for k in range(len(end_literals)))
    return f"""
WITH last AS (
    SELECT customer_id, {last} FROM balances
    WHERE {day} <= {max(end_literals)} GROUP BY customer_id
)
SELECT {pick}, {at} FROM balances b JOIN last l ON b.customer_id = l.customer_id
WHERE {hit}
ORDER BY b.customer_id, b.snapshot_date
"""


def latest_balances_many(balances: Any, *, observation_ends: Sequence[Any], engine: str | None = None,
                         columns: Sequence[str] | None = None) -> list[pd.DataFrame]:
    """:func:`latest_balances` at each of ``observation_ends`` from one pass over ``balances``
    (two scans in all instead of two per date); each frame equals what :func:`latest_balances`
    gives for that date. ``columns``: as there, but required (the columns besides customer_id
    and snapshot_date)."""
    if columns is None:
        raise ValueError("latest_balances_many needs columns (e.g. ('aum',))")
    ends = [as_date(e, "observation_end") for e in observation_ends]
    present = set(columns_of(balances, engine))
    cols = [c for c in columns if c in present]
    # ISO date literals sort as the dates do, so max() of the literals is the latest end
    df = run_sql(latest_balances_many_sql([date_literal(e) for e in ends], cols), {"balances": balances},
                 engine=engine)
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"])
    out = []
    for k in range(len(ends)):
        out.append(_one_per_customer(df.loc[df[f"at_{k}"].astype(bool), ["customer_id", "snapshot_date", *cols]]))
    return out


def wallet_share_proxy(df: pd.DataFrame, *, value_col: str = "aum", peer_columns: Sequence[str] = (),
                       quantile: float = 0.9) -> pd.Series:
    """min(1, value / q-quantile of value among peers); see module docstring. NaN value -> NaN."""
    missing = [c for c in [value_col, *peer_columns] if c not in df.columns]
    if missing:
        raise DataError(f"wallet_share_proxy: input lacks column(s) {missing}")
    v = df[value_col].astype("float64")
    if peer_columns:
        pot = v.groupby([df[c] for c in peer_columns], dropna=False).transform(lambda s: s.quantile(quantile))
    else:
        pot = pd.Series(v.quantile(quantile), index=df.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (v / pot.where(pot > 0)).clip(upper=1.0)
    return share.rename("wallet_share_proxy")


def percentile_rank(values: pd.Series) -> pd.Series:
    """Percentile rank in (0, 1] with ties at their average rank (independent of row order)."""
    return values.rank(method="average", pct=True)
