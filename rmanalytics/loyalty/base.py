"""Shared machinery of the buy-till-you-die models: input checks, compression, optimisation, errors.

Every model here is fitted by maximum likelihood with :func:`scipy.optimize.minimize`
(L-BFGS-B) on the *logarithms* of its parameters (so all parameters stay positive), with an
analytic gradient. Standard errors come from the inverse of the observed information matrix (the
Hessian of the negative log-likelihood at the optimum, computed by central differences of the
analytic gradient) in the natural parameter scale; confidence intervals at the model's ``alpha``
(95% by default) are Wald intervals on the log scale (``exp(log θ ± z · SE(θ)/θ)``), so they never
include zero.

Identical input rows (e.g. the same ``(frequency, recency, T)``) are compressed into one row
with a weight before fitting: the log-likelihood is a weighted sum, so this is exact, and data
on millions of customers usually has only tens of thousands of distinct rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from rmanalytics.errors import N_EXAMPLES, ConvergenceError, DataError, rule_message
from rmanalytics.estimator import interval_columns, z_value

__all__ = ["ConvergenceError", "LoyaltyInputError", "as_array", "check_columns", "check_rfm", "check_rule",
           "compress", "dot", "is_number", "like_input", "param_series", "fit_log_params", "hessian_from_gradient", 
           "standard_errors"]

Z95 = 1.959963984540054


class LoyaltyInputError(DataError):
    """The input summary breaks a rule of the model (the message names column, rule, rows)."""


def _example_rows(df: pd.DataFrame, mask: np.ndarray, columns: Sequence[str]) -> list[dict]:
    """Offending rows with their key (``customer_id`` when the summary has one, else the row label)."""
    idx = df.index[np.asarray(mask, dtype=bool)][:N_EXAMPLES]
    key = "customer_id" if "customer_id" in df.columns else None
    out = []
    for i in idx:
        ex = {key: df.at[i, key]} if key else {"row": i}
        ex.update({c: df.at[i, c] for c in columns})
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in ex.items()})
    return out


def check_columns(df: pd.DataFrame, columns: Sequence[str], table: str = "summary") -> None:
    """Raise :class:`LoyaltyInputError` when ``df`` lacks a column or has null/non-numeric values."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{table} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LoyaltyInputError(f"{table}: missing column(s) {missing}; available: {list(df.columns)}")
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise LoyaltyInputError(f"{table}.{c}: must be numeric, got dtype {df[c].dtype}")
        bad = ~np.isfinite(df[c].to_numpy(dtype=float))
        if bad.any():
            raise LoyaltyInputError(rule_message(f"{table}.{c}", "rule 'finite, not null'", int(bad.sum()),
                                                 _example_rows(df, bad, [c])))


