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


# ----------------------------------------------------------------------------- the lock
LOCK_SETS = {  # requirements file -> extras it holds (besides the base dependencies and the build group)
    "base.txt": (),
    "spark.txt": ("spark",),
    "dev.txt": ("dev", "spark"),
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line of an exported requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def test_lock_was_made_from_todays_pyproject():
    """uv.lock records the requirements it was resolved from; they must be pyproject.toml's own
    (change a range without `make lock` and this fails)."""
    from packaging.requirements import Requirement

    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())
    meta = proj["project"]
    want = {(_norm(Requirement(r).name), str(Requirement(r).specifier), None) for r in meta["dependencies"]}
    for extra, reqs in meta["optional-dependencies"].items():
        want |= {(_norm(Requirement(r).name), str(Requirement(r).specifier), extra) for r in reqs}
    pkg = next(p for p in _lock()["package"] if p["name"] == "rmanalytics")
    got = set()
    for r in pkg["metadata"]["requires-dist"]:
        spec = str(Requirement(f"x{r.get('specifier', '')}").specifier)
        got.add((_norm(r["name"]), spec, r.get("marker", "").split("'")[1] if "extra ==" in r.get("marker", "") else None))
    assert got == want, {"only in pyproject": sorted(want - got, key=str), "only in uv.lock": sorted(got - want, key=str)}
    groups = {g: sorted(str(Requirement(r)) for r in v) for g, v in proj.get("dependency-groups", {}).items()}
    lock_groups = {g: sorted(str(Requirement(f"{d['name']}{d.get('specifier', '')}")) for d in v)
                   for g, v in pkg["metadata"].get("requires-dev", {}).items()}
    assert lock_groups == groups


def test_exported_requirements_match_the_lock_and_the_ranges():
    from packaging.requirements import Requirement

    versions = {_norm(p["name"]): p["version"] for p in _lock()["package"] if "version" in p}
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for fname, extras in LOCK_SETS.items():
        path = ROOT / "requirements" / fname
        text = path.read_text()
        pins = _pins(path)
        assert pins, fname
        # every pin carries hashes, so `pip install --require-hashes` accepts the file
        blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.strip())
        assert all("--hash=sha256:" in b for b in blocks if re.match(r"^[A-Za-z0-9_.\-]+==", b)), fname
        for name, version in pins.items():
            assert versions.get(name) == version, (fname, name, version, versions.get(name))
        wanted = list(meta["dependencies"]) + [r for e in extras for r in meta["optional-dependencies"][e]]
        for r in map(Requirement, wanted):
            name = _norm(r.name)
            assert name in pins, f"{fname} lacks {name}"
            assert r.specifier.contains(pins[name], prereleases=True), (fname, name, pins[name], str(r.specifier))
        others = {_norm(Requirement(r).name) for e in meta["optional-dependencies"] if e not in extras
                  for r in meta["optional-dependencies"][e]}
        assert not (others & set(pins)) - {_norm(Requirement(r).name) for e in extras
                                           for r in meta["optional-dependencies"][e]} - {"setuptools", "wheel"}, fname
        assert {"setuptools", "wheel"} <= set(pins), f"{fname} lacks the build group"


def test_makefile_installs_from_the_lock():
    mk = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements/base.txt" in mk
    assert "--require-hashes --no-deps -r requirements/dev.txt" in mk
    assert "--no-build-isolation -e ." in mk
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
