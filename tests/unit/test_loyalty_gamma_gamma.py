"""Gamma-Gamma: published CDNOW values, independent likelihood, recovery, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from rmanalytics.loyalty import GammaGammaModel, LoyaltyInputError, gamma_gamma_loglik_terms
from rmanalytics.loyalty.gamma_gamma import _loglik_and_grad

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"


# A small simulator written for these tests, independent of rmanalytics.synth.
def simulate_gamma_gamma(frequency: np.ndarray, p: float, q: float, gamma: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Mean spend of ``frequency`` repeat transactions: z ~ Gamma(p, rate nu), nu ~ Gamma(q, rate gamma)."""
    x = np.asarray(frequency)
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    total = rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    df = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    return df.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


@pytest.fixture(scope="module")
def fitted(cdnow) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow)


def test_cdnow_published_parameters(fitted):
    p = fitted.params_
    # Fader, Hardie & Lee (2005), "RFM and CLV": p = 6.25, q = 3.74, gamma = 15.44 (2 decimals).
    assert round(p["p"], 2) == 6.25
    assert round(p["q"], 2) == 3.74
    # The distributed data has zbar rounded to cents; its ML optimum is gamma = 15.448 (lifetimes
    # reports 15.45 on the same file), within one unit of the last published digit.
    assert p["gamma"] == pytest.approx(15.44, abs=0.01)
    assert fitted.n_customers_ == 946
    assert fitted.n_excluded_ == 2357 - 946


def test_cdnow_expected_values(fitted, cdnow):
    # mean of the individual-level mean transaction value: E(M) = p gamma / (q - 1) ~ $35.2
    assert fitted.population_mean_value_ == pytest.approx(6.25 * 15.44 / (3.74 - 1), abs=0.05)
    rep = cdnow[cdnow["frequency"] > 0]
    e = fitted.expected_average_value(rep["frequency"], rep["monetary_value"])
    # conditional expectations are a weighted mean of the population mean and the customer's mean
    assert e.mean() == pytest.approx(35.375, abs=0.01)
    p, q, g = fitted.params_.to_numpy()
    x, m = 2, 22.35
    w = (q - 1) / (p * x + q - 1)
    assert fitted.expected_average_value(x, m) == pytest.approx(w * p * g / (q - 1) + (1 - w) * m, rel=1e-12)
    # customers without repeats get the population mean
    assert fitted.expected_average_value(0, 0.0) == pytest.approx(fitted.population_mean_value_)
    # the model assumes spend independent of frequency: the data's correlation is reported (0.11 on CDNOW)
    assert fitted.frequency_monetary_corr_ == pytest.approx(0.1139, abs=1e-3)


def test_loglik_against_numerical_integration(fitted):
    """Integrate the individual density of the mean over nu ~ Gamma(q, gamma)."""
    p, q, g = fitted.params_.to_numpy()
    for x, m in [(1, 11.77), (2, 22.35), (7, 40.0), (30, 15.0)]:
        # mean of x Gamma(p, nu) values ~ Gamma(p x, rate nu x)
        f = lambda nu: stats.gamma.pdf(m, p * x, scale=1 / (nu * x)) * stats.gamma.pdf(nu, q, scale=1 / g)  # noqa: E731
        ref = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)[0]
        assert gamma_gamma_loglik_terms((p, q, g), x, m) == pytest.approx(np.log(ref), rel=1e-8)


def test_gradient(cdnow):
    rep = cdnow[cdnow["frequency"] > 0]
    x, m = rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)
    w = np.ones_like(x)
    for theta in ([6.25, 3.74, 15.44], [1.0, 2.0, 50.0]):
        theta = np.array(theta)
        f = lambda th: _loglik_and_grad(th, x, m, w, grad=False)[0]  # noqa: E731
        g = _loglik_and_grad(theta, x, m, w)[1]
        h = 1e-6 * theta
        num = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h[i]) for i, e in enumerate(np.eye(3))])
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-4)
        assert optimize.check_grad(f, lambda th: _loglik_and_grad(th, x, m, w)[1], theta,
                                   epsilon=1e-6 * theta) < 1e-3 * max(np.linalg.norm(g), 10.0)


def test_recovers_true_parameters():
    rng = np.random.default_rng(7)
    truth = {"p": 4.0, "q": 5.0, "gamma": 60.0}
    x = rng.integers(1, 12, 50_000)
    m = simulate_gamma_gamma(x, *truth.values(), rng=rng)
    model = GammaGammaModel().fit(pd.DataFrame({"frequency": x, "monetary_value": m}))
    for k, v in truth.items():
        assert abs(model.params_[k] - v) < 3 * model.se_[k], (k, model.params_[k], v, model.se_[k])
    assert abs(model.frequency_monetary_corr_) < 0.02


def test_bad_input():
    with pytest.raises(LoyaltyInputError, match="monetary_value > 0"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1, 2, 3, 1], "monetary_value": [10.0, -5.0, 3.0, 4.0]}))
    with pytest.raises(LoyaltyInputError, match="missing column"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1, 2]}))
    with pytest.raises(LoyaltyInputError, match="frequency > 0"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [0, 0], "monetary_value": [0.0, 0.0]}))


def test_q_below_one_refuses_expectation():
    m = GammaGammaModel.from_params(p=2.0, q=0.8, gamma=10.0)
    with pytest.raises(ValueError, match="q"):
        m.expected_average_value(2, 10.0)


def test_recovers_truth_of_rmanalytics_synth():
    synth = pytest.importorskip("rmanalytics.synth.processes")
    truth = {"p": 6.0, "q": 3.8, "gamma": 150.0}  # the sample's retail truth (currency)
    rng = np.random.default_rng(12)
    freq = rng.integers(1, 15, 50_000)
    cust, _ = synth.simulate_gamma_gamma(freq, *truth.values(), rng=rng)
    model = GammaGammaModel().fit(cust[["frequency", "monetary_value"]])
    for k, v in truth.items():
        assert abs(model.params_[k] - v) < 3 * model.se_[k], (k, model.params_[k], v, model.se_[k])
    # E[M | x, m] is unbiased for the true individual mean spend
    e = model.expected_average_value(cust["frequency"], cust["monetary_value"])
    assert e.mean() == pytest.approx(cust["mean_spend"].mean(), rel=0.01)
