"""Every notebook runs under papermill with its CI parameters on the sample data, writes a
complete run folder, and its key figures (``metrics.json``) match
``tests/notebooks/expected/<notebook>.yaml``.

Expected-metrics file format: ``metric: value`` (numbers compared with ``pytest.approx`` at the
default relative tolerance 1e-6, strings and booleans exactly) or
``metric: {value: x, rel: 0.05}`` / ``{value: x, abs: 0.01}``.
"""

from __future__ import annotations

import json

import pytest
import yaml

from notebook_paths import EXPECTED_DIR, NOTEBOOKS_DIR, SAMPLE
from rmanalytics.params import NOTEBOOKS
from rmanalytics.runner import is_complete


def _result(chain_results, notebook):
    if not (NOTEBOOKS_DIR / f"{notebook}.ipynb").is_file():
        pytest.skip(f"notebooks/{notebook}.ipynb does not exist yet")
    res = chain_results[notebook]
    assert res.ok, res.describe_failure()
    return res


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_folder_is_complete(chain_results, notebook):
    res = _result(chain_results, notebook)
    d = res.run_dir
    assert is_complete(d)
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "ok" and manifest["notebook"] == notebook
    assert manifest["parameters"]["output_dir"] == str(d)
    assert manifest["inputs"], "no input fingerprints"
    for key in ("package_version", "python", "packages", "started_utc", "ended_utc", "git"):
        assert key in manifest
    assert (d / "parameters.yaml").is_file() and (d / f"{notebook}.ipynb").is_file() and (d / "run.log").is_file()
    html = (d / "report.html").read_text(encoding="utf-8")
    assert "hl-ipython3" not in html and "load_params" not in html, "report shows code"
    assert "jp-mod-noInput" in html
    assert list((d / "tables").glob("*.parquet")) + list((d / "restricted" / "tables").glob("*.parquet")), "no tables"
    assert list((d / "tables").glob("*.csv")), "no CSV tables"
    assert list((d / "figures").glob("*.png")), "no figures"
    metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
    assert metrics, "no metrics"


def _expected(notebook):
    path = EXPECTED_DIR / f"{notebook}.yaml"
    if not path.is_file():
        pytest.skip(f"no expected metrics file {path.relative_to(EXPECTED_DIR.parents[2])}")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_metrics_match_expected(chain_results, notebook):
    res = _result(chain_results, notebook)
    expected = _expected(notebook)
    metrics = json.loads((res.run_dir / "metrics.json").read_text(encoding="utf-8"))
    missing = sorted(set(expected) - set(metrics))
    assert not missing, f"metrics not recorded by {notebook}: {missing}"
    wrong = {}
    for name, spec in expected.items():
        got = metrics[name]
        if isinstance(spec, dict):
            want = spec["value"]
            tol = {k: spec[k] for k in ("rel", "abs") if k in spec}
        else:
            want, tol = spec, {}
        if isinstance(want, bool) or isinstance(want, str) or want is None:
            ok = got == (want.isoformat() if hasattr(want, "isoformat") else want)
        elif hasattr(want, "isoformat"):  # a YAML date
            ok = got == want.isoformat()
        else:
            ok = got == pytest.approx(want, **tol)
        if not ok:
            wrong[name] = {"expected": want, "got": got, **tol}
    assert not wrong, f"{notebook} metrics differ from expected/{notebook}.yaml: {wrong}"


def test_overview_metrics_independent(chain_results):
    """The 00 notebook's figures recomputed with plain pandas straight from the Parquet files."""
    import pandas as pd

    res = _result(chain_results, "00_data_overview")
    if res.params["data_dir"] != str(SAMPLE):
        pytest.skip("CI params of 00 do not point at data/sample")
    m = json.loads((res.run_dir / "metrics.json").read_text(encoding="utf-8"))
    tx = pd.read_parquet(SAMPLE / "transactions.parquet")
    cust = pd.read_parquet(SAMPLE / "customers.parquet")
    bal = pd.read_parquet(SAMPLE / "balances.parquet")
    end = pd.Timestamp(m["observation_end"])
    open_ = cust[(cust["open_date"] <= end) & (cust["close_date"].isna() | (cust["close_date"] > end))]
    last = bal[bal["snapshot_date"] == bal["snapshot_date"].max()]
    assert m["rows_transactions"] == len(tx) and m["rows_customers"] == len(cust) and m["rows_balances"] == len(bal)
    assert m["total_amount"] == pytest.approx(tx["amount"].sum(), rel=1e-9)
    assert m["n_refunds"] == int((tx["amount"] < 0).sum())
    assert m["n_months"] == tx["date"].dt.to_period("M").nunique()
    assert m["n_customers_open"] == len(open_)
    assert m["share_corporate"] == pytest.approx((open_["customer_type"] == "corporate").mean(), rel=1e-9)
    assert m["aum_total"] == pytest.approx(last["aum"].sum(), rel=1e-9)
    assert m["transactions_last_date"] == tx["date"].max().date().isoformat()
