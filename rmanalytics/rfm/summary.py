"""Per-customer transaction summaries: the RFM table and the buy-till-you-die (BTYD) summary.

Both aggregations are written once, as SQL in DuckDB's dialect (see :func:`rfm_sql`,
:func:`btyd_sql`, :func:`holdout_sql`) and run through :func:`rmanalytics.engine.run_sql`, so
they scan pandas frames, Parquet and CSV files directly and work on inputs far larger than
memory. The SQL is plain enough for ``sqlglot`` to transpile to Spark: with ``engine="spark"``
the functions take a Spark DataFrame, a catalog table name or a lake path and run the checks
(one findings scan) and the aggregation entirely in Spark; only the per-customer result is
collected, or written to Parquet by the executors with ``output=``.

Conventions (all functions)
---------------------------
- Dates are truncated to the day; a transaction dated ``observation_end`` is included (the window
  ends with that whole day). Durations are whole days between dates, divided by
  ``time_unit_days`` where a function takes it.
- Transactions dated after ``observation_end`` are left out and counted in the data-quality
  findings (``result.attrs["findings"]``, a list of dicts ``{rule, n_rows, examples}``).
- Refunds (negative ``amount``) follow ``refunds``:

  * ``"include"`` (default): a refund row is a transaction like any other: it counts toward
    frequency and dates, and its (negative) amount nets into monetary value;
  * ``"exclude"``: refund rows are left out of the aggregation (and counted in the findings);
  * ``"error"``: any refund row raises a ``ValueError``.

- The output always names the customer column ``customer_id`` and is sorted by it.
- Bad input raises a ``ValueError`` naming the column, the rule, the number of offending rows and
  a few examples: missing columns, null ids, mixed-type ids, null or unparseable dates, null/NaN
  amounts, an ``observation_end`` before all data.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rmanalytics.engine import Source, connect, is_spark_frame, resolve_engine, run_sql, scan_expr
from rmanalytics.errors import N_EXAMPLES, DataError, ParameterError, row_examples
from rmanalytics.keys import sort_rows
from rmanalytics.window import parse_day

Refunds = Literal["include", "exclude", "error"]
REFUND_OPTIONS = ("include", "exclude", "error")

#: SQL type money is summed in: an exact decimal (18 digits after the point, totals below 1e20).
EXACT_MONEY = "DECIMAL(38, 18)"


def exact_sum(expr: str) -> str:
    """SQL of an exact, order-independent sum of the money expression ``expr`` (DECIMAL).

    Floating-point SUM/AVG depend on the order rows are added in, which changes with DuckDB's (and
    Spark's) parallel scans: the same data could give totals differing in the last bit from one run
    to the next, enough to move a fitted Gamma-Gamma parameter by 1e-7 or an RFM score edge. Each
    amount is rounded once to :data:`EXACT_MONEY` (18 decimals; relative change below 1e-16 for
    any currency amount) and summed exactly, so every run, engine and thread count gives the same
    bits. Cast the result to DOUBLE (``CAST(... AS DOUBLE)``) before dividing (Spark's decimal
    division rounds). Amounts or totals of 1e20 or more raise an overflow error.
    """
    return f"SUM(CAST({expr} AS {EXACT_MONEY}))"


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _q(name: str) -> str:
    """Quote an identifier for SQL."""
    return '"' + name.replace('"', '""') + '"'


def date_literal(d: Any) -> str:
    """A day as a SQL date literal: ``DATE 'YYYY-MM-DD'``."""
    return f"DATE '{pd.Timestamp(d).date().isoformat()}'"


def as_date(value: Any, name: str) -> dt.date:
    """``value`` as a date; a ParameterError naming the parameter ``name`` when it is not one
    (:func:`rmanalytics.window.parse_day`)."""
    return parse_day(value, name).date()


def _prepare_frame(df: pd.DataFrame, customer_col: str, date_col: str, amount_col: str,
                   extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check a pandas transactions frame; return the needed columns with dates parsed to days."""
    cols = [customer_col, date_col, amount_col, *extra]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"transactions: missing column(s) {missing}; columns present: {list(df.columns)}")
    ids = df[customer_col]
    null_ids = ids.isna()
    if null_ids.any():
        raise DataError(f"transactions.{customer_col}: {int(null_ids.sum())} row(s) with a null customer id "
                         f"(row positions {row_examples(np.flatnonzero(null_ids.to_numpy()))})")
    if ids.dtype == object:
        kind = pd.api.types.infer_dtype(ids, skipna=True)
        if kind not in ("string", "integer", "empty"):
            types = ids.map(lambda v: type(v).__name__)
            counts = types.value_counts()
            minority = counts.index[-1]
            raise DataError(
                f"transactions.{customer_col}: mixed-type customer ids ({dict(counts)}); e.g. "
                f"{row_examples(ids[types == minority].unique())} are {minority}. Convert all ids to one type (str).")
    dates = df[date_col]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        if pd.api.types.is_numeric_dtype(dates) or pd.api.types.is_bool_dtype(dates):
            raise DataError(f"transactions.{date_col}: dtype {dates.dtype} is not a date; "
                             f"parse it first (e.g. pd.to_datetime(..., format='%Y%m%d'))")
        parsed = pd.to_datetime(dates, errors="coerce", format="mixed")
        bad = parsed.isna() & dates.notna()
        if bad.any():
            raise DataError(f"transactions.{date_col}: {int(bad.sum())} unparseable date(s), e.g. "
                             f"{row_examples(dates[bad].unique())}")
        dates = parsed
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    null_dates = dates.isna()
    if null_dates.any():
        raise DataError(f"transactions.{date_col}: {int(null_dates.sum())} null date(s) "
                         f"(customers {row_examples(ids[null_dates].unique())})")
    amounts = df[amount_col]
    if not pd.api.types.is_numeric_dtype(amounts) or pd.api.types.is_bool_dtype(amounts):
        raise DataError(f"transactions.{amount_col}: dtype {amounts.dtype} is not numeric")
    nan = amounts.isna()
    if nan.any():
        raise DataError(f"transactions.{amount_col}: {int(nan.sum())} null/NaN amount(s) "
                         f"(customers {row_examples(ids[nan].unique())})")
    inf = ~np.isfinite(amounts.to_numpy(dtype="float64"))
    if inf.any():
        raise DataError(f"transactions.{amount_col}: {int(inf.sum())} infinite amount(s) "
                         f"(customers {row_examples(ids[inf].unique())})")
    out = pd.DataFrame({"customer_id": ids.to_numpy(), "date": dates.dt.floor("D").to_numpy(),
                        "amount": amounts.to_numpy(dtype="float64")})
    for c in extra:
        out[c] = df[c].to_numpy()
    return out


