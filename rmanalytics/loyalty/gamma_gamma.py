"""Gamma-Gamma model of the average value of a customer's repeat transactions.

Model (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for Customer Base
Analysis", JMR 42(4); Fader & Hardie's note "The Gamma-Gamma Model of Monetary Value", 2013):
the value of each repeat transaction is ``Gamma(p, nu)``; across customers ``nu ~ Gamma(q,
gamma)``. For a customer with ``x`` repeat transactions of mean value ``m`` (``frequency``,
``monetary_value``; currency units), the likelihood is

``Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q * m^(px-1) * x^(px) / (gamma + m x)^(px+q)``.

Only customers with ``frequency > 0`` carry information. The model assumes that the average
value is independent of the purchase frequency: :attr:`GammaGammaModel.frequency_monetary_corr_`
reports the (Pearson) correlation in the data so users can check it.

Own implementation for the same reasons as :mod:`rmanalytics.loyalty.beta_geo` (exact maximum
likelihood in log space with analytic gradients, L-BFGS-B on log-parameters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from sklearn.base import BaseEstimator

from rmanalytics.errors import ParameterError
from rmanalytics.engine import one_blas_thread
from rmanalytics.estimator import check_alpha, check_fitted
from rmanalytics.loyalty.base import (
    LoyaltyInputError,
    as_array,
    check_columns,
    check_rule,
    compress,
    dot,
    fit_log_params,
    hessian_from_gradient,
    is_number,
    like_input,
    param_series,
    standard_errors,
)

PARAM_NAMES = ("p", "q", "gamma")


def gamma_gamma_loglik_terms(params, frequency, monetary_value) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood (customers with frequency > 0)."""
    p, q, g = params
    x, m = as_array(frequency, monetary_value)
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(g + m * x))


