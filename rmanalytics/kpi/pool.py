"""The shared performance pool (公共绩效池, 003 篇2): size it and allocate it.

Seed 003 篇2: a share of every RM's performance bonus is set aside in a common pool, used to make
good the losses of RMs whose results fell in the period for reasons outside their control
(environment, cycle), and to compensate hard-working RMs with poor results. This module sizes the
pool and allocates it on the split of each RM's KPI change into book, market and RM parts
(:func:`rmanalytics.kpi.rm_market_split`).

Rules (every threshold is a parameter)
--------------------------------------
- Pool size = ``pool_share`` x ``bonus_budget`` (currency).
- An RM is **eligible** when (1) the KPI fell (``change < 0``), (2) the market part is negative
  (``market < 0``: the market-driven shortfall is ``-market``), and (3) the RM's own part did not
  cause the fall: the RM's own negative part is at most ``own_share_max`` of the negative parts
  ``(-min(rm, 0)) / (-min(rm, 0) - market)`` (default 0.5: the own part is not larger than the
  market's). An RM failing (3) gets zero, "own part caused the shortfall", whatever the market.
- Eligible RMs share the pool **in proportion to the market-driven shortfall** ``-market``, each
  capped at ``cap_share`` x pool (and optionally at ``cap_to_shortfall`` x their own market
  shortfall, so nobody is paid more than the market took); what a cap cuts is re-shared among the
  uncapped RMs (water-filling), so proportionality holds among the uncapped ones.
- Amounts are rounded to ``decimals`` (cents) by the largest-remainder method, so the table sums
  **exactly** to the pool. When every eligible RM is capped, or nobody is eligible, the rest is one
  row ``rm_id = "(carried forward)"`` with its reason: the table still sums to the pool.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, ParameterError, rule_message

CARRIED = "(carried forward)"



def _largest_remainder(x: np.ndarray, total: float, decimals: int) -> np.ndarray:
    """Round ``x`` (summing to ``total``) to ``decimals`` so that the rounded values sum to ``total``."""
    f = 10.0 ** decimals
    units_total = int(round(total * f))
    raw = x * f
    fl = np.floor(raw + 1e-9)
    short = units_total - int(fl.sum())
    if short > 0:
        order = np.argsort(-(raw - fl), kind="stable")
        fl[order[:short]] += 1
    elif short < 0:
        order = np.argsort(raw - fl, kind="stable")
        fl[order[:-short]] -= 1
    return fl / f


def _water_fill(w: np.ndarray, caps: np.ndarray, total: float) -> np.ndarray:
    """Split ``total`` proportionally to ``w`` with per-unit ``caps`` (re-sharing what caps cut)."""
    alloc = np.zeros_like(w)
    free = w > 0
    remaining = total
    while free.any() and remaining > 1e-12:
        share = remaining * w[free] / w[free].sum()
        room = caps[free] - alloc[free]
        hit = share >= room - 1e-12
        if not hit.any():
            alloc[free] += share
            remaining = 0.0
            break
        idx = np.flatnonzero(free)[hit]
        remaining -= float((caps[idx] - alloc[idx]).sum())
        alloc[idx] = caps[idx]
        free[idx] = False
    return alloc


def performance_pool(split: pd.DataFrame, *, bonus_budget: float, pool_share: float = 0.05,
                     cap_share: float = 0.25, cap_to_shortfall: float | None = 1.0,
                     own_share_max: float = 0.5, decimals: int = 2, unit: str = "rm_id") -> pd.DataFrame:
    """Allocate the shared performance pool (see module docstring for the rules).

    Parameters
    ----------
    split : from :func:`rmanalytics.kpi.rm_market_split` (index or column ``unit``; columns
        ``change, book, market, rm``, currency of the KPI).
    bonus_budget : the period's total bonus budget (currency).
    pool_share : share of the bonus budget set aside as the pool (0-1).
    cap_share : an RM receives at most this share of the pool (0-1].
    cap_to_shortfall : an RM receives at most this multiple of its market-driven shortfall
        (KPI currency); None: no such cap.
    own_share_max : largest share of the negative parts that may be the RM's own (0-1).
    decimals : rounding of the amounts (2 = cents).

    Returns
    -------
    One row per RM (plus a ``(carried forward)`` row when needed): ``rm_id, change, market, rm,
    book, market_shortfall, eligible, reason, weight, capped, allocation``; the allocations sum
    exactly to the pool (``attrs['pool']``).
    """
    for name, v, lo, hi in (("pool_share", pool_share, 0.0, 1.0), ("cap_share", cap_share, 1e-12, 1.0),
                            ("own_share_max", own_share_max, 0.0, 1.0)):
        if not lo <= v <= hi:
            raise ParameterError(f"performance_pool: {name} must be within [{lo:g}, {hi:g}], got {v}")
    if bonus_budget < 0:
        raise ParameterError(f"performance_pool: bonus_budget must be >= 0, got {bonus_budget}")
    if cap_to_shortfall is not None and cap_to_shortfall <= 0:
        raise ParameterError(f"performance_pool: cap_to_shortfall must be > 0 or None, got {cap_to_shortfall}")
    df = split.reset_index() if unit not in split.columns else split.copy()
    miss = [c for c in (unit, "change", "market", "rm", "book") if c not in df.columns]
    if miss:
        raise DataError(rule_message("split", f"columns {miss} present", len(df), [],
                                     "pass the output of rmanalytics.kpi.rm_market_split"))
    bad = df[["change", "market", "rm"]].isna().any(axis=1)
    if bad.any():
        raise DataError(rule_message("split", "change, market and rm are not missing", int(bad.sum()),
                                     df.loc[bad, unit].head(5).tolist(), "split the KPI change first"))
    pool = round(float(pool_share) * float(bonus_budget), decimals)
    change, market, rm = (df[c].to_numpy(float) for c in ("change", "market", "rm"))
    shortfall = np.maximum(-market, 0.0)
    own_neg = np.maximum(-rm, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        own_frac = np.where(own_neg + shortfall > 0, own_neg / (own_neg + shortfall), 0.0)
    fell, mkt_down = change < 0, market < 0
    own = fell & mkt_down & (own_frac > own_share_max)
    eligible = fell & mkt_down & ~own
    reason = np.where(~fell, "pool_no_fall", np.where(~mkt_down, "pool_market_up",
                                                       np.where(own, "pool_own_part", "pool_eligible")))
    w = np.where(eligible, shortfall, 0.0)
    caps = np.full(len(df), cap_share * pool)
    if cap_to_shortfall is not None:
        caps = np.minimum(caps, cap_to_shortfall * shortfall)
    alloc = _water_fill(w, np.where(eligible, caps, 0.0), pool) if pool > 0 else np.zeros(len(df))
    carried = max(pool - float(alloc.sum()), 0.0)
    out = pd.DataFrame({unit: df[unit].to_numpy(), "change": change, "market": market, "rm": rm,
                        "book": df["book"].to_numpy(float), "market_shortfall": shortfall, "eligible": eligible,
                        "reason": reason, "weight": w / w.sum() if w.sum() > 0 else 0.0,
                        "capped": eligible & (alloc >= caps - 1e-9) & (w > 0), "allocation": alloc})
    if carried > 10.0 ** -decimals / 2:
        out = pd.concat([out, pd.DataFrame([{unit: CARRIED, "eligible": False, "reason": "pool_carried",
                                             "capped": False, "allocation": carried, "weight": 0.0}])],
                        ignore_index=True)
    out["allocation"] = _largest_remainder(out["allocation"].to_numpy(float), pool, decimals)
    out = out.sort_values(["allocation", unit], ascending=[False, True], kind="stable").reset_index(drop=True)
    out.attrs.update(pool=pool, pool_share=pool_share, bonus_budget=bonus_budget, cap_share=cap_share,
                     cap_to_shortfall=cap_to_shortfall, own_share_max=own_share_max)
    return out


def worst_market_step(market_index: pd.Series) -> tuple:
    """The consecutive pair of periods ``(base, current)`` with the largest relative fall of the
    market index (e.g. from :func:`rmanalytics.kpi.estimate_market_index`); the default periods of
    a pool allocation when none are given. Raises when the index never falls."""
    s = market_index.sort_index()
    if len(s) < 2:
        raise ValueError("worst_market_step needs at least two periods")
    rel = (s / s.shift(1) - 1.0).iloc[1:]
    i = int(np.argmin(rel.to_numpy()))
    if rel.iloc[i] >= 0:
        raise ValueError("the market index never falls: no market-driven shortfall to compensate")
    return s.index[i], s.index[i + 1]


def plot_pool_allocation(alloc: pd.DataFrame, *, unit: str = "rm_id", top: int = 20, title: str | None = None):
    """Bar chart of the pool allocation (CNY) of the ``top`` largest receivers, with each RM's
    market-driven shortfall (KPI currency) beside it; returns the Figure."""
    import matplotlib.pyplot as plt

    a = alloc[alloc["allocation"] > 0].head(top)
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(len(a), 3) + 1.2))
    y = np.arange(len(a))
    ax.barh(y, a["allocation"], color="#4c72b0", label="allocation (CNY)")
    ax.set_yticks(y, a[unit].astype(str))
    ax.invert_yaxis()
    ax.set_xlabel("pool allocation (CNY)")
    ax2 = ax.twiny()
    ax2.plot(a["market_shortfall"].fillna(0.0), y, "o", color="#dd8452", label="market-driven shortfall")
    ax2.set_xlabel("market-driven shortfall of the KPI (currency)")
    ax.set_title(title or f"Shared performance pool: {alloc.attrs.get('pool', float('nan')):,.2f} CNY", pad=30)
    fig.tight_layout()
    return fig
