"""Load and write the contract tables (Parquet, CSV, DuckDB) and fingerprint input files.

A data source is either

- a folder holding ``<table>.parquet`` or ``<table>.csv`` per contract table (Parquet wins when
  both exist), or
- a DuckDB database file (``.duckdb`` / ``.db``) with tables named as in the contract.

Loaders convert types only where the conversion is lossless and explicit, following the contract
dtypes: CSV ids stay strings (leading zeros kept), date text is parsed to ``datetime64[ns]``
(a value that does not parse is an ``unparseable`` error listing examples with their row keys,
never NaT), numbers are parsed to int64/float64, narrower numeric types and other datetime units
are widened. Columns that are not in the contract are passed through untouched. Rows are never
dropped.

Dates in text (CSV) are ISO 8601 by contract (``2024-01-31``, ``2024-01-31 13:45:00``; year-first
layouts such as ``2024/01/31`` are unambiguous and accepted). Any other layout -- ``11/01/2022``
could be 11 January or 1 November -- is refused, never guessed, unless the table declares its
layout in ``data.yaml`` beside the tables (:func:`read_data_config`)::

    encoding: utf-8            # optional, for every CSV (default utf-8)
    tables:
      transactions:
        date_format: "%d/%m/%Y"  # strptime layout of every date column of this table
        encoding: gbk            # e.g. a bank export in GBK

Problems with a file itself (0 bytes, not the declared encoding, unreadable Parquet, a header
without rows) raise :class:`rmanalytics.errors.DataError` with one line naming the file and what
to do. A table with no rows is an error: there is nothing to analyse.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.contract import CORE_TABLES, OPTIONAL_TABLES, TABLES, Column
from rmanalytics.errors import DataError, row_examples, rule_message
from rmanalytics.schema import DataContractError, Failure, check_tables, example_rows, parquet_conforms

__all__ = ["CACHE_DIR", "DATA_CONFIG", "FORMATS", "SEGMENT_COLUMNS", "TableOptions", "available_tables", "cache_dir",
           "data_key", "ensure_validated", "fingerprint", "is_validated", "load_tables", "precheck", "read_data_config",
           "read_segments", "record_validated", "table_columns", "validate_data_dir", "write_tables"]

#: Name of the optional file beside the tables declaring date layouts and encodings.
DATA_CONFIG = "data.yaml"
#: Columns of ``restricted/tables/segments.parquet``, the per-customer segments a 01 run writes for 02 and 03.
SEGMENT_COLUMNS = ("customer_id", "segment", "lifecycle_stage", "tier")

FORMATS = ("parquet", "csv", "duckdb")
#: Folder beside the tables (``<data_dir>/.rmanalytics``) holding validation records and converted copies.
CACHE_DIR = ".rmanalytics"
#: Files above this size are keyed by size, mtime and the hash of their first and last MiB (see :func:`data_key`).
_FULL_HASH_LIMIT = 256 * 2**20
DB_SUFFIXES = (".duckdb", ".db")
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


def _is_db(path: Path) -> bool:
    return path.suffix.lower() in DB_SUFFIXES


def _table_names(tables: Iterable[str] | None) -> list[str]:
    names = list(TABLES) if tables is None else list(tables)
    unknown = [t for t in names if t not in TABLES]
    if unknown:
        raise KeyError(f"unknown table(s) {unknown}; contract tables: {list(TABLES)}")
    return names


# --------------------------------------------------------------------------------------------
# lossless conversion to the contract dtypes
# --------------------------------------------------------------------------------------------


_DAY_MONTH = r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}(\s|T|$)"


def _date_failure(table: str, col: Column, s: pd.Series, bad: np.ndarray, keys: pd.DataFrame | None,
                  date_format: str | None) -> Failure:
    """One ``unparseable`` failure for the date values in ``bad``: count, examples with row keys."""
    vals = s[bad]
    if date_format:
        detail = (f"text that does not match the declared date_format {date_format!r} "
                  f"(data.yaml); fix the values or the declaration")
    else:
        n_amb = int(vals.astype(str).str.match(_DAY_MONTH).sum())
        detail = "dates must be ISO 8601 (YYYY-MM-DD)"
        if n_amb:
            detail += (f"; {n_amb:,} look like day/month or month/day (e.g. 11/01/2022: 11 January or "
                       f"1 November?) and are never guessed")
        detail += (f"; declare the layout in {DATA_CONFIG} beside the tables, e.g. "
                   f"'tables: {{{table}: {{date_format: \"%d/%m/%Y\"}}}}', or re-export as ISO 8601")
    return Failure(table, col.name, "unparseable", int(bad.sum()), example_rows(keys, s, bad, col.name), detail)


def _parse_text(table: str, col: Column, s: pd.Series, *, date_format: str | None = None,
                keys: pd.DataFrame | None = None) -> tuple[pd.Series, Failure | None]:
    """Parse a column of strings (from CSV) to the contract dtype; failures are reported.

    Dates: ISO 8601, or exactly ``date_format`` when declared; nothing else (no second, lenient
    pass: a day-first date read month-first is silent corruption). ``keys``: the table's row-key
    columns, for the examples of a failure.
    """
    notna = s.notna()
    if col.dtype == "date":
        fmt = date_format or "ISO8601"
        try:
            parsed = pd.to_datetime(s, errors="coerce", format=fmt)
        except ValueError as exc:  # e.g. a tz offset mixed with naive values
            bad = notna.to_numpy()
            return s, Failure(table, col.name, "unparseable", int(bad.sum()),
                              example_rows(keys, s, bad, col.name), f"dates do not parse: {exc}")
        if getattr(parsed.dtype, "tz", None) is not None:
            return s, Failure(table, col.name, "dtype", int(notna.sum()), row_examples(s[notna]),
                              "timestamps carry a time zone; contract dates are tz-naive")
        bad = (notna & parsed.isna()).to_numpy()
        if bad.any():
            return s, _date_failure(table, col, s, bad, keys, date_format)
        return parsed.astype("datetime64[ns]"), None
    if col.dtype in ("int", "float"):
        num = pd.to_numeric(s, errors="coerce")
        bad = notna & num.isna()
        if bad.any():
            return s, Failure(table, col.name, "unparseable", int(bad.sum()),
                              example_rows(keys, s, bad.to_numpy(), col.name), f"text that is not a number ({col.dtype})")
        if col.dtype == "float":
            return num.astype("float64"), None
        vals = num.to_numpy(dtype=float, na_value=np.nan)
        nonint = notna.to_numpy() & (np.mod(vals, 1) != 0)
        if nonint.any():
            return s, Failure(table, col.name, "unparseable", int(nonint.sum()),
                              example_rows(keys, s, nonint, col.name), "text that is not an integer")
        if notna.all():
            return num.astype("int64"), None
        return num.astype("Int64"), None  # nulls: the validator reports them if not allowed
    if col.dtype == "bool":
        low = s.str.strip().str.lower()
        bad = notna & ~low.isin(_TRUE | _FALSE)
        if bad.any():
            return s, Failure(table, col.name, "unparseable", int(bad.sum()),
                              example_rows(keys, s, bad.to_numpy(), col.name), "text that is not a boolean")
        if notna.all():
            return low.isin(_TRUE), None
        return low.map(lambda v: v in _TRUE if isinstance(v, str) else pd.NA).astype("boolean"), None
    # str: nulls as None, like Parquet/DuckDB give them
    return s.astype(object).where(notna, None), None


def _conform(df: pd.DataFrame, table: str, date_format: str | None = None) -> pd.DataFrame:
    """Lossless, explicit conversions of a loaded table toward the contract dtypes.

    - text date columns (or Python ``datetime.date`` objects from Parquet/DuckDB DATE) are parsed;
      unparseable values raise DataContractError (rule ``unparseable``);
    - datetime64 of any unit -> datetime64[ns]; int8/16/32, uint -> int64; float32 -> float64;
    - anything else is left as is for the validator to judge.
    """
    spec = TABLES[table]
    out = df.copy(deep=False)
    failures: list[Failure] = []
    for col in spec.columns:
        if col.name not in out.columns:
            continue
        s = out[col.name]
        dt = s.dtype
        if col.dtype == "date":
            if pd.api.types.is_datetime64_any_dtype(dt):
                if getattr(dt, "tz", None) is None and dt != "datetime64[ns]":
                    out[col.name] = s.astype("datetime64[ns]")
            elif dt == object or isinstance(dt, pd.StringDtype):
                kind = pd.api.types.infer_dtype(s, skipna=True)
                if kind in ("date", "datetime", "datetime64"):
                    out[col.name] = pd.to_datetime(s).astype("datetime64[ns]")
                elif kind in ("string", "empty"):
                    parsed, f = _parse_text(table, col, s, date_format=date_format, keys=_keys(out, table))
                    if f:
                        failures.append(f)
                    else:
                        out[col.name] = parsed
        elif col.dtype == "int":
            if pd.api.types.is_integer_dtype(dt) and isinstance(dt, np.dtype) and dt != np.int64:
                if dt != np.uint64 or (len(s) == 0 or s.max() <= np.iinfo(np.int64).max):
                    out[col.name] = s.astype("int64")
        elif col.dtype == "float":
            if pd.api.types.is_float_dtype(dt) and isinstance(dt, np.dtype) and dt != np.float64:
                out[col.name] = s.astype("float64")
    if failures:
        raise DataContractError(failures)
    return out


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableOptions:
    """How to read one table's CSV: its text encoding and the strptime layout of its dates."""

    encoding: str = "utf-8"
    date_format: str | None = None


