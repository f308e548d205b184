"""A small RM x month simulator with known truth, for the KPI tests (test-only: not package API).

Same structure as the fee model of :mod:`rmanalytics.synth`: fee income of an RM's book in month
m = volume (sum of transaction amounts of the book) x base fee rate x ``market_index[m]`` x
``exp(beta_visits z_visits + beta_cross_sell z_cross_sell + beta_digital z_digital + skill_rm)``
x noise, with ``z`` the activities standardised over the whole RM-month panel (mean 0, sd 1) and
``calls`` a decoy (beta 0) correlated with visits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class PanelTruth:
    betas: dict[str, float]
    market_index: pd.Series  # by month_start
    skill: pd.Series  # by rm_id
    base_rate: float


def simulate_rm_panel(n_rms: int = 30, n_months: int = 24, *, seed: int = 0, start: str = "2023-01-01",
                      betas: dict[str, float] | None = None, market_growth: float = 0.2,
                      noise_sd: float = 0.05, calls_corr: float = 0.7) -> tuple[pd.DataFrame, PanelTruth]:
    """RM x month panel: ``rm_id, month_start, volume, fee_income, visits, calls, cross_sell_offers,
    digital_usage`` and the truth. ``market_growth``: total log-linear market rise over the span."""
    rng = np.random.default_rng(seed)
    betas = betas or {"visits": 0.10, "cross_sell_offers": 0.08, "digital_usage": 0.06, "calls": 0.0}
    months = pd.date_range(start, periods=n_months, freq="MS")
    market = pd.Series(np.exp(np.linspace(0, np.log1p(market_growth), n_months)
                              + 0.02 * np.sin(np.arange(n_months))), index=months, name="market_index")
    rms = [f"R{i:04d}" for i in range(1, n_rms + 1)]
    skill = pd.Series(rng.normal(0, 0.15, n_rms), index=rms, name="skill")
    rm_level = rng.lognormal(np.log(2e6), 0.4, n_rms)
    rows = []
    for i, r in enumerate(rms):
        vis_mu, xs_mu, dg_mu = rng.normal(30, 5), rng.normal(20, 4), rng.uniform(0.3, 0.7)
        for t, m in enumerate(months):
            visits = max(rng.normal(vis_mu, 6), 0)
            calls = max(calls_corr * (visits - 30) + rng.normal(40, 6 * np.sqrt(1 - calls_corr ** 2)), 0)
            rows.append({"rm_id": r, "month_start": m, "visits": round(visits), "calls": round(calls),
                         "cross_sell_offers": round(max(rng.normal(xs_mu, 5), 0)),
                         "digital_usage": float(np.clip(rng.normal(dg_mu, 0.1), 0, 1)),
                         "volume": rm_level[i] * np.exp(rng.normal(0, 0.1)) * (1 + 0.01 * t)})
    df = pd.DataFrame(rows)
    z = {a: (df[a] - df[a].mean()) / df[a].std(ddof=0) for a in betas}
    lin = sum(betas[a] * z[a] for a in betas) + df["rm_id"].map(skill)
    base_rate = 0.002
    df["fee_income"] = (df["volume"] * base_rate * df["month_start"].map(market) * np.exp(lin)
                        * np.exp(rng.normal(0, noise_sd, len(df))))
    return df, PanelTruth(betas=dict(betas), market_index=market, skill=skill, base_rate=base_rate)
