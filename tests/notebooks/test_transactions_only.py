"""A folder holding only a public transactions table (CDNOW: customer id, date, amount) runs
notebooks 00, 01 and 03 and says what they left out; 02 and 04 are skipped with the tables they need.

03 is run with ``calibration_end: 1997-09-30``, the 39-week calibration period of Fader, Hardie &
Lee (2005): its BG/NBD and Gamma-Gamma fits on the calibration split must reproduce the published
estimates (tests/data/cdnow/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from notebook_paths import NOTEBOOKS_DIR, ROOT

CDNOW = ROOT / "tests" / "data" / "cdnow" / "CDNOW_sample.txt"


def cdnow_transactions(raw: Path = CDNOW) -> pd.DataFrame:
    """The CDNOW sample as a contract transactions table: customer_id (text), ISO date, amount (USD)."""
    df = pd.read_csv(raw, sep=r"\s+", header=None, names=["customer_id", "sample_id", "date", "cds", "amount"],
                     dtype={"customer_id": str, "date": str})
    return pd.DataFrame({"customer_id": df["customer_id"],
                         "date": pd.to_datetime(df["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d"),
                         "amount": df["amount"]})


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cdnow")
    data = folder / "data"
    data.mkdir()
    cdnow_transactions().to_csv(data / "transactions.csv", index=False)
    params = folder / "params"
    params.mkdir()
    (params / "03_loyalty_clv.yaml").write_text("calibration_end: 1997-09-30\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    validate = subprocess.run([sys.executable, "-m", "rmanalytics", "validate", str(data)], capture_output=True,
                              text=True, env=env, cwd=folder, timeout=300)
    run = subprocess.run([sys.executable, "-m", "rmanalytics", "run-all", "--data", str(data), "--params-dir",
                          str(params), "--notebooks-dir", str(NOTEBOOKS_DIR), "--out", str(folder / "runs"),
                          "--no-progress", "--jobs", str(min(2, os.cpu_count() or 1))],
                         capture_output=True, text=True, env=env, cwd=folder, timeout=1800)
    return folder, validate, run


def _stream(folder: Path, nb: str) -> str:
    doc = nbformat.read(folder / "runs" / nb / "latest" / f"{nb}.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in doc.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_validate_lists_supported_notebooks(cdnow_run):
    _, validate, _ = cdnow_run
    assert validate.returncode == 0, validate.stderr
    out = validate.stdout
    for nb in ("00_data_overview", "01_segmentation", "03_loyalty_clv"):
        assert f"{nb}: yes" in out
    assert "02_churn_survival: no, needs customers" in out and "04_kpi_attribution: no, needs" in out


def test_run_all_runs_00_01_03_and_skips_02_04(cdnow_run):
    folder, _, run = cdnow_run
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    for nb in ("00_data_overview", "01_segmentation", "03_loyalty_clv"):
        assert (folder / "runs" / nb / "latest" / "report.html").is_file(), run.stdout
    for nb in ("02_churn_survival", "04_kpi_attribution"):
        assert f"skip {nb}: the data in" in run.stdout
        assert not (folder / "runs" / nb).exists()


def test_notebooks_say_what_they_left_out(cdnow_run):
    folder, _, _ = cdnow_run
    assert "no customers table, left out: the customer mix" in _stream(folder, "00_data_overview")
    seg_text = _stream(folder, "01_segmentation")
    assert "no balances table, left out: AUM as value: service tiers" in seg_text
    assert "nine-grid left out" in seg_text and "no-purchase warnings are left out" in seg_text
    latest = folder / "runs" / "01_segmentation" / "latest"
    path = next(p for p in (latest / "restricted" / "tables" / "segments.parquet",
                            latest / "tables" / "segments.parquet") if p.exists())  # raw ids: restricted/
    segments = pd.read_parquet(path)
    assert len(segments) == 2357 and set(segments["tier"]) == {"not_tiered"}
    assert "one group 'all' is fitted" in _stream(folder, "03_loyalty_clv")


def test_bgnbd_on_the_calibration_split_matches_the_published_fit(cdnow_run):
    folder, _, _ = cdnow_run
    m = json.loads((folder / "runs" / "03_loyalty_clv" / "latest" / "metrics.json").read_text())
    assert m["calibration_end"] == "1997-09-30" and m["n_customers_calibration"] == 2357
    # Fader, Hardie & Lee (2005): r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4
    assert m["bgnbd_all_r"] == pytest.approx(0.243, abs=5e-4)
    assert m["bgnbd_all_alpha"] == pytest.approx(4.414, abs=5e-3)
    assert m["bgnbd_all_a"] == pytest.approx(0.793, abs=5e-4)
    assert m["bgnbd_all_b"] == pytest.approx(2.426, abs=5e-3)
    assert m["bgnbd_all_loglik"] == pytest.approx(-9582.4, abs=0.1)
    # Gamma-Gamma on the same split: p 6.25, q 3.74, gamma 15.44
    assert (m["gg_all_p"], m["gg_all_q"], m["gg_all_gamma"]) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)
