"""Scorecard config validation, scoring rules, veto, bands, ranks, roll-up, cycles, milestones."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from pydantic import ValidationError

from rmanalytics.errors import ParameterError
from rmanalytics.kpi import (attribution_span, bank_attainment, cycle_flags, decompose_annual_target, kpi_points,
                             load_scorecard_config, milestone_progress, rollup, scorecard)
from rmanalytics.kpi.targets import annual_targets_from

CFG = {
    "peer_group": ["tier1_branch"],
    "dimensions": {
        "business_contribution": {"weight": 0.6, "kpis": {
            "fee_income": {"weight": 0.5, "rule": "ratio", "cap": 1.5},
            "aum_growth": {"weight": 0.5, "rule": "difference", "scale": 0.1, "cap": 1.5}}},
        "risk_compliance": {"weight": 0.4, "kpis": {
            "npl_ratio": {"weight": 1.0, "rule": "ratio", "target": 0.02, "cap": 2.0}}},
    },
    "veto": [{"kpi": "major_breaches", "op": ">", "value": 0, "cap_rating": "needs_improvement",
              "reason": "major compliance breach"}],
    "bands": [{"rating": "excellent", "min_score": 110}, {"rating": "good", "min_score": 100},
              {"rating": "qualified", "min_score": 85}, {"rating": "needs_improvement", "min_score": float("-inf")}],
    "bonus_coefficients": {"excellent": 1.5, "good": 1.2, "qualified": 1.0, "needs_improvement": 0.6},
}

RMS = pd.DataFrame({"rm_id": ["R1", "R2", "R3"], "outlet": ["O1", "O1", "O2"], "sub_branch": ["S1", "S1", "S2"],
                    "tier2_branch": ["T2", "T2", "T2"], "tier1_branch": ["T1", "T1", "T1"], "level": ["junior"] * 3})


def kpis(period="2024Q1", breach=(0, 0, 1)):
    return pd.DataFrame({"rm_id": ["R1", "R2", "R3"], "period": period, "fee_income": [120.0, 80.0, 200.0],
                         "aum_growth": [0.05, 0.0, 0.2], "npl_ratio": [0.01, 0.04, 0.0],
                         "major_breaches": list(breach)})


def targets(period="2024Q1"):
    rows = []
    for r in ("R1", "R2", "R3"):
        rows += [{"unit_id": r, "unit_level": "rm", "period": period, "kpi": "fee_income", "target": 100.0},
                 {"unit_id": r, "unit_level": "rm", "period": period, "kpi": "aum_growth", "target": 0.05}]
    return pd.DataFrame(rows)


def test_scores_rules_veto_rank():
    s = scorecard(kpis(), targets(), CFG, rms=RMS).set_index("rm_id")
    # R1: fee 1.2 -> 120; aum 1 + 0/0.1 -> 100; business 110; npl lower-better ratio 0.02/0.01 = 2 -> 200
    assert s.loc["R1", "score_business_contribution"] == pytest.approx(110.0)
    assert s.loc["R1", "score_risk_compliance"] == pytest.approx(200.0)
    assert s.loc["R1", "total_score"] == pytest.approx(0.6 * 110 + 0.4 * 200)
    # R2: fee 0.8 -> 80; aum 1 - 0.05/0.1 = 0.5 -> 50; npl 0.5 -> 50 -> total 0.6*65 + 0.4*50 = 59
    assert s.loc["R2", "total_score"] == pytest.approx(59.0)
    assert s.loc["R2", "rating"] == "needs_improvement" and s.loc["R2", "veto_reason"] is None
    # R3: fee capped 1.5, aum capped 1.5, npl 0 -> cap 2.0: excellent by score, vetoed by the breach
    assert s.loc["R3", "rating_by_score"] == "excellent"
    assert s.loc["R3", "rating"] == "needs_improvement"
    assert s.loc["R3", "veto_reason"] == "major compliance breach"
    assert s.loc["R3", "bonus_coefficient"] == 0.6
    assert s["peer_rank"].to_dict() == {"R1": 2, "R2": 3, "R3": 1}
    assert (s["peer_group_size"] == 3).all()


def test_config_errors():
    bad = copy.deepcopy(CFG)
    bad["dimensions"]["business_contribution"]["weight"] = 0.5
    with pytest.raises(ValidationError, match="dimension weights must sum to 1"):
        load_scorecard_config(bad)
    bad = copy.deepcopy(CFG)
    bad["dimensions"]["risk_compliance"]["kpis"]["npl_ratio"]["weight"] = 0.9
    with pytest.raises(ValidationError, match="KPI weights must sum to 1"):
        load_scorecard_config(bad)
    bad = copy.deepcopy(CFG)
    bad["dimensions"]["risk_compliance"]["kpis"] = {"npl_rate": {"weight": 1.0}}
    with pytest.raises(ValidationError, match="unknown KPIs \\['npl_rate'\\]"):
        load_scorecard_config(bad)
    bad = copy.deepcopy(CFG)
    bad["dimensions"]["business_contribution"]["kpis"]["aum_growth"].pop("scale")
    with pytest.raises(ValidationError, match="needs a 'scale'"):
        load_scorecard_config(bad)


def test_missing_targets_is_an_error():
    t = targets().iloc[1:]  # R1 fee_income target missing
    with pytest.raises(ValueError, match=r"1 \(rm_id, period, kpi\) combinations have no target.*R1"):
        scorecard(kpis(), t, CFG)


def test_missing_actual_gets_the_kpis_floor_or_an_error():
    """A KPI value that is missing (NaN) scores that KPI's floor (per dimension and KPI), or is an
    error with missing_actual: error."""
    cfg = copy.deepcopy(CFG)
    cfg["dimensions"]["business_contribution"]["kpis"]["fee_income"]["floor"] = 0.3
    cfg["dimensions"]["risk_compliance"]["kpis"]["npl_ratio"]["floor"] = 0.1
    k = kpis()
    k.loc[0, "fee_income"] = float("nan")   # R1
    k.loc[1, "npl_ratio"] = float("nan")    # R2
    p = kpi_points(k, targets(), load_scorecard_config(cfg)).set_index(["rm_id", "kpi"])
    assert p.loc[("R1", "fee_income"), "achievement"] == 0.3 and p.loc[("R1", "fee_income"), "points"] == 30.0
    assert p.loc[("R2", "npl_ratio"), "achievement"] == 0.1 and bool(p.loc[("R2", "npl_ratio"), "missing_actual"])
    assert p["missing_actual"].sum() == 2
    assert p.loc[("R3", "fee_income"), "achievement"] == 1.5  # others as before (capped ratio)
    cfg["missing_actual"] = "error"
    with pytest.raises(ValueError, match="2 KPI values are missing"):
        kpi_points(k, targets(), load_scorecard_config(cfg))


def test_ratio_rule_rejects_nonpositive_target():
    t = targets()
    t.loc[0, "target"] = 0.0
    with pytest.raises(ValueError, match="ratio rule but 1 targets are <= 0"):
        kpi_points(kpis(), t, load_scorecard_config(CFG))


def test_default_config_loads():
    cfg = load_scorecard_config("params/scorecards/default.yaml")
    assert set(cfg.dimensions) == {"business_contribution", "customer_management", "risk_compliance",
                                   "teamwork_growth"}
    assert sum(d.weight for d in cfg.dimensions.values()) == pytest.approx(1.0)


def test_rollup_and_cycles():
    k = pd.concat([kpis("2024Q1", (0, 0, 0)), kpis("2024Q2", (0, 0, 0)), kpis("2024Q4", (0, 0, 0))])
    t = pd.concat([targets("2024Q1"), targets("2024Q2"), targets("2024Q4")])
    s = scorecard(k, t, CFG, rms=RMS)
    roll = rollup(s, RMS)
    o1 = roll[(roll["level"] == "outlet") & (roll["unit"] == "O1") & (roll["period"] == "2024Q1")].iloc[0]
    assert o1["n_rms"] == 2
    assert o1["mean_score"] == pytest.approx(s[(s.rm_id.isin(["R1", "R2"])) & (s.period == "2024Q1")].total_score.mean())
    assert set(roll["level"]) == {"outlet", "sub_branch", "tier2_branch", "tier1_branch"}
    f = cycle_flags(s).set_index(["rm_id", "period"])
    assert bool(f.loc[("R3", "2024Q2"), "two_consecutive_excellent"])
    assert not bool(f.loc[("R3", "2024Q1"), "two_consecutive_excellent"])  # no previous quarter
    assert not bool(f.loc[("R3", "2024Q4"), "two_consecutive_excellent"])  # 2024Q3 missing: not consecutive
    assert bool(f.loc[("R2", "2024Q1"), "needs_improvement"])


def test_domain_target_example_closes():
    """docs/domain.md §3: 10 million a year = 800 thousand a month + sprints (base_share 0.96 closes it)."""
    m = decompose_annual_target(pd.DataFrame({"unit_id": ["R1"], "period": ["2024"], "target": [10_000_000.0]}),
                                base_share=0.96)
    assert m["monthly_base"].iloc[0] == pytest.approx(800_000.0)
    assert m.loc[m["month"] == "2024-03", "sprint"].iloc[0] == pytest.approx(100_000.0)
    assert m["milestone"].sum() == pytest.approx(10_000_000.0)
    assert m["cumulative_milestone"].iloc[-1] == pytest.approx(10_000_000.0)
    actual = pd.DataFrame({"unit_id": "R1", "month": ["2024-01", "2024-02", "2024-03"],
                           "actual": [800_000.0, 800_000.0, 1_000_000.0]})
    p = milestone_progress(m, actual)
    assert len(p) == 3  # only observed months
    assert p["attainment"].iloc[-1] == pytest.approx(2_600_000 / 2_500_000)
    assert p["on_track"].all()
    assert p["quarter_attainment"].iloc[0] == pytest.approx(2_600_000 / 2_500_000)
    assert bank_attainment(p) == pytest.approx(2_600_000 / 2_500_000)
    two = pd.concat([p, p.assign(unit_id="R2", cumulative_actual=p["cumulative_actual"] / 2)])
    assert bank_attainment(two) == pytest.approx(1.5 * 2_600_000 / (2 * 2_500_000))


def test_annual_targets_from_quarters():
    t = pd.DataFrame({"unit_id": "R1", "unit_level": "rm", "period": ["2024Q1", "2024Q2"], "kpi": "fee_income",
                      "target": [1.0, 2.0]})
    a = annual_targets_from(t, "fee_income", "2024")
    assert a["target"].iloc[0] == 3.0 and a["source"].iloc[0] == "sum of quarters"
    with pytest.raises(ValueError, match="no rm targets of 'fee_income' for 2023"):
        annual_targets_from(t, "fee_income", "2023")


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[2].glob("params/scorecards/*.yaml")),
                         ids=lambda p: p.name)
def test_every_committed_scorecard_config_validates(path):
    cfg = load_scorecard_config(path)
    assert cfg is not None


def test_attribution_span():
    periods = ["2024Q2", "2024Q1", "2024Q3", "2024Q1"]
    assert attribution_span(periods) == ("2024Q1", "2024Q3", ["2024Q1", "2024Q2", "2024Q3"])
    assert attribution_span(periods, "2024Q2") == ("2024Q2", "2024Q3", ["2024Q2", "2024Q3"])
    with pytest.raises(ParameterError, match="attribution_base='2023Q4' is not a period"):
        attribution_span(periods, "2023Q4")
    with pytest.raises(ParameterError, match="must come before"):
        attribution_span(periods, "2024Q3", "2024Q1")
