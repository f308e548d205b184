"""Service rules of the seeds that need customer-level data (docs/domain.md §1, §5; seeds 000, 002, 004).

Every threshold is a parameter whose default is the seed's value:

- suitability (004 ch.2/5, 002 §三(六)): a holding whose product ``risk_level`` exceeds the
  customer's ``risk_level`` at purchase is a breach; a gap of ``major_risk_gap`` (2) levels or more
  is a *major* breach (our choice: the seeds call any breach a red line and name "high-risk
  product to a conservative customer" as the case to forbid);
- first contact within ``first_contact_hours`` (72) of opening (002 §三(二)1), measured from
  the start of ``open_date``; a contact exactly at 72 h is on time;
- contact rhythm by lifecycle stage (002 §三(二)1): growth monthly (30 days), mature quarterly
  (91 days), decline warning at once (0 days), new customers monthly after the first contact;
- high-net-worth visit coverage (001 §二(一)): customers with AUM >= ``hnw_aum`` need
  ``visits_per_year`` visits (visits and meetings); the seeds give no figures, the defaults are
  1,000,000 CNY and 4 a year (the quarterly rhythm of mature customers);
- renewal contact ``lead_months`` (1) month before a product matures (002 §三 "一键续贷");
- complaint handling (004 §3.3): first response within ``response_hours`` (48), and a share
  ``target_share`` (0.8) resolved within ``resolve_workdays`` (3) working days. Working days are
  Monday-Friday minus ``holidays``, counted with ``numpy.busday_count`` from the day the complaint
  was opened to the day it was resolved (opened Friday, resolved Wednesday = 3 working days);
- satisfaction per customer (002 §三(四)1): complaints, NPS, surveys, logins.

Timestamps are tz-naive; hours are calendar hours; "RM at a date" is the assignment covering that
day with the largest share (ties: smallest rm_id). Functions take the contract tables (dict of
pandas frames) and return DataFrames; they raise :class:`rmanalytics.errors.DataError` naming the
missing table. The per-event tables (``interactions``, ``feedback``, ``holdings``, ``balances``)
may also be Parquet/CSV paths (``load_tables(..., lazy=...)``): they are filtered and aggregated
in DuckDB (:func:`rmanalytics.engine.run_sql`) and only per-customer rows, the holdings in
question and the complaints reach pandas; frames go through the same SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.assignments import primary_rm_at
from rmanalytics.contract import VISIT_KINDS
from rmanalytics.engine import run_sql
from rmanalytics.errors import DataError, rule_message
from rmanalytics.keys import isin_keys, map_keys, positions

DEFAULT_STAGE_INTERVALS: dict[str, int] = {"new": 30, "growth": 30, "mature": 91, "decline_warning": 0}


def _need(tables: Mapping[str, Any], *names: str, what: str) -> None:
    missing = [n for n in names if n not in tables or tables[n] is None]
    if missing:
        raise DataError(rule_message(f"tables {missing}", f"{what} needs the optional relationship table(s)",
                                     len(missing), missing, "load a dataset with them or skip this rule"))


def _ts(value: Any) -> str:
    """A SQL timestamp literal."""
    return f"TIMESTAMP '{pd.Timestamp(value).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _sql(sql: str, **inputs: Any) -> pd.DataFrame:
    """``sql`` on the inputs (frames or Parquet/CSV paths) in DuckDB."""
    return run_sql(sql, inputs)


def _extreme(src: Any, col: str, fn: str = "MAX") -> pd.Timestamp:
    """MIN/MAX of a timestamp column of a frame or path (NaT when empty)."""
    if isinstance(src, pd.DataFrame):
        s = pd.to_datetime(src[col])
        return s.max() if fn == "MAX" else s.min()
    v = _sql(f'SELECT {fn}("{col}") AS v FROM t', t=src)["v"].iloc[0]
    return pd.Timestamp(v) if pd.notna(v) else pd.NaT


def _as_of(tables: Mapping[str, Any], as_of: Any) -> pd.Timestamp:
    """``as_of`` or, by default, the last day with a transaction / interaction / feedback."""
    if as_of is not None:
        return pd.Timestamp(as_of)
    cands = []
    for name, col in (("transactions", "date"), ("interactions", "timestamp"), ("feedback", "opened_at")):
        df = tables.get(name)
        if df is not None:
            last = _extreme(df, col)
            if pd.notna(last):
                cands.append(last.normalize())
    if not cands:
        raise DataError("service rules: as_of is None and no dated table to default it from; give as_of")
    return max(cands)


#: The primary RM (largest share, ties smallest rm_id) on a day: :func:`rmanalytics.assignments.primary_rm_at`.
rm_at = primary_rm_at


# --------------------------------------------------------------------------------------------
# suitability
# --------------------------------------------------------------------------------------------
def suitability_breaches(tables: Mapping[str, pd.DataFrame], as_of: Any = None, *,
                         major_risk_gap: int = 2) -> pd.DataFrame:
    """One row per holding whose product risk level exceeds the customer's risk level at purchase.

    Parameters
    ----------
    tables : needs customers, assignments, products, holdings.
    as_of : only holdings bought on or before this day (default: all).
    major_risk_gap : a breach with ``product_risk_level - customer_risk_level >= major_risk_gap``
        is major (feeds the one-vote veto).

    Returns
    -------
    customer_id, product_id, customer_risk_level, product_risk_level, start_date, rm_id (primary
    RM on start_date), risk_gap, major (bool); sorted by customer and date.
    """
    _need(tables, "customers", "assignments", "products", "holdings", what="suitability_breaches")
    when = "" if as_of is None else f" AND h.start_date <= {_ts(as_of)}"
    # the join and the breach test run in the engine: only breaching holdings reach pandas
    b = _sql(f"""
