"""Inputs a user really has (issue 12): dates never guessed, one-line errors for unreadable files,
row keys in examples, bounded parameters, notebooks that declare the tables they need."""

from __future__ import annotations

import pandas as pd
import pytest

from rmanalytics import cli
from rmanalytics.errors import DataError
from rmanalytics.io import load_tables, read_data_config, validate_data_dir, write_tables
from rmanalytics.params import (
    ParameterError,
    check_against_data,
    left_out,
    load_notebook_tables,
    notebook_support,
    resolve,
)
from rmanalytics.schema import DataContractError

TX_HEADER = "customer_id,date,amount,product_family,channel\n"


def _day_first_csv(tiny_bank, folder):
    """transactions.csv with day-first dates (11/01/2022 = 11 January 2022)."""
    write_tables(tiny_bank, folder, format="csv")
    p = folder / "transactions.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df["date"] = pd.to_datetime(df["date"]).dt.strftime("%d/%m/%Y")
    df.to_csv(p, index=False)
    return p


# ----------------------------------------------------------------------------- dates
def test_day_first_dates_are_refused_with_keys_and_a_hint(tiny_bank, tmp_path):
    _day_first_csv(tiny_bank, tmp_path)
    with pytest.raises(DataContractError) as ei:
        load_tables(tmp_path)
    f = ei.value.failures[0]
    assert (f.table, f.column, f.rule, f.n_rows) == ("transactions", "date", "unparseable", 10)
    assert f.examples[0] == {"customer_id": "C001", "date": "01/02/2022"}
    text = str(ei.value)
    assert "ISO 8601" in text and "data.yaml" in text and "date_format" in text and "never guessed" in text


def test_ambiguous_dates_that_would_parse_month_first_are_refused(tmp_path):
    # 11/01/2022 parses month-first as 1 November under a lenient parser: silent corruption
    (tmp_path / "transactions.csv").write_text(TX_HEADER + "C1,11/01/2022,10.0,card,mobile\n"
                                               "C1,2022-02-03,5.0,card,mobile\n")
    with pytest.raises(DataContractError) as ei:
        load_tables(tmp_path, tables=["transactions"])
    assert ei.value.n_rows == 1 and ei.value.examples == [{"customer_id": "C1", "date": "11/01/2022"}]


def test_declared_date_format_parses_day_first_right(tiny_bank, tmp_path):
    _day_first_csv(tiny_bank, tmp_path)
    (tmp_path / "data.yaml").write_text('tables:\n  transactions:\n    date_format: "%d/%m/%Y"\n')
    tables = load_tables(tmp_path)
    pd.testing.assert_series_equal(tables["transactions"]["date"], tiny_bank["transactions"]["date"])


def test_declared_date_format_mismatch_names_the_declaration(tmp_path):
    (tmp_path / "transactions.csv").write_text(TX_HEADER + "C1,11/01/2022,10.0,card,mobile\n"
                                               "C1,2022-02-03,5.0,card,mobile\n")
    (tmp_path / "data.yaml").write_text('date_format: "%d/%m/%Y"\n')
    with pytest.raises(DataContractError, match="declared date_format") as ei:
        load_tables(tmp_path, tables=["transactions"])
    assert ei.value.examples == [{"customer_id": "C1", "date": "2022-02-03"}]


@pytest.mark.parametrize("text, match", [
    ("tables:\n  transactions:\n    date_fmt: '%d'\n", "unknown key"),
    ("tables:\n  transaction:\n    encoding: gbk\n", "unknown table"),
    ("encoding: klingon\n", "not a known encoding"),
    ("date_format: dd/mm/yyyy\n", "strptime"),
    ("tables: [\n", "not valid YAML"),
])
def test_bad_data_yaml(tmp_path, text, match):
    (tmp_path / "data.yaml").write_text(text)
    with pytest.raises(DataError, match=match) as ei:
        read_data_config(tmp_path)
    assert "data.yaml" in str(ei.value) and "\n" not in str(ei.value)


