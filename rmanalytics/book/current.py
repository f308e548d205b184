"""The current book: who serves which customer today, and whom nobody serves.

A customer is *open* at ``as_of`` when ``open_date <= as_of`` and it has no ``close_date`` on or
before ``as_of``. An assignment *runs* at ``as_of`` when ``start_date <= as_of`` and its
``end_date`` (exclusive) is null or after ``as_of``. An RM is *employed* at ``as_of`` when their
``exit_date`` is null or after ``as_of``.

- The book: one row per (open customer, employed RM with a running assignment), with the
  recorded ``share`` and ``is_primary`` (largest share, ties by rm_id). A customer shared by two
  RMs appears under both.
- Unassigned: open customers without any running assignment to an employed RM — typically their
  RM left and no successor was named. They go to the branch head, listed with the RM who served
  them last and when that ended.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, rule_message
from rmanalytics.keys import sort_rows

ORG_LEVELS = ("outlet", "sub_branch", "tier2_branch", "tier1_branch")


def _check(df: pd.DataFrame, table: str, cols: list[str]) -> None:
    miss = [c for c in cols if c not in df.columns]
    if miss:
        raise DataError(rule_message(f"{table}", f"needs column(s) {miss}", len(df), [], "see rmanalytics.contract"))


def open_customers(customers: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Customers open at ``as_of`` (opened on or before it, not closed on or before it)."""
    as_of = pd.Timestamp(as_of)
    c = customers
    return c[(c["open_date"] <= as_of) & (c["close_date"].isna() | (c["close_date"] > as_of))]


def outlet_to_unit(rms: pd.DataFrame, level: str) -> pd.Series:
    """Outlet -> org unit at ``level`` (from the rms hierarchy; the first RM of an outlet decides)."""
    if level not in ORG_LEVELS:
        raise ValueError(f"branch level must be one of {ORG_LEVELS}, got {level!r}")
    return rms.drop_duplicates("outlet").set_index("outlet")[level]


def current_book(customers: pd.DataFrame, assignments: pd.DataFrame, rms: pd.DataFrame, as_of,
                 *, branch_level: str = "sub_branch") -> pd.DataFrame:
    """Open customers with every employed RM whose assignment runs at ``as_of`` (see module doc).

    Returns ``customer_id, rm_id, share, is_primary, n_rms, start_date`` (of the running
    assignment), ``rm_branch`` (the RM's unit at ``branch_level``) and ``customer_branch`` (the
    customer's home outlet mapped to ``branch_level``; null when the outlet is not in ``rms``).
    """
    _check(customers, "customers", ["customer_id", "open_date", "close_date", "branch_id"])
    _check(assignments, "assignments", ["customer_id", "rm_id", "start_date", "end_date", "share"])
    _check(rms, "rms", ["rm_id", "exit_date", "outlet", branch_level])
    as_of = pd.Timestamp(as_of)
    cust = open_customers(customers, as_of)
    a = assignments
    a = a[(a["start_date"] <= as_of) & (a["end_date"].isna() | (a["end_date"] > as_of))]
    a = a[a["customer_id"].isin(cust["customer_id"])]
    org = rms.set_index("rm_id")
    unknown = ~a["rm_id"].isin(org.index)
    if unknown.any():
        ex = a.loc[unknown, ["customer_id", "rm_id"]].head(5).to_dict("records")
        raise DataError(rule_message("assignments.rm_id", "must be an rm_id of table rms", int(unknown.sum()), ex))
    exit_ = a["rm_id"].map(org["exit_date"])
    a = a[exit_.isna() | (exit_ > as_of)]
    book = a[["customer_id", "rm_id", "share", "start_date"]].copy()
    book = sort_rows(book, ["customer_id", "share", "rm_id"], [True, False, True])
    book["is_primary"] = ~book["customer_id"].duplicated()
    book["n_rms"] = book.groupby("customer_id")["rm_id"].transform("size").astype(int)
    book["rm_branch"] = book["rm_id"].map(org[branch_level])
    home = cust.set_index("customer_id")["branch_id"].map(outlet_to_unit(rms, branch_level))
    book["customer_branch"] = book["customer_id"].map(home)
    book = book.reset_index(drop=True)
    book.attrs.update(as_of=as_of.date().isoformat(), branch_level=branch_level)
    return book[["customer_id", "rm_id", "share", "is_primary", "n_rms", "start_date", "rm_branch", "customer_branch"]]


