"""Churn plots: Kaplan-Meier by group with at-risk table, hazard-ratio forest plot, calibration plot,
risk distribution by segment. Each function returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rmanalytics.churn.retention import DAYS_PER_MONTH


def km_plot(kms: dict, *, title: str = "Retention (Kaplan-Meier)", months: bool = True,
            at_risk: bool = True) -> Figure:
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


def plot_warning_tradeoff(curve: pd.DataFrame, *, title: str = "Early-warning rules: threshold trade-off",
                          current: dict[str, float] | None = None) -> Figure:
    """Lift, recall and alert rate of each early-warning rule over its threshold (from
    :func:`rmanalytics.churn.audit.warning_tradeoff`), one panel per rule.

    Left axis: lift against the whole book and lift among the customers the rule can judge
    (with its 95% band); 1 = no better than chance. Right axis: recall and alert rate (shares).
    ``current``: rule -> the threshold in use, marked with a vertical line.
    """
    rules = list(dict.fromkeys(curve["rule"]))
    fig = Figure(figsize=(5.2 * len(rules), 4.4))
    h = curve.attrs.get("horizon_days")
    for i, rule in enumerate(rules):
        d = curve[curve["rule"] == rule].sort_values("threshold")
        x = d["threshold"].to_numpy(float)
        ax = fig.add_subplot(1, len(rules), i + 1)
        ax.fill_between(x, d["lift_eligible_lower"], d["lift_eligible_upper"], color="C0", alpha=0.15)
        ax.plot(x, d["lift_eligible"], "o-", color="C0", label="lift among eligible")
        ax.plot(x, d["lift"], "s--", color="C1", label="lift vs whole book")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_ylabel("lift (x base rate)")
        pct = rule == "activity_drop"
        ax.set_xlabel("activity drop threshold (fraction)" if pct else "months without a purchase")
        ax2 = ax.twinx()
        ax2.plot(x, d["recall"], "^:", color="C2", label="recall")
        ax2.plot(x, d["alert_rate"], "v:", color="C3", label="alert rate")
        ax2.set_ylabel("share of customers / of churners")
        ax2.set_ylim(0, 1)
        if current and rule in current:
            ax.axvline(float(current[rule]), color="k", ls=":", lw=1)
        ax.set_title(rule + (f" (churn within {h} days)" if h else ""), fontsize=10)
        lines = ax.get_lines()[:2] + ax2.get_lines()[:2]
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
