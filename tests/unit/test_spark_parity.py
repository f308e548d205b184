"""Spark parity: the same SQL gives the same table on DuckDB, on Spark (local mode) and in pandas.

One local SparkSession (``local[2]``) serves the whole module. The module is skipped, with the
reason, when PySpark or a Java runtime is missing. Marked ``spark``.

Comparison convention: frames are sorted by their key and compared with
``pd.testing.assert_frame_equal`` -- dtypes and integer/date/string values exactly, floats to a
relative tolerance of 1e-9 (sums of doubles are accumulated in a different order by each engine;
differences seen are ~1e-15 relative).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics.engine import NonPortableSQLError, portability_problems, run_sql, transpile
from rmanalytics.spark import java_available

pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (optional extra 'spark')")
if not java_available():  # pragma: no cover - depends on the environment
    pytest.skip("no Java runtime (JAVA_HOME or java on PATH): Spark cannot start", allow_module_level=True)

pytestmark = pytest.mark.spark

RTOL = 1e-9
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(scope="module")
def spark():
    from rmanalytics.spark import local_session

    session = local_session(cores=2, memory="2g", app_name="rmanalytics-tests", log_level="OFF")
    yield session
    session.stop()


def both(sql, inputs, spark, **kw):
    """Run ``sql`` on DuckDB and on Spark; return both frames."""
    return run_sql(sql, inputs, **kw), run_sql(sql, inputs, engine="spark", spark=spark, **kw)


def assert_same(a: pd.DataFrame, b: pd.DataFrame, key=None):
    if key:
        a = a.sort_values(key, kind="mergesort").reset_index(drop=True)
        b = b.sort_values(key, kind="mergesort").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RTOL)


# --------------------------------------------------------------------------------------------
# SQL patterns and the portable SQL rules (rmanalytics.engine docstring)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def t() -> pd.DataFrame:
    return pd.DataFrame({
        "c": ["a", "a", "b", "b", "b", "c"],
        "d": pd.to_datetime(["2024-01-31 23:00", "2024-02-01 01:00", "2024-03-01 00:00", "2024-03-01 12:00",
                             "2024-05-15 00:00", "2023-12-31 00:00"]),
        "x": [1, 2, 3, 0, 5, 7],
        "y": [1.5, 2.25, None, 4.0, 0.1, 1e6 / 3],
    })


SAME = {
    "group_count_distinct_day": """
        SELECT c, COUNT(*) AS n, COUNT(DISTINCT CAST(d AS DATE)) AS n_days, SUM(x) AS sx, AVG(y) AS ay,
               MIN(CAST(d AS DATE)) AS first_day, MAX(d) AS last_ts, SUM(y) AS sy
        FROM t GROUP BY c ORDER BY c""",
    "date_diff_day_on_dates": """
        SELECT c, date_diff('day', MIN(CAST(d AS DATE)), MAX(CAST(d AS DATE))) AS span,
               date_diff('day', MIN(CAST(d AS DATE)), DATE '2024-12-31') AS age
        FROM t GROUP BY c ORDER BY c""",
    "window_functions": """
        SELECT c, d, ROW_NUMBER() OVER (PARTITION BY c ORDER BY d) AS rn,
               LAG(CAST(d AS DATE)) OVER (PARTITION BY c ORDER BY d) AS prev_day,
               SUM(x) OVER (PARTITION BY c ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_x,
               NTILE(2) OVER (ORDER BY x, c, d) AS half
        FROM t ORDER BY c, d""",
    "case_coalesce_filter_cte": """
        WITH a AS (SELECT c, x, y, CAST(d AS DATE) AS day FROM t),
             b AS (SELECT c, SUM(CASE WHEN y > 1 THEN 1 ELSE 0 END) AS n_big, COALESCE(SUM(y), 0.0) AS sy,
                          COUNT(*) FILTER (WHERE x > 1) AS n_x, MIN(day) AS first_day FROM a GROUP BY c)
        SELECT * FROM b ORDER BY c""",
    "month_trunc_and_intervals": """
        SELECT c, d, date_trunc('month', d) AS m, date_trunc('quarter', CAST(d AS DATE)) AS q,
               CAST(d AS DATE) + INTERVAL 90 DAY AS plus90, CAST(d AS DATE) - INTERVAL 1 MONTH AS minus1m,
               DATE '2024-12-31' - INTERVAL 90 DAY AS cutoff, last_day(d) AS eom,
               CAST(d AS DATE) + CAST(x AS INTEGER) AS plus_x, date_add(CAST(d AS DATE), CAST(x AS INTEGER)) AS add_x
        FROM t ORDER BY c, d""",
    "division_and_labels": """
        SELECT c, d, x / 2 AS half, x // 2 AS idiv, -x // 2 AS nidiv, y / NULLIF(x, 0) AS ratio,
               date_diff('day', CAST(d AS DATE), DATE '2024-12-31') / 7 AS weeks,
               CAST(year(d) AS VARCHAR) || 'Q' || CAST(quarter(d) AS VARCHAR) AS quarter_label,
               strftime(d, '%Y-%m') AS month_label
        FROM t ORDER BY c, d""",
    "joins_union_greatest": """
        SELECT k.c AS c, n.n AS n, GREATEST(k.first_day, DATE '2024-01-01') AS start_day,
               LEAST(k.first_day, DATE '2024-03-01') AS capped
        FROM (SELECT c, MIN(CAST(d AS DATE)) AS first_day FROM t GROUP BY c) k
        LEFT JOIN (SELECT c, COUNT(*) AS n FROM t WHERE x > 2 GROUP BY c
                   UNION ALL SELECT 'zz' AS c, 0 AS n) n ON n.c = k.c
        ORDER BY c""",
    "stats": "SELECT median(y) AS med, stddev_samp(y) AS sd, var_samp(y) AS v, ln(2.0) AS l, "
             "log10(100.0) AS l10, count_if(x > 1) AS ci, bool_or(x > 6) AS bo FROM t",
}


@pytest.mark.parametrize("name", list(SAME))
def test_portable_pattern_same_on_both(name, t, spark):
    a, b = both(SAME[name], {"t": t}, spark)
    assert len(a) > 0
    assert_same(a, b)


# Each documented rule: the construct, the rule number our checker names for it (None: the rule
# needs column types and is enforced by review and these parity tests), the value DuckDB gives for
# the portable form, and the portable form. Nothing here depends on what Spark or sqlglot do with
# the construct itself: an upstream fix must not break these tests (or let the construct back in).
RULES = {
    "rule1_date_diff_on_timestamps": (
        "SELECT date_diff('day', MIN(d), MAX(d)) AS v FROM t WHERE c = 'a'", None, [1],
        "SELECT date_diff('day', CAST(MIN(d) AS DATE), CAST(MAX(d) AS DATE)) AS v FROM t WHERE c = 'a'"),
    "rule2_date_diff_month": (
        "SELECT date_diff('month', DATE '2024-01-31', DATE '2024-02-01') AS v", 2, [1],
        "SELECT (year(DATE '2024-02-01') - year(DATE '2024-01-31')) * 12 "
        "+ month(DATE '2024-02-01') - month(DATE '2024-01-31') AS v"),
    "rule3_date_minus_date": (
        "SELECT CAST(MAX(d) AS DATE) - CAST(MIN(d) AS DATE) AS v FROM t WHERE c = 'a'", 3, [1],
        "SELECT date_diff('day', CAST(MIN(d) AS DATE), CAST(MAX(d) AS DATE)) AS v FROM t WHERE c = 'a'"),
    "rule4_decimal_literal_division": (
        "SELECT date_diff('day', DATE '2024-01-01', DATE '2024-01-13') / 7.0 AS v", 4, [12 / 7],
        "SELECT date_diff('day', DATE '2024-01-01', DATE '2024-01-13') / CAST(7.0 AS DOUBLE) AS v"),
    "rule5_interval_of_column": (
        "SELECT MIN(CAST(d AS DATE) + INTERVAL (x) DAY) AS v FROM t", 5, None,
        "SELECT MIN(date_add(CAST(d AS DATE), CAST(x AS INTEGER))) AS v FROM t"),
    "rule6_epoch_ms": ("SELECT epoch_ms(d) AS v FROM t", 6, None,
                       "SELECT MIN(date_diff('day', DATE '1970-01-01', CAST(d AS DATE))) AS v FROM t"),
    "rule7_log": ("SELECT log(100.0) AS v", 7, [2.0], "SELECT log10(100.0) AS v"),
    "rule8_dayofweek": ("SELECT dayofweek(DATE '2024-01-07') AS v", 8, None, None),
    "rule9_division_by_zero": ("SELECT SUM(y) / SUM(x - x) AS v FROM t", 9, None,
                               "SELECT SUM(y) / NULLIF(SUM(x - x), 0) AS v FROM t"),
    "rule10_quantile": ("SELECT quantile_cont(y, 0.5) AS v FROM t", 10, None, "SELECT median(y) AS v FROM t"),
    "rule12_exclude": ("SELECT * EXCLUDE (y) FROM t", 12, None, None),
    "rule13_unaliased": ("SELECT SUM(y) FROM t", 13, None, "SELECT SUM(y) AS v FROM t"),
}


@pytest.mark.parametrize("name", list(RULES))
def test_rule_refused_by_checker(name):
    sql, rule, _, portable = RULES[name]
    problems = portability_problems(sql)
    if rule is None:
        assert problems == []
    else:
        assert any(p.startswith(f"rule {rule}:") for p in problems), problems
    if portable:
        assert portability_problems(portable) == []


@pytest.mark.parametrize("name", [n for n, r in RULES.items() if r[1] is not None])
def test_run_sql_refuses_non_portable_sql_on_spark(name, t, spark):
    sql, rule, _, _ = RULES[name]
    with pytest.raises(NonPortableSQLError, match=f"rule {rule}:"):
        run_sql(sql, {"t": t}, engine="spark", spark=spark)


@pytest.mark.parametrize("name", [n for n, r in RULES.items() if r[3] is not None])
def test_rule_portable_form_agrees(name, t, spark):
    _, _, duck, portable = RULES[name]
    a, b = both(portable, {"t": t}, spark)
    if duck is not None:
        assert a["v"].tolist() == pytest.approx(duck, rel=1e-12)
    assert_same(a, b)


# --------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------
SQL_COUNT = ("SELECT c, COUNT(*) AS n, MAX(d) AS last_ts, SUM(y) AS sy FROM t GROUP BY c ORDER BY c")


def test_inputs_paths_spark_frames_table_names_and_output(t, spark, tmp_path):
    expected = run_sql(SQL_COUNT, {"t": t})
    t.to_parquet(tmp_path / "t.parquet")  # pandas writes nanosecond timestamps
    folder = tmp_path / "parts"
    folder.mkdir()
    t.iloc[:3].to_parquet(folder / "a.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    t.iloc[3:].to_parquet(folder / "b.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    t.to_csv(tmp_path / "t.csv", index=False)
    sdf = spark.createDataFrame(t)
    sdf.createOrReplaceTempView("lake_t")
    for src in (tmp_path / "t.parquet", str(folder), str(tmp_path / "t.csv"), sdf, "lake_t"):
        got = run_sql(SQL_COUNT, {"t": src}, engine="spark", spark=spark)
        assert_same(expected, got)
    # the nanosAsLong setting is restored and the temporary views are dropped
    assert spark.conf.get("spark.sql.legacy.parquet.nanosAsLong", "false") == "false"
    assert not [v for v in spark.catalog.listTables() if v.name.startswith("_rma_")]
    out = run_sql(SQL_COUNT, {"t": sdf}, engine="spark", spark=spark, output=tmp_path / "agg.parquet")
    written = pd.read_parquet(out)
    assert written["n"].tolist() == expected["n"].tolist()
    assert str(written["n"].dtype) == "int64"


def test_spark_input_picks_spark_unless_duckdb_is_asked_for(spark, t):
    sdf = spark.createDataFrame(t)
    with pytest.raises(TypeError, match="needs engine='spark'"):
        run_sql(SQL_COUNT, {"t": sdf}, engine="duckdb")
    assert_same(run_sql(SQL_COUNT, {"t": t}), run_sql(SQL_COUNT, {"t": sdf}))


def test_btyd_summary_of_a_spark_frame_needs_no_engine_argument(spark, t):
    from rmanalytics.rfm import btyd_summary

    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05"]),
                       "amount": [10.0, 20.0, 5.0]})
    expected = btyd_summary(tx, observation_end="2024-03-31")
    got = btyd_summary(spark.createDataFrame(tx), observation_end="2024-03-31")
    assert_same(expected, got)


def test_run_sql_uses_active_session(t, spark):
    got = run_sql(SQL_COUNT, {"t": t}, engine="spark")  # no spark=: the active session
    assert got["n"].tolist() == [2, 3, 1]


def test_transpiled_sql_is_what_spark_runs(t, spark):
    sql = SAME["date_diff_day_on_dates"]
    spark.createDataFrame(t).createOrReplaceTempView("t")
    direct = spark.sql(transpile(sql)).toPandas()
    assert direct["span"].tolist() == run_sql(sql, {"t": t})["span"].tolist()


# --------------------------------------------------------------------------------------------
# The package's aggregations on the sample data: DuckDB == Spark == pandas
# --------------------------------------------------------------------------------------------
def _read(name: str) -> pd.DataFrame:
    path = SAMPLE / f"{name}.parquet"
    if not path.exists():
        pytest.skip(f"{path} not found (the sample data is written by rmanalytics.synth)")
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    names = ("customers", "transactions", "balances", "assignments", "rms", "rm_activity")
    return {n: _read(n) for n in names}


def _days(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.floor("D")


def pandas_rfm(tx: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Independent pandas RFM table (see rmanalytics.rfm.summary.rfm_table)."""
    d = tx.assign(day=_days(tx["date"]))
    d = d[d["day"] <= end]
    g = d.groupby("customer_id")
    out = pd.DataFrame({
        "n_transactions": g.size(), "n_days": g["day"].nunique(), "monetary": g["amount"].sum(),
        "first_date": g["day"].min(), "last_date": g["day"].max()}).reset_index()
    out["recency_days"] = (end - out["last_date"]).dt.days.astype("int64")
    out["tenure_days"] = (end - out["first_date"]).dt.days.astype("int64")
    out["frequency"] = out["n_days"].astype("int64")  # frequency="days"
    out["monetary_mean"] = out["monetary"] / out["n_transactions"]
    return out


def pandas_btyd(tx: pd.DataFrame, end: pd.Timestamp, unit: float, start: pd.Timestamp | None = None):
    """Independent pandas BTYD summary: purchase days, then per customer."""
    d = tx.assign(day=_days(tx["date"]))
    d = d[(d["day"] <= end) & ((d["day"] > start) if start is not None else True)]
    days = d.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    first = days.groupby("customer_id")["day"].transform("min")
    g = days.groupby("customer_id")
    rep = days[days["day"] > first].groupby("customer_id")["amount"].mean()
    out = pd.DataFrame({"n": g.size(), "first_date": g["day"].min(), "last_date": g["day"].max(),
                        "mean_all": g["amount"].mean()}).reset_index()
    out["frequency"] = (out["n"] - 1).astype("int64")
    out["recency"] = (out["last_date"] - out["first_date"]).dt.days / unit
    out["T"] = (end - out["first_date"]).dt.days / unit
    out["monetary_value"] = out["customer_id"].map(rep).fillna(0.0).astype("float64")
    return out


def _check_against(result: pd.DataFrame, reference: pd.DataFrame, cols: list[str], key="customer_id"):
    a = result[[key, *cols]].sort_values(key).reset_index(drop=True)
    b = reference[[key, *cols]].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RTOL, check_dtype=False)


