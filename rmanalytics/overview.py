"""Data overview: what is in a set of contract tables (used by ``notebooks/00_data_overview``).

Row counts, date ranges, monthly transaction volumes, the customer mix and the latest AUM, plus
the plots of the overview notebook. Works on any data that meets the contract
(:mod:`rmanalytics.contract`). Aggregations over transactions and balances go through
:func:`rmanalytics.engine.run_sql` (one SQL text per aggregation, DuckDB dialect, Spark-portable).
Money is in currency units; months are calendar months (first day of the month).

Every function takes the tables as pandas frames or as Parquet/CSV paths (``load_tables(...,
lazy=...)``); given a path it aggregates inside the engine and only the (small) result reaches
pandas, so notebook 00 never holds transactions, balances or the relationship tables in memory.
The results are the same either way (counts exactly, statistics to floating-point rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from rmanalytics.contract import TABLES
from rmanalytics.engine import columns_of, resolve_engine, run_sql
from rmanalytics.labels import label

Table = Any  # pandas.DataFrame | Parquet/CSV path | Spark DataFrame (anything run_sql takes)


def _is_frame(src: Any) -> bool:
    return isinstance(src, pd.DataFrame)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _num(x: float) -> str:
    """A double as an exact, portable SQL literal (no DECIMAL, round-trips bit for bit)."""
    return f"CAST('{float(x)!r}' AS DOUBLE)"


def n_rows(src: Table, *, engine: str | None = None) -> int:
    """Number of rows of a table: ``len`` of a frame, ``COUNT(*)`` in the engine for a path."""
    if _is_frame(src):
        return int(len(src))
    return int(run_sql("SELECT COUNT(*) AS n FROM t", {"t": src}, engine=engine)["n"].iloc[0])


def table_summary(tables: Mapping[str, Table], *, engine: str | None = None) -> pd.DataFrame:
    """One row per table: ``table``, ``rows``, ``columns``, ``contract_columns`` (columns the
    contract defines), ``extra_columns`` (present but not in the contract), in contract order.
    A path is counted in the engine (Parquet: from the file footer)."""
    rows = []
    names = [t for t in TABLES if t in tables] + [t for t in tables if t not in TABLES]
    for name in names:
        src = tables[name]
        cols = columns_of(src, engine)
        contract = TABLES.get(name)
        known = contract.column_names if contract else []
        rows.append({
            "table": name,
            "rows": n_rows(src, engine=engine),
            "columns": len(cols),
            "contract_columns": int(sum(c in cols for c in known)),
            "extra_columns": ", ".join(c for c in cols if contract and c not in known),
        })
    return pd.DataFrame(rows, columns=["table", "rows", "columns", "contract_columns", "extra_columns"])


def date_ranges(tables: Mapping[str, Table], *, engine: str | None = None) -> pd.DataFrame:
    """Range of every contract date column: ``table``, ``column``, ``min``, ``max``, ``n_missing``.

    ``n_missing`` counts nulls (for nullable end dates a null means "still open"). Each table (frame
    or path) is scanned once in the engine (MIN, MAX and null count of every date column).
    """
    rows = []
    for name, df in tables.items():
        contract = TABLES.get(name)
        if contract is None:
            continue
        present = columns_of(df, engine)
        cols = [c.name for c in contract.columns if c.dtype == "date" and c.name in present]
        if not cols:
            continue
        sel = ", ".join(f"MIN({_q(c)}) AS min_{i}, MAX({_q(c)}) AS max_{i}, "
                        f"COUNT(*) - COUNT({_q(c)}) AS n_missing_{i}" for i, c in enumerate(cols))
        r = run_sql(f"SELECT {sel} FROM t", {"t": df}, engine=engine).iloc[0]
        for i, c in enumerate(cols):
            lo, hi = r[f"min_{i}"], r[f"max_{i}"]
            rows.append({"table": name, "column": c, "min": pd.Timestamp(lo) if pd.notna(lo) else pd.NaT,
                         "max": pd.Timestamp(hi) if pd.notna(hi) else pd.NaT,
                         "n_missing": int(r[f"n_missing_{i}"])})
    return pd.DataFrame(rows, columns=["table", "column", "min", "max", "n_missing"])


def monthly_transactions_sql(has_fee: bool = True) -> str:
    """SQL (DuckDB dialect) of :func:`monthly_transactions`; input table ``transactions``."""
    fee = "SUM(fee)" if has_fee else "CAST(NULL AS DOUBLE)"
    return f"""
        SELECT CAST(date_trunc('month', CAST(date AS DATE)) AS DATE) AS month,
               COUNT(*) AS n_transactions,
               COUNT(DISTINCT customer_id) AS n_customers,
               SUM(amount) AS amount,
               COUNT(*) FILTER (WHERE amount < 0) AS n_refunds,
               {fee} AS fee
        FROM transactions
        GROUP BY 1
        ORDER BY 1
    """


def monthly_transactions(transactions: Table, *, engine: str | None = None) -> pd.DataFrame:
    """Transactions per calendar month: ``month`` (first day), ``n_transactions``, ``n_customers``
    (distinct), ``amount`` (sum, currency, refunds negative), ``n_refunds`` (amount < 0), ``fee``
    (sum, currency; NaN when the optional ``fee`` column is absent)."""
    sql = monthly_transactions_sql("fee" in columns_of(transactions, engine))
    out = run_sql(sql, {"transactions": transactions}, engine=engine)
    out["month"] = pd.to_datetime(out["month"])
    return out.reset_index(drop=True)


def latest_aum_sql() -> str:
    """SQL (DuckDB dialect) of :func:`latest_aum`; input table ``balances``."""
    return """
        WITH last AS (SELECT MAX(snapshot_date) AS snapshot_date FROM balances)
        SELECT b.customer_id, b.snapshot_date, b.aum, b.deposits, b.loans, b.n_products
        FROM balances b JOIN last l ON b.snapshot_date = l.snapshot_date
        ORDER BY b.customer_id
    """


def latest_aum(balances: Table, *, engine: str | None = None) -> pd.DataFrame:
    """Balances of every customer at the latest month-end snapshot (currency units)."""
    return run_sql(latest_aum_sql(), {"balances": balances}, engine=engine).reset_index(drop=True)


def customer_mix_sql(observation_end: str | pd.Timestamp | None = None) -> str:
    """SQL of :func:`customer_mix` (input ``customers``): counts per type and risk level."""
    where = "customer_type IS NOT NULL AND risk_level IS NOT NULL"
    if observation_end is not None:
        end = f"CAST('{pd.Timestamp(observation_end).isoformat(sep=' ')}' AS TIMESTAMP)"
        where += (f" AND CAST(open_date AS TIMESTAMP) <= {end}"
                  f" AND (close_date IS NULL OR CAST(close_date AS TIMESTAMP) > {end})")
    return (f"SELECT customer_type, risk_level, COUNT(*) AS n FROM customers WHERE {where} "
            "GROUP BY customer_type, risk_level ORDER BY customer_type, risk_level")


def customer_mix(customers: Table, observation_end: str | pd.Timestamp | None = None, *,
                 engine: str | None = None) -> pd.DataFrame:
    """Customers by ``customer_type`` (rows) and ``risk_level`` (columns 1-5) with a ``total``.

    With ``observation_end``, only customers open on that day (opened on or before it and not
    closed on or before it) are counted, in the engine (frames and paths alike).
    """
    counts = run_sql(customer_mix_sql(observation_end), {"customers": customers}, engine=engine)
    tab = counts.pivot_table(index="customer_type", columns="risk_level", values="n", aggfunc="sum",
                             fill_value=0).astype("int64")
    tab = tab.reindex(columns=range(1, 6), fill_value=0)
    tab.columns = [f"risk_{c}" for c in tab.columns]
    tab["total"] = tab.sum(axis=1)
    return tab.rename_axis("customer_type").reset_index()


def clipped(values: pd.Series, quantile: float) -> tuple[pd.Series, int]:
    """Values up to ``quantile`` (inclusive) and the number left out above it (for plotting)."""
    s = pd.Series(values).dropna()
    if s.empty or quantile >= 1:
        return s, 0
    cut = s.quantile(quantile)
    return s[s <= cut], int((s > cut).sum())


@dataclass(frozen=True)
class Distribution:
    """What :func:`plot_distribution` draws and the notebook reports about one numeric column.

    ``counts``/``edges``: the histogram of the values up to the clip quantile (``bins`` equal-width
    bins from their minimum to their maximum, as ``numpy.histogram``); ``left_out``: values above
    the clip quantile ``cut`` (None when nothing is clipped); ``stats``: pandas ``describe()``
    (count, mean, std, min, 25%, 50%, 75%, max; quantiles by linear interpolation);
    ``share_negative``: share of all rows below zero (refunds for amounts); ``lo``/``hi``: the
    smallest and largest value shown (NaN when none).
    """

    name: str
    counts: np.ndarray
    edges: np.ndarray
    lo: float
    hi: float
    left_out: int
    clip_quantile: float
    cut: float | None
    stats: pd.Series
    share_negative: float

    @property
    def median(self) -> float:
        return float(self.stats["50%"])

    def describe(self) -> pd.DataFrame:
        """``stats`` as the one-row frame ``series.describe().to_frame().T`` shows."""
        return self.stats.to_frame(self.name).T


_STATS = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]


def _pandas_distribution(values: pd.Series, bins: int, clip_quantile: float) -> Distribution:
    s = pd.Series(values)
    shown, left_out = clipped(s, clip_quantile)
    dropped = s.dropna()
    cut = float(dropped.quantile(clip_quantile)) if (not dropped.empty and clip_quantile < 1) else None
    arr = shown.to_numpy(dtype=float)
    counts, edges = np.histogram(arr, bins=bins)
    stats = s.astype("float64").describe()
    stats.name = s.name
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (float("nan"), float("nan"))
    return Distribution(str(s.name), counts.astype("int64"), edges, lo, hi, left_out, clip_quantile, cut, stats,
                        float((s < 0).mean()) if len(s) else float("nan"))


def quantiles_sql(column: str, qs: list[float]) -> str:
    """DuckDB-only SQL of exact quantiles (linear interpolation, as pandas) of ``column`` of ``t``.

    Not portable (rule 10 of :mod:`rmanalytics.engine`): on Spark :func:`distribution` uses
    :func:`quantile_rows_sql` and interpolates in Python.
    """
    sel = ", ".join(f"quantile_cont(x, {_num(q)}) AS q{i}" for i, q in enumerate(qs))
    return f"SELECT {sel} FROM (SELECT CAST({_q(column)} AS DOUBLE) AS x FROM t WHERE {_q(column)} IS NOT NULL) s"


def quantile_rows_sql(column: str, positions: list[int]) -> str:
    """Portable SQL: the values at 0-based ``positions`` of ``column`` (nulls left out) in ascending order."""
    pos = ", ".join(str(int(p)) for p in sorted(set(positions)))
    return (f"SELECT i, x FROM (SELECT x, ROW_NUMBER() OVER (ORDER BY x) - 1 AS i FROM "
            f"(SELECT CAST({_q(column)} AS DOUBLE) AS x FROM t WHERE {_q(column)} IS NOT NULL) s) r "
            f"WHERE i IN ({pos}) ORDER BY i")


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation (``numpy.lib._function_base_impl._lerp``), bit for bit."""
    d = b - a
    return float(b - d * (1 - t)) if t >= 0.5 else float(a + d * t)