_OPTION_KEYS = {"encoding", "date_format"}


def read_data_config(folder: str | os.PathLike) -> dict[str, TableOptions]:
    """Per-table read options from ``<folder>/data.yaml`` (every contract table; defaults without it).

    Keys: global ``encoding``/``date_format``, and ``tables: {<table>: {encoding, date_format}}``
    overriding them. Unknown keys, unknown tables, unknown encodings and a malformed file are a
    :class:`DataError` naming the file.
    """
    import codecs

    import yaml

    path = Path(folder) / DATA_CONFIG
    defaults = {t: TableOptions() for t in TABLES}
    if not path.is_file():
        return defaults
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid YAML ({_one_line(exc)}); fix the file or remove it") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping with 'encoding', 'date_format' and/or 'tables'")

    def check(opts: object, where: str) -> dict:
        if not isinstance(opts, dict):
            raise DataError(f"{path}: {where} must be a mapping of encoding/date_format, got {opts!r}")
        unknown = sorted(set(opts) - _OPTION_KEYS)
        if unknown:
            raise DataError(f"{path}: {where}: unknown key(s) {unknown}; allowed: {sorted(_OPTION_KEYS)}")
        for k, v in opts.items():
            if not isinstance(v, str) or not v:
                raise DataError(f"{path}: {where}.{k} must be a non-empty string, got {v!r}")
        if "encoding" in opts:
            try:
                codecs.lookup(opts["encoding"])
            except LookupError:
                raise DataError(f"{path}: {where}.encoding {opts['encoding']!r} is not a known encoding "
                                f"(e.g. utf-8, gbk, gb18030, latin-1)") from None
        if "date_format" in opts and "%" not in opts["date_format"]:
            raise DataError(f"{path}: {where}.date_format {opts['date_format']!r} is not a strptime layout "
                            f"(e.g. '%d/%m/%Y')")
        return opts

    tables = raw.get("tables") or {}
    top = check({k: v for k, v in raw.items() if k != "tables"}, "top level")
    if not isinstance(tables, dict):
        raise DataError(f"{path}: 'tables' must map table names to options")
    unknown = sorted(set(map(str, tables)) - set(TABLES))
    if unknown:
        raise DataError(f"{path}: unknown table(s) {unknown}; contract tables: {list(TABLES)}")
    out = {}
    for t in TABLES:
        own = check(tables.get(t) or {}, f"tables.{t}")
        out[t] = TableOptions(**{**top, **own})
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _keys(df: pd.DataFrame, table: str) -> pd.DataFrame | None:
    from rmanalytics.schema import row_key_columns

    cols = [c for c in row_key_columns(table) if c in df.columns]
    return df[cols] if cols else None


