"""Benchmark: the RM book's priority list and packs for a bank of N customers and R RMs.

Data: a synthetic per-customer frame (what :func:`rmanalytics.book.build_book` joins: segments,
cells, AUM, P(churn), CLV, health and components, warnings, last contact) for ``--customers``
customers spread over ``--rms`` RMs (5% shared by two RMs) and ``--branches`` branches; a scorecard
of 12 KPIs per RM. Generating a whole 1M-customer bank and fitting its models is measured by the
other benchmarks; this one measures the book's own work:

- ``priority_list``: ranking, reasons and next actions for every (RM, customer) row, one pass;
- ``branch_review``: the team, targets and peer tables;
- ``write_rm_packs``: by_rm/<rm_id>/book.{xlsx,csv,html} for every RM;
- ``write_branch_packs``: by_branch/<branch>/book.{xlsx,csv,html}.

Run: ``python benchmarks/bench_book.py [--customers 1000000] [--rms 2000] [--jobs 1] [--out /tmp/bench_book]``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rmanalytics import book as B


def synthetic(n: int, n_rms: int, n_branches: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2024-12-31")
    ids = np.array([f"C{i:08d}" for i in range(n)], dtype=object)
    rm_ids = np.array([f"R{i:05d}" for i in range(n_rms)], dtype=object)
    rm = rng.integers(0, n_rms, n)
    shared = rng.random(n) < 0.05
    book = pd.DataFrame({"customer_id": np.concatenate([ids, ids[shared]]),
                         "rm_id": np.concatenate([rm_ids[rm], rm_ids[(rm[shared] + 1) % n_rms]]),
                         "share": np.concatenate([np.where(shared, 0.5, 1.0), np.full(shared.sum(), 0.5)]),
                         "start_date": as_of - pd.to_timedelta(rng.integers(0, 2000, n + shared.sum()), unit="D")})
    comps = {f"hc_{c}": rng.uniform(0, 100, n) for c in B.COMPONENTS}
    cust = pd.DataFrame({
        "customer_id": ids,
        "segment": rng.choice(["champions", "loyal", "at_risk", "hibernating", "lost"], n),
        "lifecycle_stage": rng.choice(["new", "growth", "mature", "decline_warning"], n, p=[.05, .2, .65, .1]),
        "tier": rng.choice(["strategic", "growth", "basic", "attention"], n),
        "cell": rng.choice(["core", "potential", "wealth_active", "basic"], n),
        "aum": rng.lognormal(12, 1.5, n), "aum_change_3m": rng.normal(0, 0.1, n),
        "p_churn": rng.beta(1, 10, n), "p_alive": rng.uniform(0, 1, n), "clv_income": rng.lognormal(3, 1.5, n),
        "health": rng.uniform(0, 100, n), "health_value": rng.uniform(0, 100, n),
        "health_behaviour": rng.uniform(0, 100, n), "health_satisfaction": rng.uniform(0, 100, n), **comps,
        "rm_left": (rng.random(n) < 0.1).astype(int),
        "risk_drivers": rng.choice(["rm_left (x2.10)", "risk_level (x1.20), n_tx (x1.05)", ""], n),
        "warning_detail": np.where(rng.random(n) < 0.1, "no wealth purchase since 2024-09-01 (3 months)", None),
        "last_contact": as_of - pd.to_timedelta(rng.integers(0, 200, n), unit="D"),
    })
    rms = pd.DataFrame({"rm_id": rm_ids, "outlet": [f"O{i % (n_branches * 3):04d}" for i in range(n_rms)],
                        "sub_branch": [f"S{i % n_branches:03d}" for i in range(n_rms)], "tier2_branch": "T2",
                        "tier1_branch": "T1", "exit_date": pd.NaT})
    kpis = ["fee_income", "aum_growth", "new_customers", "nps", "churn_rate", "visit_coverage", "complaint_rate",
            "npl_ratio", "compliance_pass_rate", "training_score", "cross_sell_rate", "referral_share"]
    sc = pd.DataFrame({"rm_id": np.repeat(rm_ids, len(kpis)), "period": "2024Q4", "dimension": "business_contribution",
                       "kpi": np.tile(kpis, n_rms), "actual": rng.uniform(0, 100, n_rms * len(kpis)),
                       "target": 50.0, "points": rng.uniform(0, 150, n_rms * len(kpis))})
    sc["gap"] = sc["actual"] - sc["target"]
    scores = pd.concat([pd.DataFrame({"rm_id": rm_ids, "period": p, "total_score": rng.uniform(40, 120, n_rms),
                                      "rating": rng.choice(["excellent", "good", "qualified", "needs_improvement"], n_rms)})
                        for p in ["2024Q1", "2024Q2", "2024Q3", "2024Q4"]], ignore_index=True)
    return as_of, book, cust, rms, sc, scores


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--rms", type=int, default=2000)
    ap.add_argument("--branches", type=int, default=100)
    ap.add_argument("--out", default="/tmp/bench_book")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for the RM packs")
    a = ap.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    as_of, book, cust, rms, sc, scores = synthetic(a.customers, a.rms, a.branches)
    times = {}
    t0 = time.perf_counter()
    pri = B.priority_list(book, cust, as_of)
    times["priority_list"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    review = B.branch_review(pri, scores, rms, "2024Q4", as_of=as_of)
    times["branch_review"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_rm = len(B.write_rm_packs(pri, sc, out, as_of="2024-12-31", jobs=a.jobs))
    times["write_rm_packs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_br = len(B.write_branch_packs(review, None, out, as_of="2024-12-31"))
    times["write_branch_packs"] = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(f"{a.customers:,} customers, {len(pri):,} book rows, {n_rm} RM packs, {n_br} branch packs, {size:,.0f} MiB")
    for k, v in times.items():
        print(f"{k:20s} {v:8.1f} s")
    print(f"{'total':20s} {sum(times.values()):8.1f} s")


if __name__ == "__main__":
    main()
