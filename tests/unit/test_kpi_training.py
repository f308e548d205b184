"""Training effectiveness: Callaway & Sant'Anna ATT(g,t) against a hand computation and against
the `differences` package, and recovery of the synthetic bank's known training effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics.errors import DataError
from rmanalytics.kpi import kpi_table
from rmanalytics.kpi.training import callaway_santanna, training_effect, training_panel
from rmanalytics.synth import generate

DID = Path(__file__).resolve().parents[1] / "data" / "did"


def _panel(rows):
    return pd.DataFrame(rows, columns=["rm_id", "t", "y", "cohort"])


def test_att_gt_by_hand():
    # 4 periods; A treated at t=2 (+1.0 from then on), B treated at t=3, C never; anticipation 0
    y = {"A": [0.0, 0.1, 1.3, 1.4], "B": [1.0, 1.0, 1.2, 2.5], "C": [2.0, 2.2, 2.4, 2.5]}
    coh = {"A": 2, "B": 3, "C": -1}
    p = _panel([(u, t, v, coh[u]) for u, ys in y.items() for t, v in enumerate(ys)])
    agt, es, ov = callaway_santanna(p, anticipation=0, n_boot=0)
    a = agt.set_index(["cohort", "period"])["att"]
    # ATT(2,2): A (1.3-0.1) minus not-yet-treated {B, C} mean change ((1.2-1.0)+(2.4-2.2))/2 = 0.2 -> 1.0
    assert a[(2, 2)] == pytest.approx(1.2 - 0.2)
    # ATT(2,3): controls not yet treated at 3: only C -> (1.4-0.1) - (2.5-2.2) = 1.0
    assert a[(2, 3)] == pytest.approx(1.0)
    # ATT(3,3): base 2; controls: C only -> (2.5-1.2) - (2.5-2.4) = 1.2
    assert a[(3, 3)] == pytest.approx(1.2)
    # pre-period ATT(3,0): (1.0-1.2) - mean of {A? no: A treated at 2 <= max(0,2)} C: (2.0-2.4) -> 0.2
    assert a[(3, 0)] == pytest.approx(-0.2 - (-0.4))
    # overall: cohort-size weighted mean of post cells (2,2),(2,3),(3,3): each weight 1
    assert ov["estimate"] == pytest.approx((1.0 + 1.0 + 1.2) / 3)
    assert es.set_index("e").loc[0, "estimate_log"] == pytest.approx((1.0 + 1.2) / 2)
    # never-treated control: ATT(2,2) = 1.2 - 0.2 (C only)
    agt_n, _, _ = callaway_santanna(p, anticipation=0, control="never_treated", n_boot=0)
    assert agt_n.set_index(["cohort", "period"])["att"][(2, 2)] == pytest.approx(1.2 - 0.2)


@pytest.mark.parametrize("a", [0, 1])
def test_att_gt_matches_differences_package(a):
    p = pd.read_csv(DID / "panel_balanced.csv")
    ref = pd.read_csv(DID / f"differences_0.3.0_attgt_universal_nyt_a{a}.csv")
    ref = ref[ref["period"] != ref["base_period"]]
    agt, _, _ = callaway_santanna(p, anticipation=a, n_boot=0)
    m = agt.merge(ref, on=["cohort", "period"], how="outer", validate="1:1", indicator=True)
    assert (m["_merge"] == "both").all()
    assert (m["base"] == m["base_period"]).all()
    np.testing.assert_allclose(m["att_x"], m["att_y"], atol=1e-10)


def test_training_panel_cohorts():
    kpis = pd.DataFrame({"rm_id": ["R1"] * 3 + ["R2"] * 3, "period": ["2024Q1", "2024Q2", "2024Q3"] * 2,
                         "period_start": pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01"] * 2),
                         "period_end": pd.to_datetime(["2024-04-01", "2024-07-01", "2024-10-01"] * 2),
                         "fee_income": [10.0, 0.0, 12.0, 5.0, 6.0, 7.0], "expected_fee": [10.0] * 6})
    tr = pd.DataFrame({"rm_id": ["R1", "R1"], "course": ["a", "b"],
                       "start_date": pd.to_datetime(["2024-05-03", "2024-09-01"]), "mandatory": [True, False],
                       "score": [80.0, 70.0]})
    p = training_panel(kpis, tr)
    assert p.attrs["n_excluded_nonpositive"] == 1  # R1 2024Q2 fee 0 cannot be logged
    assert p.set_index("rm_id")["cohort"].groupby(level=0).first().to_dict() == {"R1": 1, "R2": -1}
    assert p.loc[p["rm_id"] == "R1", "mandatory"].all()
    assert p.loc[p["rm_id"] == "R1", "y"].tolist() == pytest.approx([0.0, np.log(1.2)])


def test_training_table_required():
    with pytest.raises(DataError, match="training"):
        training_effect({"customers": pd.DataFrame()})


@pytest.mark.parametrize("effect", [0.0, 0.05])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recovers_synthetic_training_effect(effect, seed):
    bank = generate(3000, 40, seed=seed, training_effect=effect)
    tr = bank.tables["training"]
    assert tr["mandatory"].any() and (~tr["mandatory"]).any()
    assert tr["start_date"].dt.to_period("Q").nunique() >= 3  # staggered
    kpis = kpi_table(bank.tables, freq="quarter")
    res = training_effect(kpis=kpis, training=tr, n_boot=499, seed=0)
    s = res.summary.iloc[0]
    assert s["lower"] <= effect <= s["upper"], s.to_dict()
    assert s["upper"] - s["lower"] < 0.25
    assert {"estimate", "lower", "upper"} <= set(res.summary.columns) and len(res.summary) == 1
    assert {-1, 0} <= set(res.event_study["e"])
    assert np.isfinite(s["naive_twfe"]) and np.isfinite(s["estimate_base_selection_quarter"])


def test_mandatory_training_goes_to_low_performers():
    bank = generate(3000, 40, seed=5, training_effect=0.0)
    tr = bank.tables["training"]
    skill = bank.truth.rm_skill
    mand = skill[tr.loc[tr["mandatory"], "rm_id"]]
    assert mand.mean() < skill.mean() - 0.5 * skill.std()