def test_rfm_table_parity(sample, spark):
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    tx = sample["transactions"]
    end = pd.Timestamp("2024-12-31")
    duck = rfm.rfm_table(tx, observation_end=end, frequency="days")
    spk = rfm.rfm_table(tx, observation_end=end, frequency="days", engine="spark")
    assert_same(duck, spk, key="customer_id")
    _check_against(duck, pandas_rfm(tx, end), ["recency_days", "frequency", "monetary", "monetary_mean",
                                               "first_date", "last_date", "tenure_days", "n_transactions",
                                               "n_days"])


@pytest.mark.parametrize("unit", [1.0, 7.0])
def test_btyd_summary_parity(sample, spark, unit):
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    tx = sample["transactions"]
    end = pd.Timestamp("2024-12-31")
    duck = rfm.btyd_summary(tx, observation_end=end, time_unit_days=unit)
    spk = rfm.btyd_summary(tx, observation_end=end, time_unit_days=unit, engine="spark")
    assert_same(duck, spk, key="customer_id")
    _check_against(duck, pandas_btyd(tx, end, unit), ["frequency", "recency", "T", "monetary_value",
                                                      "first_date", "last_date"])


def test_calibration_holdout_parity(sample, spark):
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    tx = sample["transactions"]
    cal_end, end = pd.Timestamp("2023-12-31"), pd.Timestamp("2024-12-31")
    duck = rfm.calibration_holdout(tx, calibration_end=cal_end, observation_end=end, time_unit_days=7.0)
    spk = rfm.calibration_holdout(tx, calibration_end=cal_end, observation_end=end, time_unit_days=7.0,
                                  engine="spark")
    assert_same(duck, spk, key="customer_id")
    cal = pandas_btyd(tx, cal_end, 7.0)
    hold = pandas_btyd(tx, end, 7.0, start=cal_end)
    ref = cal.merge(hold[["customer_id", "n", "mean_all"]].rename(
        columns={"n": "frequency_holdout", "mean_all": "monetary_value_holdout"}), on="customer_id", how="left")
    ref["frequency_holdout"] = ref["frequency_holdout"].fillna(0).astype("int64")
    ref["monetary_value_holdout"] = ref["monetary_value_holdout"].fillna(0.0)
    ref["duration_holdout"] = (end - cal_end).days / 7.0
    _check_against(duck, ref, ["frequency", "recency", "T", "monetary_value", "frequency_holdout",
                               "monetary_value_holdout", "duration_holdout"])