# ----------------------------------------------------------------------------- unreadable files
def _one_line_cli_error(capsys, folder) -> str:
    rc = cli.main(["validate", str(folder)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in captured.err
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_zero_byte_file(tiny_bank, tmp_path, capsys):
    write_tables(tiny_bank, tmp_path, format="csv")
    (tmp_path / "balances.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"balances\.csv: the file is empty \(0 bytes\)"):
        load_tables(tmp_path)
    line = _one_line_cli_error(capsys, tmp_path)
    assert "balances.csv" in line and "0 bytes" in line


def test_gbk_csv_is_refused_then_read_when_declared(tmp_path, capsys):
    text = ("customer_id,open_date,close_date,customer_type,risk_level,industry,scenario,branch_id\n"
            "C1,2022-01-05,,retail,2,制造业,跨境电商,网点一\n")
    (tmp_path / "customers.csv").write_bytes(text.encode("gbk"))
    (tmp_path / "transactions.csv").write_text(TX_HEADER + "C1,2022-02-03,5.0,card,mobile\n")
    with pytest.raises(DataError) as ei:
        load_tables(tmp_path, tables=["customers"])
    msg = str(ei.value)
    assert "customers.csv" in msg and "not utf-8 text" in msg and "line 2" in msg and "GBK" in msg
    assert "encoding: gbk" in msg
    line = _one_line_cli_error(capsys, tmp_path)
    assert "customers.csv" in line
    (tmp_path / "data.yaml").write_text("tables:\n  customers:\n    encoding: gbk\n")
    c = load_tables(tmp_path, tables=["customers", "transactions"])["customers"]
    assert c.loc[0, "industry"] == "制造业" and c.loc[0, "branch_id"] == "网点一"


def test_header_without_rows_is_an_error_up_front(tiny_bank, tmp_path, capsys):
    write_tables(tiny_bank, tmp_path, format="csv")
    (tmp_path / "transactions.csv").write_text(TX_HEADER)
    with pytest.raises(DataError, match=r"transactions\.csv .*no rows"):
        load_tables(tmp_path)
    assert "no rows" in _one_line_cli_error(capsys, tmp_path)


def test_empty_parquet_table(tiny_bank, tmp_path):
    write_tables({"transactions": tiny_bank["transactions"].iloc[:0]}, tmp_path)
    with pytest.raises(DataError, match="no rows"):
        load_tables(tmp_path, tables=["transactions"])


def test_broken_parquet_file(tmp_path):
    (tmp_path / "transactions.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_tables(tmp_path, tables=["transactions"])


# ----------------------------------------------------------------------------- examples with row keys
def test_not_null_and_below_min_examples_carry_row_keys(tiny_bank):
    from rmanalytics.schema import validate_tables

    tiny_bank["transactions"].loc[[2, 5], "amount"] = float("nan")
    tiny_bank["balances"].loc[1, "aum"] = -1000.0
    with pytest.raises(DataContractError) as ei:
        validate_tables(tiny_bank)
    nn = ei.value.find(rule="not_null", column="amount")[0]
    assert nn.examples == [{"customer_id": "C001", "date": "2022-03-20", "amount": None},
                           {"customer_id": "C003", "date": "2022-04-02", "amount": None}]
    bm = ei.value.find(rule="below_min", column="aum")[0]
    assert bm.examples == [{"customer_id": "C001", "snapshot_date": "2022-02-28", "aum": -1000.0}]


# ----------------------------------------------------------------------------- parameters
def test_malformed_params_yaml_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("horizon_days: 365\nrefunds: [exclude\n")
    with pytest.raises(ParameterError, match=r"bad\.yaml: not valid YAML at line \d+") as ei:
        resolve("03_loyalty_clv", bad)
    assert "\n" not in str(ei.value)
    assert cli.main(["run", "03", "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "Traceback" not in err


@pytest.mark.parametrize("notebook, key, value", [
    ("03_loyalty_clv", "horizon_days", "100000"),
    ("03_loyalty_clv", "time_unit_days", "1000"),
    ("02_churn_survival", "inactivity_days", "99999"),
    ("01_segmentation", "migration_days", "50000"),
    ("04_kpi_attribution", "driver_lags", "[0, 400]"),
])
def test_absurd_parameters_are_bounded(notebook, key, value):
    with pytest.raises(ParameterError, match=key):
        resolve(notebook, overrides=[(key, value)])


def test_parameters_checked_against_the_data_span():
    p = resolve("03_loyalty_clv", overrides=[("holdout_days", "400")])
    check_against_data(p, "2022-01-01", "2023-06-30")  # 545 days: fine
    with pytest.raises(ParameterError, match="'holdout_days' = 400 days is not shorter than the data span"):
        check_against_data(p, "2022-01-01", "2022-12-31")
    p = resolve("03_loyalty_clv", overrides=[("observation_end", "2019-01-01")])
    with pytest.raises(ParameterError, match="observation_end"):
        check_against_data(p, "2022-01-01", "2022-12-31")
    p = resolve("02_churn_survival", overrides=[("window_start", "2030-01-01")])
    with pytest.raises(ParameterError, match="window_start"):
        check_against_data(p, "2022-01-01", "2022-12-31")


# ----------------------------------------------------------------------------- tables per notebook
def test_notebook_support_with_transactions_only():
    support = {s["notebook"]: s for s in notebook_support({"transactions": ["customer_id", "date", "amount"]})}
    assert [n for n, s in support.items() if s["supported"]] == ["00_data_overview", "01_segmentation",
                                                                 "03_loyalty_clv"]
    assert "customers" in support["02_churn_survival"]["missing"]
    assert "transactions.product_family" in support["04_kpi_attribution"]["missing"]
    assert "balances" in support["01_segmentation"]["left_out"]


def test_load_notebook_tables_optional_and_required(tiny_bank, tmp_path):
    write_tables({"transactions": tiny_bank["transactions"][["customer_id", "date", "amount"]]}, tmp_path)
    p = resolve("01_segmentation", data_dir=str(tmp_path))
    tables = load_notebook_tables(p)
    assert set(tables) == {"transactions"}
    notes = left_out(p, tables)
    assert any(n.startswith("no balances table, left out:") and "tiers" in n for n in notes)
    with pytest.raises(FileNotFoundError, match=r"notebook 02_churn_survival needs"):
        load_notebook_tables(resolve("02_churn_survival", data_dir=str(tmp_path)))
    write_tables({k: tiny_bank[k] for k in ("customers", "balances", "rms", "assignments")}, tmp_path)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['product_family'\].*02_churn_survival"):
        load_notebook_tables(resolve("02_churn_survival", data_dir=str(tmp_path)))


def test_validate_data_dir_with_a_subset(tiny_bank, tmp_path):
    write_tables({"transactions": tiny_bank["transactions"]}, tmp_path)
    tables, findings = validate_data_dir(tmp_path)
    assert set(tables) == {"transactions"}
    assert "refunds (negative amounts)" in set(findings["finding"])


# ----------------------------------------------------------------------------- before any kernel
@pytest.mark.parametrize("case", ["zero_bytes", "gbk", "header_only", "bad_data_yaml"])
def test_run_and_run_all_refuse_unreadable_data_in_seconds(tiny_bank, tmp_path, capsys, monkeypatch, case):
    import time

    import papermill

    from rmanalytics import runner

    def never(*a, **k):
        raise AssertionError("no kernel may start")

    monkeypatch.setattr(papermill, "execute_notebook", never)
    monkeypatch.setattr(runner, "check_kernel", lambda *a, **k: None)
    write_tables(tiny_bank, tmp_path, format="csv")
    if case == "zero_bytes":
        (tmp_path / "rms.csv").write_bytes(b"")
    elif case == "gbk":
        (tmp_path / "customers.csv").write_bytes(
            (tmp_path / "customers.csv").read_text().replace("manufacturing", "制造业").encode("gbk"))
    elif case == "header_only":
        (tmp_path / "transactions.csv").write_text(TX_HEADER)
    else:
        (tmp_path / "data.yaml").write_text("tables: {transactions: {date_format: '%d/%m/%Y'\n")
    for argv in (["run", "01", "--data", str(tmp_path), "--out", str(tmp_path / "runs")],
                 ["run-all", "--data", str(tmp_path), "--out", str(tmp_path / "runs"), "--jobs", "1"]):
        t0 = time.perf_counter()
        assert cli.main(argv) == 1
        assert time.perf_counter() - t0 < 10
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert str(tmp_path) in lines[0]


def test_findings_and_warnings_without_product_family(tiny_bank):
    """product_family is optional: the quality SQL and the early warnings do without it (portable SQL)."""
    from rmanalytics.engine import portability_problems, record_sql
    from rmanalytics.quality import quality_report
    from rmanalytics.rfm import early_warnings

    tx = tiny_bank["transactions"][["customer_id", "date", "amount"]]
    tx = pd.concat([tx, tx.iloc[[0]]], ignore_index=True)  # one same-day duplicate
    with record_sql() as log:
        q = quality_report({"transactions": tx}, "2023-12-31").set_index("finding")
    assert not [portability_problems(s) for s in log if portability_problems(s)]
    dup = q.loc["same-day duplicates (customer, day, amount, product_family); n_rows = extra copies"]
    assert dup["n_rows"] == 1 and "product_family" not in dup["examples"][0]
    w = early_warnings(tx, observation_end="2022-12-31")
    assert not w["reason"].str.contains("no_purchase").any()
