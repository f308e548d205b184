"""Run folders, manifest, atomic completion, failing-cell detection and the run-all chain.

Most tests replace papermill's execution by a fake (no kernel) to stay fast; two tests start a
real kernel on a tiny notebook (success and a failing cell).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from pydantic import Field

import rmanalytics.params as params_mod
from rmanalytics import runner
from rmanalytics.params import NotebookParams, ParameterError, resolve


class TinyParams(NotebookParams):
    """Parameters of the test notebook."""

    n: int = Field(3, ge=0, description="How many rows.")
    fail: bool = Field(False, description="Raise in the last cell.")


class DownParams(NotebookParams):
    """A downstream notebook reading the upstream table."""

    segments_path: str | None = Field(None, description="Upstream table.")


def write_notebook(path: Path, name: str, model: type[NotebookParams]) -> Path:
    cells = [
        new_markdown_cell(f"# {name}"),
        new_code_cell(model.parameters_cell(), metadata={"tags": ["parameters"]}),
        new_code_cell(f'from rmanalytics.params import load_params\nP = load_params("{name}", globals())'),
        new_code_cell("import pandas as pd\nfrom rmanalytics.report import Recorder\n"
                      "rec = Recorder(P.output_dir, mask_ids=P.mask_ids)\n"
                      "df = rec.table('segments', pd.DataFrame({'customer_id': ['C1', 'C2'], 'x': [1, 2]}))\n"
                      "rec.metric('n', getattr(P, 'n', 0))\nprint('SECRET_CODE_MARKER_OUTPUT')\ndf"),
        new_code_cell("if getattr(P, 'fail', False):\n    raise ValueError('boom on purpose')"),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                             "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A registry with two tiny notebooks '00_tiny' -> '01_down' and a data folder."""
    monkeypatch.setitem(params_mod.REGISTRY, "00_tiny", TinyParams)
    monkeypatch.setitem(params_mod.REGISTRY, "01_down", DownParams)
    monkeypatch.setattr(params_mod, "NOTEBOOKS", ("00_tiny", "01_down"))
    monkeypatch.setattr(runner, "NOTEBOOKS", ("00_tiny", "01_down"))
    chain = {"01_down": {"segments_path": ("00_tiny", "restricted/tables/segments.parquet")}}
    monkeypatch.setattr(params_mod, "CHAIN_INPUTS", chain)
    monkeypatch.setattr(runner, "CHAIN_INPUTS", chain)
    nbdir = tmp_path / "notebooks"
    write_notebook(nbdir / "00_tiny.ipynb", "00_tiny", TinyParams)
    write_notebook(nbdir / "01_down.ipynb", "01_down", DownParams)
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_text("customer_id\nC1\n")
    (tmp_path / "params").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


class FakePapermill:
    """Stands in for papermill.execute_notebook: copies the notebook, writes what a run writes."""

    def __init__(self):
        self.calls = []

    def __call__(self, input_path, output_path, parameters=None, **kwargs):
        from papermill.exceptions import PapermillExecutionError

        self.calls.append({"input": input_path, "parameters": dict(parameters), **kwargs})
        nb = nbformat.read(input_path, as_version=4)
        out = Path(parameters["output_dir"])
        (out / "restricted" / "tables").mkdir(parents=True, exist_ok=True)
        (out / "restricted" / "tables" / "segments.parquet").write_bytes(b"PAR1")
        (out / "metrics.json").write_text(json.dumps({"n": parameters.get("n", 0)}))
        if parameters.get("fail"):
            nb.cells[4].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="boom",
                                                           traceback=["ValueError: boom"])]
            nb.cells[4].execution_count = 3
            nbformat.write(nb, output_path)
            raise PapermillExecutionError(5, 3, nb.cells[4].source, "ValueError", "boom", [])
        nbformat.write(nb, output_path)
        return nb


@pytest.fixture
def fake_pm(monkeypatch):
    import papermill

    fake = FakePapermill()
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return fake


