"""Churn plots: Kaplan-Meier by group with at-risk table, hazard-ratio forest plot, calibration plot,
risk distribution by segment. Each function returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rmanalytics.churn.retention import DAYS_PER_MONTH


def km_plot(kms: dict, *, title: str = "Retention (Kaplan-Meier)", at_risk: bool = True) -> Figure:
    """Kaplan-Meier curves with confidence bands (from :func:`km_by_group`) and an at-risk table."""
    from lifelines.plotting import add_at_risk_counts

    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    for km in kms.values():
        km.plot_survival_function(ax=ax, ci_show=True)
    ax.set_xlabel("tenure (days)")
    ax.set_ylabel("retention")
    ax.set_title(title)
    ax.set_ylim(0, 1.02)
    if at_risk and len(kms) <= 6:
        add_at_risk_counts(*kms.values(), ax=ax, fig=fig, rows_to_show=["At risk"])
    fig.tight_layout()
    return fig


def forest_plot(model, *, title: str = "Hazard ratios (95% CI)") -> Figure:
    """Hazard ratios of a Cox :class:`ChurnModel` with confidence intervals, log scale."""
    s = model.summary_
    lo = [c for c in s.columns if c.startswith("exp(coef) lower")][0]
    hi = [c for c in s.columns if c.startswith("exp(coef) upper")][0]
    s = s.sort_values("exp(coef)")
    fig = Figure(figsize=(7, 0.35 * len(s) + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(s))
    ax.errorbar(s["exp(coef)"], y, xerr=[s["exp(coef)"] - s[lo], s[hi] - s["exp(coef)"]], fmt="o", capsize=3)
    ax.axvline(1.0, color="grey", ls="--")
    ax.set_yticks(y, [str(i) for i in s.index])
    ax.set_xscale("log")
    ax.set_xlabel("hazard ratio")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def calibration_plot(calibrations: dict[str, pd.DataFrame], *, horizon_days: float | None = None) -> Figure:
    """Predicted vs observed churn by decile (from :func:`evaluate_holdout`), one line per method."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    top = 0.0
    for name, c in calibrations.items():
        ax.plot(c["predicted"], c["observed"], "o-", label=name)
        top = max(top, c["predicted"].max(), c["observed"].max())
    ax.plot([0, top], [0, top], color="grey", ls="--", label="perfect")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn (Kaplan-Meier)")
    ax.set_title("Calibration" + (f" at {horizon_days:.0f} days" if horizon_days else ""))
    ax.legend()
    fig.tight_layout()
    return fig


def risk_distribution(p_churn: pd.Series, segment: pd.Series, *, title: str = "Churn risk by segment") -> Figure:
    """Box plot of predicted churn probabilities by segment."""
    df = pd.DataFrame({"p": np.asarray(p_churn), "s": np.asarray(segment)})
    groups = sorted(df["s"].dropna().unique(), key=str)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot([df.loc[df["s"] == g, "p"] for g in groups], showfliers=False)
    ax.set_xticks(range(1, len(groups) + 1), [str(g) for g in groups], rotation=30)
    ax.set_ylabel("churn probability within horizon")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def months_axis(days: float) -> float:
    """Days to months (365.25/12 days per month)."""
    return days / DAYS_PER_MONTH
