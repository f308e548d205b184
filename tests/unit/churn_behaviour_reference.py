"""The SQL definition of the churn frame's monthly behaviour counts, as the package computed them
before ``churn.behaviour_cells`` (issue #16): a join of every customer-month with every purchase
and AUM snapshot near it. Kept verbatim as the independent reference the binary-search counts are
tested against (tests/unit/test_churn_behaviour.py)."""

from __future__ import annotations


def behaviour_sql(*, silence_cap_days: int = 180, recent_days: int = 90, baseline_days: int = 365,
                  min_exposure_days: int = 90, aum_trend_months: int = 3) -> str:
    """SQL (DuckDB dialect, portable) for the monthly behaviour covariates of :func:`behaviour_covariates`.

    Inputs: ``spine`` (one row per customer: ``c`` an integer key, customer_id, open_date,
    ``first_day`` = the earliest day whose data can be seen for the customer, i.e. max(open_date,
    history_start), and ``m_lo``/``m_hi`` the first and last month number of its follow-up),
    ``calendar`` (``mi`` month number, ``month_start``), ``transactions``, ``balances``. The grid
    is every (customer, month) with ``m_lo <= mi <= m_hi``, evaluated on day ``e =
    max(month_start, open_date)``. Purchases are transactions with amount > 0 dated before ``e``
    (and at most ``max(silence_cap_days, recent_days + baseline_days)`` days before it); AUM
    snapshots dated in [month_start - aum_trend_months months - 1 day, month_start).

    One row per grid cell with integers only besides the AUM trend: ``c``, ``mi``,
    ``silent_days`` (days from the last purchase, or ``first_day`` when none is seen, to ``e``),
    ``n_recent`` / ``n_base`` (purchases in the ``recent_days`` before ``e`` / in the baseline
    ``[b0, e - recent_days)``, ``b0 = max(e - recent_days - baseline_days, first_day)``),
    ``span_days`` (days from ``b0`` to ``e``) and ``aum_trend`` (log change of AUM from the earliest
    to the latest snapshot, 0 with fewer than two). Strings and dates stay in the engine.
    """
    cap, rd, bd = int(silence_cap_days), int(recent_days), int(baseline_days)
    lo = max(cap, rd + bd)
    return f"""
WITH g AS (
    SELECT s.c, cal.mi, CAST(cal.month_start AS DATE) AS month_start,
           GREATEST(CAST(cal.month_start AS DATE), CAST(s.open_date AS DATE)) AS e,
           CAST(s.first_day AS DATE) AS first_day
    FROM spine s JOIN calendar cal ON cal.mi >= s.m_lo AND cal.mi <= s.m_hi
),
gb AS (
    SELECT c, mi, month_start, e, first_day,
           GREATEST(e - INTERVAL {rd + bd} DAY, first_day) AS b0
    FROM g
),
p AS (
    SELECT s.c, CAST(t.date AS DATE) AS d
    FROM transactions t JOIN spine s ON t.customer_id = s.customer_id
    WHERE t.amount > 0
),
pt AS (
    SELECT g.c, g.mi, MAX(p.d) AS last_p,
           SUM(CASE WHEN p.d >= g.e - INTERVAL {rd} DAY THEN 1 ELSE 0 END) AS n_recent,
           SUM(CASE WHEN p.d >= g.b0 AND p.d < g.e - INTERVAL {rd} DAY THEN 1 ELSE 0 END) AS n_base
    FROM gb g JOIN p ON p.c = g.c AND p.d < g.e AND p.d >= g.e - INTERVAL {lo} DAY
    GROUP BY g.c, g.mi
),
bl AS (
    SELECT s.c, CAST(x.snapshot_date AS DATE) AS sd, x.aum
    FROM balances x JOIN spine s ON x.customer_id = s.customer_id
),
b AS (
    SELECT g.c, g.mi,
           arg_max(ln(GREATEST(bl.aum, 1.0)), bl.sd) AS last_log_aum,
           arg_min(ln(GREATEST(bl.aum, 1.0)), bl.sd) AS ref_log_aum,
           COUNT(*) AS n_snap
    FROM gb g JOIN bl ON bl.c = g.c
     AND bl.sd < g.month_start
     AND bl.sd >= g.month_start - INTERVAL {int(aum_trend_months)} MONTH - INTERVAL 1 DAY
    GROUP BY g.c, g.mi
)
SELECT g.c, g.mi,
       CAST(date_diff('day', CAST(GREATEST(COALESCE(pt.last_p, g.first_day), g.first_day) AS DATE),
                      CAST(g.e AS DATE)) AS INTEGER) AS silent_days,
       CAST(COALESCE(pt.n_recent, 0) AS INTEGER) AS n_recent,
       CAST(COALESCE(pt.n_base, 0) AS INTEGER) AS n_base,
       CAST(date_diff('day', CAST(g.b0 AS DATE), CAST(g.e AS DATE)) AS INTEGER) AS span_days,
       CASE WHEN COALESCE(b.n_snap, 0) >= 2 THEN b.last_log_aum - b.ref_log_aum ELSE 0.0 END AS aum_trend
FROM gb g
LEFT JOIN pt ON pt.c = g.c AND pt.mi = g.mi
LEFT JOIN b ON b.c = g.c AND b.mi = g.mi
"""
