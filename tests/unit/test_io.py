"""Loaders and writers: round trips, CSV parsing by the contract, errors, fingerprints."""

from pathlib import Path

import pandas as pd
import pytest

from rmanalytics.contract import REQUIRED_TABLES, TABLES
from rmanalytics.io import fingerprint, load_tables, validate_data_dir, write_tables
from rmanalytics.schema import DataContractError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _assert_tables_equal(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name].reset_index(drop=True), b[name].reset_index(drop=True),
                                      check_dtype=True, obj=name)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "duckdb"])
def test_round_trip(tiny_bank, tmp_path, fmt):
    written = write_tables(tiny_bank, tmp_path / "out", format=fmt)
    source = written["customers"] if fmt == "duckdb" else tmp_path / "out"
    loaded = load_tables(source)
    _assert_tables_equal(loaded, tiny_bank)


def test_csv_parquet_duckdb_give_equal_frames(tiny_bank, tmp_path):
    write_tables(tiny_bank, tmp_path / "csv", format="csv")
    from_csv = load_tables(tmp_path / "csv")
    write_tables(from_csv, tmp_path / "pq", format="parquet")
    from_pq = load_tables(tmp_path / "pq")
    db = write_tables(from_pq, tmp_path / "bank.duckdb", format="duckdb")["rms"]
    assert db == tmp_path / "bank.duckdb"
    from_db = load_tables(db)
    _assert_tables_equal(from_csv, from_pq)
    _assert_tables_equal(from_pq, from_db)


def test_csv_keeps_leading_zeros_and_parses_dates(tiny_bank, tmp_path):
    write_tables(tiny_bank, tmp_path, format="csv")
    t = load_tables(tmp_path, tables=["customers", "transactions"])
    assert "0042" in set(t["customers"]["customer_id"])
    assert t["transactions"]["customer_id"].map(type).eq(str).all()
    assert t["customers"]["open_date"].dtype == "datetime64[ns]"
    assert t["customers"]["risk_level"].dtype == "int64"
    assert t["customers"]["close_date"].isna().sum() == 4


def test_csv_string_ids_like_na_stay_strings(tmp_path):
    (tmp_path / "rms.csv").write_text(
        "rm_id,outlet,sub_branch,tier2_branch,tier1_branch,hire_date,exit_date,level\n"
        "NA,O1,S,T2,T1,2020-01-01,,junior\n"
        "007,O1,S,T2,T1,2020/02/03,2021-01-01,senior\n")
    rms = load_tables(tmp_path, tables=["rms"])["rms"]
    assert rms["rm_id"].tolist() == ["NA", "007"]
    assert rms["hire_date"].tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-02-03")]
    assert rms["exit_date"].isna().tolist() == [True, False]


def _write_csv_with_bad_dates(tables, folder):
    """The bank as CSV files, three transaction dates unparseable (rows 1, 4 and 6)."""
    write_tables(tables, folder, format="csv")
    p = folder / "transactions.csv"
    df = pd.read_csv(p, dtype=str)
    df.loc[[1, 4, 6], "date"] = ["2022-13-45", "yesterday", "yesterday"]
    df.to_csv(p, index=False)


def test_unparseable_dates_in_csv(tiny_bank, tmp_path):
    _write_csv_with_bad_dates(tiny_bank, tmp_path)
    with pytest.raises(DataContractError) as ei:
        load_tables(tmp_path)
    err = ei.value
    assert (err.table, err.column, err.rule, err.n_rows) == ("transactions", "date", "unparseable", 3)
    assert err.examples == [{"customer_id": "C001", "date": "2022-13-45"},
                            {"customer_id": "C002", "date": "yesterday"},
                            {"customer_id": "C004", "date": "yesterday"}]


def test_unparseable_numbers_in_csv(tiny_bank, tmp_path):
    write_tables(tiny_bank, tmp_path, format="csv")
    p = tmp_path / "customers.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.loc[0, "risk_level"] = "high"
    df.loc[1, "risk_level"] = "2.5"
    df.to_csv(p, index=False)
    with pytest.raises(DataContractError) as ei:
        load_tables(tmp_path)
    assert (ei.value.table, ei.value.column, ei.value.rule, ei.value.n_rows) == (
        "customers", "risk_level", "unparseable", 1)
    assert ei.value.examples == [{"customer_id": "C001", "risk_level": "high"}]


