"""Two-way fixed effects without dummies (rmanalytics.kpi.fixed_effects) against the dense dummy
estimators they replaced (kept verbatim in kpi_fe_reference.py), on unbalanced random panels:
RMs joining late and leaving early, months missing, one-row RMs, disconnected panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_fe_reference import reference_fe_regression, reference_market_index, reference_rm_market_split
from rmanalytics.kpi import estimate_market_index, fe_regression, rm_market_split
from rmanalytics.kpi.fixed_effects import TwoWayProjector

ACTS = ["visits", "calls", "cross_sell_offers", "digital_usage"]


def random_panel(n_rms: int, n_months: int, seed: int, *, missing: float = 0.1) -> pd.DataFrame:
    """RM x month panel with RM spans (joined / left RMs), random holes, RM and month effects."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2022-01-01", periods=n_months, freq="MS")
    rows = []
    for i in range(n_rms):
        a = int(rng.integers(0, n_months)) if rng.random() < 0.3 else 0  # joined late
        b = int(rng.integers(a, n_months)) + 1 if rng.random() < 0.3 else n_months  # left early
        keep = rng.random(b - a) >= missing
        keep[rng.integers(0, b - a)] = True  # at least one month
        for t in np.arange(a, b)[keep]:
            rows.append((f"R{i:04d}", months[t]))
    df = pd.DataFrame(rows, columns=["rm_id", "month_start"])
    n = len(df)
    skill = pd.Series(rng.normal(0, 0.3, n_rms), index=[f"R{i:04d}" for i in range(n_rms)])
    market = pd.Series(np.cumsum(rng.normal(0.01, 0.03, n_months)), index=months)
    for j, a in enumerate(ACTS):
        df[a] = rng.poisson(20 + 5 * j, n).astype(float) + 0.3 * df["rm_id"].map(skill).to_numpy() * 10
    lin = 0.02 * df["visits"] + 0.01 * df["cross_sell_offers"] + df["rm_id"].map(skill) + df["month_start"].map(market)
    df["volume"] = rng.lognormal(np.log(2e6), 0.4, n)
    df["fee_income"] = df["volume"] * 0.002 * np.exp(lin + rng.normal(0, 0.1, n))
    df["y"] = np.log(df["fee_income"] / df["volume"])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows in no particular order


