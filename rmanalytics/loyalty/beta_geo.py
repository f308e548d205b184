"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchasing.

Model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science
24(2)): while alive, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)`` (shape ``r``,
rate ``alpha``, per model time unit); after each purchase they drop out with probability
``p ~ Beta(a, b)``. Data per customer: ``frequency`` = x repeat purchases, ``recency`` = t_x time
of the last purchase since the first, ``T`` = age since the first purchase, all in the same
time unit (weeks by default in rmanalytics).

Why our own implementation: ``lifetimes`` (the classic library) is archived and does not run on
current pandas/numpy; ``pymc-marketing`` is Bayesian (MCMC) and heavy for a maximum-likelihood
point estimate. This module is an exact maximum-likelihood implementation of the published
likelihood (section 7 of the paper / Hardie's note 004):

- numerically stable: all terms in log space (``gammaln``, ``log``), the two-part likelihood of
  repeat buyers combined with ``logaddexp``, so customers with hundreds of repeat purchases do
  not overflow;
- fast: identical ``(frequency, recency, T)`` rows are compressed into weights, and the special
  functions (``gammaln``, ``digamma``) are evaluated once per distinct frequency;
- analytic gradient; L-BFGS-B on log-parameters; standard errors from the observed information.

Conditional expectations use the Gaussian hypergeometric function in its Pfaff-transformed form
``((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)) = 2F1(r+x, a-1;
a+b+x-1; -t/(alpha+T))`` (the transformation ``z -> z/(z-1)``), which removes the power factor
that overflows for large ``r+x``; where ``scipy.special.hyp2f1`` still fails, a one-dimensional
numerical integral over the dropout probability ``p`` (exact expectation) is used instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import integrate, special
from sklearn.base import BaseEstimator

from rmanalytics.errors import ConvergenceError, DataError, ParameterError
from rmanalytics.engine import one_blas_thread
from rmanalytics.estimator import check_alpha, check_fitted
from rmanalytics.loyalty.base import (
    as_array,
    check_rfm,
    compress,
    dot,
    fit_log_params,
    hessian_from_gradient,
    is_number,
    like_input,
    param_series,
    standard_errors,
)

PARAM_NAMES = ("r", "alpha", "a", "b")
_WARM_START_ROWS = 50_000


class _Data:
    """Compressed BG/NBD data.

    Unique (x, t_x, T) rows with weights; on top, the distinct values of x, T and t_x with an
    index per row, so that special functions and logarithms are evaluated once per distinct value
    and the per-row work of an evaluation is a handful of vector operations on the repeat buyers.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray | None, unique: bool = False):
        if unique:  # rows are already distinct
            self.x, self.tx, self.T, self.w = x, tx, T, np.asarray(w, dtype=float)
        else:
            (self.x, self.tx, self.T), self.w = compress([x, tx, T], w)
        self.W = float(self.w.sum())
        self.ux, ix = np.unique(self.x, return_inverse=True)
        self.uT, iT = np.unique(self.T, return_inverse=True)
        self.wx = np.bincount(ix, weights=self.w, minlength=len(self.ux))  # weight per distinct x
        self.WT = np.bincount(iT, weights=self.w, minlength=len(self.uT))  # weight per distinct T
        self.WXT = np.bincount(iT, weights=self.w * self.x, minlength=len(self.uT))
        pos = self.x > 0
        self.utx, itx = np.unique(self.tx[pos], return_inverse=True)
        self.p_w = self.w[pos]
        self.p_x = self.x[pos]
        self.p_ix = ix[pos]
        self.p_iT = iT[pos]
        self.p_itx = itx
        self.ux_pos = self.ux > 0


def bgnbd_loglik_terms(params, x, tx, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (log space, stable for any frequency).

    ``LL_i = A1 + A2 + log(exp(A3) + [x>0] exp(A4))`` with ``A1 = lnG(r+x) - lnG(r) + r ln(alpha)``,
    ``A2 = lnB(a, b+x) - lnB(a, b)``, ``A3 = -(r+x) ln(alpha+T)``,
    ``A4 = ln(a/(b+x-1)) - (r+x) ln(alpha+t_x)``.
    """
    r, alpha, a, b = params
    x, tx, T = as_array(x, tx, T)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _loglik_and_grad(theta: np.ndarray, d: _Data, grad: bool = True):
    """Weighted total log-likelihood and its gradient in the natural parameters (r, alpha, a, b).

    Per customer ``LL = A1 + A2 + A3 + softplus(D)`` with ``D = A4 - A3`` for repeat buyers
    (``logaddexp(A3, A4) = A3 + softplus(A4 - A3)``); ``A1 + A2`` depends on x only and ``A3`` on
    (x, T) linearly in x, so their sums reduce to sums over distinct x and distinct T.
    """
    r, alpha, a, b = theta
    ux = d.ux
    lT = np.log(alpha + d.uT)
    ltx = np.log(alpha + d.utx)
    a12 = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha) + special.gammaln(a + b)
           + special.gammaln(b + ux) - special.gammaln(b) - special.gammaln(a + b + ux))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(d.ux_pos, np.log(a) - np.log(b + np.maximum(ux, 1) - 1), 0.0)
    rx = r + d.p_x
    delta = lT[d.p_iT] - ltx[d.p_itx]  # >= 0
    D = c[d.p_ix] + rx * delta
    e = np.exp(-np.abs(D))
    softplus = np.maximum(D, 0.0) + np.log1p(e)  # log(1 + exp(D)), stable for any D
    total = dot(d.wx, a12) - dot(r * d.WT + d.WXT, lT) + dot(d.p_w, softplus)
    if not grad:
        return total, None
    # weight of the "dropped out after t_x" branch: expit(D)
    wpi4 = d.p_w * np.where(D >= 0, 1.0, e) / (1.0 + e)
    s4x = np.bincount(d.p_ix, weights=wpi4, minlength=len(ux))
    W = d.W
    psi_ab = special.digamma(a + b)
    psi_abx = special.digamma(a + b + ux)
    d_r = (dot(d.wx, special.digamma(r + ux)) - W * special.digamma(r) + W * np.log(alpha)
           - dot(d.WT, lT) + dot(wpi4, delta))
    d_alpha = (W * r / alpha - dot(r * d.WT + d.WXT, 1.0 / (alpha + d.uT))
               + dot(wpi4 * rx, 1.0 / (alpha + d.uT)[d.p_iT] - 1.0 / (alpha + d.utx)[d.p_itx]))
    d_a = W * psi_ab - dot(d.wx, psi_abx) + s4x.sum() / a
    inv_bx1 = np.where(d.ux_pos, 1.0 / (b + np.maximum(ux, 1) - 1), 0.0)
    d_b = (W * (psi_ab - special.digamma(b)) + dot(d.wx, special.digamma(b + ux) - psi_abx)
           - dot(s4x, inv_bx1))
    return total, np.array([d_r, d_alpha, d_a, d_b])


