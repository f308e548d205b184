"""Career stages, within-stage comparison, bottom-x% flag and review follow-through lists."""

from __future__ import annotations

import pandas as pd
import pytest

from rmanalytics.errors import ParameterError
from rmanalytics.kpi.career import career_stage, review_actions, stage_comparison

RMS = pd.DataFrame({"rm_id": [f"R{i}" for i in range(1, 8)],
                    "hire_date": pd.to_datetime(["2024-01-15", "2023-10-01", "2022-06-01", "2022-01-01",
                                                 "2015-01-01", "2018-01-01", "2010-01-01"])})


def test_career_stage_bounds():
    assert career_stage([0.0, 0.99, 1.0, 2.99, 3.0, 10.0]).tolist() == [
        "new", "new", "growing", "growing", "experienced", "experienced"]
    assert career_stage([1.5], bounds=(2.0, 5.0)).tolist() == ["new"]
    with pytest.raises(ParameterError):
        career_stage([1.0], bounds=(3.0, 1.0))


def test_stage_comparison_ranks_within_stage():
    s = pd.DataFrame({"rm_id": RMS["rm_id"], "period": "2024Q4", "total_score": [90, 80, 100, 70, 60, 95, 120.0]})
    out = stage_comparison(s, RMS, bottom_share=0.34, min_one=False).set_index("rm_id")
    # tenure at 2024-12-31: R1 0.96 (new), R2 1.25, R3 2.58, R4 3.0 (experienced: 2022-01-01 -> 2024-12-31 is
    # 1095 days = 2.998 years -> growing)
    assert out.loc["R1", "stage"] == "new" and out.loc["R2", "stage"] == "growing"
    assert out.loc["R4", "stage"] == "growing" and out.loc["R5", "stage"] == "experienced"
    assert out.loc["R4", "tenure_years"] == pytest.approx(1095 / 365.25)
    # growing: R3 100, R2 80, R4 70 -> R4 rank 3 of 3, bottom 34 % -> floor(1.02) = 1 flagged
    assert out.loc["R4", "stage_rank"] == 3 and out.loc["R4", "bottom_flag"]
    assert not out.loc["R2", "bottom_flag"]
    # experienced: R7 120, R6 95, R5 60 -> R5 flagged; new stage has 1 RM: 0.34 -> 0 flagged
    assert out.loc["R5", "bottom_flag"] and not out.loc["R1", "bottom_flag"]
    assert out.loc["R5", "stage_percentile"] == 1.0 and out.loc["R7", "stage_percentile"] == 0.0
    none = stage_comparison(s, RMS, bottom_share=0.0)
    assert not none["bottom_flag"].any()


def test_review_actions_and_training_follow_through():
    sc = pd.DataFrame({
        "rm_id": ["R1", "R1", "R2", "R2", "R3", "R3"],
        "period": ["2024Q1", "2024Q2", "2024Q1", "2024Q2", "2024Q1", "2024Q2"],
        "rating": ["excellent", "excellent", "good", "needs_improvement", "needs_improvement", "qualified"],
    })
    tr = pd.DataFrame({"rm_id": ["R2", "R3"], "course": ["c", "c"],
                       "start_date": pd.to_datetime(["2024-07-10", "2024-12-01"]), "mandatory": [True, True],
                       "score": [80.0, 70.0]})
    out = review_actions(sc, RMS, tr)
    pri = out[out["action"] == "resource_priority"]
    assert pri[["rm_id", "period"]].values.tolist() == [["R1", "2024Q2"]]
    trn = out[out["action"] == "mandatory_training"].set_index(["rm_id", "period"])
    assert set(trn.index) == {("R2", "2024Q2"), ("R3", "2024Q1")}
    assert trn.loc[("R2", "2024Q2"), "training_followed"] is True or trn.loc[("R2", "2024Q2"), "training_followed"]
    assert trn.loc[("R2", "2024Q2"), "training_start"] == pd.Timestamp("2024-07-10")
    assert not trn.loc[("R3", "2024Q1"), "training_followed"]  # course 8 months later: not followed through
    assert trn.loc[("R3", "2024Q1"), "stage"] == "growing"