def pandas_covariates(tables: dict[str, pd.DataFrame], ws: pd.Timestamp, lookback: int) -> pd.DataFrame:
    """Independent pandas version of rmanalytics.churn.frame.covariates_sql (behaviour columns)."""
    c = tables["customers"]
    spine = pd.DataFrame({"customer_id": c["customer_id"], "open_date": _days(c["open_date"])})
    spine["cov_start"] = spine["open_date"].where(spine["open_date"] > ws, ws)
    spine["landmark"] = spine["cov_start"] + pd.Timedelta(days=lookback)
    tx = tables["transactions"].assign(day=lambda x: _days(x["date"])).merge(spine, on="customer_id")
    tx = tx[(tx["day"] >= tx["cov_start"]) & (tx["day"] < tx["landmark"])]
    g = tx.groupby("customer_id")
    agg = pd.DataFrame({"n_tx": g.size(), "tx_amount": g["amount"].sum(), "tx_fee": g["fee"].sum(),
                        "n_families": g["product_family"].nunique()})
    b = tables["balances"].assign(snap=lambda x: _days(x["snapshot_date"])).merge(spine, on="customer_id")
    b = b[b["snap"] < b["landmark"]].sort_values(["customer_id", "snap"]).groupby("customer_id").tail(1)
    a = tables["assignments"].assign(s=lambda x: _days(x["start_date"]), e=lambda x: _days(x["end_date"]))
    a = a.merge(spine, on="customer_id")
    a = a[(a["s"] < a["landmark"]) & (a["e"].isna() | (a["e"] >= a["landmark"]))]
    prm = a.sort_values(["customer_id", "share", "rm_id"], ascending=[True, False, True]).groupby(
        "customer_id").head(1).set_index("customer_id")["rm_id"]
    out = spine.set_index("customer_id")
    out = out.join(agg)
    for col in ("n_tx", "n_families"):
        out[col] = out[col].fillna(0).astype("int64")
    for col in ("tx_amount", "tx_fee"):
        out[col] = out[col].fillna(0.0)
    out["aum"] = b.set_index("customer_id")["aum"].reindex(out.index).fillna(0.0)
    out["n_products"] = b.set_index("customer_id")["n_products"].reindex(out.index).fillna(0).astype("int64")
    rm = prm.reindex(out.index).astype(object)
    out["rm_id"] = rm.where(rm.notna(), None)
    return out.reset_index()


