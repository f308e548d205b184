"""Behaviour covariates of the churn frame: leakage rules, splitting, and truth recovery on a large
synthetic bank (the generator's behaviour link, rmanalytics.synth)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmanalytics import churn
from rmanalytics.synth import generate

D = pd.Timestamp


def small_tables() -> dict[str, pd.DataFrame]:
    cust = pd.DataFrame({
        "customer_id": ["A", "B"], "open_date": [D("2021-01-01"), D("2022-03-10")],
        "close_date": [D("2022-09-15"), pd.NaT], "customer_type": ["retail", "retail"], "risk_level": [3, 3],
        "industry": [None, None], "scenario": [None, None], "branch_id": ["OL-1", "OL-1"],
        "acquisition_channel": ["online", "online"]})
    tx = pd.DataFrame({
        "customer_id": ["A", "A", "A", "A", "A", "B", "B", "B"],
        "date": [D("2021-01-01"), D("2021-06-01"), D("2021-11-01"), D("2022-01-20"), D("2022-07-20"),
                 D("2022-03-10"), D("2022-04-02"), D("2022-08-31")],
        "amount": [10.0, 10.0, 10.0, 10.0, -10.0, 5.0, 5.0, 5.0],
        "product_family": ["card"] * 8, "channel": ["mobile"] * 8, "fee": [0.0] * 8})
    bal = pd.DataFrame({
        "customer_id": ["A"] * 4 + ["B"] * 2,
        "snapshot_date": [D("2022-01-31"), D("2022-02-28"), D("2022-03-31"), D("2022-04-30"),
                          D("2022-03-31"), D("2022-04-30")],
        "aum": [100.0, 100.0, 50.0, 25.0, 10.0, 20.0], "deposits": [0.0] * 6, "loans": [0.0] * 6,
        "n_products": [1] * 6})
    rms = pd.DataFrame({"rm_id": ["R1"], "outlet": ["OL-1"], "sub_branch": ["S"], "tier2_branch": ["T2"],
                        "tier1_branch": ["T1"], "hire_date": [D("2015-01-01")], "exit_date": [pd.NaT],
                        "level": ["senior"]})
    asg = pd.DataFrame({"customer_id": ["A", "B"], "rm_id": ["R1", "R1"],
                        "start_date": [D("2021-01-01"), D("2022-03-10")], "end_date": [pd.NaT, pd.NaT],
                        "share": [1.0, 1.0]})
    return {"customers": cust, "transactions": tx, "balances": bal, "rms": rms, "assignments": asg}


def test_behaviour_covariates_by_hand():
    t = small_tables()
    f = churn.survival_frame(t, window_start="2022-01-01", observation_end="2022-12-31", lookback_days=90)
    mon = churn.behaviour_covariates(t, f, history_start="2021-01-01").set_index(["customer_id", "month_start"])
    # A enters 2022-04-01 (landmark); May 2022: last purchase 2022-01-20 (refund ignored) -> 101 days
    a = mon.loc[("A", D("2022-05-01"))]
    assert a["months_since_purchase"] == pytest.approx(101 / 30)
    # recent [2022-01-31, 2022-05-01): 0; baseline [2021-01-31, 2022-01-31): 06-01, 11-01, 01-20 = 3 in 365 days
    assert a["activity_change"] == pytest.approx(np.log(1 / (3 / 365 * 90 + 1)))
    # AUM month ends 2022-01-31 .. 2022-04-30: log(25 / 100)
    assert a["aum_trend"] == pytest.approx(np.log(0.25))
    # silence is capped at 180 days: September 2022 (A closes on 2022-09-15)
    assert mon.loc[("A", D("2022-09-01")), "months_since_purchase"] == pytest.approx(180 / 30)
    # B: opened 2022-03-10, no baseline of 90 days before June -> activity change 0; AUM 10 -> 20
    b = mon.loc[("B", D("2022-06-01"))]
    assert b["activity_change"] == 0.0 and b["aum_trend"] == pytest.approx(np.log(2.0))
    assert b["months_since_purchase"] == pytest.approx((D("2022-06-01") - D("2022-04-02")).days / 30)
    # only months of the follow-up, and nothing measured from the month itself
    assert mon.loc["A"].index.min() == D("2022-04-01") and mon.loc["A"].index.max() == D("2022-09-01")
    assert mon.loc[("B", D("2022-09-01")), "months_since_purchase"] == pytest.approx(1 / 30)


def test_time_varying_frame_splits_at_months_and_keeps_event():
    t = small_tables()
    f = churn.survival_frame(t, window_start="2022-01-01", observation_end="2022-12-31", lookback_days=90)
    mon = churn.behaviour_covariates(t, f, history_start="2021-01-01")
    long = churn.time_varying_frame(f, monthly=mon)
    a = long[long["customer_id"] == "A"]
    assert a["start"].iloc[0] == f.set_index("customer_id").loc["A", "entry"]
    assert (a["start"].to_numpy()[1:] == a["stop"].to_numpy()[:-1]).all()
    assert a["event"].tolist() == [0] * (len(a) - 1) + [1] and len(a) == 6
    assert a["stop"].iloc[-1] == f.set_index("customer_id").loc["A", "duration"]
    assert long.groupby("customer_id")["event"].sum().to_dict() == f.set_index("customer_id")["event"].to_dict()


def test_behaviour_effects_recovered_on_a_large_bank():
    """20,000 customers, full history: Cox on the frame's covariates recovers every log-HR of the
    generator (static, RM exit and behaviour) inside its 95% interval. About 15-30 s."""
    b = generate(n_customers=20000, n_rms=40, seed=11, history="full")
    f = churn.survival_frame(b.tables, window_start="2022-01-01", observation_end="2024-12-31", lookback_days=90)
    long = churn.time_varying_frame(f, monthly=churn.behaviour_covariates(b.tables, f))
    long["cbe"] = (long["scenario"] == "cross_border_ecommerce").astype(float)
    covs = ["customer_type", "risk_level", "cbe", "rm_left", *churn.BEHAVIOUR_COVARIATES]
    m = churn.ChurnModel("cox", covariates=covs, solver="fast").fit(long, "stop", "event", entry_col="start")
    tr = b.truth
    truth = {"customer_type[corporate]": tr.closure_log_hr["corporate"], "risk_level": tr.closure_log_hr["risk_level"],
             "cbe": tr.closure_log_hr["cross_border_ecommerce"], "rm_left": tr.closure_log_hr["rm_left"],
             **tr.closure_behaviour_log_hr}
    s = m.summary_
    for k, v in truth.items():
        assert s.loc[k, "coef lower 95%"] < v < s.loc[k, "coef upper 95%"], (k, v, s.loc[k].to_dict())
    # the behaviour effects are strong and precisely estimated
    assert s.loc["months_since_purchase", "se(coef)"] < 0.03


def test_link_zero_behaviour_effects_vanish():
    b = generate(n_customers=6000, n_rms=20, seed=3, history="full", behaviour_link=0)
    f = churn.survival_frame(b.tables, window_start="2022-01-01", observation_end="2024-12-31", lookback_days=90)
    long = churn.time_varying_frame(f, monthly=churn.behaviour_covariates(b.tables, f))
    m = churn.ChurnModel("cox", covariates=["customer_type", "risk_level", "rm_left", *churn.BEHAVIOUR_COVARIATES],
                         solver="fast").fit(long, "stop", "event", entry_col="start")
    s = m.summary_
    for k in churn.BEHAVIOUR_COVARIATES:
        assert s.loc[k, "coef lower 95%"] < 0 < s.loc[k, "coef upper 95%"] or abs(s.loc[k, "z"]) < 3, k


def test_behaviour_and_audit_sql_is_portable():
    """The SQL of the behaviour covariates and of the warning audit passes the portable-SQL checker."""
    from rmanalytics.churn import audit
    from rmanalytics.engine import portability_problems, record_sql

    t = small_tables()
    f = churn.survival_frame(t, window_start="2022-01-01", observation_end="2022-12-31", lookback_days=90)
    with record_sql() as log:
        churn.behaviour_covariates(t, f)
        audit.warning_audit(t, "2022-06-30", horizons=[90])
    assert len(log) >= 3
    bad = {q[:100]: portability_problems(q) for q in log if portability_problems(q)}
    assert not bad, bad


def _spine_and_calendar(tables, frame, history_start):
    from rmanalytics.churn.frame import follow_up_months

    f = frame.sort_values("customer_id", kind="mergesort")
    open_ = pd.to_datetime(f["open_date"])
    m_lo, m_hi = follow_up_months(f)
    spine = pd.DataFrame({"c": np.arange(len(f), dtype=np.int64), "customer_id": f["customer_id"].to_numpy(),
                          "open_date": open_.to_numpy(),
                          "first_day": np.maximum(open_.to_numpy(), D(history_start).to_datetime64()),
                          "m_lo": m_lo, "m_hi": m_hi})
    mis = np.arange(int(m_lo.min()), int(m_hi.max()) + 1, dtype=np.int64)
    cal = pd.DataFrame({"mi": mis, "month_start": mis.astype("datetime64[M]").astype("datetime64[ns]")})
    return spine, cal


@pytest.mark.parametrize("kw", [{}, dict(silence_cap_days=30, recent_days=20, baseline_days=60, aum_trend_months=1),
                                dict(silence_cap_days=400, recent_days=31, baseline_days=28, aum_trend_months=5)])
def test_behaviour_cells_equal_the_sql_definition(kw):
    """The binary-search counts equal the SQL join they replaced (churn_behaviour_reference), cell for cell and bit for bit (the AUM
    trend too): a synthetic bank plus purchases and snapshots placed on every window boundary."""
    from churn_behaviour_reference import behaviour_sql
    from rmanalytics.churn.frame import behaviour_cells
    from rmanalytics.engine import run_sql

    t = generate(n_customers=800, n_rms=8, seed=5, history="full").tables
    f = churn.survival_frame(t)
    hs = t["transactions"]["date"].min().normalize()
    spine, cal = _spine_and_calendar(t, f, hs)
    # edge rows for 40 customers: purchases exactly on e, e - recent, b0-ish days, far back; refunds;
    # snapshots on month starts and on the last day before the AUM window
    rng = np.random.default_rng(0)
    extra_tx, extra_bal = [], []
    for _, s in spine.sample(40, random_state=1).iterrows():
        for mi in range(int(s.m_lo), int(s.m_hi) + 1, 3):
            ms = np.datetime64(mi, "M").astype("datetime64[D]")
            e = max(ms, np.datetime64(s.open_date, "D"))
            for off in (0, 1, kw.get("recent_days", 90), kw.get("recent_days", 90) + 1, 455, 456, 700):
                extra_tx.append((s.customer_id, pd.Timestamp(e - np.timedelta64(off, "D")), float(rng.choice([5.0, -5.0]))))
            last_before = (np.datetime64(mi - kw.get("aum_trend_months", 3), "M").astype("datetime64[D]")
                           - np.timedelta64(1, "D"))
            for day in (last_before, last_before - np.timedelta64(1, "D"), ms):
                extra_bal.append((s.customer_id, pd.Timestamp(day), float(rng.uniform(0, 500))))
    tx = pd.concat([t["transactions"][["customer_id", "date", "amount"]],
                    pd.DataFrame(extra_tx, columns=["customer_id", "date", "amount"])], ignore_index=True)
    bal = pd.concat([t["balances"][["customer_id", "snapshot_date", "aum"]],
                     pd.DataFrame(extra_bal, columns=["customer_id", "snapshot_date", "aum"])], ignore_index=True)
    bal = bal.drop_duplicates(["customer_id", "snapshot_date"])  # one snapshot per customer and day (contract)
    want = run_sql(behaviour_sql(**kw), {"spine": spine, "calendar": cal, "transactions": tx, "balances": bal},
                   normalize=False).sort_values(["c", "mi"]).reset_index(drop=True)
    got = behaviour_cells(spine, tx, bal, **kw).sort_values(["c", "mi"]).reset_index(drop=True)
    assert len(got) == len(want) > 10000
    for c in ("c", "mi", "silent_days", "n_recent", "n_base", "span_days"):
        np.testing.assert_array_equal(got[c].to_numpy(np.int64), want[c].to_numpy(np.int64), err_msg=c)
    np.testing.assert_array_equal(got["aum_trend"].to_numpy(), want["aum_trend"].to_numpy())
    assert (got["n_recent"] > 0).any() and (got["n_base"] > 0).any() and (got["aum_trend"] != 0).any()
