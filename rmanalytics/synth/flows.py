"""Synthetic daily-average deposits (with window dressing) and NPL flows (issue 18).

Adds the optional ``balances`` columns to the month-end snapshots of :mod:`rmanalytics.synth.bank`
without changing any existing column (own random stream ``"balance_flows"``):

- ``deposits_avg`` (日均, the month's average daily deposit balance): ``deposits x exp(N(0,
  0.02))`` (the month end is a typical day), except that the customers whose first RM is one of
  the window-dressing RMs (``truth.window_dressing_share`` of the initial RMs, listed in
  ``truth.window_dressing_rms``) have their **quarter-end** month-end deposits inflated:
  ``deposits_avg = deposits / (1 + window_dressing_uplift)`` in March, June, September and December
  (money parked for the reporting date, gone after it). Month-end deposit KPIs reward this;
  daily-average KPIs do not.
- ``npl_new``: the NPL balance in the month a loan turns non-performing (0 otherwise).
- ``recovered``: the month's decrease of a non-performing balance, ``max(npl_prev - npl, 0)``
  while the loan stays non-performing; ``written_off`` is 0 (the synthetic bank writes nothing off).
"""

from __future__ import annotations

import numpy as np


def add_balance_flows(rng: np.random.Generator, bal: dict, first_rm: np.ndarray, n_rms_initial: int,
                      truth) -> list:
    """Add ``deposits_avg, npl_new, recovered, written_off`` to the balances dict ``bal`` (arrays
    per snapshot, ``bal["cust"]`` the customer index, snapshots sorted by customer then month) in
    place; return the indices of the window-dressing RMs."""
    n_rows = len(bal["cust"])
    n_dress = int(round(truth.window_dressing_share * n_rms_initial))
    dressers = np.sort(rng.choice(n_rms_initial, size=n_dress, replace=False)) if n_dress else np.array([], int)
    noise = np.exp(rng.normal(0.0, 0.02, size=n_rows))
    month = bal["snapshot_date"].astype("datetime64[M]").astype(np.int64) % 12  # 0 = January
    quarter_end = month % 3 == 2
    dressed = np.isin(first_rm[bal["cust"]], dressers) & quarter_end
    bal["deposits_avg"] = np.where(dressed, bal["deposits"] / (1.0 + truth.window_dressing_uplift),
                                   bal["deposits"] * noise)
    c = bal["cust"]
    same = np.concatenate([[False], c[1:] == c[:-1]])
    prev = np.concatenate([[0.0], bal["npl"][:-1]])
    prev = np.where(same, prev, 0.0)
    npl = bal["npl"]
    bal["npl_new"] = np.where((npl > 0) & (prev == 0) & same, npl, 0.0)
    bal["recovered"] = np.where((npl > 0) & (prev > 0), np.maximum(prev - npl, 0.0), 0.0)
    bal["written_off"] = np.zeros(n_rows)
    return dressers.tolist()