def _quantiles(src: Table, column: str, qs: list[float], n: int, engine: str, portable: bool) -> list[float]:
    """Quantiles of ``column`` (``n`` non-null values) by linear interpolation, like pandas."""
    if n == 0:
        return [float("nan")] * len(qs)
    if not portable:
        r = run_sql(quantiles_sql(column, qs), {"t": src}, engine=engine).iloc[0]
        return [float(r[f"q{i}"]) for i in range(len(qs))]
    h = [(n - 1) * float(q) for q in qs]
    lo = [int(np.floor(x)) for x in h]
    hi = [min(i + 1, n - 1) for i in lo]
    rows = run_sql(quantile_rows_sql(column, lo + hi), {"t": src}, engine=engine)
    at = dict(zip(rows["i"].astype(int), rows["x"].astype(float)))
    return [_lerp(at[a], at[b], x - a) for a, b, x in zip(lo, hi, h)]


def histogram_sql(column: str, bins: int, lo: float, hi: float, cut: float | None) -> str:
    """Portable SQL of ``numpy.histogram(values, bins)`` over the values of ``column`` up to ``cut``
    (``lo``/``hi``: their minimum and maximum). Input ``edges`` (``i``, ``lo``, ``hi``: the bin
    edges as ``numpy.linspace`` gives them): each value is put in a bin by arithmetic, then moved
    by one where it falls outside that bin's edges, as numpy does, so the counts equal numpy's."""
    keep = f"{_q(column)} IS NOT NULL" + (f" AND {_q(column)} <= {_num(cut)}" if cut is not None else "")
    return (
        "SELECT bin, COUNT(*) AS n FROM ("
        f"SELECT CASE WHEN c.x < e.lo THEN c.i0 - 1 WHEN c.x >= e.hi AND c.i0 < {bins - 1} THEN c.i0 + 1 "
        "ELSE c.i0 END AS bin FROM ("
        f"SELECT x, LEAST(GREATEST(CAST(floor((x - {_num(lo)}) / NULLIF({_num(hi - lo)}, 0) * {int(bins)}) AS BIGINT), "
        f"0), {bins - 1}) AS i0 FROM (SELECT CAST({_q(column)} AS DOUBLE) AS x FROM t WHERE {keep}) s) c "
        "JOIN edges e ON c.i0 = e.i) b GROUP BY bin ORDER BY bin"
    )


