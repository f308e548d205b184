"""The RM book: current book, nine-grid cells, health score, service-priority list, "my
scorecard", branch review and the per-RM / per-branch packs (notebook 05)."""

from rmanalytics.book.build import build_book, customer_frame
from rmanalytics.book.current import (book_inputs, current_book, customer_columns, departed_rms, open_customers, rm_lost,
                                      unassigned_customers)
from rmanalytics.book.health import COMPONENTS, GROUPS, HealthConfig, health_components, health_features, health_score, validate_health
from rmanalytics.book.packs import column_label, pack_workers, write_branch_packs, write_html, write_rm_packs, write_xlsx
from rmanalytics.book.plots import plot_health_distribution, plot_health_validation
from rmanalytics.book.priority import ActionRules, next_actions, priority_list
from rmanalytics.book.relationship import add_relationship, relationship_features
from rmanalytics.book.review import branch_review, my_scorecard
from rmanalytics.book.value import churn_risk_now, clv_income

__all__ = [
    "COMPONENTS", "GROUPS", "ActionRules", "HealthConfig", "add_relationship", "book_inputs", "branch_review", "build_book", "churn_risk_now",
    "clv_income", "column_label", "current_book", "customer_columns", "customer_frame", "departed_rms", "health_components",
    "health_features", "health_score", "my_scorecard", "next_actions", "open_customers", "plot_health_distribution",
    "plot_health_validation", "priority_list", "relationship_features", "rm_lost", "unassigned_customers", "validate_health",
    "pack_workers", "write_branch_packs", "write_html", "write_rm_packs", "write_xlsx",
]
