"""Contract validators: every rule rejects bad input with a precise error; valid data passes."""

import time

import numpy as np
import pandas as pd
import pytest

from rmanalytics.contract import TABLES
from rmanalytics.schema import (
    DataContractError,
    check_tables,
    contract_markdown,
    share_sums,
    validate_table,
    validate_tables,
)


def _err(tables) -> DataContractError:
    with pytest.raises(DataContractError) as ei:
        validate_tables(tables)
    return ei.value


def _only(err: DataContractError, rule: str):
    found = err.find(rule=rule)
    assert len(found) == 1, str(err)
    return found[0]


def test_valid_tiny_bank_passes_unchanged(tiny_bank):
    before = {k: v.copy(deep=True) for k, v in tiny_bank.items()}
    out = validate_tables(tiny_bank)
    assert set(out) == set(tiny_bank)
    for name, df in out.items():
        assert df is tiny_bank[name]
        pd.testing.assert_frame_equal(df, before[name])
    for name, df in tiny_bank.items():
        assert validate_table(df, name) is df


def test_optional_columns_may_be_absent(tiny_bank):
    tiny_bank["customers"] = tiny_bank["customers"].drop(columns="acquisition_channel")
    tiny_bank["transactions"] = tiny_bank["transactions"].drop(columns="fee")
    tiny_bank["balances"] = tiny_bank["balances"].drop(columns=["npl", "loans_strategic"])
    validate_tables(tiny_bank)


def test_missing_column(tiny_bank):
    tiny_bank["transactions"] = tiny_bank["transactions"].drop(columns="amount")
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule) == ("transactions", "amount", "missing_column")
    assert "transactions.amount" in str(err) and "missing_column" in str(err)


def test_amount_as_strings_is_a_dtype_error(tiny_bank):
    tx = tiny_bank["transactions"]
    tx["amount"] = tx["amount"].astype(str)
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("transactions", "amount", "dtype", len(tx))
    assert err.examples == ["120.5", "80.0", "-80.0", "50000.0", "12000.25"]
    assert "10 offending row(s)" in str(err)


def test_dates_as_text_are_a_dtype_error(tiny_bank):
    c = tiny_bank["customers"]
    c["open_date"] = c["open_date"].dt.strftime("%Y-%m-%d")
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("customers", "open_date", "dtype", 5)
    assert err.examples[0] == "2022-01-10"


def test_mixed_type_ids(tiny_bank):
    tx = tiny_bank["transactions"]
    tx["customer_id"] = pd.Series(["C001", 17, "C001", 23, "C002", "C003", "C004", "C004", "0042", "0042"],
                                  dtype=object)
    err = _err(tiny_bank)
    f = _only(err, "mixed_types")
    assert (f.table, f.column, f.n_rows, f.examples) == ("transactions", "customer_id", 2, [17, 23])
    assert "int" in f.detail and "str" in f.detail


def test_numeric_ids_are_a_dtype_error(tiny_bank):
    tiny_bank["rms"]["rm_id"] = [1, 2, 3]
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("rms", "rm_id", "dtype", 3)


def test_null_key(tiny_bank):
    tiny_bank["customers"].loc[2, "customer_id"] = None
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("customers", "customer_id", "not_null", 1)


def test_null_in_non_nullable_value_column(tiny_bank):
    tiny_bank["balances"].loc[[1, 3], "aum"] = np.nan
    err = _err(tiny_bank)
    f = _only(err, "not_null")
    assert (f.table, f.column, f.n_rows) == ("balances", "aum", 2)
    assert f.examples[0]["customer_id"] == "C001" and f.examples[0]["snapshot_date"] == "2022-02-28"


def test_duplicate_key(tiny_bank):
    c = tiny_bank["customers"]
    tiny_bank["customers"] = pd.concat([c, c.iloc[[1]]], ignore_index=True)
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("customers", "customer_id", "duplicate_key", 2)
    assert err.examples == [{"customer_id": "C002"}, {"customer_id": "C002"}]


def test_duplicate_composite_key(tiny_bank):
    b = tiny_bank["balances"]
    tiny_bank["balances"] = pd.concat([b, b.iloc[[0, 0]]], ignore_index=True)
    f = _only(_err(tiny_bank), "duplicate_key")
    assert (f.table, f.n_rows) == ("balances", 3)
    assert f.examples[0] == {"customer_id": "C001", "snapshot_date": "2022-01-31"}


def test_negative_where_forbidden(tiny_bank):
    tiny_bank["transactions"].loc[[0, 4], "fee"] = [-1.0, -2.5]
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows, err.examples) == (
        "transactions", "fee", "below_min", 2,
        [{"customer_id": "C001", "date": "2022-02-01", "fee": -1.0},
         {"customer_id": "C002", "date": "2022-11-30", "fee": -2.5}])
    assert ">= 0" in str(err)


