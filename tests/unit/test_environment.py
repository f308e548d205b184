"""environment.yml (conda) and pyproject.toml (pip) must name the same dependencies and bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# conda-forge names that differ from the PyPI names
CONDA_NAMES = {"duckdb": "python-duckdb"}
CONDA_ONLY = {"python", "pip", "openjdk", "font-ttf-noto-cjk"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    out = {}
    for r in reqs:
        name, spec = _split(r)
        out[CONDA_NAMES.get(name, name)] = spec
    return out


def _conda() -> tuple[dict[str, str], list]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps, pip = {}, []
    for d in env["dependencies"]:
        if isinstance(d, dict):
            pip += d.get("pip", [])
            continue
        name, spec = _split(d)
        deps[name] = spec
    return deps, pip


def test_environment_names_the_same_dependencies_as_pyproject():
    py = _pyproject()
    conda, _ = _conda()
    conda = {k: v for k, v in conda.items() if k not in CONDA_ONLY}
    assert sorted(conda) == sorted(py), (
        f"only in environment.yml: {sorted(set(conda) - set(py))}; only in pyproject: {sorted(set(py) - set(conda))}"
    )
    assert conda == py, {k: (conda[k], py[k]) for k in py if conda[k] != py[k]}


def test_environment_installs_the_package_itself_with_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    _, pip = _conda()
    assert "-e ." in pip


def test_python_bound_matches():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda, _ = _conda()
    assert meta["requires-python"] == conda["python"] == ">=3.11"