def test_survival_covariates_parity(sample, spark):
    frame = pytest.importorskip("rmanalytics.churn.frame")
    ws, lookback = pd.Timestamp("2022-01-01"), 90
    tables = {k: sample[k] for k in ("customers", "transactions", "balances", "assignments", "rms")}
    sql = frame.covariates_sql(ws, lookback, has_fee="fee" in tables["transactions"].columns,
                               has_acquisition_channel="acquisition_channel" in tables["customers"].columns)
    duck = run_sql(sql, tables)
    _check_against(duck, pandas_covariates(tables, ws, lookback),
                   ["cov_start", "landmark", "n_tx", "tx_amount", "tx_fee", "n_families", "aum", "n_products",
                    "rm_id"])
    # the public function (covariates SQL + the pandas steps after it) gives the same frame on both engines
    a = frame.survival_frame(tables, observation_end="2024-12-31", window_start="2022-01-01")
    b = frame.survival_frame(tables, observation_end="2024-12-31", window_start="2022-01-01", engine="spark")
    assert_same(a, b, key="customer_id")


def pandas_rm_month(tables: dict[str, pd.DataFrame], months: pd.DataFrame) -> pd.DataFrame:
    """Independent pandas credit weights and transaction credits per RM and month (KPI aggregation)."""
    a = tables["assignments"].assign(
        s=lambda x: _days(x["start_date"]),
        e=lambda x: _days(x["end_date"]).fillna(pd.Timestamp("2200-01-01")))
    am = a.merge(months, how="cross")
    am = am[(am["s"] < am["month_end"]) & (am["e"] > am["month_start"])]
    lo = am[["s", "month_start"]].max(axis=1)
    hi = am[["e", "month_end"]].min(axis=1)
    am = am.assign(w=am["share"] * (hi - lo).dt.days / am["days"])
    credited = am.groupby(["rm_id", "month_start"])["w"].sum().rename("customers_credited")
    tx = tables["transactions"].assign(day=lambda x: _days(x["date"])).merge(a, on="customer_id")
    tx = tx[(tx["day"] >= tx["s"]) & (tx["day"] < tx["e"])]
    tx = tx.assign(month_start=tx["day"].dt.to_period("M").dt.to_timestamp())
    tx = tx[tx["month_start"].between(months["month_start"].min(), months["month_start"].max())]
    fees = tx.assign(f=tx["share"] * tx["fee"], v=tx["share"] * tx["amount"]).groupby(["rm_id", "month_start"]).agg(
        fee_income=("f", "sum"), volume=("v", "sum"), n_transactions=("share", "sum"))
    return pd.concat([credited, fees], axis=1).fillna(0.0).reset_index()