def test_negative_amount_is_allowed(tiny_bank):
    tiny_bank["transactions"]["amount"] = -tiny_bank["transactions"]["amount"]
    validate_tables(tiny_bank)


def test_above_max(tiny_bank):
    tiny_bank["customers"].loc[0, "risk_level"] = 7
    tiny_bank["rm_activity"].loc[3, "digital_usage"] = 1.5
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows, err.examples) == (
        "customers", "risk_level", "above_max", 1, [{"customer_id": "C001", "risk_level": 7}])
    f = err.find(table="rm_activity")[0]
    assert (f.column, f.rule, f.n_rows) == ("digital_usage", "above_max", 1)


def test_value_not_allowed(tiny_bank):
    tiny_bank["transactions"].loc[[1, 2, 5], "channel"] = ["fax", "fax", "telex"]
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("transactions", "channel", "not_allowed", 3)
    assert err.examples == ["fax", "telex"]


def test_end_before_start(tiny_bank):
    tiny_bank["customers"].loc[1, "close_date"] = pd.Timestamp("2020-01-01")
    tiny_bank["rms"].loc[1, "exit_date"] = pd.Timestamp("2020-12-31")
    err = _err(tiny_bank)
    c = err.find(table="customers")[0]
    assert (c.column, c.rule, c.n_rows) == ("close_date", "end_before_start", 1)
    assert c.examples == [{"customer_id": "C002", "open_date": "2021-06-01", "close_date": "2020-01-01"}]
    r = err.find(table="rms")[0]
    assert (r.column, r.rule, r.n_rows) == ("exit_date", "end_before_start", 1)


def test_assignment_end_equal_to_start_is_rejected(tiny_bank):
    a = tiny_bank["assignments"]
    a.loc[5, "end_date"] = a.loc[5, "start_date"]
    f = _only(_err(tiny_bank), "end_before_start")
    assert (f.table, f.column, f.n_rows) == ("assignments", "end_date", 1)


def test_same_day_close_is_allowed(tiny_bank):
    c = tiny_bank["customers"]
    c.loc[0, "close_date"] = c.loc[0, "open_date"]
    validate_table(c, "customers")


def test_transactions_of_unknown_customers(tiny_bank):
    tx = tiny_bank["transactions"]
    tx.loc[[0, 1, 7], "customer_id"] = ["C999", "C999", "42"]  # "42" is not "0042"
    err = _err(tiny_bank)
    assert (err.table, err.column, err.rule, err.n_rows) == ("transactions", "customer_id", "unknown_customer", 3)
    assert err.examples == ["C999", "42"]


def test_balances_and_assignments_of_unknown_customers(tiny_bank):
    tiny_bank["balances"].loc[0, "customer_id"] = "X1"
    tiny_bank["assignments"].loc[0, "customer_id"] = "X2"
    err = _err(tiny_bank)
    assert {(f.table, f.rule, f.n_rows) for f in err.failures} >= {
        ("balances", "unknown_customer", 1), ("assignments", "unknown_customer", 1)}


def test_unknown_rms(tiny_bank):
    tiny_bank["rm_activity"].loc[[0, 1], "rm_id"] = "R77"
    tiny_bank["assignments"].loc[5, "rm_id"] = "R78"
    err = _err(tiny_bank)
    act = err.find(table="rm_activity", rule="unknown_rm")[0]
    assert (act.column, act.n_rows, act.examples) == ("rm_id", 2, ["R77"])
    asg = err.find(table="assignments", rule="unknown_rm")[0]
    assert asg.n_rows == 1


def test_shares_not_summing_to_one(tiny_bank):
    tiny_bank["assignments"].loc[7, "share"] = 0.3  # C004: 0.6 + 0.3
    f = _only(_err(tiny_bank), "shares_not_1")
    assert (f.table, f.column, f.n_rows) == ("assignments", "share", 1)
    assert f.examples == [{"customer_id": "C004", "date": "2022-02-01", "share_sum": 0.9}]


def test_shares_checked_after_a_shared_rm_leaves(tiny_bank):
    # C002 is shared 50/50 until 2023-01-01; if R02's part ends earlier, R01 holds 0.5 alone.
    tiny_bank["assignments"].loc[3, "end_date"] = pd.Timestamp("2022-06-01")
    f = _only(_err(tiny_bank), "shares_not_1")
    assert f.examples == [{"customer_id": "C002", "date": "2022-06-01", "share_sum": 0.5}]