SELECT h.customer_id AS customer_id, h.product_id AS product_id, c.risk_level AS customer_risk_level,
       p.risk_level AS product_risk_level, h.start_date AS start_date
FROM holdings h JOIN products p ON h.product_id = p.product_id JOIN customers c ON h.customer_id = c.customer_id
WHERE p.risk_level > c.risk_level{when}
ORDER BY customer_id, start_date, product_id""", holdings=tables["holdings"],
             products=tables["products"][["product_id", "risk_level"]],
             customers=tables["customers"][["customer_id", "risk_level"]])
    b["rm_id"] = rm_at(tables["assignments"], b, "start_date")
    b["risk_gap"] = (b["product_risk_level"] - b["customer_risk_level"]).astype(int)
    b["major"] = b["risk_gap"] >= int(major_risk_gap)
    cols = ["customer_id", "product_id", "customer_risk_level", "product_risk_level", "start_date", "rm_id",
            "risk_gap", "major"]
    return b[cols].sort_values(["customer_id", "start_date", "product_id"]).reset_index(drop=True)


def holdings_bought(tables: Mapping[str, Any], as_of: Any = None) -> int:
    """Number of holdings bought on or before ``as_of`` (all without it): the base of the breach rate."""
    when = "" if as_of is None else f" WHERE start_date <= {_ts(as_of)}"
    return int(_sql(f"SELECT COUNT(*) AS n FROM holdings{when}", holdings=tables["holdings"])["n"].iloc[0])


# --------------------------------------------------------------------------------------------
# contacts
# --------------------------------------------------------------------------------------------
def last_contacts(interactions: Any, as_of: pd.Timestamp, customers: Any = None) -> pd.Series:
    """customer_id -> time of the last interaction before the end of the ``as_of`` day.

    ``customers``: only these customer ids (a sequence; the engine keeps only their rows before
    grouping, the same values for them as without)."""
    if customers is None:
        df = _sql(f"""SELECT customer_id, MAX("timestamp") AS last_contact FROM interactions
WHERE "timestamp" < {_ts(as_of + pd.Timedelta(days=1))} GROUP BY customer_id ORDER BY customer_id""",
                  interactions=interactions)
    else:
        keys = pd.DataFrame({"customer_id": pd.Series(customers).drop_duplicates().to_numpy()})
        if keys.empty:
            return pd.Series([], index=pd.Index([], name="customer_id"), name="last_contact",
                             dtype="datetime64[ns]")
        df = _sql(f"""SELECT customer_id, MAX("timestamp") AS last_contact FROM interactions
