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


def _snapshot_args(**over):
    from rmanalytics.params import get_model

    return {**get_model("01_segmentation")().snapshot_args(), **over}


@pytest.mark.parametrize("over", [{}, {"refunds": "exclude"}, {"frequency": "days"}])
@pytest.mark.parametrize("lazy", [False, True])
def test_shared_snapshots_equal_separate_snapshots(bank, over, lazy):
    """segment_snapshots (one scan for both dates) == segment_snapshot per date, column for column."""
    tables = bank[1] if lazy else bank[0]
    ends = [END, END - pd.Timedelta(days=90), END - pd.Timedelta(days=400)]
    args = _snapshot_args(**over)
    shared = rfm.segment_snapshots(tables["transactions"], observation_ends=ends, customers=tables["customers"],
                                   balances=tables["balances"], quiet=True, **args)
    assert len(shared) == len(ends)
    for e, got in zip(ends, shared):
        want = rfm.segment_snapshot(tables["transactions"], observation_end=e, customers=tables["customers"],
                                    balances=tables["balances"], quiet=True, **args)
        assert_frame_equal(got, want, check_exact=True)
        assert got.attrs == want.attrs
    assert len(shared[0]) > len(shared[2])  # the dates differ, so do the customers


def test_shared_snapshots_without_balances_or_customers(bank):
    tx = bank[0]["transactions"]
    ends = [END, END - pd.Timedelta(days=30)]
    args = _snapshot_args()
    for got, e in zip(rfm.segment_snapshots(tx, observation_ends=ends, quiet=True, **args), ends):
        assert_frame_equal(got, rfm.segment_snapshot(tx, observation_end=e, quiet=True, **args), check_exact=True)
    assert (got["tier"] == "not_tiered").all()


def test_shared_snapshots_raise_like_one_snapshot(bank):
    from rmanalytics.errors import ParameterError

    with pytest.raises(ParameterError, match="before all transactions"):
        rfm.segment_snapshots(bank[1]["transactions"], observation_ends=[END, "1990-01-01"], **_snapshot_args())


@pytest.mark.parametrize("lazy", [False, True])
def test_latest_balances_many_equals_latest_balances(bank, lazy):
    bal = (bank[1] if lazy else bank[0])["balances"]
    ends = [END, END - pd.Timedelta(days=45), pd.Timestamp("2019-01-01")]
    cols = ("aum", "n_products", "no_such")
    for e, got in zip(ends, rfm.latest_balances_many(bal, observation_ends=ends, columns=cols)):
        assert_frame_equal(got, rfm.latest_balances(bal, observation_end=e, columns=cols), check_exact=True)


def test_latest_balances_many_rejects_duplicates():
    bal = pd.DataFrame({"customer_id": ["a", "a", "b"], "snapshot_date": pd.to_datetime(["2024-12-31"] * 2 + ["2024-11-30"]),
                        "aum": [1.0, 2.0, 3.0]})
    ok, = rfm.latest_balances_many(bal, observation_ends=["2024-12-15"], columns=("aum",))
    assert ok["customer_id"].tolist() == ["b"]
    with pytest.raises(ValueError, match="share"):
        rfm.latest_balances_many(bal, observation_ends=["2024-12-15", END], columns=("aum",))


def test_worklist_value_at_stake_from_the_snapshot(bank):
    """Notebook 01 takes the value at stake from the snapshot's aum (every listed customer is in
    the snapshot) instead of a second latest_balances: the worklist is the same."""
    frames, paths = bank
    for over in ({}, {"refunds": "exclude"}):
        seg = rfm.segment_snapshot(paths["transactions"], observation_end=END, customers=frames["customers"],
                                   balances=paths["balances"], quiet=True, **_snapshot_args(**over))
        kw = dict(observation_end=END, activity=seg, assignments=frames["assignments"], customers=frames["customers"])
        want = rfm.early_warnings(paths["transactions"], **kw,
                                  balances_latest=rfm.latest_balances(paths["balances"], observation_end=END))
        got = rfm.early_warnings(paths["transactions"], **kw, balances_latest=seg[["customer_id", "aum"]])
        assert len(want) and want["has_balance"].any()
        assert_frame_equal(got, want, check_exact=True)


def test_shared_snapshot_sql_is_portable(bank):
    from rmanalytics.engine import portability_problems, record_sql

    frames, paths = bank
    with record_sql() as log:
        rfm.segment_snapshots(paths["transactions"], observation_ends=[END, END - pd.Timedelta(days=90)],
                              customers=frames["customers"], balances=paths["balances"], quiet=True,
                              **_snapshot_args(frequency="days"))
    assert len(log) >= 3
    assert not [(q, portability_problems(q)) for q in log if portability_problems(q)]


def test_by_segments_equals_by_segment_per_column():
    from rmanalytics import loyalty as L

    values = pd.DataFrame({"customer_id": ["c", "a", "b", "d", "e"], "p_alive": [0.1, 0.5, 0.9, 0.3, 0.7],
                           "loyalty_score": [10.0, 50.0, 90.0, 30.0, 70.0], "clv": [1.0, 2.5, 4.0, 0.5, 3.0]})
    segments = pd.DataFrame({"customer_id": ["a", "b", "c", "c", "x"], "segment": ["s1", "s2", "s1", "s9", "s3"],
                             "lifecycle_stage": ["new", None, "mature", "new", "new"], "tier": ["t1", "t1", "t2", "t2", "t3"]})
    got = L.by_segments(values, segments, ["segment", "lifecycle_stage", "tier"])
    assert list(got) == ["segment", "lifecycle_stage", "tier"]
    for col, table in got.items():
        assert_frame_equal(table, L.by_segment(values, segments, col), check_exact=True)
    assert got["segment"].loc["(none)", "customers"] == 2  # d and e have no segment row


