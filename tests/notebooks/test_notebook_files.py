"""The committed notebooks and parameter files follow the convention (no kernel needed).

- committed notebooks have no outputs (``python tools/strip_notebooks.py`` strips them);
- kernelspec ``rmanalytics``, a first markdown cell, cell 2 tagged ``parameters`` declaring exactly the
  model's fields with the model's defaults, cell 3 validating through ``load_params``;
- every YAML file in ``params/`` named ``<notebook>[.<variant>].yaml`` validates against its
  notebook's model (unknown keys, wrong types and impossible values fail).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

from notebook_paths import NOTEBOOKS_DIR, PARAMS_DIR, ROOT
from rmanalytics.params import NOTEBOOKS, REGISTRY, resolve
from rmanalytics.params.base import json_default

NOTEBOOK_FILES = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
PARAM_FILES = sorted(PARAMS_DIR.glob("*.yaml")) + sorted(PARAMS_DIR.glob("*.yml"))


def _strip_tool():
    spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / "tools" / "strip_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _notebook_of(path: Path) -> str | None:
    return next((nb for nb in REGISTRY if path.name.startswith(nb + ".")), None)


def test_every_notebook_is_registered():
    unknown = [p.name for p in NOTEBOOK_FILES if p.stem not in REGISTRY]
    assert not unknown, f"notebooks without a parameter model in rmanalytics.params.REGISTRY: {unknown}"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    assert not _strip_tool().needs_strip(path), f"{path.name} has outputs: run python tools/strip_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_convention(path):
    nb = nbformat.read(path, as_version=4)
    name = path.stem
    assert nb.metadata.get("kernelspec", {}).get("name") == "rmanalytics"
    assert nb.cells[0].cell_type == "markdown"
    params_cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params_cells) == 1 and nb.cells[1] is params_cells[0], "cell 2 must be the only 'parameters' cell"
    assert nb.cells[2].source.strip() == (
        f'from rmanalytics.params import load_params\nP = load_params("{name}", globals())')


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_parameters_cell_matches_model(path):
    nb = nbformat.read(path, as_version=4)
    model = REGISTRY[path.stem]
    tree = ast.parse(nb.cells[1].source)
    declared = {}
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), f"{path.name}: parameters cell line {node.lineno} is not 'name: type = value'"
        declared[node.target.id] = ast.literal_eval(node.value)
    assert list(declared) == list(model.model_fields), "parameters cell and model declare different fields"
    for name, field in model.model_fields.items():
        default = json_default(field.get_default(call_default_factory=True))
        assert declared[name] == default, f"{path.name}: {name} = {declared[name]!r}, model default {default!r}"
    for line in nb.cells[1].source.splitlines():
        assert "#" in line, f"{path.name}: parameter without a help comment: {line}"
        assert line.count("=") == 1, f"{path.name}: papermill's --help-notebook skips lines with two '=': {line}"


@pytest.mark.parametrize("path", [p for p in PARAM_FILES if _notebook_of(p)], ids=lambda p: p.name)
def test_params_file_validates(path):
    resolve(_notebook_of(path), path)  # raises ParameterError naming the key


def test_params_files_belong_to_a_notebook():
    stray = [p.name for p in PARAM_FILES if not _notebook_of(p)]
    if stray:
        pytest.skip(f"YAML files in params/ not named <notebook>[.<variant>].yaml (not checked here): {stray}")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_notebook_has_default_and_ci_params(notebook):
    if not (NOTEBOOKS_DIR / f"{notebook}.ipynb").is_file():
        pytest.skip(f"notebooks/{notebook}.ipynb does not exist yet")
    assert (PARAMS_DIR / f"{notebook}.yaml").is_file(), f"params/{notebook}.yaml missing"
    assert (PARAMS_DIR / f"{notebook}.ci.yaml").is_file(), f"params/{notebook}.ci.yaml missing"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """`papermill --help-notebook` lists every field (papermill cannot parse ``str | None``, which
    is why the cell spells optional types as ``"Optional[str]"``), so papermill never warns
    "Passed unknown parameter" for a real one."""
    import papermill

    seen = set(papermill.inspect_notebook(str(path)))
    assert seen == set(REGISTRY[path.stem].model_fields)
