"""R, F and M scores (1..bins, high = good) from an RFM table.

Tie handling (bank data: most customers share the lowest frequencies)
----------------------------------------------------------------------
A score is a function of the customer's *value* and the distribution only, never of row order:

- ``method="quantile"``: the ``bins - 1`` edges are the quantiles of the values at
  ``k / bins`` (``numpy.quantile``, linear interpolation), computed on the "higher is better"
  scale (``-recency_days`` for R, ``frequency`` for F, ``monetary`` for M). The score is
  ``1 + (number of edges strictly below the value)``: a value *equal to an edge goes to the lower
  bin*, so equal values always share a score. With heavy ties several edges coincide and some
  scores stay empty (the bins "collapse"); a :class:`BinsCollapsedWarning` says which. Example:
  if every customer has frequency 1, every F score is 1.
- ``method="fixed"``: the edges are given (``edges={"recency_days": [...], "frequency": [...],
  "monetary": [...]}``, ascending, ``bins - 1`` each, in days / transactions / currency). The
  same rule applies: F, M = ``1 + #(edges < value)``; R = ``1 + #(edges > recency_days)``, so a
  recency equal to an edge gets the lower R score.

``fm_score`` = round-half-up of (F + M) / 2, an integer 1..bins used by the segment grid.

(pandas' ``qcut`` is not used because it fails or silently merges bins on ties, and rank-based
"first" tie-breaking depends on row order.)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, ParameterError

SCORE_COLUMNS = {"r": "recency_days", "f": "frequency", "m": "monetary"}


class BinsCollapsedWarning(UserWarning):
    """Raised when ties leave some score bins empty."""


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """The ``bins - 1`` quantile edges of ``values`` at k / bins (linear interpolation)."""
    return np.quantile(values, np.arange(1, bins) / bins)


def score_values(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Score = 1 + number of edges strictly below the value (ties at an edge go to the lower bin)."""
    edges = np.asarray(edges, dtype="float64")
    return 1 + np.searchsorted(np.sort(edges), values, side="left")


def rfm_scores(
    rfm: pd.DataFrame,
    *,
    bins: int = 5,
    method: Literal["quantile", "fixed"] = "quantile",
    edges: Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """R, F, M scores 1..``bins`` (recent / frequent / high spending = high score).

    Parameters
    ----------
    rfm : output of :func:`rfm_table` (needs customer_id, recency_days, frequency, monetary).
    bins : number of score levels (>= 2).
    method : "quantile" (edges from the data) or "fixed" (``edges`` given).
    edges : for "fixed": {"recency_days": [...], "frequency": [...], "monetary": [...]}, each
        ascending with ``bins - 1`` values (days, count, currency).

    Returns
    -------
    DataFrame: customer_id, r_score, f_score, m_score, fm_score, rfm_cell (e.g. 545), in the order
    of ``rfm``; ``.attrs["edges"]`` holds the edges used per column.
    """
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ParameterError(f"bins must be an integer >= 2, got {bins!r}")
    need = ["customer_id", *SCORE_COLUMNS.values()]
    missing = [c for c in need if c not in rfm.columns]
    if missing:
        raise DataError(f"rfm_scores: input lacks column(s) {missing}")
    if method not in ("quantile", "fixed"):
        raise ParameterError(f"method must be 'quantile' or 'fixed', got {method!r}")
    if method == "fixed" and edges is None:
        raise ParameterError("method='fixed' needs edges={'recency_days': [...], 'frequency': [...], 'monetary': [...]}")
    out = pd.DataFrame({"customer_id": rfm["customer_id"].to_numpy()}, index=rfm.index)
    used: dict[str, list[float]] = {}
    for key, col in SCORE_COLUMNS.items():
        raw = rfm[col].to_numpy(dtype="float64")
        if np.isnan(raw).any():
            bad = rfm.loc[np.isnan(raw), "customer_id"].head(5).tolist()
            raise DataError(f"rfm_scores: {int(np.isnan(raw).sum())} NaN value(s) in {col} (customers {bad})")
        if method == "quantile":
            vals = -raw if key == "r" else raw
            e = quantile_edges(vals, bins) if len(vals) else np.zeros(bins - 1)
            score = score_values(vals, e)
            used[col] = (-e[::-1] if key == "r" else e).tolist()
            n_distinct = len(np.unique(e))
            if n_distinct < bins - 1:
                warnings.warn(
                    f"{key.upper()} score: ties in {col} make {bins - 1 - n_distinct} of the {bins - 1} quantile "
                    f"edges coincide ({np.round(used[col], 6).tolist()}); only {len(np.unique(score))} of "
                    f"{bins} scores are used", BinsCollapsedWarning, stacklevel=2)
        else:
            if col not in edges:
                raise ParameterError(f"edges lacks {col!r}")
            e = np.asarray(edges[col], dtype="float64")
            if len(e) != bins - 1 or np.any(np.diff(e) < 0):
                raise ParameterError(f"edges[{col!r}] must be {bins - 1} ascending values, got {list(e)}")
            used[col] = e.tolist()
            if key == "r":  # 1 + #(edges > recency): recent = high; equal to an edge -> lower score
                score = 1 + (len(e) - np.searchsorted(e, raw, side="right"))
            else:
                score = score_values(raw, e)
        out[f"{key}_score"] = score.astype("int64")
    out["fm_score"] = np.floor((out["f_score"] + out["m_score"]) / 2 + 0.5).astype("int64")
    out["rfm_cell"] = (out["r_score"] * 100 + out["f_score"] * 10 + out["m_score"]).astype("int64")
    out.attrs["edges"] = used
    return out