def distribution(values: Table, column: str | None = None, *, bins: int = 50, clip_quantile: float = 0.99,
                 engine: str | None = None, portable: bool | None = None) -> Distribution:
    """Histogram and summary statistics of a numeric column (see :class:`Distribution`).

    ``values``: a pandas Series, or a table (frame or Parquet/CSV path) and its ``column``. A
    Series or frame is summarised in pandas; a path in the engine (three scans of the column:
    statistics and quantiles, the clip, the histogram), with the same results: counts exactly,
    statistics to floating-point rounding. Quantiles use DuckDB's ``quantile_cont`` (linear
    interpolation, as pandas); on Spark (``portable``, default: when the engine is Spark) the two
    values around each quantile are fetched with portable SQL and interpolated in Python as numpy
    does.
    """
    if isinstance(values, pd.Series):
        return _pandas_distribution(values, bins, clip_quantile)
    if column is None:
        raise ValueError("distribution: a table needs the name of its column")
    if _is_frame(values):
        return _pandas_distribution(values[column], bins, clip_quantile)
    engine = resolve_engine(engine, values)
    portable = (engine == "spark") if portable is None else portable
    c = _q(column)
    r = run_sql(f"SELECT COUNT({c}) AS n, COUNT(*) AS n_all, AVG(CAST({c} AS DOUBLE)) AS mean, "
                f"stddev_samp(CAST({c} AS DOUBLE)) AS std, MIN(CAST({c} AS DOUBLE)) AS lo, "
                f"MAX(CAST({c} AS DOUBLE)) AS hi, COUNT(*) FILTER (WHERE {c} < 0) AS n_negative FROM t",
                {"t": values}, engine=engine).iloc[0]
    n = int(r["n"])
    clip = n > 0 and clip_quantile < 1
    qs = [0.25, 0.5, 0.75] + ([clip_quantile] if clip else [])
    qv = _quantiles(values, column, qs, n, engine, portable)
    stats = pd.Series([float(n), r["mean"], r["std"], r["lo"], *qv[:3], r["hi"]], index=_STATS,
                      dtype="float64", name=column)
    if n == 1:
        stats["std"] = float("nan")
    cut = qv[3] if clip else None
    lo, hi, left_out = r["lo"], r["hi"], 0
    if clip:
        k = run_sql(f"SELECT MIN(CAST({c} AS DOUBLE)) AS lo, MAX(CAST({c} AS DOUBLE)) AS hi, "
                    f"COUNT(*) AS n_shown FROM t WHERE {c} <= {_num(cut)}", {"t": values}, engine=engine).iloc[0]
        lo, hi, left_out = k["lo"], k["hi"], n - int(k["n_shown"])
    if n == 0:
        counts, edges = np.histogram(np.array([], dtype=float), bins=bins)
    else:
        lo, hi = float(lo), float(hi)
        first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
        edges = np.linspace(first, last, bins + 1)
        e = pd.DataFrame({"i": np.arange(bins, dtype="int64"), "lo": edges[:-1], "hi": edges[1:]})
        h = run_sql(histogram_sql(column, bins, first, last, cut), {"t": values, "edges": e}, engine=engine)
        counts = np.zeros(bins, dtype="int64")
        counts[h["bin"].to_numpy(dtype="int64")] = h["n"].to_numpy(dtype="int64")
    share = int(r["n_negative"]) / int(r["n_all"]) if int(r["n_all"]) else float("nan")
    return Distribution(column, counts.astype("int64"), edges, float(lo), float(hi), int(left_out), clip_quantile, cut, stats, share)