def check_rule(df: pd.DataFrame, bad: np.ndarray, rule: str, columns: Sequence[str], table: str = "summary") -> None:
    """Raise :class:`LoyaltyInputError` naming the rule, the count and examples if any row is ``bad``."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        raise LoyaltyInputError(rule_message(
            f"{table}.{'/'.join(columns)}", f"rule '{rule}'", int(bad.sum()), _example_rows(df, bad, columns),
            hint=f"{len(df):,} rows checked; fix or drop the offending rows explicitly before fitting"))


def check_rfm(df: pd.DataFrame, table: str = "summary") -> None:
    """Check a BTYD summary: ``frequency``, ``recency``, ``T`` finite, non-negative and consistent.

    Rules: all >= 0; ``frequency`` is a whole number; ``recency <= T``; ``recency == 0`` when
    ``frequency == 0``. ``T == 0`` (first purchase on the last day) is allowed: such a customer
    adds nothing to the likelihood.
    """
    cols = ["frequency", "recency", "T"]
    check_columns(df, cols, table)
    f = df["frequency"].to_numpy(dtype=float)
    r = df["recency"].to_numpy(dtype=float)
    t = df["T"].to_numpy(dtype=float)
    for c, v in (("frequency", f), ("recency", r), ("T", t)):
        check_rule(df, v < 0, f"{c} >= 0", [c], table)
    check_rule(df, f != np.round(f), "frequency is a whole number of repeat purchases", ["frequency"], table)
    # tolerate float noise of a conversion from days
    check_rule(df, r > t * (1 + 1e-9) + 1e-12, "recency <= T", ["recency", "T"], table)
    check_rule(df, (f == 0) & (r > 0), "recency == 0 when frequency == 0", ["frequency", "recency"], table)


def compress(columns: Sequence[np.ndarray], weights: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows of the given equal-length columns into unique rows with weights.

    Exact for any weighted sum over rows. Linear time (hash-based :func:`pandas.factorize`).

    Returns
    -------
    (unique columns, weights): the weights sum the input weights (or count rows) per unique row.
    """
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    n_key = 1
    for col in columns:
        codes, uniques = pd.factorize(col, sort=False)
        key = key * len(uniques) + codes
        n_key *= len(uniques)
        if n_key > 2**40:  # re-densify before the product could overflow int64
            key, keys = pd.factorize(key, sort=False)
            key = key.astype(np.int64)
            n_key = len(keys)
    codes, uniques = pd.factorize(key, sort=False)
    # index of the first occurrence of each code (fast: reverse assignment keeps the first)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)
    w = np.bincount(codes, weights=weights, minlength=len(uniques)).astype(float)
    return [np.asarray(c)[first] for c in columns], w


@dataclass
class FitResult:
    """Outcome of :func:`fit_log_params`."""

    params: np.ndarray
    log_likelihood: float
    n_iter: int
    message: str


def fit_log_params(
    neg_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[np.ndarray],
    *,
    model: str,
    total_weight: float,
    max_iter: int = 5000,
    bound: float = 30.0,
) -> FitResult:
    """Minimise a (mean) negative log-likelihood over log-parameters with L-BFGS-B.

    ``neg_ll_and_grad(log_params)`` returns the objective and its gradient with respect to the
    log-parameters. Several starting points are tried; the best converged optimum wins. Raises
    :class:`ConvergenceError` with advice when none converges or the optimum sits on a bound.
    """
    best = None
    messages = []
    for x0 in starts:
        if best is not None and best.success and np.max(np.abs(best.jac)) < 1e-6:
            break  # converged cleanly from the first start: further starts only cost time
        x0 = np.asarray(x0, dtype=float)
        with np.errstate(all="ignore"):
            res = optimize.minimize(
                neg_ll_and_grad,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-bound, bound)] * len(x0),
                options={"maxiter": max_iter, "maxfun": 4 * max_iter, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
            )
        ok = np.isfinite(res.fun) and np.all(np.isfinite(res.x))
        grad_ok = ok and np.max(np.abs(res.jac)) < 1e-4
        gmax = np.max(np.abs(res.jac))
        messages.append(f"start {np.round(np.exp(x0), 4).tolist()}: {res.message} (|grad|={gmax:.2e})")
        if ok and (res.success or grad_ok) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise ConvergenceError(
            f"{model}: maximum-likelihood fit did not converge ({'; '.join(messages)}). Try: check the "
            "summary's time unit (T and recency of tens to hundreds of units fit best; use weeks rather "
            "than days), add a small penalizer (e.g. penalizer=0.001), or fit on more customers."
        )
    at_bound = np.abs(best.x) >= bound - 1e-6
    if at_bound.any():
        raise ConvergenceError(
            f"{model}: the likelihood keeps improving as parameter(s) {np.flatnonzero(at_bound).tolist()} go to "
            f"{'0 or infinity'} (log-parameters {np.round(best.x, 3).tolist()}); the data cannot identify the model. "
            "Try: a penalizer (e.g. penalizer=0.01), a longer calibration period, or more customers."
        )
    return FitResult(
        params=np.exp(best.x),
        log_likelihood=-float(best.fun) * total_weight,
        n_iter=int(best.nit),
        message=str(best.message),
    )


