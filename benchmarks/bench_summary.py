"""Benchmark: rfm_table and btyd_summary vs raw DuckDB SQL vs lifetimes, on Parquet transactions.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_summary.py                      # 1M (default: short)
    .venv/bin/python benchmarks/bench_summary.py --sizes 1M 10M
    .venv/bin/python benchmarks/bench_summary.py --sizes 100M --no-lifetimes

What is timed (each in its own subprocess, so peak memory is that of the one job: the child
reports ``ru_maxrss`` of itself). Wall-clock seconds and CPU seconds (user + system of the job)
are both reported: on a shared machine wall time depends on the load, CPU time much less.

- ``rfm_table`` / ``btyd_summary``: the rmanalytics API on the Parquet path (input checks, the
  findings scan and the aggregation; result as a pandas frame);
- ``raw_sql_rfm`` / ``raw_sql_btyd``: one hand-written DuckDB query on the same file, result as
  a pandas frame (the floor any DuckDB-based implementation can reach);
- ``lifetimes``: ``lifetimes.utils.summary_data_from_transaction_data`` (the reference BTYD
  summary), timed including ``pd.read_parquet``. Lifetimes is archived and does not run on
  pandas 2.x, so it runs in a separate venv ``benchmarks/.venv-lifetimes`` (git-ignored) made by::

      .venv/bin/python -m venv benchmarks/.venv-lifetimes
      benchmarks/.venv-lifetimes/bin/pip install "lifetimes==0.11.3" "pandas<2" "numpy<2" "scipy<1.12" pyarrow

  It is skipped when that venv is missing and stopped after ``--timeout`` seconds.

Data: ``benchmarks/.data/tx_<N>.parquet`` (git-ignored), generated once by a vectorised
generator: N transactions of N / 50 customers (string ids), dates uniform over 2022-2024,
gamma amounts; row groups in random order. DuckDB runs with ``--threads`` (default 2) and
``--memory-limit`` (default 1.5GB, so it spills rather than growing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
LIFETIMES_PY = HERE / ".venv-lifetimes" / "bin" / "python"
END = "2024-12-31"
START = "2022-01-01"


def parse_size(text: str) -> int:
    t = text.upper()
    mult = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}.get(t[-1], 1)
    return int(float(t[:-1] if t[-1] in "KMB" else t) * mult)


def generate(n: int, path: Path, seed: int = 7, per_customer: int = 50, chunk: int = 5_000_000) -> None:
    """Write n random transactions to ``path`` (Parquet), in chunks (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_cust = max(1, n // per_customer)
    ids = pa.array([f"C{i:09d}" for i in range(n_cust)], type=pa.string())
    start = np.datetime64(START, "D")
    n_days = int((np.datetime64(END, "D") - start).astype(int)) + 1
    schema = pa.schema([("customer_id", pa.string()), ("date", pa.date32()), ("amount", pa.float64())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        done = 0
        while done < n:
            k = min(chunk, n - done)
            cid = ids.take(pa.array(rng.integers(0, n_cust, k)))
            dates = pa.array(start + rng.integers(0, n_days, k).astype("timedelta64[D]"), type=pa.date32())
            amt = pa.array(np.round(rng.gamma(2.0, 150.0, k), 2))
            w.write_table(pa.table([cid, dates, amt], schema=schema), row_group_size=1_000_000)
            done += k
    tmp.replace(path)


RAW_RFM = """
SELECT customer_id, date_diff('day', MAX(date), DATE '{end}') AS recency_days, COUNT(*) AS frequency,
       SUM(amount) AS monetary, MIN(date) AS first_date, MAX(date) AS last_date,
       date_diff('day', MIN(date), DATE '{end}') AS tenure_days
FROM read_parquet('{path}') WHERE date <= DATE '{end}' GROUP BY customer_id
"""

RAW_BTYD = """
WITH days AS (
  SELECT customer_id, date, SUM(amount) AS amt FROM read_parquet('{path}')
  WHERE date <= DATE '{end}' GROUP BY customer_id, date)
SELECT customer_id, COUNT(*) - 1 AS frequency, date_diff('day', MIN(date), MAX(date)) AS recency,
       date_diff('day', MIN(date), DATE '{end}') AS T,
       COALESCE((SUM(amt) - arg_min(amt, date)) / NULLIF(COUNT(*) - 1, 0), 0) AS monetary_value
FROM days GROUP BY customer_id
"""


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def child(method: str, path: str, threads: int, memory_limit: str) -> dict:
    """Run one job in this process; return seconds, peak RSS and result size."""
    # imports are done before the clock starts: the call itself is timed
    if method == "lifetimes":
        import pandas as pd
        from lifetimes.utils import summary_data_from_transaction_data

        t0, cpu0 = time.perf_counter(), _cpu()
        df = pd.read_parquet(path)
        df["date"] = pd.to_datetime(df["date"])
        out = summary_data_from_transaction_data(df, "customer_id", "date", monetary_value_col="amount",
                                                 observation_period_end=END, freq="D")
    else:
        from rmanalytics import rfm
        from rmanalytics.engine import connect

        con = connect(threads=threads, memory_limit=memory_limit)
        con.execute("SET preserve_insertion_order = false")
        t0, cpu0 = time.perf_counter(), _cpu()
        if method.startswith("raw_sql"):
            sql = (RAW_RFM if method == "raw_sql_rfm" else RAW_BTYD).format(path=path, end=END)
            out = con.sql(sql).df()
        else:
            fn = rfm.rfm_table if method == "rfm_table" else rfm.btyd_summary
            out = fn(path, observation_end=END, con=con)
    n = len(out)
    secs = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - cpu0
    return {"method": method, "seconds": secs, "cpu_seconds": cpu, "peak_mb": ru.ru_maxrss / 1024, "rows_out": n}


def run_child(method: str, path: Path, args: argparse.Namespace) -> dict:
    py = str(LIFETIMES_PY) if method == "lifetimes" else sys.executable
    cmd = [py, str(Path(__file__).resolve()), "--child", method, str(path), "--threads", str(args.threads),
           "--memory-limit", args.memory_limit]
    env = dict(os.environ)
    if method == "lifetimes":
        env.pop("PYTHONPATH", None)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env,
                             cwd=str(HERE.parent))
    except subprocess.TimeoutExpired:
        return {"method": method, "seconds": float("nan"), "cpu_seconds": float("nan"), "peak_mb": float("nan"),
                "rows_out": None, "note": f"did not finish in {args.timeout:.0f} s"}
    if res.returncode != 0:
        return {"method": method, "seconds": float("nan"), "cpu_seconds": float("nan"), "peak_mb": float("nan"),
                "rows_out": None, "note": "failed: " + res.stderr.strip().splitlines()[-1][:120]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1M"], help="transaction counts, e.g. 1M 10M 100M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="1.5GB")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    ap.add_argument("--no-lifetimes", action="store_true")
    ap.add_argument("--lifetimes-max", default="10M", help="largest size given to lifetimes")
    ap.add_argument("--repeat", type=int, default=3, help="runs per job (the fastest is reported)")
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.threads, args.memory_limit)))
        return
    DATA.mkdir(exist_ok=True)
    rows = []
    for size in args.sizes:
        n = parse_size(size)
        path = DATA / f"tx_{n}.parquet"
        if not path.exists():
            t0 = time.perf_counter()
            generate(n, path)
            print(f"generated {path.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        methods = ["raw_sql_rfm", "rfm_table", "raw_sql_btyd", "btyd_summary"]
        if not args.no_lifetimes and LIFETIMES_PY.exists() and n <= parse_size(args.lifetimes_max):
            methods.append("lifetimes")
        res = {}
        for m in methods:
            best = None
            for _ in range(args.repeat if m != "lifetimes" else 1):
                r = run_child(m, path, args)
                if best is None or (r["seconds"] == r["seconds"] and not r["seconds"] >= best["seconds"]):
                    best = r
            res[m] = best
            print(f"  {size:>5} {m:<13} {best['seconds']:8.2f} s  {best['cpu_seconds']:8.2f} cpu-s  {best['peak_mb']:8.0f} MB "
                  f"{best.get('note', '')}", file=sys.stderr)
        for m, r in res.items():
            raw = res["raw_sql_rfm" if m in ("rfm_table", "raw_sql_rfm") else "raw_sql_btyd"]
            lt = res.get("lifetimes", {})
            nan = float("nan")
            rows.append({"size": size, "method": m, "seconds": r["seconds"], "cpu": r["cpu_seconds"],
                         "peak_mb": r["peak_mb"],
                         "vs_raw": r["seconds"] / raw["seconds"] if m != "lifetimes" else nan,
                         "vs_raw_cpu": r["cpu_seconds"] / raw["cpu_seconds"] if m != "lifetimes" else nan,
                         "lt": lt.get("seconds", nan) / r["seconds"] if m == "btyd_summary" else nan,
                         "lt_cpu": lt.get("cpu_seconds", nan) / r["cpu_seconds"] if m == "btyd_summary" else nan,
                         "note": r.get("note", "")})
    print(f"{'size':>6} {'method':<13} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'/raw wall':>9} {'/raw cpu':>9} "
          f"{'lifetimes/us wall':>17} {'lifetimes/us cpu':>16}")
    for r in rows:
        print(f"{r['size']:>6} {r['method']:<13} {r['seconds']:8.2f} {r['cpu']:8.2f} {r['peak_mb']:8.0f} "
              f"{r['vs_raw']:9.2f} {r['vs_raw_cpu']:9.2f} {r['lt']:17.1f} {r['lt_cpu']:16.1f} {r['note']}")


if __name__ == "__main__":
    main()
