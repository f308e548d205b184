"""Survival frames for churn: one row per customer, a start/stop long frame, a time grid.

Time scale and leakage rules (read these before modelling)
---------------------------------------------------------
- **Time origin** is the customer's ``open_date``: ``duration`` is tenure in days from opening to
  churn (``event = 1``) or to censoring (``event = 0``). The baseline hazard therefore describes
  how churn risk changes with tenure.
- **Observation window** ``[window_start, observation_end]``. Only churn events inside the window
  are seen; customers who left before ``window_start`` are not in the data (banks purge them, the
  synthetic bank does too), so customers opened before the window are **left truncated**.
- **Landmark (entry).** Every customer is followed from its *landmark*
  ``max(open_date, window_start) + lookback_days``. Behavioural covariates (transactions, AUM,
  products, primary RM) are computed only from data in ``[max(open_date, window_start), landmark)``
  — strictly before the customer enters the risk set. ``entry`` = days from ``open_date`` to the
  landmark; the model conditions on survival up to ``entry`` (left truncation), so no covariate
  uses data from the period over which churn is counted. Static attributes (customer_type,
  risk_level, scenario, industry, branch, acquisition_channel) are taken as recorded.
- Customers whose churn or censoring falls before their landmark, or who open after
  ``observation_end``, cannot enter the risk set: they are excluded and **reported** in
  ``frame.attrs["excluded"]`` (reason -> count), never dropped silently.
- Segments or tiers computed from the whole history (e.g. a 01 run at ``observation_end``) look
  into the future of the churn window: use them to *describe* retention (Kaplan-Meier), not as
  model covariates.

Churn definitions
-----------------
- ``"closure"``: churn at ``close_date`` (the last account closed), censored at ``observation_end``.
- ``"inactivity"``: churn at the date of the last activity (last transaction, or ``open_date``
  when none), observed only when at least ``inactivity_days`` without activity follow it before
  ``observation_end``. Everyone else is censored at ``observation_end - inactivity_days``, the
  last date at which churn status can be resolved (an administrative censoring time that does
  not depend on the outcome).

Durations are in days (floats). A customer that leaves on the day of its landmark has
``duration = entry``: such rows are excluded (reported) because lifelines needs ``stop > start``.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.churn.sample import is_sample
from rmanalytics.engine import columns_of, run_sql, share_strings
from rmanalytics.errors import DataError, ParameterError, rule_message
from rmanalytics.keys import map_keys, sort_rows
from rmanalytics.window import analysis_window

GRID_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}
DEFINITIONS = ("closure", "inactivity")


class ChurnDataError(DataError):
    """Bad input data for a churn frame (names table, column, rule, rows, examples)."""


_MALLOC_TRIM = None  # glibc's malloc_trim, False where there is none (looked up once)


def release_free_memory() -> None:
    """Give the C heap's free pages back to the operating system (glibc ``malloc_trim(0)``; nothing
    elsewhere). Building a long frame allocates and frees many chunk-sized arrays (below glibc's
    mmap threshold, up to 32 MB): their memory stays in the process's heap, counted in its RSS, until
    trimmed. Called after the long-frame steps (behaviour covariates, the month split, a Cox fit);
    takes milliseconds and changes no value."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


def _bad_rows(table: str, column: str, rule: str, mask: pd.Series, df: pd.DataFrame, key: str = "customer_id"):
    n = int(mask.sum())
    if n:
        examples = df.loc[mask, key].head(5).tolist() if key in df.columns else df.index[mask][:5].tolist()
        raise ChurnDataError(rule_message(f"{table}.{column}", f"rule '{rule}'", n, examples))


def _last_snapshot_sql(columns: str, before: str) -> str:
    """Subquery: each spine customer's last balance snapshot satisfying ``before`` (a condition on
    ``b.snapshot_date``, may use ``s.`` spine columns), with ``columns`` (``b.``-qualified, aliases
    allowed). Used by the landmark covariates and by the state today."""
    names = ", ".join(c.split(" AS ")[-1].split(".")[-1] for c in columns.split(", "))
    return f"""SELECT customer_id, {names} FROM (
        SELECT b.customer_id, {columns},
               ROW_NUMBER() OVER (PARTITION BY b.customer_id ORDER BY b.snapshot_date DESC) AS rn
        FROM balances b JOIN spine s ON b.customer_id = s.customer_id
        WHERE {before}
    ) x WHERE rn = 1"""


def covariates_sql(window_start: str, lookback_days: int, *, has_fee: bool = True,
                   has_acquisition_channel: bool = True) -> str:
    """SQL (DuckDB dialect, transpilable to Spark) for the per-customer covariates at the landmark.

    Inputs: ``customers``, ``transactions``, ``balances``, ``assignments``, ``rms``.
    For each customer: ``cov_start`` = max(open_date, window_start), ``landmark`` =
    cov_start + lookback_days; from transactions in [cov_start, landmark): ``n_tx`` (count),
    ``tx_amount`` (sum of amounts, currency), ``tx_fee`` (fees, currency), ``n_families``
    (distinct product families); from the last balance snapshot before the landmark: ``aum``
    (currency), ``n_products``; the primary RM (largest share, ties by rm_id) of the assignment
    covering the day before the landmark: ``rm_id``, ``rm_level``; and ``rm_exit_date`` — the first
    exit date of an RM with share >= 0.5 that left the bank while serving the customer (the
    switch date of the time-varying ``rm_left`` covariate).
    """
    ws = pd.Timestamp(window_start).date().isoformat()
    lb = int(lookback_days)
    fee = "COALESCE(SUM(t.fee), 0.0)" if has_fee else "0.0"
    acq = "c.acquisition_channel" if has_acquisition_channel else "CAST(NULL AS VARCHAR)"
    return f"""
WITH spine AS (
    SELECT c.customer_id, CAST(c.open_date AS DATE) AS open_date, CAST(c.close_date AS DATE) AS close_date,
           c.customer_type, c.risk_level, c.industry, c.scenario, c.branch_id,
           {acq} AS acquisition_channel,
           GREATEST(CAST(c.open_date AS DATE), DATE '{ws}') AS cov_start,
           GREATEST(CAST(c.open_date AS DATE), DATE '{ws}') + INTERVAL {lb} DAY AS landmark
    FROM customers c
),
tx AS (
    SELECT s.customer_id, COUNT(t.customer_id) AS n_tx, COALESCE(SUM(t.amount), 0.0) AS tx_amount,
           {fee} AS tx_fee, COUNT(DISTINCT t.product_family) AS n_families
    FROM spine s LEFT JOIN transactions t
      ON t.customer_id = s.customer_id
     AND CAST(t.date AS DATE) >= s.cov_start AND CAST(t.date AS DATE) < s.landmark
    GROUP BY s.customer_id
),
bal AS (
    {_last_snapshot_sql("b.aum, b.n_products", "CAST(b.snapshot_date AS DATE) < s.landmark")}
),
prm AS (
    SELECT customer_id, rm_id FROM (
        SELECT a.customer_id, a.rm_id,
               ROW_NUMBER() OVER (PARTITION BY a.customer_id ORDER BY a.share DESC, a.rm_id) AS rn
        FROM assignments a JOIN spine s ON a.customer_id = s.customer_id
        WHERE CAST(a.start_date AS DATE) < s.landmark
          AND (a.end_date IS NULL OR CAST(a.end_date AS DATE) >= s.landmark)
    ) x WHERE rn = 1
),
rmx AS (
    SELECT a.customer_id, MIN(CAST(r.exit_date AS DATE)) AS rm_exit_date
    FROM assignments a JOIN rms r ON a.rm_id = r.rm_id
    WHERE r.exit_date IS NOT NULL AND a.share >= 0.5
      AND CAST(r.exit_date AS DATE) >= CAST(a.start_date AS DATE)
      AND (a.end_date IS NULL OR CAST(a.end_date AS DATE) >= CAST(r.exit_date AS DATE))
    GROUP BY a.customer_id
)
SELECT s.*, tx.n_tx, tx.tx_amount, tx.tx_fee, tx.n_families,
       COALESCE(bal.aum, 0.0) AS aum, COALESCE(bal.n_products, 0) AS n_products,
       prm.rm_id, r.level AS rm_level, r.outlet AS rm_outlet, r.tier1_branch, rmx.rm_exit_date
FROM spine s
LEFT JOIN tx ON tx.customer_id = s.customer_id
LEFT JOIN bal ON bal.customer_id = s.customer_id
LEFT JOIN prm ON prm.customer_id = s.customer_id
LEFT JOIN rms r ON r.rm_id = prm.rm_id
LEFT JOIN rmx ON rmx.customer_id = s.customer_id
ORDER BY s.customer_id
"""


def last_activity_sql(observation_end: str) -> str:
    """SQL for each customer's last transaction date on or before ``observation_end``.

    Input: ``transactions``. Output columns ``customer_id``, ``last_activity`` (date).
    """
    oe = pd.Timestamp(observation_end).date().isoformat()
    return f"""
SELECT customer_id, MAX(CAST(date AS DATE)) AS last_activity
FROM transactions
WHERE CAST(date AS DATE) <= DATE '{oe}'
GROUP BY customer_id
"""


