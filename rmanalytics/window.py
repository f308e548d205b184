"""The analysis window of a notebook run: one function resolves it for every notebook.

``observation_end`` is the last day observed (default: the day of the last transaction);
``window_start`` the first day of the window (default: the day of the first transaction, or the
first ``open_date`` when there are no transactions). Both are whole days (midnight timestamps).
pandas frames are read directly; Spark DataFrames, table names and paths with one MIN/MAX query on
``engine`` (one row collected).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rmanalytics.engine import run_sql
from rmanalytics.errors import DataError, ParameterError


@dataclass(frozen=True)
class AnalysisWindow:
    """First and last day of the analysis (midnight timestamps; both days included)."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def end_date(self) -> dt.date:
        """``end`` as a date (for functions and metrics that take dates)."""
        return self.end.date()

    def days_before_end(self, days: int) -> pd.Timestamp:
        """The day ``days`` days before ``end`` (e.g. the start of a hold-out of that length)."""
        return self.end - pd.Timedelta(days=int(days))

    def calibration_end(self, holdout_days: int, given: Any = None) -> dt.date:
        """Last day of a calibration period followed by a hold-out of ``holdout_days`` days up to
        ``end``: ``given`` when set, else ``end - holdout_days``."""
        if given is not None:
            return parse_day(given, "calibration_end").date()
        return self.days_before_end(holdout_days).date()

    def as_metrics(self) -> dict[str, str]:
        """``{"window_start": ISO date, "observation_end": ISO date}`` for run metrics."""
        return {"window_start": self.start.date().isoformat(), "observation_end": self.end.date().isoformat()}


def parse_day(value: Any, name: str) -> pd.Timestamp:
    """``value`` as a Timestamp; a :class:`ParameterError` naming the parameter ``name`` when it is
    not a date (the one date check of the parameters of every notebook and analysis function)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name}={value!r} is not a date (use YYYY-MM-DD)") from exc
    if pd.isna(ts):
        raise ParameterError(f"{name}={value!r} is not a date (use YYYY-MM-DD)")
    return ts


def transaction_date_range(tables: dict[str, Any], engine: str | None = None) -> tuple[pd.Timestamp | None,
                                                                                      pd.Timestamp | None]:
    """First and last transaction date (None, None when there are no transactions)."""
    if "transactions" not in tables:
        raise DataError("table 'transactions' is needed to resolve the analysis window")
    tx = tables["transactions"]
    if isinstance(tx, pd.DataFrame):
        if tx.empty:
            return None, None
        d = pd.to_datetime(tx["date"])
        return pd.Timestamp(d.min()), pd.Timestamp(d.max())
    r = run_sql("SELECT MIN(CAST(date AS DATE)) AS lo, MAX(CAST(date AS DATE)) AS hi FROM transactions",
                {"transactions": tx}, engine=engine).iloc[0]
    return (None, None) if pd.isna(r["lo"]) else (pd.Timestamp(r["lo"]), pd.Timestamp(r["hi"]))


def analysis_window(tables: dict[str, Any], observation_end: Any = None, window_start: Any = None, *,
                    engine: str | None = None) -> AnalysisWindow:
    """Resolve a notebook's analysis window from its parameters and the data (see the module docstring).

    Raises :class:`~rmanalytics.errors.ParameterError` for an unparseable date or a start that is
    not before the end, :class:`~rmanalytics.errors.DataError` when a default is needed but the
    data hold no dates.
    """
    if observation_end is not None and window_start is not None:
        start, end = parse_day(window_start, "window_start"), parse_day(observation_end, "observation_end")
    else:
        lo, hi = transaction_date_range(tables, engine)
        if observation_end is not None:
            end = parse_day(observation_end, "observation_end")
        elif hi is None:
            raise DataError("transactions: no rows, so observation_end has no default; set observation_end")
        else:
            end = hi.normalize()
        if window_start is not None:
            start = parse_day(window_start, "window_start")
        elif lo is not None:
            start = lo.normalize()
        else:
            start = _first_open_date(tables, engine)
    if start >= end:
        raise ParameterError(f"window_start {start.date()} must be before observation_end {end.date()}")
    return AnalysisWindow(start, end)


def _first_open_date(tables: dict[str, Any], engine: str) -> pd.Timestamp:
    cust = tables.get("customers")
    if cust is None:
        raise DataError("no transactions and no customers: window_start has no default; set window_start")
    if isinstance(cust, pd.DataFrame):
        lo = pd.to_datetime(cust["open_date"]).min()
    else:
        lo = run_sql("SELECT MIN(CAST(open_date AS DATE)) AS lo FROM customers", {"customers": cust},
                     engine=engine).iloc[0]["lo"]
    if pd.isna(lo):
        raise DataError("no transactions and no open dates: window_start has no default; set window_start")
    return pd.Timestamp(lo).normalize()
