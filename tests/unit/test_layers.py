"""The package's layers (``[tool.importlinter]`` in pyproject.toml) hold, and light imports stay light.

``make test`` runs ``lint-imports`` itself; this test runs it too, so that a plain ``pytest`` catches
an import that breaks the layers (e.g. an analysis module importing ``rmanalytics.params``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_lint_imports_keeps_the_layers():
    pytest.importorskip("importlinter", reason="import-linter is in the dev extra")
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    res = subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


@pytest.mark.parametrize("module", ["rmanalytics.params", "rmanalytics.errors", "rmanalytics.rules",
                                    "rmanalytics.window"])
def test_light_imports_stay_light(module):
    """Importing the parameter models (e.g. to validate a YAML file or list parameters in the CLI) must
    not load matplotlib or scikit-learn (seconds of import time)."""
    code = (f"import sys, {module}; import rmanalytics.params as p; p.get_model('01_segmentation')(); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'sklearn'}); "
            "print(heavy); sys.exit(1 if heavy else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, f"importing {module} loads {res.stdout.strip()}\n{res.stderr[-2000:]}"
