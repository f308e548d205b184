"""Retention curves, log-rank, hold-out evaluation, PH check, worklist and plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from matplotlib.figure import Figure

from rmanalytics.churn import ChurnModel
from rmanalytics.churn.evaluate import (KMBaseline, brier_scores, calibration_table, evaluate_holdout,
                                        integrated_brier_score, ph_check, ph_narrative)
from rmanalytics.churn.plots import plot_calibration, plot_hazard_ratios, plot_km, plot_risk_distribution
from rmanalytics.churn.retention import km_by_group, logrank_table, logrank_test, retention_table
from rmanalytics.churn.worklist import retention_worklist

from test_churn_model import simulate_book  # noqa: E402


@pytest.fixture(scope="module")
def book():
    df = simulate_book(4000, 31, rm_switch=False)
    df["segment"] = df["customer_type"]
    df["rm_id"] = np.where(np.arange(len(df)) % 2 == 0, "R1", "R2")
    df["aum"] = np.exp(np.random.default_rng(0).normal(10, 1, len(df)))
    return df


def _counts_by_masks(stop, start, ev, g, k, times):
    """At-risk and event counts per event time and group as computed before issue 16's fifth pass
    (one mask per group, O(k n)), kept verbatim as the reference of the one-sort version."""
    n = np.zeros((len(times), k))
    d = np.zeros((len(times), k))
    for i in range(k):
        m = g == i
        s_stop, s_start = np.sort(stop[m]), np.sort(start[m])
        n[:, i] = (len(s_stop) - np.searchsorted(s_stop, times, "left")) - (len(s_start) - np.searchsorted(
            s_start, times, "left"))
        d[:, i] = np.bincount(np.searchsorted(times, stop[m & ev]), minlength=len(times))
    return n, d


def test_logrank_with_many_groups_equals_one_mask_per_group(book):
    """Hundreds of groups (branches at bank scale), some rows without a group, delayed entry: the
    same counts, bit for bit, as the mask-per-group computation it replaced, and the same statistic."""
    from rmanalytics.churn.retention import _at_risk_and_events, _logrank_inputs, _logrank_statistic

    rng = np.random.default_rng(5)
    df = book.assign(branch=rng.integers(0, 300, len(book)).astype(str))
    df.loc[rng.random(len(df)) < 0.03, "branch"] = None
    for col in ("branch", "risk_level"):
        args = _logrank_inputs(df, col, "duration", "event", "entry")
        n, d = _counts_by_masks(*args)
        n2, d2 = _at_risk_and_events(*args)
        np.testing.assert_array_equal(n2, n)
        np.testing.assert_array_equal(d2, d)
        ours = logrank_test(df, col)
        assert ours["statistic"] == _logrank_statistic(n, d)
        assert ours["groups"] == df[col].nunique()


def test_logrank_equals_lifelines_without_entry(book):
    ours = logrank_test(book, "risk_level", entry_col=None)
    ref = multivariate_logrank_test(book["duration"], book["risk_level"], book["event"])
    assert ours["statistic"] == pytest.approx(ref.test_statistic, rel=1e-9)
    assert ours["p_value"] == pytest.approx(ref.p_value, rel=1e-6, abs=1e-300)
    assert ours["df"] == 4
    tab = logrank_table(book, ["customer_type", "scenario"])
    assert (tab["p_value"] < 0.05).all()  # both have true effects
    # no effect -> large p-value with entry
    rnd = book.assign(g=np.random.default_rng(1).integers(0, 3, len(book)))
    assert logrank_test(rnd, "g")["p_value"] > 0.01


def test_retention_table_matches_km(book):
    tab = retention_table(book, "customer_type", months=(6, 12))
    sub = book[book["customer_type"] == "corporate"]
    km = KaplanMeierFitter().fit(sub["duration"], sub["event"], entry=sub["entry"])
    t = 12 * 365.25 / 12
    assert tab.loc["corporate", "retention_12m"] == pytest.approx(float(km.survival_function_at_times(t).iloc[0]))
    assert tab.loc["corporate", "customers"] == len(sub)
    assert tab.loc["corporate", "at_risk_12m"] == int(((sub["entry"] < t) & (sub["duration"] >= t)).sum())
    assert (tab["retention_12m_lower"] <= tab["retention_12m"]).all()
    assert (tab["retention_12m"] <= tab["retention_12m_upper"]).all()
    assert set(km_by_group(book, "segment")) == {"corporate", "retail"}


def test_brier_score_sanity():
    rng = np.random.default_rng(0)
    n = 2000
    rem = rng.exponential(100, n)
    ev = np.ones(n, int)
    u = np.linspace(10, 200, 20)
    truth = np.exp(-u[:, None] / 100) * np.ones((1, n))
    coin = np.full_like(truth, 0.5)
    assert integrated_brier_score(truth, rem, ev, u) < integrated_brier_score(coin, rem, ev, u)
    # with the true survival, the Brier score at t equals S(t)(1 - S(t)) in expectation
    bs = brier_scores(truth, rem, ev, u)
    np.testing.assert_allclose(bs, np.exp(-u / 100) * (1 - np.exp(-u / 100)), atol=0.03)
    cal = calibration_table(np.full(n, 1 - np.exp(-1)), rem, ev, 100)
    assert cal["observed"].mean() == pytest.approx(1 - np.exp(-1), abs=0.03)


def test_evaluate_holdout_model_beats_baseline(book):
    from rmanalytics.churn import holdout_split

    # synthetic open dates: day 0 of the window = 2022-01-01
    base = pd.Timestamp("2022-01-01")
    f = book.copy()
    f["open_date"] = base - pd.to_timedelta(f["entry"].round(), unit="D")
    f.loc[f["entry"] == 0, "open_date"] = base  # opened in the window (approx.)
    train, test = holdout_split(f, "2024-06-30", horizon_days=180)
    m = ChurnModel(covariates=["customer_type", "risk_level", "scenario"]).fit(train, entry_col="entry")
    bl = KMBaseline("segment").fit(train)
    res = evaluate_holdout(m, bl, test, 180)
    tab = res["table"]
    assert tab.loc["model", "concordance"] > tab.loc["baseline (KM by segment)", "concordance"]
    assert tab.loc["model", "concordance"] > 0.55
    assert tab.loc["model", "integrated_brier_score"] <= tab.loc["baseline (KM by segment)", "integrated_brier_score"] + 1e-3
    assert tab.loc["model", "mean_predicted"] == pytest.approx(tab.loc["model", "observed_churn"], abs=0.03)
    assert len(res["calibration"]["model"]) == 10
    assert isinstance(plot_calibration(res["calibration"], horizon_days=180), Figure)


def test_ph_check_and_narrative(book):
    m = ChurnModel(covariates=["customer_type", "risk_level"]).fit(book, entry_col="entry")
    ph = ph_check(m, book)
    assert set(ph.index) == {"customer_type[corporate]", "risk_level"}
    assert (ph["p_value"] > 0.001).all()  # data are PH by construction
    assert "Proportional hazards" in ph_narrative(ph)
    bad = ph.assign(violated=ph.index == "customer_type[corporate]")
    assert "customer_type[corporate]" in ph_narrative(bad)


def test_ph_check_equals_lifelines_without_entry():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi
    from lifelines.statistics import proportional_hazard_test

    rng = np.random.default_rng(4)
    r = load_rossi()
    r["week"] = r["week"] + rng.uniform(-0.5, 0, len(r))  # break ties: Efron = Breslow
    covs = ["fin", "age", "prio"]
    m = ChurnModel(covariates=covs).fit(r, "week", "arrest")
    ours = ph_check(m, r)
    ref = proportional_hazard_test(CoxPHFitter().fit(r[covs + ["week", "arrest"]], "week", "arrest"),
                                   r[covs + ["week", "arrest"]], time_transform="rank").summary
    ref.index = [i[0] if isinstance(i, tuple) else i for i in ref.index]
    np.testing.assert_allclose(ours["statistic"].to_numpy(), ref.loc[covs, "test_statistic"].to_numpy(), rtol=1e-8)


def test_worklist_ranked_with_raw_ids(book):
    m = ChurnModel(covariates=["customer_type", "risk_level", "scenario"]).fit(book, entry_col="entry")
    active = book[book["event"] == 0]
    raw = retention_worklist(m, active, 180, top_n=5)
    assert len(raw) == 10 and set(raw["rm_id"]) == {"R1", "R2"}
    # analysis functions never mask: the ids are the book's own (masking is the Recorder's job)
    assert set(raw["customer_id"]) <= set(active["customer_id"])
    for _, g in raw.groupby("rm_id"):
        assert g["value_at_stake"].is_monotonic_decreasing and g["rank"].tolist() == [1, 2, 3, 4, 5]
    p = m.predict_churn_probability(active, 180)
    top = raw.iloc[0]
    i = active.index[active["customer_id"] == top["customer_id"]][0]
    assert top["p_churn"] == pytest.approx(p[i]) and top["value_at_stake"] == pytest.approx(p[i] * active.loc[i, "aum"])
    # risk drivers name covariates that raise the hazard (risk_level > mean, coefficient > 0)
    hi = raw[raw["risk_drivers"].str.contains("risk_level")]
    assert len(hi) > 0
    # the drivers' text is made for the listed customers only: the same as in the full listing
    full = retention_worklist(m, active, 180, top_n=None).set_index("customer_id")
    assert len(full) == len(active)
    assert raw["risk_drivers"].tolist() == full.loc[raw["customer_id"], "risk_drivers"].tolist()


def test_plots_return_figures(book):
    m = ChurnModel(covariates=["customer_type", "risk_level"]).fit(book, entry_col="entry")
    assert isinstance(plot_km(km_by_group(book, "customer_type")), Figure)
    assert isinstance(plot_hazard_ratios(m), Figure)
    p = m.predict_churn_probability(book.head(200), 180)
    assert isinstance(plot_risk_distribution(p, book.head(200)["segment"]), Figure)
