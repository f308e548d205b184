"""Audit of the early-warning rules: metrics by hand, the seeds' rule reproduced, and the signal
found with the synthetic bank's behaviour link and absent without it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmanalytics.churn import audit
from rmanalytics.churn.plots import plot_warning_tradeoff
from rmanalytics.io import load_tables
from rmanalytics.rfm.warning import silent_families
from rmanalytics.synth import generate

SAMPLE = "data/sample"
AS_OF = "2024-06-30"


def test_score_alerts_by_hand():
    idx = list("abcdefghij")
    alerted = pd.Series([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], index=idx).astype(bool)
    churned = pd.Series([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], index=idx).astype(bool)
    value = pd.Series([100.0, 5, 5, 300, 1, 1, 1, 1, 1, 1], index=idx)
    eligible = pd.Series([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], index=idx).astype(bool)
    r = audit.score_alerts(alerted, churned, value, eligible)
    assert (r["n_alerts"], r["n_churned"], r["true_alerts"]) == (3, 2, 1)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(0.5)
    assert r["base_rate"] == pytest.approx(0.2) and r["lift"] == pytest.approx((1 / 3) / 0.2)
    assert r["value_caught_share"] == pytest.approx(100 / 400)
    assert r["base_rate_eligible"] == pytest.approx(0.4) and r["lift_eligible"] == pytest.approx((1 / 3) / 0.4)
    # Wilson interval of 1/3 at 95%
    z = 1.959963984540054
    c = (1 / 3 + z**2 / 6) / (1 + z**2 / 3)
    h = z * np.sqrt((1 / 3) * (2 / 3) / 3 + z**2 / 36) / (1 + z**2 / 3)
    assert r["lift_lower"] == pytest.approx((c - h) / 0.2) and r["lift_upper"] == pytest.approx((c + h) / 0.2)


def test_rules_match_the_warning_worklist_and_hold_out():
    t = load_tables(SAMPLE)
    flags = audit.rule_flags(t, AS_OF).set_index("customer_id")
    a = audit.silent_alert(flags["last_purchase:wealth"], AS_OF, 3, 12)
    ref = silent_families(t["transactions"], observation_end=AS_OF, families=["wealth"], silent_months=3,
                          lookback_months=12)
    assert set(a.index[a]) == set(ref["customer_id"])
    tab = audit.warning_audit(t, AS_OF)
    pop = audit.customers_at(t, AS_OF, [90, 180])
    c = t["customers"].set_index("customer_id")
    # scored: open at the end of as_of; outcome: closure in (as_of, as_of + h]
    assert (c.loc[pop["customer_id"], "open_date"] <= AS_OF).all()
    cd = c.loc[pop["customer_id"], "close_date"]
    assert (cd.isna() | (cd > AS_OF)).all()
    r = tab[(tab["rule"] == "no_purchase:wealth") & (tab["horizon_days"] == 180)].iloc[0]
    assert r["n_alerts"] == int(a.loc[pop["customer_id"]].sum())
    assert r["n_churned"] == int((cd <= pd.Timestamp(AS_OF) + pd.Timedelta(days=180)).sum())
    assert set(tab["rule"]) == {"no_purchase:wealth", "activity_drop", "any_rule"}


@pytest.fixture(scope="module")
def audits():
    out = {}
    for link in (0.0, 1.0):
        t = generate(n_customers=20000, n_rms=40, seed=31, behaviour_link=link).tables
        out[link] = audit.warning_audit(t, AS_OF).set_index(["horizon_days", "rule"])
    return out


def test_no_link_no_signal(audits):
    """behaviour_link = 0: closure is independent of behaviour, every rule's lift is 1 within noise."""
    tab = audits[0.0]
    for (h, rule), r in tab.iterrows():
        assert r["lift_eligible_lower"] < 1 < r["lift_eligible_upper"], (h, rule, r["lift_eligible"])
        assert r["lift_lower"] < 1 < r["lift_upper"], (h, rule, r["lift"])


def test_default_link_signal_found(audits):
    """Default link: the rules' alerts close more often than the customers they can judge."""
    tab = audits[1.0]
    for rule in ("no_purchase:wealth", "activity_drop", "any_rule"):
        r = tab.loc[(180, rule)]
        assert r["lift_eligible_lower"] > 1.0, (rule, r["lift_eligible"])
    assert tab.loc[(180, "activity_drop"), "lift_eligible"] > 1.3


def test_model_top_k_and_tradeoff_on_sample():
    t = load_tables(SAMPLE)
    s = audit.holdout_scores(t, AS_OF, covariates=["customer_type", "risk_level", "log_aum", "n_products"],
                             window_start="2022-01-01")
    tab = audit.warning_audit(t, AS_OF, scores=s)
    m = tab[tab["rule"] == "churn_model_top_k"].set_index(["horizon_days", "matched_rule"])
    rules = tab[tab["rule"] != "churn_model_top_k"].set_index(["horizon_days", "rule"])
    assert (m["n_alerts"] == rules["n_alerts"].reindex(m.index)).all()  # same alert volume
    assert (m["lift_lower"] > 1).all()  # the model with behaviour covariates finds the signal
    curve = audit.warning_tradeoff(t, AS_OF, horizon_days=180)
    assert len(curve) == 12 and curve.groupby("rule")["n_alerts"].apply(lambda x: x.is_monotonic_decreasing).all()
    fig = plot_warning_tradeoff(curve, current={"no_purchase:wealth": 3, "activity_drop": 0.3})
    assert fig._suptitle.get_text() and len(fig.axes) == 4