def _check_encoding(path: Path, table: str, encoding: str) -> None:
    """Raise a one-line DataError when ``path`` is not text in ``encoding`` (says where and what to do)."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
        return
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        guess = ""
        if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
            try:
                data.decode("gb18030")
                guess = " (it reads as GBK/GB18030 text, common in bank exports)"
            except UnicodeDecodeError:
                pass
        raise DataError(
            f"{path}: not {encoding} text: byte {data[exc.start:exc.start + 1]!r} at line {line}{guess}; "
            f"declare the file's encoding in {DATA_CONFIG} beside the tables "
            f"('tables: {{{table}: {{encoding: gbk}}}}') or re-save it as UTF-8") from None


def _read_csv(path: Path, table: str, options: TableOptions | None = None) -> pd.DataFrame:
    """Read a CSV with the contract dtypes: contract columns as text first, then parsed."""
    opts = options or TableOptions()
    spec = TABLES[table]
    _check_encoding(path, table, opts.encoding)
    try:
        header = pd.read_csv(path, nrows=0, encoding=opts.encoding).columns
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no header line (the file holds only blank lines); export the "
                        f"{table} table again with its column names on the first line") from None
    contract_cols = [c for c in header if c in spec.column_names]
    # keep_default_na=False: ids like "NA" or "null" stay strings; only empty fields are null
    try:
        df = pd.read_csv(path, dtype={c: str for c in contract_cols}, keep_default_na=False, na_values=[""],
                         encoding=opts.encoding)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a well-formed CSV ({_one_line(exc)}); check the delimiter (comma) "
                        f"and quoting") from None
    keys = _keys(df, table)
    failures: list[Failure] = []
    for name in contract_cols:
        parsed, f = _parse_text(table, spec.column(name), df[name], date_format=opts.date_format, keys=keys)
        if f:
            failures.append(f)
        df[name] = parsed
    if failures:
        raise DataContractError(failures)
    return df


def _read_file(path: Path, table: str, options: TableOptions) -> pd.DataFrame:
    """One table file -> DataFrame; problems with the file itself are one-line DataErrors."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); export the {table} table again"
                        + ("" if table == "transactions" else ", or remove the file if the notebooks you run "
                                                                  "do not need it"))
    if path.suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a broken file
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {_one_line(exc)[:200]}); "
                            f"write it again") from None
        return _conform(df, table, options.date_format)
    return _conform(_read_csv(path, table, options), table, options.date_format)


