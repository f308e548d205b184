"""Plots of the segmentation: each ``plot_*`` function returns a titled matplotlib Figure with axis
units (nothing is shown). Texts come from the label files (``lang``: en or zh); money is in
``currency`` (default CNY) scaled to a readable unit (:mod:`rmanalytics.fmt`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from rmanalytics import fmt
from rmanalytics.labels import label


def _name(key: object, kind: str | None, lang: str) -> str:
    """Label of a coded value (``segment:champions``), else of the plain key, else the key."""
    k = str(key)
    if kind:
        lab = label(f"{kind}:{k}", lang)
        if lab != f"{kind}:{k}":
            return lab
    return label(k, lang)


def _heatmap(ax, data: pd.DataFrame, text: "callable", cmap: str = "viridis", colorbar: str | None = None,
             percent: bool = False) -> None:
    values = data.to_numpy(dtype="float64")
    im = ax.imshow(values, cmap=cmap, aspect="auto", origin="upper")
    ax.set_xticks(range(data.shape[1]), [str(c) for c in data.columns], rotation=45, ha="right")
    ax.set_yticks(range(data.shape[0]), [str(i) for i in data.index])
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v) and v != 0:
                r, g, b, _ = im.cmap(im.norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # text colour readable on the cell colour
                ax.text(j, i, text(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    cb = ax.figure.colorbar(im, ax=ax)
    if colorbar:
        cb.set_label(colorbar)
    if percent:
        cb.formatter = PercentFormatter(1.0, decimals=0)
    else:
        cb.formatter.set_useOffset(False)


def plot_rf_heatmap(scored: pd.DataFrame, *, value: str = "monetary", title: str | None = None, lang: str = "en",
                    currency: str = "CNY") -> Figure:
    """Heatmap of the mean ``value`` (money, ``currency``) per customer by R score (rows, 5 on top) and F score."""
    tab = scored.pivot_table(index="r_score", columns="f_score", values=value, aggfunc="mean")
    tab = tab.sort_index(ascending=False)
    div, unit = fmt.axis_unit(tab.to_numpy(), lang, currency)
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    _heatmap(ax, tab / div, lambda v: f"{v:,.1f}" if div != 1 else f"{v:,.0f}",
             colorbar=fmt.with_unit(label("axis.mean_monetary", lang), unit, lang))
    ax.set_xlabel(label("axis.f_score", lang))
    ax.set_ylabel(label("axis.r_score", lang))
    ax.set_title(title or fmt.with_unit(label("title.rf_heatmap", lang), unit, lang))
    return fig


def plot_segment_bars(profile: pd.DataFrame, *, labels: pd.Series | None = None, title: str | None = None,
                      lang: str = "en") -> Figure:
    """Bars of customer share and value share per segment (a :func:`segment_profile` frame), values on the bars."""
    names = list(labels if labels is not None else [_name(k, "segment", lang) for k in profile.index])
    y = np.arange(len(profile))
    fig = Figure(figsize=(10, max(3.0, 0.4 * len(profile) + 1.2)))
    axes = fig.subplots(1, 2, sharey=True)
    parts = [("customer_share", "title.share_of_customers", "tab:blue"),
             ("value_share", "title.share_of_value", "tab:orange")]
    for ax, (col, key, color) in zip(axes, parts):
        ax.set_title(label(key, lang))
        ax.set_xlabel(label("axis.share_percent", lang))
        if col not in profile.columns:
            continue
        values = profile[col].to_numpy(dtype="float64")
        bars = ax.barh(y, values, color=color)
        ax.bar_label(bars, labels=[fmt.percent(v) for v in values], fontsize=8, padding=2)
        ax.set_xlim(0, max(float(np.nanmax(values, initial=0)) * 1.25, 0.05))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    fig.suptitle(title or label("title.segment_bars", lang))
    fig.tight_layout()
    return fig


def plot_migration_heatmap(matrix: pd.DataFrame, *, title: str | None = None, lang: str = "en",
                           days: int | None = None) -> Figure:
    """Heatmap of a :func:`migration_matrix` (counts or row shares): rows the segment ``days`` earlier,
    columns the segment at the observation end."""
    shares = matrix.to_numpy(dtype="float64")
    is_share = np.nanmax(shares, initial=0) <= 1.0
    shown = matrix.copy()
    shown.index = [_name(k, "segment", lang) for k in matrix.index]
    shown.columns = [_name(k, "segment", lang) for k in matrix.columns]
    fig = Figure(figsize=(1.6 + 0.65 * matrix.shape[1], 1.2 + 0.5 * matrix.shape[0]))
    ax = fig.subplots()
    _heatmap(ax, shown, (lambda v: f"{v:.0%}") if is_share else fmt.count, cmap="Blues",
             colorbar=label("axis.share_of_row" if is_share else "axis.customers", lang), percent=is_share)
    ax.set_xlabel(label("axis.segment_now", lang))
    ax.set_ylabel(label("axis.segment_before", lang).format(days=days if days is not None else "N"))
    ax.set_title(title or label("title.migration", lang))
    fig.tight_layout()
    return fig


def plot_nine_grid(grid: pd.DataFrame, *, title: str | None = None, lang: str = "en", currency: str = "CNY") -> Figure:
    """The nine-grid (a :func:`nine_grid` frame): customers and value (money) per cell, colour by value."""
    counts = grid.pivot(index="row_band", columns="col_band", values="customers")
    value = grid.pivot(index="row_band", columns="col_band", values="value")
    order_r = list(dict.fromkeys(grid["row_band"]))[::-1]
    order_c = list(dict.fromkeys(grid["col_band"]))
    counts, value = counts.loc[order_r, order_c], value.loc[order_r, order_c]
    div, unit = fmt.axis_unit(value.to_numpy(), lang, currency)
    fig = Figure(figsize=(7.5, 5))
    ax = fig.subplots()
    im = ax.imshow(value.to_numpy(dtype="float64") / div, cmap="YlGn", aspect="auto")
    who = label("axis.customers", lang)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{fmt.count(counts.iat[i, j])} {who}\n{fmt.money(value.iat[i, j], lang, currency)}",
                    ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(order_c)), [_name(c, None, lang) for c in order_c])
    ax.set_yticks(range(len(order_r)), [_name(r, None, lang) for r in order_r])
    ax.set_xlabel(label(f"col.{grid.attrs['cols']}", lang) if "cols" in grid.attrs else "")
    ax.set_ylabel(label(f"col.{grid.attrs['rows']}", lang) if "rows" in grid.attrs else "")
    cb = fig.colorbar(im, ax=ax, label=fmt.with_unit(label("col.value", lang), unit, lang))
    cb.formatter.set_useOffset(False)
    ax.set_title(title or label("title.nine_grid", lang))
    return fig
