"""RM KPIs: measures per RM and period, scorecard, roll-up, targets, attribution and drivers.

See docs/domain.md §3. Modules: :mod:`.measures` (KPIs from the contract tables, SQL),
:mod:`.scorecard` (config, scoring, veto, roll-up, cycles), :mod:`.targets` (milestones),
:mod:`.shapley` (exact attribution), :mod:`.drivers` (association of activities with outcomes),
:mod:`.plots`, :mod:`.simulate` (small generator with known truth).
"""

from rmanalytics.kpi.drivers import (DriverResult, activity_panel, driver_analysis, fe_regression,
                                     feature_groups)
from rmanalytics.kpi.measures import (KPI_DEFINITIONS, KpiDef, kpi_table, month_calendar, period_label, segment_fee_table,
                                      rm_month_measures, rm_month_sql)
from rmanalytics.kpi.plots import plot_milestones, plot_rating_distribution, plot_scorecard_heat, plot_waterfall
from rmanalytics.kpi.scorecard import (RATINGS, ScorecardConfig, cycle_flags, kpi_points, load_scorecard_config,
                                       rollup, rollup_kpis, scorecard)
from rmanalytics.kpi.shapley import (MAX_FACTORS, attribution_span, estimate_market_index, rm_market_split,
                                     shapley_decomposition, unit_contributions, volume_mix_rate,
                                     volume_mix_rate_by_period)
from rmanalytics.kpi.targets import (annual_targets_from, bank_attainment, decompose_annual_target,
                                     milestone_progress, target_tracking)

__all__ = [
    "DriverResult", "activity_panel", "driver_analysis", "fe_regression", "feature_groups",
    "KPI_DEFINITIONS", "KpiDef", "kpi_table", "segment_fee_table", "month_calendar", "period_label", "rm_month_measures", "rm_month_sql",
    "plot_milestones", "plot_rating_distribution", "plot_scorecard_heat", "plot_waterfall",
    "RATINGS", "ScorecardConfig", "cycle_flags", "kpi_points", "load_scorecard_config", "rollup", "rollup_kpis",
    "scorecard",
    "MAX_FACTORS", "estimate_market_index", "rm_market_split", "shapley_decomposition", "unit_contributions",
    "volume_mix_rate", "volume_mix_rate_by_period",
    "annual_targets_from", "attribution_span", "bank_attainment", "decompose_annual_target", "milestone_progress",
    "target_tracking",
]
