"""KPI measures on a hand-built bank: crediting by share, pro-rating, RM leaving mid-period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlglot

from rmanalytics.kpi import kpi_table, rm_month_sql, segment_fee_table
from rmanalytics.kpi.measures import EffectiveRule, QualityRule, definitions_table, rm_month_measures, segment_period_sql

D = pd.Timestamp


@pytest.fixture(scope="module")
def tables():
    customers = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "open_date": [D("2023-12-01"), D("2023-01-01"), D("2024-01-10")],
        "close_date": [pd.NaT, D("2024-02-15"), pd.NaT],
        "customer_type": ["retail", "corporate", "retail"],
        "risk_level": [2, 3, 1], "industry": [None] * 3, "scenario": [None] * 3,
        "branch_id": ["OL-1"] * 3, "acquisition_channel": ["branch", "branch", "referral"],
    })
    rms = pd.DataFrame({
        "rm_id": ["R1", "R2"], "outlet": ["OL-1", "OL-1"], "sub_branch": ["SB-1"] * 2, "tier2_branch": ["T2-1"] * 2,
        "tier1_branch": ["T1-1"] * 2, "hire_date": [D("2015-01-01"), D("2020-01-01")],
        "exit_date": [D("2024-02-01"), pd.NaT], "level": ["senior", "junior"],
    })
    assignments = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2", "C2", "C3"],
        "rm_id": ["R1", "R2", "R1", "R2", "R2"],
        "start_date": [D("2023-12-01"), D("2024-02-01"), D("2023-01-01"), D("2023-01-01"), D("2024-01-10")],
        "end_date": [D("2024-02-01"), pd.NaT, D("2024-02-15"), D("2024-02-15"), pd.NaT],
        "share": [1.0, 1.0, 0.6, 0.4, 1.0],
    })
    transactions = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2", "C3"],
        "date": [D("2024-01-15"), D("2024-03-10"), D("2024-01-20"), D("2024-01-10")],
        "amount": [100.0, 200.0, 1000.0, 50.0], "product_family": ["deposit", "deposit", "loan", "card"],
        "channel": ["branch"] * 4, "fee": [2.0, 4.0, 10.0, 1.0],
    })
    balances = pd.DataFrame({
        "customer_id": ["C1", "C1", "C1", "C2"],
        "snapshot_date": [D("2024-01-31"), D("2024-02-29"), D("2024-03-31"), D("2024-01-31")],
        "aum": [1000.0, 1000.0, 1000.0, 5000.0], "deposits": [1000.0, 1000.0, 1000.0, 5000.0],
        "loans": [0.0, 0.0, 0.0, 2000.0], "loans_strategic": [0.0, 0.0, 0.0, 500.0], "npl": [0.0, 0.0, 0.0, 100.0],
        "n_products": [1, 1, 2, 3],
    })
    act = []
    for rm, months in (("R1", ["2024-01-01"]), ("R2", ["2024-01-01", "2024-02-01", "2024-03-01"])):
        for m in months:
            act.append({"rm_id": rm, "period": D(m), "visits": 10, "visits_required": 12, "calls": 20,
                        "cross_sell_offers": 5, "digital_usage": 0.5, "training_score": 80.0, "complaints": 0,
                        "nps_responses": 10, "nps_promoters": 6, "nps_detractors": 2, "compliance_checks": 4,
                        "compliance_passed": 3, "compliance_breaches": 1, "major_breaches": 1 if rm == "R1" else 0,
                        "alert_response_hours": 12.0, "referrals": 1})
    return {"customers": customers, "rms": rms, "assignments": assignments, "transactions": transactions,
            "balances": balances, "rm_activity": pd.DataFrame(act)}


def test_quarter_kpis_shared_and_leaver(tables):
    q = kpi_table(tables, freq="quarter").set_index(["rm_id", "period"])
    r1, r2 = q.loc[("R1", "2024Q1")], q.loc[("R2", "2024Q1")]
    # fees: C1 Jan (R1) 2 + C2 0.6 x 10 = 8; C1 Mar (R2) 4 + C2 0.4 x 10 + C3 1 = 9; all fees credited once
    assert r1["fee_income"] == pytest.approx(8.0)
    assert r2["fee_income"] == pytest.approx(9.0)
    # average deposits over the quarter's 3 months, pro-rated: R1 holds C1 in Jan only (left 1 Feb)
    assert r1["avg_deposits"] == pytest.approx((1000 + 0.6 * 5000) / 3)
    assert r2["avg_deposits"] == pytest.approx((0.4 * 5000 + 1000 + 1000) / 3)
    assert bool(r1["partial_period"]) and not bool(r2["partial_period"])
    assert r1["days_active"] == 31 and r2["days_active"] == 91
    # churn: C2 closed 15 Feb, shared 0.6 / 0.4; book at 1 Jan: R1 = C1 + 0.6 C2, R2 = 0.4 C2
    assert r1["churn_rate"] == pytest.approx(0.6 / 1.6)
    assert r2["churn_rate"] == pytest.approx(1.0)
    assert r2["new_customers"] == 1.0 and r2["new_active_customers"] == 1.0 and r2["referral_share"] == 1.0
    assert r2["new_effective_customers"] == 0.0  # C3 has no balance snapshot: never reached the asset threshold
    assert r1["new_customers"] == 0.0
    # cross-sell: R2's C1 goes 1 -> 2 products in March; customer-months with a previous snapshot: Feb, Mar
    assert r2["cross_sell_rate"] == pytest.approx(0.5)
    assert r1["npl_ratio"] == pytest.approx(100 / 2000)
    assert r1["strategic_loan_share"] == pytest.approx(0.25)
    assert r1["major_breaches"] == 1 and r2["major_breaches"] == 0
    assert r2["nps"] == pytest.approx(40.0)
    assert r2["visit_coverage"] == pytest.approx(30 / 36)
    assert r2["compliance_pass_rate"] == pytest.approx(0.75)
    # expected fee at bank-wide family rates equals the fee here (one rate per family)
    assert r1["expected_fee"] + r2["expected_fee"] == pytest.approx(17.0)


def test_monthly_and_year_labels(tables):
    m = kpi_table(tables, freq="month")
    assert set(m["period"]) >= {"2024-01", "2024-02", "2024-03"}
    y = kpi_table(tables, freq="year")
    assert y.groupby("period")["fee_income"].sum()["2024"] == pytest.approx(17.0)
    with pytest.raises(ValueError, match="freq must be one of"):
        kpi_table(tables, freq="week")


def test_segment_fee_table(tables):
    s = segment_fee_table(tables, segment="customer_type")
    q1 = s[s["period"] == "2024Q1"].set_index("segment")
    assert q1.loc["retail", "customers"] == 2 and q1.loc["retail", "fee_income"] == pytest.approx(7.0)
    assert q1.loc["corporate", "fee_income"] == pytest.approx(10.0)
    # observation_end: later transactions are left out (here the one on 2024-03-10)
    cut = segment_fee_table(tables, segment="customer_type", end="2024-03-09").set_index(["period", "segment"])
    full = s.set_index(["period", "segment"])
    assert cut["fee_income"].sum() == pytest.approx(full["fee_income"].sum() - tables["transactions"].loc[
        tables["transactions"]["date"] > D("2024-03-09"), "fee"].sum())


def test_sql_transpiles_to_spark():
    for sql in (rm_month_sql(), rm_month_sql(has_fee=False, has_npl=False, has_channel=False), segment_period_sql()):
        out = sqlglot.transpile(sql, read="duckdb", write="spark")
        assert len(out) == 1 and "SELECT" in out[0]


def _with(tables, **over):
    t = {k: v.copy() for k, v in tables.items()}
    t.update(over)
    return t


def test_seed_definitions_daily_average_deposits(tables):
    bal = tables["balances"].assign(deposits_avg=[900.0, 1000.0, 800.0, 4000.0])
    q = kpi_table(_with(tables, balances=bal), freq="quarter")
    r1 = q.set_index(["rm_id", "period"]).loc[("R1", "2024Q1")]
    assert r1["avg_deposits"] == pytest.approx((900 + 0.6 * 4000) / 3)
    assert r1["avg_deposits_month_end"] == pytest.approx((1000 + 0.6 * 5000) / 3)
    assert "balances.deposits_avg" in q.attrs["definitions"]["deposit_growth"]
    # daily path: C1 January from two daily rows (mean 600); other customer-months fall back to month end
    daily = pd.DataFrame({"customer_id": ["C1", "C1"], "date": [D("2024-01-10"), D("2024-01-20")],
                          "deposits": [500.0, 700.0]})
    qd = kpi_table(_with(tables, daily_balances=daily), freq="quarter")
    r1d = qd.set_index(["rm_id", "period"]).loc[("R1", "2024Q1")]
    assert r1d["avg_deposits"] == pytest.approx((600 + 0.6 * 5000) / 3)
    assert r1d["deposits_avg_fallback"] == pytest.approx(0.6)  # C2 January, credited 0.6
    assert "daily_balances" in qd.attrs["definitions"]["avg_deposits"]
    assert "month-end" in kpi_table(tables, freq="quarter").attrs["definitions"]["avg_deposits"]
    d = definitions_table(qd)
    assert set(d.columns) == {"kpi", "definition"} and "new_effective_customers" in set(d["kpi"])


def test_effective_customers_by_asset_threshold(tables):
    bal = pd.concat([tables["balances"], pd.DataFrame({
        "customer_id": ["C3", "C3"], "snapshot_date": [D("2024-01-31"), D("2024-02-29")],
        "aum": [60_000.0, 40_000.0], "deposits": [0.0, 0.0], "loans": [0.0, 0.0], "loans_strategic": [0.0, 0.0],
        "npl": [0.0, 0.0], "n_products": [1, 1]})], ignore_index=True)
    t = _with(tables, balances=bal)
    q = kpi_table(t, freq="quarter").set_index(["rm_id", "period"])
    assert q.loc[("R2", "2024Q1"), "new_effective_customers"] == 1.0  # 60,000 >= 50,000 in January
    q2 = kpi_table(t, freq="quarter", effective=EffectiveRule(hold_months=2)).set_index(["rm_id", "period"])
    assert q2.loc[("R2", "2024Q1"), "new_effective_customers"] == 0.0  # not held two months
    q3 = kpi_table(t, freq="quarter", effective=EffectiveRule(aum_retail=70_000)).set_index(["rm_id", "period"])
    assert q3.loc[("R2", "2024Q1"), "new_effective_customers"] == 0.0


def test_npl_flows_weighted_loans_and_quality_churn(tables):
    bal = tables["balances"].assign(npl_new=[0.0, 0.0, 0.0, 100.0], recovered=[0.0, 0.0, 0.0, 30.0],
                                    written_off=[0.0, 0.0, 0.0, 5.0])
    q = kpi_table(_with(tables, balances=bal), freq="quarter", strategic_loan_weight=2.0)
    r1 = q.set_index(["rm_id", "period"]).loc[("R1", "2024Q1")]
    assert r1["new_npl_ratio"] == pytest.approx(60 / 400)  # 0.6 x 100 over average loans 0.6 x 2000 / 3
    assert r1["npl_recovery_rate"] == pytest.approx(18 / 60)  # 0.6 x 30 over (0 at start + 60 new)
    assert r1["weighted_loan_volume"] == pytest.approx((0.6 * 2000 + 0.6 * 500) / 3)
    base = kpi_table(tables, freq="quarter").set_index(["rm_id", "period"]).loc[("R1", "2024Q1")]
    assert np.isnan(base["npl_recovery_rate"]) and base["new_npl_ratio"] == 0.0  # derived: no earlier month
    assert "not available" in kpi_table(tables, freq="quarter").attrs["definitions"]["npl_recovery_rate"]
    # quality tier: C2 (corporate, AUM 5,000 at 31 Jan) closes 15 Feb; book at 1 Feb: R1 0.6, R2 0.4
    m = kpi_table(tables, freq="month", quality=QualityRule(aum_retail=1e9, aum_corporate=4000.0))
    feb = m[m["period"] == "2024-02"].set_index("rm_id")
    assert feb.loc["R1", "quality_churn_rate"] == pytest.approx(1.0)
    assert feb.loc["R2", "book_start_quality"] == pytest.approx(0.4)
    assert feb.loc["R2", "quality_churn_rate"] == pytest.approx(1.0)
    mar = m[m["period"] == "2024-03"].set_index("rm_id")
    assert np.isnan(mar.loc["R2", "quality_churn_rate"])  # no quality customer left


def test_new_sql_options_transpile():
    for kw in ({"deposits_avg": "daily_balances"}, {"deposits_avg": "column", "has_npl_new": True,
                                                      "has_recovered": True, "has_written_off": True}):
        out = sqlglot.transpile(rm_month_sql(**kw), read="duckdb", write="spark")
        assert len(out) == 1 and "SELECT" in out[0]
    with pytest.raises(ValueError, match="deposits_avg"):
        rm_month_sql(deposits_avg="weekly")
    with pytest.raises(ValueError):
        EffectiveRule(hold_months=0)
    assert rm_month_measures is not None


def test_parquet_paths_give_the_same_measures(tables, tmp_path):
    """The big tables as Parquet paths (the notebooks' lazy load) give what the frames give."""
    lazy = dict(tables)
    for name in ("transactions", "balances", "customers", "assignments"):
        lazy[name] = str(tmp_path / f"{name}.parquet")
        tables[name].to_parquet(lazy[name], index=False)
    a, b = rm_month_measures(tables), rm_month_measures(lazy)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(kpi_table(tables, monthly=a), kpi_table(lazy, monthly=b), check_exact=False,
                                  rtol=1e-12)


def test_snapshot_sequence_with_two_snapshots_in_a_month(tables):
    """The previous snapshot is the previous row in date order (not the previous calendar month), and a
    month with two snapshots counts the book at the next month's start once per snapshot, as the
    month-end join always did (balances should hold one snapshot a month: a warning of the checks)."""
    bal = tables["balances"]
    extra = bal.iloc[[0]].assign(snapshot_date=D("2024-02-10"), aum=300_000.0, n_products=3)
    t = _with(tables, balances=pd.concat([bal, extra], ignore_index=True))
    m = rm_month_measures(t, quality=QualityRule(aum_retail=100_000.0))
    r2 = m[m["rm_id"] == "R2"].set_index(m.loc[m["rm_id"] == "R2", "month_start"].dt.strftime("%Y-%m"))
    # C1 (R2 from 1 Feb): Feb 10 (3 products, after 1 on 31 Jan: a cross-sell), Feb 29 (1 product, after 3)
    assert r2.loc["2024-02", "cross_sell_base"] == pytest.approx(2.0)
    assert r2.loc["2024-02", "cross_sell_w"] == pytest.approx(1.0)
    assert r2.loc["2024-03", "cross_sell_w"] == pytest.approx(1.0)  # 2 products on 31 Mar after 1 on 29 Feb
    # book at 1 Mar: C1 twice (two February snapshots) + C3; quality from the 10 Feb snapshot only
    assert r2.loc["2024-03", "book_start"] == pytest.approx(3.0)
    assert r2.loc["2024-03", "book_start_quality"] == pytest.approx(1.0)
    base = rm_month_measures(tables, quality=QualityRule(aum_retail=100_000.0))
    b2 = base[base["rm_id"] == "R2"].set_index(base.loc[base["rm_id"] == "R2", "month_start"].dt.strftime("%Y-%m"))
    assert b2.loc["2024-03", "book_start"] == pytest.approx(2.0)
    assert b2.loc["2024-03", "book_start_quality"] == pytest.approx(0.0)


def test_customer_level_visits_from_an_interactions_path():
    """HNW visit coverage from interactions given as a Parquet path (counted in the engine) equals the
    pandas count (notebook 04 loads interactions lazily)."""
    from rmanalytics.io import load_tables
    from rmanalytics.kpi.measures import customer_level_measures

    frames = load_tables("data/sample", tables=["customers", "balances", "assignments", "interactions"])
    lazy = load_tables("data/sample", tables=["customers", "balances", "assignments", "interactions"],
                       lazy=("balances", "interactions"))
    assert isinstance(lazy["interactions"], str)
    a, b = customer_level_measures(frames, "quarter"), customer_level_measures(lazy, "quarter")
    assert a["cl_visits_required"].sum() > 0 and a["cl_visits_covered"].sum() > 0
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------
# kpi.monthly_measures: notebook 04's recorded table, read back by 05 and 06 when it fits
# --------------------------------------------------------------------------------------------
def _recorded(tables, tmp_path, **kw):
    """rm_month_measures recorded as notebook 04 does (Recorder.table, Parquet with its attrs)."""
    from rmanalytics.report import Recorder

    m = rm_month_measures(tables, **kw)
    Recorder(tmp_path, mask_ids=False).table("rm_month_measures", m, csv=False)
    return m, tmp_path / "tables" / "rm_month_measures.parquet"


def _no_recompute(monkeypatch):
    import rmanalytics.kpi.measures as measures

    def fail(*a, **k):
        raise AssertionError("recomputed although the recorded table fits")
    monkeypatch.setattr(measures, "_run_rm_month_plan", fail)


def test_monthly_measures_reads_the_recorded_table(tables, tmp_path, monkeypatch):
    from rmanalytics.kpi import monthly_measures

    m, path = _recorded(tables, tmp_path, end=D("2024-03-31"))
    assert path.is_file() and "customer_id" not in m.columns
    fresh = monthly_measures(tables)  # no path: computed (default span = the data range, the same months)
    assert fresh.attrs["source"] == "computed"
    _no_recompute(monkeypatch)
    for where in (path, path.parent):  # the file, or the tables/ folder of the run
        got = monthly_measures(tables, where)
        assert got.attrs["source"] == f"recorded: {path}"
        pd.testing.assert_frame_equal(got, fresh)
        pd.testing.assert_frame_equal(got, m)
        assert got.attrs["definitions"] == fresh.attrs["definitions"]
        pd.testing.assert_frame_equal(kpi_table(tables, monthly=got), kpi_table(tables, monthly=fresh))
    # the notebooks' lazy tables (Parquet paths) read the table recorded from frames: same rows, same SQL
    lazy = dict(tables)
    for name in ("transactions", "balances"):
        lazy[name] = str(tmp_path / f"{name}.parquet")
        tables[name].to_parquet(lazy[name], index=False)
    pd.testing.assert_frame_equal(monthly_measures(lazy, path), m)
    # explicit default rules are the same settings
    pd.testing.assert_frame_equal(monthly_measures(tables, path, effective=EffectiveRule(), quality=QualityRule(),
                                                   effective_window_days=90), m)


@pytest.mark.parametrize("kw", [
    {"quality": QualityRule(aum_retail=500.0)},
    {"effective": EffectiveRule(aum_retail=10.0)},
    {"effective_window_days": 30},
    {"end": D("2024-02-10")},  # another span of months
    {"start": D("2023-12-01")},
])
def test_monthly_measures_recomputes_for_other_rules(tables, tmp_path, kw):
    from rmanalytics.kpi import monthly_measures

    m, path = _recorded(tables, tmp_path)
    got = monthly_measures(tables, path, **kw)
    assert got.attrs["source"] == "computed"
    want = rm_month_measures(tables, **kw)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["definitions"] == want.attrs["definitions"]
    if "quality" in kw:  # the rule changes the numbers here: reading the recorded table would have been wrong
        assert not got.equals(m)


def test_monthly_measures_recomputes_for_other_data_or_no_settings(tables, tmp_path):
    from rmanalytics.kpi import monthly_measures

    m, path = _recorded(tables, tmp_path)
    fewer = _with(tables, transactions=tables["transactions"].iloc[:-1])  # another data set (a row less)
    got = monthly_measures(fewer, path)
    assert got.attrs["source"] == "computed"
    pd.testing.assert_frame_equal(got, rm_month_measures(fewer))
    bal = tables["balances"].drop(columns=["npl"])  # another optional column: another SQL text
    assert monthly_measures(_with(tables, balances=bal), path).attrs["source"] == "computed"
    plain = tmp_path / "plain.parquet"  # a table without recorded settings (e.g. written by an older 04)
    m.copy().pipe(lambda d: setattr(d, "attrs", {}) or d).to_parquet(plain, index=False)
    assert monthly_measures(tables, plain).attrs["source"] == "computed"
    assert monthly_measures(tables, tmp_path / "missing.parquet").attrs["source"] == "computed"
    with pytest.raises(TypeError):
        monthly_measures(tables, path, quality_rule=QualityRule())


# --------------------------------------------------------------------------------------------
# the one-pass SQL (balances read once, one snapshot window) reproduces the SQL it replaced
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_tables():
    from rmanalytics.io import load_tables

    return load_tables("data/sample", tables=["customers", "transactions", "balances", "assignments", "rm_activity",
                                               "rms"])


def _sample_variant(t, variant):
    t = dict(t)
    bal = t["balances"]
    if variant == "derived_npl_month_end":  # no npl_new / deposits_avg / recovered columns
        t["balances"] = bal.drop(columns=["npl_new", "deposits_avg", "recovered", "written_off"])
    elif variant == "daily_balances":
        days = bal[["customer_id", "snapshot_date", "deposits"]].iloc[::3]
        daily = pd.concat([days.assign(date=days["snapshot_date"] - pd.Timedelta(days=k),
                                       deposits=days["deposits"] * (1 + 0.01 * k)) for k in range(3)])
        t["daily_balances"] = daily[["customer_id", "date", "deposits"]].reset_index(drop=True)
    elif variant == "duplicate_snapshots":  # two snapshots in some months (a warning of the checks)
        extra = bal.iloc[::50].assign(snapshot_date=lambda d: d["snapshot_date"] - pd.Timedelta(days=9),
                                      aum=lambda d: d["aum"] * 3, n_products=lambda d: d["n_products"] + 1)
        t["balances"] = pd.concat([bal, extra], ignore_index=True)
    return t


@pytest.mark.parametrize("variant", ["plain", "derived_npl_month_end", "daily_balances", "duplicate_snapshots"])
@pytest.mark.parametrize("rules", [{}, {"effective": EffectiveRule(aum_retail=20_000.0, hold_months=2),
                                        "quality": QualityRule(aum_retail=50_000.0, aum_corporate=1e6)}])
def test_sql_reproduces_the_replaced_sql(sample_tables, monkeypatch, variant, rules):
    import rmanalytics.kpi.measures as measures
    from kpi_month_reference import reference_rm_month_sql

    t = _sample_variant(sample_tables, variant)
    got = measures.rm_month_measures(t, **rules)
    monkeypatch.setattr(measures, "rm_month_sql", reference_rm_month_sql)
    want = measures.rm_month_measures(t, **rules)
    assert len(got) > 100 and got["book_start_quality"].sum() > 0 and got["cross_sell_base"].sum() > 0
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    assert got.attrs["definitions"] == want.attrs["definitions"]


def test_sql_reproduces_the_replaced_sql_on_the_hand_built_bank(tables, monkeypatch):
    import rmanalytics.kpi.measures as measures
    from kpi_month_reference import reference_rm_month_sql

    variants = [tables, _with(tables, balances=tables["balances"].drop(columns=["npl"]))]
    got = [measures.rm_month_measures(t, quality=QualityRule(aum_retail=500.0)) for t in variants]
    monkeypatch.setattr(measures, "rm_month_sql", reference_rm_month_sql)
    for t, g in zip(variants, got):
        pd.testing.assert_frame_equal(g, measures.rm_month_measures(t, quality=QualityRule(aum_retail=500.0)),
                                      check_exact=False, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# batches of customers (DuckDB, large balances): the per-customer stage on customer_id ranges
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["plain", "derived_npl_month_end", "daily_balances", "duplicate_snapshots"])
@pytest.mark.parametrize("lazy", [False, True])
def test_batches_of_customers_equal_one_statement(sample_tables, monkeypatch, tmp_path, variant, lazy):
    import rmanalytics.kpi.measures as measures

    t = _sample_variant(sample_tables, variant)
    t["customers"] = t["customers"].sample(frac=1.0, random_state=1)  # batches do not need sorted ids
    if lazy:  # Parquet paths, as the notebooks pass the big tables
        for name in ("customers", "transactions", "balances", "assignments", "daily_balances"):
            if name in t:
                t[name].to_parquet(tmp_path / f"{name}.parquet", index=False)
                t[name] = str(tmp_path / f"{name}.parquet")
    rules = {"effective": EffectiveRule(aum_retail=20_000.0, hold_months=2)}
    monkeypatch.setattr(measures, "BATCH_BALANCE_ROWS", 10**12)
    one = measures.rm_month_measures(t, **rules)
    calls = []
    batched = measures._run_in_batches
    monkeypatch.setattr(measures, "_run_in_batches", lambda *a: calls.append(a[2]) or batched(*a))
    n_bal = measures._row_count(t["balances"], None)
    monkeypatch.setattr(measures, "BATCH_BALANCE_ROWS", n_bal // 7)
    got = measures.rm_month_measures(t, **rules)
    assert calls == [8]
    assert len(got) > 100 and got["cross_sell_base"].sum() > 0 and got["new_effective_customers"].sum() > 0
    pd.testing.assert_frame_equal(got, one, check_exact=True)  # exact sums: batches and threads give the same bits
    assert got.attrs == one.attrs


def test_batch_count_follows_the_memory_limit(monkeypatch):
    import rmanalytics.kpi.measures as measures

    assert measures._limit_bytes("5GB") == 5 * 10**9 and measures._limit_bytes("500 MiB") == 500 * 2**20
    assert measures._limit_bytes("lots") is None and measures._limit_bytes(None) is None
    monkeypatch.setattr(measures, "BATCH_BALANCE_ROWS", None)
    monkeypatch.setenv("RMANALYTICS_MEMORY_LIMIT", "5GB")  # 12.5M balance rows per batch
    assert measures._customer_batches(21_786_694) == 2 and measures._customer_batches(217_575_709) == 18
    assert measures._customer_batches(1_000) == 1
    monkeypatch.setenv("RMANALYTICS_MEMORY_LIMIT", "100MB")  # never below 1M rows per batch
    assert measures._customer_batches(21_786_694) == 22
