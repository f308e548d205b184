"""One computation of the whole RM book: per-customer results joined onto the current book."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rmanalytics.book.current import book_inputs, current_book, unassigned_customers
from rmanalytics.book.health import HealthConfig, health_features, health_score
from rmanalytics.book.priority import ActionRules, priority_list
from rmanalytics.book.relationship import add_relationship
from rmanalytics.keys import first_per_key, left_join, map_keys


def customer_frame(tables: dict[str, Any], as_of, *, current: pd.DataFrame, segments: pd.DataFrame | None,
                   cells: pd.DataFrame | None, warnings: pd.DataFrame | None, risk: pd.DataFrame,
                   clv: pd.DataFrame | None, health: HealthConfig | None = None,
                   engine: str = "duckdb") -> pd.DataFrame:
    """Per open customer at ``as_of``: segment, lifecycle_stage, tier, cell, service_plan, aum,
    aum_change_3m, p_churn, rm_left, risk_drivers, p_alive, clv_income, health (+ groups, hc_*),
    warning_detail, and the optional last_contact / next_maturity / suitability_breach.
    ``attrs["coverage"]``: the health components' coverage (see :func:`health_score`)."""
    as_of = pd.Timestamp(as_of).normalize()
    f = health_features(tables, as_of, current=current, clv=clv, engine=engine)
    h = health_score(f, health)
    out = pd.concat([f[["customer_id", "aum", "aum_change_3m"]], h], axis=1)
    for frame, cols in ((segments, ["segment", "lifecycle_stage", "tier"]), (cells, ["cell", "service_plan"]),
                        (risk, ["p_churn", "rm_left", "risk_drivers"]), (clv, ["p_alive", "clv_income"])):
        if frame is not None:  # columns added to out, not a copy of it per table (10M customers: GBs)
            out = left_join(out, first_per_key(frame[["customer_id", *[c for c in cols if c in frame.columns]]]))
    if warnings is not None and len(warnings):
        out["warning_detail"] = map_keys(out["customer_id"], first_per_key(warnings).set_index("customer_id")["detail"])
    for c in ("next_maturity", "suitability_breach"):  # the holdings' (read once, with the health features)
        if c in f.columns:
            out[c] = f[c].to_numpy()
    out = add_relationship(out, tables, as_of, engine=engine, read=("interactions",))  # last_contact
    out.attrs["coverage"] = dict(h.attrs["coverage"])  # share of customers with data per health component
    return out


def build_book(tables: dict[str, Any], as_of, *, risk: pd.DataFrame | None = None, clv: pd.DataFrame | None = None,
               segments: pd.DataFrame | None = None, cells: pd.DataFrame | None = None,
               warnings: pd.DataFrame | None = None, current: pd.DataFrame | None = None,
               branch_level: str = "sub_branch", value_basis: str = "clv_income", horizon_days: int = 180,
               health: HealthConfig | None = None, rules: ActionRules | None = None,
               currency: str = "CNY", engine: str = "duckdb",
               customers: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The whole book in one pass: ``{"book", "unassigned", "customers", "priority"}``.

    ``risk`` from :func:`rmanalytics.book.value.churn_risk_now`, ``clv`` from
    :func:`rmanalytics.book.value.clv_income` (or None), ``segments``/``cells``/``warnings`` from
    notebook 01 (tables segments, customer_cells, warnings) or recomputed. ``customers``: their
    :func:`customer_frame`, when made already (then ``risk`` ... ``current`` and ``health`` are
    not used): the caller can free those inputs first, GBs at 10M customers.
    """
    from rmanalytics.churn.frame import current_state

    as_of = pd.Timestamp(as_of).normalize()
    if customers is None and risk is None:
        raise ValueError("build_book needs risk (churn_risk_now) or customers (customer_frame)")
    cust_rows, asg_rows = book_inputs(tables, as_of, engine)  # frames as they are; paths: only what is used
    book = current_book(cust_rows, asg_rows, tables["rms"], as_of, branch_level=branch_level)
    un = unassigned_customers(cust_rows, asg_rows, tables["rms"], as_of, branch_level=branch_level, book=book)
    del cust_rows, asg_rows
    if customers is not None:
        cust = customers
    else:
        cur = current if current is not None else current_state(tables, as_of, engine=engine)
        cust = customer_frame(tables, as_of, current=cur, segments=segments, cells=cells, warnings=warnings,
                              risk=risk, clv=clv, health=health, engine=engine)
    if value_basis == "clv_income" and "clv_income" in cust.columns and cust["clv_income"].dtype != float:
        cust["clv_income"] = cust["clv_income"].astype(float)  # (in place: a given frame is not copied)
    pri = priority_list(book, cust, as_of, value_basis=value_basis, rules=rules, horizon_days=horizon_days,
                        currency=currency)
    return {"book": book, "unassigned": un, "customers": cust, "priority": pri}
