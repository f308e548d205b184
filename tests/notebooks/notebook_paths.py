"""Paths shared by the notebook tests (a plain module: conftest modules should not be imported)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
NOTEBOOKS_DIR = ROOT / "notebooks"
PARAMS_DIR = ROOT / "params"
EXPECTED_DIR = Path(__file__).resolve().parent / "expected"
