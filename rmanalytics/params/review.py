"""Parameters of notebook `06_rm_review` (issue 18: seed KPI definitions, branch scorecards,
performance pool, training effectiveness, career stages)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from rmanalytics.params.base import SeededParams


class RmReviewParams(SeededParams):
    """Parameters of `notebooks/06_rm_review.ipynb`."""

    tables_required: ClassVar[tuple[str, ...]] = (
        "customers", "transactions", "balances", "rms", "assignments", "rm_activity", "kpi_targets")
    tables_optional: ClassVar[dict[str, str]] = {
        "training": "training effectiveness and whether mandatory training followed a review",
        "daily_balances": "deposits from daily balances (balances.deposits_avg, else month-end snapshots, is used)",
    }
    columns_required: ClassVar[dict[str, tuple[str, ...]]] = {"transactions": ("product_family", "fee")}

    scorecard_config_path: str = Field(
        "params/scorecards/default.yaml",
        description="Scorecard config YAML, used for RMs and for every org level.")
    review_freq: Literal["quarter", "year"] = Field("quarter", description="Review cycle.")
    strategic_loan_weight: float = Field(
        1.5, ge=0, description="Weight of strategic (inclusive / green) loans in weighted_loan_volume (bank's choice).")
    effective_aum_retail: float = Field(
        50_000.0, ge=0, description="AUM (CNY) a new retail customer must hold to be 'effective'.")
    effective_aum_corporate: float = Field(
        500_000.0, ge=0, description="AUM (CNY) a new corporate customer must hold to be 'effective'.")
    effective_hold_months: int = Field(
        1, ge=1, description="Consecutive month-ends the effective AUM must be held.")
    effective_window_days: int = Field(
        90, ge=1, description="Days after opening within which the AUM must be reached.")
    quality_aum_retail: float = Field(
        200_000.0, ge=0, description="AUM (CNY) of the strategic (quality) tier, retail, for quality churn.")
    quality_aum_corporate: float = Field(
        5_000_000.0, ge=0, description="AUM (CNY) of the strategic (quality) tier, corporate.")
    unit_level: Literal["outlet", "sub_branch", "tier2_branch", "tier1_branch"] = Field(
        "tier2_branch", description="Org level of the branch scorecard.")
    unit_target_fallback: Literal["from_rms", "none"] = Field(
        "from_rms", description="Units without own kpi_targets: targets from their RMs' (sum/mean), or none.")
    rollup_weight: Literal["unweighted", "headcount", "volume"] = Field(
        "headcount", description="Weighting of RM scores in the roll-up.")
    rollup_volume: str = Field("aum", description="KPI column used as business volume when rollup_weight is volume.")
    pool_share: float = Field(0.05, ge=0, le=1, description="Share of the bonus budget set aside as the pool.")
    bonus_budget: float = Field(1_000_000.0, ge=0, description="Bonus budget of the period (CNY).")
    pool_cap_share: float = Field(0.25, gt=0, le=1, description="Largest share of the pool one RM can receive.")
    pool_cap_to_shortfall: float | None = Field(
        1.0, gt=0, description="An RM receives at most this multiple of its market-driven shortfall; None: no cap.")
    pool_own_share_max: float = Field(
        0.5, ge=0, le=1, description="Largest share of the negative parts that may be the RM's own.")
    pool_base: str | None = Field(None, description="Base period of the pool; None: the step with the largest market fall.")
    pool_current: str | None = Field(None, description="Current period of the pool (with pool_base).")
    training_kpi: str = Field("fee_income", description="KPI whose response to training is estimated.")
    training_normalize_by: str | None = Field(
        "expected_fee", description="Outcome is log(training_kpi / this); None: log(training_kpi).")
    training_control: Literal["not_yet_treated", "never_treated"] = Field(
        "not_yet_treated", description="Control RMs of the group-time comparisons.")
    training_anticipation: int = Field(
        1, ge=0, description="Periods before the start left out of the base (1 skips the review quarter).")
    training_n_boot: int = Field(999, ge=0, description="RM-cluster bootstrap resamples.")
    stage_bounds: list[float] = Field([1.0, 3.0], description="Tenure (years) ending the new and growing stages.")
    bottom_share: float = Field(0.05, ge=0, lt=1, description="Bottom share of each career stage flagged for review.")
    training_within_days: int = Field(
        92, ge=1, description="Days after a review within which mandatory training counts as followed through.")
    monthly_measures_path: str | None = Field(
        None, description="rm_month_measures.parquet of a 04 run (its tables/), read when recorded with this run's "
                          "rule settings and data span; None: recompute.")

    @model_validator(mode="after")
    def _check(self) -> "RmReviewParams":
        if len(self.stage_bounds) != 2 or not 0 < self.stage_bounds[0] < self.stage_bounds[1]:
            raise ValueError(f"stage_bounds must be two increasing positive years, got {self.stage_bounds}")
        if (self.pool_base is None) != (self.pool_current is None):
            raise ValueError("give both pool_base and pool_current, or neither")
        return self
