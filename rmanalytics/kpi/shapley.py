"""Exact attribution of KPI changes: Shapley decomposition and what is built on it.

Why written here: the Shapley value of a *function of named factors* between two states (the
"Das Gupta" standardisation/decomposition of demography) is a few lines of exact enumeration;
the maintained libraries either approximate it by sampling (``shap``) or decompose only
products of scalars. Exactness (contributions sum to the change, order does not matter, an
unchanged factor gets zero) is the point, so it is implemented here and checked against Das
Gupta (1993) and Kitagawa (1955) in the tests.

Conventions
-----------
- ``kpi(values)`` maps a dict ``{factor: scalar or array}`` to a number.
- The contribution of factor *i* is the average, over all orders in which the factors switch from
  ``base`` to ``current``, of the change in the KPI when *i* switches (Shapley value). For a
  product of two factors this is Kitagawa's symmetric rate/composition split; for products of
  P factors (scalars or vectors summed over strata) it is Das Gupta's (1993) formula.
- A factor is a whole vector when it is an array: e.g. the segment mix switches as one block.
- Exact enumeration costs ``2**P`` evaluations of ``kpi``; ``P`` is limited to
  :data:`MAX_FACTORS` (12, i.e. 4,096 evaluations).

Multi-period policy (``policy`` argument where several periods are compared)
----------------------------------------------------------------------------
- ``"direct"``: compare the base period with the current period directly (one decomposition).
- ``"chain"``: decompose each consecutive pair of periods (quarter on quarter) and add the
  contributions up. Both add up exactly to the total change; they differ in how interactions are
  shared, and the chain follows the path actually taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, ParameterError
from rmanalytics.engine import one_blas_thread

MAX_FACTORS = 12

Policy = Literal["direct", "chain"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (np.ndarray, pd.Series, list, tuple)) or isinstance(b, (np.ndarray, pd.Series, list, tuple)):
        a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a_arr.shape == b_arr.shape and bool(np.array_equal(a_arr, b_arr, equal_nan=True))
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def shapley_decomposition(
    kpi: Callable[[dict[str, Any]], float],
    base: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    max_factors: int = MAX_FACTORS,
) -> pd.Series:
    """Exact Shapley split of ``kpi(current) - kpi(base)`` into one contribution per factor.

    Parameters
    ----------
    kpi : function of a dict of factor values (scalars or arrays) returning a number.
    base, current : dicts with the same keys (the factors) giving their values in each state.
    max_factors : refuse more factors than this (cost is ``2**P`` KPI evaluations).

    Returns
    -------
    Series indexed by factor (in the order of ``base``), in the KPI's unit. It sums to the total
    change up to floating-point rounding, is independent of the order of the factors (the
    enumeration runs over the sorted factor names) and is exactly 0 for a factor whose value is
    the same in both states.
    """
    keys = list(base.keys())
    if set(keys) != set(current.keys()):
        missing = sorted(set(keys) ^ set(current.keys()))
        raise DataError(f"base and current must have the same factors; differing: {missing}")
    p = len(keys)
    if p == 0:
        raise ParameterError("shapley_decomposition needs at least one factor")
    if p > max_factors:
        raise DataError(
            f"shapley_decomposition enumerates 2**P subsets exactly; {p} factors exceed the limit of "
            f"{max_factors} (group factors, or raise max_factors knowingly)"
        )
    order = sorted(keys, key=str)
    changed = [not _same(base[k], current[k]) for k in order]
    cache: dict[int, float] = {}

    def value(mask: int) -> float:
        if mask not in cache:
            vals = {k: (current[k] if (mask >> j) & 1 else base[k]) for j, k in enumerate(order)}
            out = kpi(vals)
            cache[mask] = float(np.asarray(out, dtype=float))
        return cache[mask]

    weights = [math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)]
    contrib: dict[str, float] = {}
    for j, k in enumerate(order):
        if not changed[j]:
            contrib[k] = 0.0
            continue
        terms = []
        others = [i for i in range(p) if i != j]
        for sub in range(1 << (p - 1)):
            mask = 0
            size = 0
            for b, i in enumerate(others):
                if (sub >> b) & 1:
                    mask |= 1 << i
                    size += 1
            terms.append(weights[size] * (value(mask | (1 << j)) - value(mask)))
        contrib[k] = math.fsum(terms)
    return pd.Series({k: contrib[k] for k in keys}, name="contribution", dtype=float)


# ---------------------------------------------------------------------------------------------
# Volume / mix / rate
# ---------------------------------------------------------------------------------------------

def _vmr_kpi(v: dict[str, Any]) -> float:
    return float(v["volume"] * np.sum(np.asarray(v["mix"]) * np.asarray(v["rate"])))


def volume_mix_rate(
    base: pd.DataFrame,
    current: pd.DataFrame,
    *,
    segment: str = "segment",
    count: str = "customers",
    value: str = "fee_income",
) -> pd.Series:
    """Split the change of a total (e.g. fee income) into volume, mix and rate effects.

    ``total = N * sum_s mix_s * rate_s`` with ``N`` = total ``count`` (e.g. customers),
    ``mix_s = count_s / N`` (the segment shares, switched as one vector factor) and
    ``rate_s = value_s / count_s`` (e.g. fee income per customer, currency per customer).

    Mix convention: a segment present in only one of the two periods has no rate in the other;
    its rate there is taken from the period where it exists, so its appearance or disappearance is
    counted as *mix*, never as *rate*. Segments are aligned by name.

    Parameters
    ----------
    base, current : one row per segment with columns ``segment``, ``count``, ``value``.

    Returns
    -------
    Series ``volume, mix, rate`` (unit of ``value``) summing to ``total(current) - total(base)``.
    """
    for name, df in (("base", base), ("current", current)):
        miss = [c for c in (segment, count, value) if c not in df.columns]
        if miss:
            raise DataError(f"volume_mix_rate: {name} lacks columns {miss}")
        dup = df[segment].duplicated()
        if dup.any():
            raise DataError(f"volume_mix_rate: {name} has {int(dup.sum())} duplicated segments, e.g. "
                             f"{df.loc[dup, segment].head(3).tolist()}")
        neg = df[count] < 0
        if neg.any():
            raise DataError(f"volume_mix_rate: {name}.{count} must be >= 0; {int(neg.sum())} rows are negative")
    segs = sorted(set(base[segment]) | set(current[segment]), key=str)
    b = base.set_index(segment).reindex(segs)
    c = current.set_index(segment).reindex(segs)
    nb, nc = b[count].fillna(0.0).to_numpy(float), c[count].fillna(0.0).to_numpy(float)
    vb, vc = b[value].fillna(0.0).to_numpy(float), c[value].fillna(0.0).to_numpy(float)
    bad = ((nb == 0) & (vb != 0)) | ((nc == 0) & (vc != 0))
    if bad.any():
        raise DataError(f"volume_mix_rate: segments with {value} but zero {count}: "
                         f"{[s for s, x in zip(segs, bad) if x][:5]}")
    with np.errstate(divide="ignore", invalid="ignore"):
        rb = np.where(nb > 0, vb / np.where(nb > 0, nb, 1), np.nan)
        rc = np.where(nc > 0, vc / np.where(nc > 0, nc, 1), np.nan)
    rb = np.where(np.isnan(rb), rc, rb)
    rc = np.where(np.isnan(rc), rb, rc)
    rb, rc = np.nan_to_num(rb), np.nan_to_num(rc)
    Nb, Nc = nb.sum(), nc.sum()
    if Nb <= 0 or Nc <= 0:
        raise DataError(f"volume_mix_rate: total {count} must be > 0 in both periods")
    out = shapley_decomposition(
        _vmr_kpi,
        {"volume": Nb, "mix": nb / Nb, "rate": rb},
        {"volume": Nc, "mix": nc / Nc, "rate": rc},
    )
    out.attrs.update(base_total=float(vb.sum()), current_total=float(vc.sum()))
    return out


def attribution_span(periods: Sequence[str], base: str | None = None,
                     current: str | None = None) -> tuple[str, str, list[str]]:
    """The base and current period of an attribution and the periods from one to the other.

    ``periods``: period labels ('YYYYQn' or 'YYYY', sortable); ``base`` defaults to the first,
    ``current`` to the last. Returns ``(base, current, [base, ..., current])``.
    """
    labels = sorted(set(periods))
    if not labels:
        raise DataError("attribution_span: no periods")
    b = base if base is not None else labels[0]
    c = current if current is not None else labels[-1]
    for name, v in (("attribution_base", b), ("attribution_current", c)):
        if v not in labels:
            raise ParameterError(f"{name}={v!r} is not a period of the data; periods: {labels}")
    if b >= c:
        raise ParameterError(f"attribution_base {b!r} must come before attribution_current {c!r}")
    return b, c, [p for p in labels if b <= p <= c]


def volume_mix_rate_by_period(
    frame: pd.DataFrame,
    periods: Sequence[Any],
    *,
    period: str = "period",
    segment: str = "segment",
    count: str = "customers",
    value: str = "fee_income",
    policy: Policy = "direct",
) -> pd.Series:
    """Volume/mix/rate split between the first and the last of ``periods`` under ``policy``.

    ``"direct"`` compares the first and last period; ``"chain"`` adds up the splits of each
    consecutive pair (see the module docstring).
    """
    periods = list(periods)
    if len(periods) < 2:
        raise ParameterError("need at least two periods")
    pairs = [(periods[0], periods[-1])] if policy == "direct" else list(zip(periods[:-1], periods[1:]))
    if policy not in ("direct", "chain"):
        raise ParameterError(f"policy must be 'direct' or 'chain', got {policy!r}")
    total = None
    for p0, p1 in pairs:
        part = volume_mix_rate(frame[frame[period] == p0], frame[frame[period] == p1],
                               segment=segment, count=count, value=value)
        total = part if total is None else total + part
    return total


# ---------------------------------------------------------------------------------------------
# Contributions of units (RMs, branches) to the bank total
# ---------------------------------------------------------------------------------------------

def unit_contributions(
    base: pd.Series,
    current: pd.Series,
    *,
    groups: pd.Series | None = None,
) -> pd.DataFrame:
    """Contribution of each unit (RM, branch) to the change of an additive bank total.

    For a total that is a sum over units, the Shapley contribution of a unit is exactly its own
    change; units present in one period only (joined / left) count 0 in the other.

    Parameters
    ----------
    base, current : value per unit (index = unit id), e.g. fee income per RM, currency.
    groups : optional unit -> group mapping (e.g. rm_id -> tier1_branch); contributions are then
        summed per group. Units without a group raise an error.

    Returns
    -------
    Frame with ``base, current, contribution, share_of_change`` per unit (or group), whose
    ``contribution`` column sums to ``current.sum() - base.sum()``.
    """
    idx = base.index.union(current.index)
    df = pd.DataFrame({"base": base.reindex(idx).fillna(0.0), "current": current.reindex(idx).fillna(0.0)})
    if groups is not None:
        g = groups.reindex(idx)
        if g.isna().any():
            raise DataError(f"unit_contributions: {int(g.isna().sum())} units have no group, e.g. "
                             f"{list(idx[g.isna()][:3])}")
        df = df.groupby(g.to_numpy()).sum()
        df.index.name = groups.name
    df["contribution"] = df["current"] - df["base"]
    total = df["contribution"].sum()
    df["share_of_change"] = df["contribution"] / total if total != 0 else np.nan
    return df


# ---------------------------------------------------------------------------------------------
# RM versus market
# ---------------------------------------------------------------------------------------------

def estimate_market_index(
    panel: pd.DataFrame,
    *,
    unit: str = "rm_id",
    period: str = "period",
    value: str = "fee_income",
    volume: str = "volume",
) -> pd.Series:
    """The common (market) movement of ``value / volume`` across units, by period.

    Fits the two-way fixed-effects model ``log(value / volume) = a_unit + g_period + e`` by least
    squares and returns ``exp(g_period)`` normalised to 1 in the first period. ``g`` is what moves
    every unit's yield together: the market and the cycle.
    Rows with value or volume <= 0 cannot enter the log; their number is stored in
    ``attrs["n_excluded"]``.

    The unit effects are not estimated: the log yields are demeaned by unit, and ``g`` (with
    ``g_first = 0``) solves the ``periods x periods`` normal equations ``H g = B' M_A y`` of
    :class:`~rmanalytics.kpi.fixed_effects.TwoWayProjector` — the least-squares solution with a
    dummy per unit and per period, in time and memory linear in the rows (the dummy design was
    ``rows x units``). When the unit-period panel falls apart into several connected components
    ``g`` is not identified across them; the minimum-norm dummy least squares of the full design is
    then used (dense: for small panels only).
    """
    from rmanalytics.kpi.fixed_effects import TwoWayProjector

    df = panel[[unit, period, value, volume]].copy()
    ok = (df[value] > 0) & (df[volume] > 0)
    n_excluded = int((~ok).sum())
    df = df[ok]
    if df.empty:
        raise DataError(f"estimate_market_index: no rows with {value} > 0 and {volume} > 0")
    y = np.log(df[value].to_numpy(float) / df[volume].to_numpy(float))
    labels = sorted(df[period].unique())
    pers = pd.Categorical(df[period], categories=labels)
    proj = TwoWayProjector(df[unit].to_numpy(), pers.codes)  # period level j = labels[j] (sorted codes)
    if proj.n_components == 1:
        r = proj.period_sums(proj.within_unit(y))
        H = proj.H
        g = np.concatenate([[0.0], np.linalg.solve(H[1:, 1:], r[1:])]) if len(labels) > 1 else np.zeros(1)
    else:
        units = pd.Categorical(df[unit])
        X = np.column_stack([
            pd.get_dummies(units).to_numpy(float),
            pd.get_dummies(pers).to_numpy(float)[:, 1:],
        ])
        with one_blas_thread():  # BLAS threads only compete with the other notebook
            coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        g = np.concatenate([[0.0], coef[len(units.categories):]])
    out = pd.Series(np.exp(g), index=pd.Index(pers.categories, name=period), name="market_index")
    out.attrs["n_excluded"] = n_excluded
    return out


def _product3(v: dict[str, Any]) -> float:
    return float(v["book"] * v["market"] * v["rm"])


def _product3_shapley(base: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`shapley_decomposition` of :func:`_product3` for many units at once (arrays of equal
    length per factor), with the same floating-point operations per unit: the products
    ``book * market * rm`` of every subset, the same weights, and each factor's terms added by
    ``math.fsum`` in the same order (an unchanged factor gets exactly 0). Equal bit for bit to
    calling :func:`shapley_decomposition` unit by unit, in a fraction of the time."""
    order = ["book", "market", "rm"]  # sorted factor names: bit j of a subset mask is order[j]
    p = len(order)
    value = {}
    for mask in range(1 << p):
        v = {k: (current[k] if (mask >> j) & 1 else base[k]) for j, k in enumerate(order)}
        value[mask] = v["book"] * v["market"] * v["rm"]
    weights = [math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)]
    out = {}
    for j, k in enumerate(order):
        others = [i for i in range(p) if i != j]
        terms = []
        for sub in range(1 << (p - 1)):
            mask = sum(1 << i for b, i in enumerate(others) if (sub >> b) & 1)
            size = bin(sub).count("1")
            terms.append(weights[size] * (value[mask | (1 << j)] - value[mask]))
        summed = np.array([math.fsum(t) for t in zip(*(x.tolist() for x in terms))], dtype=float)
        same = (base[k] == current[k]) | (np.isnan(base[k]) & np.isnan(current[k]))
        out[k] = np.where(same, 0.0, summed)
    return out


