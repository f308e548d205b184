"""Audit of the early-warning rules against what happened next (time-based hold-out).

The seeds' early-warning rules (docs/domain.md §2) rest on one belief: customers stop acting before they
leave. This module scores them as classifiers of churn:

- ``no_purchase:<family>``: no purchase of the family (default wealth) in the last
  ``silent_months`` months by a customer who bought it in the ``lookback_months`` before
  (:func:`rmanalytics.rfm.warning.silent_families`; seed 000: 3 months);
- ``activity_drop``: transactions down at least ``activity_drop`` against the customer's own
  trailing baseline (:func:`rmanalytics.rfm.lifecycle.activity_change`; seed 002: 30%);
- ``any_rule``: either;
- ``churn_model_top_k``: the customers ranked highest by a churn model's scores, as many as the
  rule alerts (the same alert volume, so precision, recall and lift compare like with like).

Hold-out: rules and scores use data up to ``as_of`` only (transactions dated ``<= as_of``, the
latest balance snapshot ``<= as_of``); the customers scored are those open at the end of ``as_of``;
the outcome is closure in ``(as_of, as_of + horizon]``. ``as_of`` must leave ``horizon`` days of
observed data. Per rule and horizon (days): ``n_alerts``, ``alert_rate``, ``precision`` (share of
alerted who closed), ``recall`` (share of closers alerted), ``lift`` = precision / base rate (1 =
no better than picking customers at random), a 95% interval of the lift (Wilson interval of the
precision over the base rate of the customers *not* alerted plus alerted, i.e. all scored), and
``value_caught_share``: the share of the value at stake of the closers (AUM at ``as_of``, currency)
that the alerted closers hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.engine import run_sql
from rmanalytics.keys import isin_keys

Z95 = 1.959963984540054


def _wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        den = 1 + z**2 / n
        c = (p + z**2 / (2 * n)) / den
        h = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return np.where(n > 0, c - h, np.nan), np.where(n > 0, c + h, np.nan)


def score_alerts(alerted: pd.Series, churned: pd.Series, value: pd.Series,
                 eligible: pd.Series | None = None) -> dict[str, float]:
    """Precision, recall, lift (with 95% interval) and value caught of one alert list.

    All Series are indexed by customer (the customers scored): ``alerted`` and ``churned``
    booleans, ``value`` the value at stake (currency). ``eligible``: the customers the rule can
    judge at all (e.g. past buyers of the family); adds ``n_eligible``, ``base_rate_eligible`` and
    ``lift_eligible`` (with interval) = precision / churn rate of the eligible customers.
    """
    a = alerted.astype(bool).to_numpy()
    y = churned.astype(bool).to_numpy()
    v = value.fillna(0.0).to_numpy(float)
    n, k = len(a), int(a.sum())
    n_churn = int(y.sum())
    tp = int((a & y).sum())
    base = n_churn / n if n else np.nan
    prec = tp / k if k else np.nan
    lo, hi = _wilson(np.array([tp]), np.array([k]))
    v_churn = v[y].sum()
    out = {
        "n_customers": n, "n_alerts": k, "alert_rate": k / n if n else np.nan, "n_churned": n_churn,
        "base_rate": base, "true_alerts": tp, "precision": prec,
        "recall": tp / n_churn if n_churn else np.nan,
        "lift": prec / base if base else np.nan,
        "lift_lower": float(lo[0] / base) if base else np.nan, "lift_upper": float(hi[0] / base) if base else np.nan,
        "value_caught_share": float(v[a & y].sum() / v_churn) if v_churn > 0 else np.nan,
    }
    el = np.ones(n, bool) if eligible is None else eligible.fillna(False).astype(bool).to_numpy()
    n_el = int(el.sum())
    base_el = y[el].mean() if n_el else np.nan
    out.update({
        "n_eligible": n_el, "base_rate_eligible": base_el,
        "lift_eligible": prec / base_el if base_el else np.nan,
        "lift_eligible_lower": float(lo[0] / base_el) if base_el else np.nan,
        "lift_eligible_upper": float(hi[0] / base_el) if base_el else np.nan,
    })
    return out


def customers_at(tables: dict[str, Any], as_of: Any, horizons: list[int] | tuple[int, ...], *,
                 engine: str = "duckdb") -> pd.DataFrame:
    """The customers open at the end of ``as_of`` with their value at stake and outcomes.

    Returns customer_id, open_date, tenure_days (days since open at ``as_of``), value (AUM of the
    latest snapshot on or before ``as_of``, 0 without one, currency) and ``churned_<h>d`` (closure in
    ``(as_of, as_of + h]``) for each horizon ``h`` in days.
    """
    day = pd.Timestamp(as_of).normalize()
    lit = day.date().isoformat()
    sql = f"""