def _check_rows(df: pd.DataFrame, table: str, source: str) -> None:
    if len(df) == 0:
        raise DataError(rule_message(f"{source} (table {table})", "the table has no rows (header only)", 0,
                                     hint="there is no data to analyse: export the rows too"
                                     + ("" if table == "transactions" else ", or remove the file if it is optional")))


def _find_files(folder: Path) -> dict[str, Path]:
    """table -> file in ``folder`` (Parquet preferred over CSV)."""
    found: dict[str, Path] = {}
    for name in TABLES:
        for ext in (".parquet", ".csv"):
            p = folder / f"{name}{ext}"
            if p.is_file():
                found[name] = p
                break
    return found


def _duckdb_tables(path: Path) -> list[str]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]


def available_tables(data_dir: str | os.PathLike) -> list[str]:
    """Contract tables present in a data folder or DuckDB file (contract order), without reading them."""
    path = Path(data_dir)
    if _is_db(path):
        if not path.is_file():
            raise FileNotFoundError(f"DuckDB file {str(path)!r} does not exist")
        present = set(_duckdb_tables(path))
        return [t for t in TABLES if t in present]
    if not path.is_dir():
        raise FileNotFoundError(f"data_dir {str(path)!r} is not a folder or a .duckdb/.db file")
    return list(_find_files(path))


def precheck(data_dir: str | os.PathLike, head_bytes: int = 1 << 20) -> None:
    """Fast checks of a data folder before any kernel starts (seconds, whatever the data size).

    ``data.yaml`` is valid; no table file is 0 bytes; a CSV's first ``head_bytes`` decode in
    its declared encoding and hold a header and at least one row; a Parquet file's footer is
    readable and counts rows. Raises the same one-line :class:`DataError` as :func:`load_tables`
    (which still checks everything when the notebook loads the tables).
    """
    import codecs

    path = Path(data_dir)
    if _is_db(path) or not path.is_dir():
        return
    options = read_data_config(path)
    for t, p in _find_files(path).items():
        if p.stat().st_size == 0:
            _read_file(p, t, options[t])  # raises the 0-byte message
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                n = pq.ParquetFile(p).metadata.num_rows
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a broken file
                raise DataError(f"{p}: not a readable Parquet file ({type(exc).__name__}: "
                                f"{_one_line(exc)[:200]}); write it again") from None
            if n == 0:
                _check_rows(pd.DataFrame(), t, str(p))
            continue
        with open(p, "rb") as fh:
            head = fh.read(head_bytes)
            more = bool(fh.read(1))
        try:
            text = codecs.getincrementaldecoder(options[t].encoding)().decode(head, final=not more)
        except UnicodeDecodeError:
            _check_encoding(p, t, options[t].encoding)  # locates the byte and says what to do
            raise
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) < 2 and not more:
            _check_rows(pd.DataFrame(), t, str(p))


