"""Branch scorecards: unit KPIs from RM measures, unit targets, unit scoring, weighted roll-up and
RM contributions."""

from __future__ import annotations

import pandas as pd
import pytest

from rmanalytics.kpi import kpi_table, rm_month_measures, rollup, scorecard
from rmanalytics.kpi.branch import rm_contributions, unit_kpi_table, unit_scorecard, unit_targets
from rmanalytics.synth import generate

CFG = {
    "peer_group": ["tier1_branch"],
    "dimensions": {
        "business_contribution": {"weight": 0.7, "kpis": {"fee_income": {"weight": 1.0, "rule": "ratio", "cap": 3.0}}},
        "customer_management": {"weight": 0.3, "kpis": {
            "churn_rate": {"weight": 1.0, "rule": "ratio", "target": 0.05, "cap": 2.0}}},
    },
    "bands": [{"rating": "excellent", "min_score": 110}, {"rating": "good", "min_score": 100},
              {"rating": "qualified", "min_score": 85}, {"rating": "needs_improvement", "min_score": float("-inf")}],
    "bonus_coefficients": {"excellent": 1.5, "good": 1.2, "qualified": 1.0, "needs_improvement": 0.6},
}


@pytest.fixture(scope="module")
def bank():
    b = generate(n_customers=800, n_rms=12, seed=3)
    monthly = rm_month_measures(b.tables)
    kpis = kpi_table(b.tables, monthly=monthly, freq="quarter")
    return b.tables, monthly, kpis


def test_unit_kpis_are_recomputed_from_sums(bank):
    tables, monthly, kpis = bank
    u = unit_kpi_table(monthly, tables["rms"], "tier2_branch").set_index(["unit", "period"])
    k = kpis.assign(unit=kpis["rm_id"].map(tables["rms"].set_index("rm_id")["tier2_branch"]))
    g = k.groupby(["unit", "period"])
    pd.testing.assert_series_equal(u["fee_income"], g["fee_income"].sum().reindex(u.index), check_names=False)
    # churn rate of the unit: churned over book at start, summed over RMs (not a mean of RM rates)
    churned = (k["churn_rate"] * k["book_start"]).groupby([k["unit"], k["period"]]).sum()
    rate = (churned / g["book_start"].sum()).reindex(u.index)
    pd.testing.assert_series_equal(u["churn_rate"], rate, check_names=False, rtol=1e-9)
    assert (u["n_rms"] >= 1).all() and (u["level"] == "tier2_branch").all()


def test_unit_targets_own_rows_win(bank):
    tables, _, _ = bank
    rms = tables["rms"]
    t1 = sorted(rms["tier1_branch"].unique())[0]
    own = pd.DataFrame([{"unit_id": t1, "unit_level": "tier1_branch", "period": "2023Q1", "kpi": "fee_income",
                         "target": 123.0}])
    tg = pd.concat([tables["kpi_targets"], own], ignore_index=True)
    ut = unit_targets(tg, rms, "tier1_branch").set_index(["unit_id", "period", "kpi"])
    assert ut.loc[(t1, "2023Q1", "fee_income"), "target"] == 123.0
    assert ut.loc[(t1, "2023Q1", "fee_income"), "target_source"] == "unit"
    rm_t = tables["kpi_targets"]
    members = rms.loc[rms["tier1_branch"] == t1, "rm_id"]
    q2 = rm_t[(rm_t["unit_id"].isin(members)) & (rm_t["period"] == "2023Q2") & (rm_t["kpi"] == "fee_income")]
    assert ut.loc[(t1, "2023Q2", "fee_income"), "target"] == pytest.approx(q2["target"].sum())
    assert ut.loc[(t1, "2023Q2", "fee_income"), "target_source"] == "sum_of_rm_targets"
    assert ut.loc[(t1, "2023Q2", "aum_growth"), "target_source"] == "mean_of_rm_targets"
    assert len(unit_targets(tg, rms, "tier1_branch", fallback="none")) == 1


def test_unit_scored_against_its_own_target(bank):
    tables, monthly, _ = bank
    rms = tables["rms"]
    u = unit_kpi_table(monthly, rms, "tier1_branch")
    row = u[u["period"] == "2023Q1"].iloc[0]
    own = pd.DataFrame([{"unit_id": row["unit"], "unit_level": "tier1_branch", "period": "2023Q1",
                         "kpi": "fee_income", "target": row["fee_income"] / 2}])
    ut = unit_targets(pd.concat([tables["kpi_targets"], own], ignore_index=True), rms, "tier1_branch")
    sc = unit_scorecard(u, ut, CFG, "tier1_branch").set_index(["unit", "period"])
    s = sc.loc[(row["unit"], "2023Q1")]
    assert s["score_business_contribution"] == pytest.approx(200.0)  # actual = 2 x its own target
    churn_pts = min(2.0, 0.05 / row["churn_rate"]) * 100 if row["churn_rate"] > 0 else 200.0
    assert s["total_score"] == pytest.approx(0.7 * 200 + 0.3 * churn_pts)
    assert s["target_sources"] == "unit"
    assert sc.loc[(row["unit"], "2023Q2"), "target_sources"] == "sum_of_rm_targets"


@pytest.mark.parametrize("weight", ["unweighted", "headcount", "volume"])
def test_weighted_rollup_and_contributions(bank, weight):
    tables, _, kpis = bank
    rms = tables["rms"]
    s = scorecard(kpis, tables["kpi_targets"], CFG, rms=rms)
    r = rollup(s, rms, weight=weight, kpis=kpis)
    assert (r["weighting"] == weight).all()
    c = rm_contributions(s, rms, "outlet", weight=weight, kpis=kpis)
    got = c.groupby(["unit", "period"])["contribution"].sum()
    want = r[r["level"] == "outlet"].set_index(["unit", "period"])["mean_score"].reindex(got.index)
    pd.testing.assert_series_equal(got, want, check_names=False, rtol=1e-9)
    shares = c.groupby(["unit", "period"])["fee_income_share"].sum()
    assert shares.dropna().sub(1).abs().max() < 1e-9
    if weight == "volume":  # by hand for one unit-period
        key = got.index[0]
        part = c.set_index(["unit", "period"]).loc[key]
        aum = kpis.set_index(["rm_id", "period"])["aum"]
        w = [aum[(rid, key[1])] for rid in part["rm_id"]]
        assert want[key] == pytest.approx(sum(wi * x for wi, x in zip(w, part["total_score"])) / sum(w))
    if weight == "headcount":  # a leaver counts for the days served
        k = kpis.set_index(["rm_id", "period"])
        part = kpis[kpis["partial_period"]]
        if len(part):
            r0 = part.iloc[0]
            days = (r0["period_end"] - r0["period_start"]).days
            row = c[(c["rm_id"] == r0["rm_id"]) & (c["period"] == r0["period"])]
            assert row["weight"].iloc[0] == pytest.approx(k.loc[(r0["rm_id"], r0["period"]), "days_active"] / days)
