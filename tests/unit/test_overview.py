"""Data-overview aggregations (rmanalytics.overview) on small tables with hand-computed answers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from rmanalytics import overview


@pytest.fixture
def tables():
    customers = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4"],
        "open_date": pd.to_datetime(["2022-01-01", "2022-05-01", "2023-01-01", "2024-06-01"]),
        "close_date": pd.to_datetime([None, "2023-06-30", None, None]),
        "customer_type": ["retail", "retail", "corporate", "retail"],
        "risk_level": [1, 3, 3, 5],
        "industry": None, "scenario": None, "branch_id": "O1",
    })
    transactions = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2", "C3", "C3"],
        "date": pd.to_datetime(["2024-01-05", "2024-01-31", "2024-01-15", "2024-03-01", "2024-03-02"]),
        "amount": [100.0, -20.0, 50.0, 10.0, 5.0],
        "product_family": "card", "channel": "mobile",
        "fee": [1.0, 0.0, 0.5, 0.25, 0.25],
    })
    balances = pd.DataFrame({
        "customer_id": ["C1", "C3", "C1", "C3"],
        "snapshot_date": pd.to_datetime(["2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29"]),
        "aum": [10.0, 20.0, 11.0, 30.0], "deposits": [5.0, 5, 5, 5], "loans": [0.0, 0, 0, 0],
        "n_products": [1, 2, 1, 3],
    })
    return {"customers": customers, "transactions": transactions, "balances": balances,
            "scratch": pd.DataFrame({"a": [1]})}


def test_table_summary(tables):
    s = overview.table_summary(tables).set_index("table")
    assert list(s.index) == ["customers", "transactions", "balances", "scratch"]  # contract order first
    assert s.loc["customers", "rows"] == 4 and s.loc["transactions", "rows"] == 5
    assert s.loc["transactions", "contract_columns"] == 6 and s.loc["transactions", "extra_columns"] == ""


def test_date_ranges(tables):
    r = overview.date_ranges(tables).set_index(["table", "column"])
    assert r.loc[("transactions", "date"), "min"] == pd.Timestamp("2024-01-05")
    assert r.loc[("transactions", "date"), "max"] == pd.Timestamp("2024-03-02")
    assert r.loc[("customers", "close_date"), "n_missing"] == 3
    assert ("scratch", "a") not in r.index


def test_monthly_transactions(tables):
    m = overview.monthly_transactions(tables["transactions"])
    assert list(m["month"]) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]  # no empty months invented
    assert list(m["n_transactions"]) == [3, 2] and list(m["n_customers"]) == [2, 1]
    assert m["amount"].tolist() == pytest.approx([130.0, 15.0])
    assert list(m["n_refunds"]) == [1, 0] and m["fee"].tolist() == pytest.approx([1.5, 0.5])
    no_fee = overview.monthly_transactions(tables["transactions"].drop(columns="fee"))
    assert no_fee["fee"].isna().all()


def test_monthly_sql_transpiles_to_spark():
    from rmanalytics.engine import transpile

    assert "GROUP BY" in transpile(overview.monthly_transactions_sql()).upper()
    assert "JOIN" in transpile(overview.latest_aum_sql()).upper()


def test_latest_aum(tables):
    a = overview.latest_aum(tables["balances"])
    assert list(a["customer_id"]) == ["C1", "C3"] and a["aum"].tolist() == pytest.approx([11.0, 30.0])
    assert (pd.to_datetime(a["snapshot_date"]) == pd.Timestamp("2024-02-29")).all()


def test_customer_mix(tables):
    mix = overview.customer_mix(tables["customers"]).set_index("customer_type")
    assert mix.loc["retail", "total"] == 3 and mix.loc["retail", "risk_3"] == 1 and mix.loc["corporate", "risk_3"] == 1
    open_at = overview.customer_mix(tables["customers"], "2023-12-31").set_index("customer_type")
    # C2 closed 2023-06-30, C4 opened 2024-06-01: neither open at the end of 2023
    assert open_at.loc["retail", "total"] == 1 and open_at.loc["corporate", "total"] == 1


def test_clipped_counts_left_out():
    shown, left_out = overview.clipped(pd.Series(range(100)), 0.9)
    assert left_out == 10 and shown.max() == 89  # 0.9 quantile of 0..99 is 89.1
    assert overview.clipped(pd.Series([1, 2]), 1.0)[1] == 0


def test_plots_return_figures(tables):
    from matplotlib.figure import Figure

    m = overview.monthly_transactions(tables["transactions"])
    assert isinstance(overview.plot_monthly_transactions(m, "zh"), Figure)
    assert isinstance(overview.plot_distribution(tables["transactions"]["amount"], bins=5), Figure)
    assert isinstance(overview.plot_customer_mix(overview.customer_mix(tables["customers"])), Figure)


# --------------------------------------------------------------------- lazy (Parquet path) inputs
@pytest.fixture(scope="module")
def sample_both(tmp_path_factory):
    """The bundled sample as frames and as Parquet paths (every table lazy)."""
    import shutil
    from pathlib import Path

    from rmanalytics.contract import TABLES
    from rmanalytics.io import load_tables

    src = Path(__file__).resolve().parents[2] / "data" / "sample"
    d = tmp_path_factory.mktemp("sample")
    for f in src.glob("*.parquet"):
        shutil.copy(f, d / f.name)
    frames = load_tables(d, validate=False)
    paths = load_tables(d, validate=False, lazy=list(TABLES))
    assert all(isinstance(v, str) for v in paths.values()) and set(paths) == set(frames)
    return frames, paths


def test_path_inputs_equal_frames(sample_both):
    frames, paths = sample_both
    pd.testing.assert_frame_equal(overview.table_summary(paths), overview.table_summary(frames))
    pd.testing.assert_frame_equal(overview.date_ranges(paths), overview.date_ranges(frames))
    pd.testing.assert_frame_equal(overview.monthly_transactions(paths["transactions"]),
                                  overview.monthly_transactions(frames["transactions"]))
    for end in (None, "2023-06-30"):
        pd.testing.assert_frame_equal(overview.customer_mix(paths["customers"], end),
                                      overview.customer_mix(frames["customers"], end))
    pd.testing.assert_frame_equal(overview.relationship_profile(paths), overview.relationship_profile(frames))
    assert overview.relationship_metrics(paths) == overview.relationship_metrics(frames)
    assert set(overview.relationship_metrics(frames)) == {"contacts_per_customer", "n_complaints"}
    mixed = {**frames, "holdings": paths["holdings"], "feedback": paths["feedback"]}  # frames and paths together
    pd.testing.assert_frame_equal(overview.relationship_profile(mixed), overview.relationship_profile(frames))


def _profile_in_pandas(t: dict) -> pd.DataFrame:
    """Independent reference for relationship_profile: value_counts in pandas."""
    out = []

    def add(table, attribute, s):
        vc = s.astype("object").where(s.notna(), "(missing)").value_counts().sort_index()
        out.extend({"table": table, "attribute": attribute, "value": str(v), "rows": int(n), "share": n / len(s)}
                   for v, n in vc.items())

    p, h, it, fb, d = (t[k] for k in ("products", "holdings", "interactions", "feedback", "digital_activity"))
    add("products", "product_family", p["product_family"])
    add("products", "risk_level", p["risk_level"])
    add("holdings", "product_risk_level", h["product_id"].map(p.set_index("product_id")["risk_level"]))
    add("holdings", "status", pd.Series(np.where(h["end_date"].isna(), "held", "ended"), index=h.index))
    add("holdings", "fixed_term", h["maturity_date"].notna())
    add("interactions", "kind", it["kind"])
    add("interactions", "channel", it["channel"])
    add("feedback", "kind", fb["kind"])
    add("feedback", "complaint_resolved", fb.loc[fb["kind"] == "complaint", "resolved_at"].notna())
    add("digital_activity", "logins_band",
        pd.cut(d["logins"], [-1, 0, 2, 5, 10, np.inf], labels=["0", "1-2", "3-5", "6-10", ">10"]))
    return pd.DataFrame(out, columns=["table", "attribute", "value", "rows", "share"])


def test_relationship_profile_and_metrics_equal_pandas(sample_both):
    frames, paths = sample_both
    pd.testing.assert_frame_equal(overview.relationship_profile(paths), _profile_in_pandas(frames))
    it, fb = frames["interactions"], frames["feedback"]
    assert overview.relationship_metrics(paths) == {
        "contacts_per_customer": len(it) / it["customer_id"].nunique(),
        "n_complaints": int((fb["kind"] == "complaint").sum())}


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("table,column,clip", [("transactions", "amount", 0.99), ("transactions", "amount", 1.0),
                                               ("balances", "aum", 0.9), ("transactions", "fee", 0.75)])
def test_distribution_of_a_path_equals_pandas(sample_both, table, column, clip, portable):
    """Histogram counts, clip and left-out count exactly; describe() statistics and the median to 1e-9
    (pandas' linear interpolation = DuckDB quantile_cont; the portable variant interpolates like numpy)."""
    frames, paths = sample_both
    s = frames[table][column]
    d = overview.distribution(paths[table], column, bins=37, clip_quantile=clip, portable=portable)
    shown, left_out = overview.clipped(s, clip)
    counts, edges = np.histogram(shown, bins=37)
    assert d.left_out == left_out and d.counts.tolist() == counts.tolist()
    np.testing.assert_array_equal(d.edges, edges)
    ref = s.describe()
    assert d.stats.index.tolist() == ref.index.tolist()
    np.testing.assert_allclose(d.stats.to_numpy(), ref.to_numpy(), rtol=1e-9)
    assert d.median == pytest.approx(s.median(), rel=1e-9)
    assert d.share_negative == float((s < 0).mean())
    if clip < 1:
        assert d.cut == pytest.approx(s.quantile(clip), rel=1e-9)
    p = overview.distribution(s, bins=37, clip_quantile=clip)
    assert p.counts.tolist() == d.counts.tolist() and p.left_out == d.left_out


def test_distribution_edge_cases(tmp_path):
    one = pd.DataFrame({"x": [5.0, 5.0, 5.0]})
    one.to_parquet(tmp_path / "one.parquet")
    d = overview.distribution(str(tmp_path / "one.parquet"), "x", bins=4, clip_quantile=0.99)
    ref = np.histogram(one["x"], bins=4)
    assert d.counts.tolist() == ref[0].tolist() and d.left_out == 0
    np.testing.assert_array_equal(d.edges, ref[1])
    nulls = pd.DataFrame({"x": [None, 1.0, -2.0, None]})
    nulls.to_parquet(tmp_path / "nulls.parquet")
    d = overview.distribution(str(tmp_path / "nulls.parquet"), "x", bins=3, clip_quantile=0.5)
    p = overview.distribution(nulls["x"], bins=3, clip_quantile=0.5)
    assert d.counts.tolist() == p.counts.tolist() and d.left_out == p.left_out == 1
    assert d.share_negative == p.share_negative == 0.25
    np.testing.assert_allclose(d.stats.to_numpy(), p.stats.to_numpy(), rtol=1e-12, equal_nan=True)


def test_plot_distribution_draws_precomputed_counts(sample_both):
    frames, paths = sample_both
    d = overview.distribution(paths["transactions"], "amount", bins=20)
    a = overview.plot_distribution(d, money=True)
    b = overview.plot_distribution(frames["transactions"]["amount"], bins=20, money=True)
    ha = [p.get_height() for p in a.axes[0].patches]
    hb = [p.get_height() for p in b.axes[0].patches]
    assert ha == hb and len(ha) == 20
    assert a.axes[0].get_xlabel() == b.axes[0].get_xlabel()


def test_overview_sql_is_portable(sample_both):
    from rmanalytics.engine import portability_problems, record_sql

    _, paths = sample_both
    with record_sql() as log:
        overview.table_summary(paths)
        overview.date_ranges(paths)
        overview.customer_mix(paths["customers"], "2023-06-30")
        overview.relationship_profile(paths)
        overview.relationship_metrics(paths)
        overview.distribution(paths["transactions"], "amount", portable=True)
    bad = {q[:100]: portability_problems(q) for q in log if portability_problems(q)}
    assert not bad, bad


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from rmanalytics.spark import java_available, local_session

    if not java_available():
        pytest.skip("no Java runtime: Spark cannot start")

    session = local_session(cores=2, memory="2g", app_name="rmanalytics-overview-tests", log_level="OFF")
    yield session
    session.stop()


@pytest.mark.spark
def test_overview_of_paths_on_spark_equals_duckdb(sample_both, spark):
    """The overview's SQL on Spark (Parquet paths): the same tables, and the portable quantiles."""
    _, paths = sample_both
    kw = {"engine": "spark"}
    pd.testing.assert_frame_equal(overview.table_summary(paths, **kw), overview.table_summary(paths))
    pd.testing.assert_frame_equal(overview.date_ranges(paths, **kw), overview.date_ranges(paths))
    pd.testing.assert_frame_equal(overview.customer_mix(paths["customers"], "2023-06-30", **kw),
                                  overview.customer_mix(paths["customers"], "2023-06-30"))
    pd.testing.assert_frame_equal(overview.relationship_profile(paths, **kw), overview.relationship_profile(paths))
    assert overview.relationship_metrics(paths, **kw) == overview.relationship_metrics(paths)
    a = overview.distribution(paths["transactions"], "amount", bins=30, **kw)
    b = overview.distribution(paths["transactions"], "amount", bins=30)
    assert a.counts.tolist() == b.counts.tolist() and a.left_out == b.left_out
    np.testing.assert_allclose(a.stats.to_numpy(), b.stats.to_numpy(), rtol=1e-9)
