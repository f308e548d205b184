"""Synthetic RM training with a known effect on fee income (issue 18; 003 篇5, 001 §二(二)).

The story (all within the observation window, quarter by quarter):

- **Voluntary training**: each RM takes a course with probability ``training_voluntary_share``,
  starting in a quarter drawn uniformly from the 2nd to the last quarter of the window
  (staggered adoption, independent of performance).
- **Mandatory training for low performers**: at the end of every quarter (the quarterly review),
  the RMs employed for the whole quarter are ranked by their realised *fee yield* of the quarter,
  ``mean over the quarter's months of log(M[rm, month] / market_index[month])`` (the RM part of
  the fee multiplier of :mod:`rmanalytics.synth.bank`: skill + activity, which includes the
  month-to-month activity noise). The bottom ``training_mandatory_share`` of them who have not yet
  been trained start a mandatory course on the first day of the next quarter (replacing a later
  voluntary plan). Selection on a noisy low quarter is exactly the set-up in which regression to
  the mean makes a naive before/after comparison look like a training effect.
- **Effect**: from the first day of its training month onwards, the RM's fee multiplier is
  multiplied by ``1 + training_effect`` (absorbing, constant): the true relative effect on fee
  income at a given book. Only the first training of an RM is generated (the adoption date).
- ``score``: exam score ``N(78, 9)`` clipped to 0..100.

Courses start on day 1-20 of the first month of their quarter, so the whole quarter is treated.
Draws come from the bank's own ``"training"`` random stream, so the other tables are unchanged
when ``training_effect == 0``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VOLUNTARY_COURSES = ("wealth_advisory", "credit_analysis", "digital_tools")
MANDATORY_COURSE = "compliance_and_product"


def make_training(rng: np.random.Generator, M: np.ndarray, rm_ids: np.ndarray, rm_hire: np.ndarray,
                  rm_exit: np.ndarray, month_starts: np.ndarray, start_month_idx: int, market: np.ndarray,
                  truth) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``training`` table and the fee multiplier ``M`` (RM x month) with the training effect.

    ``rm_hire``/``rm_exit`` are day numbers (exit = int64 max while employed); ``month_starts``
    datetime64[D] of the simulated months; the window starts at ``start_month_idx``.
    Returns ``(training, M_treated)``; ``M`` itself is not modified.
    """
    n_rm, n_months = M.shape
    ms = month_starts.astype(np.int64)
    me = np.concatenate([ms[1:], [ms[-1] + 31]])  # exclusive month ends (day numbers)
    n_q = (n_months - start_month_idx) // 3
    q_first = start_month_idx + 3 * np.arange(n_q)  # first month index of each window quarter
    q_start, q_end = ms[q_first], me[q_first + 2]
    employed_q = (rm_hire[:, None] <= q_start[None, :]) & (rm_exit[:, None] >= q_end[None, :])
    # voluntary plans (drawn for every RM, used only if employed then and not trained before)
    u_vol = rng.random(n_rm)
    q_vol = rng.integers(1, max(n_q, 2), size=n_rm)
    planned = np.where(u_vol < truth.training_voluntary_share, q_vol, -1)
    rel = np.log(M) - np.log(market)[None, :]
    perf_q = np.stack([rel[:, f:f + 3].mean(axis=1) for f in q_first], axis=1)  # (n_rm, n_q)
    start_q = np.full(n_rm, -1)
    mandatory = np.zeros(n_rm, dtype=bool)
    for q in range(n_q):
        # voluntary starts of this quarter
        vol = (start_q < 0) & (planned == q) & employed_q[:, q]
        start_q[vol] = q
        if q + 1 >= n_q:
            break
        # quarterly review of quarter q -> mandatory training from quarter q + 1
        pool = np.flatnonzero(employed_q[:, q] & employed_q[:, q + 1])
        k = int(round(truth.training_mandatory_share * len(pool)))
        if k == 0:
            continue
        worst = pool[np.argsort(perf_q[pool, q], kind="stable")[:k]]
        new = worst[start_q[worst] < 0]
        start_q[new] = q + 1
        mandatory[new] = True
    trained = np.flatnonzero(start_q >= 0)
    first_month = q_first[start_q[trained]]
    day = ms[first_month] + rng.integers(0, 20, size=len(trained))
    course = np.where(mandatory[trained], MANDATORY_COURSE,
                      np.array(VOLUNTARY_COURSES, dtype=object)[rng.integers(0, len(VOLUNTARY_COURSES),
                                                                                  size=len(trained))])
    score = np.clip(rng.normal(78.0, 9.0, size=len(trained)), 0.0, 100.0)
    M2 = M.copy()
    if truth.training_effect != 0.0:
        after = np.arange(n_months)[None, :] >= first_month[:, None]
        M2[trained] = M2[trained] * np.where(after, 1.0 + truth.training_effect, 1.0)
    training = pd.DataFrame({
        "rm_id": rm_ids[trained],
        "course": course.astype(object),
        "start_date": day.astype("datetime64[D]").astype("datetime64[ns]"),
        "mandatory": mandatory[trained],
        "score": score,
    })
    return training.sort_values(["rm_id", "start_date"], kind="stable").reset_index(drop=True), M2