def _hyp2f1_pfaff(a1, c_minus_b, c, t_over):
    """``2F1(a1, c-b; c; -t_over)``: the Pfaff form; NaN where scipy cannot evaluate it."""
    with np.errstate(all="ignore"):
        h = special.hyp2f1(a1, c_minus_b, c, -t_over)
    return np.where(np.isfinite(h), h, np.nan)


def _expected_alive_quad(t, r, alpha, a, b, x, T) -> float:
    """E[purchases in (T, T+t] | alive at T] by integrating over p ~ Beta(a, b+x) (exact).

    ``E[(1 - E[exp(-lambda p t)]) / p]`` with ``lambda ~ Gamma(r+x, alpha+T)``, integrated in
    ``u = log p`` (the integrand is smooth there), split at the scales where it changes shape.
    """
    if t <= 0:
        return 0.0
    shape, rate = r + x, alpha + T
    bx = b + x
    lbeta = special.betaln(a, bx)

    def f(u):
        p = np.exp(u)
        g = -np.expm1(-shape * np.log1p(p * t / rate)) / p
        return g * np.exp(a * u + (bx - 1) * np.log1p(-p) - lbeta)

    p0 = rate / (t * shape)  # below p0 the integrand behaves like p**a
    pm = a / (a + bx)  # scale of the posterior of p
    lo = max(-740.0, min(np.log(p0), np.log(pm)) - 40.0 / min(a, 1.0))
    pts = sorted({float(np.clip(np.log(v), lo + 1, -1e-9)) for v in (p0, pm, 10 * p0, 0.1 * pm, 1.0 / bx)})
    edges = [lo, *pts, 0.0]
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for u0, u1 in zip(edges[:-1], edges[1:]):
            if u1 > u0:
                total += integrate.quad(f, u0, u1, limit=200, epsabs=0.0, epsrel=1e-10)[0]
    return total


