"""Issue 13's acceptance test: across two ``run-all`` runs on the sample with two different
``RMANALYTICS_MASK_KEY`` secrets, no raw customer id is in any people-facing file, pseudonyms are
keyed (not computable without the secret), masked tables join, and the two keys differ.

Run A is the session's chain (``chain_results``, the suite's test key from ``tests/conftest.py``);
run B is a second ``run-all`` of 00 -> 02 (the notebooks that quote ids in findings, write the
segments and the retention worklist) with another key, to keep the suite's time down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat

import pandas as pd
import pytest

from notebook_paths import NOTEBOOKS_DIR, PARAMS_DIR, ROOT, SAMPLE
from rmanalytics import privacy

KEY_B = "second-secret-for-run-b-0123456789abcdef"
SUBSET = ["00_data_overview", "01_segmentation", "02_churn_survival"]
ID_TABLES = ("customers", "transactions", "balances", "assignments")
BASE64 = re.compile(r'base64,[A-Za-z0-9+/=\\]+|"image/png": "[A-Za-z0-9+/=\\]+"')  # image payloads


@pytest.fixture(scope="session")
def raw_ids():
    ids = set()
    for t in ID_TABLES:
        f = SAMPLE / f"{t}.parquet"
        if f.is_file():
            ids |= set(pd.read_parquet(f, columns=["customer_id"])["customer_id"].astype(str))
    if not ids:
        pytest.skip("no sample data")
    return ids


@pytest.fixture(scope="session")
def chain_b(tmp_path_factory):
    from rmanalytics.runner import run_all

    out = tmp_path_factory.mktemp("runs_key_b")
    cwd, old = os.getcwd(), os.environ.get(privacy.KEY_ENV)
    os.environ[privacy.KEY_ENV] = KEY_B
    os.chdir(ROOT)
    try:
        results = run_all(params_dir=PARAMS_DIR, out_dir=out, variant="ci", notebooks_dir=NOTEBOOKS_DIR,
                          notebooks=SUBSET, jobs=min(2, os.cpu_count() or 1), progress_bar=False,
                          echo=lambda s: None)
    finally:
        os.chdir(cwd)
        os.environ[privacy.KEY_ENV] = old
    return {r.notebook: r for r in results}


@pytest.fixture(scope="session")
def both(chain_results, chain_b):
    runs = {"A": chain_results, "B": chain_b}
    for name, res in runs.items():
        for nb, r in res.items():
            assert r.ok, f"run {name}: {r.describe_failure()}"
    return runs


KEYS = {"A": os.environ[privacy.KEY_ENV], "B": KEY_B}


def _csv_ids(path) -> pd.Series:
    """The customer-id column of a people-facing CSV (headers are people's labels, e.g. "Customer ID")."""
    from rmanalytics.labels import label

    df = pd.read_csv(path)
    col = next(c for c in (label("col.customer_id", "en"), "customer_id") if c in df.columns)
    return df[col]


def _ids_in(text: str, raw: set[str]) -> set[str]:
    text = BASE64.sub("", text)
    return ({t for t in privacy.TOKEN.findall(text)} | set(re.findall(r"C\d{7}", text))) & raw


def test_no_raw_id_in_any_people_facing_file(both, raw_ids):
    checked = 0
    for name, results in both.items():
        for nb, res in results.items():
            files = privacy.people_facing_files(res.run_dir)
            kinds = {p.suffix for p in files}
            assert {".csv", ".html", ".log", ".json", ".ipynb"} <= kinds, (name, nb, kinds)
            for p in files:
                leaked = _ids_in(p.read_text(encoding="utf-8", errors="replace"), raw_ids)
                assert not leaked, f"run {name} {p.relative_to(res.run_dir)}: raw ids {sorted(leaked)[:5]}"
                checked += 1
            # Parquet outside restricted/ has no id column
            for pq in (res.run_dir / "tables").glob("*.parquet"):
                assert "customer_id" not in pd.read_parquet(pq).columns, pq
    assert checked > 50


def test_quality_findings_are_masked_and_keep_examples(both):
    for name, results in both.items():
        d = results["00_data_overview"].run_dir
        csv = pd.read_csv(d / "tables" / "quality_findings.csv")
        col = next(c for c in csv.columns if c.lower() == "examples")  # people-facing header: "Examples"
        text = " ".join(csv[col].astype(str))
        assert "'customer_id': 'C#" in text, "examples lost their (masked) row keys"
        raw = pd.read_parquet(d / "restricted" / "tables" / "quality_findings.parquet")
        assert len(raw) == len(csv)


def test_restricted_folder_is_owner_only(both):
    for results in both.values():
        for res in results.values():
            r = res.run_dir / "restricted"
            if not r.exists():
                continue
            assert stat.S_IMODE(r.stat().st_mode) == 0o700
            for p in r.rglob("*"):
                assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    seg = both["A"]["01_segmentation"].run_dir / "restricted" / "tables" / "segments.parquet"
    assert seg.is_file()
    if "03_loyalty_clv" in both["A"]:  # the chain reads the restricted table
        assert both["A"]["03_loyalty_clv"].params["segments_path"] == str(seg)


def test_pseudonyms_are_keyed_not_unkeyed_hashes(both):
    for name, results in both.items():
        d = results["01_segmentation"].run_dir
        raw = pd.read_parquet(d / "restricted" / "tables" / "segments.parquet")["customer_id"]
        masked = _csv_ids(d / "tables" / "segments.csv")
        assert masked.str.fullmatch(r"C#[0-9a-f]{20}").all()
        key = KEYS[name].encode()
        assert masked.tolist() == ["C#" + hmac.new(key, c.encode(), hashlib.sha256).hexdigest()[:20] for c in raw]
        hexes = set(masked.str[2:])
        for c in raw:
            for h in (hashlib.sha256(c.encode()), hashlib.sha256(f"rmanalytics:{c}".encode()), hashlib.sha1(c.encode()),
                      hashlib.md5(c.encode()), hmac.new(b"", c.encode(), hashlib.sha256),
                      hmac.new(b"rmanalytics", c.encode(), hashlib.sha256)):
                assert h.hexdigest()[:20] not in hexes and h.hexdigest()[:10] not in {x[:10] for x in hexes}


def test_worklist_ids_join_the_segments(both):
    """02's masked worklist ids are found in 01's masked segments. The only exceptions are
    customers without any transaction: RFM cannot score them, so 01 has no segment for them
    (01 records n_customers vs n_customers_in_table); they are checked to be exactly those."""
    tx_ids = set(pd.read_parquet(SAMPLE / "transactions.parquet", columns=["customer_id"])["customer_id"])
    all_ids = set(pd.read_parquet(SAMPLE / "customers.parquet", columns=["customer_id"])["customer_id"])
    for name, results in both.items():
        key = privacy.MaskKey.from_secret(KEYS[name])
        no_tx = {privacy.mask_id(c, key) for c in all_ids - tx_ids}
        seg = set(_csv_ids(results["01_segmentation"].run_dir / "tables" / "segments.csv"))
        wl = set(_csv_ids(results["02_churn_survival"].run_dir / "tables" / "retention_worklist.csv"))
        assert len(wl) > 0 and wl <= seg | no_tx, f"run {name}: {len(wl - seg - no_tx)} worklist ids join nothing"
        assert len(wl & seg) >= 0.8 * len(wl) and not (seg & no_tx)


def test_two_secrets_give_different_pseudonyms(both):
    a = _csv_ids(both["A"]["01_segmentation"].run_dir / "tables" / "segments.csv")
    b = _csv_ids(both["B"]["01_segmentation"].run_dir / "tables" / "segments.csv")
    assert len(a) == len(b) and not set(a) & set(b)
    fa, fb = (json.loads((both[k]["01_segmentation"].run_dir / "manifest.json").read_text())["privacy"]["key_fingerprint"]
              for k in "AB")
    assert fa != fb
    for name, results in both.items():  # the secret itself is in no file of the run, restricted or not
        for res in results.values():
            for p in res.run_dir.rglob("*"):
                if p.is_file():
                    assert KEYS[name].encode() not in p.read_bytes(), p
