"""The service-priority list per RM: one row per current customer, ranked by one rule.

**Ranking rule** (within each RM): customers with an *overdue* action first (due on or before
``as_of``: overdue, or "at once" by the rules below), then by **value at stake** = P(churn within
the horizon) x value (``value_basis``: CLV in the bank's income by default, or AUM), then by
P(churn), then customer_id. Rank 1..n.

**Next action and due date** — the earliest due among the rules that apply (every threshold is an
:class:`ActionRules` parameter; the defaults are the seeds' figures, docs/domain.md §1-2, §5):

- suitability breach on record -> "review suitability of holdings", due ``as_of`` (at once);
- decline-warning stage or an early warning -> "retention call", due at once (002: "at once");
- lost their RM, current assignment recent -> "introduce yourself as the new RM", due
  ``handover_days`` after the assignment started;
- a product matures -> "renewal contact", due ``maturity_lead_days`` before maturity (002);
- contact rhythm (needs the ``interactions`` table): due last contact + ``contact_days[stage]``
  (new: 72 hours, growth: monthly, mature: quarterly);
- P(churn) >= ``high_churn`` -> "retention call", due ``as_of + urgent_days``;
- otherwise "regular review", due ``as_of + contact_days[stage]``.

**Reasons** are plain words (warnings, RM lost, churn risk and its drivers, low health and its
weakest component, AUM fall, overdue contact, maturity, suitability); never empty: a customer with
nothing else is listed with its value at stake.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from rmanalytics.book.health import COMPONENTS
from rmanalytics.keys import first_per_key, left_join, sort_rows


class ActionRules(BaseModel):
    """Thresholds of the next-action rules (defaults from the seeds where they give one)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    high_churn: float = Field(0.15, gt=0, le=1, description="P(churn within horizon) that calls for a retention call.")
    urgent_days: int = Field(7, ge=0, description="Days to make a retention call for high churn risk.")
    handover_days: int = Field(14, ge=0, description="Days for a new RM to introduce themselves after a handover.")
    maturity_lead_days: int = Field(30, ge=0, description="Renewal contact this many days before maturity (002).")
    contact_days: dict[str, int] = Field(
        default_factory=lambda: {"new": 3, "growth": 30, "mature": 90, "decline_warning": 0, "other": 90},
        description="Contact rhythm in days by lifecycle stage (002: 72 h, monthly, quarterly, at once).")
    aum_drop: float = Field(0.1, gt=0, lt=1, description="3-month AUM fall that is named as a reason.")
    low_health: float = Field(40.0, ge=0, le=100, description="Health below this is named as a reason.")


def _days(rules: ActionRules, stage: pd.Series) -> pd.Series:
    d = rules.contact_days
    days = {s: d.get(s, d.get("other", 90)) for s in pd.unique(stage.to_numpy(dtype=object))}  # once per stage
    return stage.map(days).astype(float)  # a dict lookup in pandas, not a Python call per customer


