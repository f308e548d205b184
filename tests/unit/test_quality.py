"""Data-quality findings counted on a hand-built bank with known problems."""

import pandas as pd
import pytest

from rmanalytics.quality import QUALITY_COLUMNS, quality_report
from rmanalytics.schema import validate_tables
from tests.conftest import parquet_paths


def _add_rows(df: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    extra = pd.DataFrame(rows)
    for c in df.columns:
        if c in extra:
            extra[c] = extra[c].astype(df[c].dtype)
    return pd.concat([df, extra], ignore_index=True)


@pytest.fixture
def messy_bank(tiny_bank):
    """tiny_bank plus known findings (the tables stay contract-valid)."""
    t = tiny_bank
    tx = t["transactions"]
    D = pd.Timestamp
    t["transactions"] = _add_rows(tx, [
        # zero amount
        dict(customer_id="C003", date=D("2022-05-01"), amount=0.0, product_family="card", channel="atm", fee=0.0),
        # two extra same-day copies of C004's 2022-06-10 insurance payment (timestamps on the same day)
        dict(customer_id="C004", date=D("2022-06-10 09:30"), amount=1500.0, product_family="insurance",
             channel="rm", fee=15.0),
        dict(customer_id="C004", date=D("2022-06-10 17:00"), amount=1500.0, product_family="insurance",
             channel="mobile", fee=15.0),
        # before C003's open_date (2022-03-01)
        dict(customer_id="C003", date=D("2022-02-27"), amount=10.0, product_family="card", channel="atm", fee=0.0),
        # after C002's close_date (2023-06-30), also after observation_end 2023-06-30
        dict(customer_id="C002", date=D("2023-07-02"), amount=5.0, product_family="payment", channel="online",
             fee=0.0),
        # a second refund
        dict(customer_id="0042", date=D("2022-08-10"), amount=-10.0, product_family="deposit", channel="branch",
             fee=0.0),
    ])
    # C005: a customer without transactions and without any RM assignment
    t["customers"] = _add_rows(t["customers"], [dict(
        customer_id="C005", open_date=D("2022-06-01"), close_date=pd.NaT, customer_type="retail", risk_level=3,
        industry=None, scenario=None, branch_id="O1", acquisition_channel="online")])
    # balances: C002 after its close, C003 with two missing months (2022-04, 2022-05)
    t["balances"] = _add_rows(t["balances"], [
        dict(customer_id="C002", snapshot_date=D("2023-07-31"), aum=1.0, deposits=1.0, loans=0.0,
             loans_strategic=0.0, npl=0.0, n_products=1),
        dict(customer_id="C003", snapshot_date=D("2022-06-30"), aum=1.0, deposits=1.0, loans=0.0,
             loans_strategic=0.0, npl=0.0, n_products=1),
    ])
    # an RM without customers, employed through the activity window but without activity rows
    t["rms"] = _add_rows(t["rms"], [dict(
        rm_id="R04", outlet="O2", sub_branch="SB2", tier2_branch="T2A", tier1_branch="T1",
        hire_date=D("2021-11-15"), exit_date=D("2022-03-01"), level="junior")])
    # R03: 2022-02 activity row missing
    act = t["rm_activity"]
    t["rm_activity"] = act[~((act.rm_id == "R03") & (act.period == D("2022-02-01")))].reset_index(drop=True)
    validate_tables(t)
    return t


def test_columns_and_clean_bank(tiny_bank):
    q = quality_report(tiny_bank)
    assert list(q.columns) == QUALITY_COLUMNS
    assert q["finding"].tolist() == ["refunds (negative amounts)"]
    assert q["severity"].tolist() == ["info"]


def test_findings_are_counted(messy_bank):
    before = {k: v.copy(deep=True) for k, v in messy_bank.items()}
    q = quality_report(messy_bank, observation_end="2023-06-30")
    for k, v in messy_bank.items():  # nothing removed or changed
        pd.testing.assert_frame_equal(v, before[k])
    got = dict(zip(q["finding"], q["n_rows"]))
    n_tx = len(messy_bank["transactions"])  # 16
    assert got == {
        "refunds (negative amounts)": 2,
        "zero amounts": 1,
        "same-day duplicates (customer, day, amount, product_family); n_rows = extra copies": 2,
        "transactions after observation_end": 1,
        "transactions before the customer's open_date": 1,
        "transactions after the customer's close_date": 1,
        "customers without transactions": 1,
        "customers without any RM assignment": 1,
        "balance snapshots after the customer's close_date": 1,
        # C003 misses 2022-04, 2022-05; C002 jumps from 2022-02 to 2023-07 (16 missing months)
        "gaps in monthly balance snapshots; n_rows = missing snapshots": 18,
        "RMs without customers (no assignments)": 1,
        # R03 misses 2022-02; R04 (hired 2021-11-15, left 2022-03-01) misses 2022-01 and 2022-02
        "rm_activity months missing while the RM was employed; n_rows = missing months": 3,
    }
    row = q.set_index("finding").loc["refunds (negative amounts)"]
    assert row["share"] == pytest.approx(2 / n_tx)
    assert row["examples"] == [
        {"customer_id": "0042", "date": "2022-08-10", "amount": -10.0, "product_family": "deposit"},
        {"customer_id": "C001", "date": "2022-03-20", "amount": -80.0, "product_family": "wealth"},
    ]
    gaps = q.set_index("finding").loc["gaps in monthly balance snapshots; n_rows = missing snapshots"]
    assert gaps["share"] == pytest.approx(18 / (len(messy_bank["balances"]) + 18))
    assert [(e["customer_id"], e["n_affected"]) for e in gaps["examples"]] == [("C002", 16), ("C003", 2)]
    dup = q.set_index("finding").loc["same-day duplicates (customer, day, amount, product_family); n_rows = extra copies"]
    assert dup["examples"] == [{"customer_id": "C004", "day": "2022-06-10", "amount": 1500.0,
                                "product_family": "insurance", "n_copies": 3, "n_affected": 2}]
    missing = q.set_index("finding").loc[
        "rm_activity months missing while the RM was employed; n_rows = missing months"]
    assert [e["rm_id"] for e in missing["examples"]] == ["R03", "R04"]
    assert set(q["severity"]) <= {"info", "warning"}


def test_observation_end_optional_and_subsets(messy_bank):
    q = quality_report(messy_bank)
    assert "transactions after observation_end" not in set(q["finding"])
    only_tx = quality_report({"transactions": messy_bank["transactions"]})
    assert set(only_tx["table"]) == {"transactions"}


def test_include_zero_lists_every_check(tiny_bank):
    q = quality_report(tiny_bank, observation_end="2030-01-01", include_zero=True)
    assert len(q) >= 15 and (q["n_rows"] >= 0).all()


def test_kpi_target_findings(tiny_bank):
    k = tiny_bank["kpi_targets"]
    k.loc[0, "period"] = "Q1-2022"
    k.loc[1, "unit_id"] = "R99"
    q = quality_report(tiny_bank).set_index("finding")
    assert q.loc["period is not 'YYYY', 'YYYYQn' or 'YYYY-MM'", "n_rows"] == 1
    assert q.loc["targets for rm_ids not in rms", "examples"] == ["R99"]


_as_paths = parquet_paths  # tests/conftest.py


@pytest.mark.parametrize("obs", [None, "2023-06-30"])
def test_same_findings_for_paths_and_frames(messy_bank, tmp_path, obs):
    """Parquet paths (large tables stay in DuckDB) give the same findings table as frames."""
    k = messy_bank["kpi_targets"]
    k.loc[0, "period"] = "Q1-2022"
    k.loc[1, "unit_id"] = "R99"
    ref = quality_report(messy_bank, observation_end=obs, include_zero=True)
    assert (ref["n_rows"] > 0).sum() >= 10
    paths = _as_paths(messy_bank, tmp_path)
    pd.testing.assert_frame_equal(quality_report(paths, observation_end=obs, include_zero=True), ref)
    mixed = {**messy_bank, "transactions": paths["transactions"], "balances": paths["balances"]}
    pd.testing.assert_frame_equal(quality_report(mixed, observation_end=obs, include_zero=True), ref)


def test_same_findings_for_paths_and_frames_on_the_sample(tmp_path):
    """Every finding, the optional relationship tables included (the bundled sample)."""
    from pathlib import Path

    from rmanalytics.io import load_tables

    src = Path(__file__).resolve().parents[2] / "data" / "sample"
    frames = load_tables(src, validate=False)
    paths = _as_paths(frames, tmp_path)
    ref = quality_report(frames, observation_end="2024-06-30", include_zero=True)
    pd.testing.assert_frame_equal(quality_report(paths, observation_end="2024-06-30", include_zero=True), ref)


def test_balance_gaps_and_duplicates_equal_a_plain_pandas_count():
    """The cheap forms of two findings (month-end snapshots counted without a distinct set;
    duplicate candidates found by hash) equal the plain definitions, also with snapshots that are
    not month ends (at midnight or with a time, alone in their month or beside the month end)."""
    import numpy as np

    from rmanalytics.engine import run_sql
    from rmanalytics.quality import sql_balance_gaps, sql_same_day_duplicates

    rng = np.random.default_rng(7)
    ends = pd.date_range("2022-01-31", periods=30, freq="ME")
    rows = []
    for i in range(300):
        months = np.sort(rng.choice(30, size=rng.integers(1, 30), replace=False))
        for k in months:
            d = ends[k]
            r = rng.random()
            if r < 0.05:
                d = d - pd.Timedelta(days=int(rng.integers(1, 20)))  # mid-month instead of the end
            elif r < 0.08:
                rows.append((f"C{i:03d}", d - pd.Timedelta(days=3)))  # a second snapshot in the month
            elif r < 0.1:
                d = d + pd.Timedelta(hours=13)  # month end with a time
            rows.append((f"C{i:03d}", d))
    b = pd.DataFrame(rows, columns=["customer_id", "snapshot_date"]).drop_duplicates()
    m = b["snapshot_date"].dt.year * 12 + b["snapshot_date"].dt.month
    g = b.assign(m=m).groupby("customer_id")["m"].agg(lambda s: s.max() - s.min() + 1 - s.nunique())
    want = g[g > 0].sort_index()
    got = run_sql(sql_balance_gaps(), {"balances": b}).set_index("customer_id")["n_affected"].sort_index()
    assert got.to_dict() == want.to_dict() and len(want) > 50
    assert b["snapshot_date"].ne(b["snapshot_date"].dt.normalize() + pd.offsets.MonthEnd(0)).sum() > 20

    tx = pd.DataFrame({
        "customer_id": rng.choice(["A", "B", "C"], 400), "amount": rng.choice([1.0, 2.0, -0.0, 0.0, 5.5], 400),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 20 * 24, 400), unit="h"),
        "product_family": rng.choice(["card", "loan", None], 400)})
    key = [tx["customer_id"], tx["date"].dt.normalize(), tx["amount"], tx["product_family"].fillna("~")]
    want = tx.groupby(key).size()
    want = int((want[want > 1] - 1).sum())
    got = run_sql(sql_same_day_duplicates(True), {"transactions": tx})
    assert int(got["n_affected"].sum()) == want and want > 50


@pytest.mark.spark
def test_quality_report_on_spark_equals_duckdb(messy_bank, tmp_path):
    pytest.importorskip("pyspark")
    from rmanalytics.spark import java_available, local_session

    if not java_available():
        pytest.skip("no Java runtime: Spark cannot start")
    paths = _as_paths(messy_bank, tmp_path)
    spark = local_session(cores=2, memory="2g", app_name="rmanalytics-quality-tests", log_level="OFF")
    try:
        got = quality_report(paths, observation_end="2023-06-30", include_zero=True, engine="spark")
    finally:
        spark.stop()
    ref = quality_report(paths, observation_end="2023-06-30", include_zero=True)
    pd.testing.assert_frame_equal(got, ref)
