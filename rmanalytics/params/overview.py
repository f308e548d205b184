"""Parameters of notebook `00_data_overview`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from rmanalytics.params.base import NotebookParams


class OverviewParams(NotebookParams):
    """Parameters of `notebooks/00_data_overview.ipynb`."""

    tables_required: ClassVar[tuple[str, ...]] = ("transactions",)
    tables_optional: ClassVar[dict[str, str]] = {
        "customers": "the customer mix by type and risk level",
        "balances": "the AUM distribution",
        "rms": "", "assignments": "", "rm_activity": "", "kpi_targets": "", "training": "", "daily_balances": "",
    }

    validate_data: bool = Field(
        True, description="Validate every table against the data contract while loading (stop on violations)."
    )
    amount_bins: int = Field(50, ge=5, le=500, description="Number of bins of the transaction-amount histogram.")
    amount_clip_quantile: float = Field(
        0.99, gt=0.5, le=1.0, description="Histograms show values up to this quantile (outliers are counted, not drawn)."
    )
    show_rows: int = Field(10, ge=0, le=1000, description="Rows shown per table preview and per findings list.")