def test_missing_table_file_lists_what_was_found(tiny_bank, tmp_path):
    write_tables({k: v for k, v in tiny_bank.items() if k != "balances"}, tmp_path)
    with pytest.raises(FileNotFoundError) as ei:
        load_tables(tmp_path)
    msg = str(ei.value)
    assert "balances.parquet|.csv" in msg and "customers.parquet" in msg
    # a subset that is present loads fine
    assert set(load_tables(tmp_path, tables=["customers", "transactions"])) == {"customers", "transactions"}


def test_missing_duckdb_table(tiny_bank, tmp_path):
    db = tmp_path / "x.db"
    write_tables({"customers": tiny_bank["customers"]}, db, format="duckdb")
    with pytest.raises(FileNotFoundError, match=r"lacks table\(s\).*found tables: \['customers'\]"):
        load_tables(db)


def test_load_validates_by_default(tiny_bank, tmp_path):
    tiny_bank["transactions"].loc[0, "customer_id"] = "NOBODY"
    write_tables(tiny_bank, tmp_path)
    with pytest.raises(DataContractError, match="unknown_customer"):
        load_tables(tmp_path)
    raw = load_tables(tmp_path, validate=False)
    assert raw["transactions"].loc[0, "customer_id"] == "NOBODY"


def test_duckdb_narrow_types_are_widened(tmp_path):
    import duckdb

    db = tmp_path / "k.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE customers AS SELECT 'C1' AS customer_id, DATE '2022-01-01' AS open_date, "
                    "CAST(NULL AS DATE) AS close_date, 'retail' AS customer_type, CAST(2 AS TINYINT) AS risk_level, "
                    "CAST(NULL AS VARCHAR) AS industry, CAST(NULL AS VARCHAR) AS scenario, 'O1' AS branch_id")
    c = load_tables(db, tables=["customers"])["customers"]
    assert c["risk_level"].dtype == "int64" and c["open_date"].dtype == "datetime64[ns]"


def test_fingerprint(tiny_bank, tmp_path):
    write_tables(tiny_bank, tmp_path)
    (tmp_path / "notes.txt").write_text("not an input")
    fp = fingerprint(tmp_path)
    assert set(fp) == {f"{t}.parquet" for t in REQUIRED_TABLES}
    assert all(len(h) == 64 for h in fp.values())
    assert fingerprint(tmp_path) == fp
    tiny_bank["rms"].loc[0, "level"] = "junior"
    write_tables({"rms": tiny_bank["rms"]}, tmp_path)
    fp2 = fingerprint(tmp_path)
    assert fp2["rms.parquet"] != fp["rms.parquet"] and fp2["customers.parquet"] == fp["customers.parquet"]


def test_validate_data_dir(tiny_bank, tmp_path):
    write_tables(tiny_bank, tmp_path)
    tables, findings = validate_data_dir(tmp_path, observation_end="2022-06-30")
    _assert_tables_equal(tables, tiny_bank)
    by = findings.set_index("finding")["n_rows"]
    assert by["refunds (negative amounts)"] == 1
    assert by["transactions after observation_end"] == 2  # 2022-08-09 and 2022-11-30


@pytest.mark.skipif(not (SAMPLE / "customers.parquet").exists(), reason="data/sample not generated")
def test_sample_data_loads_and_validates():
    tables, findings = validate_data_dir(SAMPLE, observation_end="2024-12-31")
    assert set(tables) == set(REQUIRED_TABLES) | {"training", "products", "holdings", "interactions", "feedback",
                                                  "digital_activity"}
    assert len(tables["customers"]) > 1000
    assert set(findings.columns) == {"table", "column", "finding", "n_rows", "share", "examples", "severity"}


def test_read_segments(tmp_path):
    """The segments of a 01 run: only the segment columns; a clear error naming the file otherwise."""
    from rmanalytics.errors import DataError
    from rmanalytics.io import read_segments
    from rmanalytics.rfm import current_segments

    seg = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["loyal", "lost"], "lifecycle_stage": ["mature", "new"],
                        "tier": ["strategic", "basic"], "extra": [1, 2]})
    seg.to_parquet(tmp_path / "segments.parquet")
    out = read_segments(tmp_path / "segments.parquet")
    assert list(out.columns) == ["customer_id", "segment", "lifecycle_stage", "tier"] and len(out) == 2
    assert read_segments(None) is None
    out2, source = current_segments({}, segments_path=tmp_path / "segments.parquet", observation_end="2024-12-31")
    assert source == "file" and out2.equals(out)
    seg.drop(columns="tier").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="bad.parquet.*tier"):
        read_segments(tmp_path / "bad.parquet")
    pd.concat([seg, seg]).to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="one row per customer', broken by 4 rows"):
        read_segments(tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="not found"):
        read_segments(tmp_path / "nope.parquet")


