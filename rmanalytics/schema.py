"""Validators for the data contract (:mod:`rmanalytics.contract`).

:func:`validate_table` checks one table, :func:`validate_tables` checks a dict of tables and the
rules between them. Every rule is derived from the contract (column names, dtypes, nullability,
ranges, allowed values, keys); there is no second copy of the column lists here.

On failure ONE :class:`DataContractError` is raised that lists every failed rule (table, column,
rule, number of offending rows, up to 5 examples). Validation never modifies, converts or drops
rows: the frame you pass in is the frame you get back.

Rules (the ``rule`` attribute of a failure)
-------------------------------------------
``missing_column``     a required contract column is absent
``dtype``              wrong dtype (e.g. amounts stored as strings, dates not parsed, numeric ids)
``mixed_types``        an object column mixes Python types (e.g. int and str ids)
``unparseable``        (loaders) a CSV/text value that cannot be parsed to the contract dtype
``not_null``           null in a non-nullable column
``duplicate_key``      rows sharing the table's primary key
``below_min``          value below the contract minimum (e.g. a negative fee)
``above_max``          value above the contract maximum
``not_allowed``        value outside the contract's allowed values
``end_before_start``   close_date < open_date, exit_date < hire_date, assignments end <= start,
                       holdings end_date < start_date, feedback resolved_at/responded_at < opened_at
``maturity_before_start`` holdings.maturity_date < start_date
``score_by_kind``      feedback score outside its kind's scale (nps 0-10 integral, survey 1-5,
                       complaint null)
``compliance_passed_gt_checks``  rm_activity.compliance_passed > compliance_checks
``nps_gt_responses``   rm_activity.nps_promoters + nps_detractors > nps_responses
``unknown_customer``   customer_id not in ``customers`` (transactions, balances, assignments)
``unknown_rm``         rm_id not in ``rms`` (assignments, rm_activity, interactions, feedback)
``unknown_product``    holdings.product_id not in ``products`` (or ``products`` absent)
``before_open``        holdings.start_date or feedback.opened_at before the customer's open_date
``shares_not_1``       a customer's assignment shares do not sum to 1 (+-1e-6) on a covered date

Why not pandera
---------------
pandera was measured first (pandera 0.35, 10M transactions): its ``str`` dtype check is an
element-wise Python loop, and its failure path materialises every failing value (2M rows with 1M
range failures: 7 s; 10M rows with 5M duplicate keys: > 10 min, stopped). Rules must report
counts and 5 examples quickly even when millions of rows fail, and the cross-table rules
(referential integrity, the share sweep) are not pandera column checks. So the checks here are
plain vectorised pandas/numpy (10M transactions: a few seconds).

Tables as Parquet paths
-----------------------
A table may also be given as the path of a Parquet file with the contract types
(:func:`parquet_conforms`; what ``load_tables(..., lazy=...)`` hands out). Its rules then run as
SQL inside DuckDB (counts with ``COUNT(*) FILTER``, examples as the first rows in file order,
the primary key with ``GROUP BY ... HAVING COUNT(*) > 1``, the share sweep with a window sum,
the rules between tables as joins), so no large table is read into pandas, and the failures are
the same as for the frame ``load_tables`` would give: the same rules, counts, examples (with
their row keys) and messages. The column dtypes come from the Parquet schema and its pandas
metadata (an int64 or bool column holding nulls is float64 or object in pandas, and judged and
shown as such). A Parquet file with other types is read with pandas and checked as a frame.
Cross-table rules run in DuckDB when the child table is a path (the parent may be either).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rmanalytics.contract import TABLES, Column, Table
from rmanalytics.errors import N_EXAMPLES, DataError, row_examples

__all__ = [
    "CONTRACT_ARROW",
    "DataContractError",
    "Failure",
    "RULES",
    "SHARE_TOLERANCE",
    "check_table",
    "check_tables",
    "contract_markdown",
    "example_rows",
    "parquet_conforms",
    "row_key_columns",
    "validate_table",
    "validate_tables",
]

SHARE_TOLERANCE = 1e-6

RULES: dict[str, str] = {
    "missing_column": "a required contract column is absent",
    "dtype": "the column's dtype is not the contract dtype",
    "mixed_types": "an object column mixes Python types (e.g. int and str ids)",
    "unparseable": "a text value cannot be parsed to the contract dtype (loaders)",
    "not_null": "null in a non-nullable column",
    "duplicate_key": "several rows share the primary key",
    "below_min": "value below the contract minimum",
    "above_max": "value above the contract maximum",
    "not_allowed": "value outside the allowed values",
    "end_before_start": "an end date before its start date",
    "compliance_passed_gt_checks": "compliance_passed > compliance_checks",
    "nps_gt_responses": "nps_promoters + nps_detractors > nps_responses",
    "unknown_customer": "customer_id not found in `customers`",
    "unknown_rm": "rm_id not found in `rms`",
    "shares_not_1": "assignment shares of a customer do not sum to 1 on a covered date",
    "maturity_before_start": "holdings.maturity_date before start_date",
    "score_by_kind": "feedback score outside its kind's scale (nps 0-10 integral, survey 1-5, complaint null)",
    "unknown_product": "holdings.product_id not found in `products` (or `products` absent)",
    "before_open": "holdings.start_date / feedback.opened_at before the customer's open_date",
}


@dataclass(frozen=True)
class Failure:
    """One failed rule: where, which rule, how many rows, a few examples."""

    table: str
    column: str | None
    rule: str
    n_rows: int
    examples: list = field(default_factory=list)
    detail: str = ""

    def __str__(self) -> str:
        col = f".{self.column}" if self.column else ""
        ex = f"; examples: {self.examples}" if self.examples else ""
        det = f" ({self.detail})" if self.detail else ""
        return f"{self.table}{col}: rule {self.rule!r}{det}: {self.n_rows} offending row(s){ex}"


class DataContractError(DataError):
    """Data do not follow the contract. Lists every failed rule.

    Attributes ``table``, ``column``, ``rule``, ``n_rows``, ``examples`` describe the first
    failure; ``failures`` holds all of them (:class:`Failure`).
    """

    def __init__(self, failures: list[Failure]):
        if not failures:
            raise ValueError("DataContractError needs at least one failure")
        self.failures = list(failures)
        first = self.failures[0]
        self.table = first.table
        self.column = first.column
        self.rule = first.rule
        self.n_rows = first.n_rows
        self.examples = first.examples
        tables = sorted({f.table for f in self.failures})
        head = f"data contract violated in table(s) {', '.join(tables)}: {len(self.failures)} failure(s)"
        super().__init__(head + "\n" + "\n".join(f"  - {f}" for f in self.failures))

    def __reduce__(self):  # picklable (multiprocessing, papermill)
        return (type(self), (self.failures,))

    def find(self, rule: str | None = None, column: str | None = None, table: str | None = None) -> list[Failure]:
        """Failures matching all given fields."""
        return [
            f
            for f in self.failures
            if (rule is None or f.rule == rule)
            and (column is None or f.column == column)
            and (table is None or f.table == table)
        ]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


#: Columns that identify a row of a table without a primary key (shown with failing values).
_ROW_KEYS: dict[str, tuple[str, ...]] = {"transactions": ("customer_id", "date")}


def row_key_columns(table: str) -> list[str]:
    """Columns that let a user find a row: the primary key, else e.g. (customer_id, date)."""
    t = TABLES[table]
    return list(t.key) or list(_ROW_KEYS.get(table, ()))


def example_rows(keys: pd.DataFrame | None, values: pd.Series, mask, column: str,
                 n: int = N_EXAMPLES) -> list:
    """Up to ``n`` failing rows as ``{key columns..., column: value}`` (plain values for messages).

    ``keys`` holds the row-key columns (:func:`row_key_columns`) aligned with ``values``; without
    keys the examples are ``{"row": 0-based position, column: value}``.
    """
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))[:n]
    out = []
    for i in idx:
        row = {}
        if keys is not None:
            for k in keys.columns:
                if k != column:
                    row[k] = row_examples([keys[k].iloc[i]])[0]
        else:
            row["row"] = int(i)
        v = values.iloc[i]
        row[column] = None if (not isinstance(v, (list, tuple)) and pd.isna(v)) else row_examples([v])[0]
        out.append(row)
    return out


def _isnull(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _mask_failure(table: str, column: str | None, rule: str, df: pd.DataFrame, mask, detail: str = "",
                  show: list[str] | None = None) -> Failure | None:
    """A Failure for the rows where ``mask`` is True (None when no row fails)."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if n == 0:
        return None
    idx = np.flatnonzero(mask)[:N_EXAMPLES]
    if show:
        rows = df.iloc[idx][show]
        examples = [{k: (None if _isnull(v) else row_examples([v])[0]) for k, v in r.items()}
                    for r in rows.to_dict("records")]
    else:
        examples = row_examples(df[column].iloc[idx])
    return Failure(table, column, rule, n, examples, detail)


