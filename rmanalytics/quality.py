"""Data-quality findings: things that are not contract errors but deserve a look.

:func:`quality_report` returns one row per finding with how many rows are affected, their share
and a few examples. Nothing is removed or changed: the findings are for the analyst (and the
``rmanalytics validate DIR`` command) to read.

Each finding is one SQL query (DuckDB dialect, portable to Spark, see :mod:`rmanalytics.engine`)
over the tables, built by a module-level function ``sql_<finding>``; the queries run through
:func:`rmanalytics.engine.run_sql`, so large transaction/balance tables are aggregated by the
engine, not in Python. Tables may be pandas frames or Parquet/CSV paths (``load_tables(...,
lazy=...)``): the findings are the same, and with paths no large table reaches pandas (the share
denominators are ``COUNT(*)`` in the engine; only the small ``kpi_targets`` and the ``rm_id``
column of ``rms`` are read into pandas for the period checks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmanalytics.engine import as_frame, columns_of, run_sql

__all__ = ["FINDINGS", "QUALITY_COLUMNS", "quality_report"]

QUALITY_COLUMNS = ["table", "column", "finding", "n_rows", "share", "examples", "severity"]
N_EXAMPLES = 5

_MONTH = "(year({d}) * 12 + month({d}))"  # calendar month number, portable


def _m(d: str) -> str:
    return _MONTH.format(d=d)


# --- SQL: each returns the offending rows (or groups, with an ``n_affected`` column) ------------


def sql_refunds(family: bool = True) -> str:
    fam = ", product_family" if family else ""
    return f"SELECT customer_id, date, amount{fam} FROM transactions WHERE amount < 0"


def sql_zero_amounts(family: bool = True) -> str:
    fam = ", product_family" if family else ""
    return f"SELECT customer_id, date, amount{fam} FROM transactions WHERE amount = 0"


def sql_same_day_duplicates(family: bool = True) -> str:
    """Same customer, day, amount (and product family when the table has one).

    Only customer-days holding two or more transactions can hold a copy: they are found first by
    grouping on one integer, ``hash(customer_id, day)`` (a hash collision only adds candidates),
    and the exact grouping runs on their rows alone; grouping every row on its text key would
    hold a hash table of all transactions (about 1 GB at 7M rows).
    """
    fam = ", product_family" if family else ""
    h = "hash(customer_id, CAST(date AS DATE))"
    return (
        f"SELECT customer_id, CAST(date AS DATE) AS day, amount{fam}, "
        "COUNT(*) AS n_copies, COUNT(*) - 1 AS n_affected FROM transactions "
        f"WHERE {h} IN (SELECT h FROM (SELECT {h} AS h FROM transactions) s GROUP BY h HAVING COUNT(*) > 1) "
        f"GROUP BY customer_id, CAST(date AS DATE), amount{fam} HAVING COUNT(*) > 1"
    )


def sql_after_observation_end(observation_end: str) -> str:
    return (
        "SELECT customer_id, date, amount FROM transactions "
        f"WHERE CAST(date AS DATE) > DATE '{observation_end}'"
    )


def sql_before_open() -> str:
    return (
        "SELECT t.customer_id AS customer_id, t.date AS date, c.open_date AS open_date "
        "FROM transactions t JOIN customers c ON t.customer_id = c.customer_id "
        "WHERE CAST(t.date AS DATE) < CAST(c.open_date AS DATE)"
    )


def sql_after_close() -> str:
    return (
        "SELECT t.customer_id AS customer_id, t.date AS date, c.close_date AS close_date "
        "FROM transactions t JOIN customers c ON t.customer_id = c.customer_id "
        "WHERE c.close_date IS NOT NULL AND CAST(t.date AS DATE) > CAST(c.close_date AS DATE)"
    )


def sql_customers_without_transactions() -> str:
    return (
        "SELECT c.customer_id AS customer_id, c.open_date AS open_date FROM customers c "
        "LEFT JOIN (SELECT DISTINCT customer_id FROM transactions) t ON c.customer_id = t.customer_id "
        "WHERE t.customer_id IS NULL"
    )


def sql_balances_after_close() -> str:
    return (
        "SELECT b.customer_id AS customer_id, b.snapshot_date AS snapshot_date, c.close_date AS close_date "
        "FROM balances b JOIN customers c ON b.customer_id = c.customer_id "
        "WHERE c.close_date IS NOT NULL AND CAST(b.snapshot_date AS DATE) > CAST(c.close_date AS DATE)"
    )


def sql_snapshot_not_month_end() -> str:
    return (
        "SELECT customer_id, snapshot_date FROM balances "
        "WHERE CAST(snapshot_date AS DATE) <> last_day(CAST(snapshot_date AS DATE))"
    )


def sql_balance_gaps() -> str:
    """Customers whose monthly snapshots skip months between their first and last snapshot.

    Missing months = span of months - distinct months with a snapshot. When every snapshot of a
    customer is taken at midnight of a month end, each is the only one of its month (the primary
    key customer_id, snapshot_date is unique), so its months are counted with ``COUNT(*)``;
    ``COUNT(DISTINCT month)`` (a per-customer set of months: 16 s and 1.5 GB at 22M rows) runs
    only for the customers with another snapshot, which are rare (and reported by their own
    finding).
    """
    m = _m("snapshot_date")
    odd = "CAST(snapshot_date AS TIMESTAMP) <> CAST(last_day(CAST(snapshot_date AS DATE)) AS TIMESTAMP)"
    return (
        "SELECT customer_id, first_snapshot, last_snapshot, n_affected FROM ("
        "SELECT g.customer_id AS customer_id, g.first_snapshot AS first_snapshot, g.last_snapshot AS last_snapshot, "
        "g.max_m - g.min_m + 1 - COALESCE(o.n_months, g.n_rows) AS n_affected FROM ("
        "SELECT customer_id, MIN(snapshot_date) AS first_snapshot, MAX(snapshot_date) AS last_snapshot, "
        f"MIN({m}) AS min_m, MAX({m}) AS max_m, COUNT(*) AS n_rows FROM balances GROUP BY customer_id) g "
        f"LEFT JOIN (SELECT customer_id, COUNT(DISTINCT {m}) AS n_months FROM balances WHERE customer_id IN "
        f"(SELECT customer_id FROM balances WHERE {odd}) GROUP BY customer_id) o "
        "ON g.customer_id = o.customer_id) x WHERE n_affected > 0"
    )


def sql_rms_without_customers() -> str:
    return (
        "SELECT r.rm_id AS rm_id, r.outlet AS outlet, r.hire_date AS hire_date FROM rms r "
        "LEFT JOIN (SELECT DISTINCT rm_id FROM assignments) a ON r.rm_id = a.rm_id WHERE a.rm_id IS NULL"
    )


def sql_customers_without_rm() -> str:
    return (
        "SELECT c.customer_id AS customer_id, c.customer_type AS customer_type FROM customers c "
        "LEFT JOIN (SELECT DISTINCT customer_id FROM assignments) a ON c.customer_id = a.customer_id "
        "WHERE a.customer_id IS NULL"
    )


def sql_branch_not_outlet() -> str:
    return (
        "SELECT c.customer_id AS customer_id, c.branch_id AS branch_id FROM customers c "
        "LEFT JOIN (SELECT DISTINCT outlet FROM rms) r ON c.branch_id = r.outlet WHERE r.outlet IS NULL"
    )


def sql_period_not_month_start() -> str:
    return "SELECT rm_id, period FROM rm_activity WHERE day(CAST(period AS DATE)) <> 1"


def sql_activity_months_missing() -> str:
    """Months without an rm_activity row while the RM was employed, within the table's span.

    Span per RM: from the later of its hire month and the first period of the table to the earlier
    of the last period of the table and the month before its exit (the exit month counts when the
    RM left after the 1st).
    """
    mp = _m("a.period")
    exit_m = (f"({_m('r.exit_date')} - CASE WHEN day(r.exit_date) = 1 THEN 1 ELSE 0 END)")
    return (
        "SELECT rm_id, first_month, last_month, n_affected FROM ("
        "SELECT s.rm_id AS rm_id, s.start_m AS first_month, s.end_m AS last_month, "
        "s.end_m - s.start_m + 1 - COUNT(DISTINCT p.m) AS n_affected FROM ("
        f"SELECT r.rm_id AS rm_id, GREATEST({_m('r.hire_date')}, w.min_m) AS start_m, "
        f"CASE WHEN r.exit_date IS NULL THEN w.max_m ELSE LEAST({exit_m}, w.max_m) END AS end_m "
        f"FROM rms r CROSS JOIN (SELECT MIN({_m('period')}) AS min_m, MAX({_m('period')}) AS max_m "
        "FROM rm_activity) w) s "
        f"LEFT JOIN (SELECT DISTINCT a.rm_id AS rm_id, {mp} AS m FROM rm_activity a) p "
        "ON s.rm_id = p.rm_id AND p.m >= s.start_m AND p.m <= s.end_m "
        "WHERE s.end_m >= s.start_m "
        "GROUP BY s.rm_id, s.start_m, s.end_m) g WHERE n_affected > 0"
    )


def sql_interactions_after_close() -> str:
    """Contacts recorded on or after the customer's close_date (optional table interactions)."""
    return (
        "SELECT i.customer_id AS customer_id, i.timestamp AS contact_at, c.close_date AS close_date "
        "FROM interactions i JOIN customers c ON i.customer_id = c.customer_id "
        "WHERE c.close_date IS NOT NULL AND CAST(i.timestamp AS DATE) >= CAST(c.close_date AS DATE)"
    )


