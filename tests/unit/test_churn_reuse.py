"""Notebook 02 computes the survival frame, the behaviour covariates and the audit population once
and passes them on (issue 16): each reuse path must give exactly what the function computes by
itself, and fall back to computing when what it is given does not fit."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from tests.conftest import sample_churn_frames, sample_churn_tables

from rmanalytics import churn
from rmanalytics.churn.frame import follow_up_months, monthly_positions

COVS = ["customer_type", "risk_level", "log_aum", "n_products", "n_tx"]


@pytest.fixture(scope="module")
def tables():
    return sample_churn_tables()


@pytest.fixture(scope="module")
def frames(tables):
    w, day, week = sample_churn_frames(tables)
    return w, day, week, churn.behaviour_covariates(tables, week)


@pytest.mark.parametrize("grid", ["week", "month", "day"])
def test_regrid_equals_survival_frame_on_the_grid(tables, frames, grid):
    w, day, _, _ = frames
    before = day.copy()
    direct = churn.survival_frame(tables, observation_end=w.end, window_start=w.start, lookback_days=90,
                                  time_grid=grid)
    out = churn.regrid(day, grid)
    pd.testing.assert_frame_equal(out, direct, check_exact=True)
    assert out.attrs == direct.attrs
    pd.testing.assert_frame_equal(day, before, check_exact=True)  # the day frame is left as it was
    assert day.attrs["time_grid"] == "day"
    with pytest.raises(Exception, match="day-grid"):
        churn.regrid(churn.regrid(day, "week"), "month")


def test_monthly_positions(frames):
    _, _, week, mon = frames
    ids = week["customer_id"].to_numpy()
    lo, hi = follow_up_months(week)
    pos = monthly_positions(mon, ids, hi)
    m = pd.to_datetime(mon["month_start"]).to_numpy().astype("datetime64[M]").astype(np.int64)
    assert (mon["customer_id"].to_numpy()[pos] == ids).all() and (m[pos] == hi).all()
    assert (pos - monthly_positions(mon, ids, lo) == hi - lo).all()  # the months of a customer are one run
    assert monthly_positions(mon, ids, hi + 1) is None  # a month after the follow-up is not there
    assert monthly_positions(mon, np.array(["no such customer"]), hi[:1]) is None
    assert monthly_positions(mon.drop(index=[1]), ids, lo) is None  # a gap in a customer's months
    # allow_missing: -1 for the cells that are not there, the others' positions as before
    cells = monthly_positions(mon, np.concatenate([ids, ids, ["no such customer"]]),
                              np.concatenate([hi, hi + 1, hi[:1]]), allow_missing=True)
    assert (cells[:len(ids)] == pos).all() and (cells[len(ids):] == -1).all()
    assert monthly_positions(mon.drop(index=[1]), ids, lo, allow_missing=True) is None  # not one run a customer


def test_holdout_scores_reuse_equals_rebuild(tables, frames):
    w, day, week, mon = frames
    as_of = churn.default_as_of(w.end, [90, 180])
    kw = dict(covariates=COVS, horizon_days=180, window_start=w.start, observation_end=w.end)
    plain = churn.holdout_scores(tables, as_of, **kw)
    assert plain.attrs["reused"] == []
    pop = churn.audit_population(tables, as_of, [90, 180])
    given = churn.holdout_scores(tables, as_of, frame=day, monthly=mon, population=pop, **kw)
    assert given.attrs["reused"] == ["frame", "monthly", "population"]
    pd.testing.assert_series_equal(given, plain, check_exact=True)
    # what does not fit is recomputed: a week frame, behaviour covariates missing a month, another as_of
    short = mon.drop(index=mon.groupby("customer_id").tail(1).index[:50])
    other = churn.holdout_scores(tables, as_of, frame=week, monthly=short,
                                 population=churn.audit_population(tables, as_of - pd.Timedelta(days=31), [180]), **kw)
    assert other.attrs["reused"] == []
    pd.testing.assert_series_equal(other, plain, check_exact=True)
    inact = churn.survival_frame(tables, observation_end=w.end, window_start=w.start, definition="inactivity")
    assert churn.holdout_scores(tables, as_of, frame=inact, **kw).attrs["reused"] == []
    nob = dict(kw, behaviour=False)
    pd.testing.assert_series_equal(churn.holdout_scores(tables, as_of, frame=day, monthly=mon, **nob),
                                   churn.holdout_scores(tables, as_of, **nob), check_exact=True)


def test_audit_and_tradeoff_with_a_population(tables, frames):
    w = frames[0]
    as_of = churn.default_as_of(w.end, [90, 180])
    pop = churn.audit_population(tables, as_of, [90, 180], families=["wealth"])
    assert pop.attrs["as_of"] == as_of.date().isoformat() and pop["customer_id"].is_monotonic_increasing
    s = churn.holdout_scores(tables, as_of, covariates=COVS, window_start=w.start, observation_end=w.end,
                             population=pop)
    pd.testing.assert_frame_equal(churn.warning_audit(tables, as_of, scores=s, population=pop),
                                  churn.warning_audit(tables, as_of, scores=s), check_exact=True)
    pd.testing.assert_frame_equal(churn.warning_tradeoff(tables, as_of, population=pop),
                                  churn.warning_tradeoff(tables, as_of), check_exact=True)
    # a population for other settings is not used
    pd.testing.assert_frame_equal(churn.warning_audit(tables, as_of, population=pop, recent_days=60),
                                  churn.warning_audit(tables, as_of, recent_days=60), check_exact=True)


def test_time_grid_effect_with_given_monthly(tables, frames):
    _, day, week, mon = frames
    covs = COVS + ["rm_left", *churn.BEHAVIOUR_COVARIATES]
    model = churn.ChurnModel("cox", covariates=covs, solver="fast")
    kw = dict(tables=tables, behaviour=True)
    a = churn.time_grid_effect({"day": day, "week": week}, model, monthly=mon, **kw)
    b = churn.time_grid_effect({"day": day, "week": week}, model, **kw)
    keep = [c for c in a.columns if not c.endswith("fit_seconds")]
    pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


def test_churn_risk_now_decides_itself_whether_the_model_fits(tables, frames):
    from rmanalytics.book import churn_risk_now

    w, day, week, mon = frames
    covs = COVS + ["rm_left", *churn.BEHAVIOUR_COVARIATES]

    def fit(f, m, **kw):
        long = churn.time_varying_frame(f, monthly=m, columns=COVS)
        return churn.ChurnModel("cox", covariates=covs, solver="fast", **kw).fit(
            long, "stop", "event", entry_col="start", id_col="customer_id")

    plain = churn_risk_now(tables, w.end, time_grid="week")
    assert plain.attrs["model_reused"] is False
    alike = churn_risk_now(tables, w.end, time_grid="week", model=fit(week, mon))  # notebook 02's model
    assert alike.attrs["model_reused"] is True
    pd.testing.assert_frame_equal(alike, plain, check_exact=True)
    # fitted otherwise: another window start, grid, penalty or churn definition -> refitted here
    late = churn.survival_frame(tables, observation_end=w.end, window_start=w.start + pd.Timedelta(days=60),
                                time_grid="week")
    inact = churn.survival_frame(tables, observation_end=w.end, window_start=w.start, time_grid="week",
                                 definition="inactivity")
    for m in (fit(late, churn.behaviour_covariates(tables, late)), fit(day, mon), fit(week, mon, penalizer=0.1),
              fit(inact, churn.behaviour_covariates(tables, inact))):
        other = churn_risk_now(tables, w.end, time_grid="week", model=m)
        assert other.attrs["model_reused"] is False
        pd.testing.assert_frame_equal(other, plain, check_exact=True)


def test_risk_driver_text_equals_the_per_customer_format():
    from rmanalytics.book.value import _driver_text

    rng = np.random.default_rng(3)
    names = np.array(["log_aum", "customer_type=retail", "rm_left", "n_tx"])
    vals = rng.normal(size=(5000, 4)) * rng.choice([0.01, 1.0, 3.0], size=(5000, 4))
    vals[:50] = -1.0          # no driver
    vals[50:100, :2] = 0.5    # ties
    vals[50:100, 2:] = 0.0
    order = np.argsort(-vals, axis=1)[:, :3]
    per_row = [", ".join(f"{names[j]} (x{np.exp(vals[i, j]):.2f})" for j in order[i] if vals[i, j] > 0)
               for i in range(len(vals))]
    assert list(_driver_text(names, vals, order)) == per_row


def test_constant_covariate_is_still_reported():
    from rmanalytics.churn.model import ChurnModelError

    rng = np.random.default_rng(0)
    f = pd.DataFrame({"duration": rng.integers(1, 100, 300).astype(float), "event": rng.integers(0, 2, 300),
                      "x": rng.normal(size=300), "c": 2.0})
    with pytest.raises(ChurnModelError, match=r"\['c'\] are constant"):
        churn.ChurnModel("cox", covariates=["x", "c"], solver="fast").fit(f)


def test_retention_table_groups_from_the_needed_columns_only(frames):
    """The per-group Kaplan-Meier fits see the same rows as a filter of the whole frame."""
    from lifelines import KaplanMeierFitter

    f = churn.add_segments(frames[2])
    tab = churn.retention_table(f, "tier")
    for g in ("value_low", "value_high"):
        sub = f[f["tier"] == g]
        km = KaplanMeierFitter().fit(sub["duration"], sub["event"], entry=sub["entry"])
        assert tab.loc[g, "retention_12m"] == float(km.survival_function_at_times(12 * 365.25 / 12).iloc[0])
        assert tab.loc[g, "customers"] == len(sub) and tab.loc[g, "churned"] == int(sub["event"].sum())


def test_churn_risk_now_uses_a_current_state_only_when_measured_alike(tables, frames):
    from rmanalytics.book import churn_risk_now

    w, _, week, mon = frames
    long = churn.time_varying_frame(week, monthly=mon, columns=COVS)
    m = churn.ChurnModel("cox", covariates=COVS + ["rm_left", *churn.BEHAVIOUR_COVARIATES], solver="fast").fit(
        long, "stop", "event", entry_col="start", id_col="customer_id")
    plain = churn_risk_now(tables, w.end, time_grid="week", model=m)
    cur = churn.current_state(tables, w.end)
    assert cur.attrs["recent_days"] == 90
    pd.testing.assert_frame_equal(churn_risk_now(tables, w.end, time_grid="week", model=m, current=cur), plain,
                                  check_exact=True)
    other = churn.current_state(tables, w.end, recent_days=30)  # another window: not used
    pd.testing.assert_frame_equal(churn_risk_now(tables, w.end, time_grid="week", model=m, current=other), plain,
                                  check_exact=True)
