""""My scorecard" per RM and the branch review per branch, from one computation for all of them.

- :func:`my_scorecard`: per RM and KPI of the review period: actual, target, points and the gap
  (positive = ahead of target, in the KPI's unit, sign turned for lower-is-better KPIs), the
  rating, the cycle flags (two consecutive excellent quarters; needs improvement = mandatory
  training) and the milestone gap of the month (cumulative milestone - cumulative actual of the
  decomposed annual target, :func:`rmanalytics.kpi.milestone_progress`).
- :func:`branch_review`: the team table (RM x KPIs x rating x last-4-period score trend x value at
  risk x contact coverage), the branch's own targets against results, and peer branches.
  Branch targets come from ``kpi_targets`` rows at the branch level when present; otherwise they
  are the sum of its RMs' targets for additive KPIs (``target_source`` says which).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def my_scorecard(points: pd.DataFrame, scores: pd.DataFrame, period: str, *, flags: pd.DataFrame | None = None,
                 progress: pd.DataFrame | None = None, month: str | None = None,
                 directions: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (rm_id, KPI) of ``period`` (see module docstring).

    ``points`` from :func:`rmanalytics.kpi.kpi_points`, ``scores`` from :func:`rmanalytics.kpi.scorecard`,
    ``flags`` from :func:`rmanalytics.kpi.cycle_flags`, ``progress`` from
    :func:`rmanalytics.kpi.milestone_progress` (``unit_id, month, kpi?, gap``); ``directions``
    KPI -> "higher"/"lower" (default higher).
    """
    p = points[points["period"] == period].copy()
    if p.empty:
        raise ValueError(f"my_scorecard: no KPI points for period {period!r}; periods: {sorted(points['period'].unique())[-5:]}")
    d = directions or {}
    sign = p["kpi"].map(lambda k: -1.0 if d.get(k) == "lower" else 1.0)
    p["gap"] = sign * (p["actual"] - p["target"])
    s = scores[scores["period"] == period].set_index("rm_id")
    p["total_score"] = p["rm_id"].map(s["total_score"])
    p["rating"] = p["rm_id"].map(s["rating"])
    p["veto_reason"] = p["rm_id"].map(s["veto_reason"]) if "veto_reason" in s.columns else None
    if flags is not None and not flags.empty:
        f = flags[flags["period"] == period].set_index("rm_id")
        p["two_consecutive_excellent"] = p["rm_id"].map(f["two_consecutive_excellent"]).fillna(False).astype(bool)
        p["mandatory_training"] = p["rm_id"].map(f["needs_improvement"]).fillna(False).astype(bool)
    if progress is not None and not progress.empty:
        m = month or progress["month"].max()
        pr = progress[progress["month"] == m].drop_duplicates("unit_id").set_index("unit_id")
        p["milestone_month"] = m
        p["milestone_gap"] = p["rm_id"].map(pr["gap"])
    cols = ["rm_id", "period", "dimension", "kpi", "actual", "target", "points", "gap", "weight", "total_score",
            "rating", "veto_reason", "two_consecutive_excellent", "mandatory_training", "milestone_month", "milestone_gap"]
    return p[[c for c in cols if c in p.columns]].sort_values(["rm_id", "dimension", "kpi"]).reset_index(drop=True)


def _trend(scores: pd.DataFrame, period: str, n: int = 4) -> pd.DataFrame:
    periods = sorted(p for p in scores["period"].unique() if p <= period)[-n:]
    t = scores[scores["period"].isin(periods)].pivot_table(index="rm_id", columns="period", values="total_score")
    t = t.reindex(columns=periods)
    t.columns = [f"score_{c}" for c in t.columns]
    return t