WHERE "timestamp" < {_ts(as_of + pd.Timedelta(days=1))} AND customer_id IN (SELECT customer_id FROM keys)
GROUP BY customer_id ORDER BY customer_id""", interactions=interactions, keys=keys)
    return df.set_index("customer_id")["last_contact"]


def first_contacts(interactions: Any, opened: pd.DataFrame, until: pd.Timestamp) -> pd.Series:
    """customer_id -> first interaction on or after the customer's ``open_date`` and up to ``until``,
    for the customers of ``opened`` (customer_id, open_date)."""
    df = _sql(f"""SELECT i.customer_id AS customer_id, MIN(i."timestamp") AS first_contact_at
FROM interactions i JOIN opened o ON i.customer_id = o.customer_id
WHERE i."timestamp" >= o.open_date AND i."timestamp" <= {_ts(until)}
GROUP BY i.customer_id ORDER BY customer_id""", interactions=interactions, opened=opened[["customer_id", "open_date"]])
    return df.set_index("customer_id")["first_contact_at"]


def first_contact_compliance(tables: Mapping[str, pd.DataFrame], *, first_contact_hours: float = 72.0,
                             since: Any = None, as_of: Any = None) -> pd.DataFrame:
    """First-contact compliance of customers opened in ``[since, as_of]``.

    ``since`` defaults to the first day of the interactions table (customers opened before the
    contact records start cannot be judged). Hours are counted from the start of ``open_date``;
    a contact at exactly ``first_contact_hours`` is on time.

    Returns
    -------
    customer_id, open_date, rm_id (primary at opening), first_contact_at, hours_to_first_contact,
    status: ``on_time``, ``late``, ``missed`` (no contact and the deadline has passed) or
    ``pending`` (no contact yet, deadline after ``as_of``); ``compliant`` (bool, pending = False).
    """
    _need(tables, "customers", "assignments", "interactions", what="first_contact_compliance")
    it = tables["interactions"]
    as_of = _as_of(tables, as_of)
    since = pd.Timestamp(since) if since is not None else _extreme(it, "timestamp", "MIN").normalize()
    c = tables["customers"]
    c = c[(c["open_date"] >= since) & (c["open_date"] <= as_of)][["customer_id", "open_date"]].copy()
    c["rm_id"] = rm_at(tables["assignments"], c, "open_date")
    first = first_contacts(it, c, as_of + pd.Timedelta(days=1))
    c["first_contact_at"] = map_keys(c["customer_id"], first)
    c["hours_to_first_contact"] = (c["first_contact_at"] - c["open_date"]).dt.total_seconds() / 3600.0
    deadline = c["open_date"] + pd.Timedelta(hours=float(first_contact_hours))
    on_time = c["hours_to_first_contact"] <= float(first_contact_hours)
    none = c["first_contact_at"].isna()
    c["status"] = np.select([on_time, ~none, deadline < as_of + pd.Timedelta(days=1)],
                            ["on_time", "late", "missed"], "pending")
    c["compliant"] = c["status"] == "on_time"
    return c.sort_values("customer_id").reset_index(drop=True)


def contact_rhythm(tables: Mapping[str, pd.DataFrame], stages: pd.DataFrame, *, as_of: Any = None,
                   intervals_days: Mapping[str, int] | None = None,
                   stage_col: str = "lifecycle_stage") -> pd.DataFrame:
    """Contact-rhythm compliance by lifecycle stage on ``as_of``.

    Parameters
    ----------
    stages : customer_id and ``stage_col`` (e.g. :func:`rmanalytics.rfm.lifecycle_stages`).
    intervals_days : stage -> days allowed between contacts (default
        :data:`DEFAULT_STAGE_INTERVALS`: new and growth 30, mature 91, decline_warning 0 = at once).
        Customers of a stage not in the mapping get no due date.

    Customers closed on or before ``as_of`` are left out.

    Returns
    -------
    customer_id, stage, rm_id (primary on as_of), last_contact (timestamp, NaT if none),
    interval_days, next_due (date: last contact day, or max(open_date, first record day) when
    never contacted, + interval), overdue_days (days past next_due, 0 if not due), overdue (bool).
    """
    _need(tables, "customers", "assignments", "interactions", what="contact_rhythm")
    iv = dict(DEFAULT_STAGE_INTERVALS if intervals_days is None else intervals_days)
    as_of = _as_of(tables, as_of)
    last = last_contacts(tables["interactions"], as_of)
    c = tables["customers"]
    gone = c.loc[c["close_date"].notna() & (c["close_date"] <= as_of), "customer_id"]
    s = stages.loc[~isin_keys(stages["customer_id"], gone), ["customer_id", stage_col]].rename(
        columns={stage_col: "stage"}).copy()
    s["rm_id"] = rm_at(tables["assignments"], s.assign(_d=as_of), "_d")
    s["last_contact"] = map_keys(s["customer_id"], last)
    opened = map_keys(s["customer_id"], tables["customers"].set_index("customer_id")["open_date"])
    first_rec = _extreme(tables["interactions"], "timestamp", "MIN").normalize()
    ref = s["last_contact"].dt.normalize().fillna(opened.clip(lower=first_rec))
    s["interval_days"] = s["stage"].map(iv).astype(float)
    s["next_due"] = ref + pd.to_timedelta(s["interval_days"], unit="D")
    s["overdue_days"] = (as_of - s["next_due"]).dt.days.clip(lower=0)
    s.loc[s["next_due"].isna(), "overdue_days"] = np.nan
    s["overdue"] = s["overdue_days"] > 0
    return s.sort_values("customer_id").reset_index(drop=True)


def _last_aum(balances: Any, as_of: pd.Timestamp, engine: str) -> pd.DataFrame:
    sql = f"""
