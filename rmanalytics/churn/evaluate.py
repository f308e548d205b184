"""Honest evaluation of churn models on a time-based hold-out, next to a naive baseline.

The model is fitted on follow-up up to a cutoff date (:func:`~rmanalytics.churn.frame.holdout_split`)
and judged on the customers active at the cutoff: does it rank who churns first (concordance), how
close are its survival curves over the horizon (integrated Brier score, IPCW), and are its churn
probabilities at the horizon calibrated (predicted vs observed by decile)? The baseline is
Kaplan-Meier by segment: every customer of a segment gets the segment's conditional retention.

The IPCW Brier score (Graf et al. 1999) is written here: lifelines has none, and scikit-survival
is not a dependency. Remaining time after the cutoff is the time scale; censoring weights come
from a Kaplan-Meier fit of the censoring distribution of the hold-out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from rmanalytics.churn.retention import km_by_group
from rmanalytics.errors import ParameterError
from rmanalytics.estimator import check_fitted


class KMBaseline(BaseEstimator):
    """Naive benchmark: Kaplan-Meier retention by group (with delayed entry), conditional on tenure.

    A non-parametric scikit-learn style estimator (no ``params_``/``summary_``): ``kms_`` holds one
    lifelines KaplanMeierFitter per group, ``all_`` the pooled one (used for unseen groups).
    """

    def __init__(self, group_col: str | None = None) -> None:
        self.group_col = group_col

    def fit(self, frame: pd.DataFrame, duration_col: str = "duration", event_col: str = "event",
            entry_col: str | None = "entry") -> "KMBaseline":
        """Fit the per-group Kaplan-Meier curves (durations in days); returns self."""
        self.kms_ = km_by_group(frame, self.group_col, duration_col=duration_col, event_col=event_col,
                                entry_col=entry_col)
        self.all_ = km_by_group(frame, None, duration_col=duration_col, event_col=event_col,
                                entry_col=entry_col)["all"]
        return self

    def _S(self, frame: pd.DataFrame, t: np.ndarray) -> np.ndarray:
        check_fitted(self, "kms_")
        out = np.empty(len(frame))
        keys = frame[self.group_col].to_numpy() if self.group_col else np.array(["all"] * len(frame), dtype=object)
        for g in pd.unique(keys):
            m = keys == g
            km = self.kms_.get(g, self.all_) if self.group_col else self.all_
            out[m] = km.survival_function_at_times(t[m]).to_numpy()
        return out

    def conditional_survival(self, frame: pd.DataFrame, tenure: np.ndarray, u: np.ndarray) -> np.ndarray:
        """S(t0 + u) / S(t0) per row (columns) on the grid ``u`` (rows), days."""
        S0 = np.clip(self._S(frame, tenure), 1e-12, None)
        return np.stack([self._S(frame, tenure + ui) / S0 for ui in u])

    def predict_churn_probability(self, frame: pd.DataFrame, horizon_days: float,
                                  tenure_col: str = "tenure") -> pd.Series:
        t0 = frame[tenure_col].to_numpy(float)
        s = self.conditional_survival(frame, t0, np.array([float(horizon_days)]))[0]
        return pd.Series(1 - s, index=frame.index)


def _km_censoring(remaining: np.ndarray, event: np.ndarray):
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(remaining, 1 - event)
    return lambda t: np.clip(km.survival_function_at_times(np.asarray(t, float)).to_numpy(), 1e-6, 1)


def brier_scores(cond_surv: np.ndarray, remaining: np.ndarray, event: np.ndarray, u: np.ndarray) -> np.ndarray:
    """IPCW Brier score at each time of ``u`` (days after the cutoff).

    cond_surv : (len(u), n) predicted S(t0 + u) / S(t0).
    remaining, event : observed remaining time after the cutoff (days) and churn indicator.
    """
    G = _km_censoring(remaining, event)
    G_T = G(np.maximum(remaining - 1e-9, 0))  # G(T-)
    out = np.empty(len(u))
    for i, t in enumerate(u):
        died = (remaining <= t) & (event == 1)
        alive = remaining > t
        s = cond_surv[i]
        out[i] = np.mean(np.where(died, s**2 / G_T, 0.0) + np.where(alive, (1 - s) ** 2 / G(np.array([t]))[0], 0.0))
    return out


def integrated_brier_score(cond_surv: np.ndarray, remaining: np.ndarray, event: np.ndarray,
                           u: np.ndarray) -> float:
    """Integrated Brier score over ``u`` (trapezoid, divided by the span): 0 perfect, 0.25 coin flip."""
    bs = brier_scores(cond_surv, remaining, event, u)
    return float(np.trapezoid(bs, u) / (u[-1] - u[0]))


def calibration_table(p_pred: np.ndarray, remaining: np.ndarray, event: np.ndarray, horizon_days: float,
                      n_bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed churn within the horizon, by decile of predicted probability.

    Observed = 1 - Kaplan-Meier retention at the horizon within the bin (handles censoring).
    """
    from lifelines import KaplanMeierFitter

    p_pred = np.asarray(p_pred, float)
    bins = pd.qcut(pd.Series(p_pred).rank(method="first"), q=min(n_bins, len(p_pred)), labels=False)
    rows = []
    for b in sorted(bins.unique()):
        m = (bins == b).to_numpy()
        km = KaplanMeierFitter().fit(remaining[m], event[m])
        obs = 1 - float(km.survival_function_at_times(float(horizon_days)).iloc[0])
        rows.append({"decile": int(b) + 1, "customers": int(m.sum()), "predicted": float(p_pred[m].mean()),
                     "observed": obs})
    return pd.DataFrame(rows).set_index("decile")


