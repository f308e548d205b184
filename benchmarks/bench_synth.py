"""Benchmark the synthetic-bank generator.

Default: 100k customers (40 RMs). ``--big`` adds 1M customers. Prints a table with the time to
generate, to write Parquet, the row counts and the size on disk.

    python benchmarks/bench_synth.py [--big] [--sizes 10000 100000] [--rms 40] [--write]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rmanalytics.synth import generate, write


def run(n: int, rms: int, do_write: bool, progress: bool) -> dict:
    t0 = time.perf_counter()
    bank = generate(n_customers=n, n_rms=rms, progress=progress)
    t_gen = time.perf_counter() - t0
    row = {"customers": n, "rms": rms, "generate_s": t_gen,
           "transactions": len(bank.tables["transactions"]), "balances": len(bank.tables["balances"])}
    if do_write:
        d = Path(tempfile.mkdtemp(prefix="bench_synth_"))
        try:
            t0 = time.perf_counter()
            write(bank, d)
            row["write_s"] = time.perf_counter() - t0
            row["disk_MB"] = sum(f.stat().st_size for f in d.iterdir()) / 1e6
        finally:
            shutil.rmtree(d)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    ap.add_argument("--big", action="store_true", help="also run 1,000,000 customers")
    ap.add_argument("--rms", type=int, default=40)
    ap.add_argument("--write", action="store_true", help="also time writing Parquet")
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args()
    sizes = list(a.sizes) + ([1_000_000] if a.big else [])
    rows = [run(n, a.rms, a.write, a.progress) for n in sizes]
    cols = list(rows[0])
    for r in rows[1:]:
        cols += [c for c in r if c not in cols]
    print(" | ".join(f"{c:>13}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r.get(c, float('nan')):>13.2f}" if isinstance(r.get(c), float) else f"{r.get(c, ''):>13}"
                         for c in cols))


if __name__ == "__main__":
    main()
