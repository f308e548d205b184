"""Shared fixture: the whole notebook chain run once per test session on the bundled sample.

``chain_results`` runs ``rmanalytics run-all --variant ci`` (``params/<nb>.ci.yaml`` where present,
else ``params/<nb>.yaml``) into a temporary folder through the real runner, so every notebook is
executed exactly once however many tests look at its run folder.
"""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

from notebook_paths import NOTEBOOKS_DIR, PARAMS_DIR, ROOT, SAMPLE


@pytest.fixture(scope="session")
def chain_results(tmp_path_factory):
    """{notebook: RunResult} of one run-all over the existing notebooks with the CI parameters."""
    if not any(SAMPLE.glob("*.parquet")) and not any(SAMPLE.glob("*.csv")):
        pytest.skip(f"no sample data in {SAMPLE} (generate it: rmanalytics synth --out data/sample)")
    from rmanalytics.runner import run_all

    out = tmp_path_factory.mktemp("runs")
    cwd = os.getcwd()
    os.chdir(ROOT)  # params files give data_dir relative to the repository root
    try:
        results = run_all(params_dir=PARAMS_DIR, out_dir=out, variant="ci", notebooks_dir=NOTEBOOKS_DIR,
                          jobs=min(2, os.cpu_count() or 1), progress_bar=False, echo=lambda s: None)
    finally:
        os.chdir(cwd)
    return {r.notebook: r for r in results}
