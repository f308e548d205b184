"""Parameters of notebook `01_segmentation`: RFM scoring, segment, lifecycle and tier rules,
nine-grid bands and early-warning thresholds.

Every threshold from the bank's documents (docs/domain.md §1-2) is a default here, never a constant
in code: 72 hours / 3 months / 1 year lifecycle boundaries, the 30% activity drop, 3 months
without a wealth-product purchase. Rule sets use the rule language of
:mod:`rmanalytics.rules` (ordered, first match wins, explicit default label).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rmanalytics.params.base import NotebookParams
from rmanalytics.rules import DEFAULT_GRID_CELLS, Rule, as_rules


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rules(*items: tuple) -> list[Rule]:
    return as_rules([{"label": label, "when": when} for label, when in items])


# The common 11-segment RFM scheme on R x FM (FM = round-half-up((F + M) / 2)), 5 score levels.
# A complete partition of the 5 x 5 grid (rules in order, first match wins):
#           FM=1        FM=2-3             FM=4-5
#   R=5     new         potential_loyalist champions
#   R=4     promising   potential_loyalist loyal
#   R=3     about_to_sleep (FM 1-2), need_attention (FM 3), loyal (FM 4-5)
#   R=1-2   lost (R1 FM1), hibernating (FM 1-2), at_risk (FM 3-4), cant_lose (FM 5)
DEFAULT_SEGMENT_RULES = _rules(
    ("champions", {"r_score": [5, 5], "fm_score": [4, 5]}),
    ("loyal", {"r_score": [3, 4], "fm_score": [4, 5]}),
    ("potential_loyalist", {"r_score": [4, 5], "fm_score": [2, 3]}),
    ("new_customers", {"r_score": [5, 5], "fm_score": [1, 1]}),
    ("promising", {"r_score": [4, 4], "fm_score": [1, 1]}),
    ("need_attention", {"r_score": [3, 3], "fm_score": [3, 3]}),
    ("about_to_sleep", {"r_score": [3, 3], "fm_score": [1, 2]}),
    ("cant_lose", {"r_score": [1, 2], "fm_score": [5, 5]}),
    ("at_risk", {"r_score": [1, 2], "fm_score": [3, 4]}),
    ("lost", {"r_score": [1, 1], "fm_score": [1, 1]}),
    ("hibernating", {"r_score": [1, 2], "fm_score": [1, 2]}),
)


class ScoreParams(_Section):
    """How R, F, M scores are computed (see :func:`rmanalytics.rfm.rfm_scores`)."""

    bins: int = Field(5, ge=2, le=10, description="Number of score levels.")
    method: Literal["quantile", "fixed"] = Field("quantile", description="Quantile edges from the data, or fixed.")
    edges: dict[str, list[float]] | None = Field(
        None, description="Fixed edges for method='fixed': recency_days (days), frequency, monetary (currency).")
    frequency: Literal["transactions", "days"] = Field("transactions", description="Count rows or distinct days.")
    refunds: Literal["include", "exclude", "error"] = Field("include", description="Treatment of negative amounts.")

    @model_validator(mode="after")
    def _check(self) -> "ScoreParams":
        if self.method == "fixed":
            if not self.edges or set(self.edges) != {"recency_days", "frequency", "monetary"}:
                raise ValueError("scores.edges must give recency_days, frequency and monetary for method='fixed'")
            for k, v in self.edges.items():
                if len(v) != self.bins - 1:
                    raise ValueError(f"scores.edges.{k} needs bins - 1 = {self.bins - 1} values, got {len(v)}")
        return self


class SegmentParams(_Section):
    """Segment rules on r_score, f_score, m_score, fm_score (first match wins)."""

    rules: list[Rule] = Field(default_factory=lambda: list(DEFAULT_SEGMENT_RULES))
    default: str = Field("other", description="Label of customers no rule matches.")


class LifecycleParams(_Section):
    """Lifecycle stages from tenure and the change in activity.

    Computed fields the rules can use: ``tenure_days`` (days since open_date, or the first
    transaction without a customers table), ``tenure_hours`` (24 x tenure_days),
    ``activity_drop`` (1 - recent rate / baseline rate; NaN without enough baseline),
    ``recent_transactions``, ``baseline_transactions``.
    """

    onboarding_hours: float = Field(72, ge=0, le=8784, description="First-contact window after opening (hours): flag.")
    recent_days: int = Field(90, ge=1, le=3660, description="Recent activity window (days before observation_end).")
    baseline_days: int = Field(365, ge=1, le=3660, description="Trailing baseline window before the recent window (days).")
    min_baseline_days: int = Field(90, ge=1, le=3660, description="Minimum baseline exposure (days) to compute a drop.")
    min_baseline_transactions: int = Field(3, ge=1, le=100_000, description="Minimum baseline transactions to compute a drop.")
    rules: list[Rule] = Field(default_factory=lambda: _rules(
        ("decline_warning", {"activity_drop": [0.30, None]}),
        ("new", {"tenure_days": [None, 90]}),
        ("growth", {"tenure_days": [91, 364]}),
        ("mature", {"tenure_days": [365, None]}),
    ))
    default: str = Field("other", description="Stage of customers no rule matches.")

    def stage_args(self, prefixed: bool = False) -> dict:
        """The arguments of :func:`rmanalytics.rfm.lifecycle_stages` (``lifecycle_``-prefixed rules and
        default for :func:`~rmanalytics.rfm.segment_snapshot` when ``prefixed``)."""
        p = "lifecycle_" if prefixed else ""
        return {f"{p}rules": list(self.rules), f"{p}default": self.default, "onboarding_hours": self.onboarding_hours}


class TierParams(_Section):
    """Service tiers from scores, segment, lifecycle stage, value and tags.

    Fields: r_score, f_score, m_score, fm_score, segment, lifecycle_stage, value (AUM, currency),
    value_pct (percentile rank of value, 0-1), n_products, customer_type, industry, scenario.
    """

    rules: list[Rule] = Field(default_factory=lambda: _rules(
        ("attention", {"lifecycle_stage": {"in": ["decline_warning"]}}),
        ("attention", {"segment": {"in": ["at_risk", "cant_lose", "about_to_sleep"]}}),
        ("strategic", {"value_pct": [0.8, None], "f_score": [4, None]}),
        ("growth", {"segment": {"in": ["potential_loyalist", "promising", "new_customers"]}}),
        ("growth", {"lifecycle_stage": {"in": ["new", "growth"]}, "fm_score": [3, None]}),
    ))
    default: str = Field("basic", description="Tier of customers no rule matches.")

    def tier_args(self) -> dict:
        """The arguments of :func:`rmanalytics.rfm.service_tiers`."""
        return {"rules": list(self.rules), "default": self.default}


class Band(_Section):
    """Banding of one column.

    Numeric: ``edges`` (ascending) split values into len(edges) + 1 bands, each [edge_k, edge_k+1)
    (left-inclusive), named by ``labels``. Categorical (``edges: null``, e.g. industry): each value
    is its own band; ``labels`` (optional) fixes the bands and their order, other values go to
    ``"other"``. Missing values go to ``"unknown"``.
    """

    column: str
    edges: list[float] | None = None
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> "Band":
        if self.edges is None:
            return self
        if self.labels is None or len(self.labels) != len(self.edges) + 1:
            raise ValueError(f"band {self.column}: {len(self.edges)} edges need {len(self.edges) + 1} labels")
        if any(b < a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"band {self.column}: edges must be ascending")
        return self


class GridCell(_Section):
    """One named nine-grid cell: band labels it needs (None = any) and its service plan
    (same fields as :class:`rmanalytics.rfm.ninegrid.GridCell`)."""

    name: str
    asset: list[str] | None = None
    industry: list[str] | None = None
    risk: list[str] | None = None
    service_plan: str = ""


def default_cells() -> list[GridCell]:
    """The named cells of :data:`rmanalytics.rules.DEFAULT_GRID_CELLS` (seed 001 §三(二)), as
    parameters to edit."""
    return [GridCell(**dict(c)) for c in DEFAULT_GRID_CELLS]


class NineGridParams(_Section):
    """The customer nine-grid: two banded attributes (default AUM band x risk level)."""

    rows: Band = Band(column="aum", edges=[500_000, 6_000_000], labels=["aum_mass", "aum_affluent", "aum_private"])
    cols: Band = Band(column="risk_level", edges=[3, 4], labels=["risk_low", "risk_mid", "risk_high"])
    value: str = Field("aum", description="Column summed as the value of a cell.")
    asset: Band = Band(column="aum", edges=[500_000, 6_000_000], labels=["aum_mass", "aum_affluent", "aum_private"])
    industry: Band = Band(column="industry", edges=None, labels=None)
    risk: Band = Band(column="risk_level", edges=[3, 4], labels=["risk_low", "risk_mid", "risk_high"])
    cells: list[GridCell] = Field(default_factory=default_cells,
                                  description="Named cells (first match wins) with their service plans.")
    default_cell: GridCell = GridCell(name="basic", service_plan="Digital self-service; semi-annual contact")


class WarningParams(_Section):
    """Early-warning signals for the per-RM worklist."""

    families: list[str] = Field(default_factory=lambda: ["wealth"], description="Product families watched.")
    silent_months: int = Field(3, ge=1, le=120, description="Months without a purchase of a watched family.")
    lookback_months: int = Field(12, ge=1, le=120, description="The customer must have bought the family in this many "
                                                      "months before the silent period.")
    activity_drop: float = Field(0.30, gt=0, le=1, description="Drop of activity vs trailing baseline (fraction).")
    top_n: int = Field(10, gt=0, le=100_000, description="Customers per RM in the people-facing warning list (top by "
                                                         "value at stake); the full list is kept in Parquet.")

    def warning_args(self) -> dict:
        """The threshold arguments of :func:`rmanalytics.rfm.early_warnings`."""
        return {"families": list(self.families), "silent_months": self.silent_months,
                "lookback_months": self.lookback_months, "activity_drop": self.activity_drop}


class WalletParams(_Section):
    """Wallet-share proxy: AUM / a high quantile of AUM among peers (Perlich et al. 2007)."""

    peer_columns: list[str] = Field(default_factory=lambda: ["customer_type", "risk_level"])
    quantile: float = Field(0.9, gt=0, le=1)


class ServiceParams(_Section):
    """Service rules on the optional customer-level tables (seeds 000, 002, 004; rmanalytics.service).
    Used only when the data carry products, holdings, interactions, feedback and digital_activity."""

    first_contact_hours: float = Field(72.0, gt=0, description="First contact with a new customer within (hours).")
    contact_intervals_days: dict[str, int] = Field(
        default_factory=lambda: {"new": 30, "growth": 30, "mature": 91, "decline_warning": 0},
        description="Days allowed between contacts per lifecycle stage (0: at once).")
    hnw_aum: float = Field(1_000_000.0, gt=0, description="AUM from which a customer is high-net-worth (currency).")
    visits_per_year: float = Field(4.0, gt=0, description="Visits a year required for a high-net-worth customer.")
    response_hours: float = Field(48.0, gt=0, description="First response to a complaint within (hours).")
    resolve_workdays: int = Field(3, ge=1, description="Complaint resolved within (working days).")
    resolved_target_share: float = Field(0.8, gt=0, le=1, description="Target share of complaints resolved in time.")
    major_risk_gap: int = Field(2, ge=1, le=4, description="Suitability breach is major from this risk-level gap.")
    maturity_horizon_days: int = Field(90, ge=1, description="Maturities listed up to this many days ahead.")
    renewal_lead_months: int = Field(1, ge=0, description="Renewal contact due this many months before maturity.")


class SegmentationParams(NotebookParams):
    """Parameters of `notebooks/01_segmentation.ipynb`."""

    tables_required: ClassVar[tuple[str, ...]] = ("transactions",)
    span_fields: ClassVar[tuple[str, ...]] = ("migration_days",)
    tables_optional: ClassVar[dict[str, str]] = {
        "customers": "tenure from open_date (the first transaction stands in), customer tags, closed customers "
                     "in the worklist",
        "balances": "AUM as value: service tiers, the nine-grid and the wallet-share proxy",
        "assignments": "the RM of each early warning (rm_id is empty)",
        "products": "the service rules (suitability, contact compliance, complaints)",
        "holdings": "the service rules (suitability, renewal contacts)",
        "interactions": "the service rules (first contact, contact rhythm, high-net-worth visits)",
        "feedback": "the service rules (complaint handling)",
    }

    scores: ScoreParams = Field(default_factory=ScoreParams, description="R, F, M scoring.")
    segments: SegmentParams = Field(default_factory=SegmentParams, description="Segment rules.")
    lifecycle: LifecycleParams = Field(default_factory=LifecycleParams, description="Lifecycle stages.")
    tiers: TierParams = Field(default_factory=TierParams, description="Service tiers.")
    nine_grid: NineGridParams = Field(default_factory=NineGridParams, description="Nine-grid bands.")
    warning: WarningParams = Field(default_factory=WarningParams, description="Early-warning thresholds.")
    wallet: WalletParams = Field(default_factory=WalletParams, description="Wallet-share proxy.")
    migration_days: int = Field(90, ge=1, le=3660, description="Days between the two snapshots of the migration matrix.")
    service: ServiceParams = Field(default_factory=ServiceParams,
                                   description="Service rules on customer-level data (when present).")

    def snapshot_args(self) -> dict:
        """These parameters as the explicit arguments of :func:`rmanalytics.rfm.segment_snapshot`."""
        s, lc = self.scores, self.lifecycle
        return {
            "score_bins": s.bins, "score_method": s.method, "score_edges": s.edges, "frequency": s.frequency,
            "refunds": s.refunds, "segment_rules": list(self.segments.rules), "segment_default": self.segments.default,
            **self.lifecycle.stage_args(prefixed=True),
            "recent_days": lc.recent_days, "baseline_days": lc.baseline_days, "min_baseline_days": lc.min_baseline_days,
            "min_baseline_transactions": lc.min_baseline_transactions,
            "tier_rules": list(self.tiers.rules), "tier_default": self.tiers.default,
            "wallet_peer_columns": list(self.wallet.peer_columns), "wallet_quantile": self.wallet.quantile,
        }
