"""Synthetic relationship data: piecewise hazard inversion, tables, and churn-effect recovery."""

from __future__ import annotations

import numpy as np
import pytest

from rmanalytics.contract import CORE_TABLES, OPTIONAL_TABLES
from rmanalytics.io import load_tables, write_tables
from rmanalytics.schema import check_tables
from rmanalytics.synth.processes import weibull_ph_invert, weibull_ph_invert_steps


def test_steps_inversion_equals_single_switch_and_solves_on_off_steps():
    rng = np.random.default_rng(1)
    n = 500
    E, lin = rng.exponential(size=n), rng.normal(size=n)
    s = np.where(rng.random(n) < 0.5, rng.uniform(0, 5, n), np.inf)
    a = weibull_ph_invert(E, lin, 1.1, 5.5, s, 0.7)
    b = weibull_ph_invert_steps(E, lin, 1.1, 5.5, np.arange(n), s, np.full(n, 0.7))
    np.testing.assert_allclose(a, b, rtol=1e-10)
    # on at t1, off at t2: the cumulative hazard at the solution equals E
    t = np.sort(rng.uniform(0, 4, (n, 2)), axis=1)
    c = weibull_ph_invert_steps(E, lin, 1.1, 5.5, np.repeat(np.arange(n), 2), t.ravel(), np.tile([0.5, -0.5], n))
    H0 = lambda u: (u / 5.5) ** 1.1  # noqa: E731
    t1, t2 = t[:, 0], t[:, 1]
    H = np.exp(lin) * (H0(np.minimum(c, t1)) + np.exp(0.5) * np.clip(H0(np.minimum(c, t2)) - H0(t1), 0, None)
                       + np.clip(H0(c) - H0(np.maximum(c * 0 + t2, t2)), 0, None) * (c > t2))
    np.testing.assert_allclose(H, E, rtol=1e-9)


def test_generated_relationship_tables_validate_and_are_optional(tmp_path):
    from rmanalytics.synth import generate

    bank = generate(n_customers=600, n_rms=12, seed=4)
    assert set(OPTIONAL_TABLES) <= set(bank.tables)
    assert check_tables(bank.tables) == []
    it = bank.tables["interactions"]
    assert it["timestamp"].min() >= np.datetime64("2022-01-01") and it["timestamp"].max() < np.datetime64("2025-01-01")
    # seven-table folder: loads, no optional table appears; full folder: all twelve load
    core = {k: v for k, v in bank.tables.items() if k in CORE_TABLES}
    write_tables(core, tmp_path / "core")
    assert set(load_tables(tmp_path / "core")) == set(CORE_TABLES)
    write_tables(bank.tables, tmp_path / "all", format="csv")
    loaded = load_tables(tmp_path / "all")
    assert set(loaded) == set(CORE_TABLES) | set(OPTIONAL_TABLES) | {"training"}
    assert loaded["products"]["term_days"].isna().sum() == bank.tables["products"]["term_days"].isna().sum()
    # without relationship data the generator emits the seven core tables only
    plain = generate(n_customers=300, n_rms=8, seed=4, relationship=False)
    assert set(plain.tables) - {"training"} == set(CORE_TABLES)  # training is issue 18's optional RM table


def test_lax_rms_contact_less_and_first_contacts_later():
    from rmanalytics import service
    from rmanalytics.synth import generate

    bank = generate(n_customers=3000, seed=7)
    f = service.first_contact_compliance(bank.tables)
    lax = bank.truth.rm_lax
    f["lax"] = f["rm_id"].map(lax)
    rate = f.groupby("lax")["compliant"].mean()
    # P(9 h + Exp(mean) <= 72 h): diligent mean 24 h -> 0.93, lax mean 120 h -> 0.41
    assert rate[False] == pytest.approx(1 - np.exp(-63 / 24), abs=0.04)
    assert rate[True] == pytest.approx(1 - np.exp(-63 / 120), abs=0.08)


def test_churn_model_recovers_contact_and_complaint_effects():
    """Larger bank: the time-varying Cox model recovers the injected log-HRs within 95% intervals.

    Contact lapse, complaints and rm_left from the tables (:func:`relationship_frame`); the behaviour
    link's monthly covariates from the generator (``bank.hazard_covariates``), so every term of the
    true hazard is in the model."""
    from rmanalytics.churn import ChurnModel, relationship_frame, split_monthly, survival_frame
    from rmanalytics.synth import generate

    bank = generate(n_customers=12000, n_rms=60, seed=5)
    f = survival_frame(bank.tables, lookback_days=0)
    f["cross_border"] = (f["scenario"] == "cross_border_ecommerce").astype(int)
    long = relationship_frame(f, bank.tables, lapse_days=bank.truth.contact_lapse_days)
    long = split_monthly(long, bank.hazard_covariates)
    behaviour = bank.truth.closure_behaviour_log_hr
    covs = ["customer_type", "risk_level", "cross_border", "rm_left", "contact_lapsed", "complained", *behaviour]
    m = ChurnModel(covariates=covs, solver="fast").fit(long, "stop", "event", entry_col="start",
                                                        id_col="customer_id")
    hr, rel = bank.truth.closure_log_hr, bank.truth.relationship_log_hr
    truth = {"customer_type[corporate]": hr["corporate"], "risk_level": hr["risk_level"],
             "cross_border": hr["cross_border_ecommerce"], "rm_left": hr["rm_left"],
             "contact_lapsed": rel["contact_lapsed"], "complained": rel["complained"], **behaviour}
    s = m.summary_
    for k, v in truth.items():
        assert s.loc[k, "coef lower 95%"] < v < s.loc[k, "coef upper 95%"], (k, v, s.loc[k].to_dict())


def test_landmark_covariates_use_only_data_before_the_landmark():
    from rmanalytics.churn import survival_frame
    from rmanalytics.synth import generate

    bank = generate(n_customers=800, n_rms=12, seed=9)
    f = survival_frame(bank.tables, lookback_days=90)
    assert {"n_contacts", "days_since_contact", "contact_lapsed", "n_complaints", "complained"} <= set(f.columns)
    # moving every interaction after the landmark leaves the covariates unchanged when they were after it already
    it = bank.tables["interactions"]
    lm = it["customer_id"].map(f.set_index("customer_id")["landmark"])
    after = it[it["timestamp"].dt.normalize() >= lm]
    t2 = dict(bank.tables, interactions=after)
    f2 = survival_frame(t2, lookback_days=90)
    assert (f2["n_contacts"] == 0).all()
    assert (f2["days_since_contact"] == 90).all() and (f2["contact_lapsed"] == 1).all()
    seven = {k: v for k, v in bank.tables.items() if k in CORE_TABLES}
    assert "n_contacts" not in survival_frame(seven, lookback_days=90).columns