def rm_market_split(
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
    from :func:`estimate_market_index` (outside any RM's control) and ``rm`` = the rest
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
        market_index = estimate_market_index(panel, unit=unit, period=period, value=value, volume=volume)
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
    n_units = len(wide_v.index)
    nan = np.full(n_units, np.nan)

    def col(wide: pd.DataFrame, p: Any) -> np.ndarray:
        return wide[p].to_numpy(float) if p in wide else nan

    acc = {k: np.zeros(n_units) for k in ("book", "market", "rm", "joined_left")}
    for p0, p1 in steps:  # every unit at once; the same floating-point operations as unit by unit
        v0, v1, b0, b1 = col(wide_v, p0), col(wide_v, p1), col(wide_b, p0), col(wide_b, p1)
        v0n, v1n = np.nan_to_num(v0, nan=0.0), np.nan_to_num(v1, nan=0.0)
        with np.errstate(invalid="ignore"):
            ok = (b0 > 0) & (b1 > 0) & (v0n > 0) & (v1n > 0)  # NaN > 0 is False
        acc["joined_left"] = np.where(ok, acc["joined_left"], acc["joined_left"] + (v1n - v0n))
        if not ok.any():
            continue
        m0, m1 = float(market_index[p0]), float(market_index[p1])
        b0k, b1k, v0k, v1k = b0[ok], b1[ok], v0n[ok], v1n[ok]
        part = _product3_shapley(
            {"book": b0k, "market": np.full(len(b0k), m0), "rm": v0k / (b0k * m0)},
            {"book": b1k, "market": np.full(len(b1k), m1), "rm": v1k / (b1k * m1)},
        )
        for k in ("book", "market", "rm"):
            acc[k][ok] += part[k]
    base_v = np.nan_to_num(col(wide_v, base_period), nan=0.0)
    cur_v = np.nan_to_num(col(wide_v, current_period), nan=0.0)
    out = pd.DataFrame({"base": base_v, "current": cur_v, "change": cur_v - base_v, **acc},
                       index=wide_v.index.rename(unit))
    out.attrs["policy"] = policy
    return out
