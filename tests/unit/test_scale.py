"""Bank scale on one machine (issue 16): validation once per data fingerprint, lazy (Parquet path)
tables, the DuckDB memory budget, run-all's default jobs, CSV copies sized for people."""

import json
import os
import stat

import pandas as pd
import pytest

from rmanalytics import engine, io
from rmanalytics.report import Recorder
from rmanalytics.schema import DataContractError


@pytest.fixture
def bank_dir(tiny_bank, tmp_path):
    d = tmp_path / "bank"
    io.write_tables(tiny_bank, d, format="parquet")
    return d


def _count_checks(monkeypatch):
    calls = []
    real = io.check_tables

    def counting(tables):
        calls.append(sorted(tables))
        return real(tables)

    monkeypatch.setattr(io, "check_tables", counting)
    return calls


def test_validation_runs_once_per_fingerprint(bank_dir, tiny_bank, monkeypatch):
    calls = _count_checks(monkeypatch)
    first = io.load_tables(bank_dir)
    assert len(calls) == 1
    again = io.load_tables(bank_dir)
    subset = io.load_tables(bank_dir, tables=["customers", "transactions"])
    assert len(calls) == 1  # on record: neither the same tables nor a subset are checked again
    for t in first:
        pd.testing.assert_frame_equal(first[t], again[t])
    assert set(subset) == {"customers", "transactions"}
    rec = json.loads(next((bank_dir / io.CACHE_DIR).glob("validated-*.json")).read_text())
    assert rec["validated"] == [sorted(tiny_bank)]
    # a changed file is new data: validated again (and a violation is found, not skipped)
    bad = tiny_bank["transactions"].copy()
    bad.loc[0, "amount"] = float("nan")
    io.write_tables({"transactions": bad}, bank_dir)
    with pytest.raises(DataContractError, match="amount"):
        io.load_tables(bank_dir)
    assert len(calls) == 2
    with pytest.raises(DataContractError):
        io.load_tables(bank_dir)  # a failure is never recorded
    assert len(calls) == 3


def test_validate_false_records_nothing(bank_dir, monkeypatch):
    io.load_tables(bank_dir, validate=False)
    assert not list((bank_dir / io.CACHE_DIR).glob("validated-*.json")) if (bank_dir / io.CACHE_DIR).exists() else True


def test_read_only_data_folder_uses_the_user_cache(bank_dir, tmp_path, monkeypatch):
    if os.geteuid() == 0:
        monkeypatch.setattr(io, "_writable", lambda folder: not str(folder).startswith(str(bank_dir)))
    else:
        bank_dir.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv("RMANALYTICS_CACHE", str(tmp_path / "cache"))
    try:
        calls = _count_checks(monkeypatch)
        io.load_tables(bank_dir)
        io.load_tables(bank_dir)
        assert len(calls) == 1
        assert list((tmp_path / "cache").glob("*/validated-*.json"))
        assert not (bank_dir / io.CACHE_DIR).exists()
    finally:
        bank_dir.chmod(stat.S_IRWXU)


def test_ensure_validated(bank_dir, tiny_bank, monkeypatch):
    assert io.ensure_validated(bank_dir)
    calls = _count_checks(monkeypatch)
    assert io.is_validated(bank_dir, list(tiny_bank))
    io.load_tables(bank_dir, tables=["transactions"], optional=["customers"])
    assert calls == []
    bad = tiny_bank["customers"].copy()
    bad.loc[0, "customer_id"] = bad.loc[1, "customer_id"]
    io.write_tables({"customers": bad}, bank_dir)
    assert not io.ensure_validated(bank_dir)


