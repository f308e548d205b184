"""Shared pytest fixtures. Matplotlib runs headless in tests.

The suite never touches the user's real mask key: it sets ``RMANALYTICS_MASK_KEY`` to a test
secret and points ``RMANALYTICS_CONFIG_DIR`` at a temporary folder (before any kernel starts, so
notebook kernels inherit both).
"""

import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

D = pd.Timestamp

TEST_MASK_KEY = "rmanalytics-test-suite-secret-0123456789"
os.environ["RMANALYTICS_MASK_KEY"] = TEST_MASK_KEY
os.environ.pop("RMANALYTICS_MASK_KEY_FILE", None)
os.environ["RMANALYTICS_CONFIG_DIR"] = tempfile.mkdtemp(prefix="rmanalytics-test-config-")


def _dates(values):
    return pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[ns]")


def make_tiny_bank() -> dict[str, pd.DataFrame]:
    """A small, hand-built, VALID bank: 5 customers, 3 RMs, all seven contract tables.

    - customer "0042" has a leading zero (ids are strings);
    - C002 is corporate, closed on 2023-06-30, shared 50/50 by R01 and R02 until R02 left on
      2023-01-01, then served by R01 alone;
    - C001 was reassigned from R02 to R01 when R02 left;
    - C004 is shared 0.6 / 0.4 by R03 and R01;
    - one refund (negative amount) in transactions.
    Dtypes are the canonical ones the loaders produce (object ids, datetime64[ns], int64, float64).
    """
    customers = pd.DataFrame({
        "customer_id": ["C001", "C002", "C003", "C004", "0042"],
        "open_date": _dates(["2022-01-10", "2021-06-01", "2022-03-01", "2022-02-01", "2022-05-01"]),
        "close_date": _dates([None, "2023-06-30", None, None, None]),
        "customer_type": ["retail", "corporate", "retail", "corporate", "retail"],
        "risk_level": np.array([2, 4, 1, 5, 3], dtype="int64"),
        "industry": [None, "manufacturing", None, "trade", None],
        "scenario": ["young_family", None, None, "cross_border_ecommerce", None],
        "branch_id": ["O1", "O1", "O2", "O2", "O2"],
        "acquisition_channel": ["branch", "rm_outreach", "online", "referral", "branch"],
    })
    transactions = pd.DataFrame({
        "customer_id": ["C001", "C001", "C001", "C002", "C002", "C003", "C004", "C004", "0042", "0042"],
        "date": _dates(["2022-02-01", "2022-03-15", "2022-03-20", "2021-07-01", "2022-11-30", "2022-04-02",
                        "2022-02-10", "2022-06-10", "2022-05-02", "2022-08-09"]),
        "amount": [120.5, 80.0, -80.0, 50000.0, 12000.25, 300.0, 7000.0, 1500.0, 99.99, 10.0],
        "product_family": ["card", "wealth", "wealth", "loan", "payment", "deposit", "fx", "insurance",
                           "card", "deposit"],
        "channel": ["mobile", "rm", "rm", "branch", "online", "atm", "online", "rm", "mobile", "branch"],
        "fee": [1.2, 0.8, 0.0, 500.0, 12.0, 0.0, 35.0, 15.0, 0.5, 0.0],
    })
    balances = pd.DataFrame({
        "customer_id": ["C001", "C001", "C002", "C002", "C003", "C004", "0042"],
        "snapshot_date": _dates(["2022-01-31", "2022-02-28", "2022-01-31", "2022-02-28", "2022-03-31",
                                 "2022-02-28", "2022-05-31"]),
        "aum": [1000.0, 1100.0, 250000.0, 260000.0, 5000.0, 80000.0, 300.0],
        "deposits": [800.0, 900.0, 200000.0, 210000.0, 5000.0, 60000.0, 300.0],
        "loans": [0.0, 0.0, 1e6, 0.95e6, 0.0, 20000.0, 0.0],
        "loans_strategic": [0.0, 0.0, 4e5, 4e5, 0.0, 0.0, 0.0],
        "npl": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "n_products": np.array([2, 2, 5, 5, 1, 3, 1], dtype="int64"),
    })
    rms = pd.DataFrame({
        "rm_id": ["R01", "R02", "R03"],
        "outlet": ["O1", "O1", "O2"],
        "sub_branch": ["SB1", "SB1", "SB2"],
        "tier2_branch": ["T2A", "T2A", "T2A"],
        "tier1_branch": ["T1", "T1", "T1"],
        "hire_date": _dates(["2020-01-01", "2021-01-01", "2019-05-01"]),
        "exit_date": _dates([None, "2023-01-01", None]),
        "level": ["senior", "junior", "principal"],
    })
    assignments = pd.DataFrame({
        "customer_id": ["C001", "C001", "C002", "C002", "C002", "C003", "C004", "C004", "0042"],
        "rm_id": ["R02", "R01", "R01", "R02", "R01", "R03", "R03", "R01", "R03"],
        "start_date": _dates(["2022-01-10", "2023-01-01", "2021-06-01", "2021-06-01", "2023-01-01",
                              "2022-03-01", "2022-02-01", "2022-02-01", "2022-05-01"]),
        "end_date": _dates(["2023-01-01", None, "2023-01-01", "2023-01-01", None, None, None, None, None]),
        "share": [1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.6, 0.4, 1.0],
    })
    periods = _dates(["2022-01-01", "2022-02-01", "2022-03-01"])
    rm_ids = ["R01", "R02", "R03"]
    n = len(rm_ids) * len(periods)
    rm_activity = pd.DataFrame({
        "rm_id": np.repeat(rm_ids, len(periods)),
        "period": np.tile(periods.to_numpy(), len(rm_ids)),
        "visits": np.arange(n, dtype="int64") + 5,
        "visits_required": np.full(n, 6, dtype="int64"),
        "calls": np.arange(n, dtype="int64") * 3,
        "cross_sell_offers": np.arange(n, dtype="int64") % 4,
        "digital_usage": np.linspace(0.2, 0.9, n),
        "training_score": [80.0, None, 91.5, 70.0, 75.0, 88.0, 60.0, 99.0, 100.0],
        "complaints": np.arange(n, dtype="int64") % 2,
        "nps_responses": np.full(n, 10, dtype="int64"),
        "nps_promoters": np.arange(n, dtype="int64") % 6,
        "nps_detractors": np.full(n, 2, dtype="int64"),
        "compliance_checks": np.full(n, 8, dtype="int64"),
        "compliance_passed": np.full(n, 8, dtype="int64") - np.arange(n, dtype="int64") % 3,
        "compliance_breaches": np.arange(n, dtype="int64") % 3,
        "major_breaches": np.zeros(n, dtype="int64"),
        "alert_response_hours": [4.0, 2.5, None, 12.0, 3.0, 1.0, 0.5, 8.0, 6.0],
        "referrals": np.arange(n, dtype="int64") % 2,
    })
    kpi_targets = pd.DataFrame({
        "unit_id": ["R01", "R01", "R03", "O1"],
        "unit_level": ["rm", "rm", "rm", "outlet"],
        "period": ["2022Q1", "2022", "2022-03", "2022"],
        "kpi": ["aum_growth", "fee_income", "aum_growth", "fee_income"],
        "target": [1e6, 2.5e5, 4e5, 1e7],
    })
    return {
        "customers": customers,
        "transactions": transactions,
        "balances": balances,
        "rms": rms,
        "assignments": assignments,
        "rm_activity": rm_activity,
        "kpi_targets": kpi_targets,
    }