def next_actions(cust: pd.DataFrame, as_of, *, rules: ActionRules | None = None, horizon_days: int = 180,
                 currency: str = "CNY") -> pd.DataFrame:
    """Reasons, next action, due date and overdue flag per customer (see module docstring).

    ``cust`` (one row per customer) may hold: ``lifecycle_stage``, ``warning_detail``, ``rm_left``,
    ``assignment_start``, ``p_churn``, ``risk_drivers``, ``health``, ``hc_<component>``,
    ``aum_change_3m``, ``last_contact`` (date), ``next_maturity`` (date), ``suitability_breach``
    (bool), ``value_at_stake``. Missing columns switch their rule off.
    """
    r = rules or ActionRules()
    as_of = pd.Timestamp(as_of).normalize()
    n = len(cust)
    get = lambda c, default=np.nan: cust[c] if c in cust.columns else pd.Series(default, index=cust.index)  # noqa: E731
    stage = get("lifecycle_stage", "other").fillna("other")
    cands: list[tuple[pd.Series, str]] = []  # (due date or NaT, action)
    NaT = pd.Series(pd.NaT, index=cust.index, dtype="datetime64[ns]")
    breach = get("suitability_breach", False).fillna(False).astype(bool)
    cands.append((NaT.where(~breach, as_of), "review suitability of holdings"))
    warn = get("warning_detail", None).notna() | (stage == "decline_warning")
    cands.append((NaT.where(~warn, as_of), "retention call"))
    start = pd.to_datetime(get("assignment_start", pd.NaT))
    handover = (get("rm_left", 0).fillna(0) > 0) & start.notna() & (start > as_of - pd.Timedelta(days=90))
    cands.append((NaT.where(~handover, start + pd.Timedelta(days=r.handover_days)), "introduce yourself as the new RM"))
    mat = pd.to_datetime(get("next_maturity", pd.NaT))
    cands.append((mat - pd.Timedelta(days=r.maturity_lead_days), "renewal contact before maturity"))
    contact_days = _days(r, stage)
    rhythm = pd.to_timedelta(contact_days, unit="D")
    last = pd.to_datetime(get("last_contact", pd.NaT))
    cands.append((last + rhythm, "scheduled contact"))
    high = get("p_churn", 0.0).fillna(0) >= r.high_churn
    cands.append((NaT.where(~high, as_of + pd.Timedelta(days=r.urgent_days)), "retention call"))
    cands.append((pd.Series(as_of, index=cust.index) + rhythm, "regular review"))
    due = pd.concat([c for c, _ in cands], axis=1)
    due.columns = range(len(cands))
    first = due.fillna(pd.Timestamp.max).to_numpy().argmin(axis=1)
    actions = np.array([a for _, a in cands], dtype=object)[first]
    due_date = pd.Series(due.to_numpy()[np.arange(n), first], index=cust.index)

    reasons = np.full(n, None, dtype=object)  # per row: its reasons so far, joined by "; " (None: none yet)

    def add(mask: pd.Series, texts) -> None:
        """Append a reason to the rows of ``mask``: one text, or ``texts(rows)`` -> one text per row
        (built for those rows only); empty texts add nothing. Whole arrays at a time (object-array
        concatenation), not a Python list per customer: millions of customers."""
        rows = np.flatnonzero(mask.to_numpy())
        if not len(rows) or (isinstance(texts, str) and not texts):
            return
        t = np.full(len(rows), texts, dtype=object) if isinstance(texts, str) else np.asarray(list(texts(rows)), dtype=object)
        ok = t.astype(bool)  # None and "" add nothing
        rows, t = rows[ok], t[ok]
        cur = reasons[rows]
        more = np.not_equal(cur, None)
        reasons[rows[~more]] = t[~more]
        reasons[rows[more]] = cur[more] + "; " + t[more]

    add(breach, "holds a product above their risk tolerance (suitability)")
    wd = get("warning_detail", None)
    add(wd.notna(), lambda rows: wd.astype(object).to_numpy()[rows])
    add((stage == "decline_warning") & wd.isna(), "in the decline-warning stage")
    add(get("rm_left", 0).fillna(0) > 0, "lost their RM (the previous RM left the bank)")
    p = get("p_churn").astype(float)
    drivers = get("risk_drivers", "")
    add(p >= r.high_churn, lambda rows: [
        f"churn risk {pi:.0%} within {horizon_days} days" + (f" (raised by {d})" if d else "")
        for pi, d in zip(p.fillna(0).to_numpy()[rows],
                         drivers.iloc[rows].fillna("").astype(str).to_numpy())])
    h = get("health").astype(float)
    comps = [f"hc_{c}" for c in COMPONENTS if f"hc_{c}" in cust.columns]

    def health_texts(rows: np.ndarray) -> list[str]:
        weakest = (cust[comps].iloc[rows].idxmin(axis=1, skipna=True).str.removeprefix("hc_").fillna("")
                   if comps else pd.Series("", index=rows)).to_numpy()
        return [f"health {hi:.0f}/100 (weakest: {w.replace('_', ' ')})" for hi, w in zip(h.to_numpy()[rows], weakest)]

    add(h < r.low_health, health_texts)
    ch = get("aum_change_3m").astype(float)
    add(ch <= -r.aum_drop, lambda rows: [f"AUM down {-c:.0%} in 3 months" for c in ch.to_numpy()[rows]])
    overdue_contact = (last + rhythm) < as_of
    add(overdue_contact, lambda rows: [  # a rhythm of 0 days (decline warning, 002): contact at once
        f"last contact {(as_of - lc).days} days ago ({f'due every {int(d)} days' if d else 'due at once in this stage'})"
        for lc, d in zip(last.iloc[rows], contact_days.iloc[rows])])
    soon = mat.notna() & (mat >= as_of) & (mat <= as_of + pd.Timedelta(days=r.maturity_lead_days * 2))
    add(soon, lambda rows: [f"a product matures on {m.date()}" for m in mat.iloc[rows]])
    vas = get("value_at_stake").astype(float).fillna(0)
    out = pd.DataFrame(index=cust.index)
    plain = np.flatnonzero(np.equal(reasons, None))  # no reason: the value at stake says why they are listed
    reasons[plain] = [f"value at stake {v:,.0f} {currency}" for v in vas.to_numpy()[plain].tolist()]
    out["reasons"] = reasons
    out["next_action"] = actions
    out["due_date"] = pd.to_datetime(due_date).dt.normalize()
    out["overdue"] = out["due_date"] <= as_of  # due today ("at once") or earlier: act now
    return out


