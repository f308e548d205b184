"""Branch scorecards: every org level scored against its own targets, and RM contributions.

A branch is judged on its own ``kpi_targets`` (``unit_level`` = outlet, sub_branch, tier2_branch
or tier1_branch), with the same scorecard config as its RMs (docs/domain.md §3: "parameters set by head
office or branch ... roll-up by institution level"), not only on the average of its RMs' scores.

- :func:`unit_kpi_table`: KPIs per org unit and period. The RM x month measures
  (:func:`rmanalytics.kpi.rm_month_measures`, credited by share) are summed per unit and month,
  and the unit's KPIs are derived from those sums exactly as an RM's are (:func:`kpi_table`): a
  unit's churn rate is its churned customers over its book at period start, not a mean of RM
  rates. Activity means (digital usage, training score, alert response) are means over RMs.
- :func:`unit_targets`: the unit's own ``kpi_targets`` rows; where a unit has none for a KPI, the
  sum of its RMs' targets for additive KPIs (e.g. fee income) or their mean otherwise (e.g.
  aum_growth), marked in ``target_source`` so the report says which was used. ``fallback="none"``
  uses only the unit's own rows (then the config's standard target or an error).
- :func:`unit_scorecard`: :func:`rmanalytics.kpi.scorecard` at a unit level.
- :func:`rm_contributions`: how a unit's rolled-up score and additive KPIs split into its RMs'
  contributions (weights as in :func:`rmanalytics.kpi.rollup`); contributions add up to the unit.
"""

from __future__ import annotations

import pandas as pd

from rmanalytics.kpi.measures import KPI_DEFINITIONS, kpi_table, period_label
from rmanalytics.kpi.scorecard import ORG_LEVELS, ScorecardConfig, load_scorecard_config, rollup_weights, scorecard

MEANS = ("digital_usage", "training_score", "alert_response_hours")


def _org(rms: pd.DataFrame, level: str) -> pd.Series:
    if level not in ORG_LEVELS:
        raise ValueError(f"level must be one of {ORG_LEVELS}, got {level!r}")
    if level not in rms.columns:
        raise ValueError(f"rms table lacks the hierarchy column {level!r}")
    return rms.set_index("rm_id")[level]


def unit_kpi_table(monthly: pd.DataFrame, rms: pd.DataFrame, level: str, *, freq: str = "quarter") -> pd.DataFrame:
    """KPIs per org unit of ``level`` and period, from the RM x month measures (see module doc).

    Returns the columns of :func:`kpi_table` with the unit id in ``unit`` (and in ``rm_id``, for
    the scoring functions) plus ``level`` and ``n_rms`` (RMs with a measure in the period).
    """
    org = _org(rms, level)
    unknown = sorted(set(monthly["rm_id"]) - set(org.index))
    if unknown:
        raise ValueError(f"unit_kpi_table: {len(unknown)} rm_id not in rms, e.g. {unknown[:3]}")
    m = monthly.assign(unit=monthly["rm_id"].map(org))
    num = [c for c in m.columns if c not in ("rm_id", "unit", "month_start") and pd.api.types.is_numeric_dtype(m[c])]
    sums = [c for c in num if c not in MEANS]
    g = m.groupby(["unit", "month_start"])
    u = g[sums].sum(min_count=1)
    u[[c for c in MEANS if c in m.columns]] = g[[c for c in MEANS if c in m.columns]].mean()
    u = u.reset_index().rename(columns={"unit": "rm_id"})
    out = kpi_table(monthly=u, freq=freq)
    counts = (m.assign(period=period_label(m["month_start"], freq).to_numpy())
              .groupby(["unit", "period"])["rm_id"].nunique())
    out["n_rms"] = [int(counts.get((r, p), 0)) for r, p in zip(out["rm_id"], out["period"])]
    out.insert(0, "unit", out["rm_id"])
    out.insert(1, "level", level)
    return out


