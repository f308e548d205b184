"""Plots of the RM book (each returns its matplotlib Figure, titled, with axis units)."""

from __future__ import annotations

import pandas as pd


def plot_health_distribution(health: pd.Series, by: pd.Series | None = None, *, title: str = "Health score") -> "object":
    """Histogram of the health score 0-100 (one line per group of ``by`` when given)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = list(range(0, 105, 5))
    if by is None:
        ax.hist(health.dropna(), bins=bins, color="#4C72B0")
    else:
        for k, g in health.groupby(by.to_numpy()):
            ax.hist(g.dropna(), bins=bins, histtype="step", label=str(k), linewidth=1.5)
        ax.legend(fontsize=8)
    ax.set_xlabel("health score (0-100 points)")
    ax.set_ylabel("customers")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_health_validation(table: pd.DataFrame, *, title: str = "Does health rank next period's outcomes?") -> "object":
    """Bars of churn AUC and value concordance per ranking rule (0.5 = chance, dashed)."""
    import matplotlib.pyplot as plt

    t = table.set_index("ranking_rule")[["churn_auc", "value_concordance"]].dropna(how="all")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    t.plot.barh(ax=ax)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0.3, 1.0)
    ax.set_xlabel("AUC / concordance (0.5 = chance)")
    ax.set_ylabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig
