"""Shared performance pool: rules, caps, exact sums, and the synthetic bank with a known market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmanalytics.errors import ParameterError
from rmanalytics.kpi import kpi_table, rm_market_split
from rmanalytics.kpi.pool import CARRIED, performance_pool
from rmanalytics.synth import generate


def split(rows):
    return pd.DataFrame(rows, columns=["rm_id", "change", "book", "market", "rm"]).set_index("rm_id")


def test_rules_proportional_and_exact():
    s = split([
        ("A", -100.0, 0.0, -100.0, 0.0),   # market only -> eligible, weight 100
        ("B", -80.0, 0.0, -50.0, -30.0),   # own 30 < market 50 -> eligible, weight 50
        ("C", -150.0, 0.0, -50.0, -100.0),  # own part larger -> zero
        ("D", 20.0, 0.0, -50.0, 70.0),     # result did not fall -> zero
        ("E", -10.0, -5.0, 5.0, -10.0),    # market up -> zero
    ])
    out = performance_pool(s, bonus_budget=10_000.0, pool_share=0.03, cap_share=1.0, cap_to_shortfall=None)
    a = out.set_index("rm_id")
    assert out["allocation"].sum() == pytest.approx(300.0, abs=1e-9) and out.attrs["pool"] == 300.0
    assert a.loc["A", "allocation"] == pytest.approx(200.0) and a.loc["B", "allocation"] == pytest.approx(100.0)
    assert a.loc[["C", "D", "E"], "allocation"].eq(0).all()
    assert a.loc["C", "reason"] == "pool_own_part" and a.loc["D", "reason"] == "pool_no_fall"
    assert a.loc["E", "reason"] == "pool_market_up" and a.loc["A", "reason"] == "pool_eligible"
    assert CARRIED not in a.index


def test_caps_refill_and_carry_forward():
    s = split([("A", -900.0, 0.0, -900.0, 0.0), ("B", -50.0, 0.0, -50.0, 0.0), ("C", -50.0, 0.0, -50.0, 0.0)])
    out = performance_pool(s, bonus_budget=1000.0, pool_share=0.1, cap_share=0.5, cap_to_shortfall=None)
    a = out.set_index("rm_id")["allocation"]
    assert a["A"] == pytest.approx(50.0)  # capped at half the pool; the rest re-shared equally
    assert a["B"] == pytest.approx(25.0) and a["C"] == pytest.approx(25.0)
    # capping at the market shortfall: 3 x 10 paid, 70 carried forward
    s2 = split([(k, -10.0, 0.0, -10.0, 0.0) for k in "ABC"])
    out2 = performance_pool(s2, bonus_budget=1000.0, pool_share=0.1, cap_to_shortfall=1.0)
    a2 = out2.set_index("rm_id")["allocation"]
    assert a2[list("ABC")].tolist() == [10.0, 10.0, 10.0] and a2[CARRIED] == pytest.approx(70.0)
    assert out2["allocation"].sum() == pytest.approx(100.0, abs=1e-9)


def test_cents_sum_exactly():
    rng = np.random.default_rng(0)
    m = -rng.uniform(1, 100, 37)
    s = split([(f"R{i}", x, 0.0, x, 0.0) for i, x in enumerate(m)])
    out = performance_pool(s, bonus_budget=123_456.78, pool_share=0.07, cap_share=0.2, cap_to_shortfall=None)
    cents = np.round(out["allocation"].to_numpy() * 100)
    assert np.allclose(out["allocation"] * 100, cents)
    assert int(cents.sum()) == round(0.07 * 123_456.78 * 100)


def test_parameters_validated():
    with pytest.raises(ParameterError, match="pool_share"):
        performance_pool(split([("A", -1.0, 0.0, -1.0, 0.0)]), bonus_budget=1.0, pool_share=1.5)


def test_synthetic_bank_market_only_versus_own_doing():
    """2023Q1 -> 2023Q4 the synthetic market index falls ~10 % (the cycle). RMs whose own yield
    is unchanged lose only to the market and are paid; RMs whose fee income we cut by 40 % in
    2023Q4 (their own doing, known) get nothing."""
    bank = generate(3000, 40, seed=11)
    k = kpi_table(bank.tables, freq="quarter")
    mi = bank.truth.market_index
    q = mi.groupby(mi.index.to_period("Q")).mean()
    q.index = [f"{p.year}Q{p.quarter}" for p in q.index]
    assert q["2023Q4"] / q["2023Q1"] < 0.93  # the market fell
    panel = k[k["period"].isin(["2023Q1", "2023Q4"])].copy()
    rms = sorted(panel.loc[panel["period"] == "2023Q4", "rm_id"])
    both = panel.groupby("rm_id")["period"].nunique()
    rms = [r for r in rms if both.get(r, 0) == 2]
    own = rms[:6]
    market_only = rms[6:]
    # known truth: market-only RMs keep their 2023Q1 yield (fee/volume) in 2023Q4, times the market
    p = panel.set_index(["rm_id", "period"])
    for r in market_only:
        y0 = p.loc[(r, "2023Q1"), "fee_income"] / p.loc[(r, "2023Q1"), "volume"]
        p.loc[(r, "2023Q4"), "fee_income"] = p.loc[(r, "2023Q4"), "volume"] * y0 * q["2023Q4"] / q["2023Q1"]
    for r in own:  # own collapse: yield 40 % below the market-only path
        y0 = p.loc[(r, "2023Q1"), "fee_income"] / p.loc[(r, "2023Q1"), "volume"]
        p.loc[(r, "2023Q4"), "fee_income"] = 0.6 * p.loc[(r, "2023Q4"), "volume"] * y0 * q["2023Q4"] / q["2023Q1"]
    p = p.reset_index()
    s = rm_market_split(p, "2023Q1", "2023Q4", market_index=q)
    out = performance_pool(s, bonus_budget=2_000_000.0, pool_share=0.05, cap_share=0.2, cap_to_shortfall=None)
    a = out.set_index("rm_id")
    assert out["allocation"].sum() == pytest.approx(100_000.0, abs=1e-6)
    assert (a.loc[own, "allocation"] == 0).all()
    own_fell = [r for r in own if a.loc[r, "change"] < 0]
    assert len(own_fell) >= 4 and (a.loc[own_fell, "reason"] == "pool_own_part").all()
    fell = [r for r in market_only if a.loc[r, "change"] < 0]
    assert len(fell) >= 0.5 * len(market_only)
    assert (a.loc[fell, "allocation"] > 0).all() and (a.loc[fell, "reason"] == "pool_eligible").all()
    # own part of the market-only RMs is zero by construction -> allocation proportional to -market
    unc = a.loc[fell][~a.loc[fell, "capped"]]
    ratio = unc["allocation"] / (-unc["market"])
    assert ratio.max() / ratio.min() == pytest.approx(1.0, abs=1e-3)


def test_worst_market_step_and_plot():
    from rmanalytics.kpi.pool import plot_pool_allocation, worst_market_step

    mi = pd.Series([1.0, 1.05, 0.95, 0.97, 0.90], index=["Q1", "Q2", "Q3", "Q4", "Q5"])
    assert worst_market_step(mi) == ("Q2", "Q3")
    with pytest.raises(ValueError, match="never falls"):
        worst_market_step(pd.Series([1.0, 1.1], index=["a", "b"]))
    s = split([("A", -100.0, 0.0, -100.0, 0.0), ("B", -10.0, 0.0, -10.0, 0.0)])
    fig = plot_pool_allocation(performance_pool(s, bonus_budget=1000.0, cap_to_shortfall=None))
    assert fig.axes[0].get_title().startswith("Shared performance pool")