def to_grid(days: pd.Series | np.ndarray, time_grid: str = "day", *, how: str = "ceil") -> np.ndarray:
    """Round durations in days to a grid of ``time_grid`` units, returned again in days.

    ``how="ceil"`` for event/censoring times (an event in month k is counted at the end of month
    k), ``"floor"`` for entry and switch times (at risk from the start of the grid step).
    A month is 365.25/12 days. Coarser grids create ties, which makes Cox fits much faster.
    """
    if time_grid not in GRID_DAYS:
        raise ParameterError(f"time_grid must be one of {tuple(GRID_DAYS)}, got {time_grid!r}")
    step = GRID_DAYS[time_grid]
    x = np.asarray(days, dtype=float)
    if time_grid == "day":
        return np.ceil(x) if how == "ceil" else np.floor(x)
    k = np.ceil(x / step - 1e-9) if how == "ceil" else np.floor(x / step + 1e-9)
    return k * step


def _customers_frame(tables: dict[str, Any], engine: str) -> pd.DataFrame:
    """``customer_id, open_date, close_date`` of the customers table as pandas. For Spark inputs
    these three columns are collected: one row per customer, the size of the result anyway."""
    cust = tables["customers"]
    if isinstance(cust, pd.DataFrame):
        return cust
    return run_sql("SELECT customer_id, open_date, close_date FROM customers", {"customers": cust}, engine=engine)


def survival_frame(
    tables: dict[str, pd.DataFrame],
    *,
    observation_end: str | pd.Timestamp | None = None,
    window_start: str | pd.Timestamp | None = None,
    definition: str = "closure",
    inactivity_days: int = 180,
    lookback_days: int = 90,
    time_grid: str = "day",
    engine: str | None = None,
) -> pd.DataFrame:
    """One row per customer for survival analysis of churn (see the module docstring for the rules).

    Parameters
    ----------
    tables : contract tables (needs customers, transactions, balances, assignments, rms): pandas
        frames or Parquet/CSV paths; with ``engine="spark"`` also Spark DataFrames or catalog table
        names. Transactions and balances are then only aggregated in Spark; the window defaults
        come from one MIN/MAX query and only per-customer results are collected.
    observation_end : last day observed; default the last transaction date.
    window_start : first day of the observation window; default the first transaction date.
    definition : "closure" or "inactivity".
    inactivity_days : days without activity that make a customer churned (definition "inactivity").
    lookback_days : days after max(open_date, window_start) used to measure behaviour; the customer
        enters the risk set at the end of them (landmark).
    time_grid : "day", "week" or "month": durations rounded up, entries down, to the grid (days).
    engine : engine for the covariate SQL.

    Returns
    -------
    DataFrame with ``customer_id``, ``duration`` (days from open to churn/censoring), ``event``
    (1 churned, 0 censored), ``entry`` (days from open to the landmark), ``end_date``, the static
    attributes, the behaviour covariates of :func:`covariates_sql`, ``log_aum`` = log1p(aum),
    ``log_tx_amount`` = sign * log1p(|amount|), and (null industry, scenario, acquisition_channel and
    rm_level become the level ``"none"`` so they can be used as categorical covariates), ``rm_exit_days`` (days from open to the exit of
    the customer's RM, NaN if none before the end); with the optional ``interactions`` /
    ``feedback`` tables also the contact and complaint covariates of
    :func:`add_relationship_covariates` (measured before the landmark). ``attrs``: ``excluded`` (reason -> count),
    ``window_start``, ``observation_end`` (ISO dates), ``definition``, ``time_grid``.
    """
    if definition not in DEFINITIONS:
        raise ParameterError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    if inactivity_days <= 0 or lookback_days < 0:
        raise ParameterError("inactivity_days must be > 0 and lookback_days >= 0")
    for name in ("customers", "transactions", "balances", "assignments", "rms"):
        if name not in tables:
            raise ChurnDataError(f"table {name!r} is required for the survival frame")
    cust = _customers_frame(tables, engine)
    _bad_rows("customers", "close_date", "close_date must not be before open_date",
              cust["close_date"].notna() & (cust["close_date"] < cust["open_date"]), cust)
    window = analysis_window(tables, observation_end, window_start, engine=engine)
    ws, oe = window.start, window.end

    tx = tables["transactions"]
    sql = covariates_sql(ws, lookback_days, has_fee="fee" in columns_of(tx, engine),
                         has_acquisition_channel="acquisition_channel" in columns_of(tables["customers"], engine))
    inputs = {k: tables[k] for k in ("customers", "transactions", "balances", "assignments", "rms")}
    df = run_sql(sql, inputs, engine=engine)
    for c in ("open_date", "close_date", "cov_start", "landmark", "rm_exit_date"):
        df[c] = pd.to_datetime(df[c])

    if definition == "closure":
        closed = df["close_date"].notna() & (df["close_date"] <= oe)
        end = df["close_date"].where(closed, oe)
        event = closed.astype(int)
    else:
        last = run_sql(last_activity_sql(oe), {"transactions": tx}, engine=engine)
        last["last_activity"] = pd.to_datetime(last["last_activity"])
        df = df.merge(last, on="customer_id", how="left")
        la = df["last_activity"].fillna(df["open_date"])
        la = la.where(la >= df["open_date"], df["open_date"])
        if "close_date" in df:  # activity after closure is not possible; closure caps it
            la = la.where(df["close_date"].isna() | (la <= df["close_date"]), df["close_date"])
        resolve = oe - pd.Timedelta(days=int(inactivity_days))
        churned = la <= resolve
        end = la.where(churned, resolve)
        event = churned.astype(int)

    df["end_date"] = end
    df["event"] = event.astype(int)
    open_ = df["open_date"]
    df["entry"] = (df["landmark"] - open_).dt.days.astype(float)
    df["duration"] = (df["end_date"] - open_).dt.days.astype(float)
    df["rm_exit_days"] = (df["rm_exit_date"] - open_).dt.days.astype(float)
    df.loc[df["rm_exit_date"] > df["end_date"], "rm_exit_days"] = np.nan

    excluded: dict[str, int] = {}
    opened_late = open_ > oe
    excluded["opened after observation_end"] = int(opened_late.sum())
    ended_early = ~opened_late & (df["duration"] <= df["entry"])
    excluded["churned or censored before landmark (open/window start + lookback)"] = int(
        (ended_early & (df["event"] == 1)).sum())
    excluded["censored before landmark"] = int((ended_early & (df["event"] == 0)).sum())
    keep = ~(opened_late | ended_early)
    df = df.loc[keep].copy()

    if time_grid != "day":
        for c, v in _grid_columns(df, time_grid).items():
            df[c] = v

    for c in ("industry", "scenario", "acquisition_channel", "rm_level"):
        df[c] = df[c].astype("object").where(df[c].notna(), "none")
    df["log_aum"] = np.log1p(df["aum"].clip(lower=0))
    df["log_tx_amount"] = np.sign(df["tx_amount"]) * np.log1p(df["tx_amount"].abs())
    df["risk_level"] = df["risk_level"].astype(int)
    df["n_tx"] = df["n_tx"].astype(int)
    df["n_products"] = df["n_products"].astype(int)
    if any(tables.get(t) is not None for t in ("interactions", "feedback")):
        df = add_relationship_covariates(df, tables, engine=engine)  # optional: contacts / complaints before the landmark
    df = _share_strings(df.reset_index(drop=True))
    df.attrs.update(excluded={k: v for k, v in excluded.items() if v}, window_start=ws.date().isoformat(),
                    observation_end=oe.date().isoformat(),
                    definition=definition, time_grid=time_grid, lookback_days=int(lookback_days),
                    inactivity_days=int(inactivity_days))
    return df


def _share_strings(df: pd.DataFrame) -> pd.DataFrame:
    """String columns with repeated values hold one Python object per distinct value (in place;
    :func:`rmanalytics.engine.share_strings` per column).

    Results of DuckDB share their strings already (:func:`rmanalytics.engine.fetch_frame`); those of
    Spark and the columns added in pandas may not: nine such columns of a million customers (branch,
    RM, level, ...) held 0.5 GB for a few hundred distinct values. Only columns whose non-missing
    values are all str are touched; values, missing values and dtypes stay as they were."""
    for c in df.columns:
        a = df[c].to_numpy()
        if a.dtype == object:
            shared = share_strings(a)
            if shared is not a:
                df[c] = shared
    return df


def _grid_columns(df: pd.DataFrame, time_grid: str) -> dict[str, np.ndarray]:
    """The day-valued time columns of a survival frame on ``time_grid``: durations rounded up,
    entries and switch times down (:func:`to_grid`)."""
    return {"duration": to_grid(df["duration"], time_grid, how="ceil"),
            "entry": to_grid(df["entry"], time_grid, how="floor"),
            "rm_exit_days": to_grid(df["rm_exit_days"], time_grid, how="floor")}


def regrid(frame: pd.DataFrame, time_grid: str) -> pd.DataFrame:
    """The survival frame of :func:`survival_frame` with ``time_grid``, from its day-grid frame.

    ``survival_frame(..., time_grid=g)`` equals ``regrid(survival_frame(..., time_grid="day"), g)``
    exactly (the grid is applied last, to ``duration``, ``entry`` and ``rm_exit_days`` only; the
    customers kept are decided on days), so one engine pass serves both grids, e.g. a model on
    weeks and the hold-out of :func:`~rmanalytics.churn.audit.holdout_scores` on days. The other
    columns are shared with ``frame``, not copied (``frame`` is left unchanged); ``attrs`` are
    copied with ``time_grid`` set.
    """
    if frame.attrs.get("time_grid", "day") != "day":
        raise ParameterError(f"regrid needs a day-grid survival frame, got time_grid={frame.attrs['time_grid']!r}")
    cols = _grid_columns(frame, time_grid) if time_grid != "day" else {}  # also checks the grid name
    out = frame.copy(deep=False)
    for c, v in cols.items():
        out[c] = v  # replaces the column in out only
    out.attrs = {**frame.attrs, "time_grid": time_grid}
    return out


