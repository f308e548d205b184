"""The book's facts from the optional relationship tables (logins, complaints, NPS, holdings,
maturities, suitability, last contact), computed in the engine: checked against a pandas reference
on the bundled sample (frames and Parquet paths) and on hand-made boundary cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics import book as B
from rmanalytics.io import load_tables

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
D = pd.Timestamp


def reference(t: dict, as_of) -> pd.DataFrame:
    """The documented rules in pandas, one table at a time (the engine's SQL is checked against it)."""
    as_of = pd.Timestamp(as_of).normalize()
    cols = {}
    da = t["digital_activity"]
    m = pd.to_datetime(da["month"])
    recent = da[(m <= as_of) & (m > as_of - pd.DateOffset(months=3))]
    cols["logins_per_month"] = recent.groupby("customer_id")["logins"].sum() / 3.0
    fb = t["feedback"]
    day = pd.to_datetime(fb["opened_at"]).dt.normalize()
    yr = fb[(day <= as_of) & (day > as_of - pd.Timedelta(days=365))]
    cols["complaints_12m"] = yr.groupby("customer_id")["kind"].apply(lambda k: float((k == "complaint").sum()))
    cols["nps_mean"] = yr[(yr["kind"] == "nps") & yr["score"].notna()].groupby("customer_id")["score"].mean()
    ho = t["holdings"]
    held = ho[(ho["start_date"] <= as_of) & (ho["end_date"].isna() | (ho["end_date"] > as_of))]
    cols["n_products_holdings"] = held.groupby("customer_id")["product_id"].nunique().astype(float)
    mat = held[held["maturity_date"] >= as_of]
    cols["next_maturity"] = mat.groupby("customer_id")["maturity_date"].min()
    prisk = held["product_id"].map(t["products"].set_index("product_id")["risk_level"])
    crisk = held["customer_id"].map(t["customers"].set_index("customer_id")["risk_level"])
    cols["suitability_breach"] = (prisk > crisk).groupby(held["customer_id"]).any()
    it = t["interactions"]
    cols["last_contact"] = it[it["timestamp"].dt.normalize() <= as_of].groupby("customer_id")["timestamp"].max()
    ids = sorted(set().union(*(set(s.index) for s in cols.values())))
    return pd.DataFrame({c: s.reindex(ids) for c, s in cols.items()}).rename_axis("customer_id").reset_index()


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["customer_id"]) == list(want["customer_id"])
    for c in want.columns.drop("customer_id"):
        g, w = got[c], want[c]
        if c == "suitability_breach":  # missing = no position held
            g, w = g.astype("boolean"), w.astype("boolean")
        pd.testing.assert_series_equal(g.reset_index(drop=True), w.reset_index(drop=True), check_names=False,
                                       check_dtype=c != "suitability_breach")


@pytest.fixture(scope="module")
def sample():
    return load_tables(SAMPLE)


@pytest.mark.parametrize("shift_days", [0, 45, 200])
def test_sample_relationship_features_equal_the_pandas_reference(sample, shift_days):
    end = sample["transactions"]["date"].max().normalize() - pd.Timedelta(days=shift_days)
    got = B.relationship_features(sample, end)
    assert got.attrs["tables"] == ["digital_activity", "feedback", "holdings", "products", "interactions"]
    _same(got, reference(sample, end))


def test_relationship_features_from_parquet_paths_equal_the_frames(sample):
    end = sample["transactions"]["date"].max().normalize()
    lazy = load_tables(SAMPLE, lazy=("digital_activity", "feedback", "holdings", "interactions", "customers"))
    assert isinstance(lazy["interactions"], (str, Path))
    pd.testing.assert_frame_equal(B.relationship_features(lazy, end), B.relationship_features(sample, end))


def _hand_made():
    customers = pd.DataFrame({"customer_id": ["A", "B", "C"], "risk_level": [2, 4, 3]})
    products = pd.DataFrame({"product_id": ["P1", "P5"], "risk_level": [1, 5]})
    t = {
        "customers": customers, "products": products,
        "digital_activity": pd.DataFrame({  # as_of 2024-05-31: months March, April, May count (Feb 29 is out)
            "customer_id": ["A", "A", "A", "A", "B"],
            "month": [D("2024-02-01"), D("2024-03-01"), D("2024-05-01"), D("2024-06-01"), D("2024-02-01")],
            "logins": [100, 3, 6, 100, 7]}),
        "feedback": pd.DataFrame({
            "customer_id": ["A", "A", "A", "B", "B"],
            "opened_at": [D("2024-05-31 18:00"), D("2023-06-02 08:00"), D("2023-06-01 23:00"),
                          D("2024-01-10"), D("2024-06-01 00:00")],
            "kind": ["complaint", "complaint", "complaint", "nps", "nps"],
            "score": [np.nan, np.nan, np.nan, 9.0, 0.0]}),
        "holdings": pd.DataFrame({
            "customer_id": ["A", "A", "B", "C"],
            "product_id": ["P1", "P5", "P5", "P1"],
            "start_date": [D("2024-01-01"), D("2023-01-01"), D("2024-05-31"), D("2024-06-01")],
            "end_date": [pd.NaT, D("2024-05-31"), pd.NaT, pd.NaT],  # A's P5 ended on the day: not held
            "maturity_date": [D("2024-05-31"), D("2024-07-01"), D("2025-01-01"), D("2024-06-02")]}),
        "interactions": pd.DataFrame({
            "customer_id": ["A", "A", "C"],
            "timestamp": [D("2024-05-31 23:59"), D("2024-06-01 00:00"), D("2024-06-02")]}),
    }
    return t