def test_run_folder_layout_and_manifest(tiny, fake_pm):
    res = runner.run_notebook("00_tiny", resolve("00_tiny", overrides=[("n", "5")], data_dir="data"),
                              out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    assert res.ok and res.run_dir.parent == (tiny / "runs" / "00_tiny").resolve()
    assert not res.run_dir.name.endswith((".partial", ".failed"))
    assert runner.is_complete(res.run_dir)
    for f in ("parameters.yaml", "00_tiny.ipynb", "report.html", "metrics.json", "run.log", "manifest.json",
              "restricted/tables/segments.parquet"):
        assert (res.run_dir / f).is_file(), f
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["status"] == "ok" and m["parameters"]["n"] == 5
    assert m["parameters"]["output_dir"] == str(res.run_dir)
    assert m["parameters"]["data_dir"] == str((tiny / "data").resolve())
    assert str((tiny / "data" / "customers.csv").resolve()) in m["inputs"]
    assert len(m["inputs"][str((tiny / "data" / "customers.csv").resolve())]["sha256"]) == 64
    assert m["packages"]["pandas"] and m["python"] and m["package_version"]
    assert m["started_utc"] <= m["ended_utc"]
    # the kernel got absolute paths and the .partial folder as output_dir; cwd is the notebooks folder
    call = fake_pm.calls[0]
    assert call["parameters"]["output_dir"].endswith(".partial")
    assert call["cwd"] == str((tiny / "notebooks").resolve()) and call["kernel_name"] == "rmanalytics"
    assert (res.run_dir.parent / "latest").resolve() == res.run_dir


def test_runs_never_overwrite(tiny, fake_pm):
    p = resolve("00_tiny", data_dir="data")
    a = runner.run_notebook("00_tiny", p, out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    b = runner.run_notebook("00_tiny", p, out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    assert a.run_dir != b.run_dir and a.run_dir.is_dir() and b.run_dir.is_dir()


def test_failed_run_kept_and_named(tiny, fake_pm):
    res = runner.run_notebook("00_tiny", resolve("00_tiny", overrides=[("fail", "true")], data_dir="data"),
                              out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    assert res.status == "failed" and res.run_dir.name.endswith(".failed")
    assert res.executed_notebook.is_file() and not runner.is_complete(res.run_dir)
    assert res.failed_cell == 4 and res.failed_exec_count == 3
    msg = res.describe_failure()
    assert "cell index 4" in msg and "In [3]" in msg and str(res.executed_notebook) in msg and "boom" in msg
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["cell_index"] == 4
    assert not (res.run_dir.parent / "latest").exists()


def test_interrupted_run_stays_partial(tiny, monkeypatch):
    import papermill

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run_notebook("00_tiny", resolve("00_tiny", data_dir="data"), out_dir="runs",
                            notebooks_dir="notebooks", progress_bar=False)
    folders = list((tiny / "runs" / "00_tiny").iterdir())
    assert len(folders) == 1 and folders[0].name.endswith(".partial")
    assert json.loads((folders[0] / "manifest.json").read_text())["status"] == "interrupted"
    assert not runner.is_complete(folders[0])


def test_run_all_chains_upstream_output(tiny, fake_pm):
    (tiny / "params" / "00_tiny.yaml").write_text("n: 4\n")
    (tiny / "params" / "00_tiny.ci.yaml").write_text("n: 1\n")
    lines = []
    results = runner.run_all(params_dir="params", data_dir="data", out_dir="runs", variant="ci",
                             notebooks_dir="notebooks", progress_bar=False, echo=lines.append)
    assert [r.notebook for r in results] == ["00_tiny", "01_down"] and all(r.ok for r in results)
    assert fake_pm.calls[0]["parameters"]["n"] == 1  # the ci variant was picked
    assert fake_pm.calls[1]["parameters"]["segments_path"] == str(results[0].run_dir / "restricted/tables/segments.parquet")
    table = runner.summary_table(results)
    assert "00_tiny" in table and "01_down" in table and "ok" in table


def test_run_all_upstream_failure_noted_and_reported(tiny, fake_pm):
    (tiny / "params" / "00_tiny.yaml").write_text("fail: true\n")
    results = runner.run_all(params_dir="params", out_dir="runs", notebooks_dir="notebooks",
                             progress_bar=False, echo=lambda s: None)
    assert [r.status for r in results] == ["failed", "ok"]
    assert fake_pm.calls[1]["parameters"]["segments_path"] is None
    assert any("did not succeed" in n for n in results[1].notes)


def test_run_all_without_the_upstream_notes_the_recomputation(tiny, fake_pm):
    """run-all --only 01_down: 00 is not run, so 01 recomputes, and its result says so and how not to."""
    results = runner.run_all(params_dir="params", out_dir="runs", notebooks_dir="notebooks", notebooks=["01_down"],
                             progress_bar=False, echo=lambda s: None)
    assert [r.notebook for r in results] == ["01_down"] and fake_pm.calls[0]["parameters"]["segments_path"] is None
    assert results[0].notes == ["segments_path: 00_tiny is not part of this run-all; recomputed "
                                "(no successful run of 00_tiny in runs; run it too, or set segments_path in the "
                                "notebook's parameters file)"]


# ----------------------------------------------------------------------------- reuse of upstream runs
SEGMENTS = "restricted/tables/segments.parquet"


def _run_only(nb: str, **kw) -> runner.RunResult:
    """run-all --only nb --params-dir params --data data --out runs (fake papermill)."""
    results = runner.run_all(params_dir="params", data_dir="data", out_dir="runs", notebooks_dir="notebooks",
                             notebooks=[nb], progress_bar=False, echo=lambda s: None, **kw)
    assert [r.notebook for r in results] == [nb]
    return results[0]


def test_run_all_only_reuses_the_upstream_run_that_matches(tiny, fake_pm):
    up = _run_only("00_tiny")
    down = _run_only("01_down")
    assert down.ok and fake_pm.calls[-1]["parameters"]["segments_path"] == str(up.run_dir / SEGMENTS)
    assert down.notes == [f"segments_path: reused 00_tiny run {up.run_dir.name} (same data, parameters and notebook)"]
    m = json.loads((down.run_dir / "manifest.json").read_text())
    assert m["parameters"]["segments_path"] == str(up.run_dir / SEGMENTS)  # the manifest names the run read
    (tiny / "runs" / "00_tiny" / "latest").unlink()  # no symlinks: the newest complete run folder
    newer = _run_only("00_tiny")
    (tiny / "runs" / "00_tiny" / "latest").unlink()
    _run_only("01_down")
    assert fake_pm.calls[-1]["parameters"]["segments_path"] == str(newer.run_dir / SEGMENTS)
    assert runner.summary_table([down]).count("reused 00_tiny run") == 1


def _change_params(tiny: Path, up: runner.RunResult) -> str:
    (tiny / "params" / "00_tiny.yaml").write_text("n: 4\n")
    return f"last run {up.run_dir.name} had other parameters: n 3 → 4"


def _change_data(tiny: Path, up: runner.RunResult) -> str:
    (tiny / "data" / "customers.csv").write_text("customer_id\nC2\n")
    return f"data changed since last run {up.run_dir.name}: customers.csv changed"


def _add_data(tiny: Path, up: runner.RunResult) -> str:
    (tiny / "data" / "accounts.csv").write_text("customer_id\nC2\n")
    return f"data changed since last run {up.run_dir.name}: accounts.csv added"


def _change_notebook(tiny: Path, up: runner.RunResult) -> str:
    nb = nbformat.read(tiny / "notebooks" / "00_tiny.ipynb", as_version=4)
    nb.cells.append(new_code_cell("x = 1"))
    nbformat.write(nb, tiny / "notebooks" / "00_tiny.ipynb")
    return f"notebook 00_tiny.ipynb changed since last run {up.run_dir.name}"


def _incomplete_latest(tiny: Path, up: runner.RunResult) -> str:
    (up.run_dir / "report.html").unlink()
    return f"last run {up.run_dir.name} is not complete"


def _incomplete_folder(tiny: Path, up: runner.RunResult) -> str:
    (up.run_dir.parent / "latest").unlink()
    up.run_dir.rename(up.run_dir.with_name(up.run_dir.name + ".partial"))
    return "no successful run of 00_tiny in runs"


def _missing_file(tiny: Path, up: runner.RunResult) -> str:
    (up.run_dir / SEGMENTS).unlink()
    return f"last run {up.run_dir.name} has no {SEGMENTS}"


def _broken_params(tiny: Path, up: runner.RunResult) -> str:
    (tiny / "params" / "00_tiny.yaml").write_text("nn: 4\n")
    return "its parameters do not resolve now: "


@pytest.mark.parametrize("change", [_change_params, _change_data, _add_data, _change_notebook, _incomplete_latest,
                                    _incomplete_folder, _missing_file, _broken_params])
def test_run_all_only_recomputes_when_the_upstream_run_is_not_the_same(tiny, fake_pm, change):
    up = _run_only("00_tiny")
    why = change(tiny, up)
    down = _run_only("01_down")
    assert down.ok and fake_pm.calls[-1]["parameters"]["segments_path"] is None
    assert len(down.notes) == 1 and down.notes[0].startswith(
        f"segments_path: 00_tiny is not part of this run-all; recomputed ({why}"), down.notes


@pytest.mark.parametrize("version, git, why", [
    ("9.9.9", {}, "rmanalytics {v} → 9.9.9"),
    (None, {"sha": "abc1234", "dirty": False}, "project commit (none) → abc1234"),
])
def test_run_all_only_recomputes_when_the_package_code_changed(tiny, fake_pm, monkeypatch, version, git, why):
    """Same notebook, data and parameters, but another rmanalytics version or project commit: not reused."""
    up = _run_only("00_tiny")
    v = runner.package_versions(["rmanalytics"])["rmanalytics"]
    if version:
        monkeypatch.setattr(runner, "package_versions", lambda names=(): {n: version for n in names})
    monkeypatch.setattr(runner, "git_info", lambda folder: git)
    down = _run_only("01_down")
    assert fake_pm.calls[-1]["parameters"]["segments_path"] is None
    assert f"recomputed ({why.format(v=v)} since last run {up.run_dir.name};" in down.notes[0], down.notes


def test_run_all_only_does_not_reuse_from_a_dirty_work_tree(tiny, fake_pm, monkeypatch):
    """Uncommitted changes (then or now): the code that ran cannot be confirmed, so nothing is reused."""
    monkeypatch.setattr(runner, "git_info", lambda folder: {"sha": "abc1234", "dirty": True})
    up = _run_only("00_tiny")
    down = _run_only("01_down")
    assert fake_pm.calls[-1]["parameters"]["segments_path"] is None
    assert f"uncommitted changes in the project (the code that ran cannot be confirmed) since last run {up.run_dir.name}" \
        in down.notes[0]
    monkeypatch.setattr(runner, "git_info", lambda folder: {"sha": "abc1234", "dirty": False})
    up = _run_only("00_tiny")
    assert "reused 00_tiny run" in _run_only("01_down").notes[0]  # committed: reused


def test_run_all_only_does_not_reuse_a_failed_run_or_with_reuse_off(tiny, fake_pm):
    (tiny / "params" / "00_tiny.yaml").write_text("fail: true\n")
    assert _run_only("00_tiny").status == "failed"
    down = _run_only("01_down")
    assert fake_pm.calls[-1]["parameters"]["segments_path"] is None
    assert "recomputed (no successful run of 00_tiny in runs;" in down.notes[0]
    (tiny / "params" / "00_tiny.yaml").write_text("fail: false\n")
    assert _run_only("00_tiny").ok
    down = _run_only("01_down", reuse=False)
    assert fake_pm.calls[-1]["parameters"]["segments_path"] is None
    assert "recomputed (reuse of earlier runs turned off (--no-reuse);" in down.notes[0]
    assert "reused 00_tiny run" in _run_only("01_down").notes[0]  # the same runs, reuse on


def test_run_all_only_an_explicit_parameter_wins_over_reuse(tiny, fake_pm):
    _run_only("00_tiny")
    own = tiny / "own.parquet"
    own.write_bytes(b"PAR1")
    (tiny / "params" / "01_down.yaml").write_text(f"segments_path: {own}\n")
    down = _run_only("01_down")
    assert fake_pm.calls[-1]["parameters"]["segments_path"] == str(own) and down.notes == []


class LeafParams(NotebookParams):
    """A notebook downstream of 01_down."""

    down_path: str | None = Field(None, description="01_down's table.")


def test_reuse_ignores_the_upstreams_own_chain_inputs_set_by_run_all(tiny, fake_pm, monkeypatch):
    """01_down's run read 00_tiny's run (segments_path set by run-all); resolved now it is None: still the same.
    A segments_path set in 01_down's parameters file now is compared like any parameter."""
    monkeypatch.setitem(params_mod.REGISTRY, "02_leaf", LeafParams)
    monkeypatch.setattr(runner, "NOTEBOOKS", ("00_tiny", "01_down", "02_leaf"))
    chain = {"01_down": {"segments_path": ("00_tiny", SEGMENTS)}, "02_leaf": {"down_path": ("01_down", SEGMENTS)}}
    monkeypatch.setattr(runner, "CHAIN_INPUTS", chain)
    write_notebook(tiny / "notebooks" / "02_leaf.ipynb", "02_leaf", LeafParams)
    results = runner.run_all(params_dir="params", data_dir="data", out_dir="runs", notebooks_dir="notebooks",
                             notebooks=["00_tiny", "01_down"], progress_bar=False, echo=lambda s: None)
    down = results[1]
    assert json.loads((down.run_dir / "manifest.json").read_text())["parameters"]["segments_path"] is not None
    leaf = _run_only("02_leaf")
    assert fake_pm.calls[-1]["parameters"]["down_path"] == str(down.run_dir / SEGMENTS)
    assert leaf.notes == [f"down_path: reused 01_down run {down.run_dir.name} (same data, parameters and notebook)"]
    own = tiny / "own.parquet"
    own.write_bytes(b"PAR1")
    (tiny / "params" / "01_down.yaml").write_text(f"segments_path: {own}\n")
    leaf = _run_only("02_leaf")
    assert fake_pm.calls[-1]["parameters"]["down_path"] is None
    assert f"had other parameters: segments_path {results[0].run_dir / SEGMENTS} → {own}" in leaf.notes[0]


def test_run_all_validates_everything_before_running(tiny, fake_pm):
    (tiny / "params" / "01_down.yaml").write_text("segment_path: x\n")
    with pytest.raises(ParameterError, match="segment_path"):
        runner.run_all(params_dir="params", out_dir="runs", notebooks_dir="notebooks", echo=lambda s: None)
    assert fake_pm.calls == [] and not (tiny / "runs").exists()


def test_run_all_skips_missing_notebooks(tiny, fake_pm):
    (tiny / "notebooks" / "01_down.ipynb").unlink()
    lines = []
    results = runner.run_all(params_dir="params", out_dir="runs", notebooks_dir="notebooks",
                             progress_bar=False, echo=lines.append)
    assert [r.notebook for r in results] == ["00_tiny"]
    assert any(line.startswith("skip 01_down") for line in lines)


def test_missing_kernel_fails_before_any_folder(tiny, fake_pm):
    with pytest.raises(runner.KernelNotFound, match="rmanalytics kernel"):
        runner.run_notebook("00_tiny", resolve("00_tiny"), out_dir="runs", notebooks_dir="notebooks",
                            kernel_name="no_such_kernel_xyz")
    assert not (tiny / "runs").exists() and fake_pm.calls == []


def test_fingerprints_change_with_content(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("x\n1\n")
    a = runner.input_fingerprints([tmp_path])
    f.write_text("x\n2\n")
    b = runner.input_fingerprints([tmp_path])
    assert a[str(f)]["sha256"] != b[str(f)]["sha256"]
    assert runner.input_fingerprints([tmp_path / "nope"])[str(tmp_path / "nope")] == {"missing": True}


# ----------------------------------------------------------------------------- real kernel
# The kernel is a separate process and sees the real registry, so these use the real
# '00_data_overview' name and model with a trivial notebook body.
@pytest.fixture
def real_nb(tmp_path, monkeypatch):
    from rmanalytics.params import OverviewParams

    nb = write_notebook(tmp_path / "notebooks" / "00_data_overview.ipynb", "00_data_overview", OverviewParams)
    doc = nbformat.read(nb, as_version=4)
    doc.cells[3].source = doc.cells[3].source.replace("getattr(P, 'n', 0)", "P.amount_bins")
    doc.cells[4].source = "if P.amount_bins > 100:\n    raise ValueError('boom on purpose')"
    nbformat.write(doc, nb)
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_real_kernel_success_and_html_without_code(real_nb):
    res = runner.run_notebook("00_data_overview", resolve("00", overrides=[("amount_bins", "7")], data_dir="data"),
                              out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    assert res.ok, res.describe_failure()
    html = (res.run_dir / "report.html").read_text()
    assert "SECRET_CODE_MARKER_OUTPUT" in html  # outputs are in the report
    assert "print(" not in html and "load_params" not in html  # code is not
    assert json.loads((res.run_dir / "metrics.json").read_text()) == {"n": 7}
    log = (res.run_dir / "run.log").read_text()
    assert "SECRET_CODE_MARKER_OUTPUT" in log and "Passed unknown parameter" not in log
    executed = nbformat.read(res.executed_notebook, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_real_kernel_failing_cell(real_nb):
    res = runner.run_notebook("00_data_overview", resolve("00", overrides=[("amount_bins", "200")], data_dir="data"),
                              out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    assert res.status == "failed"
    assert res.failed_cell == 4 and res.failed_exec_count is not None and "boom on purpose" in res.error
    assert res.executed_notebook.is_file() and res.run_dir.name.endswith(".failed")
    assert res.failed_source == "raise ValueError('boom on purpose')" and res.failed_line == 2
    assert "line 2" in res.describe_failure() and "boom on purpose" in res.describe_failure()


# ----------------------------------------------------------------------------- privacy
def test_generated_key_is_logged_and_only_its_fingerprint_recorded(tiny, fake_pm, monkeypatch):
    from rmanalytics import privacy

    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    monkeypatch.delenv(privacy.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(privacy.CONFIG_DIR_ENV, str(tiny / "cfg"))
    res = runner.run_notebook("00_tiny", resolve("00_tiny", data_dir="data"), out_dir="runs",
                              notebooks_dir="notebooks", progress_bar=False)
    key = privacy.load_key()
    assert key.source == "config" and key.path == str(tiny / "cfg" / "mask.key")
    log = (res.run_dir / "run.log").read_text()
    assert "NEW random key generated" in log and key.fingerprint in log
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["privacy"]["key_fingerprint"] == key.fingerprint and m["privacy"]["key_source"] == "generated"
    for p in res.run_dir.rglob("*"):
        if p.is_file():
            assert key.secret not in p.read_bytes(), p
    # restricted/ is owner-only
    assert (res.run_dir / "restricted").stat().st_mode & 0o777 == 0o700
    assert (res.run_dir / "restricted" / "tables" / "segments.parquet").stat().st_mode & 0o777 == 0o600


def test_unmasked_run_is_owner_only(tiny, fake_pm):
    res = runner.run_notebook("00_tiny", resolve("00_tiny", overrides=[("mask_ids", "false")], data_dir="data"),
                              out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
    assert res.ok and res.run_dir.stat().st_mode & 0o777 == 0o700
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["privacy"]["mask_ids"] is False and m["privacy"]["key_fingerprint"] is None
    assert "NOT masked" in (res.run_dir / "run.log").read_text()


@pytest.fixture
def leaky_nb(tmp_path, monkeypatch):
    """A real notebook that records a table of ids and quotes raw ids in print, a warning and an error."""
    from rmanalytics.params import OverviewParams

    nb = write_notebook(tmp_path / "notebooks" / "00_data_overview.ipynb", "00_data_overview", OverviewParams)
    doc = nbformat.read(nb, as_version=4)
    doc.cells[3].source = (
        "import warnings\nimport pandas as pd\nfrom rmanalytics.report import Recorder\n"
        "rec = Recorder(P.output_dir, mask_ids=P.mask_ids)\n"
        "shown = rec.table('segments', pd.DataFrame({'customer_id': ['C0000001', 'C0000002'], 'x': [1, 2]}))\n"
        "print('customer C0000003 looks odd')\nwarnings.warn('rows of C0000004 skipped')\nshown")
    doc.cells[4].source = ("if P.amount_bins > 100:\n"
                           "    raise ValueError(\"transactions.amount: broken by 1 rows, e.g. [{'customer_id': 'C0000009'}]\")")
    nbformat.write(doc, nb)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "customers.csv").write_text("customer_id\n" + "\n".join(f"C000000{i}" for i in range(1, 9)))
    (tmp_path / "data" / "transactions.csv").write_text("customer_id,amount\nC0000009,1.0\n")  # orphan id
    monkeypatch.chdir(tmp_path)
    return tmp_path


RAW = [f"C000000{i}" for i in range(1, 10)]


def test_real_kernel_masks_every_people_facing_file(leaky_nb):
    from rmanalytics import privacy

    key = privacy.load_key()
    for bins, ok in (("7", True), ("200", False)):
        res = runner.run_notebook("00_data_overview", resolve("00", overrides=[("amount_bins", bins)], data_dir="data"),
                                  out_dir="runs", notebooks_dir="notebooks", progress_bar=False)
        assert res.ok is ok, res.describe_failure()
        files = privacy.people_facing_files(res.run_dir)
        names = {str(p.relative_to(res.run_dir)) for p in files}
        assert {"run.log", "report.html", "00_data_overview.ipynb", "manifest.json", "tables/segments.csv"} <= names
        for p in files:
            text = p.read_text()
            assert not any(r in text for r in RAW), (p, [r for r in RAW if r in text])
        html = (res.run_dir / "report.html").read_text()
        assert privacy.mask_id("C0000003", key) in html and privacy.mask_id("C0000001", key) in html
        log = (res.run_dir / "run.log").read_text()
        assert privacy.mask_id("C0000004", key) in log and f"fingerprint {key.fingerprint}" in log
        raw = pd.read_parquet(res.run_dir / "restricted" / "tables" / "segments.parquet")
        assert raw["customer_id"].tolist() == ["C0000001", "C0000002"]
        assert not (res.run_dir / "tables" / "segments.parquet").exists()
        m = json.loads((res.run_dir / "manifest.json").read_text())
        assert m["privacy"]["key_fingerprint"] == key.fingerprint and m["privacy"]["raw_ids_masked_in_text"] > 0
    assert "C0000009" not in res.error and privacy.mask_id("C0000009", key) in res.error
    assert privacy.mask_id("C0000009", key) in m["error"]["message"]


def test_run_all_generates_the_key_once_and_logs_it(tiny, fake_pm, monkeypatch):
    from rmanalytics import privacy

    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    monkeypatch.delenv(privacy.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(privacy.CONFIG_DIR_ENV, str(tiny / "cfg"))
    lines = []
    results = runner.run_all(params_dir="params", data_dir="data", out_dir="runs", notebooks_dir="notebooks",
                             progress_bar=False, echo=lines.append)
    assert any("NEW random key generated" in line for line in lines)
    fps = {json.loads((r.run_dir / "manifest.json").read_text())["privacy"]["key_fingerprint"] for r in results}
    assert fps == {privacy.load_key().fingerprint}
    assert all("NEW random key generated" in (r.run_dir / "run.log").read_text() for r in results)


CHAIN_DEPS = {"03_loyalty_clv": {"01_segmentation"},
              "05_rm_book": {"01_segmentation", "02_churn_survival", "04_kpi_attribution"}}
CHAIN = ["00_data_overview", "01_segmentation", "02_churn_survival", "03_loyalty_clv", "04_kpi_attribution",
         "05_rm_book", "06_rm_review"]


def test_critical_path_order_without_history_uses_typical_durations():
    order = runner.critical_path_order(CHAIN, lambda nb: CHAIN_DEPS.get(nb, set()))
    # typical seconds: 02 -> 05 (181) first, then 04 -> 05 (128), 01 -> 05 (101), 05 (64): when 02 ends
    # the pool starts 05 before 03 (the 1M run of 2026-12-01 started 03 first, and 05 waited 5 s)
    assert order == ["02_churn_survival", "04_kpi_attribution", "01_segmentation", "05_rm_book",
                     "03_loyalty_clv", "00_data_overview", "06_rm_review"]
    unknown = runner.critical_path_order(["b_extra", "a_extra"], lambda nb: set())
    assert unknown == ["b_extra", "a_extra"]  # no typical figure, no record: weight 1, file order


def test_critical_path_order_uses_last_durations(tmp_path):
    secs = {"00_data_overview": 20, "01_segmentation": 66, "02_churn_survival": 245, "03_loyalty_clv": 31,
            "04_kpi_attribution": 92, "05_rm_book": 162, "06_rm_review": 54}
    t0 = pd.Timestamp("2026-11-30T10:00:00+00:00")
    for nb, s in secs.items():
        run = tmp_path / nb / "run1"
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps({"started_utc": t0.isoformat(),
                                                       "ended_utc": (t0 + pd.Timedelta(seconds=s)).isoformat()}))
        (tmp_path / nb / "latest").symlink_to("run1")
    (tmp_path / "06_rm_review" / "latest" / "manifest.json").write_text("{broken")  # unreadable: typical weight
    durations = runner.last_durations(tmp_path, CHAIN)
    assert durations["02_churn_survival"] == 245 and "06_rm_review" not in durations
    order = runner.critical_path_order(CHAIN, lambda nb: CHAIN_DEPS.get(nb, set()), durations)
    # 02 -> 05 (407 s) first, then 04 -> 05 (254 s), 01 -> 05 (228 s), 05, 03, 00 (20 s), 06 (no record:
    # typical 8 s x the median recorded/typical ratio, 66/37: 14 s)
    assert order == ["02_churn_survival", "04_kpi_attribution", "01_segmentation", "05_rm_book",
                     "03_loyalty_clv", "00_data_overview", "06_rm_review"]
    short = runner.critical_path_order(CHAIN, lambda nb: CHAIN_DEPS.get(nb, set()),
                                       {**durations, "00_data_overview": 10})
    assert short.index("06_rm_review") < short.index("00_data_overview")  # 06: 14 s (typical, scaled) > 10 s


def test_blas_threads_share_the_cores_between_jobs(monkeypatch):
    for v in runner.BLAS_THREAD_VARS:
        monkeypatch.delenv(v, raising=False)
    assert runner.blas_threads_env(1, cpus=2) == {}
    assert runner.blas_threads_env(2, cpus=2) == {v: "1" for v in runner.BLAS_THREAD_VARS}
    assert runner.blas_threads_env(2, cpus=8)["OPENBLAS_NUM_THREADS"] == "4"
    assert runner.blas_threads_env(4, cpus=2)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    assert runner.blas_threads_env(2, cpus=2) == {}


def test_run_all_sets_blas_threads_for_its_kernels_and_restores(tiny, fake_pm, monkeypatch):
    for v in runner.BLAS_THREAD_VARS:
        monkeypatch.delenv(v, raising=False)
    seen = []

    def spy(*args, **kwargs):  # what the worker processes and kernels would inherit
        seen.append({v: os.environ.get(v) for v in runner.BLAS_THREAD_VARS})
        return []

    monkeypatch.setattr(runner, "_run_all_planned", spy)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    runner.run_all(params_dir="params", data_dir="data", out_dir="runs", notebooks_dir="notebooks", jobs=2,
                   progress_bar=False, echo=lambda *_: None)
    assert seen == [{v: "1" for v in runner.BLAS_THREAD_VARS}]
    assert all(os.environ.get(v) is None for v in runner.BLAS_THREAD_VARS)
