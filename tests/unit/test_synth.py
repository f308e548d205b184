"""Synthetic bank: determinism, contract, invariants, and truth recovery of the building blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rmanalytics.contract import TABLES
from rmanalytics.synth import (
    bgnbd_expected_frequency,
    generate,
    main,
    read_truth,
    simulate_bgnbd,
    simulate_bgnbd_transactions,
    simulate_gamma_gamma,
    simulate_weibull_ph,
    weibull_ph_invert,
    write,
)

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLE_ARGS = dict(n_customers=3000, n_rms=40, start="2022-01-01", end="2024-12-31", seed=20261122)
DTYPES = {"str": "object", "int": "int64", "float": "float64", "date": "datetime64[ns]", "bool": "bool"}


@pytest.fixture(scope="module")
def bank():
    return generate(**SAMPLE_ARGS)


@pytest.fixture(scope="module")
def small():
    return generate(n_customers=600, n_rms=12, seed=7)


def check_contract(tables: dict[str, pd.DataFrame]) -> None:
    """Columns, order, dtypes, nullability, allowed values, ranges and keys of every table."""
    try:  # the shared validator, once it exists
        from rmanalytics.schema import validate_table  # type: ignore
    except ImportError:  # pragma: no cover
        validate_table = None
    assert set(tables) == set(TABLES)
    for name, spec in TABLES.items():
        df = tables[name]
        assert list(df.columns) == spec.column_names, name
        for c in spec.columns:
            s = df[c.name]
            nullable_int = c.dtype == "int" and c.nullable and str(s.dtype) == "Int64"
            assert str(s.dtype) == DTYPES[c.dtype] or nullable_int, (name, c.name, s.dtype)
            if not c.nullable:
                assert s.notna().all(), (name, c.name)
            v = s.dropna()
            if c.dtype == "str":
                assert v.map(type).eq(str).all(), (name, c.name)
            if c.allowed is not None:
                assert v.isin(c.allowed).all(), (name, c.name, set(v) - set(c.allowed))
            if c.min is not None:
                assert (v >= c.min).all(), (name, c.name)
            if c.max is not None:
                assert (v <= c.max).all(), (name, c.name)
        if spec.key:
            assert not df.duplicated(list(spec.key)).any(), name
        if validate_table is not None:
            validate_table(df, name)


# ------------------------------------------------------------------ determinism and sample
def test_deterministic(small):
    again = generate(n_customers=600, n_rms=12, seed=7)
    for k, df in small.tables.items():
        pd.testing.assert_frame_equal(df, again.tables[k], check_exact=True)
    other = generate(n_customers=600, n_rms=12, seed=8)
    assert not other.tables["transactions"]["amount"].equals(small.tables["transactions"]["amount"])


def test_sample_matches_committed_files(bank):
    assert SAMPLE.is_dir(), "data/sample missing: run python -m rmanalytics.synth --out data/sample"
    for k, df in bank.tables.items():
        on_disk = pd.read_parquet(SAMPLE / f"{k}.parquet")
        pd.testing.assert_frame_equal(on_disk, df, check_exact=True)
    assert json.loads((SAMPLE / "truth.json").read_text()) == json.loads(
        json.dumps(bank.truth.to_json_dict(), sort_keys=True))
    pd.testing.assert_frame_equal(pd.read_parquet(SAMPLE / "truth_customers.parquet"), bank.truth.customers)


def test_sample_size_and_shape(bank):
    t = bank.tables
    assert len(t["customers"]) == 3000
    assert len(t["rms"]) == 48  # 40 + 8 replacements
    closed = t["customers"]["close_date"].notna().mean()
    assert 0.25 <= closed <= 0.35
    assert t["customers"]["customer_type"].eq("corporate").mean() == pytest.approx(0.2, abs=0.03)
    assert (t["transactions"]["amount"] < 0).mean() == pytest.approx(0.01, abs=0.004)
    assert (t["customers"]["open_date"] < "2022-01-01").mean() > 0.3  # left-truncated customers


# ------------------------------------------------------------------ contract and invariants
def test_contract(bank, small):
    check_contract(bank.tables)
    check_contract(small.tables)


def test_referential_integrity_and_windows(bank):
    t = bank.tables
    c, tx, bal, rms, asg, act = (t[k] for k in ("customers", "transactions", "balances", "rms", "assignments",
                                                "rm_activity"))
    ids = set(c["customer_id"])
    for df in (tx, bal, asg):
        assert set(df["customer_id"]) <= ids
    assert set(asg["rm_id"]) <= set(rms["rm_id"]) and set(act["rm_id"]) <= set(rms["rm_id"])
    assert set(c["branch_id"]) <= set(rms["outlet"])
    assert c["close_date"].dropna().between("2022-01-01", "2024-12-31").all()
    m = tx.merge(c, on="customer_id")
    assert m["date"].between("2022-01-01", "2024-12-31").all()
    assert (m["date"] >= m["open_date"]).all()
    assert (m["close_date"].isna() | (m["date"] <= m["close_date"])).all()
    assert (tx.loc[tx["amount"] < 0, "fee"] == 0).all()
    b = bal.merge(c, on="customer_id")
    assert (b["snapshot_date"] >= b["open_date"]).all()
    assert (b["close_date"].isna() | (b["snapshot_date"] < b["close_date"])).all()
    assert (b["snapshot_date"] + pd.Timedelta(days=1)).dt.day.eq(1).all()  # month ends
    assert (bal["deposits"] <= bal["aum"]).all() and (bal["npl"] <= bal["loans"]).all()
    assert (bal["loans_strategic"] <= bal["loans"]).all() and bal["n_products"].between(1, 8).all()
    # activity only while employed
    a = act.merge(rms, on="rm_id")
    assert (a["hire_date"] <= a["period"] + pd.offsets.MonthEnd(0)).all()
    assert (a["exit_date"].isna() | (a["exit_date"] > a["period"])).all()
    assert (act["nps_promoters"] + act["nps_detractors"] <= act["nps_responses"]).all()
    assert (act["compliance_passed"] + act["compliance_breaches"] <= act["compliance_checks"]).all()
    k = t["kpi_targets"]
    assert set(k["kpi"]) == {"fee_income", "aum_growth", "new_customers"}
    assert k["period"].str.fullmatch(r"\d{4}(Q[1-4])?").all() and (k["unit_level"] == "rm").all()


def test_assignment_shares_sum_to_one_and_cover_lifetime(bank):
    t = bank.tables
    asg, c, rms = t["assignments"], t["customers"], t["rms"]
    # every date boundary of every customer: covering shares sum to 1
    pts = pd.concat([asg[["customer_id", "start_date"]].rename(columns={"start_date": "d"}),
                     asg[["customer_id", "end_date"]].dropna().rename(columns={"end_date": "d"})]).drop_duplicates()
    pts = pts.merge(c[["customer_id", "close_date"]], on="customer_id")
    pts = pts[pts["close_date"].isna() | (pts["d"] < pts["close_date"])]
    m = pts.merge(asg, on="customer_id")
    cov = m[(m["start_date"] <= m["d"]) & (m["end_date"].isna() | (m["end_date"] > m["d"]))]
    s = cov.groupby(["customer_id", "d"])["share"].sum()
    assert len(s) == len(pts)
    np.testing.assert_allclose(s.to_numpy(), 1.0, atol=1e-12)
    # first assignment starts at open; last ends at close (null while open)
    g = asg.groupby("customer_id")
    x = c.set_index("customer_id")
    assert (g["start_date"].min() == x["open_date"]).all()
    last_end = g["end_date"].apply(lambda e: e.max() if e.notna().all() else pd.NaT)
    pd.testing.assert_series_equal(last_end, x["close_date"], check_names=False)
    # RMs only serve while employed; reassignment on the exit date, same outlet
    a = asg.merge(rms, on="rm_id")
    assert (a["start_date"] >= a["hire_date"]).all()
    assert (a["exit_date"].isna() | (a["end_date"].notna() & (a["end_date"] <= a["exit_date"]))).all()
    assert (a.merge(c, on="customer_id").pipe(lambda d: d["outlet"] == d["branch_id"])).all()
    shared = asg[asg["share"] < 1]["customer_id"].unique()
    assert set(asg.loc[asg["share"] < 1, "share"]) <= {0.6, 0.4}
    assert set(c.loc[c["customer_id"].isin(shared), "customer_type"]) == {"corporate"}
    assert len(shared) == pytest.approx(0.10 * (c["customer_type"] == "corporate").sum(), rel=0.3)


def test_fee_equals_documented_driver_formula(bank):
    """fee = amount * base_rate * market[m] * exp(sum beta*z + skill[rm]) with rm the primary RM."""
    t, tr = bank.tables, bank.truth
    tx = t["transactions"][t["transactions"]["amount"] > 0].reset_index(drop=True)
    asg = t["assignments"]
    prim = asg[asg["share"] >= 0.5].sort_values("start_date")
    tx = tx.sort_values("date").reset_index(drop=True)
    m = pd.merge_asof(tx, prim[["customer_id", "rm_id", "start_date"]], left_on="date", right_on="start_date",
                      by="customer_id", direction="backward")
    m["period"] = m["date"].dt.to_period("M").dt.to_timestamp()
    m = m.merge(t["rm_activity"], on=["rm_id", "period"], how="left", validate="many_to_one")
    assert m["visits"].notna().all()
    lin = sum(tr.driver_betas[k] * (m[k] - tr.activity_means[k]) / tr.activity_sds[k] for k in tr.driver_betas)
    expected = (m["amount"] * m["product_family"].map(tr.fee_base_rate) * m["period"].map(tr.market_index)
                * np.exp(lin + m["rm_id"].map(tr.rm_skill)))
    np.testing.assert_allclose(m["fee"], expected, rtol=1e-9)
    assert tr.driver_betas["calls"] == 0.0


def test_history_full_matches_window_inside_window():
    kw = dict(n_customers=400, n_rms=10, seed=3)
    w, f = generate(**kw), generate(history="full", **kw)
    pd.testing.assert_frame_equal(w.tables["customers"], f.tables["customers"])
    ftx = f.tables["transactions"]
    inside = ftx[ftx["date"] >= "2022-01-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(inside, w.tables["transactions"])
    first = ftx[ftx["amount"] > 0].groupby("customer_id")["date"].min()
    opened = f.tables["customers"].set_index("customer_id")["open_date"]
    pd.testing.assert_series_equal(first, opened.loc[first.index], check_names=False)  # first purchase on open


def test_write_read_truth_and_cli(tmp_path, small):
    out = write(small, tmp_path / "w")
    tr = read_truth(out)
    assert tr.closure_log_hr == small.truth.closure_log_hr and tr.bgnbd == small.truth.bgnbd
    pd.testing.assert_series_equal(tr.market_index, small.truth.market_index, check_freq=False)
    pd.testing.assert_series_equal(tr.rm_skill, small.truth.rm_skill)
    pd.testing.assert_series_equal(tr.rm_exit_dates, small.truth.rm_exit_dates, check_names=False)
    assert main(["--customers", "600", "--rms", "12", "--seed", "7", "--out", str(tmp_path / "cli")]) == 0
    for k, df in small.tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli" / f"{k}.parquet"), df)
    with pytest.raises(TypeError, match="unknown truth override"):
        generate(n_customers=10, bogus=1)


# ------------------------------------------------------------------ truth recovery: building blocks
@pytest.mark.parametrize("params", [dict(r=0.45, alpha=3.5, a=0.6, b=2.8), dict(r=0.9, alpha=2.0, a=0.4, b=3.5),
                                    dict(r=0.243, alpha=4.414, a=0.793, b=2.426)])
def test_bgnbd_mean_frequency_matches_closed_form(params):
    T = 52.0
    d = simulate_bgnbd(20000, T=T, rng_or_seed=11, **params)
    se = d["frequency"].std() / np.sqrt(len(d))
    assert abs(d["frequency"].mean() - bgnbd_expected_frequency(T, **params)) < 3 * se
    assert (d["recency"] <= d["T"]).all() and ((d["frequency"] == 0) == (d["recency"] == 0)).all()
    # P(alive) for x = 0 customers is 1 in BG/NBD (dropout only after repeat purchases)
    assert d.loc[d["frequency"] == 0, "alive"].all()


def test_bgnbd_heterogeneous_T_and_transactions():
    T = np.linspace(5, 100, 20000)
    p = dict(r=0.9, alpha=2.0, a=0.4, b=3.5)
    d = simulate_bgnbd(20000, T=T, rng_or_seed=5, **p)
    exp = bgnbd_expected_frequency(T, **p).mean()
    se = d["frequency"].std() / np.sqrt(len(d))
    assert abs(d["frequency"].mean() - exp) < 3 * se
    ev = simulate_bgnbd_transactions(3000, T=30.0, rng_or_seed=2, **p)
    cu = ev.attrs["customers"]
    g = ev.groupby("customer")["t"]
    np.testing.assert_array_equal(g.size().to_numpy() - 1, cu["frequency"].to_numpy())
    np.testing.assert_allclose(g.max().to_numpy(), cu["recency"].to_numpy())
    assert (g.min() == 0).all() and (ev["t"] <= 30.0).all()
    # gaps of an alive customer's repeat purchases are Exp(lam): mean gap * lam ~ 1
    inner = ev[ev["t"] > 0]
    assert len(inner) > 1000


def test_gamma_gamma_means():
    p, q, gamma = 6.0, 3.8, 150.0
    freq = np.full(20000, 5)
    cust, amounts = simulate_gamma_gamma(freq, p, q, gamma, rng=3)
    target = p * gamma / (q - 1)  # E[z] = p * E[1/nu] = p * gamma / (q - 1)
    se = cust["monetary_value"].std() / np.sqrt(len(cust))
    assert abs(cust["monetary_value"].mean() - target) < 3 * se
    assert len(amounts) == 100000
    np.testing.assert_allclose(amounts.groupby("customer")["amount"].mean().to_numpy(), cust["monetary_value"])
    # nu ~ Gamma(q, rate=gamma)
    assert stats.kstest(cust["nu"], stats.gamma(q, scale=1 / gamma).cdf).pvalue > 0.001


def test_weibull_ph_baseline_and_inversion():
    shape, scale = 1.3, 4.0
    t = simulate_weibull_ph(np.zeros((20000, 1)), [0.0], shape, scale, rng=1)
    assert stats.kstest(t, stats.weibull_min(shape, scale=scale).cdf).pvalue > 0.001
    # exact inversion with a switch: H(t) == E
    rng = np.random.default_rng(0)
    E, lin, s = rng.exponential(size=1000), rng.normal(size=1000), rng.uniform(0, 5, size=1000)
    tt = weibull_ph_invert(E, lin, shape, scale, s, 0.7)
    H0 = lambda x: (x / scale) ** shape  # noqa: E731
    H = np.exp(lin) * (H0(np.minimum(tt, s)) + np.exp(0.7) * np.clip(H0(tt) - H0(s), 0, None))
    np.testing.assert_allclose(H, E, rtol=1e-9)


def test_weibull_ph_cox_recovers_betas():
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(42)
    n = 5000
    X = np.column_stack([rng.random(n) < 0.3, rng.integers(1, 6, n) - 3, rng.normal(size=n)]).astype(float)
    beta = np.array([-0.5, 0.2, 0.4])
    t = simulate_weibull_ph(X, beta, 1.1, 6.0, rng=rng)
    cens = rng.uniform(1, 8, n)
    df = pd.DataFrame(X, columns=["corp", "risk", "x"]).assign(T=np.minimum(t, cens), E=t <= cens)
    cph = CoxPHFitter().fit(df, "T", "E")
    ci = cph.confidence_intervals_.to_numpy()
    assert ((ci[:, 0] < beta) & (beta < ci[:, 1])).all(), cph.summary


def test_weibull_ph_time_varying_recovered():
    from lifelines import CoxTimeVaryingFitter

    rng = np.random.default_rng(9)
    n = 2500
    x = (rng.random(n) < 0.5).astype(float)
    s = np.where(rng.random(n) < 0.5, rng.uniform(0, 4, n), np.inf)
    t = simulate_weibull_ph(x[:, None], [0.3], 1.2, 15.0, rng=rng, switch_times=s, switch_beta=0.7)
    cens = 6.0
    stop = np.minimum(t, cens)
    ev = t <= cens
    pre = pd.DataFrame({"id": np.arange(n), "start": 0.0, "stop": np.minimum(stop, s), "x": x, "tv": 0.0,
                        "event": ev & (stop <= s)})
    post_m = s < stop
    post = pd.DataFrame({"id": np.arange(n)[post_m], "start": s[post_m], "stop": stop[post_m], "x": x[post_m],
                         "tv": 1.0, "event": ev[post_m]})
    long = pd.concat([pre, post], ignore_index=True)
    ctv = CoxTimeVaryingFitter().fit(long, id_col="id", event_col="event", start_col="start", stop_col="stop")
    ci = ctv.confidence_intervals_
    for k, b in (("x", 0.3), ("tv", 0.7)):
        assert ci.loc[k].iloc[0] < b < ci.loc[k].iloc[1], ctv.summary


# ------------------------------------------------------------------ truth recovery: the bank
def test_bank_bgnbd_full_history_matches_closed_form():
    b = generate(n_customers=4000, n_rms=20, seed=5, history="full", closure_stops_transactions=False,
                 refund_share=0.0)
    c, tx, tr = b.tables["customers"], b.tables["transactions"], b.truth
    n_tx = tx.groupby("customer_id").size().reindex(c["customer_id"], fill_value=0).to_numpy()
    T = ((pd.Timestamp("2024-12-31") + pd.Timedelta(days=1) - c["open_date"]).dt.days / 7.0).to_numpy()
    for typ in ("retail", "corporate"):
        m = (c["customer_type"] == typ).to_numpy()
        freq = n_tx[m] - 1
        exp = bgnbd_expected_frequency(T[m], **tr.bgnbd[typ]).mean()
        assert abs(freq.mean() - exp) < 3.5 * freq.std() / np.sqrt(m.sum()), typ
        gg = tr.gamma_gamma[typ]
        amt = tx[tx["customer_id"].isin(c["customer_id"][m])].groupby("customer_id")["amount"].mean()
        assert amt.mean() == pytest.approx(gg["p"] * gg["gamma"] / (gg["q"] - 1), rel=0.1)


def test_bank_closure_hazard_ratios_recovered():
    """Cox with left truncation (entry at window start) and the time-varying rm_left covariate.

    The bank is generated without the relationship hazard terms (contact lapse, complaints), which
    this hand-built frame does not model; tests/unit/test_relationship_synth.py recovers them all."""
    from lifelines import CoxTimeVaryingFitter

    bank = generate(**SAMPLE_ARGS, relationship=False)

    c = bank.tables["customers"]
    tc = bank.truth.customers
    start, end = pd.Timestamp("2022-01-01"), pd.Timestamp("2024-12-31")
    yrs = lambda d: (d - c["open_date"]).dt.days.to_numpy() / 365.25  # noqa: E731
    entry = np.maximum(yrs(pd.Series(start, index=c.index)), 0.0)
    closed = c["close_date"].notna().to_numpy()
    stop = np.where(closed, yrs(c["close_date"].fillna(end)), yrs(pd.Series(end + pd.Timedelta(days=1),
                                                                            index=c.index)))
    s = yrs(tc["rm_left_date"])
    s = np.where(np.isnan(s), np.inf, s)
    base = pd.DataFrame({"id": np.arange(len(c)), "corporate": (c["customer_type"] == "corporate").astype(float),
                         "risk": (c["risk_level"] - 3).astype(float),
                         "cbe": (c["scenario"] == "cross_border_ecommerce").astype(float)})
    pre = base.assign(start=entry, stop=np.minimum(stop, s), rm_left=0.0, event=closed & (stop <= s))
    pre = pre[pre["stop"] > pre["start"]]
    pm = s < stop
    post = base[pm].assign(start=np.maximum(s[pm], entry[pm]), stop=stop[pm], rm_left=1.0, event=closed[pm])
    long = pd.concat([pre, post], ignore_index=True)
    ctv = CoxTimeVaryingFitter().fit(long, id_col="id", event_col="event", start_col="start", stop_col="stop")
    ci = ctv.confidence_intervals_
    lh = bank.truth.closure_log_hr
    for k, b in (("corporate", lh["corporate"]), ("risk", lh["risk_level"]),
                 ("cbe", lh["cross_border_ecommerce"]), ("rm_left", lh["rm_left"])):
        assert ci.loc[k].iloc[0] < b < ci.loc[k].iloc[1], (k, ctv.summary)
