"""Notebooks 01 and 03 hand transactions (and 01 the per-event relationship tables) to the package
as Parquet paths that DuckDB reads (issue #16). Every function they pass such a path to must give
exactly what it gives for the same table as a pandas frame; money sums must not depend on row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from rmanalytics import loyalty as L
from rmanalytics import rfm, service
from rmanalytics.io import load_tables, write_tables
from rmanalytics.params import get_model
from rmanalytics.window import transaction_date_range

LAZY = ("transactions", "balances", "interactions", "feedback", "holdings")
END = pd.Timestamp("2024-12-31")


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """The same synthetic bank as frames and with the per-event tables as Parquet paths."""
    from rmanalytics.synth import generate

    d = tmp_path_factory.mktemp("lazy_bank")
    write_tables(generate(n_customers=600, n_rms=8, seed=5).tables, d)
    frames = load_tables(d)
    paths = load_tables(d, lazy=LAZY)
    assert all(isinstance(paths[t], str) for t in LAZY)
    return frames, paths


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


def test_rfm_and_btyd_summaries_path_equals_frame(bank):
    frames, paths = bank
    for f in (lambda t: rfm.rfm_table(t, observation_end=END),
              lambda t: rfm.btyd_summary(t, observation_end=END, time_unit_days=7, refunds="exclude"),
              lambda t: rfm.calibration_holdout(t, calibration_end="2024-06-30", observation_end=END,
                                                time_unit_days=7, refunds="exclude")):
        _same(f(frames["transactions"]), f(paths["transactions"]))


def test_money_sums_do_not_depend_on_row_order(bank):
    """Exact (decimal) sums: shuffled rows, and a frame split across DuckDB's threads, give the same bits."""
    tx = bank[0]["transactions"]
    big = pd.concat([tx] * 40, ignore_index=True)  # > one DuckDB row group per thread
    shuffled = big.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for f in (lambda t: rfm.btyd_summary(t, observation_end=END, time_unit_days=7)[["customer_id", "monetary_value"]],
              lambda t: rfm.rfm_table(t, observation_end=END)[["customer_id", "monetary"]],
              lambda t: rfm.calibration_holdout(t, calibration_end="2024-06-30", observation_end=END)[
                  ["customer_id", "monetary_value", "monetary_value_holdout"]]):
        _same(f(big), f(shuffled))
    # and they agree with the plain float sums to rounding
    r = rfm.rfm_table(tx, observation_end=END).set_index("customer_id")["monetary"]
    want = tx[tx["date"] <= END].groupby("customer_id")["amount"].sum()
    np.testing.assert_allclose(r.to_numpy(), want.loc[r.index].to_numpy(), rtol=1e-12)


def test_segment_snapshot_path_equals_frame(bank):
    frames, paths = bank
    args = get_model("01_segmentation")().snapshot_args()
    a = rfm.segment_snapshot(frames["transactions"], observation_end=END, customers=frames["customers"],
                             balances=frames["balances"], quiet=True, **args)
    b = rfm.segment_snapshot(paths["transactions"], observation_end=END, customers=paths["customers"],
                             balances=paths["balances"], quiet=True, **args)
    _same(a, b)
    assert a.attrs["edges"] == b.attrs["edges"]
    sa, _ = rfm.current_segments(frames, observation_end=END, **get_model("03_loyalty_clv")().segmentation_args())
    sb, _ = rfm.current_segments(paths, observation_end=END, **get_model("03_loyalty_clv")().segmentation_args())
    _same(sa, sb)


def test_early_warnings_path_equals_frame(bank):
    frames, paths = bank
    act = rfm.activity_change(frames["transactions"], observation_end=END)
    _same(act, rfm.activity_change(paths["transactions"], observation_end=END))
    latest = rfm.latest_balances(frames["balances"], observation_end=END)
    _same(latest, rfm.latest_balances(paths["balances"], observation_end=END))
    some = rfm.latest_balances(paths["balances"], observation_end=END, columns=("aum", "n_products", "no_such"))
    _same(some, latest[["customer_id", "snapshot_date", "aum", "n_products"]])
    kw = dict(observation_end=END, activity=act, assignments=frames["assignments"], balances_latest=latest,
              customers=frames["customers"])
    a = rfm.early_warnings(frames["transactions"], **kw)
    assert len(a) and a["reason"].str.contains("no_purchase").any()
    _same(a, rfm.early_warnings(paths["transactions"], **kw))


def test_transaction_date_range_path_equals_frame(bank):
    frames, paths = bank
    assert transaction_date_range(frames) == transaction_date_range(paths)


def test_tracking_by_group_path_equals_frame(bank):
    frames, paths = bank
    ch = L.customer_groups(rfm.calibration_holdout(frames["transactions"], calibration_end="2024-06-30",
                                                   observation_end=END, time_unit_days=7), frames["customers"])
    models = L.fit_models(ch, by="customer_type")
    kw = dict(calibration_end="2024-06-30", observation_end=END, time_unit_days=7)
    a = L.tracking_by_group(models, ch, frames["transactions"], "customer_type", **kw)
    _same(a, L.tracking_by_group(models, ch, paths["transactions"], "customer_type", **kw))
    # the engine's cohort filter equals filtering each group's transactions in pandas (the former code)
    tx = frames["transactions"]
    parts = [L.tracking(models[k].bgnbd, g, tx[tx["customer_id"].isin(g["customer_id"])], **kw)
             .set_index(["date", "period"]) for k, g in ch.groupby("customer_type")]
    total = parts[0]
    for p in parts[1:]:
        total = total.add(p, fill_value=0.0)
    _same(a, total.reset_index()[["date", "actual", "predicted", "period"]])


def test_service_rules_path_equals_frame(bank):
    from rmanalytics.engine import portability_problems, record_sql

    frames, paths = bank
    with record_sql() as log:
        a = service.service_summary(paths, as_of=END)
        ra = service.contact_rhythm(paths, rfm.activity_change(paths["transactions"], observation_end=END)
                                    .assign(lifecycle_stage="mature"), as_of=END)
    assert not [q for q in log if portability_problems(q)]
    b = service.service_summary(frames, as_of=END)
    rb = service.contact_rhythm(frames, rfm.activity_change(frames["transactions"], observation_end=END)
                                .assign(lifecycle_stage="mature"), as_of=END)
    assert a["metrics"] == b["metrics"]
    for name in a["tables"]:
        _same(a["tables"][name], b["tables"][name])
    _same(ra, rb)
    assert a["metrics"]["complaints"] > 0 and a["metrics"]["first_contact_customers"] > 0
    # as_of from the data: the last day of transactions / interactions / feedback, paths or frames
    assert service.rules._as_of(paths, None) == service.rules._as_of(frames, None)
    sat = service.customer_satisfaction({**paths, "digital_activity": frames["digital_activity"]}, as_of=END)
    _same(sat, service.customer_satisfaction(frames, as_of=END))