def branch_review(priority: pd.DataFrame, scores: pd.DataFrame, rms: pd.DataFrame, period: str, *, as_of,
                  level: str = "sub_branch", kpis: pd.DataFrame | None = None, targets: pd.DataFrame | None = None,
                  unassigned: pd.DataFrame | None = None, coverage_days: int = 90,
                  additive_kpis: tuple[str, ...] = ("fee_income", "new_customers", "new_effective_customers")
                  ) -> dict[str, pd.DataFrame]:
    """Branch review tables for every branch at ``level`` (one computation; packs split by branch).

    Returns ``{"team", "targets", "peers"}``:

    - ``team``: one row per RM employed at ``as_of``: branch, rm_id, rating and total score of
      ``period``, ``score_<period>`` for the last 4 periods, the period's KPI values (``kpis``),
      customers, value_at_risk (sum of value at stake, currency), overdue_actions and
      contact_coverage (share of the RM's customers contacted within their rhythm when the
      priority list has ``last_contact``; else the period's ``visit_coverage`` KPI).
    - ``targets``: branch, kpi, actual, target, attainment, target_source.
    - ``peers``: one row per branch: RMs, customers, mean score, share excellent, value at risk,
      unassigned customers, rank by mean score (1 = best).
    """
    as_of = pd.Timestamp(as_of)
    org = rms.set_index("rm_id")
    employed = org[org["exit_date"].isna() | (org["exit_date"] > as_of)]
    team = pd.DataFrame({"rm_id": employed.index, "branch": employed[level].to_numpy()})
    s = scores[scores["period"] == period].set_index("rm_id")
    team["rating"] = team["rm_id"].map(s["rating"])
    team["total_score"] = team["rm_id"].map(s["total_score"])
    team = team.merge(_trend(scores, period), left_on="rm_id", right_index=True, how="left")
    kpi_cols: list[str] = []
    if kpis is not None:
        k = kpis[kpis["period"] == period].set_index("rm_id")
        kpi_cols = [c for c in ("fee_income", "aum", "aum_growth", "new_customers", "churn_rate", "nps",
                                "visit_coverage") if c in k.columns]
        for c in kpi_cols:
            team[c] = team["rm_id"].map(k[c])
    g = priority.groupby("rm_id")
    team["customers"] = team["rm_id"].map(g.size()).fillna(0).astype(int)
    team["value_at_risk"] = team["rm_id"].map(g["value_at_stake"].sum()).fillna(0.0)
    team["overdue_actions"] = team["rm_id"].map(g["overdue"].sum()).fillna(0).astype(int)
    if "last_contact" in priority.columns:
        ok = priority["last_contact"].notna() & (pd.to_datetime(priority["last_contact"])
                                                 > as_of - pd.Timedelta(days=coverage_days))
        team["contact_coverage"] = team["rm_id"].map(ok.groupby(priority["rm_id"]).mean())
        team["contact_coverage_source"] = f"customers contacted in the last {coverage_days} days"
    elif "visit_coverage" in team.columns:
        team["contact_coverage"] = team["visit_coverage"]
        team["contact_coverage_source"] = "visit_coverage KPI (RM activity)"
    team = team.sort_values(["branch", "total_score"], ascending=[True, False]).reset_index(drop=True)

    rows = []
    if kpis is not None and targets is not None:
        t = targets[targets["period"] == period]
        k = kpis[kpis["period"] == period].assign(branch=lambda d: d["rm_id"].map(org[level]))
        own = t[t["unit_level"] == level] if "unit_level" in t.columns else t.iloc[0:0]
        rm_t = t[t["unit_level"] == "rm"] if "unit_level" in t.columns else t
        rm_t = rm_t.assign(branch=rm_t["unit_id"].map(org[level]))
        for kpi in [c for c in additive_kpis if c in k.columns and c in set(t["kpi"])]:
            actual = k.groupby("branch")[kpi].sum()
            o = own[own["kpi"] == kpi].set_index("unit_id")["target"]
            summed = rm_t[rm_t["kpi"] == kpi].groupby("branch")["target"].sum()
            for b in actual.index:
                tg, src = (o[b], "kpi_targets (branch)") if b in o.index else (summed.get(b, np.nan), "sum of RM targets")
                rows.append({"branch": b, "kpi": kpi, "actual": float(actual[b]), "target": float(tg),
                             "attainment": float(actual[b] / tg) if tg else np.nan, "target_source": src})
    tgt = pd.DataFrame(rows, columns=["branch", "kpi", "actual", "target", "attainment", "target_source"])

    peers = team.groupby("branch").agg(rms=("rm_id", "size"), customers=("customers", "sum"),
                                       mean_score=("total_score", "mean"),
                                       share_excellent=("rating", lambda r: float((r == "excellent").mean())),
                                       value_at_risk=("value_at_risk", "sum"))
    n_un = unassigned.groupby("branch").size() if unassigned is not None and len(unassigned) else pd.Series(dtype=int)
    peers["unassigned"] = n_un.reindex(peers.index).fillna(0).astype(int)
    peers["rank"] = peers["mean_score"].rank(ascending=False, method="min").astype("Int64")
    peers = peers.reset_index().sort_values("rank").reset_index(drop=True)
    return {"team": team, "targets": tgt, "peers": peers}