# ----------------------------------------------------------------------------- plots
def _fig(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8, 3.5)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def plot_monthly_transactions(monthly: pd.DataFrame, lang: str = "en"):
    """Bar chart of transactions per month (count); returns a matplotlib Figure."""
    fig, ax = _fig()
    ax.bar(monthly["month"], monthly["n_transactions"], width=20)
    ax.set_title(label("overview.transactions_per_month", lang))
    ax.set_ylabel(label("axis.transactions", lang))
    ax.set_xlabel(label("axis.month", lang))
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    return fig


def plot_distribution(values: pd.Series | Distribution, *, bins: int = 50, clip_quantile: float = 0.99,
                      title: str = "", xlabel: str = "", log_y: bool = False, money: bool = False,
                      lang: str = "en", currency: str = "CNY"):
    """Histogram of ``values`` up to ``clip_quantile``; the note says how many were left out.

    ``values``: a Series, or a precomputed :class:`Distribution` (:func:`distribution`, e.g. of a
    Parquet path: the plot then draws its counts and ``bins``/``clip_quantile`` are its own).
    ``money``: the x axis is an amount in ``currency``, scaled to a readable unit (no offset).
    """
    from rmanalytics import fmt

    d = values if isinstance(values, Distribution) else distribution(values, bins=bins, clip_quantile=clip_quantile)
    left_out, clip_quantile = d.left_out, d.clip_quantile
    fig, ax = _fig()
    ax.hist(d.edges[:-1], bins=d.edges, weights=d.counts)
    ax.set_title(title)
    if money:
        shown = np.array([d.lo, d.hi], dtype=float)
        fmt.money_axis(ax, shown, axis="x", lang=lang, currency=currency, label=xlabel or None)
    else:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(label("axis.count_log" if log_y else "axis.count", lang))
    if log_y:
        ax.set_yscale("log")
    if left_out:
        ax.annotate(label("overview.left_out", lang).format(n=f"{left_out:,d}", q=f"{clip_quantile:.0%}"),
                    xy=(0.99, 0.95), xycoords="axes fraction", ha="right", va="top", fontsize=8)
    return fig


