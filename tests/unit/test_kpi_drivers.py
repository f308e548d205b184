"""Driver analysis: CV against a baseline, grouped permutation importance, FE recovery of betas,
and recovery on the bundled synthetic sample (truth in data/sample/truth.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpi_panel import simulate_rm_panel
from rmanalytics.kpi import (activity_panel, driver_analysis, estimate_market_index, fe_regression, feature_groups,
                             rm_month_measures)

ACTS = ["visits", "calls", "cross_sell_offers", "digital_usage"]
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(scope="module")
def sim():
    return simulate_rm_panel(n_rms=30, n_months=24, seed=5)


def test_drivers_rank_true_activities_above_decoy(sim):
    df, truth = sim
    p = activity_panel(df, lags=(0,))
    res = driver_analysis(p, n_splits=4, n_repeats=3, seed=1)
    assert res.any_beats_baseline
    imp = res.importance.set_index("group")["mean"]
    assert "calls" in imp.index  # decoy kept apart at the default threshold
    for a in ("visits", "cross_sell_offers", "digital_usage"):
        assert imp[a] > imp["calls"]
    assert abs(imp["calls"]) < 0.02


def test_no_signal_does_not_beat_baseline(sim):
    df, _ = sim
    rng = np.random.default_rng(0)
    noise = df.assign(fee_income=df["volume"] * 0.002 * np.exp(rng.normal(0, 0.1, len(df))))
    res = driver_analysis(activity_panel(noise, lags=(0,)), n_splits=4, n_repeats=2, seed=1)
    assert not res.any_beats_baseline


def test_correlated_features_grouped(sim):
    df, _ = sim
    p = activity_panel(df, lags=(0, 1))
    g = feature_groups(p, p.attrs["features"], corr_threshold=0.5)
    assert g["calls+visits"] == ["visits_lag0", "visits_lag1", "calls_lag0", "calls_lag1"]
    assert p.attrs["n_excluded_lag"] == 30  # first month of each RM has no lag-1


def test_fe_regression_recovers_betas(sim):
    df, truth = sim
    d = df.copy()
    for a in ACTS:
        d[a] = (d[a] - d[a].mean()) / d[a].std(ddof=0)
    d["ly"] = np.log(d["fee_income"] / d["volume"])
    fe = fe_regression(d, "ly", ACTS)
    for a in ACTS:
        assert fe.loc[a, "ci_low"] <= truth.betas[a] <= fe.loc[a, "ci_high"], a


@pytest.mark.skipif(not (SAMPLE / "truth.json").exists(), reason="data/sample not generated")
def test_recovery_on_sample():
    """Sample truth: fee multiplier exp(b . z + skill) x market_index; z standardised with the
    truth's means/sds. The FE log-linear regression recovers the betas within its 95 % CI
    (shared customers are credited by share here, by primary RM in the truth: a small bias), the
    market index is recovered, and the driver analysis ranks visits/cross-sell/digital above calls."""
    tables = {t: pd.read_parquet(SAMPLE / f"{t}.parquet") for t in
              ("customers", "transactions", "balances", "assignments", "rm_activity", "rms")}
    truth = json.loads((SAMPLE / "truth.json").read_text())
    m = rm_month_measures(tables)
    p = activity_panel(m, volume="expected_fee", lags=(0,))
    means, sds = truth["activity_means"], truth["activity_sds"]
    z = p.assign(**{f"{a}_z": (p[a] - means[a]) / sds[a] for a in ACTS})
    fe = fe_regression(z, "y_raw", [f"{a}_z" for a in ACTS])
    betas = truth["driver_betas"]
    for a in ACTS:
        b = betas[a]
        lo, hi = fe.loc[f"{a}_z", "ci_low"], fe.loc[f"{a}_z", "ci_high"]
        assert lo - 0.02 <= b <= hi + 0.02, (a, b, lo, hi)  # CI, plus 0.02 for the share-vs-primary crediting
    mi = estimate_market_index(m.assign(period=m["month_start"]), volume="expected_fee")
    tm = pd.Series(truth["market_index"])
    tm.index = pd.to_datetime(tm.index)
    tm = tm.reindex(mi.index)
    assert np.corrcoef(np.log(mi.to_numpy()), np.log(tm.to_numpy()))[0, 1] > 0.75
    res = driver_analysis(p, n_splits=4, n_repeats=2, seed=0)
    imp = res.importance.set_index("group")["mean"]
    assert res.any_beats_baseline
    for a in ("visits", "cross_sell_offers", "digital_usage"):
        assert imp[a] > imp["calls"], imp


def test_target_tracking_on_the_sample():
    """Notebook 04's milestone tracking: the last year in the data by default, one row per RM and month."""
    from rmanalytics.io import load_tables
    from rmanalytics.kpi import bank_attainment, target_tracking

    tables = load_tables(SAMPLE)
    monthly = rm_month_measures(tables)
    progress, year = target_tracking(tables, monthly, kpi="fee_income", base_share=0.8)
    assert year == "2024" and progress["month"].str.startswith("2024").all()
    assert set(progress["unit_id"]) <= set(tables["rms"]["rm_id"])
    assert 0 < bank_attainment(progress) < 10
    assert target_tracking(tables, monthly, kpi="fee_income", year="2023")[1] == "2023"


