"""Exact, vectorised simulators of the stochastic processes behind the synthetic bank.

These are the building blocks of :func:`rmanalytics.synth.generate`; model tests use them
directly with known parameters. Written here (not taken from a library) because no maintained
library offers exact, vectorised (1M customers in seconds) simulators with time-varying
covariates: ``lifetimes``' generators loop over customers in Python and the package is no longer
maintained; lifelines has no simulators.

Conventions
-----------
- Gamma distributions are parameterised by shape and **rate** (as in the BG/NBD and Gamma-Gamma
  papers): ``Gamma(shape, rate)`` has mean ``shape / rate``. numpy uses scale = 1 / rate.
- Times are continuous, in whatever unit ``T`` (BG/NBD) or ``scale`` (Weibull) is given in.
- Every function takes ``rng``: a :class:`numpy.random.Generator` or an integer seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RngLike = np.random.Generator | int | np.random.SeedSequence | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """Return ``rng`` as a :class:`numpy.random.Generator` (ints and SeedSequences are seeds)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ----------------------------------------------------------------------------------------------
# BG/NBD
# ----------------------------------------------------------------------------------------------
def bgnbd_core(
    lam: np.ndarray, p: np.ndarray, T: np.ndarray, rng: RngLike, with_times: bool = False
) -> dict[str, np.ndarray]:
    """Simulate the BG/NBD purchase process for given individual rates and dropout probabilities.

    Each customer makes a first purchase at time 0, then repeat purchases as a Poisson process of
    rate ``lam`` (per unit of ``T``); immediately after each *repeat* purchase the customer becomes
    inactive with probability ``p`` (Fader, Hardie & Lee 2005). Observation runs over ``[0, T]``.

    Exact and vectorised: the number of repeat purchases before dropout is ``J ~ Geometric(p)``,
    the number of Poisson arrivals in ``[0, T]`` is ``N ~ Poisson(lam*T)`` and the observed repeat
    count is ``x = min(J, N)``. Given ``N = n`` the arrival times are ``n`` sorted uniforms on
    ``[0, T]``; the first ``x`` order statistics are drawn as ``T * S_k / (S_x + G)`` with ``S_k``
    the cumulative sums of ``x`` Exp(1) draws and ``G ~ Gamma(n + 1 - x, 1)`` (exponential
    spacings), so only the ``x`` purchases actually made are ever generated.

    Parameters
    ----------
    lam, p, T : arrays of equal length (``T`` may be a scalar)
        Purchase rate per unit time, dropout probability, observation length.
    rng : Generator or seed
    with_times : bool
        Also return the repeat-purchase times.

    Returns
    -------
    dict with ``frequency`` (int64, repeat purchases), ``recency`` (time of the last repeat
    purchase, 0 if none), ``alive`` (bool, still active at ``T``), ``dropout_time`` (time of the
    purchase after which the customer dropped out, ``inf`` if alive at ``T``) and, with
    ``with_times``, ``owner`` (customer index per repeat purchase) and ``times``.
    """
    rng = as_rng(rng)
    lam = np.asarray(lam, dtype=float)
    p = np.asarray(p, dtype=float)
    n = lam.shape[0]
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    J = rng.geometric(np.clip(p, 1e-12, 1.0))  # repeat purchases until (and including) dropout
    N = rng.poisson(lam * T)
    x = np.minimum(J, N).astype(np.int64)
    dropped = J <= N
    # recency: x-th order statistic of N uniforms on [0, T] ~ T * Beta(x, N - x + 1)
    has = x > 0
    G = rng.gamma(np.where(has, N - x + 1, 1).astype(float), 1.0)
    out: dict[str, np.ndarray] = {"frequency": x, "alive": ~dropped}
    total = int(x.sum())
    # exponential spacings only for the purchases made: sum(x) draws in total
    E = rng.exponential(1.0, size=total)
    owner = np.repeat(np.arange(n), x)
    cs = np.cumsum(E)
    starts = np.cumsum(x) - x
    base = np.zeros(n)
    nz = x > 0
    # cumulative sum up to the previous customer's last draw
    base[nz] = np.where(starts[nz] > 0, cs[np.maximum(starts[nz] - 1, 0)], 0.0)
    S = cs - base[owner] if total else cs
    last_idx = starts + x - 1
    Sx = np.zeros(n)
    Sx[nz] = S[last_idx[nz]]
    denom = Sx + G
    times = T[owner] * S / denom[owner] if total else np.zeros(0)
    recency = np.zeros(n)
    recency[nz] = times[last_idx[nz]]
    out["recency"] = recency
    out["dropout_time"] = np.where(dropped, recency, np.inf)
    if with_times:
        out["owner"] = owner
        out["times"] = times
    return out


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, T: float | np.ndarray, rng_or_seed: RngLike = None
) -> pd.DataFrame:
    """Simulate ``n`` customers from the BG/NBD model (exact generative process).

    ``lambda ~ Gamma(r, rate=alpha)`` (purchases per unit of ``T``), ``p ~ Beta(a, b)``, Poisson
    purchases, dropout with probability ``p`` after each repeat purchase; first purchase at 0.

    Parameters
    ----------
    n : number of customers
    r, alpha, a, b : BG/NBD parameters (``alpha`` in the time unit of ``T``, e.g. weeks)
    T : observation length per customer (scalar or array of length ``n``), same unit
    rng_or_seed : Generator or seed

    Returns
    -------
    DataFrame with one row per customer: ``frequency`` (repeat purchases, int64), ``recency``
    (time of last repeat purchase since the first, 0 if none), ``T``, and the latent truth ``lam``,
    ``p``, ``alive`` (still active at ``T``). Same columns/units as lifetimes' summary data.
    """
    rng = as_rng(rng_or_seed)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    T_arr = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    res = bgnbd_core(lam, p, T_arr, rng)
    return pd.DataFrame(
        {"frequency": res["frequency"], "recency": res["recency"], "T": T_arr, "lam": lam, "p": p,
         "alive": res["alive"]}
    )


