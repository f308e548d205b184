"""Service rules of the seeds on customer-level relationship data (optional tables products,
holdings, interactions, feedback, digital_activity): suitability, contact compliance, visit
coverage, maturities, complaint handling, satisfaction. See :mod:`rmanalytics.service.rules`."""

from rmanalytics.labels import register as _register
from rmanalytics.service.rules import (DEFAULT_STAGE_INTERVALS, VISIT_KINDS, complaint_handling, complaint_kpis,
                                       contact_rhythm, customer_satisfaction, first_contact_compliance,
                                       hnw_visit_coverage, nps_score, rm_at, suitability_breaches,
                                       upcoming_maturities, visit_coverage_by_rm)
from rmanalytics.service.plots import plot_first_contact_hours, plot_service_by_rm
from rmanalytics.service.summary import has_relationship_data, service_summary

_register({
    "suitability_breach": {"en": "Suitability breach", "zh": "适当性违规"},
    "first_contact": {"en": "First contact within 72 h", "zh": "72小时首次联系"},
    "contact_overdue": {"en": "Contact overdue", "zh": "联系逾期"},
    "hnw_visit_coverage": {"en": "HNW visit coverage", "zh": "高净值客户拜访覆盖率"},
    "renewal_contact": {"en": "Renewal contact due", "zh": "到期续作联系"},
    "complaint_resolved_3wd": {"en": "Complaints resolved within 3 working days", "zh": "3个工作日内投诉办结率"},
    "on_time": {"en": "On time", "zh": "按时"},
    "late": {"en": "Late", "zh": "逾期"},
    "missed": {"en": "Missed", "zh": "未联系"},
    "pending": {"en": "Pending", "zh": "待联系"},
})

__all__ = [
    "DEFAULT_STAGE_INTERVALS", "VISIT_KINDS", "complaint_handling", "complaint_kpis", "contact_rhythm",
    "customer_satisfaction", "first_contact_compliance", "has_relationship_data", "plot_first_contact_hours",
    "plot_service_by_rm", "hnw_visit_coverage", "nps_score",
    "rm_at", "service_summary", "suitability_breaches", "upcoming_maturities", "visit_coverage_by_rm",
]