def test_tracking_by_group_equals_one_query_per_group(bank):
    from rmanalytics import loyalty as L
    from rmanalytics.loyalty import validation as V

    frames, paths = bank
    for refunds in ("include", "exclude"):
        ch = L.customer_groups(rfm.calibration_holdout(frames["transactions"], calibration_end="2024-06-30",
                                                       observation_end=END, time_unit_days=7, refunds=refunds),
                               frames["customers"])
        models = L.fit_models(ch, by="customer_type")
        assert len(models) > 1
        kw = dict(calibration_end="2024-06-30", observation_end=END, time_unit_days=7, refunds=refunds)
        want = None
        for key, g in ch.groupby("customer_type", sort=True):
            part = V.tracking(models[str(key)].bgnbd, g, frames["transactions"], cohort=g[["customer_id"]],
                              **kw).set_index(["date", "period"])
            want = part if want is None else want.add(part, fill_value=0.0)
        want = want.reset_index()[["date", "actual", "predicted", "period"]]
        for tx in (frames["transactions"], paths["transactions"]):
            assert_frame_equal(L.tracking_by_group(models, ch, tx, "customer_type", **kw), want, check_exact=True)
    with pytest.raises(TypeError, match="unexpected"):
        L.tracking_by_group(models, ch, frames["transactions"], "customer_type", calibration_end="2024-06-30",
                            observation_end=END, nonsense=1)


def _reference_snapshot(transactions, *, observation_end, customers=None, balances=None, **a):
    """segment_snapshot as it was before issue #16's second pass: four merges of a growing frame
    and service_tiers on all of it (kept here as the reference of the column-wise assembly)."""
    from rmanalytics.rfm.pipeline import TAG_COLUMNS
    from rmanalytics.rfm.tiers import NOT_TIERED

    r = rfm.rfm_table(transactions, observation_end=observation_end, frequency=a["frequency"], refunds=a["refunds"])
    sc = rfm.rfm_scores(r, bins=a["score_bins"], method=a["score_method"], edges=a["score_edges"])
    df = r.merge(rfm.rfm_segments(sc, a["segment_rules"], default=a["segment_default"]), on="customer_id", how="left")
    start = customers.set_index("customer_id")["open_date"] if customers is not None else None
    act = rfm.activity_change(transactions, observation_end=observation_end, recent_days=a["recent_days"],
                              baseline_days=a["baseline_days"], min_baseline_days=a["min_baseline_days"],
                              min_baseline_transactions=a["min_baseline_transactions"], start_dates=start,
                              refunds=a["refunds"])
    st = rfm.lifecycle_stages(r, act, observation_end=observation_end, rules=a["lifecycle_rules"],
                              default=a["lifecycle_default"], onboarding_hours=a["onboarding_hours"], customers=customers)
    df = df.merge(st.rename(columns={"tenure_days": "relationship_days", "tenure_hours": "relationship_hours"}),
                  on="customer_id", how="left")
    if customers is not None:
        df = df.merge(customers[["customer_id", *[c for c in TAG_COLUMNS if c in customers.columns]]],
                      on="customer_id", how="left")
    if balances is not None:
        bal = rfm.latest_balances(balances, observation_end=observation_end,
                                  columns=("aum", "deposits", "loans", "n_products"))
        df = df.merge(bal.drop(columns="snapshot_date"), on="customer_id", how="left")
        df["value"] = df["aum"]
    else:
        df["value"] = df["monetary"]
    if "aum" in df.columns:
        df["wallet_share_proxy"] = rfm.wallet_share_proxy(
            df, value_col="aum", peer_columns=[c for c in a["wallet_peer_columns"] if c in df.columns],
            quantile=a["wallet_quantile"])
    df = rfm.service_tiers(df, rules=a["tier_rules"], default=a["tier_default"], value_col="value")
    if balances is None:
        df["tier"] = NOT_TIERED
    return df


@pytest.mark.parametrize("parts", ["all", "no_balances", "no_customers"])
def test_snapshot_assembly_equals_the_merge_reference(bank, parts):
    """Added column by column, the snapshot equals the four-merge original, values and dtypes."""
    import warnings

    frames, paths = bank
    customers = None if parts == "no_customers" else frames["customers"].iloc[50:]  # some customers unknown
    balances = None if parts == "no_balances" else paths["balances"]
    args = _snapshot_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = _reference_snapshot(paths["transactions"], observation_end=END, customers=customers,
                                   balances=balances, **args)
    got = rfm.segment_snapshot(paths["transactions"], observation_end=END, customers=customers, balances=balances,
                               quiet=True, **args)
    assert_frame_equal(got, want, check_exact=True)
    if customers is not None:
        assert got["customer_type"].isna().any()  # the unknown customers' tags are NaN, as in the merge