def _is_int_dtype(s: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _check_dtype(table: str, col: Column, s: pd.Series, notna: np.ndarray | None = None) -> Failure | None:
    """Check that ``s`` has the contract dtype of ``col``; returns a Failure or None."""
    dt = s.dtype
    name = col.name
    if notna is None:
        notna = s.notna().to_numpy()

    def all_rows(detail: str) -> Failure:
        n = int(notna.sum())
        return Failure(table, name, "dtype", n, row_examples(s[notna]), detail)

    def per_value(ok_types: tuple, rule: str, detail: str) -> Failure | None:
        # object column: the rows whose value is not of an accepted Python type
        bad = notna & ~s.map(lambda v: isinstance(v, ok_types) and not isinstance(v, bool)).to_numpy(dtype=bool)
        if not bad.any():
            return None
        return Failure(table, name, rule, int(bad.sum()), row_examples(s[bad]), detail)

    if col.dtype == "str":
        if isinstance(dt, pd.StringDtype):
            return None
        if isinstance(dt, pd.CategoricalDtype):
            cats = dt.categories
            if len(cats) == 0 or pd.api.types.infer_dtype(cats, skipna=True) == "string":
                return None
            return all_rows(f"expected str, got categorical of {cats.dtype}")
        if dt == object:
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind in ("string", "empty"):
                return None
            bad = per_value((str,), "mixed_types", f"expected str values, found a {kind} column")
            if bad is not None:
                if bad.n_rows < int(notna.sum()):
                    types = sorted({type(v).__name__ for v in s[notna]})
                    return Failure(table, name, "mixed_types", bad.n_rows, bad.examples,
                                   f"expected str, found types {types}")
                return Failure(table, name, "dtype", bad.n_rows, bad.examples,
                               f"expected str, got {kind} values in an object column")
            return None
        return all_rows(f"expected str, got {dt}")

    if col.dtype == "date":
        if pd.api.types.is_datetime64_any_dtype(dt):
            if getattr(dt, "tz", None) is not None:
                return all_rows(f"expected tz-naive datetime64, got {dt}")
            return None
        hint = "; parse with pd.to_datetime or load with rmanalytics.io.load_tables"
        return all_rows(f"expected datetime64, got {dt}{hint}")

    if col.dtype == "int":
        if _is_int_dtype(s):
            return None
        if pd.api.types.is_float_dtype(dt):
            v = s.to_numpy(dtype=float, na_value=np.nan)
            bad = notna & (np.mod(v, 1) != 0)
            if bad.any():
                return Failure(table, name, "dtype", int(bad.sum()), row_examples(s[bad]),
                               f"expected int, got {dt} with non-integral values")
            return None
        if dt == object:
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind.startswith("mixed"):
                f = per_value((int, np.integer), "mixed_types", f"expected int, found a {kind} column")
                if f is not None:
                    return f
            return all_rows(f"expected int, got object column of {kind} values")
        return all_rows(f"expected int, got {dt}")

    if col.dtype == "float":
        if (pd.api.types.is_float_dtype(dt) or _is_int_dtype(s)):
            return None
        if dt == object:
            kind = pd.api.types.infer_dtype(s, skipna=True)
            f = per_value((int, float, np.integer, np.floating), "dtype",
                          f"expected float, got object column of {kind} values")
            if f is not None:
                return f
            return all_rows("expected float, got an object column of numbers; use astype(float)")
        return all_rows(f"expected float, got {dt}")

    if col.dtype == "bool":
        if pd.api.types.is_bool_dtype(dt):
            return None
        return all_rows(f"expected bool, got {dt}")

    raise ValueError(f"contract column {table}.{name} has unknown dtype {col.dtype!r}")


def _row_rules(table: Table, df: pd.DataFrame) -> list[Failure]:
    """Rules between columns of the same row."""
    out: list[Failure | None] = []

    def end_before_start(start: str, end: str, strict: bool) -> None:
        s, e = df[start], df[end]
        bad = (e < s) if not strict else (e <= s)
        bad = bad.fillna(False).to_numpy(dtype=bool) & e.notna().to_numpy()
        key = list(table.key) or []
        show = [c for c in key if c not in (start, end)] + [start, end]
        op = "<=" if strict else "<"
        out.append(_mask_failure(table.name, end, "end_before_start", df, bad, f"{end} {op} {start}", show))

    if table.name == "customers":
        end_before_start("open_date", "close_date", strict=False)
    elif table.name == "rms":
        end_before_start("hire_date", "exit_date", strict=False)
    elif table.name == "assignments":
        end_before_start("start_date", "end_date", strict=True)
    elif table.name == "holdings":
        end_before_start("start_date", "end_date", strict=False)
        s, m = df["start_date"], df["maturity_date"]
        bad = (m < s).fillna(False).to_numpy(dtype=bool) & m.notna().to_numpy()
        out.append(_mask_failure(table.name, "maturity_date", "maturity_before_start", df, bad,
                                 "maturity_date < start_date",
                                 ["customer_id", "product_id", "start_date", "maturity_date"]))
    elif table.name == "feedback":
        for end in ("responded_at", "resolved_at"):
            if end in df.columns:
                o, e = df["opened_at"], df[end]
                bad = (e < o).fillna(False).to_numpy(dtype=bool) & e.notna().to_numpy()
                out.append(_mask_failure(table.name, end, "end_before_start", df, bad, f"{end} < opened_at",
                                         ["customer_id", "opened_at", end]))
        kind, score = df["kind"], df["score"]
        sc = score.to_numpy(dtype=float, na_value=np.nan)
        has = ~np.isnan(sc)
        k = kind.to_numpy(dtype=object)
        bad = ((k == "complaint") & has) \
            | ((k == "nps") & (~has | (np.nan_to_num(np.mod(sc, 1)) != 0))) \
            | ((k == "survey") & (~has | (np.nan_to_num(sc, nan=1) < 1) | (np.nan_to_num(sc, nan=1) > 5)))
        out.append(_mask_failure(table.name, "score", "score_by_kind", df, bad,
                                 "nps: integer 0-10; survey: 1-5; complaint: null",
                                 ["customer_id", "opened_at", "kind", "score"]))
    elif table.name == "rm_activity":
        bad = (df["compliance_passed"] > df["compliance_checks"]).to_numpy(dtype=bool)
        out.append(_mask_failure(table.name, "compliance_passed", "compliance_passed_gt_checks", df, bad,
                                 "compliance_passed > compliance_checks",
                                 ["rm_id", "period", "compliance_passed", "compliance_checks"]))
        bad = ((df["nps_promoters"] + df["nps_detractors"]) > df["nps_responses"]).to_numpy(dtype=bool)
        out.append(_mask_failure(table.name, "nps_responses", "nps_gt_responses", df, bad,
                                 "nps_promoters + nps_detractors > nps_responses",
                                 ["rm_id", "period", "nps_promoters", "nps_detractors", "nps_responses"]))
    return [f for f in out if f is not None]


# --------------------------------------------------------------------------------------------
# single table
# --------------------------------------------------------------------------------------------


_ROW_RULE_COLUMNS: dict[str, list[str]] = {
    "customers": ["open_date", "close_date"],
    "rms": ["hire_date", "exit_date"],
    "assignments": ["start_date", "end_date"],
    "rm_activity": ["compliance_passed", "compliance_checks", "nps_promoters", "nps_detractors",
                    "nps_responses", "rm_id", "period"],
    "holdings": ["customer_id", "product_id", "start_date", "end_date", "maturity_date"],
    "feedback": ["customer_id", "opened_at", "kind", "score", "resolved_at"],
}


def check_table(df: pd.DataFrame | str | os.PathLike, table_name: str) -> list[Failure]:
    """All contract failures of one table (empty list when valid). Never modifies ``df``.

    ``df`` may be the path of a Parquet file: with the contract types it is checked inside DuckDB
    (see "Tables as Parquet paths" in the module docstring), else read with pandas.
    """
    if table_name not in TABLES:
        raise KeyError(f"unknown table {table_name!r}; contract tables: {sorted(TABLES)}")
    if _is_path(df):
        return check_tables({table_name: df}, cross=False)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table {table_name!r} must be a pandas DataFrame, got {type(df).__name__}")
    table = TABLES[table_name]
    failures: list[Failure] = []
    typed_ok: set[str] = set()

    for col in table.columns:
        if col.name not in df.columns:
            if col.required:
                failures.append(Failure(table_name, col.name, "missing_column", len(df), [],
                                        f"columns found: {list(df.columns)}"))
            continue
        s = df[col.name]
        if isinstance(s, pd.DataFrame):  # duplicated column label
            failures.append(Failure(table_name, col.name, "dtype", len(df), [], "column label appears twice"))
            continue
        isna = s.isna().to_numpy()
        f = _check_dtype(table_name, col, s, ~isna)
        if f is not None:
            failures.append(f)
        else:
            typed_ok.add(col.name)

        keys = [c for c in row_key_columns(table_name) if c in df.columns and c != col.name]
        show = (keys + [col.name]) if keys else None
        if not col.nullable and isna.any():
            failures.append(_mask_failure(table_name, col.name, "not_null", df, isna, "null in non-nullable column",
                                          show))
        if col.name not in typed_ok:
            continue
        if col.min is not None:
            strict = bool(getattr(col, "min_exclusive", False))  # supported if the contract adds it
            bad = ((s <= col.min) if strict else (s < col.min)).fillna(False).to_numpy(dtype=bool)
            f = _mask_failure(table_name, col.name, "below_min", df, bad,
                              f"must be {'>' if strict else '>='} {col.min:g}", show)
            if f:
                failures.append(f)
        if col.max is not None:
            bad = (s > col.max).fillna(False).to_numpy(dtype=bool)
            f = _mask_failure(table_name, col.name, "above_max", df, bad, f"must be <= {col.max:g}", show)
            if f:
                failures.append(f)
        if col.allowed is not None:
            bad = ~s.isin(col.allowed).to_numpy(dtype=bool) & ~isna
            if bad.any():
                vals = pd.unique(s[bad])
                failures.append(Failure(table_name, col.name, "not_allowed", int(bad.sum()), row_examples(vals),
                                        f"allowed: {list(col.allowed)}"))

    key = list(table.key)
    if key and all(k in typed_ok for k in key):
        dup = df.duplicated(subset=key, keep=False).to_numpy()
        f = _mask_failure(table_name, key[-1] if len(key) == 1 else ",".join(key), "duplicate_key", df, dup,
                          f"primary key ({', '.join(key)}) must be unique", show=key)
        if f:
            failures.append(f)

    needed = _ROW_RULE_COLUMNS.get(table_name, []) + (
        ["responded_at"] if table_name == "feedback" and "responded_at" in df.columns else [])
    if needed and all(c in typed_ok for c in needed):
        failures.extend(_row_rules(table, df))
    return failures


def validate_table(df: pd.DataFrame, table_name: str) -> pd.DataFrame:
    """Validate one contract table; return it unchanged.

    Parameters
    ----------
    df : the table.
    table_name : a name in :data:`rmanalytics.contract.TABLES`.

    Raises
    ------
    DataContractError listing every failed rule of the table (column-level rules, primary key,
    row rules such as end dates before start dates). Cross-table rules need
    :func:`validate_tables`.
    """
    failures = check_table(df, table_name)
    if failures:
        raise DataContractError(failures)
    return df


# --------------------------------------------------------------------------------------------
# the same checks inside DuckDB, for tables given as Parquet paths
# --------------------------------------------------------------------------------------------

#: Arrow type names (prefixes) that hold each contract dtype exactly as the loaders give it.
CONTRACT_ARROW = {"date": ("timestamp", "date32"), "int": ("int64",), "float": ("double",),
                  "str": ("string", "large_string"), "bool": ("bool",)}


def _is_path(src) -> bool:
    return isinstance(src, (str, os.PathLike))


def parquet_conforms(path: str | os.PathLike, table_name: str) -> bool:
    """True when ``path`` is a Parquet file whose contract columns are stored with the contract
    types (tz-naive timestamps or dates, int64, double, strings, bool): DuckDB then reads what
    :func:`rmanalytics.io.load_tables` would give, and :func:`check_table` runs in DuckDB."""
    if not str(path).lower().endswith(".parquet"):
        return False
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # noqa: BLE001 - a full read reports it
        return False
    spec = TABLES[table_name]
    for f in schema:
        if f.name not in spec.column_names:
            continue
        want = CONTRACT_ARROW.get(spec.column(f.name).dtype, ())
        if not any(str(f.type).startswith(w) for w in want) or getattr(f.type, "tz", None):
            return False
    return True


def _lit(v) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


class _SqlTable:
    """A Parquet table seen from DuckDB as pandas would see it after ``load_tables``: its columns
    (index columns of a pandas-written file left out), each column's pandas dtype (from the
    pandas metadata; int64/bool columns holding nulls become float64/object, as pandas reads them)
    and a view ``<name>`` with the row position ``_rn_`` (file order) for the examples."""

    def __init__(self, con, name: str, path: str | os.PathLike):
        import pyarrow.parquet as pq

        self.con, self.name = con, name
        schema = pq.read_schema(path)
        meta = schema.pandas_metadata or {}
        index_cols = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
        self.columns = [n for n in schema.names if n not in index_cols]
        empty = schema.empty_table().to_pandas()
        lit = str(Path(path)).replace("'", "''")
        self.view = f'"_rm_{name}"'
        con.execute(f"CREATE OR REPLACE TEMP VIEW {self.view} AS SELECT *, file_row_number AS _rn_ "
                    f"FROM read_parquet('{lit}', file_row_number = true)")
        spec = TABLES[name] if name in TABLES else None
        cols = [c for c in self.columns if spec is None or c in spec.column_names]
        parts = ["COUNT(*) AS n_"] + [f"COUNT(*) - COUNT({_qn(c)}) AS {_qn('nulls_' + c)}" for c in cols]
        r = con.execute(f"SELECT {', '.join(parts)} FROM {self.view}").fetchone()
        self.n = int(r[0])
        self.nulls = {c: int(v) for c, v in zip(cols, r[1:])}
        self.dtypes = {}
        for c in self.columns:
            dt = empty[c].dtype if c in empty.columns else np.dtype(object)
            if self.nulls.get(c, 0) and isinstance(dt, np.dtype):
                if dt.kind in "iu":
                    dt = np.dtype("float64")
                elif dt.kind == "b":
                    dt = np.dtype(object)
            self.dtypes[c] = dt

    def sel(self, c: str, alias: str | None = None) -> str:
        """``c`` as pandas would show it (an int column holding nulls is float in pandas)."""
        q = _qn(c)
        out = f"CAST({q} AS DOUBLE)" if (self.dtypes.get(c) == np.float64 and
                                       TABLES.get(self.name) is not None and c in TABLES[self.name].column_names
                                       and TABLES[self.name].column(c).dtype == "int") else q
        return f"{out} AS {_qn(alias or c)}"

    def df(self, sql: str) -> pd.DataFrame:
        from rmanalytics.engine import normalize_frame

        return normalize_frame(self.con.execute(sql).df())

    def failure(self, column: str | None, rule: str, where: str, detail: str = "",
                show: list[str] | None = None) -> Failure | None:
        """A Failure for the rows matching ``where`` (None when none): count, first examples in file order."""
        cols = show if show else [column]
        sel = ", ".join(self.sel(c) for c in cols)
        ex = self.df(f"SELECT {sel}, COUNT(*) OVER () AS n_rule_ FROM {self.view} WHERE {where} "
                     f"ORDER BY _rn_ LIMIT {N_EXAMPLES}")
        if ex.empty:
            return None
        n = int(ex["n_rule_"].iloc[0])
        ex = ex.drop(columns="n_rule_")
        if show:
            examples = [{k: (None if _isnull(v) else row_examples([v])[0]) for k, v in r.items()}
                        for r in ex.to_dict("records")]
        else:
            examples = row_examples(ex[column])
        return Failure(self.name, column, rule, n, examples, detail)

    def distinct_values(self, where: str, column: str) -> tuple[int, int, list]:
        """(rows, distinct values, first distinct values in order of first appearance) where ``where``."""
        ex = self.df(f"SELECT v, n, SUM(n) OVER () AS n_rows_, COUNT(*) OVER () AS n_distinct_ FROM "
                     f"(SELECT {self.sel(column, 'v')}, COUNT(*) AS n, MIN(_rn_) AS first_ FROM {self.view} "
                     f"WHERE {where} GROUP BY 1) g ORDER BY first_ LIMIT {N_EXAMPLES}")
        if ex.empty:
            return 0, 0, []
        return int(ex["n_rows_"].iloc[0]), int(ex["n_distinct_"].iloc[0]), row_examples(ex["v"])


def _qn(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _float_null(t: _SqlTable, c: str) -> str:
    """SQL: ``c`` is missing as pandas sees it (NULL, or NaN in a float column)."""
    q = _qn(c)
    return f"({q} IS NULL OR isnan({q}))" if t.dtypes.get(c) == np.float64 else f"{q} IS NULL"


def _not_nan(t: _SqlTable, c: str) -> str:
    return f" AND NOT isnan({_qn(c)})" if t.dtypes.get(c) == np.float64 else ""


def _check_table_sql(t: _SqlTable) -> list[Failure]:
    """:func:`check_table` of a Parquet table, in DuckDB: the same failures, in the same order."""
    table = TABLES[t.name]
    name = t.name
    failures: list[Failure] = []
    typed_ok: set[str] = set()
    for col in table.columns:
        if col.name not in t.columns:
            if col.required:
                failures.append(Failure(name, col.name, "missing_column", t.n, [], f"columns found: {t.columns}"))
            continue
        q = _qn(col.name)
        f = _check_dtype(name, col, pd.Series([], dtype=t.dtypes[col.name]), np.zeros(0, dtype=bool))
        if f is not None:
            f = t.failure(col.name, "dtype", f"NOT {_float_null(t, col.name)}", f.detail)
            if f is not None:
                failures.append(f)
            else:
                typed_ok.add(col.name)
        else:
            typed_ok.add(col.name)
        keys = [c for c in row_key_columns(name) if c in t.columns and c != col.name]
        show = (keys + [col.name]) if keys else None
        if not col.nullable:
            f = t.failure(col.name, "not_null", _float_null(t, col.name), "null in non-nullable column", show)
            if f:
                failures.append(f)
        if col.name not in typed_ok:
            continue
        if col.min is not None:
            strict = bool(getattr(col, "min_exclusive", False))
            f = t.failure(col.name, "below_min", f"{q} {'<=' if strict else '<'} {_lit(col.min)}",
                          f"must be {'>' if strict else '>='} {col.min:g}", show)
            if f:
                failures.append(f)
        if col.max is not None:
            f = t.failure(col.name, "above_max", f"{q} > {_lit(col.max)}{_not_nan(t, col.name)}",
                          f"must be <= {col.max:g}", show)
            if f:
                failures.append(f)
        if col.allowed is not None:
            allowed = ", ".join(_lit(a) for a in col.allowed)
            n, _, vals = t.distinct_values(f"NOT {_float_null(t, col.name)} AND {q} NOT IN ({allowed})", col.name)
            if n:
                failures.append(Failure(name, col.name, "not_allowed", n, vals, f"allowed: {list(col.allowed)}"))

    key = list(table.key)
    if key and all(k in typed_ok for k in key) and t.n > 1:
        kq = ", ".join(_qn(k) for k in key)
        on = " AND ".join(f"v.{_qn(k)} IS NOT DISTINCT FROM d.{_qn(k)}" for k in key)
        sel = ", ".join(f"v.{t.sel(k)}" for k in key)
        cand = _repeated_hashes(t, kq)
        ex = pd.DataFrame()
        if len(cand):  # the exact grouping on the rows whose key hash repeats (duplicates or collisions)
            t.con.register("_rm_cand", pd.DataFrame({"h": cand}))
            rows = f"(SELECT * FROM {t.view} WHERE hash({kq}) IN (SELECT h FROM _rm_cand))"
            ex = t.df(f"SELECT {sel}, COUNT(*) OVER () AS n_rule_ FROM {rows} v JOIN "
                      f"(SELECT {kq} FROM {rows} c GROUP BY {kq} HAVING COUNT(*) > 1) d ON {on} "
                      f"ORDER BY v._rn_ LIMIT {N_EXAMPLES}")
            t.con.unregister("_rm_cand")
        if not ex.empty:
            examples = [{k: (None if _isnull(v) else row_examples([v])[0]) for k, v in r.items()}
                        for r in ex.drop(columns="n_rule_").to_dict("records")]
            failures.append(Failure(name, key[-1] if len(key) == 1 else ",".join(key), "duplicate_key",
                                    int(ex["n_rule_"].iloc[0]), examples,
                                    f"primary key ({', '.join(key)}) must be unique"))

    needed = _ROW_RULE_COLUMNS.get(name, [])
    if name == "feedback" and "responded_at" in t.columns:
        needed = needed + ["responded_at"]
    if needed and all(c in typed_ok for c in needed):
        failures.extend(_row_rules_sql(table, t))
    return failures


#: Rows per pass of the primary-key check (the key hashes of one pass are sorted in memory: 8 bytes a row).
_HASH_ROWS_PER_PASS = 50_000_000


def _repeated_hashes(t: _SqlTable, kq: str) -> np.ndarray:
    """Key hashes that occur more than once: a key repeated in the table has a repeated hash, so
    when none repeats the key is unique. DuckDB hashes the key columns; the 64-bit hashes are
    sorted in numpy (a hash aggregate over tens of millions of text keys takes several times the
    time and memory), in passes of :data:`_HASH_ROWS_PER_PASS` rows by hash bucket."""
    passes = max(1, -(-t.n // _HASH_ROWS_PER_PASS))
    out = []
    for i in range(passes):
        where = f" WHERE hash({kq}) % {passes} = {i}" if passes > 1 else ""
        h = np.asarray(t.con.execute(f"SELECT hash({kq}) AS h FROM {t.view}{where}").fetchnumpy()["h"])
        h.sort()
        same = h[1:] == h[:-1]
        if same.any():
            out.append(np.unique(h[1:][same]))
        del h
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


def _row_rules_sql(table: Table, t: _SqlTable) -> list[Failure]:
    """:func:`_row_rules` in DuckDB."""
    out: list[Failure | None] = []
    name = table.name

    def end_before_start(start: str, end: str, strict: bool) -> None:
        op = "<=" if strict else "<"
        show = [c for c in table.key if c not in (start, end)] + [start, end]
        out.append(t.failure(end, "end_before_start", f"{_qn(end)} {op} {_qn(start)}", f"{end} {op} {start}", show))

    if name == "customers":
        end_before_start("open_date", "close_date", strict=False)
    elif name == "rms":
        end_before_start("hire_date", "exit_date", strict=False)
    elif name == "assignments":
        end_before_start("start_date", "end_date", strict=True)
    elif name == "holdings":
        end_before_start("start_date", "end_date", strict=False)
        out.append(t.failure("maturity_date", "maturity_before_start", "maturity_date < start_date",
                             "maturity_date < start_date", ["customer_id", "product_id", "start_date", "maturity_date"]))
    elif name == "feedback":
        for end in ("responded_at", "resolved_at"):
            if end in t.columns:
                out.append(t.failure(end, "end_before_start", f"{_qn(end)} < opened_at", f"{end} < opened_at",
                                     ["customer_id", "opened_at", end]))
        has = "(score IS NOT NULL AND NOT isnan(score))"
        bad = (f"((kind = 'complaint' AND {has}) OR (kind = 'nps' AND (NOT {has} OR "
               f"(isfinite(score) AND score <> floor(score)))) OR (kind = 'survey' AND (NOT {has} OR score < 1 "
               f"OR score > 5)))")
        out.append(t.failure("score", "score_by_kind", bad, "nps: integer 0-10; survey: 1-5; complaint: null",
                             ["customer_id", "opened_at", "kind", "score"]))
    elif name == "rm_activity":
        out.append(t.failure("compliance_passed", "compliance_passed_gt_checks",
                             "compliance_passed > compliance_checks", "compliance_passed > compliance_checks",
                             ["rm_id", "period", "compliance_passed", "compliance_checks"]))
        out.append(t.failure("nps_responses", "nps_gt_responses", "(nps_promoters + nps_detractors) > nps_responses",
                             "nps_promoters + nps_detractors > nps_responses",
                             ["rm_id", "period", "nps_promoters", "nps_detractors", "nps_responses"]))
    return [f for f in out if f is not None]


def _unknown_sql(child: _SqlTable, col: str, parent: str, rule: str, parent_table: str,
                 where: str = "") -> Failure | None:
    """:func:`_unknown` for a child table in DuckDB; ``parent``: SQL of the parent's id list."""
    q = _qn(col)
    cond = f"p.id_ IS NULL{' AND ' + where if where else ''}"
    ex = child.df(f"SELECT v, n, SUM(n) OVER () AS n_rows_, COUNT(*) OVER () AS n_distinct_ FROM "
                  f"(SELECT c.{q} AS v, COUNT(*) AS n, MIN(c._rn_) AS first_ FROM {child.view} c LEFT JOIN "
                  f"(SELECT DISTINCT {q} AS id_ FROM {parent}) p ON c.{q} = p.id_ WHERE {cond} GROUP BY c.{q}) g "
                  f"ORDER BY first_ LIMIT {N_EXAMPLES}")
    if ex.empty:
        return None
    k = int(ex["n_distinct_"].iloc[0])
    return Failure(child.name, col, rule, int(ex["n_rows_"].iloc[0]), row_examples(ex["v"]),
                   f"{k} distinct id(s) not in {parent_table}.{col}")


def _shares_sql(t: _SqlTable) -> Failure | None:
    """:func:`_check_shares` in DuckDB: the same sweep (+share at start, -share at end, running sum)."""
    ev = (f"SELECT customer_id, date, SUM(delta) OVER (PARTITION BY customer_id ORDER BY date "
          f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS share_sum FROM ("
          f"SELECT customer_id, date, SUM(delta) AS delta FROM ("
          f"SELECT customer_id, start_date AS date, CAST(share AS DOUBLE) AS delta FROM {t.view} UNION ALL "
          f"SELECT customer_id, end_date AS date, -CAST(share AS DOUBLE) AS delta FROM {t.view} "
          f"WHERE end_date IS NOT NULL) e GROUP BY customer_id, date) g")
    tol = repr(SHARE_TOLERANCE)
    ex = t.df(f"SELECT customer_id, date, share_sum, COUNT(*) OVER () AS n_rule_, "
              f"COUNT(DISTINCT customer_id) OVER () AS n_cust_ FROM ({ev}) s "
              f"WHERE share_sum > {tol} AND abs(share_sum - 1.0) > {tol} ORDER BY customer_id, date "
              f"LIMIT {N_EXAMPLES}")
    if ex.empty:
        return None
    examples = [{"customer_id": r.customer_id, "date": row_examples([r.date])[0], "share_sum": round(r.share_sum, 9)}
                for r in ex.itertuples()]
    n_cust = int(ex["n_cust_"].iloc[0])
    return Failure("assignments", "share", "shares_not_1", int(ex["n_rule_"].iloc[0]), examples,
                   f"n_rows counts customer-dates ({n_cust} customer(s)); shares of the assignments "
                   f"covering a date must sum to 1 +- {SHARE_TOLERANCE:g}")


# --------------------------------------------------------------------------------------------
# cross-table rules
# --------------------------------------------------------------------------------------------


def _unknown(child: str, df: pd.DataFrame, col: str, parent_ids: pd.Series, rule: str, parent: str) -> Failure | None:
    bad = ~df[col].isin(parent_ids).to_numpy(dtype=bool)
    if not bad.any():
        return None
    ids = pd.unique(df[col][bad])
    return Failure(child, col, rule, int(bad.sum()), row_examples(ids),
                   f"{len(ids)} distinct id(s) not in {parent}.{col}")


def share_sums(assignments: pd.DataFrame) -> pd.DataFrame:
    """Sum of assignment shares per customer at every start and end date of its assignments.

    The share sum of a customer is a step function that changes only at assignment start and end
    dates, so checking it at those dates checks every date. Vectorised sweep: +share at start,
    -share at end (exclusive), cumulative sum per customer.

    Returns
    -------
    DataFrame with columns customer_id, date, share_sum (the sum of shares of the assignments
    covering ``date``), one row per customer and event date.
    """
    a = assignments
    start = pd.DataFrame({"customer_id": a["customer_id"].to_numpy(), "date": a["start_date"].to_numpy(),
                          "delta": a["share"].to_numpy(dtype=float)})
    has_end = a["end_date"].notna().to_numpy()
    end = pd.DataFrame({"customer_id": a["customer_id"].to_numpy()[has_end],
                        "date": a["end_date"].to_numpy()[has_end],
                        "delta": -a["share"].to_numpy(dtype=float)[has_end]})
    ev = pd.concat([start, end], ignore_index=True)
    ev = ev.groupby(["customer_id", "date"], sort=True, observed=True)["delta"].sum().reset_index()
    ev["share_sum"] = ev.groupby("customer_id", sort=False, observed=True)["delta"].cumsum()
    return ev[["customer_id", "date", "share_sum"]]


def _check_shares(a: pd.DataFrame) -> Failure | None:
    if len(a) == 0:
        return None
    ev = share_sums(a)
    covered = ev["share_sum"].to_numpy() > SHARE_TOLERANCE
    bad = covered & (np.abs(ev["share_sum"].to_numpy() - 1.0) > SHARE_TOLERANCE)
    if not bad.any():
        return None
    rows = ev[bad].head(N_EXAMPLES)
    examples = [{"customer_id": r.customer_id, "date": row_examples([r.date])[0], "share_sum": round(r.share_sum, 9)}
                for r in rows.itertuples()]
    n_cust = ev.loc[bad, "customer_id"].nunique()
    return Failure("assignments", "share", "shares_not_1", int(bad.sum()), examples,
                   f"n_rows counts customer-dates ({n_cust} customer(s)); shares of the assignments "
                   f"covering a date must sum to 1 +- {SHARE_TOLERANCE:g}")


def check_tables(tables: Mapping[str, pd.DataFrame | str | os.PathLike], *, cross: bool = True) -> list[Failure]:
    """All contract failures of the given tables, including cross-table rules.

    Cross-table rules are checked between tables that are present and passed their own checks.
    A table may be a frame or the path of a Parquet file (checked inside DuckDB, with the same
    failures; see the module docstring). ``cross=False``: the tables' own rules only.
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise KeyError(f"unknown table(s) {unknown}; contract tables: {sorted(TABLES)}")
    tables = dict(tables)
    for name, src in tables.items():  # a Parquet file without the contract types: checked as pandas reads it
        if _is_path(src) and not parquet_conforms(src, name):
            tables[name] = pd.read_parquet(src) if str(src).lower().endswith(".parquet") else _not_a_frame(name, src)
    paths = {n: s for n, s in tables.items() if _is_path(s)}
    con = None
    sql: dict[str, _SqlTable] = {}
    if paths:
        from rmanalytics.engine import connect

        con = connect()
    try:
        for n, p in paths.items():
            sql[n] = _SqlTable(con, n, p)
        return _check_tables(tables, sql, con, cross)
    finally:
        if con is not None:
            con.close()


def _not_a_frame(name: str, src) -> pd.DataFrame:
    raise TypeError(f"table {name!r}: a path to check must be a Parquet file (read CSV with "
                    f"rmanalytics.io.load_tables), got {str(src)!r}")


def _check_tables(tables: Mapping, sql: Mapping[str, _SqlTable], con, cross: bool) -> list[Failure]:
    failures: list[Failure] = []
    ok: set[str] = set()
    for name in TABLES:
        if name in tables:
            f = _check_table_sql(sql[name]) if name in sql else check_table(tables[name], name)
            failures.extend(f)
            if not f:
                ok.add(name)
    if not cross:
        return failures

    registered: set[str] = set()

    def parent_sql(parent: str) -> str:
        """SQL name of a parent table in DuckDB (a frame is registered)."""
        if parent in sql:
            return sql[parent].view
        if parent not in registered:
            con.register(f"_rm_frame_{parent}", tables[parent])
            registered.add(parent)
        return f'"_rm_frame_{parent}"'

    def parent_frame(parent: str, columns: list[str]) -> pd.DataFrame:
        """Columns of a parent table as a frame (read from DuckDB when it is a path)."""
        if parent in sql:
            return sql[parent].df(f"SELECT {', '.join(sql[parent].sel(c) for c in columns)} FROM {sql[parent].view} "
                                  f"ORDER BY _rn_")
        return tables[parent]

    def unknown(child: str, col: str, parent: str, rule: str, frame_filter=None, where: str = "") -> None:
        if child in sql:
            f = _unknown_sql(sql[child], col, parent_sql(parent), rule, parent, where)
        else:
            df = tables[child]
            if frame_filter is not None:
                df = df[frame_filter(df)]
            f = _unknown(child, df, col, parent_frame(parent, [col])[col], rule, parent)
        if f:
            failures.append(f)

    if "customers" in ok:
        for child in ("transactions", "balances", "assignments", "daily_balances", "holdings", "interactions",
                      "feedback", "digital_activity"):
            if child in ok:
                unknown(child, "customer_id", "customers", "unknown_customer")
    if "rms" in ok:
        for child in ("assignments", "rm_activity", "training", "interactions", "feedback"):
            if child in ok:
                if child == "feedback":  # rm_id is nullable there
                    unknown(child, "rm_id", "rms", "unknown_rm", lambda d: d["rm_id"].notna(), "c.rm_id IS NOT NULL")
                else:
                    unknown(child, "rm_id", "rms", "unknown_rm")
    if "holdings" in ok:
        if "products" in ok:
            unknown("holdings", "product_id", "products", "unknown_product")
        elif "products" not in tables:
            if "holdings" in sql:
                h = sql["holdings"]
                if h.n:
                    ex = h.df(f"SELECT product_id FROM {h.view} ORDER BY _rn_ LIMIT {N_EXAMPLES}")
                    failures.append(Failure("holdings", "product_id", "unknown_product", h.n,
                                            row_examples(ex["product_id"]),
                                            "table `products` is absent: holdings need the product catalogue"))
            elif len(tables["holdings"]):
                h = tables["holdings"]
                failures.append(Failure("holdings", "product_id", "unknown_product", len(h),
                                        row_examples(h["product_id"]),
                                        "table `products` is absent: holdings need the product catalogue"))
    if "customers" in ok:
        for child, col in (("holdings", "start_date"), ("feedback", "opened_at")):
            if child not in ok:
                continue
            if child in sql:
                t = sql[child]
                f = t.failure(col, "before_open", f"_rn_ IN (SELECT c._rn_ FROM {t.view} c JOIN "
                              f"{parent_sql('customers')} o ON c.customer_id = o.customer_id WHERE "
                              f"CAST(CAST(c.{_qn(col)} AS DATE) AS TIMESTAMP) < CAST(o.open_date AS TIMESTAMP))",
                              f"{col} before customers.open_date", ["customer_id", col])
            else:
                df = tables[child]
                opened = parent_frame("customers", ["customer_id", "open_date"]).set_index("customer_id")["open_date"]
                op = df["customer_id"].map(opened)
                bad = (df[col].dt.normalize() < op).fillna(False).to_numpy(dtype=bool)
                f = _mask_failure(child, col, "before_open", df, bad, f"{col} before customers.open_date",
                                  ["customer_id", col])
            if f:
                failures.append(f)
    if "assignments" in ok:
        f = _shares_sql(sql["assignments"]) if "assignments" in sql else _check_shares(tables["assignments"])
        if f:
            failures.append(f)
    return failures


def validate_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Validate a dict of contract tables and the rules between them; return them unchanged.

    Parameters
    ----------
    tables : table name -> DataFrame; any subset of the contract tables. Cross-table rules run
        between the tables present: transactions/balances/assignments (and the optional
        holdings/interactions/feedback/digital_activity) of unknown customers,
        assignments/rm_activity/interactions/feedback of unknown RMs, holdings of unknown products,
        holdings and feedback dated before the customer opened, and assignment shares summing to
        1 (+-1e-6) on every date a customer is covered.

    Raises
    ------
    DataContractError listing every failure of every table.
    """
    failures = check_tables(tables)
    if failures:
        raise DataContractError(failures)
    return dict(tables)


# --------------------------------------------------------------------------------------------
# documentation
# --------------------------------------------------------------------------------------------


def _fmt_num(x: float) -> str:
    return f"{x:g}"


def contract_markdown() -> str:
    """Markdown tables documenting every contract table and column (used in data/README.md)."""
    lines: list[str] = []
    for t in TABLES.values():
        lines.append(f"### `{t.name}`")
        lines.append("")
        lines.append(t.description)
        lines.append("")
        key = ", ".join(f"`{k}`" for k in t.key) if t.key else "none (rows need not be unique)"
        lines.append(f"Primary key: {key}")
        lines.append("")
        lines.append("| column | dtype | unit | nullable | required | allowed / range | description |")
        lines.append("|---|---|---|---|---|---|---|")
        for c in t.columns:
            if c.allowed is not None:
                rng = ", ".join(f"`{a}`" for a in c.allowed)
            elif c.min is not None and c.max is not None:
                lo = "(exclusive)" if getattr(c, "min_exclusive", False) else ""
                rng = f"{_fmt_num(c.min)}{lo} to {_fmt_num(c.max)}"
            elif c.min is not None:
                rng = f"{'>' if getattr(c, 'min_exclusive', False) else '>='} {_fmt_num(c.min)}"
            elif c.max is not None:
                rng = f"<= {_fmt_num(c.max)}"
            else:
                rng = ""
            desc = c.description.replace("|", "\\|")
            lines.append(f"| `{c.name}` | {c.dtype} | {c.unit or ''} | {'yes' if c.nullable else 'no'} | "
                         f"{'yes' if c.required else 'no (optional)'} | {rng} | {desc} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
