"""The analysis window, the churn hold-out cutoff and the active customers: one definition each."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from rmanalytics.churn import active_customers, holdout_cutoff
from rmanalytics.errors import DataError, ParameterError
from rmanalytics.window import analysis_window


def _tables(dates=("2023-01-05 10:30", "2023-03-01 00:00", "2023-06-30 23:59")):
    tx = pd.DataFrame({"customer_id": ["a", "b", "a"][: len(dates)], "date": pd.to_datetime(list(dates))})
    cust = pd.DataFrame({"customer_id": ["a", "b"], "open_date": pd.to_datetime(["2022-12-01", "2023-02-01"])})
    return {"transactions": tx, "customers": cust}


def test_defaults_are_the_first_and_last_transaction_day():
    w = analysis_window(_tables())
    assert w.start == pd.Timestamp("2023-01-05") and w.end == pd.Timestamp("2023-06-30")
    assert w.end_date == dt.date(2023, 6, 30)
    assert w.as_metrics() == {"window_start": "2023-01-05", "observation_end": "2023-06-30"}


def test_parameters_win_and_are_checked():
    w = analysis_window(_tables(), "2023-05-31", dt.date(2023, 2, 1))
    assert (w.start, w.end) == (pd.Timestamp("2023-02-01"), pd.Timestamp("2023-05-31"))
    assert analysis_window(_tables(), dt.date(2023, 4, 1)).start == pd.Timestamp("2023-01-05")
    with pytest.raises(ParameterError, match="must be before"):
        analysis_window(_tables(), "2023-01-01", "2023-02-01")
    with pytest.raises(ParameterError, match="not a date"):
        analysis_window(_tables(), "end of June")


def test_no_transactions():
    t = _tables(dates=())
    with pytest.raises(DataError, match="set observation_end"):
        analysis_window(t)
    # with an end, the start falls back to the first open date
    assert analysis_window(t, "2023-06-30").start == pd.Timestamp("2022-12-01")


def test_calibration_end():
    w = analysis_window(_tables())
    assert w.calibration_end(30) == dt.date(2023, 5, 31)
    assert w.calibration_end(30, "2023-04-30") == dt.date(2023, 4, 30)
    assert w.days_before_end(30) == pd.Timestamp("2023-05-31")


def test_holdout_cutoff_waits_for_resolved_churn():
    end = pd.Timestamp("2024-12-31")
    assert holdout_cutoff(end, 180) == end - pd.Timedelta(days=180)
    # inactivity: churn is only known up to end - inactivity_days
    assert holdout_cutoff(end, 180, definition="inactivity", inactivity_days=90) == end - pd.Timedelta(days=270)
    assert holdout_cutoff(end, 180, definition="closure", inactivity_days=90) == end - pd.Timedelta(days=180)
    with pytest.raises(ParameterError, match="definition"):
        holdout_cutoff(end, 180, definition="dormant")


def test_active_customers_are_censored_at_the_end():
    end = pd.Timestamp("2024-12-31")
    long = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "d", "e", "e"],
        "start": [0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 31.0], "stop": [100.0, 400.0, 200.0, 300.0, 250.0, 31.0, 60.0],
        "event": [0, 0, 1, 0, 0, 0, 1],
        "end_date": pd.to_datetime(["2024-12-31", "2024-12-31", "2024-06-01", "2024-12-31", "2024-10-01",
                                    "2024-12-31", "2024-12-31"]),
    })
    act = active_customers(long, end)
    # b churned, d censored before the end, e churned on the last day (its earlier row is censored)
    assert act["customer_id"].tolist() == ["a", "c"]
    assert active_customers(long.iloc[::-1], end)["customer_id"].tolist() == ["c", "a"]  # any row order
    assert act["tenure"].tolist() == [400.0, 300.0]  # the last row of a


def _active_by_hashing(long, end, frame):
    """active_customers' selection, written plainly: each customer's row with the latest stop, when
    it is censored and the customer's follow-up ends on the observation end (row positions)."""
    pos = long.reset_index(drop=True).groupby("customer_id", sort=False)["stop"].idxmax().to_numpy()
    lg = long.iloc[pos]
    ok = (lg["event"].to_numpy() == 0) & lg["customer_id"].isin(frame.loc[frame["end_date"] == end, "customer_id"]).to_numpy()
    return np.sort(pos[ok])


def test_active_customers_by_runs_equal_by_ids():
    """Rows grouped by customer (a time_varying_frame) are matched by runs; shuffled rows by ids:
    the same rows either way, with or without end_date in the long frame, also for a customer whose
    last row carries an event on the last day (not active, though its earlier rows are censored)."""
    end = pd.Timestamp("2024-12-31")
    rng = np.random.default_rng(5)
    n = 300
    ids = [f"C{i:04d}" for i in range(n)]
    reps = rng.integers(1, 5, n)
    frame = pd.DataFrame({"customer_id": ids, "seg": rng.choice(["x", "y"], n),
                          "end_date": np.where(rng.random(n) < 0.7, end, end - pd.Timedelta(days=30))})
    long = pd.DataFrame({"customer_id": np.repeat(ids, reps)})
    long["stop"] = np.arange(len(long), dtype=float) + 1
    last = ~long["customer_id"].duplicated(keep="last").to_numpy()
    long["event"] = np.where(last & (rng.random(len(long)) < 0.2), 1, 0)
    for lg in (long, long.sample(frac=1, random_state=1)):
        act = active_customers(lg, end, frame=frame)
        ref = lg.iloc[_active_by_hashing(lg, end, frame)]
        assert act["stop"].tolist() == ref["stop"].tolist() and act["seg"].notna().all()
        with_end = lg.assign(end_date=lg["customer_id"].map(frame.set_index("customer_id")["end_date"]))
        assert active_customers(with_end, end)["stop"].tolist() == ref["stop"].tolist()
    assert len(active_customers(long.iloc[:1], end, frame=frame)) <= 1