def unassigned_customers(customers: pd.DataFrame, assignments: pd.DataFrame, rms: pd.DataFrame, as_of,
                         *, branch_level: str = "sub_branch", book: pd.DataFrame | None = None) -> pd.DataFrame:
    """Open customers with no employed RM at ``as_of`` (the branch head's list).

    Returns ``customer_id, branch`` (home outlet at ``branch_level``, else the last RM's unit),
    ``last_rm_id`` (the RM of the customer's latest assignment, by start date), ``last_rm_exit_date``,
    ``unassigned_since`` (the later of that assignment's end and that RM's exit; null when the
    customer never had an RM) and ``days_unassigned`` (days, null when unknown).
    """
    as_of = pd.Timestamp(as_of)
    book = current_book(customers, assignments, rms, as_of, branch_level=branch_level) if book is None else book
    cust = open_customers(customers, as_of)
    orphan = cust[~cust["customer_id"].isin(book["customer_id"])]
    org = rms.set_index("rm_id")
    past = assignments[assignments["customer_id"].isin(orphan["customer_id"]) & (assignments["start_date"] <= as_of)]
    last = past.sort_values(["customer_id", "start_date", "share"]).drop_duplicates("customer_id", keep="last")
    last = last.set_index("customer_id")
    out = pd.DataFrame({"customer_id": orphan["customer_id"].to_numpy()})
    out["last_rm_id"] = out["customer_id"].map(last["rm_id"])
    out["last_rm_exit_date"] = out["last_rm_id"].map(org["exit_date"])
    end = out["customer_id"].map(last["end_date"])
    since = pd.concat([end.where(end <= as_of), out["last_rm_exit_date"].where(out["last_rm_exit_date"] <= as_of)],
                      axis=1).max(axis=1)
    out["unassigned_since"] = pd.to_datetime(since)
    out["days_unassigned"] = (as_of - out["unassigned_since"]).dt.days.astype(float)
    home = orphan.set_index("customer_id")["branch_id"].map(outlet_to_unit(rms, branch_level))
    out["branch"] = out["customer_id"].map(home)
    fallback = out["last_rm_id"].map(org[branch_level])
    out["branch"] = out["branch"].where(out["branch"].notna(), fallback)
    out = out.sort_values(["branch", "customer_id"], na_position="last").reset_index(drop=True)
    out.attrs.update(as_of=as_of.date().isoformat(), branch_level=branch_level)
    return out[["customer_id", "branch", "last_rm_id", "last_rm_exit_date", "unassigned_since", "days_unassigned"]]


def departed_rms(rms: pd.DataFrame, as_of) -> pd.Index:
    """rm_ids of RMs who left on or before ``as_of``."""
    as_of = pd.Timestamp(as_of)
    return pd.Index(rms.loc[rms["exit_date"].notna() & (rms["exit_date"] <= as_of), "rm_id"])


def customer_columns(tables: dict[str, Any], columns: tuple[str, ...] | list[str], engine: str = "duckdb") -> pd.DataFrame:
    """Those of ``columns`` the customers table has, indexed by customer_id: only these columns
    are copied from a frame, or read from a table the engine reads (a Parquet path)."""
    from rmanalytics.engine import columns_of, run_sql

    cust = tables["customers"]
    have = [c for c in columns if c in columns_of(cust, engine)]
    if isinstance(cust, pd.DataFrame):
        return cust[["customer_id", *have]].set_index("customer_id")
    return run_sql(f"SELECT {', '.join(['customer_id', *have])} FROM customers ORDER BY customer_id",
                   {"customers": cust}, engine=engine).set_index("customer_id")  # sorted: aligned without hashing


def book_inputs(tables: dict[str, Any], as_of, engine: str = "duckdb") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(customers, assignments)`` for :func:`current_book` and :func:`unassigned_customers`.

    Frames are returned as they are. Tables the engine reads (Parquet paths) are read for what
    those two functions use only: the customers open at ``as_of`` (customer_id, open_date,
    close_date, branch_id) and the assignments started on or before ``as_of``, so that a notebook
    need not hold either table in pandas (GBs at 10M customers). The book is the same either way.
    """
    from rmanalytics.engine import columns_of, run_sql

    cust, asg = tables["customers"], tables["assignments"]
    day = f"TIMESTAMP '{pd.Timestamp(as_of).isoformat(sep=' ')}'"
    if not isinstance(cust, pd.DataFrame):
        have = [c for c in ("customer_id", "open_date", "close_date", "branch_id") if c in columns_of(cust, engine)]
        where = (f" WHERE open_date <= {day} AND (close_date IS NULL OR close_date > {day})"
                 if {"open_date", "close_date"} <= set(have) else "")  # else current_book names what is missing
        cust = run_sql(f"SELECT {', '.join(have)} FROM customers{where}", {"customers": cust}, engine=engine)
    if not isinstance(asg, pd.DataFrame):
        have = [c for c in ("customer_id", "rm_id", "start_date", "end_date", "share") if c in columns_of(asg, engine)]
        where = f" WHERE start_date <= {day}" if "start_date" in have else ""
        asg = run_sql(f"SELECT {', '.join(have)} FROM assignments{where}", {"assignments": asg}, engine=engine)
    return cust, asg


def rm_lost(customer_ids, assignments: Any, rms: pd.DataFrame, as_of, *, min_share: float = 0.5,
            engine: str = "duckdb") -> pd.Series:
    """Per customer (index customer_id): 1 if an RM with share >= ``min_share`` left the bank on or
    before ``as_of`` while serving it (the customer lost an RM, successor or not), else 0. Same
    rule as the churn model's time-varying ``rm_left`` covariate (:mod:`rmanalytics.churn.frame`).

    ``assignments``: a frame (read by DuckDB), or a table ``engine`` reads (a Parquet path): only
    the ids of the customers who lost an RM reach pandas."""
    from rmanalytics.engine import run_sql

    as_of = pd.Timestamp(as_of)
    ids = pd.Index(pd.unique(pd.Series(customer_ids)), name="customer_id")
    lost_ids = run_sql(
        "SELECT DISTINCT a.customer_id FROM assignments a JOIN rms r ON a.rm_id = r.rm_id "
        f"WHERE r.exit_date <= TIMESTAMP '{as_of.isoformat(sep=' ')}' AND r.exit_date >= a.start_date "
        f"AND a.share >= {float(min_share)!r} AND (a.end_date IS NULL OR a.end_date >= r.exit_date)",
        {"assignments": assignments, "rms": rms[["rm_id", "exit_date"]]},
        engine="duckdb" if isinstance(assignments, pd.DataFrame) else engine)["customer_id"]
    return pd.Series(ids.isin(set(lost_ids)).astype(int), index=ids, name="rm_left")
