"""Plots of the loyalty analysis; each ``plot_*`` function returns a titled matplotlib Figure with
axis units. Texts come from the label files (``lang``: en or zh); money is in ``currency``.

Time in these models is the BTYD convention: *recency* is the time from a customer's first to last
purchase (not the days since the last transaction of notebook 01), in ``time_unit`` units."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from rmanalytics import fmt
from rmanalytics.labels import label


def _unit(time_unit: str, lang: str) -> str:
    return label(f"unit:{time_unit}", lang) if label(f"unit:{time_unit}", lang) != f"unit:{time_unit}" else time_unit


def plot_p_alive_matrix(matrix: pd.DataFrame, *, lang: str = "en", time_unit: str = "weeks",
                        title: str | None = None) -> Figure:
    """Heat map of :func:`rmanalytics.loyalty.p_alive_matrix` (repeat purchases × time from first to last purchase)."""
    fig = Figure(figsize=(7.5, 5))
    ax = fig.subplots()
    im = ax.imshow(matrix.to_numpy(), origin="lower", aspect="auto", vmin=0, vmax=1, cmap="RdYlGn",
                   extent=(matrix.columns.min(), matrix.columns.max(),
                           matrix.index.min() - 0.5, matrix.index.max() + 0.5))
    ax.set_xlabel(label("axis.btyd_recency", lang).format(unit=_unit(time_unit, lang)))
    ax.set_ylabel(label("axis.repeat_purchases", lang))
    ax.set_title(title or label("title.p_alive_matrix", lang))
    cb = fig.colorbar(im, ax=ax, label=label("p_alive", lang))
    cb.formatter = PercentFormatter(1.0)
    return fig


def plot_tracking(track: pd.DataFrame, *, lang: str = "en", title: str | None = None) -> Figure:
    """Cumulative repeat purchases, actual vs predicted, with the calibration end marked."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.plot(track["date"], track["actual"], label=label("actual", lang), color="black")
    ax.plot(track["date"], track["predicted"], label=label("predicted_bgnbd", lang), color="tab:blue", linestyle="--")
    cal = track.loc[track["period"] == "calibration", "date"]
    if len(cal):
        ax.axvline(cal.max(), color="grey", linestyle=":",
                   label=f"{label('calibration', lang)} | {label('holdout', lang)}")
    if len(track):
        last = track.iloc[-1]
        for col in ("actual", "predicted"):
            ax.annotate(fmt.count(last[col]), (last["date"], last[col]), xytext=(4, 0), textcoords="offset points",
                        fontsize=8, va="center")
    ax.set_ylabel(label("axis.cumulative_repeat_purchases", lang))
    ax.set_xlabel(label("axis.date", lang))
    ax.yaxis.set_major_formatter(lambda v, _: fmt.count(v))
    ax.set_title(title or label("title.tracking", lang))
    ax.legend()
    fig.autofmt_xdate()
    return fig


def plot_holdout_by_frequency(table: pd.DataFrame, *, lang: str = "en", title: str | None = None) -> Figure:
    """Bars of actual vs predicted mean holdout purchases per calibration frequency, values on the bars."""
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    x = np.arange(len(table))
    b1 = ax.bar(x - 0.2, table["actual"], width=0.4, label=label("actual", lang), color="grey")
    b2 = ax.bar(x + 0.2, table["predicted"], width=0.4, label=label("predicted_bgnbd", lang), color="tab:blue")
    for bars in (b1, b2):
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in bars.datavalues], fontsize=7, padding=1)
    ax.set_xticks(x, table.index)
    ax.set_xlabel(label("axis.repeat_purchases_calibration", lang))
    ax.set_ylabel(label("axis.mean_holdout_purchases", lang))
    ax.set_title(title or label("title.holdout_by_frequency", lang))
    ax.legend()
    return fig


def plot_clv_deciles(deciles: pd.DataFrame, *, lang: str = "en", currency: str = "CNY",
                     title: str | None = None) -> Figure:
    """Bars of total CLV (money) per decile with values, and the cumulative share (line, right axis)."""
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    bars = ax.bar(deciles.index.astype(str), deciles["total_clv"], color="tab:green")
    ax.bar_label(bars, labels=[fmt.money(v, lang, currency) for v in deciles["total_clv"]], fontsize=6, padding=1)
    ax.set_xlabel(label("clv_decile", lang))
    fmt.money_axis(ax, deciles["total_clv"], lang=lang, currency=currency, label=label("axis.total_clv", lang))
    ax2 = ax.twinx()
    ax2.plot(deciles.index.astype(str), deciles["cumulative_share"], color="black", marker="o")
    ax2.set_ylim(0, 1.05)
    ax2.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax2.set_ylabel(label("axis.cumulative_share", lang))
    ax.set_title(title or label("title.clv_deciles", lang))
    return fig
