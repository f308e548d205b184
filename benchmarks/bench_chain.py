"""Benchmark the monthly chain: `rmanalytics run-all` on a synthetic bank.

Generates the bank once per size (cached in ``benchmarks/.data/chain_<n>_<rms>``; the generation's
wall time and peak summed RSS go to ``chain_<n>_<rms>.generate.json`` next to it), runs the whole
chain in a subprocess and samples the resident memory (RSS) of its whole process tree every 0.2 s:
the runner, its worker processes and every Jupyter kernel. Kernels are attributed to their notebook
through the ``RMANALYTICS_NOTEBOOK`` variable the runner sets. Prints, per notebook and in total,
the wall time (from the run manifests), the peak summed RSS (of the kernel, and of the kernel with its
children such as 05's pack workers) and the three slowest cells.

    python benchmarks/bench_chain.py                  # 1M customers, 500 RMs
    python benchmarks/bench_chain.py --customers 100000 --rms 100
    python benchmarks/bench_chain.py --big            # adds 10M customers (~10 GB of Parquet; generated in
                                                      # 50 shards of 200k, ~25 min, ~4 GB; see --big-shard)
    python benchmarks/bench_chain.py --jobs 1 --variant ci
    python benchmarks/bench_chain.py --jobs 2 --compare-to /tmp/bench_chain_xxx   # results equal to 1e-9?
    python benchmarks/bench_chain.py --jobs 1 -- --memory-limit 100GB            # run-all arguments after --
    python benchmarks/bench_chain.py --customers 10000000 --rms 5000 --jobs 1 --out R -- --only 00 01 03 04
    python benchmarks/bench_chain.py ... --out R -- --only 02 05 06 --params-dir P  # adds to the run root R;
                                                      # P's 05/06 files name 01's and 04's tables in R

``--compare-to`` compares every notebook's ``metrics.json`` with the one of an earlier run root
(e.g. the 1-job, unlimited-memory run) and prints the largest relative difference of the numbers.
``--json FILE`` appends the figures (with date, machine and load average) as one JSON line.

The 1M bank is generated in one piece (``rmanalytics synth``: about 9 GB and 5 min); the 10M bank
of ``--big`` with ``rmanalytics synth --shards K`` (independent sub-banks of at most ``--big-shard``
customers, streamed to Parquet: memory holds one shard; ``--synth-jobs 2`` generates two at once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


BIG = (10_000_000, 5_000)  # --big: customers, RMs


def _bank(n: int, rms: int, shards: int = 1, jobs: int = 1) -> tuple[Path, dict | None]:
    """The bank folder (generated when missing: ``truth.json`` is written last) and the figures of its
    generation (wall s, peak summed RSS of the generator's process tree; None when generated elsewhere)."""
    d = HERE / ".data" / f"chain_{n}_{rms}"
    info_file = d.with_name(d.name + ".generate.json")
    if not ((d / "transactions.parquet").exists() and (d / "truth.json").exists()):
        d.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "rmanalytics", "synth", "--customers", str(n), "--rms", str(rms), "--out", str(d)]
        if shards > 1:
            cmd += ["--shards", str(shards), "--jobs", str(jobs)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        if rc:
            raise SystemExit(f"rmanalytics synth failed (rc={rc}): {' '.join(cmd)}")
        info = {"customers": n, "rms": rms, "shards": shards, "jobs": jobs if shards > 1 else 1,
                "wall_s": wall, "peak_rss_GB": sampler.peak_total / 2**30,
                "size_MB": sum(f.stat().st_size for f in d.glob("*.*") if f.is_file()) / 2**20,
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
                "ram_GB": psutil.virtual_memory().total / 2**30}
        info_file.write_text(json.dumps(info, indent=1) + "\n")
        print(f"generated {n:,} customers ({shards} shard(s)) in {wall:.0f} s, peak summed RSS "
              f"{info['peak_rss_GB']:.2f} GB, {info['size_MB']:.0f} MB -> {d}", flush=True)
    return d, (json.loads(info_file.read_text()) if info_file.exists() else None)


class TreeSampler(threading.Thread):
    """Peak summed RSS of a process tree, in total and per ``RMANALYTICS_NOTEBOOK``."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.every = psutil.Process(pid), every
        self.peak_total = 0
        self.peak_by_nb: dict[str, int] = {}
        self.peak_tree_by_nb: dict[str, int] = {}  # the kernel and its children (e.g. 05's pack workers)
        self.stop = threading.Event()
        self._owner: dict[int, str | None] = {}

    def _notebook(self, proc: psutil.Process) -> str | None:
        if self._owner.get(proc.pid) is None:  # not cached while unknown: a new process may not show it yet
            try:
                self._owner[proc.pid] = proc.environ().get("RMANALYTICS_NOTEBOOK")
            except (psutil.Error, OSError):
                self._owner[proc.pid] = None
        return self._owner[proc.pid]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            total, by_nb, tree_nb = 0, {}, {}
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    kernel = "ipykernel" in " ".join(p.cmdline())
                except psutil.Error:
                    continue
                total += rss
                nb = self._notebook(p) if p.pid != self.root.pid else None
                if nb and kernel:
                    by_nb[nb] = by_nb.get(nb, 0) + rss
                if nb:
                    tree_nb[nb] = tree_nb.get(nb, 0) + rss
            self.peak_total = max(self.peak_total, total)
            for nb, rss in by_nb.items():
                self.peak_by_nb[nb] = max(self.peak_by_nb.get(nb, 0), rss)
            for nb, rss in tree_nb.items():
                self.peak_tree_by_nb[nb] = max(self.peak_tree_by_nb.get(nb, 0), rss)
            time.sleep(self.every)


def slowest_cells(run_dir: Path, n: int = 3) -> list[tuple[float, str]]:
    """The ``n`` slowest code cells of the executed notebook in ``run_dir``: (seconds, first line
    that is not an import or comment), from the durations papermill records in each cell's metadata."""
    cells = []
    for nb in run_dir.glob("*.ipynb"):
        for c in json.loads(nb.read_text()).get("cells", []):
            d = (c.get("metadata", {}).get("papermill") or {}).get("duration")
            if c.get("cell_type") == "code" and d:
                lines = [ln for ln in "".join(c["source"]).splitlines() if ln.strip()]
                first = next((ln for ln in lines if not ln.startswith(("import ", "from ", "#"))), lines[0] if lines else "")
                cells.append((round(float(d), 1), first[:70]))
    return sorted(cells, reverse=True)[:n]


def run_chain(data: Path, jobs: int, variant: str | None, extra: list[str], out: Path | None = None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_chain_")) if out is None else out
    cmd = [sys.executable, "-m", "rmanalytics", "run-all", "--data", str(data), "--out", str(out),
           "--jobs", str(jobs), "--no-progress", *(["--variant", variant] if variant else []), *extra]
    load_before = round(os.getloadavg()[0], 1)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    output = proc.communicate()[0]
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    per_nb = {}
    for manifest in sorted(out.glob("*/*/manifest.json")):
        m = json.loads(manifest.read_text())
        start, end = (time.mktime(time.strptime(m[k][:19], "%Y-%m-%dT%H:%M:%S")) for k in ("started_utc", "ended_utc"))
        per_nb[m["notebook"]] = {"status": m["status"], "wall_s": end - start,
                                 "peak_rss_GB": sampler.peak_by_nb.get(m["notebook"], 0) / 2**30,
                                 "peak_tree_rss_GB": sampler.peak_tree_by_nb.get(m["notebook"], 0) / 2**30,
                                 "slowest_cells": slowest_cells(manifest.parent)}
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    return {"rc": proc.returncode, "wall_s": wall, "peak_rss_GB": sampler.peak_total / 2**30,
            "per_notebook": per_nb, "run_folders_MB": size, "out": str(out), "log_tail": output[-2000:],
            "load_before": load_before, "load_after": round(os.getloadavg()[0], 1)}


def compare_metrics(out: Path, ref: Path) -> dict:
    """Largest relative difference of the numeric metrics of each notebook between two run roots
    (the latest run folder of each notebook), and the keys present in one only or differing as text.
    Timings (keys ending in ``_seconds``, e.g. 05's ``packs_seconds``) are not results: left out."""
    def latest(root: Path, nb: str) -> dict:
        runs = sorted(p for p in (root / nb).glob("*") if (p / "metrics.json").exists() and not p.name.endswith(".partial"))
        return json.loads((runs[-1] / "metrics.json").read_text()) if runs else {}

    res = {}
    for nb in sorted({p.name for p in out.iterdir() if p.is_dir()} | {p.name for p in ref.iterdir() if p.is_dir()}):
        a, b = latest(out, nb), latest(ref, nb)
        worst, other = 0.0, []
        for k in sorted(set(a) | set(b)):
            if k.endswith("_seconds"):
                continue
            x, y = a.get(k), b.get(k)
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
                if x != y:
                    worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
            elif x != y:
                other.append(k)
        res[nb] = {"max_rel_diff": worst, "differing_keys": other, "n_metrics": len(a)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--rms", type=int, default=500)
    ap.add_argument("--big", action="store_true", help="also 10M customers (5,000 RMs), generated in shards")
    ap.add_argument("--big-shard", type=int, default=200_000,
                    help="customers per shard of the --big bank (default 200,000: 50 shards, about 4 GB; at most 1M)")
    ap.add_argument("--synth-jobs", type=int, default=1, help="shards generated at once for --big (default 1)")
    ap.add_argument("--jobs", type=int, default=2, help="run-all --jobs (default 2)")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--compare-to", type=Path, help="run root of a reference run: compare metrics.json")
    ap.add_argument("--out", type=Path, help="run root (default: a new temporary folder); a second run with "
                    "`-- --only ...` into the same root adds the notebooks it runs")
    ap.add_argument("--json", type=Path, help="append the results as one JSON line to this file")
    ap.add_argument("extra", nargs="*", help="more run-all arguments after --")
    args = ap.parse_args()
    if not 0 < args.big_shard <= 1_000_000:
        ap.error("--big-shard must be between 1 and 1,000,000 customers")
    sizes = [(args.customers, args.rms, 1)] + ([(*BIG, math.ceil(BIG[0] / args.big_shard))] if args.big else [])
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB; "
          f"{time.strftime('%Y-%m-%d')}", flush=True)
    for n, rms, shards in sizes:
        data, gen = _bank(n, rms, shards, args.synth_jobs)
        if gen:
            print(f"bank: {n:,} customers generated in {gen['shards']} shard(s), {gen['wall_s']:.0f} s, "
                  f"peak summed RSS {gen['peak_rss_GB']:.2f} GB ({gen['date']})", flush=True)
        res = run_chain(data, args.jobs, args.variant, args.extra, args.out)
        res["generate"] = gen
        print(f"\n{n:,} customers: run-all rc={res['rc']} wall {res['wall_s']:.0f} s, "
              f"peak summed RSS {res['peak_rss_GB']:.2f} GB, run folders {res['run_folders_MB']:.0f} MB")
        print("| notebook | status | wall s | peak kernel RSS GB | with its children GB |\n|---|---|---:|---:|---:|")
        for nb, r in res["per_notebook"].items():
            print(f"| {nb} | {r['status']} | {r['wall_s']:.0f} | {r['peak_rss_GB']:.2f} | {r['peak_tree_rss_GB']:.2f} |")
        print("slowest cells (s):")
        for nb, r in res["per_notebook"].items():
            print(f"  {nb}: " + "; ".join(f"{d:.0f} s `{src}`" for d, src in r["slowest_cells"]))
        print(f"run root: {res['out']}; load average before/after: {res['load_before']} / {res['load_after']}")
        if args.compare_to:
            cmp = compare_metrics(Path(res["out"]), args.compare_to)
            res["compare"] = cmp
            print(f"metrics vs {args.compare_to}:")
            for nb, c in cmp.items():
                print(f"  {nb}: max relative difference {c['max_rel_diff']:.2e} over {c['n_metrics']} metrics"
                      + (f"; differing non-numbers: {c['differing_keys']}" if c["differing_keys"] else ""))
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "customers": n,
                                     "jobs": args.jobs, "extra": args.extra, "cores": os.cpu_count(),
                                     "ram_GB": psutil.virtual_memory().total / 2**30,
                                     **{k: v for k, v in res.items() if k != "log_tail"}}) + "\n")
        if res["rc"]:
            print(res["log_tail"])


if __name__ == "__main__":
    main()