def test_kpi_aggregation_parity(sample, spark):
    measures = pytest.importorskip("rmanalytics.kpi.measures")
    tables = dict(sample)
    duck = measures.rm_month_measures(tables)
    spk = measures.rm_month_measures(tables, engine="spark")
    assert_same(duck, spk, key=["rm_id", "month_start"])
    lo = min(_days(tables["transactions"]["date"]).min(), _days(tables["balances"]["snapshot_date"]).min(),
             _days(tables["rm_activity"]["period"]).min())
    hi = max(_days(tables["transactions"]["date"]).max(), _days(tables["balances"]["snapshot_date"]).max(),
             _days(tables["rm_activity"]["period"]).max())
    ref = pandas_rm_month(tables, measures.month_calendar(lo, hi))
    cols = ["customers_credited", "fee_income", "volume", "n_transactions"]
    got = duck.merge(ref, on=["rm_id", "month_start"], how="outer", suffixes=("", "_ref")).fillna(0.0)
    for col in cols:
        np.testing.assert_allclose(got[col], got[f"{col}_ref"], rtol=RTOL, atol=1e-9, err_msg=col)


def test_sample_dates_are_days():
    """The parity tests assume day-precision dates in the sample (as the contract says)."""
    tx = _read("transactions")
    assert isinstance(tx["date"].iloc[0], (pd.Timestamp, dt.date))


