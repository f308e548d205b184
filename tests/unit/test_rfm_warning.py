"""Early-warning worklist: silent product families, activity drop, primary RM, value at stake."""

from __future__ import annotations

import pandas as pd
import pytest

from rmanalytics.params.segmentation import WarningParams
from rmanalytics.rfm import (activity_change, early_warnings, latest_balances, primary_rm, silent_families,
                             warnings_per_rm)

END = "2024-12-31"


def tx() -> pd.DataFrame:
    rows = [
        ("a", "2024-08-15", 100.0, "wealth"),   # silent since Aug: > 3 months -> warning
        ("a", "2024-12-01", 50.0, "deposit"),
        ("b", "2024-10-15", 100.0, "wealth"),   # bought within 3 months -> fine
        ("c", "2022-01-15", 100.0, "wealth"),   # silent too long (before the 12-month lookback) -> not listed
        ("d", "2024-09-30", 100.0, "wealth"),   # last purchase exactly on the silent start -> warning
        ("e", "2024-11-01", -100.0, "wealth"),  # a refund is not a purchase
        ("e", "2024-06-01", 100.0, "wealth"),
    ]
    for i, m in enumerate(["2024-01-10", "2024-03-10", "2024-05-10", "2024-07-10", "2024-09-10"]):
        rows.append(("f", m, 10.0, "card"))    # active in the baseline, silent recently -> activity drop
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount", "product_family"]).assign(
        date=lambda d: pd.to_datetime(d["date"]))


def test_silent_families():
    s = silent_families(tx(), observation_end=END, silent_months=3, lookback_months=12).set_index("customer_id")
    assert sorted(s.index) == ["a", "d", "e"]
    assert s.loc["a", "months_silent"] == 4 and s.loc["d", "months_silent"] == 3


def test_primary_rm():
    a = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "rm_id": ["R2", "R1", "R1", "R3", "R9"],
                      "start_date": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-01", "2025-01-01", "2020-01-01"]),
                      "end_date": pd.to_datetime([None, None, None, None, "2024-12-31"]),
                      "share": [0.5, 0.5, 1.0, 1.0, 1.0]})
    p = primary_rm(a, on=END).set_index("customer_id")
    assert p["rm_id"].to_dict() == {"a": "R1", "b": "R1"}  # tie -> smallest id; c's ended (exclusive end)


def test_worklist():
    t = tx()
    act = activity_change(t, observation_end=END)
    assign = pd.DataFrame({"customer_id": list("adef"), "rm_id": ["R1", "R2", "R1", "R2"],
                           "start_date": pd.Timestamp("2020-01-01"), "end_date": pd.NaT, "share": 1.0})
    bal = pd.DataFrame({"customer_id": ["a", "a", "d", "f"],
                        "snapshot_date": pd.to_datetime(["2024-11-30", "2024-12-31", "2024-12-31", "2025-01-31"]),
                        "aum": [1.0, 500.0, 900.0, 7.0], "deposits": 0.0, "loans": 0.0, "n_products": 1})
    latest = latest_balances(bal, observation_end=END)
    assert latest.set_index("customer_id")["aum"].to_dict() == {"a": 500.0, "d": 900.0}
    customers = pd.DataFrame({"customer_id": list("adef"), "close_date": pd.to_datetime([None, None, "2024-12-01", None])})
    w = early_warnings(t, observation_end=END, activity=act, assignments=assign, balances_latest=latest,
                       customers=customers, **WarningParams().warning_args())
    assert w["customer_id"].tolist() == ["d", "a", "f"]  # e is closed; sorted by value at stake
    assert w["reason"].tolist() == ["no_purchase:wealth", "no_purchase:wealth", "activity_drop"]
    assert w["value_at_stake"].tolist() == [900.0, 500.0, 0.0]
    assert w["has_balance"].tolist() == [True, True, False]
    assert w["rm_id"].tolist() == ["R2", "R1", "R2"] and w["rank_in_rm"].tolist() == [1, 1, 2]
    per_rm = warnings_per_rm(w)
    assert per_rm.index.tolist() == ["R2", "R1"] and per_rm["customers"].tolist() == [2, 1]
    assert per_rm["value_at_stake"].tolist() == [900.0, 500.0]
    # thresholds are parameters
    w2 = early_warnings(t, observation_end=END, activity=act, **WarningParams(silent_months=5).warning_args())
    assert "d" not in set(w2["customer_id"]) and "a" not in set(w2["customer_id"])


def test_latest_balances_duplicates_rejected():
    bal = pd.DataFrame({"customer_id": ["a", "a"], "snapshot_date": pd.to_datetime(["2024-12-31"] * 2),
                        "aum": [1.0, 2.0]})
    with pytest.raises(ValueError, match="share"):
        latest_balances(bal, observation_end=END)


def test_top_warnings_caps_each_rm_list_by_value():
    from rmanalytics.rfm import top_warnings

    wl = pd.DataFrame({"rm_id": ["R1", "R1", "R1", "R2", None, None],
                       "customer_id": ["a", "b", "c", "d", "e", "f"],
                       "value_at_stake": [30.0, 20.0, 10.0, 25.0, 5.0, 1.0],
                       "rank_in_rm": [1, 2, 3, 1, 1, 2]})
    top = top_warnings(wl, 2)
    assert top["customer_id"].tolist() == ["a", "b", "d", "e", "f"]
    assert top_warnings(wl, 1)["customer_id"].tolist() == ["a", "d", "e"]
    with pytest.raises(ValueError):
        top_warnings(wl, 0)