def _fe_regression_reference(panel, y, X, *, unit="rm_id", time="month_start"):
    """fe_regression before the one-pass cluster sums (a loop over clusters), the reference."""
    df = panel[[y, unit, time, *X]].dropna()
    Z = np.column_stack([df[X].to_numpy(float), pd.get_dummies(df[unit].astype(str)).to_numpy(float),
                         pd.get_dummies(df[time].astype(str)).to_numpy(float)[:, 1:]])
    yy = df[y].to_numpy(float)
    pinv = np.linalg.pinv(Z.T @ Z)
    beta = pinv @ Z.T @ yy
    u = yy - Z @ beta
    meat = np.zeros((Z.shape[1], Z.shape[1]))
    codes = pd.factorize(df[unit])[0]
    G = codes.max() + 1
    for g in range(G):
        s = Z[codes == g].T @ u[codes == g]
        meat += np.outer(s, s)
    n, k = Z.shape[0], np.linalg.matrix_rank(Z)
    V = G / (G - 1) * (n - 1) / (n - k) * pinv @ meat @ pinv
    se = np.sqrt(np.diag(V)[: len(X)])
    b = beta[: len(X)]
    return pd.DataFrame({"coef": b, "se": se, "ci_low": b - 1.96 * se, "ci_high": b + 1.96 * se}, index=X)


@pytest.mark.parametrize("seed", [0, 1])
def test_fe_regression_equals_the_cluster_loop(seed):
    """Clusters summed in one pass (and on one BLAS thread) give the loop's coefficients and SEs;
    shuffled rows (clusters not contiguous) and a missing value included."""
    monthly, _ = simulate_rm_panel(n_rms=25, n_months=18, seed=seed)
    panel = activity_panel(monthly, lags=(0,)).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    panel.loc[3, "visits_lag0"] = np.nan
    acts = [c for c in panel.columns if c.endswith("_lag0")]
    got = fe_regression(panel.assign(y=panel["y_raw"]), "y", acts)
    want = _fe_regression_reference(panel.assign(y=panel["y_raw"]), "y", acts)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)


def test_driver_analysis_same_results_with_forest_threads():
    monthly, _ = simulate_rm_panel(n_rms=20, n_months=12, seed=4)
    panel = activity_panel(monthly)
    a = driver_analysis(panel, n_splits=3, n_repeats=2, seed=1)
    b = driver_analysis(panel, n_splits=3, n_repeats=2, seed=1, n_jobs=2)
    c = driver_analysis(panel, n_splits=3, n_repeats=2, seed=1, n_jobs=0)  # the CPUs this process may use
    for other in (b, c):
        pd.testing.assert_frame_equal(a.cv_scores, other.cv_scores, check_exact=True)
        pd.testing.assert_frame_equal(a.importance, other.importance, check_exact=True)


def test_cpu_share_is_run_alls_thread_share_or_every_cpu(monkeypatch):
    import os

    from rmanalytics.engine import CPU_SHARE_VARS, cpu_share
    from rmanalytics.kpi.drivers import default_models
    from rmanalytics.runner import blas_threads_env

    for v in CPU_SHARE_VARS:
        monkeypatch.delenv(v, raising=False)
    assert cpu_share() == (os.cpu_count() or 1)
    for v, n in blas_threads_env(2, cpus=8).items():  # what run-all gives each of two kernels on 8 CPUs
        monkeypatch.setenv(v, n)
    assert cpu_share() == 4 and default_models(n_jobs=0)["forest"].n_jobs == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: the next variable decides
    assert cpu_share() == 4