def _loglik_and_grad(theta, x, m, w, grad=True):
    p, q, g = theta
    px = p * x
    lgm = np.log(g + m * x)
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * lgm)
    total = float(dot(w, ll))
    if not grad:
        return total, None
    psi_pxq = special.digamma(px + q)
    d_p = dot(w, x * (psi_pxq - special.digamma(px) + np.log(m) + np.log(x) - lgm))
    d_q = dot(w, psi_pxq - special.digamma(q) + np.log(g) - lgm)
    d_g = dot(w, q / g - (px + q) / (g + m * x))
    return total, np.array([d_p, d_q, d_g])


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model fitted by maximum likelihood (a scikit-learn style estimator).

    Parameters: ``penalizer`` (L2 penalty on the mean negative log-likelihood, as in
    :class:`~rmanalytics.loyalty.BetaGeoModel`) and ``alpha`` (1 - confidence level of the
    intervals in ``summary_``; 0.05 gives ``lower_95, upper_95``).

    Fit on a summary with ``frequency`` (repeat transactions) and ``monetary_value`` (mean value of
    the repeat transactions, currency units); rows with ``frequency == 0`` are excluded (they
    carry no spend information) and counted in ``n_excluded_``.

    Attributes: ``params_`` (Series ``p``, ``q``, ``gamma``), ``log_likelihood_``, ``se_``,
    ``summary_`` (``estimate, se, lower_<level>, upper_<level>``), ``n_customers_``, ``frequency_monetary_corr_`` (Pearson correlation of
    frequency and monetary value among repeat buyers; the model assumes it is near 0),
    ``population_mean_value_`` = ``p gamma / (q - 1)``.
    """

    def __init__(self, penalizer: float = 0.0, alpha: float = 0.05) -> None:
        self.penalizer = penalizer
        self.alpha = alpha

    def fit(self, summary: pd.DataFrame, *, weights=None) -> "GammaGammaModel":
        """Fit on ``summary[["frequency", "monetary_value"]]`` of customers with frequency > 0; returns self."""
        if not is_number(self.penalizer) or not self.penalizer >= 0:
            raise ParameterError(f"GammaGammaModel: penalizer must be a number >= 0, got {self.penalizer!r}")
        check_alpha(self.alpha, "GammaGammaModel")
        check_columns(summary, ["frequency", "monetary_value"])
        f = summary["frequency"].to_numpy(dtype=float)
        check_rule(summary, f < 0, "frequency >= 0", ["frequency"])
        rep = f > 0
        sub = summary.loc[rep]
        m_all = sub["monetary_value"].to_numpy(dtype=float)
        check_rule(sub, m_all <= 0, "monetary_value > 0 for customers with frequency > 0",
                   ["frequency", "monetary_value"])
        if rep.sum() < 3:
            raise LoyaltyInputError(f"Gamma-Gamma needs customers with frequency > 0; found {int(rep.sum())}")
        w_all = None if weights is None else np.asarray(weights, dtype=float)[rep]
        (x, m), w = compress([f[rep], m_all], w_all)
        W = float(w.sum())
        pen = float(self.penalizer)

        def objective(phi):
            theta = np.exp(phi)
            ll, g = _loglik_and_grad(theta, x, m, w)
            fval = -ll / W + pen * np.sum(theta**2)
            if not np.isfinite(fval):
                return np.inf, np.zeros_like(phi)
            return fval, (-g / W + 2 * pen * theta) * theta

        mean_m = float(dot(w, m) / W)
        starts = [np.log([2.0, 3.0, mean_m]), np.log([1.0, 2.0, mean_m / 2]), np.zeros(3)]
        with one_blas_thread():
            res = fit_log_params(objective, starts, model="Gamma-Gamma", total_weight=W)
        theta = res.params
        self.log_likelihood_ = float(_loglik_and_grad(theta, x, m, w, grad=False)[0])
        self.n_customers_ = W
        self.n_excluded_ = int((~rep).sum())
        hess = hessian_from_gradient(lambda th: -_loglik_and_grad(th, x, m, w)[1] + 2 * pen * W * th, theta)
        self.covariance_, self.summary_ = standard_errors(hess, PARAM_NAMES, theta, model="Gamma-Gamma",
                                                          alpha=self.alpha)
        self.params_ = self.summary_["estimate"].rename("value")
        self.se_ = self.summary_["se"]
        fm = sub[["frequency", "monetary_value"]].to_numpy(dtype=float)
        self.frequency_monetary_corr_ = float(np.corrcoef(fm[:, 0], fm[:, 1])[0, 1]) if len(fm) > 2 else float("nan")
        p, q, g = theta
        self.population_mean_value_ = float(p * g / (q - 1)) if q > 1 else float("inf")
        return self

    @classmethod
    def from_params(cls, p: float, q: float, gamma: float) -> "GammaGammaModel":
        """A model with given parameters (no fit): for scenario analysis and tests."""
        m = cls()
        m.params_ = param_series([p, q, gamma], PARAM_NAMES)
        return m

    def expected_average_value(self, frequency, monetary_value):
        """E[M | x, m]: expected mean transaction value (currency units).

        ``p (gamma + m x) / (p x + q - 1)``, a weighted average of the population mean
        ``p gamma/(q-1)`` and the customer's own mean ``m``; customers with ``x == 0`` get the
        population mean. Requires ``q > 1``.
        """
        check_fitted(self, "params_")
        p, q, g = (float(self.params_[k]) for k in PARAM_NAMES)
        if q <= 1:
            raise ValueError(f"q = {q:.3g} <= 1: the expected spend is infinite under the fitted model")
        x, m = as_array(frequency, monetary_value)
        m = np.where(x > 0, m, 0.0)
        out = p * (g + m * x) / (p * x + q - 1)
        return like_input(out, frequency, monetary_value)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        if hasattr(self, "params_"):
            p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            if not hasattr(self, "log_likelihood_"):
                return f"GammaGammaModel({p})"
            return f"GammaGammaModel({p}, LL={self.log_likelihood_:.2f}, n={self.n_customers_:.0f})"
        return super().__repr__(N_CHAR_MAX)
