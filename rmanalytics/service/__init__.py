"""Service rules of the seeds on customer-level relationship data (optional tables products,
holdings, interactions, feedback, digital_activity): suitability, contact compliance, visit
coverage, maturities, complaint handling, satisfaction. See :mod:`rmanalytics.service.rules`."""

from rmanalytics.service.rules import (DEFAULT_STAGE_INTERVALS, VISIT_KINDS, complaint_handling, complaint_kpis,
                                       contact_rhythm, customer_satisfaction, first_contact_compliance,
                                       hnw_visit_coverage, nps_score, rm_at, suitability_breaches,
                                       upcoming_maturities, visit_coverage_by_rm)
from rmanalytics.service.plots import plot_first_contact_hours, plot_service_by_rm
from rmanalytics.service.summary import has_relationship_data, service_summary


__all__ = [
    "DEFAULT_STAGE_INTERVALS", "VISIT_KINDS", "complaint_handling", "complaint_kpis", "contact_rhythm",
    "customer_satisfaction", "first_contact_compliance", "has_relationship_data", "plot_first_contact_hours",
    "plot_service_by_rm", "hnw_visit_coverage", "nps_score",
    "rm_at", "service_summary", "suitability_breaches", "upcoming_maturities", "visit_coverage_by_rm",
]