def table_columns(data_dir: str | os.PathLike) -> dict[str, list[str] | None]:
    """Contract tables present in ``data_dir`` -> their column names, reading headers/schemas only.

    A file whose header cannot be read maps to None (loading it reports why).
    """
    path = Path(data_dir)
    out: dict[str, list[str] | None] = {}
    if _is_db(path):
        import duckdb

        with duckdb.connect(str(path), read_only=True) as con:
            for t in available_tables(path):
                out[t] = [r[0] for r in con.execute(f'DESCRIBE "{t}"').fetchall()]
        return out
    files = _find_files(path) if path.is_dir() else {}
    try:
        options = read_data_config(path)
    except DataError:
        options = {t: TableOptions() for t in TABLES}
    for t, p in files.items():
        try:
            if p.suffix == ".parquet":
                import pyarrow.parquet as pq

                out[t] = list(pq.read_schema(p).names)
            else:
                out[t] = list(pd.read_csv(p, nrows=0, encoding=options[t].encoding).columns)
        except Exception:  # noqa: BLE001 - reported when the table is loaded
            out[t] = None
    return out


def load_tables(
    data_dir: str | os.PathLike,
    tables: Iterable[str] | None = None,
    validate: bool = True,
    optional: Iterable[str] = (),
    needed_by: str | None = None,
    lazy: Iterable[str] = (),
) -> dict[str, pd.DataFrame | str]:
    """Read contract tables from a folder of Parquet/CSV files or a DuckDB file.

    Parameters
    ----------
    data_dir : folder with ``<table>.parquet`` or ``<table>.csv`` files (and optionally
        ``data.yaml``, see :func:`read_data_config`), or a ``.duckdb``/``.db`` database file with
        tables named as in the contract.
    tables : required table names. Default: the seven required contract tables, plus the optional
        ones (training, daily_balances, products, holdings, interactions, feedback,
        digital_activity) when present.
    validate : run :func:`rmanalytics.schema.check_tables` on the loaded tables (default True).
    optional : tables loaded when present and left out of the result when absent (with
        ``tables=None`` the contract's optional tables are always among them).
    needed_by : name of the notebook asking, for the message when a required table is missing.
    lazy : tables returned as the path of a Parquet file (for :func:`rmanalytics.engine.run_sql`)
        instead of a DataFrame, so a big table (transactions, balances) never becomes a pandas
        copy. A Parquet file with the contract types is returned as it is; a CSV (or a Parquet
        file needing a type conversion) is converted once, losslessly, to a Parquet copy in the
        data cache (:func:`cache_dir`) keyed by the data fingerprint. A DuckDB file source
        ignores ``lazy`` (its tables come as frames).

    Validation runs once per data fingerprint (:func:`data_key`): a successful check of a folder
    is recorded in the data cache and a later load of the same tables (or a subset of them)
    skips it. A lazy table is validated inside DuckDB on its Parquet file
    (:func:`rmanalytics.schema.check_tables` on paths: the same failures and messages as the
    pandas checks); it is read into pandas only to be converted (a CSV, or a Parquet file needing a
    type conversion), one table at a time, once per fingerprint.

    Returns
    -------
    dict table name -> DataFrame (dates as datetime64[ns], ids as str, money as float64), or the
    path (str) of a Parquet file for the ``lazy`` tables.

    Raises
    ------
    FileNotFoundError when the source or a required table is missing (lists what was found);
    DataError for a file that cannot be read (0 bytes, wrong encoding, no rows, bad data.yaml);
    DataContractError when a value cannot be parsed or a contract rule fails.
    """
    path = Path(data_dir)
    opt = _table_names(optional)
    if tables is None:  # the contract's optional tables (training, daily_balances) only when present
        opt = opt + [t for t, spec in TABLES.items() if spec.optional and t not in opt]
    names = [t for t in _table_names(tables) if t not in opt] if tables is not None else \
        [t for t in TABLES if t not in opt]
    wanted = names + [t for t in opt if t not in names]
    out: dict[str, pd.DataFrame] = {}
    who = f"notebook {needed_by} needs" if needed_by else "needs"
    if _is_db(path):
        if not path.is_file():
            raise FileNotFoundError(f"DuckDB file {str(path)!r} does not exist")
        import duckdb

        present = _duckdb_tables(path)
        if tables is None:  # optional tables only when present
            names = [t for t in names if not TABLES[t].optional or t in present]
        missing = [t for t in names if t not in present]
        if missing:
            raise FileNotFoundError(
                f"DuckDB file {str(path)!r} lacks table(s) {missing} ({who} {names}); found tables: "
                f"{sorted(present)}")
        with duckdb.connect(str(path), read_only=True) as con:
            for t in wanted:
                if t not in present:
                    continue
                df = _conform(con.execute(f'SELECT * FROM "{t}"').df(), t)
                _check_rows(df, t, f"{path} table {t}")
                out[t] = df
    else:
        if not path.is_dir():
            raise FileNotFoundError(f"data_dir {str(path)!r} is not a folder or a .duckdb/.db file")
        files = _find_files(path)
        if tables is None:  # optional tables only when present
            names = [t for t in names if not TABLES[t].optional or t in files]
        missing = [t for t in names if t not in files]
        if missing:
            found = sorted(p.name for p in path.iterdir() if p.is_file())
            raise FileNotFoundError(
                f"data_dir {str(path)!r} lacks table file(s) "
                f"{[t + '.parquet|.csv' for t in missing]} ({who} {names}"
                + (f"; optional: {opt}" if opt else "") + f"); files found: {found}")
        options = read_data_config(path)
        present_wanted = [t for t in wanted if t in files]
        lazy_set = set(_table_names(lazy)) & set(present_wanted)
        key = data_key(path) if (validate or lazy_set) else ""
        known_ok = validate and is_validated(path, present_wanted, key=key)
        checking = validate and not known_ok
        for t in present_wanted:
            if t in lazy_set:
                fast = _conforming_parquet(files[t], t)
                if fast is not None:
                    if checking:
                        _check_parquet_rows(files[t], t)
                    out[t] = fast
                    continue
                cached = _converted_path(path, t, key)
                if cached.is_file():
                    out[t] = str(cached)
                    continue
            df = _read_file(files[t], t, options[t])
            _check_rows(df, t, str(files[t]))
            if checking and t in lazy_set:
                # converted once (CSV, or Parquet needing a type conversion) and validated in DuckDB
                out[t] = _lazy_path(path, t, df, files[t], key)
                del df
                continue
            out[t] = df
        if validate and not known_ok:
            failures = check_tables(out)
            if failures:
                raise DataContractError(failures)
            record_validated(path, list(out), key=key)
        for t in lazy_set:
            if isinstance(out.get(t), pd.DataFrame):
                out[t] = _lazy_path(path, t, out[t], files[t], key)
        return out
    if validate:
        failures = check_tables(out)
        if failures:
            raise DataContractError(failures)
    return out


