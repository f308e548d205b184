"""The execution engine for heavy aggregations: DuckDB (embedded, default) or Spark.

Every heavy aggregation in rmanalytics (RFM tables, buy-till-you-die summaries, survival
covariates, KPI aggregation) is written once, as SQL in DuckDB's dialect, in the module that owns
it, and run through :func:`run_sql`:

- ``engine="duckdb"`` (default) runs it in an embedded DuckDB. DuckDB scans pandas frames, Parquet
  and CSV files directly and spills to disk, so inputs larger than memory work on one machine.
- ``engine="spark"`` translates the same SQL text to Spark SQL with sqlglot
  (:func:`transpile`), registers the inputs as temporary views and runs ``spark.sql(...)`` in the
  given (or active) ``SparkSession``, local or on a cluster. The whole aggregation runs in Spark;
  only its (small) result reaches the driver, through Arrow (``toPandas``), or it is written to
  Parquet by the executors when ``output=`` is given, so a billion-row input never reaches the
  driver.

Why one SQL text transpiled by sqlglot (and not Ibis, narwhals or a copy per engine)
---------------------------------------------------------------------------------------
- One definition per aggregation: the SQL text is the single source; nothing is maintained twice.
  A hand-written PySpark copy next to the SQL would drift.
- sqlglot is a maintained, dependency-free SQL parser/transpiler with DuckDB and Spark dialects;
  it is the SQL compiler Ibis itself is built on (current Ibis compiles its SQL backends, PySpark
  included, to sqlglot expressions: ``ibis.backends.sql.compilers.PySparkCompiler``). Calling it
  directly gives the same compilation step without rewriting each aggregation in Ibis's
  expression API and without adding ``ibis-framework`` and its PySpark backend as a dependency
  to keep in step with both DuckDB and Spark releases. narwhals covers DataFrame APIs (PySpark
  only lazily, with a subset of the API), not SQL, and would again mean re-expressing every
  aggregation (CTEs, window functions, date arithmetic) in a second form.
- The SQL stays readable and runnable as is in DuckDB (the default engine, and the one analysts
  debug with); the Spark text is generated, never edited.
- Dialect differences that sqlglot does not bridge are known (the *portable SQL rules* below) and
  the parity tests (``tests/unit/test_spark_parity.py``) run every aggregation on DuckDB, Spark
  and an independent pandas computation and require identical tables.
- ``transpile`` raises (``unsupported_level=RAISE``) instead of silently emitting SQL sqlglot
  knows to be unsupported in Spark.

Portable SQL rules (write the DuckDB SQL so that Spark computes the same thing)
-------------------------------------------------------------------------------
Checked on DuckDB 2.0, Spark 4.3 (ANSI mode, the default) and sqlglot 30; each rule has a test
in ``tests/unit/test_spark_parity.py`` (``test_rule_*``) that fails if an upgrade changes it.

Safe as written: ``CAST(x AS DATE)``, ``COUNT(DISTINCT CAST(date AS DATE))``, ``MIN``/``MAX``
of dates, ``SUM``/``AVG``/``COUNT``, ``COUNT(*) FILTER (WHERE ...)``, ``count_if``, ``bool_or``,
``CASE WHEN``, ``COALESCE``, ``NULLIF``, ``GREATEST``/``LEAST``, CTEs, ``UNION [ALL]``, joins,
window functions (``ROW_NUMBER``/``LAG``/``NTILE``/``PERCENT_RANK``/``SUM() OVER``; sqlglot
makes DuckDB's NULLS LAST default explicit), ``date_trunc('month'|'quarter', d)``,
``year()``/``month()``/``quarter()``, ``last_day``, ``make_date``, ``date + INTERVAL 90 DAY``,
``- INTERVAL 1 MONTH`` (literal counts; month-end clamping agrees), ``DATE '2024-12-31'``,
``date_diff('day', a, b)`` on DATEs, ``CAST(d AS DATE) + CAST(n AS INTEGER)`` and
``date_add(d, CAST(n AS INTEGER))`` (column day counts), ``x / y`` with integer or double
operands (true division, double, in both), ``x // y`` (integer division truncating toward zero
in both), ``median``, ``stddev_samp``/``var_samp``, ``ln``, ``exp``, ``ROUND`` of doubles,
``CAST(year(d) AS VARCHAR) || 'Q' || CAST(quarter(d) AS VARCHAR)`` labels.

1. ``date_diff('day', a, b)``: cast both sides to DATE (``date_diff('day', CAST(a AS DATE),
   CAST(b AS DATE))``). On timestamps DuckDB counts day *boundaries* crossed, Spark counts *whole
   24 h periods* (2024-01-31 23:00 -> 2024-02-01 01:00: DuckDB 1, Spark 0); the same holds when
   only one side is a timestamp.
2. ``date_diff('month'|'year', ...)`` differ even on DATEs (DuckDB: boundaries crossed; Spark:
   whole units elapsed; 2024-01-31 -> 2024-02-01 is 1 month in DuckDB, 0 in Spark). Use day
   differences, or ``(year(b) - year(a)) * 12 + month(b) - month(a)`` for calendar months.
3. Never subtract dates (``d1 - d2``): DuckDB gives an integer, Spark an interval. Use
   ``date_diff('day', ...)``.
4. Never divide (or multiply) by a decimal literal when the other side is an integer:
   ``date_diff('day', a, b) / 7.0`` is DECIMAL in Spark and rounds to 6 decimals
   (1.714286 vs DuckDB's 1.7142857142857142). Write ``/ 7`` (integer literal: true division,
   double) or ``/ CAST(7.0 AS DOUBLE)``; a DOUBLE column divided by ``7.0`` is fine.
5. No ``INTERVAL (expr) DAY`` with a column (Spark parse error) and no ``to_days``; add day counts
   with ``+ CAST(n AS INTEGER)`` or ``date_add(d, CAST(n AS INTEGER))`` (BIGINT is rejected by
   both).
6. No ``epoch_ms(ts)``: sqlglot maps it to Spark's ``TIMESTAMP_MILLIS`` (the inverse function).
   ``epoch(ts)`` returns a double in DuckDB and a bigint in Spark (``UNIX_TIMESTAMP``, which
   depends on the session time zone). Work in days on DATEs instead.
7. No ``log(x)``: base 10 in DuckDB, natural in Spark (sqlglot keeps it). Use ``ln`` or
   ``log10``.
8. No day-of-week numbers: ``dayofweek``/``isodow``/``date_part('dow', ...)`` are numbered
   differently (DuckDB Sunday = 0, Spark Sunday = 1) and sqlglot's isodow mapping is off by one.
9. Division by zero: Spark runs in ANSI mode and raises ``DIVIDE_BY_ZERO`` for ``x / 0`` even
   on doubles, where DuckDB returns ``inf``/NaN. Guard every ratio: ``x / NULLIF(y, 0)``.
   Integer overflow raises in both.
10. Quantiles: ``quantile_cont(x, q)`` becomes ``PERCENTILE_CONT(x, q)``, which Spark rejects;
    ``median`` works in both. Compute other quantiles in pandas on the aggregated table.
11. ``strftime``/``strptime`` are translated with format-string conversion (C -> Java patterns);
    ``'%Y-%m'`` works but prefer ``year()``/``month()`` labels or pandas on the small result.
12. No DuckDB-only syntax: ``SELECT * EXCLUDE``, list/struct functions, ``UNNEST``, macros,
    ``range()``, ``QUALIFY`` (sqlglot rewrites it into a subquery, but write the subquery).
13. Alias every computed output column (unaliased expressions get different names per engine),
    keep output names unique, and when row order matters end with an ``ORDER BY`` on a unique
    key: rows tied on the sort key come back in different orders (the same holds for
    ``ROW_NUMBER() OVER (... ORDER BY ...)``: order by a unique key, e.g. ``share DESC, rm_id``).
14. Floating-point sums run in a different order (Spark: per partition, then merged), so SUM/AVG
    of doubles agree to ~1e-15 relative, not always bit for bit; compare with a relative
    tolerance (the parity tests use 1e-9). Counts, MIN/MAX, dates and integer sums are exact.
    The order also changes between two DuckDB runs (parallel scans): where a sum of doubles feeds
    a fit or quantile edges, sum exactly, ``SUM(CAST(x AS DECIMAL(38, 18)))``
    (:func:`rmanalytics.rfm.summary.exact_sum`), and cast to DOUBLE before dividing.

:func:`portability_problems` / :func:`check_portable` enforce rules 2-10, 12 and 13 on the syntax
tree, independently of what sqlglot or Spark currently do with the construct (an upstream fix
must not let it back in); :func:`run_sql` refuses such SQL on Spark before running anything, and a
test runs every statement the package issues through the checker (:func:`record_sql`).

Inputs on Spark: Parquet written by pandas/pyarrow stores nanosecond timestamps, which Spark
cannot read (``PARQUET_TYPE_ILLEGAL``); :func:`run_sql` detects them from the file footer, reads
them as longs (``spark.sql.legacy.parquet.nanosAsLong`` for the duration of the call) and turns
them back into timestamps inside Spark. Use ``spark.sql.session.timeZone=UTC`` so that naive
timestamps keep their wall-clock value (:func:`rmanalytics.spark.local_session` does).

Result normalisation (``normalize=True``, both engines)
-------------------------------------------------------
So that the same SQL returns equal frames on both engines: integer columns (any width; DuckDB's
HUGEINT from ``SUM`` of integers included) become ``int64`` (``float64`` with NaN when the column
holds NULLs), DECIMAL and FLOAT become ``float64``, DATE and TIMESTAMP become ``datetime64[ns]``
(``datetime64[us]`` for a column holding a date outside 1677-2262, e.g. an open-end sentinel
2999-12-31; naive; Spark is expected to run with ``spark.sql.session.timeZone=UTC``), BOOLEAN stays ``bool``
(``object`` when NULLs are present), strings stay ``object``. The casts for integers and decimals
happen inside the engine (also for ``output=`` Parquet files); the datetime conversion in pandas.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

Source = Any  # pandas.DataFrame | str | os.PathLike | pyspark.sql.DataFrame | table name (Spark)

ENGINES = ("duckdb", "spark")


# --------------------------------------------------------------------------------------------
# DuckDB
# --------------------------------------------------------------------------------------------
#: Variables run-all sets to each kernel's share of the CPUs when notebooks run side by side.
CPU_SHARE_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_share() -> int:
    """CPUs this process may keep busy: the thread count run-all gives each kernel when notebooks
    share the machine (the first of :data:`CPU_SHARE_VARS` set to a positive integer), else every
    CPU (``os.cpu_count()``). For work that runs in threads and gives the same results with any
    number of them (e.g. building a random forest's trees)."""
    for v in CPU_SHARE_VARS:
        try:
            n = int(os.environ.get(v, ""))
        except ValueError:
            continue
        if n > 0:
            return n
    return os.cpu_count() or 1


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Context manager: BLAS (numpy's matrix products) on one thread inside the block.

    For small dense algebra (an optimiser's 4 x 4 Hessian, fixed-effects designs of a few hundred
    columns) BLAS threads cost more than they save, and with two notebooks on two cores they
    compete with the other kernel: at 1M customers fe_regression took 11 s instead of 1 s. Results
    are equal to rounding. A no-op without threadpoolctl (it comes with scikit-learn).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def scan_expr(path: str | os.PathLike) -> str:
    """DuckDB table function scanning a Parquet/CSV file, a glob, or a folder of such files."""
    p = Path(path)
    text = str(path)
    if p.is_dir():
        parquet = sorted(p.glob("*.parquet"))
        if parquet:
            return f"read_parquet('{(p / '*.parquet').as_posix()}')"
        csv = sorted(p.glob("*.csv"))
        if csv:
            return f"read_csv_auto('{(p / '*.csv').as_posix()}')"
        raise FileNotFoundError(f"folder {text!r} holds no .parquet or .csv files")
    lower = text.lower()
    if lower.endswith(".parquet") or lower.endswith(".parq"):
        return f"read_parquet('{text}')"
    if lower.endswith(".csv") or lower.endswith(".csv.gz"):
        return f"read_csv_auto('{text}')"
    raise ValueError(f"cannot read {text!r}: expected a .parquet or .csv file, a glob or a folder")


#: Environment variable with the DuckDB memory limit of every connection (e.g. ``"4GB"``); run-all sets it.
MEMORY_LIMIT_ENV = "RMANALYTICS_MEMORY_LIMIT"
#: Environment variable with the folder DuckDB spills to when a query exceeds its memory limit.
TEMP_DIR_ENV = "RMANALYTICS_TEMP_DIR"
#: Share of the machine's RAM that the chain may use in total (split between parallel jobs).
MEMORY_SHARE = 0.5
#: Share of the machine's RAM given to DuckDB's buffers (split between parallel jobs): half of
#: MEMORY_SHARE, the other half is for the kernels' pandas frames. At 10M customers a 12 GB DuckDB
#: limit (half of 24 GB) let notebook 01's kernel reach 11 GB; with 5 GB it peaked at 7 GB.
DUCKDB_MEMORY_SHARE = 0.25


def total_memory() -> int:
    """Physical memory of the machine in bytes (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def default_memory_limit(jobs: int = 1) -> str | None:
    """The DuckDB memory limit of one job: ``$RMANALYTICS_MEMORY_LIMIT`` when set, else
    :data:`DUCKDB_MEMORY_SHARE` of the machine's RAM divided by ``jobs`` (as ``"<n>MB"``; None when
    the RAM is unknown, leaving DuckDB's own default of 80 %)."""
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        return env
    ram = total_memory()
    if not ram:
        return None
    return f"{max(int(ram * DUCKDB_MEMORY_SHARE / max(int(jobs), 1) / 2**20), 256)}MB"


def temp_directory() -> str:
    """Where DuckDB spills: ``$RMANALYTICS_TEMP_DIR``, else ``<tmp>/rmanalytics-duckdb-<user id>``."""
    import tempfile

    env = os.environ.get(TEMP_DIR_ENV)
    if env:
        return env
    return str(Path(tempfile.gettempdir()) / f"rmanalytics-duckdb-{getattr(os, 'getuid', lambda: 0)()}")


def connect(threads: int | None = None, memory_limit: str | None = None,
            temp_dir: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection with a memory budget.

    ``memory_limit`` (e.g. ``"4GB"``) defaults to :func:`default_memory_limit` (the run-all budget
    when run-all set it); above it DuckDB spills to ``temp_dir`` (default :func:`temp_directory`)
    instead of growing. Every :func:`run_sql` call without ``con`` uses such a connection.
    """
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    limit = memory_limit or default_memory_limit()
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    con.execute("SET temp_directory = '" + str(temp_dir or temp_directory()).replace("'", "''") + "'")
    return con


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_normalised_sql(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` wrapped in a SELECT that casts integers to BIGINT and decimals/floats to DOUBLE."""
    rel = con.sql(sql)
    cols = []
    changed = False
    for name, typ in zip(rel.columns, rel.types):
        t = str(typ).upper()
        q = _quote(name)
        if t in ("HUGEINT", "UHUGEINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT",
                 "UTINYINT", "UBIGINT"):
            cols.append(f"CAST({q} AS BIGINT) AS {q}")
            changed = True
        elif t.startswith("DECIMAL") or t == "FLOAT":
            cols.append(f"CAST({q} AS DOUBLE) AS {q}")
            changed = True
        elif t in ("TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
            cols.append(f"CAST({q} AS TIMESTAMP) AS {q}")
            changed = True
        else:
            cols.append(q)
    if not changed:
        return sql
    return f"SELECT {', '.join(cols)} FROM ({sql}) AS _rmanalytics_result"


def _run_duckdb(sql, inputs, output, con, normalize):
    own = con is None
    con = con or connect()
    try:
        for name, src in inputs.items():
            if isinstance(src, pd.DataFrame):
                con.register(name, src)
            elif isinstance(src, (str, os.PathLike)):
                con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {scan_expr(src)}')
            else:
                raise TypeError(
                    f"input {name!r}: engine='duckdb' takes a pandas DataFrame or a Parquet/CSV path, "
                    f"got {type(src).__name__} (a Spark DataFrame needs engine='spark')"
                )
        final = _duckdb_normalised_sql(con, sql) if normalize else sql
        if output is not None:
            out = Path(output)
            out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({final}) TO '{out.as_posix()}' (FORMAT PARQUET)")
            return out
        con.execute(final)
        df = fetch_frame(con)
        return normalize_frame(df, copy=False) if normalize else df
    finally:
        if own:
            con.close()


#: DuckDB vectors (2,048 rows each) per chunk of :func:`fetch_frame`.
FETCH_VECTORS = 256


def fetch_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The result of the query just executed on ``con`` as pandas, with the dtypes of DuckDB's
    ``.df()``, fetched in chunks of :data:`FETCH_VECTORS` vectors whose repeated strings share one
    Python object per distinct value.

    ``.df()`` makes a new ``str`` object for every row of a VARCHAR column (about 55 bytes each):
    at 10M customers the nine repeated text columns of the churn frame (type, branch, RM, level,
    ...) held 5 GB for a few thousand distinct values. Here each chunk's strings are mapped to one
    object per value (a dictionary kept per column across chunks); values, missing values (None)
    and dtypes are as ``.df()`` gives them. Columns whose first chunk has mostly distinct values
    (ids) keep their strings and are not hashed again in later chunks (10M ids took seconds).
    """
    parts, canon, ids = [], {}, set()
    while True:
        chunk = con.fetch_df_chunk(FETCH_VECTORS)
        if parts and not len(chunk):
            break
        parts.append(_shared_chunk(chunk, canon, ids, first=not parts))
        if not len(chunk):
            break
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)  # dtypes follow the SQL types


def _shared_chunk(chunk: pd.DataFrame, canon: dict, ids: set, first: bool) -> pd.DataFrame:
    """One chunk of :func:`fetch_frame` with its text columns shared (``canon``: column -> value ->
    object; ``ids``: columns taken for ids, updated from the first chunk)."""
    for c in chunk.columns:
        if chunk[c].dtype == object:
            a = chunk[c].to_numpy()
            shared = a if c in ids else share_strings(a, canon.setdefault(c, {}))
            if (shared is a and first and len(a) == FETCH_VECTORS * 2048
                    and pd.api.types.infer_dtype(a[:4096], skipna=True) == "string"):
                ids.add(c)  # strings, yet the whole first chunk was mostly distinct: ids
            # set every text column, ids too: that copies it out of the chunk's 2-D block of text
            # columns, which would otherwise stay alive with every row's own strings (10M: +4 GB)
            chunk[c] = shared
    return chunk


def share_strings(values: np.ndarray, canon: dict | None = None) -> np.ndarray:
    """``values`` (an object array) with equal strings replaced by one object per value: the first
    one seen, kept in ``canon`` (value -> object, updated; shared across calls, e.g. the chunks of
    one column). Returned as it is unless every non-missing value is a str and at most half of them
    are distinct (ids have nothing to share); missing values (None, NaN) stay as they were."""
    if len(values) < 2 or pd.api.types.infer_dtype(values, skipna=True) != "string":
        return values
    codes, uniq = pd.factorize(values)
    if len(uniq) * 2 > len(values):
        return values
    canon = {} if canon is None else canon
    shared = np.array([canon.setdefault(u, u) for u in uniq.tolist()], dtype=object)
    out = values.copy()
    ok = codes >= 0
    out[ok] = shared[codes[ok]]
    return out


# --------------------------------------------------------------------------------------------
# SQL translation
# --------------------------------------------------------------------------------------------
def _parse(sql: str):
    import sqlglot

    statements = sqlglot.parse(sql, read="duckdb")
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise ValueError(f"run_sql takes exactly one SELECT statement, got {len(statements)}")
    return statements[0]


def _generate_spark(expression) -> str:
    from sqlglot import ErrorLevel

    return expression.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


def transpile(sql: str, engine: str = "spark") -> str:
    """The SQL (DuckDB dialect) as ``engine`` runs it: unchanged for DuckDB, Spark SQL for Spark.

    Raises ``sqlglot.errors.UnsupportedError`` when sqlglot knows the construct has no Spark
    equivalent, and ``sqlglot.errors.ParseError`` for invalid SQL.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "duckdb":
        return sql
    return _generate_spark(_parse(sql))


class NonPortableSQLError(ValueError):
    """SQL uses a construct that the portable-SQL rules (module docstring) forbid."""


_DATEISH = {"DATE", "TIMESTAMP", "DATETIME", "TIMESTAMPNTZ", "TIMESTAMPTZ"}


def _is_date_cast(node) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Cast) and node.to.this.name in _DATEISH


def _is_nonzero_literal(node) -> bool:
    from sqlglot import exp

    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and node.is_number and float(node.this) != 0.0


def portability_problems(sql: str) -> list[str]:
    """The portable-SQL rules (module docstring) that ``sql`` breaks, as "rule N: ..." strings.

    A static check of the statement's syntax tree, independent of what sqlglot or Spark do with
    the construct today: our SQL must avoid these constructs whether or not an upstream release
    happens to translate them correctly. Rules 1, 11 and 14 need column types or values and are
    not checked here (the parity tests cover them).
    """
    from sqlglot import exp

    tree = _parse(sql)
    found: list[str] = []

    def add(rule: int, what: str) -> None:
        msg = f"rule {rule}: {what}"
        if msg not in found:
            found.append(msg)

    for node in tree.walk():
        if isinstance(node, exp.DateDiff):
            unit = (node.args.get("unit").name if node.args.get("unit") is not None else "day").lower()
            if unit not in ("day", "days", "d"):
                add(2, f"date_diff('{unit}', ...) differs between engines; use day differences or year()/month()")
        elif isinstance(node, exp.Sub) and (_is_date_cast(node.this) or _is_date_cast(node.expression)) and \
                (_is_date_cast(node.this) and _is_date_cast(node.expression)):
            add(3, "date - date is an integer in DuckDB and an interval in Spark; use date_diff('day', ...)")
        elif isinstance(node, (exp.Div, exp.Mul)):
            for side in (node.this, node.expression):
                if isinstance(side, exp.Literal) and side.is_number and "." in side.this:
                    add(4, f"arithmetic with the decimal literal {side.this} is DECIMAL in Spark; "
                           f"write an integer literal or CAST({side.this} AS DOUBLE)")
            if isinstance(node, exp.Div) and not isinstance(node, exp.IntDiv):
                den = node.expression
                while isinstance(den, exp.Paren):
                    den = den.this
                if not (isinstance(den, exp.Nullif) or _is_nonzero_literal(den)):
                    add(9, f"division by {den.sql(dialect='duckdb')} can be by zero (Spark raises); "
                           f"guard it with NULLIF(..., 0)")
        elif isinstance(node, exp.Interval) and not isinstance(node.this, exp.Literal):
            add(5, "INTERVAL with a computed count fails on Spark; use date_add(d, CAST(n AS INTEGER))")
        elif isinstance(node, exp.ToDays):
            add(5, "to_days() has no Spark equivalent; use date_add(d, CAST(n AS INTEGER))")
        elif isinstance(node, (exp.UnixToTime, exp.TimeToUnix)):
            add(6, "epoch()/epoch_ms() differ between engines; work in days on DATEs")
        elif isinstance(node, exp.Log) and node.args.get("expression") is None:
            add(7, "log(x) is base 10 in DuckDB and natural in Spark; use ln(x) or log10(x)")
        elif isinstance(node, (exp.DayOfWeek, exp.DayOfWeekIso)) or (
                isinstance(node, exp.Extract) and node.this.name.lower() in ("dow", "isodow", "dayofweek")) or (
                isinstance(node, exp.Anonymous) and node.name.lower() in ("date_part", "datepart")
                and node.expressions and node.expressions[0].name.lower() in ("dow", "isodow", "dayofweek")):
            add(8, "day-of-week numbers differ between engines")
        elif isinstance(node, (exp.PercentileCont, exp.PercentileDisc, exp.Quantile, exp.ApproxQuantile)):
            add(10, "quantiles other than median are not portable; compute them in pandas on the result")
        elif isinstance(node, exp.Star) and any(node.args.get(k) for k in ("except", "except_", "replace", "rename")):
            add(12, "SELECT * EXCLUDE/REPLACE is DuckDB-only")
        elif isinstance(node, (exp.Explode, exp.Unnest, exp.GenerateSeries, exp.Qualify, exp.Array, exp.Struct)):
            add(12, f"{type(node).__name__} is DuckDB-only syntax here (lists, structs, range, QUALIFY)")
    for select in tree.find_all(exp.Select):
        for col in select.expressions:
            if not isinstance(col, (exp.Alias, exp.Column, exp.Star)):
                add(13, f"alias every computed output column ({col.sql(dialect='duckdb')[:40]})")
    return found


def check_portable(sql: str) -> None:
    """Raise :class:`NonPortableSQLError` when ``sql`` breaks a portable-SQL rule (see
    :func:`portability_problems`). :func:`run_sql` calls it before running anything on Spark."""
    problems = portability_problems(sql)
    if problems:
        raise NonPortableSQLError("SQL is not portable between DuckDB and Spark: " + "; ".join(problems)
                                  + ". See the portable-SQL rules in rmanalytics.engine.")


def _rename_tables(expression, mapping: Mapping[str, str]):
    """Point unqualified table references named in ``mapping`` (case-insensitive) to new names.

    Names defined by a CTE of the statement are left alone (the CTE shadows the input).
    """
    from sqlglot import exp

    ctes = {c.alias_or_name.lower() for c in expression.find_all(exp.CTE)}
    lower = {k.lower(): v for k, v in mapping.items()}
    for table in expression.find_all(exp.Table):
        name = table.name.lower()
        if table.args.get("db") or table.args.get("catalog") or name in ctes or name not in lower:
            continue
        original = table.name
        table.set("this", exp.to_identifier(lower[name]))
        if not table.alias:  # keep qualified references such as transactions.amount working
            table.set("alias", exp.TableAlias(this=exp.to_identifier(original)))
    return expression


# --------------------------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------------------------
_PATH_HINT = re.compile(r"[/\\*]|\.(parquet|parq|csv|csv\.gz)$", re.IGNORECASE)


def _looks_like_path(text: str) -> bool:
    return bool(_PATH_HINT.search(text)) or os.path.exists(text)


def _nanos_columns(path: str) -> list[str]:
    """Columns stored as Parquet TIMESTAMP(NANOS) in a local file/folder (pandas' default).

    Spark cannot read those (PARQUET_TYPE_ILLEGAL); only the footer of one file is read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if "://" in str(path):
        return []
    if p.is_dir():
        files = sorted(p.glob("*.parquet"))
    elif any(ch in str(path) for ch in "*?["):
        files = [Path(f) for f in sorted(glob.glob(str(path)))]
    else:
        files = [p]
    if not files or not files[0].exists():
        return []
    schema = pq.read_schema(files[0])
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


def _spark_read_path(spark, path: str):
    """A Spark DataFrame over a Parquet/CSV file, glob or folder (read by the executors).

    Returns the frame and whether ``spark.sql.legacy.parquet.nanosAsLong`` must stay set while
    it is evaluated.
    """
    from pyspark.sql import functions as F

    text = str(path)
    p = Path(text)
    is_csv = text.lower().endswith((".csv", ".csv.gz")) or (p.is_dir() and not list(p.glob("*.parquet"))
                                                            and list(p.glob("*.csv")))
    if is_csv:
        target = (p / "*.csv").as_posix() if p.is_dir() else text
        return spark.read.csv(target, header=True, inferSchema=True), False
    target = (p / "*.parquet").as_posix() if p.is_dir() else text
    nanos = _nanos_columns(text)
    if not nanos:
        return spark.read.parquet(target), False
    # pandas/pyarrow write nanosecond timestamps, which Spark only reads as longs: read them so
    # and turn them back into (naive) timestamps inside Spark, at microsecond precision.
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    df = spark.read.parquet(target)
    for col in nanos:
        df = df.withColumn(
            col,
            F.expr(f"TIMESTAMPADD(MICROSECOND, `{col}` DIV 1000, TIMESTAMP_NTZ'1970-01-01 00:00:00')"),
        )
    return df, True


def _spark_frame(spark, name: str, src: Source):
    """Turn one input into a Spark DataFrame. Returns (frame, needs_nanos_as_long)."""
    from pyspark.sql import DataFrame as SparkDataFrame

    if isinstance(src, SparkDataFrame):
        return src, False
    if isinstance(src, pd.DataFrame):
        return spark.createDataFrame(src), False
    if isinstance(src, os.PathLike) or (isinstance(src, str) and _looks_like_path(src)):
        return _spark_read_path(spark, str(src))
    if isinstance(src, str):
        return spark.table(src), False
    raise TypeError(
        f"input {name!r}: engine='spark' takes a Spark DataFrame, a table name, a Parquet/CSV path "
        f"or a pandas DataFrame, got {type(src).__name__}"
    )


def _spark_normalised(df):
    """Cast integer columns to bigint and decimal/float columns to double (inside Spark)."""
    from pyspark.sql import functions as F

    cols = []
    for name, typ in df.dtypes:
        c = F.col(f"`{name}`")
        if typ in ("int", "smallint", "tinyint"):
            cols.append(c.cast("bigint").alias(name))
        elif typ.startswith("decimal") or typ == "float":
            cols.append(c.cast("double").alias(name))
        else:
            cols.append(c)
    return df.select(*cols)


def _run_spark(sql, inputs, output, spark, normalize):
    from rmanalytics.spark import active_session, require_pyspark

    require_pyspark()
    spark = spark or active_session()
    token = uuid.uuid4().hex[:10]
    views = {name: f"_rma_{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{token}" for name in inputs}
    nanos_key = "spark.sql.legacy.parquet.nanosAsLong"
    previous_nanos = spark.conf.get(nanos_key, "false")
    try:
        for name, src in inputs.items():
            frame, _ = _spark_frame(spark, name, src)
            frame.createOrReplaceTempView(views[name])
        spark_sql = _generate_spark(_rename_tables(_parse(sql), views))
        result = spark.sql(spark_sql)
        if normalize:
            result = _spark_normalised(result)
        if output is not None:
            out = Path(output) if "://" not in str(output) else output
            # Spark writes a folder of part files; coalesce the (small) aggregated result to one.
            result.coalesce(1).write.mode("overwrite").parquet(str(out))
            return out
        df = result.toPandas()
        return normalize_frame(df, spark_schema=result.dtypes) if normalize else df
    finally:
        spark.conf.set(nanos_key, previous_nanos)
        for view in views.values():
            spark.catalog.dropTempView(view)


# --------------------------------------------------------------------------------------------
# Normalisation and entry point
# --------------------------------------------------------------------------------------------
def _to_datetime(s: pd.Series) -> pd.Series:
    """Dates/timestamps as naive datetime64[ns]; datetime64[us] if a value lies outside 1677-2262."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        return pd.to_datetime(s).astype("datetime64[ns]")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        if pd.api.types.is_datetime64_any_dtype(s):
            return s.astype("datetime64[us]")
        values = [None if pd.isna(v) else v for v in s]  # datetime.date / datetime objects
        return pd.Series(np.array(values, dtype="datetime64[us]"), index=s.index, name=s.name)


def normalize_frame(df: pd.DataFrame, spark_schema: list[tuple[str, str]] | None = None, *,
                    copy: bool = True) -> pd.DataFrame:
    """Give a result frame the engine-independent dtypes described in the module docstring.

    Parameters
    ----------
    df : the frame returned by DuckDB (``.df()``) or Spark (``toPandas()``).
    spark_schema : ``DataFrame.dtypes`` of the Spark result (tells which object columns are dates
        and which float columns are integers holding NULLs).
    copy : False changes ``df`` itself (a fresh result nobody else holds: no copy of its columns).
    """
    out = df.copy() if copy else df
    kinds = dict(spark_schema or [])
    for name in out.columns:
        s = out[name]
        kind = kinds.get(name, "")
        if kind == "date" or kind.startswith("timestamp") or pd.api.types.is_datetime64_any_dtype(s):
            out[name] = _to_datetime(s)
        elif isinstance(s.dtype, pd.Int64Dtype) or str(s.dtype) in ("Int8", "Int16", "Int32", "UInt8",
                                                                     "UInt16", "UInt32", "UInt64"):
            out[name] = s.astype("float64") if s.isna().any() else s.astype("int64")
        elif pd.api.types.is_integer_dtype(s):
            out[name] = s.astype("int64")
        elif pd.api.types.is_float_dtype(s):
            if kind in ("bigint", "int", "smallint", "tinyint") and not s.isna().any():
                out[name] = s.astype("int64")
            else:
                out[name] = s.astype("float64")
        elif isinstance(s.dtype, pd.BooleanDtype):
            out[name] = s.astype("object") if s.isna().any() else s.astype(bool)
    return out


_SQL_RECORDERS: list[list[str]] = []


@contextlib.contextmanager
def record_sql() -> Iterator[list[str]]:
    """Collect every SQL statement :func:`run_sql` runs inside the ``with`` block (any engine).

    For audits and tests: ``with record_sql() as log: rfm_table(...)``, then
    ``[portability_problems(q) for q in log]``.
    """
    log: list[str] = []
    _SQL_RECORDERS.append(log)
    try:
        yield log
    finally:
        _SQL_RECORDERS.remove(log)


def is_spark_frame(src: Any) -> bool:
    """True for a ``pyspark.sql.DataFrame`` (checked without importing pyspark)."""
    return type(src).__module__.startswith("pyspark.") and hasattr(src, "columns")


def resolve_engine(engine: str | None, *sources: Any) -> str:
    """The engine to use: ``engine`` when given, else "spark" if any source is a Spark DataFrame,
    else "duckdb". Every function that takes ``engine=None`` resolves it this way, so passing a
    Spark DataFrame picks Spark without an ``engine`` argument."""
    if engine is None:
        flat: list[Any] = []
        for s in sources:
            flat.extend(s.values() if isinstance(s, Mapping) else [s])
        return "spark" if any(is_spark_frame(s) for s in flat) else "duckdb"
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


def run_sql(
    sql: str,
    inputs: Mapping[str, Source],
    *,
    engine: str | None = None,
    output: str | os.PathLike | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    spark: Any = None,
    normalize: bool = True,
) -> pd.DataFrame | Path:
    """Run ``sql`` (DuckDB dialect) with each name in ``inputs`` bound to a table.

    Parameters
    ----------
    sql : one SELECT statement that refers to the inputs by name (follow the portable SQL rules
        in the module docstring).
    inputs : name -> input. Both engines: a pandas DataFrame, or a path to Parquet/CSV (file, glob
        or folder). ``engine="spark"`` also: a Spark DataFrame, or a table name of the session's
        catalog (a string that does not look like a path, e.g. ``"lake.transactions"``).
        pandas inputs are shipped to Spark with ``createDataFrame`` (fine for tests and samples;
        big data should already be in Spark).
    engine : "duckdb" (embedded) or "spark"; None (default) picks "spark" when an input is a Spark
        DataFrame, else "duckdb".
    output : if given, write the result to Parquet at this path and return the path instead of a
        frame (DuckDB: one file; Spark: a folder with one part file, written by the executors).
    con : an existing DuckDB connection (default: a fresh in-memory one); DuckDB only.
    spark : the SparkSession for ``engine="spark"`` (default: the active session; error if none).
    normalize : give the result the engine-independent dtypes (see the module docstring).

    Returns
    -------
    pandas.DataFrame with the aggregated result, or the output path.
    """
    explicit = engine is not None
    engine = resolve_engine(engine, inputs)
    for log in _SQL_RECORDERS:
        log.append(sql)
    if engine == "spark":
        check_portable(sql)
        if con is not None and explicit:
            raise ValueError("con is a DuckDB connection; it cannot be used with engine='spark'")
        return _run_spark(sql, inputs, output, spark, normalize)
    return _run_duckdb(sql, inputs, output, con, normalize)


def as_frame(src: Source, engine: str | None = None, columns: str = "*") -> pd.DataFrame:
    """An input of :func:`run_sql` as a pandas frame: a pandas frame is returned as it is (not
    copied, ``columns`` ignored); a path or Spark table is read through ``engine``, whole or for
    ``columns`` (an SQL select list). For tables a caller needs whole in pandas after all."""
    if isinstance(src, pd.DataFrame):
        return src
    return run_sql(f"SELECT {columns} FROM t", {"t": src}, engine=engine)


def columns_of(src: Source, engine: str | None = None) -> list[str]:
    """Column names of an input of :func:`run_sql`, reading only its schema.

    pandas and Spark DataFrames answer directly; paths and Spark table names are asked with a
    ``LIMIT 0`` query on ``engine`` (no rows are read or collected).
    """
    if isinstance(src, pd.DataFrame):
        return list(src.columns)
    if is_spark_frame(src):
        return list(src.columns)
    return list(run_sql("SELECT * FROM t LIMIT 0", {"t": src}, engine=engine).columns)
