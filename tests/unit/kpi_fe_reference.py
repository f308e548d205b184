"""The dense dummy-variable fixed-effects estimators before issue 16's second pass, kept verbatim
(renamed) as the reference the within-transformation versions must reproduce
(tests/unit/test_kpi_fixed_effects.py). Test-only: a dummy column per RM, so for small panels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.engine import one_blas_thread
from rmanalytics.errors import DataError, ParameterError
from rmanalytics.kpi.shapley import Policy, shapley_decomposition


def reference_market_index(
    panel: pd.DataFrame,
    *,
    unit: str = "rm_id",
    period: str = "period",
    value: str = "fee_income",
    volume: str = "volume",
) -> pd.Series:
    """The common (market) movement of ``value / volume`` across units, by period.

    Fits the two-way fixed-effects model ``log(value / volume) = a_unit + g_period + e`` by least
    squares (units and periods as dummies) and returns ``exp(g_period)`` normalised to 1 in the
    first period. ``g`` is what moves every unit's yield together: the market and the cycle.
    Rows with value or volume <= 0 cannot enter the log; their number is stored in
    ``attrs["n_excluded"]``.
    """
    df = panel[[unit, period, value, volume]].copy()
    ok = (df[value] > 0) & (df[volume] > 0)
    n_excluded = int((~ok).sum())
    df = df[ok]
    if df.empty:
        raise DataError(f"estimate_market_index: no rows with {value} > 0 and {volume} > 0")
    y = np.log(df[value].to_numpy(float) / df[volume].to_numpy(float))
    units = pd.Categorical(df[unit])
    pers = pd.Categorical(df[period], categories=sorted(df[period].unique()))
    X = np.column_stack([
        pd.get_dummies(units).to_numpy(float),
        pd.get_dummies(pers).to_numpy(float)[:, 1:],
    ])
    with one_blas_thread():  # a few hundred dummies: BLAS threads only compete with the other notebook
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    g = np.concatenate([[0.0], coef[len(units.categories):]])
    out = pd.Series(np.exp(g), index=pd.Index(pers.categories, name=period), name="market_index")
    out.attrs["n_excluded"] = n_excluded
    return out


def _product3(v: dict[str, Any]) -> float:
    return float(v["book"] * v["market"] * v["rm"])


def reference_rm_market_split(
    panel: pd.DataFrame,
    base_period: Any,
    current_period: Any,
    *,
    unit: str = "rm_id",
    period: str = "period",
    value: str = "fee_income",
    volume: str = "volume",
    market_index: pd.Series | None = None,
    policy: Policy = "direct",
) -> pd.DataFrame:
    """Split each RM's KPI change into what the book, the market and the RM drove.

    Each unit's value in a period is written as ``book * market * rm`` where ``book`` = the
    ``volume`` of the RM's book in the period (e.g. transaction amount of the customers credited
    to the RM, currency: inherited or reassigned customers move it), ``market`` = the common index
    from the market index (outside any RM's control) and ``rm`` = the rest
    (``value / (book * market)``: the RM's yield on the book, which their activity drives).
    The change is split by the exact Shapley value of this three-factor product: ``book + market
    + rm == change`` for every RM. The ``market`` part is the basis of a shared performance pool.

    Units present in only one of the periods cannot be split (no yield in the other period); they
    are kept with their whole change in ``joined_left`` so that the table still adds up to the
    bank total.

    Parameters
    ----------
    panel : one row per unit and period with ``value`` and ``volume``.
    base_period, current_period : the periods compared (values of ``period``).
    market_index : index by period; default: estimated from ``panel``.
    policy : ``"direct"`` or ``"chain"`` (sum of consecutive-period splits).

    Returns
    -------
    Frame per unit: ``base, current, change, book, market, rm, joined_left``.
    """
    if policy not in ("direct", "chain"):
        raise ParameterError(f"policy must be 'direct' or 'chain', got {policy!r}")
    if market_index is None:
        market_index = reference_market_index(panel, unit=unit, period=period, value=value, volume=volume)
    all_periods = sorted(panel[period].unique())
    if base_period not in all_periods or current_period not in all_periods:
        raise ParameterError(f"periods {base_period!r}/{current_period!r} not in panel periods {all_periods[:3]}...")
    i0, i1 = all_periods.index(base_period), all_periods.index(current_period)
    if i1 <= i0:
        raise ParameterError("current_period must come after base_period")
    steps = [(base_period, current_period)] if policy == "direct" else \
        list(zip(all_periods[i0:i1], all_periods[i0 + 1:i1 + 1]))
    wide_v = panel.pivot_table(index=unit, columns=period, values=value, aggfunc="sum")
    wide_b = panel.pivot_table(index=unit, columns=period, values=volume, aggfunc="sum")
    rows = []
    for u in wide_v.index:
        acc = {"book": 0.0, "market": 0.0, "rm": 0.0, "joined_left": 0.0}
        for p0, p1 in steps:
            v0, v1 = wide_v.at[u, p0] if p0 in wide_v else np.nan, wide_v.at[u, p1] if p1 in wide_v else np.nan
            b0, b1 = wide_b.at[u, p0] if p0 in wide_b else np.nan, wide_b.at[u, p1] if p1 in wide_b else np.nan
            v0n, v1n = (0.0 if pd.isna(v0) else float(v0)), (0.0 if pd.isna(v1) else float(v1))
            if any(pd.isna(x) or x <= 0 for x in (b0, b1)) or v0n <= 0 or v1n <= 0:
                acc["joined_left"] += v1n - v0n
                continue
            m0, m1 = float(market_index[p0]), float(market_index[p1])
            part = shapley_decomposition(
                _product3,
                {"book": float(b0), "market": m0, "rm": v0n / (float(b0) * m0)},
                {"book": float(b1), "market": m1, "rm": v1n / (float(b1) * m1)},
            )
            for k in ("book", "market", "rm"):
                acc[k] += float(part[k])
        v_base = wide_v.at[u, base_period] if base_period in wide_v else np.nan
        v_cur = wide_v.at[u, current_period] if current_period in wide_v else np.nan
        base_v = 0.0 if pd.isna(v_base) else float(v_base)
        cur_v = 0.0 if pd.isna(v_cur) else float(v_cur)
        rows.append({unit: u, "base": base_v, "current": cur_v, "change": cur_v - base_v, **acc})
    out = pd.DataFrame(rows).set_index(unit)
    out.attrs["policy"] = policy
    return out


def reference_fe_regression(panel: pd.DataFrame, y: str, X: list[str], *, unit: str = "rm_id",
                  time: str = "month_start") -> pd.DataFrame:
    """OLS of ``y`` on ``X`` with ``unit`` and ``time`` fixed effects; SEs clustered by ``unit``.

    Returns ``coef, se, ci_low, ci_high`` (95 %, normal) per column of ``X``; association only.
    The clustered covariance is the CR1 sandwich ``G/(G-1) (n-1)/(n-k) (X'X)^-1 sum_g X_g'u_g
    u_g'X_g (X'X)^-1``.
    """
    df = panel[[y, unit, time, *X]].dropna()
    Z = np.column_stack([
        df[X].to_numpy(float),
        pd.get_dummies(df[unit].astype(str)).to_numpy(float),
        pd.get_dummies(df[time].astype(str)).to_numpy(float)[:, 1:],
    ])
    yy = df[y].to_numpy(float)
    codes = pd.factorize(df[unit])[0]
    G = codes.max() + 1
    with one_blas_thread():
        pinv = np.linalg.pinv(Z.T @ Z)
        beta = pinv @ (Z.T @ yy)
        u = yy - Z @ beta
        # per-cluster score sums s_g = Z_g' u_g (rows sorted by cluster, summed in one pass): meat = S'S
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        S = np.add.reduceat(Z[order] * u[order, None], starts, axis=0)
        meat = S.T @ S
        n, k = Z.shape[0], np.linalg.matrix_rank(Z)
        V = G / (G - 1) * (n - 1) / (n - k) * pinv @ meat @ pinv
    se = np.sqrt(np.diag(V)[: len(X)])
    b = beta[: len(X)]
    return pd.DataFrame({"coef": b, "se": se, "ci_low": b - 1.96 * se, "ci_high": b + 1.96 * se}, index=X)