# --------------------------------------------------------------------------------------------
# the data cache: validation records and Parquet copies, keyed by the data fingerprint
# --------------------------------------------------------------------------------------------


def _file_key(p: Path) -> str:
    """size, mtime and content hash of one file (first and last MiB above ``_FULL_HASH_LIMIT``)."""
    st = p.stat()
    h = hashlib.sha256(f"{p.name}|{st.st_size}|{st.st_mtime_ns}|".encode())
    with open(p, "rb") as fh:
        if st.st_size > _FULL_HASH_LIMIT:
            h.update(fh.read(2**20))
            fh.seek(st.st_size - 2**20)
            h.update(fh.read(2**20))
        else:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def data_key(data_dir: str | os.PathLike) -> str:
    """A short fingerprint of a data source: every contract table file and ``data.yaml`` (size,
    mtime, content hash), plus the rmanalytics version (a new version may check new rules)."""
    import rmanalytics

    path = Path(data_dir)
    files = [path] if path.is_file() else sorted(_find_files(path).values())
    if path.is_dir() and (path / DATA_CONFIG).is_file():
        files.append(path / DATA_CONFIG)
    h = hashlib.sha256(rmanalytics.__version__.encode())
    for p in files:
        h.update(_file_key(p).encode())
    return h.hexdigest()[:20]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def cache_dir(data_dir: str | os.PathLike) -> Path:
    """Where validation records and converted copies of ``data_dir`` live.

    ``<data_dir>/.rmanalytics`` when writable, else ``$RMANALYTICS_CACHE`` (default
    ``~/.cache/rmanalytics``) in a sub-folder named after the hash of the data path.
    """
    path = Path(data_dir).resolve()
    own = (path.parent if path.is_file() else path) / CACHE_DIR
    if _writable(own):
        return own
    root = Path(os.environ.get("RMANALYTICS_CACHE") or Path.home() / ".cache" / "rmanalytics")
    fallback = root / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _record_file(data_dir: str | os.PathLike, key: str) -> Path:
    return cache_dir(data_dir) / f"validated-{key}.json"


def _validated_sets(rec: Path) -> list[list[str]]:
    import json

    if not rec.is_file():
        return []
    try:
        return list(json.loads(rec.read_text(encoding="utf-8")).get("validated", []))
    except (OSError, ValueError, AttributeError):
        return []