def test_relationship_rules_at_their_boundaries():
    t = _hand_made()
    r = B.relationship_features(t, "2024-05-31").set_index("customer_id")
    assert r.loc["A", "logins_per_month"] == 3.0 and r.loc["B"].isna()["logins_per_month"]
    # the 365 days ending with as_of (a leap year: 2023-06-02 on), whole days: the day itself in
    assert r.loc["A", "complaints_12m"] == 2.0 and r.loc["B", "complaints_12m"] == 0.0
    assert r.loc["B", "nps_mean"] == 9.0 and np.isnan(r.loc["A", "nps_mean"])
    # A holds P1 only (P5 ended on as_of): one product, maturing on the day, no breach of P5 any more
    assert r.loc["A", "n_products_holdings"] == 1.0 and r.loc["A", "next_maturity"] == D("2024-05-31")
    assert not r.loc["A", "suitability_breach"] and r.loc["B", "suitability_breach"]  # P5 (5) > B's 4
    assert r.loc["B", "next_maturity"] == D("2025-01-01")
    assert r.loc["A", "last_contact"] == D("2024-05-31 23:59")
    assert "C" not in r.index  # C's position and contact start after as_of
    _same(r.reset_index(), reference(t, "2024-05-31"))


def test_add_relationship_fills_what_absence_means():
    t = _hand_made()
    f = pd.DataFrame({"customer_id": ["A", "B", "C"], "x": [1, 2, 3]})
    out = B.add_relationship(f, t, "2024-05-31")
    c = out.set_index("customer_id")
    assert c.loc["C", "complaints_12m"] == 0.0 and c.loc["C", "n_products_holdings"] == 0.0
    assert c["suitability_breach"].dtype == bool and not c.loc["C", "suitability_breach"]
    assert pd.isna(c.loc["C", "logins_per_month"]) and pd.isna(c.loc["C", "last_contact"])
    only = B.add_relationship(pd.DataFrame({"customer_id": ["A", "C"]}), t, "2024-05-31", read=("interactions",))
    assert list(only.columns) == ["customer_id", "last_contact"]
    none = B.add_relationship(pd.DataFrame({"customer_id": ["A"]}), {"customers": t["customers"]}, "2024-05-31")
    assert list(none.columns) == ["customer_id"]


def test_notebook_05_declares_the_relationship_tables():
    from rmanalytics.params import get_model, left_out

    model = get_model("05_rm_book")
    assert {"digital_activity", "feedback", "holdings", "interactions", "products"} <= set(model.tables_optional)
    lines = left_out(model(), {"customers": None})
    assert any(line.startswith("no feedback table") for line in lines)


def test_sample_add_relationship_equals_a_merge_of_the_features_in_any_row_order(sample):
    end = sample["transactions"]["date"].max().normalize()
    feats = B.relationship_features(sample, end)
    ids = sample["customers"]["customer_id"].sample(frac=1.0, random_state=1).reset_index(drop=True)  # unsorted
    got = B.add_relationship(pd.DataFrame({"customer_id": ids}), sample, end)
    want = pd.DataFrame({"customer_id": ids}).merge(feats, on="customer_id", how="left")
    want[["complaints_12m", "n_products_holdings"]] = want[["complaints_12m", "n_products_holdings"]].fillna(0.0)
    want["suitability_breach"] = want["suitability_breach"].astype("boolean").fillna(False).astype(bool)
    pd.testing.assert_frame_equal(got, want)


def test_relationship_sql_follows_the_portable_rules(sample):
    from rmanalytics.engine import portability_problems, record_sql

    end = sample["transactions"]["date"].max().normalize()
    with record_sql() as log:
        B.relationship_features(sample, end)
        B.add_relationship(pd.DataFrame({"customer_id": ["C0000001"]}), sample, end)
    assert len(log) == 8
    assert {q[:80]: portability_problems(q) for q in log if portability_problems(q)} == {}