def _other_sql_cases():
    """(name, module, builder) of the package's other aggregation SQL: DuckDB == Spark."""
    base = ("SELECT customer_id, CAST(date AS DATE) AS date, amount, product_family FROM transactions "
            "WHERE CAST(date AS DATE) <= DATE '2024-12-31'")
    end = dt.date(2024, 12, 31)
    return {
        "lifecycle.activity_sql": ("rmanalytics.rfm.lifecycle", lambda m: (
            m.activity_sql(base, dt.date(2024, 10, 2), dt.date(2023, 10, 3)), ("transactions",), "customer_id")),
        "warning.family_last_purchase_sql": ("rmanalytics.rfm.warning", lambda m: (
            m.family_last_purchase_sql(base, ["wealth", "loan"], "DATE '2024-12-31'"), ("transactions",),
            ["customer_id", "product_family"])),
        "value.latest_balances_sql": ("rmanalytics.rfm.value", lambda m: (
            m.latest_balances_sql("DATE '2024-06-30'"), ("balances",), "customer_id")),
        "value.latest_balances_many_sql": ("rmanalytics.rfm.value", lambda m: (
            m.latest_balances_many_sql(["DATE '2024-06-30'", "DATE '2024-03-15'"], ["aum", "n_products"]),
            ("balances",), ["customer_id", "snapshot_date"])),
        "pipeline.snapshots_sql": ("rmanalytics.rfm.pipeline", lambda m: (
            m.snapshots_sql(base, [end, dt.date(2024, 9, 30)], recent_days=90, baseline_days=365,
                            distinct_days=True), ("transactions",), "customer_id")),
        "loyalty.tracking_sql": ("rmanalytics.loyalty.validation", lambda m: (
            m.tracking_sql(dt.date(2023, 12, 31), end), ("transactions",), "day")),
        "churn.last_activity_sql": ("rmanalytics.churn.frame", lambda m: (
            m.last_activity_sql("2024-12-31"), ("transactions",), "customer_id")),
        "overview.monthly_transactions_sql": ("rmanalytics.overview", lambda m: (
            m.monthly_transactions_sql(True), ("transactions",), "month")),
        "overview.latest_aum_sql": ("rmanalytics.overview", lambda m: (
            m.latest_aum_sql(), ("balances",), "customer_id")),
    }


