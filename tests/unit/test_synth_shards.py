"""Sharded synthetic bank (rmanalytics.synth.shards): disjoint ids, one org tree, the contract's
schema, a valid data folder, the same files with parallel jobs, and --shards 1 = generate()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rmanalytics.synth import generate, main, read_truth, write
from rmanalytics.synth.bank import behaviour_summary_from_counts, n_rms_total
from rmanalytics.synth.shards import generate_shard, plan_shards, write_sharded
from tests.unit.test_synth import check_contract

ARGS = dict(n_customers=2000, n_rms=20, shards=2, seed=11)


def _files(d: Path) -> list[Path]:
    """The generated files of a data folder (not the validation cache the reader may add)."""
    return sorted(p for p in d.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sharded")
    write_sharded(out, **ARGS)
    return out


@pytest.fixture(scope="module")
def tables(sharded) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(sharded.glob("*.parquet")) if p.stem != "truth_customers"}


def test_plan_sizes_seeds_offsets():
    plan = plan_shards(10_001, 53, 4, seed=5)
    assert [s.n_customers for s in plan] == [2501, 2500, 2500, 2500]
    assert [s.n_rms for s in plan] == [14, 13, 13, 13]
    assert [s.ids.customer_offset for s in plan] == [0, 2501, 5001, 7501]
    tot = [n_rms_total(s.n_rms, 0.2) for s in plan]
    assert [s.ids.rm_offset for s in plan] == list(np.cumsum([0] + tot[:-1]))
    assert len({s.seed for s in plan}) == 4 and all(0 <= s.seed < 2**53 for s in plan)
    assert [s.seed for s in plan] == [s.seed for s in plan_shards(10_001, 53, 4, seed=5)]  # deterministic
    assert [s.seed for s in plan] != [s.seed for s in plan_shards(10_001, 53, 4, seed=6)]
    assert plan_shards(100, 5, 1, seed=5)[0].seed == 5  # one shard: the single bank
    from rmanalytics.errors import ParameterError

    with pytest.raises(ParameterError, match="one customer and one RM"):
        plan_shards(100, 3, 4, seed=5)


def test_ids_disjoint_and_org_tree(sharded, tables):
    t = tables
    cust, rms = t["customers"], t["rms"]
    assert len(cust) == ARGS["n_customers"] and cust["customer_id"].is_unique
    assert rms["rm_id"].is_unique
    assert cust["customer_id"].is_monotonic_increasing and rms["rm_id"].is_monotonic_increasing
    assert cust["customer_id"].str.fullmatch(r"C\d{7}").all() and rms["rm_id"].str.fullmatch(r"R\d{4}").all()
    # the org hierarchy is a tree: each unit has one parent
    for child, parent in (("outlet", "sub_branch"), ("sub_branch", "tier2_branch"), ("tier2_branch", "tier1_branch")):
        assert rms.groupby(child)[parent].nunique().eq(1).all(), child
    truth = json.loads((sharded / "truth.json").read_text())
    assert truth["n_shards"] == 2 and len(truth["shards"]) == 2
    a, b = truth["shards"]
    assert a["customer_ids"][1] < b["customer_ids"][0] and a["rm_ids"][1] < b["rm_ids"][0]
    # shards are separate sub-banks: a customer is served by RMs of its own shard, in its branch's tree
    shard_of_cust = np.where(cust["customer_id"] <= a["customer_ids"][1], 0, 1)
    shard_of_rm = pd.Series(np.where(rms["rm_id"] <= a["rm_ids"][1], 0, 1), index=rms["rm_id"])
    asg = t["assignments"].merge(pd.DataFrame({"customer_id": cust["customer_id"], "s": shard_of_cust}))
    assert (shard_of_rm.loc[asg["rm_id"]].to_numpy() == asg["s"].to_numpy()).all()
    outlets_by_shard = rms.groupby(shard_of_rm.to_numpy())["outlet"].agg(set)
    assert not outlets_by_shard[0] & outlets_by_shard[1]
    assert not set(rms.loc[shard_of_rm.to_numpy() == 0, "tier1_branch"]) & set(
        rms.loc[shard_of_rm.to_numpy() == 1, "tier1_branch"])
    # every table refers to known keys; kpi targets per RM of the bank
    for name in ("transactions", "balances", "assignments", "holdings", "interactions", "feedback",
                 "digital_activity"):
        assert t[name]["customer_id"].isin(cust["customer_id"]).all(), name
    for name in ("assignments", "rm_activity", "training", "interactions", "feedback"):
        assert t[name]["rm_id"].isin(rms["rm_id"]).all(), name
    assert t["kpi_targets"]["unit_id"].isin(rms["rm_id"]).all()
    assert set(t["kpi_targets"]["unit_id"]) >= set(rms.loc[rms["exit_date"].isna(), "rm_id"])
    assert len(t["products"]) == 18 and t["products"]["product_id"].is_unique
    assert cust["branch_id"].isin(rms["outlet"]).all()


def test_schema_and_contract_as_a_single_bank(sharded, tables, tmp_path):
    single = write(generate(n_customers=500, n_rms=10, seed=3), tmp_path / "single")
    for p in sorted(single.glob("*.parquet")):
        got = pq.read_schema(sharded / p.name).remove_metadata()
        assert got.equals(pq.read_schema(p).remove_metadata()), p.name
        assert pd.read_parquet(sharded / p.name).dtypes.equals(pd.read_parquet(p).dtypes), p.name
    assert [p.name for p in _files(sharded)] == [p.name for p in _files(single)]
    check_contract(tables)


def test_validate_passes(sharded):
    from rmanalytics.io import validate_data_dir

    loaded, _ = validate_data_dir(sharded)
    assert len(loaded["customers"]) == ARGS["n_customers"]


def test_shard_is_generate_with_shifted_ids(tables):
    plan = plan_shards(ARGS["n_customers"], ARGS["n_rms"], ARGS["shards"], ARGS["seed"])
    s1 = plan[1]
    alone = generate(s1.n_customers, s1.n_rms, seed=s1.seed)  # the shard regenerated alone, ids from 1
    part = generate_shard(s1, "2022-01-01", "2024-12-31")
    for name, df in alone.tables.items():
        other = part.tables[name]
        assert len(df) == len(other), name
        same = [c for c in df.columns if not c.endswith("_id") and c not in
                ("outlet", "sub_branch", "tier2_branch", "tier1_branch", "unit_id")]
        pd.testing.assert_frame_equal(df[same], other[same], check_exact=True, obj=name)
    # and it is the second half of the written files
    cust = tables["customers"]
    pd.testing.assert_frame_equal(cust.iloc[s1.ids.customer_offset:].reset_index(drop=True),
                                  part.tables["customers"], check_exact=True)
    tx = tables["transactions"]
    pd.testing.assert_frame_equal(tx[tx["customer_id"] >= part.tables["customers"]["customer_id"].iloc[0]]
                                  .reset_index(drop=True), part.tables["transactions"], check_exact=True)


def test_pooled_truth(sharded, tables):
    truth = json.loads((sharded / "truth.json").read_text())
    assert (truth["seed"], truth["n_customers"], truth["n_rms"]) == (ARGS["seed"], ARGS["n_customers"], ARGS["n_rms"])
    rm_ids = set(tables["rms"]["rm_id"])
    assert set(truth["rm_skill"]) == rm_ids == set(truth["rm_exit_dates"]) == set(truth["rm_lax"])
    assert set(truth["window_dressing_rms"]) <= rm_ids
    counts = [s["behaviour_counts"] for s in truth["shards"]]
    pooled = behaviour_summary_from_counts({k: sum(c[k] for c in counts) for k in counts[0]})
    assert truth["behaviour_summary"] == pooled
    assert truth["suitability"]["n_holdings"] == len(tables["holdings"])
    assert sum(s["rows"]["transactions"] for s in truth["shards"]) == len(tables["transactions"])
    tr = read_truth(sharded)  # the reader ignores n_shards / shards
    assert tr.n_customers == ARGS["n_customers"] and len(tr.customers) == ARGS["n_customers"]
    assert tr.customers["customer_id"].tolist() == tables["customers"]["customer_id"].tolist()
    assert tr.bgnbd == generate(n_customers=10, n_rms=2).truth.bgnbd


def test_parallel_jobs_write_the_same_files(sharded, tmp_path):
    out = tmp_path / "j2"
    write_sharded(out, **ARGS, jobs=2)
    assert [p.name for p in _files(out)] == [p.name for p in _files(sharded)]
    for p in _files(sharded):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


def test_one_shard_is_generate(tmp_path):
    ref = write(generate(n_customers=400, n_rms=8, seed=9), tmp_path / "ref")
    assert main(["--customers", "400", "--rms", "8", "--seed", "9", "--shards", "1", "--out", str(tmp_path / "cli")]) == 0
    write_sharded(tmp_path / "fn", 400, 8, 1, seed=9)
    for p in ref.iterdir():
        assert (tmp_path / "cli" / p.name).read_bytes() == p.read_bytes(), p.name
        assert (tmp_path / "fn" / p.name).read_bytes() == p.read_bytes(), p.name


def test_cli_shards_csv(tmp_path):
    assert main(["--customers", "300", "--rms", "6", "--seed", "4", "--shards", "3", "--format", "csv",
                 "--no-relationship", "--out", str(tmp_path / "c")]) == 0
    cust = pd.read_csv(tmp_path / "c" / "customers.csv")
    assert len(cust) == 300 and cust["customer_id"].is_unique
    assert (tmp_path / "c" / "truth_customers.parquet").exists()
    assert not (tmp_path / "c" / "holdings.csv").exists()
    assert json.loads((tmp_path / "c" / "truth.json").read_text())["n_shards"] == 3


def test_read_truth_without_customers(sharded):
    tr = read_truth(sharded, customers=False)  # loyalty_truth reads only truth.json (10M rows otherwise)
    assert tr.customers is None and tr.n_customers == ARGS["n_customers"]