def is_validated(data_dir: str | os.PathLike, tables: Iterable[str], key: str | None = None) -> bool:
    """True when ``tables`` of ``data_dir``, as the files are now, passed validation together before."""
    want = set(tables)
    return any(want <= set(s) for s in _validated_sets(_record_file(data_dir, key or data_key(data_dir))))


def record_validated(data_dir: str | os.PathLike, tables: Iterable[str], key: str | None = None) -> Path:
    """Record that ``tables`` of ``data_dir`` passed validation together (atomic write; keeps the
    largest sets)."""
    import json

    key = key or data_key(data_dir)
    rec = _record_file(data_dir, key)
    sets = _validated_sets(rec)
    new = sorted(tables)
    if not any(set(new) <= set(s) for s in sets):
        sets = [s for s in sets if not set(s) <= set(new)] + [new]
    tmp = rec.with_name(f"{rec.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"data": str(Path(data_dir).resolve()), "key": key, "validated": sets}, indent=1),
                   encoding="utf-8")
    os.replace(tmp, rec)
    return rec


def ensure_validated(data_dir: str | os.PathLike) -> bool:
    """Validate every table present in the folder ``data_dir`` once (unless on record) and record it.

    Returns True when the data are (now) on record as valid; False when they fail or cannot be read
    (nothing is recorded: each notebook then reports the problem in its own words) or the source
    is a DuckDB file.
    """
    path = Path(data_dir)
    if _is_db(path) or not path.is_dir():
        return False
    present = available_tables(path)
    if is_validated(path, present):
        return True
    try:  # every table lazy: checked inside DuckDB, never all in pandas at once
        load_tables(path, tables=[], optional=present, validate=True, lazy=present)
    except (DataError, FileNotFoundError, DataContractError):
        return False
    return True


def _conforming_parquet(p: Path, table: str) -> str | None:
    """``str(p)`` when ``p`` is a Parquet file whose contract columns are stored with the contract
    types (so DuckDB reads what :func:`load_tables` would give), else None
    (:func:`rmanalytics.schema.parquet_conforms`)."""
    if p.suffix != ".parquet" or not parquet_conforms(p, table):
        return None
    return str(p.resolve())


def _check_parquet_rows(p: Path, table: str) -> None:
    """The no-rows DataError of :func:`_check_rows`, from the Parquet footer."""
    import pyarrow.parquet as pq

    if pq.ParquetFile(p).metadata.num_rows == 0:
        _check_rows(pd.DataFrame(), table, str(p))


def _converted_path(data_dir: Path, table: str, key: str) -> Path:
    return cache_dir(data_dir) / f"parquet-{key}" / f"{table}.parquet"


def _lazy_path(data_dir: Path, table: str, df: pd.DataFrame, src: Path, key: str) -> str:
    """The Parquet path handed out for a lazy table: the file itself, or a converted copy in the cache."""
    fast = _conforming_parquet(src, table)
    if fast is not None:
        return fast
    dst = _converted_path(data_dir, table, key)
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, dst)
    return str(dst)


# --------------------------------------------------------------------------------------------
# writers, fingerprints
# --------------------------------------------------------------------------------------------


