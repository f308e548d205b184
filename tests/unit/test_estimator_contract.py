"""One contract for every estimator of the package (like scikit-learn's ``check_estimator``).

Every model class in rmanalytics is listed in ``CASES`` with a small data set, how to fit it and one
prediction that needs a fitted model; ``test_every_estimator_is_covered`` fails when a new
``BaseEstimator`` subclass appears in the package without a case here. The rules (see
:mod:`rmanalytics.estimator`): inherit ``BaseEstimator``; ``__init__`` only stores its arguments;
``get_params`` / ``set_params`` round-trip and ``clone`` works; ``fit`` returns self and never
changes the constructor arguments; use before ``fit`` raises ``rmanalytics.errors.NotFittedError``
(a ``sklearn.exceptions.NotFittedError``); parametric models have ``params_`` as a Series and
``summary_`` with ``estimate, se, lower_<level>, upper_<level>`` at their ``alpha``; a fitted model
refits on a frame with other columns.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                            check_parameters_default_constructible, check_set_params)

import rmanalytics
from rmanalytics.churn import ChurnModel, KMBaseline
from rmanalytics.errors import NotFittedError, RmAnalyticsError
from rmanalytics.loyalty import BetaGeoModel, GammaGammaModel

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"


def _cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW / "cdnow_customers_summary.csv").rename(columns={"ID": "customer_id"})


def _cdnow_spend() -> pd.DataFrame:
    df = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    df = df.rename(columns={"ID": "customer_id", "x": "frequency", "zbar": "monetary_value", "t_x": "recency"})
    return df[df["frequency"] > 0].reset_index(drop=True)


def _rossi() -> pd.DataFrame:
    return load_rossi()


@dataclass
class Case:
    """How to run one estimator through the contract."""

    id: str
    make: Callable[[], BaseEstimator]
    data: Callable[[], pd.DataFrame]
    fit: Callable[[BaseEstimator, pd.DataFrame], object]
    predict: Callable[[BaseEstimator, pd.DataFrame], object]
    other_columns: Callable[[pd.DataFrame], pd.DataFrame]  # the same kind of data with other columns
    parametric: bool = True


def _bg_predict(m, d):
    return m.p_alive(d["frequency"], d["recency"], d["T"])


def _gg_predict(m, d):
    return m.expected_average_value(d["frequency"], d["monetary_value"])


def _rossi_fit(m, d):
    return m.fit(d, "week", "arrest")


def _churn_predict(m, d):
    return m.predict_churn_probability(d, 26, tenure_col="week")


CASES = [
    Case("BetaGeoModel", BetaGeoModel, _cdnow, lambda m, d: m.fit(d), _bg_predict,
         lambda d: d.drop(columns="customer_id").assign(segment="a", spend=1.0)),
    Case("GammaGammaModel", GammaGammaModel, _cdnow_spend, lambda m, d: m.fit(d), _gg_predict,
         lambda d: d[["frequency", "monetary_value"]].assign(region="north")),
    # covariates=None: the model uses every other column (covariates_), and must refit on a frame
    # with other columns (the bug of issue 17: fit overwrote the constructor argument)
    Case("ChurnModel-cox", lambda: ChurnModel("cox"), _rossi, _rossi_fit, _churn_predict,
         lambda d: d[["week", "arrest", "fin", "age"]]),
    Case("ChurnModel-cox-fast", lambda: ChurnModel("cox", covariates=["fin", "age", "prio"], solver="fast"),
         _rossi, _rossi_fit, _churn_predict, lambda d: d[["week", "arrest", "fin", "age", "prio"]].assign(extra=1)),
    Case("ChurnModel-weibull", lambda: ChurnModel("weibull_aft", covariates=["fin", "age", "prio"]),
         _rossi, _rossi_fit, _churn_predict, lambda d: d[["prio", "age", "fin", "arrest", "week"]]),
    Case("KMBaseline", lambda: KMBaseline("fin"), _rossi,
         lambda m, d: m.fit(d, "week", "arrest", entry_col=None),
         lambda m, d: m.predict_churn_probability(d, 26, tenure_col="week"),
         lambda d: d[["week", "arrest", "fin"]].assign(other=0), parametric=False),
]


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def case(request) -> Case:
    return request.param


@pytest.fixture(scope="module")
def data(case) -> pd.DataFrame:
    return case.data()


def test_every_estimator_is_covered():
    """Every BaseEstimator subclass defined in rmanalytics has a case above."""
    found = set()
    for mod in pkgutil.walk_packages(rmanalytics.__path__, "rmanalytics."):
        if mod.name.startswith(("rmanalytics.spark", "rmanalytics.__main__")):
            continue
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseEstimator) and cls.__module__.startswith("rmanalytics"):
                found.add(cls.__name__)
    covered = {type(c.make()).__name__ for c in CASES}
    assert found, "no estimators found"
    assert found <= covered, f"estimators without a contract case: {sorted(found - covered)}"


def test_sklearn_api_checks(case):
    """scikit-learn's own checks of the constructor and get/set_params (no fitting involved)."""
    est = case.make()
    name = type(est).__name__
    check_no_attributes_set_in_init(name, est)
    check_parameters_default_constructible(name, est)
    check_get_params_invariance(name, est)
    check_set_params(name, est)


