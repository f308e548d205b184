"""A small rule language for segments, lifecycle stages and service tiers (used by :mod:`rmanalytics.rfm`
and validated in the notebook parameters, so it sits below both).

A rule set is an ordered list of rules; each customer gets the label of the **first** rule whose
conditions all hold, else the ``default`` label (never a silent gap). Rules live in the notebook
parameters (YAML), not in code. Conditions on one column:

- ``[min, max]``: numeric range, both ends inclusive; ``null`` for an open end
  (``r_score: [4, 5]``, ``tenure_days: [null, 90]``);
- ``{in: [...]}``: membership (``lifecycle_stage: {in: [decline_warning]}``);
- ``{not_in: [...]}``: exclusion.

Several rules may carry the same label (an "or"). A missing value (NaN) never satisfies a
condition.

Example (YAML)::

    - label: strategic
      when: {value_pct: [0.8, null], f_score: [4, null]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from rmanalytics.errors import DataError


class Condition(BaseModel):
    """A condition on one column: an inclusive range and/or a membership test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int | float | None = None
    max: int | float | None = None
    in_: list[str | int | float | bool] | None = Field(None, alias="in")
    not_in: list[str | int | float | bool] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_short(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"a range condition is [min, max], got {list(value)!r}")
            return {"min": value[0], "max": value[1]}
        return value

    @model_validator(mode="after")
    def _check(self) -> "Condition":
        if self.min is None and self.max is None and self.in_ is None and self.not_in is None:
            raise ValueError("a condition needs a range [min, max] or {in: [...]} or {not_in: [...]}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range [{self.min}, {self.max}] is empty")
        return self

    @model_serializer(mode="plain")
    def _serialize(self) -> Any:
        return self.short()

    def short(self) -> Any:
        """The compact (YAML) form: ``[min, max]``, ``{"in": [...]}`` or ``{"not_in": [...]}``."""
        if self.in_ is not None and self.min is None and self.max is None and self.not_in is None:
            return {"in": list(self.in_)}
        if self.not_in is not None and self.min is None and self.max is None and self.in_ is None:
            return {"not_in": list(self.not_in)}
        if self.in_ is None and self.not_in is None:
            return [self.min, self.max]
        out: dict[str, Any] = {}
        for key, value in (("min", self.min), ("max", self.max), ("in", self.in_), ("not_in", self.not_in)):
            if value is not None:
                out[key] = list(value) if isinstance(value, list) else value
        return out

    def mask(self, values: pd.Series) -> np.ndarray:
        """Boolean array: where ``values`` satisfy the condition."""
        ok = values.notna().to_numpy()
        if self.min is not None or self.max is not None:
            num = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
            with np.errstate(invalid="ignore"):
                if self.min is not None:
                    ok &= num >= self.min
                if self.max is not None:
                    ok &= num <= self.max
            ok &= ~np.isnan(num)
        if self.in_ is not None:
            ok &= values.isin(self.in_).to_numpy()
        if self.not_in is not None:
            ok &= ~values.isin(self.not_in).to_numpy()
        return ok


class Rule(BaseModel):
    """One rule: ``label`` applies when every condition in ``when`` holds (empty: always)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    when: dict[str, Condition] = Field(default_factory=dict)


def rule(label: str, **when: Any) -> Rule:
    """Shorthand: ``rule("champions", r_score=[5, 5], fm_score=[4, 5])``."""
    return Rule.model_validate({"label": label, "when": when})


def as_rules(rules: Sequence[Rule | Mapping[str, Any]]) -> list[Rule]:
    """Validate a list of rules given as :class:`Rule` objects or plain mappings."""
    return [r if isinstance(r, Rule) else Rule.model_validate(dict(r)) for r in rules]


def apply_rules(df: pd.DataFrame, rules: Sequence[Rule | Mapping[str, Any]], *, default: str = "other",
                name: str = "label") -> pd.Series:
    """The label of the first matching rule for every row of ``df`` (``default`` where none matches).

    Raises ``ValueError`` if a rule refers to a column ``df`` does not have.
    """
    rules = as_rules(rules)
    missing = sorted({c for r in rules for c in r.when if c not in df.columns})
    if missing:
        raise DataError(f"rules refer to column(s) {missing} that the input lacks; columns: {list(df.columns)}")
    out = np.full(len(df), None, dtype=object)
    free = np.ones(len(df), dtype=bool)
    for r in rules:
        hit = free.copy()
        for col, cond in r.when.items():
            hit &= cond.mask(df[col])
        out[hit] = r.label
        free &= ~hit
    out[free] = default
    return pd.Series(out, index=df.index, name=name, dtype=object)


def rules_table(rules: Sequence[Rule | Mapping[str, Any]]) -> pd.DataFrame:
    """The rules as a readable table (order, label, condition per column)."""
    rows = []
    for i, r in enumerate(as_rules(rules), start=1):
        rows.append({"order": i, "label": r.label,
                     "when": "; ".join(f"{c} {cond.short()}" for c, cond in r.when.items()) or "(always)"})
    return pd.DataFrame(rows)


#: Named nine-grid cells (seed 001 §三(二): "potential" and "core" cells get different service
#: plans; the plans are defaults to edit, not seed text): the band labels each cell needs (absent =
#: any) and its service plan. First match wins; :func:`rmanalytics.rfm.ninegrid.grid_cells` and the
#: notebook parameters (``nine_grid.cells``) both start from these.
DEFAULT_GRID_CELLS: tuple[dict[str, Any], ...] = (
    {"name": "core", "asset": ["aum_affluent", "aum_private"], "risk": ["risk_low", "risk_mid"],
     "service_plan": "Dedicated RM; quarterly review; retention and wallet share first"},
    {"name": "wealth_active", "asset": ["aum_affluent", "aum_private"], "risk": ["risk_high"],
     "service_plan": "Investment advisory; suitability check on every sale"},
    {"name": "potential", "asset": ["aum_mass"], "industry": ["tech", "manufacturing", "trade"],
     "service_plan": "Nurture: monthly contact, industry/scenario products, referral to corporate"},
)