def simulate_bgnbd_transactions(
    n: int, r: float, alpha: float, a: float, b: float, T: float | np.ndarray, rng_or_seed: RngLike = None
) -> pd.DataFrame:
    """Simulate BG/NBD customers and return every purchase time.

    Same process and parameters as :func:`simulate_bgnbd`. Returns one row per purchase with
    ``customer`` (0..n-1, int64) and ``t`` (time since the customer's first purchase, unit of
    ``T``); the first purchase (``t == 0``) is included, so ``frequency = count - 1``. Rows are
    sorted by customer then time. Customer-level truth (``lam``, ``p``, ``alive``, ``T``) is in
    ``result.attrs["customers"]``.
    """
    rng = as_rng(rng_or_seed)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    T_arr = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    res = bgnbd_core(lam, p, T_arr, rng, with_times=True)
    owner = np.concatenate([np.arange(n), res["owner"]])
    t = np.concatenate([np.zeros(n), res["times"]])
    order = np.lexsort((t, owner))
    df = pd.DataFrame({"customer": owner[order].astype(np.int64), "t": t[order]})
    df.attrs["customers"] = pd.DataFrame(
        {"frequency": res["frequency"], "recency": res["recency"], "T": T_arr, "lam": lam, "p": p,
         "alive": res["alive"]}
    )
    return df


