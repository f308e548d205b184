"""Churn plots: Kaplan-Meier by group with at-risk table, hazard-ratio forest plot, calibration plot,
risk distribution by segment. Each ``plot_*`` function returns a titled matplotlib Figure with axis
units; texts come from the label files (``lang``: en or zh)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rmanalytics import fmt
from rmanalytics.churn.retention import DAYS_PER_MONTH
from rmanalytics.labels import label


def _group_name(key: object, lang: str) -> str:
    """Label of a group value: a segment / stage / tier code, else a plain key (e.g. value_high), else itself."""
    k = str(key)
    for kind in ("segment", "tier", "stage"):
        lab = label(f"{kind}:{k}", lang)
        if lab != f"{kind}:{k}":
            return lab
    return label(k, lang)


def _covariate_name(name: object, lang: str) -> str:
    """People's name of a model covariate: ``col.<name>``, and ``customer_type[corporate]`` as
    "Customer type: Corporate"."""
    text = str(name)
    base, _, level = text.partition("[")
    base_label = label(f"col.{base}", lang)
    base_label = base if base_label == f"col.{base}" else base_label
    if not level:
        return base_label
    return f"{base_label}{'：' if lang == 'zh' else ': '}{label(level.rstrip(']'), lang)}"


def _percent_axis(axis) -> None:
    axis.set_major_formatter(lambda v, _: f"{v:.0%}")


def plot_km(kms: dict, *, title: str | None = None, at_risk: bool = True, lang: str = "en") -> Figure:
    """Kaplan-Meier retention curves with confidence bands (from :func:`km_by_group`) and an at-risk
    table; x: tenure in days, y: share of customers still with the bank."""
    from lifelines.plotting import add_at_risk_counts

    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    for key, km in kms.items():
        km.plot_survival_function(ax=ax, ci_show=True, label=_group_name(key, lang))
    ax.set_xlabel(label("axis.tenure_days", lang))
    ax.set_ylabel(label("axis.retention_share", lang))
    _percent_axis(ax.yaxis)
    ax.set_title(title or label("title.km", lang))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    if at_risk and len(kms) <= 6:
        xlim = ax.get_xlim()
        add_at_risk_counts(*kms.values(), ax=ax, fig=fig, rows_to_show=["At risk"],
                           labels=[_group_name(k, lang) for k in kms])
        for a in fig.axes:  # lifelines writes the table as tick labels of added axes, row name in English
            texts = [t.get_text() for t in a.get_xticklabels()]
            if any("At risk" in t for t in texts):
                a.set_xticks(a.get_xticks(), [t.replace("At risk", label("axis.at_risk", lang)) for t in texts],
                             ha="right")
                a.set_xlim(xlim)
        ax.set_xlim(xlim)
    fig.tight_layout()
    return fig


def plot_hazard_ratios(model, *, title: str | None = None, lang: str = "en") -> Figure:
    """Hazard ratios of a Cox :class:`ChurnModel` with confidence intervals, log scale (1 = no effect)."""
    s = model.summary_
    lo = [c for c in s.columns if c.startswith("exp(coef) lower")][0]
    hi = [c for c in s.columns if c.startswith("exp(coef) upper")][0]
    level = lo.replace("exp(coef) lower", "").strip()
    s = s.sort_values("exp(coef)")
    fig = Figure(figsize=(7.5, 0.35 * len(s) + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(s))
    ax.errorbar(s["exp(coef)"], y, xerr=[s["exp(coef)"] - s[lo], s[hi] - s["exp(coef)"]], fmt="o", capsize=3)
    for yi, v in zip(y, s["exp(coef)"]):
        ax.annotate(f"{v:.2f}", (v, yi), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
    ax.axvline(1.0, color="grey", ls="--")
    ax.set_yticks(y, [_covariate_name(i, lang) for i in s.index])
    ax.set_xscale("log")
    ax.set_xlabel(label("axis.hazard_ratio", lang))
    ax.set_title(title or fmt.with_unit(label("title.hazard_ratios", lang), f"{level} {label('ci', lang)}", lang))
    fig.tight_layout()
    return fig


def plot_calibration(calibrations: dict[str, pd.DataFrame], *, horizon_days: float | None = None,
                     lang: str = "en") -> Figure:
    """Predicted vs observed churn share by decile (from :func:`evaluate_holdout`), one line per method."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    top = 0.0
    for name, c in calibrations.items():
        ax.plot(c["predicted"], c["observed"], "o-", label=label(f"method:{name}", lang)
                if label(f"method:{name}", lang) != f"method:{name}" else str(name))
        top = max(top, c["predicted"].max(), c["observed"].max())
    ax.plot([0, top], [0, top], color="grey", ls="--", label=label("perfect", lang))
    ax.set_xlabel(label("axis.predicted_churn", lang))
    ax.set_ylabel(label("axis.observed_churn", lang))
    _percent_axis(ax.xaxis)
    _percent_axis(ax.yaxis)
    within = label("axis.within_days", lang).format(days=f"{horizon_days:.0f}") if horizon_days else ""
    ax.set_title(fmt.with_unit(label("title.calibration", lang), within, lang))
    ax.legend()
    fig.tight_layout()
    return fig


def plot_risk_distribution(p_churn: pd.Series, segment: pd.Series, *, title: str | None = None, lang: str = "en",
                           horizon_days: float | None = None) -> Figure:
    """Box plot of predicted churn probabilities (within the horizon) by segment, medians written on."""
    df = pd.DataFrame({"p": np.asarray(p_churn), "s": np.asarray(segment)})
    groups = sorted(df["s"].dropna().unique(), key=str)
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    data = [df.loc[df["s"] == g, "p"] for g in groups]
    ax.boxplot(data, showfliers=False)
    for i, d in enumerate(data, start=1):
        if len(d):
            ax.annotate(f"{d.median():.0%}", (i, d.median()), xytext=(14, 0), textcoords="offset points",
                        fontsize=7, va="center")
    ax.set_xticks(range(1, len(groups) + 1), [_group_name(g, lang) for g in groups], rotation=30, ha="right")
    _percent_axis(ax.yaxis)
    within = label("axis.within_days", lang).format(days=f"{horizon_days:.0f}") if horizon_days else ""
    ax.set_ylabel(fmt.with_unit(label("axis.churn_probability", lang), within, lang))
    ax.set_title(title or label("title.risk_by_segment", lang))
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