@pytest.fixture
def tiny_bank() -> dict[str, pd.DataFrame]:
    """A fresh copy of the small valid bank (see :func:`make_tiny_bank`); safe to modify."""
    return make_tiny_bank()


def parquet_paths(tables: dict[str, pd.DataFrame], folder) -> dict[str, str]:
    """Write each frame to ``<folder>/<name>.parquet``; the paths, as the lazy loaders hand them out."""
    from pathlib import Path

    Path(folder).mkdir(parents=True, exist_ok=True)
    out = {}
    for name, df in tables.items():
        p = Path(folder) / f"{name}.parquet"
        df.to_parquet(p, index=False)
        out[name] = str(p)
    return out


def sample_churn_tables() -> dict:
    """The bundled sample's tables for the churn functions: customers, assignments and rms as
    frames, transactions, balances, interactions and feedback as Parquet paths (lazy). Notebook 02
    leaves customers and assignments lazy as well (tests/unit/test_churn_lazy.py)."""
    from pathlib import Path

    from rmanalytics.io import load_tables

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    t = load_tables(sample, tables=["customers", "transactions", "balances", "assignments", "rms"],
                    optional=["interactions", "feedback"], validate=False)
    for k in ("transactions", "balances", "interactions", "feedback"):
        t[k] = str(sample / f"{k}.parquet")
    return t


def sample_churn_frames(tables: dict) -> tuple:
    """``(window, day-grid survival frame, its week grid)`` of :func:`sample_churn_tables`, with
    the data's window and a 90-day lookback, as notebook 02 builds them."""
    from rmanalytics import churn
    from rmanalytics.window import analysis_window

    w = analysis_window(tables, None, None)
    day = churn.survival_frame(tables, observation_end=w.end, window_start=w.start, lookback_days=90, time_grid="day")
    return w, day, churn.regrid(day, "week")


# ------------------------------------------------------------------ parallel runs (pytest-xdist)
def pytest_collection_modifyitems(config, items):
    """Group tests for ``pytest -n N --dist loadgroup`` (``make test``): each test file runs on one
    worker, as with ``--dist loadfile``, so its module fixtures are built once; and every file that
    uses the session's notebook chain (``chain_results``) runs on the same worker, so the chain runs
    once. Without xdist the marks do nothing."""
    chain_files = {item.path for item in items if "chain_results" in getattr(item, "fixturenames", ())}
    for item in items:
        group = "notebook-chain" if item.path in chain_files else str(item.path)
        item.add_marker(pytest.mark.xdist_group(group))
