"""A synthetic bank with known ground truth: the contract tables (seven required; the optional
``training`` and five relationship tables) plus the true parameters.

See :func:`generate` for the generative story and :class:`Truth` for every true parameter and
its unit. Written in numpy (no library simulates a bank); every process is vectorised over
customers/transactions, the only Python loops run over org units and RM exit events.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.contract import (
    ACQUISITION_CHANNELS,
    CHANNELS,
    PRODUCT_FAMILIES,
    RM_LEVELS,
    TABLES,
)
from rmanalytics.synth.flows import add_balance_flows
from rmanalytics.synth.processes import bgnbd_core, piecewise_ph_invert, weibull_ph_invert
from rmanalytics.synth.training import make_training
from rmanalytics.synth import relationship as _rel
from rmanalytics.synth.processes import (bgnbd_core, piecewise_ph_invert, split_segments_at_steps,
                                         weibull_ph_invert, weibull_ph_invert_steps)

DAYS_PER_WEEK = 7.0
DAYS_PER_YEAR = 365.25

#: Names of the independent random streams (children of ``SeedSequence(seed)``), in spawn order.
#: A component only ever draws from its own stream, so changing how one component draws does not
#: shift the others.
COMPONENTS = (
    "rms", "customers", "assignments", "closure", "bgnbd", "spend", "txn_attrs",
    "activity", "balances", "targets", "behaviour", "training", "balance_flows", "relationship",
    "relationship_tables",
)


def _d(**kw: Any):  # dict default factory helper
    return field(default_factory=lambda: copy.deepcopy(kw))


@dataclass
class Truth:
    """Ground truth of a synthetic bank. Inputs (overridable via ``generate(**overrides)``) first,
    then the realised quantities filled by :func:`generate`.

    Transactions (BG/NBD, time unit **weeks**)
        ``bgnbd[type] = {r, alpha, a, b}``: purchase rate ``lambda ~ Gamma(r, rate=alpha)`` per
        week, dropout probability after each repeat purchase ``p ~ Beta(a, b)``. Each customer's
        process starts at ``open_date`` with a first purchase ON ``open_date`` (the BG/NBD "first
        purchase"); purchase times are continuous and the recorded ``date`` is the day, so two
        purchases on one day are possible (btyd summaries merge them).
    Spend (Gamma-Gamma, currency units)
        ``gamma_gamma[type] = {p, q, gamma}``: ``nu ~ Gamma(q, rate=gamma)`` per customer, each
        amount ``z ~ Gamma(p, rate=nu)``; population mean amount ``p * gamma / (q - 1)``. Applies
        to every purchase (first and repeat).
    Refunds
        Each purchase is refunded with probability ``refund_share``: a row with
        ``amount = -purchase amount``, same family and channel, ``fee = 0``, dated
        ``1..refund_max_lag_days`` days later (uniform); dropped if that date is after ``end`` or
        after the customer's ``close_date``. Truth-recovery tests should exclude ``amount < 0``.
    Fees
        ``fee = amount * fee_base_rate[product_family] * M[rm, month]`` with
        ``M = market_index[month] * exp(sum_k driver_betas[k] * z_k[rm, month] + rm_skill[rm])``,
        ``z_k = (activity_k - activity_means[k]) / activity_sds[k]`` the RM's standardised activity
        of that calendar month (``rm_activity``), times ``1 + training_effect`` from the RM's
        training month on (table ``training``, see :mod:`rmanalytics.synth.training`); ``rm`` the
        customer's **primary** RM (highest share) on the transaction date. ``calls`` has beta 0: a decoy correlated with visits
        (``calls ~ Poisson(calls_per_visit * visits + calls_base)``).
    Closure (Weibull proportional hazards, time unit **years** since ``open_date``)
        ``h(t) = shape/scale * (t/scale)**(shape-1) * exp(lin + closure_log_hr["rm_left"] * 1{t >= s})``
        with ``lin = log_hr["corporate"]*corporate + log_hr["risk_level"]*(risk_level - 3)
        + log_hr["cross_border_ecommerce"]*1{scenario == "cross_border_ecommerce"}`` and ``s``
        the time the customer's primary RM left the bank (``truth.customers.rm_left_date``; the
        covariate stays 1 after a reassignment). ``close_date = open_date + ceil(t * 365.25)``
        days (at least 1 day); null when after ``end`` (right-censored at ``end``). With the behaviour
        link on, the hazard is further multiplied by the behaviour term below.
    Behaviour link (``behaviour_link != 0``, the default; time-varying covariates, monthly)
        Customers disengage before they drop out and the closure hazard follows their behaviour:

        - *Disengagement.* In the ``disengage_days`` (120) before the BG/NBD dropout purchase the
          purchase rate falls linearly from ``lam`` to ``disengage_floor * lam`` (0.2; repeat
          purchases thinned; the first and the dropout purchase kept, so ``dropout_date`` keeps its
          meaning). From that start (``truth.customers.disengage_start_date``) AUM is withdrawn: log
          AUM falls linearly by ``log(1 - aum_withdrawal_share)`` (80% withdrawn) over
          ``aum_withdrawal_days`` (180) and stays there.
        - *Closure.* From ``start`` on, the hazard above is multiplied in each calendar month by
          ``exp(behaviour_link * sum_k closure_behaviour_log_hr[k] * (x_k - closure_behaviour_ref[k]))``
          with ``x_k`` the covariates of :func:`hazard_covariates`, measured from data strictly
          before the month: ``months_since_purchase`` (days since the last purchase, capped at
          ``silence_cap_days`` = 180, per 30 days; log-HR +0.45 per 30 days), ``activity_change``
          (``log((n_90 + 1) / (baseline rate * 90 + 1))`` against the customer's own
          ``activity_baseline_days`` = 365 before; log-HR -0.35 per unit) and ``aum_trend`` (3-month
          log change of month-end AUM; log-HR -0.6 per unit). The references (6 months silent, no
          change) carry the static hazard, so an engaged customer closes at about 1/15 of the rate
          of one silent for six months. These are the covariates of
          :func:`rmanalytics.churn.behaviour_covariates`: a Cox model on them (with full history)
          recovers ``closure_behaviour_log_hr`` within its intervals (tests/unit/test_churn_behaviour.py).
          Dropouts therefore close after a lag driven by this hazard, or stay dormant.
        - Before ``start`` the static hazard applies (this keeps the left-truncation selection
          exact); beyond ``end`` the last month's covariates are carried forward.
        - ``behaviour_link = 0`` switches all of it off: closure independent of behaviour, tables
          bit-identical to the generator before the link existed (tests check it). Other values
          scale the behaviour log-HRs.

        Calibration (sample seed; ``truth.behaviour_summary`` holds the realised figures): annual
        closure about 12% of customers (J.D. Power 2012 US Retail Banking Satisfaction Study: actual
        attrition 9.6%, 7.4%-11.3% by bank size; 15% a year quoted by Tower Group/BAI; the seeds only
        quote churn relative to an industry average); about 94% of closures follow at least 90 days
        without a purchase ("most closures preceded by months of decline"); about 30% of dropouts
        close within the window, the rest stay dormant (沉睡客户; WSBI 2017 calls an account dormant
        after six months without activity in savings banking, and the World Bank Global Findex 2017
        counts about one account owner in five with an inactive account). The share of open
        customers without a purchase in 180 days stays high (about 65%): with these BG/NBD
        parameters many customers buy less than twice a year and the stock opened before ``start``
        was built under the static hazard; purchases are product purchases, not every account
        movement, so this overstates dormancy as a regulator would count it.
    Left truncation
        ``open_date`` of candidate customers is uniform over ``[start - open_years_before_start
        years, end]``. Candidates that closed before ``start`` are not emitted at all (they never
        appear: left-truncation selection); ``n_customers`` counts emitted customers. With
        ``history="window"`` (default) only transactions and activity dated within
        ``[start, end]`` are emitted, although every process runs from ``open_date``. With
        ``history="full"`` transactions (and rm_activity) are emitted from ``open_date``.
        The in-window rows are identical in both modes.
    Relationship data (``relationship=True``; :mod:`rmanalytics.synth.relationship`)
        The optional tables products, holdings, interactions, feedback and digital_activity, with
        lax RMs (``rm_lax_share``), injected suitability breaches (``suitability_breach_share``,
        realised counts in ``suitability``) and two further time-varying closure terms from the
        window start on: ``relationship_log_hr["contact_lapsed"]`` while the last contact is
        ``contact_lapse_days`` or more ago, ``relationship_log_hr["complained"]`` from the first
        complaint on. All closure terms are inverted exactly by
        :func:`rmanalytics.synth.processes.weibull_ph_invert_steps`.
    Closure vs purchases
        With ``closure_stops_transactions=True`` (default) no purchase happens after the closure
        time. For an exact BG/NBD truth test use ``history="full",
        closure_stops_transactions=False, behaviour_link=0`` (the link thins purchases before
        dropout): each customer then shows the complete BG/NBD process
        over ``T = (end + 1 day - open_date)`` weeks.
    """

    # ---- transactions
    bgnbd: dict = _d(retail=dict(r=0.45, alpha=3.5, a=0.6, b=2.8),
                     corporate=dict(r=0.9, alpha=2.0, a=0.4, b=3.5))
    gamma_gamma: dict = _d(retail=dict(p=6.0, q=3.8, gamma=150.0),
                           corporate=dict(p=4.0, q=3.0, gamma=4000.0))
    refund_share: float = 0.01
    refund_max_lag_days: int = 30
    product_family_probs: dict = _d(
        retail=dict(deposit=0.30, wealth=0.20, loan=0.05, card=0.25, insurance=0.05, fx=0.03, payment=0.12),
        corporate=dict(deposit=0.25, wealth=0.10, loan=0.15, card=0.02, insurance=0.03, fx=0.15, payment=0.30),
    )
    channel_probs: dict = _d(
        retail=dict(branch=0.15, mobile=0.50, online=0.20, atm=0.10, rm=0.05),
        corporate=dict(branch=0.20, mobile=0.15, online=0.45, atm=0.0, rm=0.20),
    )
    fee_base_rate: dict = _d(deposit=0.001, wealth=0.010, loan=0.005, card=0.015, insurance=0.030,
                             fx=0.004, payment=0.002)
    closure_stops_transactions: bool = True
    # ---- customers
    corporate_share: float = 0.20
    risk_level_probs: tuple = (0.15, 0.25, 0.30, 0.20, 0.10)
    open_years_before_start: int = 3
    industry_probs: dict = _d(corporate=dict(manufacturing=0.30, trade=0.25, tech=0.20, services=0.15,
                                             construction=0.10))
    scenario_probs: dict = _d(
        retail=dict(young_family=0.20, retiree=0.10, cross_border_ecommerce=0.03),
        corporate=dict(cross_border_ecommerce=0.15, tech_innovation=0.15, supply_chain=0.10),
    )
    acquisition_channel_probs: dict = _d(
        retail=dict(branch=0.45, referral=0.20, online=0.25, rm_outreach=0.10),
        corporate=dict(branch=0.30, referral=0.30, online=0.05, rm_outreach=0.35),
    )
    # ---- closure (years)
    closure_shape: float = 1.1
    closure_scale_years: float = 5.5
    closure_log_hr: dict = _d(corporate=-0.5, risk_level=0.2, cross_border_ecommerce=0.4, rm_left=0.7)
    closure_risk_center: int = 3
    # ---- behaviour link (see "Behaviour link" above); behaviour_link = 0: the independent world
    behaviour_link: float = 1.0
    closure_behaviour_log_hr: dict = _d(months_since_purchase=0.45, activity_change=-0.35, aum_trend=-0.6)
    closure_behaviour_ref: dict = _d(months_since_purchase=6.0, activity_change=0.0, aum_trend=0.0)
    silence_cap_days: int = 180
    activity_recent_days: int = 90
    activity_baseline_days: int = 365
    activity_min_exposure_days: int = 90
    aum_trend_months: int = 3
    disengage_days: int = 120
    disengage_floor: float = 0.2
    aum_withdrawal_share: float = 0.8
    aum_withdrawal_days: int = 180
    # ---- RMs and assignments
    rm_exit_share: float = 0.20
    rm_level_probs: tuple = (0.40, 0.45, 0.15)
    shared_share: float = 0.10
    shared_split: tuple = (0.6, 0.4)
    # ---- activity drivers of fee income
    driver_betas: dict = _d(visits=0.15, cross_sell_offers=0.10, digital_usage=0.08, calls=0.0)
    activity_means: dict = _d(visits=20.0, cross_sell_offers=12.0, digital_usage=0.6, calls=50.0)
    activity_sds: dict = _d(visits=6.0, cross_sell_offers=4.583, digital_usage=0.170, calls=13.93)
    calls_per_visit: float = 2.0
    calls_base: float = 10.0
    skill_sd: float = 0.15
    # ---- market index: exp(trend * years_since_start + amplitude * sin(2*pi*months_since_start / cycle))
    market_trend_per_year: float = 0.04
    market_cycle_amplitude: float = 0.10
    market_cycle_months: float = 36.0
    # ---- balances
    aum_log_mean: dict = _d(retail=11.0, corporate=14.0)
    aum_log_sd: dict = _d(retail=1.0, corporate=1.2)
    aum_monthly_rw_sd: float = 0.04
    loan_share_customers: dict = _d(retail=0.25, corporate=0.55)
    npl_share_borrowers: float = 0.03
    # ---- training (rmanalytics.synth.training): relative effect on the fee multiplier from the
    # training month on; voluntary share of RMs; bottom share per quarterly review sent to mandatory training
    training_effect: float = 0.0
    training_voluntary_share: float = 0.40
    training_mandatory_share: float = 0.10
    # ---- balance flows (rmanalytics.synth.flows): share of the initial RMs whose customers' quarter-end
    # month-end deposits exceed the month's daily average by the uplift (window dressing)
    window_dressing_share: float = 0.20
    window_dressing_uplift: float = 0.10
    # ---- customer-level relationship data and its churn hazard terms (rmanalytics.synth.relationship)
    relationship: bool = True  # False: only the seven core tables, closure without the terms below
    rm_lax_share: float = 0.25
    contact_rate_per_year: dict = _d(diligent=10.0, lax=3.0)
    corporate_contact_multiplier: float = 1.5
    first_contact_mean_hours: dict = _d(diligent=24.0, lax=120.0)
    contact_kind_probs: dict = _d(visit=0.25, call=0.40, message=0.25, meeting=0.10)
    contact_lapse_days: int = 90
    relationship_log_hr: dict = _d(contact_lapsed=0.5, complained=0.6)
    complaint_rate_per_year: dict = _d(diligent=0.10, lax=0.30)
    complaint_response_mean_hours: dict = _d(diligent=20.0, lax=50.0)
    complaint_resolve_workdays_probs: dict = _d(diligent=(0.35, 0.30, 0.20, 0.10, 0.05),
                                                lax=(0.15, 0.20, 0.25, 0.20, 0.20))
    nps_rate_per_year: float = 1.0
    survey_rate_per_year: float = 0.2
    nps_class_probs: dict = _d(diligent=(0.50, 0.30, 0.20), lax=(0.30, 0.30, 0.40))  # promoter, passive, detractor
    holdings_per_customer: dict = _d(retail=1.5, corporate=2.5)
    suitability_breach_share: float = 0.02
    redemption_mean_years: float = 3.0
    logins_mean: dict = _d(retail=6.0, corporate=3.0)

    # ---- realised (filled by generate)
    seed: int | None = None
    n_customers: int | None = None
    n_rms: int | None = None
    start: str | None = None
    end: str | None = None
    history: str | None = None
    market_index: pd.Series | None = None  # month start -> index (1.0 at the start month)
    rm_skill: pd.Series | None = None  # rm_id -> log-multiplier
    rm_exit_dates: pd.Series | None = None  # rm_id -> exit date (NaT: employed at end)
    window_dressing_rms: list | None = None  # rm_ids that window-dress quarter-end deposits
    customers: pd.DataFrame | None = None  # per-customer latent truth, see generate()
    behaviour_summary: dict | None = None  # realised calibration figures of the linked bank
    rm_lax: pd.Series | None = None  # rm_id -> True for a lax RM (relationship data)
    suitability: dict | None = None  # injected suitability breaches: n_holdings, n_eligible, n_breaches, ...

    def to_json_dict(self) -> dict:
        """The scalar/dict parameters plus market_index, rm_skill and rm_exit_dates as JSON-able dict
        (``customers`` is written separately as ``truth_customers.parquet``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "customers":
                continue
            if isinstance(v, pd.Series):
                idx = [x.strftime("%Y-%m-%d") if isinstance(x, pd.Timestamp) else str(x) for x in v.index]
                vals = [None if (isinstance(x, float) and math.isnan(x)) or x is pd.NaT
                        else (x.strftime("%Y-%m-%d") if isinstance(x, pd.Timestamp) else float(x))
                        for x in v.tolist()]
                out[f.name] = dict(zip(idx, vals))
            elif isinstance(v, tuple):
                out[f.name] = list(v)
            else:
                out[f.name] = v
        return out


@dataclass
class SynthBank:
    """Result of :func:`generate`: ``tables`` (the contract tables, with the optional ones), ``truth`` and, in memory
    only (not written), ``hazard_covariates``: with the behaviour link on, the customer x month
    behaviour covariates the closure hazard used (customer_id, month_start and the columns of
    :data:`BEHAVIOUR_COVARIATES`), None otherwise."""

    tables: dict[str, pd.DataFrame]
    truth: Truth
    hazard_covariates: pd.DataFrame | None = None
    #: counts behind ``truth.behaviour_summary`` (numerators and denominators of its shares), so that
    #: the summaries of several sub-banks can be pooled exactly (:mod:`rmanalytics.synth.shards`)
    behaviour_counts: dict | None = None


@dataclass(frozen=True)
class IdSpace:
    """Where the identifiers of one sub-bank start (sharded generation, :mod:`rmanalytics.synth.shards`).

    Customer ids are ``C`` + the numbers ``customer_offset + 1 ...`` zero-padded to
    ``max(7, len(str(customer_total)))`` digits, RM ids ``R`` + ``rm_offset + 1 ...`` padded to
    ``max(4, len(str(rm_total)))``, and the org units ``OL-``/``SB-``/``T2-``/``T1-`` + their numbers
    after the offsets in ``org_offsets`` (outlets, sub-branches, tier-2, tier-1), in the formats of a
    single bank. The default (offsets 0, totals None) is the single bank of :func:`generate`.
    """

    customer_offset: int = 0
    customer_total: int | None = None
    rm_offset: int = 0
    rm_total: int | None = None
    org_offsets: tuple[int, int, int, int] = (0, 0, 0, 0)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _day(ts: str | pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).to_datetime64().astype("datetime64[D]").astype(np.int64))


