"""A seeded random sample of customers to fit the time-varying churn models on, for banks too large
to fit whole.

The time-varying Cox model needs one row per customer and month of follow-up: 20M rows and about
4 GB of working memory for a million customers. Above a few million customers that frame no longer
fits one machine. A Cox model fitted on a simple random sample of customers estimates the same
coefficients (the sample's standard errors, which are the ones reported, are sqrt(N / n) times the
full bank's). So the models are fitted on a sample and every customer is scored.

The draw is by a keyed hash of the customer id (pandas' SipHash ``hash_array``, key from the seed):
the customers with the smallest hashes are kept. The same seed draws the same customers whatever
the frame's row order, the engine's threads or the run's jobs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd


def sample_customers(frame: pd.DataFrame, max_customers: int | None, *, random_state: int = 0,
                     id_col: str = "customer_id") -> pd.DataFrame:
    """The rows of at most ``max_customers`` customers of ``frame`` (one row per customer, e.g. a
    :func:`~rmanalytics.churn.frame.survival_frame`), drawn at random with ``random_state``.

    ``max_customers`` 0 or None, or at least the frame's customers: every row (a shallow copy: no
    data copied). The rows keep their order. ``attrs`` are the frame's plus ``fit_sample``:
    ``{"max_customers", "seed", "customers" (kept), "of" (in the frame)}``, which
    :func:`~rmanalytics.churn.frame.time_varying_frame` carries to the long frame and a fitted
    :class:`~rmanalytics.churn.ChurnModel` to its ``data_attrs_`` (so a caller can tell how a model
    was fitted).
    """
    if max_customers is not None and int(max_customers) < 0:
        raise ValueError(f"max_customers must be >= 0 (0: no sample), got {max_customers}")
    m = int(max_customers or 0)
    n = len(frame)
    if m == 0 or n <= m:
        out = frame.copy(deep=False)
    else:
        key = hashlib.sha256(f"rmanalytics.fit_sample:{int(random_state)}".encode()).hexdigest()[:16]
        h = pd.util.hash_array(frame[id_col].to_numpy(), hash_key=key)
        keep = np.sort(np.argsort(h, kind="stable")[:m])
        out = frame.iloc[keep].reset_index(drop=True)
    out.attrs = dict(frame.attrs) | {"fit_sample": {"max_customers": m, "seed": int(random_state),
                                                    "customers": len(out), "of": n}}
    return out


def is_sample(attrs: dict[str, Any]) -> bool:
    """Whether a frame or model with these ``attrs`` (``data_attrs_``) covers only a sample of the
    customers (:func:`sample_customers` kept fewer than it was given)."""
    s = attrs.get("fit_sample") or {}
    return bool(s) and s["customers"] < s["of"]


def same_sample(attrs: dict[str, Any], max_customers: int | None, random_state: int) -> bool:
    """Whether :func:`sample_customers` with ``max_customers`` and ``random_state`` on the frame a
    model was fitted on (its ``data_attrs_``) would keep the same customers: both keep all of them,
    or both draw with the same size and seed."""
    s = attrs.get("fit_sample")
    m = int(max_customers or 0)
    if not s:  # fitted without a draw: the same only when none is asked for
        return m == 0
    if s["customers"] < s["of"]:
        return s["max_customers"] == m and s["seed"] == int(random_state)
    return m == 0 or s["of"] <= m