def test_lazy_tables_are_parquet_paths_with_the_same_rows(bank_dir, tiny_bank):
    tables = io.load_tables(bank_dir, lazy=("transactions", "balances"))
    assert tables["transactions"] == str((bank_dir / "transactions.parquet").resolve())
    assert isinstance(tables["customers"], pd.DataFrame)
    back = engine.run_sql("SELECT * FROM t ORDER BY customer_id, date, amount", {"t": tables["transactions"]})
    want = tiny_bank["transactions"].sort_values(["customer_id", "date", "amount"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back[list(want.columns)], want, check_dtype=False)


def test_lazy_csv_is_converted_once(tiny_bank, tmp_path, monkeypatch):
    d = tmp_path / "csv"
    io.write_tables(tiny_bank, d, format="csv")
    tables = io.load_tables(d, lazy=("transactions",))
    path = tables["transactions"]
    assert path.endswith("transactions.parquet") and io.CACHE_DIR in path
    calls = _count_checks(monkeypatch)
    monkeypatch.setattr(io, "_read_csv", lambda *a, **k: pytest.fail("CSV read again"))
    assert io.load_tables(d, tables=["transactions"], lazy=("transactions",))["transactions"] == path
    assert calls == []
    total = engine.run_sql("SELECT SUM(amount) AS s, MIN(date) AS d FROM t", {"t": path})
    assert total["s"].iloc[0] == pytest.approx(tiny_bank["transactions"]["amount"].sum(), rel=1e-12)
    assert total["d"].iloc[0] == tiny_bank["transactions"]["date"].min()


def test_connect_sets_the_memory_budget_and_spill_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(engine.MEMORY_LIMIT_ENV, "300MB")
    monkeypatch.setenv(engine.TEMP_DIR_ENV, str(tmp_path / "spill"))
    con = engine.connect()
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") in ("286.1MiB", "300.0MB", "286.1MB")
    assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(tmp_path / "spill")
    con2 = engine.connect(memory_limit="1GB")
    assert "GiB" in con2.execute("SELECT current_setting('memory_limit')").fetchone()[0] or \
        "MiB" in con2.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_default_memory_limit_is_a_share_of_ram_per_job(monkeypatch):
    monkeypatch.delenv(engine.MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.setattr(engine, "total_memory", lambda: 16 * 2**30)
    assert engine.default_memory_limit() == "4096MB"  # a quarter of the RAM, split between the jobs
    assert engine.default_memory_limit(jobs=2) == "2048MB"
    monkeypatch.setenv(engine.MEMORY_LIMIT_ENV, "2GB")
    assert engine.default_memory_limit(jobs=2) == "2GB"


def test_auto_jobs_from_cores_and_memory(bank_dir, monkeypatch):
    from rmanalytics import runner

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(engine, "total_memory", lambda: 64 * 2**30)
    assert runner.auto_jobs([bank_dir]) == 2  # small data: the cap
    assert runner.auto_jobs([bank_dir], max_jobs=8) == 8
    monkeypatch.setattr(engine, "total_memory", lambda: 3 * 2**30)
    assert runner.auto_jobs([bank_dir], max_jobs=8) == 1  # 1.5 GB budget: one 1 GB kernel
    monkeypatch.setattr(runner, "KERNEL_BYTES_PER_INPUT_BYTE", 1e9)
    monkeypatch.setattr(engine, "total_memory", lambda: 64 * 2**30)
    assert runner.auto_jobs([bank_dir], max_jobs=8) == 1  # big input: never below one


def test_prevalidate_in_a_child_process(bank_dir, tiny_bank):
    from rmanalytics.runner import prevalidate

    said = []
    assert prevalidate(bank_dir, echo=said.append)
    assert io.is_validated(bank_dir, list(tiny_bank))
    assert prevalidate(bank_dir, echo=said.append)  # on record: nothing to do
    assert len(said) == 2


def test_csv_copies_only_for_tables_sized_for_people(tmp_path, capsys):
    rec = Recorder(tmp_path, mask_ids=False, csv_max_rows=3)
    small = pd.DataFrame({"rm_id": ["R1", "R2"], "x": [1.0, 2.0]})
    big = pd.DataFrame({"rm_id": [f"R{i}" for i in range(5)], "x": range(5)})
    rec.table("small", small)
    rec.table("big", big)
    assert (tmp_path / "tables" / "small.csv").exists()
    assert not (tmp_path / "tables" / "big.csv").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "tables" / "big.parquet"), big)
    assert rec.csv_skipped_ == {"big": 5}
    assert "big: 5 rows > csv_max_rows 3" in capsys.readouterr().out
    assert Recorder(tmp_path, csv_max_rows=0).csv_max_rows == 0


def test_csv_max_rows_default_from_environment(monkeypatch):
    monkeypatch.setenv("RMANALYTICS_CSV_MAX_ROWS", "7")
    assert Recorder(None).csv_max_rows == 7
    monkeypatch.delenv("RMANALYTICS_CSV_MAX_ROWS")
    assert Recorder(None).csv_max_rows == 100_000


def test_display_rows_masks_only_what_is_shown(tmp_path):
    """Recorder.table(display_rows=n) returns the first n rows of the masked table and writes the
    same files; only those rows are masked when no CSV copy needs the whole table."""
    from rmanalytics.privacy import MaskKey

    key = MaskKey.from_secret("unit-test-secret-key-0123456789")
    df = pd.DataFrame({"customer_id": [f"C{i}" for i in range(6)], "x": range(6)})
    for cap in (3, 100):  # no CSV copy (6 rows > 3) / a masked CSV copy of all rows
        a = Recorder(tmp_path / f"a{cap}", key=key, csv_max_rows=cap)
        b = Recorder(tmp_path / f"b{cap}", key=key, csv_max_rows=cap)
        full = a.table("t", df)
        head = b.table("t", df, display_rows=2)
        pd.testing.assert_frame_equal(head, full.head(2))
        assert "C0" not in set(head["customer_id"])
        for f in ("restricted/tables/t.parquet", "tables/t.csv"):
            assert (tmp_path / f"a{cap}" / f).exists() == (tmp_path / f"b{cap}" / f).exists()
            if (tmp_path / f"a{cap}" / f).exists():
                assert (tmp_path / f"a{cap}" / f).read_bytes() == (tmp_path / f"b{cap}" / f).read_bytes()
