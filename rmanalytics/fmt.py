"""Number formatting for people: thousands separators, units, money in a named currency.

One module for every table, figure annotation and sentence a report shows, so numbers read the
same everywhere:

- counts: ``12,345``; shares: ``12.3%``; ratios: ``1.23``;
- money in English: ``CNY 36.8M`` (k / M / bn above ten thousand), ``CNY 1,215``;
- money in Chinese: ``3,679.6万元``, ``1.23亿元`` (万 = 10^4, 亿 = 10^8), ``1,215元``; the currency
  is a parameter (default CNY, shown as 元; USD 美元, HKD 港元, EUR 欧元, others by their code).

The formatting is display only: tables written as Parquet keep raw numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Chinese names of currencies; others are shown by their code.
CURRENCY_ZH = {"CNY": "元", "RMB": "元", "USD": "美元", "HKD": "港元", "EUR": "欧元", "GBP": "英镑", "JPY": "日元"}

_EN_STEPS = ((1e9, "bn"), (1e6, "M"), (1e3, "k"))
_ZH_STEPS = ((1e8, "亿"), (1e4, "万"))


def _missing(x: Any) -> bool:
    try:
        return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x)) or pd.isna(x)
    except (TypeError, ValueError):
        return False


def currency_unit(currency: str = "CNY", lang: str = "en") -> str:
    """How the currency is written: ``CNY`` in English, ``元`` in Chinese."""
    return CURRENCY_ZH.get(currency.upper(), currency) if lang == "zh" else currency


def scale(value: float, lang: str = "en") -> tuple[float, str]:
    """(divisor, suffix) that puts ``value`` in a readable range: en k/M/bn, zh 万/亿 (1, "" below)."""
    v = abs(float(value)) if not _missing(value) else 0.0
    for div, suffix in (_ZH_STEPS if lang == "zh" else _EN_STEPS):
        if v >= div:
            return div, suffix
    return 1.0, ""


def count(x: Any, decimals: int = 0) -> str:
    """A count or plain number with thousands separators (``12,345``; ``—`` when missing)."""
    if _missing(x):
        return "—"
    return f"{float(x):,.{decimals}f}"


def percent(x: Any, decimals: int = 1) -> str:
    """A share (0.123) as ``12.3%``."""
    if _missing(x):
        return "—"
    return f"{float(x):.{decimals}%}"


def money(x: Any, lang: str = "en", currency: str = "CNY", *, decimals: int | None = None,
          compact: bool = True) -> str:
    """A money amount with its currency: ``CNY 36.8M`` / ``3,679.6万元``.

    ``compact``: scale large amounts (en: k above 10,000, M, bn; zh: 万 above 10,000, 亿). Small
    amounts show whole units (``decimals`` overrides: digits after the point of the shown number).
    """
    if _missing(x):
        return "—"
    v = float(x)
    div, suffix = scale(v, lang) if compact and abs(v) >= 1e4 else (1.0, "")
    shown = v / div
    d = decimals if decimals is not None else (0 if div == 1.0 else (1 if abs(shown) >= 10 else 2))
    unit = currency_unit(currency, lang)
    if lang == "zh":
        return f"{shown:,.{d}f}{suffix}{unit}"
    return f"{unit} {shown:,.{d}f}{suffix}"


def axis_unit(values: Any, lang: str = "en", currency: str = "CNY") -> tuple[float, str]:
    """(divisor, unit text) for a money axis over ``values``: e.g. (1e6, "CNY M") or (1e4, "万元")."""
    arr = np.asarray(values, dtype="float64").ravel()
    arr = arr[np.isfinite(arr)]
    top = float(np.abs(arr).max()) if arr.size else 0.0
    div, suffix = scale(top, lang) if top >= 1e4 else (1.0, "")
    unit = currency_unit(currency, lang)
    return div, (f"{suffix}{unit}" if lang == "zh" else (f"{unit} {suffix}" if suffix else unit))


def with_unit(text: str, unit: str, lang: str = "en") -> str:
    """``text (unit)``; full-width brackets in Chinese: ``text（unit）``."""
    if not unit:
        return text
    if not text:
        return unit
    return f"{text}（{unit}）" if lang == "zh" else f"{text} ({unit})"


def money_axis(ax: Any, values: Any, *, axis: str = "y", lang: str = "en", currency: str = "CNY",
               label: str | None = None) -> tuple[float, str]:
    """Format a matplotlib axis showing money: ticks divided by a readable unit, no offset text
    (no ``1e8`` in the corner), and the axis label ``<label> (<unit>)``. Returns (divisor, unit)."""
    from matplotlib.ticker import FuncFormatter

    div, unit = axis_unit(values, lang, currency)
    target = ax.yaxis if axis == "y" else ax.xaxis

    def tick(v: float, _pos: Any) -> str:
        x = v / div
        return f"{x:,.0f}" if div == 1 or abs(x) >= 100 or float(x).is_integer() else f"{x:,.1f}"

    target.set_major_formatter(FuncFormatter(tick))
    text = with_unit(label or "", unit, lang)
    (ax.set_ylabel if axis == "y" else ax.set_xlabel)(text)
    return div, unit


def bar_labels(ax: Any, containers: Any = None, *, fmt: Any = None, fontsize: int = 8, **kwargs: Any) -> None:
    """Write each bar's value on it (``fmt``: a function of the value, default :func:`count`)."""
    fmt = fmt or count
    for c in (containers if containers is not None else ax.containers):
        ax.bar_label(c, labels=[fmt(v) for v in c.datavalues], fontsize=fontsize, **kwargs)


def format_table(df: pd.DataFrame, kinds: Mapping[str, str], *, lang: str = "en", currency: str = "CNY",
                 decimals: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Copy of ``df`` with the named columns as display strings.

    ``kinds``: column -> ``"money"``, ``"count"``, ``"percent"``, ``"ratio"`` (two decimals) or
    ``"number"`` (one decimal). Columns not named are left as they are. For display only.
    """
    decimals = dict(decimals or {})
    out = df.copy()
    for col, kind in kinds.items():
        if col not in out.columns:
            continue
        d = decimals.get(col)
        if kind == "money":
            out[col] = [money(v, lang, currency, decimals=d) for v in out[col]]
        elif kind == "count":
            out[col] = [count(v, d or 0) for v in out[col]]
        elif kind == "percent":
            out[col] = [percent(v, 1 if d is None else d) for v in out[col]]
        elif kind == "ratio":
            out[col] = [count(v, 2 if d is None else d) for v in out[col]]
        elif kind == "number":
            out[col] = [count(v, 1 if d is None else d) for v in out[col]]
        else:
            raise ValueError(f"unknown kind {kind!r} for column {col!r}; use money, count, percent, ratio or number")
    return out


__all__ = ["CURRENCY_ZH", "axis_unit", "bar_labels", "count", "currency_unit", "format_table", "money", "money_axis",
           "percent", "scale", "with_unit"]
