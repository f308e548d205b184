"""Exact Shapley attribution: published decompositions, properties, RM-vs-market recovery."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi_panel import simulate_rm_panel
from rmanalytics.kpi import (estimate_market_index, period_label, rm_market_split, shapley_decomposition,
                             unit_contributions, volume_mix_rate, volume_mix_rate_by_period)


def prod_sum(v):
    """Rate = sum over strata of the product of the (scalar or vector) factors."""
    return float(np.sum(np.prod([np.asarray(x, dtype=float) for x in v.values()], axis=0)))


# --- published examples -------------------------------------------------------------------------
# Source: P. Das Gupta (1993) "Standardization and Decomposition of Rates: A User's Manual",
# US Census Bureau, Current Population Reports P23-186. The factor values and effects are those of
# the book's examples as transcribed (inputs and effects) in the README of the R package DasGuptR
# (J. King & B. Matthews, CRAN), which reproduces the book's tables; printed precision is used.

def test_das_gupta_table_2_1_two_factors_mean_earnings():
    """Das Gupta (1993) Example/Table 2.1: mean earnings of black vs white males 18+, US 1980,
    = mean earnings of earners x proportion earning. Effects 4369.91 (earnings) and 1487.26
    (proportion), total 5857.17 (printed to 2 decimals)."""
    c = shapley_decomposition(prod_sum, {"avg_earnings": 10930, "earner_prop": 0.717892},
                              {"avg_earnings": 16591, "earner_prop": 0.825974})
    assert c["avg_earnings"] == pytest.approx(4369.91, abs=0.005)
    assert c["earner_prop"] == pytest.approx(1487.26, abs=0.005)
    assert c.sum() == pytest.approx(5857.17, abs=0.01)
    assert (100 * c / c.sum()).round(2).tolist() == [74.61, 25.39]


def test_das_gupta_table_2_2_three_factors_birth_rate():
    """Das Gupta (1993) Table 2.2: crude birth rate Austria vs Chile 1981 as a product of three
    factors; effects 10.4340, 10.5608, -0.6670 (total 20.3279)."""
    c = shapley_decomposition(prod_sum, {"a": 51.78746, "b": 0.45919, "c": 0.52638},
                              {"a": 84.90502, "b": 0.75756, "c": 0.51065})
    assert c.tolist() == pytest.approx([10.4340333, 10.5608476, -0.6670084], abs=5e-7)


def test_das_gupta_table_2_3_four_factors():
    """Das Gupta (1993) Table 2.3: % with non-marital live birth, white women 15-19, US 1971 vs
    1979; four-factor effects 0.6889, 0.8125, 1.3829, 0.1048."""
    c = shapley_decomposition(prod_sum, {"a": 25.3, "b": 0.214, "c": 0.279, "d": 0.949},
                              {"a": 32.7, "b": 0.290, "c": 0.473, "d": 0.986})
    assert c.tolist() == pytest.approx([0.6889411, 0.8125381, 1.3829055, 0.1047547], abs=5e-7)


def test_das_gupta_table_2_4_five_factors_tfr():
    """Das Gupta (1993) Table 2.4: total fertility rate, South Korea, five Bongaarts indices;
    effects 1.0910, 1.2298, 0.7278, -0.8399, -0.1290 (total 2.0798)."""
    c = shapley_decomposition(prod_sum, dict(m=.58, c=.76, a=.84, i=.66, f=16.573),
                              dict(m=.72, c=.97, a=.97, i=.56, f=16.158))
    assert c.tolist() == pytest.approx([1.0909785, 1.2298438, 0.7278399, -0.8398707, -0.1290187], abs=5e-7)
    assert c.sum() == pytest.approx(2.0797729, abs=5e-7)


def test_das_gupta_table_4_3_vector_factors():
    """Das Gupta (1993) Table 4.3: crude birth rate Taiwan 1960 -> 1970 = sum over 7 age groups of
    three vector factors; effects -7.2856, -2.7206, -1.5652 (total -11.5714)."""
    base = dict(bm=[393, 407, 369, 274, 184, 90, 16], mw=[.122, .622, .903, .930, .916, .873, .800],
                wp=[.043, .041, .036, .032, .026, .020, .018])
    cur = dict(bm=[488, 452, 338, 156, 63, 22, 3], mw=[.082, .527, .866, .941, .942, .923, .876],
               wp=[.058, .038, .032, .030, .026, .023, .019])
    c = shapley_decomposition(prod_sum, {k: np.array(v, float) for k, v in base.items()},
                              {k: np.array(v, float) for k, v in cur.items()})
    assert c.tolist() == pytest.approx([-7.285632, -2.720633, -1.565181], abs=5e-7)


def test_das_gupta_table_4_4_nonproduct_function():
    """Das Gupta (1993) Table 4.4: illegitimacy ratio 1963 vs 1983, a non-product function of four
    vector factors; effects -0.00620498, 0.04866154, 0.02705922, 0.02470928."""
    A = ([.200, .163, .146, .154, .168, .169], [.169, .195, .190, .174, .150, .122])
    B = ([.866, .325, .119, .099, .099, .121], [.931, .563, .311, .216, .199, .191])
    C = ([.007, .021, .023, .015, .008, .002], [.018, .026, .023, .016, .008, .002])
    D = ([.454, .326, .195, .107, .051, .015], [.380, .201, .149, .079, .025, .006])

    def ratio(v):
        a, b, c, d = (np.asarray(v[k]) for k in "ABCD")
        return (a * b * c).sum() / ((a * b * c).sum() + (a * (1 - b) * d).sum())

    c = shapley_decomposition(ratio, {k: np.array(x[0]) for k, x in zip("ABCD", (A, B, C, D))},
                              {k: np.array(x[1]) for k, x in zip("ABCD", (A, B, C, D))})
    assert c.tolist() == pytest.approx([-0.00620498, 0.04866154, 0.02705922, 0.02470928], abs=5e-9)


HEADSHIP = pd.DataFrame({
    "age": ["15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59", "60-64", "65-69",
            "70-74", "75+"],
    "size70": [12.9, 10.9, 9.5, 8.0, 7.8, 8.4, 8.6, 7.8, 7.0, 5.9, 4.7, 3.6, 4.9],
    "size85": [10.1, 11.2, 11.6, 10.9, 9.4, 7.7, 6.3, 6.0, 6.3, 5.9, 5.1, 4.0, 5.5],
    "rate70": [1.9, 25.8, 45.7, 49.6, 51.2, 51.6, 51.8, 54.9, 58.7, 60.4, 62.8, 66.6, 66.8],
    "rate85": [2.2, 24.3, 45.8, 52.5, 56.1, 55.6, 56.0, 57.4, 57.2, 61.2, 63.9, 68.6, 72.2],
})


def test_kitagawa_rate_composition_das_gupta_table_5_1():
    """Kitagawa (1955) rate/composition split, as in Das Gupta (1993) Table 5.1: household
    headship rates per 100, US 1970 vs 1985. Age-composition effect 1.2269, rate effect 1.7403,
    total 2.9672 (crude 44.7268 -> 47.6940). Also checked against Kitagawa's closed form,
    implemented independently here."""
    h = HEADSHIP
    c = shapley_decomposition(prod_sum, {"composition": h["size70"].to_numpy() / 100, "rate": h["rate70"].to_numpy()},
                              {"composition": h["size85"].to_numpy() / 100, "rate": h["rate85"].to_numpy()})
    assert c["composition"] == pytest.approx(1.2269, abs=5e-5)
    assert c["rate"] == pytest.approx(1.7403, abs=5e-5)
    c0, c1 = h["size70"] / 100, h["size85"] / 100
    kit_comp = ((c1 - c0) * (h["rate70"] + h["rate85"]) / 2).sum()
    kit_rate = ((h["rate85"] - h["rate70"]) * (c0 + c1) / 2).sum()
    assert c["composition"] == pytest.approx(kit_comp, rel=1e-12)
    assert c["rate"] == pytest.approx(kit_rate, rel=1e-12)


def test_volume_mix_rate_equals_kitagawa_when_volume_fixed():
    """With the same total count, volume is 0 and mix/rate equal Kitagawa's composition/rate."""
    h = HEADSHIP
    b = pd.DataFrame({"segment": h["age"], "customers": h["size70"] * 10, "fee_income": h["size70"] * 10 * h["rate70"]})
    c = pd.DataFrame({"segment": h["age"], "customers": h["size85"] * 10, "fee_income": h["size85"] * 10 * h["rate85"]})
    # both sum to 100.0 % up to rounding of the published table; rescale current to the same total
    c["fee_income"] *= b["customers"].sum() / c["customers"].sum()
    c["customers"] *= b["customers"].sum() / c["customers"].sum()
    out = volume_mix_rate(b, c)
    assert out["volume"] == pytest.approx(0.0, abs=1e-9)
    assert out.sum() == pytest.approx(c["fee_income"].sum() - b["fee_income"].sum(), rel=1e-12)
    N = b["customers"].sum()
    assert out["mix"] / N == pytest.approx(1.2269, abs=5e-5)
    assert out["rate"] / N == pytest.approx(1.7403, abs=5e-5)


