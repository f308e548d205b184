"""Data-overview aggregations (rmanalytics.overview) on small tables with hand-computed answers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

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
