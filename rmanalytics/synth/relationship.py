"""Customer-level relationship data of the synthetic bank (issue 14), with known truth.

Generates the optional contract tables ``products``, ``holdings``, ``interactions``, ``feedback``
and ``digital_activity``, and the **relationship hazard terms** of customer closure. Called from
:func:`rmanalytics.synth.bank.generate` in two steps: :func:`latent` (before closure: the contact
and complaint processes and the hazard steps they imply) and :func:`emit` (after closure: the
tables, truncated at closure and at the window end). Written in numpy (no library simulates
this); vectorised over customers and events.

Generative story (every number is a field of :class:`rmanalytics.synth.Truth`)
------------------------------------------------------------------------------
- **RM behaviour.** Each RM is *lax* with probability ``rm_lax_share`` (``truth.rm_lax``).
- **Contacts** run from ``max(open_date, start)`` to ``end``. Over each stretch a customer has
  a primary RM (assignment share >= 0.5), contacts arrive as a Poisson process with rate
  ``contact_rate_per_year[diligent|lax]`` (x ``corporate_contact_multiplier`` for corporate
  customers), made by that RM. A customer opened inside the window gets a first contact
  ``9 h + Exp(first_contact_mean_hours[diligent|lax])`` after the start of ``open_date``.
  Kinds by ``contact_kind_probs``; visits/meetings at the branch or the customer's site, calls by
  phone, messages on WeChat/online.
- **Complaints** arrive as a Poisson process over the same stretches with rate
  ``complaint_rate_per_year[diligent|lax]``, against the primary RM; first response after
  ``Exp(complaint_response_mean_hours[..])`` hours, resolution after ``k`` working days
  (Mon-Fri, ``k`` drawn from ``complaint_resolve_workdays_probs[..]`` over 1, 2, ...);
  responses/resolutions after ``end`` are null.
- **NPS answers and surveys**: Poisson(``nps_rate_per_year``/``survey_rate_per_year``); NPS
  score classes (promoter 9-10, passive 7-8, detractor 0-6) by ``nps_class_probs[..]`` of the
  primary RM's behaviour.
- **Churn hazard terms** (time unit years since open; added to the closure hazard in
  :func:`rmanalytics.synth.bank.generate` next to ``rm_left``, from the window start on):
  ``relationship_log_hr["contact_lapsed"]`` while the customer has had no contact for
  ``contact_lapse_days`` days or more (the clock starts at ``max(open_date, start)``: lapsed
  from ``c + L`` to the next contact, for each contact day ``c``), and
  ``relationship_log_hr["complained"]`` from the day of the first complaint on. The churn
  model recovers both from the tables (:func:`rmanalytics.churn.relationship_frame`).
- **Products**: a fixed catalogue (:data:`CATALOGUE`). **Holdings**: ``1 + Poisson(m)`` per
  customer (``holdings_per_customer[type]``), bought on a uniform day in
  ``[open_date, min(close, end)]``; family by ``product_family_probs``; product uniformly among
  the family's products whose risk level does not exceed the customer's, except that with
  probability ``suitability_breach_share`` a holding whose family has a riskier product gets
  one of those (an injected breach; counts in ``truth.suitability``). Fixed-term products
  mature at ``start + term_days``; positions end at maturity, at a redemption
  (Exp(``redemption_mean_years``)) or at closure; end dates after ``end`` are null.
- **Digital activity**: logins per month ~ Poisson(mu), mu ~ Gamma(2, mean ``logins_mean[type]``),
  for each month the customer is open inside the window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365.25

#: product_id, family, risk level (1-5), term in days (None: open-ended), name
CATALOGUE: tuple[tuple[str, str, int, int | None, str], ...] = (
    ("P-DEP-CUR", "deposit", 1, None, "Current account"),
    ("P-DEP-3M", "deposit", 1, 91, "Time deposit 3 months"),
    ("P-DEP-1Y", "deposit", 1, 365, "Time deposit 1 year"),
    ("P-DEP-3Y", "deposit", 1, 1095, "Time deposit 3 years"),
    ("P-WM-MMF", "wealth", 1, None, "Money-market fund"),
    ("P-WM-FI6M", "wealth", 2, 182, "Fixed-income wealth product 6 months"),
    ("P-WM-FI1Y", "wealth", 2, 365, "Fixed-income wealth product 1 year"),
    ("P-WM-MIX", "wealth", 3, 365, "Mixed wealth product 1 year"),
    ("P-WM-EQF", "wealth", 4, None, "Equity fund"),
    ("P-WM-STR", "wealth", 5, 365, "Structured note 1 year"),
    ("P-LN-MORT", "loan", 1, 7300, "Mortgage 20 years"),
    ("P-LN-BIZ", "loan", 1, 365, "Business loan 1 year"),
    ("P-CARD", "card", 1, None, "Credit card"),
    ("P-INS-LIFE", "insurance", 1, 3650, "Life insurance 10 years"),
    ("P-INS-ULK", "insurance", 4, 1825, "Unit-linked insurance 5 years"),
    ("P-FX-SPOT", "fx", 1, None, "FX spot account"),
    ("P-FX-OPT", "fx", 5, 182, "FX option 6 months"),
    ("P-PAY", "payment", 1, None, "Payment services"),
)

KINDS = ("visit", "call", "message", "meeting")


def products_table() -> pd.DataFrame:
    """The product catalogue as the contract table ``products``."""
    c = CATALOGUE
    return pd.DataFrame({
        "product_id": np.array([r[0] for r in c], dtype=object),
        "product_family": np.array([r[1] for r in c], dtype=object),
        "risk_level": np.array([r[2] for r in c], dtype=np.int64),
        "term_days": pd.array([r[3] for r in c], dtype="Int64"),
        "product_name": np.array([r[4] for r in c], dtype=object),
    })


def _poisson_times(rng, owner, lo, hi, rate_per_day):
    """Poisson events on [lo, hi) per row: (row index, time) with time in days (float)."""
    length = np.maximum(hi - lo, 0).astype(float)
    k = rng.poisson(rate_per_day * length)
    row = np.repeat(np.arange(len(lo)), k)
    t = lo[row] + rng.random(len(row)) * length[row]
    return row, t


def latent(rng: np.random.Generator, cust: dict, asg: dict, n_rm: int, start_day: int, end_day: int,
           truth: Any) -> dict:
    """Contact and complaint processes (not yet truncated at closure) and the hazard steps.

    Returns a dict with ``lax`` (per RM), event arrays (``contacts``, ``complaints``, ``surveys``)
    and ``steps`` = (owner, time in years since open, delta log-HR) for
    :func:`rmanalytics.synth.processes.weibull_ph_invert_steps`.
    """
    n = len(cust["open"])
    lax = rng.random(n_rm) < truth.rm_lax_share
    # primary stretches inside the window
    pm = asg["share"] >= 0.5
    pc, pr = asg["cust"][pm], asg["rm"][pm]
    cov0 = np.maximum(cust["open"], start_day)
    lo = np.maximum(asg["start"][pm], cov0[pc])
    hi = np.minimum(asg["end"][pm], end_day + 1)
    ok = hi > lo
    pc, pr, lo, hi = pc[ok], pr[ok], lo[ok], hi[ok]
    is_lax = lax[pr]
    corp_mult = np.where(cust["corp"][pc], truth.corporate_contact_multiplier, 1.0)
    cr = np.where(is_lax, truth.contact_rate_per_year["lax"], truth.contact_rate_per_year["diligent"]) * corp_mult
    row, t = _poisson_times(rng, pc, lo.astype(float), hi.astype(float), cr / DAYS_PER_YEAR)
    c_cust, c_rm, c_t = pc[row], pr[row], t
    # first contact of customers opened inside the window (primary RM at open)
    new = np.flatnonzero(cust["open"] >= start_day)
    first_rm = asg["first_rm"][new]
    mean_h = np.where(lax[first_rm], truth.first_contact_mean_hours["lax"],
                      truth.first_contact_mean_hours["diligent"])
    delay_h = 9.0 + rng.exponential(mean_h)
    f_t = cust["open"][new] + delay_h / 24.0
    fin = f_t < end_day + 1
    c_cust = np.concatenate([c_cust, new[fin]])
    c_rm = np.concatenate([c_rm, first_rm[fin]])
    # regular contacts get a working-hours time of day; first contacts keep their exact delay
    c_t = np.concatenate([np.floor(c_t) + rng.uniform(8.0, 19.0, size=len(c_t)) / 24.0, f_t[fin]])
    o = np.lexsort((c_t, c_cust))
    c_cust, c_rm, c_t = c_cust[o], c_rm[o], c_t[o]
    kinds = np.minimum(np.searchsorted(np.cumsum([truth.contact_kind_probs[k] for k in KINDS]),
                                       rng.random(len(c_t)), side="right"), len(KINDS) - 1)
    # complaints
    rate_c = np.where(is_lax, truth.complaint_rate_per_year["lax"], truth.complaint_rate_per_year["diligent"])
    row, t = _poisson_times(rng, pc, lo.astype(float), hi.astype(float), rate_c / DAYS_PER_YEAR)
    q_cust, q_rm, q_t = pc[row], pr[row], np.floor(t) + rng.uniform(0.0, 24.0, size=len(t)) / 24.0
    o = np.lexsort((q_t, q_cust))
    q_cust, q_rm, q_t = q_cust[o], q_rm[o], q_t[o]
    # NPS answers and surveys
    row, t = _poisson_times(rng, pc, lo.astype(float), hi.astype(float),
                            np.full(len(pc), truth.nps_rate_per_year / DAYS_PER_YEAR))
    n_cust, n_rm_, n_t = pc[row], pr[row], t
    row, t = _poisson_times(rng, pc, lo.astype(float), hi.astype(float),
                            np.full(len(pc), truth.survey_rate_per_year / DAYS_PER_YEAR))
    s_cust, s_rm, s_t = pc[row], pr[row], t

    # ---- hazard steps (years since open)
    L = int(truth.contact_lapse_days)
    beta_l = truth.relationship_log_hr["contact_lapsed"]
    beta_c = truth.relationship_log_hr["complained"]
    # contact days per customer with the clock start cov0 as a pseudo-contact
    d_cust = np.concatenate([np.arange(n), c_cust])
    d_day = np.concatenate([cov0, np.floor(c_t).astype(np.int64)])
    o = np.lexsort((d_day, d_cust))
    d_cust, d_day = d_cust[o], d_day[o]
    nxt = np.append(d_day[1:], np.iinfo(np.int64).max)
    last = np.append(d_cust[1:] != d_cust[:-1], True)
    nxt[last] = np.iinfo(np.int64).max
    lapse = nxt > d_day + L
    on_c, on_d = d_cust[lapse], d_day[lapse] + L
    off = lapse & ~last
    off_c, off_d = d_cust[off], nxt[off]
    op = cust["open"]
    owner = np.concatenate([on_c, off_c])
    times = np.concatenate([(on_d - op[on_c]), (off_d - op[off_c])]) / DAYS_PER_YEAR
    deltas = np.concatenate([np.full(len(on_c), beta_l), np.full(len(off_c), -beta_l)])
    if len(q_cust):
        firstq = np.append(True, q_cust[1:] != q_cust[:-1])
        fc, fd = q_cust[firstq], np.floor(q_t[firstq]).astype(np.int64)
        owner = np.concatenate([owner, fc])
        times = np.concatenate([times, (fd - op[fc]) / DAYS_PER_YEAR])
        deltas = np.concatenate([deltas, np.full(len(fc), beta_c)])
    return dict(lax=lax, contacts=(c_cust, c_rm, c_t, kinds), complaints=(q_cust, q_rm, q_t),
                nps=(n_cust, n_rm_, n_t), surveys=(s_cust, s_rm, s_t), steps=(owner, times, deltas))


def _ts(days: np.ndarray) -> np.ndarray:
    """Fractional day numbers -> datetime64[ns] timestamps (to the second)."""
    sec = np.round(np.asarray(days, dtype=float) * 86400.0).astype(np.int64)
    return sec.astype("datetime64[s]").astype("datetime64[ns]")


def emit(rng: np.random.Generator, rel: dict, cust: dict, close_inf: np.ndarray, start_day: int, end_day: int,
         rm_ids: np.ndarray, truth: Any) -> dict[str, pd.DataFrame]:
    """The five relationship tables (records after closure or after ``end`` are not emitted);
    fills ``truth.rm_lax`` and ``truth.suitability``."""
    ids = cust["ids"]
    n = len(ids)
    lax = rel["lax"]
    stop = np.minimum(close_inf, end_day + 1)  # first day not observed
    truth.rm_lax = pd.Series(lax, index=rm_ids, name="lax")

    # ---- interactions
    c_cust, c_rm, c_t, kinds = rel["contacts"]
    keep = np.floor(c_t).astype(np.int64) < stop[c_cust]
    c_cust, c_rm, c_t, kinds = c_cust[keep], c_rm[keep], c_t[keep], kinds[keep]
    u = rng.random(len(c_t))
    kind_names = np.array(KINDS, dtype=object)[kinds]
    channel = np.select(
        [kinds == 1, kinds == 2, (kinds == 0) | (kinds == 3)],
        [np.full(len(u), "phone", dtype=object),
         np.where(u < 0.7, "wechat", "online").astype(object),
         np.where(u < 0.5, "branch", "customer_site").astype(object)], "branch")
    v = rng.random(len(u))
    outcome = np.where(v < 0.75, "reached", np.where(v < 0.9, "follow_up", "sale")).astype(object)
    interactions = pd.DataFrame({
        "customer_id": ids[c_cust], "rm_id": rm_ids[c_rm], "timestamp": _ts(c_t),
        "channel": channel, "kind": kind_names, "outcome": outcome,
    })

    # ---- feedback: complaints, NPS, surveys
    q_cust, q_rm, q_t = rel["complaints"]
    keep = np.floor(q_t).astype(np.int64) < stop[q_cust]
    q_cust, q_rm, q_t = q_cust[keep], q_rm[keep], q_t[keep]
    ql = lax[q_rm]
    resp = q_t + rng.exponential(np.where(ql, truth.complaint_response_mean_hours["lax"],
                                          truth.complaint_response_mean_hours["diligent"])) / 24.0
    pk_d = np.asarray(truth.complaint_resolve_workdays_probs["diligent"], dtype=float)
    pk_l = np.asarray(truth.complaint_resolve_workdays_probs["lax"], dtype=float)
    uk = rng.random(len(q_t))
    k = np.where(ql, np.searchsorted(np.cumsum(pk_l / pk_l.sum()), uk, side="right"),
                 np.searchsorted(np.cumsum(pk_d / pk_d.sum()), uk, side="right")) + 1
    qday = np.floor(q_t).astype(np.int64)
    rday = np.busday_offset(qday.astype("datetime64[D]"), k, roll="forward").astype(np.int64)
    res = rday + rng.uniform(9.0, 18.0, size=len(q_t)) / 24.0
    res = np.maximum(res, resp)  # resolved after the first response
    obs_end = end_day + 1.0
    resp_null, res_null = resp >= obs_end, res >= obs_end
    n_cust, n_rm_, n_t = rel["nps"]
    keep = np.floor(n_t).astype(np.int64) < stop[n_cust]
    n_cust, n_rm_, n_t = n_cust[keep], n_rm_[keep], n_t[keep]
    nl = lax[n_rm_]
    pc = np.where(nl[:, None], np.asarray(truth.nps_class_probs["lax"])[None, :],
                  np.asarray(truth.nps_class_probs["diligent"])[None, :])
    cls = (rng.random(len(n_t))[:, None] >= np.cumsum(pc, axis=1)).sum(axis=1)  # 0 promoter, 1 passive, 2 detr.
    score = np.select([cls == 0, cls == 1], [rng.integers(9, 11, size=len(cls)), rng.integers(7, 9, size=len(cls))],
                      rng.integers(0, 7, size=len(cls))).astype(float)
    s_cust, s_rm, s_t = rel["surveys"]
    keep = np.floor(s_t).astype(np.int64) < stop[s_cust]
    s_cust, s_rm, s_t = s_cust[keep], s_rm[keep], s_t[keep]
    s_score = np.clip(np.round(rng.normal(np.where(lax[s_rm], 3.4, 4.1), 0.8)), 1, 5)
    nq, nn, ns = len(q_t), len(n_t), len(s_t)
    fb = pd.DataFrame({
        "customer_id": ids[np.concatenate([q_cust, n_cust, s_cust])],
        "rm_id": rm_ids[np.concatenate([q_rm, n_rm_, s_rm])],
        "opened_at": _ts(np.concatenate([q_t, n_t, s_t])),
        "kind": np.array(["complaint"] * nq + ["nps"] * nn + ["survey"] * ns, dtype=object),
        "score": np.concatenate([np.full(nq, np.nan), score, s_score]),
        "responded_at": _ts(np.concatenate([resp, np.zeros(nn + ns)])),
        "resolved_at": _ts(np.concatenate([res, np.zeros(nn + ns)])),
    })
    fb.loc[np.concatenate([resp_null, np.ones(nn + ns, bool)]), "responded_at"] = pd.NaT
    fb.loc[np.concatenate([res_null, np.ones(nn + ns, bool)]), "resolved_at"] = pd.NaT
    fb = fb.sort_values(["customer_id", "opened_at"], kind="stable").reset_index(drop=True)

    # ---- holdings
    products = products_table()
    fam_of = products["product_family"].to_numpy()
    risk_of = products["risk_level"].to_numpy()
    term_of = products["term_days"].to_numpy(dtype=float, na_value=np.nan)
    corp = cust["corp"]
    m = np.where(corp, truth.holdings_per_customer["corporate"], truth.holdings_per_customer["retail"])
    cnt = 1 + rng.poisson(m)
    h = np.repeat(np.arange(n), cnt)
    lo = cust["open"][h]
    hi = stop[h]  # exclusive
    hstart = lo + np.floor(rng.random(len(h)) * np.maximum(hi - lo, 1)).astype(np.int64)
    from rmanalytics.contract import PRODUCT_FAMILIES

    fp = np.array([[truth.product_family_probs[t].get(f, 0.0) for f in PRODUCT_FAMILIES]
                   for t in ("retail", "corporate")])
    fp /= fp.sum(axis=1, keepdims=True)
    ctype = corp[h].astype(int)
    fam_idx = np.empty(len(h), dtype=np.int64)
    uf = rng.random(len(h))
    for ti in (0, 1):
        mt = ctype == ti
        fam_idx[mt] = np.minimum(np.searchsorted(np.cumsum(fp[ti]), uf[mt], side="right"), len(PRODUCT_FAMILIES) - 1)
    fam = np.array(PRODUCT_FAMILIES, dtype=object)[fam_idx]
    crisk = cust["risk"][h]
    same_fam = fam[:, None] == fam_of[None, :]
    suitable = same_fam & (risk_of[None, :] <= crisk[:, None])
    unsuitable = same_fam & (risk_of[None, :] > crisk[:, None])
    eligible = unsuitable.any(axis=1)
    breach = eligible & (rng.random(len(h)) < truth.suitability_breach_share)
    pool = np.where(breach[:, None], unsuitable, suitable)
    # every family has a risk-1 or risk-2 product; a risk-1 customer without a suitable one (fx) takes the lowest
    none = ~pool.any(axis=1)
    if none.any():
        lowest = same_fam[none] & (risk_of[None, :] == np.where(same_fam[none], risk_of[None, :], 99).min(axis=1)[:, None])
        pool[none] = lowest
        breach[none] = True  # the lowest-risk product of the family still exceeds the customer's level
    cs = np.cumsum(pool, axis=1)
    pick = (cs <= np.minimum((rng.random(len(h)) * pool.sum(axis=1)).astype(np.int64),
                             pool.sum(axis=1) - 1)[:, None]).sum(axis=1)
    term = term_of[pick]
    has_term = ~np.isnan(term)
    mat = hstart + np.where(has_term, term, 0).astype(np.int64)
    redeem = hstart + np.ceil(rng.exponential(truth.redemption_mean_years * DAYS_PER_YEAR, size=len(h))).astype(np.int64)
    hend = np.where(has_term, mat, redeem)
    hend = np.minimum(hend, close_inf[h])
    end_null = hend > end_day
    amount = np.exp(rng.normal(np.where(corp[h], 13.0, 10.5), 1.0))
    from rmanalytics.synth.bank import _to_dt, _to_dt_nullable

    holdings = pd.DataFrame({
        "customer_id": ids[h], "product_id": products["product_id"].to_numpy()[pick],
        "start_date": _to_dt(hstart), "end_date": _to_dt_nullable(hend, end_null),
        "amount": amount, "maturity_date": _to_dt_nullable(mat, ~has_term),
    })
    dup = holdings.duplicated(["customer_id", "product_id", "start_date"]).to_numpy()
    holdings, breach, eligible = holdings[~dup].reset_index(drop=True), breach[~dup], eligible[~dup]
    truth.suitability = {"n_holdings": int(len(holdings)), "n_eligible": int(eligible.sum()),
                         "n_breaches": int(breach.sum()), "n_forced": int(none[~dup].sum()),
                         "breach_share_eligible": float(breach[eligible].mean()) if eligible.any() else 0.0}

    # ---- digital activity
    month0 = np.datetime64(pd.Timestamp(start_day, unit="D").strftime("%Y-%m"), "M")
    first_m = np.maximum(np.maximum(cust["open"], start_day).astype("datetime64[D]").astype("datetime64[M]"), month0)
    last_m = (np.minimum(stop, end_day + 1) - 1).astype("datetime64[D]").astype("datetime64[M]")
    nm = np.maximum((last_m - first_m).astype(np.int64) + 1, 0)
    dc = np.repeat(np.arange(n), nm)
    within = np.arange(len(dc)) - np.repeat(np.cumsum(nm) - nm, nm)
    months = first_m[dc] + within
    mu = rng.gamma(2.0, np.where(corp, truth.logins_mean["corporate"], truth.logins_mean["retail"]) / 2.0)
    digital = pd.DataFrame({"customer_id": ids[dc], "month": months.astype("datetime64[D]").astype("datetime64[ns]"),
                            "logins": rng.poisson(mu[dc]).astype(np.int64)})
    return {"products": products, "holdings": holdings, "interactions": interactions, "feedback": fb,
            "digital_activity": digital}