# --- properties ----------------------------------------------------------------------------------

finite = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)


def _kpi_poly(v):
    # a non-linear, non-separable KPI
    x = [v[k] for k in sorted(v)]
    return sum(x) + np.prod(x) * 0.1 + x[0] ** 2 * (x[-1] if len(x) > 1 else 1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_properties_sum_order_dummy(pairs, rnd):
    keys = [f"f{i}" for i in range(len(pairs))]
    base = {k: p[0] for k, p in zip(keys, pairs)}
    cur = {k: p[1] for k, p in zip(keys, pairs)}
    c = shapley_decomposition(_kpi_poly, base, cur)
    total = _kpi_poly(cur) - _kpi_poly(base)
    assert c.sum() == pytest.approx(total, rel=1e-9, abs=1e-7)  # efficiency
    perm = keys[:]
    rnd.shuffle(perm)
    c2 = shapley_decomposition(_kpi_poly, {k: base[k] for k in perm}, {k: cur[k] for k in perm})
    assert (c2.reindex(keys) == c).all()  # order independence (bitwise: canonical enumeration)
    for k in keys:  # dummy: unchanged factor gets exactly zero
        if base[k] == cur[k]:
            assert c[k] == 0.0


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=2, max_size=5), st.lists(finite, min_size=2, max_size=5))
def test_unchanged_factor_is_exactly_zero(xs, ys):
    n = min(len(xs), len(ys))
    base = {f"f{i}": xs[i] for i in range(n)}
    cur = dict(base)
    cur["f0"] = ys[0]
    c = shapley_decomposition(_kpi_poly, base, cur)
    assert all(c[k] == 0.0 for k in base if k != "f0")
    assert c["f0"] == pytest.approx(_kpi_poly(cur) - _kpi_poly(base), rel=1e-12, abs=1e-9)


