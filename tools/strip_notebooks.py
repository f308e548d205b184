#!/usr/bin/env python
"""Strip outputs from notebooks so committed notebooks diff cleanly.

Usage::

    python tools/strip_notebooks.py                # strip every notebooks/*.ipynb in place
    python tools/strip_notebooks.py --check        # exit 1 and list notebooks that need stripping
    python tools/strip_notebooks.py a.ipynb b.ipynb
    python tools/strip_notebooks.py --outputs-from runs/00_data_overview/latest/00_data_overview.ipynb \\
        notebooks/00_data_overview.ipynb          # refresh the expected outputs of checked cells

Removes outputs and execution counts, the per-cell metadata other than ``tags`` (the
``parameters`` tag must stay), and run-specific notebook metadata (papermill, widgets, execution
timing). Sets the project's kernelspec (``rmanalytics``) and keeps the language name. Writes with nbformat's standard
layout (1-space indent), the same as JupyterLab, so stripping is idempotent.

Exception: a code cell whose first line is ``# NBVAL_CHECK_OUTPUT`` keeps its outputs (only
``stream`` and ``execute_result``/``display_data`` text, and execution count 1): they are the expected output that
``pytest --nbval-lax`` compares on the bundled sample. Refresh them with ``--outputs-from`` an
executed copy of the notebook (cells matched by id, else by source) after the sample data changes.

Chosen over nbstripout/jupytext: no extra dependency or git filter, and the checked-cell exception.
``tests/notebooks/test_notebook_files.py`` fails when a committed notebook needs stripping.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

KEEP_CELL_METADATA = ("tags",)
KEEP_NB_METADATA = ("kernelspec", "language_info")
#: The project's kernel (rmanalytics.runner.KERNEL_NAME), registered by `rmanalytics kernel`.
KERNELSPEC = {"display_name": "rmanalytics (.venv)", "language": "python", "name": "rmanalytics"}
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    """True for a code cell whose expected output is committed (first line ``# NBVAL_CHECK_OUTPUT``)."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


def _clean_output(out):
    out = nbformat.from_dict(dict(out))
    out.pop("execution_count", None)
    if out.get("output_type") == "execute_result":
        out["execution_count"] = None
    if "data" in out:
        out["data"] = {k: v for k, v in out["data"].items() if k.startswith("text/")}
    if "metadata" in out:
        out["metadata"] = {}
    return out


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return ``nb`` without outputs, execution counts and run-specific metadata (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            if is_checked(cell):
                cell.outputs = [_clean_output(o) for o in cell.outputs
                                if o.get("output_type") in ("stream", "execute_result", "display_data")]
                # nbval skips reference cells that look unrun; a constant count keeps diffs clean
                cell.execution_count = 1 if cell.outputs else None
            else:
                cell.outputs = []
                cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
    meta = {k: v for k, v in nb.metadata.items() if k in KEEP_NB_METADATA}
    if "language_info" in meta:
        meta["language_info"] = {"name": meta["language_info"].get("name", "python")}
    meta["kernelspec"] = dict(KERNELSPEC)
    nb.metadata = meta
    return nb


def copy_checked_outputs(executed: nbformat.NotebookNode, target: nbformat.NotebookNode) -> int:
    """Copy the outputs of checked cells from an executed notebook; return how many cells."""
    by_id = {c.get("id"): c for c in executed.cells if c.get("id")}
    by_src = {c.source: c for c in executed.cells}
    n = 0
    for cell in target.cells:
        if not is_checked(cell):
            continue
        src = by_id.get(cell.get("id")) or by_src.get(cell.source)
        if src is None:
            raise SystemExit(f"checked cell {cell.get('id')} not found in the executed notebook")
        cell.outputs = src.outputs
        n += 1
    return n


def needs_strip(path: Path) -> bool:
    """True when the file on disk differs from its stripped form."""
    text = path.read_text(encoding="utf-8")
    stripped = nbformat.writes(strip(nbformat.reads(text, as_version=4)))
    return text not in (stripped, stripped + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if any notebook needs stripping")
    parser.add_argument("--outputs-from", type=Path, metavar="EXECUTED",
                        help="copy the outputs of '# NBVAL_CHECK_OUTPUT' cells from this executed notebook")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    paths = args.paths or sorted((root / "notebooks").glob("*.ipynb"))
    if args.outputs_from:
        if len(paths) != 1:
            parser.error("--outputs-from needs exactly one target notebook")
        target = nbformat.read(paths[0], as_version=4)
        n = copy_checked_outputs(nbformat.read(args.outputs_from, as_version=4), target)
        nbformat.write(strip(target), paths[0])
        print(f"{paths[0]}: refreshed the expected output of {n} checked cell(s)")
        return 0
    dirty = []
    for path in paths:
        if needs_strip(path):
            dirty.append(path)
            if not args.check:
                nbformat.write(strip(nbformat.read(path, as_version=4)), path)
                print(f"stripped {path}")
    if args.check and dirty:
        print("notebooks with outputs or run metadata (run: python tools/strip_notebooks.py):")
        for p in dirty:
            print(f"  {p}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