WITH c AS (
    SELECT customer_id, CAST(open_date AS DATE) AS open_date, CAST(close_date AS DATE) AS close_date
    FROM customers
    WHERE CAST(open_date AS DATE) <= DATE '{lit}'
      AND (close_date IS NULL OR CAST(close_date AS DATE) > DATE '{lit}')
),
b AS (
    SELECT customer_id, aum FROM (
        SELECT customer_id, aum, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY snapshot_date DESC) AS rn
        FROM balances WHERE CAST(snapshot_date AS DATE) <= DATE '{lit}') x
    WHERE rn = 1
)
SELECT c.customer_id, c.open_date, c.close_date, COALESCE(b.aum, 0.0) AS value
FROM c LEFT JOIN b ON b.customer_id = c.customer_id
ORDER BY c.customer_id
"""
    df = run_sql(sql, {"customers": tables["customers"], "balances": tables["balances"]}, engine=engine)
    df["open_date"] = pd.to_datetime(df["open_date"])
    df["close_date"] = pd.to_datetime(df["close_date"])
    df["tenure_days"] = (day - df["open_date"]).dt.days.astype(float)
    for h in horizons:
        df[f"churned_{int(h)}d"] = df["close_date"].notna() & (df["close_date"] <= day + pd.Timedelta(days=int(h)))
    out = df.drop(columns="close_date")
    out.attrs.update(as_of=day.date().isoformat(), horizons=[int(h) for h in horizons])
    return out


def audit_population(tables: dict[str, Any], as_of: Any, horizons: list[int] | tuple[int, ...], *,
                     families: list[str] | tuple[str, ...] = ("wealth",), recent_days: int = 90,
                     baseline_days: int = 365, engine: str = "duckdb") -> pd.DataFrame:
    """The customers of :func:`customers_at` with their :func:`rule_flags`: what
    :func:`warning_audit`, :func:`warning_tradeoff` and :func:`holdout_scores` each start from.
    Computed once and passed to them as ``population``, it saves their engine passes (same
    results). ``attrs`` record ``as_of``, ``horizons``, ``families``, ``recent_days`` and
    ``baseline_days``, which the functions check before using it."""
    pop = customers_at(tables, as_of, horizons, engine=engine)
    attrs = dict(pop.attrs)
    flags = rule_flags(tables, as_of, families=families, recent_days=recent_days, baseline_days=baseline_days,
                       engine=engine)
    out = pop.merge(flags, on="customer_id", how="left")
    out.attrs = {**attrs, "families": list(families), "recent_days": int(recent_days),
                 "baseline_days": int(baseline_days)}
    return out


def _population(population: pd.DataFrame | None, tables: dict[str, Any], as_of: Any, horizons, families,
                recent_days: int, baseline_days: int, engine: str) -> pd.DataFrame:
    """``population`` indexed by customer_id when it was made for these settings, else computed."""
    a = {} if population is None else population.attrs
    if not (a.get("as_of") == pd.Timestamp(as_of).normalize().date().isoformat()
            and set(int(h) for h in horizons) <= set(a.get("horizons", ())) and set(families) <= set(a.get("families", ()))
            and a.get("recent_days") == int(recent_days) and a.get("baseline_days") == int(baseline_days)):
        population = audit_population(tables, as_of, horizons, families=families, recent_days=recent_days,
                                      baseline_days=baseline_days, engine=engine)
    return population.set_index("customer_id")


def rule_flags(tables: dict[str, Any], as_of: Any, *, families: list[str] | tuple[str, ...] = ("wealth",),
               recent_days: int = 90, baseline_days: int = 365, min_baseline_days: int = 90,
               min_baseline_transactions: int = 3, engine: str = "duckdb") -> pd.DataFrame:
    """What the rules look at, per customer, from data up to ``as_of``: ``last_purchase:<family>``
    (date of the last purchase of the family, NaT if none) and ``activity_drop`` (fraction, NaN
    when the baseline is too thin; :func:`rmanalytics.rfm.lifecycle.activity_change`).

    Thresholds are applied by :func:`silent_alert` and :func:`warning_audit` /
    :func:`warning_tradeoff`, so one pass serves every threshold.
    """
    from rmanalytics.rfm.lifecycle import activity_change
    from rmanalytics.rfm.warning import silent_families

    tx = tables["transactions"]
    day = pd.Timestamp(as_of).normalize()
    start = run_sql("SELECT customer_id, CAST(open_date AS DATE) AS open_date FROM customers",
                    {"customers": tables["customers"]}, engine=engine)
    act = activity_change(tx, observation_end=day, recent_days=recent_days, baseline_days=baseline_days,
                          min_baseline_days=min_baseline_days, min_baseline_transactions=min_baseline_transactions,
                          start_dates=pd.to_datetime(start.set_index("customer_id")["open_date"]), engine=engine)
    out = start[["customer_id"]].merge(act[["customer_id", "activity_drop"]], on="customer_id", how="left")
    out = out.set_index("customer_id")
    # every last purchase of the families up to as_of (silent period 0, lookback of a century)
    last = silent_families(tx, observation_end=day, families=list(families), silent_months=0,
                           lookback_months=1200, engine=engine)
    for fam in families:
        s = last[last["product_family"] == fam].set_index("customer_id")["last_purchase"]
        out[f"last_purchase:{fam}"] = pd.to_datetime(s.reindex(out.index))
    return out.reset_index()


def silent_alert(last_purchase: pd.Series, as_of: Any, silent_months: int, lookback_months: int) -> pd.Series:
    """The seeds' no-purchase rule, as :func:`rmanalytics.rfm.warning.silent_families` applies it:
    the last purchase of the family lies in ``(as_of - silent_months - lookback_months months,
    as_of - silent_months months]``."""
    day = pd.Timestamp(as_of).normalize()
    silent_start = day - pd.DateOffset(months=int(silent_months))
    look_start = silent_start - pd.DateOffset(months=int(lookback_months))
    lp = pd.to_datetime(last_purchase)
    return ((lp <= silent_start) & (lp > look_start)).fillna(False).astype(bool)


def silent_eligible(last_purchase: pd.Series, as_of: Any, silent_months: int, lookback_months: int) -> pd.Series:
    """Customers the no-purchase rule can judge: a purchase of the family in the last
    ``silent_months + lookback_months`` months (silent or not)."""
    day = pd.Timestamp(as_of).normalize()
    look_start = day - pd.DateOffset(months=int(silent_months) + int(lookback_months))
    return (pd.to_datetime(last_purchase) > look_start).fillna(False).astype(bool)


def warning_audit(
    tables: dict[str, Any],
    as_of: Any,
    *,
    horizons: list[int] | tuple[int, ...] = (90, 180),
    families: list[str] | tuple[str, ...] = ("wealth",),
    silent_months: int = 3,
    lookback_months: int = 12,
    activity_drop: float = 0.30,
    recent_days: int = 90,
    baseline_days: int = 365,
    scores: pd.Series | None = None,
    engine: str = "duckdb",
    population: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score each early-warning rule, and a churn model's top-k at the same volume, per horizon.

    Parameters
    ----------
    tables : contract tables (customers, transactions, balances).
    as_of : the hold-out date: rules see data up to it, outcomes are closures in the ``horizons``
        (days) after it.
    families, silent_months, lookback_months : the no-purchase rule (seed 000: wealth, 3 months).
    activity_drop : the activity-drop rule threshold (fraction; seed 002: 0.30), over
        ``recent_days`` against a ``baseline_days`` trailing baseline.
    scores : optional churn-risk score per customer_id (higher = riskier) computed from data up to
        ``as_of`` (e.g. :func:`holdout_scores`); adds one ``churn_model_top_k`` row per rule.
    population : optional :func:`audit_population` for these ``as_of``, horizons, families and
        windows (checked by its ``attrs``; otherwise computed here): saves its engine passes.

    Returns
    -------
    DataFrame, one row per horizon and rule: horizon_days, rule, threshold, matched_rule (for
    model rows: the rule whose alert volume is used) and the columns of :func:`score_alerts`.
    See the module docstring for the definitions.
    """
    pop = _population(population, tables, as_of, horizons, families, recent_days, baseline_days, engine)
    alerts: dict[str, tuple[str, pd.Series, pd.Series]] = {}
    for fam in families:
        lp = pop[f"last_purchase:{fam}"]
        alerts[f"no_purchase:{fam}"] = (f"{silent_months} months",
                                        silent_alert(lp, as_of, silent_months, lookback_months),
                                        silent_eligible(lp, as_of, silent_months, lookback_months))
    alerts["activity_drop"] = (f"{activity_drop:.0%}", (pop["activity_drop"] >= activity_drop).fillna(False),
                               pop["activity_drop"].notna())
    any_a = np.logical_or.reduce([a.to_numpy(bool) for _, a, _ in alerts.values()])
    any_e = np.logical_or.reduce([e.to_numpy(bool) for _, _, e in alerts.values()])
    alerts["any_rule"] = ("any", pd.Series(any_a, index=pop.index), pd.Series(any_e, index=pop.index))
    if scores is not None:
        sc = scores.reindex(pop.index)
        missing = int(sc.isna().sum())
        if missing:
            from rmanalytics.errors import DataError, rule_message

            raise DataError(rule_message("scores", "every customer open at as_of needs a score", missing,
                                         [{"customer_id": c} for c in sc.index[sc.isna()][:5]]))
        order = np.argsort(-sc.to_numpy(float), kind="stable")
    rows = []
    for h in horizons:
        y = pop[f"churned_{int(h)}d"]
        for rule, (thr, a, el) in alerts.items():
            a = a.fillna(False).astype(bool)
            rows.append({"horizon_days": int(h), "rule": rule, "threshold": thr, "matched_rule": None,
                         **score_alerts(a, y, pop["value"], el)})
            if scores is not None:
                top = np.zeros(len(pop), bool)
                top[order[: int(a.sum())]] = True
                rows.append({"horizon_days": int(h), "rule": "churn_model_top_k", "threshold": f"top {int(a.sum())}",
                             "matched_rule": rule, **score_alerts(pd.Series(top, index=pop.index), y, pop["value"])})
    out = pd.DataFrame(rows)
    out.attrs["as_of"] = pd.Timestamp(as_of).date().isoformat()
    return out


