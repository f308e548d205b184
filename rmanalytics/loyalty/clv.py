"""Customer lifetime value: discounted expected value of future purchases (BG/NBD x Gamma-Gamma).

For a horizon of ``H`` days cut into periods of ``Δ`` days (the discounting ``time_unit``: day,
week, month = 365.25/12 days, or a number of days) with period ends ``t_k = min(kΔ, H)``:

``CLV = Σ_k (E[Y(t_k)] - E[Y(t_{k-1})]) · E[M] / (1 + d)^(t_k/365)``

where ``E[Y(t)]`` is the BG/NBD expected number of purchases in the next ``t`` given the
customer's history, ``E[M]`` the Gamma-Gamma expected average value and ``d`` the **annual**
discount rate. For whole periods the discount factor is ``(1 + d_p)^(-k)`` with the per-period
rate ``d_p = (1 + d)^(Δ/365) - 1``; purchases are discounted to the end of the period they fall
in, so finer periods converge to continuous discounting (daily ≈ weekly ≈ monthly, daily highest).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmanalytics.errors import ParameterError
from rmanalytics.loyalty.base import check_columns, check_rfm

PERIOD_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "quarter": 365.25 / 4, "year": 365.25}


def period_days(time_unit: str | float) -> float:
    """Length of a discounting period in days: 'day', 'week', 'month' (365.25/12), 'quarter', 'year' or a number."""
    if isinstance(time_unit, str):
        try:
            return PERIOD_DAYS[time_unit]
        except KeyError:
            raise ParameterError(f"time_unit must be one of {list(PERIOD_DAYS)} or a number of days, got {time_unit!r}")
    if not float(time_unit) > 0:
        raise ParameterError(f"time_unit in days must be > 0, got {time_unit!r}")
    return float(time_unit)


def period_discount_rate(discount_rate: float, time_unit: str | float) -> float:
    """Per-period discount rate from an annual one: ``(1 + annual)^(period_days/365) - 1``."""
    return (1.0 + discount_rate) ** (period_days(time_unit) / 365.0) - 1.0


def customer_lifetime_value(
    bgnbd,
    gamma_gamma,
    summary: pd.DataFrame,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: str | float = "month",
    model_time_unit_days: float = 7.0,
) -> pd.DataFrame:
    """Discounted expected value of each customer's purchases over the next ``horizon`` days.

    Parameters
    ----------
    bgnbd : fitted :class:`~rmanalytics.loyalty.BetaGeoModel` (time in ``model_time_unit_days``).
    gamma_gamma : fitted :class:`~rmanalytics.loyalty.GammaGammaModel`.
    summary : columns ``frequency``, ``recency``, ``T`` (model time units), ``monetary_value``
        (currency); other columns (e.g. ``customer_id``) are carried over.
    horizon : horizon in days (e.g. 365).
    discount_rate : annual discount rate (e.g. 0.1 for 10% a year).
    time_unit : discounting period: 'day', 'week', 'month', 'quarter', 'year' or days.
    model_time_unit_days : days per model time unit (7 when recency and T are in weeks).

    Returns
    -------
    The summary's identifier columns plus ``p_alive``, ``expected_purchases`` (undiscounted,
    over the horizon), ``expected_value`` (E[M], currency), ``clv`` (currency, discounted).
    """
    check_rfm(summary)
    check_columns(summary, ["monetary_value"])
    if not horizon > 0:
        raise ParameterError(f"horizon (days) must be > 0, got {horizon!r}")
    if not discount_rate > -1:
        raise ParameterError(f"discount_rate (annual) must be > -1, got {discount_rate!r}")
    step = period_days(time_unit)
    n = int(np.ceil(horizon / step - 1e-9))
    ends = np.minimum(np.arange(1, n + 1) * step, horizon)  # period ends, days
    f = summary["frequency"].to_numpy(dtype=float)
    r = summary["recency"].to_numpy(dtype=float)
    T = summary["T"].to_numpy(dtype=float)
    cum_prev = np.zeros(len(summary))
    disc = np.zeros(len(summary))
    for t_end in ends:
        cum = np.asarray(bgnbd.expected_purchases(t_end / model_time_unit_days, f, r, T), dtype=float)
        disc += (cum - cum_prev) / (1.0 + discount_rate) ** (t_end / 365.0)
        cum_prev = cum
    value = np.asarray(gamma_gamma.expected_average_value(f, summary["monetary_value"].to_numpy(dtype=float)),
                       dtype=float)
    keep = [c for c in ("customer_id",) if c in summary.columns]
    out = summary[keep].copy()
    out["p_alive"] = np.asarray(bgnbd.p_alive(f, r, T), dtype=float)
    out["expected_purchases"] = cum_prev
    out["expected_value"] = value
    out["clv"] = disc * value
    return out