def test_too_many_factors_and_mismatched_keys():
    many = {f"f{i}": 1.0 for i in range(13)}
    with pytest.raises(ValueError, match="13 factors exceed the limit of 12"):
        shapley_decomposition(prod_sum, many, many)
    with pytest.raises(ValueError, match="same factors"):
        shapley_decomposition(prod_sum, {"a": 1}, {"b": 1})


def test_volume_mix_rate_new_segment_counts_as_mix():
    b = pd.DataFrame({"segment": ["retail"], "customers": [100.0], "fee_income": [1000.0]})
    c = pd.DataFrame({"segment": ["retail", "corporate"], "customers": [100.0, 100.0], "fee_income": [1000.0, 5000.0]})
    out = volume_mix_rate(b, c)
    assert out.sum() == pytest.approx(5000.0)
    assert out["rate"] == pytest.approx(0.0, abs=1e-9)  # rates unchanged by convention


def test_volume_mix_rate_chain_and_direct_both_add_up():
    rng = np.random.default_rng(3)
    rows = []
    for p in ["2024Q1", "2024Q2", "2024Q3"]:
        for s in ["a", "b", "c"]:
            n = rng.integers(50, 150)
            rows.append({"period": p, "segment": s, "customers": float(n), "fee_income": float(n * rng.uniform(5, 15))})
    f = pd.DataFrame(rows)
    tot = f.groupby("period")["fee_income"].sum()
    for policy in ("direct", "chain"):
        out = volume_mix_rate_by_period(f, ["2024Q1", "2024Q2", "2024Q3"], policy=policy)
        assert out.sum() == pytest.approx(tot["2024Q3"] - tot["2024Q1"], rel=1e-12)


