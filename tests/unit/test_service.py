"""Service rules on hand-made relationship tables (edge cases) and on the synthetic bank (truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rmanalytics import service
from rmanalytics.errors import DataError
from rmanalytics.schema import check_tables, validate_tables
from tests.conftest import _dates, make_tiny_bank


def relationship_bank() -> dict[str, pd.DataFrame]:
    """The tiny bank plus hand-made products, holdings, interactions, feedback and digital activity.

    Risk levels: C001 2, C002 4, C003 1, C004 5, 0042 3. C001 is served by R02 until 2023-01-01.
    """
    t = make_tiny_bank()
    t["products"] = pd.DataFrame({
        "product_id": ["P1", "P3", "P5"], "product_family": ["deposit", "wealth", "wealth"],
        "risk_level": np.array([1, 3, 5], dtype="int64"), "term_days": pd.array([365, None, 182], dtype="Int64"),
    })
    t["holdings"] = pd.DataFrame({
        "customer_id": ["C001", "C001", "C003", "C004", "0042"],
        "product_id": ["P3", "P1", "P5", "P5", "P3"],
        "start_date": _dates(["2022-06-01", "2022-02-01", "2022-04-01", "2022-03-01", "2022-06-01"]),
        "end_date": _dates([None, None, None, None, None]),
        "amount": [1000.0, 500.0, 2000.0, 9000.0, 100.0],
        "maturity_date": _dates([None, "2023-02-01", "2022-09-30", "2022-08-30", None]),
    })
    t["interactions"] = pd.DataFrame({
        "customer_id": ["C001", "0042", "C004", "C002"],
        "rm_id": ["R02", "R03", "R03", "R01"],
        "timestamp": _dates(["2022-01-13 00:00:00", "2022-05-04 00:00:01", "2022-07-01 10:00:00", "2022-07-20 09:00:00"]),
        "channel": ["phone", "branch", "branch", "customer_site"],
        "kind": ["call", "visit", "meeting", "visit"],
        "outcome": ["reached", None, "sale", "reached"],
    })
    t["feedback"] = pd.DataFrame({
        "customer_id": ["C001", "C002", "C003", "C004", "0042", "C001"],
        "rm_id": ["R02", "R01", "R03", "R03", None, "R02"],
        # 2024-03-01 is a Friday
        "opened_at": _dates(["2022-07-01 10:00:00", "2022-07-01 10:00:00", "2022-07-28 09:00:00", "2022-07-01 09:00:00",
                             "2022-07-02 12:00:00", "2022-08-01 12:00:00"]),
        "kind": ["complaint", "complaint", "complaint", "nps", "survey", "nps"],
        "score": [None, None, None, 9.0, 4.0, 3.0],
        "responded_at": _dates(["2022-07-03 10:00:00", "2022-07-03 10:00:01", None, None, None, None]),
        "resolved_at": _dates(["2022-07-06 15:00:00", "2022-07-07 09:00:00", None, None, None, None]),
    })
    t["digital_activity"] = pd.DataFrame({
        "customer_id": ["C001", "C001", "C003"], "month": _dates(["2022-06-01", "2022-07-01", "2022-07-01"]),
        "logins": np.array([3, 4, 0], dtype="int64"),
    })
    return t


def test_relationship_bank_is_valid_and_seven_tables_still_are():
    validate_tables(relationship_bank())
    validate_tables(make_tiny_bank())


def test_cross_table_rules():
    t = relationship_bank()
    t["holdings"].loc[0, "product_id"] = "PX"
    t["holdings"].loc[2, "start_date"] = pd.Timestamp("2022-02-01")  # C003 opened 2022-03-01
    t["interactions"].loc[0, "rm_id"] = "R99"
    t["feedback"].loc[3, "score"] = 9.5
    t["feedback"].loc[0, "score"] = 2.0
    t["feedback"].loc[1, "resolved_at"] = pd.Timestamp("2022-06-01")
    t["digital_activity"].loc[0, "customer_id"] = "C999"
    rules = {(f.table, f.rule) for f in check_tables(t)}
    assert {("holdings", "unknown_product"), ("holdings", "before_open"),
            ("interactions", "unknown_rm"), ("feedback", "score_by_kind"), ("feedback", "end_before_start"),
            ("digital_activity", "unknown_customer")} <= rules
    t1 = relationship_bank()
    t1["holdings"].loc[1, "maturity_date"] = pd.Timestamp("2022-01-01")
    assert [f.rule for f in check_tables(t1)] == ["maturity_before_start"]
    t2 = relationship_bank()
    del t2["products"]
    f = [f for f in check_tables(t2) if f.rule == "unknown_product"]
    assert f and f[0].n_rows == 5


def test_suitability_breaches_exact_rows_and_rm_at_purchase():
    t = relationship_bank()
    b = service.suitability_breaches(t)
    assert b[["customer_id", "product_id", "customer_risk_level", "product_risk_level", "rm_id", "risk_gap",
              "major"]].values.tolist() == [
        ["C001", "P3", 2, 3, "R02", 1, False],
        ["C003", "P5", 1, 5, "R03", 4, True],
    ]  # C004 (5 vs 5) and 0042 (3 vs 3) are suitable: equal levels are allowed
    assert b["start_date"].tolist() == [pd.Timestamp("2022-06-01"), pd.Timestamp("2022-04-01")]
    assert len(service.suitability_breaches(t, as_of="2022-05-31")) == 1
    assert service.suitability_breaches(t, major_risk_gap=1)["major"].all()


def test_first_contact_exactly_72_hours_is_on_time():
    t = relationship_bank()
    f = service.first_contact_compliance(t, since="2022-01-01", as_of="2022-12-31").set_index("customer_id")
    assert f.loc["C001", "hours_to_first_contact"] == 72.0
    assert f.loc["C001", "status"] == "on_time" and f.loc["C001", "compliant"]
    assert f.loc["0042", "status"] == "late"  # one second after 72 h
    assert f.loc["C003", "status"] == "missed"
    assert f.loc["C001", "rm_id"] == "R02"
    assert "C002" not in f.index  # opened before `since`
    f = service.first_contact_compliance(t, since="2022-01-01", as_of="2022-03-02").set_index("customer_id")
    assert f.loc["C003", "status"] == "pending"  # opened 2022-03-01, deadline after as_of
    assert service.first_contact_compliance(t, since="2022-01-01", first_contact_hours=71.9,
                                            as_of="2022-12-31").set_index("customer_id").loc["C001", "status"] == "late"


def test_complaint_handling_weekend_and_48_hours():
    fb = relationship_bank()["feedback"]
    # C001: opened Fri 2022-07-01, resolved Wed 07-06 -> Fri, Mon, Tue = 3 working days; response at 48 h
    # C002: opened Fri 2022-07-01, resolved Thu 07-07 -> 4 working days; response 48 h + 1 s
    h = service.complaint_handling(fb, as_of="2022-07-29").set_index("customer_id")
    assert h.loc["C001", "workdays_to_resolve"] == 3 and h.loc["C001", "resolved_in_time"]
    assert h.loc["C002", "workdays_to_resolve"] == 4 and not h.loc["C002", "resolved_in_time"]
    assert h.loc["C001", "responded_in_time"] and not h.loc["C002", "responded_in_time"]
    assert h.loc["C001", "response_hours"] == 48.0
    # C003 opened Thu 07-28, unresolved: pending on 07-29, late once Tue 08-02 is over
    assert pd.isna(h.loc["C003", "resolved_in_time"]) and pd.isna(h.loc["C003", "responded_in_time"])
    # as_of is a whole day: data up to its end. Deadline = end of Tue 08-02 (Thu, Fri, Mon = 3 working days
    # counted before the resolution day)
    h2 = service.complaint_handling(fb, as_of="2022-08-01").set_index("customer_id")
    assert pd.isna(h2.loc["C003", "resolved_in_time"])
    h3 = service.complaint_handling(fb, as_of="2022-08-02").set_index("customer_id")
    assert h3.loc["C003", "resolved_in_time"] == False  # noqa: E712
    # a holiday on Monday 07-04 makes C002's resolution 3 working days
    hh = service.complaint_handling(fb, as_of="2022-07-29", holidays=["2022-07-04"]).set_index("customer_id")
    assert hh.loc["C002", "workdays_to_resolve"] == 3 and hh.loc["C002", "resolved_in_time"]
    k = service.complaint_kpis(h, by=None)
    assert k.loc[0, "n_complaints"] == 3 and k.loc[0, "n_open"] == 1
    assert k.loc[0, "share_resolved_in_time"] == 0.5 and not k.loc[0, "meets_target"]
    assert service.complaint_kpis(h, by=None, target_share=0.5).loc[0, "meets_target"]


def test_contact_rhythm_by_stage():
    t = relationship_bank()
    stages = pd.DataFrame({"customer_id": ["C004", "C002", "C003", "0042"],
                           "lifecycle_stage": ["growth", "mature", "decline_warning", "other"]})
    r = service.contact_rhythm(t, stages, as_of="2022-08-10").set_index("customer_id")
    # C004 last contact 2022-07-01: growth due 07-31, 10 days overdue
    assert r.loc["C004", "next_due"] == pd.Timestamp("2022-07-31") and r.loc["C004", "overdue_days"] == 10
    # C002 mature, contacted 07-20: due 10-19, not overdue
    assert r.loc["C002", "next_due"] == pd.Timestamp("2022-10-19") and not r.loc["C002", "overdue"]
    # C003 decline warning, never contacted: due at once from the first contact record day (2022-01-13)
    assert r.loc["C003", "next_due"] == pd.Timestamp("2022-03-01") and r.loc["C003", "overdue"]
    assert pd.isna(r.loc["0042", "next_due"]) and not r.loc["0042", "overdue"]


def test_maturities_and_satisfaction():
    t = relationship_bank()
    m = service.upcoming_maturities(t, as_of="2022-08-15", horizon_days=60)
    assert m[["customer_id", "maturity_date", "contact_due"]].values.tolist() == [
        ["C004", pd.Timestamp("2022-08-30"), pd.Timestamp("2022-07-30")],
        ["C003", pd.Timestamp("2022-09-30"), pd.Timestamp("2022-08-30")]]
    assert m["contact_overdue"].tolist() == [True, False]
    s = service.customer_satisfaction(t, as_of="2022-08-31").set_index("customer_id")
    assert s.loc["C001", "n_complaints"] == 1 and s.loc["C001", "nps_class"] == "detractor"
    assert s.loc["C004", "nps_class"] == "promoter" and s.loc["0042", "mean_survey"] == 4.0
    assert s.loc["C001", "logins"] == 7
    assert service.nps_score(pd.Series([10, 9, 7, 3])) == 25.0


def test_hnw_visit_coverage():
    t = relationship_bank()
    h = service.hnw_visit_coverage(t, as_of="2022-08-01", hnw_aum=50_000.0, visits_per_year=2)
    # C002 (AUM 260000, closed 2023) and C004 (80000) are HNW; C002 had one visit, C004 one meeting
    assert h["customer_id"].tolist() == ["C002", "C004"]
    assert h["visits"].tolist() == [1, 1] and not h["compliant"].any()
    r = service.visit_coverage_by_rm(h)
    assert r.set_index("rm_id").loc["R03", "visit_coverage"] == 0.5


def test_missing_tables_raise_data_error():
    with pytest.raises(DataError, match="holdings"):
        service.suitability_breaches(make_tiny_bank())


def test_synth_suitability_breaches_match_truth():
    from rmanalytics.synth import generate

    bank = generate(n_customers=4000, seed=11)
    b = service.suitability_breaches(bank.tables)
    s = bank.truth.suitability
    assert len(b) == s["n_breaches"]  # exactly the injected breaches
    lo, hi = stats.binomtest(s["n_breaches"], s["n_eligible"]).proportion_ci(0.99)
    assert lo < bank.truth.suitability_breach_share < hi
    summ = service.service_summary(bank.tables)
    assert summ["metrics"]["suitability_breaches"] == len(b)


def test_kpi_table_uses_customer_level_data_when_present_and_says_so():
    from rmanalytics import kpi

    t = relationship_bank()
    k = kpi.kpi_table(t, freq="quarter").set_index(["rm_id", "period"])
    # NPS from feedback: R03's only Q3 answer is a 9 (promoter), R02's a 3 (detractor)
    assert k.loc[("R03", "2022Q3"), "nps"] == 100.0 and k.loc[("R03", "2022Q3"), "nps_source"] == "customer_level"
    assert k.loc[("R02", "2022Q3"), "nps"] == -100.0
    # complaints per 100 credited customers from feedback rows of the RM
    r = k.loc[("R01", "2022Q3")]
    assert r["complaint_rate_source"] == "customer_level"
    assert r["complaint_rate"] == pytest.approx(100.0 * 1 / r["customers_credited"])
    # Q1 has no customer-level NPS answers: RM aggregates are kept, and the source says so
    assert k.loc[("R01", "2022Q1"), "nps_source"] == "rm_activity"
    # suitability: C003's R5 product (gap 4, major) bought 2022-04-01 via R03; C001's gap-1 breach via R02
    assert k.loc[("R03", "2022Q2"), "suitability_major_breaches"] == 1
    assert k.loc[("R02", "2022Q2"), ["suitability_breaches", "suitability_major_breaches"]].tolist() == [1, 0]
    seven = kpi.kpi_table(make_tiny_bank(), freq="quarter")
    assert set(seven["nps_source"]) == {"rm_activity"} and seven["suitability_breaches"].isna().all()
    # the default scorecard's veto fires on the major suitability breach
    from pathlib import Path

    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "params" / "scorecards" / "default.yaml").read_text())
    # the default veto rules with one KPI that has a standard target (the tiny bank has few targets)
    cfg["dimensions"] = {"risk_compliance": {"weight": 1.0, "kpis": {
        "npl_ratio": {"weight": 1.0, "rule": "difference", "scale": 0.05, "target": 0.01, "cap": 1.3, "floor": 0.0}}}}
    sc = kpi.scorecard(k.reset_index(), t["kpi_targets"], cfg).set_index(["rm_id", "period"])
    assert sc.loc[("R03", "2022Q2"), "veto_reason"] == "major suitability breach"
    assert sc.loc[("R03", "2022Q2"), "rating"] == "needs_improvement"
    assert pd.isna(sc.loc[("R02", "2022Q2"), "veto_reason"])


def test_quality_findings_on_relationship_tables():
    from rmanalytics.engine import portability_problems, record_sql
    from rmanalytics.quality import quality_report

    t = relationship_bank()
    t["interactions"].loc[3, "timestamp"] = pd.Timestamp("2023-07-01 10:00")  # C002 closed 2023-06-30
    t["interactions"].loc[1, "timestamp"] = pd.Timestamp("2022-04-20 10:00")  # 0042 opens 2022-05-01
    t["holdings"].loc[4, "start_date"] = pd.Timestamp("2022-05-01")
    t["digital_activity"].loc[2, "month"] = pd.Timestamp("2022-07-15")
    with record_sql() as log:
        q = quality_report(t).set_index("finding")
    assert q.loc["contacts on or after the customer's close_date", "n_rows"] == 1
    assert q.loc["contacts before the customer's open_date (prospecting)", "examples"][0]["customer_id"] == "0042"
    assert q.loc["month is not the first day of a month", "n_rows"] == 1
    assert "holdings opened on or after the customer's close_date" not in q.index
    assert not [x for x in log if portability_problems(x)]
    assert "contacts on or after the customer's close_date" not in set(quality_report(make_tiny_bank())["finding"])


def test_kpi_and_service_agree_on_rm_at_and_breaches():
    """kpi keeps its own copy of the suitability gap (sibling layers): same answers; both take the
    RM at a date from the one shared rule, rmanalytics.assignments.primary_rm_at."""
    from rmanalytics.assignments import primary_rm_at
    from rmanalytics.kpi import measures
    from rmanalytics.synth import generate

    t = generate(n_customers=800, n_rms=12, seed=3).tables
    b = service.suitability_breaches(t)
    g = measures._suitability_gaps(t)
    g = g[g["risk_gap"] > 0].sort_values(["customer_id", "start_date", "product_id"]).reset_index(drop=True)
    assert len(g) == len(b) and (g["customer_id"] == b["customer_id"]).all()
    keys = t["holdings"].head(300)
    assert measures.primary_rm_at is primary_rm_at and service.rm_at is primary_rm_at
    pd.testing.assert_series_equal(measures.primary_rm_at(t["assignments"], keys, "start_date"),
                                   service.rm_at(t["assignments"], keys, "start_date"), check_names=False)
