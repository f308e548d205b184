"""Load and write the contract tables (Parquet, CSV, DuckDB) and fingerprint input files.

A data source is either

- a folder holding ``<table>.parquet`` or ``<table>.csv`` per contract table (Parquet wins when
  both exist), or
- a DuckDB database file (``.duckdb`` / ``.db``) with tables named as in the contract.

Loaders convert types only where the conversion is lossless and explicit, following the contract
dtypes: CSV ids stay strings (leading zeros kept), date text is parsed to ``datetime64[ns]``
(a value that does not parse is an ``unparseable`` error listing examples, never NaT), numbers
are parsed to int64/float64, narrower numeric types and other datetime units are widened.
Columns that are not in the contract are passed through untouched. Rows are never dropped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rmanalytics.contract import TABLES, Column
from rmanalytics.schema import DataContractError, Failure, _examples, check_tables

__all__ = ["fingerprint", "load_tables", "validate_data_dir", "write_tables", "FORMATS"]

FORMATS = ("parquet", "csv", "duckdb")
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


def _parse_text(table: str, col: Column, s: pd.Series) -> tuple[pd.Series, Failure | None]:
    """Parse a column of strings (from CSV) to the contract dtype; failures are reported."""
    notna = s.notna()
    if col.dtype == "date":
        parsed = pd.to_datetime(s, errors="coerce", format="ISO8601")
        bad = notna & parsed.isna()
        if bad.any():
            # a second, lenient pass for other unambiguous layouts (e.g. "2024/01/31")
            again = pd.to_datetime(s[bad], errors="coerce", format="mixed")
            parsed = parsed.where(~bad, again)
            bad = notna & parsed.isna()
        if getattr(parsed.dtype, "tz", None) is not None:
            return s, Failure(table, col.name, "dtype", int(notna.sum()), _examples(s[notna]),
                              "timestamps carry a time zone; contract dates are tz-naive")
        failure = None
        if bad.any():
            failure = Failure(table, col.name, "unparseable", int(bad.sum()), _examples(pd.unique(s[bad])),
                              "text that is not a date")
        return parsed.astype("datetime64[ns]"), failure
    if col.dtype in ("int", "float"):
        num = pd.to_numeric(s, errors="coerce")
        bad = notna & num.isna()
        if bad.any():
            return s, Failure(table, col.name, "unparseable", int(bad.sum()), _examples(pd.unique(s[bad])),
                              f"text that is not a number ({col.dtype})")
        if col.dtype == "float":
            return num.astype("float64"), None
        vals = num.to_numpy(dtype=float, na_value=np.nan)
        nonint = notna.to_numpy() & (np.mod(vals, 1) != 0)
        if nonint.any():
            return s, Failure(table, col.name, "unparseable", int(nonint.sum()), _examples(pd.unique(s[nonint])),
                              "text that is not an integer")
        if notna.all():
            return num.astype("int64"), None
        return num.astype("Int64"), None  # nulls: the validator reports them if not allowed
    if col.dtype == "bool":
        low = s.str.strip().str.lower()
        bad = notna & ~low.isin(_TRUE | _FALSE)
        if bad.any():
            return s, Failure(table, col.name, "unparseable", int(bad.sum()), _examples(pd.unique(s[bad])),
                              "text that is not a boolean")
        if notna.all():
            return low.isin(_TRUE), None
        return low.map(lambda v: v in _TRUE if isinstance(v, str) else pd.NA).astype("boolean"), None
    # str: nulls as None, like Parquet/DuckDB give them
    return s.astype(object).where(notna, None), None


def _conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
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
                    parsed, f = _parse_text(table, col, s)
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


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    """Read a CSV with the contract dtypes: contract columns as text first, then parsed."""
    spec = TABLES[table]
    header = pd.read_csv(path, nrows=0).columns
    contract_cols = [c for c in header if c in spec.column_names]
    # keep_default_na=False: ids like "NA" or "null" stay strings; only empty fields are null
    df = pd.read_csv(path, dtype={c: str for c in contract_cols}, keep_default_na=False, na_values=[""])
    failures: list[Failure] = []
    for name in contract_cols:
        parsed, f = _parse_text(table, spec.column(name), df[name])
        if f:
            failures.append(f)
        df[name] = parsed
    if failures:
        raise DataContractError(failures)
    return df


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


def load_tables(
    data_dir: str | os.PathLike,
    tables: Iterable[str] | None = None,
    validate: bool = True,
) -> dict[str, pd.DataFrame]:
    """Read contract tables from a folder of Parquet/CSV files or a DuckDB file.

    Parameters
    ----------
    data_dir : folder with ``<table>.parquet`` or ``<table>.csv`` files, or a ``.duckdb``/``.db``
        database file with tables named as in the contract.
    tables : table names to load (default: all seven contract tables, all required).
    validate : run :func:`rmanalytics.schema.validate_tables` on the loaded tables (default True).

    Returns
    -------
    dict table name -> DataFrame (dates as datetime64[ns], ids as str, money as float64).

    Raises
    ------
    FileNotFoundError when the source or a requested table is missing (lists what was found);
    DataContractError when a value cannot be parsed or a contract rule fails.
    """
    path = Path(data_dir)
    names = _table_names(tables)
    out: dict[str, pd.DataFrame] = {}
    if _is_db(path):
        if not path.is_file():
            raise FileNotFoundError(f"DuckDB file {str(path)!r} does not exist")
        import duckdb

        present = _duckdb_tables(path)
        missing = [t for t in names if t not in present]
        if missing:
            raise FileNotFoundError(
                f"DuckDB file {str(path)!r} lacks table(s) {missing}; found tables: {sorted(present)}")
        with duckdb.connect(str(path), read_only=True) as con:
            for t in names:
                out[t] = _conform(con.execute(f'SELECT * FROM "{t}"').df(), t)
    else:
        if not path.is_dir():
            raise FileNotFoundError(f"data_dir {str(path)!r} is not a folder or a .duckdb/.db file")
        files = _find_files(path)
        missing = [t for t in names if t not in files]
        if missing:
            found = sorted(p.name for p in path.iterdir() if p.is_file())
            raise FileNotFoundError(
                f"data_dir {str(path)!r} lacks table file(s) "
                f"{[t + '.parquet|.csv' for t in missing]}; files found: {found}")
        for t in names:
            p = files[t]
            df = pd.read_parquet(p) if p.suffix == ".parquet" else _read_csv(p, t)
            out[t] = _conform(df, t)
    if validate:
        failures = check_tables(out)
        if failures:
            raise DataContractError(failures)
    return out


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
    return {p.name: _sha256(p) for p in sorted(_find_files(path).values())}


def validate_data_dir(
    data_dir: str | os.PathLike,
    observation_end: str | pd.Timestamp | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Load and validate every contract table of ``data_dir``; report data-quality findings.

    Returns
    -------
    (tables, findings): the validated tables and :func:`rmanalytics.quality.quality_report`.

    Raises
    ------
    DataContractError / FileNotFoundError as :func:`load_tables`.
    """
    from rmanalytics.quality import quality_report

    tables = load_tables(data_dir, validate=True)
    return tables, quality_report(tables, observation_end=observation_end)


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