def dummies(units, periods) -> np.ndarray:
    return np.column_stack([pd.get_dummies(pd.Series(units).astype(str)).to_numpy(float),
                            pd.get_dummies(pd.Series(periods).astype(str)).to_numpy(float)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projector_equals_dummy_least_squares(seed):
    df = random_panel(40, 15, seed)
    p = TwoWayProjector(df["rm_id"], df["month_start"])
    D = dummies(df["rm_id"], df["month_start"])
    V = df[ACTS + ["y"]].to_numpy(float)
    coef, *_ = np.linalg.lstsq(D, V, rcond=None)
    np.testing.assert_allclose(p.residualize(V), V - D @ coef, rtol=0, atol=1e-9 * np.abs(V).max())
    np.testing.assert_allclose(p.residualize(V[:, 0]), (V - D @ coef)[:, 0], rtol=0, atol=1e-9 * np.abs(V).max())
    assert p.n_components == 1
    assert p.rank == np.linalg.matrix_rank(D)


def test_projector_disconnected_panel():
    """Two groups of RMs observed in disjoint months: two components, rank two below full."""
    a = random_panel(10, 6, 3, missing=0.0)
    b = random_panel(8, 6, 4, missing=0.0).assign(
        rm_id=lambda d: "S" + d["rm_id"], month_start=lambda d: d["month_start"] + pd.DateOffset(years=1))
    df = pd.concat([a, b], ignore_index=True)
    p = TwoWayProjector(df["rm_id"], df["month_start"])
    D = dummies(df["rm_id"], df["month_start"])
    assert p.n_components == 2
    assert p.rank == np.linalg.matrix_rank(D) == D.shape[1] - 2
    V = df[ACTS].to_numpy(float)
    coef, *_ = np.linalg.lstsq(D, V, rcond=None)
    np.testing.assert_allclose(p.residualize(V), V - D @ coef, rtol=0, atol=1e-9 * np.abs(V).max())


def assert_frames_close(new: pd.DataFrame, old: pd.DataFrame, rtol: float) -> None:
    assert list(new.index) == list(old.index) and list(new.columns) == list(old.columns)
    np.testing.assert_allclose(new.to_numpy(float), old.to_numpy(float), rtol=rtol, atol=0)


@pytest.mark.parametrize("seed,n_rms,n_months", [(0, 60, 24), (1, 25, 36), (2, 120, 12)])
def test_fe_regression_equals_dummy_regression(seed, n_rms, n_months):
    df = random_panel(n_rms, n_months, seed)
    df.loc[df.sample(frac=0.02, random_state=seed).index, "calls"] = np.nan  # dropped rows
    assert_frames_close(fe_regression(df, "y", ACTS), reference_fe_regression(df, "y", ACTS), 1e-8)


def test_fe_regression_disconnected_panel_equals_dummy_regression():
    a = random_panel(15, 8, 5)
    b = random_panel(12, 8, 6).assign(
        rm_id=lambda d: "S" + d["rm_id"], month_start=lambda d: d["month_start"] + pd.DateOffset(years=1))
    df = pd.concat([a, b], ignore_index=True)
    assert_frames_close(fe_regression(df, "y", ACTS), reference_fe_regression(df, "y", ACTS), 1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_market_index_equals_dummy_least_squares(seed):
    df = random_panel(50, 12, seed).assign(period=lambda d: d["month_start"].dt.strftime("%Y-%m"))
    df.loc[df.sample(frac=0.03, random_state=seed).index, "fee_income"] = 0.0  # excluded rows
    new, old = estimate_market_index(df), reference_market_index(df)
    pd.testing.assert_series_equal(new, old, check_exact=False, rtol=1e-12, atol=0)
    assert new.attrs["n_excluded"] == old.attrs["n_excluded"] > 0


def test_market_index_disconnected_panel_falls_back_to_dummies():
    a = random_panel(10, 6, 7, missing=0.0)
    b = random_panel(8, 6, 8, missing=0.0).assign(
        rm_id=lambda d: "S" + d["rm_id"], month_start=lambda d: d["month_start"] + pd.DateOffset(years=1))
    df = pd.concat([a, b], ignore_index=True).assign(period=lambda d: d["month_start"].dt.strftime("%Y-%m"))
    pd.testing.assert_series_equal(estimate_market_index(df), reference_market_index(df),
                                   check_exact=False, rtol=1e-12, atol=0)


@pytest.mark.parametrize("policy", ["direct", "chain"])
@pytest.mark.parametrize("seed", [0, 1])
def test_rm_market_split_equals_reference(seed, policy):
    """Quarterly panel with joined / left RMs and RMs missing a quarter; whole output equal."""
    df = random_panel(80, 24, seed, missing=0.2)
    q = (df.assign(period=df["month_start"].dt.to_period("Q").astype(str))
         .groupby(["rm_id", "period"], as_index=False)[["fee_income", "volume"]].sum())
    q.loc[q.sample(frac=0.02, random_state=seed).index, "fee_income"] = 0.0
    periods = sorted(q["period"].unique())
    base, cur = periods[0], periods[-1]
    new = rm_market_split(q, base, cur, policy=policy)
    old = reference_rm_market_split(q, base, cur, policy=policy)
    assert new.attrs == old.attrs
    pd.testing.assert_index_equal(new.index, old.index)
    pd.testing.assert_frame_equal(new, old, check_exact=False, rtol=1e-12, atol=1e-12 * old["base"].abs().max())
    assert (new["joined_left"] != 0).sum() > 0


@pytest.mark.parametrize("policy", ["direct", "chain"])
@pytest.mark.parametrize("seed", [0, 3])
def test_rm_market_split_all_units_at_once_is_bit_identical(seed, policy):
    """Given the market index, the vectorised split equals the unit-by-unit Shapley loop exactly
    (including units that vanish, reappear, or have zero fee or volume in one of the periods)."""
    df = random_panel(150, 36, seed, missing=0.25)
    q = (df.assign(period=df["month_start"].dt.to_period("Q").astype(str))
         .groupby(["rm_id", "period"], as_index=False)[["fee_income", "volume"]].sum())
    q.loc[q.sample(frac=0.03, random_state=seed).index, "fee_income"] = 0.0
    q.loc[q.sample(frac=0.02, random_state=seed + 1).index, "volume"] = -1.0
    mi = reference_market_index(q)
    mi.iloc[3] = mi.iloc[2]  # an unchanged market factor between two quarters: exactly 0
    periods = sorted(q["period"].unique())
    for base, cur in [(periods[0], periods[-1]), (periods[2], periods[4])]:
        new = rm_market_split(q, base, cur, policy=policy, market_index=mi)
        old = reference_rm_market_split(q, base, cur, policy=policy, market_index=mi)
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        assert new.attrs == old.attrs


@pytest.mark.parametrize("cols", [["rm_level"], ["visits", "rm_level"]])
def test_fe_regression_absorbed_column_is_zero_and_others_unchanged(cols):
    """A column constant within every RM is absorbed by the RM effects: coef and se 0 up to rounding (also
    alone, where its projected values are pure rounding noise), the other columns as before."""
    df = random_panel(40, 12, 0)
    df["rm_level"] = (df["rm_id"].str[1:].astype(int) % 3) * 0.1 + 0.7  # not exact in binary
    fe = fe_regression(df, "y", cols)
    assert np.abs(fe.loc["rm_level"].to_numpy()).max() < 1e-20  # 0 up to rounding
    if len(cols) > 1:
        assert_frames_close(fe.loc[["visits"]], reference_fe_regression(df, "y", cols).loc[["visits"]], 1e-8)
