"""Target decomposition: an annual target into monthly milestones with quarterly sprints.

docs/domain.md §3 (001 §三(四)): "10 million of new deposits a year = 800 thousand a month plus a
1.6 million quarterly sprint". Those figures do not add up to 10 million (12 x 0.8 + 4 x 1.6 =
16), so the split is a parameter that always closes: a share ``base_share`` of the annual target
is spread evenly over the 12 months (the monthly milestone) and the remaining ``1 - base_share``
is split evenly over the 4 quarters as a sprint added to each quarter's last month. With
``base_share = 0.96`` a 10 million target gives 800 thousand a month and a 100 thousand sprint per
quarter; monthly milestones always sum to the annual target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, ParameterError
from rmanalytics.kpi.measures import CUSTOMER_LEVEL_KPIS, kpi_table


def decompose_annual_target(
    annual: pd.DataFrame,
    *,
    base_share: float = 0.8,
    year_col: str = "period",
    target_col: str = "target",
    unit_col: str = "unit_id",
) -> pd.DataFrame:
    """Monthly milestones of annual targets.

    Parameters
    ----------
    annual : one row per unit and year: ``unit_id``, ``period`` ('YYYY'), ``target`` (KPI unit,
        e.g. currency) and optionally ``kpi``.
    base_share : share of the annual target spread evenly over months (0-1); the rest forms
        four equal quarterly sprints, booked in the last month of each quarter.

    Returns
    -------
    One row per unit (and kpi), month: ``month`` ('YYYY-MM'), ``quarter`` ('YYYYQn'),
    ``monthly_base``, ``sprint``, ``milestone`` (= base + sprint), ``cumulative_milestone``.
    """
    if not 0.0 <= base_share <= 1.0:
        raise ParameterError(f"base_share must be within [0, 1], got {base_share}")
    bad = ~annual[year_col].astype(str).str.fullmatch(r"\d{4}")
    if bad.any():
        raise DataError(f"decompose_annual_target: {int(bad.sum())} rows of {year_col!r} are not 'YYYY' years, "
                         f"e.g. {annual.loc[bad, year_col].head(3).tolist()}")
    keys = [unit_col] + (["kpi"] if "kpi" in annual.columns else [])
    rows = []
    for _, r in annual.iterrows():
        year = int(r[year_col])
        t = float(r[target_col])
        for m in range(1, 13):
            base = base_share * t / 12.0
            sprint = (1.0 - base_share) * t / 4.0 if m % 3 == 0 else 0.0
            rows.append({**{k: r[k] for k in keys}, "year": str(year), "month": f"{year}-{m:02d}",
                         "quarter": f"{year}Q{(m - 1) // 3 + 1}", "monthly_base": base, "sprint": sprint,
                         "milestone": base + sprint})
    out = pd.DataFrame(rows)
    out["cumulative_milestone"] = out.groupby(keys + ["year"])["milestone"].cumsum()
    return out


def milestone_progress(milestones: pd.DataFrame, actual: pd.DataFrame, *, unit_col: str = "unit_id",
                       actual_col: str = "actual", on_track_ratio: float = 1.0) -> pd.DataFrame:
    """Cumulative actual against cumulative milestones, month by month.

    Parameters
    ----------
    milestones : from :func:`decompose_annual_target`.
    actual : ``unit_id, month ('YYYY-MM'), actual`` (same unit as the target). Months without
        an actual row count as 0 up to the last month that has data; later months are left
        out (not yet observed).
    on_track_ratio : cumulative attainment at or above this is "on track".

    Returns
    -------
    milestones joined with ``actual``, ``cumulative_actual``, ``attainment`` (cumulative actual /
    cumulative milestone), ``on_track``, ``gap`` (cumulative milestone - cumulative actual) and
    the quarter's ``quarter_attainment``.
    """
    keys = [unit_col] + (["kpi"] if "kpi" in milestones.columns and "kpi" in actual.columns else [])
    last = actual["month"].max()
    m = milestones[milestones["month"] <= last].merge(actual[keys + ["month", actual_col]], on=keys + ["month"],
                                                       how="left")
    m[actual_col] = m[actual_col].fillna(0.0)
    m = m.sort_values(keys + ["month"])
    m["cumulative_actual"] = m.groupby(keys + ["year"])[actual_col].cumsum()
    with np.errstate(divide="ignore", invalid="ignore"):
        m["attainment"] = m["cumulative_actual"] / m["cumulative_milestone"].where(m["cumulative_milestone"] != 0)
    m["on_track"] = m["attainment"] >= on_track_ratio
    m["gap"] = m["cumulative_milestone"] - m["cumulative_actual"]
    q = m.groupby(keys + ["quarter"])[[actual_col, "milestone"]].transform("sum")
    m["quarter_attainment"] = q[actual_col] / q["milestone"].where(q["milestone"] != 0)
    return m.reset_index(drop=True)


def annual_targets_from(targets: pd.DataFrame, kpi: str, year: str, *, unit_level: str = "rm") -> pd.DataFrame:
    """Annual targets of ``kpi`` for ``year`` from ``kpi_targets``.

    Uses the 'YYYY' rows when present, else sums the year's quarter rows ('YYYYQn'), else the month
    rows; raises when the year has none (the origin is in column ``source``).
    """
    t = targets[(targets["kpi"] == kpi) & (targets["unit_level"] == unit_level)].copy()
    t["period"] = t["period"].astype(str)
    yr = t[t["period"] == str(year)]
    if not yr.empty:
        return yr[["unit_id", "period", "kpi", "target"]].assign(source="annual")
    for pat, name in ((rf"{year}Q[1-4]", "sum of quarters"), (rf"{year}-\d\d", "sum of months")):
        part = t[t["period"].str.fullmatch(pat)]
        if not part.empty:
            s = part.groupby("unit_id", as_index=False)["target"].sum()
            return s.assign(period=str(year), kpi=kpi, source=name)[["unit_id", "period", "kpi", "target", "source"]]
    raise DataError(f"kpi_targets has no {unit_level} targets of {kpi!r} for {year}")


def target_tracking(tables: dict[str, pd.DataFrame], monthly: pd.DataFrame, *, kpi: str, year: str | None = None,
                    base_share: float = 0.8) -> tuple[pd.DataFrame, str]:
    """Milestones of each RM's annual target of ``kpi`` against the monthly actuals of that year.

    ``monthly``: :func:`~rmanalytics.kpi.rm_month_measures`; ``year`` ('YYYY') defaults to the last
    year in it. The annual targets come from ``tables["kpi_targets"]`` (:func:`annual_targets_from`),
    the milestones from :func:`decompose_annual_target`. Returns ``(milestone_progress table, year)``.
    """
    year = str(year) if year is not None else str(pd.to_datetime(monthly["month_start"]).max().year)
    milestones = decompose_annual_target(annual_targets_from(tables["kpi_targets"], kpi, year), base_share=base_share)
    # the customer-level tables (interactions, feedback, holdings) only for the KPIs they change
    needs_cl = kpi in CUSTOMER_LEVEL_KPIS or kpi.startswith("suitability_")
    actual = kpi_table(tables, freq="month", monthly=monthly, customer_level=needs_cl)
    actual = actual[actual["period"].str.startswith(year)].rename(
        columns={"rm_id": "unit_id", "period": "month", kpi: "actual"})
    return milestone_progress(milestones, actual[["unit_id", "month", "actual"]]), year


def bank_attainment(progress: pd.DataFrame) -> float:
    """Bank-wide cumulative actual / cumulative milestone in the last month of a :func:`milestone_progress` table."""
    bank = progress.groupby("month")[["cumulative_milestone", "cumulative_actual"]].sum()
    return float(bank["cumulative_actual"].iloc[-1] / bank["cumulative_milestone"].iloc[-1])
