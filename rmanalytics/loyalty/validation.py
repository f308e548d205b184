"""Hold-out validation of a BG/NBD fit: calibrate on one period, predict the next.

Input is the calibration/holdout frame of :func:`rmanalytics.rfm.calibration_holdout`
(``frequency, recency, T`` of the calibration period in model time units, ``frequency_holdout``
= purchase days in the holdout period, ``duration_holdout`` in model time units).

- :func:`holdout_predictions`: per customer, predicted vs actual holdout purchases, P(alive) and
  the model probability of any purchase in the holdout (exact for BG/NBD).
- :func:`holdout_by_frequency`: predicted vs actual mean holdout purchases by calibration
  frequency (the conditional-expectations check of Fader, Hardie & Lee 2005, fig. 4).
- :func:`p_alive_calibration`: P(alive)-deciles against the actual share active in the holdout.
- :func:`tracking`: cumulative repeat purchases of the calibration cohort over calendar time,
  actual vs the model's (unconditional) expectation (fig. 2 of the paper).
- :func:`holdout_errors`: all error measures in one table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.loyalty.base import check_columns, check_rfm


def holdout_predictions(model, cal_holdout: pd.DataFrame) -> pd.DataFrame:
    """Per-customer predicted and actual holdout purchases.

    Returns ``customer_id`` (if present), ``frequency``, ``frequency_holdout`` (actual),
    ``predicted_holdout`` (E[Y(duration) | history]), ``p_alive``, ``p_active`` (model probability
    of >= 1 purchase in the holdout) and ``active_holdout`` (actual, 0/1).
    """
    check_rfm(cal_holdout, "cal_holdout")
    check_columns(cal_holdout, ["frequency_holdout", "duration_holdout"], "cal_holdout")
    f, r, T = (cal_holdout[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    dur = cal_holdout["duration_holdout"].to_numpy(dtype=float)
    keep = [c for c in ("customer_id",) if c in cal_holdout.columns]
    out = cal_holdout[keep + ["frequency", "frequency_holdout"]].copy()
    out["predicted_holdout"] = np.asarray(model.expected_purchases(dur, f, r, T), dtype=float)
    out["p_alive"] = np.asarray(model.p_alive(f, r, T), dtype=float)
    out["p_active"] = np.asarray(model.probability_active(dur, f, r, T), dtype=float)
    out["active_holdout"] = (cal_holdout["frequency_holdout"].to_numpy() > 0).astype(int)
    return out


def holdout_by_frequency(pred: pd.DataFrame, max_frequency: int = 7) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases per calibration frequency (top bucket ``max+``)."""
    bucket = np.minimum(pred["frequency"].to_numpy(), max_frequency)
    labels = [str(int(b)) if b < max_frequency else f"{max_frequency}+" for b in bucket]
    g = pred.assign(frequency_bucket=labels).groupby("frequency_bucket", sort=False)
    out = g.agg(customers=("frequency", "size"), actual=("frequency_holdout", "mean"),
                predicted=("predicted_holdout", "mean"))
    order = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
    out = out.reindex([o for o in order if o in out.index])
    out["error"] = out["predicted"] - out["actual"]
    return out


