"""ChurnModel: equality with lifelines, truth recovery, left truncation done right, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifelines import CoxPHFitter, CoxTimeVaryingFitter
from lifelines.datasets import load_rossi

from rmanalytics.churn import (ChurnModel, ChurnModelError, breslow_baseline, compress_frame, fit_cox_efron,
                               time_varying_frame, to_grid)
from rmanalytics.errors import ParameterError
from rmanalytics.synth.processes import simulate_weibull_ph

ROSSI_COVS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
# Fox (2002), "Cox Proportional-Hazards Regression for Survival Data", appendix to An R and S-PLUS
# Companion to Applied Regression: coef column of coxph(Surv(week, arrest) ~ fin + age + ...).
FOX = {"fin": -0.3794, "age": -0.0574, "race": 0.3139, "wexp": -0.1498, "mar": -0.4337, "paro": -0.0849,
       "prio": 0.0915}

SHAPE, SCALE = 1.4, 2500.0  # Weibull baseline in days of tenure
BETA = {"corporate": -0.5, "risk_level": 0.25, "young_family": 0.4}
RM_LEFT = 0.7


def simulate_book(n: int, seed: int, *, rm_switch: bool = False, years_before: float = 8.0,
                  window: float = 1095.0) -> pd.DataFrame:
    """Left-truncated book: customers opened up to ``years_before`` years before a window of ``window``
    days; closure from a Weibull PH model in tenure; only customers alive at the window start are kept."""
    rng = np.random.default_rng(seed)
    open_ = rng.uniform(-years_before * 365.25, window - 30, size=n)  # day 0 = window start
    corp = rng.random(n) < 0.3
    risk = rng.integers(1, 6, n)
    young = rng.random(n) < 0.25
    X = np.column_stack([corp, risk, young]).astype(float)
    switch = np.full(n, np.inf)
    if rm_switch:
        has = rng.random(n) < 0.35
        # RM exit on a calendar date within the window -> tenure at switch
        switch[has] = rng.uniform(0, window, has.sum()) - open_[has]
    T = simulate_weibull_ph(X, np.array(list(BETA.values())), SHAPE, SCALE, rng,
                            switch_times=switch if rm_switch else None, switch_beta=RM_LEFT if rm_switch else 0.0)
    entry = np.maximum(0.0, -open_)
    cens = window - open_
    keep = T > entry
    df = pd.DataFrame({"customer_id": [f"C{i:07d}" for i in range(n)], "customer_type": np.where(corp, "corporate", "retail"),
                       "risk_level": risk, "scenario": np.where(young, "young_family", "other"),
                       "entry": entry, "duration": np.minimum(T, cens), "event": (T <= cens).astype(int),
                       "rm_exit_days": np.where(np.isfinite(switch), switch, np.nan), "true_T": T,
                       "x_corp": X[:, 0], "x_risk": X[:, 1], "x_young": X[:, 2]})
    df = df[keep].reset_index(drop=True)
    df.loc[df["rm_exit_days"] >= df["duration"], "rm_exit_days"] = np.nan
    return df


def true_cum_hazard(df: pd.DataFrame, t: np.ndarray) -> np.ndarray:
    lin = df[["x_corp", "x_risk", "x_young"]].to_numpy() @ np.array(list(BETA.values()))
    return (np.asarray(t) / SCALE) ** SHAPE * np.exp(lin)


# ------------------------------------------------------------------ lifelines equality
def test_rossi_equals_lifelines_and_fox():
    r = load_rossi()
    m = ChurnModel(covariates=ROSSI_COVS).fit(r, "week", "arrest")
    ref = CoxPHFitter().fit(r, "week", "arrest")
    np.testing.assert_allclose(m.params_[ROSSI_COVS].to_numpy(), ref.params_[ROSSI_COVS].to_numpy(), atol=1e-8, rtol=0)
    np.testing.assert_allclose(m.summary_["se(coef)"].to_numpy(), ref.summary["se(coef)"].to_numpy(), atol=1e-8)
    for k, v in FOX.items():
        assert m.params_[k] == pytest.approx(v, abs=5e-5)
    assert m.hazard_ratios_["fin"] == pytest.approx(0.684, abs=5e-4)  # Fox: exp(coef) 0.684
    assert m.concordance_ == pytest.approx(ref.concordance_index_, abs=1e-12)
    # our Breslow baseline equals lifelines' own
    base = ref.baseline_cumulative_hazard_.iloc[:, 0]
    np.testing.assert_allclose(m.baseline_cumulative_hazard_.to_numpy(), base.loc[m.baseline_cumulative_hazard_.index], rtol=1e-10)
    # survival prediction equals lifelines'
    times = np.array([10.0, 25.0, 52.0])
    ours = m.predict_survival(r.head(5), times).to_numpy()
    theirs = ref.predict_survival_function(r.head(5), times=times).to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_fast_solver_equals_lifelines_start_stop():
    df = simulate_book(3000, 1)
    df["duration"] = to_grid(df["duration"], "week")
    df["entry"] = to_grid(df["entry"], "week", how="floor")
    covs = ["x_corp", "x_risk", "x_young"]
    ctv = CoxTimeVaryingFitter().fit(df[covs + ["entry", "duration", "event"]], "event", "entry", "duration")
    fast = ChurnModel(covariates=covs, solver="fast").fit(df, entry_col="entry")
    np.testing.assert_allclose(fast.params_.to_numpy(), ctv.params_.to_numpy(), atol=1e-7)
    np.testing.assert_allclose(fast.summary_["se(coef)"].to_numpy(), ctv.summary["se(coef)"].to_numpy(), rtol=1e-6)
    slow = ChurnModel(covariates=covs).fit(df, entry_col="entry")
    np.testing.assert_allclose(slow.params_.to_numpy(), ctv.params_.to_numpy(), atol=1e-10)
    # Breslow baseline with entry equals CoxTimeVaryingFitter's
    np.testing.assert_allclose(slow.baseline_cumulative_hazard_.to_numpy(),
                               ctv.baseline_cumulative_hazard_.iloc[:, 0].to_numpy(), rtol=1e-9)
    # penalised fit equals lifelines' penalised fit
    pen = ChurnModel(covariates=covs, solver="fast", penalizer=0.05).fit(df, entry_col="entry")
    ref = CoxTimeVaryingFitter(penalizer=0.05).fit(df[covs + ["entry", "duration", "event"]], "event", "entry", "duration")
    np.testing.assert_allclose(pen.params_.to_numpy(), ref.params_.to_numpy(), atol=1e-7)


def test_warm_start_gives_the_same_estimates_in_fewer_steps():
    """initial_point (lifelines' warm start): the fast solver and lifelines' Cox fitters end at the same
    estimates from a nearby start (here a fit on half the book), the fast one in fewer Newton steps."""
    df = simulate_book(3000, 1)
    df["duration"] = to_grid(df["duration"], "week")
    df["entry"] = to_grid(df["entry"], "week", how="floor")
    covs = ["x_corp", "x_risk", "x_young"]
    near = ChurnModel(covariates=covs, solver="fast").fit(df.iloc[:1500], entry_col="entry").params_
    cold = ChurnModel(covariates=covs, solver="fast").fit(df, entry_col="entry")
    warm = ChurnModel(covariates=covs, solver="fast").fit(df, entry_col="entry", initial_point=near)
    np.testing.assert_allclose(warm.params_.to_numpy(), cold.params_.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(warm.variance_matrix_.to_numpy(), cold.variance_matrix_.to_numpy(), rtol=1e-6)
    assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-12)
    assert warm.n_iter_ < cold.n_iter_, (warm.n_iter_, cold.n_iter_)
    start_at_optimum = ChurnModel(covariates=covs, solver="fast").fit(df, entry_col="entry",
                                                                      initial_point=cold.params_.to_numpy())
    assert start_at_optimum.n_iter_ <= 2
    # a Series is matched by name: extra entries ignored, missing ones start at 0
    partial = ChurnModel(covariates=covs, solver="fast").fit(
        df, entry_col="entry", initial_point=pd.Series({"x_risk": near["x_risk"], "other": 5.0}))
    np.testing.assert_allclose(partial.params_.to_numpy(), cold.params_.to_numpy(), atol=1e-8)
    for entry in ("entry", None):  # lifelines' CoxTimeVaryingFitter and CoxPHFitter get it on their scale
        ref = ChurnModel(covariates=covs).fit(df, entry_col=entry)
        lf = ChurnModel(covariates=covs).fit(df, entry_col=entry, initial_point=near)
        # lifelines stops once the log-likelihood barely changes: from another start, within 2e-5
        np.testing.assert_allclose(lf.params_.to_numpy(), ref.params_.to_numpy(), atol=2e-5)
        # started at the exact optimum (the fast solver's, to 1e-8), lifelines stays there: the start
        # reached it on the right scale (a start off by the standardisation would end ~1e-5 away)
        opt = ChurnModel(covariates=covs, solver="fast").fit(df, entry_col=entry).params_
        at_opt = ChurnModel(covariates=covs).fit(df, entry_col=entry, initial_point=opt)
        np.testing.assert_allclose(at_opt.params_.to_numpy(), opt.to_numpy(), atol=1e-7)
    with pytest.raises(ParameterError, match="initial_point must hold 3 finite"):
        ChurnModel(covariates=covs, solver="fast").fit(df, entry_col="entry", initial_point=[0.1, 0.2])
    with pytest.raises(ParameterError, match="model='cox' only"):
        ChurnModel("weibull_aft", covariates=covs).fit(df, initial_point=near)


def test_breslow_weights_equal_replication():
    rng = np.random.default_rng(3)
    stop = rng.integers(2, 20, 200).astype(float)
    start = np.floor(stop * rng.random(200))
    ev = rng.random(200) < 0.5
    ph = np.exp(rng.normal(size=200))
    w = rng.integers(1, 4, 200).astype(float)
    rep = np.repeat(np.arange(200), w.astype(int))
    a = breslow_baseline(stop, ev, ph, start, w)
    b = breslow_baseline(stop[rep], ev[rep], ph[rep], start[rep])
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12)


# ------------------------------------------------------------------ truth recovery
def test_recovers_true_hazard_ratios_with_left_truncation_and_rm_turnover():
    df = simulate_book(6000, 7, rm_switch=True)
    long = time_varying_frame(df)
    m = ChurnModel(covariates=["customer_type", "risk_level", "scenario", "rm_left"]).fit(
        long, "stop", "event", entry_col="start", id_col="customer_id")
    s = m.summary_
    truth = {"customer_type[corporate]": BETA["corporate"], "risk_level": BETA["risk_level"],
             "scenario[young_family]": BETA["young_family"], "rm_left": RM_LEFT}
    for k, v in truth.items():
        assert s.loc[k, "coef lower 95%"] < v < s.loc[k, "coef upper 95%"], (k, v, s.loc[k].to_dict())
    assert m.reference_levels_ == {"customer_type": "retail", "scenario": "other"}
    assert m.hazard_ratios_["rm_left"] == pytest.approx(np.exp(m.params_["rm_left"]))


def test_left_truncated_predictions_match_truth():
    df = simulate_book(8000, 11)
    covs = ["x_corp", "x_risk", "x_young"]
    h = 180.0
    active = df[df["event"] == 0].copy()
    t0 = active["duration"].to_numpy()
    truth = 1 - np.exp(-(true_cum_hazard(active, t0 + h) - true_cum_hazard(active, t0)))
    m = ChurnModel(covariates=covs).fit(df, entry_col="entry")
    p = m.predict_churn_probability(active, h).to_numpy()
    err = np.abs(p - truth)
    assert err.mean() < 0.01 and abs(p.mean() - truth.mean()) < 0.005
    # conditional survival curve of the book
    S_true = np.exp(-(true_cum_hazard(active, t0 + 365) - true_cum_hazard(active, t0)))
    S_hat = 1 - m.predict_churn_probability(active, 365).to_numpy()
    assert np.abs(S_hat - S_true).mean() < 0.015
    # lifelines' CoxPHFitter(entry_col) baseline ignores entry: the naive prediction is far worse for
    # recently opened customers (early tenures, where the truncated risk sets differ)
    naive = CoxPHFitter().fit(df[covs + ["duration", "event", "entry"]], "duration", "event", entry_col="entry")
    np.testing.assert_allclose(naive.params_.to_numpy(), m.params_.to_numpy(), atol=1e-5)  # same coefficients
    young = active["duration"].to_numpy() < 365
    pn = 1 - naive.predict_survival_function(active[young], times=[h], conditional_after=t0[young]).to_numpy()[0]
    assert np.abs(pn - truth[young]).mean() > 3 * np.abs(p[young] - truth[young]).mean()
    # Weibull AFT with entry: a proper parametric model of the same truth
    aft = ChurnModel("weibull_aft", covariates=covs).fit(df, entry_col="entry")
    pa = aft.predict_churn_probability(active, h).to_numpy()
    assert np.abs(pa - truth).mean() < 0.01
    for k, v in zip(covs, BETA.values()):
        assert aft.hazard_ratios_[k] == pytest.approx(np.exp(v), rel=0.15)


def test_restricted_mean_and_probability_consistent():
    df = simulate_book(3000, 5)
    m = ChurnModel(covariates=["x_corp", "x_risk"]).fit(df, entry_col="entry")
    act = df[df["event"] == 0].head(50)
    rm = m.expected_remaining_lifetime(act, 365)
    assert ((rm > 0) & (rm <= 365 + 1e-9)).all()
    # numeric integral of the conditional survival on a fine grid
    u = np.linspace(0, 365, 731)
    S = np.stack([1 - m.predict_churn_probability(act, ui).to_numpy() for ui in u])
    np.testing.assert_allclose(rm.to_numpy(), np.trapezoid(S, u, axis=0), rtol=3e-3)
    p = m.predict_churn_probability(act, 365)
    assert ((p >= 0) & (p <= 1)).all()
    aft = ChurnModel("lognormal_aft", covariates=["x_corp", "x_risk"]).fit(df, entry_col="entry")
    ra = aft.expected_remaining_lifetime(act.head(5), 365)
    assert ((ra > 0) & (ra <= 365)).all()
    ll = ChurnModel("loglogistic_aft", covariates=["x_corp", "x_risk"]).fit(df, entry_col="entry")
    assert 0.5 < ll.concordance_ < 1


# ------------------------------------------------------------------ grid and compression
def test_time_grid_and_compression_effect():
    df = simulate_book(6000, 21)
    covs = ["customer_type", "risk_level", "scenario"]
    day = ChurnModel(covariates=covs).fit(df, entry_col="entry")
    g = df.copy()
    g["duration"] = to_grid(g["duration"], "month")
    g["entry"] = to_grid(g["entry"], "month", how="floor")
    month = ChurnModel(covariates=covs, solver="fast").fit(g, entry_col="entry")
    se = day.summary_["se(coef)"]
    # the monthly grid moves estimates by a small fraction of a standard error
    assert ((month.params_ - day.params_).abs() / se).max() < 0.25
    comp = compress_frame(g, covs, entry_col="entry")
    assert len(comp) < 0.7 * len(g) and comp["weight"].sum() == len(g)
    cm = ChurnModel(covariates=covs, solver="fast").fit(comp, entry_col="entry", weights_col="weight")
    lm = ChurnModel(covariates=covs).fit(comp, entry_col="entry", weights_col="weight")
    np.testing.assert_allclose(cm.params_.to_numpy(), lm.params_.to_numpy(), atol=1e-7)
    # Efron treats a weighted row as one death: not identical to the uncompressed fit, but close
    assert ((cm.params_ - month.params_).abs() / se).max() < 0.25


# ------------------------------------------------------------------ errors
def test_clear_errors():
    df = simulate_book(1500, 2)
    with pytest.raises(ChurnModelError, match="constant"):
        ChurnModel(covariates=["x_corp", "const"]).fit(df.assign(const=1.0), entry_col="entry")
    with pytest.raises(ChurnModelError, match="collinear"):
        ChurnModel(covariates=["x_corp", "x_risk", "dup"]).fit(df.assign(dup=2 * df["x_risk"] + 1), entry_col="entry")
    with pytest.raises(ValueError, match="missing"):
        ChurnModel(covariates=["x_corp", "x_risk"]).fit(df.assign(x_risk=df["x_risk"].where(df.index > 3)))
    with pytest.raises(ValueError, match="entry"):
        ChurnModel(covariates=["x_corp"]).fit(df.assign(entry=df["duration"] + 1), entry_col="entry")
    # perfect separation -> a clear error, never NaN coefficients
    sep = df.assign(leak=df["event"].astype(float))
    with pytest.raises(ChurnModelError, match="penalizer"):
        ChurnModel(covariates=["x_corp", "leak"]).fit(sep, entry_col="entry")
    m = ChurnModel(covariates=["customer_type"]).fit(df, entry_col="entry")
    with pytest.raises(ValueError, match="not seen in training"):
        m.predict_churn_probability(df.head(3).assign(customer_type="sme"), 90)
    # arguments are checked in fit (scikit-learn convention: __init__ only stores them)
    with pytest.raises(ParameterError, match="model must be"):
        ChurnModel("rsf").fit(df)


def test_recovers_synth_bank_truth_including_rm_turnover():
    """End to end on rmanalytics.synth: contract tables -> survival frame -> time-varying Cox."""
    from rmanalytics.churn import survival_frame
    from rmanalytics.synth.bank import generate

    # the independent world: static + rm_left hazard only (behaviour effects: test_churn_behaviour.py)
    bank = generate(n_customers=8000, n_rms=60, seed=3, behaviour_link=0)
    f = survival_frame(bank.tables, lookback_days=0, time_grid="week")
    f["cross_border"] = (f["scenario"] == "cross_border_ecommerce").astype(int)
    long = time_varying_frame(f)
    m = ChurnModel(covariates=["customer_type", "risk_level", "cross_border", "rm_left"], solver="fast").fit(
        long, "stop", "event", entry_col="start", id_col="customer_id")
    hr = bank.truth.closure_log_hr
    truth = {"customer_type[corporate]": hr["corporate"], "risk_level": hr["risk_level"],
             "cross_border": hr["cross_border_ecommerce"], "rm_left": hr["rm_left"]}
    s = m.summary_
    for k, v in truth.items():
        assert s.loc[k, "coef lower 95%"] < v < s.loc[k, "coef upper 95%"], (k, v, s.loc[k].to_dict())


def test_time_grid_effect_refits_a_clone_per_grid():
    """The grid comparison of notebook 02: the same model (a clone) on the day and week frames."""
    from rmanalytics.churn import time_grid_effect

    df = simulate_book(3000, 5, rm_switch=True)
    week = df.assign(duration=to_grid(df["duration"], "week", how="ceil"),
                     entry=to_grid(df["entry"], "week", how="floor"),
                     rm_exit_days=to_grid(df["rm_exit_days"], "week", how="floor"))
    model = ChurnModel(covariates=["x_corp", "x_risk", "rm_left"], solver="fast")
    t = time_grid_effect({"day": df, "week": week}, model)
    assert not hasattr(model, "params_")  # the model passed in is left alone
    assert list(t.columns) == ["day_coef", "day_se(coef)", "day_fit_seconds", "week_coef", "week_se(coef)",
                               "week_fit_seconds", "shift_in_se"]
    day = model.fit(time_varying_frame(df), "stop", "event", entry_col="start", id_col="customer_id")
    np.testing.assert_allclose(t["day_coef"].to_numpy(), day.params_.to_numpy())
    np.testing.assert_allclose(t["shift_in_se"].to_numpy(),
                               ((t["week_coef"] - t["day_coef"]) / t["day_se(coef)"]).to_numpy())
    assert t["shift_in_se"].abs().max() < 0.5  # a week grid barely moves the estimates
    only_day = time_grid_effect({"day": df}, model)
    assert "shift_in_se" not in only_day and list(only_day.columns)[0] == "day_coef"


# ------------------------------------------------------------------ fast solver on design rows built by chunks
def _mixed_frame(seed: int = 3) -> pd.DataFrame:
    """Left-truncated start/stop frame with numeric (int8, float, bool) and categorical covariates
    (one categorical dtype with an unused level, one object column)."""
    df = simulate_book(2500, seed, rm_switch=True)
    long = time_varying_frame(df, columns=["customer_type", "risk_level", "scenario"])
    rng = np.random.default_rng(seed)
    long["scenario"] = long["scenario"].astype("object")  # object column: compared value by value
    long["customer_type"] = long["customer_type"].astype(pd.CategoricalDtype(["retail", "corporate", "unused"]))
    long["flag"] = rng.random(len(long)) < 0.4  # bool
    long["noise"] = rng.normal(size=len(long))
    long["w"] = rng.integers(1, 4, len(long)).astype(float)
    return long


def test_design_rows_equal_transform():
    from rmanalytics.churn.model import CHUNK_ROWS, _Design

    long = _mixed_frame()
    covs = ["customer_type", "risk_level", "scenario", "flag", "noise", "rm_left"]
    design = _Design.fit(long, covs)
    X = design.transform(long)
    rows = design.rows(long)
    assert rows.shape == X.shape and rows.columns == X.columns.tolist()
    np.testing.assert_array_equal(rows.rows(slice(0, len(long))), X.to_numpy())
    idx = np.array([5, 0, len(long) - 1, 17])
    np.testing.assert_array_equal(rows.rows(idx), X.to_numpy()[idx])
    assert np.array_equal(rows.mean(), X.to_numpy().mean(0))  # same summation order: the same bits
    big = pd.concat([long] * (2 * CHUNK_ROWS // len(long) + 1), ignore_index=True)  # several chunks
    assert np.array_equal(design.rows(big).mean(), design.transform(big).to_numpy().mean(0))


def test_fast_fit_on_design_rows_equals_full_design_and_lifelines(monkeypatch):
    import rmanalytics.churn.model as cm

    long = _mixed_frame()
    covs = ["customer_type", "risk_level", "scenario", "flag", "noise", "rm_left"]
    monkeypatch.setattr(cm, "CHUNK_ROWS", 1000)  # many chunks on a small frame
    m = ChurnModel(covariates=covs, solver="fast").fit(long, "stop", "event", entry_col="start",
                                                       weights_col="w", id_col="customer_id")
    X = m.design_.transform(long)
    # the same solver on the materialised design matrix
    beta, cov, ll = fit_cox_efron(X.to_numpy(), long["stop"].to_numpy(float), long["event"].to_numpy(),
                                  long["start"].to_numpy(float), long["w"].to_numpy(float))
    np.testing.assert_allclose(m.params_.to_numpy(), beta, rtol=1e-10, atol=0)
    np.testing.assert_allclose(m.variance_matrix_.to_numpy(), cov, rtol=1e-10, atol=0)
    assert m.log_likelihood_ == pytest.approx(ll, rel=1e-12)
    np.testing.assert_array_equal(m.design_mean_, X.to_numpy().mean(0))
    ph = np.exp((X.to_numpy() - m.design_mean_) @ beta)
    base = breslow_baseline(long["stop"].to_numpy(float), long["event"].to_numpy(), ph,
                            long["start"].to_numpy(float), long["w"].to_numpy(float))
    np.testing.assert_allclose(m.baseline_cumulative_hazard_.to_numpy(), base.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.partial_hazard(long).to_numpy(), ph, rtol=1e-10)
    assert m.concordance_ == pytest.approx(m._concordance(long, X=X), abs=1e-12)
    # and lifelines' start/stop fitter (design columns as lifelines sees them)
    df = X.assign(start=long["start"].to_numpy(float), stop=long["stop"].to_numpy(float),
                  event=long["event"].to_numpy(), w=long["w"].to_numpy())
    ctv = CoxTimeVaryingFitter().fit(df, event_col="event", start_col="start", stop_col="stop", weights_col="w")
    np.testing.assert_allclose(m.params_.to_numpy(), ctv.params_.to_numpy(), atol=1e-7)
    np.testing.assert_allclose(m.summary_["se(coef)"].to_numpy(), ctv.summary["se(coef)"].to_numpy(), rtol=1e-6)
    # the fast fit's design checks still see a constant covariate
    with pytest.raises(ChurnModelError, match="constant"):
        ChurnModel(covariates=["risk_level", "c"], solver="fast").fit(long.assign(c=1), "stop", "event",
                                                                      entry_col="start")


# ------------------------------------------------------------------ the fast solver's building blocks
def _bincount_group_sums(values: np.ndarray, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Reference for ``model._group_sums``: each grouping's group of each row recovered from the index,
    then one ``np.bincount`` per column in row order (what the solver computed before)."""
    pos, indptr = index
    m, nk = len(values), len(indptr) - 1
    n_groupings = len(pos) // m
    size = nk // n_groupings
    group_of_listed = np.repeat(np.arange(nk), np.diff(indptr))
    out = np.zeros((nk, values.shape[1]))
    for i in range(n_groupings):
        listed = slice(indptr[i * size], indptr[(i + 1) * size])
        key = np.empty(m, np.intp)
        key[pos[listed]] = group_of_listed[listed]
        for j in range(values.shape[1]):
            out[:, j] += np.bincount(key, weights=values[:, j], minlength=nk)
    return out


def _week_long_frame(seed: int = 5) -> pd.DataFrame:
    """Start/stop frame on the week grid (tied event times), delayed entry, RM turnover, weights."""
    df = simulate_book(2000, seed, rm_switch=True)
    df = df.assign(duration=to_grid(df["duration"], "week", how="ceil"),
                   entry=to_grid(df["entry"], "week", how="floor"),
                   rm_exit_days=to_grid(df["rm_exit_days"], "week", how="floor"))
    long = time_varying_frame(df, columns=["customer_type", "risk_level", "scenario"])
    rng = np.random.default_rng(seed)
    long["risk_level"] = long["risk_level"].astype("int8")  # one-byte columns: standardised by table lookup
    long["customer_type"] = long["customer_type"].astype("category")
    long["noise"] = rng.normal(size=len(long))
    long["w"] = rng.integers(1, 4, len(long)).astype(float)
    return long


def test_group_sums_equal_bincount_per_column():
    from rmanalytics.churn.model import _group_index, _group_sums

    rng = np.random.default_rng(0)
    for m, size, n_groupings in [(1000, 7, 2), (1, 3, 2), (500, 20_000, 2), (300, 50, 1)]:
        groupings = [rng.integers(0, min(size, 40) if g else size, m).astype(np.int16 if size < 30_000 else np.int64)
                     for g in range(n_groupings)]  # empty groups, and keys beyond int16 (another sort)
        values = rng.normal(size=(m, 4))
        index = _group_index(size, *groupings)
        got = _group_sums(values, index)
        assert got.shape == (n_groupings * size, 4)
        for i, g in enumerate(groupings):
            for j in range(4):
                np.testing.assert_array_equal(got[i * size:(i + 1) * size, j],
                                              np.bincount(g, weights=values[:, j], minlength=size))
        np.testing.assert_array_equal(got, _bincount_group_sums(values, index))


def test_time_index_equals_searchsorted():
    from rmanalytics.churn.model import _time_index

    times = np.array([7.0, 14.0, 14.5, 28.0, 91.0])
    for x in [np.arange(0, 120, 7.0), np.array([0.0, 7.0, 13.0, 14.0, 15.0, 1e9]), np.array([3.5, 14.5, 28.0]),
              np.array([-7.0, 0.0, 14.0]), np.array([]), np.array([2.0 ** 40])]:
        np.testing.assert_array_equal(_time_index(times, x), np.searchsorted(times, x, side="right"))
    assert len(_time_index(np.array([]), np.array([1.0, 2.0]))) == 2


def test_design_rows_block_and_column_statistics(monkeypatch):
    """Standardised blocks (table lookups for one-byte columns) and the column statistics computed
    from the sources equal the arithmetic on the materialised design matrix, bit for bit."""
    import rmanalytics.churn.model as cm

    long = _mixed_frame()
    long["risk_level"] = long["risk_level"].astype("int8")
    covs = ["customer_type", "risk_level", "scenario", "flag", "noise", "rm_left"]
    monkeypatch.setattr(cm, "CHUNK_ROWS", 1000)  # several chunks
    design = cm._Design.fit(long, covs)
    X = design.transform(long).to_numpy()
    rows = design.rows(long)
    center, scale = X.mean(0), X.std(0) + 0.5
    for sel in (slice(0, len(long)), slice(37, 2500), np.array([5, 0, len(long) - 1, 17])):
        np.testing.assert_array_equal(rows.block(sel, center, scale), ((X[sel] - center) / scale).T)
        np.testing.assert_array_equal(rows.block(sel, center), (X[sel] - center).T)
        np.testing.assert_array_equal(rows.rows(sel, center, scale), (X[sel] - center) / scale)
        np.testing.assert_array_equal(rows.rows(sel), X[sel])
    assert np.array_equal(rows.mean(), X.mean(0))
    lo, hi = rows.bounds()
    assert np.array_equal(lo, X.min(0)) and np.array_equal(hi, X.max(0))
    ss = np.zeros(X.shape[1])
    for i in range(0, len(X), 1000):  # how the solver summed the squares before
        ss += ((X[i:i + 1000] - center) ** 2).sum(0)
    assert np.array_equal(rows.square_sums(center), ss)
    b = np.linspace(-0.3, 0.4, X.shape[1])
    risk, ph = rows.risk_and_hazard(b, center)
    np.testing.assert_array_equal(risk, X @ b)
    np.testing.assert_allclose(ph, np.exp((X - center) @ b), rtol=1e-14)


def test_fast_solver_passes_equal_bincount_reference(monkeypatch):
    """The solver's per-chunk group sums (sparse products over an index built once per fit) give the
    same fit, bit for bit, as one bincount per column, on a frame with tied event times, delayed
    entry, weights and a penalizer, over many chunks, from design rows and from the full matrix."""
    import rmanalytics.churn.model as cm

    long = _week_long_frame()
    covs = ["customer_type", "risk_level", "scenario", "noise", "rm_left"]
    design = cm._Design.fit(long, covs)
    args = (long["stop"].to_numpy(float), long["event"].to_numpy(), long["start"].to_numpy(float),
            long["w"].to_numpy(float))
    assert len(np.unique(args[0][args[1] == 1])) < (args[1] == 1).sum()  # ties
    fits = {}
    for name, group_sums in (("new", cm._group_sums), ("reference", _bincount_group_sums)):
        monkeypatch.setattr(cm, "_group_sums", group_sums)
        fits[name] = [cm.fit_cox_efron(design.rows(long), *args, penalizer=0.02, chunk_rows=500),
                      cm.fit_cox_efron(design.transform(long).to_numpy(), *args, penalizer=0.02, chunk_rows=500)]
    for new, ref in zip(fits["new"], fits["reference"]):
        for a, b in zip(new, ref):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(fits["new"][0][0], fits["new"][1][0], rtol=1e-12)  # rows vs matrix
    df = design.transform(long).assign(start=args[2], stop=args[0], event=args[1], w=args[3])
    ctv = CoxTimeVaryingFitter(penalizer=0.02).fit(df, event_col="event", start_col="start", stop_col="stop",
                                                   weights_col="w")
    np.testing.assert_allclose(fits["new"][0][0], ctv.params_.to_numpy(), atol=1e-7)
