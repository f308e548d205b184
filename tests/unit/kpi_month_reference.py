"""The SQL of rm_month_measures before issue 16's second pass, kept verbatim as the
reference the current SQL must reproduce (tests/unit/test_kpi_measures.py)."""

from __future__ import annotations

from rmanalytics.kpi.measures import EffectiveRule, QualityRule


def reference_rm_month_sql(*, has_fee: bool = True, has_strategic: bool = True, has_npl: bool = True,
                 has_channel: bool = True, effective_window_days: int = 90, deposits_avg: str = "month_end",
                 has_npl_new: bool = False, has_recovered: bool = False, has_written_off: bool = False,
                 effective: EffectiveRule | None = None, quality: QualityRule | None = None) -> str:
    """The SQL (DuckDB dialect, Spark-transpilable) of the RM x month aggregation.

    Inputs: ``customers, transactions, balances, assignments, rm_activity, months``
    (``months`` from :func:`month_calendar`), and ``daily_balances`` when
    ``deposits_avg="daily_balances"``. One row per ``rm_id, month_start``.

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
    daily_cte = ("""daily AS (
    SELECT customer_id, CAST(date_trunc('month', CAST(date AS DATE)) AS DATE) AS month_start,
           AVG(deposits) AS deposits_avg
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
        npl_new_sum_plain, npl_new_src = "SUM(am.w * am.npl_new) AS npl_new, ", "b"
        npl_new_seq = npl_new_col_seq = npl_new_sum_seq = ""
    else:
        npl_new_plain = npl_new_col_plain = npl_new_sum_plain = ""
        npl_new_seq = (f",\n           CASE WHEN {prev_npl} IS NULL THEN 0.0 "
                       f"ELSE GREATEST({npl} - {prev_npl}, 0.0) END AS npl_new")
        npl_new_col_seq, npl_new_sum_seq, npl_new_src = ", s.npl_new", ",\n           SUM(CASE WHEN am.ov = 1 THEN am.w * am.npl_new ELSE 0.0 END) AS npl_new", "bq"
    recovered = "COALESCE(b.recovered, 0.0)" if has_recovered else "CAST(NULL AS DOUBLE)"
    written_off = "COALESCE(b.written_off, 0.0)" if has_written_off else "CAST(NULL AS DOUBLE)"
    h = int(effective.hold_months)
    eff_thr = f"CASE WHEN c.customer_type = 'corporate' THEN {float(effective.aum_corporate)!r} " \
              f"ELSE {float(effective.aum_retail)!r} END"
    q_thr = f"CASE WHEN c.customer_type = 'corporate' THEN {float(quality.aum_corporate)!r} " \
            f"ELSE {float(quality.aum_retail)!r} END"
    ew = int(effective.window_days)
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
    return f"""
WITH {daily_cte}asg AS (
    SELECT customer_id, rm_id, CAST(start_date AS DATE) AS start_date,
           COALESCE(CAST(end_date AS DATE), CAST('2999-12-31' AS DATE)) AS end_date, share
    FROM assignments
),
mon AS (
    SELECT CAST(month_start AS DATE) AS month_start, CAST(month_end AS DATE) AS month_end, days FROM months
),
asg_month AS (
    SELECT a.customer_id, a.rm_id, m.month_start,
           a.share * date_diff('day', GREATEST(a.start_date, m.month_start), LEAST(a.end_date, m.month_end))
               / NULLIF(m.days, 0) AS w
    FROM asg a JOIN mon m ON a.start_date < m.month_end AND a.end_date > m.month_start
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
           SUM(am.w) AS w_balances,
           SUM(am.w * am.aum) AS aum, SUM(am.w * am.deposits) AS deposits, SUM(am.w * am.loans) AS loans,
           SUM(am.w * am.loans_strategic) AS loans_strategic, SUM(am.w * am.npl) AS npl,
           SUM(am.w * am.n_products) AS products_w,
           SUM(am.w * am.deposits_avg) AS deposits_avg, SUM(am.w * am.dep_fallback) AS deposits_avg_fallback,
           {npl_new_sum_plain}SUM(am.w * am.recovered) AS recovered, SUM(am.w * am.written_off) AS written_off
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
           SUM(CASE WHEN am.ov = 1 AND am.prev_products IS NOT NULL THEN am.w ELSE 0.0 END) AS cross_sell_base,
           SUM(CASE WHEN am.ov = 1 AND am.n_products > am.prev_products THEN am.w ELSE 0.0 END) AS cross_sell_w,
           SUM(CASE WHEN am.ov = 1 THEN am.w * am.npl_prev ELSE 0.0 END) AS npl_open{npl_new_sum_seq},
           SUM(am.share_next * am.quality) AS start_quality_next,
           SUM(CASE WHEN am.dup = 1 THEN am.share_next ELSE 0.0 END) AS start_extra_next
    FROM (
        SELECT a.rm_id, s.month_start, s.month_end,
               CASE WHEN a.start_date < s.month_end AND a.end_date > s.month_start THEN 1 ELSE 0 END AS ov,
               a.share * date_diff('day', GREATEST(a.start_date, s.month_start), LEAST(a.end_date, s.month_end))
                   / NULLIF(s.days, 0) AS w,
               s.n_products, s.prev_products, s.npl_prev{npl_new_col_seq},
               CASE WHEN a.start_date <= s.month_end AND a.end_date > s.month_end
                         AND CAST(c.open_date AS DATE) <= s.month_end
                         AND (c.close_date IS NULL OR CAST(c.close_date AS DATE) > s.month_end)
                    THEN a.share ELSE 0.0 END AS share_next,
               CASE WHEN s.aum >= {q_thr} THEN 1.0 ELSE 0.0 END AS quality, s.dup
        FROM bal_seq s
        JOIN asg a ON a.customer_id = s.customer_id
                  AND ((a.start_date < s.month_end AND a.end_date > s.month_start)
                       OR (a.start_date <= s.month_end AND a.end_date > s.month_end))
        LEFT JOIN customers c ON c.customer_id = s.customer_id
    ) am
    GROUP BY am.rm_id, am.month_start, am.month_end
),
book_size AS (
    SELECT rm_id, month_start, SUM(w) AS customers_credited FROM asg_month GROUP BY rm_id, month_start
),
fam AS (
    SELECT product_family,
           CASE WHEN SUM(t.amount) > 0 THEN SUM({fee}) / NULLIF(SUM(t.amount), 0) ELSE 0.0 END AS fee_rate
    FROM transactions t WHERE t.amount > 0 GROUP BY product_family
),
fees AS (
    SELECT a.rm_id, {month_of("t.date")} AS month_start, SUM(a.share * {fee}) AS fee_income,
           SUM(a.share * t.amount) AS volume,
           SUM(a.share * t.amount * fr.fee_rate) AS expected_fee, SUM(a.share) AS n_transactions
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
),
book_base AS (
    SELECT a.rm_id, m.month_start, SUM(a.share) AS book_start
    FROM asg a
    JOIN mon m ON a.start_date <= m.month_start AND a.end_date > m.month_start
    JOIN customers c ON c.customer_id = a.customer_id
    WHERE CAST(c.open_date AS DATE) <= m.month_start
      AND (c.close_date IS NULL OR CAST(c.close_date AS DATE) > m.month_start)
    GROUP BY a.rm_id, m.month_start
),
book_start AS (
    SELECT bb.rm_id, bb.month_start, bb.book_start + COALESCE(bq.start_extra_next, 0.0) AS book_start,
           COALESCE(bq.start_quality_next, 0.0) AS book_start_quality
    FROM book_base bb
    LEFT JOIN book_seq bq ON bq.rm_id = bb.rm_id AND bq.month_end = bb.month_start
),
churn AS (
    SELECT a.rm_id, m.month_start, SUM(a.share) AS churned,
           SUM(a.share * COALESCE(q.quality, 0.0)) AS churned_quality
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
    WHERE h.n_held >= {h} AND h.min_aum >= {eff_thr}
      AND h.snapshot_date >= CAST(c.open_date AS DATE)
      AND date_diff('day', CAST(c.open_date AS DATE), h.snapshot_date) < {ew}
),
new_cust AS (
    SELECT a.rm_id, m.month_start, SUM(a.share) AS new_customers,
           SUM(CASE WHEN e.customer_id IS NOT NULL THEN a.share ELSE 0.0 END) AS new_active_customers,
           SUM(CASE WHEN ea.customer_id IS NOT NULL THEN a.share ELSE 0.0 END) AS new_effective_customers,
           SUM(CASE WHEN {channel} = 'referral' THEN a.share ELSE 0.0 END) AS new_referred
    FROM customers c
    JOIN asg a ON c.customer_id = a.customer_id
              AND a.start_date <= CAST(c.open_date AS DATE) AND a.end_date > CAST(c.open_date AS DATE)
    JOIN mon m ON {month_of("c.open_date")} = m.month_start
    LEFT JOIN effective e ON e.customer_id = c.customer_id
    LEFT JOIN effective_assets ea ON ea.customer_id = c.customer_id
    GROUP BY a.rm_id, m.month_start
),
act AS (
    SELECT r.rm_id, m.month_start, r.visits, r.visits_required, r.calls, r.cross_sell_offers, r.digital_usage,
           r.training_score, r.complaints, r.nps_responses, r.nps_promoters, r.nps_detractors,
           r.compliance_checks, r.compliance_passed, r.compliance_breaches, r.major_breaches,
           r.alert_response_hours, r.referrals,
           LEAST(r.visits, r.visits_required) AS visits_covered
    FROM rm_activity r
    JOIN mon m ON CAST(r.period AS DATE) >= m.month_start AND CAST(r.period AS DATE) < m.month_end
),
keys AS (
    SELECT rm_id, month_start FROM book_size
    UNION SELECT rm_id, month_start FROM act
    UNION SELECT rm_id, month_start FROM fees
)
SELECT k.rm_id, k.month_start,
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
LEFT JOIN book_size s ON s.rm_id = k.rm_id AND s.month_start = k.month_start
LEFT JOIN book_start bs ON bs.rm_id = k.rm_id AND bs.month_start = k.month_start
LEFT JOIN book b ON b.rm_id = k.rm_id AND b.month_start = k.month_start
LEFT JOIN book_seq bq ON bq.rm_id = k.rm_id AND bq.month_start = k.month_start
LEFT JOIN fees f ON f.rm_id = k.rm_id AND f.month_start = k.month_start
LEFT JOIN churn ch ON ch.rm_id = k.rm_id AND ch.month_start = k.month_start
LEFT JOIN new_cust n ON n.rm_id = k.rm_id AND n.month_start = k.month_start
LEFT JOIN act ON act.rm_id = k.rm_id AND act.month_start = k.month_start
ORDER BY k.rm_id, k.month_start
"""
