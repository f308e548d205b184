"""Benchmark: BG/NBD fit of rmanalytics.loyalty against lifetimes, on the same data, in one run.

lifetimes (0.11.3, archived) does not install on our environment (pandas 2.3 / numpy 2.4), so it
runs in a separate venv ``benchmarks/.venv-lifetimes`` (git-ignored) in a subprocess::

    python3.11 -m venv benchmarks/.venv-lifetimes
    benchmarks/.venv-lifetimes/bin/pip install "lifetimes==0.11.3" "pandas<2" "numpy<2" "scipy<1.13" pyarrow

Data: BG/NBD customers simulated with known parameters and day-granular recency and T (as from
daily transactions: whole days / 7, so many customers share a row), written to
``benchmarks/.data/bgnbd_<n>.parquet`` (git-ignored).

Timed (wall clock, everything from the summary frame to fitted parameters):

- ``rmanalytics``: ``BetaGeoModel().fit(summary)`` (compression, fit and standard errors);
- ``lifetimes default``: ``BetaGeoFitter().fit(frequency, recency, T)``, one row per customer
  (capped by ``--timeout``);
- ``lifetimes weights``: group identical rows with pandas, then ``fit(..., weights=counts)``
  (the grouping is timed too).

Usage::

    .venv/bin/python benchmarks/bench_loyalty.py            # 1M customers
    .venv/bin/python benchmarks/bench_loyalty.py --big      # 1M and 10M customers
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rmanalytics.loyalty import BetaGeoModel

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
LIFETIMES_PY = HERE / ".venv-lifetimes" / "bin" / "python"
TRUTH = {"r": 0.6, "alpha": 9.0, "a": 0.8, "b": 3.0}

LIFETIMES_CODE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter
path, mode = sys.argv[1], sys.argv[2]
df = pd.read_parquet(path)
t0 = time.perf_counter()
if mode == "default":
    m = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
else:
    g = df.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    m = BetaGeoFitter().fit(g["frequency"], g["recency"], g["T"], weights=g["n"])
secs = time.perf_counter() - t0
p = m.params_
print(json.dumps({"seconds": secs, "r": p["r"], "alpha": p["alpha"], "a": p["a"], "b": p["b"]}))
"""


def simulate(n: int, seed: int = 1) -> pd.DataFrame:
    """BG/NBD customers with T of 1-730 whole days and day-granular recency, in weeks."""
    rng = np.random.default_rng(seed)
    T_days = rng.integers(1, 731, n)
    T = T_days / 7.0
    lam = rng.gamma(TRUTH["r"], 1.0 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    J = rng.geometric(p)
    N = rng.poisson(lam * T)
    x = np.minimum(N, J)
    tx_days = np.zeros(n)
    pos = x > 0
    tx_days[pos] = np.floor(T_days[pos] * rng.beta(x[pos], N[pos] - x[pos] + 1))
    return pd.DataFrame({"frequency": x.astype(np.int64), "recency": tx_days / 7.0, "T": T})


def run_lifetimes(path: Path, mode: str, timeout: float) -> dict:
    if not LIFETIMES_PY.exists():
        return {"error": f"no lifetimes venv at {LIFETIMES_PY} (see the module docstring)"}
    try:
        out = subprocess.run([str(LIFETIMES_PY), "-c", LIFETIMES_CODE, str(path), mode], capture_output=True,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s", "seconds": float("inf")}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="also 10M customers")
    ap.add_argument("--sizes", type=str, default=None, help="comma-separated customer counts (overrides --big)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for each lifetimes fit")
    ap.add_argument("--skip-default", action="store_true", help="skip lifetimes' (slow) default path")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else ([1_000_000, 10_000_000] if args.big
                                                                              else [1_000_000])
    DATA.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        path = DATA / f"bgnbd_{n}.parquet"
        if not path.exists():
            simulate(n).to_parquet(path, index=False)
        df = pd.read_parquet(path)
        t0 = time.perf_counter()
        m = BetaGeoModel().fit(df)
        ours = time.perf_counter() - t0
        res = {"ours": {"seconds": ours, **m.params_.to_dict()}}
        print(f"n={n:,}: rmanalytics {ours:.2f} s ({m.n_unique_:,} distinct rows) {m.params_.round(4).to_dict()}", flush=True)
        res["lifetimes weights"] = run_lifetimes(path, "weights", args.timeout)
        print(f"  lifetimes weights: {res['lifetimes weights']}", flush=True)
        if not args.skip_default:
            res["lifetimes default"] = run_lifetimes(path, "default", args.timeout)
            print(f"  lifetimes default: {res['lifetimes default']}", flush=True)
        for name, r in res.items():
            row = {"customers": n, "implementation": name, "seconds": r.get("seconds", float("nan")),
                   "ratio_to_ours": r.get("seconds", float("nan")) / ours}
            if "r" in r:
                row["max_rel_param_diff"] = max(abs(r[k] - m.params_[k]) / m.params_[k] for k in TRUTH)
            row["note"] = r.get("error", "")
            rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print()
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    sys.exit(main())