def bgnbd_expected_frequency(t: float | np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """Closed-form BG/NBD ``E[X(t)]``: expected repeat purchases in ``(0, t]`` (Fader et al. 2005, eq. 9).

    ``(a+b-1)/(a-1) * [1 - (alpha/(alpha+t))**r * 2F1(r, b; a+b-1; t/(alpha+t))]``; ``t`` in the
    time unit of ``alpha``. Valid for ``a != 1``.
    """
    from scipy.special import hyp2f1

    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


# ----------------------------------------------------------------------------------------------
# Gamma-Gamma spend
# ----------------------------------------------------------------------------------------------
def simulate_gamma_gamma(
    frequency: np.ndarray, p: float, q: float, gamma: float, rng: RngLike = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate Gamma-Gamma spend (Fader, Hardie & Lee 2005; Colombo & Jiang 1999).

    Per customer ``nu ~ Gamma(q, rate=gamma)``; each transaction amount ``z ~ Gamma(p, rate=nu)``
    (mean ``p / nu``). The population mean transaction value is ``E[z] = p * gamma / (q - 1)``
    (needs ``q > 1``).

    Parameters
    ----------
    frequency : array of int
        Number of (repeat) transactions per customer.
    p, q, gamma : Gamma-Gamma parameters (``gamma`` in currency units)
    rng : Generator or seed

    Returns
    -------
    (customers, amounts) : ``customers`` has one row per customer with ``frequency``,
    ``monetary_value`` (mean of the customer's amounts, 0 when ``frequency == 0``, as in
    lifetimes), ``nu`` and ``mean_spend = p / nu`` (the true individual mean); ``amounts`` has one
    row per transaction with ``customer`` and ``amount``.
    """
    rng = as_rng(rng)
    freq = np.asarray(frequency, dtype=np.int64)
    n = freq.shape[0]
    nu = rng.gamma(q, 1.0 / gamma, size=n)
    owner = np.repeat(np.arange(n), freq)
    z = rng.gamma(p, 1.0, size=owner.shape[0]) / nu[owner]
    sums = np.bincount(owner, weights=z, minlength=n)
    mv = np.divide(sums, freq, out=np.zeros(n), where=freq > 0)
    customers = pd.DataFrame({"frequency": freq, "monetary_value": mv, "nu": nu, "mean_spend": p / nu})
    amounts = pd.DataFrame({"customer": owner.astype(np.int64), "amount": z})
    return customers, amounts


# ----------------------------------------------------------------------------------------------
# Weibull proportional hazards
# ----------------------------------------------------------------------------------------------
def weibull_ph_invert(
    E: np.ndarray,
    lin: np.ndarray,
    shape: float,
    scale: float,
    switch_times: np.ndarray | None = None,
    switch_beta: float = 0.0,
) -> np.ndarray:
    """Event times solving ``H(t) = E`` for a Weibull PH cumulative hazard (exact inversion).

    ``H(t) = exp(lin) * [H0(min(t, s)) + exp(switch_beta) * (H0(t) - H0(s))^+]`` with
    ``H0(t) = (t / scale) ** shape`` and ``s`` the switch time of the binary time-varying covariate
    (``inf``: never switches on). With ``E ~ Exp(1)`` the result is a draw of the event time.
    """
    E = np.asarray(E, dtype=float)
    target = E * np.exp(-np.asarray(lin, dtype=float))  # baseline cumulative hazard to reach

    def h0_inv(h: np.ndarray) -> np.ndarray:
        return scale * np.power(h, 1.0 / shape)

    if switch_times is None:
        return h0_inv(target)
    s = np.broadcast_to(np.asarray(switch_times, dtype=float), target.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        H0s = np.where(np.isfinite(s), (np.maximum(s, 0.0) / scale) ** shape, np.inf)
    before = target <= H0s
    after_target = H0s + (target - np.where(before, 0.0, H0s)) * np.exp(-switch_beta)
    return np.where(before, h0_inv(target), h0_inv(np.where(before, 0.0, after_target)))


def simulate_weibull_ph(
    X: np.ndarray | pd.DataFrame,
    beta: np.ndarray,
    shape: float,
    scale: float,
    rng: RngLike = None,
    switch_times: np.ndarray | None = None,
    switch_beta: float = 0.0,
) -> np.ndarray:
    """Simulate event times from a Weibull proportional-hazards model.

    Hazard ``h(t | x) = (shape/scale) * (t/scale)**(shape-1) * exp(x @ beta + switch_beta * z(t))``
    where ``z(t) = 1{t >= switch_time}`` is an optional binary time-varying covariate (e.g. "the
    customer's RM has left"). Times are drawn by exact inversion of the piecewise cumulative
    hazard (see :func:`weibull_ph_invert`) with ``E ~ Exp(1)``.

    Parameters
    ----------
    X : (n, k) covariates; beta : (k,) log hazard ratios
    shape, scale : Weibull baseline (``scale`` in the time unit of the result)
    rng : Generator or seed
    switch_times : (n,) times at which the time-varying covariate switches on (``inf`` = never)
    switch_beta : log hazard ratio of the time-varying covariate

    Returns
    -------
    ndarray of event times (float, unit of ``scale``); censoring is left to the caller.
    """
    rng = as_rng(rng)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    lin = X @ np.asarray(beta, dtype=float).reshape(-1)
    E = rng.exponential(1.0, size=X.shape[0])
    return weibull_ph_invert(E, lin, shape, scale, switch_times, switch_beta)


def piecewise_ph_invert(
    R: np.ndarray,
    seg_owner: np.ndarray,
    seg_start: np.ndarray,
    seg_stop: np.ndarray,
    seg_log_mult: np.ndarray,
    shape: float,
    scale: float,
) -> np.ndarray:
    """Event times solving ``H(t) = R`` for a Weibull PH hazard with a piecewise-constant multiplier.

    Each customer ``i`` owns consecutive segments ``[seg_start, seg_stop)`` (rows grouped by
    ``seg_owner`` in increasing time, contiguous, the last one may end at ``inf``) with hazard
    ``exp(seg_log_mult) * h0(t)``, ``H0(t) = (t / scale) ** shape``; ``R[i]`` is the cumulative hazard
    still to be accumulated from the start of the customer's first segment (``Exp(1)`` draws, or what
    is left of them). Returns the time (unit of ``scale``) at which it is reached; ``inf`` when the
    segments end first; the first segment start when ``R <= 0``. Exact and vectorised.
    """
    R = np.asarray(R, dtype=float)
    n = len(R)
    seg_owner = np.asarray(seg_owner, dtype=np.int64)
    mult = np.exp(np.asarray(seg_log_mult, dtype=float))
    h0 = lambda t: np.power(np.maximum(t, 0.0) / scale, shape)  # noqa: E731
    with np.errstate(over="ignore", invalid="ignore"):
        dH = mult * (np.where(np.isfinite(seg_stop), h0(seg_stop), np.inf) - h0(seg_start))
    cnt = np.bincount(seg_owner, minlength=n)
    first = np.cumsum(cnt) - cnt
    dH_fin = np.where(np.isfinite(dH), dH, 0.0)
    cs = np.cumsum(dH_fin)
    base = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0.0)
    cum_before = cs - base[seg_owner] - dH_fin  # cumulative hazard at each segment's start
    cum_after = np.where(np.isfinite(dH), cum_before + dH_fin, np.inf)
    reach = cum_after >= R[seg_owner]
    # first segment per owner in which R is reached
    idx = np.where(reach, np.arange(len(seg_owner)), len(seg_owner))
    k = np.full(n, len(seg_owner))
    np.minimum.at(k, seg_owner, idx)
    out = np.full(n, np.inf)
    ok = k < len(seg_owner)
    kk = k[ok]
    rest = np.maximum(R[ok] - cum_before[kk], 0.0)
    out[ok] = scale * np.power(h0(seg_start[kk]) + rest / mult[kk], 1.0 / shape)
    none = R <= 0
    out[none & (cnt > 0)] = seg_start[first[none & (cnt > 0)]]
    return out