@pytest.mark.parametrize("name", list(_other_sql_cases()))
def test_other_aggregation_sql_parity(name, sample, spark):
    module, build = _other_sql_cases()[name]
    m = pytest.importorskip(module)
    sql, tables, key = build(m)
    inputs = {t: sample[t] for t in tables}
    duck, spk = both(sql, inputs, spark)
    assert len(duck) > 0
    assert_same(duck, spk, key=key)


def test_segment_fee_table_parity(sample, spark):
    measures = pytest.importorskip("rmanalytics.kpi.measures")
    a = measures.segment_fee_table(dict(sample))
    b = measures.segment_fee_table(dict(sample), engine="spark")
    assert_same(a, b, key=["period", "segment"])
    # Spark inputs: a Parquet path for transactions, a Spark DataFrame for customers
    c = measures.segment_fee_table({"transactions": str(SAMPLE / "transactions.parquet"),
                                    "customers": spark.createDataFrame(sample["customers"])}, engine="spark")
    assert_same(a, c, key=["period", "segment"])


# --------------------------------------------------------------------------------------------
# Issue 8: the public aggregations take Spark inputs (DataFrame, table name, lake path) and run
# entirely in Spark; output= writes Parquet instead of collecting the result.
# --------------------------------------------------------------------------------------------
_END, _CAL_END = pd.Timestamp("2024-12-31"), pd.Timestamp("2023-12-31")


@pytest.fixture(scope="module")
def duck_summaries(sample) -> dict[str, pd.DataFrame]:
    """DuckDB references on the pandas sample transactions."""
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    tx = sample["transactions"]
    return {
        "rfm": rfm.rfm_table(tx, observation_end=_END),
        "btyd": rfm.btyd_summary(tx, observation_end=_END, time_unit_days=7.0),
        "holdout": rfm.calibration_holdout(tx, calibration_end=_CAL_END, observation_end=_END, time_unit_days=7.0),
    }


@pytest.fixture(scope="module")
def spark_sources(sample, spark) -> dict[str, object]:
    """The sample transactions as a Spark DataFrame, a temp-view name and a Parquet path."""
    sdf = spark.createDataFrame(sample["transactions"])
    sdf.createOrReplaceTempView("rma_test_transactions")
    yield {"frame": sdf, "table": "rma_test_transactions", "path": str(SAMPLE / "transactions.parquet")}
    spark.catalog.dropTempView("rma_test_transactions")


@pytest.mark.parametrize("kind", ["frame", "table", "path"])
def test_summaries_take_spark_inputs(kind, spark_sources, duck_summaries):
    """rfm_table / btyd_summary / calibration_holdout on a Spark DataFrame, a table name and a
    Parquet path (engine="spark") equal the DuckDB results on the pandas sample."""
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    src = spark_sources[kind]
    got = {
        "rfm": rfm.rfm_table(src, observation_end=_END, engine="spark"),
        "btyd": rfm.btyd_summary(src, observation_end=_END, time_unit_days=7.0, engine="spark"),
        "holdout": rfm.calibration_holdout(src, calibration_end=_CAL_END, observation_end=_END,
                                           time_unit_days=7.0, engine="spark"),
    }
    for name, ref in duck_summaries.items():
        assert_same(ref, got[name], key="customer_id")
        assert got[name].attrs["findings"] == ref.attrs["findings"], name


def test_spark_source_bad_data_error(sample, spark):
    """The findings scan runs in Spark and names the column and the number of offending rows."""
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    bad = sample["transactions"].head(200).copy()
    bad.loc[bad.index[:3], "amount"] = np.nan
    with pytest.raises(ValueError, match=r"transactions\.amount.*3 null/NaN amount"):
        rfm.rfm_table(spark.createDataFrame(bad), engine="spark")
    with pytest.raises(ValueError, match=r"transactions\.amount.*3 null/NaN amount"):
        rfm.rfm_table(spark.createDataFrame(bad))  # a Spark frame picks Spark by itself
    with pytest.raises(TypeError, match="Spark DataFrame"):
        rfm.rfm_table(spark.createDataFrame(bad), engine="duckdb")  # DuckDB cannot read a Spark frame


