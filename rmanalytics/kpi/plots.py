"""Plots of notebook 04: decomposition waterfall, scorecard heat table, rating distribution by
branch, milestone progress. Each returns a matplotlib Figure (never shows it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rmanalytics.labels import label

_RATING_COLORS = {"excellent": "#1a9850", "good": "#91cf60", "qualified": "#fee08b", "needs_improvement": "#d73027"}


def waterfall(contributions: pd.Series, *, base: float | None = None, title: str = "Decomposition of the change",
              unit: str = "currency", lang: str = "en") -> Figure:
    """Waterfall: (optional) base bar, one bar per contribution, the total change (or current) bar."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    labels, bottoms, heights, colors = [], [], [], []
    level = 0.0
    if base is not None:
        labels.append(label("base", lang)); bottoms.append(0.0); heights.append(base); colors.append("#999999")
        level = base
    for k, v in contributions.items():
        labels.append(label(str(k), lang)); bottoms.append(level if v >= 0 else level + v)
        heights.append(abs(v)); colors.append("#1a9850" if v >= 0 else "#d73027")
        level += v
    labels.append(label("total", lang) if base is None else label("current", lang))
    bottoms.append(0.0 if base is not None or level >= 0 else level)
    heights.append(abs(level)); colors.append("#4575b4")
    x = np.arange(len(labels))
    ax.bar(x, heights, bottom=bottoms, color=colors)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel(unit)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def scorecard_heat(points: pd.DataFrame, *, period: str | None = None, max_rms: int = 40,
                   title: str = "Scorecard: points by KPI") -> Figure:
    """Heat table of KPI points (rows: RMs, columns: KPIs) from :func:`kpi_points`."""
    p = points if period is None else points[points["period"] == period]
    tab = p.pivot_table(index="rm_id", columns="kpi", values="points", aggfunc="mean")
    tab = tab.loc[tab.mean(axis=1).sort_values(ascending=False).index[:max_rms]]
    fig = Figure(figsize=(1 + 0.5 * tab.shape[1], 1 + 0.22 * tab.shape[0]))
    ax = fig.subplots()
    im = ax.imshow(tab.to_numpy(float), aspect="auto", cmap="RdYlGn", vmin=0, vmax=150)
    ax.set_xticks(range(tab.shape[1]), tab.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(tab.shape[0]), tab.index, fontsize=6)
    fig.colorbar(im, ax=ax, label="points")
    ax.set_title(title if period is None else f"{title} ({period})")
    fig.tight_layout()
    return fig


def rating_distribution(scores: pd.DataFrame, *, by: str = "tier1_branch", lang: str = "en",
                        title: str = "Ratings by branch") -> Figure:
    """Stacked bars: share of RMs per rating in each unit of ``by``."""
    tab = pd.crosstab(scores[by], scores["rating"], normalize="index")
    tab = tab.reindex(columns=[r for r in _RATING_COLORS if r in tab.columns])
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    bottom = np.zeros(len(tab))
    for r in tab.columns:
        ax.bar(tab.index.astype(str), tab[r], bottom=bottom, color=_RATING_COLORS[r], label=label(r, lang))
        bottom += tab[r].to_numpy()
    ax.set_ylabel("share of RM-periods")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def milestone_chart(progress: pd.DataFrame, *, unit_col: str = "unit_id", title: str = "Milestone progress",
                    unit: str = "currency") -> Figure:
    """Cumulative milestone vs cumulative actual, summed over units, by month."""
    g = progress.groupby("month")[["cumulative_milestone", "cumulative_actual"]].sum()
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(g.index, g["cumulative_milestone"], marker="o", label="cumulative milestone")
    ax.plot(g.index, g["cumulative_actual"], marker="s", label="cumulative actual")
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    ax.set_title(f"{title} ({progress[unit_col].nunique()} units)")
    fig.tight_layout()
    return fig
