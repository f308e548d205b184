"""The data contract: the tables rmanalytics reads, their columns, dtypes, units and rules.

This module is the single source of truth for table and column names. The validators in
:mod:`rmanalytics.schema`, the loaders in :mod:`rmanalytics.io`, the generator in
:mod:`rmanalytics.synth` and ``data/README.md`` all follow it.

Conventions
-----------
- Identifiers are strings (``customer_id`` like ``"C0000001"``, ``rm_id`` like ``"R0001"``).
- Dates are ``datetime64[ns]`` at day precision (timestamps are allowed for transactions and are
  truncated to the day where a rule works in days).
- Money is in currency units (CNY by default), as ``float64``.
- ``transactions.amount`` is the value of the transaction seen from the customer: positive for a
  purchase / deposit / payment, **negative for a refund or reversal**. Fees the bank earns are not
  netted into ``amount``; they are in ``transactions.fee`` (>= 0).
- Nullable end dates (``close_date``, ``exit_date``, ``end_date``) mean "still open".
- An interval ``[start_date, end_date)`` includes its start and excludes its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    dtype: str  # "str", "int", "float", "date", "bool"
    description: str
    nullable: bool = False
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False  # True: values must be > min rather than >= min
    allowed: tuple | None = None
    required: bool = True


@dataclass(frozen=True)
class Table:
    """One contract table: its columns and its primary key."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = field(default_factory=tuple)
    optional: bool = False  # an optional table: analyses that need it say so; loaders skip it when absent

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


PRODUCT_FAMILIES = ("deposit", "wealth", "loan", "card", "insurance", "fx", "payment")
CHANNELS = ("branch", "mobile", "online", "atm", "rm")
CUSTOMER_TYPES = ("retail", "corporate")
ACQUISITION_CHANNELS = ("branch", "referral", "online", "rm_outreach")
RM_LEVELS = ("junior", "senior", "principal")
ORG_LEVELS = ("rm", "outlet", "sub_branch", "tier2_branch", "tier1_branch", "bank")

CUSTOMERS = Table(
    "customers",
    "One row per customer.",
    (
        Column("customer_id", "str", "Customer identifier (primary key)."),
        Column("open_date", "date", "Date the relationship (first account) was opened."),
        Column("close_date", "date", "Date the last account was closed; null while open.", nullable=True),
        Column("customer_type", "str", "Retail or corporate customer.", allowed=CUSTOMER_TYPES),
        Column("risk_level", "int", "Risk-tolerance level, 1 (conservative) to 5 (aggressive).", min=1, max=5),
        Column("industry", "str", "Industry tag (e.g. manufacturing, tech, trade).", nullable=True),
        Column("scenario", "str", "Scenario tag (e.g. cross_border_ecommerce, young_family).", nullable=True),
        Column("branch_id", "str", "Home outlet: an `outlet` of the `rms` hierarchy."),
        Column("acquisition_channel", "str", "How the customer was acquired.", allowed=ACQUISITION_CHANNELS,
               required=False),
    ),
    key=("customer_id",),
)

TRANSACTIONS = Table(
    "transactions",
    "One row per transaction. Amount > 0: purchase/deposit/payment; amount < 0: refund or reversal.",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("date", "date", "Transaction date (or timestamp)."),
        Column("amount", "float", "Transaction value; negative for refunds/reversals.", unit="currency"),
        Column("product_family", "str", "Product family (optional: without it the product-family "
               "warnings and findings are left out).", allowed=PRODUCT_FAMILIES, required=False),
        Column("channel", "str", "Channel.", allowed=CHANNELS, required=False),
        Column("fee", "float", "Fee income earned by the bank on this transaction.", unit="currency", min=0,
               required=False),
    ),
    key=(),
)

BALANCES = Table(
    "balances",
    "Month-end snapshot per customer while the customer is open.",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("snapshot_date", "date", "Last day of the month the snapshot describes."),
        Column("aum", "float", "Assets under management (deposits + wealth products).", unit="currency", min=0),
        Column("deposits", "float", "Deposit balance.", unit="currency", min=0),
        Column("loans", "float", "Loan balance outstanding.", unit="currency", min=0),
        Column("loans_strategic", "float", "Part of `loans` in strategic lines (inclusive / green lending).",
               unit="currency", min=0, required=False),
        Column("npl", "float", "Non-performing part of `loans`.", unit="currency", min=0, required=False),
        Column("n_products", "int", "Number of distinct products held (product penetration).", min=0),
        Column("deposits_avg", "float", "Average daily deposit balance of the month (日均); used for deposit "
               "KPIs when present (month-end balances are easy to window-dress).", unit="currency", min=0,
               required=False),
        Column("npl_new", "float", "Loans that turned non-performing during the month.", unit="currency", min=0,
               required=False),
        Column("recovered", "float", "Non-performing loans recovered (repaid, collected) during the month.",
               unit="currency", min=0, required=False),
        Column("written_off", "float", "Non-performing loans written off during the month (not a recovery).",
               unit="currency", min=0, required=False),
    ),
    key=("customer_id", "snapshot_date"),
)