def time_varying_frame(
    frame: pd.DataFrame,
    *,
    switch_col: str = "rm_exit_days",
    covariate: str = "rm_left",
    id_col: str = "customer_id",
    duration_col: str = "duration",
    event_col: str = "event",
    entry_col: str = "entry",
    monthly: pd.DataFrame | None = None,
    columns: list[str] | tuple[str, ...] | None = None,
    open_col: str = "open_date",
) -> pd.DataFrame:
    """Long (start/stop) frame with a 0/1 covariate that switches on at ``switch_col`` days.

    With ``monthly`` (the output of :func:`behaviour_covariates`) the rows are further split at
    calendar month starts and carry that month's behaviour covariates (:func:`split_monthly`).

    Each customer gets one row ``[entry, duration)`` when the switch does not happen inside
    its follow-up, or two rows ``[entry, s)`` with ``covariate = 0`` and ``[s, duration)`` with
    ``covariate = 1``; the event sits on the last row only. A switch at or before entry gives one
    row with ``covariate = 1``. Columns ``start`` and ``stop`` (days since open) are added. This is
    the input of lifelines' CoxTimeVaryingFitter (and of :class:`ChurnModel` with
    ``entry_col="start", duration_col="stop"``).

    ``columns``: the columns of ``frame`` to copy onto every row (besides ``id_col`` and
    ``event_col``), e.g. the model's static covariates; None copies all of them. With monthly
    covariates there is one row per customer and month of follow-up (tens of millions for a
    million customers), so a model fit should copy only what it uses: every copied column costs
    8 bytes (or the width of its dtype) per customer-month; with ``columns`` the integer columns
    are also stored in the smallest integer type and the string columns as categoricals (same
    values; the fit and predictions are unchanged). Columns come out in the order
    ``id_col``, ``columns``, ``event_col``, ``start``, ``stop``, ``covariate``, monthly covariates
    (with ``columns=None``: the frame's order).
    """
    if columns is None:
        f = frame.copy()
        drop_after: list[str] = []
    else:
        made = {covariate, *([] if monthly is None else monthly.columns)}  # produced here, not copied
        keep = list(dict.fromkeys([id_col, *(c for c in columns if c not in made), event_col]))
        internal = [c for c in (entry_col, duration_col, switch_col) + ((open_col,) if monthly is not None else ())
                    if c not in keep]
        f = frame[keep + internal].copy()
        drop_after = internal
    s = f[switch_col]
    start, stop = f[entry_col].astype(float), f[duration_col].astype(float)
    before = s.notna() & (s <= start)
    inside = s.notna() & (s > start) & (s < stop)
    base = f.assign(start=start, stop=stop)
    base[covariate] = before.astype(int)
    first = base[inside].copy()
    first["stop"] = s[inside]
    first[covariate] = 0
    first[event_col] = 0
    base.loc[inside, "start"] = s[inside]
    base.loc[inside, covariate] = 1
    out = pd.concat([first, base], ignore_index=False)
    out = sort_rows(out, [id_col, "start"]).reset_index(drop=True)  # stable: first piece first
    if columns is not None:  # per customer, before the split: the customer-month copies are small already
        out = _compact(out, exclude=[id_col, "start", "stop", *drop_after])
    if monthly is not None:
        out = split_monthly(out, monthly, id_col=id_col, event_col=event_col, open_col=open_col, exclude=drop_after,
                            event_dtype=out[event_col].dtype if columns is not None  # compacted already
                            and pd.api.types.is_integer_dtype(out[event_col].dtype) else None)
        if columns is not None and len(out):
            ev = pd.to_numeric(out[event_col], downcast="integer")
            if ev.dtype != out[event_col].dtype:  # (assigning a column copies the frame's other columns)
                out[event_col] = ev
    elif drop_after:
        out = out.drop(columns=drop_after)
    out.attrs = dict(frame.attrs)  # the survival frame's window, definition, grid, lookback
    if monthly is not None:
        release_free_memory()  # the month split's chunk temporaries
    return out


def _compact(df: pd.DataFrame, exclude: list[str]) -> pd.DataFrame:
    """Integer columns in the smallest integer type holding their values, string columns as
    categoricals (same values; a long frame has one row per customer-month). Floats stay float64."""
    for c in df.columns:
        if c in exclude:
            continue
        s = df[c]
        if pd.api.types.is_integer_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
            df[c] = pd.to_numeric(s, downcast="integer") if len(s) else s
        elif s.dtype == object:
            df[c] = s.astype("category")
    return df


BEHAVIOUR_COVARIATES = ("months_since_purchase", "activity_change", "aum_trend")


def behaviour_cells(spine: pd.DataFrame, transactions: Any, balances: Any, *, silence_cap_days: int = 180,
                    recent_days: int = 90, baseline_days: int = 365, aum_trend_months: int = 3,
                    engine: str = "duckdb") -> pd.DataFrame:
    """Monthly behaviour counts of the customers of ``spine``, one row per (customer, month) cell.

    ``spine``: one row per customer: ``c`` an integer key, customer_id, open_date, ``first_day``
    (the earliest day whose data can be seen for the customer: max(open_date, history_start)) and
    ``m_lo``/``m_hi`` (first and last month number, months since 1970-01, of its follow-up). The
    cells are every customer and month ``m_lo <= mi <= m_hi``, evaluated on day ``e =
    max(month_start, open_date)``. Returns ``c``, ``mi``, ``silent_days`` (days from the last
    purchase in ``[e - max(silence_cap_days, recent_days + baseline_days), e)``, or ``first_day``
    when there is none, to ``e``), ``n_recent`` / ``n_base`` (purchases in ``[e - recent_days, e)``
    / in ``[b0, e - recent_days)``, ``b0 = max(e - recent_days - baseline_days, first_day)``),
    ``span_days`` (days from ``b0`` to ``e``) and ``aum_trend`` (log change of ``max(aum, 1)`` from
    the earliest to the latest snapshot in ``[month_start - aum_trend_months months - 1 day,
    month_start)``, 0 with fewer than two). Purchases are transactions with amount > 0.

    The engine returns the customers' purchase days and their snapshots' dates and ``ln(max(aum,
    1))`` (integer keys and numbers only); the counts per cell are differences of positions in the
    sorted (customer, day) keys (:func:`numpy.searchsorted`). A SQL join of every cell with every
    purchase and snapshot near it (the earlier implementation, kept as the reference in the tests)
    made about 10^8 pairs at 1M customers; here the work is O((cells + rows) log rows). Written
    with numpy because no SQL engine the package supports has a portable as-of join. Snapshot dates
    are unique per customer (data contract).
    """
    cap, rd, bd = int(silence_cap_days), int(recent_days), int(baseline_days)
    lo = max(cap, rd + bd)
    cols = ["c", "mi", "silent_days", "n_recent", "n_base", "span_days", "aum_trend"]
    if not len(spine):
        return pd.DataFrame({c: np.zeros(0, np.int64) for c in cols})
    # only the days any cell can look at: purchases from the earliest look-back start to the latest
    # evaluation day, snapshots from the earliest AUM-trend start to the last month start
    m0, m1 = int(spine["m_lo"].min()), int(spine["m_hi"].max())
    month_day = lambda m: np.datetime64(int(m), "M").astype("datetime64[D]")  # noqa: E731
    last_e = max(month_day(m1), pd.Timestamp(spine["open_date"].max()).to_datetime64().astype("datetime64[D]"))
    p_from, p_to = month_day(m0) - lo - 1, last_e
    b_from, b_to = month_day(m0 - int(aum_trend_months)) - 1, month_day(m1)
    inputs = {"spine": spine[["c", "customer_id"]], "transactions": transactions}
    p = run_sql("SELECT s.c, CAST(t.date AS DATE) AS d FROM transactions t JOIN spine s "
                "ON t.customer_id = s.customer_id WHERE t.amount > 0 "
                f"AND CAST(t.date AS DATE) >= CAST('{p_from}' AS DATE) AND CAST(t.date AS DATE) <= CAST('{p_to}' AS DATE)",
                inputs, engine=engine, normalize=False)
    inputs["balances"] = balances
    b = run_sql("SELECT s.c, CAST(x.snapshot_date AS DATE) AS sd, ln(GREATEST(x.aum, 1.0)) AS la FROM balances x "
                "JOIN spine s ON x.customer_id = s.customer_id "
                f"WHERE CAST(x.snapshot_date AS DATE) >= CAST('{b_from}' AS DATE) "
                f"AND CAST(x.snapshot_date AS DATE) <= CAST('{b_to}' AS DATE)", inputs, engine=engine, normalize=False)

    def days(values) -> np.ndarray:
        return pd.to_datetime(np.asarray(values)).to_numpy().astype("datetime64[D]").astype(np.int64)

    # the cells: every customer of the spine and month of its follow-up
    c_of = spine["c"].to_numpy(np.int64)
    m_lo, m_hi = spine["m_lo"].to_numpy(np.int64), spine["m_hi"].to_numpy(np.int64)
    n_m = m_hi - m_lo + 1
    rep = np.repeat(np.arange(len(spine)), n_m)
    mi = m_lo[rep] + (np.arange(int(n_m.sum())) - np.repeat(np.cumsum(n_m) - n_m, n_m))
    cc = c_of[rep]
    month_start = mi.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    e = np.maximum(month_start, days(spine["open_date"])[rep])
    first_day = days(spine["first_day"])[rep]
    del rep
    b0 = np.maximum(e - (rd + bd), first_day)

    pc, pd_ = p["c"].to_numpy(np.int64), days(p["d"])
    bc, bd_, la = b["c"].to_numpy(np.int64), days(b["sd"]), b["la"].to_numpy(float)
    d_min = min([int(x.min()) for x in (pd_, bd_) if len(x)] + [int(b0.min()) - lo - 1,
                                                                 int(month_start.min()) - 400])
    d_max = max([int(x.max()) for x in (pd_, bd_) if len(x)] + [int(e.max())]) + 1
    width = d_max - d_min + 2  # key = customer * width + (day - d_min), days clipped into [0, width)

    def keys(c: np.ndarray, d: np.ndarray) -> np.ndarray:
        return c * width + np.clip(d - d_min, 0, width - 1)

    kp = keys(pc, pd_)
    order = np.argsort(kp, kind="stable")
    kp, pday = kp[order], pd_[order]

    def before(q: np.ndarray) -> np.ndarray:  # position of the first purchase of the cell's customer on or after q
        return np.searchsorted(kp, keys(cc, q), side="left")

    at_e = before(e)
    at_r = before(e - rd)
    n_recent = at_e - at_r
    n_base = np.maximum(at_r - before(b0), 0)
    first_of_c = np.searchsorted(kp, cc * width, side="left")
    last = at_e - 1
    has_last = last >= first_of_c
    last_day = np.where(has_last, pday[np.maximum(last, 0)] if len(pday) else 0, first_day)  # (no purchase fetched)
    has_last &= last_day >= e - lo  # only purchases within the look-back window count
    seen = np.where(has_last, np.maximum(last_day, first_day), first_day)
    silent = e - seen

    kb = keys(bc, bd_)
    order = np.argsort(kb, kind="stable")
    kb, la = kb[order], la[order]
    lower = (mi - int(aum_trend_months)).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1
    s0 = np.searchsorted(kb, keys(cc, lower), side="left")
    s1 = np.searchsorted(kb, keys(cc, month_start), side="left")
    two = (s1 - s0) >= 2
    trend = np.zeros(len(cc))
    trend[two] = la[s1[two] - 1] - la[s0[two]]
    return pd.DataFrame({"c": cc, "mi": mi, "silent_days": silent.astype(np.int32),
                         "n_recent": n_recent.astype(np.int32), "n_base": n_base.astype(np.int32),
                         "span_days": (e - b0).astype(np.int32), "aum_trend": trend}, copy=False)


