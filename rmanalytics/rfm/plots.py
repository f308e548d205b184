"""Plots of the segmentation: each function returns a matplotlib Figure (nothing is shown)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _heatmap(ax, data: pd.DataFrame, fmt: str, cmap: str = "viridis") -> None:
    values = data.to_numpy(dtype="float64")
    im = ax.imshow(values, cmap=cmap, aspect="auto", origin="upper")
    ax.set_xticks(range(data.shape[1]), [str(c) for c in data.columns], rotation=45, ha="right")
    ax.set_yticks(range(data.shape[0]), [str(i) for i in data.index])
    finite = values[np.isfinite(values)]
    mid = (finite.max() + finite.min()) / 2 if finite.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v) and v != 0:
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8,
                        color="white" if v < mid else "black")
    ax.figure.colorbar(im, ax=ax)


def rf_heatmap(scored: pd.DataFrame, *, value: str = "monetary", title: str | None = None) -> Figure:
    """Heatmap of mean ``value`` (currency) per R score (rows, high on top) x F score (columns)."""
    tab = scored.pivot_table(index="r_score", columns="f_score", values=value, aggfunc="mean")
    tab = tab.sort_index(ascending=False)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    _heatmap(ax, tab, ",.0f")
    ax.set_xlabel("F score")
    ax.set_ylabel("R score")
    ax.set_title(title or f"Mean {value} by R x F score")
    return fig


def segment_bars(profile: pd.DataFrame, *, labels: pd.Series | None = None, title: str | None = None) -> Figure:
    """Bars of customer share and value share per segment (a :func:`segment_profile` frame)."""
    names = list(labels if labels is not None else profile.index.astype(str))
    y = np.arange(len(profile))
    fig = Figure(figsize=(9, max(3.0, 0.4 * len(profile) + 1)))
    axes = fig.subplots(1, 2, sharey=True)
    axes[0].barh(y, profile["customer_share"].to_numpy(), color="tab:blue")
    axes[0].set_title("Share of customers")
    if "value_share" in profile.columns:
        axes[1].barh(y, profile["value_share"].to_numpy(), color="tab:orange")
    axes[1].set_title("Share of value")
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def migration_heatmap(matrix: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Heatmap of a :func:`migration_matrix` (counts or row shares)."""
    fig = Figure(figsize=(1.0 + 0.6 * matrix.shape[1], 1.0 + 0.5 * matrix.shape[0]))
    ax = fig.subplots()
    shares = matrix.to_numpy(dtype="float64")
    _heatmap(ax, matrix, ".0%" if np.nanmax(shares, initial=0) <= 1.0 else ",.0f", cmap="Blues")
    ax.set_xlabel(str(matrix.columns.name or "after"))
    ax.set_ylabel(str(matrix.index.name or "before"))
    ax.set_title(title or "Segment migration")
    fig.tight_layout()
    return fig


def nine_grid_plot(grid: pd.DataFrame, *, title: str | None = None) -> Figure:
    """The nine-grid (a :func:`nine_grid` frame): customers and value per cell."""
    counts = grid.pivot(index="row_band", columns="col_band", values="customers")
    value = grid.pivot(index="row_band", columns="col_band", values="value")
    order_r = list(dict.fromkeys(grid["row_band"]))[::-1]
    order_c = list(dict.fromkeys(grid["col_band"]))
    counts, value = counts.loc[order_r, order_c], value.loc[order_r, order_c]
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    im = ax.imshow(value.to_numpy(dtype="float64"), cmap="YlGn", aspect="auto")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{int(counts.iat[i, j]):,} cust.\n{value.iat[i, j]:,.0f}", ha="center", va="center",
                    fontsize=8)
    ax.set_xticks(range(len(order_c)), order_c)
    ax.set_yticks(range(len(order_r)), order_r)
    ax.set_xlabel(grid.attrs.get("cols", "columns"))
    ax.set_ylabel(grid.attrs.get("rows", "rows"))
    fig.colorbar(im, ax=ax, label="value")
    ax.set_title(title or "Customer nine-grid")
    return fig
