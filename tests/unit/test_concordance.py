"""rmanalytics.concordance: Harrell's C equal to lifelines' on random data with ties and censoring."""

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index as lifelines_ci

from rmanalytics.concordance import NoAdmissiblePairsError, concordance_index, concordance_summary
from rmanalytics.errors import DataError


def _both(t, s, e=None):
    try:
        a = lifelines_ci(t, s, e)
    except ZeroDivisionError:
        a = "no pairs"
    try:
        b = concordance_index(t, s, e)
    except NoAdmissiblePairsError:
        b = "no pairs"
    return a, b


def test_equals_lifelines_on_random_inputs_with_ties_and_censoring():
    rng = np.random.default_rng(7)
    for _ in range(1500):
        n = int(rng.integers(1, 80))
        t = rng.integers(0, int(rng.integers(1, 25)), n).astype(float)
        if rng.random() < 0.3:
            t = rng.exponential(10, n)  # no ties in time
        s = rng.integers(0, int(rng.integers(1, 25)), n).astype(float)
        if rng.random() < 0.3:
            s = rng.normal(size=n)  # no ties in score
        e = (rng.random(n) < rng.random()).astype(int)
        if rng.random() < 0.1:
            e = None  # all events
        a, b = _both(t, s, e)
        if isinstance(a, float):
            assert b == pytest.approx(a, rel=0, abs=1e-12)
        else:
            assert a == b


def test_equals_lifelines_on_a_larger_grid_exactly():
    rng = np.random.default_rng(11)
    n = 20_000
    t = np.ceil(rng.exponential(400, n) / 7) * 7
    s = np.round(rng.normal(size=n), 2)
    e = rng.random(n) < 0.2
    assert concordance_index(t, s, e) == lifelines_ci(t, s, e)
    assert concordance_index(pd.Series(t), pd.Series(-s), pd.Series(e.astype(int))) == lifelines_ci(t, -s, e)


def test_counts_by_hand():
    # times 1(event) 2(censored) 2(event) 3(event): admissible pairs (1,2c) (1,2e) (1,3) (2e,3) (2e,2c)
    t, e = [1, 2, 2, 3], [1, 0, 1, 1]
    s = [1, 5, 2, 2]   # predicted survival; (2e,3) tied
    correct, tied, pairs = concordance_summary(t, s, e)
    assert (correct, tied, pairs) == (4, 1, 5)  # (1,.) all correct; (2e,2c): censored 5 > 2 correct
    assert concordance_index(t, s, e) == pytest.approx(4.5 / 5)
    assert concordance_index([1, 2, 3], [1, 2, 3]) == 1.0
    assert concordance_index([1, 2, 3], [3, 2, 1]) == 0.0
    assert concordance_index([1, 2, 3], [0, 0, 0]) == 0.5


@pytest.mark.parametrize("t,s,e", [
    ([1, 2, 3], [1, 2, 3], [0, 0, 0]),      # no event
    ([5, 5, 5], [1, 2, 3], [1, 1, 1]),      # all events at one time
    ([1, 2], [1, 2], [0, 1]),               # the only event is the last time
    ([3], [1], [1]),                         # one subject
])
def test_no_admissible_pairs_raises_a_value_error_that_lifelines_callers_still_catch(t, s, e):
    with pytest.raises(ZeroDivisionError):
        lifelines_ci(t, s, e)
    with pytest.raises(NoAdmissiblePairsError) as err:
        concordance_index(t, s, e)
    assert isinstance(err.value, DataError) and isinstance(err.value, ValueError)
    assert isinstance(err.value, ZeroDivisionError)
    assert "no admissible pairs" in str(err.value)


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        concordance_index([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        concordance_index([1, 2], [1, np.nan])
    with pytest.raises(ValueError, match="same shape"):
        concordance_index([1, 2, 3], [1, 2])
    assert concordance_index(np.array([[1], [2], [3]]), np.array([[1, 2, 3]])) == 1.0


def _radix(t, s):
    """The censored path's counts (dominance count), which the all-events fast path must equal."""
    from unittest import mock

    import rmanalytics.concordance as C

    with mock.patch.object(C, "_uncensored_summary", lambda t, s: None):
        return concordance_summary(t, s)


def test_all_events_fast_path_gives_the_exact_counts_of_the_general_path():
    import rmanalytics.concordance as C

    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(2, 60))
        t = rng.integers(0, int(rng.integers(1, 12)), n).astype(float)
        s = rng.integers(-5, int(rng.integers(-4, 8)), n).astype(float) * rng.choice([1.0, -0.0], n)
        if rng.random() < 0.3:
            s = -s  # -0.0 next to 0.0: equal scores
        fast = C._uncensored_summary(t, s)
        assert fast == _radix(t, s), (t, s)
        assert concordance_summary(t, s, np.ones(n)) == fast  # an all-ones event vector takes it too
    # larger, with many ties (fees: zeros and cents) and scores with ties: exact integers
    n = 200_000
    t = np.round(rng.gamma(0.5, 100, n) * (rng.random(n) < 0.7), 2)
    s = np.round(rng.normal(size=n) + t / 300, 2)
    assert C._uncensored_summary(t, s) == _radix(t, s)
    assert concordance_index(t[:20_000], s[:20_000]) == lifelines_ci(t[:20_000], s[:20_000])


def test_all_events_fast_path_edge_cases_and_fallback(monkeypatch):
    import rmanalytics.concordance as C

    assert C._uncensored_summary(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])) == (0, 0, 0)
    assert C._uncensored_summary(np.array([1.0, 2.0, 2.0]), np.array([5.0, 5.0, 5.0])) == (0, 2, 2)
    assert C._uncensored_summary(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == (3, 0, 3)
    assert C._uncensored_summary(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == (0, 0, 3)
    monkeypatch.setattr(C, "EXACT_TAU_PAIRS", 10)  # more pairs than tau-b gives exactly: the general path
    t, s = np.arange(6.0), np.array([1.0, 0.0, 3.0, 2.0, 2.0, 5.0])
    assert C._uncensored_summary(t, s) is None
    assert concordance_summary(t, s) == _radix(t, s)
