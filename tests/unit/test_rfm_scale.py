"""Faster paths of notebook 01's package calls (issue #16) give exactly what the plain pandas
versions they replaced give: each test keeps that plain version as the reference."""

from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from rmanalytics import rfm
from rmanalytics.io import load_tables, write_tables
from rmanalytics.rfm.warning import _join_signals

END = pd.Timestamp("2024-12-31")


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A synthetic bank as frames and with the per-event tables as Parquet paths."""
    from rmanalytics.synth import generate

    d = tmp_path_factory.mktemp("scale_bank")
    write_tables(generate(n_customers=600, n_rms=8, seed=7).tables, d)
    return load_tables(d), load_tables(d, lazy=("transactions", "balances", "interactions", "feedback", "holdings"))


def _reference_join(sig: pd.DataFrame) -> pd.DataFrame:
    """The per-customer groupby with "; ".join that :func:`_join_signals` replaced."""
    return (sig.groupby("customer_id", sort=True)
            .agg(reason=("reason", "; ".join), n_signals=("reason", "size"), detail=("detail", "; ".join))
            .reset_index())


def test_join_signals_equals_groupby_join():
    sig = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c"],
                        "reason": ["activity_drop", "no_purchase:deposit", "no_purchase:wealth", "activity_drop",
                                   "activity_drop", "no_purchase:wealth"],
                        "detail": list("uvwxyz")})
    got = _join_signals(sig)
    assert_frame_equal(got, _reference_join(sig), check_exact=True)
    assert got["reason"].tolist()[0] == "activity_drop; no_purchase:deposit; no_purchase:wealth"
    assert_frame_equal(_join_signals(sig.iloc[:0]), _reference_join(sig.iloc[:0]), check_exact=True)


def test_early_warnings_several_signals_per_customer(bank):
    frames, paths = bank
    tx = frames["transactions"]
    act = rfm.activity_change(tx, observation_end=END)
    families = sorted(tx["product_family"].dropna().unique())[:3]
    w = rfm.early_warnings(paths["transactions"], observation_end=END, activity=act, families=families,
                           activity_drop=0.1, assignments=frames["assignments"], customers=frames["customers"])
    assert (w["n_signals"] >= 2).any()
    # each customer's reasons in sorted order, joined; the count matches
    parts = w["reason"].str.split("; ")
    assert (parts.map(len) == w["n_signals"]).all()
    assert all(p == sorted(p) for p in parts)
    assert (w["detail"].str.count("; ") == w["n_signals"] - 1).all()