def sql_interactions_before_open() -> str:
    """Contacts before the customer's open_date (prospecting; allowed by the contract)."""
    return (
        "SELECT i.customer_id AS customer_id, i.timestamp AS contact_at, c.open_date AS open_date "
        "FROM interactions i JOIN customers c ON i.customer_id = c.customer_id "
        "WHERE CAST(i.timestamp AS DATE) < CAST(c.open_date AS DATE)"
    )


def sql_holdings_after_close() -> str:
    """Positions opened after the customer's close_date (optional table holdings)."""
    return (
        "SELECT h.customer_id AS customer_id, h.product_id AS product_id, h.start_date AS start_date, "
        "c.close_date AS close_date FROM holdings h JOIN customers c ON h.customer_id = c.customer_id "
        "WHERE c.close_date IS NOT NULL AND CAST(h.start_date AS DATE) >= CAST(c.close_date AS DATE)"
    )


def sql_month_not_first_day() -> str:
    return ("SELECT customer_id, month FROM digital_activity "
            "WHERE day(CAST(month AS DATE)) <> 1")


@dataclass(frozen=True)
class _Spec:
    table: str
    column: str | None
    finding: str
    severity: str
    needs: tuple[str, ...]
    sql: Callable[..., str]
    order: str  # ORDER BY for the examples (deterministic)
    denominator: str  # table whose row count is the share's denominator
    summed: bool = False  # n_rows = SUM(n_affected) instead of COUNT(*)
    missing: bool = False  # n_rows counts missing rows: share = n_rows / (rows + n_rows)