# ----------------------------------------------------------------------------- validation inside DuckDB (lazy)
def _broken_bank(t):
    """Several rule breaks across tables (each table keeps the contract types)."""
    t["transactions"].loc[[2, 5], "amount"] = float("nan")
    t["transactions"].loc[[1, 3], "channel"] = ["fax", "telex"]
    t["balances"].loc[1, "aum"] = -1000.0
    t["balances"] = pd.concat([t["balances"], t["balances"].iloc[[4]]], ignore_index=True)
    t["customers"].loc[0, "risk_level"] = 7
    t["assignments"].loc[7, "share"] = 0.3
    return t


def _error(folder, **kw) -> DataContractError:
    with pytest.raises(DataContractError) as ei:
        load_tables(folder, **kw)
    return ei.value


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_lazy_validation_in_duckdb_gives_the_same_errors(tiny_bank, tmp_path, fmt, monkeypatch):
    import rmanalytics.io as io_mod
    from rmanalytics.contract import TABLES

    fresh = {k: v.copy() for k, v in tiny_bank.items()}
    fresh["transactions"].loc[[0, 1, 7], "customer_id"] = ["C999", "C999", "42"]
    fresh["assignments"].loc[7, "share"] = 0.3  # cross-table rules, once the tables' own rules pass
    write_tables(_broken_bank(tiny_bank), tmp_path / "a", format=fmt)
    write_tables(tiny_bank, tmp_path / "b", format=fmt)
    write_tables(fresh, tmp_path / "c", format=fmt)
    write_tables(fresh, tmp_path / "d", format=fmt)
    eager, eager_cross = _error(tmp_path / "a"), _error(tmp_path / "c")
    if fmt == "parquet":  # conforming Parquet: never read into pandas
        monkeypatch.setattr(io_mod, "_read_file", lambda *a, **k: pytest.fail("read into pandas"))
    lazy = _error(tmp_path / "b", lazy=list(TABLES))
    assert str(lazy) == str(eager) and lazy.failures == eager.failures
    assert {f.rule for f in eager.failures} >= {"not_null", "not_allowed", "below_min", "above_max", "duplicate_key"}
    monkeypatch.undo()
    lazy_cross = _error(tmp_path / "d", lazy=["transactions", "assignments"])  # paths and frames together
    assert str(lazy_cross) == str(eager_cross)
    assert {f.rule for f in lazy_cross.failures} == {"unknown_customer", "shares_not_1"}


def test_lazy_validation_reports_unparseable_csv_values_as_before(tiny_bank, tmp_path):
    _write_csv_with_bad_dates(tiny_bank, tmp_path)
    eager = _error(tmp_path)
    lazy = _error(tmp_path, lazy=["transactions", "balances"])
    assert str(lazy) == str(eager) and lazy.rule == "unparseable"


def test_lazy_validation_of_a_valid_folder_records_it(tiny_bank, tmp_path, monkeypatch):
    import rmanalytics.io as io_mod
    from rmanalytics.contract import TABLES

    write_tables(tiny_bank, tmp_path)
    monkeypatch.setattr(io_mod, "_read_file", lambda *a, **k: pytest.fail("read into pandas"))
    out = load_tables(tmp_path, lazy=list(TABLES))
    assert all(isinstance(v, str) for v in out.values())
    assert io_mod.is_validated(tmp_path, list(tiny_bank))
    assert io_mod.ensure_validated(tmp_path)


def test_empty_parquet_table_is_an_error_when_lazy(tiny_bank, tmp_path):
    from rmanalytics.errors import DataError

    write_tables({"transactions": tiny_bank["transactions"].iloc[:0]}, tmp_path)
    with pytest.raises(DataError, match="no rows"):
        load_tables(tmp_path, tables=["transactions"], lazy=["transactions"])


def test_validate_data_dir_lazy_gives_paths_and_the_same_findings(tiny_bank, tmp_path):
    write_tables(tiny_bank, tmp_path)
    eager, f_eager = validate_data_dir(tmp_path, observation_end="2022-06-30")
    lazy, f_lazy = validate_data_dir(tmp_path, observation_end="2022-06-30", lazy=True)
    assert set(lazy) == set(eager)
    assert all(isinstance(v, str) and v.endswith(".parquet") for v in lazy.values())  # nothing read into pandas
    pd.testing.assert_frame_equal(f_lazy.reset_index(drop=True), f_eager.reset_index(drop=True))