DAILY_BALANCES = Table(
    "daily_balances",
    "Optional. Daily deposit balance per customer (one row per customer and calendar day while open; "
    "days without a posting carry the previous balance). When present, the deposit KPIs use the "
    "month's average of these rows (日均) instead of the month-end snapshot.",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("date", "date", "Calendar day."),
        Column("deposits", "float", "Deposit balance at the end of the day.", unit="currency", min=0),
    ),
    key=("customer_id", "date"),
    optional=True,
)

RMS = Table(
    "rms",
    "One row per relationship manager, with the branch hierarchy of the RM's outlet.",
    (
        Column("rm_id", "str", "RM identifier (primary key)."),
        Column("outlet", "str", "Outlet (网点), the lowest org unit."),
        Column("sub_branch", "str", "Sub-branch (支行)."),
        Column("tier2_branch", "str", "Tier-2 branch (二级分行)."),
        Column("tier1_branch", "str", "Tier-1 branch (一级分行)."),
        Column("hire_date", "date", "Date the RM joined."),
        Column("exit_date", "date", "Date the RM left; null while employed.", nullable=True),
        Column("level", "str", "RM grade.", allowed=RM_LEVELS),
    ),
    key=("rm_id",),
)

ASSIGNMENTS = Table(
    "assignments",
    "Which RM serves which customer, when, and with what credit share. "
    "For every customer and date, the shares of the assignments covering that date sum to 1.",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("rm_id", "str", "RM (must exist in `rms`)."),
        Column("start_date", "date", "First day of the assignment."),
        Column("end_date", "date", "Day the assignment ended (exclusive); null while running.", nullable=True),
        Column("share", "float", "Credit share of this RM for this customer, in (0, 1].", min=0, max=1,
               min_exclusive=True),
    ),
    key=("customer_id", "rm_id", "start_date"),
)

RM_ACTIVITY = Table(
    "rm_activity",
    "One row per RM and month: activity and process indicators.",
    (
        Column("rm_id", "str", "RM (must exist in `rms`)."),
        Column("period", "date", "First day of the month."),
        Column("visits", "int", "Customer visits made.", min=0),
        Column("visits_required", "int", "Visits required by the tier-maintenance rules.", min=0),
        Column("calls", "int", "Customer calls made.", min=0),
        Column("cross_sell_offers", "int", "Cross-sell offers made.", min=0),
        Column("digital_usage", "float", "Share of working days the digital tools were used, 0-1.", min=0, max=1),
        Column("training_score", "float", "Training exam score, 0-100.", min=0, max=100, nullable=True),
        Column("complaints", "int", "Customer complaints received.", min=0),
        Column("nps_responses", "int", "NPS survey responses.", min=0),
        Column("nps_promoters", "int", "Responses scoring 9-10.", min=0),
        Column("nps_detractors", "int", "Responses scoring 0-6.", min=0),
        Column("compliance_checks", "int", "Compliance checks performed.", min=0),
        Column("compliance_passed", "int", "Compliance checks passed.", min=0),
        Column("compliance_breaches", "int", "Minor compliance breaches.", min=0),
        Column("major_breaches", "int", "Major compliance breaches (one-vote veto).", min=0),
        Column("alert_response_hours", "float", "Mean hours to respond to a risk alert.", unit="hours", min=0,
               nullable=True),
        Column("referrals", "int", "New customers acquired by referral.", min=0),
    ),
    key=("rm_id", "period"),
)

KPI_TARGETS = Table(
    "kpi_targets",
    "Targets per RM (or org unit), period and KPI.",
    (
        Column("unit_id", "str", "rm_id, or the id of an org unit."),
        Column("unit_level", "str", "Level of `unit_id`.", allowed=ORG_LEVELS),
        Column("period", "str", "Period label: 'YYYY' (year), 'YYYYQn' (quarter) or 'YYYY-MM' (month)."),
        Column("kpi", "str", "KPI name (see rmanalytics.kpi)."),
        Column("target", "float", "Target value, in the KPI's unit."),
    ),
    key=("unit_id", "period", "kpi"),
)

TRAINING = Table(
    "training",
    "Optional. One row per RM and training course taken (001 §二(二): 'needs improvement' -> "
    "mandatory training; 003 篇5). Used by rmanalytics.kpi.training_effect.",
    (
        Column("rm_id", "str", "RM (must exist in `rms`)."),
        Column("course", "str", "Course name."),
        Column("start_date", "date", "First day of the course."),
        Column("mandatory", "bool", "True when the training was mandatory (e.g. after a 'needs improvement' rating)."),
        Column("score", "float", "Exam score at the end of the course, 0-100; null if not examined.", min=0,
               max=100, nullable=True),
    ),
    key=("rm_id", "course", "start_date"),
    optional=True,
)