FINDINGS: tuple[_Spec, ...] = (
    _Spec("transactions", "amount", "refunds (negative amounts)", "info", ("transactions",), sql_refunds,
          "customer_id, date, amount", "transactions"),
    _Spec("transactions", "amount", "zero amounts", "warning", ("transactions",), sql_zero_amounts,
          "customer_id, date", "transactions"),
    _Spec("transactions", None, "same-day duplicates (customer, day, amount, product_family); n_rows = extra copies",
          "warning", ("transactions",), sql_same_day_duplicates, "customer_id, day, amount, product_family",
          "transactions", summed=True),
    _Spec("transactions", "date", "transactions after observation_end", "warning", ("transactions",),
          sql_after_observation_end, "customer_id, date, amount", "transactions"),
    _Spec("transactions", "date", "transactions before the customer's open_date", "warning",
          ("transactions", "customers"), sql_before_open, "customer_id, date", "transactions"),
    _Spec("transactions", "date", "transactions after the customer's close_date", "warning",
          ("transactions", "customers"), sql_after_close, "customer_id, date", "transactions"),
    _Spec("customers", "customer_id", "customers without transactions", "info", ("customers", "transactions"),
          sql_customers_without_transactions, "customer_id", "customers"),
    _Spec("customers", "customer_id", "customers without any RM assignment", "warning",
          ("customers", "assignments"), sql_customers_without_rm, "customer_id", "customers"),
    _Spec("customers", "branch_id", "branch_id is not an outlet of any RM in rms", "warning",
          ("customers", "rms"), sql_branch_not_outlet, "customer_id", "customers"),
    _Spec("balances", "snapshot_date", "balance snapshots after the customer's close_date", "warning",
          ("balances", "customers"), sql_balances_after_close, "customer_id, snapshot_date", "balances"),
    _Spec("balances", "snapshot_date", "snapshot_date is not a month end", "warning", ("balances",),
          sql_snapshot_not_month_end, "customer_id, snapshot_date", "balances"),
    _Spec("balances", "snapshot_date", "gaps in monthly balance snapshots; n_rows = missing snapshots",
          "warning", ("balances",), sql_balance_gaps, "customer_id", "balances", summed=True,
          missing=True),
    _Spec("rms", "rm_id", "RMs without customers (no assignments)", "info", ("rms", "assignments"),
          sql_rms_without_customers, "rm_id", "rms"),
    _Spec("rm_activity", "period", "period is not the first day of a month", "warning", ("rm_activity",),
          sql_period_not_month_start, "rm_id, period", "rm_activity"),
    _Spec("rm_activity", "period", "rm_activity months missing while the RM was employed; n_rows = missing months",
          "warning", ("rm_activity", "rms"), sql_activity_months_missing, "rm_id", "rm_activity", summed=True,
          missing=True),
    # optional relationship tables (skipped when absent)
    _Spec("interactions", "timestamp", "contacts on or after the customer's close_date", "warning",
          ("interactions", "customers"), sql_interactions_after_close, "customer_id, contact_at", "interactions"),
    _Spec("interactions", "timestamp", "contacts before the customer's open_date (prospecting)", "info",
          ("interactions", "customers"), sql_interactions_before_open, "customer_id, contact_at", "interactions"),
    _Spec("holdings", "start_date", "holdings opened on or after the customer's close_date", "warning",
          ("holdings", "customers"), sql_holdings_after_close, "customer_id, start_date", "holdings"),
    _Spec("digital_activity", "month", "month is not the first day of a month", "warning", ("digital_activity",),
          sql_month_not_first_day, "customer_id, month", "digital_activity"),
)


