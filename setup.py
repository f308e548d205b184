"""Build hook only (everything else is in pyproject.toml): ship the project's notebooks/,
params/ and data/sample/ inside the wheel as rmanalytics/_bundled/, so a non-editable install
can run every notebook and `rmanalytics init` can copy them (see rmanalytics/resources.py)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("notebooks", "params", "data/sample")


class BuildPyWithProject(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # editable installs read the source tree
            return
        root = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "rmanalytics" / "_bundled"
        for rel in BUNDLED:
            if (root / rel).is_dir():
                shutil.copytree(root / rel, dest / rel, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".rmanalytics"))


setup(cmdclass={"build_py": BuildPyWithProject})
