"""KPIs per RM and period from the contract tables (docs/domain.md §3).

The heavy aggregation over transactions, balances, assignments and activity runs once, as SQL
(:func:`rm_month_sql`, DuckDB dialect, transpilable to Spark) at the grain *RM x calendar month*;
:func:`kpi_table` then rolls the months up to months, quarters or years in pandas (a few rows per
RM) and derives the ratios and growth KPIs.

Crediting rules
---------------
- **Shared customers** are credited by assignment ``share`` (shares of a customer sum to 1).
- **Pro-rating**: a balance snapshot of month *m* is credited with weight
  ``share * (days the assignment covers in m) / (days in m)``. An RM who leaves (or joins, or
  gets / loses a customer) mid-month is credited for the days held only. Transactions (fees,
  volume) are credited to the assignment(s) covering the transaction date.
- **Partial periods**: ``partial_period`` is True when the RM was hired after the period start or
  left before its end; ``days_active`` counts the RM's employed days in the period. Balances are
  averaged over *all* calendar months of the period (a month without credit counts as 0), so an
  RM who leaves at the end of the first month of a quarter is credited about a third of the
  quarter's average balance: the KPI is pro-rated, not extrapolated.

KPI definitions (name: formula, unit, direction)
------------------------------------------------
See :data:`KPI_DEFINITIONS`; every name there can be used in the scorecard config.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.assignments import primary_rm_at  # noqa: F401  (the rule primary_rm_sql writes in SQL)
from rmanalytics.contract import VISIT_KINDS
from rmanalytics.engine import columns_of, connect, resolve_engine, run_sql, scan_expr
from rmanalytics.errors import DataError, ParameterError
from rmanalytics.rfm.summary import EXACT_MONEY, exact_sum


@dataclass(frozen=True)
class KpiDef:
    """One KPI: its formula, unit and whether higher is better."""

    description: str
    unit: str
    higher_is_better: bool = True
    additive: bool = False  # sums across RMs to the unit above (roll-up by sum)


@dataclass(frozen=True)
class EffectiveRule:
    """An *effective* new customer (001 §二(一): 新拓有效客户, "meets asset requirements"): opened in
    the period and holding AUM >= the threshold of its type (currency) at ``hold_months``
    consecutive month-end snapshots, the last within ``window_days`` of opening. The thresholds
    are the bank's choice (defaults: retail 50,000, corporate 500,000, held for one month)."""

    aum_retail: float = 50_000.0
    aum_corporate: float = 500_000.0
    hold_months: int = 1
    window_days: int = 90

    def __post_init__(self) -> None:
        if self.aum_retail < 0 or self.aum_corporate < 0 or self.hold_months < 1 or self.window_days < 1:
            raise ValueError(f"invalid EffectiveRule {self}: thresholds >= 0, hold_months >= 1, window_days >= 1")


@dataclass(frozen=True)
class QualityRule:
    """The strategic (quality) tier for the retention KPI (001: 客户流失率, 存量优质客户保有量): a
    customer whose AUM at the previous month-end is >= the threshold of its type (currency;
    defaults retail 200,000, corporate 5,000,000: the bank's choice)."""

    aum_retail: float = 200_000.0
    aum_corporate: float = 5_000_000.0


KPI_DEFINITIONS: dict[str, KpiDef] = {
    "deposit_growth": KpiDef("Average credited deposit balance of the period minus that of the previous "
                             "period, on the month's average daily balance (日均: balances.deposits_avg or "
                             "daily_balances) when the data has it, else on month-end snapshots (the report "
                             "says which: kpi_table(...).attrs['definitions']).", "currency", True, True),
    "avg_deposits": KpiDef("Average credited deposit balance over the period's months (daily average when "
                           "available, see deposit_growth).", "currency", True, True),
    "avg_deposits_month_end": KpiDef("Average credited month-end deposit balance over the period's months.",
                                     "currency", True, True),
    "weighted_loan_volume": KpiDef("loan_volume + (strategic_loan_weight - 1) x strategic_loan_volume: loans "
                                   "with the strategic lines (inclusive / green) weighted up (001).",
                                   "currency", True, True),
    "loan_volume": KpiDef("Average credited loan balance over the period's months.", "currency", True, True),
    "strategic_loan_volume": KpiDef("Average credited loan balance in strategic lines (inclusive / green).",
                                    "currency", True, True),
    "strategic_loan_share": KpiDef("strategic_loan_volume / loan_volume.", "ratio 0-1", True),
    "fee_income": KpiDef("Sum of transaction fees of the credited customers (x share).", "currency", True, True),
    "expected_fee": KpiDef("Fee income the book's transactions would earn at the bank-wide fee rate of each "
                           "product family (sum fee / sum amount over all positive transactions): the size "
                           "and product mix of the book, free of pricing, market and RM effects.",
                           "currency", True, True),
    "new_customers": KpiDef("Customers opened in the period, credited (x share) to the RM holding them at "
                            "opening.", "customers", True, True),
    "new_effective_customers": KpiDef("Customers opened in the period, credited to the RM holding them at "
                                      "opening, whose AUM reached the effective threshold of their type for "
                                      "the required months within the window (EffectiveRule; 001).",
                                      "customers", True, True),
    "new_active_customers": KpiDef("Customers opened in the period, credited to the RM holding them at "
                                   "opening, with a positive transaction within `effective_window_days`.",
                                   "customers", True, True),
    "aum": KpiDef("Average credited AUM over the period's months.", "currency", True, True),
    "aum_growth": KpiDef("aum / aum of the previous period - 1.", "ratio", True),
    "product_penetration": KpiDef("Credit-weighted mean number of products held by the book.", "products", True),
    "cross_sell_rate": KpiDef("Credit-weighted share of book customer-months in which the number of products "
                              "rose over the previous month.", "ratio 0-1 per month", True),
    "churn_rate": KpiDef("Credited customers closed in the period / credited open book at period start.",
                         "ratio 0-1 per period", False),
    "quality_churn_rate": KpiDef("churn_rate among strategic-tier customers (QualityRule: AUM at the previous "
                                 "month-end above the tier threshold): retention of quality customers (001).",
                                 "ratio 0-1 per period", False),
    "nps": KpiDef("(promoters - detractors) / responses x 100.", "points -100..100", True),
    "complaint_rate": KpiDef("Complaints per 100 credited customers (average book).", "per 100 customers", False),
    "visit_coverage": KpiDef("sum(min(visits, visits_required)) / sum(visits_required).", "ratio 0-1", True),
    "referral_share": KpiDef("Share of new customers (credited) acquired by referral.", "ratio 0-1", True),
    "npl_ratio": KpiDef("Average credited NPL balance / average credited loan balance.", "ratio 0-1", False),
    "new_npl_ratio": KpiDef("Loans turning non-performing in the period (balances.npl_new, else the month-on-"
                            "month increase of a customer's NPL balance) / average credited loan balance.",
                            "ratio 0-1 per period", False),
    "npl_recovery_rate": KpiDef("NPL recovered in the period (balances.recovered; write-offs are not "
                                "recoveries) / (credited NPL at period start + new NPL). NaN without the "
                                "recovered column.", "ratio 0-1 per period", True),
    "alert_response_hours": KpiDef("Mean of the monthly mean risk-alert response time.", "hours", False),
    "compliance_pass_rate": KpiDef("compliance_passed / compliance_checks.", "ratio 0-1", True),
    "major_breaches": KpiDef("Number of major compliance breaches (one-vote veto).", "count", False, True),
    "training_score": KpiDef("Mean training exam score.", "points 0-100", True),
    "digital_usage": KpiDef("Mean share of working days the digital tools were used.", "ratio 0-1", True),
    "suitability_breaches": KpiDef("Holdings bought in the period whose product risk level exceeds the customer's "
                                   "(RM at purchase; needs the optional holdings/products tables, else NaN).",
                                   "count", False, True),
    "suitability_major_breaches": KpiDef("Suitability breaches with a risk gap >= major_risk_gap (one-vote veto "
                                         "in the scorecard config).", "count", False, True),
}

#: KPIs computed from customer-level data when the optional tables are present (else from rm_activity):
#: the ``<kpi>_source`` column of :func:`kpi_table` says which ("customer_level" or "rm_activity").
CUSTOMER_LEVEL_KPIS = ("visit_coverage", "complaint_rate", "nps")

ACTIVITY_COLUMNS = ("visits", "visits_required", "calls", "cross_sell_offers", "digital_usage", "training_score",
                    "complaints", "nps_responses", "nps_promoters", "nps_detractors", "compliance_checks",
                    "compliance_passed", "compliance_breaches", "major_breaches", "alert_response_hours",
                    "referrals")

FREQS = {"month": "M", "quarter": "Q", "year": "Y"}


def period_label(dates: pd.Series | pd.DatetimeIndex, freq: str) -> pd.Series:
    """Contract period labels: 'YYYY-MM' (month), 'YYYYQn' (quarter) or 'YYYY' (year)."""
    d = pd.to_datetime(pd.Series(dates))
    if freq == "month":
        return d.dt.strftime("%Y-%m")
    if freq == "quarter":
        return d.dt.year.astype(str) + "Q" + d.dt.quarter.astype(str)
    if freq == "year":
        return d.dt.year.astype(str)
    raise ParameterError(f"freq must be one of {list(FREQS)}, got {freq!r}")


