"""Notebook 02 fits its time-varying Cox models on a seeded random sample of customers above
``fit_max_customers`` (issue 16: the customer-month frame of 10M customers does not fit one machine)
and scores every customer. The draw must be reproducible and order-free, the estimates those of the
whole bank within sampling error, and every customer must still get the row and the score the whole
bank's frame would give."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from tests.conftest import sample_churn_frames, sample_churn_tables

from rmanalytics import churn
from rmanalytics.churn.sample import is_sample, same_sample, sample_customers

COVS = ["customer_type", "risk_level", "log_aum", "n_products", "n_tx"]
MODEL_COVS = COVS + ["rm_left", *churn.BEHAVIOUR_COVARIATES]


@pytest.fixture(scope="module")
def tables():
    return sample_churn_tables()


@pytest.fixture(scope="module")
def frames(tables):
    return sample_churn_frames(tables)


def _fit(frame, monthly):
    long = churn.time_varying_frame(frame, monthly=monthly, columns=COVS)
    return long, churn.ChurnModel("cox", covariates=MODEL_COVS, solver="fast").fit(
        long, "stop", "event", entry_col="start", id_col="customer_id")


def test_sample_is_seeded_order_free_and_recorded(frames):
    week = frames[2]
    n = len(week)
    s = sample_customers(week, 1000, random_state=7)
    assert len(s) == 1000 and s["customer_id"].is_unique and set(s["customer_id"]) <= set(week["customer_id"])
    assert s.attrs["fit_sample"] == {"max_customers": 1000, "seed": 7, "customers": 1000, "of": n}
    assert s.attrs["time_grid"] == "week" and "fit_sample" not in week.attrs  # the frame is left as it was
    pos = week.reset_index(drop=True).index[week["customer_id"].isin(s["customer_id"])]
    pd.testing.assert_frame_equal(s, week.iloc[pos].reset_index(drop=True))  # rows kept in their order
    shuffled = week.sample(frac=1.0, random_state=1)
    assert set(sample_customers(shuffled, 1000, random_state=7)["customer_id"]) == set(s["customer_id"])
    other = set(sample_customers(week, 1000, random_state=8)["customer_id"])
    assert 0 < len(other & set(s["customer_id"])) < 1000  # another seed, another draw
    for m in (0, None, n, n + 5):  # nothing to draw: every row, no copy of the data
        a = sample_customers(week, m, random_state=7)
        pd.testing.assert_frame_equal(a, week)
        assert np.shares_memory(a["log_aum"].to_numpy(), week["log_aum"].to_numpy())
        assert not is_sample(a.attrs)
    assert is_sample(s.attrs) and not is_sample({})
    with pytest.raises(ValueError, match="max_customers"):
        sample_customers(week, -1)


def test_same_sample():
    drawn = {"fit_sample": {"max_customers": 1000, "seed": 7, "customers": 1000, "of": 2800}}
    whole = {"fit_sample": {"max_customers": 5000, "seed": 7, "customers": 2800, "of": 2800}}
    assert same_sample(drawn, 1000, 7) and not same_sample(drawn, 1000, 8) and not same_sample(drawn, 0, 7)
    assert same_sample(whole, 0, 1) and same_sample(whole, 2800, 3) and not same_sample(whole, 2000, 7)
    assert same_sample({}, 0, 7) and not same_sample({}, 1000, 7)


def test_sample_fit_estimates_the_whole_banks_coefficients(tables, frames):
    """Known truth: the whole bank's fit. A half sample's estimates lie within sampling error of it."""
    week = frames[2]
    _, full = _fit(week, churn.behaviour_covariates(tables, week))
    half = sample_customers(week, len(week) // 2, random_state=20261122)
    long, m = _fit(half, churn.behaviour_covariates(tables, half))
    assert long.attrs["fit_sample"]["customers"] == len(week) // 2
    assert m.data_attrs_["fit_sample"] == half.attrs["fit_sample"]  # the model records how it was fitted
    se, se_full = m.summary_["se"], full.summary_["se"]
    z = (m.params_ - full.params_) / se
    assert (z.abs() < 3.5).all(), z
    assert (se > se_full).all()  # fewer customers, wider intervals


def test_active_customers_of_a_sample_equal_the_whole_long_frame(tables, frames):
    w, _, week = frames
    mon = churn.behaviour_covariates(tables, week)
    whole = churn.active_customers(churn.time_varying_frame(week, monthly=mon, columns=COVS), w.end, frame=week)
    half = sample_customers(week, len(week) // 2, random_state=3)
    long = churn.time_varying_frame(half, monthly=churn.behaviour_covariates(tables, half), columns=COVS)
    with pytest.raises(churn.ChurnDataError, match="sample"):
        churn.active_customers(long, w.end, frame=week)
    got = churn.active_customers(long, w.end, frame=week, tables=tables)
    assert list(got.columns) == list(whole.columns) and len(got) == len(whole) > 0
    got = got.set_index("customer_id").loc[whole["customer_id"]]
    for c in whole.columns.drop("customer_id"):
        a, b = whole[c].astype(object).to_numpy(), got[c].astype(object).to_numpy()
        assert pd.Series(a).equals(pd.Series(b)), c  # same values (the dtypes of long's compact columns aside)
    # columns=: long's columns and only these of the frame's, the same values (both paths)
    lean = churn.active_customers(long, w.end, frame=week, tables=tables, columns=["branch_id", "aum"])
    assert set(lean.columns) == set(long.columns) | {"branch_id", "aum", "tenure"}
    full = churn.active_customers(long, w.end, frame=week, tables=tables)
    pd.testing.assert_frame_equal(lean, full[lean.columns])
    whole_long = churn.time_varying_frame(week, monthly=mon, columns=COVS)
    lean = churn.active_customers(whole_long, w.end, frame=week, columns=["branch_id", "aum"])
    assert set(lean.columns) == set(whole_long.columns) | {"branch_id", "aum", "tenure"}
    pd.testing.assert_frame_equal(lean, whole[lean.columns])
    # without behaviour covariates in the long frame
    plain = churn.time_varying_frame(half, columns=COVS)
    got = churn.active_customers(plain, w.end, frame=week, tables=tables)
    ref = churn.active_customers(churn.time_varying_frame(week, columns=COVS), w.end, frame=week)
    assert got["rm_left"].tolist() == ref["rm_left"].tolist() and got["start"].tolist() == ref["start"].tolist()


def test_holdout_scores_fitted_on_a_sample_score_everyone(tables, frames):
    w, day, week = frames
    as_of = churn.default_as_of(w.end, [90, 180])
    kw = dict(covariates=COVS, horizon_days=180, window_start=w.start, observation_end=w.end, frame=day)
    plain = churn.holdout_scores(tables, as_of, **kw)
    everyone = churn.holdout_scores(tables, as_of, fit_customers=day["customer_id"], **kw)
    pd.testing.assert_series_equal(everyone, plain, check_exact=True)
    half = sample_customers(week, len(week) // 2, random_state=5)
    mon = churn.behaviour_covariates(tables, half)  # covers the sample's months only
    s = churn.holdout_scores(tables, as_of, fit_customers=half["customer_id"], monthly=mon, **kw)
    assert s.attrs["reused"] == ["frame", "monthly"]
    assert s.index.equals(plain.index) and s.notna().all()
    assert not s.equals(plain) and np.corrcoef(s, plain)[0, 1] > 0.9


def test_churn_risk_now_reuses_a_model_fitted_on_the_same_draw(tables, frames):
    from rmanalytics.book import churn_risk_now

    w, _, week = frames
    m_ = len(week) // 2
    half = sample_customers(week, m_, random_state=11)
    model = _fit(half, churn.behaviour_covariates(tables, half))[1]
    kw = dict(time_grid="week", fit_max_customers=m_, random_state=11)
    refit = churn_risk_now(tables, w.end, **kw)
    assert refit.attrs["model_reused"] is False
    given = churn_risk_now(tables, w.end, model=model, **kw)
    assert given.attrs["model_reused"] is True
    pd.testing.assert_frame_equal(given, refit, check_exact=True)
    for other in (dict(kw, random_state=12), dict(kw, fit_max_customers=0)):  # drawn otherwise: refitted
        assert churn_risk_now(tables, w.end, model=model, **other).attrs["model_reused"] is False
    whole = churn_risk_now(tables, w.end, time_grid="week")
    pd.testing.assert_frame_equal(churn_risk_now(tables, w.end, time_grid="week", fit_max_customers=len(week)), whole,
                                  check_exact=True)