def priority_list(book: pd.DataFrame, customers: pd.DataFrame, as_of, *, value_basis: str = "clv_income",
                  rules: ActionRules | None = None, horizon_days: int = 180, currency: str = "CNY") -> pd.DataFrame:
    """The ranked service-priority list of every RM (one computation for the whole book).

    Parameters
    ----------
    book : :func:`rmanalytics.book.current_book` (customer_id, rm_id, share, start_date, ...).
    customers : one row per customer with the per-customer results (segment, lifecycle_stage, tier,
        cell, aum, aum_change_3m, p_churn, p_alive, clv_income, health, health groups, hc_*,
        rm_left, risk_drivers, warning_detail, optional last_contact / next_maturity /
        suitability_breach).
    value_basis : column whose value is at stake (``clv_income``: the bank's income; ``aum``).

    Returns one row per (rm_id, customer): ``rm_id, rank, customer_id, share, ...customer columns...,
    value_at_stake, reasons, next_action, due_date, overdue``; sorted by rm_id, rank.
    """
    if value_basis not in customers.columns:
        raise ValueError(f"priority_list: value_basis {value_basis!r} is not a column of the customer frame")
    as_of = pd.Timestamp(as_of).normalize()
    # at 10M customers every copy of the book's rows is GBs: columns are added, rows taken once
    cust = first_per_key(customers)  # sorted unique ids: no hashing
    b = book[["rm_id", "customer_id", "share", "start_date"]].rename(columns={"start_date": "assignment_start"})
    b.index = pd.RangeIndex(len(b))
    rows = left_join(b, cust)
    rows["value_at_stake"] = rows["p_churn"].astype(float) * rows[value_basis].astype(float).fillna(0.0)
    acts = next_actions(rows, as_of, rules=rules, horizon_days=horizon_days, currency=currency)
    for c in acts.columns:
        rows[c] = acts[c].to_numpy()
    del acts
    rows = sort_rows(rows, ["rm_id", "overdue", "value_at_stake", "p_churn", "customer_id"],
                     [True, False, False, False, True])
    rows.index = pd.RangeIndex(len(rows))
    rows.insert(1, "rank", rows.groupby("rm_id").cumcount().to_numpy() + 1)
    rows.attrs.update(as_of=as_of.date().isoformat(), value_basis=value_basis, horizon_days=int(horizon_days))
    return rows  # rm_id, rank, customer_id, share, assignment_start, the customer columns, the actions
