"""Where the notebooks, default parameters, scorecards and the bundled sample are found.

A *project folder* holds ``notebooks/`` and ``params/`` (``rmanalytics init DIR`` makes one; the
repository itself is one). Commands look in the project folder first (the current folder or a
parent of it), then fall back to the copies shipped inside the package, so a plain
``pip install rmanalytics`` (not editable) runs every notebook on the bundled sample.

Inside an installed wheel the copies live in ``rmanalytics/_bundled/`` (``setup.py`` copies
``notebooks/``, ``params/`` and ``data/sample/`` there at build time); in a source checkout or an
editable install they are the repository's own folders.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: What a project folder holds, and what the package ships (relative paths).
BUNDLED = ("notebooks", "params", "data/sample")


def bundled_root() -> Path:
    """The folder holding the packaged ``notebooks/``, ``params/`` and ``data/sample/``."""
    wheel = PACKAGE_DIR / "_bundled"
    if (wheel / "notebooks").is_dir():
        return wheel
    source = PACKAGE_DIR.parent
    if (source / "notebooks").is_dir() and (source / "params").is_dir():
        return source
    raise FileNotFoundError(
        f"the packaged notebooks and parameters are missing from {PACKAGE_DIR}: reinstall rmanalytics "
        f"(pip install --force-reinstall rmanalytics)")


def find_project(start: str | os.PathLike | None = None) -> Path | None:
    """The project folder (holding ``notebooks/`` and ``params/``): ``start`` (default: the
    current folder) or its nearest parent that has both; None when there is none."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "notebooks").is_dir() and (folder / "params").is_dir():
            return folder
    return None


def locate(relative: str | os.PathLike, start: str | os.PathLike | None = None) -> Path | None:
    """``relative`` (e.g. ``"params/scorecards/default.yaml"``, ``"data/sample"``) looked up in the
    current folder, the project folder, then the packaged copies; None when none has it."""
    rel = Path(relative)
    if rel.is_absolute():
        return rel if rel.exists() else None
    base = Path(start or Path.cwd()).resolve()
    candidates = [base / rel]
    project = find_project(base)
    if project is not None:
        candidates.append(project / rel)
    try:
        candidates.append(bundled_root() / rel)
    except FileNotFoundError:
        pass
    for path in candidates:
        if path.exists():
            return path.resolve()
    return None


PROJECT_README = """\
# rmanalytics project

Made by `rmanalytics init`. Two folders are yours to edit:

- `params/`: one YAML file of parameters per notebook (`<notebook>.yaml`), plus variants
  (`<notebook>.<variant>.yaml`, chosen with `--variant`) and the scorecard configs in
  `params/scorecards/`. `rmanalytics params <notebook>` lists every parameter with its meaning.
- `notebooks/`: the analysis notebooks. Extend them or add your own; keep logic in Python
  modules and the notebooks thin. Open them with `jupyter lab notebooks` (kernel
  "rmanalytics").

`data/sample/` is the bundled synthetic bank. To use your own data, put the tables in a folder
(see `rmanalytics validate --help`) and pass `--data DIR`.

Commands, run from this folder:

    rmanalytics run-all                    # every notebook, run folders in runs/
    rmanalytics run 01_segmentation        # one notebook
    rmanalytics validate data/sample       # check a data folder

Each run writes `runs/<notebook>/<timestamp>/` with `report.html` (open it first),
`tables/`, `figures/`, `metrics.json`, `run.log` and `manifest.json`;
`runs/<notebook>/latest` points to the newest successful run. A notebook or parameter file
missing here is taken from the installed package.
"""


def init_project(folder: str | os.PathLike, *, force: bool = False) -> Path:
    """Scaffold a project folder: copies of the packaged ``params/``, ``notebooks/`` and
    ``data/sample/`` plus a README explaining them. Refuses a non-empty folder unless ``force``
    (then existing files are overwritten, others kept)."""
    dest = Path(folder).resolve()
    if dest.exists() and any(dest.iterdir()) and not force:
        raise FileExistsError(f"{dest} is not empty; choose a new folder or pass --force to overwrite "
                              f"the copied files")
    src = bundled_root()
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
    for rel in BUNDLED:
        if (src / rel).is_dir():
            shutil.copytree(src / rel, dest / rel, dirs_exist_ok=True, ignore=ignore)
    (dest / "README.md").write_text(PROJECT_README, encoding="utf-8")
    return dest
