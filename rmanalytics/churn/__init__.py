"""Survival-based churn: survival frames, retention curves, churn models, evaluation, worklists."""

from rmanalytics.churn.frame import (BEHAVIOUR_COVARIATES, ChurnDataError, add_segments, behaviour_covariates,
                                     behaviour_sql, compress_frame, covariates_sql, holdout_split, last_activity_sql,
                                     split_monthly, survival_frame, time_varying_frame, to_grid)
from rmanalytics.churn.model import ChurnModel, ChurnModelError, breslow_baseline, fit_cox_efron
from rmanalytics.churn.retention import km_by_group, logrank_table, logrank_test, retention_table
from rmanalytics.churn.evaluate import (KMBaseline, brier_scores, calibration_table, evaluate_holdout,
                                        integrated_brier_score, ph_check, ph_narrative)
from rmanalytics.churn.worklist import retention_worklist
from rmanalytics.churn.audit import (customers_at, default_as_of, holdout_scores, rule_flags, score_alerts,
                                     silent_alert, silent_eligible, warning_audit, warning_tradeoff)
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
    "any_rule": {"en": "Any warning rule", "zh": "任一预警规则"},
    "churn_model_top_k": {"en": "Churn model, top k", "zh": "流失模型前k名"},
    "months_since_purchase": {"en": "Months since last purchase", "zh": "距上次购买月数"},
    "activity_change": {"en": "Activity change vs own baseline", "zh": "活跃度较自身基线变化"},
    "aum_trend": {"en": "AUM trend (3 months)", "zh": "资产余额趋势（3个月）"},
})

__all__ = [
    "BEHAVIOUR_COVARIATES", "behaviour_covariates", "behaviour_sql", "split_monthly",
    "customers_at", "default_as_of", "holdout_scores", "rule_flags", "score_alerts", "silent_alert",
    "silent_eligible", "warning_audit", "warning_tradeoff",
    "KMBaseline", "add_segments", "brier_scores", "calibration_table", "evaluate_holdout", "integrated_brier_score",
    "km_by_group", "logrank_table", "logrank_test", "ph_check", "ph_narrative", "retention_table",
    "retention_worklist",
    "ChurnDataError", "ChurnModel", "ChurnModelError", "breslow_baseline", "compress_frame", "covariates_sql",
    "fit_cox_efron", "holdout_split", "last_activity_sql", "survival_frame", "time_varying_frame", "to_grid",
]