def warning_tradeoff(
    tables: dict[str, Any],
    as_of: Any,
    *,
    horizon_days: int = 180,
    family: str = "wealth",
    silent_months_grid: list[int] | tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    activity_drop_grid: list[float] | tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    lookback_months: int = 12,
    recent_days: int = 90,
    baseline_days: int = 365,
    engine: str = "duckdb",
    population: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Precision, recall, lift and value caught of each rule over a grid of thresholds.

    The no-purchase rule with ``silent_months = m`` (:func:`silent_alert`) for each ``m`` of
    ``silent_months_grid``; the activity rule
    those whose activity fell by at least ``d`` (fraction) for each ``d`` of ``activity_drop_grid``.
    Same hold-out as :func:`warning_audit`. Returns rule, threshold (months or fraction) and the
    columns of :func:`score_alerts`. ``population``: as in :func:`warning_audit`.
    """
    pop = _population(population, tables, as_of, [horizon_days], [family], recent_days, baseline_days, engine)
    y = pop[f"churned_{int(horizon_days)}d"]
    rows = []
    for m in silent_months_grid:
        lp = pop[f"last_purchase:{family}"]
        a = silent_alert(lp, as_of, m, lookback_months)
        rows.append({"rule": f"no_purchase:{family}", "threshold": float(m),
                     **score_alerts(a, y, pop["value"], silent_eligible(lp, as_of, m, lookback_months))})
    for d in activity_drop_grid:
        a = (pop["activity_drop"] >= d).fillna(False)
        rows.append({"rule": "activity_drop", "threshold": float(d),
                     **score_alerts(a, y, pop["value"], pop["activity_drop"].notna())})
    out = pd.DataFrame(rows)
    out.attrs.update(as_of=pd.Timestamp(as_of).date().isoformat(), horizon_days=int(horizon_days))
    return out


def _frame_fits(frame: pd.DataFrame | None, *, observation_end: Any, window_start: Any, lookback_days: int) -> bool:
    """Whether ``frame`` is the day-grid closure survival frame :func:`holdout_scores` would build."""
    if frame is None:
        return False
    a = frame.attrs

    def same(key: str, value: Any) -> bool:
        return value is None or (key in a and pd.Timestamp(a[key]) == pd.Timestamp(value).normalize())

    return (a.get("time_grid") == "day" and a.get("definition") == "closure"
            and a.get("lookback_days") == int(lookback_days) and "window_start" in a and "observation_end" in a
            and same("observation_end", observation_end) and same("window_start", window_start))


def holdout_scores(
    tables: dict[str, Any],
    as_of: Any,
    *,
    covariates: list[str],
    behaviour: bool = True,
    horizon_days: int = 180,
    window_start: Any = None,
    observation_end: Any = None,
    lookback_days: int = 90,
    penalizer: float = 0.0,
    engine: str = "duckdb",
    frame: pd.DataFrame | None = None,
    monthly: pd.DataFrame | None = None,
    population: pd.DataFrame | None = None,
    fit_customers: Any = None,
) -> pd.Series:
    """Churn probability within ``horizon_days`` per customer open at ``as_of``, from a Cox model
    fitted on follow-up up to ``as_of`` only (time-based hold-out, no data after ``as_of`` used).

    ``covariates``: columns of the survival frame; ``rm_left`` and, with ``behaviour``, the monthly
    behaviour covariates (:func:`~rmanalytics.churn.frame.behaviour_covariates`) are added and
    taken at ``as_of`` for scoring (carried forward over the horizon). Customers open at ``as_of``
    but not in the frame (before their landmark) get the mean score. Returns a Series indexed by
    customer_id; its ``attrs["coefficients"]`` are the hold-out model's ``params_`` (a good
    ``initial_point`` for fitting the same model on the whole follow-up).

    What a caller has computed already can be passed to save the engine work (the scores are
    the same; whatever does not fit is recomputed, and ``attrs["reused"]`` lists what was used):

    - ``frame``: ``survival_frame(tables, observation_end=..., window_start=..., lookback_days=...,
      time_grid="day")`` with the closure definition (e.g. the frame a week-grid model frame was
      made from with :func:`~rmanalytics.churn.frame.regrid`); used when its ``attrs`` show that
      grid, definition, lookback and window;
    - ``monthly``: behaviour covariates of these customers over a follow-up that covers the
      hold-out's (e.g. ``behaviour_covariates(tables, regrid(frame, "week"))``: coarser grids round
      entries down and durations up); used when it holds every customer-month the fit and the
      scoring need (each covariate of a customer-month depends only on the customer and the month);
    - ``population``: :func:`customers_at` or :func:`audit_population` at ``as_of`` (its
      ``attrs["as_of"]``), whose customers are scored.

    ``fit_customers``: ids of the customers the model is fitted on, e.g. those of a
    :func:`~rmanalytics.churn.sample.sample_customers` sample (None: all); every customer is scored
    all the same. ``monthly`` then needs to cover only theirs (the scored customers' month is
    computed when it is not there).
    """
    from rmanalytics.churn.frame import (BEHAVIOUR_COVARIATES, behaviour_covariates, follow_up_months,
                                         holdout_split, monthly_positions, survival_frame, time_varying_frame)
    from rmanalytics.churn.model import ChurnModel

    day = pd.Timestamp(as_of).normalize()
    cutoff = day + pd.Timedelta(days=1)  # follow-up up to the end of as_of
    reused = []
    if _frame_fits(frame, observation_end=observation_end, window_start=window_start, lookback_days=lookback_days):
        reused.append("frame")
    else:
        frame = survival_frame(tables, observation_end=observation_end, window_start=window_start,
                               lookback_days=lookback_days, time_grid="day", engine=engine)
    need = ["customer_id", "open_date", "entry", "duration", "event", "rm_exit_days", *covariates]
    cols = [c for c in dict.fromkeys(need) if c in frame.columns]  # what the fit and scoring use
    if fit_customers is None:
        train, test = holdout_split(frame, cutoff, columns=cols)
    else:  # the sample's rows only are split for the fit; everyone's for scoring
        train = holdout_split(frame[isin_keys(frame["customer_id"], fit_customers)], cutoff, columns=cols)[0]
        test = holdout_split(frame, cutoff, columns=cols)[1]
    del frame
    probe_pos = None
    if behaviour:
        # covariates of the month that contains the cutoff day, from data before that month
        probe = test[["customer_id", "open_date"]].assign(entry=test["tenure"], duration=test["tenure"] + 1)
        if monthly is not None:  # every month of a customer's run is there when both ends are
            ids = train["customer_id"].to_numpy()
            # the fit's first and last months, and the scored customers' month, in one lookup
            pos = monthly_positions(monthly, np.concatenate([ids, ids, probe["customer_id"].to_numpy()]),
                                    np.concatenate([*follow_up_months(train), follow_up_months(probe)[1]]),
                                    allow_missing=True)
            if pos is None or (pos[:2 * len(ids)] < 0).any():
                monthly = None
            else:  # the scored customers' month too, when it is there (else computed below)
                reused.append("monthly")
                probe_pos = pos[2 * len(ids):] if (pos[2 * len(ids):] >= 0).all() else None
            del ids, pos
        if monthly is None:
            monthly = behaviour_covariates(tables, train, engine=engine)
    long = time_varying_frame(train, monthly=monthly if behaviour else None, columns=list(covariates))
    if probe_pos is None:
        monthly = None  # not needed for scoring: freed before the fit
    covs = list(covariates) + ["rm_left"] + (list(BEHAVIOUR_COVARIATES) if behaviour else [])
    model = ChurnModel("cox", covariates=covs, penalizer=penalizer, solver="fast").fit(
        long, "stop", "event", entry_col="start")
    del long
    t = test.copy()
    t["rm_left"] = (t["rm_exit_days"].notna() & (t["rm_exit_days"] <= t["tenure"])).astype(int)
    if behaviour:
        if probe_pos is not None:
            for c in BEHAVIOUR_COVARIATES:
                t[c] = monthly[c].to_numpy()[probe_pos]
        else:
            mon = behaviour_covariates(tables, probe, engine=engine)
            mon = mon.sort_values("month_start").drop_duplicates("customer_id", keep="last").set_index("customer_id")
            for c in BEHAVIOUR_COVARIATES:
                t[c] = t["customer_id"].map(mon[c]).fillna(0.0)
    del monthly
    p = model.predict_churn_probability(t, horizon_days, tenure_col="tenure")
    s = pd.Series(p.to_numpy(), index=t["customer_id"].to_numpy(), name=f"p_churn_{int(horizon_days)}d")
    if population is not None and population.attrs.get("as_of") == day.date().isoformat():
        reused.append("population")
        pop = population["customer_id"]
    else:
        pop = customers_at(tables, day, [horizon_days], engine=engine)["customer_id"]
    out = s.reindex(pop.to_numpy()).fillna(float(s.mean()))
    out.attrs["reused"] = reused
    out.attrs["coefficients"] = model.params_.copy()  # e.g. a warm start of the full model's fit
    return out


def default_as_of(observation_end: Any, horizons: list[int] | tuple[int, ...]) -> pd.Timestamp:
    """The last month end ``d`` with ``d + max(horizons) days <= observation_end``: the latest
    hold-out date whose every horizon is fully observed."""
    last = pd.Timestamp(observation_end).normalize() - pd.Timedelta(days=int(max(horizons)))
    return last if last.is_month_end else (last - pd.offsets.MonthEnd(1))
