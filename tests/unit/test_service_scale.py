"""complaint_kpis without a Python call per group (issue #16) equals the per-group lambdas it replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from rmanalytics.service import complaint_kpis


def _reference(handled: pd.DataFrame, by, target_share: float = 0.8) -> pd.DataFrame:
    h = handled.assign(_all="all")
    keys = ["_all"] if by is None else ([by] if isinstance(by, str) else list(by))
    out = h.groupby(keys, dropna=False).agg(
        n_complaints=("opened_at", "size"), n_open=("resolved", lambda s: int((~s).sum())),
        mean_response_hours=("response_hours", "mean"),
        share_responded_in_time=("responded_in_time", lambda s: s.dropna().astype(float).mean()),
        share_resolved_in_time=("resolved_in_time", lambda s: s.dropna().astype(float).mean())).reset_index()
    out["meets_target"] = out["share_resolved_in_time"] >= float(target_share)
    return out.drop(columns="_all", errors="ignore")


def _handled(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    flags = lambda: pd.array(rng.choice([True, False, None], n, p=[0.6, 0.3, 0.1]), dtype="boolean")  # noqa: E731
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)],
                         "rm_id": rng.choice(["R1", "R2", "R3", None], n),
                         "opened_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
                         "response_hours": np.where(rng.random(n) < 0.2, np.nan, rng.random(n) * 90),
                         "responded_in_time": flags(), "resolved_in_time": flags(),
                         "resolved": rng.random(n) < 0.7})


@pytest.mark.parametrize("by", ["rm_id", None])
def test_complaint_kpis_equal_per_group_reference(by):
    h = _handled()
    h.loc[h["rm_id"] == "R3", "resolved_in_time"] = pd.NA  # a group with nothing judged: NaN share
    assert_frame_equal(complaint_kpis(h, by=by), _reference(h, by), check_exact=True)
    none = h.assign(responded_in_time=pd.array([None] * len(h), dtype="boolean"))  # no responded_at column
    assert_frame_equal(complaint_kpis(none, by=by), _reference(none, by), check_exact=True)
    assert_frame_equal(complaint_kpis(h.iloc[:0], by=by), _reference(h.iloc[:0], by), check_exact=True)


def test_last_contacts_of_some_customers_equal_the_full_lookup(tmp_path):
    from rmanalytics.io import load_tables, write_tables
    from rmanalytics.service.rules import last_contacts, upcoming_maturities
    from rmanalytics.synth import generate

    write_tables(generate(n_customers=300, n_rms=5, seed=11).tables, tmp_path)
    frames = load_tables(tmp_path)
    paths = load_tables(tmp_path, lazy=("interactions", "holdings"))
    as_of = pd.Timestamp("2024-12-31")
    full = last_contacts(paths["interactions"], as_of)
    some = frames["customers"]["customer_id"].iloc[::3]
    got = last_contacts(paths["interactions"], as_of, customers=pd.concat([some, some]))
    assert len(got) and set(got.index) <= set(some)
    pd.testing.assert_series_equal(got.sort_index(), full[full.index.isin(some)].sort_index(), check_exact=True)
    assert last_contacts(frames["interactions"], as_of, customers=some.iloc[:0]).empty
    m = upcoming_maturities(paths, as_of=as_of)
    assert len(m) and m["contacted"].any()
    assert_frame_equal(m, upcoming_maturities(frames, as_of=as_of), check_exact=True)