def _plain(v):
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else str(v)
    if isinstance(v, np.generic):
        return v.item()
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def _n_rows(src, engine: str | None) -> int:
    if isinstance(src, pd.DataFrame):
        return len(src)
    return int(run_sql("SELECT COUNT(*) AS n FROM t", {"t": src}, engine=engine)["n"].iloc[0])


def _kpi_findings(tables: Mapping[str, pd.DataFrame], engine: str | None = None) -> list[dict]:
    """Small-table findings on kpi_targets (pandas; the table is tiny)."""
    out = []
    k = tables.get("kpi_targets")
    if k is None:
        return out
    k = as_frame(k, engine)
    if len(k) == 0:
        return out
    ok = k["period"].astype(str).str.fullmatch(r"\d{4}(Q[1-4]|-(0[1-9]|1[0-2]))?")
    bad = k[~ok.to_numpy(dtype=bool)]
    if len(bad):
        out.append(dict(table="kpi_targets", column="period",
                        finding="period is not 'YYYY', 'YYYYQn' or 'YYYY-MM'", n_rows=len(bad),
                        share=len(bad) / len(k), examples=bad["period"].head(N_EXAMPLES).tolist(),
                        severity="warning"))
    if "rms" in tables:
        rm = k["unit_level"].eq("rm").to_numpy(dtype=bool)
        rm_ids = as_frame(tables["rms"], engine, "rm_id")["rm_id"]
        bad = k[rm & ~k["unit_id"].isin(rm_ids).to_numpy(dtype=bool)]
        if len(bad):
            out.append(dict(table="kpi_targets", column="unit_id", finding="targets for rm_ids not in rms",
                            n_rows=len(bad), share=len(bad) / len(k),
                            examples=bad["unit_id"].head(N_EXAMPLES).tolist(), severity="warning"))
    return out