SELECT customer_id, aum FROM (
    SELECT customer_id, aum, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY snapshot_date DESC) AS rn
    FROM balances WHERE CAST(snapshot_date AS DATE) <= DATE '{as_of.date().isoformat()}'
) x WHERE rn = 1
ORDER BY customer_id"""
    return run_sql(sql, {"balances": balances}, engine=engine)


def hnw_visit_coverage(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, hnw_aum: float = 1_000_000.0,
                       visits_per_year: float = 4.0, window_days: int = 365,
                       visit_kinds: Sequence[str] = VISIT_KINDS, engine: str = "duckdb") -> pd.DataFrame:
    """Visit coverage of high-net-worth customers on ``as_of`` (one row per HNW customer).

    HNW: open on ``as_of`` with AUM (last snapshot on or before ``as_of``, currency) >= ``hnw_aum``.
    Required visits in the ``window_days`` up to ``as_of``: ``visits_per_year * window_days / 365``.

    Returns
    -------
    customer_id, rm_id (primary on as_of), aum, visits (visits and meetings by any RM in the
    window), visits_required, covered = min(visits, required), compliant (visits >= required).
    """
    _need(tables, "customers", "balances", "assignments", "interactions", what="hnw_visit_coverage")
    as_of = _as_of(tables, as_of)
    c = tables["customers"]
    alive = c[(c["open_date"] <= as_of) & (c["close_date"].isna() | (c["close_date"] > as_of))]
    aum = _last_aum(tables["balances"], as_of, engine)
    # alive customers with a snapshot, in their order (an inner merge; both come sorted by id)
    pos = positions(alive["customer_id"].to_numpy(), aum["customer_id"].to_numpy())
    found = pos >= 0
    h = pd.DataFrame({"customer_id": alive["customer_id"].to_numpy()[found], "aum": aum["aum"].to_numpy()[pos[found]]})
    h = h[h["aum"] >= float(hnw_aum)].copy()
    lo = as_of + pd.Timedelta(days=1) - pd.Timedelta(days=int(window_days))
    kinds = ", ".join("'" + str(k).replace("'", "''") + "'" for k in visit_kinds) or "NULL"
    # a conditional count over every customer (0 without visits, as the map's fillna gives): at 10M
    # customers DuckDB ran the same count with the conditions in WHERE 7x slower (127 s against 18 s)
    v = _sql(f"""SELECT customer_id, COUNT(*) FILTER (WHERE kind IN ({kinds}) AND "timestamp" >= {_ts(lo)}
    AND "timestamp" < {_ts(as_of + pd.Timedelta(days=1))}) AS visits
