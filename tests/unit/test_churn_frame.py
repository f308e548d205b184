"""Survival frame: durations, events, entry (left truncation), leakage rules, exclusions, long frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlglot

from rmanalytics.churn import (ChurnDataError, compress_frame, covariates_sql, holdout_split, last_activity_sql,
                               survival_frame, time_varying_frame, to_grid)

D = pd.Timestamp


def tables() -> dict[str, pd.DataFrame]:
    cust = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4", "C5"],
        "open_date": [D("2020-01-01"), D("2022-02-01"), D("2021-06-01"), D("2022-11-15"), D("2022-01-10")],
        "close_date": [D("2022-06-30"), pd.NaT, D("2022-02-01"), pd.NaT, pd.NaT],
        "customer_type": ["retail", "corporate", "retail", "retail", "retail"],
        "risk_level": [2, 3, 1, 4, 5],
        "industry": [None, "tech", None, None, None],
        "scenario": ["young_family", None, None, None, None],
        "branch_id": ["OL-1"] * 5,
        "acquisition_channel": ["online"] * 5,
    })
    tx = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2", "C5", "C3"],
        "date": [D("2022-01-05"), D("2022-05-01"), D("2022-12-01"), D("2022-03-01"), D("2022-01-02")],
        "amount": [100.0, 1000.0, 50.0, 20.0, 5.0],
        "product_family": ["deposit", "wealth", "card", "card", "card"],
        "channel": ["branch"] * 5,
        "fee": [1.0, 10.0, 0.5, 0.2, 0.0],
    })
    bal = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2"],
        "snapshot_date": [D("2022-01-31"), D("2022-04-30"), D("2022-02-28")],
        "aum": [500.0, 9999.0, 70.0], "deposits": [500.0, 9999.0, 70.0], "loans": [0.0] * 3,
        "n_products": [2, 5, 1],
    })
    rms = pd.DataFrame({"rm_id": ["R1", "R2"], "outlet": ["OL-1"] * 2, "sub_branch": ["S"] * 2,
                        "tier2_branch": ["T2"] * 2, "tier1_branch": ["T1"] * 2,
                        "hire_date": [D("2015-01-01")] * 2, "exit_date": [D("2022-08-01"), pd.NaT],
                        "level": ["senior", "junior"]})
    asg = pd.DataFrame({
        "customer_id": ["C1", "C2", "C2", "C3", "C4", "C5"],
        "rm_id": ["R2", "R1", "R2", "R2", "R2", "R2"],
        "start_date": [D("2020-01-01"), D("2022-02-01"), D("2022-08-01"), D("2021-06-01"), D("2022-11-15"),
                       D("2022-01-10")],
        "end_date": [pd.NaT, D("2022-08-01"), pd.NaT, pd.NaT, pd.NaT, pd.NaT],
        "share": [1.0] * 6,
    })
    return {"customers": cust, "transactions": tx, "balances": bal, "rms": rms, "assignments": asg}


def test_closure_frame_durations_entry_and_leakage():
    f = survival_frame(tables(), window_start="2022-01-01", observation_end="2022-12-31", lookback_days=90)
    f = f.set_index("customer_id")
    assert set(f.index) == {"C1", "C2", "C5"}
    assert f.attrs["excluded"] == {"churned or censored before landmark (open/window start + lookback)": 1,
                                   "censored before landmark": 1}
    c1 = f.loc["C1"]
    assert c1["event"] == 1
    assert c1["duration"] == (D("2022-06-30") - D("2020-01-01")).days
    assert c1["entry"] == (D("2022-04-01") - D("2020-01-01")).days  # window start + 90 days
    # only behaviour before the landmark: the May transaction and the April balance are not used
    assert c1["n_tx"] == 1 and c1["tx_amount"] == 100.0 and c1["tx_fee"] == 1.0
    assert c1["aum"] == 500.0 and c1["n_products"] == 2
    assert c1["scenario"] == "young_family" and f.loc["C2", "scenario"] == "none"
    c2 = f.loc["C2"]
    assert c2["event"] == 0 and c2["duration"] == (D("2022-12-31") - D("2022-02-01")).days
    assert c2["entry"] == 90 and c2["aum"] == 70.0
    assert c2["rm_id"] == "R1" and c2["rm_level"] == "senior"
    assert c2["rm_exit_days"] == (D("2022-08-01") - D("2022-02-01")).days
    assert np.isnan(c1["rm_exit_days"])


def test_inactivity_definition():
    f = survival_frame(tables(), window_start="2022-01-01", observation_end="2022-12-31", lookback_days=30,
                       definition="inactivity", inactivity_days=90).set_index("customer_id")
    resolve = D("2022-12-31") - pd.Timedelta(days=90)
    assert f.loc["C5", "event"] == 1 and f.loc["C5", "duration"] == (D("2022-03-01") - D("2022-01-10")).days
    assert f.loc["C2", "event"] == 0 and f.loc["C2", "duration"] == (resolve - D("2022-02-01")).days
    # C1's last activity (May) precedes its closure; inactive since -> churn at the last activity
    assert f.loc["C1", "event"] == 1 and f.loc["C1", "duration"] == (D("2022-05-01") - D("2020-01-01")).days


def test_bad_data_and_parameters():
    t = tables()
    t["customers"].loc[0, "close_date"] = D("2019-01-01")
    with pytest.raises(ChurnDataError, match="close_date.*broken by 1 row.*C1"):
        survival_frame(t, window_start="2022-01-01", observation_end="2022-12-31")
    with pytest.raises(ValueError, match="definition"):
        survival_frame(tables(), definition="dormant")
    with pytest.raises(ChurnDataError, match="rms"):
        survival_frame({k: v for k, v in tables().items() if k != "rms"})


def test_sql_transpiles_to_spark():
    for sql in (covariates_sql("2022-01-01", 90), last_activity_sql("2022-12-31")):
        out = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
        assert "SELECT" in out
    assert "INTERVAL '90' DAY" in sqlglot.transpile(covariates_sql("2022-01-01", 90), read="duckdb", write="spark")[0]


def test_time_grid_rounding():
    assert to_grid(np.array([1, 7, 8]), "week").tolist() == [7, 7, 14]
    assert to_grid(np.array([1, 7, 8]), "week", how="floor").tolist() == [0, 7, 7]
    assert to_grid(np.array([30.0, 31.0]), "month").tolist() == pytest.approx([30.4375, 60.875])
    f = survival_frame(tables(), window_start="2022-01-01", observation_end="2022-12-31", time_grid="month")
    assert np.allclose(f["duration"] / (365.25 / 12), np.round(f["duration"] / (365.25 / 12)))
    assert (f["duration"] > f["entry"]).all()
    with pytest.raises(ValueError, match="time_grid"):
        to_grid(np.array([1.0]), "year")


def test_time_varying_frame_and_compression():
    f = pd.DataFrame({"customer_id": ["a", "b", "c"], "entry": [10.0, 10.0, 10.0], "duration": [100.0, 50.0, 80.0],
                      "event": [1, 1, 0], "rm_exit_days": [40.0, 5.0, np.nan], "x": [1, 2, 3]})
    long = time_varying_frame(f)
    a = long[long["customer_id"] == "a"]
    assert a[["start", "stop", "rm_left", "event"]].to_numpy().tolist() == [[10, 40, 0, 0], [40, 100, 1, 1]]
    b = long[long["customer_id"] == "b"]
    assert b[["start", "stop", "rm_left", "event"]].to_numpy().tolist() == [[10, 50, 1, 1]]
    c = long[long["customer_id"] == "c"]
    assert c[["start", "stop", "rm_left", "event"]].to_numpy().tolist() == [[10, 80, 0, 0]]
    comp = compress_frame(pd.concat([f, f]), ["x"])
    assert len(comp) == 3 and comp["weight"].tolist() == [2.0, 2.0, 2.0]


def test_holdout_split():
    f = pd.DataFrame({"open_date": [D("2022-01-01")] * 3, "entry": [10.0, 10.0, 200.0],
                      "duration": [100.0, 300.0, 400.0], "event": [1, 1, 0]})
    train, test = holdout_split(f, "2022-07-20", horizon_days=60)  # tenure 200 days at the cutoff
    assert train["duration"].tolist() == [100.0, 200.0] and train["event"].tolist() == [1, 0]
    assert test["tenure"].tolist() == [200.0, 200.0]
    assert test["duration"].tolist() == [260.0, 260.0] and test["event"].tolist() == [0, 0]
    # columns=: the split's own columns and the ones asked for, with the same values
    f = f.assign(customer_id=["a", "b", "c"], x=[1.0, 2.0, 3.0], y=["u", "v", "w"])
    full = holdout_split(f, "2022-07-20", horizon_days=60)
    lean = holdout_split(f, "2022-07-20", horizon_days=60, columns=["x"])
    assert list(lean[0].columns) == ["customer_id", "open_date", "entry", "duration", "event", "x"]
    for a, b in zip(lean, full):
        pd.testing.assert_frame_equal(a, b[a.columns])


def test_split_monthly_output_owns_its_columns_and_event_dtype():
    """The month split assembles its output from the arrays it makes (no second copy of each column);
    event_dtype keeps a compacted frame's narrow event; values equal the default call's."""
    from rmanalytics.churn.frame import split_monthly

    long = pd.DataFrame({"customer_id": ["a", "a", "b"], "open_date": pd.to_datetime(["2020-01-15"] * 2 + ["2020-03-01"]),
                         "x": [1.5, 2.5, 3.5], "event": np.array([0, 1, 0], np.int8),
                         "start": [0.0, 40.0, 10.0], "stop": [40.0, 100.0, 70.0]})
    months = pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01",
                             "2020-03-01", "2020-04-01", "2020-05-01"])
    monthly = pd.DataFrame({"customer_id": ["a"] * 4 + ["b"] * 3, "month_start": months,
                            "m": np.arange(7, dtype=float)})
    plain = split_monthly(long, monthly)
    assert plain["event"].dtype == np.int64
    narrow = split_monthly(long, monthly, event_dtype=np.int8)
    assert narrow["event"].dtype == np.int8
    pd.testing.assert_frame_equal(narrow.astype({"event": np.int64}), plain)
    assert plain["event"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert plain["start"].tolist() == [0, 17, 40, 46, 77, 10, 31, 61]
    assert plain["stop"].tolist() == [17, 40, 46, 77, 100, 31, 61, 70]
    assert plain["m"].tolist() == [0, 1, 1, 2, 3, 4, 5, 6] and plain["x"].tolist() == [1.5] * 2 + [2.5] * 3 + [3.5] * 3


def test_release_free_memory_is_harmless():
    from rmanalytics.churn.frame import release_free_memory

    a = np.arange(10.0)
    assert release_free_memory() is None and release_free_memory() is None
    assert a.sum() == 45.0


def test_share_strings_keeps_values_and_missing():
    from rmanalytics.churn.frame import _share_strings

    fresh = lambda v: None if v is None else (v + " ")[:-1]  # a new str object per row, as the engine's
    df = pd.DataFrame({"branch": [fresh(v) for v in ["B1", "B2", "B1", None, "B1", "B2"]],
                       "nan": ["x", np.nan, "x", "x", "x", "x"],
                       "mixed": [1, 1.0, True, "1", 1, 1],  # not all strings: left alone
                       "id": [f"C{i}" for i in range(6)], "n": range(6)})
    before = df.copy()
    out = _share_strings(df)
    pd.testing.assert_frame_equal(out, before, check_exact=True)
    a = out["branch"].to_numpy()
    assert a[0] is a[2] is a[4] and a[1] is a[5] and a[3] is None
    assert out["nan"].isna().tolist() == [False, True, False, False, False, False]
    assert [type(v) for v in out["mixed"]] == [int, float, bool, str, int, int]
