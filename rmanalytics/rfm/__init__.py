"""Customer value segmentation: RFM and BTYD summaries, scores, segments, lifecycle stages,
service tiers, the nine-grid, early warning, segment profiles and plots (docs/domain.md §1-2).

The heavy aggregations (:func:`rfm_table`, :func:`btyd_summary`, :func:`calibration_holdout`,
:func:`activity_change`, :func:`silent_families`, :func:`latest_balances`) run as SQL through
:func:`rmanalytics.engine.run_sql`; the rest works on the per-customer frames they return.
"""

from rmanalytics.rfm.lifecycle import STAGES, activity_change, lifecycle_stages
from rmanalytics.rfm.ninegrid import BandSpec, GridCell, band, cell_summary, default_cells, grid_cells, nine_grid
from rmanalytics.rfm.pipeline import current_segments, segment_snapshot, segment_snapshots
from rmanalytics.rfm.plots import plot_migration_heatmap, plot_nine_grid, plot_rf_heatmap, plot_segment_bars
from rmanalytics.rfm.profile import migration_matrix, segment_profile
from rmanalytics.rules import Condition, Rule, apply_rules, rule, rules_table
from rmanalytics.rfm.scores import BinsCollapsedWarning, rfm_scores
from rmanalytics.rfm.segments import SEGMENTS, localize, rfm_segments
from rmanalytics.rfm.summary import btyd_summary, calibration_holdout, findings_frame, rfm_table
from rmanalytics.rfm.tiers import TIERS, service_tiers
from rmanalytics.rfm.value import latest_balances, latest_balances_many, percentile_rank, wallet_share_proxy
from rmanalytics.rfm.warning import early_warnings, primary_rm, silent_families, top_warnings, warnings_per_rm

__all__ = [
    "STAGES", "SEGMENTS", "TIERS", "BandSpec", "BinsCollapsedWarning", "Condition", "Rule",
    "GridCell", "activity_change", "apply_rules", "band", "cell_summary", "default_cells", "grid_cells", "current_segments", "btyd_summary", "calibration_holdout", "early_warnings",
    "findings_frame", "latest_balances", "latest_balances_many", "lifecycle_stages", "localize", "plot_migration_heatmap", "migration_matrix",
    "nine_grid", "plot_nine_grid", "percentile_rank", "primary_rm", "plot_rf_heatmap", "rfm_scores", "rfm_segments",
    "rfm_table", "rule", "rules_table", "plot_segment_bars", "segment_profile", "segment_snapshot", "segment_snapshots", "service_tiers",
    "silent_families", "top_warnings", "wallet_share_proxy", "warnings_per_rm",
]
