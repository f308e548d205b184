"""rmanalytics.engine without Spark: DuckDB behaviour, normalisation, transpilation, table renaming."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlglot

from rmanalytics.engine import (ENGINES, check_portable, normalize_frame, portability_problems, record_sql, resolve_engine,
                                run_sql, transpile)


@pytest.fixture
def tx() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "b"],
        "date": pd.to_datetime(["2024-01-31 23:00", "2024-02-01 01:00", "2024-03-01 00:00", "2024-03-01 12:00",
                                "2024-05-15 00:00"]),
        "amount": [10.0, -2.5, 3.0, 4.0, 5.5],
        "n": [1, 2, 3, 4, 5],
    })


def test_engines():
    assert ENGINES == ("duckdb", "spark")


def test_run_sql_duckdb_frame_and_normalised_dtypes(tx):
    sql = """
        SELECT customer_id, COUNT(*) AS n_tx, COUNT(DISTINCT CAST(date AS DATE)) AS n_days,
               SUM(n) AS n_sum, SUM(amount) AS total, MIN(CAST(date AS DATE)) AS first_day,
               MAX(date) AS last_ts, CAST(1.5 AS DECIMAL(4, 1)) AS dec, CAST(7 AS INTEGER) AS i32
        FROM tx GROUP BY customer_id ORDER BY customer_id
    """
    df = run_sql(sql, {"tx": tx})
    assert df["customer_id"].tolist() == ["a", "b"]
    assert df["n_tx"].tolist() == [2, 3]
    assert df["n_days"].tolist() == [2, 2]
    assert df["n_sum"].tolist() == [3, 12]
    assert df["total"].tolist() == pytest.approx([7.5, 12.5])
    assert df["first_day"].tolist() == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-03-01")]
    assert df["last_ts"].tolist() == [pd.Timestamp("2024-02-01 01:00"), pd.Timestamp("2024-05-15")]
    # HUGEINT (SUM of integers), INTEGER -> int64; DECIMAL -> float64; DATE/TIMESTAMP -> datetime64[ns]
    assert df.dtypes.astype(str).to_dict() == {
        "customer_id": "object", "n_tx": "int64", "n_days": "int64", "n_sum": "int64", "total": "float64",
        "first_day": "datetime64[ns]", "last_ts": "datetime64[ns]", "dec": "float64", "i32": "int64"}


def test_run_sql_normalize_false_keeps_duckdb_types(tx):
    df = run_sql("SELECT SUM(n) AS s, MIN(CAST(date AS DATE)) AS d FROM tx", {"tx": tx}, normalize=False)
    assert str(df["s"].dtype) == "float64"  # DuckDB hands HUGEINT to pandas as float64


def test_normalize_nullable_ints_and_bools():
    df = pd.DataFrame({
        "a": pd.array([1, None], dtype="Int64"),
        "b": pd.array([1, 2], dtype="Int64"),
        "c": pd.array([True, None], dtype="boolean"),
        "d": pd.array([True, False], dtype="boolean"),
        "e": pd.Series([pd.Timestamp("2024-01-01").date(), None], dtype=object),
        "f": [1.0, float("nan")],
        "g": [1.0, 2.0],
    })
    out = normalize_frame(df, spark_schema=[("e", "date"), ("f", "bigint"), ("g", "bigint")])
    assert out.dtypes.astype(str).to_dict() == {
        "a": "float64", "b": "int64", "c": "object", "d": "bool", "e": "datetime64[ns]", "f": "float64",
        "g": "int64"}
    assert out["e"].iloc[0] == pd.Timestamp("2024-01-01") and pd.isna(out["e"].iloc[1])


def test_normalize_tz_aware_to_naive_utc():
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 08:00"]).tz_localize("Asia/Shanghai")})
    assert normalize_frame(df)["t"].iloc[0] == pd.Timestamp("2024-01-01 00:00")


def test_run_sql_paths_and_output(tmp_path, tx):
    tx.to_parquet(tmp_path / "tx.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    tx.iloc[:2].to_parquet(folder / "p1.parquet")
    tx.iloc[2:].to_parquet(folder / "p2.parquet")
    tx.to_csv(tmp_path / "tx.csv", index=False)
    sql = "SELECT customer_id, COUNT(*) AS n FROM tx GROUP BY customer_id ORDER BY customer_id"
    for src in (tmp_path / "tx.parquet", str(folder), str(tmp_path / "tx.csv")):
        assert run_sql(sql, {"tx": src})["n"].tolist() == [2, 3]
    out = run_sql(sql, {"tx": tx}, output=tmp_path / "out" / "agg.parquet")
    assert out.exists()
    assert pd.read_parquet(out)["n"].tolist() == [2, 3]


def test_run_sql_rejects_bad_engine_and_inputs(tx):
    with pytest.raises(ValueError, match="engine must be one of"):
        run_sql("SELECT 1 AS x", {}, engine="polars")
    with pytest.raises(TypeError, match="engine='duckdb' takes a pandas DataFrame"):
        run_sql("SELECT 1 AS x", {"tx": 42})
    with pytest.raises(ValueError, match="cannot read"):
        run_sql("SELECT * FROM tx", {"tx": "transactions.txt"})


def test_transpile_duckdb_is_identity_and_spark_maps_functions():
    sql = "SELECT date_diff('day', MIN(d), MAX(d)) AS x, a // b AS q FROM t"
    assert transpile(sql, "duckdb") == sql
    spark = transpile(sql, "spark")
    assert "DATEDIFF(DAY, MIN(d), MAX(d))" in spark
    assert "a DIV b" in spark
    assert "INTERVAL '90' DAY" in transpile("SELECT CAST(d AS DATE) + INTERVAL 90 DAY AS x FROM t")


def test_transpile_rejects_several_statements_and_bad_sql():
    with pytest.raises(ValueError, match="exactly one SELECT"):
        transpile("SELECT 1; SELECT 2")
    with pytest.raises(sqlglot.errors.ParseError):
        transpile("SELECT FROM WHERE (")
    with pytest.raises(ValueError, match="engine must be one of"):
        transpile("SELECT 1", "polars")


def test_rename_tables_keeps_ctes_aliases_and_qualified_columns():
    from rmanalytics.engine import _parse, _rename_tables

    sql = ("WITH tx AS (SELECT * FROM transactions) "
           "SELECT transactions.customer_id AS c, t2.x AS x FROM transactions JOIN other t2 "
           "ON transactions.customer_id = t2.customer_id JOIN tx ON tx.customer_id = t2.customer_id")
    out = _rename_tables(_parse(sql), {"transactions": "v1", "other": "v2", "tx": "v3"}).sql("spark")
    assert "FROM v1 AS transactions" in out
    assert "JOIN v2 AS t2" in out
    assert "v3" not in out  # tx is a CTE: it shadows the input of the same name


def test_spark_engine_without_pyspark_or_session_explains(monkeypatch, tx):
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        pytest.skip("a SparkSession is active in this process")
    with pytest.raises(RuntimeError, match="needs a SparkSession"):
        run_sql("SELECT COUNT(*) AS n FROM tx", {"tx": tx}, engine="spark")
    assert pyspark


def test_normalize_dates_outside_ns_range_fall_back_to_us():
    import datetime as dt

    spark_like = pd.DataFrame({"d": pd.Series([dt.date(2999, 12, 31), None], dtype=object)})
    out = normalize_frame(spark_like, spark_schema=[("d", "date")])
    assert str(out["d"].dtype) == "datetime64[us]" and out["d"].iloc[0].year == 2999 and pd.isna(out["d"].iloc[1])
    duck = run_sql("SELECT DATE '2999-12-31' AS d", {})
    assert str(duck["d"].dtype) == "datetime64[us]" and duck["d"].iloc[0].year == 2999


def test_package_sql_is_portable(tiny_bank):
    """Every statement the package's aggregations run passes the portability checker, so the same
    SQL is safe on Spark whatever sqlglot or Spark do with the forbidden constructs."""
    from rmanalytics.churn import survival_frame
    from rmanalytics.kpi.measures import kpi_table, segment_fee_table
    from rmanalytics.quality import quality_report
    from rmanalytics.rfm import btyd_summary, calibration_holdout, rfm_table

    tx = tiny_bank["transactions"]
    with record_sql() as log:
        rfm_table(tx, observation_end="2023-12-31")
        btyd_summary(tx, observation_end="2023-12-31")
        calibration_holdout(tx, calibration_end="2023-06-30", observation_end="2023-12-31")
        survival_frame(tiny_bank, observation_end="2023-12-31")
        kpi_table(tiny_bank)
        segment_fee_table(tiny_bank)
        quality_report(tiny_bank, "2023-12-31")
    assert len(log) >= 10
    bad = {q[:100]: portability_problems(q) for q in log if portability_problems(q)}
    assert not bad, bad
    with record_sql() as log:
        pass
    assert log == []


def test_check_portable_names_the_rule():
    check_portable("SELECT SUM(y) / NULLIF(SUM(x), 0) AS v FROM t")
    with pytest.raises(ValueError, match=r"rule 6: .*rule 7: "):
        check_portable("SELECT epoch_ms(d) AS a, log(x) AS b FROM t")


def test_resolve_engine():
    assert resolve_engine(None, pd.DataFrame()) == "duckdb"
    assert resolve_engine("spark", pd.DataFrame()) == "spark"
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve_engine("polars")

    class FakeSparkFrame:  # looks like pyspark.sql.DataFrame to the duck-typed check
        columns = ["a"]
    FakeSparkFrame.__module__ = "pyspark.sql.dataframe"
    assert resolve_engine(None, {"t": FakeSparkFrame()}) == "spark"


def test_fetch_frame_equals_df_in_chunks_and_shares_strings(monkeypatch):
    """Chunked fetching gives .df()'s values and dtypes (NULLs, decimals, dates, booleans, ints),
    with one object per repeated string and ids left as they come."""
    import duckdb
    import numpy as np

    from rmanalytics import engine

    monkeypatch.setattr(engine, "FETCH_VECTORS", 1)  # 2,048-row chunks: several of them
    sql = ("SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS a, "
           "CASE WHEN i % 2 = 0 THEN 'x' || CAST(i % 5 AS VARCHAR) ELSE NULL END AS s, "
           "'id' || CAST(i AS VARCHAR) AS id, CASE WHEN i % 5 = 0 THEN NULL ELSE CAST(i AS DECIMAL(18, 2)) END AS d, "
           "CASE WHEN i % 7 = 0 THEN NULL ELSE DATE '2024-01-01' + CAST(i % 100 AS INTEGER) END AS dt, "
           "CASE WHEN i % 4 = 0 THEN NULL ELSE i > 3 END AS b FROM range(10000) t(i)")
    con = duckdb.connect()
    ref = con.sql(sql).df()
    con.execute(sql)
    seen = []  # the first non-missing value of each array share_strings is asked to share
    share = engine.share_strings
    monkeypatch.setattr(engine, "share_strings", lambda a, canon=None: (seen.append(next(v for v in a if v)), share(a, canon))[1])
    got = engine.fetch_frame(con)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert len({id(v) for v in got["s"] if v is not None}) == 5  # one object per value across chunks
    assert sum(str(v).startswith("id") for v in seen) == 1  # ids: looked at in the first chunk only
    assert sum(str(v).startswith("x") for v in seen) == 5  # the repeated strings: every chunk
    assert got["s"].isna().sum() == 5000
    # many distinct values near the start (an RM per customer at a bank of 5,000 RMs), yet repeated
    # over the whole chunk: shared, as in every later chunk
    monkeypatch.setattr(engine, "FETCH_VECTORS", 4)  # 8,192-row chunks
    con.execute("SELECT 'R' || CAST((i * 7919) % 3000 AS VARCHAR) AS rm FROM range(32768) t(i)")
    got = engine.fetch_frame(con)
    assert len({id(v) for v in got["rm"]}) == 3000
    con.execute("SELECT 1 AS x WHERE false")
    pd.testing.assert_frame_equal(engine.fetch_frame(con), con.sql("SELECT 1 AS x WHERE false").df())
    mixed = np.array([1, 1.0, True, "1", 1, 1], dtype=object)  # not all strings: left alone
    assert engine.share_strings(mixed) is mixed


def test_fetch_frame_keeps_no_chunk_block_of_unshared_strings_alive(monkeypatch):
    """DuckDB's chunks hold their text columns in one 2-D block; a column kept as it came (ids) would
    keep that block, and with it every row's own strings of the shared columns, alive until the end
    (+4 GB for the 10M churn frame). Every text column is set anew, so the blocks are freed."""
    import gc
    import weakref

    import duckdb

    from rmanalytics import engine

    monkeypatch.setattr(engine, "FETCH_VECTORS", 1)
    con = duckdb.connect()
    con.execute("SELECT 'id' || CAST(i AS VARCHAR) AS id, 'x' || CAST(i % 5 AS VARCHAR) AS s, "
                "'y' || CAST(i % 3 AS VARCHAR) AS t FROM range(10000) t(i)")
    blocks = []

    class Recording:
        def fetch_df_chunk(self, n):
            chunk = con.fetch_df_chunk(n)
            blocks.extend(weakref.ref(b.values) for b in chunk._mgr.blocks if b.values.ndim == 2 and b.values.shape[0] > 1 and len(chunk))
            return chunk

    concat = pd.concat

    def checked_concat(parts, **kw):
        gc.collect()
        assert blocks and not [r for r in blocks if r() is not None]  # no chunk's 2-D text block survives
        return concat(parts, **kw)

    monkeypatch.setattr(pd, "concat", checked_concat)
    got = engine.fetch_frame(Recording())
    assert got["id"].tolist() == [f"id{i}" for i in range(10000)] and got["s"].nunique() == 5