def test_unit_contributions_add_up_to_bank_total():
    base = pd.Series({"R1": 10.0, "R2": 20.0, "R3": 5.0})
    cur = pd.Series({"R1": 12.0, "R2": 18.0, "R4": 7.0})  # R3 left, R4 joined
    per_rm = unit_contributions(base, cur)
    assert per_rm["contribution"].sum() == pytest.approx(cur.sum() - base.sum())
    assert per_rm.loc["R3", "contribution"] == -5.0
    branch = pd.Series({"R1": "B1", "R2": "B1", "R3": "B2", "R4": "B2"}, name="tier1_branch")
    per_b = unit_contributions(base, cur, groups=branch)
    assert per_b["contribution"].to_dict() == {"B1": 0.0, "B2": 2.0}
    with pytest.raises(ValueError, match="1 units have no group"):
        unit_contributions(base, cur, groups=branch.drop("R4"))


# --- RM vs market on synthetic truth -------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    return simulate_rm_panel(n_rms=30, n_months=24, seed=7, market_growth=0.25)


def test_market_index_recovered(sim):
    df, truth = sim
    mi = estimate_market_index(df.assign(period=df["month_start"]))
    true = truth.market_index / truth.market_index.iloc[0]
    ratio = mi.to_numpy() / true.to_numpy()
    # up to the noise of the first month's normalisation, the index follows the truth
    assert np.abs(np.log(ratio) - np.log(ratio).mean()).max() < 0.04
    assert mi.iloc[-1] / mi.iloc[0] == pytest.approx(true.iloc[-1] / true.iloc[0], rel=0.06)


@pytest.mark.parametrize("policy", ["direct", "chain"])
def test_rm_market_split_credits_market_to_market(sim, policy):
    df, truth = sim
    q = (df.assign(period=period_label(df["month_start"], "quarter").to_numpy())
         .groupby(["rm_id", "period"], as_index=False)[["fee_income", "volume"]].sum())
    s = rm_market_split(q, "2023Q1", "2024Q4", policy=policy)
    parts = s[["book", "market", "rm", "joined_left"]].sum(axis=1)
    assert np.allclose(parts, s["change"], rtol=1e-10, atol=1e-6)  # exact per RM
    tot = s.sum()
    # oracle: the same split with the true market index (quarterly mean of the monthly truth)
    true = truth.market_index / truth.market_index.iloc[0]
    tq = true.groupby(period_label(true.index, "quarter").to_numpy()).mean()
    oracle = rm_market_split(q, "2023Q1", "2024Q4", policy=policy, market_index=tq).sum()
    assert tot["market"] > 0.15 * tot["base"]  # the market rose ~25 %
    assert tot["market"] == pytest.approx(oracle["market"], rel=0.12)
    assert tot["book"] == pytest.approx(oracle["book"], rel=0.02)
    # what is not market is not silently handed to the RMs either
    assert abs(tot["rm"] - oracle["rm"]) < 0.1 * oracle["market"]


def test_rm_market_split_recovers_rm_effect():
    """An RM whose activity (hence yield) jumps gets the credit; the market is shared by all."""
    df, truth = simulate_rm_panel(n_rms=20, n_months=12, seed=11, market_growth=0.0, noise_sd=0.01)
    df = df.copy()
    late = (df["rm_id"] == "R0001") & (df["month_start"] >= "2023-07-01")
    df.loc[late, "fee_income"] *= 1.3  # the RM's own effect: +30 % yield in H2
    h = df.assign(period=np.where(df["month_start"] < "2023-07-01", "2023H1", "2023H2"))
    p = h.groupby(["rm_id", "period"], as_index=False)[["fee_income", "volume"]].sum()
    s = rm_market_split(p, "2023H1", "2023H2")
    r1 = s.loc["R0001"]
    assert r1["rm"] > 0.2 * r1["base"]
    assert abs(s.drop("R0001")["rm"].sum()) < 0.05 * s.drop("R0001")["base"].sum()
