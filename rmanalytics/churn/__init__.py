"""Survival-based churn: survival frames, retention curves, churn models, evaluation, worklists."""

from rmanalytics.churn.frame import (ChurnDataError, add_segments, compress_frame, covariates_sql, current_state,
                                     current_state_sql, holdout_split,
                                     last_activity_sql, survival_frame, time_varying_frame, to_grid)
from rmanalytics.churn.model import ChurnModel, ChurnModelError, breslow_baseline, fit_cox_efron
from rmanalytics.churn.retention import km_by_group, logrank_table, logrank_test, retention_table
from rmanalytics.churn.evaluate import (KMBaseline, brier_scores, calibration_table, evaluate_holdout,
                                        integrated_brier_score, ph_check, ph_narrative)
from rmanalytics.churn.worklist import retention_worklist
from rmanalytics.labels import register as _register

_register({
    "value_low": {"en": "Low value", "zh": "低价值"},
    "value_mid": {"en": "Mid value", "zh": "中价值"},
    "value_high": {"en": "High value", "zh": "高价值"},
    "retail": {"en": "Retail", "zh": "零售客户"},
    "corporate": {"en": "Corporate", "zh": "对公客户"},
    "unsegmented": {"en": "Unsegmented", "zh": "未分群"},
    "retention": {"en": "Retention", "zh": "留存率"},
    "churn_probability": {"en": "Churn probability", "zh": "流失概率"},
    "value_at_stake": {"en": "Value at stake", "zh": "风险价值"},
    "retention_worklist": {"en": "Retention worklist", "zh": "客户挽留清单"},
    "hazard_ratio": {"en": "Hazard ratio", "zh": "风险比"},
})

__all__ = [
    "KMBaseline", "add_segments", "brier_scores", "calibration_table", "evaluate_holdout", "integrated_brier_score",
    "km_by_group", "logrank_table", "logrank_test", "ph_check", "ph_narrative", "retention_table",
    "retention_worklist",
    "ChurnDataError", "ChurnModel", "ChurnModelError", "breslow_baseline", "compress_frame", "covariates_sql", "current_state", "current_state_sql",
    "fit_cox_efron", "holdout_split", "last_activity_sql", "survival_frame", "time_varying_frame", "to_grid",
]
