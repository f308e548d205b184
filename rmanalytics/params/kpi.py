"""Parameters of notebook `04_kpi_attribution`."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from rmanalytics.params.base import SeededParams


class KpiParams(SeededParams):
    """Parameters of `notebooks/04_kpi_attribution.ipynb`."""

    tables_required: ClassVar[tuple[str, ...]] = (
        "customers", "transactions", "balances", "rms", "assignments", "rm_activity", "kpi_targets")
    tables_optional: ClassVar[dict[str, str]] = {
        "daily_balances": "deposits from daily balances (balances.deposits_avg, else month-end snapshots, is used)",
        "products": "customer-level suitability KPIs", "holdings": "customer-level suitability KPIs",
        "interactions": "customer-level visit coverage (rm_activity otherwise)",
        "feedback": "customer-level complaint rate and NPS (rm_activity otherwise)",
    }
    columns_required: ClassVar[dict[str, tuple[str, ...]]] = {"transactions": ("product_family",)}

    scorecard_config_path: str = Field(
        "params/scorecards/default.yaml",
        description="Scorecard config YAML (dimensions, KPIs, weights, rules, veto, bands, bonus); a relative "
                    "path is looked up in the working folder, the project folder, then the packaged defaults.")
    review_freq: Literal["quarter", "year"] = Field("quarter", description="Review cycle of the scorecard.")
    effective_window_days: int = Field(
        90, ge=1, le=3660, description="Window (days after opening) of effective new customers (asset threshold) "
                                       "and of new_active_customers (a positive transaction).")
    attribution_base: str | None = Field(
        None, description="Base period of the attribution ('YYYYQn' or 'YYYY'); None: the first period.")
    attribution_current: str | None = Field(
        None, description="Current period of the attribution; None: the last period.")
    attribution_policy: Literal["direct", "chain"] = Field(
        "direct", description="direct: compare base and current; chain: add up period-on-period splits.")
    segment_column: str = Field("customer_type", description="customers column for the volume/mix/rate split.")
    target_kpi: str = Field("fee_income", description="KPI whose annual target is decomposed into milestones.")
    target_year: str | None = Field(None, description="Year of the milestones ('YYYY'); None: last year in data.")
    base_share: float = Field(
        0.8, ge=0, le=1, description="Share of the annual target spread evenly over months; the rest is "
                                     "four quarterly sprints.")
    driver_lags: list[Annotated[int, Field(ge=0, le=24)]] = Field(
        [0, 1], min_length=1, max_length=12, description="Activity lags (months) in the driver panel.")
    driver_splits: int = Field(5, ge=2, le=50, description="Cross-validation folds (by RM and by time).")
    driver_repeats: int = Field(5, ge=1, le=1000, description="Permutation repeats per fold for importance.")
    corr_threshold: float = Field(
        0.9, gt=0, le=1, description="Activities correlated above this (|r|) are permuted as one group.")
    driver_jobs: int = Field(
        0, ge=0, le=8, description="Threads building the driver forest's trees (0: the CPUs this notebook may use: all of "
                                   "them alone, its share when run-all runs notebooks side by side). The results are "
                                   "the same for any value; more threads only shorten the wall time.")