def hessian_from_gradient(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rel_step: float = 1e-6,
                          central: bool = False) -> np.ndarray:
    """Symmetrised finite-difference Hessian of a function given its analytic gradient.

    Forward differences (k+1 gradient evaluations, relative accuracy ~1e-5, ample for standard
    errors) or central differences (2k evaluations).
    """
    x = np.asarray(x, dtype=float)
    k = len(x)
    h = np.empty((k, k))
    g0 = None if central else grad(x)
    for i in range(k):
        step = rel_step * max(abs(x[i]), 1e-3)
        xp = x.copy()
        xp[i] += step
        if central:
            xm = x.copy()
            xm[i] -= step
            h[i] = (grad(xp) - grad(xm)) / (2 * step)
        else:
            h[i] = (grad(xp) - g0) / step
    return (h + h.T) / 2


def standard_errors(hessian: np.ndarray, names: Sequence[str], params: np.ndarray,
                    model: str = "model", alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Covariance, standard errors and (1 - alpha) log-scale Wald intervals from the Hessian of -LL.

    Raises :class:`ConvergenceError` when the Hessian is not positive definite (a flat or
    saddle-shaped likelihood: the optimum is not identified).

    Returns ``(covariance matrix as a DataFrame, summary table)``; the table has columns
    ``estimate, se, lower_<level>, upper_<level>`` (``lower_95, upper_95`` at alpha = 0.05)
    indexed by parameter name.
    """
    # scale to log-parameters so that the check does not depend on the units of the parameters
    scaled = hessian * np.outer(params, params)
    eig = np.linalg.eigvalsh(scaled) if np.all(np.isfinite(scaled)) else np.array([np.nan])
    if not np.all(np.isfinite(eig)) or eig.min() <= 1e-8 * max(eig.max(), 1e-300):
        raise ConvergenceError(
            f"{model}: the likelihood is flat at the optimum (parameters {dict(zip(names, np.round(params, 6)))}; "
            f"eigenvalues of the information matrix on the log scale {np.round(eig, 8).tolist()}), so the parameters "
            "are not identified. Typical cause: almost no repeat purchases, or a too short calibration period. Try: "
            "a longer calibration period, more customers, or a penalizer (e.g. penalizer=0.01)."
        )
    cov = np.linalg.inv(hessian)
    se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    log_se = se / params
    z = Z95 if alpha == 0.05 else z_value(alpha)
    lower, upper = interval_columns(alpha)
    table = pd.DataFrame(
        {
            "estimate": params,
            "se": se,
            lower: params * np.exp(-z * log_se),
            upper: params * np.exp(z * log_se),
        },
        index=pd.Index(list(names), name="parameter"),
    )
    return pd.DataFrame(cov, index=list(names), columns=list(names)), table


def dot(u: np.ndarray, v: np.ndarray) -> float:
    """Inner product without BLAS (BLAS threading costs far more than the product on shared cores)."""
    return float(np.einsum("i,i->", u, v))


def like_input(result: np.ndarray, *inputs):
    """Return a Series with the index of the first Series input, else the array (scalar if 0-d)."""
    for v in inputs:
        if isinstance(v, pd.Series) and np.ndim(result) == 1 and len(v) == len(result):
            return pd.Series(result, index=v.index)
    if np.ndim(result) == 0:
        return float(result)
    return result


def is_number(v) -> bool:
    """A real number that is not a bool (for checking constructor arguments in ``fit``)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def param_series(values, names) -> pd.Series:
    """Model parameters as a float Series indexed by ``parameter`` (the ``params_`` of the loyalty models)."""
    return pd.Series([float(v) for v in values], index=pd.Index(list(names), name="parameter"), name="value")


def as_array(*values) -> list[np.ndarray]:
    """Broadcast scalars / Series / arrays to float arrays of a common shape."""
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in values])
    return [np.array(a, dtype=float) for a in arrays]