def test_overlapping_reassignment_sums_above_one(tiny_bank):
    tiny_bank["assignments"].loc[0, "end_date"] = pd.NaT  # C001 with R02 never ended
    f = _only(_err(tiny_bank), "shares_not_1")
    assert f.examples[0]["share_sum"] == 2.0 and f.examples[0]["customer_id"] == "C001"


def test_share_tolerance(tiny_bank):
    a = tiny_bank["assignments"]
    a.loc[6, "share"] = 0.6 + 5e-7
    validate_tables(tiny_bank)
    a.loc[6, "share"] = 0.6 + 5e-6
    _only(_err(tiny_bank), "shares_not_1")


def test_share_sums_values(tiny_bank):
    s = share_sums(tiny_bank["assignments"])
    c2 = s[s.customer_id == "C002"]
    assert c2["share_sum"].tolist() == pytest.approx([1.0, 1.0])
    assert c2["date"].dt.strftime("%Y-%m-%d").tolist() == ["2021-06-01", "2023-01-01"]


def test_compliance_and_nps_rules(tiny_bank):
    act = tiny_bank["rm_activity"]
    act.loc[2, "compliance_passed"] = 9  # checks are 8
    act.loc[[4, 5], "nps_promoters"] = 9  # + 2 detractors > 10 responses
    err = _err(tiny_bank)
    c = _only(err, "compliance_passed_gt_checks")
    assert (c.table, c.n_rows) == ("rm_activity", 1)
    assert c.examples[0]["compliance_passed"] == 9
    n = _only(err, "nps_gt_responses")
    assert n.n_rows == 2


def test_all_failures_of_a_table_in_one_error(tiny_bank):
    tx = tiny_bank["transactions"]
    tx.loc[0, "fee"] = -1.0
    tx.loc[1, "channel"] = "fax"
    tx.loc[2, "product_family"] = None
    err = _err(tiny_bank)
    rules = {(f.column, f.rule) for f in err.failures}
    assert rules == {("fee", "below_min"), ("channel", "not_allowed"), ("product_family", "not_null")}
    text = str(err)
    for piece in ("transactions.fee", "transactions.channel", "transactions.product_family", "3 failure(s)"):
        assert piece in text


def test_failure_examples_are_capped_at_five(tiny_bank):
    tx = tiny_bank["transactions"]
    tx["fee"] = -tx["fee"] - 1
    err = _err(tiny_bank)
    assert err.n_rows == 10 and len(err.examples) == 5


def test_validation_does_not_modify_bad_frames(tiny_bank):
    tx = tiny_bank["transactions"]
    tx.loc[0, "channel"] = "fax"
    before = tx.copy(deep=True)
    _err(tiny_bank)
    pd.testing.assert_frame_equal(tx, before)


def test_error_is_a_value_error_and_picklable(tiny_bank):
    import pickle

    assert issubclass(DataContractError, ValueError)
    tiny_bank["customers"].loc[0, "risk_level"] = 9
    err = pickle.loads(pickle.dumps(_err(tiny_bank)))
    assert (err.table, err.column, err.rule, err.n_rows, err.examples) == (
        "customers", "risk_level", "above_max", 1, [{"customer_id": "C001", "risk_level": 9}])


def test_unknown_table_name(tiny_bank):
    with pytest.raises(KeyError, match="unknown table"):
        validate_table(tiny_bank["customers"], "clients")


def test_share_sweep_is_fast_for_100k_customers():
    rng = np.random.default_rng(1)
    n = 100_000
    ids = np.array([f"C{i:07d}" for i in range(n)], dtype=object)
    start = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    switch = start + pd.to_timedelta(rng.integers(1, 400, n), unit="D")
    a = pd.DataFrame({
        "customer_id": np.concatenate([ids, ids, ids]),
        "rm_id": np.concatenate([np.full(n, "R1"), np.full(n, "R2"), np.full(n, "R3")]).astype(object),
        "start_date": np.concatenate([start, start, switch]).astype("datetime64[ns]"),
        "end_date": pd.Series(np.concatenate([switch, switch, np.full(n, np.datetime64("NaT"))]),
                              dtype="datetime64[ns]"),
        "share": np.concatenate([np.full(n, 0.3), np.full(n, 0.7), np.ones(n)]),
    })
    t0 = time.perf_counter()
    assert check_tables({"assignments": a}) == []
    assert time.perf_counter() - t0 < 5


def test_contract_markdown_lists_every_column():
    md = contract_markdown()
    for t in TABLES.values():
        assert f"### `{t.name}`" in md
        for c in t.columns:
            assert f"| `{c.name}` |" in md


def test_data_readme_matches_the_contract():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "data" / "README.md").read_text(encoding="utf-8")
    assert contract_markdown() in readme, (
        "data/README.md is out of date: regenerate the block between the 'contract tables' markers "
        "with rmanalytics.schema.contract_markdown()")
