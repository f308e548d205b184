"""RM scorecard: configuration, scoring, rating with one-vote veto, roll-up and review cycles.

The configuration (YAML, default ``params/scorecards/default.yaml``) defines the dimensions (docs/domain.md §3:
business contribution, customer management, risk & compliance, teamwork & growth), their KPIs,
directions, weights, scoring rules, veto rules, rating bands and bonus coefficients.

Scoring rules (``achievement`` is then clipped to ``[floor, cap]`` and scaled to points x 100):

- ``ratio`` : higher is better ``actual / target``; lower is better ``target / actual``
  (an actual of 0 with lower-is-better earns the cap). Targets must be > 0.
- ``difference`` : higher is better ``1 + (actual - target) / scale``; lower is better
  ``1 - (actual - target) / scale``; ``scale`` is in the KPI's unit (e.g. 1,000,000 currency of
  deposit growth per 100 points).

Dimension score = sum of KPI weight x points (KPI weights within a dimension sum to 1);
total = sum of dimension weight x dimension score (dimension weights sum to 1). A rating band is
the first band (best first) whose ``min_score`` the total reaches; a veto rule that fires caps
the rating at its ``cap_rating`` whatever the score ("one-vote veto").
"""

from __future__ import annotations

import math
import operator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rmanalytics.errors import DataError, ParameterError
from rmanalytics.kpi.measures import KPI_DEFINITIONS

RATINGS = ("excellent", "good", "qualified", "needs_improvement")
ORG_LEVELS = ("outlet", "sub_branch", "tier2_branch", "tier1_branch")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}


_TOL = 1e-9


class KpiRule(BaseModel):
    """Scoring of one KPI within a dimension."""

    model_config = ConfigDict(extra="forbid")
    weight: float = Field(gt=0, le=1)
    direction: Literal["higher", "lower"] | None = None  # default: from KPI_DEFINITIONS
    rule: Literal["ratio", "difference"] = "ratio"
    scale: float | None = Field(None, gt=0, description="difference rule: KPI units per 1.0 of achievement")
    cap: float = 1.5
    floor: float = 0.0
    target: float | None = Field(None, description="standard target used where kpi_targets has none for the KPI")

    @model_validator(mode="after")
    def _check(self) -> "KpiRule":
        if self.rule == "difference" and self.scale is None:
            raise ValueError("rule 'difference' needs a 'scale' (KPI units per 100 points)")
        if self.floor > self.cap:
            raise ValueError(f"floor {self.floor} exceeds cap {self.cap}")
        return self


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(gt=0, le=1)
    kpis: dict[str, KpiRule]

    @model_validator(mode="after")
    def _weights(self) -> "Dimension":
        s = sum(k.weight for k in self.kpis.values())
        if abs(s - 1.0) > 1e-6:
            raise ValueError(f"KPI weights must sum to 1, got {s:.6g} ({ {k: v.weight for k, v in self.kpis.items()} })")
        return self


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal["excellent", "good", "qualified", "needs_improvement"]
    min_score: float


class VetoRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kpi: str
    op: Literal[">", ">=", "<", "<=", "=="] = ">"
    value: float = 0.0
    cap_rating: Literal["excellent", "good", "qualified", "needs_improvement"] = "needs_improvement"
    reason: str = "major compliance breach"