def _to_dt(days: np.ndarray) -> np.ndarray:
    """int day numbers (NaN / <0 sentinel handled by caller) -> datetime64[ns]."""
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")


def _to_dt_nullable(days: np.ndarray, mask_null: np.ndarray) -> np.ndarray:
    out = _to_dt(np.where(mask_null, 0, days))
    out[mask_null] = np.datetime64("NaT")
    return out


def _choice(rng: np.random.Generator, probs: np.ndarray, u: np.ndarray | None = None, size: int | None = None):
    """Vectorised categorical draw. ``probs`` (k,) or (n, k) rows of probabilities (may sum < 1:
    the remainder maps to index k, i.e. "none")."""
    probs = np.asarray(probs, dtype=float)
    if u is None:
        u = rng.random(size if probs.ndim == 1 else probs.shape[0])
    cdf = np.cumsum(probs, axis=-1)
    if probs.ndim == 1:
        return np.searchsorted(cdf, u, side="right")
    return (u[:, None] >= cdf).sum(axis=1)


def _ids(prefix: str, n: int, width: int, offset: int = 0, total: int | None = None) -> np.ndarray:
    """``prefix`` + the numbers ``offset + 1 .. offset + n``, zero-padded to at least ``width`` digits
    and to the digits of ``total`` (default ``n``)."""
    w = max(width, len(str(n if total is None else total)))
    return np.array([f"{prefix}{i:0{w}d}" for i in range(offset + 1, offset + n + 1)], dtype=object)


def org_sizes(n_rms: int) -> tuple[int, int, int, int]:
    """Numbers of outlets, sub-branches, tier-2 and tier-1 branches of a bank with ``n_rms`` initial RMs."""
    n_outlets = max(1, round(n_rms / 2.5))
    n_sub = max(1, round(n_outlets / 2))
    n_t2 = max(1, round(n_sub / 2))
    n_t1 = max(1, round(n_t2 / 2))
    return n_outlets, n_sub, n_t2, n_t1