def _check_file(path: Source, customer_col: str, date_col: str, amount_col: str,
                extra: tuple[str, ...] = (), con: Any = None) -> str:
    """Check a Parquet/CSV source with DuckDB; return a SELECT giving customer_id, date, amount."""
    scan = scan_expr(path)
    own = con is None
    con = con or connect()
    try:
        schema = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
        types = {row[0]: row[1].upper() for row in schema}
        cols = [customer_col, date_col, amount_col, *extra]
        missing = [c for c in cols if c not in types]
        if missing:
            raise DataError(f"transactions ({path}): missing column(s) {missing}; columns present: {list(types)}")
        dtype = types[date_col]
        if dtype.startswith(("DATE", "TIMESTAMP")):
            date_expr = f"CAST({_q(date_col)} AS DATE)"
        elif dtype in ("VARCHAR",):
            bad = con.execute(
                f"SELECT COUNT(*), LIST(DISTINCT {_q(date_col)})[1:{N_EXAMPLES}] FROM {scan} "
                f"WHERE {_q(date_col)} IS NOT NULL AND TRY_CAST({_q(date_col)} AS DATE) IS NULL").fetchone()
            if bad[0]:
                raise DataError(f"transactions.{date_col} ({path}): {bad[0]} unparseable date(s), e.g. {bad[1]}")
            date_expr = f"CAST({_q(date_col)} AS DATE)"
        else:
            raise DataError(f"transactions.{date_col} ({path}): type {dtype} is not a date")
        atype = types[amount_col]
        if not any(atype.startswith(t) for t in ("DOUBLE", "FLOAT", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT",
                                                  "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "REAL")):
            raise DataError(f"transactions.{amount_col} ({path}): type {atype} is not numeric")
        # null ids / dates / amounts are counted in the findings scan (one pass over the data)
    finally:
        if own:
            con.close()
    extras = "".join(f", {_q(c)}" for c in extra)
    return (f"SELECT {_q(customer_col)} AS customer_id, {date_expr} AS date, "
            f"CAST({_q(amount_col)} AS DOUBLE) AS amount{extras} FROM src")


def transaction_inputs(transactions: pd.DataFrame | Source, customer_col: str, date_col: str, amount_col: str,
            extra: tuple[str, ...] = (), con: Any = None, engine: str | None = None) -> tuple[dict[str, Any], str]:
    """Checked inputs for run_sql and the SQL of the normalised relation (customer_id, date, amount)."""
    engine = resolve_engine(engine, transactions)
    if isinstance(transactions, pd.DataFrame):
        frame = _prepare_frame(transactions, customer_col, date_col, amount_col, extra)
        extras = "".join(f", {_q(c)}" for c in extra)
        return {"src": frame}, f"SELECT customer_id, CAST(date AS DATE) AS date, amount{extras} FROM src"
    if engine == "spark" and (isinstance(transactions, (str, os.PathLike))
                              or is_spark_frame(transactions)):
        # Spark DataFrame, catalog table name or lake path: read and checked (findings scan) in Spark
        extras = "".join(f", {_q(c)}" for c in extra)
        return {"src": transactions}, (f"SELECT {_q(customer_col)} AS customer_id, CAST({_q(date_col)} AS DATE) AS date, "
                                       f"CAST({_q(amount_col)} AS DOUBLE) AS amount{extras} FROM src")
    if isinstance(transactions, (str, os.PathLike)):
        return {"src": transactions}, _check_file(transactions, customer_col, date_col, amount_col, extra, con=con)
    raise TypeError(f"transactions must be a pandas DataFrame, a path to Parquet/CSV (or, with engine='spark', "
                    f"a Spark DataFrame or table name), got {type(transactions)}")


def _findings_sql(base: str, end: dt.date) -> str:
    """One scan of the normalised relation: null keys/values, date range and counts of rows the
    summary leaves out."""
    e = date_literal(end)
    return (f"WITH t AS ({base}) SELECT MIN(date) AS min_date, MAX(date) AS max_date, COUNT(*) AS n_rows, "
            f"SUM(CASE WHEN customer_id IS NULL THEN 1 ELSE 0 END) AS n_null_id, "
            f"SUM(CASE WHEN date IS NULL THEN 1 ELSE 0 END) AS n_null_date, "
            f"SUM(CASE WHEN amount IS NULL OR isnan(amount) THEN 1 ELSE 0 END) AS n_null_amount, "
            f"SUM(CASE WHEN date > {e} THEN 1 ELSE 0 END) AS n_after_end, "
            f"SUM(CASE WHEN amount < 0 THEN 1 ELSE 0 END) AS n_refunds, "
            f"SUM(CASE WHEN amount < 0 AND date <= {e} THEN 1 ELSE 0 END) AS n_refunds_in_window FROM t")


def scan_findings(inputs: Mapping[str, Any], base: str, end: dt.date | None, refunds: str,
                   con=None, engine: str | None = None, cols: tuple[str, str, str] = ("customer_id", "date", "amount")
                   ) -> tuple[dt.date, list[dict]]:
    """Run the findings scan; resolve observation_end; raise on null ids/dates/amounts,
    refunds='error' or an impossible end. ``cols``: the input's column names, for messages."""
    if refunds not in REFUND_OPTIONS:
        raise ParameterError(f"refunds must be one of {REFUND_OPTIONS}, got {refunds!r}")
    probe_end = end or dt.date(9999, 12, 31)  # no end: every row is in the window
    f = run_sql(_findings_sql(base, probe_end), inputs, engine=engine,
                con=con if resolve_engine(engine, inputs) == "duckdb" else None).iloc[0]
    return _judge_findings(f, inputs, end, refunds, cols)


def scan_findings_many(inputs: Mapping[str, Any], base: str, ends: list[dt.date], refunds: str, con=None,
                       engine: str | None = None, cols: tuple[str, str, str] = ("customer_id", "date", "amount")
                       ) -> list[list[dict]]:
    """:func:`scan_findings` for several observation ends in one scan of the data: the findings of
    each end (in the order of ``ends``), equal to what :func:`scan_findings` gives for that end; the
    same errors."""
    if refunds not in REFUND_OPTIONS:
        raise ParameterError(f"refunds must be one of {REFUND_OPTIONS}, got {refunds!r}")
    per_end = "".join(
        f", SUM(CASE WHEN date > {date_literal(e)} THEN 1 ELSE 0 END) AS n_after_end_{k}"
        f", SUM(CASE WHEN amount < 0 AND date <= {date_literal(e)} THEN 1 ELSE 0 END) AS n_refunds_in_window_{k}"
        for k, e in enumerate(ends))
    sql = (f"WITH t AS ({base}) SELECT MIN(date) AS min_date, MAX(date) AS max_date, COUNT(*) AS n_rows, "
           f"SUM(CASE WHEN customer_id IS NULL THEN 1 ELSE 0 END) AS n_null_id, "
           f"SUM(CASE WHEN date IS NULL THEN 1 ELSE 0 END) AS n_null_date, "
           f"SUM(CASE WHEN amount IS NULL OR isnan(amount) THEN 1 ELSE 0 END) AS n_null_amount{per_end} FROM t")
    f = run_sql(sql, inputs, engine=engine, con=con if resolve_engine(engine, inputs) == "duckdb" else None).iloc[0]
    out = []
    for k, e in enumerate(ends):
        row = {key: f[key] for key in ("min_date", "max_date", "n_rows", "n_null_id", "n_null_date", "n_null_amount")}
        row["n_after_end"] = f[f"n_after_end_{k}"]
        row["n_refunds_in_window"] = f[f"n_refunds_in_window_{k}"]
        out.append(_judge_findings(row, inputs, e, refunds, cols)[1])
    return out


def _judge_findings(f: Mapping[str, Any], inputs: Mapping[str, Any], end: dt.date | None, refunds: str,
                    cols: tuple[str, str, str]) -> tuple[dt.date, list[dict]]:
    """The errors and findings of one row of the findings scan (:func:`scan_findings`)."""
    where = "" if isinstance(inputs.get("src"), pd.DataFrame) else f" ({inputs.get('src')})"
    for key, col, what in (("n_null_id", cols[0], "null customer id(s)"), ("n_null_date", cols[1], "null date(s)"),
                           ("n_null_amount", cols[2], "null/NaN amount(s)")):
        if f[key]:
            raise DataError(f"transactions.{col}{where}: {int(f[key])} {what}")
    if f["n_rows"] == 0:
        raise DataError("transactions: no rows")
    min_date = pd.Timestamp(f["min_date"]).date()
    max_date = pd.Timestamp(f["max_date"]).date()
    if end is None:
        end = max_date
    if end < min_date:
        raise ParameterError(f"observation_end {end} is before all transactions (first transaction {min_date}, "
                         f"last {max_date})")
    findings: list[dict] = []
    n_after = int(f["n_after_end"])
    if n_after:
        findings.append({"rule": "after_observation_end", "n_rows": n_after,
                         "detail": f"transactions dated after observation_end {end} (last {max_date}) left out"})
    n_ref = int(f["n_refunds_in_window"])
    if n_ref:
        if refunds == "error":
            raise DataError(f"transactions.amount: {n_ref} refund row(s) (negative amount) up to {end}; "
                             f"refunds='error'. Use refunds='include' or 'exclude'.")
        findings.append({"rule": f"refunds_{refunds}d", "n_rows": n_ref,
                         "detail": f"refund rows (amount < 0) {'netted in' if refunds == 'include' else 'left out'}"})
    return end, findings


def window_sql(base: str, end: dt.date, refunds: str, start: dt.date | None = None) -> str:
    """SQL of the transactions of relation ``base`` in (start, end] (days), refunds as given."""
    cond = [f"date <= {date_literal(end)}"]
    if start is not None:
        cond.append(f"date > {date_literal(start)}")
    if refunds == "exclude":
        cond.append("amount >= 0")
    return f"SELECT customer_id, date, amount FROM ({base}) b WHERE " + " AND ".join(cond)


def _finish(df: pd.DataFrame, findings: list[dict], sort: bool = False) -> pd.DataFrame:
    if sort:
        df = sort_rows(df, ["customer_id"])
    df = df.reset_index(drop=True)
    df.attrs["findings"] = findings
    return df


# --------------------------------------------------------------------------------------------
# SQL (one place per aggregation)
# --------------------------------------------------------------------------------------------
def rfm_sql(window: str, end: dt.date, *, distinct_days: bool = False) -> str:
    """SQL of the RFM table over ``window`` (a SELECT of customer_id, date, amount).

    ``distinct_days`` adds ``n_days`` (COUNT DISTINCT of dates: a second hash table, so only on
    request)."""
    e = date_literal(end)
    days = "COUNT(DISTINCT date)" if distinct_days else "CAST(NULL AS BIGINT)"
    return f"""
WITH t AS ({window})
SELECT customer_id,
       date_diff('day', MAX(date), {e}) AS recency_days,
       COUNT(*) AS n_transactions,
       {days} AS n_days,
       CAST({exact_sum('amount')} AS DOUBLE) AS monetary,
       MIN(date) AS first_date,
       MAX(date) AS last_date,
       date_diff('day', MIN(date), {e}) AS tenure_days
FROM t
GROUP BY customer_id
ORDER BY customer_id
"""


def btyd_sql(window: str, end: dt.date, time_unit_days: float, *, cte_prefix: str = "") -> str:
    """SQL of the BTYD summary: purchase days first (same-day amounts summed), then per customer.

    The repeat-day total is the total minus the first day's total (``ARG_MIN``; Spark: ``MIN_BY``),
    which avoids a join back to each customer's first date. ``cte_prefix`` prefixes the CTE names
    (sqlglot moves nested CTEs to the top for Spark, where names must be unique).
    """
    e = date_literal(end)
    u = f"CAST({float(time_unit_days)!r} AS DOUBLE)"  # a decimal literal would be DECIMAL in Spark
    t, days = f"{cte_prefix}t", f"{cte_prefix}days"
    return f"""
WITH {t} AS ({window}),
{days} AS (
    SELECT customer_id, date, {exact_sum('amount')} AS day_amount FROM {t} GROUP BY customer_id, date
)
SELECT customer_id,
       COUNT(*) - 1 AS frequency,
       date_diff('day', MIN(date), MAX(date)) / {u} AS recency,
       date_diff('day', MIN(date), {e}) / {u} AS T,
       COALESCE(CAST(SUM(day_amount) - ARG_MIN(day_amount, date) AS DOUBLE) / NULLIF(COUNT(*) - 1, 0), 0.0)
           AS monetary_value,
       MIN(date) AS first_date,
       MAX(date) AS last_date
FROM {days}
GROUP BY customer_id
ORDER BY customer_id
"""


def holdout_sql(window: str, customers: str, *, cte_prefix: str = "") -> str:
    """SQL of the holdout counts: purchase days in the holdout window of calibration customers.
    ``cte_prefix`` as in :func:`btyd_sql`."""
    t, days = f"{cte_prefix}t", f"{cte_prefix}days"
    return f"""
WITH {t} AS ({window}),
{days} AS (
    SELECT customer_id, date, {exact_sum('amount')} AS day_amount FROM {t} GROUP BY customer_id, date
)
SELECT d.customer_id AS customer_id, COUNT(*) AS frequency_holdout,
       CAST(SUM(d.day_amount) AS DOUBLE) / NULLIF(COUNT(*), 0) AS monetary_value_holdout
FROM {days} d JOIN ({customers}) c ON d.customer_id = c.customer_id
GROUP BY d.customer_id
"""


def rfm_output_sql(rfm: str, *, distinct_days: bool = False) -> str:
    """The :func:`rfm_table` columns over ``rfm`` (the SQL of :func:`rfm_sql`), for ``output=``."""
    freq = "n_days" if distinct_days else "n_transactions"
    return f"""
SELECT customer_id, recency_days, {freq} AS frequency, monetary,
       monetary / NULLIF(n_transactions, 0) AS monetary_mean, first_date, last_date, tenure_days,
       n_transactions, n_days
FROM ({rfm}) r
ORDER BY customer_id
"""


def holdout_output_sql(calibration: str, holdout: str, duration: float) -> str:
    """The :func:`calibration_holdout` columns: ``calibration`` (:func:`btyd_sql`) left-joined to
    ``holdout`` (:func:`holdout_sql`), for ``output=``. Build the two with different
    ``cte_prefix`` values (Spark rejects duplicate CTE names once sqlglot hoists them)."""
    d = f"CAST({float(duration)!r} AS DOUBLE)"
    return f"""
SELECT c.customer_id AS customer_id, c.frequency AS frequency, c.recency AS recency, c.T AS T,
       c.monetary_value AS monetary_value, c.first_date AS first_date, c.last_date AS last_date,
       COALESCE(h.frequency_holdout, 0) AS frequency_holdout,
       COALESCE(h.monetary_value_holdout, 0.0) AS monetary_value_holdout,
       {d} AS duration_holdout
FROM ({calibration}) c LEFT JOIN ({holdout}) h ON c.customer_id = h.customer_id
ORDER BY customer_id
"""


def _written(path: Any, findings: list[dict], what: str) -> Path | str:
    """The output path of a summary written to Parquet; its findings are raised as a warning."""
    if findings:
        text = "; ".join(f"{f['rule']}: {f['n_rows']} row(s) ({f['detail']})" for f in findings)
        warnings.warn(f"{what} written to {path}; data-quality findings: {text}", UserWarning, stacklevel=3)
    return path


def _n_rows_written(path: Any) -> int | None:
    """Rows in a local Parquet output (file or Spark folder), from the footers; None if remote."""
    if "://" in str(path):
        return None
    import pyarrow.dataset as ds

    p = Path(path)
    files = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
    return ds.dataset([str(f) for f in files], format="parquet").count_rows() if files else 0


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------
def rfm_table(
    transactions: pd.DataFrame | Source,
    *,
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    frequency: Literal["transactions", "days"] = "transactions",
    refunds: Refunds = "include",
    engine: str | None = None,
    output: str | os.PathLike | None = None,
    con: Any = None,
) -> pd.DataFrame | Path:
    """Recency, frequency and monetary value per customer up to ``observation_end`` (inclusive).

    Parameters
    ----------
    transactions : DataFrame, or path to Parquet/CSV (file, glob or folder); with
        ``engine="spark"`` also a Spark DataFrame or a table name of the session's catalog.
    observation_end : last day of the window (date or ISO string); None: the last transaction date.
    frequency : ``"transactions"`` counts rows, ``"days"`` counts distinct transaction days.
    refunds : how negative amounts are treated (see module docstring).
    engine : "duckdb" or "spark" (see :mod:`rmanalytics.engine`). With "spark" the checks and the
        aggregation run in Spark (Spark DataFrames, table names and paths are read by Spark; only
        one row of findings and the per-customer result reach the driver).
    output : if given, write the result to Parquet at this path (same columns; DuckDB: one file,
        Spark: a folder) and return the path instead of a frame; findings are raised as a
        ``UserWarning``.
    con : an existing DuckDB connection (e.g. ``rmanalytics.engine.connect(memory_limit="1.5GB")``).

    Returns
    -------
    DataFrame with ``customer_id``, ``recency_days`` (days from the last transaction to
    observation_end), ``frequency``, ``n_transactions``, ``n_days``, ``monetary`` (total amount, currency),
    ``monetary_mean`` (monetary / n_transactions), ``first_date``, ``last_date``, ``tenure_days``
    (days from the first transaction to observation_end), ``n_transactions`` and ``n_days``
    (distinct transaction days; only with ``frequency="days"``, else NA).
    Findings in ``.attrs["findings"]``.
    """
    if frequency not in ("transactions", "days"):
        raise ParameterError(f"frequency must be 'transactions' or 'days', got {frequency!r}")
    end = as_date(observation_end, "observation_end") if observation_end is not None else None
    inputs, base = transaction_inputs(transactions, customer_col, date_col, amount_col, con=con, engine=engine)
    end, findings = scan_findings(inputs, base, end, refunds, con=con, engine=engine,
                                   cols=(customer_col, date_col, amount_col))
    sql = rfm_sql(window_sql(base, end, refunds), end, distinct_days=frequency == "days")
    if output is not None:
        out = run_sql(rfm_output_sql(sql, distinct_days=frequency == "days"), inputs, engine=engine, con=con,
                      output=output)
        return _written(out, findings, "rfm_table")
    return rfm_frame(run_sql(sql, inputs, engine=engine, con=con), frequency, findings)


def rfm_frame(df: pd.DataFrame, frequency: str, findings: list[dict]) -> pd.DataFrame:
    """The :func:`rfm_table` result from the rows of :func:`rfm_sql` (columns, dtypes, findings)."""
    df["frequency"] = df["n_transactions"] if frequency == "transactions" else df["n_days"]
    df["monetary_mean"] = df["monetary"] / df["n_transactions"]
    for c in ("recency_days", "tenure_days", "n_transactions", "frequency"):
        df[c] = df[c].astype("int64")
    if frequency == "days":
        df["n_days"] = df["n_days"].astype("int64")
    for c in ("first_date", "last_date"):
        df[c] = pd.to_datetime(df[c])
    df = df[["customer_id", "recency_days", "frequency", "monetary", "monetary_mean", "first_date", "last_date",
             "tenure_days", "n_transactions", "n_days"]]
    return _finish(df, findings)


def btyd_summary(
    transactions: pd.DataFrame | Source,
    *,
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    time_unit_days: float = 1.0,
    refunds: Refunds = "include",
    engine: str | None = None,
    output: str | os.PathLike | None = None,
    con: Any = None,
) -> pd.DataFrame | Path:
    """The buy-till-you-die customer summary (frequency, recency, T, monetary_value).

    Standard convention (Fader, Hardie & Lee 2005; the ``lifetimes`` package with ``freq="D"``):
    transactions are first collapsed to purchase days (same-day amounts summed), then

    - ``frequency``: number of repeat purchase days (distinct days after the first one);
    - ``recency``: days from the first to the last purchase day / ``time_unit_days``;
    - ``T``: days from the first purchase day to ``observation_end`` / ``time_unit_days``;
    - ``monetary_value``: mean day total over the repeat days (0 without repeats), currency.

    Durations are differences of calendar dates, so ``T`` runs to the *start* of
    ``observation_end``: a customer first buying on 1997-01-01 has T = 272 / 7 = 38.857 weeks at
    observation_end 1997-09-30 — this is the published CDNOW summary (39-week calibration period,
    T rounded to 38.86; reproduced exactly for all 2,357 customers, see the tests; also equal to
    ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")``). A transaction dated
    observation_end is included. Transactions after it
    are left out and counted in ``.attrs["findings"]``. The result also holds ``first_date`` and
    ``last_date``.

    ``transactions``, ``engine`` and ``output`` as in :func:`rfm_table` (Spark DataFrames and
    table names with ``engine="spark"``; ``output=`` writes Parquet and returns the path).
    """
    if not time_unit_days > 0:
        raise ParameterError(f"time_unit_days must be > 0, got {time_unit_days!r}")
    end = as_date(observation_end, "observation_end") if observation_end is not None else None
    inputs, base = transaction_inputs(transactions, customer_col, date_col, amount_col, con=con, engine=engine)
    end, findings = scan_findings(inputs, base, end, refunds, con=con, engine=engine,
                                   cols=(customer_col, date_col, amount_col))
    sql = btyd_sql(window_sql(base, end, refunds), end, time_unit_days)
    if output is not None:
        return _written(run_sql(sql, inputs, engine=engine, con=con, output=output), findings, "btyd_summary")
    df = run_sql(sql, inputs, engine=engine, con=con)
    df["frequency"] = df["frequency"].astype("int64")
    for c in ("recency", "T", "monetary_value"):
        df[c] = df[c].astype("float64")
    for c in ("first_date", "last_date"):
        df[c] = pd.to_datetime(df[c])
    return _finish(df, findings)


def calibration_holdout(
    transactions: pd.DataFrame | Source,
    *,
    calibration_end: Any,
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    time_unit_days: float = 1.0,
    refunds: Refunds = "include",
    engine: str | None = None,
    output: str | os.PathLike | None = None,
    con: Any = None,
) -> pd.DataFrame | Path:
    """BTYD summary of a calibration period plus what each customer did in the holdout period.

    The calibration summary is :func:`btyd_summary` at ``calibration_end`` (customers whose first
    purchase is after it are not in the result). The holdout period is
    (calibration_end, observation_end]: ``frequency_holdout`` counts its purchase days,
    ``monetary_value_holdout`` is their mean day total (0 without purchases) and
    ``duration_holdout`` = days from calibration_end to observation_end / ``time_unit_days``.
    Column names follow ``lifetimes.utils.calibration_and_holdout_data``; checked against lifetimes
    0.11.3 on CDNOW (calibration to 1997-09-30, holdout to 1998-06-30, days): every column equal
    except ``monetary_value_holdout``, which lifetimes averages over holdout *transactions*
    while here it averages purchase-day totals, consistently with ``monetary_value``.

    ``transactions``, ``engine`` and ``output`` as in :func:`rfm_table` (``output=`` runs the
    calibration summary and the holdout counts as one query and writes Parquet).
    """
    cal_end = as_date(calibration_end, "calibration_end")
    end = as_date(observation_end, "observation_end") if observation_end is not None else None
    inputs, base = transaction_inputs(transactions, customer_col, date_col, amount_col, con=con, engine=engine)
    end, findings = scan_findings(inputs, base, end, refunds, con=con, engine=engine,
                                   cols=(customer_col, date_col, amount_col))
    if cal_end >= end:
        raise ParameterError(f"calibration_end {cal_end} must be before observation_end {end}")
    cal_sql = btyd_sql(window_sql(base, cal_end, refunds), cal_end, time_unit_days)
    customers = f"SELECT customer_id FROM ({window_sql(base, cal_end, refunds)}) w GROUP BY customer_id"
    hold_sql = holdout_sql(window_sql(base, end, refunds, start=cal_end), customers)
    if output is not None:
        one = holdout_output_sql(btyd_sql(window_sql(base, cal_end, refunds), cal_end, time_unit_days, cte_prefix="cal_"),
                                 holdout_sql(window_sql(base, end, refunds, start=cal_end), customers, cte_prefix="hold_"),
                                 (end - cal_end).days / float(time_unit_days))
        out = run_sql(one, inputs, engine=engine, con=con, output=output)
        if _n_rows_written(out) == 0:
            raise ParameterError(f"calibration_end {cal_end} is before all transactions ({out} holds no rows)")
        return _written(out, findings, "calibration_holdout")
    cal = run_sql(cal_sql, inputs, engine=engine, con=con)
    if cal.empty:
        raise ParameterError(f"calibration_end {cal_end} is before all transactions")
    hold = run_sql(hold_sql, inputs, engine=engine, con=con)
    df = cal.merge(hold, on="customer_id", how="left")
    df["frequency"] = df["frequency"].astype("int64")
    df["frequency_holdout"] = df["frequency_holdout"].fillna(0).astype("int64")
    df["monetary_value_holdout"] = df["monetary_value_holdout"].fillna(0.0).astype("float64")
    df["duration_holdout"] = (end - cal_end).days / float(time_unit_days)
    for c in ("recency", "T", "monetary_value"):
        df[c] = df[c].astype("float64")
    for c in ("first_date", "last_date"):
        df[c] = pd.to_datetime(df[c])
    return _finish(df, findings, sort=True)


def findings_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The data-quality findings attached to a summary, as a DataFrame (rule, n_rows, detail)."""
    return pd.DataFrame(df.attrs.get("findings", []), columns=["rule", "n_rows", "detail"])
