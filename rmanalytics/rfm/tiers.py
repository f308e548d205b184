"""Service tiers (战略级 / 成长级 / 基础级 / 关注级) from scores, segment, lifecycle, value and tags.

Tiers follow the rules in :class:`rmanalytics.params.segmentation.TierParams` (first match
wins, default "basic"). Defaults (docs/domain.md §1, seed 002):

1. attention (关注级): churn warning (decline_warning stage) or a lapsing segment still worth
   winning back (at_risk, cant_lose, about_to_sleep) — needs re-activation;
2. strategic (战略级): high value (top 20% by AUM) and high stickiness (F score >= 4);
3. growth (成长级): potential segments (potential_loyalist, promising, new_customers), or new /
   growth lifecycle with FM score >= 3 — potential and high growth;
4. basic (基础级): everyone else (hibernating and lost customers included) — inclusive,
   standardised, high-frequency service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rmanalytics.rfm.value import percentile_rank
from rmanalytics.rules import Rule, apply_rules

TIERS = ("strategic", "growth", "basic", "attention")
#: Tier of every customer when there are no balances: the tier rules are about AUM value.
NOT_TIERED = "not_tiered"

# label keys are namespaced ("tier:growth") because lifecycle stages also have a "growth"


def service_tiers(customers: pd.DataFrame, *, rules: Sequence[Rule | Mapping[str, Any]], default: str = "basic",
                  value_col: str = "value") -> pd.DataFrame:
    """Add ``value_pct`` (percentile rank of ``value_col``, 0-1) and ``tier`` by the tier rules.

    Parameters
    ----------
    customers : one row per customer with the fields the rules use (r_score, f_score, m_score,
        fm_score, segment, lifecycle_stage, value, tags ...).
    rules : tier rules (:mod:`rmanalytics.rules`; the notebook default is ``TierParams().rules``).
    default : tier of customers no rule matches.
    """
    out = customers.copy()
    if value_col in out.columns:
        out["value_pct"] = percentile_rank(out[value_col].astype("float64"))
    out["tier"] = apply_rules(out, rules, default=default).to_numpy()
    return out
