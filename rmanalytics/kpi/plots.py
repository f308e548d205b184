"""Plots of notebook 04: decomposition waterfall, scorecard heat table, rating distribution by
branch, milestone progress. Each ``plot_*`` function returns a titled matplotlib Figure with axis
units (never shows it); texts come from the label files, money is in ``currency`` scaled to a
readable unit (:mod:`rmanalytics.fmt`, no ``1e8`` offset)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rmanalytics import fmt
from rmanalytics.labels import label

_RATING_COLORS = {"excellent": "#1a9850", "good": "#91cf60", "qualified": "#fee08b", "needs_improvement": "#d73027"}


def kpi_name(kpi: object, lang: str = "en") -> str:
    """People's name of a KPI (``kpi:<name>`` label), else its key."""
    key = f"kpi:{kpi}"
    return label(key, lang) if label(key, lang) != key else str(kpi)


def plot_waterfall(contributions: pd.Series, *, base: float | None = None, title: str | None = None,
                   measure: str = "fee_income", currency: str = "CNY", lang: str = "en") -> Figure:
    """Waterfall: (optional) base bar, one bar per contribution, the total change (or current) bar.

    Every bar carries its value (money in ``currency``; contributions signed); the axis is the
    ``measure`` in a readable unit (e.g. "Fee income (CNY M)").
    """
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    names, bottoms, heights, colors, shown = [], [], [], [], []
    level = 0.0
    if base is not None:
        names.append(label("base", lang)); bottoms.append(0.0); heights.append(base); colors.append("#999999")
        shown.append(base)
        level = base
    for k, v in contributions.items():
        names.append(label(str(k), lang)); bottoms.append(level if v >= 0 else level + v)
        heights.append(abs(v)); colors.append("#1a9850" if v >= 0 else "#d73027"); shown.append(v)
        level += v
    names.append(label("total", lang) if base is None else label("current", lang))
    bottoms.append(0.0 if base is not None or level >= 0 else level)
    heights.append(abs(level)); colors.append("#4575b4"); shown.append(level)
    x = np.arange(len(names))
    bars = ax.bar(x, heights, bottom=bottoms, color=colors)
    signed = [fmt.money(v, lang, currency) if i in (0, len(shown) - 1) and base is not None
              else ("+" if v > 0 else "") + fmt.money(v, lang, currency) for i, v in enumerate(shown)]
    ax.bar_label(bars, labels=signed, fontsize=8, padding=2)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.axhline(0, color="black", lw=0.5)
    tops = np.asarray(bottoms) + np.asarray(heights)
    fmt.money_axis(ax, np.r_[tops, bottoms], lang=lang, currency=currency, label=label(measure, lang))
    lo, hi = min(0.0, float(np.min(bottoms))), float(np.max(tops))
    ax.set_ylim(lo, hi + 0.12 * (hi - lo if hi > lo else 1.0))
    ax.set_title(title or label("title.waterfall", lang))
    fig.tight_layout()
    return fig


def plot_scorecard_heat(points: pd.DataFrame, *, period: str | None = None, max_rms: int = 40,
                        title: str | None = None, lang: str = "en") -> Figure:
    """Heat table of KPI points (rows: RMs, columns: KPIs) from :func:`kpi_points` (100 points = target met)."""
    p = points if period is None else points[points["period"] == period]
    tab = p.pivot_table(index="rm_id", columns="kpi", values="points", aggfunc="mean")
    tab = tab.loc[tab.mean(axis=1).sort_values(ascending=False).index[:max_rms]]
    fig = Figure(figsize=(1.5 + 0.5 * tab.shape[1], 1.2 + 0.22 * tab.shape[0]))
    ax = fig.subplots()
    im = ax.imshow(tab.to_numpy(float), aspect="auto", cmap="RdYlGn", vmin=0, vmax=150)
    ax.set_xticks(range(tab.shape[1]), [kpi_name(c, lang) for c in tab.columns], rotation=60, ha="right",
                  fontsize=7)
    ax.set_yticks(range(tab.shape[0]), tab.index, fontsize=6)
    ax.set_xlabel(label("axis.kpi", lang))
    ax.set_ylabel(label("axis.rm", lang))
    fig.colorbar(im, ax=ax, label=label("axis.points", lang))
    head = title or label("title.scorecard_heat", lang)
    ax.set_title(head if period is None else fmt.with_unit(head, str(period), lang))
    fig.tight_layout()
    return fig


def plot_rating_distribution(scores: pd.DataFrame, *, by: str = "tier1_branch", lang: str = "en",
                             title: str | None = None) -> Figure:
    """Stacked bars: share of RM-periods per rating in each unit of ``by``, shares written on the bars."""
    tab = pd.crosstab(scores[by], scores["rating"], normalize="index")
    tab = tab.reindex(columns=[r for r in _RATING_COLORS if r in tab.columns])
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    bottom = np.zeros(len(tab))
    for r in tab.columns:
        bars = ax.bar(tab.index.astype(str), tab[r], bottom=bottom, color=_RATING_COLORS[r], label=label(r, lang))
        ax.bar_label(bars, labels=[fmt.percent(v, 0) if v >= 0.06 else "" for v in tab[r]], label_type="center",
                     fontsize=7)
        bottom += tab[r].to_numpy()
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_ylabel(label("axis.share_of_rm_periods", lang))
    ax.set_xlabel(label(f"col.{by}", lang))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title or label("title.rating_distribution", lang))
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def plot_milestones(progress: pd.DataFrame, *, unit_col: str = "unit_id", title: str | None = None,
                    measure: str = "fee_income", currency: str = "CNY", lang: str = "en") -> Figure:
    """Cumulative milestone vs cumulative actual (money), summed over units, by month; the last actual is labelled."""
    g = progress.groupby("month")[["cumulative_milestone", "cumulative_actual"]].sum()
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    ax.plot(g.index, g["cumulative_milestone"], marker="o", label=label("cumulative_milestone", lang))
    ax.plot(g.index, g["cumulative_actual"], marker="s", label=label("cumulative_actual", lang))
    if len(g):
        last = g.index[-1]
        for col in ("cumulative_milestone", "cumulative_actual"):
            ax.annotate(fmt.money(g[col].iloc[-1], lang, currency), (last, g[col].iloc[-1]), fontsize=8,
                        xytext=(4, 0), textcoords="offset points", va="center")
    fmt.money_axis(ax, g.to_numpy(), lang=lang, currency=currency, label=label(measure, lang))
    ax.set_xlabel(label("axis.month", lang))
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    n = progress[unit_col].nunique()
    ax.set_title(fmt.with_unit(title or label("title.milestones", lang), label("axis.units", lang).format(n=n), lang))
    fig.tight_layout()
    return fig
