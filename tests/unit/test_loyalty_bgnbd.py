"""BG/NBD: published CDNOW values, independent implementations, stability, recovery, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special

from rmanalytics.loyalty import (
    BetaGeoModel,
    ConvergenceError,
    LoyaltyInputError,
    bgnbd_loglik_terms,
    compress,
)
from rmanalytics.loyalty.beta_geo import _Data, _loglik_and_grad

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"


# A small simulator written for these tests, independent of rmanalytics.synth.
def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, T, rng: np.random.Generator) -> pd.DataFrame:
    """Simulate (frequency, recency, T) of ``n`` customers.

    lambda ~ Gamma(r, rate alpha); p ~ Beta(a, b); the customer drops out right after repeat
    purchase J ~ Geometric(p) (J >= 1); N(T) ~ Poisson(lambda T) purchases in (0, T];
    x = min(N, J); given N = n events, the x-th event time is T * Beta(x, n - x + 1).
    """
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    J = rng.geometric(np.clip(p, 1e-300, 1.0))
    N = rng.poisson(lam * T)
    x = np.minimum(N, J)
    tx = np.zeros(n)
    pos = x > 0
    tx[pos] = T[pos] * rng.beta(x[pos], N[pos] - x[pos] + 1)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def fitted(cdnow) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow)


# ------------------------------------------------------------------ published values (FHL 2005)
def test_cdnow_published_parameters(fitted):
    p = fitted.params_
    # published to 3 decimals: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426
    assert round(p["r"], 3) == 0.243
    assert round(p["alpha"], 3) == 4.414
    assert round(p["a"], 3) == 0.793
    assert round(p["b"], 3) == 2.426
    assert round(fitted.log_likelihood_, 1) == -9582.4
    assert fitted.n_customers_ == 2357


def test_cdnow_conditional_expectation(fitted):
    # FHL 2005: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases expected in the next 39 weeks
    assert round(fitted.expected_purchases(39, 2, 30.43, 38.86), 3) == 1.226


def test_cdnow_standard_errors(fitted):
    s = fitted.summary_
    assert list(s.index) == ["r", "alpha", "a", "b"]
    assert (s["se"] > 0).all()
    assert (s["lower_95"] < s["estimate"]).all() and (s["estimate"] < s["upper_95"]).all()
    # SEs from the observed information; r and alpha are well identified on CDNOW
    assert s.loc["r", "se"] == pytest.approx(0.0126, abs=5e-4)
    assert s.loc["alpha", "se"] == pytest.approx(0.378, abs=5e-3)


def _conditional_expectation_dblquad(params, t, x, tx, T):
    """E[Y(t) | x, t_x, T] by 2-D numerical integration over (lambda, p) of the posterior."""
    r, alpha, a, b = params

    def prior(lam, p):
        return np.exp(r * np.log(alpha) + (r - 1) * np.log(lam) - alpha * lam - special.gammaln(r)
                      + (a - 1) * np.log(p) + (b - 1) * np.log1p(-p) - special.betaln(a, b))

    def alive(lam, p):  # likelihood contribution of "alive at T"
        return (1 - p) ** x * lam**x * np.exp(-lam * T)

    def lik(lam, p):
        out = alive(lam, p)
        if x > 0:
            out += p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * tx)
        return out

    opts = dict(epsabs=1e-12, epsrel=1e-7)
    num = integrate.dblquad(lambda lam, p: alive(lam, p) * -np.expm1(-lam * p * t) / p * prior(lam, p),
                            0, 1, 0, 5, **opts)[0]
    den = integrate.dblquad(lambda lam, p: lik(lam, p) * prior(lam, p), 0, 1, 0, 5, **opts)[0]
    return num / den, den


def test_conditional_expectation_independent_integration(fitted):
    params = tuple(fitted.params_.to_numpy())
    for x, tx, T in [(2, 30.43, 38.86), (0, 0.0, 38.86)]:
        ref, lik = _conditional_expectation_dblquad(params, 39.0, x, tx, T)
        assert fitted.expected_purchases(39.0, x, tx, T) == pytest.approx(ref, rel=1e-5)
        # and the likelihood itself equals the integral of the individual likelihood over the prior
        assert bgnbd_loglik_terms(params, x, tx, T) == pytest.approx(np.log(lik), rel=1e-6)
        if x == 2:  # the paper's example, computed independently: 1.226
            assert round(ref, 3) == 1.226


def test_loglik_matches_textbook_formula(cdnow, fitted):
    """Paper eq. (6) written directly with Beta/Gamma functions (no log-space tricks)."""
    r, alpha, a, b = fitted.params_.to_numpy()
    x, tx, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    B = special.beta
    G = special.gamma
    direct = (B(a, b + x) / B(a, b) * G(r + x) * alpha**r / (G(r) * (alpha + T) ** (r + x))
              + (x > 0) * B(a + 1, b + np.maximum(x, 1) - 1) / B(a, b) * G(r + x) * alpha**r
              / (G(r) * (alpha + tx) ** (r + x)))
    ours = bgnbd_loglik_terms((r, alpha, a, b), x, tx, T)
    np.testing.assert_allclose(ours, np.log(direct), rtol=1e-10)
    assert ours.sum() == pytest.approx(fitted.log_likelihood_, rel=1e-12)


def test_expected_purchases_new_against_integration(fitted):
    r, alpha, a, b = fitted.params_.to_numpy()
    # E[X(t)] = E_p[(1 - E_lambda exp(-lambda p t)) / p], integrated numerically over p
    for t in (1.0, 39.0, 78.0, 5000.0):
        f = lambda p: -np.expm1(-r * np.log1p(p * t / alpha)) / p * np.exp(  # noqa: E731
            (a - 1) * np.log(p) + (b - 1) * np.log1p(-p) - special.betaln(a, b))
        ref = integrate.quad(f, 0, 1, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
        assert fitted.expected_purchases_new(t) == pytest.approx(ref, rel=1e-7)
    # FHL 2005 closed form (eq. 9, no transformation) for moderate t
    t = 39.0
    closed = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    assert fitted.expected_purchases_new(t) == pytest.approx(closed, rel=1e-10)


def test_probability_active_by_integration(fitted):
    params = tuple(fitted.params_.to_numpy())
    r, alpha, a, b = params
    x, tx, T, t = 3, 20.0, 38.86, 39.0
    # P(active) = P(alive) * E_post[1 - exp(-lambda t)], lambda | alive ~ Gamma(r+x, alpha+T)
    pa = fitted.p_alive(x, tx, T)
    ref = pa * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x))
    assert fitted.probability_active(t, x, tx, T) == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------------------------ stability
def test_large_frequency_is_finite(fitted):
    params = tuple(fitted.params_.to_numpy())
    ll = bgnbd_loglik_terms(params, np.array([500, 1000, 5000]), np.array([38.0, 38.5, 38.8]), 38.86)
    assert np.all(np.isfinite(ll))
    assert np.all(np.isfinite(fitted.p_alive([500, 1000], [10.0, 38.0], 38.86)))
    ep = fitted.expected_purchases(39.0, np.array([500, 1000]), np.array([38.8, 38.8]), 38.86)
    assert np.all(np.isfinite(ep)) and np.all(ep > 100)
    # a heavy buyer still active: about rate * t purchases
    assert fitted.expected_purchases(1e4, 0, 0, 38.86) > 0
    # scipy's hyp2f1 fails here; the numerical-integration fallback must give a sane value
    huge = fitted.expected_purchases(1e6, 500, 38.8, 38.86)
    assert np.isfinite(huge) and 1e3 < huge < 1e6
    # fitting data with very heavy buyers works
    df = pd.DataFrame({"frequency": [0, 1, 2, 500, 800, 3, 0, 5],
                       "recency": [0, 5, 20, 38, 38.5, 30, 0, 10], "T": [38.86] * 8})
    big = pd.concat([pd.read_csv(CDNOW / "cdnow_customers_summary.csv"), df], ignore_index=True)
    m = BetaGeoModel().fit(big)
    assert np.isfinite(m.log_likelihood_)


def test_analytic_gradient_matches_finite_differences(cdnow):
    d = _Data(*(cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T")), None)
    for theta in ([0.243, 4.414, 0.793, 2.426], [1.3, 0.7, 2.5, 0.4], [0.05, 30.0, 0.2, 9.0]):
        theta = np.array(theta)
        f = lambda th: _loglik_and_grad(th, d, grad=False)[0]  # noqa: E731
        g = lambda th: _loglik_and_grad(th, d)[1]  # noqa: E731
        # scipy's forward differences (relative to the size of the gradient) ...
        err = optimize.check_grad(f, g, theta, epsilon=1e-6 * theta)
        assert err < 1e-3 * max(np.linalg.norm(g(theta)), 10.0)
        # ... and central differences, parameter by parameter
        h = 1e-6 * theta
        num = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h[i]) for i, e in enumerate(np.eye(4))])
        np.testing.assert_allclose(g(theta), num, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ compression and weights
def test_compression_is_exact(cdnow):
    cols = [cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    (x, tx, T), w = compress(cols)
    assert w.sum() == len(cdnow) and len(x) < len(cdnow)
    full = bgnbd_loglik_terms((0.3, 4.0, 0.8, 2.0), *cols).sum()
    comp = (w * bgnbd_loglik_terms((0.3, 4.0, 0.8, 2.0), x, tx, T)).sum()
    assert comp == pytest.approx(full, rel=1e-12)


def test_weights_equal_repeated_rows(cdnow):
    m1 = BetaGeoModel().fit(cdnow)
    agg = cdnow.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    m2 = BetaGeoModel().fit(agg, weights="n")
    m3 = BetaGeoModel().fit(pd.concat([cdnow, cdnow]))
    for k in m1.params_.index:
        assert m2.params_[k] == pytest.approx(m1.params_[k], rel=1e-5)
        assert m3.params_[k] == pytest.approx(m1.params_[k], rel=1e-5)
    assert m2.log_likelihood_ == pytest.approx(m1.log_likelihood_, rel=1e-10)
    assert m3.log_likelihood_ == pytest.approx(2 * m1.log_likelihood_, rel=1e-10)
    # doubled data: SEs shrink by sqrt(2)
    assert m3.se_["r"] == pytest.approx(m1.se_["r"] / np.sqrt(2), rel=1e-3)


def test_penalizer_shrinks(cdnow):
    m0 = BetaGeoModel().fit(cdnow)
    m1 = BetaGeoModel(penalizer=0.1).fit(cdnow)
    assert sum(v**2 for v in m1.params_.to_numpy()) < sum(v**2 for v in m0.params_.to_numpy())


# ------------------------------------------------------------------ synthetic recovery
def test_recovers_true_parameters():
    rng = np.random.default_rng(20261122)
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    T = rng.uniform(20, 104, 50_000).round() / 1.0
    sim = simulate_bgnbd(50_000, *truth.values(), T=T, rng=rng)
    m = BetaGeoModel().fit(sim)
    for k, v in truth.items():
        assert abs(m.params_[k] - v) < 3 * m.se_[k], (k, m.params_[k], v, m.se_[k])
        lo, hi = m.confidence_intervals_.loc[k]
        assert lo < v < hi or abs(m.params_[k] - v) < 3 * m.se_[k]
    # predicted vs simulated mean repeat purchases of new customers
    assert m.expected_purchases_new(T).mean() == pytest.approx(sim["frequency"].mean(), rel=0.03)


def test_p_alive_conventions(fitted):
    assert fitted.p_alive(0, 0, 38.86) == 1.0
    # at the same frequency, a more recent last purchase means more likely alive
    assert fitted.p_alive(3, 38.0, 38.86) > fitted.p_alive(3, 10.0, 38.86)
    s = fitted.p_alive(pd.Series([1, 2], index=["a", "b"]), pd.Series([5.0, 30.0], index=["a", "b"]),
                       pd.Series([38.86, 38.86], index=["a", "b"]))
    assert isinstance(s, pd.Series) and list(s.index) == ["a", "b"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "rows, rule",
    [
        ({"frequency": [1, 2], "recency": [5.0, 40.0], "T": [30.0, 30.0]}, "recency <= T"),
        ({"frequency": [0, 2], "recency": [3.0, 10.0], "T": [30.0, 30.0]}, "recency == 0 when frequency == 0"),
        ({"frequency": [-1, 2], "recency": [0.0, 10.0], "T": [30.0, 30.0]}, "frequency >= 0"),
        ({"frequency": [1, 2], "recency": [-1.0, 10.0], "T": [30.0, 30.0]}, "recency >= 0"),
        ({"frequency": [1.5, 2], "recency": [1.0, 10.0], "T": [30.0, 30.0]}, "whole number"),
        ({"frequency": [1, 2], "recency": [1.0, np.nan], "T": [30.0, 30.0]}, "finite"),
    ],
)
def test_bad_input_raises_clear_error(rows, rule):
    with pytest.raises(LoyaltyInputError) as e:
        BetaGeoModel().fit(pd.DataFrame(rows))
    msg = str(e.value)
    assert rule in msg and "1 of 2 row" in msg or ("1 row" in msg and rule in msg)


def test_missing_column():
    with pytest.raises(LoyaltyInputError, match="missing column"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [1], "recency": [1.0]}))


def test_non_convergence_is_an_error():
    # nobody ever repeats: the likelihood increases without bound as the rate goes to 0
    df = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": np.linspace(10, 50, 50)})
    with pytest.raises(ConvergenceError, match="penalizer"):
        BetaGeoModel().fit(df)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        BetaGeoModel().p_alive(1, 1, 2)


def test_recovers_truth_of_rmanalytics_synth():
    synth = pytest.importorskip("rmanalytics.synth.processes")
    truth = {"r": 0.45, "alpha": 3.5, "a": 0.6, "b": 2.8}  # the sample's retail truth (weeks)
    rng = np.random.default_rng(11)
    T = rng.integers(1, 157, 50_000) + 0.0
    sim = synth.simulate_bgnbd(50_000, *truth.values(), T=T, rng_or_seed=rng)
    m = BetaGeoModel().fit(sim[["frequency", "recency", "T"]])
    for k, v in truth.items():
        assert abs(m.params_[k] - v) < 3 * m.se_[k], (k, m.params_[k], v, m.se_[k])
    # P(alive) is calibrated against the simulated latent state
    pa = m.p_alive(sim["frequency"], sim["recency"], sim["T"])
    assert pa.mean() == pytest.approx(sim["alive"].mean(), abs=0.01)


def test_hypergeometric_path_matches_integral_path(fitted):
    """The closed form (Pfaff-transformed 2F1) and the numerical integral over p agree widely."""
    from rmanalytics.loyalty.beta_geo import _expected_alive_quad

    r, alpha, a, b = fitted.params_.to_numpy()
    for x in (0, 1, 5, 50, 200):
        for t in (1.0, 39.0, 500.0):
            T = 38.86
            tx = 0.0 if x == 0 else 30.0
            closed = fitted.expected_purchases(t, x, tx, T)
            quad = fitted.p_alive(x, tx, T) * _expected_alive_quad(t, r, alpha, a, b, x, T)
            assert closed == pytest.approx(quad, rel=1e-7), (x, t)
