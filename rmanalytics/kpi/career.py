"""RM career stages and the follow-through of quarterly reviews (docs/domain.md §3 "Cycle", §6).

- Career stages (000 §三(一)): new (0-1 year), growing (1-3 years), experienced (3+ years) of
  tenure at the end of the period; the bounds are a parameter. RMs are compared *within* their
  stage: a first-year RM is ranked among first-year RMs.
- Bottom x% (003 篇8, "remove the bottom who will not change, about 3-5 % a year"): a flag for a
  conversation, never an automatic decision; ``bottom_share`` is a parameter. Within a stage and
  period, the RMs whose score rank is in the bottom ``bottom_share`` (at least one RM when
  ``min_one`` and the stage has ``min_stage_size`` RMs or more) are flagged.
- Follow-through (001 §二(二)): two consecutive "excellent" quarters -> the resource-priority list
  (high-end client resources, management-track candidacy); "needs improvement" -> the training
  list (compliance and product training, improvement within a deadline). With the optional
  ``training`` table, the training list says whether a course actually started within
  ``training_within_days`` after the end of the review quarter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmanalytics.errors import ParameterError
from rmanalytics.kpi.scorecard import cycle_flags

STAGES = ("new", "growing", "experienced")



def career_stage(tenure_years: pd.Series | np.ndarray, bounds: tuple[float, float] = (1.0, 3.0)) -> np.ndarray:
    """Stage of each tenure (years): ``new`` below ``bounds[0]``, ``growing`` below ``bounds[1]``,
    else ``experienced``."""
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ParameterError(f"career stage bounds must satisfy 0 < new < growing, got {bounds}")
    t = np.asarray(tenure_years, dtype=float)
    return np.where(t < lo, "new", np.where(t < hi, "growing", "experienced")).astype(object)


def stage_comparison(scores: pd.DataFrame, rms: pd.DataFrame, *, bounds: tuple[float, float] = (1.0, 3.0),
                     bottom_share: float = 0.05, score: str = "total_score", min_one: bool = True,
                     min_stage_size: int = 5, period_end: pd.Series | None = None) -> pd.DataFrame:
    """Rank RMs within their career stage per period and flag the bottom ``bottom_share``.

    Parameters
    ----------
    scores : one row per ``rm_id, period`` with ``score`` (e.g. :func:`rmanalytics.kpi.scorecard`).
    rms : the ``rms`` table (``hire_date``).
    period_end : end (exclusive) of each row's period; default parsed from the period labels
        ('YYYY', 'YYYYQn', 'YYYY-MM'). Tenure is measured at the last day of the period, in years
        of 365.25 days.

    Returns
    -------
    ``rm_id, period, tenure_years, stage, stage_size, stage_rank`` (1 = best), ``stage_percentile``
    (0 = best, 1 = worst), ``bottom_flag`` and the ``score``.
    """
    if not 0.0 <= bottom_share < 1.0:
        raise ParameterError(f"bottom_share must be within [0, 1), got {bottom_share}")
    hire = pd.to_datetime(scores["rm_id"].map(rms.set_index("rm_id")["hire_date"]))
    if hire.isna().any():
        ex = scores.loc[hire.isna(), "rm_id"].unique()[:3].tolist()
        raise ParameterError(f"stage_comparison: {int(hire.isna().sum())} rows have no hire_date in rms, e.g. {ex}")
    if period_end is None:
        period_end = _period_end(scores["period"])
    last_day = pd.to_datetime(period_end) - pd.Timedelta(days=1)
    out = scores[["rm_id", "period", score]].copy()
    out["tenure_years"] = ((last_day.to_numpy() - hire.to_numpy()) / np.timedelta64(1, "D")) / 365.25
    out["stage"] = career_stage(out["tenure_years"], bounds)
    g = out.groupby(["period", "stage"])[score]
    out["stage_size"] = g.transform("size").astype(int)
    out["stage_rank"] = g.rank(ascending=False, method="min").astype(int)
    out["stage_percentile"] = np.where(out["stage_size"] > 1, (out["stage_rank"] - 1) / (out["stage_size"] - 1), 0.0)
    n_bottom = np.floor(bottom_share * out["stage_size"] + 1e-9)
    if min_one and bottom_share > 0:
        n_bottom = np.where(out["stage_size"] >= min_stage_size, np.maximum(n_bottom, 1), n_bottom)
    out["bottom_flag"] = out["stage_rank"] > out["stage_size"] - n_bottom
    return out.sort_values(["period", "stage", "stage_rank"]).reset_index(drop=True)


def _period_end(periods: pd.Series) -> pd.Series:
    p = periods.astype(str)
    ends = []
    for x in p:
        if len(x) == 4:
            ends.append(pd.Timestamp(f"{int(x) + 1}-01-01"))
        elif "Q" in x:
            ends.append((pd.Period(x, freq="Q") + 1).start_time)
        else:
            ends.append((pd.Period(x, freq="M") + 1).start_time)
    return pd.Series(ends, index=periods.index)


def review_actions(scores: pd.DataFrame, rms: pd.DataFrame | None = None, training: pd.DataFrame | None = None,
                   *, bounds: tuple[float, float] = (1.0, 3.0), training_within_days: int = 92) -> pd.DataFrame:
    """The follow-through lists of quarterly reviews (quarter labels 'YYYYQn').

    Returns one row per RM, quarter and action: ``action`` = ``"resource_priority"`` (rated
    excellent this and the previous quarter) or ``"mandatory_training"`` (rated needs improvement),
    ``reason``, ``rating``, ``previous_rating``, ``stage`` (when ``rms`` is given) and, when
    ``training`` is given, ``training_start`` (first course start after the quarter's end and
    within ``training_within_days``; NaT if none) and ``training_followed`` for the training list.
    """
    f = cycle_flags(scores)
    pri = f[f["two_consecutive_excellent"]].assign(action="resource_priority",
                                                   reason="excellent in two consecutive quarters")
    tr = f[f["needs_improvement"]].assign(action="mandatory_training", reason="rated needs improvement")
    out = pd.concat([pri, tr], ignore_index=True)[["rm_id", "period", "action", "reason", "rating",
                                                   "previous_rating"]]
    end = _period_end(out["period"]) if len(out) else pd.Series([], dtype="datetime64[ns]")
    if rms is not None and len(out):
        hire = pd.to_datetime(out["rm_id"].map(rms.set_index("rm_id")["hire_date"]))
        tenure = ((end - pd.Timedelta(days=1)) - hire).dt.days / 365.25
        out["stage"] = career_stage(tenure, bounds)
    if training is not None:
        t = training.assign(start_date=pd.to_datetime(training["start_date"])).sort_values("start_date")
        starts = []
        for rid, e in zip(out["rm_id"], end):
            s = t.loc[(t["rm_id"] == rid) & (t["start_date"] >= e)
                      & (t["start_date"] < e + pd.Timedelta(days=training_within_days)), "start_date"]
            starts.append(s.iloc[0] if len(s) else pd.NaT)
        out["training_start"] = pd.to_datetime(pd.Series(starts, index=out.index, dtype="datetime64[ns]"))
        followed = pd.array(out["training_start"].notna().to_numpy(), dtype="boolean")
        followed[(out["action"] != "mandatory_training").to_numpy()] = pd.NA
        out["training_followed"] = followed
    return out.sort_values(["period", "action", "rm_id"]).reset_index(drop=True)
