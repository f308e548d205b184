"""RM KPIs: measures per RM and period, scorecard, roll-up, targets, attribution and drivers.

See docs/domain.md §3. Modules: :mod:`.measures` (KPIs from the contract tables, SQL),
:mod:`.scorecard` (config, scoring, veto, roll-up, cycles), :mod:`.targets` (milestones),
:mod:`.shapley` (exact attribution), :mod:`.drivers` (association of activities with outcomes),
:mod:`.plots`, :mod:`.branch` (org-level scorecards, RM contributions), :mod:`.pool` (shared
performance pool), :mod:`.training` (training effectiveness, Callaway & Sant'Anna), :mod:`.career`
(career stages and review follow-through), :mod:`.dressing` (month-end vs daily-average deposits).
"""

from rmanalytics.kpi.branch import rm_contributions, unit_kpi_table, unit_scorecard, unit_targets
from rmanalytics.kpi.career import STAGES, career_stage, review_actions, stage_comparison
from rmanalytics.kpi.dressing import deposit_definition_gap
from rmanalytics.kpi.drivers import (DriverResult, activity_panel, driver_analysis, fe_regression,
                                     feature_groups)
from rmanalytics.kpi.measures import (KPI_DEFINITIONS, EffectiveRule, KpiDef, QualityRule, definitions_table,
                                      kpi_table, month_calendar, monthly_measures, period_label, rm_month_measures,
                                      rm_month_sql,
                                      segment_fee_table)
from rmanalytics.kpi.measures import CUSTOMER_LEVEL_KPIS, customer_level_measures
from rmanalytics.kpi.plots import plot_milestones, plot_rating_distribution, plot_scorecard_heat, plot_waterfall
from rmanalytics.kpi.pool import performance_pool, plot_pool_allocation, worst_market_step
from rmanalytics.kpi.scorecard import (RATINGS, ScorecardConfig, cycle_flags, kpi_points, load_scorecard_config,
                                       rollup, rollup_kpis, rollup_weights, scorecard)
from rmanalytics.kpi.shapley import (MAX_FACTORS, attribution_span, estimate_market_index, rm_market_split,
                                     shapley_decomposition, unit_contributions, volume_mix_rate,
                                     volume_mix_rate_by_period)
from rmanalytics.kpi.targets import (annual_targets_from, bank_attainment, decompose_annual_target,
                                     milestone_progress, target_tracking)
from rmanalytics.kpi.training import (TrainingEffect, callaway_santanna, naive_twfe, plot_event_study,
                                      training_effect, training_panel)

__all__ = [
    "DriverResult", "activity_panel", "driver_analysis", "fe_regression", "feature_groups",
    "CUSTOMER_LEVEL_KPIS", "customer_level_measures",
    "KPI_DEFINITIONS", "KpiDef", "kpi_table", "segment_fee_table", "month_calendar", "monthly_measures", "period_label", "rm_month_measures", "rm_month_sql",
    "plot_milestones", "plot_rating_distribution", "plot_scorecard_heat", "plot_waterfall",
    "RATINGS", "ScorecardConfig", "cycle_flags", "kpi_points", "load_scorecard_config", "rollup", "rollup_kpis",
    "scorecard",
    "MAX_FACTORS", "estimate_market_index", "rm_market_split", "shapley_decomposition", "unit_contributions",
    "volume_mix_rate", "volume_mix_rate_by_period",
    "annual_targets_from", "attribution_span", "bank_attainment", "decompose_annual_target", "milestone_progress",
    "target_tracking",
    "STAGES", "career_stage", "review_actions", "stage_comparison",
    "deposit_definition_gap", "EffectiveRule", "QualityRule", "definitions_table",
    "performance_pool", "plot_pool_allocation", "worst_market_step",
    "rm_contributions", "unit_kpi_table", "unit_scorecard", "unit_targets", "rollup_weights",
    "TrainingEffect", "callaway_santanna", "naive_twfe", "plot_event_study", "training_effect", "training_panel",
]