def plot_customer_mix(mix: pd.DataFrame, lang: str = "en"):
    """Stacked bars of customers by type and risk level (counts written on the bars); returns a Figure."""
    fig, ax = _fig(size=(6.5, 3.8))
    risk_cols = [c for c in mix.columns if c.startswith("risk_")]
    bottom = np.zeros(len(mix))
    names = [label(t, lang) for t in mix["customer_type"]]
    for c in risk_cols:
        name = label("axis.risk_level_n", lang).format(n=c.replace("risk_", ""))
        bars = ax.bar(names, mix[c], bottom=bottom, label=name)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in mix[c]], label_type="center", fontsize=7)
        bottom += mix[c].to_numpy()
    ax.set_ylabel(label("axis.customers", lang))
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.set_title(label("overview.customers_by_type_risk", lang))
    ax.legend(fontsize=8, title=label("col.risk_level", lang), title_fontsize=8)
    return fig


def _value_counts(values: list, counts: list) -> pd.Series:
    """Counts by value in the order ``value_counts().sort_index()`` gives (nulls as "(missing)")."""
    vals = ["(missing)" if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in values]
    if any(v == "(missing)" for v in vals) and any(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                                                  for v in vals):
        vals = [float(v) if isinstance(v, (int, np.integer)) else v for v in vals]  # pandas: ints with NaN are floats
    return pd.Series(list(counts), index=pd.Index(vals, dtype=object), dtype="int64").sort_index()