def unit_targets(targets: pd.DataFrame, rms: pd.DataFrame, level: str, *, fallback: str = "from_rms") -> pd.DataFrame:
    """Targets ``unit_id, unit_level, period, kpi, target, target_source`` of the units of ``level``.

    ``target_source``: ``"unit"`` (the unit's own row), ``"sum_of_rm_targets"`` (additive KPIs) or
    ``"mean_of_rm_targets"`` (other KPIs) when ``fallback="from_rms"`` and the unit has none.
    """
    if fallback not in ("from_rms", "none"):
        raise ValueError(f"fallback must be 'from_rms' or 'none', got {fallback!r}")
    own = targets[targets["unit_level"] == level][["unit_id", "unit_level", "period", "kpi", "target"]]
    own = own.assign(target_source="unit")
    if fallback == "none":
        return own.reset_index(drop=True)
    org = _org(rms, level)
    rm_t = targets[targets["unit_level"] == "rm"].assign(unit_id=lambda d: d["unit_id"].map(org))
    rm_t = rm_t[rm_t["unit_id"].notna()]
    rows = []
    for kpi, part in rm_t.groupby("kpi"):
        additive = KPI_DEFINITIONS.get(kpi) is not None and KPI_DEFINITIONS[kpi].additive
        agg = part.groupby(["unit_id", "period"])["target"].agg("sum" if additive else "mean").reset_index()
        rows.append(agg.assign(kpi=kpi, unit_level=level,
                               target_source="sum_of_rm_targets" if additive else "mean_of_rm_targets"))
    derived = pd.concat(rows, ignore_index=True) if rows else own.iloc[:0]
    key = ["unit_id", "period", "kpi"]
    derived = derived.merge(own[key], on=key, how="left", indicator=True)
    derived = derived[derived["_merge"] == "left_only"].drop(columns="_merge")
    out = pd.concat([own, derived[own.columns]], ignore_index=True)
    return out.sort_values(key).reset_index(drop=True)


def unit_scorecard(unit_kpis: pd.DataFrame, targets: pd.DataFrame, config: ScorecardConfig | dict | str,
                   level: str) -> pd.DataFrame:
    """Score the units of ``level`` against their own targets (:func:`unit_targets` output or raw
    ``kpi_targets``) with the RMs' scorecard ``config``.

    Returns the columns of :func:`scorecard` with ``unit`` and ``level`` first (``rm_id`` holds
    the unit id), ranks within the level and period, and ``target_sources`` (the set of target
    origins used for the unit-period, e.g. ``"unit"`` or ``"sum_of_rm_targets"``).

    Veto rules apply to the unit's summed KPIs: a major compliance breach by any of its RMs caps
    the unit's rating too (the branch answers for its RMs' compliance). Pass a config without
    ``veto`` to score units without it.
    """
    if not isinstance(config, ScorecardConfig):
        config = load_scorecard_config(config)
    t = targets[targets["unit_level"] == level]
    out = scorecard(unit_kpis, t[["unit_id", "unit_level", "period", "kpi", "target"]], config, unit_level=level)
    if "target_source" in t.columns:
        src = (t[t["kpi"].isin(config.kpis)].groupby(["unit_id", "period"])["target_source"]
               .agg(lambda x: ", ".join(sorted(set(x)))))
        out["target_sources"] = [src.get((u, p), "config") for u, p in zip(out["rm_id"], out["period"])]
    out.insert(0, "unit", out["rm_id"])
    out.insert(1, "level", level)
    return out


def rm_contributions(scores: pd.DataFrame, rms: pd.DataFrame, level: str, *, weight: str = "unweighted",
                     kpis: pd.DataFrame | None = None, volume: str = "aum",
                     kpi_columns: tuple[str, ...] = ("fee_income",)) -> pd.DataFrame:
    """Each RM's contribution to its unit's rolled-up score and additive KPIs, per period.

    ``contribution = weight_share x total_score`` (points): the contributions of a unit's RMs sum
    to the unit's ``mean_score`` of :func:`rmanalytics.kpi.rollup` with the same ``weight``.
    For each additive KPI in ``kpi_columns`` (from ``kpis``): ``<kpi>`` (the RM's credited value)
    and ``<kpi>_share`` (its share of the unit total; shares sum to 1 when the total is not 0).
    """
    org = _org(rms, level)
    w = rollup_weights(scores, weight, kpis, volume)
    out = scores[["rm_id", "period", "total_score", "rating"]].assign(unit=scores["rm_id"].map(org), weight=w)
    wsum = out.groupby(["unit", "period"])["weight"].transform("sum")
    out["weight_share"] = out["weight"] / wsum.where(wsum > 0)
    out["contribution"] = out["weight_share"] * out["total_score"]
    if kpis is not None:
        for c in kpi_columns:
            if c not in kpis.columns:
                raise ValueError(f"kpis has no column {c!r}")
            if not (c in KPI_DEFINITIONS and KPI_DEFINITIONS[c].additive):
                raise ValueError(f"{c!r} is not an additive KPI: it does not split into RM contributions")
            val = kpis.set_index(["rm_id", "period"])[c]
            out[c] = val.reindex(pd.MultiIndex.from_frame(out[["rm_id", "period"]])).to_numpy()
            tot = out.groupby(["unit", "period"])[c].transform("sum")
            out[f"{c}_share"] = out[c] / tot.where(tot != 0)
    out.insert(0, "level", level)
    cols = ["level", "unit", "period", "rm_id"] + [c for c in out.columns if c not in ("level", "unit", "period",
                                                                                        "rm_id")]
    return out[cols].sort_values(["unit", "period", "contribution"], ascending=[True, True, False]).reset_index(drop=True)