FROM interactions GROUP BY customer_id ORDER BY customer_id""", interactions=tables["interactions"]
             ).set_index("customer_id")["visits"]
    h["rm_id"] = rm_at(tables["assignments"], h.assign(_d=as_of), "_d")
    h["visits"] = map_keys(h["customer_id"], v).fillna(0).astype(int)
    h["visits_required"] = float(visits_per_year) * int(window_days) / 365.0
    h["covered"] = np.minimum(h["visits"], h["visits_required"])
    h["compliant"] = h["visits"] >= h["visits_required"]
    return h[["customer_id", "rm_id", "aum", "visits", "visits_required", "covered", "compliant"]] \
        .sort_values("customer_id").reset_index(drop=True)


def visit_coverage_by_rm(per_customer: pd.DataFrame) -> pd.DataFrame:
    """Per RM from :func:`hnw_visit_coverage`: n_hnw, n_compliant, tier_coverage = n_compliant / n_hnw
    (share of HNW customers visited as required), visit_coverage = sum(covered) / sum(required)."""
    g = per_customer.groupby("rm_id", dropna=False)
    out = g.agg(n_hnw=("customer_id", "size"), n_compliant=("compliant", "sum"), covered=("covered", "sum"),
                required=("visits_required", "sum")).reset_index()
    out["tier_coverage"] = out["n_compliant"] / out["n_hnw"]
    out["visit_coverage"] = out["covered"] / out["required"]
    return out.drop(columns=["covered", "required"])


def upcoming_maturities(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, horizon_days: int = 90,
                        lead_months: int = 1) -> pd.DataFrame:
    """Holdings maturing in ``(as_of, as_of + horizon_days]`` with their renewal-contact due date.

    ``contact_due = maturity_date - lead_months`` calendar months. A position is contacted when the
    customer had an interaction on or after ``contact_due`` (up to ``as_of``).

    Returns
    -------
    customer_id, product_id, product_family, amount, maturity_date, contact_due, rm_id (primary on
    as_of), days_to_maturity, contacted (bool), contact_overdue (due date passed, not contacted).
    """
    _need(tables, "customers", "assignments", "products", "holdings", "interactions",
          what="upcoming_maturities")
    as_of = _as_of(tables, as_of)
    # filtered in the engine (input order kept): only the positions maturing in the horizon reach pandas
    m = _sql(f"""SELECT * FROM holdings
