"""Data overview: what is in a set of contract tables (used by ``notebooks/00_data_overview``).

Row counts, date ranges, monthly transaction volumes, the customer mix and the latest AUM, plus
the plots of the overview notebook. Works on any data that meets the contract
(:mod:`rmanalytics.contract`). Aggregations over transactions and balances go through
:func:`rmanalytics.engine.run_sql` (one SQL text per aggregation, DuckDB dialect, Spark-portable).
Money is in currency units; months are calendar months (first day of the month).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from rmanalytics.contract import TABLES
from rmanalytics.engine import run_sql
from rmanalytics.labels import label


def table_summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per table: ``table``, ``rows``, ``columns``, ``contract_columns`` (columns the
    contract defines), ``extra_columns`` (present but not in the contract), in contract order."""
    rows = []
    names = [t for t in TABLES if t in tables] + [t for t in tables if t not in TABLES]
    for name in names:
        df = tables[name]
        contract = TABLES.get(name)
        known = contract.column_names if contract else []
        rows.append({
            "table": name,
            "rows": int(len(df)),
            "columns": int(df.shape[1]),
            "contract_columns": int(sum(c in df.columns for c in known)),
            "extra_columns": ", ".join(c for c in df.columns if contract and c not in known),
        })
    return pd.DataFrame(rows, columns=["table", "rows", "columns", "contract_columns", "extra_columns"])


def date_ranges(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Range of every contract date column: ``table``, ``column``, ``min``, ``max``, ``n_missing``.

    ``n_missing`` counts nulls (for nullable end dates a null means "still open").
    """
    rows = []
    for name, df in tables.items():
        contract = TABLES.get(name)
        if contract is None:
            continue
        for col in contract.columns:
            if col.dtype != "date" or col.name not in df.columns:
                continue
            s = pd.to_datetime(df[col.name])
            rows.append({"table": name, "column": col.name, "min": s.min(), "max": s.max(),
                         "n_missing": int(s.isna().sum())})
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


def monthly_transactions(transactions: pd.DataFrame, *, engine: str | None = None) -> pd.DataFrame:
    """Transactions per calendar month: ``month`` (first day), ``n_transactions``, ``n_customers``
    (distinct), ``amount`` (sum, currency, refunds negative), ``n_refunds`` (amount < 0), ``fee``
    (sum, currency; NaN when the optional ``fee`` column is absent)."""
    sql = monthly_transactions_sql("fee" in transactions.columns)
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


def latest_aum(balances: pd.DataFrame, *, engine: str | None = None) -> pd.DataFrame:
    """Balances of every customer at the latest month-end snapshot (currency units)."""
    return run_sql(latest_aum_sql(), {"balances": balances}, engine=engine).reset_index(drop=True)


def customer_mix(customers: pd.DataFrame, observation_end: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Customers by ``customer_type`` (rows) and ``risk_level`` (columns 1-5) with a ``total``.

    With ``observation_end``, only customers open on that day (opened on or before it and not
    closed on or before it) are counted.
    """
    df = customers
    if observation_end is not None:
        end = pd.Timestamp(observation_end)
        close = pd.to_datetime(df["close_date"])
        df = df[(pd.to_datetime(df["open_date"]) <= end) & (close.isna() | (close > end))]
    tab = pd.crosstab(df["customer_type"], df["risk_level"]).reindex(columns=range(1, 6), fill_value=0)
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


def plot_distribution(values: pd.Series, *, bins: int = 50, clip_quantile: float = 0.99, title: str = "",
                      xlabel: str = "", log_y: bool = False, money: bool = False, lang: str = "en",
                      currency: str = "CNY"):
    """Histogram of ``values`` up to ``clip_quantile``; the note says how many were left out.

    ``money``: the x axis is an amount in ``currency``, scaled to a readable unit (no offset).
    """
    from rmanalytics import fmt

    shown, left_out = clipped(values, clip_quantile)
    fig, ax = _fig()
    ax.hist(shown, bins=bins)
    ax.set_title(title)
    if money:
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
