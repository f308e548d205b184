"""tools/strip_notebooks.py: outputs removed, parameters tag and checked outputs kept, idempotent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / "tools" / "strip_notebooks.py")
strip_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(strip_notebooks)


def _nb(tmp_path: Path) -> Path:
    a = new_code_cell("x = 1", metadata={"tags": ["parameters"], "papermill": {"duration": 1}}, execution_count=3,
                      outputs=[new_output("stream", name="stdout", text="noise\n")])
    b = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('rows 3')", execution_count=4,
                      outputs=[new_output("stream", name="stdout", text="rows 3\n"),
                               new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})])
    nb = new_notebook(cells=[a, b], metadata={"kernelspec": {"name": "python3", "display_name": "P", "language": "python"},
                                              "papermill": {"parameters": {}}})
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    return path


def test_strip_and_check(tmp_path):
    path = _nb(tmp_path)
    assert strip_notebooks.main([str(path), "--check"]) == 1
    assert strip_notebooks.main([str(path)]) == 0
    assert strip_notebooks.main([str(path), "--check"]) == 0  # idempotent
    nb = nbformat.read(path, as_version=4)
    a, b = nb.cells
    assert a.outputs == [] and a.execution_count is None and a.metadata == {"tags": ["parameters"]}
    assert [o.output_type for o in b.outputs] == ["stream", "display_data"]
    assert set(b.outputs[1].data) == {"text/plain"}  # images are never committed
    assert set(nb.metadata) == {"kernelspec"}


def test_outputs_from_executed(tmp_path):
    path = _nb(tmp_path)
    strip_notebooks.main([str(path)])
    executed = nbformat.read(path, as_version=4)
    executed.cells[1].outputs = [new_output("stream", name="stdout", text="rows 4\n")]
    ex_path = tmp_path / "executed.ipynb"
    nbformat.write(executed, ex_path)
    assert strip_notebooks.main(["--outputs-from", str(ex_path), str(path)]) == 0
    assert nbformat.read(path, as_version=4).cells[1].outputs[0].text == "rows 4\n"
