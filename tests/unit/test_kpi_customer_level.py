"""kpi.customer_level_measures (one SQL query per part, frames or Parquet paths) against the pandas
implementation it replaced, kept here as the reference: same rows, same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmanalytics.assignments import primary_rm_at
from rmanalytics.contract import VISIT_KINDS
from rmanalytics.engine import record_sql, portability_problems
from rmanalytics.kpi.measures import customer_level_measures, kpi_table, period_label
from tests.unit.test_service import relationship_bank


def reference(tables, freq, *, hnw_aum=1_000_000.0, visits_per_year=4.0, major_risk_gap=2):
    """The pandas customer_level_measures before the SQL version (frames only)."""
    parts = []
    fb = tables.get("feedback")
    if isinstance(fb, pd.DataFrame):
        f = fb[fb["rm_id"].notna()].copy()
        f["period"] = period_label(f["opened_at"], freq).to_numpy()
        comp = f[f["kind"] == "complaint"].groupby(["rm_id", "period"]).size().rename("cl_complaints")
        n = f[f["kind"] == "nps"]
        g = n.groupby(["rm_id", "period"])["score"]
        nps = pd.DataFrame({"cl_nps_responses": g.size(), "cl_nps_promoters": g.apply(lambda x: int((x >= 9).sum())),
                            "cl_nps_detractors": g.apply(lambda x: int((x <= 6).sum()))})
        parts += [comp.to_frame(), nps]
    it, bal, asg = tables.get("interactions"), tables.get("balances"), tables.get("assignments")
    if it is not None and bal is not None and isinstance(asg, pd.DataFrame):
        hnw = bal.loc[bal["aum"] >= hnw_aum, ["customer_id", "snapshot_date"]].copy()
        hnw["snapshot_date"] = pd.to_datetime(hnw["snapshot_date"]).dt.normalize()
        hnw["rm_id"] = primary_rm_at(asg, hnw, "snapshot_date").to_numpy()
        hnw = hnw[hnw["rm_id"].notna()]
        hnw["month"] = hnw["snapshot_date"].dt.to_period("M")
        v = it[it["kind"].isin(VISIT_KINDS)]
        v = v.assign(month=v["timestamp"].dt.to_period("M")).groupby(["customer_id", "rm_id", "month"]).size()
        hnw["visits"] = v.reindex(pd.MultiIndex.from_frame(hnw[["customer_id", "rm_id", "month"]])).fillna(0).to_numpy()
        hnw["required"] = float(visits_per_year) / 12.0
        hnw["period"] = period_label(hnw["month"].dt.start_time, freq).to_numpy()
        pc = hnw.groupby(["rm_id", "customer_id", "period"])[["visits", "required"]].sum()
        pc["covered"] = np.minimum(pc["visits"], pc["required"])
        vc = pc.groupby(["rm_id", "period"])[["required", "covered"]].sum()
        parts.append(vc.rename(columns={"required": "cl_visits_required", "covered": "cl_visits_covered"}))
    if all(isinstance(tables.get(t), pd.DataFrame) for t in ("holdings", "products", "customers", "assignments")):
        h = tables["holdings"][["customer_id", "product_id", "start_date"]]
        h = h.merge(tables["products"][["product_id", "risk_level"]].rename(columns={"risk_level": "p_risk"}),
                    on="product_id", how="left")
        h = h.merge(tables["customers"][["customer_id", "risk_level"]].rename(columns={"risk_level": "c_risk"}),
                    on="customer_id", how="left")
        b = h.assign(risk_gap=h["p_risk"] - h["c_risk"])
        b = b[b["risk_gap"] > 0].assign(major=lambda d: d["risk_gap"] >= int(major_risk_gap))
        b["rm_id"] = primary_rm_at(tables["assignments"], b, "start_date").to_numpy()
        b = b[b["rm_id"].notna()].assign(period=lambda d: period_label(d["start_date"], freq).to_numpy())
        g = b.groupby(["rm_id", "period"])
        parts.append(pd.DataFrame({"suitability_breaches": g.size(), "suitability_major_breaches": g["major"].sum()}))
    if not parts:
        return pd.DataFrame(columns=["rm_id", "period"])
    return pd.concat(parts, axis=1).reset_index().rename(columns={"level_0": "rm_id", "level_1": "period"})


def _same(got, want):
    assert list(got.columns) == list(want.columns)
    key = ["rm_id", "period"]
    g = got.sort_values(key).reset_index(drop=True)
    w = want.sort_values(key).reset_index(drop=True)
    assert len(g) == len(w) > 0
    pd.testing.assert_frame_equal(g[key], w[key])
    for c in got.columns.drop(key):  # counts exactly; the visit sums to 1e-12 (summation order)
        np.testing.assert_allclose(g[c].astype(float), w[c].astype(float), rtol=1e-12, atol=0, err_msg=c)


@pytest.fixture(scope="module")
def sample():
    from rmanalytics.io import load_tables

    names = ["customers", "balances", "assignments", "interactions", "feedback", "holdings", "products"]
    return load_tables("data/sample", tables=names)


@pytest.mark.parametrize("freq", ["month", "quarter", "year"])
def test_sql_equals_the_pandas_reference_on_the_sample(sample, freq):
    with record_sql() as log:
        got = customer_level_measures(sample, freq)
    assert {"cl_complaints", "cl_nps_responses", "cl_visits_required", "suitability_breaches"} <= set(got.columns)
    _same(got, reference(sample, freq))
    assert log and all(not portability_problems(q) for q in log)


def test_parquet_paths_equal_frames(sample, tmp_path):
    """The notebook loads balances, interactions, feedback and holdings lazily (Parquet paths)."""
    lazy = dict(sample)
    for name in ("balances", "interactions", "feedback", "holdings"):
        lazy[name] = str(tmp_path / f"{name}.parquet")
        sample[name].to_parquet(lazy[name], index=False)
    pd.testing.assert_frame_equal(customer_level_measures(lazy, "quarter"), customer_level_measures(sample, "quarter"))


def test_hand_built_bank_and_thresholds():
    t = relationship_bank()
    for kw in ({}, {"hnw_aum": 0.0, "visits_per_year": 24.0, "major_risk_gap": 1}):
        _same(customer_level_measures(t, "quarter", **kw), reference(t, "quarter", **kw))


def test_ties_shares_duplicates_and_missing_values():
    """Primary RM ties (smallest rm_id), a NULL share (last), duplicate snapshot rows (each counted),
    NULL scores / kinds / dates, and an RM-less feedback row, as the pandas reference counts them."""
    D = pd.Timestamp
    asg = pd.DataFrame({"customer_id": ["C1", "C1", "C2", "C2", "C3"], "rm_id": ["R2", "R1", "R1", "R3", "R3"],
                        "start_date": [D("2024-01-01")] * 4 + [D("2024-02-15")],
                        "end_date": [pd.NaT, pd.NaT, D("2024-03-01"), pd.NaT, pd.NaT],
                        "share": [0.5, 0.5, np.nan, 1.0, 1.0]})
    bal = pd.DataFrame({"customer_id": ["C1", "C1", "C2", "C2", "C3", "C3"],
                        "snapshot_date": [D("2024-01-31"), D("2024-01-31"), D("2024-01-31"), D("2024-03-31"),
                                          D("2024-01-31"), D("2024-02-29")],
                        "aum": [2e6, 2e6, 3e6, 3e6, 5e6, np.nan]})
    it = pd.DataFrame({"customer_id": ["C1", "C1", "C2", "C2", None],
                       "rm_id": ["R1", "R1", "R3", "R1", "R1"],
                       "timestamp": [D("2024-01-05 10:00"), D("2024-01-20"), D("2024-01-31 23:00"), D("2024-03-02"),
                                     D("2024-01-02")],
                       "kind": ["visit", "meeting", "visit", "visit", "visit"]})
    fb = pd.DataFrame({"rm_id": ["R1", "R1", "R1", None, "R2", "R2"],
                       "opened_at": [D("2024-01-03"), D("2024-02-03"), pd.NaT, D("2024-01-03"), D("2024-04-01"),
                                     D("2024-04-02")],
                       "kind": ["complaint", "nps", "nps", "nps", "nps", None],
                       "score": [np.nan, 9.0, 10.0, 3.0, np.nan, 5.0]})
    t = {"assignments": asg, "balances": bal, "interactions": it, "feedback": fb}
    dated = dict(t, feedback=fb[fb["opened_at"].notna()])
    for freq in ("month", "quarter", "year"):
        got = customer_level_measures(t, freq)
        _same(got, reference(dated, freq))
        # an undated feedback row is left out (the pandas version turned every label of such a frame
        # into '2024.0Q1.0', so no feedback matched a period at all)
        pd.testing.assert_frame_equal(got, customer_level_measures(dated, freq))


def test_kpi_table_unchanged_with_customer_level_tables_as_paths(sample, tmp_path):
    """kpi_table with the customer-level tables, customers and assignments as Parquet paths (notebook 04)
    equals kpi_table with frames (such paths used to be skipped: feedback, holdings, assignments)."""
    from rmanalytics.io import load_tables

    names = ["customers", "transactions", "balances", "assignments", "rm_activity", "rms", "interactions",
             "feedback", "holdings", "products"]
    frames = load_tables("data/sample", tables=names)
    lazy = load_tables("data/sample", tables=names, lazy=("transactions", "balances", "interactions", "feedback",
                                                          "holdings", "customers", "assignments"))
    assert isinstance(lazy["feedback"], str) and isinstance(lazy["assignments"], str)
    a, b = kpi_table(frames), kpi_table(lazy)
    assert (a["nps_source"] == "customer_level").any() and a["suitability_breaches"].notna().any()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def test_suitability_sql_agrees_with_the_service_rules():
    """The SQL suitability count per RM and period equals service.suitability_breaches (the service
    layer's rows, RM at purchase by primary_rm_at) counted the same way."""
    from rmanalytics import service
    from rmanalytics.synth import generate

    t = generate(n_customers=800, n_rms=12, seed=3).tables
    b = service.suitability_breaches(t)
    b = b[b["rm_id"].notna()].assign(period=lambda d: period_label(d["start_date"], "quarter").to_numpy())
    want = b.groupby(["rm_id", "period"]).size()
    got = customer_level_measures(t, "quarter").dropna(subset=["suitability_breaches"])
    got = got.set_index(["rm_id", "period"])["suitability_breaches"]
    assert len(want) > 0
    pd.testing.assert_series_equal(got.sort_index().astype("int64"), want.sort_index(), check_names=False)