def n_rms_total(n_rms: int, rm_exit_share: float) -> int:
    """Rows of the ``rms`` table of a bank with ``n_rms`` initial RMs: the leavers' replacements added."""
    return n_rms + int(round(rm_exit_share * n_rms))


def _month_index(days: np.ndarray, month0: np.datetime64) -> np.ndarray:
    m = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
    return (m - month0).astype(np.int64)


def _group_cumsum(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` restarting for each consecutive group of sizes ``counts``."""
    cs = np.cumsum(x)
    starts = np.cumsum(counts) - counts
    base = np.zeros(len(counts))
    nz = counts > 0
    base[nz] = np.where(starts[nz] > 0, cs[np.maximum(starts[nz] - 1, 0)], 0.0)
    return cs - np.repeat(base, counts)


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="synth", unit="step")

    def step(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------------------------
# generate
# ----------------------------------------------------------------------------------------------
def generate(
    n_customers: int = 3000,
    n_rms: int = 40,
    start: str = "2022-01-01",
    end: str = "2024-12-31",
    seed: int = 20261122,
    progress: bool = False,
    history: str = "window",
    **truth_overrides: Any,
) -> SynthBank:
    """Generate a synthetic bank with known truth.

    Parameters
    ----------
    n_customers : number of customers emitted (alive at ``start`` or opened within the window)
    n_rms : number of RMs employed at ``start`` (replacements for leavers are added on top)
    start, end : observation window (ISO dates, inclusive)
    seed : master seed; each component draws from its own child stream (see ``COMPONENTS``)
    progress : show a tqdm progress bar
    history : ``"window"`` (default; transactions and activity only within ``[start, end]``) or
        ``"full"`` (transactions and activity from each customer's ``open_date``)
    **truth_overrides : any input field of :class:`Truth` (e.g. ``closure_log_hr={...}``)

    Returns
    -------
    SynthBank with ``tables`` (customers, transactions, balances, rms, assignments, rm_activity,
    kpi_targets, and unless ``relationship=False`` products, holdings, interactions, feedback,
    digital_activity; exactly the dtypes of :mod:`rmanalytics.contract`) and ``truth``. Same arguments
    give bit-identical tables.

    Notes
    -----
    ``truth.customers`` holds per-customer latent truth: ``customer_id, customer_type, lam``
    (purchases per week), ``p_dropout``, ``dropout_date`` (date of the purchase after which the
    customer became inactive; NaT if active at ``end``), ``nu``, ``mean_spend`` (= p/nu, currency),
    ``closure_lin`` (time-fixed log-hazard), ``rm_left_date`` (NaT: never), ``close_time_years``
    (simulated closure time since open, may exceed the window; with the link on, beyond ``end`` the
    last month's behaviour covariates are carried forward), ``first_rm_id``,
    ``disengage_start_date`` (start of the disengagement phase; NaT without dropout or link).

    A bank too large for memory is generated as independent sub-banks with disjoint identifiers,
    streamed to Parquet: :func:`rmanalytics.synth.shards.write_sharded` (``synth --shards K``).
    """
    return _generate(n_customers, n_rms, start, end, seed, progress, history, IdSpace(), True, truth_overrides)


def _generate(n_customers: int, n_rms: int, start: str, end: str, seed: int, progress: bool, history: str,
              ids: IdSpace, keep_hazard: bool, truth_overrides: dict[str, Any]) -> SynthBank:
    """:func:`generate` in the identifier space ``ids`` (a sub-bank); ``keep_hazard=False`` skips the
    in-memory ``hazard_covariates`` frame (nothing else changes)."""
    if history not in ("window", "full"):
        raise ValueError(f"history must be 'window' or 'full', got {history!r}")
    valid = {f.name for f in fields(Truth)} - {"seed", "n_customers", "n_rms", "start", "end", "history",
                                               "market_index", "rm_skill", "rm_exit_dates", "customers",
                                               "behaviour_summary", "window_dressing_rms", "rm_lax", "suitability"}
    bad = set(truth_overrides) - valid
    if bad:
        raise TypeError(f"unknown truth override(s): {sorted(bad)}; valid: {sorted(valid)}")
    truth = Truth(**truth_overrides)
    _check_behaviour_params(truth)
    truth.seed, truth.n_customers, truth.n_rms = int(seed), int(n_customers), int(n_rms)
    truth.start, truth.end, truth.history = str(pd.Timestamp(start).date()), str(pd.Timestamp(end).date()), history
    rngs = dict(zip(COMPONENTS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(COMPONENTS)))))
    prog = _Progress(progress, 10)

    start_day, end_day = _day(start), _day(end)
    hist_start_day = _day(pd.Timestamp(start) - pd.DateOffset(years=truth.open_years_before_start))
    month0 = np.datetime64(pd.Timestamp(hist_start_day, unit="D").strftime("%Y-%m"), "M")
    month_last = np.datetime64(pd.Timestamp(end).strftime("%Y-%m"), "M")
    n_months = int((month_last - month0).astype(np.int64)) + 1
    month_starts = (month0 + np.arange(n_months)).astype("datetime64[D]")
    start_month_idx = int((np.datetime64(pd.Timestamp(start).strftime("%Y-%m"), "M") - month0).astype(np.int64))

    # ---- market index (monthly; 1.0 at the start month)
    msince = np.arange(n_months) - start_month_idx
    market = np.exp(truth.market_trend_per_year * msince / 12.0
                    + truth.market_cycle_amplitude * np.sin(2 * np.pi * msince / truth.market_cycle_months))
    truth.market_index = pd.Series(market, index=pd.DatetimeIndex(month_starts.astype("datetime64[ns]")),
                                   name="market_index")

    # ---- RMs and org hierarchy
    rms_df, rm_outlet, rm_hire, rm_exit, org = _make_rms(rngs["rms"], n_rms, start_day, end_day, hist_start_day, truth,
                                                         ids)
    n_rm_total = len(rms_df)
    truth.rm_exit_dates = pd.Series(rms_df["exit_date"].values, index=rms_df["rm_id"].values, name="exit_date")
    prog.step("rms")

    # ---- customers (with left-truncation selection)
    cust = _make_customers(rngs["customers"], rngs["closure"], n_customers, start_day, end_day, hist_start_day,
                           rm_outlet, n_rms, truth, ids)
    n = len(cust["open"])
    prog.step("customers")

    # ---- assignments (before closure truncation) and rm_left dates
    asg = _make_assignments(rngs["assignments"], cust, rm_outlet, rm_hire, rm_exit, truth)
    prog.step("assignments")

    # ---- rm activity (dense RM x month grid) and fee multipliers
    act, M, skill = _make_activity(rngs["activity"], n_rm_total, n_months, market, truth)
    training, M = make_training(rngs["training"], M, rms_df["rm_id"].to_numpy(), rm_hire, rm_exit, month_starts,
                                start_month_idx, market, truth)  # known training effect (synth/training.py)
    truth.rm_skill = pd.Series(skill, index=rms_df["rm_id"].values, name="skill")
    prog.step("activity")

    # ---- purchases (every draw made before closure truncates them)
    pur = _simulate_purchases(rngs["bgnbd"], rngs["spend"], rngs["txn_attrs"], cust, end_day, truth)
    lam, pdrop, dropout_day, nu = pur["lam"], pur["pdrop"], pur["dropout_day"], pur["nu"]
    prog.step("purchases")

    # ---- closure: static Weibull PH + rm_left (+ behaviour when the link is on)
    s_years = np.where(np.isfinite(asg["rm_left_day"]), (asg["rm_left_day"] - cust["open"]) / DAYS_PER_YEAR, np.inf)
    linked = float(truth.behaviour_link) != 0.0
    bal, cov = None, None
    rel = None
    if truth.relationship:  # issue 14: contact-lapse and complaint hazard terms (from the window start)
        rel = _rel.latent(rngs["relationship"], cust, asg, len(rms_df), start_day, end_day, truth)
    if not linked:
        if rel is None:
            t_close = weibull_ph_invert(cust["E"], cust["lin"], truth.closure_shape, truth.closure_scale_years,
                                        s_years, truth.closure_log_hr["rm_left"])
        else:  # rm_left and the relationship steps together (exact piecewise inversion)
            t_close = weibull_ph_invert_steps(
                cust["E"], cust["lin"], truth.closure_shape, truth.closure_scale_years,
                *(np.concatenate(x) for x in zip((np.arange(n), s_years, np.full(n, truth.closure_log_hr["rm_left"])),
                                                 rel["steps"])))
    else:
        pur = _disengage_purchases(rngs["behaviour"], pur, truth)
        bal = _make_balances(rngs["balances"], cust, np.full(n, np.iinfo(np.int64).max), start_day, end_day,
                             month0, market, truth, log_shift=_withdrawal_shift(pur, cust, truth))
        cov = hazard_covariates(pur, bal, cust, start_day, end_day, truth)
        t_close = _linked_closure(cust, cov, s_years, start_day, truth,
                                  extra_steps=None if rel is None else rel["steps"])
    close_days_f = t_close * DAYS_PER_YEAR
    close_day = cust["open"] + np.maximum(1, np.ceil(np.where(np.isfinite(close_days_f), close_days_f, 0.0))
                                          ).astype(np.int64)
    closed = np.isfinite(close_days_f) & (close_day <= end_day)
    close_inf = np.where(closed, close_day, np.iinfo(np.int64).max)
    assert (close_day >= start_day).all()

    asg_df = _finish_assignments(asg, close_inf, cust["ids"], rms_df["rm_id"].to_numpy(), truth)
    prog.step("closure")

    # ---- transactions
    tx = _emit_transactions(pur, cust, close_days_f, close_inf, asg, M, month0, start_day, end_day, history, truth)
    prog.step("transactions")

    # ---- balances
    if bal is None:
        bal = _make_balances(rngs["balances"], cust, close_inf, start_day, end_day, month0, market, truth)
    else:
        bal = _truncate_balances(bal, close_inf)
    bal.pop("_day")
    bcounts = _behaviour_counts(pur, cust, close_inf, start_day, end_day) if linked else None
    truth.behaviour_summary = behaviour_summary_from_counts(bcounts) if linked else None
    dressers = add_balance_flows(rngs["balance_flows"], bal, asg["first_rm"], n_rms, truth)  # synth/flows.py
    truth.window_dressing_rms = rms_df["rm_id"].to_numpy()[dressers].tolist()
    prog.step("balances")

    # ---- emit tables
    type_names = np.array(["retail", "corporate"], dtype=object)
    customers = pd.DataFrame({
        "customer_id": cust["ids"],
        "open_date": _to_dt(cust["open"]),
        "close_date": _to_dt_nullable(close_day, ~closed),
        "customer_type": type_names[cust["corp"].astype(int)],
        "risk_level": cust["risk"].astype(np.int64),
        "industry": cust["industry"],
        "scenario": cust["scenario"],
        "branch_id": org["outlet_names"][cust["outlet"]],
        "acquisition_channel": cust["acq"],
    })
    act_first = start_month_idx if history == "window" else 0
    rm_activity = _emit_activity(act, rms_df, rm_hire, rm_exit, month_starts, act_first)
    kpi = _make_targets(rngs["targets"], rms_df, rm_hire, rm_exit, tx, asg, cust, start, end)
    prog.step("targets")

    rm_ids = rms_df["rm_id"].to_numpy()
    transactions = pd.DataFrame({
        "customer_id": cust["ids"][tx["cust"]],
        "date": _to_dt(tx["day"]),
        "amount": tx["amount"],
        "product_family": np.array(PRODUCT_FAMILIES, dtype=object)[tx["family"]],
        "channel": np.array(CHANNELS, dtype=object)[tx["channel"]],
        "fee": tx["fee"],
    })
    balances = pd.DataFrame({"customer_id": cust["ids"][bal.pop("cust")], **bal})
    truth.customers = pd.DataFrame({
        "customer_id": cust["ids"],
        "customer_type": customers["customer_type"].to_numpy(),
        "lam": lam,
        "p_dropout": pdrop,
        "dropout_date": _to_dt_nullable(np.where(np.isfinite(dropout_day), dropout_day, 0).astype(np.int64),
                                        ~np.isfinite(dropout_day)),
        "nu": nu,
        "mean_spend": np.where(cust["corp"], truth.gamma_gamma["corporate"]["p"],
                               truth.gamma_gamma["retail"]["p"]) / nu,
        "closure_lin": cust["lin"],
        "rm_left_date": _to_dt_nullable(np.where(np.isfinite(asg["rm_left_day"]), asg["rm_left_day"], 0)
                                        .astype(np.int64), ~np.isfinite(asg["rm_left_day"])),
        "close_time_years": t_close,
        "first_rm_id": rm_ids[asg["first_rm"]],
        "disengage_start_date": _to_dt_nullable(
            np.where(np.isfinite(pur["disengage_day"]), pur["disengage_day"], 0).astype(np.int64),
            ~np.isfinite(pur["disengage_day"])),
    })
    tables = {
        "customers": customers,
        "transactions": transactions,
        "balances": balances,
        "rms": rms_df,
        "assignments": asg_df,
        "rm_activity": rm_activity,
        "kpi_targets": kpi,
        "training": training,
    }
    if rel is not None:
        tables.update(_rel.emit(rngs["relationship_tables"], rel, cust, close_inf, start_day, end_day, rm_ids, truth))
    tables = {k: _conform(v, k) for k, v in tables.items()}
    prog.step("emit")
    prog.close()
    hz = None
    if cov is not None and keep_hazard:
        hz = pd.DataFrame({"customer_id": cust["ids"][cov["owner"]], "month_start": _to_dt(cov["month_start"]),
                           **{k: cov[k] for k in BEHAVIOUR_COVARIATES}})
    return SynthBank(tables=tables, truth=truth, hazard_covariates=hz, behaviour_counts=bcounts)


def _check_behaviour_params(truth: Truth) -> None:
    """Reject impossible behaviour-link parameters (one message naming every bad one)."""
    from rmanalytics.errors import ParameterError

    bad = []
    if not 0.0 <= truth.disengage_floor <= 1.0:
        bad.append(f"disengage_floor={truth.disengage_floor} (a probability, 0..1)")
    if not 0.0 <= truth.aum_withdrawal_share < 1.0:
        bad.append(f"aum_withdrawal_share={truth.aum_withdrawal_share} (a share, 0 <= x < 1)")
    for k in ("disengage_days", "aum_withdrawal_days", "silence_cap_days", "activity_recent_days",
              "activity_baseline_days", "aum_trend_months"):
        if getattr(truth, k) <= 0:
            bad.append(f"{k}={getattr(truth, k)} (must be > 0)")
    missing = set(BEHAVIOUR_COVARIATES) - set(truth.closure_behaviour_log_hr) | (
        set(BEHAVIOUR_COVARIATES) - set(truth.closure_behaviour_ref))
    if missing:
        bad.append(f"closure_behaviour_log_hr / closure_behaviour_ref lack {sorted(missing)}")
    if bad:
        raise ParameterError("synthetic bank: impossible behaviour-link parameters: " + "; ".join(bad))


def _conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Check column order and cast any column whose dtype differs from the contract (no copy when
    the frame already conforms, which is the normal case)."""
    spec = TABLES[table]
    if list(df.columns) != spec.column_names:
        df = df[spec.column_names]
    want = {"str": np.dtype(object), "int": np.dtype(np.int64), "float": np.dtype(np.float64),
            "date": np.dtype("datetime64[ns]"), "bool": np.dtype(bool)}
    fix = {c.name: want[c.dtype] for c in spec.columns
           if df[c.name].dtype != want[c.dtype] and not (c.nullable and str(df[c.name].dtype) == "Int64")}
    if fix:
        df = df.astype(fix)
    return df


# ----------------------------------------------------------------------------------------------
# components
# ----------------------------------------------------------------------------------------------
def _make_rms(rng, n_rms, start_day, end_day, hist_start_day, truth, ids: IdSpace = IdSpace()):
    n_outlets, n_sub, n_t2, n_t1 = org_sizes(n_rms)
    oo, so, t2o, t1o = ids.org_offsets
    outlet_names = np.array([f"OL-{oo + j + 1:03d}" for j in range(n_outlets)], dtype=object)
    sub_of_outlet = np.arange(n_outlets) * n_sub // n_outlets
    t2_of_sub = np.arange(n_sub) * n_t2 // n_sub
    t1_of_t2 = np.arange(n_t2) * n_t1 // n_t2
    sub_names = np.array([f"SB-{so + k + 1:02d}" for k in range(n_sub)], dtype=object)
    t2_names = np.array([f"T2-{t2o + k + 1:02d}" for k in range(n_t2)], dtype=object)
    t1_names = np.array([f"T1-{t1o + k + 1:02d}" for k in range(n_t1)], dtype=object)

    outlet = np.arange(n_rms) % n_outlets
    hire = rng.integers(hist_start_day - 10 * 365, hist_start_day - 30, size=n_rms)
    level = _choice(rng, np.array(truth.rm_level_probs), size=n_rms)
    n_exit = int(round(truth.rm_exit_share * n_rms))
    exit_ = np.full(n_rms, np.iinfo(np.int64).max, dtype=np.int64)
    leavers = np.sort(rng.choice(n_rms, size=n_exit, replace=False))
    exit_[leavers] = rng.integers(start_day + 30, end_day - 30, size=n_exit)
    # replacements: same outlet, hired 0-60 days before the leaver's exit, never leave
    r_outlet = outlet[leavers]
    r_hire = exit_[leavers] - rng.integers(0, 61, size=n_exit)
    r_level = _choice(rng, np.array([0.8, 0.2, 0.0]), size=n_exit)
    outlet = np.concatenate([outlet, r_outlet])
    hire = np.concatenate([hire, r_hire]).astype(np.int64)
    exit_ = np.concatenate([exit_, np.full(n_exit, np.iinfo(np.int64).max, dtype=np.int64)])
    level = np.concatenate([level, r_level])
    n_tot = n_rms + n_exit
    employed_end = exit_ == np.iinfo(np.int64).max
    sub = sub_of_outlet[outlet]
    t2 = t2_of_sub[sub]
    rms_df = pd.DataFrame({
        "rm_id": _ids("R", n_tot, 4, ids.rm_offset, ids.rm_total),
        "outlet": outlet_names[outlet],
        "sub_branch": sub_names[sub],
        "tier2_branch": t2_names[t2],
        "tier1_branch": t1_names[t1_of_t2[t2]],
        "hire_date": _to_dt(hire),
        "exit_date": _to_dt_nullable(exit_, employed_end),
        "level": np.array(RM_LEVELS, dtype=object)[level],
    })
    org = {"outlet_names": outlet_names}
    return rms_df, outlet, hire, exit_, org


def _make_customers(rng, rng_close, n_customers, start_day, end_day, hist_start_day, rm_outlet, n_rms, truth,
                    ids: IdSpace = IdSpace()):
    n_outlets = int(rm_outlet.max()) + 1
    outlet_w = np.bincount(rm_outlet[:n_rms], minlength=n_outlets).astype(float)
    outlet_w /= outlet_w.sum()
    lh = truth.closure_log_hr
    parts: list[dict] = []
    got = 0
    while got < n_customers:
        m = int((n_customers - got) / 0.75) + 64
        open_ = rng.integers(hist_start_day, end_day + 1, size=m)
        corp = rng.random(m) < truth.corporate_share
        risk = _choice(rng, np.array(truth.risk_level_probs), size=m) + 1
        sc_names, sc_p = _cat_probs(truth.scenario_probs, corp)
        scen = _choice(rng, sc_p)
        in_names, in_p = _cat_probs(truth.industry_probs, corp)
        ind = _choice(rng, in_p)
        ac_names, ac_p = _cat_probs(truth.acquisition_channel_probs, corp)
        acq = _choice(rng, ac_p)
        outlet = _choice(rng, outlet_w, size=m)
        lin = (lh["corporate"] * corp + lh["risk_level"] * (risk - truth.closure_risk_center)
               + lh["cross_border_ecommerce"] * (sc_names[np.minimum(scen, len(sc_names) - 1)]
                                                 == "cross_border_ecommerce") * (scen < len(sc_names)))
        E = rng_close.exponential(1.0, size=m)
        # closure before start can only happen with rm_left = 0 (RMs leave inside the window)
        t0 = weibull_ph_invert(E, lin, truth.closure_shape, truth.closure_scale_years)
        close0 = open_ + np.maximum(1, np.ceil(t0 * DAYS_PER_YEAR)).astype(np.int64)
        keep = close0 >= start_day
        parts.append(dict(open=open_[keep], corp=corp[keep], risk=risk[keep],
                          scenario=_names_or_none(sc_names, scen[keep]), industry=_names_or_none(in_names, ind[keep]),
                          acq=_names_or_none(ac_names, acq[keep]), outlet=outlet[keep], lin=lin[keep], E=E[keep]))
        got += int(keep.sum())
    cust = {k: np.concatenate([p[k] for p in parts])[:n_customers] for k in parts[0]}
    order = np.argsort(cust["open"], kind="stable")
    cust = {k: v[order] for k, v in cust.items()}
    cust["ids"] = _ids("C", n_customers, 7, ids.customer_offset, ids.customer_total)
    return cust


def _cat_probs(spec: dict, corp: np.ndarray):
    """Category names (union over types) and per-row probability matrix (n, k)."""
    names = []
    for t in ("retail", "corporate"):
        for k in spec.get(t, {}):
            if k not in names:
                names.append(k)
    P = np.zeros((len(corp), len(names)))
    for t, mask in (("retail", ~corp), ("corporate", corp)):
        probs = spec.get(t, {})
        for j, k in enumerate(names):
            P[mask, j] = probs.get(k, 0.0)
    return np.array(names, dtype=object), P


def _names_or_none(names: np.ndarray, idx: np.ndarray) -> np.ndarray:
    ext = np.concatenate([names, np.array([None], dtype=object)])
    return ext[np.minimum(idx, len(names))]


def _make_assignments(rng, cust, rm_outlet, rm_hire, rm_exit, truth):
    n = len(cust["open"])
    big = np.iinfo(np.int64).max
    prim = np.full(n, -1, dtype=np.int64)
    sec = np.full(n, -1, dtype=np.int64)
    prim_start = cust["open"].copy()
    rm_left = np.full(n, np.inf)
    rows: list[tuple[np.ndarray, ...]] = []  # (cust, rm, start, end, share)
    share_p, share_s = truth.shared_split
    want_share = cust["corp"] & (rng.random(n) < truth.shared_share)
    u_prim = rng.random(n)
    u_sec = rng.random(n)
    order = np.argsort(cust["outlet"], kind="stable")
    bounds = np.searchsorted(cust["outlet"][order], np.arange(int(rm_outlet.max()) + 2))
    for o in range(int(rm_outlet.max()) + 1):
        idx = order[bounds[o]:bounds[o + 1]]
        if len(idx) == 0:
            continue
        rms_o = np.flatnonzero(rm_outlet == o)
        op = cust["open"][idx]
        elig = (rm_hire[rms_o][None, :] <= op[:, None]) & (op[:, None] < rm_exit[rms_o][None, :])
        if not elig.any(axis=1).all():
            raise RuntimeError(f"outlet {o}: no RM employed for some customers")
        k = _pick(elig, u_prim[idx])
        prim[idx] = rms_o[k]
        # secondary: another RM of the outlet, employed at open, who never leaves
        elig2 = elig & (rm_exit[rms_o][None, :] == big) & (np.arange(len(rms_o))[None, :] != k[:, None])
        can = want_share[idx] & elig2.any(axis=1)
        if can.any():
            k2 = _pick(elig2[can], u_sec[idx][can])
            sec[idx[can]] = rms_o[k2]
        # RM exits in this outlet, in date order
        for e in rms_o[np.argsort(rm_exit[rms_o], kind="stable")]:
            d = rm_exit[e]
            if d == big:
                break
            hit = idx[prim[idx] == e]
            if len(hit) == 0:
                continue
            shared = sec[hit] >= 0
            rows.append((hit, np.full(len(hit), e), prim_start[hit], np.full(len(hit), d),
                         np.where(shared, share_p, 1.0)))
            rm_left[hit] = np.minimum(rm_left[hit], d)
            cand = (rm_hire[rms_o] <= d) & (d < rm_exit[rms_o]) & (rms_o != e)
            elig_h = np.broadcast_to(cand, (len(hit), len(rms_o))) & (rms_o[None, :] != sec[hit][:, None])
            ok = elig_h.any(axis=1)
            newp = np.full(len(hit), -1, dtype=np.int64)
            if ok.any():
                newp[ok] = rms_o[_pick(elig_h[ok], rng.random(int(ok.sum())))]
            # no RM left but the secondary: the secondary becomes the sole RM (share 1)
            merge = ~ok
            if merge.any():
                hm = hit[merge]
                rows.append((hm, sec[hm], cust["open"][hm], np.full(len(hm), d), np.full(len(hm), share_s)))
                newp[merge] = sec[hm]
                sec[hm] = -1
            prim[hit] = newp
            prim_start[hit] = d
    first_rm = np.full(n, -1, dtype=np.int64)
    # first RM: the primary at open = RM of the earliest row, or the current primary if no exit row
    first_rm[:] = prim
    for c, rm_, s_, e_, sh in rows:
        is_first = (s_ == cust["open"][c]) & (sh >= 0.5)
        first_rm[c[is_first]] = rm_[is_first]
    has_sec = sec >= 0
    rows.append((np.arange(n), prim, prim_start, np.full(n, big), np.where(has_sec, share_p, 1.0)))
    hs = np.flatnonzero(has_sec)
    rows.append((hs, sec[hs], cust["open"][hs], np.full(len(hs), big), np.full(len(hs), share_s)))
    cols = [np.concatenate([r[i] for r in rows]) for i in range(5)]
    return {"cust": cols[0].astype(np.int64), "rm": cols[1].astype(np.int64), "start": cols[2].astype(np.int64),
            "end": cols[3].astype(np.int64), "share": cols[4].astype(float), "rm_left_day": rm_left,
            "first_rm": first_rm}


def _pick(elig: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Uniform choice of a True column per row of ``elig`` using uniforms ``u``."""
    cnt = elig.sum(axis=1)
    j = np.minimum((u * cnt).astype(np.int64), cnt - 1)
    csum = np.cumsum(elig, axis=1)
    return (csum <= j[:, None]).sum(axis=1)


def _finish_assignments(asg, close_inf, ids, rm_ids, truth):
    c = asg["cust"]
    keep = asg["start"] < close_inf[c]
    for k in ("cust", "rm", "start", "end", "share"):
        asg[k] = asg[k][keep]
    asg["end"] = np.minimum(asg["end"], close_inf[asg["cust"]])
    big = np.iinfo(np.int64).max
    order = np.lexsort((-asg["share"], asg["start"], asg["cust"]))
    for k in ("cust", "rm", "start", "end", "share"):
        asg[k] = asg[k][order]
    return pd.DataFrame({
        "customer_id": ids[asg["cust"]],
        "rm_id": rm_ids[asg["rm"]],
        "start_date": _to_dt(asg["start"]),
        "end_date": _to_dt_nullable(asg["end"], asg["end"] == big),
        "share": asg["share"],
    })


def _make_activity(rng, n_rm, n_months, market, truth):
    am, sd = truth.activity_means, truth.activity_sds
    shape = (n_rm, n_months)
    v_level = rng.gamma(25.0, am["visits"] / 25.0, size=n_rm)
    cs_level = rng.gamma(16.0, am["cross_sell_offers"] / 16.0, size=n_rm)
    mu_d = rng.beta(6.0, 4.0, size=n_rm) * (am["digital_usage"] / 0.6)
    mu_d = np.clip(mu_d, 0.01, 0.99)
    skill = rng.normal(0.0, truth.skill_sd, size=n_rm)
    visits = rng.poisson(np.repeat(v_level[:, None], n_months, axis=1))
    calls = rng.poisson(truth.calls_per_visit * visits + truth.calls_base)
    cross = rng.poisson(np.repeat(cs_level[:, None], n_months, axis=1))
    kappa = 30.0
    digital = rng.beta(kappa * mu_d[:, None] * np.ones(shape), kappa * (1 - mu_d[:, None]) * np.ones(shape))
    z = {
        "visits": (visits - am["visits"]) / sd["visits"],
        "cross_sell_offers": (cross - am["cross_sell_offers"]) / sd["cross_sell_offers"],
        "digital_usage": (digital - am["digital_usage"]) / sd["digital_usage"],
        "calls": (calls - am["calls"]) / sd["calls"],
    }
    lin = skill[:, None] + sum(truth.driver_betas.get(k, 0.0) * z[k] for k in z)
    M = market[None, :] * np.exp(lin)
    # other indicators
    visits_required = np.repeat(np.maximum(8, np.round(0.9 * v_level)).astype(np.int64)[:, None], n_months, axis=1)
    complaints = rng.poisson(0.3, size=shape)
    nps_resp = rng.poisson(8.0, size=shape)
    p_prom = np.clip(0.45 + 0.5 * skill, 0.05, 0.95)[:, None] * np.ones(shape)
    prom = rng.binomial(nps_resp, p_prom)
    det = rng.binomial(nps_resp - prom, 0.35)
    checks = rng.poisson(10.0, size=shape)
    passed = rng.binomial(checks, 0.95)
    minor = rng.binomial(checks - passed, 0.5)
    major = (rng.random(shape) < 0.01 / 3).astype(np.int64)  # ~1% of RM-quarters
    training = rng.normal(78.0, 9.0, size=shape).clip(0, 100)
    alert = rng.gamma(4.0, 6.0, size=shape)
    alert_null = rng.random(shape) < 0.10
    referrals = rng.poisson(0.5, size=shape)
    act = dict(visits=visits, visits_required=visits_required, calls=calls, cross_sell_offers=cross,
               digital_usage=digital, training_score=training, complaints=complaints, nps_responses=nps_resp,
               nps_promoters=prom, nps_detractors=det, compliance_checks=checks, compliance_passed=passed,
               compliance_breaches=minor, major_breaches=major, alert_response_hours=alert, referrals=referrals,
               _alert_null=alert_null)
    return act, M, skill


def _emit_activity(act, rms_df, rm_hire, rm_exit, month_starts, first_month):
    n_rm, n_months = act["visits"].shape
    ms = month_starts.astype(np.int64)
    me = np.concatenate([ms[1:], [ms[-1] + 31]]) - 1  # approx for the last month: only used for hire check
    r, m = np.meshgrid(np.arange(n_rm), np.arange(n_months), indexing="ij")
    employed = (rm_hire[:, None] <= me[None, :]) & (rm_exit[:, None] > ms[None, :]) & (m >= first_month)
    r, m = r[employed], m[employed]
    cols = {"rm_id": rms_df["rm_id"].to_numpy()[r], "period": _to_dt(ms[m])}
    quarter_end = (month_starts.astype("datetime64[M]").astype(np.int64) % 3) == 2
    for k, v in act.items():
        if k.startswith("_"):
            continue
        cols[k] = v[r, m]
    cols["training_score"] = np.where(quarter_end[m], cols["training_score"], np.nan)  # exams quarterly
    cols["alert_response_hours"] = np.where(act["_alert_null"][r, m], np.nan, cols["alert_response_hours"])
    return pd.DataFrame(cols)


def _simulate_purchases(rng_b, rng_s, rng_a, cust, end_day, truth):
    """Every BG/NBD purchase of every customer from ``open_date`` to ``end`` with its amount, family,
    channel and refund draw (all random draws happen here, before any truncation). Arrays per
    purchase: ``owner, t_days`` (days since open, continuous), ``day``, ``amount, fam, chan, refund,
    lag``; per customer: ``lam, pdrop, dropout_day`` (day of the dropout purchase, inf if alive at
    end), ``dropout_t`` (days since open), ``nu``, ``disengage_day`` (inf: none; set by
    :func:`_disengage_purchases`)."""
    n = len(cust["open"])
    corp = cust["corp"]
    g = {k: np.where(corp, truth.bgnbd["corporate"][k], truth.bgnbd["retail"][k]) for k in ("r", "alpha", "a", "b")}
    lam = rng_b.gamma(g["r"], 1.0 / g["alpha"])
    pdrop = rng_b.beta(g["a"], g["b"])
    T_weeks = (end_day + 1 - cust["open"]) / DAYS_PER_WEEK
    res = bgnbd_core(lam, pdrop, T_weeks, rng_b, with_times=True)
    dropout_day = np.where(np.isfinite(res["dropout_time"]),
                           cust["open"] + np.floor(np.where(np.isfinite(res["dropout_time"]), res["dropout_time"], 0)
                                                   * DAYS_PER_WEEK), np.inf)
    owner = np.concatenate([np.arange(n), res["owner"]])
    t_days = np.concatenate([np.zeros(n), res["times"] * DAYS_PER_WEEK])
    order = np.lexsort((t_days, owner))
    owner, t_days = owner[order], t_days[order]
    m_all = len(owner)
    # spend (Gamma-Gamma): drawn for every simulated purchase, before any filtering
    gg = {k: np.where(corp, truth.gamma_gamma["corporate"][k], truth.gamma_gamma["retail"][k])
          for k in ("p", "q", "gamma")}
    nu = rng_s.gamma(gg["q"], 1.0 / gg["gamma"])
    amount = rng_s.gamma(gg["p"][owner], 1.0) / nu[owner]
    # attributes and refunds, drawn for every simulated purchase
    fam_p = np.array([[truth.product_family_probs[t].get(f, 0.0) for f in PRODUCT_FAMILIES]
                      for t in ("retail", "corporate")])
    ch_p = np.array([[truth.channel_probs[t].get(c, 0.0) for c in CHANNELS] for t in ("retail", "corporate")])
    fam_p /= fam_p.sum(axis=1, keepdims=True)
    ch_p /= ch_p.sum(axis=1, keepdims=True)
    ctype = corp[owner].astype(int)
    u1, u2 = rng_a.random(m_all), rng_a.random(m_all)
    fam = np.empty(m_all, dtype=np.int64)
    chan = np.empty(m_all, dtype=np.int64)
    for ti in (0, 1):  # per customer type: inverse-CDF lookup (same as _choice, without an (n, k) matrix)
        mt = ctype == ti
        fam[mt] = np.searchsorted(np.cumsum(fam_p[ti]), u1[mt], side="right")
        chan[mt] = np.searchsorted(np.cumsum(ch_p[ti]), u2[mt], side="right")
    fam = np.minimum(fam, len(PRODUCT_FAMILIES) - 1)
    chan = np.minimum(chan, len(CHANNELS) - 1)
    refund = rng_a.random(m_all) < truth.refund_share
    lag = rng_a.integers(1, truth.refund_max_lag_days + 1, size=m_all)

    day = cust["open"][owner] + np.floor(t_days).astype(np.int64)
    return {"owner": owner, "t_days": t_days, "day": day, "amount": amount, "fam": fam, "chan": chan,
            "refund": refund, "lag": lag, "lam": lam, "pdrop": pdrop, "dropout_day": dropout_day,
            "dropout_t": res["dropout_time"] * DAYS_PER_WEEK, "nu": nu, "disengage_day": np.full(n, np.inf)}


def _emit_transactions(pur, cust, close_days_f, close_inf, asg, M, month0, start_day, end_day, history, truth):
    """Transactions rows from the simulated purchases: stop at closure, window filter, fees of the
    primary RM, refunds."""
    owner, t_days, day, amount = pur["owner"], pur["t_days"], pur["day"], pur["amount"]
    fam, chan, refund, lag = pur["fam"], pur["chan"], pur["refund"], pur["lag"]
    m_all = len(owner)
    keep = np.ones(m_all, dtype=bool)
    if truth.closure_stops_transactions:
        keep &= t_days < close_days_f[owner]
    if history == "window":
        keep &= day >= start_day
    # fee multiplier of the primary RM on the purchase date
    prim_mask = asg["share"] >= 0.5
    pc, pr, ps = asg["cust"][prim_mask], asg["rm"][prim_mask], asg["start"][prim_mask]
    pord = np.lexsort((ps, pc))
    pc, pr, ps = pc[pord], pr[pord], ps[pord]
    SH = 1 << 20  # day numbers < 2**20 until year 4840
    key_int = pc * SH + ps
    tkey = owner * SH + day
    pos = np.searchsorted(key_int, tkey, side="right") - 1
    rm_at = pr[pos]
    if not (pc[pos] == owner).all():
        raise RuntimeError("internal: transaction before the customer's first assignment")
    mon = _month_index(day, month0)
    rate = np.array([truth.fee_base_rate[f] for f in PRODUCT_FAMILIES])[fam]
    fee = amount * rate * M[rm_at, mon]

    sel = np.flatnonzero(keep)
    rf = sel[refund[sel]]
    rday = day[rf] + lag[rf]
    okr = (rday <= end_day) & (rday <= close_inf[owner[rf]])
    rf, rday = rf[okr], rday[okr]
    tx = {
        "cust": np.concatenate([owner[sel], owner[rf]]),
        "day": np.concatenate([day[sel], rday]),
        "t": np.concatenate([t_days[sel], rday - cust["open"][owner[rf]] + 0.5]),
        "amount": np.concatenate([amount[sel], -amount[rf]]),
        "family": np.concatenate([fam[sel], fam[rf]]),
        "channel": np.concatenate([chan[sel], chan[rf]]),
        "fee": np.concatenate([fee[sel], np.zeros(len(rf))]),
        "rm": np.concatenate([rm_at[sel], rm_at[rf]]),
    }
    o = np.lexsort((tx["t"], tx["cust"]))
    return {k: v[o] for k, v in tx.items()}


def _make_balances(rng, cust, close_inf, start_day, end_day, month0, market, truth, log_shift=None):
    """Month-end snapshots from the first month end >= open (and >= start) to the last one before
    closure. ``log_shift(cust_index, day)``: optional shift added to log AUM (AUM withdrawal)."""
    n = len(cust["open"])
    corp = cust["corp"]
    first_m = np.datetime64(pd.Timestamp(start_day, unit="D").strftime("%Y-%m"), "M")
    last_m = np.datetime64(pd.Timestamp(end_day, unit="D").strftime("%Y-%m"), "M")
    months = np.arange(first_m, last_m + 1)
    month_end = ((months + 1).astype("datetime64[D]") - 1).astype(np.int64)
    valid_m = month_end <= end_day
    months, month_end = months[valid_m], month_end[valid_m]
    # per customer: first snapshot = first month end >= open; last = last month end < close
    fi = np.searchsorted(month_end, cust["open"], side="left")
    li = np.searchsorted(month_end, np.minimum(close_inf, end_day + 1), side="left") - 1
    cnt = np.maximum(li - fi + 1, 0)
    c = np.repeat(np.arange(n), cnt)
    within = np.arange(len(c)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    mi = np.repeat(fi, cnt) + within
    mkt = market[(months[mi] - month0).astype(np.int64)]
    base = np.exp(rng.normal(np.where(corp, truth.aum_log_mean["corporate"], truth.aum_log_mean["retail"]),
                             np.where(corp, truth.aum_log_sd["corporate"], truth.aum_log_sd["retail"])))
    rw = _group_cumsum(rng.normal(0.0, truth.aum_monthly_rw_sd, size=len(c)), cnt)
    day_b = month_end[mi]
    shift = 0.0 if log_shift is None else log_shift(c, day_b)
    aum = base[c] * mkt * np.exp(rw + shift)
    dep_share = np.where(corp, rng.beta(3.0, 3.0, size=n), rng.beta(4.0, 3.0, size=n))
    deposits = aum * dep_share[c]
    has_loan = rng.random(n) < np.where(corp, truth.loan_share_customers["corporate"],
                                        truth.loan_share_customers["retail"])
    loan_base = np.exp(rng.normal(np.where(corp, 14.5, 12.0), 0.8)) * has_loan
    loan_rw = _group_cumsum(rng.normal(-0.005, 0.02, size=len(c)), cnt)
    loans = loan_base[c] * np.exp(loan_rw)
    strat = np.where(rng.random(n) < np.where(corp, 0.4, 0.1), rng.beta(2.0, 3.0, size=n), 0.0)
    npl_flag = has_loan & (rng.random(n) < truth.npl_share_borrowers)
    npl_from = rng.integers(0, max(len(months), 1), size=n)
    npl_frac = rng.beta(2.0, 2.0, size=n)
    npl = np.where(npl_flag[c] & (mi >= npl_from[c]), loans * npl_frac[c], 0.0)
    n_prod = np.where(corp, 2 + rng.binomial(6, 0.35, size=n), 1 + rng.binomial(7, 0.15, size=n))
    n_prod = np.minimum(n_prod + has_loan, 8)
    return {
        "cust": c,
        "snapshot_date": _to_dt(month_end[mi]),
        "aum": aum,
        "deposits": deposits,
        "loans": loans,
        "loans_strategic": loans * strat[c],
        "npl": npl,
        "n_products": n_prod[c].astype(np.int64),
        "_day": day_b,
    }


# ----------------------------------------------------------------------------------------------
# behaviour link: disengagement before dropout, AUM withdrawal, behaviour covariates, closure
# ----------------------------------------------------------------------------------------------
def _disengage_purchases(rng, pur, truth):
    """Thin the repeat purchases in the ``disengage_days`` before each dropout purchase: a purchase
    at ``u`` days before the dropout is kept with probability ``floor + (1 - floor) * u / W`` (the
    purchase rate falls linearly from ``lam`` to ``floor * lam``). The first purchase (on open) and
    the dropout purchase itself are kept, so ``dropout_date`` keeps its meaning. Sets
    ``disengage_day`` = dropout day - W for dropouts (inf otherwise)."""
    W = float(truth.disengage_days)
    owner, t = pur["owner"], pur["t_days"]
    d = pur["dropout_t"][owner]
    u = d - t  # days before the dropout purchase
    inside = np.isfinite(d) & (u > 1e-9) & (u < W) & (t > 0)
    keep_p = truth.disengage_floor + (1.0 - truth.disengage_floor) * np.clip(u / W, 0.0, 1.0)
    keep = ~inside | (rng.random(len(owner)) < keep_p)
    out = {k: (v[keep] if k in _PURCHASE_KEYS else v) for k, v in pur.items()}
    out["disengage_day"] = np.where(np.isfinite(pur["dropout_day"]), pur["dropout_day"] - W, np.inf)
    return out


_PURCHASE_KEYS = ("owner", "t_days", "day", "amount", "fam", "chan", "refund", "lag")


def _withdrawal_shift(pur, cust, truth):
    """Log-AUM shift of a snapshot on ``day``: 0 before the disengagement start, then falling
    linearly to ``log(1 - aum_withdrawal_share)`` over ``aum_withdrawal_days`` (and staying there)."""
    start = pur["disengage_day"]
    total = math.log(1.0 - truth.aum_withdrawal_share)
    span = float(truth.aum_withdrawal_days)

    def shift(c: np.ndarray, day: np.ndarray) -> np.ndarray:
        s0 = start[c]
        frac = np.where(np.isfinite(s0), np.clip((day - np.where(np.isfinite(s0), s0, 0.0)) / span, 0.0, 1.0), 0.0)
        return total * frac

    return shift


def hazard_covariates(pur, bal, cust, start_day, end_day, truth) -> dict[str, np.ndarray]:
    """The behaviour covariates of the closure hazard, per customer and calendar month of the window.

    One row per customer ``i`` and month ``j`` (``tau_j`` = its first day) in which the customer is
    open (``open_i < tau_{j+1}``), evaluated on day ``e = max(tau_j, open_i)`` from purchases
    (``day < e``; every purchase, the first one on open included, refunds not) and month-end AUM
    snapshots strictly before ``e``:

    - ``months_since_purchase = min(e - last purchase day, silence_cap_days) / 30`` (the open day
      counts as a purchase day);
    - ``activity_change = log((n_recent + 1) / (rate * recent_days + 1))``: ``n_recent`` purchases
      in ``[e - recent_days, e)`` against the customer's baseline rate (purchases per day) over
      ``[max(e - recent_days - baseline_days, open), e - recent_days)``; 0 when that baseline spans
      fewer than ``activity_min_exposure_days`` days;
    - ``aum_trend = log(AUM[j-1]) - log(AUM[max(j-1-aum_trend_months, first)])``: the log change of
      month-end AUM over ``aum_trend_months`` months (fewer when the customer's snapshots start
      later; 0 with fewer than two snapshots).

    Returns arrays ``owner, month_start, eval_day`` (day numbers) and the three covariates.
    """
    n = len(cust["open"])
    first_m = np.datetime64(pd.Timestamp(start_day, unit="D").strftime("%Y-%m"), "M")
    last_m = np.datetime64(pd.Timestamp(end_day, unit="D").strftime("%Y-%m"), "M")
    months = np.arange(first_m, last_m + 1)
    tau = months.astype("datetime64[D]").astype(np.int64)
    tau_next = (months + 1).astype("datetime64[D]").astype(np.int64)
    opened = cust["open"]
    jj, ii = np.meshgrid(np.arange(len(months)), np.arange(n))
    m = opened[ii] < tau_next[jj]
    ii, jj = ii[m], jj[m]
    e = np.maximum(tau[jj], opened[ii])
    # purchases sorted by (owner, day)
    SH = 1 << 20
    key = np.sort(pur["owner"].astype(np.int64) * SH + pur["day"])

    def count_before(day):
        return np.searchsorted(key, ii * SH + day, side="left")

    pos = count_before(e) - 1
    has = (pos >= 0) & ((key[np.maximum(pos, 0)] // SH) == ii)
    last = np.where(has, key[np.maximum(pos, 0)] % SH, opened[ii])
    last = np.maximum(last, opened[ii])
    msp = np.minimum(e - last, truth.silence_cap_days) / 30.0
    rd, bd = int(truth.activity_recent_days), int(truth.activity_baseline_days)
    n_recent = count_before(e) - count_before(e - rd)
    b0 = np.maximum(e - rd - bd, opened[ii])
    expo = (e - rd) - b0
    n_base = count_before(e - rd) - count_before(np.minimum(b0, e - rd))
    ok = expo >= truth.activity_min_exposure_days
    rate = np.where(ok, n_base / np.maximum(expo, 1), 0.0)
    act = np.where(ok, np.log((n_recent + 1.0) / (rate * rd + 1.0)), 0.0)
    # AUM: dense customer x month matrix of log AUM (NaN: no snapshot)
    bm = _month_index(bal["_day"], first_m)
    la = np.full((n, len(months)), np.nan)
    la[bal["cust"], bm] = np.log(bal["aum"])
    prev = jj - 1
    kmax = int(truth.aum_trend_months)
    trend = np.zeros(len(ii))
    okp = prev >= 0
    last_a = np.full(len(ii), np.nan)
    last_a[okp] = la[ii[okp], prev[okp]]
    ref = np.full(len(ii), np.nan)
    for k in range(kmax, 0, -1):  # earliest existing snapshot in months prev-kmax .. prev-1
        q = prev - k
        okq = (q >= 0) & np.isnan(ref)
        ref[okq] = la[ii[okq], q[okq]]
    good = np.isfinite(last_a) & np.isfinite(ref)
    trend[good] = last_a[good] - ref[good]
    return {"owner": ii, "month_start": tau[jj], "month_next": tau_next[jj], "eval_day": e,
            "months_since_purchase": msp, "activity_change": act, "aum_trend": trend}


BEHAVIOUR_COVARIATES = ("months_since_purchase", "activity_change", "aum_trend")


def _linked_closure(cust, cov, s_years, start_day, truth, extra_steps=None):
    """Closure times (years since open) under the static + rm_left + behaviour hazard.

    Before ``start`` the hazard is the static one (as in the independent world, so the
    left-truncation selection of :func:`_make_customers` stays exact); from ``start`` it is
    multiplied month by month by ``exp(link * sum_k beta_k * (x_k - ref_k))`` with the covariates of
    :func:`hazard_covariates`, and by ``exp(beta_rm_left)`` from the RM exit. After the last
    month of the window the covariates of that month are carried forward.
    """
    opened = cust["open"]
    n = len(opened)
    t_start = np.maximum(start_day - opened, 0) / DAYS_PER_YEAR
    H0 = lambda t: np.power(t / truth.closure_scale_years, truth.closure_shape)  # noqa: E731
    R = cust["E"] - np.exp(cust["lin"]) * H0(t_start)
    o = cov["owner"]
    a = (np.maximum(np.maximum(cov["month_start"], opened[o]), start_day) - opened[o]) / DAYS_PER_YEAR
    b = (cov["month_next"] - opened[o]) / DAYS_PER_YEAR
    last = np.r_[o[1:] != o[:-1], True]
    b = np.where(last, np.inf, b)
    beh = sum(truth.closure_behaviour_log_hr[k] * (cov[k] - truth.closure_behaviour_ref[k])
              for k in BEHAVIOUR_COVARIATES) * float(truth.behaviour_link)
    s = s_years[o]
    split = (s > a) & (s < b)
    # rows [a, b) split at the RM exit into [a, s) and [s, b)
    o2 = np.concatenate([o, o[split]])
    a2 = np.concatenate([a, s[split]])
    b2 = np.concatenate([np.where(split, s, b), b[split]])
    beh2 = np.concatenate([beh, beh[split]])
    order = np.lexsort((a2, o2))
    o2, a2, b2, beh2 = o2[order], a2[order], b2[order], beh2[order]
    logm = cust["lin"][o2] + truth.closure_log_hr["rm_left"] * (a2 >= s_years[o2]) + beh2
    if not np.array_equal(np.unique(o2), np.arange(n)):
        raise RuntimeError("internal: a customer has no closure segment")
    if extra_steps is not None:  # the relationship hazard terms (issue 14), as extra log-hazard steps
        o2, a2, b2, logm = split_segments_at_steps(o2, a2, b2, logm, *extra_steps)
    return piecewise_ph_invert(R, o2, a2, b2, logm, truth.closure_shape, truth.closure_scale_years)


def _truncate_balances(bal, close_inf):
    keep = bal["_day"] < close_inf[bal["cust"]]
    return {k: v[keep] for k, v in bal.items()}


def _behaviour_counts(pur, cust, close_inf, start_day, end_day) -> dict[str, int]:
    """Counts behind the realised calibration figures of the linked bank (from the latent process,
    not only the emitted window); :func:`behaviour_summary_from_counts` turns them into the shares.
    Counts of several sub-banks add up to the counts of their union."""
    opened = cust["open"]
    n = len(opened)
    SH = 1 << 20
    key = np.sort(pur["owner"].astype(np.int64) * SH + pur["day"])
    ids = np.arange(n)

    def n_between(lo, hi):
        return np.searchsorted(key, ids * SH + hi, side="left") - np.searchsorted(key, ids * SH + lo, side="left")

    closed = close_inf <= end_day
    exit_ = np.where(closed, close_inf, end_day + 1)
    quiet = n_between(exit_ - 90, exit_) == 0
    drop = np.isfinite(pur["dropout_day"]) & (pur["dropout_day"] <= end_day - 365) & (
        pur["dropout_day"] >= start_day)
    open_end = ~closed & (opened <= end_day - 180)
    inactive = n_between(np.full(n, end_day - 179), np.full(n, end_day + 1)) == 0
    return {
        "n_closed": int(closed.sum()),
        "exposure_days": int((exit_ - np.maximum(opened, start_day)).clip(min=0).sum()),
        "n_closed_silent_90d": int(quiet[closed].sum()),
        "n_dropouts": int(drop.sum()),
        "n_dropouts_closed": int(closed[drop].sum()),
        "n_open_end": int(open_end.sum()),
        "n_open_inactive_180d": int(inactive[open_end].sum()),
    }


def behaviour_summary_from_counts(c: dict[str, int]) -> dict[str, float | None]:
    """``truth.behaviour_summary`` from :func:`_behaviour_counts`: annual closure rate (closures per
    customer-year in the window), share of closures with no purchase in the 90 days before, share of
    dropouts (at least a year before ``end``) that closed by ``end``, share of customers open at ``end``
    without a purchase in the last 180 days (None when a share has no denominator)."""
    def share(k: str, of: str) -> float | None:
        return float(c[k] / c[of]) if c[of] else None

    return {
        "annual_closure_rate": (float(c["n_closed"] / (c["exposure_days"] / DAYS_PER_YEAR))
                                if c["exposure_days"] else None),
        "share_closures_silent_90d": share("n_closed_silent_90d", "n_closed"),
        "share_dropouts_closed": share("n_dropouts_closed", "n_dropouts"),
        "share_open_inactive_180d": share("n_open_inactive_180d", "n_open_end"),
    }


def _make_targets(rng, rms_df, rm_hire, rm_exit, tx, asg, cust, start, end):
    """Targets per RM for each quarter and year of the window overlapping the RM's employment.

    fee_income (currency): realised fee of the RM's primary book in the period x LogNormal(0.03, 0.15),
    at least 100; new_customers (count): realised new primary customers x LogNormal(0.05, 0.3),
    rounded, at least 1; aum_growth (fraction): 0.0125 per quarter / 0.05 per year x LogNormal(0, 0.2).
    Year targets of additive KPIs are the sums of the quarter targets.
    """
    quarters = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="Q")
    n_rm = len(rms_df)
    q_start = np.array([_day(q.start_time) for q in quarters])
    q_end = np.array([_day(q.end_time.normalize()) for q in quarters])
    qi_tx = np.searchsorted(q_start, tx["day"], side="right") - 1
    fee = np.zeros((n_rm, len(quarters)))
    np.add.at(fee, (tx["rm"], qi_tx), tx["fee"])
    new = np.zeros((n_rm, len(quarters)))
    op = cust["open"]
    inq = (op >= q_start[0]) & (op <= q_end[-1])
    qi_c = np.searchsorted(q_start, op[inq], side="right") - 1
    np.add.at(new, (asg["first_rm"][inq], qi_c), 1.0)
    emp = (rm_hire[:, None] <= q_end[None, :]) & (rm_exit[:, None] > q_start[None, :])
    fee_t = np.maximum(fee * np.exp(rng.normal(0.03, 0.15, size=fee.shape)), 100.0)
    new_t = np.maximum(np.round(new * np.exp(rng.normal(0.05, 0.3, size=new.shape))), 1.0)
    aum_q = 0.0125 * np.exp(rng.normal(0.0, 0.2, size=fee.shape))
    rows = []
    rm_ids = rms_df["rm_id"].to_numpy()
    labels = [f"{q.year}Q{q.quarter}" for q in quarters]
    years = sorted({q.year for q in quarters})
    for j, lab in enumerate(labels):
        for kpi, vals in (("fee_income", fee_t), ("aum_growth", aum_q), ("new_customers", new_t)):
            r = np.flatnonzero(emp[:, j])
            rows.append(pd.DataFrame({"unit_id": rm_ids[r], "period": lab, "kpi": kpi, "target": vals[r, j]}))
    for y in years:
        js = [j for j, q in enumerate(quarters) if q.year == y]
        r = np.flatnonzero(emp[:, js].any(axis=1))
        e = emp[:, js]
        for kpi, vals in (("fee_income", fee_t), ("new_customers", new_t)):
            rows.append(pd.DataFrame({"unit_id": rm_ids[r], "period": str(y), "kpi": kpi,
                                      "target": (vals[:, js] * e).sum(axis=1)[r]}))
        yr = np.prod(1 + aum_q[:, js], axis=1) - 1
        rows.append(pd.DataFrame({"unit_id": rm_ids[r], "period": str(y), "kpi": "aum_growth", "target": yr[r]}))
    out = pd.concat(rows, ignore_index=True)
    out.insert(1, "unit_level", "rm")
    return out.sort_values(["unit_id", "period", "kpi"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# IO and CLI
# ----------------------------------------------------------------------------------------------
def write(bank: SynthBank, out_dir: str | Path, format: str = "parquet") -> Path:
    """Write ``<table>.parquet`` (or ``.csv``) for every table, ``truth.json`` and
    ``truth_customers.parquet`` (per-customer latent truth) into ``out_dir``; returns the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in bank.tables.items():
        if format == "parquet":
            df.to_parquet(out / f"{name}.parquet", index=False, compression="zstd")
        elif format == "csv":
            df.to_csv(out / f"{name}.csv", index=False)
        else:
            raise ValueError(f"format must be 'parquet' or 'csv', got {format!r}")
    (out / "truth.json").write_text(json.dumps(bank.truth.to_json_dict(), indent=1, sort_keys=True) + "\n")
    if bank.truth.customers is not None:
        bank.truth.customers.to_parquet(out / "truth_customers.parquet", index=False, compression="zstd")
    return out


def read_truth(path: str | Path, customers: bool = True) -> Truth:
    """Read a :class:`Truth` from ``truth.json`` (or the folder holding it; also loads
    ``truth_customers.parquet`` when present next to it, unless ``customers=False``: one row per
    customer, 10M rows in a 10M-customer bank)."""
    p = Path(path)
    if p.is_dir():
        p = p / "truth.json"
    d = json.loads(p.read_text())
    kw: dict[str, Any] = {}
    names = {f.name for f in fields(Truth)}
    for k, v in d.items():
        if k not in names:
            continue
        if k in ("market_index", "rm_exit_dates") and v is not None:
            s = pd.Series({kk: vv for kk, vv in v.items()})
            if k == "market_index":
                s.index = pd.DatetimeIndex(s.index)
                s = s.astype(float)
            else:
                s = pd.to_datetime(s)
            s.name = "market_index" if k == "market_index" else "exit_date"
            kw[k] = s
        elif k == "rm_skill" and v is not None:
            kw[k] = pd.Series(v, dtype=float, name="skill")
        elif k == "rm_lax" and v is not None:
            kw[k] = pd.Series(v, dtype=float, name="lax").astype(bool)
        elif k in ("risk_level_probs", "rm_level_probs", "shared_split"):
            kw[k] = tuple(v)
        else:
            kw[k] = v
    t = Truth(**kw)
    cp = p.parent / "truth_customers.parquet"
    if customers and cp.exists():
        t.customers = pd.read_parquet(cp)
    return t


def loyalty_truth(data_dir: str | Path) -> dict[str, dict[str, float]] | None:
    """True BG/NBD and Gamma-Gamma parameters per customer type, ``{type: {r, alpha, a, b, p, q, gamma}}``,
    from the ``truth.json`` of a synthetic data folder; None when the folder has none (real data)."""
    p = Path(data_dir)
    if not (p / "truth.json").is_file():
        return None
    t = read_truth(p, customers=False)
    groups = sorted(set(t.bgnbd) | set(t.gamma_gamma))
    return {g: {**t.bgnbd.get(g, {}), **t.gamma_gamma.get(g, {})} for g in groups}


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m rmanalytics.synth --customers N --out DIR [--seed S] [--rms R] ...``."""
    ap = argparse.ArgumentParser(prog="rmanalytics synth", description="Generate a synthetic bank with known truth.")
    ap.add_argument("--customers", type=int, default=3000, help="number of customers (default 3000)")
    ap.add_argument("--rms", type=int, default=40, help="RMs employed at the window start (default 40)")
    ap.add_argument("--start", default="2022-01-01")
    ap.add_argument("--end", default="2024-12-31")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--history", choices=("window", "full"), default="window")
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--behaviour-link", type=float, default=1.0,
                    help="scale of the behaviour -> closure link (default 1; 0: closure independent of behaviour)")
    ap.add_argument("--training-effect", type=float, default=0.0,
                    help="true relative effect of training on fee income (truth.json training_effect; default 0)")
    ap.add_argument("--no-relationship", action="store_true",
                    help="only the seven core tables: no products/holdings/interactions/feedback/digital_activity "
                         "and no contact or complaint hazard terms")
    ap.add_argument("--shards", type=int, default=1,
                    help="generate the bank as this many independent sub-banks with disjoint ids, streamed to one "
                         "file per table, so that memory holds one shard (default 1: the whole bank in memory; "
                         "see rmanalytics.synth.shards)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="with --shards > 1: shards generated at once in worker processes (memory: one shard each)")
    a = ap.parse_args(argv)
    overrides = dict(behaviour_link=a.behaviour_link, training_effect=a.training_effect,
                     relationship=not a.no_relationship)
    if a.shards > 1:
        from rmanalytics.synth.shards import write_sharded

        truth = write_sharded(a.out, a.customers, a.rms, a.shards, a.start, a.end, a.seed, history=a.history,
                              format=a.format, jobs=a.jobs, log=lambda s: print(s, flush=True), **overrides)
        rows = {k: sum(sh["rows"][k] for sh in truth["shards"]) if k != "products" else v
                for k, v in truth["shards"][0]["rows"].items()}  # products: the same catalogue in every shard
        print(f"wrote {a.out} ({a.shards} shards): " + ", ".join(f"{k}={v}" for k, v in rows.items()))
        return 0
    bank = generate(a.customers, a.rms, a.start, a.end, a.seed, progress=a.progress, history=a.history, **overrides)
    out = write(bank, a.out, a.format)
    sizes = {k: len(v) for k, v in bank.tables.items()}
    print(f"wrote {out}: " + ", ".join(f"{k}={v}" for k, v in sizes.items()))
    return 0