def evaluate_holdout(model, baseline: KMBaseline, test: pd.DataFrame, horizon_days: float, *,
                     duration_col: str = "duration", event_col: str = "event", tenure_col: str = "tenure",
                     n_grid: int = 24) -> dict:
    """Compare a fitted :class:`ChurnModel` with the KM baseline on a hold-out set.

    ``test`` holds customers active at the cutoff with ``tenure`` (days since open at the cutoff),
    and duration/event followed for at most ``horizon_days`` after it. Returns
    ``{"table": metrics by method, "calibration": {method: decile table}}``; the table has
    concordance, integrated Brier score over (0, horizon], Brier score at the horizon and mean
    absolute calibration error at the horizon. Concordance ranks customers by predicted churn
    probability within the horizon against their remaining time after the cutoff.
    """
    from rmanalytics.concordance import concordance_index

    t0 = test[tenure_col].to_numpy(float)
    remaining = test[duration_col].to_numpy(float) - t0
    event = test[event_col].to_numpy(int)
    u = np.linspace(0, float(horizon_days), n_grid + 1)[1:]
    methods = {"model": model, "baseline (KM by segment)": baseline}
    rows, cal = [], {}
    for name, m in methods.items():  # one method's survival matrix (grid x customers) at a time
        S = m.conditional_survival(test, t0, u)
        p_h = 1 - S[-1]
        c = cal[name] = calibration_table(p_h, remaining, event, horizon_days)
        rows.append({
            "method": name,
            "concordance": float(concordance_index(remaining, -p_h, event)),
            "integrated_brier_score": integrated_brier_score(S, remaining, event, u),
            "brier_at_horizon": float(brier_scores(S[-1:], remaining, event, u[-1:])[0]),
            "calibration_error": float((c["predicted"] - c["observed"]).abs().mean()),
            "mean_predicted": float(p_h.mean()),
        })
        del S
    km_obs = calibration_table(np.zeros(len(test)), remaining, event, horizon_days, n_bins=1)["observed"].iloc[0]
    table = pd.DataFrame(rows).set_index("method")
    table["observed_churn"] = float(km_obs)
    return {"table": table, "calibration": cal}