class ScorecardConfig(BaseModel):
    """The scorecard configuration (see module docstring)."""

    model_config = ConfigDict(extra="forbid")
    dimensions: dict[str, Dimension]
    bands: list[Band]
    veto: list[VetoRule] = []
    bonus_coefficients: dict[str, float]
    peer_group: list[str] = ["tier1_branch", "level"]
    missing_actual: Literal["floor", "error"] = "floor"

    @model_validator(mode="after")
    def _check(self) -> "ScorecardConfig":
        s = sum(d.weight for d in self.dimensions.values())
        if abs(s - 1.0) > 1e-6:
            raise ValueError(f"dimension weights must sum to 1, got {s:.6g} "
                             f"({ {k: v.weight for k, v in self.dimensions.items()} })")
        unknown = [k for d in self.dimensions.values() for k in d.kpis if k not in KPI_DEFINITIONS]
        unknown += [v.kpi for v in self.veto if v.kpi not in KPI_DEFINITIONS]
        if unknown:
            raise ValueError(f"unknown KPIs {unknown}; known: {sorted(KPI_DEFINITIONS)}")
        mins = [b.min_score for b in self.bands]
        if mins != sorted(mins, reverse=True):
            raise ValueError("bands must be listed best first with decreasing min_score")
        if {b.rating for b in self.bands} != set(RATINGS):
            raise ValueError(f"bands must define each rating once: {RATINGS}")
        missing = set(RATINGS) - set(self.bonus_coefficients)
        if missing:
            raise ValueError(f"bonus_coefficients lack ratings {sorted(missing)}")
        return self

    @property
    def kpis(self) -> list[str]:
        return [k for d in self.dimensions.values() for k in d.kpis]

    def direction(self, dim: str, kpi: str) -> str:
        d = self.dimensions[dim].kpis[kpi].direction
        return d or ("higher" if KPI_DEFINITIONS[kpi].higher_is_better else "lower")


