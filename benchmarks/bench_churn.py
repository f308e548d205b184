"""Benchmark: churn Cox fits on 100k (default) and 1M (``--large``) customers.

Data: a left-truncated book simulated from a Weibull PH model (``rmanalytics.synth.simulate_weibull_ph``)
with 10 covariates (4 discrete, 6 continuous), customers opened up to 8 years before a 3-year window.

Rows of the table (time in seconds, peak extra memory of the fit in MB — peak RSS of a forked process over its RSS
at the start — and the
largest difference of the coefficients from the exact day-grid fit, in standard errors):

- ``lifelines CoxPHFitter (no entry)``: the plain fit most users would write (ignores left truncation).
- ``lifelines CoxTimeVaryingFitter, day``: the exact left-truncated fit in lifelines (reference).
  Skipped above 200k rows unless ``--slow`` (it scans all rows per distinct event time).
- ``ChurnModel fast, day`` / ``week`` / ``month``: :func:`rmanalytics.churn.fit_cox_efron`.
- ``ChurnModel fast, month, compressed``: identical (covariates, entry, duration, event) rows merged
  into weights (discrete covariates only, see :func:`rmanalytics.churn.compress_frame`).

Run: ``python benchmarks/bench_churn.py [--large] [--slow]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import pandas as pd

from rmanalytics.churn import ChurnModel, compress_frame, to_grid
from rmanalytics.synth.processes import simulate_weibull_ph

BETA = np.array([-0.5, 0.2, 0.4, 0.7, 0.1, -0.1, 0.05, 0.0, 0.15, -0.2])


def simulate(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = int(n * 1.25)
    open_ = rng.uniform(-8 * 365.25, 1095 - 30, m)
    Xd = np.column_stack([rng.random(m) < 0.3, rng.integers(-2, 3, m), rng.random(m) < 0.25, rng.random(m) < 0.2])
    Xc = rng.normal(size=(m, 6))
    X = np.column_stack([Xd, Xc]).astype(float)
    T = simulate_weibull_ph(X, BETA, 1.1, 9 * 365.25, rng)
    entry = np.maximum(0.0, -open_)
    cens = 1095 - open_
    keep = np.flatnonzero(T > entry)[:n]
    df = pd.DataFrame(X[keep], columns=[f"x{i}" for i in range(10)])
    df["entry"] = np.floor(entry[keep])
    df["duration"] = np.maximum(np.ceil(np.minimum(T, cens)[keep]), df["entry"] + 1)
    df["event"] = (T <= cens)[keep].astype(int)
    return df


def _child(fn, q):
    with open("/proc/self/statm") as fh:
        rss0 = int(fh.read().split()[1]) * resource.getpagesize() / 1e6
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB -> MB
    q.put((out, dt, max(peak - rss0, 0.0)))


def measure(fn, memory: bool = True):
    """(result, seconds, peak extra memory in MB): time in-process; memory from a second run of ``fn``
    in a forked process (peak RSS over the RSS at the fork), NaN when ``memory=False``."""
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = float("nan")
    if memory:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(fn, q))
        p.start()
        peak = q.get()[2]
        p.join()
    return out, dt, peak


def run(n: int, slow: bool) -> pd.DataFrame:
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter

    df = simulate(n)
    covs = [f"x{i}" for i in range(10)]
    rows = []
    ref = None

    def add(name, res, dt, peak, params=None, se=None):
        rows.append({"n": n, "method": name, "seconds": dt, "peak_mb": peak,
                     "max_coef_diff_in_se": np.nan if ref is None or params is None
                     else float(np.max(np.abs(np.asarray(params) - ref[0]) / ref[1]))})

    def cm(frame, cols, **kw):
        m = ChurnModel(covariates=cols, solver="fast").fit(frame, entry_col="entry", **kw)
        return m.params_.to_numpy(), m.summary_["se(coef)"].to_numpy()

    fast_day, dt, peak = measure(lambda: cm(df, covs))
    ref = fast_day
    if n <= 200_000 or slow:
        ctv, dt2, peak2 = measure(lambda: CoxTimeVaryingFitter().fit(
            df[covs + ["entry", "duration", "event"]], "event", "entry", "duration").params_.to_numpy(), memory=False)
        add("lifelines CoxTimeVaryingFitter, day (exact reference)", ctv, dt2, peak2, ctv)
    plain, dt3, peak3 = measure(lambda: CoxPHFitter().fit(df[covs + ["duration", "event"]], "duration",
                                                          "event").params_.to_numpy())
    add("lifelines CoxPHFitter, day, no entry (biased)", plain, dt3, peak3, plain)
    add("ChurnModel fast, day", fast_day, dt, peak, fast_day[0])
    for grid in ("week", "month"):
        g = df.copy()
        g["duration"] = to_grid(g["duration"], grid)
        g["entry"] = to_grid(g["entry"], grid, how="floor")
        m, dtg, pk = measure(lambda: cm(g, covs))
        add(f"ChurnModel fast, {grid}", m, dtg, pk, m[0])
    g = df[covs[:4] + ["entry", "duration", "event"]].copy()
    g["duration"] = to_grid(g["duration"], "month")
    g["entry"] = to_grid(g["entry"], "month", how="floor")

    def compressed():
        c = compress_frame(g, covs[:4], entry_col="entry")
        return cm(c, covs[:4], weights_col="weight"), len(c)

    (mc, n_rows), dtc, pkc = measure(compressed)
    exact4, dte, pke = measure(lambda: cm(g, covs[:4]))
    rows.append({"n": n, "method": "ChurnModel fast, month, 4 discrete covs, uncompressed", "seconds": dte,
                 "peak_mb": pke, "max_coef_diff_in_se": 0.0})
    rows.append({"n": n, "method": f"  same, compressed to {n_rows} weighted rows", "seconds": dtc, "peak_mb": pkc,
                 "max_coef_diff_in_se": float(np.max(np.abs(mc[0] - exact4[0]) / exact4[1]))})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true", help="also run 1M customers")
    ap.add_argument("--slow", action="store_true", help="run lifelines' exact start/stop fit at every size")
    args = ap.parse_args()
    sizes = [100_000] + ([1_000_000] if args.large else [])
    out = pd.concat([run(n, args.slow) for n in sizes], ignore_index=True)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(out.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