def ph_check(model, frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Proportional-hazards check of a fitted Cox :class:`ChurnModel` (Grambsch-Therneau test).

    Scaled Schoenfeld residuals against the rank of the event times, one chi-square(1) test per
    covariate — the statistic of lifelines' ``proportional_hazard_test(time_transform="rank")``,
    computed here with delayed entry (risk sets ``entry < t <= duration``), which lifelines does
    not implement for ``entry_col``; expectations use Breslow risk sets (no tie correction).
    Returns statistic, p-value, ``violated`` and a plain-language ``meaning`` per covariate.
    """
    from scipy import stats

    if model.model != "cox":
        raise ParameterError("ph_check needs a Cox model")
    from rmanalytics.churn.model import CHUNK_ROWS

    stop = frame[model.duration_col_].to_numpy(float)
    ev = frame[model.event_col_].to_numpy().astype(bool)
    start = frame[model.entry_col_].to_numpy(float) if model.entry_col_ else np.zeros(len(frame))
    t = stop[ev]
    times = np.unique(t)
    k, d = len(times), len(model.columns_)
    # risk-set sums {start < t <= stop} of phi and phi * x at every event time: per-time totals by the
    # index of each row's stop and start among the event times, over row chunks (the design matrix of
    # one chunk at a time: a long start/stop frame of tens of millions of rows never is in memory whole)
    by_hi, by_lo = np.zeros((k + 1, d + 1)), np.zeros((k + 1, d + 1))
    Xd = []
    for i in range(0, len(frame), CHUNK_ROWS):
        sl = slice(i, i + CHUNK_ROWS)
        Xc = model.design_matrix(frame.iloc[sl])
        phi = model._partial_hazard(Xc)
        Xc = Xc.to_numpy()
        Xd.append(Xc[ev[sl]])
        vals = np.column_stack([phi, phi[:, None] * Xc])
        hi = np.searchsorted(times, stop[sl], side="right")
        lo = np.searchsorted(times, start[sl], side="right")
        for j in range(d + 1):
            by_hi[:, j] += np.bincount(hi, weights=vals[:, j], minlength=k + 1)
            by_lo[:, j] += np.bincount(lo, weights=vals[:, j], minlength=k + 1)
    at_risk = np.cumsum(by_hi[::-1], axis=0)[::-1][1:] - np.cumsum(by_lo[::-1], axis=0)[::-1][1:]
    at_risk = at_risk[np.searchsorted(times, t)]
    S0, S1 = at_risk[:, 0], at_risk[:, 1:]
    resid = np.concatenate(Xd) - S1 / S0[:, None]
    n_deaths = int(ev.sum())
    V = model.variance_matrix_.to_numpy()
    scaled = n_deaths * resid @ V
    g = stats.rankdata(t, method="ordinal").astype(float)  # k-th event in time order (lifelines' "rank")
    g = g - g.mean()
    se2 = np.diag(V)
    T = (g[:, None] * scaled).sum(0) ** 2 / (n_deaths * se2 * (g**2).sum())
    res = pd.DataFrame({"statistic": T, "p_value": stats.chi2.sf(T, 1)}, index=model.columns_)
    res["violated"] = res["p_value"] < alpha
    res["meaning"] = np.where(
        res["violated"],
        "effect changes with tenure: the hazard ratio is an average over tenure; rankings stay useful, but "
        "consider strata=<this column> (categorical) or a tenure interaction before quoting the ratio",
        "no evidence that the effect changes with tenure: the hazard ratio can be read as constant")
    return res


def ph_narrative(ph: pd.DataFrame) -> str:
    """One paragraph for users about the proportional-hazards check."""
    bad = ph.index[ph["violated"]].tolist()
    if not bad:
        return ("Proportional hazards: no covariate shows a tenure-dependent effect at the 5% level, so each hazard "
                "ratio can be read as a constant multiplier of churn risk at every tenure.")
    return (f"Proportional hazards: the effect of {', '.join(bad)} changes with tenure (Schoenfeld test, 5% level). "
            "Their hazard ratios are tenure-averaged; the risk ranking and short-horizon churn probabilities remain "
            "usable, but for statements about these covariates stratify on them (ChurnModel(strata=...)) or compare "
            "Kaplan-Meier curves by group. With large data tiny, harmless departures also test significant.")


def time_grid_effect(frames: dict[str, pd.DataFrame], model, *, reference: str = "day", tables: dict | None = None,
                     behaviour: bool = False, engine: str | None = None,
                     id_col: str = "customer_id", monthly: pd.DataFrame | None = None) -> pd.DataFrame:
    """How much the grid of event times moves a Cox model's coefficients.

    ``frames``: survival frames of the same customers on different grids (``{"day": ..., "week": ...}``,
    from :func:`~rmanalytics.churn.frame.survival_frame`); ``model``: a :class:`ChurnModel` whose
    unfitted clone is fitted on the time-varying frame of each (with the monthly behaviour covariates
    of :func:`~rmanalytics.churn.frame.behaviour_covariates` from ``tables`` when ``behaviour``). Returns one row per design column
    with ``<grid>_coef``, ``<grid>_se(coef)``, ``<grid>_fit_seconds`` per grid (reference grid first)
    and, when another grid is present, ``shift_in_se``: (coef on the last other grid - coef on the
    reference grid) / SE on the reference grid.

    ``monthly``: behaviour covariates already computed (e.g. for the coarsest grid's frame, whose
    follow-up covers the finer grids'); used for each frame whose every customer-month it holds,
    else they are computed from ``tables`` (same values either way).
    """
    import time

    from sklearn.base import clone

    from rmanalytics.churn.frame import (BEHAVIOUR_COVARIATES, behaviour_covariates, follow_up_months,
                                         monthly_positions, time_varying_frame)

    def covers(f: pd.DataFrame) -> bool:
        ids = f[id_col].to_numpy()  # every month of a customer's run is there when both ends are
        return monthly_positions(monthly, np.concatenate([ids, ids]), np.concatenate(follow_up_months(f))) is not None

    if behaviour and tables is None:
        raise ParameterError("time_grid_effect: behaviour=True needs the contract tables")
    if reference not in frames:
        raise ParameterError(f"time_grid_effect: the reference grid {reference!r} is not among {list(frames)}")
    rows = {}
    for grid in dict.fromkeys([reference, *frames]):
        t0 = time.perf_counter()
        f = frames[grid]
        mon = None
        if behaviour:
            mon = monthly if monthly is not None and covers(f) else behaviour_covariates(tables, f, engine=engine)
        static = None if model.covariates is None else [
            c for c in model.covariates if c not in ("rm_left", *BEHAVIOUR_COVARIATES)]  # only what the fit uses
        long = time_varying_frame(f, monthly=mon, columns=static)
        del mon
        m = clone(model).fit(long, "stop", "event", entry_col="start", id_col=id_col)
        del long
        rows[grid] = pd.concat([m.params_.rename("coef"), m.summary_["se(coef)"]], axis=1).assign(
            fit_seconds=time.perf_counter() - t0)
    table = pd.concat(rows, axis=1)
    others = [g for g in rows if g != reference]
    if others:
        g = others[-1]
        table["shift_in_se"] = (table[(g, "coef")] - table[(reference, "coef")]) / table[(reference, "se(coef)")]
    table.columns = ["_".join(c) if isinstance(c, tuple) and c[1] else (c[0] if isinstance(c, tuple) else c)
                     for c in table.columns]
    return table
