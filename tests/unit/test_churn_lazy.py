"""Churn functions given transactions, balances, customers and assignments as Parquet paths (DuckDB
scans them, no pandas copy) return what they return for pandas frames: the lazy path of notebook 02
(issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics import churn
from rmanalytics.book import churn_risk_now
from rmanalytics.io import load_tables
from rmanalytics.window import analysis_window, transaction_date_range

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
NEEDED = ["customers", "transactions", "balances", "assignments", "rms"]


@pytest.fixture(scope="module")
def both():
    frames = load_tables(SAMPLE, tables=NEEDED, optional=["interactions", "feedback"], validate=False)
    lazy = dict(frames)
    for t in ("transactions", "balances", "interactions", "feedback", "customers", "assignments"):
        lazy[t] = str(SAMPLE / f"{t}.parquet")
    return frames, lazy


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False,
                                  rtol=1e-12, atol=0)


def test_window_and_survival_frame(both):
    frames, lazy = both
    assert isinstance(lazy["transactions"], str)
    assert transaction_date_range(frames) == transaction_date_range(lazy)
    w = analysis_window(lazy, None, None)
    a = churn.survival_frame(frames, observation_end=w.end, window_start=w.start, time_grid="week")
    b = churn.survival_frame(lazy, observation_end=w.end, window_start=w.start, time_grid="week")
    _same(a, b)
    assert a.attrs == b.attrs
    assert {"n_contacts", "days_since_contact", "contact_lapsed", "n_complaints", "complained"} <= set(b.columns)
    ia = churn.survival_frame(frames, definition="inactivity", time_grid="week")
    ib = churn.survival_frame(lazy, definition="inactivity", time_grid="week")
    _same(ia, ib)


def test_behaviour_covariates_current_state(both):
    frames, lazy = both
    f = churn.survival_frame(frames, time_grid="week")
    _same(churn.behaviour_covariates(frames, f), churn.behaviour_covariates(lazy, f))
    # small batches give the same grid
    _same(churn.behaviour_covariates(frames, f), churn.behaviour_covariates(lazy, f, batch_cells=700))
    head = f.head(12)  # batches smaller than one customer's months: one customer a batch
    _same(churn.behaviour_covariates(frames, head), churn.behaviour_covariates(lazy, head, batch_cells=1))
    end = pd.Timestamp(f.attrs["observation_end"])
    _same(churn.current_state(frames, end), churn.current_state(lazy, end))


def test_audit_and_scores(both):
    frames, lazy = both
    w = analysis_window(frames, None, None)
    as_of = churn.default_as_of(w.end, [90, 180])
    kw = dict(covariates=["customer_type", "risk_level", "log_aum", "n_products", "n_tx"], horizon_days=180,
              window_start=w.start, observation_end=w.end)
    sa, sb = churn.holdout_scores(frames, as_of, **kw), churn.holdout_scores(lazy, as_of, **kw)
    pd.testing.assert_series_equal(sa, sb, check_exact=False, rtol=1e-10)
    _same(churn.warning_audit(frames, as_of, scores=sa), churn.warning_audit(lazy, as_of, scores=sa))
    _same(churn.warning_tradeoff(frames, as_of), churn.warning_tradeoff(lazy, as_of))


def test_churn_risk_now_lazy_and_with_a_given_model(both, monkeypatch):
    frames, lazy = both
    end = analysis_window(frames, None, None).end
    a = churn_risk_now(frames, end, time_grid="week")
    b = churn_risk_now(lazy, end, time_grid="week")
    _same(a, b)
    # the model of notebook 02 (same frame, same covariates) gives the same risks without a refit
    f = churn.survival_frame(lazy, observation_end=end, time_grid="week")
    covs = ["customer_type", "risk_level", "log_aum", "n_products", "n_tx"]
    long = churn.time_varying_frame(f, monthly=churn.behaviour_covariates(lazy, f), columns=covs)
    m = churn.ChurnModel("cox", covariates=covs + ["rm_left", *churn.BEHAVIOUR_COVARIATES], solver="fast").fit(
        long, "stop", "event", entry_col="start", id_col="customer_id")
    c = churn_risk_now(lazy, end, time_grid="week", model=m)
    _same(a, c)
    # scored in chunks of customers (bounded design copies at 10M): the same risks and drivers
    import rmanalytics.book.value as value

    monkeypatch.setattr(value, "SCORE_CHUNK_ROWS", 7)
    _same(churn_risk_now(lazy, end, time_grid="week", model=m), c)
    with pytest.raises(ValueError, match="covariates"):
        churn_risk_now(lazy, end, time_grid="week", model=m, behaviour=False)


def test_compact_long_frame_fits_like_the_full_one(both):
    frames, _ = both
    f = churn.add_segments(churn.survival_frame(frames, time_grid="week"))
    mon = churn.behaviour_covariates(frames, f)
    full = churn.time_varying_frame(f, monthly=mon)
    covs = ["customer_type", "risk_level", "log_aum", "n_products", "n_tx"]
    small = churn.time_varying_frame(f, monthly=mon, columns=covs)
    assert list(small.columns) == ["customer_id", *covs, "event", "start", "stop", "rm_left",
                                   *churn.BEHAVIOUR_COVARIATES]
    pd.testing.assert_frame_equal(full[small.columns], small, check_dtype=False, check_categorical=False)
    import rmanalytics.churn.frame as F

    chunk, F.SPLIT_CHUNK_ROWS = F.SPLIT_CHUNK_ROWS, 97  # split in many row chunks: same frame
    try:
        pd.testing.assert_frame_equal(churn.time_varying_frame(f, monthly=mon), full)
    finally:
        F.SPLIT_CHUNK_ROWS = chunk
    assert small["event"].dtype == np.int8 and small["customer_type"].dtype == "category"
    allc = covs + ["rm_left", *churn.BEHAVIOUR_COVARIATES]
    ma = churn.ChurnModel("cox", covariates=allc, solver="fast").fit(full, "stop", "event", entry_col="start",
                                                                      id_col="customer_id")
    mb = churn.ChurnModel("cox", covariates=allc, solver="fast").fit(small, "stop", "event", entry_col="start",
                                                                      id_col="customer_id")
    pd.testing.assert_series_equal(ma.params_, mb.params_)
    end = pd.Timestamp(f.attrs["observation_end"])
    a, b = churn.active_customers(full, end), churn.active_customers(small, end, frame=f)
    pd.testing.assert_frame_equal(a[b.columns], b, check_dtype=False, check_categorical=False)
    np.testing.assert_array_equal(ma.predict_churn_probability(a, 180), mb.predict_churn_probability(b, 180))
    with pytest.raises(churn.ChurnDataError, match="frame="):
        churn.active_customers(small, end)


def test_design_of_categorical_columns_equals_object_columns():
    from rmanalytics.churn.model import _Design
    from rmanalytics.errors import DataError

    df = pd.DataFrame({"t": ["a", "b", "a", "c", None, "b"], "x": [1, 2, 3, 4, 5, 6]})
    des = _Design.fit(df, ["t", "x"])
    cat = df.assign(t=df["t"].astype("category"))
    pd.testing.assert_frame_equal(des.transform(df), des.transform(cat))
    with pytest.raises(DataError, match="levels seen in training"):
        des.transform(cat.assign(t=pd.Categorical(["a", "z", "a", "c", None, "b"])))


@pytest.mark.spark
def test_behaviour_and_relationship_covariates_on_spark(both):
    """The engine-side grid of behaviour_covariates and the relationship counts run on Spark too."""
    pytest.importorskip("pyspark")
    from rmanalytics.spark import local_session

    frames, lazy = both
    local_session()
    f = churn.survival_frame(frames, time_grid="week")
    # ln(aum) is the engine's: Spark's and DuckDB's differ in the last bits
    pd.testing.assert_frame_equal(churn.behaviour_covariates(frames, f),
                                  churn.behaviour_covariates(lazy, f, engine="spark"), rtol=1e-9, atol=1e-12)
    s = churn.survival_frame(lazy, time_grid="week", engine="spark").sort_values("customer_id")
    cols = ["customer_id", "n_contacts", "days_since_contact", "contact_lapsed", "n_complaints", "complained"]
    pd.testing.assert_frame_equal(f[cols].reset_index(drop=True), s[cols].reset_index(drop=True), check_dtype=False)
