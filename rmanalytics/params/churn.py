"""Parameters of notebook `02_churn_survival`."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from rmanalytics.params.base import SeededParams


class ChurnParams(SeededParams):
    """Parameters of `notebooks/02_churn_survival.ipynb` (survival-based churn)."""

    tables_required: ClassVar[tuple[str, ...]] = ("customers", "transactions", "balances", "rms", "assignments")
    span_fields: ClassVar[tuple[str, ...]] = ("holdout_days", "lookback_days")
    tables_optional: ClassVar[dict[str, str]] = {
        "interactions": "", "feedback": "",  # contact / complaint covariates of the survival frame when present
    }
    columns_required: ClassVar[dict[str, tuple[str, ...]]] = {"transactions": ("product_family",)}

    churn_definition: Literal["closure", "inactivity"] = Field(
        "closure", description="Churn definition: account closure, or the last activity followed by inactivity_days without any.")
    inactivity_days: int = Field(180, gt=0, le=3660, description="Days without activity that mean churn (inactivity definition).")
    window_start: dt.date | None = Field(
        None, description="First day of the observation window; default: the first transaction date in the data.")
    lookback_days: int = Field(
        90, ge=0, le=3660, description="Days after max(open, window start) used for behaviour covariates; follow-up starts after.")
    time_grid: Literal["day", "week", "month"] = Field("week", description="Grid of event times; coarser grids make Cox fits faster.")
    day_grid_max_customers: int = Field(
        200_000, ge=0, description="Compare the fit with a day-grid refit (time-grid effect table) only up to this many "
                                   "customers (0: never); the refit rebuilds the survival frame on days.")
    fit_max_customers: int = Field(
        1_000_000, ge=0, description="Fit the time-varying Cox models (the main one and the warning audit's) on a seeded random "
                                     "sample of at most this many customers (0: all); every customer is scored. Their "
                                     "customer-month frame takes about 4 GB a million customers.")
    horizon_days: int = Field(180, gt=0, le=3660, description="Churn horizon in days for probabilities, worklists and evaluation.")
    holdout_days: int = Field(
        180, gt=0, le=3660, description="Length in days of the time-based hold-out at the end of the window (model fitted before).")
    covariates: list[str] = Field(
        default_factory=lambda: ["customer_type", "risk_level", "log_aum", "n_products", "n_tx"],
        description="Covariates of the churn model (columns of the survival frame); categorical ones are encoded.")
    model: Literal["cox", "weibull_aft", "lognormal_aft", "loglogistic_aft"] = Field(
        "cox", description="Churn model family.")
    penalizer: float = Field(0.0, ge=0, le=1000, description="Elastic-net penalizer of the churn model.")
    l1_ratio: float = Field(0.0, ge=0, le=1, description="L1 share of the penalty.")
    segments_path: str | None = Field(
        None, description="restricted/tables/segments.parquet of a 01 run (customer_id, segment, lifecycle_stage, tier); "
                          "None: segment by customer_type and value tier from AUM at the landmark. Caution: 01 segments are "
                          "measured at the observation end, after the churn outcomes, so they leak the outcome into "
                          "retention curves and the hold-out baseline; run-all does not pass them.")
    behaviour: bool = Field(
        True, description="Add the monthly behaviour covariates (months since purchase, activity change, AUM trend; "
                          "measured before each month) to the Cox model with RM turnover.")
    warning_families: list[str] = Field(default_factory=lambda: ["wealth"],
                                        description="Product families of the no-purchase warning rule (seed 000).")
    warning_silent_months: int = Field(3, ge=1, le=120, description="Months without a purchase of a watched family (seed 000).")
    warning_lookback_months: int = Field(
        12, ge=1, le=120, description="The customer must have bought the family in this many months before the silent period.")
    warning_activity_drop: float = Field(0.30, gt=0, le=1, description="Activity drop vs own baseline that warns (seed 002).")
    audit_horizons: list[int] = Field(default_factory=lambda: [90, 180],
                                      description="Horizons in days over which the warning audit counts closures.")
    audit_as_of: dt.date | None = Field(
        None, description="Hold-out date of the warning audit (rules see data up to it); default: the last month end "
                          "leaving the longest audit horizon observed.")
    worklist_top_n: int = Field(10, gt=0, le=100_000, description="Customers per RM in the retention worklist.")
    value_col: Literal["aum", "tx_fee", "tx_amount"] = Field(
        "aum", description="Value at stake per customer in the worklist (currency).")

    @model_validator(mode="after")
    def _check(self) -> "ChurnParams":
        if self.window_start is not None and self.observation_end is not None and self.window_start >= self.observation_end:
            raise ValueError("window_start must be before observation_end")
        if not self.audit_horizons or min(self.audit_horizons) <= 0:
            raise ValueError("audit_horizons must be positive day counts")
        return self
