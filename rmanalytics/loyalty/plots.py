"""Plots of the loyalty analysis; each function returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rmanalytics.labels import label


def plot_p_alive_matrix(matrix: pd.DataFrame, *, lang: str = "en", time_unit: str = "weeks") -> Figure:
    """Heat map of :func:`rmanalytics.loyalty.p_alive_matrix` (frequency × recency)."""
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    im = ax.imshow(matrix.to_numpy(), origin="lower", aspect="auto", vmin=0, vmax=1, cmap="RdYlGn",
                   extent=(matrix.columns.min(), matrix.columns.max(),
                           matrix.index.min() - 0.5, matrix.index.max() + 0.5))
    ax.set_xlabel(f"recency ({time_unit})")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(label("p_alive", lang))
    fig.colorbar(im, ax=ax)
    return fig


def plot_tracking(track: pd.DataFrame, *, lang: str = "en") -> Figure:
    """Cumulative repeat purchases, actual vs predicted, with the calibration end marked."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.plot(track["date"], track["actual"], label="actual", color="black")
    ax.plot(track["date"], track["predicted"], label="BG/NBD", color="tab:blue", linestyle="--")
    cal = track.loc[track["period"] == "calibration", "date"]
    if len(cal):
        ax.axvline(cal.max(), color="grey", linestyle=":",
                   label=f"{label('calibration', lang)} | {label('holdout', lang)}")
    ax.set_ylabel("cumulative repeat purchases")
    ax.legend()
    fig.autofmt_xdate()
    return fig


def plot_holdout_by_frequency(table: pd.DataFrame, *, lang: str = "en") -> Figure:
    """Bars of actual vs predicted mean holdout purchases per calibration frequency."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["actual"], width=0.4, label="actual", color="grey")
    ax.bar(x + 0.2, table["predicted"], width=0.4, label="BG/NBD", color="tab:blue")
    ax.set_xticks(x, table.index)
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title(label("holdout_errors", lang))
    ax.legend()
    return fig


def plot_clv_deciles(deciles: pd.DataFrame, *, lang: str = "en") -> Figure:
    """Bars of total CLV per decile with the cumulative share."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.bar(deciles.index.astype(str), deciles["total_clv"], color="tab:green")
    ax.set_xlabel(label("clv_decile", lang))
    ax.set_ylabel(label("clv", lang))
    ax2 = ax.twinx()
    ax2.plot(deciles.index.astype(str), deciles["cumulative_share"], color="black", marker="o")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("cumulative share")
    return fig