def month_calendar(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DataFrame:
    """Calendar months covering [start, end]: ``month_start``, ``month_end`` (exclusive), ``days``."""
    starts = pd.date_range(pd.Timestamp(start).to_period("M").to_timestamp(),
                           pd.Timestamp(end).to_period("M").to_timestamp(), freq="MS")
    ends = starts + pd.offsets.MonthBegin(1)
    return pd.DataFrame({"month_start": starts, "month_end": ends, "days": (ends - starts).days.astype("int64")})


ASG_CTE = """asg AS (
    SELECT customer_id, rm_id, CAST(start_date AS DATE) AS start_date,
           COALESCE(CAST(end_date AS DATE), CAST('2999-12-31' AS DATE)) AS end_date, share
    FROM assignments
)"""
MON_CTE = """mon AS (
    SELECT CAST(month_start AS DATE) AS month_start, CAST(month_end AS DATE) AS month_end, days FROM months
)"""


def rm_month_sql(**kwargs: Any) -> str:
    """The SQL (DuckDB dialect, Spark-transpilable) of the RM x month aggregation, one statement.

    Inputs: ``customers, transactions, balances, assignments, rm_activity, months``
    (``months`` from :func:`month_calendar`), and ``daily_balances`` when
    ``deposits_avg="daily_balances"``. One row per ``rm_id, month_start``. Keyword arguments as in
    :func:`rm_month_sql_stages`.

    The statement has two stages (see :func:`rm_month_sql_stages`): the per-customer stage sums
    every measure per RM and month into ``parts``; the final stage adds ``parts`` up and joins the
    measures. :func:`rm_month_measures` on DuckDB runs the first stage on batches of customers
    when the balances are large.
    """
    st = rm_month_sql_stages(**kwargs)
    return ("\nWITH " + ",\n".join(st["ctes"] + [st["fam"], st["per_customer"], f"parts AS ({st['parts']})"]
                                   + st["final_ctes"]) + "\n" + st["final_select"])


def rm_month_sql_stages(*, has_fee: bool = True, has_strategic: bool = True, has_npl: bool = True,
                        has_channel: bool = True, effective_window_days: int = 90, deposits_avg: str = "month_end",
                        has_npl_new: bool = False, has_recovered: bool = False, has_written_off: bool = False,
                        effective: EffectiveRule | None = None, quality: QualityRule | None = None) -> dict[str, Any]:
    """The two stages of :func:`rm_month_sql` as SQL pieces (a dict of texts).

    - ``ctes``: ``daily`` (when used), ``asg``, ``mon``; ``fam``: the bank-wide fee rate per product
      family (over *all* transactions, so never computed on a batch); ``per_customer``: the CTEs
      whose rows belong to one customer each (balances, transactions, assignments, customers);
    - ``parts``: a SELECT (UNION ALL) of the per-customer sums per RM and month, one ``part`` per
      measure group, zero-padded to common columns with NULLs. Every column is a SUM: the ``parts`` of
      customer batches that partition the customers add up to those of all customers;
    - ``final_ctes`` + ``final_select``: add ``parts`` up per part, RM and month (``SUM``; a NULL
      stays NULL), join them with ``rm_activity`` and order by ``rm_id, month_start``. They read
      ``parts``, ``months`` (through ``mon``) and ``rm_activity``.

    Inputs: ``customers, transactions, balances, assignments, rm_activity, months``
    (``months`` from :func:`month_calendar`), and ``daily_balances`` when
    ``deposits_avg="daily_balances"``. One row per ``rm_id, month_start``.

    Every sum of doubles is exact (:func:`rmanalytics.rfm.summary.exact_sum`): each term is rounded
    once to ``DECIMAL(38, 18)`` (relative change below 1e-16 for currency amounts
    and shares of a day) and added as a decimal, and the totals are cast to DOUBLE at the end. So
    the result does not depend on the order DuckDB's threads add rows in, nor on how the customers
    are cut into batches: a double SUM made 1-thread and 2-thread runs differ by about 1e-15, which
    the driver forest of notebook 04 turned into a 4e-7 change of its cross-validated R².

    ``deposits_avg``: where the month's average daily deposits come from: ``"column"``
    (``balances.deposits_avg``), ``"daily_balances"`` (mean of the month's rows of that table; a
    customer-month without daily rows falls back to the month-end snapshot and is counted in
    ``deposits_avg_fallback``) or ``"month_end"`` (the month-end snapshot). ``has_npl_new``:
    ``balances.npl_new`` exists (else new NPL = month-on-month increase of a customer's NPL
    balance). ``effective``/``quality``: thresholds of effective new customers and of the
    strategic (quality) tier, see :class:`EffectiveRule` and :class:`QualityRule`.
    """
    effective = effective or EffectiveRule(window_days=effective_window_days)
    quality = quality or QualityRule()
    fee = "t.fee" if has_fee else "0.0"
    strat = "COALESCE(b.loans_strategic, 0.0)" if has_strategic else "0.0"
    npl = "COALESCE(b.npl, 0.0)" if has_npl else "0.0"
    channel = "c.acquisition_channel" if has_channel else "CAST(NULL AS VARCHAR)"
    w = int(effective_window_days)
    if deposits_avg not in ("column", "daily_balances", "month_end"):
        raise ValueError(f"deposits_avg must be 'column', 'daily_balances' or 'month_end', got {deposits_avg!r}")
    dep_avg = {"column": "COALESCE(b.deposits_avg, b.deposits)", "month_end": "b.deposits",
               "daily_balances": "COALESCE(d.deposits_avg, b.deposits)"}[deposits_avg]
    dep_fallback = ({"column": "CASE WHEN b.deposits_avg IS NULL THEN 1.0 ELSE 0.0 END", "month_end": "0.0",
                     "daily_balances": "CASE WHEN d.deposits_avg IS NULL THEN 1.0 ELSE 0.0 END"}[deposits_avg])
    daily_cte = (f"""daily AS (
    SELECT customer_id, CAST(date_trunc('month', CAST(date AS DATE)) AS DATE) AS month_start,
           CAST({exact_sum("deposits")} AS DOUBLE) / NULLIF(COUNT(deposits), 0) AS deposits_avg
    FROM daily_balances GROUP BY customer_id, CAST(date_trunc('month', CAST(date AS DATE)) AS DATE)
),
""" if deposits_avg == "daily_balances" else "")
    daily_join = ("LEFT JOIN daily d ON d.customer_id = b.customer_id AND d.month_start = "
                  "CAST(date_trunc('month', CAST(b.snapshot_date AS DATE)) AS DATE)"
                  if deposits_avg == "daily_balances" else "")
    prev_npl = f"LAG({npl}) OVER (PARTITION BY b.customer_id ORDER BY b.snapshot_date)"
    # New NPL from the column (with the plain balance sums) or derived from the previous snapshot (with
    # the sums that need the snapshot sequence: one window over few columns, see bal_seq).
    if has_npl_new:
        npl_new_plain, npl_new_col_plain = "\n           COALESCE(b.npl_new, 0.0) AS npl_new,", " bal.npl_new,"
        npl_new_sum_plain, npl_new_src = f"{exact_sum('am.w * am.npl_new')} AS npl_new, ", "b"
        npl_new_seq = npl_new_col_seq = npl_new_sum_seq = ""
    else:
        npl_new_plain = npl_new_col_plain = npl_new_sum_plain = ""
        npl_new_seq = (f",\n           CASE WHEN {prev_npl} IS NULL THEN 0.0 "
                       f"ELSE GREATEST({npl} - {prev_npl}, 0.0) END AS npl_new")
        npl_new_col_seq, npl_new_src = ", s.npl_new", "bq"
        npl_new_sum_seq = f",\n           {exact_sum('CASE WHEN am.ov = 1 THEN am.w * am.npl_new ELSE 0.0 END')} AS npl_new"
    recovered = "COALESCE(b.recovered, 0.0)" if has_recovered else "CAST(NULL AS DOUBLE)"
    written_off = "COALESCE(b.written_off, 0.0)" if has_written_off else "CAST(NULL AS DOUBLE)"
    h = int(effective.hold_months)
    eff_thr = f"CASE WHEN c.customer_type = 'corporate' THEN {float(effective.aum_corporate)!r} " \
              f"ELSE {float(effective.aum_retail)!r} END"
    q_thr = f"CASE WHEN c.customer_type = 'corporate' THEN {float(quality.aum_corporate)!r} " \
            f"ELSE {float(quality.aum_retail)!r} END"
    ew = int(effective.window_days)
    eff_min = float(min(effective.aum_retail, effective.aum_corporate))  # implied by eff_thr: filters early
    # The month of a date: an equi-join of its first day with mon.month_start (the months of
    # month_calendar are whole calendar months) instead of a range join on [month_start, month_end).
    month_of = lambda col: f"CAST(date_trunc('month', CAST({col} AS DATE)) AS DATE)"  # noqa: E731
    next_month = lambda col: f"CAST({month_of(col)} + INTERVAL 1 MONTH AS DATE)"  # noqa: E731
    # A snapshot's month, its end (exclusive) and its days, computed from the snapshot (the rows of the
    # big tables are kept by a semi-join with mon rather than joined to it: DuckDB then estimates
    # their size right and builds its hash tables on the small side, the assignments).
    mo = month_of("b.snapshot_date")
    prev_snap = "LAG(b.snapshot_date) OVER (PARTITION BY b.customer_id ORDER BY b.snapshot_date)"
    snap_month = (f"{mo} AS month_start, {next_month('b.snapshot_date')} AS month_end, "
                  f"date_diff('day', {mo}, {next_month('b.snapshot_date')}) AS days")
    if h == 1:  # held at one month-end: the snapshot itself (no window over all balances)
        held_sql = """    SELECT b.customer_id, CAST(b.snapshot_date AS DATE) AS snapshot_date, b.aum AS min_aum, 1 AS n_held
    FROM balances b"""
    else:
        held_sql = f"""    SELECT b.customer_id, CAST(b.snapshot_date AS DATE) AS snapshot_date,
           MIN(b.aum) OVER (PARTITION BY b.customer_id ORDER BY b.snapshot_date
                            ROWS BETWEEN {h - 1} PRECEDING AND CURRENT ROW) AS min_aum,
           COUNT(*) OVER (PARTITION BY b.customer_id ORDER BY b.snapshot_date
                          ROWS BETWEEN {h - 1} PRECEDING AND CURRENT ROW) AS n_held
    FROM balances b"""
    part_cols = {  # part -> its measures (all SUMs), in the order of its CTE
        "book": ["w_balances", "aum", "deposits", "loans", "loans_strategic", "npl", "products_w", "deposits_avg",
                 "deposits_avg_fallback"] + (["npl_new"] if has_npl_new else []) + ["recovered", "written_off"],
        "book_seq": ["cross_sell_base", "cross_sell_w", "npl_open"] + ([] if has_npl_new else ["npl_new"])
                    + ["start_quality_next", "start_extra_next"],
        "book_size": ["customers_credited"],
        "fees": ["fee_income", "volume", "expected_fee", "n_transactions"],
        "churn": ["churned", "churned_quality"],
        "new_cust": ["new_customers", "new_active_customers", "new_effective_customers", "new_referred"],
        "book_base": ["book_start"],
    }
    all_cols = list(dict.fromkeys(c for cols in part_cols.values() for c in cols))
    parts = "\n    UNION ALL\n".join(
        f"    SELECT '{p}' AS part, rm_id, month_start, "
        + ("month_end, " if p == "book_seq" else "CAST(NULL AS DATE) AS month_end, ")
        + ", ".join(c if c in cols else f"CAST(NULL AS {EXACT_MONEY}) AS {c}" for c in all_cols)
        + f" FROM {p}"
        for p, cols in part_cols.items())
    # The final stage: each part added up over the batches of customers (one batch: the sums themselves).
    short = {"book": "book_t", "book_seq": "seq_t", "book_size": "size_t", "fees": "fees_t", "churn": "churn_t",
             "new_cust": "new_t", "book_base": "base_t"}
    final_ctes = [
        f"""{short[p]} AS (
    SELECT rm_id, month_start, {'month_end, ' if p == 'book_seq' else ''}{', '.join(f'CAST(SUM({c}) AS DOUBLE) AS {c}' for c in cols)}
    FROM parts WHERE part = '{p}'
    GROUP BY rm_id, month_start{', month_end' if p == 'book_seq' else ''}
)""" for p, cols in part_cols.items()]
    final_ctes.append("""book_start AS (
    SELECT bb.rm_id, bb.month_start, bb.book_start + COALESCE(bq.start_extra_next, 0.0) AS book_start,
           COALESCE(bq.start_quality_next, 0.0) AS book_start_quality
    FROM base_t bb
    LEFT JOIN seq_t bq ON bq.rm_id = bb.rm_id AND bq.month_end = bb.month_start
)""")
    final_ctes.append(f"""act AS (
    SELECT r.rm_id, m.month_start, r.visits, r.visits_required, r.calls, r.cross_sell_offers, r.digital_usage,
           r.training_score, r.complaints, r.nps_responses, r.nps_promoters, r.nps_detractors,
           r.compliance_checks, r.compliance_passed, r.compliance_breaches, r.major_breaches,
           r.alert_response_hours, r.referrals,
           LEAST(r.visits, r.visits_required) AS visits_covered
    FROM rm_activity r
    JOIN mon m ON CAST(r.period AS DATE) >= m.month_start AND CAST(r.period AS DATE) < m.month_end
)""")
    final_ctes.append("""keys AS (
    SELECT rm_id, month_start FROM size_t
    UNION SELECT rm_id, month_start FROM act
    UNION SELECT rm_id, month_start FROM fees_t
)""")
    final_select = (f"""SELECT k.rm_id, k.month_start,
       COALESCE(s.customers_credited, 0.0) AS customers_credited,
       COALESCE(bs.book_start, 0.0) AS book_start,
       COALESCE(b.w_balances, 0.0) AS w_balances, COALESCE(b.aum, 0.0) AS aum,
       COALESCE(b.deposits, 0.0) AS deposits, COALESCE(b.loans, 0.0) AS loans,
       COALESCE(b.loans_strategic, 0.0) AS loans_strategic, COALESCE(b.npl, 0.0) AS npl,
       COALESCE(b.products_w, 0.0) AS products_w,
       COALESCE(bq.cross_sell_base, 0.0) AS cross_sell_base, COALESCE(bq.cross_sell_w, 0.0) AS cross_sell_w,
       COALESCE(f.fee_income, 0.0) AS fee_income, COALESCE(f.volume, 0.0) AS volume,
       COALESCE(f.expected_fee, 0.0) AS expected_fee,
       COALESCE(f.n_transactions, 0.0) AS n_transactions,
       COALESCE(ch.churned, 0.0) AS churned,
       COALESCE(n.new_customers, 0.0) AS new_customers,
       COALESCE(n.new_effective_customers, 0.0) AS new_effective_customers,
       COALESCE(n.new_active_customers, 0.0) AS new_active_customers,
       COALESCE(n.new_referred, 0.0) AS new_referred,
       act.visits, act.visits_required, act.visits_covered, act.calls, act.cross_sell_offers, act.digital_usage,
       act.training_score, act.complaints, act.nps_responses, act.nps_promoters, act.nps_detractors,
       act.compliance_checks, act.compliance_passed, act.compliance_breaches, act.major_breaches,
       act.alert_response_hours, act.referrals,
       COALESCE(b.deposits_avg, 0.0) AS deposits_avg, COALESCE(b.deposits_avg_fallback, 0.0) AS deposits_avg_fallback,
       COALESCE(bq.npl_open, 0.0) AS npl_open, COALESCE({npl_new_src}.npl_new, 0.0) AS npl_new,
       b.recovered AS recovered, b.written_off AS written_off,
       COALESCE(bs.book_start_quality, 0.0) AS book_start_quality,
       COALESCE(ch.churned_quality, 0.0) AS churned_quality
FROM keys k
LEFT JOIN size_t s ON s.rm_id = k.rm_id AND s.month_start = k.month_start
LEFT JOIN book_start bs ON bs.rm_id = k.rm_id AND bs.month_start = k.month_start
LEFT JOIN book_t b ON b.rm_id = k.rm_id AND b.month_start = k.month_start
LEFT JOIN seq_t bq ON bq.rm_id = k.rm_id AND bq.month_start = k.month_start
LEFT JOIN fees_t f ON f.rm_id = k.rm_id AND f.month_start = k.month_start
LEFT JOIN churn_t ch ON ch.rm_id = k.rm_id AND ch.month_start = k.month_start
LEFT JOIN new_t n ON n.rm_id = k.rm_id AND n.month_start = k.month_start
LEFT JOIN act ON act.rm_id = k.rm_id AND act.month_start = k.month_start
ORDER BY k.rm_id, k.month_start
""")
    return {"ctes": ([daily_cte.rstrip().rstrip(",")] if daily_cte else []) + [ASG_CTE, MON_CTE],
            "mon": MON_CTE, "fam": f"""fam AS (
    SELECT product_family,
           CASE WHEN {exact_sum("t.amount")} > 0
                THEN CAST({exact_sum(fee)} AS DOUBLE) / NULLIF(CAST({exact_sum("t.amount")} AS DOUBLE), 0)
                ELSE 0.0 END AS fee_rate
    FROM transactions t WHERE t.amount > 0 GROUP BY product_family
)""", "per_customer": f"""asg_month AS (
    SELECT a.customer_id, a.rm_id, m.month_start,
           a.share * date_diff('day', GREATEST(a.start_date, m.month_start), LEAST(a.end_date, m.month_end))
               / NULLIF(m.days, 0) AS w
    FROM asg a JOIN mon m ON a.start_date < m.month_end AND a.end_date > m.month_start
),
asg_c AS (
    SELECT a.customer_id, a.rm_id, a.start_date, a.end_date, a.share,
           CAST(c.open_date AS DATE) AS open_date, CAST(c.close_date AS DATE) AS close_date,
           {q_thr} AS q_thr
    FROM asg a LEFT JOIN customers c ON c.customer_id = a.customer_id
),
bal AS (
    SELECT b.customer_id, {snap_month}, b.aum, b.deposits, b.loans,
           {strat} AS loans_strategic, {npl} AS npl, b.n_products,
           {dep_avg} AS deposits_avg, {dep_fallback} AS dep_fallback,{npl_new_plain}
           {recovered} AS recovered, {written_off} AS written_off
    FROM balances b
    {daily_join}
    WHERE {month_of("b.snapshot_date")} IN (SELECT month_start FROM mon)
),
bal_seq AS (
    SELECT b.customer_id, {snap_month}, b.n_products, b.aum,
           LAG(b.n_products) OVER (PARTITION BY b.customer_id ORDER BY b.snapshot_date) AS prev_products,
           COALESCE({prev_npl}, 0.0) AS npl_prev{npl_new_seq},
           CASE WHEN {month_of(prev_snap)} = {mo} THEN 1 ELSE 0 END AS dup
    FROM balances b
    WHERE {month_of("b.snapshot_date")} IN (SELECT month_start FROM mon)
),
book AS (
    SELECT am.rm_id, am.month_start,
           {exact_sum("am.w")} AS w_balances,
           {exact_sum("am.w * am.aum")} AS aum, {exact_sum("am.w * am.deposits")} AS deposits,
           {exact_sum("am.w * am.loans")} AS loans,
           {exact_sum("am.w * am.loans_strategic")} AS loans_strategic,
           {exact_sum("am.w * am.npl")} AS npl, {exact_sum("am.w * am.n_products")} AS products_w,
           {exact_sum("am.w * am.deposits_avg")} AS deposits_avg,
           {exact_sum("am.w * am.dep_fallback")} AS deposits_avg_fallback,
           {npl_new_sum_plain}{exact_sum("am.w * am.recovered")} AS recovered,
           {exact_sum("am.w * am.written_off")} AS written_off
    FROM (
        SELECT a.rm_id, bal.month_start,
               a.share * date_diff('day', GREATEST(a.start_date, bal.month_start), LEAST(a.end_date, bal.month_end))
                   / NULLIF(bal.days, 0) AS w,
               bal.aum, bal.deposits, bal.loans, bal.loans_strategic, bal.npl, bal.n_products,
               bal.deposits_avg, bal.dep_fallback,{npl_new_col_plain} bal.recovered, bal.written_off
        FROM bal JOIN asg a ON a.customer_id = bal.customer_id
                           AND a.start_date < bal.month_end AND a.end_date > bal.month_start
    ) am
    GROUP BY am.rm_id, am.month_start
),
book_seq AS (
    SELECT am.rm_id, am.month_start, am.month_end,
           {exact_sum("CASE WHEN am.ov = 1 AND am.prev_products IS NOT NULL THEN am.w ELSE 0.0 END")}
               AS cross_sell_base,
           {exact_sum("CASE WHEN am.ov = 1 AND am.n_products > am.prev_products THEN am.w ELSE 0.0 END")}
               AS cross_sell_w,
           {exact_sum("CASE WHEN am.ov = 1 THEN am.w * am.npl_prev ELSE 0.0 END")} AS npl_open{npl_new_sum_seq},
           {exact_sum("am.share_next * am.quality")} AS start_quality_next,
           {exact_sum("CASE WHEN am.dup = 1 THEN am.share_next ELSE 0.0 END")} AS start_extra_next
    FROM (
        SELECT a.rm_id, s.month_start, s.month_end,
               CASE WHEN a.start_date < s.month_end AND a.end_date > s.month_start THEN 1 ELSE 0 END AS ov,
               a.share * date_diff('day', GREATEST(a.start_date, s.month_start), LEAST(a.end_date, s.month_end))
                   / NULLIF(s.days, 0) AS w,
               s.n_products, s.prev_products, s.npl_prev{npl_new_col_seq},
               CASE WHEN a.start_date <= s.month_end AND a.end_date > s.month_end AND a.open_date <= s.month_end
                         AND (a.close_date IS NULL OR a.close_date > s.month_end)
                    THEN a.share ELSE 0.0 END AS share_next,
               CASE WHEN s.aum >= a.q_thr THEN 1.0 ELSE 0.0 END AS quality, s.dup
        FROM bal_seq s
        JOIN asg_c a ON a.customer_id = s.customer_id
                    AND ((a.start_date < s.month_end AND a.end_date > s.month_start)
                         OR (a.start_date <= s.month_end AND a.end_date > s.month_end))
    ) am
    GROUP BY am.rm_id, am.month_start, am.month_end
),
book_size AS (
    SELECT rm_id, month_start, {exact_sum("w")} AS customers_credited FROM asg_month GROUP BY rm_id, month_start
),
fees AS (
    SELECT a.rm_id, {month_of("t.date")} AS month_start, {exact_sum(f"a.share * {fee}")} AS fee_income,
           {exact_sum("a.share * t.amount")} AS volume,
           {exact_sum("a.share * t.amount * fr.fee_rate")} AS expected_fee,
           {exact_sum("a.share")} AS n_transactions
    FROM transactions t
    JOIN fam fr ON fr.product_family = t.product_family
    JOIN asg a ON t.customer_id = a.customer_id
              AND CAST(t.date AS DATE) >= a.start_date AND CAST(t.date AS DATE) < a.end_date
    WHERE {month_of("t.date")} IN (SELECT month_start FROM mon)
    GROUP BY a.rm_id, {month_of("t.date")}
),
qual AS (
    SELECT b.customer_id, {next_month("b.snapshot_date")} AS month_start,
           CASE WHEN b.aum >= {q_thr} THEN 1.0 ELSE 0.0 END AS quality
    FROM balances b
    JOIN customers c ON c.customer_id = b.customer_id
    WHERE {month_of("b.snapshot_date")} IN (SELECT month_start FROM mon)
      AND c.close_date IS NOT NULL AND {next_month("b.snapshot_date")} = {month_of("c.close_date")}
),
book_base AS (
    SELECT a.rm_id, m.month_start, {exact_sum("a.share")} AS book_start
    FROM asg a
    JOIN mon m ON a.start_date <= m.month_start AND a.end_date > m.month_start
    JOIN customers c ON c.customer_id = a.customer_id
    WHERE CAST(c.open_date AS DATE) <= m.month_start
      AND (c.close_date IS NULL OR CAST(c.close_date AS DATE) > m.month_start)
    GROUP BY a.rm_id, m.month_start
),
churn AS (
    SELECT a.rm_id, m.month_start, {exact_sum("a.share")} AS churned,
           {exact_sum("a.share * COALESCE(q.quality, 0.0)")} AS churned_quality
    FROM customers c
    JOIN asg a ON c.customer_id = a.customer_id
              AND a.start_date < CAST(c.close_date AS DATE) AND a.end_date >= CAST(c.close_date AS DATE)
    JOIN mon m ON {month_of("c.close_date")} = m.month_start
    LEFT JOIN qual q ON q.customer_id = c.customer_id AND q.month_start = m.month_start
    WHERE c.close_date IS NOT NULL
    GROUP BY a.rm_id, m.month_start
),
effective AS (
    SELECT DISTINCT t.customer_id
    FROM transactions t JOIN customers c ON t.customer_id = c.customer_id
    WHERE t.amount > 0 AND CAST(t.date AS DATE) >= CAST(c.open_date AS DATE)
      AND date_diff('day', CAST(c.open_date AS DATE), CAST(t.date AS DATE)) < {w}
),
held AS (
{held_sql}
),
effective_assets AS (
    SELECT DISTINCT h.customer_id
    FROM held h JOIN customers c ON h.customer_id = c.customer_id
    WHERE h.n_held >= {h} AND h.min_aum >= {eff_min!r} AND h.min_aum >= {eff_thr}
      AND h.snapshot_date >= CAST(c.open_date AS DATE)
      AND date_diff('day', CAST(c.open_date AS DATE), h.snapshot_date) < {ew}
),
new_cust AS (
    SELECT a.rm_id, m.month_start, {exact_sum("a.share")} AS new_customers,
           {exact_sum("CASE WHEN e.customer_id IS NOT NULL THEN a.share ELSE 0.0 END")}
               AS new_active_customers,
           {exact_sum("CASE WHEN ea.customer_id IS NOT NULL THEN a.share ELSE 0.0 END")}
               AS new_effective_customers,
           {exact_sum(f"CASE WHEN {channel} = 'referral' THEN a.share ELSE 0.0 END")} AS new_referred
    FROM customers c
    JOIN asg a ON c.customer_id = a.customer_id
              AND a.start_date <= CAST(c.open_date AS DATE) AND a.end_date > CAST(c.open_date AS DATE)
    JOIN mon m ON {month_of("c.open_date")} = m.month_start
    LEFT JOIN effective e ON e.customer_id = c.customer_id
    LEFT JOIN effective_assets ea ON ea.customer_id = c.customer_id
    GROUP BY a.rm_id, m.month_start
)""", "parts": parts + "\n",
            "final_ctes": final_ctes, "final_select": final_select}


def data_range_sql() -> str:
    """SQL: first and last day over transactions.date, balances.snapshot_date, rm_activity.period."""
    return """
SELECT MIN(lo) AS lo, MAX(hi) AS hi FROM (
    SELECT MIN(CAST(date AS DATE)) AS lo, MAX(CAST(date AS DATE)) AS hi FROM transactions
    UNION ALL
    SELECT MIN(CAST(snapshot_date AS DATE)) AS lo, MAX(CAST(snapshot_date AS DATE)) AS hi FROM balances
    UNION ALL
    SELECT MIN(CAST(period AS DATE)) AS lo, MAX(CAST(period AS DATE)) AS hi FROM rm_activity
) r
"""


def _is_pandas(*frames: Any) -> bool:
    return all(isinstance(f, pd.DataFrame) for f in frames)


def _data_range(tables: dict[str, Any], engine: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last date of the data (days). pandas frames are read directly; Spark DataFrames,
    table names and paths with a MIN/MAX query run by ``engine`` (only one row is collected)."""
    names = ("transactions", "balances", "rm_activity")
    if _is_pandas(*(tables[n] for n in names)):
        lo = min(pd.to_datetime(tables["transactions"]["date"]).min(),
                 pd.to_datetime(tables["balances"]["snapshot_date"]).min(),
                 pd.to_datetime(tables["rm_activity"]["period"]).min())
        hi = max(pd.to_datetime(tables["transactions"]["date"]).max(),
                 pd.to_datetime(tables["balances"]["snapshot_date"]).max(),
                 pd.to_datetime(tables["rm_activity"]["period"]).max())
        return lo, hi
    r = run_sql(data_range_sql(), {n: tables[n] for n in names}, engine=engine).iloc[0]
    if pd.isna(r["lo"]):
        raise DataError("rm_month_measures: transactions, balances and rm_activity hold no dated rows")
    return pd.Timestamp(r["lo"]), pd.Timestamp(r["hi"])


REQUIRED = ("customers", "transactions", "balances", "assignments", "rm_activity", "rms")
#: DuckDB threads of the RM x month aggregation in one batch (see :func:`rm_month_measures`).
SQL_THREADS = 1
#: Balance rows per batch of customers (None: :data:`BATCH_BYTES_PER_ROW` of the DuckDB memory limit).
#: With more balance rows than that, DuckDB runs the per-customer stage of
#: :func:`rm_month_sql_stages` on ranges of ``customer_id`` holding about this many rows each.
BATCH_BALANCE_ROWS: int | None = None
#: Memory budgeted per balance row of a batch (one thread used about 100 bytes per row at 1M
#: customers; two threads about twice that): a 5 GB limit gives batches of 12.5M balance rows.
BATCH_BYTES_PER_ROW = 400
#: DuckDB threads when running in batches. Two: a batch fits two threads' memory under the limit, and
#: on an idle two-core machine they halve the wall for the same CPU (10M customers, 5GB limit: 125 s
#: wall / 238 CPU s / 1.65 GB peak RSS, against 240 CPU s on one thread); on a loaded machine (other
#: jobs on both cores) two threads gain nothing and cost some CPU (1M, 5GB: 31 against 26 CPU s).
BATCH_SQL_THREADS = 2
#: Tables whose rows belong to one customer each: filtered to the batch's customers.
PER_CUSTOMER_TABLES = ("customers", "transactions", "balances", "assignments", "daily_balances")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _limit_bytes(limit: str | None) -> int | None:
    """A DuckDB memory limit such as ``"5GB"`` or ``"500 MiB"`` in bytes (None when unknown)."""
    import re

    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", limit or "")
    if not m or m.group(2).upper() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _customer_batches(balance_rows: int) -> int:
    """Number of customer batches for ``balance_rows`` balance rows (1: all customers at once):
    :data:`BATCH_BALANCE_ROWS` rows each, by default as many as the memory limit
    (:func:`rmanalytics.engine.default_memory_limit`) allows at :data:`BATCH_BYTES_PER_ROW`."""
    from rmanalytics.engine import default_memory_limit

    per = BATCH_BALANCE_ROWS
    if per is None:
        limit = _limit_bytes(default_memory_limit())
        per = max(limit // BATCH_BYTES_PER_ROW, 1_000_000) if limit else 4_000_000
    return max(1, -(-int(balance_rows) // int(per)))


def _sql_literal(value: Any) -> str | None:
    """``value`` as an SQL literal when it is a string or an integer, else None."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return None


def _run_in_batches(con: Any, plan: dict[str, Any], batches: int) -> pd.DataFrame:
    """:func:`rm_month_sql`'s result computed in ``batches`` batches of customers on DuckDB.

    The customers are cut into ranges of ``customer_id`` (bounds: every n-th distinct id of
    ``customers``; the first range also holds NULL ids, the last is open) and the per-customer
    stage of :func:`rm_month_sql_stages` runs on each range in turn, every per-customer table
    (:data:`PER_CUSTOMER_TABLES`) filtered to it, appending its sums to a temporary ``parts``
    table; the bank-wide fee rates (``fam``) are computed once on all transactions first; the
    final stage then adds the parts up. Every per-customer CTE joins its tables on
    ``customer_id``, so the ranges partition the rows and the parts add up to the whole (the sums
    are exact decimals, so bit for bit). Each batch holds a fraction of the balance history,
    so the window (snapshot sequence) and the joins fit in memory instead of spilling; when a table
    is sorted by ``customer_id`` (as written by the synthetic bank), the Parquet reader skips the
    row groups outside the range. Falls back to one statement when the ids are neither strings nor
    integers. With ``batches=1`` the stages run all the same (fee rates, parts, final sums): in one
    statement DuckDB moved the fee rates' decimal-to-double casts above the join, onto every
    transaction (7M rows at 1M customers: 6.8 s).
    """
    inputs = plan["inputs"]
    for name, src in inputs.items():
        target = f"src_{name}" if name in PER_CUSTOMER_TABLES else name
        if isinstance(src, pd.DataFrame):
            con.register(target, src)
        else:
            con.execute(f'CREATE OR REPLACE TEMP VIEW "{target}" AS SELECT * FROM {scan_expr(src)}')
    n = con.execute("SELECT COUNT(DISTINCT customer_id) FROM src_customers").fetchone()[0]
    step = max(1, -(-int(n) // int(batches)))
    ids = [r[0] for r in con.execute(f"""
        SELECT customer_id FROM (
            SELECT customer_id, ROW_NUMBER() OVER (ORDER BY customer_id) AS rn
            FROM (SELECT DISTINCT customer_id FROM src_customers WHERE customer_id IS NOT NULL) d
        ) r WHERE rn > 1 AND (rn - 1) % {step} = 0 ORDER BY customer_id""").fetchall()]
    bounds = [_sql_literal(i) for i in ids]
    present = [t for t in PER_CUSTOMER_TABLES if t in inputs]
    if any(b is None for b in bounds):  # ids of another type: one statement
        for t in present:
            con.execute(f'CREATE OR REPLACE TEMP VIEW "{t}" AS SELECT * FROM "src_{t}"')
        return run_sql(plan["sql"], {}, engine="duckdb", con=con)
    st = rm_month_sql_stages(**plan["sql_kwargs"])
    for t in present:
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{t}" AS SELECT * FROM "src_{t}"')
    con.execute(f"CREATE OR REPLACE TEMP TABLE fam AS WITH {st['fam']} SELECT * FROM fam")  # all transactions
    stage = "WITH " + ",\n".join(st["ctes"] + [st["per_customer"]]) + "\n" + st["parts"]
    edges = [None] + bounds + [None]
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        cond = " AND ".join(([f"customer_id >= {lo}"] if lo else []) + ([f"customer_id < {hi}"] if hi else []))
        if lo is None:
            cond = f"({cond} OR customer_id IS NULL)" if cond else "TRUE"
        for t in present:
            con.execute(f'CREATE OR REPLACE TEMP VIEW "{t}" AS SELECT * FROM "src_{t}" WHERE {cond}')
        con.execute(("CREATE OR REPLACE TEMP TABLE parts AS " if k == 0 else "INSERT INTO parts ") + stage)
    final = "WITH " + ",\n".join([st["mon"]] + st["final_ctes"]) + "\n" + st["final_select"]
    return run_sql(final, {"months": inputs["months"], "rm_activity": inputs["rm_activity"]}, engine="duckdb",
                   con=con)


def rm_month_measures(tables: dict[str, pd.DataFrame], *, start=None, end=None, engine: str | None = None,
                      effective_window_days: int = 90, effective: EffectiveRule | None = None,
                      quality: QualityRule | None = None) -> pd.DataFrame:
    """Run :func:`rm_month_sql` on the contract tables: one row per RM and calendar month.

    Amounts in currency, balances as credited month-end snapshots, counts credited by share.

    Parameters
    ----------
    tables : contract tables by name: pandas frames or Parquet/CSV paths; with ``engine="spark"``
        also Spark DataFrames or catalog table names. The aggregation then runs entirely in Spark:
        the data range (when ``start``/``end`` are not given) is one MIN/MAX query, the optional
        columns are read from the schemas, and only the RM x month result is collected.
    start, end : first and last day of the months to cover (default: the data range).
    engine : "duckdb" or "spark" (see :mod:`rmanalytics.engine`).
    effective, quality : thresholds of effective new customers and of the quality tier (defaults
        :class:`EffectiveRule` with ``window_days=effective_window_days``, :class:`QualityRule`).

    On DuckDB, when the balances hold more rows than the memory budget allows in one batch
    (:func:`_customer_batches`: :data:`BATCH_BYTES_PER_ROW` per row of the DuckDB memory limit), the
    per-customer stage runs on batches of customers (ranges of ``customer_id``) and the final stage
    adds their sums up (:func:`_run_in_batches`): memory follows the batch, not the bank, and the
    snapshot window no longer spills (equal to the one-batch result bit for bit: the sums are
    exact decimals, see :func:`rm_month_sql_stages`). Spark runs :func:`rm_month_sql`'s one statement.

    The definitions used where the data decides (deposits on daily averages or month-end, new NPL
    from a column or derived, recovery available or not) are in ``attrs["definitions"]``
    (KPI -> sentence) and carried into :func:`kpi_table`; see :func:`definitions_table`.
    ``attrs["settings"]`` records what the result depends on besides the data (see
    :func:`monthly_measures`, which reads a recorded table back when they match).
    """
    plan = _rm_month_plan(tables, start=start, end=end, engine=engine,
                          effective_window_days=effective_window_days, effective=effective, quality=quality)
    return _run_rm_month_plan(plan, engine)


def _rm_month_plan(tables: dict[str, Any], *, start=None, end=None, engine: str | None = None,
                   effective_window_days: int = 90, effective: EffectiveRule | None = None,
                   quality: QualityRule | None = None) -> dict[str, Any]:
    """Everything :func:`rm_month_measures` decides before running its SQL: the SQL text, its inputs,
    the month calendar, the data-dependent definitions and the ``settings`` record."""
    missing = [t for t in REQUIRED if t not in tables]
    if missing:
        raise DataError(f"rm_month_measures needs tables {missing}")
    if start is None or end is None:
        lo, hi = _data_range(tables, engine=engine)
        start, end = start or lo, end or hi
    months = month_calendar(start, end)
    tx_cols = columns_of(tables["transactions"], engine)
    bal_cols = columns_of(tables["balances"], engine)
    effective = effective or EffectiveRule(window_days=effective_window_days)
    quality = quality or QualityRule()
    if tables.get("daily_balances") is not None:
        dep = "daily_balances"
    elif "deposits_avg" in bal_cols:
        dep = "column"
    else:
        dep = "month_end"
    flags = {c: c in bal_cols for c in ("npl_new", "recovered", "written_off")}
    sql_kwargs = dict(
        has_fee="fee" in tx_cols,
        has_strategic="loans_strategic" in bal_cols,
        has_npl="npl" in bal_cols,
        has_channel="acquisition_channel" in columns_of(tables["customers"], engine),
        effective_window_days=effective_window_days,
        deposits_avg=dep, has_npl_new=flags["npl_new"], has_recovered=flags["recovered"],
        has_written_off=flags["written_off"], effective=effective, quality=quality,
    )
    sql = rm_month_sql(**sql_kwargs)
    inputs = {k: tables[k] for k in ("customers", "transactions", "balances", "assignments", "rm_activity")}
    if dep == "daily_balances":
        inputs["daily_balances"] = tables["daily_balances"]
    settings = {
        "format": MONTHLY_FORMAT,
        "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
        "months": [months["month_start"].iloc[0].date().isoformat(), months["month_start"].iloc[-1].date().isoformat()]
        if len(months) else [],
        "effective": asdict(effective), "quality": asdict(quality),
        "effective_window_days": int(effective_window_days),
        "rows": {k: _row_count(v, engine) for k, v in inputs.items()},
    }
    inputs["months"] = months
    return {"sql": sql, "sql_kwargs": sql_kwargs, "inputs": inputs, "dep": dep, "flags": flags,
            "effective": effective, "quality": quality,
            "effective_window_days": effective_window_days, "settings": settings}


def _row_count(src: Any, engine: str | None) -> int:
    """Rows of an input: ``len`` of a pandas frame, else one COUNT(*) in the engine (Parquet: footer only)."""
    if isinstance(src, pd.DataFrame):
        return len(src)
    return int(run_sql("SELECT COUNT(*) AS n FROM t", {"t": src}, engine=engine)["n"].iloc[0])


def _run_rm_month_plan(plan: dict[str, Any], engine: str | None) -> pd.DataFrame:
    sql, inputs, dep, flags = plan["sql"], plan["inputs"], plan["dep"], plan["flags"]
    effective, quality, effective_window_days = plan["effective"], plan["quality"], plan["effective_window_days"]
    if resolve_engine(engine, inputs) == "duckdb":
        batches = _customer_batches(plan["settings"]["rows"].get("balances", 0))
        # One thread: the snapshot sequence (a window over the whole balance history) and the joins
        # then peak at under half the memory of two threads (1M customers: 2.1 GB of RSS instead of
        # 5 GB) in about the same time on two cores. The result order is fixed by the ORDER BY.
        con = connect(threads=SQL_THREADS if batches == 1 else BATCH_SQL_THREADS)
        try:
            con.execute("SET preserve_insertion_order = false")
            out = _run_in_batches(con, plan, batches)  # one batch: the fee rates and parts first all the same
        finally:
            con.close()
    else:
        out = run_sql(sql, inputs, engine=engine)
    out["month_start"] = pd.to_datetime(out["month_start"])
    dep_txt = {"daily_balances": "daily average (日均) from the daily_balances table",
               "column": "daily average (日均) from balances.deposits_avg",
               "month_end": "month-end snapshots (no daily averages in the data)"}[dep]
    out.attrs["definitions"] = {
        "deposit_growth": dep_txt, "avg_deposits": dep_txt,
        "new_effective_customers": (f"AUM >= {effective.aum_retail:,.0f} (retail) / {effective.aum_corporate:,.0f} "
                                    f"(corporate) at {effective.hold_months} consecutive month-end(s) within "
                                    f"{effective.window_days} days of opening"),
        "new_active_customers": f"a positive transaction within {effective_window_days} days of opening",
        "new_npl_ratio": ("balances.npl_new" if flags["npl_new"]
                          else "derived: month-on-month increase of a customer's NPL balance (no npl_new column)"),
        "npl_recovery_rate": ("balances.recovered" if flags["recovered"]
                              else "not available (no balances.recovered column)"),
        "quality_churn_rate": (f"strategic tier: AUM >= {quality.aum_retail:,.0f} (retail) / "
                               f"{quality.aum_corporate:,.0f} (corporate) at the previous month-end"),
    }
    out.attrs["settings"] = plan["settings"]
    return out


#: File name (under a 04 run's ``tables/``) of the recorded :func:`rm_month_measures` table.
MONTHLY_TABLE = "rm_month_measures"
#: Version of the ``settings`` record; a recorded table of another version is recomputed.
MONTHLY_FORMAT = 1


def monthly_measures(tables: dict[str, Any], path: str | os.PathLike | None = None, *,
                     engine: str | None = None, **rule_kwargs: Any) -> pd.DataFrame:
    """:func:`rm_month_measures`, read from a recorded run when it was computed the same way.

    ``path``: the ``rm_month_measures.parquet`` a notebook-04 run recorded (its ``tables/``
    folder may be given instead), or None. The recorded table is used when its ``settings``
    (Parquet metadata, written with ``attrs`` by :class:`~rmanalytics.report.Recorder`) equal
    those of this call: the same SQL text (so the same rule thresholds and the same optional columns
    of the data), the same first and last month, the same rules and the same row count of every
    input table. Otherwise (no path, no file, other settings, no settings recorded) the table is
    recomputed: ``rm_month_measures(tables, engine=engine, **rule_kwargs)``. Deciding costs the
    data range (one MIN/MAX query when ``start``/``end`` are not given) and a row count per input.
    ``attrs["source"]`` says which happened ("recorded: <path>" or "computed"). The check does not
    hash the data: give the path of a run on the same data (``run-all`` does).

    ``rule_kwargs``: ``start``, ``end``, ``effective_window_days``, ``effective``, ``quality`` of
    :func:`rm_month_measures`.
    """
    plan = _rm_month_plan(tables, engine=engine, **rule_kwargs)
    if path is not None:
        p = Path(path)
        if p.is_dir():
            p = p / f"{MONTHLY_TABLE}.parquet"
        if p.is_file():
            recorded = pd.read_parquet(p)
            if recorded.attrs.get("settings") == plan["settings"]:
                recorded.attrs["source"] = f"recorded: {p}"
                return recorded
    out = _run_rm_month_plan(plan, engine)
    out.attrs["source"] = "computed"
    return out


def definitions_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """Which definition each data-dependent KPI used: ``kpi, definition`` from
    ``kpis.attrs["definitions"]`` (set by :func:`rm_month_measures` / :func:`kpi_table`)."""
    d = kpis.attrs.get("definitions", {})
    return pd.DataFrame({"kpi": list(d), "definition": list(d.values())})


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    num, den = num.astype(float), den.astype(float)
    return (num / den.where(den > 0)).astype(float)


def kpi_table(
    tables: dict[str, pd.DataFrame] | None = None,
    *,
    freq: str = "quarter",
    monthly: pd.DataFrame | None = None,
    start=None,
    end=None,
    engine: str | None = None,
    effective_window_days: int = 90,
    strategic_loan_weight: float = 1.5,
    effective: EffectiveRule | None = None,
    quality: QualityRule | None = None,
    customer_level: bool = True,
    hnw_aum: float = 1_000_000.0,
    visits_per_year: float = 4.0,
    major_risk_gap: int = 2,
) -> pd.DataFrame:
    """KPIs per RM and period (see :data:`KPI_DEFINITIONS` for formulas and units).

    Parameters
    ----------
    tables : contract tables (needs customers, transactions, balances, assignments, rm_activity, rms);
        Spark DataFrames or table names with ``engine="spark"`` (see :func:`rm_month_measures`).
    freq : 'month', 'quarter' or 'year'; ``period`` is labelled as in ``kpi_targets``.
    monthly : precomputed :func:`rm_month_measures` (saves the SQL run when several freqs are needed).
    strategic_loan_weight : weight of strategic-line loans in ``weighted_loan_volume`` (1 = no
        extra weight; the bank's choice, default 1.5).
    effective, quality : see :func:`rm_month_measures`.
    customer_level : with the optional relationship tables present (pandas), compute
        visit_coverage, complaint_rate and nps from them (:func:`customer_level_measures`) and
        the suitability KPIs from holdings; ``<kpi>_source`` says, per row, which data were used.
    hnw_aum, visits_per_year, major_risk_gap : thresholds of the customer-level KPIs (currency,
        visits a year, risk levels), see :mod:`rmanalytics.service.rules`.

    Returns
    -------
    One row per ``rm_id, period`` with ``period_start, period_end`` (exclusive), every KPI,
    the additive inputs (``volume``, ``customers_credited`` ...), ``days_active``,
    ``partial_period`` and ``visit_coverage_source``, ``complaint_rate_source``, ``nps_source``.
    """
    if freq not in FREQS:
        raise ParameterError(f"freq must be one of {list(FREQS)}, got {freq!r}")
    if monthly is None:
        if tables is None:
            raise ParameterError("give tables or monthly")
        monthly = rm_month_measures(tables, start=start, end=end, engine=engine,
                                    effective_window_days=effective_window_days, effective=effective,
                                    quality=quality)
    if strategic_loan_weight < 0:
        raise ValueError(f"strategic_loan_weight must be >= 0, got {strategic_loan_weight}")
    definitions = dict(monthly.attrs.get("definitions", {}))
    definitions["weighted_loan_volume"] = (f"loans + {strategic_loan_weight - 1:g} x strategic loans "
                                           f"(strategic lines weighted {strategic_loan_weight:g})")
    m = monthly.copy()
    for c in ("deposits_avg", "deposits_avg_fallback", "npl_open", "npl_new", "book_start_quality",
              "churned_quality", "new_active_customers"):
        if c not in m.columns:  # a monthly frame from before these measures existed
            m[c] = m["deposits"] if c == "deposits_avg" else 0.0
    for c in ("recovered", "written_off"):
        if c not in m.columns:
            m[c] = np.nan
    m["period"] = period_label(m["month_start"], freq).to_numpy()
    p = m["month_start"].dt.to_period(FREQS[freq])
    m["period_start"] = p.dt.start_time.dt.normalize()
    m["period_end"] = (p + 1).dt.start_time.dt.normalize()
    n_months = {"month": 1, "quarter": 3, "year": 12}[freq]
    sums = ["fee_income", "volume", "expected_fee", "n_transactions", "churned", "new_customers", "new_effective_customers",
            "new_referred", "visits", "visits_required", "visits_covered", "calls", "cross_sell_offers",
            "complaints", "nps_responses", "nps_promoters", "nps_detractors", "compliance_checks",
            "compliance_passed", "compliance_breaches", "major_breaches", "referrals", "aum", "deposits", "loans",
            "loans_strategic", "npl", "products_w", "w_balances", "cross_sell_base", "cross_sell_w",
            "customers_credited", "deposits_avg", "deposits_avg_fallback", "npl_new", "churned_quality",
            "new_active_customers"]
    flows = ["recovered", "written_off"]  # NaN when the data has no such column
    means = ["digital_usage", "training_score", "alert_response_hours"]
    m = m.sort_values(["rm_id", "month_start"])
    g = m.groupby(["rm_id", "period"], sort=True)
    out = g[sums].sum(min_count=1)
    out[sums] = out[sums].fillna(0.0)
    out[flows] = g[flows].sum(min_count=1)
    out[means] = g[means].mean()
    out["period_start"] = g["period_start"].first()
    out["period_end"] = g["period_end"].first()
    first = m[m["month_start"] == m["period_start"]].set_index(["rm_id", "period"])["book_start"]
    out["book_start"] = first.reindex(out.index).fillna(0.0)
    firsts = m[m["month_start"] == m["period_start"]].set_index(["rm_id", "period"])
    for c in ("book_start_quality", "npl_open"):
        out[c] = firsts[c].reindex(out.index).fillna(0.0)
    out = out.reset_index()
    # balances: average over all calendar months of the period (pro-rated, see module doc)
    for col in ("aum", "deposits", "loans", "loans_strategic", "npl", "customers_credited", "deposits_avg"):
        out[col] = out[col] / n_months
    out["avg_deposits"] = out["deposits_avg"]
    out["avg_deposits_month_end"] = out["deposits"]
    out["weighted_loan_volume"] = out["loans"] + (strategic_loan_weight - 1.0) * out["loans_strategic"]
    out["new_npl_ratio"] = _ratio(out["npl_new"], out["loans"])
    out["npl_recovery_rate"] = _ratio(out["recovered"], out["npl_open"] + out["npl_new"])
    out["quality_churn_rate"] = _ratio(out["churned_quality"], out["book_start_quality"])
    out["loan_volume"] = out["loans"]
    out["strategic_loan_volume"] = out["loans_strategic"]
    out["strategic_loan_share"] = _ratio(out["loans_strategic"], out["loans"])
    out["npl_ratio"] = _ratio(out["npl"], out["loans"])
    out["product_penetration"] = _ratio(out["products_w"], out["w_balances"])
    out["cross_sell_rate"] = _ratio(out["cross_sell_w"], out["cross_sell_base"])
    out["churn_rate"] = _ratio(out["churned"], out["book_start"])
    out["nps"] = 100.0 * _ratio(out["nps_promoters"] - out["nps_detractors"], out["nps_responses"])
    out["complaint_rate"] = 100.0 * _ratio(out["complaints"], out["customers_credited"])
    out["visit_coverage"] = _ratio(out["visits_covered"], out["visits_required"])
    out["referral_share"] = _ratio(out["new_referred"], out["new_customers"])
    out["compliance_pass_rate"] = _ratio(out["compliance_passed"], out["compliance_checks"])
    out = out.sort_values(["rm_id", "period_start"]).reset_index(drop=True)
    prev_start = out.groupby("rm_id")["period_end"].shift(1)
    contiguous = prev_start == out["period_start"]
    prev_dep = out.groupby("rm_id")["avg_deposits"].shift(1).where(contiguous)
    prev_aum = out.groupby("rm_id")["aum"].shift(1).where(contiguous)
    out["deposit_growth"] = out["avg_deposits"] - prev_dep
    out["aum_growth"] = _ratio(out["aum"], prev_aum) - 1.0
    for k in CUSTOMER_LEVEL_KPIS:
        out[f"{k}_source"] = "rm_activity"
    out["suitability_breaches"] = np.nan
    out["suitability_major_breaches"] = np.nan
    if customer_level and tables is not None:
        out = _apply_customer_level(out, tables, freq, hnw_aum=hnw_aum, visits_per_year=visits_per_year,
                                    major_risk_gap=major_risk_gap, engine=engine)
    # employment within the period
    if tables is not None and "rms" in tables:
        rms = tables["rms"]
        if not isinstance(rms, pd.DataFrame):  # Spark DataFrame / table name / path: small, collect it
            rms = run_sql("SELECT rm_id, hire_date, exit_date FROM rms", {"rms": rms}, engine=engine)
        rms = rms.set_index("rm_id")
        hire = pd.to_datetime(out["rm_id"].map(rms["hire_date"]))
        exit_ = pd.to_datetime(out["rm_id"].map(rms["exit_date"]))
        lo = np.maximum(hire.to_numpy("datetime64[ns]"), out["period_start"].to_numpy("datetime64[ns]"))
        hi_exit = exit_.fillna(pd.Timestamp("2200-01-01")).to_numpy("datetime64[ns]")
        hi = np.minimum(hi_exit, out["period_end"].to_numpy("datetime64[ns]"))
        out["days_active"] = np.maximum((hi - lo).astype("timedelta64[D]").astype(int), 0)
        out["partial_period"] = (hire > out["period_start"]) | (exit_.notna() & (exit_ < out["period_end"]))
    else:
        out["days_active"] = (out["period_end"] - out["period_start"]).dt.days
        out["partial_period"] = False
    kpis = list(KPI_DEFINITIONS)
    extra = ["volume", "expected_fee", "customers_credited", "book_start", "new_customers", "visits", "calls",
             "cross_sell_offers", "days_active", "partial_period", "book_start_quality", "npl_open", "npl_new",
             "recovered", "written_off", "deposits_avg_fallback"] + [f"{k}_source" for k in CUSTOMER_LEVEL_KPIS]
    cols = ["rm_id", "period", "period_start", "period_end"] + kpis + [c for c in extra if c not in kpis]
    res = out[cols]
    res.attrs["definitions"] = definitions
    return res


def segment_period_sql() -> str:
    """SQL (DuckDB dialect, Spark-transpilable): fee income and active customers per segment and
    period. Inputs: ``customers, transactions, periods`` (``period, period_start, period_end``) and
    the segment column exposed as ``segment`` by a CTE. Active = at least one transaction in the
    period."""
    return """
WITH per AS (
    SELECT period, CAST(period_start AS DATE) AS period_start, CAST(period_end AS DATE) AS period_end FROM periods
)
SELECT p.period, CAST(c.segment AS VARCHAR) AS segment, COUNT(DISTINCT t.customer_id) AS customers,
       SUM(t.fee) AS fee_income, SUM(t.amount) AS volume
FROM transactions t
JOIN seg c ON c.customer_id = t.customer_id
JOIN per p ON CAST(t.date AS DATE) >= p.period_start AND CAST(t.date AS DATE) < p.period_end
GROUP BY p.period, CAST(c.segment AS VARCHAR)
ORDER BY p.period, segment
"""


def segment_fee_table(tables: dict[str, pd.DataFrame], *, segment: str = "customer_type", freq: str = "quarter",
                      end: str | pd.Timestamp | None = None, engine: str | None = None) -> pd.DataFrame:
    """Fee income (currency), transaction volume and active customers per segment and period.

    ``end``: last day counted (the observation end; default the last transaction date); later
    transactions are left out, and the period holding ``end`` is then partial.

    ``segment`` is a column of ``customers`` (e.g. customer_type, industry); a missing segment
    value is reported as the segment ``"unknown"`` (counted, not dropped). Inputs as in
    :func:`rm_month_measures`: with ``engine="spark"`` transactions may be a Spark DataFrame, table
    name or path and are only aggregated in Spark (the customer-to-segment map is collected).
    """
    cust, tx = tables["customers"], tables["transactions"]
    if segment not in columns_of(cust, engine):
        raise DataError(f"customers has no column {segment!r} to segment by")
    if "fee" not in columns_of(tx, engine):
        raise DataError("transactions has no 'fee' column: fee income cannot be decomposed")
    if isinstance(cust, pd.DataFrame):
        seg = pd.DataFrame({"customer_id": cust["customer_id"], "segment": cust[segment]})
    else:  # one row per customer, collected: the size of a per-customer result
        seg = run_sql(f'SELECT customer_id, "{segment}" AS segment FROM customers', {"customers": cust}, engine=engine)
    seg["segment"] = seg["segment"].astype("string").fillna("unknown")
    if isinstance(tx, pd.DataFrame):
        lo, hi = pd.to_datetime(tx["date"]).min(), pd.to_datetime(tx["date"]).max()
    else:  # one MIN/MAX query in the engine
        r = run_sql("SELECT MIN(CAST(date AS DATE)) AS lo, MAX(CAST(date AS DATE)) AS hi FROM transactions",
                    {"transactions": tx}, engine=engine).iloc[0]
        lo, hi = pd.Timestamp(r["lo"]), pd.Timestamp(r["hi"])
    if end is not None:
        hi = pd.Timestamp(end)
    months = month_calendar(lo, hi)
    months["period"] = period_label(months["month_start"], freq).to_numpy()
    periods = months.groupby("period", as_index=False).agg(period_start=("month_start", "min"),
                                                           period_end=("month_end", "max"))
    if end is not None:  # period_end is exclusive: count transactions up to and including ``end``
        periods["period_end"] = periods["period_end"].clip(upper=pd.Timestamp(end).normalize() + pd.Timedelta(days=1))
    return run_sql(segment_period_sql(), {"transactions": tx, "seg": seg, "periods": periods}, engine=engine)


# --------------------------------------------------------------------------------------------
# customer-level KPIs (optional tables interactions / feedback / holdings; issue 14)
# --------------------------------------------------------------------------------------------
def customer_level_measures(tables: dict[str, Any], freq: str, *, hnw_aum: float = 1_000_000.0,
                            visits_per_year: float = 4.0, major_risk_gap: int = 2,
                            engine: str = "duckdb") -> pd.DataFrame:
    """Customer-level inputs of the KPIs per ``rm_id, period``, from whichever optional tables exist.

    - from ``feedback`` (rows with an rm_id): ``cl_complaints`` (complaints opened in the period),
      ``cl_nps_responses``, ``cl_nps_promoters`` (score >= 9), ``cl_nps_detractors`` (score <= 6);
    - from ``interactions`` + ``balances``: high-net-worth visit coverage. A customer is HNW in a
      month when its month-end AUM >= ``hnw_aum``; it then requires ``visits_per_year / 12`` visits
      (kinds visit / meeting) that month from its primary RM on the snapshot date. Per RM, customer
      and period: covered = min(visits, required); ``cl_visits_required`` and ``cl_visits_covered``
      are the sums over customers (needs ``assignments``);
    - from ``holdings`` + ``products``: ``suitability_breaches`` / ``suitability_major_breaches``
      bought in the period, credited to the primary RM on the purchase day (needs ``customers``
      and ``assignments``).
    Missing tables give missing columns. Periods are labelled as in :func:`period_label`.
    Every table may be a pandas frame or a Parquet path (``engine``: with Spark also a Spark
    DataFrame or table name): each part is one SQL query at the grain RM x period, so only that
    result reaches pandas. The primary RM is :func:`rmanalytics.assignments.primary_rm_at`'s rule
    (largest share, ties to the smallest ``rm_id``), written in SQL (:func:`primary_rm_sql`).
    """
    if freq not in FREQS:
        raise ParameterError(f"freq must be one of {list(FREQS)}, got {freq!r}")
    parts: list[pd.DataFrame] = []
    fb = tables.get("feedback")
    if fb is not None:
        f = run_sql(_feedback_sql(freq), {"feedback": fb}, engine=engine)
        f = _label_periods(f, freq)
        comp = f[f["kind"] == "complaint"].set_index(["rm_id", "period"])["n"].rename("cl_complaints")
        n = f[f["kind"] == "nps"].set_index(["rm_id", "period"])
        nps = pd.DataFrame({"cl_nps_responses": n["n"], "cl_nps_promoters": n["promoters"],
                            "cl_nps_detractors": n["detractors"]})
        parts += [comp.to_frame(), nps]
    it, bal, asg = tables.get("interactions"), tables.get("balances"), tables.get("assignments")
    if it is not None and bal is not None and asg is not None:
        vc = run_sql(_hnw_visits_sql(freq, hnw_aum=hnw_aum, visits_per_year=visits_per_year),
                     {"interactions": it, "balances": bal, "assignments": asg}, engine=engine)
        vc = _label_periods(vc, freq).set_index(["rm_id", "period"])
        parts.append(vc[["cl_visits_required", "cl_visits_covered"]])
    if all(tables.get(t) is not None for t in ("holdings", "products", "customers", "assignments")):
        b = run_sql(_suitability_sql(freq, major_risk_gap=major_risk_gap),
                    {k: tables[k] for k in ("holdings", "products", "customers", "assignments")}, engine=engine)
        b = _label_periods(b, freq).set_index(["rm_id", "period"])
        parts.append(b[["suitability_breaches", "suitability_major_breaches"]])
    if not parts:
        return pd.DataFrame(columns=["rm_id", "period"])
    return pd.concat(parts, axis=1).reset_index().rename(columns={"level_0": "rm_id", "level_1": "period"})


def _period_start_sql(day: str, freq: str) -> str:
    """SQL: the first day of the ``freq`` period holding the DATE ``day`` (portable)."""
    if freq == "year":
        return f"make_date(year({day}), 1, 1)"
    return f"CAST(date_trunc('{freq}', {day}) AS DATE)"


def _label_periods(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """``period_start`` (from SQL) -> the contract ``period`` label, on a small RM x period result."""
    df = df.copy()
    starts = pd.to_datetime(df.pop("period_start"))
    df["period"] = period_label(starts, freq).to_numpy() if len(df) else np.array([], dtype=object)
    return df


def primary_rm_sql(keys: str) -> str:
    """SQL (a SELECT) of the primary RM of each distinct ``k_customer_id, k_day`` (a DATE) of the
    relation ``keys``: the assignment covering that day (``start_date <= k_day < end_date``, open
    end when NULL) with the largest share, ties to the smallest ``rm_id``
    (:func:`rmanalytics.assignments.primary_rm_at`). Inputs: ``keys``, ``assignments``. Columns
    ``k_customer_id, k_day, rm_id``; a day no assignment covers has no row."""
    return f"""
    SELECT r.k_customer_id, r.k_day, r.rm_id FROM (
        SELECT k.k_customer_id, k.k_day, a.rm_id,
               ROW_NUMBER() OVER (PARTITION BY k.k_customer_id, k.k_day ORDER BY a.share DESC, a.rm_id) AS rank_
        FROM (SELECT DISTINCT k_customer_id, k_day FROM {keys}) k
        JOIN assignments a ON a.customer_id = k.k_customer_id
                          AND a.start_date <= k.k_day
                          AND (a.end_date IS NULL OR a.end_date > k.k_day)
    ) r WHERE r.rank_ = 1"""


def _feedback_sql(freq: str) -> str:
    """SQL: complaint and NPS counts per RM, period and kind from ``feedback`` (rows with an RM)."""
    d = "CAST(opened_at AS DATE)"
    return f"""
SELECT rm_id, {_period_start_sql(d, freq)} AS period_start, kind, COUNT(*) AS n,
       SUM(CASE WHEN score >= 9 THEN 1 ELSE 0 END) AS promoters,
       SUM(CASE WHEN score <= 6 THEN 1 ELSE 0 END) AS detractors
FROM feedback
WHERE rm_id IS NOT NULL AND opened_at IS NOT NULL AND kind IN ('complaint', 'nps')
GROUP BY rm_id, {_period_start_sql(d, freq)}, kind
ORDER BY rm_id, period_start, kind
"""


def _hnw_visits_sql(freq: str, *, hnw_aum: float, visits_per_year: float) -> str:
    """SQL: HNW visit coverage per RM and period (see :func:`customer_level_measures`)."""
    kinds = ", ".join("'" + k.replace("'", "''") + "'" for k in VISIT_KINDS)
    required = f"CAST({float(visits_per_year) / 12.0!r} AS DOUBLE)"
    month = "CAST(date_trunc('month', CAST(timestamp AS DATE)) AS DATE)"
    return f"""
WITH hnw AS (
    SELECT customer_id AS k_customer_id, CAST(snapshot_date AS DATE) AS k_day
    FROM balances WHERE aum >= {float(hnw_aum)!r}
),
primary_rm AS ({primary_rm_sql("hnw")}
),
hnw_rm AS (
    SELECT h.k_customer_id, h.k_day, p.rm_id
    FROM hnw h JOIN primary_rm p ON p.k_customer_id = h.k_customer_id AND p.k_day = h.k_day
),
visits AS (
    SELECT customer_id, rm_id, {month} AS month_start, COUNT(*) AS n
    FROM interactions
    WHERE kind IN ({kinds}) AND customer_id IS NOT NULL AND rm_id IS NOT NULL
    GROUP BY customer_id, rm_id, {month}
),
per_customer AS (
    SELECT h.rm_id, h.k_customer_id AS customer_id, {_period_start_sql("h.k_day", freq)} AS period_start,
           SUM(CAST(COALESCE(v.n, 0) AS DOUBLE)) AS visits, SUM({required}) AS required
    FROM hnw_rm h
    LEFT JOIN visits v ON v.customer_id = h.k_customer_id AND v.rm_id = h.rm_id
                      AND v.month_start = CAST(date_trunc('month', h.k_day) AS DATE)
    WHERE h.rm_id IS NOT NULL
    GROUP BY h.rm_id, h.k_customer_id, {_period_start_sql("h.k_day", freq)}
)
SELECT rm_id, period_start, SUM(required) AS cl_visits_required,
       SUM(LEAST(visits, required)) AS cl_visits_covered
FROM per_customer
GROUP BY rm_id, period_start
ORDER BY rm_id, period_start
"""


def _suitability_sql(freq: str, *, major_risk_gap: int) -> str:
    """SQL: suitability breaches (product risk above the customer's) per RM at purchase and period."""
    return f"""
WITH gaps AS (
    SELECT h.customer_id AS k_customer_id, CAST(h.start_date AS DATE) AS k_day,
           p.risk_level - c.risk_level AS risk_gap
    FROM holdings h
    LEFT JOIN products p ON p.product_id = h.product_id
    LEFT JOIN customers c ON c.customer_id = h.customer_id
    WHERE p.risk_level - c.risk_level > 0
),
primary_rm AS ({primary_rm_sql("gaps")}
),
gaps_rm AS (
    SELECT g.k_day, g.risk_gap, p.rm_id
    FROM gaps g JOIN primary_rm p ON p.k_customer_id = g.k_customer_id AND p.k_day = g.k_day
)
SELECT rm_id, {_period_start_sql("k_day", freq)} AS period_start, COUNT(*) AS suitability_breaches,
       SUM(CASE WHEN risk_gap >= {int(major_risk_gap)} THEN 1 ELSE 0 END) AS suitability_major_breaches
FROM gaps_rm
WHERE rm_id IS NOT NULL
GROUP BY rm_id, {_period_start_sql("k_day", freq)}
ORDER BY rm_id, period_start
"""


def _suitability_gaps(tables: dict[str, Any]) -> pd.DataFrame:
    """Holdings with ``risk_gap`` = product risk level - customer risk level (breach when > 0), in
    pandas: the definition :func:`_suitability_sql` computes in the engine (kept as its check
    against :mod:`rmanalytics.service`'s copy)."""
    h = tables["holdings"][["customer_id", "product_id", "start_date"]]
    h = h.merge(tables["products"][["product_id", "risk_level"]].rename(columns={"risk_level": "p_risk"}),
                on="product_id", how="left")
    h = h.merge(tables["customers"][["customer_id", "risk_level"]].rename(columns={"risk_level": "c_risk"}),
                on="customer_id", how="left")
    return h.assign(risk_gap=h["p_risk"] - h["c_risk"])


def _apply_customer_level(out: pd.DataFrame, tables: dict[str, Any], freq: str, **kw: Any) -> pd.DataFrame:
    """Replace visit_coverage / complaint_rate / nps by their customer-level values where the data
    exist (row by row), set the ``*_source`` columns, and add the suitability KPIs."""
    cl = customer_level_measures(tables, freq, **kw)
    if cl.empty:
        return out
    out = out.merge(cl, on=["rm_id", "period"], how="left")
    if "cl_complaints" in out:
        ok = out["customers_credited"] > 0
        out.loc[ok, "complaint_rate"] = 100.0 * out.loc[ok, "cl_complaints"].fillna(0.0) / out.loc[ok, "customers_credited"]
        out.loc[ok, "complaint_rate_source"] = "customer_level"
    if "cl_nps_responses" in out:
        ok = out["cl_nps_responses"].fillna(0) > 0
        out.loc[ok, "nps"] = 100.0 * (out.loc[ok, "cl_nps_promoters"] - out.loc[ok, "cl_nps_detractors"]) \
            / out.loc[ok, "cl_nps_responses"]
        out.loc[ok, "nps_source"] = "customer_level"
    if "cl_visits_required" in out:
        ok = out["cl_visits_required"].fillna(0) > 0
        out.loc[ok, "visit_coverage"] = out.loc[ok, "cl_visits_covered"] / out.loc[ok, "cl_visits_required"]
        out.loc[ok, "visit_coverage_source"] = "customer_level"
    if tables.get("holdings") is not None and "suitability_breaches" in cl:
        for c in ("suitability_breaches", "suitability_major_breaches"):
            out[c] = out.pop(c + "_y").fillna(0.0) if c + "_y" in out else out[c]
            out = out.drop(columns=[c + "_x"], errors="ignore")
    return out.drop(columns=[c for c in out.columns if c.startswith("cl_")])