def _read_output(path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    for c in ("first_date", "last_date"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_summaries_output_parquet(engine, sample, spark_sources, duck_summaries, tmp_path):
    """output= writes the same table to Parquet (DuckDB: a file; Spark: a folder) and returns the
    path; findings become a UserWarning."""
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    src = spark_sources["table"] if engine == "spark" else sample["transactions"]
    calls = {
        "rfm": lambda out: rfm.rfm_table(src, observation_end=_END, engine=engine, output=out),
        "btyd": lambda out: rfm.btyd_summary(src, observation_end=_END, time_unit_days=7.0, engine=engine,
                                             output=out),
        "holdout": lambda out: rfm.calibration_holdout(src, calibration_end=_CAL_END, observation_end=_END,
                                                       time_unit_days=7.0, engine=engine, output=out),
    }
    for name, call in calls.items():
        target = tmp_path / f"{name}.parquet"
        ref = duck_summaries[name]
        if ref.attrs["findings"]:
            with pytest.warns(UserWarning, match="data-quality findings"):
                out = call(target)
        else:
            out = call(target)
        assert Path(out) == target and target.exists()
        assert target.is_dir() == (engine == "spark")
        got = _read_output(target)
        if name == "rfm":  # n_days is NULL without frequency="days" (NaN in memory)
            assert got["n_days"].isna().all()
            got, ref = got.drop(columns="n_days"), ref.drop(columns="n_days")
        assert list(got.columns) == list(ref.columns)
        assert_same(ref.reset_index(drop=True), got, key="customer_id")


def test_rfm_output_days_and_empty_calibration(sample, tmp_path):
    rfm = pytest.importorskip("rmanalytics.rfm.summary")
    tx = sample["transactions"]
    ref = rfm.rfm_table(tx, observation_end=_END, frequency="days")
    with pytest.warns(UserWarning, match="refunds_included"):
        out = rfm.rfm_table(tx, observation_end=_END, frequency="days", output=tmp_path / "r.parquet")
    assert_same(ref, _read_output(out), key="customer_id")
    with pytest.raises(ValueError, match="before all transactions"):
        rfm.calibration_holdout(tx, calibration_end="2000-01-01", observation_end=_END,
                                output=tmp_path / "h.parquet")


def test_rm_month_measures_spark_inputs(sample, spark):
    """rm_month_measures / kpi_table with Spark inputs (DataFrames, a table name, lake paths) and
    engine="spark" equal DuckDB on the pandas sample; the data range comes from a MIN/MAX query."""
    measures = pytest.importorskip("rmanalytics.kpi.measures")
    duck = measures.rm_month_measures(dict(sample))
    spark.createDataFrame(sample["assignments"]).createOrReplaceTempView("rma_test_assignments")
    try:
        tables = {
            "transactions": str(SAMPLE / "transactions.parquet"),
            "balances": str(SAMPLE / "balances.parquet"),
            "rm_activity": spark.createDataFrame(sample["rm_activity"]),
            "customers": spark.createDataFrame(sample["customers"]),
            "assignments": "rma_test_assignments",
            "rms": spark.createDataFrame(sample["rms"]),
        }
        assert measures._data_range(tables, engine="spark") == measures._data_range(dict(sample))
        spk = measures.rm_month_measures(tables, engine="spark")
        assert_same(duck, spk, key=["rm_id", "month_start"])
        k_duck = measures.kpi_table(dict(sample), monthly=duck)
        k_spk = measures.kpi_table(tables, monthly=spk, engine="spark")  # rms read from Spark
        assert_same(k_duck, k_spk, key=["rm_id", "period"])
    finally:
        spark.catalog.dropTempView("rma_test_assignments")


@pytest.mark.parametrize("kind", ["frames", "paths"])
def test_survival_frame_takes_spark_inputs(kind, sample, spark):
    """survival_frame on Spark DataFrames / Parquet paths (engine="spark", window defaults from a
    MIN/MAX query in Spark) equals the DuckDB result on the pandas sample, for both definitions."""
    frame = pytest.importorskip("rmanalytics.churn.frame")
    names = ("customers", "transactions", "balances", "assignments", "rms")
    pandas_tables = {k: sample[k] for k in names}
    if kind == "frames":
        src = {k: spark.createDataFrame(sample[k]) for k in names}
    else:
        src = {k: str(SAMPLE / f"{k}.parquet") for k in names}
    for definition in ("closure", "inactivity"):
        a = frame.survival_frame(pandas_tables, definition=definition)
        b = frame.survival_frame(src, definition=definition, engine="spark")
        assert a.attrs["window_start"] == b.attrs["window_start"]
        assert a.attrs["observation_end"] == b.attrs["observation_end"]
        assert a.attrs["excluded"] == b.attrs["excluded"]
        assert_same(a, b, key="customer_id")


def test_local_session_keeps_its_warehouse_out_of_the_working_directory(spark):
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    assert "rmanalytics-spark-warehouse" in warehouse
    assert not warehouse.replace("file:", "").startswith(str(Path.cwd()))
