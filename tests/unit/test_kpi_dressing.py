"""Window dressing: the month-end vs daily-average deposit gap finds the synthetic window-dressers."""

from __future__ import annotations

from rmanalytics.kpi import kpi_table
from rmanalytics.kpi.dressing import deposit_definition_gap
from rmanalytics.synth import generate


def test_gap_ranks_the_window_dressers_first():
    bank = generate(1500, 20, seed=5)
    g = deposit_definition_gap(kpi_table(bank.tables, freq="quarter"))
    dressers = set(bank.truth.window_dressing_rms)
    top = g.drop_duplicates("rm_id")["rm_id"].head(len(dressers))
    assert set(top) == dressers
    # a quarter holds one quarter-end month: a 10 % month-end uplift is ~1/3 of that on the quarter
    assert g.loc[g["rm_id"].isin(dressers), "gap"].median() > 0.025
    assert not g.attrs["same_definition"]
