"""Synthetic training (known effect, staggered, mandatory for low performers) and balance flows
(daily-average deposits with window dressing, NPL flows)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from rmanalytics.synth import generate, main


def test_training_effect_changes_only_fees_of_trained_rms():
    a = generate(600, 12, seed=7)
    b = generate(600, 12, seed=7, training_effect=0.05)
    for name in a.tables:
        if name not in ("transactions", "kpi_targets"):  # fee targets follow the realised fees
            pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    ta, tb = a.tables["transactions"], b.tables["transactions"]
    pd.testing.assert_frame_equal(ta.drop(columns="fee"), tb.drop(columns="fee"))
    ratio = (tb["fee"] / ta["fee"]).where(ta["fee"] > 0)
    assert set(np.round(ratio.dropna().unique(), 12)) <= {1.0, 1.05}
    assert (ratio.round(12) == 1.05).any() and b.truth.training_effect == 0.05


def test_cli_training_effect_in_truth(tmp_path):
    assert main(["--customers", "300", "--rms", "6", "--seed", "3", "--training-effect", "0.05",
                 "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "truth.json").read_text())["training_effect"] == 0.05
    tr = pd.read_parquet(tmp_path / "training.parquet")
    assert list(tr.columns) == ["rm_id", "course", "start_date", "mandatory", "score"]


def test_window_dressing_and_npl_flows():
    bank = generate(1500, 20, seed=5)
    bal = bank.tables["balances"]
    dressers = set(bank.truth.window_dressing_rms)
    assert len(dressers) == 4
    first_rm = bank.truth.customers.set_index("customer_id")["first_rm_id"]
    d = bal.assign(rm=bal["customer_id"].map(first_rm), qe=bal["snapshot_date"].dt.month % 3 == 0)
    r = d["deposits"] / d["deposits_avg"]
    sel = d["rm"].isin(dressers) & d["qe"] & (d["deposits"] > 0)
    assert np.allclose(r[sel], 1.10)
    other = ~d["rm"].isin(dressers) & (d["deposits"] > 0)
    assert abs(np.log(r[other]).mean()) < 0.005
    # npl_new only when a loan turns non-performing; recovered only while it stays non-performing
    assert (bal.loc[bal["npl_new"] > 0, "npl_new"] == bal.loc[bal["npl_new"] > 0, "npl"]).all()
    assert (bal.loc[bal["npl"] == 0, "recovered"] == 0).all() and (bal["written_off"] == 0).all()
