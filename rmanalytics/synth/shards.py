"""Sharded generation of a synthetic bank larger than memory (``rmanalytics synth --shards K``).

:func:`rmanalytics.synth.generate` builds every table in memory (about 9 GB at 1M customers), so a
bank of 10M customers is generated as ``K`` independent **sub-banks** ("shards") and streamed to
one Parquet file per table with :class:`pyarrow.parquet.ParquetWriter`: only one shard is in
memory at a time (``jobs`` shards with ``jobs > 1``).

- **Sizes.** Shard ``k`` has ``n_customers // K`` customers and ``n_rms // K`` initial RMs, the
  remainders going to the first shards; each shard adds its own replacements for its leavers.
- **Seeds.** Shard ``k`` is ``generate(n_k, rms_k, seed=seed_k)`` with
  ``seed_k = SeedSequence(seed).spawn(K)[k].generate_state(1, uint64)[0] >> 11`` (53 bits, exact in
  JSON), only its identifiers shifted: any shard can be regenerated alone from ``truth.json``.
- **Identifiers are disjoint** and keep the formats of a single bank (:class:`~rmanalytics.synth.bank.IdSpace`):
  customers ``C`` + a running number over all shards, zero-padded to the digits of the total (at
  least 7); RMs ``R`` + a running number (at least 4 digits); each shard has its own org tree, its
  outlets, sub-branches, tier-2 and tier-1 branches numbered after the previous shard's
  (``OL-``/``SB-``/``T2-``/``T1-``), so the hierarchy stays a tree and a shard is a region of the bank.
  Shards follow each other in id order, so every file is sorted as a single bank's is (by
  customer, by RM). The ``products`` catalogue is the same in every shard and written once.
- **What a shard does not share.** Each sub-bank is complete in itself: customers are served only by
  their shard's RMs, and the bank-level rules of the generator run per shard (the quarterly
  bottom-10% review that sends RMs to mandatory training, the share of window-dressing RMs, the
  share of leavers). The distributions are those of a single bank; the realised draws differ from
  ``generate(n_customers, n_rms)`` in one piece.
- **truth.json** holds the inputs once (every shard has the same :class:`~rmanalytics.synth.Truth`
  inputs) and the realised quantities pooled: ``seed``, ``n_customers`` and ``n_rms`` of the whole
  bank (``n_rms`` counts initial RMs, as for one bank), ``market_index`` (the same in every shard),
  ``rm_skill`` / ``rm_exit_dates`` / ``rm_lax`` merged over the disjoint RM ids,
  ``window_dressing_rms`` concatenated, ``behaviour_summary`` recomputed exactly from the summed
  counts and ``suitability`` from summed counts. Two more keys (ignored by
  :func:`~rmanalytics.synth.read_truth`): ``n_shards`` and ``shards``, one entry per shard with its
  ``seed``, sizes, first and last customer / RM / tier-1 id, its own ``behaviour_summary``,
  ``behaviour_counts``, ``suitability`` and row counts. ``truth_customers.parquet`` is streamed as
  the tables are.

``K = 1`` is :func:`~rmanalytics.synth.generate` + :func:`~rmanalytics.synth.write`: the files of
the unsharded bank, bit for bit (and no ``n_shards``/``shards`` keys in ``truth.json``).
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rmanalytics.synth.bank import (
    IdSpace,
    SynthBank,
    Truth,
    _generate,
    behaviour_summary_from_counts,
    n_rms_total,
    org_sizes,
)

_PARTS = ".synth-parts"  # temporary per-shard files of jobs > 1 (removed at the end)


@dataclass(frozen=True)
class Shard:
    """One sub-bank of a sharded bank: its index, seed, sizes and identifier space."""

    index: int
    seed: int
    n_customers: int
    n_rms: int
    ids: IdSpace


def plan_shards(n_customers: int, n_rms: int, shards: int, seed: int, rm_exit_share: float | None = None
                ) -> list[Shard]:
    """The ``shards`` sub-banks of a bank of ``n_customers`` customers and ``n_rms`` initial RMs.

    Sizes split as evenly as possible (remainders to the first shards), seeds spawned from ``seed``
    and identifier offsets after the previous shards (see the module docstring). One shard is the
    single bank of :func:`~rmanalytics.synth.generate` (its seed is ``seed``). ``rm_exit_share``:
    the truth input of that name (default :class:`Truth`'s), which fixes each shard's RM count.
    """
    from rmanalytics.errors import ParameterError

    if shards < 1:
        raise ParameterError(f"synthetic bank: shards must be >= 1, got {shards}")
    if n_customers < shards or n_rms < shards:
        raise ParameterError(f"synthetic bank: {shards} shards need at least one customer and one RM each; "
                             f"got customers={n_customers}, rms={n_rms}")
    share = Truth().rm_exit_share if rm_exit_share is None else rm_exit_share
    cust_n = [n_customers // shards + (k < n_customers % shards) for k in range(shards)]
    rms_n = [n_rms // shards + (k < n_rms % shards) for k in range(shards)]
    rm_tot = [n_rms_total(r, share) for r in rms_n]
    org = [org_sizes(r) for r in rms_n]
    if shards == 1:  # the single bank of generate(seed=seed)
        seeds = [int(seed)]
    else:
        seeds = [int(s.generate_state(1, np.uint64)[0] >> np.uint64(11))
                 for s in np.random.SeedSequence(seed).spawn(shards)]
    out = []
    c_off = r_off = 0
    o_off = (0, 0, 0, 0)
    for k in range(shards):
        ids = IdSpace(customer_offset=c_off, customer_total=n_customers, rm_offset=r_off, rm_total=sum(rm_tot),
                      org_offsets=o_off)
        out.append(Shard(index=k, seed=seeds[k], n_customers=cust_n[k], n_rms=rms_n[k], ids=ids))
        c_off += cust_n[k]
        r_off += rm_tot[k]
        o_off = tuple(a + b for a, b in zip(o_off, org[k]))
    return out


# ----------------------------------------------------------------------------------------------
# one shard
# ----------------------------------------------------------------------------------------------
def generate_shard(shard: Shard, start: str, end: str, history: str = "window", **truth_overrides: Any) -> SynthBank:
    """The sub-bank ``shard`` in memory (tables and truth as :func:`~rmanalytics.synth.generate`,
    identifiers in the shard's space; no ``hazard_covariates``)."""
    return _generate(shard.n_customers, shard.n_rms, start, end, shard.seed, False, history, shard.ids, False,
                     truth_overrides)


def _shard_meta(shard: Shard, bank: SynthBank) -> dict:
    t = bank.tables
    rms, cust = t["rms"]["rm_id"], t["customers"]["customer_id"]
    t1 = t["rms"]["tier1_branch"]
    return {
        "index": shard.index, "seed": shard.seed, "n_customers": shard.n_customers, "n_rms": shard.n_rms,
        "n_rms_total": len(rms),
        "customer_ids": [cust.iloc[0], cust.iloc[-1]], "rm_ids": [rms.iloc[0], rms.iloc[-1]],
        "tier1_branches": [t1.min(), t1.max()],
        "rows": {k: len(v) for k, v in t.items()},
        "truth": bank.truth.to_json_dict(),
        "behaviour_counts": bank.behaviour_counts,
    }


def _to_arrow(df: pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    """``df`` as an Arrow table (no index) in ``schema`` (None: its own schema, an all-null object
    column typed as string, so that later shards with values fit the same file)."""
    if schema is None:
        schema = pa.Schema.from_pandas(df, preserve_index=False)
        for i, f in enumerate(schema):
            if pa.types.is_null(f.type):
                schema = schema.set(i, pa.field(f.name, pa.string()))
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


class _Sink:
    """One output file per table, appended to shard by shard (Parquet zstd, or CSV)."""

    def __init__(self, out: Path, format: str) -> None:
        if format not in ("parquet", "csv"):
            raise ValueError(f"format must be 'parquet' or 'csv', got {format!r}")
        self.out, self.format = out, format
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.csv_started: set[str] = set()

    def add(self, name: str, data: pd.DataFrame | pa.Table, format: str | None = None) -> None:
        fmt = format or self.format
        if fmt == "csv":
            df = data.to_pandas() if isinstance(data, pa.Table) else data
            first = name not in self.csv_started
            df.to_csv(self.out / f"{name}.csv", index=False, mode="w" if first else "a", header=first)
            self.csv_started.add(name)
            return
        w = self.writers.get(name)
        table = data if isinstance(data, pa.Table) else _to_arrow(data, None if w is None else w.schema)
        if w is None:
            w = self.writers[name] = pq.ParquetWriter(self.out / f"{name}.parquet", table.schema, compression="zstd")
        elif not table.schema.equals(w.schema, check_metadata=False):
            table = table.cast(w.schema)
        w.write_table(table)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()


def _tables_of(bank: SynthBank, first: bool) -> dict[str, pd.DataFrame]:
    """The tables of a shard to write (``products`` only from the first shard) and truth_customers."""
    out = {k: v for k, v in bank.tables.items() if first or k != "products"}
    out["truth_customers"] = bank.truth.customers
    return out


def _shard_to_parts(shard: Shard, start: str, end: str, history: str, truth_overrides: dict, parts: str) -> dict:
    """Worker of ``jobs > 1``: generate one shard, write its tables as Arrow IPC files under
    ``parts/<index>/``, return its metadata (the tables are read back and appended by the parent)."""
    t0 = time.perf_counter()
    bank = generate_shard(shard, start, end, history, **truth_overrides)
    meta = _shard_meta(shard, bank)
    d = Path(parts) / f"{shard.index:05d}"
    d.mkdir(parents=True, exist_ok=True)
    tables = _tables_of(bank, shard.index == 0)
    del bank
    names = []
    for name in list(tables):
        table = _to_arrow(tables.pop(name), None)
        with pa.ipc.new_file(d / f"{name}.arrow", table.schema,
                             options=pa.ipc.IpcWriteOptions(compression="lz4")) as w:
            w.write_table(table)
        names.append(name)
        del table
    meta["part_tables"] = names
    meta["seconds"] = time.perf_counter() - t0
    meta["worker_peak_rss_GB"] = _peak_rss_gb()
    return meta


def _peak_rss_gb() -> float:
    """Peak resident memory of this process so far, GB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (2**30 if sys.platform == "darwin" else 2**20)


# ----------------------------------------------------------------------------------------------
# the whole bank
# ----------------------------------------------------------------------------------------------
def write_sharded(out_dir: str | Path, n_customers: int, n_rms: int, shards: int, start: str = "2022-01-01",
                  end: str = "2024-12-31", seed: int = 20261122, history: str = "window", format: str = "parquet",
                  jobs: int = 1, log: Callable[[str], None] | None = None, **truth_overrides: Any) -> dict:
    """Generate a bank of ``n_customers`` customers and ``n_rms`` initial RMs as ``shards``
    sub-banks and stream it into ``out_dir``: ``<table>.parquet`` (zstd; or ``.csv``) for every
    table, ``truth_customers.parquet`` and ``truth.json`` (see the module docstring).

    ``jobs > 1`` generates that many shards at once in worker processes (each shard written to a
    temporary Arrow file under ``out_dir/.synth-parts`` and appended in shard order; the files are
    the same as with ``jobs=1``). Peak memory is about one shard per job. ``log``: called with one
    line per shard. Returns the pooled truth dict (as written to ``truth.json``).
    """
    if history not in ("window", "full"):
        raise ValueError(f"history must be 'window' or 'full', got {history!r}")
    Truth(**truth_overrides)  # unknown overrides fail here, before any work
    plan = plan_shards(n_customers, n_rms, shards, seed, truth_overrides.get("rm_exit_share"))
    out = Path(out_dir)
    if shards == 1:  # today's single bank, bit for bit (all in memory)
        from rmanalytics.synth.bank import generate, write

        bank = generate(n_customers, n_rms, start, end, seed, history=history, **truth_overrides)
        write(bank, out, format)
        return bank.truth.to_json_dict()
    out.mkdir(parents=True, exist_ok=True)
    sink = _Sink(out, format)
    metas: list[dict] = []
    t_all = time.perf_counter()

    def done(meta: dict, seconds: float) -> None:
        peak = meta.pop("worker_peak_rss_GB", None)
        metas.append(meta)
        if log is not None:
            r = meta["rows"]
            log(f"shard {meta['index'] + 1}/{shards}: {meta['n_customers']:,} customers, "
                f"{r['transactions']:,} transactions, {r['balances']:,} balance rows in {seconds:.0f} s "
                f"({time.perf_counter() - t_all:.0f} s in total; peak RSS "
                + (f"{peak:.1f} GB in the worker)" if peak is not None else f"{_peak_rss_gb():.1f} GB so far)"))

    try:
        if jobs <= 1:
            for sh in plan:
                t0 = time.perf_counter()
                bank = generate_shard(sh, start, end, history, **truth_overrides)
                meta = _shard_meta(sh, bank)
                tables = _tables_of(bank, sh.index == 0)
                del bank
                for name in list(tables):
                    sink.add(name, tables.pop(name), "parquet" if name == "truth_customers" else None)
                done(meta, time.perf_counter() - t0)
        else:
            parts = out / _PARTS
            shutil.rmtree(parts, ignore_errors=True)
            ctx = get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as ex:
                futs = [ex.submit(_shard_to_parts, sh, start, end, history, truth_overrides, str(parts)) for sh in plan]
                for sh, fut in zip(plan, futs):
                    meta = fut.result()
                    d = parts / f"{sh.index:05d}"
                    for name in meta.pop("part_tables"):
                        with pa.memory_map(str(d / f"{name}.arrow")) as src:
                            table = pa.ipc.open_file(src).read_all()
                        sink.add(name, table, "parquet" if name == "truth_customers" else None)
                        del table
                    shutil.rmtree(d)
                    done(meta, meta.pop("seconds"))
            shutil.rmtree(parts, ignore_errors=True)
    finally:
        sink.close()
    truth = pool_truth(metas, seed=seed, n_customers=n_customers, n_rms=n_rms)
    (out / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


def pool_truth(metas: list[dict], seed: int, n_customers: int, n_rms: int) -> dict:
    """The ``truth.json`` dict of a sharded bank from the per-shard metadata (see the module docstring)."""
    metas = sorted(metas, key=lambda m: m["index"])
    truths = [m["truth"] for m in metas]
    out = dict(truths[0])
    for t in truths[1:]:
        if t["market_index"] != out["market_index"]:
            raise RuntimeError("internal: shards with different market indices")
    out.update(seed=int(seed), n_customers=int(n_customers), n_rms=int(n_rms))
    for k in ("rm_skill", "rm_exit_dates", "rm_lax"):
        if out.get(k) is not None:
            out[k] = {rm: v for t in truths for rm, v in t[k].items()}
    if out.get("window_dressing_rms") is not None:
        out["window_dressing_rms"] = [rm for t in truths for rm in t["window_dressing_rms"]]
    counts = [m["behaviour_counts"] for m in metas]
    if all(c is not None for c in counts):
        out["behaviour_summary"] = behaviour_summary_from_counts({k: sum(c[k] for c in counts) for k in counts[0]})
    suits = [t.get("suitability") for t in truths]
    if all(s is not None for s in suits):
        n_elig = sum(s["n_eligible"] for s in suits)
        n_breach_elig = sum(round(s["breach_share_eligible"] * s["n_eligible"]) for s in suits)
        out["suitability"] = {**{k: sum(s[k] for s in suits) for k in ("n_holdings", "n_eligible", "n_breaches",
                                                                        "n_forced")},
                              "breach_share_eligible": float(n_breach_elig / n_elig) if n_elig else 0.0}
    out["n_shards"] = len(metas)
    out["shards"] = [{
        **{k: m[k] for k in ("index", "seed", "n_customers", "n_rms", "n_rms_total", "customer_ids", "rm_ids",
                             "tier1_branches", "rows", "behaviour_counts")},
        "behaviour_summary": m["truth"].get("behaviour_summary"),
        "suitability": m["truth"].get("suitability"),
    } for m in metas]
    return out


__all__ = ["Shard", "plan_shards", "generate_shard", "write_sharded", "pool_truth", "IdSpace"]
