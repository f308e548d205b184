"""Survival-based churn: survival frames, retention curves, churn models, evaluation, worklists."""

from rmanalytics.churn.frame import (BEHAVIOUR_COVARIATES, ChurnDataError, active_customers, add_relationship_covariates,
                                     add_segments, behaviour_covariates, compress_frame, covariates_sql,
                                     current_state, current_state_sql, holdout_cutoff, holdout_split, last_activity_sql,
                                     regrid, relationship_events, relationship_frame, split_monthly, state_fits,
                                     survival_frame, time_varying_frame, to_grid)
from rmanalytics.churn.model import ChurnModel, ChurnModelError, breslow_baseline, fit_cox_efron
from rmanalytics.churn.retention import km_by_group, logrank_table, logrank_test, retention_table
from rmanalytics.churn.evaluate import (KMBaseline, brier_scores, calibration_table, evaluate_holdout,
                                        integrated_brier_score, ph_check, ph_narrative, time_grid_effect)
from rmanalytics.churn.worklist import retention_worklist
from rmanalytics.churn.sample import sample_customers
from rmanalytics.churn.audit import (audit_population, customers_at, default_as_of, holdout_scores, rule_flags, score_alerts,
                                     silent_alert, silent_eligible, warning_audit, warning_tradeoff)

__all__ = [
    "BEHAVIOUR_COVARIATES", "behaviour_covariates", "split_monthly", "state_fits",
    "audit_population", "customers_at", "default_as_of", "holdout_scores", "rule_flags", "score_alerts", "silent_alert",
    "silent_eligible", "warning_audit", "warning_tradeoff",
    "KMBaseline", "active_customers", "add_segments", "holdout_cutoff", "brier_scores", "calibration_table", "evaluate_holdout", "integrated_brier_score",
    "km_by_group", "logrank_table", "logrank_test", "ph_check", "ph_narrative", "retention_table",
    "retention_worklist", "sample_customers", "time_grid_effect",
    "ChurnDataError", "ChurnModel", "ChurnModelError", "breslow_baseline", "compress_frame", "covariates_sql", "current_state",
    "current_state_sql",
    "fit_cox_efron", "holdout_split", "last_activity_sql", "regrid", "survival_frame", "time_varying_frame", "to_grid",
    "add_relationship_covariates", "relationship_events", "relationship_frame",
]
