"""A small BG/NBD + Gamma-Gamma simulator for the loyalty tests (independent of rmanalytics.synth)."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def simulate_gamma_gamma(frequency: np.ndarray, p: float, q: float, gamma: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Mean spend of ``frequency`` repeat transactions: z ~ Gamma(p, rate nu), nu ~ Gamma(q, rate gamma)."""
    x = np.asarray(frequency)
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    total = rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)
