"""Plots of the service rules (matplotlib; each returns its Figure, titled, axes with units).
Texts come from the label files (``service.*`` keys), in English or Chinese (``lang``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rmanalytics.labels import text


def plot_first_contact_hours(first: pd.DataFrame, *, first_contact_hours: float = 72.0,
                             max_hours: float = 24.0 * 14, lang: str = "en") -> plt.Figure:
    """Histogram of hours from opening to the first contact (:func:`first_contact_compliance`),
    with the deadline marked; contacts later than ``max_hours`` are drawn in the last bin."""
    h = first["hours_to_first_contact"].dropna().clip(upper=max_hours)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(h, bins=np.arange(0, max_hours + 12, 12), color="#4C72B0")
    ax.axvline(first_contact_hours, color="#C44E52", ls="--", label=f"{first_contact_hours:g} h")
    ax.set_title(text("service.first_contact_title", lang, n=int(first["first_contact_at"].isna().sum())))
    ax.set_xlabel(text("service.hours_after_opening", lang, h=f"{max_hours:g}"))
    ax.set_ylabel(text("service.customers", lang))
    ax.legend()
    fig.tight_layout()
    return fig


def plot_service_by_rm(first: pd.DataFrame, complaints: pd.DataFrame, *, target_share: float = 0.8,
                       lang: str = "en") -> plt.Figure:
    """Per RM: share of new customers contacted in time against share of complaints resolved in
    time (:func:`complaint_kpis` by rm_id); the complaint target is marked."""
    fc = first[first["status"] != "pending"].groupby("rm_id")["compliant"].mean().rename("first_contact")
    m = pd.concat([fc, complaints.set_index("rm_id")["share_resolved_in_time"]], axis=1).dropna()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(m["first_contact"], m["share_resolved_in_time"], color="#4C72B0")
    ax.axhline(target_share, color="#C44E52", ls="--", label=text("service.target", lang, t=f"{target_share:.0%}"))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(text("service.by_rm_title", lang))
    ax.set_xlabel(text("service.first_contact_share", lang))
    ax.set_ylabel(text("service.resolved_share", lang))
    ax.legend()
    fig.tight_layout()
    return fig