WHERE maturity_date IS NOT NULL AND maturity_date > {_ts(as_of)}
  AND maturity_date <= {_ts(as_of + pd.Timedelta(days=int(horizon_days)))}
  AND start_date <= {_ts(as_of)} AND (end_date IS NULL OR end_date > {_ts(as_of)})""", holdings=tables["holdings"])
    m = m.merge(tables["products"][["product_id", "product_family"]], on="product_id", how="left")
    m["contact_due"] = m["maturity_date"] - pd.DateOffset(months=int(lead_months))
    m["rm_id"] = rm_at(tables["assignments"], m.assign(_d=as_of), "_d")
    m["days_to_maturity"] = (m["maturity_date"] - as_of).dt.days
    lc = m["customer_id"].map(last_contacts(tables["interactions"], as_of, customers=m["customer_id"]))
    m["contacted"] = lc.notna() & (lc >= m["contact_due"])
    m["contact_overdue"] = (m["contact_due"] <= as_of) & ~m["contacted"]
    cols = ["customer_id", "product_id", "product_family", "amount", "maturity_date", "contact_due", "rm_id",
            "days_to_maturity", "contacted", "contact_overdue"]
    return m[cols].sort_values(["maturity_date", "customer_id"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# complaints and satisfaction
# --------------------------------------------------------------------------------------------
def complaint_handling(feedback: pd.DataFrame, *, as_of: Any = None, response_hours: float = 48.0,
                       resolve_workdays: int = 3, holidays: Sequence[Any] = ()) -> pd.DataFrame:
    """One row per complaint with its handling times and whether each target was met.

    ``workdays_to_resolve`` = ``numpy.busday_count(opened day, resolved day, holidays=...)``
    (working days from the opening day, inclusive, to the resolution day, exclusive: opened
    Friday, resolved the next Wednesday = 3). ``responded_in_time`` / ``resolved_in_time`` are
    True, False, or NA while the complaint is open and its deadline lies after ``as_of``
    (pending: left out of the shares). Without a ``responded_at`` column the response target is NA.
    """
    if not isinstance(feedback, pd.DataFrame):  # a path: only the complaints reach pandas
        if as_of is None:
            as_of = _extreme(feedback, "opened_at")
            as_of = pd.Timestamp("today") if pd.isna(as_of) else as_of
        feedback = _sql("SELECT * FROM feedback WHERE kind = 'complaint'", feedback=feedback)
    q = feedback[feedback["kind"] == "complaint"].copy()
    if as_of is None:
        as_of = pd.to_datetime(feedback["opened_at"]).max() if len(feedback) else pd.Timestamp("today")
    as_of = pd.Timestamp(as_of)
    now = as_of.normalize() + pd.Timedelta(days=1)  # end of the as_of day
    q = q[q["opened_at"] < now]
    hol = np.array([np.datetime64(pd.Timestamp(d).date()) for d in holidays], dtype="datetime64[D]")
    od = q["opened_at"].to_numpy("datetime64[D]")
    if "responded_at" in q.columns:
        resp = q["responded_at"].where(q["responded_at"] < now)
        q["response_hours"] = (resp - q["opened_at"]).dt.total_seconds() / 3600.0
        due = q["opened_at"] + pd.Timedelta(hours=float(response_hours))
        q["responded_in_time"] = pd.array(np.where(q["response_hours"].notna(), q["response_hours"] <= response_hours,
                                                   np.where(due < now, False, None)), dtype="boolean")
    else:
        q["response_hours"] = np.nan
        q["responded_in_time"] = pd.array([None] * len(q), dtype="boolean")
    res = q["resolved_at"].where(q["resolved_at"] < now)
    done = res.notna().to_numpy()
    rd = res.to_numpy("datetime64[D]")
    wd = np.full(len(q), np.nan)
    if done.any():
        wd[done] = np.busday_count(od[done], rd[done], holidays=hol)
    q["workdays_to_resolve"] = wd
    # deadline: the end of the resolve_workdays-th working day counted from the opening day
    deadline = np.busday_offset(od, int(resolve_workdays), roll="forward", holidays=hol) if len(q) else od
    open_past = ~done & ((deadline + np.timedelta64(1, "D")).astype("datetime64[ns]") <= np.datetime64(now))
    q["resolved_in_time"] = pd.array(np.where(done, wd <= resolve_workdays, np.where(open_past, False, None)),
                                     dtype="boolean")
    q["resolved"] = done
    cols = ["customer_id", "rm_id", "opened_at", "responded_at", "resolved_at", "response_hours",
            "responded_in_time", "workdays_to_resolve", "resolved_in_time", "resolved"]
    return q[[c for c in cols if c in q.columns]].reset_index(drop=True)


def complaint_kpis(handled: pd.DataFrame, *, by: str | Sequence[str] | None = "rm_id",
                   target_share: float = 0.8) -> pd.DataFrame:
    """Complaint-handling KPIs from :func:`complaint_handling`, per ``by`` (None: overall).

    n_complaints, n_open, mean_response_hours, share_responded_in_time, share_resolved_in_time
    (pending complaints left out), meets_target (share_resolved_in_time >= target_share).
    """
    h = handled.assign(_all="all")
    keys = ["_all"] if by is None else ([by] if isinstance(by, str) else list(by))
    if not len(h):  # no complaints: the per-group functions give the empty table its dtypes
        out = h.groupby(keys, dropna=False).agg(
            n_complaints=("opened_at", "size"), n_open=("resolved", lambda s: int((~s).sum())),
            mean_response_hours=("response_hours", "mean"),
            share_responded_in_time=("responded_in_time", lambda s: s.dropna().astype(float).mean()),
            share_resolved_in_time=("resolved_in_time", lambda s: s.dropna().astype(float).mean())).reset_index()
        out["meets_target"] = out["share_resolved_in_time"] >= float(target_share)
        return out.drop(columns="_all", errors="ignore")
    # shares over the judged complaints (NA = pending, left out): means of 0/1 floats with NaN
    h = h.assign(_open=~h["resolved"].astype(bool),
                 _responded=h["responded_in_time"].astype("Float64").astype("float64"),
                 _resolved=h["resolved_in_time"].astype("Float64").astype("float64"))
    g = h.groupby(keys, dropna=False)
    out = g.agg(n_complaints=("opened_at", "size"), n_open=("_open", "sum"),
                mean_response_hours=("response_hours", "mean"),
                share_responded_in_time=("_responded", "mean"),
                share_resolved_in_time=("_resolved", "mean"))
    for c, src in (("share_responded_in_time", "responded_in_time"), ("share_resolved_in_time", "resolved_in_time")):
        if not h[src].notna().any():  # nothing judged at all: NA of the flags' boolean dtype, as before
            out[c] = out[c].astype(h[src].dtype)
    out = out.reset_index()
    out["meets_target"] = out["share_resolved_in_time"] >= float(target_share)
    return out.drop(columns="_all", errors="ignore")


def customer_satisfaction(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, since: Any = None,
                          promoter_min: int = 9, detractor_max: int = 6, logins_months: int = 3) -> pd.DataFrame:
    """Per customer in ``[since, as_of]``: n_complaints, n_nps, last_nps, nps_class (promoter
    >= promoter_min, detractor <= detractor_max, else passive), mean_survey, and logins over the
    last ``logins_months`` months (when ``digital_activity`` is present)."""
    _need(tables, "customers", "feedback", what="customer_satisfaction")
    as_of = _as_of(tables, as_of)
    f = tables["feedback"]
    if not isinstance(f, pd.DataFrame):  # a path: the feedback up to as_of, in input order
        f = _sql(f"SELECT * FROM feedback WHERE opened_at < {_ts(as_of + pd.Timedelta(days=1))}", feedback=f)
    f = f[f["opened_at"] < as_of + pd.Timedelta(days=1)]
    if since is not None:
        f = f[f["opened_at"] >= pd.Timestamp(since)]
    out = tables["customers"][["customer_id"]].copy()
    cid = out["customer_id"]
    comp = f[f["kind"] == "complaint"].groupby("customer_id").size()
    nps = f[f["kind"] == "nps"].sort_values("opened_at")
    out["n_complaints"] = cid.map(comp).fillna(0).astype(int)
    out["n_nps"] = cid.map(nps.groupby("customer_id").size()).fillna(0).astype(int)
    out["last_nps"] = cid.map(nps.groupby("customer_id")["score"].last())
    out["nps_class"] = np.select([out["last_nps"] >= promoter_min, out["last_nps"] <= detractor_max,
                                  out["last_nps"].notna()], ["promoter", "detractor", "passive"], None)
    out["mean_survey"] = cid.map(f[f["kind"] == "survey"].groupby("customer_id")["score"].mean())
    d = tables.get("digital_activity")
    if isinstance(d, pd.DataFrame):
        lo = (as_of.to_period("M") - (int(logins_months) - 1)).to_timestamp()
        dd = d[(d["month"] >= lo) & (d["month"] <= as_of)]
        out["logins"] = cid.map(dd.groupby("customer_id")["logins"].sum()).fillna(0).astype(int)
    return out


def nps_score(scores: pd.Series, *, promoter_min: int = 9, detractor_max: int = 6) -> float:
    """NPS in points (-100..100) of 0-10 scores: % promoters - % detractors (NaN when empty)."""
    s = pd.Series(scores).dropna()
    if s.empty:
        return float("nan")
    return float(100.0 * ((s >= promoter_min).mean() - (s <= detractor_max).mean()))
