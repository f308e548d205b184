"""Plots of the service rules (matplotlib; each returns its Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_first_contact_hours(first: pd.DataFrame, *, first_contact_hours: float = 72.0,
                             max_hours: float = 24.0 * 14) -> plt.Figure:
    """Histogram of hours from opening to the first contact (:func:`first_contact_compliance`),
    with the deadline marked; contacts later than ``max_hours`` are drawn in the last bin."""
    h = first["hours_to_first_contact"].dropna().clip(upper=max_hours)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(h, bins=np.arange(0, max_hours + 12, 12), color="#4C72B0")
    ax.axvline(first_contact_hours, color="#C44E52", ls="--", label=f"{first_contact_hours:g} h")
    n_none = int(first["first_contact_at"].isna().sum())
    ax.set_title(f"Hours to first contact of new customers (no contact yet: {n_none})")
    ax.set_xlabel(f"hours after opening (clipped at {max_hours:g})")
    ax.set_ylabel("customers")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_service_by_rm(first: pd.DataFrame, complaints: pd.DataFrame, *, target_share: float = 0.8) -> plt.Figure:
    """Per RM: share of new customers contacted in time against share of complaints resolved in
    time (:func:`complaint_kpis` by rm_id); the complaint target is marked."""
    fc = first[first["status"] != "pending"].groupby("rm_id")["compliant"].mean().rename("first_contact")
    m = pd.concat([fc, complaints.set_index("rm_id")["share_resolved_in_time"]], axis=1).dropna()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(m["first_contact"], m["share_resolved_in_time"], color="#4C72B0")
    ax.axhline(target_share, color="#C44E52", ls="--", label=f"target {target_share:.0%}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Service compliance per RM")
    ax.set_xlabel("first contact in time (share of new customers)")
    ax.set_ylabel("complaints resolved in time (share)")
    ax.legend()
    fig.tight_layout()
    return fig
