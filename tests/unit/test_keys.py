"""rmanalytics.keys: the sorted-key paths give exactly what the pandas operations they replace give
(values, dtypes, errors), on random keys with gaps, repeats, nulls and every column dtype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from rmanalytics.keys import left_join, map_keys, non_decreasing, positions, strictly_increasing


def _ids(rng, n, pool=400):
    """``n`` distinct string ids drawn from ``C000..C{pool}``, sorted."""
    return np.array(sorted(f"C{i:04d}" for i in rng.choice(pool, n, replace=False)), dtype=object)


def _right(rng, ids):
    """A frame keyed by ``ids`` with a column of each dtype the per-customer tables hold."""
    n = len(ids)
    return pd.DataFrame({
        "customer_id": ids,
        "f": rng.normal(size=n), "i": rng.integers(0, 9, n), "b": rng.random(n) < 0.5,
        "s": rng.choice(["x", "y", None], n).astype(object),
        "d": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        "c": pd.Categorical(rng.choice(["p", "q"], n)), "e": pd.array(rng.integers(0, 5, n), dtype="Int64"),
    })


def test_strictly_increasing():
    assert strictly_increasing(np.array(["a", "b", "c"], dtype=object))
    assert not strictly_increasing(np.array(["a", "b", "b"], dtype=object))
    assert not strictly_increasing(np.array(["b", "a"], dtype=object))
    assert not strictly_increasing(np.array(["a", None, "c"], dtype=object))
    assert not strictly_increasing(np.array([1.0, np.nan, 3.0]))
    assert strictly_increasing(np.array([], dtype=object)) and strictly_increasing(np.array(["a"], dtype=object))
    assert not strictly_increasing(np.array([None], dtype=object))
    assert non_decreasing(np.array(["a", "a", "b"], dtype=object))
    assert not non_decreasing(np.array(["b", "a"], dtype=object))
    assert not non_decreasing(np.array(["a", None], dtype=object))


@pytest.mark.parametrize("seed", range(8))
def test_positions_equal_get_indexer(seed):
    rng = np.random.default_rng(seed)
    index = _ids(rng, int(rng.integers(0, 200)))
    keys = _ids(rng, int(rng.integers(0, 200)))
    want = pd.Index(index).get_indexer(keys)
    np.testing.assert_array_equal(positions(keys, index), want)  # sorted: the merge
    perm = rng.permutation(len(keys))
    np.testing.assert_array_equal(positions(keys[perm], index), want[perm])  # unsorted: the hash lookup
    again = np.sort(np.r_[keys, keys[::3], keys[::7]])  # sorted keys with repeats: the merge
    np.testing.assert_array_equal(positions(again, index), pd.Index(index).get_indexer(again))


def test_positions_non_unique_index_raises_like_pandas():
    index = np.array(["a", "b", "b"], dtype=object)
    with pytest.raises(pd.errors.InvalidIndexError):
        positions(np.array(["a"], dtype=object), index)


@pytest.mark.parametrize("seed", range(8))
def test_left_join_equals_merge(seed):
    rng = np.random.default_rng(seed)
    ids = _ids(rng, 150)
    df = pd.DataFrame({"customer_id": ids, "v": rng.normal(size=len(ids))})
    for right in (_right(rng, _ids(rng, 120)),  # partly overlapping: missing keys upcast
                  _right(rng, ids),  # the same keys: taken as they are
                  _right(rng, ids[::2]),  # a subset
                  _right(rng, _ids(rng, 120)).sample(frac=1, random_state=seed),  # unsorted: hash path
                  _right(rng, np.r_[ids[:5], ids[:5]])):  # repeated keys: the merge itself
        want = df.merge(right, on="customer_id", how="left")
        assert_frame_equal(left_join(df.copy(), right), want, check_exact=True)


def test_left_join_with_null_keys_equals_merge():
    df = pd.DataFrame({"customer_id": np.array(["a", None, "c"], dtype=object), "v": [1, 2, 3]})
    right = pd.DataFrame({"customer_id": np.array(["c", None], dtype=object), "w": [1.5, 2.5]})
    assert_frame_equal(left_join(df.copy(), right), df.merge(right, on="customer_id", how="left"), check_exact=True)


@pytest.mark.parametrize("seed", range(6))
def test_map_keys_equals_series_map(seed):
    rng = np.random.default_rng(seed)
    keys = pd.Series(_ids(rng, 100), name="customer_id", index=pd.RangeIndex(100) + 7)
    right = _right(rng, _ids(rng, 150)).set_index("customer_id")
    for col in right.columns:
        assert_series_equal(map_keys(keys, right[col]), keys.map(right[col]), check_exact=True)
        assert_series_equal(map_keys(keys[::-1], right[col]), keys[::-1].map(right[col]), check_exact=True)
    dup = pd.Series([1, 2], index=["C0001", "C0001"])
    with pytest.raises(pd.errors.InvalidIndexError):
        map_keys(keys, dup)
    with pytest.raises(pd.errors.InvalidIndexError):
        keys.map(dup)


@pytest.mark.parametrize("seed", range(6))
def test_primary_rm_at_equals_merge(seed):
    """The sorted-assignments path of primary_rm_at gives the RM the merge gives: overlapping
    assignments, share ties (smallest rm_id), NaN shares and rm_ids, customers without any
    assignment, keys out of order and repeated, NaT days."""
    from rmanalytics.assignments import _primary_rm_by_merge, primary_rm_at

    rng = np.random.default_rng(seed)
    n = 300
    cust = np.sort(rng.choice([f"C{i:04d}" for i in range(120)], n)).astype(object)
    start = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    end = start + pd.to_timedelta(rng.integers(1, 200, n), unit="D")
    a = pd.DataFrame({"customer_id": cust, "rm_id": rng.choice(["R1", "R2", "R3", None], n).astype(object),
                      "start_date": start, "end_date": end.where(rng.random(n) < 0.7),
                      "share": rng.choice([1.0, 0.5, np.nan], n)})
    ids = np.sort(rng.choice([f"C{i:04d}" for i in range(250)], 200, replace=False)).astype(object)
    keys = pd.DataFrame({"customer_id": ids,
                         "d": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, 200), unit="D")})
    keys.loc[keys.index[::17], "d"] = pd.NaT
    for k in (keys, keys.sample(frac=1, random_state=seed), pd.concat([keys, keys.iloc[:20]]).set_index(
            pd.RangeIndex(220) + 5)):
        want = _primary_rm_by_merge(a, k, pd.to_datetime(k["d"]).dt.normalize().to_numpy())
        got = primary_rm_at(a, k, "d")
        assert_series_equal(got, want, check_exact=True)
        assert got.notna().any() and got.isna().any()
    assert_series_equal(primary_rm_at(a.sample(frac=1, random_state=1), keys, "d"), primary_rm_at(a, keys, "d"))


@pytest.mark.parametrize("seed", range(6))
def test_migration_matrix_sorted_ids_equal_outer_merge(seed):
    """migration_matrix on sorted ids (the linear merge) equals it on the same rows shuffled (the
    outer merge): customers in one snapshot only, NaN segments, segments only in one snapshot."""
    from rmanalytics.rfm import migration_matrix

    rng = np.random.default_rng(seed)
    frames = []
    for n in (150, 170):
        seg = rng.choice(["a", "b", "c", None], n).astype(object)
        frames.append(pd.DataFrame({"customer_id": _ids(rng, n, pool=220), "segment": seg}))
    frames[1].loc[frames[1].index[:3], "segment"] = "new_only"
    before, after = frames
    for normalize in (False, True):
        got = migration_matrix(before, after, order=["b", "a"], normalize=normalize)
        want = migration_matrix(before.sample(frac=1, random_state=seed), after.sample(frac=1, random_state=seed),
                                order=["b", "a"], normalize=normalize)
        assert_frame_equal(got, want, check_exact=True)
    with pytest.raises(Exception, match="duplicate"):
        migration_matrix(pd.concat([before, before.iloc[:1]]).sort_values("customer_id"), after)


def test_early_warnings_rm_equals_primary_rm(tmp_path):
    """early_warnings looks the RM up with primary_rm_at for its customers only: the same RM as
    the merge with primary_rm (the whole table's rule) gives, also with dates given as text."""
    from rmanalytics import rfm
    from rmanalytics.synth import generate

    t = generate(n_customers=400, n_rms=6, seed=3).tables
    end = pd.Timestamp("2024-12-31")
    act = rfm.activity_change(t["transactions"], observation_end=end)
    for a in (t["assignments"], t["assignments"].astype({"start_date": str, "end_date": str}).replace("NaT", None)):
        w = rfm.early_warnings(t["transactions"], observation_end=end, activity=act, assignments=a,
                               customers=t["customers"], activity_drop=0.1)
        want = w[["customer_id"]].merge(rfm.primary_rm(a, on=end)[["customer_id", "rm_id"]], on="customer_id",
                                        how="left")["rm_id"]
        assert len(w) and w["rm_id"].notna().any()
        assert_series_equal(w["rm_id"], want, check_exact=True)


def test_sort_order_equals_a_stable_sort_values_for_every_key_kind_and_direction():
    """Strings (with None, NaN, empty and non-ASCII), floats with NaN, ints, bools and dates with
    NaT; one to three keys, each direction: the order of sort_values(kind="stable"), nulls last."""
    import itertools

    from rmanalytics.keys import sort_order, sort_rows

    rng = np.random.default_rng(1)
    n = 2000
    df = pd.DataFrame({
        "s": rng.choice(np.array(["a", "b", "B", "é", "ab", "", None, "z", "客户"], dtype=object), n),
        "f": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n).astype(float)),
        "i": rng.integers(0, 4, n),
        "b": rng.random(n) < 0.5,
        "d": pd.to_datetime(pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 5, n), unit="D"))
                            .where(rng.random(n) > 0.1)),
    }, index=rng.permutation(n) + 7)  # positions, not labels
    df.loc[df.index[rng.random(n) < 0.05], "s"] = np.nan
    for k in (1, 2, 3):
        for by in itertools.permutations(df.columns, k):
            for asc in itertools.product([True, False], repeat=k):
                want = df.reset_index(drop=True).sort_values(list(by), ascending=list(asc), kind="stable").index
                np.testing.assert_array_equal(sort_order(df, list(by), list(asc)), want.to_numpy())
    # sort_rows: the frame sort_values gives, index labels included
    assert_frame_equal(sort_rows(df, ["s", "f"], [False, True]), df.sort_values(["s", "f"], ascending=[False, True],
                                                                               kind="stable"))
    # nullable and time-zone-aware dtypes: their missing values last as well
    ext = pd.DataFrame({"a": pd.array([3, None, 1, 2, None], dtype="Int64"),
                        "s": pd.array(["b", None, "a", "c", "a"], dtype="string"),
                        "t": pd.to_datetime(["2024-01-02", None, "2024-01-01", "2024-01-03", "2024-01-01"]).tz_localize("UTC")})
    for by in (["a"], ["s"], ["t"], ["s", "a"]):
        for asc in (True, False):
            want = ext.sort_values(by, ascending=asc, kind="stable").index
            np.testing.assert_array_equal(sort_order(ext, by, asc), want.to_numpy())
    # keys Arrow does not take as they are are sorted by pandas: categories in their own order
    cat = pd.DataFrame({"c": pd.Categorical(["lo", "hi", "mid", "hi"], categories=["hi", "mid", "lo"]), "x": [1, 2, 3, 4]})
    np.testing.assert_array_equal(sort_order(cat, ["c", "x"], [True, False]), [3, 1, 2, 0])
    mixed = pd.DataFrame({"m": np.array(["b", 1, "a"], dtype=object)})
    with pytest.raises(TypeError):  # as sort_values: str and int do not compare
        sort_order(mixed, ["m"])
    assert sort_order(df.head(0), ["s"]).tolist() == []
    with pytest.raises(ValueError, match="2 keys but 1"):
        sort_order(df, ["s", "f"], [True])


