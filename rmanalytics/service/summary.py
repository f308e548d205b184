"""One call for a notebook: every service rule on one ``as_of`` day, as tables plus headline figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from rmanalytics.contract import OPTIONAL_TABLES
from rmanalytics.service import rules


def has_relationship_data(tables: Mapping[str, Any], *names: str) -> bool:
    """True when the given optional tables (default: all five) are present."""
    return all(n in tables and tables[n] is not None for n in (names or OPTIONAL_TABLES))


def service_summary(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, first_contact_hours: float = 72.0,
                    response_hours: float = 48.0, resolve_workdays: int = 3, target_share: float = 0.8,
                    hnw_aum: float = 1_000_000.0, visits_per_year: float = 4.0, major_risk_gap: int = 2,
                    maturity_horizon_days: int = 90, lead_months: int = 1) -> dict[str, Any]:
    """All service rules on ``as_of`` (default: last data day). Returns ``{"tables": {...},
    "metrics": {...}}`` with suitability breaches, first-contact compliance, HNW visit coverage
    (per customer and per RM), upcoming maturities and complaint KPIs (per RM and overall)."""
    as_of = rules._as_of(tables, as_of)
    suit = rules.suitability_breaches(tables, as_of, major_risk_gap=major_risk_gap)
    first = rules.first_contact_compliance(tables, first_contact_hours=first_contact_hours, as_of=as_of)
    hnw = rules.hnw_visit_coverage(tables, as_of=as_of, hnw_aum=hnw_aum, visits_per_year=visits_per_year)
    by_rm = rules.visit_coverage_by_rm(hnw)
    mat = rules.upcoming_maturities(tables, as_of=as_of, horizon_days=maturity_horizon_days, lead_months=lead_months)
    handled = rules.complaint_handling(tables["feedback"], as_of=as_of, response_hours=response_hours,
                                       resolve_workdays=resolve_workdays)
    kpi_rm = rules.complaint_kpis(handled, by="rm_id", target_share=target_share)
    kpi_all = rules.complaint_kpis(handled, by=None, target_share=target_share)
    judged = first[first["status"] != "pending"]
    n_h = rules.holdings_bought(tables, as_of)
    metrics = {
        "as_of": as_of.date().isoformat(),
        "suitability_breaches": int(len(suit)),
        "suitability_major_breaches": int(suit["major"].sum()),
        "suitability_breach_rate": float(len(suit) / n_h) if n_h else float("nan"),
        "first_contact_customers": int(len(judged)),
        "first_contact_compliance": float(judged["compliant"].mean()) if len(judged) else float("nan"),
        "hnw_customers": int(len(hnw)),
        "hnw_tier_coverage": float(hnw["compliant"].mean()) if len(hnw) else float("nan"),
        "upcoming_maturities": int(len(mat)),
        "maturity_contacts_overdue": int(mat["contact_overdue"].sum()),
        "complaints": int(len(handled)),
        "complaints_responded_in_time": float(kpi_all["share_responded_in_time"].iloc[0]) if len(handled) else float("nan"),
        "complaints_resolved_in_time": float(kpi_all["share_resolved_in_time"].iloc[0]) if len(handled) else float("nan"),
    }
    return {"tables": {"suitability_breaches": suit, "first_contact": first, "hnw_visits": hnw,
                       "hnw_visits_by_rm": by_rm, "maturities": mat, "complaints": handled,
                       "complaint_kpis_by_rm": kpi_rm},
            "metrics": metrics}
