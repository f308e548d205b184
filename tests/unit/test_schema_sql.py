"""Validation inside DuckDB (tables as Parquet paths) gives the same failures as the pandas checks.

Every case breaks a valid bank in one way (or several), writes each table to Parquet and compares
``check_tables`` on the paths with ``check_tables`` on the frames: the same rules, counts,
examples (with row keys) and details, in the same order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics.contract import TABLES
from rmanalytics.schema import DataContractError, check_table, check_tables, parquet_conforms, validate_tables
from tests.conftest import parquet_paths

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
D = pd.Timestamp


_paths = parquet_paths  # tests/conftest.py


def _same(tables: dict, folder: Path, expect_rules: set[str] | None = None) -> list:
    ref = check_tables(tables)
    paths = _paths(tables, folder)
    got = check_tables(paths)
    assert [str(f) for f in got] == [str(f) for f in ref]
    assert got == ref
    # a mix: the big tables as paths, the others as frames
    mixed = {n: (paths[n] if n in ("transactions", "balances", "holdings", "feedback", "interactions") else df)
             for n, df in tables.items()}
    assert check_tables(mixed) == ref
    if expect_rules is not None:
        assert {f.rule for f in ref} >= expect_rules, [str(f) for f in ref]
    return ref


def _set(df: pd.DataFrame, rows, col, values) -> None:
    df.loc[rows, col] = values


TINY_CASES = {
    "valid": (lambda t: None, set()),
    "missing_column": (lambda t: t.__setitem__("transactions", t["transactions"].drop(columns="amount")),
                       {"missing_column"}),
    "null_key": (lambda t: _set(t["customers"], 2, "customer_id", None), {"not_null"}),
    "null_value": (lambda t: _set(t["balances"], [1, 3], "aum", np.nan), {"not_null"}),
    "duplicate_key": (lambda t: t.__setitem__("customers", pd.concat([t["customers"], t["customers"].iloc[[1, 3]]],
                                                                     ignore_index=True)), {"duplicate_key"}),
    "duplicate_composite_key": (lambda t: t.__setitem__("balances", pd.concat(
        [t["balances"], t["balances"].iloc[[0, 5, 6]]], ignore_index=True)), {"duplicate_key"}),
    "below_min": (lambda t: _set(t["transactions"], [0, 4], "fee", [-1.0, -2.5]), {"below_min"}),
    "above_max": (lambda t: (_set(t["customers"], 0, "risk_level", 7), _set(t["rm_activity"], 3, "digital_usage", 1.5)),
                  {"above_max"}),
    "not_allowed": (lambda t: _set(t["transactions"], [1, 2, 5], "channel", ["fax", "fax", "telex"]), {"not_allowed"}),
    "end_before_start": (lambda t: (_set(t["customers"], 1, "close_date", D("2020-01-01")),
                                    _set(t["rms"], 1, "exit_date", D("2020-12-31")),
                                    _set(t["assignments"], 5, "end_date", t["assignments"].loc[5, "start_date"])),
                         {"end_before_start"}),
    "unknown_customer": (lambda t: (_set(t["transactions"], [0, 1, 7], "customer_id", ["C999", "C999", "42"]),
                                    _set(t["balances"], 0, "customer_id", "X1"),
                                    _set(t["assignments"], 0, "customer_id", "X2")), {"unknown_customer"}),
    "unknown_rm": (lambda t: (_set(t["rm_activity"], [0, 1], "rm_id", "R77"), _set(t["assignments"], 5, "rm_id", "R78")),
                   {"unknown_rm"}),
    "shares": (lambda t: _set(t["assignments"], 7, "share", 0.3), {"shares_not_1"}),
    "shares_leaver": (lambda t: _set(t["assignments"], 3, "end_date", D("2022-06-01")), {"shares_not_1"}),
    "shares_overlap": (lambda t: _set(t["assignments"], 0, "end_date", pd.NaT), {"shares_not_1"}),
    "shares_tolerance": (lambda t: _set(t["assignments"], 6, "share", 0.6 + 5e-6), {"shares_not_1"}),
    "compliance_nps": (lambda t: (_set(t["rm_activity"], 2, "compliance_passed", 9),
                                  _set(t["rm_activity"], [4, 5], "nps_promoters", 9)),
                       {"compliance_passed_gt_checks", "nps_gt_responses"}),
    "many_in_one_table": (lambda t: (_set(t["transactions"], 0, "fee", -1.0), _set(t["transactions"], 1, "channel", "fax"),
                                     _set(t["transactions"], 2, "product_family", None)),
                          {"below_min", "not_allowed"}),
    "more_than_five": (lambda t: _set(t["transactions"], list(range(9)), "fee", -1.0), {"below_min"}),
    "int_with_nulls": (lambda t: (t.__setitem__("rm_activity", t["rm_activity"].assign(visits=t["rm_activity"]["visits"].astype("Int64"))),
                                  _set(t["rm_activity"], [1, 2], "visits", None)), {"not_null"}),
    "int_with_nulls_and_below_min": (lambda t: (t.__setitem__("rm_activity", t["rm_activity"].assign(visits=t["rm_activity"]["visits"].astype("Int64"))),
                                                _set(t["rm_activity"], [1], "visits", None),
                                                _set(t["rm_activity"], [3, 4], "visits", -2)),
                                     {"not_null", "below_min"}),
    "float_ints_are_not_the_contract_type": (lambda t: _set(t["rm_activity"], [1, 2], "visits", np.nan), {"not_null"}),
    "bad_dates_everywhere": (lambda t: (_set(t["customers"], [0, 3], "close_date", D("2000-01-01")),
                                        _set(t["customers"], 4, "open_date", pd.NaT)),
                             {"end_before_start", "not_null"}),
}


@pytest.mark.parametrize("case", list(TINY_CASES))
def test_sql_checks_equal_pandas_checks(tiny_bank, tmp_path, case):
    mutate, rules = TINY_CASES[case]
    mutate(tiny_bank)
    ref = _same(tiny_bank, tmp_path / case, rules)
    assert bool(ref) == (case != "valid")


@pytest.fixture(scope="module")
def sample():
    from rmanalytics.io import load_tables

    return load_tables(SAMPLE, validate=False)


def _copy(tables: dict) -> dict:
    return {k: v.copy() for k, v in tables.items()}


SAMPLE_CASES = {
    "valid": (lambda t: None, set()),
    "holdings_rules": (lambda t: (_set(t["holdings"], [0, 3], "maturity_date", D("1990-01-01")),
                                  _set(t["holdings"], [5], "end_date", D("1991-01-01"))),
                       {"maturity_before_start", "end_before_start"}),
    "holdings_cross": (lambda t: (_set(t["holdings"], [7, 8], "product_id", "P-none"),
                                  _set(t["holdings"], [9, 10, 11], ["start_date", "end_date", "maturity_date"],
                                       [D("1995-03-04"), pd.NaT, pd.NaT])),
                       {"unknown_product", "before_open"}),
    "holdings_without_products": (lambda t: t.pop("products"), {"unknown_product"}),
    "feedback_rules": (lambda t: (_set(t["feedback"], t["feedback"].index[t["feedback"]["kind"] == "nps"][:3], "score", 7.5),
                                  _set(t["feedback"], t["feedback"].index[t["feedback"]["kind"] == "complaint"][:2], "score", 3.0),
                                  _set(t["feedback"], t["feedback"].index[t["feedback"]["kind"] == "survey"][:2], "score", np.nan),
                                  _set(t["feedback"], [4, 6], "resolved_at", D("1990-01-01"))),
                       {"score_by_kind", "end_before_start"}),
    "feedback_cross": (lambda t: (_set(t["feedback"], [10, 11, 12], "rm_id", "R-none"),
                                  _set(t["feedback"], [13], ["opened_at", "responded_at", "resolved_at"],
                                       [D("1990-06-01 10:00"), pd.NaT, pd.NaT])),
                       {"unknown_rm", "before_open"}),
    "interactions_rules": (lambda t: (_set(t["interactions"], [0, 1], "channel", "pigeon"),
                                      _set(t["interactions"], [3], "outcome", None)),
                           {"not_allowed"}),
    "interactions_cross": (lambda t: _set(t["interactions"], [2, 9, 4], "customer_id", ["C-none", "C-none", "C-x"]),
                           {"unknown_customer"}),
    "digital_activity_rules": (lambda t: (_set(t["digital_activity"], [0, 1], "logins", -1),
                                          t.__setitem__("digital_activity", pd.concat(
                                              [t["digital_activity"], t["digital_activity"].iloc[[5]]], ignore_index=True))),
                               {"below_min", "duplicate_key"}),
    "products_and_training": (lambda t: (_set(t["products"], [0], "risk_level", 9), _set(t["products"], [1], "term_days", 0),
                                         _set(t["training"], [0], "score", 120.0)),
                              {"above_max", "below_min"}),
    "training_cross": (lambda t: _set(t["training"], [1], "rm_id", "R-none"), {"unknown_rm"}),
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES))
def test_sql_checks_equal_pandas_checks_on_the_sample(sample, tmp_path, case):
    """The optional relationship tables too (products, holdings, interactions, feedback, digital activity)."""
    t = _copy(sample)
    mutate, rules = SAMPLE_CASES[case]
    mutate(t)
    ref = _same(t, tmp_path / case, rules)
    assert bool(ref) == (case != "valid")


def test_bool_with_nulls_is_judged_as_pandas_reads_it(sample, tmp_path):
    """A bool column holding nulls is an object column in pandas: a dtype failure either way."""
    t = {"training": sample["training"].copy(), "rms": sample["rms"]}
    t["training"]["mandatory"] = t["training"]["mandatory"].astype(object)
    t["training"].loc[[0, 2], "mandatory"] = None
    ref = check_tables({"training": pd.read_parquet(_paths(t, tmp_path)["training"]), "rms": t["rms"]})
    assert {f.rule for f in ref} >= {"dtype", "not_null"}
    assert check_tables(_paths(t, tmp_path / "p")) == ref


def test_check_table_takes_a_path_and_nonconforming_files_go_through_pandas(tiny_bank, tmp_path):
    tx = tiny_bank["transactions"]
    tx.loc[[0, 4], "fee"] = [-1.0, -2.5]
    p = _paths({"transactions": tx}, tmp_path)["transactions"]
    assert check_table(p, "transactions") == check_table(tx, "transactions")
    odd = tx.assign(amount=tx["amount"].astype("float32"))  # not the contract type: read with pandas
    odd.to_parquet(tmp_path / "odd.parquet", index=False)
    assert not parquet_conforms(tmp_path / "odd.parquet", "transactions")
    assert check_table(str(tmp_path / "odd.parquet"), "transactions") == check_table(odd, "transactions")
    with pytest.raises(DataContractError) as ei:
        validate_tables({"transactions": p})
    assert ei.value.rule == "below_min" and ei.value.n_rows == 2


def test_sql_validation_is_portable_enough_to_record(tiny_bank, tmp_path):
    """Validation SQL runs on DuckDB only (it is not issued through run_sql), so it never reaches Spark."""
    from rmanalytics.engine import record_sql

    with record_sql() as log:
        check_tables(_paths(tiny_bank, tmp_path))
    assert log == []


def test_int_column_with_nulls_without_pandas_metadata(tiny_bank, tmp_path):
    """An int64 Parquet column holding nulls, written without pandas metadata, reads as float64 in
    pandas: the SQL checks judge and show it as floats too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    act = tiny_bank["rm_activity"]
    table = pa.Table.from_pandas(act, preserve_index=False).replace_schema_metadata(None)
    i = table.schema.get_field_index("visits")
    vals = act["visits"].tolist()
    vals[1], vals[3], vals[4] = None, -2, -3
    table = table.set_column(i, "visits", pa.array(vals, type=pa.int64()))
    p = tmp_path / "rm_activity.parquet"
    pq.write_table(table, p)
    assert parquet_conforms(p, "rm_activity")
    ref = check_table(pd.read_parquet(p), "rm_activity")
    assert {f.rule for f in ref} >= {"not_null", "below_min"}
    assert check_table(str(p), "rm_activity") == ref
    assert [str(f) for f in check_table(str(p), "rm_activity")] == [str(f) for f in ref]


@pytest.mark.parametrize("rows_per_pass", [3, 10**9])
def test_duplicate_keys_found_in_hash_passes(tiny_bank, tmp_path, monkeypatch, rows_per_pass):
    """The primary-key check sorts key hashes in passes (by hash bucket): any pass size finds the
    same duplicates, with the same examples, as pandas."""
    import rmanalytics.schema as schema

    monkeypatch.setattr(schema, "_HASH_ROWS_PER_PASS", rows_per_pass)
    b = tiny_bank["balances"]
    tiny_bank["balances"] = pd.concat([b, b.iloc[[0, 5, 6, 6]]], ignore_index=True)
    tiny_bank["customers"] = pd.concat([tiny_bank["customers"], tiny_bank["customers"].iloc[[2]]], ignore_index=True)
    ref = _same(tiny_bank, tmp_path, {"duplicate_key"})
    assert [f.n_rows for f in ref if f.rule == "duplicate_key"] == [2, 7]
