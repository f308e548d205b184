"""Driver analysis: which RM activities are *associated* with KPI outcomes.

Everything here measures association, not cause: activities are chosen by RMs who know their
books, so a high importance means "predictive of the outcome in held-out RMs / periods", nothing
more. The notebook says so, and says plainly when no model beats the naive baseline.

Method
------
1. :func:`activity_panel`: RM x month panel; outcome = log fee yield ``log(fee_income / volume)``
   minus the month's cross-RM mean (this removes the market and the cycle), features = the
   activities at lags 0..L (lag in months).
2. :func:`driver_analysis`: scikit-learn models (ridge, random forest) against a
   ``DummyRegressor`` baseline, cross-validated with ``GroupKFold`` by RM and with forward
   time blocks; held-out permutation importance with percentile intervals over folds x repeats.
   Correlated activities (|Pearson r| above a threshold) and the lags of one activity are permuted
   *together* as a group. scikit-learn's ``permutation_importance`` permutes one column at a
   time, so the grouped version is written here (same algorithm, a joint row permutation).
3. :func:`fe_regression`: log-linear panel regression with RM and month fixed effects and
   RM-clustered standard errors (the exact two-way within transformation of
   :mod:`.fixed_effects`, equal to least squares with RM and month dummies; no statsmodels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rmanalytics.engine import one_blas_thread
from rmanalytics.errors import DataError, ParameterError


DEFAULT_ACTIVITIES = ("visits", "calls", "cross_sell_offers", "digital_usage")


def activity_panel(
    monthly: pd.DataFrame,
    *,
    activities: tuple[str, ...] = DEFAULT_ACTIVITIES,
    value: str = "fee_income",
    volume: str = "volume",
    lags: tuple[int, ...] = (0, 1),
    unit: str = "rm_id",
    time: str = "month_start",
) -> pd.DataFrame:
    """RM x month panel with the outcome ``y`` and lagged activity features ``<activity>_lag<k>``.

    ``y = log(value / volume) - mean over RMs of the same month`` (dimensionless log yield,
    market-adjusted). Rows whose value or volume is <= 0, or that lack a lagged month, cannot be
    used; their counts are in ``attrs['n_excluded_nonpositive']`` and ``attrs['n_excluded_lag']``.
    """
    miss = [c for c in (unit, time, value, volume, *activities) if c not in monthly.columns]
    if miss:
        raise DataError(f"activity_panel: monthly frame lacks columns {miss}")
    df = monthly[[unit, time, value, volume, *activities]].copy()
    df[time] = pd.to_datetime(df[time])
    df = df.sort_values([unit, time])
    feats = []
    for a in activities:
        for k in lags:
            name = f"{a}_lag{k}"
            if k == 0:
                df[name] = df[a].astype(float)
            else:
                shifted = df[[unit, time, a]].copy()
                shifted[time] = shifted[time] + pd.DateOffset(months=k)
                df = df.merge(shifted.rename(columns={a: name}), on=[unit, time], how="left")
            feats.append(name)
    ok = (df[value] > 0) & (df[volume] > 0)
    n_nonpos = int((~ok).sum())
    df = df[ok].copy()
    df["y_raw"] = np.log(df[value] / df[volume])
    df["y"] = df["y_raw"] - df.groupby(time)["y_raw"].transform("mean")
    lag_ok = df[feats].notna().all(axis=1)
    n_lag = int((~lag_ok).sum())
    df = df[lag_ok].reset_index(drop=True)
    df.attrs.update(features=feats, n_excluded_nonpositive=n_nonpos, n_excluded_lag=n_lag)
    return df


def feature_groups(panel: pd.DataFrame, features: list[str], *, corr_threshold: float = 0.9) -> dict[str, list[str]]:
    """Group features: all lags of one activity together, and activities whose lag-0 (or first)
    columns correlate above ``corr_threshold`` in absolute value (single linkage)."""
    base = {}
    for f in features:
        b = f.rsplit("_lag", 1)[0]
        base.setdefault(b, []).append(f)
    names = list(base)
    parent = {n: n for n in names}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    rep = panel[[base[n][0] for n in names]].astype(float)
    rep.columns = names
    corr = rep.corr().abs().fillna(0.0)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if corr.at[a, b] > corr_threshold:
                parent[find(b)] = find(a)
    groups: dict[str, list[str]] = {}
    for n in names:
        root = find(n)
        groups.setdefault(root, [])
    for n in names:
        groups[find(n)].extend(base[n])
    return {"+".join(sorted({f.rsplit("_lag", 1)[0] for f in v})): v for v in groups.values()}


def _time_folds(periods: pd.Series, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    uniq = np.sort(periods.unique())
    blocks = np.array_split(uniq, n_splits + 1)
    folds = []
    for k in range(1, len(blocks)):
        train = np.isin(periods, np.concatenate(blocks[:k]))
        test = np.isin(periods, blocks[k])
        folds.append((np.flatnonzero(train), np.flatnonzero(test)))
    return folds


def default_models(seed: int = 0, n_jobs: int = 1) -> dict[str, object]:
    """Ridge (standardised features) and a small random forest. ``n_jobs``: threads building the
    forest's trees (0: :func:`rmanalytics.engine.cpu_share`, the CPUs this kernel may use: all of
    them alone, its share when run-all runs notebooks side by side); the trees are the same for any
    value (each tree's random state is drawn before they are built), only the wall time changes
    (:func:`driver_analysis` predicts with one thread, so the sum over trees keeps its order and the
    scores are identical)."""
    from sklearn.ensemble import RandomForestRegressor  # scikit-learn on first use: 2 s of imports
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if n_jobs == 0:
        from rmanalytics.engine import cpu_share

        n_jobs = cpu_share()
    return {
        "ridge": make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))),
        "forest": RandomForestRegressor(n_estimators=100, max_depth=6, min_samples_leaf=10, n_jobs=n_jobs,
                                        random_state=seed),
    }


@dataclass
class DriverResult:
    """Output of :func:`driver_analysis`."""

    cv_scores: pd.DataFrame  # scheme, model, fold, r2
    summary: pd.DataFrame  # scheme, model, mean_r2, sd_r2, diff_vs_baseline, diff_se, beats_baseline
    importance: pd.DataFrame  # model, group, features, mean, low, high (drop in held-out R2)
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def any_beats_baseline(self) -> bool:
        return bool(self.summary.loc[self.summary["model"] != "baseline", "beats_baseline"].any())


def _grouped_permutation(model, X: np.ndarray, y: np.ndarray, cols: list[int], rng: np.random.Generator,
                         n_repeats: int, ref: float) -> list[float]:
    from sklearn.metrics import r2_score

    drops = []
    for _ in range(n_repeats):
        Xp = X.copy()
        perm = rng.permutation(len(X))
        Xp[:, cols] = X[perm][:, cols]
        drops.append(ref - r2_score(y, model.predict(Xp)))
    return drops


def driver_analysis(
    panel: pd.DataFrame,
    features: list[str] | None = None,
    *,
    target: str = "y",
    unit: str = "rm_id",
    time: str = "month_start",
    n_splits: int = 5,
    n_repeats: int = 5,
    corr_threshold: float = 0.9,
    models: dict[str, object] | None = None,
    importance_model: str = "ridge",
    seed: int = 0,
    n_jobs: int = 1,
) -> DriverResult:
    """Cross-validated association of activities with the outcome, against a naive baseline.

    Schemes: ``group_rm`` (GroupKFold by ``unit``: generalise to unseen RMs) and ``time``
    (forward blocks of periods: train on the past, test on the next block). Score: held-out R^2.
    A model "beats the baseline" when its mean fold-wise R^2 gain over the baseline exceeds two
    standard errors of that gain, in that scheme.

    Importance: drop in held-out R^2 (GroupKFold folds) when a feature group is permuted, for
    ``importance_model``; ``low``/``high`` are the 2.5/97.5 percentiles over folds x repeats.
    ``n_jobs``: threads of the default forest (0: the CPUs this kernel may use; the results do not
    depend on it; see :func:`default_models`).
    """
    from sklearn.base import clone
    from sklearn.dummy import DummyRegressor
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold

    features = list(features or panel.attrs.get("features") or [])
    if not features:
        raise ParameterError("driver_analysis: no features given")
    X = panel[features].to_numpy(float)
    y = panel[target].to_numpy(float)
    models = models or default_models(seed, n_jobs=n_jobs)
    all_models = {"baseline": DummyRegressor(strategy="mean"), **models}
    n_units = panel[unit].nunique()
    schemes = {
        "group_rm": list(GroupKFold(n_splits=min(n_splits, n_units)).split(X, y, panel[unit])),
        "time": _time_folds(panel[time], n_splits),
    }
    groups = feature_groups(panel, features, corr_threshold=corr_threshold)
    rng = np.random.default_rng(seed)
    rows, imp_rows = [], []
    for scheme, folds in schemes.items():
        for k, (tr, te) in enumerate(folds):
            for name, est in all_models.items():
                m = clone(est).fit(X[tr], y[tr])
                if getattr(m, "n_jobs", None) not in (None, 1):  # trees built in threads (the same trees);
                    m.set_params(n_jobs=1)  # predictions summed in tree order, not in thread finishing order
                r2 = r2_score(y[te], m.predict(X[te]))
                rows.append({"scheme": scheme, "model": name, "fold": k, "r2": r2})
                if scheme == "group_rm" and name == importance_model:
                    for g, cols in groups.items():
                        idx = [features.index(c) for c in cols]
                        for d in _grouped_permutation(m, X[te], y[te], idx, rng, n_repeats, r2):
                            imp_rows.append({"model": name, "group": g, "features": ", ".join(cols), "drop": d})
    cv = pd.DataFrame(rows)
    base = cv[cv["model"] == "baseline"].set_index(["scheme", "fold"])["r2"]
    summ = []
    for (scheme, name), d in cv.groupby(["scheme", "model"], sort=False):
        diff = d.set_index(["scheme", "fold"])["r2"] - base.reindex(d.set_index(["scheme", "fold"]).index)
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else np.nan
        summ.append({"scheme": scheme, "model": name, "mean_r2": d["r2"].mean(), "sd_r2": d["r2"].std(ddof=1),
                     "diff_vs_baseline": float(diff.mean()), "diff_se": se,
                     "beats_baseline": bool(name != "baseline" and diff.mean() - 2 * (se if se == se else 0) > 0)})
    imp = pd.DataFrame(imp_rows)
    if not imp.empty:
        imp = (imp.groupby(["model", "group", "features"])["drop"]
               .agg(mean="mean", low=lambda x: np.percentile(x, 2.5), high=lambda x: np.percentile(x, 97.5))
               .reset_index().sort_values("mean", ascending=False).reset_index(drop=True))
    return DriverResult(cv_scores=cv, summary=pd.DataFrame(summ), importance=imp, groups=groups)


def fe_regression(panel: pd.DataFrame, y: str, X: list[str], *, unit: str = "rm_id",
                  time: str = "month_start") -> pd.DataFrame:
    """OLS of ``y`` on ``X`` with ``unit`` and ``time`` fixed effects; SEs clustered by ``unit``.

    Returns ``coef, se, ci_low, ci_high`` (95 %, normal) per column of ``X``; association only.
    Rows with a missing value in ``y``, ``unit``, ``time`` or ``X`` are dropped.

    The estimate is that of least squares on ``X`` plus a dummy per unit and per time (one time
    dummy dropped), computed without the dummies: ``y`` and ``X`` are projected off both sets of
    dummies exactly (:class:`~rmanalytics.kpi.fixed_effects.TwoWayProjector`, the two-way
    within transformation), and by Frisch-Waugh-Lovell the slopes, the residuals ``u`` and the
    cluster scores are those of the dummy regression. Memory and time are linear in the rows
    (the dummy design was ``rows x units``: 7 GB at 5,000 RMs).

    The clustered covariance is the CR1 sandwich ``G/(G-1) (n-1)/(n-k) (X~'X~)^-1
    sum_g X~_g'u_g u_g'X~_g (X~'X~)^-1`` with ``X~`` the projected ``X``, ``G`` the units and
    ``k`` the rank of the whole dummy design: ``rank(X~) + n_units + n_times - c`` (``c`` = the
    connected components of the unit-time panel, 1 in practice), i.e. the degrees of freedom
    ``n - k`` count every fixed effect. A column of ``X`` that the fixed effects absorb (constant
    within every unit, say) is not identified: its ``coef`` and ``se`` are 0 and it does not count
    in ``k`` (the dummy regression gave it an arbitrary minimum-norm value).
    """
    from rmanalytics.kpi.fixed_effects import TwoWayProjector

    df = panel[[y, unit, time, *X]].dropna()
    if df.empty:
        raise DataError(f"fe_regression: no rows with {y}, {unit}, {time} and {X} all present")
    proj = TwoWayProjector(df[unit].astype(str).to_numpy(), df[time].astype(str).to_numpy())
    Xraw = df[X].to_numpy(float)
    Xt = proj.residualize(Xraw)
    yt = proj.residualize(df[y].to_numpy(float))
    codes = pd.factorize(df[unit])[0]
    G = codes.max() + 1
    with one_blas_thread():
        # pseudo-inverse of X~'X~ dropping directions that the fixed effects absorb (a column
        # constant within every unit, say): eigenvalues below 1e-15 of the scale of the raw
        # columns (the dummy design's Z'Z had at least that scale) are rounding noise
        w, vecs = np.linalg.eigh(Xt.T @ Xt)
        scale = max(float(np.max(np.sum(Xraw ** 2, axis=0))), float(w.max()))
        keep = w > 1e-15 * scale
        pinv = (vecs[:, keep] / w[keep]) @ vecs[:, keep].T
        beta = pinv @ (Xt.T @ yt)
        u = yt - Xt @ beta
        # per-cluster score sums s_g = X~_g' u_g (rows sorted by cluster, summed in one pass): meat = S'S
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        S = np.add.reduceat(Xt[order] * u[order, None], starts, axis=0)
        meat = S.T @ S
        n, k = Xt.shape[0], int(keep.sum()) + proj.rank
        V = G / (G - 1) * (n - 1) / (n - k) * pinv @ meat @ pinv
    se = np.sqrt(np.diag(V))
    b = beta
    return pd.DataFrame({"coef": b, "se": se, "ci_low": b - 1.96 * se, "ci_high": b + 1.96 * se}, index=X)
