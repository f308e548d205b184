"""Activity change, lifecycle stages and service tiers: hand-computed cases and params rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmanalytics.params.segmentation import LifecycleParams, SegmentationParams, TierParams
from rmanalytics.rfm import activity_change, lifecycle_stages, rfm_table, service_tiers
from rmanalytics.rules import as_rules

END = "2024-12-31"


def tx_from(spec: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(c, pd.Timestamp(d), 10.0) for c, dates in spec.items() for d in dates]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def test_activity_change_hand_computed():
    # recent window (2024-10-02, 2024-12-31]; baseline (2023-10-03, 2024-10-02]
    tx = tx_from({
        "steady": ["2023-06-01", "2024-01-15", "2024-03-15", "2024-05-15", "2024-07-15", "2024-11-15"],  # 4 baseline, 1 recent
        "short": ["2024-08-01", "2024-08-15", "2024-09-01", "2024-12-01"],  # started 2024-08-01: 62 days exposure
        "quiet": ["2023-12-01", "2024-02-01", "2024-04-01"],  # 3 baseline, 0 recent
    })
    a = activity_change(tx, observation_end=END).set_index("customer_id")
    assert a.loc["steady", "recent_transactions"] == 1 and a.loc["steady", "baseline_transactions"] == 4
    assert a.loc["steady", "exposure_days"] == 365
    assert a.loc["steady", "activity_drop"] == pytest.approx(1 - 1 / (4 * 90 / 365))
    assert a.loc["quiet", "activity_drop"] == pytest.approx(1.0)
    # less than min_baseline_days of history: no drop computed
    assert a.loc["short", "exposure_days"] == 62 and np.isnan(a.loc["short", "activity_drop"])
    # an open_date earlier than the first transaction gives more exposure
    b = activity_change(tx, observation_end=END, start_dates=pd.Series({"short": pd.Timestamp("2020-01-01")}))
    b = b.set_index("customer_id")
    assert b.loc["short", "exposure_days"] == 365
    assert b.loc["short", "activity_drop"] == pytest.approx(1 - 1 / (3 * 90 / 365))


def test_lifecycle_stages_default_rules():
    tx = tx_from({
        "brand_new": ["2024-12-30"],            # 1 day: new, onboarding window
        "new": ["2024-10-15"],                  # 77 days
        "growth": ["2024-06-01"],               # 213 days
        "mature": ["2020-01-01", "2024-12-01"],  # > 1 year, no baseline drop computable (1 baseline tx)
        "decline": ["2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-09-01"],
    })
    rfm = rfm_table(tx, observation_end=END)
    act = activity_change(tx, observation_end=END)
    st = lifecycle_stages(rfm, act, observation_end=END, **LifecycleParams().stage_args()).set_index("customer_id")
    assert st["lifecycle_stage"].to_dict() == {"brand_new": "new", "decline": "decline_warning", "growth": "growth",
                                               "mature": "mature", "new": "new"}
    assert st.loc["brand_new", "onboarding"] and not st.loc["new", "onboarding"]
    assert st.loc["new", "tenure_days"] == 77
    # open_date from customers defines tenure
    customers = pd.DataFrame({"customer_id": ["new"], "open_date": [pd.Timestamp("2023-01-01")]})
    st2 = lifecycle_stages(rfm, act, observation_end=END, customers=customers,
                           **LifecycleParams().stage_args()).set_index("customer_id")
    assert st2.loc["new", "lifecycle_stage"] == "mature"


def test_lifecycle_boundaries_are_parameters():
    tx = tx_from({"a": ["2024-10-15"]})  # 77 days
    rfm = rfm_table(tx, observation_end=END)
    act = activity_change(tx, observation_end=END)
    p = LifecycleParams.model_validate({"rules": [{"label": "new", "when": {"tenure_days": [None, 30]}},
                                                  {"label": "growth", "when": {"tenure_days": [31, None]}}],
                                       "onboarding_hours": 24 * 100})
    st = lifecycle_stages(rfm, act, observation_end=END, **p.stage_args())
    assert st["lifecycle_stage"].tolist() == ["growth"] and st["onboarding"].tolist() == [True]


def test_service_tiers_default_rules():
    df = pd.DataFrame({
        "customer_id": list("abcdef"),
        "segment": ["champions", "at_risk", "potential_loyalist", "loyal", "hibernating", "champions"],
        "lifecycle_stage": ["mature", "mature", "mature", "growth", "mature", "decline_warning"],
        "r_score": [5, 1, 4, 4, 1, 5], "f_score": [5, 3, 2, 3, 1, 5], "m_score": [5, 3, 2, 4, 1, 5],
        "fm_score": [5, 3, 2, 4, 1, 5],
        "value": [1e7, 5e6, 1e3, 2e3, 10.0, 2e7],
    })
    t = service_tiers(df, **TierParams().tier_args()).set_index("customer_id")
    assert t["tier"].to_dict() == {"a": "strategic", "b": "attention", "c": "growth", "d": "growth", "e": "basic",
                                   "f": "attention"}
    assert t.loc["f", "value_pct"] == 1.0
    custom = TierParams.model_validate({"rules": [{"label": "vip", "when": {"value": [1e6, None]}}], "default": "rest"})
    assert service_tiers(df, **custom.tier_args())["tier"].tolist() == ["vip", "vip", "rest", "rest", "rest", "vip"]


def test_params_defaults_follow_domain():
    p = SegmentationParams()
    assert p.lifecycle.onboarding_hours == 72 and p.warning.activity_drop == 0.30 and p.warning.silent_months == 3
    assert p.lifecycle.rules[0].when["activity_drop"].min == 0.30
    assert len(as_rules(p.segments.rules)) == 11
    with pytest.raises(Exception, match="must give recency_days, frequency and monetary"):
        SegmentationParams.from_mapping({"scores": {"method": "fixed", "edges": {"recency_days": [1]}}})
    with pytest.raises(Exception, match="needs bins - 1 = 4 values"):
        SegmentationParams.from_mapping({"scores": {"method": "fixed", "edges": {
            "recency_days": [1], "frequency": [1, 2, 3, 4], "monetary": [1, 2, 3, 4]}}})
    with pytest.raises(Exception):
        SegmentationParams.from_mapping({"tiers": {"rules": [{"label": "x", "when": {"a": [2, 1]}}]}})
