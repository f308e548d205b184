"""Named RFM segments from segment rules; the default is the common 11-segment scheme on R x FM.

The default scheme (a notebook parameter: :data:`rmanalytics.params.segmentation.DEFAULT_SEGMENT_RULES`
and ``params/01_segmentation.yaml``; functions here take the rules as an argument) is the widely
used R x FM grid for 5 score levels, FM = round-half-up((F + M) / 2)::

              FM=1            FM=2          FM=3            FM=4          FM=5
    R=5   new_customers   potential     potential       champions     champions
    R=4   promising       potential     potential       loyal         loyal
    R=3   about_to_sleep  about_to_sleep need_attention loyal         loyal
    R=2   hibernating     hibernating   at_risk         at_risk       cant_lose
    R=1   lost            hibernating   at_risk         at_risk       cant_lose

Rules are evaluated in order (first match wins); a customer matching none (e.g. with other
``bins``) gets the explicit label ``"other"``, never a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rmanalytics.errors import ParameterError
from rmanalytics.labels import relabel
from rmanalytics.rules import Rule, apply_rules

SEGMENTS = ("champions", "loyal", "potential_loyalist", "new_customers", "promising", "need_attention",
            "about_to_sleep", "at_risk", "cant_lose", "hibernating", "lost")


def localize(values: pd.Series, kind: str, lang: str = "en") -> pd.Series:
    """Labels of segment / stage / tier keys in ``lang``; ``kind`` is "segment", "stage" or "tier"."""
    if kind not in ("segment", "stage", "tier"):
        raise ValueError(f"kind must be 'segment', 'stage' or 'tier', got {kind!r}")
    keys = values.map(lambda v: f"{kind}:{v}" if isinstance(v, str) else v)
    labelled = relabel(keys, lang)
    # unregistered keys fall back to the raw key (without the prefix)
    return labelled.where(labelled != keys, values)


def rfm_segments(
    scores: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, Any]],
    *,
    default: str = "other",
    lang: str | None = None,
) -> pd.DataFrame:
    """Add a ``segment`` column (segment key) to the output of :func:`rfm_scores`.

    Parameters
    ----------
    scores : frame with r_score, f_score, m_score, fm_score.
    rules : segment rules (see :mod:`rmanalytics.rules`; the notebook default is ``SegmentParams().rules``).
    default : label for customers no rule matches.
    lang : if given ("en"/"zh"), also add ``segment_label`` in that language.
    """
    if isinstance(rules, str):
        raise ParameterError(f"rfm_segments: rules must be a list of rules, got {rules!r} (the former 'standard' "
                             "scheme is the default of the notebook parameter segments.rules)")
    out = scores.copy()
    out["segment"] = apply_rules(out, rules, default=default).to_numpy()
    if lang is not None:
        out["segment_label"] = localize(out["segment"], "segment", lang).to_numpy()
    return out