def load_scorecard_config(source: str | Path | dict) -> ScorecardConfig:
    """Read and validate a scorecard config from a YAML path or a dict; errors name the field."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists() and not path.is_absolute():
            repo_root = Path(__file__).resolve().parents[2]  # a relative path may be given from the repo root
            if (repo_root / path).exists():
                path = repo_root / path
        if not path.exists():
            raise FileNotFoundError(f"scorecard config {str(source)!r} not found (cwd: {Path.cwd()})")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        data = dict(source)
    return ScorecardConfig.model_validate(data)


def _targets_long(targets: pd.DataFrame, unit_level: str = "rm") -> pd.DataFrame:
    t = targets
    if "unit_level" in t.columns:
        t = t[t["unit_level"] == unit_level]
    t = t.rename(columns={"unit_id": "rm_id"})
    return t[["rm_id", "period", "kpi", "target"]]


def kpi_points(kpis: pd.DataFrame, targets: pd.DataFrame, config: ScorecardConfig, *,
               unit_level: str = "rm") -> pd.DataFrame:
    """Points per RM, period and scored KPI (long format).

    Parameters
    ----------
    kpis : from :func:`rmanalytics.kpi.kpi_table` (``rm_id, period`` + KPI columns).
    targets : the ``kpi_targets`` table (rows with ``unit_level == unit_level`` are used) or a frame
        ``rm_id, period, kpi, target``.
    unit_level : the org level scored (``"rm"``; an org unit's id is then in the ``rm_id`` column,
        see :func:`rmanalytics.kpi.branch.unit_scorecard`).

    Returns
    -------
    ``rm_id, period, dimension, kpi, actual, target, target_source, achievement, points, weight,
    missing_actual``. A target comes from ``kpi_targets`` when it has one for the (RM, period, KPI),
    else from the KPI's standard ``target`` in the config (``target_source`` says which).
    Raises ValueError naming the (rm_id, period, kpi) rows with neither.
    """
    missing_cols = [k for k in config.kpis if k not in kpis.columns]
    if missing_cols:
        raise DataError(f"kpis frame lacks scored KPI columns {missing_cols}")
    t = _targets_long(targets, unit_level)
    dup = t.duplicated(["rm_id", "period", "kpi"])
    if dup.any():
        raise DataError(f"kpi_targets: {int(dup.sum())} duplicated (unit_id, period, kpi) rows, e.g. "
                         f"{t.loc[dup, ['rm_id', 'period', 'kpi']].head(3).values.tolist()}")
    rows = []
    for dim, d in config.dimensions.items():
        for kpi, rule in d.kpis.items():
            part = kpis[["rm_id", "period", kpi]].rename(columns={kpi: "actual"})
            part = part.assign(dimension=dim, kpi=kpi, weight=rule.weight)
            rows.append(part)
    long = pd.concat(rows, ignore_index=True).merge(t, on=["rm_id", "period", "kpi"], how="left")
    long["target_source"] = np.where(long["target"].notna(), "kpi_targets", None)
    for dim, d in config.dimensions.items():
        for kpi, rule in d.kpis.items():
            if rule.target is not None:
                sel = (long["dimension"] == dim) & (long["kpi"] == kpi) & long["target"].isna()
                long.loc[sel, "target"] = rule.target
                long.loc[sel, "target_source"] = "config"
    no_t = long["target"].isna()
    if no_t.any():
        ex = long.loc[no_t, ["rm_id", "period", "kpi"]].head(5).values.tolist()
        raise DataError(f"kpi_targets: {int(no_t.sum())} (rm_id, period, kpi) combinations have no target "
                         f"(and the scorecard config gives no standard target for the KPI), e.g. {ex}")
    ach = np.full(len(long), np.nan)
    for (dim, kpi), idx in long.groupby(["dimension", "kpi"]).groups.items():
        rule = config.dimensions[dim].kpis[kpi]
        direction = config.direction(dim, kpi)
        a = long.loc[idx, "actual"].to_numpy(float)
        tg = long.loc[idx, "target"].to_numpy(float)
        if rule.rule == "ratio":
            bad = tg <= 0
            if bad.any():
                ex = long.loc[idx[bad], ["rm_id", "period"]].head(3).values.tolist()
                raise DataError(f"kpi_targets: KPI {kpi!r} uses the ratio rule but {int(bad.sum())} targets are "
                                 f"<= 0 (e.g. {ex}); use the 'difference' rule for it")
            with np.errstate(divide="ignore", invalid="ignore"):
                r = a / tg if direction == "higher" else np.where(a == 0, np.inf, tg / a)
        else:
            sign = 1.0 if direction == "higher" else -1.0
            r = 1.0 + sign * (a - tg) / rule.scale
        r = np.where(np.isnan(a), np.nan, np.clip(r, rule.floor, rule.cap))
        ach[long.index.get_indexer(idx)] = r
    long["achievement"] = ach
    long["missing_actual"] = long["actual"].isna()
    if long["missing_actual"].any():
        if config.missing_actual == "error":
            ex = long.loc[long["missing_actual"], ["rm_id", "period", "kpi"]].head(5).values.tolist()
            raise DataError(f"{int(long['missing_actual'].sum())} KPI values are missing (NaN), e.g. {ex}")
        floor = {(dim, kpi): rule.floor for dim, d in config.dimensions.items() for kpi, rule in d.kpis.items()}
        floors = pd.Series([floor[k] for k in zip(long["dimension"], long["kpi"])], index=long.index, dtype=float)
        long["achievement"] = long["achievement"].fillna(floors)
    long["points"] = 100.0 * long["achievement"]
    return long[["rm_id", "period", "dimension", "kpi", "actual", "target", "target_source", "achievement", "points",
                 "weight", "missing_actual"]]


def _rating(score: float, config: ScorecardConfig) -> str:
    for b in config.bands:
        if score >= b.min_score:
            return b.rating
    return config.bands[-1].rating


def scorecard(kpis: pd.DataFrame, targets: pd.DataFrame, config: ScorecardConfig | dict | str,
              rms: pd.DataFrame | None = None, *, unit_level: str = "rm") -> pd.DataFrame:
    """Score every RM and period: dimension scores, total, rating, veto, peer rank, bonus.

    Parameters
    ----------
    kpis : per RM and period (:func:`rmanalytics.kpi.kpi_table`).
    targets : ``kpi_targets`` table (rm rows) with a target for each scored KPI.
    config : :class:`ScorecardConfig`, a dict or a YAML path.
    rms : the ``rms`` table; adds the hierarchy columns and the peer groups for ranking (without
        it every RM is in one peer group).

    Returns
    -------
    One row per ``rm_id, period``: ``score_<dimension>`` (points), ``total_score``,
    ``rating_by_score``, ``rating`` (after veto), ``veto_reason`` (None if none fired),
    ``peer_rank`` (1 = best total score in its peer group and period), ``bonus_coefficient``,
    ``n_missing_kpis``, ``partial_period`` when present in ``kpis``.
    """
    if not isinstance(config, ScorecardConfig):
        config = load_scorecard_config(config)
    pts = kpi_points(kpis, targets, config, unit_level=unit_level)
    pts["wp"] = pts["weight"] * pts["points"]
    dim = pts.pivot_table(index=["rm_id", "period"], columns="dimension", values="wp", aggfunc="sum")
    dim = dim[list(config.dimensions)]
    out = pd.DataFrame(index=dim.index)
    for d in config.dimensions:
        out[f"score_{d}"] = dim[d]
    out["total_score"] = sum(config.dimensions[d].weight * dim[d] for d in config.dimensions)
    out["n_missing_kpis"] = pts.groupby(["rm_id", "period"])["missing_actual"].sum().reindex(out.index)
    out = out.reset_index()
    out["rating_by_score"] = out["total_score"].map(lambda s: _rating(s, config))
    k = kpis.set_index(["rm_id", "period"]).reindex(pd.MultiIndex.from_frame(out[["rm_id", "period"]]))
    order = {r: i for i, r in enumerate(RATINGS)}
    rating = out["rating_by_score"].to_numpy(object).copy()
    reason = np.full(len(out), None, dtype=object)
    for v in config.veto:
        vals = k[v.kpi].to_numpy(float)
        fired = _OPS[v.op](np.nan_to_num(vals, nan=-math.inf if v.op in (">", ">=") else math.inf), v.value)
        for i in np.flatnonzero(fired):
            if order[rating[i]] < order[v.cap_rating]:
                rating[i] = v.cap_rating
            reason[i] = v.reason if reason[i] is None else f"{reason[i]}; {v.reason}"
    out["rating"] = rating
    out["veto_reason"] = reason
    if "partial_period" in kpis.columns:
        out["partial_period"] = k["partial_period"].to_numpy()
    peer_cols: list[str] = []
    if rms is not None:
        org = rms.set_index("rm_id")
        for c in ["level", *ORG_LEVELS]:
            if c in org.columns:
                out[c] = out["rm_id"].map(org[c])
        missing_peer = [c for c in config.peer_group if c not in out.columns]
        if missing_peer:
            raise DataError(f"peer_group columns {missing_peer} not in the rms table")
        peer_cols = list(config.peer_group)
    grp = out.groupby(["period", *peer_cols])["total_score"]
    out["peer_rank"] = grp.rank(ascending=False, method="min").astype(int)
    out["peer_group_size"] = grp.transform("size").astype(int)
    out["bonus_coefficient"] = out["rating"].map(config.bonus_coefficients)
    return out.sort_values(["period", "rm_id"]).reset_index(drop=True)


def rollup_weights(scores: pd.DataFrame, weight: str = "unweighted", kpis: pd.DataFrame | None = None,
                   volume: str = "aum") -> pd.Series:
    """Weight of each row (RM, period) of ``scores`` in a roll-up.

    ``"unweighted"``: 1 per RM. ``"headcount"``: full-time equivalent in the period,
    ``days_active / days in the period`` (an RM who left mid-quarter counts for the days served;
    needs ``kpis`` with ``days_active, period_start, period_end``). ``"volume"``: the RM's business
    volume, column ``volume`` of ``kpis`` (default ``aum``, currency; negative values count 0).
    """
    if weight == "unweighted":
        return pd.Series(1.0, index=scores.index)
    if weight not in ("headcount", "volume"):
        raise ParameterError(f"weight must be 'unweighted', 'headcount' or 'volume', got {weight!r}")
    if kpis is None:
        raise ParameterError(f"rollup weight {weight!r} needs the kpis frame")
    k = kpis.set_index(["rm_id", "period"])
    idx = pd.MultiIndex.from_frame(scores[["rm_id", "period"]])
    if weight == "headcount":
        days = (k["period_end"] - k["period_start"]).dt.days
        w = (k["days_active"] / days).reindex(idx)
    else:
        if volume not in k.columns:
            raise DataError(f"kpis has no volume column {volume!r} to weight the roll-up by")
        w = k[volume].clip(lower=0).reindex(idx)
    return pd.Series(w.fillna(0.0).to_numpy(float), index=scores.index)


def rollup(scores: pd.DataFrame, rms: pd.DataFrame, levels: tuple[str, ...] = ORG_LEVELS, *,
           weight: str = "unweighted", kpis: pd.DataFrame | None = None, volume: str = "aum") -> pd.DataFrame:
    """Roll RM scorecards up the hierarchy: outlet, sub-branch, tier-2 and tier-1 branch.

    ``weight`` (see :func:`rollup_weights`): ``"unweighted"`` (each RM counts 1), ``"headcount"``
    (by FTE in the period) or ``"volume"`` (by the RM's ``volume`` column of ``kpis``).
    Returns a long frame ``level, unit, period, n_rms, mean_score, score_<dim>`` (weighted means
    over RMs), ``n_<rating>, share_excellent, n_vetoed, mean_bonus, weighting``. How a unit's
    ``mean_score`` splits into its RMs' contributions: :func:`rmanalytics.kpi.branch.rm_contributions`.
    """
    org = rms.set_index("rm_id")
    miss = [lv for lv in levels if lv not in org.columns]
    if miss:
        raise DataError(f"rms table lacks hierarchy columns {miss}")
    unknown = sorted(set(scores["rm_id"]) - set(org.index))
    if unknown:
        raise DataError(f"rollup: {len(unknown)} rm_id not in rms, e.g. {unknown[:3]}")
    dims = [c for c in scores.columns if c.startswith("score_")]
    w = rollup_weights(scores, weight, kpis, volume)
    parts = []
    for lv in levels:
        s = scores.assign(unit=scores["rm_id"].map(org[lv]), _w=w)
        g = s.groupby(["unit", "period"])
        df = g.agg(n_rms=("rm_id", "nunique"), mean_bonus=("bonus_coefficient", "mean"),
                   n_vetoed=("veto_reason", lambda x: int(x.notna().sum())))
        wsum = g["_w"].sum()
        for col, src in (("mean_score", "total_score"), *((d, d) for d in dims)):
            num = (s[src] * s["_w"]).groupby([s["unit"], s["period"]]).sum()
            df[col] = (num / wsum.where(wsum > 0)).reindex(df.index)
        counts = pd.crosstab([s["unit"], s["period"]], s["rating"]).reindex(columns=list(RATINGS), fill_value=0)
        for r in RATINGS:
            df[f"n_{r}"] = counts[r].reindex(df.index).fillna(0).astype(int)
        df["share_excellent"] = df["n_excellent"] / df["n_rms"]
        parts.append(df.reset_index().assign(level=lv))
    out = pd.concat(parts, ignore_index=True)
    out["weighting"] = weight
    return out[["level", "unit", "period", "n_rms", "mean_score", *dims, *[f"n_{r}" for r in RATINGS],
                "share_excellent", "n_vetoed", "mean_bonus", "weighting"]]


def rollup_kpis(kpis: pd.DataFrame, rms: pd.DataFrame, level: str) -> pd.DataFrame:
    """Sum the additive KPIs (see ``KpiDef.additive``) per org unit and period."""
    add = [k for k, d in KPI_DEFINITIONS.items() if d.additive and k in kpis.columns]
    org = rms.set_index("rm_id")[level]
    return kpis.assign(**{level: kpis["rm_id"].map(org)}).groupby([level, "period"])[add].sum().reset_index()


def _prev_quarter(label: str) -> str:
    y, q = int(label[:4]), int(label[5])
    return f"{y - 1}Q4" if q == 1 else f"{y}Q{q - 1}"


def cycle_flags(scores: pd.DataFrame) -> pd.DataFrame:
    """Quarterly review flags per RM (docs/domain.md §3 "Cycle").

    ``two_consecutive_excellent``: rated excellent in this and the immediately preceding quarter
    (priority for high-end client resources). ``needs_improvement``: rated needs improvement
    (mandatory training). Periods must be quarter labels 'YYYYQn'.
    """
    bad = ~scores["period"].astype(str).str.fullmatch(r"\d{4}Q[1-4]")
    if bad.any():
        raise DataError(f"cycle_flags needs quarter labels 'YYYYQn'; {int(bad.sum())} rows are not, e.g. "
                         f"{scores.loc[bad, 'period'].head(3).tolist()}")
    s = scores[["rm_id", "period", "rating"]].copy()
    prev = s.set_index(["rm_id", "period"])["rating"]
    s["previous_rating"] = [prev.get((r, _prev_quarter(p))) for r, p in zip(s["rm_id"], s["period"])]
    s["two_consecutive_excellent"] = (s["rating"] == "excellent") & (s["previous_rating"] == "excellent")
    s["needs_improvement"] = s["rating"] == "needs_improvement"
    return s.sort_values(["rm_id", "period"]).reset_index(drop=True)
