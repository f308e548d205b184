"""What every fitted model of the package shares: the scikit-learn estimator contract.

Every model (:class:`~rmanalytics.loyalty.BetaGeoModel`, :class:`~rmanalytics.loyalty.GammaGammaModel`,
:class:`~rmanalytics.churn.ChurnModel`, :class:`~rmanalytics.churn.KMBaseline`) follows scikit-learn's
conventions, checked for all of them by ``tests/unit/test_estimator_contract.py``:

- it inherits :class:`sklearn.base.BaseEstimator`, ``__init__`` only stores its arguments (checked in
  ``fit``), so ``get_params`` / ``set_params`` / :func:`sklearn.base.clone` work;
- ``fit`` returns ``self`` and never changes the constructor arguments; learned state ends in ``_``;
- using a model before ``fit`` raises :class:`rmanalytics.errors.NotFittedError` (also a
  :class:`sklearn.exceptions.NotFittedError`);
- parametric models have ``params_`` (a pandas Series) and ``summary_`` (a DataFrame with columns
  ``estimate``, ``se``, ``lower_<level>``, ``upper_<level>`` where level = 100 (1 - ``alpha``), e.g.
  ``lower_95`` at the default ``alpha = 0.05``).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from rmanalytics.errors import NotFittedError, ParameterError


def check_fitted(estimator: object, attributes: str | Iterable[str] = "params_") -> None:
    """Raise :class:`~rmanalytics.errors.NotFittedError` unless ``estimator`` has the learned ``attributes``."""
    attrs = [attributes] if isinstance(attributes, str) else list(attributes)
    if not all(hasattr(estimator, a) for a in attrs):
        name = type(estimator).__name__
        raise NotFittedError(f"{name} is not fitted yet: call {name}(...).fit(data) first, then use it")


def check_alpha(alpha: float, where: str) -> float:
    """``alpha`` (1 - confidence level of the intervals) must lie in (0, 1); returns it as a float."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ParameterError(f"{where}: alpha (1 - confidence level) must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def interval_level(alpha: float) -> str:
    """The confidence level of ``alpha`` as a column suffix: 0.05 -> ``"95"``, 0.1 -> ``"90"``, 0.025 -> ``"97.5"``."""
    return f"{round(100 * (1 - alpha), 6):g}"


def interval_columns(alpha: float) -> tuple[str, str]:
    """Names of the lower and upper interval columns of ``summary_`` at ``alpha``: ``("lower_95", "upper_95")``."""
    level = interval_level(alpha)
    return f"lower_{level}", f"upper_{level}"


def z_value(alpha: float) -> float:
    """Two-sided standard-normal quantile of a (1 - alpha) interval (1.959964 at alpha = 0.05)."""
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2))