def follow_up_months(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """First and last month number (months since 1970-01) of each row's follow-up ``[entry,
    duration)`` (days since ``open_date``): the months :func:`behaviour_covariates` gives a row."""
    open_ = pd.to_datetime(frame["open_date"])
    first_m = (open_ + pd.to_timedelta(frame["entry"], unit="D")).dt.to_period("M")
    last_m = (open_ + pd.to_timedelta(frame["duration"], unit="D") - pd.Timedelta(days=1)).dt.to_period("M")
    m_lo = first_m.array.asi8.astype(np.int64)
    return m_lo, np.maximum(last_m.array.asi8.astype(np.int64), m_lo)


def monthly_positions(monthly: pd.DataFrame, customer_ids, months: np.ndarray, *,
                      allow_missing: bool = False) -> np.ndarray | None:
    """Row positions in ``monthly`` (an output of :func:`behaviour_covariates`: each customer's
    months contiguous and in order) of the cells (``customer_ids[i]``, ``months[i]``) (month numbers
    since 1970-01); None when one of them is not in ``monthly`` (with ``allow_missing``: -1 for
    those cells), or when ``monthly`` is not laid out so. Lets a caller reuse behaviour covariates
    computed for a wider follow-up (e.g. the week grid's, which covers the day grid's) only when
    they hold every cell it needs; ``allow_missing`` looks up cells of several uses in one pass
    over ``monthly``."""
    ids = monthly["customer_id"].to_numpy()
    m = pd.to_datetime(monthly["month_start"]).to_numpy().astype("datetime64[M]").astype(np.int64)
    n = len(ids)
    if n == 0:
        return None if len(months) else np.zeros(0, np.int64)
    brk = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], brk])
    step = np.diff(m)
    step[brk - 1] = 1  # across customers: no condition
    run_ids = pd.Index(ids[starts])
    if not run_ids.is_unique or not (step == 1).all():  # not one contiguous run of months per customer
        return None
    k = run_ids.get_indexer(pd.Index(customer_ids))
    miss = k < 0
    if miss.any():
        if not allow_missing:
            return None
        k = np.where(miss, 0, k)
    lengths = np.diff(np.concatenate([starts, [n]]))
    off = np.asarray(months, np.int64) - m[starts][k]
    miss |= (off < 0) | (off >= lengths[k])
    if miss.any() and not allow_missing:
        return None
    out = starts[k] + off
    out[miss] = -1
    return out


#: Customer-months per batch of :func:`behaviour_covariates` (bounds the engine's and pandas' memory:
#: at 200k customers batches of 100k customers, about 2M customer-months, peaked 0.8 GB above the
#: inputs, 50k customers 0.4 GB, in about the same time). Batches are cut by customer-months, not
#: customers: each batch scans the transactions and balances once, so the one-month follow-ups of
#: scoring (millions of customers, one month each) take few batches.
BEHAVIOUR_BATCH_CELLS = 1_000_000


