"""Parameters of notebook `03_loyalty_clv`."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from rmanalytics.params.base import SeededParams


class LoyaltyParams(SeededParams):
    """Parameters of `notebooks/03_loyalty_clv.ipynb`."""

    tables_required: ClassVar[tuple[str, ...]] = ("transactions",)
    span_fields: ClassVar[tuple[str, ...]] = ("holdout_days",)
    tables_optional: ClassVar[dict[str, str]] = {
        "customers": "one model per customer_type (one group 'all' is fitted)",
        "balances": "AUM-based service tiers of the recomputed segments",
    }

    time_unit_days: int = Field(7, gt=0, le=366, description="Days per model time unit (7: recency and T in weeks).")
    calibration_end: dt.date | None = Field(
        None, description="Last day of the calibration period; default: observation_end minus holdout_days."
    )
    holdout_days: int = Field(182, gt=0, le=3660, description="Length of the hold-out period in days.")
    horizon_days: int = Field(365, gt=0, le=3660, description="CLV horizon in days.")
    discount_rate: float = Field(0.10, gt=-1, lt=10, description="Annual discount rate for CLV (0.10 = 10% a year).")
    clv_time_unit: Literal["day", "week", "month", "quarter", "year"] = Field(
        "month", description="Discounting period of the CLV; per-period rate = (1+annual)^(days/365)-1."
    )
    penalizer: float = Field(0.0, ge=0, le=1000, description="L2 penalizer of the BG/NBD and Gamma-Gamma fits (0: plain ML).")
    refunds: Literal["include", "exclude"] = Field(
        "exclude", description="Refund rows (amount < 0) in the purchase summary: leave out or count as purchases."
    )
    max_frequency_bucket: int = Field(7, gt=0, le=100, description="Top calibration-frequency bucket of the holdout table.")
    segments_path: str | None = Field(
        None, description="restricted/tables/segments.parquet of a 01 run (customer_id, segment, lifecycle_stage, "
        "tier); None: recompute them at observation_end with the default segmentation rules of 01."
    )

    def segmentation_args(self) -> dict:
        """Arguments of :func:`rmanalytics.rfm.current_segments` when the segments are recomputed:
        the default segmentation of notebook 01."""
        from rmanalytics.params.segmentation import SegmentationParams

        return SegmentationParams().snapshot_args()

    @model_validator(mode="after")
    def _check_dates(self) -> "LoyaltyParams":
        if self.calibration_end is not None and self.observation_end is not None:
            if self.calibration_end >= self.observation_end:
                raise ValueError(
                    f"calibration_end ({self.calibration_end}) must be before observation_end ({self.observation_end})"
                )
        return self
