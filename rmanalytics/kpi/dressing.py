"""Window dressing: month-end deposits against the month's daily average (001: 存款日均).

Month-end balances are easy to window-dress: money parked on the reporting date and gone after
it. Where the data has daily averages (``balances.deposits_avg`` or ``daily_balances``), the gap
``avg_deposits_month_end / avg_deposits - 1`` per RM and period shows how much of the month-end
figure the daily average does not support. A flag is a question for the RM's manager, not a
finding of misconduct.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def deposit_definition_gap(kpis: pd.DataFrame, *, threshold: float = 0.02) -> pd.DataFrame:
    """Per RM and period: ``avg_deposits`` (daily average), ``avg_deposits_month_end``, ``gap``
    (month-end / daily average - 1) and ``flag`` (gap above ``threshold``), and per RM the mean gap
    in ``rm_mean_gap``. Sorted by ``rm_mean_gap``, largest first."""
    need = ["rm_id", "period", "avg_deposits", "avg_deposits_month_end"]
    miss = [c for c in need if c not in kpis.columns]
    if miss:
        raise ValueError(f"deposit_definition_gap: kpis lacks {miss}")
    out = kpis[need].copy()
    den = out["avg_deposits"].where(out["avg_deposits"] > 0)
    out["gap"] = out["avg_deposits_month_end"] / den - 1.0
    out["flag"] = out["gap"] > threshold
    out["rm_mean_gap"] = out.groupby("rm_id")["gap"].transform("mean")
    out.attrs["same_definition"] = bool(np.allclose(out["avg_deposits"], out["avg_deposits_month_end"]))
    return out.sort_values(["rm_mean_gap", "rm_id", "period"], ascending=[False, True, True]).reset_index(drop=True)