class BetaGeoModel(BaseEstimator):
    """BG/NBD model fitted by maximum likelihood (a scikit-learn style estimator).

    Parameters
    ----------
    penalizer : L2 penalty ``penalizer * sum(params**2)`` added to the *mean* negative
        log-likelihood per customer (the convention of lifetimes); 0 for plain maximum likelihood.
    alpha : 1 - confidence level of the intervals in ``summary_`` (0.05: 95% intervals). Not to be
        confused with the model parameter ``alpha`` (the rate of the Gamma prior), found in ``params_``.
    random_state : seed of the random subset of distinct rows that gives a warm start when there are
        more than 200,000 of them (the optimum does not depend on it, only the time to reach it).

    Attributes (after ``fit``)
    --------------------------
    params_ : Series ``r, alpha, a, b`` (index ``parameter``); ``alpha`` is in model time units (e.g. weeks).
    summary_ : DataFrame ``estimate, se, lower_95, upper_95`` per parameter (level from ``alpha``);
        ``covariance_``; ``se_`` (Series of standard errors); ``confidence_intervals_`` (the interval columns).
    log_likelihood_ : total log-likelihood over customers (weighted).
    n_customers_ : customers (sum of weights); ``n_unique_`` : distinct (x, t_x, T) rows fitted.
    """

    def __init__(self, penalizer: float = 0.0, alpha: float = 0.05, random_state: int | None = 0) -> None:
        self.penalizer = penalizer
        self.alpha = alpha
        self.random_state = random_state

    def _check_params(self) -> None:
        if not is_number(self.penalizer) or not self.penalizer >= 0:
            raise ParameterError(f"BetaGeoModel: penalizer must be a number >= 0, got {self.penalizer!r}")
        check_alpha(self.alpha, "BetaGeoModel")

    # ---------------------------------------------------------------- fitting
    def fit(self, summary: pd.DataFrame, *, weights: np.ndarray | pd.Series | str | None = None) -> "BetaGeoModel":
        """Fit on a summary with columns ``frequency``, ``recency``, ``T`` (one row per customer).

        ``weights``: optional number of customers each row stands for (array, Series or the name
        of a column of ``summary``); rows are compressed to distinct (frequency, recency, T)
        internally either way. Raises ``LoyaltyInputError`` on invalid rows and
        ``ConvergenceError`` (with advice) when the optimiser does not converge. Returns self.
        """
        self._check_params()
        check_rfm(summary)
        x = summary["frequency"].to_numpy(dtype=float)
        tx = summary["recency"].to_numpy(dtype=float)
        T = summary["T"].to_numpy(dtype=float)
        if isinstance(weights, str):
            weights = summary[weights]
        if weights is not None:
            weights = np.asarray(weights, dtype=float)
            if weights.shape != x.shape or not np.all(np.isfinite(weights)) or (weights < 0).any():
                raise DataError("weights must be finite, >= 0 and one per row of the summary")
        if len(summary) == 0:
            raise DataError("summary has no rows")
        with one_blas_thread():
            return self._fit(x, tx, T, weights)

    def _fit(self, x, tx, T, weights) -> "BetaGeoModel":
        d = _Data(x, tx, T, weights)
        W = d.W
        pen = float(self.penalizer)
        mean_x = float(dot(d.wx, d.ux) / W)
        mean_T = float(dot(d.WT, d.uT) / W)
        alpha0 = max(mean_T / max(mean_x, 1e-3), 1e-3)
        starts = [
            np.log([1.0, alpha0, 1.0, 2.0]),
            np.log([0.5, alpha0 / 2, 0.5, 1.0]),
            np.zeros(4),
        ]
        if len(d.x) > 4 * _WARM_START_ROWS:
            # many distinct rows: a fit on a random subset of them gives a start close to the
            # optimum, so the full fit needs only a few iterations (same optimum, less time)
            rng = np.random.default_rng(self.random_state)
            sub = rng.choice(len(d.x), _WARM_START_ROWS, replace=False)
            try:
                sub_data = _Data(d.x[sub], d.tx[sub], d.T[sub], d.w[sub], unique=True)
                warm = self._fit_data(sub_data, starts)
                starts = [np.log(warm.params), *starts]
            except ConvergenceError:
                pass
        res = self._fit_data(d, starts)
        theta = res.params
        self.log_likelihood_ = float(_loglik_and_grad(theta, d, grad=False)[0])
        self.n_iter_ = res.n_iter
        self.n_customers_ = W
        self.n_unique_ = len(d.x)

        def grad_nat(th):
            return -_loglik_and_grad(th, d)[1] + 2 * pen * W * th

        hess = hessian_from_gradient(grad_nat, theta)
        self.covariance_, self.summary_ = standard_errors(hess, PARAM_NAMES, theta, model="BG/NBD", alpha=self.alpha)
        self.params_ = self.summary_["estimate"].rename("value")
        self.se_ = self.summary_["se"]
        self.confidence_intervals_ = self.summary_.iloc[:, 2:4]
        return self

    def _fit_data(self, d: "_Data", starts):
        W = d.W
        pen = float(self.penalizer)

        def objective(phi):
            theta = np.exp(phi)
            ll, g = _loglik_and_grad(theta, d)
            f = -ll / W + pen * np.sum(theta**2)
            gphi = (-g / W + 2 * pen * theta) * theta
            if not np.isfinite(f):
                return np.inf, np.zeros_like(phi)
            return f, gphi

        return fit_log_params(objective, starts, model="BG/NBD", total_weight=W)

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> "BetaGeoModel":
        """A model with given parameters (no fit; ``alpha`` here is the model parameter): for
        scenario analysis and tests. It predicts but has no ``summary_``."""
        m = cls()
        m.params_ = param_series([r, alpha, a, b], PARAM_NAMES)
        return m

    def _check_fitted(self):
        check_fitted(self, "params_")
        return tuple(float(self.params_[k]) for k in PARAM_NAMES)

    # ------------------------------------------------------------ predictions
    def log_likelihood_individual(self, frequency, recency, T):
        """Log-likelihood of each customer's (frequency, recency, T) under the fitted parameters."""
        return like_input(bgnbd_loglik_terms(self._check_fitted(), frequency, recency, T), frequency)

    def p_alive(self, frequency, recency, T):
        """P(customer is alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
        r, alpha, a, b = self._check_fitted()
        x, tx, TT = as_array(frequency, recency, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + TT) - np.log(alpha + tx))
        out = np.where(x > 0, np.exp(-np.logaddexp(0.0, z)), 1.0)
        return like_input(out, frequency, recency, T)

    def expected_purchases_new(self, t):
        """E[X(t)]: expected repeat purchases in (0, t] of a new customer (t in model time units).

        ``(a+b-1)/(a-1) * (1 - 2F1(r, a-1; a+b-1; -t/alpha))`` (eq. 9 of the paper, Pfaff form).
        """
        r, alpha, a, b = self._check_fitted()
        (tt,) = as_array(t)
        h = _hyp2f1_pfaff(r, a - 1, a + b - 1, tt / alpha)
        out = (a + b - 1) / (a - 1) * (1 - h)
        bad = ~np.isfinite(out) | (np.abs(a - 1) < 1e-6)
        if bad.any():
            flat = out.reshape(-1)
            for i in np.flatnonzero(bad.reshape(-1)):
                flat[i] = _expected_alive_quad(tt.reshape(-1)[i], r, alpha, a, b, 0.0, 0.0)
        out = np.where(tt == 0, 0.0, out)
        return like_input(out, t)

    def expected_purchases(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] given the customer's history.

        ``P(alive) * (a+b+x-1)/(a-1) * (1 - 2F1(r+x, a-1; a+b+x-1; -t/(alpha+T)))`` (eq. 10 of the
        paper with the Pfaff transformation); numerical integration over p where 2F1 fails.
        """
        r, alpha, a, b = self._check_fitted()
        tt, x, tx, TT = as_array(t, frequency, recency, T)
        h = _hyp2f1_pfaff(r + x, a - 1, a + b + x - 1, tt / (alpha + TT))
        with np.errstate(all="ignore"):
            alive_part = (a + b + x - 1) / (a - 1) * (1 - h)
        bad = ~np.isfinite(alive_part) | (np.abs(a - 1) < 1e-6) | (alive_part < 0)
        if bad.any():
            ap = alive_part.reshape(-1)
            for i in np.flatnonzero(bad.reshape(-1)):
                ap[i] = _expected_alive_quad(tt.flat[i], r, alpha, a, b, x.flat[i], TT.flat[i])
            alive_part = ap.reshape(tt.shape)
        pa = np.asarray(self.p_alive(x, tx, TT), dtype=float)
        out = np.where(tt == 0, 0.0, pa * alive_part)
        return like_input(out, frequency, recency, T, t)

    def probability_active(self, t, frequency, recency, T):
        """P(at least one purchase in (T, T+t] | x, t_x, T) = P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)).

        Exact: a customer alive at T can only drop out right after a purchase, so the first
        purchase in the window happens at the Poisson rate of an alive customer.
        """
        r, alpha, a, b = self._check_fitted()
        tt, x, tx, TT = as_array(t, frequency, recency, T)
        pa = np.asarray(self.p_alive(x, tx, TT), dtype=float)
        out = pa * -np.expm1(-(r + x) * np.log1p(tt / (alpha + TT)))
        return like_input(out, frequency, recency, T, t)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        if hasattr(self, "params_"):
            p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            if not hasattr(self, "log_likelihood_"):
                return f"BetaGeoModel({p})"
            return f"BetaGeoModel({p}, LL={self.log_likelihood_:.2f}, n={self.n_customers_:.0f})"
        return super().__repr__(N_CHAR_MAX)