# ---- optional customer-level relationship tables (issue 14) -------------------------------
# A dataset without them meets the contract; the service rules (rmanalytics.service) and the
# customer-level KPIs need them. Timestamps (interactions, feedback) may carry a time of day.

INTERACTION_CHANNELS = ("branch", "customer_site", "phone", "online", "wechat")
INTERACTION_KINDS = ("visit", "call", "message", "meeting")
#: Interaction kinds that count as visits (visit coverage, high-net-worth visits).
VISIT_KINDS = ("visit", "meeting")
INTERACTION_OUTCOMES = ("reached", "not_reached", "sale", "follow_up")
FEEDBACK_KINDS = ("complaint", "nps", "survey")

PRODUCTS = Table(
    "products",
    "OPTIONAL. One row per product the bank sells (the product catalogue).",
    (
        Column("product_id", "str", "Product identifier (primary key)."),
        Column("product_family", "str", "Product family.", allowed=PRODUCT_FAMILIES),
        Column("risk_level", "int", "Product risk level, 1 (lowest, R1) to 5 (highest, R5); compared with "
                                    "`customers.risk_level` for suitability.", min=1, max=5),
        Column("term_days", "int", "Term of a fixed-term product; null for open-ended products.", unit="days",
               min=1, nullable=True),
        Column("product_name", "str", "Display name.", nullable=True, required=False),
    ),
    key=("product_id",),
    optional=True,
)

HOLDINGS = Table(
    "holdings",
    "OPTIONAL. One row per product position a customer opened (purchase, account, loan), "
    "`[start_date, end_date)`. The customer's risk level at purchase is `customers.risk_level` "
    "(the contract keeps no risk-level history).",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("product_id", "str", "Product (must exist in `products`)."),
        Column("start_date", "date", "Day the position was opened (purchase date)."),
        Column("end_date", "date", "Day the position was closed (exclusive); null while held.", nullable=True),
        Column("amount", "float", "Amount invested / borrowed at purchase.", unit="currency", min=0),
        Column("maturity_date", "date", "Contractual maturity of a fixed-term product; null if open-ended.",
               nullable=True),
    ),
    key=("customer_id", "product_id", "start_date"),
    optional=True,
)

INTERACTIONS = Table(
    "interactions",
    "OPTIONAL. One row per RM contact with a customer (visit, call, message, meeting).",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("rm_id", "str", "RM who made the contact (must exist in `rms`)."),
        Column("timestamp", "date", "When the contact happened (timestamp)."),
        Column("channel", "str", "Where / how.", allowed=INTERACTION_CHANNELS),
        Column("kind", "str", "Kind of contact; visits and meetings count as visits.", allowed=INTERACTION_KINDS),
        Column("outcome", "str", "Outcome of the contact.", allowed=INTERACTION_OUTCOMES, nullable=True),
    ),
    key=(),
    optional=True,
)

FEEDBACK = Table(
    "feedback",
    "OPTIONAL. One row per complaint, NPS answer or survey answer of a customer.",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("rm_id", "str", "RM concerned (must exist in `rms`); null if none.", nullable=True),
        Column("opened_at", "date", "When the complaint was lodged / the answer given (timestamp)."),
        Column("kind", "str", "complaint, nps (score 0-10) or survey (score 1-5).", allowed=FEEDBACK_KINDS),
        Column("score", "float", "NPS score 0-10 or survey score 1-5; null for complaints.", min=0, max=10,
               nullable=True),
        Column("responded_at", "date", "First response to a complaint (timestamp); null if none yet.",
               nullable=True, required=False),
        Column("resolved_at", "date", "When a complaint was resolved (timestamp); null while open.", nullable=True),
    ),
    key=(),
    optional=True,
)

DIGITAL_ACTIVITY = Table(
    "digital_activity",
    "OPTIONAL. Logins to the bank's digital channels per customer and month.",
    (
        Column("customer_id", "str", "Customer (must exist in `customers`)."),
        Column("month", "date", "First day of the month."),
        Column("logins", "int", "Number of logins (app and online banking) in the month.", min=0),
    ),
    key=("customer_id", "month"),
    optional=True,
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (CUSTOMERS, TRANSACTIONS, BALANCES, RMS, ASSIGNMENTS, RM_ACTIVITY, KPI_TARGETS, TRAINING,
              DAILY_BALANCES, PRODUCTS, HOLDINGS, INTERACTIONS, FEEDBACK, DIGITAL_ACTIVITY)
}

#: The tables every data set must have (the optional ones are used when present).
REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if not t.optional)
#: The seven core tables (the same as REQUIRED_TABLES; name kept for the relationship modules).
CORE_TABLES: tuple[str, ...] = REQUIRED_TABLES
#: Customer-level relationship tables (issue 14): validated and used when present, never required.
OPTIONAL_TABLES: tuple[str, ...] = ("products", "holdings", "interactions", "feedback", "digital_activity")