def write_tables(
    tables: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike,
    format: str = "parquet",
) -> dict[str, Path]:
    """Write contract tables in a format :func:`load_tables` reads back to equal frames.

    Parameters
    ----------
    tables : table name -> DataFrame.
    out_dir : folder for ``parquet``/``csv`` (created); for ``duckdb`` a ``.duckdb``/``.db`` file
        path, or a folder in which ``tables.duckdb`` is written.
    format : "parquet", "csv" or "duckdb". CSV dates are written as ISO text (date only when all
        times are midnight), floats with full precision.

    Returns
    -------
    dict table name -> path written.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    _table_names(tables)
    out = Path(out_dir)
    written: dict[str, Path] = {}
    if format == "duckdb":
        import duckdb

        db = out if _is_db(out) else out / "tables.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(db)) as con:
            for name, df in tables.items():
                con.register("_src", df)
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _src')
                con.unregister("_src")
                written[name] = db
        return written
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        p = out / f"{name}.{format}"
        if format == "parquet":
            df.to_parquet(p, index=False)
        else:
            df.to_csv(p, index=False)
        written[name] = p
    return written


def read_segments(path: str | os.PathLike | None, columns: Iterable[str] = SEGMENT_COLUMNS) -> pd.DataFrame | None:
    """The segments of a 01 run (``restricted/tables/segments.parquet``): ``columns`` only, one row per customer.

    None when ``path`` is None (the caller's documented fallback applies). Raises
    :class:`~rmanalytics.errors.DataError` naming the file when it is missing, lacks a column or
    repeats a customer.
    """
    if path is None:
        return None
    cols = list(columns)
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: segments file not found (expected restricted/tables/segments.parquet of a 01 run)")
    seg = pd.read_parquet(p)
    missing = [c for c in cols if c not in seg.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {missing}; expected {cols} (restricted/tables/segments.parquet of a 01 run)")
    dup = seg["customer_id"].duplicated(keep=False)
    if dup.any():
        raise DataError(rule_message(f"{p}.customer_id", "rule 'one row per customer'", int(dup.sum()),
                                     row_examples(seg.loc[dup, "customer_id"])))
    return seg[cols].reset_index(drop=True)


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(data_dir: str | os.PathLike) -> dict[str, str]:
    """sha256 of each input file, for run manifests.

    Returns ``{file name: hex digest}`` for the contract table files of a folder (the files
    :func:`load_tables` would read), or ``{db file name: digest}`` for a DuckDB file.
    """
    path = Path(data_dir)
    if path.is_file():
        return {path.name: _sha256(path)}
    if not path.is_dir():
        raise FileNotFoundError(f"data_dir {str(path)!r} does not exist")
    files = list(_find_files(path).values())
    if (path / DATA_CONFIG).is_file():
        files.append(path / DATA_CONFIG)
    return {p.name: _sha256(p) for p in sorted(files)}


def validate_data_dir(
    data_dir: str | os.PathLike,
    observation_end: str | pd.Timestamp | None = None,
    tables: Iterable[str] | None = None,
    *,
    lazy: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Load and validate the contract tables of ``data_dir``; report data-quality findings.

    ``tables``: required tables (default: none required, every contract table present is loaded
    and checked, with the rules between the tables present).
    ``lazy``: hand every table over as a Parquet path (see :func:`load_tables`): the checks and the
    quality report then run inside DuckDB and no table is read into pandas (``rmanalytics
    validate`` uses it, so a bank of any size validates in bounded memory).

    Returns
    -------
    (tables, findings): the validated tables and :func:`rmanalytics.quality.quality_report`.

    Raises
    ------
    DataContractError / DataError / FileNotFoundError as :func:`load_tables`.
    """
    from rmanalytics.quality import quality_report

    required = list(tables) if tables is not None else []
    present = [t for t in available_tables(data_dir) if t not in required]
    loaded = load_tables(data_dir, tables=required, optional=present, validate=True,
                         lazy=[*required, *present] if lazy else ())
    return loaded, quality_report(loaded, observation_end=observation_end)


def known_customer_ids(data_dir: str | os.PathLike, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` are customer ids of the data in ``data_dir``.

    Looks in the ``customer_id`` column of every contract table that has one (customers,
    transactions, balances, assignments: an id quoted in a quality finding may be an orphan that
    exists in transactions only). DuckDB semi-joins the candidates against the files, so no id
    list is held in memory; used by the runner to mask ids quoted in text
    (:func:`rmanalytics.privacy.scrub_files`). Tables missing from the source are skipped.
    """
    import duckdb

    cands = pd.DataFrame({"token": sorted(set(candidates))}, dtype=object)
    if cands.empty:
        return set()
    path = Path(data_dir)
    names = [t for t, spec in TABLES.items() if "customer_id" in spec.column_names]
    with duckdb.connect() as con:
        if _is_db(path):
            con.execute(f"ATTACH '{str(path)}' AS src (READ_ONLY)")
            present = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src'").fetchall()}
            sources = [f'SELECT CAST(customer_id AS VARCHAR) AS id FROM src."{t}"' for t in names if t in present]
        else:
            files = _find_files(path) if path.is_dir() else {}
            sources = []
            for t in names:
                p = files.get(t)
                if p is None:
                    continue
                lit = str(p).replace("'", "''")
                reader = (f"read_parquet('{lit}')" if p.suffix == ".parquet"
                          else f"read_csv('{lit}', all_varchar = true, header = true)")
                sources.append(f"SELECT CAST(customer_id AS VARCHAR) AS id FROM {reader}")
        if not sources:
            return set()
        con.register("cands", cands)
        rows = con.execute(f"SELECT DISTINCT token FROM cands WHERE token IN "
                           f"(SELECT id FROM ({' UNION ALL '.join(sources)}) s)").fetchall()
    return {r[0] for r in rows}