def p_alive_calibration(pred: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """P(alive) against actual holdout activity by decile of the model's P(active in holdout)."""
    rank = pred["p_active"].rank(method="first")
    bins = np.ceil(rank / len(pred) * n_bins).clip(1, n_bins).astype(int)
    g = pred.assign(bin=bins).groupby("bin")
    return g.agg(customers=("p_alive", "size"), mean_p_alive=("p_alive", "mean"),
                 predicted_active=("p_active", "mean"), actual_active=("active_holdout", "mean"))


def tracking_sql(calibration_end: dt.date, observation_end: dt.date, refunds: str = "include", *,
                 cohort: bool = False) -> str:
    """SQL: repeat purchase days per calendar day of the customers whose first purchase is <= calibration_end.

    Input table ``transactions`` (customer_id, date, amount); purchase days as in
    :func:`rmanalytics.rfm.btyd_summary` (distinct days; refund rows left out when ``refunds='exclude'``).
    ``cohort``: only the customers listed in the input table ``cohort`` (column customer_id).
    """
    cond = f"CAST(date AS DATE) <= DATE '{observation_end.isoformat()}'"
    if refunds == "exclude":
        cond += " AND amount >= 0"
    if cohort:
        cond += " AND customer_id IN (SELECT customer_id FROM cohort)"
    return f"""
WITH days AS (
    SELECT customer_id, CAST(date AS DATE) AS day FROM transactions WHERE {cond}
    GROUP BY customer_id, CAST(date AS DATE)
),
firsts AS (SELECT customer_id, MIN(day) AS first_day FROM days GROUP BY customer_id)
SELECT d.day AS day, COUNT(*) AS repeat_purchases
FROM days d JOIN firsts f ON d.customer_id = f.customer_id
WHERE d.day > f.first_day AND f.first_day <= DATE '{calibration_end.isoformat()}'
GROUP BY d.day
"""


def tracking(model, cal_holdout: pd.DataFrame, transactions: Any, *, calibration_end: Any, observation_end: Any,
             time_unit_days: float = 7.0, step_days: int = 7, refunds: str = "include",
             engine: str | None = None, cohort: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration cohort, actual vs predicted, by calendar day.

    Predicted: ``Σ_i E[X(s - first_i)]`` (BG/NBD unconditional expectation for each customer's age),
    evaluated every ``step_days`` and at both period ends. Uses ``cal_holdout.first_date`` for the
    cohort. Returns ``date``, ``actual``, ``predicted`` (cumulative), ``period``
    ("calibration"/"holdout").

    ``transactions``: a frame or a Parquet/CSV path (a Spark DataFrame or table name with
    ``engine="spark"``); only the per-day counts reach pandas. ``cohort``: a frame with
    ``customer_id``; only their transactions are counted (the engine filters them).
    """
    from rmanalytics.engine import run_sql

    cal_end = pd.Timestamp(calibration_end).date()
    end = pd.Timestamp(observation_end).date()
    inputs = {"transactions": transactions}
    if cohort is not None:
        inputs["cohort"] = cohort[["customer_id"]].drop_duplicates()
    daily = run_sql(tracking_sql(cal_end, end, refunds, cohort=cohort is not None), inputs, engine=engine)
    daily["day"] = pd.to_datetime(daily["day"])
    first = pd.to_datetime(cal_holdout["first_date"]).value_counts()
    start = first.index.min()
    grid = pd.date_range(start, pd.Timestamp(end), freq=f"{step_days}D")
    grid = grid.union(pd.DatetimeIndex([pd.Timestamp(cal_end), pd.Timestamp(end)]))
    # actual: purchases on days <= s; the SQL counts days at day precision, the summary's T runs
    # to the start of the end day, so compare cumulative counts through day s inclusive.
    daily = daily.sort_values("day")
    cum = np.cumsum(daily["repeat_purchases"].to_numpy())
    idx = np.searchsorted(daily["day"].to_numpy(), grid.to_numpy(), side="right")
    actual = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0)
    age_days = (grid.to_numpy()[:, None] - first.index.to_numpy()[None, :]) / np.timedelta64(1, "D")
    age = np.clip(age_days, 0, None) / time_unit_days
    exp_new = np.asarray(model.expected_purchases_new(age.ravel()), dtype=float).reshape(age.shape)
    predicted = np.einsum("ij,j->i", exp_new, first.to_numpy(dtype=float))
    return pd.DataFrame({"date": grid, "actual": actual.astype(float), "predicted": predicted,
                         "period": np.where(grid <= pd.Timestamp(cal_end), "calibration", "holdout")})


def holdout_errors(pred: pd.DataFrame, by_frequency: pd.DataFrame | None = None,
                   track: pd.DataFrame | None = None) -> pd.DataFrame:
    """One table of holdout errors (rows: measure; columns: value, unit).

    - ``total_actual``, ``total_predicted``, ``total_rel_error``: holdout purchases of all customers;
    - ``mae``, ``rmse``: per-customer errors (purchases);
    - ``freq_bucket_mae``: mean absolute error of the bucket means (purchases per customer);
    - ``p_active_brier``: Brier score of P(active in holdout) against actual activity;
    - ``mean_p_alive``, ``share_active_holdout``;
    - ``tracking_mape_holdout``: mean absolute % error of the cumulative tracking curve in the holdout.
    """
    act = pred["frequency_holdout"].to_numpy(dtype=float)
    prd = pred["predicted_holdout"].to_numpy(dtype=float)
    rows = {
        "total_actual": (act.sum(), "purchases"),
        "total_predicted": (prd.sum(), "purchases"),
        "total_rel_error": ((prd.sum() - act.sum()) / act.sum() if act.sum() else np.nan, "ratio"),
        "mae": (np.mean(np.abs(prd - act)), "purchases per customer"),
        "rmse": (np.sqrt(np.mean((prd - act) ** 2)), "purchases per customer"),
        "p_active_brier": (np.mean((pred["p_active"] - pred["active_holdout"]) ** 2), "probability^2"),
        "mean_p_alive": (pred["p_alive"].mean(), "probability"),
        "mean_p_active": (pred["p_active"].mean(), "probability"),
        "share_active_holdout": (pred["active_holdout"].mean(), "share"),
    }
    if by_frequency is not None:
        rows["freq_bucket_mae"] = (np.mean(np.abs(by_frequency["error"])), "purchases per customer")
    if track is not None:
        h = track[(track["period"] == "holdout") & (track["actual"] > 0)]
        if len(h):
            is_cal = track["period"] == "calibration"
            base = track.loc[is_cal].iloc[-1] if is_cal.any() else None
            a0 = base["actual"] if base is not None else 0.0
            p0 = base["predicted"] if base is not None else 0.0
            ha, hp = h["actual"] - a0, h["predicted"] - p0
            ok = ha > 0
            rows["tracking_mape_holdout"] = (float(np.mean(np.abs(hp[ok] - ha[ok]) / ha[ok])) if ok.any() else np.nan,
                                             "ratio")
    return pd.DataFrame({"value": {k: float(v[0]) for k, v in rows.items()},
                         "unit": {k: v[1] for k, v in rows.items()}}).rename_axis("measure")