def relationship_profile(tables: Mapping[str, Table], *, engine: str | None = None) -> pd.DataFrame:
    """Profile of the optional relationship tables present: one row per table, attribute and value
    with ``rows`` and ``share`` within the attribute (products by family and risk level, holdings
    by product risk level and open/closed, interactions by kind and channel, feedback by kind,
    digital activity by logins band). Empty frame when none is present. Counted in the engine (one
    GROUP BY per attribute), frames and paths alike; values in ``value_counts().sort_index()`` order."""
    out = []

    def add(table: str, attribute: str, expr: str, inputs: Mapping[str, Table], source: str,
            where: str = "") -> None:
        r = run_sql(f"SELECT v, COUNT(*) AS n FROM (SELECT {expr} AS v FROM {source}"
                    f"{' WHERE ' + where if where else ''}) s GROUP BY v", inputs, engine=engine)
        vc, total = _value_counts(r["v"].tolist(), r["n"].tolist()), int(r["n"].sum())
        for v, n in vc.items():
            out.append({"table": table, "attribute": attribute, "value": str(v), "rows": int(n),
                        "share": float(n / total) if total else float("nan")})

    p, h = tables.get("products"), tables.get("holdings")
    if p is not None:
        add("products", "product_family", "product_family", {"products": p}, "products")
        add("products", "risk_level", "risk_level", {"products": p}, "products")
    if h is not None:
        if p is not None:
            add("holdings", "product_risk_level", "p.risk_level", {"holdings": h, "products": p},
                "holdings h LEFT JOIN products p ON h.product_id = p.product_id")
        add("holdings", "status", "CASE WHEN end_date IS NULL THEN 'held' ELSE 'ended' END", {"holdings": h}, "holdings")
        add("holdings", "fixed_term", "maturity_date IS NOT NULL", {"holdings": h}, "holdings")
    it = tables.get("interactions")
    if it is not None:
        add("interactions", "kind", "kind", {"interactions": it}, "interactions")
        add("interactions", "channel", "channel", {"interactions": it}, "interactions")
    fb = tables.get("feedback")
    if fb is not None:
        add("feedback", "kind", "kind", {"feedback": fb}, "feedback")
        add("feedback", "complaint_resolved", "resolved_at IS NOT NULL", {"feedback": fb}, "feedback",
            where="kind = 'complaint'")
    d = tables.get("digital_activity")
    if d is not None:  # pd.cut's right-closed bins (-1, 0], (0, 2], (2, 5], (5, 10], (10, inf)
        add("digital_activity", "logins_band",
            "CASE WHEN logins IS NULL OR logins <= -1 THEN NULL WHEN logins <= 0 THEN '0' "
            "WHEN logins <= 2 THEN '1-2' WHEN logins <= 5 THEN '3-5' WHEN logins <= 10 THEN '6-10' "
            "ELSE '>10' END", {"digital_activity": d}, "digital_activity")
    return pd.DataFrame(out, columns=["table", "attribute", "value", "rows", "share"])


def relationship_metrics(tables: Mapping[str, Table], *, engine: str | None = None) -> dict[str, float | int]:
    """Key figures of the relationship tables present: ``contacts_per_customer`` (interactions per
    distinct contacted customer) and ``n_complaints`` (feedback rows of kind complaint); counted in
    the engine, frames and paths alike."""
    out: dict[str, float | int] = {}
    it = tables.get("interactions")
    if it is not None:
        r = run_sql("SELECT COUNT(*) AS n, COUNT(DISTINCT customer_id) AS k FROM interactions",
                    {"interactions": it}, engine=engine).iloc[0]
        out["contacts_per_customer"] = float(int(r["n"]) / max(int(r["k"]), 1))
    fb = tables.get("feedback")
    if fb is not None:
        out["n_complaints"] = int(run_sql("SELECT COUNT(*) AS n FROM feedback WHERE kind = 'complaint'",
                                          {"feedback": fb}, engine=engine)["n"].iloc[0])
    return out