def test_clone_and_params_round_trip(case):
    est = case.make()
    params = est.get_params()
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert est.set_params(**params) is est and est.get_params() == params
    if "alpha" in params:
        est.set_params(alpha=0.1)
        assert est.get_params()["alpha"] == 0.1 and clone(est).alpha == 0.1


def test_not_fitted_error_before_fit(case, data):
    est = case.make()
    with pytest.raises(NotFittedError, match="not fitted"):
        case.predict(est, data)
    # the package's error is also scikit-learn's (and an RmAnalyticsError for the CLI)
    assert issubclass(NotFittedError, SkNotFittedError) and issubclass(NotFittedError, RmAnalyticsError)


def test_fit_returns_self_and_keeps_params(case, data):
    est = case.make()
    before = {k: (list(v) if isinstance(v, list) else v) for k, v in est.get_params().items()}
    assert case.fit(est, data) is est
    after = est.get_params()
    assert after == before, f"fit changed constructor arguments: {before} -> {after}"
    case.predict(est, data)  # usable after fit
    # a clone of a fitted model is unfitted
    with pytest.raises(NotFittedError):
        case.predict(clone(est), data)


def test_learned_attributes(case, data):
    if not case.parametric:
        pytest.skip("non-parametric estimator: no params_/summary_ (Kaplan-Meier curves in kms_)")
    est = case.fit(case.make(), data)
    assert isinstance(est.params_, pd.Series)
    s = est.summary_
    assert isinstance(s, pd.DataFrame)
    assert list(s.columns[:4]) == ["estimate", "se", "lower_95", "upper_95"]
    np.testing.assert_allclose(s["estimate"].to_numpy(), np.asarray(est.params_, float))
    assert (s["lower_95"] < s["estimate"]).all() and (s["estimate"] < s["upper_95"]).all()
    # the level follows alpha
    est90 = case.fit(clone(est).set_params(alpha=0.1), data)
    assert list(est90.summary_.columns[:4]) == ["estimate", "se", "lower_90", "upper_90"]
    np.testing.assert_allclose(est90.params_.to_numpy(), est.params_.to_numpy(), rtol=1e-9)
    assert (est90.summary_["lower_90"] > s["lower_95"]).all()
    assert (est90.summary_["upper_90"] < s["upper_95"]).all()


def test_refit_on_other_columns(case, data):
    est = case.fit(case.make(), data)
    params = est.get_params()
    other = case.other_columns(data)
    assert case.fit(est, other) is est
    assert est.get_params() == params
    case.predict(est, other)


def test_bad_constructor_arguments_fail_in_fit(case, data):
    """Arguments are checked in fit (not in __init__), with a ParameterError."""
    from rmanalytics.errors import ParameterError

    est = case.make()
    if "alpha" not in est.get_params():
        pytest.skip("no alpha argument")
    bad = clone(est).set_params(alpha=1.5)  # constructing and setting never raise
    with pytest.raises(ParameterError, match="alpha"):
        case.fit(bad, data)