def test_first_per_key_is_drop_duplicates_and_skips_the_hash_for_sorted_unique_keys():
    from rmanalytics.keys import first_per_key

    sorted_unique = pd.DataFrame({"customer_id": ["A", "B", "C"], "x": [1, 2, 3]})
    assert first_per_key(sorted_unique) is sorted_unique  # nothing to drop: the frame itself
    for ids in (["B", "A", "B", "C", "A"], ["A", "A", "B"], ["C", "B", "A"], ["A", None, "B", None]):
        df = pd.DataFrame({"customer_id": ids, "x": range(len(ids))})
        assert_frame_equal(first_per_key(df), df.drop_duplicates("customer_id"))


@pytest.mark.parametrize("seed", range(4))
def test_last_per_key_is_not_duplicated_keep_last(seed):
    from rmanalytics.keys import last_per_key

    rng = np.random.default_rng(seed)
    ids = rng.choice(_ids(rng, 30), 200)
    cases = [np.sort(ids), ids, np.sort(rng.integers(0, 20, 100)), rng.integers(0, 20, 100),  # sorted or not
             np.array(["A", None, "A", "B", None], dtype=object), np.array(["A"], dtype=object),
             np.array([], dtype=object), np.array([1.0, np.nan, np.nan, 2.0])]
    for keys in cases:
        expected = ~pd.Series(keys).duplicated(keep="last").to_numpy()
        got = last_per_key(keys)
        assert got.dtype == bool and (got == expected).all()
