"""Parameters of notebook `05_rm_book`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from rmanalytics.book.health import HealthConfig
from rmanalytics.book.priority import ActionRules
from rmanalytics.params.base import SeededParams


class BookParams(SeededParams):
    """Parameters of `notebooks/05_rm_book.ipynb` (the RM book, branch review and packs)."""

    tables_required: ClassVar[tuple[str, ...]] = (
        "customers", "transactions", "balances", "rms", "assignments", "rm_activity", "kpi_targets")
    tables_optional: ClassVar[dict[str, str]] = {  # issue 14's relationship tables, read by the engine when present
        "digital_activity": "the health score's logins component",
        "feedback": "the health score's complaints and NPS components",
        "holdings": "products held (else the balances' count), maturity reminders and the suitability check",
        "products": "the suitability check (product risk levels)",
        "interactions": "the last contact date, the contact-overdue action and the branch's contact coverage",
    }
    columns_required: ClassVar[dict[str, tuple[str, ...]]] = {"transactions": ("fee", "product_family")}
    span_fields: ClassVar[tuple[str, ...]] = ("validation_days",)

    branch_level: Literal["outlet", "sub_branch", "tier2_branch", "tier1_branch"] = Field(
        "sub_branch", description="Org level of the branch review and the branch packs.")
    horizon_days: int = Field(180, gt=0, description="Churn horizon in days of P(churn) and the value at stake.")
    lookback_days: int = Field(90, ge=1, description="Days of recent behaviour for today's churn covariates and activity trend.")
    value_basis: Literal["clv_income", "aum"] = Field(
        "clv_income", description="Value at stake = P(churn) x this: CLV in the bank's fee income, or AUM (currency).")
    fit_max_customers: int = Field(
        1_000_000, ge=0, description="When churn risk is recomputed here (no 02 run): fit its Cox model on a seeded random "
                                     "sample of at most this many customers (0: all), as notebook 02 does; every customer "
                                     "is scored.")
    clv_horizon_days: int = Field(365, gt=0, description="CLV horizon in days.")
    discount_rate: float = Field(0.1, gt=-1, lt=10, description="Annual discount rate of the CLV.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Health-score weights and scalings.")
    actions: ActionRules = Field(default_factory=ActionRules, description="Next-action rules and thresholds.")
    validation_days: int = Field(
        180, gt=0, description="Length of the hold-out period of the health-score validation (days before observation_end).")
    scorecard_config_path: str = Field("params/scorecards/default.yaml", description="Scorecard config YAML (as 04).")
    write_packs: bool = Field(True, description="Write by_rm/ and by_branch/ packs into the run folder.")
    pack_jobs: int = Field(0, ge=0, description="Worker processes writing the RM packs (0: one per CPU, at most 4).")
    pack_top_n: int = Field(
        200, ge=0, description="Rows of an RM's priority list shown in the pack's book.xlsx and book.html (the first by "
                               "rank; book.csv keeps every customer); 0: every row.")
    segmentation_tables_path: str | None = Field(
        None, description="tables/ folder of a 01 run (segments, customer_cells, warnings); None: recompute.")
    churn_tables_path: str | None = Field(
        None, description="tables/ folder of a 02 run (churn_risk, current_state); None: recompute.")
    kpi_tables_path: str | None = Field(
        None, description="tables/ folder of a 04 run (kpis, scorecard, kpi_points); None: recompute.")
    monthly_measures_path: str | None = Field(
        None, description="rm_month_measures.parquet of a 04 run (its tables/), read when recorded with this run's "
                          "rule settings and data span; None: recompute.")