def behaviour_covariates(
    tables: dict[str, Any],
    frame: pd.DataFrame,
    *,
    history_start: str | pd.Timestamp | None = None,
    silence_cap_days: int = 180,
    recent_days: int = 90,
    baseline_days: int = 365,
    min_exposure_days: int = 90,
    aum_trend_months: int = 3,
    engine: str = "duckdb",
    batch_cells: int | None = None,
) -> pd.DataFrame:
    """Monthly behaviour covariates over each customer's follow-up, from data before each month.

    For every customer of ``frame`` (a :func:`survival_frame`) and every calendar month that
    overlaps its follow-up ``[entry, duration)``, evaluated on day ``e = max(month_start,
    open_date)`` from data strictly before it (so nothing measured during the time at risk):

    - ``months_since_purchase``: days since the last purchase (amount > 0) before ``e``, capped at
      ``silence_cap_days``, in units of 30 days; the open day counts as a purchase day. With no
      purchase visible since ``first_day = max(open_date, history_start)`` it is ``e - first_day``
      (a lower bound for customers whose history starts before the data);
    - ``activity_change = log((n_recent + 1) / (rate * recent_days + 1))``: purchases in the
      ``recent_days`` before ``e`` against the customer's own baseline rate (purchases per day)
      over ``[max(e - recent_days - baseline_days, first_day), e - recent_days)``; 0 when that
      baseline spans fewer than ``min_exposure_days`` days (no baseline, no change measured);
    - ``aum_trend``: log change of month-end AUM from the earliest to the latest snapshot in the
      ``aum_trend_months`` + 1 month ends before the month (``log(max(aum, 1))``; 0 with fewer
      than two snapshots).

    ``history_start``: first day of the data (default: the first transaction date). These are the
    definitions of the synthetic bank's behaviour link (:func:`rmanalytics.synth.generate`), so a
    Cox model on them recovers its ``closure_behaviour_log_hr`` (with full history). The engine
    selects the purchase days and AUM snapshots of the customers of about ``batch_cells``
    customer-months at a time (default :data:`BEHAVIOUR_BATCH_CELLS`; at least one customer a
    batch; the result does not depend on it; transactions and balances may be Parquet paths: they are only
    scanned there) and :func:`behaviour_cells` counts them per customer-month by binary search.

    Returns customer_id, month_start (date), months_since_purchase, activity_change, aum_trend,
    sorted by customer_id and month_start.
    """
    tx = tables["transactions"]
    if history_start is None:
        if isinstance(tx, pd.DataFrame):
            history_start = pd.Timestamp(tx["date"].min()).normalize()
        else:
            history_start = pd.Timestamp(run_sql("SELECT MIN(CAST(date AS DATE)) AS lo FROM transactions",
                                                 {"transactions": tx}, engine=engine).iloc[0]["lo"])
    hs = pd.Timestamp(history_start)
    f = frame[["customer_id", "open_date", "entry", "duration"]]
    ids = f["customer_id"]
    if not ids.is_monotonic_increasing:  # output sorted by customer_id, then month
        f = f.iloc[np.argsort(ids.to_numpy(), kind="mergesort")]
    open_ = pd.to_datetime(f["open_date"])
    m_lo, m_hi = follow_up_months(f)
    n_m = m_hi - m_lo + 1
    offset = np.cumsum(n_m) - n_m
    n_rows = int(n_m.sum())
    spine = pd.DataFrame({"c": np.arange(len(f), dtype=np.int64), "customer_id": f["customer_id"].to_numpy(),
                          "open_date": open_.to_numpy(),
                          "first_day": np.maximum(open_.to_numpy(), hs.to_datetime64()),
                          "m_lo": m_lo, "m_hi": m_hi})
    silent = np.zeros(n_rows, np.int32)  # day counts and purchase counts: int32 is exact
    n_recent = np.zeros(n_rows, np.int32)
    n_base = np.zeros(n_rows, np.int32)
    span = np.zeros(n_rows, np.int32)
    trend = np.zeros(n_rows)
    cells = int(batch_cells or BEHAVIOUR_BATCH_CELLS)
    upto = offset + n_m  # customer-months up to and including each customer
    i = 0
    while i < len(f):  # the customers of about `cells` customer-months, at least one
        j = max(int(np.searchsorted(upto, offset[i] + cells, side="right")), i + 1)
        part = spine.iloc[i:j]
        i = j
        r = behaviour_cells(part, tx, tables["balances"], silence_cap_days=silence_cap_days, recent_days=recent_days,
                            baseline_days=baseline_days, aum_trend_months=aum_trend_months, engine=engine)
        c = r["c"].to_numpy(np.int64)
        pos = offset[c] + (r["mi"].to_numpy(np.int64) - m_lo[c])
        silent[pos] = r["silent_days"].to_numpy()
        n_recent[pos] = r["n_recent"].to_numpy()
        n_base[pos] = r["n_base"].to_numpy()
        span[pos] = r["span_days"].to_numpy()
        trend[pos] = r["aum_trend"].to_numpy(float)
        del r, c, pos
    # the output columns filled by blocks of customers / rows into preallocated arrays and the frame
    # made from them without copies (n-long int64 temporaries and column copies peaked 1.7 GB at 1M)
    ids_f = f["customer_id"].to_numpy()
    cust = np.empty(n_rows, dtype=ids_f.dtype)
    month_start = np.empty(n_rows, "datetime64[ns]")
    block, rep, k = 1 << 16, None, None
    for c0 in range(0, len(f), block):
        c1 = min(c0 + block, len(f))
        r0, r1 = int(offset[c0]), int(offset[c1 - 1] + n_m[c1 - 1])
        rep = np.repeat(np.arange(c0, c1), n_m[c0:c1])
        k = np.arange(r0, r1) - offset[rep]
        cust[r0:r1] = ids_f[rep]
        month_start[r0:r1] = (m_lo[rep] + k).astype("datetime64[M]").astype("datetime64[ns]")
    del rep, k
    msp, act = np.empty(n_rows), np.empty(n_rows)
    for r0 in range(0, n_rows, block):
        sl = slice(r0, r0 + block)
        msp[sl] = np.clip(silent[sl].astype(np.int64), 0, silence_cap_days).astype(float) / 30.0
        nr, nb = n_recent[sl].astype(np.int64), n_base[sl].astype(np.int64)
        expo = span[sl].astype(np.int64) - int(recent_days)
        ok = expo >= min_exposure_days
        rate = nb / np.clip(expo, 1, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            act[sl] = np.where(ok, np.log((nr + 1.0) / (rate * recent_days + 1.0)), 0.0)
    del silent, n_recent, n_base, span
    rows = pd.RangeIndex(n_rows)  # ids as a Series: no dtype inference over an object array (40 bytes a row)
    out = pd.DataFrame({"customer_id": pd.Series(cust, index=rows, copy=False), "month_start": month_start,
                        "months_since_purchase": msp, "activity_change": act, "aum_trend": trend},
                       index=rows, copy=False)
    release_free_memory()  # the batches' engine results and temporaries
    return out


#: Rows of the long frame per chunk of :func:`split_monthly` (bounds its temporaries).
SPLIT_CHUNK_ROWS = 1 << 16


def split_monthly(long: pd.DataFrame, monthly: pd.DataFrame, *, id_col: str = "customer_id",
                  open_col: str = "open_date", event_col: str = "event",
                  exclude: list[str] | tuple[str, ...] = (), event_dtype: Any = None) -> pd.DataFrame:
    """Split start/stop rows (days since open) at calendar month starts and attach the monthly
    covariates of :func:`behaviour_covariates` valid over each piece. The event stays on the piece
    that ends at the row's stop; other columns are copied, except those in ``exclude``.

    A row ``[start, stop)`` of a customer meets the month ``[a, b)`` of ``monthly`` (days since open
    of ``month_start`` and of the next month start) when ``max(a, start) < min(b, stop)``; that
    overlap is the piece. Pieces come in the order of the rows, then of the months. Vectorised on
    row and month positions: besides the output, memory holds a few integer and float arrays of
    its length (no merge of the two frames), so this scales to tens of millions of pieces. The
    output's columns are the arrays made here (no copies). ``event_dtype``: the dtype of the
    output's event column (default int64), e.g. the narrow one of a compacted frame.
    """
    lg = long.reset_index(drop=True)
    covs = [c for c in monthly.columns if c not in (id_col, "month_start")]
    # months of each customer, contiguous and in month order: key = customer code, month number
    m_codes, uniq = pd.factorize(monthly[id_col])
    ms = pd.to_datetime(monthly["month_start"]).to_numpy().astype("datetime64[ns]")
    m_month = ms.astype("datetime64[M]").astype(np.int64)
    key = m_codes.astype(np.int64) * (1 << 32) + (m_month + (1 << 31))
    del m_codes
    order = None if len(key) < 2 or bool((key[1:] >= key[:-1]).all()) else np.argsort(key, kind="stable")
    if order is not None:
        key, ms, m_month = key[order], ms[order], m_month[order]
    del m_month
    r_codes = pd.Index(uniq).get_indexer(lg[id_col])
    op = pd.to_datetime(lg[open_col]).to_numpy().astype("datetime64[ns]")
    start = lg["start"].to_numpy(float)
    stop = lg["stop"].to_numpy(float)
    ok = r_codes >= 0
    # candidate months per row: from the month of open + floor(start) days to that of open + ceil(stop) days,
    # one month wider on each side; the exact overlap test below keeps the true pieces
    day = np.timedelta64(1, "D")
    op_d = op.astype("datetime64[D]")
    with np.errstate(invalid="ignore"):
        lo_m = (op_d + np.where(ok, np.floor(start), 0).astype(np.int64) * day).astype("datetime64[M]").astype(np.int64) - 1
        hi_m = (op_d + np.where(ok, np.ceil(stop), 0).astype(np.int64) * day).astype("datetime64[M]").astype(np.int64) + 1
    base_key = np.where(ok, r_codes, 0).astype(np.int64) * (1 << 32) + (1 << 31)
    p0 = np.searchsorted(key, base_key + lo_m, side="left")
    p1 = np.searchsorted(key, base_key + hi_m, side="right")
    n_cand = np.where(ok, p1 - p0, 0)
    del lo_m, hi_m, base_key, op_d, p1, key
    day_ns = np.int64(86_400_000_000_000)

    def pieces(r0: int, r1: int):
        """Row, month position and overlap [lo, hi) of the pieces of rows r0..r1-1."""
        nc = n_cand[r0:r1]
        rep = np.repeat(np.arange(r0, r1, dtype=np.int64), nc)
        pos = np.arange(len(rep), dtype=np.int64) - np.repeat(np.cumsum(nc) - nc, nc) + np.repeat(p0[r0:r1], nc)
        op_rep = op[rep].astype(np.int64)
        ms_pos = ms[pos]
        a = np.floor_divide(ms_pos.astype(np.int64) - op_rep, day_ns).astype(float)
        nxt = (ms_pos.astype("datetime64[M]") + 1).astype("datetime64[ns]").astype(np.int64)
        b = np.floor_divide(nxt - op_rep, day_ns).astype(float)
        lo = np.maximum(a, start[rep])
        hi = np.minimum(b, stop[rep])
        piece = hi > lo
        return rep[piece], pos[piece], lo[piece], hi[piece]

    # two passes over row chunks: count the pieces, then fill preallocated arrays (bounded temporaries)
    step = SPLIT_CHUNK_ROWS
    bounds = [(r, min(r + step, len(lg))) for r in range(0, len(lg), step)]
    n_pieces = np.zeros(len(lg), np.int64)
    for r0, r1 in bounds:
        n_pieces[r0:r1] = np.bincount(pieces(r0, r1)[0] - r0, minlength=r1 - r0)
    if not (n_pieces > 0).all():
        miss = np.flatnonzero(n_pieces == 0)
        raise ChurnDataError(f"monthly covariates do not cover {len(miss)} rows of the long frame, e.g. "
                             f"{lg[id_col].to_numpy()[miss[:5]].tolist()}")
    total = int(n_pieces.sum())
    rep = np.repeat(np.arange(len(lg), dtype=np.int64), n_pieces)
    pos = np.empty(total, np.int64)
    lo, hi = np.empty(total), np.empty(total)
    ev_in = lg[event_col].to_numpy()
    ev = np.empty(total, event_dtype or int)  # on the piece that ends at the row's stop, by chunks
    at = 0
    for r0, r1 in bounds:
        r, p, l_, h_ = pieces(r0, r1)
        sl = slice(at, at + len(p))
        pos[sl], lo[sl], hi[sl] = p, l_, h_
        ev[sl] = np.where(h_ >= stop[r], ev_in[r], 0)
        at += len(p)
    del p0, n_cand, n_pieces, r, p, l_, h_
    final = [c for c in lg.columns if c not in covs and c not in exclude]
    made = {event_col: ev, "start": lo, "stop": hi}
    del ev, lo, hi
    taken = lg[[c for c in final if c not in made]].take(rep)  # only the copied columns are taken
    taken.index = pd.RangeIndex(total)
    del rep
    # the output frame is assembled from its column arrays without copies (DataFrame.insert and
    # column assignment would copy each array once more: tens of millions of rows); the copied
    # columns go in as Series (an object ndarray would be scanned for a better dtype, with
    # temporaries of 40 bytes a row)
    data = {c: made.pop(c) if c in made else taken[c] for c in final}
    del taken
    src = monthly if order is None else monthly.iloc[order]
    for c in covs:
        data[c] = src[c].to_numpy()[pos]
    del pos, src
    return pd.DataFrame(data, index=pd.RangeIndex(total), copy=False)


def compress_frame(
    frame: pd.DataFrame,
    columns: list[str],
    *,
    duration_col: str = "duration",
    event_col: str = "event",
    entry_col: str | None = "entry",
    weights_col: str = "weight",
) -> pd.DataFrame:
    """Collapse rows with identical (covariates, duration, event, entry) into one weighted row.

    With discrete covariates on a week or month grid, a million customers collapse to a few
    thousand rows. The Breslow partial likelihood of the weighted frame equals that of the full
    frame exactly; lifelines uses Efron's tie correction, which treats a weighted row as one
    death (as R's survival does), so coefficients differ slightly from the uncompressed Efron fit
    (measured in the tests and the benchmark; usually far below the standard errors).
    """
    keys = list(columns) + [duration_col, event_col] + ([entry_col] if entry_col else [])
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    out = frame.groupby(keys, observed=True, dropna=False, sort=True).size().rename(weights_col).reset_index()
    out[weights_col] = out[weights_col].astype(float)
    return out


def holdout_split(frame: pd.DataFrame, cutoff: str | pd.Timestamp, *, horizon_days: int | None = None,
                  open_col: str = "open_date", duration_col: str = "duration", event_col: str = "event",
                  entry_col: str = "entry", columns: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time-based hold-out: train on follow-up up to ``cutoff``, test on what happens after it.

    Train: every customer's follow-up censored at ``cutoff`` (events after it become censored);
    customers whose entry lies after the cutoff are not in train. Test: customers still active at
    ``cutoff`` (past their landmark), with ``tenure`` = their tenure at the cutoff, followed from
    the cutoff for at most ``horizon_days`` (or to the end). Durations in days since open.

    ``columns``: the other columns of ``frame`` both keep, e.g. the model's covariates and the
    baseline's grouping (None: all). At 10M customers each copy of every column takes GBs.
    """
    cutoff = pd.Timestamp(cutoff)
    f = frame
    keep = slice(None)
    if columns is not None:  # one copy of the kept columns per part
        own = [c for c in ("customer_id", open_col, entry_col, duration_col, event_col) if c in frame.columns]
        keep = list(dict.fromkeys([*own, *columns]))
    t_cut = (cutoff - f[open_col]).dt.days.astype(float)
    train = f.loc[f[entry_col] < t_cut, keep].copy()
    tc = t_cut[train.index]
    after = train[duration_col] > tc
    train.loc[after, event_col] = 0
    train.loc[after, duration_col] = tc[after]
    test = f.loc[(f[entry_col] <= t_cut) & (f[duration_col] > t_cut), keep].copy()
    test["tenure"] = t_cut[test.index]
    if horizon_days is not None:
        lim = test["tenure"] + float(horizon_days)
        beyond = test[duration_col] > lim
        test.loc[beyond, event_col] = 0
        test.loc[beyond, duration_col] = lim[beyond]
    return train.reset_index(drop=True), test.reset_index(drop=True)


def holdout_cutoff(observation_end: str | pd.Timestamp, holdout_days: int, *, definition: str = "closure",
                   inactivity_days: int = 0) -> pd.Timestamp:
    """Cutoff date of the time-based hold-out: ``holdout_days`` before the last day on which churn is resolved.

    With the closure definition churn is resolved up to ``observation_end``; with the inactivity
    definition only up to ``observation_end - inactivity_days`` (a later last activity may still be
    followed by activity), so the hold-out ends there.
    """
    if definition not in DEFINITIONS:
        raise ParameterError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    last_resolved = pd.Timestamp(observation_end) - pd.Timedelta(
        days=inactivity_days if definition == "inactivity" else 0)
    return last_resolved - pd.Timedelta(days=holdout_days)


def active_customers(long: pd.DataFrame, observation_end: str | pd.Timestamp, *, id_col: str = "customer_id",
                     stop_col: str = "stop", frame: pd.DataFrame | None = None, tables: dict[str, Any] | None = None,
                     engine: str = "duckdb", columns: list[str] | None = None) -> pd.DataFrame:
    """The customers still active at ``observation_end``: the last row of each customer of a
    :func:`time_varying_frame` when it is censored (event 0) at the observation end, with ``tenure``
    (days since open at the observation end) for predictions.

    ``frame``: the survival frame ``long`` was built from; its columns missing from ``long`` (e.g.
    ``end_date``, ``segment``, the value columns, when ``long`` carries only the model's columns)
    are added by ``id_col``. Without it ``long`` needs ``end_date``. Only the selected rows are
    copied, so this stays cheap on a long frame of tens of millions of rows. ``columns``: only
    these of ``frame``'s columns are added (None: all); at 10M customers each column is 60 MB.

    When ``long`` was built from a sample of ``frame``'s customers
    (:func:`~rmanalytics.churn.sample.sample_customers`, its ``attrs["fit_sample"]``), the rows of
    every active customer of ``frame`` are made as :func:`time_varying_frame` would make their last
    row (``rm_left`` switched on before ``stop``; the behaviour covariates of ``long``, if any, of
    the last month of follow-up, computed from ``tables`` with ``engine``): the same values as the
    long frame of all customers gives, with ``long``'s columns (not its dtypes) and ``frame``'s.
    """
    end = pd.Timestamp(observation_end)
    if is_sample(long.attrs):
        if frame is None or tables is None:
            raise ChurnDataError("active_customers: the long frame holds a sample of the customers; pass frame= "
                                 "(the survival frame it was drawn from) and tables= (for the behaviour covariates)")
        return _active_from_frame(long, frame, tables, end, id_col=id_col, stop_col=stop_col, engine=engine,
                                  columns=columns)
    censored = long["event"].to_numpy() == 0
    if "end_date" not in long.columns and frame is None:
        raise ChurnDataError("active_customers: the long frame has no end_date column; pass frame= "
                             "(the survival frame it was built from)")
    ids = long[id_col].to_numpy()
    # a time_varying_frame holds each customer's rows together: then rows are matched to customers by
    # runs (one id per run), not by hashing tens of millions of ids; any other order by ids
    run = None
    if len(ids) > 1:
        brk = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        run_ids = pd.Index(ids[np.concatenate([[0], brk])])
        stop = long[stop_col].to_numpy()
        in_order = stop[1:] >= stop[:-1]
        in_order[brk - 1] = True  # across customers: no condition
        if run_ids.is_unique and in_order.all():  # (each customer's rows by time, as time_varying_frame makes them)
            run = np.zeros(len(ids), np.int32)
            run[brk] = 1
            np.cumsum(run, out=run)  # run number of each row
        del brk, in_order
    if "end_date" in long.columns:
        at_end = (long["end_date"] == end).to_numpy()
    elif run is not None:
        at_end = run_ids.isin(frame.loc[frame["end_date"] == end, id_col])[run]
    else:
        at_end = long[id_col].isin(frame.loc[frame["end_date"] == end, id_col]).to_numpy()
    # each customer's last row, kept when it is censored at the end (a customer whose follow-up ends
    # with the event on the observation end has censored earlier rows: not active)
    if run is not None:
        last = np.concatenate([np.flatnonzero(run[1:] != run[:-1]), [len(ids) - 1]])
        del run
    else:  # the row with the latest stop of each customer
        codes = pd.factorize(long[id_col])[0]
        order = np.lexsort((long[stop_col].to_numpy(), codes))
        cs = codes[order]
        last = np.sort(order[np.concatenate([cs[1:] != cs[:-1], [True]])]) if len(cs) else order
        del codes, order, cs
    last = last[censored[last] & at_end[last]]
    del at_end, censored
    out = long.iloc[last]
    if frame is not None:
        extra = [c for c in frame.columns if c not in out.columns and (columns is None or c in columns)]
        if extra:
            f = frame.drop_duplicates(id_col).set_index(id_col)[extra]
            add = f.reindex(out[id_col].to_numpy())
            add.index = out.index
            out = pd.concat([out, add], axis=1)
    return out.assign(tenure=out[stop_col])


def _active_from_frame(long: pd.DataFrame, frame: pd.DataFrame, tables: dict[str, Any], end: pd.Timestamp, *,
                       id_col: str, stop_col: str, engine: str, columns: list[str] | None = None) -> pd.DataFrame:
    """:func:`active_customers` of every customer of ``frame`` when ``long`` holds a sample of them:
    each active customer's last row of :func:`time_varying_frame` (with ``long``'s columns), made
    from ``frame`` (defaults: ``rm_exit_days``, ``entry``, ``duration``) and, when ``long`` has them,
    the behaviour covariates of the month of the row's last day."""
    rows = (frame["end_date"] == end).to_numpy() & (frame["event"] == 0).to_numpy()
    if columns is None:
        act = frame[rows]
    else:  # what the rows are made from, long's columns and the ones asked for
        own = [id_col, "open_date", "rm_exit_days", "entry", "duration", *long.columns, *columns]
        act = frame.loc[rows, [c for c in frame.columns if c in own]]
    s = act["rm_exit_days"].to_numpy(float)
    entry, stop = act["entry"].to_numpy(float), act["duration"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        rm_left = (s < stop).astype(int)  # NaN: no switch
        start = np.where((s > entry) & (s < stop), s, entry)
    made: dict[str, Any] = {"event": np.zeros(len(act), int), "start": start, stop_col: stop, "rm_left": rm_left}
    behave = [c for c in BEHAVIOUR_COVARIATES if c in long.columns]
    if behave:  # the month that holds the last day of follow-up, from data before it
        probe = act[[id_col, "open_date"]].assign(entry=stop - 1, duration=stop)
        mon = behaviour_covariates(tables, probe, engine=engine).set_index("customer_id").reindex(act[id_col].to_numpy())
        open_ = pd.to_datetime(act["open_date"]).to_numpy().astype("datetime64[D]")
        a = (mon["month_start"].to_numpy().astype("datetime64[D]") - open_).astype(np.int64).astype(float)
        made["start"] = np.maximum(start, a)  # the last piece starts at the month start at the earliest
        for c in behave:
            made[c] = mon[c].to_numpy()
    cols = {c: made[c] if c in made else act[c].to_numpy() for c in long.columns if c in made or c in act.columns}
    out = pd.DataFrame(cols, index=act.index)
    extra = [c for c in act.columns if c not in out.columns and (columns is None or c in columns)]
    out = pd.concat([out, act[extra]], axis=1).reset_index(drop=True)
    return out.assign(tenure=out[stop_col])


def max_follow_up(frame: pd.DataFrame) -> float:
    """Longest follow-up in days (duration - entry) in ``frame``."""
    return float(math.ceil((frame["duration"] - frame["entry"]).max()))


def add_segments(frame: pd.DataFrame, segments: pd.DataFrame | None = None, *,
                 value_col: str = "aum") -> pd.DataFrame:
    """Add ``segment`` and ``tier`` columns for retention by group.

    With ``segments`` (restricted/tables/segments.parquet of a 01 run: customer_id, segment, tier, ...) they
    are joined by customer_id (customers missing there get ``"unsegmented"``, counted in
    ``attrs["unsegmented"]``). Without: ``segment`` = customer_type and ``tier`` = value tier from
    ``value_col`` at the landmark (terciles: ``value_low``, ``value_mid``, ``value_high``), which
    uses no data after the landmark. ``frame`` is left unchanged; its columns are shared, not copied.
    """
    out = frame.copy(deep=False)  # new columns only: frame's stay as they are (a 10M frame: GBs)
    if segments is not None:
        need = {"customer_id", "segment", "tier"} - set(segments.columns)
        if need:
            raise ChurnDataError(f"segments table lacks columns {sorted(need)}")
        seg = segments.drop_duplicates("customer_id").set_index("customer_id")
        out["segment"] = out["customer_id"].map(seg["segment"]).fillna("unsegmented")
        out["tier"] = out["customer_id"].map(seg["tier"]).fillna("unsegmented")
        out.attrs["unsegmented"] = int((~out["customer_id"].isin(seg.index)).sum())
        return out
    out["segment"] = out["customer_type"]
    ranks = out[value_col].rank(method="first", pct=True)
    out["tier"] = np.select([ranks <= 1 / 3, ranks <= 2 / 3], ["value_low", "value_mid"], "value_high")
    return out


# --------------------------------------------------------------------------------------------
# relationship covariates (optional tables interactions / feedback; issue 14)
# --------------------------------------------------------------------------------------------
def add_relationship_covariates(frame: pd.DataFrame, tables: dict[str, Any], *, lapse_days: int = 90,
                                engine: str | None = None) -> pd.DataFrame:
    """Contact and complaint covariates measured strictly before each customer's landmark.

    From ``interactions`` and ``feedback`` rows in ``[cov_start, landmark)`` (the lookback window of
    :func:`survival_frame`): ``n_contacts``, ``days_since_contact`` (days from the last contact
    day to the landmark; from ``cov_start`` when there was none), ``contact_lapsed``
    (``days_since_contact >= lapse_days``), ``n_complaints`` and ``complained`` (0/1). Missing
    tables leave the frame unchanged. No row after the landmark is read (no leakage). The tables
    may be pandas frames or, like transactions, Parquet paths (then counted on ``engine``: tens of
    millions of interactions never reach pandas).
    """
    out = frame.copy()
    key = out[["customer_id", "cov_start", "landmark"]]
    it = tables.get("interactions")
    if isinstance(it, pd.DataFrame):
        x = it[["customer_id", "timestamp"]].merge(key, on="customer_id")
        day = x["timestamp"].dt.normalize()
        x = x[(day >= x["cov_start"]) & (day < x["landmark"])].assign(day=day)
        g = x.groupby("customer_id")
        n_contacts, last_day = g.size(), g["day"].max()
    elif it is not None:
        r = run_sql("""
SELECT k.customer_id, COUNT(*) AS n_contacts, MAX(CAST(i.timestamp AS DATE)) AS last_day
FROM interactions i JOIN spine k ON i.customer_id = k.customer_id
WHERE CAST(i.timestamp AS DATE) >= CAST(k.cov_start AS DATE) AND CAST(i.timestamp AS DATE) < CAST(k.landmark AS DATE)
GROUP BY k.customer_id ORDER BY k.customer_id""", {"interactions": it, "spine": key}, engine=engine).set_index("customer_id")
        n_contacts, last_day = r["n_contacts"], pd.to_datetime(r["last_day"])
    if it is not None:
        out["n_contacts"] = map_keys(out["customer_id"], n_contacts).fillna(0).astype(int)  # sorted ids: linear
        last = map_keys(out["customer_id"], last_day)
        ref = last.where(last.notna(), out["cov_start"])
        out["days_since_contact"] = (out["landmark"] - ref).dt.days.astype(float)
        out["contact_lapsed"] = (out["days_since_contact"] >= int(lapse_days)).astype(int)
    fb = tables.get("feedback")
    if isinstance(fb, pd.DataFrame):
        q = fb.loc[fb["kind"] == "complaint", ["customer_id", "opened_at"]].merge(key, on="customer_id")
        day = q["opened_at"].dt.normalize()
        q = q[(day >= q["cov_start"]) & (day < q["landmark"])]
        n_complaints = q.groupby("customer_id").size()
    elif fb is not None:
        n_complaints = run_sql("""
SELECT k.customer_id, COUNT(*) AS n_complaints
FROM feedback f JOIN spine k ON f.customer_id = k.customer_id
WHERE f.kind = 'complaint'
  AND CAST(f.opened_at AS DATE) >= CAST(k.cov_start AS DATE) AND CAST(f.opened_at AS DATE) < CAST(k.landmark AS DATE)
GROUP BY k.customer_id ORDER BY k.customer_id""", {"feedback": fb, "spine": key}, engine=engine).set_index("customer_id")["n_complaints"]
    if fb is not None:
        out["n_complaints"] = map_keys(out["customer_id"], n_complaints).fillna(0).astype(int)
        out["complained"] = (out["n_complaints"] > 0).astype(int)
    return out


def relationship_events(frame: pd.DataFrame, tables: dict[str, Any], *, lapse_days: int = 90) -> pd.DataFrame:
    """Switch events of the time-varying relationship covariates, in days since ``open_date``.

    ``contact_lapsed`` switches on ``lapse_days`` after a contact day (the clock starts at
    ``cov_start``) unless another contact comes first, and off on the next contact day;
    ``complained`` switches on at the day of the first complaint; ``rm_left`` at ``rm_exit_days``.
    Each value holds from its day on, so a customer's covariates at time ``t`` use only records
    dated before ``t``. Returns ``customer_id, t, covariate, value``.
    """
    f = frame[["customer_id", "open_date", "cov_start"]]
    parts = []
    it = tables.get("interactions")
    if isinstance(it, pd.DataFrame):
        x = it[["customer_id", "timestamp"]].merge(f, on="customer_id")
        d = pd.concat([pd.DataFrame({"customer_id": f["customer_id"], "day": f["cov_start"]}),
                       pd.DataFrame({"customer_id": x["customer_id"], "day": x["timestamp"].dt.normalize()})
                       [x["timestamp"].dt.normalize().to_numpy() >= x["cov_start"].to_numpy()]])
        d = sort_rows(d.drop_duplicates(), ["customer_id", "day"])
        nxt = d.groupby("customer_id")["day"].shift(-1)
        on = d["day"] + pd.Timedelta(days=int(lapse_days))
        lapse = nxt.isna() | (nxt > on)
        opened = d["customer_id"].map(f.set_index("customer_id")["open_date"])
        parts.append(pd.DataFrame({"customer_id": d["customer_id"][lapse], "t": (on - opened)[lapse].dt.days,
                                   "covariate": "contact_lapsed", "value": 1}))
        off = lapse & nxt.notna()
        parts.append(pd.DataFrame({"customer_id": d["customer_id"][off], "t": (nxt - opened)[off].dt.days,
                                   "covariate": "contact_lapsed", "value": 0}))
    fb = tables.get("feedback")
    if isinstance(fb, pd.DataFrame):
        q = fb[fb["kind"] == "complaint"].groupby("customer_id")["opened_at"].min().dt.normalize()
        q = q[q.index.isin(f["customer_id"])]
        opened = pd.Series(q.index, index=q.index).map(f.set_index("customer_id")["open_date"])
        parts.append(pd.DataFrame({"customer_id": q.index, "t": (q - opened).dt.days.to_numpy(),
                                   "covariate": "complained", "value": 1}))
    if "rm_exit_days" in frame.columns:
        r = frame[frame["rm_exit_days"].notna()]
        parts.append(pd.DataFrame({"customer_id": r["customer_id"], "t": r["rm_exit_days"],
                                   "covariate": "rm_left", "value": 1}))
    if not parts:
        return pd.DataFrame(columns=["customer_id", "t", "covariate", "value"])
    ev = pd.concat(parts, ignore_index=True)
    ev["t"] = ev["t"].astype(float)
    return ev


def relationship_frame(frame: pd.DataFrame, tables: dict[str, Any], *, lapse_days: int = 90,
                       covariates: tuple[str, ...] = ("contact_lapsed", "complained", "rm_left")) -> pd.DataFrame:
    """Start/stop frame with time-varying ``contact_lapsed``, ``complained`` and ``rm_left``.

    Each customer's follow-up ``[entry, duration]`` of :func:`survival_frame` (time grid "day") is
    cut at the switch days of :func:`relationship_events`; every row carries the covariate values
    holding from its ``start`` (last switch at or before it, 0 before any), the event sits on the
    last row. Input of :class:`ChurnModel` with ``entry_col="start", duration_col="stop"``.
    """
    ev = relationship_events(frame, tables, lapse_days=lapse_days)
    ev = ev[ev["covariate"].isin(covariates)]
    base = frame.drop(columns=[c for c in covariates if c in frame.columns])  # landmark values -> time-varying
    base["start"] = base["entry"].astype(float)
    base["stop"] = base["duration"].astype(float)
    lim = ev.merge(base[["customer_id", "start", "stop"]], on="customer_id")
    cuts = lim[(lim["t"] > lim["start"]) & (lim["t"] < lim["stop"])][["customer_id", "t"]].drop_duplicates()
    pts = pd.concat([base[["customer_id", "start"]].rename(columns={"start": "t"}), cuts], ignore_index=True)
    pts = sort_rows(pts, ["customer_id", "t"]).reset_index(drop=True)
    pts["t_next"] = pts.groupby("customer_id")["t"].shift(-1)
    long = pts.merge(base.drop(columns=["start"]), on="customer_id")
    last = long["t_next"].isna()
    long["start"] = long["t"]
    long["stop"] = long["t_next"].where(~last, long["stop"])
    long["event"] = np.where(last, long["event"], 0)
    long = long.drop(columns=["t", "t_next"])
    for cov in covariates:
        e = sort_rows(ev[ev["covariate"] == cov], ["t", "customer_id"])[["customer_id", "t", "value"]]
        long = long.sort_values("start", kind="mergesort")
        if len(e):
            long = pd.merge_asof(long, e.rename(columns={"t": "start", "value": cov}), on="start", by="customer_id",
                                 direction="backward")
        else:
            long[cov] = 0
        long[cov] = long[cov].fillna(0).astype(int)
    return sort_rows(long, ["customer_id", "start"]).reset_index(drop=True)


def current_state_sql(as_of: str, *, recent_days: int = 90, baseline_days: int = 365, change_days: int = 91,
                      has_fee: bool = True) -> str:
    """SQL (DuckDB dialect) for each customer's state *today* (``as_of``), not at its landmark.

    Inputs: ``customers``, ``transactions``, ``balances``, ``assignments``, ``rms``. One row per
    customer open at ``as_of`` (opened on or before it, not closed on or before it) with:
    ``aum`` and ``n_products`` from the last balance snapshot on or before ``as_of`` (currency),
    ``aum_before`` from the last snapshot on or before ``as_of - change_days`` (for the 3-month
    change), ``n_tx_recent``/``tx_fee_recent``/``tx_amount_recent`` over ``(as_of - recent_days, as_of]``,
    ``n_tx_baseline`` over the ``baseline_days`` before that window, ``fee_12m`` (fees over the 365
    days up to ``as_of``), ``last_tx_date``, and the current primary RM ``rm_id`` (largest share,
    ties by rm_id) among assignments running at ``as_of`` (``start_date <= as_of < end_date``)
    whose RM is still employed (no ``exit_date`` on or before ``as_of``); null when none.
    """
    d = pd.Timestamp(as_of).date().isoformat()
    fee = "t.fee" if has_fee else "0.0"
    return f"""
WITH spine AS (
    SELECT customer_id, branch_id FROM customers
    WHERE CAST(open_date AS DATE) <= DATE '{d}' AND (close_date IS NULL OR CAST(close_date AS DATE) > DATE '{d}')
),
tx AS (
    SELECT t.customer_id,
           SUM(CASE WHEN CAST(t.date AS DATE) > DATE '{d}' - INTERVAL {int(recent_days)} DAY THEN 1 ELSE 0 END) AS n_tx_recent,
           SUM(CASE WHEN CAST(t.date AS DATE) > DATE '{d}' - INTERVAL {int(recent_days)} DAY THEN {fee} ELSE 0 END) AS tx_fee_recent,
           SUM(CASE WHEN CAST(t.date AS DATE) > DATE '{d}' - INTERVAL {int(recent_days)} DAY THEN t.amount ELSE 0 END) AS tx_amount_recent,
           SUM(CASE WHEN CAST(t.date AS DATE) <= DATE '{d}' - INTERVAL {int(recent_days)} DAY
                     AND CAST(t.date AS DATE) > DATE '{d}' - INTERVAL {int(recent_days) + int(baseline_days)} DAY
                    THEN 1 ELSE 0 END) AS n_tx_baseline,
           SUM(CASE WHEN CAST(t.date AS DATE) > DATE '{d}' - INTERVAL 365 DAY THEN {fee} ELSE 0 END) AS fee_12m,
           MAX(CAST(t.date AS DATE)) AS last_tx_date
    FROM transactions t JOIN spine s ON s.customer_id = t.customer_id
    WHERE CAST(t.date AS DATE) <= DATE '{d}'
    GROUP BY t.customer_id
),
bal AS (
    {_last_snapshot_sql("b.aum, b.n_products", f"CAST(b.snapshot_date AS DATE) <= DATE '{d}'")}
),
bal0 AS (
    {_last_snapshot_sql("b.aum AS aum_before",
                        f"CAST(b.snapshot_date AS DATE) <= DATE '{d}' - INTERVAL {int(change_days)} DAY")}
),
prm AS (
    SELECT customer_id, rm_id FROM (
        SELECT a.customer_id, a.rm_id,
               ROW_NUMBER() OVER (PARTITION BY a.customer_id ORDER BY a.share DESC, a.rm_id) AS rn
        FROM assignments a JOIN spine s ON a.customer_id = s.customer_id
        JOIN rms r ON r.rm_id = a.rm_id
        WHERE CAST(a.start_date AS DATE) <= DATE '{d}'
          AND (a.end_date IS NULL OR CAST(a.end_date AS DATE) > DATE '{d}')
          AND (r.exit_date IS NULL OR CAST(r.exit_date AS DATE) > DATE '{d}')
    ) x WHERE rn = 1
)
SELECT s.customer_id, prm.rm_id, COALESCE(bal.aum, 0.0) AS aum, COALESCE(bal.n_products, 0) AS n_products,
       bal0.aum_before, COALESCE(tx.n_tx_recent, 0) AS n_tx_recent, COALESCE(tx.tx_fee_recent, 0.0) AS tx_fee_recent,
       COALESCE(tx.tx_amount_recent, 0.0) AS tx_amount_recent,
       COALESCE(tx.n_tx_baseline, 0) AS n_tx_baseline, COALESCE(tx.fee_12m, 0.0) AS fee_12m, tx.last_tx_date
FROM spine s
LEFT JOIN tx ON tx.customer_id = s.customer_id
LEFT JOIN bal ON bal.customer_id = s.customer_id
LEFT JOIN bal0 ON bal0.customer_id = s.customer_id
LEFT JOIN prm ON prm.customer_id = s.customer_id
ORDER BY s.customer_id
"""


def state_fits(state: pd.DataFrame | None, as_of: str | pd.Timestamp, *, recent_days: int = 90,
               baseline_days: int = 365, change_days: int = 91) -> bool:
    """Whether ``state`` (a :func:`current_state`, e.g. read back from an upstream run's Parquet,
    which keeps its ``attrs``) was measured at ``as_of`` with these windows (days), so a caller can
    reuse it instead of scanning the data again. Settings its ``attrs`` do not record count as
    matching (a frame a caller built some other way); None never fits."""
    if state is None:
        return False
    want = {"as_of": pd.Timestamp(as_of).date().isoformat(), "recent_days": int(recent_days),
            "baseline_days": int(baseline_days), "change_days": int(change_days)}
    return all(state.attrs.get(k, v) == v for k, v in want.items())


def current_state(tables: dict[str, Any], as_of: str | pd.Timestamp, *, recent_days: int = 90,
                  baseline_days: int = 365, change_days: int = 91, engine: str = "duckdb") -> pd.DataFrame:
    """Each open customer's current RM and current values at ``as_of`` (see :func:`current_state_sql`).

    Adds ``aum_change_3m`` = aum / aum_before - 1 (NaN without an earlier snapshot or when it was
    0), ``recency_days`` (days since the last transaction up to ``as_of``; NaN without one) and
    ``activity_ratio`` = recent transaction rate / baseline rate (per day; NaN without baseline
    activity), and ``tx_fee``/``tx_amount`` over the recent window (the worklist's value columns). This is what worklists and the RM book rank by, not the landmark values.
    """
    for name in ("customers", "transactions", "balances", "assignments", "rms"):
        if name not in tables:
            raise ChurnDataError(f"table {name!r} is required for the current state")
    as_of = pd.Timestamp(as_of).normalize()
    sql = current_state_sql(as_of, recent_days=recent_days, baseline_days=baseline_days, change_days=change_days,
                            has_fee="fee" in columns_of(tables["transactions"], engine))
    df = run_sql(sql, {k: tables[k] for k in ("customers", "transactions", "balances", "assignments", "rms")},
                 engine=engine)
    df["last_tx_date"] = pd.to_datetime(df["last_tx_date"])
    df["n_products"] = df["n_products"].astype(int)
    before = df["aum_before"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        df["aum_change_3m"] = np.where(before > 0, df["aum"] / before - 1.0, np.nan)
        rate_recent = df["n_tx_recent"] / float(recent_days)
        rate_base = df["n_tx_baseline"] / float(baseline_days)
        df["activity_ratio"] = np.where(rate_base > 0, rate_recent / rate_base, np.nan)
    df["recency_days"] = (as_of - df["last_tx_date"]).dt.days.astype(float)
    df["tx_fee"], df["tx_amount"] = df["tx_fee_recent"], df["tx_amount_recent"]  # the worklist's value columns
    df.attrs.update(as_of=as_of.date().isoformat(), recent_days=int(recent_days), baseline_days=int(baseline_days),
                    change_days=int(change_days))
    return df.reset_index(drop=True)