def quality_report(
    tables: Mapping[str, pd.DataFrame],
    observation_end: str | pd.Timestamp | None = None,
    *,
    engine: str | None = None,
    include_zero: bool = False,
) -> pd.DataFrame:
    """Data-quality findings that are not contract errors. Nothing is removed.

    Parameters
    ----------
    tables : contract tables (validated; any subset: findings needing an absent table are skipped),
        as pandas frames or Parquet/CSV paths (the same findings either way).
    observation_end : last day of the observation window (ISO date); transactions after it are
        reported. None: that finding is skipped.
    engine : engine for :func:`rmanalytics.engine.run_sql` ("duckdb" or "spark").
    include_zero : also list checks that found nothing (n_rows = 0).

    Returns
    -------
    DataFrame with columns ``table, column, finding, n_rows, share, examples, severity``:
    ``n_rows`` affected rows (for gaps: missing rows; for duplicates: extra copies), ``share`` =
    n_rows / rows of ``table`` (gaps: / (rows + missing)), ``examples`` a list of up to 5 example
    rows (dicts), ``severity`` "info" or "warning".
    """
    obs = None if observation_end is None else pd.Timestamp(observation_end).date().isoformat()
    rows: list[dict] = []
    kw: dict = {"engine": engine}
    if engine == "duckdb":
        from rmanalytics.engine import connect

        kw["con"] = connect()
    n_rows: dict[str, int] = {}
    has_family = "transactions" in tables and "product_family" in columns_of(tables["transactions"], engine)
    for spec in FINDINGS:
        if not all(t in tables for t in spec.needs):
            continue
        order = spec.order
        if spec.sql is sql_after_observation_end:
            if obs is None:
                continue
            query = spec.sql(obs)
        elif spec.sql in (sql_refunds, sql_zero_amounts, sql_same_day_duplicates):
            query = spec.sql(family=has_family)
            if not has_family:
                order = order.replace(", product_family", "")
        else:
            query = spec.sql()
        inputs = {t: tables[t] for t in spec.needs}
        # one scan per finding: the total rides along the top-5 examples as a window aggregate
        total = "SUM(n_affected) OVER ()" if spec.summed else "COUNT(*) OVER ()"
        ex = run_sql(f"SELECT * FROM (SELECT q.*, {total} AS n_total_ FROM ({query}) q) r "
                     f"ORDER BY {order} LIMIT {N_EXAMPLES}", inputs, **kw)
        n = int(ex["n_total_"].iloc[0]) if len(ex) else 0
        if n == 0 and not include_zero:
            continue
        examples = [{k: _plain(v) for k, v in r.items()} for r in ex.drop(columns="n_total_").to_dict("records")]
        if spec.denominator not in n_rows:
            n_rows[spec.denominator] = _n_rows(tables[spec.denominator], engine)
        denom = n_rows[spec.denominator] + (n if spec.missing else 0)
        rows.append(dict(table=spec.table, column=spec.column, finding=spec.finding, n_rows=n,
                         share=(n / denom) if denom else float("nan"), examples=examples,
                         severity=spec.severity))
    if "con" in kw:
        kw["con"].close()
    rows.extend(_kpi_findings(tables, engine))
    out = pd.DataFrame(rows, columns=QUALITY_COLUMNS)
    out["n_rows"] = out["n_rows"].astype("int64")
    out["share"] = out["share"].astype("float64")
    return out
